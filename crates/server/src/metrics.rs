//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! Everything a request touches is a fixed array of atomics indexed by
//! (service, operation): recording a request is a table lookup by binary
//! search over `&'static str`s and a handful of relaxed `fetch_add`s, with
//! no lock and no allocation, so the Encrypt hot path pays next to nothing.
//! Only a scrape allocates, to format the text.
//!
//! The counters are process-wide statics (one server per process; tests
//! that start several in-process servers see the sum).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use ferrokms_authz::catalog::Operation;

/// Operations with their own series: the services' operation catalogs
/// (sorted by name, so a lookup is a binary search). Anything else is
/// counted as `other`, so a client cannot create series.
const KMS_OPS: &[Operation] = ferrokms_kms::catalog::OPERATIONS;
const IAM_OPS: &[Operation] = ferrokms_iam::catalog::IAM_OPERATIONS;
const STS_OPS: &[Operation] = ferrokms_iam::catalog::STS_OPERATIONS;
const ANALYZER_OPS: &[Operation] = ferrokms_analyzer::catalog::ANALYZER_OPERATIONS;
const CLOUDTRAIL_OPS: &[Operation] = crate::cloudtrail_api::CLOUDTRAIL_OPERATIONS;

/// The services, in label order; `unknown` is a request no protocol
/// claimed (no or a foreign `X-Amz-Target`, no form body).
const SERVICES: [(&str, &[Operation]); 6] = [
    ("kms", KMS_OPS),
    ("iam", IAM_OPS),
    ("sts", STS_OPS),
    ("access-analyzer", ANALYZER_OPS),
    ("cloudtrail", CLOUDTRAIL_OPS),
    ("unknown", &[]),
];

/// One slot per (service, operation) plus one `other` per service.
const SLOTS: usize = KMS_OPS.len()
    + IAM_OPS.len()
    + STS_OPS.len()
    + ANALYZER_OPS.len()
    + CLOUDTRAIL_OPS.len()
    + SERVICES.len();

/// Latency bucket upper bounds, in microseconds (Prometheus `le` in seconds).
const BUCKETS_US: [u64; 15] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000,
];
const NB: usize = BUCKETS_US.len() + 1;

/// Request outcomes: ok (2xx), client error (4xx), server error (5xx).
const OUTCOMES: [&str; 3] = ["ok", "client_error", "server_error"];

/// Error codes with their own series (the rest are `other`): the codes a
/// client can act on, KMS's and the query protocol's. Sorted.
const ERROR_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AlreadyExistsException",
    "ConflictException",
    "CustomKeyStoreNotFoundException",
    "DependencyTimeoutException",
    "DisabledException",
    "EntityAlreadyExists",
    "ExpiredToken",
    "ExpiredTokenException",
    "IncompleteSignature",
    "IncompleteSignatureException",
    "IncorrectKeyException",
    "InvalidAliasNameException",
    "InvalidArnException",
    "InvalidCiphertextException",
    "InvalidClientTokenId",
    "InvalidGrantTokenException",
    "InvalidKeyUsageException",
    "InvalidMarkerException",
    "InvalidSignatureException",
    "KMSInternalException",
    "KMSInvalidMacException",
    "KMSInvalidSignatureException",
    "KMSInvalidStateException",
    "LimitExceededException",
    "MalformedPolicyDocument",
    "MalformedPolicyDocumentException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "NoSuchEntity",
    "NotFoundException",
    "RequestEntityTooLargeException",
    "RequestTimeoutException",
    "ResourceNotFoundException",
    "SerializationException",
    "ServiceFailure",
    "ServiceQuotaExceededException",
    "SignatureDoesNotMatch",
    "TagException",
    "Throttling",
    "ThrottlingException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "UnsupportedOperationException",
    "ValidationError",
    "ValidationException",
];
const ERROR_SLOTS: usize = ERROR_CODES.len() + 1;

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);
#[allow(clippy::declare_interior_mutable_const)]
const OUTCOME_ROW: [AtomicU64; 3] = [ZERO; 3];
#[allow(clippy::declare_interior_mutable_const)]
const BUCKET_ROW: [AtomicU64; NB] = [ZERO; NB];
#[allow(clippy::declare_interior_mutable_const)]
const ERROR_ROW: [AtomicU64; ERROR_SLOTS] = [ZERO; ERROR_SLOTS];

