//! `ferrokms`: the server and its command-line tools.
//!
//! About 840 lines: the argument definitions of every command (their doc
//! comments are `--help`) and the dispatch to them; each command's work is
//! in a module of its own (`audit`, `analyze`, `backup`, `config`, `exact`,
//! `policy_diff`, `policy_generate`).

/// mimalloc: the request path allocates many small objects; glibc's
/// allocator showed up as a fifth of the server's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[macro_use]
mod out;
mod analyze;
mod audit;
mod backup;
mod config;
mod exact;
mod policy_diff;
mod policy_generate;
mod when;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use ferrokms_server::setup::{self, Options, Storage};
use ferrokms_types::AccountId;

#[derive(Parser)]
#[command(
    name = "ferrokms",
    version,
    about = "A self-hostable key management service that speaks the AWS KMS API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage accounts in a data directory (the server may be stopped or running).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Read the audit trail of a data directory (also while the server runs).
    Audit(audit::AuditArgs),
    /// Drive a KMS endpoint on this machine with signed requests and report
    /// throughput and latency (loopback endpoints only).
    Bench(BenchArgs),
    /// Policy tools: lint, evaluate and diff work on files alone (diff also
    /// on a key of a data directory); simulate, explain and generate read a
    /// data directory (the server may be running).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Key analysis over a data directory (the server may be running).
    Key {
        #[command(subcommand)]
        command: analyze::KeyCommand,
    },
    /// Copy a data directory's SQLite database to a file while the server
    /// runs (a consistent snapshot; the root key is not in it: back it up
    /// apart). PostgreSQL nodes: use pg_dump.
    Backup(backup::BackupArgs),
    /// Bootstrap files (`serve --bootstrap FILE`).
    Bootstrap {
        #[command(subcommand)]
        command: BootstrapCommand,
    },
    /// The external key store (XKS) proxy's keys and credentials
    /// (`serve --xks`; docs/xks.md). Works while the server is stopped or
    /// running: a running server reads what it does not hold yet from the
    /// store when a request names it.
    Xks {
        #[command(subcommand)]
        command: XksCommand,
    },
    /// Benchmarks only: create COUNT symmetric keys (default key policy) in a
    /// stopped server's data directory, through the same code CreateKey runs,
    /// without HTTP (bench/scale.sh's million-key run).
    #[command(hide = true)]
    SeedKeys(SeedKeysArgs),
}

#[derive(Subcommand)]
enum XksCommand {
    /// The SigV4 credentials AWS KMS signs its proxy calls with.
    Credential {
        #[command(subcommand)]
        command: XksCredentialCommand,
    },
    /// The AES-256 keys the proxy holds.
    Key {
        #[command(subcommand)]
        command: XksKeyCommand,
    },
}

#[derive(Subcommand)]
enum XksCredentialCommand {
    /// Create a credential and print it as
    /// {"AccessKeyId": ..., "RawSecretAccessKey": ...}, the values of
    /// CreateCustomKeyStore's XksProxyAuthenticationCredential (the secret
    /// is shown only now).
    Create {
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Subcommand)]
enum XksKeyCommand {
    /// Create an AES-256 key (sealed under the root key) and print
    /// {"XksKeyId": ...}, the XksKeyId of CreateKey's external key.
    Create {
        #[command(flatten)]
        storage: StorageArgs,
        /// The key's uses (the spec's keyUsage): ENCRYPT,DECRYPT, ENCRYPT,
        /// DECRYPT, or "" for none.
        #[arg(long, default_value = "ENCRYPT,DECRYPT")]
        usage: String,
        /// Secondary authorization: only requests whose requestMetadata
        /// awsPrincipalArn matches this ARN pattern (* and ? are wildcards)
        /// may use the key; others are AccessDeniedException. Repeatable;
        /// without it, any caller with a credential may.
        #[arg(long = "allow-principal")]
        allow_principals: Vec<String>,
    },
}

#[derive(Args)]
struct SeedKeysArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// How many keys to add.
    #[arg(long)]
    count: u64,
    /// The account that owns them (it must exist; the default account does).
    #[arg(long, default_value = setup::DEFAULT_ACCOUNT)]
    account: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Parallel writers (SQLite commits are serial; this overlaps key
    /// generation with them).
    #[arg(long, default_value_t = 2)]
    threads: u64,
}

#[derive(Subcommand)]
enum BootstrapCommand {
    /// Parse and check a bootstrap file (or, named *.yaml or *.yml, a
    /// local-kms seed file) without applying it.
    Check {
        /// The TOML (or local-kms YAML) file.
        file: PathBuf,
    },
}

