//! The operations' cryptography: AES-256-GCM under an XKS key, with the
//! spec's AAD (`u16 len(aad) || aad || u8 len(ciphertextMetadata) ||
//! ciphertextMetadata`, lengths big-endian, zero for an absent field) and
//! its CDIV (SHA-256 over `aad || ciphertextMetadata || iv || ciphertext ||
//! tag`, checked by a decryption before it is returned).
//!
//! This proxy writes no `ciphertextMetadata`; a Decrypt that sends some
//! has it bound into the AAD as the spec says, so it fails unless the
//! ciphertext was made with it.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest::{digest, SHA256};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use zeroize::Zeroizing;

use super::docs::XksKey;
use super::wire::{Input, XksRequest};
use super::XksError;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const TAG_LEN: usize = 16;

/// The spec's AES-GCM AAD for these fields (both at most their bounds, so
/// the lengths fit their 2 and 1 bytes).
fn spec_aad(aad: &[u8], ciphertext_metadata: &[u8]) -> Result<Vec<u8>, XksError> {
    let (Ok(aad_len), Ok(md_len)) = (
        u16::try_from(aad.len()),
        u8::try_from(ciphertext_metadata.len()),
    ) else {
        return Err(XksError::Validation(
            "additionalAuthenticatedData or ciphertextMetadata is too long".into(),
        ));
    };
    let mut out = Vec::with_capacity(3 + aad.len() + ciphertext_metadata.len());
    out.extend_from_slice(&aad_len.to_be_bytes());
    out.extend_from_slice(aad);
    out.push(md_len);
    out.extend_from_slice(ciphertext_metadata);
    Ok(out)
}

fn cipher(key: &XksKey) -> Result<LessSafeKey, XksError> {
    UnboundKey::new(&AES_256_GCM, &key.material)
        .map(LessSafeKey::new)
        .map_err(|_| XksError::Internal("The external key's material is unusable".into()))
}

/// Runs a checked, authorized request: the response JSON and the audit
/// record's response elements (never plaintext).
pub(super) fn run(key: &XksKey, request: XksRequest) -> Result<(Vec<u8>, Vec<u8>), XksError> {
    match request.input {
        Input::None => {
            let usage: Vec<&str> = key.usage.iter().map(|u| u.as_str()).collect();
            let body = serde_json::json!({
                "keySpec": "AES_256",
                "keyUsage": usage,
                "keyStatus": if key.enabled { "ENABLED" } else { "DISABLED" },
            })
            .to_string()
            .into_bytes();
            Ok((body.clone(), body))
        }
        Input::Encrypt {
            plaintext,
            aad,
            cdiv,
        } => encrypt(key, &plaintext, &aad, cdiv),
        Input::Decrypt {
            ciphertext,
            iv,
            tag,
            aad,
            ciphertext_metadata,
        } => {
            let plaintext = decrypt(
                key,
                &ciphertext,
                &iv,
                &tag,
                &spec_aad(&aad, &ciphertext_metadata)?,
            )?;
            let text = Zeroizing::new(B64.encode(plaintext.as_slice()));
            let body = serde_json::json!({ "plaintext": text.as_str() })
                .to_string()
                .into_bytes();
            Ok((body, Vec::new()))
        }
    }
}

