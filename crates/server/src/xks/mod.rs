//! ferrokms as an AWS KMS external key store proxy (the "XKS Proxy API",
//! v1): AWS KMS, or the KMS of another ferrokms, sends its
//! GetKeyMetadata, Encrypt, Decrypt and GetHealthStatus calls here, signed
//! with SigV4 for the service `kms-xks-proxy` under a credential this proxy
//! issued (`ferrokms xks credential create`). docs/xks.md says how to run
//! it and what of the spec it covers.
//!
//! A request takes these steps, in this order (`serve`):
//! 1. **route**: a path under the proxy's prefix that is none of the four
//!    APIs is `InvalidUriPathException` (404); another method than POST is
//!    405;
//! 2. **read** the body within [`MAX_BODY_BYTES`] and the server's limits
//!    (`limits::read_body`: an unsigned large body is never read);
//! 3. **authenticate**: SigV4 for `kms-xks-proxy` with a credential of the
//!    store (`AuthenticationFailedException`, 401);
//! 4. **parse** the spec's JSON (`ValidationException`, 400);
//! 5. **authorize** (`authorize`): the key exists (404), is enabled
//!    (`InvalidStateException`) and has the use the operation needs
//!    (`InvalidKeyUsageException`);
//! 6. **operate**: AES-256-GCM (`ops`);
//! 7. **audit**: one record in the server's audit trail with the request
//!    metadata, never plaintext or key material.
//!
//! `docs`: the keys and credentials as store documents; `wire`: the spec's
//! request and response shapes; `ops`: the cryptography.

pub mod docs;
mod ops;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use ferrokms_sigv4::{HttpRequest, Verifier};
use ferrokms_store::{Sealer, Store};
use parking_lot::RwLock;
use zeroize::Zeroizing;

use crate::{audit, hdr, ids, limits, listener, metrics, App};
use docs::{Usage, XksKey};

/// The service name of the credential scope (Appendix A of the spec).
pub const SIGNING_SERVICE: &str = "kms-xks-proxy";
/// The API's path after the prefix.
pub const API_PATH: &str = "/kms/xks/v1";
/// The default `--xks-path-prefix`.
pub const DEFAULT_PATH_PREFIX: &str = "/xks";
/// The largest request body the proxy reads. The spec's largest request (a
/// Decrypt of 4300 bytes with 8192 bytes of AAD and 2048-character ARNs)
/// is about 22 KiB of JSON.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest XksProxyUriPath AWS accepts; the prefix plus [`API_PATH`]
/// must fit in it.
const MAX_URI_PATH: usize = 128;

/// The spec's errors (its "Error codes" table): the `errorName`, the HTTP
/// status, and an optional message (printable ASCII, under 512 characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XksError {
    /// 400: an input parameter is missing or invalid.
    #[error("ValidationException: {0}")]
    Validation(String),
    /// 400: the key is disabled.
    #[error("InvalidStateException: {0}")]
    InvalidState(String),
    /// 400: ciphertext, IV, AAD or tag corrupted, missing or invalid.
    #[error("InvalidCiphertextException: {0}")]
    InvalidCiphertext(String),
    /// 400: the key does not support the operation.
    #[error("InvalidKeyUsageException: {0}")]
    InvalidKeyUsage(String),
    /// 403: the key's secondary authorization refuses the request's `awsPrincipalArn`.
    #[error("AccessDeniedException: {0}")]
    AccessDenied(String),
    /// 401: the SigV4 signature is missing, wrong, stale or by an unknown credential.
    #[error("AuthenticationFailedException: {0}")]
    AuthenticationFailed(String),
    /// 404: no such key.
    #[error("KeyNotFoundException: {0}")]
    KeyNotFound(String),
    /// 404: a path under the prefix that is none of the APIs.
    #[error("InvalidUriPathException: {0}")]
    InvalidUriPath(String),
    /// 405: the APIs are POST only (the spec: GET MUST be refused with 405).
    #[error("MethodNotAllowed: {0}")]
    MethodNotAllowed(String),
    /// 429: the server's body budget is exhausted.
    #[error("ThrottlingException: {0}")]
    Throttling(String),
    /// 501: a size beyond what this proxy supports (above the spec's minimums).
    #[error("UnsupportedOperationException: {0}")]
    UnsupportedOperation(String),
    /// 503: the store did not answer in time.
    #[error("DependencyTimeoutException: {0}")]
    DependencyTimeout(String),
    /// 500: the store failed, or a stored document does not open.
    #[error("InternalException: {0}")]
    Internal(String),
}

