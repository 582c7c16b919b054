//! Rotation of key material: on demand and on schedule (moved forward with
//! the service clock); every older ciphertext still decrypts, also after a
//! restart on the same store.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ferrokms_kms::api::{
    DecryptRequest, DisableKeyRequest, EnableKeyRotationRequest, EncryptRequest,
    GetKeyRotationStatusRequest, ListKeyRotationsRequest, ScheduleKeyDeletionRequest, SecretBlob,
};
use ferrokms_kms::model::{IncludeKeyMaterial, KeyMaterialState, KeySpec, KeyUsage, RotationType};
use ferrokms_kms::{Kms, KmsError};
use ferrokms_store::{MemoryStore, Sealer, SqliteStore, Store};
use ferrokms_testkit::kms::material::{list_rotations, rotate};
use ferrokms_testkit::kms::{describe, kms, new_key, owner, SqliteKms, DAY_MS};
use zeroize::Zeroizing;

fn encrypt(kms: &Kms, key_id: &str, text: &[u8]) -> Vec<u8> {
    kms.encrypt(
        &owner(),
        EncryptRequest {
            key_id: key_id.into(),
            plaintext: SecretBlob(Zeroizing::new(text.to_vec())),
            ..Default::default()
        },
    )
    .unwrap()
    .ciphertext_blob
    .0
}

/// Plaintext and the material id that made the ciphertext.
fn decrypt(kms: &Kms, blob: &[u8]) -> (Vec<u8>, String) {
    let out = kms
        .decrypt(
            &owner(),
            DecryptRequest {
                ciphertext_blob: Some(ferrokms_kms::api::Blob(blob.to_vec())),
                ..Default::default()
            },
        )
        .unwrap();
    (out.plaintext.0.to_vec(), out.key_material_id.unwrap())
}

fn current_material(kms: &Kms, key_id: &str) -> String {
    describe(kms, &owner(), key_id)
        .current_key_material_id
        .unwrap()
}

fn list(kms: &Kms, key_id: &str, all: bool) -> Vec<(String, Option<RotationType>)> {
    list_rotations(
        kms,
        &owner(),
        key_id,
        all.then_some(IncludeKeyMaterial::AllKeyMaterial),
    )
    .into_iter()
    .map(|e| (e.key_material_id, e.rotation_type))
    .collect()
}

fn next_rotation(kms: &Kms, key_id: &str) -> Option<f64> {
    kms.get_key_rotation_status(
        &owner(),
        GetKeyRotationStatusRequest {
            key_id: key_id.into(),
            grant_tokens: None,
        },
    )
    .unwrap()
    .next_rotation_date
}

/// Three rotations (two scheduled, one on demand), then every ciphertext
/// decrypts, before and after a restart on the same store and root key.
fn three_rotations_then_restart(store: Arc<dyn Store>, reopen: impl Fn() -> Arc<dyn Store>) {
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let kms = Kms::open(store, sealer.clone()).unwrap();
    let c = owner();
    let key = new_key(&kms, None, None);
    let mut blobs = vec![(encrypt(&kms, &key, b"v0"), current_material(&kms, &key))];
    assert!(list(&kms, &key, false).is_empty());
    assert_eq!(list(&kms, &key, true).len(), 1);

    kms.enable_key_rotation(
        &c,
        EnableKeyRotationRequest {
            key_id: key.clone(),
            rotation_period_in_days: Some(90),
        },
    )
    .unwrap();
    let first_next = next_rotation(&kms, &key).unwrap();

    // 89 days: nothing due.
    kms.clock.advance_ms(89 * DAY_MS);
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
    // 91 days: one automatic rotation, and the schedule moves on.
    kms.clock.advance_ms(2 * DAY_MS);
    assert_eq!(kms.rotate_due_keys().unwrap(), 1);
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
    let second_next = next_rotation(&kms, &key).unwrap();
    assert!(second_next >= first_next + 90.0 * 86400.0);
    blobs.push((encrypt(&kms, &key, b"v1"), current_material(&kms, &key)));

    // On demand: the schedule does not move.
    assert!(rotate(&kms, &owner(), &key)
        .unwrap()
        .starts_with("arn:aws:kms:us-east-1:111122223333:key/"));
    assert_eq!(next_rotation(&kms, &key).unwrap(), second_next);
    blobs.push((encrypt(&kms, &key, b"v2"), current_material(&kms, &key)));

    // Three missed periods: one catch-up rotation, not three.
    kms.clock.advance_ms(3 * 91 * DAY_MS);
    assert_eq!(kms.rotate_due_keys().unwrap(), 1);
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
    blobs.push((encrypt(&kms, &key, b"v3"), current_material(&kms, &key)));

    let ids: std::collections::HashSet<&String> = blobs.iter().map(|(_, m)| m).collect();
    assert_eq!(ids.len(), 4, "every rotation makes a new material id");
    let types: Vec<Option<RotationType>> =
        list(&kms, &key, false).into_iter().map(|e| e.1).collect();
    assert_eq!(
        types,
        vec![
            Some(RotationType::Automatic),
            Some(RotationType::OnDemand),
            Some(RotationType::Automatic)
        ]
    );
    let all = list(&kms, &key, true);
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], (blobs[0].1.clone(), None));

    let check = |kms: &Kms| {
        for (i, (blob, mid)) in blobs.iter().enumerate() {
            let (plain, used) = decrypt(kms, blob);
            assert_eq!(plain, format!("v{i}").as_bytes());
            assert_eq!(&used, mid);
        }
        assert_eq!(current_material(kms, &key), blobs[3].1);
    };
    check(&kms);
    drop(kms);
    let kms = Kms::open(reopen(), sealer).unwrap();
    check(&kms);
    assert_eq!(list(&kms, &key, false).len(), 3);
    // And the reopened service keeps rotating from the stored schedule.
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
}

