//! Support for `ferrokms policy evaluate`: everything except reading files and printing, so
//! the binary is a thin wrapper.
//!
//! ```
//! use ferrokms_policy::cli::{evaluate_cli, EvaluateInput, PolicySource};
//! use ferrokms_policy::PolicyKind;
//!
//! let key_policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
//!   "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
//! let input = EvaluateInput {
//!     policies: vec![PolicySource::new(PolicyKind::ResourceBased, "key-policy", key_policy)],
//!     principal: "arn:aws:iam::111122223333:root".into(),
//!     action: "kms:Sign".into(),
//!     resource: "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into(),
//!     ..EvaluateInput::default()
//! };
//! let report = evaluate_cli(&input).expect("valid input");
//! assert!(report.allowed);
//! assert!(report.human.starts_with("Decision: ALLOW"));
//! assert_eq!(report.json["decision"], "Allow");
//! ```

use crate::error::PolicyError;
use crate::evaluate::{evaluate_with, CombineMode, EvaluationOptions, PolicyInput, PolicyKind};
use crate::ids::Action;
use crate::model::Policy;
use crate::parse::ParseOptions;
use crate::request::{Request, RequestPrincipal};
use crate::value::{Context, ContextValue, Number, Timestamp};
use base64::Engine as _;
use ferrokms_types::AccountId;
use serde_json::Value;

/// One `--policy KIND=FILE` after the file was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySource {
    /// The role the policy plays in the request.
    pub kind: PolicyKind,
    /// Shown in the trace (the CLI uses the file name).
    pub label: String,
    /// The policy text as read from the file.
    pub text: Vec<u8>,
}

impl PolicySource {
    /// A policy source from its kind, label and text.
    pub fn new(kind: PolicyKind, label: &str, text: impl Into<Vec<u8>>) -> Self {
        PolicySource {
            kind,
            label: label.to_string(),
            text: text.into(),
        }
    }

    /// Splits a `KIND=FILE` argument into the kind and the file name.
    pub fn split_arg(arg: &str) -> Result<(PolicyKind, &str), PolicyError> {
        let (kind, file) = arg
            .split_once('=')
            .ok_or_else(|| PolicyError::UnknownPolicyKind {
                found: format!("{arg} (expected KIND=FILE)"),
            })?;
        Ok((kind.parse()?, file))
    }
}

/// Everything `policy evaluate` takes.
#[derive(Debug, Clone, Default)]
pub struct EvaluateInput {
    /// The policies to evaluate together, in the order given.
    pub policies: Vec<PolicySource>,
    /// The caller: an IAM/STS ARN, an account ID, a service principal or `anonymous`.
    pub principal: String,
    /// For an assumed-role caller: the role ARN with its path.
    pub role_arn: Option<String>,
    /// The action asked about, `service:Action`.
    pub action: String,
    /// The resource ARN, or `*`.
    pub resource: String,
    /// Overrides the resource owner taken from the resource ARN.
    pub resource_account: Option<String>,
    /// `KEY=VALUE` pairs; a key given more than once becomes multivalued.
    pub context: Vec<String>,
    /// The contents of `--context-file`: a JSON object (see [`parse_context_json`]).
    pub context_json: Option<String>,
    /// How the policies' results combine (`--mode`).
    pub mode: CombineMode,
    /// Do not add `aws:PrincipalArn`, `aws:username`... derived from the principal.
    pub no_principal_keys: bool,
}

/// The rendered result.
#[derive(Debug, Clone)]
pub struct CliReport {
    /// The trace for people: the decision, then each policy and statement.
    pub human: String,
    /// The same report as JSON (`--json`).
    pub json: Value,
    /// Whether the request is allowed; the CLI's exit status follows it.
    pub allowed: bool,
}

/// Parses `KEY=VALUE` arguments into a context. Values are strings; condition operators
/// read them as numbers, dates, IPs... as needed. Repeating a key makes it multivalued.
pub fn parse_context_args(args: &[String], ctx: &mut Context) -> Result<(), PolicyError> {
    let mut seen: Vec<(String, Vec<ContextValue>)> = Vec::new();
    for a in args {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| PolicyError::InvalidContextValue {
                key: a.clone(),
                reason: "expected KEY=VALUE".into(),
            })?;
        if k.is_empty() {
            return Err(PolicyError::InvalidContextValue {
                key: a.clone(),
                reason: "empty key".into(),
            });
        }
        match seen
            .iter_mut()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
        {
            Some((_, vals)) => vals.push(ContextValue::from(v)),
            None => seen.push((k.to_string(), vec![ContextValue::from(v)])),
        }
    }
    for (k, mut vals) in seen {
        if vals.len() == 1 {
            if let Some(v) = vals.pop() {
                ctx.insert(&k, v);
            }
        } else {
            ctx.insert_multi(&k, vals);
        }
    }
    Ok(())
}

