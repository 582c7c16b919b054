//! The what-if answer of `ferrokms policy simulate`, in one place for the
//! command and for the server's `FerrokmsService.SimulateKeyRequest`
//! (`analysis_api`): the decision KMS's authorization takes for a request
//! that is not performed ([`Kms::simulate`]: key policy, delegation,
//! identity policies, boundary, session policies, grants and grant tokens,
//! the cross-account rule), AWS's AccessDenied message, the statements that
//! decided, and what would allow it: the statement that would allow but for
//! its condition, with the failing entry and value
//! ([`condition_failures`]), else the smallest changes
//! (`ferrokms_kms::explain::suggest`). Both print [`Simulation`], so their
//! wording cannot drift apart.

use ferrokms_iam::{Directory, Principal};
use ferrokms_kms::authz::{AuthzRecord, CallerProfile};
use ferrokms_kms::explain::{access_denied_message, suggest, AppliedStatement};
use ferrokms_kms::grants::GrantTokenReport;
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::{Context, ContextValue, ParseOptions, Policy, PolicyKind};
use ferrokms_types::{AccountId, Region};
use serde_json::{json, Value};

/// Why a simulation could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// The principal or a context value is not well formed.
    #[error("{0}")]
    Input(String),
    /// The principal names no user or role of the directory.
    #[error("{0}")]
    NotFound(String),
    /// KMS refused the question (unknown key or action...).
    #[error("{0}")]
    Kms(#[from] KmsError),
}

/// The answer to one simulated request, as `policy simulate` prints it.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Whether the request would be allowed.
    pub allowed: bool,
    /// The caller's ARN (a role's session ARN for a role).
    pub principal: String,
    /// The role of a session.
    pub role_arn: Option<String>,
    /// `kms:ACTION`.
    pub action: String,
    /// The key's ARN.
    pub resource: String,
    /// The decision's words (`allow`, `allow (grant)`, `implicit deny`...).
    pub decision: String,
    /// AWS's AccessDenied message, for a denial.
    pub message: Option<String>,
    /// The statements that decided.
    pub statements: Vec<String>,
    /// The statements that matched without deciding.
    pub matched_without_effect: Vec<String>,
    /// What would allow a denied request.
    pub suggestions: Vec<String>,
    /// What each grant token given means for the request.
    pub grant_tokens: Vec<GrantTokenReport>,
    /// Set when a grant token is invalid: the request would be refused
    /// with InvalidGrantTokenException, and this is why.
    pub invalid_grant_token: Option<String>,
}

/// The last line of a search for failing conditions cut short by its
/// budget, before the number of evaluations.
pub const SEARCH_STOPPED: &str = "(the search for failing conditions stopped after";

/// How many re-evaluations [`condition_failures`] may make for an answer
/// given over the API (`SimulateKeyRequest`); the CLI's is unbounded.
pub const API_MAX_EVALUATIONS: usize = 64;

/// How [`condition_failures`] searches: where the context came from, and
/// its budget of re-evaluations.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    /// Where the request's context values came from.
    pub from: Given,
    /// The most re-evaluations (`usize::MAX`: every candidate).
    pub max_evaluations: usize,
}

/// One simulated request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The key: id, ARN, alias name or alias ARN (a bare id or alias name
    /// in the caller's account).
    pub key: &'a str,
    /// `kms:ACTION` or `ACTION`.
    pub action: &'a str,
    /// The request's condition keys, `KEY=VALUE` (a key repeated for a
    /// multivalued one).
    pub given: &'a [String],
    /// The grant tokens the request carries.
    pub tokens: &'a [String],
    /// The most re-evaluations the search for a failing condition may make
    /// ([`condition_failures`]).
    pub max_evaluations: usize,
}

