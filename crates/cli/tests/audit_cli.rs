//! `ferrokms audit`, run as the binary: time ranges (`--since`, `--until`)
//! and output into a closed pipe, on an audit trail written in the server's
//! record shape with chosen times.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn ferrokms(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(args)
        .env("FERROKMS_LOG", "warn")
        .output()
        .expect("run ferrokms")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of epoch seconds, as the server writes `eventTime`.
fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// One Encrypt record by the account's root user, in the server's shape.
fn record(time: &str, request_id: &str) -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "Root", "principalId": "111122223333",
            "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLE"},
        "eventTime": time, "eventSource": "kms.amazonaws.com", "eventName": "Encrypt",
        "awsRegion": "us-east-1", "sourceIPAddress": "127.0.0.1", "userAgent": "test",
        "requestParameters": {"keyId": KEY, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
        "responseElements": null, "requestID": request_id, "eventID": request_id,
        "readOnly": true,
        "resources": [{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": KEY}],
        "eventType": "AwsApiCall", "managementEvent": true,
        "recipientAccountId": "111122223333", "eventCategory": "Management",
        "ferrokmsAuthorization": [{"action": "kms:Encrypt", "allowed": true,
            "statements": ["key policy #0 (Enable IAM User Permissions) Allow"]}]
    })
}

/// A data dir whose audit trail holds these (time, request id) records.
fn trail(records: &[(String, &str)]) -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("audit");
    std::fs::create_dir_all(&dir).unwrap();
    let mut lines = String::new();
    for (time, id) in records {
        lines.push_str(&record(time, id).to_string());
        lines.push('\n');
    }
    std::fs::write(dir.join("audit.jsonl"), lines).unwrap();
    let path = tmp.path().to_str().unwrap().to_string();
    (tmp, path)
}

