//! IAM policy simulation (SimulateCustomPolicy, SimulatePrincipalPolicy)
//! and context-key discovery (GetContextKeysFor*Policy), on the policy
//! engine's per-statement trace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferrokms_policy::{
    evaluate_with, Action, CombineMode, Context, ContextValue, Decision, Effect, EvaluationOptions,
    Number, ParseOptions, Policy, PolicyInput, PolicyKind, Request, RequestPrincipal, Timestamp,
};
use ferrokms_types::AccountId;

use crate::{Caller, Directory, IamError};

/// One `ContextEntries` member.
#[derive(Debug, Clone, Default)]
pub struct ContextEntryInput {
    /// The context key, e.g. `aws:SourceIp`.
    pub key: String,
    /// Its values, as text.
    pub values: Vec<String>,
    /// The `ContextKeyType` (`string`, `ipList`...), which says how to read the values.
    pub key_type: String,
}

/// The parameters both simulations share.
#[derive(Debug, Clone, Default)]
pub struct SimulationInput {
    /// Identity-based policies to add (PolicyInputList).
    pub policies: Vec<String>,
    /// PermissionsBoundaryPolicyInputList.
    pub boundaries: Vec<String>,
    /// ResourcePolicy: the resource-based policy to evaluate with the others.
    pub resource_policy: Option<String>,
    /// ResourceOwner: the account that owns the resources.
    pub resource_owner: Option<String>,
    /// CallerArn: the principal to simulate as.
    pub caller_arn: Option<String>,
    /// ActionNames.
    pub actions: Vec<String>,
    /// ResourceArns; none means `*`.
    pub resources: Vec<String>,
    /// ContextEntries.
    pub context: Vec<ContextEntryInput>,
    /// Which of the action × resource pairs (in that order) to evaluate:
    /// the page asked for (`Marker`, `MaxItems`); `None` for all. Only
    /// these are evaluated, so a page costs what its own results cost.
    pub window: Option<std::ops::Range<usize>>,
}

impl SimulationInput {
    /// How many action × resource pairs the simulation has in all (one
    /// resource, `*`, when none is named).
    pub fn pairs(&self) -> usize {
        self.actions
            .len()
            .saturating_mul(self.resources.len().max(1))
    }
}

/// A line/column pair (1-based) in a policy document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A statement that decided a simulation result (`MatchedStatements`).
#[derive(Debug, Clone)]
pub struct MatchedStatement {
    /// The id of the policy holding it, as the input named it.
    pub source_policy_id: String,
    /// The `SourcePolicyType` AWS reports (`none` for policies given in the input,
    /// `user-managed`, `resource`...).
    pub source_policy_type: &'static str,
    /// Where the statement starts in the document.
    pub start: Position,
    /// Where the statement ends in the document.
    pub end: Position,
}

