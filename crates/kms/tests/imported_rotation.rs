//! Several imported materials per symmetric EXTERNAL key (AWS's "rotate
//! imported key material"): NEW_KEY_MATERIAL waits as PENDING_ROTATION
//! until RotateKeyOnDemand makes it current, EXISTING_KEY_MATERIAL takes
//! only the same bytes, each material has its own import state and
//! expiration, and deleting any associated material makes the key
//! PendingImport until it is imported again. Also RotateKeyOnDemand's
//! order of checks and its limit.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ferrokms_kms::api::{
    Blob, DeleteImportedKeyMaterialRequest, DisableKeyRequest, GetParametersForImportRequest,
    ImportKeyMaterialRequest,
};
use ferrokms_kms::model::{
    ExpirationModel, ImportState, ImportType, KeyMaterialState, KeySpec, KeyState, KeyUsage,
    RotationType, WrappingAlgorithm, WrappingKeySpec,
};
use ferrokms_kms::Kms;
use ferrokms_store::{MemoryStore, Sealer, Store};
use ferrokms_testkit::kms::material::{
    all_materials, delete_material, external_key, import, import_existing, list_rotations,
    material, new_material, rotate, Import,
};
use ferrokms_testkit::kms::{
    arn, decrypted_by, describe, encrypt, kms, new_key, owner, root, SqliteKms, DAY_MS,
};

/// On-demand rotations AWS allows per key (the pinned API reference).
const ON_DEMAND_ROTATION_LIMIT: usize = 25;

#[test]
fn new_key_material_waits_pending_rotation_until_rotate_key_on_demand_makes_it_current() {
    let kms = kms();
    let key = external_key(&kms);
    let first = import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    let old_blob = encrypt(&kms, &owner(), &key).unwrap();
    let next = import(
        &kms,
        &owner(),
        &key,
        &material(),
        Import {
            import_type: Some(ImportType::NewKeyMaterial),
            description: Some("2026 rotation"),
            ..Default::default()
        },
    )
    .unwrap();
    assert_ne!(next, first);

    // Pending: listed with ALL_KEY_MATERIAL only, not yet used.
    let listed = all_materials(&kms, &owner(), &key);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].key_material_id, first);
    assert_eq!(listed[0].key_material_state, KeyMaterialState::Current);
    assert_eq!(listed[1].key_material_id, next);
    assert_eq!(
        listed[1].key_material_state,
        KeyMaterialState::PendingRotation
    );
    assert_eq!(listed[1].import_state, Some(ImportState::Imported));
    assert_eq!(
        listed[1].key_material_description.as_deref(),
        Some("2026 rotation")
    );
    assert!(listed[1].rotation_date.is_none() && listed[1].rotation_type.is_none());
    assert!(
        list_rotations(&kms, &owner(), &key, None).is_empty(),
        "no rotation yet"
    );
    assert_eq!(
        describe(&kms, &owner(), &key).current_key_material_id,
        Some(first.clone())
    );
    assert_eq!(
        decrypted_by(&kms, &owner(), &encrypt(&kms, &owner(), &key).unwrap()).unwrap(),
        first
    );

    assert_eq!(rotate(&kms, &owner(), &key).unwrap(), arn(&kms, &key));

    assert_eq!(
        describe(&kms, &owner(), &key).current_key_material_id,
        Some(next.clone())
    );
    assert_eq!(
        decrypted_by(&kms, &owner(), &encrypt(&kms, &owner(), &key).unwrap()).unwrap(),
        next
    );
    assert_eq!(
        decrypted_by(&kms, &owner(), &old_blob).unwrap(),
        first,
        "older material still decrypts"
    );
    let rotations = list_rotations(&kms, &owner(), &key, None);
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].key_material_id, next);
    assert_eq!(rotations[0].key_material_state, KeyMaterialState::Current);
    assert_eq!(rotations[0].rotation_type, Some(RotationType::OnDemand));
    assert!(rotations[0].rotation_date.is_some());
    assert_eq!(
        all_materials(&kms, &owner(), &key)[0].key_material_state,
        KeyMaterialState::NonCurrent
    );
}

