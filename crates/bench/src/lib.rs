//! A load generator for KMS-compatible endpoints.
//!
//! It signs real SigV4 requests (the same signer the tests check against
//! AWS's own), keeps N HTTP/1.1 connections busy for T seconds (and at most
//! a bounded number of requests), and reports throughput and latency
//! percentiles. It drives any endpoint — ferrokms, a peer such as moto's
//! server — the same way, so results compare. It also measures the raw
//! crypto rate of this machine for the same operation (`raw_rate`), the
//! ceiling a server could reach.
//!
//! Traffic goes only where the endpoint points; the CLI accepts loopback
//! endpoints only.

// The library is the body of `ferrokms bench` and of the `ferrokms-ceiling`
// binary, not an API for other code: the workspace's `missing_docs` lint is
// allowed here.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use ferrokms_sigv4::{Credentials, HttpRequest, Signer};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("setup call {op} failed: HTTP {status}: {body}")]
    Setup {
        op: String,
        status: u16,
        body: String,
    },
    #[error("{0}")]
    Other(String),
}

/// The operations the generator can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    Encrypt,
    Decrypt,
    GenerateDataKey,
    SignRsa2048,
    VerifyRsa2048,
    SignEccP256,
    VerifyEccP256,
    GenerateMac,
    /// CreateKey (symmetric): durable writes. It changes the server's state
    /// (one new key per request), so it is opt-in and not part of `ALL`.
    CreateKey,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::Encrypt,
        Op::Decrypt,
        Op::GenerateDataKey,
        Op::SignRsa2048,
        Op::VerifyRsa2048,
        Op::SignEccP256,
        Op::VerifyEccP256,
        Op::GenerateMac,
    ];

    /// Operations that are valid for `--op` but not part of `all`, because
    /// they change the server's state.
    pub const OPT_IN: [Op; 1] = [Op::CreateKey];

    pub fn name(self) -> &'static str {
        match self {
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::GenerateDataKey => "generate-data-key",
            Op::SignRsa2048 => "sign-rsa2048",
            Op::VerifyRsa2048 => "verify-rsa2048",
            Op::SignEccP256 => "sign-ecc-p256",
            Op::VerifyEccP256 => "verify-ecc-p256",
            Op::GenerateMac => "generate-mac",
            Op::CreateKey => "create-key",
        }
    }

    pub fn parse(s: &str) -> Option<Op> {
        Op::ALL
            .into_iter()
            .chain(Op::OPT_IN)
            .find(|o| o.name() == s)
    }

    fn create_key_body(self) -> Value {
        match self {
            Op::Encrypt | Op::Decrypt | Op::GenerateDataKey | Op::CreateKey => json!({}),
            Op::SignRsa2048 | Op::VerifyRsa2048 => {
                json!({"KeySpec": "RSA_2048", "KeyUsage": "SIGN_VERIFY"})
            }
            Op::SignEccP256 | Op::VerifyEccP256 => {
                json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})
            }
            Op::GenerateMac => json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
        }
    }

    fn signing_algorithm(self) -> &'static str {
        match self {
            Op::SignEccP256 | Op::VerifyEccP256 => "ECDSA_SHA_256",
            _ => "RSASSA_PKCS1_V1_5_SHA_256",
        }
    }
}

/// Where and as whom to send requests.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` of a plain-HTTP endpoint.
    pub authority: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// An existing symmetric key to drive (encrypt, decrypt,
    /// generate-data-key), e.g. one in an external key store; `None`: each
    /// operation creates its own key.
    pub key_id: Option<String>,
}

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub connections: usize,
    pub duration: Duration,
    /// Upper bound on requests, whatever the duration.
    pub max_requests: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub op: &'static str,
    pub requests: u64,
    pub errors: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    /// The first error response seen, to tell a broken run from a slow one.
    pub first_error: Option<String>,
}

const MESSAGE: &[u8] = b"the quick brown fox jumps over the lazy dog, 64 bytes of payload";

struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
}

