//! Parsing and validation.

use crate::support::*;
use ferrokms_policy::{
    Form, Limits, ParseOptions, Policy, PolicyError, PolicyKind, PrincipalId, PrincipalRule,
    PrincipalSpec, Version,
};

fn lenient() -> ParseOptions {
    ParseOptions::default()
}

fn ok(text: &str) -> Policy {
    match Policy::parse(text, &lenient()) {
        Ok(p) => p,
        Err(e) => panic!("{e}\n{text}"),
    }
}

const MIN: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#;

macro_rules! rejects {
    ($($name:ident: $text:expr, $pat:pat => rejected;)*) => {
        $(
            #[test]
            fn $name() {
                let e = parse_err($text, &lenient());
                assert!(matches!(e, $pat), "got {e:?}");
                assert!(!e.to_string().is_empty());
            }
        )*
    };
}

#[test]
fn statement_may_be_a_single_object() {
    let p = ok(MIN);
    assert_eq!(p.statements().len(), 1);
}

#[test]
fn statement_may_be_an_array() {
    let p = ok(
        r#"{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"},{"Effect":"Deny","Action":"a:c","Resource":"*"}]}"#,
    );
    assert_eq!(p.statements().len(), 2);
}

#[test]
fn version_2012_10_17_is_accepted() {
    assert_eq!(ok(MIN).version(), Some(Version::V2012_10_17));
}

#[test]
fn version_2008_10_17_is_accepted() {
    let p = ok(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}"#,
    );
    assert_eq!(p.version(), Some(Version::V2008_10_17));
    assert!(!p.variables_enabled());
}

#[test]
fn version_may_be_absent() {
    let p = ok(r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}"#);
    assert_eq!(p.version(), None);
}

#[test]
fn id_and_sid_are_kept() {
    let p = ok(
        r#"{"Id":"key-default-1","Statement":{"Sid":"Enable IAM User Permissions","Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
    );
    assert_eq!(p.id(), Some("key-default-1"));
    assert_eq!(p.statements()[0].sid(), Some("Enable IAM User Permissions"));
}

#[test]
fn single_strings_and_arrays_are_both_accepted_for_lists() {
    let p = ok(
        r#"{"Statement":{"Effect":"Allow","Action":["kms:Encrypt"],"Resource":"*","Principal":{"AWS":["111122223333"]}}}"#,
    );
    let s = &p.statements()[0];
    assert_eq!(s.action().map(|a| a.patterns().len()), Some(1));
}

#[test]
fn principal_forms_are_classified() {
    let p = ok(
        r#"{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*","Principal":{
        "AWS":["111122223333","arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/a/b",
               "arn:aws:iam::111122223333:role/r","arn:aws:sts::111122223333:assumed-role/r/s",
               "arn:aws:sts::111122223333:federated-user/f","AIDAEXAMPLEID123456"],
        "Service":"ec2.amazonaws.com","Federated":"cognito-identity.amazonaws.com","CanonicalUser":"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}}}"#,
    );
    let Some(PrincipalSpec::Typed(entries)) = p.statements()[0]
        .principal()
        .map(ferrokms_policy::PrincipalElement::spec)
    else {
        panic!("typed principal expected");
    };
    let ids: Vec<&PrincipalId> = entries[0]
        .values()
        .iter()
        .map(ferrokms_policy::PrincipalValue::id)
        .collect();
    assert!(matches!(ids[0], PrincipalId::Account(_)));
    assert!(matches!(ids[1], PrincipalId::Account(_)));
    assert!(matches!(ids[2], PrincipalId::User(_)));
    assert!(matches!(ids[3], PrincipalId::Role { .. }));
    assert!(matches!(ids[4], PrincipalId::AssumedRoleSession(_)));
    assert!(matches!(ids[5], PrincipalId::FederatedUser(_)));
    assert!(matches!(ids[6], PrincipalId::UniqueId(_)));
    assert_eq!(entries.len(), 4);
}

#[test]
fn key_policy_statement_missing_action_is_accepted_but_never_matches() {
    let text =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Resource":"*"}}"#;
    let p = parse(PolicyKind::ResourceBased, text);
    assert!(p.statements()[0].action().is_none());
    let r = request(USER, "kms:Sign", KEY_ARN);
    assert!(!decide(&r, &[(PolicyKind::ResourceBased, text)]).is_allowed());
}

