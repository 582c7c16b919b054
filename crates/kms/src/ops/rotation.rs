//! Rotation of key material: EnableKeyRotation, DisableKeyRotation,
//! GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations, and the
//! scheduled rotations the server's sweeper runs ([`Kms::rotate_due_keys`]).
//!
//! A rotation adds one material version to the key (sealed and stored like
//! the first, in the same store transaction as the record). Encrypt uses the
//! newest version; ciphertexts name the version they were made with, so every
//! older ciphertext still decrypts.

use std::sync::Arc;

use ferrokms_store::Change;

use crate::api::*;
use crate::ids::{Accepts, KeyAddr};
use crate::keymat::{self, KeyMaterial};
use crate::model::{
    ImportState, ImportedMaterial, IncludeKeyMaterial, KeyMaterialState, KeyRecord, KeySpec,
    KeyState, MaterialInfo, Origin, PendingMaterial, RotationType,
};
use crate::ops::require_not_pending_deletion;
use crate::state::{material_storage_id, put_key_change, Key, KIND_MATERIAL};
use crate::{Caller, Kms, KmsError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// On-demand rotations allowed per key (not adjustable on AWS).
pub const MAX_ON_DEMAND_ROTATIONS: usize = 25;

/// Rotation exists only for symmetric keys with AWS_KMS origin.
fn check_rotatable(r: &KeyRecord, what: &str) -> Result<(), KmsError> {
    if r.key_spec != KeySpec::SymmetricDefault || r.origin != Origin::AwsKms {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} does not support {what} key rotation: only symmetric encryption keys with AWS_KMS origin rotate.",
            r.arn()
        )));
    }
    if r.state == KeyState::Disabled {
        return Err(KmsError::Disabled(format!("{} is disabled.", r.arn())));
    }
    require_not_pending_deletion(r)?;
    // Rotation is a shared property of a multi-Region key: it is managed
    // on the primary and applies to every replica.
    if r.is_replica() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is a multi-Region replica key; manage {what} rotation on its primary key.",
            r.arn()
        )));
    }
    Ok(())
}

/// When the next automatic rotation is due: one period after the later of
/// the last automatic rotation (or the key's creation) and the day
/// automatic rotation was last enabled (AWS: the first NextRotationDate is
/// the enable date plus the period). On-demand rotations do not move the
/// schedule.
pub(crate) fn next_rotation_ms(r: &KeyRecord) -> i64 {
    let last = r
        .materials
        .iter()
        .filter(|m| m.rotation != Some(RotationType::OnDemand))
        .map(|m| m.created_ms)
        .max()
        .unwrap_or(r.created_ms);
    let since = last.max(r.rotation.enabled_ms.unwrap_or(i64::MIN));
    since + i64::from(r.rotation.period_days) * DAY_MS
}

/// Whether the sweeper rotates this key now. Disabled keys and keys
/// pending deletion wait (a re-enabled key past its date rotates at once).
fn rotation_due(r: &KeyRecord, now_ms: i64) -> bool {
    // Replicas rotate with their primary, never on their own.
    !r.is_replica()
        && r.rotation.enabled
        && r.state == KeyState::Enabled
        && r.key_spec == KeySpec::SymmetricDefault
        && r.origin == Origin::AwsKms
        && next_rotation_ms(r) <= now_ms
}

fn on_demand_rotations(r: &KeyRecord) -> usize {
    r.materials
        .iter()
        .filter(|m| m.rotation == Some(RotationType::OnDemand))
        .count()
}

