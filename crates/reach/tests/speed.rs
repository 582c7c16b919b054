//! Issue 21, item 5: how long the questions take on policy sets of the
//! sizes the issue names. Ignored by default (timings on a shared CI
//! machine are noise); run them with
//! `cargo test -p ferrokms-reach --release --test speed -- --ignored --nocapture`
//! (or without `--release`, slower). Each prints its timing and fails
//! over the issue's bound. docs/analysis.md records the figures.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use ferrokms_policy::PolicyKind;
use ferrokms_reach::{access_listing, check_no_public_access, Answer, Grant, Grantee, Holder};

/// A 20-statement key policy of the kinds real ones hold: administrators,
/// users through services, other accounts, conditions on the caller's
/// account, the calling service, the encryption context and the source
/// address, and two denies.
fn twenty_statements() -> String {
    let mut v: Vec<String> = vec![ROOT_ADMIN.to_string()];
    for i in 0..6 {
        v.push(format!(
            r#"{{"Sid":"Admin{i}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:role/admin{i}"}},"Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],"Resource":"*"}}"#
        ));
    }
    for (i, svc) in ["ec2", "rds", "s3", "lambda"].iter().enumerate() {
        v.push(format!(
            r#"{{"Sid":"Via{i}","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*","Condition":{{"StringEquals":{{"kms:CallerAccount":"{A}","kms:ViaService":"{svc}.us-east-1.amazonaws.com"}}}}}}"#
        ));
    }
    for (i, acct) in [B, C].iter().enumerate() {
        v.push(format!(
            r#"{{"Sid":"Ext{i}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{acct}:root"}},"Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*","Condition":{{"StringLike":{{"kms:EncryptionContext:app":"team{i}-*"}}}}}}"#
        ));
    }
    for i in 0..4 {
        v.push(format!(
            r#"{{"Sid":"Grants{i}","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:role/app{i}"}},"Action":["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],"Resource":"*","Condition":{{"Bool":{{"kms:GrantIsForAWSResource":"true"}}}}}}"#
        ));
    }
    v.push(format!(
        r#"{{"Sid":"Net","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:role/batch"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"IpAddress":{{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}}}}}"#
    ));
    v.push(
        r#"{"Sid":"DenyOld","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}"#.to_string(),
    );
    v.push(format!(
        r#"{{"Sid":"DenyOutside","Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*","Condition":{{"StringNotEquals":{{"aws:PrincipalAccount":"{A}"}}}}}}"#
    ));
    assert_eq!(v.len(), 20);
    v.join(",")
}

/// The fastest of five runs after a warm-up: the machine is shared, and
/// the minimum is what the code costs when nothing else runs.
fn time<T>(what: &str, bound: Duration, f: impl Fn() -> T) -> T {
    let mut out = f(); // warm up
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        out = f();
        best = best.min(started.elapsed());
    }
    eprintln!("{what}: {best:?} (fastest of 5 runs; bound {bound:?})");
    assert!(best < bound, "{what} took {best:?}, over {bound:?}");
    out
}

#[test]
#[ignore = "timing; run with --ignored --nocapture"]
fn check_no_public_access_on_a_20_statement_key_policy() {
    let s = set(&twenty_statements());
    let answer = time(
        "CheckNoPublicAccess, 20 statements",
        Duration::from_millis(100),
        || check_no_public_access(&s),
    );
    assert!(matches!(answer, Answer::NotGranted(_)), "{answer:?}");
}

#[test]
#[ignore = "timing; run with --ignored --nocapture"]
fn access_listing_with_50_grants_and_20_identity_policies() {
    let mut s = set(&twenty_statements());
    for i in 0..20 {
        s.holders.push(Holder {
            arn: format!("arn:aws:iam::{A}:role/app{i}"),
            policies: vec![(
                PolicyKind::IdentityBased,
                identity(&format!(
                    r#"{{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"{KEY}","Condition":{{"StringEquals":{{"kms:EncryptionContext:app":"app{i}"}}}}}},{{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*","Condition":{{"Bool":{{"kms:GrantIsForAWSResource":"false"}}}}}}"#
                )),
            )],
        });
    }
    for i in 0..50 {
        let grantee = match i % 3 {
            0 => format!("arn:aws:iam::{A}:role/app{}", i % 20),
            1 => format!("arn:aws:iam::{B}:role/worker{i}"),
            _ => format!("arn:aws:iam::{A}:user/svc{i}"),
        };
        s.grants.push(Grant {
            id: format!("grant{i}"),
            grantee: Grantee::Aws(grantee),
            operations: vec!["Decrypt".into(), "Encrypt".into(), "GenerateDataKey".into()],
            encryption_context_subset: (i % 2 == 0)
                .then(|| BTreeMap::from([("app".to_string(), format!("app{}", i % 20))])),
            encryption_context_equals: None,
            source_arn: None,
        });
    }
    let listing = time(
        "key access listing, 50 grants + 20 identity policies",
        Duration::from_secs(1),
        || access_listing(&s).unwrap(),
    );
    assert!(listing
        .iter()
        .any(|e| e.path == ferrokms_reach::Path::Grant("grant1".into())));
    eprintln!("{} listing entries", listing.len());
}
