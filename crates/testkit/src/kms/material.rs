//! Key material for the KMS tests: EXTERNAL keys and the material a client
//! imports into them (GetParametersForImport, wrapping the way the AWS docs
//! tell users to, ImportKeyMaterial), new material and RotateKeyOnDemand,
//! ListKeyRotations, DeleteImportedKeyMaterial.

use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use ferrokms_kms::api::{
    Blob, CreateKeyRequest, DeleteImportedKeyMaterialRequest, GetParametersForImportRequest,
    ImportKeyMaterialRequest, ListKeyRotationsRequest, RotateKeyOnDemandRequest,
    RotationsListEntry,
};
use ferrokms_kms::model::{
    ExpirationModel, ImportType, IncludeKeyMaterial, KeySpec, KeyState, KeyUsage, Origin,
    WrappingAlgorithm, WrappingKeySpec,
};
use ferrokms_kms::{Caller, Kms, KmsError};

use super::owner;

/// `n` random bytes.
pub fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    SystemRandom::new().fill(&mut v).unwrap();
    v
}

/// 32 random bytes: new key material for a symmetric key.
pub fn material() -> Vec<u8> {
    random(32)
}

/// A key of [`super::ACCT`] with Origin EXTERNAL and the given spec and
/// usage (the default when `None`), created by its root; checks it waits
/// in PendingImport, and returns its key id.
pub fn external_key_of(kms: &Kms, spec: KeySpec, usage: Option<KeyUsage>) -> String {
    let m = kms
        .create_key(
            &owner(),
            CreateKeyRequest {
                key_spec: Some(spec),
                key_usage: usage,
                origin: Some(Origin::External),
                ..Default::default()
            },
        )
        .unwrap()
        .key_metadata;
    assert_eq!(m.key_state, KeyState::PendingImport);
    m.key_id
}

/// A symmetric (SYMMETRIC_DEFAULT) EXTERNAL key of [`super::ACCT`],
/// PendingImport; its key id.
pub fn external_key(kms: &Kms) -> String {
    external_key_of(kms, KeySpec::SymmetricDefault, None)
}

/// GetParametersForImport for `key` as `caller` (an RSA_2048 wrapping key
/// for `alg`): the wrapping public key (DER) and the import token.
pub fn parameters(
    kms: &Kms,
    caller: &Caller,
    key: &str,
    alg: WrappingAlgorithm,
) -> (Vec<u8>, Vec<u8>) {
    let p = kms
        .get_parameters_for_import(
            caller,
            GetParametersForImportRequest {
                key_id: key.into(),
                wrapping_algorithm: Some(alg),
                wrapping_key_spec: Some(WrappingKeySpec::Rsa2048),
            },
        )
        .unwrap();
    (p.public_key.0, p.import_token.0)
}

/// Wraps `material` under the wrapping public key `public_der` as a client
/// following the AWS docs would: RSA-OAEP (SHA-1 for the `_SHA_1`
/// algorithms, SHA-256 otherwise) for the RSAES_OAEP ones; for the
/// RSA_AES_KEY_WRAP ones, an ephemeral AES-256 key RSA-OAEP encrypted,
/// followed by the material under it in AES key wrap with padding.
pub fn wrap(public_der: &[u8], alg: WrappingAlgorithm, material: &[u8]) -> Vec<u8> {
    let public =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(public_der).unwrap()).unwrap();
    let oaep = match alg {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => {
            &OAEP_SHA1_MGF1SHA1
        }
        _ => &OAEP_SHA256_MGF1SHA256,
    };
    let rsa = |plain: &[u8]| {
        let mut out = vec![0u8; public.ciphertext_size()];
        public
            .encrypt(oaep, plain, &mut out, None)
            .unwrap()
            .to_vec()
    };
    match alg {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256 => rsa(material),
        _ => {
            let mut aes = [0u8; 32];
            SystemRandom::new().fill(&mut aes).unwrap();
            let mut out = rsa(&aes);
            let mut wrapped = vec![0u8; material.len() + 16];
            let kek = AesKek::new(&AES_256, &aes).unwrap();
            out.extend_from_slice(kek.wrap_with_padding(material, &mut wrapped).unwrap());
            out
        }
    }
}

/// How [`import`] sends one ImportKeyMaterial: the default is
/// RSAES_OAEP_SHA_256, no import type (AWS's default), no KeyMaterialId or
/// description, material that does not expire.
#[derive(Debug, Clone, Copy)]
pub struct Import<'a> {
    /// The wrapping algorithm asked of GetParametersForImport.
    pub wrapping: WrappingAlgorithm,
    /// `ImportType`.
    pub import_type: Option<ImportType>,
    /// `KeyMaterialId`.
    pub key_material_id: Option<&'a str>,
    /// `KeyMaterialDescription`.
    pub description: Option<&'a str>,
    /// `ValidTo` in milliseconds since the epoch; with it the material
    /// expires (KEY_MATERIAL_EXPIRES), without it it does not.
    pub valid_to_ms: Option<i64>,
}

