//! The document contract every store keeps, checked the same way against
//! each backend: the in-memory store, SQLite and PostgreSQL (the last only
//! when `FERROKMS_TEST_PG_URL` names a test server; otherwise it says so and
//! checks nothing). The durable stores are then reopened, as a restart or a
//! second node would, and must hold what was acknowledged.

#![allow(clippy::unwrap_used)]

mod common;

use std::ops::ControlFlow;

use common::{fresh_database, put};
use ferrokms_store::{Change, MemoryStore, PostgresStore, SqliteStore, Store};

/// Puts, replaces and deletes documents of two kinds and reads them back
/// every way a store offers; leaves key `a` = "updated" and alias `a`.
fn exercise(store: &dyn Store) {
    store
        .apply(&[
            put("key", "b", b"2"),
            put("key", "a", b"1"),
            put("alias", "a", b"x"),
        ])
        .unwrap();
    let keys = store.load("key").unwrap();
    assert_eq!(
        keys.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["a", "b"],
        "documents load in id order"
    );
    store
        .apply(&[
            put("key", "a", b"updated"),
            Change::Delete {
                kind: "key",
                id: "b".into(),
            },
        ])
        .unwrap();
    let keys = store.load("key").unwrap();
    assert_eq!(keys.len(), 1, "a deleted document is not loaded");
    assert_eq!(keys[0].body, b"updated");
    assert_eq!(
        store.get("key", "a").unwrap().as_deref(),
        Some(&b"updated"[..])
    );
    assert_eq!(store.get("key", "b").unwrap(), None);
    assert_eq!(store.load("alias").unwrap().len(), 1, "kinds are apart");
    assert!(store.load("nothing").unwrap().is_empty());
    // One batch may change a document twice: the last change wins.
    store
        .apply(&[
            put("key", "twice", b"first"),
            put("key", "twice", b"second"),
        ])
        .unwrap();
    assert_eq!(
        store.get("key", "twice").unwrap().as_deref(),
        Some(&b"second"[..])
    );
    store
        .apply(&[Change::Delete {
            kind: "key",
            id: "twice".into(),
        }])
        .unwrap();
    let mut seen = Vec::new();
    store
        .load_each("key", &mut |id, body| {
            seen.push((id.to_string(), body.to_vec()));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(seen, [("a".to_string(), b"updated".to_vec())]);
    let mut calls = 0;
    store
        .load_each("alias", &mut |_, _| {
            calls += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(calls, 1, "load_each stops when told");
}

/// What `exercise` left, as a reopened store must show it.
fn holds_what_was_acknowledged(store: &dyn Store) {
    let keys = store.load("key").unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].body, b"updated");
    assert_eq!(store.load("alias").unwrap().len(), 1);
}

#[test]
fn memory_store_keeps_the_contract() {
    exercise(&MemoryStore::default());
}

#[test]
fn sqlite_store_keeps_the_contract_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    exercise(&SqliteStore::open(&path).unwrap());
    holds_what_was_acknowledged(&SqliteStore::open(&path).unwrap());
}

#[test]
fn postgres_store_keeps_the_contract_and_survives_reopen() {
    let Some(url) = fresh_database() else { return };
    exercise(&PostgresStore::open(&url).unwrap());
    // Reopening does not redo the schema and sees the same documents.
    holds_what_was_acknowledged(&PostgresStore::open(&url).unwrap());
}

#[test]
fn deletions_of_kinds_remove_every_document_of_them_and_nothing_else() {
    let store = MemoryStore::default();
    store
        .apply(&[
            put("key", "a", b"x"),
            put("key", "b", b"x"),
            put("alias", "c", b"x"),
            put("user", "d", b"x"),
        ])
        .unwrap();
    let changes = store.deletions_of(&["key", "alias"]).unwrap();
    assert_eq!(changes.len(), 3);
    store.apply(&changes).unwrap();
    assert!(store.load("key").unwrap().is_empty());
    assert!(store.load("alias").unwrap().is_empty());
    assert_eq!(store.load("user").unwrap().len(), 1);
}