#[test]
fn rotate_key_on_demand_without_material_pending_rotation_is_invalid_state() {
    let kms = kms();
    let key = external_key(&kms);
    let arn = arn(&kms, &key);
    let e = rotate(&kms, &owner(), &key).unwrap_err();
    assert_eq!(e.code(), "KMSInvalidStateException");
    assert_eq!(e.to_string(), format!("{arn} is pending import."));

    import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    let e = rotate(&kms, &owner(), &key).unwrap_err();
    assert_eq!(e.code(), "KMSInvalidStateException");
    assert_eq!(
        e.to_string(),
        format!("No available key material pending rotation for the key: {arn}.")
    );
}

#[test]
fn reimporting_different_bytes_as_existing_key_material_is_incorrect_key_material() {
    let kms = kms();
    let key = external_key(&kms);
    let a = material();
    let a_id = import(&kms, &owner(), &key, &a, Import::default()).unwrap();
    let b = material();
    let b_id = new_material(&kms, &owner(), &key, &b).unwrap();
    let existing = |bytes: &[u8], id| import_existing(&kms, &owner(), &key, bytes, id);
    for (bytes, id) in [
        (material(), None),
        (material(), Some(a_id.as_str())),
        // Material of the key, but not the one named.
        (b.clone(), Some(a_id.as_str())),
    ] {
        let e = existing(&bytes, id).unwrap_err();
        assert_eq!(e.code(), "IncorrectKeyMaterialException", "{e:?}");
    }
    // The same bytes, named or not, are accepted.
    assert_eq!(existing(&a, Some(&a_id)).unwrap(), a_id);
    assert_eq!(existing(&b, None).unwrap(), b_id);
    // The default import type after the first import is EXISTING.
    let e = import(&kms, &owner(), &key, &material(), Import::default()).unwrap_err();
    assert_eq!(e.code(), "IncorrectKeyMaterialException");
    assert_eq!(
        describe(&kms, &owner(), &key).current_key_material_id,
        Some(a_id)
    );
}

