//! What the audit trail leaves out of a request and a response, and why:
//! CloudTrail never logs plaintext, ciphertext, messages, MACs, signatures,
//! key material, secrets or tokens; the rest of the request is kept with
//! camelCased member names (encryption context keys are data, kept verbatim).

use serde_json::Value;

use super::json::{push_escaped, push_str};

/// The request members CloudTrail never logs: plaintext, messages, MACs,
/// signatures, ciphertexts (an encapsulated shared secret too) and key
/// material.
const NEVER_LOGGED: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "SharedSecretCiphertextBlob",
    "Message",
    "Mac",
    "Signature",
    "PublicKey",
    "EncryptedKeyMaterial",
    "ImportToken",
    "SecretAccessKey",
    "Password",
    "Recipient",
    // CreateCustomKeyStore / UpdateCustomKeyStore: the proxy credential's
    // secret (inside XksProxyAuthenticationCredential) and a CloudHSM
    // key store's password.
    "RawSecretAccessKey",
    "KeyStorePassword",
];

/// Request parameters as CloudTrail shows them (see [`request_parameters`]),
/// written straight to JSON text from the parsed request body; empty for
/// `null` (an empty body).
///
/// With a memo (the connection's, [`super::ConnMemo`]), the members last
/// written on this connection (the logged ones, in order) and their text
/// are kept: a client repeating a request with other data (another
/// plaintext, which is never logged) gets the text copied, not written
/// again. Members are compared in order, so the text is always what
/// writing this body afresh would give.
pub fn request_parameters_json(body: &Value, memo: Option<&mut ParamsMemo>) -> Vec<u8> {
    let Value::Object(members) = body else {
        return clean_json(body);
    };
    if members.is_empty() {
        return Vec::new();
    }
    let Some(ParamsMemo { kept, text }) = memo else {
        return clean_json(body);
    };
    let logged = || {
        members
            .iter()
            .filter(|(k, _)| !NEVER_LOGGED.contains(&k.as_str()))
    };
    let mut n = 0;
    let same = logged().all(|(k, v)| {
        let hit = kept
            .get(n)
            .is_some_and(|(mk, mv)| mk == k && same_json(mv, v));
        n += 1;
        hit
    }) && n == kept.len();
    if same {
        return text.clone();
    }
    // A miss: the text is written once, for the record, and copied
    // into the memo; the kept members are refilled in place.
    let fresh = clean_json(body);
    // A connection keeps at most this much: large parameters (a key
    // policy, a big encryption context) are written afresh each time.
    if fresh.len() > super::MEMO_MAX_TEXT {
        return fresh;
    }
    text.clear();
    text.extend_from_slice(&fresh);
    let mut pairs = logged();
    kept.retain_mut(|(mk, mv)| match pairs.next() {
        Some((k, v)) => {
            mk.clone_from(k);
            mv.clone_from(v);
            true
        }
        None => false,
    });
    kept.extend(pairs.map(|(k, v)| (k.clone(), v.clone())));
    fresh
}

/// The logged members a connection last wrote and their text
/// ([`request_parameters_json`]).
#[derive(Default)]
pub struct ParamsMemo {
    kept: Vec<(String, Value)>,
    text: Vec<u8>,
}

/// [`request_parameters_json`] without the memo.
pub(super) fn clean_json(body: &Value) -> Vec<u8> {
    match body {
        Value::Object(m) if m.is_empty() => Vec::new(),
        other => {
            let mut out = Vec::with_capacity(256);
            write_clean(&mut out, other, true);
            out
        }
    }
}

/// JSON equality that also requires objects to list their members in the
/// same order (`Value`'s own equality ignores the order, but the text
/// written keeps it).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_json(va, vb))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        _ => a == b,
    }
}

