//! CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion, UpdateKeyDescription.

use ferrokms_policy::Context;

use crate::api::*;
use crate::ids::{Accepts, KeyAddr, KeyId};
use crate::model::{KeyManager, KeyRecord, KeySpec, KeyState, KeyUsage, Origin, RotationConfig};
use crate::ops::{page, require_not_pending_deletion};
use crate::{default_key_policy, Caller, Kms, KmsError};

/// Key policies may be at most 32 KiB (AWS KMS quotas, "Key policy document size").
pub(crate) const MAX_KEY_POLICY_BYTES: usize = 32 * 1024;
pub(crate) const MAX_TAGS_PER_KEY: usize = 50;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Kms {
    /// CreateKey
    pub fn create_key(
        &self,
        caller: &Caller,
        req: CreateKeyRequest,
    ) -> Result<KeyMetadataResponse, KmsError> {
        if req.key_spec.is_some() && req.customer_master_key_spec.is_some() {
            return Err(KmsError::Validation(
                "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
            ));
        }
        let spec = req
            .key_spec
            .or(req.customer_master_key_spec)
            .unwrap_or(KeySpec::SymmetricDefault);
        let origin = req.origin.unwrap_or(Origin::AwsKms);
        let usage = check_spec_and_usage(spec, req.key_usage)?;
        // Keys in an external key store (the only custom key stores here):
        // Origin EXTERNAL_KEY_STORE with the store and the external key.
        let xks = match (origin, &req.custom_key_store_id, &req.xks_key_id) {
            (Origin::ExternalKeyStore, Some(store), Some(xks_key)) => {
                if spec != KeySpec::SymmetricDefault
                    || usage != KeyUsage::EncryptDecrypt
                    || req.multi_region == Some(true)
                {
                    return Err(KmsError::UnsupportedOperation(
                        "Keys in an external key store must be single-Region SYMMETRIC_DEFAULT ENCRYPT_DECRYPT keys.".into(),
                    ));
                }
                Some(crate::model::XksKeyInfo {
                    custom_key_store_id: store.clone(),
                    xks_key_id: xks_key.clone(),
                })
            }
            (Origin::ExternalKeyStore, None, _) => {
                return Err(KmsError::Validation(
                    "CustomKeyStoreId is required when Origin is EXTERNAL_KEY_STORE.".into(),
                ))
            }
            (Origin::ExternalKeyStore, Some(_), None) => {
                return Err(KmsError::Validation(
                    "XksKeyId is required when Origin is EXTERNAL_KEY_STORE.".into(),
                ))
            }
            (_, _, Some(_)) => {
                return Err(KmsError::Validation(
                    "XksKeyId is valid only when Origin is EXTERNAL_KEY_STORE.".into(),
                ))
            }
            (Origin::AwsCloudhsm, None, None) => {
                return Err(KmsError::Validation(
                    "CustomKeyStoreId is required when Origin is AWS_CLOUDHSM.".into(),
                ))
            }
            // A store with another origin: ferrokms has no CloudHSM key
            // store, so the store named is one it cannot use (below, after
            // the authorization).
            (_, Some(_), None) => None,
            (_, None, None) => None,
        };
        match origin {
            Origin::AwsKms => {}
            Origin::ExternalKeyStore if xks.is_some() => {}
            // ML-DSA and ML-KEM private keys have no import format ferrokms
            // accepts.
            Origin::External
                if !matches!(spec, KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87)
                    && !spec.is_ml_kem() => {}
            Origin::AwsCloudhsm => {}
            _ => {
                return Err(KmsError::UnsupportedOperation(format!(
                    "Origin {origin} is not supported for key spec {spec} by this ferrokms version."
                )))
            }
        }
        let mut tags = req.tags.unwrap_or_default();
        validate_request_tags(&tags)?;
        let multi_region = req.multi_region.unwrap_or(false);
        let custom = self.localstack_custom_tags(&mut tags, spec, usage, origin, multi_region)?;
        let mut cond = Context::new();
        cond.insert("kms:CallerAccount", caller.account.as_str());
        cond.insert("kms:KeySpec", spec.as_str());
        cond.insert("kms:CustomerMasterKeySpec", spec.as_str());
        cond.insert("kms:KeyUsage", usage.as_str());
        cond.insert("kms:CustomerMasterKeyUsage", usage.as_str());
        cond.insert("kms:KeyOrigin", origin.as_str());
        cond.insert("kms:MultiRegion", req.multi_region.unwrap_or(false));
        if req.multi_region == Some(true) {
            cond.insert("kms:MultiRegionKeyType", "PRIMARY");
        }
        if let Some(b) = req.bypass_policy_lockout_safety_check {
            cond.insert("kms:BypassPolicyLockoutSafetyCheck", b);
        }
        if !tags.is_empty() {
            crate::ops::tags::insert_request_tags(&mut cond, &tags);
        }
        self.authorize_identity_only(caller, "CreateKey", "*", cond.clone())?;
        if !tags.is_empty() {
            self.authorize_create_key_tags(caller, cond)?;
        }
        if let (None, Some(store)) = (&xks, &req.custom_key_store_id) {
            // Every store here is an external key store: a CloudHSM key
            // (or AWS_KMS origin) cannot go in it.
            self.store_of(&caller.account, &caller.region, store)?;
            return Err(KmsError::UnsupportedOperation(format!(
                "Custom key store {store} is an external key store: keys in it have Origin EXTERNAL_KEY_STORE."
            )));
        }
        let given_policy = match &req.policy {
            Some(p) => Some(self.validate_key_policy(p)?),
            None => None,
        };
        let policy = req
            .policy
            .unwrap_or_else(|| default_key_policy(&caller.account, caller.region.partition()));
        let now = self.clock.now_ms();
        let record = KeyRecord {
            addr: KeyAddr {
                account: caller.account.clone(),
                region: caller.region.clone(),
                key_id: custom
                    .id
                    .clone()
                    .unwrap_or_else(|| KeyId::new_random(multi_region)),
            },
            created_ms: now,
            description: req.description.unwrap_or_default(),
            key_usage: usage,
            key_spec: spec,
            origin,
            key_manager: KeyManager::Customer,
            // An EXTERNAL key waits for ImportKeyMaterial.
            state: if origin == Origin::External {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            deletion_ms: None,
            pending_window_days: None,
            policy: policy.into(),
            tags: merge_tags(Vec::new(), tags),
            rotation: RotationConfig::default(),
            multi_region,
            materials: Vec::new(),
            imported: None,
            mrk: multi_region.then(|| {
                Box::new(crate::model::MultiRegionInfo {
                    primary_region: caller.region.clone(),
                    replica_regions: Vec::new(),
                })
            }),
            xks: None,
        };
        if let Some(parsed) = &given_policy {
            self.check_lockout(
                caller,
                &record,
                parsed,
                req.bypass_policy_lockout_safety_check,
            )?;
        }
        // Keys in external key stores are created one at a time, from the
        // check that their external key is unused to the key being stored:
        // two requests naming the same external key cannot both pass.
        let _one_xks_key_at_a_time = xks.as_ref().map(|_| self.xks_create.lock());
        if let Some(x) = &xks {
            self.check_new_xks_key(caller, &x.custom_key_store_id, &x.xks_key_id)?;
        }
        let mut record = record;
        record.xks = xks.map(Box::new);
        let key = if origin == Origin::External {
            if self.state.read().keys.contains_key(&record.addr) {
                return Err(already_exists(&record.addr));
            }
            self.insert_key_without_material(record)?
        } else {
            let given = match custom.material {
                Some(bytes) => {
                    let loaded = crate::keymat::load_imported(spec, usage, &bytes)?;
                    let id = crate::ops::import::imported_material_id(
                        record.addr.key_id.as_str(),
                        &bytes,
                        &loaded,
                    )?;
                    Some((bytes, loaded, id))
                }
                None => None,
            };
            self.insert_new_key(record, given)?
        };
        Ok(KeyMetadataResponse {
            key_metadata: self.metadata(&key.record),
        })
    }

    /// DescribeKey
    pub fn describe_key(
        &self,
        caller: &Caller,
        req: DescribeKeyRequest,
    ) -> Result<KeyMetadataResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOrAlias, "DescribeKey")?;
        Ok(KeyMetadataResponse {
            key_metadata: self.metadata(&key.record),
        })
    }

    /// ListKeys: every key of the caller's account in the request's region,
    /// pending-deletion keys included.
    pub fn list_keys(
        &self,
        caller: &Caller,
        req: ListKeysRequest,
    ) -> Result<ListKeysResponse, KmsError> {
        self.authorize_identity_only(caller, "ListKeys", "*", Context::new())?;
        let owners = req
            .resource_owners
            .as_deref()
            .unwrap_or(&[ResourceOwner::OwnAccount]);
        if owners.is_empty() || owners.len() > 2 {
            return Err(KmsError::validation(
                None,
                "resourceOwners",
                "Member must have length greater than or equal to 1 and less than or equal to 2",
            ));
        }
        // OTHER_ACCOUNTS_VIA_RAM adds nothing: no key is shared through
        // Resource Access Manager here (docs/keys.md). Without SELF there is
        // nothing to list.
        let own = owners.contains(&ResourceOwner::OwnAccount);
        let entries: Vec<KeyListEntry> = self
            .state
            .read()
            .keys
            .values()
            .filter(|k| {
                own && k.record.addr.account == caller.account
                    && k.record.addr.region == caller.region
            })
            .map(|k| KeyListEntry {
                key_id: k.record.addr.key_id.to_string(),
                key_arn: k.record.arn(),
            })
            .collect();
        let (keys, next) = page(
            entries,
            |e| e.key_id.clone(),
            req.limit,
            100,
            1000,
            req.marker.as_deref(),
        )?;
        Ok(ListKeysResponse {
            keys,
            truncated: next.is_some(),
            next_marker: next,
        })
    }

    /// EnableKey
    pub fn enable_key(&self, caller: &Caller, req: EnableKeyRequest) -> Result<Empty, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "EnableKey")?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            check_enable_disable(r)?;
            r.state = KeyState::Enabled;
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// DisableKey
    pub fn disable_key(&self, caller: &Caller, req: DisableKeyRequest) -> Result<Empty, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "DisableKey")?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            check_enable_disable(r)?;
            r.state = KeyState::Disabled;
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// ScheduleKeyDeletion: 7 to 30 days, 30 by default. The key is deleted,
    /// with its aliases, once the date passes.
    pub fn schedule_key_deletion(
        &self,
        caller: &Caller,
        req: ScheduleKeyDeletionRequest,
    ) -> Result<ScheduleKeyDeletionResponse, KmsError> {
        let days = req.pending_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            let (op, bound) = if days < 7 {
                ("greater than or equal to", 7)
            } else {
                ("less than or equal to", 30)
            };
            return Err(KmsError::validation(
                Some(&days.to_string()),
                "pendingWindowInDays",
                &format!("Member must have value {op} {bound}"),
            ));
        }
        let mut cond = Context::new();
        cond.insert(
            "kms:ScheduleKeyDeletionPendingWindowInDays",
            i64::from(days),
        );
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "ScheduleKeyDeletion",
            cond,
        )?;
        let now = self.clock.now_ms();
        let (key, ()) = self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            require_not_pending_deletion(r)?;
            if r.state == KeyState::Updating {
                return Err(KmsError::InvalidState(format!("{} is updating.", r.arn())));
            }
            // A multi-Region primary with replicas waits for them: its
            // waiting period starts when the last replica is deleted.
            let has_replicas = r.multi_region_info().is_some_and(|i| {
                i.primary_region == r.addr.region && !i.replica_regions.is_empty()
            });
            if has_replicas {
                r.state = KeyState::PendingReplicaDeletion;
                r.deletion_ms = None;
            } else {
                r.state = KeyState::PendingDeletion;
                r.deletion_ms = Some(now + i64::from(days) * DAY_MS);
            }
            r.pending_window_days = Some(days);
            Ok(())
        })?;
        Ok(ScheduleKeyDeletionResponse {
            key_id: key.record.arn(),
            deletion_date: key
                .record
                .deletion_ms
                .map(crate::model::ms_to_epoch_seconds),
            key_state: key.record.state,
            pending_window_in_days: days,
        })
    }

    /// CancelKeyDeletion: the key comes back Disabled (PendingImport when
    /// imported material is missing).
    pub fn cancel_key_deletion(
        &self,
        caller: &Caller,
        req: CancelKeyDeletionRequest,
    ) -> Result<KeyIdResponse, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "CancelKeyDeletion")?;
        let (key, ()) = self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            if !matches!(
                r.state,
                KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
            ) {
                return Err(KmsError::InvalidState(format!(
                    "{} is not pending deletion.",
                    r.arn()
                )));
            }
            // An EXTERNAL key without all of its material comes back
            // PendingImport (AWS's key-state table).
            r.state = if r.has_material() {
                KeyState::Disabled
            } else {
                KeyState::PendingImport
            };
            r.deletion_ms = None;
            r.pending_window_days = None;
            Ok(())
        })?;
        Ok(KeyIdResponse {
            key_id: key.record.arn(),
        })
    }

    /// UpdateKeyDescription
    pub fn update_key_description(
        &self,
        caller: &Caller,
        req: UpdateKeyDescriptionRequest,
    ) -> Result<Empty, KmsError> {
        let key = self.resolve(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "UpdateKeyDescription",
        )?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            require_not_pending_deletion(r)?;
            r.description = req.description;
            Ok(())
        })?;
        Ok(Empty {})
    }
}

