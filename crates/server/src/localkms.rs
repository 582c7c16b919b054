//! local-kms seed files (`ferrokms serve --seed FILE`): the YAML format
//! local-kms documents (`Keys: Symmetric: Aes`, `Keys: Asymmetric: Rsa /
//! Ecc`, `Aliases`), read unchanged and applied as bootstrap keys with
//! fixed ids ([`ferrokms_kms::Kms::seed_key`]). See docs/keys.md, "local-kms
//! seed files".
//!
//! - The keys go to one account and Region: `--seed-account` and
//!   `--seed-region`, which read local-kms's own `KMS_ACCOUNT_ID` and
//!   `KMS_REGION` and default, as local-kms does, to 111122223333 and
//!   eu-west-2. The account is created if it does not exist.
//! - `BackingKeys` (hex, 32 bytes each) are the rotation history, oldest
//!   first: the last is current, as local-kms appends a rotation's key.
//! - `NextKeyRotation` turns automatic rotation on, due at that date.
//! - `Origin: EXTERNAL` with one backing key is a key with imported
//!   material that does not expire; without one it waits for
//!   ImportKeyMaterial.
//! - RSA keys need `KeyUsage` (as in local-kms); ECC keys are SIGN_VERIFY.
//!   The key spec comes from the PEM (RSA size, curve).
//!
//! As with the bootstrap file, applying the file twice changes nothing and
//! a key id that exists with other material is an error. Unknown fields
//! are refused (a misspelt `BackingKeys` would otherwise drop material
//! silently).

use std::path::{Path, PathBuf};

use ferrokms_iam::Directory;
use ferrokms_kms::model::{KeySpec, KeyUsage, Origin};
use ferrokms_kms::{GivenMaterial, Kms, SeedKey};
use ferrokms_types::{AccountId, Region};
use serde::Deserialize;

use crate::bootstrap::{BootstrapError, DateText, Report, SecretText};

/// The account local-kms uses unless `KMS_ACCOUNT_ID` says otherwise.
pub const DEFAULT_SEED_ACCOUNT: &str = "111122223333";
/// The Region local-kms uses unless `KMS_REGION` says otherwise.
pub const DEFAULT_SEED_REGION: &str = "eu-west-2";
/// The rotation period of a key with `NextKeyRotation` (365 days, as the
/// seeded key gets).
const ROTATION_PERIOD_MS: i64 = 365 * 24 * 60 * 60 * 1000;

/// A seed file and where its keys go.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// The YAML file.
    pub path: PathBuf,
    /// The account of every key.
    pub account: AccountId,
    /// The Region of every key.
    pub region: Region,
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SeedFile {
    /// The keys.
    #[serde(default)]
    pub keys: Keys,
    /// The aliases.
    #[serde(default)]
    pub aliases: Vec<Alias>,
}

/// `Keys:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Keys {
    /// `Symmetric:`.
    #[serde(default)]
    pub symmetric: Symmetric,
    /// `Asymmetric:`.
    #[serde(default)]
    pub asymmetric: Asymmetric,
}

/// `Symmetric:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Symmetric {
    /// `Aes:`: SYMMETRIC_DEFAULT keys.
    #[serde(default)]
    pub aes: Vec<AesKey>,
}

/// `Asymmetric:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Asymmetric {
    /// `Rsa:`.
    #[serde(default)]
    pub rsa: Vec<PemKey>,
    /// `Ecc:`.
    #[serde(default)]
    pub ecc: Vec<PemKey>,
}

/// `Metadata:` of a key.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Metadata {
    /// The key id.
    pub key_id: String,
    /// The description.
    pub description: Option<String>,
    /// The key usage (RSA keys: required).
    pub key_usage: Option<String>,
    /// `EXTERNAL` for imported material (AES keys).
    pub origin: Option<String>,
}

