//! Reading the audit trail newest first, a page at a time, for CloudTrail's
//! LookupEvents (`crate::cloudtrail_api`): the files of the trail from the
//! newest, each read backwards in chunks of [`CHUNK`] bytes, each line a
//! typed [`AuditRecord`] ([`super::read::parse`]).
//!
//! Bounded work per call: one call reads at most [`SCAN_BYTES`] of the
//! trail (plus the rest of the line it is in) and holds at most one chunk
//! and one line (a line over [`MAX_LINE`] is skipped); when the bound is
//! reached before the page is full, the page comes back shorter, with a
//! position to go on from ([`Position`], the caller's `NextToken`).
//!
//! Visibility: an account sees the records of its own callers, and the
//! records of other accounts' callers on its own keys
//! (`recipientAccountId`, as CloudTrail delivers a cross-account call to
//! both accounts) without their authorization trace, which names the
//! other account's policies. Records of unauthenticated requests have no
//! account and are never seen.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::read::{parse, ReadError};
use super::{files, AuditRecord};

/// The most bytes of the trail one call reads.
pub const SCAN_BYTES: u64 = 8 * 1024 * 1024;
/// The size of one backwards read.
pub const CHUNK: u64 = 256 * 1024;
/// A line longer than this is skipped (a record is far shorter: request
/// bodies are at most 1 MiB).
pub const MAX_LINE: usize = 4 * 1024 * 1024;
/// How much older than `StartTime` a record may be before the scan stops:
/// records are appended when their request ends, so the file is in time
/// order only to within the longest request.
const START_SLACK_SECONDS: i64 = 300;

/// A place in the trail: everything before `offset` in the file whose
/// inode is `file` (a rotated file keeps its inode) is yet to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The file's inode number.
    pub file: u64,
    /// The byte offset of the start of the last line read.
    pub offset: u64,
}

impl Position {
    /// The position as a `NextToken`.
    pub fn token(&self) -> String {
        format!("{:x}-{:x}", self.file, self.offset)
    }

    /// A `NextToken` read back; `None` when it is not one.
    pub fn from_token(token: &str) -> Option<Position> {
        let (f, o) = token.split_once('-')?;
        let parse = |s: &str| {
            (!s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u64::from_str_radix(s, 16).ok())
                .flatten()
        };
        Some(Position {
            file: parse(f)?,
            offset: parse(o)?,
        })
    }
}

/// The one lookup attribute a call may filter by (the model's
/// `LookupAttributeKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    /// `eventID`.
    EventId(String),
    /// `eventName`.
    EventName(String),
    /// `readOnly`.
    ReadOnly(bool),
    /// The caller's name ([`username`]).
    Username(String),
    /// The type of one of `resources` (`AWS::KMS::Key`).
    ResourceType(String),
    /// The ARN, or the last part of the ARN (a key id), of one of `resources`.
    ResourceName(String),
    /// `eventSource` (`kms.amazonaws.com`).
    EventSource(String),
    /// The access key id that signed the request.
    AccessKeyId(String),
}

/// What to look up.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    /// The account whose events these are.
    pub account: &'a str,
    /// The filter, if any.
    pub attribute: Option<Attribute>,
    /// Events at or after this time (seconds since the epoch).
    pub start: Option<i64>,
    /// Events at or before this time.
    pub end: Option<i64>,
    /// At most this many events (1..=50).
    pub max: usize,
    /// Where the previous page stopped.
    pub from: Option<Position>,
}

/// One page of events, newest first.
#[derive(Debug, Default)]
pub struct Page {
    /// The records, as the account may see them.
    pub records: Vec<AuditRecord>,
    /// Where to go on from, when there may be more.
    pub next: Option<Position>,
}

/// The caller's name as LookupEvents' `Username` gives it: the user's
/// name, the session's name, `root`.
pub fn username(r: &AuditRecord) -> &str {
    use super::record::UserIdentity;
    match &r.user_identity {
        UserIdentity::Root(_) => "root",
        UserIdentity::IamUser(u) => &u.user_name,
        UserIdentity::AssumedRole(s) => s
            .principal_id
            .split_once(':')
            .map_or(s.principal_id.as_str(), |(_, session)| session),
        UserIdentity::Unknown => "",
    }
}

