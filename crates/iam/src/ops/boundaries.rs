//! Permissions boundaries of users and roles:
//! Put/Delete{User,Role}PermissionsBoundary, and how many entities use a
//! policy as theirs.

use std::sync::Arc;

use ferrokms_types::AccountId;

use super::*;
use crate::entities::*;
use crate::{Caller, Directory, IamError};

impl Directory {
    /// A managed policy of `account` usable as a permissions boundary
    /// (another account's is not).
    pub(crate) fn boundary_policy(
        &self,
        account: &AccountId,
        arn: &str,
    ) -> Result<Arc<ManagedPolicyRecord>, IamError> {
        self.own_policy(account, arn).ok_or_else(|| {
            IamError::NoSuchEntity(format!(
                "Scope ARN: {arn} does not exist or is not attachable."
            ))
        })
    }

    /// PutUserPermissionsBoundary / PutRolePermissionsBoundary
    pub fn put_permissions_boundary(
        &self,
        caller: &Caller,
        what: Taggable,
        name: &str,
        policy_arn: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, mut keys) = self.taggable_arn(&account, what, name);
        // The boundary requested, not the one it replaces.
        keys.insert("iam:PermissionsBoundary", policy_arn);
        self.authorize_with(
            caller,
            &format!("iam:Put{}PermissionsBoundary", what.title()),
            &arn,
            keys,
        )?;
        self.boundary_policy(&account, policy_arn)?;
        let _w = self.writer.lock();
        self.modify_taggable(&account, what, name, |_, b| {
            *b = Some(policy_arn.to_string());
            Ok(())
        })
    }

    /// DeleteUserPermissionsBoundary / DeleteRolePermissionsBoundary
    pub fn delete_permissions_boundary(
        &self,
        caller: &Caller,
        what: Taggable,
        name: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.taggable_arn(&account, what, name);
        self.authorize_with(
            caller,
            &format!("iam:Delete{}PermissionsBoundary", what.title()),
            &arn,
            keys,
        )?;
        let _w = self.writer.lock();
        self.modify_taggable(&account, what, name, |_, b| {
            *b = None;
            Ok(())
        })
    }

    /// PermissionsBoundaryUsageCount of a managed policy.
    pub fn permissions_boundary_usage(&self, arn: &str) -> usize {
        self.boundary_count(arn)
    }
}
