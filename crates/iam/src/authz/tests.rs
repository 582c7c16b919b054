//! The identity plane's authorization rules, each test named after the AWS
//! rule it checks, run in-process against the one authorization path. The
//! end-to-end suite (tests/e2e/test_identity_attacks.py) drives the same
//! attacks through boto3.
//!
//! About 980 lines, one test per rule: one file so that the identity
//! plane's rules are read, and extended, in one place.

use std::sync::Arc;

use ferrokms_authz::RequestFacts;
use ferrokms_store::{MemoryStore, Sealer};
use ferrokms_types::{AccountId, Region};

use crate::ops_owner::Owner;
use crate::sts::AssumeRoleInput;
use crate::Taggable;
use crate::{Caller, Directory, IamError, Principal, Tag, UserRecord};

pub(super) const A: &str = "111122223333";
pub(super) const B: &str = "444455556666";
pub(super) const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
/// 2026-12-06T00:00:00Z
pub(super) const NOW: i64 = 1_796_515_200;

pub(super) fn directory() -> Directory {
    let d = Directory::open(
        Arc::new(MemoryStore::default()),
        Arc::new(Sealer::ephemeral().expect("sealer")),
    )
    .expect("open");
    for a in [A, B] {
        d.create_account(&account(a)).expect("account");
    }
    d
}

pub(super) fn account(id: &str) -> AccountId {
    AccountId::parse(id).expect("account id")
}

pub(super) fn region() -> Region {
    Region::parse("us-east-1").expect("region")
}

pub(super) fn facts() -> RequestFacts {
    RequestFacts {
        source_ip: Some("192.0.2.10".parse().expect("ip")),
        secure_transport: false,
        epoch_seconds: NOW,
        via_service: None,
        service_call: None,
    }
}

pub(super) fn root(d: &Directory, id: &str) -> Caller {
    d.caller(
        &Principal::Root {
            account: account(id),
        },
        &region(),
        None,
        Some(facts()),
    )
}

fn principal_of(u: &UserRecord) -> Principal {
    Principal::User {
        account: u.account.clone(),
        name: u.name.clone(),
        path: u.path.clone(),
        id: u.id.clone(),
    }
}

/// A user of `acct` with `policy` inline, acting with request facts.
pub(super) fn user(
    d: &Directory,
    acct: &str,
    name: &str,
    policy: &str,
) -> (Caller, Arc<UserRecord>) {
    let r = root(d, acct);
    d.create_user(&r, name, None, Vec::new(), None)
        .expect("user");
    d.put_inline_policy(&r, Owner::User, name, "p", policy)
        .expect("policy");
    let u = d.find_user(&account(acct), name).expect("found");
    (as_user(d, &u, facts()), u)
}

pub(super) fn as_user(d: &Directory, u: &UserRecord, facts: RequestFacts) -> Caller {
    d.caller(&principal_of(u), &region(), None, Some(facts))
}

/// An AssumeRole request for `arn` with nothing else set.
pub(super) fn assume(arn: &str) -> AssumeRoleInput<'_> {
    AssumeRoleInput {
        role_arn: arn,
        session_name: "sess",
        duration_seconds: None,
        policy: None,
        policy_arns: Vec::new(),
        external_id: None,
        tags: Vec::new(),
        transitive_tag_keys: Vec::new(),
        source_identity: None,
    }
}

pub(super) fn policy(statements: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#)
}

fn denied<T: std::fmt::Debug>(r: Result<T, IamError>) -> String {
    match r {
        Err(IamError::AccessDenied(m)) => m,
        other => panic!("expected AccessDenied, got {other:?}"),
    }
}

fn no_such_entity<T: std::fmt::Debug>(r: Result<T, IamError>) -> String {
    match r {
        Err(IamError::NoSuchEntity(m)) => m,
        other => panic!("expected NoSuchEntity, got {other:?}"),
    }
}

// ------------------------------------------------------------ rule 1: IAM resources belong to one account

#[test]
fn another_accounts_root_can_neither_read_nor_change_a_customer_managed_policy() {
    let d = directory();
    let a = root(&d, A);
    let p = d
        .create_policy(&a, "shared", None, ALLOW_ALL, None)
        .expect("policy");
    let arn = p.arn();
    let b = root(&d, B);
    let why = denied(d.get_policy(&b, &arn));
    assert_eq!(
        why,
        format!("User: arn:aws:iam::{B}:root is not authorized to perform: iam:GetPolicy on resource: {arn} because no resource-based policy allows the iam:GetPolicy action")
    );
    denied(d.get_policy_version(&b, &arn, "v1"));
    denied(d.list_policy_versions(&b, &arn));
    denied(d.list_entities_for_policy(&b, &arn, None, false));
    denied(d.create_policy_version(&b, &arn, &policy(""), true));
    denied(d.set_default_policy_version(&b, &arn, "v1"));
    denied(d.delete_policy_version(&b, &arn, "v1"));
    denied(d.delete_policy(&b, &arn));
    // Nothing changed.
    let (p, _) = d.get_policy(&a, &arn).expect("still there");
    assert_eq!(p.versions.len(), 1);
    assert_eq!(p.default_version, "v1");
}

