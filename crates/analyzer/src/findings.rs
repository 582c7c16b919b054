//! External-access findings of an ACCOUNT analyzer for KMS keys
//! (resource type `AWS::KMS::Key`) and IAM roles' trust policies
//! (`AWS::IAM::Role`, [`observe_role`]), and their upkeep.
//!
//! What a finding is: one (key, external principal, source, conditions)
//! with the actions that principal may perform, from the decision
//! procedure of `ferrokms_reach` ([`observe`]). The source is the key
//! policy (`sources: [{"type": "POLICY"}]`) or one grant (the model's
//! `FindingSourceType` has no grant value: a grant finding has no
//! `sources`, and its `condition` shows the grant's constraints as
//! `kms:EncryptionContext:KEY` and `aws:SourceArn`). A key policy finding's
//! `condition` is the Condition block of the key policy statements that
//! admit the principal's example request, flattened `key -> value`.
//!
//! Upkeep ([`reconcile`]): a finding's id is derived from (analyzer ARN,
//! key ARN, principal, actions, conditions, source) ([`finding_id`]), so
//! the same access keeps its id, `createdAt` and ARCHIVED status across
//! analyses; access that goes away makes its finding RESOLVED; access that
//! returns makes it ACTIVE again. A key that cannot be analysed (a
//! construct outside reach's encoding, or over its bounds) gets one
//! finding with `error` set, never silence; that finding is removed, not
//! resolved, once the key can be analysed (as AWS does with error
//! findings).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ferrokms_policy::{
    evaluate_statement, Action, Effect, Policy, PolicyKind, Request, RequestPrincipal,
};
use ferrokms_reach::{AccessEntry, Path};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::live::KeySnapshot;
use crate::{AnalyzerError, ValidationReason};

/// The resource type of a key's findings.
pub const KMS_KEY: &str = "AWS::KMS::Key";
/// The resource type of a role's findings (its trust policy).
pub const IAM_ROLE: &str = "AWS::IAM::Role";

/// The resource type of the finding about `resource` (a key or role ARN).
pub fn resource_type(resource: &str) -> &'static str {
    if resource.contains(":iam::") && resource.contains(":role/") {
        IAM_ROLE
    } else {
        KMS_KEY
    }
}

/// How reach names the class of principals of accounts no policy names:
/// anyone, so the finding is public (`principal: {"AWS": "*"}`).
const PUBLIC_CLASS: &str = "any principal of an account no policy names";
/// How reach names the identities of every provider no policy names (a
/// role's `"*"` admits them): public too.
const PUBLIC_PROVIDER_CLASS: &str = "federated identities of a provider no policy names";

/// SHA-256 of `data` in lower-case hex.
pub fn digest_hex(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The status of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Current access, not archived.
    Active,
    /// Current access a user archived.
    Archived,
    /// Access that is no longer there.
    Resolved,
}

impl Status {
    /// The value as the model spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "ACTIVE",
            Status::Archived => "ARCHIVED",
            Status::Resolved => "RESOLVED",
        }
    }
}

/// One finding as the analysis sees it, before it has an id or a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The external principal (`*`, an account id, or an ARN); `None` for
    /// an error finding.
    pub principal: Option<String>,
    /// The actions, sorted.
    pub actions: Vec<String>,
    /// The conditions, as AWS shows them.
    pub condition: BTreeMap<String, String>,
    /// Anyone at all.
    pub is_public: bool,
    /// The grant it comes from; `None`: the key policy.
    pub grant: Option<String>,
    /// Why the key could not be analysed.
    pub error: Option<String>,
}

impl Observed {
    /// An error finding: the key could not be analysed, and why.
    pub fn error(message: String) -> Self {
        Observed {
            principal: None,
            actions: Vec::new(),
            condition: BTreeMap::new(),
            is_public: false,
            grant: None,
            error: Some(message),
        }
    }
}

/// A finding's id: a UUID-shaped digest of what the finding is about.
pub fn finding_id(analyzer_arn: &str, key_arn: &str, o: &Observed) -> String {
    let text = json!({
        "analyzer": analyzer_arn,
        "resource": key_arn,
        "principal": o.principal,
        "actions": o.actions,
        "condition": o.condition,
        "grant": o.grant,
        "error": o.error.is_some(),
    })
    .to_string();
    uuid_shaped(&digest_hex(text.as_bytes()))
}

