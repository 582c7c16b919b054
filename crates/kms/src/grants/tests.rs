//! The grant rule, tokens and constraints, unit by unit.

use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn grant_constraint_keys_are_case_insensitive_and_values_case_sensitive() {
    let c = GrantConstraints {
        encryption_context_subset: Some(map(&[("Purpose", "backup")])),
        encryption_context_equals: None,
        source_arn: None,
    };
    assert!(c.holds(&map(&[("purpose", "backup"), ("extra", "x")])));
    assert!(!c.holds(&map(&[("purpose", "Backup")])));
    assert!(!c.holds(&map(&[])));
    let e = GrantConstraints {
        encryption_context_equals: Some(map(&[("a", "1")])),
        encryption_context_subset: None,
        source_arn: None,
    };
    assert!(e.holds(&map(&[("A", "1")])));
    assert!(!e.holds(&map(&[("a", "1"), ("b", "2")])));
}

#[test]
fn a_child_grant_may_only_narrow_its_parents_constraints() {
    let sub = GrantConstraints {
        encryption_context_subset: Some(map(&[("a", "1")])),
        encryption_context_equals: None,
        source_arn: None,
    };
    let wider_sub = GrantConstraints {
        encryption_context_subset: Some(map(&[("a", "1"), ("b", "2")])),
        encryption_context_equals: None,
        source_arn: None,
    };
    let eq = GrantConstraints {
        encryption_context_equals: Some(map(&[("a", "1"), ("b", "2")])),
        encryption_context_subset: None,
        source_arn: None,
    };
    assert!(sub.admits_child(&wider_sub));
    assert!(sub.admits_child(&eq));
    assert!(!sub.admits_child(&GrantConstraints::default()));
    assert!(!eq.admits_child(&sub));
    assert!(GrantConstraints::default().admits_child(&GrantConstraints::default()));
}

#[test]
fn only_principals_of_the_callers_own_account_and_partition_are_its_own() {
    let caller = Caller::root(
        AccountId::parse("111122223333").unwrap(),
        ferrokms_types::Region::parse("us-east-1").unwrap(),
    );
    for own in [
        "111122223333",
        "arn:aws:iam::111122223333:root",
        "arn:aws:iam::111122223333:user/path/u",
        "arn:aws:iam::111122223333:role/r",
        "arn:aws:sts::111122223333:assumed-role/r/s",
        "arn:aws:sts::111122223333:federated-user/f",
    ] {
        assert!(principal_in_account(own, &caller), "{own}");
    }
    for foreign in [
        "444455556666",
        "arn:aws:iam::444455556666:root",
        "arn:aws:iam::444455556666:user/u",
        "arn:aws-cn:iam::111122223333:user/u",
        "arn:aws:kms:us-east-1:111122223333:key/k",
        "arn:aws:iam::111122223333:group/g",
        "1111222233334",
        "",
        "*",
    ] {
        assert!(!principal_in_account(foreign, &caller), "{foreign}");
    }
}

fn stored(grantee: GrantPrincipal, retiring: Option<GrantPrincipal>) -> GrantRecord {
    GrantRecord {
        key: KeyAddr {
            account: AccountId::parse("111122223333").unwrap(),
            region: ferrokms_types::Region::parse("us-east-1").unwrap(),
            key_id: crate::ids::KeyId::new_random(false),
        },
        grant_id: "cd".repeat(32),
        name: Some("n".into()),
        grantee,
        retiring,
        operations: vec!["Encrypt".into()],
        constraints: GrantConstraints::default(),
        issuing_account: AccountId::parse("111122223333").unwrap(),
        created_ms: 7,
    }
}

#[test]
fn a_grant_to_a_principal_is_stored_as_before_service_principals_and_reads_back() {
    let g = stored(
        GrantPrincipal::Aws("arn:aws:iam::111122223333:user/u".into()),
        None,
    );
    let json = serde_json::to_value(&g).unwrap();
    let mut fields: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    // The fields (and their meaning) of a grant stored by earlier
    // versions: what they wrote reads back unchanged, and they read
    // what this version writes for a principal.
    assert_eq!(
        fields,
        [
            "constraints",
            "created_ms",
            "grant_id",
            "grantee",
            "issuing_account",
            "key",
            "name",
            "operations",
            "retiring"
        ]
    );
    assert_eq!(json["grantee"], "arn:aws:iam::111122223333:user/u");
    assert_eq!(json["retiring"], serde_json::Value::Null);
    assert_eq!(json["constraints"], serde_json::json!({}));
    let back: GrantRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, g);
}

