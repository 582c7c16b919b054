//! Requests signed by the official AWS signer must verify; tampered ones must not.

mod common;

use std::time::Duration;

use common::*;
use ferrokms_sigv4::{
    parse, sign_request, Credentials, SigV4Error, SignatureLocation, Verifier,
    SIGNATURE_MISMATCH_MESSAGE,
};
use proptest::prelude::*;

const ALL: &[&str] = &["kms", "iam", "sts"];

fn mismatch() -> SigV4Error {
    SigV4Error::InvalidSignature(SIGNATURE_MISMATCH_MESSAGE.to_owned())
}

#[test]
fn official_signer_kms_request_verifies_and_parse_reports_identity() {
    let mut req = OwnedRequest::kms(br#"{"KeyId":"alias/a","Plaintext":"aGk="}"#);
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    let parsed = verify_at(&req, t0(), &["kms"]).expect("verifies");
    assert_eq!(parsed.access_key_id, AKID);
    assert_eq!(parsed.scope.region, "us-east-1");
    assert_eq!(parsed.scope.service, "kms");
    assert_eq!(parsed.scope.date, "20240305");
    assert_eq!(parsed.timestamp.iso_basic(), "20240305T123456Z");
    assert_eq!(parsed.location, SignatureLocation::AuthorizationHeader);
    assert_eq!(
        parsed.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-target"]
    );
    assert_eq!(parsed.session_token, None);
}

#[test]
fn official_signer_verifies_for_every_service_and_region() {
    for service in ["kms", "iam", "sts"] {
        for region in ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"] {
            let mut req = OwnedRequest::kms(b"{}");
            oracle_sign(
                &mut req,
                &OracleOptions {
                    region,
                    service,
                    time: t0(),
                    ..Default::default()
                },
            );
            let parsed = verify_at(&req, t0(), ALL).expect("verifies");
            assert_eq!(parsed.scope.region, region);
            assert_eq!(parsed.scope.service, service);
        }
    }
}

#[test]
fn session_token_is_signed_and_reported() {
    let mut req = OwnedRequest::kms(b"{}");
    oracle_sign(
        &mut req,
        &OracleOptions {
            session_token: Some("FQoGZXIvYXdzE//token+/="),
            time: t0(),
            ..Default::default()
        },
    );
    let parsed = verify_at(&req, t0(), ALL).expect("verifies");
    assert_eq!(
        parsed.session_token.as_deref(),
        Some("FQoGZXIvYXdzE//token+/=")
    );
    assert!(parsed
        .signed_headers
        .iter()
        .any(|h| h == "x-amz-security-token"));
}

#[test]
fn query_strings_with_special_characters_verify() {
    for query in [
        "Action=ListUsers&Version=2010-05-08",
        "b=2&a=1&a=0",
        "k=a%20b%2Fc%3D%26",
        "k=%e2%9c%93&k2=%7E~",
        "empty=&flag",
        "sp=a+b",
        "Marker=abc%2B%2F%3D%3D",
    ] {
        let mut req = OwnedRequest::kms(b"");
        req.method = "GET".into();
        req.query = query.into();
        oracle_sign(
            &mut req,
            &OracleOptions {
                time: t0(),
                service: "iam",
                ..Default::default()
            },
        );
        verify_at(&req, t0(), ALL).unwrap_or_else(|e| panic!("{query}: {e}"));
    }
}

