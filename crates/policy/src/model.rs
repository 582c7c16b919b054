//! The parsed policy document.
//!
//! A [`Policy`] is immutable, owns all its data (so it is `Send + Sync + Clone` and can be
//! cached behind an `Arc`), and carries compiled matchers next to the text they came from.
//! Equality compares the text: two policies are equal when they would serialise the same.

mod serialize;

use crate::condition::Condition;
use crate::matching::arn::ArnPattern;
use crate::matching::glob::Glob;
use crate::variables::Template;
use ferrokms_types::AccountId;
use std::fmt;

/// The policy language version. It matters for one thing: policy variables are recognised
/// only in `2012-10-17` documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// `2012-10-17`, the current language (policy variables).
    V2012_10_17,
    /// `2008-10-17`, the older language (no policy variables).
    V2008_10_17,
}

impl Version {
    /// The version as policies write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V2012_10_17 => "2012-10-17",
            Version::V2008_10_17 => "2008-10-17",
        }
    }
}

/// How a one-or-many element was written, kept so re-serialisation reproduces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Form {
    /// A single string.
    Single,
    /// An array of strings.
    Array,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub(crate) version: Option<Version>,
    pub(crate) id: Option<String>,
    pub(crate) statements: Vec<Statement>,
    pub(crate) statement_form: Form,
    /// See [`Policy::referenced_context_keys`]; computed once at parse time.
    pub(crate) referenced_keys: Vec<String>,
}

impl Policy {
    /// Every request-context key the policy can read, lowercased and
    /// deduplicated: condition keys and policy-variable names. Keys outside
    /// this set cannot change any decision of this policy, so a caller may
    /// build only these (KMS does, to keep its hot path cheap).
    pub fn referenced_context_keys(&self) -> &[String] {
        &self.referenced_keys
    }

    pub(crate) fn collect_referenced_keys(&self) -> Vec<String> {
        use crate::condition::{Compiled, Text};
        let mut out: Vec<String> = Vec::new();
        let mut add = |k: &str| {
            if !out.iter().any(|o| o == k) {
                out.push(k.to_string());
            }
        };
        for st in &self.statements {
            if let Some(r) = &st.resource {
                for p in &r.patterns {
                    if let ResourceMatcher::Dynamic(t) = &p.matcher {
                        t.variable_keys().for_each(&mut add);
                    }
                }
            }
            let Some(cond) = &st.condition else { continue };
            for block in cond.blocks() {
                for entry in block.entries() {
                    add(&entry.key.lower);
                    for v in &entry.values {
                        let template = match &v.compiled {
                            Compiled::Exact(Text::Dynamic(t))
                            | Compiled::IgnoreCase(Text::Dynamic(t))
                            | Compiled::Bool(Text::Dynamic(t)) => Some(t),
                            Compiled::Like(Text::Dynamic(t)) => Some(t),
                            Compiled::Arn(Text::Dynamic(t)) => Some(t),
                            _ => None,
                        };
                        if let Some(t) = template {
                            t.variable_keys().for_each(&mut add);
                        }
                    }
                }
            }
        }
        out
    }

    /// `None` when the document has no `Version` element (treated like `2008-10-17`).
    pub fn version(&self) -> Option<Version> {
        self.version
    }
    /// The document's `Id` element, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }
    /// Whether `${...}` is interpreted.
    pub fn variables_enabled(&self) -> bool {
        self.version == Some(Version::V2012_10_17)
    }
    /// The document as compact policy JSON.
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    /// The document as indented policy JSON.
    pub fn to_json_string_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The statement allows what it covers.
    Allow,
    /// The statement denies what it covers, whatever else allows it.
    Deny,
}

impl Effect {
    /// `Allow` or `Deny`, as policies write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One statement. `Action`, `Resource` and `Principal` are optional here because KMS accepts
/// statements without them (they then never match); [`crate::ParseOptions`] decides whether
/// their absence is an error.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: Effect,
    pub(crate) principal: Option<PrincipalElement>,
    pub(crate) action: Option<ActionElement>,
    pub(crate) resource: Option<ResourceElement>,
    pub(crate) condition: Option<Condition>,
}

impl Statement {
    /// The statement's `Sid`, if any.
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }
    /// Whether the statement allows or denies.
    pub fn effect(&self) -> Effect {
        self.effect
    }
    /// `Principal` or `NotPrincipal` (see [`PrincipalElement::negated`]).
    pub fn principal(&self) -> Option<&PrincipalElement> {
        self.principal.as_ref()
    }
    /// `Action` or `NotAction`.
    pub fn action(&self) -> Option<&ActionElement> {
        self.action.as_ref()
    }
    /// `Resource` or `NotResource`.
    pub fn resource(&self) -> Option<&ResourceElement> {
        self.resource.as_ref()
    }
    /// The `Condition` element, if any.
    pub fn condition(&self) -> Option<&Condition> {
        self.condition.as_ref()
    }
}

/// `Action` (negated = false) or `NotAction` (negated = true).
#[derive(Debug, Clone, PartialEq)]
pub struct ActionElement {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<ActionPattern>,
    pub(crate) form: Form,
}

