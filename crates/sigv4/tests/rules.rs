//! One test per verification rule, with the exact AWS text it must produce.

mod common;

use std::time::Duration;

use common::*;
use ferrokms_sigv4::{check_region, parse, sign_request, Credentials, SigV4Error};
use proptest::prelude::*;

const ALL: &[&str] = &["kms", "iam", "sts"];

fn signed(service: &str) -> OwnedRequest {
    let mut req = OwnedRequest::kms(b"{}");
    let out = req.with(|r| {
        sign_request(
            r,
            &Credentials {
                access_key_id: AKID,
                secret_access_key: SECRET,
                session_token: None,
            },
            "us-east-1",
            service,
            t0(),
        )
    });
    for (n, v) in out.iter() {
        req.set_header(n, v);
    }
    req
}

fn incomplete(s: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(s.to_owned())
}

fn invalid(s: &str) -> SigV4Error {
    SigV4Error::InvalidSignature(s.to_owned())
}

fn parse_err(req: &OwnedRequest) -> SigV4Error {
    req.with(|r| parse(r).expect_err("parse must fail"))
}

#[test]
fn no_authorization_header_and_no_query_signature_is_missing_authentication_token() {
    let req = OwnedRequest::kms(b"{}");
    let err = parse_err(&req);
    assert_eq!(err, SigV4Error::MissingAuthenticationToken);
    assert_eq!(err.message(), "Missing Authentication Token");
    assert_eq!(err.aws_code(), "MissingAuthenticationTokenException");
    assert_eq!(err.query_protocol_code(), "MissingAuthenticationToken");
}

#[test]
fn missing_authorization_parts_are_all_listed_in_aws_order() {
    let mut req = OwnedRequest::kms(b"{}");
    req.set_header("Authorization", "AWS4-HMAC-SHA256");
    assert_eq!(
        parse_err(&req),
        incomplete(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256"
        )
    );
}

#[test]
fn only_the_missing_parts_are_listed() {
    let mut req = signed("kms");
    let auth = req.header("authorization").expect("auth").to_owned();
    let without_sig = auth
        .split(", Signature=")
        .next()
        .expect("prefix")
        .to_owned();
    req.set_header("Authorization", &without_sig);
    assert_eq!(
        parse_err(&req),
        incomplete(&format!(
            "Authorization header requires 'Signature' parameter. Authorization={without_sig}"
        ))
    );
}

#[test]
fn component_without_equal_sign_is_reported_with_the_whole_header() {
    let mut req = OwnedRequest::kms(b"{}");
    let value = "AWS4-HMAC-SHA256 Credential= AKID/20240305/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=00";
    req.set_header("Authorization", value);
    assert_eq!(
        parse_err(&req),
        incomplete(&format!(
            "'AKID/20240305/us-east-1/kms/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header: '{value}'."
        ))
    );
}

#[test]
fn bearer_token_is_reported_as_missing_equal_sign() {
    let mut req = OwnedRequest::kms(b"{}");
    req.set_header("Authorization", "Bearer SomeKey");
    assert_eq!(
        parse_err(&req),
        incomplete("'SomeKey' not a valid key=value pair (missing equal-sign) in Authorization header: 'Bearer SomeKey'.")
    );
}

#[test]
fn unsupported_algorithm_is_incomplete_signature() {
    let mut req = signed("kms");
    let auth = req
        .header("authorization")
        .expect("auth")
        .replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512");
    req.set_header("Authorization", &auth);
    assert_eq!(
        parse_err(&req),
        incomplete("Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.")
    );
}

#[test]
fn credential_without_five_elements_is_incomplete_signature() {
    let mut req = signed("kms");
    let auth = req
        .header("authorization")
        .expect("auth")
        .replace("/aws4_request", "");
    req.set_header("Authorization", &auth);
    assert_eq!(
        parse_err(&req),
        incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20240305/us-east-1/kms'")
    );
}

#[test]
fn unparsable_x_amz_date_is_incomplete_signature() {
    let mut req = signed("kms");
    req.set_header("X-Amz-Date", "2024-03-05T12:34:56Z");
    assert_eq!(
        parse_err(&req),
        incomplete("Date must be in ISO-8601 'basic format'. Got '2024-03-05T12:34:56Z'. See http://en.wikipedia.org/wiki/ISO_8601")
    );
}

#[test]
fn date_header_is_the_fallback_when_x_amz_date_is_absent() {
    let mut req = signed("kms");
    req.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
    req.set_header("Date", "Tue, 05 Mar 2024 12:34:56 GMT");
    let parsed = req.with(|r| parse(r).expect("parses"));
    assert_eq!(parsed.timestamp.iso_basic(), "20240305T123456Z");
    assert_eq!(
        parsed.timestamp.source(),
        ferrokms_sigv4::TimestampSource::DateHeader
    );
}