/// What LocalStack's custom tags asked of CreateKey (`--dev` only).
#[derive(Default)]
struct CustomTags {
    id: Option<KeyId>,
    material: Option<zeroize::Zeroizing<Vec<u8>>>,
}

fn already_exists(addr: &KeyAddr) -> KmsError {
    KmsError::AlreadyExists(format!(
        "A key with id {} already exists in account {} and Region {}.",
        addr.key_id, addr.account, addr.region
    ))
}

impl Kms {
    /// `--dev`: CreateKey honours LocalStack's `_custom_id_` (the new
    /// key's id) and `_custom_key_material_` (its material, base64) tags
    /// and leaves them off the key. Off by default: then `_custom_id_` is
    /// an ordinary tag and `_custom_key_material_` is refused (it would
    /// keep key material in the clear in a tag).
    pub fn honour_localstack_tags(&self, on: bool) {
        self.localstack_tags
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes LocalStack's custom tags out of a CreateKey request's tags
    /// (see [`Kms::honour_localstack_tags`]). No message shows the
    /// material.
    fn localstack_custom_tags(
        &self,
        tags: &mut Vec<crate::model::Tag>,
        spec: KeySpec,
        usage: KeyUsage,
        origin: Origin,
        multi_region: bool,
    ) -> Result<CustomTags, KmsError> {
        use crate::given::{CUSTOM_ID_TAG, CUSTOM_KEY_MATERIAL_TAG};
        let dev = self
            .localstack_tags
            .load(std::sync::atomic::Ordering::Relaxed);
        let has_material = tags.iter().any(|t| t.key == CUSTOM_KEY_MATERIAL_TAG);
        if !dev {
            if has_material {
                return Err(KmsError::Tag(format!(
                    "The tag {CUSTOM_KEY_MATERIAL_TAG} gives key material; ferrokms honours it only under --dev and never keeps key material in a tag."
                )));
            }
            return Ok(CustomTags::default());
        }
        let mut out = CustomTags::default();
        if let Some(i) = tags.iter().position(|t| t.key == CUSTOM_ID_TAG) {
            let t = tags.remove(i);
            let id = KeyId::parse(&t.value)
                .filter(|id| id.is_multi_region() == multi_region)
                .ok_or_else(|| {
                    KmsError::Validation(format!(
                        "The {CUSTOM_ID_TAG} tag must be a key id: a UUID, or for a multi-Region key mrk- and 32 hex digits."
                    ))
                })?;
            out.id = Some(id);
        }
        if let Some(i) = tags.iter().position(|t| t.key == CUSTOM_KEY_MATERIAL_TAG) {
            let t = tags.remove(i);
            if origin != Origin::AwsKms {
                return Err(KmsError::Validation(format!(
                    "The {CUSTOM_KEY_MATERIAL_TAG} tag is for keys of origin AWS_KMS; import material into an EXTERNAL key."
                )));
            }
            use base64::Engine;
            let raw = zeroize::Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(t.value.as_bytes())
                    .map_err(|_| {
                        KmsError::Validation(format!(
                            "The {CUSTOM_KEY_MATERIAL_TAG} tag is not valid base64."
                        ))
                    })?,
            );
            let bytes = if spec.is_asymmetric() {
                crate::given::private_key_to_pkcs8(spec, None, &raw).map_err(|e| {
                    KmsError::IncorrectKeyMaterial(format!(
                        "The {CUSTOM_KEY_MATERIAL_TAG} tag {e}."
                    ))
                })?
            } else {
                raw
            };
            crate::keymat::load_imported(spec, usage, &bytes)?;
            out.material = Some(bytes);
        }
        Ok(out)
    }
}

