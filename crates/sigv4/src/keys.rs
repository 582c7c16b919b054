use std::fmt;

use aws_lc_rs::{constant_time, hmac};
use parking_lot::Mutex;
use zeroize::Zeroizing;

use crate::CredentialScope;

/// The cache's maps: keyed by request text, so seeded per process, but
/// hashed with foldhash rather than SipHash (looked up on every request).
type Map = foldhash::HashMap<CacheKey, Entry>;

/// A derived `kSigning` key, ready for the single HMAC over the string to sign.
///
/// Held as an aws-lc HMAC key (whose context aws-lc cleanses when freed), so the
/// raw bytes only exist briefly inside [`derive_signing_key`].
#[derive(Clone)]
pub struct SigningKey(hmac::Key);

impl SigningKey {
    pub(crate) fn sign_hex(&self, string_to_sign: &str) -> String {
        crate::canonical::hex_lower(hmac::sign(&self.0, string_to_sign.as_bytes()).as_ref())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

fn hmac_bytes(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(tag.as_ref());
    out
}

/// The four-HMAC chain `AWS4+secret -> date -> region -> service -> aws4_request`.
pub fn derive_signing_key(
    secret_access_key: &str,
    date_stamp: &str,
    region: &str,
    service: &str,
) -> SigningKey {
    let mut seed = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret_access_key.as_bytes());
    let k_date = hmac_bytes(&seed, date_stamp.as_bytes());
    let k_region = hmac_bytes(k_date.as_ref(), region.as_bytes());
    let k_service = hmac_bytes(k_region.as_ref(), service.as_bytes());
    let k_signing = hmac_bytes(k_service.as_ref(), b"aws4_request");
    SigningKey(hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref()))
}

/// Cache identity: the access key id and the scope, joined with NUL bytes
/// (none of them can contain one: they come from a parsed header).
type CacheKey = Box<str>;

fn cache_key(access_key_id: &str, scope: &CredentialScope) -> String {
    let parts = [access_key_id, &scope.date, &scope.region, &scope.service];
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for part in parts {
        key.push_str(part);
        key.push('\0');
    }
    key
}

/// A cached key and the secret it was derived from. The secret is kept (the
/// IAM directory holds it in memory anyway) and compared in constant time on
/// every hit, so a secret replaced under the same access key id never hits a
/// stale entry. Hashing the secret instead cost two SHA-256 blocks per request.
struct Entry {
    secret: Zeroizing<Box<[u8]>>,
    key: SigningKey,
}

impl Entry {
    fn matches(&self, secret_access_key: &str) -> bool {
        constant_time::verify_slices_are_equal(&self.secret, secret_access_key.as_bytes()).is_ok()
    }
}

struct Generations {
    current: Map,
    previous: Map,
}

/// Thread-safe, bounded cache of derived signing keys.
///
/// Eviction is two-generation (a cheap approximation of LRU): when the current
/// generation fills half the capacity it becomes the previous one and the old
/// previous generation is dropped wholesale. Hits in the previous generation
/// are promoted. Entries are naturally short-lived anyway: a key is only valid
/// for one UTC day.
pub struct SigningKeyCache {
    half_capacity: usize,
    inner: Mutex<Generations>,
}

impl SigningKeyCache {
    /// `capacity` is the maximum number of cached keys (at least 2).
    pub fn new(capacity: usize) -> Self {
        let half_capacity = (capacity / 2).max(1);
        SigningKeyCache {
            half_capacity,
            inner: Mutex::new(Generations {
                current: Map::with_capacity_and_hasher(half_capacity, Default::default()),
                previous: Map::default(),
            }),
        }
    }

    /// How many derived keys are cached now, across both generations.
    pub fn len(&self) -> usize {
        let g = self.inner.lock();
        g.current.len() + g.previous.len()
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the cached key or derives and caches it. The derivation runs
    /// outside the lock so a burst of new days/regions does not serialise.
    pub fn signing_key(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        scope: &CredentialScope,
    ) -> SigningKey {
        let key = cache_key(access_key_id, scope);
        {
            let mut g = self.inner.lock();
            match g.current.get(key.as_str()) {
                Some(e) if e.matches(secret_access_key) => return e.key.clone(),
                Some(_) => {}
                None => {
                    if let Some((ck, e)) = g.previous.remove_entry(key.as_str()) {
                        if e.matches(secret_access_key) {
                            let out = e.key.clone();
                            Self::insert_locked(&mut g, self.half_capacity, ck, e);
                            return out;
                        }
                    }
                }
            }
        }
        let derived = derive_signing_key(
            secret_access_key,
            &scope.date,
            &scope.region,
            &scope.service,
        );
        let entry = Entry {
            secret: Zeroizing::new(secret_access_key.as_bytes().into()),
            key: derived.clone(),
        };
        let mut g = self.inner.lock();
        Self::insert_locked(&mut g, self.half_capacity, key.into_boxed_str(), entry);
        derived
    }

    fn insert_locked(g: &mut Generations, half: usize, key: CacheKey, value: Entry) {
        if g.current.len() >= half && !g.current.contains_key(&key) {
            g.previous = std::mem::take(&mut g.current);
        }
        g.current.insert(key, value);
    }
}

impl Default for SigningKeyCache {
    /// Enough for a few thousand active access keys across a day boundary.
    fn default() -> Self {
        SigningKeyCache::new(8192)
    }
}

impl fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(date: &str) -> CredentialScope {
        CredentialScope {
            date: date.into(),
            region: "us-east-1".into(),
            service: "kms".into(),
            terminator: "aws4_request".into(),
        }
    }

    #[test]
    fn signing_key_matches_aws_documented_example() {
        // AWS General Reference "Examples of how to derive a signing key".
        let k = derive_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        // kSigning as published by AWS for this input.
        let published =
            hex::decode("f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d")
                .unwrap_or_default();
        let expected = SigningKey(hmac::Key::new(hmac::HMAC_SHA256, &published));
        assert_eq!(k.sign_hex("probe"), expected.sign_hex("probe"));
        // The cache must be transparent.
        let cache = SigningKeyCache::new(4);
        let mut s = scope("20120215");
        s.service = "iam".into();
        let k2 = cache.signing_key("AKID", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &s);
        assert_eq!(k2.sign_hex("probe"), expected.sign_hex("probe"));
    }

    #[test]
    fn cache_is_bounded_and_keyed_by_secret() {
        let cache = SigningKeyCache::new(4);
        for d in 0..20 {
            cache.signing_key("AKID", "secret", &scope(&format!("202401{d:02}")));
            assert!(cache.len() <= 4);
        }
        let a = cache.signing_key("AKID", "secret-a", &scope("20240101"));
        let b = cache.signing_key("AKID", "secret-b", &scope("20240101"));
        assert_ne!(a.sign_hex("x"), b.sign_hex("x"));
        // A secret replaced under the same id never gets the old key back,
        // from either generation.
        let again = cache.signing_key("AKID", "secret-a", &scope("20240101"));
        assert_eq!(again.sign_hex("x"), a.sign_hex("x"));
        let fresh = derive_signing_key("secret-b", "20240101", "us-east-1", "kms");
        assert_eq!(
            cache
                .signing_key("AKID", "secret-b", &scope("20240101"))
                .sign_hex("x"),
            fresh.sign_hex("x")
        );
    }
}
