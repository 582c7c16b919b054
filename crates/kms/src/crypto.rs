//! Symmetric encryption under KMS keys and the ciphertext blob format.
//!
//! Blob layout (version 1), all integers big-endian:
//!
//! ```text
//! 0x01 | id_len:u8 | key id (ASCII) | account (12 ASCII digits) | material:u32 | nonce[12] | ciphertext+tag
//! ```
//!
//! The blob names the key and the material version, so Decrypt needs no
//! KeyId and old ciphertexts survive rotation. The region is deliberately not
//! in the blob: a ciphertext decrypts in whichever region holds the same key
//! id, which is what multi-Region replicas need. Everything before the nonce,
//! followed by the canonical encryption context, is the AES-GCM associated
//! data, so any flipped byte or a different context fails authentication.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use ferrokms_types::AccountId;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ids::KeyId;
use crate::KmsError;

const BLOB_VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// The length of a symmetric key's material: AES-256.
pub const SYMMETRIC_KEY_LEN: usize = 32;

/// An encryption context: string pairs whose order does not matter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EncryptionContext(pub BTreeMap<String, String>);

impl EncryptionContext {
    /// Length-prefixed pairs in key order: unambiguous and order-independent.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            out.extend_from_slice(&(k.len() as u32).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    /// Whether the context has no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One version of symmetric key material: the 32-byte AES-256 key alone,
/// wiped on drop.
///
/// The AES-GCM context (key schedule and GHASH table, about 600 bytes of
/// C heap in aws-lc) is not kept per key: with every key in memory, a kept
/// context was a quarter of a loaded key's memory (docs/performance.md,
/// "Memory per key"). Each thread keeps the context of the last key it used
/// instead ([`SymmetricMaterial::with_aead`]).
pub struct SymmetricMaterial {
    key: Zeroizing<[u8; SYMMETRIC_KEY_LEN]>,
}

impl std::fmt::Debug for SymmetricMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SymmetricMaterial(..)")
    }
}

impl SymmetricMaterial {
    /// Symmetric material from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KmsError> {
        let mut key = Zeroizing::new([0u8; SYMMETRIC_KEY_LEN]);
        if bytes.len() != SYMMETRIC_KEY_LEN {
            return Err(KmsError::Internal(
                "stored key material has the wrong length".into(),
            ));
        }
        key.copy_from_slice(bytes);
        Ok(SymmetricMaterial { key })
    }

    /// The AES-256-GCM context for one operation (aws-lc wipes it when it
    /// is dropped).
    fn aead(&self) -> Result<LessSafeKey, KmsError> {
        let unbound = UnboundKey::new(&AES_256_GCM, self.key.as_slice())
            .map_err(|_| KmsError::Internal("AES-GCM key setup failed".into()))?;
        Ok(LessSafeKey::new(unbound))
    }

    /// Runs `f` with this material's AES-GCM context. Each thread keeps the
    /// context of the last material it used (and that key, to know it
    /// again): a client encrypting under one key, the usual load, skips
    /// the key schedule and GHASH table (docs/performance.md), while
    /// memory holds one context per thread rather than one per key. The
    /// price: after a key's material is deleted, its copy stays in the
    /// slot of each thread that used it last until that thread uses
    /// another key (it is wiped then, or when the thread ends).
    fn with_aead<R>(&self, f: impl FnOnce(&LessSafeKey) -> R) -> Result<R, KmsError> {
        struct Last {
            key: Zeroizing<[u8; SYMMETRIC_KEY_LEN]>,
            aead: LessSafeKey,
        }
        thread_local! {
            static LAST: std::cell::RefCell<Option<Last>> = const { std::cell::RefCell::new(None) };
        }
        LAST.with(|last| {
            let Ok(mut last) = last.try_borrow_mut() else {
                return Ok(f(&self.aead()?));
            };
            match last.as_ref() {
                Some(l)
                    if aws_lc_rs::constant_time::verify_slices_are_equal(
                        l.key.as_slice(),
                        self.key.as_slice(),
                    )
                    .is_ok() =>
                {
                    Ok(f(&l.aead))
                }
                _ => {
                    let fresh = Last {
                        key: self.key.clone(),
                        aead: self.aead()?,
                    };
                    let out = f(&fresh.aead);
                    *last = Some(fresh);
                    Ok(out)
                }
            }
        })
    }
}

