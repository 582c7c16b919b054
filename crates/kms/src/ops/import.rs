//! Imported key material (Origin EXTERNAL): GetParametersForImport,
//! ImportKeyMaterial, DeleteImportedKeyMaterial, and the expiry of imported
//! material ([`Kms::expire_imported_material`]).
//!
//! One file of about 870 lines of code: the wrapping key pairs and import
//! tokens, the import rules of each ImportType and the per-material states
//! (multi-Region keys included) are one state machine over the same record.
//!
//! The import token is self-contained: it is the wrapping private key, the
//! wrapping algorithm and the token's expiry, sealed under the root key with
//! the key's address as associated data. Nothing is stored per
//! GetParametersForImport call, every token stays usable for its 24 hours
//! (as on AWS), and a token made for one key does not open for another
//! (InvalidImportTokenException). The wrapping private key never leaves the
//! server unsealed.
//!
//! Imported material is sealed and stored exactly like generated material
//! (`kms.material`, one document per version). A symmetric key takes
//! several materials: the first becomes current, later ones
//! (NEW_KEY_MATERIAL) wait as the next version for RotateKeyOnDemand.
//! Deleting or expiring a material removes its stored copy but keeps its id
//! on the record, so that only the same material can be imported again.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::{self, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use ferrokms_policy::Context;
use ferrokms_store::Change;
use zeroize::Zeroizing;

use crate::api::*;
use crate::ids::{Accepts, KeyAddr};
use crate::keymat::{self, KeyMaterial};
use crate::model::{
    ExpirationModel, ImportType, ImportedMaterial, KeyRecord, KeySpec, KeyState, MaterialId,
    MaterialInfo, Origin, PendingMaterial, WrappingAlgorithm, WrappingKeySpec,
};
use crate::state::{material_storage_id, put_key_change, Key, KIND_MATERIAL};
use crate::{Caller, Kms, KmsError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// A wrapping public key and its import token are valid for 24 hours.
pub const IMPORT_PARAMETERS_VALID_MS: i64 = DAY_MS;
/// `ValidTo` may be at most 365 days after the ImportKeyMaterial request.
pub const MAX_VALID_TO_MS: i64 = 365 * DAY_MS;
/// The AES key of the RSA_AES_KEY_WRAP algorithms is AES-256.
const EPHEMERAL_AES_KEY_LEN: usize = 32;
const TOKEN_FORMAT: u8 = 1;

fn token_aad(addr: &KeyAddr) -> Vec<u8> {
    format!("ferrokms/import-token/v1/{}", addr.storage_id()).into_bytes()
}

/// What an import token carries (sealed; never shown to anyone).
struct ImportToken {
    algorithm: WrappingAlgorithm,
    valid_to_ms: i64,
    wrapping_key_pkcs8: Zeroizing<Vec<u8>>,
}

impl ImportToken {
    /// `[format][algorithm index][valid_to_ms: i64 BE][wrapping key PKCS#8]`:
    /// compact, so that an RSA-4096 token fits the 6144-byte
    /// `CiphertextType` limit once sealed.
    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let alg = WrappingAlgorithm::ALL
            .iter()
            .position(|a| *a == self.algorithm)
            .unwrap_or(0) as u8;
        let mut out = Zeroizing::new(Vec::with_capacity(10 + self.wrapping_key_pkcs8.len()));
        out.push(TOKEN_FORMAT);
        out.push(alg);
        out.extend_from_slice(&self.valid_to_ms.to_be_bytes());
        out.extend_from_slice(&self.wrapping_key_pkcs8);
        out
    }

    fn decode(bytes: &[u8]) -> Option<ImportToken> {
        let (&format, rest) = bytes.split_first()?;
        if format != TOKEN_FORMAT {
            return None;
        }
        let (&alg, rest) = rest.split_first()?;
        let algorithm = *WrappingAlgorithm::ALL.get(usize::from(alg))?;
        let (when, key) = rest.split_at_checked(8)?;
        let valid_to_ms = i64::from_be_bytes(when.try_into().ok()?);
        Some(ImportToken {
            algorithm,
            valid_to_ms,
            wrapping_key_pkcs8: Zeroizing::new(key.to_vec()),
        })
    }
}

fn invalid_token() -> KmsError {
    KmsError::InvalidImportToken(
        "The import token is invalid or is associated with a different KMS key.".into(),
    )
}

