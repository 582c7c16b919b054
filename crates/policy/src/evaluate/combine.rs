//! The combination rules (see the parent module's documentation for the sources).

use super::{CombineMode, Decision, PolicyEvaluation, PolicyKind, PolicyOutcome};
use crate::matching::PrincipalMatch;
use crate::request::{PrincipalKind, Request};

pub(super) fn combine(
    request: &Request,
    evals: &[PolicyEvaluation<'_>],
    same_account: bool,
    mode: CombineMode,
) -> Decision {
    // 1. An explicit deny anywhere wins; report the first in AWS's message precedence.
    for kind in PolicyKind::ALL {
        if let Some(pe) = evals
            .iter()
            .find(|e| e.kind == kind && e.outcome == PolicyOutcome::ExplicitDeny)
        {
            let st = pe.deny_statement();
            return Decision::ExplicitDeny {
                kind,
                policy_id: pe.id.to_string(),
                statement: st.map_or(0, |s| s.index),
                sid: st.and_then(|s| s.statement.sid.clone()),
            };
        }
    }

    let present = |k: PolicyKind| evals.iter().any(|e| e.kind == k);
    let allows = |k: PolicyKind| {
        evals
            .iter()
            .any(|e| e.kind == k && e.outcome == PolicyOutcome::Allow)
    };
    // The root user holds every identity-based permission of its own account.
    let id_allow = matches!(request.principal.kind(), PrincipalKind::Root)
        || allows(PolicyKind::IdentityBased);
    let pb_allow =
        !present(PolicyKind::PermissionsBoundary) || allows(PolicyKind::PermissionsBoundary);
    let sp_allow = !present(PolicyKind::SessionPolicy) || allows(PolicyKind::SessionPolicy);
    let rp = evals
        .iter()
        .filter(|e| e.kind == PolicyKind::ResourceBased)
        .filter_map(|e| e.allow_match)
        .max();

    let caps = || {
        if !pb_allow {
            Decision::ImplicitDeny {
                missing: PolicyKind::PermissionsBoundary,
            }
        } else if !sp_allow {
            Decision::ImplicitDeny {
                missing: PolicyKind::SessionPolicy,
            }
        } else {
            Decision::Allow
        }
    };
    let identity_side = || {
        if id_allow {
            caps()
        } else {
            Decision::ImplicitDeny {
                missing: PolicyKind::IdentityBased,
            }
        }
    };

    if !same_account {
        // Cross-account: both the resource owner and the caller's account must agree.
        return match rp {
            None => Decision::ImplicitDeny {
                missing: PolicyKind::ResourceBased,
            },
            Some(_) => identity_side(),
        };
    }

    match (mode, rp) {
        (_, Some(PrincipalMatch::Direct)) => Decision::Allow,
        (_, Some(PrincipalMatch::Role)) => {
            // A role-ARN grant is capped by the boundary and session policies but needs no
            // identity-based allow; if the caps refuse, the identity path is capped too.
            caps()
        }
        (CombineMode::ResourcePolicyRequired, None) => Decision::ImplicitDeny {
            missing: PolicyKind::ResourceBased,
        },
        (CombineMode::ResourcePolicyRequired, Some(PrincipalMatch::Account))
        | (CombineMode::Standard, _) => identity_side(),
    }
}
