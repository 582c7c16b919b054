//! JSON text primitives of the fast record writer: strings escaped exactly
//! as serde_json escapes them, checked eight bytes at a time first.

/// Whether a string can be copied into a JSON string as it is: no quote,
/// backslash or control character. Eight bytes at a time (SWAR): about 30
/// strings go through here per record, most of them ids and ARNs that
/// never need escaping, and the byte-at-a-time loop was a third of the
/// record's cost.
pub(super) fn needs_no_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of `x` is below `n` (n <= 0x80).
    let has_less = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let has_byte = |x: u64, b: u8| has_less(x ^ (ONES * u64::from(b)), 1);
    // Whether eight bytes are free of control characters, quotes and
    // backslashes.
    let clean_word = |chunk: &[u8]| {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        (has_less(x, 0x20) | has_byte(x, b'"') | has_byte(x, b'\\')) == 0
    };
    let mut chunks = bytes.chunks_exact(8);
    if !chunks.all(clean_word) {
        return false;
    }
    let rest = chunks.remainder();
    if rest.is_empty() {
        true
    } else if bytes.len() >= 8 {
        // The last eight bytes, overlapping the words already checked: one
        // more word instead of a byte-at-a-time tail.
        clean_word(&bytes[bytes.len() - 8..])
    } else {
        rest.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')
    }
}

/// `s` escaped as JSON string content (without quotes), as serde_json does:
/// quote, backslash and control characters; everything else verbatim.
pub(super) fn push_escaped(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    if needs_no_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

pub(super) fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    push_escaped(out, s);
    out.push(b'"');
}

/// One JSON string made of several pieces (an ARN from its parts).
pub(super) fn push_str_parts(out: &mut Vec<u8>, parts: &[&str]) {
    out.push(b'"');
    for p in parts {
        push_escaped(out, p);
    }
    out.push(b'"');
}

pub(super) fn push_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

pub(super) fn push_raw(out: &mut Vec<u8>, json: &[u8]) {
    if json.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.extend_from_slice(json);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_found_at_every_position_of_a_word() {
        for len in 0..24 {
            let clean = "a".repeat(len);
            assert!(needs_no_escape(clean.as_bytes()));
            let high = "\u{e9}".repeat(len);
            assert!(needs_no_escape(high.as_bytes()));
            for pos in 0..len {
                for special in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
                    let mut b = clean.clone().into_bytes();
                    b[pos] = special;
                    assert!(!needs_no_escape(&b), "len {len} pos {pos} byte {special}");
                }
                // Bytes next to the special ones are clean.
                for ok in [b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff] {
                    let mut b = clean.clone().into_bytes();
                    b[pos] = ok;
                    assert!(needs_no_escape(&b), "len {len} pos {pos} byte {ok}");
                }
            }
        }
    }

    #[test]
    fn escaping_matches_serde_json_for_every_ascii_byte_and_unicode() {
        let mut s: String = (0u8..128).map(char::from).collect();
        s.push_str("é☃😀");
        let mut out = Vec::new();
        push_str(&mut out, &s);
        assert_eq!(out, serde_json::to_vec(&s).unwrap());
    }
}
