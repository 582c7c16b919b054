//! STS: temporary credentials from AssumeRole and GetSessionToken.

use std::sync::Arc;

use ferrokms_authz::{Question, ResourcePolicy};
use ferrokms_policy::{CombineMode, Context};
use ferrokms_types::{AccountId, Arn};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::entities::{DocKind, PolicyDoc, Tag};
use crate::names::{check_session_name, check_tags, invalid, new_id, new_secret};
use crate::{
    json_change, now_ms, seal, unseal, Caller, Directory, IamError, Principal, KIND_SESSION,
};

const MIN_DURATION: u32 = 900;
/// Role chaining (a session assuming a role) is capped at one hour.
const CHAINED_MAX: u32 = 3600;
const SESSION_POLICY_LIMIT: usize = 2048;

/// Temporary credentials and who they act as.
pub struct Session {
    pub access_key_id: String,
    pub secret: Zeroizing<String>,
    pub token: Zeroizing<String>,
    pub principal: Principal,
    pub expires_ms: i64,
    pub session_policies: Vec<PolicyDoc>,
    /// Session tags (`aws:PrincipalTag/*` of the session).
    pub tags: Vec<Tag>,
    /// Keys of the tags that pass on to chained role sessions.
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<String>,
    /// When the credentials were issued (`aws:TokenIssueTime`).
    pub issued_ms: i64,
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

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSession {
    access_key_id: String,
    sealed_secret: String,
    sealed_token: String,
    principal: Principal,
    expires_ms: i64,
    session_policies: Vec<PolicyDoc>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(default)]
    transitive_tag_keys: Vec<String>,
    #[serde(default)]
    source_identity: Option<String>,
    #[serde(default)]
    issued_ms: i64,
}

impl StoredSession {
    pub(crate) fn open(self, sealer: &ferrokms_store::Sealer) -> Result<Session, IamError> {
        Ok(Session {
            secret: unseal(sealer, &self.access_key_id, &self.sealed_secret)?,
            token: unseal(
                sealer,
                &format!("{}/token", self.access_key_id),
                &self.sealed_token,
            )?,
            access_key_id: self.access_key_id,
            principal: self.principal,
            expires_ms: self.expires_ms,
            session_policies: self.session_policies,
            tags: self.tags,
            transitive_tag_keys: self.transitive_tag_keys,
            source_identity: self.source_identity,
            issued_ms: self.issued_ms,
        })
    }
}

/// Why a temporary credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionRefusal {
    /// Unknown key, or the token does not match.
    Invalid,
    Expired,
}

pub struct AssumeRoleInput<'a> {
    pub role_arn: &'a str,
    pub session_name: &'a str,
    pub duration_seconds: Option<u32>,
    pub policy: Option<&'a str>,
    pub policy_arns: Vec<String>,
    pub external_id: Option<&'a str>,
    pub tags: Vec<Tag>,
    pub transitive_tag_keys: Vec<String>,
    pub source_identity: Option<&'a str>,
}

/// What a new session carries besides its principal.
#[derive(Default)]
struct SessionExtras {
    policies: Vec<PolicyDoc>,
    tags: Vec<Tag>,
    transitive_tag_keys: Vec<String>,
    source_identity: Option<String>,
}

impl Directory {
    /// Whether this id is a temporary key the server issued.
    pub fn is_session_key(&self, access_key_id: &str) -> bool {
        self.state.read().sessions.contains_key(access_key_id)
    }

    /// A temporary key, checked against its token and expiry.
    pub fn session(
        &self,
        access_key_id: &str,
        token: Option<&str>,
    ) -> Result<Arc<Session>, SessionRefusal> {
        let s = self
            .state
            .read()
            .sessions
            .get(access_key_id)
            .cloned()
            .ok_or(SessionRefusal::Invalid)?;
        let given = token.ok_or(SessionRefusal::Invalid)?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), s.token.as_bytes())
            .is_err()
        {
            return Err(SessionRefusal::Invalid);
        }
        if s.expires_ms <= now_ms() {
            return Err(SessionRefusal::Expired);
        }
        Ok(s)
    }

    fn issue_session(
        &self,
        principal: Principal,
        duration: u32,
        extras: SessionExtras,
    ) -> Result<Arc<Session>, IamError> {
        let session = Session {
            access_key_id: new_id("ASIA", 16)?,
            secret: new_secret(40)?,
            token: new_secret(356)?,
            principal,
            expires_ms: now_ms() + i64::from(duration) * 1000,
            issued_ms: now_ms(),
            session_policies: extras.policies,
            tags: extras.tags,
            transitive_tag_keys: extras.transitive_tag_keys,
            source_identity: extras.source_identity,
        };
        let stored = StoredSession {
            access_key_id: session.access_key_id.clone(),
            sealed_secret: seal(&self.sealer, &session.access_key_id, &session.secret)?,
            sealed_token: seal(
                &self.sealer,
                &format!("{}/token", session.access_key_id),
                &session.token,
            )?,
            principal: session.principal.clone(),
            expires_ms: session.expires_ms,
            session_policies: session.session_policies.clone(),
            tags: session.tags.clone(),
            transitive_tag_keys: session.transitive_tag_keys.clone(),
            source_identity: session.source_identity.clone(),
            issued_ms: session.issued_ms,
        };
        let _w = self.writer.lock();
        self.store.apply(&[json_change(
            KIND_SESSION,
            session.access_key_id.clone(),
            &stored,
        )?])?;
        let session = Arc::new(session);
        self.write_state()
            .sessions
            .insert(session.access_key_id.clone(), session.clone());
        Ok(session)
    }

    /// AssumeRole: allowed when the role's trust policy admits the caller
    /// and, unless it names the caller itself, the caller's identity
    /// policies allow sts:AssumeRole on the role (always required across
    /// accounts). The account root user cannot assume roles.
    pub fn assume_role(
        &self,
        caller: &Caller,
        input: AssumeRoleInput<'_>,
    ) -> Result<Arc<Session>, IamError> {
        check_session_name(input.session_name)?;
        let denied = |reason: &str| {
            IamError::AccessDenied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {}{reason}",
                caller.arn("aws"),
                input.role_arn
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
        let role_account = AccountId::parse(&arn.account).map_err(|_| denied(""))?;
        let role_name = arn
            .resource
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
        let mut session_policies = Vec::new();
        if let Some(text) = input.policy {
            if text.len() > SESSION_POLICY_LIMIT {
                return Err(IamError::PackedPolicyTooLarge(format!(
                    "Packed policy consumes {}% of allotted space, please use smaller policy.",
                    text.len() * 100 / SESSION_POLICY_LIMIT
                )));
            }
            session_policies.push(PolicyDoc::parse(text, DocKind::Identity)?);
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
        let caller_session = self
            .state
            .read()
            .sessions
            .get(&caller.access_key_id)
            .cloned();
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
            caller.authz.identity.record(record);
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
            let p = self.policy_by_arn(&role.account, arn)?;
            if let Some(doc) = p.default_doc() {
                session_policies.push(doc.clone());
            }
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
                policies: session_policies,
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
    ) -> Result<Arc<Session>, IamError> {
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
