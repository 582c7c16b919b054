//! Several nodes on one shared store: keeping every node's in-memory state
//! equal to what the database says.
//!
//! The rule (docs/deployment.md): a change acknowledged by any node is
//! effective on every node for the next request that arrives after the
//! acknowledgement. Two mechanisms give it:
//!
//! * **Read fence.** Before a request is authenticated, the node makes sure
//!   it has applied every batch committed before the request arrived: it
//!   reads the change feed from its last applied sequence number. Concurrent
//!   requests share one read ("single flight"), but a request only accepts a
//!   read that *started after it arrived*, which is what makes the rule
//!   hold. With `--max-staleness-ms N` a node may instead serve from state
//!   synced less than N ms before (a documented, bounded delay).
//! * **Write lock.** A request that changes state runs under the
//!   cluster-wide write lock: the node takes the lock, catches up, runs the
//!   operation (its checks see the latest state), commits, and releases. So
//!   read-modify-write (alias uniqueness, grant names, policy versions) is
//!   correct across nodes, and background jobs (deletion, rotation) run
//!   exactly once: the second node to take the lock finds nothing due.
//!
//! On a single-node store (SQLite, memory) none of this runs.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokms_iam::Directory;
use ferrokms_kms::Kms;
use ferrokms_store::{Changed, SharedStore, Store, StoreError};
use parking_lot::Mutex;
use tokio::sync::watch;

/// This node's side of a shared store: the read fence and the cluster write lock
/// (see the module docs).
pub struct Cluster {
    store: Arc<dyn Store>,
    kms: Arc<Kms>,
    directory: Arc<Directory>,
    /// Every batch up to this sequence number is in memory.
    applied: AtomicU64,
    /// Excludes catching up and locked writes on this node from each other,
    /// so an older document never overwrites a newer local change; holds
    /// whether this node keeps the cluster lock between writes.
    local: Mutex<WriteSlot>,
    /// Writers waiting for `local`: one that finishes while others wait
    /// hands them the cluster lock instead of releasing and retaking it.
    pending_writers: AtomicUsize,
    fence: Mutex<FenceState>,
    rounds: watch::Sender<Round>,
    /// `--max-staleness-ms`: 0 means every request waits for a fresh read.
    max_staleness_ms: i64,
    /// When the last successful sync round started (ms since `epoch`).
    last_sync_start_ms: AtomicI64,
    epoch: Instant,
}

/// The cluster lock as held across consecutive local writes.
#[derive(Default)]
struct WriteSlot {
    held_since: Option<Instant>,
    writes: u32,
}

/// How long, and for how many writes, a node keeps the cluster lock for
/// its own queued writers before letting other nodes in.
const MAX_LOCK_HOLD: Duration = Duration::from_millis(20);
const MAX_WRITES_PER_HOLD: u32 = 64;

#[derive(Default)]
struct FenceState {
    /// Rounds started so far.
    started: u64,
    running: bool,
    /// The highest round a waiter needs.
    wanted: u64,
}

#[derive(Debug, Clone)]
struct Round {
    number: u64,
    result: Result<(), String>,
}

impl Cluster {
    /// `None` for single-node stores. `applied` is the sequence number read
    /// *before* the state was loaded, so nothing committed during the load
    /// is missed (applying a document twice is harmless).
    pub fn new(
        store: Arc<dyn Store>,
        kms: Arc<Kms>,
        directory: Arc<Directory>,
        applied: u64,
        max_staleness: Duration,
    ) -> Option<Arc<Cluster>> {
        store.shared()?;
        let (rounds, _) = watch::channel(Round {
            number: 0,
            result: Ok(()),
        });
        Some(Arc::new(Cluster {
            store,
            kms,
            directory,
            applied: AtomicU64::new(applied),
            local: Mutex::new(WriteSlot::default()),
            pending_writers: AtomicUsize::new(0),
            fence: Mutex::new(FenceState::default()),
            rounds,
            max_staleness_ms: i64::try_from(max_staleness.as_millis()).unwrap_or(i64::MAX),
            last_sync_start_ms: AtomicI64::new(i64::MIN / 2),
            epoch: Instant::now(),
        }))
    }

