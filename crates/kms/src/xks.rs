//! Keys in external key stores: the calls KMS makes to an external key store
//! proxy (the AWS XKS Proxy API v1: GetHealthStatus, GetKeyMetadata, Encrypt,
//! Decrypt) and how their failures become KMS errors.
//!
//! The HTTP side (TLS with the trusted roots of `serve --xks-ca-file`, SigV4
//! with service `kms-xks-proxy`, the timeout, the response size bound) is an
//! [`XksTransport`] the server supplies; this module builds the bodies,
//! reads the answers and maps every failure onto the exceptions and messages
//! AWS documents for each kind of operation (the XKS Proxy API
//! specification's "KMS Considerations" table, docs/xks.md).
//!
//! Double encryption: a key in an external key store has KMS key material
//! too. Encrypt seals the plaintext under it first (the ordinary ciphertext
//! blob, version 1), then sends that blob to the proxy's `encrypt` under the
//! external key; the result is a version-2 blob (see [`seal_outer`]).
//! Decrypt reverses both layers, so neither the proxy nor KMS alone can
//! decrypt.

use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::crypto::BlobHeader;
use crate::KmsError;

/// The version byte of a blob encrypted under a key in an external key store.
pub const XKS_BLOB_VERSION: u8 = 2;

/// How long KMS waits for a proxy's answer (connection, TLS handshake and
/// request together), as the XKS Proxy API specification states: 250 ms.
pub const DEFAULT_PROXY_TIMEOUT: Duration = Duration::from_millis(250);

/// The largest proxy response body read; a longer one is a malformed answer.
pub const MAX_PROXY_RESPONSE_BYTES: usize = 64 * 1024;

/// One request to a proxy.
#[derive(Debug)]
pub struct XksRequest<'a> {
    /// `https://host[:port]` (the store's `XksProxyUriEndpoint`).
    pub endpoint: &'a str,
    /// The full path: the store's `XksProxyUriPath` and the operation's suffix.
    pub path: String,
    /// The JSON body.
    pub body: Vec<u8>,
    /// The store's proxy credential.
    pub access_key_id: &'a str,
    /// Its secret (never logged; the transport only signs with it).
    pub secret: &'a str,
    /// The Region the request is signed for (the store's).
    pub region: &'a str,
}

/// Why a request reached no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XksTransportError {
    /// No TCP connection (refused, unreachable, bad host name).
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The TLS handshake failed (an untrusted certificate, a name mismatch).
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    /// No answer within the timeout.
    #[error("timed out")]
    TimedOut,
    /// An answer that is not HTTP, or a body over [`MAX_PROXY_RESPONSE_BYTES`].
    #[error("malformed answer: {0}")]
    Malformed(String),
}

/// Sends requests to external key store proxies (the server's HTTPS client).
pub trait XksTransport: Send + Sync {
    /// POSTs `req` and returns the HTTP status and body.
    fn post(&self, req: &XksRequest<'_>) -> Result<(u16, Vec<u8>), XksTransportError>;
}

/// What went wrong with a proxy call, in the terms of the specification's
/// table of failure scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XksFailure {
    /// No TCP connection.
    Connect,
    /// No TLS connection.
    Tls,
    /// No answer in time.
    TimedOut,
    /// `ValidationException` from the proxy.
    Validation,
    /// `InvalidStateException`: the external key is not enabled.
    KeyDisabled,
    /// `InvalidCiphertextException`.
    InvalidCiphertext,
    /// `InvalidKeyUsageException`.
    KeyUsage,
    /// `AuthenticationFailedException`: the SigV4 credential was refused.
    Authentication,
    /// `AccessDeniedException`: the proxy's own authorization refused.
    AccessDenied,
    /// `KeyNotFoundException`.
    KeyNotFound,
    /// `InvalidUriPathException`.
    InvalidUriPath,
    /// `UnsupportedOperationException`.
    Unsupported,
    /// `DependencyTimeoutException`.
    DependencyTimeout,
    /// `ThrottlingException`.
    Throttling,
    /// `InternalException`.
    Internal,
    /// Anything else: not JSON, an unknown error name, missing members.
    Malformed,
    /// The health check found every external key manager unavailable.
    AllUnavailable,
}

