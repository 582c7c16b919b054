//! Imported key material (Origin EXTERNAL): wrapping the way the AWS docs
//! tell users to (RSA-OAEP, or AES key wrap with padding under an ephemeral
//! AES-256 key that is itself RSA-OAEP encrypted), re-import rules, expiry
//! on the service clock, and the material surviving a restart.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256,
};
use ferrokms_kms::api::{
    Blob, CreateKeyRequest, DecryptRequest, DeleteImportedKeyMaterialRequest, DescribeKeyRequest,
    EncryptRequest, GetParametersForImportRequest, ImportKeyMaterialRequest, SecretBlob,
};
use ferrokms_kms::model::{
    ExpirationModel, KeySpec, KeyState, KeyUsage, Origin, WrappingAlgorithm, WrappingKeySpec,
};
use ferrokms_kms::{Kms, KmsError};
use ferrokms_store::{Sealer, SqliteStore, Store};
use ferrokms_testkit::kms::owner;
use zeroize::Zeroizing;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn external_key(kms: &Kms, spec: KeySpec, usage: Option<KeyUsage>) -> String {
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

fn params(kms: &Kms, key: &str, alg: WrappingAlgorithm) -> (Vec<u8>, Vec<u8>) {
    let p = kms
        .get_parameters_for_import(
            &owner(),
            GetParametersForImportRequest {
                key_id: key.into(),
                wrapping_algorithm: Some(alg),
                wrapping_key_spec: Some(WrappingKeySpec::Rsa2048),
            },
        )
        .unwrap();
    (p.public_key.0, p.import_token.0)
}

/// Wraps `material` as a client following the AWS docs would.
fn wrap(public_der: &[u8], alg: WrappingAlgorithm, material: &[u8]) -> Vec<u8> {
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

fn import(
    kms: &Kms,
    key: &str,
    alg: WrappingAlgorithm,
    material: &[u8],
    valid_to_ms: Option<i64>,
) -> Result<String, KmsError> {
    let (public, token) = params(kms, key, alg);
    kms.import_key_material(
        &owner(),
        ImportKeyMaterialRequest {
            key_id: key.into(),
            import_token: Blob(token),
            encrypted_key_material: Blob(wrap(&public, alg, material)),
            valid_to: valid_to_ms.map(|ms| ms as f64 / 1000.0),
            expiration_model: Some(if valid_to_ms.is_some() {
                ExpirationModel::KeyMaterialExpires
            } else {
                ExpirationModel::KeyMaterialDoesNotExpire
            }),
            ..Default::default()
        },
    )
    .map(|r| r.key_material_id)
}

fn state(kms: &Kms, key: &str) -> KeyState {
    kms.describe_key(
        &owner(),
        DescribeKeyRequest {
            key_id: key.into(),
            grant_tokens: None,
        },
    )
    .unwrap()
    .key_metadata
    .key_state
}

fn encrypt(kms: &Kms, key: &str) -> Result<Vec<u8>, KmsError> {
    kms.encrypt(
        &owner(),
        EncryptRequest {
            key_id: key.into(),
            plaintext: SecretBlob(Zeroizing::new(b"secret".to_vec())),
            ..Default::default()
        },
    )
    .map(|r| r.ciphertext_blob.0)
}

fn decrypt(kms: &Kms, blob: &[u8]) -> Result<Vec<u8>, KmsError> {
    kms.decrypt(
        &owner(),
        DecryptRequest {
            ciphertext_blob: Some(Blob(blob.to_vec())),
            ..Default::default()
        },
    )
    .map(|r| r.plaintext.0.to_vec())
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    SystemRandom::new().fill(&mut v).unwrap();
    v
}

#[test]
fn imported_symmetric_material_is_sealed_stored_and_reloaded_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.db");
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let open = || {
        Kms::open(
            Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>,
            sealer.clone(),
        )
        .unwrap()
    };
    let kms = open();
    let key = external_key(&kms, KeySpec::SymmetricDefault, None);
    let pending = external_key(&kms, KeySpec::SymmetricDefault, None);
    assert!(matches!(
        encrypt(&kms, &key),
        Err(KmsError::InvalidState(_))
    ));
    let material = random(32);
    import(
        &kms,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        None,
    )
    .unwrap();
    assert_eq!(state(&kms, &key), KeyState::Enabled);
    let blob = encrypt(&kms, &key).unwrap();
    drop(kms);

    let kms = open();
    assert_eq!(decrypt(&kms, &blob).unwrap(), b"secret");
    assert_eq!(state(&kms, &pending), KeyState::PendingImport);
}

#[test]
fn only_the_same_material_can_be_reimported() {
    let kms = Kms::open(
        Arc::new(ferrokms_store::MemoryStore::default()),
        Arc::new(Sealer::ephemeral().unwrap()),
    )
    .unwrap();
    let key = external_key(&kms, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let id = import(
        &kms,
        &key,
        WrappingAlgorithm::RsaesOaepSha1,
        &material,
        None,
    )
    .unwrap();
    let blob = encrypt(&kms, &key).unwrap();
    assert!(matches!(
        import(
            &kms,
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            &random(32),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    kms.delete_imported_key_material(
        &owner(),
        DeleteImportedKeyMaterialRequest {
            key_id: key.clone(),
            key_material_id: None,
        },
    )
    .unwrap();
    assert_eq!(state(&kms, &key), KeyState::PendingImport);
    assert!(matches!(
        decrypt(&kms, &blob),
        Err(KmsError::InvalidState(_))
    ));
    assert!(matches!(
        import(
            &kms,
            &key,
            WrappingAlgorithm::RsaesOaepSha256,
            &random(32),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let again = import(
        &kms,
        &key,
        WrappingAlgorithm::RsaAesKeyWrapSha256,
        &material,
        None,
    )
    .unwrap();
    assert_eq!(again, id);
    assert_eq!(decrypt(&kms, &blob).unwrap(), b"secret");
}

#[test]
fn material_is_unusable_from_valid_to_and_the_sweep_makes_the_key_pending_import() {
    let kms = Kms::open(
        Arc::new(ferrokms_store::MemoryStore::default()),
        Arc::new(Sealer::ephemeral().unwrap()),
    )
    .unwrap();
    let key = external_key(&kms, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let valid_to = kms.clock.now_ms() + DAY_MS;
    import(
        &kms,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        Some(valid_to),
    )
    .unwrap();
    let blob = encrypt(&kms, &key).unwrap();
    kms.clock.advance_ms(DAY_MS - 60_000);
    assert!(encrypt(&kms, &key).is_ok());
    kms.clock.advance_ms(60_000);
    // Refused at once, before any sweep.
    assert!(matches!(
        encrypt(&kms, &key),
        Err(KmsError::InvalidState(_))
    ));
    assert_eq!(state(&kms, &key), KeyState::PendingImport);
    assert_eq!(kms.sweep().materials_expired.unwrap(), 1);
    assert_eq!(kms.sweep().materials_expired.unwrap(), 0);
    import(
        &kms,
        &key,
        WrappingAlgorithm::RsaesOaepSha256,
        &material,
        None,
    )
    .unwrap();
    assert_eq!(decrypt(&kms, &blob).unwrap(), b"secret");
}

#[test]
fn an_import_token_works_only_for_its_key_and_for_24_hours() {
    let kms = Kms::open(
        Arc::new(ferrokms_store::MemoryStore::default()),
        Arc::new(Sealer::ephemeral().unwrap()),
    )
    .unwrap();
    let a = external_key(&kms, KeySpec::SymmetricDefault, None);
    let b = external_key(&kms, KeySpec::SymmetricDefault, None);
    let alg = WrappingAlgorithm::RsaesOaepSha256;
    let (public, token) = params(&kms, &a, alg);
    let req = |key: &str, token: &[u8]| ImportKeyMaterialRequest {
        key_id: key.into(),
        import_token: Blob(token.to_vec()),
        encrypted_key_material: Blob(wrap(&public, alg, &[7u8; 32])),
        expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
        ..Default::default()
    };
    assert!(matches!(
        kms.import_key_material(&owner(), req(&b, &token)),
        Err(KmsError::InvalidImportToken(_))
    ));
    assert!(matches!(
        kms.import_key_material(&owner(), req(&a, b"not a token")),
        Err(KmsError::InvalidImportToken(_))
    ));
    kms.clock.advance_ms(DAY_MS);
    assert!(matches!(
        kms.import_key_material(&owner(), req(&a, &token)),
        Err(KmsError::ExpiredImportToken(_))
    ));
}

#[test]
fn material_that_does_not_fit_the_key_spec_is_incorrect_key_material() {
    let kms = Kms::open(
        Arc::new(ferrokms_store::MemoryStore::default()),
        Arc::new(Sealer::ephemeral().unwrap()),
    )
    .unwrap();
    let sym = external_key(&kms, KeySpec::SymmetricDefault, None);
    assert!(matches!(
        import(
            &kms,
            &sym,
            WrappingAlgorithm::RsaesOaepSha256,
            &random(16),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let rsa = external_key(&kms, KeySpec::Rsa3072, Some(KeyUsage::SignVerify));
    let other_size = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = other_size.as_der().unwrap();
    assert!(matches!(
        import(
            &kms,
            &rsa,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
            der.as_ref(),
            None
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let right = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa3072).unwrap();
    import(
        &kms,
        &rsa,
        WrappingAlgorithm::RsaAesKeyWrapSha1,
        right.as_der().unwrap().as_ref(),
        None,
    )
    .unwrap();
    assert_eq!(state(&kms, &rsa), KeyState::Enabled);
}
