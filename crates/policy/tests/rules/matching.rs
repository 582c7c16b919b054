//! Action, resource and principal matching.

use crate::support::*;
use ferrokms_policy::RequestPrincipal;

macro_rules! stmt_cases {
    ($($name:ident: $elements:expr, $action:expr, $resource:expr => $want:expr;)*) => {
        $(
            #[test]
            fn $name() {
                assert_eq!(statement_applies($elements, $action, $resource), $want, "{}", $elements);
            }
        )*
    };
}

// ---- Action / NotAction ---------------------------------------------------------------------
stmt_cases! {
    action_star_matches_every_action:
        r#""Action":"*","Resource":"*""#, "kms:Sign", KEY_ARN => true;
    action_service_star_matches_every_action_of_the_service:
        r#""Action":"kms:*","Resource":"*""#, "kms:Decrypt", KEY_ARN => true;
    action_service_star_does_not_match_other_services:
        r#""Action":"kms:*","Resource":"*""#, "s3:GetObject", KEY_ARN => false;
    action_prefix_is_case_insensitive:
        r#""Action":"KMS:sign","Resource":"*""#, "kms:Sign", KEY_ARN => true;
    action_name_is_case_insensitive:
        r#""Action":"kms:SIGN","Resource":"*""#, "KMS:sign", KEY_ARN => true;
    action_star_wildcard_within_name:
        r#""Action":"kms:Get*","Resource":"*""#, "kms:GetKeyPolicy", KEY_ARN => true;
    action_star_wildcard_requires_prefix:
        r#""Action":"kms:Get*","Resource":"*""#, "kms:DescribeKey", KEY_ARN => false;
    action_question_mark_matches_one_character:
        r#""Action":"kms:?ncrypt","Resource":"*""#, "kms:Encrypt", KEY_ARN => true;
    action_question_mark_does_not_match_two_characters:
        r#""Action":"kms:?crypt","Resource":"*""#, "kms:Decrypt", KEY_ARN => false;
    action_list_is_ored:
        r#""Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*""#, "kms:Decrypt", KEY_ARN => true;
    action_exact_name_does_not_match_longer_name:
        r#""Action":"kms:GenerateDataKey","Resource":"*""#, "kms:GenerateDataKeyPair", KEY_ARN => false;
    not_action_matches_actions_not_listed:
        r#""NotAction":"kms:Decrypt","Resource":"*""#, "kms:Encrypt", KEY_ARN => true;
    not_action_excludes_listed_actions:
        r#""NotAction":["kms:Encrypt","kms:Decrypt"],"Resource":"*""#, "kms:Decrypt", KEY_ARN => false;
    not_action_with_wildcard_excludes_matching_actions:
        r#""NotAction":"kms:*","Resource":"*""#, "kms:Sign", KEY_ARN => false;
    not_action_covers_other_services:
        r#""NotAction":"kms:*","Resource":"*""#, "s3:GetObject", KEY_ARN => true;
    not_action_is_case_insensitive:
        r#""NotAction":"KMS:DECRYPT","Resource":"*""#, "kms:Decrypt", KEY_ARN => false;
}