#[test]
fn another_accounts_policy_is_never_attachable_nor_a_boundary() {
    let d = directory();
    let a_policy = d
        .create_policy(&root(&d, A), "admin", None, ALLOW_ALL, None)
        .expect("policy")
        .arn();
    // Even with every IAM permission in its own account.
    let (mallory, _) = user(&d, B, "mallory", ALLOW_ALL);
    let b = root(&d, B);
    let expected = format!("Policy {a_policy} does not exist or is not attachable.");
    assert_eq!(
        no_such_entity(d.attach_policy(&mallory, Owner::User, "mallory", &a_policy)),
        expected
    );
    assert_eq!(
        no_such_entity(d.attach_policy(&b, Owner::User, "mallory", &a_policy)),
        expected
    );
    no_such_entity(d.put_permissions_boundary(&b, Taggable::User, "mallory", &a_policy));
    no_such_entity(d.create_user(&b, "eve", None, Vec::new(), Some(&a_policy)));
    assert!(d.identity_policies(&mallory.principal).len() == 1);
}

#[test]
fn root_is_all_powerful_only_in_its_own_account() {
    let d = directory();
    let a = root(&d, A);
    d.create_user(&a, "alice", None, Vec::new(), None)
        .expect("root creates in its account");
    let b = root(&d, B);
    // B's root cannot even see A's user (the name resolves in B).
    no_such_entity(d.get_user(&b, Some("alice")));
    let arn = format!("arn:aws:iam::{A}:user/alice");
    let why = denied(d.authorize(&b, "iam:DeleteUser", &arn));
    assert!(why.contains("because no resource-based policy allows the iam:DeleteUser action"));
    d.authorize(&a, "iam:DeleteUser", &arn)
        .expect("A's root may");
}

#[test]
fn managed_session_policies_of_assume_role_must_be_the_roles_accounts() {
    let d = directory();
    let a_policy = d
        .create_policy(&root(&d, A), "p", None, ALLOW_ALL, None)
        .expect("policy")
        .arn();
    let (bob, bob_u) = user(&d, B, "bob", ALLOW_ALL);
    let trust = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}"#,
        bob_u.arn()
    ));
    let role = d
        .create_role(
            &root(&d, B),
            "r",
            None,
            &trust,
            None,
            None,
            Vec::new(),
            None,
        )
        .expect("role");
    let arn = role.arn();
    let input = AssumeRoleInput {
        policy_arns: vec![a_policy],
        ..assume(&arn)
    };
    no_such_entity(d.assume_role(&bob, input));
}

// ------------------------------------------------------------ rule 2: request-wide keys on IAM and STS

#[test]
fn a_deny_after_a_date_stops_iam_calls_too() {
    let d = directory();
    let (contractor, _) = user(
        &d,
        A,
        "contractor",
        &policy(
            r#"{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Sid":"Expired","Effect":"Deny","Action":"*","Resource":"*",
                "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-12-01T00:00:00Z"}}}"#,
        ),
    );
    // The expired contractor cannot delete its own Deny.
    let why = denied(d.delete_inline_policy(&contractor, Owner::User, "contractor", "p"));
    assert!(
        why.contains("with an explicit deny in an identity-based policy"),
        "{why}"
    );
    // aws:EpochTime is set as well.
    let (epoch, _) = user(
        &d,
        A,
        "epoch",
        &policy(&format!(
            r#"{{"Effect":"Allow","Action":"*","Resource":"*"}},
               {{"Effect":"Deny","Action":"iam:*","Resource":"*",
                "Condition":{{"NumericGreaterThan":{{"aws:EpochTime":"{}"}}}}}}"#,
            NOW - 1
        )),
    );
    denied(d.list_users(&epoch, None));
}

