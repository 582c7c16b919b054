//! The one request pipeline. Every request, of every service (KMS, IAM,
//! STS) and wire protocol (AWS JSON 1.1, AWS query), runs the same named
//! steps in the same order, and no step is skipped on one protocol:
//!
//! 1. **classify** (`lib.rs`): the protocol and the operation, from
//!    `X-Amz-Target` or the form's `Action`;
//! 2. **fence**: on several nodes, see every change acknowledged before
//!    the request arrived (access keys included);
//! 3. **authenticate**: SigV4, to the [`Identity`] the key belongs to;
//! 4. **admit**: the request context, i.e. the caller as authorization sees
//!    it (profile, request-wide condition keys), and the protocol's own
//!    checks of the identity and the body;
//! 5. **operate**: the operation, which authorizes through its catalog row
//!    and `ferrokms_authz::decide`, placed where its catalog row says (the
//!    async worker, the blocking pool, or the cluster write lock), and
//!    handing back the decision trace by value;
//! 6. **audit**: one record, with the identity, the outcome and the trace;
//! 7. **respond**: the protocol's success or error document.
//!
//! What differs between protocols is behind [`Protocol`]; the order, the
//! audit record and the error handling are here, once.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use ferrokms_authz::AuthzRecord;
use ferrokms_sigv4::HttpRequest;

use crate::auth::{AuthError, Identity, Origin};
use crate::{audit, hdr, App};

/// A request as it reached the pipeline: its HTTP parts, its whole body,
/// and what the edge knows of it.
pub(crate) struct Inbound<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub request_id: &'a str,
    pub origin: Origin,
    /// The connection's audit memo (`audit::ConnMemo`), absent for
    /// requests that come without a connection (in-process tests).
    pub audit_memo: Option<&'a parking_lot::Mutex<audit::ConnMemo>>,
}

impl Inbound<'_> {
    /// The request as SigV4 reads it.
    pub fn with_sigv4<T>(&self, f: impl FnOnce(&HttpRequest<'_>) -> T) -> T {
        let header_pairs: Vec<(&str, &str)> = self
            .headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        f(&HttpRequest {
            method: self.method.as_str(),
            path: self.uri.path(),
            query: self.uri.query().unwrap_or(""),
            headers: &header_pairs,
            body: &self.body,
        })
    }
}

/// An error of any step, as a protocol will write it: AWS's code, the HTTP
/// status, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub code: std::borrow::Cow<'static, str>,
    pub status: u16,
    pub message: Option<String>,
    /// The error's other members, where its shape has some (Access
    /// Analyzer's `reason`, `fieldList`, `resourceId`...).
    pub members: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl Fault {
    /// The AWS JSON protocol's error document: `__type` and `message`
    /// (and the error's other members, if any).
    pub fn json_body(&self) -> Vec<u8> {
        let mut v = serde_json::Map::new();
        v.insert("__type".into(), self.code.as_ref().into());
        if let Some(m) = &self.message {
            v.insert("message".into(), m.as_str().into());
        }
        if let Some(members) = &self.members {
            for (k, m) in members.iter() {
                v.insert(k.clone(), m.clone());
            }
        }
        serde_json::to_vec(&serde_json::Value::Object(v)).unwrap_or_default()
    }
}

/// Where an operation runs (step 5), as its catalog row decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placement {
    /// On the async worker: fast, reads only memory.
    Inline,
    /// On the blocking pool: writes to the store, or slow.
    Blocking,
    /// On the blocking pool under the cluster write lock (several nodes,
    /// an operation that writes).
    Locked,
}

/// What one wire protocol contributes to the pipeline's steps.
pub(crate) trait Protocol: Sized {
    /// The caller an operation of this protocol takes.
    type Caller: Send + 'static;
    /// The operation's input, moved to where it runs.
    type Call: Send + 'static;
    /// What an operation answers, before the protocol wraps it.
    type Output: Send + 'static;

