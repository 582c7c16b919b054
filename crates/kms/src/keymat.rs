//! Key material of every key spec: generation, the sealed-at-rest form, and
//! the primitive operations (sign, verify, MAC, RSA-OAEP, ECDH).
//!
//! What is sealed under the root key:
//!
//! | spec | stored bytes |
//! |---|---|
//! | SYMMETRIC_DEFAULT | the 32-byte AES-256 key (unchanged from earlier versions) |
//! | HMAC_224/256/384/512 | the raw HMAC key, 28/32/48/64 bytes |
//! | RSA, ECC, Ed25519, ML-DSA | the private key as PKCS#8 v1 DER |
//! | ML_KEM_512/768/1024 | the expanded FIPS 203 decapsulation key (see `mlkem`) |
//!
//! Which variant a stored blob is comes from the key record (spec and
//! usage), never from the bytes. Everything runs through aws-lc-rs except
//! Ed25519ph (ED25519_PH_SHA_512), which aws-lc-rs does not expose safely and
//! which uses `ed25519-dalek` on the seed. No secret is ever put into an
//! error message or a log line.

use aws_lc_rs::agreement;
use aws_lc_rs::digest::{self, Digest};
use aws_lc_rs::encoding::{AsBigEndian, AsDer};
use aws_lc_rs::hmac;
use aws_lc_rs::rsa::{
    self, OaepAlgorithm, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

use crate::crypto::{random_bytes, SymmetricMaterial, SYMMETRIC_KEY_LEN};
use crate::mlkem::MlKemKey;
use crate::model::{EncryptionAlgorithm, KeySpec, KeyUsage, SigningAlgorithm};
use crate::KmsError;

/// One version of a key's material, ready to use.
pub enum KeyMaterial {
    /// `SYMMETRIC_DEFAULT`: AES-256-GCM.
    Symmetric(SymmetricMaterial),
    /// `HMAC_*`.
    Hmac(Box<hmac::Key>),
    /// `RSA_*` with usage `SIGN_VERIFY`.
    RsaSign(signature::RsaKeyPair),
    /// `RSA_*` with usage `ENCRYPT_DECRYPT` (OAEP).
    RsaDecrypt {
        /// The private key.
        key: OaepPrivateDecryptingKey,
        /// The public key.
        public: OaepPublicEncryptingKey,
        /// The public key's DER `SubjectPublicKeyInfo`, as GetPublicKey returns it.
        spki: Vec<u8>,
    },
    /// `ECC_NIST_*` and `ECC_SECG_P256K1` with usage `SIGN_VERIFY`.
    Ecdsa(signature::EcdsaKeyPair),
    /// `ECC_*` with usage `KEY_AGREEMENT`.
    Ecdh(agreement::PrivateKey),
    /// `ECC_NIST_EDWARDS25519`.
    Ed25519(signature::Ed25519KeyPair),
    /// `ML_DSA_*`.
    MlDsa(signature::PqdsaKeyPair),
    /// `ML_KEM_*`.
    MlKem(Box<MlKemKey>),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            KeyMaterial::Symmetric(_) => "Symmetric",
            KeyMaterial::Hmac(_) => "Hmac",
            KeyMaterial::RsaSign(_) => "RsaSign",
            KeyMaterial::RsaDecrypt { .. } => "RsaDecrypt",
            KeyMaterial::Ecdsa(_) => "Ecdsa",
            KeyMaterial::Ecdh(_) => "Ecdh",
            KeyMaterial::Ed25519(_) => "Ed25519",
            KeyMaterial::MlDsa(_) => "MlDsa",
            KeyMaterial::MlKem(_) => "MlKem",
        };
        write!(f, "KeyMaterial::{kind}(..)")
    }
}

fn internal(what: &str) -> KmsError {
    KmsError::Internal(format!("{what} failed"))
}

pub(crate) fn rsa_size(spec: KeySpec) -> Option<rsa::KeySize> {
    match spec {
        KeySpec::Rsa2048 => Some(rsa::KeySize::Rsa2048),
        KeySpec::Rsa3072 => Some(rsa::KeySize::Rsa3072),
        KeySpec::Rsa4096 => Some(rsa::KeySize::Rsa4096),
        _ => None,
    }
}

pub(crate) fn ecdsa_signing(spec: KeySpec) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
        KeySpec::EccSecgP256k1 => Some(&signature::ECDSA_P256K1_SHA256_ASN1_SIGNING),
        _ => None,
    }
}

fn ecdsa_verification(spec: KeySpec) -> Option<&'static signature::EcdsaVerificationAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1),
        KeySpec::EccSecgP256k1 => Some(&signature::ECDSA_P256K1_SHA256_ASN1),
        _ => None,
    }
}