// ---- Resource / NotResource ----------------------------------------------------------------------
stmt_cases! {
    resource_star_matches_every_resource:
        r#""Action":"*","Resource":"*""#, "kms:Sign", KEY_ARN => true;
    resource_star_matches_actions_without_a_resource:
        r#""Action":"*","Resource":"*""#, "kms:CreateKey", "*" => true;
    resource_arn_does_not_match_actions_without_a_resource:
        r#""Action":"*","Resource":"arn:aws:kms:*:111122223333:key/*""#, "kms:CreateKey", "*" => false;
    resource_exact_arn_matches:
        r#""Action":"*","Resource":"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab""#, "kms:Sign", KEY_ARN => true;
    resource_matching_is_case_sensitive:
        r#""Action":"*","Resource":"arn:aws:kms:us-east-1:111122223333:key/1234ABCD-12ab-34cd-56ef-1234567890ab""#, "kms:Sign", KEY_ARN => false;
    resource_star_in_region_segment:
        r#""Action":"*","Resource":"arn:aws:kms:*:111122223333:key/*""#, "kms:Sign", KEY_ARN => true;
    resource_wildcard_does_not_cross_account_segment:
        r#""Action":"*","Resource":"arn:aws:kms:*:444455556666:key/*""#, "kms:Sign", KEY_ARN => false;
    resource_star_in_resource_part_spans_slashes:
        r#""Action":"*","Resource":"arn:aws:s3:::bucket/*""#, "s3:GetObject", "arn:aws:s3:::bucket/a/b/c.txt" => true;
    resource_question_mark_matches_one_character:
        r#""Action":"*","Resource":"arn:aws:kms:us-east-?:111122223333:key/*""#, "kms:Sign", KEY_ARN => true;
    resource_key_arn_pattern_does_not_match_alias_arn:
        r#""Action":"*","Resource":"arn:aws:kms:*:111122223333:key/*""#, "kms:Sign", "arn:aws:kms:us-east-1:111122223333:alias/app" => false;
    resource_list_is_ored:
        r#""Action":"*","Resource":["arn:aws:kms:*:111122223333:alias/*","arn:aws:kms:*:111122223333:key/*"]"#, "kms:Sign", KEY_ARN => true;
    resource_wildcard_partition_segment:
        r#""Action":"*","Resource":"arn:*:kms:*:*:key/*""#, "kms:Sign", KEY_ARN => true;
    not_resource_matches_resources_not_listed:
        r#""Action":"*","NotResource":"arn:aws:kms:*:111122223333:alias/*""#, "kms:Sign", KEY_ARN => true;
    not_resource_excludes_listed_resources:
        r#""Action":"*","NotResource":"arn:aws:kms:*:111122223333:key/*""#, "kms:Sign", KEY_ARN => false;
    not_resource_star_excludes_everything:
        r#""Action":"*","NotResource":"*""#, "kms:Sign", KEY_ARN => false;
}

// ---- Principal / NotPrincipal -------------------------------------------------------------------
fn admits(principal_json: &str, caller: &str) -> bool {
    principal_admits(principal_json, &request(caller, "kms:Sign", KEY_ARN))
}

