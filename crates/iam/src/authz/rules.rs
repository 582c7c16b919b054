//! AWS's authorization rules for IAM and STS as one table, run in-process
//! through the Directory's public operations: the identity plane's
//! counterpart of the KMS rule table (crates/kms/tests). Each row names the
//! rule, who asks (root, a user with its policies, boundary and tags, a role
//! session with its session policy), what it asks, and AWS's answer. Every
//! row starts from a fresh directory with the same two accounts:
//!
//! - account A: users `target` (tag team=blue) and `other` (tag team=red),
//!   a customer-managed policy `managed`, a boundary policy `bound`
//!   (allows iam:Get*, iam:List*, sts:AssumeRole), and roles `ops` (trusts
//!   A's root), `direct` (trusts the asking user by ARN), `partner`
//!   (trusts B's root), `vendor` (trusts A's root with an ExternalId) and
//!   `guarded` (trusts A's root, denies the user `mallory`);
//! - account B: a customer-managed policy `b-managed`.
//!
//! The end-to-end suite drives the same rules through boto3
//! (tests/e2e/test_identity.py, test_identity_attacks.py).
//!
//! About 930 lines of code, nearly all of them rows: the table is one file
//! so that a reader sees every rule AWS states for IAM and STS in one
//! place; a new row goes next to the rule it refines.

use std::sync::Arc;

use ferrokms_authz::RequestFacts;

use super::tests::{
    account, as_user, assume, directory, facts, policy, region, root, user, A, ALLOW_ALL, B, NOW,
};
use crate::ops_owner::Owner;
use crate::sts::AssumeRoleInput;
use crate::Taggable;
use crate::{Caller, Directory, IamError, Principal, Tag};

/// Who asks.
enum Actor {
    Root(&'static str),
    /// A user of A named `asker` with an inline policy, an optional
    /// boundary (`bound`) and tags; `facts` overrides the request's facts.
    User {
        policy: String,
        boundary: bool,
        tags: &'static [(&'static str, &'static str)],
        facts: Option<RequestFacts>,
    },
    /// A user of B with an inline policy.
    UserOfB(String),
    /// A session of role `sessionrole` (of A, with `role_policy` inline),
    /// assumed by A's root, with an optional inline session policy.
    Session {
        role_policy: String,
        session_policy: Option<String>,
    },
}

/// AWS's answer.
#[derive(Debug)]
enum Expect {
    Allow,
    /// AccessDenied whose message ends with this reason clause.
    Deny(&'static str),
    NoSuchEntity,
    /// AccessDenied with exactly this message (AWS's fixed refusals).
    Refused(&'static str),
}

const NO_IDENTITY: &str = "because no identity-based policy allows";
const NO_RESOURCE: &str = "because no resource-based policy allows";
const NO_BOUNDARY: &str = "because no permissions boundary allows";
const NO_SESSION: &str = "because no session policy allows";
const EXPLICIT_IDENTITY: &str = "with an explicit deny in an identity-based policy";
const EXPLICIT_RESOURCE: &str = "with an explicit deny in a resource-based policy";

type Request = Box<dyn Fn(&World, &Caller) -> Result<(), IamError>>;

struct Row {
    rule: &'static str,
    actor: Actor,
    request: &'static str,
    run: Request,
    expect: Expect,
}

struct World {
    d: Directory,
    managed: String,
    b_managed: String,
    bound: String,
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: k.into(),
        value: v.into(),
    }
}

fn trust(principal: &str, extra: &str) -> String {
    policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":["sts:AssumeRole","sts:TagSession"]{extra}}}"#
    ))
}

