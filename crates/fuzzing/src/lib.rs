//! The fuzz targets' bodies, one function per target.
//!
//! They live here, in the main workspace, rather than in `fuzz/fuzz_targets`
//! so that `cargo test -p ferrokms-fuzzing` replays the committed corpus
//! (`fuzz/corpus/<target>/`) through exactly the code libFuzzer drives: a
//! crash found once stays a failing test on the stable toolchain, with no
//! cargo-fuzz or nightly needed. Each function must return normally for any
//! input; a panic is the bug the fuzzer looks for.
//!
//! Input formats are plain text where possible, so that a corpus entry is
//! readable and libFuzzer's mutations stay close to real requests.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use ferrokms_iam::Directory;
use ferrokms_kms::{Caller, Kms};
use ferrokms_server::kms_api;
use ferrokms_server::query::Params;
use ferrokms_server::validate::Model;
use ferrokms_sigv4::{HttpRequest, Verifier};
use ferrokms_store::{MemoryStore, Sealer};
use ferrokms_types::{AccountId, Region};
use serde_json::Value;

/// The account every target acts in.
pub const ACCOUNT: &str = "111122223333";
/// The secret the `sigv4` target verifies against; its corpus is signed
/// with it at [`SIGV4_NOW`].
pub const SIGV4_SECRET: &str = "fuzz/secret/ABCDEFGHIJKLMNOPQRSTUVWXYZ";
/// The `sigv4` target's clock: 2024-01-01T00:00:00Z, so a corpus entry
/// stays inside the allowed skew forever.
pub const SIGV4_NOW_SECS: u64 = 1_704_067_200;

/// The names of the targets (the directories of `fuzz/corpus`).
pub const TARGETS: [&str; 5] = [
    "kms_request",
    "sigv4",
    "query",
    "ciphertext",
    "policy_parse",
];

/// Runs one input through the named target; `false` for an unknown name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "kms_request" => kms_request(data),
        "sigv4" => sigv4(data),
        "query" => query(data),
        "ciphertext" => ciphertext(data),
        "policy_parse" => policy_parse(data),
        _ => return false,
    }
    true
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        Model::load(kms_api::KMS_MODEL).unwrap_or_else(|e| panic!("built-in model: {e}"))
    })
}

fn account() -> AccountId {
    AccountId::parse(ACCOUNT).unwrap_or_else(|e| panic!("{e}"))
}

fn caller() -> Caller {
    Caller::root(
        account(),
        Region::parse("us-east-1").unwrap_or_else(|e| panic!("{e}")),
    )
}

/// A fresh in-memory KMS per input, with one key of each kind an
/// operation can need, so that a crash never depends on what earlier
/// inputs did (libFuzzer reproduces a crash from its input alone).
struct Fixture {
    kms: Kms,
    /// Placeholder -> key id, substituted into request bodies.
    keys: Vec<(&'static str, String)>,
}

impl Fixture {
    fn new() -> Fixture {
        let sealer = Sealer::ephemeral().unwrap_or_else(|e| panic!("sealer: {e}"));
        let kms = Kms::open(Arc::new(MemoryStore::default()), Arc::new(sealer))
            .unwrap_or_else(|e| panic!("kms: {e}"));
        let caller = caller();
        let mut keys = Vec::new();
        for (name, body) in [
            ("$SYM", r#"{}"#),
            (
                "$HMAC",
                r#"{"KeySpec":"HMAC_256","KeyUsage":"GENERATE_VERIFY_MAC"}"#,
            ),
            (
                "$ECC",
                r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"SIGN_VERIFY"}"#,
            ),
            (
                "$ECDH",
                r#"{"KeySpec":"ECC_NIST_P256","KeyUsage":"KEY_AGREEMENT"}"#,
            ),
            (
                "$KEM",
                r#"{"KeySpec":"ML_KEM_512","KeyUsage":"ENCAPSULATE_DECAPSULATE"}"#,
            ),
        ] {
            let body: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}"));
            let out = kms_api::dispatch(&kms, model(), &caller, "CreateKey", body)
                .unwrap_or_else(|e| panic!("CreateKey {name}: {e:?}"));
            let out: Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
            let id = out["KeyMetadata"]["KeyId"]
                .as_str()
                .unwrap_or_else(|| panic!("no KeyId"))
                .to_string();
            keys.push((name, id));
        }
        Fixture { kms, keys }
    }

    fn key(&self, placeholder: &str) -> &str {
        self.keys
            .iter()
            .find(|(p, _)| *p == placeholder)
            .map(|(_, id)| id.as_str())
            .unwrap_or("")
    }

    /// Decodes the body as the server does (JSON, an empty body being `{}`)
    /// and dispatches it; the outcome is irrelevant, only a panic counts.
    fn request(&self, op: &str, body: &[u8]) {
        let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            match serde_json::from_slice(body) {
                Ok(v) => v,
                Err(_) => return,
            }
        };
        // A fresh caller per request, as in the server: a caller carries
        // the request's authorization trace, which grows with every check.
        let _ = kms_api::dispatch(&self.kms, model(), &caller(), op, value);
    }
}

