//! ML-KEM (FIPS 203) key material of ML_KEM_512/768/1024 KMS keys:
//! generation, the stored form, the public key as AWS shows it, and
//! Encapsulate/Decapsulate through aws-lc-rs.
//!
//! Stored (sealed under the root key): the FIPS 203 decapsulation key in
//! its expanded form, `dk = dk_PKE || ek || H(ek) || z` (1632, 2400 or 3168
//! bytes), the only private form aws-lc-rs reads back. The encapsulation
//! key `ek` is taken from inside it and checked against `H(ek)` when the
//! material is loaded (FIPS 203 §7.3's hash check), so a damaged blob is
//! refused instead of producing wrong secrets.
//!
//! The public key is a DER SubjectPublicKeyInfo with the NIST algorithm
//! identifiers id-alg-ml-kem-512/768/1024 (2.16.840.1.101.3.4.4.1-3, no
//! parameters) and the raw `ek` as the BIT STRING (RFC 9935), as GetPublicKey
//! returns it on AWS. No secret is ever put into an error message.

use aws_lc_rs::digest;
use aws_lc_rs::kem::{self, Ciphertext, DecapsulationKey, EncapsulationKey};
use zeroize::Zeroizing;

use crate::model::KeySpec;
use crate::KmsError;

/// The length of every ML-KEM shared secret.
pub const SHARED_SECRET_LEN: usize = 32;

/// The parameters of one ML-KEM key spec.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// FIPS 203's k: 2, 3 or 4.
    k: usize,
    /// The last arc of the algorithm's OID (2.16.840.1.101.3.4.4.x).
    oid_arc: u8,
    /// Ciphertext length in bytes (FIPS 203 Table 3).
    pub ciphertext_len: usize,
    alg: &'static kem::Algorithm,
}

impl Params {
    /// The parameters of an `ML_KEM_*` key spec; `None` for other specs.
    pub fn of(spec: KeySpec) -> Option<Params> {
        match spec {
            KeySpec::MlKem512 => Some(Params {
                k: 2,
                oid_arc: 1,
                ciphertext_len: 768,
                alg: &kem::ML_KEM_512,
            }),
            KeySpec::MlKem768 => Some(Params {
                k: 3,
                oid_arc: 2,
                ciphertext_len: 1088,
                alg: &kem::ML_KEM_768,
            }),
            KeySpec::MlKem1024 => Some(Params {
                k: 4,
                oid_arc: 3,
                ciphertext_len: 1568,
                alg: &kem::ML_KEM_1024,
            }),
            _ => None,
        }
    }

    /// Length of the encapsulation (public) key: 384k + 32.
    pub fn public_key_len(self) -> usize {
        384 * self.k + 32
    }

    /// Length of the expanded decapsulation key: 768k + 96.
    pub fn private_key_len(self) -> usize {
        768 * self.k + 96
    }

    /// DER of the AlgorithmIdentifier: SEQUENCE { OID } (no parameters).
    fn algorithm_identifier(self) -> [u8; 13] {
        [
            0x30,
            0x0b,
            0x06,
            0x09,
            0x60,
            0x86,
            0x48,
            0x01,
            0x65,
            0x03,
            0x04,
            0x04,
            self.oid_arc,
        ]
    }

    /// The DER SubjectPublicKeyInfo of an encapsulation key.
    pub fn spki(self, ek: &[u8]) -> Vec<u8> {
        let mut bit_string = Vec::with_capacity(ek.len() + 5);
        bit_string.push(0x03);
        push_len(&mut bit_string, ek.len() + 1);
        bit_string.push(0x00); // no unused bits
        bit_string.extend_from_slice(ek);
        let alg = self.algorithm_identifier();
        sequence(&[&alg, &bit_string])
    }

    /// A PKCS#8 v1 PrivateKeyInfo holding the 64-byte seed `d || z` in the
    /// seed form of RFC 9935 (`[0] IMPLICIT OCTET STRING`): what AWS
    /// returns as an ML-KEM data key pair's private key, 86 bytes for every
    /// parameter set.
    pub fn pkcs8_seed(self, seed: &[u8; 64]) -> Zeroizing<Vec<u8>> {
        let alg = self.algorithm_identifier();
        let mut inner = Zeroizing::new(Vec::with_capacity(70));
        inner.extend_from_slice(&[0x04, 0x42, 0x80, 0x40]);
        inner.extend_from_slice(seed);
        let version = [0x02, 0x01, 0x00];
        Zeroizing::new(sequence(&[&version, &alg, &inner]))
    }
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 4);
    out.push(0x30);
    push_len(&mut out, len);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

