//! ValidatePolicy: the findings of `ferrokms policy lint` (crates/kms,
//! `lint.rs`) and a few checks of Access Analyzer's own that lint lacks, in
//! Access Analyzer's shape: a finding type (ERROR, SECURITY_WARNING,
//! WARNING, SUGGESTION), an issue code (AWS's where AWS has the check; the
//! lint's own code, documented in docs/analysis.md, where it does not), a
//! learn-more link, and the locations (a path through the document and its
//! span). The document is parsed by the policy engine as the request path
//! parses it, and read a second time, only here, for the spans (`span.rs`).

use ferrokms_kms::lint::{self, LintKind};
use ferrokms_policy::{ParseOptions, Policy, PolicyError, PolicyKind};
use serde::Serialize;

use crate::span::{Node, NodeKind, PathElement, Positions, Span};

mod checks;
use checks::{global_condition_keys, pass_role, redundant_actions};

/// The `policyType` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// `IDENTITY_POLICY`.
    Identity,
    /// `RESOURCE_POLICY`.
    Resource,
    /// `SERVICE_CONTROL_POLICY`.
    ServiceControl,
    /// `RESOURCE_CONTROL_POLICY`.
    ResourceControl,
}

impl PolicyType {
    /// The model's enum values.
    pub const VALUES: &'static [&'static str] = &[
        "IDENTITY_POLICY",
        "RESOURCE_POLICY",
        "SERVICE_CONTROL_POLICY",
        "RESOURCE_CONTROL_POLICY",
    ];

    /// The value as the model spells it.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "IDENTITY_POLICY" => PolicyType::Identity,
            "RESOURCE_POLICY" => PolicyType::Resource,
            "SERVICE_CONTROL_POLICY" => PolicyType::ServiceControl,
            "RESOURCE_CONTROL_POLICY" => PolicyType::ResourceControl,
            _ => return None,
        })
    }
}

/// The `validatePolicyResourceType` values ferrokms accepts: the service
/// model's, plus `AWS::KMS::Key` (ferrokms's own: the model has no value
/// for key policies; without it a resource policy whose actions are all
/// `kms:` is read as a key policy).
pub const RESOURCE_TYPES: &[&str] = &[
    "AWS::S3::Bucket",
    "AWS::S3::AccessPoint",
    "AWS::S3::MultiRegionAccessPoint",
    "AWS::S3ObjectLambda::AccessPoint",
    "AWS::IAM::AssumeRolePolicyDocument",
    "AWS::DynamoDB::Table",
    "AWS::KMS::Key",
];

/// The model's `ValidatePolicyFindingType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FindingType {
    /// A part of the policy does not work.
    Error,
    /// The policy allows access that is overly permissive.
    SecurityWarning,
    /// The policy departs from policy-writing practice.
    Warning,
    /// A stylistic improvement that does not change access.
    Suggestion,
}

impl FindingType {
    /// The anchor prefix of AWS's policy check reference.
    fn anchor(self) -> &'static str {
        match self {
            FindingType::Error => "error",
            FindingType::SecurityWarning => "security-warning",
            FindingType::Warning => "general-warning",
            FindingType::Suggestion => "suggestion",
        }
    }
}

/// A location: a path and its span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The path through the document.
    pub path: Vec<PathElement>,
    /// Where it is.
    pub span: Span,
}

/// One finding, as the model's `ValidatePolicyFinding`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// What was found, and what to do.
    pub finding_details: String,
    /// Its impact.
    pub finding_type: FindingType,
    /// The check's code.
    pub issue_code: String,
    /// Where the check is explained.
    pub learn_more_link: String,
    /// Where in the document.
    pub locations: Vec<Location>,
}

/// The page AWS documents its checks on.
const AWS_REFERENCE: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html";
/// Where ferrokms documents the checks AWS does not have.
pub const FERROKMS_REFERENCE: &str = "ferrokms docs/analysis.md#validatepolicy-issue-codes";

/// Whose check an issue code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// AWS's policy check reference has it.
    Aws,
    /// `policy lint`'s own (no AWS check says the same).
    Ferrokms,
}

