//! Access previews for KMS keys and IAM roles: CreateAccessPreview, GetAccessPreview,
//! ListAccessPreviews and ListAccessPreviewFindings.
//!
//! A preview is computed when it is created (its status is COMPLETED, or
//! FAILED with reason INVALID_CONFIGURATION when a proposed key policy
//! does not parse; never CREATING): each configuration's key is built from
//! the proposal (a key that does not exist yet gets the default key policy
//! and no grants for the parts not given; an existing key keeps its own
//! policy, grants, tags and state for the parts not given), analysed like
//! the analyzer's findings ([`crate::findings::observe_set`]), and compared by
//! finding id with the analyzer's current findings of that key: NEW (no
//! such finding), UNCHANGED (an ACTIVE or ARCHIVED one, whose status it
//! keeps), CHANGED (a RESOLVED one that would come back ACTIVE, or a
//! current one that would become RESOLVED).
//!
//! Bounds: [`MAX_CONFIGURATIONS`] configurations a preview,
//! [`MAX_GRANTS`] proposed grants a key, the key policy size of
//! ValidatePolicy; an analyzer keeps its [`MAX_PREVIEWS`] newest previews
//! for [`PREVIEW_TTL_MS`] (24 hours) at most, older ones are deleted when
//! a preview is created. Each preview is its own document (kind
//! `access-previews`), listed by a small per-analyzer index (kind
//! `access-preview-index`).

use std::collections::BTreeMap;

use ferrokms_authz::catalog::Operation;
use ferrokms_authz::Caller;
use ferrokms_policy::{Context, ParseOptions, Policy, PolicyKind};
use ferrokms_reach::{Grant, Grantee};
use ferrokms_store::Change;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::account::{body_max_results, doc_id, offset};
use crate::analyzers::{now_ms, Analyzers, Input, StoredAnalyzer, MAX_POLICY_CHARS};
use crate::findings::{self, Criterion, Observed, Status, StoredFinding};
use crate::live::{self, KeySnapshot};
use crate::{AnalyzerError, ValidationReason};

/// The store's document kind for one access preview.
pub const PREVIEW_KIND: &str = "access-previews";
/// The store's document kind for an analyzer's list of previews.
pub const PREVIEW_INDEX_KIND: &str = "access-preview-index";
/// Configurations one preview may hold.
pub const MAX_CONFIGURATIONS: usize = 10;
/// Proposed grants one key configuration may hold.
pub const MAX_GRANTS: usize = 100;
/// Previews an analyzer keeps (the newest).
pub const MAX_PREVIEWS: usize = 100;
/// How long a preview is kept.
pub const PREVIEW_TTL_MS: i64 = 24 * 3600 * 1000;
/// The largest page of previews or preview findings.
const MAX_PAGE: usize = 1000;
/// The model's `KmsGrantOperation` values.
const GRANT_OPERATIONS: &[&str] = &[
    "CreateGrant",
    "Decrypt",
    "DescribeKey",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GetPublicKey",
    "ReEncryptFrom",
    "ReEncryptTo",
    "RetireGrant",
    "Sign",
    "Verify",
];
/// The configuration types of the model other than `kmsKey` and `iamRole`.
const OTHER_TYPES: &[&str] = &[
    "ebsSnapshot",
    "ecrRepository",
    "efsFileSystem",
    "rdsDbClusterSnapshot",
    "rdsDbSnapshot",
    "secretsManagerSecret",
    "s3Bucket",
    "snsTopic",
    "sqsQueue",
    "s3ExpressDirectoryBucket",
    "dynamodbStream",
    "dynamodbTable",
];

/// One preview in the analyzer's index.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IndexEntry {
    id: String,
    created_ms: i64,
    status: String,
    reason: Option<String>,
    #[serde(default)]
    client_token: Option<String>,
}

impl IndexEntry {
    fn summary(&self, analyzer_arn: &str) -> Value {
        let mut v = json!({
            "id": self.id,
            "analyzerArn": analyzer_arn,
            "createdAt": findings::iso(self.created_ms),
            "status": self.status,
        });
        if let Some(r) = &self.reason {
            v["statusReason"] = json!({ "code": r });
        }
        v
    }
}

/// One preview finding as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PreviewFinding {
    id: String,
    change_type: String,
    existing_id: Option<String>,
    existing_status: Option<Status>,
    /// The finding as it would be (its status the preview's).
    finding: StoredFinding,
}

