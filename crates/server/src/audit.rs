//! The audit trail: one record per request, in CloudTrail's event shape,
//! as JSON lines under `DATA_DIR/audit/`.
//!
//! Requests hand their record to a bounded channel and go on; one writer
//! thread appends batches to the file and flushes each batch to the kernel
//! within [`FLUSH_INTERVAL`], so a `kill -9` of the server loses at most the
//! records of the last few milliseconds (a power loss: whatever the kernel
//! had not written; records are not fsynced one by one). The file rotates at
//! [`MAX_FILE_BYTES`], keeping [`KEEP_FILES`] older files. If the writer
//! falls behind by more than the channel's capacity, requests still complete
//! and the number of records dropped is written to the log and the next
//! record (`ferrokmsDroppedBefore`).

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Map, Value};

pub const AUDIT_DIR: &str = "audit";
pub const AUDIT_FILE: &str = "audit.jsonl";
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(5);
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
pub const KEEP_FILES: usize = 5;
const CHANNEL_CAPACITY: usize = 65_536;

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

/// Sends records to the writer thread; cheap to share.
pub struct AuditLog {
    sender: Option<SyncSender<Vec<u8>>>,
    dropped: AtomicU64,
    writer: Option<JoinHandle<()>>,
}

impl AuditLog {
    /// No audit trail (in-memory servers).
    pub fn disabled() -> AuditLog {
        AuditLog {
            sender: None,
            dropped: AtomicU64::new(0),
            writer: None,
        }
    }

    /// Starts the writer for `DATA_DIR/audit/audit.jsonl`.
    pub fn open(data_dir: &Path) -> std::io::Result<AuditLog> {
        let dir = data_dir.join(AUDIT_DIR);
        fs::create_dir_all(&dir)?;
        let path = dir.join(AUDIT_FILE);
        let file = open_append(&path)?;
        let (sender, receiver) = sync_channel(CHANNEL_CAPACITY);
        let writer = std::thread::Builder::new()
            .name("ferrokms-audit".into())
            .spawn(move || write_loop(receiver, path, file))?;
        Ok(AuditLog {
            sender: Some(sender),
            dropped: AtomicU64::new(0),
            writer: Some(writer),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Queues one record (a JSON object, without the newline).
    pub fn record(&self, line: Vec<u8>) {
        let Some(sender) = &self.sender else { return };
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let note = format!("{{\"ferrokmsDroppedRecords\":{dropped}}}").into_bytes();
            let _ = sender.try_send(note);
        }
        match sender.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(10_000) {
                    tracing::warn!(dropped = n, "audit writer is behind; records dropped");
                }
            }
        }
    }

