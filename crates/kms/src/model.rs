//! The key model: specs, usages, states, and the record persisted per key.
//!
//! One file of about 1,000 lines of code: the persisted key record and every
//! type it is made of (the service model's enums, material ids, imported
//! materials and their states, rotation settings) are one stored document,
//! read and written by serde together; the enums are short and many.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::KeyAddr;
use ferrokms_types::Region;

macro_rules! aws_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            // Each variant is the API value in its `rename`, which the AWS
            // KMS API Reference documents; a line here would repeat it.
            $(#[allow(missing_docs)] #[serde(rename = $text)] $variant),+
        }
        impl $name {
            /// Every value, in the service model's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value as the API writes it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// The value whose API text is `s`, if any.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

aws_enum!(
    /// `KeySpec` (and the deprecated `CustomerMasterKeySpec`).
    KeySpec {
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256",
        EccNistP384 = "ECC_NIST_P384",
        EccNistP521 = "ECC_NIST_P521",
        EccSecgP256k1 = "ECC_SECG_P256K1",
        EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
        Hmac224 = "HMAC_224",
        Hmac256 = "HMAC_256",
        Hmac384 = "HMAC_384",
        Hmac512 = "HMAC_512",
        MlDsa44 = "ML_DSA_44",
        MlDsa65 = "ML_DSA_65",
        MlDsa87 = "ML_DSA_87",
        Sm2 = "SM2",
        MlKem512 = "ML_KEM_512",
        MlKem768 = "ML_KEM_768",
        MlKem1024 = "ML_KEM_1024",
    }
);

aws_enum!(
    /// `KeyUsageType`: which operations a key is for.
    KeyUsage {
        EncryptDecrypt = "ENCRYPT_DECRYPT",
        SignVerify = "SIGN_VERIFY",
        GenerateVerifyMac = "GENERATE_VERIFY_MAC",
        KeyAgreement = "KEY_AGREEMENT",
        EncapsulateDecapsulate = "ENCAPSULATE_DECAPSULATE",
    }
);

aws_enum!(
    /// `KeyState`: where a key is in its life (enabled, disabled, pending deletion...).
    KeyState {
        Creating = "Creating",
        Enabled = "Enabled",
        Disabled = "Disabled",
        PendingDeletion = "PendingDeletion",
        PendingImport = "PendingImport",
        PendingReplicaDeletion = "PendingReplicaDeletion",
        Unavailable = "Unavailable",
        Updating = "Updating",
    }
);

aws_enum!(
    /// `OriginType`: where the key material came from (KMS, imported).
    Origin {
        AwsKms = "AWS_KMS",
        External = "EXTERNAL",
        AwsCloudhsm = "AWS_CLOUDHSM",
        ExternalKeyStore = "EXTERNAL_KEY_STORE",
    }
);

aws_enum!(
    /// `KeyManagerType`: whether the customer or AWS manages the key.
    KeyManager {
        Aws = "AWS",
        Customer = "CUSTOMER",
    }
);

aws_enum!(
    /// `EncryptionAlgorithmSpec`.
    EncryptionAlgorithm {
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
        Sm2Pke = "SM2PKE",
    }
);

aws_enum!(
    /// `SigningAlgorithmSpec`.
    SigningAlgorithm {
        RsassaPssSha256 = "RSASSA_PSS_SHA_256",
        RsassaPssSha384 = "RSASSA_PSS_SHA_384",
        RsassaPssSha512 = "RSASSA_PSS_SHA_512",
        RsassaPkcs1V15Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
        RsassaPkcs1V15Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
        RsassaPkcs1V15Sha512 = "RSASSA_PKCS1_V1_5_SHA_512",
        EcdsaSha256 = "ECDSA_SHA_256",
        EcdsaSha384 = "ECDSA_SHA_384",
        EcdsaSha512 = "ECDSA_SHA_512",
        Sm2Dsa = "SM2DSA",
        MlDsaShake256 = "ML_DSA_SHAKE_256",
        Ed25519Sha512 = "ED25519_SHA_512",
        Ed25519PhSha512 = "ED25519_PH_SHA_512",
    }
);

aws_enum!(
    /// `MacAlgorithmSpec`.
    MacAlgorithm {
        HmacSha224 = "HMAC_SHA_224",
        HmacSha256 = "HMAC_SHA_256",
        HmacSha384 = "HMAC_SHA_384",
        HmacSha512 = "HMAC_SHA_512",
    }
);

aws_enum!(
    /// `KeyAgreementAlgorithmSpec`.
    KeyAgreementAlgorithm {
        Ecdh = "ECDH",
    }
);

aws_enum!(
    /// `EncapsulationAlgorithmSpec`: the one algorithm of ML-KEM keys.
    EncapsulationAlgorithm {
        MlKem = "ML_KEM",
    }
);

aws_enum!(
    /// `MessageType` of Sign and Verify: whether the message is raw or already a digest.
    MessageType {
        Raw = "RAW",
        Digest = "DIGEST",
        ExternalMu = "EXTERNAL_MU",
    }
);

aws_enum!(
    /// `DataKeyPairSpec` of GenerateDataKeyPair.
    DataKeyPairSpec {
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256",
        EccNistP384 = "ECC_NIST_P384",
        EccNistP521 = "ECC_NIST_P521",
        EccSecgP256k1 = "ECC_SECG_P256K1",
        Sm2 = "SM2",
        EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
        MlKem512 = "ML_KEM_512",
        MlKem768 = "ML_KEM_768",
        MlKem1024 = "ML_KEM_1024",
    }
);

impl DataKeyPairSpec {
    /// The key spec of the same name (data key pairs and KMS keys share names).
    pub fn key_spec(self) -> KeySpec {
        match self {
            DataKeyPairSpec::Rsa2048 => KeySpec::Rsa2048,
            DataKeyPairSpec::Rsa3072 => KeySpec::Rsa3072,
            DataKeyPairSpec::Rsa4096 => KeySpec::Rsa4096,
            DataKeyPairSpec::EccNistP256 => KeySpec::EccNistP256,
            DataKeyPairSpec::EccNistP384 => KeySpec::EccNistP384,
            DataKeyPairSpec::EccNistP521 => KeySpec::EccNistP521,
            DataKeyPairSpec::EccSecgP256k1 => KeySpec::EccSecgP256k1,
            DataKeyPairSpec::Sm2 => KeySpec::Sm2,
            DataKeyPairSpec::EccNistEdwards25519 => KeySpec::EccNistEdwards25519,
            DataKeyPairSpec::MlKem512 => KeySpec::MlKem512,
            DataKeyPairSpec::MlKem768 => KeySpec::MlKem768,
            DataKeyPairSpec::MlKem1024 => KeySpec::MlKem1024,
        }
    }
}

impl KeySpec {
    /// The key usages CreateKey accepts for this spec (the KeySpec/KeyUsage table of docs/keys.md; SM2
    /// is refused before this is consulted).
    pub fn allowed_usages(self) -> &'static [KeyUsage] {
        use KeySpec::*;
        match self {
            SymmetricDefault => &[KeyUsage::EncryptDecrypt],
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[KeyUsage::GenerateVerifyMac],
            Rsa2048 | Rsa3072 | Rsa4096 => &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify],
            EccNistP256 | EccNistP384 | EccNistP521 => {
                &[KeyUsage::SignVerify, KeyUsage::KeyAgreement]
            }
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => {
                &[KeyUsage::SignVerify]
            }
            MlKem512 | MlKem768 | MlKem1024 => &[KeyUsage::EncapsulateDecapsulate],
            Sm2 => &[
                KeyUsage::EncryptDecrypt,
                KeyUsage::SignVerify,
                KeyUsage::KeyAgreement,
            ],
        }
    }

    /// Whether the spec is one of the RSA specs.
    pub fn is_rsa(self) -> bool {
        matches!(self, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
    }

    /// Whether the spec is one of the HMAC specs.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        )
    }

    /// Whether the spec is one of the ML-KEM specs.
    pub fn is_ml_kem(self) -> bool {
        matches!(
            self,
            KeySpec::MlKem512 | KeySpec::MlKem768 | KeySpec::MlKem1024
        )
    }

    /// Asymmetric: has a public key (GetPublicKey works).
    pub fn is_asymmetric(self) -> bool {
        !(self == KeySpec::SymmetricDefault || self.is_hmac())
    }

    /// Signing algorithms of a SIGN_VERIFY key of this spec.
    pub fn signing_algorithms(self) -> Vec<SigningAlgorithm> {
        use SigningAlgorithm::*;
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => vec![
                RsassaPkcs1V15Sha256,
                RsassaPkcs1V15Sha384,
                RsassaPkcs1V15Sha512,
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => vec![EcdsaSha256],
            KeySpec::EccNistP384 => vec![EcdsaSha384],
            KeySpec::EccNistP521 => vec![EcdsaSha512],
            KeySpec::EccNistEdwards25519 => vec![Ed25519Sha512, Ed25519PhSha512],
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => vec![MlDsaShake256],
            KeySpec::Sm2 => vec![Sm2Dsa],
            _ => vec![],
        }
    }

    /// The one MAC algorithm of an HMAC key spec.
    pub fn mac_algorithm(self) -> Option<MacAlgorithm> {
        match self {
            KeySpec::Hmac224 => Some(MacAlgorithm::HmacSha224),
            KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
            KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
            KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
            _ => None,
        }
    }
}

