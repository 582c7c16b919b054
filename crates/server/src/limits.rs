//! What a client can make the server hold before it has shown who it is:
//! request bodies in memory, and connections per address.
//!
//! A body has to be read before its signature can be checked (SigV4 covers
//! the body's hash), so until then anyone who can connect decides how much
//! the server buffers. The bounds:
//!
//! - A declared length (`Content-Length`) over [`MAX_BODY_BYTES`] is
//!   answered 413 before any of the body is read.
//! - Bodies of at most [`SMALL_BODY_BYTES`] with a declared length are read
//!   at once. A connection carries one request at a time, so these hold at
//!   most `max_connections` x 8 KiB in all; nearly every KMS request is one
//!   of them, and they touch no lock and no shared counter.
//! - A larger body (and a chunked one, counted at [`MAX_BODY_BYTES`]) first
//!   reserves its length from its address's budget and from the server's
//!   ([`Gate`], two semaphores). What cannot be reserved within
//!   [`BUDGET_WAIT`] is answered as AWS throttles: `ThrottlingException`
//!   (HTTP 400, KMS's JSON protocol) or `Throttling` (the query protocol),
//!   a body of at most 64 KiB read and dropped for at most [`DRAIN_WAIT`],
//!   never kept (the connection closes if it has not all come). The reservation is held
//!   until the request is answered.
//! - A request with no signature at all (no `Authorization` header, no
//!   presigned-URL parameters) can only fail authentication, with the same
//!   answer whatever its body: its body is read only if small, and otherwise
//!   not at all (and the connection closes).
//! - A body is copied into one buffer of its declared length as it arrives,
//!   so a body dribbled a byte at a time costs its length, not a list of a
//!   million pieces; a body that arrives whole is used as it is, uncopied.
//! - Per address (an IPv4 address; an IPv6 /64, what one host usually
//!   gets), at most `max_connections_per_address` connections are open, so
//!   one client cannot take every slot of `--max-connections`.
//! - Request heads are capped at [`MAX_HEAD_BYTES`] (hyper's read buffer).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Uri};
use axum::response::Response;
use http_body_util::BodyExt as _;
use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::kms_api::ApiError;
use crate::MAX_BODY_BYTES;

/// Bodies up to this size (with a `Content-Length`) are read without a
/// reservation. Encrypt, Sign or GenerateMac of the largest message (4 KiB,
/// base64 in JSON) is under 6 KiB; key policies (up to 32 KiB) and
/// ReEncrypt of the largest ciphertexts are the usual larger ones. Kept
/// small because what connections held is what an idle server keeps
/// resident after a burst (memory freed on one thread in pages another
/// thread owns stays with that thread's allocator until it next allocates).
pub const SMALL_BODY_BYTES: usize = 8 * 1024;

/// The server's budget for larger bodies in flight (`Limits::body_budget`).
pub const DEFAULT_BODY_BUDGET: usize = 64 * 1024 * 1024;

/// One address may hold this fraction of the body budget (but at least
/// one body of [`MAX_BODY_BYTES`]).
pub const ADDRESS_SHARE: usize = 8;

/// How long a larger body waits for budget before it is throttled.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);

/// How long a throttled request's body is read and dropped (never kept)
/// before the answer, if it declared at most [`DRAIN_MAX_BYTES`]: if it all
/// arrives by then, the answer is not lost to the reset a close with
/// unread data causes, and the connection stays open for the client's
/// retry; if not, or if it is larger, the connection closes.
pub const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// The largest throttled body that is drained (larger than any key policy).
pub const DRAIN_MAX_BYTES: usize = 64 * 1024;

/// hyper's read buffer: the largest request head (431 or a closed
/// connection beyond). A signed request head with a session token is
/// under 2 KiB, with the largest token (`session_token::MAX_TOKEN_CHARS`,
/// 8 KiB) under 10 KiB; W3C trace headers may add 8 KiB.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// `--max-connections-per-address`.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

/// KMS's answer when it throttles (HTTP 400, as AWS sends it).
pub const THROTTLING_EXCEPTION: &str = "ThrottlingException";
const THROTTLING_MESSAGE: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// What connections are grouped by: an IPv4 address (IPv4-mapped IPv6
/// addresses included), or the /64 network of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    /// An IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Net([u8; 8]),
}