/// The first 32 hex digits of a digest as `8-4-4-4-12`.
pub fn uuid_shaped(hex: &str) -> String {
    let h = hex.get(..32).unwrap_or(hex);
    format!(
        "{}-{}-{}-{}-{}",
        h.get(..8).unwrap_or(""),
        h.get(8..12).unwrap_or(""),
        h.get(12..16).unwrap_or(""),
        h.get(16..20).unwrap_or(""),
        h.get(20..32).unwrap_or("")
    )
}

/// The external-access findings of one key, as of `snapshot` (its policy
/// set built from the snapshot alone: see [`observe_set`]).
pub fn observe(snapshot: &KeySnapshot) -> Vec<Observed> {
    observe_set(snapshot.policy_set())
}

/// The external-access findings of one key's policy set (or why it could
/// not be built: an error finding).
pub fn observe_set(set: Result<ferrokms_reach::PolicySet, String>) -> Vec<Observed> {
    match set {
        Ok(set) => observe_entries(
            ferrokms_reach::external_access(&set),
            &set.key_policy,
            &set.key.arn,
            &set.grants,
        ),
        Err(e) => vec![Observed::error(e)],
    }
}

/// The external-access findings of one IAM role's trust policy (or why
/// its policy set could not be built).
pub fn observe_role(set: Result<ferrokms_reach::RolePolicySet, String>) -> Vec<Observed> {
    match set {
        Ok(set) => observe_entries(
            ferrokms_reach::role_external_access(&set),
            &set.trust_policy,
            &set.role_arn,
            &[],
        ),
        Err(e) => vec![Observed::error(e)],
    }
}

/// Findings from reach's external-access entries for the resource
/// `resource_arn` under its resource policy `policy` (and its grants): one
/// per (principal, source, conditions), with the actions.
fn observe_entries(
    entries: Result<Vec<AccessEntry>, ferrokms_reach::ReachError>,
    policy: &Policy,
    resource_arn: &str,
    grants: &[ferrokms_reach::Grant],
) -> Vec<Observed> {
    let entries = match entries {
        Ok(e) => e,
        Err(e) => return vec![Observed::error(e.to_string())],
    };
    let mut out: Vec<Observed> = Vec::new();
    for e in entries.iter().filter(|e| e.external) {
        let is_public = e.principal_class.starts_with(PUBLIC_CLASS)
            || e.principal_class == PUBLIC_PROVIDER_CLASS;
        let principal = principal_of(e, is_public);
        let (grant, condition) = match &e.path {
            Path::Grant(id) => (
                Some(id.clone()),
                grants
                    .iter()
                    .find(|g| &g.id == id)
                    .map(grant_condition)
                    .unwrap_or_default(),
            ),
            Path::KeyPolicy | Path::Delegation | Path::TrustPolicy => (
                None,
                if e.conditional {
                    statement_condition(policy, resource_arn, e)
                } else {
                    BTreeMap::new()
                },
            ),
        };
        match out.iter_mut().find(|o| {
            o.principal.as_deref() == Some(principal.as_str())
                && o.grant == grant
                && o.condition == condition
        }) {
            Some(o) => {
                o.actions.extend(e.actions.iter().cloned());
                o.is_public |= is_public;
            }
            None => out.push(Observed {
                principal: Some(principal),
                actions: e.actions.clone(),
                condition,
                is_public,
                grant,
                error: None,
            }),
        }
    }
    for o in &mut out {
        o.actions.sort();
        o.actions.dedup();
    }
    out
}

/// The principal a finding names for an entry: `*` for anyone, the ARN
/// a policy or grant names for a role, user or session, else the account.
fn principal_of(e: &AccessEntry, is_public: bool) -> String {
    if is_public {
        return "*".to_string();
    }
    let c = &e.principal_class;
    if let Some(provider) = c.strip_prefix("federated identities of ") {
        return provider.to_string();
    }
    if c.starts_with("arn:") && !c.ends_with(":root") {
        return c.clone();
    }
    ferrokms_types::Arn::parse(&e.example_principal)
        .ok()
        .and_then(|a| a.account_id())
        .map_or_else(|| e.example_principal.clone(), |a| a.as_str().to_string())
}

