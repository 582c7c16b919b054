//! Keys with a fixed id and given material, as a bootstrap or local-kms
//! seed file describes them ([`Kms::seed_key`]).
//!
//! Ciphertext blobs name their key by account and key id and their
//! material by version, the material's index in the key's list (see
//! `crate::crypto`): a key made here from the same entry, on any server
//! and in any fresh data directory, has the same id and the same materials
//! in the same order, so a ciphertext made under it on one server decrypts
//! on the other. `KeyMaterialId`s are derived as ImportKeyMaterial derives
//! them (SHA-256 over a domain string, the key id and the material, or the
//! public key of a private key: `import::imported_material_id`), so they are
//! the same on every server too, a later ImportKeyMaterial of the same
//! material into an EXTERNAL key recognises it, and an existing key is
//! compared with the entry by ids, never by reading material back.
//!
//! The material is sealed and stored exactly as generated or imported
//! material is; it never appears in an error, a log line or the record.

use std::sync::Arc;

use ferrokms_store::Change;
use ferrokms_types::{AccountId, Region};
use zeroize::Zeroizing;

use super::import::imported_material_id;
use super::keys::check_spec_and_usage;
use crate::ids::{KeyAddr, KeyId};
use crate::keymat::{self, KeyMaterial};
use crate::model::{
    ExpirationModel, ImportedMaterial, ImportedMaterials, KeyManager, KeyRecord, KeySpec, KeyState,
    KeyUsage, MaterialInfo, MultiRegionInfo, Origin, RotationConfig, RotationType, Tag,
};
use crate::state::{material_storage_id, put_key_change, Key, KIND_MATERIAL};
use crate::{default_key_policy, Kms, KmsError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// The rotation period a seeded key with a next rotation date gets.
const SEEDED_ROTATION_PERIOD_DAYS: u32 = 365;

/// One material of a seeded key, in the stored form of [`crate::keymat`]
/// (raw bytes for symmetric and HMAC keys, PKCS#8 DER for private keys;
/// see [`crate::given`] for reading PEM). Its `Debug` shows no byte of it.
pub struct GivenMaterial {
    /// The material, wiped when dropped.
    pub bytes: Zeroizing<Vec<u8>>,
    /// When it became the key's material: the key's creation date for the
    /// first (the default), the rotation date for later ones (default: the
    /// previous material's date).
    pub created_ms: Option<i64>,
    /// EXTERNAL keys: when the imported material expires (`ValidTo`);
    /// `None` for material that does not expire.
    pub valid_to_ms: Option<i64>,
}

impl std::fmt::Debug for GivenMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GivenMaterial")
            .field("bytes", &format_args!("({} bytes)", self.bytes.len()))
            .field("created_ms", &self.created_ms)
            .field("valid_to_ms", &self.valid_to_ms)
            .finish()
    }
}

/// A key to create with a fixed id (and, usually, given material).
#[derive(Debug)]
pub struct SeedKey {
    /// The owning account (it need not exist in IAM).
    pub account: AccountId,
    /// The key's Region; the primary's for a multi-Region key.
    pub region: Region,
    /// The key id: a UUID, or `mrk-` and 32 hex digits for a multi-Region key.
    pub key_id: KeyId,
    /// The creation date (default: now).
    pub created_ms: Option<i64>,
    /// The description.
    pub description: String,
    /// The key spec.
    pub key_spec: KeySpec,
    /// The key usage (default: ENCRYPT_DECRYPT for SYMMETRIC_DEFAULT,
    /// required otherwise, as for CreateKey).
    pub key_usage: Option<KeyUsage>,
    /// AWS_KMS or EXTERNAL.
    pub origin: Origin,
    /// The key policy (default: the account's default key policy).
    pub policy: Option<String>,
    /// Tags.
    pub tags: Vec<Tag>,
    /// The materials, oldest first; the last is current. Empty: an
    /// AWS_KMS key gets generated material (the id alone is fixed), an
    /// EXTERNAL key waits for ImportKeyMaterial (PendingImport).
    pub materials: Vec<GivenMaterial>,
    /// Multi-Region keys: the Regions of its replicas (same id and material).
    pub replica_regions: Vec<Region>,
    /// Automatic rotation on, next due at this date (local-kms's
    /// `NextKeyRotation`); the period is 365 days.
    pub next_rotation_ms: Option<i64>,
}

