//! The bounds that keep one request's authorization small, probed the way an attacker who
//! may create keys would: encryption contexts just over each bound (refused, with AWS's
//! ValidationException shape, before any policy is read) and just at it (served), and the
//! largest key policy of wildcard patterns against the largest context, answered correctly
//! and in bounded time.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferrokms_kms::api::{
    DecryptRequest, EncryptRequest, GenerateDataKeyRequest, ReEncryptRequest, SecretBlob,
};
use ferrokms_kms::crypto::EncryptionContext;
use ferrokms_kms::grants::{CreateGrantRequest, GrantConstraints};
use ferrokms_kms::{Kms, KmsError};
use ferrokms_testkit::kms::{create_key, kms, owner, validation, ACCT};

const MAX_POLICY: usize = 32 * 1024;

fn ctx(pairs: impl IntoIterator<Item = (String, String)>) -> EncryptionContext {
    EncryptionContext(pairs.into_iter().collect())
}

/// `n` pairs with keys `k0, k1, ...` and empty values.
fn pairs(n: usize) -> EncryptionContext {
    ctx((0..n).map(|i| (format!("k{i}"), String::new())))
}

/// One pair of `bytes` bytes in all.
fn sized(bytes: usize) -> EncryptionContext {
    ctx([("k".to_string(), "v".repeat(bytes - 1))])
}

fn encrypt(kms: &Kms, key: &str, ec: EncryptionContext) -> Result<Vec<u8>, KmsError> {
    kms.encrypt(
        &owner(),
        EncryptRequest {
            key_id: key.to_string(),
            plaintext: SecretBlob(zeroize::Zeroizing::new(b"x".to_vec())),
            encryption_context: Some(ec),
            ..Default::default()
        },
    )
    .map(|r| r.ciphertext_blob.0)
}

const TOO_MANY: &str =
    "failed to satisfy constraint: Member must have length less than or equal to 64";
const TOO_BIG: &str = "failed to satisfy constraint: Member must have keys and values of total length less than or equal to 8192 bytes";

#[test]
fn an_encryption_context_may_hold_64_pairs_and_8192_bytes_and_no_more() {
    let kms = kms();
    let key = create_key(&kms, None);
    encrypt(&kms, &key, pairs(64)).unwrap();
    encrypt(&kms, &key, sized(8192)).unwrap();
    assert_eq!(
        validation(encrypt(&kms, &key, pairs(65))),
        format!("1 validation error detected: Value at 'encryptionContext' {TOO_MANY}")
    );
    assert_eq!(
        validation(encrypt(&kms, &key, sized(8193))),
        format!("1 validation error detected: Value at 'encryptionContext' {TOO_BIG}")
    );
    // Bytes, not characters: 4097 two-byte characters are 8194 bytes.
    let wide = ctx([("é".repeat(4096), "é".to_string())]);
    assert!(validation(encrypt(&kms, &key, wide)).contains(TOO_BIG));
}

