//! Rotation of the imported key material of multi-Region symmetric EXTERNAL
//! keys (AWS: ImportKeyMaterial, RotateKeyOnDemand, ListKeyRotations,
//! DeleteImportedKeyMaterial): new material goes into the primary
//! (NEW_KEY_MATERIAL), then the same bytes into every replica
//! (EXISTING_KEY_MATERIAL, the same KeyMaterialId); until every related
//! key has it, it is PENDING_MULTI_REGION_IMPORT_AND_ROTATION, then
//! PENDING_ROTATION; RotateKeyOnDemand on the primary then makes it current
//! in every related key at once.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use ferrokms_kms::api::{
    Blob, CancelKeyDeletionRequest, CreateKeyRequest, DecryptRequest,
    DeleteImportedKeyMaterialRequest, DescribeKeyRequest, EncryptRequest,
    GetParametersForImportRequest, ImportKeyMaterialRequest, ListKeyRotationsRequest,
    ReplicateKeyRequest, RotateKeyOnDemandRequest, RotationsListEntry, ScheduleKeyDeletionRequest,
    SecretBlob,
};
use ferrokms_kms::model::{
    ExpirationModel, ImportState, ImportType, IncludeKeyMaterial, KeyMaterialState, KeyMetadata,
    KeyState, Origin, RotationType, WrappingAlgorithm, WrappingKeySpec,
};
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_store::{MemoryStore, Sealer, SqliteStore, Store};
use ferrokms_testkit::kms::{owner, ACCT};
use ferrokms_types::{AccountId, Region};
use zeroize::Zeroizing;

const WEST: &str = "us-west-2";
const EU: &str = "eu-west-1";

fn memory_kms() -> Kms {
    Kms::open(
        Arc::new(MemoryStore::default()),
        Arc::new(Sealer::ephemeral().unwrap()),
    )
    .unwrap()
}

/// The owner of the keys, calling in `region`.
fn in_region(region: &str) -> Caller {
    Caller::root(
        AccountId::parse(ACCT).unwrap(),
        Region::parse(region).unwrap(),
    )
}

fn material() -> Vec<u8> {
    let mut v = vec![0u8; 32];
    SystemRandom::new().fill(&mut v).unwrap();
    v
}

fn import(
    kms: &Kms,
    who: &Caller,
    key: &str,
    bytes: &[u8],
    import_type: Option<ImportType>,
    key_material_id: Option<&str>,
) -> Result<String, KmsError> {
    let p = kms
        .get_parameters_for_import(
            who,
            GetParametersForImportRequest {
                key_id: key.into(),
                wrapping_algorithm: Some(WrappingAlgorithm::RsaesOaepSha256),
                wrapping_key_spec: Some(WrappingKeySpec::Rsa2048),
            },
        )
        .unwrap();
    let public =
        OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&p.public_key.0).unwrap())
            .unwrap();
    let mut wrapped = vec![0u8; public.ciphertext_size()];
    let wrapped = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, bytes, &mut wrapped, None)
        .unwrap()
        .to_vec();
    kms.import_key_material(
        who,
        ImportKeyMaterialRequest {
            key_id: key.into(),
            import_token: p.import_token,
            encrypted_key_material: Blob(wrapped),
            valid_to: None,
            expiration_model: Some(ExpirationModel::KeyMaterialDoesNotExpire),
            import_type,
            key_material_description: None,
            key_material_id: key_material_id.map(str::to_string),
        },
    )
    .map(|r| r.key_material_id)
}

/// EXISTING_KEY_MATERIAL with the KeyMaterialId, as AWS's steps say.
fn import_existing(
    kms: &Kms,
    who: &Caller,
    key: &str,
    bytes: &[u8],
    id: &str,
) -> Result<String, KmsError> {
    import(
        kms,
        who,
        key,
        bytes,
        Some(ImportType::ExistingKeyMaterial),
        Some(id),
    )
}

fn rotate(kms: &Kms, who: &Caller, key: &str) -> Result<String, KmsError> {
    kms.rotate_key_on_demand(
        who,
        RotateKeyOnDemandRequest {
            key_id: key.into(),
            ..Default::default()
        },
    )
    .map(|r| r.key_id)
}

fn describe(kms: &Kms, who: &Caller, key: &str) -> KeyMetadata {
    kms.describe_key(
        who,
        DescribeKeyRequest {
            key_id: key.into(),
            grant_tokens: None,
        },
    )
    .unwrap()
    .key_metadata
}

