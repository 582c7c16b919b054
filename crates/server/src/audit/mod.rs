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

mod json;
pub mod lookup;
pub mod read;
mod record;
mod redact;

pub use record::{event, read_only, AuditRecord, EventInput};
use record::{write_event, Memo, RECORD_CAPACITY};
pub use redact::{request_parameters_json, response_elements, ParamsMemo};

/// The most a connection's memo keeps of one part of a record (bytes of
/// text): what a client can make the server hold per open connection,
/// however large its requests (connections are bounded by
/// `--max-connections`).
pub(crate) const MEMO_MAX_TEXT: usize = 4096;

/// What one connection's last audit record repeats for its next: the
/// request parameters' text ([`ParamsMemo`]) and the record's identity,
/// head and tail (`record::Memo`). A client's requests come one after
/// another on its connection and mostly share identity, address, operation,
/// key and decision, so most of each record is copied rather than written.
/// The memo lives with the connection (`listener::ConnInfo`), not with the
/// thread: a worker thread serving many connections in turn would find
/// another client's record in a per-thread memo and pay for the miss
/// (measured: docs/audit.md, "The memos, measured").
#[derive(Default)]
pub struct ConnMemo {
    /// The connection's last request parameters, reused when the next request's are the same.
    pub params: ParamsMemo,
    record: Memo,
}

impl std::fmt::Debug for ConnMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnMemo { .. }")
    }
}

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The audit trail's directory inside the data directory.
pub const AUDIT_DIR: &str = "audit";
/// The file being appended to; rotated ones get `.1`, `.2`...
pub const AUDIT_FILE: &str = "audit.jsonl";
/// How long a record may wait in memory before the writer hands it to the
/// kernel: what a `kill -9` can lose.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);
/// How long bytes may sit in the kernel's page cache before an fsync: with
/// [`FLUSH_INTERVAL`], what a power loss can lose. One fdatasync per
/// interval whatever the request rate (group commit), off the request path.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);
/// The file rotates once it reaches this size.
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// How many rotated files are kept; the oldest beyond them is deleted.
pub const KEEP_FILES: usize = 5;
/// Records waiting for the writer, at most: about two seconds of full load.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

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
    /// The data dir whose trail this is (`None` when disabled): what
    /// CloudTrail's LookupEvents reads back (`lookup`).
    data_dir: Option<PathBuf>,
    writer: Option<JoinHandle<()>>,
    syncer: Option<JoinHandle<()>>,
    state: Arc<SyncState>,
}

