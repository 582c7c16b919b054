//! Identities: accounts, principals and the access keys that authenticate
//! them. The server looks an access key id up here to find the secret it
//! verifies a signature with and the principal the request acts as.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ferrokms_store::{Change, Sealer, Store};
use ferrokms_types::AccountId;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

const KIND_ACCOUNT: &str = "iam.account";
const KIND_ACCESS_KEY: &str = "iam.access_key";

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("account {0} already exists")]
    AccountExists(AccountId),
    #[error("account {0} does not exist")]
    NoSuchAccount(AccountId),
    #[error("storage failure: {0}")]
    Store(#[from] ferrokms_store::StoreError),
    #[error("stored identity data is unreadable: {0}")]
    Corrupt(String),
    #[error("random number generator failed")]
    Random,
}

/// Who an access key acts as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Principal {
    /// The account's root user.
    Root { account: AccountId },
}

impl Principal {
    pub fn account(&self) -> &AccountId {
        match self {
            Principal::Root { account } => account,
        }
    }

    /// The ARN AWS prints for this principal in messages.
    pub fn arn(&self, partition: &str) -> String {
        match self {
            Principal::Root { account } => account.root_arn(partition),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKeyStatus {
    Active,
    Inactive,
}

/// An access key with its secret in the clear, held in memory only.
pub struct AccessKey {
    pub id: String,
    pub secret: Zeroizing<String>,
    pub principal: Principal,
    pub status: AccessKeyStatus,
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
struct StoredAccessKey {
    id: String,
    sealed_secret: String,
    principal: Principal,
    status: AccessKeyStatus,
    created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub id: AccountId,
    pub created_ms: i64,
}

#[derive(Default)]
struct IamState {
    accounts: BTreeMap<AccountId, AccountRecord>,
    access_keys: HashMap<String, Arc<AccessKey>>,
}

/// The identity directory: every account and access key, in memory, written
/// through to the store.
pub struct Directory {
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    state: RwLock<IamState>,
    writer: Mutex<()>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Directory {
    pub fn open(store: Arc<dyn Store>, sealer: Arc<Sealer>) -> Result<Directory, IamError> {
        let mut state = IamState::default();
        for rec in store.load(KIND_ACCOUNT)? {
            let a: AccountRecord =
                serde_json::from_slice(&rec.body).map_err(|e| IamError::Corrupt(e.to_string()))?;
            state.accounts.insert(a.id.clone(), a);
        }
        for rec in store.load(KIND_ACCESS_KEY)? {
            let s: StoredAccessKey =
                serde_json::from_slice(&rec.body).map_err(|e| IamError::Corrupt(e.to_string()))?;
            let sealed = B64
                .decode(&s.sealed_secret)
                .map_err(|e| IamError::Corrupt(e.to_string()))?;
            let secret = sealer
                .open(s.id.as_bytes(), &sealed)
                .map_err(|e| IamError::Corrupt(format!("access key {}: {e}", s.id)))?;
            let secret = String::from_utf8(secret.to_vec()).map_err(|_| {
                IamError::Corrupt(format!("access key {}: secret is not text", s.id))
            })?;
            state.access_keys.insert(
                s.id.clone(),
                Arc::new(AccessKey {
                    id: s.id,
                    secret: Zeroizing::new(secret),
                    principal: s.principal,
                    status: s.status,
                    created_ms: s.created_ms,
                }),
            );
        }
        Ok(Directory {
            store,
            sealer,
            state: RwLock::new(state),
            writer: Mutex::new(()),
        })
    }

    pub fn has_accounts(&self) -> bool {
        !self.state.read().accounts.is_empty()
    }

    pub fn account_exists(&self, id: &AccountId) -> bool {
        self.state.read().accounts.contains_key(id)
    }

    pub fn accounts(&self) -> Vec<AccountRecord> {
        self.state.read().accounts.values().cloned().collect()
    }

    /// An active access key, or `None` (unknown, deleted or inactive keys
    /// are all refused the same way).
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
        let changes = vec![
            Change::Put {
                kind: KIND_ACCOUNT,
                id: id.to_string(),
                body: serde_json::to_vec(&account).map_err(|e| IamError::Corrupt(e.to_string()))?,
            },
            self.access_key_change(&key)?,
        ];
        self.store.apply(&changes)?;
        let mut state = self.state.write();
        state.accounts.insert(id.clone(), account);
        state.access_keys.insert(key.id.clone(), key.clone());
        Ok(key)
    }

    /// Another root access key for an existing account.
    pub fn create_root_access_key(&self, id: &AccountId) -> Result<Arc<AccessKey>, IamError> {
        let _w = self.writer.lock();
        if !self.state.read().accounts.contains_key(id) {
            return Err(IamError::NoSuchAccount(id.clone()));
        }
        let key = self.new_access_key(Principal::Root {
            account: id.clone(),
        })?;
        self.store.apply(&[self.access_key_change(&key)?])?;
        self.state
            .write()
            .access_keys
            .insert(key.id.clone(), key.clone());
        Ok(key)
    }

    fn new_access_key(&self, principal: Principal) -> Result<Arc<AccessKey>, IamError> {
        const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const SECRET_ALPHABET: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let rng = SystemRandom::new();
        let mut raw = Zeroizing::new([0u8; 56]);
        rng.fill(raw.as_mut()).map_err(|_| IamError::Random)?;
        let id: String = std::iter::once("AKIA".to_string())
            .chain(
                raw[..16]
                    .iter()
                    .map(|b| (ID_ALPHABET[(*b as usize) % ID_ALPHABET.len()] as char).to_string()),
            )
            .collect();
        let secret: Zeroizing<String> = Zeroizing::new(
            raw[16..]
                .iter()
                .map(|b| SECRET_ALPHABET[(*b as usize) % SECRET_ALPHABET.len()] as char)
                .collect(),
        );
        Ok(Arc::new(AccessKey {
            id,
            secret,
            principal,
            status: AccessKeyStatus::Active,
            created_ms: now_ms(),
        }))
    }

    fn access_key_change(&self, key: &AccessKey) -> Result<Change, IamError> {
        let sealed = self
            .sealer
            .seal(key.id.as_bytes(), key.secret.as_bytes())
            .map_err(|e| IamError::Corrupt(e.to_string()))?;
        let stored = StoredAccessKey {
            id: key.id.clone(),
            sealed_secret: B64.encode(sealed),
            principal: key.principal.clone(),
            status: key.status,
            created_ms: key.created_ms,
        };
        Ok(Change::Put {
            kind: KIND_ACCESS_KEY,
            id: key.id.clone(),
            body: serde_json::to_vec(&stored).map_err(|e| IamError::Corrupt(e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokms_store::SqliteStore;

    #[test]
    fn created_account_root_key_survives_reopen_and_secret_is_sealed_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let sealer = Arc::new(Sealer::ephemeral().unwrap());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let acct = AccountId::parse("111122223333").unwrap();
        let key = {
            let d = Directory::open(store.clone(), sealer.clone()).unwrap();
            let key = d.create_account(&acct).unwrap();
            assert!(matches!(
                d.create_account(&acct),
                Err(IamError::AccountExists(_))
            ));
            key
        };
        assert!(key.id.starts_with("AKIA") && key.id.len() == 20);
        assert_eq!(key.secret.len(), 40);
        let raw = store.load(KIND_ACCESS_KEY).unwrap();
        assert!(!String::from_utf8_lossy(&raw[0].body).contains(key.secret.as_str()));
        let d = Directory::open(store, sealer).unwrap();
        let again = d.active_access_key(&key.id).unwrap();
        assert_eq!(again.secret.as_str(), key.secret.as_str());
        assert_eq!(again.principal.arn("aws"), "arn:aws:iam::111122223333:root");
    }
}
