//! Declarative bootstrap: a TOML file describing accounts, IAM entities,
//! access keys and KMS keys, applied idempotently at start (`ferrokms serve
//! --bootstrap FILE`). The format is documented in docs/identity.md.
//!
//! Everything is applied as the account's root user through the same
//! operations the APIs use, so every name rule and limit holds. What exists
//! already is left alone, or brought in line when it differs (policy
//! documents, trust policies, attachments, memberships, tags, boundaries);
//! nothing is deleted. Running the same file twice changes nothing.
//!
//! One file of about 1000 lines of code: the file's shape, its offline
//! checks and the applier share the entry types. The part that could move
//! is the reading of key entries with fixed ids and given material
//! (`seed_key_of`, `material_bytes`, `raw_or_pem`), which `localkms` uses
//! too: it could become a module of its own beside `localkms`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferrokms_iam::ops_owner::Owner;
use ferrokms_iam::Taggable;
use ferrokms_iam::{AccessKey, Directory, PolicyDoc, Principal, Tag};
use ferrokms_kms::{Caller, Kms};
use ferrokms_types::{AccountId, Region};
use serde::Deserialize;

/// Why a bootstrap file could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The file could not be read.
    #[error("cannot read bootstrap file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The file is not valid TOML of the expected shape.
    #[error("bootstrap file {0}: {1}")]
    Parse(PathBuf, String),
    /// The file asks for something impossible (a bad account id, key and secret given apart...).
    #[error("bootstrap: {0}")]
    Invalid(String),
    /// An IAM operation the file asked for failed.
    #[error("bootstrap: {what}: {source}")]
    Iam {
        /// What was being done (`create user NAME`).
        what: String,
        /// The IAM error.
        source: ferrokms_iam::IamError,
    },
    /// A KMS operation the file asked for failed.
    #[error("bootstrap: {what}: {source}")]
    Kms {
        /// What was being done (`create key alias/NAME`).
        what: String,
        /// The KMS error.
        source: ferrokms_kms::KmsError,
    },
    /// The credentials file could not be written.
    #[error("bootstrap: cannot write credentials file {0}: {1}")]
    Credentials(PathBuf, std::io::Error),
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapFile {
    /// Where generated access keys (and new accounts' root keys) are
    /// written, as an AWS shared-credentials file (mode 0600). Relative to
    /// the data directory.
    pub credentials_file: Option<PathBuf>,
    /// The accounts, applied in order.
    #[serde(default)]
    pub accounts: Vec<AccountSpec>,
}

/// One `[[accounts]]` table: an account and what it should contain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// The 12-digit account id; the account is created if it does not exist.
    pub id: String,
    /// Customer-managed policies.
    #[serde(default)]
    pub policies: Vec<PolicySpec>,
    /// IAM groups.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// IAM users.
    #[serde(default)]
    pub users: Vec<UserSpec>,
    /// IAM roles.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// KMS keys, identified by alias.
    #[serde(default)]
    pub keys: Vec<KeySpecEntry>,
}

/// A customer-managed policy.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The policy name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// The policy document (JSON).
    pub document: String,
}

/// An IAM group.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The group name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// Inline policies: name to document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Managed policies to attach: names of this file's or the account's policies, or ARNs.
    #[serde(default)]
    pub managed_policies: Vec<String>,
}

/// An IAM user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// The user name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The groups the user is a member of, by name.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Inline policies: name to document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Managed policies to attach: names of this file's or the account's policies, or ARNs.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// The permissions boundary: a managed policy's name or ARN.
    pub permissions_boundary: Option<String>,
    /// Tags: key to value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Access keys of the user.
    #[serde(default)]
    pub access_keys: Vec<AccessKeySpec>,
}

/// An access key of a bootstrap user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeySpec {
    /// Given id and secret (both or neither). Without them a key is
    /// generated once (when the user has none) and written to the
    /// credentials file.
    pub id: Option<String>,
    /// The secret access key that goes with `id`.
    pub secret: Option<String>,
    /// Profile name in the credentials file (default: the user name).
    pub profile: Option<String>,
}

/// An IAM role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// The role name.
    pub name: String,
    /// The path (default `/`).
    pub path: Option<String>,
    /// The description.
    pub description: Option<String>,
    /// The trust policy (JSON): who may assume the role.
    pub trust_policy: String,
    /// The longest session AssumeRole may grant, in seconds.
    pub max_session_duration: Option<u32>,
    /// Inline policies: name to document.
    #[serde(default)]
    pub inline_policies: BTreeMap<String, String>,
    /// Managed policies to attach: names of this file's or the account's policies, or ARNs.
    #[serde(default)]
    pub managed_policies: Vec<String>,
    /// The permissions boundary: a managed policy's name or ARN.
    pub permissions_boundary: Option<String>,
    /// Tags: key to value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A KMS key. Without `key_id` it is identified by its alias and created