fn grant_condition(g: &ferrokms_reach::Grant) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for ctx in [&g.encryption_context_subset, &g.encryption_context_equals]
        .into_iter()
        .flatten()
    {
        for (k, v) in ctx {
            m.insert(format!("kms:EncryptionContext:{k}"), v.clone());
        }
    }
    if let Some(arn) = &g.source_arn {
        m.insert("aws:SourceArn".to_string(), arn.clone());
    }
    m
}

/// The Condition blocks of the key policy's Allow statements that admit
/// the entry's example request, flattened `key -> values joined by ", "`.
fn statement_condition(
    policy: &Policy,
    key_arn: &str,
    e: &AccessEntry,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let (Ok(principal), Some(Ok(action))) = (
        RequestPrincipal::from_arn(&e.example_principal),
        e.actions.first().map(|a| Action::parse(a.as_str())),
    ) else {
        return out;
    };
    let ctx = ferrokms_reach::context_of(&e.example_context);
    let request = Request::new(principal, action, key_arn)
        .with_context(ctx)
        .with_principal_context();
    for s in policy.statements() {
        if s.effect() != Effect::Allow
            || !evaluate_statement(s, PolicyKind::ResourceBased, &request).applies()
        {
            continue;
        }
        let Some(cond) = s.condition() else { continue };
        for block in cond.blocks() {
            for entry in block.entries() {
                let values: Vec<&str> = entry
                    .values()
                    .iter()
                    .map(ferrokms_policy::ConditionValue::as_str)
                    .collect();
                out.insert(entry.key().as_str().to_string(), values.join(", "));
            }
        }
    }
    out
}

/// One finding as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFinding {
    /// The id ([`finding_id`]).
    pub id: String,
    /// The key ARN.
    pub resource: String,
    /// The key's account.
    pub owner: String,
    /// What was observed.
    pub principal: Option<String>,
    /// The actions.
    pub actions: Vec<String>,
    /// The conditions.
    pub condition: BTreeMap<String, String>,
    /// Public.
    pub is_public: bool,
    /// The grant, for a grant finding.
    pub grant: Option<String>,
    /// The error, for an error finding.
    pub error: Option<String>,
    /// Its status.
    pub status: Status,
    /// First seen (ms since the epoch).
    pub created_ms: i64,
    /// Last change of status or content.
    pub updated_ms: i64,
    /// Last analysis of its key.
    pub analyzed_ms: i64,
}

/// When a key was last analysed, and what it was then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMark {
    /// The snapshot's fingerprint.
    pub fingerprint: String,
    /// When.
    pub analyzed_ms: i64,
}

/// Everything an analyzer keeps: its findings and what it analysed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingsDoc {
    /// Per key ARN, the last analysis.
    pub keys: BTreeMap<String, KeyMark>,
    /// Every finding, every status.
    pub findings: Vec<StoredFinding>,
    /// When anything last changed (ms).
    #[serde(default)]
    pub updated_ms: i64,
}

impl FindingsDoc {
    /// Brings the findings of `key_arn` to `observed` (nothing observed
    /// and no mark: the key is gone). Returns whether anything changed.
    pub fn reconcile(
        &mut self,
        analyzer_arn: &str,
        key_arn: &str,
        owner: &str,
        observed: &[Observed],
        mark: Option<KeyMark>,
        now: i64,
    ) -> bool {
        let new: Vec<(String, &Observed)> = observed
            .iter()
            .map(|o| (finding_id(analyzer_arn, key_arn, o), o))
            .collect();
        let before = self.findings.clone();
        self.findings.retain_mut(|f| {
            if f.resource != key_arn {
                return true;
            }
            f.analyzed_ms = now;
            if new.iter().any(|(id, _)| *id == f.id) {
                if f.status == Status::Resolved {
                    f.status = Status::Active;
                    f.updated_ms = now;
                }
                return true;
            }
            if f.error.is_some() {
                return false;
            }
            if f.status != Status::Resolved {
                f.status = Status::Resolved;
                f.updated_ms = now;
            }
            true
        });
        for (id, o) in new {
            if self.findings.iter().any(|f| f.id == id) {
                continue;
            }
            self.findings.push(StoredFinding {
                id,
                resource: key_arn.to_string(),
                owner: owner.to_string(),
                principal: o.principal.clone(),
                actions: o.actions.clone(),
                condition: o.condition.clone(),
                is_public: o.is_public,
                grant: o.grant.clone(),
                error: o.error.clone(),
                status: Status::Active,
                created_ms: now,
                updated_ms: now,
                analyzed_ms: now,
            });
        }
        match mark {
            Some(m) => {
                self.keys.insert(key_arn.to_string(), m);
            }
            None => {
                self.keys.remove(key_arn);
            }
        }
        let changed = statuses(&before) != statuses(&self.findings);
        if changed {
            self.updated_ms = now;
        }
        changed
    }
}