/// What [`Kms::seed_key`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedOutcome {
    /// The ARNs of the keys (primary and replicas) created; empty when all
    /// were in place already.
    pub created: Vec<String>,
}

/// A material ready to store: bytes, loaded form and record entry.
struct Prepared {
    bytes: Zeroizing<Vec<u8>>,
    loaded: Arc<KeyMaterial>,
    info: MaterialInfo,
    valid_to_ms: Option<i64>,
}

fn invalid(m: String) -> KmsError {
    KmsError::Validation(m)
}

impl Kms {
    /// Creates the key `s` describes, with its replicas, unless it exists.
    /// A key that exists already is left alone when it matches the entry
    /// (spec, usage, origin and, when given, materials: the entry's list
    /// must be the first materials of the key, which may have rotated
    /// since); otherwise the answer is `AlreadyExistsException` saying what
    /// differs. Not an API operation: only the operator's files reach it.
    pub fn seed_key(&self, s: SeedKey) -> Result<SeedOutcome, KmsError> {
        let spec = s.key_spec;
        let usage = check_spec_and_usage(spec, s.key_usage)?;
        let multi = s.key_id.is_multi_region();
        if !multi && !s.replica_regions.is_empty() {
            return Err(invalid(format!(
                "key {} has replica Regions but is not a multi-Region key: a multi-Region key id is mrk- and 32 hex digits",
                s.key_id
            )));
        }
        for r in &s.replica_regions {
            if *r == s.region {
                return Err(invalid(format!(
                    "replica Region {r} is the primary key's Region"
                )));
            }
            if r.partition() != s.region.partition() {
                return Err(invalid(format!(
                    "replica Region {r} is not in the partition of the primary key"
                )));
            }
        }
        let ml = spec.is_ml_kem()
            || matches!(spec, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87);
        match s.origin {
            Origin::AwsKms => {}
            Origin::External if !ml => {}
            o => {
                return Err(KmsError::UnsupportedOperation(format!(
                    "Origin {o} is not supported for key spec {spec} here."
                )))
            }
        }
        if ml && !s.materials.is_empty() {
            return Err(invalid(format!(
                "key material cannot be given for key spec {spec}"
            )));
        }
        if s.materials.len() > 1 && spec != KeySpec::SymmetricDefault {
            return Err(invalid(format!(
                "only SYMMETRIC_DEFAULT keys have a rotation history; a {spec} key takes one material"
            )));
        }
        if s.next_rotation_ms.is_some()
            && (spec != KeySpec::SymmetricDefault || s.origin != Origin::AwsKms)
        {
            return Err(invalid(
                "automatic rotation is for SYMMETRIC_DEFAULT keys of origin AWS_KMS only".into(),
            ));
        }
        let now = self.clock.now_ms();
        let created = s.created_ms.unwrap_or(now);
        if created > now {
            return Err(invalid("the creation date is in the future".into()));
        }
        let prepared = self.prepare_materials(&s, spec, usage, created, now)?;
        if let Some(p) = &s.policy {
            self.validate_key_policy(p)?;
        }

        let members: Vec<Region> = std::iter::once(s.region.clone())
            .chain(s.replica_regions.iter().cloned())
            .collect();
        let _w = self.writer.lock();
        let mut changes = Vec::new();
        let mut records = Vec::new();
        let mut existing_primary = None;
        for (n, region) in members.iter().enumerate() {
            let addr = KeyAddr {
                account: s.account.clone(),
                region: region.clone(),
                key_id: s.key_id.clone(),
            };
            if let Some(existing) = self.state.read().keys.get(&addr).cloned() {
                same_key(
                    &existing.record,
                    spec,
                    usage,
                    s.origin,
                    &prepared,
                    !s.materials.is_empty(),
                )?;
                if n == 0 {
                    existing_primary = Some(existing);
                }
                continue;
            }
            let record = self.seeded_record(&s, &addr, usage, created, &prepared, n == 0, &members);
            for (v, p) in prepared.iter().enumerate() {
                let mid = material_storage_id(&addr, v as u32);
                let sealed = self
                    .sealer
                    .seal(mid.as_bytes(), &p.bytes)
                    .map_err(|e| KmsError::Internal(e.to_string()))?;
                changes.push(Change::Put {
                    kind: KIND_MATERIAL,
                    id: mid,
                    body: sealed,
                });
            }
            changes.push(put_key_change(&record)?);
            records.push(record);
        }
        // Replicas added to an existing primary: the primary lists them.
        let mut primary_update = None;
        if let Some(primary) = &existing_primary {
            if !records.is_empty() {
                let mut r = primary.record.clone();
                let info = r.mrk.get_or_insert_with(|| {
                    Box::new(MultiRegionInfo {
                        primary_region: s.region.clone(),
                        replica_regions: Vec::new(),
                    })
                });
                for rec in &records {
                    if !info.replica_regions.contains(&rec.addr.region) {
                        info.replica_regions.push(rec.addr.region.clone());
                    }
                }
                changes.push(put_key_change(&r)?);
                primary_update = Some(r);
            }
        }
        if changes.is_empty() {
            return Ok(SeedOutcome::default());
        }
        self.store.apply(&changes)?;
        let loaded: Vec<Arc<KeyMaterial>> = prepared.iter().map(|p| p.loaded.clone()).collect();
        let mut out = SeedOutcome::default();
        for mut record in records {
            out.created.push(record.arn());
            let key = Arc::new(Key {
                materials: if record.has_material() {
                    loaded.clone()
                } else {
                    Vec::new()
                },
                policy: self.policies.get(&mut record.policy),
                usage: self.state.read().keys.usage_slot(&record.addr),
                record,
            });
            self.state.write().keys.insert(key);
        }
        if let (Some(mut record), Some(primary)) = (primary_update, existing_primary) {
            let key = Arc::new(Key {
                materials: primary.materials.clone(),
                policy: self.policies.get(&mut record.policy),
                usage: primary.usage.clone(),
                record,
            });
            self.state.write().keys.insert(key);
        }
        for arn in &out.created {
            tracing::info!(key = %arn, "seeded key created");
        }
        Ok(out)
    }

