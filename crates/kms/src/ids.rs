//! Key identifiers and the four ways a request may name a key.

use std::fmt;

use ferrokms_types::{AccountId, Arn, Region};
use serde::{Deserialize, Serialize};

use crate::KmsError;

/// A key id: a lowercase UUID, or `mrk-` and 32 hex digits for multi-Region
/// keys. Both shapes are 36 ASCII characters, held inline: every loaded key
/// carries its id several times over (record, map keys), and a `String`
/// would add a heap block to each.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId([u8; KEY_ID_LEN]);

const KEY_ID_LEN: usize = 36;

impl KeyId {
    /// A fresh key id: a UUID, with the `mrk-` prefix for a multi-Region key.
    pub fn new_random(multi_region: bool) -> KeyId {
        let u = uuid::Uuid::new_v4();
        let mut id = [0u8; KEY_ID_LEN];
        if multi_region {
            id[..4].copy_from_slice(b"mrk-");
            u.simple().encode_lower(&mut id[4..]);
        } else {
            u.hyphenated().encode_lower(&mut id);
        }
        KeyId(id)
    }

    /// Accepts a key id in AWS's shapes. Uppercase hex is accepted and
    /// folded, as KMS treats key ids case-insensitively.
    pub fn parse(s: &str) -> Option<KeyId> {
        let mut id = <[u8; KEY_ID_LEN]>::try_from(s.as_bytes()).ok()?;
        id.make_ascii_lowercase();
        let is_hex = |t: &[u8]| t.iter().all(u8::is_ascii_hexdigit);
        if let Some(rest) = id.strip_prefix(b"mrk-") {
            return is_hex(rest).then_some(KeyId(id));
        }
        let ok = id.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        ok.then_some(KeyId(id))
    }

    /// The key id as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse` and `new_random`), so this
        // never falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// Whether the id is a multi-Region key's (`mrk-...`).
    pub fn is_multi_region(&self) -> bool {
        self.0.starts_with(b"mrk-")
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("KeyId").field(&self.as_str()).finish()
    }
}

/// Stored and shown as the plain id string, as when this was a `String`.
impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyId, D::Error> {
        let s = String::deserialize(d)?;
        KeyId::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not a key id")))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a key lives: account, region and id together name exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KeyAddr {
    /// The account that owns the key.
    pub account: AccountId,
    /// The key's region.
    pub region: Region,
    /// The key id.
    pub key_id: KeyId,
}

impl KeyAddr {
    /// `arn:PARTITION:kms:REGION:ACCOUNT:key/KEY_ID`.
    pub fn arn(&self) -> String {
        ferrokms_textfast::concat(&[
            "arn:",
            self.region.partition(),
            ":kms:",
            self.region.as_str(),
            ":",
            self.account.as_str(),
            ":key/",
            self.key_id.as_str(),
        ])
    }

    /// The id under which the key's documents are stored.
    pub fn storage_id(&self) -> String {
        ferrokms_textfast::concat(&[
            self.account.as_str(),
            "/",
            self.region.as_str(),
            "/",
            self.key_id.as_str(),
        ])
    }

    /// The inverse of [`KeyAddr::storage_id`].
    pub fn from_storage_id(id: &str) -> Option<KeyAddr> {
        let (account, region, rest) = split_storage_id(id)?;
        Some(KeyAddr {
            account,
            region,
            key_id: KeyId::parse(rest)?,
        })
    }
}

/// `ACCOUNT/REGION/REST` as stored; `REST` may contain further slashes.
fn split_storage_id(id: &str) -> Option<(AccountId, Region, &str)> {
    let mut parts = id.splitn(3, '/');
    let account = AccountId::parse(parts.next()?).ok()?;
    let region = Region::parse(parts.next()?).ok()?;
    Some((account, region, parts.next()?))
}

/// An alias name, always with its `alias/` prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AliasName(String);

/// Every alias name starts with this.
pub const ALIAS_PREFIX: &str = "alias/";
/// Aliases of AWS managed keys; customers may not create them.
pub const RESERVED_ALIAS_PREFIX: &str = "alias/aws/";

/// An alias name (not an alias ARN) must begin with `alias/` and name
/// something after it: CreateAlias's rule, which DeleteAlias and UpdateAlias
/// answer in the same words.
pub fn require_alias_prefix(s: &str) -> Result<(), KmsError> {
    if !s.starts_with(ALIAS_PREFIX) || s.len() == ALIAS_PREFIX.len() {
        return Err(KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        ));
    }
    Ok(())
}

