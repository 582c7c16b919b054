//! Property tests, including a deliberately simple reference model of the semantics that is
//! checked against the production evaluator (the approach cedar-policy uses).
//!
//! The model works on its own small AST, written for clarity rather than speed: naive
//! recursive wildcard matching, straight-line condition rules, and the combination rules
//! spelled out case by case. Random policies are rendered to JSON, parsed by the production
//! parser, and both evaluators must reach the same decision.

use ferrokms_policy::{
    evaluate_with, Action, CombineMode, Context, ContextValue, Decision, EvaluationOptions,
    ParseOptions, Policy, PolicyInput, PolicyKind, PolicyOutcome, Request, RequestPrincipal,
};
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------------------------
// Reference AST
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct RefCond {
    op: &'static str,
    set: Option<&'static str>,
    if_exists: bool,
    key: &'static str,
    values: Vec<&'static str>,
}

#[derive(Debug, Clone)]
struct RefStmt {
    allow: bool,
    principal: Option<(bool, Vec<&'static str>)>,
    action: (bool, Vec<&'static str>),
    resource: (bool, Vec<&'static str>),
    conds: Vec<RefCond>,
}

#[derive(Debug, Clone)]
struct RefPolicy {
    kind: PolicyKind,
    statements: Vec<RefStmt>,
}

#[derive(Debug, Clone)]
struct Caller {
    arn: &'static str,
    account: &'static str,
    root: bool,
    role_arn: Option<&'static str>,
}

#[derive(Debug, Clone)]
struct RefRequest {
    caller: Caller,
    action: &'static str,
    resource: &'static str,
    /// key → values (single-valued keys have one value and `multi == false`)
    ctx: Vec<(&'static str, bool, Vec<&'static str>)>,
}

const ACTION_PATTERNS: &[&str] = &[
    "*",
    "kms:*",
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:Get*",
    "kms:?ncrypt",
    "s3:*",
    "KMS:encrypt",
];
const ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GetKeyPolicy",
    "s3:GetObject",
];
const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:kms:*:111122223333:key/*",
    "arn:aws:kms:us-east-1:111122223333:key/k1",
    "arn:aws:kms:*:444455556666:key/*",
    "arn:aws:kms:us-east-1:111122223333:key/k?",
    "arn:aws:kms:us-*:*:key/k*",
];
const RESOURCES: &[&str] = &[
    "arn:aws:kms:us-east-1:111122223333:key/k1",
    "arn:aws:kms:us-east-1:111122223333:key/k22",
    "arn:aws:kms:us-east-1:444455556666:key/k1",
];
const PRINCIPALS: &[&str] = &[
    "*",
    "111122223333",
    "arn:aws:iam::444455556666:root",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:role/Admin",
    "arn:aws:sts::111122223333:assumed-role/Admin/s1",
    "arn:aws:iam::444455556666:user/bob",
];
const CALLERS: &[Caller] = &[
    Caller {
        arn: "arn:aws:iam::111122223333:user/alice",
        account: "111122223333",
        root: false,
        role_arn: None,
    },
    Caller {
        arn: "arn:aws:sts::111122223333:assumed-role/Admin/s1",
        account: "111122223333",
        root: false,
        role_arn: Some("arn:aws:iam::111122223333:role/Admin"),
    },
    Caller {
        arn: "arn:aws:iam::111122223333:root",
        account: "111122223333",
        root: true,
        role_arn: None,
    },
    Caller {
        arn: "arn:aws:iam::444455556666:user/bob",
        account: "444455556666",
        root: false,
        role_arn: None,
    },
];
const STRING_OPS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
];
const NUMERIC_OPS: &[&str] = &[
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericGreaterThanEquals",
];
const STRING_VALUES: &[&str] = &["x", "y", "X", "x*", "?", "xy"];
const NUMBER_VALUES: &[&str] = &["1", "5", "10", "5.0"];
const KEYS: &[&str] = &["k:a", "k:b", "k:m"];

fn cond_strategy() -> impl Strategy<Value = RefCond> {
    let set = prop_oneof![
        Just(None),
        Just(Some("ForAllValues")),
        Just(Some("ForAnyValue"))
    ];
    prop_oneof![
        (
            select(STRING_OPS),
            set.clone(),
            any::<bool>(),
            select(KEYS),
            prop::collection::vec(select(STRING_VALUES), 1..3)
        )
            .prop_map(|(op, set, if_exists, key, values)| RefCond {
                op,
                set,
                if_exists,
                key,
                values
            }),
        (
            select(NUMERIC_OPS),
            set,
            any::<bool>(),
            prop::collection::vec(select(NUMBER_VALUES), 1..3)
        )
            .prop_map(|(op, set, if_exists, values)| RefCond {
                op,
                set,
                if_exists,
                key: "k:n",
                values
            }),
        (select(&["k:a", "k:n", "k:m"][..]), any::<bool>()).prop_map(|(key, b)| RefCond {
            op: "Null",
            set: None,
            if_exists: false,
            key,
            values: vec![if b { "true" } else { "false" }],
        }),
        (any::<bool>(), any::<bool>()).prop_map(|(if_exists, b)| RefCond {
            op: "Bool",
            set: None,
            if_exists,
            key: "k:bool",
            values: vec![if b { "true" } else { "false" }],
        }),
    ]
}

fn stmt_strategy(kind: PolicyKind) -> impl Strategy<Value = RefStmt> {
    let principal = if kind == PolicyKind::ResourceBased {
        (
            any::<bool>(),
            prop::collection::vec(select(PRINCIPALS), 1..3),
        )
            .prop_map(|(neg, v)| Some((neg && v.iter().all(|p| *p != "*"), v)))
            .boxed()
    } else {
        Just(None).boxed()
    };
    (
        prop::bool::weighted(0.7),
        principal,
        (
            prop::bool::weighted(0.2),
            prop::collection::vec(select(ACTION_PATTERNS), 1..3),
        ),
        (
            prop::bool::weighted(0.2),
            prop::collection::vec(select(RESOURCE_PATTERNS), 1..3),
        ),
        prop::collection::vec(cond_strategy(), 0..3),
    )
        .prop_map(|(allow, principal, action, resource, conds)| RefStmt {
            allow,
            principal,
            action,
            resource,
            conds,
        })
}

fn policy_strategy(kind: PolicyKind) -> impl Strategy<Value = RefPolicy> {
    prop::collection::vec(stmt_strategy(kind), 1..5)
        .prop_map(move |statements| RefPolicy { kind, statements })
}

fn policies_strategy() -> impl Strategy<Value = Vec<RefPolicy>> {
    (
        prop::option::of(policy_strategy(PolicyKind::ResourceBased)),
        prop::collection::vec(policy_strategy(PolicyKind::IdentityBased), 0..3),
        prop::option::weighted(0.3, policy_strategy(PolicyKind::PermissionsBoundary)),
        prop::option::weighted(0.3, policy_strategy(PolicyKind::SessionPolicy)),
    )
        .prop_map(|(r, ids, b, s)| {
            let mut v = Vec::new();
            v.extend(r);
            v.extend(ids);
            v.extend(b);
            v.extend(s);
            v
        })
}

fn ctx_strategy() -> impl Strategy<Value = Vec<(&'static str, bool, Vec<&'static str>)>> {
    (
        prop::option::of(select(STRING_VALUES)),
        prop::option::of(select(STRING_VALUES)),
        prop::option::of(prop::collection::vec(select(STRING_VALUES), 0..3)),
        prop::option::of(select(&["1", "5", "7", "10", "abc"][..])),
        prop::option::of(select(&["true", "false"][..])),
    )
        .prop_map(|(a, b, m, n, bo)| {
            let mut v = Vec::new();
            if let Some(a) = a {
                v.push(("k:a", false, vec![a]));
            }
            if let Some(b) = b {
                v.push(("k:b", false, vec![b]));
            }
            if let Some(m) = m {
                v.push(("k:m", true, m));
            }
            if let Some(n) = n {
                v.push(("k:n", false, vec![n]));
            }
            if let Some(bo) = bo {
                v.push(("k:bool", false, vec![bo]));
            }
            v
        })
}

fn request_strategy() -> impl Strategy<Value = RefRequest> {
    (
        select(CALLERS),
        select(ACTIONS),
        select(RESOURCES),
        ctx_strategy(),
    )
        .prop_map(|(caller, action, resource, ctx)| RefRequest {
            caller,
            action,
            resource,
            ctx,
        })
}

// ---------------------------------------------------------------------------------------------
// Rendering to policy JSON and building production requests
// ---------------------------------------------------------------------------------------------

fn json_list(v: &[&str]) -> serde_json::Value {
    serde_json::Value::Array(
        v.iter()
            .map(|s| serde_json::Value::String((*s).to_string()))
            .collect(),
    )
}

fn render(p: &RefPolicy) -> String {
    let stmts: Vec<serde_json::Value> = p
        .statements
        .iter()
        .map(|s| {
            let mut m = serde_json::Map::new();
            m.insert(
                "Effect".into(),
                (if s.allow { "Allow" } else { "Deny" }).into(),
            );
            if let Some((neg, ps)) = &s.principal {
                let name = if *neg { "NotPrincipal" } else { "Principal" };
                if ps.len() == 1 && ps[0] == "*" {
                    m.insert(name.into(), "*".into());
                } else {
                    m.insert(name.into(), serde_json::json!({ "AWS": json_list(ps) }));
                }
            }
            m.insert(
                (if s.action.0 { "NotAction" } else { "Action" }).into(),
                json_list(&s.action.1),
            );
            m.insert(
                (if s.resource.0 {
                    "NotResource"
                } else {
                    "Resource"
                })
                .into(),
                json_list(&s.resource.1),
            );
            if !s.conds.is_empty() {
                let mut c = serde_json::Map::new();
                for rc in &s.conds {
                    let name = format!(
                        "{}{}{}",
                        rc.set.map(|s| format!("{s}:")).unwrap_or_default(),
                        rc.op,
                        if rc.if_exists { "IfExists" } else { "" }
                    );
                    // Duplicate operator names are not allowed: make each block's key unique
                    // by skipping repeats (the reference model sees the same filtered list).
                    if c.contains_key(&name) {
                        continue;
                    }
                    let mut keys = serde_json::Map::new();
                    keys.insert(rc.key.to_string(), json_list(&rc.values));
                    c.insert(name, serde_json::Value::Object(keys));
                }
                m.insert("Condition".into(), serde_json::Value::Object(c));
            }
            serde_json::Value::Object(m)
        })
        .collect();
    serde_json::json!({ "Version": "2012-10-17", "Statement": stmts }).to_string()
}

/// The conditions the rendered JSON actually contains (first block per operator name).
fn effective_conds(s: &RefStmt) -> Vec<&RefCond> {
    let mut seen: Vec<(Option<&str>, &str, bool)> = Vec::new();
    let mut out = Vec::new();
    for c in &s.conds {
        let id = (c.set, c.op, c.if_exists);
        if !seen.contains(&id) {
            seen.push(id);
            out.push(c);
        }
    }
    out
}

fn build_request(r: &RefRequest) -> Request {
    let mut p = RequestPrincipal::from_arn(r.caller.arn).unwrap_or_else(|e| panic!("{e}"));
    if let Some(role) = r.caller.role_arn {
        p = p.with_role_arn(role);
    }
    let mut ctx = Context::new();
    for (k, multi, vals) in &r.ctx {
        if *multi {
            ctx.insert_multi(k, vals.iter().map(|v| ContextValue::from(*v)).collect());
        } else if let Some(v) = vals.first() {
            ctx.insert(k, *v);
        }
    }
    let action = Action::parse(r.action).unwrap_or_else(|e| panic!("{e}"));
    Request::new(p, action, r.resource).with_context(ctx)
}

fn parse_all(ps: &[RefPolicy]) -> Vec<(PolicyKind, Policy)> {
    ps.iter()
        .map(|p| {
            let text = render(p);
            let parsed = Policy::parse(&text, &ParseOptions::for_kind(p.kind))
                .unwrap_or_else(|e| panic!("{e}\n{text}"));
            (p.kind, parsed)
        })
        .collect()
}

fn production(
    ps: &[(PolicyKind, Policy)],
    r: &Request,
    mode: CombineMode,
) -> (Decision, Vec<PolicyOutcome>) {
    let inputs: Vec<PolicyInput<'_>> = ps
        .iter()
        .map(|(k, p)| PolicyInput::new("p", *k, p))
        .collect();
    let e = evaluate_with(r, &inputs, &EvaluationOptions { mode });
    (e.decision, e.policies.iter().map(|p| p.outcome).collect())
}

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

mod model {
    use super::*;

    pub fn glob(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => glob(&p[1..], t) || (!t.is_empty() && glob(p, &t[1..])),
            Some('?') => !t.is_empty() && glob(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && glob(&p[1..], &t[1..]),
        }
    }

    fn g(p: &str, t: &str) -> bool {
        glob(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    fn action(pat: &str, a: &str) -> bool {
        g(&pat.to_lowercase(), &a.to_lowercase())
    }

    fn resource(pat: &str, r: &str) -> bool {
        if pat == "*" {
            return true;
        }
        let pp: Vec<&str> = pat.splitn(6, ':').collect();
        let rp: Vec<&str> = r.splitn(6, ':').collect();
        pp.len() == 6 && rp.len() == 6 && pp.iter().zip(&rp).all(|(p, r)| g(p, r))
    }

    /// 0 = no match, 1 = account, 2 = role, 3 = direct.
    fn principal_value(v: &str, c: &Caller) -> u8 {
        let account_of = |v: &str| -> Option<String> {
            if v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()) {
                Some(v.to_string())
            } else {
                v.strip_prefix("arn:aws:iam::")
                    .and_then(|r| r.strip_suffix(":root"))
                    .map(str::to_string)
            }
        };
        if v == "*" {
            3
        } else if let Some(a) = account_of(v) {
            if a == c.account {
                if c.root {
                    3
                } else {
                    1
                }
            } else {
                0
            }
        } else if v == c.arn {
            3
        } else if Some(v) == c.role_arn {
            2
        } else {
            0
        }
    }

    /// NotPrincipal applies unless every identity of the caller is listed.
    fn not_principal_applies(vals: &[&str], c: &Caller) -> bool {
        let listed = |pred: &dyn Fn(&str) -> bool| vals.iter().any(|v| *v == "*" || pred(v));
        let account_listed =
            listed(&|v| v == c.account || v == format!("arn:aws:iam::{}:root", c.account));
        let self_listed = c.root || listed(&|v| v == c.arn);
        let role_listed = c.role_arn.is_none_or(|r| listed(&|v| v == r));
        !(account_listed && self_listed && role_listed)
    }

    fn num(s: &str) -> Option<f64> {
        s.parse::<f64>().ok().filter(|_| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-')
        })
    }

    /// Positive-sense match of one request value against one policy value.
    fn base(op: &str, r: &str, p: &str) -> Option<bool> {
        Some(match op {
            "StringEquals" | "StringNotEquals" => r == p,
            "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => {
                r.to_lowercase() == p.to_lowercase()
            }
            "StringLike" | "StringNotLike" => g(p, r),
            "NumericEquals" | "NumericNotEquals" => num(r)? == num(p)?,
            "NumericLessThan" => num(r)? < num(p)?,
            "NumericGreaterThanEquals" => num(r)? >= num(p)?,
            "Bool" => r.eq_ignore_ascii_case(p),
            _ => false,
        })
    }

    fn negated(op: &str) -> bool {
        op.contains("Not")
    }

    fn cond(c: &RefCond, ctx: &[(&str, bool, Vec<&str>)]) -> bool {
        let found = ctx.iter().find(|(k, _, _)| *k == c.key).map(|(_, _, v)| v);
        if c.op == "Null" {
            let absent = found.is_none_or(std::vec::Vec::is_empty);
            return c.values.iter().any(|v| (*v == "true") == absent);
        }
        let Some(vals) = found else {
            if c.if_exists {
                return true;
            }
            return match c.set {
                Some("ForAllValues") => true,
                Some(_) => false,
                None => negated(c.op),
            };
        };
        // m(r): does request value r match any listed value? None if incomparable.
        let m = |r: &str| -> Option<bool> {
            let mut any = false;
            for p in &c.values {
                any |= base(c.op, r, p)?;
            }
            Some(any)
        };
        let good = |r: &str| -> Option<bool> { m(r).map(|b| b != negated(c.op)) };
        match c.set {
            Some("ForAllValues") => vals.iter().all(|r| good(r) == Some(true)),
            Some(_) => vals.iter().any(|r| good(r) == Some(true)),
            None if negated(c.op) => vals.iter().all(|r| m(r) == Some(false)),
            None => vals.iter().any(|r| m(r) == Some(true)),
        }
    }

    /// Some(principal strength) when the statement applies (strength 3 for identity side).
    fn statement(s: &RefStmt, kind: PolicyKind, r: &RefRequest) -> Option<u8> {
        let a = s.action.1.iter().any(|p| action(p, r.action)) != s.action.0;
        let res = s.resource.1.iter().any(|p| resource(p, r.resource)) != s.resource.0;
        if !a || !res {
            return None;
        }
        let strength = if kind == PolicyKind::ResourceBased {
            let (neg, vals) = s.principal.as_ref()?;
            if *neg {
                if not_principal_applies(vals, &r.caller) {
                    3
                } else {
                    return None;
                }
            } else {
                let best = vals
                    .iter()
                    .map(|v| principal_value(v, &r.caller))
                    .max()
                    .unwrap_or(0);
                if best == 0 {
                    return None;
                }
                best
            }
        } else {
            3
        };
        effective_conds(s)
            .iter()
            .all(|c| cond(c, &r.ctx))
            .then_some(strength)
    }

    /// (outcome, strongest allow principal match) per policy.
    pub fn policy(p: &RefPolicy, r: &RefRequest) -> (PolicyOutcome, u8) {
        let mut deny = false;
        let mut allow = 0u8;
        for s in &p.statements {
            if let Some(strength) = statement(s, p.kind, r) {
                if s.allow {
                    allow = allow.max(strength);
                } else {
                    deny = true;
                }
            }
        }
        let outcome = if deny {
            PolicyOutcome::ExplicitDeny
        } else if allow > 0 {
            PolicyOutcome::Allow
        } else {
            PolicyOutcome::NotApplicable
        };
        (outcome, allow)
    }

    /// Decision as (allowed, explicit-deny kind, missing kind).
    pub fn decide(
        ps: &[RefPolicy],
        r: &RefRequest,
        mode: CombineMode,
    ) -> (bool, Option<PolicyKind>, Option<PolicyKind>) {
        let results: Vec<(PolicyKind, PolicyOutcome, u8)> = ps
            .iter()
            .map(|p| {
                let (o, s) = policy(p, r);
                (p.kind, o, s)
            })
            .collect();
        for k in PolicyKind::ALL {
            if results
                .iter()
                .any(|(kk, o, _)| *kk == k && *o == PolicyOutcome::ExplicitDeny)
            {
                return (false, Some(k), None);
            }
        }
        let present = |k| results.iter().any(|(kk, _, _)| *kk == k);
        let allows = |k| {
            results
                .iter()
                .any(|(kk, o, _)| *kk == k && *o == PolicyOutcome::Allow)
        };
        let id = r.caller.root || allows(PolicyKind::IdentityBased);
        let pb =
            !present(PolicyKind::PermissionsBoundary) || allows(PolicyKind::PermissionsBoundary);
        let sp = !present(PolicyKind::SessionPolicy) || allows(PolicyKind::SessionPolicy);
        let rp = results
            .iter()
            .filter(|(k, _, _)| *k == PolicyKind::ResourceBased)
            .map(|(_, _, s)| *s)
            .max()
            .unwrap_or(0);
        let resource_account = r.resource.split(':').nth(4).unwrap_or("");
        let same = resource_account == r.caller.account;
        let deny = |k| (false, None, Some(k));
        let caps = || {
            if !pb {
                deny(PolicyKind::PermissionsBoundary)
            } else if !sp {
                deny(PolicyKind::SessionPolicy)
            } else {
                (true, None, None)
            }
        };
        let identity = || {
            if !id {
                deny(PolicyKind::IdentityBased)
            } else {
                caps()
            }
        };
        if !same {
            return if rp == 0 {
                deny(PolicyKind::ResourceBased)
            } else {
                identity()
            };
        }
        match (rp, mode) {
            (3, _) => (true, None, None),
            (2, _) => caps(),
            (0, CombineMode::ResourcePolicyRequired) => deny(PolicyKind::ResourceBased),
            _ => identity(),
        }
    }
}

fn summarize(d: &Decision) -> (bool, Option<PolicyKind>, Option<PolicyKind>) {
    match d {
        Decision::Allow => (true, None, None),
        Decision::ExplicitDeny { kind, .. } => (false, Some(*kind), None),
        Decision::ImplicitDeny { missing } => (false, None, Some(*missing)),
    }
}

fn mode_strategy() -> impl Strategy<Value = CombineMode> {
    prop_oneof![
        Just(CombineMode::Standard),
        Just(CombineMode::ResourcePolicyRequired)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reference_model_agrees_with_evaluator(ps in policies_strategy(), r in request_strategy(), mode in mode_strategy()) {
        let parsed = parse_all(&ps);
        let req = build_request(&r);
        let (decision, outcomes) = production(&parsed, &req, mode);
        let expected_outcomes: Vec<PolicyOutcome> = ps.iter().map(|p| model::policy(p, &r).0).collect();
        prop_assert_eq!(&outcomes, &expected_outcomes, "per-policy outcomes differ\n{:#?}", ps);
        prop_assert_eq!(summarize(&decision), model::decide(&ps, &r, mode), "decision differs\n{:#?}", ps);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn explicit_deny_always_wins(ps in policies_strategy(), r in request_strategy(), mode in mode_strategy(), target in 0usize..4) {
        let mut ps = ps;
        let deny = RefStmt { allow: false, principal: None, action: (false, vec!["*"]), resource: (false, vec!["*"]), conds: vec![] };
        let kind = PolicyKind::ALL[target];
        let mut deny = deny;
        if kind == PolicyKind::ResourceBased {
            deny.principal = Some((false, vec!["*"]));
        }
        match ps.iter_mut().find(|p| p.kind == kind) {
            Some(p) => p.statements.push(deny),
            None => ps.push(RefPolicy { kind, statements: vec![deny] }),
        }
        let parsed = parse_all(&ps);
        let (decision, _) = production(&parsed, &build_request(&r), mode);
        prop_assert!(matches!(decision, Decision::ExplicitDeny { .. }), "{:?}", decision);
    }

    #[test]
    fn statement_order_never_changes_a_decision(ps in policies_strategy(), r in request_strategy(), mode in mode_strategy(), seed in any::<u64>()) {
        let req = build_request(&r);
        let (before, _) = production(&parse_all(&ps), &req, mode);
        let mut shuffled = ps.clone();
        let mut s = seed | 1;
        for p in &mut shuffled {
            // A small deterministic shuffle (xorshift) so failures reproduce.
            for i in (1..p.statements.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                let j = (s % (i as u64 + 1)) as usize;
                p.statements.swap(i, j);
            }
        }
        let (after, _) = production(&parse_all(&shuffled), &req, mode);
        let strip = |d: &Decision| match d {
            Decision::ExplicitDeny { kind, policy_id, .. } => (false, Some(*kind), Some(policy_id.clone()), None),
            Decision::ImplicitDeny { missing } => (false, None, None, Some(*missing)),
            Decision::Allow => (true, None, None, None),
        };
        prop_assert_eq!(strip(&before), strip(&after));
    }

    #[test]
    fn adding_an_allow_statement_never_turns_allow_into_deny(ps in policies_strategy(), r in request_strategy(), mode in mode_strategy(), which in any::<prop::sample::Index>(), extra in stmt_strategy(PolicyKind::IdentityBased)) {
        let req = build_request(&r);
        let (before, _) = production(&parse_all(&ps), &req, mode);
        if ps.is_empty() || !before.is_allowed() {
            // Vacuous case; rejecting instead would starve proptest (most random requests are denied).
            return Ok(());
        }
        let mut ps = ps;
        let i = which.index(ps.len());
        let mut extra = extra;
        extra.allow = true;
        if ps[i].kind == PolicyKind::ResourceBased {
            extra.principal = Some((false, vec!["*"]));
        }
        ps[i].statements.push(extra);
        let (after, _) = production(&parse_all(&ps), &req, mode);
        prop_assert!(after.is_allowed(), "{:?}", after);
    }

    #[test]
    fn parse_serialize_parse_is_the_identity(ps in policies_strategy()) {
        for (kind, p) in parse_all(&ps) {
            let text = p.to_json_string();
            let again = Policy::parse(&text, &ParseOptions::for_kind(kind)).unwrap_or_else(|e| panic!("{e}\n{text}"));
            prop_assert_eq!(&again, &p);
            let pretty = p.to_json_string_pretty();
            prop_assert_eq!(&Policy::parse(&pretty, &ParseOptions::for_kind(kind)).unwrap_or_else(|e| panic!("{e}")), &p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hostile input never panics (this also stands in for `cargo fuzz` where nightly is missing).
// ---------------------------------------------------------------------------------------------

const SEED_POLICY: &str = r#"{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"a","Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:role/R"]},"Action":["kms:*"],"Resource":"arn:aws:kms:*:111122223333:key/${aws:username}","Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":["a*"]},"NumericLessThan":{"k":1},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"BinaryEquals":{"b":"QQ=="},"Null":{"n":true}}},{"Effect":"Deny","NotPrincipal":"*","NotAction":"s3:*","NotResource":"*"}]}"#;

fn try_everything(bytes: &[u8]) {
    for kind in PolicyKind::ALL {
        if let Ok(p) = Policy::parse_bytes(bytes, &ParseOptions::for_kind(kind)) {
            let _ = p.to_json_string();
            let req = build_request(&RefRequest {
                caller: CALLERS[1].clone(),
                action: "kms:Decrypt",
                resource: RESOURCES[0],
                ctx: vec![("k:a", false, vec!["x"]), ("aws:TagKeys", true, vec!["ab"])],
            });
            let e = ferrokms_policy::evaluate(&req, &[PolicyInput::new("p", kind, &p)]);
            let _ = ferrokms_policy::explain::render_text(&req, &e);
            let _ = ferrokms_policy::explain::to_json(&req, &e);
        }
    }
    let _ = Policy::parse_bytes(bytes, &ParseOptions::default());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        try_everything(&bytes);
    }

    #[test]
    fn mutated_policies_never_panic(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8)) {
        let mut bytes = SEED_POLICY.as_bytes().to_vec();
        for (at, b, how) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = b,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, b),
            }
        }
        try_everything(&bytes);
    }

    #[test]
    fn wildcard_matching_agrees_with_naive_recursion(p in "[ab*?:]{0,8}", t in "[ab:]{0,10}") {
        let text = format!(r#"{{"Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"StringLike":{{"k":"{p}"}}}}}}}}"#);
        let policy = Policy::parse(&text, &ParseOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let req = build_request(&RefRequest { caller: CALLERS[0].clone(), action: "kms:Decrypt", resource: RESOURCES[0], ctx: vec![] })
            .with_context(Context::new().with("k", t.as_str()));
        let allowed = ferrokms_policy::evaluate(&req, &[PolicyInput::new("p", PolicyKind::IdentityBased, &policy)]).decision.is_allowed();
        let expected = model::glob(&p.chars().collect::<Vec<_>>(), &t.chars().collect::<Vec<_>>());
        prop_assert_eq!(allowed, expected);
    }
}

#[test]
fn seed_policy_parses() {
    assert!(Policy::parse(
        SEED_POLICY,
        &ParseOptions::for_kind(PolicyKind::ResourceBased)
    )
    .is_ok());
}