/// Only EXTERNAL keys take imported material (AWS, "Key states of KMS keys").
fn require_external(r: &KeyRecord) -> Result<(), KmsError> {
    if r.origin != Origin::External {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} origin is {} which is not valid for this operation.",
            r.arn(),
            r.origin
        )));
    }
    Ok(())
}

/// GetParametersForImport and ImportKeyMaterial refuse keys pending
/// deletion and keys in a transient state (footnotes 8, 14, 15).
fn require_importable_state(r: &KeyRecord) -> Result<(), KmsError> {
    crate::ops::require_not_pending_deletion(r)?;
    match r.state {
        KeyState::Creating => Err(KmsError::InvalidState(format!("{} is creating.", r.arn()))),
        KeyState::Updating => Err(KmsError::InvalidState(format!("{} is updating.", r.arn()))),
        _ => Ok(()),
    }
}

/// AWS's rules for which wrapping algorithm and wrapping key spec may wrap
/// the material of a key spec (GetParametersForImport `WrappingAlgorithm`):
/// RSA private keys need an RSA_AES algorithm (they are larger than one
/// RSA-OAEP block); ECC_NIST_P521 material does not fit RSA-OAEP under an
/// RSA_2048 wrapping key; RSAES_PKCS1_V1_5 has been refused since October
/// 2023; SM2 exists only in the China Regions.
pub(crate) fn check_wrapping(
    spec: KeySpec,
    alg: WrappingAlgorithm,
    wrapping: WrappingKeySpec,
) -> Result<(), KmsError> {
    use WrappingAlgorithm::*;
    let unsupported = |m: String| Err(KmsError::UnsupportedOperation(m));
    match alg {
        RsaesPkcs1V15 => {
            return unsupported(
                "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported; use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.".into(),
            )
        }
        Sm2Pke => {
            return unsupported(
                "The SM2PKE wrapping algorithm is available only in AWS China Regions.".into(),
            )
        }
        _ => {}
    }
    if wrapping == WrappingKeySpec::Sm2 {
        return unsupported(
            "The SM2 wrapping key spec is available only in AWS China Regions.".into(),
        );
    }
    let oaep = matches!(alg, RsaesOaepSha1 | RsaesOaepSha256);
    if oaep && spec.is_rsa() {
        return unsupported(format!(
            "Key material of key spec {spec} must be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
        ));
    }
    if oaep && spec == KeySpec::EccNistP521 && wrapping == WrappingKeySpec::Rsa2048 {
        return unsupported(format!(
            "{alg} with wrapping key spec RSA_2048 cannot wrap ECC_NIST_P521 key material; use a longer wrapping key or an RSA_AES wrapping algorithm."
        ));
    }
    Ok(())
}

fn wrapping_key_size(spec: WrappingKeySpec) -> Option<rsa::KeySize> {
    match spec {
        WrappingKeySpec::Rsa2048 => Some(rsa::KeySize::Rsa2048),
        WrappingKeySpec::Rsa3072 => Some(rsa::KeySize::Rsa3072),
        WrappingKeySpec::Rsa4096 => Some(rsa::KeySize::Rsa4096),
        WrappingKeySpec::Sm2 => None,
    }
}

