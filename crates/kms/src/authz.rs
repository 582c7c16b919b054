//! KMS authorization: the key policy first, identity policies only where the
//! key policy delegates to the caller's account, explicit denies everywhere,
//! cross-account calls needing both sides.
//!
//! The generic combination (explicit deny wins; a key-policy statement naming
//! the caller allows on its own; one naming the account delegates to the
//! caller's identity policies, which the root user holds implicitly;
//! boundaries and session policies cap) is the policy engine's
//! `CombineMode::ResourcePolicyRequired`. What is KMS's own lives here: which
//! operations may cross accounts, the IAM-only operations, the request
//! context, and AWS's AccessDenied texts.

use std::sync::Arc;

use ferrokms_authz::{Question, ResourcePolicy};
use ferrokms_policy::{
    CombineMode, Context, ContextValue, Decision, ParseOptions, Policy, PolicyKind,
};

use crate::grants::GrantUse;
use crate::model::KeyRecord;
use crate::state::Key;
use crate::{Caller, Kms, KmsError};

pub use ferrokms_authz::{
    AuthzRecord, CallerPolicy, CallerProfile, RequestContext, RequestFacts, PLAIN_ALLOW,
};

/// Answers whether a principal named in a key policy exists. Implemented by
/// the edge over the identity directory; without one, every principal is
/// taken to exist.
pub trait PrincipalDirectory: Send + Sync {
    /// Whether the account exists (a key policy may name only existing accounts).
    fn account_exists(&self, account: &str) -> bool;
    /// An IAM user or role, by ARN (path included).
    fn entity_exists(&self, arn: &str) -> bool;
}

const INVALID_PRINCIPALS: &str = "Policy contains a statement with one or more invalid principals.";
const LOCKOUT: &str =
    "The new key policy will not allow you to update the key policy in the future.";

/// Parses a key policy the way KMS reads one: every statement needs a
/// principal; statements without Action or Resource never match.
pub(crate) fn parse_key_policy(text: &str) -> Result<Policy, KmsError> {
    Policy::parse(text, &ParseOptions::for_kind(PolicyKind::ResourceBased))
        .map_err(|e| KmsError::MalformedPolicyDocument(e.to_string()))
}

/// A policy that matches nothing: a statement without Action never applies.
const MATCHES_NOTHING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"}}]}"#;

/// The parsed policy of a stored key. A stored text that no longer parses
/// (written before validation existed) allows nothing rather than failing
/// every request.
pub(crate) fn load_key_policy(text: &str) -> Arc<Policy> {
    match parse_key_policy(text) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            tracing::warn!(error = %e, "stored key policy does not parse; it allows nothing");
            Arc::new(
                Policy::parse(MATCHES_NOTHING, &ParseOptions::default())
                    .expect("the built-in match-nothing policy parses (unit-tested)"),
            )
        }
    }
}

/// Adds the key-resource condition keys that `want` asks for, building
/// only those.
fn key_context_into(
    ctx: &mut Context,
    kms: &Kms,
    caller: &Caller,
    r: &KeyRecord,
    want: &dyn Fn(&str) -> bool,
) {
    let mut put = |name: &str, value: ContextValue| {
        if want(name) && !ctx.contains(name) {
            ctx.insert(name, value);
        }
    };
    put(
        "kms:CallerAccount",
        ContextValue::String(caller.account.to_string()),
    );
    put(
        "kms:KeySpec",
        ContextValue::String(r.key_spec.as_str().into()),
    );
    put(
        "kms:CustomerMasterKeySpec",
        ContextValue::String(r.key_spec.as_str().into()),
    );
    put(
        "kms:KeyUsage",
        ContextValue::String(r.key_usage.as_str().into()),
    );
    put(
        "kms:CustomerMasterKeyUsage",
        ContextValue::String(r.key_usage.as_str().into()),
    );
    put(
        "kms:KeyOrigin",
        ContextValue::String(r.origin.as_str().into()),
    );
    put("kms:MultiRegion", ContextValue::Bool(r.multi_region));
    // Absent for single-Region keys.
    if let Some(t) = r.multi_region_key_type() {
        put(
            "kms:MultiRegionKeyType",
            ContextValue::String(t.as_str().into()),
        );
    }
    for t in &r.tags {
        let name = format!("aws:ResourceTag/{}", t.key);
        if want(&name) && !ctx.contains(&name) {
            ctx.insert(&name, t.value.as_str());
        }
    }
    if want("kms:ResourceAliases") && !ctx.contains("kms:ResourceAliases") {
        let aliases: Vec<ContextValue> = kms
            .state
            .read()
            .aliases
            .values()
            .filter(|a| a.target == r.addr)
            .map(|a| ContextValue::String(a.addr.name.to_string()))
            .collect();
        ctx.insert_multi("kms:ResourceAliases", aliases);
    }
}

