//! Groups, UpdateUser, tags, permissions boundaries, policy versions and
//! the account-wide reports (ListEntitiesForPolicy,
//! GetAccountAuthorizationDetails).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_policy::Context;
use ferrokms_store::Change;
use ferrokms_types::AccountId;

use crate::authz::{request_tag_keys, tag_keys};
use crate::entities::*;
use crate::names::{check_name, check_path, check_tags, new_id, same_tag_key};
use crate::ops_owner::Owner;
use crate::{
    json_change, name_key, now_ms, AccessKey, Caller, Directory, IamError, Principal, KIND_GROUP,
    KIND_USER,
};

/// Which entity carries tags or a permissions boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taggable {
    User,
    Role,
}

impl Taggable {
    fn title(self) -> &'static str {
        match self {
            Taggable::User => "User",
            Taggable::Role => "Role",
        }
    }
}

/// Everything GetAccountAuthorizationDetails reports.
pub struct AuthorizationDetails {
    pub users: Vec<(Arc<UserRecord>, Vec<String>)>,
    pub groups: Vec<Arc<GroupRecord>>,
    pub roles: Vec<Arc<RoleRecord>>,
    pub policies: Vec<(Arc<ManagedPolicyRecord>, usize, usize)>,
}

/// Entities a managed policy is attached to: (name, id) of each kind.
#[derive(Debug, Default)]
pub struct PolicyEntities {
    pub users: Vec<(String, String)>,
    pub groups: Vec<(String, String)>,
    pub roles: Vec<(String, String)>,
}

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

    // ------------------------------------------------------------ groups

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
        self.authorize(
            caller,
            "iam:ListGroups",
            &format!("arn:aws:iam::{account}:group/"),
        )?;
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

    // ------------------------------------------------------------ UpdateUser

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
                for m in g.members.iter_mut() {
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

    // ------------------------------------------------------------ tags

    /// A user's or role's ARN, tags, and condition keys.
    /// What a tag or boundary operation is authorized on, whether or not
    /// the entity exists (see `subject`): its ARN and condition keys.
    fn taggable_arn(&self, account: &AccountId, what: Taggable, name: &str) -> (String, Context) {
        let owner = match what {
            Taggable::User => Owner::User,
            Taggable::Role => Owner::Role,
        };
        self.subject(account, owner, name)
    }

    fn modify_taggable(
        &self,
        account: &AccountId,
        what: Taggable,
        name: &str,
        f: impl FnOnce(&mut Vec<Tag>, &mut Option<String>) -> Result<(), IamError>,
    ) -> Result<(), IamError> {
        match what {
            Taggable::User => {
                let mut u = (*self.user(account, name)?).clone();
                f(&mut u.tags, &mut u.boundary)?;
                self.save_user(u)?;
            }
            Taggable::Role => {
                let mut r = (*self.role(account, name)?).clone();
                f(&mut r.tags, &mut r.boundary)?;
                self.save_role(r)?;
            }
        }
        Ok(())
    }

    /// TagUser / TagRole: new keys are added, existing keys (regardless of
    /// case) get the new value.
    pub fn tag(
        &self,
        caller: &Caller,
        what: Taggable,
        name: &str,
        tags: Vec<Tag>,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        check_tags(&tags)?;
        let (arn, mut keys) = self.taggable_arn(&account, what, name);
        request_tag_keys(&mut keys, &tags);
        self.authorize_with(caller, &format!("iam:Tag{}", what.title()), &arn, keys)?;
        let _w = self.writer.lock();
        self.modify_taggable(&account, what, name, |current, _| {
            for t in tags {
                match current.iter_mut().find(|c| same_tag_key(&c.key, &t.key)) {
                    Some(c) => *c = t,
                    None => current.push(t),
                }
            }
            if current.len() > 50 {
                return Err(IamError::LimitExceeded(
                    "Cannot exceed quota for TagsPerEntity: 50".into(),
                ));
            }
            Ok(())
        })
    }

    /// UntagUser / UntagRole: unknown keys are ignored.
    pub fn untag(
        &self,
        caller: &Caller,
        what: Taggable,
        name: &str,
        keys: &[String],
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, mut ctx) = self.taggable_arn(&account, what, name);
        tag_keys(&mut ctx, keys.iter().map(String::as_str));
        self.authorize_with(caller, &format!("iam:Untag{}", what.title()), &arn, ctx)?;
        let _w = self.writer.lock();
        self.modify_taggable(&account, what, name, |current, _| {
            current.retain(|t| !keys.iter().any(|k| same_tag_key(k, &t.key)));
            Ok(())
        })
    }

    /// ListUserTags / ListRoleTags
    pub fn list_tags(
        &self,
        caller: &Caller,
        what: Taggable,
        name: &str,
    ) -> Result<Vec<Tag>, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.taggable_arn(&account, what, name);
        self.authorize_with(caller, &format!("iam:List{}Tags", what.title()), &arn, keys)?;
        Ok(match what {
            Taggable::User => self.user(&account, name)?.tags.clone(),
            Taggable::Role => self.role(&account, name)?.tags.clone(),
        })
    }

    // ------------------------------------------------------------ boundaries

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

    // ------------------------------------------------------------ policy versions

    /// ListPolicyVersions: newest first, as AWS lists them.
    pub fn list_policy_versions(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<(Vec<PolicyVersion>, String), IamError> {
        self.authorize(caller, "iam:ListPolicyVersions", arn)?;
        let p = self.policy_by_arn(caller.account(), arn)?;
        let mut v = p.versions.clone();
        v.reverse();
        Ok((v, p.default_version.clone()))
    }

    /// SetDefaultPolicyVersion
    pub fn set_default_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        version: &str,
    ) -> Result<(), IamError> {
        self.authorize(caller, "iam:SetDefaultPolicyVersion", arn)?;
        let _w = self.writer.lock();
        let mut p = (*self.policy_by_arn(caller.account(), arn)?).clone();
        if !p.versions.iter().any(|v| v.version_id == version) {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {arn} version {version} does not exist."
            )));
        }
        p.default_version = version.to_string();
        p.updated_ms = now_ms();
        self.save_policy(p)?;
        Ok(())
    }

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