#[test]
fn signature_older_than_five_minutes_is_expired_with_aws_text() {
    let req = signed("kms");
    let err = verify_at(&req, t0() + Duration::from_secs(301), ALL).expect_err("expired");
    assert_eq!(
        err,
        invalid("Signature expired: 20240305T123456Z is now earlier than 20240305T123457Z (20240305T123957Z - 5 min.)")
    );
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(err.query_protocol_code(), "SignatureDoesNotMatch");
}

#[test]
fn signature_exactly_five_minutes_old_is_still_accepted() {
    let req = signed("kms");
    assert!(verify_at(&req, t0() + Duration::from_secs(300), ALL).is_ok());
    assert!(verify_at(&req, t0() - Duration::from_secs(300), ALL).is_ok());
}

#[test]
fn signature_more_than_five_minutes_in_future_is_not_yet_current_with_aws_text() {
    let req = signed("kms");
    assert_eq!(
        verify_at(&req, t0() - Duration::from_secs(301), ALL).expect_err("future"),
        invalid("Signature not yet current: 20240305T123456Z is still later than 20240305T123455Z (20240305T122955Z + 5 min.)")
    );
}

#[test]
fn scope_date_must_equal_x_amz_date_date() {
    let mut req = signed("kms");
    let auth = req
        .header("authorization")
        .expect("auth")
        .replace("/20240305/", "/20240304/");
    req.set_header("Authorization", &auth);
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("scope date"),
        invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240304' != '20240305', from '20240305T123456Z'.")
    );
}

#[test]
fn scope_service_must_be_allowed() {
    let req = signed("s3");
    assert_eq!(
        verify_at(&req, t0(), &["kms"]).expect_err("service"),
        invalid("Credential should be scoped to correct service: 'kms'. ")
    );
}

#[test]
fn scope_terminator_must_be_aws4_request() {
    let mut req = signed("kms");
    let auth = req
        .header("authorization")
        .expect("auth")
        .replace("/aws4_request", "/aws5_request");
    req.set_header("Authorization", &auth);
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("terminator"),
        invalid("Credential should be scoped with a valid terminator: 'aws4_request'")
    );
}

#[test]
fn scope_region_check_is_available_to_the_server() {
    let req = signed("kms");
    let parsed = req.with(|r| parse(r).expect("parses"));
    assert!(check_region(&parsed, &["us-east-1"]).is_ok());
    assert_eq!(
        check_region(&parsed, &["eu-west-1"]),
        Err(invalid(
            "Credential should be scoped to a valid region, not 'us-east-1'. "
        ))
    );
}

#[test]
fn signed_headers_must_include_host() {
    let mut req = signed("kms");
    let auth = req
        .header("authorization")
        .expect("auth")
        .replace("host;", "");
    req.set_header("Authorization", &auth);
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("host"),
        incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    );
}

#[test]
fn signed_headers_must_include_x_amz_date_when_it_is_sent() {
    let mut req = signed("kms");
    let auth = req
        .header("authorization")
        .expect("auth")
        .replace("x-amz-date;", "");
    req.set_header("Authorization", &auth);
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("x-amz-date"),
        incomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
    );
}

#[test]
fn signed_header_absent_from_request_is_incomplete_signature() {
    let mut req = signed("kms");
    req.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-target"));
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("absent"),
        incomplete(
            "'x-amz-target' is named as a SignedHeader, but it does not exist in the HTTP request."
        )
    );
}

#[test]
fn x_amz_content_sha256_must_match_the_body() {
    let mut req = OwnedRequest::kms(b"{}");
    req.set_header(
        "X-Amz-Content-Sha256",
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    );
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    assert!(verify_at(&req, t0(), ALL).is_ok());
    req.body = b"{ }".to_vec();
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("hash"),
        invalid("The provided 'x-amz-content-sha256' header does not match what was computed.")
    );
}

const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// AWS's rule: `UNSIGNED-PAYLOAD` is S3's; the other services hash the body
/// they received, so a client that signed the literal gets SignatureDoesNotMatch.
#[test]
fn unsigned_payload_outside_s3_is_signature_does_not_match() {
    let mut req = OwnedRequest::kms(b"{}");
    req.set_header("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    let err = verify_at(&req, t0(), ALL).expect_err("unsigned");
    assert_eq!(err, invalid(MISMATCH));
    assert_eq!(err.aws_code(), "InvalidSignatureException");
    assert_eq!(err.query_protocol_code(), "SignatureDoesNotMatch");
}

/// A presigned URL whose payload is `UNSIGNED-PAYLOAD` would carry any body:
/// refused like the header form, whatever body comes with it.
#[test]
fn presigned_unsigned_payload_is_refused_whatever_the_body() {
    for body in [&b""[..], br#"{"KeyId":"alias/other"}"#] {
        let mut req = OwnedRequest::kms(b"");
        req.set_header("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD");
        oracle_sign(
            &mut req,
            &OracleOptions {
                time: t0(),
                presign_for: Some(Duration::from_secs(900)),
                ..Default::default()
            },
        );
        req.body = body.to_vec();
        assert_eq!(
            verify_at(&req, t0(), ALL).expect_err("unsigned presigned"),
            invalid(MISMATCH)
        );
    }
}

/// A presigned URL signs the body hash like a header signature: another body
/// does not verify.
#[test]
fn presigned_request_with_another_body_does_not_verify() {
    let mut req = OwnedRequest::kms(br#"{"KeyId":"alias/a"}"#);
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            presign_for: Some(Duration::from_secs(900)),
            ..Default::default()
        },
    );
    assert!(verify_at(&req, t0(), ALL).is_ok());
    req.body = br#"{"KeyId":"alias/b"}"#.to_vec();
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("body"),
        invalid(MISMATCH)
    );
}