#[test]
fn new_key_material_takes_no_key_material_id_one_pending_at_a_time_and_never_known_bytes() {
    let kms = kms();
    let key = external_key(&kms);
    let a = material();
    let a_id = import(&kms, &owner(), &key, &a, Import::default()).unwrap();
    let e = import(
        &kms,
        &owner(),
        &key,
        &material(),
        Import {
            import_type: Some(ImportType::NewKeyMaterial),
            key_material_id: Some(&a_id),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "ValidationException");
    let e = new_material(&kms, &owner(), &key, &a).unwrap_err();
    assert_eq!(
        e.code(),
        "IncorrectKeyMaterialException",
        "already the key's"
    );
    new_material(&kms, &owner(), &key, &material()).unwrap();
    let e = new_material(&kms, &owner(), &key, &material()).unwrap_err();
    assert_eq!(
        e.code(),
        "KMSInvalidStateException",
        "one pending at a time"
    );
}

#[test]
fn deleting_a_non_current_material_makes_the_key_pending_import_until_it_is_reimported() {
    let kms = kms();
    let key = external_key(&kms);
    let a = material();
    let a_id = import(&kms, &owner(), &key, &a, Import::default()).unwrap();
    let blob_a = encrypt(&kms, &owner(), &key).unwrap();
    let b_id = new_material(&kms, &owner(), &key, &material()).unwrap();
    rotate(&kms, &owner(), &key).unwrap();
    let blob_b = encrypt(&kms, &owner(), &key).unwrap();

    assert_eq!(
        delete_material(&kms, &owner(), &key, Some(&a_id)).unwrap(),
        Some(a_id.clone())
    );
    let m = describe(&kms, &owner(), &key);
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert_eq!(m.current_key_material_id, Some(b_id.clone()));
    // Every Decrypt refuses while the key is PendingImport, whichever
    // material made the ciphertext; nothing of the material is in the error.
    let pending = format!("{} is pending import.", m.arn);
    for blob in [&blob_a, &blob_b] {
        let e = decrypted_by(&kms, &owner(), blob).unwrap_err();
        assert_eq!(e.code(), "KMSInvalidStateException");
        assert_eq!(e.to_string(), pending);
    }
    assert_eq!(
        encrypt(&kms, &owner(), &key).unwrap_err().to_string(),
        pending
    );
    let listed = all_materials(&kms, &owner(), &key);
    assert_eq!(listed[0].import_state, Some(ImportState::PendingImport));
    assert_eq!(listed[0].expiration_model, None);
    assert_eq!(listed[1].import_state, Some(ImportState::Imported));

    import_existing(&kms, &owner(), &key, &a, Some(&a_id)).unwrap();
    assert_eq!(describe(&kms, &owner(), &key).key_state, KeyState::Enabled);
    assert_eq!(decrypted_by(&kms, &owner(), &blob_a).unwrap(), a_id);
    assert_eq!(decrypted_by(&kms, &owner(), &blob_b).unwrap(), b_id);
}

#[test]
fn deleting_without_key_material_id_deletes_the_current_material_and_keeps_its_id() {
    let kms = kms();
    let key = external_key(&kms);
    let a_id = import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    assert_eq!(
        delete_material(&kms, &owner(), &key, None).unwrap(),
        Some(a_id.clone())
    );
    let m = describe(&kms, &owner(), &key);
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert_eq!(m.current_key_material_id, Some(a_id));
    assert_eq!(m.expiration_model, None);
    // Deleting again has no effect.
    delete_material(&kms, &owner(), &key, None).unwrap();
    assert_eq!(
        describe(&kms, &owner(), &key).key_state,
        KeyState::PendingImport
    );
}

#[test]
fn deleting_material_pending_rotation_removes_it_and_the_key_stays_enabled() {
    let kms = kms();
    let key = external_key(&kms);
    import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    let pending = material();
    let pending_id = new_material(&kms, &owner(), &key, &pending).unwrap();
    assert_eq!(
        delete_material(&kms, &owner(), &key, Some(&pending_id)).unwrap(),
        Some(pending_id.clone())
    );
    assert_eq!(describe(&kms, &owner(), &key).key_state, KeyState::Enabled);
    assert_eq!(all_materials(&kms, &owner(), &key).len(), 1);
    // Not associated with the key for good: it cannot be re-imported as
    // existing material, other material can take its place.
    let e = import(&kms, &owner(), &key, &pending, Import::default()).unwrap_err();
    assert_eq!(e.code(), "IncorrectKeyMaterialException");
    let other = new_material(&kms, &owner(), &key, &material()).unwrap();
    rotate(&kms, &owner(), &key).unwrap();
    assert_eq!(
        describe(&kms, &owner(), &key).current_key_material_id,
        Some(other)
    );
    let e = delete_material(&kms, &owner(), &key, Some(&pending_id)).unwrap_err();
    assert_eq!(e.code(), "NotFoundException");
}

#[test]
fn each_material_expires_on_its_own_valid_to_and_the_key_shows_the_earliest() {
    let kms = kms();
    let key = external_key(&kms);
    let now = kms.clock.now_ms();
    import(
        &kms,
        &owner(),
        &key,
        &material(),
        Import {
            valid_to_ms: Some(now + 10 * DAY_MS),
            ..Default::default()
        },
    )
    .unwrap();
    import(
        &kms,
        &owner(),
        &key,
        &material(),
        Import {
            import_type: Some(ImportType::NewKeyMaterial),
            valid_to_ms: Some(now + DAY_MS),
            ..Default::default()
        },
    )
    .unwrap();
    // Material pending rotation is not the key's yet: not in its ValidTo.
    let valid_to = describe(&kms, &owner(), &key).valid_to.unwrap();
    assert_eq!((valid_to * 1000.0).round() as i64, now + 10 * DAY_MS);
    kms.clock.advance_ms(DAY_MS);
    assert_eq!(kms.sweep().materials_expired.unwrap(), 1);
    assert_eq!(
        describe(&kms, &owner(), &key).key_state,
        KeyState::Enabled,
        "only the pending one expired"
    );
    assert_eq!(all_materials(&kms, &owner(), &key).len(), 1);
    assert!(encrypt(&kms, &owner(), &key).is_ok());
    new_material(&kms, &owner(), &key, &material()).unwrap();
    kms.clock.advance_ms(9 * DAY_MS);
    assert!(
        encrypt(&kms, &owner(), &key).is_err(),
        "refused before the sweep"
    );
    let e = rotate(&kms, &owner(), &key).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{} is pending import.", arn(&kms, &key))
    );
    assert_eq!(
        describe(&kms, &owner(), &key).key_state,
        KeyState::PendingImport
    );
    assert_eq!(kms.sweep().materials_expired.unwrap(), 1);
    let m = describe(&kms, &owner(), &key);
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert!(m.current_key_material_id.is_some());
}