fn internal(what: &str) -> KmsError {
    KmsError::Internal(format!("{what} failed"))
}

/// A fresh ML-KEM data key pair as AWS returns it: (private key as PKCS#8
/// in seed form, public key as SPKI). The seed `d || z` comes from the
/// system random generator; the public key is computed from it by the
/// `ml-kem` crate (FIPS 203 ML-KEM.KeyGen_internal), the one step aws-lc-rs
/// does not offer.
pub fn generate_data_key_pair(spec: KeySpec) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), KmsError> {
    let p = Params::of(spec).ok_or_else(|| internal("ML-KEM key generation"))?;
    let random = crate::crypto::random_bytes(64)?;
    let mut seed = Zeroizing::new([0u8; 64]);
    seed.copy_from_slice(&random);
    let ek = public_key_of_seed(spec, &seed)?;
    Ok((p.pkcs8_seed(&seed), p.spki(&ek)))
}

/// FIPS 203 ML-KEM.KeyGen_internal(d, z): the encapsulation key of a seed.
fn public_key_of_seed(spec: KeySpec, seed: &[u8; 64]) -> Result<Vec<u8>, KmsError> {
    use ml_kem::{EncodedSizeUser, KemCore, B32};
    let bad = || internal("ML-KEM key generation");
    let d = B32::try_from(&seed[..32]).map_err(|_| bad())?;
    let z = B32::try_from(&seed[32..]).map_err(|_| bad())?;
    Ok(match spec {
        KeySpec::MlKem512 => ml_kem::MlKem512::generate_deterministic(&d, &z)
            .1
            .as_bytes()
            .to_vec(),
        KeySpec::MlKem768 => ml_kem::MlKem768::generate_deterministic(&d, &z)
            .1
            .as_bytes()
            .to_vec(),
        KeySpec::MlKem1024 => ml_kem::MlKem1024::generate_deterministic(&d, &z)
            .1
            .as_bytes()
            .to_vec(),
        _ => return Err(bad()),
    })
}

/// A loaded ML-KEM key pair.
pub struct MlKemKey {
    params: Params,
    private: DecapsulationKey,
    public: EncapsulationKey,
    spki: Vec<u8>,
}