#[test]
fn a_deny_on_source_network_or_plain_http_stops_iam_calls() {
    let d = directory();
    let (u, _) = user(
        &d,
        A,
        "netuser",
        &policy(
            r#"{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Effect":"Deny","Action":"iam:*","Resource":"*",
                "Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
        ),
    );
    denied(d.list_users(&u, None));
    let (t, _) = user(
        &d,
        A,
        "tlsuser",
        &policy(
            r#"{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Effect":"Deny","Action":"*","Resource":"*",
                "Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#,
        ),
    );
    denied(d.list_roles(&t, None));
    let mut over_tls = facts();
    over_tls.secure_transport = true;
    let tu = d.find_user(&account(A), "tlsuser").expect("user");
    d.list_roles(&as_user(&d, &tu, over_tls), None)
        .expect("allowed over TLS");
}

#[test]
fn a_deny_on_requested_region_and_principal_keys_stops_iam_calls() {
    let d = directory();
    let (u, _) = user(
        &d,
        A,
        "regional",
        &policy(
            r#"{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Effect":"Deny","Action":"iam:ListUsers","Resource":"*",
                "Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-1"}}},
               {"Effect":"Deny","Action":"iam:ListRoles","Resource":"*",
                "Condition":{"StringEquals":{"aws:username":"regional"}}}"#,
        ),
    );
    denied(d.list_users(&u, None));
    denied(d.list_roles(&u, None));
    d.list_groups(&u, None).expect("not denied");
}

#[test]
fn multi_factor_auth_present_is_absent_for_long_term_keys() {
    let d = directory();
    let (u, rec) = user(
        &d,
        A,
        "nomfa",
        &policy(
            r#"{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Effect":"Deny","Action":"iam:ListUsers","Resource":"*",
                "Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}},
               {"Effect":"Deny","Action":"iam:ListRoles","Resource":"*",
                "Condition":{"Null":{"aws:MultiFactorAuthPresent":"true"}}}"#,
        ),
    );
    // Long-term key: the key is absent, so the Bool deny does not match
    // and the Null deny does.
    d.list_users(&u, None)
        .expect("Bool false does not match an absent key");
    denied(d.list_roles(&u, None));
    // Temporary credentials without MFA: present and false.
    let s = d.get_session_token(&u, Some(900)).expect("session token");
    let temp = d.caller(
        &principal_of(&rec),
        &region(),
        Some(&s.session),
        Some(facts()),
    );
    denied(d.list_users(&temp, None));
    d.list_roles(&temp, None)
        .expect("present, so Null true does not match");
}

// ------------------------------------------------------------ rule 3: IAM's own condition keys

#[test]
fn tag_keys_limit_which_tags_a_user_may_set_on_itself() {
    let d = directory();
    let (u, _) = user(
        &d,
        A,
        "tagger",
        &policy(
            r#"{"Effect":"Allow","Action":"iam:TagUser","Resource":"*",
                "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["nickname"]}}}"#,
        ),
    );
    let tag = |k: &str| {
        vec![Tag {
            key: k.into(),
            value: "x".into(),
        }]
    };
    d.tag(&u, Taggable::User, "tagger", tag("nickname"))
        .expect("harmless tag");
    // The ABAC tag a key policy trusts is refused.
    denied(d.tag(&u, Taggable::User, "tagger", tag("team")));
    let mut both = tag("nickname");
    both.extend(tag("team"));
    denied(d.tag(&u, Taggable::User, "tagger", both));
}

#[test]
fn request_tags_and_boundary_are_conditions_of_create_user() {
    let d = directory();
    let boundary = d
        .create_policy(&root(&d, A), "boundary", None, ALLOW_ALL, None)
        .expect("boundary")
        .arn();
    let (admin, _) = user(
        &d,
        A,
        "delegated",
        &policy(&format!(
            r#"{{"Effect":"Allow","Action":"iam:CreateUser","Resource":"*",
                "Condition":{{"StringEquals":{{"iam:PermissionsBoundary":"{boundary}",
                                              "aws:RequestTag/team":"blue"}}}}}}"#
        )),
    );
    let blue = vec![Tag {
        key: "team".into(),
        value: "blue".into(),
    }];
    denied(d.create_user(&admin, "u1", None, blue.clone(), None));
    denied(d.create_user(&admin, "u2", None, Vec::new(), Some(&boundary)));
    d.create_user(&admin, "u3", None, blue, Some(&boundary))
        .expect("both conditions hold");
}

#[test]
fn resource_tags_of_a_user_are_conditions_of_actions_on_it() {
    let d = directory();
    let a = root(&d, A);
    for (name, team) in [("blue1", "blue"), ("red1", "red")] {
        d.create_user(
            &a,
            name,
            None,
            vec![Tag {
                key: "team".into(),
                value: team.into(),
            }],
            None,
        )
        .expect("user");
    }
    for (i, key) in ["aws:ResourceTag/team", "iam:ResourceTag/team"]
        .iter()
        .enumerate()
    {
        let action = "iam:GetUser";
        let (u, _) = user(
            &d,
            A,
            &format!("reader{i}"),
            &policy(&format!(
                r#"{{"Effect":"Allow","Action":"{action}","Resource":"*",
                    "Condition":{{"StringEquals":{{"{key}":"blue"}}}}}}"#
            )),
        );
        d.get_user(&u, Some("blue1")).expect("blue user");
        denied(d.get_user(&u, Some("red1")));
    }
}

