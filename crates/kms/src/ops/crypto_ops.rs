//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey,
//! GenerateDataKeyWithoutPlaintext, GenerateRandom.
//!
//! The hot path: each call reads only the in-memory key (one read lock and
//! an `Arc` clone) and does no I/O, except for keys in an external key
//! store, whose second layer is the proxy's (`custom_key_stores.rs`; the
//! server then runs these operations on its blocking pool).

use std::sync::Arc;

use zeroize::Zeroizing;

use ferrokms_policy::Context;

use crate::api::*;
use crate::crypto::{self, random_bytes, BlobHeader, EncryptionContext, SymmetricMaterial};
use crate::ids::{Accepts, KeyAddr, KeyRef};
use crate::model::{DataKeySpec, EncryptionAlgorithm, KeySpec, KeyUsage};
use crate::ops::asymmetric::check_oaep;
use crate::ops::custom_key_stores::XksCaller;
use crate::ops::encryption_context_keys;
use crate::state::Key;
use crate::usage::TrackedOp;
use crate::{Caller, Kms, KmsError};

const MAX_SYMMETRIC_PLAINTEXT: usize = 4096;

const DRY_RUN_MESSAGE: &str = "The request would have succeeded, but the DryRun option is set.";

/// The message AWS gives when a ciphertext's key cannot be used by the caller.
const CIPHERTEXT_KEY_UNUSABLE: &str = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.";

/// AWS's text when a Decrypt or ReEncrypt names a key that cannot have
/// produced the ciphertext.
const INCORRECT_KEY: &str =
    "The key ID in the request does not identify a CMK that can perform this operation.";

fn is_symmetric_encryption_key(key: &Key) -> bool {
    key.record.key_spec == KeySpec::SymmetricDefault
        && key.record.key_usage == KeyUsage::EncryptDecrypt
}

/// A key-usage mismatch in AWS's words: `<arn> key usage is <usage> which is
/// not valid for <Op>.` (the key spec is not named, even for an RSA
/// ENCRYPT_DECRYPT key refused by GenerateDataKey).
pub(crate) fn require_symmetric_encryption_key(key: &Key, op: &str) -> Result<(), KmsError> {
    let r = &key.record;
    if !is_symmetric_encryption_key(key) {
        return Err(crate::ops::asymmetric::wrong_usage(r, op));
    }
    Ok(())
}

fn is_rsa_encryption_key(key: &Key) -> bool {
    key.record.key_spec.is_rsa() && key.record.key_usage == KeyUsage::EncryptDecrypt
}

fn require_symmetric_algorithm(alg: Option<EncryptionAlgorithm>) -> Result<(), KmsError> {
    match alg {
        None | Some(EncryptionAlgorithm::SymmetricDefault) => Ok(()),
        Some(other) => Err(KmsError::InvalidKeyUsage(format!(
            "The encryption algorithm {other} is not valid for a symmetric encryption KMS key. Use SYMMETRIC_DEFAULT."
        ))),
    }
}

/// DryRun with the IGNORE_CIPHERTEXT modifier (Decrypt, ReEncrypt): only
/// authorization is checked, against the key that KeyId / SourceKeyId names.
fn ignores_ciphertext(dry_run: Option<bool>, modifiers: Option<&[String]>) -> bool {
    dry_run == Some(true) && modifiers.is_some_and(|m| m.iter().any(|x| x == "IGNORE_CIPHERTEXT"))
}

/// The key id is required when IGNORE_CIPHERTEXT leaves no ciphertext to
/// name the key (the model documents it; the message shape is the one of a
/// missing required member).
fn key_id_required(member: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// The request member that holds the encryption context a Decrypt-side action reads.
fn context_member(action: &str) -> &'static str {
    if action == "ReEncryptFrom" {
        "sourceEncryptionContext"
    } else {
        "encryptionContext"
    }
}