impl XksError {
    /// The spec's `errorName`.
    pub fn name(&self) -> &'static str {
        match self {
            XksError::Validation(_) => "ValidationException",
            XksError::InvalidState(_) => "InvalidStateException",
            XksError::InvalidCiphertext(_) => "InvalidCiphertextException",
            XksError::InvalidKeyUsage(_) => "InvalidKeyUsageException",
            XksError::AuthenticationFailed(_) => "AuthenticationFailedException",
            XksError::AccessDenied(_) => "AccessDeniedException",
            XksError::KeyNotFound(_) => "KeyNotFoundException",
            XksError::InvalidUriPath(_) => "InvalidUriPathException",
            XksError::MethodNotAllowed(_) => "MethodNotAllowed",
            XksError::Throttling(_) => "ThrottlingException",
            XksError::UnsupportedOperation(_) => "UnsupportedOperationException",
            XksError::DependencyTimeout(_) => "DependencyTimeoutException",
            XksError::Internal(_) => "InternalException",
        }
    }

    /// The HTTP status the spec gives it.
    pub fn status(&self) -> u16 {
        match self {
            XksError::Validation(_)
            | XksError::InvalidState(_)
            | XksError::InvalidCiphertext(_)
            | XksError::InvalidKeyUsage(_) => 400,
            XksError::AuthenticationFailed(_) => 401,
            XksError::AccessDenied(_) => 403,
            XksError::KeyNotFound(_) | XksError::InvalidUriPath(_) => 404,
            XksError::MethodNotAllowed(_) => 405,
            XksError::Throttling(_) => 429,
            XksError::Internal(_) => 500,
            XksError::UnsupportedOperation(_) => 501,
            XksError::DependencyTimeout(_) => 503,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            XksError::Validation(m)
            | XksError::InvalidState(m)
            | XksError::InvalidCiphertext(m)
            | XksError::InvalidKeyUsage(m)
            | XksError::AuthenticationFailed(m)
            | XksError::AccessDenied(m)
            | XksError::KeyNotFound(m)
            | XksError::InvalidUriPath(m)
            | XksError::MethodNotAllowed(m)
            | XksError::Throttling(m)
            | XksError::UnsupportedOperation(m)
            | XksError::DependencyTimeout(m)
            | XksError::Internal(m) => m,
        }
    }

    /// `{"errorName": ..., "errorMessage": ...}`, the message cut to the
    /// spec's bound and to printable ASCII.
    fn response(&self) -> Response {
        let message: String = self
            .message()
            .chars()
            .filter(|c| (' '..='~').contains(c))
            .take(511)
            .collect();
        let body = serde_json::json!({ "errorName": self.name(), "errorMessage": message });
        let mut resp = json_response(
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::BAD_REQUEST),
            body.to_string().into_bytes(),
        );
        if matches!(self, XksError::MethodNotAllowed(_)) {
            resp.headers_mut()
                .insert("allow", HeaderValue::from_static("POST"));
        }
        resp
    }
}

/// Why `--xks-path-prefix` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    /// Not `/` followed by letters, digits, `/`, `-`, `_`.
    #[error("--xks-path-prefix '{0}': use a path such as /xks (letters, digits, /, - and _; it starts with /)")]
    Shape(String),
    /// The prefix and /kms/xks/v1 together exceed AWS's 128 characters.
    #[error("--xks-path-prefix '{0}': with /kms/xks/v1 it must fit AWS's XksProxyUriPath of at most 128 characters")]
    TooLong(String),
}

/// The proxy's API operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST .../keys/{id}/metadata`.
    GetKeyMetadata,
    /// `POST .../keys/{id}/encrypt`.
    Encrypt,
    /// `POST .../keys/{id}/decrypt`.
    Decrypt,
    /// `POST .../health`.
    GetHealthStatus,
}

impl Operation {
    /// The spec's name, also the audit record's `eventName`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::GetKeyMetadata => "GetKeyMetadata",
            Operation::Encrypt => "Encrypt",
            Operation::Decrypt => "Decrypt",
            Operation::GetHealthStatus => "GetHealthStatus",
        }
    }

    /// The key use the operation needs, if any.
    fn needs(self) -> Option<Usage> {
        match self {
            Operation::Encrypt => Some(Usage::Encrypt),
            Operation::Decrypt => Some(Usage::Decrypt),
            Operation::GetKeyMetadata | Operation::GetHealthStatus => None,
        }
    }
}

