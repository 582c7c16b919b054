//! `ferrokms policy lint`, `ferrokms policy simulate` and `ferrokms key
//! access`: static and what-if analysis of policies and of the live data.
//!
//! The commands (and `policy explain`, through
//! [`recorded_condition_failures`]) share the opening of the live data
//! ([`open_live`]); principal resolution, the simulation and the search for
//! the condition that failed are `ferrokms_server::simulate`, which the
//! server's SimulateKeyRequest answers with too.

use ferrokms_server::audit::AuditRecord;
use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use ferrokms_iam::{Directory, Principal};
use ferrokms_kms::authz::{AuthzRecord, CallerPolicy, CallerProfile};
use ferrokms_kms::explain::AppliedStatement;
use ferrokms_kms::lint::{self, LintKind};
use ferrokms_kms::{Caller, Kms};
use ferrokms_policy::{Context, ParseOptions, Policy, PolicyKind, PrincipalId};
use ferrokms_server::setup::{self, Options, Storage};
use ferrokms_server::simulate::{
    account_of_arn, condition_failures, parse_context, resolve_principal, Given, PrincipalFacts,
    Search,
};
use ferrokms_types::{AccountId, Region};
use serde_json::{json, Value};

#[derive(Args)]
pub struct LintArgs {
    /// The policy document (JSON).
    file: PathBuf,
    /// key (a KMS key policy), identity (an IAM policy) or trust (a role trust
    /// policy). A document without Principal linted as key suggests identity.
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
    /// A file holding the password of --store's PostgreSQL user, for a URL
    /// without one: keeps the password off the command line (where `ps`
    /// shows it) and out of the environment.
    #[arg(long, env = "FERROKMS_STORE_PASSWORD_FILE", requires = "store")]
    pub(crate) store_password_file: Option<PathBuf>,
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
    /// perform, by the strongest path and under which conditions.
    ///
    /// The first line sums up: external access (accounts the server does not
    /// know, and "*"), and what every principal of each known account may do
    /// through the key policy alone, regardless of IAM. Per principal and
    /// action, a path that needs nothing of the request comes before one
    /// that does, then the key policy naming the principal before IAM
    /// through delegation before a grant. Conditions the principal itself
    /// decides (kms:CallerAccount, aws:PrincipalAccount, aws:PrincipalArn,
    /// principal tags, ...) are evaluated for it: met, they are no
    /// restriction and are not listed; failed, the statement does not apply.
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
    /// Every (principal class, path, actions) that can use the key, from
    /// the whole-space analysis (docs/analysis.md): proven complete, with an
    /// example request for conditional access, or "unknown" (exit status 1)
    /// with the construct the analysis does not cover.
    #[arg(long)]
    exact: bool,
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
            password: crate::config::store_password(d.store_password_file.as_deref())?,
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
        root_key_file: d.root_key_file.clone(),
        create: false,
        ..Options::new(storage)
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

/// `ferrokms policy simulate`. Returns whether the request would be allowed.
pub fn simulate_cmd(args: SimulateArgs) -> anyhow::Result<bool> {
    let live = open_live(&args.data)?;
    let principal = resolve_principal(&live.directory, &args.principal)?;
    let caller = ferrokms_server::auth::caller_for(&live.directory, &principal, &live.region, None);
    let role_arn = principal.role_arn(live.region.partition());
    let answer = ferrokms_server::simulate::simulate(
        &live.kms,
        &live.region,
        &caller,
        role_arn,
        ferrokms_server::simulate::Request {
            key: &args.key,
            action: &args.action,
            given: &args.context,
            tokens: &args.grant_token,
            max_evaluations: usize::MAX,
        },
    )?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&answer.to_json())?);
    } else {
        for line in answer.to_text() {
            outln!("{line}");
        }
    }
    Ok(answer.allowed)
}

