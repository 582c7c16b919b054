//! IAM operations on users, roles, policies and access keys, each method
//! named after its AWS operation. Every operation is authorized first.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_policy::Context;
use ferrokms_store::Change;
use ferrokms_types::AccountId;

use crate::authz::{entity_keys, request_tag_keys};
use crate::entities::*;
use crate::names::{
    check_name, check_path, check_policy_description, check_policy_path, check_role_description,
    check_tags, invalid, new_id,
};
use crate::{
    json_change, name_key, now_ms, AccessKey, AccessKeyStatus, Caller, Directory, IamError,
    Principal, KIND_ACCESS_KEY, KIND_POLICY, KIND_ROLE, KIND_USER,
};

/// Inline policy size limits (characters, whitespace excluded), as on AWS.
const USER_INLINE_LIMIT: usize = 2048;
const ROLE_INLINE_LIMIT: usize = 10240;
const GROUP_INLINE_LIMIT: usize = 5120;
/// Managed policies attached to one user, role or group.
const MAX_ATTACHED: usize = 10;
const MANAGED_LIMIT: usize = 6144;
const MAX_ACCESS_KEYS_PER_USER: usize = 2;
const MAX_POLICY_VERSIONS: usize = 5;
const DEFAULT_MAX_SESSION: u32 = 3600;

fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

fn check_size(text: &str, limit: usize) -> Result<(), IamError> {
    if policy_size(text) > limit {
        return Err(IamError::LimitExceeded(format!(
            "Cannot exceed quota for PolicySize: {limit}"
        )));
    }
    Ok(())
}

/// An owner's ARN, inline policies by name, and attached policy ARNs.
pub type OwnerPolicies = (String, BTreeMap<String, PolicyDoc>, Vec<String>);

/// Which kind of identity owns an inline policy or an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    User,
    Role,
    Group,
}

