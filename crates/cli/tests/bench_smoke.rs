//! `ferrokms bench` works end to end: a real `ferrokms serve --in-memory
//! --dev` on a free loopback port, driven for one second per operation.
//! No assertion on speed: only that requests went through without errors.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use ferrokms_testkit::process::ServerProcess;

fn bench(endpoint: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(["bench", "--endpoint", endpoint])
        .args(["--access-key-id", "test", "--secret-access-key", "x"])
        .args(extra)
        .output()
        .expect("run ferrokms bench")
}

#[test]
fn bench_drives_the_server_without_errors() {
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_ferrokms"), &["--in-memory", "--dev"]);
    let out = bench(
        &server.endpoint,
        &[
            "--op",
            "encrypt",
            "--op",
            "sign-ecc-p256",
            "--op",
            "create-key",
            "--duration",
            "1",
            "--connections",
            "2",
            "--max-requests",
            "2000",
            "--json",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ops: Vec<&str> = reports.iter().map(|r| r["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["encrypt", "sign-ecc-p256", "create-key"]);
    for r in &reports {
        assert!(r["requests"].as_u64().unwrap() > 0, "no requests: {r}");
        assert_eq!(r["errors"].as_u64().unwrap(), 0, "errors: {r}");
        assert!(r["first_error"].is_null(), "{r}");
        // Bounded: at most about --max-requests (one per connection over).
        assert!(r["requests"].as_u64().unwrap() <= 2002, "{r}");
    }
}

#[test]
fn bench_refuses_non_loopback_endpoints() {
    let out = bench("http://192.0.2.1:7300", &["--duration", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

/// The million-key tool writes real, loadable keys: after seeding, the data
/// directory opens with exactly that many keys, and a second run adds more.
#[test]
fn seed_keys_adds_loadable_keys_to_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let seed = |count: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
            .args(["seed-keys", "--data-dir"])
            .arg(dir.path())
            .args(["--count", count, "--threads", "3"])
            .env("FERROKMS_LOG", "warn")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    assert!(seed("25").contains("created 25 keys"));
    assert!(seed("7").contains("the store now holds 32"));
    let opts = ferrokms_server::setup::Options::new(ferrokms_server::setup::Storage::DataDir(
        dir.path().to_path_buf(),
    ));
    let (app, _) = ferrokms_server::setup::open(&opts).unwrap();
    assert_eq!(app.kms.key_count(), 32);
}
