//! `ferrokms policy lint`, `ferrokms policy simulate` and `ferrokms key
//! access`: static and what-if analysis of policies and of the live data.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use ferrokms_iam::{Directory, Principal};
use ferrokms_kms::authz::{AuthzRecord, CallerPolicy, CallerProfile};
use ferrokms_kms::explain::{access_denied_message, suggest, AppliedStatement};
use ferrokms_kms::lint::{self, LintKind};
use ferrokms_kms::{Caller, Kms};
use ferrokms_policy::{Context, ContextValue, ParseOptions, Policy, PolicyKind, PrincipalId};
use ferrokms_server::setup::{self, Options, Storage};
use ferrokms_types::{AccountId, Region};
use serde_json::{json, Value};

#[derive(Args)]
pub struct LintArgs {
    /// The policy document (JSON).
    file: PathBuf,
    /// key (a KMS key policy), identity (an IAM policy) or trust (a role trust policy).
    #[arg(long, default_value = "key")]
    kind: String,
    /// Findings as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct DataArgs {
    /// The data directory of the server (it may be running).
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    pub(crate) data_dir: PathBuf,
    /// Root key file; default DATA_DIR/root.key.
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE")]
    pub(crate) root_key_file: Option<PathBuf>,
    /// The PostgreSQL database of the nodes, when they share one
    /// (postgres://...); the data dir then only supplies the root key.
    #[arg(long, env = "FERROKMS_STORE")]
    pub(crate) store: Option<String>,
    #[arg(long, default_value = "us-east-1")]
    pub(crate) region: String,
}

#[derive(Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    data: DataArgs,
    /// A user ARN, a role ARN (a session of it is simulated), an assumed-role
    /// session ARN, an account root ARN or a 12-digit account id.
    #[arg(long)]
    principal: String,
    /// The action, e.g. kms:Sign.
    #[arg(long)]
    action: String,
    /// The key: id, ARN, alias name or alias ARN.
    #[arg(long)]
    key: String,
    /// KEY=VALUE condition keys of the request (kms:EncryptionContext:k=v,
    /// aws:SourceIp=...); repeat a key for a multivalued one.
    #[arg(long = "context")]
    context: Vec<String>,
    /// A grant token the request would carry (must name an existing grant).
    #[arg(long)]
    grant_token: Vec<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Who can do what with a key: every known principal, the actions it may
    /// perform, by which path and under which conditions.
    Access(KeyAccessArgs),
}

#[derive(Args)]
pub struct KeyAccessArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The key: id, ARN, alias name or alias ARN.
    key: String,
    #[arg(long)]
    json: bool,
}

// ------------------------------------------------------------------ lint

/// Exit status: 1 with any error finding, 0 otherwise, 2 for unreadable input.
pub fn lint_cmd(args: LintArgs) -> i32 {
    let kind = match args.kind.as_str() {
        "key" => LintKind::Key,
        "identity" => LintKind::Identity,
        "trust" => LintKind::Trust,
        other => {
            eprintln!("ferrokms: --kind must be key, identity or trust, not '{other}'");
            return 2;
        }
    };
    let text = match std::fs::read(&args.file) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(_) => {
                eprintln!("ferrokms: {} is not UTF-8", args.file.display());
                return 2;
            }
        },
        Err(e) => {
            eprintln!("ferrokms: cannot read {}: {e}", args.file.display());
            return 2;
        }
    };
    let findings = lint::lint(&text, kind);
    if args.json {
        let v = json!({
            "file": args.file.display().to_string(),
            "findings": findings,
        });
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else if findings.is_empty() {
        outln!("{}: no findings", args.file.display());
    } else {
        for f in &findings {
            let at = match (f.statement, &f.sid) {
                (Some(i), Some(s)) => format!(" statement #{i} (Sid \"{s}\")"),
                (Some(i), None) => format!(" statement #{i}"),
                _ => String::new(),
            };
            outln!(
                "{}:{at} {} {}: {}",
                args.file.display(),
                f.severity.as_str(),
                f.code,
                f.message
            );
        }
    }
    if findings.iter().any(|f| f.severity == lint::Severity::Error) {
        1
    } else {
        0
    }
}

// ------------------------------------------------------------ live data

pub(crate) struct Live {
    pub(crate) directory: Directory,
    pub(crate) kms: Kms,
    pub(crate) region: Region,
}