impl Owner {
    fn noun(self) -> &'static str {
        match self {
            Owner::User => "user",
            Owner::Role => "role",
            Owner::Group => "group",
        }
    }

    /// As it appears in action names (`iam:PutGroupPolicy`).
    pub fn title(self) -> &'static str {
        match self {
            Owner::User => "User",
            Owner::Role => "Role",
            Owner::Group => "Group",
        }
    }

    fn inline_limit(self) -> usize {
        match self {
            Owner::User => USER_INLINE_LIMIT,
            Owner::Role => ROLE_INLINE_LIMIT,
            Owner::Group => GROUP_INLINE_LIMIT,
        }
    }
}

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

    /// Whether a user or role with exactly this ARN (path included) exists.
    pub fn entity_arn_exists(&self, arn: &str) -> bool {
        let Ok(parsed) = ferrokms_types::Arn::parse(arn) else {
            return false;
        };
        let Ok(account) = AccountId::parse(&parsed.account) else {
            return false;
        };
        let name = parsed.resource.rsplit('/').next().unwrap_or_default();
        if parsed.resource.starts_with("user/") {
            self.find_user(&account, name)
                .is_some_and(|u| u.arn() == arn)
        } else if parsed.resource.starts_with("role/") {
            self.find_role(&account, name)
                .is_some_and(|r| r.arn() == arn)
        } else {
            false
        }
    }

    pub fn find_role(&self, account: &AccountId, name: &str) -> Option<Arc<RoleRecord>> {
        self.state
            .read()
            .roles
            .get(&name_key(account, name))
            .cloned()
    }

    pub fn find_user(&self, account: &AccountId, name: &str) -> Option<Arc<UserRecord>> {
        self.state
            .read()
            .users
            .get(&name_key(account, name))
            .cloned()
    }

    pub fn managed_policy(&self, arn: &str) -> Option<Arc<ManagedPolicyRecord>> {
        self.state.read().policies.get(arn).cloned()
    }

    pub(crate) fn entity_arn(
        account: &AccountId,
        noun: &str,
        existing_path: Option<&str>,
        name: &str,
    ) -> String {
        format!(
            "arn:aws:iam::{account}:{noun}{}{name}",
            existing_path.unwrap_or("/")
        )
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

    pub(crate) fn save_policy(
        &self,
        p: ManagedPolicyRecord,
    ) -> Result<Arc<ManagedPolicyRecord>, IamError> {
        self.store
            .apply(&[json_change(KIND_POLICY, p.arn(), &p)?])?;
        let p = Arc::new(p);
        self.write_state().policies.insert(p.arn(), p.clone());
        Ok(p)
    }

    // ------------------------------------------------------------ users

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
        self.authorize(
            caller,
            "iam:ListUsers",
            &format!("arn:aws:iam::{account}:user/"),
        )?;
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

    // ------------------------------------------------------------ roles

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
        self.authorize(
            caller,
            "iam:ListRoles",
            &format!("arn:aws:iam::{account}:role/"),
        )?;
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

    // ------------------------------------------------------------ inline policies

    /// An owner's ARN, inline policies and attached policy ARNs.
    pub(crate) fn owner_snapshot(
        &self,
        account: &AccountId,
        owner: Owner,
        owner_name: &str,
    ) -> Result<OwnerPolicies, IamError> {
        Ok(match owner {
            Owner::User => {
                let u = self.user(account, owner_name)?;
                (u.arn(), u.inline.clone(), u.attached.clone())
            }
            Owner::Role => {
                let r = self.role(account, owner_name)?;
                (r.arn(), r.inline.clone(), r.attached.clone())
            }
            Owner::Group => {
                let g = self.group(account, owner_name)?;
                (g.arn(), g.inline.clone(), g.attached.clone())
            }
        })
    }

    /// Changes an owner's inline and attached policies and saves it. The
    /// caller holds the writer lock.
    fn modify_owner<R>(
        &self,
        account: &AccountId,
        owner: Owner,
        owner_name: &str,
        f: impl FnOnce(&mut BTreeMap<String, PolicyDoc>, &mut Vec<String>) -> Result<R, IamError>,
    ) -> Result<R, IamError> {
        match owner {
            Owner::User => {
                let mut u = (*self.user(account, owner_name)?).clone();
                let r = f(&mut u.inline, &mut u.attached)?;
                self.save_user(u)?;
                Ok(r)
            }
            Owner::Role => {
                let mut x = (*self.role(account, owner_name)?).clone();
                let r = f(&mut x.inline, &mut x.attached)?;
                self.save_role(x)?;
                Ok(r)
            }
            Owner::Group => {
                let mut g = (*self.group(account, owner_name)?).clone();
                let r = f(&mut g.inline, &mut g.attached)?;
                self.save_group(g)?;
                Ok(r)
            }
        }
    }

    /// PutUserPolicy / PutRolePolicy / PutGroupPolicy
    pub fn put_inline_policy(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
        policy_name: &str,
        text: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        check_name(policy_name, "policyName", 128)?;
        let (arn, keys) = self.subject(&account, owner, owner_name);
        self.authorize_with(
            caller,
            &format!("iam:Put{}Policy", owner.title()),
            &arn,
            keys,
        )?;
        check_size(text, owner.inline_limit())?;
        let doc = PolicyDoc::parse(text, DocKind::Identity)?;
        let _w = self.writer.lock();
        self.modify_owner(&account, owner, owner_name, |inline, _| {
            inline.insert(policy_name.to_string(), doc);
            Ok(())
        })
    }

    /// GetUserPolicy / GetRolePolicy / GetGroupPolicy: the document as given.
    pub fn get_inline_policy(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
        policy_name: &str,
    ) -> Result<String, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, owner, owner_name);
        self.authorize_with(
            caller,
            &format!("iam:Get{}Policy", owner.title()),
            &arn,
            keys,
        )?;
        let (_, inline, _) = self.owner_snapshot(&account, owner, owner_name)?;
        inline
            .get(policy_name)
            .map(|d| d.text.clone())
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The {} policy with name {policy_name} cannot be found.",
                    owner.noun()
                ))
            })
    }

    /// ListUserPolicies / ListRolePolicies / ListGroupPolicies
    pub fn list_inline_policies(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
    ) -> Result<Vec<String>, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, owner, owner_name);
        self.authorize_with(
            caller,
            &format!("iam:List{}Policies", owner.title()),
            &arn,
            keys,
        )?;
        let (_, inline, _) = self.owner_snapshot(&account, owner, owner_name)?;
        Ok(inline.keys().cloned().collect())
    }

    /// DeleteUserPolicy / DeleteRolePolicy / DeleteGroupPolicy
    pub fn delete_inline_policy(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
        policy_name: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, owner, owner_name);
        self.authorize_with(
            caller,
            &format!("iam:Delete{}Policy", owner.title()),
            &arn,
            keys,
        )?;
        let _w = self.writer.lock();
        self.modify_owner(&account, owner, owner_name, |inline, _| {
            inline.remove(policy_name).map(|_| ()).ok_or_else(|| {
                IamError::NoSuchEntity(format!(
                    "The {} policy with name {policy_name} cannot be found.",
                    owner.noun()
                ))
            })
        })
    }
    // ------------------------------------------------------------ managed policies

    /// CreatePolicy
    pub fn create_policy(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        text: &str,
        description: Option<&str>,
    ) -> Result<Arc<ManagedPolicyRecord>, IamError> {
        let account = caller.account().clone();
        let path = path.unwrap_or("/");
        check_name(name, "policyName", 128)?;
        check_policy_path(path)?;
        check_policy_description(description.unwrap_or_default())?;
        let arn = format!("arn:aws:iam::{account}:policy{path}{name}");
        self.authorize(caller, "iam:CreatePolicy", &arn)?;
        check_size(text, MANAGED_LIMIT)?;
        let doc = PolicyDoc::parse(text, DocKind::Identity)?;
        let _w = self.writer.lock();
        let exists = self
            .state
            .read()
            .policies
            .values()
            .any(|p| p.account == account && p.name.eq_ignore_ascii_case(name));
        if exists {
            return Err(IamError::EntityAlreadyExists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        let now = now_ms();
        self.save_policy(ManagedPolicyRecord {
            account,
            name: name.to_string(),
            path: path.to_string(),
            id: new_id("ANPA", 17)?,
            description: description.unwrap_or_default().to_string(),
            created_ms: now,
            updated_ms: now,
            versions: vec![PolicyVersion {
                version_id: "v1".into(),
                doc,
                created_ms: now,
            }],
            default_version: "v1".into(),
            next_version: 2,
        })
    }

    /// A customer-managed policy of `account`, by ARN. Another account's
    /// policy does not exist for this one: it can never be read, changed,
    /// attached or used as a boundary from here.
    pub(crate) fn policy_by_arn(
        &self,
        account: &AccountId,
        arn: &str,
    ) -> Result<Arc<ManagedPolicyRecord>, IamError> {
        self.own_policy(account, arn).ok_or_else(|| {
            IamError::NoSuchEntity(format!("Policy {arn} does not exist or is not attachable."))
        })
    }

    /// A customer-managed policy by ARN, if it is `account`'s own.
    pub(crate) fn own_policy(
        &self,
        account: &AccountId,
        arn: &str,
    ) -> Option<Arc<ManagedPolicyRecord>> {
        self.managed_policy(arn).filter(|p| p.account == *account)
    }

    /// GetPolicy
    pub fn get_policy(
        &self,
        caller: &Caller,
        arn: &str,
    ) -> Result<(Arc<ManagedPolicyRecord>, usize), IamError> {
        self.authorize(caller, "iam:GetPolicy", arn)?;
        let p = self.policy_by_arn(caller.account(), arn)?;
        Ok((p, self.attachment_count(arn)))
    }

    pub(crate) fn attachment_count(&self, arn: &str) -> usize {
        let state = self.state.read();
        state
            .users
            .values()
            .filter(|u| u.attached.iter().any(|a| a == arn))
            .count()
            + state
                .roles
                .values()
                .filter(|r| r.attached.iter().any(|a| a == arn))
                .count()
            + state
                .groups
                .values()
                .filter(|g| g.attached.iter().any(|a| a == arn))
                .count()
    }

    /// How many users and roles use this policy as permissions boundary.
    pub(crate) fn boundary_count(&self, arn: &str) -> usize {
        let state = self.state.read();
        state
            .users
            .values()
            .filter(|u| u.boundary.as_deref() == Some(arn))
            .count()
            + state
                .roles
                .values()
                .filter(|r| r.boundary.as_deref() == Some(arn))
                .count()
    }

    /// GetPolicyVersion
    pub fn get_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        version: &str,
    ) -> Result<(PolicyVersion, bool), IamError> {
        self.authorize(caller, "iam:GetPolicyVersion", arn)?;
        let p = self.policy_by_arn(caller.account(), arn)?;
        let v = p
            .versions
            .iter()
            .find(|v| v.version_id == version)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("Policy {arn} version {version} does not exist."))
            })?;
        let is_default = v.version_id == p.default_version;
        Ok((v, is_default))
    }

    /// CreatePolicyVersion: at most five versions per policy.
    pub fn create_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        text: &str,
        set_default: bool,
    ) -> Result<PolicyVersion, IamError> {
        self.authorize(caller, "iam:CreatePolicyVersion", arn)?;
        check_size(text, MANAGED_LIMIT)?;
        let doc = PolicyDoc::parse(text, DocKind::Identity)?;
        let _w = self.writer.lock();
        let mut p = (*self.policy_by_arn(caller.account(), arn)?).clone();
        if p.versions.len() >= MAX_POLICY_VERSIONS {
            return Err(IamError::LimitExceeded(format!(
                "A managed policy can have up to {MAX_POLICY_VERSIONS} versions. Before you create a new version, you must delete an existing version."
            )));
        }
        let v = PolicyVersion {
            version_id: format!("v{}", p.next_version),
            doc,
            created_ms: now_ms(),
        };
        p.next_version += 1;
        if set_default {
            p.default_version = v.version_id.clone();
        }
        p.updated_ms = v.created_ms;
        p.versions.push(v.clone());
        self.save_policy(p)?;
        Ok(v)
    }

    /// DeletePolicyVersion: never the default version.
    pub fn delete_policy_version(
        &self,
        caller: &Caller,
        arn: &str,
        version: &str,
    ) -> Result<(), IamError> {
        self.authorize(caller, "iam:DeletePolicyVersion", arn)?;
        let _w = self.writer.lock();
        let mut p = (*self.policy_by_arn(caller.account(), arn)?).clone();
        if p.default_version == version {
            return Err(IamError::DeleteConflict(
                "Cannot delete the default version of a policy.".into(),
            ));
        }
        let before = p.versions.len();
        p.versions.retain(|v| v.version_id != version);
        if p.versions.len() == before {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {arn} version {version} does not exist."
            )));
        }
        self.save_policy(p)?;
        Ok(())
    }

    /// DeletePolicy: refused while attached or with non-default versions.
    pub fn delete_policy(&self, caller: &Caller, arn: &str) -> Result<(), IamError> {
        self.authorize(caller, "iam:DeletePolicy", arn)?;
        let p = self.policy_by_arn(caller.account(), arn)?;
        if self.attachment_count(arn) > 0 || self.boundary_count(arn) > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete a policy attached to entities.".into(),
            ));
        }
        if p.versions.len() > 1 {
            return Err(IamError::DeleteConflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.".into(),
            ));
        }
        let _w = self.writer.lock();
        self.store.apply(&[Change::Delete {
            kind: KIND_POLICY,
            id: arn.to_string(),
        }])?;
        self.write_state().policies.remove(arn);
        Ok(())
    }

    /// ListPolicies (Scope=Local: the account's own policies).
    pub fn list_policies(
        &self,
        caller: &Caller,
        only_attached: bool,
    ) -> Result<Vec<(Arc<ManagedPolicyRecord>, usize)>, IamError> {
        let account = caller.account().clone();
        self.authorize(
            caller,
            "iam:ListPolicies",
            &format!("arn:aws:iam::{account}:policy/"),
        )?;
        let policies: Vec<Arc<ManagedPolicyRecord>> = self
            .state
            .read()
            .policies
            .values()
            .filter(|p| p.account == account)
            .cloned()
            .collect();
        Ok(policies
            .into_iter()
            .map(|p| {
                let n = self.attachment_count(&p.arn());
                (p, n)
            })
            .filter(|(_, n)| !only_attached || *n > 0)
            .collect())
    }

    /// AttachUserPolicy / AttachRolePolicy / AttachGroupPolicy
    pub fn attach_policy(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
        policy_arn: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, mut keys) = self.subject(&account, owner, owner_name);
        keys.insert("iam:PolicyARN", policy_arn);
        self.authorize_with(
            caller,
            &format!("iam:Attach{}Policy", owner.title()),
            &arn,
            keys,
        )?;
        self.policy_by_arn(&account, policy_arn)?;
        let _w = self.writer.lock();
        self.modify_owner(&account, owner, owner_name, |_, attached| {
            if !attached.iter().any(|a| a == policy_arn) {
                if attached.len() >= MAX_ATTACHED {
                    return Err(IamError::LimitExceeded(format!(
                        "Cannot exceed quota for PoliciesPer{}: {MAX_ATTACHED}",
                        owner.title()
                    )));
                }
                attached.push(policy_arn.to_string());
            }
            Ok(())
        })
    }

    /// DetachUserPolicy / DetachRolePolicy / DetachGroupPolicy
    pub fn detach_policy(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
        policy_arn: &str,
    ) -> Result<(), IamError> {
        let account = caller.account().clone();
        let (arn, mut keys) = self.subject(&account, owner, owner_name);
        keys.insert("iam:PolicyARN", policy_arn);
        self.authorize_with(
            caller,
            &format!("iam:Detach{}Policy", owner.title()),
            &arn,
            keys,
        )?;
        let _w = self.writer.lock();
        self.modify_owner(&account, owner, owner_name, |_, attached| {
            let before = attached.len();
            attached.retain(|a| a != policy_arn);
            if attached.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {policy_arn} was not found."
                )));
            }
            Ok(())
        })
    }

    /// ListAttachedUserPolicies / ...RolePolicies / ...GroupPolicies:
    /// (name, arn).
    pub fn list_attached_policies(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
    ) -> Result<Vec<(String, String)>, IamError> {
        let account = caller.account().clone();
        let (arn, keys) = self.subject(&account, owner, owner_name);
        self.authorize_with(
            caller,
            &format!("iam:ListAttached{}Policies", owner.title()),
            &arn,
            keys,
        )?;
        let (_, _, attached) = self.owner_snapshot(&account, owner, owner_name)?;
        Ok(attached
            .into_iter()
            .map(|a| {
                let name = a.rsplit('/').next().unwrap_or(&a).to_string();
                (name, a)
            })
            .collect())
    }
    // ------------------------------------------------------------ access keys

    /// Whose access keys an operation means (the named user, or the
    /// caller), their ARN, and the user's condition keys. A named user that
    /// does not exist is a [`KeyOwner::Missing`], to be answered only after
    /// authorization (see `subject`).
    fn key_owner(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<(KeyOwner, String, Context), IamError> {
        let account = caller.account().clone();
        let user = |u: &UserRecord| {
            (
                KeyOwner::Found(Principal::User {
                    account: account.clone(),
                    name: u.name.clone(),
                    path: u.path.clone(),
                    id: u.id.clone(),
                }),
                u.arn(),
                entity_keys(&u.tags, u.boundary.as_deref()),
            )
        };
        match (user_name, &caller.principal) {
            (Some(n), _) => Ok(match self.find_user(&account, n) {
                Some(u) => user(&u),
                None => {
                    let (arn, keys) = self.subject(&account, Owner::User, n);
                    (KeyOwner::Missing(n.to_string()), arn, keys)
                }
            }),
            (None, Principal::User { name, id, .. }) => {
                // The calling user as it is now, by unique id.
                let u = self.user(&account, name)?;
                if u.id != *id {
                    return Err(IamError::NoSuchEntity(format!(
                        "The user with name {name} cannot be found."
                    )));
                }
                Ok(user(&u))
            }
            (None, Principal::Root { .. }) => Ok((
                KeyOwner::Found(caller.principal.clone()),
                caller.arn("aws"),
                Context::new(),
            )),
            (None, Principal::AssumedRole { .. }) => Err(IamError::Validation(
                "Must specify userName when calling with non-User credentials".into(),
            )),
        }
    }

    /// CreateAccessKey: at most two per user.
    pub fn create_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<Arc<AccessKey>, IamError> {
        let (owner, arn, keys) = self.key_owner(caller, user_name)?;
        self.authorize_with(caller, "iam:CreateAccessKey", &arn, keys)?;
        let owner = owner.found()?;
        let _w = self.writer.lock();
        let count = self
            .state
            .read()
            .access_keys
            .values()
            .filter(|k| k.principal == owner)
            .count();
        if count >= MAX_ACCESS_KEYS_PER_USER {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
            )));
        }
        let key = self.new_access_key(owner)?;
        self.store.apply(&[self.access_key_change(&key)?])?;
        self.write_state()
            .access_keys
            .insert(key.id.clone(), key.clone());
        Ok(key)
    }

    /// ListAccessKeys: (id, status, created) of the user's keys.
    pub fn list_access_keys(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<Vec<Arc<AccessKey>>, IamError> {
        let (owner, arn, keys) = self.key_owner(caller, user_name)?;
        self.authorize_with(caller, "iam:ListAccessKeys", &arn, keys)?;
        let owner = owner.found()?;
        let mut keys: Vec<Arc<AccessKey>> = self
            .state
            .read()
            .access_keys
            .values()
            .filter(|k| k.principal == owner)
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    fn owned_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        key_id: &str,
        action: &str,
    ) -> Result<Arc<AccessKey>, IamError> {
        let (owner, arn, keys) = self.key_owner(caller, user_name)?;
        self.authorize_with(caller, action, &arn, keys)?;
        let owner = owner.found()?;
        self.state
            .read()
            .access_keys
            .get(key_id)
            .filter(|k| k.principal == owner)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The Access Key with id {key_id} cannot be found."))
            })
    }

    /// UpdateAccessKey: Active / Inactive, effective on the next request.
    pub fn update_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        key_id: &str,
        status: AccessKeyStatus,
    ) -> Result<(), IamError> {
        let key = self.owned_key(caller, user_name, key_id, "iam:UpdateAccessKey")?;
        let _w = self.writer.lock();
        let updated = Arc::new(AccessKey {
            id: key.id.clone(),
            secret: key.secret.clone(),
            principal: key.principal.clone(),
            status,
            created_ms: key.created_ms,
        });
        self.store.apply(&[self.access_key_change(&updated)?])?;
        self.write_state()
            .access_keys
            .insert(updated.id.clone(), updated);
        Ok(())
    }

    /// DeleteAccessKey: effective on the next request.
    pub fn delete_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        key_id: &str,
    ) -> Result<(), IamError> {
        let key = self.owned_key(caller, user_name, key_id, "iam:DeleteAccessKey")?;
        let _w = self.writer.lock();
        self.store.apply(&[Change::Delete {
            kind: KIND_ACCESS_KEY,
            id: key.id.clone(),
        }])?;
        self.write_state().access_keys.remove(&key.id);
        Ok(())
    }
}

/// The condition keys of CreateUser and CreateRole: the tags requested and
/// the permissions boundary requested.
fn creation_keys(tags: &[Tag], boundary: Option<&str>) -> Context {
    let mut ctx = Context::new();
    request_tag_keys(&mut ctx, tags);
    if let Some(b) = boundary {
        ctx.insert("iam:PermissionsBoundary", b);
    }
    ctx
}

/// The user whose access keys an operation means, or the name of one that
/// does not exist (NoSuchEntity once the caller is authorized).
enum KeyOwner {
    Found(Principal),
    Missing(String),
}

impl KeyOwner {
    fn found(self) -> Result<Principal, IamError> {
        match self {
            KeyOwner::Found(p) => Ok(p),
            KeyOwner::Missing(name) => Err(IamError::NoSuchEntity(format!(
                "The user with name {name} cannot be found."
            ))),
        }
    }
}