fn ecdh_algorithm(spec: KeySpec) -> Option<&'static agreement::Algorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&agreement::ECDH_P256),
        KeySpec::EccNistP384 => Some(&agreement::ECDH_P384),
        KeySpec::EccNistP521 => Some(&agreement::ECDH_P521),
        _ => None,
    }
}

fn mldsa_signing(spec: KeySpec) -> Option<&'static signature::PqdsaSigningAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Some(&signature::ML_DSA_44_SIGNING),
        KeySpec::MlDsa65 => Some(&signature::ML_DSA_65_SIGNING),
        KeySpec::MlDsa87 => Some(&signature::ML_DSA_87_SIGNING),
        _ => None,
    }
}

fn mldsa_verification(spec: KeySpec) -> Option<&'static signature::PqdsaVerificationAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Some(&signature::ML_DSA_44),
        KeySpec::MlDsa65 => Some(&signature::ML_DSA_65),
        KeySpec::MlDsa87 => Some(&signature::ML_DSA_87),
        _ => None,
    }
}

fn hmac_algorithm(spec: KeySpec) -> Option<(hmac::Algorithm, usize)> {
    match spec {
        KeySpec::Hmac224 => Some((hmac::HMAC_SHA224, 28)),
        KeySpec::Hmac256 => Some((hmac::HMAC_SHA256, 32)),
        KeySpec::Hmac384 => Some((hmac::HMAC_SHA384, 48)),
        KeySpec::Hmac512 => Some((hmac::HMAC_SHA512, 64)),
        _ => None,
    }
}

pub(crate) fn oaep(alg: EncryptionAlgorithm) -> Option<&'static OaepAlgorithm> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Some(&rsa::OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Some(&rsa::OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

fn oaep_hash_len(alg: EncryptionAlgorithm) -> usize {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => 20,
        _ => 32,
    }
}

/// The largest plaintext RSA-OAEP takes: key_bytes - 2*hash_bytes - 2.
pub fn oaep_max_plaintext(spec: KeySpec, alg: EncryptionAlgorithm) -> usize {
    let key_bytes: usize = match spec {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        _ => 0,
    };
    key_bytes.saturating_sub(2 * oaep_hash_len(alg) + 2)
}

fn unsupported_spec(spec: KeySpec, usage: KeyUsage) -> KmsError {
    KmsError::Internal(format!(
        "no key material type for key spec {spec} with key usage {usage}"
    ))
}

fn pkcs8(
    doc: Result<aws_lc_rs::encoding::Pkcs8V1Der<'static>, aws_lc_rs::error::Unspecified>,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let doc = doc.map_err(|_| internal("private key encoding"))?;
    Ok(Zeroizing::new(doc.as_ref().to_vec()))
}

/// A new private key of an asymmetric spec as PKCS#8 v1 DER. RSA-4096
/// takes a second or more: callers run on a blocking thread.
pub fn generate_private_key(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    if let Some(size) = rsa_size(spec) {
        let kp =
            signature::RsaKeyPair::generate(size).map_err(|_| internal("RSA key generation"))?;
        return pkcs8(kp.as_der());
    }
    if let Some(alg) = ecdsa_signing(spec) {
        let kp =
            signature::EcdsaKeyPair::generate(alg).map_err(|_| internal("EC key generation"))?;
        let doc = kp
            .to_pkcs8v1()
            .map_err(|_| internal("private key encoding"))?;
        return Ok(Zeroizing::new(doc.as_ref().to_vec()));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let kp = signature::Ed25519KeyPair::generate()
            .map_err(|_| internal("Ed25519 key generation"))?;
        return pkcs8(kp.as_der());
    }
    if let Some(alg) = mldsa_signing(spec) {
        let kp = signature::PqdsaKeyPair::generate(alg)
            .map_err(|_| internal("ML-DSA key generation"))?;
        return pkcs8(kp.private_key().as_der());
    }
    Err(KmsError::Internal(format!(
        "cannot generate a private key of spec {spec}"
    )))
}

/// The lengths of HMAC key material ImportKeyMaterial accepts: at least the
/// digest length, at most two hash blocks (AWS's rule for imported HMAC
/// keys: 28-64 bytes for HMAC_224, 32-64 for HMAC_256, 48-128 for
/// HMAC_384, 64-128 for HMAC_512).
pub fn hmac_import_len(spec: KeySpec) -> Option<std::ops::RangeInclusive<usize>> {
    match spec {
        KeySpec::Hmac224 => Some(28..=64),
        KeySpec::Hmac256 => Some(32..=64),
        KeySpec::Hmac384 => Some(48..=128),
        KeySpec::Hmac512 => Some(64..=128),
        _ => None,
    }
}