#[derive(Args, Clone)]
struct StorageArgs {
    /// Directory for the database, the root key and the first credentials file.
    #[arg(long, env = "FERROKMS_DATA_DIR", default_value = "ferrokms-data")]
    data_dir: PathBuf,
    /// Root key file (64 hex digits) sealing key material at rest; default DATA_DIR/root.key, created on first start.
    #[arg(long, env = "FERROKMS_ROOT_KEY_FILE")]
    root_key_file: Option<PathBuf>,
    /// Keep state in a PostgreSQL database that several nodes share
    /// (postgres://user@host:port/db, the password in --store-password-file
    /// or in the URL) instead of SQLite in the data dir; the data dir then
    /// holds only the root key, the first credentials file and the audit
    /// trail. Every node needs the same root key.
    #[arg(long, env = "FERROKMS_STORE")]
    store: Option<String>,
    /// A file holding the password of --store's PostgreSQL user, for a URL
    /// without one: keeps the password off the command line (where `ps`
    /// shows it) and out of the environment.
    #[arg(long, env = "FERROKMS_STORE_PASSWORD_FILE", requires = "store")]
    store_password_file: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML file of serve's options, keyed by their long names
    /// (`listen = "0.0.0.0:7300"`, `data-dir = "/var/lib/ferrokms"`,
    /// `dev = true`, `via-service-principal = ["arn:..."]`). An option given
    /// on the command line or by its environment variable wins over the
    /// file; an unknown key is refused (docs/operations.md).
    #[arg(long, env = "FERROKMS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "FERROKMS_LISTEN", default_value = "127.0.0.1:7300")]
    listen: SocketAddr,
    #[command(flatten)]
    storage: StorageArgs,
    /// Keep everything in memory and lose it at exit (tests only). The
    /// default account's root credentials are printed on stderr at start.
    #[arg(long, env = "FERROKMS_IN_MEMORY")]
    in_memory: bool,
    /// Refuse to start when the data directory or its database does not
    /// exist, instead of creating a new, empty store (a mistyped --data-dir).
    #[arg(long, env = "FERROKMS_NO_CREATE", conflicts_with = "in_memory")]
    no_create: bool,
    /// Local development mode: unknown access key ids act as an account's root
    /// user (a 12-digit id is that account; any other id is the dev account) and
    /// only the signature's shape is checked for them. Never use in production.
    #[arg(long, env = "FERROKMS_DEV")]
    dev: bool,
    /// The account unknown access keys act in under --dev.
    #[arg(long, env = "FERROKMS_DEV_ACCOUNT", default_value = setup::DEFAULT_DEV_ACCOUNT, requires = "dev")]
    dev_account: String,
    /// A TOML file of accounts, IAM users, groups, roles, policies, access keys
    /// and KMS keys to create at start, idempotently (docs/identity.md).
    #[arg(long, env = "FERROKMS_BOOTSTRAP")]
    bootstrap: Option<PathBuf>,
    /// A local-kms seed file (YAML: Keys Symmetric Aes, Asymmetric Rsa/Ecc,
    /// Aliases) whose keys are created at start with their ids and
    /// material, idempotently (docs/keys.md). It holds key material in the
    /// clear: for development and tests.
    #[arg(long, env = "FERROKMS_SEED")]
    seed: Option<PathBuf>,
    /// The account of the seed file's keys (local-kms's KMS_ACCOUNT_ID).
    #[arg(long, env = "KMS_ACCOUNT_ID", default_value = ferrokms_server::localkms::DEFAULT_SEED_ACCOUNT)]
    seed_account: String,
    /// The Region of the seed file's keys (local-kms's KMS_REGION).
    #[arg(long, env = "KMS_REGION", default_value = ferrokms_server::localkms::DEFAULT_SEED_REGION)]
    seed_region: String,
    /// A principal ARN (user or role) trusted to act as an AWS service: its
    /// signed requests may carry `X-Ferrokms-Via-Service: <service host>`,
    /// which sets kms:ViaService (and kms:GrantIsForAWSResource), or
    /// `X-Ferrokms-Service-Principal: <service principal>` with
    /// `X-Ferrokms-Source-Arn: <ARN>` to call as that service principal
    /// (grants to service principals, docs/keys.md). Repeatable.
    #[arg(
        long = "via-service-principal",
        env = "FERROKMS_VIA_SERVICE_PRINCIPALS",
        value_delimiter = ','
    )]
    via_service_principals: Vec<String>,
    /// Tests only: enables `TrentService.FerrokmsAdvanceClock` (account root),
    /// which moves the service clock forward and runs the deletion and
    /// rotation sweeps at once.
    #[arg(long, env = "FERROKMS_TEST_CLOCK", hide = true)]
    test_clock: bool,
    /// Serve HTTPS: the certificate chain, PEM (leaf first). Needs --tls-key.
    #[arg(long, env = "FERROKMS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert, PEM (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "FERROKMS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// External key stores: the PEM certificates (CA roots, or the proxies'
    /// own self-signed certificates) trusted for the TLS connections to
    /// external key store proxies. Only these are trusted; without the flag
    /// no proxy is, and every store fails to connect (a TLS error).
    #[arg(long, env = "FERROKMS_XKS_CA_FILE")]
    xks_ca_file: Option<PathBuf>,
    /// Milliseconds an external key store proxy has to answer a call
    /// (connection, TLS handshake and response together); AWS's limit is 250.
    #[arg(long, env = "FERROKMS_XKS_TIMEOUT_MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    xks_timeout_ms: u64,
    /// Seconds a client has for a TLS handshake and for each request head;
    /// also how long an idle keep-alive connection stays open.
    #[arg(long, env = "FERROKMS_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_timeout: u64,
    /// Seconds a client has to send a request body (then 408).
    #[arg(long, env = "FERROKMS_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_timeout: u64,
    /// Connections open at once; more are closed as soon as they are accepted.
    #[arg(long, env = "FERROKMS_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Connections open at once from one client address (an IPv6 /64 counts
    /// as one), so that one client cannot take every connection; more from
    /// it are closed as soon as they are accepted. Behind a proxy that
    /// connects from one address, set it to --max-connections.
    #[arg(long, env = "FERROKMS_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = ferrokms_server::limits::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections_per_address: u64,
    /// Benchmarks only: keep no audit trail, so that its cost can be measured
    /// against the same data dir (docs/audit.md). Requests leave no record.
    #[arg(long, env = "FERROKMS_NO_AUDIT")]
    no_audit: bool,
    /// With --store postgres://: serve from state synced at most this many
    /// milliseconds ago instead of checking the database before every
    /// request. 0 (the default) is strict: a change acknowledged by any node
    /// is seen by the next request on every node (docs/deployment.md).
    #[arg(long, env = "FERROKMS_MAX_STALENESS_MS", default_value_t = 0)]
    max_staleness_ms: u64,
    /// Also serve the AWS KMS external key store (XKS) proxy API on this
    /// listener, under --xks-path-prefix: POST PREFIX/kms/xks/v1/health and
    /// PREFIX/kms/xks/v1/keys/XKS_KEY_ID/{metadata,encrypt,decrypt}, signed
    /// (SigV4, service kms-xks-proxy) with a credential of `ferrokms xks
    /// credential create` (docs/xks.md).
    #[arg(long, env = "FERROKMS_XKS")]
    xks: bool,
    /// The XKS proxy's path prefix; AWS's XksProxyUriPath is then
    /// PREFIX/kms/xks/v1 (/xks/kms/xks/v1 by default).
    #[arg(long, env = "FERROKMS_XKS_PATH_PREFIX", default_value = ferrokms_server::xks::DEFAULT_PATH_PREFIX, requires = "xks")]
    xks_path_prefix: String,
}

