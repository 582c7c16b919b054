//! Identifier newtypes: account IDs, ARNs and request actions.
//!
//! They exist so that a function taking an `AccountId` cannot be handed a user name, and so
//! that validation happens once, where the value enters the crate.

use crate::error::PolicyError;
use std::fmt;

/// A 12-digit AWS account ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Accepts exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A concrete ARN split into its six parts. The resource part keeps any further colons
/// (`arn:aws:logs:r:a:log-group:name:*` has resource `log-group:name:*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    text: String,
}

impl Arn {
    /// Accepts `arn:partition:service:region:account:resource` (region/account may be empty).
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(6, ':');
        if parts.next() != Some("arn") {
            return None;
        }
        let partition = parts.next()?;
        let service = parts.next()?;
        let _region = parts.next()?;
        let _account = parts.next()?;
        let _resource = parts.next()?;
        if partition.is_empty() || service.is_empty() {
            return None;
        }
        Some(Arn {
            text: s.to_string(),
        })
    }

    fn part(&self, i: usize) -> &str {
        self.text.splitn(6, ':').nth(i).unwrap_or("")
    }

    pub fn partition(&self) -> &str {
        self.part(1)
    }
    pub fn service(&self) -> &str {
        self.part(2)
    }
    pub fn region(&self) -> &str {
        self.part(3)
    }
    pub fn account(&self) -> &str {
        self.part(4)
    }
    pub fn resource(&self) -> &str {
        self.part(5)
    }
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A requested action such as `kms:Sign`. Matching is case-insensitive, so the lowercase form
/// is computed once here rather than on every statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action {
    text: String,
    lower: String,
}

impl Action {
    /// Accepts `service:Name` with no wildcards.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let bad = |reason| PolicyError::InvalidRequestAction {
            value: s.to_string(),
            reason,
        };
        let (svc, name) = s
            .split_once(':')
            .ok_or_else(|| bad("expected service:Name"))?;
        if svc.is_empty() || name.is_empty() {
            return Err(bad("expected service:Name"));
        }
        if s.contains(['*', '?']) {
            return Err(bad("a request action cannot contain wildcards"));
        }
        if s.chars().any(char::is_whitespace) {
            return Err(bad("a request action cannot contain whitespace"));
        }
        Ok(Action {
            text: s.to_string(),
            lower: s.to_lowercase(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn lower(&self) -> &str {
        &self.lower
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
