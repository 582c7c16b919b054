//! Policy text → [`Policy`], with validation.
//!
//! Everything the grammar does not allow is an error with a precise location: unknown or
//! duplicate elements, conflicting pairs (`Action` with `NotAction`), bad versions, effects,
//! principals, operators and condition values. What is *required* depends on the kind of
//! policy, so the caller chooses through [`ParseOptions`].

mod principal;

use crate::condition::{
    self, Condition, ConditionEntry, ConditionKey, ConditionOperator, ConditionValue, OperatorBlock,
};
use crate::error::{type_name_of, PolicyError};
use crate::evaluate::PolicyKind;
use crate::json::{self, Json};
use crate::matching::arn::ArnPattern;
use crate::matching::glob::Glob;
use crate::model::{
    ActionElement, ActionPattern, Effect, Form, Policy, PrincipalElement, ResourceElement,
    ResourceMatcher, ResourcePattern, Statement, Version,
};
use std::str::FromStr;

/// Bounds that keep hostile input cheap to reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted document, in bytes. KMS key policies are capped at 32 KiB and IAM
    /// managed policies at 6 KiB; the default leaves room for both and for tests.
    pub max_bytes: usize,
    /// Deepest JSON nesting. A valid policy needs 5 levels (document, Statement array,
    /// statement, Condition, operator block, value array); the default allows slack.
    pub max_depth: usize,
    /// Most statements in one document.
    pub max_statements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024,
            max_depth: 16,
            max_statements: 4096,
        }
    }
}

/// Whether statements must, may, or must not name a principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalRule {
    /// Resource-based policies (key policies, bucket policies, trust policies).
    Required,
    /// Identity-based policies, permissions boundaries, session policies.
    Forbidden,
    /// Accept either (tools that do not know the policy's kind).
    Optional,
}

/// What the parser requires beyond the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    /// Whether `Principal`/`NotPrincipal` is required, forbidden or optional.
    pub principal: PrincipalRule,
    /// Reject statements without `Action`/`NotAction` or `Resource`/`NotResource`. KMS
    /// accepts such statements (they never match), so this is off by default.
    pub require_action_and_resource: bool,
    /// A statement without `Resource`/`NotResource` applies to the resource the policy is
    /// attached to. True for role trust policies, which never name a resource (the role is
    /// the resource); false for key policies, where such a statement never matches.
    pub implicit_resource: bool,
    /// IAM's own rule for the policies it stores (identity policies, managed
    /// policies used as boundaries, role trust policies) and for session
    /// policies: every `Sid` is ASCII alphanumeric (`[0-9A-Za-z]*`) and unique
    /// in the document. KMS key policies allow other Sids (the default key
    /// policy's "Enable IAM User Permissions" has spaces), so this is off by
    /// default and [`ParseOptions::iam`] turns it on.
    pub iam_statement_ids: bool,
    /// Size and nesting limits of the document.
    pub limits: Limits,
}

impl Default for ParseOptions {
    /// Lenient: principal optional, action and resource optional.
    fn default() -> Self {
        ParseOptions {
            principal: PrincipalRule::Optional,
            require_action_and_resource: false,
            implicit_resource: false,
            iam_statement_ids: false,
            limits: Limits::default(),
        }
    }
}

impl ParseOptions {
    /// The checks for a policy of `kind`: resource-based policies need a principal in every
    /// statement, every other kind must not have one.
    pub fn for_kind(kind: PolicyKind) -> Self {
        ParseOptions {
            principal: match kind {
                PolicyKind::ResourceBased => PrincipalRule::Required,
                _ => PrincipalRule::Forbidden,
            },
            ..ParseOptions::default()
        }
    }

    /// A role trust policy: a resource-based policy whose statements apply to the role
    /// without naming it.
    pub fn for_trust_policy() -> Self {
        ParseOptions {
            implicit_resource: true,
            ..Self::for_kind(PolicyKind::ResourceBased)
        }
    }

    /// These options plus IAM's statement-id rule (see
    /// [`ParseOptions::iam_statement_ids`]): for documents IAM or STS accept.
    pub fn iam(self) -> Self {
        ParseOptions {
            iam_statement_ids: true,
            ..self
        }
    }

    /// [`ParseOptions::for_kind`] plus mandatory `Action` and `Resource` (IAM's own rule for
    /// identity policies).
    pub fn strict_for_kind(kind: PolicyKind) -> Self {
        ParseOptions {
            require_action_and_resource: true,
            ..Self::for_kind(kind)
        }
    }

