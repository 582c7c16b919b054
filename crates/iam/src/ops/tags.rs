//! Tags of users and roles (Tag/Untag/List{User,Role}Tags) and of managed
//! policies (TagPolicy, UntagPolicy, ListPolicyTags); instance profiles'
//! are in `instance_profiles.rs`. Every entity merges and removes tags the
//! same way ([`merge_tags`], [`remove_tags`]).

use ferrokms_policy::Context;
use ferrokms_types::AccountId;

use super::*;
use crate::authz::{request_tag_keys, tag_keys};
use crate::entities::*;
use crate::names::{check_tags, same_tag_key};
use crate::{Caller, Directory, IamError};

/// Which entity carries tags or a permissions boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taggable {
    /// An IAM user.
    User,
    /// An IAM role.
    Role,
}

impl Taggable {
    pub(super) fn title(self) -> &'static str {
        match self {
            Taggable::User => "User",
            Taggable::Role => "Role",
        }
    }
}

impl Directory {
    /// A user's or role's ARN, tags, and condition keys.
    /// What a tag or boundary operation is authorized on, whether or not
    /// the entity exists (see `subject`): its ARN and condition keys.
    pub(super) fn taggable_arn(
        &self,
        account: &AccountId,
        what: Taggable,
        name: &str,
    ) -> (String, Context) {
        let owner = match what {
            Taggable::User => Owner::User,
            Taggable::Role => Owner::Role,
        };
        self.subject(account, owner, name)
    }

    pub(super) fn modify_taggable(
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
        self.modify_taggable(&account, what, name, |current, _| merge_tags(current, tags))
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
            remove_tags(current, keys);
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
}

/// Tags a policy or instance profile operation is authorized with: the
/// entity's own as `aws:ResourceTag/*` (users and roles also have
/// `iam:ResourceTag/*`, see `entity_keys`).
pub(super) fn resource_tag_keys(tags: &[Tag]) -> Context {
    let mut ctx = Context::new();
    for t in tags {
        ctx.insert(&format!("aws:ResourceTag/{}", t.key), t.value.as_str());
    }
    ctx
}

/// Adds `tags` to `current`: new keys are added, a key already there
/// (regardless of case) gets the new value; at most 50 in all.
pub(super) fn merge_tags(current: &mut Vec<Tag>, tags: Vec<Tag>) -> Result<(), IamError> {
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
}

/// Removes the tags with these keys (regardless of case); unknown keys are
/// ignored.
pub(super) fn remove_tags(current: &mut Vec<Tag>, keys: &[String]) {
    current.retain(|t| !keys.iter().any(|k| same_tag_key(k, &t.key)));
}

/// The tag keys of an Untag* request: 1..50 keys of 1..128 characters of
/// the tag key pattern (`tagKeyListType`), else AWS's ValidationError.
pub(super) fn check_tag_keys(keys: &[String]) -> Result<(), IamError> {
    if keys.len() > 50 {
        return Err(IamError::Validation(
            "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50".into(),
        ));
    }
    let as_tags: Vec<Tag> = keys
        .iter()
        .map(|k| Tag {
            key: k.clone(),
            value: String::new(),
        })
        .collect();
    // The key rules are those of a tag's key; duplicates are harmless here.
    for (i, t) in as_tags.iter().enumerate() {
        check_tags(std::slice::from_ref(t)).map_err(|e| match e {
            IamError::Validation(m) => IamError::Validation(
                m.replace("tags.1.member.key", &format!("tagKeys.{}.member", i + 1)),
            ),
            other => other,
        })?;
    }
    Ok(())
}

impl Directory {
    /// TagPolicy: as TagUser, on a customer-managed policy of the caller's
    /// account.
    pub fn tag_policy(&self, caller: &Caller, arn: &str, tags: Vec<Tag>) -> Result<(), IamError> {
        check_tags(&tags)?;
        let mut keys = self.policy_keys(caller.account(), arn);
        request_tag_keys(&mut keys, &tags);
        self.authorize_with(caller, "iam:TagPolicy", arn, keys)?;
        let _w = self.writer.lock();
        let mut p = (*self.policy_by_arn(caller.account(), arn)?).clone();
        merge_tags(&mut p.tags, tags)?;
        self.save_policy(p)?;
        Ok(())
    }

    /// UntagPolicy: unknown keys are ignored.
    pub fn untag_policy(
        &self,
        caller: &Caller,
        arn: &str,
        keys: &[String],
    ) -> Result<(), IamError> {
        check_tag_keys(keys)?;
        let mut ctx = self.policy_keys(caller.account(), arn);
        tag_keys(&mut ctx, keys.iter().map(String::as_str));
        self.authorize_with(caller, "iam:UntagPolicy", arn, ctx)?;
        let _w = self.writer.lock();
        let mut p = (*self.policy_by_arn(caller.account(), arn)?).clone();
        remove_tags(&mut p.tags, keys);
        self.save_policy(p)?;
        Ok(())
    }

    /// ListPolicyTags
    pub fn list_policy_tags(&self, caller: &Caller, arn: &str) -> Result<Vec<Tag>, IamError> {
        let keys = self.policy_keys(caller.account(), arn);
        self.authorize_with(caller, "iam:ListPolicyTags", arn, keys)?;
        Ok(self.policy_by_arn(caller.account(), arn)?.tags.clone())
    }

    /// The condition keys of a question about a managed policy: its tags,
    /// if it is the account's own (another account's policy is refused
    /// before they matter).
    fn policy_keys(&self, account: &AccountId, arn: &str) -> Context {
        self.own_policy(account, arn)
            .map(|p| resource_tag_keys(&p.tags))
            .unwrap_or_default()
    }
}
