//! One audit record: what the edge knows about a finished request
//! ([`EventInput`]), the fast writer that turns it into a JSON line on the
//! request's thread, and the typed [`AuditRecord`] with the same field names
//! (CloudTrail's), which a plain serde serialization writes as the same bytes
//! (tested over generated records below).

use super::json::{push_opt_str, push_raw, push_str, push_str_parts};

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
                | "Encapsulate"
                | "Decapsulate"
        )
        || op.starts_with("GenerateDataKey")
        || op.starts_with("Simulate")
}

/// What the edge knows about one finished request.
pub struct EventInput<'a> {
    /// `kms`, `iam`, `sts`, or `kms-xks-proxy` (the XKS proxy, `crate::xks`).
    pub service: &'a str,
    /// The operation, e.g. `Encrypt` (`eventName`).
    pub op: &'a str,
    /// The region the request was signed for (`awsRegion`).
    pub region: &'a str,
    /// The client's address (`sourceIPAddress`).
    pub source_ip: Option<std::net::IpAddr>,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<&'a str>,
    /// The authenticated caller; `None` when authentication failed.
    pub identity: Option<&'a crate::auth::Identity>,
    /// JSON from [`request_parameters_json`]; empty for `null`.
    pub request_parameters: &'a [u8],
    /// JSON from [`response_elements`]; empty for `null`.
    pub response_elements: &'a [u8],
    /// `(code, message)` of a failed request.
    pub error: Option<(&'a str, Option<&'a str>)>,
    /// The request id returned to the client (`requestID`).
    pub request_id: &'a str,
    /// The record's `eventID` when the request made it already (KMS
    /// requests: GetKeyLastUsage names it); otherwise a fresh one.
    pub event_id: Option<[u8; 36]>,
    /// The authorization decisions the request took, in order.
    pub decisions: &'a [ferrokms_kms::authz::AuthzRecord],
    /// When the request finished, milliseconds since the Unix epoch (`eventTime`).
    pub now_ms: i64,
}

/// Typical size of one record; the buffer rarely grows past it.
pub(super) const RECORD_CAPACITY: usize = 1536;

/// One audit record in CloudTrail's event shape, plus the authorization
/// trace under `ferrokmsAuthorization`, as one JSON line (no newline).
///
/// This runs on the request's thread for every request, so it writes the
/// JSON straight into one buffer: no intermediate JSON tree, no `String` per
/// field, no formatting machinery for ids and times. (With serde's derive and
/// a `Value` for the identity it cost a fifth of the whole request:
/// docs/performance.md, "Figures behind comments in the code".)
pub fn event(input: EventInput<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_CAPACITY);
    write_event(&mut out, &input, None);
    out
}

