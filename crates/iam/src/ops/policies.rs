//! IAM policies: inline policies of users, roles and groups (Put/Get/List/
//! Delete{User,Role,Group}Policy), managed policies and their versions
//! (CreatePolicy, GetPolicy, ListPolicies, DeletePolicy, *PolicyVersion,
//! SetDefaultPolicyVersion), and attachments (Attach/Detach/ListAttached*).

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_store::Change;
use ferrokms_types::AccountId;

use super::*;
use crate::entities::*;
use crate::names::{check_name, check_policy_description, check_policy_path, check_tags, new_id};
use crate::{json_change, now_ms, Caller, Directory, IamError, KIND_POLICY};

impl Directory {
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
    pub(super) fn modify_owner<R>(
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

    /// The managed policy with this ARN, if it exists.
    pub fn managed_policy(&self, arn: &str) -> Option<Arc<ManagedPolicyRecord>> {
        self.state.read().policies.get(arn).cloned()
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

    /// CreatePolicy without tags.
    pub fn create_policy(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        text: &str,
        description: Option<&str>,
    ) -> Result<Arc<ManagedPolicyRecord>, IamError> {
        self.create_policy_tagged(caller, name, path, text, description, Vec::new())
    }

    /// CreatePolicy, with its tags (`aws:RequestTag/*`, `aws:TagKeys`).
    pub fn create_policy_tagged(
        &self,
        caller: &Caller,
        name: &str,
        path: Option<&str>,
        text: &str,
        description: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<Arc<ManagedPolicyRecord>, IamError> {
        let account = caller.account().clone();
        let path = path.unwrap_or("/");
        check_name(name, "policyName", 128)?;
        check_policy_path(path)?;
        check_policy_description(description.unwrap_or_default())?;
        check_tags(&tags)?;
        let arn = account.iam_arn(&format!("policy{path}{name}"));
        let mut keys = ferrokms_policy::Context::new();
        crate::authz::request_tag_keys(&mut keys, &tags);
        self.authorize_with(caller, "iam:CreatePolicy", &arn, keys)?;
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
            tags,
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
        self.authorize(caller, "iam:ListPolicies", &account.iam_arn("policy/"))?;
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

    /// Authorizes `iam:{verb}{User|Role|Group}Policy` on the owner, with
    /// `iam:PolicyARN`; returns the caller's account.
    fn authorize_attachment(
        &self,
        caller: &Caller,
        verb: &str,
        owner: Owner,
        owner_name: &str,
        policy_arn: &str,
    ) -> Result<AccountId, IamError> {
        let account = caller.account().clone();
        let (arn, mut keys) = self.subject(&account, owner, owner_name);
        keys.insert("iam:PolicyARN", policy_arn);
        let action = format!("iam:{verb}{}Policy", owner.title());
        self.authorize_with(caller, &action, &arn, keys)?;
        Ok(account)
    }

    /// AttachUserPolicy / AttachRolePolicy / AttachGroupPolicy
    pub fn attach_policy(
        &self,
        caller: &Caller,
        owner: Owner,
        owner_name: &str,
        policy_arn: &str,
    ) -> Result<(), IamError> {
        let account = self.authorize_attachment(caller, "Attach", owner, owner_name, policy_arn)?;
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
        let account = self.authorize_attachment(caller, "Detach", owner, owner_name, policy_arn)?;
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
}
