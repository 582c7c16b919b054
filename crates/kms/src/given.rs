//! Key material given in the clear by the operator: a bootstrap file's
//! `materials`, a local-kms seed file's `BackingKeys` and `PrivateKeyPem`,
//! and (under `--dev` only) LocalStack's `_custom_key_material_` tag.
//!
//! Everything here turns such text into the stored form of
//! [`crate::keymat`] (raw bytes for symmetric and HMAC keys, PKCS#8 v1 DER
//! for private keys) and checks it against the key spec. No error message
//! shows any part of the material: they say what was wrong (the length, the
//! PEM label, the curve), never the bytes.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature;
use zeroize::Zeroizing;

use crate::keymat::{ecdsa_signing, rsa_size};
use crate::model::KeySpec;

/// LocalStack's CreateKey tag that picks the new key's id (`--dev` only).
pub const CUSTOM_ID_TAG: &str = "_custom_id_";
/// LocalStack's CreateKey tag that gives the new key's material, base64
/// (`--dev` only; refused otherwise, see docs/keys.md).
pub const CUSTOM_KEY_MATERIAL_TAG: &str = "_custom_key_material_";

/// The kind of private key a PEM block says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemLabel {
    /// `PRIVATE KEY`: PKCS#8 `PrivateKeyInfo` of any algorithm.
    Pkcs8,
    /// `RSA PRIVATE KEY`: PKCS#1 `RSAPrivateKey` (the traditional RSA form).
    Rsa,
    /// `EC PRIVATE KEY`: SEC 1 / RFC 5915 `ECPrivateKey` (the traditional EC form).
    Ec,
}

impl PemLabel {
    fn describe(self) -> &'static str {
        match self {
            PemLabel::Pkcs8 => "a PKCS#8 private key (BEGIN PRIVATE KEY)",
            PemLabel::Rsa => "a PKCS#1 RSA private key (BEGIN RSA PRIVATE KEY)",
            PemLabel::Ec => "an SEC 1 EC private key (BEGIN EC PRIVATE KEY)",
        }
    }
}

/// Reads the one private key of a PEM text: `PRIVATE KEY`, `RSA PRIVATE
/// KEY` or `EC PRIVATE KEY`. An `EC PARAMETERS` block (as `openssl ecparam
/// -genkey` writes before the key) is skipped; encrypted keys, other
/// labels and more than one key are refused.
pub fn decode_private_key_pem(text: &str) -> Result<(PemLabel, Zeroizing<Vec<u8>>), String> {
    use base64::Engine;
    let mut found: Option<(PemLabel, Zeroizing<Vec<u8>>)> = None;
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            return Err("is not PEM: text outside a -----BEGIN ...----- block".into());
        };
        let end = format!("-----END {label}-----");
        let mut body = Zeroizing::new(String::new());
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                return Err(format!(
                    "PEM block {label} has headers (an encrypted key?): give the key unencrypted"
                ));
            }
            body.push_str(l);
        }
        if !closed {
            return Err(format!("PEM block {label} has no {end} line"));
        }
        let kind = match label {
            "EC PARAMETERS" => continue,
            "PRIVATE KEY" => PemLabel::Pkcs8,
            "RSA PRIVATE KEY" => PemLabel::Rsa,
            "EC PRIVATE KEY" => PemLabel::Ec,
            "ENCRYPTED PRIVATE KEY" => {
                return Err("holds an encrypted private key: give the key unencrypted".into())
            }
            other => {
                return Err(format!(
                    "PEM block {other} is not a private key (expected PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
                ))
            }
        };
        if found.is_some() {
            return Err("holds more than one private key".into());
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| format!("PEM block {label} is not valid base64"))?;
        found = Some((kind, Zeroizing::new(der)));
    }
    found.ok_or_else(|| "holds no private key".to_string())
}