impl PreviewFinding {
    fn to_json(&self) -> Value {
        let mut v = findings::finding_json(&self.finding);
        if let Value::Object(m) = &mut v {
            m.insert("id".into(), self.id.clone().into());
            m.insert("changeType".into(), self.change_type.clone().into());
            for k in ["analyzedAt", "updatedAt"] {
                m.remove(k);
            }
            if let Some(e) = &self.existing_id {
                m.insert("existingFindingId".into(), e.clone().into());
            }
            if let Some(s) = self.existing_status {
                m.insert("existingFindingStatus".into(), s.as_str().into());
            }
        }
        v
    }
}

/// One preview as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPreview {
    entry: IndexEntry,
    configurations: Value,
    findings: Vec<PreviewFinding>,
}

fn preview_doc_id(caller: &Caller, a: &StoredAnalyzer, id: &str) -> String {
    format!("{}/{id}", doc_id(caller, a))
}

fn check_preview_id(id: &str) -> Result<(), AnalyzerError> {
    let ok = id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_digit() || ('a'..='f').contains(&c)
            }
        });
    if ok {
        Ok(())
    } else {
        Err(AnalyzerError::field(
            "accessPreviewId",
            "Member must satisfy regular expression pattern: [a-f0-9]{8}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{4}-[a-f0-9]{12}",
        ))
    }
}

/// A proposed key, read from its configuration (the policy text is
/// checked for parsing later, where a failure makes the preview FAILED).
struct Proposal {
    arn: String,
    /// The proposed key policy, or a role's trust policy.
    policy: Option<String>,
    grants: Option<Vec<Grant>>,
    /// An IAM role (`iamRole`), not a key.
    role: bool,
}

fn string_map(v: &Value, what: &str) -> Result<BTreeMap<String, String>, AnalyzerError> {
    let Value::Object(m) = v else {
        return Err(AnalyzerError::field(
            "configurations",
            format!("{what} must be a map of strings"),
        ));
    };
    m.iter()
        .map(|(k, v)| {
            v.as_str()
                .map(|s| (k.clone(), s.to_string()))
                .ok_or_else(|| {
                    AnalyzerError::field(
                        "configurations",
                        format!("{what} must be a map of strings"),
                    )
                })
        })
        .collect()
}

fn parse_grant(i: usize, g: &Value) -> Result<Grant, AnalyzerError> {
    let bad = |m: &str| AnalyzerError::field("configurations", format!("grants[{i}]: {m}"));
    let Value::Object(g) = g else {
        return Err(bad("must be a structure"));
    };
    let ops = g
        .get("operations")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("operations must be a list"))?;
    if ops.is_empty() {
        return Err(bad("operations must not be empty"));
    }
    let mut operations = Vec::new();
    for o in ops {
        match o.as_str() {
            Some(o) if GRANT_OPERATIONS.contains(&o) => operations.push(o.to_string()),
            _ => {
                return Err(bad(&format!(
                    "operations: Member must satisfy enum value set: [{}]",
                    GRANT_OPERATIONS.join(", ")
                )))
            }
        }
    }
    let grantee = g
        .get("granteePrincipal")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("granteePrincipal must not be null"))?;
    let issuing = g
        .get("issuingAccount")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("issuingAccount must not be null"))?;
    if ferrokms_types::AccountId::parse(issuing).is_err() {
        return Err(bad("issuingAccount must be a 12-digit account id"));
    }
    let (mut subset, mut equals) = (None, None);
    match g.get("constraints") {
        None | Some(Value::Null) => {}
        Some(Value::Object(c)) => {
            if let Some(v) = c.get("encryptionContextSubset").filter(|v| !v.is_null()) {
                subset = Some(string_map(v, "encryptionContextSubset")?);
            }
            if let Some(v) = c.get("encryptionContextEquals").filter(|v| !v.is_null()) {
                equals = Some(string_map(v, "encryptionContextEquals")?);
            }
        }
        Some(_) => return Err(bad("constraints must be a structure")),
    }
    let grantee = if grantee.ends_with(".amazonaws.com") {
        Grantee::Service(grantee.to_string())
    } else {
        Grantee::Aws(grantee.to_string())
    };
    Ok(Grant {
        id: format!("proposed-grant-{i}"),
        grantee,
        operations,
        encryption_context_subset: subset,
        encryption_context_equals: equals,
        source_arn: None,
    })
}

