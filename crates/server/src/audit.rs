//! The audit trail: one record per request, in CloudTrail's event shape,
//! as JSON lines under `DATA_DIR/audit/`.
//!
//! Requests append their record to one shared in-memory batch (a short
//! lock and a copy; no allocation, no channel) and go on: no request ever
//! waits for a disk. One writer thread takes the batch and hands it to the
//! kernel, in one write, every [`FLUSH_INTERVAL`]; a second thread
//! fsyncs the file at most [`SYNC_INTERVAL`] after new bytes reached it (and
//! the writer fsyncs once more at shutdown and before each rotation). So:
//!
//! - a crash of the process (`kill -9`, a panic that aborts) loses only the
//!   records not yet handed to the kernel: those of requests answered in the
//!   last [`FLUSH_INTERVAL`] (plus any time the writer waited for a CPU);
//! - a power loss or kernel crash loses at most the records of the last
//!   [`SYNC_INTERVAL`] + [`FLUSH_INTERVAL`] (plus the time an fsync takes);
//! - a graceful stop (SIGTERM, SIGINT) loses nothing.
//!
//! The file rotates at [`MAX_FILE_BYTES`], keeping [`KEEP_FILES`] older
//! files. If the writer falls behind by more than [`MAX_PENDING_BYTES`],
//! requests still complete and the number of records dropped is written to
//! the log and, as `{"ferrokmsDroppedRecords":N}`, to the file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

pub const AUDIT_DIR: &str = "audit";
pub const AUDIT_FILE: &str = "audit.jsonl";
/// How long a record may wait in memory before the writer hands it to the
/// kernel: what a `kill -9` can lose.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);
/// How long bytes may sit in the kernel's page cache before an fsync: with
/// [`FLUSH_INTERVAL`], what a power loss can lose. One fdatasync per
/// interval whatever the request rate (group commit), off the request path.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
pub const KEEP_FILES: usize = 5;
/// Records waiting for the writer, at most: about two seconds of full load.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// The request members CloudTrail never logs: plaintext, messages, MACs,
/// signatures, ciphertexts and key material.
const NEVER_LOGGED: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "Message",
    "Mac",
    "Signature",
    "PublicKey",
    "EncryptedKeyMaterial",
    "ImportToken",
    "SecretAccessKey",
    "Password",
    "Recipient",
];

/// What the writer and the syncer share: the file being appended to and how
/// far it is written and synced.
#[derive(Default)]
struct SyncState {
    /// A second handle on the current file: an fsync through it covers
    /// what the writer wrote through its own.
    file: Mutex<Option<File>>,
    /// Bytes handed to the kernel since the start (all files).
    written: AtomicU64,
    /// Bytes known to be on disk since the start.
    synced: AtomicU64,
    /// Records (each with its newline) not yet taken by the writer.
    pending: parking_lot::Mutex<Vec<u8>>,
    /// Records refused because `pending` was full, not yet reported.
    dropped: AtomicU64,
    /// Set when the log closes: the writer takes what is left and stops.
    closing: std::sync::atomic::AtomicBool,
    /// Set at shutdown; the syncer's wake-up.
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Sends records to the writer thread; cheap to share.
pub struct AuditLog {
    enabled: bool,
    writer: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    state: Arc<SyncState>,
}

impl AuditLog {
    /// No audit trail (in-memory servers, `serve --no-audit`).
    pub fn disabled() -> AuditLog {
        AuditLog {
            enabled: false,
            writer: None,
            syncer: None,
            state: Arc::default(),
        }
    }