#[test]
fn statement_missing_resource_never_matches() {
    let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"kms:*"}}"#;
    let r = request(USER, "kms:Sign", KEY_ARN);
    assert!(!decide(&r, &[(PolicyKind::ResourceBased, text)]).is_allowed());
}

#[test]
fn strict_options_require_action_and_resource() {
    let e = parse_err(
        r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
        &ParseOptions::strict_for_kind(PolicyKind::IdentityBased),
    );
    assert!(
        matches!(
            e,
            PolicyError::MissingElement {
                element: "Action",
                ..
            }
        ),
        "{e:?}"
    );
    let e = parse_err(
        r#"{"Statement":{"Effect":"Allow","Action":"a:b"}}"#,
        &ParseOptions::strict_for_kind(PolicyKind::IdentityBased),
    );
    assert!(
        matches!(
            e,
            PolicyError::MissingElement {
                element: "Resource",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn key_policy_statement_must_have_a_principal() {
    let e = parse_err(MIN, &ParseOptions::for_kind(PolicyKind::ResourceBased));
    assert!(
        matches!(
            e,
            PolicyError::MissingElement {
                element: "Principal",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn identity_policy_statement_must_not_have_a_principal() {
    let text = r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"a:b","Resource":"*"}}"#;
    let e = parse_err(text, &ParseOptions::for_kind(PolicyKind::IdentityBased));
    assert!(
        matches!(
            e,
            PolicyError::ElementNotAllowed {
                element: "Principal",
                ..
            }
        ),
        "{e:?}"
    );
    let o = ParseOptions {
        principal: PrincipalRule::Optional,
        ..ParseOptions::default()
    };
    assert!(Policy::parse(text, &o).is_ok());
}

#[test]
fn not_principal_satisfies_the_principal_requirement() {
    let text = r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"a:b","Resource":"*"}}"#;
    assert!(Policy::parse(text, &ParseOptions::for_kind(PolicyKind::ResourceBased)).is_ok());
}

#[test]
fn policy_larger_than_the_limit_is_rejected_before_parsing() {
    let big = format!("{{\"Statement\":\"{}\"}}", "x".repeat(10 * 1024 * 1024));
    let e = parse_err(&big, &lenient());
    assert!(matches!(e, PolicyError::TooLarge { .. }), "{e:?}");
}

#[test]
fn size_limit_is_configurable() {
    let o = lenient().with_limits(Limits {
        max_bytes: 20,
        ..Limits::default()
    });
    assert!(matches!(
        parse_err(MIN, &o),
        PolicyError::TooLarge { limit: 20, .. }
    ));
}

#[test]
fn deep_nesting_is_rejected_without_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        parse_err(&deep, &lenient()),
        PolicyError::TooDeep { .. }
    ));
}

#[test]
fn invalid_utf8_bytes_are_rejected() {
    let mut bytes = MIN.as_bytes().to_vec();
    bytes[10] = 0xff;
    let e = Policy::parse_bytes(&bytes, &lenient());
    assert!(
        matches!(e, Err(PolicyError::InvalidUtf8 { offset: 10 })),
        "{e:?}"
    );
}

#[test]
fn huge_arrays_within_the_size_limit_are_handled() {
    let actions: Vec<String> = (0..20_000).map(|i| format!("\"s:A{i}\"")).collect();
    let text = format!(
        "{{\"Statement\":{{\"Effect\":\"Allow\",\"Action\":[{}],\"Resource\":\"*\"}}}}",
        actions.join(",")
    );
    let o = lenient().with_limits(Limits {
        max_bytes: 1 << 20,
        ..Limits::default()
    });
    let p = Policy::parse(&text, &o).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        p.statements()[0].action().map(|a| a.patterns().len()),
        Some(20_000)
    );
}

#[test]
fn errors_name_the_statement_and_element() {
    let e = parse_err(
        r#"{"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"},{"Effect":"allow","Action":"a:b","Resource":"*"}]}"#,
        &lenient(),
    );
    assert_eq!(
        e.to_string(),
        "Statement[1].Effect: Effect must be \"Allow\" or \"Deny\", found \"allow\""
    );
}

