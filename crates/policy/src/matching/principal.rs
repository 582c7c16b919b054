//! Principal matching.
//!
//! A caller is several identities at once: a role session is the session, the role, and the
//! account; an IAM user is the user and the account; the root user is the account. A
//! `Principal` applies when it names *any* of them (so an account principal covers every
//! principal of the account, and a role ARN covers every session of the role). A
//! `NotPrincipal` applies unless it names *all* of them, which is why IAM tells authors to
//! list the session, the role and the account together when excluding a session.

use crate::model::{PrincipalElement, PrincipalId, PrincipalSpec, PrincipalType};
use crate::request::{PrincipalKind, RequestPrincipal};

/// How a resource-policy statement matched the caller. The same-account rules of IAM treat
/// these differently, so the evaluator needs the strongest one that allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PrincipalMatch {
    /// Through the caller's account (`ACCT` or `arn:aws:iam::ACCT:root`) for a caller that is
    /// not the root user: a delegation to the account's identity-based policies.
    Account,
    /// Through the role ARN of the caller's session (or the IAM user behind a federated
    /// session): limited by permissions boundaries and session policies.
    Role,
    /// The caller itself: its user, session or federated-user ARN, the root user via the
    /// account, a service, `"*"`, or a `NotPrincipal` that does not exclude it.
    Direct,
}

#[derive(Clone, Copy)]
enum Identity<'a> {
    Account,
    User,
    Role {
        arn: &'a str,
        known: bool,
        name: &'a str,
    },
    Session,
    FederatedUser,
    Service(&'a str),
    Provider(&'a str),
    Anonymous,
}

fn identities(p: &RequestPrincipal) -> Vec<Identity<'_>> {
    let mut ids = Vec::with_capacity(4);
    match p.kind() {
        PrincipalKind::Root => ids.push(Identity::Account),
        PrincipalKind::IamUser { .. } => {
            ids.push(Identity::User);
            ids.push(Identity::Account);
        }
        PrincipalKind::AssumedRole {
            role_arn,
            role_arn_known,
            role_name,
            ..
        } => {
            ids.push(Identity::Session);
            ids.push(Identity::Role {
                arn: role_arn,
                known: *role_arn_known,
                name: role_name,
            });
            ids.push(Identity::Account);
        }
        PrincipalKind::FederatedUser { .. } => {
            ids.push(Identity::FederatedUser);
            ids.push(Identity::Account);
        }
        PrincipalKind::Service { name } => ids.push(Identity::Service(name)),
        PrincipalKind::Anonymous => ids.push(Identity::Anonymous),
    }
    if let Some(fp) = p.federated_provider() {
        ids.push(Identity::Provider(fp));
    }
    ids
}

fn value_names(id: &PrincipalId, ident: Identity<'_>, p: &RequestPrincipal) -> bool {
    match (id, ident) {
        (PrincipalId::Everyone, _) => true,
        (PrincipalId::Account(a), Identity::Account) => p.account() == Some(a),
        (PrincipalId::User(arn), Identity::User) => p.arn() == arn,
        (
            PrincipalId::Role {
                arn, account, name, ..
            },
            Identity::Role {
                arn: caller_role,
                known,
                name: caller_name,
            },
        ) => {
            if known {
                arn == caller_role
            } else {
                // Only the session ARN is known, which lacks the role path: compare the
                // account and the role name.
                p.account() == Some(account) && name == caller_name
            }
        }
        (PrincipalId::AssumedRoleSession(arn), Identity::Session) => p.arn() == arn,
        (PrincipalId::FederatedUser(arn), Identity::FederatedUser) => p.arn() == arn,
        (PrincipalId::UniqueId(u), Identity::User | Identity::Role { .. }) => {
            p.unique_id() == Some(u.as_str())
        }
        (PrincipalId::Service(s), Identity::Service(name)) => s.eq_ignore_ascii_case(name),
        (PrincipalId::Federated(f), Identity::Provider(fp)) => f == fp,
        _ => false,
    }
}

fn strength(ident: Identity<'_>, p: &RequestPrincipal) -> PrincipalMatch {
    match ident {
        Identity::Account if matches!(p.kind(), PrincipalKind::Root) => PrincipalMatch::Direct,
        Identity::Account => PrincipalMatch::Account,
        Identity::Role { .. } => PrincipalMatch::Role,
        _ => PrincipalMatch::Direct,
    }
}

fn names(spec: &PrincipalSpec, ident: Identity<'_>, p: &RequestPrincipal) -> bool {
    match spec {
        PrincipalSpec::Wildcard => true,
        PrincipalSpec::Typed(entries) => entries.iter().any(|e| {
            e.values.iter().any(|v| {
                // `{"AWS": "*"}` means everyone, like the bare "*".
                (e.kind == PrincipalType::Aws && v.id == PrincipalId::Everyone)
                    || value_names(&v.id, ident, p)
            })
        }),
    }
}

/// `Some(how)` when the statement's principal element applies to the caller.
pub(crate) fn principal_matches(
    elem: &PrincipalElement,
    p: &RequestPrincipal,
) -> Option<PrincipalMatch> {
    let ids = identities(p);
    if elem.negated {
        ids.iter()
            .any(|&i| !names(&elem.spec, i, p))
            .then_some(PrincipalMatch::Direct)
    } else {
        ids.iter()
            .filter(|&&i| names(&elem.spec, i, p))
            .map(|&i| strength(i, p))
            .max()
    }
}
