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
    if value.len() < 2 || value.len() > 64 {
        return Err(invalid(
            value,
            "roleSessionName",
            "Member must have length between 2 and 64",
        ));
    }
    if !name_chars_ok(value) {
        return Err(invalid(
            value,
            "roleSessionName",
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

/// Tags on users, roles and sessions: at most 50, keys 1..=128 and values
/// 0..=256 characters of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, keys unique
/// regardless of case.
pub(crate) fn check_tags(tags: &[crate::Tag]) -> Result<(), IamError> {
    if tags.len() > 50 {
        return Err(IamError::LimitExceeded(
            "Cannot exceed quota for TagsPerEntity: 50".into(),
        ));
    }
    let ok_char = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    for (i, t) in tags.iter().enumerate() {
        let klen = t.key.chars().count();
        if klen == 0 || klen > 128 {
            return Err(invalid(
                &t.key,
                &format!("tags.{}.member.key", i + 1),
                "Member must have length between 1 and 128",
            ));
        }
        if !t.key.chars().all(ok_char) {
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
        if !t.value.chars().all(ok_char) {
            return Err(invalid(
                &t.value,
                &format!("tags.{}.member.value", i + 1),
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            ));
        }
        if tags[..i].iter().any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.".into(),
            ));
        }
    }
    Ok(())
}

/// SourceIdentity: 2..=64 characters of `[\w+=,.@-]*`.
pub(crate) fn check_source_identity(value: &str) -> Result<(), IamError> {
    if value.len() < 2 || value.len() > 64 {
        return Err(invalid(
            value,
            "sourceIdentity",
            "Member must have length between 2 and 64",
        ));
    }
    if !name_chars_ok(value) {
        return Err(invalid(
            value,
            "sourceIdentity",
            "Member must satisfy regular expression pattern: [\\w+=,.@-]*",
        ));
    }
    Ok(())
}