#[derive(Args)]
struct BenchArgs {
    /// The endpoint, e.g. http://127.0.0.1:7300 (must be a loopback address).
    #[arg(long)]
    endpoint: String,
    /// Operations to drive (repeatable): encrypt, decrypt, generate-data-key,
    /// sign-rsa2048, verify-rsa2048, sign-ecc-p256, verify-ecc-p256, generate-mac, or all;
    /// also create-key (durable writes: one new key per request; never part of all).
    #[arg(long = "op", default_value = "encrypt")]
    ops: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per operation.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Upper bound on requests per operation, whatever the duration.
    #[arg(long, default_value_t = 2_000_000)]
    max_requests: u64,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Access key id (default: AWS_ACCESS_KEY_ID, or the credentials file).
    #[arg(long)]
    access_key_id: Option<String>,
    /// Secret access key (default: AWS_SECRET_ACCESS_KEY, or the credentials file).
    #[arg(long)]
    secret_access_key: Option<String>,
    /// An AWS shared-credentials file (e.g. DATA_DIR/credentials).
    #[arg(long)]
    credentials_file: Option<PathBuf>,
    #[arg(long, default_value = "ferrokms")]
    profile: String,
    /// Drive this existing symmetric key (encrypt, decrypt,
    /// generate-data-key) instead of creating one per operation: e.g. a key
    /// in an external key store (docs/performance.md).
    #[arg(long)]
    key_id: Option<String>,
    /// Also measure the raw in-process crypto rate of each operation (the ceiling).
    #[arg(long)]
    raw: bool,
    /// JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Explain a recorded request: its decision, the statements that made it,
    /// and for a denial what would allow it.
    Explain(audit::ExplainArgs),
    /// Evaluate a request against policy files and print the decision and why.
    /// Exit status: 0 allowed, 1 denied, 2 error.
    Evaluate(EvaluateArgs),
    /// Validate a policy document (findings with severity and code).
    /// Exit status: 1 with any error finding, 0 otherwise, 2 unreadable input.
    Lint(analyze::LintArgs),
    /// The decision for a hypothetical request against the live data, and
    /// what would allow it. Exit status: 0 allowed, 1 denied, 2 error.
    Simulate(analyze::SimulateArgs),
    /// The exact access a policy change adds and removes, per principal
    /// class, action and path, each with a witness request; proven
    /// complete by the whole-space analysis (docs/analysis.md). Exit
    /// status: 0 no access added, 1 some access added, 2 unknown (a
    /// construct outside the analysis) or unusable input.
    Diff(policy_diff::DiffArgs),
    /// The least-privilege identity policy of a user or role from its
    /// successful KMS requests in the audit trail, with the proof that it
    /// grants exactly those actions on those keys and nothing on any other
    /// key (docs/analysis.md). Exit status: 0 written and proven, 1 nothing
    /// observed or the proof failed, 2 a usage error.
    Generate(policy_generate::GenerateArgs),
}

