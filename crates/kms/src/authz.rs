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

use ferrokms_policy::{
    evaluate_with, explain, Action, CombineMode, Context, ContextValue, ContextValues, Decision,
    EvaluationOptions, ParseOptions, Policy, PolicyInput, PolicyKind, Request, RequestPrincipal,
};

use crate::grants::{GrantUse, IdentityCaps};
use crate::model::KeyRecord;
use crate::state::Key;
use crate::{Caller, Kms, KmsError};

/// One identity-side policy of the caller (identity-based, permissions
/// boundary or session policy), parsed once by whoever owns it.
#[derive(Clone)]
pub struct CallerPolicy {
    pub label: String,
    pub kind: PolicyKind,
    pub policy: Arc<Policy>,
}

impl std::fmt::Debug for CallerPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallerPolicy({:?}, {})", self.kind, self.label)
    }
}

/// What authorization needs to know about the caller beyond its ARN: its
/// identity-side policies and the request-wide global condition keys
/// (`aws:SourceIp`, `aws:SecureTransport`, ...). Supplied by the edge.
#[derive(Debug, Default)]
pub struct CallerIdentity {
    /// What is true of the principal whatever the request: shared between
    /// requests (the edge caches it until the identities change).
    pub profile: Arc<CallerProfile>,
    /// Keys of this request alone (`aws:SourceIp`, `aws:CurrentTime`,
    /// `kms:ViaService`...), built only if a policy reads one.
    pub context: RequestContext,
    /// Every authorization decision taken for this request, in order, for
    /// the audit record and `policy explain`.
    pub trace: parking_lot::Mutex<Vec<AuthzRecord>>,
}

/// What a request itself says about the global condition keys: where it
/// came from, over what, when, and through which service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// The peer address (`aws:SourceIp`).
    pub source_ip: Option<std::net::IpAddr>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
    /// `aws:CurrentTime` and `aws:EpochTime`, in seconds.
    pub epoch_seconds: i64,
    /// `kms:ViaService` (and `aws:ViaAWSService` true) when a trusted
    /// service principal made the call for the caller.
    pub via_service: Option<String>,
}

/// The request-wide condition keys of one request. Built on first use:
/// the default key policy reads none of them, and building them cost about
/// 3% of an Encrypt request (four keys, their strings and a timestamp).
#[derive(Debug, Default, Clone)]
pub struct RequestContext {
    /// `None`: no request-wide keys at all (tests, analyses of stored data).
    facts: Option<RequestFacts>,
    built: std::sync::OnceLock<Context>,
}

impl RequestContext {
    pub fn new(facts: RequestFacts) -> Self {
        RequestContext {
            facts: Some(facts),
            built: std::sync::OnceLock::new(),
        }
    }

    /// The keys as a policy context.
    pub fn get(&self) -> &Context {
        self.built.get_or_init(|| {
            let mut context = Context::new();
            let Some(f) = &self.facts else {
                return context;
            };
            if let Some(ip) = f.source_ip {
                context.insert("aws:SourceIp", ip);
            }
            // True only for the listener's own TLS (`serve --tls-cert`): a
            // TLS proxy in front of a plain listener is invisible here.
            context.insert("aws:SecureTransport", f.secure_transport);
            context.insert(
                "aws:CurrentTime",
                ferrokms_policy::Timestamp::from_epoch_seconds(f.epoch_seconds),
            );
            context.insert("aws:EpochTime", f.epoch_seconds);
            if let Some(service) = &f.via_service {
                context.insert("kms:ViaService", service.as_str());
                context.insert("aws:ViaAWSService", true);
            }
            context
        })
    }

    /// The service that made the call for the caller, if any.
    pub fn via_service(&self) -> Option<&str> {
        self.facts.as_ref()?.via_service.as_deref()
    }
}

