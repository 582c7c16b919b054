//! In-process KMS for tests: a [`Kms`] on a memory store, callers of every
//! kind built the way the edge builds them (a [`CallerProfile`] with
//! parsed identity-side policies; request facts for the global condition
//! keys), policy documents, keys, Encrypt/Decrypt/DescribeKey as one
//! call each, a KMS on disk that restarts, and AWS's AccessDenied and
//! ValidationException texts. [`material`]: EXTERNAL keys, importing,
//! rotating, listing and deleting key material.

use std::path::PathBuf;
use std::sync::Arc;

use ferrokms_authz::{CallerPolicy, CallerProfile, RequestContext, RequestFacts};
use ferrokms_kms::api::{
    Blob, CreateKeyRequest, DecryptRequest, DescribeKeyRequest, EncryptRequest, SecretBlob,
};
use ferrokms_kms::model::{KeyMetadata, KeySpec, KeyUsage};
use ferrokms_kms::{Caller, Kms, KmsError};
use ferrokms_policy::{Context, ParseOptions, Policy, PolicyKind, RequestPrincipal};
use ferrokms_store::{MemoryStore, Sealer, SqliteStore, Store};
use ferrokms_types::{AccountId, Region};

pub mod material;

/// The account that owns the tests' keys.
pub const ACCT: &str = "111122223333";
/// Another account: an external caller, or a cross-account grantee.
pub const OTHER: &str = "444455556666";

/// A day in milliseconds, for moving the service clock.
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// The plaintext [`encrypt`] encrypts.
pub const SECRET: &[u8] = b"secret";

/// us-east-1.
pub fn region() -> Region {
    Region::parse("us-east-1").unwrap()
}

/// A KMS on a fresh memory store with an ephemeral root key.
pub fn kms() -> Kms {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
    Kms::open(store, Arc::new(Sealer::ephemeral().unwrap())).unwrap()
}

/// The root user of `account`, in us-east-1.
pub fn root(account: &str) -> Caller {
    Caller::root(AccountId::parse(account).unwrap(), region())
}

/// The root user of [`ACCT`]: the owner of the tests' keys.
pub fn owner() -> Caller {
    root(ACCT)
}

/// `arn:aws:iam::ACCOUNT:root`.
pub fn root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

/// An identity-side policy of one Allow (or Deny) statement on every
/// resource.
pub fn statement(effect: &str, actions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": effect, "Action": actions, "Resource": "*"}]
    })
    .to_string()
}

/// An identity-side policy allowing `actions` on every resource.
pub fn allow(actions: &[&str]) -> String {
    statement("Allow", actions)
}

/// A caller with the given identity-side policies. `arn` is an IAM user
/// ARN, an assumed-role session ARN or an account's root; `role` the
/// session's role ARN.
pub fn principal(arn: &str, role: Option<&str>, policies: &[(PolicyKind, String)]) -> Caller {
    let mut p = RequestPrincipal::from_arn(arn).unwrap();
    if let Some(r) = role {
        p = p.with_role_arn(r);
    }
    let account = p.account().unwrap().as_str().to_string();
    let policies = policies
        .iter()
        .enumerate()
        .map(|(i, (kind, text))| CallerPolicy {
            label: format!("{kind:?} #{i}"),
            kind: *kind,
            policy: Arc::new(Policy::parse(text, &ParseOptions::for_kind(*kind)).unwrap()),
        })
        .collect();
    Caller {
        account: AccountId::parse(&account).unwrap(),
        region: region(),
        arn: arn.to_string(),
        profile: Arc::new(CallerProfile {
            principal: Some(p),
            policies,
            context: Context::new(),
        }),
        context: Default::default(),

        trace: Default::default(),
    }
}

/// The same caller, making a request with these facts (`aws:SourceIp`,
/// `kms:ViaService`, ...).
pub fn with_facts(caller: &Caller, facts: RequestFacts) -> Caller {
    Caller {
        profile: caller.profile.clone(),
        context: RequestContext::new(facts),

        ..caller.clone()
    }
}

/// IAM user `name` of [`ACCT`].
pub fn user(name: &str, policies: &[(PolicyKind, String)]) -> Caller {
    principal(&format!("arn:aws:iam::{ACCT}:user/{name}"), None, policies)
}

/// Role `role` of [`ACCT`].
pub fn role_arn(role: &str) -> String {
    format!("arn:aws:iam::{ACCT}:role/{role}")
}

/// Session `name` of role `role` of [`ACCT`].
pub fn session(role: &str, name: &str, policies: &[(PolicyKind, String)]) -> Caller {
    principal(
        &format!("arn:aws:sts::{ACCT}:assumed-role/{role}/{name}"),
        Some(&role_arn(role)),
        policies,
    )
}

/// A key of [`ACCT`] with `policy` (AWS's default when `None`), created by
/// its root without the lockout safety check (the tests state the policy
/// they mean); its ARN.
pub fn create_key(kms: &Kms, policy: Option<String>) -> String {
    kms.create_key(
        &owner(),
        CreateKeyRequest {
            policy,
            bypass_policy_lockout_safety_check: Some(true),
            ..Default::default()
        },
    )
    .unwrap()
    .key_metadata
    .arn
}

