//! STS: temporary credentials from AssumeRole and GetSessionToken.

use std::sync::Arc;

use ferrokms_authz::{Question, ResourcePolicy};
use ferrokms_policy::{CombineMode, Context};
use ferrokms_types::Arn;
use zeroize::Zeroizing;

use crate::bounded_cache::BoundedCache;
use crate::entities::{DocKind, PolicyDoc, Tag};
use crate::names::{check_session_name, check_tags, invalid, new_id};
use crate::session_token::{Claims, TokenError, TokenKeys, MAX_TOKEN_CHARS};
use crate::{Caller, Directory, IamError, Principal};

const MIN_DURATION: u32 = 900;
/// Role chaining (a session assuming a role) is capped at one hour.
const CHAINED_MAX: u32 = 3600;
const SESSION_POLICY_LIMIT: usize = 2048;

/// A session: temporary credentials and who they act as. Nothing of it is
/// stored: it travels sealed in its token (see [`crate::session_token`]),
/// and the server opens the token again when a request presents it.
pub struct Session {
    /// The temporary access key id (`ASIA...`).
    pub access_key_id: String,
    /// Derived from the access key id and issue time, never stored.
    pub secret: Zeroizing<String>,
    /// Who the session acts as.
    pub principal: Principal,
    /// When the credentials expire, milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// The inline session policy, if one was passed.
    pub inline_policy: Option<PolicyDoc>,
    /// Managed session policies, by ARN (looked up when a request is
    /// authorized; one that no longer exists allows nothing).
    pub policy_arns: Vec<String>,
    /// Session tags (`aws:PrincipalTag/*` of the session).
    pub tags: Vec<Tag>,
    /// Keys of the tags that pass on to chained role sessions.
    pub transitive_tag_keys: Vec<String>,
    /// The source identity set at AssumeRole (`aws:SourceIdentity`); it passes on to chained sessions.
    pub source_identity: Option<String>,
    /// When the credentials were issued (`aws:TokenIssueTime`).
    pub issued_ms: i64,
    /// About how many bytes this session holds in memory (what the bounded
    /// caches count).
    pub weight: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("access_key_id", &self.access_key_id)
            .field("principal", &self.principal)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Whether the session carries session policies (inline or managed):
    /// then they cap what identity policies grant.
    pub fn has_session_policies(&self) -> bool {
        self.inline_policy.is_some() || !self.policy_arns.is_empty()
    }
}

/// New temporary credentials, as AssumeRole and GetSessionToken answer them.
pub struct Credentials {
    /// The new session.
    pub session: Arc<Session>,
    /// The sealed session, for the client to send back
    /// (`X-Amz-Security-Token`).
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is as secret as the secret key: never printed.
        f.debug_struct("Credentials")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl std::ops::Deref for Credentials {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

/// Why a temporary credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// No token, or a token that does not open or does not belong to the
    /// access key id.
    Invalid,
    /// The session's expiry has passed.
    Expired,
}

/// The parameters of AssumeRole.
pub struct AssumeRoleInput<'a> {
    /// RoleArn: the role to assume.
    pub role_arn: &'a str,
    /// RoleSessionName: part of the session's ARN.
    pub session_name: &'a str,
    /// DurationSeconds; the default is one hour.
    pub duration_seconds: Option<u32>,
    /// Policy: an inline session policy.
    pub policy: Option<&'a str>,
    /// PolicyArns: managed session policies.
    pub policy_arns: Vec<String>,
    /// ExternalId, compared by the trust policy's `sts:ExternalId` conditions.
    pub external_id: Option<&'a str>,
    /// Tags: session tags.
    pub tags: Vec<Tag>,
    /// TransitiveTagKeys: the tags that pass on to chained sessions.
    pub transitive_tag_keys: Vec<String>,
    /// SourceIdentity.
    pub source_identity: Option<&'a str>,
}

/// What a new session carries besides its principal.
#[derive(Default)]
struct SessionExtras {
    policy: Option<String>,
    policy_arns: Vec<String>,
    tags: Vec<Tag>,
    transitive_tag_keys: Vec<String>,
    source_identity: Option<String>,
}

/// The memory budget of the cache of opened sessions (estimated bytes).
const SESSION_CACHE_BUDGET: usize = 4 << 20;

/// Opened sessions by access key id, with a digest of the token they came
/// from: a request with a known key and the same token skips the unseal.
pub(crate) type SessionCache = BoundedCache<([u8; 32], Arc<Session>)>;

