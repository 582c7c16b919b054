//! The HTTP edge of ferrokms: one endpoint, AWS's wire protocols, SigV4.
//!
//! A request flows: body (size-limited) -> protocol (by `X-Amz-Target`) ->
//! authentication -> model validation -> operation -> response, with every
//! error mapped once, here, to AWS's shape and status.

pub mod analyzer_api;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cloudtrail_api;
pub mod cluster;
pub mod console;
pub mod dev_reset;
pub mod iam_api;
pub mod ids;
pub mod kms_api;
pub mod limits;
pub mod listener;
pub mod localkms;
pub mod metrics;
pub mod ops_http;
pub(crate) mod pipeline;
pub mod query;
pub mod setup;
pub mod sts_api;
pub mod validate;
pub mod xks;
pub mod xks_client;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use ferrokms_iam::Directory;
use ferrokms_kms::Kms;

use crate::auth::Authenticator;
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
    /// The KMS domain: keys, aliases, grants.
    pub kms: Arc<Kms>,
    /// The identity directory: accounts, users, roles, access keys.
    pub directory: Arc<Directory>,
    /// IAM Access Analyzer: ValidatePolicy, analyzers with their findings, access previews and the custom policy checks.
    pub analyzers: ferrokms_analyzer::Analyzers,
    /// Authenticates every request.
    pub auth: Authenticator,
    /// The KMS service model, which requests are validated against.
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
    /// `serve --xks`: the external key store proxy (`xks`), served on the
    /// same listener under its path prefix.
    pub xks: Option<Arc<xks::XksProxy>>,
    /// The store and sealer the state was opened from (for `enable_xks`).
    pub(crate) store: Arc<dyn ferrokms_store::Store>,
    pub(crate) sealer: Arc<ferrokms_store::Sealer>,
}

impl App {
    /// Serves the XKS proxy API under `prefix` (`serve --xks
    /// --xks-path-prefix`), from this server's store.
    pub fn enable_xks(&mut self, prefix: &str) -> Result<Arc<xks::XksProxy>, xks::PrefixError> {
        let proxy = Arc::new(xks::XksProxy::new(
            self.store.clone(),
            self.sealer.clone(),
            prefix,
        )?);
        self.xks = Some(proxy.clone());
        Ok(proxy)
    }
}

/// The HTTP routes: the operational endpoints (`/health`, `/metrics`...),
/// the web console's static assets (`/console/`, see `console`), under `--dev` the state-reset endpoints of moto and LocalStack
/// (`dev_reset`), then every AWS request.
pub fn router(app: Arc<App>) -> Router {
    let mut routes = ops_http::routes().merge(console::routes());
    if matches!(app.auth.mode, auth::Mode::Dev { .. }) {
        routes = routes.merge(dev_reset::routes());
    }
    routes.fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    if let Some(xks) = &app.xks {
        if xks.owns(req.uri().path()) {
            return xks::serve(&app, xks, req).await;
        }
    }
    let request_num = ids::unique_id_u128();
    // The bytes are ASCII hex digits and dashes.
    let request_id = ferrokms_textfast::uuid_string(request_num);
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<Arc<listener::ConnInfo>>();
    let mut labels = ops_http::labels(&parts.method, &parts.headers, &parts.uri, &[]);
    let mut resp = match read_body(body, &parts.headers, &parts.uri, conn).await {
        // The reservation (bodies over 8 KiB) is held until the answer.
        Ok(limits::ReadBody {
            bytes,
            permit: _permit,
        }) => {
            if labels.service() != "kms" {
                labels = ops_http::labels(&parts.method, &parts.headers, &parts.uri, &bytes);
            }
            let origin = auth::Origin {
                ip: parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip()),
                secure_transport: conn.is_some_and(|c| c.tls),
            };
            let req = pipeline::Inbound {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
                body: bytes,
                request_id: &request_id,
                origin,
                audit_memo: conn.map(|c| &c.audit_memo),
            };
            serve_request(&app, req, request_num).await
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

/// Step 1 of the pipeline (`pipeline`): which protocol, which operation.
/// A `TrentService.` target is KMS's JSON protocol, a CloudTrail target
/// CloudTrail's (`cloudtrail_api`); no target and a form
/// body (or an `Action=` query) is the query protocol of IAM and STS; no
/// target and a request signed for `access-analyzer` (or, unsigned, on one
/// of its paths) is Access Analyzer's REST-JSON protocol.
async fn serve_request(app: &Arc<App>, req: pipeline::Inbound<'_>, request_num: u128) -> Response {
    let (headers, uri) = (req.headers, req.uri);
    let target = headers
        .get(hdr::X_AMZ_TARGET)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(op) = target.strip_prefix(TARGET_PREFIX) {
        let kms = kms_api::KmsRequest::new(op, request_num);
        return pipeline::serve(app, req, kms).await;
    }
    if let Some(op) = target.strip_prefix(cloudtrail_api::TARGET_PREFIX) {
        let trail = cloudtrail_api::TrailRequest::new(op);
        return pipeline::serve(app, req, trail).await;
    }
    let form = headers
        .get(hdr::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if target.is_empty() && (form || uri.query().is_some_and(|q| q.contains("Action="))) {
        let query = query::QueryRequest::new(&req);
        return pipeline::serve(app, req, query).await;
    }
    if target.is_empty() && analyzer_api::is_analyzer_request(&req) {
        let analyzer = analyzer_api::AnalyzerRequest::new(&req);
        return pipeline::serve(app, req, analyzer).await;
    }
    error_response(
        &ApiError {
            code: "UnknownOperationException",
            message: None,
            status: 400,
        }
        .into(),
    )
}

pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        hdr::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

/// A KMS error document, its code also in `X-Amzn-ErrorType`.
pub(crate) fn error_response(e: &pipeline::Fault) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, e.json_body());
    if let Ok(v) = HeaderValue::from_str(&e.code) {
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
