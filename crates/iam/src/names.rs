//! IAM naming rules and identifier generation.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::IamError;

/// AWS's ValidationError text for one member.
pub(crate) fn invalid(value: &str, member: &str, constraint: &str) -> IamError {
    IamError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

fn name_chars_ok(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// User, role, group and policy names: `[\w+=,.@-]+`, 1..=max characters.
pub(crate) fn check_name(value: &str, member: &str, max: usize) -> Result<(), IamError> {
    if value.is_empty() || value.len() > max {
        return Err(invalid(
            value,
            member,
            &format!("Member must have length between 1 and {max}"),
        ));
    }
    if !name_chars_ok(value) {
        return Err(invalid(
            value,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// Paths: `/` or `/segments/`, at most 512 characters.
pub(crate) fn check_path(value: &str) -> Result<(), IamError> {
    let ok = value.len() <= 512
        && value.starts_with('/')
        && value.ends_with('/')
        && value.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            value,
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

/// STS session names: `[\w+=,.@-]*`, 2..=64 characters.
pub(crate) fn check_session_name(value: &str) -> Result<(), IamError> {
    check_sts_name(value, "roleSessionName")
}

/// STS's names of 2..=64 characters of `[\w+=,.@-]*` (RoleSessionName,
/// SourceIdentity): AWS's two messages, naming `member`.
fn check_sts_name(value: &str, member: &str) -> Result<(), IamError> {
    if value.len() < 2 || value.len() > 64 {
        return Err(invalid(
            value,
            member,
            "Member must have length between 2 and 64",
        ));
    }
    if !name_chars_ok(value) {
        return Err(invalid(
            value,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A unique id with AWS's prefix (AIDA user, AROA role, ANPA policy, AGPA
/// group, AKIA access key, ASIA temporary key): 4 + `n` characters.
pub(crate) fn new_id(prefix: &str, n: usize) -> Result<String, IamError> {
    let mut raw = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| IamError::Random)?;
    Ok(prefix
        .chars()
        .chain(
            raw.iter()
                .map(|b| ID_ALPHABET[(*b as usize) % ID_ALPHABET.len()] as char),
        )
        .collect())
}

/// A secret of `n` characters from the alphabet AWS secrets use.
pub(crate) fn new_secret(n: usize) -> Result<zeroize::Zeroizing<String>, IamError> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = zeroize::Zeroizing::new(vec![0u8; n]);
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| IamError::Random)?;
    Ok(zeroize::Zeroizing::new(
        raw.iter()
            .map(|b| ALPHABET[(*b as usize) % ALPHABET.len()] as char)
            .collect(),
    ))
}

/// `tagKeyType` / `tagValueType` of the IAM service model:
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, by Unicode general category (letters,
/// separators, numbers). Not `char::is_whitespace`/`is_alphanumeric`: those
/// admit U+0009..U+000D (control characters, category Cc) and combining
/// marks, which the model's pattern refuses and XML 1.0 partly forbids.
fn tag_text_ok(s: &str) -> bool {
    static PATTERN: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").expect("constant pattern")
    });
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" _.:/=+-@".contains(&b))
        || PATTERN.is_match(s)
}

/// Whether two tag keys are the same key to IAM (keys are case-insensitive)
/// and to policy conditions (`aws:RequestTag/<key>`, `aws:PrincipalTag/<key>`
/// fold case the same way, Unicode included).
pub(crate) fn same_tag_key(a: &str, b: &str) -> bool {
    ferrokms_policy::same_context_key(a, b)
}

/// Tags on users, roles and sessions: at most 50, keys 1..=128 and values
/// 0..=256 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, keys unique
/// regardless of case. Two keys of one request that differ only in case are
/// refused as AWS refuses them (InvalidInput), so a Deny on
/// `aws:RequestTag/<key>` cannot be sidestepped by a second spelling whose
/// value would replace the first in the request context.
pub(crate) fn check_tags(tags: &[crate::Tag]) -> Result<(), IamError> {
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "Cannot exceed quota for TagsPerEntity: 50".into(),
        ));
    }
    for (i, t) in tags.iter().enumerate() {
        let klen = t.key.chars().count();
        if klen == 0 || klen > 128 {
            return Err(invalid(
                &t.key,
                &format!("tags.{}.member.key", i + 1),
                "Member must have length between 1 and 128",
            ));
        }
        if !tag_text_ok(&t.key) {
            return Err(invalid(
                &t.key,
                &format!("tags.{}.member.key", i + 1),
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
            ));
        }
        if t.value.chars().count() > 256 {
            return Err(invalid(
                &t.value,
                &format!("tags.{}.member.value", i + 1),
                "Member must have length less than or equal to 256",
            ));
        }
        if !tag_text_ok(&t.value) {
            return Err(invalid(
                &t.value,
                &format!("tags.{}.member.value", i + 1),
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
    }
    for (i, t) in tags.iter().enumerate() {
        if tags[..i].iter().any(|o| same_tag_key(&o.key, &t.key)) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
            ));
        }
    }
    Ok(())
}

/// `roleDescriptionType`: at most 1000 characters of
/// `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*` (CreateRole, UpdateRole).
pub(crate) fn check_role_description(value: &str) -> Result<(), IamError> {
    check_policy_description(value)?;
    let ok = value
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}'));
    if !ok {
        return Err(invalid(
            value,
            "description",
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*",
        ));
    }
    Ok(())
}

/// `policyDescriptionType`: at most 1000 characters, no pattern in the
/// model (the XML writer replaces what XML 1.0 cannot carry). Role
/// descriptions have the same length limit.
pub(crate) fn check_policy_description(value: &str) -> Result<(), IamError> {
    if value.chars().count() > 1000 {
        return Err(invalid(
            value,
            "description",
            "Member must have length less than or equal to 1000",
        ));
    }
    Ok(())
}

/// `policyPathType` (CreatePolicy): `((/[A-Za-z0-9\.,\+@=_-]+)*)/`, at most
/// 512 characters; stricter than a user's or role's path.
pub(crate) fn check_policy_path(value: &str) -> Result<(), IamError> {
    let segment_ok = |seg: &str| {
        !seg.is_empty()
            && seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".,+@=_-".contains(&b))
    };
    let ok = value.len() <= 512
        && value.strip_suffix('/').is_some_and(|inner| {
            inner.is_empty()
                || inner
                    .strip_prefix('/')
                    .is_some_and(|rest| rest.split('/').all(segment_ok))
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            value,
            "path",
            "Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/",
        ))
    }
}