#[test]
fn policy_arn_is_a_condition_of_attach_and_detach() {
    let d = directory();
    let a = root(&d, A);
    let ok = d
        .create_policy(&a, "readonly", None, ALLOW_ALL, None)
        .expect("p")
        .arn();
    let admin = d
        .create_policy(&a, "admin", None, ALLOW_ALL, None)
        .expect("p")
        .arn();
    let (u, _) = user(
        &d,
        A,
        "attacher",
        &policy(&format!(
            r#"{{"Effect":"Allow","Action":["iam:AttachUserPolicy","iam:DetachUserPolicy"],"Resource":"*",
                "Condition":{{"ArnEquals":{{"iam:PolicyARN":"{ok}"}}}}}}"#
        )),
    );
    denied(d.attach_policy(&u, Owner::User, "attacher", &admin));
    d.attach_policy(&u, Owner::User, "attacher", &ok)
        .expect("the allowed policy");
    d.attach_policy(&a, Owner::User, "attacher", &admin)
        .expect("root");
    denied(d.detach_policy(&u, Owner::User, "attacher", &admin));
    d.detach_policy(&u, Owner::User, "attacher", &ok)
        .expect("the allowed policy");
}

/// Every (operation, condition key) the catalog promises is set by the
/// operation, shown by a Deny that matches only when the key is present;
/// and the catalog lists every key the operations below set.
#[test]
fn the_catalog_says_which_condition_keys_each_iam_operation_sets() {
    let d = directory();
    let a = root(&d, A);
    let boundary = d
        .create_policy(&a, "b", None, ALLOW_ALL, None)
        .expect("b")
        .arn();
    let tagged = vec![Tag {
        key: "team".into(),
        value: "blue".into(),
    }];
    d.create_user(&a, "target", None, tagged.clone(), Some(&boundary))
        .expect("target");
    d.create_role(
        &a,
        "trole",
        None,
        &policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"sts:AssumeRole"}}"#
        )),
        None,
        None,
        tagged.clone(),
        Some(&boundary),
    )
    .expect("role");
    let tagged_policy = d
        .create_policy_tagged(&a, "tp", None, ALLOW_ALL, None, tagged.clone())
        .expect("tagged policy")
        .arn();
    d.create_instance_profile(&a, "tip", None, tagged.clone())
        .expect("tagged profile");
    // Each operation, run by a caller whose only deny needs `key`.
    type Run<'a> = Box<dyn Fn(&Caller) -> Result<(), IamError> + 'a>;
    let cases: Vec<(&str, &str, Run)> = vec![
        (
            "CreateUser",
            "aws:RequestTag/team",
            Box::new(|c| d.create_user(c, "n1", None, tagged.clone(), None).map(drop)),
        ),
        (
            "CreateUser",
            "aws:TagKeys",
            Box::new(|c| d.create_user(c, "n2", None, tagged.clone(), None).map(drop)),
        ),
        (
            "CreateUser",
            "iam:PermissionsBoundary",
            Box::new(|c| {
                d.create_user(c, "n3", None, Vec::new(), Some(&boundary))
                    .map(drop)
            }),
        ),
        (
            "CreateRole",
            "aws:RequestTag/team",
            Box::new(|c| {
                d.create_role(c, "r1", None, &policy(""), None, None, tagged.clone(), None)
                    .map(drop)
            }),
        ),
        (
            "CreateRole",
            "iam:PermissionsBoundary",
            Box::new(|c| {
                d.create_role(
                    c,
                    "r2",
                    None,
                    &policy(""),
                    None,
                    None,
                    Vec::new(),
                    Some(&boundary),
                )
                .map(drop)
            }),
        ),
        (
            "GetUser",
            "aws:ResourceTag/team",
            Box::new(|c| d.get_user(c, Some("target")).map(drop)),
        ),
        (
            "GetUser",
            "iam:ResourceTag/team",
            Box::new(|c| d.get_user(c, Some("target")).map(drop)),
        ),
        (
            "GetUser",
            "iam:PermissionsBoundary",
            Box::new(|c| d.get_user(c, Some("target")).map(drop)),
        ),
        (
            "GetRole",
            "aws:ResourceTag/team",
            Box::new(|c| d.get_role(c, "trole").map(drop)),
        ),
        (
            "TagUser",
            "aws:TagKeys",
            Box::new(|c| d.tag(c, Taggable::User, "target", tagged.clone())),
        ),
        (
            "TagUser",
            "aws:RequestTag/team",
            Box::new(|c| d.tag(c, Taggable::User, "target", tagged.clone())),
        ),
        (
            "TagRole",
            "aws:ResourceTag/team",
            Box::new(|c| d.tag(c, Taggable::Role, "trole", tagged.clone())),
        ),
        (
            "TagUser",
            "iam:ResourceTag/team",
            Box::new(|c| d.tag(c, Taggable::User, "target", tagged.clone())),
        ),
        (
            "TagRole",
            "iam:PermissionsBoundary",
            Box::new(|c| d.tag(c, Taggable::Role, "trole", tagged.clone())),
        ),
        (
            "UntagUser",
            "aws:ResourceTag/team",
            Box::new(|c| d.untag(c, Taggable::User, "target", &["team".into()])),
        ),
        (
            "UntagUser",
            "iam:PermissionsBoundary",
            Box::new(|c| d.untag(c, Taggable::User, "target", &["team".into()])),
        ),
        (
            "AttachUserPolicy",
            "aws:ResourceTag/team",
            Box::new(|c| d.attach_policy(c, Owner::User, "target", &boundary)),
        ),
        (
            "DetachRolePolicy",
            "iam:ResourceTag/team",
            Box::new(|c| d.detach_policy(c, Owner::Role, "trole", &boundary)),
        ),
        (
            "UntagUser",
            "aws:TagKeys",
            Box::new(|c| d.untag(c, Taggable::User, "target", &["team".into()])),
        ),
        (
            "UntagRole",
            "iam:ResourceTag/team",
            Box::new(|c| d.untag(c, Taggable::Role, "trole", &["team".into()])),
        ),
        (
            "AttachUserPolicy",
            "iam:PolicyARN",
            Box::new(|c| d.attach_policy(c, Owner::User, "target", &boundary)),
        ),
        (
            "AttachRolePolicy",
            "iam:PermissionsBoundary",
            Box::new(|c| d.attach_policy(c, Owner::Role, "trole", &boundary)),
        ),
        (
            "AttachGroupPolicy",
            "iam:PolicyARN",
            Box::new(|c| {
                d.create_group(&a, "g", None).ok();
                d.attach_policy(c, Owner::Group, "g", &boundary)
            }),
        ),
        (
            "DetachUserPolicy",
            "iam:PolicyARN",
            Box::new(|c| d.detach_policy(c, Owner::User, "target", &boundary)),
        ),
        (
            "PutUserPolicy",
            "iam:PermissionsBoundary",
            Box::new(|c| d.put_inline_policy(c, Owner::User, "target", "x", ALLOW_ALL)),
        ),
        (
            "PutRolePolicy",
            "aws:ResourceTag/team",
            Box::new(|c| d.put_inline_policy(c, Owner::Role, "trole", "x", ALLOW_ALL)),
        ),
        (
            "PutUserPermissionsBoundary",
            "iam:PermissionsBoundary",
            Box::new(|c| d.put_permissions_boundary(c, Taggable::User, "target", &boundary)),
        ),
        (
            "DeleteRolePermissionsBoundary",
            "iam:PermissionsBoundary",
            Box::new(|c| d.delete_permissions_boundary(c, Taggable::Role, "trole")),
        ),
        (
            "CreateAccessKey",
            "aws:ResourceTag/team",
            Box::new(|c| d.create_access_key(c, Some("target")).map(drop)),
        ),
        (
            "ListUserTags",
            "iam:ResourceTag/team",
            Box::new(|c| d.list_tags(c, Taggable::User, "target").map(drop)),
        ),
        (
            "UpdateUser",
            "aws:ResourceTag/team",
            Box::new(|c| d.update_user(c, "target", None, Some("/x/"))),
        ),
        (
            "CreatePolicy",
            "aws:RequestTag/team",
            Box::new(|c| {
                d.create_policy_tagged(c, "np1", None, ALLOW_ALL, None, tagged.clone())
                    .map(drop)
            }),
        ),
        (
            "CreateInstanceProfile",
            "aws:TagKeys",
            Box::new(|c| {
                d.create_instance_profile(c, "nip1", None, tagged.clone())
                    .map(drop)
            }),
        ),
        (
            "TagPolicy",
            "aws:ResourceTag/team",
            Box::new(|c| d.tag_policy(c, &tagged_policy, tagged.clone())),
        ),
        (
            "TagPolicy",
            "aws:TagKeys",
            Box::new(|c| d.tag_policy(c, &tagged_policy, tagged.clone())),
        ),
        (
            "TagInstanceProfile",
            "aws:RequestTag/team",
            Box::new(|c| d.tag_instance_profile(c, "tip", tagged.clone())),
        ),
        (
            "UntagPolicy",
            "aws:TagKeys",
            Box::new(|c| d.untag_policy(c, &tagged_policy, &["team".into()])),
        ),
        (
            "UntagInstanceProfile",
            "aws:ResourceTag/team",
            Box::new(|c| d.untag_instance_profile(c, "tip", &["team".into()])),
        ),
        (
            "GetInstanceProfile",
            "aws:ResourceTag/team",
            Box::new(|c| d.get_instance_profile(c, "tip").map(drop)),
        ),
        (
            "ListPolicyTags",
            "aws:ResourceTag/team",
            Box::new(|c| d.list_policy_tags(c, &tagged_policy).map(drop)),
        ),
        (
            "ListInstanceProfilesForRole",
            "iam:PermissionsBoundary",
            Box::new(|c| d.list_instance_profiles_for_role(c, "trole").map(drop)),
        ),
    ];
    for (i, (op, key, run)) in cases.iter().enumerate() {
        let row = crate::catalog::operation("iam", op).expect("in the catalog");
        assert!(
            row.sets_key(key),
            "the catalog does not list {key} for {op}"
        );
        let (c, _) = user(
            &d,
            A,
            &format!("probe{i}"),
            &policy(&format!(
                r#"{{"Effect":"Allow","Action":"*","Resource":"*"}},
                   {{"Effect":"Deny","Action":"iam:{op}","Resource":"*",
                    "Condition":{{"Null":{{"{key}":"false"}}}}}}"#
            )),
        );
        let why = denied(run(&c));
        assert!(why.contains(&format!("iam:{op}")), "{op}/{key}: {why}");
    }
    // Both ways: every key (family) the catalog promises for these
    // operations is exercised above, by the operation itself or by one
    // that shares its row of keys.
    let in_family = |key: &str, k: &str| {
        if k.ends_with('/') {
            key.len() > k.len() && key[..k.len()].eq_ignore_ascii_case(k)
        } else {
            key.eq_ignore_ascii_case(k)
        }
    };
    for (op, _, _) in &cases {
        let row = crate::catalog::operation("iam", op).expect("row");
        for k in row.condition_keys {
            let exercised = cases.iter().any(|(o, key, _)| {
                let other = crate::catalog::operation("iam", o).expect("row");
                other.condition_keys == row.condition_keys && in_family(key, k)
            });
            assert!(exercised, "{op}: {k} is never exercised");
        }
    }
}

