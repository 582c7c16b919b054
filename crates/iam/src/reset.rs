//! Emptying the identity directory but for its accounts: `serve --dev`'s
//! reset endpoints (the moto / LocalStack conventions, see
//! docs/identity.md, "Resetting a --dev server"). Not an IAM operation:
//! nothing in the API reaches it.

use std::ops::ControlFlow;

use ferrokms_store::Change;

use crate::{
    Directory, IamError, Principal, StoredAccessKey, KIND_ACCESS_KEY, KIND_GROUP,
    KIND_LEGACY_SESSION, KIND_POLICY, KIND_ROLE, KIND_USER,
};

/// Kinds removed whole: every user, role, group and customer managed
/// policy (inline policies, attachments, tags, permissions boundaries,
/// login profiles and MFA live in their records).
const WHOLE_KINDS: [&str; 5] = [
    KIND_USER,
    KIND_ROLE,
    KIND_GROUP,
    KIND_POLICY,
    KIND_LEGACY_SESSION,
];

/// What [`Directory::reset_identities`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// IAM users.
    pub users: usize,
    /// IAM roles.
    pub roles: usize,
    /// IAM groups.
    pub groups: usize,
    /// Customer managed policies.
    pub policies: usize,
    /// Access keys of users (root access keys stay).
    pub access_keys: usize,
    /// Stored documents deleted, all kinds together.
    pub documents: usize,
}

impl Directory {
    /// Deletes every IAM user, role, group and managed policy of every
    /// account, and every access key that is not an account root's, in one
    /// atomic, durable batch; then the same entries leave the in-memory
    /// directory in one step (its generation moves, so cached caller
    /// profiles are rebuilt). Accounts and their root access keys stay:
    /// they are the server's provisioning (first start, `--bootstrap`),
    /// not state a client made. Sessions issued to a deleted user or role
    /// stop working (a session of a principal that no longer exists is
    /// refused); an account root's sessions go on. Writers are held off
    /// meanwhile; on a shared store the caller holds the cluster write lock.
    pub fn reset_identities(&self) -> Result<ResetReport, IamError> {
        let _w = self.writer.lock();
        let mut changes = self.store.deletions_of(&WHOLE_KINDS)?;
        let mut failed = None;
        let mut access_keys = 0;
        self.store.load_each(KIND_ACCESS_KEY, &mut |id, body| {
            match serde_json::from_slice::<StoredAccessKey>(body) {
                Ok(k) if matches!(k.principal, Principal::Root { .. }) => {}
                Ok(_) => {
                    access_keys += 1;
                    changes.push(Change::Delete {
                        kind: KIND_ACCESS_KEY,
                        id: id.to_string(),
                    });
                }
                Err(e) => {
                    failed = Some(IamError::Corrupt(format!("{KIND_ACCESS_KEY} {id}: {e}")));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.store.apply(&changes)?;
        let mut state = self.write_state();
        let report = ResetReport {
            users: state.users.len(),
            roles: state.roles.len(),
            groups: state.groups.len(),
            policies: state.policies.len(),
            access_keys,
            documents: changes.len(),
        };
        let users = std::mem::take(&mut state.users);
        let roles = std::mem::take(&mut state.roles);
        let groups = std::mem::take(&mut state.groups);
        let policies = std::mem::take(&mut state.policies);
        state
            .access_keys
            .retain(|_, k| matches!(k.principal, Principal::Root { .. }));
        drop(state);
        drop((users, roles, groups, policies));
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrokms_store::{Sealer, SqliteStore, Store};
    use ferrokms_types::AccountId;

    use crate::{Directory, Principal, KIND_ACCESS_KEY};

    #[test]
    fn reset_removes_user_access_keys_keeps_roots_and_is_durable() {
        let dir = tempfile::tempdir().expect("test setup");
        let sealer = Arc::new(Sealer::ephemeral().expect("test setup"));
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("db")).expect("test setup"));
        let acct = AccountId::parse("111122223333").expect("test setup");
        let (root, user_key) = {
            let d = Directory::open(store.clone(), sealer.clone()).expect("test setup");
            let root = d.create_account(&acct).expect("test setup");
            let user_key = d
                .new_access_key(Principal::User {
                    account: acct.clone(),
                    name: "alice".into(),
                    path: "/".into(),
                    id: "AIDAEXAMPLEEXAMPLE01".into(),
                })
                .expect("test setup");
            store
                .apply(&[d.access_key_change(&user_key).expect("test setup")])
                .expect("test setup");
            (root, user_key)
        };
        let d = Directory::open(store.clone(), sealer.clone()).expect("test setup");
        assert!(d.active_access_key(&user_key.id).is_some());
        let before = d.generation();
        let report = d.reset_identities().expect("reset");
        assert_eq!(report.access_keys, 1);
        assert_eq!(report.documents, 1);
        assert!(d.generation() > before, "cached profiles must go stale");
        assert!(d.active_access_key(&user_key.id).is_none());
        assert!(d.active_access_key(&root.id).is_some());
        assert!(d.account_exists(&acct));
        let stored = store.load(KIND_ACCESS_KEY).expect("load");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].id, root.id);
        let d = Directory::open(store, sealer).expect("reopen");
        assert!(d.active_access_key(&user_key.id).is_none());
        assert!(d.active_access_key(&root.id).is_some());
        // A second reset finds nothing left to remove.
        assert_eq!(d.reset_identities().expect("reset").documents, 0);
    }
}
