//! The findings operations of an ACCOUNT analyzer: ListFindings,
//! ListFindingsV2, GetFinding, GetFindingV2, UpdateFindings and
//! GetFindingsStatistics.
//!
//! An analyzer's findings are one typed document of the store (kind
//! `analyzer-findings`, id `ACCOUNT/REGION/NAME`: [`FindingsDoc`]), kept
//! current on read: each operation first lists the keys of the analyzer's
//! account and Region, fingerprints each (policy, grants, tags, state) and
//! analyses again the keys whose fingerprint changed since their last
//! analysis (at most [`MAX_REANALYSED`] per call, oldest analysis first;
//! the others on the following calls), then answers from the document.
//! No background job; several nodes agree because the document is in the
//! shared store. The analysis itself takes no write lock (it is the slow
//! part: up to [`MAX_REANALYSED`] runs of reach), only the analyzer's
//! refresh lock on this node (`Analyzers::refresh_lock`: concurrent calls
//! for one analyzer wait for one analysis rather than repeat it); only the
//! merge of its result
//! into the document, read again, runs under [`Analyzers::exclusive`]
//! (the cluster write lock on a shared store, then this node's analyzer
//! lock), so one account's analysis never holds up another account's
//! writes. The operations are not `reads_only` in the catalog (they
//! write); `catalog::TAKES_OWN_LOCK` tells the server not to run them
//! under the cluster lock as a whole.

use ferrokms_authz::catalog::Operation;
use ferrokms_authz::Caller;
use ferrokms_policy::Context;
use ferrokms_store::Change;
use serde_json::{json, Value};

use crate::analyzers::{now_ms, Analyzers, Input, StoredAnalyzer};
use crate::findings::{
    self, finding_json, finding_v2_json, FindingsDoc, KeyMark, Status, StoredFinding,
};
use crate::{live, AnalyzerError};

/// The store's document kind for findings.
pub const FINDINGS_KIND: &str = "analyzer-findings";
/// The fingerprint of a key that could not be read.
const UNREADABLE: &str = "unreadable";
/// Keys analysed again in one call, at most.
pub const MAX_REANALYSED: usize = 25;
/// The largest page of findings.
pub const MAX_FINDINGS_PAGE: usize = 100;
/// Ids one UpdateFindings may name.
const MAX_UPDATE_IDS: usize = 1000;

/// One key's analysis, made outside any lock and merged under one.
struct KeyUpdate {
    /// The key ARN.
    arn: String,
    /// The new mark (`None`: the key is gone).
    mark: Option<KeyMark>,
    /// What the analysis found.
    observed: Vec<findings::Observed>,
}

/// The id of an analyzer's findings document.
pub(crate) fn doc_id(caller: &Caller, a: &StoredAnalyzer) -> String {
    format!("{}/{}", Analyzers::id(caller), a.name)
}

/// The `maxResults` member of a JSON body (1 to `max`; absent: `max`).
pub(crate) fn body_max_results(input: &Input<'_>, max: usize) -> Result<usize, AnalyzerError> {
    match input.body.get("maxResults") {
        None | Some(Value::Null) => Ok(max),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(max).min(max)),
            _ => Err(AnalyzerError::field(
                "maxResults",
                "Member must be an integer greater than or equal to 1",
            )),
        },
    }
}

/// An offset pagination token (`nextToken`), at most `len`.
pub(crate) fn offset(token: Option<&str>, len: usize) -> Result<usize, AnalyzerError> {
    match token {
        None => Ok(0),
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|&n| n <= len)
            .ok_or_else(|| AnalyzerError::field("nextToken", "Invalid pagination token")),
    }
}

impl Analyzers {
    fn load_findings(&self, id: &str) -> Result<FindingsDoc, AnalyzerError> {
        match self.store.get(FINDINGS_KIND, id)? {
            None => Ok(FindingsDoc::default()),
            Some(b) => {
                serde_json::from_slice(&b).map_err(|e| AnalyzerError::Corrupt(e.to_string()))
            }
        }
    }