// ------------------------------------------------------------ rule 4: identities by unique id

#[test]
fn a_recreated_user_does_not_revive_old_sessions_or_keys() {
    let d = directory();
    let a = root(&d, A);
    let (old, old_rec) = user(&d, A, "alice", ALLOW_ALL);
    let session = d.get_session_token(&old, Some(900)).expect("session");
    // Alice is deleted, and someone else is created as "alice" with more
    // rights.
    d.delete_inline_policy(&a, Owner::User, "alice", "p")
        .expect("policy");
    d.delete_user(&a, "alice").expect("deleted");
    let (_, new_rec) = user(&d, A, "alice", ALLOW_ALL);
    assert_ne!(old_rec.id, new_rec.id);
    let old_principal = principal_of(&old_rec);
    assert!(!d.principal_exists(&old_principal));
    assert!(d.identity_policies(&old_principal).is_empty());
    assert!(d.permissions_boundary(&old_principal).is_none());
    let stale = d.caller(
        &old_principal,
        &region(),
        Some(&session.session),
        Some(facts()),
    );
    denied(d.list_users(&stale, None));
}

#[test]
fn a_recreated_role_gives_old_sessions_nothing() {
    let d = directory();
    let a = root(&d, A);
    let trust = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"sts:AssumeRole"}}"#
    ));
    let (assumer, _) = user(&d, A, "assumer", ALLOW_ALL);
    let old_role = d
        .create_role(&a, "ops", None, &trust, None, None, Vec::new(), None)
        .expect("role");
    let arn = old_role.arn();
    let s = d.assume_role(&assumer, assume(&arn)).expect("assumed");
    d.delete_role(&a, "ops").expect("deleted");
    let new_role = d
        .create_role(&a, "ops", None, &trust, None, None, Vec::new(), None)
        .expect("re-created");
    d.put_inline_policy(&a, Owner::Role, "ops", "all", ALLOW_ALL)
        .expect("policy");
    assert_ne!(old_role.id, new_role.id);
    assert!(!d.principal_exists(&s.principal));
    assert!(d.identity_policies(&s.principal).is_empty());
    let fresh = d
        .assume_role(&assumer, assume(&arn))
        .expect("assumed again");
    assert!(d.principal_exists(&fresh.principal));
    assert_eq!(d.identity_policies(&fresh.principal).len(), 1);
}

