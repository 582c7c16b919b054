//! `ferrokms policy generate`: the least-privilege identity policy of a
//! principal from what the audit trail shows it did, and the proof, by
//! `ferrokms_reach`, that the policy grants nothing more (docs/analysis.md,
//! "policy generate").

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use clap::Args;
use ferrokms_policy::{ParseOptions, Policy, PolicyKind};
use ferrokms_reach::{access_diff, access_listing, Change, Holder, KeyTarget, PolicySet};
use ferrokms_server::audit::AuditRecord;
use ferrokms_types::{AccountId, Arn};
use serde_json::{json, Value};

use crate::audit::UsageError;
use crate::when;

#[derive(Args)]
pub struct GenerateArgs {
    /// The data directory whose audit trail is read (the server may be
    /// running).
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    data_dir: PathBuf,
    /// The IAM user or role (ARN) whose requests are read. A role stands
    /// for all its sessions; an assumed-role session ARN is taken as its
    /// role. Account roots and service principals are refused.
    #[arg(long)]
    principal: String,
    /// Only requests at or after this time: RFC 3339 with Z or an offset,
    /// a date (midnight UTC) or an age before now (45s, 30m, 1h, 7d), as
    /// `ferrokms audit --since`.
    #[arg(long)]
    since: Option<String>,
    /// Only requests before this time; the same forms as --since.
    #[arg(long)]
    until: Option<String>,
    /// Also write the key-policy statement(s) that name the principal, for
    /// keys whose policy does not delegate to its account.
    #[arg(long)]
    key_policy_statement: bool,
    /// The policy, the notes and the proof as one JSON document.
    #[arg(long)]
    json: bool,
}

/// What the trail shows the principal did.
#[derive(Default, Debug, PartialEq, Eq)]
struct Observed {
    /// Per resource (key ARN, alias ARN, or `*`): the actions of the
    /// principal's successful requests that were allowed on it.
    allowed: BTreeMap<String, BTreeSet<String>>,
    /// Refused authorization decisions: (action, resource).
    denied: BTreeSet<(String, String)>,
    /// Requests that failed for a reason other than authorization: their
    /// allowed decisions are not counted.
    failed: BTreeSet<(String, String)>,
    /// Other services' operations (`iam:CreateUser`).
    other_services: BTreeSet<String>,
    /// Records of the principal read.
    records: u64,
}

/// The principal as the trail's records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Who {
    /// The user or role ARN.
    arn: String,
    account: AccountId,
}

/// `text` as `--principal` gives it: a user or a role, or a session of a
/// role (then the role, found through the records' session issuer).
fn principal(text: &str, records: &[AuditRecord]) -> Result<Who, UsageError> {
    let refuse = |why: &str| UsageError(format!("--principal '{text}': {why}"));
    if AccountId::parse(text).is_ok() {
        return Err(refuse(
            "an account root may do anything in its account; policy generate writes identity policies for IAM users and roles",
        ));
    }
    if !text.starts_with("arn:") {
        return Err(refuse(
            "a service principal holds no identity policy; give the ARN of an IAM user or role",
        ));
    }
    let arn = Arn::parse(text).map_err(|_| refuse("not an ARN"))?;
    let account = arn
        .account_id()
        .ok_or_else(|| refuse("the ARN has no account"))?;
    let res = arn.resource();
    if res == "root" {
        return Err(refuse(
            "an account root may do anything in its account; policy generate writes identity policies for IAM users and roles",
        ));
    }
    match arn.service() {
        "iam" if res.starts_with("user/") || res.starts_with("role/") => Ok(Who {
            arn: text.to_string(),
            account,
        }),
        "sts" if res.starts_with("assumed-role/") => {
            let role = records
                .iter()
                .find(|r| r.user_identity.arn() == text)
                .and_then(|r| r.user_identity.session_issuer_arn())
                .ok_or_else(|| {
                    refuse("no record of this session names its role; give the role's ARN")
                })?;
            Ok(Who {
                arn: role.to_string(),
                account,
            })
        }
        _ => Err(refuse(
            "only IAM users and roles (or a role's session) hold identity policies",
        )),
    }
}

/// Whether record `r` is a request by `who` (a role: any of its sessions).
fn by(r: &AuditRecord, who: &Who) -> bool {
    r.user_identity.arn() == who.arn || r.user_identity.session_issuer_arn() == Some(&who.arn)
}

