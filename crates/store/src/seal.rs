//! Sealing of secrets at rest.
//!
//! Key material and secret access keys are stored only in sealed form:
//! AES-256-GCM under a root key that lives outside the database (a 0600 file
//! in the data dir, or a file the operator names). A stolen database alone
//! therefore reveals no key. The associated data binds each sealed blob to the
//! record it belongs to, so blobs cannot be swapped between records.

use std::fs;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hkdf;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const SEAL_VERSION: u8 = 1;
const ROOT_KEY_LEN: usize = 32;

/// Why sealing, opening or loading the root key failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The root key file could not be read, created, or does not hold a key.
    #[error("root key file {path}: {reason}")]
    RootKey {
        /// The file, or `(memory)` for a key given as bytes.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Authentication failed: the data was sealed under another root key or
    /// with another AAD, or was altered.
    #[error("sealed data could not be opened (wrong root key or corrupt data)")]
    Open,
    /// The system random number generator failed (no nonce, no new key).
    #[error("random number generator failed")]
    Random,
    /// HKDF refused to derive a purpose key.
    #[error("key derivation failed")]
    Derive,
}

/// Seals and opens secrets under the root key.
pub struct Sealer {
    key: LessSafeKey,
    /// HKDF-SHA256 pseudo-random key extracted from the root key: the
    /// source of [`Sealer::derive_key`]'s purpose keys.
    derive: hkdf::Prk,
}

/// The salt of the HKDF extraction from the root key (fixed: the root key
/// is already uniformly random; the salt only separates this use).
const DERIVE_SALT: &[u8] = b"ferrokms root key derivation v1";

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// A sealer for a 32-byte root key held in memory (tests, or a key read elsewhere).
    pub fn from_bytes(root: &[u8]) -> Result<Self, SealError> {
        let unbound = UnboundKey::new(&AES_256_GCM, root).map_err(|_| SealError::RootKey {
            path: "(memory)".into(),
            reason: "root key must be 32 bytes".into(),
        })?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
            derive: hkdf::Salt::new(hkdf::HKDF_SHA256, DERIVE_SALT).extract(root),
        })
    }

    /// A 32-byte key for one purpose (`purpose` names it, with a version),
    /// derived from the root key with HKDF-SHA256: the same on every node
    /// that has the same root key and across restarts, with nothing stored,
    /// and unrelated to the sealing key and to every other purpose's key.
    pub fn derive_key(&self, purpose: &[u8]) -> Result<Zeroizing<[u8; 32]>, SealError> {
        let mut out = Zeroizing::new([0u8; 32]);
        self.derive
            .expand(&[purpose], Len32)
            .and_then(|okm| okm.fill(out.as_mut()))
            .map_err(|_| SealError::Derive)?;
        Ok(out)
    }

    /// A sealer with a fresh random root key, for `--in-memory` runs.
    pub fn ephemeral() -> Result<Self, SealError> {
        let mut root = Zeroizing::new([0u8; ROOT_KEY_LEN]);
        SystemRandom::new()
            .fill(root.as_mut())
            .map_err(|_| SealError::Random)?;
        Sealer::from_bytes(root.as_ref())
    }

    /// Loads the root key from `path` (64 hex digits), creating it with mode
    /// 0600 if it does not exist and `create` is true.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, SealError> {
        let err = |reason: String| SealError::RootKey {
            path: path.display().to_string(),
            reason,
        };
        match fs::read_to_string(path) {
            Ok(text) => {
                let text = Zeroizing::new(text);
                let bytes = Zeroizing::new(
                    decode_hex(text.trim()).ok_or_else(|| err("expected 64 hex digits".into()))?,
                );
                if bytes.len() != ROOT_KEY_LEN {
                    return Err(err("expected 64 hex digits".into()));
                }
                Sealer::from_bytes(&bytes)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut root = Zeroizing::new([0u8; ROOT_KEY_LEN]);
                SystemRandom::new()
                    .fill(root.as_mut())
                    .map_err(|_| SealError::Random)?;
                // Built in place so no copy of the key's hex escapes Zeroizing.
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut line = Zeroizing::new(String::with_capacity(2 * ROOT_KEY_LEN + 1));
                for &b in root.iter() {
                    line.push(char::from(HEX[usize::from(b >> 4)]));
                    line.push(char::from(HEX[usize::from(b & 0xf)]));
                }
                line.push('\n');
                write_private_file(path, line.as_bytes()).map_err(|e| err(e.to_string()))?;
                Sealer::from_bytes(root.as_ref())
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Encrypts `plaintext` under the root key with AES-256-GCM and a fresh random nonce,
    /// bound to `aad`: `version || nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut buf = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        buf.push(SEAL_VERSION);
        buf.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut body,
            )
            .map_err(|_| SealError::Open)?;
        buf.extend_from_slice(&body);
        body.iter_mut().for_each(|b| *b = 0);
        Ok(buf)
    }

    /// Decrypts what [`seal`](Self::seal) produced with the same `aad`; the plaintext is
    /// wiped when dropped.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != SEAL_VERSION {
            return Err(SealError::Open);
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1..1 + NONCE_LEN]);
        let mut body = Zeroizing::new(sealed[1 + NONCE_LEN..].to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                body.as_mut_slice(),
            )
            .map_err(|_| SealError::Open)?
            .len();
        body.truncate(len);
        Ok(body)
    }
}

/// Writes a file readable only by its owner (0600), atomically.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_with_same_aad_and_key() {
        let s = Sealer::ephemeral().unwrap();
        let blob = s.seal(b"key/1", b"secret").unwrap();
        assert_eq!(s.open(b"key/1", &blob).unwrap().as_slice(), b"secret");
        assert!(s.open(b"key/2", &blob).is_err());
        let other = Sealer::ephemeral().unwrap();
        assert!(other.open(b"key/1", &blob).is_err());
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(s.open(b"key/1", &flipped).is_err());
    }

    #[test]
    fn derived_keys_depend_on_root_key_and_purpose_only() {
        let a = Sealer::from_bytes(&[7u8; 32]).expect("sealer");
        let again = Sealer::from_bytes(&[7u8; 32]).expect("sealer");
        let other = Sealer::from_bytes(&[8u8; 32]).expect("sealer");
        let k = a.derive_key(b"p1").expect("derive");
        assert_eq!(*k, *again.derive_key(b"p1").expect("derive"));
        assert_ne!(*k, *a.derive_key(b"p2").expect("derive"));
        assert_ne!(*k, *other.derive_key(b"p1").expect("derive"));
        assert_ne!(*k, [7u8; 32]);
    }

    #[test]
    fn root_key_file_is_created_private_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root.key");
        let a = Sealer::load_or_create(&path, true).unwrap();
        let blob = a.seal(b"x", b"y").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = Sealer::load_or_create(&path, false).unwrap();
        assert_eq!(b.open(b"x", &blob).unwrap().as_slice(), b"y");
        assert!(Sealer::load_or_create(&dir.path().join("missing"), false).is_err());
    }
}
