//! The HTTPS client that reaches external key store proxies
//! ([`ferrokms_kms::xks::XksTransport`]): TLS verified against the roots of
//! `serve --xks-ca-file` only (never the system's, never unverified), each
//! request signed with SigV4 (service `kms-xks-proxy`, the store's Region)
//! under the store's proxy credential. HTTP/1.1 keep-alive connections are
//! kept for the next call (at most [`MAX_IDLE_PER_PROXY`] idle per proxy): a
//! handshake per call cost more than the rest of an Encrypt
//! (docs/performance.md). Every call is bounded: the whole exchange
//! (connect, handshake, request, response) within the timeout, the response
//! body within [`MAX_PROXY_RESPONSE_BYTES`]. One retry only, on a fresh
//! connection, when a kept connection turns out closed.
//!
//! The KMS operations that call it run on the blocking pool (see
//! `kms_api::may_call_a_proxy`); the call runs on the runtime through
//! `block_in_place` + `Handle::block_on`, so no async worker waits.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use ferrokms_kms::xks::{XksRequest, XksTransport, XksTransportError, MAX_PROXY_RESPONSE_BYTES};
use ferrokms_sigv4::{Credentials, HttpRequest};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;

/// Why `--xks-ca-file` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum XksCaError {
    /// The file cannot be read.
    #[error("cannot read --xks-ca-file {0}: {1}")]
    Read(String, std::io::Error),
    /// It holds no PEM certificate rustls accepts.
    #[error("--xks-ca-file {0} holds no usable PEM certificate")]
    NoCertificate(String),
}

/// A connection's request half.
type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// Idle connections kept per proxy (`host:port`).
const MAX_IDLE_PER_PROXY: usize = 16;
/// Proxies whose idle connections are kept; past it the pool starts over.
const MAX_PROXIES: usize = 64;

/// The client: the trusted roots, the timeout, the runtime to run on, and
/// the idle keep-alive connections to each proxy.
pub struct XksClient {
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    runtime: tokio::runtime::Handle,
    idle: parking_lot::Mutex<std::collections::HashMap<String, Vec<Sender>>>,
}

impl std::fmt::Debug for XksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The TLS client configuration trusting the PEM certificates of `ca_file`
/// (or none at all without one: every proxy is then untrusted, and a store
/// fails its health check with a TLS error).
pub fn client_tls(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, XksCaError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca_file {
        let name = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| XksCaError::Read(name.clone(), e))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| XksCaError::NoCertificate(name.clone()))?;
            roots
                .add(cert)
                .map_err(|_| XksCaError::NoCertificate(name.clone()))?;
        }
        if roots.is_empty() {
            return Err(XksCaError::NoCertificate(name));
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| XksCaError::NoCertificate("(TLS versions)".into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl XksClient {
    /// A client trusting `tls`'s roots, waiting at most `timeout` per call,
    /// running its I/O on `runtime`.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        timeout: Duration,
        runtime: tokio::runtime::Handle,
    ) -> XksClient {
        XksClient {
            tls: tokio_rustls::TlsConnector::from(tls),
            timeout,
            runtime,
            idle: parking_lot::Mutex::default(),
        }
    }

    /// A connection to `authority`: an idle one from the pool, or a new one.
    async fn connection(
        &self,
        authority: &str,
        fresh: bool,
    ) -> Result<(Sender, bool), XksTransportError> {
        if !fresh {
            loop {
                let idle = self.idle.lock().get_mut(authority).and_then(Vec::pop);
                let Some(mut sender) = idle else { break };
                if !sender.is_closed() && sender.ready().await.is_ok() {
                    return Ok((sender, true));
                }
            }
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| XksTransportError::Connect("bad port".into()))?,
            ),
            None => (authority, 443),
        };
        let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| XksTransportError::Connect("bad host name".into()))?;
        let tcp = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| XksTransportError::Connect(e.kind().to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .tls
            .connect(server_name, tcp)
            .await
            .map_err(|e| XksTransportError::Tls(e.to_string()))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| XksTransportError::Malformed(e.to_string()))?;
        // The connection's driver ends when the connection closes (the
        // proxy's idle timeout, or the sender dropped from the pool).
        self.runtime.spawn(conn);
        Ok((sender, false))
    }

    /// Gives a connection back for the next call (at most
    /// [`MAX_IDLE_PER_PROXY`] kept per proxy; more are closed).
    fn give_back(&self, authority: &str, sender: Sender) {
        let mut idle = self.idle.lock();
        if idle.len() >= MAX_PROXIES && !idle.contains_key(authority) {
            idle.clear();
        }
        let list = idle.entry(authority.to_owned()).or_default();
        if list.len() < MAX_IDLE_PER_PROXY {
            list.push(sender);
        }
    }

    async fn exchange(&self, req: &XksRequest<'_>) -> Result<(u16, Vec<u8>), XksTransportError> {
        let authority = req
            .endpoint
            .strip_prefix("https://")
            .ok_or_else(|| XksTransportError::Connect("the endpoint is not https://".into()))?;
        let headers = [("host", authority), ("content-type", "application/json")];
        let signed = ferrokms_sigv4::sign_request(
            &HttpRequest {
                method: "POST",
                path: &req.path,
                query: "",
                headers: &headers,
                body: &req.body,
            },
            &Credentials {
                access_key_id: req.access_key_id,
                secret_access_key: req.secret,
                session_token: None,
            },
            req.region,
            "kms-xks-proxy",
            SystemTime::now(),
        );
        let request = || {
            let mut builder = hyper::Request::post(req.path.as_str());
            for (k, v) in headers {
                builder = builder.header(k, v);
            }
            for (k, v) in signed.iter() {
                builder = builder.header(k, v);
            }
            builder
                .body(Full::new(Bytes::copy_from_slice(&req.body)))
                .map_err(|e| XksTransportError::Malformed(e.to_string()))
        };
        let (mut sender, pooled) = self.connection(authority, false).await?;
        let resp = match sender.send_request(request()?).await {
            Ok(r) => r,
            // A pooled connection the proxy closed meanwhile (a restart, its
            // idle timeout): once more on a new connection, never more.
            Err(_) if pooled => {
                let (fresh, _) = self.connection(authority, true).await?;
                sender = fresh;
                sender
                    .send_request(request()?)
                    .await
                    .map_err(|e| XksTransportError::Malformed(e.to_string()))?
            }
            Err(e) => return Err(XksTransportError::Malformed(e.to_string())),
        };
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_PROXY_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|_| XksTransportError::Malformed("response body too large or cut".into()))?
            .to_bytes();
        self.give_back(authority, sender);
        Ok((status, body.to_vec()))
    }
}

impl XksTransport for XksClient {
    fn post(&self, req: &XksRequest<'_>) -> Result<(u16, Vec<u8>), XksTransportError> {
        let call = async {
            tokio::time::timeout(self.timeout, self.exchange(req))
                .await
                .unwrap_or(Err(XksTransportError::TimedOut))
        };
        // On a blocking-pool thread (where the catalog places these
        // operations) `block_in_place` only runs the closure; on an async
        // worker it hands the worker's other tasks away first.
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.runtime.block_on(call))
            }
            Ok(_) => Err(XksTransportError::Connect(
                "a proxy call needs the multi-thread runtime".into(),
            )),
            Err(_) => self.runtime.block_on(call),
        }
    }
}