fn statuses(f: &[StoredFinding]) -> Vec<(&str, Status)> {
    f.iter().map(|f| (f.id.as_str(), f.status)).collect()
}

/// RFC 3339 in UTC with milliseconds.
pub fn iso(ms: i64) -> String {
    let t = ferrokms_policy::Timestamp::from_epoch_seconds(ms.div_euclid(1000)).to_string();
    let base = t.trim_end_matches('Z');
    format!("{base}.{:03}Z", ms.rem_euclid(1000))
}

fn principal_map(f: &StoredFinding) -> Option<Value> {
    f.principal.as_ref().map(|p| {
        // An identity provider of a role's trust policy is `Federated`;
        // accounts, ARNs and `*` are `AWS`.
        let provider = p.contains(":oidc-provider/") || p.contains(":saml-provider/");
        let aws = p == "*"
            || (p.starts_with("arn:") && !provider)
            || p.bytes().all(|b| b.is_ascii_digit());
        if aws || resource_type(&f.resource) != IAM_ROLE {
            json!({ "AWS": p })
        } else {
            json!({ "Federated": p })
        }
    })
}

fn sources(f: &StoredFinding) -> Option<Value> {
    (f.grant.is_none() && f.error.is_none()).then(|| json!([{ "type": "POLICY" }]))
}

/// A finding as `Finding` / `FindingSummary` (ListFindings, GetFinding).
pub fn finding_json(f: &StoredFinding) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), f.id.clone().into());
    if let Some(p) = principal_map(f) {
        m.insert("principal".into(), p);
        m.insert("action".into(), json!(f.actions));
        m.insert("isPublic".into(), f.is_public.into());
    }
    m.insert("resource".into(), f.resource.clone().into());
    m.insert("resourceType".into(), resource_type(&f.resource).into());
    m.insert("condition".into(), json!(f.condition));
    m.insert("createdAt".into(), iso(f.created_ms).into());
    m.insert("analyzedAt".into(), iso(f.analyzed_ms).into());
    m.insert("updatedAt".into(), iso(f.updated_ms).into());
    m.insert("status".into(), f.status.as_str().into());
    m.insert("resourceOwnerAccount".into(), f.owner.clone().into());
    if let Some(e) = &f.error {
        m.insert("error".into(), e.clone().into());
    }
    if let Some(s) = sources(f) {
        m.insert("sources".into(), s);
    }
    Value::Object(m)
}

/// A finding as `FindingSummaryV2` (ListFindingsV2); with `details`, as
/// GetFindingV2's answer.
pub fn finding_v2_json(f: &StoredFinding, details: bool) -> Value {
    let mut m = Map::new();
    m.insert("analyzedAt".into(), iso(f.analyzed_ms).into());
    m.insert("createdAt".into(), iso(f.created_ms).into());
    if let Some(e) = &f.error {
        m.insert("error".into(), e.clone().into());
    }
    m.insert("id".into(), f.id.clone().into());
    m.insert("resource".into(), f.resource.clone().into());
    m.insert("resourceType".into(), resource_type(&f.resource).into());
    m.insert("resourceOwnerAccount".into(), f.owner.clone().into());
    m.insert("status".into(), f.status.as_str().into());
    m.insert("updatedAt".into(), iso(f.updated_ms).into());
    m.insert("findingType".into(), "ExternalAccess".into());
    if details {
        let mut d = Map::new();
        d.insert("condition".into(), json!(f.condition));
        if let Some(p) = principal_map(f) {
            d.insert("principal".into(), p);
            d.insert("action".into(), json!(f.actions));
            d.insert("isPublic".into(), f.is_public.into());
        }
        if let Some(s) = sources(f) {
            d.insert("sources".into(), s);
        }
        m.insert(
            "findingDetails".into(),
            json!([{ "externalAccessDetails": Value::Object(d) }]),
        );
    }
    Value::Object(m)
}

