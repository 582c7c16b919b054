//! ferrokms's own analysis operations on the KMS endpoint, for the web
//! console (docs/analysis.md, "What is and is not exposed over the API"):
//! AWS JSON 1.1 with `X-Amz-Target: FerrokmsService.<Op>`, signing name
//! `kms`, errors in KMS's shape.
//!
//! - **SimulateKeyRequest**: `ferrokms policy simulate`'s answer
//!   ([`crate::simulate`]: the same engine and words) for a request by a
//!   principal on a key, not performed.
//! - **ListKeyAccess**: `ferrokms key access --exact`'s listing
//!   (`ferrokms_reach::access_listing`) of the key, with only the key's own
//!   account known.
//!
//! Each is one row of [`FERROKMS_OPERATIONS`] and is authorized on the one
//! path (`ferrokms_authz::decide`, through `Kms::authorize_key_reads` for the
//! key) before anything is read: a key of another account is refused first
//! (root included), then the caller needs what it would need to compute the
//! answer itself — `kms:GetKeyPolicy` and `kms:ListGrants` on the key, and
//! `iam:SimulatePrincipalPolicy` on the simulated principal (a principal of
//! another account: `iam:SimulateCustomPolicy`, its policies are not read)
//! or `iam:GetAccountAuthorizationDetails` in the account. Both run on the
//! blocking pool.

use axum::response::Response;
use ferrokms_analyzer::keyset::{key_policy_set, KeySetError, Known};
use ferrokms_authz::catalog::{Operation, Resource, Service};
use ferrokms_authz::{Caller, Question};
use ferrokms_iam::Principal;
use ferrokms_kms::KmsError;
use ferrokms_reach::{access_listing, AccessEntry, ReachError};
use ferrokms_types::AccountId;
use serde_json::{json, Map, Value};

use crate::auth::Identity;
use crate::kms_api::ApiError;
use crate::pipeline::{Fault, Inbound, Operated, Placement, Protocol};
use crate::simulate::SimulateError;
use crate::App;

/// The `X-Amz-Target` prefix of the operations.
pub const TARGET_PREFIX: &str = "FerrokmsService.";

/// The operations, sorted by name. `action` is the first of the actions
/// checked, `conditional_actions` the others (all always checked; for
/// SimulateKeyRequest on a principal of another account,
/// `iam:SimulateCustomPolicy` on `*` stands for `iam:SimulatePrincipalPolicy`).
pub const FERROKMS_OPERATIONS: &[Operation] = &[
    Operation::new(Service::Kms, "ListKeyAccess", "kms:GetKeyPolicy")
        .also(&["kms:ListGrants", "iam:GetAccountAuthorizationDetails"])
        .on(Resource::Key)
        .reads_only()
        .slow(),
    Operation::new(Service::Kms, "SimulateKeyRequest", "kms:GetKeyPolicy")
        .also(&["kms:ListGrants", "iam:SimulatePrincipalPolicy"])
        .on(Resource::Key)
        .reads_only()
        .slow(),
];

/// The most condition key values one SimulateKeyRequest carries.
pub const MAX_CONTEXT_ENTRIES: usize = 64;
/// The most grant tokens one request carries (KMS's `GrantTokens`).
pub const MAX_GRANT_TOKENS: usize = 10;

