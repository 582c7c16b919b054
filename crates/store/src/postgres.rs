//! The shared store: PostgreSQL, for several ferrokms nodes on one database.
//!
//! Same document contract as SQLite (`kind`, `id` -> bytes, atomic batches),
//! plus what several nodes need to keep their in-memory working sets equal:
//!
//! * every committed batch gets the next number of one global sequence
//!   (`ferrokms_meta.seq`). The counter row is updated first in each write
//!   transaction, so its row lock orders commits: sequence order is commit
//!   order, and any snapshot holds a prefix of the sequence;
//! * every document row carries the sequence number of its last change, and
//!   deletions leave a tombstone (`body IS NULL`), so a node asks "what
//!   changed after N" ([`SharedStore::changes_since`]) and catches up;
//! * a cluster-wide write lock (a PostgreSQL session advisory lock held on a
//!   dedicated connection) lets a node catch up, check and write without
//!   another node writing in between.
//!
//! The `postgres` client blocks on a runtime of its own, which must not run
//! inside the server's tokio runtime; so every connection lives on a thread
//! of its own and callers hand it jobs over a channel.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use postgres::{Client, Config, NoTls, Statement};

use crate::{Change, Changed, Record, SharedStore, Store, StoreError};

/// The advisory lock key of the cluster write lock ("fkms" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x666b_6d73;
/// Held while the schema is created or migrated, so nodes that start
/// together do not race.
const MIGRATION_LOCK_KEY: i64 = 0x666b_6d74;
/// The schema version this build writes and understands.
const SCHEMA_VERSION: i32 = 1;
/// Connections for loads and writes (the lock connection is extra).
const POOL_SIZE: usize = 4;
/// How long a caller waits for the database before answering an error:
/// a stopped or unreachable PostgreSQL must never hang a request.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ferrokms_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ferrokms_meta (
    one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    seq BIGINT NOT NULL
);
INSERT INTO ferrokms_meta (one, seq) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS ferrokms_objects (
    kind TEXT NOT NULL,
    id   TEXT NOT NULL,
    body BYTEA,
    seq  BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS ferrokms_objects_seq ON ferrokms_objects (seq);
";

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// One connection, reopened on the next job after it breaks, with the
/// statements it has prepared (each query is then one round trip).
struct Connection {
    config: Config,
    client: Option<Client>,
    statements: HashMap<&'static str, Statement>,
}

/// What a job works with: the connection and its prepared statements.
struct Session<'a> {
    client: &'a mut Client,
    statements: &'a mut HashMap<&'static str, Statement>,
    /// Set just before a COMMIT is sent: from then on a lost connection
    /// leaves the outcome unknown, so the job is not retried.
    committing: bool,
    /// Whether the caller stopped waiting: a write then rolls back instead
    /// of committing behind the back of a caller that answered an error.
    gone: Arc<AtomicBool>,
}

impl Session<'_> {
    fn stmt(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql).map_err(backend)?;
        self.statements.insert(sql, s.clone());
        Ok(s)
    }
}

impl Connection {
    fn session(&mut self, gone: Arc<AtomicBool>) -> Result<Session<'_>, postgres::Error> {
        let client = match self.client.take() {
            Some(c) if !c.is_closed() => c,
            _ => {
                self.statements.clear();
                self.config.connect(NoTls)?
            }
        };
        Ok(Session {
            client: self.client.insert(client),
            statements: &mut self.statements,
            committing: false,
            gone,
        })
    }

    /// Forgets the connection if the error broke it.
    fn after_error(&mut self) {
        if self
            .client
            .as_ref()
            .is_some_and(postgres::Client::is_closed)
        {
            self.client = None;
            self.statements.clear();
        }
    }
}

/// A thread owning one connection, running jobs in order.
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    fn spawn(
        name: String,
        config: Config,
        shared: Option<Arc<Mutex<mpsc::Receiver<Job>>>>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = shared.unwrap_or_else(|| Arc::new(Mutex::new(rx)));
        let _ = std::thread::Builder::new().name(name).spawn(move || {
            let mut conn = Connection {
                config,
                client: None,
                statements: HashMap::new(),
            };
            loop {
                let job = {
                    let rx = rx.lock();
                    rx.recv()
                };
                match job {
                    Ok(job) => job(&mut conn),
                    Err(_) => return,
                }
            }
        });
        Worker { jobs: tx }
    }
}

