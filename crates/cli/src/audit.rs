//! `ferrokms audit` and `ferrokms policy explain`: reading the audit trail
//! the server writes under `DATA_DIR/audit/` (also while it runs).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

use crate::when;

#[derive(Args)]
pub struct AuditArgs {
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    pub data_dir: PathBuf,
    /// Only requests on this key (key id or key ARN).
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
}

/// Every audit record of a data dir, oldest first.
fn records(data_dir: &Path) -> anyhow::Result<Vec<Value>> {
    let files = ferrokms_server::audit::files(data_dir);
    if files.is_empty() {
        bail!(
            "no audit trail in {} (the server writes {}/{} once it has served a request)",
            data_dir.display(),
            ferrokms_server::audit::AUDIT_DIR,
            ferrokms_server::audit::AUDIT_FILE
        );
    }
    let mut out = Vec::new();
    for f in files {
        let file =
            std::fs::File::open(&f).with_context(|| format!("cannot read {}", f.display()))?;
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            // A record cut short by a crash is skipped, not fatal.
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or("")
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

/// The selection `audit` makes, parsed from its arguments.
struct Filter<'a> {
    args: &'a AuditArgs,
    since: Option<when::Instant>,
    until: Option<when::Instant>,
}

impl<'a> Filter<'a> {
    fn new(args: &'a AuditArgs) -> Result<Filter<'a>, UsageError> {
        let now = when::now();
        let time =
            |flag: &str, text: &Option<String>| -> Result<Option<when::Instant>, UsageError> {
                text.as_deref()
                    .map(|t| {
                        when::parse_arg(t, now).ok_or_else(|| {
                            UsageError(format!(
                                "{flag} '{t}' is not a time: give {}",
                                when::ACCEPTED
                            ))
                        })
                    })
                    .transpose()
            };
        let since = time("--since", &args.since)?;
        let until = time("--until", &args.until)?;
        if let (Some(s), Some(u)) = (since, until) {
            if s >= u {
                return Err(UsageError(format!(
                    "--since '{}' is not before --until '{}': no record could match",
                    args.since.as_deref().unwrap_or_default(),
                    args.until.as_deref().unwrap_or_default()
                )));
            }
        }
        Ok(Filter { args, since, until })
    }

    fn matches(&self, v: &Value) -> bool {
        let a = self.args;
        if let Some(k) = &a.key {
            let on_key = v["resources"].as_array().is_some_and(|rs| {
                rs.iter()
                    .any(|r| s(r, &["ARN"]) == k || s(r, &["ARN"]).ends_with(&format!("key/{k}")))
            }) || s(v, &["requestParameters", "keyId"]) == k;
            if !on_key {
                return false;
            }
        }
        if let Some(p) = &a.principal {
            let who = s(v, &["userIdentity", "arn"]) == p
                || s(
                    v,
                    &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
                ) == p;
            if !who {
                return false;
            }
        }
        if let Some(e) = &a.event_name {
            if !s(v, &["eventName"]).eq_ignore_ascii_case(e) {
                return false;
            }
        }
        if let Some(c) = &a.error_code {
            if s(v, &["errorCode"]) != c {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            // A record without a readable time cannot be shown to be in
            // the range.
            let Some(t) = when::parse_rfc3339(s(v, &["eventTime"])) else {
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
            outln!("{v}");
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
        let result = match s(v, &["errorCode"]) {
            "" => "OK".to_string(),
            code => code.to_string(),
        };
        outln!(
            "{:<20} {:<22} {:<58} {:<26} {:<36}",
            s(v, &["eventTime"]),
            s(v, &["eventName"]),
            s(v, &["userIdentity", "arn"]),
            result,
            s(v, &["requestID"]),
        );
        if let Some(r) = v["resources"].as_array().and_then(|r| r.first()) {
            outln!("{:<20} on {}", "", s(r, &["ARN"]));
        }
    }
    Ok(())
}

/// `ferrokms policy explain --request-id`: what a recorded request asked,
/// how it was decided, and for a denial what would allow it.
pub fn explain(a: ExplainArgs) -> anyhow::Result<()> {
    let all = records(&a.data_dir)?;
    let Some(v) = all
        .iter()
        .rev()
        .find(|v| s(v, &["requestID"]) == a.request_id)
    else {
        bail!("no audit record with request id '{}'", a.request_id);
    };
    let caller = s(v, &["userIdentity", "arn"]).to_string();
    let role = s(
        v,
        &["userIdentity", "sessionContext", "sessionIssuer", "arn"],
    )
    .to_string();
    let caller_account = s(v, &["userIdentity", "accountId"]).to_string();
    let decisions = ferrokms_kms::authz::AuthzRecord::from_audit(v);
    let mut suggestions = Vec::new();
    for d in decisions.iter().filter(|d| !d.allowed) {
        let key_account = d.resource.split(':').nth(4).unwrap_or("").to_string();
        suggestions.extend(ferrokms_kms::explain::suggest(
            d,
            &caller,
            (!role.is_empty()).then_some(role.as_str()),
            &caller_account,
            &key_account,
        ));
    }
    if a.json {
        let out = serde_json::json!({"record": v, "suggestions": suggestions});
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    outln!("Request {} at {}", a.request_id, s(v, &["eventTime"]));
    outln!(
        "  who:    {caller}{}",
        if role.is_empty() {
            String::new()
        } else {
            format!(" (session of {role})")
        }
    );
    outln!(
        "  what:   {} ({})",
        s(v, &["eventName"]),
        s(v, &["eventSource"])
    );
    match s(v, &["errorCode"]) {
        "" => outln!("  result: allowed and performed"),
        code => outln!("  result: {code}: {}", s(v, &["errorMessage"])),
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
    }
    Ok(())
}