pub(crate) fn open_live(d: &DataArgs) -> anyhow::Result<Live> {
    let storage = match &d.store {
        Some(url) => Storage::Postgres {
            url: url.clone(),
            dir: d.data_dir.clone(),
        },
        None => {
            if !d.data_dir.join(setup::DATABASE_FILE).is_file() {
                bail!(
                    "{} is not a ferrokms data directory (no {})",
                    d.data_dir.display(),
                    setup::DATABASE_FILE
                );
            }
            Storage::DataDir(d.data_dir.clone())
        }
    };
    let opts = Options {
        storage,
        root_key_file: d.root_key_file.clone(),
        dev_account: None,
        bootstrap: None,
        via_service_principals: Vec::new(),
        max_staleness: std::time::Duration::ZERO,
    };
    let (store, sealer) = setup::open_store(&opts)?;
    let directory = Directory::open(store.clone(), sealer.clone())?;
    let kms = Kms::open(store, sealer)?;
    let region = Region::parse(&d.region).map_err(|e| anyhow::anyhow!("--region: {e}"))?;
    Ok(Live {
        directory,
        kms,
        region,
    })
}

/// The principal an ARN names, as the directory knows it. A role ARN means a
/// session of the role named `simulated`.
fn resolve_principal(dir: &Directory, text: &str) -> anyhow::Result<Principal> {
    let account_of = |a: &str| {
        AccountId::parse(a).map_err(|_| anyhow::anyhow!("'{text}': bad account id '{a}'"))
    };
    if text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Principal::Root {
            account: account_of(text)?,
        });
    }
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        bail!("'{text}' is not a principal ARN or account id");
    }
    let (service, account, resource) = (parts[2], account_of(parts[4])?, parts[5]);
    let last = resource.rsplit('/').next().unwrap_or(resource);
    let role = |name: &str, session: &str| -> anyhow::Result<Principal> {
        let r = dir
            .find_role(&account, name)
            .ok_or_else(|| anyhow::anyhow!("no role named {name} in account {account}"))?;
        Ok(Principal::AssumedRole {
            account: account.clone(),
            role_name: r.name.clone(),
            role_path: r.path.clone(),
            role_id: r.id.clone(),
            session_name: session.to_string(),
        })
    };
    match (service, resource) {
        ("iam", "root") => Ok(Principal::Root { account }),
        ("iam", r) if r.starts_with("user/") => {
            let u = dir
                .find_user(&account, last)
                .ok_or_else(|| anyhow::anyhow!("no user named {last} in account {account}"))?;
            Ok(Principal::User {
                account: account.clone(),
                name: u.name.clone(),
                path: u.path.clone(),
                id: u.id.clone(),
            })
        }
        ("iam", r) if r.starts_with("role/") => role(last, "simulated"),
        ("sts", r) if r.starts_with("assumed-role/") => {
            let mut it = r.splitn(3, '/').skip(1);
            match (it.next(), it.next()) {
                (Some(name), Some(session)) => role(name, session),
                _ => bail!("'{text}' is not an assumed-role session ARN"),
            }
        }
        _ => bail!("'{text}' is not a user, role, assumed-role session or root ARN"),
    }
}

fn parse_context(pairs: &[String]) -> anyhow::Result<Context> {
    let mut values: Vec<(String, Vec<String>)> = Vec::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--context '{p}': expected KEY=VALUE"))?;
        match values.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(k)) {
            Some((_, vs)) => vs.push(v.to_string()),
            None => values.push((k.to_string(), vec![v.to_string()])),
        }
    }
    let mut ctx = Context::new();
    for (k, vs) in values {
        if vs.len() == 1 {
            ctx.insert(&k, vs[0].as_str());
        } else {
            ctx.insert_multi(&k, vs.into_iter().map(ContextValue::String).collect());
        }
    }
    Ok(ctx)
}

fn account_of_arn(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or("")
}

