//! AWS managed keys: `alias/aws/<service>` keys that KMS creates the first
//! time the alias is used, with AWS's policy shape (any principal of the
//! account, only through the service: kms:CallerAccount + kms:ViaService).
//! Callers cannot change them.

use std::sync::Arc;

use crate::ids::{AliasAddr, AliasName, KeyAddr, KeyId, RESERVED_ALIAS_PREFIX};
use crate::model::{KeyManager, KeyRecord, KeySpec, KeyState, KeyUsage, Origin, RotationConfig};
use crate::state::{put_alias_change, AliasRecord, Key};
use crate::{Kms, KmsError};

/// The predefined aliases ListAliases shows even before their key exists.
pub(crate) const PREDEFINED_SERVICES: &[&str] = &[
    "acm",
    "backup",
    "codecommit",
    "dynamodb",
    "ebs",
    "elasticfilesystem",
    "es",
    "fsx",
    "glue",
    "kinesis",
    "kinesisvideo",
    "lambda",
    "rds",
    "redshift",
    "s3",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "xray",
];

/// The host a service calls KMS from, as kms:ViaService sees it.
fn via_service_host(service: &str, region: &str) -> String {
    let host = match service {
        "ebs" => "ec2",
        other => other,
    };
    format!("{host}.{region}.amazonaws.com")
}

/// AWS's policy for an AWS managed key.
fn managed_key_policy(service: &str, account: &str, region: &str, partition: &str) -> String {
    let via = via_service_host(service, region);
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{service}-1",
  "Statement" : [ {{
    "Sid" : "Allow access through {service} for all principals in the account that are authorized to use {service}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "{via}"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:{partition}:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// Refuses changes to AWS managed keys.
pub(crate) fn require_customer_managed(r: &KeyRecord) -> Result<(), KmsError> {
    if r.key_manager == KeyManager::Aws {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} is an AWS managed key: its policy, state, tags and aliases are managed by AWS.",
            r.arn()
        )));
    }
    Ok(())
}

impl Kms {
    /// The key behind `alias/aws/<service>`, created on first use.
    pub(crate) fn aws_managed_key(&self, alias: &AliasAddr) -> Result<Option<Arc<Key>>, KmsError> {
        let Some(service) = alias.name.as_str().strip_prefix(RESERVED_ALIAS_PREFIX) else {
            return Ok(None);
        };
        if !PREDEFINED_SERVICES.contains(&service) {
            return Ok(None);
        }
        if let Some(a) = self.state.read().aliases.get(alias) {
            return Ok(self.state.read().keys.get(&a.target).cloned());
        }
        let now = self.clock.now_ms();
        let record = KeyRecord {
            addr: KeyAddr {
                account: alias.account.clone(),
                region: alias.region.clone(),
                key_id: KeyId::new_random(false),
            },
            created_ms: now,
            description: format!(
                "Default key that protects my {service} data when no other key is defined"
            ),
            key_usage: KeyUsage::EncryptDecrypt,
            key_spec: KeySpec::SymmetricDefault,
            origin: Origin::AwsKms,
            key_manager: KeyManager::Aws,
            state: KeyState::Enabled,
            deletion_ms: None,
            pending_window_days: None,
            policy: managed_key_policy(
                service,
                alias.account.as_str(),
                alias.region.as_str(),
                alias.region.partition(),
            )
            .into(),
            tags: Vec::new(),
            // AWS managed keys rotate every year.
            rotation: RotationConfig {
                enabled: true,
                period_days: 365,
                enabled_ms: None,
            },
            multi_region: false,
            materials: Vec::new(),
            imported: None,
            mrk: None,
            xks: None,
        };
        let key = self.insert_new_key(record, None)?;
        let w = self.writer.lock();
        self.current_key(&w, &key.record.addr)?;
        if let Some(a) = self.state.read().aliases.get(alias) {
            // Another request created it meanwhile; ours stays unaliased.
            return Ok(self.state.read().keys.get(&a.target).cloned());
        }
        let alias_record = AliasRecord {
            addr: alias.clone(),
            target: key.record.addr.clone(),
            created_ms: now,
            updated_ms: now,
        };
        self.store.apply(&[put_alias_change(&alias_record)?])?;
        self.state
            .write()
            .aliases
            .insert(alias.clone(), alias_record);
        Ok(Some(key))
    }
}

/// Whether `name` is a predefined AWS alias (for ListAliases).
pub(crate) fn predefined_alias_names() -> impl Iterator<Item = AliasName> {
    PREDEFINED_SERVICES
        .iter()
        .filter_map(|s| AliasName::parse_lookup(&format!("{RESERVED_ALIAS_PREFIX}{s}")))
}