    /// The same options with other limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

impl Policy {
    /// Parses and validates policy text.
    pub fn parse(text: &str, options: &ParseOptions) -> Result<Policy, PolicyError> {
        if text.len() > options.limits.max_bytes {
            return Err(PolicyError::TooLarge {
                size: text.len(),
                limit: options.limits.max_bytes,
            });
        }
        let doc = json::parse(text, options.limits.max_depth)?;
        from_json(&doc, options)
    }

    /// Parses policy bytes, which must be UTF-8.
    pub fn parse_bytes(bytes: &[u8], options: &ParseOptions) -> Result<Policy, PolicyError> {
        if bytes.len() > options.limits.max_bytes {
            return Err(PolicyError::TooLarge {
                size: bytes.len(),
                limit: options.limits.max_bytes,
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        Self::parse(text, options)
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    /// Parses with the lenient [`ParseOptions::default`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::parse(s, &ParseOptions::default())
    }
}

fn wrong_type(at: &str, expected: &'static str, found: &Json) -> PolicyError {
    PolicyError::WrongType {
        at: at.to_string(),
        expected,
        found: type_name_of(found),
    }
}

fn expect_string<'a>(at: &str, v: &'a Json) -> Result<&'a str, PolicyError> {
    match v {
        Json::String(s) => Ok(s),
        other => Err(wrong_type(at, "a string", other)),
    }
}

/// The members of a one-or-many string element, each with its path, and the form it had.
type StringList<'a> = (Vec<(String, &'a str)>, Form);

/// A string or a non-empty array of strings, with the path of each member.
fn string_list<'a>(at: &str, v: &'a Json) -> Result<StringList<'a>, PolicyError> {
    match v {
        Json::String(s) => Ok((vec![(at.to_string(), s.as_str())], Form::Single)),
        Json::Array(items) => {
            if items.is_empty() {
                return Err(PolicyError::Empty { at: at.to_string() });
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let p = format!("{at}[{i}]");
                let s = expect_string(&p, item)?;
                out.push((p, s));
            }
            Ok((out, Form::Array))
        }
        other => Err(wrong_type(at, "a string or an array of strings", other)),
    }
}

fn from_json(doc: &Json, options: &ParseOptions) -> Result<Policy, PolicyError> {
    let Json::Object(members) = doc else {
        return Err(wrong_type("(document)", "an object", doc));
    };
    let mut version = None;
    let mut id = None;
    let mut statement = None;
    for (k, v) in members {
        match k.as_str() {
            "Version" => {
                let s = expect_string("Version", v)?;
                version = Some(match s {
                    "2012-10-17" => Version::V2012_10_17,
                    "2008-10-17" => Version::V2008_10_17,
                    _ => {
                        return Err(PolicyError::InvalidVersion {
                            found: s.to_string(),
                        })
                    }
                });
            }
            "Id" => id = Some(expect_string("Id", v)?.to_string()),
            "Statement" => statement = Some(v),
            _ => {
                return Err(PolicyError::UnknownElement {
                    at: "(document)".to_string(),
                    element: k.clone(),
                })
            }
        }
    }
    let statement = statement.ok_or(PolicyError::MissingElement {
        at: "(document)".to_string(),
        element: "Statement",
    })?;
    let variables = version == Some(Version::V2012_10_17);
    let (raw, form): (Vec<(String, &Json)>, Form) = match statement {
        Json::Object(_) => (vec![("Statement".to_string(), statement)], Form::Single),
        Json::Array(items) => {
            if items.is_empty() {
                return Err(PolicyError::Empty {
                    at: "Statement".to_string(),
                });
            }
            if items.len() > options.limits.max_statements {
                return Err(PolicyError::WrongType {
                    at: "Statement".to_string(),
                    expected: "at most the configured number of statements",
                    found: "more",
                });
            }
            (
                items
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("Statement[{i}]"), s))
                    .collect(),
                Form::Array,
            )
        }
        other => {
            return Err(wrong_type(
                "Statement",
                "an object or an array of objects",
                other,
            ))
        }
    };
    let statements = raw
        .iter()
        .map(|(at, s)| parse_statement(at, s, variables, options))
        .collect::<Result<Vec<_>, _>>()?;
    if options.iam_statement_ids {
        check_iam_statement_ids(&statements)?;
    }
    let mut policy = Policy {
        version,
        id,
        statements,
        statement_form: form,
        referenced_keys: Vec::new(),
    };
    policy.referenced_keys = policy.collect_referenced_keys();
    Ok(policy)
}