async fn connect(authority: &str) -> Result<Connection, BenchError> {
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| BenchError::Connect(authority.into(), e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| BenchError::Connect(authority.into(), e.to_string()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Connection { sender })
}

/// One response: status, body, and whether the server keeps the
/// connection open for the next request.
struct Response {
    status: u16,
    body: Bytes,
    keep_alive: bool,
}

/// Whether a response lets the connection carry another request: not after
/// `Connection: close` (moto's Werkzeug server sends it on every response),
/// nor after an HTTP/1.0 response without `Connection: keep-alive`.
fn keeps_alive<B>(resp: &hyper::Response<B>) -> bool {
    let connection = resp
        .headers()
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect::<Vec<_>>();
    if connection.iter().any(|t| t == "close") {
        return false;
    }
    resp.version() != hyper::Version::HTTP_10 || connection.iter().any(|t| t == "keep-alive")
}

/// Sends one signed KMS JSON request.
async fn call(
    conn: &mut Connection,
    signer: &Signer,
    target: &Target,
    op: &str,
    body: &[u8],
) -> Result<Response, BenchError> {
    let amz_target = format!("TrentService.{op}");
    let headers = [
        ("host", target.authority.as_str()),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", amz_target.as_str()),
    ];
    let req = HttpRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let creds = Credentials {
        access_key_id: &target.access_key_id,
        secret_access_key: &target.secret_access_key,
        session_token: None,
    };
    let signed = signer.sign(&req, &creds, &target.region, "kms", SystemTime::now());
    let mut builder = hyper::Request::post("/");
    for (k, v) in headers {
        builder = builder.header(k, v);
    }
    for (k, v) in signed.iter() {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(|e| BenchError::Other(e.to_string()))?;
    conn.sender
        .ready()
        .await
        .map_err(|e| BenchError::Other(e.to_string()))?;
    let resp = conn
        .sender
        .send_request(request)
        .await
        .map_err(|e| BenchError::Other(e.to_string()))?;
    let status = resp.status().as_u16();
    let keep_alive = keeps_alive(&resp);
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| BenchError::Other(e.to_string()))?
        .to_bytes();
    Ok(Response {
        status,
        body: bytes,
        keep_alive,
    })
}

async fn setup_call(
    conn: &mut Connection,
    signer: &Signer,
    target: &Target,
    op: &str,
    body: Value,
) -> Result<Value, BenchError> {
    let bytes = serde_json::to_vec(&body).map_err(|e| BenchError::Other(e.to_string()))?;
    let Response {
        status,
        body: resp,
        keep_alive,
    } = call(conn, signer, target, op, &bytes).await?;
    if !keep_alive {
        *conn = connect(&target.authority).await?;
    }
    if status != 200 {
        return Err(BenchError::Setup {
            op: op.into(),
            status,
            body: String::from_utf8_lossy(&resp).into_owned(),
        });
    }
    serde_json::from_slice(&resp).map_err(|e| BenchError::Other(e.to_string()))
}

/// Creates the key the operation needs and returns the request body the
/// load loop will send (the same body every time, freshly signed).
async fn prepare(target: &Target, op: Op) -> Result<(String, Vec<u8>), BenchError> {
    if op == Op::CreateKey {
        let body = json!({"Description": "ferrokms bench"});
        let bytes = serde_json::to_vec(&body).map_err(|e| BenchError::Other(e.to_string()))?;
        return Ok(("CreateKey".to_string(), bytes));
    }
    let mut conn = connect(&target.authority).await?;
    let signer = Signer::default();
    let key = match (&target.key_id, op) {
        (Some(k), Op::Encrypt | Op::Decrypt | Op::GenerateDataKey) => k.clone(),
        (Some(_), _) => {
            return Err(BenchError::Other(format!(
                "--key-id drives encrypt, decrypt and generate-data-key only, not {}",
                op.name()
            )))
        }
        (None, _) => {
            let created = setup_call(
                &mut conn,
                &signer,
                target,
                "CreateKey",
                op.create_key_body(),
            )
            .await?;
            created["KeyMetadata"]["KeyId"]
                .as_str()
                .ok_or_else(|| BenchError::Other("CreateKey returned no KeyId".into()))?
                .to_string()
        }
    };
    let msg = B64.encode(MESSAGE);
    let (name, body) = match op {
        Op::Encrypt => (
            "Encrypt",
            json!({"KeyId": key, "Plaintext": msg, "EncryptionContext": {"app": "bench"}}),
        ),
        Op::GenerateDataKey => (
            "GenerateDataKey",
            json!({"KeyId": key, "KeySpec": "AES_256"}),
        ),
        Op::Decrypt => {
            let enc = setup_call(
                &mut conn,
                &signer,
                target,
                "Encrypt",
                json!({"KeyId": key, "Plaintext": msg, "EncryptionContext": {"app": "bench"}}),
            )
            .await?;
            (
                "Decrypt",
                json!({"CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": {"app": "bench"}}),
            )
        }
        Op::SignRsa2048 | Op::SignEccP256 => (
            "Sign",
            json!({"KeyId": key, "Message": msg, "MessageType": "RAW", "SigningAlgorithm": op.signing_algorithm()}),
        ),
        Op::VerifyRsa2048 | Op::VerifyEccP256 => {
            let sig = setup_call(
                &mut conn,
                &signer,
                target,
                "Sign",
                json!({"KeyId": key, "Message": msg, "MessageType": "RAW", "SigningAlgorithm": op.signing_algorithm()}),
            )
            .await?;
            (
                "Verify",
                json!({"KeyId": key, "Message": msg, "MessageType": "RAW", "Signature": sig["Signature"], "SigningAlgorithm": op.signing_algorithm()}),
            )
        }
        Op::GenerateMac => (
            "GenerateMac",
            json!({"KeyId": key, "Message": msg, "MacAlgorithm": "HMAC_SHA_256"}),
        ),
        Op::CreateKey => ("CreateKey", json!({"Description": "ferrokms bench"})),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| BenchError::Other(e.to_string()))?;
    Ok((name.to_string(), bytes))
}

/// Drives one operation with `load` and reports what it saw.
pub async fn run(target: &Target, op: Op, load: Load) -> Result<Report, BenchError> {
    let (name, body) = prepare(target, op).await?;
    let name = Arc::new(name);
    let body = Arc::new(body);
    let target = Arc::new(target.clone());
    let signer = Arc::new(Signer::default());
    let per_conn = load.max_requests / load.connections.max(1) as u64 + 1;
    let start = Instant::now();
    let deadline = start + load.duration;
    let mut tasks = Vec::new();
    for _ in 0..load.connections.max(1) {
        let mut conn = connect(&target.authority).await?;
        let (name, body, target, signer) =
            (name.clone(), body.clone(), target.clone(), signer.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(per_conn.min(1 << 20) as usize);
            let mut errors = 0u64;
            let mut first_error = None;
            let mut sent = 0u64;
            let mut reconnect = false;
            while Instant::now() < deadline && sent < per_conn {
                let t0 = Instant::now();
                // A server that closed the connection after its last
                // response: the new connection is part of this request's
                // latency, as it is for any client of that server.
                if reconnect {
                    match connect(&target.authority).await {
                        Ok(c) => conn = c,
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert_with(|| e.to_string());
                            break;
                        }
                    }
                }
                let outcome = call(&mut conn, &signer, &target, &name, &body).await;
                let us = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                sent += 1;
                reconnect = matches!(&outcome, Ok(r) if !r.keep_alive);
                match outcome {
                    Ok(r) if r.status == 200 => latencies.push(us),
                    Ok(r) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| {
                            format!("HTTP {}: {}", r.status, String::from_utf8_lossy(&r.body))
                        });
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| e.to_string());
                        // A broken connection: reconnect (bounded by the loop).
                        match connect(&target.authority).await {
                            Ok(c) => conn = c,
                            Err(_) => break,
                        }
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (l, e, f) = t.await.map_err(|e| BenchError::Other(e.to_string()))?;
        all.extend(l);
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| -> u64 {
        if all.is_empty() {
            return 0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        u64::from(all[i.min(all.len() - 1)])
    };
    Ok(Report {
        op: op.name(),
        requests: all.len() as u64,
        errors,
        seconds,
        requests_per_second: all.len() as f64 / seconds,
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        p999_us: pct(0.999),
        max_us: all.last().copied().map(u64::from).unwrap_or(0),
        first_error,
    })
}

/// The raw rate of the operation's cryptography in this process, on
/// `threads` threads for `duration`: the ceiling for a server on the same
/// machine. `None` for operations whose cost is not dominated by crypto.
pub fn raw_rate(op: Op, threads: usize, duration: Duration) -> Result<Option<f64>, BenchError> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
    let rng = SystemRandom::new();
    let work: Arc<dyn Fn() -> bool + Send + Sync> = match op {
        Op::SignRsa2048 | Op::VerifyRsa2048 => {
            let kp = Arc::new(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|e| BenchError::Other(e.to_string()))?,
            );
            let mut sig = vec![0u8; kp.public_modulus_len()];
            kp.sign(&signature::RSA_PKCS1_SHA256, &rng, MESSAGE, &mut sig)
                .map_err(|e| BenchError::Other(e.to_string()))?;
            if op == Op::SignRsa2048 {
                Arc::new(move || {
                    let mut s = vec![0u8; kp.public_modulus_len()];
                    kp.sign(
                        &signature::RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        MESSAGE,
                        &mut s,
                    )
                    .is_ok()
                })
            } else {
                let public = kp.public_key().as_ref().to_vec();
                Arc::new(move || {
                    signature::UnparsedPublicKey::new(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        &public,
                    )
                    .verify(MESSAGE, &sig)
                    .is_ok()
                })
            }
        }
        Op::SignEccP256 | Op::VerifyEccP256 => {
            let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .map_err(|e| BenchError::Other(e.to_string()))?;
            let kp = Arc::new(
                EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref())
                    .map_err(|e| BenchError::Other(e.to_string()))?,
            );
            if op == Op::SignEccP256 {
                Arc::new(move || kp.sign(&SystemRandom::new(), MESSAGE).is_ok())
            } else {
                let sig = kp
                    .sign(&rng, MESSAGE)
                    .map_err(|e| BenchError::Other(e.to_string()))?
                    .as_ref()
                    .to_vec();
                let public = kp.public_key().as_ref().to_vec();
                Arc::new(move || {
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &public)
                        .verify(MESSAGE, &sig)
                        .is_ok()
                })
            }
        }
        _ => return Ok(None),
    };
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let work = work.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if work() {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let mut total = 0u64;
    for h in handles {
        total += h
            .join()
            .map_err(|_| BenchError::Other("raw worker panicked".into()))?;
    }
    Ok(Some(total as f64 / start.elapsed().as_secs_f64()))
}

#[cfg(test)]
mod tests {
    use super::keeps_alive;

    fn resp(version: hyper::Version, connection: Option<&str>) -> hyper::Response<()> {
        let mut b = hyper::Response::builder().version(version);
        if let Some(c) = connection {
            b = b.header("connection", c);
        }
        b.body(()).unwrap_or_default()
    }

    #[test]
    fn connection_close_and_http10_end_the_connection() {
        use hyper::Version;
        assert!(keeps_alive(&resp(Version::HTTP_11, None)));
        assert!(keeps_alive(&resp(Version::HTTP_11, Some("keep-alive"))));
        assert!(!keeps_alive(&resp(Version::HTTP_11, Some("close"))));
        assert!(!keeps_alive(&resp(
            Version::HTTP_11,
            Some("Upgrade, Close")
        )));
        assert!(!keeps_alive(&resp(Version::HTTP_10, None)));
        assert!(keeps_alive(&resp(Version::HTTP_10, Some("Keep-Alive"))));
    }
}