#[test]
fn paths_with_encoded_and_dot_segments_verify() {
    for path in [
        "/",
        "/a/b",
        "/a%20b/c%2Fd",
        "/a/./b/../c",
        "//x//y/",
        "/~user/x.y",
    ] {
        let mut req = OwnedRequest::kms(b"{}");
        req.path = path.into();
        oracle_sign(
            &mut req,
            &OracleOptions {
                time: t0(),
                ..Default::default()
            },
        );
        verify_at(&req, t0(), ALL).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

#[test]
fn repeated_headers_and_whitespace_runs_verify() {
    let mut req = OwnedRequest::kms(b"{}");
    req.headers.push(("X-Custom".into(), "  a   b  ".into()));
    req.headers.push(("x-custom".into(), "c".into()));
    req.headers
        .push(("User-Agent".into(), "unsigned/1.0".into()));
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    let parsed = verify_at(&req, t0(), ALL).expect("verifies");
    assert!(parsed.signed_headers.iter().any(|h| h == "x-custom"));
    assert!(!parsed.signed_headers.iter().any(|h| h == "user-agent"));
}

#[test]
fn presigned_url_verifies_within_expiry_and_expires_after() {
    let mut req = OwnedRequest::kms(b"");
    req.method = "GET".into();
    req.headers.retain(|(n, _)| n.eq_ignore_ascii_case("host"));
    req.query = "Action=GetCallerIdentity&Version=2011-06-15".into();
    oracle_sign(
        &mut req,
        &OracleOptions {
            service: "sts",
            time: t0(),
            session_token: Some("tok"),
            presign_for: Some(Duration::from_secs(900)),
            ..Default::default()
        },
    );
    let parsed = verify_at(&req, t0() + Duration::from_secs(899), ALL).expect("verifies");
    assert_eq!(parsed.location, SignatureLocation::QueryString);
    assert_eq!(parsed.expires, Some(Duration::from_secs(900)));
    assert_eq!(parsed.session_token.as_deref(), Some("tok"));
    let err = verify_at(&req, t0() + Duration::from_secs(901), ALL).expect_err("expired");
    assert_eq!(
        err,
        SigV4Error::InvalidSignature(
            "Signature expired: 20240305T123456Z is now earlier than 20240305T123457Z (20240305T124957Z - 15 min.)".into()
        )
    );
}

#[test]
fn our_signer_is_byte_identical_to_official_signer() {
    for token in [None, Some("session-token")] {
        let mut base = OwnedRequest::kms(br#"{"a":1}"#);
        base.headers
            .push(("X-Amz-User-Agent".into(), "aws-sdk  x".into()));
        base.query = "z=1&a=%2F".into();
        let mut official = base.clone();
        oracle_sign(
            &mut official,
            &OracleOptions {
                session_token: token,
                time: t0(),
                ..Default::default()
            },
        );
        let ours = base.with(|r| {
            sign_request(
                r,
                &Credentials {
                    access_key_id: AKID,
                    secret_access_key: SECRET,
                    session_token: token,
                },
                "us-east-1",
                "kms",
                t0(),
            )
        });
        assert_eq!(
            Some(ours.authorization.as_str()),
            official.header("authorization")
        );
        assert_eq!(
            Some(ours.x_amz_date.as_str()),
            official.header("x-amz-date")
        );
        assert_eq!(
            ours.x_amz_security_token.as_deref(),
            official.header("x-amz-security-token")
        );
    }
}

#[test]
fn tampered_body_fails_with_mismatch() {
    let mut req = OwnedRequest::kms(br#"{"KeyId":"alias/a"}"#);
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    req.body[3] ^= 1;
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("tampered"),
        mismatch()
    );
}

#[test]
fn tampered_signed_header_fails_with_mismatch() {
    let mut req = OwnedRequest::kms(b"{}");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    req.set_header("X-Amz-Target", "TrentService.Decrypt");
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("tampered"),
        mismatch()
    );
}

#[test]
fn tampered_date_fails_with_mismatch() {
    let mut req = OwnedRequest::kms(b"{}");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    req.set_header("X-Amz-Date", "20240305T123457Z");
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("tampered"),
        mismatch()
    );
}

#[test]
fn tampered_signature_fails_with_mismatch() {
    let mut req = OwnedRequest::kms(b"{}");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    let auth = req.header("authorization").expect("auth").to_owned();
    let last = auth.chars().last().expect("nonempty");
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &auth[..auth.len() - 1]);
    req.set_header("Authorization", &tampered);
    assert_eq!(
        verify_at(&req, t0(), ALL).expect_err("tampered"),
        mismatch()
    );
}

#[test]
fn wrong_secret_fails_with_mismatch() {
    let mut req = OwnedRequest::kms(b"{}");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    let err = req
        .with(|r| {
            let p = parse(r)?;
            ferrokms_sigv4::verify(r, &p, "not-the-secret", t0(), ALL)
        })
        .expect_err("wrong secret");
    assert_eq!(err, mismatch());
}

#[test]
fn verifier_cache_gives_same_answers_as_uncached_verify() {
    let verifier = Verifier::default();
    let mut req = OwnedRequest::kms(b"{}");
    oracle_sign(
        &mut req,
        &OracleOptions {
            time: t0(),
            ..Default::default()
        },
    );
    for _ in 0..3 {
        req.with(|r| {
            let p = parse(r).expect("parse");
            verifier.verify(r, &p, SECRET, t0(), ALL).expect("ok");
            // A rotated secret must not be served from the cache.
            assert_eq!(
                verifier.verify(r, &p, "rotated", t0(), ALL),
                Err(mismatch())
            );
        });
    }
    // One entry per access key id and scope: the other secret replaced it.
    assert_eq!(verifier.cache().len(), 1);
}

fn header_value() -> impl Strategy<Value = String> {
    "[ -~]{0,24}".prop_map(|s| s.trim_matches(' ').to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_official_requests_verify_and_any_single_mutation_fails(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE"]),
        segments in prop::collection::vec("[A-Za-z0-9._~-]{1,6}", 0..4),
        params in prop::collection::vec(("[A-Za-z0-9]{1,5}", "[ -~]{0,8}"), 0..4),
        extra in prop::collection::vec(("x-[a-z]{1,6}", header_value()), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        service in prop::sample::select(vec!["kms", "iam", "sts"]),
        region in prop::sample::select(vec!["us-east-1", "eu-central-1", "local"]),
        token in prop::option::of("[A-Za-z0-9+/=]{8,32}"),
        offset in -299i64..=299,
        mutation in 0usize..5,
    ) {
        let mut req = OwnedRequest::kms(&body);
        req.method = method.into();
        req.path = format!("/{}", segments.join("/"));
        req.query = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode_query_component(k), encode_query_component(v)))
            .collect::<Vec<_>>()
            .join("&");
        for (n, v) in &extra {
            req.headers.push((n.clone(), v.clone()));
        }
        oracle_sign(&mut req, &OracleOptions { region, service, session_token: token.as_deref(), time: t0(), ..Default::default() });
        let now = if offset >= 0 {
            t0() + Duration::from_secs(offset as u64)
        } else {
            t0() - Duration::from_secs(offset.unsigned_abs())
        };
        prop_assert!(verify_at(&req, now, ALL).is_ok());

        let mut bad = req.clone();
        match mutation {
            0 => bad.body.push(b'x'),
            1 => bad.method = format!("{}X", bad.method),
            2 => bad.path.push('z'),
            3 => bad.set_header("X-Amz-Target", "TrentService.Other"),
            _ => {
                if bad.query.is_empty() { bad.query = "q=1".into() } else { bad.query.push_str("&q=1") }
            }
        }
        prop_assert_eq!(verify_at(&bad, now, ALL).err(), Some(mismatch()));
    }
}