/// The request ids `ferrokms audit --json ARGS` selects.
fn selected(dir: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["audit", "--data-dir", dir, "--json"];
    all.extend_from_slice(args);
    let o = ferrokms(&all);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["requestID"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn audit_since_garbage_is_refused_with_exit_2() {
    let (_tmp, dir) = trail(&[("2026-11-24T01:00:00Z".into(), "a")]);
    for (flag, value) in [
        ("--since", "garbage"),
        ("--until", "garbage"),
        ("--since", "yesterday"),
        ("--since", "2026-11-24T01:00:00"),
        ("--since", "1w"),
        ("--until", "2026-02-30"),
        ("--since", "1795482000"),
    ] {
        let o = ferrokms(&["audit", "--data-dir", &dir, flag, value]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(o.stdout.is_empty(), "{flag} {value}: {}", text(&o.stdout));
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(
            err.starts_with(&format!(
                "ferrokms: {flag} '{value}' is not a time: give RFC 3339"
            )),
            "{err}"
        );
    }
    // A range that cannot hold anything is a mistake too.
    let o = ferrokms(&[
        "audit",
        "--data-dir",
        &dir,
        "--since",
        "2026-11-25",
        "--until",
        "2026-11-24",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("is not before --until"));
}

#[test]
fn audit_since_relative_hour_excludes_older_records() {
    let now = now_secs();
    let (_tmp, dir) = trail(&[
        (rfc3339(now - 3 * 86_400), "three-days-old"),
        (rfc3339(now - 2 * 3600), "two-hours-old"),
        (rfc3339(now - 10 * 60), "ten-minutes-old"),
    ]);
    assert_eq!(selected(&dir, &["--since", "1h"]), ["ten-minutes-old"]);
    assert_eq!(
        selected(&dir, &["--since", "7d"]),
        ["three-days-old", "two-hours-old", "ten-minutes-old"]
    );
    assert_eq!(
        selected(&dir, &["--since", "30m"]),
        ["ten-minutes-old"],
        "minutes"
    );
    assert_eq!(selected(&dir, &["--since", "45s"]), Vec::<String>::new());
    assert_eq!(
        selected(&dir, &["--since", "1d", "--until", "1h"]),
        ["two-hours-old"]
    );
    assert_eq!(
        selected(&dir, &["--until", "2d"]),
        ["three-days-old"],
        "--until takes ages too"
    );
}

#[test]
fn audit_since_and_until_compare_instants_not_text() {
    let (_tmp, dir) = trail(&[
        ("2026-11-23T23:59:59Z".into(), "before-midnight"),
        ("2026-11-24T01:00:00Z".into(), "one-am"),
        ("2026-11-24T01:00:01Z".into(), "one-am-and-a-second"),
    ]);
    // 02:00 at +01:00 is 01:00Z: the record at 01:00Z is at or after it,
    // although its text sorts before the argument's.
    assert_eq!(
        selected(&dir, &["--since", "2026-11-24T02:00:00+01:00"]),
        ["one-am", "one-am-and-a-second"]
    );
    assert_eq!(
        selected(&dir, &["--until", "2026-11-24T02:00:00+01:00"]),
        ["before-midnight"]
    );
    // A bare date is midnight UTC.
    assert_eq!(
        selected(&dir, &["--since", "2026-11-24"]),
        ["one-am", "one-am-and-a-second"]
    );
    assert_eq!(
        selected(&dir, &["--until", "2026-11-24"]),
        ["before-midnight"]
    );
    // Fractions and negative offsets.
    assert_eq!(
        selected(&dir, &["--since", "2026-11-24T01:00:00.5Z"]),
        ["one-am-and-a-second"]
    );
    assert_eq!(
        selected(&dir, &["--since", "2026-11-23T20:00:00-05:00"]),
        ["one-am", "one-am-and-a-second"]
    );
    // The table agrees with --json.
    let o = ferrokms(&["audit", "--data-dir", &dir, "--since", "2026-11-24"]);
    let out = text(&o.stdout);
    assert!(
        !out.contains("before-midnight") && out.contains("one-am"),
        "{out}"
    );
}

#[test]
fn audit_help_names_the_accepted_time_forms() {
    let o = ferrokms(&["audit", "--help"]);
    let help = text(&o.stdout);
    for needle in [
        "RFC 3339",
        "2026-11-24T02:00:00+01:00",
        "midnight UTC",
        "45s, 30m, 1h, 7d",
    ] {
        assert!(help.contains(needle), "{needle} missing in {help}");
    }
}

/// Standard output whose reader has already gone: the next write fails
/// with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// The status after the reader has gone: what a shell shows for a tool
/// killed by SIGPIPE (128 + 13).
pub const BROKEN_PIPE: Option<i32> = Some(141);

/// Runs `ferrokms ARGS` into a closed pipe: (status, stderr).
pub fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(args)
        .env("FERROKMS_LOG", "warn")
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (o.status.code(), text(&o.stderr))
}

#[test]
fn audit_into_a_closed_pipe_exits_quietly() {
    let records: Vec<(String, String)> = (0..2000)
        .map(|i| (rfc3339(1_795_482_000 + i), format!("request-{i}")))
        .collect();
    let refs: Vec<(String, &str)> = records
        .iter()
        .map(|(t, id)| (t.clone(), id.as_str()))
        .collect();
    let (_tmp, dir) = trail(&refs);
    for extra in [&[][..], &["--json"], &["--since", "2026-11-24"]] {
        let mut args = vec!["audit", "--data-dir", &dir];
        args.extend_from_slice(extra);
        let (status, stderr) = into_closed_pipe(&args);
        assert_eq!(status, BROKEN_PIPE, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    // `policy explain` and `policy lint` print reports the same way.
    let (status, stderr) = into_closed_pipe(&[
        "policy",
        "explain",
        "--data-dir",
        &dir,
        "--request-id",
        "request-7",
    ]);
    assert_eq!((status, stderr.as_str()), (BROKEN_PIPE, ""));
    let policy = Path::new(&dir).join("policy.json");
    std::fs::write(&policy, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#).unwrap();
    let (status, stderr) = into_closed_pipe(&["policy", "lint", policy.to_str().unwrap()]);
    // Not 0: lint's status is its answer (1: error findings), and a reader
    // that went away must not turn it into "no findings".
    assert_eq!((status, stderr.as_str()), (BROKEN_PIPE, ""));
    // Another write error is reported, not swallowed.
    if Path::new("/dev/full").exists() {
        let o = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
            .args(["audit", "--data-dir", &dir])
            .env("FERROKMS_LOG", "warn")
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr).contains("cannot write to standard output"),
            "{}",
            text(&o.stderr)
        );
    }
}
