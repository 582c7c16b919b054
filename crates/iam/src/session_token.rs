//! Self-contained session tokens: everything a session is, sealed into the
//! `SessionToken` the client sends back with every request, so the server
//! keeps nothing per session.
//!
//! A token is base64 (standard alphabet, as AWS's) of
//! `version (1 byte) | nonce (12 bytes) | AES-256-GCM(claims) | tag (16)`,
//! the claims being JSON. The associated data is a fixed label plus the
//! version byte. The session's secret access key is not in the token: it is
//! HMAC-SHA256 over the access key id and the issue time under a second key,
//! so the server re-derives it when the token comes back. Both keys are
//! derived from the root key (HKDF, [`ferrokms_store::Sealer::derive_key`]):
//! every node sharing a store has the same root key (checked at start), so
//! every node opens every token, across restarts, with no row stored. The
//! version byte says which keys sealed a token, so that they can rotate.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD as B64, STANDARD_NO_PAD as B64_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::entities::Tag;
use crate::Principal;

/// The largest session token accepted or issued, in characters (base64).
/// AWS documents no limit; a session carries at most a 2,048-character
/// inline policy, 10 policy ARNs and 50 tags (up to 128 + 256 characters
/// each), which AWS bounds together as the packed policy size. Here the
/// token is that bound: 8 KiB, half of the largest request head the
/// listener reads (`limits::MAX_HEAD_BYTES`, 16 KiB), so a request carrying
/// the largest token still fits with its other headers. A session that
/// would need a larger token (a long policy with many long tags) is refused
/// at issue with `PackedPolicyTooLarge`, and a larger token presented with
/// a request is refused before any work is spent on it.
pub const MAX_TOKEN_CHARS: usize = 8 * 1024;

/// The version of the keys that seal tokens (and derive secrets) now.
const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"ferrokms sts session token";
const TAG_LEN: usize = 16;

/// Why a token was refused. The caller learns nothing more than AWS's
/// "The security token included in the request is invalid."
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is longer than [`MAX_TOKEN_CHARS`].
    #[error("session token too large")]
    TooLarge,
    /// The token is not base64.
    #[error("session token is not base64")]
    Encoding,
    /// Authentication failed: the token was altered, cut short, or sealed by another server.
    #[error("session token does not open (tampered, truncated or sealed elsewhere)")]
    Open,
    /// The token names a sealing key version this server does not have.
    #[error("session token sealed by an unknown key version")]
    UnknownVersion,
    /// The token opened but its contents do not decode.
    #[error("session token contents are unreadable")]
    Contents,
    /// The cryptographic library failed (key derivation, randomness).
    #[error("key derivation or random number generation failed")]
    Crypto,
}

/// What a session is: the sealed contents of its token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Claims {
    /// The temporary access key id (ASIA...) the token belongs to.
    pub ak: String,
    /// Who the session acts as (the role's or user's unique id included).
    pub p: Principal,
    /// Issued at, epoch ms (`aws:TokenIssueTime`).
    pub iat: i64,
    /// Expires at, epoch ms.
    pub exp: i64,
    /// The inline session policy, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pol: Option<String>,
    /// Managed session policies (the role's account's), by ARN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// Keys of the tags that pass on to chained role sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub si: Option<String>,
}

/// The keys of one version: the token's AEAD key and the secret's HMAC key.
pub(crate) struct TokenKeys {
    aead: LessSafeKey,
    mac: hmac::Key,
}

impl TokenKeys {
    /// Version 1's keys, derived from the root key.
    pub(crate) fn derive(sealer: &ferrokms_store::Sealer) -> Result<TokenKeys, TokenError> {
        let aead = sealer
            .derive_key(b"ferrokms sts session token aes-256-gcm v1")
            .map_err(|_| TokenError::Crypto)?;
        let mac = sealer
            .derive_key(b"ferrokms sts session secret hmac-sha256 v1")
            .map_err(|_| TokenError::Crypto)?;
        Ok(TokenKeys {
            aead: LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, aead.as_ref()).map_err(|_| TokenError::Crypto)?,
            ),
            mac: hmac::Key::new(hmac::HMAC_SHA256, mac.as_ref()),
        })
    }

    /// Seals `claims` into a token. The token may exceed
    /// [`MAX_TOKEN_CHARS`]; the caller refuses to issue such a session.
    pub(crate) fn seal(&self, claims: &Claims) -> Result<Zeroizing<String>, TokenError> {
        let mut body =
            Zeroizing::new(serde_json::to_vec(claims).map_err(|_| TokenError::Contents)?);
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| TokenError::Crypto)?;
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad().as_slice()),
                &mut *body,
            )
            .map_err(|_| TokenError::Crypto)?;
        let mut raw = Vec::with_capacity(1 + NONCE_LEN + body.len());
        raw.push(VERSION);
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&body);
        Ok(Zeroizing::new(B64.encode(raw)))
    }

    /// Opens a token presented by a client: any failure is a refusal,
    /// whatever the bytes (never a panic).
    pub(crate) fn open(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::TooLarge);
        }
        let raw = B64.decode(token).map_err(|_| TokenError::Encoding)?;
        let (&version, rest) = raw.split_first().ok_or(TokenError::Open)?;
        if version != VERSION {
            return Err(TokenError::UnknownVersion);
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(TokenError::Open);
        }
        let (nonce_bytes, sealed) = rest.split_at(NONCE_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(nonce_bytes);
        let mut body = Zeroizing::new(sealed.to_vec());
        let plain = self
            .aead
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad().as_slice()),
                body.as_mut_slice(),
            )
            .map_err(|_| TokenError::Open)?;
        serde_json::from_slice(plain).map_err(|_| TokenError::Contents)
    }

    /// The session's secret access key (40 characters, AWS's alphabet):
    /// HMAC-SHA256 over the access key id and the issue time.
    pub(crate) fn secret(&self, access_key_id: &str, issued_ms: i64) -> Zeroizing<String> {
        let mut input = Vec::with_capacity(access_key_id.len() + 24);
        input.extend_from_slice(access_key_id.as_bytes());
        input.push(0);
        input.extend_from_slice(issued_ms.to_string().as_bytes());
        let tag = hmac::sign(&self.mac, &input);
        // 30 bytes are exactly 40 base64 characters.
        Zeroizing::new(B64_NO_PAD.encode(&tag.as_ref()[..30]))
    }
}

