//! Last cryptographic use of each key (GetKeyLastUsage).
//!
//! Every successful cryptographic operation records its use, so this sits
//! on the hot path: one [`UsageSlot`] per key holds the last use in atomics,
//! reached through the `Arc` the key already carries (no map lookup, no
//! lock, no allocation, no I/O per request). The slot is not part of the
//! key record: the record is replaced by an `Arc` swap on every change, and
//! each new version of a key takes the slot of the version it replaces
//! ([`crate::state::KeyMap::usage_slot`]), so all versions share one. There
//! is no separate table of slots: flushing walks the keys.
//!
//! Durability is batched: [`Kms::flush_usage`] writes one `kms.usage`
//! document per key whose slot changed since the last flush (the server's
//! sweeper calls it every 10 seconds and once more at a graceful stop), and
//! [`Kms::open`] loads them. A kill -9 loses at most the uses of the last
//! flush interval. With several nodes, documents from other nodes merge by
//! taking the later timestamp ([`UsageSlot::merge`]), never moving a key's
//! last use backwards.

use std::cell::Cell;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

use ferrokms_store::Change;
use serde::{Deserialize, Serialize};

use crate::api::{GetKeyLastUsageRequest, GetKeyLastUsageResponse, KeyLastUsageData};
use crate::ids::{Accepts, KeyAddr};
use crate::model::ms_to_epoch_seconds;
use crate::{Caller, Kms, KmsError};

pub(crate) const KIND_USAGE: &str = "kms.usage";

/// The day ferrokms began recording key usage (2026-11-24T00:00:00Z): the
/// `TrackingStartDate` of keys created before it. Keys created later
/// answer their creation date, as AWS does.
pub const TRACKING_START_MS: i64 = 1_795_478_400_000;

/// The operations GetKeyLastUsage reports (`KeyLastUsageTrackingOperation`
/// in the service model), in the model's order.
// Each variant is the KMS operation of the same name.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrackedOp {
    Decrypt,
    DeriveSharedSecret,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyWithoutPlaintext,
    GenerateMac,
    ReEncrypt,
    Sign,
    Verify,
    VerifyMac,
    Encapsulate,
    Decapsulate,
}

/// The stored code of an operation is its 1-based position here: new
/// operations go at the end so that stamps already stored keep their
/// meaning (the model lists Encapsulate and Decapsulate last too).
const ALL_OPS: [TrackedOp; 14] = [
    TrackedOp::Decrypt,
    TrackedOp::DeriveSharedSecret,
    TrackedOp::Encrypt,
    TrackedOp::GenerateDataKey,
    TrackedOp::GenerateDataKeyPair,
    TrackedOp::GenerateDataKeyPairWithoutPlaintext,
    TrackedOp::GenerateDataKeyWithoutPlaintext,
    TrackedOp::GenerateMac,
    TrackedOp::ReEncrypt,
    TrackedOp::Sign,
    TrackedOp::Verify,
    TrackedOp::VerifyMac,
    TrackedOp::Encapsulate,
    TrackedOp::Decapsulate,
];

impl TrackedOp {
    /// Every tracked operation, in the model's order.
    pub fn all() -> &'static [TrackedOp] {
        &ALL_OPS
    }

    /// 1-based, so that a zero stamp means "never used".
    fn code(self) -> u64 {
        ALL_OPS.iter().position(|o| *o == self).unwrap_or(0) as u64 + 1
    }

    fn from_code(code: u64) -> Option<TrackedOp> {
        ALL_OPS.get((code as usize).checked_sub(1)?).copied()
    }

    /// The operation's name as the service model spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrackedOp::Decrypt => "Decrypt",
            TrackedOp::DeriveSharedSecret => "DeriveSharedSecret",
            TrackedOp::Encrypt => "Encrypt",
            TrackedOp::GenerateDataKey => "GenerateDataKey",
            TrackedOp::GenerateDataKeyPair => "GenerateDataKeyPair",
            TrackedOp::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            TrackedOp::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            TrackedOp::GenerateMac => "GenerateMac",
            TrackedOp::ReEncrypt => "ReEncrypt",
            TrackedOp::Sign => "Sign",
            TrackedOp::Verify => "Verify",
            TrackedOp::VerifyMac => "VerifyMac",
            TrackedOp::Encapsulate => "Encapsulate",
            TrackedOp::Decapsulate => "Decapsulate",
        }
    }
}