/// Sorts a PostgreSQL error: the database being away (connection lost,
/// shutting down or restarting — SQLSTATE classes 08 and 57 — or out of
/// connections, 53) is `Unavailable`, which callers may retry; anything
/// else is a `Backend` failure.
fn backend(e: postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if !e.is_closed() => {
            let code = db.code().code();
            let text = format!("{} ({code})", db.message());
            if ["08", "53", "57"]
                .iter()
                .any(|class| code.starts_with(class))
            {
                StoreError::Unavailable(text)
            } else {
                StoreError::Backend(text)
            }
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

/// What a caller and the worker running its job share: the answer, or the
/// news that the caller stopped waiting for it.
struct Handoff<R> {
    state: Mutex<Answer<R>>,
    ready: Condvar,
    /// Set when the caller gave up (read before a COMMIT is sent).
    gone: Arc<AtomicBool>,
}

enum Answer<R> {
    Waiting,
    Done(Result<R, StoreError>),
    Abandoned,
}

/// Runs `f` on a worker's connection and waits (bounded) for its answer.
///
/// A connection that sat idle through a PostgreSQL restart only finds out
/// it is dead when used; so when `f` fails for want of a connection on a
/// connection that was not fresh, it runs once more on a new one — unless
/// it had already sent a COMMIT (`Session::committing`), whose outcome is
/// then unknown and must not be repeated.
fn call<R: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl Fn(&mut Session<'_>) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    call_or_undo(jobs, f, |_, _| {})
}

/// As [`call`]; when the caller has stopped waiting (after `CALL_TIMEOUT`,
/// an unreachable database) the job is not run if it has not started, a
/// write is not committed if it has not sent its COMMIT yet, and `undo` is
/// given what a job that finished anyway obtained (a lock nobody knows of
/// must be released): a lock job that outlived its caller would otherwise
/// take the cluster write lock once a partition heals and keep it, and no
/// other node could write until this one wrote again.
fn call_or_undo<R: Send + 'static>(
    jobs: &mpsc::Sender<Job>,
    f: impl Fn(&mut Session<'_>) -> Result<R, StoreError> + Send + 'static,
    undo: impl FnOnce(&mut Connection, R) + Send + 'static,
) -> Result<R, StoreError> {
    let handoff = Arc::new(Handoff {
        state: Mutex::new(Answer::Waiting),
        ready: Condvar::new(),
        gone: Arc::new(AtomicBool::new(false)),
    });
    let theirs = handoff.clone();
    let job: Job = Box::new(move |conn: &mut Connection| {
        if matches!(*theirs.state.lock(), Answer::Abandoned) {
            return;
        }
        let mut retried = false;
        let result = loop {
            let reused = conn.client.is_some();
            let (result, committing) = match conn.session(theirs.gone.clone()) {
                Ok(mut session) => {
                    let r = f(&mut session);
                    (r, session.committing)
                }
                Err(e) => (Err(backend(e)), false),
            };
            if result.is_err() {
                conn.after_error();
            }
            let stale = matches!(result, Err(StoreError::Unavailable(_))) && reused;
            if stale && !committing && !retried && !theirs.gone.load(Ordering::SeqCst) {
                conn.client = None;
                conn.statements.clear();
                retried = true;
                continue;
            }
            break result;
        };
        let mut state = theirs.state.lock();
        if matches!(*state, Answer::Abandoned) {
            drop(state);
            if let Ok(r) = result {
                undo(conn, r);
            }
        } else {
            *state = Answer::Done(result);
            theirs.ready.notify_all();
        }
    });
    jobs.send(job)
        .map_err(|_| StoreError::Unavailable("database worker stopped".into()))?;
    let deadline = std::time::Instant::now() + CALL_TIMEOUT;
    let mut state = handoff.state.lock();
    loop {
        if let Answer::Done(_) = &*state {
            let Answer::Done(r) = std::mem::replace(&mut *state, Answer::Abandoned) else {
                unreachable!()
            };
            return r;
        }
        if handoff.ready.wait_until(&mut state, deadline).timed_out() {
            if let Answer::Done(_) = &*state {
                continue;
            }
            *state = Answer::Abandoned;
            handoff.gone.store(true, Ordering::SeqCst);
            return Err(StoreError::Unavailable(format!(
                "the database did not answer within {} s",
                CALL_TIMEOUT.as_secs()
            )));
        }
    }
}

/// The store that several nodes share: one PostgreSQL database, written in
/// atomic batches under a cluster-wide advisory lock, with a change feed the
/// other nodes poll to stay current.
pub struct PostgresStore {
    description: String,
    pool: mpsc::Sender<Job>,
    /// The dedicated connection that holds the cluster write lock.
    lock: Worker,
    /// Backend pid of the lock connection while it holds the lock (0 when
    /// not held): each write checks the lock is still really held.
    lock_pid: AtomicI32,
    lock_held: AtomicBool,
    last_committed: AtomicU64,
    _workers: Vec<Worker>,
}

impl PostgresStore {
    /// Connects, creates or checks the schema (under an advisory lock, so
    /// nodes starting together are safe) and starts the connection threads.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with_password(url, None)
    }

    /// [`open`](Self::open) with the password given apart from the URL
    /// (`--store-password-file`), so that it is neither on a command line
    /// nor in the environment. A URL that has a password too is refused.
    pub fn open_with_password(url: &str, password: Option<&str>) -> Result<Self, StoreError> {
        let mut config: Config = url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(password) = password {
            if config.get_password().is_some() {
                return Err(StoreError::Backend(
                    "the PostgreSQL URL has a password and a password file is given too: keep one (the file)".into(),
                ));
            }
            config.password(password);
        }
        config.connect_timeout(Duration::from_secs(5));
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        // A statement that waits longer than this (a lock, a stuck server)
        // fails instead of hanging the request behind it.
        config.options(
            "-c statement_timeout=10000 -c lock_timeout=10000 -c client_min_messages=warning",
        );
        if config.get_application_name().is_none() {
            config.application_name("ferrokms");
        }
        let description = describe(&config);
        let mut client = config.connect(NoTls).map_err(|e| {
            // postgres::Error's text leaves out its cause (the refusal,
            // timeout or authentication failure): add it, and the address.
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            match backend(e) {
                StoreError::Unavailable(why) => StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL at {description}: {why}{cause}"
                )),
                StoreError::Backend(why) => StoreError::Backend(format!(
                    "PostgreSQL at {description} refused the connection: {why}"
                )),
                other @ StoreError::Corrupt(_) => other,
            }
        })?;
        migrate(&mut client)?;
        drop(client);

        let (pool_tx, pool_rx) = mpsc::channel::<Job>();
        let shared_rx = Arc::new(Mutex::new(pool_rx));
        let workers = (0..POOL_SIZE)
            .map(|i| {
                Worker::spawn(
                    format!("ferrokms-pg-{i}"),
                    config.clone(),
                    Some(shared_rx.clone()),
                )
            })
            .collect();
        let lock = Worker::spawn("ferrokms-pg-lock".into(), config, None);
        Ok(PostgresStore {
            description,
            pool: pool_tx,
            lock,
            lock_pid: AtomicI32::new(0),
            lock_held: AtomicBool::new(false),
            last_committed: AtomicU64::new(0),
            _workers: workers,
        })
    }
}