/// Why an analysis operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// ValidationException (400): a member missing, too long, of a bad form.
    #[error("{0}")]
    Validation(String),
    /// SerializationException (400): a member of the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// UnknownOperationException (400).
    #[error("No such operation.")]
    UnknownOperation,
    /// AccessDeniedException (400), in AWS's words.
    #[error("{0}")]
    AccessDenied(String),
    /// NotFoundException (400): the simulated user or role does not exist.
    #[error("{0}")]
    NotFound(String),
    /// KMS's own errors (unknown key, malformed id...), as KMS answers them.
    #[error("{0}")]
    Kms(#[from] KmsError),
    /// The authorization path failed: InternalFailure (500).
    #[error("authorization failed: {0}")]
    Authz(#[from] ferrokms_authz::AuthzError),
    /// The analysis could not read what it needs (corrupt stored data):
    /// InternalFailure (500), logged, not sent.
    #[error("the analysis failed: {0}")]
    Analysis(String),
}

impl From<SimulateError> for AnalysisError {
    fn from(e: SimulateError) -> Self {
        match e {
            SimulateError::Input(m) => AnalysisError::Validation(m),
            SimulateError::NotFound(m) => AnalysisError::NotFound(m),
            SimulateError::Kms(e) => AnalysisError::Kms(e),
        }
    }
}

impl From<AnalysisError> for Fault {
    fn from(e: AnalysisError) -> Self {
        let (code, status) = match &e {
            AnalysisError::Validation(_) => ("ValidationException", 400),
            AnalysisError::Serialization(_) => ("SerializationException", 400),
            AnalysisError::UnknownOperation => ("UnknownOperationException", 400),
            AnalysisError::AccessDenied(_) => ("AccessDeniedException", 400),
            AnalysisError::NotFound(_) => ("NotFoundException", 400),
            AnalysisError::Kms(_) => {
                if let AnalysisError::Kms(k) = e {
                    return ApiError::from(k).into();
                }
                ("InternalFailure", 500)
            }
            AnalysisError::Authz(_) | AnalysisError::Analysis(_) => ("InternalFailure", 500),
        };
        let message = if status >= 500 {
            tracing::warn!(error = %e, "analysis operation failed");
            "An internal error occurred.".to_string()
        } else {
            e.to_string()
        };
        Fault {
            code: code.into(),
            status,
            message: Some(message),
            members: None,
        }
    }
}

/// A string member: required, 1..=`max` characters.
fn string<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<&'a str, AnalysisError> {
    match body.get(name) {
        None | Some(Value::Null) => Err(AnalysisError::Validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))),
        Some(Value::String(s)) if s.is_empty() || s.chars().count() > max => {
            Err(AnalysisError::Validation(format!(
                "1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must have length between 1 and {max}"
            )))
        }
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(AnalysisError::Serialization(format!(
            "{name} must be a string"
        ))),
    }
}

/// An optional list member of at most `max` items.
fn list<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    max: usize,
) -> Result<&'a [Value], AnalysisError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) if items.len() > max => Err(AnalysisError::Validation(format!(
            "1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        ))),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(AnalysisError::Serialization(format!(
            "{name} must be a list"
        ))),
    }
}

/// SimulateKeyRequest's input, read and checked.
#[derive(Debug)]
pub struct SimulateInput {
    /// The key: id, ARN, alias name or alias ARN.
    pub key_id: String,
    /// A user, role, assumed-role session or root ARN, or an account id.
    pub principal: String,
    /// `kms:ACTION` (or without the prefix).
    pub action: String,
    /// `KEY=VALUE` condition keys (a key repeated for a multivalued one).
    pub context: Vec<String>,
    /// Grant tokens the request would carry.
    pub grant_tokens: Vec<String>,
}

