//! Opening a data directory (or an in-memory state) and the first-start
//! provisioning of the default account and its credentials file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrokms_iam::{AccessKey, Directory};
use ferrokms_kms::Kms;
use ferrokms_sigv4::Verifier;
use ferrokms_store::{
    seal::write_private_file, MemoryStore, PostgresStore, Sealer, SqliteStore, Store,
};
use ferrokms_types::AccountId;

use crate::auth::{Authenticator, Mode};
use crate::kms_api::KMS_MODEL;
use crate::validate::Model;
use crate::App;

/// The account a fresh data directory starts with.
pub const DEFAULT_ACCOUNT: &str = "111122223333";
/// The account unknown access keys act in under `--dev`, unless changed.
pub const DEFAULT_DEV_ACCOUNT: &str = "000000000000";
/// The SQLite database's file name in the data directory.
pub const DATABASE_FILE: &str = "ferrokms.sqlite";
/// The root key's file name in the data directory.
pub const ROOT_KEY_FILE: &str = "root.key";
/// The credentials file written at the first start, in the data directory.
pub const CREDENTIALS_FILE: &str = "credentials";
/// The profile name in that credentials file.
pub const CREDENTIALS_PROFILE: &str = "ferrokms";

/// Where the server keeps its state.
#[derive(Debug, Clone)]
pub enum Storage {
    /// SQLite in this directory (the default).
    DataDir(PathBuf),
    /// A PostgreSQL database that several nodes share (`--store
    /// postgres://...`). The directory keeps what is local to this node:
    /// the root key (unless `root_key_file`), the first start's credentials
    /// file and the audit trail.
    /// `password`, when given, is used with a URL that has none
    /// (`--store-password-file`).
    Postgres {
        /// The connection URL (`postgres://...`).
        url: String,
        /// The node's local directory.
        dir: PathBuf,
        /// The password, when it is not in the URL.
        password: Option<StorePassword>,
    },
    /// Nothing persists: tests only.
    InMemory,
}

/// A PostgreSQL password; its `Debug` does not show it.
#[derive(Clone)]
pub struct StorePassword(pub String);

impl std::fmt::Debug for StorePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorePassword(..)")
    }
}

impl Storage {
    /// The node's local directory, if it has one.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Storage::DataDir(dir) | Storage::Postgres { dir, .. } => Some(dir),
            Storage::InMemory => None,
        }
    }
}

/// How to open a server's state (`serve` and the offline commands).
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the state is.
    pub storage: Storage,
    /// Overrides `DATA_DIR/root.key`.
    pub root_key_file: Option<PathBuf>,
    /// `--dev`: the account unknown access keys act in; `None` without `--dev`.
    pub dev_account: Option<AccountId>,
    /// A bootstrap file applied at every start (see `bootstrap`).
    pub bootstrap: Option<PathBuf>,
    /// A local-kms seed file applied at every start, after the bootstrap
    /// file (see `localkms`).
    pub seed: Option<crate::localkms::SeedOptions>,
    /// Principals (user or role ARNs) whose signed requests may set
    /// kms:ViaService with the `X-Ferrokms-Via-Service` header.
    pub via_service_principals: Vec<String>,
    /// Shared stores only: how stale a node's state may be when it serves a
    /// request (zero: every request sees every change acknowledged before
    /// it arrived). See `cluster`.
    pub max_staleness: std::time::Duration,
    /// Whether a missing data directory (and, in it, a missing database)
    /// may be created: `serve` without `--no-create`. The offline commands
    /// never create one: a mistyped `--data-dir` is then an error, not a
    /// new, empty store.
    pub create: bool,
}

impl Options {
    /// `storage` with nothing else: no root key file, no `--dev`, no
    /// bootstrap or seed file, no via-service principals, zero staleness,
    /// and a missing data dir created. Callers set what they need on top.
    pub fn new(storage: Storage) -> Options {
        Options {
            storage,
            root_key_file: None,
            dev_account: None,
            bootstrap: None,
            seed: None,
            via_service_principals: Vec::new(),
            max_staleness: std::time::Duration::ZERO,
            create: true,
        }
    }
}