/// `v` as [`request_parameters`] cleans it, as JSON text: at the top level
/// member names are camelCased and the never-logged members left out;
/// encryption context keys and constraint maps are data, kept verbatim.
fn write_clean(out: &mut Vec<u8>, v: &Value, top: bool) {
    match v {
        Value::Object(m) => {
            out.push(b'{');
            let mut first = true;
            // LocalStack's custom key material tag (--dev): its value is
            // key material, never logged.
            let secret_tag = m.get("TagKey").and_then(Value::as_str)
                == Some(ferrokms_kms::given::CUSTOM_KEY_MATERIAL_TAG);
            for (k, val) in m {
                if top && NEVER_LOGGED.contains(&k.as_str()) {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.push(b'"');
                if top {
                    match k.as_bytes().first() {
                        // Model member names: an ASCII letter first.
                        Some(&f) if f.is_ascii_alphanumeric() => {
                            out.push(f.to_ascii_lowercase());
                            push_escaped(out, &k[1..]);
                        }
                        _ => {
                            let mut c = k.chars();
                            if let Some(f) = c.next() {
                                for l in f.to_lowercase() {
                                    let mut buf = [0u8; 4];
                                    push_escaped(out, l.encode_utf8(&mut buf));
                                }
                                push_escaped(out, c.as_str());
                            }
                        }
                    }
                } else {
                    push_escaped(out, k);
                }
                out.extend_from_slice(b"\":");
                if secret_tag && k == "TagValue" {
                    push_str(out, "HIDDEN_DUE_TO_SECURITY_REASONS");
                    continue;
                }
                let nested_top = top && !k.ends_with("EncryptionContext") && k != "Constraints";
                write_clean(out, val, nested_top);
            }
            out.push(b'}');
        }
        Value::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_clean(out, x, top);
            }
            out.push(b']');
        }
        Value::String(s) => push_str(out, s),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, n);
        }
    }
}