impl AddressKey {
    /// The group `ip` belongs to.
    pub fn of(ip: IpAddr) -> AddressKey {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => {
                    let o = v6.octets();
                    AddressKey::V6Net([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
                }
            },
        }
    }
}

/// One address's open connections and its share of the body budget.
struct Address {
    connections: usize,
    budget: Arc<Semaphore>,
}

/// The per-address connection cap and the body budgets of one listener.
pub struct Gate {
    max_per_address: usize,
    address_budget: usize,
    global_budget: usize,
    global: Arc<Semaphore>,
    /// Only addresses with a connection open: at most `max_connections`
    /// entries. Locked at accept and at close, never per request.
    addresses: Mutex<foldhash::HashMap<AddressKey, Address>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("max_per_address", &self.max_per_address)
            .field("address_budget", &self.address_budget)
            .field("global_budget", &self.global_budget)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// `body_budget` is raised to [`MAX_BODY_BYTES`] if lower, so that
    /// every admissible body can be admitted when nothing else is in flight.
    pub fn new(max_per_address: usize, body_budget: usize) -> Arc<Gate> {
        let global_budget = body_budget.clamp(MAX_BODY_BYTES, Semaphore::MAX_PERMITS);
        let address_budget = (global_budget / ADDRESS_SHARE).max(MAX_BODY_BYTES);
        Arc::new(Gate {
            max_per_address: max_per_address.max(1),
            address_budget,
            global_budget,
            global: Arc::new(Semaphore::new(global_budget)),
            addresses: Mutex::new(foldhash::HashMap::default()),
        })
    }

    /// A slot for one more connection from `ip` (released when dropped), or
    /// `None` if that address already has `max_per_address` open.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let key = AddressKey::of(ip);
        let mut map = self.addresses.lock();
        let entry = map.entry(key).or_insert_with(|| Address {
            connections: 0,
            budget: Arc::new(Semaphore::new(self.address_budget)),
        });
        if entry.connections >= self.max_per_address {
            return None;
        }
        entry.connections += 1;
        Some(Admitted {
            gate: self.clone(),
            key,
            budget: entry.budget.clone(),
        })
    }

    /// Connections open from `ip`'s address (or network).
    pub fn connections_from(&self, ip: IpAddr) -> usize {
        self.addresses
            .lock()
            .get(&AddressKey::of(ip))
            .map_or(0, |a| a.connections)
    }

    /// Addresses with a connection open.
    pub fn addresses(&self) -> usize {
        self.addresses.lock().len()
    }

    /// Body bytes reserved now, all addresses together.
    pub fn reserved(&self) -> usize {
        self.global_budget - self.global.available_permits()
    }

    /// How many body bytes one address may have reserved at once.
    pub fn address_budget(&self) -> usize {
        self.address_budget
    }

    /// How many body bytes all addresses together may have reserved at once.
    pub fn global_budget(&self) -> usize {
        self.global_budget
    }
}

/// One admitted connection's slot in its address's count.
pub struct Admitted {
    gate: Arc<Gate>,
    key: AddressKey,
    budget: Arc<Semaphore>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted").field("key", &self.key).finish()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut map = self.gate.addresses.lock();
        if let Some(a) = map.get_mut(&self.key) {
            a.connections = a.connections.saturating_sub(1);
            if a.connections == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl Admitted {
    /// Reserves `n` body bytes from this address's budget and the server's,
    /// waiting at most `wait` for them (first come, first served).
    pub async fn reserve(&self, n: usize, wait: Duration) -> Option<BodyPermit> {
        let n = u32::try_from(n).ok()?;
        let both = async {
            let address = self.budget.clone().acquire_many_owned(n).await.ok()?;
            let global = self.gate.global.clone().acquire_many_owned(n).await.ok()?;
            crate::metrics::body_bytes_reserved(u64::from(n));
            Some(BodyPermit {
                bytes: n,
                _address: address,
                _global: global,
            })
        };
        tokio::time::timeout(wait, both).await.ok().flatten()
    }
}

/// Body bytes reserved until the request is answered.
#[derive(Debug)]
pub struct BodyPermit {
    bytes: u32,
    _address: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        crate::metrics::body_bytes_released(u64::from(self.bytes));
    }
}

/// A body read under the limits, and its reservation (if it needed one),
/// to be kept until the request is answered.
#[derive(Debug, Default)]
pub struct ReadBody {
    /// The body.
    pub bytes: Bytes,
    /// Its share of the body budget, released when dropped.
    pub permit: Option<BodyPermit>,
}

/// Whether the request carries a signature anywhere SigV4 would look.
pub fn signed(headers: &HeaderMap, uri: &Uri) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || uri.query().is_some_and(ferrokms_sigv4::has_presign_params)
}