/// A signature that does not cover `X-Amz-Target` could be replayed as
/// another operation with the same body: refused when the header is sent.
#[test]
fn x_amz_target_must_be_a_signed_header_when_sent() {
    let mut req = OwnedRequest::kms(br#"{"KeyId":"alias/a"}"#);
    req.headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-target"));
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    // Without the header (the query protocol) the signature is complete.
    let parsed = verify_at(&req, t0(), ALL).expect("no target header");
    assert!(!parsed.signed_headers.iter().any(|h| h == "x-amz-target"));
    for target in [
        "TrentService.DescribeKey",
        "TrentService.ScheduleKeyDeletion",
    ] {
        req.set_header("X-Amz-Target", target);
        let err = verify_at(&req, t0(), ALL).expect_err("unsigned target");
        assert_eq!(
            err,
            incomplete("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.")
        );
        assert_eq!(err.aws_code(), "IncompleteSignatureException");
    }
}

/// With the target signed, changing it is a plain mismatch.
#[test]
fn signed_x_amz_target_cannot_be_changed() {
    let mut req = OwnedRequest::kms(br#"{"KeyId":"alias/a"}"#);
    req.set_header("X-Amz-Target", "TrentService.DescribeKey");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    let parsed = verify_at(&req, t0(), ALL).expect("verifies");
    assert!(parsed.signed_headers.iter().any(|h| h == "x-amz-target"));
    req.set_header("X-Amz-Target", "TrentService.ScheduleKeyDeletion");
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("changed"),
        invalid(MISMATCH)
    );
}

#[test]
fn missing_presigned_query_parameters_are_all_listed() {
    let mut req = OwnedRequest::kms(b"");
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240305T123456Z".into();
    assert_eq!(
        parse_err(&req),
        incomplete("AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.")
    );
}

#[test]
fn presigned_expires_longer_than_a_week_is_rejected() {
    let mut req = OwnedRequest::kms(b"");
    req.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20240305%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20240305T123456Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=604801".into();
    assert_eq!(
        parse_err(&req),
        incomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    );
}

#[test]
fn error_messages_map_to_codes() {
    let e = incomplete("x");
    assert_eq!(e.aws_code(), "IncompleteSignatureException");
    assert_eq!(e.query_protocol_code(), "IncompleteSignature");
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.to_string(), "IncompleteSignatureException: x");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_authorization_header_never_panics(auth in any::<String>(), date in any::<String>()) {
        let mut req = OwnedRequest::kms(b"{}");
        req.set_header("Authorization", &auth);
        req.set_header("X-Amz-Date", &date);
        req.with(|r| {
            if let Ok(p) = parse(r) {
                let _ = ferrokms_sigv4::verify(r, &p, SECRET, t0(), ALL);
            }
        });
    }

    #[test]
    fn arbitrary_sigv4_shaped_header_never_panics(
        cred in "[ -~]{0,40}", sh in "[ -~]{0,20}", sig in "[ -~]{0,70}",
        date in "[0-9TZ]{0,18}", query in "[ -~]{0,40}", path in "[ -~]{0,20}",
    ) {
        let mut req = OwnedRequest::kms(b"{}");
        req.path = path;
        req.query = query;
        req.set_header("Authorization", &format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={sh}, Signature={sig}"));
        req.set_header("X-Amz-Date", &date);
        req.with(|r| {
            if let Ok(p) = parse(r) {
                let _ = ferrokms_sigv4::verify(r, &p, SECRET, t0(), ALL);
            }
        });
    }

    #[test]
    fn arbitrary_query_string_never_panics(query in any::<String>()) {
        let mut req = OwnedRequest::kms(b"");
        req.headers.clear();
        req.query = format!("X-Amz-Signature=1&{query}");
        req.with(|r| {
            if let Ok(p) = parse(r) {
                let _ = ferrokms_sigv4::verify(r, &p, SECRET, t0(), ALL);
            }
        });
    }
}
