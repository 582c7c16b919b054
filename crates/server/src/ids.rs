//! Request and event ids: UUID-shaped, unique within the process and
//! unpredictable across restarts, without a system call per id (a random
//! UUID per request costs a getrandom call on the hot path).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn seeds() -> &'static (u64, u64) {
    static SEEDS: OnceLock<(u64, u64)> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let mut b = [0u8; 16];
        // A failure leaves zero seeds: ids stay unique, only predictable.
        let _ = aws_lc_rs::rand::SecureRandom::fill(&aws_lc_rs::rand::SystemRandom::new(), &mut b);
        let (a, c) = b.split_at(8);
        (
            u64::from_le_bytes(a.try_into().unwrap_or([0; 8])),
            u64::from_le_bytes(c.try_into().unwrap_or([0; 8])),
        )
    })
}

/// splitmix64: a bijection on u64, so distinct counters give distinct ids.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A new id in UUID version-4 layout, as ASCII bytes: without an allocation
/// or the formatting machinery (the audit trail writes one per request).
pub fn unique_id_bytes() -> [u8; 36] {
    id_bytes(unique_id_u128())
}

/// A new id as one number (what GetKeyLastUsage keeps per key: two words,
/// not a string); [`id_bytes`] formats it.
pub fn unique_id_u128() -> u128 {
    let (s1, s2) = *seeds();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hi = mix(n ^ s1);
    let lo = mix(hi ^ s2);
    let hi = (hi & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (lo & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    (u128::from(hi) << 64) | u128::from(lo)
}

/// An id from [`unique_id_u128`] in UUID layout.
pub fn id_bytes(id: u128) -> [u8; 36] {
    ferrokms_textfast::uuid_text(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let unique_id = || String::from_utf8_lossy(&unique_id_bytes()).into_owned();
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| unique_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let one = unique_id();
        assert_eq!(one.len(), 36);
        assert_eq!(&one[14..15], "4");
    }

    #[test]
    fn get_key_last_usage_formats_a_request_id_as_the_x_amzn_requestid_header_does() {
        for _ in 0..100 {
            let id = unique_id_u128();
            let header = String::from_utf8_lossy(&id_bytes(id)).into_owned();
            assert_eq!(ferrokms_textfast::uuid_string(id), header);
        }
    }
}