/// `postgres://user@host:port/db` without the password.
fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(s) => s.clone(),
            #[cfg(unix)]
            postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        host,
        port,
        config.get_dbname().unwrap_or("")
    )
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .map_err(backend)?;
    let result = (|| {
        client.batch_execute(SCHEMA).map_err(backend)?;
        let version: Option<i32> = client
            .query_one("SELECT max(version) FROM ferrokms_schema", &[])
            .map_err(backend)?
            .get(0);
        match version {
            None => {
                client
                    .execute(
                        "INSERT INTO ferrokms_schema (version) VALUES ($1)",
                        &[&SCHEMA_VERSION],
                    )
                    .map_err(backend)?;
                Ok(())
            }
            Some(v) if v == SCHEMA_VERSION => Ok(()),
            Some(v) => Err(StoreError::Corrupt(format!(
                "database schema version {v} is newer than this ferrokms understands ({SCHEMA_VERSION})"
            ))),
        }
    })();
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]);
    result
}

/// Releases every advisory lock of the lock connection (if it is still
/// open: a lost connection released them already).
fn release_lock(conn: &mut Connection) {
    let Some(client) = conn.client.as_mut() else {
        return;
    };
    if client.is_closed() {
        conn.after_error();
        return;
    }
    if let Err(e) = client.batch_execute(SQL_UNLOCK) {
        // The lock dies with its connection; nothing else to do.
        tracing::warn!(error = %e, "releasing the cluster write lock failed");
        conn.after_error();
    }
}