fn link(code: &str, ty: FindingType, origin: Origin) -> String {
    match origin {
        Origin::Aws => format!(
            "{AWS_REFERENCE}#access-analyzer-reference-policy-checks-{}-{}",
            ty.anchor(),
            code.to_ascii_lowercase().replace('_', "-")
        ),
        Origin::Ferrokms => FERROKMS_REFERENCE.to_string(),
    }
}

/// How a policy is read and linted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Identity,
    KeyPolicy,
    TrustPolicy,
    /// Another resource's policy (S3, DynamoDB...): the grammar and the
    /// checks that hold for every resource policy.
    OtherResource,
}

/// `policy lint`'s code → the issue code, the finding type and whose it is.
/// Rules AWS also has take AWS's code; the others keep lint's.
pub const LINT_MAPPING: &[(&str, &str, FindingType)] = &[
    (lint::UNKNOWN_ACTION, "INVALID_ACTION", FindingType::Error),
    (
        lint::OVERLY_PERMISSIVE_CONDITION,
        "FORALLVALUES_WITH_SINGLE_VALUED_KEY",
        FindingType::SecurityWarning,
    ),
    (
        lint::NOT_PRINCIPAL_WITH_ALLOW,
        "ALLOW_WITH_NOT_PRINCIPAL",
        FindingType::SecurityWarning,
    ),
    (
        lint::UNKNOWN_CONDITION_KEY,
        "INVALID_SERVICE_CONDITION_KEY",
        FindingType::Error,
    ),
    (
        lint::PUBLIC_ACCESS,
        "PUBLIC_ACCESS",
        FindingType::SecurityWarning,
    ),
    (lint::LOCKOUT_RISK, "LOCKOUT_RISK", FindingType::Error),
    (
        lint::RESOURCE_NOT_STAR,
        "RESOURCE_NOT_STAR",
        FindingType::Warning,
    ),
    (
        lint::KMS_STAR_NOT_ROOT,
        "KMS_STAR_NOT_ROOT",
        FindingType::Warning,
    ),
    (
        lint::DEPRECATED_VERSION,
        "DEPRECATED_VERSION",
        FindingType::Warning,
    ),
    (
        lint::CONDITION_KEY_NEVER_SET,
        "CONDITION_KEY_NEVER_SET",
        FindingType::Warning,
    ),
    (
        lint::CREATE_GRANT_WITHOUT_AWS_RESOURCE,
        "CREATE_GRANT_WITHOUT_AWS_RESOURCE",
        FindingType::Suggestion,
    ),
    (
        lint::NO_ACCOUNT_DELEGATION,
        "NO_ACCOUNT_DELEGATION",
        FindingType::Warning,
    ),
    (
        lint::ACCOUNT_WIDE_ACCESS,
        "ACCOUNT_WIDE_ACCESS",
        FindingType::Suggestion,
    ),
];

/// The issue codes ferrokms reports that are AWS's (the others are lint's own).
const AWS_CODES: &[&str] = &[
    "INVALID_ACTION",
    "FORALLVALUES_WITH_SINGLE_VALUED_KEY",
    "ALLOW_WITH_NOT_PRINCIPAL",
    "INVALID_SERVICE_CONDITION_KEY",
    "INVALID_GLOBAL_CONDITION_KEY",
    "JSON_SYNTAX_ERROR",
    "DATA_TYPE_MISMATCH",
    "INVALID_POLICY_ELEMENT",
    "MISSING_STATEMENT",
    "MISSING_EFFECT",
    "MISSING_ACTION",
    "MISSING_RESOURCE",
    "MISSING_PRINCIPAL",
    "MISSING_VERSION",
    "UNSUPPORTED_ELEMENT_COMBINATION",
    "UNSUPPORTED_PRINCIPAL",
    "INVALID_VERSION",
    "UNSUPPORTED_SID",
    "UNIQUE_SIDS_REQUIRED",
    "INVALID_EFFECT",
    "EMPTY_ARRAY_ACTION",
    "EMPTY_ARRAY_RESOURCE",
    "EMPTY_ARRAY_PRINCIPAL",
    "INVALID_ARN_PREFIX",
    "INVALID_ARN_RESOURCE",
    "INVALID_PRINCIPAL_FORMAT",
    "INVALID_CONDITION_OPERATOR",
    "NULL_WITH_IF_EXISTS",
    "INVALID_CONDITION_DATA_TYPE",
    "REDUNDANT_ACTION",
    "PASS_ROLE_WITH_STAR_IN_RESOURCE",
    "PASS_ROLE_WITH_STAR_IN_ACTION_AND_STAR_IN_RESOURCE",
    "PASS_ROLE_WITH_NOT_ACTION_AND_STAR_IN_RESOURCE",
    "PASS_ROLE_WITH_NOT_RESOURCE",
    "PASS_ROLE_WITH_STAR_IN_ACTION_AND_NOT_RESOURCE",
    "PASS_ROLE_WITH_NOT_ACTION_AND_NOT_RESOURCE",
];