impl Directory {
    /// PermissionsBoundaryUsageCount of a managed policy.
    pub fn permissions_boundary_usage(&self, arn: &str) -> usize {
        self.boundary_count(arn)
    }
}

impl Directory {
    /// A managed policy of the account, by name.
    pub fn managed_policy_by_name(
        &self,
        account: &AccountId,
        name: &str,
    ) -> Option<Arc<ManagedPolicyRecord>> {
        self.state
            .read()
            .policies
            .values()
            .find(|p| p.account == *account && p.name.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// An owner's ARN, inline policies and attached policy ARNs (no
    /// authorization: for bootstrap and tools).
    pub fn policies_of(
        &self,
        account: &AccountId,
        owner: crate::ops::Owner,
        name: &str,
    ) -> Result<crate::ops::OwnerPolicies, IamError> {
        self.owner_snapshot(account, owner, name)
    }

    /// Adds an access key with a given id and secret (bootstrap). The id
    /// must be 16..=128 letters and digits and unused.
    pub fn import_access_key(
        &self,
        principal: Principal,
        id: &str,
        secret: &str,
    ) -> Result<Arc<AccessKey>, IamError> {
        if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(crate::names::invalid(
                id,
                "accessKeyId",
                "Member must have length between 16 and 128 and contain only letters and digits",
            ));
        }
        if secret.is_empty() || secret.len() > 128 {
            return Err(IamError::Validation(
                "The secret access key must have between 1 and 128 characters.".into(),
            ));
        }
        let _w = self.writer.lock();
        {
            let state = self.state.read();
            if state.access_keys.contains_key(id) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Access key {id} already exists."
                )));
            }
        }
        let key = Arc::new(AccessKey {
            id: id.to_string(),
            secret: zeroize::Zeroizing::new(secret.to_string()),
            principal,
            status: crate::AccessKeyStatus::Active,
            created_ms: now_ms(),
        });
        self.store.apply(&[self.access_key_change(&key)?])?;
        self.write_state()
            .access_keys
            .insert(key.id.clone(), key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Owner;
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