fn shared_fixture() -> &'static Fixture {
    static SHARED: OnceLock<Fixture> = OnceLock::new();
    SHARED.get_or_init(Fixture::new)
}

/// Requests that generate RSA key pairs take up to seconds each; they are
/// left out so that the fuzzer spends its time on parsing and validation.
/// (Their inputs are the same shapes every other operation has.)
fn generates_rsa(op: &str, body: &[u8]) -> bool {
    let rsa = body.windows(3).any(|w| w.eq_ignore_ascii_case(b"RSA"));
    matches!(
        op,
        "CreateKey" | "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext"
    ) && rsa
}

/// `kms_request`: `OPERATION\nBODY`. The body goes through JSON decoding,
/// the model-driven validator and the typed decoding of the operation, and
/// runs against a fresh in-memory KMS. `$SYM`, `$HMAC`, `$ECC` and `$ECDH`
/// in the body name that fixture's keys.
pub fn kms_request(data: &[u8]) {
    let (op, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(op) = std::str::from_utf8(op) else {
        return;
    };
    if generates_rsa(op, body) {
        return;
    }
    // Operations that change state get a fresh fixture; the others share
    // one (building a fixture costs four key generations, which would
    // dominate the run).
    let fresh;
    let fx = if kms_api::runs_blocking(op) || op == "CreateKey" {
        fresh = Fixture::new();
        &fresh
    } else {
        shared_fixture()
    };
    match std::str::from_utf8(body) {
        Ok(text) if text.contains('$') => {
            let mut text = text.to_string();
            for (p, id) in &fx.keys {
                text = text.replace(p, id);
            }
            fx.request(op, text.as_bytes());
        }
        _ => fx.request(op, body),
    }
}

/// `sigv4`: an HTTP request as text, `METHOD PATH[?QUERY]`, header lines
/// `Name: value`, an empty line, the body. Parsed, then verified with
/// [`SIGV4_SECRET`] at [`SIGV4_NOW_SECS`] (uncached, then twice through a
/// caching verifier, which must agree).
pub fn sigv4(data: &[u8]) {
    let _ = sigv4_verdict(data);
}

/// The `sigv4` target's work: `None` when the request does not parse as a
/// signed request, otherwise whether the signature verifies.
pub fn sigv4_verdict(data: &[u8]) -> Option<bool> {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let request_line = lines.next().unwrap_or("");
    let (method, target) = request_line.split_once(' ').unwrap_or((request_line, "/"));
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k, v.trim_start()))
        .collect();
    let req = HttpRequest {
        method,
        path,
        query,
        headers: &headers,
        body,
    };
    let parsed = ferrokms_sigv4::parse(&req).ok()?;
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(SIGV4_NOW_SECS);
    let services = ["kms", "iam", "sts"];
    let plain = ferrokms_sigv4::verify(&req, &parsed, SIGV4_SECRET, now, &services);
    let verifier = Verifier::default();
    for _ in 0..2 {
        let cached = verifier.verify(&req, &parsed, SIGV4_SECRET, now, &services);
        assert_eq!(
            plain.is_ok(),
            cached.is_ok(),
            "the caching verifier must agree with the plain one"
        );
    }
    let _ = ferrokms_sigv4::check_region(&parsed, &["us-east-1"]);
    Some(plain.is_ok())
}

/// `query`: `SERVICE\nQUERY-STRING\nBODY` with SERVICE `iam` or `sts`.
/// Decoded as the server decodes IAM and STS requests, then dispatched as
/// the account's root user against a fresh in-memory directory; the answer
/// (or error) is rendered as XML.
pub fn query(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let service = parts.next().unwrap_or(&[]);
    let query = std::str::from_utf8(parts.next().unwrap_or(&[])).unwrap_or("");
    let body = parts.next().unwrap_or(&[]);
    let params = Params::parse(query, body);
    let _ = params.audit_json();
    let _ = params.u32("MaxItems");
    let _ = params.bool("Marker");
    let _ = params.list("PolicyArns");
    let _ = params.list_field("Tags", "Key");
    let _ = params.tags("Tags");
    let Some(action) = params.get("Action").map(str::to_string) else {
        return;
    };
    let Ok(sealer) = Sealer::ephemeral() else {
        return;
    };
    let Ok(dir) = Directory::open(Arc::new(MemoryStore::default()), Arc::new(sealer)) else {
        return;
    };
    let account = account();
    if dir.create_account(&account).is_err() {
        return;
    }
    let root = ferrokms_iam::Caller::root(account);
    let result = if service == b"sts" {
        ferrokms_server::sts_api::dispatch(&dir, &root, &action, &params)
    } else {
        ferrokms_server::iam_api::dispatch(&dir, &root, &action, &params)
    };
    let namespace = if service == b"sts" {
        ferrokms_server::sts_api::STS_NAMESPACE
    } else {
        ferrokms_server::iam_api::IAM_NAMESPACE
    };
    match result {
        Ok(body) => {
            let _ = ferrokms_server::query::response(&action, namespace, &body, "req-1");
        }
        Err(e) => {
            let _ = e.to_xml(namespace, "req-1");
        }
    }
}