pub(crate) fn dry_run(flag: Option<bool>) -> Result<(), KmsError> {
    if flag == Some(true) {
        Err(KmsError::DryRunOperation(DRY_RUN_MESSAGE.into()))
    } else {
        Ok(())
    }
}

/// How a ciphertext is to be opened: the key the request named (if any),
/// the action authorized, DryRun, and whether ReEncrypt targets the same key.
struct Opening<'a> {
    named_key: Option<&'a str>,
    action: &'a str,
    dry: Option<bool>,
    same_key: bool,
}

/// A fresh data key: its encrypted blob, plaintext, the key and material used.
struct DataKey {
    blob: Vec<u8>,
    plaintext: Zeroizing<Vec<u8>>,
    key: Arc<Key>,
    material: String,
}

/// A ciphertext opened: plaintext plus the key and material that made it.
struct Opened {
    key: Arc<Key>,
    material_id: String,
    plaintext: Zeroizing<Vec<u8>>,
}

impl Kms {
    /// Encrypt: up to 4096 bytes under a symmetric key; the encryption
    /// context becomes associated data and must be repeated on Decrypt.
    pub fn encrypt(
        &self,
        caller: &Caller,
        req: EncryptRequest,
    ) -> Result<EncryptResponse, KmsError> {
        let mut cond = Context::new();
        if let Some(ec) = &req.encryption_context {
            encryption_context_keys(&mut cond, ec, "encryptionContext")?;
        }
        cond.insert(
            "kms:EncryptionAlgorithm",
            req.encryption_algorithm
                .unwrap_or(EncryptionAlgorithm::SymmetricDefault)
                .as_str(),
        );
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOrAlias, "Encrypt", cond)?;
        self.require_usable(&key.record)?;
        if is_rsa_encryption_key(&key) {
            let out = self.encrypt_asymmetric(&key, &req)?;
            self.record_use(&key, TrackedOp::Encrypt);
            return Ok(out);
        }
        require_symmetric_encryption_key(&key, "Encrypt")?;
        require_symmetric_algorithm(req.encryption_algorithm)?;
        if req.plaintext.0.len() > MAX_SYMMETRIC_PLAINTEXT {
            return Err(KmsError::validation(
                None,
                "plaintext",
                "Member must have length less than or equal to 4096",
            ));
        }
        dry_run(req.dry_run)?;
        let ctx = req.encryption_context.unwrap_or_default();
        let (blob, _) =
            self.seal_under(&key, &ctx, &req.plaintext.0, xks_caller(caller, "Encrypt"))?;
        self.record_use(&key, TrackedOp::Encrypt);
        Ok(EncryptResponse {
            ciphertext_blob: Blob(blob),
            key_id: key.record.arn(),
            encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
        })
    }

    /// Decrypt: the key comes from the ciphertext; a `KeyId`, if given, must
    /// name that same key.
    pub fn decrypt(
        &self,
        caller: &Caller,
        req: DecryptRequest,
    ) -> Result<DecryptResponse, KmsError> {
        if ignores_ciphertext(req.dry_run, req.dry_run_modifiers.as_deref()) {
            // No ciphertext to name the key: KeyId must, and the caller
            // must be authorized on it before it hears "would have succeeded".
            let k = req
                .key_id
                .as_deref()
                .ok_or_else(|| key_id_required("keyId"))?;
            self.dry_run_decrypt_without_ciphertext(
                caller,
                k,
                "Decrypt",
                req.encryption_context.as_ref(),
                req.encryption_algorithm,
                None,
            )?;
            return Err(KmsError::DryRunOperation(DRY_RUN_MESSAGE.into()));
        }
        let blob = req.ciphertext_blob.clone().ok_or_else(|| {
            KmsError::Validation(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
        // An asymmetric ciphertext is raw RSA-OAEP output: only the KeyId
        // says which key made it.
        if let Some(k) = &req.key_id {
            let key = self.lookup(&KeyRef::parse(
                k,
                &caller.account,
                &caller.region,
                Accepts::KeyOrAlias,
            )?)?;
            if is_rsa_encryption_key(&key) {
                let mut cond = Context::new();
                if let Some(alg) = req.encryption_algorithm {
                    cond.insert("kms:EncryptionAlgorithm", alg.as_str());
                }
                let key = self.resolve_with(caller, k, Accepts::KeyOrAlias, "Decrypt", cond)?;
                self.require_usable(&key.record)?;
                let out = self.decrypt_asymmetric(&key, &req, &blob.0)?;
                self.record_use(&key, TrackedOp::Decrypt);
                return Ok(out);
            }
        }
        require_symmetric_algorithm(req.encryption_algorithm)?;
        let ctx = req.encryption_context.unwrap_or_default();
        let opened = self.open_ciphertext(
            caller,
            &blob.0,
            &ctx,
            Opening {
                named_key: req.key_id.as_deref(),
                action: "Decrypt",
                dry: req.dry_run,
                same_key: false,
            },
        )?;
        self.record_use(&opened.key, TrackedOp::Decrypt);
        Ok(DecryptResponse {
            key_id: opened.key.record.arn(),
            plaintext: SecretBlob(opened.plaintext),
            encryption_algorithm: EncryptionAlgorithm::SymmetricDefault,
            key_material_id: Some(opened.material_id),
        })
    }

    /// ReEncrypt: decrypts under the source key and encrypts under the
    /// destination key without the plaintext leaving the service.
    pub fn re_encrypt(
        &self,
        caller: &Caller,
        req: ReEncryptRequest,
    ) -> Result<ReEncryptResponse, KmsError> {
        let dest_ref = KeyRef::parse(
            &req.destination_key_id,
            &caller.account,
            &caller.region,
            Accepts::KeyOrAlias,
        )?;
        // DryRun with IGNORE_CIPHERTEXT: SourceKeyId names the source key
        // instead of the ciphertext, and is then required.
        let ignore_ciphertext = ignores_ciphertext(req.dry_run, req.dry_run_modifiers.as_deref());
        let source_without_ciphertext = match (ignore_ciphertext, &req.source_key_id) {
            (false, _) => None,
            (true, Some(k)) => Some(k.as_str()),
            (true, None) => return Err(key_id_required("sourceKeyId")),
        };
        let same_key = match self.lookup(&dest_ref) {
            Err(_) => false,
            Ok(d) => match (source_without_ciphertext, &req.ciphertext_blob) {
                (Some(k), _) => {
                    KeyRef::parse(k, &caller.account, &caller.region, Accepts::KeyOrAlias)
                        .ok()
                        .and_then(|r| self.lookup(&r).ok())
                        .is_some_and(|s| s.record.addr == d.record.addr)
                }
                (None, Some(b)) => crypto::parse_header(&b.0)
                    .map(|(h, _)| {
                        h.key_id == d.record.addr.key_id && h.account == d.record.addr.account
                    })
                    .unwrap_or(false),
                (None, None) => false,
            },
        };
        let mut cond = Context::new();
        if let Some(ec) = &req.destination_encryption_context {
            encryption_context_keys(&mut cond, ec, "destinationEncryptionContext")?;
        }
        cond.insert(
            "kms:EncryptionAlgorithm",
            req.destination_encryption_algorithm
                .unwrap_or(EncryptionAlgorithm::SymmetricDefault)
                .as_str(),
        );
        cond.insert("kms:ReEncryptOnSameKey", same_key);
        let dest = self.resolve_with(
            caller,
            &req.destination_key_id,
            Accepts::KeyOrAlias,
            "ReEncryptTo",
            cond,
        )?;
        self.require_usable(&dest.record)?;
        let dest_is_rsa = is_rsa_encryption_key(&dest);
        if !dest_is_rsa {
            require_symmetric_encryption_key(&dest, "ReEncrypt")?;
            require_symmetric_algorithm(req.destination_encryption_algorithm)?;
        }
        if let Some(k) = source_without_ciphertext {
            self.dry_run_decrypt_without_ciphertext(
                caller,
                k,
                "ReEncryptFrom",
                req.source_encryption_context.as_ref(),
                req.source_encryption_algorithm,
                Some(same_key),
            )?;
            return Err(KmsError::DryRunOperation(DRY_RUN_MESSAGE.into()));
        }
        let blob = req.ciphertext_blob.ok_or_else(|| {
            KmsError::Validation(
                "1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null".into(),
            )
        })?;
        // An asymmetric source ciphertext is raw RSA-OAEP output: only
        // SourceKeyId says which key made it.
        let rsa_source = match &req.source_key_id {
            Some(k) => {
                let key_ref =
                    KeyRef::parse(k, &caller.account, &caller.region, Accepts::KeyOrAlias)?;
                self.lookup(&key_ref)
                    .ok()
                    .filter(|key| is_rsa_encryption_key(key))
            }
            None => None,
        };
        let (source_key, source_alg, source_material, plaintext) =
            match (rsa_source, &req.source_key_id) {
                (Some(_), Some(k)) => {
                    let mut cond = Context::new();
                    if let Some(a) = req.source_encryption_algorithm {
                        cond.insert("kms:EncryptionAlgorithm", a.as_str());
                    }
                    cond.insert("kms:ReEncryptOnSameKey", same_key);
                    let src =
                        self.resolve_with(caller, k, Accepts::KeyOrAlias, "ReEncryptFrom", cond)?;
                    self.require_usable(&src.record)?;
                    let (alg, pt) = self.oaep_open(
                        &src,
                        req.source_encryption_algorithm,
                        req.source_encryption_context.as_ref(),
                        &blob.0,
                    )?;
                    dry_run(req.dry_run)?;
                    (src, alg, None, pt)
                }
                _ => {
                    require_symmetric_algorithm(req.source_encryption_algorithm)?;
                    let src_ctx = req.source_encryption_context.clone().unwrap_or_default();
                    let opened = self.open_ciphertext(
                        caller,
                        &blob.0,
                        &src_ctx,
                        Opening {
                            named_key: req.source_key_id.as_deref(),
                            action: "ReEncryptFrom",
                            dry: req.dry_run,
                            same_key,
                        },
                    )?;
                    (
                        opened.key,
                        EncryptionAlgorithm::SymmetricDefault,
                        Some(opened.material_id),
                        opened.plaintext,
                    )
                }
            };
        let (new_blob, dest_alg, dest_material) = if dest_is_rsa {
            let (alg, ct) = self.oaep_seal(
                &dest,
                req.destination_encryption_algorithm,
                req.destination_encryption_context.as_ref(),
                &plaintext,
            )?;
            (ct, alg, None)
        } else {
            let dest_ctx = req.destination_encryption_context.unwrap_or_default();
            let (b, m) = self.seal_under(
                &dest,
                &dest_ctx,
                &plaintext,
                xks_caller(caller, "ReEncrypt"),
            )?;
            (b, EncryptionAlgorithm::SymmetricDefault, Some(m.to_hex()))
        };
        // Both keys were used (AWS records ReEncrypt on each).
        self.record_use(&source_key, TrackedOp::ReEncrypt);
        self.record_use(&dest, TrackedOp::ReEncrypt);
        Ok(ReEncryptResponse {
            ciphertext_blob: Blob(new_blob),
            source_key_id: source_key.record.arn(),
            key_id: dest.record.arn(),
            source_encryption_algorithm: source_alg,
            destination_encryption_algorithm: dest_alg,
            source_key_material_id: source_material,
            destination_key_material_id: dest_material,
        })
    }

    /// GenerateDataKey: a fresh data key, in plaintext and encrypted.
    pub fn generate_data_key(
        &self,
        caller: &Caller,
        req: GenerateDataKeyRequest,
    ) -> Result<GenerateDataKeyResponse, KmsError> {
        let DataKey {
            blob,
            plaintext,
            key,
            material,
        } = self.make_data_key(caller, req, "GenerateDataKey")?;
        self.record_use(&key, TrackedOp::GenerateDataKey);
        Ok(GenerateDataKeyResponse {
            ciphertext_blob: Blob(blob),
            plaintext: SecretBlob(plaintext),
            key_id: key.record.arn(),
            key_material_id: material,
        })
    }

    /// GenerateDataKeyWithoutPlaintext: as GenerateDataKey, encrypted copy only.
    pub fn generate_data_key_without_plaintext(
        &self,
        caller: &Caller,
        req: GenerateDataKeyWithoutPlaintextRequest,
    ) -> Result<GenerateDataKeyWithoutPlaintextResponse, KmsError> {
        let DataKey {
            blob,
            key,
            material,
            ..
        } = self.make_data_key(caller, req, "GenerateDataKeyWithoutPlaintext")?;
        self.record_use(&key, TrackedOp::GenerateDataKeyWithoutPlaintext);
        Ok(GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: Blob(blob),
            key_id: key.record.arn(),
            key_material_id: material,
        })
    }

    /// GenerateRandom: 1 to 1024 random bytes (NumberOfBytes is required
    /// even though the model marks it optional).
    pub fn generate_random(
        &self,
        caller: &Caller,
        req: GenerateRandomRequest,
    ) -> Result<GenerateRandomResponse, KmsError> {
        // Validation first, as on AWS. The model marks NumberOfBytes
        // optional; AWS requires it in these words.
        let n = req
            .number_of_bytes
            .ok_or_else(|| KmsError::Validation("NumberOfBytes is required.".into()))?;
        if !(1..=1024).contains(&n) {
            return Err(KmsError::validation(
                Some(&n.to_string()),
                "numberOfBytes",
                if n < 1 {
                    "Member must have value greater than or equal to 1"
                } else {
                    "Member must have value less than or equal to 1024"
                },
            ));
        }
        self.authorize_identity_only(caller, "GenerateRandom", "*", Context::new())?;
        if let Some(store) = &req.custom_key_store_id {
            // Only CloudHSM key stores generate random bytes; every store
            // here is an external key store.
            self.store_of(&caller.account, &caller.region, store)?;
            return Err(KmsError::UnsupportedOperation(format!(
                "Custom key store {store} is an external key store: GenerateRandom takes a CloudHSM key store only."
            )));
        }
        Ok(GenerateRandomResponse {
            plaintext: SecretBlob(random_bytes(n as usize)?),
        })
    }

    fn make_data_key(
        &self,
        caller: &Caller,
        req: GenerateDataKeyRequest,
        op: &str,
    ) -> Result<DataKey, KmsError> {
        let len = match (req.key_spec, req.number_of_bytes) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ))
            }
            (Some(DataKeySpec::Aes256), None) => 32,
            (Some(DataKeySpec::Aes128), None) => 16,
            (None, Some(n)) => {
                if !(1..=1024).contains(&n) {
                    return Err(KmsError::validation(
                        Some(&n.to_string()),
                        "numberOfBytes",
                        if n < 1 {
                            "Member must have value greater than or equal to 1"
                        } else {
                            "Member must have value less than or equal to 1024"
                        },
                    ));
                }
                n as usize
            }
        };
        let mut cond = Context::new();
        if let Some(ec) = &req.encryption_context {
            encryption_context_keys(&mut cond, ec, "encryptionContext")?;
        }
        cond.insert(
            "kms:EncryptionAlgorithm",
            EncryptionAlgorithm::SymmetricDefault.as_str(),
        );
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOrAlias, op, cond)?;
        self.require_usable(&key.record)?;
        require_symmetric_encryption_key(&key, op)?;
        dry_run(req.dry_run)?;
        let plaintext = random_bytes(len)?;
        let ctx = req.encryption_context.unwrap_or_default();
        let (blob, material) = self.seal_under(&key, &ctx, &plaintext, xks_caller(caller, op))?;
        Ok(DataKey {
            blob,
            plaintext,
            key,
            material: material.to_hex(),
        })
    }

    /// The checks of a Decrypt (or ReEncrypt's source) that DryRun with
    /// IGNORE_CIPHERTEXT can make without a ciphertext: `action` on the key
    /// `key_id` names, with the condition keys the real call would carry
    /// (its encryption context and algorithm, so policy conditions and grant
    /// constraints are judged as for the real call), then the key's state,
    /// usage and algorithm.
    fn dry_run_decrypt_without_ciphertext(
        &self,
        caller: &Caller,
        key_id: &str,
        action: &str,
        ctx: Option<&EncryptionContext>,
        alg: Option<EncryptionAlgorithm>,
        same_key: Option<bool>,
    ) -> Result<(), KmsError> {
        // As the real call: an RSA key carries the algorithm only if given,
        // a symmetric one always (SYMMETRIC_DEFAULT when omitted). A key
        // that cannot be found is reported by the authorization below.
        let rsa = KeyRef::parse(key_id, &caller.account, &caller.region, Accepts::KeyOrAlias)
            .ok()
            .and_then(|r| self.lookup(&r).ok())
            .is_some_and(|k| is_rsa_encryption_key(&k));
        let mut cond = Context::new();
        if let Some(ec) = ctx {
            encryption_context_keys(&mut cond, ec, context_member(action))?;
        }
        match (alg, rsa) {
            (Some(a), _) => cond.insert("kms:EncryptionAlgorithm", a.as_str()),
            (None, false) => cond.insert(
                "kms:EncryptionAlgorithm",
                EncryptionAlgorithm::SymmetricDefault.as_str(),
            ),
            (None, true) => {}
        }
        if let Some(same) = same_key {
            cond.insert("kms:ReEncryptOnSameKey", same);
        }
        let key = self.resolve_with(caller, key_id, Accepts::KeyOrAlias, action, cond)?;
        self.require_usable(&key.record)?;
        if is_rsa_encryption_key(&key) {
            check_oaep(&key.record, alg, ctx)?;
        } else {
            require_symmetric_encryption_key(&key, action)?;
            require_symmetric_algorithm(alg)?;
        }
        Ok(())
    }

    fn open_ciphertext(
        &self,
        caller: &Caller,
        blob: &[u8],
        ctx: &EncryptionContext,
        how: Opening<'_>,
    ) -> Result<Opened, KmsError> {
        let Opening {
            named_key,
            action,
            dry,
            same_key,
        } = how;
        let (header, header_len) = crypto::parse_header(blob)?;
        let addr = KeyAddr {
            account: header.account.clone(),
            region: caller.region.clone(),
            key_id: header.key_id.clone(),
        };
        let key = self
            .lookup(&KeyRef::Key(addr.clone()))
            .map_err(|_| KmsError::AccessDenied(CIPHERTEXT_KEY_UNUSABLE.into()))?;
        let mut cond = Context::new();
        encryption_context_keys(&mut cond, ctx, context_member(action))?;
        cond.insert(
            "kms:EncryptionAlgorithm",
            EncryptionAlgorithm::SymmetricDefault.as_str(),
        );
        if action == "ReEncryptFrom" {
            cond.insert("kms:ReEncryptOnSameKey", same_key);
        }
        if let Some(named) = named_key {
            let named_ref =
                KeyRef::parse(named, &caller.account, &caller.region, Accepts::KeyOrAlias)?;
            if let KeyRef::Alias(a) = &named_ref {
                cond.insert("kms:RequestAlias", a.name.as_str());
            }
            // A key that cannot have made this ciphertext (another key, or
            // one that does not encrypt, an HMAC key say) is AWS's
            // IncorrectKeyException, before any usage check.
            let named = self.lookup(&named_ref)?;
            if named.record.addr != addr || !is_symmetric_encryption_key(&named) {
                return Err(KmsError::IncorrectKey(INCORRECT_KEY.into()));
            }
        }
        self.authorize_key(caller, &key, action, cond)?;
        self.require_usable(&key.record)?;
        require_symmetric_encryption_key(&key, action)?;
        dry_run(dry)?;
        // A key in an external key store: the proxy removes the outer
        // layer first, giving back the version-1 blob of the same key and
        // material. Any other pairing of key and blob version is invalid.
        let inner;
        let (blob, header_len) = match (&key.record.xks, blob.first()) {
            (Some(x), Some(&crate::xks::XKS_BLOB_VERSION)) => {
                let operation = if action == "ReEncryptFrom" {
                    "ReEncrypt"
                } else {
                    action
                };
                inner = self.xks_open(
                    &key,
                    x,
                    blob,
                    header_len,
                    ctx,
                    &xks_caller(caller, operation),
                )?;
                let (inner_header, inner_len) = crypto::parse_header(&inner)?;
                if inner_header != header || inner.first() == Some(&crate::xks::XKS_BLOB_VERSION) {
                    return Err(KmsError::InvalidCiphertext);
                }
                (inner.as_slice(), inner_len)
            }
            (None, Some(v)) if *v != crate::xks::XKS_BLOB_VERSION => (blob, header_len),
            _ => return Err(KmsError::InvalidCiphertext),
        };
        let idx = header.material as usize;
        let material: &SymmetricMaterial = key
            .materials
            .get(idx)
            .and_then(|m| m.symmetric())
            .ok_or(KmsError::InvalidCiphertext)?;
        let plaintext = crypto::decrypt(material, blob, header_len, ctx)?;
        let material_id = key
            .record
            .materials
            .get(idx)
            .map(|m| m.id.to_hex())
            .ok_or(KmsError::InvalidCiphertext)?;
        Ok(Opened {
            key,
            material_id,
            plaintext,
        })
    }
}