pub(crate) fn new_session_cache() -> SessionCache {
    BoundedCache::new(SESSION_CACHE_BUDGET)
}

fn session_from_claims(keys: &TokenKeys, c: Claims) -> Result<Session, IamError> {
    let inline_policy = match &c.pol {
        Some(text) => Some(PolicyDoc::parse(text, DocKind::Identity)?),
        None => None,
    };
    // The struct, its principal's strings, the cache's key and entry.
    let weight = 1024
        + c.ak.len()
        // A parsed policy takes a few times its text.
        + c.pol.as_ref().map_or(0, |t| t.len() * 4)
        + c.arns.iter().map(|a| a.len() + 24).sum::<usize>()
        + c.tags
            .iter()
            .map(|t| t.key.len() + t.value.len() + 48)
            .sum::<usize>()
        + c.tt.iter().map(|k| k.len() + 24).sum::<usize>()
        + c.si.as_ref().map_or(0, String::len);
    Ok(Session {
        secret: keys.secret(&c.ak, c.iat),
        access_key_id: c.ak,
        principal: c.p,
        expires_ms: c.exp,
        issued_ms: c.iat,
        inline_policy,
        policy_arns: c.arns,
        tags: c.tags,
        transitive_tag_keys: c.tt,
        source_identity: c.si,
        weight,
    })
}

impl Directory {
    /// The session a request's temporary access key and token stand for,
    /// checked: the token opens with this deployment's keys, belongs to
    /// this access key id, and has not expired. Opened sessions are cached
    /// (bounded) per access key id and token digest.
    pub fn session(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<Arc<Session>, SessionRefusal> {
        let token = token.ok_or(SessionRefusal::Invalid)?;
        if token.len() > MAX_TOKEN_CHARS {
            return Err(SessionRefusal::Invalid);
        }
        let digest: [u8; 32] =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes())
                .as_ref()
                .try_into()
                .map_err(|_| SessionRefusal::Invalid)?;
        let session = match self.session_cache.get(access_key_id) {
            Some((d, s)) if d == digest => s,
            _ => {
                let claims = self
                    .tokens
                    .open(token)
                    .map_err(|_| SessionRefusal::Invalid)?;
                if claims.ak != access_key_id {
                    return Err(SessionRefusal::Invalid);
                }
                let s = Arc::new(
                    session_from_claims(&self.tokens, claims)
                        .map_err(|_| SessionRefusal::Invalid)?,
                );
                self.session_cache
                    .insert(access_key_id.to_string(), s.weight, (digest, s.clone()));
                s
            }
        };
        if session.expires_ms <= self.now_ms() {
            return Err(SessionRefusal::Expired);
        }
        Ok(session)
    }

    fn issue_session(
        &self,
        principal: Principal,
        duration: u32,
        extras: SessionExtras,
    ) -> Result<Credentials, IamError> {
        let issued_ms = self.now_ms();
        let claims = Claims {
            ak: new_id("ASIA", 16)?,
            p: principal,
            iat: issued_ms,
            exp: issued_ms + i64::from(duration) * 1000,
            pol: extras.policy,
            arns: extras.policy_arns,
            tags: extras.tags,
            tt: extras.transitive_tag_keys,
            si: extras.source_identity,
        };
        let token = self.tokens.seal(&claims).map_err(|e| match e {
            TokenError::Crypto => IamError::Random,
            other => IamError::Corrupt(other.to_string()),
        })?;
        if token.len() > MAX_TOKEN_CHARS {
            // AWS bounds the session policy, policy ARNs and tags together
            // (the packed policy); here, the token that carries them.
            return Err(IamError::PackedPolicyTooLarge(format!(
                "Packed policy consumes {}% of allotted space, please use smaller policy.",
                token.len() * 100 / MAX_TOKEN_CHARS
            )));
        }
        let session = Arc::new(session_from_claims(&self.tokens, claims)?);
        Ok(Credentials { session, token })
    }