static REQUESTS: [[AtomicU64; 3]; SLOTS] = [OUTCOME_ROW; SLOTS];
static LATENCY: [[AtomicU64; NB]; SLOTS] = [BUCKET_ROW; SLOTS];
static LATENCY_SUM_US: [AtomicU64; SLOTS] = [ZERO; SLOTS];
static ERRORS: [[AtomicU64; ERROR_SLOTS]; SERVICES.len()] = [ERROR_ROW; SERVICES.len()];

/// Why a request failed authentication (`ferrokms_sigv4_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigV4Failure {
    /// No signature at all.
    Missing,
    /// A signature that does not parse (bad header, bad scope, bad date).
    Malformed,
    /// Signature mismatch, wrong service or region, outside the clock skew.
    Invalid,
    /// An access key id the server does not know (or no longer accepts).
    UnknownKey,
    /// A temporary credential past its expiration.
    Expired,
}

const SIGV4_REASONS: [&str; 5] = ["missing", "malformed", "invalid", "unknown_key", "expired"];
static SIGV4_FAILURES: [AtomicU64; 5] = [ZERO; 5];

static PROFILE_CACHE: [AtomicU64; 2] = [ZERO; 2];
static CONNECTIONS_OPEN: AtomicU64 = ZERO;
static CONNECTIONS_TOTAL: AtomicU64 = ZERO;
static CONNECTIONS_REFUSED: AtomicU64 = ZERO;
static CONNECTION_ERRORS: AtomicU64 = ZERO;
static CONNECTIONS_REFUSED_PER_ADDRESS: AtomicU64 = ZERO;
static BODY_BYTES_RESERVED: AtomicU64 = ZERO;

/// Which series a request belongs to: a slot in the tables above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    service: usize,
    slot: usize,
}

impl Labels {
    /// `service` is `kms`, `iam`, `sts`, `access-analyzer` or `cloudtrail` (anything
    /// else is `unknown`);
    /// an operation outside the fixed list is `other`.
    pub fn new(service: &str, op: &str) -> Labels {
        let mut base = 0;
        for (i, (name, ops)) in SERVICES.iter().enumerate() {
            if *name == service || i == SERVICES.len() - 1 {
                let slot = match ops.binary_search_by(|o| o.name.cmp(op)) {
                    Ok(j) => base + j,
                    Err(_) => base + ops.len(),
                };
                return Labels { service: i, slot };
            }
            base += ops.len() + 1;
        }
        Labels {
            service: SERVICES.len() - 1,
            slot: SLOTS - 1,
        }
    }

    /// The labels of an unclassified request.
    pub fn unknown() -> Labels {
        Labels {
            service: SERVICES.len() - 1,
            slot: SLOTS - 1,
        }
    }

    /// The service's name in the metrics' labels.
    pub fn service(&self) -> &'static str {
        SERVICES[self.service].0
    }
}

/// Counts one finished request: its outcome by HTTP status and its latency.
pub fn record(labels: Labels, status: u16, elapsed: Duration) {
    let outcome = match status {
        500.. => 2,
        400.. => 1,
        _ => 0,
    };
    REQUESTS[labels.slot][outcome].fetch_add(1, Relaxed);
    let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let bucket = BUCKETS_US.iter().position(|&b| us <= b).unwrap_or(NB - 1);
    LATENCY[labels.slot][bucket].fetch_add(1, Relaxed);
    LATENCY_SUM_US[labels.slot].fetch_add(us, Relaxed);
}

