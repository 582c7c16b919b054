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
pub mod catalog;
pub mod crypto;
mod error;
pub mod explain;
pub mod given;
pub mod grants;
mod health;
pub mod ids;
pub mod keymat;
pub mod lint;
pub mod mlkem;
pub mod model;
mod ops;
pub mod replica;
pub mod reset;
mod state;
pub mod usage;
pub mod xks;

pub use error::KmsError;
pub use ops::seeded::{GivenMaterial, SeedKey, SeedOutcome};
pub use state::{Clock, Kms, SweepReport};

use ferrokms_types::AccountId;

/// Who is calling, as established by authentication: the one caller type
/// of every service (see `ferrokms_authz`).
pub use ferrokms_authz::Caller;

/// The key policy CreateKey attaches when the request has none: one
/// statement that gives the owning account full access and so enables IAM
/// policies. Formatted the way GetKeyPolicy shows it on AWS.
pub fn default_key_policy(account: &AccountId, partition: &str) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"arn:{partition}:iam::{account}:root\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}"
    )
}