#[test]
fn rotations_keep_old_ciphertexts_memory_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let again = store.clone();
    three_rotations_then_restart(store, move || again.clone());
}

#[test]
fn rotations_keep_old_ciphertexts_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kms.sqlite");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    three_rotations_then_restart(store, || {
        Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn Store>
    });
}

#[test]
fn the_26th_on_demand_rotation_is_refused() {
    let kms = kms();
    let key = new_key(&kms, None, None);
    for _ in 0..25 {
        rotate(&kms, &owner(), &key).unwrap();
    }
    let e = rotate(&kms, &owner(), &key).unwrap_err();
    assert_eq!(e.code(), "LimitExceededException", "{e:?}");
    assert_eq!(list(&kms, &key, false).len(), 25);
    // Automatic rotations do not count against the limit.
    kms.enable_key_rotation(
        &owner(),
        EnableKeyRotationRequest {
            key_id: key.clone(),
            rotation_period_in_days: Some(90),
        },
    )
    .unwrap();
    kms.clock.advance_ms(91 * DAY_MS);
    assert_eq!(kms.rotate_due_keys().unwrap(), 1);
}

#[test]
fn only_enabled_symmetric_keys_rotate() {
    let kms = kms();
    let c = owner();
    let code = |r: Result<String, KmsError>| r.unwrap_err().code();
    for (spec, usage) in [
        (KeySpec::EccNistP256, KeyUsage::SignVerify),
        (KeySpec::Hmac256, KeyUsage::GenerateVerifyMac),
    ] {
        let k = new_key(&kms, Some(spec), Some(usage));
        assert_eq!(
            code(rotate(&kms, &owner(), &k)),
            "UnsupportedOperationException"
        );
        let e = kms
            .list_key_rotations(
                &c,
                ListKeyRotationsRequest {
                    key_id: k,
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(e.code(), "UnsupportedOperationException");
    }

    let disabled = new_key(&kms, None, None);
    kms.enable_key_rotation(
        &c,
        EnableKeyRotationRequest {
            key_id: disabled.clone(),
            rotation_period_in_days: Some(90),
        },
    )
    .unwrap();
    kms.disable_key(
        &c,
        DisableKeyRequest {
            key_id: disabled.clone(),
            grant_tokens: None,
        },
    )
    .unwrap();
    assert_eq!(code(rotate(&kms, &owner(), &disabled)), "DisabledException");

    let doomed = new_key(&kms, None, None);
    kms.schedule_key_deletion(
        &c,
        ScheduleKeyDeletionRequest {
            key_id: doomed.clone(),
            pending_window_in_days: Some(30),
        },
    )
    .unwrap();
    assert_eq!(
        code(rotate(&kms, &owner(), &doomed)),
        "KMSInvalidStateException"
    );

    // A disabled key is not rotated on schedule; enabled again, it catches up.
    kms.clock.advance_ms(91 * DAY_MS);
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
    kms.enable_key(
        &c,
        ferrokms_kms::api::EnableKeyRequest {
            key_id: disabled.clone(),
            grant_tokens: None,
        },
    )
    .unwrap();
    assert_eq!(kms.rotate_due_keys().unwrap(), 1);
}

#[test]
fn list_key_rotations_pages() {
    let kms = kms();
    let key = new_key(&kms, None, None);
    for _ in 0..5 {
        rotate(&kms, &owner(), &key).unwrap();
    }
    let mut marker = None;
    let mut seen = Vec::new();
    loop {
        let page = kms
            .list_key_rotations(
                &owner(),
                ListKeyRotationsRequest {
                    key_id: key.clone(),
                    include_key_material: Some(IncludeKeyMaterial::AllKeyMaterial),
                    limit: Some(2),
                    marker: marker.take(),
                },
            )
            .unwrap();
        assert!(page.rotations.len() <= 2);
        assert_eq!(page.truncated, page.next_marker.is_some());
        seen.extend(page.rotations);
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(seen[0].rotation_type.is_none() && seen[0].rotation_date.is_none());
    let states: Vec<KeyMaterialState> = seen.iter().map(|e| e.key_material_state).collect();
    assert_eq!(states[5], KeyMaterialState::Current);
    assert!(states[..5]
        .iter()
        .all(|s| *s == KeyMaterialState::NonCurrent));
    assert_eq!(seen[5].key_material_id, current_material(&kms, &key));
    let e = kms
        .list_key_rotations(
            &owner(),
            ListKeyRotationsRequest {
                key_id: key,
                marker: Some("bogus".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), "InvalidMarkerException");
}

#[test]
fn first_automatic_rotation_is_one_period_after_rotation_was_enabled() {
    let kms = kms();
    let key = new_key(&kms, None, None);
    // Enabled 200 days after the key was created: due 90 days after that,
    // not 90 days after creation (which would be at once).
    kms.clock.advance_ms(200 * DAY_MS);
    let enabled_at = kms.clock.now_ms();
    kms.enable_key_rotation(
        &owner(),
        EnableKeyRotationRequest {
            key_id: key.clone(),
            rotation_period_in_days: Some(90),
        },
    )
    .unwrap();
    let next = next_rotation(&kms, &key).unwrap();
    assert!((next * 1000.0 - (enabled_at + 90 * DAY_MS) as f64).abs() < 1000.0);
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
    kms.clock.advance_ms(89 * DAY_MS);
    assert_eq!(kms.rotate_due_keys().unwrap(), 0);
    kms.clock.advance_ms(DAY_MS + 1000);
    assert_eq!(kms.rotate_due_keys().unwrap(), 1);
}

/// Stored material ids sort as text (`KEY/10` before `KEY/2`); a key with
/// more than ten materials still reloads each at its own version.
#[test]
fn more_than_ten_materials_reload_each_at_its_version_sqlite_store() {
    let db = SqliteKms::new();
    let kms = db.open();
    let key = new_key(&kms, None, None);
    kms.enable_key_rotation(
        &owner(),
        EnableKeyRotationRequest {
            key_id: key.clone(),
            rotation_period_in_days: Some(90),
        },
    )
    .unwrap();
    let mut blobs = vec![(encrypt(&kms, &key, b"v0"), current_material(&kms, &key))];
    for i in 1..=11 {
        kms.clock.advance_ms(91 * DAY_MS);
        assert_eq!(kms.rotate_due_keys().unwrap(), 1);
        let text = format!("v{i}");
        blobs.push((
            encrypt(&kms, &key, text.as_bytes()),
            current_material(&kms, &key),
        ));
    }
    drop(kms);
    let kms = db.open();
    for (i, (blob, mid)) in blobs.iter().enumerate() {
        let (plain, used) = decrypt(&kms, blob);
        assert_eq!(plain, format!("v{i}").as_bytes());
        assert_eq!(&used, mid);
    }
    assert_eq!(current_material(&kms, &key), blobs[11].1);
}
