//! Combination rules: explicit deny, same-account and cross-account evaluation.

use crate::support::*;
use ferrokms_policy::{
    evaluate, explain, CombineMode, Decision, PolicyInput, PolicyKind, PolicyKind::*, Request,
};

const DENY_ALL_RESOURCE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"DenyAll","Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}]}"#;
const DENY_ALL_IDENTITY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"DenyAll","Effect":"Deny","Action":"*","Resource":"*"}]}"#;
const ALLOW_ALL_IDENTITY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const ALLOW_S3_ONLY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
const DEFAULT_KEY_POLICY: &str = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

fn user_req() -> Request {
    request(USER, "kms:Sign", KEY_ARN)
}
fn session_req() -> Request {
    Request::new(
        principal(SESSION).with_role_arn(ROLE),
        action("kms:Sign"),
        KEY_ARN,
    )
}
fn implicit(missing: PolicyKind) -> Decision {
    Decision::ImplicitDeny { missing }
}
fn is_explicit(d: &Decision, kind: PolicyKind) -> bool {
    matches!(d, Decision::ExplicitDeny { kind: k, .. } if *k == kind)
}

#[test]
fn no_policies_is_an_implicit_deny() {
    assert_eq!(decide(&user_req(), &[]), implicit(IdentityBased));
}

#[test]
fn identity_policy_allow_is_enough_in_the_same_account() {
    assert_eq!(
        decide(&user_req(), &[(IdentityBased, ALLOW_ALL_IDENTITY)]),
        Decision::Allow
    );
}

#[test]
fn identity_policy_that_does_not_cover_the_action_is_an_implicit_deny() {
    assert_eq!(
        decide(&user_req(), &[(IdentityBased, ALLOW_S3_ONLY)]),
        implicit(IdentityBased)
    );
}

#[test]
fn explicit_deny_in_identity_policy_overrides_identity_allow() {
    let d = decide(
        &user_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (IdentityBased, DENY_ALL_IDENTITY),
        ],
    );
    assert!(is_explicit(&d, IdentityBased), "{d:?}");
}

#[test]
fn explicit_deny_in_identity_policy_overrides_resource_allow() {
    let rp = allow_resource(r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#, "kms:*");
    let d = decide(
        &user_req(),
        &[(ResourceBased, &rp), (IdentityBased, DENY_ALL_IDENTITY)],
    );
    assert!(is_explicit(&d, IdentityBased), "{d:?}");
}

#[test]
fn explicit_deny_in_resource_policy_overrides_identity_allow() {
    let d = decide(
        &user_req(),
        &[
            (ResourceBased, DENY_ALL_RESOURCE),
            (IdentityBased, ALLOW_ALL_IDENTITY),
        ],
    );
    assert!(is_explicit(&d, ResourceBased), "{d:?}");
}

#[test]
fn explicit_deny_in_permissions_boundary_is_reported_as_boundary() {
    let d = decide(
        &user_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (PermissionsBoundary, DENY_ALL_IDENTITY),
        ],
    );
    assert!(is_explicit(&d, PermissionsBoundary), "{d:?}");
}

#[test]
fn explicit_deny_in_session_policy_is_reported_as_session_policy() {
    let d = decide(
        &session_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (SessionPolicy, DENY_ALL_IDENTITY),
        ],
    );
    assert!(is_explicit(&d, SessionPolicy), "{d:?}");
}

#[test]
fn explicit_deny_report_prefers_resource_policy_over_identity_policy() {
    let d = decide(
        &user_req(),
        &[
            (IdentityBased, DENY_ALL_IDENTITY),
            (ResourceBased, DENY_ALL_RESOURCE),
        ],
    );
    assert!(is_explicit(&d, ResourceBased), "{d:?}");
}

#[test]
fn explicit_deny_names_policy_and_statement() {
    let d = decide(
        &user_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (IdentityBased, DENY_ALL_IDENTITY),
        ],
    );
    assert_eq!(
        d,
        Decision::ExplicitDeny {
            kind: IdentityBased,
            policy_id: "p1".into(),
            statement: 0,
            sid: Some("DenyAll".into())
        }
    );
}

#[test]
fn explicit_deny_beats_root_user() {
    let r = request(ROOT, "kms:Sign", KEY_ARN);
    assert!(is_explicit(
        &decide(&r, &[(ResourceBased, DENY_ALL_RESOURCE)]),
        ResourceBased
    ));
}

#[test]
fn root_user_is_allowed_without_identity_policies_in_its_account() {
    let r = request(ROOT, "kms:Sign", KEY_ARN);
    assert_eq!(decide(&r, &[]), Decision::Allow);
}