    fn shared(&self) -> Result<&dyn SharedStore, StoreError> {
        self.store
            .shared()
            .ok_or_else(|| StoreError::Backend("store is not shared".into()))
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn applied(&self) -> u64 {
        self.applied.load(Ordering::SeqCst)
    }

    /// Waits until this node has applied every change committed before the
    /// call (see the module docs).
    pub async fn fence(self: &Arc<Self>) -> Result<(), StoreError> {
        if self.max_staleness_ms > 0
            && self.now_ms() - self.last_sync_start_ms.load(Ordering::SeqCst)
                < self.max_staleness_ms
        {
            return Ok(());
        }
        let mut rx = self.rounds.subscribe();
        // `needed`: the first round that started after this call; `failing`:
        // a round whose failure answers this call too (the one running when
        // it arrived). Waiting for the next round after a failed one would
        // double the wait on an unreachable database (found by
        // tests/e2e/test_partitions.py: 22 s instead of at most 15 s), and an
        // error is always a safe answer.
        let (needed, failing) = {
            let mut f = self.fence.lock();
            if f.running {
                // The running round may have started before we arrived.
                f.wanted = f.wanted.max(f.started + 1);
                (f.started + 1, f.started)
            } else {
                f.started += 1;
                f.running = true;
                let n = f.started;
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.run_rounds(n));
                (n, n)
            }
        };
        loop {
            {
                let round = rx.borrow_and_update();
                if round.number >= needed || (round.number >= failing && round.result.is_err()) {
                    return round.result.clone().map_err(StoreError::Unavailable);
                }
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Unavailable("sync stopped".into()));
            }
        }
    }

    /// Runs round `first` and then as many more as waiters need.
    fn run_rounds(&self, first: u64) {
        let mut number = first;
        loop {
            let started = self.now_ms();
            let result = self.sync().map_err(|e| e.to_string());
            if result.is_ok() {
                self.last_sync_start_ms.store(started, Ordering::SeqCst);
            } else if let Err(e) = &result {
                tracing::warn!(error = %e, "catching up with the shared store failed");
            }
            let mut f = self.fence.lock();
            self.rounds.send_replace(Round { number, result });
            if f.wanted > f.started {
                f.started += 1;
                number = f.started;
            } else {
                f.running = false;
                return;
            }
        }
    }

    /// Reads the change feed and applies what is new (one query when
    /// nothing changed).
    fn sync(&self) -> Result<(), StoreError> {
        let from = self.applied();
        let changes = self.shared()?.changes_since(from)?;
        if changes.is_empty() {
            return Ok(());
        }
        let _local = self.local.lock();
        self.apply(changes);
        Ok(())
    }

    /// Applies documents newer than `applied`. The caller holds `local`.
    /// Documents at or below `applied` were applied already, or were
    /// superseded by a locked write of this node.
    fn apply(&self, changes: Vec<Changed>) {
        let applied = self.applied();
        let fresh: Vec<&Changed> = changes.iter().filter(|c| c.seq > applied).collect();
        let Some(max) = fresh.iter().map(|c| c.seq).max() else {
            return;
        };
        let kms_docs: Vec<_> = fresh
            .iter()
            .filter(|c| ferrokms_kms::replica::owns_kind(&c.kind))
            .map(|c| c.as_remote())
            .collect();
        let iam_docs: Vec<_> = fresh
            .iter()
            .filter(|c| ferrokms_iam::replica::owns_kind(&c.kind))
            .map(|c| c.as_remote())
            .collect();
        // A document this node cannot read is logged and skipped: one bad
        // row must not stop a node from following every other change.
        if let Err(e) = self.directory.apply_remote(&iam_docs) {
            tracing::error!(error = %e, "applying identity changes from the shared store failed");
        }
        if let Err(e) = self.kms.apply_remote(&kms_docs) {
            tracing::error!(error = %e, "applying key changes from the shared store failed");
        }
        self.applied.fetch_max(max, Ordering::SeqCst);
        tracing::debug!(
            from = applied,
            to = max,
            documents = fresh.len(),
            "caught up"
        );
    }

    /// Runs `f` (which writes through the store) under the cluster write
    /// lock, after catching up. Blocking: call from a blocking thread.
    ///
    /// Writers queued on this node take turns under one hold of the lock
    /// (at most `MAX_WRITES_PER_HOLD` writes or `MAX_LOCK_HOLD`): no other
    /// node can write meanwhile, so there is nothing to catch up between
    /// them, and three round trips per write are saved.
    pub fn write<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let shared = self.shared()?;
        self.pending_writers.fetch_add(1, Ordering::SeqCst);
        let slot = self.local.lock();
        self.pending_writers.fetch_sub(1, Ordering::SeqCst);
        let mut hold = Hold { slot, shared };
        if hold.slot.held_since.is_none() {
            shared.lock_writes()?;
            hold.slot.held_since = Some(Instant::now());
            hold.slot.writes = 0;
            let caught_up = shared
                .changes_since(self.applied())
                .map(|changes| self.apply(changes));
            if let Err(e) = caught_up {
                hold.release();
                return Err(e);
            }
        }
        let out = f();
        hold.slot.writes += 1;
        // Everything committed while we hold the lock is ours and already
        // in memory.
        self.applied
            .fetch_max(shared.last_committed(), Ordering::SeqCst);
        let hand_over = self.pending_writers.load(Ordering::SeqCst) > 0
            && hold.slot.writes < MAX_WRITES_PER_HOLD
            && hold
                .slot
                .held_since
                .is_some_and(|t| t.elapsed() < MAX_LOCK_HOLD);
        if !hand_over {
            hold.release();
        }
        Ok(out)
    }
}

/// This node's turn at writing; releases the cluster lock if the operation
/// panics, so that other nodes do not wait on it.
struct Hold<'a> {
    slot: parking_lot::MutexGuard<'a, WriteSlot>,
    shared: &'a dyn SharedStore,
}

impl Hold<'_> {
    fn release(&mut self) {
        if self.slot.held_since.take().is_some() {
            self.shared.unlock_writes();
        }
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.release();
        }
    }
}

/// KMS operations that never write (the catalog's `reads_only`): they take
/// the read fence only. Every other operation, unknown ones included,
/// takes the write lock.
pub fn kms_op_reads_only(op: &str) -> bool {
    ferrokms_kms::catalog::operation(op).is_some_and(|o| o.reads_only)
}

/// IAM and STS actions that never write (the catalog's `reads_only`).
pub fn query_action_reads_only(service: &str, action: &str) -> bool {
    ferrokms_iam::catalog::operation(service, action).is_some_and(|o| o.reads_only)
}
