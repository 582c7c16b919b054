//! The decision: one function for every service's question.
//!
//! Order, as AWS applies it: a resource of another account is refused
//! before any policy is read unless the operation may cross accounts; then
//! the caller's identity-side policies (identity-based, permissions
//! boundary, session policies) and the resource's own policy (a key policy,
//! a role's trust policy) are evaluated together, explicit deny first. The
//! root user holds every identity-based permission of its own account and
//! none of another's: the policy engine decides that from the request's two
//! accounts, so there is no shortcut for root here.

use ferrokms_policy::{
    evaluate_with, explain, Action, CombineMode, Context, ContextValue, ContextValues, Decision,
    EvaluationOptions, Policy, PolicyInput, PolicyKind, Request,
};
use ferrokms_types::AccountId;

use crate::record::{applied_statements, AuthzRecord, Reason, PLAIN_ALLOW};
use crate::{AuthzError, Caller};

/// A resource's own policy and how it combines with the caller's.
pub struct ResourcePolicy<'a> {
    /// How the trace names it (`key policy`, `trust policy of ARN`).
    pub label: &'a str,
    /// The parsed policy.
    pub policy: &'a Policy,
    /// [`CombineMode::ResourcePolicyRequired`] for key and trust policies:
    /// the resource policy must admit the caller, directly or by delegating
    /// to its account.
    pub mode: CombineMode,
}

/// Adds the condition keys that describe a resource (a key's spec and tags,
/// a user's tags), called only when some policy reads a key; `want` tells
/// which.
pub type ResourceKeys<'a> = &'a dyn Fn(&mut Context, &dyn Fn(&str) -> bool);

/// What an operation asks: may the caller perform `action` on `resource`?
pub struct Question<'a> {
    /// `service:Action` (`iam:CreateUser`, `kms:Encrypt`).
    pub action: &'a str,
    /// The resource ARN, or `*`.
    pub resource: &'a str,
    /// The account that owns the resource (the caller's for `*`).
    pub resource_account: &'a AccountId,
    /// Whether the operation may act on another account's resource at all
    /// (the catalog's answer); if not, such a request is refused first.
    pub cross_account: bool,
    /// The resource's own policy, if it has one (a key policy, a trust policy).
    pub resource_policy: Option<ResourcePolicy<'a>>,
    /// The condition keys the operation itself sets (`aws:RequestTag/*`,
    /// `iam:PolicyARN`, `kms:EncryptionContext:*`...); borrowed, as the
    /// operation often needs them again (KMS's grant constraints).
    pub context: Option<&'a Context>,
    /// Adds the resource's condition keys when a policy reads one.
    pub resource_keys: Option<ResourceKeys<'a>>,
}

impl<'a> Question<'a> {
    /// A question with no resource policy, in the resource's account, that
    /// may not cross accounts: every IAM question, and KMS's key-less ones.
    pub fn identity(action: &'a str, resource: &'a str, resource_account: &'a AccountId) -> Self {
        Question {
            action,
            resource,
            resource_account,
            cross_account: false,
            resource_policy: None,
            context: None,
            resource_keys: None,
        }
    }

    /// The same question with the condition keys the operation sets.
    #[must_use]
    pub fn with_context(mut self, context: &'a Context) -> Self {
        self.context = Some(context);
        self
    }
}

/// The answer, by value: the decision, the request as evaluated (for
/// AWS's AccessDenied text) and the statements that applied.
#[derive(Debug)]
pub struct Verdict {
    /// The request as the policy engine evaluated it (principal, action, resource).
    pub request: Request,
    /// Allow, explicit deny or implicit deny, with what decided it.
    pub decision: Decision,
    /// What the caller's own policies said of the action: what a grant to
    /// the caller's account or role is worth (KMS caps grants with it).
    pub identity_side: IdentitySide,
    /// The statements that applied, as the trace prints them.
    pub statements: Vec<String>,
    /// The resource is another account's and the question may not cross
    /// accounts: refused before any policy was read.
    pub other_account: bool,
}