/// Collects what `who` did among `records` in [since, until).
fn observe(
    records: &[AuditRecord],
    who: &Who,
    since: Option<when::Instant>,
    until: Option<when::Instant>,
) -> Observed {
    let mut o = Observed::default();
    for r in records.iter().filter(|r| by(r, who)) {
        if since.is_some() || until.is_some() {
            let Some(t) = when::parse_rfc3339(&r.event_time) else {
                continue;
            };
            if since.is_some_and(|s| t < s) || until.is_some_and(|u| t >= u) {
                continue;
            }
        }
        o.records += 1;
        if r.event_source != "kms.amazonaws.com" {
            let service = r
                .event_source
                .strip_suffix(".amazonaws.com")
                .unwrap_or(&r.event_source);
            o.other_services
                .insert(format!("{service}:{}", r.event_name));
            continue;
        }
        let succeeded = r.error_code.as_deref().is_none_or(str::is_empty);
        for d in r.decisions() {
            let entry = (d.action.clone(), d.resource.clone());
            if !d.allowed {
                o.denied.insert(entry);
            } else if succeeded {
                o.allowed.entry(d.resource).or_default().insert(d.action);
            } else {
                o.failed.insert(entry);
            }
        }
    }
    // A request that later succeeded is not a note.
    let allowed = &o.allowed;
    let done = |(a, res): &(String, String)| allowed.get(res).is_some_and(|s| s.contains(a));
    o.failed.retain(|e| !done(e));
    o
}

/// The statements: one per set of resources with the same actions (the
/// `*` resource apart, so that it never widens a key's actions).
fn groups(o: &Observed) -> Vec<(Vec<String>, Vec<String>)> {
    let mut by_actions: BTreeMap<(bool, Vec<String>), Vec<String>> = BTreeMap::new();
    for (res, actions) in &o.allowed {
        let actions: Vec<String> = actions.iter().cloned().collect();
        by_actions
            .entry((res == "*", actions))
            .or_default()
            .push(res.clone());
    }
    by_actions
        .into_iter()
        .map(|((_, actions), resources)| (actions, resources))
        .collect()
}

fn identity_policy(groups: &[(Vec<String>, Vec<String>)]) -> Value {
    let statements: Vec<Value> = groups
        .iter()
        .enumerate()
        .map(|(i, (actions, resources))| {
            let resource = if resources.len() == 1 {
                json!(resources[0])
            } else {
                json!(resources)
            };
            json!({
                "Sid": format!("Observed{}", i + 1),
                "Effect": "Allow",
                "Action": actions,
                "Resource": resource,
            })
        })
        .collect();
    json!({"Version": "2012-10-17", "Statement": statements})
}

fn is_key_arn(res: &str) -> bool {
    Arn::parse(res).is_ok_and(|a| a.service() == "kms" && a.resource().starts_with("key/"))
}

/// The key-policy statements naming `who`: per set of keys with the same
/// actions, the statement to add to each of those keys' policies.
fn key_policy_statements(who: &Who, groups: &[(Vec<String>, Vec<String>)]) -> Vec<Value> {
    groups
        .iter()
        .filter_map(|(actions, resources)| {
            let keys: Vec<&String> = resources.iter().filter(|r| is_key_arn(r)).collect();
            let actions: Vec<&String> = actions
                .iter()
                .filter(|a| ferrokms_reach::model::key_action(a).is_some())
                .collect();
            (!keys.is_empty() && !actions.is_empty()).then(|| {
                json!({
                    "keys": keys,
                    "statement": {
                        "Sid": "AllowObservedUse",
                        "Effect": "Allow",
                        "Principal": {"AWS": who.arn},
                        "Action": actions,
                        "Resource": "*",
                    },
                })
            })
        })
        .collect()
}

/// The proof's outcome per key.
struct KeyProof {
    key: String,
    observed: Vec<String>,
    granted: Vec<String>,
    requests: u64,
}

/// A key policy that delegates to the principal's account.
fn delegating_key_policy(account: &AccountId) -> anyhow::Result<Arc<Policy>> {
    let text = json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "Enable IAM User Permissions", "Effect": "Allow",
        "Principal": {"AWS": account.root_arn("aws")}, "Action": "kms:*", "Resource": "*"}]})
    .to_string();
    Policy::parse(&text, &ParseOptions::for_kind(PolicyKind::ResourceBased))
        .map(Arc::new)
        .map_err(|e| anyhow::anyhow!("the delegating key policy: {e}"))
}