/// Undoes the client's wrapping. Any failure is InvalidCiphertextException
/// (sent without a message, like every InvalidCiphertext).
fn unwrap_material(token: &ImportToken, encrypted: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    use WrappingAlgorithm::*;
    let private = PrivateDecryptingKey::from_pkcs8(&token.wrapping_key_pkcs8).map_err(|_| {
        KmsError::Internal("the wrapping key in an import token is unreadable".into())
    })?;
    let key = OaepPrivateDecryptingKey::new(private).map_err(|_| {
        KmsError::Internal("the wrapping key in an import token is unusable".into())
    })?;
    let oaep = match token.algorithm {
        RsaesOaepSha1 | RsaAesKeyWrapSha1 => &rsa::OAEP_SHA1_MGF1SHA1,
        RsaesOaepSha256 | RsaAesKeyWrapSha256 => &rsa::OAEP_SHA256_MGF1SHA256,
        RsaesPkcs1V15 | Sm2Pke => return Err(KmsError::InvalidCiphertext),
    };
    let modulus = key.key_size_bytes();
    let oaep_decrypt = |ct: &[u8]| -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
        let n = key
            .decrypt(oaep, ct, &mut out, None)
            .map_err(|_| KmsError::InvalidCiphertext)?
            .len();
        out.truncate(n);
        Ok(out)
    };
    match token.algorithm {
        RsaesOaepSha1 | RsaesOaepSha256 => oaep_decrypt(encrypted),
        _ => {
            // RSA_AES_KEY_WRAP: RSA-OAEP of an ephemeral AES-256 key, then
            // the material under that key with AES key wrap with padding
            // (RFC 5649).
            let (rsa_part, wrapped) = encrypted
                .split_at_checked(modulus)
                .ok_or(KmsError::InvalidCiphertext)?;
            let aes_key = oaep_decrypt(rsa_part)?;
            if aes_key.len() != EPHEMERAL_AES_KEY_LEN || wrapped.is_empty() {
                return Err(KmsError::InvalidCiphertext);
            }
            let kek = AesKek::new(&AES_256, &aes_key).map_err(|_| KmsError::InvalidCiphertext)?;
            let mut out = Zeroizing::new(vec![0u8; wrapped.len()]);
            let n = kek
                .unwrap_with_padding(wrapped, &mut out)
                .map_err(|_| KmsError::InvalidCiphertext)?
                .len();
            out.truncate(n);
            Ok(out)
        }
    }
}

/// The `KeyMaterialId` of imported material: derived from the key id and
/// the material, so that re-importing the same material gives the same id
/// (and replicas of a multi-Region key agree). Asymmetric material is
/// identified by its public key, so that two PKCS#8 encodings of one key
/// are the same material.
pub(crate) fn imported_material_id(
    key_id: &str,
    raw: &[u8],
    loaded: &KeyMaterial,
) -> Result<MaterialId, KmsError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"ferrokms imported key material id v1\0");
    ctx.update(key_id.as_bytes());
    ctx.update(b"\0");
    match loaded.public_key_der()? {
        Some(spki) => ctx.update(&spki),
        None => ctx.update(raw),
    }
    let sha256 = <[u8; 32]>::try_from(ctx.finish().as_ref())
        .map_err(|_| KmsError::Internal("SHA-256 gave other than 32 bytes".into()))?;
    Ok(MaterialId::from_bytes(sha256))
}

fn epoch_seconds_to_ms(s: f64) -> Result<i64, KmsError> {
    if !s.is_finite() {
        return Err(KmsError::Validation("ValidTo is not a valid date.".into()));
    }
    Ok((s * 1000.0).round() as i64)
}

