//! The stored shapes of IAM entities.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_policy::{ParseOptions, Policy, PolicyKind};
use ferrokms_types::AccountId;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::IamError;

/// A policy document kept as given (APIs return it verbatim) and parsed
/// once (evaluation never re-parses).
#[derive(Clone)]
pub struct PolicyDoc {
    /// The document exactly as given, returned verbatim by the Get* APIs.
    pub text: String,
    /// Which grammar it was parsed with.
    pub kind: DocKind,
    /// The parsed document that evaluation uses.
    pub parsed: Arc<Policy>,
}

/// Which kind of IAM policy document, which decides its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocKind {
    /// Identity-based: no Principal allowed.
    Identity,
    /// A role's trust policy: a resource-based policy with a Principal.
    Trust,
}

impl PolicyDoc {
    /// A document IAM or STS is given (PutUserPolicy, CreatePolicy,
    /// CreateRole's trust policy, session policies, the bootstrap file):
    /// the grammar of its kind plus IAM's statement-id rule (Sids
    /// `[0-9A-Za-z]*`, unique), refused as MalformedPolicyDocument.
    pub fn parse(text: &str, kind: DocKind) -> Result<PolicyDoc, IamError> {
        Self::parse_with(text, kind, Self::options(kind).iam())
    }

    /// A document read back from the store: accepted by the rules in force
    /// when it was written, so data stored before a rule was added still
    /// loads (the statement-id rule is not re-applied).
    fn parse_stored(text: &str, kind: DocKind) -> Result<PolicyDoc, IamError> {
        Self::parse_with(text, kind, Self::options(kind))
    }

    fn options(kind: DocKind) -> ParseOptions {
        match kind {
            DocKind::Identity => ParseOptions::for_kind(PolicyKind::IdentityBased),
            DocKind::Trust => ParseOptions::for_trust_policy(),
        }
    }

    fn parse_with(text: &str, kind: DocKind, opts: ParseOptions) -> Result<PolicyDoc, IamError> {
        let parsed = Policy::parse(text, &opts)
            .map_err(|e| IamError::MalformedPolicyDocument(e.to_string()))?;
        Ok(PolicyDoc {
            text: text.to_string(),
            kind,
            parsed: Arc::new(parsed),
        })
    }
}

impl std::fmt::Debug for PolicyDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PolicyDoc({:?}, {} bytes)", self.kind, self.text.len())
    }
}

impl PartialEq for PolicyDoc {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text && self.kind == other.kind
    }
}

#[derive(Serialize, Deserialize)]
struct StoredDoc {
    text: String,
    kind: DocKind,
}

impl Serialize for PolicyDoc {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredDoc {
            text: self.text.clone(),
            kind: self.kind,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PolicyDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = StoredDoc::deserialize(d)?;
        PolicyDoc::parse_stored(&s.text, s.kind).map_err(serde::de::Error::custom)
    }
}

/// One IAM tag (users, roles, session tags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag key; unique per entity regardless of case.
    pub key: String,
    /// The tag value; may be empty.
    pub value: String,
}

/// An IAM user as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The account the user belongs to.
    pub account: AccountId,
    /// The user name, unique in the account regardless of case.
    pub name: String,
    /// The path, `/` or `/division/team/`; part of the ARN.
    pub path: String,
    /// The unique id (`AIDA...`), never reused.
    pub id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Inline policies by name.
    pub inline: BTreeMap<String, PolicyDoc>,
    /// Attached managed policies, by ARN.
    pub attached: Vec<String>,
    /// The user's tags (`aws:PrincipalTag/*` of its requests).
    pub tags: Vec<Tag>,
    /// ARN of the managed policy used as permissions boundary.
    #[serde(default)]
    pub boundary: Option<String>,
}

impl UserRecord {
    /// `arn:aws:iam::ACCOUNT:user/PATH/NAME`.
    pub fn arn(&self) -> String {
        self.account
            .iam_arn(&format!("user{}{}", self.path, self.name))
    }
}

/// An IAM role as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleRecord {
    /// The account the role belongs to.
    pub account: AccountId,
    /// The role name, unique in the account regardless of case.
    pub name: String,
    /// The path, `/` or `/service-role/`...; part of the ARN.
    pub path: String,
    /// The unique id (`AROA...`), never reused.
    pub id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// The trust policy: who may assume the role.
    pub trust: PolicyDoc,
    /// The description given at creation or by UpdateRole.
    pub description: String,
    /// The longest session AssumeRole may grant, in seconds.
    pub max_session_duration: u32,
    /// Inline policies by name.
    pub inline: BTreeMap<String, PolicyDoc>,
    /// Attached managed policies, by ARN.
    pub attached: Vec<String>,
    /// The role's tags (`aws:PrincipalTag/*` of its sessions).
    pub tags: Vec<Tag>,
    /// ARN of the managed policy used as permissions boundary.
    #[serde(default)]
    pub boundary: Option<String>,
}

impl RoleRecord {
    /// `arn:aws:iam::ACCOUNT:role/PATH/NAME`.
    pub fn arn(&self) -> String {
        self.account
            .iam_arn(&format!("role{}{}", self.path, self.name))
    }
}