impl ActionElement {
    /// `NotAction` rather than `Action`.
    pub fn negated(&self) -> bool {
        self.negated
    }
    /// The action patterns (`kms:Encrypt`, `kms:*`).
    pub fn patterns(&self) -> &[ActionPattern] {
        &self.patterns
    }
}

/// An action pattern such as `kms:Get*`, matched case-insensitively.
#[derive(Debug, Clone)]
pub struct ActionPattern {
    pub(crate) text: String,
    /// Compiled from the lowercased text.
    pub(crate) glob: Glob<'static>,
}

impl PartialEq for ActionPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl ActionPattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `Resource` (negated = false) or `NotResource` (negated = true).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceElement {
    pub(crate) negated: bool,
    pub(crate) patterns: Vec<ResourcePattern>,
    pub(crate) form: Form,
}

impl ResourceElement {
    /// `NotResource` rather than `Resource`.
    pub fn negated(&self) -> bool {
        self.negated
    }
    /// The resource patterns (ARNs, possibly with wildcards).
    pub fn patterns(&self) -> &[ResourcePattern] {
        &self.patterns
    }
}

/// A resource pattern: `*` or an ARN with wildcards and (2012-10-17 only) policy variables.
#[derive(Debug, Clone)]
pub struct ResourcePattern {
    pub(crate) text: String,
    pub(crate) matcher: ResourceMatcher,
}

#[derive(Debug, Clone)]
pub(crate) enum ResourceMatcher {
    Static(ArnPattern<'static>),
    Dynamic(Template),
}

impl PartialEq for ResourcePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl ResourcePattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `Principal` (negated = false) or `NotPrincipal` (negated = true).
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalElement {
    pub(crate) negated: bool,
    pub(crate) spec: PrincipalSpec,
}

impl PrincipalElement {
    /// `NotPrincipal` rather than `Principal`.
    pub fn negated(&self) -> bool {
        self.negated
    }
    /// Which principals the element names.
    pub fn spec(&self) -> &PrincipalSpec {
        &self.spec
    }
}

/// `"*"` or a map of principal types to values.
#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalSpec {
    /// The bare string `"*"`: everyone, including anonymous callers.
    Wildcard,
    /// A map of principal types to values (`{"AWS": [...], "Service": ...}`).
    Typed(Vec<PrincipalEntry>),
}

/// The principal types of the `Principal` map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalType {
    /// `"AWS"`: accounts, users, roles, sessions.
    Aws,
    /// `"Service"`: AWS service principals (`ec2.amazonaws.com`).
    Service,
    /// `"Federated"`: identity providers of web-identity and SAML sessions.
    Federated,
    /// `"CanonicalUser"`: S3 canonical user ids.
    CanonicalUser,
}

impl PrincipalType {
    /// The type's key in the principal map.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Aws => "AWS",
            PrincipalType::Service => "Service",
            PrincipalType::Federated => "Federated",
            PrincipalType::CanonicalUser => "CanonicalUser",
        }
    }
}

/// One `"AWS": [...]` (etc.) entry of a principal map.
#[derive(Debug, Clone, PartialEq)]
pub struct PrincipalEntry {
    pub(crate) kind: PrincipalType,
    pub(crate) values: Vec<PrincipalValue>,
    pub(crate) form: Form,
}

impl PrincipalEntry {
    /// The principal type of the entry.
    pub fn kind(&self) -> PrincipalType {
        self.kind
    }
    /// The values listed under it.
    pub fn values(&self) -> &[PrincipalValue] {
        &self.values
    }
}

/// A principal value as written plus what it identifies.
#[derive(Debug, Clone)]
pub struct PrincipalValue {
    pub(crate) text: String,
    pub(crate) id: PrincipalId,
}

impl PartialEq for PrincipalValue {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl PrincipalValue {
    /// The value as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// What the value identifies.
    pub fn id(&self) -> &PrincipalId {
        &self.id
    }
}

/// What a principal value identifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalId {
    /// `{"AWS": "*"}`: everyone.
    Everyone,
    /// A 12-digit account ID or `arn:PARTITION:iam::ACCT:root`: every principal of the account.
    Account(AccountId),
    /// `arn:PARTITION:iam::ACCT:user/PATH/NAME`.
    User(String),
    /// `arn:PARTITION:iam::ACCT:role/PATH/NAME`: every session of that role.
    Role {
        /// The role ARN as written.
        arn: String,
        /// The role's account.
        account: AccountId,
        /// The role's name, without its path.
        name: String,
    },
    /// `arn:PARTITION:sts::ACCT:assumed-role/ROLE/SESSION`: that session only.
    AssumedRoleSession(String),
    /// `arn:PARTITION:sts::ACCT:federated-user/NAME`.
    FederatedUser(String),
    /// A unique ID (`AIDA...`, `AROA...`), what IAM shows after the named entity was deleted.
    UniqueId(String),
    /// `{"Service": "ec2.amazonaws.com"}`.
    Service(String),
    /// `{"Federated": "cognito-identity.amazonaws.com"}` or a SAML/OIDC provider ARN.
    Federated(String),
    /// `{"CanonicalUser": "..."}`.
    CanonicalUser(String),
}