impl Kms {
    /// GetParametersForImport: a fresh RSA wrapping key pair and an import
    /// token, both valid for 24 hours. RSA-4096 generation takes a second
    /// or more: the server runs this off the async executor.
    pub fn get_parameters_for_import(
        &self,
        caller: &Caller,
        req: GetParametersForImportRequest,
    ) -> Result<GetParametersForImportResponse, KmsError> {
        let alg = req
            .wrapping_algorithm
            .ok_or_else(|| missing("wrappingAlgorithm"))?;
        let wrapping = req
            .wrapping_key_spec
            .ok_or_else(|| missing("wrappingKeySpec"))?;
        let mut cond = Context::new();
        cond.insert("kms:WrappingAlgorithm", alg.as_str());
        cond.insert("kms:WrappingKeySpec", wrapping.as_str());
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "GetParametersForImport",
            cond,
        )?;
        let r = &key.record;
        require_external(r)?;
        require_importable_state(r)?;
        check_wrapping(r.key_spec, alg, wrapping)?;
        let size = wrapping_key_size(wrapping).ok_or_else(|| {
            KmsError::UnsupportedOperation("The SM2 wrapping key spec is not supported.".into())
        })?;
        let private = PrivateDecryptingKey::generate(size)
            .map_err(|_| KmsError::Internal("wrapping key generation failed".into()))?;
        let public = private
            .public_key()
            .as_der()
            .map_err(|_| KmsError::Internal("wrapping key encoding failed".into()))?
            .as_ref()
            .to_vec();
        let pkcs8 = Zeroizing::new(
            private
                .as_der()
                .map_err(|_| KmsError::Internal("wrapping key encoding failed".into()))?
                .as_ref()
                .to_vec(),
        );
        let valid_to_ms = self.clock.now_ms() + IMPORT_PARAMETERS_VALID_MS;
        let token = ImportToken {
            algorithm: alg,
            valid_to_ms,
            wrapping_key_pkcs8: pkcs8,
        };
        let sealed = self
            .sealer
            .seal(&token_aad(&r.addr), &token.encode())
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        Ok(GetParametersForImportResponse {
            key_id: r.arn(),
            import_token: Blob(sealed),
            public_key: Blob(public),
            parameters_valid_to: crate::model::ms_to_epoch_seconds(valid_to_ms),
        })
    }

    /// ImportKeyMaterial: the first import of a key's material; a re-import
    /// of a material the key has (to restore deleted or expired material,
    /// or to change its expiration); or, for symmetric keys, new material
    /// for RotateKeyOnDemand. The rules are [`place_import`]'s.
    pub fn import_key_material(
        &self,
        caller: &Caller,
        req: ImportKeyMaterialRequest,
    ) -> Result<ImportKeyMaterialResponse, KmsError> {
        let mut cond = Context::new();
        // kms:ExpirationModel is absent when the parameter is omitted.
        if let Some(m) = req.expiration_model {
            cond.insert("kms:ExpirationModel", m.as_str());
        }
        if let Some(v) = req.valid_to.filter(|v| v.is_finite()) {
            cond.insert("kms:ValidTo", v.trunc() as i64);
        }
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "ImportKeyMaterial",
            cond,
        )?;
        let addr = key.record.addr.clone();
        let (spec, usage) = (key.record.key_spec, key.record.key_usage);
        require_external(&key.record)?;
        require_importable_state(&key.record)?;
        let now = self.clock.now_ms();
        let model = req
            .expiration_model
            .unwrap_or(ExpirationModel::KeyMaterialExpires);
        let valid_to_ms = match (model, req.valid_to) {
            (ExpirationModel::KeyMaterialExpires, None) => {
                return Err(KmsError::Validation(
                    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                        .into(),
                ))
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, Some(_)) => {
                return Err(KmsError::Validation(
                    "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE".into(),
                ))
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, None) => None,
            (ExpirationModel::KeyMaterialExpires, Some(v)) => {
                let ms = epoch_seconds_to_ms(v)?;
                if ms <= now || ms > now + MAX_VALID_TO_MS {
                    return Err(KmsError::Validation(
                        "The ValidTo date must be in the future and at most 365 days from now."
                            .into(),
                    ));
                }
                Some(ms)
            }
        };
        let symmetric = spec == KeySpec::SymmetricDefault;
        if !symmetric
            && (req.import_type.is_some()
                || req.key_material_id.is_some()
                || req.key_material_description.is_some())
        {
            return Err(KmsError::Validation(
                "ImportType, KeyMaterialId and KeyMaterialDescription are valid only for symmetric encryption keys.".into(),
            ));
        }

        let opened = self
            .sealer
            .open(&token_aad(&addr), &req.import_token.0)
            .map_err(|_| invalid_token())?;
        let token = ImportToken::decode(&opened).ok_or_else(invalid_token)?;
        if token.valid_to_ms <= now {
            return Err(KmsError::ExpiredImportToken(
                "The import token has expired. Call GetParametersForImport for a new one.".into(),
            ));
        }
        let material = unwrap_material(&token, &req.encrypted_key_material.0)?;
        let loaded = keymat::load_imported(spec, usage, &material)?;
        let id = imported_material_id(addr.key_id.as_str(), &material, &loaded)?;
        let loaded = Arc::new(loaded);
        let import = ImportedMaterial {
            expiration_model: model,
            valid_to_ms,
        };

        let w = self.writer.lock();
        let current = self.current_key(&w, &addr)?;
        let r = &current.record;
        require_importable_state(r)?;
        let role = if r.is_replica() {
            MrkRole::Replica {
                primary_pending: self.primary_pending_material(r, now),
            }
        } else {
            MrkRole::Other
        };
        let mut record = r.clone();
        let version = place_import(
            &mut record,
            ImportRequest {
                import_type: req.import_type,
                key_material_id: req.key_material_id.as_deref(),
                description: req.key_material_description.clone(),
                id,
                import,
                now,
                role,
            },
        )?;
        if record.has_material() && record.state == KeyState::PendingImport {
            record.state = KeyState::Enabled;
        }
        let materials = self.loaded_materials(&record, &current, Some((version, &loaded)))?;
        let mid = material_storage_id(&addr, version);
        let sealed = self
            .sealer
            .seal(mid.as_bytes(), &material)
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let key = self.replace_key_locked(
            record,
            materials,
            vec![Change::Put {
                kind: KIND_MATERIAL,
                id: mid,
                body: sealed,
            }],
        )?;
        tracing::info!(key = %key.record.arn(), material_version = version, "key material imported");
        Ok(ImportKeyMaterialResponse {
            key_id: key.record.arn(),
            key_material_id: id.to_hex(),
        })
    }

    /// The loaded materials of `record` (every version, or none while
    /// imported material is missing): those `current` holds, the one just
    /// imported, the rest unsealed from the store. The caller holds the
    /// writer lock.
    pub(crate) fn loaded_materials(
        &self,
        record: &KeyRecord,
        current: &Key,
        fresh: Option<(u32, &Arc<KeyMaterial>)>,
    ) -> Result<Vec<Arc<KeyMaterial>>, KmsError> {
        if !record.has_material() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(record.materials.len());
        for v in 0..record.materials.len() {
            let version = u32::try_from(v)
                .map_err(|_| KmsError::Internal("too many key material versions".into()))?;
            if let Some((_, m)) = fresh.filter(|(fv, _)| *fv == version) {
                out.push(m.clone());
            } else if let Some(m) = current.materials.get(v) {
                out.push(m.clone());
            } else {
                out.push(Arc::new(self.unseal_stored(record, version)?));
            }
        }
        Ok(out)
    }

    /// The id of the unexpired material pending rotation in the primary of
    /// the multi-Region key `r` belongs to.
    fn primary_pending_material(&self, r: &KeyRecord, now: i64) -> Option<MaterialId> {
        let (primary, _) = self.mrk_members(r)?;
        let state = self.state.read();
        let p = state.keys.get(&primary)?;
        p.record
            .pending_material()
            .filter(|m| !m.import.expired_at(now))
            .map(|m| m.info.id)
    }

    /// For material `id` pending rotation in a multi-Region key: the first
    /// related key (primary or replica) that has not imported it (or whose
    /// import expired), or `None` once every one has it. Keys pending
    /// deletion do not count (they take no import); they rotate without
    /// it, as keys whose new material is not imported. Single-Region keys:
    /// `None`.
    pub(crate) fn mrk_member_lacking(
        &self,
        r: &KeyRecord,
        id: MaterialId,
        now: i64,
    ) -> Option<KeyAddr> {
        let (primary, replicas) = self.mrk_members(r)?;
        let state = self.state.read();
        std::iter::once(primary).chain(replicas).find(|addr| {
            let Some(k) = state.keys.get(addr) else {
                return false;
            };
            if k.record.state == KeyState::PendingDeletion {
                return false;
            }
            !k.record
                .pending_material()
                .is_some_and(|p| p.info.id == id && !p.import.expired_at(now))
        })
    }

    /// Reads and unseals material version `version` of a key from the store.
    pub(crate) fn unseal_stored(
        &self,
        record: &KeyRecord,
        version: u32,
    ) -> Result<KeyMaterial, KmsError> {
        let mid = material_storage_id(&record.addr, version);
        let sealed = self.store.get(KIND_MATERIAL, &mid)?.ok_or_else(|| {
            KmsError::Internal(format!("key material {mid} is missing from the store"))
        })?;
        let plain = self
            .sealer
            .open(mid.as_bytes(), &sealed)
            .map_err(|e| KmsError::Internal(format!("key material {mid}: {e}")))?;
        KeyMaterial::load(record.key_spec, record.key_usage, &plain)
    }

    /// DeleteImportedKeyMaterial: deletes the material `KeyMaterialId`
    /// names (the current one when omitted). Deleting material associated
    /// with the key makes it PendingImport (a key pending deletion keeps its
    /// state); deleting material pending rotation removes it from the key.
    /// No effect on material that is not imported.
    pub fn delete_imported_key_material(
        &self,
        caller: &Caller,
        req: DeleteImportedKeyMaterialRequest,
    ) -> Result<DeleteImportedKeyMaterialResponse, KmsError> {
        let key = self.resolve(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "DeleteImportedKeyMaterial",
        )?;
        let r = &key.record;
        require_external(r)?;
        match r.state {
            KeyState::Creating => {
                return Err(KmsError::InvalidState(format!("{} is creating.", r.arn())))
            }
            KeyState::Updating => {
                return Err(KmsError::InvalidState(format!("{} is updating.", r.arn())))
            }
            _ => {}
        }
        let w = self.writer.lock();
        let current = self.current_key(&w, &r.addr)?;
        let r = &current.record;
        let target = match &req.key_material_id {
            Some(wanted) => {
                if let Some(v) = r.materials.iter().position(|m| m.id.is(wanted)) {
                    Some(Slot::Version(v))
                } else if r.pending_material().is_some_and(|p| p.info.id.is(wanted)) {
                    Some(Slot::Pending)
                } else {
                    return Err(KmsError::NotFound(format!(
                        "Key material {wanted} is not associated with {}.",
                        r.arn()
                    )));
                }
            }
            None => r.current_material().map(|(v, _)| Slot::Version(v as usize)),
        };
        let (id, removed) = match target {
            None => (None, None),
            Some(Slot::Version(v)) => {
                let mut record = r.clone();
                let removed = record.forget_import(v).then_some((record, v));
                (r.materials.get(v).map(|m| m.id), removed)
            }
            Some(Slot::Pending) => {
                let mut record = r.clone();
                let id = r.pending_material().map(|p| p.info.id);
                record.forget_pending();
                (id, Some((record, r.materials.len())))
            }
        };
        if let Some((record, version)) = removed {
            let mut changes = vec![Change::Delete {
                kind: KIND_MATERIAL,
                id: material_storage_id(&r.addr, version as u32),
            }];
            // AWS: deleting the material pending rotation of a multi-Region
            // primary deletes it from the replicas too (one transaction).
            let mut replicas = Vec::new();
            if let (Some(Slot::Pending), Some(pid), false) = (&target, id, r.is_replica()) {
                for addr in self.mrk_members(r).map(|(_, a)| a).unwrap_or_default() {
                    let Some(k) = self.state.read().keys.get(&addr).cloned() else {
                        continue;
                    };
                    if !k
                        .record
                        .pending_material()
                        .is_some_and(|p| p.info.id == pid)
                    {
                        continue;
                    }
                    let mut rec = k.record.clone();
                    rec.forget_pending();
                    changes.push(Change::Delete {
                        kind: KIND_MATERIAL,
                        id: material_storage_id(&addr, rec.materials.len() as u32),
                    });
                    changes.push(put_key_change(&rec)?);
                    replicas.push(Arc::new(Key {
                        record: rec,
                        materials: k.materials.clone(),
                        policy: k.policy.clone(),
                        usage: k.usage.clone(),
                    }));
                }
            }
            let materials = self.loaded_materials(&record, &current, None)?;
            self.replace_key_locked(record, materials, changes)?;
            if !replicas.is_empty() {
                let mut state = self.state.write();
                for k in replicas {
                    state.keys.insert(k);
                }
            }
            tracing::info!(key = %r.arn(), material_version = version, "imported key material deleted");
        }
        Ok(DeleteImportedKeyMaterialResponse {
            key_id: r.arn(),
            key_material_id: id.map(|i| i.to_hex()),
        })
    }

    /// Deletes imported material whose `ValidTo` has passed (by
    /// [`Kms::clock`]); run by the sweeper. Cryptographic operations refuse
    /// a key whose associated material expired even before this runs.
    /// Returns how many keys lost material.
    pub fn expire_imported_material(&self) -> Result<usize, KmsError> {
        let now = self.clock.now_ms();
        let due = self.keys_where(|r| r.imported.is_some() && r.any_import_expired_at(now));
        let mut expired = 0;
        for addr in due {
            let _w = self.writer.lock();
            let Some(current) = self.state.read().keys.get(&addr).cloned() else {
                continue;
            };
            let mut record = current.record.clone();
            let gone = record.expire_imports(now);
            if gone.is_empty() {
                continue;
            }
            let materials = self.loaded_materials(&record, &current, None)?;
            let changes = gone
                .iter()
                .map(|v| Change::Delete {
                    kind: KIND_MATERIAL,
                    id: material_storage_id(&addr, *v),
                })
                .collect();
            self.replace_key_locked(record, materials, changes)?;
            expired += 1;
            tracing::info!(key = %addr.arn(), "imported key material expired and was deleted");
        }
        Ok(expired)
    }
}

