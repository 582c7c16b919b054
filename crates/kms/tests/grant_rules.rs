//! AWS's grant rules, each test named after the rule it checks and written
//! the way an attacker would probe it: the caller tries to get more from a
//! grant than the rule gives.
//!
//! About 1,000 lines, one test per grant rule: one file so that the rules
//! of grants are read, and extended, in one place.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use ferrokms_kms::api::{CreateKeyRequest, EncryptRequest};
use ferrokms_kms::grants::CreateGrantRequest;
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::PolicyKind;
use ferrokms_testkit::kms::{
    allow, blob, create_key, default_key_in, denied, encrypt, kms, no_allow, principal, role_arn,
    root, root_arn, session, statement, user, validation, ACCT, OTHER,
};

/// A key of ACCT with AWS's default policy: it delegates to the account's
/// identity policies.
fn default_key(kms: &Kms) -> String {
    create_key(kms, None)
}

/// The user the key policy of [`admin_key`] names.
fn admin() -> Caller {
    user("admin", &[])
}

/// A key of ACCT whose policy names only [`admin`]: identity policies of
/// the account count for nothing on it, so only grants can let others in.
fn admin_key(kms: &Kms) -> String {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin().arn}, "Action": "kms:*", "Resource": "*"}]
    });
    create_key(kms, Some(policy.to_string()))
}

fn grant(
    kms: &Kms,
    by: &Caller,
    key: &str,
    grantee: &str,
    ops: &[&str],
) -> Result<String, KmsError> {
    kms.create_grant(
        by,
        CreateGrantRequest {
            key_id: key.to_string(),
            grantee_principal: Some(grantee.to_string()),
            operations: ops.iter().map(ToString::to_string).collect(),
            ..Default::default()
        },
    )
    .map(|r| r.grant_id)
}

// --- rule: a grant to the caller's account is the caller's IAM permission,
// capped as IAM permissions are (identity ∩ boundary ∩ session policies) ---

#[test]
fn a_grant_to_the_account_applies_only_where_the_callers_identity_policies_allow() {
    let kms = kms();
    let key = admin_key(&kms);
    grant(&kms, &admin(), &key, &root_arn(ACCT), &["Encrypt"]).unwrap();
    let bare = user("bare", &[]);
    assert_eq!(
        denied(encrypt(&kms, &bare, &key)),
        no_allow(&bare, "Encrypt", &key, "resource-based policy")
    );
    encrypt(
        &kms,
        &user(
            "iam",
            &[(PolicyKind::IdentityBased, allow(&["kms:Encrypt"]))],
        ),
        &key,
    )
    .unwrap();
}

#[test]
fn a_grant_to_the_account_is_capped_by_the_callers_permissions_boundary() {
    let kms = kms();
    let key = admin_key(&kms);
    grant(&kms, &admin(), &key, &root_arn(ACCT), &["Encrypt"]).unwrap();
    let capped = user(
        "capped",
        &[
            (PolicyKind::IdentityBased, allow(&["kms:*"])),
            (PolicyKind::PermissionsBoundary, allow(&["kms:DescribeKey"])),
        ],
    );
    denied(encrypt(&kms, &capped, &key));
    let within = user(
        "within",
        &[
            (PolicyKind::IdentityBased, allow(&["kms:*"])),
            (PolicyKind::PermissionsBoundary, allow(&["kms:Encrypt"])),
        ],
    );
    encrypt(&kms, &within, &key).unwrap();
}

#[test]
fn a_grant_to_the_account_is_capped_by_the_session_policy() {
    let kms = kms();
    let key = admin_key(&kms);
    grant(&kms, &admin(), &key, ACCT, &["Encrypt"]).unwrap();
    let capped = session(
        "app",
        "s1",
        &[
            (PolicyKind::IdentityBased, allow(&["kms:*"])),
            (PolicyKind::SessionPolicy, allow(&["kms:DescribeKey"])),
        ],
    );
    denied(encrypt(&kms, &capped, &key));
    let within = session(
        "app",
        "s2",
        &[
            (PolicyKind::IdentityBased, allow(&["kms:*"])),
            (PolicyKind::SessionPolicy, allow(&["kms:Encrypt"])),
        ],
    );
    encrypt(&kms, &within, &key).unwrap();
}