/// The request's condition keys an audit record allows rebuilding, as
/// `KEY=VALUE` (a key repeated for a multivalued one): its encryption
/// context, the algorithms and other parameters KMS turns into condition
/// keys, and the source address.
pub(crate) fn record_context(record: &AuditRecord) -> Vec<String> {
    let p = record
        .request_parameters
        .as_ref()
        .unwrap_or(&serde_json::Value::Null);
    let mut out = Vec::new();
    if let Some(ec) = p["encryptionContext"].as_object() {
        for (k, v) in ec {
            let v = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            out.push(format!("kms:EncryptionContext:{k}={v}"));
        }
        for k in ec.keys() {
            out.push(format!("kms:EncryptionContextKeys={k}"));
        }
    }
    for (param, key) in [
        ("signingAlgorithm", "kms:SigningAlgorithm"),
        ("messageType", "kms:MessageType"),
        ("encryptionAlgorithm", "kms:EncryptionAlgorithm"),
        ("keyAgreementAlgorithm", "kms:KeyAgreementAlgorithm"),
        ("macAlgorithm", "kms:MacAlgorithm"),
        ("keyPairSpec", "kms:DataKeyPairSpec"),
        ("granteePrincipal", "kms:GranteePrincipal"),
        ("retiringPrincipal", "kms:RetiringPrincipal"),
        ("granteeServicePrincipal", "kms:GranteeServicePrincipal"),
        ("retiringServicePrincipal", "kms:RetiringServicePrincipal"),
    ] {
        if let Some(v) = p[param].as_str() {
            out.push(format!("{key}={v}"));
        }
    }
    for op in p["operations"].as_array().into_iter().flatten() {
        if let Some(op) = op.as_str() {
            out.push(format!("kms:GrantOperations={op}"));
        }
    }
    if let Some(ip) = record
        .source_ip_address
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        out.push(format!("aws:SourceIp={ip}"));
    }
    out
}

/// For a denied KMS request of an audit record: the statements of the data
/// dir's policies (as they are now) that would allow it but for their
/// condition, each with the failing entry and the value that is missing or
/// does not match, in the context [`record_context`] rebuilds. Returns the
/// rebuilt context too.
pub(crate) fn recorded_condition_failures(
    data: &DataArgs,
    record: &AuditRecord,
    decision: &AuthzRecord,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let live = open_live(data)?;
    let caller_arn = record.user_identity.arn();
    let principal = resolve_principal(&live.directory, caller_arn)?;
    let caller = ferrokms_server::auth::caller_for(&live.directory, &principal, &live.region, None);
    let given = record_context(record);
    let context = parse_context(&given)?;
    let failures = condition_failures(
        &live.kms,
        &live.region,
        &caller,
        decision,
        &context,
        &given,
        Search {
            from: Given::Record,
            max_evaluations: usize::MAX,
        },
    )?;
    Ok((failures, given))
}

// ------------------------------------------------------------ key access

/// An Allow statement's condition, for one principal.
enum Resolved {
    /// No condition, or only conditions the principal meets.
    Holds,
    /// What remains once the principal's own conditions are met: what a
    /// request must carry.
    Residual(Value),
    /// A condition the principal fails: the statement never applies to it.
    Never,
}

fn resolve_condition(
    condition: &Value,
    version: Option<&Value>,
    facts: &PrincipalFacts,
) -> Resolved {
    let Some(blocks) = condition.as_object() else {
        return Resolved::Residual(condition.clone());
    };
    let mut residual = serde_json::Map::new();
    for (operator, entries) in blocks {
        let Some(entries) = entries.as_object() else {
            residual.insert(operator.clone(), entries.clone());
            continue;
        };
        for (key, values) in entries {
            if !facts.decides(key) {
                residual
                    .entry(operator.clone())
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|o| o.insert(key.clone(), values.clone()));
            } else if !facts.holds(version, operator, key, values) {
                return Resolved::Never;
            }
        }
    }
    if residual.is_empty() {
        Resolved::Holds
    } else {
        Resolved::Residual(Value::Object(residual))
    }
}

/// A policy as one principal sees it: `unconditional` keeps the Allow
/// statements that apply to it whatever the request (their conditions met
/// by the principal itself), `conditional` every Allow statement that may
/// apply given the right request (conditions left out); `residual` is, per
/// statement index, what a request must carry for it. Deny statements are
/// kept as they are in both. Statement indexes are unchanged.
struct PolicyView {
    unconditional: Policy,
    conditional: Policy,
    residual: Vec<Option<Value>>,
}

/// An action no request has: a statement that must not apply.
const NEVER_ACTION: &str = "ferrokms:NoActionForAnalysis";