/// The proxy: its prefix, its store, and what it has read from it.
pub struct XksProxy {
    /// `/xks`, or empty for none.
    prefix: String,
    /// `{prefix}/kms/xks/v1`.
    base: String,
    store: Arc<dyn Store>,
    sealer: Arc<Sealer>,
    verifier: Verifier,
    /// Keys read so far. Only keys that exist are kept, so its size is
    /// bounded by the keys an operator created, never by what callers send.
    keys: RwLock<HashMap<String, Arc<XksKey>>>,
    /// Credentials read so far; only existing ones, as for `keys`.
    credentials: RwLock<HashMap<String, Arc<Zeroizing<String>>>>,
}

impl std::fmt::Debug for XksProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksProxy")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl XksProxy {
    /// A proxy serving under `prefix` (`/xks`; `""` or `/` for none) from
    /// this store.
    pub fn new(
        store: Arc<dyn Store>,
        sealer: Arc<Sealer>,
        prefix: &str,
    ) -> Result<XksProxy, PrefixError> {
        let trimmed = prefix.trim_end_matches('/');
        let shape_ok = trimmed.is_empty()
            || (trimmed.starts_with('/')
                && !trimmed.contains("//")
                && trimmed
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_".contains(&b)));
        if !shape_ok {
            return Err(PrefixError::Shape(prefix.to_string()));
        }
        let base = format!("{trimmed}{API_PATH}");
        if base.len() > MAX_URI_PATH {
            return Err(PrefixError::TooLong(prefix.to_string()));
        }
        Ok(XksProxy {
            prefix: trimmed.to_string(),
            base,
            store,
            sealer,
            verifier: Verifier::default(),
            keys: RwLock::default(),
            credentials: RwLock::default(),
        })
    }

    /// The XksProxyUriPath to give AWS (`/xks/kms/xks/v1`).
    pub fn uri_path(&self) -> &str {
        &self.base
    }

    /// Whether a request to `path` is the proxy's: under its prefix, or
    /// (without one) naming its API path, so that a wrong prefix is
    /// answered `InvalidUriPathException` rather than as a KMS request.
    pub fn owns(&self, path: &str) -> bool {
        let under_prefix = !self.prefix.is_empty()
            && path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        under_prefix || path.contains("/kms/xks/")
    }

    /// The operation and key a path names.
    fn route(&self, path: &str) -> Result<(Operation, Option<String>), XksError> {
        let invalid = || {
            XksError::InvalidUriPath(format!(
                "No XKS API at this path; the API is under {}",
                self.base
            ))
        };
        let rest = path.strip_prefix(self.base.as_str()).ok_or_else(invalid)?;
        if rest == "/health" {
            return Ok((Operation::GetHealthStatus, None));
        }
        let rest = rest.strip_prefix("/keys/").ok_or_else(invalid)?;
        let (key, op) = rest.split_once('/').ok_or_else(invalid)?;
        let op = match op {
            "metadata" => Operation::GetKeyMetadata,
            "encrypt" => Operation::Encrypt,
            "decrypt" => Operation::Decrypt,
            _ => return Err(invalid()),
        };
        if key.is_empty() {
            return Err(invalid());
        }
        Ok((op, Some(key.to_string())))
    }

    /// The secret of a credential, from memory or else the store.
    async fn secret(
        &self,
        access_key_id: &str,
    ) -> Result<Option<Arc<Zeroizing<String>>>, XksError> {
        // AWS's shape for these ids; anything else is not looked up.
        if !(20..=30).contains(&access_key_id.len())
            || !access_key_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Ok(None);
        }
        if let Some(s) = self.credentials.read().get(access_key_id) {
            return Ok(Some(s.clone()));
        }
        let (store, sealer, id) = (
            self.store.clone(),
            self.sealer.clone(),
            access_key_id.to_string(),
        );
        let read = blocking(move || docs::read_credential(&*store, &sealer, &id)).await?;
        Ok(read.map(|secret| {
            let secret = Arc::new(secret);
            self.credentials
                .write()
                .insert(access_key_id.to_string(), secret.clone());
            secret
        }))
    }

    /// A key, from memory or else the store.
    async fn key(&self, id: &str) -> Result<Arc<XksKey>, XksError> {
        let not_found = || XksError::KeyNotFound(format!("No external key with id {id}"));
        if id.len() > 128
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(not_found());
        }
        if let Some(k) = self.keys.read().get(id) {
            return Ok(k.clone());
        }
        let (store, sealer, owned) = (self.store.clone(), self.sealer.clone(), id.to_string());
        let key = blocking(move || docs::read_key(&*store, &sealer, &owned))
            .await?
            .ok_or_else(not_found)?;
        let key = Arc::new(key);
        self.keys.write().insert(id.to_string(), key.clone());
        Ok(key)
    }

    /// The health check's deep part: the store answers a read and the
    /// sealer an AES-GCM round trip.
    async fn healthy(&self) -> bool {
        let (store, sealer) = (self.store.clone(), self.sealer.clone());
        blocking(move || -> Result<bool, docs::XksDocError> {
            store.get(docs::KEY_KIND, "health-check")?;
            let sealed = sealer.seal(b"xks health", b"ok")?;
            Ok(sealer.open(b"xks health", &sealed)?.as_slice() == b"ok")
        })
        .await
        .unwrap_or(false)
    }
}