#[test]
fn a_grant_to_the_callers_role_is_capped_by_the_boundary_and_the_session_policy() {
    let kms = kms();
    let key = admin_key(&kms);
    grant(&kms, &admin(), &key, &role_arn("app"), &["Encrypt"]).unwrap();
    // No identity policy is needed: the grant names the role.
    encrypt(&kms, &session("app", "plain", &[]), &key).unwrap();
    let by_session_policy = session(
        "app",
        "narrow",
        &[(PolicyKind::SessionPolicy, allow(&["kms:DescribeKey"]))],
    );
    denied(encrypt(&kms, &by_session_policy, &key));
    let by_boundary = session(
        "app",
        "bounded",
        &[(PolicyKind::PermissionsBoundary, allow(&["kms:DescribeKey"]))],
    );
    denied(encrypt(&kms, &by_boundary, &key));
}

#[test]
fn a_grant_naming_the_callers_own_user_or_session_arn_is_not_capped_by_boundary_or_session_policy()
{
    let kms = kms();
    let key = admin_key(&kms);
    let u = user(
        "direct",
        &[(PolicyKind::PermissionsBoundary, allow(&["kms:DescribeKey"]))],
    );
    grant(&kms, &admin(), &key, &u.arn, &["Encrypt"]).unwrap();
    encrypt(&kms, &u, &key).unwrap();
    let s = session(
        "app",
        "named",
        &[(PolicyKind::SessionPolicy, allow(&["kms:DescribeKey"]))],
    );
    grant(&kms, &admin(), &key, &s.arn, &["Encrypt"]).unwrap();
    encrypt(&kms, &s, &key).unwrap();
}

#[test]
fn an_explicit_deny_in_a_permissions_boundary_beats_a_grant_naming_the_user() {
    let kms = kms();
    let key = admin_key(&kms);
    let u = user(
        "denied",
        &[(
            PolicyKind::PermissionsBoundary,
            statement("Deny", &["kms:Encrypt"]),
        )],
    );
    grant(&kms, &admin(), &key, &u.arn, &["Encrypt"]).unwrap();
    assert_eq!(
        denied(encrypt(&kms, &u, &key)),
        format!(
            "User: {} is not authorized to perform: kms:Encrypt on resource: {key} with an explicit deny in a permissions boundary",
            u.arn
        )
    );
}

#[test]
fn a_cross_account_grant_to_the_callers_account_is_capped_by_its_boundary() {
    let kms = kms();
    let key = default_key(&kms);
    grant(&kms, &root(ACCT), &key, &root_arn(OTHER), &["Encrypt"]).unwrap();
    let arn = format!("arn:aws:iam::{OTHER}:user/outsider");
    let capped = principal(
        &arn,
        None,
        &[
            (PolicyKind::IdentityBased, allow(&["kms:Encrypt"])),
            (PolicyKind::PermissionsBoundary, allow(&["kms:Decrypt"])),
        ],
    );
    denied(encrypt(&kms, &capped, &key));
    let within = principal(
        &arn,
        None,
        &[(PolicyKind::IdentityBased, allow(&["kms:Encrypt"]))],
    );
    encrypt(&kms, &within, &key).unwrap();
}

// --- rule: a principal whose CreateGrant comes from a grant may create only
// grants that narrow a grant that actually applies to it ---

use std::collections::BTreeMap;

use ferrokms_kms::grants::GrantConstraints;

fn grant_with(
    kms: &Kms,
    by: &Caller,
    key: &str,
    grantee: &str,
    ops: &[&str],
    constraints: Option<GrantConstraints>,
) -> Result<String, KmsError> {
    kms.create_grant(
        by,
        CreateGrantRequest {
            key_id: key.to_string(),
            grantee_principal: Some(grantee.to_string()),
            operations: ops.iter().map(ToString::to_string).collect(),
            constraints,
            ..Default::default()
        },
    )
    .map(|r| r.grant_id)
}