#[test]
fn a_renamed_user_keeps_its_sessions_permissions() {
    let d = directory();
    let a = root(&d, A);
    let (u, rec) = user(&d, A, "before", ALLOW_ALL);
    d.get_session_token(&u, Some(900)).expect("session");
    d.update_user(&a, "before", Some("after"), None)
        .expect("renamed");
    let old_name = principal_of(&rec);
    assert!(d.principal_exists(&old_name));
    assert_eq!(d.identity_policies(&old_name).len(), 1);
}

// ------------------------------------------------------------ the decision trace

#[test]
fn every_iam_decision_is_on_the_callers_trace() {
    let d = directory();
    let (u, _) = user(
        &d,
        A,
        "traced",
        &policy(r#"{"Sid":"Lists","Effect":"Allow","Action":"iam:ListUsers","Resource":"*"}"#),
    );
    d.list_users(&u, None).expect("allowed");
    denied(d.list_roles(&u, None));
    let trace = u.authz.decisions();
    assert_eq!(trace.len(), 2);
    assert_eq!(trace[0].action, "iam:ListUsers");
    assert!(trace[0].allowed);
    assert_eq!(
        trace[0].statements,
        ["user traced inline policy p #0 (Lists) Allow"]
    );
    assert_eq!(trace[1].action, "iam:ListRoles");
    assert!(!trace[1].allowed);
    assert!(trace[1]
        .decision
        .contains("no identity-based policy allows"));
}

/// AssumeRole sets every condition key its catalog row promises: a Deny
/// that matches only when the key is present refuses the call.
#[test]
fn the_catalog_says_which_condition_keys_assume_role_sets() {
    let d = directory();
    let a = root(&d, A);
    let row = crate::catalog::operation("sts", "AssumeRole").expect("row");
    let tags = vec![Tag {
        key: "team".into(),
        value: "blue".into(),
    }];
    let role_tags = vec![Tag {
        key: "env".into(),
        value: "prod".into(),
    }];
    let mut exercised = Vec::new();
    for (i, key) in [
        "sts:ExternalId",
        "sts:RoleSessionName",
        "sts:SourceIdentity",
        "sts:TransitiveTagKeys",
        "aws:RequestTag/team",
        "aws:TagKeys",
        "aws:ResourceTag/env",
    ]
    .iter()
    .enumerate()
    {
        assert!(row.sets_key(key), "the catalog does not list {key}");
        let name = format!("assumer{i}");
        let (c, u) = user(
            &d,
            A,
            &name,
            &policy(&format!(
                r#"{{"Effect":"Allow","Action":"*","Resource":"*"}},
                   {{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*",
                    "Condition":{{"Null":{{"{key}":"false"}}}}}}"#
            )),
        );
        let trust = policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{}"}},
                "Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}"#,
            u.arn()
        ));
        let role = d
            .create_role(
                &a,
                &format!("target{i}"),
                None,
                &trust,
                None,
                None,
                role_tags.clone(),
                None,
            )
            .expect("role");
        let arn = role.arn();
        let input = AssumeRoleInput {
            external_id: Some("ext-id"),
            tags: tags.clone(),
            transitive_tag_keys: vec!["team".into()],
            source_identity: Some("alice"),
            ..assume(&arn)
        };
        let why = denied(d.assume_role(&c, input));
        assert!(why.contains("sts:AssumeRole"), "{key}: {why}");
        exercised.push(*key);
    }
    for k in row.condition_keys {
        assert!(
            exercised.iter().any(|e| row.sets_key(e)
                && (e.eq_ignore_ascii_case(k)
                    || (k.ends_with('/')
                        && e.len() > k.len()
                        && e[..k.len()].eq_ignore_ascii_case(k)))),
            "{k} is never exercised"
        );
    }
}

