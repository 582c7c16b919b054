//! Grants to AWS service principals (`GranteeServicePrincipal`,
//! `RetiringServicePrincipal`, the `SourceArn` constraint) and ListKeys'
//! `ResourceOwners`, each test named after the AWS rule it checks. The
//! attacker tries to use a service's grant without being that service, or
//! for another resource than the grant's.
//!
//! A service principal's call is a request whose facts carry a
//! [`ServiceCall`]: on the wire, a principal trusted with
//! `--via-service-principal` signs `X-Ferrokms-Service-Principal` (and
//! `X-Ferrokms-Source-Arn`), docs/keys.md.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ferrokms_authz::{RequestFacts, ServiceCall};
use ferrokms_kms::api::{DescribeKeyRequest, EncryptRequest, ListKeysRequest, ResourceOwner};
use ferrokms_kms::crypto::EncryptionContext;
use ferrokms_kms::grants::{
    CreateGrantRequest, GrantConstraints, ListGrantsRequest, ListRetirableGrantsRequest,
    RetireGrantRequest,
};
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::PolicyKind;
use ferrokms_testkit::kms::{
    allow, blob, create_key, default_key_in, denied, encrypt, kms, no_allow, owner, principal,
    root, root_arn, session, user, validation, with_facts, ACCT, OTHER,
};

/// The account of the principal trusted to stand in for AWS services.
const SERVICES: &str = "999988887777";
const DYNAMODB: &str = "dynamodb.amazonaws.com";
const TABLE: &str = "arn:aws:dynamodb:us-east-1:111122223333:table/orders";
const OTHER_TABLE: &str = "arn:aws:dynamodb:us-east-1:444455556666:table/orders";

/// The user trusted to stand in for AWS services, with its own policies.
fn stand_in(policies: &[(PolicyKind, String)]) -> Caller {
    principal(
        &format!("arn:aws:iam::{SERVICES}:user/aws-services"),
        None,
        policies,
    )
}

/// `stand_in` calling as `service` for `source_arn`.
fn calling_as(stand_in: &Caller, service: &str, source_arn: Option<&str>) -> Caller {
    with_facts(
        stand_in,
        RequestFacts {
            source_ip: None,
            secure_transport: true,
            epoch_seconds: 1_800_000_000,
            via_service: None,
            service_call: Some(ServiceCall {
                principal: service.to_string(),
                source_arn: source_arn.map(str::to_string),
            }),
        },
    )
}

/// The trusted stand-in (no policies of its own) calling as `service` for
/// `source_arn`.
fn service(service: &str, source_arn: Option<&str>) -> Caller {
    calling_as(&stand_in(&[]), service, source_arn)
}

/// DynamoDB calling for [`TABLE`].
fn dynamodb() -> Caller {
    service(DYNAMODB, Some(TABLE))
}

fn source_arn(arn: &str) -> Option<GrantConstraints> {
    Some(GrantConstraints {
        source_arn: Some(arn.to_string()),
        ..Default::default()
    })
}

/// A grant of `ops` on `key` to DynamoDB for [`TABLE`], retired by the
/// key's account, created by `by`.
fn service_grant(kms: &Kms, by: &Caller, key: &str, ops: &[&str]) -> Result<String, KmsError> {
    kms.create_grant(
        by,
        CreateGrantRequest {
            key_id: key.to_string(),
            grantee_service_principal: Some(DYNAMODB.into()),
            retiring_principal: Some(root_arn(ACCT)),
            operations: ops.iter().map(ToString::to_string).collect(),
            constraints: source_arn(TABLE),
            ..Default::default()
        },
    )
    .map(|r| r.grant_id)
}

fn list_grants(kms: &Kms, by: &Caller, req: ListGrantsRequest) -> Result<Vec<String>, KmsError> {
    kms.list_grants(by, req)
        .map(|r| r.grants.into_iter().map(|g| g.grant_id).collect())
}

// --- rule: a grant to a service principal allows that service principal's
// own calls, and only for the resource of its SourceArn constraint ---

