//! AWS's KMS authorization rules as one table, run in-process against the
//! decision function through Kms's public operations.
//!
//! Each row names the rule it checks, states the key policy, the caller
//! (with its identity policies, permissions boundary, session policy and
//! request facts), an optional grant, and one operation; the test asserts
//! allow or deny and, for a deny, AWS's AccessDenied text. The same rules
//! run end to end through boto3 in tests/e2e/test_kms_authz_matrix.py and
//! test_kms_authz.py; this table is their in-process twin, fast enough to
//! run on every `cargo test`.
//!
//! Placeholders in policy texts: `{ACCT}` (the key's account), `{OTHER}`
//! (an external account), `{THIRD}` (a third account), `{USER}`, `{ROLE}`,
//! `{SESSION}`, `{ADMIN}` (principals of `{ACCT}`), `{OTHER_USER}`,
//! `{OTHER_ROLE}`, `{OTHER_SESSION}` (principals of `{OTHER}`).
//!
//! About 840 lines, nearly all of them rows: the table is one file so that
//! every rule is found by its name in one place.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use ferrokms_authz::RequestFacts;
use ferrokms_kms::api::{
    CreateKeyRequest, DescribeKeyRequest, EnableKeyRequest, EncryptRequest, GenerateDataKeyRequest,
    GenerateRandomRequest, GetKeyPolicyRequest, ListAliasesRequest, ListKeysRequest,
};
use ferrokms_kms::crypto::EncryptionContext;
use ferrokms_kms::grants::CreateGrantRequest;
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::PolicyKind;
use ferrokms_testkit::kms::{
    blob, create_key, explicit_deny, kms, no_allow, principal, root, with_facts, ACCT, OTHER,
};
use serde_json::{json, Value};

const THIRD: &str = "555566667777";

// --- the parts of a row ----------------------------------------------------

/// Who calls.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// The root user of the key's account.
    Root,
    /// IAM user `alice` of the key's account.
    User,
    /// Session `s1` of role `app` of the key's account.
    Session,
    /// The root user of the external account.
    OtherRoot,
    /// IAM user `bob` of the external account.
    OtherUser,
    /// Session `s1` of role `ext` of the external account.
    OtherSession,
    /// The root user of a third account.
    ThirdRoot,
}

/// The operation the caller attempts.
#[derive(Clone, Copy, Debug)]
enum Op {
    Encrypt,
    DescribeKey,
    GenerateDataKey,
    GetKeyPolicy,
    EnableKey,
    CreateKey,
    ListKeys,
    ListAliases,
    GenerateRandom,
}

impl Op {
    fn action(self) -> &'static str {
        match self {
            Op::Encrypt => "Encrypt",
            Op::DescribeKey => "DescribeKey",
            Op::GenerateDataKey => "GenerateDataKey",
            Op::GetKeyPolicy => "GetKeyPolicy",
            Op::EnableKey => "EnableKey",
            Op::CreateKey => "CreateKey",
            Op::ListKeys => "ListKeys",
            Op::ListAliases => "ListAliases",
            Op::GenerateRandom => "GenerateRandom",
        }
    }

    /// Key-less operations are authorized by identity policies alone, on
    /// resource `*`.
    fn keyless(self) -> bool {
        matches!(
            self,
            Op::CreateKey | Op::ListKeys | Op::ListAliases | Op::GenerateRandom
        )
    }
}

/// The policy kinds as AWS names them in an implicit deny ("because no
/// ... allows") and in an explicit one ("with an explicit deny in ...").
#[derive(Clone, Copy, Debug)]
enum Kind {
    KeyPolicy,
    Identity,
    Boundary,
    SessionPolicy,
}

impl Kind {
    fn no_allow(self) -> &'static str {
        match self {
            Kind::KeyPolicy => "resource-based policy",
            Kind::Identity => "identity-based policy",
            Kind::Boundary => "permissions boundary",
            Kind::SessionPolicy => "session policy",
        }
    }

    fn explicit(self) -> &'static str {
        match self {
            Kind::KeyPolicy => "a resource-based policy",
            Kind::Identity => "an identity-based policy",
            Kind::Boundary => "a permissions boundary",
            Kind::SessionPolicy => "a session policy",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Allow,
    /// AccessDenied: no policy of this kind allows.
    NoAllow(Kind),
    /// AccessDenied: an explicit deny in a policy of this kind.
    Explicit(Kind),
}