impl SigningAlgorithm {
    /// Length of the digest a DIGEST message must have, where the algorithm
    /// has one.
    pub fn digest_len(self) -> Option<usize> {
        use SigningAlgorithm::*;
        match self {
            RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 | Sm2Dsa => Some(32),
            RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Some(48),
            RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 | Ed25519PhSha512 => Some(64),
            Ed25519Sha512 | MlDsaShake256 => None,
        }
    }
}

aws_enum!(
    /// How a rotation was started (`RotationType`).
    RotationType {
        Automatic = "AUTOMATIC",
        OnDemand = "ON_DEMAND",
    }
);

aws_enum!(
    /// `IncludeKeyMaterial` of ListKeyRotations.
    IncludeKeyMaterial {
        AllKeyMaterial = "ALL_KEY_MATERIAL",
        RotationsOnly = "ROTATIONS_ONLY",
    }
);

aws_enum!(
    /// `KeyMaterialState` of a ListKeyRotations entry: CURRENT and
    /// NON_CURRENT for every rotating key; PENDING_ROTATION for imported
    /// material waiting for RotateKeyOnDemand;
    /// PENDING_MULTI_REGION_IMPORT_AND_ROTATION for such material of a
    /// multi-Region key while some related key has not imported it yet
    /// (computed when listed, never stored).
    KeyMaterialState {
        Current = "CURRENT",
        NonCurrent = "NON_CURRENT",
        PendingRotation = "PENDING_ROTATION",
        PendingMultiRegionImportAndRotation = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION",
    }
);

