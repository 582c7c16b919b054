//! ValidatePolicy's tests: issue codes, finding types, paths and spans.

use super::checks::{covers, distance, glob, kms_mask, ActionPattern};
use super::*;

const KEY_ADMIN: &str = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;

fn codes(text: &str, ty: PolicyType, rt: Option<&str>) -> Vec<String> {
    validate_policy(text, ty, rt)
        .into_iter()
        .map(|f| f.issue_code)
        .collect()
}

fn one(text: &str, ty: PolicyType, rt: Option<&str>, code: &str) -> Finding {
    let all = validate_policy(text, ty, rt);
    all.iter()
        .find(|f| f.issue_code == code)
        .cloned()
        .unwrap_or_else(|| panic!("no {code} in {all:?}"))
}

fn spanned<'a>(text: &'a str, f: &Finding) -> &'a str {
    let s = f.locations[0].span;
    let start = text
        .char_indices()
        .nth(s.start.offset)
        .map_or(text.len(), |c| c.0);
    let end = text
        .char_indices()
        .nth(s.end.offset)
        .map_or(text.len(), |c| c.0);
    &text[start..end]
}

#[test]
fn a_clean_key_policy_has_no_findings() {
    let text = format!(r#"{{"Version":"2012-10-17","Statement":[{KEY_ADMIN}]}}"#);
    assert_eq!(
        codes(&text, PolicyType::Resource, Some("AWS::KMS::Key")),
        Vec::<String>::new()
    );
    // Read as a key policy without the resource type too: its actions are all kms:.
    assert_eq!(
        codes(&text, PolicyType::Resource, None),
        Vec::<String>::new()
    );
}

#[test]
fn json_syntax_error_points_at_the_fault() {
    let text = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [ x ]\n}";
    let f = one(text, PolicyType::Identity, None, "JSON_SYNTAX_ERROR");
    assert_eq!(f.finding_type, FindingType::Error);
    let span = f.locations[0].span;
    assert_eq!((span.start.line, span.start.column), (3, 17));
    assert_eq!(spanned(text, &f), "x");
    assert!(f
        .learn_more_link
        .ends_with("#access-analyzer-reference-policy-checks-error-json-syntax-error"));
}

#[test]
fn grammar_errors_take_aws_codes_and_paths() {
    let no_principal = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}"#;
    let f = one(
        no_principal,
        PolicyType::Resource,
        Some("AWS::KMS::Key"),
        "MISSING_PRINCIPAL",
    );
    assert_eq!(
        f.locations[0].path,
        [
            PathElement::Value("Statement".into()),
            PathElement::Index(0)
        ]
    );
    let principal_in_identity = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}"#;
    let f = one(
        principal_in_identity,
        PolicyType::Identity,
        None,
        "UNSUPPORTED_PRINCIPAL",
    );
    assert_eq!(spanned(principal_in_identity, &f), "\"Principal\"");
    assert_eq!(
        f.locations[0].path,
        [
            PathElement::Value("Statement".into()),
            PathElement::Key("Principal".into())
        ]
    );
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}"#;
    assert_eq!(codes(text, PolicyType::Identity, None), ["INVALID_EFFECT"]);
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Resource":"*"}]}"#;
    assert_eq!(codes(text, PolicyType::Identity, None), ["MISSING_ACTION"]);
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}]}"#;
    let f = one(
        text,
        PolicyType::Identity,
        None,
        "INVALID_CONDITION_OPERATOR",
    );
    assert_eq!(spanned(text, &f), "\"StringEqualz\"");
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"aws:username":"true"}}}]}"#;
    assert_eq!(
        codes(text, PolicyType::Identity, None),
        ["NULL_WITH_IF_EXISTS"]
    );
    let text = r#"{"Version":"2012-10-18","Statement":[]}"#;
    assert_eq!(codes(text, PolicyType::Identity, None), ["INVALID_VERSION"]);
}

#[test]
fn missing_version_is_a_general_warning() {
    let text = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
    let f = one(text, PolicyType::Identity, None, "MISSING_VERSION");
    assert_eq!(f.finding_type, FindingType::Warning);
    assert!(f.locations[0].path.is_empty());
    assert!(f
        .learn_more_link
        .ends_with("general-warning-missing-version"));
}

