//! Identity-based authorization: which policies apply to a principal, and
//! the decision for IAM and STS actions.

use std::sync::Arc;

use ferrokms_policy::{
    evaluate_with, explain, Action, CombineMode, Context, EvaluationOptions, Policy, PolicyInput,
    PolicyKind, Request,
};

use crate::{Directory, IamError, Principal};

thread_local! {
    /// The access key id of the request being served on this thread.
    static CURRENT_KEY: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A policy that applies to a principal, with a label for traces.
#[derive(Clone)]
pub struct LabelledPolicy {
    pub label: String,
    pub kind: PolicyKind,
    pub policy: Arc<Policy>,
}

impl Directory {
    /// The identity-side policies of a principal: inline and attached
    /// policies of the user or of the session's role, plus the session
    /// policy. Root has none (it holds every permission of its account).
    pub fn identity_policies(&self, principal: &Principal) -> Vec<LabelledPolicy> {
        let mut out = Vec::new();
        let state = self.state.read();
        let mut add_entity = |who: &str,
                              inline: &std::collections::BTreeMap<String, crate::PolicyDoc>,
                              attached: &[String]| {
            for (name, doc) in inline {
                out.push(LabelledPolicy {
                    label: format!("{who} inline policy {name}"),
                    kind: PolicyKind::IdentityBased,
                    policy: doc.parsed.clone(),
                });
            }
            for arn in attached {
                if let Some(doc) = state
                    .policies
                    .get(arn)
                    .and_then(|p| p.default_doc().cloned())
                {
                    out.push(LabelledPolicy {
                        label: format!("{who} managed policy {arn}"),
                        kind: PolicyKind::IdentityBased,
                        policy: doc.parsed,
                    });
                }
            }
        };
        match principal {
            Principal::Root { .. } => {}
            Principal::User { account, name, .. } => {
                if let Some(u) = state.users.get(&crate::name_key(account, name)) {
                    add_entity(&format!("user {}", u.name), &u.inline, &u.attached);
                }
                for g in state
                    .groups
                    .values()
                    .filter(|g| g.account == *account && g.has_member(name))
                {
                    add_entity(&format!("group {}", g.name), &g.inline, &g.attached);
                }
            }
            Principal::AssumedRole {
                account, role_name, ..
            } => {
                if let Some(r) = state.roles.get(&crate::name_key(account, role_name)) {
                    add_entity(&format!("role {}", r.name), &r.inline, &r.attached);
                }
            }
        }
        out
    }

    /// The permissions boundary of a user, or of the role behind a session.
    pub fn permissions_boundary(&self, principal: &Principal) -> Option<LabelledPolicy> {
        let state = self.state.read();
        let arn = match principal {
            Principal::Root { .. } => None,
            Principal::User { account, name, .. } => state
                .users
                .get(&crate::name_key(account, name))
                .and_then(|u| u.boundary.clone()),
            Principal::AssumedRole {
                account, role_name, ..
            } => state
                .roles
                .get(&crate::name_key(account, role_name))
                .and_then(|r| r.boundary.clone()),
        }?;
        // A boundary whose policy is gone allows nothing: keep it, empty.
        let policy = match state
            .policies
            .get(&arn)
            .and_then(|p| p.default_doc().cloned())
        {
            Some(doc) => doc.parsed,
            None => Arc::new(
                Policy::parse(
                    r#"{"Version":"2012-10-17","Statement":[]}"#,
                    &ferrokms_policy::ParseOptions::for_kind(PolicyKind::PermissionsBoundary),
                )
                .ok()?,
            ),
        };
        Some(LabelledPolicy {
            label: format!("permissions boundary {arn}"),
            kind: PolicyKind::PermissionsBoundary,
            policy,
        })
    }

    /// `aws:PrincipalTag/*` of a principal: the user's tags, or the role's
    /// tags overridden by the session's tags.
    pub fn principal_tags(
        &self,
        principal: &Principal,
        access_key_id: Option<&str>,
    ) -> Vec<crate::Tag> {
        let state = self.state.read();
        let mut tags: Vec<crate::Tag> = match principal {
            Principal::Root { .. } => Vec::new(),
            Principal::User { account, name, .. } => state
                .users
                .get(&crate::name_key(account, name))
                .map(|u| u.tags.clone())
                .unwrap_or_default(),
            Principal::AssumedRole {
                account, role_name, ..
            } => state
                .roles
                .get(&crate::name_key(account, role_name))
                .map(|r| r.tags.clone())
                .unwrap_or_default(),
        };
        if let Some(s) = access_key_id.and_then(|id| state.sessions.get(id)) {
            for t in &s.tags {
                tags.retain(|o| !o.key.eq_ignore_ascii_case(&t.key));
                tags.push(t.clone());
            }
        }
        tags
    }

    /// Context keys that describe the caller beyond what the policy engine
    /// derives from its ARN: principal tags and the source identity.
    pub fn principal_context(
        &self,
        principal: &Principal,
        access_key_id: Option<&str>,
        mut context: Context,
    ) -> Context {
        for t in self.principal_tags(principal, access_key_id) {
            let key = format!("aws:PrincipalTag/{}", t.key);
            if !context.contains(&key) {
                context.insert(&key, t.value.as_str());
            }
        }
        if let Some(session) =
            access_key_id.and_then(|id| self.state.read().sessions.get(id).cloned())
        {
            // Present for every request made with temporary credentials.
            if !context.contains("aws:TokenIssueTime") {
                context.insert(
                    "aws:TokenIssueTime",
                    ferrokms_policy::Timestamp::from_epoch_seconds(
                        session.issued_ms.div_euclid(1000),
                    ),
                );
            }
        }
        if let Some(si) = access_key_id
            .and_then(|id| self.state.read().sessions.get(id).cloned())
            .and_then(|s| s.source_identity.clone())
        {
            if !context.contains("aws:SourceIdentity") {
                context.insert("aws:SourceIdentity", si.as_str());
            }
        }
        context
    }

    /// Session policies of a temporary principal, if any (they cap what
    /// identity policies grant).
    pub fn session_policies(&self, access_key_id: &str) -> Vec<LabelledPolicy> {
        self.state
            .read()
            .sessions
            .get(access_key_id)
            .map(|s| {
                s.session_policies
                    .iter()
                    .enumerate()
                    .map(|(i, d)| LabelledPolicy {
                        label: format!("session policy {}", i + 1),
                        kind: PolicyKind::SessionPolicy,
                        policy: d.parsed.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Authorizes an identity-only action (IAM, STS) in the caller's own
    /// account. The root user may do everything in its account.
    pub(crate) fn authorize(
        &self,
        caller: &Principal,
        action: &str,
        resource: &str,
    ) -> Result<(), IamError> {
        let key = CURRENT_KEY.with(|k| k.borrow().clone());
        self.authorize_with(caller, key.as_deref(), action, resource, Context::new())
    }

    /// Runs `f` with the access key id of the request it serves, so that
    /// the operations' authorization sees the session's policies and tags.
    pub fn with_access_key<R>(&self, access_key_id: &str, f: impl FnOnce() -> R) -> R {
        struct Reset(Option<String>);
        impl Drop for Reset {
            fn drop(&mut self) {
                let old = self.0.take();
                CURRENT_KEY.with(|k| *k.borrow_mut() = old);
            }
        }
        let old = CURRENT_KEY.with(|k| k.replace(Some(access_key_id.to_string())));
        let _reset = Reset(old);
        f()
    }

    pub fn authorize_with(
        &self,
        caller: &Principal,
        access_key_id: Option<&str>,
        action: &str,
        resource: &str,
        context: Context,
    ) -> Result<(), IamError> {
        if let Principal::Root { .. } = caller {
            return Ok(());
        }
        let principal = caller.to_request_principal("aws").ok_or_else(|| {
            IamError::AccessDenied(format!("{} is not a valid principal", caller.arn("aws")))
        })?;
        let action = Action::parse(action).map_err(|e| IamError::Corrupt(e.to_string()))?;
        let context = self.principal_context(caller, access_key_id, context);
        let request = Request::new(principal, action, resource)
            .with_context(context)
            .with_principal_context();
        let mut policies = self.identity_policies(caller);
        policies.extend(self.permissions_boundary(caller));
        if let Some(id) = access_key_id {
            policies.extend(self.session_policies(id));
        }
        let inputs: Vec<PolicyInput<'_>> = policies
            .iter()
            .map(|p| PolicyInput::new(&p.label, p.kind, &p.policy))
            .collect();
        let eval = evaluate_with(
            &request,
            &inputs,
            &EvaluationOptions {
                mode: CombineMode::Standard,
            },
        );
        if eval.decision.is_allowed() {
            return Ok(());
        }
        Err(IamError::AccessDenied(
            explain::access_denied_message(&request, &eval.decision)
                .unwrap_or_else(|| format!("User: {} is not authorized", caller.arn("aws"))),
        ))
    }
}
