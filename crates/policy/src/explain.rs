//! Human-readable and JSON renderings of an [`Evaluation`].
//!
//! The text form is for people debugging a denial (`ferrokms policy evaluate`); the JSON form
//! carries the same facts for tools. Both say, for every statement that did not apply, which
//! element failed and, for conditions, the operator, key, policy values and request values.

use crate::condition::{ConditionFailReason, ConditionFailure};
use crate::evaluate::{Decision, Evaluation, Mismatch, PolicyEvaluation, StatementResult};
use crate::matching::PrincipalMatch;
use crate::model::{PrincipalElement, Statement};
use crate::request::{PrincipalKind, Request};
use crate::value::ContextValues;
use serde_json::{json, Value};
use std::fmt::Write as _;

/// The full AccessDenied message AWS would print, e.g. `User: arn:aws:iam::111122223333:user/bob
/// is not authorized to perform: kms:Sign on resource: arn:aws:kms:... because no
/// identity-based policy allows the kms:Sign action`. `None` when allowed.
pub fn access_denied_message(request: &Request, decision: &Decision) -> Option<String> {
    let action = request.action.as_str();
    let reason = decision.denial_reason(action)?;
    Some(format!(
        "User: {} is not authorized to perform: {action} on resource: {} {reason}",
        request.principal.arn(),
        request.resource
    ))
}

fn principal_match_str(m: PrincipalMatch) -> &'static str {
    match m {
        PrincipalMatch::Account => "account",
        PrincipalMatch::Role => "role",
        PrincipalMatch::Direct => "direct",
    }
}

fn kind_str(k: &PrincipalKind) -> &'static str {
    match k {
        PrincipalKind::Root => "root",
        PrincipalKind::IamUser { .. } => "iam-user",
        PrincipalKind::AssumedRole { .. } => "assumed-role",
        PrincipalKind::FederatedUser { .. } => "federated-user",
        PrincipalKind::Service { .. } => "service",
        PrincipalKind::Anonymous => "anonymous",
    }
}

fn quoted_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.map(|s| format!("{s:?}")).collect();
    format!("[{}]", v.join(", "))
}

fn request_values(request: &Request, key: &str) -> Option<Vec<String>> {
    request.context.get(key).map(|e| match &e.values {
        ContextValues::Single(v) => vec![v.as_text().into_owned()],
        ContextValues::Multi(vs) => vs.iter().map(|v| v.as_text().into_owned()).collect(),
    })
}

fn principal_text(p: &PrincipalElement) -> String {
    serde_json::to_string(p).unwrap_or_default()
}

/// Explains why a statement did not apply, in one line.
pub fn describe_mismatch(m: &Mismatch<'_>, statement: &Statement, request: &Request) -> String {
    match m {
        Mismatch::NoAction => "the statement has no Action or NotAction, so it never applies".into(),
        Mismatch::NoResource => {
            "the statement has no Resource or NotResource, so it never applies".into()
        }
        Mismatch::NoPrincipal => {
            "the statement has no Principal or NotPrincipal, so it never applies in a resource-based policy".into()
        }
        Mismatch::Action => {
            let (name, pats) = statement.action.as_ref().map_or(("Action", String::new()), |a| {
                (
                    if a.negated { "NotAction" } else { "Action" },
                    quoted_list(a.patterns.iter().map(super::model::ActionPattern::as_str)),
                )
            });
            if name == "NotAction" {
                format!("action {} is excluded by NotAction {pats}", request.action)
            } else {
                format!("action {} is not matched by Action {pats}", request.action)
            }
        }
        Mismatch::Resource => {
            let (neg, pats) = statement.resource.as_ref().map_or((false, String::new()), |r| {
                (r.negated, quoted_list(r.patterns.iter().map(super::model::ResourcePattern::as_str)))
            });
            if neg {
                format!("resource {} is excluded by NotResource {pats}", request.resource)
            } else {
                format!("resource {} is not matched by Resource {pats}", request.resource)
            }
        }
        Mismatch::Principal => {
            let (neg, text) = statement
                .principal
                .as_ref()
                .map_or((false, String::new()), |p| (p.negated, principal_text(p)));
            if neg {
                format!(
                    "caller {} is excluded by NotPrincipal {text}",
                    request.principal.arn()
                )
            } else {
                format!(
                    "caller {} is not matched by Principal {text}",
                    request.principal.arn()
                )
            }
        }
        Mismatch::Condition(f) => describe_condition_failure(f, request),
    }
}