/// Simulates `request` by `caller`; `role_arn` is the role of a session
/// caller.
///
/// # Errors
///
/// A context pair without `=`, an unknown key or action.
pub fn simulate(
    kms: &Kms,
    region: &Region,
    caller: &Caller,
    role_arn: Option<String>,
    request: Request<'_>,
) -> Result<Simulation, SimulateError> {
    let Request {
        key,
        action,
        given,
        tokens,
        max_evaluations,
    } = request;
    let context = parse_context(given)?;
    let record = kms.simulate(caller, key, action, context.clone())?;
    // A request that carries grant tokens is refused outright when one is
    // invalid (InvalidGrantTokenException); otherwise each token's grant is
    // explained (grants already count in the decision above).
    let tokens: Vec<_> = tokens
        .iter()
        .map(|t| kms.grant_token_report(t, caller, &record.resource, &record.action, &context))
        .collect();
    let invalid_grant_token = tokens
        .iter()
        .find(|t| !t.valid)
        .map(|t| t.reasons.join("; "));
    if invalid_grant_token.is_some() {
        return Ok(Simulation {
            allowed: false,
            principal: caller.arn.clone(),
            role_arn,
            action: record.action.clone(),
            resource: record.resource.clone(),
            decision: record.decision.clone(),
            message: None,
            statements: Vec::new(),
            matched_without_effect: Vec::new(),
            suggestions: Vec::new(),
            grant_tokens: tokens,
            invalid_grant_token,
        });
    }
    // A statement that would allow the request but for its condition: say
    // which condition failed and what the request lacks, rather than
    // suggesting to name the principal (it is named already).
    let condition_failures =
        if record.allowed || matches!(record.reason, ferrokms_authz::Reason::ExplicitDeny(_)) {
            Vec::new()
        } else {
            condition_failures(
                kms,
                region,
                caller,
                &record,
                &context,
                given,
                Search {
                    from: Given::CommandLine,
                    max_evaluations,
                },
            )?
        };
    // A search cut short before it found a statement leaves only its
    // note: the smallest changes come first then.
    let cut_short =
        condition_failures.len() == 1 && condition_failures[0].starts_with(SEARCH_STOPPED);
    let suggestions = if condition_failures.is_empty() || cut_short {
        let mut s = suggest(
            &record,
            &caller.arn,
            role_arn.as_deref(),
            caller.account.as_str(),
            account_of_arn(&record.resource),
        );
        s.extend(condition_failures);
        s
    } else {
        condition_failures
    };
    let message = access_denied_message(&record, &caller.arn);
    let (statements, matched_without_effect) = deciding_statements(&record);
    Ok(Simulation {
        allowed: record.allowed,
        principal: caller.arn.clone(),
        role_arn,
        action: record.action.clone(),
        resource: record.resource.clone(),
        decision: record.decision.clone(),
        message,
        statements,
        matched_without_effect,
        suggestions,
        grant_tokens: tokens,
        invalid_grant_token,
    })
}

impl Simulation {
    /// `policy simulate --json`'s document.
    pub fn to_json(&self) -> Value {
        if self.invalid_grant_token.is_some() {
            return json!({
                "allowed": false,
                "principal": self.principal,
                "action": self.action,
                "resource": self.resource,
                "error": "InvalidGrantTokenException",
                "grant_tokens": self.grant_tokens,
            });
        }
        json!({
            "allowed": self.allowed,
            "principal": self.principal,
            "role_arn": self.role_arn,
            "action": self.action,
            "resource": self.resource,
            "decision": self.decision,
            "message": self.message,
            "statements": self.statements,
            "matched_without_effect": self.matched_without_effect,
            "suggestions": self.suggestions,
            "grant_tokens": self.grant_tokens,
        })
    }

