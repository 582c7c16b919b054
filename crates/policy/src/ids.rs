//! Request actions. Account ids and ARNs are `ferrokms_types`' (one type
//! of each across the layers); the action type lives here because only the
//! policy language reads it.

use crate::error::PolicyError;
use std::fmt;

/// A requested action such as `kms:Sign`. Matching is case-insensitive, so the lowercase form
/// is computed once here rather than on every statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action {
    text: String,
    lower: String,
}

impl Action {
    /// The action's text as given (`kms:Encrypt`), taken out.
    pub fn into_text(self) -> String {
        self.text
    }

    /// Accepts `service:Name` with no wildcards.
    pub fn parse(s: &str) -> Result<Self, PolicyError> {
        let bad = |reason| PolicyError::InvalidRequestAction {
            value: s.to_string(),
            reason,
        };
        let [svc, name] = ferrokms_textfast::split_fields::<2>(s, b':')
            .ok_or_else(|| bad("expected service:Name"))?;
        if svc.is_empty() || name.is_empty() {
            return Err(bad("expected service:Name"));
        }
        if s.bytes().any(|b| b == b'*' || b == b'?') {
            return Err(bad("a request action cannot contain wildcards"));
        }
        // Action names are ASCII: checked byte by byte then, char by char
        // (Unicode whitespace) only otherwise; lowered the same way.
        let ascii = s.is_ascii();
        let whitespace = if ascii {
            s.bytes().any(|b| b.is_ascii_whitespace() || b == 0x0b)
        } else {
            s.chars().any(char::is_whitespace)
        };
        if whitespace {
            return Err(bad("a request action cannot contain whitespace"));
        }
        Ok(Action {
            text: s.to_string(),
            lower: crate::value::lower_key(s),
        })
    }

    /// The action as the caller spelled it.
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

#[cfg(test)]
mod action_tests {
    use super::*;

    #[test]
    fn a_request_action_is_service_colon_name_without_wildcards_or_whitespace() {
        let a = Action::parse("kms:ReEncryptFrom").unwrap();
        assert_eq!(
            (a.as_str(), a.lower()),
            ("kms:ReEncryptFrom", "kms:reencryptfrom")
        );
        let u = Action::parse("svc:\u{c9}TAT").unwrap();
        assert_eq!(u.lower(), "svc:\u{e9}tat");
        for bad in [
            "kms",
            ":Sign",
            "kms:",
            "kms:Si*n",
            "kms:Sig?",
            "kms:Si gn",
            "kms:Sign\t",
            "kms:Si\u{b}gn",
            "kms:Si\u{a0}gn",
            "kms:\u{e9}\u{2003}",
        ] {
            assert!(Action::parse(bad).is_err(), "{bad:?}");
        }
    }
}
