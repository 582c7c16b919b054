//! IAM groups: CreateGroup, GetGroup, ListGroups, DeleteGroup, membership
//! (AddUserToGroup, RemoveUserFromGroup, ListGroupsForUser), and the
//! lookups every group operation goes through.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_store::Change;
use ferrokms_types::AccountId;

use super::*;
use crate::entities::*;
use crate::names::{check_name, check_path, new_id};
use crate::{json_change, name_key, now_ms, Caller, Directory, IamError, KIND_GROUP};

impl Directory {
    pub(crate) fn group(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Result<Arc<GroupRecord>, IamError> {
        self.state
            .read()
            .groups
            .get(&name_key(account, name))
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The group with name {name} cannot be found."))
            })
    }

    /// The group `name` of `account`, if it exists (names compare regardless of case).
    pub fn find_group(&self, account: &AccountId, name: &str) -> Option<Arc<GroupRecord>> {
        self.state
            .read()
            .groups
            .get(&name_key(account, name))
            .cloned()
    }

    pub(crate) fn save_group(&self, g: GroupRecord) -> Result<Arc<GroupRecord>, IamError> {
        self.store.apply(&[json_change(
            KIND_GROUP,
            format!("{}/{}", g.account, g.name.to_ascii_lowercase()),
            &g,
        )?])?;
        let g = Arc::new(g);
        self.write_state()
            .groups
            .insert(name_key(&g.account, &g.name), g.clone());
        Ok(g)
    }

    /// The groups a user belongs to.
    pub fn groups_of_user(&self, account: &AccountId, user: &str) -> Vec<Arc<GroupRecord>> {
        self.state
            .read()
            .groups
            .values()
            .filter(|g| g.account == *account && g.has_member(user))
            .cloned()
            .collect()
    }

    /// CreateGroup
    pub fn create_group(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
    ) -> Result<Arc<GroupRecord>, IamError> {
        let account = caller.account().clone();
        let path = path.unwrap_or("/");
        check_name(name, "groupName", 128)?;
        check_path(path)?;
        self.authorize(
            caller,
            "iam:CreateGroup",
            &Self::entity_arn(&account, "group", Some(path), name),
        )?;
        let _w = self.writer.lock();
        if self.find_group(&account, name).is_some() {
            return Err(IamError::EntityAlreadyExists(format!(
                "Group with name {name} already exists."
            )));
        }
        self.save_group(GroupRecord {
            account,
            name: name.to_string(),
            path: path.to_string(),
            id: new_id("AGPA", 17)?,
            created_ms: now_ms(),
            inline: BTreeMap::new(),
            attached: Vec::new(),
            members: Vec::new(),
        })
    }

    /// GetGroup: the group and its users.
    pub fn get_group(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<(Arc<GroupRecord>, Vec<Arc<UserRecord>>), IamError> {
        let account = caller.account().clone();
        let existing = self.find_group(&account, name);
        self.authorize(
            caller,
            "iam:GetGroup",
            &Self::entity_arn(
                &account,
                "group",
                existing.as_ref().map(|g| g.path.as_str()),
                name,
            ),
        )?;
        let g = self.group(&account, name)?;
        let users = g
            .members
            .iter()
            .filter_map(|m| self.find_user(&account, m))
            .collect();
        Ok((g, users))
    }

    /// ListGroups
    pub fn list_groups(
        &self,
        caller: &Caller,
        path_prefix: Option<&str>,
    ) -> Result<Vec<Arc<GroupRecord>>, IamError> {
        let account = caller.account().clone();
        self.authorize(caller, "iam:ListGroups", &account.iam_arn("group/"))?;
        let prefix = path_prefix.unwrap_or("/");
        Ok(self
            .state
            .read()
            .groups
            .values()
            .filter(|g| g.account == account && g.path.starts_with(prefix))
            .cloned()
            .collect())
    }

    /// DeleteGroup: refused while it has members or policies.
    pub fn delete_group(&self, caller: &Caller, name: &str) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, _) = self.subject(&account, Owner::Group, name);
        self.authorize(caller, "iam:DeleteGroup", &arn)?;
        let g = self.group(&account, name)?;
        if !g.members.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove users from group first.".into(),
            ));
        }
        if !g.inline.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".into(),
            ));
        }
        if !g.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".into(),
            ));
        }
        let _w = self.writer.lock();
        self.store.apply(&[Change::Delete {
            kind: KIND_GROUP,
            id: format!("{}/{}", account, name.to_ascii_lowercase()),
        }])?;
        self.write_state().groups.remove(&name_key(&account, name));
        Ok(())
    }

    /// AddUserToGroup (idempotent, as on AWS).
    pub fn add_user_to_group(
        &self,
        caller: &Caller,
        group: &str,
        user: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, _) = self.subject(&account, Owner::Group, group);
        self.authorize(caller, "iam:AddUserToGroup", &arn)?;
        self.group(&account, group)?;
        let u = self.user(&account, user)?;
        let _w = self.writer.lock();
        let mut g = (*self.group(&account, group)?).clone();
        if !g.has_member(&u.name) {
            if self.groups_of_user(&account, &u.name).len() >= 10 {
                return Err(IamError::LimitExceeded(
                    "Cannot exceed quota for GroupsPerUser: 10".into(),
                ));
            }
            g.members.push(u.name.clone());
            self.save_group(g)?;
        }
        Ok(())
    }

    /// RemoveUserFromGroup
    pub fn remove_user_from_group(
        &self,
        caller: &Caller,
        group: &str,
        user: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, _) = self.subject(&account, Owner::Group, group);
        self.authorize(caller, "iam:RemoveUserFromGroup", &arn)?;
        self.group(&account, group)?;
        self.user(&account, user)?;
        let _w = self.writer.lock();
        let mut g = (*self.group(&account, group)?).clone();
        if !g.has_member(user) {
            return Err(IamError::NoSuchEntity(format!(
                "The user with name {user} cannot be found."
            )));
        }
        g.members.retain(|m| !m.eq_ignore_ascii_case(user));
        self.save_group(g)?;
        Ok(())
    }

    /// ListGroupsForUser
    pub fn list_groups_for_user(
        &self,
        caller: &Caller,
        user: &str,
    ) -> Result<Vec<Arc<GroupRecord>>, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, Owner::User, user);
        self.authorize_with(caller, "iam:ListGroupsForUser", &arn, keys)?;
        let u = self.user(&account, user)?;
        Ok(self.groups_of_user(&account, &u.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Owner;
    use crate::Principal;
    use ferrokms_policy::PolicyKind;
    use ferrokms_store::{MemoryStore, Sealer};

    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn setup() -> (Directory, Caller) {
        let d = Directory::open(
            Arc::new(MemoryStore::default()),
            Arc::new(Sealer::ephemeral().expect("sealer")),
        )
        .expect("open");
        let acct = AccountId::parse("111122223333").expect("account");
        d.create_account(&acct).expect("account");
        (d, Caller::root(acct))
    }

    #[test]
    fn group_policies_count_for_members_and_boundary_is_reported() {
        let (d, root) = setup();
        let u = d
            .create_user(&root, "alice", None, Vec::new(), None)
            .expect("user");
        let alice = Principal::User {
            account: u.account.clone(),
            name: u.name.clone(),
            path: u.path.clone(),
            id: u.id.clone(),
        };
        d.create_group(&root, "devs", None).expect("group");
        d.put_inline_policy(&root, Owner::Group, "devs", "all", ALLOW_ALL)
            .expect("policy");
        assert!(d.identity_policies(&alice).is_empty());
        d.add_user_to_group(&root, "devs", "alice").expect("add");
        let labels: Vec<String> = d
            .identity_policies(&alice)
            .into_iter()
            .map(|p| p.label)
            .collect();
        assert_eq!(labels, ["group devs inline policy all"]);
        assert!(d.permissions_boundary(&alice).is_none());
        let b = d
            .create_policy(&root, "b", None, ALLOW_ALL, None)
            .expect("managed");
        d.put_permissions_boundary(&root, Taggable::User, "alice", &b.arn())
            .expect("boundary");
        let bound = d.permissions_boundary(&alice).expect("boundary set");
        assert_eq!(bound.kind, PolicyKind::PermissionsBoundary);
        assert!(matches!(
            d.delete_group(&root, "devs"),
            Err(IamError::DeleteConflict(_))
        ));
        assert!(matches!(
            d.delete_policy(&root, &b.arn()),
            Err(IamError::DeleteConflict(_))
        ));
    }

    #[test]
    fn renaming_a_user_moves_keys_and_memberships() {
        let (d, root) = setup();
        d.create_user(&root, "bob", Some("/a/"), Vec::new(), None)
            .expect("user");
        d.create_group(&root, "g", None).expect("group");
        d.add_user_to_group(&root, "g", "bob").expect("add");
        let key = d.create_access_key(&root, Some("bob")).expect("key");
        d.update_user(&root, "bob", Some("robert"), Some("/b/"))
            .expect("rename");
        assert!(d.find_user(root.account(), "bob").is_none());
        let k = d.active_access_key(&key.id).expect("key kept");
        assert_eq!(
            k.principal.arn("aws"),
            "arn:aws:iam::111122223333:user/b/robert"
        );
        assert!(d
            .find_group(root.account(), "g")
            .expect("g")
            .has_member("robert"));
    }
}
