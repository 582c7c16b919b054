//! The keys an account analyzer looks at, read from the live KMS state as
//! the key's account's root user: the key ARNs of an account and Region,
//! and one key's policy, grants, tags and state ([`KeySnapshot`]), with a
//! fingerprint of all four so that a key is analysed again only when one
//! of them changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_iam::Directory;
use ferrokms_kms::api::{GetKeyPolicyRequest, ListKeysRequest};
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::{ParseOptions, Policy, PolicyKind};
use ferrokms_reach::{Grant, Grantee, KeyTarget, PolicySet, RolePolicySet};
use ferrokms_types::{AccountId, Region};
use serde_json::{json, Value};

use crate::keyset::{self, Known};

/// Pages of ListKeys read for one account and Region (1,000 keys a page).
const MAX_KEY_PAGES: usize = 100;

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// KMS refused or failed (the key went away between two reads, most
    /// likely).
    #[error("reading the key: {0}")]
    Kms(#[from] KmsError),
    /// A KMS answer did not convert (never expected).
    #[error("reading the key: {0}")]
    Shape(String),
}

/// One key as an analyzer sees it.
#[derive(Debug, Clone)]
pub struct KeySnapshot {
    /// The key ARN.
    pub arn: String,
    /// The key policy's text (`default`).
    pub policy: String,
    /// The key's grants.
    pub grants: Vec<Grant>,
    /// The condition keys the key decides (`kms:KeySpec`, tags as
    /// `aws:ResourceTag/...`).
    pub facts: Vec<(String, String)>,
    /// `KeyState` (Enabled, Disabled, PendingDeletion...).
    pub state: String,
    /// A hash of policy, grants, tags and state.
    pub fingerprint: String,
}

fn shape<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, LiveError> {
    serde_json::from_value(v).map_err(|e| LiveError::Shape(e.to_string()))
}

/// The key ARNs of `account` in `region`, sorted (at most
/// `MAX_KEY_PAGES` pages of 1,000).
pub fn key_arns(kms: &Kms, account: &AccountId, region: &Region) -> Result<Vec<String>, LiveError> {
    let root = Caller::root(account.clone(), region.clone());
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_KEY_PAGES {
        let req: ListKeysRequest = shape(json!({ "Limit": 1000, "Marker": marker }))?;
        let page = kms.list_keys(&root, req)?;
        out.extend(page.keys.into_iter().map(|k| k.key_arn));
        marker = page.next_marker;
        if marker.is_none() {
            break;
        }
    }
    out.sort();
    Ok(out)
}

