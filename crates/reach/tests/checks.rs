//! The questions on hand-written policy sets whose answers are known.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use ferrokms_policy::PolicyKind;
use ferrokms_reach::{
    access_listing, check_access_not_granted, check_access_not_granted_by,
    check_access_not_granted_role, check_no_new_access, check_no_new_access_by,
    check_no_new_access_role, check_no_public_access, check_no_public_access_role, external_access,
    role_access_listing, role_external_access, Answer, Grant, Grantee, Holder, Path, RolePolicySet,
};

fn allowed(a: Answer) -> ferrokms_reach::Witness {
    match a {
        Answer::Allowed(w) => w,
        other => panic!("expected a witness, got {other:?}"),
    }
}

fn not_granted(a: &Answer) {
    assert!(
        matches!(a, Answer::NotGranted(p) if p.requests > 0),
        "{a:?}"
    );
}

#[test]
fn the_default_key_policy_is_not_public_and_delegates_to_identity_policies() {
    let mut s = set(ROOT_ADMIN);
    s.holders.push(Holder {
        arn: format!("arn:aws:iam::{A}:user/alice"),
        policies: vec![(
            PolicyKind::IdentityBased,
            identity(r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#),
        )],
    });
    not_granted(&check_no_public_access(&s));
    let w = allowed(check_access_not_granted(&s, &["kms:Decrypt"]));
    assert!(
        w.principal.starts_with(&format!("arn:aws:iam::{A}:")),
        "{w:?}"
    );
    let listing = access_listing(&s).unwrap();
    let alice = listing
        .iter()
        .find(|e| e.example_principal.ends_with("user/alice"))
        .expect("alice is listed");
    assert_eq!(alice.path, Path::Delegation);
    assert_eq!(alice.actions, vec!["kms:Decrypt".to_string()]);
    assert!(!alice.conditional);
    // Nobody else of the account but root; nobody outside.
    assert!(listing
        .iter()
        .all(|e| e.example_principal.ends_with("user/alice")
            || e.example_principal.ends_with(":root")));
    assert!(external_access(&s).unwrap().is_empty());
}

#[test]
fn a_wildcard_principal_is_public_unless_a_condition_pins_the_account() {
    let open = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}"#
    ));
    let w = allowed(check_no_public_access(&open));
    assert_eq!(w.action, "kms:Decrypt");
    assert_eq!(w.path, Path::KeyPolicy);
    let pinned = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:CallerAccount":"{A}"}}}}}}"#
    ));
    not_granted(&check_no_public_access(&pinned));
    // A wildcard account pattern still leaves unnamed accounts in.
    let like = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringLike":{{"kms:CallerAccount":"9*"}}}}}}"#
    ));
    let w = allowed(check_no_public_access(&like));
    assert!(w.principal.contains(":9"), "{w:?}");
}

#[test]
fn a_witness_carries_the_context_its_condition_needs() {
    // No statement for the key's own account: only B may use the key.
    let s = set(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{B}"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringLike":{{"kms:ViaService":"ec2.*.amazonaws.com"}},"IpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}"#
    ));
    let w = allowed(check_access_not_granted(&s, &["kms:Decrypt"]));
    assert!(w.principal.contains(B), "{w:?}");
    let ctx: BTreeMap<_, _> = w.context.iter().cloned().collect();
    assert!(ctx["kms:viaservice"].starts_with("ec2."), "{ctx:?}");
    assert!(ctx["aws:sourceip"].starts_with("10."), "{ctx:?}");
    not_granted(&check_access_not_granted(&s, &["kms:Encrypt", "kms:Sign"]));
    let ext = external_access(&s).unwrap();
    assert!(ext
        .iter()
        .all(|e| e.conditional && e.actions == vec!["kms:Decrypt".to_string()]));
    assert!(!ext.is_empty());
}

#[test]
fn an_explicit_deny_closes_every_cell_it_covers() {
    let s = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}},{{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringNotEquals":{{"kms:CallerAccount":"{A}"}}}}}}"#
    ));
    not_granted(&check_no_public_access(&s));
}