/// Reads one configuration: a `kmsKey` of a key ARN in the caller's
/// account and Region.
fn parse_configuration(caller: &Caller, arn: &str, c: &Value) -> Result<Proposal, AnalyzerError> {
    let Value::Object(c) = c else {
        return Err(AnalyzerError::field(
            "configurations",
            "A configuration must be a structure",
        ));
    };
    if c.len() != 1 {
        return Err(AnalyzerError::field(
            "configurations",
            "A configuration must have exactly one member (its resource type)",
        ));
    }
    let (ty, conf) = c.iter().next().ok_or_else(|| {
        AnalyzerError::field("configurations", "A configuration must have one member")
    })?;
    if ty == "iamRole" {
        return parse_role_configuration(caller, arn, conf);
    }
    if ty != "kmsKey" {
        return Err(if OTHER_TYPES.contains(&ty.as_str()) {
            AnalyzerError::validation(
                ValidationReason::NotSupported,
                format!("ferrokms previews access to KMS keys and IAM roles only (configuration types kmsKey and iamRole), not {ty} (see docs/analysis.md, \"Access Analyzer API\")."),
            )
        } else {
            AnalyzerError::field("configurations", format!("Unknown configuration type {ty}"))
        });
    }
    let parsed = own_resource(caller, arn, "kms", "key/", "a KMS key")?;
    if parsed.region() != caller.region.as_str() {
        return Err(AnalyzerError::field(
            "configurations",
            format!(
                "{arn} is not in the analyzer's Region {}",
                caller.region.as_str()
            ),
        ));
    }
    let conf = match conf {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        _ => {
            return Err(AnalyzerError::field(
                "configurations",
                "kmsKey must be a structure",
            ))
        }
    };
    let policy = match conf.get("keyPolicies") {
        None | Some(Value::Null) => None,
        Some(Value::Object(p)) => {
            let mut policy = None;
            for (name, text) in p {
                if name != "default" {
                    return Err(AnalyzerError::field(
                        "configurations",
                        format!("keyPolicies: the only key policy name is default, not {name}"),
                    ));
                }
                let text = text.as_str().ok_or_else(|| {
                    AnalyzerError::field("configurations", "keyPolicies values must be strings")
                })?;
                let chars = text.chars().filter(|c| !c.is_whitespace()).count();
                if chars > MAX_POLICY_CHARS {
                    return Err(AnalyzerError::field(
                        "configurations",
                        format!("The key policy has {chars} characters other than whitespace, more than the maximum of {MAX_POLICY_CHARS}"),
                    ));
                }
                policy = Some(text.to_string());
            }
            policy
        }
        Some(_) => {
            return Err(AnalyzerError::field(
                "configurations",
                "keyPolicies must be a map",
            ))
        }
    };
    let grants = match conf.get("grants") {
        None | Some(Value::Null) => None,
        Some(Value::Array(g)) => {
            if g.len() > MAX_GRANTS {
                return Err(AnalyzerError::field(
                    "configurations",
                    format!("A key configuration may propose at most {MAX_GRANTS} grants"),
                ));
            }
            Some(
                g.iter()
                    .enumerate()
                    .map(|(i, g)| parse_grant(i, g))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        }
        Some(_) => {
            return Err(AnalyzerError::field(
                "configurations",
                "grants must be a list",
            ))
        }
    };
    Ok(Proposal {
        arn: arn.to_string(),
        policy,
        grants,
        role: false,
    })
}

/// The ARN `arn` of a resource of `service` whose resource part starts
/// with `prefix` (`key/`, `role/`), in the analyzer's account: an access
/// preview is for the analyzer's own resources.
fn own_resource(
    caller: &Caller,
    arn: &str,
    service: &str,
    prefix: &str,
    what: &str,
) -> Result<ferrokms_types::Arn, AnalyzerError> {
    let parsed = ferrokms_types::Arn::parse(arn).ok().filter(|a| {
        a.service() == service
            && a.resource().len() > prefix.len()
            && a.resource().starts_with(prefix)
    });
    let Some(parsed) = parsed else {
        return Err(AnalyzerError::field(
            "configurations",
            format!("{arn} is not the ARN of {what}"),
        ));
    };
    if parsed.account_id().as_ref() != Some(&caller.account) {
        return Err(AnalyzerError::field(
            "configurations",
            format!("{arn} is not a resource of the analyzer's account {}: an access preview is for the analyzer's own resources", caller.account.as_str()),
        ));
    }
    Ok(parsed)
}

/// An `iamRole` configuration: a role of the analyzer's account (IAM is
/// global: any Region) and its proposed trust policy, if any.
fn parse_role_configuration(
    caller: &Caller,
    arn: &str,
    conf: &Value,
) -> Result<Proposal, AnalyzerError> {
    own_resource(caller, arn, "iam", "role/", "an IAM role")?;
    let policy = match conf {
        Value::Null => None,
        Value::Object(m) => match m.get("trustPolicy") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => {
                let chars = text.chars().filter(|c| !c.is_whitespace()).count();
                if chars > MAX_POLICY_CHARS {
                    return Err(AnalyzerError::field(
                        "configurations",
                        format!("The trust policy has {chars} characters other than whitespace, more than the maximum of {MAX_POLICY_CHARS}"),
                    ));
                }
                Some(text.clone())
            }
            Some(_) => {
                return Err(AnalyzerError::field(
                    "configurations",
                    "iamRole.trustPolicy must be a string",
                ))
            }
        },
        _ => {
            return Err(AnalyzerError::field(
                "configurations",
                "iamRole must be a structure",
            ))
        }
    };
    Ok(Proposal {
        arn: arn.to_string(),
        policy,
        grants: None,
        role: true,
    })
}

