//! Durable storage for ferrokms.
//!
//! The domain crates (`kms`, `iam`) keep their whole working set in memory and
//! use the store only to make changes durable and to load state at start. So
//! the contract is deliberately small: a set of typed documents (`kind`, `id`)
//! → bytes, changed in atomic batches. A batch is durable when `apply`
//! returns; callers acknowledge a request only after that. Keeping the
//! contract this narrow is what lets PostgreSQL slot in later without
//! touching any operation.

mod memory;
mod postgres;
pub mod seal;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::PostgresStore;
pub use seal::{SealError, Sealer};
pub use sqlite::SqliteStore;

use std::ops::ControlFlow;

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The document type (`key`, `alias`, `user`...); a namespace for `id`.
    pub kind: String,
    /// The document's id, unique within its kind.
    pub id: String,
    /// The document as its owner serialized it (JSON, key material sealed inside).
    pub body: Vec<u8>,
}

/// One change in an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Creates or replaces the document `kind`/`id`.
    Put {
        /// The document type.
        kind: &'static str,
        /// The document's id within its kind.
        id: String,
        /// The new contents.
        body: Vec<u8>,
    },
    /// Removes the document `kind`/`id`; removing an absent one is not an error.
    Delete {
        /// The document type.
        kind: &'static str,
        /// The document's id within its kind.
        id: String,
    },
}

/// Why a store operation failed; none of them is the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend reported an error (I/O, SQL); the change was not made.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// Data read back does not decode as what was written.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database cannot be reached now (stopped, restarting, timed
    /// out); the request may be retried.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
}

/// One document as the change feed of a shared store reports it: its
/// latest version (`body: None` when deleted) and the sequence number of
/// the batch that last changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    /// The sequence number of the batch that last changed the document.
    pub seq: u64,
    /// The document type.
    pub kind: String,
    /// The document's id within its kind.
    pub id: String,
    /// The latest contents; `None` when the document was deleted.
    pub body: Option<Vec<u8>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// The storage contract shared by every backend.
pub trait Store: Send + Sync + 'static {
    /// Every document of one kind, in id order.
    fn load(&self, kind: &str) -> Result<Vec<Record>, StoreError>;
    /// Every document of one kind, in id order, handed to `f` one at a
    /// time until it answers `Break`: loading a large store at start then
    /// never holds all of its documents at once (~85 MB of JSON for 100k
    /// keys). Backends that cannot stream load them all first.
    fn load_each(
        &self,
        kind: &str,
        f: &mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        for r in self.load(kind)? {
            if f(&r.id, &r.body).is_break() {
                break;
            }
        }
        Ok(())
    }
    /// A deletion of every document of these kinds, to apply in one batch
    /// (the `--dev` resets of KMS and IAM).
    fn deletions_of(&self, kinds: &[&'static str]) -> Result<Vec<Change>, StoreError> {
        let mut changes = Vec::new();
        for &kind in kinds {
            self.load_each(kind, &mut |id, _| {
                changes.push(Change::Delete {
                    kind,
                    id: id.to_string(),
                });
                ControlFlow::Continue(())
            })?;
        }
        Ok(changes)
    }
    /// Applies all changes or none; returns once they are durable.
    fn apply(&self, changes: &[Change]) -> Result<(), StoreError>;
    /// One document, if present.
    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .load(kind)?
            .into_iter()
            .find(|r| r.id == id)
            .map(|r| r.body))
    }
    /// A short name for logs (`sqlite:/path`, `memory`).
    fn describe(&self) -> String;
    /// Stores that several nodes share expose their change feed and
    /// cluster write lock; single-node stores return `None`.
    fn shared(&self) -> Option<&dyn SharedStore> {
        None
    }
}

impl Changed {
    /// The borrowed view the domain crates apply.
    pub fn as_remote(&self) -> RemoteDoc<'_> {
        RemoteDoc {
            kind: &self.kind,
            id: &self.id,
            body: self.body.as_deref(),
        }
    }
}

/// A document as another node left it (`body: None`: deleted), as the
/// domain crates fold it into their in-memory state.
#[derive(Debug, Clone, Copy)]
pub struct RemoteDoc<'a> {
    /// The document type.
    pub kind: &'a str,
    /// The document's id within its kind.
    pub id: &'a str,
    /// The latest contents; `None` when the document was deleted.
    pub body: Option<&'a [u8]>,
}

/// What several nodes on one database need beyond [`Store`]: the ordered
/// feed of committed changes, and a lock that orders writes across nodes.
pub trait SharedStore: Send + Sync {
    /// The sequence number of the last committed batch.
    fn head(&self) -> Result<u64, StoreError>;
    /// Every document whose last change came after batch `seq`, in commit
    /// order; a consistent snapshot (a prefix of the sequence).
    fn changes_since(&self, seq: u64) -> Result<Vec<Changed>, StoreError>;
    /// Takes the cluster-wide write lock; blocks (bounded) until held.
    fn lock_writes(&self) -> Result<(), StoreError>;
    /// Releases it.
    fn unlock_writes(&self);
    /// The highest sequence number this process committed.
    fn last_committed(&self) -> u64;
}