#[derive(Args)]
struct EvaluateArgs {
    /// KIND=FILE, KIND one of resource (or key), identity, boundary, session. Repeatable.
    #[arg(long = "policy", required = true)]
    policies: Vec<String>,
    /// The caller: a user, root, assumed-role session or federated-user ARN, or an account id.
    #[arg(long)]
    principal: String,
    /// For an assumed-role session: the role's ARN (with its path).
    #[arg(long)]
    role_arn: Option<String>,
    /// The action, e.g. kms:Sign.
    #[arg(long)]
    action: String,
    /// The resource ARN, or *.
    #[arg(long, default_value = "*")]
    resource: String,
    /// KEY=VALUE request context; repeat a key for a multivalued one.
    #[arg(long = "context")]
    context: Vec<String>,
    /// A JSON object of context values.
    #[arg(long)]
    context_file: Option<PathBuf>,
    /// KMS rules: the resource (key) policy must admit the caller even in its own account.
    #[arg(long)]
    kms: bool,
    /// Print the decision and trace as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create an account and print its root credentials.
    Create {
        /// 12-digit account id.
        account_id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List the accounts of a data directory.
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
}

fn main() {
    let args = match config::apply::<Cli>(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("ferrokms: {}", error_line(&e));
            std::process::exit(2)
        }
    };
    let cli = Cli::parse_from(args);
    if let Err(e) = init_logging() {
        eprintln!("ferrokms: {e}");
        std::process::exit(2)
    }
    if let Err(e) = run(cli) {
        // One line, each cause once, and no backtrace even under
        // RUST_BACKTRACE=1: these are errors a person acts on.
        eprintln!("ferrokms: {}", error_line(&e));
        std::process::exit(1)
    }
}