aws_enum!(
    /// `ExpirationModelType`: whether imported key material expires.
    ExpirationModel {
        KeyMaterialExpires = "KEY_MATERIAL_EXPIRES",
        KeyMaterialDoesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }
);

aws_enum!(
    /// `AlgorithmSpec`: how key material is wrapped for ImportKeyMaterial.
    WrappingAlgorithm {
        RsaesPkcs1V15 = "RSAES_PKCS1_V1_5",
        RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
        RsaAesKeyWrapSha1 = "RSA_AES_KEY_WRAP_SHA_1",
        RsaAesKeyWrapSha256 = "RSA_AES_KEY_WRAP_SHA_256",
        Sm2Pke = "SM2PKE",
    }
);

aws_enum!(
    /// `WrappingKeySpec`: the wrapping key GetParametersForImport returns.
    WrappingKeySpec {
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
        Sm2 = "SM2",
    }
);

aws_enum!(
    /// `ImportType` of ImportKeyMaterial.
    ImportType {
        NewKeyMaterial = "NEW_KEY_MATERIAL",
        ExistingKeyMaterial = "EXISTING_KEY_MATERIAL",
    }
);

aws_enum!(
    /// `ImportState` of a ListKeyRotations entry of an EXTERNAL key.
    ImportState {
        Imported = "IMPORTED",
        PendingImport = "PENDING_IMPORT",
    }
);

aws_enum!(
    /// Whether a multi-Region key is the primary or a replica.
    MultiRegionKeyType {
        Primary = "PRIMARY",
        Replica = "REPLICA",
    }
);

aws_enum!(
    /// `DataKeySpec` of GenerateDataKey.
    DataKeySpec {
        Aes256 = "AES_256",
        Aes128 = "AES_128",
    }
);

/// A tag as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag key; unique per key.
    #[serde(rename = "TagKey")]
    pub key: String,
    /// The tag value; may be empty.
    #[serde(rename = "TagValue")]
    pub value: String,
}

/// A `KeyMaterialId`: 32 bytes, shown and stored as 64 lowercase hex
/// digits (the stored JSON is the same as when this was a `String`). Held
/// as the bytes: the text was a 64-byte heap block in every loaded key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MaterialId([u8; 32]);

impl MaterialId {
    /// The id from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> MaterialId {
        MaterialId(bytes)
    }

    /// The id as the API shows it.
    pub fn to_hex(&self) -> String {
        ferrokms_textfast::hex_lower(&self.0)
    }

    /// Whether `text` is this id as the API shows it (hex digits of either
    /// case, as a client may send them back).
    pub fn is(&self, text: &str) -> bool {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).is_ok() && bytes == self.0
    }
}

impl std::fmt::Debug for MaterialId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MaterialId").field(&self.to_hex()).finish()
    }
}

impl Serialize for MaterialId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 64];
        // 64 bytes of room for 32 bytes: cannot fail.
        hex::encode_to_slice(self.0, &mut text).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for MaterialId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MaterialId, D::Error> {
        let text = String::deserialize(d)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes)
            .map_err(|_| serde::de::Error::custom(format!("'{text}' is not a key material id")))?;
        Ok(MaterialId(bytes))
    }
}

