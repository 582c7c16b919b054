//! Instance profiles: CreateInstanceProfile, GetInstanceProfile,
//! DeleteInstanceProfile, ListInstanceProfiles, ListInstanceProfilesForRole,
//! AddRoleToInstanceProfile, RemoveRoleFromInstanceProfile and their tags
//! (TagInstanceProfile, UntagInstanceProfile, ListInstanceProfileTags).
//!
//! ferrokms runs no EC2 instances: an instance profile is kept, listed and
//! tagged as on AWS (so infrastructure code that declares one works), and
//! grants nothing by itself. As on AWS it holds at most one role, adding
//! the role needs `iam:PassRole` on it, and a role in a profile cannot be
//! deleted.

use std::sync::Arc;

use ferrokms_policy::Context;
use ferrokms_store::Change;
use ferrokms_types::AccountId;

use super::tags::{check_tag_keys, merge_tags, remove_tags, resource_tag_keys};
use crate::authz::{request_tag_keys, tag_keys};
use crate::entities::*;
use crate::names::{check_name, check_path, check_tags, new_id};
use crate::{json_change, name_key, now_ms, Caller, Directory, IamError, KIND_INSTANCE_PROFILE};

/// Roles one instance profile may hold (AWS's quota, not adjustable).
const ROLES_PER_PROFILE: usize = 1;
/// Instance profiles of one account (AWS's default quota).
const PROFILES_PER_ACCOUNT: usize = 1000;

fn store_id(p: &InstanceProfileRecord) -> String {
    format!("{}/{}", p.account, p.name.to_ascii_lowercase())
}