fn ec(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_create_grant_only_grant_does_not_let_its_grantee_grant_itself_decrypt() {
    let kms = kms();
    let key = default_key(&kms);
    let x = user("x", &[]);
    grant(&kms, &root(ACCT), &key, &x.arn, &["CreateGrant"]).unwrap();
    // A grant to the account that x's identity policies do not make usable:
    // it must not serve x as the parent of a Decrypt grant.
    grant(
        &kms,
        &root(ACCT),
        &key,
        &root_arn(ACCT),
        &["Decrypt", "CreateGrant"],
    )
    .unwrap();
    let before = kms
        .list_grants(&root(ACCT), list_request(&key))
        .unwrap()
        .grants
        .len();
    for ops in [&["Decrypt"][..], &["CreateGrant", "Decrypt"], &["Encrypt"]] {
        assert_eq!(
            denied(grant(&kms, &x, &key, &x.arn, ops)),
            no_allow(&x, "CreateGrant", &key, "identity-based policy"),
            "{ops:?}"
        );
    }
    let after = kms.list_grants(&root(ACCT), list_request(&key)).unwrap();
    assert_eq!(after.grants.len(), before, "no grant was created");
    // What it holds, it may hand out.
    grant(&kms, &x, &key, &x.arn, &["CreateGrant"]).unwrap();
}

#[test]
fn a_grant_to_the_account_is_a_parent_only_where_the_callers_identity_policies_allow_create_grant()
{
    let kms = kms();
    let key = admin_key(&kms);
    grant(
        &kms,
        &admin(),
        &key,
        &root_arn(ACCT),
        &["Encrypt", "CreateGrant"],
    )
    .unwrap();
    let bare = user("bare", &[]);
    assert_eq!(
        denied(grant(&kms, &bare, &key, &bare.arn, &["Encrypt"])),
        no_allow(&bare, "CreateGrant", &key, "resource-based policy")
    );
    let only_encrypt = user(
        "enc",
        &[(PolicyKind::IdentityBased, allow(&["kms:Encrypt"]))],
    );
    denied(grant(
        &kms,
        &only_encrypt,
        &key,
        &only_encrypt.arn,
        &["Encrypt"],
    ));
    let capped = user(
        "capped",
        &[
            (PolicyKind::IdentityBased, allow(&["kms:CreateGrant"])),
            (PolicyKind::PermissionsBoundary, allow(&["kms:Encrypt"])),
        ],
    );
    denied(grant(&kms, &capped, &key, &capped.arn, &["Encrypt"]));
    let granter = user(
        "granter",
        &[(PolicyKind::IdentityBased, allow(&["kms:CreateGrant"]))],
    );
    grant(&kms, &granter, &key, &user("end", &[]).arn, &["Encrypt"]).unwrap();
    denied(grant(&kms, &granter, &key, &granter.arn, &["Decrypt"]));
}

#[test]
fn a_grant_to_the_callers_role_is_no_parent_where_the_session_policy_does_not_allow_create_grant() {
    let kms = kms();
    let key = admin_key(&kms);
    grant(
        &kms,
        &admin(),
        &key,
        &role_arn("app"),
        &["Encrypt", "CreateGrant"],
    )
    .unwrap();
    let narrow = session(
        "app",
        "narrow",
        &[(PolicyKind::SessionPolicy, allow(&["kms:Encrypt"]))],
    );
    denied(grant(&kms, &narrow, &key, &narrow.arn, &["Encrypt"]));
    let plain = session("app", "plain", &[]);
    grant(&kms, &plain, &key, &narrow.arn, &["Encrypt"]).unwrap();
}

#[test]
fn a_child_grant_may_only_keep_or_tighten_the_encryption_context_constraints_of_its_parent() {
    let kms = kms();
    let key = default_key(&kms);
    let x = user("x", &[]);
    let subset = |pairs: &[(&str, &str)]| GrantConstraints {
        encryption_context_subset: Some(ec(pairs)),
        encryption_context_equals: None,
        source_arn: None,
    };
    grant_with(
        &kms,
        &root(ACCT),
        &key,
        &x.arn,
        &["Encrypt", "CreateGrant"],
        Some(subset(&[("tenant", "a")])),
    )
    .unwrap();
    let end = user("end", &[]).arn;
    denied(grant(&kms, &x, &key, &end, &["Encrypt"]));
    denied(grant_with(
        &kms,
        &x,
        &key,
        &end,
        &["Encrypt"],
        Some(subset(&[("tenant", "b")])),
    ));
    grant_with(
        &kms,
        &x,
        &key,
        &end,
        &["Encrypt"],
        Some(subset(&[("tenant", "a"), ("app", "x")])),
    )
    .unwrap();
    let equals = GrantConstraints {
        encryption_context_subset: None,
        source_arn: None,
        encryption_context_equals: Some(ec(&[("tenant", "a")])),
    };
    grant_with(&kms, &x, &key, &end, &["Encrypt"], Some(equals)).unwrap();
}

fn list_request(key: &str) -> ferrokms_kms::grants::ListGrantsRequest {
    ferrokms_kms::grants::ListGrantsRequest {
        key_id: key.to_string(),
        ..Default::default()
    }
}

// --- rule: ListRetirableGrants names a principal of the caller's own account ---

fn grant_retirable_by(kms: &Kms, key: &str, owner: &Caller, retiring: &str) -> String {
    kms.create_grant(
        owner,
        CreateGrantRequest {
            key_id: key.to_string(),
            grantee_principal: Some(format!("arn:aws:iam::{ACCT}:user/app")),
            retiring_principal: Some(retiring.to_string()),
            operations: vec!["Decrypt".into()],
            constraints: Some(GrantConstraints {
                encryption_context_equals: Some(ec(&[("customer", "secret-tenant")])),
                encryption_context_subset: None,
                source_arn: None,
            }),
            ..Default::default()
        },
    )
    .unwrap()
    .grant_id
}

fn list_retirable(kms: &Kms, caller: &Caller, principal: &str) -> Result<Vec<String>, KmsError> {
    kms.list_retirable_grants(
        caller,
        ferrokms_kms::grants::ListRetirableGrantsRequest {
            retiring_principal: Some(principal.to_string()),
            ..Default::default()
        },
    )
    .map(|r| r.grants.into_iter().map(|g| g.grant_id).collect())
}

#[test]
fn list_retirable_grants_refuses_a_retiring_principal_of_another_account() {
    let kms = kms();
    let key = default_key(&kms);
    let retirer = format!("arn:aws:iam::{ACCT}:user/retirer");
    let id = grant_retirable_by(&kms, &key, &root(ACCT), &retirer);
    let session_arn = format!("arn:aws:sts::{ACCT}:assumed-role/app/s1");
    grant_retirable_by(&kms, &key, &root(ACCT), &session_arn);
    grant_retirable_by(&kms, &key, &root(ACCT), &root_arn(ACCT));
    let attacker = root(OTHER);
    for p in [
        retirer.as_str(),
        session_arn.as_str(),
        ACCT,
        &root_arn(ACCT),
        &format!("arn:aws-cn:iam::{OTHER}:user/retirer"),
        "not a principal",
    ] {
        assert_eq!(
            denied(list_retirable(&kms, &attacker, p)),
            format!(
                "User: {} is not authorized to perform: kms:ListRetirableGrants on resource: {p} because no resource-based policy allows the kms:ListRetirableGrants action",
                attacker.arn
            )
        );
    }
    assert_eq!(list_retirable(&kms, &root(ACCT), &retirer).unwrap(), [id]);
}

#[test]
fn list_retirable_grants_lists_grants_on_other_accounts_keys_for_a_principal_of_the_callers_account(
) {
    let kms = kms();
    let foreign_key = default_key_in(&kms, OTHER);
    let retirer = format!("arn:aws:iam::{ACCT}:user/retirer");
    let id = grant_retirable_by(&kms, &foreign_key, &root(OTHER), &retirer);
    assert_eq!(list_retirable(&kms, &root(ACCT), &retirer).unwrap(), [id]);
    // The key's owner may not list them for ACCT's principal.
    denied(list_retirable(&kms, &root(OTHER), &retirer));
}

// --- rule: DryRun answers "would have succeeded" only after authorization ---

use ferrokms_kms::api::{
    Blob, DecapsulateRequest, DecryptRequest, DeriveSharedSecretRequest, EncapsulateRequest,
    GenerateDataKeyPairRequest, GenerateDataKeyRequest, GenerateMacRequest, ReEncryptRequest,
    SignRequest, VerifyMacRequest, VerifyRequest,
};
use ferrokms_kms::grants::{RetireGrantRequest, RevokeGrantRequest};
use ferrokms_kms::model::{
    DataKeyPairSpec, EncapsulationAlgorithm, EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec,
    KeyUsage, MacAlgorithm, SigningAlgorithm,
};

const DRY: Option<bool> = Some(true);

fn ignore_ciphertext() -> Option<Vec<String>> {
    Some(vec!["IGNORE_CIPHERTEXT".to_string()])
}

fn is_dry_run<T: std::fmt::Debug>(r: Result<T, KmsError>) {
    assert!(matches!(r, Err(KmsError::DryRunOperation(_))), "{r:?}");
}

fn dry_decrypt(
    kms: &Kms,
    caller: &Caller,
    key: Option<&str>,
    ctx: &[(&str, &str)],
) -> Result<(), KmsError> {
    kms.decrypt(
        caller,
        DecryptRequest {
            key_id: key.map(str::to_string),
            encryption_context: (!ctx.is_empty())
                .then(|| ferrokms_kms::crypto::EncryptionContext(ec(ctx))),
            dry_run: DRY,
            dry_run_modifiers: ignore_ciphertext(),
            ..Default::default()
        },
    )
    .map(|_| ())
}

#[test]
fn dry_run_decrypt_ignoring_the_ciphertext_answers_only_a_caller_authorized_on_the_named_key() {
    let kms = kms();
    let key = default_key(&kms);
    let nobody = user("nobody", &[]);
    assert_eq!(
        denied(dry_decrypt(&kms, &nobody, Some(&key), &[])),
        no_allow(&nobody, "Decrypt", &key, "identity-based policy")
    );
    denied(dry_decrypt(&kms, &root(OTHER), Some(&key), &[]));
    is_dry_run(dry_decrypt(&kms, &root(ACCT), Some(&key), &[]));
    let allowed = user(
        "dec",
        &[(PolicyKind::IdentityBased, allow(&["kms:Decrypt"]))],
    );
    is_dry_run(dry_decrypt(&kms, &allowed, Some(&key), &[]));
}

#[test]
fn dry_run_decrypt_ignoring_the_ciphertext_without_a_key_id_is_a_validation_error() {
    let kms = kms();
    default_key(&kms);
    for caller in [root(ACCT), root(OTHER), user("nobody", &[])] {
        assert_eq!(
            validation(dry_decrypt(&kms, &caller, None, &[])),
            "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
        );
    }
}

#[test]
fn dry_run_decrypt_ignoring_the_ciphertext_judges_grant_constraints_on_the_requests_encryption_context(
) {
    let kms = kms();
    let key = default_key(&kms);
    let x = user("x", &[]);
    grant_with(
        &kms,
        &root(ACCT),
        &key,
        &x.arn,
        &["Decrypt"],
        Some(GrantConstraints {
            encryption_context_subset: Some(ec(&[("tenant", "a")])),
            encryption_context_equals: None,
            source_arn: None,
        }),
    )
    .unwrap();
    denied(dry_decrypt(&kms, &x, Some(&key), &[]));
    denied(dry_decrypt(&kms, &x, Some(&key), &[("tenant", "b")]));
    is_dry_run(dry_decrypt(&kms, &x, Some(&key), &[("tenant", "a")]));
}

#[test]
fn dry_run_decrypt_ignoring_the_ciphertext_checks_what_the_real_call_would_after_authorization() {
    let kms = kms();
    let rsa = key_of(&kms, KeySpec::Rsa2048, KeyUsage::EncryptDecrypt);
    let dry_rsa = |caller: &Caller, alg: Option<EncryptionAlgorithm>| {
        kms.decrypt(
            caller,
            DecryptRequest {
                key_id: Some(rsa.clone()),
                encryption_algorithm: alg,
                dry_run: DRY,
                dry_run_modifiers: ignore_ciphertext(),
                ..Default::default()
            },
        )
        .map(|_| ())
    };
    let oaep = Some(EncryptionAlgorithm::RsaesOaepSha256);
    denied(dry_rsa(&user("nobody", &[]), oaep));
    // An RSA key needs its OAEP algorithm, as the real Decrypt does.
    assert!(matches!(
        dry_rsa(&root(ACCT), None),
        Err(KmsError::InvalidKeyUsage(_))
    ));
    is_dry_run(dry_rsa(&root(ACCT), oaep));
    // A key that cannot decrypt at all.
    let sign = key_of(&kms, KeySpec::EccNistP256, KeyUsage::SignVerify);
    assert!(matches!(
        dry_decrypt(&kms, &root(ACCT), Some(&sign), &[]),
        Err(KmsError::InvalidKeyUsage(_))
    ));
}

fn dry_re_encrypt(
    kms: &Kms,
    caller: &Caller,
    source: Option<&str>,
    dest: &str,
) -> Result<(), KmsError> {
    kms.re_encrypt(
        caller,
        ReEncryptRequest {
            source_key_id: source.map(str::to_string),
            destination_key_id: dest.to_string(),
            dry_run: DRY,
            dry_run_modifiers: ignore_ciphertext(),
            ..Default::default()
        },
    )
    .map(|_| ())
}

#[test]
fn dry_run_re_encrypt_ignoring_the_ciphertext_needs_re_encrypt_from_on_the_source_key() {
    let kms = kms();
    let (src, dst) = (default_key(&kms), default_key(&kms));
    let x = user("x", &[]);
    grant(&kms, &root(ACCT), &dst, &x.arn, &["ReEncryptTo"]).unwrap();
    assert_eq!(
        denied(dry_re_encrypt(&kms, &x, Some(&src), &dst)),
        no_allow(&x, "ReEncryptFrom", &src, "identity-based policy")
    );
    assert_eq!(
        validation(dry_re_encrypt(&kms, &x, None, &dst)),
        "1 validation error detected: Value null at 'sourceKeyId' failed to satisfy constraint: Member must not be null"
    );
    grant(&kms, &root(ACCT), &src, &x.arn, &["ReEncryptFrom"]).unwrap();
    is_dry_run(dry_re_encrypt(&kms, &x, Some(&src), &dst));
    denied(dry_re_encrypt(&kms, &root(OTHER), Some(&src), &dst));
}

fn key_of(kms: &Kms, spec: KeySpec, usage: KeyUsage) -> String {
    kms.create_key(
        &root(ACCT),
        CreateKeyRequest {
            key_spec: Some(spec),
            key_usage: Some(usage),
            ..Default::default()
        },
    )
    .unwrap()
    .key_metadata
    .arn
}

#[test]
fn dry_run_answers_only_after_authorization_for_every_operation_that_takes_it() {
    let kms = kms();
    let sym = default_key(&kms);
    let sign = key_of(&kms, KeySpec::EccNistP256, KeyUsage::SignVerify);
    let mac = key_of(&kms, KeySpec::Hmac256, KeyUsage::GenerateVerifyMac);
    let agree = key_of(&kms, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let kem = key_of(&kms, KeySpec::MlKem512, KeyUsage::EncapsulateDecapsulate);
    let owner = root(ACCT);
    let ciphertext = kms
        .encrypt(
            &owner,
            EncryptRequest {
                key_id: sym.clone(),
                plaintext: blob(b"x"),
                ..Default::default()
            },
        )
        .unwrap()
        .ciphertext_blob;
    let grant_id = grant(&kms, &owner, &sym, &user("end", &[]).arn, &["Encrypt"]).unwrap();
    type Op<'a> = Box<dyn Fn(&Caller) -> Result<(), KmsError> + 'a>;
    let ops: Vec<(&str, Op)> = vec![
        (
            "Encrypt",
            Box::new(|c| {
                kms.encrypt(
                    c,
                    EncryptRequest {
                        key_id: sym.clone(),
                        plaintext: blob(b"x"),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "Decrypt",
            Box::new(|c| {
                kms.decrypt(
                    c,
                    DecryptRequest {
                        ciphertext_blob: Some(ciphertext.clone()),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "ReEncrypt",
            Box::new(|c| {
                kms.re_encrypt(
                    c,
                    ReEncryptRequest {
                        ciphertext_blob: Some(ciphertext.clone()),
                        destination_key_id: sym.clone(),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "GenerateDataKey",
            Box::new(|c| {
                kms.generate_data_key(
                    c,
                    GenerateDataKeyRequest {
                        key_id: sym.clone(),
                        number_of_bytes: Some(32),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            Box::new(|c| {
                kms.generate_data_key_without_plaintext(
                    c,
                    GenerateDataKeyRequest {
                        key_id: sym.clone(),
                        number_of_bytes: Some(32),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "GenerateDataKeyPair",
            Box::new(|c| {
                kms.generate_data_key_pair(
                    c,
                    GenerateDataKeyPairRequest {
                        key_id: sym.clone(),
                        key_pair_spec: Some(DataKeyPairSpec::EccNistP256),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            Box::new(|c| {
                kms.generate_data_key_pair_without_plaintext(
                    c,
                    GenerateDataKeyPairRequest {
                        key_id: sym.clone(),
                        key_pair_spec: Some(DataKeyPairSpec::EccNistP256),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "Sign",
            Box::new(|c| {
                kms.sign(
                    c,
                    SignRequest {
                        key_id: sign.clone(),
                        message: blob(b"m"),
                        signing_algorithm: Some(SigningAlgorithm::EcdsaSha256),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "Verify",
            Box::new(|c| {
                kms.verify(
                    c,
                    VerifyRequest {
                        key_id: sign.clone(),
                        message: blob(b"m"),
                        signature: Blob(vec![0; 8]),
                        signing_algorithm: Some(SigningAlgorithm::EcdsaSha256),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "GenerateMac",
            Box::new(|c| {
                kms.generate_mac(
                    c,
                    GenerateMacRequest {
                        key_id: mac.clone(),
                        message: blob(b"m"),
                        mac_algorithm: Some(MacAlgorithm::HmacSha256),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "VerifyMac",
            Box::new(|c| {
                kms.verify_mac(
                    c,
                    VerifyMacRequest {
                        key_id: mac.clone(),
                        message: blob(b"m"),
                        mac: Blob(vec![0; 32]),
                        mac_algorithm: Some(MacAlgorithm::HmacSha256),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "DeriveSharedSecret",
            Box::new(|c| {
                kms.derive_shared_secret(
                    c,
                    DeriveSharedSecretRequest {
                        key_id: agree.clone(),
                        key_agreement_algorithm: Some(KeyAgreementAlgorithm::Ecdh),
                        public_key: Blob(vec![0; 8]),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "Encapsulate",
            Box::new(|c| {
                kms.encapsulate(
                    c,
                    EncapsulateRequest {
                        key_id: kem.clone(),
                        encapsulation_algorithm: Some(EncapsulationAlgorithm::MlKem),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "Decapsulate",
            Box::new(|c| {
                kms.decapsulate(
                    c,
                    DecapsulateRequest {
                        key_id: kem.clone(),
                        shared_secret_ciphertext_blob: Blob(vec![0; 768]),
                        encapsulation_algorithm: Some(EncapsulationAlgorithm::MlKem),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "CreateGrant",
            Box::new(|c| {
                kms.create_grant(
                    c,
                    CreateGrantRequest {
                        key_id: sym.clone(),
                        grantee_principal: Some(user("g", &[]).arn),
                        operations: vec!["Encrypt".into()],
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "RetireGrant",
            Box::new(|c| {
                kms.retire_grant(
                    c,
                    RetireGrantRequest {
                        key_id: Some(sym.clone()),
                        grant_id: Some(grant_id.clone()),
                        dry_run: DRY,
                        ..Default::default()
                    },
                )
                .map(|_| ())
            }),
        ),
        (
            "RevokeGrant",
            Box::new(|c| {
                kms.revoke_grant(
                    c,
                    RevokeGrantRequest {
                        key_id: sym.clone(),
                        grant_id: grant_id.clone(),
                        dry_run: DRY,
                    },
                )
                .map(|_| ())
            }),
        ),
    ];
    for (name, op) in &ops {
        for stranger in [user("nobody", &[]), root(OTHER)] {
            match op(&stranger) {
                Err(KmsError::AccessDenied(_)) => {}
                other => panic!("{name} by {}: {other:?}", stranger.arn),
            }
        }
        match op(&owner) {
            Err(KmsError::DryRunOperation(_)) => {}
            other => panic!("{name} by the owner: {other:?}"),
        }
    }
}

// --- rule: retiring a grant through the grant itself is capped as using
// it is: a grant naming the caller's role is worth what the session's
// permissions boundary and session policies allow ---

fn retire(kms: &Kms, caller: &Caller, key: &str, grant_id: &str) -> Result<(), KmsError> {
    kms.retire_grant(
        caller,
        RetireGrantRequest {
            key_id: Some(key.to_string()),
            grant_id: Some(grant_id.to_string()),
            ..Default::default()
        },
    )
    .map(|_| ())
}

#[test]
fn a_retiring_principal_role_is_capped_by_the_sessions_boundary_and_session_policy() {
    let kms = kms();
    let key = admin_key(&kms);
    let narrow = [(PolicyKind::PermissionsBoundary, allow(&["kms:DescribeKey"]))];
    let id = grant_retirable_by(&kms, &key, &admin(), &role_arn("retirer"));
    let m = denied(retire(
        &kms,
        &session("retirer", "bounded", &narrow),
        &key,
        &id,
    ));
    assert!(m.contains("kms:RetireGrant"), "{m}");
    let by_session_policy = [(PolicyKind::SessionPolicy, allow(&["kms:DescribeKey"]))];
    denied(retire(
        &kms,
        &session("retirer", "narrow", &by_session_policy),
        &key,
        &id,
    ));
    // The role's session with nothing narrowing it retires the grant.
    retire(&kms, &session("retirer", "plain", &[]), &key, &id).unwrap();
}

#[test]
fn a_grantee_role_retires_only_within_its_sessions_caps_and_only_with_retire_grant_in_the_grant() {
    let kms = kms();
    let key = admin_key(&kms);
    let without = grant(&kms, &admin(), &key, &role_arn("app"), &["Decrypt"]).unwrap();
    denied(retire(&kms, &session("app", "s", &[]), &key, &without));
    let with = grant(
        &kms,
        &admin(),
        &key,
        &role_arn("app"),
        &["Decrypt", "RetireGrant"],
    )
    .unwrap();
    let bounded = [(PolicyKind::PermissionsBoundary, allow(&["kms:Decrypt"]))];
    denied(retire(
        &kms,
        &session("app", "bounded", &bounded),
        &key,
        &with,
    ));
    retire(&kms, &session("app", "plain", &[]), &key, &with).unwrap();
}

#[test]
fn an_explicit_deny_of_retire_grant_beats_being_the_retiring_principal() {
    let kms = kms();
    let key = admin_key(&kms);
    let retirer = user(
        "retirer",
        &[(
            PolicyKind::IdentityBased,
            statement("Deny", &["kms:RetireGrant"]),
        )],
    );
    let id = grant_retirable_by(&kms, &key, &admin(), &retirer.arn);
    let m = denied(retire(&kms, &retirer, &key, &id));
    assert!(
        m.ends_with("with an explicit deny in an identity-based policy"),
        "{m}"
    );
}

// --- rule: a grant allows only the operations it lists, and Encapsulate /
// Decapsulate only on an ENCAPSULATE_DECAPSULATE key ---

fn encapsulate(kms: &Kms, caller: &Caller, key: &str) -> Result<Vec<u8>, KmsError> {
    kms.encapsulate(
        caller,
        EncapsulateRequest {
            key_id: key.to_string(),
            encapsulation_algorithm: Some(EncapsulationAlgorithm::MlKem),
            ..Default::default()
        },
    )
    .map(|r| r.shared_secret_ciphertext_blob.0)
}

fn decapsulate(kms: &Kms, caller: &Caller, key: &str, ct: &[u8]) -> Result<(), KmsError> {
    kms.decapsulate(
        caller,
        DecapsulateRequest {
            key_id: key.to_string(),
            shared_secret_ciphertext_blob: Blob(ct.to_vec()),
            encapsulation_algorithm: Some(EncapsulationAlgorithm::MlKem),
            ..Default::default()
        },
    )
    .map(|_| ())
}

#[test]
fn a_grant_for_encapsulate_does_not_allow_decapsulate() {
    let kms = kms();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin().arn}, "Action": "kms:*", "Resource": "*"}]
    });
    let key = kms
        .create_key(
            &root(ACCT),
            CreateKeyRequest {
                key_spec: Some(KeySpec::MlKem768),
                key_usage: Some(KeyUsage::EncapsulateDecapsulate),
                policy: Some(policy.to_string()),
                bypass_policy_lockout_safety_check: Some(true),
                ..Default::default()
            },
        )
        .unwrap()
        .key_metadata
        .arn;
    let grantee = user("kem-grantee", &[]);
    denied(encapsulate(&kms, &grantee, &key));
    grant(&kms, &admin(), &key, &grantee.arn, &["Encapsulate"]).unwrap();
    let ct = encapsulate(&kms, &grantee, &key).unwrap();
    let m = denied(decapsulate(&kms, &grantee, &key, &ct));
    assert!(m.contains("kms:Decapsulate"), "{m}");
    grant(&kms, &admin(), &key, &grantee.arn, &["Decapsulate"]).unwrap();
    decapsulate(&kms, &grantee, &key, &ct).unwrap();
}

#[test]
fn grant_operations_encapsulate_and_decapsulate_are_valid_only_for_an_encapsulate_decapsulate_key()
{
    let kms = kms();
    let kem = key_of(&kms, KeySpec::MlKem1024, KeyUsage::EncapsulateDecapsulate);
    let sym = default_key(&kms);
    let agree = key_of(&kms, KeySpec::EccNistP256, KeyUsage::KeyAgreement);
    let owner = root(ACCT);
    let grantee = user("g", &[]).arn;
    for op in ["Encapsulate", "Decapsulate", "GetPublicKey", "DescribeKey"] {
        grant(&kms, &owner, &kem, &grantee, &[op]).unwrap();
    }
    for op in [
        "Encrypt",
        "Sign",
        "DeriveSharedSecret",
        "GenerateDataKeyPair",
    ] {
        let m = validation(grant(&kms, &owner, &kem, &grantee, &[op]));
        assert!(
            m.starts_with(&format!("Grant operation {op} is not valid")),
            "{m}"
        );
    }
    for key in [&sym, &agree] {
        for op in ["Encapsulate", "Decapsulate"] {
            validation(grant(&kms, &owner, key, &grantee, &[op]));
        }
    }
}
