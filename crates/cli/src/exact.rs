//! `ferrokms key access KEY --exact`: every (principal class, path,
//! actions) that can use the key, from the whole-space analysis of
//! `crates/reach` (docs/analysis.md): proven complete for what the encoding
//! covers, "unknown" with the reason otherwise.

use std::sync::Arc;

use anyhow::Context as _;
use ferrokms_kms::Caller;
use ferrokms_policy::Policy;
use ferrokms_reach::{access_listing, Grant, Grantee, Holder, KeyTarget, PolicySet, ReachError};
use serde_json::{json, Value};

use crate::analyze::{principals_for, Live};

/// The policy set of a key as the data dir holds it: the key's facts,
/// policy and grants, and the identity-side policies of every user and
/// role of the accounts the server knows.
fn policy_set(live: &Live, key_arn: &str, key_policy: Arc<Policy>) -> anyhow::Result<PolicySet> {
    let mut key = KeyTarget::new(key_arn)?;
    let root = Caller::root(key.account.clone(), live.region.clone());
    let meta = live
        .kms
        .describe_key(&root, serde_json::from_value(json!({ "KeyId": key_arn }))?)
        .context("reading the key's metadata as its account's root user")?;
    let meta = serde_json::to_value(&meta.key_metadata)?;
    for (name, field) in [
        ("kms:KeySpec", "KeySpec"),
        ("kms:CustomerMasterKeySpec", "KeySpec"),
        ("kms:KeyUsage", "KeyUsage"),
        ("kms:CustomerMasterKeyUsage", "KeyUsage"),
        ("kms:KeyOrigin", "Origin"),
    ] {
        if let Some(v) = meta[field].as_str() {
            key.facts.insert(name, v);
        }
    }
    if let Some(b) = meta["MultiRegion"].as_bool() {
        key.facts.insert("kms:MultiRegion", b);
    }
    let tags = live
        .kms
        .list_resource_tags(&root, serde_json::from_value(json!({ "KeyId": key_arn }))?)
        .context("reading the key's tags")?;
    for t in tags.tags {
        key.facts
            .insert(&format!("aws:ResourceTag/{}", t.key), t.value.as_str());
    }
    let mut set = PolicySet::new(key, key_policy.clone());
    let mut marker: Option<String> = None;
    // Bounded: 50,000 grants per key at most, 100 a page.
    for _ in 0..1_000 {
        let page = live
            .kms
            .list_grants(
                &root,
                serde_json::from_value(json!({ "KeyId": key_arn, "Marker": marker }))?,
            )
            .context("listing the key's grants")?;
        for g in page.grants {
            let grantee = match (g.grantee_principal, g.grantee_service_principal) {
                (Some(p), _) => Grantee::Aws(p),
                (None, Some(s)) => Grantee::Service(s),
                (None, None) => continue,
            };
            let c = g.constraints.unwrap_or_default();
            set.grants.push(Grant {
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
    let partition = live.region.partition();
    for (arn, kind, principal) in principals_for(live, &key_policy) {
        if kind != "user" && kind != "role" {
            continue;
        }
        let profile = live.directory.caller_profile(&principal, partition, None);
        set.holders.push(Holder {
            arn,
            policies: profile
                .policies
                .iter()
                .map(|p| (p.kind, p.policy.clone()))
                .collect(),
        });
    }
    set.known_accounts = live
        .directory
        .accounts()
        .into_iter()
        .map(|a| a.id)
        .collect();
    Ok(set)
}

/// Prints the exact listing; `Ok(false)` when the answer is "unknown".
pub(crate) fn exact_access(
    live: &Live,
    key_arn: &str,
    key_policy: Arc<Policy>,
    as_json: bool,
) -> anyhow::Result<bool> {
    let set = policy_set(live, key_arn, key_policy)?;
    let listing = match access_listing(&set) {
        Ok(l) => l,
        Err(ReachError::Unknown(why)) => {
            if as_json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"key": key_arn, "exact": false, "unknown": why})
                    )?
                );
            } else {
                outln!("key {key_arn}");
                outln!("unknown: {why}");
            }
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    if as_json {
        let entries: Vec<Value> = listing
            .iter()
            .map(|e| {
                json!({
                    "principal": e.principal_class,
                    "example": e.example_principal,
                    "external": e.external,
                    "path": e.path.to_string(),
                    "conditional": e.conditional,
                    "actions": e.actions,
                    "exampleContext": e.example_context.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"key": key_arn, "exact": true, "access": entries})
            )?
        );
        return Ok(true);
    }
    outln!("key {key_arn} (exact: every class of request decided by the server's evaluator)");
    if listing.is_empty() {
        outln!("no principal can use the key");
    }
    let mut last = "";
    for e in &listing {
        if e.principal_class != last {
            let ext = if e.external { " (external)" } else { "" };
            outln!("{}{ext}", e.principal_class);
            last = &e.principal_class;
        }
        let cond = if e.conditional { "conditional, " } else { "" };
        outln!("  {cond}{}: {}", e.path, e.actions.join(", "));
        if e.conditional {
            let ctx: Vec<String> = e
                .example_context
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let ctx = if ctx.is_empty() {
                "(no condition keys)".to_string()
            } else {
                ctx.join(" ")
            };
            outln!("    e.g. {} with {ctx}", e.example_principal);
        }
    }
    Ok(true)
}
