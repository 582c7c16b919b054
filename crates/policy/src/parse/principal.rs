//! `Principal` / `NotPrincipal` values.
//!
//! IAM allows `*` only on its own: a wildcard inside a principal ARN is rejected rather than
//! matched, because principals are resolved to concrete identities when the policy is saved.

use crate::error::{type_name_of, PolicyError};
use crate::json::Json;
use crate::model::{PrincipalEntry, PrincipalId, PrincipalSpec, PrincipalType, PrincipalValue};
use ferrokms_types::AccountId;

pub(super) fn parse_principal(at: &str, v: &Json) -> Result<PrincipalSpec, PolicyError> {
    match v {
        Json::String(s) if s == "*" => Ok(PrincipalSpec::Wildcard),
        Json::String(s) => Err(PolicyError::InvalidPrincipal {
            at: at.to_string(),
            value: s.clone(),
            reason: "a principal given as a plain string must be \"*\"; use {\"AWS\": ...} for ARNs and accounts",
        }),
        Json::Object(members) => {
            if members.is_empty() {
                return Err(PolicyError::Empty { at: at.to_string() });
            }
            let mut entries = Vec::with_capacity(members.len());
            for (k, vals) in members {
                let here = format!("{at}.{k}");
                let kind = match k.as_str() {
                    "AWS" => PrincipalType::Aws,
                    "Service" => PrincipalType::Service,
                    "Federated" => PrincipalType::Federated,
                    "CanonicalUser" => PrincipalType::CanonicalUser,
                    _ => {
                        return Err(PolicyError::InvalidPrincipal {
                            at: at.to_string(),
                            value: k.clone(),
                            reason: "unknown principal type (expected AWS, Service, Federated or CanonicalUser)",
                        })
                    }
                };
                let (items, form) = super::string_list(&here, vals)?;
                let values = items
                    .into_iter()
                    .map(|(p, s)| classify(&p, kind, s).map(|id| PrincipalValue { text: s.to_string(), id }))
                    .collect::<Result<Vec<_>, _>>()?;
                entries.push(PrincipalEntry { kind, values, form });
            }
            Ok(PrincipalSpec::Typed(entries))
        }
        other => Err(PolicyError::WrongType {
            at: at.to_string(),
            expected: "\"*\" or an object",
            found: type_name_of(other),
        }),
    }
}

fn classify(at: &str, kind: PrincipalType, s: &str) -> Result<PrincipalId, PolicyError> {
    let bad = |reason| PolicyError::InvalidPrincipal {
        at: at.to_string(),
        value: s.to_string(),
        reason,
    };
    if s.is_empty() {
        return Err(bad("empty principal"));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(bad("principals cannot contain whitespace"));
    }
    if kind == PrincipalType::Aws && s == "*" {
        return Ok(PrincipalId::Everyone);
    }
    if s.contains(['*', '?']) {
        return Err(bad(
            "wildcards are not allowed in a principal (only \"*\" on its own)",
        ));
    }
    match kind {
        PrincipalType::Aws => classify_aws(s).map_err(bad),
        PrincipalType::Service => {
            if s.contains('.') {
                Ok(PrincipalId::Service(s.to_string()))
            } else {
                Err(bad("a service principal looks like service.amazonaws.com"))
            }
        }
        PrincipalType::Federated => Ok(PrincipalId::Federated(s.to_string())),
        PrincipalType::CanonicalUser => {
            if s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(PrincipalId::CanonicalUser(s.to_string()))
            } else {
                Err(bad("a canonical user ID is alphanumeric"))
            }
        }
    }
}

fn classify_aws(s: &str) -> Result<PrincipalId, &'static str> {
    if let Ok(acct) = AccountId::parse(s) {
        return Ok(PrincipalId::Account(acct));
    }
    if is_unique_id(s) {
        return Ok(PrincipalId::UniqueId(s.to_string()));
    }
    let mut parts = s.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("expected \"*\", a 12-digit account ID, or an IAM/STS principal ARN");
    };
    if partition.is_empty() {
        return Err("the ARN has no partition");
    }
    if !region.is_empty() {
        return Err("IAM and STS principal ARNs have an empty region");
    }
    let account =
        AccountId::parse(account).map_err(|_| "the ARN's account is not a 12-digit account ID")?;
    match service {
        "iam" => {
            if resource == "root" {
                return Ok(PrincipalId::Account(account));
            }
            if let Some(rest) = resource.strip_prefix("user/") {
                return match rest.rsplit('/').next() {
                    Some(name) if !name.is_empty() => Ok(PrincipalId::User(s.to_string())),
                    _ => Err("the user ARN has no user name"),
                };
            }
            if let Some(rest) = resource.strip_prefix("role/") {
                return match rest.rsplit('/').next() {
                    Some(name) if !name.is_empty() => Ok(PrincipalId::Role {
                        arn: s.to_string(),
                        account,
                        name: name.to_string(),
                    }),
                    _ => Err("the role ARN has no role name"),
                };
            }
            Err("an IAM principal ARN names root, a user or a role")
        }
        "sts" => {
            if let Some(rest) = resource.strip_prefix("assumed-role/") {
                let mut it = rest.split('/');
                return match (it.next(), it.next(), it.next()) {
                    (Some(r), Some(sess), None) if !r.is_empty() && !sess.is_empty() => {
                        Ok(PrincipalId::AssumedRoleSession(s.to_string()))
                    }
                    _ => Err("expected assumed-role/ROLE-NAME/SESSION-NAME"),
                };
            }
            if let Some(name) = resource.strip_prefix("federated-user/") {
                return if name.is_empty() || name.contains('/') {
                    Err("expected federated-user/NAME")
                } else {
                    Ok(PrincipalId::FederatedUser(s.to_string()))
                };
            }
            Err("an STS principal ARN names an assumed-role session or a federated user")
        }
        _ => Err("principal ARNs must be IAM or STS ARNs"),
    }
}

/// IAM unique IDs of users (`AIDA`) and roles (`AROA`): what a policy shows once the named
/// user or role has been deleted.
fn is_unique_id(s: &str) -> bool {
    (s.starts_with("AIDA") || s.starts_with("AROA"))
        && (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}