/// Compares what a proposal would allow with the analyzer's findings of
/// the key.
fn compare(
    preview_id: &str,
    analyzer_arn: &str,
    key_arn: &str,
    owner: &str,
    observed: &[Observed],
    current: &[StoredFinding],
    now: i64,
) -> Vec<PreviewFinding> {
    let mut out = Vec::new();
    let pid = |fid: &str| {
        findings::uuid_shaped(&findings::digest_hex(
            format!("{preview_id}/{fid}").as_bytes(),
        ))
    };
    let mut seen = Vec::new();
    for o in observed {
        let fid = findings::finding_id(analyzer_arn, key_arn, o);
        let existing = current.iter().find(|f| f.id == fid);
        let (change, status) = match existing.map(|f| f.status) {
            None => ("NEW", Status::Active),
            Some(Status::Resolved) => ("CHANGED", Status::Active),
            Some(s) => ("UNCHANGED", s),
        };
        out.push(PreviewFinding {
            id: pid(&fid),
            change_type: change.to_string(),
            existing_id: existing.map(|f| f.id.clone()),
            existing_status: existing.map(|f| f.status),
            finding: StoredFinding {
                id: fid.clone(),
                resource: key_arn.to_string(),
                owner: owner.to_string(),
                principal: o.principal.clone(),
                actions: o.actions.clone(),
                condition: o.condition.clone(),
                is_public: o.is_public,
                grant: o.grant.clone(),
                error: o.error.clone(),
                status,
                created_ms: now,
                updated_ms: now,
                analyzed_ms: now,
            },
        });
        seen.push(fid);
    }
    for f in current {
        if f.resource != key_arn || f.status == Status::Resolved || seen.contains(&f.id) {
            continue;
        }
        let mut gone = f.clone();
        gone.status = Status::Resolved;
        gone.created_ms = now;
        out.push(PreviewFinding {
            id: pid(&f.id),
            change_type: "CHANGED".to_string(),
            existing_id: Some(f.id.clone()),
            existing_status: Some(f.status),
            finding: gone,
        });
    }
    out
}

impl Analyzers {
    fn load_index(&self, id: &str) -> Result<Vec<IndexEntry>, AnalyzerError> {
        match self.store.get(PREVIEW_INDEX_KIND, id)? {
            None => Ok(Vec::new()),
            Some(b) => {
                serde_json::from_slice(&b).map_err(|e| AnalyzerError::Corrupt(e.to_string()))
            }
        }
    }

    /// The changes that delete every preview of an analyzer.
    pub(crate) fn preview_deletions(
        &self,
        caller: &Caller,
        a: &StoredAnalyzer,
    ) -> Result<Vec<Change>, AnalyzerError> {
        let index_id = doc_id(caller, a);
        let mut out: Vec<Change> = self
            .load_index(&index_id)?
            .iter()
            .map(|e| Change::Delete {
                kind: PREVIEW_KIND,
                id: preview_doc_id(caller, a, &e.id),
            })
            .collect();
        out.push(Change::Delete {
            kind: PREVIEW_INDEX_KIND,
            id: index_id,
        });
        Ok(out)
    }