/// The filter keys ferrokms serves (AWS's filter keys for external
/// access findings that apply to KMS keys).
pub const FILTER_KEYS: &[&str] = &[
    "action",
    "error",
    "findingType",
    "id",
    "isPublic",
    "principal.AWS",
    "resource",
    "resourceOwnerAccount",
    "resourceType",
    "status",
];

/// The values of a finding's filter field (`None`: absent).
fn field(f: &StoredFinding, name: &str) -> Option<Vec<String>> {
    match name {
        "id" => Some(vec![f.id.clone()]),
        "status" => Some(vec![f.status.as_str().to_string()]),
        "resource" => Some(vec![f.resource.clone()]),
        "resourceType" => Some(vec![resource_type(&f.resource).to_string()]),
        "resourceOwnerAccount" => Some(vec![f.owner.clone()]),
        "findingType" => Some(vec!["ExternalAccess".to_string()]),
        "isPublic" => f.principal.as_ref().map(|_| vec![f.is_public.to_string()]),
        "principal.AWS" => f.principal.clone().map(|p| vec![p]),
        "action" => (!f.actions.is_empty()).then(|| f.actions.clone()),
        "error" => f.error.clone().map(|e| vec![e]),
        other => other
            .strip_prefix("condition.")
            .and_then(|k| f.condition.get(k))
            .map(|v| vec![v.clone()]),
    }
}

/// One criterion of a filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Criterion {
    /// Some value equals one of these.
    pub eq: Option<Vec<String>>,
    /// No value equals any of these.
    pub neq: Option<Vec<String>>,
    /// Some value contains one of these.
    pub contains: Option<Vec<String>>,
    /// The field is present (or absent).
    pub exists: Option<bool>,
}

/// The model's limit on a criterion's value list.
const MAX_CRITERION_VALUES: usize = 20;
/// Criteria one filter may hold.
const MAX_CRITERIA: usize = 20;