impl Kms {
    /// Authorizes `kms:ACTION` on a key, with the operation's own condition
    /// keys in `extra`.
    pub(crate) fn authorize_key(
        &self,
        caller: &Caller,
        key: &Key,
        action: &str,
        extra: Context,
    ) -> Result<(), KmsError> {
        self.authorize_record(caller, &key.record, &key.policy, action, extra)
    }

    /// As [`Kms::authorize_key`], against a given policy (the lockout check
    /// evaluates a policy before it is stored).
    pub(crate) fn authorize_record(
        &self,
        caller: &Caller,
        record: &KeyRecord,
        key_policy: &Policy,
        action: &str,
        extra: Context,
    ) -> Result<(), KmsError> {
        self.decide(caller, record, key_policy, action, extra, GrantUse::Any)
    }

    /// As [`Kms::authorize_key`], choosing which grants may allow where the
    /// policies do not (CreateGrant's narrowing rule).
    pub(crate) fn authorize_key_with(
        &self,
        caller: &Caller,
        key: &Key,
        action: &str,
        extra: Context,
        grants: GrantUse<'_>,
    ) -> Result<(), KmsError> {
        self.decide(caller, &key.record, &key.policy, action, extra, grants)
    }

    /// The one authorization path (`ferrokms_authz::decide`) with the key
    /// policy as the resource policy that must admit the caller, then
    /// KMS's own addition: a grant allows where the policies merely did
    /// not (explicit denies still win).
    fn decide(
        &self,
        caller: &Caller,
        record: &KeyRecord,
        key_policy: &Policy,
        action: &str,
        extra: Context,
        grants: GrantUse<'_>,
    ) -> Result<(), KmsError> {
        let key_arn = record.arn();
        let action_name = ferrokms_textfast::concat(&["kms:", action]);
        // Whether this action may reach the key at all: always in its own
        // account; across accounts only if the catalog says so.
        let reachable = record.addr.account == caller.account
            || crate::catalog::action_crosses_accounts(action);
        let resource_keys = |ctx: &mut Context, want: &dyn Fn(&str) -> bool| {
            key_context_into(ctx, self, caller, record, want);
        };
        let verdict = ferrokms_authz::decide(
            caller,
            Question {
                action: &action_name,
                resource: &key_arn,
                resource_account: &record.addr.account,
                cross_account: reachable,
                resource_policy: Some(ResourcePolicy {
                    label: "key policy",
                    policy: key_policy,
                    mode: CombineMode::ResourcePolicyRequired,
                }),
                context: Some(&extra),
                resource_keys: Some(&resource_keys),
            },
        )?;
        // Grants allow where policies merely did not; explicit denies still
        // win, and the caller's own policies cap a grant to its role or
        // account (ferrokms_authz::grants::admits).
        let by_grant = matches!(verdict.decision, Decision::ImplicitDeny { .. })
            && reachable
            && self.grant_allows(
                caller,
                record,
                action,
                &extra,
                verdict.identity_side,
                grants,
            );
        let (record, outcome) = verdict.conclude(by_grant.then_some("allow (grant)"));
        caller.record(record);
        outcome.map_err(KmsError::AccessDenied)
    }

    /// Identity-side policies alone (no key policy) on `resource`, in the
    /// caller's account: CreateKey, ListKeys, ListAliases, GenerateRandom,
    /// the alias half of alias operations.
    pub(crate) fn identity_decision(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        extra: Context,
    ) -> Result<ferrokms_authz::Verdict, KmsError> {
        let action_name = ferrokms_textfast::concat(&["kms:", action]);
        Ok(ferrokms_authz::decide(
            caller,
            Question::identity(&action_name, resource, &caller.account).with_context(&extra),
        )?)
    }

