//! Plain-words explanations of KMS authorization decisions: AWS's
//! AccessDenied text for a recorded decision and the smallest policy changes
//! that would allow a denied request. Pure functions over an
//! [`AuthzRecord`], shared by `ferrokms policy simulate`, `ferrokms key
//! access` and `ferrokms policy explain`.

use crate::authz::AuthzRecord;
use ferrokms_authz::{PolicySide, Reason};
use ferrokms_types::IAM_PARTITION;

/// One applied statement of a record, parsed back from its
/// `LABEL #INDEX (SID) EFFECT` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedStatement {
    /// `key policy`, or the identity-side policy's label.
    pub policy: String,
    /// The statement's position in the policy, from 0.
    pub index: usize,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: String,
}

impl AppliedStatement {
    /// Parses `LABEL #INDEX (SID) EFFECT`; `None` for any other text.
    pub fn parse(text: &str) -> Option<AppliedStatement> {
        let (rest, effect) = text.rsplit_once(' ')?;
        let at = rest.rfind(" #")?;
        let policy = rest[..at].to_string();
        let after = &rest[at + 2..];
        let (index, sid) = match after.split_once(' ') {
            Some((i, s)) => (
                i,
                Some(s.trim_start_matches('(').trim_end_matches(')').to_string()),
            ),
            None => (after, None),
        };
        Some(AppliedStatement {
            policy,
            index: index.parse().ok()?,
            sid,
            effect: effect.to_string(),
        })
    }

    /// Whether the statement is in the key policy (not an identity-side policy).
    pub fn is_key_policy(&self) -> bool {
        self.policy == "key policy"
    }

    /// `statement #2 (Sid "X") of the key policy`.
    pub fn describe(&self) -> String {
        let sid = self
            .sid
            .as_ref()
            .map(|s| format!(" (Sid \"{s}\")"))
            .unwrap_or_default();
        if self.is_key_policy() {
            format!("statement #{}{sid} of the key policy", self.index)
        } else {
            format!("statement #{}{sid} of {}", self.index, self.policy)
        }
    }
}

/// AWS's AccessDenied message for a denied record; `None` when allowed.
pub fn access_denied_message(record: &AuthzRecord, caller_arn: &str) -> Option<String> {
    if record.allowed {
        return None;
    }
    let mut m = format!(
        "User: {caller_arn} is not authorized to perform: {} on resource: {}",
        record.action, record.resource
    );
    if !record.decision.is_empty() {
        m.push(' ');
        m.push_str(&record.decision);
    }
    Some(m)
}

/// The `role/NAME` or `user/NAME` part of an IAM ARN (whole ARN otherwise).
fn entity_name(arn: &str) -> &str {
    arn.splitn(6, ':').nth(5).unwrap_or(arn)
}

