//! The operations, one file per family, each method named after its AWS
//! operation. Shared steps (resolving the key a request names, checking its
//! state, paging) live here.

mod aliases;
mod asymmetric;
mod crypto_ops;
pub(crate) mod custom_key_stores;
pub(crate) mod import;
mod keys;
pub(crate) mod managed;
mod multi_region;
mod policy;
mod rotation;
pub mod seeded;
pub(crate) mod tags;

pub(crate) use keys::check_policy_size;
pub(crate) use managed::require_customer_managed;

use std::sync::Arc;

use ferrokms_policy::{Context, ContextValue};

use crate::ids::{Accepts, KeyRef};
use crate::model::{KeyRecord, KeyState};
use crate::state::Key;
use crate::{Caller, Kms, KmsError};

impl Kms {
    /// Resolves a `KeyId` member and authorizes `kms:ACTION` on the key.
    pub(crate) fn resolve(
        &self,
        caller: &Caller,
        text: &str,
        accepts: Accepts,
        action: &str,
    ) -> Result<Arc<Key>, KmsError> {
        self.resolve_with(caller, text, accepts, action, Context::new())
    }

    /// As [`Kms::resolve`], with the operation's own condition keys.
    /// `kms:RequestAlias` is added when the request named the key by alias.
    pub(crate) fn resolve_with(
        &self,
        caller: &Caller,
        text: &str,
        accepts: Accepts,
        action: &str,
        mut context: Context,
    ) -> Result<Arc<Key>, KmsError> {
        let key_ref = KeyRef::parse(text, &caller.account, &caller.region, accepts)?;
        if let KeyRef::Alias(a) = &key_ref {
            context.insert("kms:RequestAlias", a.name.as_str());
        }
        let key = match (&key_ref, self.lookup(&key_ref)) {
            (_, Ok(k)) => k,
            // alias/aws/<service> in the caller's own account: created on first use.
            (KeyRef::Alias(a), Err(e)) if a.account == caller.account => {
                self.aws_managed_key(a)?.ok_or(e)?
            }
            (_, Err(e)) => return Err(e),
        };
        self.authorize_key(caller, &key, action, context)?;
        Ok(key)
    }
}

impl Kms {
    /// [`require_usable`] as of now: imported material associated with the
    /// key and past its `ValidTo` makes the key unusable at once, without waiting for the sweeper
    /// (which then deletes it and sets PendingImport).
    pub(crate) fn require_usable(&self, r: &KeyRecord) -> Result<(), KmsError> {
        require_usable(r)?;
        // `xks` is `None` on every key outside an external key store.
        if let Some(x) = &r.xks {
            self.connected_store(r, x)?;
        }
        // `imported` is `None` on every AWS_KMS key: one branch on the hot path.
        if r.imported.is_some() && r.associated_material_expired_at(self.clock.now_ms()) {
            return Err(KmsError::InvalidState(format!(
                "{} is pending import.",
                r.arn()
            )));
        }
        Ok(())
    }
}

/// Pairs an encryption context may hold. AWS documents no bound for a request's encryption
/// context (grant constraints: 8 pairs); ferrokms sets one so that authorizing a request stays
/// cheap: each pair is a condition key, and `kms:EncryptionContextKeys` holds one value per
/// pair, each tried on every pattern a policy lists for it. See docs/operations.md.
pub(crate) const MAX_ENCRYPTION_CONTEXT_PAIRS: usize = 64;

/// Bytes (UTF-8, keys and values together) an encryption context may hold; see
/// [`MAX_ENCRYPTION_CONTEXT_PAIRS`].
pub(crate) const MAX_ENCRYPTION_CONTEXT_BYTES: usize = 8192;

/// The encryption-context condition keys of an operation, after checking the context's size
/// (`member` names it in the error, as the wire does: `encryptionContext`,
/// `sourceEncryptionContext`, ...). Counting happens in the loop that builds the keys, so a
/// small context costs nothing more.
pub(crate) fn encryption_context_keys(
    ctx: &mut Context,
    ec: &crate::crypto::EncryptionContext,
    member: &str,
) -> Result<(), KmsError> {
    check_encryption_context_len(ec.0.len(), member)?;
    let mut bytes = 0;
    for (k, v) in &ec.0 {
        bytes += k.len() + v.len();
        if bytes > MAX_ENCRYPTION_CONTEXT_BYTES {
            return Err(encryption_context_too_large(member));
        }
        ctx.insert(
            &ferrokms_textfast::concat(&["kms:EncryptionContext:", k]),
            v.as_str(),
        );
    }
    if !ec.0.is_empty() {
        ctx.insert_multi(
            "kms:EncryptionContextKeys",
            ec.0.keys()
                .map(|k| ContextValue::String(k.clone()))
                .collect(),
        );
    }
    Ok(())
}