/// What the caller's identity-side policies said of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentitySide {
    /// An identity-based policy allows (the root user always does: it
    /// speaks for its account's identity side, across accounts too).
    pub identity: bool,
    /// The permissions boundary allows, or there is none.
    pub boundary: bool,
    /// The session policies allow, or there are none.
    pub session: bool,
}

impl Verdict {
    /// Whether the action is allowed.
    pub fn is_allowed(&self) -> bool {
        self.decision.is_allowed()
    }

    /// AWS's AccessDenied message for a denial.
    pub fn denial_message(&self) -> String {
        explain::access_denied_message(&self.request, &self.decision).unwrap_or_else(|| {
            format!(
                "User: {} is not authorized to perform: {} on resource: {}",
                self.request.principal.arn(),
                self.request.action.as_str(),
                self.request.resource
            )
        })
    }

    /// The verdict's trace entry and its outcome: `Ok` when the policies
    /// allowed or `allow_text` names what allowed where they did not (a
    /// grant), else AWS's AccessDenied message. Consumes the verdict: the
    /// entry takes its strings instead of copying them (this runs on every
    /// request).
    pub fn conclude(self, allow_text: Option<&str>) -> (AuthzRecord, Result<(), String>) {
        let allowed = self.is_allowed() || allow_text.is_some();
        let outcome = if allowed {
            Ok(())
        } else {
            Err(self.denial_message())
        };
        let reason = match (&self.decision, allow_text) {
            (Decision::Allow, _) => Reason::Allowed,
            (_, Some(_)) => Reason::AllowedByGrant,
            _ if self.other_account => Reason::OtherAccount,
            (Decision::ExplicitDeny { kind, .. }, None) => Reason::ExplicitDeny((*kind).into()),
            (Decision::ImplicitDeny { missing }, None) => Reason::NoAllow((*missing).into()),
        };
        let decision = if allowed {
            allow_text.unwrap_or(PLAIN_ALLOW).to_string()
        } else {
            self.decision
                .denial_reason(self.request.action.as_str())
                .unwrap_or_default()
        };
        let record = AuthzRecord {
            action: self.request.action.into_text(),
            resource: self.request.resource,
            allowed,
            reason,
            decision,
            statements: self.statements,
        };
        (record, outcome)
    }
}

fn merge_wanted(into: &mut Context, from: &Context, want: &dyn Fn(&str) -> bool) {
    for e in from.iter() {
        if !want(&e.name) || into.contains(&e.name) {
            continue;
        }
        match &e.values {
            ContextValues::Single(v) => into.insert(&e.name, v.clone()),
            ContextValues::Multi(vs) => into.insert_multi(&e.name, vs.clone()),
        }
    }
}

