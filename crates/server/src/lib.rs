//! The HTTP edge of ferrokms: one endpoint, AWS's wire protocols, SigV4.
//!
//! A request flows: body (size-limited) -> protocol (by `X-Amz-Target`) ->
//! authentication -> model validation -> operation -> response, with every
//! error mapped once, here, to AWS's shape and status.

pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cluster;
pub mod iam_api;
pub mod ids;
pub mod kms_api;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod ops_http;
pub mod query;
pub mod setup;
pub mod sts_api;
pub mod validate;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrokms_iam::Directory;
use ferrokms_kms::Kms;
use ferrokms_sigv4::HttpRequest;
use serde_json::Value;

use crate::auth::{Authenticator, Identity};
use crate::kms_api::{ApiError, TARGET_PREFIX};
use crate::validate::Model;

/// The headers every request reads or writes, as names made at compile
/// time: a lookup by `&str` parses and lowercases the name each time.
pub(crate) mod hdr {
    pub use axum::http::header::{CONTENT_TYPE, USER_AGENT};
    use axum::http::HeaderName;
    pub const X_AMZ_TARGET: HeaderName = HeaderName::from_static("x-amz-target");
    pub const X_AMZN_REQUESTID: HeaderName = HeaderName::from_static("x-amzn-requestid");
    pub const X_AMZN_ERRORTYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");
}

/// Requests larger than this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything a request handler needs.
pub struct App {
    pub kms: Arc<Kms>,
    pub directory: Arc<Directory>,
    pub auth: Authenticator,
    pub kms_model: Model,
    /// See `setup::Options::via_service_principals`.
    pub via_service_principals: Vec<String>,
    /// Caller profiles derived from the directory, per access key.
    pub profiles: auth::ProfileCache,
    /// The audit trail (disabled for in-memory servers).
    pub audit: audit::AuditLog,
    /// `serve --test-clock`: enables `kms_api::ADVANCE_CLOCK_OP`.
    pub test_clock: bool,
    /// Set when several nodes share the store (PostgreSQL): the read fence
    /// and the cluster write lock (see `cluster`).
    pub cluster: Option<Arc<cluster::Cluster>>,
}

pub fn router(app: Arc<App>) -> Router {
    ops_http::routes().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let request_num = ids::unique_id_u128();
    // The bytes are ASCII hex digits and dashes.
    let request_id = ferrokms_types::uuid_string(request_num);
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<Arc<listener::ConnInfo>>();
    let mut labels = ops_http::labels(&parts.headers, &parts.uri, &[]);
    let mut resp = match read_body(body, &parts.headers, &parts.uri, conn).await {
        // The reservation (bodies over 8 KiB) is held until the answer.
        Ok(limits::ReadBody {
            bytes,
            permit: _permit,
        }) => {
            if labels.service() != "kms" {
                labels = ops_http::labels(&parts.headers, &parts.uri, &bytes);
            }
            let origin = auth::Origin {
                ip: parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip()),
                secure_transport: conn.is_some_and(|c| c.tls),
            };
            serve_request(
                &app,
                &parts.method,
                &parts.uri,
                &parts.headers,
                bytes,
                (&request_id, request_num),
                origin,
            )
            .await
        }
        Err(e) => limits::refusal(&e, &parts.headers, &parts.uri, labels, &request_id),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(hdr::X_AMZN_REQUESTID, v);
    }
    if let Some(code) = resp.headers().get(hdr::X_AMZN_ERRORTYPE) {
        metrics::record_error(labels, code.to_str().unwrap_or(""));
    }
    metrics::record(labels, resp.status().as_u16(), started.elapsed());
    resp
}

/// The body, within `serve --body-timeout` and [`MAX_BODY_BYTES`], and
/// within what `limits` lets a request hold before it is authenticated
/// (413, 408, throttling; an unsigned body over 8 KiB is left unread).
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    conn: Option<&Arc<listener::ConnInfo>>,
) -> Result<limits::ReadBody, ApiError> {
    let timeout = conn.map_or(listener::Limits::default().body_timeout, |c| c.body_timeout);
    limits::read_body(body, headers, uri, conn.map(|c| &c.admitted), timeout).await
}