/// RotateKeyOnDemand's rules, in AWS's order: customer managed; the key
/// state (a Disabled key of any spec is DisabledException, a key waiting
/// for its first or a deleted material "is pending import."); then the key
/// type (UnsupportedOperationException without a message, as AWS sends
/// it); replicas rotate with their primary; at most
/// [`MAX_ON_DEMAND_ROTATIONS`]; an EXTERNAL key needs material pending
/// rotation. `now_ms`: imported material past its `ValidTo` counts as
/// deleted, as for every use of the key.
fn check_on_demand(r: &KeyRecord, now_ms: i64) -> Result<(), KmsError> {
    crate::ops::require_customer_managed(r)?;
    crate::ops::require_usable(r)?;
    if r.imported.is_some() && r.associated_material_expired_at(now_ms) {
        return Err(KmsError::InvalidState(format!(
            "{} is pending import.",
            r.arn()
        )));
    }
    if r.key_spec != KeySpec::SymmetricDefault
        || !matches!(r.origin, Origin::AwsKms | Origin::External)
    {
        return Err(KmsError::UnsupportedOperation(String::new()));
    }
    if r.is_replica() {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is a multi-Region replica key; manage on-demand rotation on its primary key.",
            r.arn()
        )));
    }
    if on_demand_rotations(r) >= MAX_ON_DEMAND_ROTATIONS {
        return Err(KmsError::LimitExceeded(format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
            r.arn()
        )));
    }
    if r.origin == Origin::External && r.pending_material().is_none() {
        return Err(no_pending_material(r));
    }
    Ok(())
}

fn no_pending_material(r: &KeyRecord) -> KmsError {
    KmsError::InvalidState(format!(
        "No available key material pending rotation for the key: {}.",
        r.arn()
    ))
}

impl Kms {
    /// Adds a new material version to a key, durable before it is visible.
    /// `check` runs on the current record under the writer lock; `Ok(false)`
    /// skips the rotation (returns `None`).
    pub(crate) fn add_material(
        &self,
        addr: &KeyAddr,
        kind: RotationType,
        check: impl FnOnce(&KeyRecord) -> Result<bool, KmsError>,
    ) -> Result<Option<Arc<Key>>, KmsError> {
        let not_found = || KmsError::NotFound(format!("Key '{}' does not exist", addr.arn()));
        let (spec, usage) = {
            let state = self.state.read();
            let k = state.keys.get(addr).ok_or_else(not_found)?;
            (k.record.key_spec, k.record.key_usage)
        };
        let material = keymat::generate(spec, usage)?;
        let loaded = KeyMaterial::load(spec, usage, &material)?;
        let material_id = crate::crypto::random_material_id()?;
        let w = self.writer.lock();
        let current = self.current_key(&w, addr)?;
        if !check(&current.record)? {
            return Ok(None);
        }
        let version = u32::try_from(current.record.materials.len())
            .map_err(|_| KmsError::Internal("too many key material versions".into()))?;
        let mut record = current.record.clone();
        record.materials.push(MaterialInfo {
            id: material_id,
            created_ms: self.clock.now_ms(),
            rotation: Some(kind),
            description: None,
        });
        let loaded = Arc::new(loaded);
        let new_info = record.materials.last().cloned();
        let mut changes = Vec::new();
        let mut updated = Vec::new();
        // The replicas of a multi-Region primary get the same material
        // version in the same transaction (key material is shared).
        let replicas = self
            .mrk_members(&record)
            .map(|(_, replicas)| replicas)
            .unwrap_or_default();
        for (target, rec_materials) in
            std::iter::once((current.clone(), record)).chain(replicas.iter().filter_map(|a| {
                let k = self.state.read().keys.get(a).cloned()?;
                let mut r = k.record.clone();
                r.materials.extend(new_info.clone());
                r.rotation = current.record.rotation.clone();
                Some((k, r))
            }))
        {
            let mid = material_storage_id(&target.record.addr, version);
            let sealed = self
                .sealer
                .seal(mid.as_bytes(), &material)
                .map_err(|e| KmsError::Internal(e.to_string()))?;
            changes.push(Change::Put {
                kind: KIND_MATERIAL,
                id: mid,
                body: sealed,
            });
            changes.push(put_key_change(&rec_materials)?);
            let mut materials = target.materials.clone();
            materials.push(loaded.clone());
            updated.push(Arc::new(Key {
                record: rec_materials,
                materials,
                policy: target.policy.clone(),
                usage: target.usage.clone(),
            }));
        }
        self.commit_keys(&changes, &updated)?;
        Ok(updated.into_iter().next())
    }

