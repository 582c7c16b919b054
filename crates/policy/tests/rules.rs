//! Table-driven tests, each named after the documented IAM rule it checks.
//!
//! The rules come from the IAM JSON policy reference (elements, condition operators,
//! multivalued context keys, policy variables, evaluation logic, cross-account evaluation)
//! and the KMS developer guide's key-policy pages.

#[path = "rules/support.rs"]
mod support;

#[path = "rules/conditions.rs"]
mod conditions;
#[path = "rules/evaluation.rs"]
mod evaluation;
#[path = "rules/matching.rs"]
mod matching;
#[path = "rules/parsing.rs"]
mod parsing;
#[path = "rules/variables.rs"]
mod variables;

#[test]
fn trust_policy_statement_without_resource_applies_to_the_role_it_is_attached_to() {
    use ferrokms_policy::{
        evaluate_with, Action, CombineMode, EvaluationOptions, ParseOptions, Policy, PolicyInput,
        PolicyKind, Request, RequestPrincipal,
    };
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/dev"},"Action":"sts:AssumeRole"}]}"#;
    let trust = Policy::parse(text, &ParseOptions::for_trust_policy()).unwrap();
    let key_style =
        Policy::parse(text, &ParseOptions::for_kind(PolicyKind::ResourceBased)).unwrap();
    let request = Request::new(
        RequestPrincipal::from_arn("arn:aws:iam::111122223333:user/dev").unwrap(),
        Action::parse("sts:AssumeRole").unwrap(),
        "arn:aws:iam::111122223333:role/r",
    );
    let opts = EvaluationOptions {
        mode: CombineMode::ResourcePolicyRequired,
    };
    let as_trust = evaluate_with(
        &request,
        &[PolicyInput::new("t", PolicyKind::ResourceBased, &trust)],
        &opts,
    );
    assert!(as_trust.decision.is_allowed());
    let as_key_policy = evaluate_with(
        &request,
        &[PolicyInput::new("k", PolicyKind::ResourceBased, &key_style)],
        &opts,
    );
    assert!(
        !as_key_policy.decision.is_allowed(),
        "key policies: no Resource never matches"
    );
}

#[test]
fn referenced_context_keys_list_condition_keys_and_variables_but_nothing_else() {
    use ferrokms_policy::{ParseOptions, Policy, PolicyKind};
    let text = r#"{"Version":"2012-10-17","Statement":[
      {"Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:*:key/${aws:PrincipalTag/Key}",
       "Condition":{"StringEquals":{"kms:EncryptionContext:App":"${aws:username}"},"Bool":{"aws:SecureTransport":"true"}}},
      {"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}"#;
    let p = Policy::parse(text, &ParseOptions::for_kind(PolicyKind::IdentityBased)).unwrap();
    let mut keys = p.referenced_context_keys().to_vec();
    keys.sort();
    assert_eq!(
        keys,
        [
            "aws:principaltag/key",
            "aws:securetransport",
            "aws:username",
            "kms:encryptioncontext:app"
        ]
    );
    let default = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#,
        &ParseOptions::for_kind(PolicyKind::ResourceBased),
    )
    .unwrap();
    assert!(default.referenced_context_keys().is_empty());
}