/// Explains a failed condition entry.
pub fn describe_condition_failure(f: &ConditionFailure<'_>, request: &Request) -> String {
    let op = f.block.operator;
    let key = f.entry.key.as_str();
    let policy_values = quoted_list(
        f.entry
            .values
            .iter()
            .map(super::condition::ConditionValue::as_str),
    );
    let req = request_values(request, key)
        .map(|v| quoted_list(v.iter().map(String::as_str)))
        .unwrap_or_else(|| "(absent)".into());
    let why = match f.reason {
        ConditionFailReason::KeyMissing => {
            format!("the key is not in the request context (policy values {policy_values})")
        }
        ConditionFailReason::NoRequestValues => format!(
            "ForAnyValue needs at least one request value but the key is absent or empty (policy values {policy_values})"
        ),
        ConditionFailReason::NoValueMatched => {
            format!("request value(s) {req} match none of {policy_values}")
        }
        ConditionFailReason::NotAllValuesMatched => {
            format!("not every request value in {req} matches one of {policy_values}")
        }
        ConditionFailReason::NegatedValueMatched => {
            format!("request value(s) {req} match one of {policy_values}")
        }
        ConditionFailReason::IncomparableValue => format!(
            "request value(s) {req} cannot be compared by {} (policy values {policy_values})",
            op.base.name()
        ),
        ConditionFailReason::NullCheckFailed { key_present } => {
            if key_present {
                format!("the policy requires the key to be absent (Null {policy_values}) but it is present")
            } else {
                format!("the policy requires the key to be present (Null {policy_values}) but it is absent")
            }
        }
    };
    format!("condition {op} on {key} failed: {why}")
}

fn decision_line(request: &Request, eval: &Evaluation<'_>) -> String {
    match &eval.decision {
        Decision::Allow => "ALLOW".to_string(),
        Decision::ExplicitDeny {
            kind,
            policy_id,
            statement,
            sid,
        } => {
            let sid = sid
                .as_deref()
                .map(|s| format!(" ({s:?})"))
                .unwrap_or_default();
            format!(
                "DENY (explicit deny in {} {policy_id:?}, statement #{statement}{sid})",
                kind.description()
            )
        }
        Decision::ImplicitDeny { missing } => format!(
            "DENY (implicit: no {} allows {})",
            missing.description(),
            request.action
        ),
    }
}

fn statement_label(s: &Statement, index: usize) -> String {
    match &s.sid {
        Some(sid) => format!("#{index} {sid:?} {}", s.effect),
        None => format!("#{index} {}", s.effect),
    }
}

/// Renders the decision and trace for people.
pub fn render_text(request: &Request, eval: &Evaluation<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Decision: {}", decision_line(request, eval));
    if let Some(msg) = access_denied_message(request, &eval.decision) {
        let _ = writeln!(out, "Message:  {msg}");
    }
    let _ = writeln!(
        out,
        "Request:  {} ({}) -> {} on {} [{}]",
        request.principal.arn(),
        kind_str(request.principal.kind()),
        request.action,
        request.resource,
        if eval.same_account {
            "same account"
        } else {
            "cross-account"
        }
    );
    if !request.context.is_empty() {
        let _ = writeln!(out, "Context:");
        for e in request.context.iter() {
            let vals: Vec<String> = e
                .values
                .as_slice()
                .iter()
                .map(|v| v.as_text().into_owned())
                .collect();
            let shown = match &e.values {
                ContextValues::Single(_) => {
                    format!("{:?}", vals.first().cloned().unwrap_or_default())
                }
                ContextValues::Multi(_) => quoted_list(vals.iter().map(String::as_str)),
            };
            let _ = writeln!(out, "  {} = {shown}", e.name);
        }
    }
    if eval.policies.is_empty() {
        let _ = writeln!(out, "Policies: (none)");
    }
    for p in &eval.policies {
        render_policy(&mut out, request, p);
    }
    out
}

