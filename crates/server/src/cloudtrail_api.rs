//! AWS CloudTrail's event history on the ferrokms endpoint: `LookupEvents`
//! (AWS JSON 1.1, `X-Amz-Target:
//! com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents`,
//! signing name `cloudtrail`) over the server's own audit trail
//! (`audit::lookup`), so that `aws cloudtrail lookup-events` and the web
//! console's History read the same records.
//!
//! Authorized like every operation: through its catalog row
//! ([`CLOUDTRAIL_OPERATIONS`], `cloudtrail:LookupEvents` on `*`, identity
//! policies only) and `ferrokms_authz::decide`. An account sees only its
//! own events (`audit::lookup`, "Visibility"), root included.
//!
//! Each event's `CloudTrailEvent` is the record as written, with, for a
//! record whose request was denied, `ferrokmsExplanation`: what would
//! allow it, in the words of `ferrokms policy explain`
//! (`ferrokms_kms::explain::suggest`). The member is free-form JSON in
//! AWS's shape, so the extra member needs no operation of its own.

use axum::response::Response;
use ferrokms_authz::catalog::{Operation, Service};
use ferrokms_authz::{Caller, Question};
use serde_json::{Map, Value};

use crate::audit::lookup::{self, Attribute, Page, Position, Query};
use crate::audit::AuditRecord;
use crate::auth::Identity;
use crate::pipeline::{Fault, Inbound, Operated, Placement, Protocol};
use crate::App;

/// The `X-Amz-Target` prefix of CloudTrail's operations.
pub const TARGET_PREFIX: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.";
/// The SigV4 signing name (and IAM action prefix) of the service.
pub const SIGNING_NAME: &str = "cloudtrail";

/// Every CloudTrail operation ferrokms serves, sorted by name: each acts
/// in the caller's account only and changes nothing.
pub const CLOUDTRAIL_OPERATIONS: &[Operation] = &[Operation::new(
    Service::CloudTrail,
    "LookupEvents",
    "cloudtrail:LookupEvents",
)
.reads_only()];

/// The most events one page holds (the model's `MaxResults`), and the default.
pub const MAX_RESULTS: usize = 50;

/// Why a CloudTrail call failed: each variant one of the model's errors.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// InvalidLookupAttributesException (400).
    #[error("{0}")]
    LookupAttributes(String),
    /// InvalidTimeRangeException (400).
    #[error("Start time must be before or at the end time.")]
    TimeRange,
    /// InvalidMaxResultsException (400).
    #[error("MaxResults must be between 1 and {MAX_RESULTS}.")]
    MaxResults,
    /// InvalidNextTokenException (400).
    #[error("Invalid NextToken.")]
    NextToken,
    /// InvalidEventCategoryException (400).
    #[error("Event category must be 'insight'.")]
    EventCategory,
    /// SerializationException (400): a member of the wrong JSON type.
    #[error("{0}")]
    Serialization(String),
    /// UnknownOperationException (400).
    #[error("No such operation.")]
    UnknownOperation,
    /// AccessDeniedException (400, as CloudTrail's JSON protocol answers it), in AWS's words.
    #[error("{0}")]
    AccessDenied(String),
    /// The trail could not be read: InternalFailure (500), logged, not sent.
    #[error("the audit trail cannot be read: {0}")]
    Read(#[from] crate::audit::read::ReadError),
    /// The authorization path failed: InternalFailure (500).
    #[error("authorization failed: {0}")]
    Authz(#[from] ferrokms_authz::AuthzError),
}

impl From<TrailError> for Fault {
    fn from(e: TrailError) -> Self {
        let (code, status) = match &e {
            TrailError::LookupAttributes(_) => ("InvalidLookupAttributesException", 400),
            TrailError::TimeRange => ("InvalidTimeRangeException", 400),
            TrailError::MaxResults => ("InvalidMaxResultsException", 400),
            TrailError::NextToken => ("InvalidNextTokenException", 400),
            TrailError::EventCategory => ("InvalidEventCategoryException", 400),
            TrailError::Serialization(_) => ("SerializationException", 400),
            TrailError::UnknownOperation => ("UnknownOperationException", 400),
            TrailError::AccessDenied(_) => ("AccessDeniedException", 400),
            TrailError::Read(_) | TrailError::Authz(_) => ("InternalFailure", 500),
        };
        let message = if status >= 500 {
            tracing::warn!(error = %e, "cloudtrail operation failed");
            "An internal error occurred.".to_string()
        } else {
            e.to_string()
        };
        Fault {
            code: code.into(),
            status,
            message: Some(message),
            members: None,
        }
    }
}

/// A LookupEvents request, read and checked.
#[derive(Debug, Default)]
pub struct Lookup {
    attribute: Option<Attribute>,
    start: Option<i64>,
    end: Option<i64>,
    max: Option<usize>,
    from: Option<Position>,
    insight: bool,
}

/// A timestamp member: seconds since the epoch (the JSON protocol's form).
fn seconds(body: &Map<String, Value>, name: &str) -> Result<Option<i64>, TrailError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite() && f.abs() < 1e12)
            // Whole seconds: an event at 12:00:00 is in a range ending 12:00:00.5.
            .map(|f| Some(f.floor() as i64))
            .ok_or_else(|| TrailError::Serialization(format!("{name} is not a timestamp"))),
        Some(_) => Err(TrailError::Serialization(format!(
            "{name} must be a timestamp (seconds since the epoch)"
        ))),
    }
}