    /// The services whose credential scope may sign these requests.
    const SERVICES: &'static [&'static str];

    /// The service the audit record names (before authentication, the one
    /// the request's shape or credential scope points at).
    fn service<'a>(&'a self, identity: Option<&'a Identity>) -> &'a str;
    /// The operation, as the audit record names it.
    fn operation(&self) -> &str;

    /// Step 2's failure: the store cannot be reached. (Made only when it
    /// happens: no error document is built for a request that succeeds.)
    fn unavailable() -> Fault;
    /// Step 3's failure.
    fn unauthenticated(&self, e: &AuthError) -> Fault {
        // The AWS JSON protocols' shape (KMS, CloudTrail): the code and
        // message of the refusal, status 400.
        crate::kms_api::ApiError::new(e.code(), e.message()).into()
    }
    /// Step 5 ended without an answer (the operation panicked).
    fn internal() -> Fault;

    /// Step 4: the caller, and the protocol's checks of the request.
    fn admit(
        &mut self,
        app: &App,
        req: &Inbound<'_>,
        identity: &Identity,
    ) -> Result<Self::Caller, Fault>;
    /// The request's parameters for the audit record (JSON), after step 4.
    fn audit_parameters(&self, memo: Option<&mut audit::ParamsMemo>) -> Vec<u8>;
    /// The event id the operation gives its record, if it names it itself
    /// (KMS: GetKeyLastUsage).
    fn event_id(&self) -> Option<[u8; 36]>;
    /// Where step 5 runs.
    fn placement(&self, app: &App) -> Placement;
    /// The operation's input, taken for step 5.
    fn call(&mut self) -> Self::Call;
    /// Step 5: the operation, with the decisions it took, by value.
    fn operate(app: &App, call: Self::Call, caller: Self::Caller) -> Operated<Self::Output>;

    /// The response's elements for the audit record (JSON).
    fn response_elements(&self, out: &Self::Output) -> Vec<u8>;
    /// Step 7.
    fn respond(&self, out: Self::Output, request_id: &str) -> Response;
    fn respond_error(&self, fault: &Fault, request_id: &str) -> Response;
}

/// What step 5 hands back: the operation's result and the decision trace.
pub(crate) struct Operated<T> {
    pub result: Result<T, Fault>,
    pub trace: Vec<AuthzRecord>,
}

impl<T> Operated<T> {
    /// Nothing ran, so nothing was decided.
    fn failed(fault: Fault) -> Self {
        Operated {
            result: Err(fault),
            trace: Vec::new(),
        }
    }
}

/// Runs a classified request through the steps.
pub(crate) async fn serve<P: Protocol>(app: &Arc<App>, req: Inbound<'_>, mut proto: P) -> Response {
    let audit = Audit { app, req: &req };
    // 2. fence
    if let Some(cluster) = &app.cluster {
        if let Err(e) = cluster.fence().await {
            tracing::warn!(error = %e, "storage unavailable");
            let fault = P::unavailable();
            audit.record(&proto, None, &[], Err(&fault), &[]);
            return proto.respond_error(&fault, req.request_id);
        }
    }
    // 3. authenticate
    let identity = match req.with_sigv4(|r| app.auth.authenticate(r, P::SERVICES)) {
        Ok(i) => i,
        Err(e) => {
            let fault = proto.unauthenticated(&e);
            audit.record(&proto, None, &[], Err(&fault), &[]);
            return proto.respond_error(&fault, req.request_id);
        }
    };
    // 4. admit
    let caller = match proto.admit(app, &req, &identity) {
        Ok(c) => c,
        Err(fault) => {
            audit.record(&proto, Some(&identity), &[], Err(&fault), &[]);
            return proto.respond_error(&fault, req.request_id);
        }
    };
    let params = if app.audit.enabled() {
        let mut memo = req.audit_memo.map(|m| m.lock());
        proto.audit_parameters(memo.as_deref_mut().map(|m| &mut m.params))
    } else {
        Vec::new()
    };
    // 5. operate
    let call = proto.call();
    let Operated { result, trace } = match proto.placement(app) {
        Placement::Inline => P::operate(app, call, caller),
        placement => {
            let app = app.clone();
            tokio::task::spawn_blocking(move || match (placement, app.cluster.clone()) {
                (Placement::Locked, Some(cluster)) => cluster
                    .write(|| P::operate(&app, call, caller))
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "storage unavailable");
                        Operated::failed(P::unavailable())
                    }),
                _ => P::operate(&app, call, caller),
            })
            .await
            .unwrap_or_else(|_| {
                tracing::error!(
                    operation = proto.operation(),
                    "the operation ended without an answer"
                );
                Operated::failed(P::internal())
            })
        }
    };
    for d in &trace {
        tracing::debug!(
            request_id = req.request_id,
            action = %d.action,
            resource = %d.resource,
            allowed = d.allowed,
            decision = %d.decision,
            statements = ?d.statements,
            "authorization"
        );
    }
    // 6. audit, 7. respond
    match result {
        Ok(out) => {
            if app.audit.enabled() {
                let elements = proto.response_elements(&out);
                audit.record(&proto, Some(&identity), &params, Ok(&elements), &trace);
            }
            proto.respond(out, req.request_id)
        }
        Err(fault) => {
            audit.record(&proto, Some(&identity), &params, Err(&fault), &trace);
            proto.respond_error(&fault, req.request_id)
        }
    }
}