/// One rule of the table.
struct Rule {
    rule: &'static str,
    /// The key policy's statements (the key belongs to `{ACCT}`); none:
    /// AWS's default key policy.
    key_policy: Vec<Value>,
    caller: Who,
    identity: Vec<Value>,
    boundary: Vec<Value>,
    session_policy: Vec<Value>,
    /// A grant on the key to this grantee for these operations, created by
    /// `{ADMIN}` (the key policy must let it).
    grant: Option<(&'static str, &'static [&'static str])>,
    source_ip: Option<&'static str>,
    via_service: Option<&'static str>,
    context: &'static [(&'static str, &'static str)],
    op: Op,
    expect: Expect,
}

fn rule(name: &'static str) -> Rule {
    Rule {
        rule: name,
        key_policy: vec![enable_iam()],
        caller: Who::User,
        identity: vec![],
        boundary: vec![],
        session_policy: vec![],
        grant: None,
        source_ip: None,
        via_service: None,
        context: &[],
        op: Op::Encrypt,
        expect: Expect::Allow,
    }
}

impl Rule {
    fn key(mut self, statements: impl IntoIterator<Item = Value>) -> Self {
        self.key_policy = statements.into_iter().collect();
        self
    }
    fn by(mut self, who: Who) -> Self {
        self.caller = who;
        self
    }
    fn identity(mut self, statements: impl IntoIterator<Item = Value>) -> Self {
        self.identity = statements.into_iter().collect();
        self
    }
    fn boundary(mut self, statements: impl IntoIterator<Item = Value>) -> Self {
        self.boundary = statements.into_iter().collect();
        self
    }
    fn session_policy(mut self, statements: impl IntoIterator<Item = Value>) -> Self {
        self.session_policy = statements.into_iter().collect();
        self
    }
    fn grant(mut self, grantee: &'static str, ops: &'static [&'static str]) -> Self {
        self.grant = Some((grantee, ops));
        self
    }
    fn source_ip(mut self, ip: &'static str) -> Self {
        self.source_ip = Some(ip);
        self
    }
    fn via(mut self, service: &'static str) -> Self {
        self.via_service = Some(service);
        self
    }
    fn context(mut self, pairs: &'static [(&'static str, &'static str)]) -> Self {
        self.context = pairs;
        self
    }
    fn op(mut self, op: Op) -> Self {
        self.op = op;
        self
    }
    fn allows(mut self) -> Self {
        self.expect = Expect::Allow;
        self
    }
    fn no_allow(mut self, kind: Kind) -> Self {
        self.expect = Expect::NoAllow(kind);
        self
    }
    fn explicit(mut self, kind: Kind) -> Self {
        self.expect = Expect::Explicit(kind);
        self
    }
}

// --- statements --------------------------------------------------------------

/// AWS's default key policy statement: delegates to the account's identity
/// policies.
fn enable_iam() -> Value {
    json!({"Sid": "Enable IAM User Permissions", "Effect": "Allow",
           "Principal": {"AWS": "arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"})
}

/// A key policy statement; `principal` is the value of Principal.AWS, or
/// the whole Principal when it is `"*"`.
fn kp(effect: &str, principal: &str, actions: &[&str], condition: Option<Value>) -> Value {
    let principal = if principal == "*" {
        json!("*")
    } else {
        json!({"AWS": principal})
    };
    let mut st =
        json!({"Effect": effect, "Principal": principal, "Action": actions, "Resource": "*"});
    if let Some(c) = condition {
        st["Condition"] = c;
    }
    st
}

fn kp_allow(principal: &str, actions: &[&str]) -> Value {
    kp("Allow", principal, actions, None)
}

fn kp_deny(principal: &str, actions: &[&str]) -> Value {
    kp("Deny", principal, actions, None)
}

/// The key policy statement that lets `{ADMIN}` do everything (and so
/// create the row's grant).
fn admin_all() -> Value {
    kp_allow("{ADMIN}", &["kms:*"])
}

/// An identity-side statement.
fn id(effect: &str, actions: &[&str], resource: &str, condition: Option<Value>) -> Value {
    let mut st = json!({"Effect": effect, "Action": actions, "Resource": resource});
    if let Some(c) = condition {
        st["Condition"] = c;
    }
    st
}

fn allow(actions: &[&str]) -> Value {
    id("Allow", actions, "*", None)
}

fn deny(actions: &[&str]) -> Value {
    id("Deny", actions, "*", None)
}

// --- the table ---------------------------------------------------------------

use Kind::{Boundary, Identity, KeyPolicy, SessionPolicy};
use Who::{OtherRoot, OtherSession, OtherUser, Root, Session, ThirdRoot};

fn rules() -> Vec<Rule> {
    vec![
        // --- the key policy comes first: a statement naming the caller allows on its own
        rule("a key policy statement naming the user allows without any identity policy")
            .key([kp_allow("{USER}", &["kms:Encrypt"])])
            .allows(),
        rule("a key policy statement naming the user allows only the actions it lists")
            .key([kp_allow("{USER}", &["kms:Encrypt"])])
            .op(Op::DescribeKey)
            .no_allow(KeyPolicy),
        rule("a key policy statement naming the role allows every session of the role")
            .key([kp_allow("{ROLE}", &["kms:Encrypt"])])
            .by(Session)
            .allows(),
        rule("a key policy statement naming the session allows that session")
            .key([kp_allow("{SESSION}", &["kms:Encrypt"])])
            .by(Session)
            .allows(),
        rule("Principal * in the key policy allows a user of the account directly")
            .key([kp_allow("*", &["kms:Encrypt"])])
            .allows(),
        rule("a key policy naming another user allows nothing to this one, whatever its identity policies")
            .key([admin_all()])
            .identity([allow(&["kms:*"])])
            .no_allow(KeyPolicy),
        // --- identity policies count only where the key policy delegates to the account
        rule("a key policy delegating to the account lets the user's identity policy allow")
            .identity([allow(&["kms:Encrypt"])])
            .allows(),
        rule("a key policy delegating to the account allows an IAM user nothing without an identity policy")
            .no_allow(Identity),
        rule("the account as a bare account id in the key policy delegates the same way")
            .key([kp_allow("{ACCT}", &["kms:*"])])
            .identity([allow(&["kms:Encrypt"])])
            .allows(),
        rule("identity policies count for nothing when the key policy does not delegate to the account")
            .key([admin_all()])
            .by(Session)
            .identity([allow(&["kms:*"])])
            .no_allow(KeyPolicy),
        rule("delegation covers only the actions of the delegating statement")
            .key([kp_allow("arn:aws:iam::{ACCT}:root", &["kms:Encrypt"])])
            .identity([allow(&["kms:*"])])
            .op(Op::GenerateDataKey)
            .no_allow(KeyPolicy),
        rule("delegation holds under the delegating statement's conditions")
            .key([kp("Allow", "arn:aws:iam::{ACCT}:root", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:EncryptionContext:app": "billing"}})))])
            .identity([allow(&["kms:Encrypt"])])
            .context(&[("app", "billing")])
            .allows(),
        rule("delegation does not hold when the delegating statement's condition fails")
            .key([kp("Allow", "arn:aws:iam::{ACCT}:root", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:EncryptionContext:app": "billing"}})))])
            .identity([allow(&["kms:Encrypt"])])
            .context(&[("app", "other")])
            .no_allow(KeyPolicy),
        // --- the root user: only in its own account, by the key policy's delegation
        rule("the root user needs no identity policy where the key policy delegates to its account")
            .by(Root)
            .allows(),
        rule("the root user is denied when the key policy does not name its account")
            .key([admin_all()])
            .by(Root)
            .op(Op::DescribeKey)
            .no_allow(KeyPolicy),
        rule("another account's root is not the key's account root")
            .by(OtherRoot)
            .no_allow(KeyPolicy),
        // --- explicit deny wins, wherever it is
        rule("an explicit deny with Principal * in the key policy beats a statement naming the user")
            .key([kp_allow("{USER}", &["kms:*"]), kp_deny("*", &["kms:Encrypt"])])
            .explicit(KeyPolicy),
        rule("an explicit deny in the key policy leaves the other actions allowed")
            .key([kp_allow("{USER}", &["kms:*"]), kp_deny("*", &["kms:Encrypt"])])
            .op(Op::DescribeKey)
            .allows(),
        rule("an explicit deny in an identity policy beats a key policy statement naming the user")
            .key([kp_allow("{USER}", &["kms:*"])])
            .identity([deny(&["kms:Encrypt"])])
            .explicit(Identity),
        rule("an explicit deny in the key policy is reported before one in an identity policy")
            .key([enable_iam(), kp_deny("{USER}", &["kms:Encrypt"])])
            .identity([deny(&["kms:Encrypt"])])
            .explicit(KeyPolicy),
        rule("an explicit deny naming a role in the key policy applies to its sessions")
            .key([enable_iam(), kp_deny("{ROLE}", &["kms:Encrypt"])])
            .by(Session)
            .identity([allow(&["kms:*"])])
            .explicit(KeyPolicy),
        // --- permissions boundaries and session policies cap
        rule("a permissions boundary caps delegated identity permissions")
            .identity([allow(&["kms:*"])])
            .boundary([allow(&["kms:DescribeKey"])])
            .no_allow(Boundary),
        rule("a permissions boundary allows what it and the identity policy both allow")
            .identity([allow(&["kms:*"])])
            .boundary([allow(&["kms:DescribeKey"])])
            .op(Op::DescribeKey)
            .allows(),
        rule("an explicit deny in a permissions boundary")
            .identity([allow(&["kms:*"])])
            .boundary([allow(&["kms:*"]), deny(&["kms:Encrypt"])])
            .explicit(Boundary),
        rule("a permissions boundary does not cap a key policy statement naming the user")
            .key([kp_allow("{USER}", &["kms:*"])])
            .boundary([allow(&["kms:DescribeKey"])])
            .allows(),
        rule("a permissions boundary caps a key policy statement naming the role")
            .key([kp_allow("{ROLE}", &["kms:*"])])
            .by(Session)
            .boundary([allow(&["kms:DescribeKey"])])
            .no_allow(Boundary),
        rule("a session policy caps delegated identity permissions")
            .by(Session)
            .identity([allow(&["kms:*"])])
            .session_policy([allow(&["kms:DescribeKey"])])
            .no_allow(SessionPolicy),
        rule("an explicit deny in a session policy")
            .by(Session)
            .identity([allow(&["kms:*"])])
            .session_policy([allow(&["kms:*"]), deny(&["kms:Encrypt"])])
            .explicit(SessionPolicy),
        rule("a session policy caps a key policy statement naming the role")
            .key([kp_allow("{ROLE}", &["kms:*"])])
            .by(Session)
            .session_policy([allow(&["kms:DescribeKey"])])
            .no_allow(SessionPolicy),
        rule("a session policy does not cap a key policy statement naming the session itself")
            .key([kp_allow("{SESSION}", &["kms:*"])])
            .by(Session)
            .session_policy([allow(&["kms:DescribeKey"])])
            .allows(),
        // --- cross-account calls need both sides
        rule("cross-account: the key policy naming the account and the caller's identity policy allow")
            .key([enable_iam(), kp_allow("arn:aws:iam::{OTHER}:root", &["kms:Encrypt"])])
            .by(OtherUser)
            .identity([id("Allow", &["kms:Encrypt"], "arn:aws:kms:*:{ACCT}:key/*", None)])
            .allows(),
        rule("cross-account: the key policy alone is not enough for an IAM user")
            .key([enable_iam(), kp_allow("arn:aws:iam::{OTHER}:root", &["kms:Encrypt"])])
            .by(OtherUser)
            .no_allow(Identity),
        rule("cross-account: a key policy naming the external user still needs its identity policy")
            .key([enable_iam(), kp_allow("{OTHER_USER}", &["kms:Encrypt"])])
            .by(OtherUser)
            .no_allow(Identity),
        rule("cross-account: Principal * and the caller's identity policy allow")
            .key([enable_iam(), kp_allow("*", &["kms:Encrypt"])])
            .by(OtherUser)
            .identity([allow(&["kms:Encrypt"])])
            .allows(),
        rule("cross-account: the caller's identity policy alone is not enough")
            .by(OtherUser)
            .identity([allow(&["kms:Encrypt"])])
            .no_allow(KeyPolicy),
        rule("cross-account: the external account's root needs only the key policy")
            .key([enable_iam(), kp_allow("{OTHER}", &["kms:Encrypt", "kms:DescribeKey"])])
            .by(OtherRoot)
            .op(Op::DescribeKey)
            .allows(),
        rule("cross-account: a role session is allowed through its role ARN and identity policy")
            .key([enable_iam(), kp_allow("{OTHER_ROLE}", &["kms:Encrypt"])])
            .by(OtherSession)
            .identity([id("Allow", &["kms:Encrypt"], "arn:aws:kms:us-east-1:{ACCT}:key/*", None)])
            .allows(),
        rule("cross-account: delegation covers only the delegated actions")
            .key([enable_iam(), kp_allow("arn:aws:iam::{OTHER}:root", &["kms:Encrypt"])])
            .by(OtherUser)
            .identity([allow(&["kms:*"])])
            .op(Op::DescribeKey)
            .no_allow(KeyPolicy),
        rule("cross-account: an identity policy for the caller's own keys does not cover the external key")
            .key([enable_iam(), kp_allow("arn:aws:iam::{OTHER}:root", &["kms:*"])])
            .by(OtherUser)
            .identity([id("Allow", &["kms:*"], "arn:aws:kms:*:{OTHER}:key/*", None)])
            .no_allow(Identity),
        rule("cross-account: an explicit deny in the caller's identity policy wins")
            .key([enable_iam(), kp_allow("{OTHER_USER}", &["kms:*"])])
            .by(OtherUser)
            .identity([allow(&["kms:*"]), id("Deny", &["kms:Encrypt"], "arn:aws:kms:*:{ACCT}:*", None)])
            .explicit(Identity),
        rule("cross-account: a key policy deny of the external account covers its users")
            .key([enable_iam(), kp_allow("{OTHER_USER}", &["kms:*"]), kp_deny("{OTHER}", &["kms:Encrypt"])])
            .by(OtherUser)
            .identity([allow(&["kms:*"])])
            .explicit(KeyPolicy),
        rule("cross-account: the session policy caps the external role session")
            .key([enable_iam(), kp_allow("{OTHER_ROLE}", &["kms:*"])])
            .by(OtherSession)
            .identity([allow(&["kms:*"])])
            .session_policy([allow(&["kms:DescribeKey"])])
            .no_allow(SessionPolicy),
        rule("cross-account: the permissions boundary caps the external user")
            .key([enable_iam(), kp_allow("{OTHER_USER}", &["kms:*"])])
            .by(OtherUser)
            .identity([allow(&["kms:*"])])
            .boundary([allow(&["kms:DescribeKey"])])
            .no_allow(Boundary),
        rule("GetKeyPolicy is not a cross-account operation, even where the key policy allows it")
            .key([enable_iam(), kp_allow("{OTHER}", &["kms:*"])])
            .by(OtherRoot)
            .op(Op::GetKeyPolicy)
            .no_allow(KeyPolicy),
        rule("EnableKey is not a cross-account operation, even where the key policy allows it")
            .key([enable_iam(), kp_allow("{OTHER}", &["kms:*"])])
            .by(OtherRoot)
            .op(Op::EnableKey)
            .no_allow(KeyPolicy),
        rule("GenerateDataKey is a cross-account operation")
            .key([enable_iam(), kp_allow("{OTHER}", &["kms:*"])])
            .by(OtherRoot)
            .op(Op::GenerateDataKey)
            .allows(),
        // --- grants
        rule("a grant allows an external user where no policy does")
            .key([enable_iam(), admin_all()])
            .grant("{OTHER_USER}", &["Encrypt"])
            .by(OtherUser)
            .allows(),
        rule("a grant allows only the operations it lists")
            .key([enable_iam(), admin_all()])
            .grant("{OTHER_USER}", &["Encrypt"])
            .by(OtherUser)
            .op(Op::DescribeKey)
            .no_allow(KeyPolicy),
        rule("an explicit deny in the caller's identity policy beats a grant")
            .key([enable_iam(), admin_all()])
            .grant("{OTHER_USER}", &["Encrypt"])
            .by(OtherUser)
            .identity([deny(&["kms:Encrypt"])])
            .explicit(Identity),
        rule("an explicit deny in the key policy beats a grant")
            .key([admin_all(), kp_deny("*", &["kms:Encrypt"])])
            .grant("{USER}", &["Encrypt"])
            .explicit(KeyPolicy),
        rule("an explicit deny in a session policy beats a grant to the role")
            .key([admin_all()])
            .grant("{ROLE}", &["Encrypt"])
            .by(Session)
            .session_policy([allow(&["kms:*"]), deny(&["kms:Encrypt"])])
            .explicit(SessionPolicy),
        rule("a grant to the account allows nothing without the caller's identity policy")
            .key([admin_all()])
            .grant("arn:aws:iam::{ACCT}:root", &["Encrypt"])
            .no_allow(KeyPolicy),
        rule("a grant to the account allows where the caller's identity policy allows")
            .key([admin_all()])
            .grant("arn:aws:iam::{ACCT}:root", &["Encrypt"])
            .identity([allow(&["kms:Encrypt"])])
            .allows(),
        rule("a grant to the external account allows its root")
            .grant("arn:aws:iam::{OTHER}:root", &["Encrypt"])
            .key([enable_iam(), admin_all()])
            .by(OtherRoot)
            .allows(),
        rule("a grant to the caller's role allows its sessions without an identity policy")
            .key([admin_all()])
            .grant("{ROLE}", &["Encrypt"])
            .by(Session)
            .allows(),
        rule("a grant naming the session itself is not capped by the session policy")
            .key([admin_all()])
            .grant("{SESSION}", &["Encrypt"])
            .by(Session)
            .session_policy([allow(&["kms:DescribeKey"])])
            .allows(),
        rule("a grant naming the user itself is not capped by its permissions boundary")
            .key([admin_all()])
            .grant("{USER}", &["Encrypt"])
            .boundary([allow(&["kms:DescribeKey"])])
            .allows(),
        // --- conditions
        rule("kms:CallerAccount with Principal * admits the named account")
            .key([enable_iam(), kp("Allow", "*", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:CallerAccount": "{OTHER}"}})))])
            .by(OtherUser)
            .identity([allow(&["kms:Encrypt"])])
            .allows(),
        rule("kms:CallerAccount with Principal * admits no other account")
            .key([enable_iam(), kp("Allow", "*", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:CallerAccount": "{OTHER}"}})))])
            .by(ThirdRoot)
            .no_allow(KeyPolicy),
        rule("a deny of every other account by kms:CallerAccount beats a statement naming the account")
            .key([enable_iam(), kp_allow("{OTHER}", &["kms:*"]), kp("Deny", "*", &["kms:*"],
                     Some(json!({"StringNotEquals": {"kms:CallerAccount": "{ACCT}"}})))])
            .by(OtherRoot)
            .explicit(KeyPolicy),
        rule("a deny of every other account by kms:CallerAccount leaves the key's account alone")
            .key([enable_iam(), kp_allow("{OTHER}", &["kms:*"]), kp("Deny", "*", &["kms:*"],
                     Some(json!({"StringNotEquals": {"kms:CallerAccount": "{ACCT}"}})))])
            .by(Root)
            .allows(),
        rule("kms:ViaService is absent from a direct call")
            .key([enable_iam(), kp("Allow", "{USER}", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})))])
            .no_allow(Identity),
        rule("kms:ViaService matches a call made through that service")
            .key([enable_iam(), kp("Allow", "{USER}", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})))])
            .via("ec2.us-east-1.amazonaws.com")
            .allows(),
        rule("kms:ViaService naming another service does not match")
            .key([enable_iam(), kp("Allow", "{USER}", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})))])
            .via("rds.us-east-1.amazonaws.com")
            .no_allow(Identity),
        rule("aws:SourceIp in an identity policy: a caller inside the range is allowed")
            .identity([id("Allow", &["kms:Encrypt"], "*",
                          Some(json!({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})))])
            .source_ip("127.0.0.1")
            .allows(),
        rule("aws:SourceIp in an identity policy: a caller outside the range is not")
            .identity([id("Allow", &["kms:Encrypt"], "*",
                          Some(json!({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})))])
            .source_ip("127.0.0.1")
            .no_allow(Identity),
        rule("aws:SourceIp: an identity deny outside a range")
            .identity([allow(&["kms:*"]), id("Deny", &["kms:*"], "*",
                          Some(json!({"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})))])
            .source_ip("127.0.0.1")
            .explicit(Identity),
        rule("aws:SourceIp in a key policy statement naming the user")
            .key([kp("Allow", "{USER}", &["kms:Encrypt"],
                     Some(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))])
            .source_ip("10.1.2.3")
            .allows(),
        rule("kms:EncryptionContext in a key policy statement must hold")
            .key([kp("Allow", "{USER}", &["kms:Encrypt"],
                     Some(json!({"StringEquals": {"kms:EncryptionContext:tenant": "a"}})))])
            .context(&[("tenant", "b")])
            .no_allow(KeyPolicy),
        // --- key-less operations: identity policies only, on resource *
        rule("CreateKey is authorized by an identity policy")
            .key([])
            .identity([allow(&["kms:CreateKey"])])
            .op(Op::CreateKey)
            .allows(),
        rule("CreateKey without an identity policy is denied on resource *")
            .key([])
            .op(Op::CreateKey)
            .no_allow(Identity),
        rule("the root user creates keys without an identity policy")
            .key([])
            .by(Root)
            .op(Op::CreateKey)
            .allows(),
        rule("a permissions boundary caps CreateKey")
            .key([])
            .identity([allow(&["kms:*"])])
            .boundary([allow(&["kms:ListKeys"])])
            .op(Op::CreateKey)
            .no_allow(Boundary),
        rule("kms:CallerAccount in an identity policy on CreateKey")
            .key([])
            .identity([id("Allow", &["kms:CreateKey"], "*",
                          Some(json!({"StringEquals": {"kms:CallerAccount": "{ACCT}"}})))])
            .op(Op::CreateKey)
            .allows(),
        rule("ListKeys is identity-only: a key policy naming the user does not allow it")
            .key([kp_allow("{USER}", &["kms:*"])])
            .op(Op::ListKeys)
            .no_allow(Identity),
        rule("ListKeys is allowed by an identity policy")
            .identity([allow(&["kms:ListKeys"])])
            .op(Op::ListKeys)
            .allows(),
        rule("a session policy caps ListKeys")
            .by(Session)
            .identity([allow(&["kms:*"])])
            .session_policy([allow(&["kms:Describe*"])])
            .op(Op::ListKeys)
            .no_allow(SessionPolicy),
        rule("an explicit deny in a session policy denies ListKeys")
            .by(Session)
            .identity([allow(&["kms:*"])])
            .session_policy([allow(&["kms:*"]), deny(&["kms:List*"])])
            .op(Op::ListKeys)
            .explicit(SessionPolicy),
        rule("a key property condition is never met by a key-less operation")
            .identity([id("Allow", &["kms:ListKeys"], "*",
                          Some(json!({"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}})))])
            .op(Op::ListKeys)
            .no_allow(Identity),
        rule("ListAliases is identity-only")
            .key([kp_allow("{USER}", &["kms:*"])])
            .op(Op::ListAliases)
            .no_allow(Identity),
        rule("GenerateRandom honours aws:SourceIp in the identity policy")
            .identity([id("Allow", &["kms:GenerateRandom"], "*",
                          Some(json!({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})))])
            .source_ip("127.0.0.1")
            .op(Op::GenerateRandom)
            .allows(),
        rule("GenerateRandom outside the identity policy's source range is denied")
            .identity([id("Allow", &["kms:GenerateRandom"], "*",
                          Some(json!({"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}})))])
            .source_ip("127.0.0.1")
            .op(Op::GenerateRandom)
            .no_allow(Identity),
    ]
}

// --- running a row -------------------------------------------------------------

/// The placeholders and what they stand for.
fn names() -> Vec<(&'static str, String)> {
    vec![
        ("{ACCT}", ACCT.into()),
        ("{OTHER}", OTHER.into()),
        ("{THIRD}", THIRD.into()),
        ("{USER}", format!("arn:aws:iam::{ACCT}:user/alice")),
        ("{ADMIN}", format!("arn:aws:iam::{ACCT}:user/admin")),
        ("{ROLE}", format!("arn:aws:iam::{ACCT}:role/app")),
        (
            "{SESSION}",
            format!("arn:aws:sts::{ACCT}:assumed-role/app/s1"),
        ),
        ("{OTHER_USER}", format!("arn:aws:iam::{OTHER}:user/bob")),
        ("{OTHER_ROLE}", format!("arn:aws:iam::{OTHER}:role/ext")),
        (
            "{OTHER_SESSION}",
            format!("arn:aws:sts::{OTHER}:assumed-role/ext/s1"),
        ),
    ]
}

fn fill(text: &str) -> String {
    // Longest first: {OTHER_USER} before {OTHER}.
    let mut names = names();
    names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    names
        .iter()
        .fold(text.to_string(), |t, (k, v)| t.replace(k, v))
}

fn document(statements: &[Value]) -> String {
    fill(&json!({"Version": "2012-10-17", "Statement": statements}).to_string())
}

fn caller_of(r: &Rule) -> Caller {
    let mut policies = vec![];
    for (kind, statements) in [
        (PolicyKind::IdentityBased, &r.identity),
        (PolicyKind::PermissionsBoundary, &r.boundary),
        (PolicyKind::SessionPolicy, &r.session_policy),
    ] {
        if !statements.is_empty() {
            policies.push((kind, document(statements)));
        }
    }
    let arn = |name: &str| fill(name);
    let caller = match r.caller {
        Who::Root => root(ACCT),
        Who::OtherRoot => root(OTHER),
        Who::ThirdRoot => root(THIRD),
        Who::User => principal(&arn("{USER}"), None, &policies),
        Who::OtherUser => principal(&arn("{OTHER_USER}"), None, &policies),
        Who::Session => principal(&arn("{SESSION}"), Some(&arn("{ROLE}")), &policies),
        Who::OtherSession => principal(
            &arn("{OTHER_SESSION}"),
            Some(&arn("{OTHER_ROLE}")),
            &policies,
        ),
    };
    if matches!(r.caller, Who::Root | Who::OtherRoot | Who::ThirdRoot) {
        assert!(
            policies.is_empty(),
            "{}: a root user has no policies",
            r.rule
        );
    }
    if r.source_ip.is_none() && r.via_service.is_none() {
        return caller;
    }
    with_facts(
        &caller,
        RequestFacts {
            source_ip: r.source_ip.map(|ip| ip.parse().unwrap()),
            secure_transport: false,
            epoch_seconds: 1_800_000_000,
            via_service: r.via_service.map(String::from),
            service_call: None,
        },
    )
}

/// Runs the row's operation; the resource it names (for AWS's message).
fn run(kms: &Kms, r: &Rule, caller: &Caller, key: &str) -> (String, Result<(), KmsError>) {
    let context = (!r.context.is_empty()).then(|| {
        EncryptionContext(
            r.context
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    });
    let key_id = key.to_string();
    let outcome = match r.op {
        Op::Encrypt => kms
            .encrypt(
                caller,
                EncryptRequest {
                    key_id,
                    plaintext: blob(b"x"),
                    encryption_context: context,
                    ..Default::default()
                },
            )
            .map(drop),
        Op::DescribeKey => kms
            .describe_key(
                caller,
                DescribeKeyRequest {
                    key_id,
                    ..Default::default()
                },
            )
            .map(drop),
        Op::GenerateDataKey => kms
            .generate_data_key(
                caller,
                GenerateDataKeyRequest {
                    key_id,
                    number_of_bytes: Some(32),
                    encryption_context: context,
                    ..Default::default()
                },
            )
            .map(drop),
        Op::GetKeyPolicy => kms
            .get_key_policy(
                caller,
                GetKeyPolicyRequest {
                    key_id,
                    policy_name: Some("default".into()),
                },
            )
            .map(drop),
        Op::EnableKey => kms
            .enable_key(
                caller,
                EnableKeyRequest {
                    key_id,
                    ..Default::default()
                },
            )
            .map(drop),
        Op::CreateKey => kms
            .create_key(
                caller,
                CreateKeyRequest {
                    policy: Some(
                        json!({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Principal": {"AWS": caller.arn}, "Action": "kms:*", "Resource": "*"}
                        ]})
                        .to_string(),
                    ),
                    ..Default::default()
                },
            )
            .map(drop),
        Op::ListKeys => kms
            .list_keys(caller, ListKeysRequest::default())
            .map(drop),
        Op::ListAliases => kms
            .list_aliases(caller, ListAliasesRequest::default())
            .map(drop),
        Op::GenerateRandom => kms
            .generate_random(
                caller,
                GenerateRandomRequest {
                    number_of_bytes: Some(4),
                    ..Default::default()
                },
            )
            .map(drop),
    };
    let resource = if r.op.keyless() { "*" } else { key };
    (resource.to_string(), outcome)
}

/// Checks one row; `Err` says how it went wrong.
fn check(r: &Rule) -> Result<(), String> {
    let kms = kms();
    let key = if r.key_policy.is_empty() {
        create_key(&kms, None)
    } else {
        create_key(&kms, Some(document(&r.key_policy)))
    };
    if let Some((grantee, ops)) = r.grant {
        let admin = principal(&fill("{ADMIN}"), None, &[]);
        kms.create_grant(
            &admin,
            CreateGrantRequest {
                key_id: key.clone(),
                grantee_principal: Some(fill(grantee)),
                operations: ops.iter().map(ToString::to_string).collect(),
                ..Default::default()
            },
        )
        .map_err(|e| format!("the grant could not be created: {e:?}"))?;
    }
    let caller = caller_of(r);
    let (resource, outcome) = run(&kms, r, &caller, &key);
    let action = r.op.action();
    let want = match r.expect {
        Expect::Allow => None,
        Expect::NoAllow(kind) => Some(no_allow(&caller, action, &resource, kind.no_allow())),
        Expect::Explicit(kind) => Some(explicit_deny(&caller, action, &resource, kind.explicit())),
    };
    match (want, outcome) {
        (None, Ok(())) => Ok(()),
        (Some(want), Err(KmsError::AccessDenied(got))) if got == want => Ok(()),
        (Some(want), Err(KmsError::AccessDenied(got))) => Err(format!(
            "denied with\n      {got}\n    expected\n      {want}"
        )),
        (None, Err(e)) => Err(format!("expected allowed, got {e:?}")),
        (Some(want), Ok(())) => Err(format!("expected denied ({want}), got allowed")),
        (Some(_), Err(e)) => Err(format!("expected AccessDenied, got {e:?}")),
    }
}

#[test]
fn kms_authorization_rules() {
    let rules = rules();
    let mut seen = std::collections::BTreeSet::new();
    let failures: Vec<String> = rules
        .iter()
        .inspect(|r| assert!(seen.insert(r.rule), "rule named twice: {}", r.rule))
        .filter_map(|r| check(r).err().map(|e| format!("  {}:\n    {e}", r.rule)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rules failed:\n{}",
        failures.len(),
        rules.len(),
        failures.join("\n")
    );
}

/// The table keeps its breadth: every part of AWS's rule set has rows.
#[test]
fn the_table_covers_every_kind_of_rule() {
    let rules = rules();
    assert!(rules.len() >= 70, "{} rules", rules.len());
    let has = |f: &dyn Fn(&Rule) -> bool| rules.iter().any(f);
    assert!(has(&|r| r.grant.is_some()));
    assert!(has(&|r| !r.boundary.is_empty()));
    assert!(has(&|r| !r.session_policy.is_empty()));
    assert!(has(&|r| r.source_ip.is_some()));
    assert!(has(&|r| r.via_service.is_some()));
    assert!(has(&|r| r.op.keyless()));
    assert!(has(&|r| matches!(
        r.caller,
        OtherUser | OtherSession | OtherRoot
    )));
    assert!(has(&|r| matches!(r.expect, Expect::Explicit(_))));
}
