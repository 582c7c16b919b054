//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use ferrokms_store::Change;

use ferrokms_policy::Context;

use crate::api::*;
use crate::ids::{require_alias_prefix, Accepts, AliasAddr, AliasName, KeyRef};
use crate::model::{ms_to_epoch_seconds, KeySpec, KeyState};
use crate::ops::{page, require_not_pending_deletion};
use crate::state::{put_alias_change, AliasRecord, KIND_ALIAS};
use crate::{Caller, Kms, KmsError};

pub(crate) const MAX_ALIASES_PER_KEY: usize = 50;

/// The key "type" UpdateAlias compares: symmetric, HMAC or asymmetric.
fn key_family(spec: KeySpec) -> u8 {
    match spec {
        KeySpec::SymmetricDefault => 0,
        KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => 1,
        _ => 2,
    }
}

impl Kms {
    /// CreateAlias
    pub fn create_alias(
        &self,
        caller: &Caller,
        req: CreateAliasRequest,
    ) -> Result<Empty, KmsError> {
        let name = AliasName::parse_for_create(&req.alias_name)?;
        let alias_arn = AliasAddr {
            account: caller.account.clone(),
            region: caller.region.clone(),
            name: name.clone(),
        }
        .arn();
        // Two checks, as on AWS: the alias (identity policies) and the key.
        self.authorize_identity_only(caller, "CreateAlias", &alias_arn, Context::new())?;
        let key = self.resolve(caller, &req.target_key_id, Accepts::KeyOnly, "CreateAlias")?;
        crate::ops::require_customer_managed(&key.record)?;
        require_not_pending_deletion(&key.record)?;
        let addr = AliasAddr {
            account: caller.account.clone(),
            region: caller.region.clone(),
            name,
        };
        let now = self.clock.now_ms();
        let w = self.writer.lock();
        self.current_key(&w, &key.record.addr)?;
        {
            let state = self.state.read();
            if state.aliases.contains_key(&addr) {
                return Err(KmsError::AlreadyExists(format!(
                    "An alias with the name {} already exists",
                    addr.arn()
                )));
            }
            let count = state
                .aliases
                .values()
                .filter(|a| a.target == key.record.addr)
                .count();
            if count >= MAX_ALIASES_PER_KEY {
                return Err(KmsError::LimitExceeded(format!(
                    "A KMS key can have at most {MAX_ALIASES_PER_KEY} aliases."
                )));
            }
        }
        let record = AliasRecord {
            addr: addr.clone(),
            target: key.record.addr.clone(),
            created_ms: now,
            updated_ms: now,
        };
        self.store.apply(&[put_alias_change(&record)?])?;
        self.state.write().aliases.insert(addr, record);
        Ok(Empty {})
    }

    /// UpdateAlias: the new target must be the same type of key with the
    /// same usage, and must not be pending deletion.
    pub fn update_alias(
        &self,
        caller: &Caller,
        req: UpdateAliasRequest,
    ) -> Result<Empty, KmsError> {
        let addr = self.own_alias(caller, &req.alias_name)?;
        // Three checks, as on AWS: the alias, its current key and the new key.
        self.authorize_identity_only(caller, "UpdateAlias", &addr.arn(), Context::new())?;
        let current = self
            .state
            .read()
            .aliases
            .get(&addr)
            .map(|a| a.target.clone())
            .ok_or_else(|| KmsError::NotFound(format!("Alias {} is not found.", addr.arn())))?;
        if let Ok(old_key) = self.lookup(&KeyRef::Key(current)) {
            self.authorize_key(caller, &old_key, "UpdateAlias", Context::new())?;
        }
        let new_key = self.resolve(caller, &req.target_key_id, Accepts::KeyOnly, "UpdateAlias")?;
        crate::ops::require_customer_managed(&new_key.record)?;
        if new_key.record.state == KeyState::PendingDeletion {
            return Err(KmsError::InvalidState(format!(
                "{} is pending deletion.",
                new_key.record.arn()
            )));
        }
        let w = self.writer.lock();
        self.current_key(&w, &new_key.record.addr)?;
        let mut record = self
            .state
            .read()
            .aliases
            .get(&addr)
            .cloned()
            .ok_or_else(|| KmsError::NotFound(format!("Alias {} is not found.", addr.arn())))?;
        if let Some(old) = self.state.read().keys.get(&record.target) {
            let (a, b) = (&old.record, &new_key.record);
            if key_family(a.key_spec) != key_family(b.key_spec) || a.key_usage != b.key_usage {
                return Err(KmsError::Validation(format!(
                    "{} key type or usage does not match the current target of {}",
                    b.arn(),
                    addr.name
                )));
            }
        }
        record.target = new_key.record.addr.clone();
        record.updated_ms = self.clock.now_ms();
        self.store.apply(&[put_alias_change(&record)?])?;
        self.state.write().aliases.insert(addr, record);
        Ok(Empty {})
    }