/// SourceIdentity: 2..=64 characters of `[\w+=,.@-]*`.
pub(crate) fn check_source_identity(value: &str) -> Result<(), IamError> {
    check_sts_name(value, "sourceIdentity")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tag;

    fn tag(key: &str, value: &str) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    fn message(e: IamError) -> String {
        match e {
            IamError::Validation(m) | IamError::InvalidInput(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// tagValueType `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`: a vertical tab (Cc) is
    /// not a separator (Zs/Zl/Zp), whatever `char::is_whitespace` says.
    #[test]
    fn tag_value_type_pattern_refuses_control_characters() {
        for c in [
            '\u{0}', '\t', '\n', '\u{b}', '\u{c}', '\r', '\u{1f}', '\u{7f}', '\u{85}',
        ] {
            let e = check_tags(&[tag("k", &format!("a{c}b"))]).expect_err("control");
            assert_eq!(
                message(e),
                format!("1 validation error detected: Value 'a{c}b' at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{{L}}\\p{{Z}}\\p{{N}}_.:/=+\\-@]*")
            );
        }
    }

    /// tagKeyType `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`: letters, separators and
    /// numbers of any script pass; marks, symbols and punctuation do not.
    #[test]
    fn tag_key_type_pattern_is_unicode_general_categories() {
        for ok in [
            "Team",
            "a b",
            "x_y.z:1/2=3+4-5@6",
            "\u{e9}quipe",
            "\u{2167}",
            "\u{a0}nbsp",
            "\u{2028}",
            "\u{65e5}\u{672c}",
            "",
        ] {
            let key = if ok.is_empty() { "k" } else { ok };
            assert!(check_tags(&[tag(key, ok)]).is_ok(), "{ok:?}");
        }
        for bad in [
            "a\u{301}",
            "a!",
            "a#",
            "\u{1f600}",
            "a\u{b}",
            "a\"",
            "<x>",
            "a\u{200b}",
        ] {
            let e = check_tags(&[tag(bad, "v")]).expect_err(bad);
            assert!(
                message(e).ends_with("at 'tags.1.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+"),
                "{bad:?}"
            );
        }
        let e = check_tags(&[tag("k", "v"), tag("k2", "v\u{b}")]).expect_err("second");
        assert!(message(e).contains("at 'tags.2.member.value'"));
    }

    /// AWS: "Duplicate tag keys found. Please note that Tag keys are case
    /// insensitive." (InvalidInput), for keys of one request that differ only
    /// in case, Unicode case included (the policy context folds it too).
    #[test]
    fn duplicate_tag_keys_differing_only_in_case_are_invalid_input() {
        for (a, b) in [
            ("Team", "team"),
            ("TEAM", "team"),
            ("\u{c9}quipe", "\u{e9}quipe"),
            ("k", "k"),
        ] {
            let e = check_tags(&[tag(a, "x"), tag("other", "y"), tag(b, "z")]).expect_err(b);
            assert!(matches!(&e, IamError::InvalidInput(_)), "{e:?}");
            assert_eq!(
                message(e),
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
            );
        }
        assert!(check_tags(&[tag("Team", "x"), tag("Teams", "y")]).is_ok());
        assert!(same_tag_key("\u{c9}QUIPE", "\u{e9}quipe"));
        assert!(!same_tag_key("a", "b"));
    }

    /// roleDescriptionType `[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*`, max 1000.
    #[test]
    fn role_description_type_pattern_and_length() {
        for ok in [
            "",
            "plain text",
            "tab\tnl\ncr\r",
            "caf\u{e9} \u{a1}\u{ff}",
            &"x".repeat(1000),
        ] {
            assert!(check_role_description(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "a\u{b}b", "\u{0}", "\u{7f}", "\u{a0}", "\u{100}", "\u{65e5}",
        ] {
            assert_eq!(
                message(check_role_description(bad).expect_err(bad)),
                format!("1 validation error detected: Value '{bad}' at 'description' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*")
            );
        }
        let long = "x".repeat(1001);
        assert!(message(check_role_description(&long).expect_err("long"))
            .ends_with("Member must have length less than or equal to 1000"));
    }

    /// policyDescriptionType: no pattern, max 1000 characters.
    #[test]
    fn policy_description_type_is_length_only() {
        assert!(check_policy_description("any \u{b} text \u{1f600}").is_ok());
        assert!(check_policy_description(&"\u{e9}".repeat(1000)).is_ok());
        assert!(check_policy_description(&"x".repeat(1001)).is_err());
    }

    /// policyPathType `((/[A-Za-z0-9\.,\+@=_-]+)*)/`; pathType
    /// `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`.
    #[test]
    fn policy_path_type_and_path_type_patterns() {
        for ok in ["/", "/a/", "/a/b.c,d+e@f=g_h-i/"] {
            assert!(check_policy_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "a/", "/a", "//", "/a//b/", "/a b/", "/a!/", "/\u{e9}/", "/a\u{b}/",
        ] {
            assert_eq!(
                message(check_policy_path(bad).expect_err(bad)),
                format!("1 validation error detected: Value '{bad}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/")
            );
        }
        assert!(check_policy_path(&format!("/{}/", "a".repeat(511))).is_err());
        assert!(check_path("/a!b/").is_ok());
        for bad in ["/a\u{b}/", "/a b/", "/\u{e9}/"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    /// userNameType `[\w+=,.@-]+` (Java's \w: ASCII letters, digits, _).
    #[test]
    fn user_name_type_pattern() {
        assert!(check_name("a_b+c=d,e.f@g-h", "userName", 64).is_ok());
        for bad in ["a b", "a\u{b}", "\u{e9}", "a/b", ""] {
            assert!(check_name(bad, "userName", 64).is_err(), "{bad:?}");
        }
        assert_eq!(
            message(check_name("a\u{b}", "userName", 64).expect_err("vt")),
            "1 validation error detected: Value 'a\u{b}' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
    }
}