fn policy_view(policy: &Policy, kind: PolicyKind, facts: &PrincipalFacts) -> Option<PolicyView> {
    let v: Value = serde_json::from_str(&policy.to_json_string()).ok()?;
    let version = v.get("Version").cloned();
    let statements: Vec<Value> = match v.get("Statement")? {
        Value::Array(sts) => sts.clone(),
        st => vec![st.clone()],
    };
    let (mut unconditional, mut conditional) = (Vec::new(), Vec::new());
    let mut residual = Vec::new();
    for st in statements {
        let allow = st.get("Effect").and_then(Value::as_str) == Some("Allow");
        let resolved = match st.get("Condition") {
            Some(c) if allow => resolve_condition(c, version.as_ref(), facts),
            _ => Resolved::Holds,
        };
        let without_condition = |st: &Value| {
            let mut st = st.clone();
            if allow {
                if let Some(o) = st.as_object_mut() {
                    o.remove("Condition");
                }
            }
            st
        };
        let disabled = |st: &Value| {
            let mut st = st.clone();
            if let Some(o) = st.as_object_mut() {
                o.remove("Condition");
                o.remove("NotAction");
                o.insert("Action".into(), json!(NEVER_ACTION));
            }
            st
        };
        match resolved {
            Resolved::Holds => {
                unconditional.push(without_condition(&st));
                conditional.push(without_condition(&st));
                residual.push(None);
            }
            Resolved::Residual(r) => {
                unconditional.push(disabled(&st));
                conditional.push(without_condition(&st));
                residual.push(Some(r));
            }
            Resolved::Never => {
                unconditional.push(disabled(&st));
                conditional.push(disabled(&st));
                residual.push(None);
            }
        }
    }
    let build = |statements: Vec<Value>| {
        let mut doc = v.clone();
        doc["Statement"] = Value::Array(statements);
        Policy::parse(&doc.to_string(), &ParseOptions::for_kind(kind)).ok()
    };
    Some(PolicyView {
        unconditional: build(unconditional)?,
        conditional: build(conditional)?,
        residual,
    })
}

/// A caller whose identity-side policies are replaced by `pick` of their
/// views.
fn caller_with(
    caller: &Caller,
    views: &[(CallerPolicy, PolicyView)],
    pick: fn(&PolicyView) -> &Policy,
) -> Caller {
    let profile = &caller.profile;
    Caller {
        profile: std::sync::Arc::new(CallerProfile {
            principal: profile.principal.clone(),
            policies: views
                .iter()
                .map(|(p, view)| CallerPolicy {
                    label: p.label.clone(),
                    kind: p.kind,
                    policy: std::sync::Arc::new(pick(view).clone()),
                })
                .collect(),
            context: profile.context.clone(),
        }),
        ..caller.clone()
    }
}

/// Actions sharing a path and conditions: (path, conditions, conditional, actions).
type Group<'a> = (String, &'a Vec<(String, Value)>, bool, Vec<&'static str>);

struct Access {
    action: &'static str,
    /// Allowed only for requests that carry what `conditions` say.
    conditional: bool,
    path: String,
    /// What a request must carry, per statement of the path ("statement:
    /// condition"); empty when the path needs nothing of the request.
    conditions: Vec<(String, Value)>,
}