/// The parts of the last record a connection wrote that its next record
/// repeats byte for byte, with what they were made from. A client sending
/// request after request (the usual load) has the same identity,
/// operation, address, key and decision each time: comparing those inputs
/// and copying the text costs a fraction of escaping and writing it again;
/// a miss costs a little more than writing afresh (both measured in the
/// same run: docs/audit.md, "The memos, measured"). Each part is compared
/// in full, so a record never borrows another's text.
#[derive(Default)]
pub(super) struct Memo {
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

#[derive(Default)]
struct HeadKey {
    service: String,
    op: String,
    region: String,
    source_ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
}

#[derive(Default)]
struct TailKey {
    op: String,
    caller_account: String,
    decisions: Vec<ferrokms_kms::authz::AuthzRecord>,
}

/// Copies the memo's text when it was made from inputs that are `same` as
/// this record's; otherwise writes the text straight into the record and
/// then copies it into the memo, and `refill`s the memo's key in place
/// (reusing its allocations), so that a miss costs little more than writing
/// afresh.
fn memoized<K>(
    out: &mut Vec<u8>,
    memo: Option<(&mut Option<K>, &mut Vec<u8>)>,
    same: impl FnOnce(&K) -> bool,
    refill: impl FnOnce(&mut Option<K>),
    write: impl FnOnce(&mut Vec<u8>),
) {
    match memo {
        Some((k, text)) if k.as_ref().is_some_and(same) => out.extend_from_slice(text),
        Some((k, text)) => {
            let start = out.len();
            write(out);
            // A connection keeps at most this much of a part: a long user
            // agent is written afresh each time rather than held.
            if out.len() - start > super::MEMO_MAX_TEXT {
                return;
            }
            text.clear();
            text.extend_from_slice(&out[start..]);
            refill(k);
        }
        None => write(out),
    }
}

/// `kept` becomes `s`, in its own allocation when it is big enough.
fn refill_str(kept: &mut String, s: &str) {
    kept.clear();
    kept.push_str(s);
}

pub(super) fn write_event(out: &mut Vec<u8>, input: &EventInput<'_>, mut memo: Option<&mut Memo>) {
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
                |k| match k {
                    Some((akid, principal, p)) => {
                        akid.clone_from(&id.access_key_id);
                        principal.clone_from(&id.principal);
                        *p = partition;
                    }
                    None => *k = Some((id.access_key_id.clone(), id.principal.clone(), partition)),
                },
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
        |k| {
            let k = k.get_or_insert_with(HeadKey::default);
            refill_str(&mut k.service, input.service);
            refill_str(&mut k.op, input.op);
            refill_str(&mut k.region, input.region);
            k.source_ip = input.source_ip;
            match (&mut k.user_agent, input.user_agent) {
                (Some(kept), Some(ua)) => refill_str(kept, ua),
                (kept, ua) => *kept = ua.map(str::to_string),
            }
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
        |k| {
            let k = k.get_or_insert_with(TailKey::default);
            refill_str(&mut k.op, input.op);
            refill_str(&mut k.caller_account, caller_account);
            input.decisions.clone_into(&mut k.decisions);
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
        // (`AuditRecord::decisions`).
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
    match ferrokms_textfast::split_fields::<6>(arn, b':')? {
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

/// One audit record as a value: the fields of CloudTrail's event record (the
/// names are CloudTrail's), in the order the fast writer ([`event`]) writes
/// them, plus the authorization trace under `ferrokmsAuthorization`.
///
/// `serde_json::to_vec` of the record that [`AuditRecord::from_input`] makes
/// is byte for byte what the fast writer writes for the same input (a test
/// below checks it over generated records), and every line the writer
/// writes parses back into one ([`super::read`]). The fast writer stays on
/// the request path: it writes the same text without building this value
/// (docs/audit.md, "What it costs").
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct AuditRecord {
    /// Always `1.08`.
    pub event_version: String,
    /// Who made the request.
    pub user_identity: UserIdentity,
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub event_time: String,
    /// `kms.amazonaws.com`, `iam.amazonaws.com` or `sts.amazonaws.com`.
    pub event_source: String,
    /// The operation, e.g. `Encrypt`.
    pub event_name: String,
    /// The region the request was signed for.
    pub aws_region: String,
    /// The client's address.
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// The request as [`super::redact`] keeps it; `None` for an empty body.
    pub request_parameters: Option<serde_json::Value>,
    /// The outcome of a management call ([`super::response_elements`]).
    pub response_elements: Option<serde_json::Value>,
    /// The request id returned to the client.
    #[serde(rename = "requestID")]
    pub request_id: String,
    /// A fresh UUID per record.
    #[serde(rename = "eventID")]
    pub event_id: String,
    /// Whether the operation changes nothing.
    pub read_only: bool,
    /// The KMS keys the request's decisions were about, each once.
    pub resources: Vec<Resource>,
    /// Always `AwsApiCall`.
    pub event_type: String,
    /// Always `true`.
    pub management_event: bool,
    /// The account of the first key in `resources`, else the caller's.
    pub recipient_account_id: String,
    /// Always `Management`.
    pub event_category: String,
    /// The error code of a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The error message of a failed request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The request's authorization decisions, in the order they were made.
    pub ferrokms_authorization: Vec<TraceEntry>,
}

/// `userIdentity`: the caller as CloudTrail describes each kind.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type")]
pub enum UserIdentity {
    Root(RootIdentity),
    #[serde(rename = "IAMUser")]
    IamUser(IamUserIdentity),
    AssumedRole(AssumedRoleIdentity),
    /// A request that was not authenticated.
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct RootIdentity {
    /// The account id.
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub access_key_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct IamUserIdentity {
    /// The user's unique id (`AIDA...`).
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub access_key_id: String,
    pub user_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct AssumedRoleIdentity {
    /// `ROLE_ID:SESSION_NAME`.
    pub principal_id: String,
    /// The session's ARN (`arn:...:sts::ACCOUNT:assumed-role/ROLE/SESSION`).
    pub arn: String,
    pub account_id: String,
    pub access_key_id: String,
    pub session_context: SessionContext,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct SessionContext {
    pub session_issuer: SessionIssuer,
    pub attributes: SessionAttributes,
}

/// The role a session was assumed from.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct SessionIssuer {
    /// Always `Role`.
    #[serde(rename = "type")]
    pub kind: String,
    pub principal_id: String,
    pub arn: String,
    pub account_id: String,
    pub user_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[serde(default)]
pub struct SessionAttributes {
    /// Always `"false"` (a string, as CloudTrail writes it).
    pub mfa_authenticated: String,
}

/// One entry of `resources`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Resource {
    #[serde(rename = "accountId")]
    pub account_id: String,
    /// Always `AWS::KMS::Key`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "ARN")]
    pub arn: String,
}

/// One decision of `ferrokmsAuthorization`, as written: short forms left
/// out ([`AuditRecord::decisions`] puts them back).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TraceEntry {
    pub action: String,
    /// Left out when it is the record's first `resources` ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    pub allowed: bool,
    /// Left out for a plain allow ([`ferrokms_kms::authz::PLAIN_ALLOW`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    pub statements: Vec<String>,
}

impl UserIdentity {
    /// The caller's ARN; empty for an unknown caller.
    pub fn arn(&self) -> &str {
        match self {
            UserIdentity::Root(r) => &r.arn,
            UserIdentity::IamUser(u) => &u.arn,
            UserIdentity::AssumedRole(s) => &s.arn,
            UserIdentity::Unknown => "",
        }
    }

    /// The caller's account; empty for an unknown caller.
    pub fn account_id(&self) -> &str {
        match self {
            UserIdentity::Root(r) => &r.account_id,
            UserIdentity::IamUser(u) => &u.account_id,
            UserIdentity::AssumedRole(s) => &s.account_id,
            UserIdentity::Unknown => "",
        }
    }

    /// The role ARN of a session.
    pub fn session_issuer_arn(&self) -> Option<&str> {
        match self {
            UserIdentity::AssumedRole(s) => Some(&s.session_context.session_issuer.arn),
            _ => None,
        }
    }
}

impl AuditRecord {
    /// The decisions of the request, with what the writer leaves out to
    /// keep records short put back: a decision's `resource` when it is the
    /// record's first `resources` ARN, and its `decision` when it is a
    /// plain allow ([`ferrokms_kms::authz::PLAIN_ALLOW`]). The reason is
    /// read back from AWS's words ([`ferrokms_authz::Reason::from_decision_text`]).
    pub fn decisions(&self) -> Vec<ferrokms_kms::authz::AuthzRecord> {
        let first_arn = self.resources.first().map_or("", |r| r.arn.as_str());
        self.ferrokms_authorization
            .iter()
            .filter_map(|d| {
                let decision = match &d.decision {
                    Some(text) => text.clone(),
                    None if d.allowed => ferrokms_kms::authz::PLAIN_ALLOW.to_string(),
                    None => return None,
                };
                Some(ferrokms_kms::authz::AuthzRecord {
                    action: d.action.clone(),
                    resource: d.resource.clone().unwrap_or_else(|| first_arn.to_string()),
                    allowed: d.allowed,
                    reason: ferrokms_authz::Reason::from_decision_text(d.allowed, &decision),
                    decision,
                    statements: d.statements.clone(),
                })
            })
            .collect()
    }

    /// The record of a request, built field by field: the plain
    /// (allocating) construction of what [`event`] writes as text. The
    /// `eventID` is `event_id`, or the input's own when it has one.
    pub fn from_input(input: &EventInput<'_>, event_id: [u8; 36]) -> AuditRecord {
        let partition = |id: &crate::auth::Identity| id.region.partition();
        let user_identity = match input.identity {
            None => UserIdentity::Unknown,
            Some(id) => user_identity(id, partition(id)),
        };
        let caller_account = input
            .identity
            .map(|i| i.principal.account().as_str().to_string())
            .unwrap_or_default();
        let mut resources: Vec<Resource> = Vec::new();
        for d in input.decisions {
            if let Some(account) = key_arn_account(&d.resource) {
                if !resources.iter().any(|r| r.arn == d.resource) {
                    resources.push(Resource {
                        account_id: account.to_string(),
                        kind: "AWS::KMS::Key".to_string(),
                        arn: d.resource.clone(),
                    });
                }
            }
        }
        let first_arn = resources.first().map(|r| r.arn.clone());
        let ferrokms_authorization = input
            .decisions
            .iter()
            .map(|d| TraceEntry {
                action: d.action.clone(),
                resource: (first_arn.as_deref() != Some(d.resource.as_str()))
                    .then(|| d.resource.clone()),
                allowed: d.allowed,
                decision: (!d.allowed || d.decision != ferrokms_kms::authz::PLAIN_ALLOW)
                    .then(|| d.decision.clone()),
                statements: d.statements.clone(),
            })
            .collect();
        let json = |bytes: &[u8]| {
            (!bytes.is_empty()).then(|| serde_json::from_slice(bytes).unwrap_or_default())
        };
        AuditRecord {
            event_version: "1.08".to_string(),
            user_identity,
            event_time: crate::query::iso8601(input.now_ms),
            event_source: format!("{}.amazonaws.com", input.service),
            event_name: input.op.to_string(),
            aws_region: input.region.to_string(),
            source_ip_address: input.source_ip.map(|ip| ip.to_string()),
            user_agent: input.user_agent.map(str::to_string),
            request_parameters: json(input.request_parameters),
            response_elements: json(input.response_elements),
            request_id: input.request_id.to_string(),
            event_id: String::from_utf8_lossy(&input.event_id.unwrap_or(event_id)).into_owned(),
            read_only: read_only(input.op),
            recipient_account_id: resources
                .first()
                .map_or(caller_account, |r| r.account_id.clone()),
            resources,
            event_type: "AwsApiCall".to_string(),
            management_event: true,
            event_category: "Management".to_string(),
            error_code: input.error.map(|(code, _)| code.to_string()),
            error_message: input.error.and_then(|(_, m)| m.map(str::to_string)),
            ferrokms_authorization,
        }
    }
}

/// [`UserIdentity`] of an authenticated caller.
fn user_identity(id: &crate::auth::Identity, partition: &str) -> UserIdentity {
    use ferrokms_iam::Principal;
    let access_key_id = id.access_key_id.clone();
    match &id.principal {
        Principal::Root { account } => UserIdentity::Root(RootIdentity {
            principal_id: account.to_string(),
            arn: format!("arn:{partition}:iam::{account}:root"),
            account_id: account.to_string(),
            access_key_id,
        }),
        Principal::User {
            account,
            name,
            path,
            id: uid,
        } => UserIdentity::IamUser(IamUserIdentity {
            principal_id: uid.clone(),
            arn: format!("arn:{partition}:iam::{account}:user{path}{name}"),
            account_id: account.to_string(),
            access_key_id,
            user_name: name.clone(),
        }),
        Principal::AssumedRole {
            account,
            role_name,
            role_path,
            role_id,
            session_name,
        } => UserIdentity::AssumedRole(AssumedRoleIdentity {
            principal_id: format!("{role_id}:{session_name}"),
            arn: format!("arn:{partition}:sts::{account}:assumed-role/{role_name}/{session_name}"),
            account_id: account.to_string(),
            access_key_id,
            session_context: SessionContext {
                session_issuer: SessionIssuer {
                    kind: "Role".to_string(),
                    principal_id: role_id.clone(),
                    arn: format!("arn:{partition}:iam::{account}:role{role_path}{role_name}"),
                    account_id: account.to_string(),
                    user_name: role_name.clone(),
                },
                attributes: SessionAttributes {
                    mfa_authenticated: "false".to_string(),
                },
            },
        }),
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