fn all_materials(kms: &Kms, who: &Caller, key: &str) -> Vec<RotationsListEntry> {
    kms.list_key_rotations(
        who,
        ListKeyRotationsRequest {
            key_id: key.into(),
            include_key_material: Some(IncludeKeyMaterial::AllKeyMaterial),
            ..Default::default()
        },
    )
    .unwrap()
    .rotations
}

/// (KeyMaterialId, KeyMaterialState) of every material of the key.
fn states(kms: &Kms, who: &Caller, key: &str) -> Vec<(String, KeyMaterialState)> {
    all_materials(kms, who, key)
        .into_iter()
        .map(|e| (e.key_material_id, e.key_material_state))
        .collect()
}

fn encrypt(kms: &Kms, who: &Caller, key: &str) -> Vec<u8> {
    kms.encrypt(
        who,
        EncryptRequest {
            key_id: key.into(),
            plaintext: SecretBlob(Zeroizing::new(b"secret".to_vec())),
            ..Default::default()
        },
    )
    .unwrap()
    .ciphertext_blob
    .0
}

/// The material id Decrypt names.
fn decrypt(kms: &Kms, who: &Caller, blob: &[u8]) -> Result<String, KmsError> {
    let out = kms.decrypt(
        who,
        DecryptRequest {
            ciphertext_blob: Some(Blob(blob.to_vec())),
            ..Default::default()
        },
    )?;
    assert_eq!(out.plaintext.0.as_slice(), b"secret");
    Ok(out.key_material_id.unwrap())
}

/// A multi-Region EXTERNAL primary in us-east-1 with replicas in
/// us-west-2 and eu-west-1, all holding the same first material. Returns
/// the key id, the first material and its id.
fn mrk_with_replicas(kms: &Kms) -> (String, Vec<u8>, String) {
    let key = kms
        .create_key(
            &owner(),
            CreateKeyRequest {
                origin: Some(Origin::External),
                multi_region: Some(true),
                ..Default::default()
            },
        )
        .unwrap()
        .key_metadata
        .key_id;
    let first = material();
    let first_id = import(kms, &owner(), &key, &first, None, None).unwrap();
    for region in [WEST, EU] {
        kms.replicate_key(
            &owner(),
            ReplicateKeyRequest {
                key_id: key.clone(),
                replica_region: region.into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            import(kms, &in_region(region), &key, &first, None, None).unwrap(),
            first_id
        );
    }
    (key, first, first_id)
}

#[test]
fn new_key_material_is_pending_multi_region_import_and_rotation_until_every_replica_has_it() {
    let kms = memory_kms();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let next = material();
    let next_id = import(
        &kms,
        &owner(),
        &key,
        &next,
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    let waiting = KeyMaterialState::PendingMultiRegionImportAndRotation;
    assert_eq!(
        states(&kms, &owner(), &key),
        vec![
            (first_id.clone(), KeyMaterialState::Current),
            (next_id.clone(), waiting)
        ]
    );
    // A replica lists the new material once it has imported it.
    assert_eq!(states(&kms, &in_region(WEST), &key).len(), 1);

    // The same bytes give the same KeyMaterialId in a replica.
    assert_eq!(
        import_existing(&kms, &in_region(WEST), &key, &next, &next_id).unwrap(),
        next_id
    );
    for who in [owner(), in_region(WEST)] {
        assert_eq!(states(&kms, &who, &key)[1], (next_id.clone(), waiting));
    }
    let listed = &all_materials(&kms, &in_region(WEST), &key)[1];
    assert_eq!(listed.import_state, Some(ImportState::Imported));
    assert!(listed.rotation_type.is_none() && listed.rotation_date.is_none());

    // The last replica: every related key has it now.
    import_existing(&kms, &in_region(EU), &key, &next, &next_id).unwrap();
    for who in [owner(), in_region(WEST), in_region(EU)] {
        assert_eq!(
            states(&kms, &who, &key),
            vec![
                (first_id.clone(), KeyMaterialState::Current),
                (next_id.clone(), KeyMaterialState::PendingRotation)
            ]
        );
        // Not used before the rotation.
        let blob = encrypt(&kms, &who, &key);
        assert_eq!(decrypt(&kms, &who, &blob).unwrap(), first_id);
    }
}

#[test]
fn rotate_key_on_demand_on_the_primary_needs_the_material_in_every_replica_then_rotates_them_all() {
    let kms = memory_kms();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let old_blob = encrypt(&kms, &in_region(EU), &key);
    let next = material();
    let next_id = import(
        &kms,
        &owner(),
        &key,
        &next,
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, &next_id).unwrap();

    // eu-west-1 lacks it: refused, and nothing changes anywhere.
    let replica_arn = describe(&kms, &in_region(EU), &key).arn;
    match rotate(&kms, &owner(), &key) {
        Err(KmsError::InvalidState(m)) => {
            assert!(m.contains(&replica_arn) && m.contains(&next_id), "{m}");
        }
        other => panic!("expected KMSInvalidStateException, got {other:?}"),
    }
    for who in [owner(), in_region(WEST), in_region(EU)] {
        assert_eq!(
            describe(&kms, &who, &key).current_key_material_id,
            Some(first_id.clone())
        );
    }

    import_existing(&kms, &in_region(EU), &key, &next, &next_id).unwrap();
    // Replicas rotate with their primary, never on their own.
    assert!(matches!(
        rotate(&kms, &in_region(WEST), &key),
        Err(KmsError::UnsupportedOperation(_))
    ));
    rotate(&kms, &owner(), &key).unwrap();

    let primary_entries = all_materials(&kms, &owner(), &key);
    for who in [owner(), in_region(WEST), in_region(EU)] {
        assert_eq!(
            describe(&kms, &who, &key).current_key_material_id,
            Some(next_id.clone())
        );
        let entries = all_materials(&kms, &who, &key);
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.key_material_id.clone(), e.key_material_state))
                .collect::<Vec<_>>(),
            vec![
                (first_id.clone(), KeyMaterialState::NonCurrent),
                (next_id.clone(), KeyMaterialState::Current)
            ]
        );
        assert_eq!(entries[1].rotation_type, Some(RotationType::OnDemand));
        assert_eq!(entries[1].rotation_date, primary_entries[1].rotation_date);
        let blob = encrypt(&kms, &who, &key);
        assert_eq!(decrypt(&kms, &who, &blob).unwrap(), next_id);
    }
    assert_eq!(
        decrypt(&kms, &in_region(EU), &old_blob).unwrap(),
        first_id,
        "older material still decrypts"
    );
}

