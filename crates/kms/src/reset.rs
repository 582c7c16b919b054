//! Emptying the KMS state at once: `serve --dev`'s reset endpoints (the
//! moto / LocalStack conventions, see docs/identity.md, "Resetting a --dev
//! server"). Not an AWS operation: nothing in the API reaches it.

use crate::grants::KIND_GRANT;
use crate::state::{State, KIND_ALIAS, KIND_KEY, KIND_MATERIAL};
use crate::usage::KIND_USAGE;
use crate::{Kms, KmsError};

/// Every kind of document the KMS state is made of. Key policies, tags,
/// rotation and multi-Region settings live in the key record; imported and
/// rotated material in `kms.material`.
const KINDS: [&str; 6] = [
    KIND_KEY,
    KIND_MATERIAL,
    KIND_ALIAS,
    KIND_GRANT,
    KIND_USAGE,
    crate::ops::custom_key_stores::KIND_CUSTOM_KEY_STORE,
];

/// What [`Kms::reset_all`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// Keys (every account, every Region, every state).
    pub keys: usize,
    /// Aliases.
    pub aliases: usize,
    /// Grants.
    pub grants: usize,
    /// Stored documents deleted, all kinds together.
    pub documents: usize,
}

impl Kms {
    /// Deletes every key (with its material, policy, tags and recorded
    /// use), alias and grant of every account: one atomic, durable batch of
    /// deletions of everything the store holds for KMS, then the in-memory
    /// state is emptied in one step. Writers are held off meanwhile (the
    /// writer lock), so no change lands between the two; readers see the
    /// state before or after. On a shared store the caller holds the
    /// cluster write lock, and other nodes apply the deletions from the
    /// change feed like any other.
    pub fn reset_all(&self) -> Result<ResetReport, KmsError> {
        let _w = self.writer.lock();
        let changes = self.store.deletions_of(&KINDS)?;
        self.store.apply(&changes)?;
        let old = std::mem::take(&mut *self.state.write());
        let report = ResetReport {
            keys: old.keys.len(),
            aliases: old.aliases.len(),
            grants: old.grants.values().map(Vec::len).sum(),
            documents: changes.len(),
        };
        // The old keys' material is dropped (and wiped) here, outside the
        // state lock.
        drop::<State>(old);
        self.refresh_has_stores();
        Ok(report)
    }
}