const MALFORMED: &str = "AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.";

impl XksFailure {
    fn from_transport(e: &XksTransportError) -> XksFailure {
        match e {
            XksTransportError::Connect(_) => XksFailure::Connect,
            XksTransportError::Tls(_) => XksFailure::Tls,
            XksTransportError::TimedOut => XksFailure::TimedOut,
            XksTransportError::Malformed(_) => XksFailure::Malformed,
        }
    }

    fn from_error_name(name: &str) -> XksFailure {
        match name {
            "ValidationException" => XksFailure::Validation,
            "InvalidStateException" => XksFailure::KeyDisabled,
            "InvalidCiphertextException" => XksFailure::InvalidCiphertext,
            "InvalidKeyUsageException" => XksFailure::KeyUsage,
            "AuthenticationFailedException" => XksFailure::Authentication,
            "AccessDeniedException" => XksFailure::AccessDenied,
            "KeyNotFoundException" => XksFailure::KeyNotFound,
            "InvalidUriPathException" => XksFailure::InvalidUriPath,
            "UnsupportedOperationException" => XksFailure::Unsupported,
            "DependencyTimeoutException" => XksFailure::DependencyTimeout,
            "ThrottlingException" => XksFailure::Throttling,
            "InternalException" => XksFailure::Internal,
            _ => XksFailure::Malformed,
        }
    }

    /// The message AWS gives for the scenario, whatever the exception.
    pub fn message(self) -> &'static str {
        use XksFailure::*;
        match self {
            Connect => "AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external keystore.",
            Tls => "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate.",
            TimedOut => "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.",
            Validation | Malformed => MALFORMED,
            KeyDisabled => "The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request.",
            InvalidCiphertext => "The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.",
            KeyUsage => "The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again.",
            Authentication => "The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.",
            AccessDenied => "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.",
            KeyNotFound => "The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID.",
            InvalidUriPath => "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.",
            Unsupported => "The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator.",
            DependencyTimeout => "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.",
            Throttling => "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.",
            Internal => "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available.",
            AllUnavailable => "The external key store proxy reports that every external key manager instance is unavailable.",
        }
    }

    /// The error of CreateCustomKeyStore / UpdateCustomKeyStore (their
    /// health check).
    pub fn store_error(self) -> KmsError {
        use XksFailure::*;
        let m = self.message().to_owned();
        match self {
            Authentication => KmsError::XksProxyIncorrectAuthenticationCredential(m),
            InvalidUriPath => KmsError::XksProxyInvalidConfiguration(m),
            Connect | Tls | TimedOut | DependencyTimeout | Throttling | AllUnavailable => {
                KmsError::XksProxyUriUnreachable(m)
            }
            _ => KmsError::XksProxyInvalidResponse(m),
        }
    }

    /// The error of CreateKey (its GetKeyMetadata call).
    pub fn create_key_error(self) -> KmsError {
        use XksFailure::*;
        let m = self.message().to_owned();
        match self {
            KeyNotFound => KmsError::XksKeyNotFound(m),
            KeyDisabled | KeyUsage => KmsError::XksKeyInvalidConfiguration(m),
            AccessDenied => KmsError::InvalidState(m),
            _ => KmsError::CustomKeyStoreInvalidState(m),
        }
    }

    /// The error of a cryptographic operation: always
    /// `KMSInvalidStateException`, the message saying why.
    pub fn crypto_error(self) -> KmsError {
        KmsError::InvalidState(self.message().to_owned())
    }

    /// The `ConnectionErrorCode` a failed ConnectCustomKeyStore leaves.
    pub fn connection_error_code(self) -> &'static str {
        use XksFailure::*;
        match self {
            Authentication => "INVALID_CREDENTIALS",
            AccessDenied => "XKS_PROXY_ACCESS_DENIED",
            Connect | DependencyTimeout | Throttling | AllUnavailable => "XKS_PROXY_NOT_REACHABLE",
            Tls => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
            TimedOut => "XKS_PROXY_TIMED_OUT",
            InvalidUriPath => "XKS_PROXY_INVALID_CONFIGURATION",
            _ => "XKS_PROXY_INVALID_RESPONSE",
        }
    }
}

