//! The account-wide reports: ListEntitiesForPolicy and
//! GetAccountAuthorizationDetails.

use std::sync::Arc;

use crate::entities::*;
use crate::{Caller, Directory, IamError};

/// Everything GetAccountAuthorizationDetails reports.
pub struct AuthorizationDetails {
    /// Every user of the account with the names of its groups.
    pub users: Vec<(Arc<UserRecord>, Vec<String>)>,
    /// Every group of the account.
    pub groups: Vec<Arc<GroupRecord>>,
    /// Every role of the account.
    pub roles: Vec<Arc<RoleRecord>>,
    /// Every instance profile of the account (each lists its role).
    pub instance_profiles: Vec<Arc<InstanceProfileRecord>>,
    /// Every managed policy of the account, with how many entities it is attached to and
    /// how many use it as their permissions boundary.
    pub policies: Vec<(Arc<ManagedPolicyRecord>, usize, usize)>,
}

/// Entities a managed policy is attached to: (name, id) of each kind.
#[derive(Debug, Default)]
pub struct PolicyEntities {
    /// The users the policy is attached to.
    pub users: Vec<(String, String)>,
    /// The groups the policy is attached to.
    pub groups: Vec<(String, String)>,
    /// The roles the policy is attached to.
    pub roles: Vec<(String, String)>,
}

impl Directory {
    /// ListEntitiesForPolicy
    pub fn list_entities_for_policy(
        &self,
        caller: &Caller,
        arn: &str,
        filter: Option<&str>,
        usage_boundary: bool,
    ) -> Result<PolicyEntities, IamError> {
        self.authorize(caller, "iam:ListEntitiesForPolicy", arn)?;
        self.policy_by_arn(caller.account(), arn)?;
        let want = |k: &str| filter.is_none_or(|f| f == k);
        let uses = |attached: &[String], boundary: &Option<String>| {
            if usage_boundary {
                boundary.as_deref() == Some(arn)
            } else {
                attached.iter().any(|a| a == arn)
            }
        };
        // Only the caller's account's entities: an attachment across
        // accounts is refused when made, and any written before that rule
        // is not another account's to see.
        let state = self.state.read();
        let mut out = PolicyEntities::default();
        if want("User") {
            out.users = state
                .users
                .values()
                .filter(|u| u.account == *caller.account() && uses(&u.attached, &u.boundary))
                .map(|u| (u.name.clone(), u.id.clone()))
                .collect();
        }
        if want("Role") {
            out.roles = state
                .roles
                .values()
                .filter(|r| r.account == *caller.account() && uses(&r.attached, &r.boundary))
                .map(|r| (r.name.clone(), r.id.clone()))
                .collect();
        }
        if want("Group") && !usage_boundary {
            out.groups = state
                .groups
                .values()
                .filter(|g| g.account == *caller.account() && g.attached.iter().any(|a| a == arn))
                .map(|g| (g.name.clone(), g.id.clone()))
                .collect();
        }
        Ok(out)
    }

    /// GetAccountAuthorizationDetails: the account's users (with their
    /// group names), groups, roles and managed policies.
    pub fn account_authorization_details(
        &self,
        caller: &Caller,
    ) -> Result<AuthorizationDetails, IamError> {
        let account = caller.account().clone();
        self.authorize(caller, "iam:GetAccountAuthorizationDetails", "*")?;
        let users: Vec<Arc<UserRecord>>;
        let groups: Vec<Arc<GroupRecord>>;
        let roles: Vec<Arc<RoleRecord>>;
        let policies: Vec<Arc<ManagedPolicyRecord>>;
        let instance_profiles: Vec<Arc<InstanceProfileRecord>>;
        {
            let state = self.state.read();
            users = state
                .users
                .values()
                .filter(|u| u.account == account)
                .cloned()
                .collect();
            groups = state
                .groups
                .values()
                .filter(|g| g.account == account)
                .cloned()
                .collect();
            roles = state
                .roles
                .values()
                .filter(|r| r.account == account)
                .cloned()
                .collect();
            policies = state
                .policies
                .values()
                .filter(|p| p.account == account)
                .cloned()
                .collect();
            instance_profiles = state
                .instance_profiles
                .values()
                .filter(|p| p.account == account)
                .cloned()
                .collect();
        }
        Ok(AuthorizationDetails {
            users: users
                .into_iter()
                .map(|u| {
                    let g = self
                        .groups_of_user(&account, &u.name)
                        .iter()
                        .map(|g| g.name.clone())
                        .collect();
                    (u, g)
                })
                .collect(),
            groups,
            roles,
            instance_profiles,
            policies: policies
                .into_iter()
                .map(|p| {
                    let a = self.attachment_count(&p.arn());
                    let b = self.boundary_count(&p.arn());
                    (p, a, b)
                })
                .collect(),
        })
    }
}

impl AuthorizationDetails {
    /// The instance profiles `role` is in (a role detail's `InstanceProfileList`).
    pub fn profiles_of_role(&self, role: &RoleRecord) -> Vec<Arc<InstanceProfileRecord>> {
        self.instance_profiles
            .iter()
            .filter(|p| p.has_role(&role.name))
            .cloned()
            .collect()
    }
}
