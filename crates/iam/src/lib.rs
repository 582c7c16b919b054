//! Identities: accounts, IAM users and roles with their policies, access
//! keys, and STS sessions. The server looks an access key id up here to find
//! the secret it verifies a signature with and the principal the request
//! acts as; the policies found here are what identity-based authorization
//! evaluates.

pub mod authz;
pub mod bounded_cache;
pub mod catalog;
pub mod entities;
mod names;
mod ops;
pub mod simulate;
/// Which identity an inline policy or attachment belongs to (the path
/// `crates/cli/tests/analyze.rs` names; new code uses
/// `ferrokms_iam::Owner`).
pub mod ops_owner {
    pub use crate::ops::Owner;
}
mod principal;
pub mod replica;
pub mod reset;
pub mod session_token;
pub mod sts;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferrokms_store::{Change, Sealer, Store};
use ferrokms_types::AccountId;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use entities::{
    DocKind, GroupRecord, InstanceProfileRecord, ManagedPolicyRecord, PolicyDoc, PolicyVersion,
    RoleRecord, Tag, UserRecord,
};
pub use ops::{AuthorizationDetails, Owner, OwnerPolicies, PolicyEntities, Taggable};
pub use principal::{Caller, Principal};
pub use sts::{Credentials, Session};

pub(crate) const KIND_ACCOUNT: &str = "iam.account";
pub(crate) const KIND_ACCESS_KEY: &str = "iam.access_key";
pub(crate) const KIND_USER: &str = "iam.user";
pub(crate) const KIND_ROLE: &str = "iam.role";
pub(crate) const KIND_POLICY: &str = "iam.policy";
pub(crate) const KIND_GROUP: &str = "iam.group";
pub(crate) const KIND_INSTANCE_PROFILE: &str = "iam.instance_profile";
/// Sessions as versions before self-contained tokens stored them: no longer
/// read (see "Sessions" in docs/identity.md); the replica ignores them.
pub(crate) const KIND_LEGACY_SESSION: &str = "iam.session";

/// Errors of the identity layer; each is one AWS error code.
#[derive(Debug, thiserror::Error)]
pub enum IamError {
    /// CreateAccount of an account that exists.
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    /// The account is unknown.
    #[error("account {0} does not exist")]
    NoSuchAccount(AccountId),
    /// `NoSuchEntity`: the user, role, group, policy or key named does not exist.
    #[error("{0}")]
    NoSuchEntity(String),
    /// `EntityAlreadyExists`: the name is taken.
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// `DeleteConflict`: the entity still has policies, members, keys...
    #[error("{0}")]
    DeleteConflict(String),
    /// `LimitExceeded`: a quota (access keys per user, policy versions...) is reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// `MalformedPolicyDocument`: the policy text does not parse or validate.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// `ValidationError`: a parameter fails the API model's constraints.
    #[error("{0}")]
    Validation(String),
    /// `InvalidInput`: a parameter is well-formed but not acceptable.
    #[error("{0}")]
    InvalidInput(String),
    /// `InvalidParameterValue` (STS).
    #[error("{0}")]
    InvalidParameterValue(String),
    /// `PackedPolicyTooLarge` (STS): session policies and tags too large.
    #[error("{0}")]
    PackedPolicyTooLarge(String),
    /// `AccessDenied`, with AWS's message.
    #[error("{0}")]
    AccessDenied(String),
    /// The store failed; the change was not made.
    #[error("storage failure: {0}")]
    Store(#[from] ferrokms_store::StoreError),
    /// Stored data does not decode.
    #[error("stored identity data is unreadable: {0}")]
    Corrupt(String),
    /// The system random number generator failed.
    #[error("random number generator failed")]
    Random,
}

impl From<ferrokms_authz::AuthzError> for IamError {
    fn from(e: ferrokms_authz::AuthzError) -> Self {
        IamError::Corrupt(e.to_string())
    }
}

impl IamError {
    /// The query-protocol error code and HTTP status AWS uses.
    pub fn code_and_status(&self) -> (&'static str, u16) {
        match self {
            IamError::NoSuchEntity(_) | IamError::NoSuchAccount(_) => ("NoSuchEntity", 404),
            IamError::EntityAlreadyExists(_) | IamError::AccountExists(_) => {
                ("EntityAlreadyExists", 409)
            }
            IamError::DeleteConflict(_) => ("DeleteConflict", 409),
            IamError::LimitExceeded(_) => ("LimitExceeded", 409),
            IamError::MalformedPolicyDocument(_) => ("MalformedPolicyDocument", 400),
            IamError::Validation(_) => ("ValidationError", 400),
            IamError::InvalidInput(_) => ("InvalidInput", 400),
            IamError::InvalidParameterValue(_) => ("InvalidParameterValue", 400),
            IamError::PackedPolicyTooLarge(_) => ("PackedPolicyTooLarge", 400),
            IamError::AccessDenied(_) => ("AccessDenied", 403),
            IamError::Store(_) | IamError::Corrupt(_) | IamError::Random => ("ServiceFailure", 500),
        }
    }
}

/// Whether an access key may sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    /// The key may be used.
    Active,
    /// The key is refused until made active again.
    Inactive,
}