    /// Starts the writer and the syncer for `DATA_DIR/audit/audit.jsonl`.
    pub fn open(data_dir: &Path) -> std::io::Result<AuditLog> {
        let dir = data_dir.join(AUDIT_DIR);
        fs::create_dir_all(&dir)?;
        let path = dir.join(AUDIT_FILE);
        let file = open_append(&path)?;
        let state = Arc::new(SyncState {
            file: Mutex::new(Some(file.try_clone()?)),
            ..SyncState::default()
        });
        let st = state.clone();
        let writer = std::thread::Builder::new()
            .name("ferrokms-audit".into())
            .spawn(move || write_loop(path, file, &st))?;
        let st = state.clone();
        let syncer = std::thread::Builder::new()
            .name("ferrokms-auditsync".into())
            .spawn(move || sync_loop(&st));
        let syncer = match syncer {
            Ok(s) => s,
            Err(e) => {
                // Stop the writer again rather than run without fsyncs.
                state.closing.store(true, Ordering::Release);
                let _ = writer.join();
                return Err(e);
            }
        };
        Ok(AuditLog {
            enabled: true,
            writer: Some(writer),
            syncer: Some(syncer),
            state,
        })
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Bytes of records handed to the kernel so far, and how many of them
    /// are known to be on disk (fsynced).
    pub fn progress(&self) -> (u64, u64) {
        (
            self.state.written.load(Ordering::Acquire),
            self.state.synced.load(Ordering::Acquire),
        )
    }

    /// Queues one record (a JSON object, without the newline).
    pub fn record(&self, line: &[u8]) {
        if !self.enabled {
            return;
        }
        let state = &self.state;
        let mut pending = state.pending.lock();
        if pending.len() + line.len() >= MAX_PENDING_BYTES {
            drop(pending);
            let n = state.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(10_000) {
                tracing::warn!(dropped = n, "audit writer is behind; records dropped");
            }
            return;
        }
        pending.extend_from_slice(line);
        pending.push(b'\n');
    }

    /// Builds the record of a request and queues it. The record is written
    /// into a buffer the thread keeps, so a request allocates nothing for
    /// its audit record.
    pub fn record_event(&self, input: EventInput<'_>) {
        if !self.enabled {
            return;
        }
        thread_local! {
            static BUF: std::cell::RefCell<(Vec<u8>, Memo)> = std::cell::RefCell::default();
        }
        BUF.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                let (buf, memo) = &mut *buf;
                buf.clear();
                write_event(buf, &input, Some(memo));
                self.record(buf);
                // A rare huge record (a long error message) does not pin
                // its memory to the thread.
                if buf.capacity() > 64 * RECORD_CAPACITY {
                    *buf = Vec::new();
                }
            }
            Err(_) => self.record(&event(input)),
        });
    }

    /// Stops accepting records and waits for the writer to write and fsync
    /// the rest.
    pub fn close(&mut self) {
        self.enabled = false;
        self.state.closing.store(true, Ordering::Release);
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        if let Ok(mut stop) = self.state.stop.lock() {
            *stop = true;
        }
        self.state.wake.notify_all();
        if let Some(s) = self.syncer.take() {
            let _ = s.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// fsyncs the current file whenever bytes were written since the last
/// fsync, at most every [`SYNC_INTERVAL`], until shutdown.
fn sync_loop(state: &SyncState) {
    loop {
        let stopping = match state.stop.lock() {
            Ok(guard) => match state.wake.wait_timeout(guard, SYNC_INTERVAL) {
                Ok((guard, _)) => *guard,
                Err(_) => true,
            },
            Err(_) => true,
        };
        sync_now(state);
        if stopping {
            return;
        }
    }
}

/// One fsync of the current file if anything is unsynced.
fn sync_now(state: &SyncState) {
    let target = state.written.load(Ordering::Acquire);
    if target <= state.synced.load(Ordering::Acquire) {
        return;
    }
    let Ok(file) = state.file.lock() else { return };
    if let Some(f) = file.as_ref() {
        match f.sync_data() {
            Ok(()) => {
                state.synced.fetch_max(target, Ordering::AcqRel);
            }
            Err(e) => tracing::error!(error = %e, "audit log fsync failed"),
        }
    }
}

fn write_loop(path: PathBuf, mut file: File, state: &SyncState) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut batch: Vec<u8> = Vec::with_capacity(256 * 1024);
    loop {
        // Sleep, then take the whole batch: requests never have to wake the
        // writer, and each interval's records go out in one system call.
        std::thread::sleep(FLUSH_INTERVAL);
        let closing = state.closing.load(Ordering::Acquire);
        let dropped = state.dropped.swap(0, Ordering::Relaxed);
        std::mem::swap(&mut batch, &mut *state.pending.lock());
        if dropped > 0 {
            batch.extend_from_slice(
                format!("{{\"ferrokmsDroppedRecords\":{dropped}}}\n").as_bytes(),
            );
        }
        if !batch.is_empty() {
            match file.write_all(&batch) {
                Ok(()) => {
                    size += batch.len() as u64;
                    state
                        .written
                        .fetch_add(batch.len() as u64, Ordering::AcqRel);
                }
                Err(e) => tracing::error!(error = %e, "audit log write failed"),
            }
            // Keep the capacity for the next batch, unless a burst made
            // it huge.
            batch.clear();
            if batch.capacity() > 16 * 1024 * 1024 {
                batch = Vec::with_capacity(256 * 1024);
            }
        }
        if closing {
            // Shutdown: everything written so far reaches the disk.
            sync_now(state);
            return;
        }
        if size >= MAX_FILE_BYTES {
            // The old file is complete: make it durable before it is
            // renamed, so that the syncer only ever needs the current one.
            sync_now(state);
            match rotate(&path).and_then(|f| Ok((f.try_clone()?, f))) {
                Ok((second, f)) => {
                    if let Ok(mut shared) = state.file.lock() {
                        *shared = Some(second);
                    }
                    file = f;
                    size = 0;
                }
                Err(e) => tracing::error!(error = %e, "audit log rotation failed"),
            }
        }
    }
}

/// `audit.jsonl` -> `audit.jsonl.1` -> ... -> `audit.jsonl.KEEP_FILES` (dropped).
fn rotate(path: &Path) -> std::io::Result<File> {
    for i in (1..KEEP_FILES).rev() {
        let from = rotated(path, i);
        if from.exists() {
            fs::rename(&from, rotated(path, i + 1))?;
        }
    }
    fs::rename(path, rotated(path, 1))?;
    open_append(path)
}

pub fn rotated(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// The audit files of a data dir, oldest first.
pub fn files(data_dir: &Path) -> Vec<PathBuf> {
    let path = data_dir.join(AUDIT_DIR).join(AUDIT_FILE);
    let mut out: Vec<PathBuf> = (1..=KEEP_FILES)
        .rev()
        .map(|i| rotated(&path, i))
        .filter(|p| p.exists())
        .collect();
    if path.exists() {
        out.push(path);
    }
    out
}

/// Operations that only read (CloudTrail's `readOnly`).
pub fn read_only(op: &str) -> bool {
    op.starts_with("Describe")
        || op.starts_with("List")
        || op.starts_with("Get")
        || matches!(
            op,
            "Encrypt"
                | "Decrypt"
                | "ReEncrypt"
                | "GenerateRandom"
                | "Sign"
                | "Verify"
                | "GenerateMac"
                | "VerifyMac"
                | "DeriveSharedSecret"
        )
        || op.starts_with("GenerateDataKey")
        || op.starts_with("Simulate")
}

/// What the edge knows about one finished request.
pub struct EventInput<'a> {
    /// `kms`, `iam` or `sts`.
    pub service: &'a str,
    pub op: &'a str,
    pub region: &'a str,
    pub source_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
    pub identity: Option<&'a crate::auth::Identity>,
    /// JSON from [`request_parameters_json`]; empty for `null`.
    pub request_parameters: &'a [u8],
    /// JSON from [`response_elements`]; empty for `null`.
    pub response_elements: &'a [u8],
    /// `(code, message)` of a failed request.
    pub error: Option<(&'a str, Option<&'a str>)>,
    pub request_id: &'a str,
    /// The record's `eventID` when the request made it already (KMS
    /// requests: GetKeyLastUsage names it); otherwise a fresh one.
    pub event_id: Option<[u8; 36]>,
    pub decisions: &'a [ferrokms_kms::authz::AuthzRecord],
    pub now_ms: i64,
}

/// Typical size of one record; the buffer rarely grows past it.
const RECORD_CAPACITY: usize = 1536;

/// One audit record in CloudTrail's event shape, plus the authorization
/// trace under `ferrokmsAuthorization`, as one JSON line (no newline).
///
/// This runs on the request's thread for every request, so it writes the
/// JSON straight into one buffer: no intermediate JSON tree, no `String` per
/// field, no formatting machinery for ids and times. (With serde's derive and
/// a `Value` for the identity it cost about 29,000 instructions per Encrypt
/// record, a fifth of the whole request; docs/audit.md.)
pub fn event(input: EventInput<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_CAPACITY);
    write_event(&mut out, &input, None);
    out
}