#[test]
fn every_operation_that_takes_an_encryption_context_bounds_it() {
    let kms = kms();
    let key = create_key(&kms, None);
    let ok = pairs(3);
    let blob = encrypt(&kms, &key, ok.clone()).unwrap();
    let gdk = kms.generate_data_key(
        &owner(),
        GenerateDataKeyRequest {
            key_id: key.clone(),
            number_of_bytes: Some(32),
            encryption_context: Some(pairs(65)),
            ..Default::default()
        },
    );
    assert!(validation(gdk).contains(&format!("'encryptionContext' {TOO_MANY}")));
    let decrypt = |ec: EncryptionContext| {
        kms.decrypt(
            &owner(),
            DecryptRequest {
                ciphertext_blob: Some(ferrokms_kms::api::Blob(blob.clone())),
                encryption_context: Some(ec),
                ..Default::default()
            },
        )
    };
    assert!(validation(decrypt(sized(8193))).contains(&format!("'encryptionContext' {TOO_BIG}")));
    decrypt(ok.clone()).unwrap();
    let reencrypt = |src: EncryptionContext, dst: EncryptionContext| {
        kms.re_encrypt(
            &owner(),
            ReEncryptRequest {
                ciphertext_blob: Some(ferrokms_kms::api::Blob(blob.clone())),
                source_encryption_context: Some(src),
                destination_key_id: key.clone(),
                destination_encryption_context: Some(dst),
                ..Default::default()
            },
        )
    };
    assert!(validation(reencrypt(ok.clone(), pairs(65)))
        .contains(&format!("'destinationEncryptionContext' {TOO_MANY}")));
    assert!(validation(reencrypt(sized(8193), ok.clone()))
        .contains(&format!("'sourceEncryptionContext' {TOO_BIG}")));
    reencrypt(ok.clone(), pairs(64)).unwrap();
    // A grant constraint is an encryption context too: AWS's 8 pairs of values of at most
    // 384 characters, and keys within the context's byte bound.
    let grant = |m: BTreeMap<String, String>| {
        kms.create_grant(
            &owner(),
            CreateGrantRequest {
                key_id: key.clone(),
                grantee_principal: Some(format!("arn:aws:iam::{ACCT}:root")),
                operations: vec!["Encrypt".into()],
                constraints: Some(GrantConstraints {
                    encryption_context_subset: Some(m),
                    encryption_context_equals: None,
                    source_arn: None,
                }),
                ..Default::default()
            },
        )
    };
    let long_key: BTreeMap<String, String> = [("k".repeat(9000), "v".to_string())].into();
    assert!(validation(grant(long_key))
        .contains(&format!("'constraints.encryptionContextSubset' {TOO_BIG}")));
    grant([("k".repeat(4000), "v".to_string())].into()).unwrap();
}

/// A key policy of `MAX_POLICY` bytes: the statement that lets root use the key, and a Deny
/// whose condition lists as many copies of `pattern` as fit, with `last` at the end.
fn deny_policy(operator: &str, key: &str, pattern: &str, last: &str) -> String {
    let head = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"kms:*","Resource":"*"}},{{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{{"{operator}":{{"{key}":["#
    );
    let tail = format!(r#""{last}"]}}}}}}]}}"#);
    let item = format!(r#""{pattern}","#);
    let n = (MAX_POLICY - head.len() - tail.len()) / item.len();
    let text = format!("{head}{}{tail}", item.repeat(n));
    assert!(text.len() <= MAX_POLICY);
    text
}

/// The attack of the security review, at the bounds: a 32 KiB key policy of `?` patterns
/// against 64 context keys, and against one key of 8 KiB. The answer is right (the one
/// pattern that matches, placed last, denies) and comes in bounded time; the old matcher
/// needed seconds for much less.
#[test]
fn the_largest_policy_of_patterns_against_the_largest_context_is_answered_correctly_and_quickly() {
    let kms = kms();
    let ab = |n: usize| "ab".repeat(n / 2 + 1)[..n].to_string();
    // 64 keys of 3 to 66 characters of "abab...": `*a?b*` never fits, `*b?a*` neither, but
    // `*a?a*` does (in keys of three characters or more).
    let many = ctx((0..64).map(|i| (ab(3 + i), String::new())));
    let one = ctx([(ab(8190), String::new())]);
    for (ec, label) in [(many, "64 keys"), (one, "one key of 8190 bytes")] {
        for (last, denied) in [("*b?a*", false), ("*a?a*", true)] {
            let policy = deny_policy(
                "ForAnyValue:StringLike",
                "kms:EncryptionContextKeys",
                "*a?b*",
                last,
            );
            let key = create_key(&kms, Some(policy));
            let t = Instant::now();
            let r = encrypt(&kms, &key, ec.clone());
            let took = t.elapsed();
            assert_eq!(
                matches!(r, Err(KmsError::AccessDenied(_))),
                denied,
                "{label}, last pattern {last}: {r:?}"
            );
            // Generous (unoptimised test build, shared machine): the point is seconds versus
            // milliseconds. tests/e2e/test_authz_bounds.py holds the server to 200 ms.
            assert!(took < Duration::from_secs(2), "{label}: {took:?}");
        }
    }
}