/// The roles of `account` as an analyzer sees them: a snapshot each (ARN,
/// trust policy text, tags as `aws:ResourceTag/*` facts, no grants, no
/// state), sorted by ARN. IAM is global: every Region's analyzer sees them.
pub fn role_snapshots(directory: &Directory, account: &AccountId) -> Vec<KeySnapshot> {
    let as_root = ferrokms_iam::Caller::root(account.clone());
    let mut out: Vec<KeySnapshot> = directory
        .list_roles(&as_root, None)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let facts = r
                .tags
                .iter()
                .map(|t| (format!("aws:ResourceTag/{}", t.key), t.value.clone()))
                .collect();
            KeySnapshot::new(
                &r.arn(),
                r.trust.text.clone(),
                Vec::new(),
                facts,
                String::new(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.arn.cmp(&b.arn));
    out
}

/// The reach policy set of a role as `snap` has it (its trust policy, a
/// stored or a proposed one): only the role's account is known, its
/// principals with their identity-side policies.
pub fn role_policy_set(directory: &Directory, snap: &KeySnapshot) -> Result<RolePolicySet, String> {
    let policy = Policy::parse(&snap.policy, &ParseOptions::for_trust_policy())
        .map_err(|e| format!("the trust policy does not parse: {e}"))?;
    let mut set = RolePolicySet::new(&snap.arn, Arc::new(policy)).map_err(|e| e.to_string())?;
    set.facts = keyset::facts_context(&snap.facts);
    set.holders = keyset::holders(directory, &set.account, partition_of(&snap.arn));
    set.known_accounts = vec![set.account.clone()];
    Ok(set)
}

/// The partition of an ARN (`aws` when it does not say).
fn partition_of(arn: &str) -> &str {
    arn.split(':')
        .nth(1)
        .filter(|p| !p.is_empty())
        .unwrap_or("aws")
}

/// The key `arn` as it is now.
pub fn snapshot(kms: &Kms, arn: &str, region: &Region) -> Result<KeySnapshot, LiveError> {
    let target = KeyTarget::new(arn).map_err(|e| LiveError::Shape(e.to_string()))?;
    let root = Caller::root(target.account.clone(), region.clone());
    let (facts, state) = keyset::key_facts(kms, &root, arn)?;
    let policy: GetKeyPolicyRequest = shape(json!({ "KeyId": arn, "PolicyName": "default" }))?;
    let policy = kms.get_key_policy(&root, policy)?.policy;
    let grants = keyset::key_grants(kms, &root, arn)?;
    Ok(KeySnapshot::new(arn, policy, grants, facts, state))
}

impl From<keyset::KeySetError> for LiveError {
    fn from(e: keyset::KeySetError) -> Self {
        match e {
            keyset::KeySetError::Kms(e) => LiveError::Kms(e),
            other => LiveError::Shape(other.to_string()),
        }
    }
}

impl KeySnapshot {
    /// A snapshot of the given parts (an access preview's proposed key),
    /// with its fingerprint.
    pub fn new(
        arn: &str,
        policy: String,
        grants: Vec<Grant>,
        mut facts: Vec<(String, String)>,
        state: String,
    ) -> Self {
        facts.sort();
        let grants_json: Vec<Value> = grants.iter().map(grant_json).collect();
        let text = json!({
            "policy": policy,
            "grants": grants_json,
            "facts": facts,
            "state": state,
        })
        .to_string();
        KeySnapshot {
            arn: arn.to_string(),
            policy,
            grants,
            facts,
            state,
            fingerprint: crate::findings::digest_hex(text.as_bytes()),
        }
    }

    /// The reach policy set of the key: its policy, grants and facts; only
    /// the key's account is known (the zone of trust of an account
    /// analyzer), so every other account's principals are taken to hold an
    /// allow-everything identity policy.
    pub fn policy_set(&self) -> Result<PolicySet, String> {
        let mut key = KeyTarget::new(&self.arn).map_err(|e| e.to_string())?;
        key.facts = keyset::facts_context(&self.facts);
        let policy = Policy::parse(
            &self.policy,
            &ParseOptions::for_kind(PolicyKind::ResourceBased),
        )
        .map_err(|e| format!("the key policy does not parse: {e}"))?;
        let mut set = PolicySet::new(key, Arc::new(policy));
        set.grants.clone_from(&self.grants);
        Ok(set)
    }
}

/// The policy set of a key as `snap` has it, for an answer over the API:
/// an existing key's through the analyzer's one builder
/// ([`keyset::key_policy_set_with`], with [`Known::KeyAccount`]: no other
/// account's IAM policies shape the answer) under the snapshot's policy,
/// with the snapshot's grants (a preview's proposed ones, or the key's);
/// a key that does not exist yet from the snapshot alone.
pub fn policy_set(
    directory: &Directory,
    snap: &KeySnapshot,
    exists: bool,
) -> Result<PolicySet, String> {
    let policy = Policy::parse(
        &snap.policy,
        &ParseOptions::for_kind(PolicyKind::ResourceBased),
    )
    .map_err(|e| format!("the key policy does not parse: {e}"))?;
    if !exists {
        return snap.policy_set();
    }
    keyset::policy_set_of(
        directory,
        &snap.arn,
        &snap.facts,
        snap.grants.clone(),
        Arc::new(policy),
        Known::KeyAccount,
    )
    .map_err(|e| format!("the key cannot be read: {e}"))
}

fn grant_json(g: &Grant) -> Value {
    let grantee = match &g.grantee {
        Grantee::Aws(p) => json!({ "aws": p }),
        Grantee::Service(s) => json!({ "service": s }),
    };
    let empty = BTreeMap::new();
    json!({
        "id": g.id,
        "grantee": grantee,
        "operations": g.operations,
        "subset": g.encryption_context_subset.as_ref().unwrap_or(&empty),
        "equals": g.encryption_context_equals.as_ref().unwrap_or(&empty),
        "has_subset": g.encryption_context_subset.is_some(),
        "has_equals": g.encryption_context_equals.is_some(),
        "source_arn": g.source_arn,
    })
}
