//! The HTTP edge of ferrokms: one endpoint, AWS's wire protocols, SigV4.
//!
//! A request flows: body (size-limited) -> protocol (by `X-Amz-Target`) ->
//! authentication -> model validation -> operation -> response, with every
//! error mapped once, here, to AWS's shape and status.

pub mod auth;
pub mod kms_api;
pub mod setup;
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
use ferrokms_kms::{Caller, Kms};
use ferrokms_sigv4::HttpRequest;
use serde_json::Value;

use crate::auth::{Authenticator, Identity};
use crate::kms_api::{ApiError, TARGET_PREFIX};
use crate::validate::Model;

/// Requests larger than this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// A client that has not delivered its body by then is cut off.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a request handler needs.
pub struct App {
    pub kms: Arc<Kms>,
    pub directory: Arc<Directory>,
    pub auth: Authenticator,
    pub kms_model: Model,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new().fallback(handle).with_state(app)
}

async fn handle(State(app): State<Arc<App>>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = req.into_parts();
    let mut resp = match read_body(body).await {
        Ok(bytes) => serve_request(&app, &parts.method, &parts.uri, &parts.headers, bytes).await,
        Err(e) => error_response(&e),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(BODY_READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(ApiError {
            code: "RequestEntityTooLargeException",
            message: Some(format!(
                "The request body is larger than the limit of {MAX_BODY_BYTES} bytes, or was cut short."
            )),
            status: 413,
        }),
        Err(_) => Err(ApiError {
            code: "RequestTimeoutException",
            message: Some("The request body was not received in time.".into()),
            status: 408,
        }),
    }
}

async fn serve_request(
    app: &Arc<App>,
    method: &axum::http::Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(op) = target.strip_prefix(TARGET_PREFIX) else {
        return error_response(&ApiError {
            code: "UnknownOperationException",
            message: None,
            status: 400,
        });
    };
    let identity = match authenticate(app, method, uri, headers, &body, &["kms"]) {
        Ok(i) => i,
        Err(e) => return error_response(&e),
    };
    let caller = Caller {
        account: identity.principal.account().clone(),
        arn: identity.principal.arn(identity.region.partition()),
        region: identity.region,
    };
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Default::default())
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return error_response(&ApiError::new(
                    "SerializationException",
                    format!("The request body is not valid JSON: {e}"),
                ))
            }
        }
    };
    let op = op.to_string();
    let result = if kms_api::is_mutating(&op) {
        let app = app.clone();
        tokio::task::spawn_blocking(move || {
            kms_api::dispatch(&app.kms, &app.kms_model, &caller, &op, value)
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
        kms_api::dispatch(&app.kms, &app.kms_model, &caller, &op, value)
    };
    match result {
        Ok(bytes) => json_response(StatusCode::OK, bytes),
        Err(e) => error_response(&e),
    }
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
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, e.body());
    if let Ok(v) = HeaderValue::from_str(e.code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}

/// Runs the server until `shutdown` resolves; in-flight requests finish.
pub async fn serve(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = {
        let kms = app.kms.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                let kms = kms.clone();
                let res = tokio::task::spawn_blocking(move || kms.purge_due_keys()).await;
                if let Ok(Err(e)) = res {
                    tracing::warn!(error = %e, "deleting keys past their deletion date failed");
                }
            }
        })
    };
    let result = axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    sweeper.abort();
    result
}
