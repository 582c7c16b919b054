//! IAM Access Analyzer's REST-JSON protocol (signing name
//! `access-analyzer`): the operation is the HTTP method and path
//! (`ferrokms_analyzer::routes`), its inputs the path's labels, the query
//! string and a JSON body; errors carry their code in `X-Amzn-ErrorType`
//! and a JSON body with `message` and the error's other members
//! (`reason`, `fieldList`, `resourceId`, `resourceType`). The operations
//! are `ferrokms_analyzer::Analyzers::call`, authorized by their catalog
//! rows (`ferrokms_analyzer::catalog`).

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::Response;
use ferrokms_analyzer::analyzers::Input;
use ferrokms_analyzer::routes::{self, Routed};
use ferrokms_analyzer::{AnalyzerError, ValidationReason};
use ferrokms_authz::Caller;
use serde_json::{Map, Value};

use crate::auth::{AuthError, Identity};
use crate::pipeline::{Fault, Inbound, Operated, Placement, Protocol};
use crate::App;

/// The SigV4 signing name (and IAM action prefix) of the service.
pub const SIGNING_NAME: &str = "access-analyzer";

/// Whether a request that is neither KMS's nor IAM's or STS's is Access
/// Analyzer's: signed for `access-analyzer`, or (unsigned, so that it gets
/// the service's own authentication error) on one of its paths.
pub(crate) fn is_analyzer_request(req: &Inbound<'_>) -> bool {
    let scoped = req.with_sigv4(|r| ferrokms_sigv4::parse(r).ok().map(|p| p.scope.service));
    match scoped {
        Some(service) => service == SIGNING_NAME,
        None => routes::is_service_path(req.uri.path()),
    }
}

impl From<AnalyzerError> for Fault {
    fn from(e: AnalyzerError) -> Self {
        if e.status() >= 500 {
            tracing::warn!(error = %e, "access-analyzer operation failed");
        }
        let members = e.members();
        Fault {
            code: e.code().into(),
            status: e.status(),
            message: Some(e.public_message()),
            members: (!members.is_empty()).then(|| Box::new(members)),
        }
    }
}

/// An Access Analyzer request in the pipeline (`crate::pipeline`).
pub(crate) struct AnalyzerRequest {
    routed: Option<Routed>,
    query: Vec<(String, String)>,
    body: Map<String, Value>,
}

impl AnalyzerRequest {
    pub fn new(req: &Inbound<'_>) -> Self {
        let query = form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        AnalyzerRequest {
            routed: routes::route_of(req.method.as_str(), req.uri.path()),
            query,
            body: Map::new(),
        }
    }