/// A DER private key (PKCS#8, or PKCS#1 / SEC 1 when `label` says so or
/// when `label` is `None` and the form is to be found out) as the PKCS#8 v1
/// DER the key store keeps, checked to be a key of `spec` (family, RSA
/// modulus size, EC curve).
pub fn private_key_to_pkcs8(
    spec: KeySpec,
    label: Option<PemLabel>,
    der: &[u8],
) -> Result<Zeroizing<Vec<u8>>, String> {
    let not_spec = |what: &str| format!("is {what}, not a private key of key spec {spec}");
    if rsa_size(spec).is_some() {
        let kp = match label {
            Some(PemLabel::Pkcs8) => signature::RsaKeyPair::from_pkcs8(der).ok(),
            Some(PemLabel::Rsa) => signature::RsaKeyPair::from_der(der).ok(),
            Some(PemLabel::Ec) => return Err(not_spec(PemLabel::Ec.describe())),
            None => signature::RsaKeyPair::from_pkcs8(der)
                .or_else(|_| signature::RsaKeyPair::from_der(der))
                .ok(),
        }
        .ok_or_else(|| not_spec("not a readable RSA private key"))?;
        let bits = kp.public_modulus_len() * 8;
        let want = match spec {
            KeySpec::Rsa2048 => 2048,
            KeySpec::Rsa3072 => 3072,
            _ => 4096,
        };
        if bits != want {
            return Err(format!(
                "is a {bits}-bit RSA key, not a private key of key spec {spec}"
            ));
        }
        let doc = kp
            .as_der()
            .map_err(|_| "could not be re-encoded as PKCS#8".to_string())?;
        return Ok(Zeroizing::new(doc.as_ref().to_vec()));
    }
    if let Some(alg) = ecdsa_signing(spec) {
        if label == Some(PemLabel::Rsa) {
            return Err(not_spec(PemLabel::Rsa.describe()));
        }
        let kp = signature::EcdsaKeyPair::from_private_key_der(alg, der)
            .map_err(|_| not_spec("not an EC private key on the curve of the key spec"))?;
        let doc = kp
            .to_pkcs8v1()
            .map_err(|_| "could not be re-encoded as PKCS#8".to_string())?;
        return Ok(Zeroizing::new(doc.as_ref().to_vec()));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        if matches!(label, Some(PemLabel::Rsa | PemLabel::Ec)) {
            return Err(not_spec(label.map_or("", PemLabel::describe)));
        }
        let kp = signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| not_spec("not an Ed25519 PKCS#8 private key"))?;
        let doc: aws_lc_rs::encoding::Pkcs8V1Der<'static> = kp
            .as_der()
            .map_err(|_| "could not be re-encoded as PKCS#8".to_string())?;
        return Ok(Zeroizing::new(doc.as_ref().to_vec()));
    }
    Err(format!(
        "key spec {spec} takes no private key here (RSA, ECC and Ed25519 keys do)"
    ))
}

/// The key spec of a private key whose spec is not written down (a
/// local-kms seed file's `PrivateKeyPem`: RSA keys of 2048, 3072 or 4096
/// bits, EC keys on P-256, P-384, P-521 or secp256k1).
pub fn infer_asymmetric_spec(label: PemLabel, der: &[u8]) -> Option<KeySpec> {
    let candidates: &[KeySpec] = match label {
        PemLabel::Rsa => &[KeySpec::Rsa2048, KeySpec::Rsa3072, KeySpec::Rsa4096],
        PemLabel::Ec => &[
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::EccSecgP256k1,
        ],
        PemLabel::Pkcs8 => &[
            KeySpec::Rsa2048,
            KeySpec::Rsa3072,
            KeySpec::Rsa4096,
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::EccSecgP256k1,
        ],
    };
    candidates
        .iter()
        .copied()
        .find(|s| private_key_to_pkcs8(*s, Some(label), der).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(label: &str, der: &[u8]) -> String {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn pkcs8_and_traditional_forms_read_and_wrong_specs_are_refused() {
        let ec =
            signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let p8 = ec.to_pkcs8v1().unwrap();
        let (label, der) = decode_private_key_pem(&pem("PRIVATE KEY", p8.as_ref())).unwrap();
        assert_eq!(label, PemLabel::Pkcs8);
        assert!(private_key_to_pkcs8(KeySpec::EccNistP256, Some(label), &der).is_ok());
        assert_eq!(
            infer_asymmetric_spec(label, &der),
            Some(KeySpec::EccNistP256)
        );
        let e = private_key_to_pkcs8(KeySpec::EccNistP384, Some(label), &der).unwrap_err();
        assert!(e.contains("ECC_NIST_P384"), "{e}");
        let e = private_key_to_pkcs8(KeySpec::Rsa2048, Some(label), &der).unwrap_err();
        assert!(e.contains("RSA_2048"), "{e}");
        // The traditional SEC 1 form, as openssl ecparam -genkey writes it.
        let sec1 = ec.private_key().as_der().unwrap();
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            pem("EC PRIVATE KEY", sec1.as_ref())
        );
        let (label, der) = decode_private_key_pem(&text).unwrap();
        assert_eq!(label, PemLabel::Ec);
        let again = private_key_to_pkcs8(KeySpec::EccNistP256, Some(label), &der).unwrap();
        assert_eq!(again.as_slice(), p8.as_ref());
        assert!(decode_private_key_pem(
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----"
        )
        .is_err());
        assert!(decode_private_key_pem("hello").is_err());
        assert!(decode_private_key_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n").is_err());
        let enc = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----";
        assert!(decode_private_key_pem(enc)
            .unwrap_err()
            .contains("encrypted"));
    }
}