/// `requestMetadata` of every proxy request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata<'a> {
    /// The caller's ARN (absent on the health check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<&'a str>,
    /// The KMS key's ARN (absent on the health check and CreateKey).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<&'a str>,
    /// The KMS operation that caused the call.
    pub kms_operation: &'a str,
    /// The KMS request's id (`x-amzn-RequestId`).
    pub kms_request_id: &'a str,
}

/// The proxy configuration a call needs (from a store record).
#[derive(Debug)]
pub struct ProxyTarget<'a> {
    /// `https://host[:port]`.
    pub endpoint: &'a str,
    /// `[/prefix]/kms/xks/v1`.
    pub path: &'a str,
    /// The credential's access key id.
    pub access_key_id: &'a str,
    /// The credential's secret.
    pub secret: &'a str,
    /// The store's Region.
    pub region: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    error_name: String,
}

/// Sends one call and decodes a 200 answer as `T`; anything else is a failure.
fn call<T: for<'de> Deserialize<'de>>(
    transport: Option<&dyn XksTransport>,
    target: &ProxyTarget<'_>,
    suffix: &str,
    body: &impl Serialize,
) -> Result<T, XksFailure> {
    // No transport: the server trusts no proxy (`serve` without
    // --xks-ca-file) and dials none; said as AWS says a TLS failure.
    let transport = transport.ok_or(XksFailure::Tls)?;
    let body = serde_json::to_vec(body).map_err(|_| XksFailure::Malformed)?;
    let req = XksRequest {
        endpoint: target.endpoint,
        path: format!("{}{suffix}", target.path),
        body,
        access_key_id: target.access_key_id,
        secret: target.secret,
        region: target.region,
    };
    let (status, bytes) = transport.post(&req).map_err(|e| {
        tracing::info!(endpoint = target.endpoint, error = %e, "external key store proxy call failed");
        XksFailure::from_transport(&e)
    })?;
    if status == 200 {
        return serde_json::from_slice(&bytes).map_err(|_| XksFailure::Malformed);
    }
    let failure = serde_json::from_slice::<ErrorBody>(&bytes).map_or(XksFailure::Malformed, |e| {
        XksFailure::from_error_name(&e.error_name)
    });
    tracing::info!(
        endpoint = target.endpoint,
        status,
        failure = ?failure,
        "external key store proxy refused a call"
    );
    Err(failure)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthResponse {
    #[serde(default)]
    ekm_fleet_details: Vec<FleetEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FleetEntry {
    health_status: String,
}

/// GetHealthStatus: succeeds when the proxy answers and at least one
/// external key manager is not `UNAVAILABLE`.
pub fn health(
    transport: Option<&dyn XksTransport>,
    target: &ProxyTarget<'_>,
    operation: &str,
    request_id: &str,
) -> Result<(), XksFailure> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        request_metadata: RequestMetadata<'a>,
    }
    let out: HealthResponse = call(
        transport,
        target,
        "/health",
        &Body {
            request_metadata: RequestMetadata {
                aws_principal_arn: None,
                kms_key_arn: None,
                kms_operation: operation,
                kms_request_id: request_id,
            },
        },
    )?;
    if out.ekm_fleet_details.is_empty() || out.ekm_fleet_details.len() > 10 {
        return Err(XksFailure::Malformed);
    }
    if out
        .ekm_fleet_details
        .iter()
        .all(|e| e.health_status == "UNAVAILABLE")
    {
        return Err(XksFailure::AllUnavailable);
    }
    Ok(())
}

/// GetKeyMetadata's answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadataOut {
    /// `AES_256` for a usable key.
    pub key_spec: String,
    /// Must hold `ENCRYPT` and `DECRYPT`.
    pub key_usage: Vec<String>,
    /// `ENABLED` or `DISABLED`.
    pub key_status: String,
}