#[test]
fn imported_materials_and_the_one_pending_rotation_survive_a_restart() {
    let db = SqliteKms::new();
    let open = || db.open();
    let kms = open();
    let key = external_key(&kms);
    let a_id = import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    let blob_a = encrypt(&kms, &owner(), &key).unwrap();
    let b_id = new_material(&kms, &owner(), &key, &material()).unwrap();
    rotate(&kms, &owner(), &key).unwrap();
    let blob_b = encrypt(&kms, &owner(), &key).unwrap();
    let c_id = new_material(&kms, &owner(), &key, &material()).unwrap();
    let deleted = external_key(&kms);
    let d_id = import(&kms, &owner(), &deleted, &material(), Import::default()).unwrap();
    delete_material(&kms, &owner(), &deleted, None).unwrap();
    drop(kms);

    let kms = open();
    assert_eq!(decrypted_by(&kms, &owner(), &blob_a).unwrap(), a_id);
    assert_eq!(decrypted_by(&kms, &owner(), &blob_b).unwrap(), b_id);
    let states: Vec<_> = all_materials(&kms, &owner(), &key)
        .into_iter()
        .map(|e| (e.key_material_id, e.key_material_state))
        .collect();
    assert_eq!(
        states,
        vec![
            (a_id, KeyMaterialState::NonCurrent),
            (b_id, KeyMaterialState::Current),
            (c_id.clone(), KeyMaterialState::PendingRotation),
        ]
    );
    rotate(&kms, &owner(), &key).unwrap();
    assert_eq!(
        decrypted_by(&kms, &owner(), &encrypt(&kms, &owner(), &key).unwrap()).unwrap(),
        c_id
    );
    let m = describe(&kms, &owner(), &deleted);
    assert_eq!(m.key_state, KeyState::PendingImport);
    assert_eq!(m.current_key_material_id, Some(d_id));
}