/// The key actions `who` may perform on `key` when it holds `policy` as
/// its only identity policy under a key policy that delegates to its
/// account, and the representative requests asked: the whole-space
/// answer of `ferrokms_reach` (the access the policy adds over holding
/// none, every entry of which must be unconditional, and the same from
/// the access listing).
fn granted(who: &Who, key: &str, policy: &Arc<Policy>) -> anyhow::Result<(Vec<String>, u64)> {
    let target = KeyTarget::new(key).with_context(|| format!("the key ARN {key}"))?;
    let mut bare = PolicySet::new(target, delegating_key_policy(&who.account)?);
    if !bare.knows(&who.account) {
        bare.known_accounts.push(who.account.clone());
    }
    let mut with = bare.clone();
    with.holders.push(Holder {
        arn: who.arn.clone(),
        policies: vec![(PolicyKind::IdentityBased, Arc::clone(policy))],
    });
    let diff = access_diff(&bare, &with).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut actions: BTreeSet<String> = BTreeSet::new();
    for e in &diff.entries {
        if e.change != Change::Added || e.principal_class != who.arn || e.conditional {
            bail!(
                "the generated policy changes more than the principal's access on {key}: {} {} {} ({})",
                e.principal_class,
                if e.change == Change::Added { "gains" } else { "loses" },
                e.action,
                if e.conditional { "conditional" } else { "for every request" }
            );
        }
        actions.insert(e.action.clone());
    }
    let listed: BTreeSet<String> = access_listing(&with)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|e| e.principal_class == who.arn)
        .flat_map(|e| e.actions)
        .collect();
    if listed != actions {
        bail!("the access listing of {key} ({listed:?}) differs from the diff ({actions:?})");
    }
    Ok((actions.into_iter().collect(), diff.proof.requests))
}

/// A key ARN no observed request named, in `account` and `region`.
fn fresh_key(account: &AccountId, region: &str, observed: &[String]) -> String {
    let mut i = 0u32;
    loop {
        let arn = format!("arn:aws:kms:{region}:{account}:key/00000000-0000-0000-0000-{i:012}");
        if !observed.contains(&arn) || i >= 1_000 {
            return arn;
        }
        i += 1;
    }
}

/// Runs the command: the exit status (0 generated and proven, 1 when the
/// proof fails or nothing was observed, 2 a usage error).
pub fn generate_cmd(args: &GenerateArgs) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ferrokms: {}", crate::error_line(&e));
            if e.is::<UsageError>() {
                2
            } else {
                1
            }
        }
    }
}