/// A key of `account` with AWS's default policy, created by its root; its
/// ARN.
pub fn default_key_in(kms: &Kms, account: &str) -> String {
    kms.create_key(&root(account), CreateKeyRequest::default())
        .unwrap()
        .key_metadata
        .arn
}

/// A key of [`ACCT`] with AWS's default policy and the given spec and
/// usage (the defaults when `None`); its key id.
pub fn new_key(kms: &Kms, spec: Option<KeySpec>, usage: Option<KeyUsage>) -> String {
    kms.create_key(
        &owner(),
        CreateKeyRequest {
            key_spec: spec,
            key_usage: usage,
            ..Default::default()
        },
    )
    .unwrap()
    .key_metadata
    .key_id
}

/// A plaintext for a request.
pub fn blob(b: &[u8]) -> SecretBlob {
    SecretBlob(zeroize::Zeroizing::new(b.to_vec()))
}

/// Encrypt of [`SECRET`] under `key` as `caller`; the ciphertext.
pub fn encrypt(kms: &Kms, caller: &Caller, key: &str) -> Result<Vec<u8>, KmsError> {
    kms.encrypt(
        caller,
        EncryptRequest {
            key_id: key.to_string(),
            plaintext: blob(SECRET),
            ..Default::default()
        },
    )
    .map(|r| r.ciphertext_blob.0)
}

/// Decrypt of `ciphertext` as `caller` (the key is the one the ciphertext
/// names); the plaintext.
pub fn decrypt(kms: &Kms, caller: &Caller, ciphertext: &[u8]) -> Result<Vec<u8>, KmsError> {
    kms.decrypt(
        caller,
        DecryptRequest {
            ciphertext_blob: Some(Blob(ciphertext.to_vec())),
            ..Default::default()
        },
    )
    .map(|r| r.plaintext.0.to_vec())
}

/// Decrypt of a ciphertext of [`SECRET`] (from [`encrypt`]) as `caller`:
/// checks the plaintext is [`SECRET`] and returns the KeyMaterialId that
/// Decrypt names, the material that made the ciphertext.
pub fn decrypted_by(kms: &Kms, caller: &Caller, ciphertext: &[u8]) -> Result<String, KmsError> {
    let out = kms.decrypt(
        caller,
        DecryptRequest {
            ciphertext_blob: Some(Blob(ciphertext.to_vec())),
            ..Default::default()
        },
    )?;
    assert_eq!(out.plaintext.0.as_slice(), SECRET);
    Ok(out.key_material_id.unwrap())
}

/// DescribeKey of `key` as `caller`: the key's metadata as that caller's
/// Region sees it.
pub fn describe(kms: &Kms, caller: &Caller, key: &str) -> KeyMetadata {
    kms.describe_key(
        caller,
        DescribeKeyRequest {
            key_id: key.into(),
            grant_tokens: None,
        },
    )
    .unwrap()
    .key_metadata
}

/// The ARN of `key` (a key of [`ACCT`] in us-east-1, as its owner sees it).
pub fn arn(kms: &Kms, key: &str) -> String {
    describe(kms, &owner(), key).arn
}

/// A SQLite database in a temporary directory and one root key: each
/// [`SqliteKms::open`] is the service starting on them, so dropping the
/// [`Kms`] and opening again is a restart.
pub struct SqliteKms {
    path: PathBuf,
    sealer: Arc<Sealer>,
    _dir: tempfile::TempDir,
}

impl SqliteKms {
    /// A new, empty database and a new ephemeral root key.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        SqliteKms {
            path: dir.path().join("kms.db"),
            sealer: Arc::new(Sealer::ephemeral().unwrap()),
            _dir: dir,
        }
    }

    /// A KMS on the database, under the root key.
    pub fn open(&self) -> Kms {
        Kms::open(
            Arc::new(SqliteStore::open(&self.path).unwrap()) as Arc<dyn Store>,
            self.sealer.clone(),
        )
        .unwrap()
    }
}

impl Default for SqliteKms {
    fn default() -> Self {
        Self::new()
    }
}

/// The message of an AccessDenied; panics on any other outcome.
pub fn denied(r: Result<impl std::fmt::Debug, KmsError>) -> String {
    match r {
        Err(KmsError::AccessDenied(m)) => m,
        other => panic!("expected AccessDenied, got {other:?}"),
    }
}

/// The message of a ValidationException; panics on any other outcome.
pub fn validation(r: Result<impl std::fmt::Debug, KmsError>) -> String {
    match r {
        Err(KmsError::Validation(m)) => m,
        other => panic!("expected ValidationException, got {other:?}"),
    }
}

/// AWS's text of an implicit deny: no policy of kind `reason`
/// ("identity-based policy", "resource-based policy", "session policy",
/// "permissions boundary") allows the action.
pub fn no_allow(caller: &Caller, action: &str, resource: &str, reason: &str) -> String {
    format!(
        "User: {} is not authorized to perform: kms:{action} on resource: {resource} because no {reason} allows the kms:{action} action",
        caller.arn
    )
}

/// AWS's text of an explicit deny in a policy of kind `place`.
pub fn explicit_deny(caller: &Caller, action: &str, resource: &str, place: &str) -> String {
    format!(
        "User: {} is not authorized to perform: kms:{action} on resource: {resource} with an explicit deny in {place}",
        caller.arn
    )
}
