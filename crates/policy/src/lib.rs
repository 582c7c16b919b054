//! The AWS IAM policy language: parsed, validated, evaluated and explained.
//!
//! This crate is pure: no I/O, no HTTP, no knowledge of KMS. A KMS (or any other) service
//! parses policy text once into a [`Policy`] (cheap to clone, `Send + Sync`, safe to cache),
//! builds a [`Request`] per call, and asks [`evaluate`] for a [`Decision`] plus a trace of
//! every policy and statement. Services whose rules differ from IAM's defaults (KMS key
//! policies gate identity policies) combine the public per-policy results themselves or use
//! [`CombineMode::ResourcePolicyRequired`].
//!
//! ```
//! use ferrokms_policy::{evaluate, Action, Decision, ParseOptions, Policy, PolicyInput, PolicyKind,
//!     Request, RequestPrincipal};
//!
//! let key_policy = Policy::parse(r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{
//!         "Sid": "Enable IAM User Permissions",
//!         "Effect": "Allow",
//!         "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
//!         "Action": "kms:*",
//!         "Resource": "*"
//!     }]
//! }"#, &ParseOptions::for_kind(PolicyKind::ResourceBased))?;
//!
//! let caller = RequestPrincipal::from_arn("arn:aws:iam::111122223333:user/alice")?;
//! let request = Request::new(caller, Action::parse("kms:Sign")?,
//!     "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab");
//! let eval = evaluate(&request, &[PolicyInput::new("key-policy", PolicyKind::ResourceBased, &key_policy)]);
//! // The key policy only delegates to the account; alice has no identity-based policy.
//! assert_eq!(eval.decision, Decision::ImplicitDeny { missing: PolicyKind::IdentityBased });
//! assert_eq!(eval.decision.denial_reason("kms:Sign").as_deref(),
//!     Some("because no identity-based policy allows the kms:Sign action"));
//! # Ok::<(), ferrokms_policy::PolicyError>(())
//! ```

pub mod cli;
mod condition;
mod error;
mod evaluate;
pub mod explain;
mod ids;
mod json;
mod matching;
mod model;
mod parse;
mod request;
mod value;
mod variables;

pub use condition::{
    BaseOperator, Condition, ConditionEntry, ConditionFailReason, ConditionFailure, ConditionKey,
    ConditionOperator, ConditionValue, OperatorBlock, SetOperator,
};
pub use error::PolicyError;
pub use evaluate::{
    evaluate, evaluate_policy, evaluate_statement, evaluate_with, CombineMode, Decision,
    Evaluation, EvaluationOptions, KindSummary, Mismatch, PolicyEvaluation, PolicyInput,
    PolicyKind, PolicyOutcome, StatementEvaluation, StatementResult,
};
pub use ids::Action;
pub use matching::PrincipalMatch;
pub use model::{
    ActionElement, ActionPattern, Effect, Form, Policy, PrincipalElement, PrincipalEntry,
    PrincipalId, PrincipalSpec, PrincipalType, PrincipalValue, ResourceElement, ResourcePattern,
    Statement, Version,
};
pub use parse::{Limits, ParseOptions, PrincipalRule};
pub use request::{PrincipalKind, Request, RequestPrincipal};
pub use value::{
    same_context_key, Cidr, Context, ContextEntry, ContextValue, ContextValues, NotACidr, NotADate,
    NotANumber, Number, Timestamp,
};

/// Whether `text` matches an IAM wildcard pattern (`*`: any run of
/// characters, `?`: one), compared as `StringLike` and ARN patterns are,
/// with the policy engine's own matcher: for rules outside policy
/// documents (the XKS proxy's per-key principal patterns).
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    matching::glob::Glob::new(pattern).is_match(text)
}

#[cfg(test)]
mod static_checks {
    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn policy_can_be_cached_across_threads() {
        assert_send_sync_clone::<crate::Policy>();
        assert_send_sync_clone::<crate::Request>();
    }
}