/// The KeySpec x KeyUsage rules of CreateKey (the KeySpec/KeyUsage table of docs/keys.md). KeyUsage may
/// be omitted only for SYMMETRIC_DEFAULT.
pub(crate) fn check_spec_and_usage(
    spec: KeySpec,
    usage: Option<KeyUsage>,
) -> Result<KeyUsage, KmsError> {
    if spec == KeySpec::Sm2 {
        return Err(KmsError::UnsupportedOperation(
            "KeySpec SM2 is available only in AWS China Regions; ferrokms does not support SM2 keys.".into(),
        ));
    }
    let usage = match usage {
        Some(u) => u,
        None if spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
        None => {
            return Err(KmsError::Validation(
                "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
            ))
        }
    };
    if !spec.allowed_usages().contains(&usage) {
        return Err(KmsError::Validation(format!(
            "KeyUsage {usage} is not compatible with KeySpec {spec}"
        )));
    }
    Ok(usage)
}

fn check_enable_disable(r: &KeyRecord) -> Result<(), KmsError> {
    require_not_pending_deletion(r)?;
    match r.state {
        KeyState::PendingImport => Err(KmsError::InvalidState(format!(
            "{} is pending import.",
            r.arn()
        ))),
        KeyState::Creating => Err(KmsError::InvalidState(format!("{} is creating.", r.arn()))),
        KeyState::Updating => Err(KmsError::InvalidState(format!("{} is updating.", r.arn()))),
        _ => Ok(()),
    }
}