/// Decides a question for a caller. The decision is not recorded: the
/// service adds what only it knows (KMS's grants), then records
/// [`Verdict::record`] in the caller's trace.
pub fn decide(caller: &Caller, q: Question<'_>) -> Result<Verdict, AuthzError> {
    let action = Action::parse(q.action).map_err(|e| AuthzError::Action(e.to_string()))?;
    let resource_account = Some(q.resource_account.clone());
    let principal = caller.request_principal()?;
    let profile = &caller.profile;
    if !q.cross_account && *q.resource_account != caller.account {
        // Refused before any policy is read: nothing of the other account
        // may be consulted, and root's power ends at its own account.
        let request = Request::in_account(principal, action, q.resource, resource_account);
        return Ok(Verdict {
            request,
            decision: Decision::ImplicitDeny {
                missing: PolicyKind::ResourceBased,
            },
            identity_side: IdentitySide::default(),
            statements: Vec::new(),
            other_account: true,
        });
    }
    // Only the context keys some involved policy can read are built: the
    // default key policy reads none, so KMS's common path builds none.
    let mut needed: Vec<&str> = Vec::new();
    let policies = q
        .resource_policy
        .as_ref()
        .map(|r| r.policy)
        .into_iter()
        .chain(profile.policies.iter().map(|p| &*p.policy));
    for p in policies {
        for k in p.referenced_context_keys() {
            if !needed.contains(&k.as_str()) {
                needed.push(k);
            }
        }
    }
    let mut ctx = Context::new();
    if !needed.is_empty() {
        let want = |k: &str| needed.iter().any(|n| n.eq_ignore_ascii_case(k));
        if let Some(op) = q.context {
            merge_wanted(&mut ctx, op, &want);
        }
        if let Some(keys) = q.resource_keys {
            keys(&mut ctx, &want);
        }
        let mut put = |name: &str, value: ContextValue| {
            if want(name) && !ctx.contains(name) {
                ctx.insert(name, value);
            }
        };
        put(
            "aws:RequestedRegion",
            ContextValue::String(caller.region.to_string()),
        );
        put(
            "aws:ResourceAccount",
            ContextValue::String(q.resource_account.to_string()),
        );
        merge_wanted(&mut ctx, caller.context.get(), &want);
        merge_wanted(&mut ctx, &profile.context, &want);
    }
    let request =
        Request::in_account(principal, action, q.resource, resource_account).with_context(ctx);
    // Principal keys come with the caller's profile when the edge built it
    // (once per principal); otherwise derive them here.
    let request = if needed.is_empty() || profile.principal.is_some() {
        request
    } else {
        request.with_principal_context()
    };
    let mut inputs = Vec::with_capacity(1 + profile.policies.len());
    let mode = match &q.resource_policy {
        Some(r) => {
            inputs.push(PolicyInput::new(
                r.label,
                PolicyKind::ResourceBased,
                r.policy,
            ));
            r.mode
        }
        None => CombineMode::Standard,
    };
    for p in &profile.policies {
        inputs.push(PolicyInput::new(&p.label, p.kind, &p.policy));
    }
    let eval = evaluate_with(&request, &inputs, &EvaluationOptions { mode });
    let statements = applied_statements(&eval);
    let admits = |k: PolicyKind| {
        let s = eval.summary(k);
        !s.present || s.allows
    };
    let identity_side = IdentitySide {
        identity: matches!(
            request.principal.kind(),
            ferrokms_policy::PrincipalKind::Root
        ) || eval.summary(PolicyKind::IdentityBased).allows,
        boundary: admits(PolicyKind::PermissionsBoundary),
        session: admits(PolicyKind::SessionPolicy),
    };
    let decision = eval.decision.clone();
    drop(eval);
    Ok(Verdict {
        request,
        decision,
        identity_side,
        statements,
        other_account: false,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrokms_policy::{ParseOptions, RequestPrincipal};
    use ferrokms_types::Region;

    use super::*;
    use crate::{CallerPolicy, CallerProfile};

    const A: &str = "111122223333";
    const B: &str = "444455556666";

    fn account(id: &str) -> AccountId {
        AccountId::parse(id).expect("account")
    }

    fn parse(kind: PolicyKind, text: &str) -> Arc<Policy> {
        Arc::new(Policy::parse(text, &ParseOptions::for_kind(kind)).expect("policy"))
    }

    fn root(id: &str) -> Caller {
        Caller::root(account(id), Region::parse("us-east-1").expect("region"))
    }

    /// A user of account A with the given identity-side policies.
    fn user(policies: Vec<(PolicyKind, &str)>) -> Caller {
        let arn = format!("arn:aws:iam::{A}:user/alice");
        let profile = CallerProfile {
            principal: Some(RequestPrincipal::from_arn(&arn).expect("principal")),
            policies: policies
                .into_iter()
                .enumerate()
                .map(|(i, (kind, text))| CallerPolicy {
                    label: format!("policy {i}"),
                    kind,
                    policy: parse(kind, text),
                })
                .collect(),
            context: Context::new(),
        };
        Caller {
            account: account(A),
            region: Region::parse("us-east-1").expect("region"),
            arn,
            profile: Arc::new(profile),
            context: Default::default(),

            trace: Default::default(),
        }
    }

    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    #[test]
    fn root_may_do_anything_in_its_own_account() {
        let a = account(A);
        let v = decide(
            &root(A),
            Question::identity("iam:DeleteUser", "arn:aws:iam::111122223333:user/x", &a),
        )
        .expect("decided");
        assert!(v.is_allowed());
        assert!(v.identity_side.identity);
    }

    #[test]
    fn another_accounts_resource_is_refused_before_any_policy_is_read() {
        let a = account(A);
        let arn = "arn:aws:iam::111122223333:policy/p";
        let v = decide(&root(B), Question::identity("iam:GetPolicy", arn, &a)).expect("decided");
        assert!(!v.is_allowed());
        assert!(v.statements.is_empty());
        let (record, outcome) = v.conclude(None);
        assert_eq!(
            outcome,
            Err(format!("User: arn:aws:iam::{B}:root is not authorized to perform: iam:GetPolicy on resource: {arn} because no resource-based policy allows the iam:GetPolicy action"))
        );
        assert!(!record.allowed);
        assert_eq!(record.action, "iam:GetPolicy");
        assert_eq!(record.resource, arn);
    }

    #[test]
    fn across_accounts_both_the_resource_policy_and_the_identity_side_must_allow() {
        let b = account(B);
        let key = "arn:aws:kms:us-east-1:444455556666:key/k";
        let key_policy = parse(
            PolicyKind::ResourceBased,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Encrypt","Resource":"*"}]}"#,
        );
        let ask = |caller: &Caller| {
            decide(
                caller,
                Question {
                    action: "kms:Encrypt",
                    resource: key,
                    resource_account: &b,
                    cross_account: true,
                    resource_policy: Some(ResourcePolicy {
                        label: "key policy",
                        policy: &key_policy,
                        mode: CombineMode::ResourcePolicyRequired,
                    }),
                    context: None,
                    resource_keys: None,
                },
            )
            .expect("decided")
        };
        assert!(!ask(&user(vec![])).is_allowed());
        assert!(ask(&user(vec![(PolicyKind::IdentityBased, ALLOW_ALL)])).is_allowed());
        // The root user speaks for its account's identity side.
        assert!(ask(&root(A)).is_allowed());
    }

    #[test]
    fn the_identity_side_reports_each_cap() {
        let a = account(A);
        let deny_boundary = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}"#;
        let v = decide(
            &user(vec![
                (PolicyKind::IdentityBased, ALLOW_ALL),
                (PolicyKind::PermissionsBoundary, deny_boundary),
            ]),
            Question::identity("kms:Encrypt", "*", &a),
        )
        .expect("decided");
        assert!(!v.is_allowed());
        assert_eq!(
            v.identity_side,
            IdentitySide {
                identity: true,
                boundary: false,
                session: true
            }
        );
    }

    #[test]
    fn condition_keys_come_from_the_question_the_profile_and_the_request() {
        let a = account(A);
        let needs_tag = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:TagUser","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"blue","aws:RequestedRegion":"us-east-1"}}}]}"#;
        let caller = user(vec![(PolicyKind::IdentityBased, needs_tag)]);
        let mut ctx = Context::new();
        assert!(!decide(
            &caller,
            Question::identity("iam:TagUser", "*", &a).with_context(&ctx)
        )
        .expect("decided")
        .is_allowed());
        ctx.insert("aws:RequestTag/team", "blue");
        assert!(decide(
            &caller,
            Question::identity("iam:TagUser", "*", &a).with_context(&ctx)
        )
        .expect("decided")
        .is_allowed());
    }
}