    /// Stops accepting records and waits for the writer to flush the rest.
    pub fn close(&mut self) {
        self.sender.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
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

fn write_loop(receiver: Receiver<Vec<u8>>, path: PathBuf, file: File) {
    let mut size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut out = BufWriter::with_capacity(256 * 1024, file);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(4096);
    loop {
        // Sleep, then drain: the writer never blocks on the channel while
        // records arrive, so senders never have to wake it, and each flush
        // writes a whole interval's worth of records in few system calls.
        std::thread::sleep(FLUSH_INTERVAL);
        let mut disconnected = false;
        loop {
            match receiver.try_recv() {
                Ok(v) => batch.push(v),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        if batch.is_empty() {
            if disconnected {
                let _ = out.flush();
                return;
            }
            continue;
        }
        for line in batch.drain(..) {
            if out.write_all(&line).is_err() || out.write_all(b"\n").is_err() {
                tracing::error!("audit log write failed");
                continue;
            }
            size += line.len() as u64 + 1;
        }
        if out.flush().is_err() {
            tracing::error!("audit log flush failed");
        }
        if size >= MAX_FILE_BYTES {
            match rotate(&path) {
                Ok(f) => {
                    out = BufWriter::with_capacity(256 * 1024, f);
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

/// Request parameters as CloudTrail shows them: camelCase member names,
/// secrets and data left out.
pub fn request_parameters(body: &Value) -> Value {
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
                    let nested_top = top && !k.ends_with("EncryptionContext") && k != "Constraints";
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parameters_leave_out_plaintext_and_keep_encryption_context_keys_verbatim() {
        let body = json!({"KeyId": "alias/a", "Plaintext": "c2VjcmV0", "EncryptionContext": {"Tenant": "x"}, "GrantTokens": ["t"]});
        let p = request_parameters(&body);
        assert_eq!(
            p,
            json!({"keyId": "alias/a", "encryptionContext": {"Tenant": "x"}, "grantTokens": ["t"]})
        );
    }

    #[test]
    fn records_reach_the_file_and_rotation_keeps_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open(dir.path()).unwrap();
        for i in 0..10 {
            log.record(format!("{{\"eventName\":\"Encrypt\",\"n\":{i}}}").into_bytes());
        }
        log.close();
        let text = fs::read_to_string(dir.path().join(AUDIT_DIR).join(AUDIT_FILE)).unwrap();
        assert_eq!(text.lines().count(), 10);
        let path = dir.path().join(AUDIT_DIR).join(AUDIT_FILE);
        rotate(&path).unwrap();
        assert!(rotated(&path, 1).exists());
        assert_eq!(files(dir.path()).len(), 2);
    }
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
    /// Already sanitized with [`request_parameters`].
    pub request_parameters: Value,
    pub response_elements: Value,
    /// `(code, message)` of a failed request.
    pub error: Option<(&'a str, Option<&'a str>)>,
    pub request_id: &'a str,
    pub decisions: &'a [ferrokms_kms::authz::AuthzRecord],
    pub now_ms: i64,
}

fn user_identity(identity: Option<&crate::auth::Identity>) -> Value {
    use ferrokms_iam::Principal;
    let Some(id) = identity else {
        return json!({"type": "Unknown"});
    };
    let partition = id.region.partition();
    let p = &id.principal;
    match p {
        Principal::Root { account } => json!({
            "type": "Root",
            "principalId": account.as_str(),
            "arn": p.arn(partition),
            "accountId": account.as_str(),
            "accessKeyId": id.access_key_id,
        }),
        Principal::User {
            account,
            name,
            id: uid,
            ..
        } => json!({
            "type": "IAMUser",
            "principalId": uid,
            "arn": p.arn(partition),
            "accountId": account.as_str(),
            "accessKeyId": id.access_key_id,
            "userName": name,
        }),
        Principal::AssumedRole {
            account,
            role_name,
            role_id,
            ..
        } => json!({
            "type": "AssumedRole",
            "principalId": p.user_id(),
            "arn": p.arn(partition),
            "accountId": account.as_str(),
            "accessKeyId": id.access_key_id,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": role_id,
                    "arn": p.role_arn(partition),
                    "accountId": account.as_str(),
                    "userName": role_name,
                },
                "attributes": {"mfaAuthenticated": "false"},
            },
        }),
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Resource<'a> {
    account_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ARN")]
    arn: &'a str,
}

/// The record, serialized straight from borrowed data (no intermediate
/// JSON tree: this runs once per request).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    event_version: &'static str,
    user_identity: Value,
    event_time: String,
    event_source: String,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: Option<String>,
    user_agent: Option<&'a str>,
    request_parameters: &'a Value,
    response_elements: &'a Value,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: String,
    read_only: bool,
    resources: Vec<Resource<'a>>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    ferrokms_authorization: &'a [ferrokms_kms::authz::AuthzRecord],
}

/// One audit record in CloudTrail's event shape, plus the authorization
/// trace under `ferrokmsAuthorization`, as one JSON line (no newline).
pub fn event(input: EventInput<'_>) -> Vec<u8> {
    let mut resources: Vec<Resource<'_>> = Vec::new();
    for d in input.decisions {
        let is_key = d.resource.starts_with("arn:")
            && d.resource.contains(":kms:")
            && d.resource.contains(":key/");
        if is_key && !resources.iter().any(|r| r.arn == d.resource) {
            let account = d.resource.split(':').nth(4).unwrap_or("");
            resources.push(Resource {
                account_id: account,
                kind: "AWS::KMS::Key",
                arn: &d.resource,
            });
        }
    }
    let caller_account = input
        .identity
        .map(|i| i.principal.account().as_str())
        .unwrap_or_default();
    let recipient = resources
        .first()
        .map(|r| r.account_id)
        .unwrap_or(caller_account);
    let e = Event {
        event_version: "1.08",
        user_identity: user_identity(input.identity),
        event_time: crate::query::iso8601(input.now_ms),
        event_source: format!("{}.amazonaws.com", input.service),
        event_name: input.op,
        aws_region: input.region,
        source_ip_address: input.source_ip.map(|ip| ip.to_string()),
        user_agent: input.user_agent,
        request_parameters: &input.request_parameters,
        response_elements: &input.response_elements,
        request_id: input.request_id,
        event_id: crate::ids::unique_id(),
        read_only: read_only(input.op),
        resources,
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: recipient,
        event_category: "Management",
        error_code: input.error.map(|(c, _)| c),
        error_message: input.error.and_then(|(_, m)| m),
        ferrokms_authorization: input.decisions,
    };
    serde_json::to_vec(&e).unwrap_or_default()
}

/// Response elements CloudTrail keeps for KMS: the outcome of management
/// calls, never data or tokens.
pub fn response_elements(op: &str, response: &[u8]) -> Value {
    const KEPT: &[&str] = &[
        "CreateKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "CreateGrant",
        "ReplicateKey",
    ];
    if !KEPT.contains(&op) {
        return Value::Null;
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(response) else {
        return Value::Null;
    };
    if let Value::Object(m) = &mut v {
        m.remove("GrantToken");
    }
    request_parameters(&v)
}