impl AliasName {
    /// Checks the naming rules of CreateAlias (the model's pattern and length
    /// are checked at the edge; the prefix rules are KMS's own, and so is
    /// the character set: the model's pattern allows `:`, AWS does not).
    pub fn parse_for_create(s: &str) -> Result<AliasName, KmsError> {
        require_alias_prefix(s)?;
        if s.starts_with(RESERVED_ALIAS_PREFIX) {
            return Err(KmsError::InvalidAliasName(format!(
                "Alias {s} cannot begin with the reserved prefix alias/aws/. That prefix is reserved for AWS managed keys."
            )));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        {
            return Err(KmsError::Validation(format!(
                "{s} contains invalid characters for an alias"
            )));
        }
        Ok(AliasName(s.to_string()))
    }

    /// Any `alias/...` name, as used to look an alias up.
    pub fn parse_lookup(s: &str) -> Option<AliasName> {
        (s.starts_with(ALIAS_PREFIX) && s.len() > ALIAS_PREFIX.len())
            .then(|| AliasName(s.to_string()))
    }

    /// The alias name as text, `alias/...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an alias lives: account, region and name together name exactly one alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AliasAddr {
    /// The account that owns the alias.
    pub account: AccountId,
    /// The alias's region.
    pub region: Region,
    /// The alias name.
    pub name: AliasName,
}

impl AliasAddr {
    /// `arn:PARTITION:kms:REGION:ACCOUNT:alias/NAME`.
    pub fn arn(&self) -> String {
        ferrokms_textfast::concat(&[
            "arn:",
            self.region.partition(),
            ":kms:",
            self.region.as_str(),
            ":",
            self.account.as_str(),
            ":",
            self.name.as_str(),
        ])
    }

    /// The alias's id in the store: `ACCOUNT/REGION/alias/NAME`.
    pub fn storage_id(&self) -> String {
        ferrokms_textfast::concat(&[
            self.account.as_str(),
            "/",
            self.region.as_str(),
            "/",
            self.name.as_str(),
        ])
    }

    /// The inverse of [`AliasAddr::storage_id`].
    pub fn from_storage_id(id: &str) -> Option<AliasAddr> {
        let (account, region, rest) = split_storage_id(id)?;
        Some(AliasAddr {
            account,
            region,
            name: AliasName::parse_lookup(rest)?,
        })
    }
}

/// How a request named a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A key id or key ARN.
    Key(KeyAddr),
    /// An alias name or alias ARN.
    Alias(AliasAddr),
}

/// Which identifier forms an operation accepts (the AWS API reference: crypto operations,
/// DescribeKey and GetPublicKey accept aliases; everything else only ids/ARNs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepts {
    /// Key ids, key ARNs, alias names and alias ARNs.
    KeyOrAlias,
    /// Key ids and key ARNs only.
    KeyOnly,
}

