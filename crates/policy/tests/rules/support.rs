//! Shared helpers for the rule tables.
#![allow(dead_code)]

use ferrokms_policy::{
    evaluate, evaluate_with, Action, CombineMode, Context, ContextValue, Decision, Evaluation,
    EvaluationOptions, ParseOptions, Policy, PolicyError, PolicyInput, PolicyKind, Request,
    RequestPrincipal,
};

pub const ACCT: &str = "111122223333";
pub const OTHER: &str = "444455556666";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
pub const USER: &str = "arn:aws:iam::111122223333:user/alice";
pub const ROOT: &str = "arn:aws:iam::111122223333:root";
pub const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/Admin/alice-session";
pub const ROLE: &str = "arn:aws:iam::111122223333:role/ops/Admin";

pub fn parse(kind: PolicyKind, text: &str) -> Policy {
    match Policy::parse(text, &ParseOptions::for_kind(kind)) {
        Ok(p) => p,
        Err(e) => panic!("policy should parse: {e}\n{text}"),
    }
}

pub fn parse_err(text: &str, options: &ParseOptions) -> PolicyError {
    match Policy::parse(text, options) {
        Ok(p) => panic!("policy should be rejected: {p:?}\n{text}"),
        Err(e) => e,
    }
}

pub fn principal(arn: &str) -> RequestPrincipal {
    match RequestPrincipal::from_arn(arn) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

pub fn action(a: &str) -> Action {
    match Action::parse(a) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    }
}

pub fn request(principal_arn: &str, act: &str, resource: &str) -> Request {
    Request::new(principal(principal_arn), action(act), resource)
}

pub fn strs(v: &[&str]) -> Vec<ContextValue> {
    v.iter().map(|s| ContextValue::from(*s)).collect()
}

pub fn ctx() -> Context {
    Context::new()
}

/// Whether a single identity-policy Allow statement with `condition` applies to a request
/// with context `c`.
pub fn holds(condition: &str, c: Context) -> bool {
    holds_versioned("2012-10-17", condition, c)
}

pub fn holds_versioned(version: &str, condition: &str, c: Context) -> bool {
    let text = format!(
        r#"{{"Version":"{version}","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{condition}}}}}"#
    );
    let p = parse(PolicyKind::IdentityBased, &text);
    let r = request(USER, "kms:Sign", KEY_ARN).with_context(c);
    evaluate(&r, &[PolicyInput::new("id", PolicyKind::IdentityBased, &p)])
        .decision
        .is_allowed()
}

/// Evaluates `policies` (kind, text) for `r` with the standard rules.
pub fn decide(r: &Request, policies: &[(PolicyKind, &str)]) -> Decision {
    decide_mode(r, policies, CombineMode::Standard)
}

pub fn decide_mode(r: &Request, policies: &[(PolicyKind, &str)], mode: CombineMode) -> Decision {
    let parsed: Vec<(PolicyKind, Policy)> =
        policies.iter().map(|(k, t)| (*k, parse(*k, t))).collect();
    let inputs: Vec<PolicyInput<'_>> = parsed
        .iter()
        .enumerate()
        .map(|(i, (k, p))| PolicyInput::new(["p0", "p1", "p2", "p3", "p4", "p5"][i.min(5)], *k, p))
        .collect();
    let e: Evaluation<'_> = evaluate_with(r, &inputs, &EvaluationOptions { mode });
    e.decision
}

/// An identity policy allowing `action` on `resource`.
pub fn allow_identity(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

/// A resource policy allowing `principal` (JSON) `action` on `*`.
pub fn allow_resource(principal_json: &str, action: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{principal_json},"Action":"{action}","Resource":"*"}}]}}"#
    )
}

/// A single statement applies to the request (identity policy), given action and resource
/// elements as JSON fragments.
pub fn statement_applies(elements: &str, act: &str, resource: &str) -> bool {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow",{elements}}}}}"#);
    let p = parse(PolicyKind::IdentityBased, &text);
    let r = request(USER, act, resource);
    evaluate(&r, &[PolicyInput::new("id", PolicyKind::IdentityBased, &p)])
        .decision
        .is_allowed()
}

/// Whether a resource policy Allow with `principal_json` admits the caller `r`.
pub fn principal_admits(principal_json: &str, r: &Request) -> bool {
    let text = allow_resource(principal_json, "kms:*");
    let p = parse(PolicyKind::ResourceBased, &text);
    let e =
        ferrokms_policy::evaluate_policy(r, PolicyInput::new("rp", PolicyKind::ResourceBased, &p));
    e.allow_match.is_some()
}

/// Same, with NotPrincipal in an Allow statement (applies = matched).
pub fn not_principal_applies(principal_json: &str, r: &Request) -> bool {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","NotPrincipal":{principal_json},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    let p = parse(PolicyKind::ResourceBased, &text);
    let e =
        ferrokms_policy::evaluate_policy(r, PolicyInput::new("rp", PolicyKind::ResourceBased, &p));
    e.outcome == ferrokms_policy::PolicyOutcome::ExplicitDeny
}

/// `cases! { name: condition_json, context => expected; ... }`
#[macro_export]
macro_rules! cases {
    ($($name:ident: $cond:expr, $ctx:expr => $want:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!($crate::support::holds($cond, $ctx), $want, "condition {}", $cond);
            }
        )*
    };
}