impl AccessKeyStatus {
    /// The status as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKeyStatus::Active => "Active",
            AccessKeyStatus::Inactive => "Inactive",
        }
    }
}

/// A long-term access key with its secret in the clear, in memory only.
pub struct AccessKey {
    /// The access key id (`AKIA...`).
    pub id: String,
    /// The secret access key, wiped from memory when dropped.
    pub secret: Zeroizing<String>,
    /// Who the key signs as.
    pub principal: Principal,
    /// Active or inactive.
    pub status: AccessKeyStatus,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("principal", &self.principal)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What is stored for an access key: the secret only sealed.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredAccessKey {
    id: String,
    sealed_secret: String,
    principal: Principal,
    status: AccessKeyStatus,
    created_ms: i64,
}

/// An account of this server, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// The 12-digit account id.
    pub id: AccountId,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// Entity names are unique per account regardless of case, as on AWS.
pub(crate) type NameKey = (AccountId, String);

pub(crate) fn name_key(account: &AccountId, name: &str) -> NameKey {
    (account.clone(), name.to_ascii_lowercase())
}

#[derive(Default)]
pub(crate) struct IamState {
    pub accounts: BTreeMap<AccountId, AccountRecord>,
    pub access_keys: foldhash::HashMap<String, Arc<AccessKey>>,
    pub users: BTreeMap<NameKey, Arc<UserRecord>>,
    pub roles: BTreeMap<NameKey, Arc<RoleRecord>>,
    pub groups: BTreeMap<NameKey, Arc<GroupRecord>>,
    /// By ARN.
    pub policies: BTreeMap<String, Arc<ManagedPolicyRecord>>,
    pub instance_profiles: BTreeMap<NameKey, Arc<InstanceProfileRecord>>,
}

/// The identity directory: every entity in memory, written through to the
/// store before a change is acknowledged.
pub struct Directory {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) state: RwLock<IamState>,
    pub(crate) writer: Mutex<()>,
    /// Bumped by every change, so callers can cache what they derive from
    /// the directory (a caller's policies) and notice when it is stale.
    pub(crate) generation: std::sync::atomic::AtomicU64,
    /// The keys that seal session tokens and derive session secrets.
    pub(crate) tokens: session_token::TokenKeys,
    /// Sessions opened from tokens, bounded.
    pub(crate) session_cache: sts::SessionCache,
    /// How far `serve --test-clock` moved the clock sessions are issued and
    /// expire by.
    clock_offset_ms: std::sync::atomic::AtomicI64,
}

/// Write access to the state; the generation moves when it is released.
pub(crate) struct StateWrite<'a> {
    guard: Option<parking_lot::RwLockWriteGuard<'a, IamState>>,
    generation: &'a std::sync::atomic::AtomicU64,
}

impl std::ops::Deref for StateWrite<'_> {
    type Target = IamState;
    fn deref(&self) -> &IamState {
        self.guard.as_ref().expect("guard is held until drop")
    }
}

impl std::ops::DerefMut for StateWrite<'_> {
    fn deref_mut(&mut self) -> &mut IamState {
        self.guard.as_mut().expect("guard is held until drop")
    }
}