/// An error and its causes on one line, `a: b: c`, leaving out a cause
/// whose text the line already holds.
fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Logs go to stderr: the filter from FERROKMS_LOG (default `info`; an
/// invalid one is refused), JSON lines with FERROKMS_LOG_FORMAT=json, and
/// ANSI colour only on a terminal and without NO_COLOR (no-color.org).
fn init_logging() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = match std::env::var("FERROKMS_LOG") {
        Ok(v) => tracing_subscriber::EnvFilter::try_new(&v).map_err(|e| {
            anyhow::anyhow!(
                "FERROKMS_LOG='{v}' is not a log filter ({e}); use a level (error, warn, info, debug, trace) or directives such as 'info,ferrokms_server=debug'"
            )
        })?,
        Err(std::env::VarError::NotPresent) => tracing_subscriber::EnvFilter::new("info"),
        Err(std::env::VarError::NotUnicode(_)) => bail!("FERROKMS_LOG is not UTF-8"),
    };
    let json = match std::env::var("FERROKMS_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") | Err(std::env::VarError::NotPresent) => false,
        Ok(other) => bail!("FERROKMS_LOG_FORMAT='{other}': use text (the default) or json"),
        Err(std::env::VarError::NotUnicode(_)) => bail!("FERROKMS_LOG_FORMAT is not UTF-8"),
    };
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().with_ansi(false).init();
    } else {
        builder.with_ansi(colour).init();
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Account { command } => account(command),
        Command::Bench(args) => bench(args),
        Command::Audit(args) => match audit::audit(args) {
            Err(e) if e.is::<audit::UsageError>() => {
                eprintln!("ferrokms: {e}");
                std::process::exit(2)
            }
            other => other,
        },
        Command::Policy {
            command: PolicyCommand::Explain(args),
        } => audit::explain(args),
        Command::Policy {
            command: PolicyCommand::Evaluate(args),
        } => match policy_evaluate(args) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => {
                eprintln!("ferrokms: {e:#}");
                std::process::exit(2)
            }
        },
        Command::Policy {
            command: PolicyCommand::Lint(args),
        } => std::process::exit(analyze::lint_cmd(args)),
        Command::Policy {
            command: PolicyCommand::Simulate(args),
        } => analyze::exit_with(analyze::simulate_cmd(args)),
        Command::Policy {
            command: PolicyCommand::Diff(args),
        } => std::process::exit(policy_diff::diff_cmd(&args)),
        Command::Policy {
            command: PolicyCommand::Generate(args),
        } => std::process::exit(policy_generate::generate_cmd(&args)),
        Command::Key { command } => analyze::key_cmd(command),
        Command::Backup(args) => backup::backup(args),
        Command::SeedKeys(args) => seed_keys(args),
        Command::Xks { command } => xks(command),
        Command::Bootstrap {
            command: BootstrapCommand::Check { file },
        } => {
            if ferrokms_server::localkms::is_seed_path(&file) {
                let opts = ferrokms_server::localkms::SeedOptions {
                    path: file.clone(),
                    account: AccountId::parse(ferrokms_server::localkms::DEFAULT_SEED_ACCOUNT)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                    region: ferrokms_types::Region::parse(
                        ferrokms_server::localkms::DEFAULT_SEED_REGION,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                };
                let (_, keys) = ferrokms_server::localkms::load(&opts)?;
                outln!(
                    "{}: ok (local-kms seed file, {} key(s))",
                    file.display(),
                    keys.len()
                );
                return Ok(());
            }
            let f = ferrokms_server::bootstrap::load(&file)?;
            outln!("{}: ok ({} account(s))", file.display(), f.accounts.len());
            Ok(())
        }
    }
}

/// `create`: whether a missing data directory or database may be created
/// (`serve`, unless --no-create; and `seed-keys`, the benchmarks' tool that
/// fills a fresh data directory with keys).
fn storage_options(
    s: &StorageArgs,
    in_memory: bool,
    dev_account: Option<AccountId>,
    create: bool,
) -> anyhow::Result<Options> {
    let storage = match (&s.store, in_memory) {
        (_, true) => Storage::InMemory,
        (Some(url), false) => Storage::Postgres {
            url: url.clone(),
            dir: s.data_dir.clone(),
            password: config::store_password(s.store_password_file.as_deref())?,
        },
        (None, false) => Storage::DataDir(s.data_dir.clone()),
    };
    Ok(Options {
        root_key_file: s.root_key_file.clone(),
        dev_account,
        create,
        ..Options::new(storage)
    })
}