    /// `policy simulate`'s text, one line each.
    pub fn to_text(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.invalid_grant_token {
            out.push(format!(
                "denied: {} {} on {}",
                self.principal, self.action, self.resource
            ));
            out.push(format!("  InvalidGrantTokenException: {why}"));
            return out;
        }
        out.push(format!(
            "{}: {} {} on {}",
            if self.allowed { "allowed" } else { "denied" },
            self.principal,
            self.action,
            self.resource
        ));
        if let Some(r) = &self.role_arn {
            out.push(format!("  (a session of {r})"));
        }
        if self.allowed {
            out.push(format!("  decision: {}", self.decision));
        }
        if let Some(m) = &self.message {
            out.push(format!("  AccessDeniedException: {m}"));
        }
        // Only what decided is "applied": on a denial, the Deny statements
        // of an explicit deny, and nothing for an implicit one; Allow
        // statements that matched without counting (an identity policy the
        // key policy does not delegate to) are listed apart, so that they are
        // not read as having taken part.
        if self.statements.is_empty() {
            out.push("  statements that applied: none".into());
        } else {
            out.push("  statements that applied:".into());
            out.extend(self.statements.iter().map(|s| format!("    {s}")));
        }
        if !self.matched_without_effect.is_empty() {
            out.push("  statements that matched without deciding:".into());
            out.extend(
                self.matched_without_effect
                    .iter()
                    .map(|s| format!("    {s}")),
            );
        }
        for t in &self.grant_tokens {
            out.push(format!(
                "  grant token: grant {} on {} for {} ({}): {}",
                t.grant_id.as_deref().unwrap_or("?"),
                t.key_arn.as_deref().unwrap_or("?"),
                t.grantee.as_deref().unwrap_or("?"),
                t.operations.join(", "),
                if t.applies {
                    "applies"
                } else {
                    "does not apply"
                }
            ));
            out.extend(t.reasons.iter().map(|r| format!("    - {r}")));
        }
        if !self.suggestions.is_empty() {
            out.push("  to allow it:".into());
            out.extend(self.suggestions.iter().map(|s| format!("    - {s}")));
        }
        out
    }
}

/// The statements of a decision that decided it, and those that matched
/// without deciding: an allow lists every statement that applied; an
/// explicit deny its Deny statements; an implicit deny none (what matched
/// did not suffice, and is the second list).
pub fn deciding_statements(record: &AuthzRecord) -> (Vec<String>, Vec<String>) {
    use ferrokms_authz::Reason;
    match record.reason {
        Reason::Allowed | Reason::AllowedByGrant => (record.statements.clone(), Vec::new()),
        Reason::ExplicitDeny(_) => record
            .statements
            .iter()
            .cloned()
            .partition(|s| AppliedStatement::parse(s).is_some_and(|a| a.effect == "Deny")),
        _ => (Vec::new(), record.statements.clone()),
    }
}

/// The principal an ARN names, as the directory knows it. A role ARN means a
/// session of the role named `simulated`.
pub fn resolve_principal(dir: &Directory, text: &str) -> Result<Principal, SimulateError> {
    let account_of = |a: &str| {
        AccountId::parse(a)
            .map_err(|_| SimulateError::Input(format!("'{text}': bad account id '{a}'")))
    };
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Principal::Root {
            account: account_of(text)?,
        });
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(SimulateError::Input(format!(
            "'{text}' is not a principal ARN or account id"
        )));
    }
    let (service, account, resource) = (parts[2], account_of(parts[4])?, parts[5]);
    let last = resource.rsplit('/').next().unwrap_or(resource);
    let role = |name: &str, session: &str| -> Result<Principal, SimulateError> {
        let r = dir.find_role(&account, name).ok_or_else(|| {
            SimulateError::NotFound(format!("no role named {name} in account {account}"))
        })?;
        Ok(Principal::AssumedRole {
            account: account.clone(),
            role_name: r.name.clone(),
            role_path: r.path.clone(),
            role_id: r.id.clone(),
            session_name: session.to_string(),
        })
    };
    match (service, resource) {
        ("iam", "root") => Ok(Principal::Root { account }),
        ("iam", r) if r.starts_with("user/") => {
            let u = dir.find_user(&account, last).ok_or_else(|| {
                SimulateError::NotFound(format!("no user named {last} in account {account}"))
            })?;
            Ok(Principal::User {
                account: account.clone(),
                name: u.name.clone(),
                path: u.path.clone(),
                id: u.id.clone(),
            })
        }
        ("iam", r) if r.starts_with("role/") => role(last, "simulated"),
        ("sts", r) if r.starts_with("assumed-role/") => {
            let mut it = r.splitn(3, '/').skip(1);
            match (it.next(), it.next()) {
                (Some(name), Some(session)) => role(name, session),
                _ => Err(SimulateError::Input(format!(
                    "'{text}' is not an assumed-role session ARN"
                ))),
            }
        }
        _ => Err(SimulateError::Input(format!(
            "'{text}' is not a user, role, assumed-role session or root ARN"
        ))),
    }
}