    /// The proposed key and whether it exists; `Err(why)` for an
    /// existing key that cannot be read (its preview findings are then one
    /// error finding).
    fn proposed_snapshot(
        &self,
        caller: &Caller,
        p: &Proposal,
    ) -> Result<Result<(KeySnapshot, bool), String>, AnalyzerError> {
        if p.role {
            let existing = live::role_snapshots(&self.directory, &caller.account)
                .into_iter()
                .find(|r| r.arn == p.arn);
            let exists = existing.is_some();
            let (policy, facts) = match (existing, &p.policy) {
                (Some(r), proposed) => (proposed.clone().unwrap_or(r.policy), r.facts),
                (None, Some(proposed)) => (proposed.clone(), Vec::new()),
                // AWS: a new role's configuration must give its trust policy.
                (None, None) => {
                    return Err(AnalyzerError::field(
                        "configurations",
                        format!(
                            "{} is not an existing role: its configuration must give trustPolicy",
                            p.arn
                        ),
                    ))
                }
            };
            let snap = KeySnapshot::new(&p.arn, policy, Vec::new(), facts, String::new());
            return Ok(Ok((snap, exists)));
        }
        let exists = live::key_arns(&self.kms, &caller.account, &caller.region)
            .map_err(|e| AnalyzerError::Corrupt(e.to_string()))?
            .binary_search(&p.arn)
            .is_ok();
        if !exists {
            let policy = p.policy.clone().unwrap_or_else(|| {
                ferrokms_kms::default_key_policy(&caller.account, caller.region.partition())
            });
            let grants = p.grants.clone().unwrap_or_default();
            let snap = KeySnapshot::new(&p.arn, policy, grants, Vec::new(), "Enabled".into());
            return Ok(Ok((snap, false)));
        }
        Ok(match live::snapshot(&self.kms, &p.arn, &caller.region) {
            Ok(b) => Ok((
                KeySnapshot::new(
                    &p.arn,
                    p.policy.clone().unwrap_or(b.policy),
                    p.grants.clone().unwrap_or(b.grants),
                    b.facts,
                    b.state,
                ),
                true,
            )),
            Err(e) => Err(format!(
                "ferrokms cannot read the key as its account's root user: {e}"
            )),
        })
    }

