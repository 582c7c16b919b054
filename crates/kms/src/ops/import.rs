//! Imported key material (Origin EXTERNAL): GetParametersForImport,
//! ImportKeyMaterial, DeleteImportedKeyMaterial, and the expiry of imported
//! material ([`Kms::expire_imported_material`]).
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
//! (`kms.material`, version 0). One imported material per key: deleting or
//! expiring it removes the stored material but keeps its id on the record,
//! so that only the same material can be imported again.

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
    MaterialInfo, Origin, WrappingAlgorithm, WrappingKeySpec,
};
use crate::state::{material_storage_id, KIND_MATERIAL};
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

/// Only EXTERNAL keys take imported material (kms-spec §6.2 footnote 9).
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
fn imported_material_id(
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

    /// ImportKeyMaterial: the first import of a key's material, or a
    /// re-import of the same material (to restore deleted or expired
    /// material, or to change its expiration).
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
        let mid = material_storage_id(&addr, 0);
        let sealed = self
            .sealer
            .seal(mid.as_bytes(), &material)
            .map_err(|e| KmsError::Internal(e.to_string()))?;

        let _w = self.writer.lock();
        let current =
            self.state.read().keys.get(&addr).cloned().ok_or_else(|| {
                KmsError::NotFound(format!("Key '{}' does not exist", addr.arn()))
            })?;
        let r = &current.record;
        require_importable_state(r)?;
        let existing = r.materials.first();
        let import_type = req.import_type.unwrap_or(if existing.is_some() {
            ImportType::ExistingKeyMaterial
        } else {
            ImportType::NewKeyMaterial
        });
        match (import_type, existing) {
            (ImportType::NewKeyMaterial, Some(_)) => {
                return Err(KmsError::UnsupportedOperation(format!(
                    "{} already has key material; ferrokms keeps one key material per EXTERNAL key (re-import it with EXISTING_KEY_MATERIAL).",
                    r.arn()
                )))
            }
            (ImportType::NewKeyMaterial, None) if req.key_material_id.is_some() => {
                return Err(KmsError::Validation(
                    "KeyMaterialId cannot be specified with ImportType NEW_KEY_MATERIAL.".into(),
                ))
            }
            (ImportType::ExistingKeyMaterial, None) => {
                return Err(KmsError::Validation(format!(
                    "{} has no key material to re-import; use ImportType NEW_KEY_MATERIAL.",
                    r.arn()
                )))
            }
            (ImportType::ExistingKeyMaterial, Some(m)) => {
                let named_other = req.key_material_id.as_ref().is_some_and(|k| !m.id.is(k));
                if m.id != id || named_other {
                    return Err(KmsError::IncorrectKeyMaterial(
                        "The key material is not the same key material that was previously imported into this KMS key.".into(),
                    ));
                }
            }
            (ImportType::NewKeyMaterial, None) => {}
        }
        let mut record = r.clone();
        let description = req
            .key_material_description
            .clone()
            .or_else(|| existing.and_then(|m| m.description.clone()));
        record.materials = vec![MaterialInfo {
            id,
            created_ms: existing.map_or(now, |m| m.created_ms),
            rotation: None,
            description,
        }];
        record.imported = Some(Box::new(ImportedMaterial {
            expiration_model: model,
            valid_to_ms,
        }));
        if record.state == KeyState::PendingImport {
            record.state = KeyState::Enabled;
        }
        let key = self.replace_key_locked(
            record,
            vec![Arc::new(loaded)],
            vec![Change::Put {
                kind: KIND_MATERIAL,
                id: mid,
                body: sealed,
            }],
        )?;
        tracing::info!(key = %key.record.arn(), "key material imported");
        Ok(ImportKeyMaterialResponse {
            key_id: key.record.arn(),
            key_material_id: id.to_hex(),
        })
    }

    /// DeleteImportedKeyMaterial: the key becomes PendingImport (a key
    /// pending deletion keeps its state); no effect without material.
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
        if let Some(wanted) = &req.key_material_id {
            if !r.materials.first().is_some_and(|m| m.id.is(wanted)) {
                return Err(KmsError::NotFound(format!(
                    "Key material {wanted} is not associated with {}.",
                    r.arn()
                )));
            }
        }
        let removed = self.remove_imported_material(&r.addr, |_| true)?;
        if removed {
            tracing::info!(key = %r.arn(), "imported key material deleted");
        }
        Ok(DeleteImportedKeyMaterialResponse {
            key_id: r.arn(),
            key_material_id: r.materials.first().map(|m| m.id.to_hex()),
        })
    }

    /// Deletes the imported material of a key if `check` still holds under
    /// the writer lock; Enabled and Disabled keys become PendingImport.
    /// Returns whether material was removed.
    fn remove_imported_material(
        &self,
        addr: &KeyAddr,
        check: impl FnOnce(&KeyRecord) -> bool,
    ) -> Result<bool, KmsError> {
        let _w = self.writer.lock();
        let Some(current) = self.state.read().keys.get(addr).cloned() else {
            return Ok(false);
        };
        if current.record.imported.is_none() || !check(&current.record) {
            return Ok(false);
        }
        let mut record = current.record.clone();
        record.imported = None;
        if matches!(record.state, KeyState::Enabled | KeyState::Disabled) {
            record.state = KeyState::PendingImport;
        }
        let changes = (0..record.materials.len())
            .map(|v| Change::Delete {
                kind: KIND_MATERIAL,
                id: material_storage_id(addr, v as u32),
            })
            .collect();
        self.replace_key_locked(record, Vec::new(), changes)?;
        Ok(true)
    }

    /// Deletes imported material whose `ValidTo` has passed (by
    /// [`Kms::clock`]); run by the sweeper. Cryptographic operations refuse
    /// expired material even before this runs. Returns how many keys lost
    /// their material.
    pub fn expire_imported_material(&self) -> Result<usize, KmsError> {
        let now = self.clock.now_ms();
        let due: Vec<KeyAddr> = self
            .state
            .read()
            .keys
            .values()
            .filter(|k| {
                k.record
                    .imported
                    .as_ref()
                    .is_some_and(|i| i.expired_at(now))
            })
            .map(|k| k.record.addr.clone())
            .collect();
        let mut expired = 0;
        for addr in due {
            let still_due = |r: &KeyRecord| r.imported.as_ref().is_some_and(|i| i.expired_at(now));
            if self.remove_imported_material(&addr, still_due)? {
                expired += 1;
                tracing::info!(key = %addr.arn(), "imported key material expired and was deleted");
            }
        }
        Ok(expired)
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
