//! The HTTP ceiling server answers every operation the generator drives, so
//! `bench/compare.sh` can measure it for each of them. No timing assertions.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrokms_bench::{Load, Op, Target};

struct Ceiling(Child);

impl Drop for Ceiling {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_operation_runs_against_the_ceiling() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokms-ceiling"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = Ceiling(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let authority = line
        .trim()
        .strip_prefix("ferrokms-ceiling listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_string();
    let target = Target {
        authority,
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
        key_id: None,
    };
    let load = Load {
        connections: 2,
        duration: Duration::from_secs(1),
        max_requests: 50,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for op in Op::ALL.into_iter().chain(Op::OPT_IN) {
        let report = runtime
            .block_on(ferrokms_bench::run(&target, op, load))
            .unwrap_or_else(|e| panic!("{}: {e}", op.name()));
        assert!(report.requests > 0, "{report:?}");
        assert_eq!(report.errors, 0, "{report:?}");
        assert!(report.requests <= 52, "{report:?}");
    }
}

#[test]
fn ceiling_refuses_non_loopback_addresses() {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokms-ceiling"))
        .arg("0.0.0.0:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
}
