use std::time::SystemTime;

use crate::canonical::{self, sha256_hex, ALGORITHM};
use crate::keys::{derive_signing_key, SigningKey, SigningKeyCache};
use crate::timestamp::SigningTime;
use crate::verify::SCOPE_TERMINATOR;
use crate::{CredentialScope, HttpRequest};

/// Credentials a client signs with.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The access key id, sent in the `Credential=` element.
    pub access_key_id: &'a str,
    /// The secret the signing key is derived from; never sent.
    pub secret_access_key: &'a str,
    /// The STS session token of temporary credentials, sent as `X-Amz-Security-Token`.
    pub session_token: Option<&'a str>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("session_token", &self.session_token.map(|_| ".."))
            .finish_non_exhaustive()
    }
}

/// Headers the caller must add to the request (replacing any existing ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequestHeaders {
    /// The `Authorization` header value.
    pub authorization: String,
    /// The `X-Amz-Date` header value: the signing time, `YYYYMMDD'T'HHMMSS'Z'`.
    pub x_amz_date: String,
    /// The `X-Amz-Security-Token` header value, for temporary credentials.
    pub x_amz_security_token: Option<String>,
}

impl SignedRequestHeaders {
    /// `(name, value)` pairs in the casing botocore uses.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            Some(("Authorization", self.authorization.as_str())),
            Some(("X-Amz-Date", self.x_amz_date.as_str())),
            self.x_amz_security_token
                .as_deref()
                .map(|t| ("X-Amz-Security-Token", t)),
        ]
        .into_iter()
        .flatten()
    }
}

/// Headers botocore never signs because proxies rewrite or drop them.
const UNSIGNABLE: &[&str] = &[
    "authorization",
    "expect",
    "transfer-encoding",
    "user-agent",
    "x-amzn-trace-id",
];

/// Whether the signer replaces this header with its own value.
fn is_replaced(name: &str) -> bool {
    name.eq_ignore_ascii_case("x-amz-date") || name.eq_ignore_ascii_case("x-amz-security-token")
}

/// Signs like botocore's `SigV4Auth`: every header present except
/// [`UNSIGNABLE`], plus `x-amz-date` and the session token; the payload hash is
/// computed from the body and not sent as a header. `req.headers` must contain
/// `host` (botocore derives it from the URL; we have no URL).
pub fn sign_request(
    req: &HttpRequest<'_>,
    credentials: &Credentials<'_>,
    region: &str,
    service: &str,
    at: SystemTime,
) -> SignedRequestHeaders {
    sign_with(req, credentials, region, service, at, |scope| {
        derive_signing_key(
            credentials.secret_access_key,
            &scope.date,
            &scope.region,
            &scope.service,
        )
    })
}

/// A signer for load generators: reuses derived keys across requests.
#[derive(Debug, Default)]
pub struct Signer {
    cache: SigningKeyCache,
}

impl Signer {
    /// A signer that derives its keys through `cache`.
    pub fn new(cache: SigningKeyCache) -> Self {
        Signer { cache }
    }

    /// Signs `req` for `region`/`service` at time `at` and returns the headers to add.
    pub fn sign(
        &self,
        req: &HttpRequest<'_>,
        credentials: &Credentials<'_>,
        region: &str,
        service: &str,
        at: SystemTime,
    ) -> SignedRequestHeaders {
        sign_with(req, credentials, region, service, at, |scope| {
            self.cache.signing_key(
                credentials.access_key_id,
                credentials.secret_access_key,
                scope,
            )
        })
    }
}

fn sign_with(
    req: &HttpRequest<'_>,
    credentials: &Credentials<'_>,
    region: &str,
    service: &str,
    at: SystemTime,
    signing_key: impl FnOnce(&CredentialScope) -> SigningKey,
) -> SignedRequestHeaders {
    let time = SigningTime::from_system_time(at);
    let x_amz_date = time.iso_basic();
    let scope = CredentialScope {
        date: time.date_stamp(),
        region: region.to_owned(),
        service: service.to_owned(),
        terminator: SCOPE_TERMINATOR.to_owned(),
    };

    let mut headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(n, _)| !is_replaced(n))
        .copied()
        .collect();
    headers.push(("x-amz-date", &x_amz_date));
    if let Some(token) = credentials.session_token {
        headers.push(("x-amz-security-token", token));
    }

    let mut names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .filter(|n| !UNSIGNABLE.contains(&n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    let signed_headers_line = names.join(";");

    let signable = HttpRequest {
        headers: &headers,
        ..*req
    };
    let payload_hash = sha256_hex(req.body);
    // Every name comes from `headers`, so the "signed header absent" error
    // cannot occur; an empty canonical header block is the only fallback.
    let canonical_request = canonical::canonical_request(
        &signable,
        &names,
        &signed_headers_line,
        &payload_hash,
        false,
    )
    .unwrap_or_default();
    let scope_string = scope.to_scope_string();
    let string_to_sign = canonical::string_to_sign(&x_amz_date, &scope_string, &canonical_request);
    let signature = signing_key(&scope).sign_hex(&string_to_sign);

    SignedRequestHeaders {
        authorization: format!(
            "{ALGORITHM} Credential={}/{scope_string}, SignedHeaders={signed_headers_line}, Signature={signature}",
            credentials.access_key_id
        ),
        x_amz_date,
        x_amz_security_token: credentials.session_token.map(str::to_owned),
    }
}
