//! Evaluation: each policy on its own, then the combination rules.
//!
//! Per policy, every statement is checked (action, resource, principal for resource-based
//! policies, then conditions) and the first thing that did not match is recorded, so callers
//! get a full trace. A policy's outcome is an explicit deny if any Deny statement applies,
//! otherwise Allow if any Allow statement applies, otherwise "not applicable" (an implicit
//! deny). The per-policy results are public so that services with their own rules (KMS key
//! policies gate identity policies) can combine them differently.
//!
//! The combination ([`evaluate`]) follows the IAM evaluation-logic documentation:
//! * an explicit deny in any policy wins;
//! * same account: a resource-based policy allow that names the caller directly (user,
//!   session, federated-user ARN, `*`, service) is enough; one that names the caller's role
//!   ARN is still limited by the permissions boundary and session policies; one that names
//!   only the account delegates to identity-based policies; an identity-based allow works if
//!   the boundary and session policies (when present) also allow;
//! * cross account: the resource-based policy must admit the caller (any way) *and* the
//!   caller's identity-based policy, boundary and session policies must allow;
//! * the root user has every identity-based permission in its own account.

mod combine;

use crate::condition::{evaluate_condition, ConditionFailure};
use crate::error::PolicyError;
use crate::matching::{action_matches, principal_matches, resource_matches, PrincipalMatch};
use crate::model::{Effect, Policy, Statement};
use crate::request::Request;
use std::fmt;
use std::str::FromStr;

/// The role a policy plays in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PolicyKind {
    /// Attached to the resource (a KMS key policy, a bucket policy); names principals.
    ResourceBased,
    /// Attached to the caller's user, group or role.
    IdentityBased,
    /// The caller's permissions boundary: caps identity-based permissions.
    PermissionsBoundary,
    /// Passed when the session was created: caps the session's permissions.
    SessionPolicy,
}

impl PolicyKind {
    /// Every kind, in the order explicit denies are reported.
    pub const ALL: [PolicyKind; 4] = [
        PolicyKind::ResourceBased,
        PolicyKind::IdentityBased,
        PolicyKind::PermissionsBoundary,
        PolicyKind::SessionPolicy,
    ];

    /// The wording AWS uses in AccessDenied messages ("no *permissions boundary* allows",
    /// "an explicit deny in a *resource-based policy*").
    pub fn description(self) -> &'static str {
        match self {
            PolicyKind::ResourceBased => "resource-based policy",
            PolicyKind::IdentityBased => "identity-based policy",
            PolicyKind::PermissionsBoundary => "permissions boundary",
            PolicyKind::SessionPolicy => "session policy",
        }
    }

    /// Short name used on the command line and in JSON (`resource`, `identity`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::ResourceBased => "resource",
            PolicyKind::IdentityBased => "identity",
            PolicyKind::PermissionsBoundary => "boundary",
            PolicyKind::SessionPolicy => "session",
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl FromStr for PolicyKind {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "resource" | "resource-based" | "key" | "key-policy" => Ok(PolicyKind::ResourceBased),
            "identity" | "identity-based" | "iam" => Ok(PolicyKind::IdentityBased),
            "boundary" | "permissions-boundary" => Ok(PolicyKind::PermissionsBoundary),
            "session" | "session-policy" => Ok(PolicyKind::SessionPolicy),
            _ => Err(PolicyError::UnknownPolicyKind {
                found: s.to_string(),
            }),
        }
    }
}

/// A policy to evaluate, labelled with a caller-chosen id (shown in traces) and its kind.
#[derive(Debug, Clone, Copy)]
pub struct PolicyInput<'a> {
    /// How traces and decisions name the policy.
    pub id: &'a str,
    /// The role the policy plays.
    pub kind: PolicyKind,
    /// The parsed policy.
    pub policy: &'a Policy,
}

impl<'a> PolicyInput<'a> {
    /// A policy to evaluate under `id`, playing the role `kind`.
    pub fn new(id: &'a str, kind: PolicyKind, policy: &'a Policy) -> Self {
        PolicyInput { id, kind, policy }
    }
}

/// How per-policy results combine into a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CombineMode {
    /// IAM's general rules (see the module documentation).
    #[default]
    Standard,
    /// The resource-based policy must admit the caller even in the same account, as KMS key
    /// policies and IAM role trust policies require: identity-based allows count only when
    /// the resource policy names the caller's account.
    ResourcePolicyRequired,
}

/// Options for [`evaluate_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvaluationOptions {
    /// How per-policy results combine.
    pub mode: CombineMode,
}

