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

/// Case-insensitive `*` / `?` matching of a pattern against a text.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p].eq_ignore_ascii_case(&text[t])) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The KMS actions a `kms:` pattern matches, as a set of bits (one per
/// entry of `lint::KMS_ACTIONS`, which has fewer than 64); `None` for
/// another service's pattern.
fn kms_mask(pattern: &str) -> Option<u64> {
    let actions = lint::expand_action(pattern)?;
    Some(
        lint::KMS_ACTIONS
            .iter()
            .enumerate()
            .filter(|(_, a)| actions.contains(a))
            .fold(0, |m, (i, _)| m | (1u64 << i)),
    )
}

/// One action of a statement, read once for [`covers`].
struct ActionPattern<'a> {
    text: &'a str,
    kms: Option<u64>,
}

/// Whether action pattern `wide` allows everything `narrow` does. For two
/// KMS patterns, by the actions each matches; otherwise `wide` must match
/// `narrow` read as literal text (`iam:*` covers `iam:Get*`).
fn covers(wide: &ActionPattern<'_>, narrow: &ActionPattern<'_>) -> bool {
    if let (Some(w), Some(n)) = (wide.kms, narrow.kms) {
        return n != 0 && n & !w == 0;
    }
    glob(wide.text.as_bytes(), narrow.text.as_bytes())
}

/// REDUNDANT_ACTION: an action of a statement's `Action` that another of
/// its actions already covers (of two equal ones, the second). Quadratic
/// in the statement's actions, each comparison a bit test or a glob of two
/// short strings; the document's size bounds both (`MAX_POLICY_CHARS`).
fn redundant_actions(out: &mut Out<'_>, base: &[PathElement], st: &Node) {
    let Some(actions) = st.get("Action") else {
        return;
    };
    let list = actions.strings();
    let patterns: Vec<ActionPattern<'_>> = list
        .iter()
        .map(|(_, n)| {
            let text = n.as_str().unwrap_or_default();
            ActionPattern {
                text,
                kms: kms_mask(text),
            }
        })
        .collect();
    for (i, a) in patterns.iter().enumerate() {
        let by = patterns
            .iter()
            .enumerate()
            .find(|(j, b)| *j != i && covers(b, a) && !(*j > i && covers(a, b)));
        if let Some((_, b)) = by {
            let (a, b) = (a.text, b.text);
            let mut path = base.to_vec();
            path.push(PathElement::Value("Action".into()));
            if let Some(idx) = list[i].0 {
                path.push(PathElement::Index(idx));
            }
            out.push(
                "REDUNDANT_ACTION",
                FindingType::Suggestion,
                format!("The {a} action is redundant because the {b} action allows the same access. We recommend that you remove the {a} action."),
                path,
            );
        }
    }
}

/// AWS's global condition keys (IAM User Guide, "AWS global condition
/// context keys"), lowercased; a trailing `/` is a family.
const GLOBAL_KEYS: &[&str] = &[
    "aws:calledvia",
    "aws:calledviafirst",
    "aws:calledvialast",
    "aws:currenttime",
    "aws:ec2instancesourceprivateipv4",
    "aws:ec2instancesourcevpc",
    "aws:epochtime",
    "aws:federatedprovider",
    "aws:multifactorauthage",
    "aws:multifactorauthpresent",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalisawsservice",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:principaltag/",
    "aws:principaltype",
    "aws:referer",
    "aws:requestedregion",
    "aws:requesttag/",
    "aws:resourceaccount",
    "aws:resourceorgid",
    "aws:resourceorgpaths",
    "aws:resourcetag/",
    "aws:securetransport",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceidentity",
    "aws:sourceip",
    "aws:sourceorgid",
    "aws:sourceorgpaths",
    "aws:sourcevpc",
    "aws:sourcevpcarn",
    "aws:sourcevpce",
    "aws:tagkeys",
    "aws:tokenissuetime",
    "aws:useragent",
    "aws:userid",
    "aws:username",
    "aws:viaawsservice",
    "aws:vpcsourceip",
];

