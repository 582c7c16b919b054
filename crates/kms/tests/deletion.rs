//! ScheduleKeyDeletion really deletes: once the waiting period has passed
//! (moved forward with the service clock), the key, its material and its
//! aliases are gone, durably.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use ferrokms_kms::api::{
    CreateAliasRequest, CreateKeyRequest, DescribeKeyRequest, ListAliasesRequest,
    ScheduleKeyDeletionRequest,
};
use ferrokms_kms::{Kms, KmsError};
use ferrokms_store::{MemoryStore, Sealer, Store};
use ferrokms_testkit::kms::owner;

#[test]
fn key_is_deleted_with_its_aliases_only_after_the_pending_window() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    let sealer = Arc::new(Sealer::ephemeral().unwrap());
    let kms = Kms::open(store.clone(), sealer.clone()).unwrap();
    let c = owner();
    let key = kms
        .create_key(&c, CreateKeyRequest::default())
        .unwrap()
        .key_metadata;
    kms.create_alias(
        &c,
        CreateAliasRequest {
            alias_name: "alias/doomed".into(),
            target_key_id: key.key_id.clone(),
        },
    )
    .unwrap();
    let scheduled = kms
        .schedule_key_deletion(
            &c,
            ScheduleKeyDeletionRequest {
                key_id: key.key_id.clone(),
                pending_window_in_days: Some(7),
            },
        )
        .unwrap();
    assert_eq!(scheduled.pending_window_in_days, 7);

    // Six days later the key still exists.
    kms.clock.advance_ms(6 * 24 * 3600 * 1000);
    assert_eq!(kms.purge_due_keys().unwrap(), 0);
    let describe = || {
        kms.describe_key(
            &c,
            DescribeKeyRequest {
                key_id: key.key_id.clone(),
                grant_tokens: None,
            },
        )
    };
    assert!(describe().is_ok());

    // After the seventh day it is gone, and so is its alias.
    kms.clock.advance_ms(24 * 3600 * 1000 + 1000);
    assert_eq!(kms.purge_due_keys().unwrap(), 1);
    assert!(matches!(describe(), Err(KmsError::NotFound(_))));
    let aliases = kms
        .list_aliases(&c, ListAliasesRequest::default())
        .unwrap()
        .aliases;
    // Only the predefined alias/aws/* entries (no target) remain.
    assert!(
        aliases.iter().all(|a| a.target_key_id.is_none()),
        "{aliases:?}"
    );

    // The deletion is durable: a reopened service does not see the key.
    let reopened = Kms::open(store, sealer).unwrap();
    assert_eq!(reopened.key_count(), 0);
}
