use std::time::{Duration, SystemTime};

use aws_lc_rs::constant_time;

use crate::canonical::{self, header, sha256_hex, UNSIGNED_PAYLOAD};
use crate::keys::{derive_signing_key, SigningKey, SigningKeyCache};
use crate::timestamp::{format_iso_basic, SigningTime};
use crate::{HttpRequest, ParsedSignature, SigV4Error, SignatureLocation};

/// Clock skew AWS tolerates for header-signed requests, in both directions.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The only terminator SigV4 defines.
pub const SCOPE_TERMINATOR: &str = "aws4_request";

/// Verifies without a cache: four extra HMACs per call. Use [`Verifier`] on the
/// request path.
pub fn verify(
    req: &HttpRequest<'_>,
    parsed: &ParsedSignature,
    secret_access_key: &str,
    now: SystemTime,
    allowed_services: &[&str],
) -> Result<(), SigV4Error> {
    verify_with(req, parsed, now, allowed_services, || {
        derive_signing_key(
            secret_access_key,
            &parsed.scope.date,
            &parsed.scope.region,
            &parsed.scope.service,
        )
    })
}

/// Request-path verifier: owns the signing-key cache so a warm request costs
/// one HMAC plus the SHA-256 of the body and of the canonical request.
#[derive(Debug, Default)]
pub struct Verifier {
    cache: SigningKeyCache,
}

impl Verifier {
    /// A verifier that derives and caches signing keys in `cache`.
    pub fn new(cache: SigningKeyCache) -> Self {
        Verifier { cache }
    }

    /// The signing-key cache, e.g. to see how many keys it holds.
    pub fn cache(&self) -> &SigningKeyCache {
        &self.cache
    }

    /// Checks that `parsed` is a fresh (as of `now`) signature of `req` by the holder of
    /// `secret_access_key`, scoped to one of `allowed_services`.
    pub fn verify(
        &self,
        req: &HttpRequest<'_>,
        parsed: &ParsedSignature,
        secret_access_key: &str,
        now: SystemTime,
        allowed_services: &[&str],
    ) -> Result<(), SigV4Error> {
        verify_with(req, parsed, now, allowed_services, || {
            self.cache
                .signing_key(&parsed.access_key_id, secret_access_key, &parsed.scope)
        })
    }
}

/// Optional pinning of the scope region. The server decides whether a region
/// outside its own is an error (AWS) or simply names the request's region
/// (a single multi-region endpoint), so this is not part of [`verify`].
pub fn check_region(parsed: &ParsedSignature, allowed_regions: &[&str]) -> Result<(), SigV4Error> {
    if allowed_regions.contains(&parsed.scope.region.as_str()) {
        Ok(())
    } else {
        Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            parsed.scope.region
        )))
    }
}

fn verify_with(
    req: &HttpRequest<'_>,
    parsed: &ParsedSignature,
    now: SystemTime,
    allowed_services: &[&str],
    signing_key: impl FnOnce() -> SigningKey,
) -> Result<(), SigV4Error> {
    check_time(parsed, now)?;
    check_scope(parsed, allowed_services)?;
    check_signed_headers(req, parsed)?;
    let payload_hash = payload_hash(req)?;

    let presigned = parsed.location == SignatureLocation::QueryString;
    let canonical_request = canonical::canonical_request(
        req,
        &parsed.signed_headers,
        &parsed.signed_headers_raw,
        &payload_hash,
        presigned,
    )?;
    let string_to_sign = canonical::string_to_sign(
        &parsed.timestamp.iso_basic(),
        &parsed.scope.to_scope_string(),
        &canonical_request,
    );
    let expected = signing_key().sign_hex(&string_to_sign);
    constant_time::verify_slices_are_equal(expected.as_bytes(), parsed.signature.as_bytes())
        .map_err(|_| SigV4Error::mismatch())
}

