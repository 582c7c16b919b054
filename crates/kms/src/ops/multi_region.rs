//! Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, the
//! `MultiRegionConfiguration` of DescribeKey, and the shared properties
//! (key material, rotation) kept in sync across the members.
//!
//! A member is an ordinary key record at `(account, region, mrk-id)`: the
//! server is multi-Region through the SigV4 scope, so a replica is simply
//! the same key id in another Region. All members hold the same material
//! versions (same ids, same version numbers), so a ciphertext made in one
//! Region decrypts in every other: ciphertexts name the key id, account and
//! version, not the Region. Changes that touch several members are one
//! store transaction.

use std::sync::Arc;

use ferrokms_policy::Context;
use ferrokms_store::Change;
use ferrokms_types::Region;

use crate::api::*;
use crate::ids::{Accepts, KeyAddr};
use crate::keymat::KeyMaterial;
use crate::model::{
    KeyMetadata, KeyRecord, KeyState, MultiRegionConfiguration, MultiRegionInfo, MultiRegionKey,
    MultiRegionKeyType, Origin,
};
use crate::ops::keys::{merge_tags, validate_request_tags};
use crate::ops::require_not_pending_deletion;
use crate::state::{material_storage_id, put_key_change, Key, KIND_MATERIAL};
use crate::{default_key_policy, Caller, Kms, KmsError};

fn member(addr: &KeyAddr, region: &Region) -> KeyAddr {
    KeyAddr {
        account: addr.account.clone(),
        region: region.clone(),
        key_id: addr.key_id.clone(),
    }
}

fn mrk_entry(addr: &KeyAddr) -> MultiRegionKey {
    MultiRegionKey {
        arn: addr.arn(),
        region: addr.region.to_string(),
    }
}

impl Kms {
    /// The primary's address and its replicas' addresses, as the primary
    /// records them. `None` for single-Region keys.
    pub(crate) fn mrk_members(&self, r: &KeyRecord) -> Option<(KeyAddr, Vec<KeyAddr>)> {
        let info = r.multi_region_info()?;
        let primary = member(&r.addr, &info.primary_region);
        let replicas = if primary == r.addr {
            info.replica_regions
        } else {
            self.state
                .read()
                .keys
                .get(&primary)
                .and_then(|k| k.record.multi_region_info())
                .map(|i| i.replica_regions)
                .unwrap_or_default()
        };
        let replicas = replicas.iter().map(|reg| member(&r.addr, reg)).collect();
        Some((primary, replicas))
    }

    /// KeyMetadata as the operations show it: as of now, with the
    /// multi-Region configuration of a multi-Region key.
    pub(crate) fn metadata(&self, r: &KeyRecord) -> KeyMetadata {
        let mut m = KeyMetadata::at(r, self.clock.now_ms());
        // A key in an external key store that is not connected cannot be
        // used: AWS shows it Unavailable.
        if let Some(x) = &r.xks {
            if m.key_state == KeyState::Enabled && !self.store_connected(x) {
                m.key_state = KeyState::Unavailable;
                m.enabled = false;
            }
        }
        if let (Some(kind), Some((primary, replicas))) =
            (r.multi_region_key_type(), self.mrk_members(r))
        {
            m.multi_region_configuration = Some(MultiRegionConfiguration {
                multi_region_key_type: kind,
                primary_key: mrk_entry(&primary),
                replica_keys: replicas.iter().map(mrk_entry).collect(),
            });
        }
        m
    }

    /// Applies `f` to every member of a multi-Region key (or to the one
    /// key) in one transaction: the shared properties (rotation) change
    /// together. The caller holds the writer lock.
    pub(crate) fn update_members_locked(
        &self,
        r: &KeyRecord,
        f: &dyn Fn(&mut KeyRecord),
    ) -> Result<(), KmsError> {
        let addrs = match self.mrk_members(r) {
            Some((primary, mut replicas)) => {
                replicas.insert(0, primary);
                replicas
            }
            None => vec![r.addr.clone()],
        };
        let mut changes = Vec::new();
        let mut updated = Vec::new();
        for addr in addrs {
            let Some(current) = self.state.read().keys.get(&addr).cloned() else {
                continue;
            };
            let mut record = current.record.clone();
            f(&mut record);
            if record == current.record {
                continue;
            }
            changes.push(put_key_change(&record)?);
            updated.push(Arc::new(Key {
                record,
                materials: current.materials.clone(),
                policy: current.policy.clone(),
                usage: current.usage.clone(),
            }));
        }
        if changes.is_empty() {
            return Ok(());
        }
        self.commit_keys(&changes, &updated)
    }