    pub(crate) fn authorize_identity_only(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        extra: Context,
    ) -> Result<(), KmsError> {
        let (record, outcome) = self
            .identity_decision(caller, action, resource, extra)?
            .conclude(None);
        caller.record(record);
        outcome.map_err(KmsError::AccessDenied)
    }

    /// The extra `kms:TagResource` check of CreateKey with tags: AWS words it
    /// without an `on resource:` clause.
    pub(crate) fn authorize_create_key_tags(
        &self,
        caller: &Caller,
        extra: Context,
    ) -> Result<(), KmsError> {
        match self.authorize_identity_only(caller, "TagResource", "*", extra) {
            Ok(()) => Ok(()),
            Err(KmsError::AccessDenied(m)) => {
                Err(KmsError::AccessDenied(m.replacen(" on resource: *", "", 1)))
            }
            Err(e) => Err(e),
        }
    }
}

impl Kms {
    /// Validates a key policy text for CreateKey / PutKeyPolicy: size,
    /// grammar (a principal in every statement), principals that exist, and
    /// KMS's refusal of ForAllValues with single-valued condition keys.
    pub(crate) fn validate_key_policy(&self, text: &str) -> Result<Arc<Policy>, KmsError> {
        crate::ops::check_policy_size(text)?;
        let policy = parse_key_policy(text)?;
        for st in policy.statements() {
            let blocks = st
                .condition()
                .map(ferrokms_policy::Condition::blocks)
                .unwrap_or(&[]);
            for block in blocks {
                if block.operator().set != Some(ferrokms_policy::SetOperator::ForAllValues) {
                    continue;
                }
                let single_valued = block.entries().iter().any(|e| {
                    let key = e.key().as_str().to_ascii_lowercase();
                    key.starts_with("kms:encryptioncontext:") || key.starts_with("aws:requesttag/")
                });
                if single_valued {
                    return Err(KmsError::MalformedPolicyDocument(
                        "OverlyPermissiveCondition: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified encryption context or tag or with an unspecified encryption context or tag. To fix, remove ForAllValues.".into(),
                    ));
                }
            }
        }
        if let Some(dir) = self.principals.read().clone() {
            for st in policy.statements() {
                let Some(p) = st.principal() else { continue };
                let ferrokms_policy::PrincipalSpec::Typed(entries) = p.spec() else {
                    continue;
                };
                for e in entries {
                    for v in e.values() {
                        use ferrokms_policy::PrincipalId as P;
                        let ok = match v.id() {
                            P::Account(a) => dir.account_exists(a.as_str()),
                            P::User(arn) => dir.entity_exists(arn),
                            P::Role { arn, .. } => dir.entity_exists(arn),
                            _ => true,
                        };
                        if !ok {
                            return Err(KmsError::MalformedPolicyDocument(
                                INVALID_PRINCIPALS.into(),
                            ));
                        }
                    }
                }
            }
        }
        Ok(Arc::new(policy))
    }