#[test]
fn a_grant_to_a_service_principal_round_trips_and_a_grant_without_grantee_is_refused() {
    let mut g = stored(
        GrantPrincipal::Service("dynamodb.amazonaws.com".into()),
        Some(GrantPrincipal::Service("dynamodb.amazonaws.com".into())),
    );
    g.constraints.source_arn = Some("arn:aws:dynamodb:us-east-1:111122223333:table/t".into());
    let json = serde_json::to_value(&g).unwrap();
    assert_eq!(json["grantee_service"], "dynamodb.amazonaws.com");
    assert!(json.get("grantee").is_none());
    assert_eq!(
        json["constraints"]["SourceArn"],
        "arn:aws:dynamodb:us-east-1:111122223333:table/t"
    );
    assert_eq!(
        serde_json::from_value::<GrantRecord>(json.clone()).unwrap(),
        g
    );
    let mut neither = json.clone();
    neither.as_object_mut().unwrap().remove("grantee_service");
    assert!(serde_json::from_value::<GrantRecord>(neither).is_err());
    let mut both = json;
    both["grantee"] = "111122223333".into();
    assert!(serde_json::from_value::<GrantRecord>(both).is_err());
}

#[test]
fn service_principals_and_source_arns_follow_the_service_models_patterns() {
    for ok in [
        "s3.amazonaws.com",
        "logs.us-east-1.amazonaws.com",
        "a-b.c.d",
    ] {
        assert!(is_service_principal(ok), "{ok}");
    }
    for bad in [
        "",
        "amazonaws.com",
        "s3..amazonaws.com",
        "s3.amazonaws.com/",
        "arn:aws:iam::1:root",
    ] {
        assert!(!is_service_principal(bad), "{bad}");
    }
    assert!(is_source_arn(
        "arn:aws:dynamodb:us-east-1:111122223333:table/t"
    ));
    for bad in [
        "arn:aws:s3:::bucket-name-long-enough",
        "arn:aws:dynamodb:us-east-1:1111:table/t",
        "arn:aws:dynamodb:us-east-1:111122223333:",
        "not an arn at all, really",
    ] {
        assert!(!is_source_arn(bad), "{bad}");
    }
}

#[test]
fn a_source_arn_constraint_holds_only_for_requests_made_for_that_resource() {
    let c = GrantConstraints {
        source_arn: Some("arn:aws:sqs:us-east-1:111122223333:q".into()),
        ..Default::default()
    };
    assert!(c.source_arn_holds(Some("arn:aws:sqs:us-east-1:111122223333:q")));
    assert!(!c.source_arn_holds(Some("arn:aws:sqs:us-east-1:111122223333:Q")));
    assert!(!c.source_arn_holds(None));
    assert!(GrantConstraints::default().source_arn_holds(None));
    // A child keeps its parent's SourceArn.
    assert!(c.admits_child(&c));
    assert!(!c.admits_child(&GrantConstraints::default()));
}

#[test]
fn grant_tokens_round_trip_and_garbage_is_refused() {
    let g = GrantRecord {
        key: KeyAddr {
            account: AccountId::parse("111122223333").unwrap(),
            region: ferrokms_types::Region::parse("us-east-1").unwrap(),
            key_id: crate::ids::KeyId::new_random(false),
        },
        grant_id: "ab".repeat(32),
        name: None,
        grantee: GrantPrincipal::Aws("arn:aws:iam::111122223333:user/u".into()),
        retiring: None,
        operations: vec!["Encrypt".into()],
        constraints: GrantConstraints::default(),
        issuing_account: AccountId::parse("111122223333").unwrap(),
        created_ms: 0,
    };
    let t1 = encode_token(&g).unwrap();
    let t2 = encode_token(&g).unwrap();
    assert_ne!(t1, t2, "every CreateGrant returns a new token");
    assert_eq!(decode_token(&t1).unwrap().1, g.grant_id);
    assert!(decode_token("garbage").is_none());
    assert!(decode_token("fkgt1!!!").is_none());
}