/// Parses key material given to ImportKeyMaterial for a key of this spec
/// and usage: 32 raw bytes for SYMMETRIC_DEFAULT, raw bytes of an allowed
/// length for HMAC, a PKCS#8 DER private key of exactly the key's spec
/// (RSA modulus size, EC curve) for asymmetric keys. Anything else is
/// IncorrectKeyMaterialException.
pub fn load_imported(
    spec: KeySpec,
    usage: KeyUsage,
    bytes: &[u8],
) -> Result<KeyMaterial, KmsError> {
    let incorrect = || {
        KmsError::IncorrectKeyMaterial(format!(
            "The key material is not valid for a KMS key with key spec {spec} and key usage {usage}."
        ))
    };
    if spec == KeySpec::SymmetricDefault && bytes.len() != SYMMETRIC_KEY_LEN {
        return Err(incorrect());
    }
    if let Some(range) = hmac_import_len(spec) {
        if !range.contains(&bytes.len()) {
            return Err(incorrect());
        }
    }
    let loaded = KeyMaterial::load(spec, usage, bytes).map_err(|_| incorrect())?;
    let bits = match &loaded {
        KeyMaterial::RsaDecrypt { key, .. } => Some(key.key_size_bits()),
        KeyMaterial::RsaSign(k) => Some(k.public_modulus_len() * 8),
        _ => None,
    };
    let want = match spec {
        KeySpec::Rsa2048 => Some(2048),
        KeySpec::Rsa3072 => Some(3072),
        KeySpec::Rsa4096 => Some(4096),
        _ => None,
    };
    if bits != want {
        return Err(incorrect());
    }
    Ok(loaded)
}

/// New material for a KMS key, in its stored (sealed-at-rest) form.
pub fn generate(spec: KeySpec, usage: KeyUsage) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    if spec == KeySpec::SymmetricDefault {
        return random_bytes(SYMMETRIC_KEY_LEN);
    }
    if let Some((_, len)) = hmac_algorithm(spec) {
        return random_bytes(len);
    }
    if spec.is_ml_kem() {
        return MlKemKey::generate(spec);
    }
    if spec.is_asymmetric() && spec != KeySpec::Sm2 {
        return generate_private_key(spec);
    }
    Err(unsupported_spec(spec, usage))
}

