//! `ferrokms audit` and `ferrokms policy explain`: reading the audit trail
//! the server writes under `DATA_DIR/audit/` (also while it runs).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use ferrokms_server::audit::AuditRecord;

use crate::when;

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    pub data_dir: PathBuf,
    /// Only records about this key: a key id, key ARN, alias name
    /// (alias/NAME) or alias ARN.
    ///
    /// An alias is resolved to its key in the data dir's store (as `key
    /// access` does; needs the root key, and --store for a shared
    /// database), and then every record about that key matches, whatever
    /// name its request used: the key's ARN in `resources` or in the
    /// authorization trace, or its id or ARN in the request parameters
    /// (keyId, targetKeyId, sourceKeyId, destinationKeyId) or the response
    /// of the call that made or changed it (CreateKey). Records that
    /// named the alias and no key at all (refused on the alias itself, or
    /// before it was resolved) match too; records that named the alias when
    /// it pointed to another key do not. An alias that no longer exists
    /// matches the records that named it, with a note on stderr. A key id
    /// or ARN needs no store: records name keys by ARN.
    #[arg(long)]
    pub key: Option<String>,
    /// Only requests by this principal (caller ARN, or the role ARN of sessions).
    #[arg(long)]
    pub principal: Option<String>,
    /// Only this operation, e.g. Encrypt.
    #[arg(long)]
    pub event_name: Option<String>,
    /// Only failures with this error code, e.g. AccessDeniedException.
    #[arg(long)]
    pub error_code: Option<String>,
    /// Only requests at or after this time: RFC 3339 with Z or an offset
    /// (2026-11-24T01:00:00Z, 2026-11-24T02:00:00+01:00), a date
    /// (2026-11-24, midnight UTC) or an age before now (45s, 30m, 1h, 7d).
    /// Times are compared as instants; anything else is refused (exit 2).
    #[arg(long)]
    pub since: Option<String>,
    /// Only requests before this time; the same forms as --since.
    #[arg(long)]
    pub until: Option<String>,
    /// JSON lines (CloudTrail event shape) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Root key file, to resolve an alias given to --key; default DATA_DIR/root.key.
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// The PostgreSQL database of the nodes (postgres://...), to resolve an
    /// alias given to --key when they share one.
    #[arg(long, env = "FERROKMS_STORE")]
    pub store: Option<String>,
    /// A file holding the password of --store's PostgreSQL user, for a URL
    /// without one: keeps the password off the command line (where `ps`
    /// shows it) and out of the environment.
    #[arg(long, env = "FERROKMS_STORE_PASSWORD_FILE", requires = "store")]
    pub store_password_file: Option<PathBuf>,
    /// The region of an alias name given to --key.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

#[derive(Args)]
pub struct ExplainArgs {
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    pub data_dir: PathBuf,
    /// The request id the client saw (x-amzn-RequestId / RequestId).
    #[arg(long)]
    pub request_id: String,
    /// The record and its explanation as JSON.
    #[arg(long)]
    pub json: bool,
    /// Root key file, to check a denied KMS request's conditions against
    /// the data dir's policies; default DATA_DIR/root.key.
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// The PostgreSQL database of the nodes (postgres://...), when they
    /// share one, for the same check.
    #[arg(long, env = "FERROKMS_STORE")]
    pub store: Option<String>,
    /// A file holding the password of --store's PostgreSQL user.
    #[arg(long, env = "FERROKMS_STORE_PASSWORD_FILE", requires = "store")]
    pub store_password_file: Option<PathBuf>,
}

/// Every audit record of a data dir, oldest first (the server's reader:
/// `ferrokms_server::audit::read`), with a note on stderr when the server
/// noted that it dropped records.
fn records(data_dir: &Path) -> anyhow::Result<Vec<AuditRecord>> {
    let trail = ferrokms_server::audit::read::trail(data_dir)?;
    if trail.dropped > 0 {
        eprintln!(
            "ferrokms: note: the server dropped {} audit record(s) when its writer fell behind \
             (docs/audit.md); they are not shown",
            trail.dropped
        );
    }
    Ok(trail.records)
}

/// A mistake on the command line: one line on stderr and exit status 2,
/// as clap's own usage errors.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The request parameters that name a key (or an alias standing for one).
const KEY_PARAMETERS: &[&str] = &["keyId", "targetKeyId", "sourceKeyId", "destinationKeyId"];

/// A key or an alias as a record names it, with the account and region it
/// belongs to when the name says (an ARN) or the record does (a bare name
/// is the caller's own, in the request's region).
#[derive(Debug, Clone, PartialEq)]
enum Named {
    Key {
        id: String,
        account: String,
        region: String,
    },
    Alias {
        name: String,
        account: String,
        region: String,
    },
}

