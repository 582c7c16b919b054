//! Server-side AWS Signature Version 4 verification.
//!
//! Pure: no I/O, no HTTP framework types, no knowledge of KMS. The server
//! hands over a request as plain slices, [`parse`]s it to learn who claims to
//! have signed it, looks the secret up itself, then calls
//! [`Verifier::verify`]. The check order and error texts follow what AWS
//! services answer, so SDK users see familiar messages.
//!
//! ```
//! use ferrokms_sigv4::{parse, sign_request, Credentials, HttpRequest, Verifier};
//! use std::time::SystemTime;
//!
//! let now = SystemTime::now();
//! let body = br#"{"KeyId":"alias/x"}"#;
//! let base = [
//!     ("Host", "kms.us-east-1.amazonaws.com"),
//!     ("Content-Type", "application/x-amz-json-1.1"),
//!     ("X-Amz-Target", "TrentService.DescribeKey"),
//! ];
//! let creds = Credentials { access_key_id: "AKIDEXAMPLE", secret_access_key: "secret", session_token: None };
//! let unsigned = HttpRequest { method: "POST", path: "/", query: "", headers: &base, body };
//! let signed = sign_request(&unsigned, &creds, "us-east-1", "kms", now);
//!
//! let mut headers: Vec<(&str, &str)> = base.to_vec();
//! headers.extend(signed.iter());
//! let req = HttpRequest { headers: &headers, ..unsigned };
//!
//! let verifier = Verifier::default();
//! let parsed = parse(&req).expect("signature present");
//! assert_eq!(parsed.access_key_id, "AKIDEXAMPLE");
//! verifier.verify(&req, &parsed, "secret", now, &["kms", "iam", "sts"]).expect("valid");
//! ```

mod canonical;
mod error;
mod keys;
mod parse;
mod sign;
mod timestamp;
mod verify;

pub use error::{SigV4Error, MISSING_AUTHENTICATION_TOKEN_MESSAGE, SIGNATURE_MISMATCH_MESSAGE};
pub use keys::{derive_signing_key, SigningKey, SigningKeyCache};
pub use parse::{
    has_presign_params, parse, CredentialScope, ParsedSignature, SignatureLocation,
    MAX_PRESIGNED_EXPIRES_SECS,
};
pub use sign::{sign_request, Credentials, SignedRequestHeaders, Signer};
pub use timestamp::{SigningTime, TimestampSource};
pub use verify::{check_region, verify, Verifier, MAX_CLOCK_SKEW, SCOPE_TERMINATOR};

/// An HTTP request as received, borrowed from whatever framework the server
/// uses. Header names may be in any case and may repeat.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The HTTP method, e.g. `POST`; it is part of the canonical request.
    pub method: &'a str,
    /// Raw path as received, still percent-encoded, e.g. `/`.
    pub path: &'a str,
    /// Raw query string without the `?`; may be empty.
    pub query: &'a str,
    /// For HTTP/2 the server must pass `:authority` as `host`.
    pub headers: &'a [(&'a str, &'a str)],
    /// The whole body; its SHA-256 is the payload hash that is signed.
    pub body: &'a [u8],
}