/// The answer for one action × resource pair (`EvaluationResults` member).
#[derive(Debug, Clone)]
pub struct SimulationResult {
    /// The action evaluated.
    pub action: String,
    /// The resource evaluated, or `*`.
    pub resource: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`.
    pub decision: &'static str,
    /// The statements that decided it.
    pub matched: Vec<MatchedStatement>,
    /// Condition keys the policies read that the input did not give.
    pub missing_context: Vec<String>,
    /// Set when permissions boundaries took part.
    pub allowed_by_boundary: Option<bool>,
    /// Per policy type (`IAM Policy`, `Resource Policy`...) decisions.
    pub details: Vec<(String, &'static str)>,
}

/// A policy taking part in a simulation.
struct SimPolicy {
    id: String,
    source_type: &'static str,
    kind: PolicyKind,
    text: String,
    parsed: Arc<Policy>,
}

fn parse_for(text: &str, kind: PolicyKind, what: &str) -> Result<Arc<Policy>, IamError> {
    Policy::parse(text, &ParseOptions::for_kind(kind))
        .map(Arc::new)
        .map_err(|e| IamError::InvalidInput(format!("Invalid {what}: {e}")))
}

fn invalid_context(key: &str, value: &str, ty: &str) -> IamError {
    IamError::InvalidInput(format!(
        "Invalid value {value} for context key {key} of type {ty}."
    ))
}

/// Builds the request context from ContextEntries, with every
/// ContextKeyType.
pub fn context_from_entries(entries: &[ContextEntryInput]) -> Result<Context, IamError> {
    let mut ctx = Context::new();
    for e in entries {
        if e.key.is_empty() || e.key.len() > 256 {
            return Err(crate::names::invalid(
                &e.key,
                "contextKeyName",
                "Member must have length between 5 and 256",
            ));
        }
        let (base, list) = match e.key_type.strip_suffix("List") {
            Some(b) => (b, true),
            None => (e.key_type.as_str(), false),
        };
        let mut values = Vec::with_capacity(e.values.len());
        for v in &e.values {
            let bad = || invalid_context(&e.key, v, &e.key_type);
            values.push(match base {
                "string" => ContextValue::String(v.clone()),
                "numeric" => ContextValue::Number(v.parse::<Number>().map_err(|_| bad())?),
                "boolean" => match v.to_ascii_lowercase().as_str() {
                    "true" => ContextValue::Bool(true),
                    "false" => ContextValue::Bool(false),
                    _ => return Err(bad()),
                },
                "ip" => ContextValue::Ip(v.parse::<IpAddr>().map_err(|_| bad())?),
                "binary" => ContextValue::Binary(B64.decode(v.trim()).map_err(|_| bad())?),
                "date" => ContextValue::Date(v.parse::<Timestamp>().map_err(|_| bad())?),
                _ => {
                    return Err(crate::names::invalid(
                        &e.key_type,
                        "contextKeyType",
                        "Member must satisfy enum value set: [string, stringList, numeric, numericList, boolean, booleanList, ip, ipList, binary, binaryList, date, dateList]",
                    ))
                }
            });
        }
        if list {
            ctx.insert_multi(&e.key, values);
        } else {
            match values.len() {
                1 => ctx.insert(&e.key, values.remove(0)),
                0 => {}
                _ => ctx.insert_multi(&e.key, values),
            }
        }
    }
    Ok(ctx)
}

/// Start and end of each statement object of a policy document
/// (`Statement` array elements, or the single `Statement` object), found
/// by scanning the JSON text. End is the position of the closing brace.
pub fn statement_spans(text: &str) -> Vec<(Position, Position)> {
    let mut spans = Vec::new();
    let (mut line, mut col) = (1usize, 0usize);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut cur = String::new();
    let mut last_key_at_1 = String::new();
    let mut pending_key = false;
    // Depth at which statement objects open (2 for an object value, 3 in an array).
    let mut stmt_depth: Option<usize> = None;
    let mut start = Position { line: 1, column: 1 };
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            col = 0;
            if in_str {
                cur.push(c);
            }
            continue;
        }
        col += 1;
        if in_str {
            if escaped {
                escaped = false;
                cur.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
                if depth == 1 {
                    pending_key = true;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                cur.clear();
            }
            ':' if depth == 1 && pending_key => {
                last_key_at_1 = cur.clone();
                pending_key = false;
                stmt_depth = None;
            }
            ',' if depth == 1 => {
                pending_key = false;
                last_key_at_1.clear();
            }
            '{' | '[' => {
                depth += 1;
                if depth == 2 && last_key_at_1 == "Statement" {
                    stmt_depth = Some(if c == '[' { 3 } else { 2 });
                }
                if c == '{' && stmt_depth == Some(depth) {
                    start = Position { line, column: col };
                }
            }
            '}' | ']' => {
                if c == '}' && stmt_depth == Some(depth) {
                    spans.push((start, Position { line, column: col }));
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
    spans
}

fn decision_name(d: &Decision) -> &'static str {
    match d {
        Decision::Allow => "allowed",
        Decision::ExplicitDeny { .. } => "explicitDeny",
        Decision::ImplicitDeny { .. } => "implicitDeny",
    }
}

/// Condition keys and policy variables a policy uses, as written.
fn policy_keys(p: &Policy, text: &str, out: &mut BTreeMap<String, String>) {
    for s in p.statements() {
        if let Some(c) = s.condition() {
            for b in c.blocks() {
                for e in b.entries() {
                    let k = e.key().as_str();
                    out.entry(k.to_ascii_lowercase())
                        .or_insert_with(|| k.to_string());
                }
            }
        }
    }
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let Some(end) = rest.find('}') else { break };
        let inner = rest[..end].split(',').next().unwrap_or("").trim();
        if inner.contains(':') && !inner.contains(char::is_whitespace) {
            out.entry(inner.to_ascii_lowercase())
                .or_insert_with(|| inner.to_string());
        }
        rest = &rest[end..];
    }
}

/// Bounds on one simulation (AWS documents none; these are ferrokms's, in
/// docs/identity.md). A simulation evaluates every action on every
/// resource against every statement, with the whole context: its cost is
/// their product, which a 1 MiB request could otherwise make billions.
/// Within them a simulation takes well under a second.
pub const MAX_CONTEXT_ENTRIES: usize = 100;
/// Context values, all entries together.
pub const MAX_CONTEXT_VALUES: usize = 1_000;
/// Action × resource pairs (ten pages of the largest `MaxItems`).
pub const MAX_SIMULATED_PAIRS: usize = 10_000;
/// Pairs evaluated for one request (its page) × statements of every
/// policy taking part.
pub const MAX_SIMULATION_WORK: usize = 250_000;

fn too_large(what: String) -> IamError {
    IamError::InvalidInput(format!(
        "The simulation is too large: {what}. Split it into several requests."
    ))
}

/// Refuses, before any evaluation, a simulation over the bounds above.
fn check_simulation_size(policies: &[SimPolicy], input: &SimulationInput) -> Result<(), IamError> {
    if input.context.len() > MAX_CONTEXT_ENTRIES {
        return Err(too_large(format!(
            "{} context entries (at most {MAX_CONTEXT_ENTRIES})",
            input.context.len()
        )));
    }
    let values: usize = input.context.iter().map(|e| e.values.len()).sum();
    if values > MAX_CONTEXT_VALUES {
        return Err(too_large(format!(
            "{values} context key values (at most {MAX_CONTEXT_VALUES})"
        )));
    }
    let pairs = input.pairs();
    if pairs > MAX_SIMULATED_PAIRS {
        return Err(too_large(format!(
            "{} actions on {} resources make {pairs} evaluations (at most {MAX_SIMULATED_PAIRS})",
            input.actions.len(),
            input.resources.len().max(1)
        )));
    }
    let statements: usize = policies.iter().map(|p| p.parsed.statements().len()).sum();
    let evaluated = input.window.as_ref().map_or(pairs, |w| w.len().min(pairs));
    let work = evaluated.saturating_mul(statements.max(1));
    if work > MAX_SIMULATION_WORK {
        return Err(too_large(format!(
            "{evaluated} evaluations of {statements} statements in one page (at most {MAX_SIMULATION_WORK} statement evaluations; ask for fewer with MaxItems)"
        )));
    }
    Ok(())
}

impl Directory {
    fn run_simulation(
        &self,
        caller: &Caller,
        principal: Option<RequestPrincipal>,
        policies: Vec<SimPolicy>,
        input: &SimulationInput,
    ) -> Result<Vec<SimulationResult>, IamError> {
        if input.actions.is_empty() {
            return Err(crate::names::invalid(
                "[]",
                "actionNames",
                "Member must not be null",
            ));
        }
        check_simulation_size(&policies, input)?;
        let base_context = context_from_entries(&input.context)?;
        let has_boundary = policies
            .iter()
            .any(|p| p.kind == PolicyKind::PermissionsBoundary);
        let has_resource_policy = policies.iter().any(|p| p.kind == PolicyKind::ResourceBased);
        let (principal, principal_context) = match principal {
            Some(p) => (p, true),
            // Not the root user, who would hold every permission: a user
            // of the caller's account that only the given policies govern.
            None => (
                RequestPrincipal::from_arn(&caller.account().iam_arn("user/SimulatedUser"))
                    .map_err(|e| IamError::Corrupt(e.to_string()))?,
                false,
            ),
        };
        let owner =
            match &input.resource_owner {
                Some(o) => {
                    let acct = o
                        .split(':')
                        .nth(4)
                        .filter(|a| !a.is_empty())
                        .unwrap_or(o.as_str());
                    Some(ferrokms_types::AccountId::parse(acct).map_err(|_| {
                        IamError::InvalidInput(format!("Invalid ResourceOwner: {o}"))
                    })?)
                }
                None => None,
            };
        let spans: Vec<Vec<(Position, Position)>> =
            policies.iter().map(|p| statement_spans(&p.text)).collect();
        let inputs: Vec<PolicyInput<'_>> = policies
            .iter()
            .map(|p| PolicyInput::new(&p.id, p.kind, &p.parsed))
            .collect();
        let resources = if input.resources.is_empty() {
            vec!["*".to_string()]
        } else {
            input.resources.clone()
        };
        let mut out = Vec::new();
        let mut index = 0usize;
        for action_name in &input.actions {
            let action = Action::parse(action_name).map_err(|_| {
                IamError::InvalidInput(format!(
                    "Actions must be of the form service:action, got {action_name}."
                ))
            })?;
            for resource in &resources {
                let wanted = input.window.as_ref().is_none_or(|w| w.contains(&index));
                index += 1;
                if !wanted {
                    continue;
                }
                let mut req = Request::new(principal.clone(), action.clone(), resource)
                    .with_context(base_context.clone());
                if let Some(o) = &owner {
                    req = req.with_resource_account(Some(o.clone()));
                } else if resource == "*" || req.resource_account.is_none() {
                    req = req.with_resource_account(principal.account().cloned());
                }
                if principal_context {
                    req = req.with_principal_context();
                }
                let eval = evaluate_with(
                    &req,
                    &inputs,
                    &EvaluationOptions {
                        mode: CombineMode::Standard,
                    },
                );
                let decision = decision_name(&eval.decision);
                let want = match eval.decision {
                    Decision::Allow => Some(Effect::Allow),
                    Decision::ExplicitDeny { .. } => Some(Effect::Deny),
                    Decision::ImplicitDeny { .. } => None,
                };
                let mut matched = Vec::new();
                let mut missing: BTreeMap<String, String> = BTreeMap::new();
                for (pi, pe) in eval.policies.iter().enumerate() {
                    for st in &pe.statements {
                        let relevant = matches!(
                            st.result,
                            ferrokms_policy::StatementResult::Applies { .. }
                                | ferrokms_policy::StatementResult::NotApplicable(
                                    ferrokms_policy::Mismatch::Condition(_)
                                )
                        );
                        if relevant {
                            if let Some(c) = st.statement.condition() {
                                for b in c.blocks() {
                                    for e in b.entries() {
                                        let k = e.key().as_str();
                                        if !req.context.contains(k) {
                                            missing
                                                .entry(k.to_ascii_lowercase())
                                                .or_insert_with(|| k.to_string());
                                        }
                                    }
                                }
                            }
                        }
                        if st.result.applies()
                            && Some(st.statement.effect()) == want
                            && pe.kind != PolicyKind::PermissionsBoundary
                        {
                            let (start, end) = spans[pi].get(st.index).copied().unwrap_or((
                                Position { line: 1, column: 1 },
                                Position { line: 1, column: 1 },
                            ));
                            matched.push(MatchedStatement {
                                source_policy_id: policies[pi].id.clone(),
                                source_policy_type: policies[pi].source_type,
                                start,
                                end,
                            });
                        }
                    }
                }
                let allowed_by_boundary = has_boundary.then(|| {
                    eval.summary(PolicyKind::PermissionsBoundary).allows
                        && !eval.summary(PolicyKind::PermissionsBoundary).explicit_deny
                });
                let mut details = Vec::new();
                if has_resource_policy {
                    let r = eval.summary(PolicyKind::ResourceBased);
                    details.push((
                        "Resource Policy".to_string(),
                        if r.explicit_deny {
                            "explicitDeny"
                        } else if r.allows {
                            "allowed"
                        } else {
                            "implicitDeny"
                        },
                    ));
                    let i = eval.summary(PolicyKind::IdentityBased);
                    details.push((
                        "IAM Policy".to_string(),
                        if i.explicit_deny {
                            "explicitDeny"
                        } else if i.allows {
                            "allowed"
                        } else {
                            "implicitDeny"
                        },
                    ));
                }
                out.push(SimulationResult {
                    action: action_name.clone(),
                    resource: resource.clone(),
                    decision,
                    matched,
                    missing_context: missing.into_values().collect(),
                    allowed_by_boundary,
                    details,
                });
            }
        }
        Ok(out)
    }

    fn custom_policies(&self, input: &SimulationInput) -> Result<Vec<SimPolicy>, IamError> {
        let mut v = Vec::new();
        for (i, text) in input.policies.iter().enumerate() {
            v.push(SimPolicy {
                id: format!("PolicyInputList.{}", i + 1),
                source_type: "none",
                kind: PolicyKind::IdentityBased,
                parsed: parse_for(text, PolicyKind::IdentityBased, "policy document")?,
                text: text.clone(),
            });
        }
        for (i, text) in input.boundaries.iter().enumerate() {
            v.push(SimPolicy {
                id: format!("PermissionsBoundaryPolicyInputList.{}", i + 1),
                source_type: "none",
                kind: PolicyKind::PermissionsBoundary,
                parsed: parse_for(
                    text,
                    PolicyKind::PermissionsBoundary,
                    "permissions boundary",
                )?,
                text: text.clone(),
            });
        }
        if let Some(text) = &input.resource_policy {
            v.push(SimPolicy {
                id: "ResourcePolicy".into(),
                source_type: "resource",
                kind: PolicyKind::ResourceBased,
                parsed: parse_for(text, PolicyKind::ResourceBased, "resource policy")?,
                text: text.clone(),
            });
        }
        Ok(v)
    }

    fn caller_principal(
        &self,
        input: &SimulationInput,
    ) -> Result<Option<RequestPrincipal>, IamError> {
        match &input.caller_arn {
            Some(a) => RequestPrincipal::from_arn(a)
                .map(Some)
                .map_err(|_| IamError::InvalidInput(format!("Invalid CallerArn: {a}"))),
            None if input.resource_policy.is_some() => Err(IamError::InvalidInput(
                "CallerArn must be specified when a ResourcePolicy is given.".into(),
            )),
            None => Ok(None),
        }
    }

    /// SimulateCustomPolicy
    pub fn simulate_custom_policy(
        &self,
        caller: &Caller,
        input: &SimulationInput,
    ) -> Result<Vec<SimulationResult>, IamError> {
        self.authorize(caller, "iam:SimulateCustomPolicy", "*")?;
        if input.policies.is_empty() {
            return Err(crate::names::invalid(
                "[]",
                "policyInputList",
                "Member must not be null",
            ));
        }
        let policies = self.custom_policies(input)?;
        let principal = self.caller_principal(input)?;
        self.run_simulation(caller, principal, policies, input)
    }

    /// The policies of a user (with its groups), group or role, labelled
    /// as SimulatePrincipalPolicy reports them.
    fn entity_policies(
        &self,
        account: &AccountId,
        source_arn: &str,
        with_boundary: bool,
    ) -> Result<(Vec<SimPolicy>, RequestPrincipal), IamError> {
        let no_entity = || IamError::NoSuchEntity(format!("Entity {source_arn} does not exist."));
        let resource = source_arn.splitn(6, ':').nth(5).ok_or_else(no_entity)?;
        let name = resource.rsplit('/').next().unwrap_or_default();
        let mut out = Vec::new();
        let push_owned = |out: &mut Vec<SimPolicy>,
                          source_type: &'static str,
                          inline: &BTreeMap<String, crate::PolicyDoc>,
                          attached: &[String]| {
            for (n, d) in inline {
                out.push(SimPolicy {
                    id: n.clone(),
                    source_type,
                    kind: PolicyKind::IdentityBased,
                    text: d.text.clone(),
                    parsed: d.parsed.clone(),
                });
            }
            for arn in attached {
                if let Some(p) = self.managed_policy(arn) {
                    if let Some(d) = p.default_doc() {
                        out.push(SimPolicy {
                            id: p.name.clone(),
                            source_type: "user-managed",
                            kind: PolicyKind::IdentityBased,
                            text: d.text.clone(),
                            parsed: d.parsed.clone(),
                        });
                    }
                }
            }
        };
        let mut boundary = None;
        let principal;
        if resource.starts_with("user/") {
            let u = self
                .find_user(account, name)
                .filter(|u| u.arn() == source_arn)
                .ok_or_else(no_entity)?;
            push_owned(&mut out, "user", &u.inline, &u.attached);
            for g in self.groups_of_user(account, &u.name) {
                push_owned(&mut out, "group", &g.inline, &g.attached);
            }
            boundary = u.boundary.clone();
            principal = RequestPrincipal::from_arn(source_arn)
                .map_err(|_| no_entity())?
                .with_unique_id(&u.id);
        } else if resource.starts_with("role/") {
            let r = self
                .find_role(account, name)
                .filter(|r| r.arn() == source_arn)
                .ok_or_else(no_entity)?;
            push_owned(&mut out, "role", &r.inline, &r.attached);
            boundary = r.boundary.clone();
            principal = RequestPrincipal::from_arn(
                &account.sts_arn(&format!("assumed-role/{}/SimulatePrincipalPolicy", r.name)),
            )
            .map_err(|_| no_entity())?
            .with_role_arn(&r.arn())
            .with_unique_id(&r.id);
        } else if resource.starts_with("group/") {
            let g = self
                .find_group(account, name)
                .filter(|g| g.arn() == source_arn)
                .ok_or_else(no_entity)?;
            push_owned(&mut out, "group", &g.inline, &g.attached);
            principal = RequestPrincipal::from_arn(&account.iam_arn("user/SimulatedGroupMember"))
                .map_err(|_| no_entity())?;
        } else {
            return Err(no_entity());
        }
        if with_boundary {
            if let Some(arn) = boundary {
                if let Some(d) = self
                    .managed_policy(&arn)
                    .and_then(|p| p.default_doc().cloned())
                {
                    out.push(SimPolicy {
                        id: arn.rsplit('/').next().unwrap_or(&arn).to_string(),
                        source_type: "user-managed",
                        kind: PolicyKind::PermissionsBoundary,
                        text: d.text.clone(),
                        parsed: d.parsed.clone(),
                    });
                }
            }
        }
        Ok((out, principal))
    }

    /// SimulatePrincipalPolicy: the entity's policies (a user's include its
    /// groups'), its boundary unless boundaries are given, plus the extra
    /// policies of the input.
    pub fn simulate_principal_policy(
        &self,
        caller: &Caller,
        source_arn: &str,
        input: &SimulationInput,
    ) -> Result<Vec<SimulationResult>, IamError> {
        self.authorize(caller, "iam:SimulatePrincipalPolicy", source_arn)?;
        let account = caller.account().clone();
        let (mut policies, principal) =
            self.entity_policies(&account, source_arn, input.boundaries.is_empty())?;
        policies.extend(self.custom_policies(input)?);
        let principal = match &input.caller_arn {
            Some(_) => self.caller_principal(input)?.unwrap_or(principal),
            None => principal,
        };
        self.run_simulation(caller, Some(principal), policies, input)
    }

    /// GetContextKeysForCustomPolicy
    pub fn context_keys_for_custom_policy(
        &self,
        caller: &Caller,
        policies: &[String],
    ) -> Result<Vec<String>, IamError> {
        self.authorize(caller, "iam:GetContextKeysForCustomPolicy", "*")?;
        if policies.is_empty() {
            return Err(crate::names::invalid(
                "[]",
                "policyInputList",
                "Member must not be null",
            ));
        }
        let mut keys = BTreeMap::new();
        for text in policies {
            let p = parse_for(text, PolicyKind::IdentityBased, "policy document")?;
            policy_keys(&p, text, &mut keys);
        }
        Ok(keys.into_values().collect())
    }

    /// GetContextKeysForPrincipalPolicy
    pub fn context_keys_for_principal_policy(
        &self,
        caller: &Caller,
        source_arn: &str,
        extra: &[String],
    ) -> Result<Vec<String>, IamError> {
        self.authorize(caller, "iam:GetContextKeysForPrincipalPolicy", source_arn)?;
        let account = caller.account().clone();
        let (policies, _) = self.entity_policies(&account, source_arn, false)?;
        let mut keys = BTreeMap::new();
        for p in &policies {
            policy_keys(&p.parsed, &p.text, &mut keys);
        }
        for text in extra {
            let p = parse_for(text, PolicyKind::IdentityBased, "policy document")?;
            policy_keys(&p, text, &mut keys);
        }
        Ok(keys.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_spans_find_each_statement_object() {
        let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": \"s3:*\", \"Resource\": \"*\"},\n    {\n      \"Effect\": \"Deny\",\n      \"Action\": \"s3:Get*\",\n      \"Resource\": \"*\"\n    }\n  ]\n}";
        let s = statement_spans(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].0, Position { line: 4, column: 5 });
        assert_eq!(s[1].0, Position { line: 5, column: 5 });
        assert_eq!(s[1].1, Position { line: 9, column: 5 });
        let single = statement_spans(
            r#"{"Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "*"}}"#,
        );
        assert_eq!(single.len(), 1);
        assert_eq!(single[0].0.column, 15);
    }

    #[test]
    fn every_context_key_type_is_read() {
        let e = |k: &str, t: &str, v: &[&str]| ContextEntryInput {
            key: k.into(),
            key_type: t.into(),
            values: v.iter().map(ToString::to_string).collect(),
        };
        let ctx = context_from_entries(&[
            e("a:s", "string", &["x"]),
            e("a:sl", "stringList", &["x", "y"]),
            e("a:n", "numeric", &["1.5"]),
            e("a:nl", "numericList", &["1", "2"]),
            e("a:b", "boolean", &["true"]),
            e("a:bl", "booleanList", &["true", "false"]),
            e("a:i", "ip", &["10.0.0.1"]),
            e("a:il", "ipList", &["10.0.0.1", "::1"]),
            e("a:y", "binary", &["aGk="]),
            e("a:yl", "binaryList", &["aGk="]),
            e("a:d", "date", &["2020-01-01T00:00:00Z"]),
            e("a:dl", "dateList", &["2020-01-01T00:00:00Z", "1600000000"]),
        ])
        .expect("every type reads");
        assert_eq!(ctx.iter().count(), 12);
        assert!(context_from_entries(&[e("a:n", "numeric", &["ten"])]).is_err());
        assert!(context_from_entries(&[e("a:n", "float", &["1"])]).is_err());
    }

    fn sim_policy(statements: usize) -> SimPolicy {
        let st: Vec<String> = (0..statements)
            .map(|i| {
                format!(
                    r#"{{"Sid":"S{i}","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}}"#
                )
            })
            .collect();
        let text = format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            st.join(",")
        );
        SimPolicy {
            id: "PolicyInputList.1".into(),
            source_type: "IAM Policy",
            kind: PolicyKind::IdentityBased,
            parsed: parse_for(&text, PolicyKind::IdentityBased, "policy").expect("parses"),
            text,
        }
    }

    fn input(actions: usize, resources: usize, entries: usize, values: usize) -> SimulationInput {
        SimulationInput {
            actions: (0..actions).map(|i| format!("kms:A{i}")).collect(),
            resources: (0..resources)
                .map(|i| format!("arn:aws:kms:us-east-1:111122223333:key/{i}"))
                .collect(),
            context: (0..entries)
                .map(|i| ContextEntryInput {
                    key: format!("aws:Key{i}"),
                    values: vec!["v".into(); values],
                    key_type: "stringList".into(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// An attacker's 1 MiB request could ask for billions of statement
    /// evaluations; every bound is refused before any is made, and a large
    /// but bounded simulation is let through.
    #[test]
    fn a_simulation_over_its_bounds_is_refused_before_evaluating_anything() {
        let one = [sim_policy(1)];
        assert!(check_simulation_size(&one, &input(100, 100, 10, 10)).is_ok());
        let refused = |r: Result<(), IamError>| match r {
            Err(IamError::InvalidInput(m)) => {
                assert!(m.starts_with("The simulation is too large"), "{m}");
            }
            other => panic!("expected InvalidInput, got {other:?}"),
        };
        refused(check_simulation_size(&one, &input(101, 100, 0, 0)));
        refused(check_simulation_size(
            &one,
            &input(1, 0, MAX_CONTEXT_ENTRIES + 1, 1),
        ));
        refused(check_simulation_size(
            &one,
            &input(1, 0, 2, MAX_CONTEXT_VALUES / 2 + 1),
        ));
        // A page of 1,000 pairs of a 251-statement policy: over the work
        // bound; 250 statements, or a smaller page, within it.
        let page = |n: usize| SimulationInput {
            window: Some(0..n),
            ..input(100, 100, 0, 0)
        };
        refused(check_simulation_size(&[sim_policy(251)], &page(1000)));
        assert!(check_simulation_size(&[sim_policy(250)], &page(1000)).is_ok());
        assert!(check_simulation_size(&[sim_policy(251)], &page(100)).is_ok());
        // Without a window every pair counts.
        refused(check_simulation_size(
            &[sim_policy(26)],
            &input(100, 100, 0, 0),
        ));
        // No ResourceArns: one resource ("*") per action.
        assert!(check_simulation_size(&one, &input(MAX_SIMULATED_PAIRS, 0, 0, 0)).is_ok());
        refused(check_simulation_size(
            &one,
            &input(MAX_SIMULATED_PAIRS + 1, 0, 0, 0),
        ));
    }
}
