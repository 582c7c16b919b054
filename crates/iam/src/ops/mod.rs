//! IAM operations, one file per entity, each method named after its AWS
//! operation (`create_user` is CreateUser) and authorized first (the rule
//! is the operation's row in `crate::catalog`):
//!
//! - [`users`], [`roles`], [`groups`]: the entities and group membership;
//! - [`policies`]: inline policies, managed policies and their versions,
//!   attachments;
//! - [`access_keys`], [`tags`], [`boundaries`]: what users and roles carry
//!   (and the tags of managed policies);
//! - [`instance_profiles`]: instance profiles, their role and tags;
//! - [`reports`]: ListEntitiesForPolicy, GetAccountAuthorizationDetails.
//!
//! This file holds the limits and the `Owner` of inline policies and
//! attachments that several of them share.

mod access_keys;
mod boundaries;
mod groups;
mod instance_profiles;
mod policies;
mod reports;
mod roles;
mod tags;
mod users;

pub use reports::{AuthorizationDetails, PolicyEntities};
pub use tags::Taggable;

use std::collections::BTreeMap;

use ferrokms_policy::Context;
use ferrokms_types::AccountId;

use crate::authz::request_tag_keys;
use crate::entities::*;
use crate::{Directory, IamError};

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
    /// An IAM user.
    User,
    /// An IAM role.
    Role,
    /// An IAM group.
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
    /// Whether a user or role with exactly this ARN (path included) exists.
    pub fn entity_arn_exists(&self, arn: &str) -> bool {
        let Ok(parsed) = ferrokms_types::Arn::parse(arn) else {
            return false;
        };
        let Some(account) = parsed.account_id() else {
            return false;
        };
        let name = parsed.resource().rsplit('/').next().unwrap_or_default();
        if parsed.resource().starts_with("user/") {
            self.find_user(&account, name)
                .is_some_and(|u| u.arn() == arn)
        } else if parsed.resource().starts_with("role/") {
            self.find_role(&account, name)
                .is_some_and(|r| r.arn() == arn)
        } else {
            false
        }
    }

    pub(crate) fn entity_arn(
        account: &AccountId,
        noun: &str,
        existing_path: Option<&str>,
        name: &str,
    ) -> String {
        account.iam_arn(&format!("{noun}{}{name}", existing_path.unwrap_or("/")))
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