impl Lookup {
    /// Reads LookupEvents' input and checks it as the model and CloudTrail do.
    pub fn parse(body: &Map<String, Value>) -> Result<Lookup, TrailError> {
        let mut out = Lookup::default();
        match body.get("LookupAttributes") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                if list.len() > 1 {
                    return Err(TrailError::LookupAttributes(
                        "You cannot have more than one lookup attribute.".into(),
                    ));
                }
                if let Some(a) = list.first() {
                    out.attribute = Some(attribute(a)?);
                }
            }
            Some(_) => {
                return Err(TrailError::Serialization(
                    "LookupAttributes must be a list".into(),
                ))
            }
        }
        out.start = seconds(body, "StartTime")?;
        out.end = seconds(body, "EndTime")?;
        if let (Some(s), Some(e)) = (out.start, out.end) {
            if s > e {
                return Err(TrailError::TimeRange);
            }
        }
        match body.get("MaxResults") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) => match n.as_u64() {
                Some(m @ 1..=50) => out.max = usize::try_from(m).ok(),
                _ => return Err(TrailError::MaxResults),
            },
            Some(_) => {
                return Err(TrailError::Serialization(
                    "MaxResults must be an integer".into(),
                ))
            }
        }
        match body.get("NextToken") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) => {
                out.from = Some(Position::from_token(t).ok_or(TrailError::NextToken)?);
            }
            Some(_) => return Err(TrailError::NextToken),
        }
        match body.get("EventCategory") {
            None | Some(Value::Null) => {}
            Some(Value::String(c)) if c == "insight" => out.insight = true,
            Some(_) => return Err(TrailError::EventCategory),
        }
        Ok(out)
    }
}

/// One `LookupAttribute`.
fn attribute(a: &Value) -> Result<Attribute, TrailError> {
    let bad = |m: &str| TrailError::LookupAttributes(m.to_string());
    let key = a
        .get("AttributeKey")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("A lookup attribute needs an AttributeKey."))?;
    let value = a
        .get("AttributeValue")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("A lookup attribute needs an AttributeValue."))?;
    if value.is_empty() || value.chars().count() > 2000 {
        return Err(bad(
            "The AttributeValue must be between 1 and 2000 characters long.",
        ));
    }
    let v = value.to_string();
    Ok(match key {
        "EventId" => Attribute::EventId(v),
        "EventName" => Attribute::EventName(v),
        "ReadOnly" => match value.to_ascii_lowercase().as_str() {
            "true" => Attribute::ReadOnly(true),
            "false" => Attribute::ReadOnly(false),
            _ => return Err(bad("The ReadOnly attribute's value must be true or false.")),
        },
        "Username" => Attribute::Username(v),
        "ResourceType" => Attribute::ResourceType(v),
        "ResourceName" => Attribute::ResourceName(v),
        "EventSource" => Attribute::EventSource(v),
        "AccessKeyId" => Attribute::AccessKeyId(v),
        other => {
            return Err(TrailError::LookupAttributes(format!(
                "'{other}' is not a lookup attribute key: EventId, EventName, ReadOnly, Username, ResourceType, ResourceName, EventSource or AccessKeyId."
            )))
        }
    })
}