/// IAM: Sids are `[0-9A-Za-z]*` and unique within the document.
fn check_iam_statement_ids(statements: &[Statement]) -> Result<(), PolicyError> {
    for (i, st) in statements.iter().enumerate() {
        let Some(sid) = st.sid.as_deref() else {
            continue;
        };
        if !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(PolicyError::SidNotAlphanumeric {
                at: format!("Statement[{i}].Sid"),
                sid: sid.to_string(),
            });
        }
        if statements[..i]
            .iter()
            .any(|o| o.sid.as_deref() == Some(sid))
        {
            return Err(PolicyError::DuplicateSid {
                at: format!("Statement[{i}].Sid"),
                sid: sid.to_string(),
            });
        }
    }
    Ok(())
}

fn conflict(at: &str, first: &'static str, second: &'static str) -> PolicyError {
    PolicyError::ConflictingElements {
        at: at.to_string(),
        first,
        second,
    }
}

fn parse_statement(
    at: &str,
    v: &Json,
    variables: bool,
    options: &ParseOptions,
) -> Result<Statement, PolicyError> {
    let Json::Object(members) = v else {
        return Err(wrong_type(at, "an object", v));
    };
    let mut sid = None;
    let mut effect = None;
    let mut principal: Option<PrincipalElement> = None;
    let mut action: Option<ActionElement> = None;
    let mut resource: Option<ResourceElement> = None;
    let mut condition = None;
    for (k, val) in members {
        let here = format!("{at}.{k}");
        match k.as_str() {
            "Sid" => sid = Some(expect_string(&here, val)?.to_string()),
            "Effect" => {
                effect = Some(match expect_string(&here, val)? {
                    "Allow" => Effect::Allow,
                    "Deny" => Effect::Deny,
                    other => {
                        return Err(PolicyError::InvalidEffect {
                            at: here,
                            found: other.to_string(),
                        })
                    }
                });
            }
            "Principal" | "NotPrincipal" => {
                if principal.is_some() {
                    return Err(conflict(at, "Principal", "NotPrincipal"));
                }
                principal = Some(PrincipalElement {
                    negated: k == "NotPrincipal",
                    spec: principal::parse_principal(&here, val)?,
                });
            }
            "Action" | "NotAction" => {
                if action.is_some() {
                    return Err(conflict(at, "Action", "NotAction"));
                }
                action = Some(parse_actions(&here, val, k == "NotAction")?);
            }
            "Resource" | "NotResource" => {
                if resource.is_some() {
                    return Err(conflict(at, "Resource", "NotResource"));
                }
                resource = Some(parse_resources(&here, val, k == "NotResource", variables)?);
            }
            "Condition" => condition = Some(parse_condition(&here, val, variables)?),
            _ => {
                return Err(PolicyError::UnknownElement {
                    at: at.to_string(),
                    element: k.clone(),
                })
            }
        }
    }
    let effect = effect.ok_or(PolicyError::MissingElement {
        at: at.to_string(),
        element: "Effect",
    })?;
    match (options.principal, &principal) {
        (PrincipalRule::Required, None) => {
            return Err(PolicyError::MissingElement {
                at: at.to_string(),
                element: "Principal",
            })
        }
        (PrincipalRule::Forbidden, Some(p)) => {
            return Err(PolicyError::ElementNotAllowed {
                at: at.to_string(),
                element: if p.negated {
                    "NotPrincipal"
                } else {
                    "Principal"
                },
                policy_kind: "an identity-based policy",
            })
        }
        _ => {}
    }
    if resource.is_none() && options.implicit_resource {
        resource = Some(parse_resources(
            at,
            &Json::String("*".into()),
            false,
            false,
        )?);
    }
    if options.require_action_and_resource {
        if action.is_none() {
            return Err(PolicyError::MissingElement {
                at: at.to_string(),
                element: "Action",
            });
        }
        if resource.is_none() {
            return Err(PolicyError::MissingElement {
                at: at.to_string(),
                element: "Resource",
            });
        }
    }
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        condition,
    })
}

fn parse_actions(at: &str, v: &Json, negated: bool) -> Result<ActionElement, PolicyError> {
    let (items, form) = string_list(at, v)?;
    let mut patterns = Vec::with_capacity(items.len());
    for (p, s) in items {
        let bad = |reason| PolicyError::InvalidAction {
            at: p.clone(),
            value: s.to_string(),
            reason,
        };
        if s.chars().any(char::is_whitespace) {
            return Err(bad("actions cannot contain whitespace"));
        }
        if s != "*" {
            match s.split_once(':') {
                Some((svc, name)) if !svc.is_empty() && !name.is_empty() => {}
                _ => return Err(bad("expected \"*\" or \"service:ActionName\"")),
            }
        }
        patterns.push(ActionPattern {
            text: s.to_string(),
            glob: Glob::new(&s.to_lowercase()),
        });
    }
    Ok(ActionElement {
        negated,
        patterns,
        form,
    })
}

