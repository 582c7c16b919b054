//! Text helpers for the per-request hot path: joining strings, splitting
//! fields, hex and UUID text. Each replaces a general tool (`format!`,
//! `str::splitn`, `hex::encode`, `Display` with padding) that cost several
//! times more per call, measured on Encrypt (docs/performance.md). No
//! dependencies, so any crate may use them: identifiers (`ferrokms-types`),
//! policies, SigV4, KMS, the server.

/// The parts joined into one exactly-sized `String`. ARNs, action names and
/// trace labels are built several times per request; `format!` costs several
/// times more than the copying itself (measured with perf on Encrypt).
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// `s` cut at the first `N - 1` occurrences of the ASCII byte `sep` (the
/// last field keeps any further ones), or `None` when there are fewer. One
/// pass over the bytes; `str::splitn` with a `char` pattern costs several
/// times more per field (docs/performance.md).
pub fn split_fields<const N: usize>(s: &str, sep: u8) -> Option<[&str; N]> {
    let cuts = cut_positions::<N>(s, sep)?;
    let mut out = [""; N];
    let mut start = 0;
    for (i, field) in out.iter_mut().enumerate() {
        let end = if i + 1 < N { cuts[i] } else { s.len() };
        *field = s.get(start..end)?;
        start = end + 1;
    }
    Some(out)
}

/// Offsets of the first `N - 1` `sep` bytes of `s` (the tail of the array
/// is unused), or `None` when there are fewer.
pub fn cut_positions<const N: usize>(s: &str, sep: u8) -> Option<[usize; N]> {
    let mut cuts = [0usize; N];
    let mut n = 0;
    if N > 1 {
        for (i, &b) in s.as_bytes().iter().enumerate() {
            if b == sep {
                cuts[n] = i;
                n += 1;
                if n + 1 == N {
                    break;
                }
            }
        }
    }
    (n + 1 >= N).then_some(cuts)
}

/// Lowercase hex of `bytes`, written into place: `hex::encode` collects
/// char by char, several times slower for the 32-byte material id every
/// Encrypt names (docs/performance.md).
pub fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = vec![0u8; bytes.len() * 2];
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    // Only ASCII digits and letters were written.
    String::from_utf8(out).unwrap_or_default()
}

/// A 128-bit id as a UUID is written (`8-4-4-4-12` lowercase hex digits),
/// without an allocation: request ids, audit event ids and the ids
/// GetKeyLastUsage reports all print through this one function.
///
/// Byte by byte into fixed positions, which the compiler unrolls: two of
/// these run on every request (request id, audit event id), and a digit at
/// a time with 128-bit shifts cost several times more (docs/performance.md).
pub fn uuid_text(id: u128) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    /// Where the two digits of each of the 16 bytes go.
    const AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    let mut out = [b'-'; 36];
    for (byte, at) in id.to_be_bytes().into_iter().zip(AT) {
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0xf)];
    }
    out
}

/// [`uuid_text`] as a `String` (the text is ASCII; no lossy conversion,
/// which walks it as UTF-8 chunks, needed).
pub fn uuid_string(id: u128) -> String {
    let text = uuid_text(id);
    std::str::from_utf8(&text).unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_fields_agrees_with_splitn() {
        for s in [
            "a:b:c",
            "a:b:c:d:e",
            "::",
            "a",
            "",
            "\u{e9}:\u{fc}:x:y",
            "a:b",
        ] {
            let want: Vec<&str> = s.splitn(3, ':').collect();
            match split_fields::<3>(s, b':') {
                Some(got) => assert_eq!(got.to_vec(), want, "{s}"),
                None => assert!(want.len() < 3, "{s}"),
            }
        }
        assert_eq!(split_fields::<1>("a:b", b':'), Some(["a:b"]));
    }

    #[test]
    fn hex_lower_is_hex_encode() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&all), hex::encode(&all));
        assert_eq!(hex_lower(&[]), "");
    }

    #[test]
    fn uuid_text_is_the_formatted_uuid_layout() {
        let single_bits = (0..128).map(|k| 1u128 << k);
        for id in [0u128, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210]
            .into_iter()
            .chain(single_bits)
        {
            let want = format!(
                "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                (id >> 96) as u32,
                (id >> 80) as u16,
                (id >> 64) as u16,
                (id >> 48) as u16,
                id & 0xffff_ffff_ffff
            );
            assert_eq!(String::from_utf8_lossy(&uuid_text(id)), want);
            assert_eq!(uuid_string(id), want);
        }
    }
}