fn world() -> World {
    let d = directory();
    let a = root(&d, A);
    let b = root(&d, B);
    for (name, team) in [("target", "blue"), ("other", "red")] {
        d.create_user(&a, name, None, vec![tag("team", team)], None)
            .expect("user");
    }
    let managed = d
        .create_policy(&a, "managed", None, ALLOW_ALL, None)
        .expect("managed")
        .arn();
    let bound = d
        .create_policy(
            &a,
            "bound",
            None,
            &policy(r#"{"Effect":"Allow","Action":["iam:Get*","iam:List*","sts:AssumeRole"],"Resource":"*"}"#),
            None,
        )
        .expect("bound")
        .arn();
    let b_managed = d
        .create_policy(&b, "b-managed", None, ALLOW_ALL, None)
        .expect("b managed")
        .arn();
    let a_root = format!("arn:aws:iam::{A}:root");
    let asker = format!("arn:aws:iam::{A}:user/asker");
    // `direct` names a user that does not exist yet: create it first.
    d.create_user(&a, "asker", None, Vec::new(), None)
        .expect("asker");
    let roles = [
        ("ops", trust(&a_root, "")),
        ("direct", trust(&asker, "")),
        ("partner", trust(&format!("arn:aws:iam::{B}:root"), "")),
        (
            "vendor",
            trust(
                &a_root,
                r#","Condition":{"StringEquals":{"sts:ExternalId":"s3cret"}}"#,
            ),
        ),
        (
            "guarded",
            policy(&format!(
                r#"{{"Effect":"Allow","Principal":{{"AWS":"{a_root}"}},"Action":"sts:AssumeRole"}},{{"Effect":"Deny","Principal":{{"AWS":"{asker}"}},"Action":"sts:AssumeRole"}}"#
            )),
        ),
    ];
    for (name, doc) in roles {
        d.create_role(&a, name, None, &doc, None, None, Vec::new(), None)
            .expect("role");
    }
    World {
        d,
        managed,
        b_managed,
        bound,
    }
}

fn caller_for(w: &World, actor: &Actor) -> Caller {
    let d = &w.d;
    match actor {
        Actor::Root(acct) => root(d, acct),
        Actor::User {
            policy: text,
            boundary,
            tags,
            facts: f,
        } => {
            let a = root(d, A);
            d.put_inline_policy(&a, Owner::User, "asker", "p", text)
                .expect("policy");
            if *boundary {
                d.put_permissions_boundary(&a, Taggable::User, "asker", &w.bound)
                    .expect("boundary");
            }
            if !tags.is_empty() {
                d.tag(
                    &a,
                    Taggable::User,
                    "asker",
                    tags.iter().map(|(k, v)| tag(k, v)).collect(),
                )
                .expect("tags");
            }
            let u = d.find_user(&account(A), "asker").expect("asker");
            as_user(d, &u, f.clone().unwrap_or_else(facts))
        }
        Actor::UserOfB(text) => user(d, B, "b-user", text).0,
        Actor::Session {
            role_policy,
            session_policy,
        } => {
            let a = root(d, A);
            let doc = trust(&format!("arn:aws:iam::{A}:root"), "");
            d.create_role(&a, "sessionrole", None, &doc, None, None, Vec::new(), None)
                .expect("role");
            d.put_inline_policy(&a, Owner::Role, "sessionrole", "p", role_policy)
                .expect("role policy");
            let arn = format!("arn:aws:iam::{A}:role/sessionrole");
            let (assumer, _) = user(d, A, "assumer", ALLOW_ALL);
            let creds = d
                .assume_role(
                    &assumer,
                    AssumeRoleInput {
                        policy: session_policy.as_deref(),
                        ..assume(&arn)
                    },
                )
                .expect("assumed");
            session_caller(d, &creds.session)
        }
    }
}

fn session_caller(d: &Directory, s: &Arc<crate::Session>) -> Caller {
    d.caller(&s.principal, &region(), Some(s), Some(facts()))
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{A}:role/{name}")
}

fn allow(action: &str, resource: &str) -> String {
    policy(&format!(
        r#"{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}"#
    ))
}

fn allow_if(action: &str, condition: &str) -> String {
    policy(&format!(
        r#"{{"Effect":"Allow","Action":"{action}","Resource":"*","Condition":{condition}}}"#
    ))
}

fn all_but(deny: &str) -> String {
    policy(&format!(
        r#"{{"Effect":"Allow","Action":"*","Resource":"*"}},{deny}"#
    ))
}

fn user_with(policy: String) -> Actor {
    Actor::User {
        policy,
        boundary: false,
        tags: &[],
        facts: None,
    }
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    macro_rules! row {
        ($rule:expr, $actor:expr, $request:expr, $expect:expr, $run:expr) => {
            rows.push(Row {
                rule: $rule,
                actor: $actor,
                request: $request,
                run: Box::new($run),
                expect: $expect,
            })
        };
    }
    use Expect::*;

    // --- root is all-powerful in its own account, and only there ---
    let root_a = || Actor::Root(A);
    let root_b = || Actor::Root(B);
    const ROOT: &str = "root may do anything in its own account";
    row!(ROOT, root_a(), "GetUser target", Allow, |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));
    row!(ROOT, root_a(), "CreateUser", Allow, |w, c| w
        .d
        .create_user(c, "new", None, Vec::new(), None)
        .map(drop));
    row!(ROOT, root_a(), "DeleteUser other", Allow, |w, c| w
        .d
        .delete_user(c, "other"));
    row!(ROOT, root_a(), "PutUserPolicy target", Allow, |w, c| w
        .d
        .put_inline_policy(c, Owner::User, "target", "p", ALLOW_ALL));
    row!(ROOT, root_a(), "AttachUserPolicy managed", Allow, |w, c| w
        .d
        .attach_policy(c, Owner::User, "target", &w.managed));
    row!(
        ROOT,
        root_a(),
        "CreatePolicyVersion managed",
        Allow,
        |w, c| w
            .d
            .create_policy_version(c, &w.managed, ALLOW_ALL, true)
            .map(drop)
    );
    row!(ROOT, root_a(), "TagUser target", Allow, |w, c| w.d.tag(
        c,
        Taggable::User,
        "target",
        vec![tag("k", "v")]
    ));
    row!(
        "the root user may not assume a role",
        root_a(),
        "AssumeRole ops",
        Refused("Roles may not be assumed by root accounts."),
        |w, c| w.d.assume_role(c, assume(&role("ops"))).map(drop)
    );
    const OTHER: &str = "another account's IAM resources are refused before any policy";
    row!(
        OTHER,
        root_b(),
        "GetPolicy A's managed",
        Deny(NO_RESOURCE),
        |w, c| w.d.get_policy(c, &w.managed).map(drop)
    );
    row!(
        OTHER,
        root_b(),
        "CreatePolicyVersion A's managed",
        Deny(NO_RESOURCE),
        |w, c| w
            .d
            .create_policy_version(c, &w.managed, ALLOW_ALL, true)
            .map(drop)
    );
    row!(
        OTHER,
        root_b(),
        "SetDefaultPolicyVersion A's managed",
        Deny(NO_RESOURCE),
        |w, c| w.d.set_default_policy_version(c, &w.managed, "v1")
    );
    row!(
        OTHER,
        root_b(),
        "DeletePolicy A's managed",
        Deny(NO_RESOURCE),
        |w, c| w.d.delete_policy(c, &w.managed)
    );
    row!(
        OTHER,
        root_b(),
        "ListPolicyVersions A's managed",
        Deny(NO_RESOURCE),
        |w, c| w.d.list_policy_versions(c, &w.managed).map(drop)
    );
    row!(
        OTHER,
        root_b(),
        "ListEntitiesForPolicy A's managed",
        Deny(NO_RESOURCE),
        |w, c| w
            .d
            .list_entities_for_policy(c, &w.managed, None, false)
            .map(drop)
    );
    const NOT_ATTACHABLE: &str = "another account's managed policy is never attachable";
    row!(
        NOT_ATTACHABLE,
        root_a(),
        "AttachUserPolicy B's policy",
        NoSuchEntity,
        |w, c| w.d.attach_policy(c, Owner::User, "target", &w.b_managed)
    );
    row!(
        NOT_ATTACHABLE,
        root_a(),
        "PutUserPermissionsBoundary B's policy",
        NoSuchEntity,
        |w, c| w
            .d
            .put_permissions_boundary(c, Taggable::User, "target", &w.b_managed)
    );

    // --- a user has what its identity policies allow, and nothing else ---
    const NOTHING: &str = "without an identity policy a user may do nothing";
    let none = || user_with(allow("kms:DescribeKey", "*"));
    row!(
        NOTHING,
        none(),
        "GetUser target",
        Deny(NO_IDENTITY),
        |w, c| w.d.get_user(c, Some("target")).map(drop)
    );
    row!(NOTHING, none(), "CreateUser", Deny(NO_IDENTITY), |w, c| w
        .d
        .create_user(c, "new", None, Vec::new(), None)
        .map(drop));
    row!(NOTHING, none(), "ListUsers", Deny(NO_IDENTITY), |w, c| w
        .d
        .list_users(c, None)
        .map(drop));
    row!(
        NOTHING,
        none(),
        "CreatePolicy",
        Deny(NO_IDENTITY),
        |w, c| w
            .d
            .create_policy(c, "mine", None, ALLOW_ALL, None)
            .map(drop)
    );
    row!(
        NOTHING,
        none(),
        "PutUserPolicy on itself",
        Deny(NO_IDENTITY),
        |w, c| w
            .d
            .put_inline_policy(c, Owner::User, "asker", "escalate", ALLOW_ALL)
    );
    row!(
        NOTHING,
        none(),
        "AssumeRole ops (trusts the account)",
        Deny(NO_IDENTITY),
        |w, c| w.d.assume_role(c, assume(&role("ops"))).map(drop)
    );
    const ALL: &str = "an identity policy allowing everything allows every IAM and STS call";
    let all = || user_with(ALLOW_ALL.to_string());
    row!(ALL, all(), "GetUser target", Allow, |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));
    row!(ALL, all(), "CreateUser", Allow, |w, c| w
        .d
        .create_user(c, "new", None, Vec::new(), None)
        .map(drop));
    row!(ALL, all(), "ListUsers", Allow, |w, c| w
        .d
        .list_users(c, None)
        .map(drop));
    row!(ALL, all(), "CreatePolicy", Allow, |w, c| w
        .d
        .create_policy(c, "mine", None, ALLOW_ALL, None)
        .map(drop));
    row!(ALL, all(), "AssumeRole ops", Allow, |w, c| w
        .d
        .assume_role(c, assume(&role("ops")))
        .map(drop));
    row!(
        ALL,
        all(),
        "GetPolicy B's managed",
        Deny(NO_RESOURCE),
        |w, c| w.d.get_policy(c, &w.b_managed).map(drop)
    );
    const SCOPED: &str = "an allow covers only the resources it names";
    let scoped = || {
        user_with(allow(
            "iam:GetUser",
            &format!("arn:aws:iam::{A}:user/target"),
        ))
    };
    row!(SCOPED, scoped(), "GetUser target", Allow, |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));
    row!(
        SCOPED,
        scoped(),
        "GetUser other",
        Deny(NO_IDENTITY),
        |w, c| w.d.get_user(c, Some("other")).map(drop)
    );
    row!(
        SCOPED,
        scoped(),
        "DeleteUser target",
        Deny(NO_IDENTITY),
        |w, c| w.d.delete_user(c, "target")
    );
    const SELF: &str = "${aws:username} scopes an allow to the caller's own user";
    let own = || {
        user_with(allow(
            "iam:GetUser",
            &format!("arn:aws:iam::{A}:user/${{aws:username}}"),
        ))
    };
    row!(SELF, own(), "GetUser itself", Allow, |w, c| w
        .d
        .get_user(c, Some("asker"))
        .map(drop));
    row!(SELF, own(), "GetUser target", Deny(NO_IDENTITY), |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));

    // --- an explicit deny wins ---
    const DENY: &str = "an explicit deny wins over every allow";
    let no_create = || {
        user_with(all_but(
            r#"{"Effect":"Deny","Action":"iam:CreateUser","Resource":"*"}"#,
        ))
    };
    row!(
        DENY,
        no_create(),
        "CreateUser",
        Deny(EXPLICIT_IDENTITY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(DENY, no_create(), "GetUser target", Allow, |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));
    let not_target = || {
        user_with(all_but(&format!(
            r#"{{"Effect":"Deny","Action":"iam:*","Resource":"arn:aws:iam::{A}:user/target"}}"#
        )))
    };
    row!(
        DENY,
        not_target(),
        "GetUser target",
        Deny(EXPLICIT_IDENTITY),
        |w, c| w.d.get_user(c, Some("target")).map(drop)
    );
    row!(DENY, not_target(), "GetUser other", Allow, |w, c| w
        .d
        .get_user(c, Some("other"))
        .map(drop));
    row!(
        DENY,
        Actor::User {
            policy: ALLOW_ALL.into(),
            boundary: false,
            tags: &[],
            facts: None
        },
        "AssumeRole guarded (its trust policy denies the user)",
        Deny(EXPLICIT_RESOURCE),
        |w, c| w.d.assume_role(c, assume(&role("guarded"))).map(drop)
    );

    // --- a permissions boundary caps; a session policy caps ---
    const BOUNDARY: &str = "a permissions boundary caps what identity policies allow";
    let bounded = || Actor::User {
        policy: ALLOW_ALL.into(),
        boundary: true,
        tags: &[],
        facts: None,
    };
    row!(BOUNDARY, bounded(), "GetUser target", Allow, |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));
    row!(BOUNDARY, bounded(), "ListUsers", Allow, |w, c| w
        .d
        .list_users(c, None)
        .map(drop));
    row!(
        BOUNDARY,
        bounded(),
        "CreateUser",
        Deny(NO_BOUNDARY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(
        BOUNDARY,
        bounded(),
        "DeleteUserPermissionsBoundary on itself",
        Deny(NO_BOUNDARY),
        |w, c| w.d.delete_permissions_boundary(c, Taggable::User, "asker")
    );
    row!(BOUNDARY, bounded(), "AssumeRole ops", Allow, |w, c| w
        .d
        .assume_role(c, assume(&role("ops")))
        .map(drop));
    const SESSION: &str = "a session policy caps what the role's policies allow";
    let narrowed = || Actor::Session {
        role_policy: ALLOW_ALL.into(),
        session_policy: Some(allow("iam:GetUser", "*")),
    };
    row!(SESSION, narrowed(), "GetUser target", Allow, |w, c| w
        .d
        .get_user(c, Some("target"))
        .map(drop));
    row!(
        SESSION,
        narrowed(),
        "CreateUser",
        Deny(NO_SESSION),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(
        SESSION,
        Actor::Session {
            role_policy: ALLOW_ALL.into(),
            session_policy: None
        },
        "CreateUser (no session policy)",
        Allow,
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(
        SESSION,
        Actor::Session {
            role_policy: allow("kms:DescribeKey", "*"),
            session_policy: Some(ALLOW_ALL.into())
        },
        "CreateUser (a session policy grants nothing itself)",
        Deny(NO_IDENTITY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );

    // --- request-wide condition keys hold on IAM and STS too ---
    const NETWORK: &str = "aws:SourceIp and aws:SecureTransport conditions hold on IAM";
    row!(
        NETWORK,
        user_with(all_but(
            r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#
        )),
        "CreateUser from 192.0.2.10",
        Deny(EXPLICIT_IDENTITY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(
        NETWORK,
        user_with(allow_if(
            "iam:CreateUser",
            r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#
        )),
        "CreateUser from 192.0.2.10",
        Allow,
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(
        NETWORK,
        user_with(all_but(
            r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}"#
        )),
        "AssumeRole ops over plain HTTP",
        Deny(EXPLICIT_IDENTITY),
        |w, c| w.d.assume_role(c, assume(&role("ops"))).map(drop)
    );
    const TIME: &str = "aws:CurrentTime conditions hold on IAM";
    row!(
        TIME,
        user_with(allow_if(
            "iam:ListUsers",
            r#"{"DateLessThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#
        )),
        "ListUsers after the allow expired",
        Deny(NO_IDENTITY),
        |w, c| w.d.list_users(c, None).map(drop)
    );
    row!(
        TIME,
        user_with(allow_if(
            "iam:ListUsers",
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#
        )),
        "ListUsers once the allow started",
        Allow,
        |w, c| w.d.list_users(c, None).map(drop)
    );
    let late = RequestFacts {
        epoch_seconds: NOW + 86_400 * 365,
        ..facts()
    };
    row!(
        TIME,
        Actor::User {
            policy: all_but(
                r#"{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}}"#
            ),
            boundary: false,
            tags: &[],
            facts: Some(late)
        },
        "DeleteUserPolicy on its own deny, after the date",
        Deny(EXPLICIT_IDENTITY),
        |w, c| w.d.delete_inline_policy(c, Owner::User, "asker", "p")
    );
    const MFA: &str = "aws:MultiFactorAuthPresent is absent for long-term keys";
    row!(
        MFA,
        user_with(all_but(
            r#"{"Effect":"Deny","Action":"iam:CreateUser","Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}"#
        )),
        "CreateUser with a long-term key",
        Deny(EXPLICIT_IDENTITY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    row!(
        MFA,
        user_with(all_but(
            r#"{"Effect":"Deny","Action":"iam:CreateUser","Resource":"*","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"false"}}}"#
        )),
        "CreateUser with a long-term key (Bool: absent key, no match)",
        Allow,
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    const PRINCIPAL_TAG: &str = "aws:PrincipalTag conditions read the caller's tags";
    row!(
        PRINCIPAL_TAG,
        Actor::User {
            policy: allow_if(
                "iam:ListUsers",
                r#"{"StringEquals":{"aws:PrincipalTag/dept":"eng"}}"#
            ),
            boundary: false,
            tags: &[("dept", "eng")],
            facts: None
        },
        "ListUsers tagged dept=eng",
        Allow,
        |w, c| w.d.list_users(c, None).map(drop)
    );
    row!(
        PRINCIPAL_TAG,
        Actor::User {
            policy: allow_if(
                "iam:ListUsers",
                r#"{"StringEquals":{"aws:PrincipalTag/dept":"eng"}}"#
            ),
            boundary: false,
            tags: &[("dept", "ops")],
            facts: None
        },
        "ListUsers tagged dept=ops",
        Deny(NO_IDENTITY),
        |w, c| w.d.list_users(c, None).map(drop)
    );

    // --- IAM's own condition keys ---
    const REQUEST_TAG: &str = "aws:RequestTag and aws:TagKeys limit the tags a request sets";
    let blue_only = || {
        user_with(allow_if(
            "iam:CreateUser",
            r#"{"StringEquals":{"aws:RequestTag/team":"blue"}}"#,
        ))
    };
    row!(
        REQUEST_TAG,
        blue_only(),
        "CreateUser team=blue",
        Allow,
        |w, c| w
            .d
            .create_user(c, "new", None, vec![tag("team", "blue")], None)
            .map(drop)
    );
    row!(
        REQUEST_TAG,
        blue_only(),
        "CreateUser team=red",
        Deny(NO_IDENTITY),
        |w, c| w
            .d
            .create_user(c, "new", None, vec![tag("team", "red")], None)
            .map(drop)
    );
    row!(
        REQUEST_TAG,
        blue_only(),
        "CreateUser without tags",
        Deny(NO_IDENTITY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );
    let team_key_only = || {
        user_with(allow_if(
            "iam:TagUser",
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}"#,
        ))
    };
    row!(
        REQUEST_TAG,
        team_key_only(),
        "TagUser itself team=x",
        Allow,
        |w, c| w.d.tag(c, Taggable::User, "asker", vec![tag("team", "x")])
    );
    row!(
        REQUEST_TAG,
        team_key_only(),
        "TagUser itself admin=true",
        Deny(NO_IDENTITY),
        |w, c| w
            .d
            .tag(c, Taggable::User, "asker", vec![tag("admin", "true")])
    );
    const RESOURCE_TAG: &str = "aws:ResourceTag conditions read the target user's tags";
    let blue_team = || {
        user_with(allow_if(
            "iam:*",
            r#"{"StringEquals":{"aws:ResourceTag/team":"blue"}}"#,
        ))
    };
    row!(
        RESOURCE_TAG,
        blue_team(),
        "PutUserPolicy target (team=blue)",
        Allow,
        |w, c| w
            .d
            .put_inline_policy(c, Owner::User, "target", "p", ALLOW_ALL)
    );
    row!(
        RESOURCE_TAG,
        blue_team(),
        "PutUserPolicy other (team=red)",
        Deny(NO_IDENTITY),
        |w, c| w
            .d
            .put_inline_policy(c, Owner::User, "other", "p", ALLOW_ALL)
    );
    const POLICY_ARN: &str = "iam:PolicyARN limits which policies may be attached";
    row!(
        POLICY_ARN,
        user_with(allow_if(
            "iam:AttachUserPolicy",
            &format!(r#"{{"ArnEquals":{{"iam:PolicyARN":"arn:aws:iam::{A}:policy/managed"}}}}"#)
        )),
        "AttachUserPolicy managed",
        Allow,
        |w, c| w.d.attach_policy(c, Owner::User, "target", &w.managed)
    );
    row!(
        POLICY_ARN,
        user_with(allow_if(
            "iam:AttachUserPolicy",
            &format!(r#"{{"ArnEquals":{{"iam:PolicyARN":"arn:aws:iam::{A}:policy/managed"}}}}"#)
        )),
        "AttachUserPolicy bound",
        Deny(NO_IDENTITY),
        |w, c| w.d.attach_policy(c, Owner::User, "target", &w.bound)
    );
    const BOUNDARY_KEY: &str =
        "iam:PermissionsBoundary makes a boundary a condition of creating users";
    let must_bound = || {
        user_with(allow_if(
            "iam:CreateUser",
            &format!(
                r#"{{"StringEquals":{{"iam:PermissionsBoundary":"arn:aws:iam::{A}:policy/bound"}}}}"#
            ),
        ))
    };
    row!(
        BOUNDARY_KEY,
        must_bound(),
        "CreateUser with the boundary",
        Allow,
        |w, c| w
            .d
            .create_user(c, "new", None, Vec::new(), Some(&w.bound))
            .map(drop)
    );
    row!(
        BOUNDARY_KEY,
        must_bound(),
        "CreateUser without a boundary",
        Deny(NO_IDENTITY),
        |w, c| w.d.create_user(c, "new", None, Vec::new(), None).map(drop)
    );

    // --- STS: the trust policy is the role's resource policy ---
    const TRUST: &str = "a trust policy naming the user admits it without an identity policy";
    row!(TRUST, none(), "AssumeRole direct", Allow, |w, c| w
        .d
        .assume_role(c, assume(&role("direct")))
        .map(drop));
    const CROSS: &str =
        "across accounts both the trust policy and the caller's identity policy must allow";
    row!(
        CROSS,
        Actor::UserOfB(allow("sts:AssumeRole", "*")),
        "B's user AssumeRole partner",
        Allow,
        |w, c| w.d.assume_role(c, assume(&role("partner"))).map(drop)
    );
    row!(
        CROSS,
        Actor::UserOfB(allow("kms:DescribeKey", "*")),
        "B's user without an identity policy AssumeRole partner",
        Deny(NO_IDENTITY),
        |w, c| w.d.assume_role(c, assume(&role("partner"))).map(drop)
    );
    row!(
        CROSS,
        Actor::UserOfB(ALLOW_ALL.into()),
        "B's user AssumeRole ops (trusts only A)",
        Deny(NO_RESOURCE),
        |w, c| w.d.assume_role(c, assume(&role("ops"))).map(drop)
    );
    row!(
        CROSS,
        user_with(ALLOW_ALL.into()),
        "A's user AssumeRole partner (trusts only B)",
        Deny(NO_RESOURCE),
        |w, c| w.d.assume_role(c, assume(&role("partner"))).map(drop)
    );
    const EXTERNAL_ID: &str = "sts:ExternalId conditions of a trust policy";
    row!(
        EXTERNAL_ID,
        user_with(ALLOW_ALL.into()),
        "AssumeRole vendor with the ExternalId",
        Allow,
        |w, c| w
            .d
            .assume_role(
                c,
                AssumeRoleInput {
                    external_id: Some("s3cret"),
                    ..assume(&role("vendor"))
                }
            )
            .map(drop)
    );
    row!(
        EXTERNAL_ID,
        user_with(ALLOW_ALL.into()),
        "AssumeRole vendor without it",
        Deny(NO_RESOURCE),
        |w, c| w.d.assume_role(c, assume(&role("vendor"))).map(drop)
    );
    row!(
        EXTERNAL_ID,
        user_with(ALLOW_ALL.into()),
        "AssumeRole vendor with another",
        Deny(NO_RESOURCE),
        |w, c| w
            .d
            .assume_role(
                c,
                AssumeRoleInput {
                    external_id: Some("guess"),
                    ..assume(&role("vendor"))
                }
            )
            .map(drop)
    );
    rows
}

#[test]
fn iam_and_sts_follow_awss_authorization_rules() {
    let rows = rows();
    assert!(rows.len() >= 70, "{} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let w = world();
        let caller = caller_for(&w, &row.actor);
        let result = (row.run)(&w, &caller);
        let ok = match (&row.expect, &result) {
            (Expect::Allow, Ok(())) => true,
            (Expect::Deny(reason), Err(IamError::AccessDenied(m))) => {
                m.starts_with(&format!(
                    "User: {} is not authorized to perform: ",
                    caller.authz.arn
                )) && m.contains(reason)
            }
            (Expect::NoSuchEntity, Err(IamError::NoSuchEntity(_))) => true,
            (Expect::Refused(want), Err(IamError::AccessDenied(m))) => m == want,
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{} — {}: expected {:?}, got {:?}",
                row.rule, row.request, row.expect, result
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// The table's users act as Principal::User; a sanity check that the
/// actor built is who the row says.
#[test]
fn the_tables_actors_are_who_they_say() {
    let w = world();
    let u = caller_for(&w, &user_with(ALLOW_ALL.into()));
    assert!(matches!(&u.principal, Principal::User { name, .. } if name == "asker"));
    let s = caller_for(
        &w,
        &Actor::Session {
            role_policy: ALLOW_ALL.into(),
            session_policy: None,
        },
    );
    assert!(matches!(&s.principal, Principal::AssumedRole { .. }));
}