/// One version of a key's backing material (the secret itself is stored
/// separately, sealed). Ciphertexts name the version they were made with, so
/// rotation never strands an old ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInfo {
    /// Shown as `KeyMaterialId`.
    pub id: MaterialId,
    /// When the material was made: the key's creation date for the first
    /// material, the rotation date (`RotationDate`) for later ones.
    pub created_ms: i64,
    /// How this material came to be: `None` for the key's first material,
    /// otherwise the rotation that made it (`RotationType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationType>,
    /// `KeyMaterialDescription` given at import (EXTERNAL keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The import of one imported key material: whether and when it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMaterial {
    /// Whether the material expires.
    pub expiration_model: ExpirationModel,
    /// When the material expires (`ValidTo`), for KEY_MATERIAL_EXPIRES.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to_ms: Option<i64>,
}

impl ImportedMaterial {
    /// Whether the material has expired at `now_ms` (it is unusable from
    /// `ValidTo` on, even before the sweeper deletes it).
    pub fn expired_at(&self, now_ms: i64) -> bool {
        self.valid_to_ms.is_some_and(|v| v <= now_ms)
    }
}

/// Imported material (symmetric EXTERNAL keys) waiting for
/// RotateKeyOnDemand (`PENDING_ROTATION`). Not yet associated with the key
/// for good: it can be deleted and other material imported in its place.
/// Stored sealed as material version `materials.len()`, the version it
/// becomes when the key rotates to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingMaterial {
    /// Its id, import date (`created_ms`, replaced by the rotation date when
    /// it becomes current) and description.
    pub info: MaterialInfo,
    /// Whether and when it expires once imported.
    pub import: ImportedMaterial,
}

/// What an EXTERNAL key holds of its imported materials. `None` on the
/// record means none is imported now (never imported, deleted or
/// expired); the ids stay in `materials`, so that only the same material
/// can be imported again.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ImportedMaterials {
    /// The import of each material version (index as in
    /// [`KeyRecord::materials`]): `None`, or missing at the end, while that
    /// material is not imported (deleted or expired).
    pub versions: Vec<Option<ImportedMaterial>>,
    /// Material imported for the next on-demand rotation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<PendingMaterial>>,
}

impl ImportedMaterials {
    fn is_empty(&self) -> bool {
        self.pending.is_none() && self.versions.iter().all(Option::is_none)
    }
}

/// The stored forms of [`ImportedMaterials`]: the current one, and the one
/// written while an EXTERNAL key had one material (its import, version 0).
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredImports {
    Materials {
        versions: Vec<Option<ImportedMaterial>>,
        #[serde(default)]
        pending: Option<Box<PendingMaterial>>,
    },
    One(ImportedMaterial),
}

impl<'de> Deserialize<'de> for ImportedMaterials {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ImportedMaterials, D::Error> {
        Ok(match StoredImports::deserialize(d)? {
            StoredImports::Materials { versions, pending } => {
                ImportedMaterials { versions, pending }
            }
            StoredImports::One(one) => ImportedMaterials {
                versions: vec![Some(one)],
                pending: None,
            },
        })
    }
}

/// A key's automatic rotation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationConfig {
    /// Whether the key rotates automatically.
    pub enabled: bool,
    /// Days between automatic rotations (`RotationPeriodInDays`, default 365).
    pub period_days: u32,
    /// When automatic rotation was last turned on: the first automatic
    /// rotation after that is due one period later (AWS:
    /// NextRotationDate = enable date + period), not one period after the
    /// key's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_ms: Option<i64>,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            enabled: false,
            period_days: 365,
            enabled_ms: None,
        }
    }
}

/// Where the members of a multi-Region key live. Every member stores the
/// primary's Region; only the primary stores the replicas' Regions (a
/// replica reads them from the primary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegionInfo {
    /// The primary key's Region.
    pub primary_region: Region,
    /// The replicas' Regions (stored by the primary only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_regions: Vec<Region>,
}

/// A shared string stored as a plain JSON string (the stored form of a
/// `String` field, so records written before and after read alike).
mod shared_text {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        Ok(Arc::from(String::deserialize(d)?))
    }
}

/// A list read without spare capacity: records stay in memory for the
/// server's life.
fn exact_vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let mut v = Vec::<T>::deserialize(d)?;
    v.shrink_to_fit();
    Ok(v)
}