/// One policy's own verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyOutcome {
    /// An Allow statement applies and no Deny statement does.
    Allow,
    /// No statement applies (an implicit deny).
    NotApplicable,
    /// A Deny statement applies.
    ExplicitDeny,
}

impl PolicyOutcome {
    /// The outcome's name in traces and JSON (`allow`, `not-applicable`, `explicit-deny`).
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyOutcome::Allow => "allow",
            PolicyOutcome::NotApplicable => "not-applicable",
            PolicyOutcome::ExplicitDeny => "explicit-deny",
        }
    }
}

/// Why a statement does not apply to the request.
#[derive(Debug, Clone, Copy)]
pub enum Mismatch<'a> {
    /// The statement has neither `Action` nor `NotAction`: it never applies.
    NoAction,
    /// The statement has neither `Resource` nor `NotResource`: it never applies.
    NoResource,
    /// A resource-based statement without `Principal`/`NotPrincipal`: it never applies.
    NoPrincipal,
    /// `Action`/`NotAction` does not cover the request's action.
    Action,
    /// `Resource`/`NotResource` does not cover the request's resource.
    Resource,
    /// `Principal`/`NotPrincipal` does not cover the caller.
    Principal,
    /// A condition did not hold; the first one that failed.
    Condition(ConditionFailure<'a>),
}

/// Whether a statement applies.
#[derive(Debug, Clone, Copy)]
pub enum StatementResult<'a> {
    /// The statement applies. For resource-based policies, how the principal matched.
    Applies {
        /// How the caller matched `Principal`; `None` outside resource-based policies.
        principal: Option<PrincipalMatch>,
    },
    /// The statement does not apply, and why.
    NotApplicable(Mismatch<'a>),
}

impl StatementResult<'_> {
    /// Whether the statement applies.
    pub fn applies(&self) -> bool {
        matches!(self, StatementResult::Applies { .. })
    }
}

/// One statement's result, pointing into the policy.
#[derive(Debug, Clone, Copy)]
pub struct StatementEvaluation<'a> {
    /// The statement's position in the policy, from 0.
    pub index: usize,
    /// The statement.
    pub statement: &'a Statement,
    /// Whether it applied, and if not why.
    pub result: StatementResult<'a>,
}

/// One policy's result with its statement trace.
#[derive(Debug, Clone)]
pub struct PolicyEvaluation<'a> {
    /// The policy's id, as the input named it.
    pub id: &'a str,
    /// The role the policy played.
    pub kind: PolicyKind,
    /// The policy.
    pub policy: &'a Policy,
    /// The policy's own verdict.
    pub outcome: PolicyOutcome,
    /// Every statement's result, in document order.
    pub statements: Vec<StatementEvaluation<'a>>,
    /// For resource-based policies: the strongest principal match among the Allow statements
    /// that apply. `None` when no Allow statement applies.
    pub allow_match: Option<PrincipalMatch>,
}

impl PolicyEvaluation<'_> {
    /// The first Deny statement that applies.
    pub fn deny_statement(&self) -> Option<&StatementEvaluation<'_>> {
        self.statements
            .iter()
            .find(|s| s.statement.effect == Effect::Deny && s.result.applies())
    }
}

/// The overall answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The policies together allow the request.
    Allow,
    /// A Deny statement applied. Reports the first one found in the order resource-based,
    /// identity-based, permissions boundary, session policy.
    ExplicitDeny {
        /// The kind of policy the Deny statement is in.
        kind: PolicyKind,
        /// The id of that policy.
        policy_id: String,
        /// The statement's position in it, from 0.
        statement: usize,
        /// The statement's `Sid`, if it has one.
        sid: Option<String>,
    },
    /// Nothing allowed the request; `missing` is the policy type whose allow was lacking,
    /// which is what AccessDenied messages name.
    ImplicitDeny {
        /// The policy kind that did not allow.
        missing: PolicyKind,
    },
}

impl Decision {
    /// Whether the decision is an allow.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The reason clause of an AccessDenied message: `because no identity-based policy
    /// allows the kms:Sign action` or `with an explicit deny in a resource-based policy`.
    pub fn denial_reason(&self, action: &str) -> Option<String> {
        match self {
            Decision::Allow => None,
            Decision::ExplicitDeny { kind, .. } => {
                // AWS: "in a resource-based policy", "in an identity-based policy".
                let d = kind.description();
                let article = if d.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                Some(format!("with an explicit deny in {article} {d}"))
            }
            Decision::ImplicitDeny { missing } => Some(format!(
                "because no {} allows the {action} action",
                missing.description()
            )),
        }
    }
}

