//! What the store's integration tests share: a throwaway PostgreSQL
//! database and a short way to write a `Put`.

#![allow(dead_code)] // each test file uses its own part of it

use ferrokms_store::Change;

/// A fresh database on the test server (`FERROKMS_TEST_PG_URL`, a superuser
/// URL on loopback that `scripts/test.sh` sets), or `None`, said on stderr,
/// when there is none.
pub fn fresh_database() -> Option<String> {
    let Ok(base) = std::env::var("FERROKMS_TEST_PG_URL") else {
        eprintln!("FERROKMS_TEST_PG_URL is not set: PostgreSQL store tests skipped");
        return None;
    };
    let name = format!("store_{}", uuid::Uuid::new_v4().simple());
    let mut admin = postgres::Client::connect(&base, postgres::NoTls).expect("test PostgreSQL");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("URL with a database");
    Some(format!("{prefix}/{name}"))
}

/// `Change::Put` of `body` as document `kind`/`id`.
pub fn put(kind: &'static str, id: &str, body: &[u8]) -> Change {
    Change::Put {
        kind,
        id: id.into(),
        body: body.to_vec(),
    }
}
