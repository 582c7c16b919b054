//! The identity side of authorization: which policies and tags apply to a
//! principal (what the edge builds every caller's profile from, for KMS,
//! IAM and STS alike), and IAM's and STS's questions to the one
//! authorization path (`ferrokms_authz::decide`).
//!
//! A principal's policies, boundary and tags are found by its unique id
//! (AIDA... for users, AROA... for roles), never by name alone: a session
//! or key of a deleted user or role finds nothing, and a user or role
//! re-created under the same name is another principal.

use std::sync::Arc;

use ferrokms_authz::Question;
use ferrokms_policy::{Context, Policy, PolicyKind};
use ferrokms_types::AccountId;

use crate::{Caller, Directory, IamError, Principal};

/// A policy that applies to a principal, with a label for traces.
#[derive(Clone)]
pub struct LabelledPolicy {
    /// How traces name the policy (`user inline policy NAME`, a managed policy's ARN).
    pub label: String,
    /// The role the policy plays: identity-based, boundary or session.
    pub kind: PolicyKind,
    /// The parsed policy, shared with the entity that holds it.
    pub policy: Arc<Policy>,
}

impl crate::IamState {
    /// The user a principal is, by unique id: `None` once that user is
    /// deleted, even if another now has its name.
    pub(crate) fn user_of(&self, principal: &Principal) -> Option<&Arc<crate::UserRecord>> {
        let Principal::User {
            account, name, id, ..
        } = principal
        else {
            return None;
        };
        match self.users.get(&crate::name_key(account, name)) {
            Some(u) if u.id == *id => Some(u),
            // Renamed since the session began (UpdateUser): still the same
            // user. Rare, and profiles are cached, so a scan is fine.
            _ => self
                .users
                .values()
                .find(|u| u.account == *account && u.id == *id),
        }
    }

    /// The role behind a session, by unique id (as [`IamState::user_of`]).
    pub(crate) fn role_of(&self, principal: &Principal) -> Option<&Arc<crate::RoleRecord>> {
        let Principal::AssumedRole {
            account,
            role_name,
            role_id,
            ..
        } = principal
        else {
            return None;
        };
        self.roles
            .get(&crate::name_key(account, role_name))
            .filter(|r| r.id == *role_id)
    }
}

impl Directory {
    /// Whether the user or the role behind a session still exists, with
    /// its unique id. Accounts are not deleted (and under `--dev` exist
    /// without a record): a root principal always exists.
    pub fn principal_exists(&self, principal: &Principal) -> bool {
        let state = self.state.read();
        match principal {
            Principal::Root { .. } => true,
            Principal::User { .. } => state.user_of(principal).is_some(),
            Principal::AssumedRole { .. } => state.role_of(principal).is_some(),
        }
    }

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
                // Only the entity's own account's policies ever apply (an
                // attachment across accounts is refused when made).
                if let Some(doc) = state
                    .policies
                    .get(arn)
                    .filter(|p| p.account == *principal.account())
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
            Principal::User { account, .. } => {
                let Some(u) = state.user_of(principal) else {
                    return out;
                };
                add_entity(&format!("user {}", u.name), &u.inline, &u.attached);
                for g in state
                    .groups
                    .values()
                    .filter(|g| g.account == *account && g.has_member(&u.name))
                {
                    add_entity(&format!("group {}", g.name), &g.inline, &g.attached);
                }
            }
            Principal::AssumedRole { .. } => {
                if let Some(r) = state.role_of(principal) {
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
            Principal::User { .. } => state.user_of(principal).and_then(|u| u.boundary.clone()),
            Principal::AssumedRole { .. } => {
                state.role_of(principal).and_then(|r| r.boundary.clone())
            }
        }?;
        // A boundary whose policy is gone (or, in data written before
        // boundaries were checked, of another account) allows nothing:
        // keep it, empty.
        let policy = match state
            .policies
            .get(&arn)
            .filter(|p| p.account == *principal.account())
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
        session: Option<&crate::Session>,
    ) -> Vec<crate::Tag> {
        let state = self.state.read();
        let mut tags: Vec<crate::Tag> = match principal {
            Principal::Root { .. } => Vec::new(),
            Principal::User { .. } => state
                .user_of(principal)
                .map(|u| u.tags.clone())
                .unwrap_or_default(),
            Principal::AssumedRole { .. } => state
                .role_of(principal)
                .map(|r| r.tags.clone())
                .unwrap_or_default(),
        };
        if let Some(s) = session {
            for t in &s.tags {
                tags.retain(|o| !o.key.eq_ignore_ascii_case(&t.key));
                tags.push(t.clone());
            }
        }
        tags
    }