    /// ReplicateKey: a replica of a multi-Region primary in another Region,
    /// with the same key id, key material and rotation, and its own policy,
    /// description and tags.
    pub fn replicate_key(
        &self,
        caller: &Caller,
        req: ReplicateKeyRequest,
    ) -> Result<ReplicateKeyResponse, KmsError> {
        let replica_region = region_member(&req.replica_region, "replicaRegion")?;
        let tags = req.tags.clone().unwrap_or_default();
        validate_request_tags(&tags)?;
        let mut cond = Context::new();
        cond.insert("kms:ReplicaRegion", replica_region.as_str());
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOnly, "ReplicateKey", cond)?;
        let r = &key.record;
        crate::ops::require_customer_managed(r)?;
        match r.multi_region_key_type() {
            Some(MultiRegionKeyType::Primary) => {}
            Some(MultiRegionKeyType::Replica) => {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{} is not a multi-region primary key.",
                    r.arn()
                )))
            }
            None => {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{} is not a multi-Region key.",
                    r.arn()
                )))
            }
        }
        require_replicable_state(r)?;
        if replica_region.partition() != r.addr.region.partition() {
            return Err(KmsError::Validation(format!(
                "The replica Region {replica_region} is not in the partition of the primary key."
            )));
        }
        if replica_region == r.addr.region {
            return Err(KmsError::Validation(format!(
                "The replica Region {replica_region} is the Region of the primary key."
            )));
        }
        let replica_addr = member(&r.addr, &replica_region);
        if self.state.read().keys.contains_key(&replica_addr) {
            return Err(KmsError::AlreadyExists(format!(
                "{} already exists.",
                replica_addr.arn()
            )));
        }

        // The replica is created in its Region: the caller needs
        // kms:CreateKey there (IAM), as on AWS.
        let in_replica_region = Caller {
            region: replica_region.clone(),
            ..caller.clone()
        };
        let mut create_cond = Context::new();
        create_cond.insert("kms:CallerAccount", caller.account.as_str());
        create_cond.insert("kms:KeySpec", r.key_spec.as_str());
        create_cond.insert("kms:KeyUsage", r.key_usage.as_str());
        create_cond.insert("kms:KeyOrigin", r.origin.as_str());
        create_cond.insert("kms:MultiRegion", true);
        create_cond.insert(
            "kms:MultiRegionKeyType",
            MultiRegionKeyType::Replica.as_str(),
        );
        if !tags.is_empty() {
            crate::ops::tags::insert_request_tags(&mut create_cond, &tags);
        }
        let authorized = self
            .authorize_identity_only(&in_replica_region, "CreateKey", "*", create_cond.clone())
            .and_then(|()| match tags.is_empty() {
                true => Ok(()),
                false => self.authorize_create_key_tags(&in_replica_region, create_cond),
            });
        // The copy decided in this request's name: its decisions are the
        // request's.
        caller.absorb(&in_replica_region);
        authorized?;
        let given_policy = match &req.policy {
            Some(p) => Some(self.validate_key_policy(p)?),
            None => None,
        };
        let policy = req
            .policy
            .clone()
            .unwrap_or_else(|| default_key_policy(&caller.account, replica_region.partition()));
        let now = self.clock.now_ms();
        let imported = r.origin == Origin::External;
        let mut record = KeyRecord {
            addr: replica_addr.clone(),
            created_ms: now,
            description: req.description.clone().unwrap_or_default(),
            key_usage: r.key_usage,
            key_spec: r.key_spec,
            origin: r.origin,
            key_manager: r.key_manager,
            // Imported material is imported into each replica separately.
            state: if imported {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            deletion_ms: None,
            pending_window_days: None,
            policy: policy.into(),
            tags: merge_tags(Vec::new(), tags),
            rotation: r.rotation.clone(),
            multi_region: true,
            materials: r.materials.clone(),
            imported: None,
            mrk: Some(Box::new(MultiRegionInfo {
                primary_region: r.addr.region.clone(),
                replica_regions: Vec::new(),
            })),
            xks: None,
        };
        if let Some(parsed) = &given_policy {
            let checked = self.check_lockout(
                &in_replica_region,
                &record,
                parsed,
                req.bypass_policy_lockout_safety_check,
            );
            caller.absorb(&in_replica_region);
            checked?;
        }

        // Copy the sealed material, resealed under the replica's ids.
        let mut changes = Vec::new();
        let materials: Vec<Arc<KeyMaterial>> = if imported {
            Vec::new()
        } else {
            let stored = self.store.load(KIND_MATERIAL)?;
            for v in 0..r.materials.len() as u32 {
                let from = material_storage_id(&r.addr, v);
                let sealed = stored
                    .iter()
                    .find(|d| d.id == from)
                    .ok_or_else(|| KmsError::Internal(format!("key material {from} is missing")))?;
                let plain = self
                    .sealer
                    .open(from.as_bytes(), &sealed.body)
                    .map_err(|e| KmsError::Internal(format!("key material {from}: {e}")))?;
                let to = material_storage_id(&replica_addr, v);
                let body = self
                    .sealer
                    .seal(to.as_bytes(), &plain)
                    .map_err(|e| KmsError::Internal(e.to_string()))?;
                changes.push(Change::Put {
                    kind: KIND_MATERIAL,
                    id: to,
                    body,
                });
            }
            key.materials.clone()
        };

        let w = self.writer.lock();
        let primary = self.current_key(&w, &r.addr)?;
        require_replicable_state(&primary.record)?;
        if self.state.read().keys.contains_key(&replica_addr) {
            return Err(KmsError::AlreadyExists(format!(
                "{} already exists.",
                replica_addr.arn()
            )));
        }
        if primary.record.materials != r.materials {
            return Err(KmsError::Conflict(format!(
                "The key material of {} changed during ReplicateKey; retry.",
                r.arn()
            )));
        }
        // The rotation settings are the primary's as of now.
        record.rotation = primary.record.rotation.clone();
        let mut primary_record = primary.record.clone();
        let mut info = primary_record
            .multi_region_info()
            .ok_or_else(|| KmsError::Internal("primary lost its multi-Region info".into()))?;
        info.replica_regions.push(replica_region.clone());
        primary_record.mrk = Some(Box::new(info));
        changes.push(put_key_change(&primary_record)?);
        let replica = self.replace_key_locked(record, materials, changes)?;
        let primary_key = Arc::new(Key {
            record: primary_record,
            materials: primary.materials.clone(),
            policy: primary.policy.clone(),
            usage: primary.usage.clone(),
        });
        self.state.write().keys.insert(primary_key);
        drop(w);
        tracing::info!(primary = %r.arn(), replica = %replica.record.arn(), "multi-Region key replicated");
        // AWS answers while the replica is still being created: its
        // metadata says Creating (DescribeKey shows it Enabled at once here).
        let mut replica_key_metadata = self.metadata(&replica.record);
        if replica_key_metadata.key_state == KeyState::Enabled {
            replica_key_metadata.key_state = KeyState::Creating;
            replica_key_metadata.enabled = false;
        }
        Ok(ReplicateKeyResponse {
            replica_key_metadata,
            replica_policy: replica.record.policy.to_string(),
            replica_tags: (!replica.record.tags.is_empty()).then(|| replica.record.tags.clone()),
        })
    }

    /// UpdatePrimaryRegion: the replica in `PrimaryRegion` becomes the
    /// primary and the old primary a replica. Authorized on both keys.
    pub fn update_primary_region(
        &self,
        caller: &Caller,
        req: UpdatePrimaryRegionRequest,
    ) -> Result<Empty, KmsError> {
        let target = region_member(&req.primary_region, "primaryRegion")?;
        let mut cond = Context::new();
        cond.insert("kms:PrimaryRegion", target.as_str());
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "UpdatePrimaryRegion",
            cond.clone(),
        )?;
        let r = &key.record;
        crate::ops::require_customer_managed(r)?;
        if r.multi_region_key_type() != Some(MultiRegionKeyType::Primary) {
            // ReplicateKey's text, which AWS gives for a replica.
            return Err(KmsError::UnsupportedOperation(format!(
                "{} is not a multi-region primary key.",
                r.arn()
            )));
        }
        require_primary_change_state(r)?;
        let new_primary_addr = member(&r.addr, &target);
        let info = r
            .multi_region_info()
            .ok_or_else(|| KmsError::Internal("primary lost its multi-Region info".into()))?;
        if target == r.addr.region {
            return Ok(Empty {});
        }
        if !info.replica_regions.contains(&target) {
            return Err(KmsError::NotFound(format!(
                "{} has no replica in Region {target}.",
                r.arn()
            )));
        }
        let replica = self
            .state
            .read()
            .keys
            .get(&new_primary_addr)
            .cloned()
            .ok_or_else(|| {
                KmsError::NotFound(format!("Key '{}' does not exist", new_primary_addr.arn()))
            })?;
        self.authorize_key(caller, &replica, "UpdatePrimaryRegion", cond)?;
        require_primary_change_state(&replica.record)?;

        let w = self.writer.lock();
        let current = self.current_key(&w, &r.addr)?;
        let info = current
            .record
            .multi_region_info()
            .filter(|i| i.primary_region == r.addr.region && i.replica_regions.contains(&target))
            .ok_or_else(|| {
                KmsError::Conflict(format!("The multi-Region key {} changed; retry.", r.arn()))
            })?;
        let mut replicas: Vec<Region> = info
            .replica_regions
            .iter()
            .filter(|reg| **reg != target)
            .cloned()
            .collect();
        replicas.push(r.addr.region.clone());
        let new_replicas = replicas.clone();
        let target_for_all = target.clone();
        let new_primary = new_primary_addr.clone();
        self.update_members_locked(&current.record, &move |rec: &mut KeyRecord| {
            rec.mrk = Some(Box::new(MultiRegionInfo {
                primary_region: target_for_all.clone(),
                replica_regions: if rec.addr == new_primary {
                    new_replicas.clone()
                } else {
                    Vec::new()
                },
            }));
        })?;
        tracing::info!(key = %r.arn(), primary_region = %target, "multi-Region primary moved");
        Ok(Empty {})
    }
}

