//! Sign, Verify, GetPublicKey, GenerateMac, VerifyMac, DeriveSharedSecret,
//! Encapsulate, Decapsulate, GenerateDataKeyPair,
//! GenerateDataKeyPairWithoutPlaintext, and the RSA-OAEP halves of Encrypt
//! and Decrypt.
//!
//! Order of checks, as for the symmetric operations: the key (NotFound,
//! account), its state, its usage, the algorithm, the message, DryRun, and
//! only then the cryptography.

use std::sync::Arc;

use zeroize::Zeroizing;

use ferrokms_policy::Context;

use crate::api::*;
use crate::crypto::EncryptionContext;
use crate::ids::Accepts;
use crate::keymat::{self, KeyMaterial};
use crate::model::{
    DataKeyPairSpec, EncryptionAlgorithm, KeyAgreementAlgorithm, KeyRecord, KeySpec, KeyUsage,
    MacAlgorithm, MessageType, SigningAlgorithm,
};
use crate::ops::crypto_ops::{dry_run, require_symmetric_encryption_key, xks_caller};
use crate::state::Key;
use crate::usage::TrackedOp;
use crate::{Caller, Kms, KmsError};

pub(crate) fn wrong_usage(r: &KeyRecord, op: &str) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "{} key usage is {} which is not valid for {op}.",
        r.arn(),
        r.key_usage
    ))
}

fn require_usage(r: &KeyRecord, usage: KeyUsage, op: &str) -> Result<(), KmsError> {
    if r.key_usage == usage && r.key_spec != KeySpec::SymmetricDefault {
        Ok(())
    } else {
        Err(wrong_usage(r, op))
    }
}

/// AWS's answer to an RSA-OAEP plaintext over the key's limit.
fn oaep_plaintext_too_long(alg: EncryptionAlgorithm, spec: KeySpec, max: usize) -> KmsError {
    KmsError::Validation(format!(
        "Algorithm {alg} and key spec {spec} cannot encrypt data larger than {max} bytes."
    ))
}

fn incompatible_algorithm(alg: &str, spec: KeySpec) -> KmsError {
    KmsError::InvalidKeyUsage(format!(
        "Algorithm {alg} is incompatible with key spec {spec}."
    ))
}

fn missing(member: &str) -> KmsError {
    KmsError::Validation(format!(
        "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
    ))
}

/// The newest material of a key (asymmetric and HMAC keys have exactly one).
fn current(key: &Key) -> Result<&Arc<KeyMaterial>, KmsError> {
    let (v, _) = key
        .record
        .current_material()
        .ok_or_else(|| KmsError::Internal("key has no material".into()))?;
    key.materials
        .get(v as usize)
        .ok_or_else(|| KmsError::Internal("key material is not loaded".into()))
}

/// The KMS rules for Sign/Verify: algorithm in the key's list, message type
/// allowed for the algorithm, digest length. Returns whether the message is
/// a digest.
pub(crate) fn check_signing(
    spec: KeySpec,
    alg: SigningAlgorithm,
    message_type: Option<MessageType>,
    message: &[u8],
) -> Result<bool, KmsError> {
    if !spec.signing_algorithms().contains(&alg) {
        return Err(incompatible_algorithm(alg.as_str(), spec));
    }
    let mt = message_type.unwrap_or(MessageType::Raw);
    let is_mldsa = matches!(spec, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87);
    match mt {
        MessageType::ExternalMu if is_mldsa => Err(KmsError::UnsupportedOperation(
            "MessageType EXTERNAL_MU is not supported by ferrokms: the cryptographic library it uses has no external-mu ML-DSA signing. Use MessageType RAW.".into(),
        )),
        MessageType::ExternalMu => Err(KmsError::Validation(format!(
            "Message type {mt} is incompatible with key spec {spec}."
        ))),
        MessageType::Digest if is_mldsa => Err(KmsError::Validation(format!(
            "Message type {mt} is incompatible with key spec {spec}."
        ))),
        MessageType::Digest if alg == SigningAlgorithm::Ed25519Sha512 => Err(KmsError::Validation(
            "The ED25519_SHA_512 signing algorithm requires MessageType RAW.".into(),
        )),
        MessageType::Raw if alg == SigningAlgorithm::Ed25519PhSha512 => Err(KmsError::Validation(
            "The ED25519_PH_SHA_512 signing algorithm requires MessageType DIGEST.".into(),
        )),
        MessageType::Digest => {
            if Some(message.len()) != alg.digest_len() {
                return Err(KmsError::Validation(format!(
                    "Digest is invalid length for algorithm {alg}."
                )));
            }
            // Ed25519ph hashes the digest once more (see keymat::ph_digest):
            // to the primitive it is an ordinary message.
            Ok(alg != SigningAlgorithm::Ed25519PhSha512)
        }
        MessageType::Raw => Ok(false),
    }
}

