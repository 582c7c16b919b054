//! IAM users: CreateUser, GetUser, ListUsers, DeleteUser, UpdateUser, and
//! the lookups and the save every user operation goes through.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_store::Change;
use ferrokms_types::AccountId;

use super::*;
use crate::authz::entity_keys;
use crate::entities::*;
use crate::names::{check_name, check_path, check_tags, new_id};
use crate::{
    json_change, name_key, now_ms, AccessKey, Caller, Directory, IamError, Principal, KIND_GROUP,
    KIND_USER,
};

impl Directory {
    pub(crate) fn user(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<Arc<UserRecord>, IamError> {
        self.state
            .read()
            .users
            .get(&name_key(account, name))
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
            })
    }

    /// The user `name` of `account`, if it exists (names compare regardless of case).
    pub fn find_user(&self, account: &AccountId, name: &str) -> Option<Arc<UserRecord>> {
        self.state
            .read()
            .users
            .get(&name_key(account, name))
            .cloned()
    }

    pub(crate) fn save_user(&self, u: UserRecord) -> Result<Arc<UserRecord>, IamError> {
        self.store.apply(&[json_change(
            KIND_USER,
            format!("{}/{}", u.account, u.name.to_ascii_lowercase()),
            &u,
        )?])?;
        let u = Arc::new(u);
        self.write_state()
            .users
            .insert(name_key(&u.account, &u.name), u.clone());
        Ok(u)
    }

    /// CreateUser
    pub fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        tags: Vec<Tag>,
        boundary: Option<&str>,
    ) -> Result<Arc<UserRecord>, IamError> {
        let account = caller.account().clone();
        let path = path.unwrap_or("/");
        check_name(name, "userName", 64)?;
        check_path(path)?;
        check_tags(&tags)?;
        if let Some(b) = boundary {
            self.boundary_policy(&account, b)?;
        }
        self.authorize_with(
            caller,
            "iam:CreateUser",
            &Self::entity_arn(&account, "user", Some(path), name),
            creation_keys(&tags, boundary),
        )?;
        let _w = self.writer.lock();
        if self
            .state
            .read()
            .users
            .contains_key(&name_key(&account, name))
        {
            return Err(IamError::EntityAlreadyExists(format!(
                "User with name {name} already exists."
            )));
        }
        self.save_user(UserRecord {
            account,
            name: name.to_string(),
            path: path.to_string(),
            id: new_id("AIDA", 17)?,
            created_ms: now_ms(),
            inline: BTreeMap::new(),
            attached: Vec::new(),
            tags,
            boundary: boundary.map(str::to_string),
        })
    }

    /// GetUser (without a name: the calling user).
    pub fn get_user(
        &self,
        caller: &Caller,
        name: Option<&str>,
    ) -> Result<Arc<UserRecord>, IamError> {
        let account = caller.account().clone();
        let name = match (name, &caller.principal) {
            (Some(n), _) => n.to_string(),
            (None, Principal::User { name, .. }) => name.clone(),
            (None, _) => {
                return Err(IamError::Validation(
                    "Must specify userName when calling with non-User credentials".into(),
                ))
            }
        };
        let existing = self.find_user(&account, &name);
        self.authorize_with(
            caller,
            "iam:GetUser",
            &Self::entity_arn(
                &account,
                "user",
                existing.as_ref().map(|u| u.path.as_str()),
                &name,
            ),
            existing
                .as_ref()
                .map(|u| entity_keys(&u.tags, u.boundary.as_deref()))
                .unwrap_or_default(),
        )?;
        self.user(&account, &name)
    }

    /// ListUsers
    pub fn list_users(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> Result<Vec<Arc<UserRecord>>, IamError> {
        let account = caller.account().clone();
        self.authorize(caller, "iam:ListUsers", &account.iam_arn("user/"))?;
        let prefix = path_prefix.unwrap_or("/");
        Ok(self
            .state
            .read()
            .users
            .values()
            .filter(|u| u.account == account && u.path.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// DeleteUser: refused while the user still has policies or keys.
    pub fn delete_user(&self, caller: &Caller, name: &str) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, Owner::User, name);
        self.authorize_with(caller, "iam:DeleteUser", &arn, keys)?;
        let user = self.user(&account, name)?;
        let _w = self.writer.lock();
        let has_keys = self.state.read().access_keys.values().any(|k| {
            matches!(&k.principal, Principal::User { account: a, name: n, .. } if *a == account && n.eq_ignore_ascii_case(name))
        });
        if has_keys {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete access keys first.".into(),
            ));
        }
        if !user.inline.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if !user.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        let in_group = self
            .state
            .read()
            .groups
            .values()
            .any(|g| g.account == account && g.has_member(name));
        if in_group {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove users from group first.".into(),
            ));
        }
        self.store.apply(&[Change::Delete {
            kind: KIND_USER,
            id: format!("{}/{}", account, name.to_ascii_lowercase()),
        }])?;
        self.write_state().users.remove(&name_key(&account, name));
        Ok(())
    }

    /// UpdateUser: a new name and/or path. Group memberships and access keys
    /// follow the user.
    pub fn update_user(
        &self,
        caller: &Caller,
        name: &str,
        new_name: Option<&str>,
        new_path: Option<&str>,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        if let Some(n) = new_name {
            check_name(n, "newUserName", 64)?;
        }
        if let Some(p) = new_path {
            check_path(p)?;
        }
        let (arn, keys) = self.subject(&account, Owner::User, name);
        self.authorize_with(caller, "iam:UpdateUser", &arn, keys)?;
        self.user(&account, name)?;
        let _w = self.writer.lock();
        let old = (*self.user(&account, name)?).clone();
        let mut new = old.clone();
        if let Some(n) = new_name {
            if !n.eq_ignore_ascii_case(&old.name) && self.find_user(&account, n).is_some() {
                return Err(IamError::EntityAlreadyExists(format!(
                    "User with name {n} already exists."
                )));
            }
            new.name = n.to_string();
        }
        if let Some(p) = new_path {
            new.path = p.to_string();
        }
        let new_principal = Principal::User {
            account: account.clone(),
            name: new.name.clone(),
            path: new.path.clone(),
            id: new.id.clone(),
        };
        let mut changes = vec![
            Change::Delete {
                kind: KIND_USER,
                id: format!("{}/{}", account, old.name.to_ascii_lowercase()),
            },
            json_change(
                KIND_USER,
                format!("{}/{}", account, new.name.to_ascii_lowercase()),
                &new,
            )?,
        ];
        let keys: Vec<Arc<AccessKey>> = self
            .state
            .read()
            .access_keys
            .values()
            .filter(|k| matches!(&k.principal, Principal::User { id, .. } if *id == old.id))
            .map(|k| {
                Arc::new(AccessKey {
                    id: k.id.clone(),
                    secret: k.secret.clone(),
                    principal: new_principal.clone(),
                    status: k.status,
                    created_ms: k.created_ms,
                })
            })
            .collect();
        for k in &keys {
            changes.push(self.access_key_change(k)?);
        }
        let groups: Vec<GroupRecord> = self
            .groups_of_user(&account, &old.name)
            .into_iter()
            .map(|g| {
                let mut g = (*g).clone();
                for m in &mut g.members {
                    if m.eq_ignore_ascii_case(&old.name) {
                        *m = new.name.clone();
                    }
                }
                g
            })
            .collect();
        for g in &groups {
            changes.push(json_change(
                KIND_GROUP,
                format!("{}/{}", g.account, g.name.to_ascii_lowercase()),
                g,
            )?);
        }
        // Delete of the old id first, then the new record (same id when only
        // the case or the path changes: the put wins).
        self.store.apply(&changes)?;
        let mut state = self.write_state();
        state.users.remove(&name_key(&account, &old.name));
        state
            .users
            .insert(name_key(&account, &new.name), Arc::new(new));
        for k in keys {
            state.access_keys.insert(k.id.clone(), k);
        }
        for g in groups {
            state
                .groups
                .insert(name_key(&g.account, &g.name), Arc::new(g));
        }
        Ok(())
    }
}