fn run(args: &GenerateArgs) -> anyhow::Result<i32> {
    let now = when::now();
    let time = |flag: &str, text: &Option<String>| {
        when::flag(flag, text.as_deref(), now).map_err(UsageError)
    };
    let since = time("--since", &args.since)?;
    let until = time("--until", &args.until)?;
    let trail = ferrokms_server::audit::read::trail(&args.data_dir)
        .with_context(|| format!("cannot read the audit trail of {}", args.data_dir.display()))?;
    if trail.dropped > 0 {
        eprintln!(
            "ferrokms: note: the server dropped {} audit record(s) when its writer fell behind \
             (docs/audit.md); requests among them are not in the policy",
            trail.dropped
        );
    }
    let who = principal(&args.principal, &trail.records)?;
    let o = observe(&trail.records, &who, since, until);
    if o.allowed.is_empty() {
        bail!(
            "no successful KMS request by {} in the audit trail{}: no policy to write",
            who.arn,
            if since.is_some() || until.is_some() {
                " in that time range"
            } else {
                ""
            }
        );
    }
    let groups = groups(&o);
    let policy_json = identity_policy(&groups);
    let policy = Policy::parse(
        &policy_json.to_string(),
        &ParseOptions::for_kind(PolicyKind::IdentityBased),
    )
    .map(Arc::new)
    .map_err(|e| anyhow::anyhow!("the generated policy does not parse: {e}"))?;
    // The proof: per observed key, exactly its observed key actions; on a
    // key no request named, nothing.
    let keys: Vec<String> = o
        .allowed
        .keys()
        .filter(|k| is_key_arn(k))
        .cloned()
        .collect();
    let mut proofs: Vec<KeyProof> = Vec::new();
    for key in &keys {
        let observed: Vec<String> = o.allowed[key]
            .iter()
            .filter(|a| ferrokms_reach::model::key_action(a).is_some())
            .cloned()
            .collect();
        let (granted, requests) = granted(&who, key, &policy)?;
        proofs.push(KeyProof {
            key: key.clone(),
            observed,
            granted,
            requests,
        });
    }
    let region = keys
        .first()
        .and_then(|k| Arn::parse(k).ok())
        .map_or_else(|| "us-east-1".to_string(), |a| a.region().to_string());
    let fresh = fresh_key(&who.account, &region, &keys);
    let (fresh_granted, fresh_requests) = granted(&who, &fresh, &policy)?;
    let proven = proofs.iter().all(|p| p.granted == p.observed) && fresh_granted.is_empty();
    let statements = args
        .key_policy_statement
        .then(|| key_policy_statements(&who, &groups));
    let denied: Vec<Value> = o
        .denied
        .iter()
        .map(|(a, r)| json!({"action": a, "resource": r}))
        .collect();
    let failed: Vec<Value> = o
        .failed
        .iter()
        .map(|(a, r)| json!({"action": a, "resource": r}))
        .collect();
    let proof_json: Vec<Value> = proofs
        .iter()
        .map(|p| {
            json!({"key": p.key, "observed": p.observed, "granted": p.granted, "requests": p.requests, "equal": p.granted == p.observed})
        })
        .collect();
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "principal": who.arn,
                "records": o.records,
                "identityPolicy": policy_json,
                "keyPolicyStatements": statements,
                "denied": denied,
                "failedOtherwise": failed,
                "otherServices": o.other_services,
                "proof": {
                    "proven": proven,
                    "keys": proof_json,
                    "unobservedKey": {"key": fresh, "granted": fresh_granted, "requests": fresh_requests},
                },
            }))?
        );
    } else {
        outln!(
            "# least-privilege identity policy of {} ({} request record(s) read)",
            who.arn,
            o.records
        );
        outln!("{}", serde_json::to_string_pretty(&policy_json)?);
        if let Some(st) = &statements {
            outln!("# key-policy statements naming the principal (add each to the policies of its keys)");
            for s in st {
                outln!("# keys: {}", s["keys"]);
                outln!("{}", serde_json::to_string_pretty(&s["statement"])?);
            }
        }
        for (a, r) in &o.denied {
            outln!("# note: denied, not granted: {a} on {r}");
        }
        for (a, r) in &o.failed {
            outln!("# note: failed for another reason, not granted: {a} on {r}");
        }
        for op in &o.other_services {
            outln!("# note: not a KMS action, not in the policy: {op}");
        }
        for p in &proofs {
            outln!(
                "# proof: {}: grants {} (observed {}) [{} requests asked]",
                p.key,
                p.granted.join(", "),
                p.observed.join(", "),
                p.requests
            );
        }
        outln!(
            "# proof: a key no request named ({fresh}): grants {} [{fresh_requests} requests asked]",
            if fresh_granted.is_empty() {
                "nothing".to_string()
            } else {
                fresh_granted.join(", ")
            }
        );
        outln!(
            "# proof: {}",
            if proven {
                "the policy grants exactly the observed key actions on the observed keys, and nothing on any other key"
            } else {
                "FAILED: the policy grants something other than what was observed"
            }
        );
    }
    Ok(if proven { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "arn:aws:iam::111122223333:user/app";
    const K1: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";
    const K2: &str = "arn:aws:kms:us-east-1:111122223333:key/k2";

    /// A record as the server writes it (CloudTrail's shape).
    fn record(action: &str, key: &str, allowed: bool, error: Option<&str>) -> AuditRecord {
        let mut v = json!({
            "userIdentity": {"type": "IAMUser", "arn": USER, "accountId": "111122223333"},
            "eventTime": "2026-12-06T10:00:00Z",
            "eventSource": "kms.amazonaws.com",
            "eventName": action.trim_start_matches("kms:"),
            "ferrokmsAuthorization": [{
                "action": action, "resource": key, "allowed": allowed,
                "decision": if allowed { Value::Null } else { json!("implicitly denied") },
                "statements": [],
            }],
        });
        if let Some(e) = error {
            v["errorCode"] = json!(e);
        }
        serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
    }

    fn who() -> Who {
        Who {
            arn: USER.into(),
            account: AccountId::parse("111122223333").unwrap_or_else(|_| unreachable!()),
        }
    }

    #[test]
    fn observes_successes_apart_from_denials_and_failures() {
        let mut other = record("kms:Encrypt", K1, true, None);
        other.event_source = "iam.amazonaws.com".into();
        other.event_name = "ListUsers".into();
        let records = vec![
            record("kms:Encrypt", K1, true, None),
            record("kms:Decrypt", K2, true, None),
            record("kms:Decrypt", K2, true, None),
            record("kms:Sign", K1, false, Some("AccessDeniedException")),
            record("kms:Decrypt", K1, true, Some("InvalidCiphertextException")),
            other,
        ];
        let o = observe(&records, &who(), None, None);
        assert_eq!(o.records, 6);
        assert_eq!(o.allowed.len(), 2);
        assert!(o.allowed[K1].contains("kms:Encrypt") && o.allowed[K1].len() == 1);
        assert!(o.allowed[K2].contains("kms:Decrypt") && o.allowed[K2].len() == 1);
        assert!(o.denied.contains(&("kms:Sign".to_string(), K1.to_string())));
        assert!(o
            .failed
            .contains(&("kms:Decrypt".to_string(), K1.to_string())));
        assert!(o.other_services.contains("iam:ListUsers"));
        // Outside the time range: nothing.
        let late = when::parse_arg("2026-12-07", 0);
        assert_eq!(observe(&records, &who(), late, None).records, 0);
    }

    #[test]
    fn groups_keys_with_the_same_actions_and_proves_them() {
        let mut o = Observed::default();
        for (k, a) in [
            (K1, "kms:Encrypt"),
            (K2, "kms:Encrypt"),
            (K1, "kms:Decrypt"),
        ] {
            o.allowed.entry(k.into()).or_default().insert(a.into());
        }
        o.allowed
            .entry("*".into())
            .or_default()
            .insert("kms:ListKeys".into());
        let g = groups(&o);
        assert_eq!(g.len(), 3, "{g:?}");
        let text = identity_policy(&g).to_string();
        let policy = Arc::new(
            Policy::parse(&text, &ParseOptions::for_kind(PolicyKind::IdentityBased))
                .unwrap_or_else(|e| panic!("{e}: {text}")),
        );
        let (k1, _) = granted(&who(), K1, &policy).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k1, vec!["kms:Decrypt", "kms:Encrypt"]);
        let (k2, _) = granted(&who(), K2, &policy).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k2, vec!["kms:Encrypt"]);
        let fresh = fresh_key(&who().account, "us-east-1", &[K1.into(), K2.into()]);
        let (none, asked) = granted(&who(), &fresh, &policy).unwrap_or_else(|e| panic!("{e}"));
        assert!(none.is_empty() && asked > 0);
        // A wider policy is caught: kms:* on every key.
        let wide = Arc::new(
            Policy::parse(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
                &ParseOptions::for_kind(PolicyKind::IdentityBased),
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let (all, _) = granted(&who(), &fresh, &wide).unwrap_or_else(|e| panic!("{e}"));
        assert!(all.len() > 40);
    }

    #[test]
    fn refuses_roots_services_and_maps_sessions_to_roles() {
        assert!(principal("111122223333", &[]).is_err());
        assert!(principal("arn:aws:iam::111122223333:root", &[]).is_err());
        assert!(principal("dynamodb.amazonaws.com", &[]).is_err());
        assert!(principal("arn:aws:sts::111122223333:assumed-role/r/s", &[]).is_err());
        let mut v = serde_json::to_value(record("kms:Encrypt", K1, true, None))
            .unwrap_or_else(|e| panic!("{e}"));
        v["userIdentity"] = json!({
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/r/s",
            "accountId": "111122223333",
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/team/r"}},
        });
        let r: AuditRecord = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        let who = principal(
            "arn:aws:sts::111122223333:assumed-role/r/s",
            std::slice::from_ref(&r),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(who.arn, "arn:aws:iam::111122223333:role/team/r");
        assert_eq!(observe(&[r], &who, None, None).allowed.len(), 1);
    }
}