impl KeyMaterial {
    /// Parses stored material of a key with this spec and usage.
    pub fn load(spec: KeySpec, usage: KeyUsage, bytes: &[u8]) -> Result<KeyMaterial, KmsError> {
        let bad =
            || KmsError::Internal(format!("stored key material of a {spec} key is unreadable"));
        if spec == KeySpec::SymmetricDefault {
            return Ok(KeyMaterial::Symmetric(SymmetricMaterial::from_bytes(
                bytes,
            )?));
        }
        if let Some((alg, len)) = hmac_algorithm(spec) {
            // Generated keys are exactly `len` bytes; imported ones may be
            // longer (see `hmac_import_len`).
            if !hmac_import_len(spec).is_some_and(|r| r.contains(&bytes.len())) || bytes.len() < len
            {
                return Err(bad());
            }
            return Ok(KeyMaterial::Hmac(Box::new(hmac::Key::new(alg, bytes))));
        }
        if spec.is_ml_kem() {
            return Ok(KeyMaterial::MlKem(Box::new(
                MlKemKey::load(spec, bytes).ok_or_else(bad)?,
            )));
        }
        if rsa_size(spec).is_some() {
            return match usage {
                KeyUsage::EncryptDecrypt => {
                    let k = PrivateDecryptingKey::from_pkcs8(bytes).map_err(|_| bad())?;
                    let public_key = k.public_key();
                    let spki = public_key.as_der().map_err(|_| bad())?.as_ref().to_vec();
                    Ok(KeyMaterial::RsaDecrypt {
                        key: OaepPrivateDecryptingKey::new(k).map_err(|_| bad())?,
                        public: OaepPublicEncryptingKey::new(public_key).map_err(|_| bad())?,
                        spki,
                    })
                }
                _ => Ok(KeyMaterial::RsaSign(
                    signature::RsaKeyPair::from_pkcs8(bytes).map_err(|_| bad())?,
                )),
            };
        }
        if usage == KeyUsage::KeyAgreement {
            let alg = ecdh_algorithm(spec).ok_or_else(|| unsupported_spec(spec, usage))?;
            return Ok(KeyMaterial::Ecdh(
                agreement::PrivateKey::from_private_key_der(alg, bytes).map_err(|_| bad())?,
            ));
        }
        if let Some(alg) = ecdsa_signing(spec) {
            return Ok(KeyMaterial::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(alg, bytes).map_err(|_| bad())?,
            ));
        }
        if spec == KeySpec::EccNistEdwards25519 {
            return Ok(KeyMaterial::Ed25519(
                signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(bytes).map_err(|_| bad())?,
            ));
        }
        if let Some(alg) = mldsa_signing(spec) {
            return Ok(KeyMaterial::MlDsa(
                signature::PqdsaKeyPair::from_pkcs8(alg, bytes).map_err(|_| bad())?,
            ));
        }
        Err(unsupported_spec(spec, usage))
    }

    /// The symmetric material, if the key is symmetric.
    pub fn symmetric(&self) -> Option<&SymmetricMaterial> {
        match self {
            KeyMaterial::Symmetric(m) => Some(m),
            _ => None,
        }
    }

    /// The public key as DER SubjectPublicKeyInfo; `None` for symmetric and
    /// HMAC material.
    pub fn public_key_der(&self) -> Result<Option<Vec<u8>>, KmsError> {
        let e = |_| internal("public key encoding");
        let der = match self {
            KeyMaterial::Symmetric(_) | KeyMaterial::Hmac(_) => return Ok(None),
            KeyMaterial::RsaSign(k) => k.public_key().as_der().map_err(e)?.as_ref().to_vec(),
            KeyMaterial::RsaDecrypt { spki, .. } => spki.clone(),
            KeyMaterial::Ecdsa(k) => k.public_key().as_der().map_err(e)?.as_ref().to_vec(),
            KeyMaterial::Ecdh(k) => k
                .compute_public_key()
                .map_err(e)?
                .as_der()
                .map_err(e)?
                .as_ref()
                .to_vec(),
            KeyMaterial::Ed25519(k) => k.public_key().as_der().map_err(e)?.as_ref().to_vec(),
            KeyMaterial::MlDsa(k) => k.public_key().as_der().map_err(e)?.as_ref().to_vec(),
            KeyMaterial::MlKem(k) => k.spki().to_vec(),
        };
        Ok(Some(der))
    }

    /// Signs `message` (already checked against the algorithm and message
    /// type by the caller: a DIGEST has the algorithm's digest length).
    pub fn sign(
        &self,
        spec: KeySpec,
        alg: SigningAlgorithm,
        digest_input: bool,
        message: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        match self {
            KeyMaterial::RsaSign(k) => {
                let enc = rsa_encoding(alg).ok_or_else(|| internal("RSA signing"))?;
                let mut sig = vec![0u8; k.public_modulus_len()];
                if digest_input {
                    let d = import_digest(alg, message)?;
                    k.sign_digest(enc, &d, &mut sig)
                } else {
                    k.sign(
                        enc,
                        &aws_lc_rs::rand::SystemRandom::new(),
                        message,
                        &mut sig,
                    )
                }
                .map_err(|_| internal("RSA signing"))?;
                Ok(sig)
            }
            KeyMaterial::Ecdsa(k) => {
                let sig = if digest_input {
                    let d = import_digest(alg, message)?;
                    k.sign_digest(&d)
                } else {
                    k.sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                }
                .map_err(|_| internal("ECDSA signing"))?;
                Ok(sig.as_ref().to_vec())
            }
            KeyMaterial::Ed25519(k) => match alg {
                SigningAlgorithm::Ed25519Sha512 => Ok(k.sign(message).as_ref().to_vec()),
                _ => {
                    let sk = dalek_signing_key(k)?;
                    let sig = sk
                        .sign_prehashed(ph_digest(message), None)
                        .map_err(|_| internal("Ed25519ph signing"))?;
                    Ok(sig.to_bytes().to_vec())
                }
            },
            KeyMaterial::MlDsa(k) => {
                let mut sig = vec![0u8; k.algorithm().signature_len()];
                let n = k
                    .sign(message, &mut sig)
                    .map_err(|_| internal("ML-DSA signing"))?;
                sig.truncate(n);
                Ok(sig)
            }
            _ => Err(KmsError::Internal(format!("a {spec} key cannot sign"))),
        }
    }

    /// Whether `sig` is a valid signature of `message` under this key.
    pub fn verify(
        &self,
        spec: KeySpec,
        alg: SigningAlgorithm,
        digest_input: bool,
        message: &[u8],
        sig: &[u8],
    ) -> Result<bool, KmsError> {
        let ok = match self {
            KeyMaterial::RsaSign(k) => {
                let params = rsa_params(alg).ok_or_else(|| internal("RSA verification"))?;
                let pk = UnparsedPublicKey::new(params, k.public_key().as_ref());
                if digest_input {
                    pk.verify_digest(&import_digest(alg, message)?, sig).is_ok()
                } else {
                    pk.verify(message, sig).is_ok()
                }
            }
            KeyMaterial::Ecdsa(k) => {
                let params =
                    ecdsa_verification(spec).ok_or_else(|| internal("ECDSA verification"))?;
                let pk = UnparsedPublicKey::new(params, k.public_key().as_ref());
                if digest_input {
                    pk.verify_digest(&import_digest(alg, message)?, sig).is_ok()
                } else {
                    pk.verify(message, sig).is_ok()
                }
            }
            KeyMaterial::Ed25519(k) => match alg {
                SigningAlgorithm::Ed25519Sha512 => {
                    UnparsedPublicKey::new(&signature::ED25519, k.public_key().as_ref())
                        .verify(message, sig)
                        .is_ok()
                }
                _ => {
                    let vk = dalek_signing_key(k)?.verifying_key();
                    match ed25519_dalek::Signature::from_slice(sig) {
                        Ok(s) => vk
                            .verify_prehashed_strict(ph_digest(message), None, &s)
                            .is_ok(),
                        Err(_) => false,
                    }
                }
            },
            KeyMaterial::MlDsa(k) => {
                let params =
                    mldsa_verification(spec).ok_or_else(|| internal("ML-DSA verification"))?;
                UnparsedPublicKey::new(params, k.public_key().as_ref())
                    .verify(message, sig)
                    .is_ok()
            }
            _ => return Err(KmsError::Internal(format!("a {spec} key cannot verify"))),
        };
        Ok(ok)
    }

    /// The HMAC of `message` (GenerateMac); an error for keys that are not HMAC keys.
    pub fn mac(&self, message: &[u8]) -> Result<Vec<u8>, KmsError> {
        match self {
            KeyMaterial::Hmac(k) => Ok(hmac::sign(k, message).as_ref().to_vec()),
            _ => Err(internal("MAC")),
        }
    }

    /// Constant-time MAC check.
    pub fn verify_mac(&self, message: &[u8], mac: &[u8]) -> Result<bool, KmsError> {
        match self {
            KeyMaterial::Hmac(k) => Ok(hmac::verify(k, message, mac).is_ok()),
            _ => Err(internal("MAC verification")),
        }
    }

    /// RSA-OAEP encryption with the public half: the raw OAEP output.
    pub fn oaep_encrypt(
        &self,
        alg: EncryptionAlgorithm,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, KmsError> {
        let KeyMaterial::RsaDecrypt { public: pk, .. } = self else {
            return Err(internal("RSA encryption"));
        };
        let oaep_alg = oaep(alg).ok_or_else(|| internal("RSA encryption"))?;
        let mut out = vec![0u8; pk.ciphertext_size()];
        let n = pk
            .encrypt(oaep_alg, plaintext, &mut out, None)
            .map_err(|_| internal("RSA encryption"))?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// RSA-OAEP decryption; any failure is an invalid ciphertext.
    pub fn oaep_decrypt(
        &self,
        alg: EncryptionAlgorithm,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let KeyMaterial::RsaDecrypt { key: k, .. } = self else {
            return Err(internal("RSA decryption"));
        };
        let oaep_alg = oaep(alg).ok_or(KmsError::InvalidCiphertext)?;
        if ciphertext.len() != k.key_size_bytes() {
            return Err(KmsError::InvalidCiphertext);
        }
        let mut out = Zeroizing::new(vec![0u8; k.min_output_size()]);
        let n = k
            .decrypt(oaep_alg, ciphertext, out.as_mut_slice(), None)
            .map_err(|_| KmsError::InvalidCiphertext)?
            .len();
        out.truncate(n);
        Ok(out)
    }

    /// The ML-KEM key pair of an ENCAPSULATE_DECAPSULATE key.
    pub fn ml_kem(&self) -> Result<&MlKemKey, KmsError> {
        match self {
            KeyMaterial::MlKem(k) => Ok(k),
            _ => Err(internal("key encapsulation")),
        }
    }

    /// ECDH with a peer's DER SubjectPublicKeyInfo on the same curve: the
    /// raw shared secret (the x coordinate). `None` if the peer key is not
    /// a valid SPKI point on this key's curve.
    pub fn ecdh(&self, peer_spki: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, KmsError> {
        let KeyMaterial::Ecdh(k) = self else {
            return Err(internal("key agreement"));
        };
        let peer = agreement::UnparsedPublicKey::new(k.algorithm(), peer_spki);
        let Ok(parsed) = agreement::ParsedPublicKey::try_from(&peer) else {
            return Ok(None);
        };
        if parsed.format() != agreement::ParsedPublicKeyFormat::X509 {
            return Ok(None);
        }
        let out = agreement::agree(k, parsed, (), |s| Ok(Zeroizing::new(s.to_vec())));
        Ok(out.ok())
    }
}

fn rsa_encoding(alg: SigningAlgorithm) -> Option<&'static signature::RsaSignatureEncoding> {
    use SigningAlgorithm::*;
    match alg {
        RsassaPssSha256 => Some(&signature::RSA_PSS_SHA256),
        RsassaPssSha384 => Some(&signature::RSA_PSS_SHA384),
        RsassaPssSha512 => Some(&signature::RSA_PSS_SHA512),
        RsassaPkcs1V15Sha256 => Some(&signature::RSA_PKCS1_SHA256),
        RsassaPkcs1V15Sha384 => Some(&signature::RSA_PKCS1_SHA384),
        RsassaPkcs1V15Sha512 => Some(&signature::RSA_PKCS1_SHA512),
        _ => None,
    }
}

fn rsa_params(alg: SigningAlgorithm) -> Option<&'static signature::RsaParameters> {
    use SigningAlgorithm::*;
    match alg {
        RsassaPssSha256 => Some(&signature::RSA_PSS_2048_8192_SHA256),
        RsassaPssSha384 => Some(&signature::RSA_PSS_2048_8192_SHA384),
        RsassaPssSha512 => Some(&signature::RSA_PSS_2048_8192_SHA512),
        RsassaPkcs1V15Sha256 => Some(&signature::RSA_PKCS1_2048_8192_SHA256),
        RsassaPkcs1V15Sha384 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
        RsassaPkcs1V15Sha512 => Some(&signature::RSA_PKCS1_2048_8192_SHA512),
        _ => None,
    }
}