/// GetKeyMetadata for `xks_key_id`.
pub fn key_metadata(
    transport: Option<&dyn XksTransport>,
    target: &ProxyTarget<'_>,
    xks_key_id: &str,
    meta: RequestMetadata<'_>,
) -> Result<KeyMetadataOut, XksFailure> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        request_metadata: RequestMetadata<'a>,
    }
    let out: KeyMetadataOut = call(
        transport,
        target,
        &format!("/keys/{xks_key_id}/metadata"),
        &Body {
            request_metadata: meta,
        },
    )?;
    if out.key_usage.len() > 10 {
        return Err(XksFailure::Malformed);
    }
    Ok(out)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str, max: usize) -> Result<Vec<u8>, XksFailure> {
    if text.len() > max.div_ceil(3) * 4 {
        return Err(XksFailure::Malformed);
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| XksFailure::Malformed)
}

/// The proxy's AES-GCM output, as the version-2 blob carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuterParts {
    /// The initialization vector (12 or 16 bytes by the specification).
    pub iv: Vec<u8>,
    /// The authentication tag (16 bytes).
    pub tag: Vec<u8>,
    /// Opaque vendor metadata, up to 20 bytes by the specification.
    pub metadata: Vec<u8>,
    /// The ciphertext of the inner (version-1) blob.
    pub ciphertext: Vec<u8>,
}

/// Bound on the inner blob and so on the proxy's ciphertext: a 4096-byte
/// plaintext, the longest header, the nonce and the tag, with room.
const MAX_INNER: usize = 4096 + 512;

/// Encrypt at the proxy: `inner` under the external key, with `aad`.
pub fn encrypt(
    transport: Option<&dyn XksTransport>,
    target: &ProxyTarget<'_>,
    xks_key_id: &str,
    meta: RequestMetadata<'_>,
    inner: &[u8],
    aad: &[u8],
) -> Result<OuterParts, XksFailure> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        request_metadata: RequestMetadata<'a>,
        plaintext: String,
        encryption_algorithm: &'static str,
        additional_authenticated_data: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Out {
        ciphertext: String,
        initialization_vector: String,
        authentication_tag: String,
        #[serde(default)]
        ciphertext_metadata: Option<String>,
    }
    let out: Out = call(
        transport,
        target,
        &format!("/keys/{xks_key_id}/encrypt"),
        &Body {
            request_metadata: meta,
            plaintext: b64(inner),
            encryption_algorithm: "AES_GCM",
            additional_authenticated_data: b64(aad),
        },
    )?;
    let parts = OuterParts {
        iv: unb64(&out.initialization_vector, 16)?,
        tag: unb64(&out.authentication_tag, 16)?,
        metadata: match &out.ciphertext_metadata {
            Some(m) => unb64(m, 20)?,
            None => Vec::new(),
        },
        ciphertext: unb64(&out.ciphertext, MAX_INNER)?,
    };
    if !matches!(parts.iv.len(), 12 | 16) || parts.tag.len() != 16 || parts.metadata.len() > 20 {
        return Err(XksFailure::Malformed);
    }
    Ok(parts)
}

/// Decrypt at the proxy: the inner blob back.
pub fn decrypt(
    transport: Option<&dyn XksTransport>,
    target: &ProxyTarget<'_>,
    xks_key_id: &str,
    meta: RequestMetadata<'_>,
    parts: &OuterParts,
    aad: &[u8],
) -> Result<Vec<u8>, XksFailure> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        request_metadata: RequestMetadata<'a>,
        ciphertext: String,
        encryption_algorithm: &'static str,
        initialization_vector: String,
        authentication_tag: String,
        additional_authenticated_data: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        ciphertext_metadata: Option<String>,
    }
    #[derive(Deserialize)]
    struct Out {
        plaintext: String,
    }
    let out: Out = call(
        transport,
        target,
        &format!("/keys/{xks_key_id}/decrypt"),
        &Body {
            request_metadata: meta,
            ciphertext: b64(&parts.ciphertext),
            encryption_algorithm: "AES_GCM",
            initialization_vector: b64(&parts.iv),
            authentication_tag: b64(&parts.tag),
            additional_authenticated_data: b64(aad),
            ciphertext_metadata: (!parts.metadata.is_empty()).then(|| b64(&parts.metadata)),
        },
    )?;
    unb64(&out.plaintext, MAX_INNER)
}

