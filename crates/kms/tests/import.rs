//! Imported key material (Origin EXTERNAL): wrapping the way the AWS docs
//! tell users to (RSA-OAEP, or AES key wrap with padding under an ephemeral
//! AES-256 key that is itself RSA-OAEP encrypted), re-import rules, expiry
//! on the service clock, and the material surviving a restart.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::PrivateDecryptingKey;
use ferrokms_kms::api::{Blob, ImportKeyMaterialRequest};
use ferrokms_kms::model::{ExpirationModel, KeySpec, KeyState, KeyUsage, WrappingAlgorithm};
use ferrokms_kms::{Kms, KmsError};
use ferrokms_testkit::kms::material::{
    delete_material, external_key_of, import, parameters, random, wrap, Import,
};
use ferrokms_testkit::kms::{decrypt, describe, encrypt, kms, owner, SqliteKms, DAY_MS};

fn state(kms: &Kms, key: &str) -> KeyState {
    describe(kms, &owner(), key).key_state
}

#[test]
fn imported_symmetric_material_is_sealed_stored_and_reloaded_after_a_restart() {
    let db = SqliteKms::new();
    let open = || db.open();
    let kms = open();
    let key = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    let pending = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    assert!(matches!(
        encrypt(&kms, &owner(), &key),
        Err(KmsError::InvalidState(_))
    ));
    let material = random(32);
    import(
        &kms,
        &owner(),
        &key,
        &material,
        Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha256),
    )
    .unwrap();
    assert_eq!(state(&kms, &key), KeyState::Enabled);
    let blob = encrypt(&kms, &owner(), &key).unwrap();
    drop(kms);

    let kms = open();
    assert_eq!(decrypt(&kms, &owner(), &blob).unwrap(), b"secret");
    assert_eq!(state(&kms, &pending), KeyState::PendingImport);
}

#[test]
fn only_the_same_material_can_be_reimported() {
    let kms = kms();
    let key = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let id = import(
        &kms,
        &owner(),
        &key,
        &material,
        Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha1),
    )
    .unwrap();
    let blob = encrypt(&kms, &owner(), &key).unwrap();
    assert!(matches!(
        import(
            &kms,
            &owner(),
            &key,
            &random(32),
            Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha256)
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    delete_material(&kms, &owner(), &key, None).unwrap();
    assert_eq!(state(&kms, &key), KeyState::PendingImport);
    assert!(matches!(
        decrypt(&kms, &owner(), &blob),
        Err(KmsError::InvalidState(_))
    ));
    assert!(matches!(
        import(
            &kms,
            &owner(),
            &key,
            &random(32),
            Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha256)
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let again = import(
        &kms,
        &owner(),
        &key,
        &material,
        Import::wrapped_with(WrappingAlgorithm::RsaAesKeyWrapSha256),
    )
    .unwrap();
    assert_eq!(again, id);
    assert_eq!(decrypt(&kms, &owner(), &blob).unwrap(), b"secret");
}

#[test]
fn material_is_unusable_from_valid_to_and_the_sweep_makes_the_key_pending_import() {
    let kms = kms();
    let key = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    let material = random(32);
    let valid_to = kms.clock.now_ms() + DAY_MS;
    import(
        &kms,
        &owner(),
        &key,
        &material,
        Import {
            valid_to_ms: Some(valid_to),
            ..Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha256)
        },
    )
    .unwrap();
    let blob = encrypt(&kms, &owner(), &key).unwrap();
    kms.clock.advance_ms(DAY_MS - 60_000);
    assert!(encrypt(&kms, &owner(), &key).is_ok());
    kms.clock.advance_ms(60_000);
    // Refused at once, before any sweep.
    assert!(matches!(
        encrypt(&kms, &owner(), &key),
        Err(KmsError::InvalidState(_))
    ));
    assert_eq!(state(&kms, &key), KeyState::PendingImport);
    assert_eq!(kms.sweep().materials_expired.unwrap(), 1);
    assert_eq!(kms.sweep().materials_expired.unwrap(), 0);
    import(
        &kms,
        &owner(),
        &key,
        &material,
        Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha256),
    )
    .unwrap();
    assert_eq!(decrypt(&kms, &owner(), &blob).unwrap(), b"secret");
}

#[test]
fn an_import_token_works_only_for_its_key_and_for_24_hours() {
    let kms = kms();
    let a = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    let b = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    let alg = WrappingAlgorithm::RsaesOaepSha256;
    let (public, token) = parameters(&kms, &owner(), &a, alg);
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
    let kms = kms();
    let sym = external_key_of(&kms, KeySpec::SymmetricDefault, None);
    assert!(matches!(
        import(
            &kms,
            &owner(),
            &sym,
            &random(16),
            Import::wrapped_with(WrappingAlgorithm::RsaesOaepSha256)
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let rsa = external_key_of(&kms, KeySpec::Rsa3072, Some(KeyUsage::SignVerify));
    let other_size = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = other_size.as_der().unwrap();
    assert!(matches!(
        import(
            &kms,
            &owner(),
            &rsa,
            der.as_ref(),
            Import::wrapped_with(WrappingAlgorithm::RsaAesKeyWrapSha256)
        ),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    let right = PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa3072).unwrap();
    import(
        &kms,
        &owner(),
        &rsa,
        right.as_der().unwrap().as_ref(),
        Import::wrapped_with(WrappingAlgorithm::RsaAesKeyWrapSha1),
    )
    .unwrap();
    assert_eq!(state(&kms, &rsa), KeyState::Enabled);
}