impl AuditLog {
    /// No audit trail (in-memory servers, `serve --no-audit`).
    pub fn disabled() -> AuditLog {
        AuditLog {
            enabled: false,
            data_dir: None,
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
            data_dir: Some(data_dir.to_path_buf()),
            writer: Some(writer),
            syncer: Some(syncer),
            state,
        })
    }

    /// The data dir the trail is written in; `None` when there is no trail.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Whether records are written at all (not for in-memory servers).
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
    /// its audit record, through the connection's memo when there is one.
    pub fn record_event(&self, input: EventInput<'_>, memo: Option<&mut ConnMemo>) {
        if !self.enabled {
            return;
        }
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::default();
        }
        BUF.with(|buf| match buf.try_borrow_mut() {
            Ok(mut buf) => {
                buf.clear();
                write_event(&mut buf, &input, memo.map(|m| &mut m.record));
                self.record(&buf);
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

/// The name of the `i`th rotated file: `audit.jsonl.1` is the newest.
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

#[cfg(test)]
mod tests {
    use super::*;

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

/// The memos against writing every record afresh, in the same run, with one
/// memo shared by clients taking turns (what a per-thread memo meets on a
/// busy worker) and with a memo per client (the connection's): `cargo test -p ferrokms-server --lib memo_benchmark -- --ignored
/// --nocapture` (with `--config 'profile.dev.opt-level=2'` or `--release`
/// for figures worth reading; docs/audit.md).
#[cfg(test)]
mod memo_benchmark {
    use super::record::{write_event, EventInput};
    use super::redact::{clean_json, request_parameters_json};
    use super::ConnMemo;
    use ferrokms_kms::authz::AuthzRecord;
    use std::time::Instant;

    fn identity(n: u32) -> crate::auth::Identity {
        crate::auth::Identity {
            principal: ferrokms_iam::Principal::User {
                account: ferrokms_types::AccountId::parse("111122223333").unwrap(),
                name: format!("app-{n}"),
                path: "/services/".into(),
                id: format!("AIDAEXAMPLE{n}"),
            },
            region: ferrokms_types::Region::parse("us-east-1").unwrap(),
            service: "kms".into(),
            access_key_id: format!("AKIAEXAMPLE{n}"),
            session: None,
            signed_headers: Vec::new(),
        }
    }

    /// Where the memos live.
    #[derive(Clone, Copy, PartialEq)]
    enum Memos {
        /// None: every record written afresh.
        Afresh,
        /// One for all clients, as a per-thread memo would be when the
        /// clients' requests land on one worker thread in turn.
        Shared,
        /// One per client, as with the connection's memo.
        PerClient,
    }

    /// ns per record (request parameters and record) over `n` Encrypt
    /// requests from `clients` clients taking turns, each using `keys` keys
    /// in turn (`clients * keys` divides 64).
    fn run(memos: Memos, clients: u32, keys: u32, n: usize) -> f64 {
        let all_keys = clients * keys;
        let ids: Vec<_> = (0..clients).map(identity).collect();
        let decisions: Vec<Vec<AuthzRecord>> = (0..all_keys)
            .map(|c| {
                vec![AuthzRecord {
                    action: "kms:Encrypt".into(),
                    resource: format!(
                        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-12345678{c:04}"
                    ),
                    allowed: true,
                    reason: ferrokms_authz::Reason::Allowed,
                    decision: "allow".into(),
                    statements: vec![
                        "key policy #0 (Enable IAM User Permissions) Allow".into(),
                        "identity policy app-encrypt #0 Allow".into(),
                    ],
                }]
            })
            .collect();
        // Each request another plaintext (never logged), the same key and
        // context as the client's last.
        let bodies: Vec<serde_json::Value> = (0..64u32)
            .map(|i| {
                serde_json::json!({
                    "KeyId": format!("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-12345678{:04}", i % all_keys),
                    "Plaintext": format!("cGxhaW50ZXh0IG51bWJlciB7aX0={i}"),
                    "EncryptionContext": {"app": "billing", "tenant": "t-42"},
                })
            })
            .collect();
        let mut conn_memos: Vec<ConnMemo> = (0..clients).map(|_| ConnMemo::default()).collect();
        let mut out = Vec::with_capacity(2048);
        let mut bytes = 0usize;
        let start = Instant::now();
        for i in 0..n {
            let k = i % all_keys as usize;
            let c = k % clients as usize;
            let body = &bodies[(i % 64) - (i % 64) % all_keys as usize + k];
            let mut memo = match memos {
                Memos::Afresh => None,
                Memos::Shared => Some(&mut conn_memos[0]),
                Memos::PerClient => Some(&mut conn_memos[c]),
            };
            let params = match memo.as_deref_mut() {
                Some(m) => request_parameters_json(body, Some(&mut m.params)),
                None => clean_json(body),
            };
            let input = EventInput {
                service: "kms",
                op: "Encrypt",
                region: "us-east-1",
                source_ip: Some(std::net::IpAddr::from([10, 0, 0, 10 + c as u8])),
                user_agent: Some(
                    "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 exe/x86_64.ubuntu.22 prompt/off command/kms.encrypt",
                ),
                identity: Some(&ids[c]),
                request_parameters: &params,
                response_elements: &[],
                error: None,
                request_id: "4f8f0b8e-7c2a-4b1e-9d3a-1c2b3d4e5f60",
                event_id: Some(*b"00000000-0000-4000-8000-000000000000"),
                decisions: &decisions[k],
                now_ms: 1_795_486_163_712 + i as i64,
            };
            out.clear();
            write_event(&mut out, &input, memo.map(|m| &mut m.record));
            bytes += out.len();
        }
        let ns = start.elapsed().as_nanos() as f64 / n as f64;
        std::hint::black_box(bytes);
        ns
    }

    #[test]
    #[ignore = "a benchmark: run by hand with --ignored --nocapture"]
    fn memo_benchmark() {
        const N: usize = 200_000;
        const ROUNDS: usize = 9;
        let modes = [Memos::Afresh, Memos::Shared, Memos::PerClient];
        for (clients, keys) in [(1u32, 1u32), (2, 1), (4, 1), (1, 4)] {
            let mut ns: [Vec<f64>; 3] = Default::default();
            for m in modes {
                run(m, clients, keys, N / 10);
            }
            for round in 0..ROUNDS {
                // Each round starts with another variant.
                for k in 0..3 {
                    let m = (round + k) % 3;
                    ns[m].push(run(modes[m], clients, keys, N));
                }
            }
            let mut line = format!("{clients} client(s) taking turns, {keys} key(s) each in turn, ns per record (params + record), median [min-max] of {ROUNDS}:");
            for (name, v) in ["afresh", "one memo for all", "a memo per client"]
                .iter()
                .zip(ns.iter_mut())
            {
                v.sort_by(f64::total_cmp);
                line += &format!(
                    " {name} {:.0} [{:.0}-{:.0}];",
                    v[ROUNDS / 2],
                    v[0],
                    v[ROUNDS - 1]
                );
            }
            println!("{line}");
        }
    }
}