/// Where a key stands in a multi-Region key, for [`place_import`].
enum MrkRole {
    /// A single-Region key or a multi-Region primary.
    Other,
    /// A multi-Region replica: it takes new material only after its primary
    /// (the id of the primary's unexpired material pending rotation).
    Replica { primary_pending: Option<MaterialId> },
}

/// Which imported material a DeleteImportedKeyMaterial names.
enum Slot {
    /// A material associated with the key (current or not).
    Version(usize),
    /// The material pending rotation.
    Pending,
}

/// What ImportKeyMaterial asks to place, after unwrapping.
struct ImportRequest<'a> {
    import_type: Option<ImportType>,
    key_material_id: Option<&'a str>,
    description: Option<String>,
    /// The id the material gives (see [`imported_material_id`]).
    id: MaterialId,
    import: ImportedMaterial,
    now: i64,
    role: MrkRole,
}

/// AWS's rules for where imported material goes, applied to `record`:
/// returns the material version it is stored as.
///
/// - `ImportType` defaults to NEW_KEY_MATERIAL while the key has never had
///   material, to EXISTING_KEY_MATERIAL afterwards; NEW_KEY_MATERIAL takes
///   no `KeyMaterialId`.
/// - The first material becomes current; NEW_KEY_MATERIAL after it waits
///   for RotateKeyOnDemand (PENDING_ROTATION; one at a time).
/// - EXISTING_KEY_MATERIAL re-imports a material the key has (or the one
///   pending rotation): the same bytes, so the same id, and the named
///   `KeyMaterialId` when one is given; anything else is
///   IncorrectKeyMaterialException. It sets the material's expiration
///   anew and keeps its description unless a new one is given.
fn place_import(record: &mut KeyRecord, req: ImportRequest<'_>) -> Result<u32, KmsError> {
    let arn = record.arn();
    let too_many = || KmsError::Internal("too many key material versions".into());
    let ever = !record.materials.is_empty() || record.pending_material().is_some();
    let import_type = req.import_type.unwrap_or(if ever {
        ImportType::ExistingKeyMaterial
    } else {
        ImportType::NewKeyMaterial
    });
    let imports = record.imported.get_or_insert_with(Box::default);
    match import_type {
        ImportType::NewKeyMaterial => {
            if req.key_material_id.is_some() {
                return Err(KmsError::Validation(
                    "KeyMaterialId cannot be specified with ImportType NEW_KEY_MATERIAL.".into(),
                ));
            }
            let info = MaterialInfo {
                id: req.id,
                created_ms: req.now,
                rotation: None,
                description: req.description,
            };
            if record.materials.is_empty() {
                record.materials = vec![info];
                imports.versions = vec![Some(req.import)];
                return Ok(0);
            }
            if record.key_spec != KeySpec::SymmetricDefault {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{arn} already has key material; only symmetric encryption keys take new key material."
                )));
            }
            // AWS: new material of a multi-Region key goes into the
            // primary; replicas take the same material afterwards, with
            // EXISTING_KEY_MATERIAL.
            if matches!(req.role, MrkRole::Replica { .. }) {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{arn} is a multi-Region replica key: import new key material into its primary key, then import the same key material into this key with ImportType EXISTING_KEY_MATERIAL."
                )));
            }
            let known = record.materials.iter().any(|m| m.id == req.id)
                || imports
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.info.id == req.id);
            if known {
                return Err(KmsError::IncorrectKeyMaterial(format!(
                    "The key material is already associated with {arn}; re-import it with ImportType EXISTING_KEY_MATERIAL."
                )));
            }
            if let Some(p) = &imports.pending {
                return Err(KmsError::InvalidState(format!(
                    "Key material {} of {arn} is already pending rotation: rotate the key (RotateKeyOnDemand) or delete that key material first.",
                    p.info.id.to_hex()
                )));
            }
            imports.pending = Some(Box::new(PendingMaterial {
                info,
                import: req.import,
            }));
            u32::try_from(record.materials.len()).map_err(|_| too_many())
        }
        ImportType::ExistingKeyMaterial => {
            if !ever {
                return Err(KmsError::Validation(format!(
                    "{arn} has no key material to re-import; use ImportType NEW_KEY_MATERIAL."
                )));
            }
            let incorrect = || {
                KmsError::IncorrectKeyMaterial(
                    "The key material is not the same key material that was previously imported into this KMS key.".into(),
                )
            };
            if req.key_material_id.is_some_and(|k| !req.id.is(k)) {
                return Err(incorrect());
            }
            if let Some(v) = record.materials.iter().position(|m| m.id == req.id) {
                if imports.versions.len() <= v {
                    imports.versions.resize(v + 1, None);
                }
                imports.versions[v] = Some(req.import);
                if let (Some(d), Some(m)) = (req.description, record.materials.get_mut(v)) {
                    m.description = Some(d);
                }
                return u32::try_from(v).map_err(|_| too_many());
            }
            let from_primary = matches!(
                req.role,
                MrkRole::Replica { primary_pending: Some(p) } if p == req.id
            );
            match imports.pending.as_mut() {
                Some(p) if p.info.id == req.id => {
                    p.import = req.import;
                    if let Some(d) = req.description {
                        p.info.description = Some(d);
                    }
                    u32::try_from(record.materials.len()).map_err(|_| too_many())
                }
                // A replica takes the material pending rotation in its
                // primary: the same bytes give the same id (it is derived
                // from the shared key id and the bytes), so other bytes
                // under that KeyMaterialId are refused above.
                Some(p) if from_primary => Err(KmsError::InvalidState(format!(
                    "Key material {} of {arn} is already pending rotation and is not the key material pending rotation in its primary key: delete that key material first.",
                    p.info.id.to_hex()
                ))),
                None if from_primary => {
                    imports.pending = Some(Box::new(PendingMaterial {
                        info: MaterialInfo {
                            id: req.id,
                            created_ms: req.now,
                            rotation: None,
                            description: req.description,
                        },
                        import: req.import,
                    }));
                    u32::try_from(record.materials.len()).map_err(|_| too_many())
                }
                _ => Err(incorrect()),
            }
        }
    }
}

