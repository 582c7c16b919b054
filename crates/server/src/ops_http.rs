//! The operator's endpoints: `GET /health`, `GET /ready`, `GET /metrics`.
//!
//! Unauthenticated and GET only; the AWS protocols all POST to `/` (or GET
//! `/?Action=...` for a presigned query request), so these paths can never
//! be mistaken for an AWS call. They expose no key material and no account
//! data beyond the number of keys.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::kms_api::TARGET_PREFIX;
use crate::metrics::{self, Labels};
use crate::App;

/// A store that has not answered by then is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
}

fn text(status: StatusCode, body: String, content_type: &'static str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    resp
}

/// The process is up and its executor answers.
async fn health() -> Response {
    text(StatusCode::OK, "ok\n".into(), "text/plain; charset=utf-8")
}

/// Whether the store answers a read, within [`READY_TIMEOUT`]. The state
/// (keys, accounts) is loaded before the listener opens, so a process that
/// answers at all has it.
async fn store_ready(app: &Arc<App>) -> Result<(), String> {
    let kms = app.kms.clone();
    match tokio::time::timeout(
        READY_TIMEOUT,
        tokio::task::spawn_blocking(move || kms.check_store()),
    )
    .await
    {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("store: {e}")),
        Ok(Err(_)) => Err("store check failed".into()),
        Err(_) => Err(format!(
            "store did not answer within {}s",
            READY_TIMEOUT.as_secs()
        )),
    }
}

/// 200 once the state is loaded and the store answers; 503 otherwise.
async fn ready(State(app): State<Arc<App>>) -> Response {
    match store_ready(&app).await {
        Ok(()) => text(
            StatusCode::OK,
            "ready\n".into(),
            "text/plain; charset=utf-8",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {e}\n"),
                "text/plain; charset=utf-8",
            )
        }
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let (policy_hits, policy_misses) = app.kms.policy_cache_stats();
    let gauges = metrics::Gauges {
        keys: app.kms.key_count() as u64,
        ready: store_ready(&app).await.is_ok(),
        policy_cache_hits: Some(policy_hits),
        policy_cache_misses: Some(policy_misses),
    };
    text(
        StatusCode::OK,
        metrics::render(&gauges),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

/// The metrics labels of a request, from what is cheap to look at: the
/// `X-Amz-Target` for KMS; for the query protocol the signed service and
/// the `Action` parameter (found without decoding the form); for Access
/// Analyzer the method and path.
pub(crate) fn labels(method: &Method, headers: &HeaderMap, uri: &Uri, body: &[u8]) -> Labels {
    let target = headers
        .get(crate::hdr::X_AMZ_TARGET)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(op) = target.strip_prefix(TARGET_PREFIX) {
        return Labels::new("kms", op);
    }
    if let Some(op) = target.strip_prefix(crate::cloudtrail_api::TARGET_PREFIX) {
        return Labels::new("cloudtrail", op);
    }
    if !target.is_empty() {
        return Labels::unknown();
    }
    let query = uri.query().unwrap_or("");
    let action = form_value(query.as_bytes(), b"Action").or_else(|| form_value(body, b"Action"));
    let Some(action) = action.and_then(|a| std::str::from_utf8(a).ok()) else {
        return match ferrokms_analyzer::routes::route_of(method.as_str(), uri.path()) {
            Some(r) => Labels::new("access-analyzer", r.name),
            None => Labels::unknown(),
        };
    };
    let scope = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            form_value(query.as_bytes(), b"X-Amz-Credential")
                .and_then(|v| std::str::from_utf8(v).ok())
        })
        .unwrap_or("");
    let service = if scope.contains("/sts/") || scope.contains("%2Fsts%2F") {
        "sts"
    } else {
        "iam"
    };
    Labels::new(service, action)
}

/// The raw value of `name` in a form-encoded string, if present.
fn form_value<'a>(form: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    form.split(|&b| b == b'&').find_map(|pair| {
        let rest = pair.strip_prefix(name)?;
        rest.strip_prefix(b"=")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_requests_are_labelled_by_signed_service_and_action() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIA/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00",
            ),
        );
        let uri: Uri = "/".parse().unwrap_or_default();
        let l = labels(
            &Method::POST,
            &h,
            &uri,
            b"Version=2011-06-15&Action=AssumeRole",
        );
        assert_eq!(l, Labels::new("sts", "AssumeRole"));
        let l = labels(&Method::POST, &HeaderMap::new(), &uri, b"Action=CreateUser");
        assert_eq!(l, Labels::new("iam", "CreateUser"));
    }

    #[test]
    fn access_analyzer_requests_are_labelled_by_method_and_path() {
        let uri: Uri = "/policy/validation".parse().unwrap_or_default();
        let l = labels(&Method::POST, &HeaderMap::new(), &uri, b"{}");
        assert_eq!(l, Labels::new("access-analyzer", "ValidatePolicy"));
        assert_eq!(l.service(), "access-analyzer");
        let uri: Uri = "/analyzer/a".parse().unwrap_or_default();
        let l = labels(&Method::GET, &HeaderMap::new(), &uri, b"");
        assert_eq!(l, Labels::new("access-analyzer", "GetAnalyzer"));
        let uri: Uri = "/nowhere".parse().unwrap_or_default();
        assert_eq!(
            labels(&Method::GET, &HeaderMap::new(), &uri, b""),
            Labels::unknown()
        );
    }

    #[test]
    fn kms_requests_are_labelled_by_target_and_foreign_targets_are_unknown() {
        let uri: Uri = "/".parse().unwrap_or_default();
        let mut h = HeaderMap::new();
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.Encrypt"),
        );
        assert_eq!(
            labels(&Method::POST, &h, &uri, b""),
            Labels::new("kms", "Encrypt")
        );
        h.insert(
            "x-amz-target",
            HeaderValue::from_static("DynamoDB_20120810.GetItem"),
        );
        assert_eq!(
            labels(&Method::POST, &h, &uri, b"Action=X"),
            Labels::unknown()
        );
    }
}