/// The parts of the last record a thread wrote that the next record of the
/// same client repeats byte for byte, with what they were made from. A
/// client sending request after request (the usual load) has the same
/// identity, operation, address, key and decision each time: comparing
/// those inputs and copying the text costs a fraction of escaping and
/// writing it again (about 3,400 instructions of a record's 5,000). Each
/// part is compared in full, so a record never borrows another's text.
#[derive(Default)]
struct Memo {
    /// `userIdentity`: access key id, principal and partition.
    identity: Option<(String, ferrokms_iam::Principal, &'static str)>,
    identity_json: Vec<u8>,
    /// From `eventSource` to `userAgent`.
    head: Option<HeadKey>,
    head_json: Vec<u8>,
    /// From `readOnly` to the end of a request that did not fail.
    tail: Option<TailKey>,
    tail_json: Vec<u8>,
}

#[derive(PartialEq)]
struct HeadKey {
    service: String,
    op: String,
    region: String,
    source_ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
}

#[derive(PartialEq)]
struct TailKey {
    op: String,
    caller_account: String,
    decisions: Vec<ferrokms_kms::authz::AuthzRecord>,
}

/// Copies the memo's text for `key` when it was made from equal inputs, or
/// writes it afresh with `write` (into the memo, then copied).
fn memoized<K: PartialEq>(
    out: &mut Vec<u8>,
    memo: Option<(&mut Option<K>, &mut Vec<u8>)>,
    same: impl FnOnce(&K) -> bool,
    key: impl FnOnce() -> K,
    write: impl FnOnce(&mut Vec<u8>),
) {
    match memo {
        Some((k, text)) => {
            if !k.as_ref().is_some_and(same) {
                text.clear();
                write(text);
                *k = Some(key());
            }
            out.extend_from_slice(text);
        }
        None => write(out),
    }
}

fn write_event(out: &mut Vec<u8>, input: &EventInput<'_>, mut memo: Option<&mut Memo>) {
    out.extend_from_slice(b"{\"eventVersion\":\"1.08\",\"userIdentity\":");
    match input.identity {
        None => out.extend_from_slice(b"{\"type\":\"Unknown\"}"),
        Some(id) => {
            let partition = id.region.partition();
            memoized(
                out,
                memo.as_deref_mut()
                    .map(|m| (&mut m.identity, &mut m.identity_json)),
                |(akid, principal, p)| {
                    *p == partition && *akid == id.access_key_id && *principal == id.principal
                },
                || (id.access_key_id.clone(), id.principal.clone(), partition),
                |out| write_user_identity(out, id, partition),
            );
        }
    }
    out.extend_from_slice(b",\"eventTime\":\"");
    write_time(out, input.now_ms);
    out.push(b'"');
    memoized(
        out,
        memo.as_deref_mut().map(|m| (&mut m.head, &mut m.head_json)),
        |k| {
            k.service == input.service
                && k.op == input.op
                && k.region == input.region
                && k.source_ip == input.source_ip
                && k.user_agent.as_deref() == input.user_agent
        },
        || HeadKey {
            service: input.service.to_string(),
            op: input.op.to_string(),
            region: input.region.to_string(),
            source_ip: input.source_ip,
            user_agent: input.user_agent.map(str::to_string),
        },
        |out| write_head(out, input),
    );
    out.extend_from_slice(b",\"requestParameters\":");
    push_raw(out, input.request_parameters);
    out.extend_from_slice(b",\"responseElements\":");
    push_raw(out, input.response_elements);
    out.extend_from_slice(b",\"requestID\":");
    push_str(out, input.request_id);
    out.extend_from_slice(b",\"eventID\":\"");
    out.extend_from_slice(&input.event_id.unwrap_or_else(crate::ids::unique_id_bytes));
    out.push(b'"');
    let caller_account = input
        .identity
        .map(|i| i.principal.account().as_str())
        .unwrap_or_default();
    // A failed request's tail carries its error: written afresh.
    let tail_memo = match input.error {
        None => memo.map(|m| (&mut m.tail, &mut m.tail_json)),
        Some(_) => None,
    };
    memoized(
        out,
        tail_memo,
        |k| {
            k.op == input.op && k.caller_account == caller_account && k.decisions == input.decisions
        },
        || TailKey {
            op: input.op.to_string(),
            caller_account: caller_account.to_string(),
            decisions: input.decisions.to_vec(),
        },
        |out| write_tail(out, input, caller_account),
    );
}

/// `,"eventSource":...,"userAgent":...`
fn write_head(out: &mut Vec<u8>, input: &EventInput<'_>) {
    out.extend_from_slice(b",\"eventSource\":");
    push_str_parts(out, &[input.service, ".amazonaws.com"]);
    out.extend_from_slice(b",\"eventName\":");
    push_str(out, input.op);
    out.extend_from_slice(b",\"awsRegion\":");
    push_str(out, input.region);
    out.extend_from_slice(b",\"sourceIPAddress\":");
    match input.source_ip {
        Some(ip) => {
            out.push(b'"');
            // An address never needs escaping.
            write_ip(out, ip);
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"userAgent\":");
    push_opt_str(out, input.user_agent);
}

/// `,"readOnly":...` to the end of the record, its closing brace included.
fn write_tail(out: &mut Vec<u8>, input: &EventInput<'_>, caller_account: &str) {
    out.extend_from_slice(b",\"readOnly\":");
    out.extend_from_slice(if read_only(input.op) {
        b"true"
    } else {
        b"false"
    });
    out.extend_from_slice(b",\"resources\":[");
    // The keys the request's decisions were about, each once, in order.
    // The first key: its ARN and account.
    let mut first: Option<(&str, &str)> = None;
    let mut written = 0usize;
    for (i, d) in input.decisions.iter().enumerate() {
        let arn = d.resource.as_str();
        let Some(account) = key_arn_account(arn) else {
            continue;
        };
        if input.decisions[..i]
            .iter()
            .any(|e| e.resource == d.resource)
        {
            continue;
        }
        first.get_or_insert((arn, account));
        if written > 0 {
            out.push(b',');
        }
        written += 1;
        out.extend_from_slice(b"{\"accountId\":");
        push_str(out, account);
        out.extend_from_slice(b",\"type\":\"AWS::KMS::Key\",\"ARN\":");
        push_str(out, arn);
        out.push(b'}');
    }
    out.extend_from_slice(
        b"],\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":",
    );
    push_str(out, first.map_or(caller_account, |(_, account)| account));
    out.extend_from_slice(b",\"eventCategory\":\"Management\"");
    if let Some((code, message)) = input.error {
        out.extend_from_slice(b",\"errorCode\":");
        push_str(out, code);
        if let Some(m) = message {
            out.extend_from_slice(b",\"errorMessage\":");
            push_str(out, m);
        }
    }
    out.extend_from_slice(b",\"ferrokmsAuthorization\":[");
    for (i, d) in input.decisions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Two omissions keep the most common trace short (its bytes are
        // most of what the audit trail costs; see docs/audit.md): the
        // resource when it is the record's first `resources` ARN, and the
        // decision when it is a plain "allow". Readers restore both
        // (`ferrokms_kms::authz::AuthzRecord::from_audit`).
        out.extend_from_slice(b"{\"action\":");
        push_str(out, &d.action);
        if first.map(|(arn, _)| arn) != Some(d.resource.as_str()) {
            out.extend_from_slice(b",\"resource\":");
            push_str(out, &d.resource);
        }
        if !d.allowed {
            out.extend_from_slice(b",\"allowed\":false,\"decision\":");
            push_str(out, &d.decision);
        } else if d.decision == ferrokms_kms::authz::PLAIN_ALLOW {
            out.extend_from_slice(b",\"allowed\":true");
        } else {
            out.extend_from_slice(b",\"allowed\":true,\"decision\":");
            push_str(out, &d.decision);
        }
        out.extend_from_slice(b",\"statements\":[");
        for (j, st) in d.statements.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            push_str(out, st);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"]}");
}

/// `userIdentity` as CloudTrail writes it for each kind of caller.
fn write_user_identity(out: &mut Vec<u8>, id: &crate::auth::Identity, partition: &str) {
    use ferrokms_iam::Principal;
    match &id.principal {
        Principal::Root { account } => {
            let account = account.as_str();
            out.extend_from_slice(b"{\"type\":\"Root\",\"principalId\":");
            push_str(out, account);
            out.extend_from_slice(b",\"arn\":");
            push_str_parts(out, &["arn:", partition, ":iam::", account, ":root"]);
            out.extend_from_slice(b",\"accountId\":");
            push_str(out, account);
            out.extend_from_slice(b",\"accessKeyId\":");
            push_str(out, &id.access_key_id);
            out.push(b'}');
        }
        Principal::User {
            account,
            name,
            path,
            id: uid,
        } => {
            let account = account.as_str();
            out.extend_from_slice(b"{\"type\":\"IAMUser\",\"principalId\":");
            push_str(out, uid);
            out.extend_from_slice(b",\"arn\":");
            push_str_parts(
                out,
                &["arn:", partition, ":iam::", account, ":user", path, name],
            );
            out.extend_from_slice(b",\"accountId\":");
            push_str(out, account);
            out.extend_from_slice(b",\"accessKeyId\":");
            push_str(out, &id.access_key_id);
            out.extend_from_slice(b",\"userName\":");
            push_str(out, name);
            out.push(b'}');
        }
        Principal::AssumedRole {
            account,
            role_name,
            role_path,
            role_id,
            session_name,
        } => {
            let account = account.as_str();
            out.extend_from_slice(b"{\"type\":\"AssumedRole\",\"principalId\":");
            push_str_parts(out, &[role_id, ":", session_name]);
            out.extend_from_slice(b",\"arn\":");
            push_str_parts(
                out,
                &[
                    "arn:",
                    partition,
                    ":sts::",
                    account,
                    ":assumed-role/",
                    role_name,
                    "/",
                    session_name,
                ],
            );
            out.extend_from_slice(b",\"accountId\":");
            push_str(out, account);
            out.extend_from_slice(b",\"accessKeyId\":");
            push_str(out, &id.access_key_id);
            out.extend_from_slice(
                b",\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"principalId\":",
            );
            push_str(out, role_id);
            out.extend_from_slice(b",\"arn\":");
            push_str_parts(
                out,
                &[
                    "arn:", partition, ":iam::", account, ":role", role_path, role_name,
                ],
            );
            out.extend_from_slice(b",\"accountId\":");
            push_str(out, account);
            out.extend_from_slice(b",\"userName\":");
            push_str(out, role_name);
            out.extend_from_slice(b"},\"attributes\":{\"mfaAuthenticated\":\"false\"}}}");
        }
    }
}

/// The account of a KMS key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`),
/// or `None` for any other resource: one pass over the bytes.
fn key_arn_account(arn: &str) -> Option<&str> {
    match ferrokms_types::split_fields::<6>(arn, b':')? {
        ["arn", _, "kms", _, account, rest] if rest.starts_with("key/") => Some(account),
        _ => None,
    }
}

/// An address as `Display` writes it, without the formatting machinery for
/// the usual IPv4 peer (four numbers written by hand).
fn write_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, n) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if n >= 100 {
                    out.push(b'0' + n / 100);
                }
                if n >= 10 {
                    out.push(b'0' + (n / 10) % 10);
                }
                out.push(b'0' + n % 10);
            }
        }
        std::net::IpAddr::V6(_) => {
            use std::io::Write as _;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{ip}");
        }
    }
}

