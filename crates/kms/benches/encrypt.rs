//! What authorization costs on the hot path: Encrypt through `Kms` (key
//! lookup, full authorization, AES-GCM) against the bare AES-GCM seal of the
//! same plaintext, for the default key policy with the root caller and for a
//! realistic key policy with an IAM user holding identity policies.
//!
//! `cargo bench -p ferrokms-kms --bench encrypt`

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use divan::Bencher;
use ferrokms_kms::api::{CreateKeyRequest, EncryptRequest, SecretBlob};
use ferrokms_kms::authz::{CallerPolicy, CallerProfile};
use ferrokms_kms::crypto::{self, BlobHeader, EncryptionContext, SymmetricMaterial};
use ferrokms_kms::ids::KeyId;
use ferrokms_kms::{Caller, Kms};
use ferrokms_policy::{ParseOptions, Policy, PolicyKind, RequestPrincipal};
use ferrokms_store::{MemoryStore, Sealer};
use ferrokms_types::{AccountId, Region};

fn main() {
    divan::main();
}

const ACCOUNT: &str = "111122223333";

fn setup(policy: Option<String>) -> (Kms, String) {
    let kms = Kms::open(
        Arc::new(MemoryStore::default()),
        Arc::new(Sealer::ephemeral().unwrap()),
    )
    .unwrap();
    let root = Caller::root(
        AccountId::parse(ACCOUNT).unwrap(),
        Region::parse("us-east-1").unwrap(),
    );
    let req = CreateKeyRequest {
        policy,
        bypass_policy_lockout_safety_check: Some(true),
        ..Default::default()
    };
    let arn = kms.create_key(&root, req).unwrap().key_metadata.arn;
    (kms, arn)
}

fn request(arn: &str) -> EncryptRequest {
    let mut ec = std::collections::BTreeMap::new();
    ec.insert("app".to_string(), "billing".to_string());
    EncryptRequest {
        key_id: arn.to_string(),
        plaintext: SecretBlob(zeroize::Zeroizing::new(vec![7u8; 256])),
        encryption_context: Some(EncryptionContext(ec)),
        ..Default::default()
    }
}

#[divan::bench]
fn encrypt_root_default_key_policy(b: Bencher) {
    let (kms, arn) = setup(None);
    let caller = Caller::root(
        AccountId::parse(ACCOUNT).unwrap(),
        Region::parse("us-east-1").unwrap(),
    );
    // A fresh caller per request (an empty trace), as the server makes.
    b.bench_local(|| kms.encrypt(&caller.clone(), request(&arn)).unwrap());
}

const REALISTIC_KEY_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
 {"Sid":"Allow access for Key Administrators","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],"Resource":"*"},
 {"Sid":"Allow use of the key","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"billing"}}},
 {"Sid":"Deny outside the VPC","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"Bool":{"aws:ViaAWSService":"true"}}}
]}"#;

#[divan::bench]
fn encrypt_iam_user_realistic_policies(b: Bencher) {
    let (kms, arn) = setup(Some(REALISTIC_KEY_POLICY.to_string()));
    let identity = |text: &str| {
        Arc::new(Policy::parse(text, &ParseOptions::for_kind(PolicyKind::IdentityBased)).unwrap())
    };
    let policies = vec![
        CallerPolicy {
            label: "user inline policy kms".into(),
            kind: PolicyKind::IdentityBased,
            policy: identity(&format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"{arn}","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"billing"}}}}}},{{"Effect":"Deny","Action":"kms:ScheduleKeyDeletion","Resource":"*"}}]}}"#
            )),
        },
        CallerPolicy {
            label: "managed policy ReadOnly".into(),
            kind: PolicyKind::IdentityBased,
            policy: identity(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Describe*","kms:List*","kms:Get*"],"Resource":"*"}]}"#,
            ),
        },
    ];
    let mut context = ferrokms_policy::Context::new();
    context.insert("aws:PrincipalTag/team", "billing");
    context.insert("aws:SourceIp", std::net::IpAddr::from([127, 0, 0, 1]));
    let principal = RequestPrincipal::from_arn("arn:aws:iam::111122223333:user/alice")
        .unwrap()
        .with_unique_id("AIDAEXAMPLE000000000");
    for (k, v) in principal.context_keys() {
        context.insert(k, v);
    }
    let caller = Caller {
        account: AccountId::parse(ACCOUNT).unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        profile: Arc::new(CallerProfile {
            principal: Some(principal),
            policies,
            context,
        }),
        context: Default::default(),

        trace: Default::default(),
    };
    kms.encrypt(&caller, request(&arn)).unwrap();
    b.bench_local(|| kms.encrypt(&caller.clone(), request(&arn)).unwrap());
}

#[divan::bench]
fn bare_aes_gcm_seal_same_plaintext(b: Bencher) {
    let material = SymmetricMaterial::from_bytes(&[9u8; 32]).unwrap();
    let header = BlobHeader {
        key_id: KeyId::new_random(false),
        account: AccountId::parse(ACCOUNT).unwrap(),
        material: 0,
    };
    let req = request("x");
    let ec = req.encryption_context.clone().unwrap();
    b.bench(|| crypto::encrypt(&material, &header, &ec, &[7u8; 256]).unwrap());
}

/// What building the AES-256-GCM context costs (key schedule, GHASH table,
/// aws-lc's allocation and wipe): symmetric material keeps only the raw key
/// and pays this once per Encrypt/Decrypt instead of holding ~600 bytes per
/// key (docs/performance.md, "Memory per key").
#[divan::bench]
fn aes_256_gcm_context_setup(b: Bencher) {
    use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
    let key = [9u8; 32];
    b.bench(|| LessSafeKey::new(UnboundKey::new(&AES_256_GCM, divan::black_box(&key)).unwrap()));
}
