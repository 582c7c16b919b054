//! `ferrokms key access KEY --exact`: every (principal class, path,
//! actions) that can use the key, from the whole-space analysis of
//! `crates/reach` (docs/analysis.md): proven complete for what the encoding
//! covers, "unknown" with the reason otherwise.

use std::sync::Arc;

use ferrokms_analyzer::keyset::{key_policy_set_with, Known};
use ferrokms_policy::Policy;
use ferrokms_reach::{access_listing, ReachError};
use serde_json::{json, Value};

use crate::analyze::Live;

/// Prints the exact listing; `Ok(false)` when the answer is "unknown".
pub(crate) fn exact_access(
    live: &Live,
    key_arn: &str,
    key_policy: Arc<Policy>,
    as_json: bool,
) -> anyhow::Result<bool> {
    // The operator reads the whole data dir: every account's principals
    // are known.
    let set = key_policy_set_with(
        &live.kms,
        &live.directory,
        key_arn,
        key_policy,
        Known::AllAccounts,
    )?;
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
