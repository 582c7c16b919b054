//! Reading the audit trail back: the files of a data dir, oldest first, line
//! by line, each line as JSON ([`values`], what `ferrokms audit` and
//! `ferrokms policy explain` read) or as a typed [`AuditRecord`]
//! ([`records`], [`parse`]). A line cut short by a crash is skipped, not
//! fatal; the writer's own notes (`{"ferrokmsDroppedRecords":N}`) are JSON
//! but not records, so [`values`] keeps them and [`records`] skips them.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{files, AuditRecord, AUDIT_DIR, AUDIT_FILE};

/// Why the audit trail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The data dir has no audit file yet.
    #[error(
        "no audit trail in {} (the server writes {AUDIT_DIR}/{AUDIT_FILE} once it has served a request)",
        .0.display()
    )]
    NoTrail(PathBuf),
    #[error("cannot read {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line that is not text (the file is not an audit file).
    #[error(transparent)]
    Line(#[from] std::io::Error),
}

/// One line of an audit file as a typed record, or `None` when it is not
/// one (cut short, or a note of the writer's).
pub fn parse(line: &str) -> Option<AuditRecord> {
    serde_json::from_str(line).ok()
}

/// Every JSON line of the audit files of `data_dir`, oldest first.
pub fn values(data_dir: &Path) -> Result<Vec<Value>, ReadError> {
    let mut out = Vec::new();
    each_line(data_dir, |line| {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            out.push(v);
        }
    })?;
    Ok(out)
}

/// Every record of the audit files of `data_dir`, oldest first.
pub fn records(data_dir: &Path) -> Result<Vec<AuditRecord>, ReadError> {
    let mut out = Vec::new();
    each_line(data_dir, |line| out.extend(parse(line)))?;
    Ok(out)
}

fn each_line(data_dir: &Path, mut f: impl FnMut(&str)) -> Result<(), ReadError> {
    let files = files(data_dir);
    if files.is_empty() {
        return Err(ReadError::NoTrail(data_dir.to_path_buf()));
    }
    for path in files {
        let file = std::fs::File::open(&path).map_err(|source| ReadError::Open {
            path: path.clone(),
            source,
        })?;
        for line in std::io::BufReader::new(file).lines() {
            f(&line?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_records_read_back_typed_and_as_json_and_notes_are_not_records() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(values(dir.path()), Err(ReadError::NoTrail(_))));
        let mut log = super::super::AuditLog::open(dir.path()).unwrap();
        let line = super::super::event(super::super::EventInput {
            service: "kms",
            op: "ListKeys",
            region: "us-east-1",
            source_ip: None,
            user_agent: None,
            identity: None,
            request_parameters: &[],
            response_elements: &[],
            error: Some(("UnrecognizedClientException", Some("bad"))),
            request_id: "req-1",
            event_id: None,
            decisions: &[],
            now_ms: 0,
        });
        log.record(&line);
        log.record(br#"{"ferrokmsDroppedRecords":3}"#);
        log.record(br#"{"eventVersion":"1.08","userIdent"#);
        log.close();
        let typed = records(dir.path()).unwrap();
        assert_eq!(typed.len(), 1);
        assert_eq!(typed[0].request_id, "req-1");
        assert_eq!(
            typed[0].error_code.as_deref(),
            Some("UnrecognizedClientException")
        );
        assert_eq!(values(dir.path()).unwrap().len(), 2);
    }
}