/// The strongest path among the Allow statements that applied, and what
/// its statements need of the request: the key policy naming the
/// principal (or its root) directly, else IAM through the key policy's
/// delegation to the account, else a grant.
fn classify(
    record: &AuthzRecord,
    key_policy: &Policy,
    key_view: &PolicyView,
    caller_views: &[(CallerPolicy, PolicyView)],
    is_root: bool,
) -> (String, Vec<(String, Value)>) {
    let applied: Vec<AppliedStatement> = record
        .statements
        .iter()
        .filter_map(|s| AppliedStatement::parse(s))
        .filter(|s| s.effect == "Allow")
        .collect();
    if record.reason == ferrokms_authz::Reason::AllowedByGrant {
        return ("grant".to_string(), Vec::new());
    }
    let residual_of = |a: &AppliedStatement| -> Option<Value> {
        let view = if a.is_key_policy() {
            Some(key_view)
        } else {
            caller_views
                .iter()
                .find(|(p, _)| p.label == a.policy)
                .map(|(_, v)| v)
        };
        view.and_then(|v| v.residual.get(a.index).cloned().flatten())
    };
    let names_principal = |a: &AppliedStatement| {
        a.is_key_policy()
            && key_policy
                .statements()
                .get(a.index)
                .and_then(|s| s.principal())
                .is_some_and(|p| match p.spec() {
                    ferrokms_policy::PrincipalSpec::Wildcard => true,
                    ferrokms_policy::PrincipalSpec::Typed(es) => es
                        .iter()
                        .flat_map(ferrokms_policy::PrincipalEntry::values)
                        .any(|v| !matches!(v.id(), PrincipalId::Account(_))),
                })
    };
    let direct: Vec<&AppliedStatement> = applied
        .iter()
        .filter(|a| is_root && a.is_key_policy() || names_principal(a))
        .collect();
    let (path, on_path): (String, Vec<&AppliedStatement>) = if !direct.is_empty() {
        ("key policy".to_string(), direct)
    } else {
        let labels: Vec<&str> = applied
            .iter()
            .filter(|a| !a.is_key_policy())
            .map(|a| a.policy.as_str())
            .collect();
        (
            format!("IAM via key-policy delegation ({})", labels.join(", ")),
            applied.iter().collect(),
        )
    };
    // Statements of one policy kind are alternatives: one that needs
    // nothing of the request makes the others' conditions moot. Kinds
    // (key policy, identity policies, boundary, session policy) must all
    // allow.
    let kind_of = |a: &AppliedStatement| {
        if a.is_key_policy() {
            None
        } else {
            caller_views
                .iter()
                .find(|(p, _)| p.label == a.policy)
                .map(|(p, _)| p.kind)
        }
    };
    let mut conditions = Vec::new();
    for a in &on_path {
        let kind = kind_of(a);
        let alternatives: Vec<&&AppliedStatement> =
            on_path.iter().filter(|b| kind_of(b) == kind).collect();
        if alternatives.iter().any(|b| residual_of(b).is_none()) {
            continue;
        }
        if let Some(c) = residual_of(a) {
            conditions.push((a.describe(), c));
        }
    }
    (path, conditions)
}