/// The ids of the request being served: its `x-amzn-RequestId` and the
/// `eventID` of its audit record, as 128-bit numbers (0: unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestIds {
    /// The request's id, `x-amzn-RequestId`.
    pub request_id: u128,
    /// The `eventID` of the request's audit record.
    pub event_id: u128,
}

thread_local! {
    static CURRENT: Cell<RequestIds> = const { Cell::new(RequestIds { request_id: 0, event_id: 0 }) };
}

/// Runs `f` with `ids` as the ids recorded by any key use inside it.
///
/// A thread-local rather than a member of [`crate::Caller`]: the ids are a
/// concern of the HTTP edge and of this module only, and every operation
/// would otherwise carry them for one line of bookkeeping. Operations run on
/// the thread that calls them, so the scope is exact.
pub fn with_request_ids<T>(ids: RequestIds, f: impl FnOnce() -> T) -> T {
    let before = CURRENT.with(|c| c.replace(ids));
    let out = f();
    CURRENT.with(|c| c.set(before));
    out
}

fn current_ids() -> RequestIds {
    CURRENT.with(Cell::get)
}

/// The id of the request being served, as text (`kmsRequestId` of the calls
/// to an external key store proxy); a fresh random one outside a request.
pub(crate) fn current_request_id() -> String {
    match current_ids().request_id {
        0 => uuid::Uuid::new_v4().to_string(),
        id => ferrokms_textfast::uuid_string(id),
    }
}

fn parse_uuid(s: &str) -> Option<u128> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(&hex, 16).ok()
}

/// One key's last use, readable as a whole while requests update it.
///
/// A sequence lock: `seq` is odd while a writer is inside. A writer that
/// finds another one inside gives up rather than wait: both are recording a
/// use of the same instant, and the hot path must never spin.
#[derive(Debug, Default)]
pub struct UsageSlot {
    seq: AtomicU64,
    /// `(ms << 8) | op code`; 0 when the key was never used.
    stamp: AtomicU64,
    request_hi: AtomicU64,
    request_lo: AtomicU64,
    event_hi: AtomicU64,
    event_lo: AtomicU64,
    /// `seq` as of the last flush (or load): the slot is dirty when they differ.
    flushed_seq: AtomicU64,
}

/// A consistent copy of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastUse {
    /// When the key was last used, milliseconds since the Unix epoch.
    pub ms: i64,
    /// The operation that used it.
    pub op: TrackedOp,
    /// The ids of that request.
    pub ids: RequestIds,
}

fn stamp(ms: i64, op: TrackedOp) -> u64 {
    ((ms.max(0) as u64) << 8) | op.code()
}

fn stamp_ms(stamp: u64) -> i64 {
    (stamp >> 8) as i64
}

impl UsageSlot {
    /// Records a use at `ms` (hot path). Skipped when the slot already holds
    /// this operation at this millisecond (so a busy key is written about
    /// once per millisecond, not once per request: the ids then name the
    /// first such request), or a later use, or another writer is inside.
    pub fn record(&self, op: TrackedOp, ms: i64) {
        let new = stamp(ms, op);
        let old = self.stamp.load(Ordering::Relaxed);
        if old == new || stamp_ms(old) > ms {
            return;
        }
        self.write_if(new, current_ids(), false);
    }

    /// Takes a use recorded elsewhere (another node, the store) when it is
    /// later than what the slot holds; the slot is then clean (that use is
    /// stored already) unless it changed meanwhile. Returns whether it took it.
    fn merge(&self, use_: LastUse) -> bool {
        let new = stamp(use_.ms, use_.op);
        if stamp_ms(self.stamp.load(Ordering::Relaxed)) >= use_.ms {
            return false;
        }
        self.write_if(new, use_.ids, true)
    }