#[test]
fn resource_policy_naming_the_user_is_enough_in_the_same_account() {
    let rp = allow_resource(r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#, "kms:*");
    assert_eq!(
        decide(&user_req(), &[(ResourceBased, &rp)]),
        Decision::Allow
    );
}

#[test]
fn resource_policy_user_grant_is_not_limited_by_permissions_boundary() {
    let rp = allow_resource(r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#, "kms:*");
    let d = decide(
        &user_req(),
        &[(ResourceBased, &rp), (PermissionsBoundary, ALLOW_S3_ONLY)],
    );
    assert_eq!(d, Decision::Allow);
}

#[test]
fn resource_policy_role_grant_is_limited_by_permissions_boundary() {
    let rp = allow_resource(
        r#"{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}"#,
        "kms:*",
    );
    let d = decide(
        &session_req(),
        &[(ResourceBased, &rp), (PermissionsBoundary, ALLOW_S3_ONLY)],
    );
    assert_eq!(d, implicit(PermissionsBoundary));
}

#[test]
fn resource_policy_role_grant_is_limited_by_session_policy() {
    let rp = allow_resource(
        r#"{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}"#,
        "kms:*",
    );
    let d = decide(
        &session_req(),
        &[(ResourceBased, &rp), (SessionPolicy, ALLOW_S3_ONLY)],
    );
    assert_eq!(d, implicit(SessionPolicy));
}

#[test]
fn resource_policy_role_grant_needs_no_identity_policy() {
    let rp = allow_resource(
        r#"{"AWS":"arn:aws:iam::111122223333:role/ops/Admin"}"#,
        "kms:*",
    );
    assert_eq!(
        decide(&session_req(), &[(ResourceBased, &rp)]),
        Decision::Allow
    );
}

#[test]
fn resource_policy_session_grant_is_not_limited_by_boundary_or_session_policy() {
    let rp = allow_resource(
        r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/alice-session"}"#,
        "kms:*",
    );
    let d = decide(
        &session_req(),
        &[
            (ResourceBased, &rp),
            (PermissionsBoundary, ALLOW_S3_ONLY),
            (SessionPolicy, ALLOW_S3_ONLY),
        ],
    );
    assert_eq!(d, Decision::Allow);
}

#[test]
fn resource_policy_account_grant_delegates_to_identity_policies() {
    assert_eq!(
        decide(&user_req(), &[(ResourceBased, DEFAULT_KEY_POLICY)]),
        implicit(IdentityBased)
    );
    assert_eq!(
        decide(
            &user_req(),
            &[
                (ResourceBased, DEFAULT_KEY_POLICY),
                (IdentityBased, ALLOW_ALL_IDENTITY)
            ]
        ),
        Decision::Allow
    );
}

#[test]
fn permissions_boundary_caps_identity_policy_allow() {
    let d = decide(
        &user_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (PermissionsBoundary, ALLOW_S3_ONLY),
        ],
    );
    assert_eq!(d, implicit(PermissionsBoundary));
}

#[test]
fn permissions_boundary_alone_grants_nothing() {
    let d = decide(&user_req(), &[(PermissionsBoundary, ALLOW_ALL_IDENTITY)]);
    assert_eq!(d, implicit(IdentityBased));
}

#[test]
fn session_policy_caps_identity_policy_allow() {
    let d = decide(
        &session_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (SessionPolicy, ALLOW_S3_ONLY),
        ],
    );
    assert_eq!(d, implicit(SessionPolicy));
}

#[test]
fn identity_boundary_and_session_policy_all_allowing_is_allow() {
    let d = decide(
        &session_req(),
        &[
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (PermissionsBoundary, ALLOW_ALL_IDENTITY),
            (SessionPolicy, ALLOW_ALL_IDENTITY),
        ],
    );
    assert_eq!(d, Decision::Allow);
}

#[test]
fn cross_account_requires_resource_policy_allow() {
    let r = request("arn:aws:iam::444455556666:user/bob", "kms:Sign", KEY_ARN);
    assert_eq!(
        decide(&r, &[(IdentityBased, ALLOW_ALL_IDENTITY)]),
        implicit(ResourceBased)
    );
}

