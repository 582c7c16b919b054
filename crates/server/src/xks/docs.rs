//! What the XKS proxy keeps in the store: its keys (`xks.key`) and the
//! SigV4 credentials it accepts (`xks.credential`), as typed documents of
//! `crates/store` (SQLite or PostgreSQL alike). Key material and secret
//! access keys are sealed under the root key, bound to their document
//! (`Sealer::seal`'s AAD is `kind/id`), as every other secret at rest.
//!
//! Both are created offline (`ferrokms xks key create`, `ferrokms xks
//! credential create`), also while a server runs: the server reads a
//! document it does not hold yet from the store when a request names it.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use ferrokms_store::{Change, Sealer, Store};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The longest `--allow-principal` pattern (the spec's ARN bound).
pub const MAX_PRINCIPAL_PATTERN: usize = 2048;

/// The store kind of an XKS key.
pub const KEY_KIND: &str = "xks.key";
/// The store kind of an XKS proxy credential.
pub const CREDENTIAL_KIND: &str = "xks.credential";

/// A key's uses, as the spec's `keyUsage` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Usage {
    /// The key may encrypt.
    Encrypt,
    /// The key may decrypt.
    Decrypt,
}

impl Usage {
    /// The spec's name (`ENCRYPT`, `DECRYPT`).
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Encrypt => "ENCRYPT",
            Usage::Decrypt => "DECRYPT",
        }
    }

    /// `ENCRYPT,DECRYPT` (any case, any order, no duplicates); the empty
    /// string is a key with no use.
    pub fn parse_list(text: &str) -> Result<Vec<Usage>, XksDocError> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let u = match part.to_ascii_uppercase().as_str() {
                "ENCRYPT" => Usage::Encrypt,
                "DECRYPT" => Usage::Decrypt,
                _ => return Err(XksDocError::Usage(part.to_string())),
            };
            if !out.contains(&u) {
                out.push(u);
            }
        }
        Ok(out)
    }
}

/// Why an XKS document could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum XksDocError {
    /// An `--allow-principal` pattern that is empty or too long.
    #[error("--allow-principal '{0}': give an ARN pattern of 1 to {MAX_PRINCIPAL_PATTERN} characters (* and ? are wildcards)")]
    PrincipalPattern(String),
    /// `--usage` named something other than ENCRYPT or DECRYPT.
    #[error("unknown key usage '{0}': use ENCRYPT, DECRYPT, both (ENCRYPT,DECRYPT) or none (an empty string)")]
    Usage(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] ferrokms_store::StoreError),
    /// Sealing or opening failed (for opening: another root key, or altered data).
    #[error(transparent)]
    Seal(#[from] ferrokms_store::SealError),
    /// A stored document does not decode.
    #[error("stored {kind} {id} is corrupt: {reason}")]
    Corrupt {
        /// The document's kind.
        kind: &'static str,
        /// The document's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// An XKS key as stored.
#[derive(Debug, Serialize, Deserialize)]
struct KeyDoc {
    /// The spec's `keyUsage`.
    usage: Vec<Usage>,
    /// `ENABLED` or `DISABLED` (the spec's `keyStatus`).
    status: String,
    /// Creation time, milliseconds since the Unix epoch.
    created_ms: i64,
    /// The 32 bytes of AES-256 material, sealed, base64.
    material: String,
    /// Secondary authorization: `awsPrincipalArn` patterns allowed to use
    /// the key (empty: any).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allowed_principals: Vec<String>,
}

/// A credential as stored.
#[derive(Debug, Serialize, Deserialize)]
struct CredentialDoc {
    /// The secret access key, sealed, base64.
    secret: String,
    /// Creation time, milliseconds since the Unix epoch.
    created_ms: i64,
}

/// An XKS key, opened.
pub struct XksKey {
    /// Its uses.
    pub usage: Vec<Usage>,
    /// Whether it is enabled (`keyStatus` ENABLED).
    pub enabled: bool,
    /// The AES-256 material.
    pub material: Zeroizing<Vec<u8>>,
    /// `awsPrincipalArn` patterns (`*`, `?`) allowed to use the key; empty
    /// for any.
    pub allowed_principals: Vec<String>,
}

impl std::fmt::Debug for XksKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XksKey")
            .field("usage", &self.usage)
            .field("enabled", &self.enabled)
            .field("allowed_principals", &self.allowed_principals)
            .finish_non_exhaustive()
    }
}