    /// The sequence-lock write: enter (odd), store, leave (even). With
    /// `wait`, waits for a writer inside instead of giving up (not the hot
    /// path). The stamp is checked again inside so a slower writer never
    /// replaces a later use.
    fn write_if(&self, new: u64, ids: RequestIds, wait: bool) -> bool {
        let s = loop {
            let s = self.seq.load(Ordering::Relaxed);
            if s & 1 == 0
                && self
                    .seq
                    .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                break s;
            }
            if !wait {
                return false;
            }
            std::hint::spin_loop();
        };
        // The odd `seq` is visible before any of the stores below.
        fence(Ordering::Release);
        let old = self.stamp.load(Ordering::Relaxed);
        let newer = stamp_ms(new) > stamp_ms(old) || (stamp_ms(new) == stamp_ms(old) && new != old);
        if newer {
            self.stamp.store(new, Ordering::Relaxed);
            self.request_hi
                .store((ids.request_id >> 64) as u64, Ordering::Relaxed);
            self.request_lo
                .store(ids.request_id as u64, Ordering::Relaxed);
            self.event_hi
                .store((ids.event_id >> 64) as u64, Ordering::Relaxed);
            self.event_lo.store(ids.event_id as u64, Ordering::Relaxed);
            self.seq.store(s + 2, Ordering::Release);
            if wait {
                // Merged from the store: what the slot holds is stored.
                self.flushed_seq.store(s + 2, Ordering::Relaxed);
            }
        } else {
            // Nothing changed: leave the sequence where it was (not dirty).
            self.seq.store(s, Ordering::Release);
        }
        newer
    }

    /// A consistent copy and the sequence it was taken at; `None` when the
    /// key was never used.
    fn read(&self) -> (Option<LastUse>, u64) {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let st = self.stamp.load(Ordering::Relaxed);
            let rh = self.request_hi.load(Ordering::Relaxed);
            let rl = self.request_lo.load(Ordering::Relaxed);
            let eh = self.event_hi.load(Ordering::Relaxed);
            let el = self.event_lo.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) != s1 {
                continue;
            }
            let use_ = TrackedOp::from_code(st & 0xff).map(|op| LastUse {
                ms: stamp_ms(st),
                op,
                ids: RequestIds {
                    request_id: (u128::from(rh) << 64) | u128::from(rl),
                    event_id: (u128::from(eh) << 64) | u128::from(el),
                },
            });
            return (use_, s1);
        }
    }

    /// The last use, if any.
    pub fn last_use(&self) -> Option<LastUse> {
        self.read().0
    }
}

/// The stored form of a slot (`kms.usage`, one document per key, id = the
/// key's storage id).
#[derive(Debug, Serialize, Deserialize)]
struct UsageDoc {
    key: KeyAddr,
    ms: i64,
    op: TrackedOp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
}

impl UsageDoc {
    fn last_use(&self) -> LastUse {
        LastUse {
            ms: self.ms,
            op: self.op,
            ids: RequestIds {
                request_id: self.request_id.as_deref().and_then(parse_uuid).unwrap_or(0),
                event_id: self.event_id.as_deref().and_then(parse_uuid).unwrap_or(0),
            },
        }
    }
}

/// Folds in a stored document (at start or from another node) as the later
/// of it and the key's own last use. A document of a key that is not
/// loaded (deleted before its usage was) is ignored.
pub(crate) fn apply_doc(
    keys: &crate::state::KeyMap,
    id: &str,
    body: &[u8],
) -> Result<(), KmsError> {
    let doc: UsageDoc = serde_json::from_slice(body)
        .map_err(|e| KmsError::Internal(format!("stored usage {id} is unreadable: {e}")))?;
    if let Some(key) = keys.get(&doc.key) {
        key.usage.merge(doc.last_use());
    }
    Ok(())
}

