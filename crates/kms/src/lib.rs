//! The KMS domain of ferrokms.
//!
//! [`Kms`] holds every key of every account in memory (metadata, parsed
//! policy text, and ready-to-use material) and writes each change through the
//! [`Store`](ferrokms_store::Store) before acknowledging it. Operations are
//! plain methods named after the AWS operation (`Kms::create_key` is
//! CreateKey), taking the authenticated [`Caller`] and the typed request.
//! Nothing here knows HTTP.

pub mod api;
pub mod authz;
pub mod crypto;
mod error;
pub mod explain;
pub mod grants;
mod health;
pub mod ids;
pub mod keymat;
pub mod lint;
pub mod model;
mod ops;
pub mod replica;
mod state;
pub mod usage;

pub use error::KmsError;
pub use state::{Clock, Kms, SweepReport};

use ferrokms_types::{AccountId, Region};

/// Who is calling, as established by authentication.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    /// The region of the request (from the SigV4 credential scope).
    pub region: Region,
    /// The principal's ARN as AWS prints it in messages: the session ARN for
    /// an assumed role, `arn:aws:iam::ACCOUNT:root` for the root user.
    pub arn: String,
    /// Identity-side policies and global condition keys for authorization.
    pub identity: std::sync::Arc<authz::CallerIdentity>,
}

impl Caller {
    /// The account's root user, with no further context (tests, tools).
    pub fn root(account: AccountId, region: Region) -> Caller {
        Caller {
            arn: account.root_arn(region.partition()),
            account,
            region,
            identity: Default::default(),
        }
    }
}

/// The key policy CreateKey attaches when the request has none: one
/// statement that gives the owning account full access and so enables IAM
/// policies. Formatted the way GetKeyPolicy shows it on AWS.
pub fn default_key_policy(account: &AccountId, partition: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:{partition}:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}