#[test]
fn a_grant_to_a_service_principal_allows_its_calls_for_the_source_arn() {
    let kms = kms();
    let key = create_key(&kms, None);
    denied(encrypt(&kms, &dynamodb(), &key));
    service_grant(&kms, &owner(), &key, &["Encrypt", "DescribeKey"]).unwrap();
    encrypt(&kms, &dynamodb(), &key).unwrap();
    kms.describe_key(
        &dynamodb(),
        DescribeKeyRequest {
            key_id: key.clone(),
            ..Default::default()
        },
    )
    .unwrap();
}

#[test]
fn a_source_arn_constraint_refuses_a_call_for_another_resource_or_for_none() {
    let kms = kms();
    let key = create_key(&kms, None);
    service_grant(&kms, &owner(), &key, &["Encrypt", "DescribeKey"]).unwrap();
    for caller in [
        service(DYNAMODB, Some(OTHER_TABLE)),
        service(DYNAMODB, None),
    ] {
        assert_eq!(
            denied(encrypt(&kms, &caller, &key)),
            no_allow(&caller, "Encrypt", &key, "resource-based policy")
        );
        // AWS: SourceArn applies to DescribeKey too.
        denied(kms.describe_key(
            &caller,
            DescribeKeyRequest {
                key_id: key.clone(),
                ..Default::default()
            },
        ));
    }
}

#[test]
fn a_grant_to_a_service_principal_does_not_let_any_user_or_role_use_the_key() {
    let kms = kms();
    let key = create_key(&kms, None);
    service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    for caller in [
        // The trusted stand-in itself, calling without the service header.
        stand_in(&[]),
        user("bare", &[]),
        session("app", "s", &[]),
        root(OTHER),
        principal(
            &format!("arn:aws:iam::{OTHER}:user/dynamodb.amazonaws.com"),
            None,
            &[],
        ),
    ] {
        denied(encrypt(&kms, &caller, &key));
    }
}

#[test]
fn a_grant_to_one_service_principal_does_not_let_another_service_use_the_key() {
    let kms = kms();
    let key = create_key(&kms, None);
    service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    denied(encrypt(
        &kms,
        &service("s3.amazonaws.com", Some(TABLE)),
        &key,
    ));
}

#[test]
fn a_source_arn_constraint_and_an_encryption_context_constraint_must_both_hold() {
    let kms = kms();
    let key = create_key(&kms, None);
    kms.create_grant(
        &owner(),
        CreateGrantRequest {
            key_id: key.clone(),
            grantee_service_principal: Some(DYNAMODB.into()),
            retiring_service_principal: Some(DYNAMODB.into()),
            operations: vec!["Encrypt".into()],
            constraints: Some(GrantConstraints {
                source_arn: Some(TABLE.into()),
                encryption_context_subset: Some(BTreeMap::from([(
                    "table".to_string(),
                    "orders".to_string(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let with_context = |caller: &Caller, value: &str| {
        kms.encrypt(
            caller,
            EncryptRequest {
                key_id: key.clone(),
                plaintext: blob(b"x"),
                encryption_context: Some(EncryptionContext(BTreeMap::from([(
                    "table".to_string(),
                    value.to_string(),
                )]))),
                ..Default::default()
            },
        )
    };
    with_context(&dynamodb(), "orders").unwrap();
    denied(with_context(&dynamodb(), "invoices"));
    denied(with_context(
        &service(DYNAMODB, Some(OTHER_TABLE)),
        "orders",
    ));
}

#[test]
fn a_source_arn_constraint_on_a_grant_to_a_user_never_applies_to_the_users_own_calls() {
    // AWS: the constraint is "effectively the same as having the
    // aws:SourceArn global condition key in the grant": a user's own
    // request carries no aws:SourceArn.
    let kms = kms();
    let key = create_key(&kms, None);
    let app = user("app", &[]);
    kms.create_grant(
        &owner(),
        CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: Some(app.arn.clone()),
            operations: vec!["Encrypt".into()],
            constraints: source_arn(TABLE),
            ..Default::default()
        },
    )
    .unwrap();
    denied(encrypt(&kms, &app, &key));
}

#[test]
fn a_service_principals_grant_is_not_capped_by_the_stand_ins_own_policies() {
    // The stand-in's permissions boundary is not the service's: the
    // service principal has no identity-side policies. Explicit denies of
    // the key policy still win (grant_rules.rs).
    let kms = kms();
    let key = create_key(&kms, None);
    service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    let capped = calling_as(
        &stand_in(&[(PolicyKind::PermissionsBoundary, allow(&["kms:DescribeKey"]))]),
        DYNAMODB,
        Some(TABLE),
    );
    encrypt(&kms, &capped, &key).unwrap();
}

#[test]
fn an_explicit_deny_in_the_key_policy_beats_a_service_principals_grant() {
    let kms = kms();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root_arn(ACCT)}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceArn": TABLE}}}
        ]
    });
    let key = create_key(&kms, Some(policy.to_string()));
    service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    denied(encrypt(&kms, &dynamodb(), &key));
}

#[test]
fn a_key_policy_naming_the_service_principal_does_not_match_its_calls() {
    // Only grants model service principals (docs/authorization.md, "What
    // is not modelled"): a `Service` principal in a key policy names no
    // principal that can sign a request here.
    let kms = kms();
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root_arn(ACCT)}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": DYNAMODB}, "Action": "kms:Encrypt", "Resource": "*"}
        ]
    });
    let key = create_key(&kms, Some(policy.to_string()));
    denied(encrypt(&kms, &dynamodb(), &key));
}

