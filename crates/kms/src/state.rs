//! The in-memory working set and the write-through to the store.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrokms_store::{Change, Sealer, Store};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::ids::{AliasAddr, KeyAddr, KeyRef};
use crate::keymat::{self, KeyMaterial};
use crate::model::{KeyRecord, KeyState, MaterialInfo};
use crate::KmsError;
use zeroize::Zeroizing;

pub(crate) const KIND_KEY: &str = "kms.key";
pub(crate) const KIND_MATERIAL: &str = "kms.material";
pub(crate) const KIND_ALIAS: &str = "kms.alias";

/// Wall-clock time in milliseconds, with an offset tests can move forward
/// (deletion windows and rotations are days long).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The current time as the service sees it (the real clock plus any test advance).
    pub fn now_ms(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        real + self.offset_ms.load(Ordering::Relaxed)
    }

    /// Moves the service's clock forward by `ms` (`serve --test-clock`).
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// What one [`Kms::sweep`] did, part by part.
#[derive(Debug)]
pub struct SweepReport {
    /// Keys whose deletion date passed and were deleted.
    pub keys_deleted: Result<usize, KmsError>,
    /// Keys rotated because their rotation date came.
    pub keys_rotated: Result<usize, KmsError>,
    /// Imported materials whose expiry passed and were deleted.
    pub materials_expired: Result<usize, KmsError>,
}

/// A key with its material ready for use.
#[derive(Debug)]
pub struct Key {
    pub record: KeyRecord,
    /// Indexed by material version (the number carried in ciphertexts).
    pub(crate) materials: Vec<Arc<KeyMaterial>>,
    /// The key policy, parsed once per change (authorization never re-parses).
    pub(crate) policy: Arc<ferrokms_policy::Policy>,
    /// The key's last use, shared by every version of the record (see
    /// [`crate::usage`]): a new version takes its predecessor's slot.
    pub(crate) usage: Arc<crate::usage::UsageSlot>,
}

/// Every loaded key, found by its address.
///
/// A set of the keys themselves, hashed and compared by the address inside
/// each record, rather than a map keyed by a copy of the address: the copy
/// (72 bytes, plus its region's heap block) in every slot of the table was
/// ~150 bytes a loaded key. A key's record never changes inside its `Arc`
/// (a change is a new `Key`), so the hash of an entry never moves.
#[derive(Default)]
pub(crate) struct KeyMap(foldhash::HashSet<ByAddr>);

/// A key as an entry of [`KeyMap`]: equal and hashed as its address.
struct ByAddr(Arc<Key>);

impl Borrow<KeyAddr> for ByAddr {
    fn borrow(&self) -> &KeyAddr {
        &self.0.record.addr
    }
}

impl Hash for ByAddr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The same hash as the `KeyAddr` it borrows as (`Borrow`'s contract).
        self.0.record.addr.hash(state);
    }
}

impl PartialEq for ByAddr {
    fn eq(&self, other: &Self) -> bool {
        self.0.record.addr == other.0.record.addr
    }
}

impl Eq for ByAddr {}

impl KeyMap {
    pub(crate) fn get(&self, addr: &KeyAddr) -> Option<&Arc<Key>> {
        self.0.get(addr).map(|k| &k.0)
    }

    pub(crate) fn contains_key(&self, addr: &KeyAddr) -> bool {
        self.0.contains(addr)
    }

    /// Adds the key, or replaces the version held under its address.
    pub(crate) fn insert(&mut self, key: Arc<Key>) {
        self.0.replace(ByAddr(key));
    }