/// Who asks a proxy: the caller and the operation.
pub(crate) fn xks_caller<'a>(caller: &'a Caller, operation: &'a str) -> XksCaller<'a> {
    XksCaller {
        principal_arn: &caller.arn,
        operation,
    }
}

impl Kms {
    /// Encrypts under the key's newest material ([`seal_inner`]) and, for a
    /// key in an external key store, again under its external key through
    /// the proxy (double encryption); returns the blob and the material id.
    pub(crate) fn seal_under(
        &self,
        key: &Key,
        ctx: &EncryptionContext,
        plaintext: &[u8],
        who: XksCaller<'_>,
    ) -> Result<(Vec<u8>, crate::model::MaterialId), KmsError> {
        let (blob, id) = seal_inner(key, ctx, plaintext)?;
        match &key.record.xks {
            None => Ok((blob, id)),
            Some(x) => {
                let (header, _) = crypto::parse_header(&blob)?;
                Ok((self.xks_seal(key, x, &header, ctx, &blob, &who)?, id))
            }
        }
    }
}

/// Encrypts under the key's newest material; returns the blob and the
/// material id used (hexed only by the callers that show it: Encrypt
/// does not).
pub(crate) fn seal_inner(
    key: &Key,
    ctx: &EncryptionContext,
    plaintext: &[u8],
) -> Result<(Vec<u8>, crate::model::MaterialId), KmsError> {
    let (version, info) = key
        .record
        .current_material()
        .ok_or_else(|| KmsError::Internal("key has no material".into()))?;
    let material = key
        .materials
        .get(version as usize)
        .and_then(|m| m.symmetric())
        .ok_or_else(|| KmsError::Internal("key material is not loaded".into()))?;
    let header = BlobHeader {
        key_id: key.record.addr.key_id.clone(),
        account: key.record.addr.account.clone(),
        material: version,
    };
    let blob = crypto::encrypt(material, &header, ctx, plaintext)?;
    Ok((blob, info.id))
}