    fn save_findings(&self, id: &str, doc: &FindingsDoc) -> Result<(), AnalyzerError> {
        self.store.apply(&[Change::Put {
            kind: FINDINGS_KIND,
            id: id.to_string(),
            body: serde_json::to_vec(doc).map_err(|e| AnalyzerError::Corrupt(e.to_string()))?,
        }])?;
        Ok(())
    }

    /// The analyzer's findings, brought current (see the module's text).
    /// The analysis runs without any lock; only the merge of its result
    /// into the stored document is exclusive.
    pub(crate) fn current_findings(
        &self,
        caller: &Caller,
        a: &StoredAnalyzer,
    ) -> Result<FindingsDoc, AnalyzerError> {
        let id = doc_id(caller, a);
        let _one = self.refresh_lock(&id);
        let seen = self.load_findings(&id)?;
        let updates = self.observe(caller, &seen)?;
        if updates.is_empty() {
            return Ok(seen);
        }
        self.exclusive(|| self.merge(caller, a, &updates))
    }

    /// What changed since `seen`: keys gone, keys that cannot be read, and
    /// the analysis of at most [`MAX_REANALYSED`] changed keys (the longest
    /// unanalysed first). Runs reach; takes no lock.
    fn observe(
        &self,
        caller: &Caller,
        seen: &FindingsDoc,
    ) -> Result<Vec<KeyUpdate>, AnalyzerError> {
        let now = now_ms();
        let roles = live::role_snapshots(&self.directory, &caller.account);
        let mut arns = live::key_arns(&self.kms, &caller.account, &caller.region)
            .map_err(|e| AnalyzerError::Corrupt(e.to_string()))?;
        arns.extend(roles.iter().map(|r| r.arn.clone()));
        arns.sort();
        // Keys that are gone: their findings are resolved.
        let mut updates: Vec<KeyUpdate> = seen
            .keys
            .keys()
            .filter(|k| arns.binary_search(k).is_err())
            .map(|k| KeyUpdate {
                arn: k.clone(),
                mark: None,
                observed: Vec::new(),
            })
            .collect();
        // Changed keys, the longest unanalysed first.
        let mut changed: Vec<(i64, live::KeySnapshot)> = Vec::new();
        for snap in roles {
            match seen.keys.get(&snap.arn) {
                Some(m) if m.fingerprint == snap.fingerprint => {}
                m => changed.push((m.map_or(i64::MIN, |m| m.analyzed_ms), snap)),
            }
        }
        for arn in arns
            .iter()
            .filter(|a| findings::resource_type(a) == findings::KMS_KEY)
        {
            let snap = match live::snapshot(&self.kms, arn, &caller.region) {
                Ok(s) => s,
                // Deleted between the listing and this read: next call.
                Err(live::LiveError::Kms(ferrokms_kms::KmsError::NotFound(_))) => continue,
                // The key policy does not let the account read the key
                // (AWS's analyzer reports such a key as an error finding
                // too): an error finding, until it can be read.
                Err(e) => {
                    if seen
                        .keys
                        .get(arn)
                        .is_none_or(|m| m.fingerprint != UNREADABLE)
                    {
                        updates.push(KeyUpdate {
                            arn: arn.clone(),
                            mark: Some(KeyMark {
                                fingerprint: UNREADABLE.to_string(),
                                analyzed_ms: now,
                            }),
                            observed: vec![findings::Observed::error(format!(
                                "ferrokms cannot read the key as its account's root user: {e}"
                            ))],
                        });
                    }
                    continue;
                }
            };
            match seen.keys.get(arn) {
                Some(m) if m.fingerprint == snap.fingerprint => {}
                m => changed.push((m.map_or(i64::MIN, |m| m.analyzed_ms), snap)),
            }
        }
        changed.sort_by_key(|(t, _)| *t);
        for (_, snap) in changed.into_iter().take(MAX_REANALYSED) {
            let observed = if findings::resource_type(&snap.arn) == findings::IAM_ROLE {
                findings::observe_role(live::role_policy_set(&self.directory, &snap))
            } else {
                findings::observe_set(live::policy_set(&self.directory, &snap, true))
            };
            updates.push(KeyUpdate {
                arn: snap.arn.clone(),
                mark: Some(KeyMark {
                    fingerprint: snap.fingerprint.clone(),
                    analyzed_ms: now,
                }),
                observed,
            });
        }
        Ok(updates)
    }