/// Builds findings over one document.
struct Out<'a> {
    positions: Positions<'a>,
    root: Option<Node>,
    findings: Vec<Finding>,
}

impl Out<'_> {
    fn push(&mut self, code: &str, ty: FindingType, details: String, path: Vec<PathElement>) {
        let origin = if AWS_CODES.contains(&code) {
            Origin::Aws
        } else {
            Origin::Ferrokms
        };
        let location = self.location(path);
        self.findings.push(Finding {
            finding_details: details,
            finding_type: ty,
            issue_code: code.to_string(),
            learn_more_link: link(code, ty, origin),
            locations: location.into_iter().collect(),
        });
    }

    /// The path, cut back to what the document has, and its span.
    fn location(&self, mut path: Vec<PathElement>) -> Option<Location> {
        let root = self.root.as_ref()?;
        loop {
            if let Some((s, e)) = root.locate(&path) {
                return Some(Location {
                    span: self.positions.span(s, e),
                    path,
                });
            }
            path.pop()?;
        }
    }
}

/// Validates a policy document. `resource_type` is one of
/// [`RESOURCE_TYPES`] (the caller checks it).
pub fn validate_policy(text: &str, ty: PolicyType, resource_type: Option<&str>) -> Vec<Finding> {
    let root = Node::parse(text);
    let reading = match (ty, resource_type) {
        (PolicyType::Identity | PolicyType::ServiceControl, _) => Reading::Identity,
        (PolicyType::ResourceControl, _) => Reading::OtherResource,
        (PolicyType::Resource, Some("AWS::IAM::AssumeRolePolicyDocument")) => Reading::TrustPolicy,
        (PolicyType::Resource, Some("AWS::KMS::Key")) => Reading::KeyPolicy,
        (PolicyType::Resource, Some(_)) => Reading::OtherResource,
        (PolicyType::Resource, None) => {
            if root.as_ref().is_some_and(only_kms_actions) {
                Reading::KeyPolicy
            } else {
                Reading::OtherResource
            }
        }
    };
    let options = match reading {
        Reading::Identity => ParseOptions::for_kind(PolicyKind::IdentityBased),
        Reading::TrustPolicy => ParseOptions::for_trust_policy(),
        Reading::KeyPolicy | Reading::OtherResource => {
            ParseOptions::for_kind(PolicyKind::ResourceBased)
        }
    };
    let mut out = Out {
        positions: Positions::new(text),
        root,
        findings: Vec::new(),
    };
    let policy = match Policy::parse(text, &options) {
        Ok(p) => p,
        Err(e) => {
            parse_error(&mut out, &e, text);
            return out.findings;
        }
    };
    let statements: Vec<(Vec<PathElement>, Node)> =
        out.root.as_ref().map(statement_nodes).unwrap_or_default();
    if out
        .root
        .as_ref()
        .is_some_and(|r| r.get("Version").is_none())
    {
        out.push(
            "MISSING_VERSION",
            FindingType::Warning,
            "We recommend that you specify the Version element to help you with debugging permission issues: without it the policy is read as Version 2008-10-17, where policy variables are literal text. Add \"Version\": \"2012-10-17\".".into(),
            Vec::new(),
        );
    }
    let lint_kind = match reading {
        Reading::Identity => LintKind::Identity,
        Reading::KeyPolicy => LintKind::Key,
        Reading::TrustPolicy | Reading::OtherResource => LintKind::Trust,
    };
    for f in lint::lint_policy(&policy, lint_kind) {
        if f.code == lint::MISSING_VERSION {
            continue;
        }
        let (code, ty) = LINT_MAPPING
            .iter()
            .find(|(c, _, _)| *c == f.code)
            .map_or((f.code, FindingType::Warning), |(_, code, ty)| (*code, *ty));
        let mut details = f.message.clone();
        if f.code == lint::PUBLIC_ACCESS && reading == Reading::OtherResource {
            details = "Principal \"*\" with Allow and no condition restricting the caller (aws:PrincipalAccount, aws:PrincipalOrgID, aws:SourceArn, ...) makes this resource public: anyone, in any account, may use it".into();
        }
        let path = lint_path(&f, &statements);
        out.push(code, ty, details, path);
    }
    for (path, st) in &statements {
        if st.get("Action").is_none() && st.get("NotAction").is_none() {
            out.push(
                "MISSING_ACTION",
                FindingType::Error,
                "Add an Action or NotAction element to the policy statement: without one it applies to no action.".into(),
                path.clone(),
            );
        }
        redundant_actions(&mut out, path, st);
        global_condition_keys(&mut out, path, st);
        if reading == Reading::Identity {
            pass_role(&mut out, path, st);
        }
    }
    out.findings
}

