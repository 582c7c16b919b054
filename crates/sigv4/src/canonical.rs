//! Canonical request construction, shared by the verifier and the signer so
//! the two can never disagree.

use aws_lc_rs::digest;

use crate::{HttpRequest, SigV4Error};

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub(crate) const X_AMZ_SIGNATURE: &str = "X-Amz-Signature";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex_lower(digest::digest(&digest::SHA256, data).as_ref())
}

/// Lowercase hex, as SigV4 writes hashes and signatures (three per verified
/// request): the digits written into place, shared with the other crates.
pub(crate) use ferrokms_textfast::hex_lower;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// RFC 3986 encoding as SigV4 defines it: everything but `A-Za-z0-9-_.~` becomes
/// uppercase `%XX`.
fn push_encoded(out: &mut String, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
        }
    }
}

/// Non-S3 services sign the path as received, encoded once more (so `%2F`
/// becomes `%252F`), after removing dot segments and empty segments the way
/// botocore and the Rust SDK do.
pub(crate) fn canonical_uri(raw_path: &str, out: &mut String) {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    if !path.contains('.') && !path.contains("//") && path.starts_with('/') {
        push_encoded(out, path.as_bytes(), true);
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let ends_with_slash = ["/", "/.", "/./", "/..", "/../"]
        .iter()
        .any(|s| path.ends_with(s));
    out.push('/');
    for (i, s) in segments.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        push_encoded(out, s.as_bytes(), false);
    }
    if ends_with_slash && !segments.is_empty() {
        out.push('/');
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space and a `%` not
/// followed by two hex digits stays literal. Works on bytes because a decoded
/// parameter need not be UTF-8 and is re-encoded anyway.
pub(crate) fn form_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_val);
                let lo = bytes.get(i + 2).copied().and_then(hex_val);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Query parameters as decoded `(name, value)` pairs in order of appearance.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (form_decode(k), form_decode(v))
    })
}

/// Decode, re-encode and sort by encoded name then value, so clients that
/// encode differently (`+` vs `%20`, lowercase hex) still verify.
pub(crate) fn canonical_query(query: &str, skip_signature: bool, out: &mut String) {
    let mut params: Vec<(String, String)> = query_pairs(query)
        .filter(|(k, _)| !(skip_signature && k.as_slice() == X_AMZ_SIGNATURE.as_bytes()))
        .map(|(k, v)| {
            let mut ek = String::with_capacity(k.len());
            push_encoded(&mut ek, &k, false);
            let mut ev = String::with_capacity(v.len());
            push_encoded(&mut ev, &v, false);
            (ek, ev)
        })
        .collect();
    params.sort_unstable();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
}

/// AWS "Trimall": strip surrounding whitespace, collapse runs of spaces.
///
/// Copies the runs between doubled spaces whole (header values rarely have
/// any); pushing char by char cost several times more
/// (docs/performance.md).
fn push_trimmed(out: &mut String, value: &str) {
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b' ' && bytes[i + 1] == b' ' {
            // Keep this space, skip the ones after it. Cuts fall next to
            // ASCII spaces, so they are char boundaries.
            out.push_str(value.get(start..=i).unwrap_or(""));
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(value.get(start..).unwrap_or(""));
}

/// All values of a header, in order received, joined with `,`.
fn push_header_values(out: &mut String, headers: &[(&str, &str)], name: &str) -> bool {
    let mut found = false;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if found {
                out.push(',');
            }
            push_trimmed(out, v);
            found = true;
        }
    }
    found
}

/// The full canonical request. `signed_headers` is the client's list; every
/// name on it must exist in the request.
pub(crate) fn canonical_request(
    req: &HttpRequest<'_>,
    signed_headers: &[String],
    signed_headers_line: &str,
    payload_hash: &str,
    presigned: bool,
) -> Result<String, SigV4Error> {
    let mut out =
        String::with_capacity(256 + req.path.len() + req.query.len() + 64 * signed_headers.len());
    out.push_str(req.method);
    out.push('\n');
    canonical_uri(req.path, &mut out);
    out.push('\n');
    canonical_query(req.query, presigned, &mut out);
    out.push('\n');
    for name in signed_headers {
        // Clients send the names in lowercase; copy only when one is not.
        let lower: std::borrow::Cow<'_, str> = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name.to_ascii_lowercase().into()
        } else {
            name.as_str().into()
        };
        out.push_str(&lower);
        out.push(':');
        if !push_header_values(&mut out, req.headers, &lower) {
            return Err(SigV4Error::IncompleteSignature(format!(
                "'{name}' is named as a SignedHeader, but it does not exist in the HTTP request."
            )));
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers_line);
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

pub(crate) fn string_to_sign(iso_basic: &str, scope: &str, canonical_request: &str) -> String {
    let mut s = String::with_capacity(ALGORITHM.len() + iso_basic.len() + scope.len() + 68);
    s.push_str(ALGORITHM);
    s.push('\n');
    s.push_str(iso_basic);
    s.push('\n');
    s.push_str(scope);
    s.push('\n');
    s.push_str(&sha256_hex(canonical_request.as_bytes()));
    s
}

pub(crate) fn header<'a>(req: &HttpRequest<'a>, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimall_strips_the_ends_and_collapses_runs_of_spaces() {
        let trim = |v: &str| {
            let mut out = String::new();
            push_trimmed(&mut out, v);
            out
        };
        assert_eq!(trim("  a   b  c \t"), "a b c");
        assert_eq!(trim("\t\u{e9}  \u{fc}"), "\u{e9} \u{fc}");
        assert_eq!(trim("a\t\tb"), "a\t\tb");
        assert_eq!(trim("   "), "");
        assert_eq!(trim(""), "");
        assert_eq!(trim("x  "), "x");
        assert_eq!(trim("a b"), "a b");
        assert_eq!(trim("a    "), "a");
        assert_eq!(trim("a  b  "), "a b");
    }

    fn uri(p: &str) -> String {
        let mut s = String::new();
        canonical_uri(p, &mut s);
        s
    }

    fn query(q: &str) -> String {
        let mut s = String::new();
        canonical_query(q, false, &mut s);
        s
    }

    #[test]
    fn path_segments_are_encoded_once_more() {
        assert_eq!(uri("/"), "/");
        assert_eq!(uri(""), "/");
        assert_eq!(uri("/a%20b/c"), "/a%2520b/c");
        assert_eq!(uri("/a b"), "/a%20b");
        assert_eq!(uri("/~x_y-z.w"), "/~x_y-z.w");
    }

    #[test]
    fn path_dot_and_empty_segments_are_removed() {
        assert_eq!(uri("/a/./b/../c"), "/a/c");
        assert_eq!(uri("//a//b/"), "/a/b/");
        assert_eq!(uri("/.."), "/");
    }

    #[test]
    fn query_is_sorted_by_encoded_name_then_value_with_uppercase_hex() {
        assert_eq!(query("b=2&a=2&a=1"), "a=1&a=2&b=2");
        assert_eq!(query("k=a%2fb"), "k=a%2Fb");
        assert_eq!(query("k=a+b"), "k=a%20b");
        assert_eq!(query("flag"), "flag=");
        assert_eq!(query("k=%zz"), "k=%25zz");
        assert_eq!(query("&&x=1&"), "x=1");
    }

    #[test]
    fn header_values_are_trimmed_collapsed_and_joined_with_commas() {
        let mut s = String::new();
        let headers = [("X-A", "  a   b  "), ("x-a", "c"), ("other", "z")];
        assert!(push_header_values(&mut s, &headers, "x-a"));
        assert_eq!(s, "a b,c");
    }
}