    /// Merges `updates` into the stored document, read again (another
    /// call may have merged the same analysis meanwhile: a key whose
    /// stored mark already has the update's fingerprint is left alone).
    /// Callers are inside [`Analyzers::exclusive`].
    fn merge(
        &self,
        caller: &Caller,
        a: &StoredAnalyzer,
        updates: &[KeyUpdate],
    ) -> Result<FindingsDoc, AnalyzerError> {
        let id = doc_id(caller, a);
        let mut doc = self.load_findings(&id)?;
        let before = doc.clone();
        let now = now_ms();
        let owner = caller.account.as_str().to_string();
        for u in updates {
            let stored = doc.keys.get(&u.arn).map(|m| m.fingerprint.as_str());
            let fresh = u.mark.as_ref().map(|m| m.fingerprint.as_str());
            if stored == fresh {
                continue;
            }
            doc.reconcile(&a.arn, &u.arn, &owner, &u.observed, u.mark.clone(), now);
        }
        if doc != before {
            self.save_findings(&id, &doc)?;
        }
        Ok(doc)
    }

    fn analyzer_of(
        &self,
        caller: &Caller,
        op: &Operation,
        arn: &str,
    ) -> Result<StoredAnalyzer, AnalyzerError> {
        self.by_arn(caller, op, arn, "analyzerArn", Context::new())
    }

    pub(crate) fn list_findings(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
        v2: bool,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required("analyzerArn")?;
        let a = self.analyzer_of(caller, op, arn)?;
        let filter = findings::parse_filter(input.body)?;
        let max = body_max_results(input, MAX_FINDINGS_PAGE)?;
        let doc = self.current_findings(caller, &a)?;
        let mut all: Vec<&StoredFinding> = doc
            .findings
            .iter()
            .filter(|f| findings::matches(f, &filter))
            .collect();
        findings::sort(&mut all, input.body)?;
        let start = offset(input.string("nextToken")?, all.len())?;
        let end = (start + max).min(all.len());
        let page: Vec<Value> = all[start..end]
            .iter()
            .map(|f| {
                if v2 {
                    finding_v2_json(f, false)
                } else {
                    finding_json(f)
                }
            })
            .collect();
        let mut out = json!({ "findings": page });
        if end < all.len() {
            out["nextToken"] = end.to_string().into();
        }
        Ok(out)
    }

    pub(crate) fn get_finding(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
        v2: bool,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required_query("analyzerArn")?;
        let a = self.analyzer_of(caller, op, arn)?;
        let id = input.label(0);
        let doc = self.current_findings(caller, &a)?;
        let f =
            doc.findings
                .iter()
                .find(|f| f.id == id)
                .ok_or_else(|| AnalyzerError::NotFound {
                    message: format!("Finding {id} not found."),
                    resource_id: id.to_string(),
                    resource_type: "Finding",
                })?;
        if v2 {
            // One detail: the page is always the whole list.
            offset(input.query("nextToken"), 0)?;
            input.max_results()?;
            Ok(finding_v2_json(f, true))
        } else {
            Ok(json!({ "finding": finding_json(f) }))
        }
    }