fn digest_algorithm(alg: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    match alg.digest_len()? {
        32 => Some(&digest::SHA256),
        48 => Some(&digest::SHA384),
        64 => Some(&digest::SHA512),
        _ => None,
    }
}

fn import_digest(alg: SigningAlgorithm, bytes: &[u8]) -> Result<Digest, KmsError> {
    let d = digest_algorithm(alg).ok_or_else(|| internal("digest import"))?;
    Digest::import_less_safe(bytes, d).map_err(|_| internal("digest import"))
}

/// Ed25519ph over `message`: PH(M) = SHA-512(M) (RFC 8032 §5.1, FIPS
/// 186-5 §7.8.1 step 1). For ED25519_PH_SHA_512 with MessageType DIGEST the
/// message is the caller's 64-byte SHA-512 digest, which AWS documents is
/// hashed once more.
fn ph_digest(message: &[u8]) -> sha2::Sha512 {
    use sha2::Digest as _;
    let mut h = sha2::Sha512::new();
    h.update(message);
    h
}

fn dalek_signing_key(k: &signature::Ed25519KeyPair) -> Result<ed25519_dalek::SigningKey, KmsError> {
    let seed = k
        .seed()
        .and_then(|s| s.as_be_bytes())
        .map_err(|_| internal("Ed25519 key access"))?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    if seed.as_ref().len() != 32 {
        return Err(internal("Ed25519 key access"));
    }
    bytes.copy_from_slice(seed.as_ref());
    Ok(ed25519_dalek::SigningKey::from_bytes(&bytes))
}