impl MlKemKey {
    /// New material in its stored form (the expanded decapsulation key).
    pub fn generate(spec: KeySpec) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let p = Params::of(spec).ok_or_else(|| internal("ML-KEM key generation"))?;
        let dk =
            DecapsulationKey::generate(p.alg).map_err(|_| internal("ML-KEM key generation"))?;
        let bytes = dk
            .key_bytes()
            .map_err(|_| internal("ML-KEM key encoding"))?;
        Ok(Zeroizing::new(bytes.as_ref().to_vec()))
    }

    /// Reads stored material: the expanded decapsulation key of `spec`,
    /// refused unless its length and its embedded `H(ek)` are right.
    pub fn load(spec: KeySpec, stored: &[u8]) -> Option<MlKemKey> {
        let p = Params::of(spec)?;
        if stored.len() != p.private_key_len() {
            return None;
        }
        let ek_start = 384 * p.k;
        let ek_end = ek_start + p.public_key_len();
        let ek = stored.get(ek_start..ek_end)?;
        let hash = stored.get(ek_end..ek_end + 32)?;
        if digest::digest(&digest::SHA3_256, ek).as_ref() != hash {
            return None;
        }
        Some(MlKemKey {
            params: p,
            private: DecapsulationKey::new(p.alg, stored).ok()?,
            public: EncapsulationKey::new(p.alg, ek).ok()?,
            spki: p.spki(ek),
        })
    }

    /// The key's parameter set.
    pub fn params(&self) -> Params {
        self.params
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn spki(&self) -> &[u8] {
        &self.spki
    }

    /// A fresh shared secret and its ciphertext under the public key.
    pub fn encapsulate(&self) -> Result<(Vec<u8>, Zeroizing<Vec<u8>>), KmsError> {
        let (ct, ss) = self
            .public
            .encapsulate()
            .map_err(|_| internal("ML-KEM encapsulation"))?;
        Ok((ct.as_ref().to_vec(), Zeroizing::new(ss.as_ref().to_vec())))
    }

    /// The shared secret of a ciphertext. Only a ciphertext of the wrong
    /// length is refused (InvalidCiphertextException); any other ciphertext
    /// gives 32 bytes: the real secret, or for a ciphertext not made under
    /// this key FIPS 203's implicit rejection value, pseudo-random and
    /// unrelated to the secret.
    pub fn decapsulate(&self, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if ciphertext.len() != self.params.ciphertext_len {
            return Err(KmsError::InvalidCiphertext);
        }
        let ss = self
            .private
            .decapsulate(Ciphertext::from(ciphertext))
            .map_err(|_| internal("ML-KEM decapsulation"))?;
        Ok(Zeroizing::new(ss.as_ref().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SPECS: [KeySpec; 3] = [KeySpec::MlKem512, KeySpec::MlKem768, KeySpec::MlKem1024];

    fn key(spec: KeySpec) -> MlKemKey {
        MlKemKey::load(spec, &MlKemKey::generate(spec).unwrap()).unwrap()
    }

    #[test]
    fn sizes_follow_fips_203_table_3() {
        for (spec, ek, dk, ct) in [
            (KeySpec::MlKem512, 800, 1632, 768),
            (KeySpec::MlKem768, 1184, 2400, 1088),
            (KeySpec::MlKem1024, 1568, 3168, 1568),
        ] {
            let p = Params::of(spec).unwrap();
            assert_eq!(
                (p.public_key_len(), p.private_key_len(), p.ciphertext_len),
                (ek, dk, ct)
            );
            assert_eq!(MlKemKey::generate(spec).unwrap().len(), dk);
        }
        assert!(Params::of(KeySpec::MlDsa65).is_none());
    }

    #[test]
    fn decapsulation_recovers_the_encapsulated_secret() {
        for spec in SPECS {
            let k = key(spec);
            let (ct, ss) = k.encapsulate().unwrap();
            assert_eq!(ct.len(), k.params().ciphertext_len);
            assert_eq!(ss.len(), SHARED_SECRET_LEN);
            assert_eq!(k.decapsulate(&ct).unwrap(), ss);
            // Randomized: a second encapsulation is another secret.
            let (ct2, ss2) = k.encapsulate().unwrap();
            assert_ne!(ct2, ct);
            assert_ne!(ss2, ss);
        }
    }

    #[test]
    fn a_ciphertext_of_the_wrong_length_is_invalid_ciphertext() {
        for spec in SPECS {
            let k = key(spec);
            let (ct, _) = k.encapsulate().unwrap();
            for bad in [&ct[1..], &[][..], &[ct.clone(), vec![0]].concat()[..]] {
                assert_eq!(k.decapsulate(bad).unwrap_err(), KmsError::InvalidCiphertext);
            }
        }
    }

    #[test]
    fn a_tampered_ciphertext_gives_an_implicit_rejection_secret() {
        for spec in SPECS {
            let k = key(spec);
            let (mut ct, ss) = k.encapsulate().unwrap();
            ct[10] ^= 1;
            let rejected = k.decapsulate(&ct).unwrap();
            assert_eq!(rejected.len(), SHARED_SECRET_LEN);
            assert_ne!(rejected, ss);
            // Implicit rejection is deterministic (J(z || c)).
            assert_eq!(k.decapsulate(&ct).unwrap(), rejected);
            // Another key's ciphertext: 32 bytes, not that key's secret.
            let (other_ct, other_ss) = key(spec).encapsulate().unwrap();
            assert_ne!(k.decapsulate(&other_ct).unwrap(), other_ss);
        }
    }

    #[test]
    fn the_public_key_is_an_rfc_9935_subject_public_key_info() {
        for (spec, arc, head) in [
            (KeySpec::MlKem512, 1u8, [0x30, 0x82, 0x03, 0x32]),
            (KeySpec::MlKem768, 2, [0x30, 0x82, 0x04, 0xb2]),
            (KeySpec::MlKem1024, 3, [0x30, 0x82, 0x06, 0x32]),
        ] {
            let k = key(spec);
            let spki = k.spki();
            assert_eq!(&spki[..4], &head);
            assert_eq!(
                &spki[4..17],
                &[0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x04, arc]
            );
            let ek_len = k.params().public_key_len();
            assert_eq!(spki.len(), 17 + 4 + 1 + ek_len);
            assert_eq!(spki[17], 0x03);
            assert_eq!(spki[21], 0x00);
            // The key inside the SPKI encapsulates to the private key.
            let ek = EncapsulationKey::new(k.params().alg, &spki[22..]).unwrap();
            let (ct, ss) = ek.encapsulate().unwrap();
            assert_eq!(k.decapsulate(ct.as_ref()).unwrap().as_slice(), ss.as_ref());
        }
    }

    #[test]
    fn damaged_or_foreign_stored_material_does_not_load() {
        let stored = MlKemKey::generate(KeySpec::MlKem768).unwrap();
        assert!(MlKemKey::load(KeySpec::MlKem768, &stored).is_some());
        // Another spec's length.
        assert!(MlKemKey::load(KeySpec::MlKem512, &stored).is_none());
        assert!(MlKemKey::load(KeySpec::MlKem768, &stored[1..]).is_none());
        // A flipped bit in the public part breaks H(ek).
        let mut bad = stored.clone();
        bad[384 * 3 + 5] ^= 1;
        assert!(MlKemKey::load(KeySpec::MlKem768, &bad).is_none());
        assert!(MlKemKey::load(KeySpec::EccNistP256, &stored).is_none());
    }

    /// What the `ml-kem` crate makes of a seed: the expanded decapsulation
    /// key, and a (ciphertext, secret) it encapsulates to the seed's public
    /// key with the message `m`. Loaded into aws-lc-rs, this checks one
    /// implementation of FIPS 203 against another.
    fn by_ml_kem_crate(
        spec: KeySpec,
        seed: &[u8; 64],
        m: &[u8; 32],
    ) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        use ml_kem::{EncapsulateDeterministic, EncodedSizeUser, KemCore, B32};
        let d = B32::try_from(&seed[..32]).unwrap();
        let z = B32::try_from(&seed[32..]).unwrap();
        let m = B32::try_from(&m[..]).unwrap();
        macro_rules! run {
            ($kem:ty) => {{
                let (dk, ek) = <$kem>::generate_deterministic(&d, &z);
                let (ct, ss) = ek.encapsulate_deterministic(&m).unwrap();
                (dk.as_bytes().to_vec(), ct.to_vec(), ss.to_vec())
            }};
        }
        match spec {
            KeySpec::MlKem512 => run!(ml_kem::MlKem512),
            KeySpec::MlKem768 => run!(ml_kem::MlKem768),
            _ => run!(ml_kem::MlKem1024),
        }
    }

    #[test]
    fn a_data_key_pair_seed_expands_to_its_public_key_in_aws_lc_rs_too() {
        for spec in SPECS {
            let (private, public) = generate_data_key_pair(spec).unwrap();
            assert_eq!(private.len(), 86);
            let seed: [u8; 64] = private[22..].try_into().unwrap();
            let (expanded, crate_ct, crate_ss) = by_ml_kem_crate(spec, &seed, &[9u8; 32]);
            let k = MlKemKey::load(spec, &expanded).unwrap();
            assert_eq!(k.spki(), &public[..]);
            // What the crate encapsulated, aws-lc-rs decapsulates.
            assert_eq!(k.decapsulate(&crate_ct).unwrap().as_slice(), &crate_ss[..]);
            let (ct, ss) = k.encapsulate().unwrap();
            assert_eq!(k.decapsulate(&ct).unwrap(), ss);
            // Two pairs never share a seed.
            assert_ne!(generate_data_key_pair(spec).unwrap().1, public);
        }
    }

    #[test]
    fn the_seed_private_key_is_86_bytes_for_every_parameter_set() {
        for spec in SPECS {
            let p = Params::of(spec).unwrap();
            let der = p.pkcs8_seed(&[7u8; 64]);
            assert_eq!(der.len(), 86);
            assert_eq!(&der[..5], &[0x30, 0x54, 0x02, 0x01, 0x00]);
            assert_eq!(&der[5..18], &p.algorithm_identifier());
            assert_eq!(&der[18..22], &[0x04, 0x42, 0x80, 0x40]);
            assert_eq!(&der[22..], &[7u8; 64]);
        }
    }
}
