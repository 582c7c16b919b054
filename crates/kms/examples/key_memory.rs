//! Where the memory of a loaded key goes: creates N symmetric keys with the
//! default key policy through `Kms::create_key`, reopens the store with
//! `Kms::open` (as a restarted server does) and reports how much the
//! process's resident set grew, per key, for the loaded keys alone.
//!
//! This example uses the system allocator, so that heaptrack (or valgrind
//! --tool=dhat) sees every allocation; with `--exit-while-loaded` it exits
//! with the reopened keys still allocated, and `heaptrack_print --print-leaks`
//! then lists, by call site, what the loaded keys hold:
//!
//! ```sh
//! cargo run --release -p ferrokms-kms --example key_memory -- 20000
//! heaptrack $CARGO_TARGET_DIR/release/examples/key_memory 20000 --exit-while-loaded
//! ```

// A measuring tool: a failed unwrap is a failed measurement.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use ferrokms_kms::api::CreateKeyRequest;
use ferrokms_kms::{Caller, Kms};
use ferrokms_store::{Sealer, SqliteStore};
use ferrokms_types::{AccountId, Region};

fn main() {
    let mut args = std::env::args().skip(1);
    let (cmd, path) = (args.next(), args.next());
    let (Some(cmd), Some(path)) = (cmd, path) else {
        eprintln!("usage: key_memory create DB N | key_memory load DB [--exit-while-loaded]");
        std::process::exit(2);
    };
    let store = Arc::new(SqliteStore::open(std::path::Path::new(&path)).unwrap());
    // The root key only has to be the same in both runs of this tool.
    let sealer = Arc::new(Sealer::from_bytes(&[7u8; 32]).unwrap());
    let t0 = std::time::Instant::now();
    let kms = Kms::open(store, sealer).unwrap();
    match cmd.as_str() {
        "create" => {
            let n: usize = args.next().and_then(|a| a.parse().ok()).expect("N");
            let root = Caller::root(
                AccountId::parse("111122223333").unwrap(),
                Region::parse("us-east-1").unwrap(),
            );
            for _ in 0..n {
                kms.create_key(&root, CreateKeyRequest::default()).unwrap();
            }
            println!("created {n} keys in {:?}", t0.elapsed());
        }
        _ => {
            println!(
                "loaded {} keys in {:?}; size_of KeyRecord {} MaterialInfo {} KeyMaterial {} KeyAddr {}",
                kms.key_count(),
                t0.elapsed(),
                std::mem::size_of::<ferrokms_kms::model::KeyRecord>(),
                std::mem::size_of::<ferrokms_kms::model::MaterialInfo>(),
                std::mem::size_of::<ferrokms_kms::keymat::KeyMaterial>(),
                std::mem::size_of::<ferrokms_kms::ids::KeyAddr>(),
            );
            if args.next().as_deref() == Some("--exit-while-loaded") {
                std::process::exit(0);
            }
        }
    }
}