impl KeyRef {
    /// Resolves the text of a `KeyId` member in the caller's account and the
    /// endpoint's region. A bare id or alias always means the caller's own
    /// account; another account's key can only be named by ARN.
    pub fn parse(
        text: &str,
        account: &AccountId,
        region: &Region,
        accepts: Accepts,
    ) -> Result<KeyRef, KmsError> {
        let invalid = || KmsError::NotFound(format!("Invalid keyId '{text}'"));
        if text.starts_with("arn:") {
            let arn = Arn::parse(text).map_err(|_| KmsError::NotFound("Invalid arn".into()))?;
            if arn.service() != "kms" {
                return Err(KmsError::NotFound("Invalid arn".into()));
            }
            let arn_account = arn
                .account_id()
                .ok_or_else(|| KmsError::NotFound("Invalid arn".into()))?;
            // AWS names the ARN's Region: "Invalid arn us-west-2".
            if arn.region() != region.as_str() || arn.partition() != region.partition() {
                return Err(KmsError::NotFound(format!("Invalid arn {}", arn.region())));
            }
            if let Some(id) = arn.resource().strip_prefix("key/") {
                let key_id =
                    KeyId::parse(id).ok_or_else(|| KmsError::NotFound("Invalid arn".into()))?;
                return Ok(KeyRef::Key(KeyAddr {
                    account: arn_account,
                    region: region.clone(),
                    key_id,
                }));
            }
            if arn.resource().starts_with(ALIAS_PREFIX) && accepts == Accepts::KeyOrAlias {
                let name = AliasName::parse_lookup(arn.resource())
                    .ok_or_else(|| KmsError::NotFound("Invalid arn".into()))?;
                return Ok(KeyRef::Alias(AliasAddr {
                    account: arn_account,
                    region: region.clone(),
                    name,
                }));
            }
            return Err(KmsError::NotFound("Invalid arn".into()));
        }
        if text.starts_with(ALIAS_PREFIX) {
            if accepts == Accepts::KeyOnly {
                return Err(invalid());
            }
            let name = AliasName::parse_lookup(text).ok_or_else(invalid)?;
            return Ok(KeyRef::Alias(AliasAddr {
                account: account.clone(),
                region: region.clone(),
                name,
            }));
        }
        let key_id = KeyId::parse(text).ok_or_else(invalid)?;
        Ok(KeyRef::Key(KeyAddr {
            account: account.clone(),
            region: region.clone(),
            key_id,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_ids_read_back_into_the_addresses_they_came_from() {
        let key = KeyAddr {
            account: acct(),
            region: region(),
            key_id: KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").unwrap(),
        };
        assert_eq!(KeyAddr::from_storage_id(&key.storage_id()), Some(key));
        let alias = AliasAddr {
            account: acct(),
            region: region(),
            name: AliasName::parse_lookup("alias/team/app").unwrap(),
        };
        assert_eq!(AliasAddr::from_storage_id(&alias.storage_id()), Some(alias));
        assert_eq!(KeyAddr::from_storage_id("not/a/key"), None);
    }

    fn acct() -> AccountId {
        AccountId::parse("111122223333").unwrap()
    }
    fn region() -> Region {
        Region::parse("us-east-1").unwrap()
    }

    #[test]
    fn key_id_accepts_uuid_and_multi_region_shapes() {
        assert!(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").is_some());
        assert!(KeyId::parse("mrk-1234abcd12ab34cd56ef1234567890ab").is_some());
        assert!(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890a").is_none());
        assert!(KeyId::parse("not-a-key").is_none());
        assert!(KeyId::new_random(true).is_multi_region());
        assert!(KeyId::parse(KeyId::new_random(false).as_str()).is_some());
    }

    #[test]
    fn key_id_is_stored_as_its_text_and_folds_case() {
        for multi_region in [false, true] {
            let id = KeyId::new_random(multi_region);
            assert_eq!(KeyId::parse(id.as_str()), Some(id.clone()));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{id}\""));
            assert_eq!(serde_json::from_str::<KeyId>(&json).unwrap(), id);
        }
        let upper = KeyId::parse("MRK-1234ABCD12AB34CD56EF1234567890AB").unwrap();
        assert_eq!(upper.as_str(), "mrk-1234abcd12ab34cd56ef1234567890ab");
        assert!(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").is_some());
        // A hyphen out of place, or a non-hex digit, is not a key id.
        assert!(KeyId::parse("1234abcd1-2ab-34cd-56ef-1234567890ab").is_none());
        assert!(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ag").is_none());
        assert!(KeyId::parse("mrk-1234abcd12ab34cd56ef1234567890a-").is_none());
        assert!(serde_json::from_str::<KeyId>("\"not-a-key\"").is_err());
    }

    #[test]
    fn bare_key_id_resolves_in_callers_account_and_region() {
        let r = KeyRef::parse(
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            &acct(),
            &region(),
            Accepts::KeyOnly,
        )
        .unwrap();
        match r {
            KeyRef::Key(a) => assert_eq!(
                a.arn(),
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ),
            KeyRef::Alias(_) => panic!("expected key"),
        }
    }

    #[test]
    fn key_arn_in_another_region_is_not_found_invalid_arn_naming_that_region() {
        let e = KeyRef::parse(
            "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            &acct(),
            &region(),
            Accepts::KeyOnly,
        )
        .unwrap_err();
        assert_eq!(e, KmsError::NotFound("Invalid arn eu-west-1".into()));
    }

    #[test]
    fn alias_is_refused_where_only_key_ids_are_accepted() {
        assert!(KeyRef::parse("alias/x", &acct(), &region(), Accepts::KeyOnly).is_err());
        assert!(matches!(
            KeyRef::parse("alias/x", &acct(), &region(), Accepts::KeyOrAlias),
            Ok(KeyRef::Alias(_))
        ));
        assert!(matches!(
            KeyRef::parse(
                "arn:aws:kms:us-east-1:444455556666:alias/x",
                &acct(),
                &region(),
                Accepts::KeyOrAlias
            ),
            Ok(KeyRef::Alias(a)) if a.account.as_str() == "444455556666"
        ));
    }

    #[test]
    fn create_alias_rules_follow_kms() {
        assert!(AliasName::parse_for_create("alias/app").is_ok());
        assert!(matches!(
            AliasName::parse_for_create("app"),
            Err(KmsError::Validation(_))
        ));
        assert!(matches!(
            AliasName::parse_for_create("alias/aws/s3"),
            Err(KmsError::InvalidAliasName(_))
        ));
    }

    /// AWS: only letters, digits, `/`, `_` and `-` (the model's pattern
    /// also lets `:` through).
    #[test]
    fn an_alias_name_with_a_colon_contains_invalid_characters() {
        assert_eq!(
            AliasName::parse_for_create("alias/app:prod"),
            Err(KmsError::Validation(
                "alias/app:prod contains invalid characters for an alias".into()
            ))
        );
        assert!(AliasName::parse_for_create("alias/App_1/prod-2").is_ok());
    }

    #[test]
    fn a_name_without_the_alias_prefix_answers_as_create_alias() {
        assert_eq!(
            require_alias_prefix("app"),
            AliasName::parse_for_create("app").map(drop)
        );
        assert!(require_alias_prefix("alias/").is_err());
        assert!(require_alias_prefix("alias/app").is_ok());
    }
}