/// One `Aes:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct AesKey {
    /// The metadata.
    pub metadata: Metadata,
    /// Hex AES-256 keys, oldest first; the last is current.
    #[serde(default)]
    pub backing_keys: Vec<SecretText>,
    /// When the next automatic rotation is due (ISO 8601).
    pub next_key_rotation: Option<String>,
}

/// One `Rsa:` or `Ecc:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PemKey {
    /// The metadata.
    pub metadata: Metadata,
    /// The private key, PEM (PKCS#8, or PKCS#1 / SEC 1).
    pub private_key_pem: SecretText,
}

/// One `Aliases:` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Alias {
    /// `alias/NAME`.
    pub alias_name: String,
    /// The key id it points at.
    pub target_key_id: String,
}

/// Reads and checks a seed file (no change to any state): every key's id,
/// usage and material. Returns the file and the keys it describes.
pub fn load(opts: &SeedOptions) -> Result<(SeedFile, Vec<SeedKey>), BootstrapError> {
    let text = std::fs::read_to_string(&opts.path)
        .map_err(|e| BootstrapError::Read(opts.path.clone(), e))?;
    parse(&text, &opts.account, &opts.region).map_err(|e| match e {
        BootstrapError::Parse(_, m) => BootstrapError::Parse(opts.path.clone(), m),
        other => other,
    })
}

/// [`load`] of a text.
pub fn parse(
    text: &str,
    account: &AccountId,
    region: &Region,
) -> Result<(SeedFile, Vec<SeedKey>), BootstrapError> {
    // serde_norway's messages name the place (line, column); a quoted
    // string value is left out (it may be key material).
    let file: SeedFile = serde_norway::from_str(text).map_err(|e| {
        BootstrapError::Parse(
            PathBuf::new(),
            crate::bootstrap::hide_strings(&e.to_string()),
        )
    })?;
    let mut keys = Vec::new();
    for k in &file.keys.symmetric.aes {
        keys.push(aes_key(k, account, region)?);
    }
    for (list, family) in [
        (&file.keys.asymmetric.rsa, "Rsa"),
        (&file.keys.asymmetric.ecc, "Ecc"),
    ] {
        for k in list {
            keys.push(pem_key(k, family, account, region)?);
        }
    }
    for a in &file.aliases {
        if !a.alias_name.starts_with("alias/") || a.alias_name.starts_with("alias/aws/") {
            return Err(BootstrapError::Invalid(format!(
                "seed alias '{}' must start with alias/ (and not alias/aws/)",
                a.alias_name
            )));
        }
        if !keys
            .iter()
            .any(|k| k.key_id.as_str().eq_ignore_ascii_case(&a.target_key_id))
        {
            return Err(BootstrapError::Invalid(format!(
                "seed alias {} targets {}, which is no key of the file",
                a.alias_name, a.target_key_id
            )));
        }
    }
    Ok((file, keys))
}

fn key_id(m: &Metadata, what: &str) -> Result<ferrokms_kms::ids::KeyId, BootstrapError> {
    ferrokms_kms::ids::KeyId::parse(&m.key_id).ok_or_else(|| {
        BootstrapError::Invalid(format!(
            "seed {what} key '{}': KeyId is not a key id (a UUID, or mrk- and 32 hex digits)",
            m.key_id
        ))
    })
}