#[test]
fn replicas_take_no_new_key_material_of_their_own() {
    let kms = memory_kms();
    let (key, _, _) = mrk_with_replicas(&kms);
    let west = in_region(WEST);
    assert!(matches!(
        import(
            &kms,
            &west,
            &key,
            &material(),
            Some(ImportType::NewKeyMaterial),
            None
        ),
        Err(KmsError::UnsupportedOperation(_))
    ));
    // Bytes the primary does not hold pending rotation are not the key's.
    assert!(matches!(
        import(&kms, &west, &key, &material(), None, None),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    assert_eq!(states(&kms, &west, &key).len(), 1);
}

#[test]
fn different_bytes_in_a_replica_under_the_primarys_key_material_id_are_refused() {
    let kms = memory_kms();
    let (key, _, _) = mrk_with_replicas(&kms);
    let next_id = import(
        &kms,
        &owner(),
        &key,
        &material(),
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    let west = in_region(WEST);
    for id in [Some(next_id.as_str()), None] {
        assert!(matches!(
            import(
                &kms,
                &west,
                &key,
                &material(),
                Some(ImportType::ExistingKeyMaterial),
                id
            ),
            Err(KmsError::IncorrectKeyMaterial(_))
        ));
    }
    assert_eq!(states(&kms, &west, &key).len(), 1);
    assert_eq!(
        states(&kms, &owner(), &key)[1].1,
        KeyMaterialState::PendingMultiRegionImportAndRotation
    );
}

#[test]
fn deleting_material_pending_rotation_in_the_primary_deletes_it_from_the_replicas() {
    let kms = memory_kms();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let next = material();
    let next_id = import(
        &kms,
        &owner(),
        &key,
        &next,
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, &next_id).unwrap();
    import_existing(&kms, &in_region(EU), &key, &next, &next_id).unwrap();

    // Deleting it from a replica leaves the others alone.
    let del = |who: &Caller| {
        kms.delete_imported_key_material(
            who,
            DeleteImportedKeyMaterialRequest {
                key_id: key.clone(),
                key_material_id: Some(next_id.clone()),
            },
        )
        .unwrap()
        .key_material_id
    };
    assert_eq!(del(&in_region(EU)), Some(next_id.clone()));
    assert_eq!(states(&kms, &in_region(EU), &key).len(), 1);
    assert_eq!(
        states(&kms, &owner(), &key)[1].1,
        KeyMaterialState::PendingMultiRegionImportAndRotation
    );
    assert_eq!(states(&kms, &in_region(WEST), &key).len(), 2);

    // Deleting it from the primary deletes it from every replica.
    assert_eq!(del(&owner()), Some(next_id.clone()));
    for who in [owner(), in_region(WEST), in_region(EU)] {
        assert_eq!(
            states(&kms, &who, &key),
            vec![(first_id.clone(), KeyMaterialState::Current)]
        );
        assert_eq!(describe(&kms, &who, &key).key_state, KeyState::Enabled);
    }
    // Other material may take its place, in the same order.
    let other = material();
    let other_id = import(
        &kms,
        &owner(),
        &key,
        &other,
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    import_existing(&kms, &in_region(WEST), &key, &other, &other_id).unwrap();
    import_existing(&kms, &in_region(EU), &key, &other, &other_id).unwrap();
    rotate(&kms, &owner(), &key).unwrap();
    assert_eq!(
        describe(&kms, &in_region(EU), &key).current_key_material_id,
        Some(other_id)
    );
}

#[test]
fn a_replica_pending_deletion_does_not_hold_up_rotation_and_comes_back_pending_import() {
    let kms = memory_kms();
    let (key, _, _) = mrk_with_replicas(&kms);
    let eu = in_region(EU);
    kms.schedule_key_deletion(
        &eu,
        ScheduleKeyDeletionRequest {
            key_id: key.clone(),
            pending_window_in_days: Some(7),
        },
    )
    .unwrap();
    let next = material();
    let next_id = import(
        &kms,
        &owner(),
        &key,
        &next,
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, &next_id).unwrap();
    assert_eq!(
        states(&kms, &owner(), &key)[1].1,
        KeyMaterialState::PendingRotation
    );
    rotate(&kms, &owner(), &key).unwrap();

    // The replica rotated too, its new material not imported.
    let m = describe(&kms, &eu, &key);
    assert_eq!(m.key_state, KeyState::PendingDeletion);
    assert_eq!(m.current_key_material_id, Some(next_id.clone()));
    kms.cancel_key_deletion(
        &eu,
        CancelKeyDeletionRequest {
            key_id: key.clone(),
            grant_tokens: None,
        },
    )
    .unwrap();
    assert_eq!(describe(&kms, &eu, &key).key_state, KeyState::PendingImport);
    let entries = all_materials(&kms, &eu, &key);
    assert_eq!(entries[1].import_state, Some(ImportState::PendingImport));
    // Only the same bytes restore it.
    assert!(matches!(
        import_existing(&kms, &eu, &key, &material(), &next_id),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    import_existing(&kms, &eu, &key, &next, &next_id).unwrap();
    assert_eq!(describe(&kms, &eu, &key).key_state, KeyState::Enabled);
    let blob = encrypt(&kms, &eu, &key);
    assert_eq!(decrypt(&kms, &eu, &blob).unwrap(), next_id);
}

#[test]
fn a_multi_region_rotation_in_progress_survives_a_restart() {
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
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let next = material();
    let next_id = import(
        &kms,
        &owner(),
        &key,
        &next,
        Some(ImportType::NewKeyMaterial),
        None,
    )
    .unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, &next_id).unwrap();
    drop(kms);

    let kms = open();
    assert_eq!(
        states(&kms, &in_region(WEST), &key)[1],
        (
            next_id.clone(),
            KeyMaterialState::PendingMultiRegionImportAndRotation
        )
    );
    import_existing(&kms, &in_region(EU), &key, &next, &next_id).unwrap();
    rotate(&kms, &owner(), &key).unwrap();
    drop(kms);

    let kms = open();
    for who in [owner(), in_region(WEST), in_region(EU)] {
        assert_eq!(
            states(&kms, &who, &key),
            vec![
                (first_id.clone(), KeyMaterialState::NonCurrent),
                (next_id.clone(), KeyMaterialState::Current)
            ]
        );
        let blob = encrypt(&kms, &who, &key);
        assert_eq!(decrypt(&kms, &who, &blob).unwrap(), next_id);
    }
}
