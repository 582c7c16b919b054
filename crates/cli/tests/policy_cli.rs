//! `ferrokms policy evaluate`: the offline policy tool, run as a user would.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const KEY_ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const DEFAULT_KEY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn evaluate(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .arg("policy")
        .arg("evaluate")
        .args(args)
        .output()
        .expect("run ferrokms");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn role_session_without_identity_policy_is_denied_with_the_aws_message_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(&key, DEFAULT_KEY_POLICY).unwrap();
    let (code, out) = evaluate(&[
        "--policy",
        &format!("key={}", key.display()),
        "--principal",
        "arn:aws:sts::111122223333:assumed-role/kms-exports-role/s1",
        "--role-arn",
        "arn:aws:iam::111122223333:role/kms-exports-role",
        "--action",
        "kms:Sign",
        "--resource",
        KEY_ARN,
        "--kms",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("because no identity-based policy allows the kms:Sign action"),
        "{out}"
    );
}

#[test]
fn identity_policy_allows_once_the_key_policy_delegates_and_json_output_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    let id = dir.path().join("id.json");
    std::fs::write(&key, DEFAULT_KEY_POLICY).unwrap();
    std::fs::write(
        &id,
        format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"kms:Sign","Resource":"{KEY_ARN}"}}]}}"#),
    )
    .unwrap();
    let (code, out) = evaluate(&[
        "--policy",
        &format!("key={}", key.display()),
        "--policy",
        &format!("identity={}", id.display()),
        "--principal",
        "arn:aws:iam::111122223333:user/alice",
        "--action",
        "kms:Sign",
        "--resource",
        KEY_ARN,
        "--kms",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert!(v.is_object());
}

#[test]
fn unreadable_policy_file_is_an_error_with_exit_2() {
    let (code, out) = evaluate(&[
        "--policy",
        "key=/nonexistent/key.json",
        "--principal",
        "arn:aws:iam::111122223333:root",
        "--action",
        "kms:Sign",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("cannot read policy file"), "{out}");
}