async fn serve_request(
    app: &Arc<App>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Bytes,
    (request_id, request_num): (&str, u128),
    origin: auth::Origin,
) -> Response {
    let source_ip = origin.ip;
    // Made here so that GetKeyLastUsage can name this request's audit record.
    let usage_ids = ferrokms_kms::usage::RequestIds {
        request_id: request_num,
        event_id: ids::unique_id_u128(),
    };
    let target = headers
        .get(hdr::X_AMZ_TARGET)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
        let form = headers
            .get(hdr::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if target.is_empty() && (form || uri.query().is_some_and(|q| q.contains("Action="))) {
            return serve_query(app, method, uri, headers, body, request_id, origin).await;
        }
        return error_response(&ApiError {
            code: "UnknownOperationException",
            message: None,
            status: 400,
        });
    };
    let audit = |identity: Option<&auth::Identity>,
                 params: &[u8],
                 response: &[u8],
                 error: Option<&ApiError>,
                 decisions: &[ferrokms_kms::authz::AuthzRecord]| {
        if !app.audit.enabled() {
            return;
        }
        app.audit.record_event(audit::EventInput {
            service: "kms",
            op,
            region: identity.map(|i| i.region.as_str()).unwrap_or_default(),
            source_ip,
            user_agent: headers.get(hdr::USER_AGENT).and_then(|v| v.to_str().ok()),
            identity,
            request_parameters: params,
            response_elements: response,
            error: error.map(|e| (e.code, e.message.as_deref())),
            request_id,
            event_id: Some(ids::id_bytes(usage_ids.event_id)),
            decisions,
            now_ms: now_ms(),
        });
    };
    // Several nodes: see every change acknowledged before this request
    // arrived (access keys included) before authenticating it.
    if let Some(cluster) = &app.cluster {
        if let Err(e) = cluster.fence().await {
            let e = store_unavailable(&e);
            audit(None, &[], &[], Some(&e), &[]);
            return error_response(&e);
        }
    }
    let identity = match authenticate(app, method, uri, headers, &body, &["kms"]) {
        Ok(i) => i,
        Err(e) => {
            audit(None, &[], &[], Some(&e), &[]);
            return error_response(&e);
        }
    };
    let via_service = match auth::via_service(headers, &identity, &app.via_service_principals) {
        Ok(v) => v,
        Err(e) => {
            audit(Some(&identity), &[], &[], Some(&e), &[]);
            return error_response(&e);
        }
    };
    let caller = auth::caller(
        &app.directory,
        &app.profiles,
        &identity,
        origin,
        via_service,
    );
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let e = ApiError::new(
                    "SerializationException",
                    format!("The request body is not valid JSON: {e}"),
                );
                audit(Some(&identity), &[], &[], Some(&e), &[]);
                return error_response(&e);
            }
        }
    };
    let params = if app.audit.enabled() {
        audit::request_parameters_json(&value)
    } else {
        Vec::new()
    };
    let op_name = op;
    let op = op.to_string();
    let decisions = caller.identity.clone();
    let write_lock = app
        .cluster
        .clone()
        .filter(|_| !cluster::kms_op_reads_only(&op));
    // A large encryption context may make authorization heavy (a policy full of patterns
    // tried on it): such requests go to the blocking pool too, so that no request holds an
    // async worker for more than a few milliseconds.
    let result = if kms_api::runs_blocking(&op)
        || write_lock.is_some()
        || kms_api::heavy_authorization(&op, &value)
    {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            let run = || {
                if app.test_clock && op == kms_api::ADVANCE_CLOCK_OP {
                    return kms_api::advance_clock(&app.kms, &app.directory, &caller, value);
                }
                ferrokms_kms::usage::with_request_ids(usage_ids, || {
                    kms_api::dispatch(&app.kms, &app.kms_model, &caller, &op, value)
                })
            };
            match write_lock {
                Some(cluster) => cluster
                    .write(run)
                    .unwrap_or_else(|e| Err(store_unavailable(&e))),
                None => run(),
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(ApiError {
                code: "KMSInternalException",
                message: Some("The operation failed unexpectedly.".into()),
                status: 500,
            })
        })
    } else {
        ferrokms_kms::usage::with_request_ids(usage_ids, || {
            kms_api::dispatch(&app.kms, &app.kms_model, &caller, &op, value)
        })
    };
    // The decision trace of the request (the audit log will carry it),
    // taken once rather than copied.
    let trace = decisions.take_decisions();
    for d in &trace {
        tracing::debug!(
            request_id,
            action = %d.action,
            resource = %d.resource,
            allowed = d.allowed,
            decision = %d.decision,
            statements = ?d.statements,
            "authorization"
        );
    }
    match &result {
        Ok(bytes) => audit(
            Some(&identity),
            &params,
            &audit::response_elements(op_name, bytes),
            None,
            &trace,
        ),
        Err(e) => audit(Some(&identity), &params, &[], Some(e), &trace),
    }
    match result {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(e) => error_response(&e),
    }
}