#[test]
fn principal_star_matches_every_caller() {
    assert!(admits(r#""*""#, USER));
    assert!(admits(r#""*""#, "arn:aws:iam::444455556666:user/mallory"));
}

#[test]
fn principal_aws_star_is_the_same_as_star() {
    assert!(admits(r#"{"AWS":"*"}"#, SESSION));
}

#[test]
fn principal_star_includes_anonymous_callers() {
    let r =
        ferrokms_policy::Request::new(RequestPrincipal::anonymous(), action("kms:Sign"), KEY_ARN);
    assert!(principal_admits(r#""*""#, &r));
    assert!(!principal_admits(r#"{"AWS":"111122223333"}"#, &r));
}

#[test]
fn principal_account_id_matches_every_principal_of_the_account() {
    assert!(admits(r#"{"AWS":"111122223333"}"#, USER));
    assert!(admits(r#"{"AWS":"111122223333"}"#, SESSION));
    assert!(admits(r#"{"AWS":"111122223333"}"#, ROOT));
}

#[test]
fn principal_root_arn_means_the_whole_account() {
    assert!(admits(r#"{"AWS":"arn:aws:iam::111122223333:root"}"#, USER));
    assert!(admits(
        r#"{"AWS":"arn:aws:iam::111122223333:root"}"#,
        SESSION
    ));
}

#[test]
fn principal_account_does_not_match_other_accounts() {
    assert!(!admits(
        r#"{"AWS":"111122223333"}"#,
        "arn:aws:iam::444455556666:user/alice"
    ));
}

#[test]
fn principal_user_arn_matches_that_user_only() {
    assert!(admits(
        r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
        USER
    ));
    assert!(!admits(
        r#"{"AWS":"arn:aws:iam::111122223333:user/bob"}"#,
        USER
    ));
}

#[test]
fn principal_user_name_is_case_sensitive() {
    assert!(!admits(
        r#"{"AWS":"arn:aws:iam::111122223333:user/Alice"}"#,
        USER
    ));
}

#[test]
fn principal_role_arn_matches_sessions_of_that_role() {
    let r = ferrokms_policy::Request::new(
        principal(SESSION).with_role_arn(ROLE),
        action("kms:Sign"),
        KEY_ARN,
    );
    assert!(principal_admits(
        r#"{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}"#,
        &r
    ));
}

#[test]
fn principal_role_arn_with_path_matches_session_whose_arn_lacks_the_path() {
    // Only the session ARN is known: compared by account and role name.
    assert!(admits(
        r#"{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}"#,
        SESSION
    ));
}

#[test]
fn principal_role_arn_does_not_match_other_roles_sessions() {
    assert!(!admits(
        r#"{"AWS":"arn:aws:iam::111122223333:role/ReadOnly"}"#,
        SESSION
    ));
}

#[test]
fn principal_role_arn_with_other_path_does_not_match_known_role_arn() {
    let r = ferrokms_policy::Request::new(
        principal(SESSION).with_role_arn(ROLE),
        action("kms:Sign"),
        KEY_ARN,
    );
    assert!(!principal_admits(
        r#"{"AWS":"arn:aws:iam::111122223333:role/dev/Admin"}"#,
        &r
    ));
}

#[test]
fn principal_session_arn_matches_that_session_only() {
    assert!(admits(
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/alice-session"}"#,
        SESSION
    ));
    assert!(!admits(
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/bob-session"}"#,
        SESSION
    ));
}

#[test]
fn principal_federated_user_arn_matches_that_federated_user() {
    let fed = "arn:aws:sts::111122223333:federated-user/carol";
    assert!(admits(
        r#"{"AWS":"arn:aws:sts::111122223333:federated-user/carol"}"#,
        fed
    ));
    assert!(!admits(
        r#"{"AWS":"arn:aws:sts::111122223333:federated-user/dave"}"#,
        fed
    ));
}

#[test]
fn principal_service_matches_service_callers() {
    let r = ferrokms_policy::Request::new(
        RequestPrincipal::service("cloudtrail.amazonaws.com"),
        action("kms:GenerateDataKey"),
        KEY_ARN,
    );
    assert!(principal_admits(
        r#"{"Service":"cloudtrail.amazonaws.com"}"#,
        &r
    ));
    assert!(!principal_admits(r#"{"Service":"ec2.amazonaws.com"}"#, &r));
    assert!(!principal_admits(r#"{"AWS":"111122223333"}"#, &r));
}

#[test]
fn principal_unique_id_matches_the_recreated_role_only_by_id() {
    let r = ferrokms_policy::Request::new(
        principal(SESSION).with_unique_id("AROAEXAMPLEID1234567"),
        action("kms:Sign"),
        KEY_ARN,
    );
    assert!(principal_admits(r#"{"AWS":"AROAEXAMPLEID1234567"}"#, &r));
    assert!(!principal_admits(r#"{"AWS":"AROAOTHERID123456789"}"#, &r));
}

#[test]
fn principal_federated_provider_matches_web_identity_sessions() {
    let r = ferrokms_policy::Request::new(
        principal(SESSION).with_federated_provider("cognito-identity.amazonaws.com"),
        action("kms:Sign"),
        KEY_ARN,
    );
    assert!(principal_admits(
        r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
        &r
    ));
}

#[test]
fn principal_values_in_a_list_are_ored() {
    assert!(admits(
        r#"{"AWS":["arn:aws:iam::111122223333:user/bob","arn:aws:iam::111122223333:user/alice"]}"#,
        USER
    ));
}

#[test]
fn not_principal_applies_to_callers_not_listed() {
    assert!(not_principal_applies(
        r#"{"AWS":"arn:aws:iam::111122223333:user/bob"}"#,
        &request(USER, "kms:Sign", KEY_ARN)
    ));
}

#[test]
fn not_principal_excludes_a_user_only_together_with_its_account() {
    let r = request(USER, "kms:Sign", KEY_ARN);
    // The user alone is not enough: the caller is also "the account".
    assert!(not_principal_applies(
        r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
        &r
    ));
    assert!(!not_principal_applies(
        r#"{"AWS":["arn:aws:iam::111122223333:user/alice","arn:aws:iam::111122223333:root"]}"#,
        &r
    ));
}

#[test]
fn not_principal_excludes_a_session_only_with_its_role_and_account() {
    let r = request(SESSION, "kms:Sign", KEY_ARN);
    assert!(not_principal_applies(
        r#"{"AWS":["arn:aws:sts::111122223333:assumed-role/Admin/alice-session","arn:aws:iam::111122223333:root"]}"#,
        &r
    ));
    assert!(!not_principal_applies(
        r#"{"AWS":["arn:aws:sts::111122223333:assumed-role/Admin/alice-session","arn:aws:iam::111122223333:role/Admin","arn:aws:iam::111122223333:root"]}"#,
        &r
    ));
}

#[test]
fn not_principal_account_excludes_the_root_user() {
    assert!(!not_principal_applies(
        r#"{"AWS":"111122223333"}"#,
        &request(ROOT, "kms:Sign", KEY_ARN)
    ));
}

#[test]
fn not_principal_star_applies_to_nobody() {
    assert!(!not_principal_applies(
        r#"{"AWS":"*"}"#,
        &request(USER, "kms:Sign", KEY_ARN)
    ));
}
