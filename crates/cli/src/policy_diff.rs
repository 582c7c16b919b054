//! `ferrokms policy diff OLD NEW`: the exact access a policy change adds
//! and removes, from `ferrokms_reach::access_diff` (docs/analysis.md,
//! "policy diff").
//!
//! Exit status: 0 when the change adds no access (proven), 1 when it adds
//! some (each addition with a witness request), 2 when the answer is
//! unknown (a construct outside the encoding) or the input is unusable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Args;
use ferrokms_analyzer::keyset::{key_policy_set_with, Known};
use ferrokms_kms::Caller;
use ferrokms_policy::{ParseOptions, Policy, PolicyKind};
use ferrokms_reach::{access_diff, AccessDiff, Change, DiffEntry, Holder, KeyTarget, PolicySet};
use ferrokms_types::{AccountId, Arn};
use serde_json::{json, Value};

use crate::analyze::{open_live, DataArgs};

/// The key a diff is about when neither `--key` nor `--key-arn` is given:
/// a key of the default account (`setup::DEFAULT_ACCOUNT`) in us-east-1.
pub const DEFAULT_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000";

/// The user that holds an identity policy under diff when `--principal`
/// is not given (in the account of the key).
const DIFF_USER: &str = "policy-diff";

/// Keys an identity-policy diff asks about at most (the key ARNs its
/// policies name, and one for every other key).
const MAX_KEYS: usize = 20;

#[derive(Args)]
pub struct DiffArgs {
    /// The policy before the change (a JSON file).
    old: PathBuf,
    /// The policy after the change (a JSON file).
    new: PathBuf,
    /// key: OLD and NEW are key policies. identity: they are IAM identity
    /// policies of one principal (--principal), checked under the key's
    /// policy (with --key) or under a key policy that delegates to the
    /// key's and the principal's accounts, as Access Analyzer's
    /// CheckNoNewAccess does.
    #[arg(long, default_value = "key")]
    kind: String,
    /// A key of the data dir (id, ARN, alias name or alias ARN): its
    /// grants, tags and the identity policies of the users and roles the
    /// data dir holds are part of the analysis.
    #[arg(long, conflicts_with = "key_arn")]
    key: Option<String>,
    /// Without --key: the ARN of the key the policies are about, a bare key
    /// (no grants, no tags, no identity policies but the one under diff).
    /// Default: arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000;
    /// with --kind identity and no --key-arn, every key ARN the two
    /// policies name, and that default key (in the principal's account)
    /// for every other key.
    #[arg(long)]
    key_arn: Option<String>,
    /// With --kind identity: the user or role (ARN) that holds the policy,
    /// as its only identity policy. Default: the user policy-diff of the
    /// key's account.
    #[arg(long)]
    principal: Option<String>,
    #[command(flatten)]
    data: DataArgs,
    /// The diff as JSON.
    #[arg(long)]
    json: bool,
}

/// The policies' kind.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Key,
    Identity,
}

/// Runs the command; the exit status.
pub fn diff_cmd(args: &DiffArgs) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferrokms: {}", crate::error_line(&e));
            2
        }
    }
}

fn read_policy(path: &Path, kind: PolicyKind) -> anyhow::Result<Arc<Policy>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    Policy::parse_bytes(&bytes, &ParseOptions::for_kind(kind))
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// One key's answer.
struct KeyDiff {
    key: String,
    outcome: Result<AccessDiff, String>,
}

fn run(args: &DiffArgs) -> anyhow::Result<i32> {
    let kind = match args.kind.as_str() {
        "key" => Kind::Key,
        "identity" => Kind::Identity,
        other => bail!("--kind must be key or identity, not '{other}'"),
    };
    if kind == Kind::Key && args.principal.is_some() {
        bail!("--principal goes with --kind identity");
    }
    let policy_kind = match kind {
        Kind::Key => PolicyKind::ResourceBased,
        Kind::Identity => PolicyKind::IdentityBased,
    };
    let old = read_policy(&args.old, policy_kind)?;
    let new = read_policy(&args.new, policy_kind)?;
    let pairs = match &args.key {
        Some(key) => live_sets(args, key, kind, &old, &new)?,
        None => bare_sets(args, kind, &old, &new)?,
    };
    let results: Vec<KeyDiff> = pairs
        .iter()
        .map(|(o, n)| KeyDiff {
            key: n.key.arn.clone(),
            outcome: access_diff(o, n).map_err(|e| e.to_string()),
        })
        .collect();
    let added = results
        .iter()
        .any(|r| r.outcome.as_ref().is_ok_and(AccessDiff::adds_access));
    let unknown = results.iter().any(|r| r.outcome.is_err());
    if args.json {
        print_json(&results, added, unknown)?;
    } else {
        print_text(&results, added, unknown);
    }
    Ok(if added {
        1
    } else if unknown {
        2
    } else {
        0
    })
}

