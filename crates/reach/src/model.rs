//! What an analysis is about: one key, its policy, its grants, and the
//! identity-side policies of the principals the operator knows.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_policy::{Context, Policy, PolicyKind};
use ferrokms_types::{AccountId, Arn};

use crate::ReachError;

/// Every KMS action that acts on a key (the operation catalog's rows with
/// a key resource, `crates/kms/src/catalog.rs`, plus `kms:ReEncryptTo`,
/// the second action of ReEncrypt): its name, whether it may reach a key
/// of another account, and whether a grant can allow it.
pub const KEY_ACTIONS: &[(&str, bool, bool)] = &[
    ("kms:CancelKeyDeletion", false, false),
    ("kms:CreateAlias", false, false),
    ("kms:CreateGrant", true, true),
    ("kms:Decapsulate", true, true),
    ("kms:Decrypt", true, true),
    ("kms:DeleteAlias", false, false),
    ("kms:DeleteImportedKeyMaterial", false, false),
    ("kms:DeriveSharedSecret", true, true),
    ("kms:DescribeKey", true, true),
    ("kms:DisableKey", false, false),
    ("kms:DisableKeyRotation", false, false),
    ("kms:EnableKey", false, false),
    ("kms:EnableKeyRotation", false, false),
    ("kms:Encapsulate", true, true),
    ("kms:Encrypt", true, true),
    ("kms:GenerateDataKey", true, true),
    ("kms:GenerateDataKeyPair", true, true),
    ("kms:GenerateDataKeyPairWithoutPlaintext", true, true),
    ("kms:GenerateDataKeyWithoutPlaintext", true, true),
    ("kms:GenerateMac", true, true),
    ("kms:GetKeyLastUsage", false, false),
    ("kms:GetKeyPolicy", false, false),
    ("kms:GetKeyRotationStatus", true, false),
    ("kms:GetParametersForImport", false, false),
    ("kms:GetPublicKey", true, true),
    ("kms:ImportKeyMaterial", false, false),
    ("kms:ListGrants", true, false),
    ("kms:ListKeyPolicies", false, false),
    ("kms:ListKeyRotations", false, false),
    ("kms:ListResourceTags", false, false),
    ("kms:PutKeyPolicy", false, false),
    ("kms:ReEncryptFrom", true, true),
    ("kms:ReEncryptTo", true, true),
    ("kms:ReplicateKey", false, false),
    ("kms:RetireGrant", true, true),
    ("kms:RevokeGrant", true, false),
    ("kms:RotateKeyOnDemand", false, false),
    ("kms:ScheduleKeyDeletion", false, false),
    ("kms:Sign", true, true),
    ("kms:TagResource", false, false),
    ("kms:UntagResource", false, false),
    ("kms:UpdateAlias", false, false),
    ("kms:UpdateKeyDescription", false, false),
    ("kms:UpdatePrimaryRegion", false, false),
    ("kms:Verify", true, true),
    ("kms:VerifyMac", true, true),
];

/// Whether `action` (`kms:Decrypt`) may reach another account's key, and
/// whether a grant can allow it; `None` for an action that is not a key
/// action.
pub fn key_action(action: &str) -> Option<(bool, bool)> {
    KEY_ACTIONS
        .iter()
        .find(|(a, _, _)| a.eq_ignore_ascii_case(action))
        .map(|(_, c, g)| (*c, *g))
}

/// The key the policies are about.
#[derive(Debug, Clone)]
pub struct KeyTarget {
    /// The key ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID`).
    pub arn: String,
    /// The key's account.
    pub account: AccountId,
    /// The key's region (`aws:RequestedRegion` of every request for it).
    pub region: String,
    /// The condition keys the key itself decides (`kms:KeySpec`,
    /// `kms:KeyUsage`, `aws:ResourceTag/...`, `kms:ResourceAliases`...):
    /// fixed, not enumerated. A key of that kind not given is absent.
    pub facts: Context,
}

impl KeyTarget {
    /// The key with ARN `arn`, without facts.
    pub fn new(arn: &str) -> Result<Self, ReachError> {
        let parsed =
            Arn::parse(arn).map_err(|_| ReachError::Input(format!("not a key ARN: {arn}")))?;
        let account = parsed
            .account_id()
            .ok_or_else(|| ReachError::Input(format!("the key ARN has no account: {arn}")))?;
        Ok(KeyTarget {
            arn: arn.to_string(),
            account,
            region: parsed.region().to_string(),
            facts: Context::new(),
        })
    }
}

/// Whom a grant names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grantee {
    /// An account (12 digits or its root ARN) or an IAM/STS principal ARN.
    Aws(String),
    /// An AWS service principal (`dynamodb.amazonaws.com`).
    Service(String),
}

/// A grant of the key, with its constraints (as `crates/kms/src/grants`
/// holds them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// How findings name the grant (its id).
    pub id: String,
    /// The grantee.
    pub grantee: Grantee,
    /// The operations, without `kms:` (`Decrypt`).
    pub operations: Vec<String>,
    /// `EncryptionContextSubset`.
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    /// `EncryptionContextEquals`.
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// `SourceArn`: the request's `aws:SourceArn` must be this ARN.
    pub source_arn: Option<String>,
}

/// A principal whose identity-side policies the analysis knows.
#[derive(Debug, Clone)]
pub struct Holder {
    /// A user ARN, a role ARN (its sessions hold the policies), or an
    /// account's root ARN.
    pub arn: String,
    /// Its identity-based policies, permissions boundary and session
    /// policies (the kinds say which).
    pub policies: Vec<(PolicyKind, Arc<Policy>)>,
}

/// Everything that decides who may use one key.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// The key.
    pub key: KeyTarget,
    /// Its key policy.
    pub key_policy: Arc<Policy>,
    /// Its grants.
    pub grants: Vec<Grant>,
    /// The principals with identity-side policies, in the accounts the
    /// operator knows.
    pub holders: Vec<Holder>,
    /// Accounts whose principals are all known: a principal of one of them
    /// that is not a holder has no identity-side policy. The key's account
    /// is always one. A principal of any other account is *external*: its
    /// identity policies are its own account's business, so the analysis
    /// takes them to allow everything (the most access they can give).
    pub known_accounts: Vec<AccountId>,
}

impl PolicySet {
    /// A key with its policy and nothing else.
    pub fn new(key: KeyTarget, key_policy: Arc<Policy>) -> Self {
        let known_accounts = vec![key.account.clone()];
        PolicySet {
            key,
            key_policy,
            grants: Vec::new(),
            holders: Vec::new(),
            known_accounts,
        }
    }

    /// Whether the principals of `account` are all known.
    pub fn knows(&self, account: &AccountId) -> bool {
        *account == self.key.account || self.known_accounts.contains(account)
    }
}