fn aes_key(k: &AesKey, account: &AccountId, region: &Region) -> Result<SeedKey, BootstrapError> {
    let id = key_id(&k.metadata, "Aes")?;
    let bad = |m: String| BootstrapError::Invalid(format!("seed Aes key {id}: {m}"));
    let origin = origin(&k.metadata, &bad)?;
    if origin == Origin::External && k.backing_keys.len() > 1 {
        return Err(bad("an EXTERNAL key takes at most one backing key".into()));
    }
    if origin == Origin::AwsKms && k.backing_keys.is_empty() {
        return Err(bad("BackingKeys must hold one or more keys".into()));
    }
    if k.metadata
        .key_usage
        .as_deref()
        .is_some_and(|u| u != "ENCRYPT_DECRYPT")
    {
        return Err(bad("an AES key's KeyUsage is ENCRYPT_DECRYPT".into()));
    }
    let mut materials = Vec::new();
    for (i, b) in k.backing_keys.iter().enumerate() {
        let raw = zeroize::Zeroizing::new(
            hex::decode(b.0.trim())
                .map_err(|_| bad(format!("backing key {} is not hex", i + 1)))?,
        );
        let bytes = crate::bootstrap::raw_or_pem(KeySpec::SymmetricDefault, Some(raw), None)
            .map_err(|e| bad(format!("backing key {} {e}", i + 1)))?;
        materials.push(GivenMaterial {
            bytes,
            created_ms: None,
            valid_to_ms: None,
        });
    }
    let next_rotation_ms = match &k.next_key_rotation {
        Some(t) => Some(
            DateText::Text(t.clone())
                .epoch_ms()
                .ok_or_else(|| bad(format!("NextKeyRotation '{t}' is not an ISO 8601 date")))?,
        ),
        None => None,
    };
    if next_rotation_ms.is_some() && origin == Origin::External {
        return Err(bad("an EXTERNAL key does not rotate automatically".into()));
    }
    // The next automatic rotation is one period after the later of the
    // key's creation and the day rotation was turned on: a key due within
    // a period is taken to have been created a period before its date.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let created_ms = next_rotation_ms
        .map(|n| n - ROTATION_PERIOD_MS)
        .filter(|c| *c < now_ms);
    Ok(SeedKey {
        account: account.clone(),
        region: region.clone(),
        key_id: id,
        created_ms,
        description: k.metadata.description.clone().unwrap_or_default(),
        key_spec: KeySpec::SymmetricDefault,
        key_usage: None,
        origin,
        policy: None,
        tags: Vec::new(),
        materials,
        replica_regions: Vec::new(),
        next_rotation_ms,
    })
}

fn origin(m: &Metadata, bad: &dyn Fn(String) -> BootstrapError) -> Result<Origin, BootstrapError> {
    match m.origin.as_deref() {
        None | Some("AWS_KMS") => Ok(Origin::AwsKms),
        Some("EXTERNAL") => Ok(Origin::External),
        Some(o) => Err(bad(format!("Origin '{o}' is not AWS_KMS or EXTERNAL"))),
    }
}

fn pem_key(
    k: &PemKey,
    family: &str,
    account: &AccountId,
    region: &Region,
) -> Result<SeedKey, BootstrapError> {
    let id = key_id(&k.metadata, family)?;
    let bad = |m: String| BootstrapError::Invalid(format!("seed {family} key {id}: {m}"));
    if origin(&k.metadata, &bad)? != Origin::AwsKms {
        return Err(bad("only AES keys may be EXTERNAL in a seed file".into()));
    }
    let usage =
        match (family, k.metadata.key_usage.as_deref()) {
            ("Rsa", Some(u @ ("SIGN_VERIFY" | "ENCRYPT_DECRYPT"))) => KeyUsage::parse(u),
            ("Rsa", _) => return Err(bad(
                "KeyUsage must be SIGN_VERIFY or ENCRYPT_DECRYPT (it is mandatory for RSA keys)"
                    .into(),
            )),
            (_, None | Some("SIGN_VERIFY")) => Some(KeyUsage::SignVerify),
            (_, Some(_)) => return Err(bad("an ECC key's KeyUsage is SIGN_VERIFY".into())),
        };
    let (label, der) = ferrokms_kms::given::decode_private_key_pem(&k.private_key_pem.0)
        .map_err(|e| bad(format!("PrivateKeyPem {e}")))?;
    let spec = ferrokms_kms::given::infer_asymmetric_spec(label, &der)
        .filter(|s| {
            (family == "Rsa") == matches!(s, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096)
        })
        .ok_or_else(|| {
            bad(format!(
                "PrivateKeyPem is not {} private key",
                if family == "Rsa" {
                    "an RSA 2048, 3072 or 4096-bit"
                } else {
                    "a P-256, P-384, P-521 or secp256k1 EC"
                }
            ))
        })?;
    let bytes = ferrokms_kms::given::private_key_to_pkcs8(spec, Some(label), &der)
        .map_err(|e| bad(format!("PrivateKeyPem {e}")))?;
    Ok(SeedKey {
        account: account.clone(),
        region: region.clone(),
        key_id: id,
        created_ms: None,
        description: k.metadata.description.clone().unwrap_or_default(),
        key_spec: spec,
        key_usage: usage,
        origin: Origin::AwsKms,
        policy: None,
        tags: Vec::new(),
        materials: vec![GivenMaterial {
            bytes,
            created_ms: None,
            valid_to_ms: None,
        }],
        replica_regions: Vec::new(),
        next_rotation_ms: None,
    })
}