/// `eventTime` (`YYYY-MM-DDTHH:MM:SSZ`, no quotes). The text changes once a
/// second, so each thread keeps the last one it wrote.
fn write_time(out: &mut Vec<u8>, now_ms: i64) {
    thread_local! {
        static LAST: std::cell::RefCell<(i64, String)> = const {
            std::cell::RefCell::new((i64::MIN, String::new()))
        };
    }
    let secs = now_ms.div_euclid(1000);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != secs {
            *last = (secs, crate::query::iso8601(now_ms));
        }
        out.extend_from_slice(last.1.as_bytes());
    });
}

/// Whether a string can be copied into a JSON string as it is: no quote,
/// backslash or control character. Eight bytes at a time (SWAR): about 30
/// strings go through here per record, most of them ids and ARNs that
/// never need escaping, and the byte-at-a-time loop was a third of the
/// record's cost.
fn needs_no_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of `x` is below `n` (n <= 0x80).
    let has_less = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let has_byte = |x: u64, b: u8| has_less(x ^ (ONES * u64::from(b)), 1);
    // Whether eight bytes are free of control characters, quotes and
    // backslashes.
    let clean_word = |chunk: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        (has_less(x, 0x20) | has_byte(x, b'"') | has_byte(x, b'\\')) == 0
    };
    let mut chunks = bytes.chunks_exact(8);
    if !chunks.all(clean_word) {
        return false;
    }
    let rest = chunks.remainder();
    if rest.is_empty() {
        true
    } else if bytes.len() >= 8 {
        // The last eight bytes, overlapping the words already checked: one
        // more word instead of a byte-at-a-time tail.
        clean_word(&bytes[bytes.len() - 8..])
    } else {
        rest.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
    }
}