/// Runs store work on the blocking pool, within a bound of time.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, docs::XksDocError> + Send + 'static,
) -> Result<T, XksError> {
    match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::task::spawn_blocking(f),
    )
    .await
    {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "XKS proxy: reading the store failed");
            Err(XksError::Internal("The key store failed".into()))
        }
        Ok(Err(_)) => Err(XksError::Internal("The key store failed".into())),
        Err(_) => Err(XksError::DependencyTimeout(
            "The key store did not answer in time".into(),
        )),
    }
}

/// Step 5: the proxy's authorization of a key operation. The credential
/// was checked in step 3; here, whether this key may do what is asked for
/// this caller: the key's secondary authorization (its `awsPrincipalArn`
/// patterns, when it has any: `AccessDeniedException`), its state, and its
/// uses. An Encrypt that asks for a CDIV also needs DECRYPT: the CDIV is
/// vouched for by decrypting the result (the spec's Appendix C), which an
/// encrypt-only key may not do (AWS's test client expects
/// `InvalidKeyUsageException`).
fn authorize(
    op: Operation,
    key: &XksKey,
    principal: &str,
    verify_by_decrypting: bool,
) -> Result<(), XksError> {
    if !key.allowed_principals.is_empty()
        && !key
            .allowed_principals
            .iter()
            .any(|p| ferrokms_policy::wildcard_match(p, principal))
    {
        return Err(XksError::AccessDenied(format!(
            "awsPrincipalArn {principal} is not allowed to use this external key (it matches none of the key's allowed principals)"
        )));
    }
    if !key.enabled {
        return Err(XksError::InvalidState(
            "The external key is disabled".into(),
        ));
    }
    let mut needed: Vec<Usage> = op.needs().into_iter().collect();
    if verify_by_decrypting {
        needed.push(Usage::Decrypt);
    }
    for n in needed {
        if !key.usage.contains(&n) {
            return Err(XksError::InvalidKeyUsage(format!(
                "The external key does not support {}",
                n.as_str()
            )));
        }
    }
    Ok(())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        hdr::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// What the audit record says of one request.
struct Outcome {
    op: Option<Operation>,
    region: String,
    params: Vec<u8>,
    elements: Vec<u8>,
}

/// Serves one request to the proxy's paths (see the module's steps).
pub(crate) async fn serve(app: &Arc<App>, xks: &XksProxy, req: Request) -> Response {
    let request_num = ids::unique_id_u128();
    let request_id = ferrokms_textfast::uuid_string(request_num);
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let conn = parts.extensions.get::<Arc<listener::ConnInfo>>();
    let mut outcome = Outcome {
        op: None,
        region: String::new(),
        params: Vec::new(),
        elements: Vec::new(),
    };
    let result = steps(xks, &parts, body, conn, &mut outcome).await;
    let mut resp = match &result {
        Ok(json) => json_response(StatusCode::OK, json.clone()),
        Err(e) => e.response(),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert(hdr::X_AMZN_REQUESTID, v);
    }
    // A request that is none of the APIs leaves no record (as the server's
    // unknown operations); every API call does, whatever its outcome.
    if let Some(op) = outcome.op {
        if app.audit.enabled() {
            let error = result.as_ref().err().map(|e| (e.name(), Some(e.message())));
            let mut memo = conn.map(|c| c.audit_memo.lock());
            app.audit.record_event(
                audit::EventInput {
                    service: SIGNING_SERVICE,
                    op: op.name(),
                    region: &outcome.region,
                    source_ip: parts
                        .extensions
                        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                        .map(|c| c.0.ip()),
                    user_agent: parts
                        .headers
                        .get(hdr::USER_AGENT)
                        .and_then(|v| v.to_str().ok()),
                    identity: None,
                    request_parameters: &outcome.params,
                    response_elements: &outcome.elements,
                    error,
                    request_id: &request_id,
                    event_id: None,
                    decisions: &[],
                    now_ms: now_ms(),
                },
                memo.as_deref_mut(),
            );
        }
        tracing::debug!(
            request_id = %request_id,
            operation = op.name(),
            status = resp.status().as_u16(),
            "XKS proxy request"
        );
    }
    let labels = metrics::Labels::new(SIGNING_SERVICE, outcome.op.map_or("", Operation::name));
    if let Err(e) = &result {
        metrics::record_error(labels, e.name());
    }
    metrics::record(labels, resp.status().as_u16(), started.elapsed());
    resp
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Steps 1 to 6; fills `outcome` for the audit record as it goes.
async fn steps(
    xks: &XksProxy,
    parts: &axum::http::request::Parts,
    body: Body,
    conn: Option<&Arc<listener::ConnInfo>>,
    outcome: &mut Outcome,
) -> Result<Vec<u8>, XksError> {
    // 1. route
    let (op, key_id) = xks.route(parts.uri.path())?;
    if parts.method != Method::POST {
        return Err(XksError::MethodNotAllowed(format!(
            "{} takes POST",
            op.name()
        )));
    }
    outcome.op = Some(op);
    // 2. read, within the proxy's own bound first
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let timeout = conn.map_or(listener::Limits::default().body_timeout, |c| c.body_timeout);
    let read = limits::read_body(
        body,
        &parts.headers,
        &parts.uri,
        conn.map(|c| &c.admitted),
        timeout,
    )
    .await
    .map_err(|e| match e.status {
        413 => too_large(),
        408 => XksError::Validation("The request body was not received in time".into()),
        _ if e.code == limits::THROTTLING_EXCEPTION => {
            XksError::Throttling("Too many requests at once; retry".into())
        }
        _ => XksError::Validation("The request body was cut short or malformed".into()),
    })?;
    if read.bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    // 3. authenticate
    let access_key_id = authenticate(xks, parts, &read.bytes, &mut outcome.region).await?;
    // 4. parse
    let request = wire::parse(op, &read.bytes)?;
    outcome.params = wire::audit_parameters(&request, key_id.as_deref(), &access_key_id);
    let Some(key_id) = key_id else {
        let healthy = xks.healthy().await;
        return Ok(wire::health_response(healthy));
    };
    // 5. authorize
    let key = xks.key(&key_id).await?;
    let cdiv = matches!(request.input, wire::Input::Encrypt { cdiv: true, .. });
    let principal = request
        .metadata
        .iter()
        .find(|(name, _)| *name == "awsPrincipalArn")
        .map_or("", |(_, v)| v.as_str());
    authorize(op, &key, principal, cdiv)?;
    // 6. operate
    let (json, elements) = ops::run(&key, request)?;
    outcome.elements = elements;
    Ok(json)
}

fn too_large() -> XksError {
    XksError::UnsupportedOperation(format!(
        "The request body is larger than this proxy's limit of {MAX_BODY_BYTES} bytes"
    ))
}

/// Step 3: a SigV4 signature for `kms-xks-proxy` by a credential of the
/// store. Returns the credential's access key id; sets `region` to the
/// credential scope's.
async fn authenticate(
    xks: &XksProxy,
    parts: &axum::http::request::Parts,
    body: &[u8],
    region: &mut String,
) -> Result<String, XksError> {
    let header_pairs: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
        .collect();
    let req = HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &header_pairs,
        body,
    };
    let failed = |m: String| XksError::AuthenticationFailed(m);
    let parsed = ferrokms_sigv4::parse(&req).map_err(|e| failed(e.message()))?;
    let Some(secret) = xks.secret(&parsed.access_key_id).await? else {
        return Err(failed(
            "The access key id is not a credential of this proxy".into(),
        ));
    };
    xks.verifier
        .verify(
            &req,
            &parsed,
            secret.as_str(),
            std::time::SystemTime::now(),
            &[SIGNING_SERVICE],
        )
        .map_err(|e| failed(e.message()))?;
    region.clone_from(&parsed.scope.region);
    Ok(parsed.access_key_id.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferrokms_store::MemoryStore;

    fn proxy(prefix: &str) -> Result<XksProxy, PrefixError> {
        XksProxy::new(
            Arc::new(MemoryStore::default()),
            Arc::new(Sealer::ephemeral().unwrap()),
            prefix,
        )
    }

    #[test]
    fn prefixes_are_checked_and_paths_routed() {
        let p = proxy("/xks/").unwrap();
        assert_eq!(p.uri_path(), "/xks/kms/xks/v1");
        assert_eq!(
            p.route("/xks/kms/xks/v1/keys/k-1/encrypt").unwrap(),
            (Operation::Encrypt, Some("k-1".into()))
        );
        assert_eq!(
            p.route("/xks/kms/xks/v1/health").unwrap(),
            (Operation::GetHealthStatus, None)
        );
        for bad in [
            "/xks/kms/xks/v1/keys/k/sign",
            "/xks/kms/xks/v1/keys//encrypt",
            "/xks/kms/xks/v1/keys/k",
            "/xks/other/kms/xks/v1/health",
            "/xks/kms/xks/v2/health",
        ] {
            assert!(
                matches!(p.route(bad), Err(XksError::InvalidUriPath(_))),
                "{bad}"
            );
        }
        assert!(p.owns("/xks/anything") && p.owns("/other/kms/xks/v1/health"));
        assert!(!p.owns("/") && !p.owns("/xksx/kms") && !p.owns("/health"));
        assert_eq!(proxy("").unwrap().uri_path(), "/kms/xks/v1");
        assert!(proxy("xks").is_err() && proxy("/a b").is_err() && proxy("/a//b").is_err());
        assert!(matches!(
            proxy(&format!("/{}", "a".repeat(120))),
            Err(PrefixError::TooLong(_))
        ));
    }

    #[test]
    fn authorization_needs_an_enabled_key_with_the_use() {
        let key = |usage: Vec<Usage>, enabled| XksKey {
            usage,
            enabled,
            material: Zeroizing::new(vec![0; 32]),
            allowed_principals: Vec::new(),
        };
        let enc = key(vec![Usage::Encrypt], true);
        assert!(authorize(Operation::Encrypt, &enc, "p", false).is_ok());
        assert!(matches!(
            authorize(Operation::Decrypt, &enc, "p", false),
            Err(XksError::InvalidKeyUsage(_))
        ));
        // A CDIV is checked by decrypting: DECRYPT too.
        assert!(authorize(Operation::Encrypt, &enc, "p", true).is_err());
        let both = key(vec![Usage::Encrypt, Usage::Decrypt], true);
        assert!(authorize(Operation::Encrypt, &both, "p", true).is_ok());
        let none = key(vec![], true);
        assert!(authorize(Operation::GetKeyMetadata, &none, "p", false).is_ok());
        assert!(authorize(Operation::Encrypt, &none, "p", false).is_err());
        assert!(matches!(
            authorize(
                Operation::GetKeyMetadata,
                &key(vec![Usage::Encrypt], false),
                "p",
                false
            ),
            Err(XksError::InvalidState(_))
        ));
    }

    #[test]
    fn a_key_with_allowed_principals_refuses_other_callers_first() {
        let key = XksKey {
            usage: vec![Usage::Encrypt],
            enabled: false,
            material: Zeroizing::new(vec![0; 32]),
            allowed_principals: vec!["arn:aws:iam::111122223333:user/Al*".into()],
        };
        let alice = "arn:aws:iam::111122223333:user/Alice";
        let bob = "arn:aws:iam::111122223333:user/Bob";
        assert!(matches!(
            authorize(Operation::GetKeyMetadata, &key, bob, false),
            Err(XksError::AccessDenied(_))
        ));
        // Past the principal rule, the key's state and uses still apply.
        assert!(matches!(
            authorize(Operation::GetKeyMetadata, &key, alice, false),
            Err(XksError::InvalidState(_))
        ));
        let key = XksKey {
            enabled: true,
            ..key
        };
        assert!(authorize(Operation::Encrypt, &key, alice, false).is_ok());
        assert!(authorize(Operation::Encrypt, &key, "", false).is_err());
    }

    #[test]
    fn errors_have_the_spec_names_and_statuses() {
        let e = XksError::AuthenticationFailed("x".into());
        assert_eq!(
            (e.name(), e.status()),
            ("AuthenticationFailedException", 401)
        );
        let e = XksError::UnsupportedOperation("x".into());
        assert_eq!(
            (e.name(), e.status()),
            ("UnsupportedOperationException", 501)
        );
        assert_eq!(XksError::KeyNotFound(String::new()).status(), 404);
    }
}
