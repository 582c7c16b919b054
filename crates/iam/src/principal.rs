//! Who a request acts as.

use ferrokms_policy::RequestPrincipal;
use ferrokms_types::AccountId;
use serde::{Deserialize, Serialize};

/// An authenticated principal. Roles act only through sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Principal {
    /// The account's root user.
    Root {
        /// The account.
        account: AccountId,
    },
    /// An IAM user (`path` starts and ends with `/`).
    User {
        /// The user's account.
        account: AccountId,
        /// The user name.
        name: String,
        /// The user's path.
        path: String,
        /// The user's unique id (`AIDA...`).
        id: String,
    },
    /// A session of an assumed role.
    AssumedRole {
        /// The role's account.
        account: AccountId,
        /// The role name.
        role_name: String,
        /// The role's path (absent from the session ARN).
        role_path: String,
        /// The role's unique id (`AROA...`).
        role_id: String,
        /// The RoleSessionName given to AssumeRole.
        session_name: String,
    },
}

impl Principal {
    /// The account the principal belongs to.
    pub fn account(&self) -> &AccountId {
        match self {
            Principal::Root { account }
            | Principal::User { account, .. }
            | Principal::AssumedRole { account, .. } => account,
        }
    }

    /// The ARN AWS prints for this principal in messages: the session ARN
    /// (without the role path) for an assumed role.
    pub fn arn(&self, partition: &str) -> String {
        match self {
            Principal::Root { account } => account.root_arn(partition),
            Principal::User {
                account,
                name,
                path,
                ..
            } => format!("arn:{partition}:iam::{account}:user{path}{name}"),
            Principal::AssumedRole {
                account,
                role_name,
                session_name,
                ..
            } => format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session_name}"),
        }
    }

    /// The role ARN behind a session (`aws:PrincipalArn` of a session).
    pub fn role_arn(&self, partition: &str) -> Option<String> {
        match self {
            Principal::AssumedRole {
                account,
                role_name,
                role_path,
                ..
            } => Some(format!(
                "arn:{partition}:iam::{account}:role{role_path}{role_name}"
            )),
            _ => None,
        }
    }

    /// `aws:userid`: the unique id, `ROLEID:session` for sessions.
    pub fn user_id(&self) -> String {
        match self {
            Principal::Root { account } => account.to_string(),
            Principal::User { id, .. } => id.clone(),
            Principal::AssumedRole {
                role_id,
                session_name,
                ..
            } => format!("{role_id}:{session_name}"),
        }
    }

    /// The principal as the policy engine sees it.
    pub fn to_request_principal(&self, partition: &str) -> Option<RequestPrincipal> {
        let p = RequestPrincipal::from_arn(&self.arn(partition)).ok()?;
        Some(match self {
            Principal::AssumedRole { role_id, .. } => p
                .with_role_arn(&self.role_arn(partition).unwrap_or_default())
                .with_unique_id(role_id),
            Principal::User { id, .. } => p.with_unique_id(id),
            Principal::Root { .. } => p,
        })
    }
}

/// The caller of an IAM or STS operation: the authenticated principal, its
/// session if it signed with temporary credentials, and the same
/// authorization view of it that KMS operations get (profile, request-wide
/// keys, trace), built by the edge. Dereferences to the principal.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who the request acts as.
    pub principal: Principal,
    /// The session of a temporary key (its token opened and checked).
    pub session: Option<std::sync::Arc<crate::Session>>,
    /// The caller as authorization sees it (shared with KMS).
    pub authz: ferrokms_authz::Caller,
}

impl Caller {
    /// An account's root user acting outside any request (bootstrap files,
    /// tools, tests): every action in its own account, none in another's.
    pub fn root(account: AccountId) -> Caller {
        let region = ferrokms_types::Region::parse("us-east-1").expect("a literal region parses");
        Caller {
            principal: Principal::Root {
                account: account.clone(),
            },
            session: None,
            authz: ferrokms_authz::Caller::root(account, region),
        }
    }
}

impl Caller {
    /// Whether the request was signed with temporary credentials (STS).
    pub fn is_temporary(&self) -> bool {
        self.session.is_some()
    }
}

impl std::ops::Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}