impl Named {
    /// `text` as a record or a user writes it. `account` and `region` are
    /// those of a bare id or alias name ("" when unknown).
    fn parse(text: &str, account: &str, region: &str) -> Option<Named> {
        if let Some(rest) = text.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            let [_partition, "kms", region, account, resource] = parts[..] else {
                return None;
            };
            return if let Some(id) = resource.strip_prefix("key/") {
                Some(Named::Key {
                    id: id.to_string(),
                    account: account.to_string(),
                    region: region.to_string(),
                })
            } else if resource.starts_with("alias/") {
                Some(Named::Alias {
                    name: resource.to_string(),
                    account: account.to_string(),
                    region: region.to_string(),
                })
            } else {
                None
            };
        }
        if text.is_empty() || text.contains([':', ' ']) {
            return None;
        }
        if text.starts_with("alias/") {
            return Some(Named::Alias {
                name: text.to_string(),
                account: account.to_string(),
                region: region.to_string(),
            });
        }
        (!text.contains('/')).then(|| Named::Key {
            id: text.to_string(),
            account: account.to_string(),
            region: region.to_string(),
        })
    }

    /// Whether `other` (from a record) names the same thing; an empty
    /// account or region on either side is unknown and matches any.
    fn covers(&self, other: &Named) -> bool {
        let same = |a: &str, b: &str| a.is_empty() || b.is_empty() || a == b;
        match (self, other) {
            (
                Named::Key {
                    id,
                    account,
                    region,
                },
                Named::Key {
                    id: i,
                    account: a,
                    region: r,
                },
            )
            | (
                Named::Alias {
                    name: id,
                    account,
                    region,
                },
                Named::Alias {
                    name: i,
                    account: a,
                    region: r,
                },
            ) => id == i && same(account, a) && same(region, r),
            _ => false,
        }
    }
}

/// What `--key` selects.
#[derive(Debug)]
enum KeyFilter {
    /// Records about the key; with the alias it was given as, records that
    /// named that alias and no key at all.
    Key { key: Named, alias: Option<Named> },
    /// An alias that names no key now: the records that named it.
    GoneAlias(Named),
}

/// Every key and alias a record names: `resources`, the authorization
/// trace's resources, the request parameters that name keys, and the key
/// in the response of a management call.
fn named(v: &AuditRecord) -> Vec<Named> {
    let account = v.user_identity.account_id();
    let region = v.aws_region.as_str();
    let mut out = Vec::new();
    let arns = v.resources.iter().map(|r| r.arn.as_str()).chain(
        v.ferrokms_authorization
            .iter()
            .filter_map(|d| d.resource.as_deref()),
    );
    for arn in arns {
        out.extend(Named::parse(arn, "", ""));
    }
    // Request parameters and response elements are the operation's own
    // JSON (CloudTrail's shape, not typed here).
    let text = |v: &Option<serde_json::Value>, path: &[&str]| -> Option<String> {
        let mut cur = v.as_ref()?;
        for p in path {
            cur = cur.get(*p)?;
        }
        cur.as_str().map(str::to_string)
    };
    for p in KEY_PARAMETERS.iter().chain(&["aliasName"]) {
        if let Some(t) = text(&v.request_parameters, &[p]) {
            out.extend(Named::parse(&t, account, region));
        }
    }
    // The key a management call made or changed (CreateKey, ReplicateKey,
    // ScheduleKeyDeletion, CancelKeyDeletion).
    for path in [
        &["keyId"][..],
        &["keyMetadata", "arn"],
        &["replicaKeyMetadata", "arn"],
    ] {
        if let Some(t) = text(&v.response_elements, path) {
            out.extend(Named::parse(&t, "", ""));
        }
    }
    out
}

