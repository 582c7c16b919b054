//! Tags of users and roles: Tag/Untag/List{User,Role}Tags.

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
}