impl Kms {
    /// GetKeyLastUsage: the key's last successful cryptographic use. Key id
    /// or key ARN only (no alias), own account only (`kms:GetKeyLastUsage`
    /// is not a cross-account action), in every key state.
    pub fn get_key_last_usage(
        &self,
        caller: &Caller,
        req: GetKeyLastUsageRequest,
    ) -> Result<GetKeyLastUsageResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "GetKeyLastUsage")?;
        let r = &key.record;
        let id = |v: u128| (v != 0).then(|| ferrokms_textfast::uuid_string(v));
        Ok(GetKeyLastUsageResponse {
            key_id: r.addr.key_id.to_string(),
            key_last_usage: key.usage.last_use().map(|u| KeyLastUsageData {
                operation: u.op.as_str(),
                timestamp: ms_to_epoch_seconds(u.ms),
                cloud_trail_event_id: id(u.ids.event_id),
                kms_request_id: id(u.ids.request_id),
            }),
            tracking_start_date: ms_to_epoch_seconds(r.created_ms.max(TRACKING_START_MS)),
            key_creation_date: ms_to_epoch_seconds(r.created_ms),
        })
    }

    /// Records a successful cryptographic use of a key (hot path).
    pub(crate) fn record_use(&self, key: &crate::state::Key, op: TrackedOp) {
        key.usage.record(op, self.clock.now_ms());
    }

    /// Writes the last use of every key used since the previous flush, in
    /// one store transaction. Returns how many documents were written.
    /// Serialised with key deletion (the writer lock), so a deleted key's
    /// usage is never written back.
    pub fn flush_usage(&self) -> Result<usize, KmsError> {
        let _w = self.writer.lock();
        let keys: Vec<Arc<crate::state::Key>> = self.state.read().keys.values().cloned().collect();
        let mut changes = Vec::new();
        let mut flushed = Vec::new();
        for key in keys {
            let (addr, slot) = (&key.record.addr, &key.usage);
            let (use_, seq) = slot.read();
            let Some(u) = use_ else { continue };
            if slot.flushed_seq.load(Ordering::Relaxed) == seq {
                continue;
            }
            let doc = UsageDoc {
                key: addr.clone(),
                ms: u.ms,
                op: u.op,
                request_id: (u.ids.request_id != 0)
                    .then(|| ferrokms_textfast::uuid_string(u.ids.request_id)),
                event_id: (u.ids.event_id != 0)
                    .then(|| ferrokms_textfast::uuid_string(u.ids.event_id)),
            };
            changes.push(Change::Put {
                kind: KIND_USAGE,
                id: addr.storage_id(),
                body: serde_json::to_vec(&doc)
                    .map_err(|e| KmsError::Internal(format!("cannot encode key usage: {e}")))?,
            });
            flushed.push((slot.clone(), seq));
        }
        if changes.is_empty() {
            return Ok(0);
        }
        self.store.apply(&changes)?;
        for (slot, seq) in &flushed {
            slot.flushed_seq.store(*seq, Ordering::Relaxed);
        }
        Ok(changes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_codes_keep_their_meaning_and_new_operations_come_last() {
        let codes: Vec<(u64, &str)> = TrackedOp::all()
            .iter()
            .map(|o| (o.code(), o.as_str()))
            .collect();
        assert_eq!(codes[0], (1, "Decrypt"));
        assert_eq!(codes[11], (12, "VerifyMac"));
        assert_eq!(codes[12], (13, "Encapsulate"));
        assert_eq!(codes[13], (14, "Decapsulate"));
        for (code, name) in codes {
            assert_eq!(
                TrackedOp::from_code(code).map(TrackedOp::as_str),
                Some(name)
            );
        }
        assert_eq!(TrackedOp::from_code(0), None);
        assert_eq!(TrackedOp::from_code(15), None);
    }

    #[test]
    fn a_later_use_replaces_an_earlier_one_and_never_the_reverse() {
        let slot = UsageSlot::default();
        assert_eq!(slot.last_use(), None);
        slot.record(TrackedOp::Encrypt, 2_000);
        slot.record(TrackedOp::Decrypt, 1_000);
        let u = slot.last_use().map(|u| (u.ms, u.op));
        assert_eq!(u, Some((2_000, TrackedOp::Encrypt)));
        slot.record(TrackedOp::Decrypt, 2_000);
        let u = slot.last_use().map(|u| (u.ms, u.op));
        assert_eq!(u, Some((2_000, TrackedOp::Decrypt)));
    }

    #[test]
    fn a_remote_use_merges_only_when_later_and_leaves_the_slot_clean() {
        let slot = UsageSlot::default();
        slot.record(TrackedOp::Sign, 5_000);
        let (_, seq) = slot.read();
        assert_ne!(
            slot.flushed_seq.load(Ordering::Relaxed),
            seq,
            "recorded: dirty"
        );
        let older = LastUse {
            ms: 4_000,
            op: TrackedOp::Verify,
            ids: RequestIds::default(),
        };
        assert!(!slot.merge(older));
        assert_eq!(slot.last_use().map(|u| u.op), Some(TrackedOp::Sign));
        let later = LastUse {
            ms: 6_000,
            op: TrackedOp::Verify,
            ids: RequestIds {
                request_id: 7,
                event_id: 9,
            },
        };
        assert!(slot.merge(later));
        assert_eq!(slot.last_use(), Some(later));
    }

    #[test]
    fn request_ids_in_scope_are_recorded_with_the_use() {
        let slot = UsageSlot::default();
        let ids = RequestIds {
            request_id: 0x1234_5678_9abc_4def_8123_4567_89ab_cdef,
            event_id: 42,
        };
        with_request_ids(ids, || slot.record(TrackedOp::GenerateMac, 10));
        assert_eq!(slot.last_use().map(|u| u.ids), Some(ids));
        assert_eq!(current_ids(), RequestIds::default(), "scope restored");
        let text = ferrokms_textfast::uuid_string(ids.request_id);
        assert_eq!(text, "12345678-9abc-4def-8123-456789abcdef");
        assert_eq!(parse_uuid(&text), Some(ids.request_id));
    }
}
