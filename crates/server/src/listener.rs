//! The listener: accepting connections, optional TLS, HTTP/1.1 with the
//! timeouts and limits that keep one client from holding the server.
//!
//! axum's own `serve` has no header-read timeout and no TLS, so connections
//! are served here with hyper directly:
//!
//! - the TLS handshake must finish within the header timeout;
//! - a request head must arrive within `header_timeout` of the connection
//!   becoming ready for it, which also closes keep-alive connections that
//!   sit idle that long (hyper starts the same timer for the next request);
//! - the body must arrive within `body_timeout` (answered with a 408, see
//!   `read_body` in lib.rs) and is capped at `MAX_BODY_BYTES` (413); what
//!   bodies may hold before they are authenticated is bounded in `limits`;
//! - heads are capped at 100 headers and `limits::MAX_HEAD_BYTES` (431);
//! - at most `max_connections` are open, and at most
//!   `max_connections_per_address` from one address (an IPv6 /64); more are
//!   accepted and closed at once, so they cannot fill the kernel's backlog
//!   either.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::limits::{Admitted, Gate};
use crate::App;

/// Timeouts and limits of the listener (`ferrokms serve` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time for a TLS handshake and for each request head, and the longest a
    /// keep-alive connection may sit idle between requests.
    pub header_timeout: Duration,
    /// Time for a request body, from the end of its head.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one address (IPv4) or /64 (IPv6);
    /// at most `max_connections` in effect.
    pub max_connections_per_address: usize,
    /// Bytes of request bodies over `limits::SMALL_BODY_BYTES` in flight at
    /// once, all clients together (one address gets an eighth).
    pub body_budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_address: crate::limits::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            body_budget: crate::limits::DEFAULT_BODY_BUDGET,
        }
    }
}

/// What a request learns about its connection (a request extension, as
/// `Arc<ConnInfo>`: one per connection, so cloning it per request touches
/// no count shared with other connections).
#[derive(Debug)]
pub struct ConnInfo {
    /// How long the client has to send a request's body.
    pub body_timeout: Duration,
    /// Whether the connection is TLS (`aws:SecureTransport`).
    pub tls: bool,
    /// The connection's slot in its address's count and body budget.
    pub admitted: Admitted,
    /// What this connection's last audit record repeats for its next
    /// (requests on one HTTP/1.1 connection come one at a time, so the lock
    /// is never contended).
    pub audit_memo: parking_lot::Mutex<crate::audit::ConnMemo>,
}

/// Why the TLS certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// The certificate file has no PEM certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(String),
    /// The key file has no PEM private key.
    #[error("{0}: no PEM private key found (PKCS#8, PKCS#1 or SEC1)")]
    NoKey(String),
    /// rustls refused the pair.
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(String),
}

/// A rustls server configuration from PEM files: the certificate chain
/// (leaf first) and its private key. HTTP/1.1 only.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let name = |p: &Path| p.display().to_string();
    let cert_pem = std::fs::read(cert).map_err(|e| TlsError::Read(name(cert), e))?;
    let key_pem = std::fs::read(key).map_err(|e| TlsError::Read(name(key), e))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(name(cert)));
    }
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey(name(key)))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops
/// accepting, lets requests in flight finish (closing idle connections),
/// and returns once every connection is gone or after `grace`.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let sweeper = crate::spawn_sweeper(&app);
    let (kms, cluster) = (app.kms.clone(), app.cluster.clone());
    let router = crate::router(app);
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let gate = Gate::new(
        limits
            .max_connections_per_address
            .min(limits.max_connections),
        limits.body_budget,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: the listener
                    // itself is fine; back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(admitted) = gate.admit(peer.ip()) else {
            crate::metrics::connection_refused_per_address();
            drop(tcp);
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            metrics_refused();
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            crate::metrics::connection_opened();
            // The first byte tells a client at the wrong scheme; one that
            // sends nothing within the header timeout is closed, as hyper
            // or the handshake would close it.
            let first = first_byte(&tcp, limits.header_timeout).await;
            let ok = match (acceptor, first) {
                (_, None) => false,
                (None, Some(first)) => {
                    if first == TLS_HANDSHAKE {
                        warn_rarely(
                            peer,
                            "a client started a TLS handshake on this plain-HTTP listener: point it at http://, or serve HTTPS with --tls-cert and --tls-key",
                        );
                    }
                    connection(tcp, peer, router, limits, (false, admitted), stop).await
                }
                (Some(_), Some(first)) if first.is_ascii_uppercase() => {
                    warn_rarely(
                        peer,
                        "a client sent plain HTTP to this TLS listener: point it at https://",
                    );
                    plain_http_on_tls(tcp).await;
                    false
                }
                (Some(acceptor), Some(_)) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            connection(tls, peer, router, limits, (true, admitted), stop).await
                        }
                        _ => false,
                    }
                }
            };
            if !ok {
                crate::metrics::connection_error();
            }
            crate::metrics::connection_closed();
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection task holds a permit: all back means all closed.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(30), slots.acquire_many(all)).await;
    sweeper.abort();
    crate::flush_usage_at_stop(kms, cluster).await;
    Ok(())
}