    pub(crate) fn create_access_preview(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required("analyzerArn")?;
        let a = self.by_arn(caller, op, arn, "analyzerArn", Context::new())?;
        let configurations = match input.body.get("configurations") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => {
                return Err(AnalyzerError::field(
                    "configurations",
                    "Member must not be null",
                ))
            }
            Some(_) => {
                return Err(AnalyzerError::field(
                    "configurations",
                    "Member must be a map",
                ))
            }
        };
        if configurations.is_empty() || configurations.len() > MAX_CONFIGURATIONS {
            return Err(AnalyzerError::field(
                "configurations",
                format!("Member must have 1 to {MAX_CONFIGURATIONS} entries"),
            ));
        }
        let client_token = input.string("clientToken")?.map(str::to_string);
        let proposals = configurations
            .iter()
            .map(|(k, v)| parse_configuration(caller, k, v))
            .collect::<Result<Vec<_>, _>>()?;
        let index_id = doc_id(caller, &a);
        if let Some(t) = &client_token {
            if let Some(e) = self
                .load_index(&index_id)?
                .iter()
                .find(|e| e.client_token.as_ref() == Some(t))
            {
                return Ok(json!({ "id": e.id }));
            }
        }
        let current = self.current_findings(caller, &a)?;
        let now = now_ms();
        let id = uuid::Uuid::new_v4().to_string();
        let owner = caller.account.as_str().to_string();
        let mut failed = false;
        let mut preview_findings = Vec::new();
        for p in &proposals {
            let observed = match self.proposed_snapshot(caller, p)? {
                Ok((snap, exists)) => {
                    let options = if p.role {
                        ParseOptions::for_trust_policy()
                    } else {
                        ParseOptions::for_kind(PolicyKind::ResourceBased)
                    };
                    if Policy::parse(&snap.policy, &options).is_err() {
                        failed = true;
                        break;
                    }
                    if p.role {
                        findings::observe_role(live::role_policy_set(&self.directory, &snap))
                    } else {
                        findings::observe_set(live::policy_set(&self.directory, &snap, exists))
                    }
                }
                Err(why) => vec![Observed::error(why)],
            };
            preview_findings.extend(compare(
                &id,
                &a.arn,
                &p.arn,
                &owner,
                &observed,
                &current.findings,
                now,
            ));
        }
        if failed {
            preview_findings.clear();
        }
        let entry = IndexEntry {
            id: id.clone(),
            created_ms: now,
            status: if failed { "FAILED" } else { "COMPLETED" }.to_string(),
            reason: failed.then(|| "INVALID_CONFIGURATION".to_string()),
            client_token,
        };
        let stored = StoredPreview {
            entry: entry.clone(),
            configurations: Value::Object(configurations.clone()),
            findings: preview_findings,
        };
        // The analysis above took no lock; the index's read-modify-write
        // is exclusive.
        self.exclusive(|| {
            let mut index = self.load_index(&index_id)?;
            index.push(entry);
            index.sort_by(|x, y| (y.created_ms, &y.id).cmp(&(x.created_ms, &x.id)));
            let mut changes = Vec::new();
            let mut kept = Vec::new();
            for (i, e) in index.into_iter().enumerate() {
                if i >= MAX_PREVIEWS || now - e.created_ms > PREVIEW_TTL_MS {
                    changes.push(Change::Delete {
                        kind: PREVIEW_KIND,
                        id: preview_doc_id(caller, &a, &e.id),
                    });
                } else {
                    kept.push(e);
                }
            }
            changes.push(Change::Put {
                kind: PREVIEW_KIND,
                id: preview_doc_id(caller, &a, &id),
                body: to_body(&stored)?,
            });
            changes.push(Change::Put {
                kind: PREVIEW_INDEX_KIND,
                id: index_id,
                body: to_body(&kept)?,
            });
            self.store.apply(&changes)?;
            Ok(())
        })?;
        Ok(json!({ "id": id }))
    }

    fn load_preview(
        &self,
        caller: &Caller,
        a: &StoredAnalyzer,
        id: &str,
    ) -> Result<StoredPreview, AnalyzerError> {
        check_preview_id(id)?;
        let not_found = || AnalyzerError::NotFound {
            message: format!("Access preview {id} not found."),
            resource_id: id.to_string(),
            resource_type: "AccessPreview",
        };
        let body = self
            .store
            .get(PREVIEW_KIND, &preview_doc_id(caller, a, id))?
            .ok_or_else(not_found)?;
        let p: StoredPreview =
            serde_json::from_slice(&body).map_err(|e| AnalyzerError::Corrupt(e.to_string()))?;
        if now_ms() - p.entry.created_ms > PREVIEW_TTL_MS {
            return Err(not_found());
        }
        Ok(p)
    }

    pub(crate) fn get_access_preview(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required_query("analyzerArn")?;
        let a = self.by_arn(caller, op, arn, "analyzerArn", Context::new())?;
        let p = self.load_preview(caller, &a, input.label(0))?;
        let mut v = p.entry.summary(&a.arn);
        v["configurations"] = p.configurations;
        Ok(json!({ "accessPreview": v }))
    }

    pub(crate) fn list_access_previews(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required_query("analyzerArn")?;
        let a = self.by_arn(caller, op, arn, "analyzerArn", Context::new())?;
        let max = input.max_results()?;
        let now = now_ms();
        let all: Vec<IndexEntry> = self
            .load_index(&doc_id(caller, &a))?
            .into_iter()
            .filter(|e| now - e.created_ms <= PREVIEW_TTL_MS)
            .collect();
        let start = offset(input.query("nextToken"), all.len())?;
        let end = (start + max.min(MAX_PAGE)).min(all.len());
        let mut out = json!({
            "accessPreviews": all[start..end].iter().map(|e| e.summary(&a.arn)).collect::<Vec<_>>()
        });
        if end < all.len() {
            out["nextToken"] = end.to_string().into();
        }
        Ok(out)
    }

    pub(crate) fn list_access_preview_findings(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required("analyzerArn")?;
        let a = self.by_arn(caller, op, arn, "analyzerArn", Context::new())?;
        let max = body_max_results(input, MAX_PAGE)?;
        let filter = findings::parse_filter(&strip_change_type(input.body))?;
        let change: Option<Criterion> = change_type_criterion(input.body)?;
        let p = self.load_preview(caller, &a, input.label(0))?;
        let all: Vec<&PreviewFinding> = p
            .findings
            .iter()
            .filter(|f| findings::matches(&f.finding, &filter))
            .filter(|f| {
                change.as_ref().is_none_or(|c| {
                    let v = &f.change_type;
                    c.eq.as_ref().is_none_or(|e| e.contains(v))
                        && c.neq.as_ref().is_none_or(|n| !n.contains(v))
                        && c.contains
                            .as_ref()
                            .is_none_or(|n| n.iter().any(|s| v.contains(s.as_str())))
                })
            })
            .collect();
        let start = offset(input.string("nextToken")?, all.len())?;
        let end = (start + max).min(all.len());
        let mut out = json!({
            "findings": all[start..end].iter().map(|f| f.to_json()).collect::<Vec<_>>()
        });
        if end < all.len() {
            out["nextToken"] = end.to_string().into();
        }
        Ok(out)
    }
}