#[test]
fn grants_reach_outside_the_account_with_their_constraints() {
    let mut s = set(ROOT_ADMIN);
    s.grants.push(Grant {
        id: "g1".into(),
        grantee: Grantee::Aws(format!("arn:aws:iam::{B}:role/app")),
        operations: vec!["Decrypt".into()],
        encryption_context_subset: Some(BTreeMap::from([("Dept".into(), "blue".into())])),
        encryption_context_equals: None,
        source_arn: None,
    });
    let ext = external_access(&s).unwrap();
    let g = ext
        .iter()
        .find(|e| e.path == Path::Grant("g1".into()))
        .expect("the grant is a path");
    assert!(g.conditional);
    assert_eq!(g.actions, vec!["kms:Decrypt".to_string()]);
    assert!(g
        .example_context
        .contains(&("kms:encryptioncontext:dept".to_string(), "blue".to_string())));
    // The grant is not public: it names its role.
    not_granted(&check_no_public_access(&s));
}

#[test]
fn a_change_that_adds_an_account_is_new_access_with_a_witness() {
    let old = set(ROOT_ADMIN);
    let new = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{B}:root"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}"#
    ));
    let w = allowed(check_no_new_access(&old, &new));
    assert!(w.principal.contains(B));
    not_granted(&check_no_new_access(&new, &old));
    not_granted(&check_no_new_access(&new, &new));
}

#[test]
fn principal_arn_patterns_get_a_principal_per_cell() {
    let anywhere = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"ArnLike":{{"aws:PrincipalArn":"arn:aws:iam::*:role/deploy-*"}}}}}}"#
    ));
    let w = allowed(check_no_public_access(&anywhere));
    assert!(w.principal.contains(":assumed-role/deploy-"), "{w:?}");
    let ours = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"ArnLike":{{"aws:PrincipalArn":"arn:aws:iam::{A}:role/deploy-*"}}}}}}"#
    ));
    not_granted(&check_no_public_access(&ours));
    let listing = access_listing(&ours).unwrap();
    assert!(
        listing.iter().any(|e| e
            .example_principal
            .contains(&format!("sts::{A}:assumed-role/deploy-"))
            && e.actions == vec!["kms:Decrypt".to_string()]
            && !e.conditional),
        "{listing:?}"
    );
}