/// Reads a request body under the limits above. `admitted` is the
/// connection's slot (none outside the listener: no budget then);
/// `timeout` bounds the read (not the wait for budget).
pub async fn read_body(
    body: Body,
    headers: &HeaderMap,
    uri: &Uri,
    admitted: Option<&Admitted>,
    timeout: Duration,
) -> Result<ReadBody, ApiError> {
    use http_body::Body as _;
    // hyper's framing: the Content-Length it will deliver, none if chunked.
    let declared = body
        .size_hint()
        .exact()
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    match declared {
        Some(0) => return Ok(ReadBody::default()),
        Some(n) if n > MAX_BODY_BYTES => return Err(too_large()),
        _ => {}
    }
    let permit = match declared {
        Some(n) if n <= SMALL_BODY_BYTES => None,
        // Unsigned: the answer is the authentication failure, which the
        // body cannot change; leave it unread.
        _ if !signed(headers, uri) => return Ok(ReadBody::default()),
        _ => match admitted {
            None => None,
            Some(slot) => {
                let reserved = slot
                    .reserve(declared.unwrap_or(MAX_BODY_BYTES), BUDGET_WAIT)
                    .await;
                if reserved.is_none() {
                    if declared.is_some_and(|n| n <= DRAIN_MAX_BYTES) {
                        let _ = tokio::time::timeout(DRAIN_WAIT, drain(body)).await;
                    }
                    return Err(throttled());
                }
                reserved
            }
        },
    };
    match tokio::time::timeout(timeout, collect(body, declared)).await {
        Ok(Ok(bytes)) => Ok(ReadBody { bytes, permit }),
        Ok(Err(Collect::TooLarge)) => Err(too_large()),
        // The connection failed mid-body (fewer bytes than Content-Length,
        // a malformed chunk): the client is usually gone already.
        Ok(Err(Collect::Broken)) => Err(ApiError::new(
            "SerializationException",
            "The request body was cut short or malformed.",
        )),
        Err(_) => Err(ApiError {
            code: "RequestTimeoutException",
            message: Some("The request body was not received in time.".into()),
            status: 408,
        }),
    }
}

enum Collect {
    TooLarge,
    Broken,
}

/// The body's bytes: the first frame as it is if it holds the whole body,
/// else one buffer of the declared length (chunked: grown up to
/// [`MAX_BODY_BYTES`]) that each frame is copied into and dropped.
async fn collect(mut body: Body, declared: Option<usize>) -> Result<Bytes, Collect> {
    let cap = declared.unwrap_or(MAX_BODY_BYTES).min(MAX_BODY_BYTES);
    let Some(first) = next_data(&mut body).await? else {
        return Ok(Bytes::new());
    };
    if first.len() > cap {
        return Err(Collect::TooLarge);
    }
    if declared == Some(first.len()) {
        return Ok(first);
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(first.len().max(8192)).min(cap));
    buf.extend_from_slice(&first);
    drop(first);
    while let Some(data) = next_data(&mut body).await? {
        if data.len() > cap - buf.len() {
            return Err(Collect::TooLarge);
        }
        // Chunked bodies grow the buffer, doubling but never past the cap
        // (what was reserved for them).
        if buf.capacity() - buf.len() < data.len() {
            let want = (buf.capacity() * 2).clamp(buf.len() + data.len(), cap);
            buf.reserve_exact(want - buf.len());
        }
        buf.extend_from_slice(&data);
    }
    Ok(Bytes::from(buf))
}

