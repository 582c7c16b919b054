//! Account analyzers: CreateAnalyzer, GetAnalyzer, ListAnalyzers,
//! DeleteAnalyzer and the analyzer's tags (TagResource, UntagResource,
//! ListTagsForResource), and the dispatch of every Access Analyzer
//! operation ferrokms serves ([`Analyzers::call`]).
//!
//! An account's analyzers in one Region are one typed document of the
//! store (kind `analyzers`, id `ACCOUNT/REGION`), read by its id on each
//! request: the quota keeps it small, and no request reads another
//! account's. AWS's
//! quota is one ACCOUNT analyzer per account and Region; ORGANIZATION
//! analyzers need AWS Organizations, which ferrokms does not serve, and
//! the unused- and internal-access analyzers need findings ferrokms does
//! not compute yet: all are refused with a ValidationException saying so.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_authz::catalog::Operation;
use ferrokms_authz::Caller;
use ferrokms_iam::Directory;
use ferrokms_kms::Kms;
use ferrokms_policy::{Context, ContextValue};
use ferrokms_store::{Change, Store};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::validate::{self, PolicyType};
use crate::{analyzer_arn, authorize, catalog, AnalyzerError, ValidationReason};

/// The store's document kind for analyzers.
pub const ANALYZER_KIND: &str = "analyzers";
/// What ConflictException and the others name the resource.
const RESOURCE_TYPE: &str = "Analyzer";
/// Tags an analyzer may hold (AWS's limit for a resource's tags).
const MAX_TAGS: usize = 50;
/// ValidatePolicy's limit on a document, in characters other than
/// whitespace (AWS's: cfn-policy-validator checks it before calling).
pub const MAX_POLICY_CHARS: usize = 32_768;
/// The model's analyzer types.
const TYPES: &[&str] = &[
    "ACCOUNT",
    "ORGANIZATION",
    "ACCOUNT_UNUSED_ACCESS",
    "ORGANIZATION_UNUSED_ACCESS",
    "ACCOUNT_INTERNAL_ACCESS",
    "ORGANIZATION_INTERNAL_ACCESS",
];

fn type_enum_message() -> String {
    format!("Member must satisfy enum value set: [{}]", TYPES.join(", "))
}

/// The largest page a list answers.
const MAX_PAGE: usize = 1000;

/// One analyzer as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct StoredAnalyzer {
    pub(crate) arn: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    kind: String,
    pub(crate) created_ms: i64,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// The CreateAnalyzer client token, for idempotent retries.
    #[serde(default)]
    client_token: Option<String>,
}

impl StoredAnalyzer {
    fn summary(&self) -> Value {
        let created =
            ferrokms_policy::Timestamp::from_epoch_seconds(self.created_ms.div_euclid(1000));
        json!({
            "arn": self.arn,
            "name": self.name,
            "type": self.kind,
            // RFC 3339 in UTC (the model's iso8601 timestamp).
            "createdAt": format!("{created}Z").replace("ZZ", "Z"),
            "status": "ACTIVE",
            "tags": self.tags,
        })
    }

    fn keys(&self) -> Context {
        let mut ctx = Context::new();
        for (k, v) in &self.tags {
            ctx.insert(&format!("aws:ResourceTag/{k}"), v.as_str());
        }
        ctx
    }
}

/// A request's inputs, as the REST binding carries them.
pub struct Input<'a> {
    /// The path labels, in template order.
    pub labels: &'a [String],
    /// The query string's parameters.
    pub query: &'a [(String, String)],
    /// The JSON body (an empty body is an empty object).
    pub body: &'a Map<String, Value>,
}