/// Response elements CloudTrail keeps for KMS: the outcome of management
/// calls, never data or tokens. JSON text, empty for `null`.
pub fn response_elements(op: &str, response: &[u8]) -> Vec<u8> {
    const KEPT: &[&str] = &[
        "CreateKey",
        "ScheduleKeyDeletion",
        "CancelKeyDeletion",
        "CreateGrant",
        "ReplicateKey",
        "CreateCustomKeyStore",
    ];
    if !KEPT.contains(&op) {
        return Vec::new();
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(response) else {
        return Vec::new();
    };
    if let Value::Object(m) = &mut v {
        m.remove("GrantToken");
    }
    clean_json(&v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map};

    /// Request parameters as CloudTrail shows them: camelCase member names,
    /// secrets and data left out.
    fn request_parameters(body: &Value) -> Value {
        fn camel(s: &str) -> String {
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => String::new(),
            }
        }
        fn clean(v: &Value, top: bool) -> Value {
            match v {
                Value::Object(m) => {
                    let mut out = Map::new();
                    for (k, val) in m {
                        if top && NEVER_LOGGED.contains(&k.as_str()) {
                            continue;
                        }
                        // Encryption context keys are data, not member names.
                        let key = if top { camel(k) } else { k.clone() };
                        let nested_top =
                            top && !k.ends_with("EncryptionContext") && k != "Constraints";
                        out.insert(key, clean(val, nested_top));
                    }
                    Value::Object(out)
                }
                Value::Array(a) => Value::Array(a.iter().map(|x| clean(x, top)).collect()),
                other => other.clone(),
            }
        }
        match body {
            Value::Object(m) if m.is_empty() => Value::Null,
            other => clean(other, true),
        }
    }

    fn params(body: &Value) -> Value {
        let raw = request_parameters_json(body, None);
        if raw.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&raw).unwrap()
    }

    #[test]
    fn request_parameters_leave_out_plaintext_and_keep_encryption_context_keys_verbatim() {
        let body = json!({"KeyId": "alias/a", "Plaintext": "c2VjcmV0", "EncryptionContext": {"Tenant": "x"}, "GrantTokens": ["t"]});
        assert_eq!(
            params(&body),
            json!({"keyId": "alias/a", "encryptionContext": {"Tenant": "x"}, "grantTokens": ["t"]})
        );
    }

    #[test]
    fn custom_key_store_parameters_leave_out_the_proxy_secret() {
        let body = json!({"CustomKeyStoreName": "s", "XksProxyAuthenticationCredential": {"AccessKeyId": "ABCDEFGHIJKLMNOPQRST", "RawSecretAccessKey": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}, "KeyStorePassword": "hunter22"});
        let text = String::from_utf8(clean_json(&body)).unwrap();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.contains("ABCDEFGHIJKLMNOPQRST"), "{text}");
    }

    #[test]
    fn decapsulate_parameters_leave_out_the_encapsulated_shared_secret() {
        let body = json!({"KeyId": "k", "SharedSecretCiphertextBlob": "Y3Q=", "EncapsulationAlgorithm": "ML_KEM"});
        assert_eq!(
            params(&body),
            json!({"keyId": "k", "encapsulationAlgorithm": "ML_KEM"})
        );
    }

    #[test]
    fn request_parameters_written_directly_equal_the_cleaned_json_tree() {
        let bodies = [
            json!({}),
            json!({"KeyId": "k", "NumberOfBytes": 32, "Ratio": 1.5, "DryRun": false, "X": null}),
            json!({"Constraints": {"EncryptionContextSubset": {"A\"q": "line\nbreak\u{1}"}},
                   "Operations": ["Encrypt", "Decrypt"], "Nested": [{"InnerKey": [1, {"Deep": true}]}]}),
            json!({"ÉtatKey": "ü", "Message": "secret", "Signature": "s", "Tags": [{"TagKey": "a", "TagValue": "b\\c"}]}),
            json!([1, "two"]),
        ];
        for body in bodies {
            assert_eq!(params(&body), request_parameters(&body), "{body}");
        }
    }

    #[test]
    fn request_parameters_through_the_connection_memo_equal_parameters_written_afresh() {
        let bodies = [
            json!({"KeyId": "k1", "Plaintext": "AAAA", "EncryptionContext": {"a": "1", "b": "2"}}),
            // Only the never-logged plaintext differs: copied from the memo.
            json!({"KeyId": "k1", "Plaintext": "BBBB", "EncryptionContext": {"a": "1", "b": "2"}}),
            // The same context in another order is other text.
            json!({"KeyId": "k1", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}}),
            json!({"KeyId": "k2", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}}),
            json!({"KeyId": "k2", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}, "GrantTokens": ["t"]}),
            json!({"KeyId": "k2", "Plaintext": "BBBB", "EncryptionContext": {"b": "2", "a": "1"}, "GrantTokens": ["u"]}),
            json!({"KeyId": "k2", "Plaintext": "BBBB"}),
            json!({"Plaintext": "BBBB", "KeyId": "k2"}),
            json!({"KeyId": "k2", "Limit": 1}),
            json!({"KeyId": "k2", "Limit": 1.0}),
            json!({}),
            json!({"Plaintext": "only secret"}),
            json!({"KeyId": "k2"}),
            json!([1, 2]),
            json!({"KeyId": "k2"}),
        ];
        let mut memo = ParamsMemo::default();
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(
                String::from_utf8(request_parameters_json(body, Some(&mut memo))).unwrap(),
                String::from_utf8(clean_json(body)).unwrap(),
                "body {i}"
            );
        }
    }

    #[test]
    fn a_connection_memo_does_not_hold_large_parameters() {
        let mut memo = ParamsMemo::default();
        let big = json!({"KeyId": "k", "Policy": "x".repeat(2 * super::super::MEMO_MAX_TEXT)});
        let text = request_parameters_json(&big, Some(&mut memo));
        assert_eq!(text, clean_json(&big));
        assert!(memo.text.is_empty() && memo.kept.is_empty());
        let small = json!({"KeyId": "k"});
        assert_eq!(
            request_parameters_json(&small, Some(&mut memo)),
            clean_json(&small)
        );
        assert_eq!(memo.text, clean_json(&small));
    }

    #[test]
    fn request_member_names_are_camel_cased_as_cloudtrail_writes_them() {
        let body = json!({"KeyId": "k", "EncryptionContext": {"Dept": "x"}, "GrantTokens": ["t"],
                          "\u{c9}tat": 1, "Plaintext": "secret"});
        let text = String::from_utf8(request_parameters_json(&body, None)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v,
            json!({"keyId": "k", "encryptionContext": {"Dept": "x"}, "grantTokens": ["t"], "\u{e9}tat": 1})
        );
    }
}
