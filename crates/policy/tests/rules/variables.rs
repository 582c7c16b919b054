//! Policy variables.

use crate::support::*;
use ferrokms_policy::{
    Context, ContextValue, ParseOptions, Policy, PolicyError, PolicyInput, PolicyKind,
};

fn resource_allowed(version: &str, resource_pattern: &str, resource: &str, c: Context) -> bool {
    let v = if version.is_empty() {
        String::new()
    } else {
        format!("\"Version\":\"{version}\",")
    };
    let text = format!(
        r#"{{{v}"Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"{resource_pattern}"}}}}"#
    );
    let p = parse(PolicyKind::IdentityBased, &text);
    let r = request(USER, "s3:GetObject", resource).with_context(c);
    ferrokms_policy::evaluate(&r, &[PolicyInput::new("id", PolicyKind::IdentityBased, &p)])
        .decision
        .is_allowed()
}

#[test]
fn variable_in_resource_is_replaced_by_request_value() {
    let c = ctx().with("aws:username", "alice");
    assert!(resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${aws:username}/*",
        "arn:aws:s3:::home/alice/f",
        c.clone()
    ));
    assert!(!resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${aws:username}/*",
        "arn:aws:s3:::home/bob/f",
        c
    ));
}

#[test]
fn variables_are_literal_text_under_version_2008_10_17() {
    let c = ctx().with("aws:username", "alice");
    assert!(!resource_allowed(
        "2008-10-17",
        "arn:aws:s3:::home/${aws:username}/*",
        "arn:aws:s3:::home/alice/f",
        c.clone()
    ));
    assert!(resource_allowed(
        "2008-10-17",
        "arn:aws:s3:::home/${aws:username}/*",
        "arn:aws:s3:::home/${aws:username}/f",
        c
    ));
}

#[test]
fn variables_are_literal_text_without_a_version() {
    let c = ctx().with("aws:username", "alice");
    assert!(!resource_allowed(
        "",
        "arn:aws:s3:::home/${aws:username}/*",
        "arn:aws:s3:::home/alice/f",
        c
    ));
}

#[test]
fn variable_without_value_makes_resource_match_nothing() {
    assert!(!resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${aws:username}/*",
        "arn:aws:s3:::home//f",
        ctx()
    ));
}

#[test]
fn variable_default_is_used_when_key_is_absent() {
    assert!(resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${aws:username, 'shared'}/*",
        "arn:aws:s3:::home/shared/f",
        ctx()
    ));
}

#[test]
fn variable_value_is_literal_not_a_wildcard() {
    let c = ctx().with("aws:PrincipalTag/dir", "*");
    assert!(!resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${aws:PrincipalTag/dir}",
        "arn:aws:s3:::home/anything",
        c.clone()
    ));
    assert!(resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${aws:PrincipalTag/dir}",
        "arn:aws:s3:::home/*",
        c
    ));
}

#[test]
fn escape_variables_produce_literal_characters() {
    assert!(resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::b/${*}${?}${$}",
        "arn:aws:s3:::b/*?$",
        ctx()
    ));
    assert!(!resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::b/${*}",
        "arn:aws:s3:::b/x",
        ctx()
    ));
}

#[test]
fn variable_names_are_case_insensitive() {
    let c = ctx().with("aws:username", "alice");
    assert!(resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::home/${AWS:UserName}",
        "arn:aws:s3:::home/alice",
        c
    ));
}

#[test]
fn multivalued_keys_cannot_be_policy_variables() {
    let c = ctx().with_multi("aws:TagKeys", vec![ContextValue::from("a")]);
    assert!(!resource_allowed(
        "2012-10-17",
        "arn:aws:s3:::b/${aws:TagKeys}",
        "arn:aws:s3:::b/a",
        c
    ));
}

#[test]
fn variable_in_string_condition_is_substituted() {
    let c = ctx()
        .with("aws:username", "alice")
        .with("s3:prefix", "home/alice/");
    assert!(holds(
        r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#,
        c.clone()
    ));
    assert!(!holds(
        r#"{"StringEquals":{"s3:prefix":"home/${aws:username}"}}"#,
        c
    ));
}

#[test]
fn variable_in_string_equals_compares_to_another_key() {
    let c = ctx()
        .with("aws:PrincipalTag/team", "blue")
        .with("aws:ResourceTag/team", "blue");
    assert!(holds(
        r#"{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}"#,
        c
    ));
}

#[test]
fn unresolved_variable_in_condition_makes_positive_operator_false() {
    let c = ctx().with("aws:ResourceTag/team", "blue");
    assert!(!holds(
        r#"{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}"#,
        c
    ));
}

#[test]
fn unresolved_variable_in_condition_makes_negated_operator_true() {
    let c = ctx().with("aws:ResourceTag/team", "blue");
    assert!(holds(
        r#"{"StringNotEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}"#,
        c
    ));
}

#[test]
fn variable_in_arn_condition_is_substituted() {
    let c = ctx()
        .with(
            "aws:SourceArn",
            "arn:aws:sns:us-east-1:111122223333:alice-topic",
        )
        .with("aws:username", "alice");
    assert!(holds(
        r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:*:${aws:username}-*"}}"#,
        c
    ));
}

#[test]
fn variables_in_condition_values_are_literal_under_2008_10_17() {
    let c = ctx()
        .with("aws:username", "alice")
        .with("x:k", "${aws:username}");
    assert!(holds_versioned(
        "2008-10-17",
        r#"{"StringEquals":{"x:k":"${aws:username}"}}"#,
        c
    ));
}

#[test]
fn variable_in_resource_before_the_resource_part_is_rejected() {
    let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:${aws:region}::b"}}"#;
    let e = Policy::parse(text, &ParseOptions::default());
    assert!(
        matches!(e, Err(PolicyError::InvalidPolicyVariable { .. })),
        "{e:?}"
    );
}

#[test]
fn unterminated_variable_is_rejected() {
    let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::b/${aws:username"}}"#;
    assert!(matches!(
        Policy::parse(text, &ParseOptions::default()),
        Err(PolicyError::InvalidPolicyVariable { .. })
    ));
}

#[test]
fn variable_in_bool_condition_is_substituted() {
    let c = ctx()
        .with("aws:SecureTransport", true)
        .with("x:want", "true");
    assert!(holds(r#"{"Bool":{"aws:SecureTransport":"${x:want}"}}"#, c));
}

#[test]
fn variables_in_values_of_a_multivalued_key_are_substituted_for_every_request_value() {
    // Several request values: the variables are substituted once for all of them (an
    // optimisation that must not change an answer).
    let c = ctx()
        .with("aws:username", "Alice")
        .with_multi("aws:TagKeys", strs(&["x", "team-Alice", "y"]));
    assert!(holds(
        r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["z*","team-${aws:username}"]}}"#,
        c.clone()
    ));
    assert!(holds(
        r#"{"ForAllValues:StringLike":{"aws:TagKeys":["?","team-${aws:username}"]}}"#,
        c.clone()
    ));
    assert!(holds(
        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"team-${aws:username}"}}"#,
        c.clone()
    ));
    assert!(holds(
        r#"{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":"TEAM-${aws:username}"}}"#,
        c.clone()
    ));
    assert!(holds(
        r#"{"ForAnyValue:ArnLike":{"aws:TagKeys":"team-${aws:username}"}}"#,
        c.clone()
    ));
    assert!(!holds(
        r#"{"ForAnyValue:StringLike":{"aws:TagKeys":"team-${aws:username}?"}}"#,
        c.clone()
    ));
    // A variable without a value: that listed value matches nothing, the others still do.
    assert!(!holds(
        r#"{"ForAnyValue:StringLike":{"aws:TagKeys":"team-${aws:PrincipalTag/none}"}}"#,
        c.clone()
    ));
    assert!(holds(
        r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["team-${aws:PrincipalTag/none}","y"]}}"#,
        c.clone()
    ));
    assert!(holds(
        r#"{"ForAllValues:StringNotLike":{"aws:TagKeys":"team-${aws:PrincipalTag/none}"}}"#,
        c
    ));
}