    pub(crate) fn update_findings(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required("analyzerArn")?;
        let a = self.analyzer_of(caller, op, arn)?;
        let status = match input.required("status")? {
            "ACTIVE" => Status::Active,
            "ARCHIVED" => Status::Archived,
            _ => {
                return Err(AnalyzerError::field(
                    "status",
                    "Member must satisfy enum value set: [ACTIVE, ARCHIVED]",
                ))
            }
        };
        let ids: Option<Vec<String>> = match input.body.get("ids") {
            None | Some(Value::Null) => None,
            Some(Value::Array(v)) => Some(
                v.iter()
                    .map(|x| {
                        x.as_str().map(str::to_string).ok_or_else(|| {
                            AnalyzerError::field("ids", "Member must be a list of strings")
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => {
                return Err(AnalyzerError::field(
                    "ids",
                    "Member must be a list of strings",
                ))
            }
        };
        let resource = input.string("resourceArn")?;
        match (&ids, resource) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(AnalyzerError::field(
                    "ids",
                    "Exactly one of ids and resourceArn must be given",
                ))
            }
            (Some(v), None) if v.is_empty() || v.len() > MAX_UPDATE_IDS => {
                return Err(AnalyzerError::field(
                    "ids",
                    format!("Member must have 1 to {MAX_UPDATE_IDS} ids"),
                ))
            }
            _ => {}
        }
        let id = doc_id(caller, &a);
        let _one = self.refresh_lock(&id);
        let seen = self.load_findings(&id)?;
        let updates = self.observe(caller, &seen)?;
        self.exclusive(|| {
            let mut doc = self.merge(caller, &a, &updates)?;
            if let Some(ids) = &ids {
                if let Some(missing) = ids
                    .iter()
                    .find(|i| !doc.findings.iter().any(|f| &f.id == *i))
                {
                    return Err(AnalyzerError::NotFound {
                        message: format!("Finding {missing} not found."),
                        resource_id: missing.clone(),
                        resource_type: "Finding",
                    });
                }
            }
            let now = now_ms();
            let mut changed = false;
            for f in &mut doc.findings {
                let named = match (&ids, resource) {
                    (Some(ids), _) => ids.contains(&f.id),
                    (None, Some(r)) => f.resource == r,
                    (None, None) => false,
                };
                // A RESOLVED finding's status is the analysis's, not a user's.
                if named && f.status != Status::Resolved && f.status != status {
                    f.status = status;
                    f.updated_ms = now;
                    changed = true;
                }
            }
            if changed {
                doc.updated_ms = now;
                self.save_findings(&id, &doc)?;
            }
            Ok(())
        })?;
        Ok(json!({}))
    }

    pub(crate) fn findings_statistics(
        &self,
        caller: &Caller,
        op: &Operation,
        input: &Input<'_>,
    ) -> Result<Value, AnalyzerError> {
        let arn = input.required("analyzerArn")?;
        let a = self.analyzer_of(caller, op, arn)?;
        let doc = self.current_findings(caller, &a)?;
        let count = |s: Status| doc.findings.iter().filter(|f| f.status == s).count();
        let mut by_type = serde_json::Map::new();
        for ty in [findings::KMS_KEY, findings::IAM_ROLE] {
            let active: Vec<&StoredFinding> = doc
                .findings
                .iter()
                .filter(|f| {
                    f.status == Status::Active && findings::resource_type(&f.resource) == ty
                })
                .collect();
            let public = active
                .iter()
                .filter(|f| f.error.is_none() && f.is_public)
                .count();
            let cross = active
                .iter()
                .filter(|f| f.error.is_none() && !f.is_public)
                .count();
            let errors = active.iter().filter(|f| f.error.is_some()).count();
            by_type.insert(
                ty.to_string(),
                json!({
                    "totalActivePublic": public,
                    "totalActiveCrossAccount": cross,
                    "totalActiveErrors": errors,
                }),
            );
        }
        Ok(json!({
            "findingsStatistics": [{
                "externalAccessFindingsStatistics": {
                    "resourceTypeStatistics": by_type,
                    "totalActiveFindings": count(Status::Active),
                    "totalArchivedFindings": count(Status::Archived),
                    "totalResolvedFindings": count(Status::Resolved),
                }
            }],
            "lastUpdatedAt": findings::iso(doc.updated_ms.max(a.created_ms)),
        }))
    }
}