/// Levenshtein distance of two short lowercased keys.
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// INVALID_GLOBAL_CONDITION_KEY: an `aws:` key that is not a global key
/// but a near miss of one (at most 2 edits; for a family, of its prefix).
/// Keys far from every known one are left alone: AWS adds global keys,
/// and a key this list lacks must not fail a policy.
fn global_condition_keys(out: &mut Out<'_>, base: &[PathElement], st: &Node) {
    let Some(NodeKind::Object(ops)) = st.get("Condition").map(|c| &c.kind) else {
        return;
    };
    for op in ops {
        let NodeKind::Object(keys) = &op.value.kind else {
            continue;
        };
        for k in keys {
            let lower = k.key.to_ascii_lowercase();
            if !lower.starts_with("aws:") || lower.len() > 128 {
                continue;
            }
            let known = GLOBAL_KEYS.iter().any(|g| match g.strip_suffix('/') {
                Some(_) => lower.starts_with(g) && lower.len() > g.len(),
                None => lower == *g,
            });
            if known {
                continue;
            }
            let near = GLOBAL_KEYS.iter().find(|g| {
                let (head, g) = match g.strip_suffix('/') {
                    Some(family) => (lower.split('/').next().unwrap_or(""), family),
                    None => (lower.as_str(), **g),
                };
                distance(head, g) <= 2
            });
            if let Some(g) = near {
                let mut path = base.to_vec();
                path.push(PathElement::Value("Condition".into()));
                path.push(PathElement::Value(op.key.clone()));
                path.push(PathElement::Key(k.key.clone()));
                out.push(
                    "INVALID_GLOBAL_CONDITION_KEY",
                    FindingType::Error,
                    format!("The condition key {} does not exist (did you mean {g}?): no request has it, so the condition can never match or never restricts. Use a valid condition key.", k.key),
                    path,
                );
            }
        }
    }
}

/// The PASS_ROLE_* security warnings of an identity policy's Allow
/// statement that passes roles with `*` (or NotResource) as its resource.
fn pass_role(out: &mut Out<'_>, base: &[PathElement], st: &Node) {
    if st.get("Effect").and_then(Node::as_str) != Some("Allow") {
        return;
    }
    let pass = b"iam:PassRole";
    let action_form = if let Some(a) = st.get("Action") {
        let list = a.strings();
        if list.iter().any(|(_, n)| {
            n.as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case("iam:PassRole"))
        }) {
            Some("")
        } else if list
            .iter()
            .any(|(_, n)| n.as_str().is_some_and(|s| glob(s.as_bytes(), pass)))
        {
            Some("_STAR_IN_ACTION_AND")
        } else {
            None
        }
    } else if let Some(a) = st.get("NotAction") {
        let excluded = a
            .strings()
            .iter()
            .any(|(_, n)| n.as_str().is_some_and(|s| glob(s.as_bytes(), pass)));
        (!excluded).then_some("_NOT_ACTION_AND")
    } else {
        None
    };
    let Some(action_form) = action_form else {
        return;
    };
    let mut path = base.to_vec();
    let resource_form = if let Some(r) = st.get("Resource") {
        let star = r
            .strings()
            .into_iter()
            .find(|(_, n)| n.as_str() == Some("*"));
        let Some((idx, _)) = star else {
            return;
        };
        path.push(PathElement::Value("Resource".into()));
        if let Some(idx) = idx {
            path.push(PathElement::Index(idx));
        }
        "_STAR_IN_RESOURCE"
    } else if st.get("NotResource").is_some() {
        path.push(PathElement::Value("NotResource".into()));
        "_NOT_RESOURCE"
    } else {
        return;
    };
    let code = match (action_form, resource_form) {
        ("", r) => format!("PASS_ROLE_WITH{r}"),
        (a, r) => format!("PASS_ROLE_WITH{a}{r}"),
    };
    let what = if resource_form == "_NOT_RESOURCE" {
        "the NotResource element"
    } else {
        "a wildcard (*) in the resource"
    };
    out.push(
        &code,
        FindingType::SecurityWarning,
        format!("Using the iam:PassRole action with {what} can be overly permissive because it allows iam:PassRole permissions on multiple resources. We recommend that you specify resource ARNs or add the iam:PassedToService condition key to your statement."),
        path,
    );
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
mod tests {
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
}
