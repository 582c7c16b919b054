//! Applying identity changes that another node committed to a shared store
//! (see `ferrokms_kms::replica` for the why). Each document replaces or
//! removes exactly the entry [`Directory::open`] would have built from it,
//! and every application moves the directory's generation, so callers'
//! cached profiles are rebuilt on their next request.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{
    name_key, AccountRecord, Directory, GroupRecord, IamError, InstanceProfileRecord,
    ManagedPolicyRecord, RoleRecord, StoredAccessKey, UserRecord, KIND_ACCESS_KEY, KIND_ACCOUNT,
    KIND_GROUP, KIND_INSTANCE_PROFILE, KIND_LEGACY_SESSION, KIND_POLICY, KIND_ROLE, KIND_USER,
};

pub use ferrokms_store::RemoteDoc;

/// Whether a stored kind belongs to this crate.
pub fn owns_kind(kind: &str) -> bool {
    kind.starts_with("iam.")
}

/// Users, roles, groups and instance profiles are stored as `ACCOUNT/lowercase-name`, which is
/// exactly their in-memory key.
fn split_name_id(id: &str) -> Option<crate::NameKey> {
    let (account, name) = id.split_once('/')?;
    let account = ferrokms_types::AccountId::parse(account).ok()?;
    Some((account, name.to_string()))
}

impl Directory {
    /// Folds documents committed elsewhere into the in-memory directory.
    pub fn apply_remote(&self, docs: &[RemoteDoc<'_>]) -> Result<(), IamError> {
        if docs.is_empty() {
            return Ok(());
        }
        // Decode (and unseal) before taking the write lock.
        let mut decoded = Vec::with_capacity(docs.len());
        for doc in docs {
            decoded.push(self.decode(doc)?);
        }
        let mut state = self.write_state();
        for (doc, entry) in docs.iter().zip(decoded) {
            match entry {
                Entry::Account(Some(a)) => {
                    state.accounts.insert(a.id.clone(), a);
                }
                Entry::AccessKey(Some(k)) => {
                    state.access_keys.insert(k.id.clone(), Arc::new(k));
                }
                Entry::User(Some(u)) => {
                    state
                        .users
                        .insert(name_key(&u.account, &u.name), Arc::new(u));
                }
                Entry::Role(Some(r)) => {
                    state
                        .roles
                        .insert(name_key(&r.account, &r.name), Arc::new(r));
                }
                Entry::Group(Some(g)) => {
                    state
                        .groups
                        .insert(name_key(&g.account, &g.name), Arc::new(g));
                }
                Entry::Policy(Some(p)) => {
                    state.policies.insert(p.arn(), Arc::new(p));
                }
                Entry::InstanceProfile(Some(p)) => {
                    state
                        .instance_profiles
                        .insert(name_key(&p.account, &p.name), Arc::new(p));
                }
                Entry::Account(None) => {
                    state.accounts.retain(|id, _| id.as_str() != doc.id);
                }
                Entry::AccessKey(None) => {
                    state.access_keys.remove(doc.id);
                }
                Entry::User(None) => {
                    if let Some(k) = split_name_id(doc.id) {
                        state.users.remove(&k);
                    }
                }
                Entry::Role(None) => {
                    if let Some(k) = split_name_id(doc.id) {
                        state.roles.remove(&k);
                    }
                }
                Entry::Group(None) => {
                    if let Some(k) = split_name_id(doc.id) {
                        state.groups.remove(&k);
                    }
                }
                Entry::Policy(None) => {
                    state.policies.remove(doc.id);
                }
                Entry::InstanceProfile(None) => {
                    if let Some(k) = split_name_id(doc.id) {
                        state.instance_profiles.remove(&k);
                    }
                }
                Entry::Unknown => {}
            }
        }
        Ok(())
    }

    fn decode(&self, doc: &RemoteDoc<'_>) -> Result<Entry, IamError> {
        fn json<T: DeserializeOwned>(doc: &RemoteDoc<'_>) -> Result<Option<T>, IamError> {
            doc.body
                .map(|b| {
                    serde_json::from_slice(b)
                        .map_err(|e| IamError::Corrupt(format!("{} {}: {e}", doc.kind, doc.id)))
                })
                .transpose()
        }
        Ok(match doc.kind {
            KIND_ACCOUNT => Entry::Account(json::<AccountRecord>(doc)?),
            KIND_ACCESS_KEY => Entry::AccessKey(
                json::<StoredAccessKey>(doc)?
                    .map(|s| s.open(&self.sealer))
                    .transpose()?,
            ),
            KIND_USER => Entry::User(json::<UserRecord>(doc)?),
            KIND_ROLE => Entry::Role(json::<RoleRecord>(doc)?),
            KIND_GROUP => Entry::Group(json::<GroupRecord>(doc)?),
            KIND_POLICY => Entry::Policy(json::<ManagedPolicyRecord>(doc)?),
            KIND_INSTANCE_PROFILE => Entry::InstanceProfile(json::<InstanceProfileRecord>(doc)?),
            // Written by an older version still running beside this one:
            // sessions are no longer stored; such a session works on the
            // node that issued it only.
            KIND_LEGACY_SESSION => Entry::Unknown,
            _ => Entry::Unknown,
        })
    }
}

enum Entry {
    Account(Option<AccountRecord>),
    AccessKey(Option<crate::AccessKey>),
    User(Option<UserRecord>),
    Role(Option<RoleRecord>),
    Group(Option<GroupRecord>),
    Policy(Option<ManagedPolicyRecord>),
    InstanceProfile(Option<InstanceProfileRecord>),
    Unknown,
}