#[test]
fn constructs_outside_the_encoding_answer_unknown_and_say_why() {
    let s = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"aws:PrincipalTag/team":"x"}}}}}}"#
    ));
    match check_no_public_access(&s) {
        Answer::Unknown(why) => assert!(why.contains("aws:PrincipalTag/team"), "{why}"),
        other => panic!("{other:?}"),
    }
    // An ARN pattern that splits the accounts (2...) more finely than the
    // account cells do.
    let split = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringLike":{{"aws:PrincipalArn":"arn:aws:iam::2*:user/*"}}}}}}"#
    ));
    match check_no_public_access(&split) {
        Answer::Unknown(why) => assert!(why.contains("account part"), "{why}"),
        other => panic!("{other:?}"),
    }
    let v = set(&format!(
        r#"{ROOT_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"kms:EncryptionContext:user":"${{aws:username}}"}}}}}}"#
    ));
    assert!(matches!(check_no_public_access(&v), Answer::Unknown(_)));
}

#[test]
fn the_by_questions_ask_one_holder_only() {
    let alice = format!("arn:aws:iam::{A}:user/alice");
    let with = |statement: &str| {
        let mut s = set(ROOT_ADMIN);
        s.holders.push(Holder {
            arn: alice.clone(),
            policies: vec![(PolicyKind::IdentityBased, identity(statement))],
        });
        s
    };
    let encrypt = with(r#"{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}"#);
    let both = with(r#"{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}"#);
    // The account's root may decrypt (the key policy), alice may not.
    let _ = allowed(check_access_not_granted(&encrypt, &["kms:Decrypt"]));
    not_granted(&check_access_not_granted_by(
        &encrypt,
        &["kms:Decrypt"],
        &alice,
    ));
    let w = allowed(check_access_not_granted_by(&both, &["kms:Decrypt"], &alice));
    assert_eq!(
        (w.principal.as_str(), w.action.as_str()),
        (alice.as_str(), "kms:Decrypt")
    );
    let w = allowed(check_no_new_access_by(&encrypt, &both, &alice));
    assert_eq!(w.action, "kms:Decrypt");
    not_granted(&check_no_new_access_by(&both, &encrypt, &alice));
}

#[test]
fn a_wildcard_principal_admits_a_service_no_policy_names() {
    // Only services, by their principal type: the analysis needs a
    // service that no policy names, or it would prove "not granted".
    let s = set(
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalType":"AWSService"}}}"#,
    );
    let w = allowed(check_access_not_granted(&s, &["kms:Decrypt"]));
    assert!(w.principal.ends_with(".amazonaws.com"), "{w:?}");
    // A service is not public: no account is.
    not_granted(&check_no_public_access(&s));
}

fn role(trust: &str) -> RolePolicySet {
    RolePolicySet::new(
        &format!("arn:aws:iam::{A}:role/target"),
        std::sync::Arc::new(
            ferrokms_policy::Policy::parse(
                &format!(r#"{{"Version":"2012-10-17","Statement":[{trust}]}}"#),
                &ferrokms_policy::ParseOptions::for_trust_policy(),
            )
            .unwrap(),
        ),
    )
    .unwrap()
}

#[test]
fn role_trust_policies_external_public_and_federated_access() {
    // Anyone: public, by the trust policy, for a principal of an unnamed account.
    let anyone = role(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}"#);
    let w = allowed(check_no_public_access_role(&anyone));
    assert_eq!(
        (w.action.as_str(), &w.path),
        ("sts:AssumeRole", &Path::TrustPolicy)
    );
    assert!(!w.principal.contains(A), "{w:?}");
    // The own account: neither public nor external; its root never assumes.
    let own = role(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":"sts:AssumeRole"}}"#
    ));
    not_granted(&check_no_public_access_role(&own));
    assert!(role_external_access(&own).unwrap().is_empty());
    not_granted(&check_access_not_granted_role(&own, &["sts:AssumeRole"]));
    // ...unless an identity policy of the account allows: delegation.
    let mut delegated = own.clone();
    delegated.holders.push(Holder {
        arn: format!("arn:aws:iam::{A}:user/alice"),
        policies: vec![(
            PolicyKind::IdentityBased,
            identity(r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#),
        )],
    });
    let w = allowed(check_access_not_granted_role(&delegated, &["sts:Assume*"]));
    assert_eq!(
        (w.principal.as_str(), &w.path),
        (
            format!("arn:aws:iam::{A}:user/alice").as_str(),
            &Path::Delegation
        )
    );
    let w = allowed(check_no_new_access_role(&own, &delegated));
    assert!(w.principal.ends_with("user/alice"), "{w:?}");
    // Another account: external, not public; with an external id, conditional.
    let partner = role(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{B}"}},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{{"StringEquals":{{"sts:ExternalId":"secret-1"}}}}}}"#
    ));
    not_granted(&check_no_public_access_role(&partner));
    let ext = role_external_access(&partner).unwrap();
    assert!(!ext.is_empty());
    for e in &ext {
        assert!(e.external && e.conditional, "{e:?}");
        assert!(e.example_principal.contains(B), "{e:?}");
        assert_eq!(e.actions, ["sts:AssumeRole", "sts:TagSession"], "{e:?}");
        assert!(
            e.example_context
                .contains(&("sts:externalid".to_string(), "secret-1".to_string())),
            "{e:?}"
        );
    }
    // A web-identity provider: external; its identities ask the web-identity action only.
    let web = role(
        r#"{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":["sts:AssumeRoleWithWebIdentity","sts:AssumeRole"],"Condition":{"StringEquals":{"accounts.google.com:aud":"app-1"}}}"#,
    );
    not_granted(&check_no_public_access_role(&web));
    let ext = role_external_access(&web).unwrap();
    assert_eq!(ext.len(), 1, "{ext:?}");
    assert_eq!(ext[0].example_principal, "accounts.google.com");
    assert_eq!(ext[0].actions, ["sts:AssumeRoleWithWebIdentity"]);
    // A service: neither external nor public, but listed.
    let ec2 = role(
        r#"{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}"#,
    );
    assert!(role_external_access(&ec2).unwrap().is_empty());
    assert!(role_access_listing(&ec2)
        .unwrap()
        .iter()
        .any(|e| e.example_principal == "ec2.amazonaws.com" && !e.external));
    // Outside the encoding: unknown, never a proof.
    let org = role(
        r#"{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}"#,
    );
    assert!(matches!(
        check_no_public_access_role(&org),
        Answer::Unknown(_)
    ));
    assert!(role_external_access(&org).is_err());
}
