//! Access keys: CreateAccessKey, ListAccessKeys, UpdateAccessKey,
//! DeleteAccessKey, and the bootstrap import of a key with a given id.

use std::sync::Arc;

use ferrokms_policy::Context;
use ferrokms_store::Change;

use super::*;
use crate::authz::entity_keys;
use crate::entities::*;
use crate::{
    now_ms, AccessKey, AccessKeyStatus, Caller, Directory, IamError, Principal, KIND_ACCESS_KEY,
};

impl Directory {
    /// Whose access keys an operation means (the named user, or the
    /// caller), their ARN, and the user's condition keys. A named user that
    /// does not exist is a [`KeyOwner::Missing`], to be answered only after
    /// authorization (see `subject`).
    pub(super) fn key_owner(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<(KeyOwner, String, Context), IamError> {
        let account = caller.account().clone();
        let user = |u: &UserRecord| {
            (
                KeyOwner::Found(Principal::User {
                    account: account.clone(),
                    name: u.name.clone(),
                    path: u.path.clone(),
                    id: u.id.clone(),
                }),
                u.arn(),
                entity_keys(&u.tags, u.boundary.as_deref()),
            )
        };
        match (user_name, &caller.principal) {
            (Some(n), _) => Ok(match self.find_user(&account, n) {
                Some(u) => user(&u),
                None => {
                    let (arn, keys) = self.subject(&account, Owner::User, n);
                    (KeyOwner::Missing(n.to_string()), arn, keys)
                }
            }),
            (None, Principal::User { name, id, .. }) => {
                // The calling user as it is now, by unique id.
                let u = self.user(&account, name)?;
                if u.id != *id {
                    return Err(IamError::NoSuchEntity(format!(
                        "The user with name {name} cannot be found."
                    )));
                }
                Ok(user(&u))
            }
            (None, Principal::Root { .. }) => Ok((
                KeyOwner::Found(caller.principal.clone()),
                caller.authz.arn.clone(),
                Context::new(),
            )),
            (None, Principal::AssumedRole { .. }) => Err(IamError::Validation(
                "Must specify userName when calling with non-User credentials".into(),
            )),
        }
    }

    /// CreateAccessKey: at most two per user.
    pub fn create_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<Arc<AccessKey>, IamError> {
        let (owner, arn, keys) = self.key_owner(caller, user_name)?;
        self.authorize_with(caller, "iam:CreateAccessKey", &arn, keys)?;
        let owner = owner.found()?;
        let _w = self.writer.lock();
        // The user was found before the lock: if it was deleted since (by
        // DeleteUser or a `--dev` reset), no key is made for it.
        if let Principal::User { name, .. } = &owner {
            if !self.principal_exists(&owner) {
                return Err(IamError::NoSuchEntity(format!(
                    "The user with name {name} cannot be found."
                )));
            }
        }
        let count = self
            .state
            .read()
            .access_keys
            .values()
            .filter(|k| k.principal == owner)
            .count();
        if count >= MAX_ACCESS_KEYS_PER_USER {
            return Err(IamError::LimitExceeded(format!(
                "Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS_PER_USER}"
            )));
        }
        let key = self.new_access_key(owner)?;
        self.store.apply(&[self.access_key_change(&key)?])?;
        self.write_state()
            .access_keys
            .insert(key.id.clone(), key.clone());
        Ok(key)
    }

    /// ListAccessKeys: (id, status, created) of the user's keys.
    pub fn list_access_keys(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
    ) -> Result<Vec<Arc<AccessKey>>, IamError> {
        let (owner, arn, keys) = self.key_owner(caller, user_name)?;
        self.authorize_with(caller, "iam:ListAccessKeys", &arn, keys)?;
        let owner = owner.found()?;
        let mut keys: Vec<Arc<AccessKey>> = self
            .state
            .read()
            .access_keys
            .values()
            .filter(|k| k.principal == owner)
            .cloned()
            .collect();
        keys.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    pub(super) fn owned_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        key_id: &str,
        action: &str,
    ) -> Result<Arc<AccessKey>, IamError> {
        let (owner, arn, keys) = self.key_owner(caller, user_name)?;
        self.authorize_with(caller, action, &arn, keys)?;
        let owner = owner.found()?;
        self.state
            .read()
            .access_keys
            .get(key_id)
            .filter(|k| k.principal == owner)
            .cloned()
            .ok_or_else(|| {
                IamError::NoSuchEntity(format!("The Access Key with id {key_id} cannot be found."))
            })
    }

    /// UpdateAccessKey: Active / Inactive, effective on the next request.
    pub fn update_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        key_id: &str,
        status: AccessKeyStatus,
    ) -> Result<(), IamError> {
        let key = self.owned_key(caller, user_name, key_id, "iam:UpdateAccessKey")?;
        let _w = self.writer.lock();
        let updated = Arc::new(AccessKey {
            id: key.id.clone(),
            secret: key.secret.clone(),
            principal: key.principal.clone(),
            status,
            created_ms: key.created_ms,
        });
        self.store.apply(&[self.access_key_change(&updated)?])?;
        self.write_state()
            .access_keys
            .insert(updated.id.clone(), updated);
        Ok(())
    }

    /// DeleteAccessKey: effective on the next request.
    pub fn delete_access_key(
        &self,
        caller: &Caller,
        user_name: Option<&str>,
        key_id: &str,
    ) -> Result<(), IamError> {
        let key = self.owned_key(caller, user_name, key_id, "iam:DeleteAccessKey")?;
        let _w = self.writer.lock();
        self.store.apply(&[Change::Delete {
            kind: KIND_ACCESS_KEY,
            id: key.id.clone(),
        }])?;
        self.write_state().access_keys.remove(&key.id);
        Ok(())
    }

    /// Adds an access key with a given id and secret (bootstrap). The id
    /// must be 16..=128 letters and digits and unused.
    pub fn import_access_key(
        &self,
        principal: Principal,
        id: &str,
        secret: &str,
    ) -> Result<Arc<AccessKey>, IamError> {
        if !(16..=128).contains(&id.len()) || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(crate::names::invalid(
                id,
                "accessKeyId",
                "Member must have length between 16 and 128 and contain only letters and digits",
            ));
        }
        if secret.is_empty() || secret.len() > 128 {
            return Err(IamError::Validation(
                "The secret access key must have between 1 and 128 characters.".into(),
            ));
        }
        let _w = self.writer.lock();
        {
            let state = self.state.read();
            if state.access_keys.contains_key(id) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "Access key {id} already exists."
                )));
            }
        }
        let key = Arc::new(AccessKey {
            id: id.to_string(),
            secret: zeroize::Zeroizing::new(secret.to_string()),
            principal,
            status: crate::AccessKeyStatus::Active,
            created_ms: now_ms(),
        });
        self.store.apply(&[self.access_key_change(&key)?])?;
        self.write_state()
            .access_keys
            .insert(key.id.clone(), key.clone());
        Ok(key)
    }
}

/// The user whose access keys an operation means, or the name of one that
/// does not exist (NoSuchEntity once the caller is authorized).
pub(super) enum KeyOwner {
    Found(Principal),
    Missing(String),
}

impl KeyOwner {
    pub(super) fn found(self) -> Result<Principal, IamError> {
        match self {
            KeyOwner::Found(p) => Ok(p),
            KeyOwner::Missing(name) => Err(IamError::NoSuchEntity(format!(
                "The user with name {name} cannot be found."
            ))),
        }
    }
}