fn render_policy(out: &mut String, request: &Request, p: &PolicyEvaluation<'_>) {
    let via = p
        .allow_match
        .map(|m| format!(", principal matched: {}", principal_match_str(m)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Policy {:?} [{}]: {}{via}",
        p.id,
        p.kind.description(),
        p.outcome.as_str()
    );
    for s in &p.statements {
        let label = statement_label(s.statement, s.index);
        match &s.result {
            StatementResult::Applies { principal } => {
                let via = principal
                    .map(|m| format!(" (principal matched: {})", principal_match_str(m)))
                    .unwrap_or_default();
                let _ = writeln!(out, "  {label}: applies{via}");
            }
            StatementResult::NotApplicable(m) => {
                let _ = writeln!(
                    out,
                    "  {label}: does not apply: {}",
                    describe_mismatch(m, s.statement, request)
                );
            }
        }
    }
}

fn mismatch_json(m: &Mismatch<'_>, s: &Statement, request: &Request) -> Value {
    let (kind, extra) = match m {
        Mismatch::NoAction => ("no-action", Value::Null),
        Mismatch::NoResource => ("no-resource", Value::Null),
        Mismatch::NoPrincipal => ("no-principal", Value::Null),
        Mismatch::Action => ("action", Value::Null),
        Mismatch::Resource => ("resource", Value::Null),
        Mismatch::Principal => ("principal", Value::Null),
        Mismatch::Condition(f) => (
            "condition",
            json!({
                "operator": f.block.operator.to_string(),
                "key": f.entry.key.as_str(),
                "policy_values": f.entry.values.iter().map(super::condition::ConditionValue::as_str).collect::<Vec<_>>(),
                "request_values": request_values(request, f.entry.key.as_str()),
                "reason": format!("{:?}", f.reason),
            }),
        ),
    };
    let mut v = json!({ "kind": kind, "detail": describe_mismatch(m, s, request) });
    if let (Value::Object(map), Value::Object(extra)) = (&mut v, extra) {
        map.extend(extra);
    }
    v
}

/// The decision and trace as JSON.
pub fn to_json(request: &Request, eval: &Evaluation<'_>) -> Value {
    let (decision, deny, missing) = match &eval.decision {
        Decision::Allow => ("Allow", Value::Null, Value::Null),
        Decision::ExplicitDeny {
            kind,
            policy_id,
            statement,
            sid,
        } => (
            "ExplicitDeny",
            json!({"policy_type": kind.as_str(), "policy_type_description": kind.description(),
                   "policy": policy_id, "statement": statement, "sid": sid}),
            Value::Null,
        ),
        Decision::ImplicitDeny { missing } => (
            "ImplicitDeny",
            Value::Null,
            json!({"policy_type": missing.as_str(), "policy_type_description": missing.description()}),
        ),
    };
    let context: serde_json::Map<String, Value> = request
        .context
        .iter()
        .map(|e| {
            let v = match &e.values {
                ContextValues::Single(v) => Value::String(v.as_text().into_owned()),
                ContextValues::Multi(vs) => Value::Array(
                    vs.iter()
                        .map(|v| Value::String(v.as_text().into_owned()))
                        .collect(),
                ),
            };
            (e.name.clone(), v)
        })
        .collect();
    let policies: Vec<Value> = eval
        .policies
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "kind": p.kind.as_str(),
                "outcome": p.outcome.as_str(),
                "allow_principal_match": p.allow_match.map(principal_match_str),
                "statements": p.statements.iter().map(|s| {
                    let (applies, principal_match, mismatch) = match &s.result {
                        StatementResult::Applies { principal } => (true, principal.map(principal_match_str), Value::Null),
                        StatementResult::NotApplicable(m) => (false, None, mismatch_json(m, s.statement, request)),
                    };
                    json!({
                        "index": s.index,
                        "sid": s.statement.sid,
                        "effect": s.statement.effect.as_str(),
                        "applies": applies,
                        "principal_match": principal_match,
                        "mismatch": mismatch,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "decision": decision,
        "allowed": eval.decision.is_allowed(),
        "reason": eval.decision.denial_reason(request.action.as_str()),
        "message": access_denied_message(request, &eval.decision),
        "explicit_deny": deny,
        "missing_allow": missing,
        "request": {
            "principal": request.principal.arn(),
            "principal_kind": kind_str(request.principal.kind()),
            "action": request.action.as_str(),
            "resource": request.resource,
            "same_account": eval.same_account,
            "context": context,
        },
        "policies": policies,
    })
}