/// The principal that holds an identity policy under diff.
fn holder_arn(args: &DiffArgs, key_account: &AccountId) -> anyhow::Result<(String, AccountId)> {
    let Some(p) = &args.principal else {
        return Ok((
            key_account.iam_arn(&format!("user/{DIFF_USER}")),
            key_account.clone(),
        ));
    };
    let arn = Arn::parse(p).map_err(|_| anyhow::anyhow!("--principal '{p}' is not an ARN"))?;
    let account = arn
        .account_id()
        .with_context(|| format!("--principal '{p}' has no account"))?;
    let res = arn.resource();
    if arn.service() != "iam" || !(res.starts_with("user/") || res.starts_with("role/")) {
        bail!("--principal must be the ARN of an IAM user or role, not '{p}'");
    }
    Ok((p.clone(), account))
}

/// A key policy that delegates to the accounts' identity policies.
fn delegating_policy(accounts: &[&AccountId]) -> anyhow::Result<Arc<Policy>> {
    let mut roots: Vec<String> = Vec::new();
    for a in accounts {
        let r = a.root_arn("aws");
        if !roots.contains(&r) {
            roots.push(r);
        }
    }
    let text = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": roots}, "Action": "kms:*", "Resource": "*"}]})
    .to_string();
    Policy::parse(&text, &ParseOptions::for_kind(PolicyKind::ResourceBased))
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("the delegating key policy: {e}"))
}

/// `set` with `holder` holding `policy` as its only identity policy.
fn holding(set: &PolicySet, holder: &str, account: &AccountId, policy: &Arc<Policy>) -> PolicySet {
    let mut s = set.clone();
    s.holders.retain(|h| h.arn != holder);
    s.holders.push(Holder {
        arn: holder.to_string(),
        policies: vec![(PolicyKind::IdentityBased, Arc::clone(policy))],
    });
    if !s.knows(account) {
        s.known_accounts.push(account.clone());
    }
    s
}

/// The key ARNs an identity policy names literally (no wildcard).
fn named_keys(policy: &Policy, out: &mut Vec<String>) {
    for st in policy.statements() {
        let Some(r) = st.resource() else { continue };
        if r.negated() {
            continue;
        }
        for p in r.patterns() {
            let t = p.as_str();
            let literal = !t.contains(['*', '?', '$']);
            if literal
                && Arn::parse(t)
                    .is_ok_and(|a| a.service() == "kms" && a.resource().starts_with("key/"))
                && !out.iter().any(|k| k == t)
            {
                out.push(t.to_string());
            }
        }
    }
}

fn bare_sets(
    args: &DiffArgs,
    kind: Kind,
    old: &Arc<Policy>,
    new: &Arc<Policy>,
) -> anyhow::Result<Vec<(PolicySet, PolicySet)>> {
    if kind == Kind::Key {
        let key = KeyTarget::new(args.key_arn.as_deref().unwrap_or(DEFAULT_KEY_ARN))?;
        return Ok(vec![(
            PolicySet::new(key.clone(), Arc::clone(old)),
            PolicySet::new(key, Arc::clone(new)),
        )]);
    }
    let default_account = KeyTarget::new(DEFAULT_KEY_ARN)?.account;
    let (holder, account) = holder_arn(args, &default_account)?;
    let keys = match &args.key_arn {
        Some(k) => vec![k.clone()],
        None => {
            let mut keys = Vec::new();
            named_keys(old, &mut keys);
            named_keys(new, &mut keys);
            let other =
                format!("arn:aws:kms:us-east-1:{account}:key/00000000-0000-0000-0000-000000000000");
            if !keys.contains(&other) {
                keys.push(other);
            }
            keys
        }
    };
    if keys.len() > MAX_KEYS {
        bail!(
            "the policies name {} keys; policy diff asks about at most {MAX_KEYS} (give --key-arn)",
            keys.len()
        );
    }
    let mut out = Vec::new();
    for k in keys {
        let key = KeyTarget::new(&k)?;
        let base = PolicySet::new(key.clone(), delegating_policy(&[&key.account, &account])?);
        out.push((
            holding(&base, &holder, &account, old),
            holding(&base, &holder, &account, new),
        ));
    }
    Ok(out)
}