fn seed_keys(args: SeedKeysArgs) -> anyhow::Result<()> {
    let opts = storage_options(&args.storage, false, None, true)?;
    let (app, _) = setup::open(&opts)?;
    let account = AccountId::parse(&args.account)
        .map_err(|_| anyhow::anyhow!("--account must be 12 digits"))?;
    let region = ferrokms_types::Region::parse(&args.region)
        .map_err(|e| anyhow::anyhow!("--region: {e}"))?;
    let caller = ferrokms_kms::Caller::root(account, region);
    let started = std::time::Instant::now();
    let threads = args.threads.max(1);
    let made = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (app, made) = (&app, &made);
                // A caller per thread, and a fresh one (an empty trace) per
                // key, as the server makes one per request.
                let caller = caller.clone();
                let share = args.count / threads + u64::from(t < args.count % threads);
                scope.spawn(move || -> anyhow::Result<()> {
                    for _ in 0..share {
                        app.kms
                            .create_key(
                                &caller.clone(),
                                ferrokms_kms::api::CreateKeyRequest::default(),
                            )
                            .map_err(|e| anyhow::anyhow!("CreateKey: {e}"))?;
                        let n = made.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if n % 100_000 == 0 {
                            eprintln!("{n} keys in {:.0?}", started.elapsed());
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a seeding thread panicked"))??;
        }
        Ok(())
    })?;
    outln!(
        "created {} keys in {:.1?}; the store now holds {}",
        args.count,
        started.elapsed(),
        app.kms.key_count()
    );
    Ok(())
}

/// `--seed FILE` and where its keys go (`--seed-account`, `--seed-region`,
/// which read local-kms's own KMS_ACCOUNT_ID and KMS_REGION).
fn seed_options(
    args: &ServeArgs,
) -> anyhow::Result<Option<ferrokms_server::localkms::SeedOptions>> {
    let Some(path) = &args.seed else {
        return Ok(None);
    };
    Ok(Some(ferrokms_server::localkms::SeedOptions {
        path: path.clone(),
        account: AccountId::parse(&args.seed_account)
            .map_err(|e| anyhow::anyhow!("--seed-account (KMS_ACCOUNT_ID): {e}"))?,
        region: ferrokms_types::Region::parse(&args.seed_region)
            .map_err(|e| anyhow::anyhow!("--seed-region (KMS_REGION): {e}"))?,
    }))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let dev_account = if args.dev {
        Some(
            AccountId::parse(&args.dev_account)
                .map_err(|e| anyhow::anyhow!("--dev-account: {e}"))?,
        )
    } else {
        None
    };
    let mut opts = storage_options(&args.storage, args.in_memory, dev_account, !args.no_create)?;
    opts.bootstrap = args.bootstrap.clone();
    opts.seed = seed_options(&args)?;
    opts.via_service_principals = args.via_service_principals.clone();
    opts.max_staleness = std::time::Duration::from_millis(args.max_staleness_ms);
    let (mut app, opened) = setup::open(&opts)?;
    app.test_clock = args.test_clock;
    let xks_path = if args.xks {
        Some(
            app.enable_xks(&args.xks_path_prefix)?
                .uri_path()
                .to_string(),
        )
    } else {
        None
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(ferrokms_server::listener::tls_config(cert, key)?),
        _ => None,
    };
    let limits = ferrokms_server::listener::Limits {
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
        body_timeout: std::time::Duration::from_secs(args.body_timeout),
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        max_connections_per_address: usize::try_from(args.max_connections_per_address)
            .unwrap_or(usize::MAX),
        ..Default::default()
    };
    if args.no_audit {
        app.audit = ferrokms_server::audit::AuditLog::disabled();
        tracing::warn!("--no-audit: requests leave no audit record (benchmarks only)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Without --xks-ca-file no proxy is trusted, so none is ever dialled:
    // a store's endpoint cannot make this server open connections to
    // hosts of a caller's choosing (it answers XksProxyUriUnreachable).
    if let Some(ca) = args.xks_ca_file.as_deref() {
        let xks_tls = ferrokms_server::xks_client::client_tls(Some(ca))?;
        app.kms
            .set_xks_transport(Arc::new(ferrokms_server::xks_client::XksClient::new(
                xks_tls,
                std::time::Duration::from_millis(args.xks_timeout_ms),
                runtime.handle().clone(),
            )));
    }
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some(path) = &opened.new_credentials_file {
            eprintln!(
                "ferrokms: created account {} and wrote its root credentials to {} (profile '{}').\n\
                 Use them with: AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={} aws --endpoint-url {scheme}://{} --region us-east-1 kms list-keys",
                setup::DEFAULT_ACCOUNT,
                path.display(),
                setup::CREDENTIALS_PROFILE,
                path.display(),
                setup::CREDENTIALS_PROFILE,
                addr
            );
        }
        if let Some(text) = &opened.new_credentials_text {
            eprintln!(
                "ferrokms: --in-memory: created account {} with this root access key (nothing is written; it is gone at exit).\n\
                 Save it as a credentials file and use it with: AWS_SHARED_CREDENTIALS_FILE=FILE AWS_PROFILE={} aws --endpoint-url {scheme}://{} --region us-east-1 kms list-keys\n{}",
                setup::DEFAULT_ACCOUNT,
                setup::CREDENTIALS_PROFILE,
                addr,
                text.trim_end()
            );
        }
        tracing::info!(
            %addr,
            store = %opened.store_description,
            keys = app.kms.key_count(),
            dev = args.dev,
            "ferrokms listening"
        );
        if let Some(path) = &xks_path {
            tracing::info!(
                uri_path = %path,
                "XKS proxy API served (XksProxyUriEndpoint {scheme}://HOST:PORT, XksProxyUriPath {path})"
            );
        }
        if args.test_clock {
            tracing::warn!("--test-clock: FerrokmsAdvanceClock is enabled (tests only)");
        }
        let shutdown = shutdown_signal()?;
        let purge = spawn_allocator_purge();
        // A line tests and scripts can wait for.
        println!("ferrokms listening on {scheme}://{addr}");
        ferrokms_server::listener::serve(Arc::new(app), listener, limits, tls, shutdown).await?;
        purge.abort();
        tracing::info!("ferrokms stopped");
        anyhow::Ok(())
    })
}

/// mimalloc gives freed memory back to the OS (`MADV_DONTNEED`) once it has
/// stayed free for its purge delay (1 s), but only when some later free of
/// a whole page gets it to look: on a server that falls idle right after a
/// burst (thousands of connections closing), nothing does, and the burst's
/// memory stays resident. Once a second this frees one block too large to
/// share a page (over 512 KiB), which purges whatever is due. The block is
/// never written, so it costs no resident memory.
/// (`MIMALLOC_PURGE_DELAY=0` in the environment purges at once instead.)
fn spawn_allocator_purge() -> tokio::task::JoinHandle<()> {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let block: Vec<u8> = Vec::with_capacity(1 << 20);
            drop(std::hint::black_box(block));
        }
    })
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when first polled, so a signal that arrives right after the
/// "listening" line is never lost to the default action.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing requests in flight");
    })
}