impl Default for Import<'_> {
    fn default() -> Self {
        Import {
            wrapping: WrappingAlgorithm::RsaesOaepSha256,
            import_type: None,
            key_material_id: None,
            description: None,
            valid_to_ms: None,
        }
    }
}

impl Import<'_> {
    /// The default import, wrapped with `alg`.
    pub fn wrapped_with(alg: WrappingAlgorithm) -> Self {
        Import {
            wrapping: alg,
            ..Default::default()
        }
    }
}

/// Imports `bytes` into `key` as `caller` the way a client following the
/// AWS docs would: GetParametersForImport, [`wrap`], ImportKeyMaterial as
/// `how` says. The KeyMaterialId the import names.
pub fn import(
    kms: &Kms,
    caller: &Caller,
    key: &str,
    bytes: &[u8],
    how: Import<'_>,
) -> Result<String, KmsError> {
    let (public, token) = parameters(kms, caller, key, how.wrapping);
    kms.import_key_material(
        caller,
        ImportKeyMaterialRequest {
            key_id: key.into(),
            import_token: Blob(token),
            encrypted_key_material: Blob(wrap(&public, how.wrapping, bytes)),
            #[allow(clippy::cast_precision_loss)] // test clock values fit
            valid_to: how.valid_to_ms.map(|ms| ms as f64 / 1000.0),
            expiration_model: Some(if how.valid_to_ms.is_some() {
                ExpirationModel::KeyMaterialExpires
            } else {
                ExpirationModel::KeyMaterialDoesNotExpire
            }),
            import_type: how.import_type,
            key_material_description: how.description.map(str::to_string),
            key_material_id: how.key_material_id.map(str::to_string),
        },
    )
    .map(|r| r.key_material_id)
}

/// [`import`] of `bytes` as NEW_KEY_MATERIAL: material for the next
/// RotateKeyOnDemand. Its KeyMaterialId.
pub fn new_material(
    kms: &Kms,
    caller: &Caller,
    key: &str,
    bytes: &[u8],
) -> Result<String, KmsError> {
    import(
        kms,
        caller,
        key,
        bytes,
        Import {
            import_type: Some(ImportType::NewKeyMaterial),
            ..Default::default()
        },
    )
}

/// [`import`] of `bytes` as EXISTING_KEY_MATERIAL (with KeyMaterialId `id`
/// when given): material the key already has, imported again (or, into a
/// multi-Region replica, the primary's). Its KeyMaterialId.
pub fn import_existing(
    kms: &Kms,
    caller: &Caller,
    key: &str,
    bytes: &[u8],
    id: Option<&str>,
) -> Result<String, KmsError> {
    import(
        kms,
        caller,
        key,
        bytes,
        Import {
            import_type: Some(ImportType::ExistingKeyMaterial),
            key_material_id: id,
            ..Default::default()
        },
    )
}

/// RotateKeyOnDemand of `key` as `caller`; the key ARN it answers.
pub fn rotate(kms: &Kms, caller: &Caller, key: &str) -> Result<String, KmsError> {
    kms.rotate_key_on_demand(
        caller,
        RotateKeyOnDemandRequest {
            key_id: key.into(),
            ..Default::default()
        },
    )
    .map(|r| r.key_id)
}

/// DeleteImportedKeyMaterial of `key`'s material `id` (the current one
/// when `None`) as `caller`; the KeyMaterialId it answers.
pub fn delete_material(
    kms: &Kms,
    caller: &Caller,
    key: &str,
    id: Option<&str>,
) -> Result<Option<String>, KmsError> {
    kms.delete_imported_key_material(
        caller,
        DeleteImportedKeyMaterialRequest {
            key_id: key.into(),
            key_material_id: id.map(str::to_string),
        },
    )
    .map(|r| r.key_material_id)
}

/// Every entry of ListKeyRotations of `key` as `caller` (one page, AWS's
/// default limit), with `include` as IncludeKeyMaterial: rotations only
/// when `None`, every material with ALL_KEY_MATERIAL.
pub fn list_rotations(
    kms: &Kms,
    caller: &Caller,
    key: &str,
    include: Option<IncludeKeyMaterial>,
) -> Vec<RotationsListEntry> {
    kms.list_key_rotations(
        caller,
        ListKeyRotationsRequest {
            key_id: key.into(),
            include_key_material: include,
            ..Default::default()
        },
    )
    .unwrap()
    .rotations
}

/// Every material of `key` as `caller` sees them (ListKeyRotations with
/// ALL_KEY_MATERIAL), oldest first.
pub fn all_materials(kms: &Kms, caller: &Caller, key: &str) -> Vec<RotationsListEntry> {
    list_rotations(kms, caller, key, Some(IncludeKeyMaterial::AllKeyMaterial))
}