    /// Context keys that describe the caller beyond what the policy engine
    /// derives from its ARN: principal tags, and for a session its issue
    /// time and source identity (from its token).
    pub fn principal_context(
        &self,
        principal: &Principal,
        session: Option<&crate::Session>,
        mut context: Context,
    ) -> Context {
        for t in self.principal_tags(principal, session) {
            let key = format!("aws:PrincipalTag/{}", t.key);
            if !context.contains(&key) {
                context.insert(&key, t.value.as_str());
            }
        }
        if let Some(session) = session {
            // Present for every request made with temporary credentials;
            // and as AWS sets it for temporary credentials obtained without
            // MFA (there is no MFA here): false. Absent for long-term keys.
            if !context.contains("aws:MultiFactorAuthPresent") {
                context.insert("aws:MultiFactorAuthPresent", false);
            }
            if !context.contains("aws:TokenIssueTime") {
                context.insert(
                    "aws:TokenIssueTime",
                    ferrokms_policy::Timestamp::from_epoch_seconds(
                        session.issued_ms.div_euclid(1000),
                    ),
                );
            }
            if let Some(si) = &session.source_identity {
                if !context.contains("aws:SourceIdentity") {
                    context.insert("aws:SourceIdentity", si.as_str());
                }
            }
        }
        context
    }

    /// Session policies of a temporary principal, if any (they cap what
    /// identity policies grant): the inline one, and the managed ones by
    /// ARN as they are now. A managed session policy deleted since is kept,
    /// empty: it allows nothing (a session never gains by it).
    pub fn session_policies(&self, session: &crate::Session) -> Vec<LabelledPolicy> {
        let mut out: Vec<LabelledPolicy> = session
            .inline_policy
            .iter()
            .map(|d| LabelledPolicy {
                label: "session policy 1".to_string(),
                kind: PolicyKind::SessionPolicy,
                policy: d.parsed.clone(),
            })
            .collect();
        if session.policy_arns.is_empty() {
            return out;
        }
        let state = self.state.read();
        for arn in &session.policy_arns {
            let policy = match state
                .policies
                .get(arn)
                .filter(|p| p.account == *session.principal.account())
                .and_then(|p| p.default_doc().cloned())
            {
                Some(doc) => doc.parsed,
                None => Arc::new(
                    Policy::parse(
                        r#"{"Version":"2012-10-17","Statement":[]}"#,
                        &ferrokms_policy::ParseOptions::for_kind(PolicyKind::SessionPolicy),
                    )
                    .expect("a literal empty policy parses"),
                ),
            };
            out.push(LabelledPolicy {
                label: format!("session policy {}", out.len() + 1),
                kind: PolicyKind::SessionPolicy,
                policy,
            });
        }
        out
    }

    /// The principal's side of every authorization decision: its
    /// identity-based policies, boundary and session policies (of the
    /// session, if any), and its own condition keys
    /// (principal tags, aws:PrincipalArn, aws:userid, token issue time...).
    /// The edge builds it once per principal and caches it until the
    /// directory changes.
    pub fn caller_profile(
        &self,
        principal: &Principal,
        partition: &str,
        session: Option<&crate::Session>,
    ) -> ferrokms_authz::CallerProfile {
        use ferrokms_authz::CallerPolicy;
        let mut policies: Vec<CallerPolicy> = self
            .identity_policies(principal)
            .into_iter()
            .chain(self.permissions_boundary(principal))
            .chain(
                session
                    .map(|s| self.session_policies(s))
                    .unwrap_or_default(),
            )
            .map(|p| CallerPolicy {
                label: p.label,
                kind: p.kind,
                policy: p.policy,
            })
            .collect();
        policies.shrink_to_fit();
        let mut context = self.principal_context(principal, session, Context::new());
        let principal = principal.to_request_principal(partition);
        // The principal's global keys (aws:PrincipalArn, aws:userid, ...),
        // built once here instead of on every decision.
        if let Some(p) = &principal {
            for (k, v) in p.context_keys() {
                if !context.contains(k) {
                    context.insert(k, v);
                }
            }
        }
        ferrokms_authz::CallerProfile {
            principal,
            policies,
            context,
        }
    }