    pub(crate) fn remove(&mut self, addr: &KeyAddr) -> Option<Arc<Key>> {
        self.0.take(addr).map(|k| k.0)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Arc<Key>> {
        self.0.iter().map(|k| &k.0)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The last-use slot for a key being built at `addr`: the current
    /// version's, so that every version shares one, or a new one.
    pub(crate) fn usage_slot(&self, addr: &KeyAddr) -> Arc<crate::usage::UsageSlot> {
        self.get(addr).map(|k| k.usage.clone()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub addr: AliasAddr,
    pub target: KeyAddr,
    pub created_ms: i64,
    pub updated_ms: i64,
}

#[derive(Default)]
pub(crate) struct State {
    pub keys: KeyMap,
    /// Ordered so that ListAliases pages are stable.
    pub aliases: BTreeMap<AliasAddr, AliasRecord>,
    /// Grants by key, in creation order.
    pub grants: foldhash::HashMap<KeyAddr, Vec<Arc<crate::grants::GrantRecord>>>,
    /// External key stores of every account, by id.
    pub custom_key_stores: BTreeMap<String, Arc<crate::ops::custom_key_stores::LoadedStore>>,
}

/// Parsed key policies shared by text, with the text itself: a key's
/// record and its parsed policy both point into the cache's copies. Bounded:
/// when full it starts over (keys keep their own `Arc`s; only future
/// sharing is lost).
#[derive(Default)]
pub(crate) struct PolicyCache {
    by_text: Mutex<HashMap<Arc<str>, Arc<ferrokms_policy::Policy>>>,
    /// Lookups that found the text parsed already / had to parse it (the
    /// server's metrics report them).
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

const POLICY_CACHE_MAX: usize = 4096;

impl PolicyCache {
    /// The parsed policy of `text`; `text` is replaced by the shared copy
    /// of the same text.
    pub(crate) fn get(&self, text: &mut Arc<str>) -> Arc<ferrokms_policy::Policy> {
        let mut map = self.by_text.lock();
        if let Some((shared, p)) = map.get_key_value(&**text) {
            *text = shared.clone();
            self.hits.fetch_add(1, Ordering::Relaxed);
            return p.clone();
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let parsed = crate::authz::load_key_policy(text);
        if map.len() >= POLICY_CACHE_MAX {
            map.clear();
        }
        map.insert(text.clone(), parsed.clone());
        parsed
    }
}

/// The KMS service: every key in memory, every change written through.
pub struct Kms {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) state: RwLock<State>,
    /// Serialises writers so that read-modify-write of a record is atomic;
    /// readers never take it.
    pub(crate) writer: Mutex<()>,
    /// Who exists, for validating the principals of key policies.
    pub(crate) principals: RwLock<Option<Arc<dyn crate::authz::PrincipalDirectory>>>,
    /// Parsed key policies by text: keys with the same policy (every
    /// default policy of an account) share one parsed copy.
    pub(crate) policies: PolicyCache,
    /// The service's clock (see [`Clock`]).
    pub clock: Clock,
    /// `--dev`: CreateKey honours LocalStack's `_custom_id_` and
    /// `_custom_key_material_` tags (see [`crate::given`]).
    pub(crate) localstack_tags: std::sync::atomic::AtomicBool,
    /// The HTTPS client to external key store proxies (set by the server).
    pub(crate) xks_transport: RwLock<Option<Arc<dyn crate::xks::XksTransport>>>,
    /// Whether any custom key store exists (see [`Kms::has_custom_key_stores`]).
    pub(crate) has_stores: std::sync::atomic::AtomicBool,
    /// Held by CreateKey in an external key store from its check that the
    /// external key is unused until the key is stored.
    pub(crate) xks_create: Mutex<()>,
}

impl Kms {
    /// Loads every key and alias from the store and unseals the material.
    ///
    /// Keys, then materials, are read one document at a time
    /// ([`Store::load_each`]), each material unsealed straight into its
    /// key: nothing is held for the whole load but the keys that stay.
    /// (Holding every stored document, and every sealed material, until the
    /// end kept RSS right after a restart with 100k keys at 130 MiB instead
    /// of 79: 100k small blocks freed among the pages of the keys that stay,
    /// which mimalloc cannot give back.)
    pub fn open(store: Arc<dyn Store>, sealer: Arc<Sealer>) -> Result<Kms, KmsError> {
        let mut state = State::default();
        let policies = PolicyCache::default();
        let mut failed = None;
        store.load_each(
            KIND_KEY,
            &mut |id, body| match serde_json::from_slice::<KeyRecord>(body) {
                Ok(mut record) => {
                    let versions = material_versions(&record);
                    state.keys.insert(Arc::new(Key {
                        policy: policies.get(&mut record.policy),
                        usage: Arc::default(),
                        record,
                        materials: Vec::with_capacity(versions),
                    }));
                    ControlFlow::Continue(())
                }
                Err(e) => {
                    failed = Some(KmsError::Internal(format!(
                        "stored key {id} is unreadable: {e}"
                    )));
                    ControlFlow::Break(())
                }
            },
        )?;
        let mut loading = LoadingMaterials::default();
        store.load_each(KIND_MATERIAL, &mut |id, body| match loading.add(
            &mut state.keys,
            &sealer,
            id,
            body,
        ) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        for key in state.keys.values() {
            let want = material_versions(&key.record);
            if key.materials.len() < want {
                let id = material_storage_id(&key.record.addr, key.materials.len() as u32);
                return Err(KmsError::Internal(format!(
                    "key material {id} is missing from the store"
                )));
            }
        }
        for rec in store.load(KIND_ALIAS)? {
            let alias: AliasRecord = serde_json::from_slice(&rec.body).map_err(|e| {
                KmsError::Internal(format!("stored alias {} is unreadable: {e}", rec.id))
            })?;
            state.aliases.insert(alias.addr.clone(), alias);
        }
        for rec in store.load(crate::grants::KIND_GRANT)? {
            let grant: crate::grants::GrantRecord =
                serde_json::from_slice(&rec.body).map_err(|e| {
                    KmsError::Internal(format!("stored grant {} is unreadable: {e}", rec.id))
                })?;
            state
                .grants
                .entry(grant.key.clone())
                .or_default()
                .push(Arc::new(grant));
        }
        for grants in state.grants.values_mut() {
            grants.sort_by_key(|g| g.created_ms);
        }
        for rec in store.load(crate::ops::custom_key_stores::KIND_CUSTOM_KEY_STORE)? {
            let loaded = crate::ops::custom_key_stores::load_store(&sealer, &rec.id, &rec.body)?;
            state
                .custom_key_stores
                .insert(loaded.record.id.clone(), loaded);
        }
        let has_stores = !state.custom_key_stores.is_empty();
        // Usage of keys that no longer exist (deleted before the flush that
        // would have removed it) is ignored.
        let mut failed = None;
        store.load_each(
            crate::usage::KIND_USAGE,
            &mut |id, body| match crate::usage::apply_doc(&state.keys, id, body) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            },
        )?;
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(Kms {
            store,
            sealer,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            principals: RwLock::new(None),
            policies,
            clock: Clock::default(),
            localstack_tags: std::sync::atomic::AtomicBool::new(false),
            xks_transport: RwLock::new(None),
            has_stores: std::sync::atomic::AtomicBool::new(has_stores),
            xks_create: Mutex::new(()),
        })
    }

    /// Lookups of parsed key policies by text since start: (hits, misses).
    /// A hit is a key whose policy text another key already had.
    pub fn policy_cache_stats(&self) -> (u64, u64) {
        (
            self.policies.hits.load(Ordering::Relaxed),
            self.policies.misses.load(Ordering::Relaxed),
        )
    }

    /// How many keys this node holds, all accounts together.
    pub fn key_count(&self) -> usize {
        self.state.read().keys.len()
    }

    /// Finds the key a request names. Aliases are followed; a name in
    /// another account is visible only by ARN (enforced by [`KeyRef::parse`]).
    pub(crate) fn lookup(&self, key_ref: &KeyRef) -> Result<Arc<Key>, KmsError> {
        let state = self.state.read();
        let addr = match key_ref {
            KeyRef::Key(addr) => addr,
            KeyRef::Alias(alias) => {
                &state
                    .aliases
                    .get(alias)
                    .ok_or_else(|| {
                        KmsError::NotFound(format!("Alias {} is not found.", alias.arn()))
                    })?
                    .target
            }
        };
        state
            .keys
            .get(addr)
            .cloned()
            .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", addr.arn())))
    }

    /// Read-modify-write of one key record, durable before it is visible.
    pub(crate) fn update_key<T>(
        &self,
        addr: &KeyAddr,
        f: impl FnOnce(&mut KeyRecord) -> Result<T, KmsError>,
    ) -> Result<(Arc<Key>, T), KmsError> {
        let w = self.writer.lock();
        let current = self.current_key(&w, addr)?;
        let mut record = current.record.clone();
        let out = f(&mut record)?;
        if record == current.record {
            return Ok((current, out));
        }
        self.store.apply(&[put_key_change(&record)?])?;
        let policy = if record.policy == current.record.policy {
            current.policy.clone()
        } else {
            self.policies.get(&mut record.policy)
        };
        let key = Arc::new(Key {
            record,
            materials: current.materials.clone(),
            policy,
            usage: current.usage.clone(),
        });
        self.state.write().keys.insert(key.clone());
        Ok((key, out))
    }

    /// Creates a key without material (Origin EXTERNAL, PendingImport),
    /// durable before it is visible.
    pub(crate) fn insert_key_without_material(
        &self,
        mut record: KeyRecord,
    ) -> Result<Arc<Key>, KmsError> {
        let _w = self.writer.lock();
        self.store.apply(&[put_key_change(&record)?])?;
        let key = Arc::new(Key {
            materials: Vec::new(),
            policy: self.policies.get(&mut record.policy),
            usage: self.state.read().keys.usage_slot(&record.addr),
            record,
        });
        self.state.write().keys.insert(key.clone());
        Ok(key)
    }

    /// Replaces a key's record and loaded material in one durable step:
    /// `changes` (material puts or deletes) are applied with the record.
    /// The caller holds the writer lock.
    pub(crate) fn replace_key_locked(
        &self,
        mut record: KeyRecord,
        materials: Vec<Arc<KeyMaterial>>,
        mut changes: Vec<Change>,
    ) -> Result<Arc<Key>, KmsError> {
        changes.push(put_key_change(&record)?);
        self.store.apply(&changes)?;
        let key = Arc::new(Key {
            materials,
            policy: self.policies.get(&mut record.policy),
            usage: self.state.read().keys.usage_slot(&record.addr),
            record,
        });
        self.state.write().keys.insert(key.clone());
        Ok(key)
    }

    /// The key at `addr` as it is now, for a writer: `_held` (the writer
    /// lock's guard) proves the caller holds the lock, so nothing changes
    /// the key between this read and the caller's write. A key looked up
    /// before the lock may have been deleted meanwhile (by the sweeper, or
    /// by a `--dev` reset): it is NotFound then, so no alias, grant or
    /// material is ever stored for a key that is gone.
    pub(crate) fn current_key(
        &self,
        _held: &parking_lot::MutexGuard<'_, ()>,
        addr: &KeyAddr,
    ) -> Result<Arc<Key>, KmsError> {
        self.state
            .read()
            .keys
            .get(addr)
            .cloned()
            .ok_or_else(|| KmsError::NotFound(format!("Key '{}' does not exist", addr.arn())))
    }

    /// Writes `changes` in one durable batch, then makes `keys` visible in
    /// one step: readers see all of them or none, and nothing that is not
    /// on disk. The caller holds the writer lock.
    pub(crate) fn commit_keys(
        &self,
        changes: &[Change],
        keys: &[Arc<Key>],
    ) -> Result<(), KmsError> {
        self.store.apply(changes)?;
        let mut state = self.state.write();
        for k in keys {
            state.keys.insert(k.clone());
        }
        Ok(())
    }

    /// Creates a key with fresh material (or, `given`, the material and
    /// its id), durable before it is visible. Generation (seconds for
    /// RSA-4096) happens before the writer lock. A key already at the
    /// record's address (a `--dev` custom id) is AlreadyExistsException.
    pub(crate) fn insert_new_key(
        &self,
        mut record: KeyRecord,
        given: Option<(Zeroizing<Vec<u8>>, KeyMaterial, crate::model::MaterialId)>,
    ) -> Result<Arc<Key>, KmsError> {
        let (material, loaded, material_id) = match given {
            Some(g) => g,
            None => {
                let material = keymat::generate(record.key_spec, record.key_usage)?;
                let loaded = KeyMaterial::load(record.key_spec, record.key_usage, &material)?;
                (material, loaded, crate::crypto::random_material_id()?)
            }
        };
        record.materials = vec![MaterialInfo {
            id: material_id,
            created_ms: record.created_ms,
            rotation: None,
            description: None,
        }];
        let mid = material_storage_id(&record.addr, 0);
        let sealed = self
            .sealer
            .seal(mid.as_bytes(), &material)
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let _w = self.writer.lock();
        if self.state.read().keys.contains_key(&record.addr) {
            return Err(KmsError::AlreadyExists(format!(
                "A key with id {} already exists in account {} and Region {}.",
                record.addr.key_id, record.addr.account, record.addr.region
            )));
        }
        self.store.apply(&[
            Change::Put {
                kind: KIND_MATERIAL,
                id: mid,
                body: sealed,
            },
            put_key_change(&record)?,
        ])?;
        let key = Arc::new(Key {
            materials: vec![Arc::new(loaded)],
            policy: self.policies.get(&mut record.policy),
            usage: self.state.read().keys.usage_slot(&record.addr),
            record,
        });
        self.state.write().keys.insert(key.clone());
        Ok(key)
    }

    /// The periodic work of the server's sweeper (and of the test clock):
    /// deletions due, rotations due, imported material past its `ValidTo`.
    /// Each part runs even if an earlier one failed.
    pub fn sweep(&self) -> SweepReport {
        SweepReport {
            keys_deleted: self.purge_due_keys(),
            keys_rotated: self.rotate_due_keys(),
            materials_expired: self.expire_imported_material(),
        }
    }

    /// The keys whose record satisfies `due`, read under the state's read
    /// lock: what the sweeper's jobs (deletion, rotation, expiry of imported
    /// material) then take one by one under the writer lock, checking again.
    pub(crate) fn keys_where(&self, due: impl Fn(&KeyRecord) -> bool) -> Vec<KeyAddr> {
        self.state
            .read()
            .keys
            .values()
            .filter(|k| due(&k.record))
            .map(|k| k.record.addr.clone())
            .collect()
    }

    /// Deletes keys whose deletion date has passed, with their material and
    /// aliases. Returns how many keys were deleted.
    pub fn purge_due_keys(&self) -> Result<usize, KmsError> {
        let now = self.clock.now_ms();
        let due = self.keys_where(|r| {
            r.state == KeyState::PendingDeletion && r.deletion_ms.is_some_and(|d| d <= now)
        });
        let mut purged = 0;
        for addr in due {
            let _w = self.writer.lock();
            let Some(key) = self.state.read().keys.get(&addr).cloned() else {
                continue;
            };
            let still_due = key.record.state == KeyState::PendingDeletion
                && key.record.deletion_ms.is_some_and(|d| d <= now);
            if !still_due {
                continue;
            }
            let aliases: Vec<AliasAddr> = self
                .state
                .read()
                .aliases
                .values()
                .filter(|a| a.target == addr)
                .map(|a| a.addr.clone())
                .collect();
            let mut changes = vec![Change::Delete {
                kind: KIND_KEY,
                id: addr.storage_id(),
            }];
            // Imported material pending rotation is stored as the next version.
            let stored =
                key.record.materials.len() + usize::from(key.record.pending_material().is_some());
            for v in 0..stored {
                changes.push(Change::Delete {
                    kind: KIND_MATERIAL,
                    id: material_storage_id(&addr, v as u32),
                });
            }
            for a in &aliases {
                changes.push(Change::Delete {
                    kind: KIND_ALIAS,
                    id: a.storage_id(),
                });
            }
            changes.push(Change::Delete {
                kind: crate::usage::KIND_USAGE,
                id: addr.storage_id(),
            });
            let grant_ids: Vec<String> = self
                .state
                .read()
                .grants
                .get(&addr)
                .map(|g| g.iter().map(|g| g.grant_id.clone()).collect())
                .unwrap_or_default();
            for id in grant_ids {
                changes.push(Change::Delete {
                    kind: crate::grants::KIND_GRANT,
                    id,
                });
            }
            // A deleted replica leaves its primary's list; a primary that was
            // waiting for its last replica starts its own waiting period.
            let primary_update = self.primary_after_replica_deleted(&key.record, now);
            if let Some(p) = &primary_update {
                changes.push(put_key_change(&p.record)?);
            }
            self.store.apply(&changes)?;
            let mut state = self.state.write();
            if let Some(p) = primary_update {
                state.keys.insert(p);
            }
            state.keys.remove(&addr);
            for a in &aliases {
                state.aliases.remove(a);
            }
            state.grants.remove(&addr);
            drop(state);
            purged += 1;
            tracing::info!(key = %addr.arn(), "key deleted at the end of its waiting period");
        }
        Ok(purged)
    }
}

impl Kms {
    /// The primary of a multi-Region replica that is being deleted, without
    /// that replica (PendingReplicaDeletion -> PendingDeletion when it was
    /// the last one). `None` when `replica` is not a replica.
    fn primary_after_replica_deleted(&self, replica: &KeyRecord, now: i64) -> Option<Arc<Key>> {
        let info = replica.multi_region_info()?;
        if info.primary_region == replica.addr.region {
            return None;
        }
        let primary_addr = KeyAddr {
            region: info.primary_region,
            ..replica.addr.clone()
        };
        let primary = self.state.read().keys.get(&primary_addr).cloned()?;
        let mut record = primary.record.clone();
        let mut pinfo = record.multi_region_info()?;
        pinfo.replica_regions.retain(|r| *r != replica.addr.region);
        let none_left = pinfo.replica_regions.is_empty();
        record.mrk = Some(Box::new(pinfo));
        if none_left && record.state == KeyState::PendingReplicaDeletion {
            record.state = KeyState::PendingDeletion;
            let days = i64::from(record.pending_window_days.unwrap_or(30));
            record.deletion_ms = Some(now + days * 24 * 60 * 60 * 1000);
        }
        Some(Arc::new(Key {
            record,
            materials: primary.materials.clone(),
            policy: primary.policy.clone(),
            usage: primary.usage.clone(),
        }))
    }
}

/// How many materials a stored key has loaded: all of its versions, but
/// none for an EXTERNAL key without imported material (none is stored).
fn material_versions(record: &KeyRecord) -> usize {
    if record.has_material() {
        record.materials.len()
    } else {
        0
    }
}

/// Materials met while loading before the versions that precede them (ids
/// sort as text: `/10` before `/2`), until those arrive.
#[derive(Default)]
struct LoadingMaterials {
    early: HashMap<(KeyAddr, u32), Arc<KeyMaterial>>,
}

impl LoadingMaterials {
    /// Unseals one stored material into its key, which [`Kms::open`] alone
    /// holds yet. A material of no loaded key or version, or whose id is
    /// not a material's storage id, is skipped: no key would look it up.
    fn add(
        &mut self,
        keys: &mut KeyMap,
        sealer: &Sealer,
        id: &str,
        body: &[u8],
    ) -> Result<(), KmsError> {
        let Some((key, version)) = id.rsplit_once('/') else {
            return Ok(());
        };
        let (Some(addr), Ok(version)) = (KeyAddr::from_storage_id(key), version.parse::<u32>())
        else {
            return Ok(());
        };
        if material_storage_id(&addr, version) != id {
            return Ok(());
        }
        let Some(mut key) = keys.remove(&addr) else {
            return Ok(());
        };
        let out = self.add_to(&mut key, sealer, id, version, body);
        keys.insert(key);
        out
    }

    fn add_to(
        &mut self,
        key: &mut Arc<Key>,
        sealer: &Sealer,
        id: &str,
        version: u32,
        body: &[u8],
    ) -> Result<(), KmsError> {
        if version as usize >= material_versions(&key.record) {
            return Ok(());
        }
        let plain = sealer
            .open(id.as_bytes(), body)
            .map_err(|e| KmsError::Internal(format!("key material {id}: {e}")))?;
        let loaded = Arc::new(KeyMaterial::load(
            key.record.key_spec,
            key.record.key_usage,
            &plain,
        )?);
        let key = Arc::get_mut(key)
            .ok_or_else(|| KmsError::Internal("a key being loaded is shared".into()))?;
        if version as usize != key.materials.len() {
            self.early
                .insert((key.record.addr.clone(), version), loaded);
            return Ok(());
        }
        key.materials.push(loaded);
        while let Some(next) = (!self.early.is_empty())
            .then(|| {
                self.early
                    .remove(&(key.record.addr.clone(), key.materials.len() as u32))
            })
            .flatten()
        {
            key.materials.push(next);
        }
        Ok(())
    }
}

pub(crate) fn material_storage_id(addr: &KeyAddr, version: u32) -> String {
    format!("{}/{}", addr.storage_id(), version)
}

pub(crate) fn put_key_change(record: &KeyRecord) -> Result<Change, KmsError> {
    Ok(Change::Put {
        kind: KIND_KEY,
        id: record.addr.storage_id(),
        body: serde_json::to_vec(record)
            .map_err(|e| KmsError::Internal(format!("cannot encode key record: {e}")))?,
    })
}

pub(crate) fn put_alias_change(alias: &AliasRecord) -> Result<Change, KmsError> {
    Ok(Change::Put {
        kind: KIND_ALIAS,
        id: alias.addr.storage_id(),
        body: serde_json::to_vec(alias)
            .map_err(|e| KmsError::Internal(format!("cannot encode alias record: {e}")))?,
    })
}

#[cfg(test)]
mod policy_cache_tests {
    use super::*;

    #[test]
    fn keys_with_the_same_policy_text_share_one_copy_of_text_and_parse() {
        let cache = PolicyCache::default();
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let mut a: Arc<str> = Arc::from(text);
        let mut b: Arc<str> = Arc::from(text);
        assert!(!Arc::ptr_eq(&a, &b));
        let pa = cache.get(&mut a);
        let pb = cache.get(&mut b);
        assert!(Arc::ptr_eq(&a, &b), "the second key holds the first's text");
        assert!(Arc::ptr_eq(&pa, &pb));
        let mut other: Arc<str> = Arc::from(text.replace("kms:*", "kms:Encrypt"));
        let po = cache.get(&mut other);
        assert!(!Arc::ptr_eq(&other, &a));
        assert!(!Arc::ptr_eq(&po, &pa));
    }
}