impl Input<'_> {
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query member that must be there (`analyzerArn` of the GET
    /// operations).
    pub(crate) fn required_query(&self, name: &str) -> Result<&str, AnalyzerError> {
        self.query(name)
            .ok_or_else(|| AnalyzerError::field(name, "Member must not be null"))
    }

    fn query_all(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub(crate) fn label(&self, i: usize) -> &str {
        self.labels.get(i).map_or("", String::as_str)
    }

    pub(crate) fn string(&self, name: &str) -> Result<Option<&str>, AnalyzerError> {
        match self.body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(AnalyzerError::field(name, "Member must be a string")),
        }
    }

    pub(crate) fn required(&self, name: &str) -> Result<&str, AnalyzerError> {
        self.string(name)?
            .ok_or_else(|| AnalyzerError::field(name, "Member must not be null"))
    }

    /// The `maxResults` of the query string (1 to 1,000; absent: 1,000).
    pub(crate) fn max_results(&self) -> Result<usize, AnalyzerError> {
        match self.query("maxResults") {
            None => Ok(MAX_PAGE),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n.min(MAX_PAGE)),
                _ => Err(AnalyzerError::field(
                    "maxResults",
                    "Member must be an integer greater than or equal to 1",
                )),
            },
        }
    }

    fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, AnalyzerError> {
        let mut out = BTreeMap::new();
        match self.body.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let Value::String(v) = v else {
                        return Err(AnalyzerError::field(name, "Tag values must be strings"));
                    };
                    check_tag(k, v)?;
                    out.insert(k.clone(), v.clone());
                }
            }
            Some(_) => {
                return Err(AnalyzerError::field(
                    name,
                    "Member must be a map of strings",
                ))
            }
        }
        if out.len() > MAX_TAGS {
            return Err(AnalyzerError::field(
                name,
                format!("Member must have at most {MAX_TAGS} entries"),
            ));
        }
        Ok(out)
    }
}

fn tag_chars_ok(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
}

fn check_tag(k: &str, v: &str) -> Result<(), AnalyzerError> {
    let key_len = k.chars().count();
    if !(1..=128).contains(&key_len) || !tag_chars_ok(k) {
        return Err(AnalyzerError::field(
            "tags",
            "Tag keys must be 1 to 128 Unicode letters, digits, whitespace or _ . : / = + - @",
        ));
    }
    if k.to_ascii_lowercase().starts_with("aws:") {
        return Err(AnalyzerError::field(
            "tags",
            "Tag keys may not begin with aws:",
        ));
    }
    if v.chars().count() > 256 || !tag_chars_ok(v) {
        return Err(AnalyzerError::field(
            "tags",
            "Tag values must be 0 to 256 Unicode letters, digits, whitespace or _ . : / = + - @",
        ));
    }
    Ok(())
}

/// An analyzer name as the model's pattern has it: `[A-Za-z_][A-Za-z0-9_.-]*`, 1 to 255.
fn check_name(field: &str, name: &str) -> Result<(), AnalyzerError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || name.len() > 255
        || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(AnalyzerError::field(
            field,
            "Member must satisfy regular expression pattern: [A-Za-z_][A-Za-z0-9_.-]*, with 1 to 255 characters",
        ));
    }
    Ok(())
}

fn request_tag_keys(tags: &BTreeMap<String, String>) -> Context {
    let mut ctx = Context::new();
    if tags.is_empty() {
        return ctx;
    }
    for (k, v) in tags {
        ctx.insert(&format!("aws:RequestTag/{k}"), v.as_str());
    }
    ctx.insert_multi(
        "aws:TagKeys",
        tags.keys()
            .map(|k| ContextValue::from(k.as_str()))
            .collect(),
    );
    ctx
}