/// Key policies are limited to 32 KiB (AWS KMS quotas, "Key policy document size"); the grammar is the
/// policy engine's business.
pub(crate) fn check_policy_size(p: &str) -> Result<(), KmsError> {
    if p.len() > MAX_KEY_POLICY_BYTES {
        return Err(KmsError::LimitExceeded(format!(
            "The key policy is {} bytes; the limit is {MAX_KEY_POLICY_BYTES} bytes.",
            p.len()
        )));
    }
    Ok(())
}

/// AWS's answers to a request's own tags (CreateKey, TagResource,
/// ReplicateKey), checked before the key is looked up: a key that begins
/// with `aws:` in any case, a key given twice, more than 50 tags.
pub(crate) fn validate_request_tags(new: &[crate::model::Tag]) -> Result<(), KmsError> {
    if new.iter().any(|t| is_reserved_tag_key(&t.key)) {
        return Err(KmsError::Tag(
            "Tags beginning with aws: are reserved".into(),
        ));
    }
    if new
        .iter()
        .enumerate()
        .any(|(i, t)| new[..i].iter().any(|o| o.key == t.key))
    {
        return Err(KmsError::Tag("Duplicate tag keys".into()));
    }
    if new.len() > MAX_TAGS_PER_KEY {
        return Err(too_many_tags());
    }
    check_tag_key_case(&[], new)
}

