//! The PostgreSQL store against a real PostgreSQL: what several nodes rely
//! on (the change feed in
//! commit order, tombstones, the cluster write lock).
//!
//! Needs `FERROKMS_TEST_PG_URL` (a superuser URL on loopback;
//! `scripts/test.sh` starts a throwaway server and sets it). Without it the
//! tests say so on stderr and check nothing. The document contract it
//! shares with the other stores is checked in `contract.rs`.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use ferrokms_store::{Change, PostgresStore, Store};

mod common;

use common::{fresh_database, put};

#[test]
fn change_feed_reports_each_batch_once_in_commit_order_with_tombstones() {
    let Some(url) = fresh_database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    let feed = store.shared().expect("PostgreSQL is a shared store");
    assert_eq!(feed.head().unwrap(), 0);
    store
        .apply(&[put("k", "1", b"a"), put("k", "2", b"b")])
        .unwrap();
    let after_first = feed.head().unwrap();
    store
        .apply(&[Change::Delete {
            kind: "k",
            id: "1".into(),
        }])
        .unwrap();
    let head = feed.head().unwrap();
    assert_eq!(head, after_first + 1, "one sequence number per batch");
    let all = feed.changes_since(0).unwrap();
    assert_eq!(all.len(), 2);
    let deleted = all.iter().find(|c| c.id == "1").unwrap();
    assert_eq!(deleted.body, None, "a deletion is reported as a tombstone");
    assert_eq!(deleted.seq, head);
    let kept = all.iter().find(|c| c.id == "2").unwrap();
    assert_eq!(kept.seq, after_first);
    let newer = feed.changes_since(after_first).unwrap();
    assert_eq!(newer.len(), 1);
    assert_eq!(newer[0].id, "1");
    assert!(feed.changes_since(head).unwrap().is_empty());
    assert_eq!(feed.last_committed(), head);
}

#[test]
fn cluster_write_lock_excludes_a_second_node_until_released() {
    let Some(url) = fresh_database() else { return };
    let a = PostgresStore::open(&url).unwrap();
    let b = PostgresStore::open(&url).unwrap();
    a.shared().unwrap().lock_writes().unwrap();
    a.apply(&[put("k", "under-lock", b"1")]).unwrap();
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        b.shared().unwrap().lock_writes().unwrap();
        tx.send(started.elapsed()).unwrap();
        // A write by b outside its own lock also waits for a's lock.
        b.shared().unwrap().unlock_writes();
        b
    });
    // b must still be waiting while a holds the lock.
    assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
    a.shared().unwrap().unlock_writes();
    let waited = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("b got the lock");
    assert!(waited >= Duration::from_millis(400));
    let b = waiter.join().unwrap();
    b.apply(&[put("k", "after", b"2")]).unwrap();
    assert_eq!(a.load("k").unwrap().len(), 2);
}

#[test]
fn a_write_outside_the_lock_waits_for_another_nodes_locked_write() {
    let Some(url) = fresh_database() else { return };
    let a = PostgresStore::open(&url).unwrap();
    let b = PostgresStore::open(&url).unwrap();
    a.shared().unwrap().lock_writes().unwrap();
    let (tx, rx) = mpsc::channel();
    let writer = std::thread::spawn(move || {
        b.apply(&[put("k", "unlocked", b"1")]).unwrap();
        tx.send(()).unwrap();
    });
    assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
    a.apply(&[put("k", "locked", b"1")]).unwrap();
    a.shared().unwrap().unlock_writes();
    rx.recv_timeout(Duration::from_secs(10))
        .expect("b's write went through");
    writer.join().unwrap();
    // The locked write committed first, so it has the lower sequence number.
    let feed = a.shared().unwrap().changes_since(0).unwrap();
    let order: Vec<&str> = feed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, ["locked", "unlocked"]);
}

#[test]
fn a_stopped_database_gives_an_error_not_a_hang() {
    // Nothing listens on this port: connecting fails at once.
    let started = Instant::now();
    let err = PostgresStore::open("postgres://ferrokms@127.0.0.1:1/none").err();
    assert!(err.is_some());
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn connections_killed_while_idle_are_replaced_on_next_use_without_an_error() {
    let Some(url) = fresh_database() else { return };
    let store = PostgresStore::open(&url).unwrap();
    // Use every pooled connection, then have the server end them all (as a
    // PostgreSQL restart does) while they sit idle.
    for i in 0..8 {
        store.apply(&[put("k", &format!("{i}"), b"v")]).unwrap();
    }
    let db = url.rsplit('/').next().unwrap().to_string();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let killed: i64 = admin
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .unwrap()
        .get(0);
    assert!(killed >= 1);
    // Reads and writes go through on fresh connections.
    for i in 0..8 {
        assert_eq!(store.load("k").unwrap().len(), 8 + i);
        store.apply(&[put("k", &format!("new{i}"), b"v")]).unwrap();
    }
    let feed = store.shared().unwrap();
    feed.lock_writes().unwrap();
    feed.unlock_writes();
}
