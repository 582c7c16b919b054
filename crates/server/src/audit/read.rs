//! Reading the audit trail back: the files of a data dir, oldest first, line
//! by line, each line as a typed [`AuditRecord`] ([`trail`], what `ferrokms
//! audit` and `ferrokms policy explain` read; [`parse`]). A line cut short by
//! a crash is skipped, not fatal; the writer's own notes
//! (`{"ferrokmsDroppedRecords":N}`) are not records: [`trail`] adds them up.

use std::io::BufRead;
use std::path::{Path, PathBuf};

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
    /// A file of the trail could not be opened or read.
    #[error("cannot read {}", .path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A line that is not text (the file is not an audit file).
    #[error(transparent)]
    Line(#[from] std::io::Error),
}

/// One line of an audit file as a typed record, or `None` when it is not
/// one (cut short, or a note of the writer's). Fields a line lacks (a trail
/// of an older version, a record written by hand) read as their defaults;
/// a line is a record when it names its event (`eventName`).
pub fn parse(line: &str) -> Option<AuditRecord> {
    serde_json::from_str::<AuditRecord>(line)
        .ok()
        .filter(|r| !r.event_name.is_empty())
}

/// The audit trail of a data dir.
#[derive(Debug, Default)]
pub struct Trail {
    /// Every record, oldest first.
    pub records: Vec<AuditRecord>,
    /// How many records the writer noted it dropped (it was behind).
    pub dropped: u64,
}

/// The note the writer leaves when it had to drop records.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DroppedNote {
    ferrokms_dropped_records: u64,
}

/// The audit trail of `data_dir`: its records, oldest first, and the count
/// of records the writer dropped.
pub fn trail(data_dir: &Path) -> Result<Trail, ReadError> {
    let mut out = Trail::default();
    each_line(data_dir, |line| match parse(line) {
        Some(r) => out.records.push(r),
        None => {
            if let Ok(note) = serde_json::from_str::<DroppedNote>(line) {
                out.dropped += note.ferrokms_dropped_records;
            }
        }
    })?;
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
    fn written_records_read_back_typed_and_notes_are_counted_not_records() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(trail(dir.path()), Err(ReadError::NoTrail(_))));
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
        let Trail {
            records: typed,
            dropped,
        } = trail(dir.path()).unwrap();
        assert_eq!(typed.len(), 1);
        assert_eq!(dropped, 3);
        assert_eq!(typed[0].request_id, "req-1");
        assert_eq!(
            typed[0].error_code.as_deref(),
            Some("UnrecognizedClientException")
        );
    }
}
