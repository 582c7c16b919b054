use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{params, Connection};

use crate::{Change, Record, Store, StoreError};

/// The embedded default store: one SQLite file in WAL mode with
/// `synchronous=FULL`, so a committed batch survives power loss and kill -9.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
";

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its schema.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
            .ok()
            .flatten();
        match version {
            None => {
                conn.execute("INSERT INTO schema_version(version) VALUES (1)", [])?;
            }
            Some(1) => {}
            Some(v) => {
                return Err(StoreError::Corrupt(format!(
                    "database schema version {v} is newer than this ferrokms understands (1)"
                )))
            }
        }
        Ok(SqliteStore {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }
}

impl Store for SqliteStore {
    fn load(&self, kind: &str) -> Result<Vec<Record>, StoreError> {
        let conn = self.conn.lock();
        let mut stmt =
            conn.prepare_cached("SELECT id, body FROM objects WHERE kind = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![kind], |r| {
            Ok(Record {
                kind: kind.to_string(),
                id: r.get(0)?,
                body: r.get(1)?,
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?);
        }
        Ok(out)
    }

    /// Row by row from one query: only the current row is held.
    fn load_each(
        &self,
        kind: &str,
        f: &mut dyn FnMut(&str, &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        let mut stmt =
            conn.prepare_cached("SELECT id, body FROM objects WHERE kind = ?1 ORDER BY id")?;
        let mut rows = stmt.query(params![kind])?;
        while let Some(row) = rows.next()? {
            let id = row
                .get_ref(0)?
                .as_str()
                .map_err(|e| StoreError::Corrupt(format!("a stored {kind} id: {e}")))?;
            let body = row
                .get_ref(1)?
                .as_bytes()
                .map_err(|e| StoreError::Corrupt(format!("stored {kind} {id}: {e}")))?;
            if f(id, body).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        use rusqlite::OptionalExtension;
        let conn = self.conn.lock();
        let mut stmt =
            conn.prepare_cached("SELECT body FROM objects WHERE kind = ?1 AND id = ?2")?;
        Ok(stmt.query_row(params![kind, id], |r| r.get(0)).optional()?)
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        for c in changes {
            match c {
                Change::Put { kind, id, body } => {
                    tx.prepare_cached(
                        "INSERT INTO objects(kind, id, body) VALUES (?1, ?2, ?3)
                         ON CONFLICT(kind, id) DO UPDATE SET body = excluded.body",
                    )?
                    .execute(params![kind, id, body])?;
                }
                Change::Delete { kind, id } => {
                    tx.prepare_cached("DELETE FROM objects WHERE kind = ?1 AND id = ?2")?
                        .execute(params![kind, id])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