impl Directory {
    fn instance_profile(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<Arc<InstanceProfileRecord>, IamError> {
        self.find_instance_profile(account, name).ok_or_else(|| {
            IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
        })
    }

    /// The instance profile `name` of `account`, if it exists (names
    /// compare regardless of case).
    pub fn find_instance_profile(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Option<Arc<InstanceProfileRecord>> {
        self.state
            .read()
            .instance_profiles
            .get(&name_key(account, name))
            .cloned()
    }

    fn save_instance_profile(
        &self,
        p: InstanceProfileRecord,
    ) -> Result<Arc<InstanceProfileRecord>, IamError> {
        self.store
            .apply(&[json_change(KIND_INSTANCE_PROFILE, store_id(&p), &p)?])?;
        let p = Arc::new(p);
        self.write_state()
            .instance_profiles
            .insert(name_key(&p.account, &p.name), p.clone());
        Ok(p)
    }

    /// What an operation on a named instance profile is authorized on,
    /// whether or not it exists (as `subject` for users and roles): its ARN
    /// (the default path when absent) and its tags.
    fn profile_subject(&self, account: &AccountId, name: &str) -> (String, Context) {
        match self.find_instance_profile(account, name) {
            Some(p) => (p.arn(), resource_tag_keys(&p.tags)),
            None => (
                Self::entity_arn(account, "instance-profile", None, name),
                Context::new(),
            ),
        }
    }

    /// The roles of a profile, as they are now.
    pub fn instance_profile_roles(&self, p: &InstanceProfileRecord) -> Vec<Arc<RoleRecord>> {
        p.roles
            .iter()
            .filter_map(|r| self.find_role(&p.account, r))
            .collect()
    }

    /// The instance profiles a role is in (no authorization: for
    /// GetAccountAuthorizationDetails and ListInstanceProfilesForRole).
    pub(crate) fn profiles_of_role(
        &self,
        account: &AccountId,
        role: &str,
    ) -> Vec<Arc<InstanceProfileRecord>> {
        self.state
            .read()
            .instance_profiles
            .values()
            .filter(|p| p.account == *account && p.has_role(role))
            .cloned()
            .collect()
    }

    /// CreateInstanceProfile
    pub fn create_instance_profile(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<Arc<InstanceProfileRecord>, IamError> {
        let account = caller.account().clone();
        let path = path.unwrap_or("/");
        check_name(name, "instanceProfileName", 128)?;
        check_path(path)?;
        check_tags(&tags)?;
        let mut keys = Context::new();
        request_tag_keys(&mut keys, &tags);
        self.authorize_with(
            caller,
            "iam:CreateInstanceProfile",
            &Self::entity_arn(&account, "instance-profile", Some(path), name),
            keys,
        )?;
        let _w = self.writer.lock();
        {
            let state = self.state.read();
            if state
                .instance_profiles
                .contains_key(&name_key(&account, name))
            {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Instance Profile {name} already exists."
                )));
            }
            let count = state
                .instance_profiles
                .values()
                .filter(|p| p.account == account)
                .count();
            if count >= PROFILES_PER_ACCOUNT {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for InstanceProfilesPerAccount: {PROFILES_PER_ACCOUNT}"
                )));
            }
        }
        self.save_instance_profile(InstanceProfileRecord {
            account,
            name: name.to_string(),
            path: path.to_string(),
            id: new_id("AIPA", 17)?,
            created_ms: now_ms(),
            roles: Vec::new(),
            tags,
        })
    }

    /// Authorizes `action` on the caller's account's profile `name`
    /// (whether or not it exists, with its tags); returns the account.
    fn authorize_on_profile(
        &self,
        caller: &Caller,
        action: &str,
        name: &str,
    ) -> Result<AccountId, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.profile_subject(&account, name);
        self.authorize_with(caller, action, &arn, keys)?;
        Ok(account)
    }

    /// A profile of the caller's account for a read: authorized for
    /// `action` on it, then looked up.
    fn authorized_profile(
        &self,
        caller: &Caller,
        action: &str,
        name: &str,
    ) -> Result<Arc<InstanceProfileRecord>, IamError> {
        let account = self.authorize_on_profile(caller, action, name)?;
        self.instance_profile(&account, name)
    }

    /// GetInstanceProfile
    pub fn get_instance_profile(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Arc<InstanceProfileRecord>, IamError> {
        self.authorized_profile(caller, "iam:GetInstanceProfile", name)
    }

    /// DeleteInstanceProfile: refused while it holds a role.
    pub fn delete_instance_profile(&self, caller: &Caller, name: &str) -> Result<(), IamError> {
        let account = self.authorize_on_profile(caller, "iam:DeleteInstanceProfile", name)?;
        let _w = self.writer.lock();
        let p = self.instance_profile(&account, name)?;
        if !p.roles.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first.".into(),
            ));
        }
        self.store.apply(&[Change::Delete {
            kind: KIND_INSTANCE_PROFILE,
            id: store_id(&p),
        }])?;
        self.write_state()
            .instance_profiles
            .remove(&name_key(&account, name));
        Ok(())
    }

    /// ListInstanceProfiles (PathPrefix)
    pub fn list_instance_profiles(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> Result<Vec<Arc<InstanceProfileRecord>>, IamError> {
        let account = caller.account().clone();
        self.authorize(
            caller,
            "iam:ListInstanceProfiles",
            &account.iam_arn("instance-profile/"),
        )?;
        let prefix = path_prefix.unwrap_or("/");
        Ok(self
            .state
            .read()
            .instance_profiles
            .values()
            .filter(|p| p.account == account && p.path.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// ListInstanceProfilesForRole: authorized on the role, as on AWS.
    pub fn list_instance_profiles_for_role(
        &self,
        caller: &Caller,
        role: &str,
    ) -> Result<Vec<Arc<InstanceProfileRecord>>, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, super::Owner::Role, role);
        self.authorize_with(caller, "iam:ListInstanceProfilesForRole", &arn, keys)?;
        self.role(&account, role)?;
        Ok(self.profiles_of_role(&account, role))
    }

    /// AddRoleToInstanceProfile: needs `iam:PassRole` on the role too; a
    /// profile holds one role.
    pub fn add_role_to_instance_profile(
        &self,
        caller: &Caller,
        profile: &str,
        role: &str,
    ) -> Result<(), IamError> {
        let account = self.authorize_on_profile(caller, "iam:AddRoleToInstanceProfile", profile)?;
        let (role_arn, role_keys) = self.subject(&account, super::Owner::Role, role);
        self.authorize_with(caller, "iam:PassRole", &role_arn, role_keys)?;
        let _w = self.writer.lock();
        let mut p = (*self.instance_profile(&account, profile)?).clone();
        let r = self.role(&account, role)?;
        if p.roles.len() >= ROLES_PER_PROFILE {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: {ROLES_PER_PROFILE}"
            )));
        }
        p.roles.push(r.name.clone());
        self.save_instance_profile(p)?;
        Ok(())
    }

    /// RemoveRoleFromInstanceProfile
    pub fn remove_role_from_instance_profile(
        &self,
        caller: &Caller,
        profile: &str,
        role: &str,
    ) -> Result<(), IamError> {
        let account =
            self.authorize_on_profile(caller, "iam:RemoveRoleFromInstanceProfile", profile)?;
        let _w = self.writer.lock();
        let mut p = (*self.instance_profile(&account, profile)?).clone();
        if !p.has_role(role) {
            return Err(IamError::NoSuchEntity(format!(
                "The role with name {role} cannot be found."
            )));
        }
        p.roles.retain(|r| !r.eq_ignore_ascii_case(role));
        self.save_instance_profile(p)?;
        Ok(())
    }

    /// TagInstanceProfile: as TagUser.
    pub fn tag_instance_profile(
        &self,
        caller: &Caller,
        name: &str,
        tags: Vec<Tag>,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        check_tags(&tags)?;
        let (arn, mut keys) = self.profile_subject(&account, name);
        request_tag_keys(&mut keys, &tags);
        self.authorize_with(caller, "iam:TagInstanceProfile", &arn, keys)?;
        let _w = self.writer.lock();
        let mut p = (*self.instance_profile(&account, name)?).clone();
        merge_tags(&mut p.tags, tags)?;
        self.save_instance_profile(p)?;
        Ok(())
    }

    /// UntagInstanceProfile: unknown keys are ignored.
    pub fn untag_instance_profile(
        &self,
        caller: &Caller,
        name: &str,
        keys: &[String],
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        check_tag_keys(keys)?;
        let (arn, mut ctx) = self.profile_subject(&account, name);
        tag_keys(&mut ctx, keys.iter().map(String::as_str));
        self.authorize_with(caller, "iam:UntagInstanceProfile", &arn, ctx)?;
        let _w = self.writer.lock();
        let mut p = (*self.instance_profile(&account, name)?).clone();
        remove_tags(&mut p.tags, keys);
        self.save_instance_profile(p)?;
        Ok(())
    }

    /// ListInstanceProfileTags
    pub fn list_instance_profile_tags(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<Vec<Tag>, IamError> {
        Ok(self
            .authorized_profile(caller, "iam:ListInstanceProfileTags", name)?
            .tags
            .clone())
    }
}