/// An attacker probing another account's role learns nothing from
/// AssumeRole before it is authorized: not whether a managed policy of
/// that account exists, not the role's maximum session duration.
#[test]
fn assume_role_reveals_nothing_of_the_roles_account_before_authorization() {
    let d = directory();
    let a = root(&d, A);
    let existing = d
        .create_policy(&a, "internal", None, ALLOW_ALL, None)
        .expect("policy")
        .arn();
    let trust = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"sts:AssumeRole"}}"#
    ));
    let role = d
        .create_role(&a, "private", None, &trust, None, None, Vec::new(), None)
        .expect("role")
        .arn();
    let (mallory, _) = user(&d, B, "mallory", ALLOW_ALL);
    let probe = |policy_arns: Vec<String>, duration: Option<u32>| {
        denied(d.assume_role(
            &mallory,
            AssumeRoleInput {
                duration_seconds: duration,
                policy_arns,
                ..assume(&role)
            },
        ))
    };
    let missing = format!("arn:aws:iam::{A}:policy/no-such-policy");
    assert_eq!(probe(vec![existing], None), probe(vec![missing], None));
    // 43200 s exceeds the role's 3600 s maximum; still only AccessDenied.
    probe(Vec::new(), Some(43_200));
}

// ------------------------------------------------------------ authorization before existence