// --- rule: CreateGrant takes exactly one grantee, at most one retiring
// principal, and a grant to a service principal needs SourceArn and a
// retiring principal ---

#[test]
fn create_grant_needs_exactly_one_of_grantee_principal_and_grantee_service_principal() {
    let kms = kms();
    let key = create_key(&kms, None);
    let base = || CreateGrantRequest {
        key_id: key.clone(),
        retiring_principal: Some(root_arn(ACCT)),
        operations: vec!["Encrypt".into()],
        constraints: source_arn(TABLE),
        ..Default::default()
    };
    assert_eq!(
        validation(kms.create_grant(
            &owner(),
            CreateGrantRequest {
                grantee_principal: Some(root_arn(ACCT)),
                grantee_service_principal: Some(DYNAMODB.into()),
                ..base()
            }
        )),
        "You must specify either GranteePrincipal or GranteeServicePrincipal, but not both."
    );
    assert_eq!(
        validation(kms.create_grant(&owner(), base())),
        "You must specify either GranteePrincipal or GranteeServicePrincipal."
    );
}

#[test]
fn a_grantee_service_principal_needs_a_source_arn_constraint_and_a_retiring_principal() {
    let kms = kms();
    let key = create_key(&kms, None);
    let base = || CreateGrantRequest {
        key_id: key.clone(),
        grantee_service_principal: Some(DYNAMODB.into()),
        retiring_principal: Some(root_arn(ACCT)),
        operations: vec!["Encrypt".into()],
        constraints: source_arn(TABLE),
        ..Default::default()
    };
    assert_eq!(
        validation(kms.create_grant(
            &owner(),
            CreateGrantRequest {
                constraints: None,
                ..base()
            }
        )),
        "When you specify a GranteeServicePrincipal, you must also specify a SourceArn grant constraint."
    );
    assert_eq!(
        validation(kms.create_grant(
            &owner(),
            CreateGrantRequest {
                retiring_principal: None,
                ..base()
            }
        )),
        "When you specify a GranteeServicePrincipal, you must also specify either a RetiringPrincipal or a RetiringServicePrincipal."
    );
    assert_eq!(
        validation(kms.create_grant(
            &owner(),
            CreateGrantRequest {
                retiring_service_principal: Some(DYNAMODB.into()),
                ..base()
            }
        )),
        "You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
    );
    kms.create_grant(&owner(), base()).unwrap();
}

#[test]
fn a_source_arn_constraint_is_valid_on_an_asymmetric_key() {
    // AWS: SourceArn "is supported on grants for all types of KMS keys".
    let kms = kms();
    let key = ferrokms_testkit::kms::new_key(
        &kms,
        Some(ferrokms_kms::model::KeySpec::EccNistP256),
        Some(ferrokms_kms::model::KeyUsage::SignVerify),
    );
    service_grant(&kms, &owner(), &key, &["Sign", "GetPublicKey"]).unwrap();
}

