//! Who a request acts as.

use ferrokms_policy::RequestPrincipal;
use ferrokms_types::AccountId;
use serde::{Deserialize, Serialize};

/// An authenticated principal. Roles act only through sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Principal {
    /// The account's root user.
    Root { account: AccountId },
    /// An IAM user (`path` starts and ends with `/`).
    User {
        account: AccountId,
        name: String,
        path: String,
        id: String,
    },
    /// A session of an assumed role.
    AssumedRole {
        account: AccountId,
        role_name: String,
        role_path: String,
        role_id: String,
        session_name: String,
    },
}

impl Principal {
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