    /// Checks and loads the entry's materials (or generates one for an
    /// AWS_KMS key given none).
    fn prepare_materials(
        &self,
        s: &SeedKey,
        spec: KeySpec,
        usage: KeyUsage,
        created: i64,
        now: i64,
    ) -> Result<Vec<Prepared>, KmsError> {
        let mut out: Vec<Prepared> = Vec::new();
        if s.materials.is_empty() {
            if s.origin == Origin::External {
                return Ok(out);
            }
            let bytes = keymat::generate(spec, usage)?;
            let loaded = Arc::new(KeyMaterial::load(spec, usage, &bytes)?);
            out.push(Prepared {
                bytes,
                loaded,
                info: MaterialInfo {
                    id: crate::crypto::random_material_id()?,
                    created_ms: created,
                    rotation: None,
                    description: None,
                },
                valid_to_ms: None,
            });
            return Ok(out);
        }
        let mut previous = created;
        for (i, m) in s.materials.iter().enumerate() {
            let loaded = keymat::load_imported(spec, usage, &m.bytes).map_err(|_| {
                KmsError::IncorrectKeyMaterial(format!(
                    "material {} is not valid for a key with key spec {spec} and key usage {usage}",
                    i + 1
                ))
            })?;
            let id = imported_material_id(s.key_id.as_str(), &m.bytes, &loaded)?;
            if let Some(j) = out.iter().position(|p| p.info.id == id) {
                return Err(invalid(format!(
                    "material {} is the same as material {}",
                    i + 1,
                    j + 1
                )));
            }
            let at = m.created_ms.unwrap_or(previous);
            if at < previous || at > now {
                return Err(invalid(format!(
                    "material {}'s date must be at or after the key's creation date and the previous material's, and not in the future",
                    i + 1
                )));
            }
            previous = at;
            if m.valid_to_ms.is_some() && s.origin != Origin::External {
                return Err(invalid(format!(
                    "material {}: only EXTERNAL keys' material expires (valid_to)",
                    i + 1
                )));
            }
            if m.valid_to_ms.is_some_and(|v| v <= now) {
                return Err(invalid(format!(
                    "material {}'s valid_to date has passed",
                    i + 1
                )));
            }
            out.push(Prepared {
                bytes: Zeroizing::new(m.bytes.to_vec()),
                loaded: Arc::new(loaded),
                info: MaterialInfo {
                    id,
                    created_ms: at,
                    rotation: (i > 0).then_some(match s.origin {
                        Origin::External => RotationType::OnDemand,
                        _ => RotationType::Automatic,
                    }),
                    description: None,
                },
                valid_to_ms: m.valid_to_ms,
            });
        }
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    fn seeded_record(
        &self,
        s: &SeedKey,
        addr: &KeyAddr,
        usage: KeyUsage,
        created: i64,
        prepared: &[Prepared],
        primary: bool,
        members: &[Region],
    ) -> KeyRecord {
        let imported = (s.origin == Origin::External && !prepared.is_empty()).then(|| {
            Box::new(ImportedMaterials {
                versions: prepared
                    .iter()
                    .map(|p| {
                        Some(ImportedMaterial {
                            expiration_model: if p.valid_to_ms.is_some() {
                                ExpirationModel::KeyMaterialExpires
                            } else {
                                ExpirationModel::KeyMaterialDoesNotExpire
                            },
                            valid_to_ms: p.valid_to_ms,
                        })
                    })
                    .collect(),
                pending: None,
            })
        });
        let multi = s.key_id.is_multi_region();
        KeyRecord {
            addr: addr.clone(),
            created_ms: created,
            description: s.description.clone(),
            key_usage: usage,
            key_spec: s.key_spec,
            origin: s.origin,
            key_manager: KeyManager::Customer,
            state: if prepared.is_empty() {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            deletion_ms: None,
            pending_window_days: None,
            policy: s
                .policy
                .clone()
                .unwrap_or_else(|| default_key_policy(&s.account, addr.region.partition()))
                .into(),
            tags: s.tags.clone(),
            rotation: match s.next_rotation_ms {
                Some(next) => RotationConfig {
                    enabled: true,
                    period_days: SEEDED_ROTATION_PERIOD_DAYS,
                    enabled_ms: Some(next - i64::from(SEEDED_ROTATION_PERIOD_DAYS) * DAY_MS),
                },
                None => RotationConfig::default(),
            },
            multi_region: multi,
            materials: prepared.iter().map(|p| p.info.clone()).collect(),
            imported,
            mrk: multi.then(|| {
                Box::new(MultiRegionInfo {
                    primary_region: s.region.clone(),
                    replica_regions: if primary {
                        members[1..].to_vec()
                    } else {
                        Vec::new()
                    },
                })
            }),
            xks: None,
        }
    }
}

/// Whether an existing key is the one an entry describes; an error saying
/// plainly what differs otherwise.
fn same_key(
    r: &KeyRecord,
    spec: KeySpec,
    usage: KeyUsage,
    origin: Origin,
    prepared: &[Prepared],
    given: bool,
) -> Result<(), KmsError> {
    let differs = |what: String| {
        KmsError::AlreadyExists(format!(
            "key {} already exists with {what}; ferrokms does not change an existing key's material, spec or origin (remove the key, or start from a fresh data directory)",
            r.arn()
        ))
    };
    if r.key_spec != spec || r.key_usage != usage || r.origin != origin {
        return Err(differs(format!(
            "key spec {}, usage {} and origin {}, where the file gives {spec}, {usage} and {origin}",
            r.key_spec, r.key_usage, r.origin
        )));
    }
    if !given {
        return Ok(());
    }
    if r.materials.len() < prepared.len() {
        return Err(differs(format!(
            "{} material(s), where the file gives {}",
            r.materials.len(),
            prepared.len()
        )));
    }
    if let Some(i) = (0..prepared.len()).find(|&i| r.materials[i].id != prepared[i].info.id) {
        return Err(differs(format!(
            "other key material (material {} differs)",
            i + 1
        )));
    }
    Ok(())
}