fn encrypt(
    key: &XksKey,
    plaintext: &[u8],
    aad: &[u8],
    cdiv: bool,
) -> Result<(Vec<u8>, Vec<u8>), XksError> {
    let full_aad = spec_aad(aad, &[])?;
    let mut iv = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut iv)
        .map_err(|_| XksError::Internal("The random number generator failed".into()))?;
    let mut ciphertext = plaintext.to_vec();
    let tag = cipher(key)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(full_aad.as_slice()),
            &mut ciphertext,
        )
        .map_err(|_| XksError::Internal("Encryption failed".into()))?;
    let mut body = serde_json::json!({
        "ciphertext": B64.encode(&ciphertext),
        "initializationVector": B64.encode(iv),
        "authenticationTag": B64.encode(tag.as_ref()),
    });
    if cdiv {
        // The CDIV first, then a decryption of exactly what is returned
        // (the spec's Appendix C order).
        let mut hashed = Vec::with_capacity(aad.len() + iv.len() + ciphertext.len() + TAG_LEN);
        hashed.extend_from_slice(aad);
        hashed.extend_from_slice(&iv);
        hashed.extend_from_slice(&ciphertext);
        hashed.extend_from_slice(tag.as_ref());
        let value = B64.encode(digest(&SHA256, &hashed).as_ref());
        let back = decrypt(key, &ciphertext, &iv, tag.as_ref(), &full_aad)
            .map_err(|_| XksError::Internal("The ciphertext did not decrypt back".into()))?;
        if back.as_slice() != plaintext {
            return Err(XksError::Internal(
                "The ciphertext did not decrypt back".into(),
            ));
        }
        body["ciphertextDataIntegrityValue"] = value.into();
    }
    let elements = serde_json::json!({
        "initializationVector": B64.encode(iv),
        "ciphertextDataIntegrityValue": body.get("ciphertextDataIntegrityValue"),
    });
    Ok((
        body.to_string().into_bytes(),
        elements.to_string().into_bytes(),
    ))
}

fn decrypt(
    key: &XksKey,
    ciphertext: &[u8],
    iv: &[u8],
    tag: &[u8],
    full_aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, XksError> {
    let invalid = || {
        XksError::InvalidCiphertext(
            "The ciphertext, initialization vector, additional authenticated data or authentication tag is invalid".into(),
        )
    };
    // This proxy makes 12-byte IVs only: a 16-byte one is not its ciphertext.
    let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| invalid())?;
    let mut buf = Zeroizing::new(Vec::with_capacity(ciphertext.len() + TAG_LEN));
    buf.extend_from_slice(ciphertext);
    buf.extend_from_slice(tag);
    let len = cipher(key)?
        .open_in_place(nonce, Aad::from(full_aad), buf.as_mut_slice())
        .map_err(|_| invalid())?
        .len();
    buf.truncate(len);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::xks::docs::Usage;

    fn key() -> XksKey {
        XksKey {
            usage: vec![Usage::Encrypt, Usage::Decrypt],
            enabled: true,
            material: Zeroizing::new(vec![7; 32]),
            allowed_principals: Vec::new(),
        }
    }

    #[test]
    fn the_aad_carries_both_lengths() {
        assert_eq!(spec_aad(b"", b"").unwrap(), [0, 0, 0]);
        assert_eq!(spec_aad(b"ab", b"m").unwrap(), [0, 2, b'a', b'b', 1, b'm']);
        // Metadata moved into the AAD is another AAD.
        assert_ne!(spec_aad(b"m", b"").unwrap(), spec_aad(b"", b"m").unwrap());
    }

    #[test]
    fn encrypt_decrypt_round_trip_and_tampering_fails() {
        let k = key();
        let (json, _) = encrypt(&k, b"hello", b"ctx", true).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let field = |n: &str| B64.decode(v[n].as_str().unwrap()).unwrap();
        let (ct, iv, tag) = (
            field("ciphertext"),
            field("initializationVector"),
            field("authenticationTag"),
        );
        assert_eq!(ct.len(), 5);
        let mut hashed = b"ctx".to_vec();
        hashed.extend_from_slice(&iv);
        hashed.extend_from_slice(&ct);
        hashed.extend_from_slice(&tag);
        assert_eq!(
            field("ciphertextDataIntegrityValue"),
            digest(&SHA256, &hashed).as_ref()
        );
        let aad = spec_aad(b"ctx", b"").unwrap();
        assert_eq!(
            decrypt(&k, &ct, &iv, &tag, &aad).unwrap().as_slice(),
            b"hello"
        );
        let other = spec_aad(b"cty", b"").unwrap();
        assert!(matches!(
            decrypt(&k, &ct, &iv, &tag, &other),
            Err(XksError::InvalidCiphertext(_))
        ));
        let mut bad = ct.clone();
        bad[0] ^= 1;
        assert!(decrypt(&k, &bad, &iv, &tag, &aad).is_err());
        assert!(decrypt(&k, &ct, &[0; 16], &tag, &aad).is_err());
    }
}