/// Reads the body to its end, keeping nothing.
async fn drain(mut body: Body) {
    while let Ok(Some(_)) = next_data(&mut body).await {}
}

/// The next data frame (trailers count as empty data).
async fn next_data(body: &mut Body) -> Result<Option<Bytes>, Collect> {
    match body.frame().await {
        None => Ok(None),
        Some(Err(_)) => Err(Collect::Broken),
        Some(Ok(frame)) => Ok(Some(frame.into_data().unwrap_or_default())),
    }
}

fn too_large() -> ApiError {
    ApiError {
        code: "RequestEntityTooLargeException",
        message: Some(format!(
            "The request body is larger than the limit of {MAX_BODY_BYTES} bytes."
        )),
        status: 413,
    }
}

fn throttled() -> ApiError {
    ApiError::new(THROTTLING_EXCEPTION, THROTTLING_MESSAGE)
}

/// The request would go to the query protocol (IAM, STS): no target, and a
/// form body or an `Action` in the query (as `serve_request` decides).
fn query_protocol(headers: &HeaderMap, uri: &Uri) -> bool {
    let no_target = headers
        .get(crate::hdr::X_AMZ_TARGET)
        .is_none_or(|v| v.as_bytes().is_empty());
    let form = headers
        .get(crate::hdr::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    no_target && (form || uri.query().is_some_and(|q| q.contains("Action=")))
}

/// The answer to a body refused by [`read_body`]: as `crate::error_response`,
/// except that throttling in the query protocol is its XML `Throttling`.
pub(crate) fn refusal(
    e: &ApiError,
    headers: &HeaderMap,
    uri: &Uri,
    labels: crate::metrics::Labels,
    request_id: &str,
) -> Response {
    if e.code == THROTTLING_EXCEPTION && query_protocol(headers, uri) {
        let (service, namespace) = if labels.service() == "sts" {
            ("sts", crate::sts_api::STS_NAMESPACE)
        } else {
            ("iam", crate::iam_api::IAM_NAMESPACE)
        };
        crate::metrics::record_error(crate::metrics::Labels::new(service, ""), "Throttling");
        let err = crate::query::QueryError::new("Throttling", 400, "Rate exceeded");
        return crate::query::xml_response(err.status, err.to_xml(namespace, request_id));
    }
    crate::error_response(&e.clone().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn addresses_group_ipv4_alone_ipv6_by_64_and_mapped_ipv4_as_ipv4() {
        assert_ne!(
            AddressKey::of(v4(127, 0, 0, 1)),
            AddressKey::of(v4(127, 0, 0, 2))
        );
        let a: Ipv6Addr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        let b: Ipv6Addr = "2001:db8:1:2:ffff:1:2:3"
            .parse()
            .unwrap_or(Ipv6Addr::LOCALHOST);
        let c: Ipv6Addr = "2001:db8:1:3::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
        assert_eq!(AddressKey::of(a.into()), AddressKey::of(b.into()));
        assert_ne!(AddressKey::of(a.into()), AddressKey::of(c.into()));
        let mapped = Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped();
        assert_eq!(
            AddressKey::of(mapped.into()),
            AddressKey::of(v4(10, 1, 2, 3))
        );
    }

    #[test]
    fn each_address_gets_at_most_its_cap_and_slots_come_back_when_dropped() {
        let gate = Gate::new(3, DEFAULT_BODY_BUDGET);
        let one = v4(127, 0, 0, 1);
        let two = v4(127, 0, 0, 2);
        let held: Vec<_> = (0..3).filter_map(|_| gate.admit(one)).collect();
        assert_eq!(held.len(), 3);
        assert!(gate.admit(one).is_none(), "a fourth from the same address");
        assert_eq!(gate.connections_from(one), 3);
        // Another address is not affected.
        let other = gate.admit(two);
        assert!(other.is_some());
        assert_eq!(gate.addresses(), 2);
        drop(held);
        assert_eq!(gate.connections_from(one), 0);
        assert_eq!(
            gate.addresses(),
            1,
            "an address with nothing open is forgotten"
        );
        assert!(gate.admit(one).is_some());
        drop(other);
        assert_eq!(gate.addresses(), 0);
    }

    #[test]
    fn a_refused_connection_leaves_the_count_unchanged() {
        let gate = Gate::new(1, DEFAULT_BODY_BUDGET);
        let ip = v4(192, 0, 2, 1);
        let first = gate.admit(ip);
        for _ in 0..100 {
            assert!(gate.admit(ip).is_none());
        }
        assert_eq!(gate.connections_from(ip), 1);
        drop(first);
        assert_eq!(gate.connections_from(ip), 0);
        assert_eq!(gate.addresses(), 0);
    }

    #[test]
    fn budgets_are_never_below_one_largest_body() {
        let gate = Gate::new(1, 0);
        assert_eq!(gate.global_budget(), MAX_BODY_BYTES);
        assert_eq!(gate.address_budget(), MAX_BODY_BYTES);
        let gate = Gate::new(1, 64 * MAX_BODY_BYTES);
        assert_eq!(gate.address_budget(), 8 * MAX_BODY_BYTES);
    }

    const MIB: usize = 1024 * 1024;

    #[tokio::test]
    async fn reservations_count_against_the_address_and_the_server_and_return_on_drop() {
        // Server budget 4 MiB, so 1 MiB (the floor) per address.
        let gate = Gate::new(16, 4 * MIB);
        let a = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        let a2 = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        let b = gate.admit(v4(127, 0, 0, 2)).expect("slot");
        let short = Duration::from_millis(50);
        let p1 = a
            .reserve(MIB, short)
            .await
            .expect("within the address's share");
        assert_eq!(gate.reserved(), MIB);
        // The address's share is used up, by either of its connections.
        assert!(a2.reserve(1, short).await.is_none());
        // Another address still has its own.
        let p2 = b.reserve(MIB, short).await.expect("another address");
        assert_eq!(gate.reserved(), 2 * MIB);
        drop(p1);
        assert_eq!(gate.reserved(), MIB);
        let p3 = a2.reserve(MIB / 2, short).await.expect("returned on drop");
        drop((p2, p3));
        assert_eq!(gate.reserved(), 0);
    }

    #[tokio::test]
    async fn the_server_budget_caps_all_addresses_together() {
        // 2 MiB in all, 1 MiB per address: three addresses cannot all fit.
        let gate = Gate::new(16, 2 * MIB);
        let slots: Vec<_> = (1..=3)
            .map(|i| gate.admit(v4(127, 0, 0, i)).expect("slot"))
            .collect();
        let short = Duration::from_millis(50);
        let p1 = slots[0].reserve(MIB, short).await.expect("first");
        let p2 = slots[1].reserve(MIB, short).await.expect("second");
        let started = std::time::Instant::now();
        assert!(slots[2].reserve(MIB, short).await.is_none(), "over budget");
        assert!(started.elapsed() >= short, "it waited before giving up");
        assert_eq!(gate.reserved(), 2 * MIB, "a timed-out wait takes nothing");
        drop((p1, p2));
        assert_eq!(gate.reserved(), 0);
    }

    #[tokio::test]
    async fn a_waiting_reservation_gets_budget_released_during_its_wait() {
        let gate = Gate::new(16, 2 * MIB);
        let a = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        let b = gate.admit(v4(127, 0, 0, 2)).expect("slot");
        let c = gate.admit(v4(127, 0, 0, 3)).expect("slot");
        let pa = a.reserve(MIB, BUDGET_WAIT).await.expect("a");
        let _pb = b.reserve(MIB, BUDGET_WAIT).await.expect("b");
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(pa);
        });
        let pc = c.reserve(MIB, Duration::from_secs(5)).await;
        assert!(pc.is_some(), "woken by the release");
        let _ = release.await;
    }

    #[tokio::test]
    async fn dropping_the_last_slot_of_an_address_keeps_its_reservations_valid() {
        let gate = Gate::new(16, 2 * MIB);
        let a = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        let p = a.reserve(MIB, BUDGET_WAIT).await.expect("reserve");
        drop(a);
        assert_eq!(gate.addresses(), 0);
        assert_eq!(gate.reserved(), MIB);
        drop(p);
        assert_eq!(gate.reserved(), 0);
    }

    fn signed_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            axum::http::HeaderValue::from_static("AWS4-HMAC-SHA256 Credential=x"),
        );
        h
    }

    fn uri(s: &str) -> Uri {
        s.parse().unwrap_or_default()
    }

    /// A body whose frames arrive one at a time (as from a slow client).
    fn dribbled(pieces: Vec<&'static [u8]>, declared: Option<u64>) -> Body {
        struct Pieces(std::collections::VecDeque<Bytes>, Option<u64>);
        impl http_body::Body for Pieces {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
                std::task::Poll::Ready(self.0.pop_front().map(|b| Ok(http_body::Frame::data(b))))
            }
            fn size_hint(&self) -> http_body::SizeHint {
                match self.1 {
                    Some(n) => http_body::SizeHint::with_exact(n),
                    None => http_body::SizeHint::default(),
                }
            }
        }
        Body::new(Pieces(
            pieces.into_iter().map(Bytes::from_static).collect(),
            declared,
        ))
    }

    /// A body that never sends anything (a client that stalls).
    fn stalled(declared: u64) -> Body {
        struct Never(u64);
        impl http_body::Body for Never {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
                std::task::Poll::Pending
            }
            fn size_hint(&self) -> http_body::SizeHint {
                http_body::SizeHint::with_exact(self.0)
            }
        }
        Body::new(Never(declared))
    }

    const SECS: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_body_in_one_frame_is_used_as_it_is_and_pieces_are_joined() {
        let r = read_body(
            dribbled(vec![b"{}"], Some(2)),
            &signed_headers(),
            &uri("/"),
            None,
            SECS,
        )
        .await
        .expect("read");
        assert_eq!(&r.bytes[..], b"{}");
        let r = read_body(
            dribbled(vec![b"{\"K", b"ey", b"Id\":1}"], Some(11)),
            &signed_headers(),
            &uri("/"),
            None,
            SECS,
        )
        .await
        .expect("read");
        assert_eq!(&r.bytes[..], b"{\"KeyId\":1}");
        assert!(r.permit.is_none(), "small bodies reserve nothing");
    }

    #[tokio::test]
    async fn a_chunked_body_of_the_largest_size_is_read_into_at_most_that_much() {
        static CHUNK: [u8; 100_000] = [b'x'; 100_000];
        let mut pieces = vec![&CHUNK[..]; MAX_BODY_BYTES / CHUNK.len()];
        pieces.push(&CHUNK[..MAX_BODY_BYTES % CHUNK.len()]);
        let r = read_body(
            dribbled(pieces, None),
            &signed_headers(),
            &uri("/"),
            None,
            SECS,
        )
        .await
        .expect("exactly the limit is allowed");
        assert_eq!(r.bytes.len(), MAX_BODY_BYTES);
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_413_without_reading() {
        let e = read_body(
            stalled(MAX_BODY_BYTES as u64 + 1),
            &signed_headers(),
            &uri("/"),
            None,
            SECS,
        )
        .await
        .expect_err("too large");
        assert_eq!((e.code, e.status), ("RequestEntityTooLargeException", 413));
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_limit_is_413() {
        static CHUNK: [u8; 64 * 1024] = [b' '; 64 * 1024];
        let pieces = vec![&CHUNK[..]; MAX_BODY_BYTES / CHUNK.len() + 1];
        let e = read_body(
            dribbled(pieces, None),
            &signed_headers(),
            &uri("/"),
            None,
            SECS,
        )
        .await
        .expect_err("too large");
        assert_eq!(e.status, 413);
    }

    #[tokio::test]
    async fn an_unsigned_large_body_is_not_read_and_a_small_one_is() {
        // A stalled body would time out if it were read.
        let r = read_body(stalled(100_000), &HeaderMap::new(), &uri("/"), None, SECS)
            .await
            .expect("not read");
        assert!(r.bytes.is_empty());
        let r = read_body(
            dribbled(vec![b"Action=ListUsers"], Some(16)),
            &HeaderMap::new(),
            &uri("/"),
            None,
            SECS,
        )
        .await
        .expect("read");
        assert_eq!(&r.bytes[..], b"Action=ListUsers");
        // A presigned URL's parameters count as a signature.
        let e = read_body(
            stalled(100_000),
            &HeaderMap::new(),
            &uri("/?X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fkms%2Faws4_request"),
            None,
            Duration::from_millis(50),
        )
        .await
        .expect_err("read, and timed out");
        assert_eq!(e.status, 408);
    }

    #[tokio::test]
    async fn a_large_signed_body_holds_its_reservation_until_dropped() {
        let gate = Gate::new(4, 2 * MIB);
        let slot = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        static BIG: [u8; 100_000] = [b' '; 100_000];
        let r = read_body(
            dribbled(vec![&BIG[..50_000], &BIG[50_000..]], Some(100_000)),
            &signed_headers(),
            &uri("/"),
            Some(&slot),
            SECS,
        )
        .await
        .expect("read");
        assert_eq!(r.bytes.len(), 100_000);
        assert_eq!(gate.reserved(), 100_000);
        drop(r);
        assert_eq!(gate.reserved(), 0);
    }

    #[tokio::test]
    async fn a_large_body_over_the_budget_is_throttled_without_being_read() {
        let gate = Gate::new(4, 2 * MIB);
        let slot = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        // The address's share (1 MiB) is held by a stalled body.
        let _held = slot.reserve(MIB, BUDGET_WAIT).await.expect("held");
        let started = std::time::Instant::now();
        let e = read_body(
            stalled(100_000),
            &signed_headers(),
            &uri("/"),
            Some(&slot),
            SECS,
        )
        .await
        .expect_err("throttled");
        assert_eq!((e.code, e.status), (THROTTLING_EXCEPTION, 400));
        let waited = started.elapsed();
        assert!(waited >= BUDGET_WAIT && waited < SECS, "{waited:?}");
        // A small body from the same address is not held up.
        let r = read_body(
            dribbled(vec![b"{}"], Some(2)),
            &signed_headers(),
            &uri("/"),
            Some(&slot),
            SECS,
        )
        .await
        .expect("small bodies need no budget");
        assert_eq!(&r.bytes[..], b"{}");
    }

    #[tokio::test]
    async fn a_throttled_body_that_arrives_is_read_to_its_end_and_dropped() {
        let gate = Gate::new(4, 2 * MIB);
        let slot = gate.admit(v4(127, 0, 0, 1)).expect("slot");
        let _held = slot.reserve(MIB, BUDGET_WAIT).await.expect("held");
        static BIG: [u8; 60_000] = [b' '; 60_000];
        let (tx, rx) = tokio::sync::oneshot::channel();
        struct Tell(Body, Option<tokio::sync::oneshot::Sender<()>>);
        impl http_body::Body for Tell {
            type Data = Bytes;
            type Error = axum::Error;
            fn poll_frame(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
                let r = std::pin::Pin::new(&mut self.0).poll_frame(cx);
                if let std::task::Poll::Ready(None) = r {
                    if let Some(tx) = self.1.take() {
                        let _ = tx.send(());
                    }
                }
                r
            }
            fn size_hint(&self) -> http_body::SizeHint {
                self.0.size_hint()
            }
        }
        let body = Body::new(Tell(
            dribbled(vec![&BIG[..30_000], &BIG[30_000..]], Some(60_000)),
            Some(tx),
        ));
        let e = read_body(body, &signed_headers(), &uri("/"), Some(&slot), SECS)
            .await
            .expect_err("throttled");
        assert_eq!(e.code, THROTTLING_EXCEPTION);
        assert!(rx.await.is_ok(), "read to its end");
        assert_eq!(gate.reserved(), MIB, "and nothing reserved for it");
    }

    #[test]
    fn query_protocol_is_told_as_serve_request_does() {
        let mut form = HeaderMap::new();
        form.insert(
            crate::hdr::CONTENT_TYPE,
            axum::http::HeaderValue::from_static(
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
        );
        assert!(query_protocol(&form, &uri("/")));
        assert!(query_protocol(
            &HeaderMap::new(),
            &uri("/?Action=GetCallerIdentity")
        ));
        assert!(!query_protocol(&HeaderMap::new(), &uri("/")));
        let mut kms = form.clone();
        kms.insert(
            crate::hdr::X_AMZ_TARGET,
            axum::http::HeaderValue::from_static("TrentService.Encrypt"),
        );
        assert!(!query_protocol(&kms, &uri("/")));
    }
}
