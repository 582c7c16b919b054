//! GetKeyLastUsage: the last successful cryptographic use of a key, kept in
//! memory, written in batches by `Kms::flush_usage`, loaded at start and
//! merged from other nodes without ever moving backwards.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ferrokms_kms::api::{DecryptRequest, GetKeyLastUsageRequest};
use ferrokms_kms::replica::RemoteDoc;
use ferrokms_kms::usage::{with_request_ids, RequestIds};
use ferrokms_kms::{Kms, KmsError};
use ferrokms_store::{MemoryStore, Sealer, Store};
use ferrokms_testkit::kms::{encrypt, new_key, owner};

fn open(store: &Arc<MemoryStore>, sealer: &Arc<Sealer>) -> Kms {
    Kms::open(store.clone() as Arc<dyn Store>, sealer.clone()).unwrap()
}

fn last_usage(kms: &Kms, key_id: &str) -> Option<(String, f64, Option<String>)> {
    kms.get_key_last_usage(
        &owner(),
        GetKeyLastUsageRequest {
            key_id: key_id.into(),
            ..Default::default()
        },
    )
    .unwrap()
    .key_last_usage
    .map(|u| (u.operation.to_string(), u.timestamp, u.kms_request_id))
}

#[test]
fn a_key_never_used_has_no_last_usage_and_tracking_starts_at_its_creation() {
    let kms = open(&Arc::default(), &Arc::new(Sealer::ephemeral().unwrap()));
    let key = new_key(&kms, None, None);
    let out = kms
        .get_key_last_usage(
            &owner(),
            GetKeyLastUsageRequest {
                key_id: key.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(out.key_last_usage.is_none());
    assert_eq!(out.key_id, key);
    assert_eq!(out.tracking_start_date, out.key_creation_date);
}

#[test]
fn last_usage_survives_a_flush_and_a_restart_on_the_same_store() {
    let store = Arc::new(MemoryStore::default());
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let kms = open(&store, &sealer);
    let key = new_key(&kms, None, None);
    let ids = RequestIds {
        request_id: 0x0123_4567_89ab_4cde_8f01_2345_6789_abcd,
        event_id: 0x1111_2222_3333_4444_8555_6666_7777_8888,
    };
    let blob = encrypt(&kms, &owner(), &key).unwrap();
    with_request_ids(ids, || {
        kms.decrypt(
            &owner(),
            DecryptRequest {
                ciphertext_blob: Some(ferrokms_kms::api::Blob(blob)),
                ..Default::default()
            },
        )
        .unwrap()
    });
    let before = last_usage(&kms, &key).unwrap();
    assert_eq!(before.0, "Decrypt");
    assert_eq!(
        before.2.as_deref(),
        Some("01234567-89ab-4cde-8f01-23456789abcd")
    );
    assert_eq!(kms.flush_usage().unwrap(), 1);
    assert_eq!(kms.flush_usage().unwrap(), 0, "unchanged: nothing to write");
    drop(kms);
    let reopened = open(&store, &sealer);
    assert_eq!(last_usage(&reopened, &key), Some(before));
    assert_eq!(reopened.flush_usage().unwrap(), 0, "loaded usage is clean");
}

#[test]
fn usage_not_flushed_before_a_restart_is_lost_and_nothing_else() {
    let store = Arc::new(MemoryStore::default());
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let kms = open(&store, &sealer);
    let key = new_key(&kms, None, None);
    encrypt(&kms, &owner(), &key).unwrap();
    drop(kms);
    let reopened = open(&store, &sealer);
    assert_eq!(last_usage(&reopened, &key), None);
}

#[test]
fn a_usage_document_from_another_node_never_moves_last_usage_backwards() {
    let store_a = Arc::new(MemoryStore::default());
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let a = open(&store_a, &sealer);
    let key = new_key(&a, None, None);
    encrypt(&a, &owner(), &key).unwrap();
    a.flush_usage().unwrap();
    let doc = store_a
        .load("kms.usage")
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    // An older use (as another node would have written it) is ignored...
    let mut old: serde_json::Value = serde_json::from_slice(&doc.body).unwrap();
    let now_ms = old["ms"].as_i64().unwrap();
    old["ms"] = (now_ms - 60_000).into();
    old["op"] = "Sign".into();
    let old_body = serde_json::to_vec(&old).unwrap();
    a.apply_remote(&[RemoteDoc {
        kind: "kms.usage",
        id: &doc.id,
        body: Some(&old_body),
    }])
    .unwrap();
    assert_eq!(last_usage(&a, &key).unwrap().0, "Encrypt");
    // ...a later one is taken, and is not written back (it is stored).
    let mut later = old.clone();
    later["ms"] = (now_ms + 60_000).into();
    later["op"] = "GenerateDataKey".into();
    let later_body = serde_json::to_vec(&later).unwrap();
    a.apply_remote(&[RemoteDoc {
        kind: "kms.usage",
        id: &doc.id,
        body: Some(&later_body),
    }])
    .unwrap();
    let got = last_usage(&a, &key).unwrap();
    assert_eq!(got.0, "GenerateDataKey");
    assert_eq!(got.1, (now_ms + 60_000) as f64 / 1000.0);
    assert_eq!(a.flush_usage().unwrap(), 0);
}

#[test]
fn get_key_last_usage_does_not_accept_an_alias() {
    let kms = open(&Arc::default(), &Arc::new(Sealer::ephemeral().unwrap()));
    let err = kms
        .get_key_last_usage(
            &owner(),
            GetKeyLastUsageRequest {
                key_id: "alias/some-alias".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(matches!(err, KmsError::NotFound(_)), "{err:?}");
}