    /// The lockout safety check: the caller must still be allowed to call
    /// PutKeyPolicy under the new policy (its identity policies counting).
    pub(crate) fn check_lockout(
        &self,
        caller: &Caller,
        record: &KeyRecord,
        new_policy: &Policy,
        bypass: Option<bool>,
    ) -> Result<(), KmsError> {
        if bypass == Some(true) {
            return Ok(());
        }
        let mut cond = Context::new();
        if let Some(b) = bypass {
            cond.insert("kms:BypassPolicyLockoutSafetyCheck", b);
        }
        match self.authorize_record(caller, record, new_policy, "PutKeyPolicy", cond) {
            Ok(()) => Ok(()),
            Err(KmsError::AccessDenied(_)) => {
                Err(KmsError::MalformedPolicyDocument(LOCKOUT.into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Sets the identity directory that key-policy principals are checked against.
    pub fn set_principal_directory(&self, dir: Arc<dyn PrincipalDirectory>) {
        *self.principals.write() = Some(dir);
    }
}

/// What-if analysis (`ferrokms policy simulate`, `ferrokms key access`):
/// the decision a request would get, taken exactly as a request takes it,
/// without performing anything.
impl Kms {
    /// The decision for `kms:ACTION` (with or without the `kms:` prefix) by
    /// `caller` on `key` (id, ARN, alias name or alias ARN), with `context`
    /// as the operation's own condition keys: the recorded [`AuthzRecord`],
    /// allowed or denied. Errors only when the key or action is unknown.
    pub fn simulate(
        &self,
        caller: &Caller,
        key: &str,
        action: &str,
        context: Context,
    ) -> Result<AuthzRecord, KmsError> {
        self.simulate_with(caller, key, action, context, None)
    }

    /// As [`Kms::simulate`], against `key_policy` instead of the stored one
    /// (`key access` evaluates variants of the policy).
    pub fn simulate_with(
        &self,
        caller: &Caller,
        key: &str,
        action: &str,
        mut context: Context,
        key_policy: Option<&Policy>,
    ) -> Result<AuthzRecord, KmsError> {
        let action = action.strip_prefix("kms:").unwrap_or(action);
        let Some(action) = crate::lint::KMS_ACTIONS
            .iter()
            .find(|a| a.eq_ignore_ascii_case(action))
        else {
            return Err(KmsError::Validation(format!(
                "'{action}' is not a KMS action"
            )));
        };
        let key_ref = crate::ids::KeyRef::parse(
            key,
            &caller.account,
            &caller.region,
            crate::ids::Accepts::KeyOrAlias,
        )?;
        if let crate::ids::KeyRef::Alias(a) = &key_ref {
            context.insert("kms:RequestAlias", a.name.as_str());
        }
        let k = self.lookup(&key_ref)?;
        let policy = key_policy.unwrap_or(&k.policy);
        let before = caller.trace.len();
        let result = self.authorize_record(caller, &k.record, policy, action, context);
        let recorded = caller.trace.get(before);
        // Every decision is recorded, a refusal before any policy was read
        // (another account's key, an action that cannot cross) included.
        match (result, recorded) {
            (_, Some(r)) => Ok(r),
            (Err(e), None) => Err(e),
            (Ok(()), None) => Err(KmsError::Internal("no decision was recorded".into())),
        }
    }

    /// Authorizes the reads an analysis of a key stands for (the server's
    /// SimulateKeyRequest and ListKeyAccess: `GetKeyPolicy`, `ListGrants`),
    /// each on the one authorization path as the operation of that name
    /// would be, and returns the key's ARN. A key of another account is
    /// refused before it is looked up (root included): the decision is
    /// recorded as another account's resource, whatever that account holds.
    ///
    /// # Errors
    ///
    /// AccessDenied (recorded in the caller's trace), a malformed key id,
    /// an unknown key of the caller's account.
    pub fn authorize_key_reads(
        &self,
        caller: &Caller,
        key: &str,
        actions: &[&str],
    ) -> Result<String, KmsError> {
        let key_ref = crate::ids::KeyRef::parse(
            key,
            &caller.account,
            &caller.region,
            crate::ids::Accepts::KeyOrAlias,
        )?;
        let (account, arn) = match &key_ref {
            crate::ids::KeyRef::Key(k) => (&k.account, k.arn()),
            crate::ids::KeyRef::Alias(a) => (&a.account, a.arn()),
        };
        if *account != caller.account {
            let action = ferrokms_textfast::concat(&["kms:", actions.first().unwrap_or(&"")]);
            let verdict =
                ferrokms_authz::decide(caller, Question::identity(&action, &arn, account))?;
            let (record, outcome) = verdict.conclude(None);
            caller.record(record);
            outcome.map_err(KmsError::AccessDenied)?;
            return Err(KmsError::Internal(
                "another account's key was not refused".into(),
            ));
        }
        let mut context = Context::new();
        if let crate::ids::KeyRef::Alias(a) = &key_ref {
            context.insert("kms:RequestAlias", a.name.as_str());
        }
        let k = self.lookup(&key_ref)?;
        for action in actions {
            self.authorize_key(caller, &k, action, context.clone())?;
        }
        Ok(k.record.arn())
    }

    /// The key a reference names (ARN and parsed policy), for analysis.
    pub fn key_policy_snapshot(
        &self,
        caller: &Caller,
        key: &str,
    ) -> Result<(String, Arc<Policy>), KmsError> {
        let key_ref = crate::ids::KeyRef::parse(
            key,
            &caller.account,
            &caller.region,
            crate::ids::Accepts::KeyOrAlias,
        )?;
        let k = self.lookup(&key_ref)?;
        Ok((k.record.arn(), k.policy.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unparseable_stored_policy_allows_nothing_instead_of_failing() {
        let p = load_key_policy("not json");
        assert_eq!(p.statements().len(), 1);
    }
}