/// `s` escaped as JSON string content (without quotes), as serde_json does:
/// quote, backslash and control characters; everything else verbatim.
fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

/// One JSON string made of several pieces (an ARN from its parts).
fn push_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for p in parts {
        push_escaped(out, p);
    }
    out.push(b'"');
}

fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn push_raw(out: &mut Vec<u8>, json: &[u8]) {
    if json.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.extend_from_slice(json);
    }
}

/// Request parameters as CloudTrail shows them (see [`request_parameters`]),
/// written straight to JSON text from the parsed request body; empty for
/// `null` (an empty body).
///
/// Each thread keeps the members it last wrote (the logged ones, in order)
/// and their text: a client repeating a request with other data (another
/// plaintext, which is never logged) gets the text copied, not written
/// again. Members are compared in order, so the text is always what
/// writing this body afresh would give.
pub fn request_parameters_json(body: &Value) -> Vec<u8> {
    /// The logged members last written, and their text.
    type Memo = (Vec<(String, Value)>, Vec<u8>);
    thread_local! {
        static MEMO: std::cell::RefCell<Memo> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
    }
    let Value::Object(members) = body else {
        return clean_json(body);
    };
    if members.is_empty() {
        return Vec::new();
    }
    let logged = || {
        members
            .iter()
            .filter(|(k, _)| !NEVER_LOGGED.contains(&k.as_str()))
    };
    MEMO.with(|memo| {
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return clean_json(body);
        };
        let (kept, text) = &mut *memo;
        let mut n = 0;
        let same = logged().all(|(k, v)| {
            let hit = kept
                .get(n)
                .is_some_and(|(mk, mv)| mk == k && same_json(mv, v));
            n += 1;
            hit
        }) && n == kept.len();
        if !same {
            *kept = logged().map(|(k, v)| (k.clone(), v.clone())).collect();
            *text = clean_json(body);
        }
        text.clone()
    })
}

/// [`request_parameters_json`] without the memo.
fn clean_json(body: &Value) -> Vec<u8> {
    match body {
        Value::Object(m) if m.is_empty() => Vec::new(),
        other => {
            let mut out = Vec::with_capacity(256);
            write_clean(&mut out, other, true);
            out
        }
    }
}

/// JSON equality that also requires objects to list their members in the
/// same order (`Value`'s own equality ignores the order, but the text
/// written keeps it).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        _ => a == b,
    }
}

/// `v` as [`request_parameters`] cleans it, as JSON text: at the top level
/// member names are camelCased and the never-logged members left out;
/// encryption context keys and constraint maps are data, kept verbatim.
fn write_clean(out: &mut Vec<u8>, v: &Value, top: bool) {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            let mut first = true;
            for (k, val) in m {
                if top && NEVER_LOGGED.contains(&k.as_str()) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'"');
                if top {
                    match k.as_bytes().first() {
                        // Model member names: an ASCII letter first.
                        Some(&f) if f.is_ascii_alphanumeric() => {
                            out.push(f.to_ascii_lowercase());
                            push_escaped(out, &k[1..]);
                        }
                        _ => {
                            let mut c = k.chars();
                            if let Some(f) = c.next() {
                                for l in f.to_lowercase() {
                                    let mut buf = [0u8; 4];
                                    push_escaped(out, l.encode_utf8(&mut buf));
                                }
                                push_escaped(out, c.as_str());
                            }
                        }
                    }
                } else {
                    push_escaped(out, k);
                }
                out.extend_from_slice(b"\":");
                let nested_top = top && !k.ends_with("EncryptionContext") && k != "Constraints";
                write_clean(out, val, nested_top);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_clean(out, x, top);
            }
            out.push(b']');
        }
        Value::String(s) => push_str(out, s),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, n);
        }
    }
}

