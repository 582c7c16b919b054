//! The trace of a decision: what was asked, the outcome, and the statements
//! (or grant) that decided it. The audit record and `policy explain` read it.

/// One authorization decision of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthzRecord {
    /// The IAM action asked about (`kms:Encrypt`).
    pub action: String,
    /// The resource ARN asked about, or `*`.
    pub resource: String,
    /// Whether the action was allowed.
    pub allowed: bool,
    /// Why, as a value: what explanations reason from.
    pub reason: Reason,
    /// `allow`, `allow (grant GRANT_ID)`, or the AccessDenied reason clause
    /// (AWS's words for `reason`).
    pub decision: String,
    /// The statements that applied: `policy label #index (Sid) Effect`.
    pub statements: Vec<String>,
}

/// The decision text of an allow that no grant decided.
pub const PLAIN_ALLOW: &str = "allow";

/// Which of the policies that take part in a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicySide {
    /// The resource's own policy (a key policy, a role's trust policy).
    ResourcePolicy,
    /// The caller's identity-based policies.
    Identity,
    /// The caller's permissions boundary.
    PermissionsBoundary,
    /// The session policies passed to AssumeRole.
    SessionPolicy,
}

impl From<ferrokms_policy::PolicyKind> for PolicySide {
    fn from(kind: ferrokms_policy::PolicyKind) -> Self {
        use ferrokms_policy::PolicyKind;
        match kind {
            PolicyKind::ResourceBased => PolicySide::ResourcePolicy,
            PolicyKind::IdentityBased => PolicySide::Identity,
            PolicyKind::PermissionsBoundary => PolicySide::PermissionsBoundary,
            PolicyKind::SessionPolicy => PolicySide::SessionPolicy,
        }
    }
}

impl PolicySide {
    /// AWS's words for it in AccessDenied messages.
    pub fn description(self) -> &'static str {
        match self {
            PolicySide::ResourcePolicy => "resource-based policy",
            PolicySide::Identity => "identity-based policy",
            PolicySide::PermissionsBoundary => "permissions boundary",
            PolicySide::SessionPolicy => "session policy",
        }
    }
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// The policies allowed.
    Allowed,
    /// A grant allowed where the policies did not (or the caller is the
    /// grant's retiring principal or grantee); the decision text names it.
    AllowedByGrant,
    /// A Deny statement of this side applied.
    ExplicitDeny(PolicySide),
    /// Nothing of this side allowed: the side AWS's message names.
    NoAllow(PolicySide),
    /// The resource belongs to another account and the action cannot
    /// cross accounts: refused before any policy was read. (AWS's words are
    /// those of `NoAllow(ResourcePolicy)`.)
    OtherAccount,
    /// A denial recorded in words this version does not know (an audit
    /// record written by another version).
    Unrecognized,
}

impl Reason {
    /// The reason of a decision read back from its words (an audit record):
    /// AWS's two clause shapes, `with an explicit deny in a(n) SIDE` and
    /// `because no SIDE allows the ACTION action`. The audit record keeps
    /// only the words; this is the one place that reads them.
    pub fn from_decision_text(allowed: bool, text: &str) -> Reason {
        if allowed {
            return if text == PLAIN_ALLOW {
                Reason::Allowed
            } else {
                Reason::AllowedByGrant
            };
        }
        let side = |words: &str| {
            [
                PolicySide::ResourcePolicy,
                PolicySide::Identity,
                PolicySide::PermissionsBoundary,
                PolicySide::SessionPolicy,
            ]
            .into_iter()
            .find(|s| words.starts_with(s.description()))
        };
        if let Some(rest) = text
            .strip_prefix("with an explicit deny in an ")
            .or_else(|| text.strip_prefix("with an explicit deny in a "))
        {
            return side(rest).map_or(Reason::Unrecognized, Reason::ExplicitDeny);
        }
        if let Some(rest) = text.strip_prefix("because no ") {
            return side(rest).map_or(Reason::Unrecognized, Reason::NoAllow);
        }
        Reason::Unrecognized
    }
}

/// The statements that applied in an evaluation, as trace text.
pub(crate) fn applied_statements(eval: &ferrokms_policy::Evaluation<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for p in &eval.policies {
        for st in &p.statements {
            if matches!(st.result, ferrokms_policy::StatementResult::Applies { .. }) {
                // `policy label #index (Sid) Effect`, built without format!:
                // one or two of these are written on every request.
                let index = st.index.to_string();
                let index = index.as_str();
                let effect = st.statement.effect().as_str();
                out.push(match st.statement.sid() {
                    Some(sid) => {
                        ferrokms_textfast::concat(&[p.id, " #", index, " (", sid, ") ", effect])
                    }
                    None => ferrokms_textfast::concat(&[p.id, " #", index, " ", effect]),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason the decision function gives reads back from AWS's words
    /// (the audit record keeps only them), except the refusal of another
    /// account's resource, whose words are AWS's "no resource-based policy".
    #[test]
    fn a_reason_reads_back_from_the_words_aws_gives_it() {
        use ferrokms_policy::{Decision, PolicyKind};
        for kind in PolicyKind::ALL {
            let side = PolicySide::from(kind);
            let deny = Decision::ExplicitDeny {
                kind,
                policy_id: "p".into(),
                statement: 0,
                sid: None,
            };
            let words = deny.denial_reason("kms:Encrypt").unwrap_or_default();
            assert_eq!(
                Reason::from_decision_text(false, &words),
                Reason::ExplicitDeny(side),
                "{words}"
            );
            let words = Decision::ImplicitDeny { missing: kind }
                .denial_reason("kms:Encrypt")
                .unwrap_or_default();
            assert_eq!(
                Reason::from_decision_text(false, &words),
                Reason::NoAllow(side),
                "{words}"
            );
        }
        assert_eq!(
            Reason::from_decision_text(true, PLAIN_ALLOW),
            Reason::Allowed
        );
        assert_eq!(
            Reason::from_decision_text(true, "allow (grant 0123)"),
            Reason::AllowedByGrant
        );
        assert_eq!(
            Reason::from_decision_text(false, "because \"no\""),
            Reason::Unrecognized
        );
    }
}