/// The first byte of a TLS connection (a handshake record).
const TLS_HANDSHAKE: u8 = 0x16;

/// The first byte a client sends, without consuming it; `None` if it sends
/// nothing within `wait`.
async fn first_byte(tcp: &tokio::net::TcpStream, wait: Duration) -> Option<u8> {
    let mut b = [0u8; 1];
    match tokio::time::timeout(wait, tcp.peek(&mut b)).await {
        Ok(Ok(1)) => Some(b[0]),
        _ => None,
    }
}

/// A plain-HTTP request on the TLS port: answered in plain HTTP, so that
/// the client shows why instead of a handshake failure, then closed.
async fn plain_http_on_tls(mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    const BODY: &str = "This port serves HTTPS: use an https:// endpoint URL.\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.write_all(answer.as_bytes())).await;
    let _ = tcp.shutdown().await;
}

/// A warning about a misdirected client, at most once a minute (a client
/// retrying, or anyone scanning the port, must not flood the log).
fn warn_rarely(peer: SocketAddr, message: &'static str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let last = LAST.load(Ordering::Relaxed);
    if (last == 0 || now >= last + 60)
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!(%peer, "{message}");
    }
}

fn metrics_refused() {
    crate::metrics::connection_refused();
}

/// Serves one connection; `false` when it ended in an error (timeout,
/// malformed request, client gone mid-request).
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: Limits,
    (tls, admitted): (bool, Admitted),
    mut stop: watch::Receiver<bool>,
) -> bool
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let info = Arc::new(ConnInfo {
        body_timeout: limits.body_timeout,
        tls,
        admitted,
        audit_memo: Default::default(),
    });
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(info.clone());
            let router = router.clone();
            async move {
                use tower::ServiceExt as _;
                router.oneshot(req.map(axum::body::Body::new)).await
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(100)
        .max_buf_size(crate::limits::MAX_HEAD_BYTES)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return r.is_ok(),
        _ = stop.wait_for(|s| *s) => {}
    }
    conn.as_mut().graceful_shutdown();
    conn.await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn app() -> Arc<App> {
        let opts = crate::setup::Options::new(crate::setup::Storage::InMemory);
        let (app, _) = crate::setup::open(&opts).expect("in-memory app");
        Arc::new(app)
    }

    async fn connect_from(source: [u8; 4], to: SocketAddr) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(source)), 0))
            .expect("bind a loopback source address");
        socket.connect(to).await.expect("connect")
    }

    /// `Some(status)` of the answer to GET /health, `None` if the server
    /// closed the connection without one.
    async fn health(stream: &mut tokio::net::TcpStream) -> Option<u16> {
        let req = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if stream.write_all(req).await.is_err() {
            return None;
        }
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out));
        match read.await {
            Ok(_) => std::str::from_utf8(out.get(9..12)?).ok()?.parse().ok(),
            Err(_) => panic!("no answer and no close within 5 s"),
        }
    }

    #[tokio::test]
    async fn one_address_at_its_cap_leaves_the_other_connections_to_others() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let to = listener.local_addr().expect("addr");
        let limits = Limits {
            max_connections: 4,
            max_connections_per_address: 2,
            ..Limits::default()
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(app(), listener, limits, None, async {
            let _ = stop_rx.await;
        }));
        // Two idle connections from 127.0.0.1: its cap.
        let _held = [
            connect_from([127, 0, 0, 1], to).await,
            connect_from([127, 0, 0, 1], to).await,
        ];
        // A third from it is closed unanswered, however many times it tries.
        for _ in 0..5 {
            let mut third = connect_from([127, 0, 0, 1], to).await;
            assert_eq!(health(&mut third).await, None);
        }
        // Another address still gets its two (the global cap is four).
        for _ in 0..2 {
            let mut other = connect_from([127, 0, 0, 2], to).await;
            assert_eq!(health(&mut other).await, Some(200));
        }
        let mut a = connect_from([127, 0, 0, 2], to).await;
        let mut b = connect_from([127, 0, 0, 3], to).await;
        assert_eq!(health(&mut a).await, Some(200));
        assert_eq!(health(&mut b).await, Some(200));
        // With 127.0.0.1's two and two others open, the global cap refuses
        // even a new address.
        let _c = connect_from([127, 0, 0, 4], to).await;
        let _d = connect_from([127, 0, 0, 5], to).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut e = connect_from([127, 0, 0, 6], to).await;
        assert_eq!(health(&mut e).await, None);
        let _ = stop_tx.send(());
        drop((_c, _d, _held));
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    }
}
