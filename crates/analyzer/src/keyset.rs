//! The policy set of one key as the live data holds it — the key's facts,
//! policy and grants, and the identity-side policies of the principals of
//! the accounts whose principals count as known — for the whole-space
//! analysis of `ferrokms_reach`. One builder for every reader: the CLI's
//! `key access --exact` and `policy diff`, Access Analyzer's findings and
//! previews, and the console's access map.
//!
//! Which accounts are known is the caller's choice, and a security one:
//! an answer given over the API to one account must not depend on another
//! account's IAM policies (it would reveal them), so the server asks with
//! [`Known::KeyAccount`] — every other account's principals are then taken
//! to hold an allow-everything identity policy, the most access they can
//! get, as AWS's zone of trust does. The operator's CLI, which reads the
//! whole data dir anyway, asks with [`Known::AllAccounts`].

use std::sync::Arc;

use ferrokms_iam::{Directory, Principal};
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::{Context, Policy};
use ferrokms_reach::{Grant, Grantee, Holder, KeyTarget, PolicySet, ReachError};
use ferrokms_types::{AccountId, Region};

/// Whose identity-side policies the analysis reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// The key's account only (answers given over the API).
    KeyAccount,
    /// Every account the server holds (the operator's CLI).
    AllAccounts,
}

/// Why the policy set could not be built.
#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    /// The key cannot be read (no such key, the store failed).
    #[error("{0}")]
    Kms(#[from] KmsError),
    /// The key ARN is not one.
    #[error("{0}")]
    Reach(#[from] ReachError),
    /// A stored value does not read back as the model says.
    #[error("stored key data is corrupt: {0}")]
    Corrupt(String),
}

/// Grants per key at most (KMS's own limit is 50,000), read 100 a page.
const MAX_GRANT_PAGES: usize = 500;

/// The key `key` (an id, ARN or alias of a key in `account` and `region`)
/// with its policy as stored.
pub fn key_policy_set(
    kms: &Kms,
    directory: &Directory,
    account: &AccountId,
    region: &Region,
    key: &str,
    known: Known,
) -> Result<PolicySet, KeySetError> {
    let root = Caller::root(account.clone(), region.clone());
    let (key_arn, key_policy) = kms.key_policy_snapshot(&root, key)?;
    key_policy_set_with(kms, directory, &key_arn, key_policy, known)
}

/// [`key_policy_set`] for the key `key_arn` under `key_policy` (the stored
/// one, or a proposed one: a preview, a diff). The key must exist.
pub fn key_policy_set_with(
    kms: &Kms,
    directory: &Directory,
    key_arn: &str,
    key_policy: Arc<Policy>,
    known: Known,
) -> Result<PolicySet, KeySetError> {
    let target = KeyTarget::new(key_arn)?;
    let region = Region::parse(&target.region)
        .map_err(|e| KeySetError::Corrupt(format!("the key ARN's region: {e}")))?;
    let root = Caller::root(target.account.clone(), region);
    let (facts, _state) = key_facts(kms, &root, key_arn)?;
    let grants = key_grants(kms, &root, key_arn)?;
    policy_set_of(directory, key_arn, &facts, grants, key_policy, known)
}

/// The policy set of the key `key_arn` with the given facts, grants and
/// policy (read before, or proposed), and the holders of the known
/// accounts. Reads no key.
pub fn policy_set_of(
    directory: &Directory,
    key_arn: &str,
    facts: &[(String, String)],
    grants: Vec<Grant>,
    key_policy: Arc<Policy>,
    known: Known,
) -> Result<PolicySet, KeySetError> {
    let mut key = KeyTarget::new(key_arn)?;
    key.facts = facts_context(facts);
    let partition = Region::parse(&key.region)
        .map_err(|e| KeySetError::Corrupt(format!("the key ARN's region: {e}")))?
        .partition();
    let mut set = PolicySet::new(key, key_policy);
    set.grants = grants;
    let accounts: Vec<AccountId> = match known {
        Known::KeyAccount => vec![set.key.account.clone()],
        // The key's account first: a `--dev` server makes accounts on the
        // fly, and those are not in the directory's list.
        Known::AllAccounts => {
            let mut all = vec![set.key.account.clone()];
            for a in directory.accounts() {
                if !all.contains(&a.id) {
                    all.push(a.id);
                }
            }
            all
        }
    };
    for account in &accounts {
        set.holders.extend(holders(directory, account, partition));
    }
    set.known_accounts = accounts;
    Ok(set)
}

/// The facts of [`key_facts`] as the condition keys of the key's requests
/// (`kms:MultiRegion` a boolean, the others strings).
pub fn facts_context(facts: &[(String, String)]) -> Context {
    let mut context = Context::new();
    for (k, v) in facts {
        if k == "kms:MultiRegion" {
            context.insert(k, v == "true");
        } else {
            context.insert(k, v.as_str());
        }
    }
    context
}

/// The condition keys the key itself decides — its spec, usage, origin,
/// Region scope and tags — as (key, value) pairs, and its state.
pub fn key_facts(
    kms: &Kms,
    root: &Caller,
    key_arn: &str,
) -> Result<(Vec<(String, String)>, String), KeySetError> {
    let meta = kms.describe_key(root, key_input(key_arn)?)?;
    let meta = serde_json::to_value(&meta.key_metadata)
        .map_err(|e| KeySetError::Corrupt(e.to_string()))?;
    let mut facts = Vec::new();
    for (name, field) in [
        ("kms:KeySpec", "KeySpec"),
        ("kms:CustomerMasterKeySpec", "KeySpec"),
        ("kms:KeyUsage", "KeyUsage"),
        ("kms:CustomerMasterKeyUsage", "KeyUsage"),
        ("kms:KeyOrigin", "Origin"),
    ] {
        if let Some(v) = meta[field].as_str() {
            facts.push((name.to_string(), v.to_string()));
        }
    }
    if let Some(b) = meta["MultiRegion"].as_bool() {
        facts.push(("kms:MultiRegion".to_string(), b.to_string()));
    }
    let state = meta["KeyState"].as_str().unwrap_or_default().to_string();
    // At most 50 tags a key: one page.
    let tags = kms.list_resource_tags(root, key_input(key_arn)?)?;
    for t in tags.tags {
        facts.push((format!("aws:ResourceTag/{}", t.key), t.value));
    }
    Ok((facts, state))
}

/// A KMS request naming the key `arn` (and nothing else).
fn key_input<T: serde::de::DeserializeOwned>(arn: &str) -> Result<T, KeySetError> {
    serde_json::from_value(serde_json::json!({ "KeyId": arn }))
        .map_err(|e| KeySetError::Corrupt(e.to_string()))
}

/// Every grant of the key, with its constraints, sorted by id.
pub fn key_grants(kms: &Kms, root: &Caller, key_arn: &str) -> Result<Vec<Grant>, KeySetError> {
    let mut grants = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_GRANT_PAGES {
        let input = serde_json::json!({ "KeyId": key_arn, "Limit": 100, "Marker": marker });
        let input =
            serde_json::from_value(input).map_err(|e| KeySetError::Corrupt(e.to_string()))?;
        let page = kms.list_grants(root, input)?;
        for g in page.grants {
            let grantee = match (g.grantee_principal, g.grantee_service_principal) {
                (Some(p), _) => Grantee::Aws(p),
                (None, Some(s)) => Grantee::Service(s),
                (None, None) => continue,
            };
            let c = g.constraints.unwrap_or_default();
            grants.push(Grant {
                id: g.grant_id,
                grantee,
                operations: g.operations,
                encryption_context_subset: c.encryption_context_subset,
                encryption_context_equals: c.encryption_context_equals,
                source_arn: c.source_arn,
            });
        }
        marker = page.next_marker;
        if marker.is_none() {
            break;
        }
    }
    grants.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(grants)
}

/// The users and roles of `account` with their identity-based policies,
/// permissions boundaries (a role's as its sessions hold them, without
/// session policies).
pub fn holders(directory: &Directory, account: &AccountId, partition: &str) -> Vec<Holder> {
    let as_root = ferrokms_iam::Caller::root(account.clone());
    let mut out = Vec::new();
    let mut principals: Vec<(String, Principal)> = Vec::new();
    for u in directory.list_users(&as_root, None).unwrap_or_default() {
        principals.push((
            u.arn(),
            Principal::User {
                account: u.account.clone(),
                name: u.name.clone(),
                path: u.path.clone(),
                id: u.id.clone(),
            },
        ));
    }
    for r in directory.list_roles(&as_root, None).unwrap_or_default() {
        principals.push((
            r.arn(),
            Principal::AssumedRole {
                account: r.account.clone(),
                role_name: r.name.clone(),
                role_path: r.path.clone(),
                role_id: r.id.clone(),
                session_name: "analysis".into(),
            },
        ));
    }
    principals.sort_by(|a, b| a.0.cmp(&b.0));
    for (arn, principal) in principals {
        let profile = directory.caller_profile(&principal, partition, None);
        out.push(Holder {
            arn,
            policies: profile
                .policies
                .iter()
                .map(|p| (p.kind, p.policy.clone()))
                .collect(),
        });
    }
    out
}