/// The statements of the document, with their paths (no index for a
/// lone statement object, as AWS writes the path).
fn statement_nodes(root: &Node) -> Vec<(Vec<PathElement>, Node)> {
    let Some(st) = root.get("Statement") else {
        return Vec::new();
    };
    let base = PathElement::Value("Statement".into());
    match &st.kind {
        NodeKind::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, n)| (vec![base.clone(), PathElement::Index(i)], n.clone()))
            .collect(),
        NodeKind::Object(_) => vec![(vec![base], st.clone())],
        _ => Vec::new(),
    }
}

/// Whether every action of every statement is a `kms:` one (and there is one).
fn only_kms_actions(root: &Node) -> bool {
    let mut any = false;
    for (_, st) in statement_nodes(root) {
        for el in ["Action", "NotAction"] {
            if let Some(a) = st.get(el) {
                for (_, n) in a.strings() {
                    let s = n.as_str().unwrap_or_default();
                    if !s.to_ascii_lowercase().starts_with("kms:") {
                        return false;
                    }
                    any = true;
                }
            }
        }
    }
    any
}

/// Where a lint finding points: its statement, and within it the element
/// the finding is about.
fn lint_path(f: &lint::Finding, statements: &[(Vec<PathElement>, Node)]) -> Vec<PathElement> {
    let Some(i) = f.statement else {
        return match f.code {
            c if c == lint::DEPRECATED_VERSION => vec![PathElement::Value("Version".into())],
            _ => vec![PathElement::Value("Statement".into())],
        };
    };
    let Some((base, st)) = statements.get(i) else {
        return vec![PathElement::Value("Statement".into())];
    };
    let mut path = base.clone();
    let with = |mut p: Vec<PathElement>, el: &str| {
        p.push(PathElement::Value(el.into()));
        p
    };
    let code = f.code;
    if code == lint::UNKNOWN_ACTION {
        for el in ["Action", "NotAction"] {
            if let Some(a) = st.get(el) {
                for (idx, n) in a.strings() {
                    let s = n.as_str().unwrap_or_default();
                    if f.message.starts_with(&format!("\"{s}\"")) {
                        path = with(path, el);
                        if let Some(idx) = idx {
                            path.push(PathElement::Index(idx));
                        }
                        return path;
                    }
                }
            }
        }
    } else if code == lint::OVERLY_PERMISSIVE_CONDITION
        || code == lint::UNKNOWN_CONDITION_KEY
        || code == lint::CONDITION_KEY_NEVER_SET
    {
        if let Some(NodeKind::Object(ops)) = st.get("Condition").map(|c| &c.kind) {
            let forall = code == lint::OVERLY_PERMISSIVE_CONDITION;
            for op in ops {
                if forall && !op.key.starts_with("ForAllValues:") {
                    continue;
                }
                if let NodeKind::Object(keys) = &op.value.kind {
                    for k in keys {
                        let named = f.message.starts_with(&format!("{} ", k.key))
                            || f.message.contains(&format!(" {} ", k.key));
                        if named {
                            path = with(path, "Condition");
                            path.push(PathElement::Value(op.key.clone()));
                            path.push(PathElement::Value(k.key.clone()));
                            return path;
                        }
                    }
                }
            }
        }
    } else if code == lint::NOT_PRINCIPAL_WITH_ALLOW {
        return with(path, "NotPrincipal");
    } else if code == lint::PUBLIC_ACCESS || code == lint::ACCOUNT_WIDE_ACCESS {
        return with(path, "Principal");
    } else if code == lint::RESOURCE_NOT_STAR {
        let el = if st.get("Resource").is_some() {
            "Resource"
        } else {
            "NotResource"
        };
        return with(path, el);
    } else if code == lint::KMS_STAR_NOT_ROOT || code == lint::CREATE_GRANT_WITHOUT_AWS_RESOURCE {
        return with(path, "Action");
    }
    path
}

