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