#[test]
fn lint_findings_are_mapped_with_their_locations() {
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{KEY_ADMIN},{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:user/u"}},"Action":["kms:Encrypt","kms:Decryptt"],"Resource":"*","Condition":{{"ForAllValues:StringEquals":{{"kms:EncryptionContext:app":"x"}},"StringEquals":{{"kms:EncryptionContex:app":"y"}}}}}}]}}"#
    );
    let f = one(
        &text,
        PolicyType::Resource,
        Some("AWS::KMS::Key"),
        "INVALID_ACTION",
    );
    assert_eq!(spanned(&text, &f), "\"kms:Decryptt\"");
    let f = one(
        &text,
        PolicyType::Resource,
        Some("AWS::KMS::Key"),
        "FORALLVALUES_WITH_SINGLE_VALUED_KEY",
    );
    assert_eq!(f.finding_type, FindingType::SecurityWarning);
    assert_eq!(
        f.locations[0].path.last(),
        Some(&PathElement::Value("kms:EncryptionContext:app".into()))
    );
    let f = one(
        &text,
        PolicyType::Resource,
        Some("AWS::KMS::Key"),
        "INVALID_SERVICE_CONDITION_KEY",
    );
    assert_eq!(spanned(&text, &f), "\"y\"");
    let public = format!(
        r#"{{"Version":"2012-10-17","Statement":[{KEY_ADMIN},{{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let f = one(&public, PolicyType::Resource, None, "PUBLIC_ACCESS");
    assert_eq!(f.finding_type, FindingType::SecurityWarning);
    assert_eq!(spanned(&public, &f), "\"*\"");
    assert!(f.learn_more_link.starts_with("ferrokms "));
    let lockout = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
    assert!(codes(lockout, PolicyType::Resource, Some("AWS::KMS::Key"))
        .contains(&"LOCKOUT_RISK".to_string()));
}

#[test]
fn redundant_actions_and_pass_role() {
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:Get*","s3:Get*","iam:PassRole"],"Resource":"*"}]}"#;
    let found = validate_policy(text, PolicyType::Identity, None);
    let redundant: Vec<&str> = found
        .iter()
        .filter(|f| f.issue_code == "REDUNDANT_ACTION")
        .map(|f| spanned(text, f))
        .collect();
    assert_eq!(redundant, ["\"s3:GetObject\"", "\"s3:Get*\""]);
    let f = one(
        text,
        PolicyType::Identity,
        None,
        "PASS_ROLE_WITH_STAR_IN_RESOURCE",
    );
    assert_eq!(f.finding_type, FindingType::SecurityWarning);
    assert_eq!(spanned(text, &f), "\"*\"");
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","NotResource":"arn:aws:iam::111122223333:role/x"}]}"#;
    assert_eq!(
        codes(text, PolicyType::Identity, None),
        ["PASS_ROLE_WITH_STAR_IN_ACTION_AND_NOT_RESOURCE"]
    );
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"s3:*","Resource":"*"}]}"#;
    assert_eq!(
        codes(text, PolicyType::Identity, None),
        ["PASS_ROLE_WITH_NOT_ACTION_AND_STAR_IN_RESOURCE"]
    );
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Encrypt*","kms:*"],"Resource":"arn:aws:kms:us-east-1:111122223333:key/k"}]}"#;
    let redundant: Vec<&str> = validate_policy(text, PolicyType::Identity, None)
        .iter()
        .filter(|f| f.issue_code == "REDUNDANT_ACTION")
        .map(|f| spanned(text, f))
        .collect();
    assert_eq!(redundant, ["\"kms:Encrypt\"", "\"kms:Encrypt*\""]);
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iam:PassRole","Resource":"*"}]}"#;
    assert_eq!(
        codes(text, PolicyType::Identity, None),
        Vec::<String>::new()
    );
}

/// The worst case the size limit lets through: one statement of as many
/// short actions as fit, every pair compared for REDUNDANT_ACTION.
#[test]
fn a_document_at_the_size_limit_validates_in_bounded_time() {
    let actions: Vec<String> = (0..2700)
        .map(|i| {
            if i % 2 == 0 {
                format!("s3:G*{i}")
            } else {
                format!("kms:E*{i}")
            }
        })
        .collect();
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{},"Resource":"*"}}]}}"#,
        serde_json::to_string(&actions).unwrap()
    );
    let chars = text.chars().filter(|c| !c.is_whitespace()).count();
    assert!(chars <= crate::analyzers::MAX_POLICY_CHARS, "{chars}");
    eprintln!("{chars} characters");
    let started = std::time::Instant::now();
    let found = validate_policy(&text, PolicyType::Identity, None);
    let took = started.elapsed();
    assert!(!found.is_empty());
    // Unoptimized test builds are ~10x slower than the server's.
    eprintln!("validated in {took:?}");
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
}

#[test]
fn near_misses_of_global_condition_keys_are_errors() {
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIpp":"10.0.0.0/8"},"StringEquals":{"aws:PrincipalTagg/team":"a","aws:PrincipalTag/team":"b","aws:SomethingNew":"c","aws:username":"d"}}}]}"#;
    let found: Vec<Finding> = validate_policy(text, PolicyType::Identity, None)
        .into_iter()
        .filter(|f| f.issue_code == "INVALID_GLOBAL_CONDITION_KEY")
        .collect();
    let keys: Vec<&str> = found.iter().map(|f| spanned(text, f)).collect();
    assert_eq!(keys, ["\"aws:SourceIpp\"", "\"aws:PrincipalTagg/team\""]);
    assert!(found[0].finding_details.contains("aws:sourceip"));
    assert_eq!(distance("abc", "abd"), 1);
}

#[test]
fn trust_policies_need_no_resource() {
    let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
    assert_eq!(
        codes(
            text,
            PolicyType::Resource,
            Some("AWS::IAM::AssumeRolePolicyDocument")
        ),
        Vec::<String>::new()
    );
}

#[test]
fn every_mapped_code_is_documented_as_aws_or_ours() {
    for (lint_code, code, _) in LINT_MAPPING {
        assert!(!lint_code.is_empty() && !code.is_empty());
    }
    assert!(glob(b"iam:Pass*", b"iam:PassRole"));
    assert!(glob(b"*", b"iam:PassRole"));
    assert!(!glob(b"iam:Get*", b"iam:PassRole"));
    let p = |text| ActionPattern {
        text,
        kms: kms_mask(text),
    };
    assert!(covers(&p("iam:*"), &p("iam:Get*")));
    assert!(!covers(&p("iam:Get*"), &p("iam:*")));
    assert!(covers(&p("kms:*"), &p("kms:Encrypt*")));
    assert!(covers(&p("kms:Encrypt*"), &p("kms:Encrypt")));
    assert!(!covers(&p("kms:Encrypt"), &p("kms:Decrypt")));
    // A pattern that matches no KMS action covers nothing and is covered by nothing.
    assert!(!covers(&p("kms:*"), &p("kms:Nope")));
    assert!(lint::KMS_ACTIONS.len() < 64);
}