/// A fresh data key pair: (private key PKCS#8 DER, public key SPKI DER);
/// an ML-KEM private key is in seed form (see `mlkem`).
pub fn generate_data_key_pair(spec: KeySpec) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), KmsError> {
    if spec.is_ml_kem() {
        return crate::mlkem::generate_data_key_pair(spec);
    }
    let private = generate_private_key(spec)?;
    let usage = KeyUsage::SignVerify;
    let public = KeyMaterial::load(spec, usage, &private)?
        .public_key_der()?
        .ok_or_else(|| internal("public key encoding"))?;
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::model::KeySpec::*;

    fn key(spec: KeySpec, usage: KeyUsage) -> KeyMaterial {
        let stored = generate(spec, usage).unwrap();
        KeyMaterial::load(spec, usage, &stored).unwrap()
    }

    fn digest_of(alg: SigningAlgorithm, msg: &[u8]) -> Vec<u8> {
        let d = digest_algorithm(alg).unwrap();
        digest::digest(d, msg).as_ref().to_vec()
    }

    const MSG: &[u8] = b"a message to sign";

    #[test]
    fn every_signing_spec_signs_and_verifies_raw_and_digest_interchangeably() {
        for spec in [
            Rsa2048,
            EccNistP256,
            EccNistP384,
            EccNistP521,
            EccSecgP256k1,
        ] {
            let k = key(spec, KeyUsage::SignVerify);
            for alg in spec.signing_algorithms() {
                let d = digest_of(alg, MSG);
                let raw = k.sign(spec, alg, false, MSG).unwrap();
                let dig = k.sign(spec, alg, true, &d).unwrap();
                for sig in [&raw, &dig] {
                    assert!(
                        k.verify(spec, alg, false, MSG, sig).unwrap(),
                        "{spec} {alg}"
                    );
                    assert!(k.verify(spec, alg, true, &d, sig).unwrap(), "{spec} {alg}");
                    assert!(!k.verify(spec, alg, false, b"other", sig).unwrap());
                }
                assert!(!k.verify(spec, alg, false, MSG, &raw[1..]).unwrap());
                assert!(!k.verify(spec, alg, false, MSG, &[]).unwrap());
            }
        }
    }

    #[test]
    fn rsa_pkcs1_signatures_are_deterministic_and_modulus_sized() {
        let k = key(Rsa3072, KeyUsage::SignVerify);
        let alg = SigningAlgorithm::RsassaPkcs1V15Sha512;
        let a = k.sign(Rsa3072, alg, false, MSG).unwrap();
        let b = k.sign(Rsa3072, alg, true, &digest_of(alg, MSG)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 384);
    }

    #[test]
    fn ed25519_and_ed25519ph_and_ml_dsa_round_trip() {
        let k = key(EccNistEdwards25519, KeyUsage::SignVerify);
        let s = k
            .sign(
                EccNistEdwards25519,
                SigningAlgorithm::Ed25519Sha512,
                false,
                MSG,
            )
            .unwrap();
        assert_eq!(s.len(), 64);
        assert!(k
            .verify(
                EccNistEdwards25519,
                SigningAlgorithm::Ed25519Sha512,
                false,
                MSG,
                &s
            )
            .unwrap());
        let d = digest_of(SigningAlgorithm::Ed25519PhSha512, MSG);
        let ph = k
            .sign(
                EccNistEdwards25519,
                SigningAlgorithm::Ed25519PhSha512,
                false,
                &d,
            )
            .unwrap();
        assert_ne!(ph, s);
        assert!(k
            .verify(
                EccNistEdwards25519,
                SigningAlgorithm::Ed25519PhSha512,
                false,
                &d,
                &ph
            )
            .unwrap());
        // Ed25519ph and Ed25519 signatures are not interchangeable.
        assert!(!k
            .verify(
                EccNistEdwards25519,
                SigningAlgorithm::Ed25519Sha512,
                false,
                &d,
                &ph
            )
            .unwrap());
        assert!(!k
            .verify(
                EccNistEdwards25519,
                SigningAlgorithm::Ed25519PhSha512,
                false,
                &d,
                &ph[..63]
            )
            .unwrap());
        for (spec, len) in [(MlDsa44, 2420), (MlDsa65, 3309), (MlDsa87, 4627)] {
            let k = key(spec, KeyUsage::SignVerify);
            let s = k
                .sign(spec, SigningAlgorithm::MlDsaShake256, false, MSG)
                .unwrap();
            assert_eq!(s.len(), len);
            assert!(k
                .verify(spec, SigningAlgorithm::MlDsaShake256, false, MSG, &s)
                .unwrap());
            assert!(!k
                .verify(spec, SigningAlgorithm::MlDsaShake256, false, b"x", &s)
                .unwrap());
        }
    }

    #[test]
    fn oaep_limits_match_the_aws_table_and_round_trip_at_the_limit() {
        use EncryptionAlgorithm::*;
        let table = [
            (Rsa2048, RsaesOaepSha1, 214),
            (Rsa2048, RsaesOaepSha256, 190),
            (Rsa3072, RsaesOaepSha1, 342),
            (Rsa3072, RsaesOaepSha256, 318),
            (Rsa4096, RsaesOaepSha1, 470),
            (Rsa4096, RsaesOaepSha256, 446),
        ];
        for (spec, alg, max) in table {
            assert_eq!(oaep_max_plaintext(spec, alg), max);
        }
        let k = key(Rsa2048, KeyUsage::EncryptDecrypt);
        for alg in [RsaesOaepSha1, RsaesOaepSha256] {
            let pt = vec![7u8; oaep_max_plaintext(Rsa2048, alg)];
            let ct = k.oaep_encrypt(alg, &pt).unwrap();
            assert_eq!(ct.len(), 256);
            assert_eq!(k.oaep_decrypt(alg, &ct).unwrap().as_slice(), &pt[..]);
            let other = if alg == RsaesOaepSha1 {
                RsaesOaepSha256
            } else {
                RsaesOaepSha1
            };
            assert_eq!(
                k.oaep_decrypt(other, &ct).unwrap_err(),
                KmsError::InvalidCiphertext
            );
            assert_eq!(
                k.oaep_decrypt(alg, &ct[1..]).unwrap_err(),
                KmsError::InvalidCiphertext
            );
            assert!(k.oaep_encrypt(alg, &vec![0u8; pt.len() + 1]).is_err());
        }
    }

    #[test]
    fn hmac_keys_have_the_spec_length_and_verify_in_constant_time() {
        for (spec, len) in [(Hmac224, 28), (Hmac256, 32), (Hmac384, 48), (Hmac512, 64)] {
            let stored = generate(spec, KeyUsage::GenerateVerifyMac).unwrap();
            assert_eq!(stored.len(), len);
            let k = KeyMaterial::load(spec, KeyUsage::GenerateVerifyMac, &stored).unwrap();
            let mac = k.mac(MSG).unwrap();
            assert_eq!(mac.len(), len);
            assert!(k.verify_mac(MSG, &mac).unwrap());
            assert!(!k.verify_mac(b"x", &mac).unwrap());
            assert!(!k.verify_mac(MSG, &mac[1..]).unwrap());
            assert!(k.public_key_der().unwrap().is_none());
            assert!(KeyMaterial::load(spec, KeyUsage::GenerateVerifyMac, &stored[1..]).is_err());
        }
    }

    #[test]
    fn ecdh_agrees_with_an_independent_peer_and_rejects_bad_keys() {
        for (spec, alg) in [
            (EccNistP256, &agreement::ECDH_P256),
            (EccNistP384, &agreement::ECDH_P384),
            (EccNistP521, &agreement::ECDH_P521),
        ] {
            let k = key(spec, KeyUsage::KeyAgreement);
            let peer = agreement::PrivateKey::generate(alg).unwrap();
            let peer_spki = peer.compute_public_key().unwrap().as_der().unwrap();
            let ours = k.ecdh(peer_spki.as_ref()).unwrap().unwrap();
            let our_spki = k.public_key_der().unwrap().unwrap();
            let theirs = agreement::agree(
                &peer,
                agreement::UnparsedPublicKey::new(alg, &our_spki),
                (),
                |s| Ok(s.to_vec()),
            )
            .unwrap();
            assert_eq!(ours.as_slice(), &theirs[..]);
            // A raw point (not SPKI), garbage, and another curve are refused.
            let point = peer.compute_public_key().unwrap();
            assert!(k.ecdh(point.as_ref()).unwrap().is_none());
            assert!(k.ecdh(b"garbage").unwrap().is_none());
            assert!(k.ecdh(&[]).unwrap().is_none());
        }
        let k = key(EccNistP256, KeyUsage::KeyAgreement);
        let other = agreement::PrivateKey::generate(&agreement::ECDH_P384).unwrap();
        let spki = other.compute_public_key().unwrap().as_der().unwrap();
        assert!(k.ecdh(spki.as_ref()).unwrap().is_none());
    }

    #[test]
    fn data_key_pairs_reload_and_public_keys_match() {
        for spec in [
            Rsa2048,
            EccNistP256,
            EccNistP384,
            EccNistP521,
            EccSecgP256k1,
            EccNistEdwards25519,
        ] {
            let (private, public) = generate_data_key_pair(spec).unwrap();
            let again = KeyMaterial::load(spec, KeyUsage::SignVerify, &private).unwrap();
            assert_eq!(again.public_key_der().unwrap().unwrap(), public);
            // DER SPKI: a SEQUENCE.
            assert_eq!(public[0], 0x30);
            assert_eq!(private[0], 0x30);
        }
    }

    #[test]
    fn material_of_one_spec_does_not_load_as_another() {
        let p256 = generate(EccNistP256, KeyUsage::SignVerify).unwrap();
        assert!(KeyMaterial::load(EccNistP384, KeyUsage::SignVerify, &p256).is_err());
        assert!(KeyMaterial::load(Rsa2048, KeyUsage::SignVerify, &p256).is_err());
        assert!(KeyMaterial::load(EccNistEdwards25519, KeyUsage::SignVerify, b"junk").is_err());
        let e = KeyMaterial::load(Rsa2048, KeyUsage::SignVerify, b"junk").unwrap_err();
        assert!(!format!("{e}").contains("junk"));
        assert!(generate(Sm2, KeyUsage::SignVerify).is_err());
        let debug = format!("{:?}", key(EccNistP256, KeyUsage::SignVerify));
        assert_eq!(debug, "KeyMaterial::Ecdsa(..)");
    }
}