/// Turns the policy engine's `at` (`Statement[1].Condition.StringEquals`)
/// into a path of the document (keys with dots in them included).
fn path_of(at: &str, root: Option<&Node>) -> Vec<PathElement> {
    let Some(root) = root else {
        return Vec::new();
    };
    if at == "(document)" {
        return Vec::new();
    }
    let tokens: Vec<&str> = at.split('.').collect();
    let mut path = Vec::new();
    let mut node = root;
    let mut t = 0;
    while t < tokens.len() {
        // The longest run of tokens that names a key here.
        let mut found = None;
        for end in (t + 1..=tokens.len()).rev() {
            let joined = tokens[t..end].join(".");
            let (key, index) = match joined.strip_suffix(']').and_then(|s| s.rsplit_once('[')) {
                Some((k, i)) => (k.to_string(), i.parse::<usize>().ok()),
                None => (joined.clone(), None),
            };
            if let Some(next) = node.get(&key) {
                found = Some((end, key, index, next));
                break;
            }
        }
        let Some((end, key, index, next)) = found else {
            break;
        };
        path.push(PathElement::Value(key));
        node = next;
        if let Some(i) = index {
            if let NodeKind::Array(items) = &node.kind {
                match items.get(i) {
                    Some(n) => {
                        path.push(PathElement::Index(i));
                        node = n;
                    }
                    None => break,
                }
            }
        }
        t = end;
    }
    path
}