/// The header of a version-2 blob: the version-1 header with the version
/// byte 2 (so that a blob of one kind can never pass for the other).
pub fn outer_header(h: &BlobHeader) -> Vec<u8> {
    let mut out = crate::crypto::header_bytes(h);
    if let Some(v) = out.first_mut() {
        *v = XKS_BLOB_VERSION;
    }
    out
}

/// The associated data sent to the proxy: SHA-256 of the outer header and
/// the canonical encryption context (32 bytes, well within the 8192 the
/// specification lets a proxy refuse beyond).
pub fn outer_aad(header: &[u8], context_canonical: &[u8]) -> Vec<u8> {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(header);
    ctx.update(context_canonical);
    ctx.finish().as_ref().to_vec()
}

/// A version-2 blob:
///
/// ```text
/// 0x02 | id_len:u8 | key id | account | material:u32 | iv_len:u8 | iv | tag[16] | meta_len:u8 | meta | proxy ciphertext
/// ```
pub fn seal_outer(header: &[u8], parts: &OuterParts) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 40 + parts.ciphertext.len());
    out.extend_from_slice(header);
    out.push(parts.iv.len() as u8);
    out.extend_from_slice(&parts.iv);
    out.extend_from_slice(&parts.tag);
    out.push(parts.metadata.len() as u8);
    out.extend_from_slice(&parts.metadata);
    out.extend_from_slice(&parts.ciphertext);
    out
}

/// Reads the proxy's parts of a version-2 blob whose header is `header_len` long.
pub fn open_outer(blob: &[u8], header_len: usize) -> Result<OuterParts, KmsError> {
    let bad = || KmsError::InvalidCiphertext;
    let mut at = header_len;
    let iv_len = *blob.get(at).ok_or_else(bad)? as usize;
    if !matches!(iv_len, 12 | 16) {
        return Err(bad());
    }
    at += 1;
    let iv = blob.get(at..at + iv_len).ok_or_else(bad)?.to_vec();
    at += iv_len;
    let tag = blob.get(at..at + 16).ok_or_else(bad)?.to_vec();
    at += 16;
    let meta_len = *blob.get(at).ok_or_else(bad)? as usize;
    if meta_len > 20 {
        return Err(bad());
    }
    at += 1;
    let metadata = blob.get(at..at + meta_len).ok_or_else(bad)?.to_vec();
    at += meta_len;
    let ciphertext = blob.get(at..).ok_or_else(bad)?.to_vec();
    if ciphertext.is_empty() || ciphertext.len() > MAX_INNER {
        return Err(bad());
    }
    Ok(OuterParts {
        iv,
        tag,
        metadata,
        ciphertext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outer_blobs_round_trip_and_refuse_truncation() {
        let parts = OuterParts {
            iv: vec![1; 12],
            tag: vec![2; 16],
            metadata: vec![3; 4],
            ciphertext: vec![4; 70],
        };
        let header = vec![XKS_BLOB_VERSION, 1, b'k'];
        let blob = seal_outer(&header, &parts);
        assert_eq!(open_outer(&blob, header.len()).unwrap(), parts);
        for cut in header.len()..header.len() + 34 {
            assert!(open_outer(&blob[..cut], header.len()).is_err(), "{cut}");
        }
    }

    #[test]
    fn proxy_error_names_map_to_the_documented_exceptions() {
        let f = XksFailure::from_error_name("AuthenticationFailedException");
        assert_eq!(
            f.store_error().code(),
            "XksProxyIncorrectAuthenticationCredentialException"
        );
        assert_eq!(f.crypto_error().code(), "KMSInvalidStateException");
        assert_eq!(f.connection_error_code(), "INVALID_CREDENTIALS");
        let f = XksFailure::from_error_name("KeyNotFoundException");
        assert_eq!(f.create_key_error().code(), "XksKeyNotFoundException");
        let f = XksFailure::from_error_name("InvalidUriPathException");
        assert_eq!(
            f.store_error().code(),
            "XksProxyInvalidConfigurationException"
        );
        assert_eq!(
            XksFailure::from_error_name("no such thing")
                .store_error()
                .code(),
            "XksProxyInvalidResponseException"
        );
        assert_eq!(
            XksFailure::Connect.store_error().code(),
            "XksProxyUriUnreachableException"
        );
    }
}
