//! IAM roles: CreateRole, GetRole, ListRoles, DeleteRole (refused while
//! the role has policies or is in an instance profile),
//! UpdateAssumeRolePolicy, and the lookups and the save every role
//! operation goes through.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_store::Change;
use ferrokms_types::AccountId;

use super::*;
use crate::authz::entity_keys;
use crate::entities::*;
use crate::names::{check_name, check_path, check_role_description, check_tags, invalid, new_id};
use crate::{json_change, name_key, now_ms, Caller, Directory, IamError, KIND_ROLE};

impl Directory {
    pub(crate) fn role(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<Arc<RoleRecord>, IamError> {
        self.state
            .read()
            .roles
            .get(&name_key(account, name))
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
            })
    }

    /// The role `name` of `account`, if it exists (names compare regardless of case).
    pub fn find_role(&self, account: &AccountId, name: &str) -> Option<Arc<RoleRecord>> {
        self.state
            .read()
            .roles
            .get(&name_key(account, name))
            .cloned()
    }

    pub(crate) fn save_role(&self, r: RoleRecord) -> Result<Arc<RoleRecord>, IamError> {
        self.store.apply(&[json_change(
            KIND_ROLE,
            format!("{}/{}", r.account, r.name.to_ascii_lowercase()),
            &r,
        )?])?;
        let r = Arc::new(r);
        self.write_state()
            .roles
            .insert(name_key(&r.account, &r.name), r.clone());
        Ok(r)
    }

    /// CreateRole
    #[allow(clippy::too_many_arguments)]
    pub fn create_role(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        trust_policy: &str,
        description: Option<&str>,
        max_session_duration: Option<u32>,
        tags: Vec<Tag>,
        boundary: Option<&str>,
    ) -> Result<Arc<RoleRecord>, IamError> {
        let account = caller.account().clone();
        let path = path.unwrap_or("/");
        check_name(name, "roleName", 64)?;
        check_path(path)?;
        check_role_description(description.unwrap_or_default())?;
        check_tags(&tags)?;
        if let Some(b) = boundary {
            self.boundary_policy(&account, b)?;
        }
        let max = max_session_duration.unwrap_or(DEFAULT_MAX_SESSION);
        if !(3600..=43200).contains(&max) {
            return Err(invalid(
                &max.to_string(),
                "maxSessionDuration",
                "Member must have value between 3600 and 43200",
            ));
        }
        self.authorize_with(
            caller,
            "iam:CreateRole",
            &Self::entity_arn(&account, "role", Some(path), name),
            creation_keys(&tags, boundary),
        )?;
        check_size(trust_policy, 2048)?;
        let trust = PolicyDoc::parse(trust_policy, DocKind::Trust)?;
        let _w = self.writer.lock();
        if self
            .state
            .read()
            .roles
            .contains_key(&name_key(&account, name))
        {
            return Err(IamError::EntityAlreadyExists(format!(
                "Role with name {name} already exists."
            )));
        }
        self.save_role(RoleRecord {
            account,
            name: name.to_string(),
            path: path.to_string(),
            id: new_id("AROA", 17)?,
            created_ms: now_ms(),
            trust,
            description: description.unwrap_or_default().to_string(),
            max_session_duration: max,
            inline: BTreeMap::new(),
            attached: Vec::new(),
            tags,
            boundary: boundary.map(str::to_string),
        })
    }

    /// GetRole
    pub fn get_role(&self, caller: &Caller, name: &str) -> Result<Arc<RoleRecord>, IamError> {
        let account = caller.account().clone();
        let existing = self.find_role(&account, name);
        self.authorize_with(
            caller,
            "iam:GetRole",
            &Self::entity_arn(
                &account,
                "role",
                existing.as_ref().map(|r| r.path.as_str()),
                name,
            ),
            existing
                .as_ref()
                .map(|r| entity_keys(&r.tags, r.boundary.as_deref()))
                .unwrap_or_default(),
        )?;
        self.role(&account, name)
    }

    /// ListRoles
    pub fn list_roles(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> Result<Vec<Arc<RoleRecord>>, IamError> {
        let account = caller.account().clone();
        self.authorize(caller, "iam:ListRoles", &account.iam_arn("role/"))?;
        let prefix = path_prefix.unwrap_or("/");
        Ok(self
            .state
            .read()
            .roles
            .values()
            .filter(|r| r.account == account && r.path.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// DeleteRole: refused while the role still has policies.
    pub fn delete_role(&self, caller: &Caller, name: &str) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, Owner::Role, name);
        self.authorize_with(caller, "iam:DeleteRole", &arn, keys)?;
        let role = self.role(&account, name)?;
        if !role.inline.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if !role.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        let _w = self.writer.lock();
        if !self.profiles_of_role(&account, name).is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first.".into(),
            ));
        }
        self.store.apply(&[Change::Delete {
            kind: KIND_ROLE,
            id: format!("{}/{}", account, name.to_ascii_lowercase()),
        }])?;
        self.write_state().roles.remove(&name_key(&account, name));
        Ok(())
    }

    /// UpdateAssumeRolePolicy
    pub fn update_assume_role_policy(
        &self,
        caller: &Caller,
        name: &str,
        text: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, Owner::Role, name);
        self.authorize_with(caller, "iam:UpdateAssumeRolePolicy", &arn, keys)?;
        self.role(&account, name)?;
        check_size(text, 2048)?;
        let trust = PolicyDoc::parse(text, DocKind::Trust)?;
        let _w = self.writer.lock();
        let mut r = (*self.role(&account, name)?).clone();
        r.trust = trust;
        self.save_role(r)?;
        Ok(())
    }
}