/// LookupEvents: authorized, then one page of the caller's account's
/// events from the trail in `data_dir` (none when the server keeps no
/// trail).
pub fn lookup_events(
    caller: &Caller,
    data_dir: Option<&std::path::Path>,
    body: &Map<String, Value>,
) -> Result<Value, TrailError> {
    let op = &CLOUDTRAIL_OPERATIONS[0];
    let question = Question::identity(op.action, "*", &caller.account);
    let (record, outcome) = ferrokms_authz::decide(caller, question)?.conclude(None);
    caller.record(record);
    outcome.map_err(TrailError::AccessDenied)?;
    let q = Lookup::parse(body)?;
    let page = match data_dir {
        // No Insights events are kept: the insight category is empty.
        Some(dir) if !q.insight => lookup::lookup(
            dir,
            &Query {
                account: caller.account.as_str(),
                attribute: q.attribute,
                start: q.start,
                end: q.end,
                max: q.max.unwrap_or(MAX_RESULTS),
                from: q.from,
            },
        )
        .or_else(|e| match e {
            crate::audit::read::ReadError::NoTrail(_) => Ok(Page::default()),
            e => Err(e),
        })?,
        _ => Page::default(),
    };
    let mut out = Map::new();
    out.insert(
        "Events".into(),
        page.records.iter().map(event).collect::<Vec<_>>().into(),
    );
    if let Some(next) = page.next {
        out.insert("NextToken".into(), next.token().into());
    }
    Ok(Value::Object(out))
}

/// What would allow the record's denials, in `ferrokms policy explain`'s
/// words (without its check of conditions against the current policies).
pub fn explanation(r: &AuditRecord) -> Vec<String> {
    let caller = r.user_identity.arn();
    let role = r
        .user_identity
        .session_issuer_arn()
        .filter(|s| !s.is_empty());
    let caller_account = r.user_identity.account_id();
    let mut out = Vec::new();
    for d in r.decisions().iter().filter(|d| !d.allowed) {
        let key_account = d.resource.split(':').nth(4).unwrap_or("");
        out.extend(ferrokms_kms::explain::suggest(
            d,
            caller,
            role,
            caller_account,
            key_account,
        ));
    }
    out
}

/// One record as LookupEvents' `Event`.
fn event(r: &AuditRecord) -> Value {
    let mut cloudtrail_event = serde_json::to_value(r).unwrap_or(Value::Null);
    let explained = explanation(r);
    if let (Value::Object(m), false) = (&mut cloudtrail_event, explained.is_empty()) {
        m.insert("ferrokmsExplanation".into(), explained.into());
    }
    let mut e = Map::new();
    e.insert("EventId".into(), r.event_id.as_str().into());
    e.insert("EventName".into(), r.event_name.as_str().into());
    e.insert(
        "ReadOnly".into(),
        if r.read_only { "true" } else { "false" }.into(),
    );
    let akid = lookup::access_key_id(r);
    if !akid.is_empty() {
        e.insert("AccessKeyId".into(), akid.into());
    }
    if let Some(t) = lookup::event_seconds(&r.event_time) {
        e.insert("EventTime".into(), t.into());
    }
    e.insert("EventSource".into(), r.event_source.as_str().into());
    e.insert("Username".into(), lookup::username(r).into());
    e.insert(
        "Resources".into(),
        r.resources
            .iter()
            .map(|x| serde_json::json!({"ResourceType": x.kind, "ResourceName": x.arn}))
            .collect::<Vec<_>>()
            .into(),
    );
    e.insert(
        "CloudTrailEvent".into(),
        serde_json::to_string(&cloudtrail_event)
            .unwrap_or_default()
            .into(),
    );
    Value::Object(e)
}

/// A CloudTrail request in the pipeline (`crate::pipeline`).
pub(crate) struct TrailRequest {
    op: String,
    body: Map<String, Value>,
}

impl TrailRequest {
    pub fn new(op: &str) -> Self {
        TrailRequest {
            op: op.to_string(),
            body: Map::new(),
        }
    }
}

impl Protocol for TrailRequest {
    type Caller = Caller;
    type Call = (String, Map<String, Value>);
    type Output = Vec<u8>;