/// Everything about a key except its secret material; persisted as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Account, Region and id.
    pub addr: KeyAddr,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The key's description.
    pub description: String,
    /// Which operations the key is for.
    pub key_usage: KeyUsage,
    /// The kind of key material.
    pub key_spec: KeySpec,
    /// Where the key material came from.
    pub origin: Origin,
    /// Whether the customer or AWS manages the key.
    pub key_manager: KeyManager,
    /// Where the key is in its life.
    pub state: KeyState,
    /// When a key pending deletion will be deleted, milliseconds since the Unix epoch.
    pub deletion_ms: Option<i64>,
    /// The waiting period ScheduleKeyDeletion set, in days.
    pub pending_window_days: Option<u32>,
    /// The key policy exactly as given (GetKeyPolicy returns this text).
    /// Shared: keys with the same text hold one allocation, interned with
    /// the parsed policy when the key is loaded (every default key policy
    /// of an account is the same text; ~270 bytes a key otherwise).
    #[serde(with = "shared_text")]
    pub policy: Arc<str>,
    /// The key's tags.
    pub tags: Vec<Tag>,
    /// Automatic rotation settings.
    pub rotation: RotationConfig,
    /// Whether the key is a multi-Region key (primary or replica).
    pub multi_region: bool,
    /// Exactly as long as the list (serde's Vec grows to 4 entries: 192
    /// bytes a key wasted for the usual single material).
    #[serde(deserialize_with = "exact_vec")]
    pub materials: Vec<MaterialInfo>,
    /// EXTERNAL keys: the imports of their materials, while any is
    /// imported (see [`ImportedMaterials`]). Records written when a key had
    /// one material stored its import here; they read as version 0's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// Boxed, as `mrk`: rarely set, and inline they made every loaded key's
    /// allocation a size class larger.
    pub imported: Option<Box<ImportedMaterials>>,
    /// Multi-Region keys: the primary's and replicas' Regions. A
    /// multi-Region key stored before this existed reads as a primary
    /// without replicas (see [`KeyRecord::multi_region_info`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrk: Option<Box<MultiRegionInfo>>,
    /// Keys in an external key store (Origin EXTERNAL_KEY_STORE): the store
    /// and the external key. Boxed, as `mrk`: rarely set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks: Option<Box<XksKeyInfo>>,
}

/// Where the second layer of an external key store key's encryption lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct XksKeyInfo {
    /// The custom key store (`cks-…`) the key belongs to.
    pub custom_key_store_id: String,
    /// The external key's id at the store's proxy (`XksKeyId`).
    pub xks_key_id: String,
}

impl KeyRecord {
    /// The multi-Region configuration of a multi-Region key.
    pub fn multi_region_info(&self) -> Option<MultiRegionInfo> {
        if !self.multi_region {
            return None;
        }
        Some(
            self.mrk
                .as_deref()
                .cloned()
                .unwrap_or_else(|| MultiRegionInfo {
                    primary_region: self.addr.region.clone(),
                    replica_regions: Vec::new(),
                }),
        )
    }

    /// PRIMARY or REPLICA for a multi-Region key.
    pub fn multi_region_key_type(&self) -> Option<MultiRegionKeyType> {
        let info = self.multi_region_info()?;
        Some(if info.primary_region == self.addr.region {
            MultiRegionKeyType::Primary
        } else {
            MultiRegionKeyType::Replica
        })
    }

    /// Whether the key is a multi-Region replica.
    pub fn is_replica(&self) -> bool {
        self.multi_region_key_type() == Some(MultiRegionKeyType::Replica)
    }

    /// Whether the key's material is loaded: always for AWS_KMS keys; for
    /// EXTERNAL keys only while every material associated with the key
    /// (current and non-current; not one pending rotation) is imported.
    pub fn has_material(&self) -> bool {
        if self.origin != Origin::External {
            return true;
        }
        let Some(imports) = &self.imported else {
            return false;
        };
        !self.materials.is_empty()
            && (0..self.materials.len())
                .all(|v| imports.versions.get(v).is_some_and(Option::is_some))
    }

    /// The import of material version `v` of an EXTERNAL key, while it is
    /// imported.
    pub fn import_of(&self, v: usize) -> Option<&ImportedMaterial> {
        self.imported.as_ref()?.versions.get(v)?.as_ref()
    }

    /// The material imported for RotateKeyOnDemand, if any.
    pub fn pending_material(&self) -> Option<&PendingMaterial> {
        self.imported.as_ref()?.pending.as_deref()
    }

    /// The earliest `ValidTo` of the imported materials associated with the
    /// key (KeyMetadata's `ValidTo`; material pending rotation is not
    /// associated yet).
    pub fn earliest_valid_to_ms(&self) -> Option<i64> {
        let imports = self.imported.as_ref()?;
        imports
            .versions
            .iter()
            .take(self.materials.len())
            .filter_map(|i| i.as_ref()?.valid_to_ms)
            .min()
    }

    /// Whether an associated imported material has expired at `now_ms`: the
    /// key is unusable from then on, even before the sweeper runs.
    pub fn associated_material_expired_at(&self, now_ms: i64) -> bool {
        self.earliest_valid_to_ms().is_some_and(|v| v <= now_ms)
    }

