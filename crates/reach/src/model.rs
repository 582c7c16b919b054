//! What an analysis is about: one key, its policy, its grants, and the
//! identity-side policies of the principals the operator knows; or one IAM
//! role, its trust policy, and the same identity-side policies.

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

/// The actions a role's trust policy decides (`crates/iam/src/sts.rs`
/// asks `sts:AssumeRole`, and `sts:TagSession` / `sts:SetSourceIdentity`
/// when the request passes tags or a source identity; the web-identity
/// and SAML actions are AWS's, asked here of federated identities).
pub const ROLE_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithWebIdentity",
    "sts:SetSourceIdentity",
    "sts:TagSession",
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

/// What a policy set is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    /// A KMS key: [`KEY_ACTIONS`], its key policy, its grants.
    Key,
    /// An IAM role: [`ROLE_ACTIONS`], its trust policy, no grants.
    Role,
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
    /// A key's set, or a role's as [`RolePolicySet::as_policy_set`]
    /// casts it.
    pub(crate) resource: Resource,
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
            resource: Resource::Key,
        }
    }

    /// Whether `action` may reach a resource of another account, and
    /// whether a grant can allow it; `None` for an action that is not one
    /// of the resource's.
    pub(crate) fn action_flags(&self, action: &str) -> Option<(bool, bool)> {
        match self.resource {
            Resource::Key => key_action(action),
            // AssumeRole always may cross accounts (the trust policy and
            // the caller's identity policies decide); roles have no grants.
            Resource::Role => ROLE_ACTIONS
                .iter()
                .any(|a| a.eq_ignore_ascii_case(action))
                .then_some((true, false)),
        }
    }

    /// The actions of the resource.
    pub(crate) fn actions(&self) -> Vec<&'static str> {
        match self.resource {
            Resource::Key => KEY_ACTIONS.iter().map(|(a, _, _)| *a).collect(),
            Resource::Role => ROLE_ACTIONS.to_vec(),
        }
    }

    /// Whether the principals of `account` are all known.
    pub fn knows(&self, account: &AccountId) -> bool {
        *account == self.key.account || self.known_accounts.contains(account)
    }
}

/// Everything that decides who may assume one IAM role: its trust policy
/// (the role's resource policy) and the identity-side policies of the
/// principals the operator knows.
#[derive(Debug, Clone)]
pub struct RolePolicySet {
    /// The role's ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
    pub role_arn: String,
    /// The role's account.
    pub account: AccountId,
    /// The condition keys the role itself decides (`aws:ResourceTag/*`,
    /// its tags, as `crates/iam/src/sts.rs` gives them): fixed, not
    /// enumerated.
    pub facts: Context,
    /// Its trust policy.
    pub trust_policy: Arc<Policy>,
    /// The principals with identity-side policies, in the accounts the
    /// operator knows (as [`PolicySet::holders`]).
    pub holders: Vec<Holder>,
    /// Accounts whose principals are all known (as
    /// [`PolicySet::known_accounts`]); the role's account is always one.
    pub known_accounts: Vec<AccountId>,
}

impl RolePolicySet {
    /// The role `role_arn` with its trust policy and nothing else.
    pub fn new(role_arn: &str, trust_policy: Arc<Policy>) -> Result<Self, ReachError> {
        let parsed = Arn::parse(role_arn)
            .map_err(|_| ReachError::Input(format!("not a role ARN: {role_arn}")))?;
        let account = parsed
            .account_id()
            .filter(|_| parsed.service() == "iam" && parsed.resource().starts_with("role/"))
            .ok_or_else(|| ReachError::Input(format!("not a role ARN: {role_arn}")))?;
        Ok(RolePolicySet {
            role_arn: role_arn.to_string(),
            known_accounts: vec![account.clone()],
            account,
            facts: Context::new(),
            trust_policy,
            holders: Vec::new(),
        })
    }

    /// The set as the engine and [`crate::concrete::allows`] take it: the
    /// role in the place of the key (IAM is global: the region is
    /// `us-east-1`, which is also the value of `aws:RequestedRegion`), its
    /// trust policy as the resource policy that must admit the caller, no
    /// grants. The key questions asked of it cover [`ROLE_ACTIONS`] in
    /// place of the key actions; the role functions
    /// ([`crate::role_external_access`]...) are the API.
    pub fn as_policy_set(&self) -> PolicySet {
        PolicySet {
            key: KeyTarget {
                arn: self.role_arn.clone(),
                account: self.account.clone(),
                region: ROLE_REGION.to_string(),
                facts: self.facts.clone(),
            },
            key_policy: Arc::clone(&self.trust_policy),
            grants: Vec::new(),
            holders: self.holders.clone(),
            known_accounts: self.known_accounts.clone(),
            resource: Resource::Role,
        }
    }
}

/// The region a role's requests are asked in.
pub(crate) const ROLE_REGION: &str = "us-east-1";