impl Drop for StateWrite<'_> {
    fn drop(&mut self) {
        // INVARIANT: bumped while the write lock is still held, so a reader
        // that saw the old generation before reading the state either read
        // the old state or will find its cache entry stale.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.guard.take();
    }
}

impl StoredAccessKey {
    pub(crate) fn open(self, sealer: &Sealer) -> Result<AccessKey, IamError> {
        let secret = unseal(sealer, &self.id, &self.sealed_secret)?;
        Ok(AccessKey {
            id: self.id,
            secret,
            principal: self.principal,
            status: self.status,
            created_ms: self.created_ms,
        })
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub(crate) fn json_change<T: Serialize>(
    kind: &'static str,
    id: String,
    value: &T,
) -> Result<Change, IamError> {
    Ok(Change::Put {
        kind,
        id,
        body: serde_json::to_vec(value).map_err(|e| IamError::Corrupt(e.to_string()))?,
    })
}

fn load_json<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    kind: &str,
) -> Result<Vec<T>, IamError> {
    store
        .load(kind)?
        .into_iter()
        .map(|r| {
            serde_json::from_slice(&r.body)
                .map_err(|e| IamError::Corrupt(format!("{kind} {}: {e}", r.id)))
        })
        .collect()
}

impl Directory {
    /// Loads every identity from `store`; `sealer` opens the sealed access key secrets.
    pub fn open(store: Arc<dyn Store>, sealer: Arc<Sealer>) -> Result<Directory, IamError> {
        let mut state = IamState::default();
        for a in load_json::<AccountRecord>(&*store, KIND_ACCOUNT)? {
            state.accounts.insert(a.id.clone(), a);
        }
        for s in load_json::<StoredAccessKey>(&*store, KIND_ACCESS_KEY)? {
            let key = s.open(&sealer)?;
            state.access_keys.insert(key.id.clone(), Arc::new(key));
        }
        for u in load_json::<UserRecord>(&*store, KIND_USER)? {
            state
                .users
                .insert(name_key(&u.account, &u.name), Arc::new(u));
        }
        for r in load_json::<RoleRecord>(&*store, KIND_ROLE)? {
            state
                .roles
                .insert(name_key(&r.account, &r.name), Arc::new(r));
        }
        for g in load_json::<GroupRecord>(&*store, KIND_GROUP)? {
            state
                .groups
                .insert(name_key(&g.account, &g.name), Arc::new(g));
        }
        for p in load_json::<ManagedPolicyRecord>(&*store, KIND_POLICY)? {
            state.policies.insert(p.arn(), Arc::new(p));
        }
        for p in load_json::<InstanceProfileRecord>(&*store, KIND_INSTANCE_PROFILE)? {
            state
                .instance_profiles
                .insert(name_key(&p.account, &p.name), Arc::new(p));
        }
        // Sessions stored by older versions (`iam.session`) are not read:
        // their credentials end at the upgrade.
        let tokens = session_token::TokenKeys::derive(&sealer)
            .map_err(|e| IamError::Corrupt(e.to_string()))?;
        Ok(Directory {
            store,
            sealer,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
            tokens,
            session_cache: sts::new_session_cache(),
            clock_offset_ms: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// The time sessions are issued and expire by: the wall clock, moved
    /// forward by [`Directory::advance_clock_ms`].
    pub(crate) fn now_ms(&self) -> i64 {
        now_ms()
            + self
                .clock_offset_ms
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `serve --test-clock`: moves the sessions' clock forward (tests only).
    pub fn advance_clock_ms(&self, ms: i64) {
        self.clock_offset_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn write_state(&self) -> StateWrite<'_> {
        StateWrite {
            guard: Some(self.state.write()),
            generation: &self.generation,
        }
    }

    /// The current generation of the directory (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether any account exists (a fresh server has none until bootstrap).
    pub fn has_accounts(&self) -> bool {
        !self.state.read().accounts.is_empty()
    }

    /// Whether the account exists.
    pub fn account_exists(&self, id: &AccountId) -> bool {
        self.state.read().accounts.contains_key(id)
    }

    /// Every account, in no particular order.
    pub fn accounts(&self) -> Vec<AccountRecord> {
        self.state.read().accounts.values().cloned().collect()
    }

    /// An active long-term access key, or `None` (unknown, deleted or
    /// inactive keys are all refused the same way).
    pub fn active_access_key(&self, id: &str) -> Option<Arc<AccessKey>> {
        self.state
            .read()
            .access_keys
            .get(id)
            .filter(|k| k.status == AccessKeyStatus::Active)
            .cloned()
    }

    /// Creates an account and a root access key for it; returns the key
    /// (the only time its secret is shown).
    pub fn create_account(&self, id: &AccountId) -> Result<Arc<AccessKey>, IamError> {
        let _w = self.writer.lock();
        if self.state.read().accounts.contains_key(id) {
            return Err(IamError::AccountExists(id.clone()));
        }
        let account = AccountRecord {
            id: id.clone(),
            created_ms: now_ms(),
        };
        let key = self.new_access_key(Principal::Root {
            account: id.clone(),
        })?;
        self.store.apply(&[
            json_change(KIND_ACCOUNT, id.to_string(), &account)?,
            self.access_key_change(&key)?,
        ])?;
        let mut state = self.write_state();
        state.accounts.insert(id.clone(), account);
        state.access_keys.insert(key.id.clone(), key.clone());
        Ok(key)
    }

    pub(crate) fn new_access_key(&self, principal: Principal) -> Result<Arc<AccessKey>, IamError> {
        Ok(Arc::new(AccessKey {
            id: names::new_id("AKIA", 16)?,
            secret: names::new_secret(40)?,
            principal,
            status: AccessKeyStatus::Active,
            created_ms: now_ms(),
        }))
    }

    pub(crate) fn access_key_change(&self, key: &AccessKey) -> Result<Change, IamError> {
        let stored = StoredAccessKey {
            id: key.id.clone(),
            sealed_secret: seal(&self.sealer, &key.id, &key.secret)?,
            principal: key.principal.clone(),
            status: key.status,
            created_ms: key.created_ms,
        };
        json_change(KIND_ACCESS_KEY, key.id.clone(), &stored)
    }
}

pub(crate) fn seal(sealer: &Sealer, aad: &str, secret: &str) -> Result<String, IamError> {
    let sealed = sealer
        .seal(aad.as_bytes(), secret.as_bytes())
        .map_err(|e| IamError::Corrupt(e.to_string()))?;
    Ok(B64.encode(sealed))
}

pub(crate) fn unseal(
    sealer: &Sealer,
    aad: &str,
    sealed_b64: &str,
) -> Result<Zeroizing<String>, IamError> {
    let sealed = B64
        .decode(sealed_b64)
        .map_err(|e| IamError::Corrupt(e.to_string()))?;
    let plain = sealer
        .open(aad.as_bytes(), &sealed)
        .map_err(|e| IamError::Corrupt(format!("{aad}: {e}")))?;
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| IamError::Corrupt(format!("{aad}: secret is not text")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokms_store::SqliteStore;

    #[test]
    fn created_account_root_key_survives_reopen_and_secret_is_sealed_at_rest() {
        let dir = tempfile::tempdir().expect("test setup");
        let sealer = Arc::new(Sealer::ephemeral().expect("test setup"));
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("db")).expect("test setup"));
        let acct = AccountId::parse("111122223333").expect("test setup");
        let key = {
            let d = Directory::open(store.clone(), sealer.clone()).expect("test setup");
            let key = d.create_account(&acct).expect("test setup");
            assert!(matches!(
                d.create_account(&acct),
                Err(IamError::AccountExists(_))
            ));
            key
        };
        assert!(key.id.starts_with("AKIA") && key.id.len() == 20);
        assert_eq!(key.secret.len(), 40);
        let raw = store.load(KIND_ACCESS_KEY).expect("test setup");
        assert!(!String::from_utf8_lossy(&raw[0].body).contains(key.secret.as_str()));
        let d = Directory::open(store, sealer).expect("test setup");
        let again = d.active_access_key(&key.id).expect("test setup");
        assert_eq!(again.secret.as_str(), key.secret.as_str());
        assert_eq!(again.principal.arn("aws"), "arn:aws:iam::111122223333:root");
    }
}