    /// The names of the route's labels (`analyzerName`, `resourceArn`...).
    fn label_names(&self) -> Vec<&'static str> {
        let Some(r) = &self.routed else {
            return Vec::new();
        };
        routes::MODEL_ROUTES
            .iter()
            .find(|m| m.name == r.name)
            .map(|m| {
                m.template
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Protocol for AnalyzerRequest {
    type Caller = Caller;
    type Call = (
        Cow<'static, str>,
        Vec<String>,
        Vec<(String, String)>,
        Map<String, Value>,
    );
    type Output = Vec<u8>;

    const SERVICES: &'static [&'static str] = &[SIGNING_NAME];

    fn service<'a>(&'a self, _: Option<&'a Identity>) -> &'a str {
        SIGNING_NAME
    }

    fn operation(&self) -> &str {
        self.routed.as_ref().map_or("UnknownOperation", |r| r.name)
    }

    fn unavailable() -> Fault {
        AnalyzerError::Store(ferrokms_store::StoreError::Unavailable(
            "the store cannot be reached".into(),
        ))
        .into()
    }

    /// The REST-JSON services' authentication errors, all 403.
    fn unauthenticated(&self, e: &AuthError) -> Fault {
        Fault {
            code: e.code().into(),
            status: 403,
            message: Some(e.message()),
            members: None,
        }
    }

    fn internal() -> Fault {
        AnalyzerError::Corrupt("the operation ended without an answer".into()).into()
    }

    /// The caller (the same authorization view as every service's), the
    /// route, and the body: empty is `{}`, anything else must be a JSON
    /// object.
    fn admit(
        &mut self,
        app: &App,
        req: &Inbound<'_>,
        identity: &Identity,
    ) -> Result<Caller, Fault> {
        if self.routed.is_none() {
            return Err(AnalyzerError::validation(
                ValidationReason::UnknownOperation,
                format!(
                    "No operation of {SIGNING_NAME} is {} {}",
                    req.method,
                    req.uri.path()
                ),
            )
            .into());
        }
        self.body = crate::pipeline::json_object_body(&req.body).map_err(|m| {
            Fault::from(AnalyzerError::validation(ValidationReason::CannotParse, m))
        })?;
        Ok(crate::auth::caller(
            &app.directory,
            &app.profiles,
            identity,
            req.origin,
            crate::auth::ServiceHeaders::default(),
        ))
    }

    /// The body's members, the path's labels and the query's parameters.
    fn audit_parameters(&self, memo: Option<&mut crate::audit::ParamsMemo>) -> Vec<u8> {
        let mut all = self.body.clone();
        if let Some(r) = &self.routed {
            for (name, value) in self.label_names().into_iter().zip(&r.labels) {
                all.insert(name.to_string(), value.as_str().into());
            }
        }
        for (k, v) in &self.query {
            all.insert(k.clone(), v.as_str().into());
        }
        crate::audit::request_parameters_json(&Value::Object(all), memo)
    }

    fn event_id(&self) -> Option<[u8; 36]> {
        None
    }

    /// Every operation reads the store (or, ValidatePolicy, may take a few
    /// milliseconds on a large document): off the async workers; writes
    /// under the cluster write lock on several nodes.
    fn placement(&self, app: &App) -> Placement {
        // An operation that takes the cluster lock itself, for its store
        // update only, runs outside it like a read.
        let reads_only = self
            .routed
            .as_ref()
            .and_then(|r| ferrokms_analyzer::catalog::find(r.name))
            .is_none_or(|op| {
                op.reads_only || ferrokms_analyzer::catalog::TAKES_OWN_LOCK.contains(&op.name)
            });
        if app.cluster.is_some() && !reads_only {
            Placement::Locked
        } else {
            Placement::Blocking
        }
    }

    fn call(&mut self) -> Self::Call {
        let (name, labels) = match &mut self.routed {
            Some(r) => (Cow::Borrowed(r.name), std::mem::take(&mut r.labels)),
            None => (Cow::Borrowed("UnknownOperation"), Vec::new()),
        };
        (
            name,
            labels,
            std::mem::take(&mut self.query),
            std::mem::take(&mut self.body),
        )
    }

    fn operate(
        app: &App,
        (name, labels, query, body): Self::Call,
        caller: Caller,
    ) -> Operated<Vec<u8>> {
        let input = Input {
            labels: &labels,
            query: &query,
            body: &body,
        };
        let result = app
            .analyzers
            .call(&caller, &name, &input)
            .map(|v| serde_json::to_vec(&v).unwrap_or_default())
            .map_err(Fault::from);
        Operated {
            result,
            trace: caller.into_trace(),
        }
    }

    /// Access Analyzer records carry no response elements.
    fn response_elements(&self, _: &Vec<u8>) -> Vec<u8> {
        Vec::new()
    }

    fn respond(&self, out: Vec<u8>, _: &str) -> Response {
        rest_json(StatusCode::OK, out)
    }

    fn respond_error(&self, fault: &Fault, _: &str) -> Response {
        let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = rest_json(status, fault.json_body());
        if let Ok(v) = axum::http::HeaderValue::from_str(&fault.code) {
            resp.headers_mut().insert(crate::hdr::X_AMZN_ERRORTYPE, v);
        }
        resp
    }
}

fn rest_json(status: StatusCode, body: Vec<u8>) -> Response {
    use axum::response::IntoResponse;
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        crate::hdr::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    resp
}