fn live_sets(
    args: &DiffArgs,
    key: &str,
    kind: Kind,
    old: &Arc<Policy>,
    new: &Arc<Policy>,
) -> anyhow::Result<Vec<(PolicySet, PolicySet)>> {
    let live = open_live(&args.data)?;
    let accounts: Vec<AccountId> = match Arn::parse(key).ok().and_then(|a| a.account_id()) {
        Some(a) => vec![a],
        None => live
            .directory
            .accounts()
            .into_iter()
            .map(|a| a.id)
            .collect(),
    };
    let mut found = None;
    for a in &accounts {
        let root = Caller::root(a.clone(), live.region.clone());
        if let Ok(k) = live.kms.key_policy_snapshot(&root, key) {
            found = Some(k);
            break;
        }
    }
    let (key_arn, key_policy) =
        found.with_context(|| format!("no key '{key}' in {}", live.region))?;
    // The operator reads the whole data dir: every account's principals
    // are known (as `key access --exact`).
    let set = |policy: &Arc<Policy>| {
        key_policy_set_with(
            &live.kms,
            &live.directory,
            &key_arn,
            Arc::clone(policy),
            Known::AllAccounts,
        )
    };
    match kind {
        Kind::Key => Ok(vec![(set(old)?, set(new)?)]),
        Kind::Identity => {
            let base = set(&key_policy)?;
            let (holder, account) = holder_arn(args, &base.key.account)?;
            Ok(vec![(
                holding(&base, &holder, &account, old),
                holding(&base, &holder, &account, new),
            )])
        }
    }
}

fn context_text(ctx: &[(String, String)]) -> String {
    if ctx.is_empty() {
        "no condition keys".to_string()
    } else {
        ctx.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn entry_json(e: &DiffEntry) -> Value {
    json!({
        "principal": e.principal_class,
        "external": e.external,
        "action": e.action,
        "path": e.path.to_string(),
        "conditional": e.conditional,
        "requests": e.requests,
        "witness": {
            "principal": e.witness.principal,
            "action": e.witness.action,
            "key": e.witness.resource,
            "context": e.witness.context.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        },
    })
}

fn print_json(results: &[KeyDiff], added: bool, unknown: bool) -> anyhow::Result<()> {
    let keys: Vec<Value> = results
        .iter()
        .map(|r| match &r.outcome {
            Ok(d) => json!({
                "key": r.key,
                "exact": true,
                "added": d.entries.iter().filter(|e| e.change == Change::Added).map(entry_json).collect::<Vec<_>>(),
                "removed": d.entries.iter().filter(|e| e.change == Change::Removed).map(entry_json).collect::<Vec<_>>(),
                "proof": {"requests": d.proof.requests, "principals": d.proof.principals, "actions": d.proof.actions},
            }),
            Err(why) => json!({"key": r.key, "exact": false, "unknown": why}),
        })
        .collect();
    outln!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "addsAccess": added,
            "unknown": unknown,
            "keys": keys,
        }))?
    );
    Ok(())
}

fn print_text(results: &[KeyDiff], added: bool, unknown: bool) {
    for r in results {
        let d = match &r.outcome {
            Ok(d) => d,
            Err(why) => {
                outln!("key {}", r.key);
                outln!("  unknown: {why}");
                continue;
            }
        };
        outln!(
            "key {} (exact: {} representative requests of {} principal classes and {} actions asked of both policies)",
            r.key,
            d.proof.requests,
            d.proof.principals,
            d.proof.actions
        );
        for (change, title) in [(Change::Added, "ADDED"), (Change::Removed, "REMOVED")] {
            let entries: Vec<&DiffEntry> =
                d.entries.iter().filter(|e| e.change == change).collect();
            if entries.is_empty() {
                outln!("  {title}: nothing");
                continue;
            }
            outln!("  {title}:");
            // Entries that differ only by action share one line.
            let mut groups: Vec<(&DiffEntry, Vec<&str>)> = Vec::new();
            for e in entries {
                let same = |g: &DiffEntry| {
                    g.principal_class == e.principal_class
                        && g.path == e.path
                        && g.conditional == e.conditional
                        && g.witness.principal == e.witness.principal
                        && g.witness.context == e.witness.context
                };
                match groups.iter_mut().find(|(g, _)| same(g)) {
                    Some((_, actions)) => actions.push(e.action.as_str()),
                    None => groups.push((e, vec![e.action.as_str()])),
                }
            }
            for (g, actions) in groups {
                let ext = if g.external { " (external)" } else { "" };
                let cond = if g.conditional { ", conditional" } else { "" };
                outln!(
                    "    {}{ext}, through the {}{cond}:",
                    g.principal_class,
                    g.path
                );
                outln!("      {}", actions.join(", "));
                outln!(
                    "      witness (each action): {} on {} with {}",
                    g.witness.principal,
                    g.witness.resource,
                    context_text(&g.witness.context)
                );
            }
        }
    }
    if added {
        outln!("the change adds access (exit status 1)");
    } else if unknown {
        outln!("unknown: the change could not be decided for every key (exit status 2)");
    } else {
        outln!("the change adds no access (exit status 0)");
    }
}