fn missing(member: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_key_material_must_be_wrapped_with_rsa_aes() {
        for alg in [
            WrappingAlgorithm::RsaesOaepSha1,
            WrappingAlgorithm::RsaesOaepSha256,
        ] {
            assert!(matches!(
                check_wrapping(KeySpec::Rsa2048, alg, WrappingKeySpec::Rsa4096),
                Err(KmsError::UnsupportedOperation(_))
            ));
        }
        assert!(check_wrapping(
            KeySpec::Rsa4096,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
            WrappingKeySpec::Rsa2048
        )
        .is_ok());
    }

    #[test]
    fn p521_material_does_not_fit_oaep_under_rsa_2048_but_does_under_rsa_3072() {
        assert!(check_wrapping(
            KeySpec::EccNistP521,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048
        )
        .is_err());
        assert!(check_wrapping(
            KeySpec::EccNistP521,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Rsa3072
        )
        .is_ok());
    }

    #[test]
    fn pkcs1_v1_5_and_sm2_wrapping_are_refused() {
        assert!(check_wrapping(
            KeySpec::SymmetricDefault,
            WrappingAlgorithm::RsaesPkcs1V15,
            WrappingKeySpec::Rsa2048
        )
        .is_err());
        assert!(check_wrapping(
            KeySpec::SymmetricDefault,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingKeySpec::Sm2
        )
        .is_err());
    }

    #[test]
    fn import_token_round_trips_and_rejects_other_formats() {
        let t = ImportToken {
            algorithm: WrappingAlgorithm::RsaAesKeyWrapSha1,
            valid_to_ms: 1_700_000_000_123,
            wrapping_key_pkcs8: Zeroizing::new(vec![1, 2, 3]),
        };
        let back = ImportToken::decode(&t.encode()).expect("decodes");
        assert_eq!(back.algorithm, WrappingAlgorithm::RsaAesKeyWrapSha1);
        assert_eq!(back.valid_to_ms, 1_700_000_000_123);
        assert_eq!(back.wrapping_key_pkcs8.as_slice(), &[1, 2, 3]);
        let mut other = t.encode().to_vec();
        other[0] = 9;
        assert!(ImportToken::decode(&other).is_none());
        assert!(ImportToken::decode(&[1, 0, 0]).is_none());
    }
}