    /// DeleteAlias
    pub fn delete_alias(
        &self,
        caller: &Caller,
        req: DeleteAliasRequest,
    ) -> Result<Empty, KmsError> {
        let addr = self.own_alias(caller, &req.alias_name)?;
        // Two checks, as on AWS: the alias and the key it points to.
        self.authorize_identity_only(caller, "DeleteAlias", &addr.arn(), Context::new())?;
        let target = self
            .state
            .read()
            .aliases
            .get(&addr)
            .map(|a| a.target.clone());
        let Some(target) = target else {
            return Err(KmsError::NotFound(format!(
                "Alias {} is not found.",
                addr.arn()
            )));
        };
        if let Ok(key) = self.lookup(&KeyRef::Key(target)) {
            self.authorize_key(caller, &key, "DeleteAlias", Context::new())?;
        }
        let _w = self.writer.lock();
        if !self.state.read().aliases.contains_key(&addr) {
            return Err(KmsError::NotFound(format!(
                "Alias {} is not found.",
                addr.arn()
            )));
        }
        self.store.apply(&[Change::Delete {
            kind: KIND_ALIAS,
            id: addr.storage_id(),
        }])?;
        self.state.write().aliases.remove(&addr);
        Ok(Empty {})
    }

    /// ListAliases: the caller's aliases in the region, optionally only
    /// those of one key.
    pub fn list_aliases(
        &self,
        caller: &Caller,
        req: ListAliasesRequest,
    ) -> Result<ListAliasesResponse, KmsError> {
        self.authorize_identity_only(caller, "ListAliases", "*", Context::new())?;
        let filter = match &req.key_id {
            Some(k) => Some(
                self.lookup(&KeyRef::parse(
                    k,
                    &caller.account,
                    &caller.region,
                    Accepts::KeyOnly,
                )?)?
                .record
                .addr
                .clone(),
            ),
            None => None,
        };
        let entries: Vec<AliasListEntry> = self
            .state
            .read()
            .aliases
            .values()
            .filter(|a| a.addr.account == caller.account && a.addr.region == caller.region)
            .filter(|a| filter.as_ref().is_none_or(|f| &a.target == f))
            .map(|a| AliasListEntry {
                alias_name: a.addr.name.to_string(),
                alias_arn: a.addr.arn(),
                target_key_id: Some(a.target.key_id.to_string()),
                creation_date: Some(ms_to_epoch_seconds(a.created_ms)),
                last_updated_date: Some(ms_to_epoch_seconds(a.updated_ms)),
            })
            .collect();
        let mut entries = entries;
        if filter.is_none() {
            // Predefined AWS aliases are listed before their key exists,
            // without a target (AWS lists them the same way).
            for name in crate::ops::managed::predefined_alias_names() {
                if entries.iter().any(|e| e.alias_name == name.as_str()) {
                    continue;
                }
                let addr = AliasAddr {
                    account: caller.account.clone(),
                    region: caller.region.clone(),
                    name,
                };
                entries.push(AliasListEntry {
                    alias_name: addr.name.to_string(),
                    alias_arn: addr.arn(),
                    target_key_id: None,
                    creation_date: None,
                    last_updated_date: None,
                });
            }
        }
        let (aliases, next) = page(
            entries,
            |e| e.alias_name.clone(),
            req.limit,
            50,
            100,
            req.marker.as_deref(),
        )?;
        Ok(ListAliasesResponse {
            aliases,
            truncated: next.is_some(),
            next_marker: next,
        })
    }

    /// An alias named by UpdateAlias/DeleteAlias: always in the caller's
    /// own account (these operations do not work across accounts).
    fn own_alias(&self, caller: &Caller, name: &str) -> Result<AliasAddr, KmsError> {
        // A name without `alias/` is refused as CreateAlias refuses it.
        if !name.starts_with("arn:") {
            require_alias_prefix(name)?;
        }
        let parsed = KeyRef::parse(name, &caller.account, &caller.region, Accepts::KeyOrAlias);
        match parsed {
            Ok(KeyRef::Alias(a)) if a.account == caller.account => Ok(a),
            _ => Err(KmsError::NotFound(format!(
                "Alias arn:{}:kms:{}:{}:{} is not found.",
                caller.region.partition(),
                caller.region,
                caller.account,
                name
            ))),
        }
    }
}