#[test]
fn round_trip_keeps_single_and_array_forms() {
    let p = ok(r#"{"Statement":{"Effect":"Allow","Action":["a:b"],"Resource":"*"}}"#);
    assert_eq!(
        p.to_json_string(),
        r#"{"Statement":{"Effect":"Allow","Action":["a:b"],"Resource":"*"}}"#
    );
    let _ = Form::Single;
}

#[test]
fn round_trip_writes_condition_values_as_strings() {
    let p = ok(
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericLessThan":{"x:n":10},"Bool":{"x:b":true}}}}"#,
    );
    let text = p.to_json_string();
    assert!(text.contains(r#""x:n":"10""#), "{text}");
    assert_eq!(ok(&text), p);
}

rejects! {
    duplicate_top_level_keys_are_rejected:
        r#"{"Version":"2012-10-17","Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}"#,
        PolicyError::DuplicateKey { .. } => rejected;
    duplicate_statement_keys_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Effect":"Deny","Action":"a:b","Resource":"*"}}"#,
        PolicyError::DuplicateKey { .. } => rejected;
    duplicate_condition_keys_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"1","k":"2"}}}}"#,
        PolicyError::DuplicateKey { .. } => rejected;
    duplicate_condition_operators_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Bool":{"k":"true"},"Bool":{"j":"true"}}}}"#,
        PolicyError::DuplicateKey { .. } => rejected;
    duplicate_principal_types_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"AWS":"111122223333","AWS":"444455556666"}}}"#,
        PolicyError::DuplicateKey { .. } => rejected;
    unknown_top_level_element_is_rejected:
        r#"{"Statements":[]}"#, PolicyError::UnknownElement { .. } => rejected;
    unknown_statement_element_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Actions":"a:c"}}"#, PolicyError::UnknownElement { .. } => rejected;
    element_names_are_case_sensitive:
        r#"{"Statement":{"effect":"Allow","Action":"a:b","Resource":"*"}}"#, PolicyError::UnknownElement { .. } => rejected;
    action_and_not_action_together_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","NotAction":"a:c","Resource":"*"}}"#,
        PolicyError::ConflictingElements { first: "Action", second: "NotAction", .. } => rejected;
    resource_and_not_resource_together_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","NotResource":"*"}}"#,
        PolicyError::ConflictingElements { first: "Resource", .. } => rejected;
    principal_and_not_principal_together_are_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":"*","NotPrincipal":"*"}}"#,
        PolicyError::ConflictingElements { first: "Principal", .. } => rejected;
    missing_effect_is_rejected:
        r#"{"Statement":{"Action":"a:b","Resource":"*"}}"#, PolicyError::MissingElement { element: "Effect", .. } => rejected;
    missing_statement_is_rejected:
        r#"{"Version":"2012-10-17"}"#, PolicyError::MissingElement { element: "Statement", .. } => rejected;
    empty_statement_array_is_rejected:
        r#"{"Statement":[]}"#, PolicyError::Empty { .. } => rejected;
    effect_values_are_case_sensitive:
        r#"{"Statement":{"Effect":"allow","Action":"a:b","Resource":"*"}}"#, PolicyError::InvalidEffect { .. } => rejected;
    bad_version_is_rejected:
        r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}"#, PolicyError::InvalidVersion { .. } => rejected;
    non_string_version_is_rejected:
        r#"{"Version":2012,"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}"#, PolicyError::WrongType { .. } => rejected;
    unknown_condition_operator_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEqualz":{"k":"v"}}}}"#,
        PolicyError::UnknownConditionOperator { .. } => rejected;
    null_if_exists_is_not_an_operator:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}}"#,
        PolicyError::UnknownConditionOperator { .. } => rejected;
    numeric_operator_with_non_numeric_policy_value_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericEquals":{"k":"ten"}}}}"#,
        PolicyError::InvalidConditionValue { .. } => rejected;
    date_operator_with_invalid_date_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"DateLessThan":{"k":"2020-13-01"}}}}"#,
        PolicyError::InvalidConditionValue { .. } => rejected;
    ip_operator_with_invalid_cidr_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"IpAddress":{"k":"10.0.0.0/33"}}}}"#,
        PolicyError::InvalidConditionValue { .. } => rejected;
    binary_equals_with_invalid_base64_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"BinaryEquals":{"k":"!!"}}}}"#,
        PolicyError::InvalidConditionValue { .. } => rejected;
    null_condition_value_must_be_boolean:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Null":{"k":"maybe"}}}}"#,
        PolicyError::InvalidConditionValue { .. } => rejected;
    condition_value_cannot_be_an_object:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}}"#,
        PolicyError::WrongType { .. } => rejected;
    empty_condition_value_list_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":[]}}}}"#,
        PolicyError::Empty { .. } => rejected;
    action_without_service_prefix_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"Decrypt","Resource":"*"}}"#, PolicyError::InvalidAction { .. } => rejected;
    empty_action_list_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#, PolicyError::Empty { .. } => rejected;
    non_string_action_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}"#, PolicyError::WrongType { .. } => rejected;
    resource_must_be_star_or_an_arn:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"key/abc"}}"#, PolicyError::InvalidResource { .. } => rejected;
    resource_arn_needs_six_parts:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"arn:aws:kms:*"}}"#, PolicyError::InvalidResource { .. } => rejected;
    principal_string_other_than_star_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":"111122223333"}}"#, PolicyError::InvalidPrincipal { .. } => rejected;
    principal_with_partial_wildcard_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"}}}"#,
        PolicyError::InvalidPrincipal { .. } => rejected;
    principal_with_unknown_type_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"Aws":"111122223333"}}}"#,
        PolicyError::InvalidPrincipal { .. } => rejected;
    principal_account_must_have_twelve_digits:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"AWS":"11112222333"}}}"#,
        PolicyError::InvalidPrincipal { .. } => rejected;
    principal_group_arn_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"AWS":"arn:aws:iam::111122223333:group/admins"}}}"#,
        PolicyError::InvalidPrincipal { .. } => rejected;
    principal_non_iam_arn_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"AWS":"arn:aws:s3:::bucket"}}}"#,
        PolicyError::InvalidPrincipal { .. } => rejected;
    empty_principal_object_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{}}}"#, PolicyError::Empty { .. } => rejected;
    malformed_session_arn_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*","Principal":{"AWS":"arn:aws:sts::111122223333:assumed-role/OnlyRole"}}}"#,
        PolicyError::InvalidPrincipal { .. } => rejected;
    trailing_garbage_is_rejected:
        r#"{"Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}} x"#, PolicyError::Json { .. } => rejected;
    document_must_be_an_object:
        r#"["Statement"]"#, PolicyError::WrongType { .. } => rejected;
}