    const SERVICES: &'static [&'static str] = &[SIGNING_NAME];

    fn service<'a>(&'a self, _: Option<&'a Identity>) -> &'a str {
        SIGNING_NAME
    }

    fn operation(&self) -> &str {
        &self.op
    }

    fn unavailable() -> Fault {
        Fault {
            code: "ServiceUnavailable".into(),
            status: 503,
            message: Some("The service is unavailable. Retry the request.".into()),
            members: None,
        }
    }

    fn internal() -> Fault {
        Fault {
            code: "InternalFailure".into(),
            status: 500,
            message: Some("An internal error occurred.".into()),
            members: None,
        }
    }

    /// The caller, the operation (LookupEvents only) and the body: empty
    /// is `{}`, anything else must be a JSON object.
    fn admit(
        &mut self,
        app: &App,
        req: &Inbound<'_>,
        identity: &Identity,
    ) -> Result<Caller, Fault> {
        let (caller, body) =
            crate::pipeline::admit_json_target(app, req, identity, CLOUDTRAIL_OPERATIONS, &self.op)
                .map_err(|e| match e {
                    crate::pipeline::JsonAdmit::UnknownOperation => TrailError::UnknownOperation,
                    crate::pipeline::JsonAdmit::Body(m) => TrailError::Serialization(m),
                })?;
        self.body = body;
        Ok(caller)
    }

    fn audit_parameters(&self, memo: Option<&mut crate::audit::ParamsMemo>) -> Vec<u8> {
        crate::audit::request_parameters_json(&Value::Object(self.body.clone()), memo)
    }

    fn event_id(&self) -> Option<[u8; 36]> {
        None
    }

    /// Reads files: off the async workers. Changes nothing: no cluster lock.
    fn placement(&self, _: &App) -> Placement {
        Placement::Blocking
    }

    fn call(&mut self) -> Self::Call {
        (self.op.clone(), std::mem::take(&mut self.body))
    }

    fn operate(app: &App, (op, body): Self::Call, caller: Caller) -> Operated<Vec<u8>> {
        let result = match op.as_str() {
            "LookupEvents" => lookup_events(&caller, app.audit.data_dir(), &body)
                .map(|v| serde_json::to_vec(&v).unwrap_or_default())
                .map_err(Fault::from),
            _ => Err(TrailError::UnknownOperation.into()),
        };
        Operated {
            result,
            trace: caller.into_trace(),
        }
    }

    /// The events read are not copied into the record of the read.
    fn response_elements(&self, _: &Vec<u8>) -> Vec<u8> {
        Vec::new()
    }

    fn respond(&self, out: Vec<u8>, _: &str) -> Response {
        crate::json_response(axum::http::StatusCode::OK, out)
    }

    fn respond_error(&self, fault: &Fault, _: &str) -> Response {
        crate::error_response(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Lookup, TrailError> {
        match v {
            Value::Object(m) => Lookup::parse(&m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_catalog_is_sorted_and_same_account_reads() {
        assert!(CLOUDTRAIL_OPERATIONS
            .windows(2)
            .all(|w| w[0].name < w[1].name));
        for op in CLOUDTRAIL_OPERATIONS {
            assert_eq!(op.action, format!("cloudtrail:{}", op.name));
            assert!(op.reads_only && !op.cross_account);
        }
    }

    #[test]
    fn inputs_are_checked_as_cloudtrail_checks_them() {
        use serde_json::json;
        assert!(matches!(
            parse(json!({"MaxResults": 0})),
            Err(TrailError::MaxResults)
        ));
        assert!(matches!(
            parse(json!({"MaxResults": 51})),
            Err(TrailError::MaxResults)
        ));
        assert!(matches!(
            parse(json!({"StartTime": 20, "EndTime": 10})),
            Err(TrailError::TimeRange)
        ));
        assert!(matches!(
            parse(json!({"NextToken": "nope"})),
            Err(TrailError::NextToken)
        ));
        assert!(matches!(
            parse(json!({"EventCategory": "data"})),
            Err(TrailError::EventCategory)
        ));
        let two = json!({"LookupAttributes": [
            {"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
            {"AttributeKey": "EventName", "AttributeValue": "Decrypt"}]});
        assert!(matches!(parse(two), Err(TrailError::LookupAttributes(_))));
        let bad_key =
            json!({"LookupAttributes": [{"AttributeKey": "Color", "AttributeValue": "x"}]});
        assert!(matches!(
            parse(bad_key),
            Err(TrailError::LookupAttributes(_))
        ));
        let ok = parse(
            json!({"LookupAttributes": [{"AttributeKey": "ReadOnly", "AttributeValue": "false"}],
            "MaxResults": 50, "StartTime": 1.5, "EndTime": 2}),
        )
        .unwrap();
        assert_eq!(ok.attribute, Some(Attribute::ReadOnly(false)));
        assert_eq!((ok.start, ok.end, ok.max), (Some(1), Some(2), Some(50)));
    }
}