/// AWS authorizes an IAM request on the ARN it names, then looks the entity
/// up: a caller without the permission gets the same AccessDenied whether
/// or not a user, role or group of that name exists in its own account, and
/// only an authorized caller learns NoSuchEntity.
#[test]
fn an_unauthorized_caller_cannot_tell_which_user_role_or_group_names_exist() {
    let d = directory();
    let a = root(&d, A);
    d.create_user(&a, "alice", None, Vec::new(), None)
        .expect("user");
    let trust = policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"sts:AssumeRole"}}"#
    ));
    d.create_role(&a, "ops", None, &trust, None, None, Vec::new(), None)
        .expect("role");
    d.create_group(&a, "admins", None).expect("group");
    let nothing = policy(r#"{"Effect":"Allow","Action":"kms:DescribeKey","Resource":"*"}"#);
    let (mallory, _) = user(&d, A, "mallory", &nothing);
    // Each probe, on a name that exists and on one that does not.
    type Probe = fn(&Directory, &Caller, &str) -> Result<(), IamError>;
    let probes: [(&str, &str, &str, Probe); 14] = [
        ("DeleteUser", "user", "alice", |d, c, n| d.delete_user(c, n)),
        ("UpdateUser", "user", "alice", |d, c, n| {
            d.update_user(c, n, Some("x"), None)
        }),
        ("ListGroupsForUser", "user", "alice", |d, c, n| {
            d.list_groups_for_user(c, n).map(drop)
        }),
        ("ListAccessKeys", "user", "alice", |d, c, n| {
            d.list_access_keys(c, Some(n)).map(drop)
        }),
        ("CreateAccessKey", "user", "alice", |d, c, n| {
            d.create_access_key(c, Some(n)).map(drop)
        }),
        ("ListUserPolicies", "user", "alice", |d, c, n| {
            d.list_inline_policies(c, Owner::User, n).map(drop)
        }),
        ("AttachUserPolicy", "user", "alice", |d, c, n| {
            d.attach_policy(c, Owner::User, n, "arn:aws:iam::aws:policy/ReadOnlyAccess")
        }),
        ("TagUser", "user", "alice", |d, c, n| {
            d.tag(
                c,
                Taggable::User,
                n,
                vec![Tag {
                    key: "k".into(),
                    value: "v".into(),
                }],
            )
        }),
        ("ListUserTags", "user", "alice", |d, c, n| {
            d.list_tags(c, Taggable::User, n).map(drop)
        }),
        ("DeleteRole", "role", "ops", |d, c, n| d.delete_role(c, n)),
        ("UpdateAssumeRolePolicy", "role", "ops", |d, c, n| {
            d.update_assume_role_policy(c, n, r#"{"Version":"2012-10-17","Statement":[]}"#)
        }),
        ("ListRoleTags", "role", "ops", |d, c, n| {
            d.list_tags(c, Taggable::Role, n).map(drop)
        }),
        ("DeleteGroup", "group", "admins", |d, c, n| {
            d.delete_group(c, n)
        }),
        ("AddUserToGroup", "group", "admins", |d, c, n| {
            d.add_user_to_group(c, n, "mallory")
        }),
    ];
    for (action, noun, existing, probe) in probes {
        for name in [existing, "nobody-by-this-name"] {
            let why = denied(probe(&d, &mallory, name));
            assert_eq!(
                why,
                format!(
                    "User: {} is not authorized to perform: iam:{action} on resource: arn:aws:iam::{A}:{noun}/{name} because no identity-based policy allows the iam:{action} action",
                    mallory.arn("aws")
                ),
                "{action} on {name}"
            );
        }
        // The account's root is authorized, so it is told the name is unknown.
        no_such_entity(probe(&d, &a, "nobody-by-this-name"));
    }
}