/// The one finding for a document the policy engine refuses.
fn parse_error(out: &mut Out<'_>, e: &PolicyError, text: &str) {
    let details = e.to_string();
    let root = out.root.as_ref();
    let (code, ty, path): (&str, FindingType, Vec<PathElement>) = match e {
        PolicyError::Json { line, column, .. } | PolicyError::TooDeep { line, column, .. } => {
            let at = out.positions.offset_of(*line, *column);
            let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            let span = out.positions.span(at, end);
            out.findings.push(Finding {
                finding_details: format!(
                    "Fix the JSON syntax error at index {} line {} column {}: {details}",
                    span.start.offset, span.start.line, span.start.column
                ),
                finding_type: FindingType::Error,
                issue_code: "JSON_SYNTAX_ERROR".into(),
                learn_more_link: link("JSON_SYNTAX_ERROR", FindingType::Error, Origin::Aws),
                locations: vec![Location {
                    path: Vec::new(),
                    span,
                }],
            });
            return;
        }
        PolicyError::DuplicateKey { at, key } => {
            let mut p = path_of(at, root);
            p.push(PathElement::Key(key.clone()));
            ("JSON_SYNTAX_ERROR", FindingType::Error, p)
        }
        PolicyError::WrongType { at, .. } => {
            ("DATA_TYPE_MISMATCH", FindingType::Error, path_of(at, root))
        }
        PolicyError::UnknownElement { at, element } => {
            let mut p = path_of(at, root);
            p.push(PathElement::Key(element.clone()));
            ("INVALID_POLICY_ELEMENT", FindingType::Error, p)
        }
        PolicyError::MissingElement { at, element } => {
            let code = match *element {
                "Statement" => "MISSING_STATEMENT",
                "Effect" => "MISSING_EFFECT",
                "Action" => "MISSING_ACTION",
                "Resource" => "MISSING_RESOURCE",
                "Principal" => "MISSING_PRINCIPAL",
                _ => "INVALID_POLICY_ELEMENT",
            };
            (code, FindingType::Error, path_of(at, root))
        }
        PolicyError::ConflictingElements { at, .. } => (
            "UNSUPPORTED_ELEMENT_COMBINATION",
            FindingType::Error,
            path_of(at, root),
        ),
        PolicyError::ElementNotAllowed { at, element, .. } => {
            let mut p = path_of(at, root);
            p.push(PathElement::Key((*element).to_string()));
            let code = if element.contains("Principal") {
                "UNSUPPORTED_PRINCIPAL"
            } else {
                "INVALID_POLICY_ELEMENT"
            };
            (code, FindingType::Error, p)
        }
        PolicyError::InvalidVersion { .. } => (
            "INVALID_VERSION",
            FindingType::Error,
            vec![PathElement::Value("Version".into())],
        ),
        PolicyError::SidNotAlphanumeric { at, .. } => {
            ("UNSUPPORTED_SID", FindingType::Error, path_of(at, root))
        }
        PolicyError::DuplicateSid { at, .. } => (
            "UNIQUE_SIDS_REQUIRED",
            FindingType::Error,
            path_of(at, root),
        ),
        PolicyError::InvalidEffect { at, .. } => {
            ("INVALID_EFFECT", FindingType::Error, path_of(at, root))
        }
        PolicyError::Empty { at } => {
            let code = if at.ends_with("Action") {
                "EMPTY_ARRAY_ACTION"
            } else if at.ends_with("Resource") {
                "EMPTY_ARRAY_RESOURCE"
            } else if at.ends_with("Principal") {
                "EMPTY_ARRAY_PRINCIPAL"
            } else {
                "EMPTY_ARRAY"
            };
            (code, FindingType::Error, path_of(at, root))
        }
        PolicyError::InvalidAction { at, .. } => {
            ("INVALID_ACTION", FindingType::Error, path_of(at, root))
        }
        PolicyError::InvalidResource { at, value, .. } => {
            let code = if value.starts_with("arn:") {
                "INVALID_ARN_RESOURCE"
            } else {
                "INVALID_ARN_PREFIX"
            };
            (code, FindingType::Error, path_of(at, root))
        }
        PolicyError::InvalidPrincipal { at, .. } => (
            "INVALID_PRINCIPAL_FORMAT",
            FindingType::Error,
            path_of(at, root),
        ),
        PolicyError::UnknownConditionOperator { at, operator } => {
            let code = if operator.starts_with("Null") && operator.ends_with("IfExists") {
                "NULL_WITH_IF_EXISTS"
            } else {
                "INVALID_CONDITION_OPERATOR"
            };
            let mut p = path_of(at, root);
            if p.last() != Some(&PathElement::Value(operator.clone())) {
                p.push(PathElement::Key(operator.clone()));
            }
            (code, FindingType::Error, p)
        }
        PolicyError::InvalidConditionValue { at, .. } => (
            "INVALID_CONDITION_DATA_TYPE",
            FindingType::Error,
            path_of(at, root),
        ),
        PolicyError::InvalidPolicyVariable { at, .. } => (
            "INVALID_POLICY_VARIABLE",
            FindingType::Error,
            path_of(at, root),
        ),
        _ => ("INVALID_POLICY_ELEMENT", FindingType::Error, Vec::new()),
    };
    out.push(code, ty, details, path);
}

#[cfg(test)]
mod tests;
