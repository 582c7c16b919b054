//! Identifier newtypes shared by every ferrokms layer.
//!
//! They exist so that an account id can never be passed where a region is
//! expected, and so that each identifier is validated once, where it enters
//! the system, rather than re-checked by every function that receives it.

pub mod calendar;

use std::fmt;

use serde::{Deserialize, Serialize};

use ferrokms_textfast::concat;

/// The partition every IAM entity is named in. IAM is global and ferrokms
/// stores its users, roles, groups, policies and instance profiles without
/// a partition, so their ARNs are all in `aws` (docs/identity.md); KMS
/// resources and the callers of a request take the partition of the
/// request's Region ([`Region::partition`]).
pub const IAM_PARTITION: &str = "aws";

/// Errors raised when text does not have the shape of an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The text is not 12 ASCII digits.
    #[error("'{0}' is not a 12-digit AWS account id")]
    Account(String),
    /// The text is not a lowercase name of letters, digits and dashes.
    #[error("'{0}' is not a region name")]
    Region(String),
    /// The text does not have the six colon-separated fields of an ARN.
    #[error("'{0}' is not an ARN")]
    Arn(String),
}

/// A 12-digit AWS account id, such as `111122223333`.
///
/// Held inline (12 ASCII digits, no heap allocation): every key, alias and
/// grant in memory carries one, several times over (records, map keys).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId([u8; 12]);

impl AccountId {
    /// Accepts exactly 12 ASCII digits.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        match <[u8; 12]>::try_from(s.as_bytes()) {
            Ok(digits) if digits.iter().all(u8::is_ascii_digit) => Ok(AccountId(digits)),
            _ => Err(IdError::Account(s.to_string())),
        }
    }

    /// The 12 digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored (see `parse`), so this never
        // falls back.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The ARN of an IAM entity of this account, in [`IAM_PARTITION`]:
    /// `arn:aws:iam::ACCOUNT:{resource}` (`user/PATH/NAME`, `role/...`,
    /// `group/...`, `policy/...`, `instance-profile/...`, `root`).
    pub fn iam_arn(&self, resource: &str) -> String {
        concat(&[
            "arn:",
            IAM_PARTITION,
            ":iam::",
            self.as_str(),
            ":",
            resource,
        ])
    }

    /// The ARN of an STS session of this account, in [`IAM_PARTITION`]:
    /// `arn:aws:sts::ACCOUNT:{resource}` (`assumed-role/ROLE/SESSION`,
    /// `federated-user/NAME`).
    pub fn sts_arn(&self, resource: &str) -> String {
        concat(&[
            "arn:",
            IAM_PARTITION,
            ":sts::",
            self.as_str(),
            ":",
            resource,
        ])
    }

    /// `arn:PARTITION:iam::ACCOUNT:root`: the principal that stands for the
    /// whole account, in the partition of the request's Region.
    pub fn root_arn(&self, partition: &str) -> String {
        concat(&["arn:", partition, ":iam::", self.as_str(), ":root"])
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AccountId").field(&self.as_str()).finish()
    }
}

impl TryFrom<String> for AccountId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        AccountId::parse(&s)
    }
}

impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.as_str().to_string()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A region name such as `us-east-1`. Any lowercase name of letters, digits
/// and dashes is accepted: a self-hosted service may invent its own regions,
/// and keys are simply partitioned by the name the client signs with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    /// Accepts 1 to 64 lowercase letters, digits and dashes, not starting or ending with a dash.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if ok {
            Ok(Region(s.to_string()))
        } else {
            Err(IdError::Region(s.to_string()))
        }
    }

    /// The region name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ARN partition this region belongs to.
    pub fn partition(&self) -> &'static str {
        if self.0.starts_with("cn-") {
            "aws-cn"
        } else if self.0.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        }
    }
}

impl TryFrom<String> for Region {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Region::parse(&s)
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ARN, `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`; the resource
/// keeps any further colons (`arn:aws:logs:r:a:log-group:name:*` has the
/// resource `log-group:name:*`). The one ARN type of every layer.
///
/// The text is kept whole and the places of the five cutting colons are
/// found once, when it is parsed: policy evaluation reads several parts of
/// the same ARN for every request, and re-splitting the text each time cost
/// more than the rest of reading it (figures: docs/performance.md, "Figures
/// behind comments in the code").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    text: String,
    /// Byte offsets of the colons after `arn`, the partition, the service,
    /// the region and the account.
    colons: [usize; 5],
}