fn account(cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Create {
            account_id,
            storage,
        } => {
            let id = AccountId::parse(&account_id)
                .map_err(|_| anyhow::anyhow!("account id must be 12 digits, got '{account_id}'"))?;
            let (store, sealer) =
                setup::open_store(&storage_options(&storage, false, None, false)?)?;
            let dir = ferrokms_iam::Directory::open(store, sealer)?;
            if dir.account_exists(&id) {
                bail!("account {id} already exists");
            }
            let key = dir.create_account(&id)?;
            outln!("# root credentials of account {id}; the secret is shown only now");
            out!(
                "{}",
                setup::credentials_file_text(&format!("ferrokms-{id}"), &key)
            );
            if storage.store.is_some() {
                eprintln!("note: running nodes see the new account on their next request");
            } else {
                eprintln!("note: a running server sees the new account after a restart");
            }
            Ok(())
        }
        AccountCommand::List { storage } => {
            let (store, sealer) =
                setup::open_store(&storage_options(&storage, false, None, false)?)?;
            let dir = ferrokms_iam::Directory::open(store, sealer)?;
            for a in dir.accounts() {
                outln!("{}", a.id);
            }
            Ok(())
        }
    }
}

/// `ferrokms xks ...`: the proxy's credentials and keys, written to the
/// store of a data directory (or `--store`) that must exist.
fn xks(cmd: XksCommand) -> anyhow::Result<()> {
    use ferrokms_server::xks::docs;
    match cmd {
        XksCommand::Credential {
            command: XksCredentialCommand::Create { storage },
        } => {
            let (store, sealer) =
                setup::open_store(&storage_options(&storage, false, None, false)?)?;
            let c = docs::create_credential(&*store, &sealer)?;
            outln!(
                "{}",
                serde_json::json!({
                    "AccessKeyId": c.access_key_id,
                    "RawSecretAccessKey": c.secret.as_str(),
                })
            );
            Ok(())
        }
        XksCommand::Key {
            command:
                XksKeyCommand::Create {
                    storage,
                    usage,
                    allow_principals,
                },
        } => {
            let usage = docs::Usage::parse_list(&usage)?;
            let (store, sealer) =
                setup::open_store(&storage_options(&storage, false, None, false)?)?;
            let id = docs::create_key(&*store, &sealer, usage, allow_principals)?;
            outln!("{}", serde_json::json!({ "XksKeyId": id }));
            Ok(())
        }
    }
}