/// Counts one error answer by its AWS error code.
pub fn record_error(labels: Labels, code: &str) {
    let i = ERROR_CODES.binary_search(&code).unwrap_or(ERROR_SLOTS - 1);
    ERRORS[labels.service][i].fetch_add(1, Relaxed);
}

/// Counts one authentication failure by its cause.
pub fn record_sigv4_failure(why: SigV4Failure) {
    SIGV4_FAILURES[why as usize].fetch_add(1, Relaxed);
}

/// A lookup in the per-access-key profile cache (`auth::ProfileCache`).
pub fn record_profile_cache(hit: bool) {
    PROFILE_CACHE[usize::from(!hit)].fetch_add(1, Relaxed);
}

/// Counts a connection accepted.
pub fn connection_opened() {
    CONNECTIONS_OPEN.fetch_add(1, Relaxed);
    CONNECTIONS_TOTAL.fetch_add(1, Relaxed);
}

/// Counts a connection closed.
pub fn connection_closed() {
    CONNECTIONS_OPEN.fetch_sub(1, Relaxed);
}

/// A connection accepted and closed at once: the server was at its limit.
pub fn connection_refused() {
    CONNECTIONS_REFUSED.fetch_add(1, Relaxed);
}

/// A connection closed at once: its address had
/// `--max-connections-per-address` open.
pub fn connection_refused_per_address() {
    CONNECTIONS_REFUSED_PER_ADDRESS.fetch_add(1, Relaxed);
}

/// Body bytes reserved from the body budget (see `limits`); only bodies
/// over 8 KiB reserve, so this is not on the path of small requests.
pub fn body_bytes_reserved(n: u64) {
    BODY_BYTES_RESERVED.fetch_add(n, Relaxed);
}

/// Counts body bytes released from the budget.
pub fn body_bytes_released(n: u64) {
    BODY_BYTES_RESERVED.fetch_sub(n, Relaxed);
}

/// A connection that ended in an error: a timeout, a TLS handshake that
/// failed, a malformed request head, a client that went away.
pub fn connection_error() {
    CONNECTION_ERRORS.fetch_add(1, Relaxed);
}

/// Values read at scrape time from the application state.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    /// How many KMS keys the node holds.
    pub keys: u64,
    /// Whether the node serves requests (`/ready`).
    pub ready: bool,
    /// Policy cache hits, where the node has a policy cache.
    pub policy_cache_hits: Option<u64>,
    /// Policy cache misses, where the node has a policy cache.
    pub policy_cache_misses: Option<u64>,
}