/// IAM's rule (identity, boundary, trust and session policies): Sids are
/// `[0-9A-Za-z]*` and unique. KMS key policies allow any Sid: the default
/// key policy's is "Enable IAM User Permissions".
#[test]
fn iam_statement_ids_are_alphanumeric_and_unique_only_where_iam_applies() {
    let with_sid = |sid: &str| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{sid}","Effect":"Allow","Principal":{{"AWS":"111122223333"}},"Action":"kms:*","Resource":"*"}}]}}"#
        )
    };
    let key_policy = ParseOptions::for_kind(PolicyKind::ResourceBased);
    let trust = ParseOptions::for_trust_policy().iam();
    for sid in ["Enable IAM User Permissions", "a-b_c", "\u{e9}"] {
        assert!(Policy::parse(&with_sid(sid), &key_policy).is_ok(), "{sid}");
        let e = Policy::parse(&with_sid(sid), &trust).expect_err(sid);
        assert!(matches!(e, PolicyError::SidNotAlphanumeric { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"
        );
    }
    for sid in ["", "EnableIAMUserPermissions", "Stmt1"] {
        assert!(Policy::parse(&with_sid(sid), &trust).is_ok(), "{sid}");
    }
    let twice = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"kms:*","Resource":"*"},{"Sid":"A","Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
    let identity = ParseOptions::for_kind(PolicyKind::IdentityBased);
    assert!(Policy::parse(twice, &identity).is_ok());
    let e = Policy::parse(twice, &identity.iam()).expect_err("duplicate sid");
    assert_eq!(
        e.to_string(),
        "Statement IDs (SID) in a single policy must be unique."
    );
}