/// `ferrokms policy evaluate`: the policy engine's decision and trace for
/// one request, offline. Returns whether the request is allowed.
fn policy_evaluate(args: EvaluateArgs) -> anyhow::Result<bool> {
    use ferrokms_policy::cli::{evaluate_cli, EvaluateInput, PolicySource};
    let mut input = EvaluateInput::default();
    for arg in &args.policies {
        let (kind, file) =
            PolicySource::split_arg(arg).map_err(|e| anyhow::anyhow!("--policy '{arg}': {e}"))?;
        let bytes =
            std::fs::read(file).with_context(|| format!("cannot read policy file '{file}'"))?;
        input.policies.push(PolicySource::new(kind, file, bytes));
    }
    input.principal = args.principal;
    input.role_arn = args.role_arn;
    input.action = args.action;
    input.resource = args.resource;
    input.context = args.context;
    if let Some(f) = &args.context_file {
        input.context_json = Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read context file '{}'", f.display()))?,
        );
    }
    if args.kms {
        input.mode = ferrokms_policy::CombineMode::ResourcePolicyRequired;
    }
    let report = evaluate_cli(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report.json)?);
    } else {
        out!("{}", report.human);
    }
    Ok(report.allowed)
}

/// `ferrokms bench`: load against a loopback endpoint, one operation at a time.
fn bench(args: BenchArgs) -> anyhow::Result<()> {
    use ferrokms_bench::{Load, Op, Target};
    let authority = args
        .endpoint
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--endpoint must be http://HOST:PORT"))?
        .trim_end_matches('/')
        .to_string();
    let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&authority)
        .with_context(|| format!("cannot resolve '{authority}'"))?
        .collect();
    if addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        bail!("ferrokms bench drives loopback endpoints only; '{authority}' is not one");
    }
    let (key_id, secret) = match (args.access_key_id.clone(), args.secret_access_key.clone()) {
        (Some(k), Some(s)) => (k, s),
        _ => match &args.credentials_file {
            Some(f) => read_profile(f, &args.profile)?,
            None => (
                std::env::var("AWS_ACCESS_KEY_ID")
                    .context("no credentials: give --credentials-file or AWS_ACCESS_KEY_ID")?,
                std::env::var("AWS_SECRET_ACCESS_KEY").context("no AWS_SECRET_ACCESS_KEY")?,
            ),
        },
    };
    let mut ops: Vec<Op> = Vec::new();
    for o in &args.ops {
        let more = if o == "all" {
            Op::ALL.to_vec()
        } else {
            vec![Op::parse(o).ok_or_else(|| anyhow::anyhow!("unknown --op '{o}'"))?]
        };
        for op in more {
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
    }
    let target = Target {
        authority,
        region: args.region.clone(),
        access_key_id: key_id,
        secret_access_key: secret,
        key_id: args.key_id.clone(),
    };
    let load = Load {
        connections: args.connections,
        duration: std::time::Duration::from_secs(args.duration),
        max_requests: args.max_requests,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if !args.json {
        outln!(
            "{:<20} {:>10} {:>8} {:>10} {:>9} {:>9} {:>9} {:>12}",
            "op",
            "requests",
            "errors",
            "req/s",
            "p50 us",
            "p99 us",
            "p99.9 us",
            "raw ops/s"
        );
    }
    for op in ops {
        let report = runtime.block_on(ferrokms_bench::run(&target, op, load))?;
        let raw = if args.raw {
            ferrokms_bench::raw_rate(
                op,
                args.connections.min(
                    std::thread::available_parallelism()
                        .map(std::num::NonZero::get)
                        .unwrap_or(2),
                ),
                std::time::Duration::from_secs(args.duration.min(5)),
            )?
        } else {
            None
        };
        if args.json {
            let mut v = serde_json::to_value(&report)?;
            v["raw_ops_per_second"] = serde_json::json!(raw);
            outln!("{v}");
        } else {
            outln!(
                "{:<20} {:>10} {:>8} {:>10.0} {:>9} {:>9} {:>9} {:>12}",
                report.op,
                report.requests,
                report.errors,
                report.requests_per_second,
                report.p50_us,
                report.p99_us,
                report.p999_us,
                raw.map(|r| format!("{r:.0}")).unwrap_or_else(|| "-".into())
            );
            if let Some(e) = &report.first_error {
                eprintln!("  first error: {e}");
            }
        }
    }
    Ok(())
}

/// Reads one profile's keys from an AWS shared-credentials file.
fn read_profile(path: &std::path::Path, profile: &str) -> anyhow::Result<(String, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut in_profile = false;
    let (mut id, mut secret) = (None, None);
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_profile = line == format!("[{profile}]");
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            match k.trim() {
                "aws_access_key_id" => id = Some(v.trim().to_string()),
                "aws_secret_access_key" => secret = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(i), Some(s)) => Ok((i, s)),
        _ => bail!(
            "profile '{profile}' not found (or incomplete) in {}",
            path.display()
        ),
    }
}