/// (with generated material) only when the alias does not exist. With
/// `key_id` it is identified by the id, and may be given its creation date,
/// its origin, its materials (the rotation history, oldest first) and, for
/// a multi-Region key, its replicas; see docs/keys.md, "Keys with fixed ids
/// and given material".
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpecEntry {
    /// The alias; created pointing at the key when it does not exist.
    /// Required without `key_id`.
    pub alias: Option<String>,
    /// The key id: a UUID, or `mrk-` and 32 hex digits for a multi-Region key.
    pub key_id: Option<String>,
    /// The creation date (RFC 3339; `key_id` only; default: when created).
    pub created: Option<DateText>,
    /// `AWS_KMS` (default) or `EXTERNAL` (`key_id` only).
    pub origin: Option<String>,
    /// The key's materials, oldest first; the last is current (`key_id` only).
    #[serde(default)]
    pub materials: Vec<MaterialEntry>,
    /// Regions of the replicas of a multi-Region key (`key_id` only).
    #[serde(default)]
    pub replica_regions: Vec<String>,
    /// The region (default `us-east-1`).
    pub region: Option<String>,
    /// The key's description.
    pub description: Option<String>,
    /// The key spec (default `SYMMETRIC_DEFAULT`).
    pub key_spec: Option<String>,
    /// The key usage (default: the spec's usual one).
    pub key_usage: Option<String>,
    /// The key policy (default: the account's default key policy).
    pub policy: Option<String>,
    /// Tags: key to value.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A date in a bootstrap file: a TOML date-time or an RFC 3339 string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DateText {
    /// A TOML date-time (`created = 2024-01-31T12:00:00Z`).
    Toml(toml::value::Datetime),
    /// A string (`created = "2024-01-31T12:00:00Z"`).
    Text(String),
}

impl DateText {
    /// Milliseconds since the epoch (whole seconds).
    pub fn epoch_ms(&self) -> Option<i64> {
        let text = match self {
            DateText::Toml(d) => d.to_string(),
            DateText::Text(t) => t.clone(),
        };
        let t: ferrokms_policy::Timestamp = text.parse().ok()?;
        t.epoch_seconds().checked_mul(1000)
    }
}

/// Text that holds key material: wiped when dropped, never shown by `Debug`.
#[derive(Default)]
pub struct SecretText(pub zeroize::Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SecretText, D::Error> {
        Ok(SecretText(zeroize::Zeroizing::new(String::deserialize(d)?)))
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretText(..)")
    }
}

/// One material of a key: exactly one of `base64`, `hex` (symmetric and
/// HMAC keys: the raw key bytes) or `pem` (RSA and ECC keys: the private
/// key, PKCS#8 or the traditional PKCS#1 / SEC 1 form).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialEntry {
    /// The raw key bytes, base64.
    pub base64: Option<SecretText>,
    /// The raw key bytes, hex.
    pub hex: Option<SecretText>,
    /// The private key, PEM.
    pub pem: Option<SecretText>,
    /// When this material became current (default: the key's creation
    /// date for the first, the previous material's date for later ones).
    pub created: Option<DateText>,
    /// EXTERNAL keys: when the material expires (default: never).
    pub valid_to: Option<DateText>,
}

/// What applying a file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// One line per change; empty when everything was already in place.
    pub changes: Vec<String>,
}

/// Reads and parses a bootstrap file (no change to any state).
pub fn load(path: &Path) -> Result<BootstrapFile, BootstrapError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| BootstrapError::Read(path.to_path_buf(), e))?;
    parse(&text).map_err(|e| match e {
        BootstrapError::Parse(_, m) => BootstrapError::Parse(path.to_path_buf(), m),
        other => other,
    })
}

/// Parses a bootstrap document and checks what can be checked offline:
/// account ids, policy documents, alias names, key-access pairs.
pub fn parse(text: &str) -> Result<BootstrapFile, BootstrapError> {
    let file: BootstrapFile = toml::from_str(text)
        .map_err(|e| BootstrapError::Parse(PathBuf::new(), toml_message(text, &e)))?;
    check(&file)?;
    Ok(file)
}

/// A TOML error's message and line, without the excerpt of the file that
/// its `Display` shows: that line may hold key material.
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = hide_strings(e.message().trim());
    match e.span() {
        Some(span) => format!(
            "line {}: {message}",
            text.get(..span.start)
                .map_or(0, |t| t.matches('\n').count() + 1),
        ),
        None => message,
    }
}