/// A new credential: its id and secret, shown once.
pub struct NewCredential {
    /// The access key id (24 characters of `[A-Z2-7]`).
    pub access_key_id: String,
    /// The raw secret access key (44 characters of base64).
    pub secret: Zeroizing<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn aad(kind: &str, id: &str) -> Vec<u8> {
    format!("{kind}/{id}").into_bytes()
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>, XksDocError> {
    let mut out = Zeroizing::new([0u8; N]);
    SystemRandom::new()
        .fill(out.as_mut())
        .map_err(|_| ferrokms_store::SealError::Random)?;
    Ok(out)
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// RFC 4648 base32 without padding (`[A-Z2-7]`).
fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Creates an AES-256 key with these uses, usable only by callers whose
/// `awsPrincipalArn` matches one of `allowed_principals` (any caller when
/// empty), and returns its XksKeyId (a UUID).
pub fn create_key(
    store: &dyn Store,
    sealer: &Sealer,
    usage: Vec<Usage>,
    allowed_principals: Vec<String>,
) -> Result<String, XksDocError> {
    if let Some(bad) = allowed_principals
        .iter()
        .find(|p| p.is_empty() || p.len() > MAX_PRINCIPAL_PATTERN)
    {
        return Err(XksDocError::PrincipalPattern(bad.clone()));
    }
    let id = ferrokms_textfast::uuid_string(u128::from_be_bytes(*random::<16>()?));
    let material = random::<32>()?;
    let sealed = sealer.seal(&aad(KEY_KIND, &id), material.as_ref())?;
    let doc = KeyDoc {
        usage,
        status: "ENABLED".into(),
        created_ms: now_ms(),
        material: B64.encode(sealed),
        allowed_principals,
    };
    store.apply(&[Change::Put {
        kind: KEY_KIND,
        id: id.clone(),
        body: serde_json::to_vec(&doc).map_err(|e| XksDocError::Corrupt {
            kind: KEY_KIND,
            id: id.clone(),
            reason: e.to_string(),
        })?,
    }])?;
    Ok(id)
}

/// Creates a credential the proxy accepts from now on.
pub fn create_credential(store: &dyn Store, sealer: &Sealer) -> Result<NewCredential, XksDocError> {
    // 15 random bytes: 24 base32 characters (AWS: 20 to 30 of [A-Z2-7]).
    let access_key_id = base32(random::<15>()?.as_ref());
    // 32 random bytes, base64: 44 characters (AWS: 43 to 64 of [a-zA-Z0-9/+=]).
    let raw = random::<32>()?;
    let secret = Zeroizing::new(B64.encode(raw.as_slice()));
    let sealed = sealer.seal(&aad(CREDENTIAL_KIND, &access_key_id), secret.as_bytes())?;
    let doc = CredentialDoc {
        secret: B64.encode(sealed),
        created_ms: now_ms(),
    };
    store.apply(&[Change::Put {
        kind: CREDENTIAL_KIND,
        id: access_key_id.clone(),
        body: serde_json::to_vec(&doc).map_err(|e| XksDocError::Corrupt {
            kind: CREDENTIAL_KIND,
            id: access_key_id.clone(),
            reason: e.to_string(),
        })?,
    }])?;
    Ok(NewCredential {
        access_key_id,
        secret,
    })
}

fn corrupt(kind: &'static str, id: &str, reason: impl ToString) -> XksDocError {
    XksDocError::Corrupt {
        kind,
        id: id.to_string(),
        reason: reason.to_string(),
    }
}

/// The key `id`, opened, if the store has it.
pub fn read_key(
    store: &dyn Store,
    sealer: &Sealer,
    id: &str,
) -> Result<Option<XksKey>, XksDocError> {
    let Some(body) = store.get(KEY_KIND, id)? else {
        return Ok(None);
    };
    let doc: KeyDoc = serde_json::from_slice(&body).map_err(|e| corrupt(KEY_KIND, id, e))?;
    let sealed = B64
        .decode(doc.material.as_bytes())
        .map_err(|e| corrupt(KEY_KIND, id, e))?;
    let material = sealer.open(&aad(KEY_KIND, id), &sealed)?;
    if material.len() != 32 {
        return Err(corrupt(KEY_KIND, id, "key material is not 32 bytes"));
    }
    Ok(Some(XksKey {
        usage: doc.usage,
        enabled: doc.status == "ENABLED",
        material,
        allowed_principals: doc.allowed_principals,
    }))
}

/// The secret of credential `access_key_id`, if the store has it.
pub fn read_credential(
    store: &dyn Store,
    sealer: &Sealer,
    access_key_id: &str,
) -> Result<Option<Zeroizing<String>>, XksDocError> {
    let Some(body) = store.get(CREDENTIAL_KIND, access_key_id)? else {
        return Ok(None);
    };
    let doc: CredentialDoc =
        serde_json::from_slice(&body).map_err(|e| corrupt(CREDENTIAL_KIND, access_key_id, e))?;
    let sealed = B64
        .decode(doc.secret.as_bytes())
        .map_err(|e| corrupt(CREDENTIAL_KIND, access_key_id, e))?;
    let secret = sealer.open(&aad(CREDENTIAL_KIND, access_key_id), &sealed)?;
    let text = String::from_utf8(secret.to_vec())
        .map_err(|_| corrupt(CREDENTIAL_KIND, access_key_id, "secret is not UTF-8"))?;
    Ok(Some(Zeroizing::new(text)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ferrokms_store::MemoryStore;

    #[test]
    fn credentials_have_the_shapes_aws_accepts_and_read_back() {
        let (store, sealer) = (MemoryStore::default(), Sealer::ephemeral().unwrap());
        let c = create_credential(&store, &sealer).unwrap();
        assert!((20..=30).contains(&c.access_key_id.len()));
        assert!(c
            .access_key_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert!((43..=64).contains(&c.secret.len()));
        assert!(c
            .secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+=".contains(&b)));
        let back = read_credential(&store, &sealer, &c.access_key_id).unwrap();
        assert_eq!(back.as_deref(), Some(&*c.secret));
        // Stored sealed: the secret is not in the document.
        let raw = store
            .get(CREDENTIAL_KIND, &c.access_key_id)
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&raw).contains(c.secret.as_str()));
        assert!(read_credential(&store, &sealer, "NOSUCHKEY")
            .unwrap()
            .is_none());
    }

    #[test]
    fn keys_keep_their_usage_and_open_only_under_their_own_id() {
        let (store, sealer) = (MemoryStore::default(), Sealer::ephemeral().unwrap());
        let id = create_key(&store, &sealer, vec![Usage::Encrypt], vec![]).unwrap();
        assert!(create_key(&store, &sealer, vec![], vec![String::new()]).is_err());
        let k = read_key(&store, &sealer, &id).unwrap().unwrap();
        assert_eq!(k.usage, [Usage::Encrypt]);
        assert!(k.enabled);
        assert_eq!(k.material.len(), 32);
        // A document copied under another id does not open.
        let body = store.get(KEY_KIND, &id).unwrap().unwrap();
        store
            .apply(&[Change::Put {
                kind: KEY_KIND,
                id: "copy".into(),
                body,
            }])
            .unwrap();
        assert!(read_key(&store, &sealer, "copy").is_err());
    }

    #[test]
    fn usage_lists_parse() {
        assert_eq!(
            Usage::parse_list("decrypt, ENCRYPT,decrypt").unwrap(),
            [Usage::Decrypt, Usage::Encrypt]
        );
        assert!(Usage::parse_list("").unwrap().is_empty());
        assert!(Usage::parse_list("SIGN").is_err());
        assert_eq!(base32(&[0xff; 5]), "77777777");
        assert_eq!(base32(b"f"), "MY");
    }
}
