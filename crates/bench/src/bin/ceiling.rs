//! `ferrokms-ceiling`: the HTTP ceiling of this machine for `ferrokms bench`.
//!
//! An HTTP/1.1 keep-alive server on `127.0.0.1:0` (or the address given as
//! the first argument, loopback only) that reads each request body and
//! answers every request with one constant 200 JSON body. The body holds the
//! fields the generator's setup calls read (`KeyMetadata.KeyId`,
//! `CiphertextBlob`, `Signature`, all valid), so every `--op` runs against
//! it. Whatever a KMS server does per request costs more than this: the
//! generator's rate against it is the most any server can reach on this
//! machine with the same generator, connections and runtime.
//!
//! It prints `ferrokms-ceiling listening on http://ADDR` and runs until
//! killed.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// What every request gets: a CreateKey-shaped answer that also carries an
/// Encrypt ciphertext and a Sign signature (base64 of fixed bytes).
const BODY: &str = concat!(
    r#"{"KeyMetadata":{"KeyId":"11111111-2222-3333-4444-555555555555","#,
    r#""Arn":"arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555","#,
    r#""KeyState":"Enabled","KeySpec":"SYMMETRIC_DEFAULT","KeyUsage":"ENCRYPT_DECRYPT"},"#,
    r#""KeyId":"arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555","#,
    r#""CiphertextBlob":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QA==","#,
    r#""Signature":"MEUCIQDf3jTj2Z7a1b0cDeFgHiJkLmNoPqRsTuVwXyZ0123456AiAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=","#,
    r#""SignatureValid":true,"Mac":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","#,
    r#""Plaintext":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}"#
);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    if !addr.ip().is_loopback() {
        return Err(format!("ferrokms-ceiling listens on loopback only, not {addr}").into());
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!(
        "ferrokms-ceiling listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                // Read the body, as a real server must.
                let _ = req.into_body().collect().await;
                let resp = hyper::Response::builder()
                    .status(200)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(Full::new(Bytes::from_static(BODY.as_bytes())));
                Ok::<_, Infallible>(resp.unwrap_or_else(|_| {
                    hyper::Response::new(Full::new(Bytes::from_static(BODY.as_bytes())))
                }))
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
