//! The trace of a decision: what was asked, the outcome, and the statements
//! (or grant) that decided it. The audit record and `policy explain` read it.

/// One authorization decision of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthzRecord {
    pub action: String,
    pub resource: String,
    pub allowed: bool,
    /// `allow`, `allow (grant GRANT_ID)`, or the AccessDenied reason clause.
    pub decision: String,
    /// The statements that applied: `policy label #index (Sid) Effect`.
    pub statements: Vec<String>,
}

/// The decision text of an allow that no grant decided.
pub const PLAIN_ALLOW: &str = "allow";

impl AuthzRecord {
    /// The decisions of an audit record (`ferrokmsAuthorization`), with what
    /// the writer leaves out to keep records short put back: a decision's
    /// `resource` when it is the record's first `resources` ARN, and its
    /// `decision` when it is [`PLAIN_ALLOW`]. Entries that are not
    /// decisions are skipped.
    pub fn from_audit(record: &serde_json::Value) -> Vec<AuthzRecord> {
        let first_arn = record["resources"][0]["ARN"].as_str().unwrap_or("");
        let Some(trace) = record["ferrokmsAuthorization"].as_array() else {
            return Vec::new();
        };
        trace
            .iter()
            .filter_map(|d| {
                let allowed = d["allowed"].as_bool()?;
                Some(AuthzRecord {
                    action: d["action"].as_str()?.to_string(),
                    resource: d["resource"].as_str().unwrap_or(first_arn).to_string(),
                    allowed,
                    decision: match d["decision"].as_str() {
                        Some(text) => text.to_string(),
                        None if allowed => PLAIN_ALLOW.to_string(),
                        None => return None,
                    },
                    statements: d["statements"]
                        .as_array()
                        .map(|s| {
                            s.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// The statements that applied in an evaluation, as trace text.
pub(crate) fn applied_statements(eval: &ferrokms_policy::Evaluation<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for p in &eval.policies {
        for st in &p.statements {
            if matches!(st.result, ferrokms_policy::StatementResult::Applies { .. }) {
                // `policy label #index (Sid) Effect`, built without format!:
                // one or two of these are written on every request.
                let index = st.index.to_string();
                let index = index.as_str();
                let effect = st.statement.effect().as_str();
                out.push(match st.statement.sid() {
                    Some(sid) => {
                        ferrokms_types::concat(&[p.id, " #", index, " (", sid, ") ", effect])
                    }
                    None => ferrokms_types::concat(&[p.id, " #", index, " ", effect]),
                });
            }
        }
    }
    out
}
