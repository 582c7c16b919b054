//! Applying changes that another node committed to a shared store.
//!
//! With several nodes on one PostgreSQL database every node keeps the whole
//! working set in memory, so each must fold in what the others wrote. The
//! store reports the latest version of every changed document (or its
//! deletion); this module turns those documents back into the in-memory
//! state exactly as [`Kms::open`] would have built it. Applying a document
//! twice is harmless, which is what makes catching up safe to repeat.

use std::collections::HashMap;
use std::sync::Arc;

use crate::grants::{GrantRecord, KIND_GRANT};
use crate::ids::{AliasAddr, KeyAddr};
use crate::keymat::KeyMaterial;
use crate::model::KeyRecord;
use crate::state::{material_storage_id, AliasRecord, Key, KIND_ALIAS, KIND_KEY, KIND_MATERIAL};
use crate::usage::KIND_USAGE;
use crate::{Kms, KmsError};

pub use ferrokms_store::RemoteDoc;

/// Whether a stored kind belongs to this crate.
pub fn owns_kind(kind: &str) -> bool {
    kind.starts_with("kms.")
}

impl Kms {
    /// Folds documents committed elsewhere into the in-memory state.
    /// Documents of kinds this build does not know are skipped (a newer
    /// node may write kinds an older one ignores).
    pub fn apply_remote(&self, docs: &[RemoteDoc<'_>]) -> Result<(), KmsError> {
        // Material arrives in the same batch as its key record but may sort
        // after it; index it first.
        let sealed: HashMap<&str, &[u8]> = docs
            .iter()
            .filter(|d| d.kind == KIND_MATERIAL)
            .filter_map(|d| d.body.map(|b| (d.id, b)))
            .collect();
        for doc in docs {
            match (doc.kind, doc.body) {
                (KIND_KEY, Some(body)) => self.remote_key(doc.id, body, &sealed)?,
                (KIND_KEY, None) => {
                    if let Some(addr) = KeyAddr::from_storage_id(doc.id) {
                        self.state.write().keys.remove(&addr);
                    }
                }
                // After the keys of the batch: below.
                (KIND_USAGE, _) => {}
                (KIND_ALIAS, Some(body)) => {
                    let alias: AliasRecord = decode(doc, body)?;
                    self.state.write().aliases.insert(alias.addr.clone(), alias);
                }
                (KIND_ALIAS, None) => {
                    if let Some(addr) = AliasAddr::from_storage_id(doc.id) {
                        self.state.write().aliases.remove(&addr);
                    }
                }
                (KIND_GRANT, Some(body)) => {
                    let grant: GrantRecord = decode(doc, body)?;
                    let mut state = self.state.write();
                    let grants = state.grants.entry(grant.key.clone()).or_default();
                    grants.retain(|g| g.grant_id != grant.grant_id);
                    grants.push(Arc::new(grant));
                    grants.sort_by_key(|g| g.created_ms);
                }
                (KIND_GRANT, None) => {
                    let mut state = self.state.write();
                    for grants in state.grants.values_mut() {
                        grants.retain(|g| g.grant_id != doc.id);
                    }
                    state.grants.retain(|_, g| !g.is_empty());
                }
                // Material is read along with its key record.
                (KIND_MATERIAL, _) => {}
                (crate::ops::custom_key_stores::KIND_CUSTOM_KEY_STORE, Some(body)) => {
                    let loaded =
                        crate::ops::custom_key_stores::load_store(&self.sealer, doc.id, body)?;
                    self.state
                        .write()
                        .custom_key_stores
                        .insert(loaded.record.id.clone(), loaded);
                    self.refresh_has_stores();
                }
                (crate::ops::custom_key_stores::KIND_CUSTOM_KEY_STORE, None) => {
                    self.state.write().custom_key_stores.remove(doc.id);
                    self.refresh_has_stores();
                }
                (other, _) => {
                    tracing::debug!(
                        kind = other,
                        id = doc.id,
                        "skipping a stored kind this build does not know"
                    );
                }
            }
        }
        // The later of this node's and the other node's last use, once the
        // batch's keys are in: a key changed after its usage was flushed
        // comes later in the feed than that usage. (A deleted usage document
        // goes with its key, which the key's deletion handles.)
        for doc in docs.iter().filter(|d| d.kind == KIND_USAGE) {
            if let Some(body) = doc.body {
                crate::usage::apply_doc(&self.state.read().keys, doc.id, body)?;
            }
        }
        Ok(())
    }

    fn remote_key(
        &self,
        id: &str,
        body: &[u8],
        sealed: &HashMap<&str, &[u8]>,
    ) -> Result<(), KmsError> {
        let mut record: KeyRecord = serde_json::from_slice(body)
            .map_err(|e| KmsError::Internal(format!("stored key {id} is unreadable: {e}")))?;
        let current = self.state.read().keys.get(&record.addr).cloned();
        // An EXTERNAL key without imported material has none stored.
        let versions = if record.has_material() {
            record.materials.len()
        } else {
            0
        };
        let mut materials = Vec::with_capacity(versions);
        for (v, info) in record.materials.iter().enumerate().take(versions) {
            // Material never changes under a given id: reuse what is loaded.
            let known = current.as_ref().and_then(|k| {
                let same = k.record.materials.get(v).is_some_and(|m| m.id == info.id);
                if same {
                    k.materials.get(v).cloned()
                } else {
                    None
                }
            });
            if let Some(m) = known {
                materials.push(m);
                continue;
            }
            let mid = material_storage_id(&record.addr, v as u32);
            let blob = match sealed.get(mid.as_str()) {
                Some(b) => b.to_vec(),
                None => self.store.get(KIND_MATERIAL, &mid)?.ok_or_else(|| {
                    KmsError::Internal(format!("key material {mid} is missing from the store"))
                })?,
            };
            let plain = self
                .sealer
                .open(mid.as_bytes(), &blob)
                .map_err(|e| KmsError::Internal(format!("key material {mid}: {e}")))?;
            materials.push(Arc::new(KeyMaterial::load(
                record.key_spec,
                record.key_usage,
                &plain,
            )?));
        }
        let policy = match &current {
            Some(k) if k.record.policy == record.policy => {
                record.policy = k.record.policy.clone();
                k.policy.clone()
            }
            _ => self.policies.get(&mut record.policy),
        };
        let key = Arc::new(Key {
            usage: current.map(|k| k.usage.clone()).unwrap_or_default(),
            record,
            materials,
            policy,
        });
        self.state.write().keys.insert(key);
        Ok(())
    }
}

fn decode<T: serde::de::DeserializeOwned>(doc: &RemoteDoc<'_>, body: &[u8]) -> Result<T, KmsError> {
    serde_json::from_slice(body).map_err(|e| {
        KmsError::Internal(format!("stored {} {} is unreadable: {e}", doc.kind, doc.id))
    })
}
