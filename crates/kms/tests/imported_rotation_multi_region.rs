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

use ferrokms_kms::api::{
    CancelKeyDeletionRequest, CreateKeyRequest, ReplicateKeyRequest, ScheduleKeyDeletionRequest,
};
use ferrokms_kms::model::{ImportState, KeyMaterialState, KeyState, Origin, RotationType};
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_testkit::kms::material::{
    all_materials, delete_material, import, import_existing, material, new_material, rotate, Import,
};
use ferrokms_testkit::kms::{decrypted_by, describe, encrypt, kms, owner, SqliteKms, ACCT};
use ferrokms_types::{AccountId, Region};

const WEST: &str = "us-west-2";
const EU: &str = "eu-west-1";

/// The owner of the keys, calling in `region`.
fn in_region(region: &str) -> Caller {
    Caller::root(
        AccountId::parse(ACCT).unwrap(),
        Region::parse(region).unwrap(),
    )
}

/// (KeyMaterialId, KeyMaterialState) of every material of the key.
fn states(kms: &Kms, who: &Caller, key: &str) -> Vec<(String, KeyMaterialState)> {
    all_materials(kms, who, key)
        .into_iter()
        .map(|e| (e.key_material_id, e.key_material_state))
        .collect()
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
    let first_id = import(kms, &owner(), &key, &first, Import::default()).unwrap();
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
            import(kms, &in_region(region), &key, &first, Import::default()).unwrap(),
            first_id
        );
    }
    (key, first, first_id)
}

#[test]
fn new_key_material_is_pending_multi_region_import_and_rotation_until_every_replica_has_it() {
    let kms = kms();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let next = material();
    let next_id = new_material(&kms, &owner(), &key, &next).unwrap();
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
        import_existing(&kms, &in_region(WEST), &key, &next, Some(&next_id)).unwrap(),
        next_id
    );
    for who in [owner(), in_region(WEST)] {
        assert_eq!(states(&kms, &who, &key)[1], (next_id.clone(), waiting));
    }
    let listed = &all_materials(&kms, &in_region(WEST), &key)[1];
    assert_eq!(listed.import_state, Some(ImportState::Imported));
    assert!(listed.rotation_type.is_none() && listed.rotation_date.is_none());

    // The last replica: every related key has it now.
    import_existing(&kms, &in_region(EU), &key, &next, Some(&next_id)).unwrap();
    for who in [owner(), in_region(WEST), in_region(EU)] {
        assert_eq!(
            states(&kms, &who, &key),
            vec![
                (first_id.clone(), KeyMaterialState::Current),
                (next_id.clone(), KeyMaterialState::PendingRotation)
            ]
        );
        // Not used before the rotation.
        let blob = encrypt(&kms, &who, &key).unwrap();
        assert_eq!(decrypted_by(&kms, &who, &blob).unwrap(), first_id);
    }
}

#[test]
fn rotate_key_on_demand_on_the_primary_needs_the_material_in_every_replica_then_rotates_them_all() {
    let kms = kms();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let old_blob = encrypt(&kms, &in_region(EU), &key).unwrap();
    let next = material();
    let next_id = new_material(&kms, &owner(), &key, &next).unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, Some(&next_id)).unwrap();

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

    import_existing(&kms, &in_region(EU), &key, &next, Some(&next_id)).unwrap();
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
        let blob = encrypt(&kms, &who, &key).unwrap();
        assert_eq!(decrypted_by(&kms, &who, &blob).unwrap(), next_id);
    }
    assert_eq!(
        decrypted_by(&kms, &in_region(EU), &old_blob).unwrap(),
        first_id,
        "older material still decrypts"
    );
}

#[test]
fn replicas_take_no_new_key_material_of_their_own() {
    let kms = kms();
    let (key, _, _) = mrk_with_replicas(&kms);
    let west = in_region(WEST);
    assert!(matches!(
        new_material(&kms, &west, &key, &material()),
        Err(KmsError::UnsupportedOperation(_))
    ));
    // Bytes the primary does not hold pending rotation are not the key's.
    assert!(matches!(
        import(&kms, &west, &key, &material(), Import::default()),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    assert_eq!(states(&kms, &west, &key).len(), 1);
}

#[test]
fn different_bytes_in_a_replica_under_the_primarys_key_material_id_are_refused() {
    let kms = kms();
    let (key, _, _) = mrk_with_replicas(&kms);
    let next_id = new_material(&kms, &owner(), &key, &material()).unwrap();
    let west = in_region(WEST);
    for id in [Some(next_id.as_str()), None] {
        assert!(matches!(
            import_existing(&kms, &west, &key, &material(), id),
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
    let kms = kms();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let next = material();
    let next_id = new_material(&kms, &owner(), &key, &next).unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, Some(&next_id)).unwrap();
    import_existing(&kms, &in_region(EU), &key, &next, Some(&next_id)).unwrap();

    // Deleting it from a replica leaves the others alone.
    let del = |who: &Caller| delete_material(&kms, who, &key, Some(&next_id)).unwrap();
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
    let other_id = new_material(&kms, &owner(), &key, &other).unwrap();
    import_existing(&kms, &in_region(WEST), &key, &other, Some(&other_id)).unwrap();
    import_existing(&kms, &in_region(EU), &key, &other, Some(&other_id)).unwrap();
    rotate(&kms, &owner(), &key).unwrap();
    assert_eq!(
        describe(&kms, &in_region(EU), &key).current_key_material_id,
        Some(other_id)
    );
}

#[test]
fn a_replica_pending_deletion_does_not_hold_up_rotation_and_comes_back_pending_import() {
    let kms = kms();
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
    let next_id = new_material(&kms, &owner(), &key, &next).unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, Some(&next_id)).unwrap();
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
        import_existing(&kms, &eu, &key, &material(), Some(&next_id)),
        Err(KmsError::IncorrectKeyMaterial(_))
    ));
    import_existing(&kms, &eu, &key, &next, Some(&next_id)).unwrap();
    assert_eq!(describe(&kms, &eu, &key).key_state, KeyState::Enabled);
    let blob = encrypt(&kms, &eu, &key).unwrap();
    assert_eq!(decrypted_by(&kms, &eu, &blob).unwrap(), next_id);
}

#[test]
fn a_multi_region_rotation_in_progress_survives_a_restart() {
    let db = SqliteKms::new();
    let open = || db.open();
    let kms = open();
    let (key, _, first_id) = mrk_with_replicas(&kms);
    let next = material();
    let next_id = new_material(&kms, &owner(), &key, &next).unwrap();
    import_existing(&kms, &in_region(WEST), &key, &next, Some(&next_id)).unwrap();
    drop(kms);

    let kms = open();
    assert_eq!(
        states(&kms, &in_region(WEST), &key)[1],
        (
            next_id.clone(),
            KeyMaterialState::PendingMultiRegionImportAndRotation
        )
    );
    import_existing(&kms, &in_region(EU), &key, &next, Some(&next_id)).unwrap();
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
        let blob = encrypt(&kms, &who, &key).unwrap();
        assert_eq!(decrypted_by(&kms, &who, &blob).unwrap(), next_id);
    }
}