impl SimulateInput {
    /// Reads the input: `KeyId`, `Principal`, `Action`, `Context` (a list
    /// of `{"Key", "Value"}`) and `GrantTokens`.
    pub fn parse(body: &Map<String, Value>) -> Result<SimulateInput, AnalysisError> {
        let key_id = string(body, "KeyId", 2048)?.to_string();
        let principal = string(body, "Principal", 2048)?.to_string();
        let action = string(body, "Action", 128)?.to_string();
        let mut context = Vec::new();
        for (i, e) in list(body, "Context", MAX_CONTEXT_ENTRIES)?
            .iter()
            .enumerate()
        {
            let Value::Object(e) = e else {
                return Err(AnalysisError::Serialization(format!(
                    "Context.{} must be an object with Key and Value",
                    i + 1
                )));
            };
            let k = string(e, "Key", 256)?;
            let v = match e.get("Value") {
                Some(Value::String(v)) if v.chars().count() <= 1024 => v.as_str(),
                Some(Value::String(_)) => {
                    return Err(AnalysisError::Validation(format!(
                        "1 validation error detected: Value at 'context.{}.member.value' failed to satisfy constraint: Member must have length less than or equal to 1024",
                        i + 1
                    )))
                }
                _ => {
                    return Err(AnalysisError::Validation(format!(
                        "1 validation error detected: Value null at 'context.{}.member.value' failed to satisfy constraint: Member must not be null",
                        i + 1
                    )))
                }
            };
            if k.contains('=') {
                return Err(AnalysisError::Validation(format!(
                    "Context.{}: a condition key name holds no '='",
                    i + 1
                )));
            }
            context.push(format!("{k}={v}"));
        }
        let mut grant_tokens = Vec::new();
        for t in list(body, "GrantTokens", MAX_GRANT_TOKENS)? {
            match t {
                Value::String(t) if !t.is_empty() && t.len() <= 8192 => {
                    grant_tokens.push(t.clone());
                }
                Value::String(_) => {
                    return Err(AnalysisError::Validation(
                        "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length between 1 and 8192".into(),
                    ))
                }
                _ => {
                    return Err(AnalysisError::Serialization(
                        "GrantTokens must be a list of strings".into(),
                    ))
                }
            }
        }
        Ok(SimulateInput {
            key_id,
            principal,
            action,
            context,
            grant_tokens,
        })
    }
}