/// The principal's side of authorization: who it is, its identity-side
/// policies, and its own condition keys (principal tags, source identity,
/// token issue time).
#[derive(Debug, Default)]
pub struct CallerProfile {
    /// `None`: derived from the caller's ARN.
    pub principal: Option<RequestPrincipal>,
    pub policies: Vec<CallerPolicy>,
    pub context: Context,
}

/// One authorization decision of a request: what was asked, the outcome,
/// and the statements (or grant) that decided it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthzRecord {
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// `allow`, `allow (grant GRANT_ID)`, or the AccessDenied reason clause.
    pub decision: String,
    /// The statements that applied: `policy label #index (Sid) Effect`.
    pub statements: Vec<String>,
}

/// The decision text of an allow that no grant decided.
pub const PLAIN_ALLOW: &str = "allow";

impl AuthzRecord {
    /// The decisions of an audit record (`ferrokmsAuthorization`), with what
    /// the writer leaves out to keep records short put back: a decision's
    /// `resource` when it is the record's first `resources` ARN, and its
    /// `decision` when it is [`PLAIN_ALLOW`]. Entries that are not
    /// decisions are skipped.
    pub fn from_audit(record: &serde_json::Value) -> Vec<AuthzRecord> {
        let first_arn = record["resources"][0]["ARN"].as_str().unwrap_or("");
        let Some(trace) = record["ferrokmsAuthorization"].as_array() else {
            return Vec::new();
        };
        trace
            .iter()
            .filter_map(|d| {
                let allowed = d["allowed"].as_bool()?;
                Some(AuthzRecord {
                    action: d["action"].as_str()?.to_string(),
                    resource: d["resource"].as_str().unwrap_or(first_arn).to_string(),
                    allowed,
                    decision: match d["decision"].as_str() {
                        Some(text) => text.to_string(),
                        None if allowed => PLAIN_ALLOW.to_string(),
                        None => return None,
                    },
                    statements: d["statements"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

fn applied_statements(eval: &ferrokms_policy::Evaluation<'_>) -> Vec<String> {
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
                        ferrokms_types::concat(&[p.id, " #", index, " (", sid, ") ", effect])
                    }
                    None => ferrokms_types::concat(&[p.id, " #", index, " ", effect]),
                });
            }
        }
    }
    out
}

/// Answers whether a principal named in a key policy exists. Implemented by
/// the edge over the identity directory; without one, every principal is
/// taken to exist.
pub trait PrincipalDirectory: Send + Sync {
    fn account_exists(&self, account: &str) -> bool;
    /// An IAM user or role, by ARN (path included).
    fn entity_exists(&self, arn: &str) -> bool;
}

const INVALID_PRINCIPALS: &str = "Policy contains a statement with one or more invalid principals.";
const LOCKOUT: &str =
    "The new key policy will not allow you to update the key policy in the future.";

/// The operations whose permission works across accounts (kms-spec §1.1
/// rule 5); for every other action, permission from another account's key
/// policy has no effect.
pub(crate) const CROSS_ACCOUNT_ACTIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "DescribeKey",
    "GetPublicKey",
    "CreateGrant",
    "ListGrants",
    "RevokeGrant",
    "RetireGrant",
    "GetKeyRotationStatus",
];

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

fn merge(into: &mut Context, from: &Context) {
    for e in from.iter() {
        if into.contains(&e.name) {
            continue;
        }
        match &e.values {
            ContextValues::Single(v) => into.insert(&e.name, v.clone()),
            ContextValues::Multi(vs) => into.insert_multi(&e.name, vs.clone()),
        }
    }
}

impl Caller {
    fn request_principal(&self) -> Result<RequestPrincipal, KmsError> {
        match &self.identity.profile.principal {
            Some(p) => Ok(p.clone()),
            None => RequestPrincipal::from_arn(&self.arn).map_err(|e| {
                KmsError::Internal(format!("caller ARN {} is not a principal: {e}", self.arn))
            }),
        }
    }
}

