//! `ferrokms audit`, run as the binary: time ranges (`--since`, `--until`),
//! `--key` through aliases, and output into a closed pipe. Time tests read
//! an audit trail written in the server's record shape with chosen times;
//! the `--key` tests read the trail a real server wrote for real SDK
//! requests.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_kms::primitives::Blob;
use ferrokms_testkit::process::{
    read_credentials, run, run_into_closed_pipe, sdk_client, ServerProcess, BROKEN_PIPE,
};
use serde_json::{json, Value};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `YYYY-MM-DDTHH:MM:SSZ` of epoch seconds, as the server writes `eventTime`.
fn rfc3339(secs: i64) -> String {
    ferrokms_policy::Timestamp::from_epoch_seconds(secs).to_string()
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
    let o = run(BIN, &all);
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
        let o = run(BIN, &["audit", "--data-dir", &dir, flag, value]);
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
    let o = run(
        BIN,
        &[
            "audit",
            "--data-dir",
            &dir,
            "--since",
            "2026-11-25",
            "--until",
            "2026-11-24",
        ],
    );
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
    let o = run(BIN, &["audit", "--data-dir", &dir, "--since", "2026-11-24"]);
    let out = text(&o.stdout);
    assert!(
        !out.contains("before-midnight") && out.contains("one-am"),
        "{out}"
    );
}