    /// AssumeRole: allowed when the role's trust policy admits the caller
    /// and, unless it names the caller itself, the caller's identity
    /// policies allow sts:AssumeRole on the role (always required across
    /// accounts). The account root user cannot assume roles.
    pub fn assume_role(
        &self,
        caller: &Caller,
        input: AssumeRoleInput<'_>,
    ) -> Result<Credentials, IamError> {
        check_session_name(input.session_name)?;
        let denied = |reason: &str| {
            IamError::AccessDenied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {}{reason}",
                caller.authz.arn, input.role_arn
            ))
        };
        if let Principal::Root { .. } = &caller.principal {
            return Err(IamError::AccessDenied(
                "Roles may not be assumed by root accounts.".into(),
            ));
        }
        let arn = Arn::parse(input.role_arn).map_err(|_| {
            invalid(input.role_arn, "roleArn", "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u0085\\u00A0-\\uD7FF\\uE000-\\uFFFD\\u10000-\\u10FFFF]+")
        })?;
        let role_account = arn.account_id().ok_or_else(|| denied(""))?;
        let role_name = arn
            .resource()
            .strip_prefix("role/")
            .and_then(|r| r.rsplit('/').next())
            .ok_or_else(|| denied(""))?;
        let role = self
            .find_role(&role_account, role_name)
            .ok_or_else(|| denied(""))?;
        if role.arn() != input.role_arn {
            return Err(denied(""));
        }
        let chained = matches!(&caller.principal, Principal::AssumedRole { .. });
        let max = if chained {
            CHAINED_MAX
        } else {
            role.max_session_duration
        };
        let duration = input.duration_seconds.unwrap_or(3600);
        if duration < MIN_DURATION {
            return Err(invalid(
                &duration.to_string(),
                "durationSeconds",
                "Member must have value greater than or equal to 900",
            ));
        }
        if input.policy_arns.len() > 10 {
            return Err(invalid(
                &format!("{} policy ARNs", input.policy_arns.len()),
                "policyArns",
                "Member must have length less than or equal to 10",
            ));
        }
        if let Some(ext) = input.external_id {
            let ok_chars = ext
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@:/-".contains(&b));
            if ext.len() < 2 || ext.len() > 1224 || !ok_chars {
                return Err(invalid(
                    ext,
                    "externalId",
                    "Member must have length between 2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*",
                ));
            }
        }
        if let Some(text) = input.policy {
            if text.len() > SESSION_POLICY_LIMIT {
                return Err(IamError::PackedPolicyTooLarge(format!(
                    "Packed policy consumes {}% of allotted space, please use smaller policy.",
                    text.len() * 100 / SESSION_POLICY_LIMIT
                )));
            }
            PolicyDoc::parse(text, DocKind::Identity)?;
        }

        // Session tags: the caller's transitive tags pass on (and cannot be
        // overridden), then the new ones.
        if input.tags.len() > 50 {
            return Err(invalid(
                &format!("{} tags", input.tags.len()),
                "tags",
                "Member must have length less than or equal to 50",
            ));
        }
        check_tags(&input.tags)?;
        for k in &input.transitive_tag_keys {
            if !input.tags.iter().any(|t| t.key.eq_ignore_ascii_case(k)) {
                return Err(IamError::InvalidParameterValue(
                    "The specified transitive tag key must be included in the requested tags."
                        .into(),
                ));
            }
        }
        // Role chaining: what passes on comes from the calling session's
        // own (sealed, verified) token.
        let caller_session = caller.session.clone();
        let mut tags: Vec<Tag> = Vec::new();
        let mut transitive: Vec<String> = Vec::new();
        if let Some(cs) = &caller_session {
            for t in cs.tags.iter().filter(|t| {
                cs.transitive_tag_keys
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&t.key))
            }) {
                if input
                    .tags
                    .iter()
                    .any(|n| n.key.eq_ignore_ascii_case(&t.key))
                {
                    return Err(IamError::InvalidParameterValue(format!(
                        "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session: {}",
                        t.key
                    )));
                }
                tags.push(t.clone());
                transitive.push(t.key.clone());
            }
        }
        tags.extend(input.tags.iter().cloned());
        transitive.extend(input.transitive_tag_keys.iter().cloned());
        check_tags(&tags)?;
        let source_identity = match (
            caller_session
                .as_ref()
                .and_then(|s| s.source_identity.clone()),
            input.source_identity,
        ) {
            (Some(old), Some(new)) if old != new => {
                return Err(IamError::AccessDenied(
                    "SourceIdentity cannot be changed once set in a role session.".into(),
                ))
            }
            (old, new) => {
                if let Some(si) = new {
                    crate::names::check_source_identity(si)?;
                }
                old.or(new.map(str::to_string))
            }
        };

        // The decision: trust policy (resource-based, must admit the caller)
        // combined with the caller's identity-side policies; sts:TagSession
        // and sts:SetSourceIdentity too when tags or a source identity are
        // passed.
        let mut context = Context::new();
        if let Some(ext) = input.external_id {
            context = context.with("sts:ExternalId", ext);
        }
        context = context.with("sts:RoleSessionName", input.session_name);
        for t in &input.tags {
            context.insert(&format!("aws:RequestTag/{}", t.key), t.value.as_str());
        }
        if !input.tags.is_empty() {
            context.insert_multi(
                "aws:TagKeys",
                input
                    .tags
                    .iter()
                    .map(|t| ferrokms_policy::ContextValue::from(t.key.as_str()))
                    .collect(),
            );
            context.insert_multi(
                "sts:TransitiveTagKeys",
                input
                    .transitive_tag_keys
                    .iter()
                    .map(|k| ferrokms_policy::ContextValue::from(k.as_str()))
                    .collect(),
            );
        }
        if let Some(si) = input.source_identity {
            context.insert("sts:SourceIdentity", si);
        }
        let trust_label = format!("trust policy of {}", role.arn());
        let role_keys = |ctx: &mut Context, want: &dyn Fn(&str) -> bool| {
            for t in &role.tags {
                let k = format!("aws:ResourceTag/{}", t.key);
                if want(&k) && !ctx.contains(&k) {
                    ctx.insert(&k, t.value.as_str());
                }
            }
        };
        let mut actions = vec!["sts:AssumeRole"];
        if !input.tags.is_empty() {
            actions.push("sts:TagSession");
        }
        if input.source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        for action in actions {
            // The trust policy is the role's resource policy: it must admit
            // the caller, and across accounts the caller's own identity
            // policies must allow too (the one path decides both).
            let verdict = ferrokms_authz::decide(
                &caller.authz,
                Question {
                    action,
                    resource: input.role_arn,
                    resource_account: &role_account,
                    cross_account: true,
                    resource_policy: Some(ResourcePolicy {
                        label: &trust_label,
                        policy: &role.trust.parsed,
                        mode: CombineMode::ResourcePolicyRequired,
                    }),
                    context: Some(&context),
                    resource_keys: Some(&role_keys),
                },
            )?;
            let (record, outcome) = verdict.conclude(None);
            caller.authz.record(record);
            outcome.map_err(IamError::AccessDenied)?;
        }
        // What depends on the role's account — its maximum duration, its
        // managed policies — is looked at only once the caller may assume
        // the role: an unauthorized caller learns nothing of either.
        if duration > max {
            return Err(IamError::Validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
                    .to_string(),
            ));
        }
        for arn in &input.policy_arns {
            // Managed session policies must be the role's account's own.
            self.policy_by_arn(&role.account, arn)?;
        }
        self.issue_session(
            Principal::AssumedRole {
                account: role.account.clone(),
                role_name: role.name.clone(),
                role_path: role.path.clone(),
                role_id: role.id.clone(),
                session_name: input.session_name.to_string(),
            },
            duration,
            SessionExtras {
                policy: input.policy.map(str::to_string),
                policy_arns: input.policy_arns.clone(),
                tags,
                transitive_tag_keys: transitive,
                source_identity,
            },
        )
    }

    /// GetSessionToken: temporary credentials for the calling user (or
    /// root), 900 s to 36 h (root: at most 1 h). Not callable with
    /// temporary credentials.
    pub fn get_session_token(
        &self,
        caller: &Caller,
        duration_seconds: Option<u32>,
    ) -> Result<Credentials, IamError> {
        let (max, default) = match &caller.principal {
            Principal::Root { .. } => (3600, 3600),
            Principal::User { .. } => (129_600, 43_200),
            Principal::AssumedRole { .. } => {
                return Err(IamError::AccessDenied(
                    "Cannot call GetSessionToken with session credentials".into(),
                ))
            }
        };
        let duration = duration_seconds.unwrap_or(default);
        if duration < MIN_DURATION || duration > max {
            return Err(invalid(
                &duration.to_string(),
                "durationSeconds",
                &format!("Member must have value between {MIN_DURATION} and {max}"),
            ));
        }
        self.issue_session(caller.principal.clone(), duration, SessionExtras::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use ferrokms_store::{MemoryStore, Sealer, Store};
    use ferrokms_types::{AccountId, Region};

    const A: &str = "111122223333";
    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

    fn directory_on(store: Arc<dyn Store>, root: u8) -> Directory {
        Directory::open(
            store,
            Arc::new(Sealer::from_bytes(&[root; 32]).expect("sealer")),
        )
        .expect("open")
    }

    fn region() -> Region {
        Region::parse("us-east-1").expect("region")
    }

    /// A user with every permission; returns its caller.
    fn user(d: &Directory, name: &str) -> Caller {
        let acct = AccountId::parse(A).expect("account");
        if !d.account_exists(&acct) {
            d.create_account(&acct).expect("account");
        }
        let r = Caller::root(acct.clone());
        d.create_user(&r, name, None, Vec::new(), None)
            .expect("user");
        d.put_inline_policy(&r, crate::ops_owner::Owner::User, name, "p", ALLOW_ALL)
            .expect("policy");
        let u = d.find_user(&acct, name).expect("found");
        d.caller(
            &Principal::User {
                account: u.account.clone(),
                name: u.name.clone(),
                path: u.path.clone(),
                id: u.id.clone(),
            },
            &region(),
            None,
            None,
        )
    }

    fn role_input<'a>(
        arn: &'a str,
        tags: Vec<Tag>,
        transitive: Vec<String>,
    ) -> AssumeRoleInput<'a> {
        AssumeRoleInput {
            role_arn: arn,
            session_name: "sess",
            duration_seconds: Some(900),
            policy: None,
            policy_arns: Vec::new(),
            external_id: None,
            tags,
            transitive_tag_keys: transitive,
            source_identity: Some("alice"),
        }
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn a_session_is_its_token_and_nothing_is_stored_for_it() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let d = directory_on(store.clone(), 1);
        let u = user(&d, "alice");
        let c = d.get_session_token(&u, Some(900)).expect("session");
        assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
        assert_eq!(c.secret.len(), 40);
        // Nothing per session in the store, nor in the directory's state.
        assert!(store
            .load(crate::KIND_LEGACY_SESSION)
            .expect("load")
            .is_empty());
        // Another directory on the same store and root key (another node, or
        // after a restart) opens it to the same session and secret.
        let other = directory_on(store, 1);
        let s = other
            .session(&c.access_key_id, Some(&c.token))
            .expect("opens on another node");
        assert_eq!(s.secret.as_str(), c.secret.as_str());
        assert_eq!(s.principal, c.principal);
        assert_eq!(s.issued_ms, c.issued_ms);
        assert_eq!(s.expires_ms, c.expires_ms);
    }

    #[test]
    fn tampered_swapped_foreign_missing_and_oversized_tokens_are_invalid() {
        let d = directory_on(Arc::new(MemoryStore::default()), 1);
        let u = user(&d, "alice");
        let c = d.get_session_token(&u, Some(900)).expect("session");
        let c2 = d.get_session_token(&u, Some(900)).expect("session");
        let invalid = |ak: &str, t: Option<&str>| {
            assert_eq!(
                d.session(ak, t).map(|_| ()),
                Err(SessionRefusal::Invalid),
                "{ak} {t:.20?}"
            );
        };
        let mut raw = B64.decode(c.token.as_str()).expect("base64");
        raw[20] ^= 1;
        invalid(&c.access_key_id, Some(&B64.encode(&raw)));
        invalid(&c.access_key_id, Some(&c.token[..c.token.len() - 8]));
        invalid(&c.access_key_id, None);
        invalid(&c.access_key_id, Some(""));
        invalid(&c.access_key_id, Some("\u{0}\u{ff}garbage"));
        invalid(&c.access_key_id, Some(&"A".repeat(MAX_TOKEN_CHARS + 1)));
        // Another session's token with this key id, and this token with
        // another key id.
        invalid(&c.access_key_id, Some(&c2.token));
        invalid(&c2.access_key_id, Some(&c.token));
        invalid("ASIAAAAAAAAAAAAAAAAA", Some(&c.token));
        // A token of another deployment (another root key).
        let foreign = directory_on(Arc::new(MemoryStore::default()), 2);
        let fu = user(&foreign, "alice");
        let fc = foreign.get_session_token(&fu, Some(900)).expect("session");
        invalid(&fc.access_key_id, Some(&fc.token));
        // The genuine ones still open (also once cached).
        for _ in 0..2 {
            d.session(&c.access_key_id, Some(&c.token)).expect("valid");
            d.session(&c2.access_key_id, Some(&c2.token))
                .expect("valid");
        }
        // A cached session is not reached with another token.
        invalid(&c.access_key_id, Some(&c2.token));
    }

    #[test]
    fn a_session_expires_by_the_clock_even_once_cached() {
        let d = directory_on(Arc::new(MemoryStore::default()), 1);
        let u = user(&d, "alice");
        let c = d.get_session_token(&u, Some(900)).expect("session");
        d.session(&c.access_key_id, Some(&c.token)).expect("valid");
        d.advance_clock_ms(899_000);
        d.session(&c.access_key_id, Some(&c.token))
            .expect("still valid");
        d.advance_clock_ms(1_000);
        assert_eq!(
            d.session(&c.access_key_id, Some(&c.token)).map(|_| ()),
            Err(SessionRefusal::Expired)
        );
    }

    #[test]
    fn chained_sessions_take_transitive_tags_and_source_identity_from_the_calling_token() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::default());
        let d = directory_on(store.clone(), 1);
        let u = user(&d, "alice");
        let acct = AccountId::parse(A).expect("account");
        let r = Caller::root(acct);
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}]}}"#
        );
        for name in ["first", "second"] {
            d.create_role(&r, name, None, &trust, None, None, Vec::new(), None)
                .expect("role");
            d.put_inline_policy(&r, crate::ops_owner::Owner::Role, name, "all", ALLOW_ALL)
                .expect("policy");
        }
        let first = d
            .assume_role(
                &u,
                role_input(
                    &format!("arn:aws:iam::{A}:role/first"),
                    vec![tag("team", "blue"), tag("env", "dev")],
                    vec!["team".into()],
                ),
            )
            .expect("first");
        // The second call is made with the first session's credentials as
        // a request presents them: access key id and token, opened on
        // another node.
        let node2 = directory_on(store, 1);
        let opened = node2
            .session(&first.access_key_id, Some(&first.token))
            .expect("opens");
        let chained_caller = node2.caller(&opened.principal, &region(), Some(&opened), None);
        let second = node2
            .assume_role(
                &chained_caller,
                role_input(
                    &format!("arn:aws:iam::{A}:role/second"),
                    Vec::new(),
                    Vec::new(),
                ),
            )
            .expect("chained");
        assert_eq!(second.tags, vec![tag("team", "blue")]);
        assert_eq!(second.transitive_tag_keys, vec!["team".to_string()]);
        assert_eq!(second.source_identity.as_deref(), Some("alice"));
        let tags = node2.principal_tags(&second.principal, Some(&second.session));
        assert!(tags.iter().any(|t| t.key == "team" && t.value == "blue"));
        // A transitive tag cannot be overridden down the chain.
        assert!(node2
            .assume_role(
                &chained_caller,
                role_input(
                    &format!("arn:aws:iam::{A}:role/second"),
                    vec![tag("team", "red")],
                    Vec::new()
                ),
            )
            .is_err());
    }

    #[test]
    fn a_session_too_large_for_its_token_is_refused_as_packed_policy_too_large() {
        let d = directory_on(Arc::new(MemoryStore::default()), 1);
        let u = user(&d, "alice");
        let r = Caller::root(AccountId::parse(A).expect("account"));
        let trust = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{A}:root"}},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}}]}}"#
        );
        d.create_role(&r, "big", None, &trust, None, None, Vec::new(), None)
            .expect("role");
        // 50 tags of the longest keys and values, in 4-byte letters.
        let tags: Vec<Tag> = (0..50)
            .map(|i| tag(&format!("{i:02}{}", "𠀀".repeat(126)), &"𠀀".repeat(256)))
            .collect();
        let arn = format!("arn:aws:iam::{A}:role/big");
        match d.assume_role(&u, role_input(&arn, tags, Vec::new())) {
            Err(IamError::PackedPolicyTooLarge(m)) => assert!(m.contains("% of allotted space")),
            Err(other) => panic!("expected PackedPolicyTooLarge, got {other}"),
            Ok(_) => panic!("expected PackedPolicyTooLarge, got a session"),
        }
        // Ordinary tags fit.
        let tags: Vec<Tag> = (0..10).map(|i| tag(&format!("k{i}"), "v")).collect();
        let c = d
            .assume_role(&u, role_input(&arn, tags, Vec::new()))
            .expect("fits");
        assert!(c.token.len() <= MAX_TOKEN_CHARS);
    }
}