/// Step 6, for whichever step ended the request.
struct Audit<'a> {
    app: &'a App,
    req: &'a Inbound<'a>,
}

impl Audit<'_> {
    fn record<P: Protocol>(
        &self,
        proto: &P,
        identity: Option<&Identity>,
        params: &[u8],
        outcome: Result<&[u8], &Fault>,
        trace: &[AuthzRecord],
    ) {
        if !self.app.audit.enabled() {
            return;
        }
        let (response_elements, error) = match outcome {
            Ok(elements) => (elements, None),
            Err(f) => (&[][..], Some((f.code.as_ref(), f.message.as_deref()))),
        };
        let mut memo = self.req.audit_memo.map(|m| m.lock());
        self.app.audit.record_event(
            audit::EventInput {
                service: proto.service(identity),
                op: proto.operation(),
                region: identity.map(|i| i.region.as_str()).unwrap_or_default(),
                source_ip: self.req.origin.ip,
                user_agent: self
                    .req
                    .headers
                    .get(hdr::USER_AGENT)
                    .and_then(|v| v.to_str().ok()),
                identity,
                request_parameters: params,
                response_elements,
                error,
                request_id: self.req.request_id,
                event_id: proto.event_id(),
                decisions: trace,
                now_ms: now_ms(),
            },
            memo.as_deref_mut(),
        );
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Why a JSON-target request (`X-Amz-Target: Service.Operation`, a JSON
/// object body) was not admitted; each protocol maps it to its own error.
pub(crate) enum JsonAdmit {
    /// The operation is not a row of the protocol's catalog.
    UnknownOperation,
    /// The body is not a JSON object (the message).
    Body(String),
}

/// Step 4 of a JSON-target protocol whose operations are the rows of
/// `operations` (CloudTrail, ferrokms's analysis operations): the
/// operation must be one, the body a JSON object ([`json_object_body`]);
/// the caller is the authenticated identity's, with no service headers.
pub(crate) fn admit_json_target(
    app: &App,
    req: &Inbound<'_>,
    identity: &Identity,
    operations: &[ferrokms_authz::catalog::Operation],
    op: &str,
) -> Result<
    (
        ferrokms_authz::Caller,
        serde_json::Map<String, serde_json::Value>,
    ),
    JsonAdmit,
> {
    if ferrokms_authz::catalog::find(operations, op).is_none() {
        return Err(JsonAdmit::UnknownOperation);
    }
    let body = json_object_body(&req.body).map_err(JsonAdmit::Body)?;
    let caller = crate::auth::caller(
        &app.directory,
        &app.profiles,
        identity,
        req.origin,
        crate::auth::ServiceHeaders::default(),
    );
    Ok((caller, body))
}

/// A JSON protocol's request body as an object (Access Analyzer,
/// CloudTrail): an empty or all-blank body is `{}`; anything else must be
/// a JSON object. The error is the message each protocol puts in its own
/// error shape.
pub(crate) fn json_object_body(
    body: &[u8],
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        Ok(_) => Err("The request body must be a JSON object.".into()),
        Err(e) => Err(format!("The request body is not valid JSON: {e}")),
    }
}
