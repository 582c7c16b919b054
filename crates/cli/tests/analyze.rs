//! `ferrokms policy lint`, `ferrokms policy simulate` and `ferrokms key
//! access`, run as the binary against sample policies and a data directory
//! prepared through the library (and read while a server runs on it).
//!
//! About 840 lines: the three commands share one prepared data directory
//! and its principals, so their tests stay together.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use ferrokms_iam::ops_owner::Owner;
use ferrokms_kms::api::CreateKeyRequest;
use ferrokms_kms::Caller;
use ferrokms_server::setup::{self, Options, Storage};
use ferrokms_testkit::process::{run, run_into_closed_pipe, ServerProcess};
use ferrokms_types::{AccountId, Region};

const ACCOUNT: &str = "111122223333";
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn lint_file(dir: &Path, name: &str, text: &str, extra: &[&str]) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let mut args = vec!["policy", "lint", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(BIN, &args)
}

#[test]
fn lint_exit_codes_and_findings() {
    let tmp = tempfile::tempdir().unwrap();
    let default = ferrokms_kms::default_key_policy(&AccountId::parse(ACCOUNT).unwrap(), "aws");
    let o = lint_file(tmp.path(), "default.json", &default, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("no findings"));

    // Public, lockout-prone key policy with an unknown action: errors.
    let bad = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Open","Effect":"Allow","Principal":"*","Action":["kms:Decrypt","kms:Decryptt"],"Resource":"*"}]}"#;
    let o = lint_file(tmp.path(), "bad.json", bad, &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for code in ["LOCKOUT_RISK", "PUBLIC_ACCESS", "UNKNOWN_ACTION"] {
        assert!(out.contains(code), "{code} missing in {out}");
    }
    assert!(
        out.contains("statement #0 (Sid \"Open\") error PUBLIC_ACCESS"),
        "{out}"
    );

    // Warnings and suggestions only: exit 0; JSON output.
    let warn = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":["kms:Sign","kms:CreateGrant"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}}]}"#;
    let o = lint_file(
        tmp.path(),
        "warn.json",
        warn,
        &["--kind", "identity", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        vec![
            "DEPRECATED_VERSION",
            "CONDITION_KEY_NEVER_SET",
            "CREATE_GRANT_WITHOUT_AWS_RESOURCE"
        ]
    );
    assert_eq!(v["findings"][1]["severity"], "warning");
    assert_eq!(v["findings"][1]["statement"], 0);
    assert_eq!(v["findings"][2]["severity"], "suggestion");

    // Grammar errors are errors; unreadable input is 2.
    let o = lint_file(tmp.path(), "syntax.json", "{\"Statement\": [", &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("SYNTAX_ERROR"));
    let o = run(
        BIN,
        &[
            "policy",
            "lint",
            tmp.path().join("missing.json").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let o = lint_file(tmp.path(), "trust.json", TRUST, &["--kind", "trust"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// Issue #25 item 5: a key policy without the account delegation, a
/// `Principal "*"` limited to the own account, and one finding with "did
/// you mean" for a misspelled condition key; item 17: an identity policy
/// linted as a key policy suggests `--kind identity`.
#[test]
fn lint_key_policy_lessons() {
    let tmp = tempfile::tempdir().unwrap();
    let no_root = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":["kms:PutKeyPolicy","kms:Describe*"],"Resource":"*"},
        {"Sid":"All","Effect":"Allow","Principal":"*","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}},
        {"Sid":"Typo","Effect":"Allow","Principal":"*","Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:CallerAcount":"111122223333"}}}]}"#;
    let o = lint_file(tmp.path(), "no-root.json", no_root, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].contains("warning NO_ACCOUNT_DELEGATION")
            && lines[0].contains("IAM policies have no effect on this key"),
        "{out}"
    );
    assert!(
        lines[1].contains("statement #1 (Sid \"All\") info ACCOUNT_WIDE_ACCESS")
            && lines[1].contains(
                "every principal of the account may kms:Encrypt, kms:Decrypt regardless of IAM"
            ),
        "{out}"
    );
    assert!(
        lines[2].contains("statement #2 (Sid \"Typo\") warning UNKNOWN_CONDITION_KEY")
            && lines[2].contains("did you mean kms:CallerAccount?")
            && lines[2].contains("never applies"),
        "{out}"
    );
    assert!(!out.contains("PUBLIC_ACCESS"), "{out}");

    let identity = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
    let o = lint_file(tmp.path(), "identity.json", identity, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("lint it with --kind identity"),
        "{}",
        stdout(&o)
    );
    let o = lint_file(
        tmp.path(),
        "identity.json",
        identity,
        &["--kind", "identity"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

struct Prepared {
    _tmp: tempfile::TempDir,
    dir: String,
    /// The default-policy key.
    plain: String,
    /// A key whose policy names the role for Sign under a condition, and
    /// denies the user ScheduleKeyDeletion.
    custom: String,
    /// A grant on `custom` to alice for Decrypt with the encryption context
    /// exactly {app: x}.
    grant_token: String,
}

/// A data dir with the default account, a user `alice` (identity policy
/// allowing kms:Encrypt), a role `kms-exports-role` without permissions, and
/// two keys.
fn prepare() -> Prepared {
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options::new(Storage::DataDir(tmp.path().to_path_buf()));
    let (app, _) = setup::open(&opts).unwrap();
    let account = AccountId::parse(ACCOUNT).unwrap();
    let root = ferrokms_iam::Caller::root(account.clone());
    app.directory
        .create_role(
            &root,
            "kms-exports-role",
            None,
            TRUST,
            None,
            None,
            vec![],
            None,
        )
        .unwrap();
    app.directory
        .create_user(&root, "alice", None, vec![], None)
        .unwrap();
    app.directory
        .put_inline_policy(
            &root,
            Owner::User,
            "alice",
            "encrypt",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#,
        )
        .unwrap();
    let caller = Caller::root(account, Region::parse("us-east-1").unwrap());
    let plain = app
        .kms
        .create_key(&caller, CreateKeyRequest::default())
        .unwrap()
        .key_metadata
        .arn;
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {"Sid":"ExportsSign","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-exports-role"},"Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:MessageType":"DIGEST"}}},
        {"Sid":"PartnerUse","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"},
        {"Sid":"NoDelete","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}]}"#;
    app.kms.set_principal_directory(std::sync::Arc::new(
        ferrokms_server::auth::DirectoryPrincipals {
            directory: app.directory.clone(),
            dev: true,
        },
    ));
    let custom = app
        .kms
        .create_key(
            &caller,
            CreateKeyRequest {
                policy: Some(policy.into()),
                ..Default::default()
            },
        )
        .unwrap()
        .key_metadata
        .arn;
    let grant_token = app
        .kms
        .create_grant(
            &caller,
            ferrokms_kms::grants::CreateGrantRequest {
                key_id: custom.clone(),
                grantee_principal: Some("arn:aws:iam::111122223333:user/alice".into()),
                operations: vec!["Decrypt".into()],
                constraints: Some(ferrokms_kms::grants::GrantConstraints {
                    encryption_context_equals: Some([("app".to_string(), "x".to_string())].into()),
                    encryption_context_subset: None,
                    source_arn: None,
                }),
                ..Default::default()
            },
        )
        .unwrap()
        .grant_token;
    drop(app);
    Prepared {
        dir: tmp.path().to_str().unwrap().to_string(),
        _tmp: tmp,
        plain,
        custom,
        grant_token,
    }
}

fn simulate(p: &Prepared, principal: &str, action: &str, key: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "policy",
        "simulate",
        "--data-dir",
        &p.dir,
        "--principal",
        principal,
        "--action",
        action,
        "--key",
        key,
    ];
    args.extend_from_slice(extra);
    run(BIN, &args)
}

#[test]
fn simulate_seed_000_role_without_permissions_and_default_key_policy() {
    let p = prepare();
    let role = "arn:aws:iam::111122223333:role/kms-exports-role";
    let o = simulate(&p, role, "kms:Sign", &p.plain, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "denied: arn:aws:sts::111122223333:assumed-role/kms-exports-role/simulated kms:Sign"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("AccessDeniedException: User: arn:aws:sts::111122223333:assumed-role/kms-exports-role/simulated is not authorized to perform: kms:Sign on resource: {} because no identity-based policy allows the kms:Sign action", p.plain)),
        "{out}"
    );
    // The delegation matched, but decided nothing on its own: it is not
    // listed as having applied (issue #25, item 4).
    assert!(
        out.contains("  statements that applied: none\n  statements that matched without deciding:\n    key policy #0 (Enable IAM User Permissions) Allow\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("the key policy delegates to account 111122223333, but no identity-based policy of role/kms-exports-role allows kms:Sign on {}: attach one", p.plain)),
        "{out}"
    );
    assert!(
        out.contains(&format!("or name {role} in the key policy")),
        "{out}"
    );

    // JSON, the same answer.
    let o = simulate(&p, role, "Sign", &p.plain, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["role_arn"], role);
    assert_eq!(v["suggestions"].as_array().unwrap().len(), 1);
    assert_eq!(v["statements"], serde_json::json!([]));
    assert_eq!(
        v["matched_without_effect"],
        serde_json::json!(["key policy #0 (Enable IAM User Permissions) Allow"])
    );
}

#[test]
fn simulate_user_root_session_condition_and_explicit_deny() {
    let p = prepare();
    // The user's identity policy allows Encrypt through the delegation.
    let alice = "arn:aws:iam::111122223333:user/alice";
    let o = simulate(&p, alice, "kms:Encrypt", &p.plain, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("user/alice inline policy") || stdout(&o).contains("Allow"));
    // The root holds every identity permission.
    let o = simulate(&p, ACCOUNT, "kms:PutKeyPolicy", &p.plain, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // A named session: the condition decides.
    let session = "arn:aws:sts::111122223333:assumed-role/kms-exports-role/batch";
    let o = simulate(&p, session, "kms:Sign", &p.custom, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let o = simulate(
        &p,
        session,
        "kms:Sign",
        &p.custom,
        &["--context", "kms:MessageType=DIGEST"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("key policy #1 (ExportsSign) Allow"),
        "{}",
        stdout(&o)
    );
    // An explicit deny names its statement.
    let o = simulate(&p, alice, "kms:ScheduleKeyDeletion", &p.custom, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("statement #3 (Sid \"NoDelete\") of the key policy explicitly denies kms:ScheduleKeyDeletion"),
        "{}",
        stdout(&o)
    );
    // Errors: unknown principal, action, key; bad grant token.
    assert_eq!(
        simulate(
            &p,
            "arn:aws:iam::111122223333:user/nobody",
            "kms:Sign",
            &p.plain,
            &[]
        )
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        simulate(&p, alice, "kms:Frobnicate", &p.plain, &[])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        simulate(&p, alice, "kms:Encrypt", "alias/missing", &[])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        simulate(
            &p,
            alice,
            "kms:Encrypt",
            &p.plain,
            &["--grant-token", "garbage"]
        )
        .status
        .code(),
        Some(1),
        "an invalid grant token is a denial (InvalidGrantTokenException), as on AWS"
    );
}

#[test]
fn simulate_with_a_grant_token_explains_whether_the_grant_applies() {
    let p = prepare();
    let alice = "arn:aws:iam::111122223333:user/alice";
    // The grant's encryption context constraint is met: allowed by the grant.
    let o = simulate(
        &p,
        alice,
        "kms:Decrypt",
        &p.custom,
        &[
            "--grant-token",
            &p.grant_token,
            "--context",
            "kms:EncryptionContext:app=x",
        ],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("grant token: grant "), "{out}");
    assert!(out.contains("(Decrypt): applies"), "{out}");
    // Without the context the constraint fails, and the report says so.
    let o = simulate(
        &p,
        alice,
        "kms:Decrypt",
        &p.custom,
        &["--grant-token", &p.grant_token],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("does not apply"), "{out}");
    assert!(
        out.contains("encryption context does not meet the grant's constraints"),
        "{out}"
    );
    // An operation the grant does not cover.
    let o = simulate(
        &p,
        alice,
        "kms:GenerateDataKey",
        &p.custom,
        &["--grant-token", &p.grant_token, "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["allowed"], false);
    assert_eq!(v["grant_tokens"][0]["applies"], false);
    assert!(v["grant_tokens"][0]["reasons"][0]
        .as_str()
        .unwrap()
        .contains("the grant allows Decrypt, not GenerateDataKey"));
    // A token for a grant on another key.
    let o = simulate(
        &p,
        alice,
        "kms:Decrypt",
        &p.plain,
        &[
            "--grant-token",
            &p.grant_token,
            "--context",
            "kms:EncryptionContext:app=x",
        ],
    );
    let out = stdout(&o);
    assert!(out.contains("the grant is for key"), "{out}");
    // An invalid token: the request would be refused before authorization.
    let o = simulate(
        &p,
        alice,
        "kms:Decrypt",
        &p.custom,
        &["--grant-token", "garbage"],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("InvalidGrantTokenException"), "{out}");
}

#[test]
fn key_access_lists_principals_paths_and_conditions() {
    let p = prepare();
    let o = run(
        BIN,
        &["key", "access", "--data-dir", &p.dir, &p.custom, "--json"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["key"], p.custom.as_str());
    let find = |arn: &str| {
        v["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["principal"] == arn)
            .unwrap_or_else(|| panic!("{arn} missing"))
            .clone()
    };
    let actions = |x: &serde_json::Value| -> Vec<String> {
        x["access"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap().to_string())
            .collect()
    };
    let root = find("arn:aws:iam::111122223333:root");
    assert_eq!(actions(&root).len(), 45);
    assert_eq!(root["access"][0]["path"], "key policy");
    let alice = find("arn:aws:iam::111122223333:user/alice");
    assert_eq!(actions(&alice), vec!["kms:Encrypt"]);
    assert!(alice["access"][0]["path"]
        .as_str()
        .unwrap()
        .starts_with("IAM via key-policy delegation"));
    let role = find("arn:aws:iam::111122223333:role/kms-exports-role");
    assert_eq!(actions(&role), vec!["kms:Sign"]);
    assert_eq!(role["access"][0]["conditional"], true);
    assert_eq!(
        role["access"][0]["conditions"][0]["condition"],
        serde_json::json!({"StringEquals": {"kms:MessageType": "DIGEST"}})
    );
    let partner = find("arn:aws:iam::444455556666:root");
    assert_eq!(partner["kind"], "external account");
    assert_eq!(actions(&partner), vec!["kms:Decrypt", "kms:Encrypt"]);

    // Human output, while a server runs on the same data directory.
    let _server = ServerProcess::on_data_dir(BIN, Path::new(&p.dir), &[]);
    let o = run(BIN, &["key", "access", "--data-dir", &p.dir, &p.custom]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = stdout(&o);
    assert!(
        out.contains(
            "arn:aws:iam::111122223333:root (account root)\n  key policy: all 45 key actions"
        ),
        "{out}"
    );
    assert!(out.contains("  conditional, key policy: Sign\n    statement #1 (Sid \"ExportsSign\") of the key policy: {\"StringEquals\":{\"kms:MessageType\":\"DIGEST\"}}"), "{out}");
    let o = simulate(
        &p,
        "arn:aws:iam::111122223333:role/kms-exports-role",
        "kms:Sign",
        &p.plain,
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
}

/// Access Analyzer's external-access view: accounts this server does not
/// know and `"*"`, named in the key policy, with what they may do.
#[test]
fn key_access_lists_external_accounts_and_anyone_named_in_the_key_policy() {
    let p = prepare();
    let opts = Options::new(Storage::DataDir(p.dir.clone().into()));
    let (app, _) = setup::open(&opts).unwrap();
    app.kms.set_principal_directory(std::sync::Arc::new(
        ferrokms_server::auth::DirectoryPrincipals {
            directory: app.directory.clone(),
            dev: true,
        },
    ));
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Owner","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {"Sid":"Partner","Effect":"Allow","Principal":{"AWS":"777788889999"},"Action":"kms:Decrypt","Resource":"*"},
        {"Sid":"Anyone","Effect":"Allow","Principal":"*","Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-example"}}}]}"#;
    let caller = Caller::root(
        AccountId::parse(ACCOUNT).unwrap(),
        Region::parse("us-east-1").unwrap(),
    );
    let key = app
        .kms
        .create_key(
            &caller,
            CreateKeyRequest {
                policy: Some(policy.into()),
                ..Default::default()
            },
        )
        .unwrap()
        .key_metadata
        .arn;
    drop(app);
    let o = run(
        BIN,
        &["key", "access", "--data-dir", &p.dir, &key, "--json"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let find = |arn: &str| {
        v["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["principal"] == arn)
            .unwrap_or_else(|| panic!("{arn} missing in {v}"))
            .clone()
    };
    let partner = find("arn:aws:iam::777788889999:root");
    assert_eq!(partner["kind"], "external account");
    let partner_actions: Vec<&str> = partner["access"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    // Decrypt by name; DescribeKey through "*", under its condition.
    assert_eq!(partner_actions, ["kms:Decrypt", "kms:DescribeKey"]);
    assert_eq!(partner["access"][0]["conditional"], false);
    assert_eq!(partner["access"][1]["conditional"], true);
    assert_eq!(
        v["summary"],
        "external access: account 777788889999 may Decrypt (DescribeKey under conditions); \
         anyone may DescribeKey under conditions; \
         every principal of account 111122223333 may DescribeKey under conditions regardless of IAM"
    );
    let anyone = find("*");
    assert_eq!(anyone["kind"], "anyone (Principal \"*\")");
    assert_eq!(anyone["access"][0]["action"], "kms:DescribeKey");
    assert_eq!(anyone["access"][0]["conditional"], true, "{anyone}");
    assert_eq!(anyone["access"].as_array().unwrap().len(), 1, "{anyone}");
}

/// Creates a key with `policy` in the prepared data dir; its ARN.
fn key_with_policy(p: &Prepared, policy: &str) -> String {
    let opts = Options::new(Storage::DataDir(p.dir.clone().into()));
    let (app, _) = setup::open(&opts).unwrap();
    app.kms.set_principal_directory(std::sync::Arc::new(
        ferrokms_server::auth::DirectoryPrincipals {
            directory: app.directory.clone(),
            dev: true,
        },
    ));
    let caller = Caller::root(
        AccountId::parse(ACCOUNT).unwrap(),
        Region::parse("us-east-1").unwrap(),
    );
    app.kms
        .create_key(
            &caller,
            CreateKeyRequest {
                policy: Some(policy.into()),
                ..Default::default()
            },
        )
        .unwrap()
        .key_metadata
        .arn
}

/// An action allowed unconditionally by one statement is not "conditional"
/// because another statement also allows it under a condition; conditions
/// the principal itself decides (kms:CallerAccount, aws:PrincipalAccount)
/// are evaluated, not shown as restrictions; the report starts with a
/// one-line summary.
#[test]
fn key_access_reports_the_strongest_path_and_a_summary() {
    let p = prepare();
    let key = key_with_policy(
        &p,
        r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
        {"Sid":"AnyoneInTheAccount","Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}},
        {"Sid":"AliceDataKeys","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:GenerateDataKey","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}},
        {"Sid":"AliceWithContext","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"x"}}},
        {"Sid":"RoleDigestOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-exports-role"},"Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","kms:MessageType":"DIGEST"}}},
        {"Sid":"RoleOtherAccount","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/kms-exports-role"},"Action":"kms:DescribeKey","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"444455556666"}}}]}"#,
    );
    let summary = "external access: none; every principal of account 111122223333 \
                   may Decrypt, Encrypt regardless of IAM";
    let o = run(
        BIN,
        &["key", "access", "--data-dir", &p.dir, &key, "--json"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let find = |arn: &str| {
        v["principals"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["principal"] == arn)
            .unwrap_or_else(|| panic!("{arn} missing in {v}"))["access"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["action"].as_str().unwrap().to_string(),
                    a["path"].as_str().unwrap().to_string(),
                    a["conditional"].as_bool().unwrap(),
                    a["conditions"].clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    let none = serde_json::json!([]);
    let direct = |action: &str| {
        (
            action.to_string(),
            "key policy".to_string(),
            false,
            none.clone(),
        )
    };
    // Encrypt: AnyoneInTheAccount allows it whatever the request (alice is
    // of the account), so it is not conditional although AliceWithContext
    // also matches; and the key policy beats alice's IAM policy.
    assert_eq!(
        find("arn:aws:iam::111122223333:user/alice"),
        [
            direct("kms:Decrypt"),
            direct("kms:Encrypt"),
            direct("kms:GenerateDataKey")
        ]
    );
    // Sign needs a digest; kms:CallerAccount is the role's own account, so it
    // is not listed. DescribeKey needs another account: never.
    assert_eq!(
        find("arn:aws:iam::111122223333:role/kms-exports-role"),
        [
            direct("kms:Decrypt"),
            direct("kms:Encrypt"),
            (
                "kms:Sign".to_string(),
                "key policy".to_string(),
                true,
                serde_json::json!([{
                    "statement": "statement #4 (Sid \"RoleDigestOnly\") of the key policy",
                    "condition": {"StringEquals": {"kms:MessageType": "DIGEST"}}
                }])
            )
        ]
    );
    // Principal "*" outside the account fails kms:CallerAccount: no access.
    assert_eq!(find("*"), []);
    assert_eq!(v["summary"], summary);

    let o = run(BIN, &["key", "access", "--data-dir", &p.dir, &key]);
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("summary: {summary}\nkey {key}\n")),
        "{out}"
    );
    assert!(
        out.contains("user/alice (user)\n  key policy: Decrypt, Encrypt, GenerateDataKey\n"),
        "{out}"
    );
    assert!(out.contains("  conditional, key policy: Sign\n    statement #4 (Sid \"RoleDigestOnly\") of the key policy: {\"StringEquals\":{\"kms:MessageType\":\"DIGEST\"}}\n"), "{out}");
}

/// `key access` and `policy simulate` into a pipe whose reader has gone:
/// no panic, no message, and the status of a tool killed by SIGPIPE (not 0:
/// simulate's status is its answer).
#[test]
fn key_access_and_simulate_into_a_closed_pipe_exit_quietly() {
    let p = prepare();
    let role = "arn:aws:iam::111122223333:role/kms-exports-role";
    for args in [
        vec!["key", "access", "--data-dir", &p.dir, &p.custom],
        vec!["key", "access", "--data-dir", &p.dir, &p.custom, "--json"],
        vec![
            "policy",
            "simulate",
            "--data-dir",
            &p.dir,
            "--principal",
            role,
            "--action",
            "kms:Sign",
            "--key",
            &p.plain,
        ],
    ] {
        let (status, stderr) = run_into_closed_pipe(BIN, &args);
        assert_eq!((status, stderr.as_str()), (Some(141), ""), "{args:?}");
    }
}

/// A statement names the principal and the action but its condition
/// fails: the answer says which condition and which context value is
/// missing, instead of suggesting to name the principal (it is named).
#[test]
fn simulate_names_the_failed_condition_and_the_missing_context_value() {
    let p = prepare();
    let session = "arn:aws:sts::111122223333:assumed-role/kms-exports-role/batch";
    let o = simulate(&p, session, "kms:Sign", &p.custom, &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("statement #1 (Sid \"ExportsSign\") of the key policy allows kms:Sign to arn:aws:sts::111122223333:assumed-role/kms-exports-role/batch"),
        "{out}"
    );
    assert!(
        out.contains("but its condition fails: {\"StringEquals\":{\"kms:MessageType\":\"DIGEST\"}}: the request carries no kms:MessageType (e.g. --context kms:MessageType=DIGEST)"),
        "{out}"
    );
    assert!(!out.contains("in the key policy\n"), "{out}");
    assert!(!out.contains("or name "), "{out}");
    // A value that does not match is quoted.
    let o = simulate(
        &p,
        session,
        "kms:Sign",
        &p.custom,
        &["--context", "kms:MessageType=RAW", "--json"],
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["allowed"], false);
    let s = v["suggestions"][0].as_str().unwrap();
    assert!(
        s.ends_with("the request's kms:MessageType is RAW, which does not satisfy it"),
        "{s}"
    );
    // No statement names the principal: the usual suggestions.
    let o = simulate(&p, session, "kms:Sign", &p.plain, &[]);
    assert!(stdout(&o)
        .contains("or name arn:aws:iam::111122223333:role/kms-exports-role in the key policy"));
}

/// `policy explain` of a recorded denial that a statement would have
/// allowed but for its condition: it names the statement, the failing
/// condition and the value the request lacked or carried, from what the
/// record keeps (here the message type), as `simulate` does.
#[test]
fn explain_names_the_failed_condition_of_a_recorded_request() {
    let p = prepare();
    let session = "arn:aws:sts::111122223333:assumed-role/kms-exports-role/batch";
    let record = |id: &str, params: serde_json::Value| {
        serde_json::json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "arn": session, "accountId": "111122223333",
                "sessionContext": {"sessionIssuer": {"type": "Role",
                    "arn": "arn:aws:iam::111122223333:role/kms-exports-role", "accountId": "111122223333"}}},
            "eventTime": "2026-11-24T01:14:06Z", "eventSource": "kms.amazonaws.com", "eventName": "Sign",
            "awsRegion": "us-east-1", "sourceIPAddress": "127.0.0.1",
            "requestParameters": params,
            "requestID": id,
            "resources": [{"accountId": "111122223333", "type": "AWS::KMS::Key", "ARN": p.custom}],
            "errorCode": "AccessDeniedException",
            "errorMessage": "User: … because no identity-based policy allows the kms:Sign action",
            "ferrokmsAuthorization": [{"action": "kms:Sign", "allowed": false,
                "decision": "because no identity-based policy allows the kms:Sign action",
                "statements": ["key policy #0 (Enable IAM User Permissions) Allow"]}]
        })
    };
    let audit = Path::new(&p.dir).join("audit");
    std::fs::create_dir_all(&audit).unwrap();
    let lines = [
        record(
            "raw-1",
            serde_json::json!({"keyId": p.custom, "messageType": "RAW", "signingAlgorithm": "RSASSA_PSS_SHA_256"}),
        ),
        record("none-2", serde_json::json!({"keyId": p.custom})),
    ]
    .map(|r| r.to_string())
    .join("\n");
    std::fs::write(audit.join("audit.jsonl"), lines + "\n").unwrap();

    let explain = |id: &str| {
        run(
            BIN,
            &[
                "policy",
                "explain",
                "--data-dir",
                &p.dir,
                "--request-id",
                id,
            ],
        )
    };
    let o = explain("raw-1");
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("statement #1 (Sid \"ExportsSign\") of the key policy allows kms:Sign to arn:aws:sts::111122223333:assumed-role/kms-exports-role/batch"),
        "{out}"
    );
    assert!(
        out.contains("{\"StringEquals\":{\"kms:MessageType\":\"DIGEST\"}}: the request's kms:MessageType is RAW, which does not satisfy it"),
        "{out}"
    );
    assert!(
        out.contains("with what the record keeps of the request: "),
        "{out}"
    );
    for value in [
        "kms:MessageType=RAW",
        "kms:SigningAlgorithm=RSASSA_PSS_SHA_256",
        "aws:SourceIp=127.0.0.1",
    ] {
        assert!(out.contains(value), "{value}: {out}");
    }
    assert!(!out.contains("or name "), "{out}");

    let out = stdout(&explain("none-2"));
    assert!(
        out.contains(
            "the request carried no kms:MessageType (it needs e.g. kms:MessageType=DIGEST)"
        ),
        "{out}"
    );

    // Without the root key the policies cannot be read: the explanation
    // from the record alone, and a note saying why.
    std::fs::rename(
        Path::new(&p.dir).join("root.key"),
        Path::new(&p.dir).join("root.key.away"),
    )
    .unwrap();
    let o = explain("raw-1");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("What would allow it:"),
        "{}",
        stdout(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("note: the statements' conditions were not checked"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `key access --exact`: the whole-space listing of crates/reach over the
/// data dir's key policy, grants and identity policies.
#[test]
fn key_access_exact_lists_every_class_with_its_path_and_an_example_request() {
    let p = prepare();
    let o = run(
        BIN,
        &[
            "key",
            "access",
            "--data-dir",
            &p.dir,
            &p.custom,
            "--exact",
            "--json",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["exact"], true);
    let entries = v["access"].as_array().unwrap();
    let find = |principal: &str, path: &str| {
        entries
            .iter()
            .find(|e| e["principal"] == principal && e["path"] == path)
            .unwrap_or_else(|| panic!("{principal} by {path} missing in {v}"))
            .clone()
    };
    let alice = "arn:aws:iam::111122223333:user/alice";
    // Encrypt through her identity policy and the delegation statement.
    let by_iam = find(alice, "delegation + identity policy");
    assert_eq!(by_iam["actions"], serde_json::json!(["kms:Encrypt"]));
    assert_eq!(by_iam["conditional"], false);
    // Decrypt through the grant, only with exactly its encryption context.
    let grant = entries
        .iter()
        .find(|e| e["principal"] == alice && e["path"].as_str().unwrap().starts_with("grant "))
        .unwrap_or_else(|| panic!("alice's grant missing in {v}"));
    assert_eq!(grant["actions"], serde_json::json!(["kms:Decrypt"]));
    assert_eq!(grant["conditional"], true);
    assert!(grant["exampleContext"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"key": "kms:encryptioncontext:app", "value": "x"})));
    // The role may Sign only for digests, by the key policy.
    let role = find(
        "arn:aws:iam::111122223333:role/kms-exports-role",
        "key policy",
    );
    assert_eq!(role["actions"], serde_json::json!(["kms:Sign"]));
    assert_eq!(role["conditional"], true);
    assert!(role["exampleContext"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({"key": "kms:messagetype", "value": "DIGEST"})));
    // The partner account, external, for Encrypt and Decrypt only.
    let partner = find("arn:aws:iam::444455556666:root", "key policy");
    assert_eq!(partner["external"], true);
    assert_eq!(
        partner["actions"],
        serde_json::json!(["kms:Decrypt", "kms:Encrypt"])
    );
    // Nobody of an account no policy names.
    assert!(
        entries.iter().all(|e| !e["principal"]
            .as_str()
            .unwrap()
            .starts_with("any principal of an account no policy names")),
        "{v}"
    );
    // The human form says the same.
    let o = run(
        BIN,
        &["key", "access", "--data-dir", &p.dir, &p.custom, "--exact"],
    );
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.contains("arn:aws:iam::111122223333:user/alice\n"),
        "{out}"
    );
    assert!(
        out.contains("  delegation + identity policy: kms:Encrypt\n"),
        "{out}"
    );
}

/// crates/reach cannot read the KMS catalog (the crate graph points from
/// kms down to authz); its own table of key actions must say what the
/// catalog says.
#[test]
fn reach_key_actions_match_the_kms_catalog() {
    use ferrokms_authz::catalog::Resource;
    let mut from_catalog: Vec<(&str, bool, Option<bool>)> = Vec::new();
    for op in ferrokms_kms::catalog::OPERATIONS {
        if !matches!(op.resource, Resource::Key | Resource::AliasAndKey) {
            continue;
        }
        let cross = |a: &str| ferrokms_kms::catalog::action_crosses_accounts(&a[4..]);
        from_catalog.push((op.action, cross(op.action), Some(op.grant_operation)));
        for a in op.conditional_actions {
            // An action another row authorizes on no key (ReplicateKey's
            // kms:CreateKey, in the replica's region) is not one on this key.
            let keyless = ferrokms_kms::catalog::OPERATIONS
                .iter()
                .any(|o| o.action == *a && o.resource == Resource::None);
            if !keyless {
                // ReEncrypt's kms:ReEncryptTo: grantable as its own operation.
                from_catalog.push((a, cross(a), None));
            }
        }
    }
    from_catalog.sort_unstable();
    from_catalog.dedup_by_key(|x| x.0);
    let reach: Vec<&str> = ferrokms_reach::KEY_ACTIONS.iter().map(|x| x.0).collect();
    let catalog: Vec<&str> = from_catalog.iter().map(|x| x.0).collect();
    assert_eq!(reach, catalog);
    for (action, cross, grantable) in from_catalog {
        let (c, g) = ferrokms_reach::model::key_action(action).unwrap();
        assert_eq!(c, cross, "{action}: cross-account");
        if let Some(grantable) = grantable {
            assert_eq!(g, grantable, "{action}: grant operation");
        }
    }
}