/// The rules of asymmetric Encrypt/Decrypt: an OAEP algorithm, no context.
pub(crate) fn check_oaep(
    key: &KeyRecord,
    alg: Option<EncryptionAlgorithm>,
    ctx: Option<&EncryptionContext>,
) -> Result<EncryptionAlgorithm, KmsError> {
    let alg = alg.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    if keymat::oaep(alg).is_none() {
        return Err(incompatible_algorithm(alg.as_str(), key.key_spec));
    }
    if ctx.is_some_and(|c| !c.is_empty()) {
        return Err(KmsError::Validation(
            "EncryptionContext is not supported with asymmetric KMS keys: an encryption context is valid only for symmetric encryption keys.".into(),
        ));
    }
    Ok(alg)
}

fn no_recipient(r: &Option<serde_json::Value>) -> Result<(), KmsError> {
    if r.is_some() {
        return Err(KmsError::UnsupportedOperation(
            "Recipient (Nitro Enclaves attestation) is not supported by ferrokms.".into(),
        ));
    }
    Ok(())
}

impl Kms {
    /// Sign
    pub fn sign(&self, caller: &Caller, req: SignRequest) -> Result<SignResponse, KmsError> {
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOrAlias,
            "Sign",
            signing_context(req.signing_algorithm, req.message_type),
        )?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::SignVerify, "Sign")?;
        let alg = req
            .signing_algorithm
            .ok_or_else(|| missing("signingAlgorithm"))?;
        let digest = check_signing(r.key_spec, alg, req.message_type, &req.message.0)?;
        dry_run(req.dry_run)?;
        let sig = current(&key)?.sign(r.key_spec, alg, digest, &req.message.0)?;
        self.record_use(&key, TrackedOp::Sign);
        Ok(SignResponse {
            key_id: r.arn(),
            signature: Blob(sig),
            signing_algorithm: alg,
        })
    }

    /// Verify: a bad signature is KMSInvalidSignatureException, never false.
    pub fn verify(&self, caller: &Caller, req: VerifyRequest) -> Result<VerifyResponse, KmsError> {
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOrAlias,
            "Verify",
            signing_context(req.signing_algorithm, req.message_type),
        )?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::SignVerify, "Verify")?;
        let alg = req
            .signing_algorithm
            .ok_or_else(|| missing("signingAlgorithm"))?;
        let digest = check_signing(r.key_spec, alg, req.message_type, &req.message.0)?;
        dry_run(req.dry_run)?;
        if !current(&key)?.verify(r.key_spec, alg, digest, &req.message.0, &req.signature.0)? {
            return Err(KmsError::InvalidSignature);
        }
        self.record_use(&key, TrackedOp::Verify);
        Ok(VerifyResponse {
            key_id: r.arn(),
            signature_valid: true,
            signing_algorithm: alg,
        })
    }

    /// GetPublicKey: DER SubjectPublicKeyInfo of an asymmetric key.
    pub fn get_public_key(
        &self,
        caller: &Caller,
        req: GetPublicKeyRequest,
    ) -> Result<GetPublicKeyResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOrAlias, "GetPublicKey")?;
        let r = &key.record;
        self.require_usable(r)?;
        if !r.key_spec.is_asymmetric() {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} key spec is {} which is not valid for GetPublicKey: only asymmetric KMS keys have a public key.",
                r.arn(),
                r.key_spec
            )));
        }
        let der = current(&key)?
            .public_key_der()?
            .ok_or_else(|| KmsError::Internal("asymmetric key without a public key".into()))?;
        Ok(GetPublicKeyResponse {
            key_id: r.arn(),
            public_key: Blob(der),
            customer_master_key_spec: r.key_spec,
            key_spec: r.key_spec,
            key_usage: r.key_usage,
            encryption_algorithms: (r.key_usage == KeyUsage::EncryptDecrypt)
                .then(|| r.encryption_algorithms())
                .flatten(),
            signing_algorithms: r.signing_algorithms(),
            key_agreement_algorithms: r.key_agreement_algorithms(),
            encapsulation_algorithms: r.encapsulation_algorithms(),
        })
    }

    /// GenerateMac
    pub fn generate_mac(
        &self,
        caller: &Caller,
        req: GenerateMacRequest,
    ) -> Result<GenerateMacResponse, KmsError> {
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOrAlias,
            "GenerateMac",
            mac_context(req.mac_algorithm),
        )?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::GenerateVerifyMac, "GenerateMac")?;
        let alg = req.mac_algorithm.ok_or_else(|| missing("macAlgorithm"))?;
        if r.key_spec.mac_algorithm() != Some(alg) {
            return Err(incompatible_algorithm(alg.as_str(), r.key_spec));
        }
        dry_run(req.dry_run)?;
        let mac = current(&key)?.mac(&req.message.0)?;
        self.record_use(&key, TrackedOp::GenerateMac);
        Ok(GenerateMacResponse {
            mac: Blob(mac),
            mac_algorithm: alg,
            key_id: r.arn(),
        })
    }

    /// VerifyMac: a wrong MAC is KMSInvalidMacException.
    pub fn verify_mac(
        &self,
        caller: &Caller,
        req: VerifyMacRequest,
    ) -> Result<VerifyMacResponse, KmsError> {
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOrAlias,
            "VerifyMac",
            mac_context(req.mac_algorithm),
        )?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::GenerateVerifyMac, "VerifyMac")?;
        let alg = req.mac_algorithm.ok_or_else(|| missing("macAlgorithm"))?;
        if r.key_spec.mac_algorithm() != Some(alg) {
            return Err(incompatible_algorithm(alg.as_str(), r.key_spec));
        }
        dry_run(req.dry_run)?;
        if !current(&key)?.verify_mac(&req.message.0, &req.mac.0)? {
            return Err(KmsError::InvalidMac);
        }
        self.record_use(&key, TrackedOp::VerifyMac);
        Ok(VerifyMacResponse {
            key_id: r.arn(),
            mac_valid: true,
            mac_algorithm: alg,
        })
    }

    /// DeriveSharedSecret: raw ECDH with the peer's SPKI public key.
    pub fn derive_shared_secret(
        &self,
        caller: &Caller,
        req: DeriveSharedSecretRequest,
    ) -> Result<DeriveSharedSecretResponse, KmsError> {
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOrAlias,
            "DeriveSharedSecret",
            {
                let mut c = Context::new();
                if let Some(a) = req.key_agreement_algorithm {
                    c.insert("kms:KeyAgreementAlgorithm", a.as_str());
                }
                c
            },
        )?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::KeyAgreement, "DeriveSharedSecret")?;
        let alg = req
            .key_agreement_algorithm
            .ok_or_else(|| missing("keyAgreementAlgorithm"))?;
        if alg != KeyAgreementAlgorithm::Ecdh {
            return Err(incompatible_algorithm(alg.as_str(), r.key_spec));
        }
        no_recipient(&req.recipient)?;
        dry_run(req.dry_run)?;
        // A public key that is not an SPKI of a point on the key's curve:
        // AWS answers ValidationException with an empty message.
        let secret = current(&key)?
            .ecdh(&req.public_key.0)?
            .ok_or_else(|| KmsError::Validation(String::new()))?;
        self.record_use(&key, TrackedOp::DeriveSharedSecret);
        Ok(DeriveSharedSecretResponse {
            key_id: r.arn(),
            shared_secret: SecretBlob(secret),
            key_agreement_algorithm: alg,
            key_origin: r.origin,
        })
    }

    /// Encapsulate: a fresh 32-byte shared secret and its ML-KEM ciphertext
    /// under the public key of an ENCAPSULATE_DECAPSULATE key.
    pub fn encapsulate(
        &self,
        caller: &Caller,
        req: EncapsulateRequest,
    ) -> Result<EncapsulateResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOrAlias, "Encapsulate")?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::EncapsulateDecapsulate, "Encapsulate")?;
        let alg = req
            .encapsulation_algorithm
            .ok_or_else(|| missing("encapsulationAlgorithm"))?;
        dry_run(req.dry_run)?;
        let (ciphertext, secret) = current(&key)?.ml_kem()?.encapsulate()?;
        self.record_use(&key, TrackedOp::Encapsulate);
        Ok(EncapsulateResponse {
            key_id: r.arn(),
            shared_secret: SecretBlob(secret),
            shared_secret_ciphertext_blob: Blob(ciphertext),
            encapsulation_algorithm: alg,
        })
    }

    /// Decapsulate: InvalidCiphertextException only for a ciphertext whose
    /// length does not fit the key spec; any other ciphertext gives 32
    /// bytes (ML-KEM's implicit rejection for one not made under this key).
    pub fn decapsulate(
        &self,
        caller: &Caller,
        req: DecapsulateRequest,
    ) -> Result<DecapsulateResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOrAlias, "Decapsulate")?;
        let r = &key.record;
        self.require_usable(r)?;
        require_usage(r, KeyUsage::EncapsulateDecapsulate, "Decapsulate")?;
        let alg = req
            .encapsulation_algorithm
            .ok_or_else(|| missing("encapsulationAlgorithm"))?;
        dry_run(req.dry_run)?;
        let secret = current(&key)?
            .ml_kem()?
            .decapsulate(&req.shared_secret_ciphertext_blob.0)?;
        self.record_use(&key, TrackedOp::Decapsulate);
        Ok(DecapsulateResponse {
            key_id: r.arn(),
            shared_secret: SecretBlob(secret),
            encapsulation_algorithm: alg,
        })
    }

    /// GenerateDataKeyPair
    pub fn generate_data_key_pair(
        &self,
        caller: &Caller,
        req: GenerateDataKeyPairRequest,
    ) -> Result<GenerateDataKeyPairResponse, KmsError> {
        let p = self.make_data_key_pair(
            caller,
            req,
            "GenerateDataKeyPair",
            TrackedOp::GenerateDataKeyPair,
        )?;
        Ok(GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: Blob(p.blob),
            private_key_plaintext: SecretBlob(p.private),
            public_key: Blob(p.public),
            key_id: p.key_arn,
            key_pair_spec: p.spec,
            key_material_id: p.material,
        })
    }

    /// GenerateDataKeyPairWithoutPlaintext
    pub fn generate_data_key_pair_without_plaintext(
        &self,
        caller: &Caller,
        req: GenerateDataKeyPairWithoutPlaintextRequest,
    ) -> Result<GenerateDataKeyPairWithoutPlaintextResponse, KmsError> {
        let p = self.make_data_key_pair(
            caller,
            req,
            "GenerateDataKeyPairWithoutPlaintext",
            TrackedOp::GenerateDataKeyPairWithoutPlaintext,
        )?;
        Ok(GenerateDataKeyPairWithoutPlaintextResponse {
            private_key_ciphertext_blob: Blob(p.blob),
            public_key: Blob(p.public),
            key_id: p.key_arn,
            key_pair_spec: p.spec,
            key_material_id: p.material,
        })
    }

    fn make_data_key_pair(
        &self,
        caller: &Caller,
        req: GenerateDataKeyPairRequest,
        op: &str,
        tracked: TrackedOp,
    ) -> Result<DataKeyPair, KmsError> {
        let spec = req.key_pair_spec.ok_or_else(|| missing("keyPairSpec"))?;
        let mut cond = Context::new();
        cond.insert("kms:DataKeyPairSpec", spec.as_str());
        cond.insert("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT");
        if let Some(ec) = &req.encryption_context {
            crate::ops::encryption_context_keys(&mut cond, ec, "encryptionContext")?;
        }
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOrAlias, op, cond)?;
        self.require_usable(&key.record)?;
        require_symmetric_encryption_key(&key, op)?;
        if spec == DataKeyPairSpec::Sm2 {
            return Err(KmsError::UnsupportedOperation(
                "KeyPairSpec SM2 is available only in AWS China Regions; ferrokms does not support SM2.".into(),
            ));
        }
        no_recipient(&req.recipient)?;
        dry_run(req.dry_run)?;
        let (private, public) = keymat::generate_data_key_pair(spec.key_spec())?;
        let ctx = req.encryption_context.unwrap_or_default();
        let (blob, material) = self.seal_under(&key, &ctx, &private, xks_caller(caller, op))?;
        self.record_use(&key, tracked);
        Ok(DataKeyPair {
            blob,
            private,
            public,
            key_arn: key.record.arn(),
            spec,
            material: material.to_hex(),
        })
    }

    /// Encrypt under an RSA ENCRYPT_DECRYPT key: raw RSA-OAEP output.
    pub(crate) fn encrypt_asymmetric(
        &self,
        key: &Key,
        req: &EncryptRequest,
    ) -> Result<EncryptResponse, KmsError> {
        let r = &key.record;
        let alg = check_oaep(r, req.encryption_algorithm, req.encryption_context.as_ref())?;
        let max = keymat::oaep_max_plaintext(r.key_spec, alg);
        if req.plaintext.0.len() > max {
            return Err(oaep_plaintext_too_long(alg, r.key_spec, max));
        }
        dry_run(req.dry_run)?;
        let ct = current(key)?.oaep_encrypt(alg, &req.plaintext.0)?;
        Ok(EncryptResponse {
            ciphertext_blob: Blob(ct),
            key_id: r.arn(),
            encryption_algorithm: alg,
        })
    }

    /// RSA-OAEP encryption for ReEncrypt's destination: the algorithm must
    /// be given, no encryption context, the plaintext within the key's limit.
    pub(crate) fn oaep_seal(
        &self,
        key: &Key,
        alg: Option<EncryptionAlgorithm>,
        ctx: Option<&EncryptionContext>,
        plaintext: &[u8],
    ) -> Result<(EncryptionAlgorithm, Vec<u8>), KmsError> {
        let r = &key.record;
        let alg = check_oaep(r, alg, ctx)?;
        let max = keymat::oaep_max_plaintext(r.key_spec, alg);
        if plaintext.len() > max {
            return Err(oaep_plaintext_too_long(alg, r.key_spec, max));
        }
        Ok((alg, current(key)?.oaep_encrypt(alg, plaintext)?))
    }

    /// RSA-OAEP decryption for ReEncrypt's source.
    pub(crate) fn oaep_open(
        &self,
        key: &Key,
        alg: Option<EncryptionAlgorithm>,
        ctx: Option<&EncryptionContext>,
        ciphertext: &[u8],
    ) -> Result<(EncryptionAlgorithm, Zeroizing<Vec<u8>>), KmsError> {
        let alg = check_oaep(&key.record, alg, ctx)?;
        Ok((alg, current(key)?.oaep_decrypt(alg, ciphertext)?))
    }

    /// Decrypt with an RSA ENCRYPT_DECRYPT key named by KeyId.
    pub(crate) fn decrypt_asymmetric(
        &self,
        key: &Key,
        req: &DecryptRequest,
        ciphertext: &[u8],
    ) -> Result<DecryptResponse, KmsError> {
        let r = &key.record;
        let alg = check_oaep(r, req.encryption_algorithm, req.encryption_context.as_ref())?;
        dry_run(req.dry_run)?;
        let plaintext = current(key)?.oaep_decrypt(alg, ciphertext)?;
        Ok(DecryptResponse {
            key_id: r.arn(),
            plaintext: SecretBlob(plaintext),
            encryption_algorithm: alg,
            key_material_id: None,
        })
    }
}