/// Response elements CloudTrail keeps for KMS: the outcome of management
/// calls, never data or tokens. JSON text, empty for `null`.
pub fn response_elements(op: &str, response: &[u8]) -> Vec<u8> {
    const KEPT: &[&str] = &[
        "CreateKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "CreateGrant",
        "ReplicateKey",
    ];
    if !KEPT.contains(&op) {
        return Vec::new();
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(response) else {
        return Vec::new();
    };
    if let Value::Object(m) = &mut v {
        m.remove("GrantToken");
    }
    clean_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    /// Request parameters as CloudTrail shows them: camelCase member names,
    /// secrets and data left out.
    fn request_parameters(body: &Value) -> Value {
        fn camel(s: &str) -> String {
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        }
        fn clean(v: &Value, top: bool) -> Value {
            match v {
                Value::Object(m) => {
                    let mut out = Map::new();
                    for (k, val) in m {
                        if top && NEVER_LOGGED.contains(&k.as_str()) {
                            continue;
                        }
                        // Encryption context keys are data, not member names.
                        let key = if top { camel(k) } else { k.clone() };
                        let nested_top =
                            top && !k.ends_with("EncryptionContext") && k != "Constraints";
                        out.insert(key, clean(val, nested_top));
                    }
                    Value::Object(out)
                }
                Value::Array(a) => Value::Array(a.iter().map(|x| clean(x, top)).collect()),
                other => other.clone(),
            }
        }
        match body {
            Value::Object(m) if m.is_empty() => Value::Null,
            other => clean(other, true),
        }
    }

    fn params(body: &Value) -> Value {
        let raw = request_parameters_json(body);
        if raw.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&raw).unwrap()
    }

    #[test]
    fn request_parameters_leave_out_plaintext_and_keep_encryption_context_keys_verbatim() {
        let body = json!({"KeyId": "alias/a", "Plaintext": "c2VjcmV0", "EncryptionContext": {"Tenant": "x"}, "GrantTokens": ["t"]});
        assert_eq!(
            params(&body),
            json!({"keyId": "alias/a", "encryptionContext": {"Tenant": "x"}, "grantTokens": ["t"]})
        );
    }

    #[test]
    fn request_parameters_written_directly_equal_the_cleaned_json_tree() {
        let bodies = [
            json!({}),
            json!({"KeyId": "k", "NumberOfBytes": 32, "Ratio": 1.5, "DryRun": false, "X": null}),
            json!({"Constraints": {"EncryptionContextSubset": {"A\"q": "line\nbreak\u{1}"}},
                   "Operations": ["Encrypt", "Decrypt"], "Nested": [{"InnerKey": [1, {"Deep": true}]}]}),
            json!({"ÉtatKey": "ü", "Message": "secret", "Signature": "s", "Tags": [{"TagKey": "a", "TagValue": "b\\c"}]}),
            json!([1, "two"]),
        ];
        for body in bodies {
            assert_eq!(params(&body), request_parameters(&body), "{body}");
        }
    }

    #[test]
    fn escaping_is_found_at_every_position_of_a_word() {
        for len in 0..24 {
            let clean = "a".repeat(len);
            assert!(needs_no_escape(clean.as_bytes()));
            let high = "\u{e9}".repeat(len);
            assert!(needs_no_escape(high.as_bytes()));
            for pos in 0..len {
                for special in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
                    let mut b = clean.clone().into_bytes();
                    b[pos] = special;
                    assert!(!needs_no_escape(&b), "len {len} pos {pos} byte {special}");
                }
                // Bytes next to the special ones are clean.
                for ok in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff] {
                    let mut b = clean.clone().into_bytes();
                    b[pos] = ok;
                    assert!(needs_no_escape(&b), "len {len} pos {pos} byte {ok}");
                }
            }
        }
    }

    #[test]
    fn records_written_through_the_thread_memo_equal_records_written_afresh() {
        use ferrokms_iam::Principal;
        use ferrokms_kms::authz::AuthzRecord;
        use ferrokms_types::AccountId;
        let root = |a: &str| {
            identity(Principal::Root {
                account: AccountId::parse(a).unwrap(),
            })
        };
        let (a, b) = (root("111122223333"), root("444455556666"));
        let mut b_other_key = root("444455556666");
        b_other_key.access_key_id = "AKIAOTHER".into();
        let mut a_in_china = root("111122223333");
        a_in_china.region = ferrokms_types::Region::parse("cn-north-1").unwrap();
        let user = identity(Principal::User {
            account: AccountId::parse("111122223333").unwrap(),
            name: "alice".into(),
            path: "/".into(),
            id: "AIDAEXAMPLE".into(),
        });
        let decision = |key: &str, allowed: bool| AuthzRecord {
            action: "kms:Encrypt".into(),
            resource: format!("arn:aws:kms:us-east-1:111122223333:key/{key}"),
            allowed,
            reason: if allowed {
                ferrokms_authz::Reason::Allowed
            } else {
                ferrokms_authz::Reason::Unrecognized
            },
            decision: if allowed {
                "allow".into()
            } else {
                "because \"no\"".into()
            },
            statements: vec!["key policy #0 (Enable IAM User Permissions) Allow".into()],
        };
        let k1 = [decision("k1", true)];
        let k2 = [decision("k2", true)];
        let k1_denied = [decision("k1", false)];
        let ips = [
            Some("127.0.0.1".parse().unwrap()),
            Some("10.0.0.2".parse().unwrap()),
            None,
        ];
        // Each line changes one input from the line before (or none), so
        // every part of the memo is both reused and replaced.
        /// Caller, operation, region, address (index into `ips`), user
        /// agent, decisions, error.
        type Case<'a> = (
            Option<&'a crate::auth::Identity>,
            &'a str,
            &'a str,
            usize,
            Option<&'a str>,
            &'a [AuthzRecord],
            Option<(&'a str, Option<&'a str>)>,
        );
        let cases: Vec<Case<'_>> = vec![
            (Some(&a), "Encrypt", "us-east-1", 0, None, &k1, None),
            (Some(&a), "Encrypt", "us-east-1", 0, None, &k1, None),
            (Some(&b), "Encrypt", "us-east-1", 0, None, &k1, None),
            (
                Some(&b_other_key),
                "Encrypt",
                "us-east-1",
                0,
                None,
                &k1,
                None,
            ),
            (
                Some(&a_in_china),
                "Encrypt",
                "us-east-1",
                0,
                None,
                &k1,
                None,
            ),
            (Some(&user), "Encrypt", "us-east-1", 0, None, &k1, None),
            (None, "Encrypt", "us-east-1", 0, None, &k1, None),
            (Some(&a), "Decrypt", "us-east-1", 0, None, &k1, None),
            (Some(&a), "Decrypt", "eu-west-1", 0, None, &k1, None),
            (Some(&a), "Decrypt", "eu-west-1", 1, None, &k1, None),
            (Some(&a), "Decrypt", "eu-west-1", 2, None, &k1, None),
            (
                Some(&a),
                "Decrypt",
                "eu-west-1",
                2,
                Some("aws-cli/2"),
                &k1,
                None,
            ),
            (
                Some(&a),
                "Decrypt",
                "eu-west-1",
                2,
                Some("boto3"),
                &k1,
                None,
            ),
            (
                Some(&a),
                "Decrypt",
                "eu-west-1",
                2,
                Some("boto3"),
                &k2,
                None,
            ),
            (
                Some(&a),
                "Decrypt",
                "eu-west-1",
                2,
                Some("boto3"),
                &k1_denied,
                Some(("AccessDeniedException", Some("no"))),
            ),
            (
                Some(&a),
                "Decrypt",
                "eu-west-1",
                2,
                Some("boto3"),
                &k1_denied,
                None,
            ),
            (
                Some(&a),
                "Decrypt",
                "eu-west-1",
                2,
                Some("boto3"),
                &[],
                None,
            ),
            (
                Some(&b),
                "Decrypt",
                "eu-west-1",
                2,
                Some("boto3"),
                &[],
                None,
            ),
            (Some(&a), "Encrypt", "us-east-1", 0, None, &k1, None),
        ];
        let mut memo = Memo::default();
        for (i, (id, op, region, ip, agent, decisions, error)) in cases.into_iter().enumerate() {
            let input = EventInput {
                service: "kms",
                op,
                region,
                source_ip: ips[ip],
                user_agent: agent,
                identity: id,
                request_parameters: br#"{"keyId":"k1"}"#,
                response_elements: &[],
                error,
                request_id: "req-1",
                event_id: Some(*b"00000000-0000-4000-8000-000000000000"),
                decisions,
                now_ms: 1_795_486_163_712,
            };
            let mut through_memo = Vec::new();
            write_event(&mut through_memo, &input, Some(&mut memo));
            let afresh = event(input);
            assert_eq!(
                String::from_utf8(through_memo).unwrap(),
                String::from_utf8(afresh).unwrap(),
                "case {i}"
            );
        }
    }

    #[test]
    fn request_parameters_through_the_thread_memo_equal_parameters_written_afresh() {
        let bodies = [
            json!({"KeyId": "k1", "Plaintext": "AAAA", "EncryptionContext": {"a": "1", "b": "2"}}),
            // Only the never-logged plaintext differs: copied from the memo.
            json!({"KeyId": "k1", "Plaintext": "BBBB", "EncryptionContext": {"a": "1", "b": "2"}}),
            // The same context in another order is other text.
            json!({"KeyId": "k1", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}}),
            json!({"KeyId": "k2", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}}),
            json!({"KeyId": "k2", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}, "GrantTokens": ["t"]}),
            json!({"KeyId": "k2", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}, "GrantTokens": ["u"]}),
            json!({"KeyId": "k2", "Plaintext": "BBBB"}),
            json!({"Plaintext": "BBBB", "KeyId": "k2"}),
            json!({"KeyId": "k2", "Limit": 1}),
            json!({"KeyId": "k2", "Limit": 1.0}),
            json!({}),
            json!({"Plaintext": "only secret"}),
            json!({"KeyId": "k2"}),
            json!([1, 2]),
            json!({"KeyId": "k2"}),
        ];
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(
                String::from_utf8(request_parameters_json(body)).unwrap(),
                String::from_utf8(clean_json(body)).unwrap(),
                "body {i}"
            );
        }
    }

    #[test]
    fn resources_name_only_kms_keys_with_the_account_of_their_arn() {
        assert_eq!(
            key_arn_account("arn:aws:kms:us-east-1:111122223333:key/1234abcd"),
            Some("111122223333")
        );
        assert_eq!(
            key_arn_account("arn:aws-cn:kms:cn-north-1:444455556666:key/k"),
            Some("444455556666")
        );
        for not_a_key in [
            "arn:aws:kms:us-east-1:111122223333:alias/a",
            "arn:aws:iam::111122223333:root",
            "arn:aws:kms:us-east-1:111122223333",
            "*",
            "",
            "key/k",
        ] {
            assert_eq!(key_arn_account(not_a_key), None, "{not_a_key}");
        }
    }

    #[test]
    fn source_addresses_are_written_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.9.99.100",
            "192.168.100.255",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:10.0.0.1",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            write_ip(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), ip.to_string());
        }
    }

    #[test]
    fn request_member_names_are_camel_cased_as_cloudtrail_writes_them() {
        let body = json!({"KeyId": "k", "EncryptionContext": {"Dept": "x"}, "GrantTokens": ["t"],
                          "\u{c9}tat": 1, "Plaintext": "secret"});
        let text = String::from_utf8(request_parameters_json(&body)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"keyId": "k", "encryptionContext": {"Dept": "x"}, "grantTokens": ["t"], "\u{e9}tat": 1})
        );
    }

    #[test]
    fn escaping_matches_serde_json_for_every_ascii_byte_and_unicode() {
        let mut s: String = (0u8..128).map(char::from).collect();
        s.push_str("é☃😀");
        let mut out = Vec::new();
        push_str(&mut out, &s);
        assert_eq!(out, serde_json::to_vec(&s).unwrap());
    }

    fn identity(principal: ferrokms_iam::Principal) -> crate::auth::Identity {
        crate::auth::Identity {
            principal,
            region: ferrokms_types::Region::parse("us-east-1").unwrap(),
            service: "kms".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            temporary: false,
            session: None,
            signed_headers: Vec::new(),
        }
    }

    fn record(
        identity: Option<&crate::auth::Identity>,
        error: Option<(&str, Option<&str>)>,
    ) -> Value {
        record_of(identity, error, &two_decisions())
    }

    /// Two decisions on two keys: an allow on the first, a denial on the
    /// second.
    fn two_decisions() -> [ferrokms_kms::authz::AuthzRecord; 2] {
        [
            ferrokms_kms::authz::AuthzRecord {
                action: "kms:Encrypt".into(),
                resource: "arn:aws:kms:us-east-1:444455556666:key/k1".into(),
                allowed: true,
                reason: ferrokms_authz::Reason::Allowed,
                decision: "allow".into(),
                statements: vec!["key policy #0 (A \"quoted\" sid) Allow".into()],
            },
            ferrokms_kms::authz::AuthzRecord {
                action: "kms:ReEncryptTo".into(),
                resource: "arn:aws:kms:us-east-1:444455556666:key/k2".into(),
                allowed: false,
                reason: ferrokms_authz::Reason::NoAllow(ferrokms_authz::PolicySide::Identity),
                decision: "because no identity-based policy allows the kms:ReEncryptTo action"
                    .into(),
                statements: vec![],
            },
        ]
    }

    fn record_of(
        identity: Option<&crate::auth::Identity>,
        error: Option<(&str, Option<&str>)>,
        decisions: &[ferrokms_kms::authz::AuthzRecord],
    ) -> Value {
        let line = event(EventInput {
            service: "kms",
            op: "ReEncrypt",
            region: "us-east-1",
            source_ip: Some("127.0.0.1".parse().unwrap()),
            user_agent: Some("agent \"x\"\t1"),
            identity,
            request_parameters: br#"{"keyId":"k1"}"#,
            response_elements: &[],
            error,
            request_id: "req-1",
            event_id: None,
            decisions,
            now_ms: 1_795_486_163_712,
        });
        assert!(!line.contains(&b'\n'));
        serde_json::from_slice(&line).unwrap()
    }

    #[test]
    fn a_record_is_one_json_object_in_cloudtrail_shape_for_each_kind_of_caller() {
        use ferrokms_iam::Principal;
        use ferrokms_types::AccountId;
        let account = AccountId::parse("111122223333").unwrap();
        let root = identity(Principal::Root {
            account: account.clone(),
        });
        let r = record(Some(&root), None);
        assert_eq!(
            r["userIdentity"],
            json!({"type": "Root", "principalId": "111122223333", "arn": "arn:aws:iam::111122223333:root",
                   "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE"})
        );
        assert_eq!(r["eventVersion"], "1.08");
        assert_eq!(r["eventTime"], "2026-11-24T02:09:23Z");
        assert_eq!(r["eventSource"], "kms.amazonaws.com");
        assert_eq!(r["eventName"], "ReEncrypt");
        assert_eq!(r["sourceIPAddress"], "127.0.0.1");
        assert_eq!(r["userAgent"], "agent \"x\"\t1");
        assert_eq!(r["requestParameters"], json!({"keyId": "k1"}));
        assert_eq!(r["responseElements"], Value::Null);
        assert_eq!(r["requestID"], "req-1");
        assert_eq!(r["eventID"].as_str().map(str::len), Some(36));
        assert_eq!(r["readOnly"], true);
        assert_eq!(
            r["resources"],
            json!([{"accountId": "444455556666", "type": "AWS::KMS::Key",
                    "ARN": "arn:aws:kms:us-east-1:444455556666:key/k1"},
                   {"accountId": "444455556666", "type": "AWS::KMS::Key",
                    "ARN": "arn:aws:kms:us-east-1:444455556666:key/k2"}])
        );
        // The first decision's resource is the first of `resources`, so the
        // trace leaves it out; the second names its own key.
        assert!(r["ferrokmsAuthorization"][0].get("resource").is_none());
        assert_eq!(
            r["ferrokmsAuthorization"][1]["resource"],
            "arn:aws:kms:us-east-1:444455556666:key/k2"
        );
        assert_eq!(r["recipientAccountId"], "444455556666");
        assert_eq!(r["eventType"], "AwsApiCall");
        assert_eq!(r["managementEvent"], true);
        assert_eq!(r["eventCategory"], "Management");
        assert!(r.get("errorCode").is_none());
        assert_eq!(
            r["ferrokmsAuthorization"][0]["statements"][0],
            "key policy #0 (A \"quoted\" sid) Allow"
        );
        assert_eq!(r["ferrokmsAuthorization"][1]["allowed"], false);
        // A plain allow has no decision text; a denial keeps its reason.
        assert!(r["ferrokmsAuthorization"][0].get("decision").is_none());
        assert_eq!(r["ferrokmsAuthorization"][0]["allowed"], true);
        assert_eq!(
            r["ferrokmsAuthorization"][1]["decision"],
            "because no identity-based policy allows the kms:ReEncryptTo action"
        );

        let user = identity(Principal::User {
            account: account.clone(),
            name: "alice".into(),
            path: "/team/".into(),
            id: "AIDAEXAMPLE".into(),
        });
        let r = record(
            Some(&user),
            Some(("AccessDeniedException", Some("User: x is \"denied\""))),
        );
        assert_eq!(
            r["userIdentity"],
            json!({"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::111122223333:user/team/alice",
                   "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE", "userName": "alice"})
        );
        assert_eq!(r["errorCode"], "AccessDeniedException");
        assert_eq!(r["errorMessage"], "User: x is \"denied\"");

        let session = identity(Principal::AssumedRole {
            account,
            role_name: "kms-exports-role".into(),
            role_path: "/".into(),
            role_id: "AROAEXAMPLE".into(),
            session_name: "s1".into(),
        });
        let r = record(Some(&session), Some(("ValidationException", None)));
        assert_eq!(
            r["userIdentity"],
            json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:s1",
                   "arn": "arn:aws:sts::111122223333:assumed-role/kms-exports-role/s1",
                   "accountId": "111122223333", "accessKeyId": "AKIAEXAMPLE",
                   "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                       "arn": "arn:aws:iam::111122223333:role/kms-exports-role", "accountId": "111122223333",
                       "userName": "kms-exports-role"}, "attributes": {"mfaAuthenticated": "false"}}})
        );
        assert!(r.get("errorMessage").is_none());

        let r = record(None, Some(("UnrecognizedClientException", Some("bad"))));
        assert_eq!(r["userIdentity"], json!({"type": "Unknown"}));
    }

    /// The trace leaves out a resource equal to the record's first key and
    /// a plain "allow"; `AuthzRecord::from_audit` must give back exactly the
    /// decisions the request made, whichever fields were left out.
    #[test]
    fn the_short_trace_reads_back_as_the_decisions_that_were_made() {
        use ferrokms_kms::authz::AuthzRecord;
        let [allow, deny] = two_decisions();
        let grant_allow = AuthzRecord {
            reason: ferrokms_authz::Reason::AllowedByGrant,
            decision: "allow (grant)".into(),
            ..allow.clone()
        };
        let same_key_denied = AuthzRecord {
            resource: allow.resource.clone(),
            ..deny.clone()
        };
        let not_a_key = AuthzRecord {
            action: "kms:CreateKey".into(),
            resource: "*".into(),
            ..allow.clone()
        };
        let cases: Vec<Vec<AuthzRecord>> = vec![
            vec![allow.clone()],
            vec![allow.clone(), deny.clone()],
            vec![deny.clone(), allow.clone()],
            vec![grant_allow, same_key_denied],
            vec![not_a_key.clone()],
            vec![not_a_key, allow.clone()],
            vec![allow.clone(), allow],
            vec![],
        ];
        for decisions in cases {
            let r = record_of(None, None, &decisions);
            assert_eq!(AuthzRecord::from_audit(&r), decisions, "{r}");
        }
    }

    #[test]
    fn records_reach_the_file_and_rotation_keeps_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        for i in 0..10 {
            log.record(format!("{{\"eventName\":\"Encrypt\",\"n\":{i}}}").as_bytes());
        }
        log.close();
        let text = fs::read_to_string(dir.path().join(AUDIT_DIR).join(AUDIT_FILE)).unwrap();
        assert_eq!(text.lines().count(), 10);
        let path = dir.path().join(AUDIT_DIR).join(AUDIT_FILE);
        rotate(&path).unwrap();
        assert!(rotated(&path, 1).exists());
        assert_eq!(files(dir.path()).len(), 2);
    }

    #[test]
    fn records_are_fsynced_by_the_periodic_group_sync_without_a_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        let line = br#"{"eventName":"Encrypt"}"#;
        for _ in 0..100 {
            log.record(line);
        }
        let want = 100 * (line.len() as u64 + 1);
        // The rule is FLUSH_INTERVAL + SYNC_INTERVAL; a loaded test machine
        // gets up to 5 s before this counts as a failure.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while log.progress() != (want, want) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(log.progress(), (want, want));
        let on_disk = fs::metadata(dir.path().join(AUDIT_DIR).join(AUDIT_FILE))
            .unwrap()
            .len();
        assert_eq!(on_disk, want);
    }

    #[test]
    fn close_writes_and_fsyncs_every_queued_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        for i in 0..1000 {
            log.record(format!("{{\"n\":{i}}}").as_bytes());
        }
        log.close();
        let (written, synced) = log.progress();
        assert_eq!(written, synced);
        let text = fs::read_to_string(dir.path().join(AUDIT_DIR).join(AUDIT_FILE)).unwrap();
        assert_eq!(text.lines().count(), 1000);
        assert_eq!(text.len() as u64, written);
    }
}