/// The result of [`evaluate`]: the decision, per-policy results and the trace.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    /// The overall decision.
    pub decision: Decision,
    /// Each policy's result, in input order.
    pub policies: Vec<PolicyEvaluation<'a>>,
    /// Whether the caller and the resource are in the same account (the combination rules differ).
    pub same_account: bool,
    /// The combination mode used.
    pub mode: CombineMode,
}

/// Per-kind summary, for callers that apply their own combination rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindSummary {
    /// At least one policy of this kind was supplied.
    pub present: bool,
    /// At least one of them allows.
    pub allows: bool,
    /// At least one of them explicitly denies.
    pub explicit_deny: bool,
    /// Resource-based only: the strongest principal match among allowing statements.
    pub allow_match: Option<PrincipalMatch>,
}

impl Evaluation<'_> {
    /// What the policies of one kind said, for callers that combine results themselves.
    pub fn summary(&self, kind: PolicyKind) -> KindSummary {
        let mut s = KindSummary::default();
        for p in self.policies.iter().filter(|p| p.kind == kind) {
            s.present = true;
            s.allows |= p.outcome == PolicyOutcome::Allow;
            s.explicit_deny |= p.outcome == PolicyOutcome::ExplicitDeny;
            s.allow_match = s.allow_match.max(p.allow_match);
        }
        s
    }
}

/// Evaluates one statement against the request.
pub fn evaluate_statement<'a>(
    statement: &'a Statement,
    kind: PolicyKind,
    request: &Request,
) -> StatementResult<'a> {
    use StatementResult::NotApplicable as NA;
    let Some(action) = &statement.action else {
        return NA(Mismatch::NoAction);
    };
    if !action_matches(action, &request.action) {
        return NA(Mismatch::Action);
    }
    let Some(resource) = &statement.resource else {
        return NA(Mismatch::NoResource);
    };
    if !resource_matches(resource, &request.resource, &request.context) {
        return NA(Mismatch::Resource);
    }
    let principal = if kind == PolicyKind::ResourceBased {
        let Some(p) = &statement.principal else {
            return NA(Mismatch::NoPrincipal);
        };
        match principal_matches(p, &request.principal) {
            Some(m) => Some(m),
            None => return NA(Mismatch::Principal),
        }
    } else {
        // Identity-side policies apply to their holder; a Principal element there (only
        // possible with lenient parsing) is ignored.
        None
    };
    if let Some(cond) = &statement.condition {
        if let Err(f) = evaluate_condition(cond, &request.context) {
            return NA(Mismatch::Condition(f));
        }
    }
    StatementResult::Applies { principal }
}

/// Evaluates one policy on its own.
pub fn evaluate_policy<'a>(request: &Request, input: PolicyInput<'a>) -> PolicyEvaluation<'a> {
    let mut statements = Vec::with_capacity(input.policy.statements.len());
    let mut allow = false;
    let mut deny = false;
    let mut allow_match = None;
    for (index, statement) in input.policy.statements.iter().enumerate() {
        let result = evaluate_statement(statement, input.kind, request);
        if let StatementResult::Applies { principal } = result {
            match statement.effect {
                Effect::Allow => {
                    allow = true;
                    allow_match = allow_match.max(principal);
                }
                Effect::Deny => deny = true,
            }
        }
        statements.push(StatementEvaluation {
            index,
            statement,
            result,
        });
    }
    let outcome = if deny {
        PolicyOutcome::ExplicitDeny
    } else if allow {
        PolicyOutcome::Allow
    } else {
        PolicyOutcome::NotApplicable
    };
    PolicyEvaluation {
        id: input.id,
        kind: input.kind,
        policy: input.policy,
        outcome,
        statements,
        allow_match,
    }
}

/// Evaluates a request against policies with the standard IAM combination rules.
pub fn evaluate<'a>(request: &Request, policies: &[PolicyInput<'a>]) -> Evaluation<'a> {
    evaluate_with(request, policies, &EvaluationOptions::default())
}

/// Evaluates a request against policies with the chosen combination rules.
pub fn evaluate_with<'a>(
    request: &Request,
    policies: &[PolicyInput<'a>],
    options: &EvaluationOptions,
) -> Evaluation<'a> {
    let evaluations: Vec<PolicyEvaluation<'a>> = policies
        .iter()
        .map(|p| evaluate_policy(request, *p))
        .collect();
    let same_account = request.is_same_account();
    let decision = combine::combine(request, &evaluations, same_account, options.mode);
    Evaluation {
        decision,
        policies: evaluations,
        same_account,
        mode: options.mode,
    }
}