/// `KEY=VALUE` pairs as the request's condition keys (a key repeated for
/// a multivalued one; names compared without case).
pub fn parse_context(pairs: &[String]) -> Result<Context, SimulateError> {
    let mut values: Vec<(String, Vec<String>)> = Vec::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| SimulateError::Input(format!("--context '{p}': expected KEY=VALUE")))?;
        match values.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some((_, vs)) => vs.push(v.to_string()),
            None => values.push((k.to_string(), vec![v.to_string()])),
        }
    }
    let mut ctx = Context::new();
    for (k, vs) in values {
        if vs.len() == 1 {
            ctx.insert(&k, vs[0].as_str());
        } else {
            ctx.insert_multi(&k, vs.into_iter().map(ContextValue::String).collect());
        }
    }
    Ok(ctx)
}

/// The account field of an ARN (empty when it has none).
pub fn account_of_arn(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// Condition keys a key sets for itself (not the request).
const KEY_KEYS: &[&str] = &[
    "kms:KeySpec",
    "kms:CustomerMasterKeySpec",
    "kms:KeyUsage",
    "kms:CustomerMasterKeyUsage",
    "kms:KeyOrigin",
    "kms:MultiRegion",
    "kms:MultiRegionKeyType",
    "aws:ResourceAccount",
    "aws:RequestedRegion",
];

/// Where a condition check's context values came from.
#[derive(Debug, Clone, Copy)]
pub enum Given {
    /// `policy simulate --context`.
    CommandLine,
    /// An audit record (`policy explain`): only what `ferrokms policy explain`
    /// rebuilds from the record is known.
    Record,
}

/// Condition keys (or prefixes) `policy explain` rebuilds from an audit
/// record: absent from the rebuilt context, the request did not carry them.
const RECORDED_KEYS: &[&str] = &[
    "kms:EncryptionContext:",
    "kms:EncryptionContextKeys",
    "kms:SigningAlgorithm",
    "kms:MessageType",
    "kms:EncryptionAlgorithm",
    "kms:KeyAgreementAlgorithm",
    "kms:MacAlgorithm",
    "kms:DataKeyPairSpec",
    "kms:GrantOperations",
    "kms:GranteePrincipal",
    "kms:RetiringPrincipal",
    "aws:SourceIp",
];

/// `policy` with statement `index`'s Condition replaced by `condition`
/// (removed for `None`).
fn with_condition(
    policy: &Policy,
    kind: PolicyKind,
    index: usize,
    condition: Option<Value>,
) -> Option<Policy> {
    let mut v: Value = serde_json::from_str(&policy.to_json_string()).ok()?;
    let st = match v.get_mut("Statement")? {
        Value::Array(sts) => sts.get_mut(index)?,
        st if index == 0 => st,
        _ => return None,
    };
    let o = st.as_object_mut()?;
    match condition {
        Some(c) => o.insert("Condition".into(), c),
        None => o.remove("Condition"),
    };
    Policy::parse(&v.to_string(), &ParseOptions::for_kind(kind)).ok()
}

/// For a denied simulation: the Allow statements (key policy or the
/// caller's identity side) that would allow the request if their condition
/// held, each with the condition entries that fail and why: a value the
/// request does not carry, a value that does not match, or something the
/// principal or the key decides. Empty when no condition alone stands in
/// the way.
///
/// Each candidate statement and each of its condition entries costs one
/// evaluation of the request with a changed policy (a policy re-read and a
/// decision); after `max_evaluations` of them the search stops and the
/// answer says so in its last line ([`SEARCH_STOPPED`]).
pub fn condition_failures(
    kms: &Kms,
    region: &Region,
    caller: &Caller,
    record: &AuthzRecord,
    context: &Context,
    given: &[String],
    search: Search,
) -> Result<Vec<String>, SimulateError> {
    let Search {
        from,
        max_evaluations,
    } = search;
    let key_policy = kms
        .key_policy_snapshot(caller, &record.resource)
        .or_else(|_| {
            let root = Caller::root(
                AccountId::parse(account_of_arn(&record.resource))
                    .map_err(|_| ferrokms_kms::KmsError::NotFound(record.resource.clone()))?,
                region.clone(),
            );
            kms.key_policy_snapshot(&root, &record.resource)
        })
        .map(|(_, p)| p)?;
    let facts = PrincipalFacts::of(caller);
    let profile = &caller.profile;
    // (label, kind, policy) of every policy that may hold the statement.
    let mut policies: Vec<(Option<usize>, PolicyKind, &Policy)> =
        vec![(None, PolicyKind::ResourceBased, &key_policy)];
    for (i, p) in profile.policies.iter().enumerate() {
        policies.push((Some(i), p.kind, &p.policy));
    }
    // Whether the request is allowed with `policy` in place of policy
    // `which`.
    let evaluations = std::cell::Cell::new(0usize);
    // `None` once the budget is spent.
    let allowed_with =
        |which: Option<usize>, policy: Policy| -> Result<Option<bool>, SimulateError> {
            if evaluations.get() >= max_evaluations {
                return Ok(None);
            }
            evaluations.set(evaluations.get() + 1);
            let (who, key) = match which {
                None => (caller.clone(), Some(&policy)),
                Some(i) => {
                    let mut policies = profile.policies.clone();
                    policies[i].policy = std::sync::Arc::new(policy.clone());
                    let who = Caller {
                        profile: std::sync::Arc::new(CallerProfile {
                            principal: profile.principal.clone(),
                            policies,
                            context: profile.context.clone(),
                        }),
                        ..caller.clone()
                    };
                    (who, None)
                }
            };
            let rec =
                kms.simulate_with(&who, &record.resource, &record.action, context.clone(), key)?;
            Ok(Some(rec.allowed))
        };
    let mut out = Vec::new();
    let mut stopped = false;
    'search: for (which, kind, policy) in &policies {
        for (index, st) in policy.statements().iter().enumerate() {
            if st.effect() != ferrokms_policy::Effect::Allow {
                continue;
            }
            let Some(condition) = st.condition() else {
                continue;
            };
            let condition = serde_json::to_value(condition).unwrap_or(Value::Null);
            let Some(without) = with_condition(policy, *kind, index, None) else {
                continue;
            };
            match allowed_with(*which, without)? {
                None => {
                    stopped = true;
                    break 'search;
                }
                Some(false) => continue,
                Some(true) => {}
            }
            let label = match which {
                None => "key policy".to_string(),
                Some(i) => profile.policies[*i].label.clone(),
            };
            let statement = AppliedStatement {
                policy: label,
                index,
                sid: st.sid().map(str::to_string),
                effect: "Allow".into(),
            }
            .describe();
            // Each entry on its own: the ones that fail alone.
            let mut reasons = Vec::new();
            for (operator, entries) in condition.as_object().into_iter().flatten() {
                for (key, values) in entries.as_object().into_iter().flatten() {
                    let only = json!({operator.as_str(): {key.as_str(): values}});
                    let Some(alone) = with_condition(policy, *kind, index, Some(only.clone()))
                    else {
                        continue;
                    };
                    match allowed_with(*which, alone)? {
                        None => {
                            stopped = true;
                            break 'search;
                        }
                        Some(true) => continue,
                        Some(false) => {}
                    }
                    let first = match values {
                        Value::Array(vs) => vs.first().cloned().unwrap_or(Value::Null),
                        v => v.clone(),
                    };
                    let example = first
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| first.to_string());
                    let request_values: Vec<&str> = given
                        .iter()
                        .filter_map(|p| p.split_once('='))
                        .filter(|(k, _)| k.eq_ignore_ascii_case(key))
                        .map(|(_, v)| v)
                        .collect();
                    let why = if !request_values.is_empty() {
                        format!(
                            "the request's {key} is {}, which does not satisfy it",
                            request_values.join(", ")
                        )
                    } else if facts.as_ref().is_some_and(|f| f.decides(key)) {
                        format!(
                            "{key} is decided by the principal, and {} does not meet it",
                            caller.arn
                        )
                    } else if KEY_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
                        || key
                            .get(..16)
                            .is_some_and(|p| p.eq_ignore_ascii_case("aws:ResourceTag/"))
                    {
                        format!("{key} is decided by the key, which does not meet it")
                    } else {
                        match from {
                            Given::CommandLine => format!(
                                "the request carries no {key} (e.g. --context {key}={example})"
                            ),
                            Given::Record if RECORDED_KEYS.iter().any(|k| {
                                key.get(..k.len()).is_some_and(|p| p.eq_ignore_ascii_case(k))
                            }) =>
                            {
                                format!("the request carried no {key} (it needs e.g. {key}={example})")
                            }
                            Given::Record => format!(
                                "the audit record does not keep {key}, so whether the request carried it is unknown; the condition needs e.g. {key}={example}"
                            ),
                        }
                    };
                    reasons.push(format!("{only}: {why}"));
                }
            }
            if reasons.is_empty() {
                reasons.push(format!("{condition}: its entries together fail"));
            }
            out.push(format!(
                "{statement} allows {} to {} on {} but its condition fails: {}",
                record.action,
                caller.arn,
                record.resource,
                reasons.join("; ")
            ));
        }
    }
    if stopped {
        out.push(format!(
            "{SEARCH_STOPPED} {max_evaluations} evaluations; `ferrokms policy simulate` on the data dir searches them all)"
        ));
    }
    Ok(out)
}