/// A parser's message with the text of any string value it quotes left
/// out (`invalid type: string "...", expected a sequence`): the value may
/// be key material.
pub(crate) fn hide_strings(message: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        out.push_str("a string (value not shown)");
        let after = &rest[at + MARK.len()..];
        // The value ends at the last quote before ", expected" (or the
        // last quote of the message).
        let end = after
            .find("\", expected")
            .or_else(|| after.rfind('"'))
            .unwrap_or(after.len());
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

fn check(file: &BootstrapFile) -> Result<(), BootstrapError> {
    let bad = |m: String| BootstrapError::Invalid(m);
    let doc = |what: &str, text: &str, kind: ferrokms_iam::DocKind| {
        PolicyDoc::parse(text, kind)
            .map(|_| ())
            .map_err(|e| BootstrapError::Invalid(format!("{what}: {e}")))
    };
    use ferrokms_iam::DocKind::{Identity, Trust};
    for a in &file.accounts {
        AccountId::parse(&a.id)
            .map_err(|_| bad(format!("account id '{}' is not 12 digits", a.id)))?;
        for p in &a.policies {
            doc(&format!("policy {}", p.name), &p.document, Identity)?;
        }
        for g in &a.groups {
            for (n, t) in &g.inline_policies {
                doc(&format!("group {} policy {n}", g.name), t, Identity)?;
            }
        }
        for u in &a.users {
            for (n, t) in &u.inline_policies {
                doc(&format!("user {} policy {n}", u.name), t, Identity)?;
            }
            for k in &u.access_keys {
                if k.id.is_some() != k.secret.is_some() {
                    return Err(bad(format!(
                        "user {}: an access key needs both id and secret, or neither",
                        u.name
                    )));
                }
                if k.id.is_none() && file.credentials_file.is_none() {
                    return Err(bad(format!(
                        "user {}: a generated access key needs credentials_file",
                        u.name
                    )));
                }
            }
        }
        for r in &a.roles {
            doc(
                &format!("role {} trust policy", r.name),
                &r.trust_policy,
                Trust,
            )?;
            for (n, t) in &r.inline_policies {
                doc(&format!("role {} policy {n}", r.name), t, Identity)?;
            }
        }
        let account = AccountId::parse(&a.id)
            .map_err(|_| bad(format!("account id '{}' is not 12 digits", a.id)))?;
        for k in &a.keys {
            if let Some(alias) = &k.alias {
                if !alias.starts_with("alias/") || alias.starts_with("alias/aws/") {
                    return Err(bad(format!(
                        "key alias '{alias}' must start with alias/ (and not alias/aws/)"
                    )));
                }
            }
            if let Some(r) = &k.region {
                Region::parse(r).map_err(|_| bad(format!("{}: bad region '{r}'", k.name())))?;
            }
            // Reads and checks the materials too (without keeping them).
            seed_key_of(&account, k)?;
        }
    }
    Ok(())
}

fn tags_of(map: &BTreeMap<String, String>) -> Vec<Tag> {
    map.iter()
        .map(|(k, v)| Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// A policy reference: an ARN, or the name of a policy of the account.
fn policy_arn(dir: &Directory, account: &AccountId, r: &str) -> Result<String, BootstrapError> {
    if r.starts_with("arn:") {
        return Ok(r.to_string());
    }
    dir.managed_policy_by_name(account, r)
        .map(|p| p.arn())
        .ok_or_else(|| {
            BootstrapError::Invalid(format!("no managed policy named '{r}' in {account}"))
        })
}

/// Applies a file's parts in order, noting each change.
pub(crate) struct Applier<'a> {
    dir: &'a Directory,
    kms: &'a Kms,
    report: Report,
    /// Profiles to write: name -> (id, secret).
    profiles: Vec<(String, String, String)>,
}

impl<'a> Applier<'a> {
    /// An applier with nothing done yet.
    pub(crate) fn new(dir: &'a Directory, kms: &'a Kms) -> Applier<'a> {
        Applier {
            dir,
            kms,
            report: Report::default(),
            profiles: Vec::new(),
        }
    }

    /// What was done.
    pub(crate) fn into_report(self) -> Report {
        self.report
    }

    fn iam<T>(
        &self,
        what: impl Fn() -> String,
        r: Result<T, ferrokms_iam::IamError>,
    ) -> Result<T, BootstrapError> {
        r.map_err(|source| BootstrapError::Iam {
            what: what(),
            source,
        })
    }

    pub(crate) fn note(&mut self, s: String) {
        tracing::info!(change = %s, "bootstrap");
        self.report.changes.push(s);
    }

    fn inline(
        &mut self,
        root: &ferrokms_iam::Caller,
        owner: Owner,
        name: &str,
        wanted: &BTreeMap<String, String>,
    ) -> Result<(), BootstrapError> {
        let account = root.account().clone();
        let (_, current, _) = self.iam(
            || format!("{owner:?} {name}"),
            self.dir.policies_of(&account, owner, name),
        )?;
        for (pname, text) in wanted {
            if current.get(pname).map(|d| d.text.as_str()) != Some(text.as_str()) {
                self.iam(
                    || format!("{owner:?} {name} policy {pname}"),
                    self.dir.put_inline_policy(root, owner, name, pname, text),
                )?;
                self.note(format!("put {owner:?} {name} inline policy {pname}"));
            }
        }
        Ok(())
    }

    fn attach(
        &mut self,
        root: &ferrokms_iam::Caller,
        owner: Owner,
        name: &str,
        wanted: &[String],
    ) -> Result<(), BootstrapError> {
        let account = root.account().clone();
        let (_, _, attached) = self.iam(
            || format!("{owner:?} {name}"),
            self.dir.policies_of(&account, owner, name),
        )?;
        for r in wanted {
            let arn = policy_arn(self.dir, &account, r)?;
            if !attached.contains(&arn) {
                self.iam(
                    || format!("attach {arn} to {owner:?} {name}"),
                    self.dir.attach_policy(root, owner, name, &arn),
                )?;
                self.note(format!("attached {arn} to {owner:?} {name}"));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn tags_and_boundary(
        &mut self,
        root: &ferrokms_iam::Caller,
        what: Taggable,
        name: &str,
        current_tags: &[Tag],
        current_boundary: Option<&str>,
        tags: &BTreeMap<String, String>,
        boundary: Option<&str>,
    ) -> Result<(), BootstrapError> {
        let account = root.account().clone();
        let missing: Vec<Tag> = tags_of(tags)
            .into_iter()
            .filter(|t| !current_tags.contains(t))
            .collect();
        if !missing.is_empty() {
            self.iam(
                || format!("tag {what:?} {name}"),
                self.dir.tag(root, what, name, missing),
            )?;
            self.note(format!("tagged {what:?} {name}"));
        }
        if let Some(b) = boundary {
            let arn = policy_arn(self.dir, &account, b)?;
            if current_boundary != Some(arn.as_str()) {
                self.iam(
                    || format!("boundary of {what:?} {name}"),
                    self.dir.put_permissions_boundary(root, what, name, &arn),
                )?;
                self.note(format!("set permissions boundary of {what:?} {name}"));
            }
        }
        Ok(())
    }

    fn account(&mut self, a: &AccountSpec) -> Result<(), BootstrapError> {
        let account = AccountId::parse(&a.id)
            .map_err(|_| BootstrapError::Invalid(format!("bad account id {}", a.id)))?;
        if !self.dir.account_exists(&account) {
            let key = self.iam(
                || format!("account {account}"),
                self.dir.create_account(&account),
            )?;
            self.profiles.push((
                format!("root-{account}"),
                key.id.clone(),
                key.secret.to_string(),
            ));
            self.note(format!("created account {account}"));
        }
        let root = ferrokms_iam::Caller::root(account.clone());
        for p in &a.policies {
            match self.dir.managed_policy_by_name(&account, &p.name) {
                None => {
                    self.iam(
                        || format!("policy {}", p.name),
                        self.dir.create_policy(
                            &root,
                            &p.name,
                            p.path.as_deref(),
                            &p.document,
                            p.description.as_deref(),
                        ),
                    )?;
                    self.note(format!("created policy {}", p.name));
                }
                Some(existing) => {
                    if existing.default_doc().map(|d| d.text.as_str()) != Some(p.document.as_str())
                    {
                        let arn = existing.arn();
                        if existing.versions.len() >= 5 {
                            if let Some(old) = existing
                                .versions
                                .iter()
                                .find(|v| v.version_id != existing.default_version)
                            {
                                self.iam(
                                    || format!("policy {}", p.name),
                                    self.dir.delete_policy_version(&root, &arn, &old.version_id),
                                )?;
                            }
                        }
                        self.iam(
                            || format!("policy {}", p.name),
                            self.dir
                                .create_policy_version(&root, &arn, &p.document, true),
                        )?;
                        self.note(format!("new default version of policy {}", p.name));
                    }
                }
            }
        }
        for g in &a.groups {
            if self.dir.find_group(&account, &g.name).is_none() {
                self.iam(
                    || format!("group {}", g.name),
                    self.dir.create_group(&root, &g.name, g.path.as_deref()),
                )?;
                self.note(format!("created group {}", g.name));
            }
            self.inline(&root, Owner::Group, &g.name, &g.inline_policies)?;
            self.attach(&root, Owner::Group, &g.name, &g.managed_policies)?;
        }
        for u in &a.users {
            let user = match self.dir.find_user(&account, &u.name) {
                Some(x) => x,
                None => {
                    let x = self.iam(
                        || format!("user {}", u.name),
                        self.dir
                            .create_user(&root, &u.name, u.path.as_deref(), Vec::new(), None),
                    )?;
                    self.note(format!("created user {}", u.name));
                    x
                }
            };
            self.tags_and_boundary(
                &root,
                Taggable::User,
                &u.name,
                &user.tags,
                user.boundary.as_deref(),
                &u.tags,
                u.permissions_boundary.as_deref(),
            )?;
            self.inline(&root, Owner::User, &u.name, &u.inline_policies)?;
            self.attach(&root, Owner::User, &u.name, &u.managed_policies)?;
            for g in &u.groups {
                let group = self.dir.find_group(&account, g).ok_or_else(|| {
                    BootstrapError::Invalid(format!("user {}: no group {g}", u.name))
                })?;
                if !group.has_member(&u.name) {
                    self.iam(
                        || format!("add {} to {g}", u.name),
                        self.dir.add_user_to_group(&root, g, &u.name),
                    )?;
                    self.note(format!("added user {} to group {g}", u.name));
                }
            }
            let principal = Principal::User {
                account: account.clone(),
                name: user.name.clone(),
                path: user.path.clone(),
                id: user.id.clone(),
            };
            let existing = self.iam(
                || format!("user {}", u.name),
                self.dir.list_access_keys(&root, Some(&u.name)),
            )?;
            for k in &u.access_keys {
                match (&k.id, &k.secret) {
                    (Some(id), Some(secret)) => {
                        if !existing.iter().any(|e| &e.id == id) {
                            self.iam(
                                || format!("access key {id} of {}", u.name),
                                self.dir.import_access_key(principal.clone(), id, secret),
                            )?;
                            self.note(format!("imported access key {id} for user {}", u.name));
                        }
                    }
                    _ => {
                        if existing.is_empty() {
                            let key: std::sync::Arc<AccessKey> = self.iam(
                                || format!("access key of {}", u.name),
                                self.dir.create_access_key(&root, Some(&u.name)),
                            )?;
                            self.profiles.push((
                                k.profile.clone().unwrap_or_else(|| u.name.clone()),
                                key.id.clone(),
                                key.secret.to_string(),
                            ));
                            self.note(format!("generated access key for user {}", u.name));
                        }
                    }
                }
            }
        }
        for r in &a.roles {
            let role = match self.dir.find_role(&account, &r.name) {
                Some(x) => {
                    if x.trust.text != r.trust_policy {
                        self.iam(
                            || format!("role {}", r.name),
                            self.dir
                                .update_assume_role_policy(&root, &r.name, &r.trust_policy),
                        )?;
                        self.note(format!("updated trust policy of role {}", r.name));
                    }
                    x
                }
                None => {
                    let x = self.iam(
                        || format!("role {}", r.name),
                        self.dir.create_role(
                            &root,
                            &r.name,
                            r.path.as_deref(),
                            &r.trust_policy,
                            r.description.as_deref(),
                            r.max_session_duration,
                            Vec::new(),
                            None,
                        ),
                    )?;
                    self.note(format!("created role {}", r.name));
                    x
                }
            };
            self.tags_and_boundary(
                &root,
                Taggable::Role,
                &r.name,
                &role.tags,
                role.boundary.as_deref(),
                &r.tags,
                r.permissions_boundary.as_deref(),
            )?;
            self.inline(&root, Owner::Role, &r.name, &r.inline_policies)?;
            self.attach(&root, Owner::Role, &r.name, &r.managed_policies)?;
        }
        Ok(())
    }

    fn key(&mut self, account: &AccountId, k: &KeySpecEntry) -> Result<(), BootstrapError> {
        if let Some(seed) = seed_key_of(account, k)? {
            return self.seeded_key(seed, k.alias.as_deref(), &k.name());
        }
        let Some(alias) = k.alias.as_deref() else {
            return Err(BootstrapError::Invalid(
                "a key needs an alias or a key_id".into(),
            ));
        };
        let region_name = k.region.as_deref().unwrap_or("us-east-1");
        let region = Region::parse(region_name)
            .map_err(|_| BootstrapError::Invalid(format!("bad region {region_name}")))?;
        let caller = Caller::root(account.clone(), region);
        let kms_err = |what: String| move |source| BootstrapError::Kms { what, source };
        if self
            .kms
            .describe_key(&caller, req(alias, serde_json::json!({ "KeyId": alias }))?)
            .is_ok()
        {
            return Ok(());
        }
        let mut create = serde_json::Map::new();
        if let Some(d) = &k.description {
            create.insert("Description".into(), d.clone().into());
        }
        if let Some(s) = &k.key_spec {
            create.insert("KeySpec".into(), s.clone().into());
        }
        if let Some(u) = &k.key_usage {
            create.insert("KeyUsage".into(), u.clone().into());
        }
        if let Some(p) = &k.policy {
            create.insert("Policy".into(), p.clone().into());
        }
        if !k.tags.is_empty() {
            create.insert(
                "Tags".into(),
                k.tags
                    .iter()
                    .map(|(key, v)| serde_json::json!({ "TagKey": key, "TagValue": v }))
                    .collect::<Vec<_>>()
                    .into(),
            );
        }
        let created = self
            .kms
            .create_key(&caller, req(alias, serde_json::Value::Object(create))?)
            .map_err(kms_err(format!("key {alias}")))?;
        let key_id = serde_json::to_value(&created)
            .ok()
            .and_then(|v| v["KeyMetadata"]["KeyId"].as_str().map(str::to_string))
            .ok_or_else(|| BootstrapError::Invalid(format!("key {alias}: no KeyId")))?;
        self.kms
            .create_alias(
                &caller,
                req(
                    alias,
                    serde_json::json!({ "AliasName": alias, "TargetKeyId": key_id }),
                )?,
            )
            .map_err(kms_err(format!("alias {alias}")))?;
        self.note(format!(
            "created key {key_id} with {alias} in {region_name}"
        ));
        Ok(())
    }

    /// A key with a fixed id ([`Kms::seed_key`]) and its alias, if any.
    pub(crate) fn seeded_key(
        &mut self,
        seed: ferrokms_kms::SeedKey,
        alias: Option<&str>,
        name: &str,
    ) -> Result<(), BootstrapError> {
        let account = seed.account.clone();
        let region = seed.region.clone();
        let key_id = seed.key_id.to_string();
        let out = self
            .kms
            .seed_key(seed)
            .map_err(|source| BootstrapError::Kms {
                what: name.to_string(),
                source,
            })?;
        for arn in out.created {
            self.note(format!("created key {arn}"));
        }
        if let Some(alias) = alias {
            self.alias(&account, &region, alias, &key_id, name)?;
        }
        Ok(())
    }

    /// Makes `alias` point at `key_id`, unless it does already; an alias
    /// that points at another key is an error.
    pub(crate) fn alias(
        &mut self,
        account: &AccountId,
        region: &Region,
        alias: &str,
        key_id: &str,
        name: &str,
    ) -> Result<(), BootstrapError> {
        let caller = Caller::root(account.clone(), region.clone());
        let current = self
            .kms
            .describe_key(&caller, req(name, serde_json::json!({ "KeyId": alias }))?)
            .ok()
            .and_then(|m| serde_json::to_value(&m).ok())
            .and_then(|v| v["KeyMetadata"]["KeyId"].as_str().map(str::to_string));
        match current {
            Some(id) if id.eq_ignore_ascii_case(key_id) => Ok(()),
            Some(id) => Err(BootstrapError::Invalid(format!(
                "{name}: alias {alias} in {account} {region} points at key {id}, not at {key_id}"
            ))),
            None => {
                self.kms
                    .create_alias(
                        &caller,
                        req(
                            name,
                            serde_json::json!({ "AliasName": alias, "TargetKeyId": key_id }),
                        )?,
                    )
                    .map_err(|source| BootstrapError::Kms {
                        what: format!("{name}: alias {alias}"),
                        source,
                    })?;
                self.note(format!(
                    "created alias {alias} for key {key_id} in {region}"
                ));
                Ok(())
            }
        }
    }
}

/// A typed KMS request from JSON built here.
fn req<T: serde::de::DeserializeOwned>(
    what: &str,
    v: serde_json::Value,
) -> Result<T, BootstrapError> {
    serde_json::from_value(v).map_err(|e| BootstrapError::Invalid(format!("{what}: {e}")))
}

impl KeySpecEntry {
    /// How errors name the entry: its alias, else its key id.
    pub fn name(&self) -> String {
        match (&self.alias, &self.key_id) {
            (Some(a), _) => format!("key {a}"),
            (None, Some(id)) => format!("key {id}"),
            (None, None) => "key (no alias, no key_id)".into(),
        }
    }
}

/// The key a `key_id` entry describes, its materials read and checked;
/// `None` for an entry identified by alias alone.
fn seed_key_of(
    account: &AccountId,
    k: &KeySpecEntry,
) -> Result<Option<ferrokms_kms::SeedKey>, BootstrapError> {
    use ferrokms_kms::model::{KeySpec, KeyUsage, Origin};
    let name = k.name();
    let bad = |m: String| BootstrapError::Invalid(format!("{name}: {m}"));
    let Some(id_text) = &k.key_id else {
        if !k.materials.is_empty()
            || k.created.is_some()
            || k.origin.is_some()
            || !k.replica_regions.is_empty()
        {
            return Err(bad(
                "materials, created, origin and replica_regions need a key_id (ciphertexts name their key by id)".into(),
            ));
        }
        if k.alias.is_none() {
            return Err(BootstrapError::Invalid(
                "a key needs an alias or a key_id".into(),
            ));
        }
        return Ok(None);
    };
    let key_id = ferrokms_kms::ids::KeyId::parse(id_text).ok_or_else(|| {
        bad(format!(
            "key_id '{id_text}' is not a key id: a UUID (1234abcd-12ab-34cd-56ef-1234567890ab), or mrk- and 32 hex digits for a multi-Region key"
        ))
    })?;
    let region_name = k.region.as_deref().unwrap_or("us-east-1");
    let region =
        Region::parse(region_name).map_err(|_| bad(format!("bad region '{region_name}'")))?;
    let spec_name = k.key_spec.as_deref().unwrap_or("SYMMETRIC_DEFAULT");
    let spec =
        KeySpec::parse(spec_name).ok_or_else(|| bad(format!("unknown key_spec '{spec_name}'")))?;
    let usage = match &k.key_usage {
        Some(u) => Some(KeyUsage::parse(u).ok_or_else(|| bad(format!("unknown key_usage '{u}'")))?),
        None if spec == KeySpec::SymmetricDefault => None,
        None if spec.mac_algorithm().is_some() => Some(KeyUsage::GenerateVerifyMac),
        None => return Err(bad(format!("key_usage is required for key spec {spec}"))),
    };
    let origin = match k.origin.as_deref() {
        None | Some("AWS_KMS") => Origin::AwsKms,
        Some("EXTERNAL") => Origin::External,
        Some(o) => return Err(bad(format!("origin '{o}' is not AWS_KMS or EXTERNAL"))),
    };
    let date = |what: &str, d: &DateText| {
        d.epoch_ms().ok_or_else(|| {
            bad(format!(
                "{what} is not an RFC 3339 date (2024-01-31T12:00:00Z)"
            ))
        })
    };
    let created = k.created.as_ref().map(|d| date("created", d)).transpose()?;
    let mut materials = Vec::new();
    for (i, m) in k.materials.iter().enumerate() {
        let what = format!("material {}", i + 1);
        let bytes = material_bytes(spec, m).map_err(|e| bad(format!("{what} {e}")))?;
        materials.push(ferrokms_kms::GivenMaterial {
            bytes,
            created_ms: m
                .created
                .as_ref()
                .map(|d| date(&format!("{what} created"), d))
                .transpose()?,
            valid_to_ms: m
                .valid_to
                .as_ref()
                .map(|d| date(&format!("{what} valid_to"), d))
                .transpose()?,
        });
    }
    let replica_regions = k
        .replica_regions
        .iter()
        .map(|r| Region::parse(r).map_err(|_| bad(format!("bad replica region '{r}'"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(ferrokms_kms::SeedKey {
        account: account.clone(),
        region,
        key_id,
        created_ms: created,
        description: k.description.clone().unwrap_or_default(),
        key_spec: spec,
        key_usage: usage,
        origin,
        policy: k.policy.clone(),
        tags: k
            .tags
            .iter()
            .map(|(key, value)| ferrokms_kms::model::Tag {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        materials,
        replica_regions,
        next_rotation_ms: None,
    }))
}

/// The stored form of one material entry, checked against the key spec.
/// The message (after "material N") never shows the material.
fn material_bytes(
    spec: ferrokms_kms::model::KeySpec,
    m: &MaterialEntry,
) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    use base64::Engine;
    let raw = match (&m.base64, &m.hex, &m.pem) {
        (Some(b), None, None) => Some(zeroize::Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b.0.trim().as_bytes())
                .map_err(|_| "is not valid base64".to_string())?,
        )),
        (None, Some(h), None) => Some(zeroize::Zeroizing::new(
            hex::decode(h.0.trim()).map_err(|_| "is not valid hex".to_string())?,
        )),
        (None, None, Some(_)) => None,
        _ => return Err("needs exactly one of base64, hex or pem".into()),
    };
    raw_or_pem(spec, raw, m.pem.as_ref().map(|p| p.0.as_str()))
}

/// Raw bytes for a symmetric or HMAC spec, PEM for a private key; checked
/// against the spec (lengths, PEM form, RSA size, curve). The message
/// never shows the material.
pub(crate) fn raw_or_pem(
    spec: ferrokms_kms::model::KeySpec,
    raw: Option<zeroize::Zeroizing<Vec<u8>>>,
    pem: Option<&str>,
) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    use ferrokms_kms::model::KeySpec;
    let symmetric = spec == KeySpec::SymmetricDefault;
    let hmac = ferrokms_kms::keymat::hmac_import_len(spec);
    match (raw, pem) {
        (Some(bytes), None) => {
            if symmetric && bytes.len() != 32 {
                return Err(format!(
                    "has {} bytes; SYMMETRIC_DEFAULT material is exactly 32 bytes (AES-256)",
                    bytes.len()
                ));
            }
            if let Some(range) = &hmac {
                if !range.contains(&bytes.len()) {
                    return Err(format!(
                        "has {} bytes; {spec} material is {} to {} bytes",
                        bytes.len(),
                        range.start(),
                        range.end()
                    ));
                }
            }
            if !symmetric && hmac.is_none() {
                return Err(format!(
                    "is raw bytes; a {spec} key's material is a private key: give it as pem"
                ));
            }
            Ok(bytes)
        }
        (None, Some(text)) => {
            if symmetric || hmac.is_some() {
                return Err(format!(
                    "is PEM; a {spec} key's material is raw bytes: give it as base64 or hex"
                ));
            }
            let (label, der) = ferrokms_kms::given::decode_private_key_pem(text)?;
            ferrokms_kms::given::private_key_to_pkcs8(spec, Some(label), &der)
        }
        _ => Err("needs exactly one of base64, hex or pem".into()),
    }
}

/// Applies a parsed file. `base` resolves a relative credentials path.
pub fn apply(
    dir: &Directory,
    kms: &Kms,
    file: &BootstrapFile,
    base: &Path,
) -> Result<Report, BootstrapError> {
    check(file)?;
    let mut ap = Applier::new(dir, kms);
    // IAM first for every account, then keys, so that key policies may name
    // principals of any account in the file.
    let result = file
        .accounts
        .iter()
        .try_for_each(|a| ap.account(a))
        .and_then(|()| {
            file.accounts.iter().try_for_each(|a| {
                let account = AccountId::parse(&a.id)
                    .map_err(|_| BootstrapError::Invalid(format!("bad account id {}", a.id)))?;
                a.keys.iter().try_for_each(|k| ap.key(&account, k))
            })
        });
    // Secrets generated before a failure must not be lost.
    if !ap.profiles.is_empty() {
        if let Some(p) = &file.credentials_file {
            let path = base.join(p);
            write_profiles(&path, &ap.profiles)
                .map_err(|e| BootstrapError::Credentials(path.clone(), e))?;
        }
    }
    result?;
    Ok(ap.report)
}

/// Loads and applies a file; a relative `credentials_file` is resolved
/// against `base` (the data directory).
pub fn apply_file(
    dir: &Directory,
    kms: &Kms,
    path: &Path,
    base: &Path,
) -> Result<Report, BootstrapError> {
    let file = load(path)?;
    apply(dir, kms, &file, base)
}

/// Adds or replaces profiles in a shared-credentials file, keeping the
/// others; written with mode 0600.
fn write_profiles(path: &Path, profiles: &[(String, String, String)]) -> std::io::Result<()> {
    let existing = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut sections: Vec<(String, String)> = Vec::new();
    for line in existing.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            sections.push((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            if !t.is_empty() {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    for (name, id, secret) in profiles {
        let body = format!("aws_access_key_id = {id}\naws_secret_access_key = {secret}\n");
        match sections.iter_mut().find(|(n, _)| n == name) {
            Some((_, b)) => *b = body,
            None => sections.push((name.clone(), body)),
        }
    }
    let mut out = String::new();
    for (name, body) in sections {
        out.push_str(&format!("[{name}]\n{body}\n"));
    }
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)?;
        }
    }
    ferrokms_store::seal::write_private_file(path, out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_example_parses() {
        let text = include_str!("../../../examples/seed-000.toml");
        let f = parse(text).expect("the example parses");
        assert_eq!(f.accounts[0].id, "111122223333");
        assert_eq!(f.accounts[0].roles[0].name, "kms-exports-role");
    }

    #[test]
    fn parse_errors_and_bad_materials_never_show_the_material() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlYw==";
        // A syntax error on the material's line: the line, not its text.
        let text = format!(
            "[[accounts]]\nid = \"111122223333\"\n[[accounts.keys]]\nkey_id = \"1234abcd-12ab-34cd-56ef-1234567890ab\"\n[[accounts.keys.materials]]\nbase64 = \"{secret}\" x\n"
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("line 6"), "{e}");
        assert!(!e.contains(secret), "{e}");
        // A string where a table is expected: the value is not quoted.
        let text = format!("[[accounts]]\nid = \"111122223333\"\nkeys = \"{secret}\"\n");
        let e = parse(&text).unwrap_err().to_string();
        assert!(!e.contains(secret), "{e}");
        // A material of the wrong length: the entry and the lengths.
        let text = format!(
            "[[accounts]]\nid = \"111122223333\"\n[[accounts.keys]]\nalias = \"alias/a\"\nkey_id = \"1234abcd-12ab-34cd-56ef-1234567890ab\"\n[[accounts.keys.materials]]\nbase64 = \"{secret}\"\n"
        );
        let e = parse(&text).unwrap_err().to_string();
        assert!(
            e.contains("key alias/a: material 1 has 31 bytes; SYMMETRIC_DEFAULT material is exactly 32 bytes"),
            "{e}"
        );
        assert!(!e.contains(secret));
        assert_eq!(
            hide_strings("invalid type: string \"abc\", expected a sequence at line 1"),
            "invalid type: a string (value not shown), expected a sequence at line 1"
        );
    }

    #[test]
    fn unknown_fields_and_bad_policies_are_refused() {
        assert!(parse("[[accounts]]\nid = \"111122223333\"\nfoo = 1\n").is_err());
        assert!(parse("[[accounts]]\nid = \"1\"\n").is_err());
        let bad = "[[accounts]]\nid = \"111122223333\"\n[[accounts.policies]]\nname = \"p\"\ndocument = \"{}\"\n";
        assert!(matches!(parse(bad), Err(BootstrapError::Invalid(_))));
    }
}