/// The lowercased context keys the policies of a decision can read.
fn needed_keys<'a>(key_policy: &'a Policy, caller_policies: &'a [CallerPolicy]) -> Vec<&'a str> {
    let mut out: Vec<&str> = key_policy
        .referenced_context_keys()
        .iter()
        .map(String::as_str)
        .collect();
    for p in caller_policies {
        for k in p.policy.referenced_context_keys() {
            if !out.contains(&k.as_str()) {
                out.push(k);
            }
        }
    }
    out
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
    put(
        "aws:RequestedRegion",
        ContextValue::String(caller.region.to_string()),
    );
    put(
        "aws:ResourceAccount",
        ContextValue::String(r.addr.account.to_string()),
    );
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
        let same_account = record.addr.account == caller.account;
        if !same_account && !CROSS_ACCOUNT_ACTIONS.contains(&action) {
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:{action} on resource: {key_arn} because no resource-based policy allows the kms:{action} action",
                caller.arn
            )));
        }
        // Only the context keys some involved policy can read are built:
        // the default key policy reads none, so the common path builds none.
        let needed = needed_keys(key_policy, &caller.identity.profile.policies);
        let mut ctx = Context::new();
        if !needed.is_empty() {
            let want = |k: &str| needed.iter().any(|n| n.eq_ignore_ascii_case(k));
            merge_wanted(&mut ctx, &extra, &want);
            key_context_into(&mut ctx, self, caller, record, &want);
            merge_wanted(&mut ctx, caller.identity.context.get(), &want);
            merge_wanted(&mut ctx, &caller.identity.profile.context, &want);
        }
        let op_context = extra;
        let action_name = ferrokms_types::concat(&["kms:", action]);
        let action_id =
            Action::parse(&action_name).map_err(|e| KmsError::Internal(e.to_string()))?;
        let request = Request::in_account(
            caller.request_principal()?,
            action_id,
            &key_arn,
            ferrokms_policy::AccountId::parse(record.addr.account.as_str()),
        )
        .with_context(ctx);
        // Principal keys come with the caller's profile when the edge built
        // it (once per principal); otherwise derive them here.
        let request = if needed.is_empty() || caller.identity.profile.principal.is_some() {
            request
        } else {
            request.with_principal_context()
        };
        let mut inputs = Vec::with_capacity(1 + caller.identity.profile.policies.len());
        inputs.push(PolicyInput::new(
            "key policy",
            PolicyKind::ResourceBased,
            key_policy,
        ));
        for p in &caller.identity.profile.policies {
            inputs.push(PolicyInput::new(&p.label, p.kind, &p.policy));
        }
        let eval = evaluate_with(
            &request,
            &inputs,
            &EvaluationOptions {
                mode: CombineMode::ResourcePolicyRequired,
            },
        );
        let statements = applied_statements(&eval);
        let result = match eval.decision {
            Decision::Allow => Ok(PLAIN_ALLOW),
            // Grants allow where policies merely did not; explicit denies
            // still win, and the caller's own policies cap a grant to its
            // role or account (IdentityCaps::admit).
            Decision::ImplicitDeny { .. }
                if self.grant_allows(
                    caller,
                    record,
                    action,
                    &op_context,
                    IdentityCaps::of(&eval, &request.principal),
                    grants,
                ) =>
            {
                Ok("allow (grant)")
            }
            ref d => Err(KmsError::AccessDenied(explain::access_denied_message(&request, d).unwrap_or_else(|| {
                format!("User: {} is not authorized to perform: kms:{action} on resource: {key_arn}", caller.arn)
            }))),
        };
        let decision = match &result {
            Ok(d) => (*d).to_owned(),
            Err(_) => eval
                .decision
                .denial_reason(&action_name)
                .unwrap_or_default(),
        };
        caller.identity.record(AuthzRecord {
            action: action_name,
            resource: key_arn,
            allowed: result.is_ok(),
            decision,
            statements,
        });
        result.map(|_| ())
    }

    /// Authorizes an operation that has no key (CreateKey, ListKeys,
    /// ListAliases, GenerateRandom, the alias half of alias operations):
    /// identity policies only, on `resource` (`*` or an alias ARN).
    /// Identity-side policies alone (no key policy) on `resource`: the
    /// request as evaluated, the decision, and the statements that applied.
    fn identity_decision(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        extra: Context,
    ) -> Result<(Request, Decision, Vec<String>), KmsError> {
        let mut ctx = extra;
        ctx.insert("aws:RequestedRegion", caller.region.as_str());
        merge(&mut ctx, caller.identity.context.get());
        merge(&mut ctx, &caller.identity.profile.context);
        let action_id = Action::parse(&ferrokms_types::concat(&["kms:", action]))
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let request = Request::in_account(
            caller.request_principal()?,
            action_id,
            resource,
            ferrokms_policy::AccountId::parse(caller.account.as_str()),
        )
        .with_context(ctx)
        .with_principal_context();
        let inputs: Vec<PolicyInput<'_>> = caller
            .identity
            .profile
            .policies
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
        let statements = applied_statements(&eval);
        let decision = eval.decision.clone();
        drop(eval);
        Ok((request, decision, statements))
    }

    pub(crate) fn authorize_identity_only(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        extra: Context,
    ) -> Result<(), KmsError> {
        let (request, decision, statements) =
            self.identity_decision(caller, action, resource, extra)?;
        let action_name = ferrokms_types::concat(&["kms:", action]);
        caller.identity.record(AuthzRecord {
            allowed: decision.is_allowed(),
            decision: decision
                .denial_reason(&action_name)
                .unwrap_or_else(|| PLAIN_ALLOW.to_string()),
            action: action_name,
            resource: resource.to_string(),
            statements,
        });
        match decision {
            Decision::Allow => Ok(()),
            ref d => Err(KmsError::AccessDenied(explain::access_denied_message(&request, d).unwrap_or_else(|| {
                format!("User: {} is not authorized to perform: kms:{action} on resource: {resource}", caller.arn)
            }))),
        }
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
            let blocks = st.condition().map(|c| c.blocks()).unwrap_or(&[]);
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

impl CallerIdentity {
    fn record(&self, r: AuthzRecord) {
        self.trace.lock().push(r);
    }

    /// The decisions recorded so far for this request.
    pub fn decisions(&self) -> Vec<AuthzRecord> {
        self.trace.lock().clone()
    }
}

impl Kms {
    /// An explicit deny of `action` in the caller's identity-side policies,
    /// as an AccessDenied message. Operations that policies do not allow
    /// (RetireGrant by the grant's own principals) can still be denied.
    pub(crate) fn identity_explicit_deny(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
    ) -> Option<String> {
        let (request, decision, _) = self
            .identity_decision(caller, action, resource, Context::new())
            .ok()?;
        match decision {
            d @ Decision::ExplicitDeny { .. } => explain::access_denied_message(&request, &d),
            _ => None,
        }
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
        let before = caller.identity.trace.lock().len();
        let result = self.authorize_record(caller, &k.record, policy, action, context);
        let recorded = caller.identity.trace.lock().get(before).cloned();
        match (result, recorded) {
            (_, Some(r)) => Ok(r),
            // Refused before any policy was read (an action that does not
            // work across accounts).
            (Err(KmsError::AccessDenied(_)), None) => Ok(AuthzRecord {
                action: format!("kms:{action}"),
                resource: k.record.arn(),
                allowed: false,
                decision: format!(
                    "because no resource-based policy allows the kms:{action} action"
                ),
                statements: Vec::new(),
            }),
            (Err(e), None) => Err(e),
            (Ok(()), None) => Err(KmsError::Internal("no decision was recorded".into())),
        }
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