/// The store cannot be reached (PostgreSQL stopped or restarting): AWS's
/// retryable answer, which the SDKs retry by themselves.
fn store_unavailable(e: &ferrokms_store::StoreError) -> ApiError {
    tracing::warn!(error = %e, "storage unavailable");
    ApiError {
        code: "DependencyTimeoutException",
        message: Some(
            "The system timed out while trying to fulfill the request. You can retry the request."
                .into(),
        ),
        status: 503,
    }
}

/// As [`store_unavailable`], in the query protocol's (IAM, STS) terms.
fn query_store_unavailable(e: &ferrokms_store::StoreError) -> query::QueryError {
    tracing::warn!(error = %e, "storage unavailable");
    query::QueryError::new(
        "ServiceUnavailable",
        503,
        "The service is unavailable: its storage cannot be reached. Retry the request.",
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// IAM and STS: the AWS query protocol, routed by the signed service.
async fn serve_query(
    app: &Arc<App>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Bytes,
    request_id: &str,
    origin: auth::Origin,
) -> Response {
    let params = query::Params::parse(uri.query().unwrap_or(""), &body);
    let header_pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &header_pairs,
        body: &body,
    };
    // Which service the client meant: the credential scope, or failing
    // that (unsigned requests) the action's home.
    let scoped = ferrokms_sigv4::parse(&req).ok().map(|p| p.scope.service);
    let namespace = match scoped.as_deref() {
        Some("sts") => sts_api::STS_NAMESPACE,
        _ => iam_api::IAM_NAMESPACE,
    };
    let fail = |e: query::QueryError| {
        // The KMS path's codes travel in a header; these only in the XML.
        metrics::record_error(
            metrics::Labels::new(
                if namespace == sts_api::STS_NAMESPACE {
                    "sts"
                } else {
                    "iam"
                },
                "",
            ),
            &e.code,
        );
        xml_response(e.status, e.to_xml(namespace, request_id))
    };
    let action_name = params.get("Action").unwrap_or("").to_string();
    let params_json = if app.audit.enabled() {
        audit::request_parameters_json(&params.audit_json())
    } else {
        Vec::new()
    };
    let audit = |identity: Option<&auth::Identity>,
                 error: Option<&query::QueryError>,
                 decisions: &[ferrokms_authz::AuthzRecord]| {
        if !app.audit.enabled() {
            return;
        }
        let service = identity
            .map(|i| i.service.clone())
            .or_else(|| scoped.clone())
            .unwrap_or_else(|| "iam".into());
        app.audit.record_event(audit::EventInput {
            service: &service,
            op: &action_name,
            region: identity.map(|i| i.region.as_str()).unwrap_or_default(),
            source_ip: origin.ip,
            user_agent: headers.get(hdr::USER_AGENT).and_then(|v| v.to_str().ok()),
            identity,
            request_parameters: &params_json,
            response_elements: &[],
            error: error.map(|e| (e.code.as_str(), Some(e.message.as_str()))),
            request_id,
            event_id: None,
            decisions,
            now_ms: now_ms(),
        });
    };
    if let Some(cluster) = &app.cluster {
        if let Err(e) = cluster.fence().await {
            let err = query_store_unavailable(&e);
            audit(None, Some(&err), &[]);
            return fail(err);
        }
    }
    let identity = match app.auth.authenticate(&req, &["iam", "sts"]) {
        Ok(i) => i,
        Err(e) => {
            let (code, status) = e.query_code();
            let err = query::QueryError::new(code, status, e.message());
            audit(None, Some(&err), &[]);
            return fail(err);
        }
    };
    let audited_identity = identity.clone();
    let Some(action) = params.get("Action").map(str::to_string) else {
        return fail(query::QueryError::new(
            "MissingAction",
            400,
            "Missing Action",
        ));
    };
    let caller = auth::iam_caller(&app.directory, &app.profiles, &identity, origin);
    let decisions = caller.authz.identity.clone();
    // Temporary credentials from GetSessionToken (no MFA here) may not call
    // IAM at all, and of STS only AssumeRole and GetCallerIdentity; AWS
    // answers as if the token were not valid for them.
    if caller.temporary
        && !matches!(
            caller.principal,
            ferrokms_iam::Principal::AssumedRole { .. }
        )
        && (identity.service == "iam"
            // (GetSessionToken itself answers AWS's own refusal.)
            || !matches!(
                action.as_str(),
                "AssumeRole" | "GetCallerIdentity" | "GetSessionToken"
            ))
    {
        let err = query::QueryError::new(
            "InvalidClientTokenId",
            403,
            "The security token included in the request is invalid",
        );
        audit(Some(&audited_identity), Some(&err), &[]);
        return fail(err);
    }
    let app2 = app.clone();
    let service = identity.service.clone();
    let result = tokio::task::spawn_blocking(move || {
        let write_lock = app2
            .cluster
            .clone()
            .filter(|_| !cluster::query_action_reads_only(&service, &action));
        let run = || query_dispatch(&app2, &service, &caller, &params, action);
        match write_lock {
            Some(cluster) => cluster
                .write(run)
                .unwrap_or_else(|e| Err(query_store_unavailable(&e))),
            None => run(),
        }
    })
    .await
    .unwrap_or_else(|_| {
        Err(query::QueryError::new(
            "ServiceFailure",
            500,
            "The request processing has failed because of an unknown error.",
        ))
    });
    audit(
        Some(&audited_identity),
        result.as_ref().err(),
        &decisions.take_decisions(),
    );
    match result {
        Ok((action, body)) => {
            xml_response(200, query::response(&action, namespace, &body, request_id))
        }
        Err(e) => fail(e),
    }
}

/// Runs one IAM or STS action.
fn query_dispatch(
    app: &App,
    service: &str,
    caller: &ferrokms_iam::Caller,
    params: &query::Params,
    action: String,
) -> Result<(String, String), query::QueryError> {
    let dispatch = if service == "sts" {
        sts_api::dispatch
    } else {
        iam_api::dispatch
    };
    dispatch(&app.directory, caller, &action, params).map(|body| (action, body))
}

fn xml_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(hdr::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    resp
}

fn authenticate(
    app: &App,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
    services: &[&str],
) -> Result<Identity, ApiError> {
    let header_pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let req = HttpRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &header_pairs,
        body,
    };
    app.auth
        .authenticate(&req, services)
        .map_err(|e| ApiError::new(e.code(), e.message()))
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        hdr::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, e.body());
    if let Ok(v) = HeaderValue::from_str(e.code) {
        resp.headers_mut().insert(hdr::X_AMZN_ERRORTYPE, v);
    }
    resp
}