/// What opening a data dir did, for the operator's benefit.
#[derive(Debug, Default)]
pub struct Opened {
    /// Set on the first start: where the default account's credentials went.
    pub new_credentials_file: Option<PathBuf>,
    /// Set on an in-memory start: the default account's root credentials
    /// (a credentials file's text), which exist nowhere else.
    pub new_credentials_text: Option<String>,
    /// The store, for logs (`sqlite:/path`).
    pub store_description: String,
}

/// Why a server's state could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The data directory could not be created.
    #[error("cannot create data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    /// The data directory does not exist and may not be created.
    #[error("data directory {0} does not exist; check --data-dir (`serve` without --no-create creates a new, empty one)")]
    NoDataDir(PathBuf),
    /// The data directory has no database and may not get one.
    #[error("{0} holds no ferrokms database ({DATABASE_FILE}); check --data-dir (`serve` without --no-create creates a new, empty store)")]
    NoDatabase(PathBuf),
    /// The database exists but the root key that sealed it does not.
    #[error("root key file {key} does not exist, but the database {database} does: its key material is sealed with the root key it was created with. Put that key at {key} (or point --root-key-file at it); a root key is generated only for a new database")]
    MissingRootKey {
        /// The root key file expected.
        key: PathBuf,
        /// The database whose data it sealed.
        database: String,
    },
    /// The root key file named does not exist.
    #[error("root key file {0} does not exist; make one with `openssl rand -hex 32 > {0}` (64 hex digits; keep it apart from the database's backups), or omit --root-key-file to have DATA_DIR/root.key generated for a new data directory")]
    NoRootKeyFile(PathBuf),
    /// The database could not be opened.
    #[error("cannot open database {0}: {1}")]
    Database(PathBuf, ferrokms_store::StoreError),
    /// The root key could not be loaded or used.
    #[error(transparent)]
    Seal(#[from] ferrokms_store::SealError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ferrokms_store::StoreError),
    /// Loading the KMS state failed.
    #[error(transparent)]
    Kms(#[from] ferrokms_kms::KmsError),
    /// Loading the identity directory failed.
    #[error(transparent)]
    Iam(#[from] ferrokms_iam::IamError),
    /// The credentials file could not be written.
    #[error("cannot write credentials file {0}: {1}")]
    Credentials(PathBuf, std::io::Error),
    /// The bootstrap file could not be applied.
    #[error(transparent)]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    /// The root key does not open this database's data.
    #[error("this database was sealed with a different root key: give every node the same --root-key-file")]
    RootKeyMismatch,
    /// The built-in KMS model does not load.
    #[error("built-in service model is invalid: {0}")]
    Model(String),
}

/// Opens the store and sealer the options name; shared by `serve` and the
/// offline commands.
pub fn open_store(opts: &Options) -> Result<(Arc<dyn Store>, Arc<Sealer>), SetupError> {
    match &opts.storage {
        Storage::InMemory => {
            let sealer = match &opts.root_key_file {
                Some(p) => given_root_key(p)?,
                None => Sealer::ephemeral()?,
            };
            Ok((Arc::new(MemoryStore::default()), Arc::new(sealer)))
        }
        Storage::DataDir(dir) => {
            local_dir(dir, opts.create)?;
            let db = dir.join(DATABASE_FILE);
            let new_store = !db.exists();
            if new_store && !opts.create {
                return Err(SetupError::NoDatabase(dir.clone()));
            }
            let sealer = root_key(dir, opts, new_store, &db.display().to_string())?;
            if new_store {
                tracing::warn!(database = %db.display(), "no database in the data directory: creating a new, empty store");
            }
            let store = SqliteStore::open(&db).map_err(|e| SetupError::Database(db.clone(), e))?;
            Ok((Arc::new(store), Arc::new(sealer)))
        }
        Storage::Postgres { url, dir, password } => {
            let store: Arc<dyn Store> = Arc::new(PostgresStore::open_with_password(
                url,
                password.as_ref().map(|p| p.0.as_str()),
            )?);
            // The node's own directory is not the store here: with the root
            // key given explicitly it holds nothing the store depends on, so
            // an administrator's offline command (`account create --store
            // ... --root-key-file ...`) may create it.
            local_dir(dir, opts.create || opts.root_key_file.is_some())?;
            let new_store = store.get(ROOT_CHECK_KIND, ROOT_CHECK_ID)?.is_none();
            let sealer = root_key(dir, opts, new_store, &store.describe())?;
            check_root_key(&*store, &sealer)?;
            Ok((store, Arc::new(sealer)))
        }
    }
}

/// Makes sure the node's directory exists (created 0700, and said so
/// loudly: a mistyped --data-dir would otherwise be a silent new store).
fn local_dir(dir: &Path, create: bool) -> Result<(), SetupError> {
    if dir.is_dir() {
        return Ok(());
    }
    if !create {
        return Err(SetupError::NoDataDir(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir).map_err(|e| SetupError::DataDir(dir.to_path_buf(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    tracing::warn!(
        dir = %dir.display(),
        "created a new data directory; if you meant an existing one, stop the server and check --data-dir (serve --no-create refuses to create one)"
    );
    Ok(())
}

/// Loads the root key; generates DATA_DIR/root.key only for a new store
/// (never beside an existing database: its key material would then be
/// unreadable, and the fresh key could be backed up in its stead).
fn root_key(
    dir: &Path,
    opts: &Options,
    new_store: bool,
    database: &str,
) -> Result<Sealer, SetupError> {
    if let Some(p) = &opts.root_key_file {
        return given_root_key(p);
    }
    let path = dir.join(ROOT_KEY_FILE);
    if !new_store && !path.exists() {
        return Err(SetupError::MissingRootKey {
            key: path,
            database: database.to_string(),
        });
    }
    Ok(Sealer::load_or_create(&path, true)?)
}

/// A root key file the operator named: it must exist.
fn given_root_key(path: &Path) -> Result<Sealer, SetupError> {
    if !path.exists() {
        return Err(SetupError::NoRootKeyFile(path.to_path_buf()));
    }
    Ok(Sealer::load_or_create(path, false)?)
}

const ROOT_CHECK_KIND: &str = "meta.root_check";
const ROOT_CHECK_ID: &str = "v1";
const ROOT_CHECK_AAD: &[u8] = b"ferrokms root key check";

/// Every node of a shared database must seal with the same root key: a
/// sealed marker in the database tells at start, instead of at the first
/// Decrypt of a key another node created.
fn check_root_key(store: &dyn Store, sealer: &Sealer) -> Result<(), SetupError> {
    match store.get(ROOT_CHECK_KIND, ROOT_CHECK_ID)? {
        Some(blob) => sealer
            .open(ROOT_CHECK_AAD, &blob)
            .map(|_| ())
            .map_err(|_| SetupError::RootKeyMismatch),
        None => {
            let blob = sealer.seal(ROOT_CHECK_AAD, b"ferrokms")?;
            store.apply(&[ferrokms_store::Change::Put {
                kind: ROOT_CHECK_KIND,
                id: ROOT_CHECK_ID.into(),
                body: blob,
            }])?;
            Ok(())
        }
    }
}

/// Builds the application state; on a fresh state, creates the default
/// account and writes its credentials (for a data dir, to a 0600 file).
pub fn open(opts: &Options) -> Result<(App, Opened), SetupError> {
    let (store, sealer) = open_store(opts)?;
    // On a shared store, remember how far the feed was before loading:
    // whatever is committed during the load is applied again at the first
    // sync (applying a document twice is harmless).
    let loaded_from = match store.shared() {
        Some(shared) => shared.head()?,
        None => 0,
    };
    let directory = Arc::new(Directory::open(store.clone(), sealer.clone())?);
    let kms = Arc::new(Kms::open(store.clone(), sealer.clone())?);
    let cluster = crate::cluster::Cluster::new(
        store.clone(),
        kms.clone(),
        directory.clone(),
        loaded_from,
        opts.max_staleness,
    );
    let mut opened = Opened {
        store_description: store.describe(),
        ..Default::default()
    };
    kms.set_principal_directory(Arc::new(crate::auth::DirectoryPrincipals {
        directory: directory.clone(),
        dev: opts.dev_account.is_some(),
    }));
    // LocalStack's custom CreateKey tags pick ids and material: --dev only.
    kms.honour_localstack_tags(opts.dev_account.is_some());
    // Provisioning writes; on a shared store, under the cluster write lock
    // so that nodes starting together create the default account once.
    let mut provision = || -> Result<(), SetupError> {
        if !directory.has_accounts() {
            let account =
                AccountId::parse(DEFAULT_ACCOUNT).map_err(|e| SetupError::Model(e.to_string()))?;
            let key = directory.create_account(&account)?;
            match opts.storage.local_dir() {
                Some(dir) => {
                    let path = dir.join(CREDENTIALS_FILE);
                    write_credentials_file(&path, &key)
                        .map_err(|e| SetupError::Credentials(path.clone(), e))?;
                    opened.new_credentials_file = Some(path);
                }
                None => {
                    opened.new_credentials_text =
                        Some(credentials_file_text(CREDENTIALS_PROFILE, &key));
                }
            }
        }
        if let Some(path) = &opts.bootstrap {
            let base = opts
                .storage
                .local_dir()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."));
            crate::bootstrap::apply_file(&directory, &kms, path, &base)?;
        }
        if let Some(seed) = &opts.seed {
            crate::localkms::apply_file(&directory, &kms, seed)?;
        }
        Ok(())
    };
    match &cluster {
        Some(c) => c.write(provision)??,
        None => provision()?,
    }
    let mode = match &opts.dev_account {
        Some(a) => Mode::Dev {
            default_account: a.clone(),
        },
        None => Mode::Secure,
    };
    let app = App {
        analyzers: {
            let analyzers =
                ferrokms_analyzer::Analyzers::new(store.clone(), kms.clone(), directory.clone());
            match &cluster {
                Some(c) => {
                    let c = c.clone();
                    analyzers.with_cluster_writer(Box::new(move |f| c.write(f)))
                }
                None => analyzers,
            }
        },
        kms,
        directory: directory.clone(),
        auth: Authenticator {
            directory,
            verifier: Verifier::default(),
            mode,
        },
        kms_model: Model::load(KMS_MODEL).map_err(SetupError::Model)?,
        via_service_principals: opts.via_service_principals.clone(),
        profiles: Default::default(),
        audit: match opts.storage.local_dir() {
            Some(dir) => crate::audit::AuditLog::open(dir)
                .map_err(|e| SetupError::DataDir(dir.join(crate::audit::AUDIT_DIR), e))?,
            None => crate::audit::AuditLog::disabled(),
        },
        test_clock: false,
        cluster,
        xks: None,
        store,
        sealer,
    };
    Ok((app, opened))
}

/// An AWS shared-credentials file with one profile.
pub fn credentials_file_text(profile: &str, key: &AccessKey) -> String {
    format!(
        "[{profile}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.id,
        key.secret.as_str()
    )
}

/// Writes `key` as an AWS shared-credentials file, profile `ferrokms`, readable by the owner only.
pub fn write_credentials_file(path: &Path, key: &AccessKey) -> std::io::Result<()> {
    write_private_file(
        path,
        credentials_file_text(CREDENTIALS_PROFILE, key).as_bytes(),
    )
}