/// Applies a seed file: the account if missing, then the keys, then the
/// aliases.
pub fn apply_file(
    dir: &Directory,
    kms: &Kms,
    opts: &SeedOptions,
) -> Result<Report, BootstrapError> {
    let (file, keys) = load(opts)?;
    let mut ap = crate::bootstrap::Applier::new(dir, kms);
    if !dir.account_exists(&opts.account) {
        dir.create_account(&opts.account)
            .map_err(|source| BootstrapError::Iam {
                what: format!("account {}", opts.account),
                source,
            })?;
        ap.note(format!("created account {}", opts.account));
    }
    for k in keys {
        let name = format!("seed key {}", k.key_id);
        ap.seeded_key(k, None, &name)?;
    }
    for a in &file.aliases {
        let name = format!("seed alias {}", a.alias_name);
        ap.alias(
            &opts.account,
            &opts.region,
            &a.alias_name,
            &a.target_key_id.to_ascii_lowercase(),
            &name,
        )?;
    }
    Ok(ap.into_report())
}

/// Whether a file looks like a local-kms seed file (`.yaml` or `.yml`).
pub fn is_seed_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_format_reads_with_specs_from_the_keys() {
        let text = include_str!("../../../examples/local-kms-seed.yaml");
        let account = AccountId::parse(DEFAULT_SEED_ACCOUNT).unwrap();
        let region = Region::parse(DEFAULT_SEED_REGION).unwrap();
        let (file, keys) = parse(text, &account, &region).unwrap();
        assert_eq!(file.aliases.len(), 2);
        let specs: Vec<(KeySpec, usize)> = keys
            .iter()
            .map(|k| (k.key_spec, k.materials.len()))
            .collect();
        assert_eq!(
            specs,
            [
                (KeySpec::SymmetricDefault, 3),
                (KeySpec::SymmetricDefault, 1),
                (KeySpec::SymmetricDefault, 1),
                (KeySpec::SymmetricDefault, 0),
                (KeySpec::Rsa2048, 1),
                (KeySpec::Rsa2048, 1),
                (KeySpec::EccNistP384, 1),
            ]
        );
        assert!(keys[1].next_rotation_ms.is_some());
        assert_eq!(keys[2].origin, Origin::External);
        // A string where a list is expected: the message does not quote it.
        let bad = text.replace(
            "        BackingKeys:\n          - f42bcf634d5e387cd1903d2fc2638cc92ec2a387762a3b06ae193e0f2b1728c9",
            "        BackingKeys: f42bcf634d5e387cd1903d2fc2638cc92ec2a387762a3b06ae193e0f2b1728c9",
        );
        assert_ne!(bad, text);
        let e = parse(&bad, &account, &region).unwrap_err().to_string();
        assert!(!e.contains("f42bcf63"), "{e}");
    }
}