/// The smallest changes that would allow a denied request, one sentence
/// each, naming the principal, the action and the key. `caller_arn` is the
/// ARN AWS prints (the session ARN for a role), `role_arn` the role behind a
/// session. Empty when the record is an allow.
pub fn suggest(
    record: &AuthzRecord,
    caller_arn: &str,
    role_arn: Option<&str>,
    caller_account: &str,
    key_account: &str,
) -> Vec<String> {
    if record.allowed {
        return Vec::new();
    }
    let action = record.action.as_str();
    let key = record.resource.as_str();
    let bare = action.strip_prefix("kms:").unwrap_or(action);
    let who = role_arn.unwrap_or(caller_arn);
    // The caller's own account root, in the caller's partition.
    let partition = caller_arn.split(':').nth(1).unwrap_or(IAM_PARTITION);
    let root = format!("arn:{partition}:iam::{caller_account}:root");
    let is_root = caller_arn.ends_with(":root");
    let cross = caller_account != key_account;
    let mut out = Vec::new();
    match record.reason {
        Reason::ExplicitDeny(_) => {
            let denies: Vec<AppliedStatement> = record
                .statements
                .iter()
                .filter_map(|s| AppliedStatement::parse(s))
                .filter(|s| s.effect == "Deny")
                .collect();
            for s in &denies {
                out.push(format!(
                    "{} explicitly denies {action} to {caller_arn} on {key}: remove or narrow that statement (an explicit deny wins over every allow, grants included)",
                    s.describe()
                ));
            }
            if denies.is_empty() {
                out.push(format!(
                    "a policy {}: remove or narrow the Deny statement that matches {action} by {caller_arn} on {key}",
                    record.decision
                ));
            }
            return out;
        }
        // A record read back from an audit trail says only "no
        // resource-based policy" for a refusal across accounts.
        Reason::OtherAccount | Reason::NoAllow(PolicySide::ResourcePolicy)
            if cross && !crate::catalog::action_crosses_accounts(bare) =>
        {
            out.push(format!(
                "{action} cannot be used across accounts: only principals of account {key_account} can call it on {key}"
            ));
            return out;
        }
        Reason::OtherAccount | Reason::NoAllow(PolicySide::ResourcePolicy) => {
            if cross {
                out.push(format!(
                    "the key policy of {key} (account {key_account}) does not allow account {caller_account}: add a statement allowing {root} {action} (then attach an identity-based policy in account {caller_account} allowing {action} on {key} to {}), or name {who} in the key policy",
                    entity_name(who)
                ));
            } else if is_root {
                out.push(format!(
                    "the key policy of {key} does not enable IAM policies for account {caller_account}: add a statement allowing {root} {action}"
                ));
            } else {
                out.push(format!(
                    "the key policy does not enable IAM policies for account {caller_account}: add a statement allowing {root} {action}, or name {who} in the key policy"
                ));
            }
            return out;
        }
        Reason::NoAllow(PolicySide::Identity) => {
            let entity = entity_name(who);
            if cross {
                out.push(format!(
                    "the key policy of account {key_account} admits account {caller_account}, but no identity-based policy of {entity} allows {action} on {key}: attach one in account {caller_account}"
                ));
            } else {
                out.push(format!(
                    "the key policy delegates to account {caller_account}, but no identity-based policy of {entity} allows {action} on {key}: attach one (Effect Allow, Action {action}, Resource {key}), or name {who} in the key policy"
                ));
            }
            return out;
        }
        Reason::NoAllow(PolicySide::PermissionsBoundary) => {
            out.push(format!(
                "the permissions boundary of {} does not allow {action} on {key}: add it to the boundary, or remove the boundary",
                entity_name(who)
            ));
            return out;
        }
        Reason::NoAllow(PolicySide::SessionPolicy) => {
            out.push(format!(
                "the session policy of {caller_arn} does not allow {action} on {key}: start a new session of {who} without a session policy, or with one that allows it"
            ));
            return out;
        }
        Reason::Allowed | Reason::AllowedByGrant | Reason::Unrecognized => {}
    }
    out.push(format!(
        "no policy allows {action} by {caller_arn} on {key}: add a key policy statement naming {who} with {action}"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/kms-exports-role/simulated";
    const ROLE: &str = "arn:aws:iam::111122223333:role/kms-exports-role";

    fn denied(decision: &str, statements: &[&str]) -> AuthzRecord {
        AuthzRecord {
            action: "kms:Sign".into(),
            resource: KEY.into(),
            allowed: false,
            reason: Reason::from_decision_text(false, decision),
            decision: decision.into(),
            statements: statements.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn suggest_nothing_for_an_allow() {
        let mut r = denied("allow", &[]);
        r.allowed = true;
        assert!(suggest(&r, SESSION, Some(ROLE), "111122223333", "111122223333").is_empty());
    }

    #[test]
    fn suggest_enabling_iam_policies_when_the_key_policy_does_not_delegate() {
        let r = denied(
            "because no resource-based policy allows the kms:Sign action",
            &[],
        );
        let s = suggest(&r, SESSION, Some(ROLE), "111122223333", "111122223333");
        assert_eq!(s, vec![format!("the key policy does not enable IAM policies for account 111122223333: add a statement allowing arn:aws:iam::111122223333:root kms:Sign, or name {ROLE} in the key policy")]);
    }

    #[test]
    fn suggest_attaching_an_identity_policy_when_delegated() {
        let r = denied(
            "because no identity-based policy allows the kms:Sign action",
            &["key policy #0 (Enable IAM User Permissions) Allow"],
        );
        let s = suggest(&r, SESSION, Some(ROLE), "111122223333", "111122223333");
        assert_eq!(s.len(), 1);
        assert!(s[0].starts_with("the key policy delegates to account 111122223333, but no identity-based policy of role/kms-exports-role allows kms:Sign on arn:aws:kms:"), "{s:?}");
        assert!(s[0].contains(&format!("or name {ROLE} in the key policy")));
    }

    #[test]
    fn suggest_removing_the_explicit_deny() {
        let r = denied(
            "with an explicit deny in a resource-based policy",
            &["key policy #0 Allow", "key policy #2 (NoSign) Deny"],
        );
        let s = suggest(&r, SESSION, Some(ROLE), "111122223333", "111122223333");
        assert_eq!(s.len(), 1);
        assert!(
            s[0].starts_with(
                "statement #2 (Sid \"NoSign\") of the key policy explicitly denies kms:Sign"
            ),
            "{s:?}"
        );
    }

    #[test]
    fn suggest_cross_account_admission_and_refuses_non_cross_account_actions() {
        let r = denied(
            "because no resource-based policy allows the kms:Sign action",
            &[],
        );
        let s = suggest(
            &r,
            "arn:aws:iam::444455556666:user/bob",
            None,
            "444455556666",
            "111122223333",
        );
        assert!(
            s[0].contains("does not allow account 444455556666"),
            "{s:?}"
        );
        let mut r2 = r.clone();
        r2.action = "kms:PutKeyPolicy".into();
        let s = suggest(
            &r2,
            "arn:aws:iam::444455556666:user/bob",
            None,
            "444455556666",
            "111122223333",
        );
        assert!(s[0].contains("cannot be used across accounts"), "{s:?}");
    }

    #[test]
    fn suggest_boundary_and_session_policy_fixes() {
        let r = denied(
            "because no permissions boundary allows the kms:Sign action",
            &[],
        );
        let s = suggest(&r, SESSION, Some(ROLE), "111122223333", "111122223333");
        assert!(
            s[0].contains("permissions boundary of role/kms-exports-role"),
            "{s:?}"
        );
        let r = denied("because no session policy allows the kms:Sign action", &[]);
        let s = suggest(&r, SESSION, Some(ROLE), "111122223333", "111122223333");
        assert!(s[0].contains("session policy"), "{s:?}");
    }

    #[test]
    fn applied_statements_parse_back() {
        let s = AppliedStatement::parse("key policy #3 (Allow use) Allow").unwrap();
        assert_eq!(s.index, 3);
        assert_eq!(s.sid.as_deref(), Some("Allow use"));
        let s = AppliedStatement::parse("role/r inline policy p #0 Deny").unwrap();
        assert_eq!(s.policy, "role/r inline policy p");
        assert_eq!(s.sid, None);
    }

    #[test]
    fn access_denied_message_has_aws_shape() {
        let r = denied(
            "because no identity-based policy allows the kms:Sign action",
            &[],
        );
        assert_eq!(
            access_denied_message(&r, SESSION).unwrap(),
            format!("User: {SESSION} is not authorized to perform: kms:Sign on resource: {KEY} because no identity-based policy allows the kms:Sign action")
        );
    }
}