    /// Enables (`Some(period)`) or disables automatic rotation of a key and
    /// of every replica of a multi-Region primary, in one transaction.
    fn set_rotation(&self, addr: &KeyAddr, period: Option<u32>) -> Result<(), KmsError> {
        let w = self.writer.lock();
        let current = self.current_key(&w, addr)?;
        crate::ops::require_customer_managed(&current.record)?;
        check_rotatable(&current.record, "automatic")?;
        let now = self.clock.now_ms();
        let was_enabled = current.record.rotation.enabled;
        self.update_members_locked(&current.record, &|r: &mut KeyRecord| match period {
            Some(p) => {
                r.rotation.enabled = true;
                r.rotation.period_days = p;
                if !was_enabled {
                    r.rotation.enabled_ms = Some(now);
                }
            }
            None => r.rotation.enabled = false,
        })
    }

    /// Rotates every key whose automatic rotation date has passed (by
    /// [`Kms::clock`]). A key that missed several periods (the server was
    /// down) rotates once. Returns how many keys rotated; a failure on one
    /// key does not stop the others (the first error is returned).
    pub fn rotate_due_keys(&self) -> Result<usize, KmsError> {
        let now = self.clock.now_ms();
        let due = self.keys_where(|r| rotation_due(r, now));
        let mut rotated = 0;
        let mut first_err = None;
        for addr in due {
            match self.add_material(&addr, RotationType::Automatic, |r| Ok(rotation_due(r, now))) {
                Ok(Some(key)) => {
                    rotated += 1;
                    tracing::info!(
                        key = %addr.arn(),
                        material_version = key.record.materials.len() - 1,
                        "key material rotated on schedule"
                    );
                }
                Ok(None) | Err(KmsError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(key = %addr.arn(), error = %e, "scheduled rotation failed");
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(rotated), Err)
    }

    /// EnableKeyRotation: 90 to 2560 days, 365 by default.
    pub fn enable_key_rotation(
        &self,
        caller: &Caller,
        req: EnableKeyRotationRequest,
    ) -> Result<Empty, KmsError> {
        let mut cond = ferrokms_policy::Context::new();
        cond.insert(
            "kms:RotationPeriodInDays",
            i64::from(req.rotation_period_in_days.unwrap_or(365)),
        );
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "EnableKeyRotation",
            cond,
        )?;
        let period = req.rotation_period_in_days.unwrap_or(365);
        self.set_rotation(&key.record.addr, Some(period))?;
        Ok(Empty {})
    }

    /// DisableKeyRotation
    pub fn disable_key_rotation(
        &self,
        caller: &Caller,
        req: DisableKeyRotationRequest,
    ) -> Result<Empty, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "DisableKeyRotation")?;
        self.set_rotation(&key.record.addr, None)?;
        Ok(Empty {})
    }

    /// GetKeyRotationStatus: reads false while the key is pending deletion.
    pub fn get_key_rotation_status(
        &self,
        caller: &Caller,
        req: GetKeyRotationStatusRequest,
    ) -> Result<GetKeyRotationStatusResponse, KmsError> {
        let key = self.resolve(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "GetKeyRotationStatus",
        )?;
        let r = &key.record;
        if r.origin == Origin::External {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} origin is EXTERNAL which is not valid for this operation.",
                r.arn()
            )));
        }
        let enabled = r.rotation.enabled && r.state != KeyState::PendingDeletion;
        Ok(GetKeyRotationStatusResponse {
            key_rotation_enabled: enabled,
            key_id: r.arn(),
            rotation_period_in_days: r.rotation.enabled.then_some(r.rotation.period_days),
            next_rotation_date: enabled
                .then(|| crate::model::ms_to_epoch_seconds(next_rotation_ms(r))),
            // On-demand rotations complete within RotateKeyOnDemand.
            on_demand_rotation_start_date: None,
        })
    }

    /// RotateKeyOnDemand: a new material version now, whether or not
    /// automatic rotation is enabled; the automatic schedule is unchanged.
    /// An EXTERNAL key rotates to the material imported for it
    /// (PENDING_ROTATION).
    pub fn rotate_key_on_demand(
        &self,
        caller: &Caller,
        req: RotateKeyOnDemandRequest,
    ) -> Result<RotateKeyOnDemandResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "RotateKeyOnDemand")?;
        // Fail before generating material; checked again under the lock.
        check_on_demand(&key.record, self.clock.now_ms())?;
        // A rotation that lands between this request's start and its own
        // (a concurrent RotateKeyOnDemand) is a ConflictException, as AWS
        // answers while an on-demand rotation is in progress.
        let seen = key.record.materials.len();
        let conflict = |r: &KeyRecord| -> Result<(), KmsError> {
            if r.materials.len() != seen {
                return Err(KmsError::Conflict(format!(
                    "An on-demand rotation of {} is already in progress.",
                    r.arn()
                )));
            }
            check_on_demand(r, self.clock.now_ms())
        };
        if key.record.origin == Origin::External {
            self.rotate_to_imported(&key.record.addr, conflict)?;
        } else {
            self.add_material(&key.record.addr, RotationType::OnDemand, |r| {
                conflict(r).map(|()| true)
            })?;
        }
        Ok(RotateKeyOnDemandResponse {
            key_id: key.record.arn(),
        })
    }

    /// Makes the material pending rotation of an EXTERNAL key its current
    /// material (the next version, where it is stored already), durable
    /// before it is visible. `check` runs under the writer lock.
    fn rotate_to_imported(
        &self,
        addr: &KeyAddr,
        check: impl FnOnce(&KeyRecord) -> Result<(), KmsError>,
    ) -> Result<Arc<Key>, KmsError> {
        let w = self.writer.lock();
        let current = self.current_key(&w, addr)?;
        check(&current.record)?;
        let now = self.clock.now_ms();
        let pending_id = current
            .record
            .pending_material()
            .map(|p| p.info.id)
            .ok_or_else(|| no_pending_material(&current.record))?;
        // AWS: a multi-Region key rotates (on its primary) only once the
        // material is imported into every related key; they all rotate to
        // it together.
        if let Some(lacking) = self.mrk_member_lacking(&current.record, pending_id, now) {
            return Err(KmsError::InvalidState(format!(
                "Key material {} pending rotation in {} is not imported into every related multi-Region key: import it into {} with ImportType EXISTING_KEY_MATERIAL first.",
                pending_id.to_hex(),
                current.record.arn(),
                lacking.arn()
            )));
        }
        let replicas = self
            .mrk_members(&current.record)
            .map(|(_, replicas)| replicas)
            .unwrap_or_default();
        let mut changes = Vec::new();
        let mut updated = Vec::new();
        for target in std::iter::once(Some(current.clone())).chain(
            replicas
                .iter()
                .map(|a| self.state.read().keys.get(a).cloned()),
        ) {
            let Some(target) = target else { continue };
            let mut record = target.record.clone();
            let version = u32::try_from(record.materials.len())
                .map_err(|_| KmsError::Internal("too many key material versions".into()))?;
            let taken = record.imported.as_mut().and_then(|i| i.pending.take());
            let (info, import) = match taken {
                Some(p) if p.info.id == pending_id => {
                    // The replicas' entries are the primary's (the same
                    // id, rotation date and type); descriptions are each
                    // key's own.
                    let PendingMaterial { mut info, import } = *p;
                    info.created_ms = now;
                    info.rotation = Some(RotationType::OnDemand);
                    (info, Some(import))
                }
                // A replica pending deletion without the material: it
                // rotates too, the material not imported (PendingImport
                // if its deletion is cancelled, until it is imported).
                other => {
                    if other.is_some() {
                        changes.push(Change::Delete {
                            kind: KIND_MATERIAL,
                            id: material_storage_id(&record.addr, version),
                        });
                    }
                    let info = MaterialInfo {
                        id: pending_id,
                        created_ms: now,
                        rotation: Some(RotationType::OnDemand),
                        description: None,
                    };
                    (info, None)
                }
            };
            record.materials.push(info);
            if let Some(imports) = record.imported.as_mut() {
                imports.versions.resize(record.materials.len() - 1, None);
                imports.versions.push(import.clone());
            }
            record.tidy_imports();
            let loaded = match import {
                Some(_) => Some(Arc::new(self.unseal_stored(&record, version)?)),
                None => None,
            };
            let materials =
                self.loaded_materials(&record, &target, loaded.as_ref().map(|l| (version, l)))?;
            changes.push(put_key_change(&record)?);
            updated.push(Arc::new(Key {
                record,
                materials,
                policy: target.policy.clone(),
                usage: target.usage.clone(),
            }));
        }
        self.commit_keys(&changes, &updated)?;
        tracing::info!(key = %addr.arn(), replicas = updated.len() - 1, "key rotated to imported key material");
        updated
            .into_iter()
            .next()
            .ok_or_else(|| KmsError::Internal("the rotated key is missing".into()))
    }

    /// ListKeyRotations: the rotations in the order they happened (with
    /// ALL_KEY_MATERIAL, the first material and any imported material
    /// pending rotation too).
    pub fn list_key_rotations(
        &self,
        caller: &Caller,
        req: ListKeyRotationsRequest,
    ) -> Result<ListKeyRotationsResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "ListKeyRotations")?;
        let r = &key.record;
        if r.key_spec != KeySpec::SymmetricDefault
            || !matches!(r.origin, Origin::AwsKms | Origin::External)
        {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} does not support key rotation: only symmetric encryption keys rotate.",
                r.arn()
            )));
        }
        let external = r.origin == Origin::External;
        let all = req.include_key_material == Some(IncludeKeyMaterial::AllKeyMaterial);
        let now = self.clock.now_ms();
        let current = r.materials.len().saturating_sub(1);
        // Every material with its version (the pending one is stored as the
        // next version) and its state.
        let mut items: Vec<(
            usize,
            &MaterialInfo,
            KeyMaterialState,
            Option<&ImportedMaterial>,
        )> = r
            .materials
            .iter()
            .enumerate()
            .filter(|(_, m)| all || m.rotation.is_some())
            .map(|(v, m)| {
                let state = if v == current {
                    KeyMaterialState::Current
                } else {
                    KeyMaterialState::NonCurrent
                };
                (v, m, state, r.import_of(v))
            })
            .collect();
        if let Some(p) = r.pending_material().filter(|_| all) {
            // Multi-Region keys (primary and replicas alike): pending
            // rotation once every related key has imported it.
            let state = match self.mrk_member_lacking(r, p.info.id, now) {
                Some(_) => KeyMaterialState::PendingMultiRegionImportAndRotation,
                None => KeyMaterialState::PendingRotation,
            };
            items.push((r.materials.len(), &p.info, state, Some(&p.import)));
        }
        let (items, next_marker) = crate::ops::page(
            items,
            |(v, ..)| format!("{v:010}"),
            req.limit,
            100,
            1000,
            req.marker.as_deref(),
        )?;
        let rotations = items
            .into_iter()
            .map(|(_, m, state, import)| {
                // Expired material reads as deleted before the sweeper runs.
                let import = import.filter(|i| !i.expired_at(now));
                RotationsListEntry {
                    key_id: r.addr.key_id.to_string(),
                    key_material_id: m.id.to_hex(),
                    key_material_description: m.description.clone().filter(|_| external),
                    import_state: external.then_some(if import.is_some() {
                        ImportState::Imported
                    } else {
                        ImportState::PendingImport
                    }),
                    expiration_model: import.map(|i| i.expiration_model),
                    valid_to: import
                        .and_then(|i| i.valid_to_ms)
                        .map(crate::model::ms_to_epoch_seconds),
                    key_material_state: state,
                    // None for the first material and for one pending rotation.
                    rotation_date: m
                        .rotation
                        .map(|_| crate::model::ms_to_epoch_seconds(m.created_ms)),
                    rotation_type: m.rotation,
                }
            })
            .collect();
        Ok(ListKeyRotationsResponse {
            rotations,
            truncated: next_marker.is_some(),
            next_marker,
        })
    }
}