#[test]
fn create_grant_sets_the_service_principal_condition_keys() {
    // A key policy that lets `granter` create grants only to DynamoDB for
    // TABLE, with a SourceArn constraint.
    let kms = kms();
    let granter = user("granter", &[]);
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root_arn(ACCT)}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": granter.arn}, "Action": "kms:CreateGrant", "Resource": "*",
             "Condition": {
                 "StringEquals": {
                     "kms:GranteeServicePrincipal": DYNAMODB,
                     "kms:GrantConstraintSourceArn": TABLE,
                     "kms:RetiringPrincipal": root_arn(ACCT),
                     "kms:GrantConstraintType": "SourceArn"
                 }
             }}
        ]
    });
    let key = create_key(&kms, Some(policy.to_string()));
    service_grant(&kms, &granter, &key, &["Encrypt"]).unwrap();
    let to_s3 = kms.create_grant(
        &granter,
        CreateGrantRequest {
            key_id: key.clone(),
            grantee_service_principal: Some("s3.amazonaws.com".into()),
            retiring_principal: Some(root_arn(ACCT)),
            operations: vec!["Encrypt".into()],
            constraints: source_arn(TABLE),
            ..Default::default()
        },
    );
    // The key policy delegates to the account, whose identity policies do
    // not allow either.
    assert_eq!(
        denied(to_s3),
        no_allow(&granter, "CreateGrant", &key, "identity-based policy")
    );
    let other_table = kms.create_grant(
        &granter,
        CreateGrantRequest {
            key_id: key.clone(),
            grantee_service_principal: Some(DYNAMODB.into()),
            retiring_principal: Some(root_arn(ACCT)),
            operations: vec!["Encrypt".into()],
            constraints: source_arn(OTHER_TABLE),
            ..Default::default()
        },
    );
    denied(other_table);
}

#[test]
fn naming_a_service_principal_in_another_accounts_key_grant_needs_that_keys_policy() {
    let kms = kms();
    let key = create_key(&kms, None);
    let attacker = root(OTHER);
    assert_eq!(
        denied(service_grant(&kms, &attacker, &key, &["Encrypt"])),
        no_allow(&attacker, "CreateGrant", &key, "resource-based policy")
    );
    denied(encrypt(&kms, &dynamodb(), &key));
}

#[test]
fn a_service_principal_may_narrow_its_own_grant_only_for_the_same_source_arn() {
    let kms = kms();
    let key = create_key(&kms, None);
    service_grant(&kms, &owner(), &key, &["Encrypt", "CreateGrant"]).unwrap();
    let child = |source: &str| CreateGrantRequest {
        key_id: key.clone(),
        grantee_principal: Some(root_arn(ACCT)),
        operations: vec!["Encrypt".into()],
        constraints: source_arn(source),
        ..Default::default()
    };
    kms.create_grant(&dynamodb(), child(TABLE)).unwrap();
    denied(kms.create_grant(&dynamodb(), child(OTHER_TABLE)));
    denied(kms.create_grant(&service(DYNAMODB, Some(OTHER_TABLE)), child(OTHER_TABLE)));
}

// --- rule: ListGrants shows and filters by GranteeServicePrincipal; the
// service filters are usable only by that service principal ---

