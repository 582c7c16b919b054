//! The readiness probe's view of the KMS state (`GET /ready`).

use crate::{Kms, KmsError};

/// A document kind nothing stores: reading it costs an index lookup that
/// returns no rows, yet proves the store answers.
const PROBE_KIND: &str = "ferrokms-ready-probe";

impl Kms {
    /// Whether the store answers a read now. Blocking (it is store I/O):
    /// call it off the async executor.
    pub fn check_store(&self) -> Result<(), KmsError> {
        self.store.load(PROBE_KIND)?;
        Ok(())
    }
}