fn json_scalar(key: &str, v: &Value) -> Result<ContextValue, PolicyError> {
    let bad = |reason: &str| PolicyError::InvalidContextValue {
        key: key.to_string(),
        reason: reason.to_string(),
    };
    match v {
        Value::String(s) => Ok(ContextValue::String(s.clone())),
        Value::Bool(b) => Ok(ContextValue::Bool(*b)),
        Value::Number(n) => n
            .to_string()
            .parse::<Number>()
            .map(ContextValue::Number)
            .map_err(|_| bad("number must be an integer or decimal")),
        Value::Object(m) => {
            let ty = m
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("typed value needs \"type\""))?;
            let raw = match m.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => return Err(bad("typed value needs a scalar \"value\"")),
            };
            match ty {
                "string" => Ok(ContextValue::String(raw)),
                "arn" => Ok(ContextValue::Arn(raw)),
                "number" => raw
                    .parse()
                    .map(ContextValue::Number)
                    .map_err(|_| bad("not a number")),
                "bool" => match raw.to_ascii_lowercase().as_str() {
                    "true" => Ok(ContextValue::Bool(true)),
                    "false" => Ok(ContextValue::Bool(false)),
                    _ => Err(bad("not true or false")),
                },
                "date" => raw
                    .parse::<Timestamp>()
                    .map(ContextValue::Date)
                    .map_err(|_| bad("not an ISO 8601 date or epoch seconds")),
                "ip" => crate::value::parse_ip(&raw)
                    .map(ContextValue::Ip)
                    .ok_or_else(|| bad("not an IP address")),
                "binary" => base64::engine::general_purpose::STANDARD
                    .decode(raw.trim())
                    .map(ContextValue::Binary)
                    .map_err(|_| bad("not base64")),
                _ => Err(bad(
                    "type must be string, arn, number, bool, date, ip or binary",
                )),
            }
        }
        _ => Err(bad(
            "expected a string, number, bool, typed object or array",
        )),
    }
}

/// Reads a context file: `{"aws:SourceIp": "10.0.0.1", "aws:TagKeys": ["a", "b"],
/// "aws:CurrentTime": {"type": "date", "value": "2024-01-01T00:00:00Z"}}`. Arrays are
/// multivalued keys; `{"type", "value"}` objects give an explicit type.
pub fn parse_context_json(text: &str, ctx: &mut Context) -> Result<(), PolicyError> {
    let v: Value = serde_json::from_str(text).map_err(|e| PolicyError::InvalidContextValue {
        key: "(context file)".into(),
        reason: e.to_string(),
    })?;
    let Value::Object(m) = v else {
        return Err(PolicyError::InvalidContextValue {
            key: "(context file)".into(),
            reason: "expected a JSON object".into(),
        });
    };
    for (k, v) in &m {
        match v {
            Value::Array(items) => {
                let vals = items
                    .iter()
                    .map(|x| json_scalar(k, x))
                    .collect::<Result<Vec<_>, _>>()?;
                ctx.insert_multi(k, vals);
            }
            other => ctx.insert(k, json_scalar(k, other)?),
        }
    }
    Ok(())
}

/// Parses the policies, builds the request, evaluates, and renders text and JSON.
pub fn evaluate_cli(input: &EvaluateInput) -> Result<CliReport, PolicyError> {
    let mut parsed: Vec<(String, PolicyKind, Policy)> = Vec::with_capacity(input.policies.len());
    for src in &input.policies {
        let policy =
            Policy::parse_bytes(&src.text, &ParseOptions::for_kind(src.kind)).map_err(|e| {
                PolicyError::InPolicy {
                    label: src.label.clone(),
                    source: Box::new(e),
                }
            })?;
        parsed.push((src.label.clone(), src.kind, policy));
    }
    let mut principal = RequestPrincipal::from_arn(&input.principal)?;
    if let Some(r) = &input.role_arn {
        principal = principal.with_role_arn(r);
    }
    let action = Action::parse(&input.action)?;
    let mut ctx = Context::new();
    if let Some(text) = &input.context_json {
        parse_context_json(text, &mut ctx)?;
    }
    parse_context_args(&input.context, &mut ctx)?;
    let mut request = Request::new(principal, action, &input.resource).with_context(ctx);
    if let Some(a) = &input.resource_account {
        let acct = AccountId::parse(a).map_err(|_| PolicyError::InvalidContextValue {
            key: "resource-account".into(),
            reason: "not a 12-digit account ID".into(),
        })?;
        request = request.with_resource_account(Some(acct));
    }
    if !input.no_principal_keys {
        request = request.with_principal_context();
    }
    let inputs: Vec<PolicyInput<'_>> = parsed
        .iter()
        .map(|(label, kind, policy)| PolicyInput::new(label, *kind, policy))
        .collect();
    let eval = evaluate_with(&request, &inputs, &EvaluationOptions { mode: input.mode });
    Ok(CliReport {
        human: crate::explain::render_text(&request, &eval),
        json: crate::explain::to_json(&request, &eval),
        allowed: eval.decision.is_allowed(),
    })
}