#[test]
fn import_into_another_accounts_key_is_refused_before_anything_else() {
    let kms = kms();
    let key = external_key(&kms);
    let arn = arn(&kms, &key);
    let e = kms
        .import_key_material(
            &root("444455556666"),
            ImportKeyMaterialRequest {
                key_id: arn.clone(),
                import_token: Blob(b"not a token".to_vec()),
                encrypted_key_material: Blob(vec![0; 256]),
                // Invalid too: the refusal comes first.
                valid_to: Some(0.0),
                import_type: Some(ImportType::ExistingKeyMaterial),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException", "{e:?}");
    let e = kms
        .delete_imported_key_material(
            &root("444455556666"),
            DeleteImportedKeyMaterialRequest {
                key_id: arn,
                key_material_id: Some("00".repeat(32)),
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "AccessDeniedException", "{e:?}");
}

#[test]
fn an_import_token_of_one_key_does_not_import_new_material_into_another() {
    let kms = kms();
    let key = external_key(&kms);
    let other = external_key(&kms);
    import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    import(&kms, &owner(), &other, &material(), Import::default()).unwrap();
    let p = kms
        .get_parameters_for_import(
            &owner(),
            GetParametersForImportRequest {
                key_id: other.clone(),
                wrapping_algorithm: Some(WrappingAlgorithm::RsaesOaepSha256),
                wrapping_key_spec: Some(WrappingKeySpec::Rsa2048),
            },
        )
        .unwrap();
    let e = kms
        .import_key_material(
            &owner(),
            ImportKeyMaterialRequest {
                key_id: key.clone(),
                import_token: p.import_token,
                encrypted_key_material: Blob(vec![1; 256]),
                expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
                import_type: Some(ImportType::NewKeyMaterial),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "InvalidImportTokenException");
    assert!(
        all_materials(&kms, &owner(), &key).len() == 1,
        "nothing pending"
    );
}

#[test]
fn rotate_key_on_demand_checks_the_key_state_before_the_key_type() {
    let kms = kms();
    let rsa = new_key(&kms, Some(KeySpec::Rsa2048), Some(KeyUsage::EncryptDecrypt));
    let e = rotate(&kms, &owner(), &rsa).unwrap_err();
    assert_eq!(e.code(), "UnsupportedOperationException");
    assert_eq!(e.message().as_deref(), Some(""), "AWS sends no text");
    kms.disable_key(
        &owner(),
        DisableKeyRequest {
            key_id: rsa.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        rotate(&kms, &owner(), &rsa).unwrap_err().code(),
        "DisabledException"
    );
}

#[test]
fn the_on_demand_rotation_limit_counts_imported_rotations_with_aws_text() {
    let kms = kms();
    let key = external_key(&kms);
    import(&kms, &owner(), &key, &material(), Import::default()).unwrap();
    for _ in 0..ON_DEMAND_ROTATION_LIMIT {
        new_material(&kms, &owner(), &key, &material()).unwrap();
        rotate(&kms, &owner(), &key).unwrap();
    }
    new_material(&kms, &owner(), &key, &material()).unwrap();
    let e = rotate(&kms, &owner(), &key).unwrap_err();
    assert_eq!(e.code(), "LimitExceededException");
    assert_eq!(
        e.to_string(),
        format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
            arn(&kms, &key)
        )
    );
}

/// What a node on a shared database does with what another committed:
/// every stored key and material document, applied (applying twice is
/// harmless).
fn catch_up(node: &Kms, store: &MemoryStore) {
    let mut docs = store.load("kms.key").unwrap();
    docs.extend(store.load("kms.material").unwrap());
    let remote: Vec<ferrokms_store::RemoteDoc<'_>> = docs
        .iter()
        .map(|d| ferrokms_store::RemoteDoc {
            kind: &d.kind,
            id: &d.id,
            body: Some(&d.body),
        })
        .collect();
    node.apply_remote(&remote).unwrap();
}

#[test]
fn nodes_on_one_store_share_imported_materials_their_rotation_and_deletion() {
    let store = Arc::new(MemoryStore::default());
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let a = Kms::open(store.clone(), sealer.clone()).unwrap();
    let b = Kms::open(store.clone(), sealer).unwrap();
    let key = external_key(&a);
    let first = import(&a, &owner(), &key, &material(), Import::default()).unwrap();
    catch_up(&b, &store);
    let blob_first = encrypt(&b, &owner(), &key).unwrap();
    let next = new_material(&a, &owner(), &key, &material()).unwrap();
    catch_up(&b, &store);
    assert_eq!(
        all_materials(&b, &owner(), &key)[1].key_material_state,
        KeyMaterialState::PendingRotation
    );
    // b rotates to the material a imported (b reads it from the store).
    rotate(&b, &owner(), &key).unwrap();
    catch_up(&a, &store);
    assert_eq!(
        decrypted_by(&b, &owner(), &encrypt(&a, &owner(), &key).unwrap()).unwrap(),
        next
    );
    assert_eq!(decrypted_by(&a, &owner(), &blob_first).unwrap(), first);
    delete_material(&a, &owner(), &key, Some(&first)).unwrap();
    catch_up(&b, &store);
    assert_eq!(
        describe(&b, &owner(), &key).key_state,
        KeyState::PendingImport
    );
    assert_eq!(
        decrypted_by(&b, &owner(), &blob_first).unwrap_err().code(),
        "KMSInvalidStateException"
    );
}