fn parse_resources(
    at: &str,
    v: &Json,
    negated: bool,
    variables: bool,
) -> Result<ResourceElement, PolicyError> {
    let (items, form) = string_list(at, v)?;
    let mut patterns = Vec::with_capacity(items.len());
    for (p, s) in items {
        let all_wild = !s.is_empty() && s.chars().all(|c| c == '*' || c == '?');
        let is_arn = s.starts_with("arn:") && s.splitn(6, ':').count() == 6;
        if !all_wild && !is_arn {
            return Err(PolicyError::InvalidResource {
                at: p,
                value: s.to_string(),
                reason: "expected \"*\" or an ARN (arn:partition:service:region:account:resource)",
            });
        }
        let template = if variables {
            crate::variables::parse(s).map_err(|reason| PolicyError::InvalidPolicyVariable {
                at: p.clone(),
                value: s.to_string(),
                reason,
            })?
        } else {
            None
        };
        let matcher = match template {
            Some(t) => {
                if t.has_variable_before_resource() {
                    return Err(PolicyError::InvalidPolicyVariable {
                        at: p,
                        value: s.to_string(),
                        reason: "policy variables are only allowed in the resource part of an ARN (after the fifth ':')",
                    });
                }
                ResourceMatcher::Dynamic(t)
            }
            None => ResourceMatcher::Static(ArnPattern::new(s)),
        };
        patterns.push(ResourcePattern {
            text: s.to_string(),
            matcher,
        });
    }
    Ok(ResourceElement {
        negated,
        patterns,
        form,
    })
}

fn scalar_text<'a>(at: &str, v: &'a Json) -> Result<std::borrow::Cow<'a, str>, PolicyError> {
    match v {
        Json::String(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Json::Number(n) => Ok(std::borrow::Cow::Borrowed(n)),
        Json::Bool(b) => Ok(std::borrow::Cow::Borrowed(if *b {
            "true"
        } else {
            "false"
        })),
        other => Err(wrong_type(at, "a string, number or boolean", other)),
    }
}

fn parse_condition(at: &str, v: &Json, variables: bool) -> Result<Condition, PolicyError> {
    let Json::Object(ops) = v else {
        return Err(wrong_type(at, "an object", v));
    };
    if ops.is_empty() {
        return Err(PolicyError::Empty { at: at.to_string() });
    }
    let mut blocks = Vec::with_capacity(ops.len());
    for (op_name, keys) in ops {
        let op_at = format!("{at}.{op_name}");
        let operator = ConditionOperator::parse(op_name).ok_or_else(|| {
            PolicyError::UnknownConditionOperator {
                at: at.to_string(),
                operator: op_name.clone(),
            }
        })?;
        let Json::Object(keys) = keys else {
            return Err(wrong_type(&op_at, "an object of condition keys", keys));
        };
        if keys.is_empty() {
            return Err(PolicyError::Empty { at: op_at });
        }
        let mut entries = Vec::with_capacity(keys.len());
        for (key, vals) in keys {
            let key_at = format!("{op_at}.{key}");
            if key.is_empty() {
                return Err(PolicyError::WrongType {
                    at: key_at,
                    expected: "a non-empty condition key name",
                    found: "an empty string",
                });
            }
            let (raw, form): (Vec<(String, &Json)>, Form) = match vals {
                Json::Array(items) => {
                    if items.is_empty() {
                        return Err(PolicyError::Empty { at: key_at });
                    }
                    (
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (format!("{key_at}[{i}]"), x))
                            .collect(),
                        Form::Array,
                    )
                }
                single => (vec![(key_at.clone(), single)], Form::Single),
            };
            let mut values = Vec::with_capacity(raw.len());
            for (vat, x) in raw {
                let text = scalar_text(&vat, x)?;
                let compiled =
                    condition::compile_value(&operator, &text, variables).map_err(|reason| {
                        PolicyError::InvalidConditionValue {
                            at: vat.clone(),
                            operator: op_name.clone(),
                            value: text.to_string(),
                            reason,
                        }
                    })?;
                values.push(ConditionValue {
                    text: text.into_owned(),
                    compiled,
                });
            }
            entries.push(ConditionEntry {
                key: ConditionKey::new(key),
                values,
                form,
            });
        }
        blocks.push(OperatorBlock { operator, entries });
    }
    Ok(Condition { blocks })
}
