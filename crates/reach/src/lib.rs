//! Whole-space analysis of who may use a KMS key: a decision procedure
//! over the requests the policies can tell apart, complete for what it
//! covers, answering with a witness the concrete evaluator allows or with
//! the proof that no request is allowed (issue 21). The same procedure
//! answers who may assume an IAM role, over its trust policy
//! ([`RolePolicySet`], [`role_external_access`]): the role stands in the
//! key's place, the trust policy in the key policy's, the decision is
//! AssumeRole's.
//!
//! # The procedure
//!
//! The decision for a request (principal, action, key, context) is made by
//! the server's own code ([`concrete`]: `ferrokms_authz::decide` with the
//! key policy, the account delegation rule, identity policies, permissions
//! boundaries and session policies, cross-account rules, then KMS's grant
//! rule with its constraints). Each dimension of the request is cut into
//! the finitely many *cells* that the policies' constants induce:
//!
//! * actions: the key actions of the operation catalog, each its own cell
//!   ([`model::KEY_ACTIONS`]);
//! * resources: the one key the policy set is about;
//! * principals: one representative per class of callers every policy
//!   treats alike ([`universe`]);
//! * each condition key a policy reads: one value per non-empty cell of the
//!   comparisons made with it, plus "absent" ([`values`], with the string
//!   witness search of [`pattern`]).
//!
//! Two requests whose dimensions lie in the same cells get the same
//! decision: every comparison the evaluator makes (a `Principal` value, a
//! condition operator on a key's value, a grant constraint) is, by the
//! construction of the cells, answered the same for both, and the decision
//! is a function of those answers. So the decision is constant on each
//! product of cells, and asking one representative request per product is
//! asking them all. The analysis enumerates the products (pruned: a
//! condition key that no statement applying to the (principal, action)
//! pair reads and no grant naming the principal constrains stays one cell)
//! and runs the concrete evaluator on each. Hence:
//!
//! * [`Answer::Allowed`] carries a request the concrete evaluator allows
//!   (it is the request that was asked);
//! * [`Answer::NotGranted`] is a proof: every cell product was asked and
//!   none was allowed, with the count of requests asked;
//! * [`Answer::Unknown`] says which construct is outside the encoding (a
//!   policy variable, a condition key that identifies the caller more
//!   finely than the representatives, `BinaryEquals`, a key compared by
//!   two operator families, principals by unique id) or that the space is
//!   over [`analyze::MAX_REQUESTS`] or a pattern search over its state
//!   bound. It is never a "not granted" from a partial search.
//!
//! What the procedure assumes, and documents rather than proves: condition
//! keys the request carries are free (any value, or none), except those the
//! key, the caller and the key's account decide; a key is single-valued
//! unless a policy compares it with a set operator; principals of accounts
//! the operator does not know hold an allow-everything identity policy. A
//! witness may so name a context a real client cannot produce (an
//! `aws:SourceIp` value a proxy would replace); it is still a request the
//! evaluator allows. `tests/bruteforce.rs` checks the whole against
//! exhaustive enumeration of the concrete evaluator over small universes.

pub mod analyze;
pub mod concrete;
pub mod model;
pub mod pattern;
pub mod universe;
pub mod values;

pub use analyze::{
    access_diff, access_listing, check_access_not_granted, check_access_not_granted_by,
    check_access_not_granted_role, check_no_new_access, check_no_new_access_by,
    check_no_new_access_for, check_no_new_access_role, check_no_public_access,
    check_no_public_access_for, check_no_public_access_role, context_of, external_access,
    matching_actions, role_access_listing, role_external_access, AccessDiff, AccessEntry, Answer,
    Change, DiffEntry, Proof, Witness, MAX_REQUESTS,
};
pub use concrete::Path;
pub use model::{
    Grant, Grantee, Holder, KeyTarget, PolicySet, RolePolicySet, KEY_ACTIONS, ROLE_ACTIONS,
};

/// What can stop an analysis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReachError {
    /// The input is not what the analysis takes (a key ARN without an
    /// account, an action that is not a key action).
    #[error("invalid input: {0}")]
    Input(String),
    /// A construct outside the encoding, or a space over the bounds.
    #[error("unknown: {0}")]
    Unknown(String),
}