/// A fresh random 96-bit AES-GCM nonce. Nonces are drawn from aws-lc's
/// generator a few kilobytes at a time per thread: each call of the
/// generator re-keys its DRBG (two AES key schedules), which for 12 bytes
/// cost more than the encryption itself. Nonces are not secret (every
/// ciphertext carries its own), only unique, which random draws keep.
fn random_nonce() -> Result<[u8; NONCE_LEN], KmsError> {
    const POOL_NONCES: usize = 340;
    thread_local! {
        static POOL: std::cell::RefCell<(usize, Vec<u8>)> = const { std::cell::RefCell::new((0, Vec::new())) };
    }
    let fill = |buf: &mut [u8]| {
        SystemRandom::new()
            .fill(buf)
            .map_err(|_| KmsError::Internal("random number generator failed".into()))
    };
    POOL.with(|pool| {
        let mut nonce = [0u8; NONCE_LEN];
        let Ok(mut pool) = pool.try_borrow_mut() else {
            fill(&mut nonce)?;
            return Ok(nonce);
        };
        let (used, bytes) = &mut *pool;
        if *used + NONCE_LEN > bytes.len() {
            bytes.resize(POOL_NONCES * NONCE_LEN, 0);
            fill(bytes)?;
            *used = 0;
        }
        nonce.copy_from_slice(&bytes[*used..*used + NONCE_LEN]);
        *used += NONCE_LEN;
        Ok(nonce)
    })
}

/// A new random `KeyMaterialId` (generated material and rotations).
pub fn random_material_id() -> Result<crate::model::MaterialId, KmsError> {
    let mut id = [0u8; 32];
    SystemRandom::new()
        .fill(&mut id)
        .map_err(|_| KmsError::Internal("random number generator failed".into()))?;
    Ok(crate::model::MaterialId::from_bytes(id))
}

/// `n` bytes from the system random number generator, wiped when dropped.
pub fn random_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let mut buf = Zeroizing::new(vec![0u8; n]);
    SystemRandom::new()
        .fill(buf.as_mut_slice())
        .map_err(|_| KmsError::Internal("random number generator failed".into()))?;
    Ok(buf)
}

/// The parts of a parsed blob that name the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    /// The key the blob was encrypted under.
    pub key_id: KeyId,
    /// The key's account.
    pub account: AccountId,
    /// The version of the key's material that encrypted it.
    pub material: u32,
}

pub(crate) fn header_bytes(h: &BlobHeader) -> Vec<u8> {
    let id = h.key_id.as_str().as_bytes();
    let mut out = Vec::with_capacity(2 + id.len() + 12 + 4);
    out.push(BLOB_VERSION);
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(h.account.as_str().as_bytes());
    out.extend_from_slice(&h.material.to_be_bytes());
    out
}

/// Reads the header of a blob without decrypting it: a version-1 blob, or
/// the version-2 blob of a key in an external key store
/// ([`crate::xks::seal_outer`]), whose header is laid out alike.
pub fn parse_header(blob: &[u8]) -> Result<(BlobHeader, usize), KmsError> {
    let bad = || KmsError::InvalidCiphertext;
    if !matches!(
        blob.first(),
        Some(&BLOB_VERSION | &crate::xks::XKS_BLOB_VERSION)
    ) {
        return Err(bad());
    }
    let id_len = *blob.get(1).ok_or_else(bad)? as usize;
    let id_end = 2 + id_len;
    let id = std::str::from_utf8(blob.get(2..id_end).ok_or_else(bad)?).map_err(|_| bad())?;
    let key_id = KeyId::parse(id).ok_or_else(bad)?;
    let acct_end = id_end + 12;
    let account = std::str::from_utf8(blob.get(id_end..acct_end).ok_or_else(bad)?)
        .map_err(|_| bad())
        .and_then(|a| AccountId::parse(a).map_err(|_| bad()))?;
    let mat_end = acct_end + 4;
    let mut m = [0u8; 4];
    m.copy_from_slice(blob.get(acct_end..mat_end).ok_or_else(bad)?);
    if blob.len() < mat_end + NONCE_LEN + TAG_LEN {
        return Err(bad());
    }
    Ok((
        BlobHeader {
            key_id,
            account,
            material: u32::from_be_bytes(m),
        },
        mat_end,
    ))
}

/// Encrypts `plaintext` under `material` with AES-256-GCM, binding the header and the
/// encryption context as associated data; returns the ciphertext blob.
pub fn encrypt(
    material: &SymmetricMaterial,
    header: &BlobHeader,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let mut blob = header_bytes(header);
    let mut aad = blob.clone();
    aad.extend_from_slice(&context.canonical_bytes());
    let nonce = random_nonce()?;
    blob.extend_from_slice(&nonce);
    let start = blob.len();
    blob.extend_from_slice(plaintext);
    let tag = material
        .with_aead(|aead| {
            aead.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut blob[start..],
            )
        })?
        .map_err(|_| KmsError::Internal("encryption failed".into()))?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Decrypts a blob whose header was parsed with [`parse_header`].