/// The principal a simulation names, before anything is looked up: its
/// account, and the ARN `iam:SimulatePrincipalPolicy` is authorized on
/// (the role of a session, the root of an account id).
fn principal_target(text: &str, partition: &str) -> Result<(AccountId, String), AnalysisError> {
    let bad = || {
        AnalysisError::Validation(format!(
            "'{text}' is not a user, role, assumed-role session or root ARN, or an account id"
        ))
    };
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        let a = AccountId::parse(text).map_err(|_| bad())?;
        let arn = format!("arn:{partition}:iam::{a}:root");
        return Ok((a, arn));
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(bad());
    }
    let account = AccountId::parse(parts[4]).map_err(|_| bad())?;
    let resource = parts[5];
    let arn = match (parts[2], resource) {
        ("iam", "root") => text.to_string(),
        ("iam", r) if r.starts_with("user/") || r.starts_with("role/") => text.to_string(),
        ("sts", r) if r.starts_with("assumed-role/") => {
            let mut it = r.splitn(3, '/').skip(1);
            match (it.next(), it.next()) {
                (Some(role), Some(_)) if !role.is_empty() => {
                    format!("arn:{}:iam::{account}:role/{role}", parts[1])
                }
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    Ok((account, arn))
}

/// A principal of another account, built from its ARN alone: its
/// account's directory is not read (not its policies, not whether it
/// exists), so the simulation assumes its identity policies allow
/// everything and shows the key's side.
fn foreign_principal(text: &str, account: AccountId) -> Principal {
    let resource = text.splitn(6, ':').nth(5).unwrap_or("");
    let last = resource.rsplit('/').next().unwrap_or(resource).to_string();
    let path_of = |r: &str| match (r.find('/'), r.rfind('/')) {
        (Some(a), Some(b)) if a < b => r[a..=b].to_string(),
        _ => "/".to_string(),
    };
    if let Some(r) = resource.strip_prefix("user/") {
        return Principal::User {
            account,
            name: last,
            path: path_of(&format!("user/{r}")),
            id: String::new(),
        };
    }
    if resource.starts_with("role/") {
        return Principal::AssumedRole {
            account,
            role_name: last,
            role_path: path_of(resource),
            role_id: String::new(),
            session_name: "simulated".into(),
        };
    }
    if let Some(r) = resource.strip_prefix("assumed-role/") {
        let mut it = r.splitn(2, '/');
        let role = it.next().unwrap_or("").to_string();
        let session = it.next().unwrap_or("simulated").to_string();
        return Principal::AssumedRole {
            account,
            role_name: role,
            role_path: "/".into(),
            role_id: String::new(),
            session_name: session,
        };
    }
    Principal::Root { account }
}

/// The label of the identity policy a principal of another account is
/// assumed to have.
pub const ASSUMED_POLICY_LABEL: &str = "assumed identity policy (another account's, not read)";

/// Records and enforces one identity-side question in the caller's account.
fn authorize_identity(caller: &Caller, action: &str, resource: &str) -> Result<(), AnalysisError> {
    let (record, outcome) = ferrokms_authz::decide(
        caller,
        Question::identity(action, resource, &caller.account),
    )?
    .conclude(None);
    caller.record(record);
    outcome.map_err(AnalysisError::AccessDenied)
}

/// The key as the simulation names it: the same key whatever the
/// principal's account (a bare id or alias name means the caller's).
fn key_in_callers_account(text: &str, caller: &Caller, key_arn: &str) -> String {
    match text.strip_prefix("alias/") {
        Some(_) => format!(
            "arn:{}:kms:{}:{}:{text}",
            caller.region.partition(),
            caller.region,
            caller.account
        ),
        None if text.starts_with("arn:") => text.to_string(),
        None => key_arn.to_string(),
    }
}

/// SimulateKeyRequest: authorized, then `ferrokms policy simulate`'s JSON
/// answer.
pub fn simulate_key_request(
    app: &App,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Value, AnalysisError> {
    let input = SimulateInput::parse(body)?;
    let key_arn =
        app.kms
            .authorize_key_reads(caller, &input.key_id, &["GetKeyPolicy", "ListGrants"])?;
    let partition = caller.region.partition();
    let (account, source_arn) = principal_target(&input.principal, partition)?;
    let own = account == caller.account;
    if own {
        authorize_identity(caller, "iam:SimulatePrincipalPolicy", &source_arn)?;
    } else {
        authorize_identity(caller, "iam:SimulateCustomPolicy", "*")?;
    }
    let (principal, who) = if own {
        let p = crate::simulate::resolve_principal(&app.directory, &input.principal)?;
        let who = crate::auth::caller_for(&app.directory, &p, &caller.region, None);
        (p, who)
    } else {
        let p = foreign_principal(&input.principal, account);
        let mut who = crate::auth::caller_for(
            &app.directory,
            &Principal::Root {
                account: p.account().clone(),
            },
            &caller.region,
            None,
        );
        who.arn = p.arn(partition);
        let request_principal = p.to_request_principal(partition);
        let mut context = ferrokms_policy::Context::new();
        if let Some(rp) = &request_principal {
            for (k, v) in rp.context_keys() {
                context.insert(k, v);
            }
        }
        let policies = if matches!(p, Principal::Root { .. }) {
            Vec::new()
        } else {
            vec![ferrokms_authz::CallerPolicy {
                label: ASSUMED_POLICY_LABEL.into(),
                kind: ferrokms_policy::PolicyKind::IdentityBased,
                policy: std::sync::Arc::new(assumed_policy()?),
            }]
        };
        who.profile = std::sync::Arc::new(ferrokms_authz::CallerProfile {
            principal: request_principal,
            policies,
            context,
        });
        (p, who)
    };
    let key = key_in_callers_account(&input.key_id, caller, &key_arn);
    let role_arn = principal.role_arn(partition);
    let answer = crate::simulate::simulate(
        &app.kms,
        &caller.region,
        &who,
        role_arn,
        crate::simulate::Request {
            key: &key,
            action: &input.action,
            given: &input.context,
            tokens: &input.grant_tokens,
            max_evaluations: crate::simulate::API_MAX_EVALUATIONS,
        },
    )?;
    Ok(answer.to_json())
}

/// `key access --exact --json`'s document of a listing.
pub fn listing_json(key_arn: &str, listing: &[AccessEntry]) -> Value {
    let entries: Vec<Value> = listing
        .iter()
        .map(|e| {
            json!({
                "principal": e.principal_class,
                "example": e.example_principal,
                "external": e.external,
                "path": e.path.to_string(),
                "conditional": e.conditional,
                "actions": e.actions,
                "exampleContext": e
                    .example_context
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"key": key_arn, "exact": true, "access": entries})
}

/// ListKeyAccess: authorized, then the exact listing of the key with only
/// its own account known (`Known::KeyAccount`): no other account's IAM
/// policies shape the answer.
pub fn list_key_access(
    app: &App,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<Value, AnalysisError> {
    let key_id = string(body, "KeyId", 2048)?;
    let key_arn = app
        .kms
        .authorize_key_reads(caller, key_id, &["GetKeyPolicy", "ListGrants"])?;
    authorize_identity(caller, "iam:GetAccountAuthorizationDetails", "*")?;
    let set = key_policy_set(
        &app.kms,
        &app.directory,
        &caller.account,
        &caller.region,
        &key_arn,
        Known::KeyAccount,
    )
    .map_err(|e| match e {
        KeySetError::Kms(k) => AnalysisError::Kms(k),
        e => AnalysisError::Analysis(e.to_string()),
    })?;
    match access_listing(&set) {
        Ok(listing) => Ok(listing_json(&key_arn, &listing)),
        Err(ReachError::Unknown(why)) => {
            Ok(json!({"key": key_arn, "exact": false, "unknown": why}))
        }
        Err(e) => Err(AnalysisError::Analysis(e.to_string())),
    }
}

/// The identity policy assumed for a principal of another account.
fn assumed_policy() -> Result<ferrokms_policy::Policy, AnalysisError> {
    ferrokms_policy::Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        &ferrokms_policy::ParseOptions::for_kind(ferrokms_policy::PolicyKind::IdentityBased),
    )
    .map_err(|e| AnalysisError::Validation(e.to_string()))
}

/// A request of these operations in the pipeline (`crate::pipeline`).
pub(crate) struct AnalysisRequest {
    op: String,
    body: Map<String, Value>,
}

impl AnalysisRequest {
    pub fn new(op: &str) -> Self {
        AnalysisRequest {
            op: op.to_string(),
            body: Map::new(),
        }
    }
}

impl Protocol for AnalysisRequest {
    type Caller = Caller;
    type Call = (String, Map<String, Value>);
    type Output = Vec<u8>;

    const SERVICES: &'static [&'static str] = &["kms"];

    fn service<'a>(&'a self, _: Option<&'a Identity>) -> &'a str {
        "kms"
    }

    fn operation(&self) -> &str {
        &self.op
    }

    fn unavailable() -> Fault {
        ApiError {
            code: "KMSInternalException",
            message: Some("The service is unavailable. Retry the request.".into()),
            status: 500,
        }
        .into()
    }

    fn internal() -> Fault {
        ApiError {
            code: "KMSInternalException",
            message: None,
            status: 500,
        }
        .into()
    }

    /// The caller, the operation and the body: empty is `{}`, anything
    /// else must be a JSON object.
    fn admit(
        &mut self,
        app: &App,
        req: &Inbound<'_>,
        identity: &Identity,
    ) -> Result<Caller, Fault> {
        let (caller, body) =
            crate::pipeline::admit_json_target(app, req, identity, FERROKMS_OPERATIONS, &self.op)
                .map_err(|e| match e {
                crate::pipeline::JsonAdmit::UnknownOperation => AnalysisError::UnknownOperation,
                crate::pipeline::JsonAdmit::Body(m) => AnalysisError::Serialization(m),
            })?;
        self.body = body;
        Ok(caller)
    }

    fn audit_parameters(&self, memo: Option<&mut crate::audit::ParamsMemo>) -> Vec<u8> {
        crate::audit::request_parameters_json(&Value::Object(self.body.clone()), memo)
    }

    fn event_id(&self) -> Option<[u8; 36]> {
        None
    }

    /// Policy evaluation many times over: off the async workers. Changes
    /// nothing: no cluster lock.
    fn placement(&self, _: &App) -> Placement {
        Placement::Blocking
    }

    fn call(&mut self) -> Self::Call {
        (self.op.clone(), std::mem::take(&mut self.body))
    }

    fn operate(app: &App, (op, body): Self::Call, caller: Caller) -> Operated<Vec<u8>> {
        let result = match op.as_str() {
            "ListKeyAccess" => list_key_access(app, &caller, &body),
            "SimulateKeyRequest" => simulate_key_request(app, &caller, &body),
            _ => Err(AnalysisError::UnknownOperation),
        }
        .map(|v| serde_json::to_vec(&v).unwrap_or_default())
        .map_err(Fault::from);
        Operated {
            result,
            trace: caller.into_trace(),
        }
    }

    /// The answer is not copied into the record.
    fn response_elements(&self, _: &Vec<u8>) -> Vec<u8> {
        Vec::new()
    }

    fn respond(&self, out: Vec<u8>, _: &str) -> Response {
        crate::json_response(axum::http::StatusCode::OK, out)
    }

    fn respond_error(&self, fault: &Fault, _: &str) -> Response {
        crate::error_response(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<SimulateInput, AnalysisError> {
        match v {
            Value::Object(m) => SimulateInput::parse(&m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_catalog_is_sorted_and_same_account_reads() {
        assert!(FERROKMS_OPERATIONS
            .windows(2)
            .all(|w| w[0].name < w[1].name));
        for op in FERROKMS_OPERATIONS {
            assert!(op.reads_only && !op.cross_account && op.runs_blocking());
            assert_eq!(op.action, "kms:GetKeyPolicy");
            assert!(op.conditional_actions.contains(&"kms:ListGrants"));
        }
    }

    #[test]
    fn inputs_are_checked() {
        let ok = json!({"KeyId": "k", "Principal": "111122223333", "Action": "kms:Encrypt"});
        assert!(parse(ok).is_ok());
        assert!(matches!(
            parse(json!({"Principal": "x", "Action": "y"})),
            Err(AnalysisError::Validation(_))
        ));
        assert!(matches!(
            parse(json!({"KeyId": "k".repeat(2049), "Principal": "x", "Action": "y"})),
            Err(AnalysisError::Validation(_))
        ));
        assert!(matches!(
            parse(json!({"KeyId": 5, "Principal": "x", "Action": "y"})),
            Err(AnalysisError::Serialization(_))
        ));
        let many: Vec<Value> = (0..65)
            .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
            .collect();
        assert!(matches!(
            parse(json!({"KeyId": "k", "Principal": "x", "Action": "y", "Context": many})),
            Err(AnalysisError::Validation(_))
        ));
        let ctx = parse(json!({"KeyId": "k", "Principal": "x", "Action": "y",
            "Context": [{"Key": "kms:EncryptionContext:app", "Value": "a=b"}]}))
        .unwrap();
        assert_eq!(ctx.context, ["kms:EncryptionContext:app=a=b"]);
    }

    #[test]
    fn a_principal_is_placed_before_it_is_looked_up() {
        let (a, arn) = principal_target("111122223333", "aws").unwrap();
        assert_eq!(
            (a.as_str(), arn.as_str()),
            ("111122223333", "arn:aws:iam::111122223333:root")
        );
        let (_, arn) =
            principal_target("arn:aws:sts::111122223333:assumed-role/r/s", "aws").unwrap();
        assert_eq!(arn, "arn:aws:iam::111122223333:role/r");
        assert!(principal_target("arn:aws:s3:::bucket", "aws").is_err());
        assert!(principal_target("nonsense", "aws").is_err());
    }
}