/// The body without the `changeType` criterion (which is the preview
/// finding's own, not a finding's).
fn strip_change_type(body: &Map<String, Value>) -> Map<String, Value> {
    let mut b = body.clone();
    if let Some(Value::Object(f)) = b.get_mut("filter") {
        f.remove("changeType");
    }
    b
}

fn change_type_criterion(body: &Map<String, Value>) -> Result<Option<Criterion>, AnalyzerError> {
    let Some(c) = body
        .get("filter")
        .and_then(|f| f.get("changeType"))
        .cloned()
    else {
        return Ok(None);
    };
    let mut one = Map::new();
    one.insert("filter".into(), json!({ "id": c }));
    Ok(findings::parse_filter(&one)?.pop().map(|(_, c)| c))
}

fn to_body<T: Serialize>(v: &T) -> Result<Vec<u8>, AnalyzerError> {
    serde_json::to_vec(v).map_err(|e| AnalyzerError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const AN: &str = "arn:aws:access-analyzer:us-east-1:111122223333:analyzer/a";
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";

    fn obs(principal: &str) -> Observed {
        Observed {
            principal: Some(principal.into()),
            actions: vec!["kms:Decrypt".into()],
            condition: BTreeMap::new(),
            is_public: principal == "*",
            grant: None,
            error: None,
        }
    }

    #[test]
    fn previews_compare_new_unchanged_and_changed() {
        let mut doc = findings::FindingsDoc::default();
        doc.reconcile(
            AN,
            KEY,
            "111122223333",
            &[obs("222233334444"), obs("333344445555")],
            None,
            1,
        );
        // 3333 archived; then a preview keeps 2222, drops 3333... no: keeps
        // 3333 (archived), drops 2222, adds the public one.
        let id3 = findings::finding_id(AN, KEY, &obs("333344445555"));
        doc.findings
            .iter_mut()
            .find(|f| f.id == id3)
            .unwrap()
            .status = Status::Archived;
        let got = compare(
            "p",
            AN,
            KEY,
            "111122223333",
            &[obs("333344445555"), obs("*")],
            &doc.findings,
            5,
        );
        let by = |p: &str| {
            got.iter()
                .find(|f| f.finding.principal.as_deref() == Some(p))
                .unwrap()
        };
        let u = by("333344445555");
        assert_eq!(
            (u.change_type.as_str(), u.finding.status, u.existing_status),
            ("UNCHANGED", Status::Archived, Some(Status::Archived))
        );
        let n = by("*");
        assert_eq!(
            (
                n.change_type.as_str(),
                n.finding.status,
                n.existing_id.as_ref()
            ),
            ("NEW", Status::Active, None)
        );
        let c = by("222233334444");
        assert_eq!(
            (c.change_type.as_str(), c.finding.status, c.existing_status),
            ("CHANGED", Status::Resolved, Some(Status::Active))
        );
        assert_eq!(got.len(), 3);
        let ids: Vec<&str> = got.iter().map(|f| f.id.as_str()).collect();
        assert!(ids.iter().all(|i| check_preview_id(i).is_ok()));
    }

    #[test]
    fn preview_ids_follow_the_model_pattern() {
        assert!(check_preview_id(&uuid::Uuid::new_v4().to_string()).is_ok());
        assert!(check_preview_id("../x").is_err());
        assert!(check_preview_id("ABCDEF00-0000-0000-0000-000000000000").is_err());
    }
}