/// ReplicateKey's key states (AWS, "Key states of KMS keys"): Disabled is
/// DisabledException, pending deletion and pending import are
/// KMSInvalidStateException, Updating is refused.
fn require_replicable_state(r: &KeyRecord) -> Result<(), KmsError> {
    require_not_pending_deletion(r)?;
    match r.state {
        KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", r.arn()))),
        KeyState::PendingImport => Err(KmsError::InvalidState(format!(
            "{} is pending import.",
            r.arn()
        ))),
        KeyState::Creating => Err(KmsError::InvalidState(format!("{} is creating.", r.arn()))),
        KeyState::Updating => Err(KmsError::InvalidState(format!("{} is updating.", r.arn()))),
        _ => Ok(()),
    }
}

/// UpdatePrimaryRegion's key states (AWS, "Key states of KMS keys").
fn require_primary_change_state(r: &KeyRecord) -> Result<(), KmsError> {
    require_not_pending_deletion(r)?;
    match r.state {
        KeyState::Disabled => Err(KmsError::Disabled(format!("{} is disabled.", r.arn()))),
        KeyState::PendingImport => Err(KmsError::InvalidState(format!(
            "{} is pending import.",
            r.arn()
        ))),
        KeyState::Creating => Err(KmsError::InvalidState(format!("{} is creating.", r.arn()))),
        _ => Ok(()),
    }
}

/// A Region named by a request member (`ReplicaRegion`, `PrimaryRegion`),
/// refused in the model's validation wording.
fn region_member(text: &str, member: &str) -> Result<Region, KmsError> {
    Region::parse(text)
        .map_err(|_| KmsError::validation(Some(text), member, "Member must be a valid AWS Region"))
}