    /// Whether any imported material (associated or pending rotation) has
    /// expired at `now_ms`.
    pub fn any_import_expired_at(&self, now_ms: i64) -> bool {
        self.associated_material_expired_at(now_ms)
            || self
                .pending_material()
                .is_some_and(|p| p.import.expired_at(now_ms))
    }

    /// Marks material version `v` as not imported (deleted or expired):
    /// an Enabled or Disabled key becomes PendingImport (a key pending
    /// deletion keeps its state). Returns whether it was imported.
    pub fn forget_import(&mut self, v: usize) -> bool {
        let Some(slot) = self
            .imported
            .as_mut()
            .and_then(|i| i.versions.get_mut(v))
            .filter(|s| s.is_some())
        else {
            return false;
        };
        *slot = None;
        if matches!(self.state, KeyState::Enabled | KeyState::Disabled) {
            self.state = KeyState::PendingImport;
        }
        self.tidy_imports();
        true
    }

    /// Drops the material pending rotation. Returns whether there was one.
    pub fn forget_pending(&mut self) -> bool {
        let had = self
            .imported
            .as_mut()
            .and_then(|i| i.pending.take())
            .is_some();
        self.tidy_imports();
        had
    }

    /// Applies the expiry of imported material at `now_ms`, as the sweeper
    /// does: expired associated material is forgotten (the key becomes
    /// PendingImport), expired material pending rotation is dropped.
    /// Returns the storage versions whose sealed material is to be deleted.
    pub fn expire_imports(&mut self, now_ms: i64) -> Vec<u32> {
        let mut gone = Vec::new();
        for v in 0..self.materials.len() {
            if self.import_of(v).is_some_and(|i| i.expired_at(now_ms)) && self.forget_import(v) {
                gone.extend(u32::try_from(v).ok());
            }
        }
        let pending_expired = self
            .pending_material()
            .is_some_and(|p| p.import.expired_at(now_ms));
        if pending_expired && self.forget_pending() {
            gone.extend(u32::try_from(self.materials.len()).ok());
        }
        gone
    }

    /// `imported` is `None` once nothing is imported.
    pub(crate) fn tidy_imports(&mut self) {
        if let Some(i) = &mut self.imported {
            while i.versions.last().is_some_and(Option::is_none) {
                i.versions.pop();
            }
        }
        if self.imported.as_ref().is_some_and(|i| i.is_empty()) {
            self.imported = None;
        }
    }

    /// The key's ARN.
    pub fn arn(&self) -> String {
        self.addr.arn()
    }

    /// The newest material version and its description, if the key has material.
    pub fn current_material(&self) -> Option<(u32, &MaterialInfo)> {
        let idx = self.materials.len().checked_sub(1)?;
        Some((u32::try_from(idx).ok()?, self.materials.get(idx)?))
    }

    /// The signing algorithms of a `SIGN_VERIFY` key; `None` for other usages.
    pub fn signing_algorithms(&self) -> Option<Vec<SigningAlgorithm>> {
        (self.key_usage == KeyUsage::SignVerify).then(|| self.key_spec.signing_algorithms())
    }

    /// The MAC algorithm of a `GENERATE_VERIFY_MAC` key; `None` for other usages.
    pub fn mac_algorithms(&self) -> Option<Vec<MacAlgorithm>> {
        if self.key_usage != KeyUsage::GenerateVerifyMac {
            return None;
        }
        self.key_spec.mac_algorithm().map(|a| vec![a])
    }

    /// The key agreement algorithms of a `KEY_AGREEMENT` key; `None` for other usages.
    pub fn key_agreement_algorithms(&self) -> Option<Vec<KeyAgreementAlgorithm>> {
        (self.key_usage == KeyUsage::KeyAgreement).then(|| vec![KeyAgreementAlgorithm::Ecdh])
    }

    /// The encapsulation algorithms of an `ENCAPSULATE_DECAPSULATE` key; `None` otherwise.
    pub fn encapsulation_algorithms(&self) -> Option<Vec<EncapsulationAlgorithm>> {
        (self.key_usage == KeyUsage::EncapsulateDecapsulate)
            .then(|| vec![EncapsulationAlgorithm::MlKem])
    }

    /// The encryption algorithms of an `ENCRYPT_DECRYPT` key; `None` for other usages.
    pub fn encryption_algorithms(&self) -> Option<Vec<EncryptionAlgorithm>> {
        match (self.key_spec, self.key_usage) {
            (KeySpec::SymmetricDefault, _) => Some(vec![EncryptionAlgorithm::SymmetricDefault]),
            (KeySpec::Sm2, KeyUsage::EncryptDecrypt) => Some(vec![EncryptionAlgorithm::Sm2Pke]),
            (KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096, KeyUsage::EncryptDecrypt) => {
                Some(vec![
                    EncryptionAlgorithm::RsaesOaepSha1,
                    EncryptionAlgorithm::RsaesOaepSha256,
                ])
            }
            _ => None,
        }
    }
}