/// The associated data: the label and the version byte.
fn aad() -> Vec<u8> {
    let mut a = AAD_LABEL.to_vec();
    a.push(VERSION);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokms_store::Sealer;
    use ferrokms_types::AccountId;

    fn keys(root: u8) -> TokenKeys {
        TokenKeys::derive(&Sealer::from_bytes(&[root; 32]).expect("sealer")).expect("keys")
    }

    fn claims() -> Claims {
        Claims {
            ak: "ASIAEXAMPLE234567890".into(),
            p: Principal::AssumedRole {
                account: AccountId::parse("111122223333").expect("account"),
                role_name: "ops".into(),
                role_path: "/".into(),
                role_id: "AROAEXAMPLE000000001".into(),
                session_name: "s".into(),
            },
            iat: 1_700_000_000_000,
            exp: 1_700_003_600_000,
            pol: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            arns: vec!["arn:aws:iam::111122223333:policy/p".into()],
            tags: vec![Tag {
                key: "team".into(),
                value: "blue".into(),
            }],
            tt: vec!["team".into()],
            si: Some("alice".into()),
        }
    }

    #[test]
    fn a_sealed_session_opens_to_the_same_claims_on_another_node_with_the_same_root_key() {
        let token = keys(1).seal(&claims()).expect("seal");
        assert!(token.len() < 1024, "{}", token.len());
        assert_eq!(keys(1).open(&token).expect("open"), claims());
        // The claims are not readable in the token.
        let raw = B64.decode(token.as_str()).expect("base64");
        assert!(!String::from_utf8_lossy(&raw).contains("AROAEXAMPLE"));
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_refused() {
        let k = keys(1);
        let token = k.seal(&claims()).expect("seal");
        let raw = B64.decode(token.as_str()).expect("base64");
        for i in 0..raw.len() {
            for bit in [0x01u8, 0x80] {
                let mut t = raw.clone();
                t[i] ^= bit;
                assert!(k.open(&B64.encode(&t)).is_err(), "byte {i} bit {bit}");
            }
        }
        for n in 0..raw.len() {
            assert!(k.open(&B64.encode(&raw[..n])).is_err(), "truncated to {n}");
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert!(k.open(&B64.encode(&longer)).is_err());
    }

    #[test]
    fn a_token_of_another_deployment_or_version_or_garbage_is_refused() {
        let token = keys(1).seal(&claims()).expect("seal");
        assert_eq!(keys(2).open(&token), Err(TokenError::Open));
        let mut raw = B64.decode(token.as_str()).expect("base64");
        raw[0] = 2;
        assert_eq!(
            keys(1).open(&B64.encode(&raw)),
            Err(TokenError::UnknownVersion)
        );
        for garbage in [
            "",
            "x",
            "xxxx",
            "!!!!",
            "AQ==",
            &"A".repeat(MAX_TOKEN_CHARS),
        ] {
            assert!(keys(1).open(garbage).is_err(), "{garbage:.10}");
        }
        assert_eq!(
            keys(1).open(&"A".repeat(MAX_TOKEN_CHARS + 4)),
            Err(TokenError::TooLarge)
        );
    }

    #[test]
    fn secrets_are_derived_per_key_id_and_issue_time_and_per_deployment() {
        let k = keys(1);
        let s = k.secret("ASIAEXAMPLE234567890", 5);
        assert_eq!(s.len(), 40);
        assert_eq!(*s, *keys(1).secret("ASIAEXAMPLE234567890", 5));
        assert_ne!(*s, *k.secret("ASIAEXAMPLE234567891", 5));
        assert_ne!(*s, *k.secret("ASIAEXAMPLE234567890", 6));
        assert_ne!(*s, *keys(2).secret("ASIAEXAMPLE234567890", 5));
    }
}