/// Condition keys whose value the principal alone decides, the same in
/// every request it makes: a condition on them holds or fails for the
/// principal once and for all (besides the keys of its profile: principal
/// tags, session facts).
const PRINCIPAL_KEYS: &[&str] = &[
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:PrincipalType",
    "aws:userid",
    "aws:username",
    "aws:PrincipalIsAWSService",
    "aws:PrincipalServiceName",
    "kms:CallerAccount",
];

/// The principal's side of a request: who, and the condition keys it alone
/// decides.
pub struct PrincipalFacts {
    /// The principal as the policy engine sees it.
    pub principal: ferrokms_policy::RequestPrincipal,
    /// The condition keys it alone decides, with their values.
    pub context: Context,
}

impl PrincipalFacts {
    /// The facts of a caller (none for a caller the engine cannot name).
    pub fn of(caller: &Caller) -> Option<PrincipalFacts> {
        let principal = caller.request_principal().ok()?;
        let mut context = caller.profile.context.clone();
        for (k, v) in principal.context_keys() {
            if !context.contains(k) {
                context.insert(k, v);
            }
        }
        context.insert("kms:CallerAccount", caller.account.as_str());
        Some(PrincipalFacts { principal, context })
    }

    /// Whether the principal alone decides `key`.
    pub fn decides(&self, key: &str) -> bool {
        PRINCIPAL_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
            || key
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("aws:PrincipalTag/"))
            || self.context.contains(key)
    }

    /// Whether `operator: {key: values}` holds for this principal, by the
    /// policy engine (policy variables, `IfExists`, set operators
    /// included).
    pub fn holds(
        &self,
        version: Option<&Value>,
        operator: &str,
        key: &str,
        values: &Value,
    ) -> bool {
        let mut doc = json!({"Statement": [{"Effect": "Allow", "Action": "kms:Encrypt",
            "Resource": "*", "Condition": {operator: {key: values}}}]});
        if let Some(v) = version {
            doc["Version"] = v.clone();
        }
        let Ok(policy) = Policy::parse(
            &doc.to_string(),
            &ParseOptions::for_kind(PolicyKind::IdentityBased),
        ) else {
            return false;
        };
        let Ok(action) = ferrokms_policy::Action::parse("kms:Encrypt") else {
            return false;
        };
        let request = ferrokms_policy::Request::new(self.principal.clone(), action, "*")
            .with_context(self.context.clone());
        let eval = ferrokms_policy::evaluate_policy(
            &request,
            ferrokms_policy::PolicyInput::new("probe", PolicyKind::IdentityBased, &policy),
        );
        eval.outcome == ferrokms_policy::PolicyOutcome::Allow
    }
}