    /// A caller outside any request (tools, tests): the principal's
    /// profile, with `facts` as the request-wide keys if given.
    pub fn caller(
        &self,
        principal: &Principal,
        region: &ferrokms_types::Region,
        session: Option<&Arc<crate::Session>>,
        facts: Option<ferrokms_authz::RequestFacts>,
    ) -> Caller {
        let profile = self.caller_profile(principal, region.partition(), session.map(|s| &**s));
        Caller {
            principal: principal.clone(),
            session: session.cloned(),
            authz: ferrokms_authz::Caller {
                account: principal.account().clone(),
                region: region.clone(),
                arn: principal.arn(region.partition()),
                profile: Arc::new(profile),
                context: facts
                    .map(ferrokms_authz::RequestContext::new)
                    .unwrap_or_default(),

                trace: Default::default(),
            },
        }
    }

    /// Authorizes an IAM or STS action on `resource` (an ARN, or `*`)
    /// through the one authorization path. A resource of another account
    /// is refused before any policy is read.
    pub(crate) fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
    ) -> Result<(), IamError> {
        self.authorize_with(caller, action, resource, Context::new())
    }

    /// As [`Directory::authorize`], with the operation's own condition keys.
    pub(crate) fn authorize_with(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        context: Context,
    ) -> Result<(), IamError> {
        let account = resource_account(resource).unwrap_or_else(|| caller.account().clone());
        let (record, outcome) = ferrokms_authz::decide(
            &caller.authz,
            Question::identity(action, resource, &account).with_context(&context),
        )?
        .conclude(None);
        caller.authz.record(record);
        outcome.map_err(IamError::AccessDenied)
    }
}

/// The account of an ARN (`None` for `*` and for ARNs without one).
pub(crate) fn resource_account(arn: &str) -> Option<AccountId> {
    ferrokms_types::Arn::parse(arn).ok()?.account_id()
}

/// The condition keys a user or role adds to a question about itself:
/// `aws:ResourceTag/*` and `iam:ResourceTag/*` for each of its tags, and
/// `iam:PermissionsBoundary` when it has one.
pub(crate) fn entity_keys(tags: &[crate::Tag], boundary: Option<&str>) -> Context {
    let mut ctx = Context::new();
    for t in tags {
        ctx.insert(&format!("aws:ResourceTag/{}", t.key), t.value.as_str());
        ctx.insert(&format!("iam:ResourceTag/{}", t.key), t.value.as_str());
    }
    if let Some(b) = boundary {
        ctx.insert("iam:PermissionsBoundary", b);
    }
    ctx
}

/// The condition keys of a request that sets tags: `aws:RequestTag/*` for
/// each and `aws:TagKeys` (multivalued); absent for a request with none,
/// as on AWS.
pub(crate) fn request_tag_keys(ctx: &mut Context, tags: &[crate::Tag]) {
    if tags.is_empty() {
        return;
    }
    for t in tags {
        ctx.insert(&format!("aws:RequestTag/{}", t.key), t.value.as_str());
    }
    tag_keys(ctx, tags.iter().map(|t| t.key.as_str()));
}

/// `aws:TagKeys`: the tag keys a request names (to set or to remove).
pub(crate) fn tag_keys<'a>(ctx: &mut Context, keys: impl Iterator<Item = &'a str>) {
    ctx.insert_multi(
        "aws:TagKeys",
        keys.map(ferrokms_policy::ContextValue::from).collect(),
    );
}

impl Directory {
    /// The resource an operation on a named user, role or group is
    /// authorized on, with its condition keys (the entity's tags and
    /// boundary), whether or not the entity exists. AWS authorizes on the
    /// ARN the request names and only then looks the entity up, so a caller
    /// without the permission learns nothing of which names exist (it gets
    /// AccessDenied either way); an absent entity's ARN has the default path.
    pub(crate) fn subject(
        &self,
        account: &AccountId,
        owner: crate::ops_owner::Owner,
        name: &str,
    ) -> (String, Context) {
        use crate::ops_owner::Owner;
        match owner {
            Owner::User => match self.find_user(account, name) {
                Some(u) => (u.arn(), entity_keys(&u.tags, u.boundary.as_deref())),
                None => (
                    Self::entity_arn(account, "user", None, name),
                    Context::new(),
                ),
            },
            Owner::Role => match self.find_role(account, name) {
                Some(r) => (r.arn(), entity_keys(&r.tags, r.boundary.as_deref())),
                None => (
                    Self::entity_arn(account, "role", None, name),
                    Context::new(),
                ),
            },
            Owner::Group => match self.find_group(account, name) {
                Some(g) => (g.arn(), Context::new()),
                None => (
                    Self::entity_arn(account, "group", None, name),
                    Context::new(),
                ),
            },
        }
    }
}

#[cfg(test)]
mod rules;
#[cfg(test)]
mod tests;