#[test]
fn cross_account_requires_identity_policy_even_when_resource_policy_names_the_user() {
    let r = request("arn:aws:iam::444455556666:user/bob", "kms:Sign", KEY_ARN);
    let rp = allow_resource(r#"{"AWS":"arn:aws:iam::444455556666:user/bob"}"#, "kms:*");
    assert_eq!(decide(&r, &[(ResourceBased, &rp)]), implicit(IdentityBased));
    assert_eq!(
        decide(
            &r,
            &[(ResourceBased, &rp), (IdentityBased, ALLOW_ALL_IDENTITY)]
        ),
        Decision::Allow
    );
}

#[test]
fn cross_account_account_principal_plus_identity_allow_is_allow() {
    let r = request("arn:aws:iam::444455556666:user/bob", "kms:Sign", KEY_ARN);
    let rp = allow_resource(r#"{"AWS":"444455556666"}"#, "kms:*");
    assert_eq!(
        decide(
            &r,
            &[(ResourceBased, &rp), (IdentityBased, ALLOW_ALL_IDENTITY)]
        ),
        Decision::Allow
    );
}

#[test]
fn cross_account_identity_allow_is_still_capped_by_boundary() {
    let r = request("arn:aws:iam::444455556666:user/bob", "kms:Sign", KEY_ARN);
    let rp = allow_resource(r#"{"AWS":"444455556666"}"#, "kms:*");
    let d = decide(
        &r,
        &[
            (ResourceBased, &rp),
            (IdentityBased, ALLOW_ALL_IDENTITY),
            (PermissionsBoundary, ALLOW_S3_ONLY),
        ],
    );
    assert_eq!(d, implicit(PermissionsBoundary));
}

#[test]
fn cross_account_resource_policy_for_another_account_does_not_apply() {
    let r = request("arn:aws:iam::444455556666:user/bob", "kms:Sign", KEY_ARN);
    let d = decide(
        &r,
        &[
            (ResourceBased, DEFAULT_KEY_POLICY),
            (IdentityBased, ALLOW_ALL_IDENTITY),
        ],
    );
    assert_eq!(d, implicit(ResourceBased));
}

#[test]
fn kms_mode_identity_allow_needs_key_policy_delegation() {
    let d = decide_mode(
        &user_req(),
        &[(IdentityBased, ALLOW_ALL_IDENTITY)],
        CombineMode::ResourcePolicyRequired,
    );
    assert_eq!(d, implicit(ResourceBased));
    let d = decide_mode(
        &user_req(),
        &[
            (ResourceBased, DEFAULT_KEY_POLICY),
            (IdentityBased, ALLOW_ALL_IDENTITY),
        ],
        CombineMode::ResourcePolicyRequired,
    );
    assert_eq!(d, Decision::Allow);
}

#[test]
fn kms_mode_root_user_needs_the_key_policy_to_name_the_account() {
    let r = request(ROOT, "kms:PutKeyPolicy", KEY_ARN);
    assert_eq!(
        decide_mode(&r, &[], CombineMode::ResourcePolicyRequired),
        implicit(ResourceBased)
    );
    assert_eq!(
        decide_mode(
            &r,
            &[(ResourceBased, DEFAULT_KEY_POLICY)],
            CombineMode::ResourcePolicyRequired
        ),
        Decision::Allow
    );
}

#[test]
fn kms_mode_principal_star_is_a_direct_allow_in_the_same_account() {
    let rp = allow_resource(r#""*""#, "kms:Decrypt");
    let r = request(USER, "kms:Decrypt", KEY_ARN);
    assert_eq!(
        decide_mode(
            &r,
            &[(ResourceBased, &rp)],
            CombineMode::ResourcePolicyRequired
        ),
        Decision::Allow
    );
}

#[test]
fn denial_reason_names_the_missing_policy_type() {
    assert_eq!(
        implicit(IdentityBased).denial_reason("kms:Sign").as_deref(),
        Some("because no identity-based policy allows the kms:Sign action")
    );
    assert_eq!(
        implicit(PermissionsBoundary)
            .denial_reason("kms:Sign")
            .as_deref(),
        Some("because no permissions boundary allows the kms:Sign action")
    );
    assert_eq!(
        implicit(SessionPolicy).denial_reason("kms:Sign").as_deref(),
        Some("because no session policy allows the kms:Sign action")
    );
    let d = Decision::ExplicitDeny {
        kind: ResourceBased,
        policy_id: "k".into(),
        statement: 0,
        sid: None,
    };
    assert_eq!(
        d.denial_reason("kms:Sign").as_deref(),
        Some("with an explicit deny in a resource-based policy")
    );
}

#[test]
fn access_denied_message_uses_the_session_arn_and_resource() {
    let r = session_req();
    let msg = explain::access_denied_message(&r, &implicit(ResourceBased));
    assert_eq!(
        msg.as_deref(),
        Some("User: arn:aws:sts::111122223333:assumed-role/Admin/alice-session is not authorized to perform: kms:Sign on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no resource-based policy allows the kms:Sign action")
    );
}

#[test]
fn trace_reports_why_each_statement_did_not_apply() {
    let text = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"WrongAction","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},
        {"Sid":"WrongResource","Effect":"Allow","Action":"kms:*","Resource":"arn:aws:kms:*:444455556666:key/*"},
        {"Sid":"WrongTag","Effect":"Allow","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"red"}}}]}"#;
    let p = parse(IdentityBased, text);
    let r = user_req().with_context(ctx().with("aws:PrincipalTag/team", "blue"));
    let e = evaluate(&r, &[PolicyInput::new("alice-inline", IdentityBased, &p)]);
    let human = explain::render_text(&r, &e);
    assert!(human.contains("#0 \"WrongAction\" Allow: does not apply: action kms:Sign is not matched by Action [\"kms:Encrypt\"]"), "{human}");
    assert!(
        human.contains("resource arn:aws:kms:us-east-1:111122223333:key/"),
        "{human}"
    );
    assert!(human.contains("condition StringEquals on aws:PrincipalTag/team failed: request value(s) [\"blue\"] match none of [\"red\"]"), "{human}");
    let json = explain::to_json(&r, &e);
    assert_eq!(
        json["policies"][0]["statements"][2]["mismatch"]["kind"],
        "condition"
    );
    assert_eq!(
        json["policies"][0]["statements"][2]["mismatch"]["request_values"][0],
        "blue"
    );
    assert_eq!(json["missing_allow"]["policy_type"], "identity");
}