/// The size rule of [`encryption_context_keys`], for a context that does not become
/// condition keys (a grant constraint's).
pub(crate) fn check_encryption_context<'a>(
    pairs: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
    member: &str,
) -> Result<(), KmsError> {
    check_encryption_context_len(pairs.len(), member)?;
    let bytes: usize = pairs.map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_ENCRYPTION_CONTEXT_BYTES {
        return Err(encryption_context_too_large(member));
    }
    Ok(())
}

fn check_encryption_context_len(pairs: usize, member: &str) -> Result<(), KmsError> {
    if pairs > MAX_ENCRYPTION_CONTEXT_PAIRS {
        return Err(KmsError::validation(
            None,
            member,
            &format!(
                "Member must have length less than or equal to {MAX_ENCRYPTION_CONTEXT_PAIRS}"
            ),
        ));
    }
    Ok(())
}

fn encryption_context_too_large(member: &str) -> KmsError {
    KmsError::validation(
        None,
        member,
        &format!(
            "Member must have keys and values of total length less than or equal to {MAX_ENCRYPTION_CONTEXT_BYTES} bytes"
        ),
    )
}

/// The key-state rule of cryptographic operations (AWS, "Key states of KMS keys": Encrypt,
/// Decrypt, GenerateDataKey*, ReEncrypt...). A pending-deletion key answers
/// KMSInvalidStateException, the form observed on the real service.
pub(crate) fn require_usable(r: &KeyRecord) -> Result<(), KmsError> {
    if matches!(r.state, KeyState::Enabled | KeyState::Updating) {
        return Ok(());
    }
    let arn = r.arn();
    match r.state {
        KeyState::Enabled | KeyState::Updating => Ok(()),
        KeyState::Disabled => Err(KmsError::Disabled(format!("{arn} is disabled."))),
        KeyState::PendingDeletion => Err(KmsError::InvalidState(format!(
            "{arn} is pending deletion."
        ))),
        KeyState::PendingReplicaDeletion => Err(KmsError::InvalidState(format!(
            "{arn} is pending replica deletion."
        ))),
        KeyState::PendingImport => Err(KmsError::InvalidState(format!("{arn} is pending import."))),
        KeyState::Unavailable => Err(KmsError::InvalidState(format!("{arn} is unavailable."))),
        KeyState::Creating => Err(KmsError::InvalidState(format!("{arn} is creating."))),
    }
}

/// The rule of management operations that fail only while the key waits
/// for deletion (UpdateKeyDescription, TagResource, CreateAlias, ...).
pub(crate) fn require_not_pending_deletion(r: &KeyRecord) -> Result<(), KmsError> {
    match r.state {
        KeyState::PendingDeletion => Err(KmsError::InvalidState(format!(
            "{} is pending deletion.",
            r.arn()
        ))),
        KeyState::PendingReplicaDeletion => Err(KmsError::InvalidState(format!(
            "{} is pending replica deletion.",
            r.arn()
        ))),
        _ => Ok(()),
    }
}

const MARKER_PREFIX: &str = "fk1:";

/// One page of a sorted listing. The marker is the sort key of the first
/// item of the next page, so a page boundary survives deletions.
pub(crate) fn page<T>(
    items: Vec<T>,
    sort_key: impl Fn(&T) -> String,
    limit: Option<u32>,
    default_limit: u32,
    max_limit: u32,
    marker: Option<&str>,
) -> Result<(Vec<T>, Option<String>), KmsError> {
    let limit = limit.unwrap_or(default_limit);
    if limit < 1 || limit > max_limit {
        return Err(KmsError::validation(
            Some(&limit.to_string()),
            "limit",
            &format!(
                "Member must have value {} {}",
                if limit < 1 {
                    "greater than or equal to"
                } else {
                    "less than or equal to"
                },
                if limit < 1 { 1 } else { max_limit }
            ),
        ));
    }
    let start = match marker {
        None => String::new(),
        Some(m) => m
            .strip_prefix(MARKER_PREFIX)
            .map(str::to_string)
            .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".into()))?,
    };
    let mut items = items;
    items.sort_by_cached_key(|i| sort_key(i));
    let mut rest: Vec<T> = items.into_iter().filter(|i| sort_key(i) >= start).collect();
    let next = if rest.len() > limit as usize {
        let tail = rest.split_off(limit as usize);
        tail.first()
            .map(|t| format!("{MARKER_PREFIX}{}", sort_key(t)))
    } else {
        None
    };
    Ok((rest, next))
}