pub fn decrypt(
    material: &SymmetricMaterial,
    blob: &[u8],
    header_len: usize,
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let header = blob.get(..header_len).ok_or(KmsError::InvalidCiphertext)?;
    let mut aad = header.to_vec();
    aad.extend_from_slice(&context.canonical_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(
        blob.get(header_len..header_len + NONCE_LEN)
            .ok_or(KmsError::InvalidCiphertext)?,
    );
    let mut body = Zeroizing::new(
        blob.get(header_len + NONCE_LEN..)
            .ok_or(KmsError::InvalidCiphertext)?
            .to_vec(),
    );
    let len = material
        .with_aead(|aead| {
            aead.open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                body.as_mut_slice(),
            )
            .map(|plain| plain.len())
        })?
        .map_err(|_| KmsError::InvalidCiphertext)?;
    body.truncate(len);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SymmetricMaterial, BlobHeader) {
        let m = SymmetricMaterial::from_bytes(&random_bytes(32).unwrap()).unwrap();
        let h = BlobHeader {
            key_id: KeyId::new_random(false),
            account: AccountId::parse("111122223333").unwrap(),
            material: 3,
        };
        (m, h)
    }

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        EncryptionContext(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn ciphertext_round_trips_and_names_its_key_and_material() {
        let (m, h) = setup();
        let c = ctx(&[("a", "1"), ("b", "2")]);
        let blob = encrypt(&m, &h, &c, b"hello").unwrap();
        let (parsed, len) = parse_header(&blob).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(decrypt(&m, &blob, len, &c).unwrap().as_slice(), b"hello");
    }

    #[test]
    fn a_thread_switching_between_keys_encrypts_and_decrypts_under_each_its_own() {
        let (a, h) = setup();
        let (b, _) = setup();
        let c = ctx(&[]);
        // Alternate keys on one thread: the kept context must follow.
        let blob_a = encrypt(&a, &h, &c, b"under a").unwrap();
        let blob_b = encrypt(&b, &h, &c, b"under b").unwrap();
        let blob_a2 = encrypt(&a, &h, &c, b"under a again").unwrap();
        let (_, len) = parse_header(&blob_a).unwrap();
        assert_eq!(
            decrypt(&a, &blob_a, len, &c).unwrap().as_slice(),
            b"under a"
        );
        assert!(decrypt(&b, &blob_a, len, &c).is_err());
        assert_eq!(
            decrypt(&b, &blob_b, len, &c).unwrap().as_slice(),
            b"under b"
        );
        assert!(decrypt(&a, &blob_b, len, &c).is_err());
        assert_eq!(
            decrypt(&a, &blob_a2, len, &c).unwrap().as_slice(),
            b"under a again"
        );
    }

    #[test]
    fn nonces_never_repeat_across_pool_refills() {
        let nonces: std::collections::HashSet<[u8; NONCE_LEN]> =
            (0..5_000).map(|_| random_nonce().unwrap()).collect();
        assert_eq!(nonces.len(), 5_000);
    }

    #[test]
    fn encryption_context_order_does_not_matter_but_content_does() {
        let (m, h) = setup();
        let blob = encrypt(&m, &h, &ctx(&[("a", "1"), ("b", "2")]), b"x").unwrap();
        let (_, len) = parse_header(&blob).unwrap();
        assert!(decrypt(&m, &blob, len, &ctx(&[("b", "2"), ("a", "1")])).is_ok());
        assert_eq!(
            decrypt(&m, &blob, len, &ctx(&[("a", "1")])).unwrap_err(),
            KmsError::InvalidCiphertext
        );
        assert_eq!(
            decrypt(&m, &blob, len, &ctx(&[("a", "1"), ("b", "3")])).unwrap_err(),
            KmsError::InvalidCiphertext
        );
        // "ab"+"c" must not collide with "a"+"bc".
        let blob2 = encrypt(&m, &h, &ctx(&[("ab", "c")]), b"x").unwrap();
        assert!(decrypt(&m, &blob2, len, &ctx(&[("a", "bc")])).is_err());
    }

    #[test]
    fn any_flipped_byte_makes_the_ciphertext_invalid() {
        let (m, h) = setup();
        let c = EncryptionContext::default();
        let blob = encrypt(&m, &h, &c, b"some plaintext").unwrap();
        for i in 0..blob.len() {
            let mut b = blob.clone();
            b[i] ^= 0x01;
            let ok = parse_header(&b)
                .and_then(|(hh, len)| {
                    if hh != h {
                        return Err(KmsError::InvalidCiphertext);
                    }
                    decrypt(&m, &b, len, &c)
                })
                .is_ok();
            assert!(!ok, "flipping byte {i} went unnoticed");
        }
    }

    #[test]
    fn material_of_the_wrong_length_is_refused() {
        for n in [0, 16, 31, 33, 64] {
            assert!(
                SymmetricMaterial::from_bytes(&vec![1u8; n]).is_err(),
                "{n} bytes"
            );
        }
    }

    #[test]
    fn truncated_or_garbage_blobs_are_rejected_without_panic() {
        let (m, h) = setup();
        let blob = encrypt(&m, &h, &EncryptionContext::default(), b"abc").unwrap();
        for n in 0..blob.len() {
            let _ = parse_header(&blob[..n])
                .and_then(|(_, len)| decrypt(&m, &blob[..n], len, &EncryptionContext::default()));
        }
        assert!(parse_header(&[1, 255]).is_err());
        assert!(parse_header(&[]).is_err());
    }
}