/// `aws:` is reserved whatever its case (`AWS:team` too).
fn is_reserved_tag_key(key: &str) -> bool {
    key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// A key holds at most 50 tags: the request's, merged with those it has,
/// must fit. The 51st tag is AWS's answer to too many tags in one request,
/// TagException (ferrokms gives it for the merged count too).
pub(crate) fn validate_new_tags(
    existing: &[crate::model::Tag],
    new: &[crate::model::Tag],
) -> Result<(), KmsError> {
    check_tag_key_case(existing, new)?;
    let added = new
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            !existing.iter().any(|e| e.key == t.key) && !new[..*i].iter().any(|o| o.key == t.key)
        })
        .count();
    if existing.len() + added > MAX_TAGS_PER_KEY {
        return Err(too_many_tags());
    }
    Ok(())
}

fn too_many_tags() -> KmsError {
    KmsError::Tag("Too many tags".into())
}

/// KMS tag keys are case-sensitive, but policy condition keys are not:
/// `aws:RequestTag/Team` and `aws:RequestTag/team` are one context key, and
/// `aws:ResourceTag/<key>` likewise. A request whose tags hold two spellings
/// of one key (between themselves or against the key's current tags) could
/// satisfy a Deny on one spelling with the other's value, so ferrokms refuses
/// it (TagException) where AWS KMS would store both.
pub(crate) fn check_tag_key_case(
    existing: &[crate::model::Tag],
    new: &[crate::model::Tag],
) -> Result<(), KmsError> {
    for (i, t) in new.iter().enumerate() {
        let clash = existing
            .iter()
            .chain(&new[..i])
            .find(|o| o.key != t.key && ferrokms_policy::same_context_key(&o.key, &t.key));
        if let Some(o) = clash {
            return Err(KmsError::Tag(format!(
                "Tag keys '{}' and '{}' differ only in case. Policy condition keys such as aws:RequestTag/<key> and aws:ResourceTag/<key> are case-insensitive, so a KMS key cannot have both.",
                o.key, t.key
            )));
        }
    }
    Ok(())
}