/// An IAM group as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The account the group belongs to.
    pub account: AccountId,
    /// The group name, unique in the account regardless of case.
    pub name: String,
    /// The path; part of the ARN.
    pub path: String,
    /// The unique id (`AGPA...`), never reused.
    pub id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Inline policies by name; they apply to every member.
    pub inline: BTreeMap<String, PolicyDoc>,
    /// Attached managed policies, by ARN; they apply to every member.
    pub attached: Vec<String>,
    /// Names of member users, as created.
    pub members: Vec<String>,
}

impl GroupRecord {
    /// `arn:aws:iam::ACCOUNT:group/PATH/NAME`.
    pub fn arn(&self) -> String {
        self.account
            .iam_arn(&format!("group{}{}", self.path, self.name))
    }

    /// Whether `user` (a user name, compared regardless of case) is a member.
    pub fn has_member(&self, user: &str) -> bool {
        self.members.iter().any(|m| m.eq_ignore_ascii_case(user))
    }
}

/// One version of a managed policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    /// `v1`, `v2`...: never reused within the policy.
    pub version_id: String,
    /// The document of this version.
    pub doc: PolicyDoc,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A customer-managed policy as stored, with its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagedPolicyRecord {
    /// The account the policy belongs to.
    pub account: AccountId,
    /// The policy name, unique in the account regardless of case.
    pub name: String,
    /// The path; part of the ARN.
    pub path: String,
    /// The unique id (`ANPA...`), never reused.
    pub id: String,
    /// The description given at creation.
    pub description: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When the default version last changed, milliseconds since the Unix epoch.
    pub updated_ms: i64,
    /// Every version kept (at most five, as on AWS).
    pub versions: Vec<PolicyVersion>,
    /// The id of the version in force.
    pub default_version: String,
    /// Highest version number ever issued (ids are never reused).
    pub next_version: u32,
    /// The policy's tags (CreatePolicy, TagPolicy); none in data stored
    /// before policies kept them.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ManagedPolicyRecord {
    /// `arn:aws:iam::ACCOUNT:policy/PATH/NAME`.
    pub fn arn(&self) -> String {
        self.account
            .iam_arn(&format!("policy{}{}", self.path, self.name))
    }

    /// The document of the default version (the one evaluated).
    pub fn default_doc(&self) -> Option<&PolicyDoc> {
        self.versions
            .iter()
            .find(|v| v.version_id == self.default_version)
            .map(|v| &v.doc)
    }
}

/// An instance profile as stored: a container for at most one role (on
/// AWS, what EC2 instances assume the role through).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceProfileRecord {
    /// The account the instance profile belongs to.
    pub account: AccountId,
    /// The name, unique in the account regardless of case.
    pub name: String,
    /// The path; part of the ARN.
    pub path: String,
    /// The unique id (`AIPA...`), never reused.
    pub id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Names of the roles in the profile (at most one, as on AWS). A role
    /// in a profile cannot be deleted, so each names an existing role.
    pub roles: Vec<String>,
    /// The instance profile's tags.
    pub tags: Vec<Tag>,
}

impl InstanceProfileRecord {
    /// `arn:aws:iam::ACCOUNT:instance-profile/PATH/NAME`.
    pub fn arn(&self) -> String {
        self.account
            .iam_arn(&format!("instance-profile{}{}", self.path, self.name))
    }

    /// Whether `role` (a role name, compared regardless of case) is in the profile.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(sid: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"{sid}","Effect":"Allow","Action":"kms:*","Resource":"*"}}]}}"#
        )
    }

    fn malformed(e: IamError) -> String {
        match e {
            IamError::MalformedPolicyDocument(m) => m,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// IAM: "Statement IDs (SID) must be alpha-numeric. Check that your input
    /// satisfies the regular expression [0-9A-Za-z]*" (MalformedPolicyDocument),
    /// for identity, managed (boundary) and trust policies alike.
    #[test]
    fn iam_statement_ids_must_be_alphanumeric() {
        for ok in ["", "AllowKms", "Stmt1700000000000"] {
            assert!(
                PolicyDoc::parse(&doc(ok), DocKind::Identity).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "Enable IAM User Permissions",
            "a-b",
            "a_b",
            "\u{e9}",
            "a\\u000bb",
        ] {
            let e = PolicyDoc::parse(&doc(bad), DocKind::Identity).expect_err(bad);
            assert_eq!(
                malformed(e),
                "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
                "{bad}"
            );
        }
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Trust me","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}]}"#;
        assert!(matches!(
            PolicyDoc::parse(trust, DocKind::Trust),
            Err(IamError::MalformedPolicyDocument(_))
        ));
    }

    #[test]
    fn iam_statement_ids_must_be_unique() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"kms:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;
        assert_eq!(
            malformed(PolicyDoc::parse(text, DocKind::Identity).expect_err("dup")),
            "Statement IDs (SID) in a single policy must be unique."
        );
    }

    /// A document stored before the rule existed still loads.
    #[test]
    fn stored_documents_keep_loading_after_the_sid_rule() {
        let stored = serde_json::json!({"text": doc("Old style sid"), "kind": "Identity"});
        let loaded: PolicyDoc = serde_json::from_value(stored).expect("loads");
        assert_eq!(loaded.parsed.statements()[0].sid(), Some("Old style sid"));
    }
}
