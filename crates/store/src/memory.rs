use std::collections::BTreeMap;

use parking_lot::Mutex;

use crate::{Change, Record, Store, StoreError};

/// A store that forgets everything at exit: for tests and `--in-memory`.
#[derive(Default)]
pub struct MemoryStore {
    docs: Mutex<BTreeMap<(String, String), Vec<u8>>>,
}

impl Store for MemoryStore {
    fn load(&self, kind: &str) -> Result<Vec<Record>, StoreError> {
        let docs = self.docs.lock();
        Ok(docs
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((k, id), body)| Record {
                kind: k.clone(),
                id: id.clone(),
                body: body.clone(),
            })
            .collect())
    }

    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .docs
            .lock()
            .get(&(kind.to_string(), id.to_string()))
            .cloned())
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut docs = self.docs.lock();
        for c in changes {
            match c {
                Change::Put { kind, id, body } => {
                    docs.insert((kind.to_string(), id.clone()), body.clone());
                }
                Change::Delete { kind, id } => {
                    docs.remove(&(kind.to_string(), id.clone()));
                }
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        "memory (nothing persists)".into()
    }
}