/// `ferrokms policy simulate`. Returns whether the request would be allowed.
pub fn simulate_cmd(args: SimulateArgs) -> anyhow::Result<bool> {
    let live = open_live(&args.data)?;
    let principal = resolve_principal(&live.directory, &args.principal)?;
    let caller = ferrokms_server::auth::caller_for(&live.directory, &principal, &live.region, None);
    let context = parse_context(&args.context)?;
    let record = live
        .kms
        .simulate(&caller, &args.key, &args.action, context.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // A request that carries grant tokens is refused outright when one is
    // invalid (InvalidGrantTokenException); otherwise each token's grant is
    // explained (grants already count in the decision above).
    let tokens: Vec<_> = args
        .grant_token
        .iter()
        .map(|t| {
            live.kms
                .grant_token_report(t, &caller, &record.resource, &record.action, &context)
        })
        .collect();
    if let Some(bad) = tokens.iter().find(|t| !t.valid) {
        if args.json {
            let v = json!({
                "allowed": false,
                "principal": caller.arn,
                "action": record.action,
                "resource": record.resource,
                "error": "InvalidGrantTokenException",
                "grant_tokens": tokens,
            });
            outln!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            outln!(
                "denied: {} {} on {}\n  InvalidGrantTokenException: {}",
                caller.arn,
                record.action,
                record.resource,
                bad.reasons.join("; ")
            );
        }
        return Ok(false);
    }
    let role_arn = principal.role_arn(live.region.partition());
    let suggestions = suggest(
        &record,
        &caller.arn,
        role_arn.as_deref(),
        caller.account.as_str(),
        account_of_arn(&record.resource),
    );
    let message = access_denied_message(&record, &caller.arn);
    if args.json {
        let v = json!({
            "allowed": record.allowed,
            "principal": caller.arn,
            "role_arn": role_arn,
            "action": record.action,
            "resource": record.resource,
            "decision": record.decision,
            "message": message,
            "statements": record.statements,
            "suggestions": suggestions,
            "grant_tokens": tokens,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!(
            "{}: {} {} on {}",
            if record.allowed { "allowed" } else { "denied" },
            caller.arn,
            record.action,
            record.resource
        );
        if let Some(r) = &role_arn {
            outln!("  (a session of {r})");
        }
        if record.allowed {
            outln!("  decision: {}", record.decision);
        }
        if let Some(m) = &message {
            outln!("  AccessDeniedException: {m}");
        }
        if record.statements.is_empty() {
            outln!("  statements that applied: none");
        } else {
            outln!("  statements that applied:");
            for s in &record.statements {
                outln!("    {s}");
            }
        }
        for t in &tokens {
            outln!(
                "  grant token: grant {} on {} for {} ({}): {}",
                t.grant_id.as_deref().unwrap_or("?"),
                t.key_arn.as_deref().unwrap_or("?"),
                t.grantee.as_deref().unwrap_or("?"),
                t.operations.join(", "),
                if t.applies {
                    "applies"
                } else {
                    "does not apply"
                }
            );
            for r in &t.reasons {
                outln!("    - {r}");
            }
        }
        if !suggestions.is_empty() {
            outln!("  to allow it:");
            for s in &suggestions {
                outln!("    - {s}");
            }
        }
    }
    Ok(record.allowed)
}

// ------------------------------------------------------------ key access

/// A copy of the policy without the conditions of its Allow statements
/// (statement indexes unchanged): what would be allowed if every condition held.
fn without_allow_conditions(policy: &Policy, kind: PolicyKind) -> Option<Policy> {
    let mut v: Value = serde_json::from_str(&policy.to_json_string()).ok()?;
    match v.get_mut("Statement")? {
        Value::Array(sts) => {
            for st in sts {
                strip(st);
            }
        }
        st => strip(st),
    }
    fn strip(st: &mut Value) {
        if st.get("Effect").and_then(Value::as_str) == Some("Allow") {
            if let Some(o) = st.as_object_mut() {
                o.remove("Condition");
            }
        }
    }
    Policy::parse(&v.to_string(), &ParseOptions::for_kind(kind)).ok()
}

/// Actions sharing a path and conditions: (path, conditions, actions).
type Group<'a> = (String, &'a Vec<(String, Value)>, Vec<&'static str>);

struct Access {
    action: &'static str,
    path: String,
    conditions: Vec<(String, Value)>,
}

/// Which policy statements allowed it, and their conditions.
fn classify(
    record: &AuthzRecord,
    key_policy: &Policy,
    caller_policies: &[CallerPolicy],
    is_root: bool,
) -> (String, Vec<(String, Value)>) {
    let applied: Vec<AppliedStatement> = record
        .statements
        .iter()
        .filter_map(|s| AppliedStatement::parse(s))
        .filter(|s| s.effect == "Allow")
        .collect();
    let statement_of = |a: &AppliedStatement| {
        if a.is_key_policy() {
            key_policy.statements().get(a.index)
        } else {
            caller_policies
                .iter()
                .find(|p| p.label == a.policy)
                .and_then(|p| p.policy.statements().get(a.index))
        }
    };
    let mut conditions = Vec::new();
    for a in &applied {
        if let Some(c) = statement_of(a).and_then(|s| s.condition()) {
            conditions.push((a.describe(), serde_json::to_value(c).unwrap_or(Value::Null)));
        }
    }
    let path = if record.decision.starts_with("allow (grant") {
        "grant".to_string()
    } else {
        let direct = is_root
            || applied.iter().any(|a| {
                a.is_key_policy()
                    && statement_of(a)
                        .and_then(|s| s.principal())
                        .is_some_and(|p| match p.spec() {
                            ferrokms_policy::PrincipalSpec::Wildcard => true,
                            ferrokms_policy::PrincipalSpec::Typed(es) => es
                                .iter()
                                .flat_map(|e| e.values())
                                .any(|v| !matches!(v.id(), PrincipalId::Account(_))),
                        })
            });
        if direct {
            "key policy".to_string()
        } else {
            let labels: Vec<&str> = applied
                .iter()
                .filter(|a| !a.is_key_policy())
                .map(|a| a.policy.as_str())
                .collect();
            format!("IAM via key-policy delegation ({})", labels.join(", "))
        }
    };
    (path, conditions)
}

fn principals_for(live: &Live, key_policy: &Policy) -> Vec<(String, &'static str, Principal)> {
    let mut out = Vec::new();
    let partition = live.region.partition();
    for a in live.directory.accounts() {
        let as_root = ferrokms_iam::Caller::root(a.id.clone());
        let root = as_root.principal.clone();
        let mut users = live
            .directory
            .list_users(&as_root, None)
            .unwrap_or_default();
        users.sort_by_key(|x| x.arn());
        let mut roles = live
            .directory
            .list_roles(&as_root, None)
            .unwrap_or_default();
        roles.sort_by_key(|x| x.arn());
        out.push((root.arn(partition), "account root", root));
        for u in users {
            out.push((
                u.arn(),
                "user",
                Principal::User {
                    account: u.account.clone(),
                    name: u.name.clone(),
                    path: u.path.clone(),
                    id: u.id.clone(),
                },
            ));
        }
        for r in roles {
            out.push((
                r.arn(),
                "role",
                Principal::AssumedRole {
                    account: r.account.clone(),
                    role_name: r.name.clone(),
                    role_path: r.path.clone(),
                    role_id: r.id.clone(),
                    session_name: "simulated".into(),
                },
            ));
        }
    }
    for st in key_policy.statements() {
        let Some(p) = st.principal() else { continue };
        let ids: Vec<&PrincipalId> = match p.spec() {
            // `"Principal": "*"`
            ferrokms_policy::PrincipalSpec::Wildcard => vec![&PrincipalId::Everyone],
            ferrokms_policy::PrincipalSpec::Typed(entries) => entries
                .iter()
                .flat_map(|e| e.values())
                .map(|v| v.id())
                .collect(),
        };
        for id in ids {
            let Some((kind, principal)) = external_principal(live, id) else {
                continue;
            };
            let arn = match id {
                PrincipalId::Everyone => "*".to_string(),
                _ => principal.arn(partition),
            };
            if !out.iter().any(|(n, _, _)| n == &arn) {
                out.push((arn, kind, principal));
            }
        }
    }
    out
}

/// The account that stands for "anyone" when a key policy names `"*"`: no
/// account the server knows, so only what the key policy grants to all
/// shows.
const ANYONE_ACCOUNT: &str = "999999999999";

/// A principal outside what this server knows, named in the key policy:
/// what Access Analyzer calls external. Key policies can name users and
/// roles only where they exist (so in known accounts); what remains is
/// accounts the server does not know, and `"*"`.
fn external_principal(live: &Live, id: &PrincipalId) -> Option<(&'static str, Principal)> {
    match id {
        PrincipalId::Everyone => Some((
            "anyone (Principal \"*\")",
            Principal::Root {
                account: AccountId::parse(ANYONE_ACCOUNT).ok()?,
            },
        )),
        PrincipalId::Account(a) => {
            let account = AccountId::parse(a.as_str()).ok()?;
            (!live.directory.account_exists(&account))
                .then_some(("external account", Principal::Root { account }))
        }
        _ => None,
    }
}

/// `ferrokms key access`.
pub fn key_access_cmd(args: KeyAccessArgs) -> anyhow::Result<()> {
    let live = open_live(&args.data)?;
    // The key's account: from its ARN, or the first account that has it.
    let accounts: Vec<AccountId> = match args.key.starts_with("arn:") {
        true => vec![AccountId::parse(account_of_arn(&args.key))
            .map_err(|_| anyhow::anyhow!("'{}': bad account in ARN", args.key))?],
        false => live
            .directory
            .accounts()
            .into_iter()
            .map(|a| a.id)
            .collect(),
    };
    let mut found = None;
    for a in &accounts {
        let root = Caller::root(a.clone(), live.region.clone());
        if let Ok(k) = live.kms.key_policy_snapshot(&root, &args.key) {
            found = Some(k);
            break;
        }
    }
    let (key_arn, key_policy) =
        found.with_context(|| format!("no key '{}' in {}", args.key, live.region))?;
    let stripped_key =
        without_allow_conditions(&key_policy, PolicyKind::ResourceBased).context("key policy")?;
    let actions = lint::key_actions();
    let mut report = Vec::new();
    for (arn, kind, principal) in principals_for(&live, &key_policy) {
        let caller =
            ferrokms_server::auth::caller_for(&live.directory, &principal, &live.region, None);
        let profile = caller.identity.profile.clone();
        let stripped_caller = Caller {
            identity: std::sync::Arc::new(ferrokms_kms::authz::CallerIdentity {
                profile: std::sync::Arc::new(CallerProfile {
                    principal: profile.principal.clone(),
                    policies: profile
                        .policies
                        .iter()
                        .map(|p| CallerPolicy {
                            label: p.label.clone(),
                            kind: p.kind,
                            policy: without_allow_conditions(&p.policy, p.kind)
                                .map(std::sync::Arc::new)
                                .unwrap_or_else(|| p.policy.clone()),
                        })
                        .collect(),
                    context: profile.context.clone(),
                }),
                context: caller.identity.context.clone(),
                trace: Default::default(),
            }),
            ..caller.clone()
        };
        let is_root = matches!(principal, Principal::Root { .. });
        let mut access = Vec::new();
        for action in &actions {
            let rec = live
                .kms
                .simulate(&caller, &key_arn, action, Context::new())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if rec.allowed {
                let (path, conditions) = classify(&rec, &key_policy, &profile.policies, is_root);
                access.push(Access {
                    action,
                    path,
                    conditions,
                });
                continue;
            }
            let rec = live
                .kms
                .simulate_with(
                    &stripped_caller,
                    &key_arn,
                    action,
                    Context::new(),
                    Some(&stripped_key),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if rec.allowed {
                let (path, conditions) = classify(&rec, &key_policy, &profile.policies, is_root);
                access.push(Access {
                    action,
                    path,
                    conditions,
                });
            }
        }
        report.push((arn, kind, access));
    }
    if args.json {
        let principals: Vec<Value> = report
            .iter()
            .map(|(arn, kind, access)| {
                json!({
                    "principal": arn,
                    "kind": kind,
                    "access": access.iter().map(|a| json!({
                        "action": format!("kms:{}", a.action),
                        "path": a.path,
                        "conditional": !a.conditions.is_empty(),
                        "conditions": a.conditions.iter().map(|(s, c)| json!({"statement": s, "condition": c})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"key": key_arn, "principals": principals}))?
        );
        return Ok(());
    }
    outln!("key {key_arn}");
    for (arn, kind, access) in &report {
        outln!("{arn} ({kind})");
        if access.is_empty() {
            outln!("  no access");
            continue;
        }
        // Actions grouped by path and conditions, in first-seen order.
        let mut groups: Vec<Group<'_>> = Vec::new();
        for a in access {
            match groups
                .iter_mut()
                .find(|(p, c, _)| *p == a.path && **c == a.conditions)
            {
                Some((_, _, acts)) => acts.push(a.action),
                None => groups.push((a.path.clone(), &a.conditions, vec![a.action])),
            }
        }
        for (path, conditions, acts) in groups {
            let all = acts.len() == actions.len();
            let list = if all {
                format!("all {} key actions", acts.len())
            } else {
                acts.join(", ")
            };
            if conditions.is_empty() {
                outln!("  {path}: {list}");
            } else {
                outln!("  conditional, {path}: {list}");
                for (s, c) in conditions {
                    outln!("    {s}: {c}");
                }
            }
        }
    }
    Ok(())
}

/// Runs a subcommand whose result is a yes/no answer: 0 yes, 1 no, 2 error.
pub fn exit_with(r: anyhow::Result<bool>) -> ! {
    match r {
        Ok(true) => std::process::exit(0),
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("ferrokms: {e:#}");
            std::process::exit(2)
        }
    }
}

/// `ferrokms key ...`.
pub fn key_cmd(cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Access(args) => key_access_cmd(args),
    }
}