/// Reads the `filter` member (FilterCriteriaMap).
pub fn parse_filter(body: &Map<String, Value>) -> Result<Vec<(String, Criterion)>, AnalyzerError> {
    let mut out = Vec::new();
    let filter = match body.get("filter") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(AnalyzerError::field("filter", "Member must be a map")),
    };
    if filter.len() > MAX_CRITERIA {
        return Err(AnalyzerError::field(
            "filter",
            format!("Member must have at most {MAX_CRITERIA} entries"),
        ));
    }
    for (k, v) in filter {
        if !FILTER_KEYS.contains(&k.as_str()) && !k.starts_with("condition.") {
            return Err(AnalyzerError::validation(
                ValidationReason::FieldValidationFailed,
                format!(
                    "Invalid filter key {k}: ferrokms filters on [{}] and condition.KEY",
                    FILTER_KEYS.join(", ")
                ),
            ));
        }
        let Value::Object(c) = v else {
            return Err(AnalyzerError::field(
                "filter",
                "A criterion must be a structure",
            ));
        };
        let list = |name: &str| -> Result<Option<Vec<String>>, AnalyzerError> {
            match c.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => {
                    if a.is_empty() || a.len() > MAX_CRITERION_VALUES {
                        return Err(AnalyzerError::field(
                            "filter",
                            format!("{name} must have 1 to {MAX_CRITERION_VALUES} values"),
                        ));
                    }
                    a.iter()
                        .map(|x| {
                            x.as_str().map(str::to_string).ok_or_else(|| {
                                AnalyzerError::field(
                                    "filter",
                                    format!("{name} values must be strings"),
                                )
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .map(Some)
                }
                Some(_) => Err(AnalyzerError::field(
                    "filter",
                    format!("{name} must be a list"),
                )),
            }
        };
        let crit = Criterion {
            eq: list("eq")?,
            neq: list("neq")?,
            contains: list("contains")?,
            exists: match c.get("exists") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => return Err(AnalyzerError::field("filter", "exists must be a boolean")),
            },
        };
        out.push((k.clone(), crit));
    }
    Ok(out)
}

/// Whether a finding passes every criterion.
pub fn matches(f: &StoredFinding, filter: &[(String, Criterion)]) -> bool {
    filter.iter().all(|(k, c)| {
        let vals = field(f, k);
        let has = |want: &String| vals.as_ref().is_some_and(|v| v.iter().any(|x| x == want));
        c.eq.as_ref().is_none_or(|e| e.iter().any(has))
            && c.neq.as_ref().is_none_or(|n| !n.iter().any(has))
            && c.contains.as_ref().is_none_or(|n| {
                n.iter().any(|s| {
                    vals.as_ref()
                        .is_some_and(|v| v.iter().any(|x| x.contains(s.as_str())))
                })
            })
            && c.exists.is_none_or(|e| e == vals.is_some())
    })
}

/// The attributes a sort may name.
pub const SORT_KEYS: &[&str] = &[
    "analyzedAt",
    "createdAt",
    "id",
    "resource",
    "resourceOwnerAccount",
    "status",
    "updatedAt",
];

/// Sorts by the `sort` member (SortCriteria); by default, by `createdAt`
/// then id, ascending.
pub fn sort(
    findings: &mut [&StoredFinding],
    body: &Map<String, Value>,
) -> Result<(), AnalyzerError> {
    let (attr, desc) = match body.get("sort") {
        None | Some(Value::Null) => ("createdAt".to_string(), false),
        Some(Value::Object(s)) => {
            let attr = match s.get("attributeName") {
                None | Some(Value::Null) => "createdAt",
                Some(Value::String(a)) if SORT_KEYS.contains(&a.as_str()) => a.as_str(),
                Some(_) => {
                    return Err(AnalyzerError::field(
                        "sort",
                        format!("attributeName must be one of [{}]", SORT_KEYS.join(", ")),
                    ))
                }
            };
            let desc = match s.get("orderBy") {
                None | Some(Value::Null) => false,
                Some(Value::String(o)) if o == "ASC" => false,
                Some(Value::String(o)) if o == "DESC" => true,
                Some(_) => {
                    return Err(AnalyzerError::field(
                        "sort",
                        "orderBy: Member must satisfy enum value set: [ASC, DESC]",
                    ))
                }
            };
            (attr.to_string(), desc)
        }
        Some(_) => return Err(AnalyzerError::field("sort", "Member must be a structure")),
    };
    let key = |f: &StoredFinding| -> (String, i64) {
        match attr.as_str() {
            "analyzedAt" => (String::new(), f.analyzed_ms),
            "updatedAt" => (String::new(), f.updated_ms),
            "id" => (f.id.clone(), 0),
            "resource" => (f.resource.clone(), 0),
            "resourceOwnerAccount" => (f.owner.clone(), 0),
            "status" => (f.status.as_str().to_string(), 0),
            _ => (String::new(), f.created_ms),
        }
    };
    findings.sort_by(|a, b| {
        let o = key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id));
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(principal: &str, actions: &[&str]) -> Observed {
        Observed {
            principal: Some(principal.into()),
            actions: actions.iter().map(|a| (*a).to_string()).collect(),
            condition: BTreeMap::new(),
            is_public: principal == "*",
            grant: None,
            error: None,
        }
    }

    const AN: &str = "arn:aws:access-analyzer:us-east-1:111122223333:analyzer/a";
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

    #[test]
    fn ids_are_stable_and_tell_findings_apart() {
        let a = obs("222233334444", &["kms:Decrypt"]);
        let id = finding_id(AN, KEY, &a);
        assert_eq!(id, finding_id(AN, KEY, &a.clone()));
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(
            id,
            finding_id(AN, KEY, &obs("222233334444", &["kms:Encrypt"]))
        );
        assert_ne!(id, finding_id(AN, KEY, &obs("*", &["kms:Decrypt"])));
        assert_ne!(
            id,
            finding_id(
                "arn:aws:access-analyzer:us-east-1:111122223333:analyzer/b",
                KEY,
                &a
            )
        );
        let mut g = a.clone();
        g.grant = Some("g1".into());
        assert_ne!(id, finding_id(AN, KEY, &g));
        let mut c = a.clone();
        c.condition
            .insert("aws:SourceIp".into(), "10.0.0.0/8".into());
        assert_ne!(id, finding_id(AN, KEY, &c));
    }

    #[test]
    fn reconcile_keeps_ids_archive_and_created_and_resolves_what_went_away() {
        let mut doc = FindingsDoc::default();
        let a = obs("222233334444", &["kms:Decrypt"]);
        let p = obs("*", &["kms:Decrypt"]);
        assert!(doc.reconcile(AN, KEY, "111122223333", &[a.clone(), p.clone()], None, 1000));
        assert_eq!(doc.findings.len(), 2);
        let id_a = finding_id(AN, KEY, &a);
        doc.findings
            .iter_mut()
            .find(|f| f.id == id_a)
            .unwrap()
            .status = Status::Archived;
        // Same access: nothing changes but analyzedAt.
        assert!(!doc.reconcile(AN, KEY, "111122223333", &[a.clone(), p.clone()], None, 2000));
        let fa = doc.findings.iter().find(|f| f.id == id_a).unwrap();
        assert_eq!(
            (fa.status, fa.created_ms, fa.analyzed_ms),
            (Status::Archived, 1000, 2000)
        );
        // The public access goes away: RESOLVED, same id; archived one stays archived.
        assert!(doc.reconcile(
            AN,
            KEY,
            "111122223333",
            std::slice::from_ref(&a),
            None,
            3000
        ));
        let fp = doc.findings.iter().find(|f| f.is_public).unwrap();
        assert_eq!(
            (fp.status, fp.updated_ms, fp.created_ms),
            (Status::Resolved, 3000, 1000)
        );
        // It returns: ACTIVE again, same id and createdAt.
        assert!(doc.reconcile(AN, KEY, "111122223333", &[a.clone(), p.clone()], None, 4000));
        let fp = doc.findings.iter().find(|f| f.is_public).unwrap();
        assert_eq!(
            (fp.status, fp.created_ms, fp.updated_ms),
            (Status::Active, 1000, 4000)
        );
        assert_eq!(doc.findings.len(), 2);
        // An error finding goes away entirely once the key analyses.
        let err = Observed::error("unknown: too big".into());
        doc.reconcile(AN, KEY, "111122223333", &[err], None, 5000);
        assert!(doc.findings.iter().any(|f| f.error.is_some()));
        assert!(doc
            .findings
            .iter()
            .filter(|f| f.error.is_none())
            .all(|f| f.status == Status::Resolved));
        doc.reconcile(AN, KEY, "111122223333", &[a], None, 6000);
        assert!(doc.findings.iter().all(|f| f.error.is_none()));
        let fa = doc.findings.iter().find(|f| f.id == id_a).unwrap();
        assert_eq!(fa.status, Status::Active, "resolved then back: ACTIVE");
    }

    #[test]
    fn filters_and_sorts() {
        let mut doc = FindingsDoc::default();
        doc.reconcile(
            AN,
            KEY,
            "111122223333",
            &[
                obs("222233334444", &["kms:Decrypt"]),
                obs("*", &["kms:Encrypt"]),
            ],
            None,
            1000,
        );
        let f = |v: Value| parse_filter(v.as_object().unwrap()).unwrap();
        let n =
            |flt: &[(String, Criterion)]| doc.findings.iter().filter(|x| matches(x, flt)).count();
        assert_eq!(n(&f(json!({"filter": {"isPublic": {"eq": ["true"]}}}))), 1);
        assert_eq!(
            n(&f(json!({"filter": {"principal.AWS": {"neq": ["*"]}}}))),
            1
        );
        assert_eq!(
            n(&f(json!({"filter": {"resource": {"contains": ["key/k"]}}}))),
            2
        );
        assert_eq!(
            n(&f(
                json!({"filter": {"error": {"exists": false}, "status": {"eq": ["ACTIVE"]}}})
            )),
            2
        );
        assert_eq!(
            n(&f(
                json!({"filter": {"resourceOwnerAccount": {"eq": ["999999999999"]}}})
            )),
            0
        );
        assert!(parse_filter(
            json!({"filter": {"nope": {"eq": ["x"]}}})
                .as_object()
                .unwrap()
        )
        .is_err());
        assert!(parse_filter(json!({"filter": {"id": {"eq": []}}}).as_object().unwrap()).is_err());
        let mut all: Vec<&StoredFinding> = doc.findings.iter().collect();
        sort(
            &mut all,
            json!({"sort": {"attributeName": "id", "orderBy": "DESC"}})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        assert!(all[0].id > all[1].id);
        assert!(sort(
            &mut all,
            json!({"sort": {"orderBy": "UP"}}).as_object().unwrap()
        )
        .is_err());
    }

    #[test]
    fn iso_has_milliseconds() {
        assert_eq!(iso(1_500), "1970-01-01T00:00:01.500Z");
    }

    fn snap(policy: Value, grants: Vec<ferrokms_reach::Grant>) -> KeySnapshot {
        KeySnapshot::new(
            KEY,
            policy.to_string(),
            grants,
            Vec::new(),
            "Enabled".into(),
        )
    }

    fn statement(principal: &str, action: &str) -> Value {
        json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"})
    }

    #[test]
    fn observe_public_cross_account_conditional_and_grant_access() {
        let own = statement("arn:aws:iam::111122223333:root", "kms:*");
        // Only the own account: nothing external.
        assert!(observe(&snap(
            json!({"Version": "2012-10-17", "Statement": [own.clone()]}),
            vec![]
        ))
        .is_empty());
        // Public.
        let got = observe(&snap(
            json!({"Version": "2012-10-17", "Statement": [own.clone(), statement("*", "kms:Decrypt")]}),
            vec![],
        ));
        let public: Vec<&Observed> = got.iter().filter(|o| o.is_public).collect();
        assert_eq!(public.len(), 1, "{got:?}");
        assert_eq!(public[0].principal.as_deref(), Some("*"));
        assert_eq!(public[0].actions, ["kms:Decrypt"]);
        // Another account, with a condition.
        let mut other = statement("arn:aws:iam::222233334444:root", "kms:Encrypt");
        other["Condition"] = json!({"StringEquals": {"kms:EncryptionContext:team": "blue"}});
        let got = observe(&snap(
            json!({"Version": "2012-10-17", "Statement": [own.clone(), other]}),
            vec![],
        ));
        assert!(!got.is_empty(), "{got:?}");
        assert!(
            got.iter()
                .all(|o| o.principal.as_deref() == Some("222233334444") && !o.is_public),
            "{got:?}"
        );
        assert!(
            got.iter().all(|o| o
                .condition
                .get("kms:EncryptionContext:team")
                .map(String::as_str)
                == Some("blue")),
            "{got:?}"
        );
        assert!(got.iter().all(|o| o.grant.is_none()));
        // A grant to another account's role.
        let grant = ferrokms_reach::Grant {
            id: "g1".into(),
            grantee: ferrokms_reach::Grantee::Aws("arn:aws:iam::333344445555:role/app".into()),
            operations: vec!["Decrypt".into()],
            encryption_context_subset: Some([("app".to_string(), "x".to_string())].into()),
            encryption_context_equals: None,
            source_arn: None,
        };
        let got = observe(&snap(
            json!({"Version": "2012-10-17", "Statement": [own]}),
            vec![grant],
        ));
        let g: Vec<&Observed> = got
            .iter()
            .filter(|o| o.grant.as_deref() == Some("g1"))
            .collect();
        assert_eq!(g.len(), 1, "{got:?}");
        assert_eq!(
            g[0].principal.as_deref(),
            Some("arn:aws:iam::333344445555:role/app")
        );
        assert!(g[0].actions.contains(&"kms:Decrypt".to_string()));
        assert_eq!(
            g[0].condition
                .get("kms:EncryptionContext:app")
                .map(String::as_str),
            Some("x")
        );
    }

    #[test]
    fn a_policy_that_does_not_parse_is_an_error_finding() {
        let got = observe(&KeySnapshot::new(
            KEY,
            "{not json".into(),
            vec![],
            vec![],
            "Enabled".into(),
        ));
        assert_eq!(got.len(), 1);
        assert!(got[0].error.is_some() && got[0].principal.is_none());
    }
}