fn seq_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn seq_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const SQL_LOAD: &str = "SELECT id, body FROM ferrokms_objects
     WHERE kind = $1 AND body IS NOT NULL ORDER BY id COLLATE \"C\"";
const SQL_GET: &str = "SELECT body FROM ferrokms_objects WHERE kind = $1 AND id = $2";
const SQL_XACT_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
/// The next sequence number (its row lock orders commits) and whether the
/// lock connection (pid $1) still holds the cluster write lock ($2).
const SQL_NEXT_SEQ: &str =
    "WITH n AS (UPDATE ferrokms_meta SET seq = seq + 1 WHERE one RETURNING seq)
     SELECT n.seq, EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
         AND pid = $1 AND objid = $2::bigint::oid AND objsubid = 1) FROM n";
/// A whole batch in one statement; a NULL body is a tombstone.
const SQL_UPSERT: &str = "INSERT INTO ferrokms_objects (kind, id, body, seq)
     SELECT k, i, b, $4 FROM unnest($1::text[], $2::text[], $3::bytea[]) AS t(k, i, b)
     ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body, seq = excluded.seq";
const SQL_CHANGES: &str = "SELECT seq, kind, id, body FROM ferrokms_objects
     WHERE seq > $1 ORDER BY seq, kind, id";
const SQL_HEAD: &str = "SELECT seq FROM ferrokms_meta WHERE one";
const SQL_LOCK: &str = "SELECT pg_backend_pid() FROM (SELECT pg_advisory_lock($1)) AS l";
const SQL_UNLOCK: &str = "SELECT pg_advisory_unlock_all()";

/// The batch as three arrays, the last change of a document winning (one
/// statement may not touch a row twice).
fn batch_arrays(changes: &[Change]) -> (Vec<String>, Vec<String>, Vec<Option<Vec<u8>>>) {
    let mut last: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        let key = match c {
            Change::Put { kind, id, .. } | Change::Delete { kind, id } => (*kind, id.as_str()),
        };
        last.insert(key, i);
    }
    let mut kinds = Vec::with_capacity(last.len());
    let mut ids = Vec::with_capacity(last.len());
    let mut bodies = Vec::with_capacity(last.len());
    for (i, c) in changes.iter().enumerate() {
        let (kind, id, body) = match c {
            Change::Put { kind, id, body } => (*kind, id, Some(body.clone())),
            Change::Delete { kind, id } => (*kind, id, None),
        };
        if last.get(&(kind, id.as_str())) == Some(&i) {
            kinds.push(kind.to_string());
            ids.push(id.clone());
            bodies.push(body);
        }
    }
    (kinds, ids, bodies)
}

impl Store for PostgresStore {
    fn load(&self, kind: &str) -> Result<Vec<Record>, StoreError> {
        let kind = kind.to_string();
        call(&self.pool, move |s| {
            let stmt = s.stmt(SQL_LOAD)?;
            let rows = s.client.query(&stmt, &[&kind]).map_err(backend)?;
            Ok(rows
                .into_iter()
                .map(|r| Record {
                    kind: kind.clone(),
                    id: r.get(0),
                    body: r.get(1),
                })
                .collect())
        })
    }