/// `ciphertext`: a ciphertext blob. Its header is parsed; then the blob is
/// decrypted through the Decrypt operation twice: as given, and with its
/// header rewritten to name the fixture's symmetric key (so that the
/// material lookup and AES-GCM authentication see hostile bytes too).
pub fn ciphertext(data: &[u8]) {
    let header = ferrokms_kms::crypto::parse_header(data);
    // Decrypt changes nothing: one fixture serves every input.
    let fx = shared_fixture();
    let b64 = base64::engine::general_purpose::STANDARD;
    let decrypt = |blob: &[u8], key_id: Option<&str>| {
        let mut body = serde_json::json!({ "CiphertextBlob": b64.encode(blob) });
        if let Some(k) = key_id {
            body["KeyId"] = Value::String(k.to_string());
        }
        let _ = kms_api::dispatch(&fx.kms, model(), &caller(), "Decrypt", body);
    };
    decrypt(data, None);
    let rest = match &header {
        Ok((_, header_len)) => data.get(*header_len..).unwrap_or(&[]),
        // Not a valid header: use everything after a plausible one.
        Err(_) => data.get(2..).unwrap_or(&[]),
    };
    let sym = fx.key("$SYM");
    let material = match &header {
        Ok((h, _)) => h.material,
        Err(_) => 1,
    };
    let mut blob = vec![1u8, sym.len() as u8];
    blob.extend_from_slice(sym.as_bytes());
    blob.extend_from_slice(ACCOUNT.as_bytes());
    blob.extend_from_slice(&material.to_be_bytes());
    blob.extend_from_slice(rest);
    if let Ok((h, _)) = ferrokms_kms::crypto::parse_header(&blob) {
        assert_eq!(
            h.key_id.as_str(),
            sym,
            "a rewritten header must name the fixture key"
        );
    }
    decrypt(&blob, None);
    decrypt(&blob, Some(sym));
}

/// `policy_parse`: any bytes as a policy document of every kind. Parsing
/// must succeed or fail without panicking; a parsed policy must serialise,
/// re-parse to an equal policy, and evaluate and explain without panicking.
/// (Moved here from `crates/policy/fuzz`.)
pub fn policy_parse(data: &[u8]) {
    use ferrokms_policy::{
        evaluate, explain, Action, Context, ContextValue, ParseOptions, Policy, PolicyInput,
        PolicyKind, Request, RequestPrincipal,
    };
    for kind in PolicyKind::ALL {
        let opts = ParseOptions::for_kind(kind);
        let Ok(policy) = Policy::parse_bytes(data, &opts) else {
            continue;
        };
        let text = policy.to_json_string();
        let again = Policy::parse(&text, &opts);
        assert!(again.is_ok(), "a serialised policy must re-parse: {text}");
        if let Ok(again) = again {
            assert_eq!(
                again, policy,
                "parse -> serialise -> parse must be the identity"
            );
        }
        let (Ok(principal), Ok(action)) = (
            RequestPrincipal::from_arn("arn:aws:sts::111122223333:assumed-role/Admin/s"),
            Action::parse("kms:Decrypt"),
        ) else {
            return;
        };
        let request = Request::new(
            principal,
            action,
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .with_context(
            Context::new()
                .with("aws:username", "alice")
                .with("aws:SourceIp", "10.1.2.3")
                .with_multi(
                    "aws:TagKeys",
                    vec![ContextValue::from("a"), ContextValue::from("b")],
                ),
        );
        let eval = evaluate(&request, &[PolicyInput::new("fuzz", kind, &policy)]);
        let _ = explain::render_text(&request, &eval);
        let _ = explain::to_json(&request, &eval);
    }
}

/// Real ciphertexts (of a throw-away key) for the `ciphertext` corpus: with
/// and without an encryption context, empty and 4 KiB plaintexts.
pub fn seed_ciphertexts() -> Vec<(&'static str, Vec<u8>)> {
    let fx = Fixture::new();
    let mut out = Vec::new();
    for (name, body) in [
        (
            "empty-context",
            r#"{"KeyId":"$SYM","Plaintext":"aGVsbG8="}"#.to_string(),
        ),
        (
            "with-context",
            r#"{"KeyId":"$SYM","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#.to_string(),
        ),
        (
            "4k",
            format!(
                r#"{{"KeyId":"$SYM","Plaintext":"{}"}}"#,
                "QUFB".repeat(1365)
            ),
        ),
    ] {
        let body = body.replace("$SYM", fx.key("$SYM"));
        let Ok(value) = serde_json::from_str::<Value>(&body) else {
            continue;
        };
        let Ok(resp) = kms_api::dispatch(&fx.kms, model(), &caller(), "Encrypt", value) else {
            continue;
        };
        let blob = serde_json::from_slice::<Value>(&resp)
            .ok()
            .and_then(|v| v["CiphertextBlob"].as_str().map(str::to_string))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
        if let Some(blob) = blob {
            out.push((name, blob));
        }
    }
    out
}