/// Adds or replaces tags, keeping first-insertion order.
pub(crate) fn merge_tags(
    mut existing: Vec<crate::model::Tag>,
    new: Vec<crate::model::Tag>,
) -> Vec<crate::model::Tag> {
    for t in new {
        match existing.iter_mut().find(|e| e.key == t.key) {
            Some(e) => e.value = t.value,
            None => existing.push(t),
        }
    }
    existing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tag;

    fn tag(key: &str, value: &str) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Condition keys fold case (`aws:RequestTag/Team` is `aws:RequestTag/team`):
    /// tag keys that differ only in case, within a request or against the
    /// key's tags, are a TagException; the exact spelling re-tags.
    #[test]
    fn tag_keys_differing_only_in_case_are_a_tag_exception() {
        let existing = [tag("team", "blue")];
        for new in [
            vec![tag("Team", "red")],
            vec![tag("other", "x"), tag("TEAM", "red")],
        ] {
            assert!(matches!(
                validate_new_tags(&existing, &new),
                Err(KmsError::Tag(_))
            ));
        }
        for new in [
            vec![tag("a", "1"), tag("A", "2")],
            vec![tag("\u{c9}t\u{e9}", "1"), tag("\u{e9}t\u{e9}", "2")],
        ] {
            assert!(matches!(
                validate_new_tags(&[], &new),
                Err(KmsError::Tag(_))
            ));
        }
        assert!(validate_new_tags(&existing, &[tag("team", "red")]).is_ok());
        assert!(validate_new_tags(&existing, &[tag("teams", "red"), tag("a", "b")]).is_ok());
        // Collisions already stored are not the request's doing.
        assert!(check_tag_key_case(&[tag("x", "1"), tag("X", "2")], &[tag("y", "3")]).is_ok());
    }

    fn many(n: usize) -> Vec<Tag> {
        (0..n).map(|i| tag(&format!("k{i}"), "v")).collect()
    }

    /// AWS's TagException texts for a request's own tags.
    #[test]
    fn request_tags_answer_in_aws_words() {
        let tag_err = |t: &[Tag]| validate_request_tags(t).unwrap_err();
        assert_eq!(
            tag_err(&[tag("a", "1"), tag("b", "2"), tag("a", "3")]),
            KmsError::Tag("Duplicate tag keys".into())
        );
        for reserved in ["aws:x", "AWS:x", "aWs:", "Aws:team"] {
            assert_eq!(
                tag_err(&[tag(reserved, "v")]),
                KmsError::Tag("Tags beginning with aws: are reserved".into())
            );
        }
        assert_eq!(tag_err(&many(51)), KmsError::Tag("Too many tags".into()));
        assert!(validate_request_tags(&many(50)).is_ok());
        assert!(validate_request_tags(&[tag("awsome", "v"), tag("x-aws:", "v")]).is_ok());
    }

    /// A key keeps at most 50 tags; re-tagging a key it has adds none.
    #[test]
    fn the_fifty_first_tag_of_a_key_is_too_many_tags() {
        let fifty = many(50);
        assert_eq!(
            validate_new_tags(&fifty, &[tag("k50", "v")]),
            Err(KmsError::Tag("Too many tags".into()))
        );
        assert!(validate_new_tags(&fifty, &[tag("k0", "new"), tag("k49", "new")]).is_ok());
        assert!(validate_new_tags(&many(49), &[tag("k49", "v"), tag("k49", "w")]).is_ok());
    }
}