    fn get(&self, kind: &str, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        call(&self.pool, move |s| {
            let stmt = s.stmt(SQL_GET)?;
            let row = s.client.query_opt(&stmt, &[&kind, &id]).map_err(backend)?;
            Ok(row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)))
        })
    }

    fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let (kinds, ids, bodies) = batch_arrays(changes);
        // Under the cluster lock, check in the same transaction that the
        // lock connection still holds it (a dropped connection loses it).
        let lock_pid = self.lock_pid.load(Ordering::SeqCst);
        let guarded = self.lock_held.load(Ordering::SeqCst) && lock_pid != 0;
        let seq = call(&self.pool, move |s| {
            let xact_lock = s.stmt(SQL_XACT_LOCK)?;
            let next_seq = s.stmt(SQL_NEXT_SEQ)?;
            let upsert = s.stmt(SQL_UPSERT)?;
            let mut tx = s.client.transaction().map_err(backend)?;
            if !guarded {
                // A write outside the cluster lock still waits for other
                // nodes' locked writes, so it never lands in the middle of
                // one. Taken before the counter row, in the same order as a
                // locked writer takes them, so the two cannot deadlock.
                tx.execute(&xact_lock, &[&WRITE_LOCK_KEY])
                    .map_err(backend)?;
            }
            let row = tx
                .query_one(&next_seq, &[&lock_pid, &WRITE_LOCK_KEY])
                .map_err(backend)?;
            let seq: i64 = row.get(0);
            let held: bool = row.get(1);
            if guarded && !held {
                return Err(StoreError::Unavailable(
                    "the cluster write lock was lost (database connection dropped)".into(),
                ));
            }
            tx.execute(&upsert, &[&kinds, &ids, &bodies, &seq])
                .map_err(backend)?;
            if s.gone.load(Ordering::SeqCst) {
                // The caller answered an error already: roll back.
                return Err(StoreError::Unavailable(
                    "the caller stopped waiting before the commit".into(),
                ));
            }
            s.committing = true;
            tx.commit().map_err(backend)?;
            Ok(seq)
        })?;
        self.last_committed
            .fetch_max(seq_u64(seq), Ordering::SeqCst);
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn shared(&self) -> Option<&dyn SharedStore> {
        Some(self)
    }
}

impl SharedStore for PostgresStore {
    fn changes_since(&self, seq: u64) -> Result<Vec<Changed>, StoreError> {
        let from = seq_i64(seq);
        call(&self.pool, move |s| {
            let stmt = s.stmt(SQL_CHANGES)?;
            let rows = s.client.query(&stmt, &[&from]).map_err(backend)?;
            Ok(rows
                .into_iter()
                .map(|r| Changed {
                    seq: seq_u64(r.get(0)),
                    kind: r.get(1),
                    id: r.get(2),
                    body: r.get(3),
                })
                .collect())
        })
    }

    fn head(&self) -> Result<u64, StoreError> {
        call(&self.pool, |s| {
            let stmt = s.stmt(SQL_HEAD)?;
            let seq: i64 = s.client.query_one(&stmt, &[]).map_err(backend)?.get(0);
            Ok(seq_u64(seq))
        })
    }

    fn lock_writes(&self) -> Result<(), StoreError> {
        let pid = call_or_undo(
            &self.lock.jobs,
            |s| {
                let stmt = s.stmt(SQL_LOCK)?;
                let pid: i32 = s
                    .client
                    .query_one(&stmt, &[&WRITE_LOCK_KEY])
                    .map_err(backend)?
                    .get(0);
                Ok(pid)
            },
            // Taken after its caller gave up: nobody would release it.
            |conn, _pid| release_lock(conn),
        )?;
        self.lock_pid.store(pid, Ordering::SeqCst);
        self.lock_held.store(true, Ordering::SeqCst);
        Ok(())
    }

    fn unlock_writes(&self) {
        self.lock_held.store(false, Ordering::SeqCst);
        self.lock_pid.store(0, Ordering::SeqCst);
        // Not waited for: the lock connection runs its jobs in order, so
        // this node's next lock_writes comes after it, and a caller whose
        // write failed on an unreachable database must not wait a second
        // CALL_TIMEOUT for the release (the lock dies with its connection).
        let job: Job = Box::new(release_lock);
        if self.lock.jobs.send(job).is_err() {
            tracing::warn!("releasing the cluster write lock failed: lock worker stopped");
        }
    }

    fn last_committed(&self) -> u64 {
        self.last_committed.load(Ordering::SeqCst)
    }
}