/// `KeyMetadata` as DescribeKey and CreateKey return it.
// Each member is the `KeyMetadata` member of the same name in the AWS KMS API
// Reference (`key_state` is `KeyState`), which documents it.
#[allow(missing_docs)]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadata {
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub key_id: String,
    pub arn: String,
    pub creation_date: f64,
    pub enabled: bool,
    pub description: String,
    pub key_usage: KeyUsage,
    pub key_state: KeyState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<f64>,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<ExpirationModel>,
    pub key_manager: KeyManager,
    pub customer_master_key_spec: KeySpec,
    pub key_spec: KeySpec,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithms: Option<Vec<EncryptionAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<SigningAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_algorithms: Option<Vec<MacAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_agreement_algorithms: Option<Vec<KeyAgreementAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encapsulation_algorithms: Option<Vec<EncapsulationAlgorithm>>,
    pub multi_region: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_region_configuration: Option<MultiRegionConfiguration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion_window_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_key_material_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_key_store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xks_key_configuration: Option<XksKeyConfiguration>,
}

/// `XksKeyConfigurationType` of DescribeKey: the external key's id.
// Members as in the AWS KMS API Reference.
#[allow(missing_docs)]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct XksKeyConfiguration {
    pub id: String,
}

/// `MultiRegionKey`: one member of a multi-Region key.
// Members as in the AWS KMS API Reference.
#[allow(missing_docs)]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiRegionKey {
    pub arn: String,
    pub region: String,
}

/// `MultiRegionConfiguration` of DescribeKey.
// Members as in the AWS KMS API Reference.
#[allow(missing_docs)]
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MultiRegionConfiguration {
    pub multi_region_key_type: MultiRegionKeyType,
    pub primary_key: MultiRegionKey,
    pub replica_keys: Vec<MultiRegionKey>,
}

/// Milliseconds since the epoch as the API's epoch seconds (with a fraction).
pub fn ms_to_epoch_seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl KeyMetadata {
    /// The metadata as of `now_ms`: imported material past its `ValidTo`
    /// shows the key PendingImport even before the sweeper has deleted it.
    pub fn at(r: &KeyRecord, now_ms: i64) -> KeyMetadata {
        if r.imported.is_some() && r.any_import_expired_at(now_ms) {
            // As the sweeper will leave it.
            let mut view = r.clone();
            view.expire_imports(now_ms);
            return KeyMetadata::from(&view);
        }
        KeyMetadata::from(r)
    }
}

/// KeyMetadata's `ExpirationModel` of an EXTERNAL key: KEY_MATERIAL_EXPIRES
/// when an associated imported material expires, KEY_MATERIAL_DOES_NOT_EXPIRE
/// when imported material is associated and none expires; absent while no
/// associated material is imported.
fn expiration_model(r: &KeyRecord) -> Option<ExpirationModel> {
    r.imported.as_ref()?;
    let mut imports = (0..r.materials.len())
        .filter_map(|v| r.import_of(v))
        .peekable();
    imports.peek()?;
    Some(
        if imports.any(|i| i.expiration_model == ExpirationModel::KeyMaterialExpires) {
            ExpirationModel::KeyMaterialExpires
        } else {
            ExpirationModel::KeyMaterialDoesNotExpire
        },
    )
}