/// The Access Analyzer service: analyzers in the store, ValidatePolicy.
pub struct Analyzers {
    pub(crate) store: Arc<dyn Store>,
    /// The keys the analyzers' findings are about.
    pub(crate) kms: Arc<Kms>,
    /// The identities of the key's account (the identity-side policies of
    /// the analysis's known account).
    pub(crate) directory: Arc<Directory>,
    /// Orders the check-then-write of CreateAnalyzer, the tag updates and
    /// the findings' upkeep on this node (several nodes: the cluster write
    /// lock orders them).
    pub(crate) writes: parking_lot::Mutex<()>,
    /// Runs a write section under the cluster write lock (several nodes on
    /// a shared store), for the operations of
    /// [`catalog::TAKES_OWN_LOCK`]; `None` on a store of one node.
    writer: Option<Box<ClusterWriter>>,
    /// One refresh of an analyzer's findings at a time on this node
    /// (striped by the findings document's id): concurrent calls for the
    /// same analyzer wait for the running analysis and then find nothing
    /// left to analyse, instead of each running reach on the same keys.
    refreshing: [parking_lot::Mutex<()>; REFRESH_STRIPES],
}

/// Stripes of [`Analyzers::refreshing`].
const REFRESH_STRIPES: usize = 16;

/// Runs its argument under the cluster write lock.
pub type ClusterWriter =
    dyn Fn(&mut dyn FnMut()) -> Result<(), ferrokms_store::StoreError> + Send + Sync;

impl Analyzers {
    /// The service over `store`, analysing the keys of `kms` (with the
    /// identities of `directory`).
    pub fn new(store: Arc<dyn Store>, kms: Arc<Kms>, directory: Arc<Directory>) -> Self {
        Analyzers {
            store,
            kms,
            directory,
            writes: parking_lot::Mutex::new(()),
            writer: None,
            refreshing: std::array::from_fn(|_| parking_lot::Mutex::new(())),
        }
    }