/// The access key id that signed the record's request.
pub fn access_key_id(r: &AuditRecord) -> &str {
    use super::record::UserIdentity;
    match &r.user_identity {
        UserIdentity::Root(x) => &x.access_key_id,
        UserIdentity::IamUser(u) => &u.access_key_id,
        UserIdentity::AssumedRole(s) => &s.access_key_id,
        UserIdentity::Unknown => "",
    }
}

/// `eventTime` (`YYYY-MM-DDTHH:MM:SSZ`) as seconds since the epoch.
pub fn event_seconds(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The record as `account` may see it, or `None` when it may not.
fn visible(mut r: AuditRecord, account: &str) -> Option<AuditRecord> {
    if account.is_empty() {
        return None;
    }
    if r.user_identity.account_id() == account {
        return Some(r);
    }
    if r.recipient_account_id == account && !r.user_identity.account_id().is_empty() {
        r.ferrokms_authorization.clear();
        return Some(r);
    }
    None
}

fn matches(r: &AuditRecord, a: &Attribute) -> bool {
    match a {
        Attribute::EventId(v) => r.event_id == *v,
        Attribute::EventName(v) => r.event_name == *v,
        Attribute::ReadOnly(v) => r.read_only == *v,
        Attribute::Username(v) => username(r) == v,
        Attribute::ResourceType(v) => r.resources.iter().any(|x| x.kind == *v),
        Attribute::ResourceName(v) => r
            .resources
            .iter()
            .any(|x| x.arn == *v || x.arn.rsplit('/').next() == Some(v.as_str())),
        Attribute::EventSource(v) => r.event_source == *v,
        Attribute::AccessKeyId(v) => access_key_id(r) == v,
    }
}

/// Why a scan of one file stopped.
enum Stop {
    /// The whole file (before the start position) was read.
    Done,
    /// The callback asked to stop.
    Asked,
    /// The byte budget ran out; the lines before this offset are unread.
    Budget(u64),
}

/// Reads the lines of `file` that end before `end`, last first, handing
/// each (without its newline) and its start offset to `f`. A tail after
/// the last newline (a record being written) is left out.
fn scan_back(
    file: &std::fs::File,
    end: u64,
    budget: &mut u64,
    mut f: impl FnMut(&[u8], u64) -> bool,
) -> std::io::Result<Stop> {
    let mut pos = end;
    // The bytes [pos, pos + buf.len()) not yet handed out.
    let mut buf: Vec<u8> = Vec::new();
    // Whether buf ends at a line's end (its newline kept).
    let mut aligned = false;
    // The start of the last line handed out (or the aligned end).
    let mut unread_end = end;
    loop {
        if pos == 0 {
            if aligned && buf.len() > 1 {
                let line = &buf[..buf.len() - 1];
                if !f(line, 0) {
                    return Ok(Stop::Asked);
                }
            }
            return Ok(Stop::Done);
        }
        if *budget == 0 {
            return Ok(Stop::Budget(unread_end));
        }
        let n = CHUNK.min(pos);
        pos -= n;
        *budget = budget.saturating_sub(n);
        let mut chunk = vec![0u8; usize::try_from(n).unwrap_or(0)];
        file.read_exact_at(&mut chunk, pos)?;
        chunk.extend_from_slice(&buf);
        buf = chunk;
        if !aligned {
            match buf.iter().rposition(|&b| b == b'\n') {
                Some(i) => {
                    buf.truncate(i + 1);
                    aligned = true;
                    unread_end = pos + i as u64 + 1;
                }
                None => {
                    if buf.len() > MAX_LINE {
                        buf.clear();
                    }
                    continue;
                }
            }
        }
        // buf ends with a newline; hand out every line that starts after
        // another newline in buf.
        let mut right = buf.len();
        while let Some(j) = buf[..right - 1].iter().rposition(|&b| b == b'\n') {
            let start = pos + j as u64 + 1;
            if !f(&buf[j + 1..right - 1], start) {
                return Ok(Stop::Asked);
            }
            unread_end = start;
            right = j + 1;
        }
        buf.truncate(right);
        if buf.len() > MAX_LINE {
            // A line too long to keep: skip to the newline before it.
            buf.clear();
            aligned = false;
        }
    }
}

/// One page of the events `q.account` may see, newest first.
pub fn lookup(data_dir: &Path, q: &Query<'_>) -> Result<Page, ReadError> {
    let mut newest_first = files(data_dir);
    newest_first.reverse();
    let mut opened = Vec::with_capacity(newest_first.len());
    for path in &newest_first {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            // Rotated away between the listing and the open.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(ReadError::Open {
                    path: path.clone(),
                    source,
                })
            }
        };
        let meta = file.metadata().map_err(|source| ReadError::Open {
            path: path.clone(),
            source,
        })?;
        opened.push((file, meta.ino(), meta.len()));
    }
    let first = match q.from {
        None => 0,
        Some(p) => match opened.iter().position(|(_, ino, _)| *ino == p.file) {
            Some(i) => i,
            // The file was rotated out of the trail: nothing older is left.
            None => return Ok(Page::default()),
        },
    };
    let mut page = Page::default();
    let mut budget = SCAN_BYTES;
    for (i, (file, ino, len)) in opened.iter().enumerate().skip(first) {
        let end = match q.from {
            Some(p) if i == first => p.offset.min(*len),
            _ => *len,
        };
        let mut too_old = false;
        let mut last_start = end;
        let stop = scan_back(file, end, &mut budget, |line, start| {
            let Some(r) = std::str::from_utf8(line).ok().and_then(parse) else {
                last_start = start;
                return true;
            };
            let t = event_seconds(&r.event_time).unwrap_or(0);
            if q.start.is_some_and(|s| t < s - START_SLACK_SECONDS) {
                too_old = true;
                return false;
            }
            let in_range = q.start.is_none_or(|s| t >= s) && q.end.is_none_or(|e| t <= e);
            if in_range && q.attribute.as_ref().is_none_or(|a| matches(&r, a)) {
                if let Some(r) = visible(r, q.account) {
                    if page.records.len() == q.max {
                        // Full: this line starts the next page.
                        return false;
                    }
                    page.records.push(r);
                }
            }
            last_start = start;
            true
        })
        .map_err(ReadError::Line)?;
        match stop {
            Stop::Done => {}
            Stop::Asked if too_old => return Ok(page),
            Stop::Asked => {
                page.next = Some(Position {
                    file: *ino,
                    offset: last_start,
                });
                return Ok(page);
            }
            Stop::Budget(offset) => {
                page.next = Some(Position { file: *ino, offset });
                return Ok(page);
            }
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_read_as_epoch_seconds() {
        assert_eq!(event_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(event_seconds("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(event_seconds("2024-13-01T00:00:00Z"), None);
        assert_eq!(event_seconds("2024-01-01 00:00:00Z"), None);
        assert_eq!(event_seconds(""), None);
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_no_token() {
        let p = Position {
            file: 0xabc,
            offset: 12345,
        };
        assert_eq!(Position::from_token(&p.token()), Some(p));
        for bad in ["", "-", "x-1", "1-", "1-2-3", "11111111111111111-1"] {
            assert_eq!(Position::from_token(bad), None, "{bad}");
        }
    }

    fn line(account: &str, name: &str, time: &str, key: &str) -> String {
        format!(
            r#"{{"eventVersion":"1.08","userIdentity":{{"type":"Root","principalId":"{account}","arn":"arn:aws:iam::{account}:root","accountId":"{account}","accessKeyId":"AKIA{account}"}},"eventTime":"{time}","eventSource":"kms.amazonaws.com","eventName":"{name}","awsRegion":"us-east-1","sourceIPAddress":null,"userAgent":null,"requestParameters":null,"responseElements":null,"requestID":"r","eventID":"e-{name}","readOnly":true,"resources":[{{"accountId":"{account}","type":"AWS::KMS::Key","ARN":"arn:aws:kms:us-east-1:{account}:key/{key}"}}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{account}","eventCategory":"Management","ferrokmsAuthorization":[]}}"#
        )
    }

    fn write_trail(dir: &Path, lines: &[String], tail: &str) {
        let d = dir.join(super::super::AUDIT_DIR);
        std::fs::create_dir_all(&d).unwrap();
        let mut text = lines.join("\n");
        text.push('\n');
        text.push_str(tail);
        std::fs::write(d.join(super::super::AUDIT_FILE), text).unwrap();
    }

    fn query(account: &str, max: usize) -> Query<'_> {
        Query {
            account,
            attribute: None,
            start: None,
            end: None,
            max,
            from: None,
        }
    }

    #[test]
    fn pages_run_newest_first_through_every_record_of_the_account_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut lines = Vec::new();
        for i in 0..130 {
            let account = if i % 3 == 0 {
                "222233334444"
            } else {
                "111122223333"
            };
            lines.push(line(
                account,
                &format!("Op{i:03}"),
                "2026-01-01T00:00:00Z",
                "k",
            ));
        }
        // A record being written is not read.
        write_trail(dir.path(), &lines, "{\"eventVersion\":\"1.08\",\"userIdent");
        let mut seen = Vec::new();
        let mut q = query("111122223333", 7);
        for _ in 0..100 {
            let page = lookup(dir.path(), &q).unwrap();
            assert!(page.records.len() <= 7);
            seen.extend(page.records.iter().map(|r| r.event_name.clone()));
            match page.next {
                Some(p) => q.from = Some(p),
                None => break,
            }
        }
        let want: Vec<String> = (0..130)
            .rev()
            .filter(|i| i % 3 != 0)
            .map(|i| format!("Op{i:03}"))
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn attributes_and_times_filter_and_another_accounts_trace_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut other_on_ours = line("222233334444", "Decrypt", "2026-01-01T00:00:10Z", "k1");
        other_on_ours = other_on_ours
            .replace(
                "\"recipientAccountId\":\"222233334444\"",
                "\"recipientAccountId\":\"111122223333\"",
            )
            .replace(
                "\"ferrokmsAuthorization\":[]",
                "\"ferrokmsAuthorization\":[{\"action\":\"kms:Decrypt\",\"allowed\":false,\"decision\":\"d\",\"statements\":[\"theirs\"]}]",
            );
        let lines = vec![
            line("111122223333", "Encrypt", "2026-01-01T00:00:00Z", "k1"),
            line("111122223333", "Encrypt", "2026-01-01T00:01:00Z", "k2"),
            other_on_ours,
        ];
        write_trail(dir.path(), &lines, "");
        let mut q = query("111122223333", 50);
        q.attribute = Some(Attribute::ResourceName("k1".into()));
        let page = lookup(dir.path(), &q).unwrap();
        let names: Vec<&str> = page.records.iter().map(|r| r.event_name.as_str()).collect();
        assert_eq!(names, ["Decrypt", "Encrypt"]);
        assert!(page.records[0].ferrokms_authorization.is_empty());
        q.attribute = None;
        q.start = event_seconds("2026-01-01T00:00:30Z");
        let page = lookup(dir.path(), &q).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(
            page.records[0].resources[0].arn.rsplit('/').next(),
            Some("k2")
        );
        // The other account sees its own call, trace and all.
        let page = lookup(dir.path(), &query("222233334444", 50)).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].ferrokms_authorization.len(), 1);
        assert!(lookup(dir.path(), &query("", 50))
            .unwrap()
            .records
            .is_empty());
    }

    #[test]
    fn one_call_reads_at_most_its_budget_and_the_token_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let one = line("111122223333", "Encrypt", "2026-01-01T00:00:00Z", "k");
        // More than the scan bound of records none of which match.
        let n = usize::try_from(SCAN_BYTES).unwrap() / one.len() + 2000;
        let mut lines = vec![line("111122223333", "Old", "2026-01-01T00:00:00Z", "k")];
        lines.extend(std::iter::repeat_n(one, n));
        write_trail(dir.path(), &lines, "");
        let mut q = query("111122223333", 5);
        q.attribute = Some(Attribute::EventName("Old".into()));
        let page = lookup(dir.path(), &q).unwrap();
        assert!(page.records.is_empty());
        let next = page.next.expect("a token to go on");
        q.from = Some(next);
        let page = lookup(dir.path(), &q).unwrap();
        assert_eq!(page.records.len(), 1);
        assert_eq!(page.records[0].event_name, "Old");
        assert!(page.next.is_none());
    }
}