struct DataKeyPair {
    blob: Vec<u8>,
    private: Zeroizing<Vec<u8>>,
    public: Vec<u8>,
    key_arn: String,
    spec: DataKeyPairSpec,
    material: String,
}

/// kms:SigningAlgorithm and kms:MessageType (RAW when omitted).
fn signing_context(alg: Option<SigningAlgorithm>, message_type: Option<MessageType>) -> Context {
    let mut c = Context::new();
    if let Some(a) = alg {
        c.insert("kms:SigningAlgorithm", a.as_str());
    }
    c.insert(
        "kms:MessageType",
        message_type.unwrap_or(MessageType::Raw).as_str(),
    );
    c
}

fn mac_context(alg: Option<MacAlgorithm>) -> Context {
    let mut c = Context::new();
    if let Some(a) = alg {
        c.insert("kms:MacAlgorithm", a.as_str());
    }
    c
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::KeySpec::*;
    use crate::model::SigningAlgorithm::*;
    use crate::ops::keys::check_spec_and_usage;

    #[test]
    fn spec_and_usage_table() {
        use KeyUsage::*;
        let ok = [
            (SymmetricDefault, EncryptDecrypt),
            (Rsa2048, EncryptDecrypt),
            (Rsa4096, SignVerify),
            (EccNistP256, SignVerify),
            (EccNistP521, KeyAgreement),
            (EccSecgP256k1, SignVerify),
            (EccNistEdwards25519, SignVerify),
            (MlDsa87, SignVerify),
            (MlKem512, EncapsulateDecapsulate),
            (MlKem768, EncapsulateDecapsulate),
            (MlKem1024, EncapsulateDecapsulate),
            (Hmac384, GenerateVerifyMac),
        ];
        for (s, u) in ok {
            assert_eq!(check_spec_and_usage(s, Some(u)).unwrap(), u, "{s} {u}");
        }
        let bad = [
            (SymmetricDefault, SignVerify),
            (Rsa2048, KeyAgreement),
            (Rsa3072, GenerateVerifyMac),
            (EccNistP384, EncryptDecrypt),
            (EccSecgP256k1, KeyAgreement),
            (EccNistEdwards25519, KeyAgreement),
            (MlDsa44, EncryptDecrypt),
            (Hmac256, SignVerify),
            (MlKem768, EncryptDecrypt),
            (MlKem512, KeyAgreement),
            (MlKem1024, SignVerify),
            (SymmetricDefault, EncapsulateDecapsulate),
            (Rsa2048, EncapsulateDecapsulate),
            (MlDsa65, EncapsulateDecapsulate),
        ];
        for (s, u) in bad {
            assert_eq!(
                check_spec_and_usage(s, Some(u)).unwrap_err(),
                KmsError::Validation(format!("KeyUsage {u} is not compatible with KeySpec {s}")),
            );
        }
        assert_eq!(
            check_spec_and_usage(SymmetricDefault, None).unwrap(),
            EncryptDecrypt
        );
        for s in [
            Rsa2048,
            EccNistP256,
            Hmac512,
            MlDsa65,
            EccNistEdwards25519,
            MlKem768,
        ] {
            assert!(matches!(
                check_spec_and_usage(s, None),
                Err(KmsError::Validation(_))
            ));
        }
        for u in [EncryptDecrypt, SignVerify, KeyAgreement] {
            assert!(matches!(
                check_spec_and_usage(Sm2, Some(u)),
                Err(KmsError::UnsupportedOperation(_))
            ));
        }
    }

    #[test]
    fn digest_lengths_follow_the_algorithm_hash() {
        let cases = [
            (Rsa2048, RsassaPssSha256, 32),
            (Rsa2048, RsassaPkcs1V15Sha384, 48),
            (Rsa2048, RsassaPssSha512, 64),
            (EccNistP256, EcdsaSha256, 32),
            (EccNistP384, EcdsaSha384, 48),
            (EccNistP521, EcdsaSha512, 64),
            (EccSecgP256k1, EcdsaSha256, 32),
        ];
        for (spec, alg, n) in cases {
            assert!(check_signing(spec, alg, Some(MessageType::Digest), &vec![0; n]).unwrap());
            assert!(!check_signing(spec, alg, Some(MessageType::Raw), &vec![0; n]).unwrap());
            assert!(!check_signing(spec, alg, None, &vec![0; 4096]).unwrap());
            for wrong in [n - 1, n + 1, 20] {
                assert_eq!(
                    check_signing(spec, alg, Some(MessageType::Digest), &vec![0; wrong])
                        .unwrap_err(),
                    KmsError::Validation(format!("Digest is invalid length for algorithm {alg}."))
                );
            }
        }
    }

    #[test]
    fn algorithms_outside_the_key_spec_are_invalid_key_usage() {
        for (spec, alg) in [
            (EccNistP256, EcdsaSha384),
            (EccNistP384, EcdsaSha256),
            (Rsa2048, EcdsaSha256),
            (EccSecgP256k1, RsassaPssSha256),
            (EccNistEdwards25519, EcdsaSha512),
            (MlDsa44, Ed25519Sha512),
            (EccNistP256, Sm2Dsa),
        ] {
            assert_eq!(
                check_signing(spec, alg, None, b"m").unwrap_err(),
                KmsError::InvalidKeyUsage(format!(
                    "Algorithm {alg} is incompatible with key spec {spec}."
                ))
            );
        }
    }

    #[test]
    fn message_type_rules_of_ed25519_and_ml_dsa() {
        let d = [0u8; 64];
        assert!(matches!(
            check_signing(
                EccNistEdwards25519,
                Ed25519Sha512,
                Some(MessageType::Digest),
                &d
            ),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            check_signing(EccNistEdwards25519, Ed25519PhSha512, None, b"m"),
            Err(KmsError::Validation(_))
        ));
        // Ed25519ph hashes the given digest once more: not a digest input
        // to the primitive.
        assert!(!check_signing(
            EccNistEdwards25519,
            Ed25519PhSha512,
            Some(MessageType::Digest),
            &d
        )
        .unwrap());
        assert!(matches!(
            check_signing(
                EccNistEdwards25519,
                Ed25519PhSha512,
                Some(MessageType::Digest),
                &d[1..]
            ),
            Err(KmsError::Validation(_))
        ));
        assert_eq!(
            check_signing(MlDsa65, MlDsaShake256, Some(MessageType::Digest), &d).unwrap_err(),
            KmsError::Validation(
                "Message type DIGEST is incompatible with key spec ML_DSA_65.".into()
            )
        );
        assert!(matches!(
            check_signing(MlDsa65, MlDsaShake256, Some(MessageType::ExternalMu), &d),
            Err(KmsError::UnsupportedOperation(_))
        ));
        assert!(matches!(
            check_signing(EccNistP256, EcdsaSha256, Some(MessageType::ExternalMu), &d),
            Err(KmsError::Validation(_))
        ));
        assert!(!check_signing(MlDsa44, MlDsaShake256, None, b"m").unwrap());
    }

    #[test]
    fn metadata_lists_only_the_family_of_the_usage() {
        use crate::model::*;
        let mk = |spec, usage| {
            let mut r: KeyRecord = serde_json::from_value(serde_json::json!({
                "addr": {"account": "111122223333", "region": "us-east-1",
                         "key_id": "1234abcd-12ab-34cd-56ef-1234567890ab"},
                "created_ms": 0, "description": "", "key_usage": "ENCRYPT_DECRYPT",
                "key_spec": "SYMMETRIC_DEFAULT", "origin": "AWS_KMS", "key_manager": "CUSTOMER",
                "state": "Enabled", "deletion_ms": null, "pending_window_days": null,
                "policy": "{}", "tags": [], "rotation": {"enabled": false, "period_days": 365},
                "multi_region": false, "materials": []
            }))
            .unwrap();
            r.key_spec = spec;
            r.key_usage = usage;
            serde_json::to_value(KeyMetadata::from(&r)).unwrap()
        };
        let lists = [
            "EncryptionAlgorithms",
            "SigningAlgorithms",
            "MacAlgorithms",
            "KeyAgreementAlgorithms",
            "EncapsulationAlgorithms",
        ];
        for (spec, usage, want) in [
            (
                SymmetricDefault,
                KeyUsage::EncryptDecrypt,
                "EncryptionAlgorithms",
            ),
            (Rsa2048, KeyUsage::EncryptDecrypt, "EncryptionAlgorithms"),
            (Rsa2048, KeyUsage::SignVerify, "SigningAlgorithms"),
            (
                EccNistP256,
                KeyUsage::KeyAgreement,
                "KeyAgreementAlgorithms",
            ),
            (Hmac224, KeyUsage::GenerateVerifyMac, "MacAlgorithms"),
            (
                MlKem768,
                KeyUsage::EncapsulateDecapsulate,
                "EncapsulationAlgorithms",
            ),
        ] {
            let m = mk(spec, usage);
            for l in lists {
                assert_eq!(m.get(l).is_some(), l == want, "{spec} {usage} {l}: {m}");
            }
        }
        assert_eq!(
            mk(Rsa2048, KeyUsage::EncryptDecrypt)["EncryptionAlgorithms"],
            serde_json::json!(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"])
        );
        assert_eq!(
            mk(MlKem1024, KeyUsage::EncapsulateDecapsulate)["EncapsulationAlgorithms"],
            serde_json::json!(["ML_KEM"])
        );
        assert_eq!(
            mk(Hmac224, KeyUsage::GenerateVerifyMac)["MacAlgorithms"],
            serde_json::json!(["HMAC_SHA_224"])
        );
        assert_eq!(
            mk(EccNistEdwards25519, KeyUsage::SignVerify)["SigningAlgorithms"],
            serde_json::json!(["ED25519_SHA_512", "ED25519_PH_SHA_512"])
        );
    }
}