fn op_name(slot: usize) -> (&'static str, &'static str) {
    let mut base = 0;
    for (service, ops) in SERVICES {
        if slot < base + ops.len() + 1 {
            return (service, ops.get(slot - base).map_or("other", |o| o.name));
        }
        base += ops.len() + 1;
    }
    ("unknown", "other")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The text exposition. Series that never counted anything are left out
/// (except the single-valued ones), so a scrape stays small.
pub fn render(g: &Gauges) -> String {
    let mut out = String::with_capacity(16 * 1024);
    header(
        &mut out,
        "ferrokms_requests_total",
        "counter",
        "Requests answered, by service, operation and outcome (ok, client_error = 4xx, server_error = 5xx).",
    );
    for (slot, row) in REQUESTS.iter().enumerate() {
        let (service, op) = op_name(slot);
        for (o, n) in row.iter().enumerate() {
            let n = n.load(Relaxed);
            if n > 0 {
                let _ = writeln!(
                    out,
                    "ferrokms_requests_total{{service=\"{service}\",operation=\"{op}\",outcome=\"{}\"}} {n}",
                    OUTCOMES[o]
                );
            }
        }
    }
    header(
        &mut out,
        "ferrokms_request_duration_seconds",
        "histogram",
        "Time from the request head to the response, by service and operation.",
    );
    for (slot, row) in LATENCY.iter().enumerate() {
        let counts: Vec<u64> = row.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            continue;
        }
        let (service, op) = op_name(slot);
        let mut cumulative = 0;
        for (i, c) in counts.iter().enumerate() {
            cumulative += c;
            let le = match BUCKETS_US.get(i) {
                Some(us) => format!("{}", *us as f64 / 1e6),
                None => "+Inf".into(),
            };
            let _ = writeln!(
                out,
                "ferrokms_request_duration_seconds_bucket{{service=\"{service}\",operation=\"{op}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = LATENCY_SUM_US[slot].load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "ferrokms_request_duration_seconds_sum{{service=\"{service}\",operation=\"{op}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "ferrokms_request_duration_seconds_count{{service=\"{service}\",operation=\"{op}\"}} {total}"
        );
    }
    header(
        &mut out,
        "ferrokms_errors_total",
        "counter",
        "Error answers by service and AWS error code (codes outside a fixed list are 'other').",
    );
    for (s, row) in ERRORS.iter().enumerate() {
        for (i, n) in row.iter().enumerate() {
            let n = n.load(Relaxed);
            if n > 0 {
                let code = ERROR_CODES.get(i).copied().unwrap_or("other");
                let _ = writeln!(
                    out,
                    "ferrokms_errors_total{{service=\"{}\",code=\"{code}\"}} {n}",
                    SERVICES[s].0
                );
            }
        }
    }
    header(
        &mut out,
        "ferrokms_authorization_denials_total",
        "counter",
        "Requests refused by authorization (AccessDeniedException, AccessDenied), by service.",
    );
    for (s, row) in ERRORS.iter().enumerate() {
        let n: u64 = ["AccessDenied", "AccessDeniedException"]
            .iter()
            .filter_map(|c| ERROR_CODES.binary_search(c).ok())
            .map(|i| row[i].load(Relaxed))
            .sum();
        let _ = writeln!(
            out,
            "ferrokms_authorization_denials_total{{service=\"{}\"}} {n}",
            SERVICES[s].0
        );
    }
    header(
        &mut out,
        "ferrokms_sigv4_failures_total",
        "counter",
        "Requests that failed authentication, by reason.",
    );
    for (i, reason) in SIGV4_REASONS.iter().enumerate() {
        let _ = writeln!(
            out,
            "ferrokms_sigv4_failures_total{{reason=\"{reason}\"}} {}",
            SIGV4_FAILURES[i].load(Relaxed)
        );
    }
    header(
        &mut out,
        "ferrokms_cache_requests_total",
        "counter",
        "Cache lookups by cache and result: profile = caller profiles per access key, policy = parsed key policies by text.",
    );
    for (result, n) in ["hit", "miss"].iter().zip(&PROFILE_CACHE) {
        let _ = writeln!(
            out,
            "ferrokms_cache_requests_total{{cache=\"profile\",result=\"{result}\"}} {}",
            n.load(Relaxed)
        );
    }
    if let (Some(h), Some(m)) = (g.policy_cache_hits, g.policy_cache_misses) {
        let _ = writeln!(
            out,
            "ferrokms_cache_requests_total{{cache=\"policy\",result=\"hit\"}} {h}"
        );
        let _ = writeln!(
            out,
            "ferrokms_cache_requests_total{{cache=\"policy\",result=\"miss\"}} {m}"
        );
    }
    header(
        &mut out,
        "ferrokms_keys",
        "gauge",
        "KMS keys held by this server (all accounts, every key state).",
    );
    let _ = writeln!(out, "ferrokms_keys {}", g.keys);
    header(
        &mut out,
        "ferrokms_ready",
        "gauge",
        "1 when the store answered the last readiness check (the same check as /ready).",
    );
    let _ = writeln!(out, "ferrokms_ready {}", u8::from(g.ready));
    header(
        &mut out,
        "ferrokms_connections_open",
        "gauge",
        "Client connections open now.",
    );
    let _ = writeln!(
        out,
        "ferrokms_connections_open {}",
        CONNECTIONS_OPEN.load(Relaxed)
    );
    header(
        &mut out,
        "ferrokms_body_bytes_reserved",
        "gauge",
        "Request-body bytes (bodies over 8 KiB) reserved from the body budget now (read or being read, not yet answered).",
    );
    let _ = writeln!(
        out,
        "ferrokms_body_bytes_reserved {}",
        BODY_BYTES_RESERVED.load(Relaxed)
    );
    for (name, help, v) in [
        (
            "ferrokms_connections_total",
            "Client connections accepted.",
            &CONNECTIONS_TOTAL,
        ),
        (
            "ferrokms_connections_refused_total",
            "Connections closed at once because --max-connections were open.",
            &CONNECTIONS_REFUSED,
        ),
        (
            "ferrokms_connections_refused_per_address_total",
            "Connections closed at once because their address had --max-connections-per-address open.",
            &CONNECTIONS_REFUSED_PER_ADDRESS,
        ),
        (
            "ferrokms_connection_errors_total",
            "Connections that ended in an error: timeouts, failed TLS handshakes, malformed requests, clients gone.",
            &CONNECTION_ERRORS,
        ),
    ] {
        header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {}", v.load(Relaxed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_tables_are_sorted_so_binary_search_finds_every_name() {
        for (service, ops) in SERVICES {
            assert!(ops.windows(2).all(|w| w[0].name < w[1].name), "{service}");
        }
        assert!(ERROR_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    /// The series are the catalog's, which a test keeps equal to the
    /// embedded KMS model: every operation of the model has its own.
    #[test]
    fn every_kms_operation_of_the_model_has_its_own_series() {
        let model: serde_json::Value =
            serde_json::from_str(crate::kms_api::KMS_MODEL).unwrap_or_default();
        let ops = model["operations"].as_object().cloned().unwrap_or_default();
        assert!(ops.len() >= 54, "the model lists the KMS operations");
        for op in ops.keys() {
            assert_eq!(op_name(Labels::new("kms", op).slot), ("kms", op.as_str()));
        }
    }

    #[test]
    fn every_slot_names_its_service_and_operation() {
        assert_eq!(
            op_name(Labels::new("kms", "Encrypt").slot),
            ("kms", "Encrypt")
        );
        assert_eq!(op_name(Labels::new("kms", "Nope").slot), ("kms", "other"));
        assert_eq!(
            op_name(Labels::new("iam", "CreateUser").slot),
            ("iam", "CreateUser")
        );
        assert_eq!(
            op_name(Labels::new("sts", "AssumeRole").slot),
            ("sts", "AssumeRole")
        );
        assert_eq!(op_name(Labels::new("sts", "X").slot), ("sts", "other"));
        assert_eq!(op_name(Labels::new("ec2", "X").slot), ("unknown", "other"));
        assert_eq!(Labels::unknown(), Labels::new("", ""));
    }

    #[test]
    fn recorded_requests_appear_in_the_exposition_with_cumulative_buckets() {
        let l = Labels::new("sts", "GetSessionToken");
        record(l, 200, Duration::from_micros(300));
        record(l, 403, Duration::from_secs(60));
        record_error(l, "AccessDenied");
        let text = render(&Gauges::default());
        assert!(text.contains(
            "ferrokms_requests_total{service=\"sts\",operation=\"GetSessionToken\",outcome=\"ok\"}"
        ));
        assert!(text.contains(
            "ferrokms_request_duration_seconds_bucket{service=\"sts\",operation=\"GetSessionToken\",le=\"0.0005\"}"
        ));
        let inf = text
            .lines()
            .find(|l| {
                l.starts_with("ferrokms_request_duration_seconds_bucket{service=\"sts\",operation=\"GetSessionToken\",le=\"+Inf\"}")
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(inf.is_some_and(|n| n >= 2), "{text}");
        assert!(text.contains("ferrokms_authorization_denials_total{service=\"sts\"}"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or("");
            assert!(value.parse::<f64>().is_ok(), "bad sample line: {line}");
        }
    }
}