/// What one principal may do with the key: per action, the strongest path.
fn principal_access(
    live: &Live,
    key_arn: &str,
    key_policy: &Policy,
    principal: &Principal,
    actions: &[&'static str],
) -> anyhow::Result<Vec<Access>> {
    let caller = ferrokms_server::auth::caller_for(&live.directory, principal, &live.region, None);
    let facts = PrincipalFacts::of(&caller)
        .with_context(|| format!("cannot analyse principal {}", caller.arn))?;
    let key_view = policy_view(key_policy, PolicyKind::ResourceBased, &facts)
        .context("cannot analyse the key policy")?;
    let mut caller_views = Vec::new();
    for p in &caller.profile.policies {
        let view = policy_view(&p.policy, p.kind, &facts)
            .with_context(|| format!("cannot analyse {}", p.label))?;
        caller_views.push((p.clone(), view));
    }
    let unconditional = caller_with(&caller, &caller_views, |v| &v.unconditional);
    let conditional = caller_with(&caller, &caller_views, |v| &v.conditional);
    let is_root = matches!(principal, Principal::Root { .. });
    let mut access = Vec::new();
    for action in actions {
        for (is_conditional, who, policy) in [
            (false, &unconditional, &key_view.unconditional),
            (true, &conditional, &key_view.conditional),
        ] {
            let rec = live
                .kms
                .simulate_with(who, key_arn, action, Context::new(), Some(policy))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if rec.allowed {
                let (path, conditions) =
                    classify(&rec, key_policy, &key_view, &caller_views, is_root);
                access.push(Access {
                    action,
                    conditional: is_conditional,
                    path,
                    conditions,
                });
                break;
            }
        }
    }
    Ok(access)
}

pub(crate) fn principals_for(
    live: &Live,
    key_policy: &Policy,
) -> Vec<(String, &'static str, Principal)> {
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
                .flat_map(ferrokms_policy::PrincipalEntry::values)
                .map(ferrokms_policy::PrincipalValue::id)
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
    if args.exact {
        if !crate::exact::exact_access(&live, &key_arn, key_policy, args.json)? {
            std::process::exit(1);
        }
        return Ok(());
    }
    let actions = lint::key_actions();
    let mut report = Vec::new();
    for (arn, kind, principal) in principals_for(&live, &key_policy) {
        let access = principal_access(&live, &key_arn, &key_policy, &principal, &actions)?;
        report.push((arn, kind, access));
    }
    let summary = summary(&live, &key_arn, &key_policy, &actions, &report)?;
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
                        "conditional": a.conditional,
                        "conditions": a.conditions.iter().map(|(s, c)| json!({"statement": s, "condition": c})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"key": key_arn, "summary": summary, "principals": principals})
            )?
        );
        return Ok(());
    }
    outln!("summary: {summary}");
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
            match groups.iter_mut().find(|(p, c, conditional, _)| {
                *p == a.path && **c == a.conditions && *conditional == a.conditional
            }) {
                Some((_, _, _, acts)) => acts.push(a.action),
                None => groups.push((a.path.clone(), &a.conditions, a.conditional, vec![a.action])),
            }
        }
        for (path, conditions, conditional, acts) in groups {
            let list = action_list(&acts, actions.len());
            if !conditional {
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

/// `Decrypt, Encrypt`, or `all 45 key actions`.
fn action_list(acts: &[&str], all: usize) -> String {
    if acts.len() == all {
        format!("all {all} key actions")
    } else {
        acts.join(", ")
    }
}

/// `may A, B` / `may A (B under conditions)` / `may B under conditions`.
fn may(access: &[(&'static str, bool)], all: usize) -> String {
    let plain: Vec<&str> = access.iter().filter(|a| !a.1).map(|a| a.0).collect();
    let cond: Vec<&str> = access.iter().filter(|a| a.1).map(|a| a.0).collect();
    match (plain.is_empty(), cond.is_empty()) {
        (_, true) => format!("may {}", action_list(&plain, all)),
        (true, false) => format!("may {} under conditions", action_list(&cond, all)),
        (false, false) => format!(
            "may {} ({} under conditions)",
            action_list(&plain, all),
            action_list(&cond, all)
        ),
    }
}

/// Stand-ins for "any principal of the account": a user and a role session
/// the directory does not hold, so without identity policies.
fn any_principals(account: &AccountId) -> [Principal; 2] {
    [
        Principal::User {
            account: account.clone(),
            name: "ferrokms-analysis-any-user".into(),
            path: "/".into(),
            id: "AIDAFERROKMSANALYSIS0".into(),
        },
        Principal::AssumedRole {
            account: account.clone(),
            role_name: "ferrokms-analysis-any-role".into(),
            role_path: "/".into(),
            role_id: "AROAFERROKMSANALYSIS0".into(),
            session_name: "simulated".into(),
        },
    ]
}

/// The report's first line: who outside the known accounts may use the
/// key, and what any principal of a known account may do through the key
/// policy alone, whatever IAM says.
fn summary(
    live: &Live,
    key_arn: &str,
    key_policy: &Policy,
    actions: &[&'static str],
    report: &[(String, &'static str, Vec<Access>)],
) -> anyhow::Result<String> {
    let all = actions.len();
    let external: Vec<String> = report
        .iter()
        .filter(|(_, kind, access)| {
            (*kind == "external account" || kind.starts_with("anyone")) && !access.is_empty()
        })
        .map(|(arn, _, access)| {
            let who = if arn == "*" {
                "anyone".to_string()
            } else {
                format!("account {}", account_of_arn(arn))
            };
            let acts: Vec<(&'static str, bool)> =
                access.iter().map(|a| (a.action, a.conditional)).collect();
            format!("{who} {}", may(&acts, all))
        })
        .collect();
    let mut parts = vec![if external.is_empty() {
        "external access: none".to_string()
    } else {
        format!("external access: {}", external.join("; "))
    }];
    for account in live.directory.accounts() {
        // What both stand-ins may do through the key policy alone.
        let mut common: Option<Vec<(&'static str, bool)>> = None;
        for p in any_principals(&account.id) {
            let access = principal_access(live, key_arn, key_policy, &p, actions)?;
            let direct: Vec<(&'static str, bool)> = access
                .iter()
                .filter(|a| a.path == "key policy")
                .map(|a| (a.action, a.conditional))
                .collect();
            common = Some(match common {
                None => direct,
                Some(prev) => prev
                    .into_iter()
                    .filter_map(|(act, c)| {
                        direct
                            .iter()
                            .find(|(a, _)| *a == act)
                            .map(|(_, c2)| (act, c || *c2))
                    })
                    .collect(),
            });
        }
        let common = common.unwrap_or_default();
        if !common.is_empty() {
            parts.push(format!(
                "every principal of account {} {} regardless of IAM",
                account.id,
                may(&common, all)
            ));
        }
    }
    if parts.len() == 1 {
        parts.push(
            "without IAM permissions, only the principals the key policy names may use it"
                .to_string(),
        );
    }
    Ok(parts.join("; "))
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
