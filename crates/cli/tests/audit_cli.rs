//! `ferrokms audit` and `ferrokms policy explain/lint`, run as the binary,
//! into a closed pipe, on an audit trail written in the server's record
//! shape.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

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

/// Standard output whose reader has already gone: the next write fails
/// with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// The status after the reader has gone: what a shell shows for a tool
/// killed by SIGPIPE (128 + 13).
const BROKEN_PIPE: Option<i32> = Some(141);

/// Runs `ferrokms ARGS` into a closed pipe: (status, stderr).
fn into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
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
    for extra in [&[][..], &["--json"]] {
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