impl KeyFilter {
    /// `text` as given to `--key`; an alias is resolved in the store.
    fn resolve(text: &str, a: &AuditArgs) -> anyhow::Result<KeyFilter> {
        let bad = || {
            UsageError(format!(
                "--key '{text}' is not a key id, key ARN, alias name (alias/NAME) or alias ARN"
            ))
        };
        let given = Named::parse(text, "", "").ok_or_else(bad)?;
        let Named::Alias { name, .. } = &given else {
            return Ok(KeyFilter::Key {
                key: given,
                alias: None,
            });
        };
        if name.len() <= "alias/".len() {
            return Err(bad().into());
        }
        let live = crate::analyze::open_live(&crate::analyze::DataArgs {
            data_dir: a.data_dir.clone(),
            root_key_file: a.root_key_file.clone(),
            store: a.store.clone(),
            store_password_file: a.store_password_file.clone(),
            region: a.region.clone(),
        })
        .with_context(|| format!("cannot resolve --key '{text}' to its key"))?;
        // The accounts (and region) the alias may belong to.
        let (accounts, region) = match &given {
            Named::Alias {
                account, region, ..
            } if !account.is_empty() => (
                vec![ferrokms_types::AccountId::parse(account)
                    .map_err(|_| UsageError(format!("--key '{text}': bad account in ARN")))?],
                ferrokms_types::Region::parse(region)
                    .map_err(|_| UsageError(format!("--key '{text}': bad region in ARN")))?,
            ),
            _ => (
                live.directory
                    .accounts()
                    .into_iter()
                    .map(|x| x.id)
                    .collect(),
                live.region.clone(),
            ),
        };
        let mut found = Vec::new();
        for account in accounts {
            let root = ferrokms_kms::Caller::root(account.clone(), region.clone());
            if let Ok((key_arn, _)) = live.kms.key_policy_snapshot(&root, name) {
                found.push((account, key_arn));
            }
        }
        match &found[..] {
            [] => {
                eprintln!(
                    "ferrokms: note: {text} names no key now (in {region}); showing the records \
                     that named it, whichever key it named then"
                );
                Ok(KeyFilter::GoneAlias(given))
            }
            [(account, key_arn)] => Ok(KeyFilter::Key {
                key: Named::parse(key_arn, "", "")
                    .with_context(|| format!("unexpected key ARN {key_arn}"))?,
                alias: Some(Named::Alias {
                    name: name.clone(),
                    account: account.to_string(),
                    region: region.to_string(),
                }),
            }),
            several => Err(UsageError(format!(
                "--key '{text}' is an alias in {} accounts ({}): give its alias ARN",
                several.len(),
                several
                    .iter()
                    .map(|(a, _)| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()),
        }
    }

    fn matches(&self, v: &AuditRecord) -> bool {
        let names = named(v);
        match self {
            KeyFilter::Key { key, alias } => {
                names.iter().any(|n| key.covers(n))
                    || alias.as_ref().is_some_and(|alias| {
                        names.iter().any(|n| alias.covers(n))
                            && !names.iter().any(|n| matches!(n, Named::Key { .. }))
                    })
            }
            KeyFilter::GoneAlias(alias) => names.iter().any(|n| alias.covers(n)),
        }
    }
}

/// The selection `audit` makes, parsed from its arguments.
struct Filter<'a> {
    args: &'a AuditArgs,
    key: Option<KeyFilter>,
    since: Option<when::Instant>,
    until: Option<when::Instant>,
}

impl<'a> Filter<'a> {
    fn new(args: &'a AuditArgs) -> anyhow::Result<Filter<'a>> {
        let now = when::now();
        let time = |flag: &str, text: &Option<String>| {
            when::flag(flag, text.as_deref(), now).map_err(UsageError)
        };
        let since = time("--since", &args.since)?;
        let until = time("--until", &args.until)?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(UsageError(format!(
                    "--since '{}' is not before --until '{}': no record could match",
                    args.since.as_deref().unwrap_or_default(),
                    args.until.as_deref().unwrap_or_default()
                ))
                .into());
            }
        }
        let key = match &args.key {
            Some(k) => Some(KeyFilter::resolve(k, args)?),
            None => None,
        };
        Ok(Filter {
            args,
            key,
            since,
            until,
        })
    }

    fn matches(&self, v: &AuditRecord) -> bool {
        let a = self.args;
        if self.key.as_ref().is_some_and(|k| !k.matches(v)) {
            return false;
        }
        if let Some(p) = &a.principal {
            let who = v.user_identity.arn() == p
                || v.user_identity.session_issuer_arn() == Some(p.as_str());
            if !who {
                return false;
            }
        }
        if let Some(e) = &a.event_name {
            if !v.event_name.eq_ignore_ascii_case(e) {
                return false;
            }
        }
        if let Some(c) = &a.error_code {
            if v.error_code.as_deref() != Some(c.as_str()) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            // A record without a readable time cannot be shown to be in
            // the range.
            let Some(t) = when::parse_rfc3339(&v.event_time) else {
                return false;
            };
            if self.since.is_some_and(|since| t < since) {
                return false;
            }
            if self.until.is_some_and(|until| t >= until) {
                return false;
            }
        }
        true
    }
}

/// `ferrokms audit`: filtered records, as a table or JSON lines.
pub fn audit(a: AuditArgs) -> anyhow::Result<()> {
    let filter = Filter::new(&a)?;
    let all = records(&a.data_dir)?;
    let selected = all.iter().filter(|v| filter.matches(v));
    if a.json {
        for v in selected {
            outln!("{}", serde_json::to_string(v)?);
        }
        return Ok(());
    }
    outln!(
        "{:<20} {:<22} {:<58} {:<26} {:<36}",
        "time",
        "event",
        "principal",
        "result",
        "request id"
    );
    for v in selected {
        outln!(
            "{:<20} {:<22} {:<58} {:<26} {:<36}",
            v.event_time,
            v.event_name,
            v.user_identity.arn(),
            v.error_code.as_deref().unwrap_or("OK"),
            v.request_id,
        );
        if let Some(r) = v.resources.first() {
            outln!("{:<20} on {}", "", r.arn);
        }
    }
    Ok(())
}

/// `ferrokms policy explain --request-id`: what a recorded request asked,
/// how it was decided, and for a denial what would allow it.
pub fn explain(a: ExplainArgs) -> anyhow::Result<()> {
    let all = records(&a.data_dir)?;
    let Some(v) = all.iter().rev().find(|v| v.request_id == a.request_id) else {
        bail!("no audit record with request id '{}'", a.request_id);
    };
    let caller = v.user_identity.arn();
    let role = v.user_identity.session_issuer_arn().unwrap_or("");
    let caller_account = v.user_identity.account_id();
    let decisions = v.decisions();
    let mut suggestions = Vec::new();
    // The context the condition checks used (set when one named a failed
    // condition).
    let mut condition_context: Option<Vec<String>> = None;
    for d in decisions.iter().filter(|d| !d.allowed) {
        // A denial no Deny decided: does a statement allow it but for its
        // condition? Checked in the data dir's policies as they are now,
        // with the context the record keeps; skipped (with a note) when
        // the data dir cannot be read or the key is gone.
        if v.event_source == "kms.amazonaws.com"
            && !matches!(d.reason, ferrokms_authz::Reason::ExplicitDeny(_))
        {
            let data = crate::analyze::DataArgs {
                data_dir: a.data_dir.clone(),
                root_key_file: a.root_key_file.clone(),
                store: a.store.clone(),
                store_password_file: a.store_password_file.clone(),
                region: match v.aws_region.as_str() {
                    "" => "us-east-1".to_string(),
                    r => r.to_string(),
                },
            };
            match crate::analyze::recorded_condition_failures(&data, v, d) {
                Ok((failures, given)) if !failures.is_empty() => {
                    suggestions.extend(failures);
                    condition_context = Some(given);
                    continue;
                }
                Ok(_) => {}
                Err(e) => eprintln!(
                    "note: the statements' conditions were not checked against the data dir's policies: {}",
                    crate::error_line(&e)
                ),
            }
        }
        let key_account = d.resource.split(':').nth(4).unwrap_or("").to_string();
        suggestions.extend(ferrokms_kms::explain::suggest(
            d,
            caller,
            (!role.is_empty()).then_some(role),
            caller_account,
            &key_account,
        ));
    }
    if a.json {
        let out = serde_json::json!({
            "record": v,
            "suggestions": suggestions,
            "condition_context": condition_context,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    outln!("Request {} at {}", a.request_id, v.event_time);
    outln!(
        "  who:    {caller}{}",
        if role.is_empty() {
            String::new()
        } else {
            format!(" (session of {role})")
        }
    );
    outln!("  what:   {} ({})", v.event_name, v.event_source);
    match v.error_code.as_deref() {
        None | Some("") => outln!("  result: allowed and performed"),
        Some(code) => outln!(
            "  result: {code}: {}",
            v.error_message.as_deref().unwrap_or("")
        ),
    }
    if decisions.is_empty() {
        outln!("  no authorization decision was recorded (the request failed before it, or the operation needs none)");
    }
    for d in &decisions {
        outln!();
        outln!(
            "  {} on {}: {}",
            d.action,
            d.resource,
            if d.allowed {
                "ALLOWED".to_string()
            } else {
                format!("DENIED {}", d.decision)
            }
        );
        if d.statements.is_empty() {
            outln!("    no statement applied");
        }
        for st in &d.statements {
            outln!("    applied: {st}");
        }
    }
    if !suggestions.is_empty() {
        outln!();
        outln!("  What would allow it:");
        for sug in &suggestions {
            outln!("    - {sug}");
        }
        if let Some(given) = &condition_context {
            outln!(
                "  (conditions checked against the policies as they are now, with what the record keeps of the request: {})",
                if given.is_empty() {
                    "nothing".to_string()
                } else {
                    given.join(", ")
                }
            );
        }
    }
    Ok(())
}