impl Arn {
    /// Accepts `arn:partition:service:region:account:resource` with a
    /// partition, a service and a resource that are not empty (region and
    /// account may be, as in IAM's and S3's ARNs).
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let bad = || IdError::Arn(s.to_string());
        let cuts = ferrokms_textfast::cut_positions::<6>(s, b':').ok_or_else(bad)?;
        let colons = [cuts[0], cuts[1], cuts[2], cuts[3], cuts[4]];
        let ok = colons[0] == 3
            && s.starts_with("arn")
            && colons[1] > colons[0] + 1
            && colons[2] > colons[1] + 1
            && colons[4] + 1 < s.len();
        if !ok {
            return Err(bad());
        }
        Ok(Arn {
            text: s.to_string(),
            colons,
        })
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.colons[i - 1] + 1 };
        let end = self.colons.get(i).copied().unwrap_or(self.text.len());
        self.text.get(start..end).unwrap_or("")
    }

    /// The partition, e.g. `aws`.
    pub fn partition(&self) -> &str {
        self.part(1)
    }
    /// The service, e.g. `kms`.
    pub fn service(&self) -> &str {
        self.part(2)
    }
    /// The region; empty for global services.
    pub fn region(&self) -> &str {
        self.part(3)
    }
    /// The account field as written; may be empty.
    pub fn account(&self) -> &str {
        self.part(4)
    }
    /// The account field when it is a 12-digit account id.
    pub fn account_id(&self) -> Option<AccountId> {
        AccountId::parse(self.account()).ok()
    }
    /// Everything after the fifth colon.
    pub fn resource(&self) -> &str {
        self.part(5)
    }
    /// The whole ARN.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_id_must_be_twelve_digits() {
        assert!(AccountId::parse("111122223333").is_ok());
        assert!(AccountId::parse("11112222333").is_err());
        assert!(AccountId::parse("11112222333a").is_err());
        assert!(AccountId::parse("1111222233334").is_err());
        let a = AccountId::parse("111122223333").unwrap();
        assert_eq!(a.as_str(), "111122223333");
        assert_eq!(a.root_arn("aws"), "arn:aws:iam::111122223333:root");
        assert_eq!(a.root_arn("aws-cn"), "arn:aws-cn:iam::111122223333:root");
        assert_eq!(a.iam_arn("root"), a.root_arn(IAM_PARTITION));
        assert_eq!(a.iam_arn("user/a/b"), "arn:aws:iam::111122223333:user/a/b");
        assert_eq!(
            a.sts_arn("assumed-role/r/s"),
            "arn:aws:sts::111122223333:assumed-role/r/s"
        );
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"111122223333\"");
        assert_eq!(serde_json::from_str::<AccountId>(&json).unwrap(), a);
        assert!(serde_json::from_str::<AccountId>("\"11112222333x\"").is_err());
    }

    #[test]
    fn region_partition_follows_aws_naming() {
        assert_eq!(Region::parse("us-east-1").unwrap().partition(), "aws");
        assert_eq!(Region::parse("cn-north-1").unwrap().partition(), "aws-cn");
        assert_eq!(
            Region::parse("us-gov-west-1").unwrap().partition(),
            "aws-us-gov"
        );
        assert!(Region::parse("US-EAST-1").is_err());
        assert!(Region::parse("").is_err());
    }

    #[test]
    fn arn_round_trips_and_keeps_colons_in_resource() {
        let a = Arn::parse("arn:aws:kms:us-east-1:111122223333:key/abc").unwrap();
        assert_eq!(a.partition(), "aws");
        assert_eq!(a.service(), "kms");
        assert_eq!(a.region(), "us-east-1");
        assert_eq!(a.account(), "111122223333");
        assert_eq!(a.account_id().unwrap().as_str(), "111122223333");
        assert_eq!(a.resource(), "key/abc");
        assert_eq!(a.to_string(), "arn:aws:kms:us-east-1:111122223333:key/abc");
        let b = Arn::parse("arn:aws:sts::1:assumed-role/r/s:x").unwrap();
        assert_eq!(b.region(), "");
        assert_eq!(b.account(), "1");
        assert_eq!(b.account_id(), None);
        assert_eq!(b.resource(), "assumed-role/r/s:x");
    }

    #[test]
    fn arn_refuses_missing_or_empty_required_parts() {
        let logs = Arn::parse("arn:aws:logs:us-east-1:111122223333:log-group:name:*").unwrap();
        assert_eq!(logs.resource(), "log-group:name:*");
        for bad in [
            "",
            "arn",
            "arn:aws:kms",
            "foo",
            "ar:aws:kms:r:a:k",
            "\u{e9}rn:aws:kms:r:a:k",
            "arn:aws:s3:::",
            "arx:aws:kms:r:a:b",
            "xarn:aws:kms:r:a:b",
            "arn::kms:r:a:b",
            "arn:aws::r:a:b",
            "arn:aws:kms:r:a:",
            "arn:aws:kms:r:a",
        ] {
            assert!(Arn::parse(bad).is_err(), "{bad}");
        }
    }
}