#[test]
fn audit_help_names_the_accepted_time_forms() {
    let o = run(BIN, &["audit", "--help"]);
    // clap wraps help to the terminal's width: compare with the lines joined.
    let help = text(&o.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for needle in [
        "RFC 3339",
        "2026-11-24T02:00:00+01:00",
        "midnight UTC",
        "45s, 30m, 1h, 7d",
    ] {
        assert!(help.contains(needle), "{needle} missing in {help}");
    }
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
        let (status, stderr) = run_into_closed_pipe(BIN, &args);
        assert_eq!(status, BROKEN_PIPE, "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
    // `policy explain` and `policy lint` print reports the same way.
    let (status, stderr) = run_into_closed_pipe(
        BIN,
        &[
            "policy",
            "explain",
            "--data-dir",
            &dir,
            "--request-id",
            "request-7",
        ],
    );
    assert_eq!((status, stderr.as_str()), (BROKEN_PIPE, ""));
    let policy = Path::new(&dir).join("policy.json");
    std::fs::write(&policy, r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#).unwrap();
    let (status, stderr) = run_into_closed_pipe(BIN, &["policy", "lint", policy.to_str().unwrap()]);
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

// ------------------------------------------------------------------ --key

/// The event names of the records `ferrokms audit --json ARGS` selects,
/// and its stderr.
fn events(dir: &Path, args: &[&str]) -> (Vec<String>, String) {
    let mut all = vec!["audit", "--data-dir", dir.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let o = run(BIN, &all);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
    let names = text(&o.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["eventName"].as_str().unwrap().to_string()
        })
        .collect();
    (names, text(&o.stderr))
}

/// A key `app` used by id, by ARN, through its alias and by Decrypt (which
/// names no key), another key `other`, and an alias moved from `other` to
/// `app`.
struct Trail {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    app_id: String,
    app_arn: String,
}

fn real_trail() -> Trail {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = ServerProcess::on_data_dir(BIN, &data, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (app_id, app_arn) = runtime.block_on(async {
        let kms = sdk_client(
            &server.endpoint,
            &read_credentials(&data.join("credentials")),
        );
        let create = |d: &'static str| {
            let kms = kms.clone();
            async move {
                let m = kms
                    .create_key()
                    .description(d)
                    .send()
                    .await
                    .unwrap()
                    .key_metadata
                    .unwrap();
                (m.key_id().to_string(), m.arn().unwrap().to_string())
            }
        };
        let (app_id, app_arn) = create("app").await;
        let (other_id, _) = create("other").await;
        kms.create_alias()
            .alias_name("alias/app")
            .target_key_id(&app_id)
            .send()
            .await
            .unwrap();
        // alias/moving names `other` first, then `app`.
        kms.create_alias()
            .alias_name("alias/moving")
            .target_key_id(&other_id)
            .send()
            .await
            .unwrap();
        kms.describe_key()
            .key_id("alias/moving")
            .send()
            .await
            .unwrap();
        kms.update_alias()
            .alias_name("alias/moving")
            .target_key_id(&app_id)
            .send()
            .await
            .unwrap();
        let by_id = kms
            .encrypt()
            .key_id(&app_id)
            .plaintext(Blob::new("by id"))
            .send()
            .await
            .unwrap();
        kms.encrypt()
            .key_id("alias/app")
            .plaintext(Blob::new("by alias"))
            .send()
            .await
            .unwrap();
        kms.get_key_rotation_status()
            .key_id(&app_arn)
            .send()
            .await
            .unwrap();
        // Decrypt names no key: the ciphertext does.
        kms.decrypt()
            .ciphertext_blob(by_id.ciphertext_blob.unwrap())
            .send()
            .await
            .unwrap();
        kms.encrypt()
            .key_id(&other_id)
            .plaintext(Blob::new("other"))
            .send()
            .await
            .unwrap();
        // Refused before any key: an alias that does not exist yet.
        assert!(kms
            .describe_key()
            .key_id("alias/later")
            .send()
            .await
            .is_err());
        kms.create_alias()
            .alias_name("alias/gone")
            .target_key_id(&app_id)
            .send()
            .await
            .unwrap();
        kms.encrypt()
            .key_id("alias/gone")
            .plaintext(Blob::new("through a deleted alias"))
            .send()
            .await
            .unwrap();
        kms.delete_alias()
            .alias_name("alias/gone")
            .send()
            .await
            .unwrap();
        (app_id, app_arn)
    });
    // SIGTERM and wait: the audit trail is written and fsynced at exit.
    assert!(
        server.terminate(Duration::from_secs(10)).is_some(),
        "the server did not stop within 10 s"
    );
    Trail {
        _tmp: tmp,
        data,
        app_id,
        app_arn,
    }
}

#[test]
fn audit_key_alias_finds_records_that_named_the_key_by_id() {
    let t = real_trail();
    // Everything about `app`, whatever its requests called it.
    let about_app = [
        "CreateKey",
        "CreateAlias",
        "UpdateAlias",
        "Encrypt",
        "Encrypt",
        "GetKeyRotationStatus",
        "Decrypt",
        "CreateAlias",
        "Encrypt",
        "DeleteAlias",
    ];
    for key in [
        "alias/app",
        "arn:aws:kms:us-east-1:111122223333:alias/app",
        &t.app_id,
        &t.app_arn,
    ] {
        let (names, stderr) = events(&t.data, &["--key", key]);
        assert_eq!(names, about_app, "--key {key}");
        assert_eq!(stderr, "", "--key {key}");
    }
    // An alias that moved: the records about the key it names now (the
    // DescribeKey through it when it named `other` is about `other`).
    let (names, _) = events(&t.data, &["--key", "alias/moving"]);
    assert_eq!(names, about_app);
    // The filter composes with the others.
    let (names, _) = events(&t.data, &["--key", "alias/app", "--event-name", "Encrypt"]);
    assert_eq!(names, ["Encrypt", "Encrypt", "Encrypt"]);
    // And --help says how keys match.
    let help = text(&run(BIN, &["audit", "--help"]).stdout);
    for needle in [
        "alias name (alias/NAME) or alias ARN",
        "whatever name its request used",
        "no longer exists",
    ] {
        assert!(help.contains(needle), "{needle} missing in {help}");
    }
}

#[test]
fn audit_key_alias_that_no_longer_exists_matches_the_records_that_named_it() {
    let t = real_trail();
    let (names, stderr) = events(&t.data, &["--key", "alias/gone"]);
    assert_eq!(names, ["CreateAlias", "Encrypt", "DeleteAlias"]);
    assert!(
        stderr.contains("alias/gone names no key now") && stderr.lines().count() == 1,
        "{stderr}"
    );
    // Never existed when asked for, nor now: the refused request named it.
    let (names, _) = events(&t.data, &["--key", "alias/later"]);
    assert_eq!(names, ["DescribeKey"]);
    // An alias that never existed at all matches nothing, and says why.
    let (names, stderr) = events(&t.data, &["--key", "alias/never"]);
    assert!(names.is_empty());
    assert!(stderr.contains("alias/never names no key now"), "{stderr}");
    // Not a key or alias name: a usage error.
    let o = run(
        BIN,
        &[
            "audit",
            "--data-dir",
            t.data.to_str().unwrap(),
            "--key",
            "arn:aws:iam::111122223333:user/alice",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
}