#[test]
fn list_grants_shows_the_grantee_service_principal_instead_of_a_grantee_principal() {
    let kms = kms();
    let key = create_key(&kms, None);
    let id = service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    let listed = kms
        .list_grants(
            &owner(),
            ListGrantsRequest {
                key_id: key.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let g = listed.grants.iter().find(|g| g.grant_id == id).unwrap();
    assert_eq!(g.grantee_service_principal.as_deref(), Some(DYNAMODB));
    assert_eq!(g.grantee_principal, None);
    assert_eq!(g.retiring_principal, Some(root_arn(ACCT)));
    assert_eq!(
        g.constraints.as_ref().and_then(|c| c.source_arn.as_deref()),
        Some(TABLE)
    );
}

#[test]
fn list_grants_by_grantee_service_principal_shows_only_that_services_grants_of_that_key() {
    let kms = kms();
    let key = create_key(&kms, None);
    let other_key = create_key(&kms, None);
    let mine = service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    service_grant(&kms, &owner(), &other_key, &["Encrypt"]).unwrap();
    kms.create_grant(
        &owner(),
        CreateGrantRequest {
            key_id: key.clone(),
            grantee_principal: Some(root_arn(ACCT)),
            operations: vec!["Encrypt".into()],
            ..Default::default()
        },
    )
    .unwrap();
    // The stand-in must be allowed kms:ListGrants on the key: a key policy
    // naming it, and (another account's key) its own identity policy.
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root_arn(ACCT)}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": stand_in(&[]).arn},
             "Action": "kms:ListGrants", "Resource": "*"}
        ]
    });
    kms.put_key_policy(
        &owner(),
        ferrokms_kms::api::PutKeyPolicyRequest {
            key_id: key.clone(),
            policy: policy.to_string(),
            bypass_policy_lockout_safety_check: Some(true),
            ..Default::default()
        },
    )
    .unwrap();
    let by_service = |caller: &Caller, service: &str| {
        list_grants(
            &kms,
            caller,
            ListGrantsRequest {
                key_id: key.clone(),
                grantee_service_principal: Some(service.into()),
                ..Default::default()
            },
        )
    };
    let lister = calling_as(
        &stand_in(&[(PolicyKind::IdentityBased, allow(&["kms:ListGrants"]))]),
        DYNAMODB,
        Some(TABLE),
    );
    assert_eq!(by_service(&lister, DYNAMODB).unwrap(), vec![mine]);
    // Only a caller in that service principal may filter by it.
    denied(by_service(&owner(), DYNAMODB));
    denied(by_service(&service("s3.amazonaws.com", None), DYNAMODB));
    // A GranteePrincipal filter never matches a service grant.
    let by_principal = list_grants(
        &kms,
        &owner(),
        ListGrantsRequest {
            key_id: key.clone(),
            grantee_principal: Some(DYNAMODB.into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(by_principal.is_empty());
    assert_eq!(
        validation(list_grants(
            &kms,
            &owner(),
            ListGrantsRequest {
                key_id: key.clone(),
                grantee_principal: Some(root_arn(ACCT)),
                grantee_service_principal: Some(DYNAMODB.into()),
                ..Default::default()
            },
        )),
        "You can specify either GranteePrincipal or GranteeServicePrincipal, but not both."
    );
}

#[test]
fn list_grants_of_another_accounts_key_is_refused_even_with_a_service_filter() {
    let kms = kms();
    let key = create_key(&kms, None);
    service_grant(&kms, &owner(), &key, &["Encrypt"]).unwrap();
    let attacker = user("eve", &[(PolicyKind::IdentityBased, allow(&["kms:*"]))]);
    let foreign = default_key_in(&kms, OTHER);
    // The attacker of ACCT on OTHER's key, and the service itself on a key
    // whose policy does not let it list.
    denied(list_grants(
        &kms,
        &attacker,
        ListGrantsRequest {
            key_id: foreign,
            ..Default::default()
        },
    ));
    denied(list_grants(
        &kms,
        &dynamodb(),
        ListGrantsRequest {
            key_id: key,
            grantee_service_principal: Some(DYNAMODB.into()),
            ..Default::default()
        },
    ));
}

// --- rule: ListRetirableGrants by RetiringServicePrincipal, and RetireGrant
// by the retiring service principal ---

#[test]
fn list_retirable_grants_by_retiring_service_principal_is_only_for_that_service() {
    let kms = kms();
    let key = create_key(&kms, None);
    let id = kms
        .create_grant(
            &owner(),
            CreateGrantRequest {
                key_id: key.clone(),
                grantee_service_principal: Some(DYNAMODB.into()),
                retiring_service_principal: Some(DYNAMODB.into()),
                operations: vec!["Encrypt".into()],
                constraints: source_arn(TABLE),
                ..Default::default()
            },
        )
        .unwrap()
        .grant_id;
    let stand_in_allowed = calling_as(
        &stand_in(&[(
            PolicyKind::IdentityBased,
            allow(&["kms:ListRetirableGrants"]),
        )]),
        DYNAMODB,
        None,
    );
    let list = |caller: &Caller, req: ListRetirableGrantsRequest| {
        kms.list_retirable_grants(caller, req)
            .map(|r| r.grants.into_iter().map(|g| g.grant_id).collect::<Vec<_>>())
    };
    assert_eq!(
        list(
            &stand_in_allowed,
            ListRetirableGrantsRequest {
                retiring_service_principal: Some(DYNAMODB.into()),
                ..Default::default()
            }
        )
        .unwrap(),
        vec![id]
    );
    // The account's root, and another service, are not DynamoDB.
    denied(list(
        &owner(),
        ListRetirableGrantsRequest {
            retiring_service_principal: Some(DYNAMODB.into()),
            ..Default::default()
        },
    ));
    denied(list(
        &service("s3.amazonaws.com", None),
        ListRetirableGrantsRequest {
            retiring_service_principal: Some(DYNAMODB.into()),
            ..Default::default()
        },
    ));
    for req in [
        ListRetirableGrantsRequest::default(),
        ListRetirableGrantsRequest {
            retiring_principal: Some(root_arn(ACCT)),
            retiring_service_principal: Some(DYNAMODB.into()),
            ..Default::default()
        },
    ] {
        assert_eq!(
            validation(list(&owner(), req)),
            "You must specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
        );
    }
}

#[test]
fn the_retiring_service_principal_retires_the_grant_whatever_its_source_arn() {
    // AWS: the SourceArn constraint "does not apply to RetireGrant".
    let kms = kms();
    let key = create_key(&kms, None);
    let create = || {
        kms.create_grant(
            &owner(),
            CreateGrantRequest {
                key_id: key.clone(),
                grantee_service_principal: Some(DYNAMODB.into()),
                retiring_service_principal: Some(DYNAMODB.into()),
                operations: vec!["Encrypt".into()],
                constraints: source_arn(TABLE),
                ..Default::default()
            },
        )
        .unwrap()
        .grant_id
    };
    let retire = |caller: &Caller, id: &str| {
        kms.retire_grant(
            caller,
            RetireGrantRequest {
                key_id: Some(key.clone()),
                grant_id: Some(id.to_string()),
                ..Default::default()
            },
        )
    };
    let id = create();
    denied(retire(&service("s3.amazonaws.com", Some(TABLE)), &id));
    denied(retire(&user("bare", &[]), &id));
    retire(&service(DYNAMODB, Some(OTHER_TABLE)), &id).unwrap();
    denied(encrypt(&kms, &dynamodb(), &key));
    let id = create();
    retire(&service(DYNAMODB, None), &id).unwrap();
}

// --- rule: ListKeys' ResourceOwners: SELF is the account's keys;
// OTHER_ACCOUNTS_VIA_RAM adds none (no key is shared through RAM here) ---

#[test]
fn list_keys_resource_owners_self_lists_the_accounts_keys_and_ram_shares_none() {
    let kms = kms();
    let key = create_key(&kms, None);
    default_key_in(&kms, OTHER);
    let list = |owners: Option<Vec<ResourceOwner>>| {
        kms.list_keys(
            &owner(),
            ListKeysRequest {
                resource_owners: owners,
                ..Default::default()
            },
        )
        .unwrap()
        .keys
        .into_iter()
        .map(|k| k.key_arn)
        .collect::<Vec<_>>()
    };
    assert_eq!(list(None), vec![key.clone()]);
    assert_eq!(
        list(Some(vec![ResourceOwner::OwnAccount])),
        vec![key.clone()]
    );
    assert_eq!(
        list(Some(vec![
            ResourceOwner::OtherAccountsViaRam,
            ResourceOwner::OwnAccount
        ])),
        vec![key]
    );
    assert!(list(Some(vec![ResourceOwner::OtherAccountsViaRam])).is_empty());
    assert!(matches!(
        kms.list_keys(
            &owner(),
            ListKeysRequest {
                resource_owners: Some(vec![]),
                ..Default::default()
            }
        ),
        Err(KmsError::Validation(_))
    ));
}