fn check_time(parsed: &ParsedSignature, now: SystemTime) -> Result<(), SigV4Error> {
    let now = SigningTime::from_system_time(now).offset();
    let signed_at = parsed.timestamp.offset();
    let skew = time::Duration::seconds(MAX_CLOCK_SKEW.as_secs() as i64);
    if signed_at > now + skew {
        return Err(SigV4Error::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            format_iso_basic(signed_at),
            format_iso_basic(now + skew),
            format_iso_basic(now)
        )));
    }
    // A presigned URL lives for X-Amz-Expires instead of the skew window; the
    // message keeps AWS's shape with the window spelled out.
    let (window, window_text) = match parsed.expires {
        Some(expires) => {
            let secs = expires.as_secs();
            let text = if secs % 60 == 0 {
                format!("{} min.", secs / 60)
            } else {
                format!("{secs} sec.")
            };
            (time::Duration::seconds(secs as i64), text)
        }
        None => (skew, "5 min.".to_owned()),
    };
    if signed_at < now - window {
        return Err(SigV4Error::InvalidSignature(format!(
            "Signature expired: {} is now earlier than {} ({} - {window_text})",
            format_iso_basic(signed_at),
            format_iso_basic(now - window),
            format_iso_basic(now)
        )));
    }
    Ok(())
}

fn check_scope(parsed: &ParsedSignature, allowed_services: &[&str]) -> Result<(), SigV4Error> {
    let scope = &parsed.scope;
    let request_date = parsed.timestamp.date_stamp();
    if scope.date != request_date {
        return Err(SigV4Error::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            scope.date,
            request_date,
            parsed.timestamp.iso_basic()
        )));
    }
    if !allowed_services.contains(&scope.service.as_str()) {
        let expected = allowed_services.first().copied().unwrap_or_default();
        return Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{expected}'. "
        )));
    }
    if scope.terminator != SCOPE_TERMINATOR {
        return Err(SigV4Error::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{SCOPE_TERMINATOR}'"
        )));
    }
    Ok(())
}

fn is_signed(parsed: &ParsedSignature, name: &str) -> bool {
    parsed
        .signed_headers
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name))
}

/// AWS's wording for a header the signature must cover (the `host` and
/// `x-amz-date` forms are AWS's; the `x-amz-target` one follows them).
const X_AMZ_TARGET_NOT_SIGNED_MESSAGE: &str =
    "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.";

/// Without `host` a signature could be replayed against another endpoint;
/// without `x-amz-date` the timestamp could be moved to dodge the skew check;
/// without `x-amz-target` a captured JSON-protocol request (KMS) could be
/// replayed within the skew window as another operation with the same body
/// (`DescribeKey {"KeyId":..}` sent again as `ScheduleKeyDeletion`). Every
/// AWS SDK, awscurl since 0.34 and curl since 7.86 sign it; see the README.
/// A scan of the already-parsed signed-header list: no allocation.
fn check_signed_headers(req: &HttpRequest<'_>, parsed: &ParsedSignature) -> Result<(), SigV4Error> {
    if !is_signed(parsed, "host") {
        return Err(SigV4Error::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    if header(req, "x-amz-date").is_some() && !is_signed(parsed, "x-amz-date") {
        return Err(SigV4Error::IncompleteSignature(
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
        ));
    }
    if header(req, "x-amz-target").is_some() && !is_signed(parsed, "x-amz-target") {
        return Err(SigV4Error::IncompleteSignature(
            X_AMZ_TARGET_NOT_SIGNED_MESSAGE.to_owned(),
        ));
    }
    Ok(())
}

/// The body hash that goes into the canonical request: always the hash of
/// the body received. `UNSIGNED-PAYLOAD` (header or presigned) is an S3-only
/// convention; AWS's other services hash the body regardless, so a client
/// that signed the literal gets SignatureDoesNotMatch there, and so here. It
/// is refused before the canonical request is built: a request whose body
/// the signature does not cover could carry any body.
fn payload_hash(req: &HttpRequest<'_>) -> Result<String, SigV4Error> {
    let declared = header(req, "x-amz-content-sha256").map(str::trim);
    if declared == Some(UNSIGNED_PAYLOAD) {
        return Err(SigV4Error::mismatch());
    }
    let actual = sha256_hex(req.body);
    match declared {
        Some(d) if d != actual => Err(SigV4Error::InvalidSignature(
            "The provided 'x-amz-content-sha256' header does not match what was computed."
                .to_owned(),
        )),
        _ => Ok(actual),
    }
}
