//! The one authorization path of ferrokms, shared by every service.
//!
//! Each request runs the same steps whatever its protocol: authenticate,
//! build the [`Caller`] (its profile and the request's facts), look the
//! operation up in its service's [`catalog`], ask [`decide`] each
//! [`Question`] the operation needs, and record the [`Verdict`]s in the
//! caller's trace for the audit record. KMS adds grants to a verdict (their
//! rule is [`grants`], shared with the whole-space analysis); IAM and STS
//! add their own condition keys to the question. Nothing here knows HTTP,
//! keys or users: the policy engine below decides, the services above say
//! what is asked.

pub mod caller;
pub mod catalog;
pub mod decide;
pub mod grants;
pub mod record;

pub use caller::{
    Caller, CallerPolicy, CallerProfile, RequestContext, RequestFacts, ServiceCall, Trace,
};
pub use decide::{decide, IdentitySide, Question, ResourceKeys, ResourcePolicy, Verdict};
pub use record::{AuthzRecord, PolicySide, Reason, PLAIN_ALLOW};

/// What can go wrong before a decision is reached: only inconsistencies of
/// our own (an action or principal the engine cannot read).
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    /// An action string the policy engine cannot parse.
    #[error("not an action: {0}")]
    Action(String),
    /// A principal ARN the policy engine cannot parse.
    #[error("not a principal: {0}")]
    Principal(String),
}
