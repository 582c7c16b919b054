#![allow(dead_code)]
//! Oracle: the official AWS Rust SDK signer (`aws-sigv4`).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const HOST: &str = "kms.us-east-1.amazonaws.com";

/// A request the test owns, convertible into the crate's borrowed view.
#[derive(Debug, Clone)]
pub struct OwnedRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OwnedRequest {
    pub fn kms(body: &[u8]) -> Self {
        OwnedRequest {
            method: "POST".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![
                ("Host".into(), HOST.into()),
                ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                ("X-Amz-Target".into(), "TrentService.Encrypt".into()),
            ],
            body: body.to_vec(),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&ferrokms_sigv4::HttpRequest<'_>) -> R) -> R {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        f(&ferrokms_sigv4::HttpRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: &self.body,
        })
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn encode_query_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub struct OracleOptions<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub session_token: Option<&'a str>,
    pub time: SystemTime,
    pub presign_for: Option<Duration>,
}

impl Default for OracleOptions<'_> {
    fn default() -> Self {
        OracleOptions {
            region: "us-east-1",
            service: "kms",
            session_token: None,
            time: SystemTime::now(),
            presign_for: None,
        }
    }
}

/// Signs `req` in place with aws-sigv4 (headers or presigned query params).
pub fn oracle_sign(req: &mut OwnedRequest, opts: &OracleOptions<'_>) {
    let identity = Credentials::new(
        AKID,
        SECRET,
        opts.session_token.map(str::to_owned),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(d) = opts.presign_for {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(d);
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(opts.region)
        .name(opts.service)
        .time(opts.time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let host = req.header("host").unwrap_or(HOST).to_owned();
    let uri = if req.query.is_empty() {
        format!("https://{host}{}", req.path)
    } else {
        format!("https://{host}{}?{}", req.path, req.query)
    };
    let signable = SignableRequest::new(
        &req.method,
        uri,
        req.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(&req.body),
    )
    .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let (headers, query_params) = instructions.into_parts();
    for h in headers {
        req.set_header(h.name(), h.value());
    }
    for (k, v) in query_params {
        if !req.query.is_empty() {
            req.query.push('&');
        }
        req.query.push_str(&encode_query_component(k));
        req.query.push('=');
        req.query.push_str(&encode_query_component(&v));
    }
}

pub fn verify_at(
    req: &OwnedRequest,
    now: SystemTime,
    services: &[&str],
) -> Result<ferrokms_sigv4::ParsedSignature, ferrokms_sigv4::SigV4Error> {
    req.with(|r| {
        let parsed = ferrokms_sigv4::parse(r)?;
        ferrokms_sigv4::verify(r, &parsed, SECRET, now, services)?;
        Ok(parsed)
    })
}

/// A fixed instant, so expected texts can be spelled out.
pub fn t0() -> SystemTime {
    // 2024-03-05T12:34:56Z
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_642_096)
}