    /// The refresh lock of the findings document `id` (see `refreshing`).
    pub(crate) fn refresh_lock(&self, id: &str) -> parking_lot::MutexGuard<'_, ()> {
        let stripe = id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        self.refreshing[stripe % REFRESH_STRIPES].lock()
    }

    /// The service on a shared store: `writer` runs a section under the
    /// cluster write lock.
    #[must_use]
    pub fn with_cluster_writer(mut self, writer: Box<ClusterWriter>) -> Self {
        self.writer = Some(writer);
        self
    }

    /// Runs `f` exclusively: under the cluster write lock (several nodes),
    /// then this node's analyzer lock — the order every other analyzer
    /// write takes them in (the pipeline's cluster lock, then `writes`).
    /// For the short read-modify-write after an analysis made without any
    /// lock.
    pub(crate) fn exclusive<T>(
        &self,
        f: impl FnOnce() -> Result<T, AnalyzerError>,
    ) -> Result<T, AnalyzerError> {
        let mut f = Some(f);
        let mut out: Option<Result<T, AnalyzerError>> = None;
        let mut section = || {
            if let Some(f) = f.take() {
                let _writing = self.writes.lock();
                out = Some(f());
            }
        };
        match &self.writer {
            Some(w) => w(&mut section)?,
            None => section(),
        }
        out.unwrap_or_else(|| {
            Err(AnalyzerError::Corrupt(
                "the write section did not run".into(),
            ))
        })
    }

    /// Runs the operation `name` (a route of the service model) for `caller`.
    /// An operation of the model that ferrokms does not serve is a
    /// ValidationException with reason `notSupported`.
    pub fn call(
        &self,
        caller: &Caller,
        name: &str,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let Some(op) = catalog::find(name) else {
            return Err(AnalyzerError::validation(
                ValidationReason::NotSupported,
                format!("{name} is not implemented by this version of ferrokms (see docs/analysis.md, \"Access Analyzer API\")."),
            ));
        };
        match name {
            "ValidatePolicy" => self.validate_policy(caller, op, input),
            "CheckNoPublicAccess" => crate::checks::check_no_public_access(caller, op, input),
            "CheckAccessNotGranted" => crate::checks::check_access_not_granted(caller, op, input),
            "CheckNoNewAccess" => crate::checks::check_no_new_access(caller, op, input),
            "CreateAnalyzer" => self.create_analyzer(caller, op, input),
            "GetAnalyzer" => self.get_analyzer(caller, op, input),
            "ListAnalyzers" => self.list_analyzers(caller, op, input),
            "DeleteAnalyzer" => self.delete_analyzer(caller, op, input),
            "TagResource" => self.tag_resource(caller, op, input),
            "UntagResource" => self.untag_resource(caller, op, input),
            "ListTagsForResource" => self.list_tags(caller, op, input),
            "ListFindings" => self.list_findings(caller, op, input, false),
            "ListFindingsV2" => self.list_findings(caller, op, input, true),
            "GetFinding" => self.get_finding(caller, op, input, false),
            "GetFindingV2" => self.get_finding(caller, op, input, true),
            "UpdateFindings" => self.update_findings(caller, op, input),
            "GetFindingsStatistics" => self.findings_statistics(caller, op, input),
            "CreateAccessPreview" => self.create_access_preview(caller, op, input),
            "GetAccessPreview" => self.get_access_preview(caller, op, input),
            "ListAccessPreviews" => self.list_access_previews(caller, op, input),
            "ListAccessPreviewFindings" => self.list_access_preview_findings(caller, op, input),
            other => Err(AnalyzerError::validation(
                ValidationReason::UnknownOperation,
                format!("Unknown operation {other}"),
            )),
        }
    }

    /// Deletes every analyzer of every account in one batch (`serve
    /// --dev`'s reset of everything); returns how many (account, Region)
    /// documents held them.
    pub fn reset_all(&self) -> Result<usize, AnalyzerError> {
        let _writing = self.writes.lock();
        let changes = self.store.deletions_of(&[
            ANALYZER_KIND,
            crate::account::FINDINGS_KIND,
            crate::previews::PREVIEW_KIND,
            crate::previews::PREVIEW_INDEX_KIND,
        ])?;
        self.store.apply(&changes)?;
        Ok(changes.len())
    }

    /// The document that holds an account's analyzers in one Region.
    pub(crate) fn id(caller: &Caller) -> String {
        format!("{}/{}", caller.account.as_str(), caller.region.as_str())
    }

    fn load(&self, caller: &Caller, name: &str) -> Result<Option<StoredAnalyzer>, AnalyzerError> {
        Ok(self.load_all(caller)?.into_iter().find(|a| a.name == name))
    }

    /// The caller's account's analyzers in the request's Region, by name:
    /// one document, read by its id (the quota keeps it small).
    fn load_all(&self, caller: &Caller) -> Result<Vec<StoredAnalyzer>, AnalyzerError> {
        let Some(body) = self.store.get(ANALYZER_KIND, &Self::id(caller))? else {
            return Ok(Vec::new());
        };
        let mut all: Vec<StoredAnalyzer> =
            serde_json::from_slice(&body).map_err(|e| AnalyzerError::Corrupt(e.to_string()))?;
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Writes the account's analyzers in the Region (none: the document
    /// goes). Callers hold `writes`.
    fn store_all(&self, caller: &Caller, all: &[StoredAnalyzer]) -> Result<(), AnalyzerError> {
        let id = Self::id(caller);
        let change = if all.is_empty() {
            Change::Delete {
                kind: ANALYZER_KIND,
                id,
            }
        } else {
            Change::Put {
                kind: ANALYZER_KIND,
                id,
                body: serde_json::to_vec(all).map_err(|e| AnalyzerError::Corrupt(e.to_string()))?,
            }
        };
        self.store.apply(&[change])?;
        Ok(())
    }

    /// Creates or replaces one analyzer. Callers hold `writes`.
    fn save(&self, caller: &Caller, a: &StoredAnalyzer) -> Result<(), AnalyzerError> {
        let mut all = self.load_all(caller)?;
        all.retain(|o| o.name != a.name);
        all.push(a.clone());
        self.store_all(caller, &all)
    }

    pub(crate) fn not_found(name: &str) -> AnalyzerError {
        AnalyzerError::NotFound {
            message: format!("Analyzer {name} not found."),
            resource_id: name.to_string(),
            resource_type: RESOURCE_TYPE,
        }
    }

    fn validate_policy(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        authorize(caller, op, "*", &Context::new())?;
        let document = input.required("policyDocument")?;
        let ty = input.required("policyType")?;
        let ty = PolicyType::parse(ty).ok_or_else(|| {
            AnalyzerError::field(
                "policyType",
                format!(
                    "Member must satisfy enum value set: [{}]",
                    PolicyType::VALUES.join(", ")
                ),
            )
        })?;
        let resource_type = input.string("validatePolicyResourceType")?;
        if let Some(rt) = resource_type {
            if !validate::RESOURCE_TYPES.contains(&rt) {
                return Err(AnalyzerError::field(
                    "validatePolicyResourceType",
                    format!(
                        "Member must satisfy enum value set: [{}]",
                        validate::RESOURCE_TYPES.join(", ")
                    ),
                ));
            }
            if ty != PolicyType::Resource {
                return Err(AnalyzerError::field(
                    "validatePolicyResourceType",
                    "A resource type may only be given for policyType RESOURCE_POLICY",
                ));
            }
        }
        if let Some(locale) = input.string("locale")? {
            const LOCALES: &[&str] = &[
                "DE", "EN", "ES", "FR", "IT", "JA", "KO", "PT_BR", "ZH_CN", "ZH_TW",
            ];
            if !LOCALES.contains(&locale) {
                return Err(AnalyzerError::field(
                    "locale",
                    format!(
                        "Member must satisfy enum value set: [{}]",
                        LOCALES.join(", ")
                    ),
                ));
            }
        }
        let chars = document.chars().filter(|c| !c.is_whitespace()).count();
        if chars > MAX_POLICY_CHARS {
            return Err(AnalyzerError::field(
                "policyDocument",
                format!("The policy has {chars} characters other than whitespace, more than the maximum of {MAX_POLICY_CHARS}"),
            ));
        }
        let max = input.max_results()?;
        let findings = validate::validate_policy(document, ty, resource_type);
        let start = match input.query("nextToken") {
            None => 0,
            Some(t) => t
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= findings.len())
                .ok_or_else(|| AnalyzerError::field("nextToken", "Invalid pagination token"))?,
        };
        let end = (start + max).min(findings.len());
        let mut out = json!({ "findings": &findings[start..end] });
        if end < findings.len() {
            out["nextToken"] = end.to_string().into();
        }
        Ok(out)
    }

    fn create_analyzer(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let name = input.required("analyzerName")?;
        check_name("analyzerName", name)?;
        let kind = input.required("type")?;
        let tags = input.tags("tags")?;
        let arn = analyzer_arn(caller, &caller.account, name);
        authorize(caller, op, &arn, &request_tag_keys(&tags))?;
        match kind {
            "ACCOUNT" => {}
            "ORGANIZATION" | "ORGANIZATION_UNUSED_ACCESS" | "ORGANIZATION_INTERNAL_ACCESS" => {
                return Err(AnalyzerError::validation(
                    ValidationReason::NotSupported,
                    format!("An analyzer of type {kind} needs the account to be the management account (or a delegated administrator) of an organization, and this account is not in one: ferrokms does not serve AWS Organizations. Use type ACCOUNT."),
                ))
            }
            "ACCOUNT_UNUSED_ACCESS" | "ACCOUNT_INTERNAL_ACCESS" => {
                return Err(AnalyzerError::validation(
                    ValidationReason::NotSupported,
                    format!("Analyzers of type {kind} are not implemented by this version of ferrokms. Use type ACCOUNT."),
                ))
            }
            _ => return Err(AnalyzerError::field("type", type_enum_message())),
        }
        if input
            .body
            .get("archiveRules")
            .is_some_and(|r| r.as_array().is_none_or(|a| !a.is_empty()))
        {
            return Err(AnalyzerError::validation(
                ValidationReason::NotSupported,
                "Archive rules are not implemented by this version of ferrokms.",
            ));
        }
        if input
            .body
            .get("configuration")
            .is_some_and(|c| !c.is_null())
        {
            return Err(AnalyzerError::field(
                "configuration",
                "A configuration is only for unused- and internal-access analyzers",
            ));
        }
        let client_token = input.string("clientToken")?.map(str::to_string);
        let _writing = self.writes.lock();
        let existing = self.load_all(caller)?;
        if let Some(same) = existing.iter().find(|a| a.name == name) {
            if client_token.is_some() && same.client_token == client_token {
                return Ok(json!({ "arn": same.arn }));
            }
            return Err(AnalyzerError::Conflict {
                message: format!("An analyzer named {name} already exists."),
                resource_id: name.to_string(),
                resource_type: RESOURCE_TYPE,
            });
        }
        if let Some(other) = existing.iter().find(|a| a.kind == "ACCOUNT") {
            return Err(AnalyzerError::QuotaExceeded {
                message: format!(
                    "The account already has an analyzer of type ACCOUNT in this Region ({}): the quota is one.",
                    other.name
                ),
                resource_id: name.to_string(),
                resource_type: RESOURCE_TYPE,
            });
        }
        let analyzer = StoredAnalyzer {
            arn: arn.clone(),
            name: name.to_string(),
            kind: kind.to_string(),
            created_ms: now_ms(),
            tags,
            client_token,
        };
        self.save(caller, &analyzer)?;
        Ok(json!({ "arn": arn }))
    }

    /// Authorizes an operation on a named analyzer (with its tags as
    /// `aws:ResourceTag/*` when it exists), then finds it.
    fn authorized(
        &self,
        caller: &Caller,
        op: &Operation,
        name: &str,
        extra: Context,
    ) -> Result<StoredAnalyzer, AnalyzerError> {
        check_name("analyzerName", name)?;
        let found = self.load(caller, name)?;
        let mut ctx = found.as_ref().map(StoredAnalyzer::keys).unwrap_or_default();
        for e in extra.iter() {
            match &e.values {
                ferrokms_policy::ContextValues::Single(v) => ctx.insert(&e.name, v.clone()),
                ferrokms_policy::ContextValues::Multi(vs) => ctx.insert_multi(&e.name, vs.clone()),
            }
        }
        authorize(
            caller,
            op,
            &analyzer_arn(caller, &caller.account, name),
            &ctx,
        )?;
        found.ok_or_else(|| Self::not_found(name))
    }

    fn get_analyzer(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let a = self.authorized(caller, op, input.label(0), Context::new())?;
        Ok(json!({ "analyzer": a.summary() }))
    }

    fn list_analyzers(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        authorize(caller, op, "*", &Context::new())?;
        let max = input.max_results()?;
        let kind = input.query("type");
        if let Some(k) = kind {
            if !TYPES.contains(&k) {
                return Err(AnalyzerError::field("type", type_enum_message()));
            }
        }
        let all: Vec<StoredAnalyzer> = self
            .load_all(caller)?
            .into_iter()
            .filter(|a| kind.is_none_or(|k| a.kind == k))
            .collect();
        let start = match input.query("nextToken") {
            None => 0,
            Some(t) => {
                check_name("nextToken", t)?;
                all.iter()
                    .position(|a| a.name.as_str() >= t)
                    .unwrap_or(all.len())
            }
        };
        let end = (start + max).min(all.len());
        let mut out = json!({
            "analyzers": all[start..end].iter().map(StoredAnalyzer::summary).collect::<Vec<_>>()
        });
        if let Some(next) = all.get(end) {
            out["nextToken"] = next.name.clone().into();
        }
        Ok(out)
    }

    fn delete_analyzer(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let name = input.label(0);
        let _writing = self.writes.lock();
        let gone = self.authorized(caller, op, name, Context::new())?;
        let mut all = self.load_all(caller)?;
        all.retain(|a| a.name != name);
        self.store_all(caller, &all)?;
        // Its findings and access previews go with it.
        let mut changes = vec![Change::Delete {
            kind: crate::account::FINDINGS_KIND,
            id: crate::account::doc_id(caller, &gone),
        }];
        changes.extend(self.preview_deletions(caller, &gone)?);
        self.store.apply(&changes)?;
        Ok(json!({}))
    }

    /// The analyzer an ARN names, for the tag operations.
    fn tagged(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
        extra: Context,
    ) -> Result<StoredAnalyzer, AnalyzerError> {
        self.by_arn(caller, op, input.label(0), "resourceArn", extra)
    }

    /// The analyzer an ARN names (member `field`): the caller's own only
    /// (another account's ARN is refused by authorization, before
    /// anything is read), in the request's Region; authorized for `op`.
    pub(crate) fn by_arn(
        &self,
        caller: &Caller,
        op: &Operation,
        arn: &str,
        field: &str,
        extra: Context,
    ) -> Result<StoredAnalyzer, AnalyzerError> {
        let parsed = ferrokms_types::Arn::parse(arn)
            .ok()
            .filter(|a| a.service() == "access-analyzer");
        let Some(parsed) = parsed else {
            return Err(AnalyzerError::field(
                field,
                "Member must be the ARN of an analyzer",
            ));
        };
        let name = parsed.resource().strip_prefix("analyzer/").unwrap_or("");
        if parsed.account_id().as_ref() != Some(&caller.account)
            || parsed.region() != caller.region.as_str()
        {
            // Authorization refuses another account's resource first; one
            // of the caller's own in another Region is not found here.
            authorize(caller, op, arn, &extra)?;
            return Err(Self::not_found(arn));
        }
        self.authorized(caller, op, name, extra)
            .map_err(|e| match e {
                AnalyzerError::NotFound { .. } => Self::not_found(arn),
                other => other,
            })
    }

    fn tag_resource(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let tags = input.tags("tags")?;
        if input.body.get("tags").is_none() {
            return Err(AnalyzerError::field("tags", "Member must not be null"));
        }
        let _writing = self.writes.lock();
        let mut a = self.tagged(caller, op, input, request_tag_keys(&tags))?;
        a.tags.extend(tags);
        if a.tags.len() > MAX_TAGS {
            return Err(AnalyzerError::field(
                "tags",
                format!("An analyzer may have at most {MAX_TAGS} tags"),
            ));
        }
        self.save(caller, &a)?;
        Ok(json!({}))
    }

    fn untag_resource(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let keys = input.query_all("tagKeys");
        if keys.is_empty() {
            return Err(AnalyzerError::field("tagKeys", "Member must not be null"));
        }
        let mut ctx = Context::new();
        ctx.insert_multi(
            "aws:TagKeys",
            keys.iter().map(|k| ContextValue::from(*k)).collect(),
        );
        let _writing = self.writes.lock();
        let mut a = self.tagged(caller, op, input, ctx)?;
        for k in keys {
            a.tags.remove(k);
        }
        self.save(caller, &a)?;
        Ok(json!({}))
    }

    fn list_tags(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let a = self.tagged(caller, op, input, Context::new())?;
        Ok(json!({ "tags": a.tags }))
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_follow_the_model() {
        assert!(check_name("n", "my-analyzer_1.x").is_ok());
        assert!(check_name("n", "_x").is_ok());
        assert!(check_name("n", "").is_err());
        assert!(check_name("n", "1abc").is_err());
        assert!(check_name("n", "a/b").is_err());
        assert!(check_name("n", &"a".repeat(256)).is_err());
        assert!(check_tag("team", "blue").is_ok());
        assert!(check_tag("aws:x", "v").is_err());
        assert!(check_tag("", "v").is_err());
        assert!(check_tag("k", &"v".repeat(257)).is_err());
    }
}