impl From<&KeyRecord> for KeyMetadata {
    fn from(r: &KeyRecord) -> Self {
        KeyMetadata {
            aws_account_id: r.addr.account.to_string(),
            key_id: r.addr.key_id.to_string(),
            arn: r.arn(),
            creation_date: ms_to_epoch_seconds(r.created_ms),
            enabled: r.state == KeyState::Enabled,
            description: r.description.clone(),
            key_usage: r.key_usage,
            key_state: r.state,
            deletion_date: match r.state {
                KeyState::PendingDeletion => r.deletion_ms.map(ms_to_epoch_seconds),
                _ => None,
            },
            valid_to: r.earliest_valid_to_ms().map(ms_to_epoch_seconds),
            origin: r.origin,
            expiration_model: expiration_model(r),
            key_manager: r.key_manager,
            customer_master_key_spec: r.key_spec,
            key_spec: r.key_spec,
            encryption_algorithms: r.encryption_algorithms(),
            signing_algorithms: r.signing_algorithms(),
            mac_algorithms: r.mac_algorithms(),
            key_agreement_algorithms: r.key_agreement_algorithms(),
            encapsulation_algorithms: r.encapsulation_algorithms(),
            multi_region: r.multi_region,
            // Filled by the operations, which see the other members.
            multi_region_configuration: None,
            // Shown while a primary waits for its replicas to be deleted.
            pending_deletion_window_in_days: match r.state {
                KeyState::PendingReplicaDeletion => r.pending_window_days,
                _ => None,
            },
            // Only symmetric encryption keys show their material id (AWS,
            // DescribeKey's CurrentKeyMaterialId); an EXTERNAL key keeps showing it while the material is
            // deleted or expired (AWS keeps the id).
            current_key_material_id: if r.key_spec == KeySpec::SymmetricDefault {
                r.current_material().map(|(_, m)| m.id.to_hex())
            } else {
                None
            },
            custom_key_store_id: r.xks.as_ref().map(|x| x.custom_key_store_id.clone()),
            xks_key_configuration: r.xks.as_ref().map(|x| XksKeyConfiguration {
                id: x.xks_key_id.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key record exactly as an earlier version stored it (ids and the
    /// policy were `String`s then).
    const STORED: &str = r#"{"addr":{"account":"111122223333","region":"us-east-1","key_id":"000015a6-d381-4721-b06d-5fdd324e02c1"},"created_ms":1795489095090,"description":"ferrokms bench","key_usage":"ENCRYPT_DECRYPT","key_spec":"SYMMETRIC_DEFAULT","origin":"AWS_KMS","key_manager":"CUSTOMER","state":"Enabled","deletion_ms":null,"pending_window_days":null,"policy":"{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {\n      \"AWS\" : \"arn:aws:iam::111122223333:root\"\n    },\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  } ]\n}","tags":[],"rotation":{"enabled":false,"period_days":365},"multi_region":false,"materials":[{"id":"1323eca2aadd25a74983eedbf97440ab5c177e7d6defddef54ba6ef59f4ead05","created_ms":1795489095090}]}"#;

    /// An EXTERNAL key as stored while a key had one imported material:
    /// its import was the record's, for version 0.
    fn stored_external(imported: &str) -> String {
        STORED
            .replace(r#""origin":"AWS_KMS""#, r#""origin":"EXTERNAL""#)
            .replace(r#"}]}"#, &format!(r#","description":"v1"}}]{imported}}}"#))
    }

    #[test]
    fn an_external_key_stored_with_one_import_reads_as_its_first_material_imported() {
        let r: KeyRecord = serde_json::from_str(&stored_external(
            r#","imported":{"expiration_model":"KEY_MATERIAL_EXPIRES","valid_to_ms":1795489999000}"#,
        ))
        .unwrap();
        assert!(r.has_material());
        assert_eq!(
            r.import_of(0).and_then(|i| i.valid_to_ms),
            Some(1795489999000)
        );
        assert_eq!(r.materials[0].description.as_deref(), Some("v1"));
        assert!(r.pending_material().is_none());
        // Written back in the current form, read back the same.
        let again: KeyRecord = serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(again, r);

        let deleted: KeyRecord = serde_json::from_str(&stored_external("")).unwrap();
        assert!(!deleted.has_material());
        assert_eq!(deleted.materials.len(), 1);
    }

    #[test]
    fn forgetting_any_associated_import_makes_the_key_pending_import_but_a_pending_one_does_not() {
        let mut r: KeyRecord = serde_json::from_str(&stored_external(
            r#","imported":{"versions":[{"expiration_model":"KEY_MATERIAL_DOES_NOT_EXPIRE"}],"pending":{"info":{"id":"2323eca2aadd25a74983eedbf97440ab5c177e7d6defddef54ba6ef59f4ead05","created_ms":1},"import":{"expiration_model":"KEY_MATERIAL_EXPIRES","valid_to_ms":10}}}"#,
        ))
        .unwrap();
        assert_eq!(r.expire_imports(10), vec![1], "the pending material's slot");
        assert_eq!(r.state, KeyState::Enabled);
        assert!(r.forget_import(0));
        assert_eq!(r.state, KeyState::PendingImport);
        assert!(r.imported.is_none(), "nothing imported is no import record");
        assert!(!r.forget_import(0), "already gone");
    }

    #[test]
    fn records_stored_by_earlier_versions_read_and_write_back_unchanged() {
        let r: KeyRecord = serde_json::from_str(STORED).unwrap();
        assert_eq!(r.addr.account.as_str(), "111122223333");
        assert_eq!(
            r.addr.key_id.as_str(),
            "000015a6-d381-4721-b06d-5fdd324e02c1"
        );
        assert!(r.policy.starts_with("{\n  \"Version\" : \"2012-10-17\""));
        assert_eq!(r.materials.len(), 1);
        // Read without spare room: the record stays in memory for good.
        assert_eq!(r.materials.capacity(), 1);
        let written: serde_json::Value = serde_json::to_value(&r).unwrap();
        let stored: serde_json::Value = serde_json::from_str(STORED).unwrap();
        assert_eq!(written, stored);
        assert_eq!(serde_json::from_value::<KeyRecord>(written).unwrap(), r);
    }
}