/// Runs the server until `shutdown` resolves; in-flight requests finish.
/// Default limits, no TLS: see [`listener::serve`] for both.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    listener::serve(app, listener, listener::Limits::default(), None, shutdown).await
}

/// The background task that deletes keys past their deletion date and
/// rotates keys whose rotation is due, every 10 seconds, then writes the
/// key usage recorded since the last time (GetKeyLastUsage: a kill -9 loses
/// at most this interval of it).
/// On a shared store it runs under the cluster write lock after catching
/// up, so a key due for deletion or rotation is handled by exactly one node.
pub(crate) fn spawn_sweeper(app: &App) -> tokio::task::JoinHandle<()> {
    let kms = app.kms.clone();
    let cluster = app.cluster.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let kms = kms.clone();
            let cluster = cluster.clone();
            let res = tokio::task::spawn_blocking(move || {
                let work = || (kms.sweep(), kms.flush_usage());
                match &cluster {
                    Some(c) => c.write(work).map_err(|e| {
                        tracing::warn!(error = %e, "sweep skipped: cluster write lock failed");
                    }),
                    None => Ok(work()),
                }
            })
            .await;
            if let Ok(Ok((sweep, flushed))) = res {
                if let Err(e) = sweep.keys_deleted {
                    tracing::warn!(error = %e, "deleting keys past their deletion date failed");
                }
                if let Err(e) = sweep.keys_rotated {
                    tracing::warn!(error = %e, "rotating keys past their rotation date failed");
                }
                if let Err(e) = sweep.materials_expired {
                    tracing::warn!(error = %e, "deleting expired imported key material failed");
                }
                if let Err(e) = flushed {
                    tracing::warn!(error = %e, "writing key usage failed (kept in memory for the next flush)");
                }
            }
        }
    })
}

/// The last flush of key usage at a graceful stop (after the last request),
/// under the cluster write lock when there is one, so a SIGTERM loses none.
pub(crate) async fn flush_usage_at_stop(kms: Arc<Kms>, cluster: Option<Arc<cluster::Cluster>>) {
    let res = tokio::task::spawn_blocking(move || match &cluster {
        Some(c) => c
            .write(|| kms.flush_usage())
            .unwrap_or_else(|e| Err(ferrokms_kms::KmsError::from(e))),
        None => kms.flush_usage(),
    })
    .await;
    match res {
        Ok(Ok(n)) => tracing::debug!(documents = n, "key usage written at stop"),
        Ok(Err(e)) => tracing::warn!(error = %e, "writing key usage at stop failed"),
        Err(e) => tracing::warn!(error = %e, "writing key usage at stop failed"),
    }
}
