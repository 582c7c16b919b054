//! Authentication: from a signed HTTP request to the principal it acts as.

use std::sync::Arc;
use std::time::SystemTime;

use ferrokms_iam::sts::SessionRefusal;
use ferrokms_iam::{Directory, Principal};
use ferrokms_sigv4::{parse, HttpRequest, SigV4Error, Verifier};
use ferrokms_types::{AccountId, Region};

/// An authenticated request's identity.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Who the request acts as.
    pub principal: Principal,
    /// The region of the credential scope.
    pub region: Region,
    /// The service the client signed for (`kms`, `iam`, `sts`).
    pub service: String,
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// That session, opened from its token.
    pub session: Option<Arc<ferrokms_iam::Session>>,
    /// The headers the signature covers (lowercase).
    pub signed_headers: Vec<String>,
}

/// Why a request failed authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The signature is missing, malformed, stale or wrong.
    Signature(SigV4Error),
    /// Unknown, inactive or deleted access key, or a bad session token.
    UnrecognizedClient,
    /// A temporary credential past its expiration.
    ExpiredToken,
    /// `--dev`: an unknown access key id shaped like an issued one
    /// (AKIA/ASIA + 16), refused as real; the message says why.
    DevIssuedShape(String),
}

impl AuthError {
    /// The JSON protocol's error code (`__type`), as KMS answers.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Signature(e) => e.aws_code(),
            AuthError::UnrecognizedClient | AuthError::DevIssuedShape(_) => {
                "UnrecognizedClientException"
            }
            AuthError::ExpiredToken => "ExpiredTokenException",
        }
    }

    /// The code the query protocol (IAM, STS) uses, and its status.
    pub fn query_code(&self) -> (&'static str, u16) {
        match self {
            AuthError::Signature(e) => (e.query_protocol_code(), 403),
            AuthError::UnrecognizedClient | AuthError::DevIssuedShape(_) => {
                ("InvalidClientTokenId", 403)
            }
            AuthError::ExpiredToken => ("ExpiredToken", 400),
        }
    }

    /// The error message, worded as AWS words it.
    pub fn message(&self) -> String {
        match self {
            AuthError::Signature(e) => e.message(),
            AuthError::UnrecognizedClient => {
                "The security token included in the request is invalid.".into()
            }
            AuthError::ExpiredToken => {
                "The security token included in the request is expired".into()
            }
            AuthError::DevIssuedShape(id) => format!(
                "The security token included in the request is invalid. (ferrokms --dev: {id} is shaped like an access key id AWS issues{}, so it is taken for a real credential and refused; sign with any other id, e.g. 'dev' or a 12-digit account id)",
                if id.ends_with("EXAMPLE") { " (AWS's documented example)" } else { "" }
            ),
        }
    }
}

/// How unknown access key ids are treated (see `--dev` in the README).
#[derive(Debug, Clone)]
pub enum Mode {
    /// Only keys the server issued are accepted, with full verification.
    Secure,
    /// Local development: unknown ids act as an account's root user and
    /// only the signature's shape is checked.
    Dev {
        /// The account unknown access keys act in (as its root user).
        default_account: AccountId,
    },
}

/// Authenticates requests: finds the access key (long-term or session) and verifies the
/// SigV4 signature with its secret.
pub struct Authenticator {
    /// Where access keys and sessions are looked up.
    pub directory: Arc<Directory>,
    /// Verifies signatures, with its cache of signing keys.
    pub verifier: Verifier,
    /// How unknown access key ids are treated.
    pub mode: Mode,
}

/// Access key ids shaped like ones AWS (or this server) issues. An unknown
/// id of this shape is a real credential pointed at the wrong place, or a
/// revoked one, so it is refused even in dev mode.
fn looks_issued(id: &str) -> bool {
    (id.starts_with("AKIA") || id.starts_with("ASIA"))
        && id.len() == 20
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Authenticator {
    /// Who signed `req`, for one of `services`. Failures are counted in
    /// `ferrokms_sigv4_failures_total` by reason.
    pub fn authenticate(
        &self,
        req: &HttpRequest<'_>,
        services: &[&str],
    ) -> Result<Identity, AuthError> {
        use crate::metrics::{record_sigv4_failure, SigV4Failure};
        let result = self.authenticate_uncounted(req, services);
        if let Err(e) = &result {
            record_sigv4_failure(match e {
                AuthError::Signature(SigV4Error::MissingAuthenticationToken) => {
                    SigV4Failure::Missing
                }
                AuthError::Signature(SigV4Error::IncompleteSignature(_)) => SigV4Failure::Malformed,
                AuthError::Signature(SigV4Error::InvalidSignature(_)) => SigV4Failure::Invalid,
                AuthError::UnrecognizedClient | AuthError::DevIssuedShape(_) => {
                    SigV4Failure::UnknownKey
                }
                AuthError::ExpiredToken => SigV4Failure::Expired,
            });
        }
        result
    }

    fn authenticate_uncounted(
        &self,
        req: &HttpRequest<'_>,
        services: &[&str],
    ) -> Result<Identity, AuthError> {
        let parsed = parse(req).map_err(AuthError::Signature)?;
        let region = Region::parse(&parsed.scope.region).map_err(|_| {
            AuthError::Signature(SigV4Error::InvalidSignature(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                parsed.scope.region
            )))
        })?;
        // The parsed signature is not needed after verification: its
        // strings move into the identity rather than being copied (a
        // handful of allocations per request).
        let identity =
            |parsed: ferrokms_sigv4::ParsedSignature,
             principal: Principal,
             session: Option<Arc<ferrokms_iam::Session>>| Identity {
                principal,
                region,
                service: parsed.scope.service,
                access_key_id: parsed.access_key_id,
                session,
                signed_headers: parsed
                    .signed_headers
                    .into_iter()
                    .map(|mut h| {
                        h.make_ascii_lowercase();
                        h
                    })
                    .collect(),
            };
        if let Some(key) = self.directory.active_access_key(&parsed.access_key_id) {
            // A long-term key has no session: a security token beside it is
            // refused as AWS does (UnrecognizedClientException, "The
            // security token included in the request is invalid."), not
            // ignored, so a token never appears to be honoured.
            if parsed.session_token.is_some() {
                return Err(AuthError::UnrecognizedClient);
            }
            self.verifier
                .verify(req, &parsed, &key.secret, SystemTime::now(), services)
                .map_err(AuthError::Signature)?;
            return Ok(identity(parsed, key.principal.clone(), None));
        }
        // A temporary key: its token is the sealed session (opened and
        // checked against the key id and expiry, cached bounded).
        match self
            .directory
            .session(&parsed.access_key_id, parsed.session_token.as_deref())
        {
            // A session of a user or role since deleted (or deleted and
            // re-created under its name: another principal) is no longer
            // anyone's.
            Ok(session) if !self.directory.principal_exists(&session.principal) => {
                return Err(AuthError::UnrecognizedClient)
            }
            Ok(session) => {
                self.verifier
                    .verify(req, &parsed, &session.secret, SystemTime::now(), services)
                    .map_err(AuthError::Signature)?;
                let principal = session.principal.clone();
                return Ok(identity(parsed, principal, Some(session)));
            }
            Err(SessionRefusal::Expired) => return Err(AuthError::ExpiredToken),
            // Not a session: an unknown key (refused below, or a dev-mode
            // root key).
            Err(SessionRefusal::Invalid) => {}
        }
        match &self.mode {
            Mode::Dev { default_account } if !looks_issued(&parsed.access_key_id) => {
                if !services.contains(&parsed.scope.service.as_str()) {
                    return Err(AuthError::Signature(SigV4Error::InvalidSignature(format!(
                        "Credential should be scoped to correct service: '{}'. ",
                        services.first().copied().unwrap_or("kms")
                    ))));
                }
                let account = AccountId::parse(&parsed.access_key_id)
                    .unwrap_or_else(|_| default_account.clone());
                Ok(identity(parsed, Principal::Root { account }, None))
            }
            Mode::Dev { .. } => {
                tracing::warn!(
                    access_key_id = %parsed.access_key_id,
                    "--dev: refused an unknown access key id shaped like an AWS-issued one (AKIA/ASIA + 16 characters): it may be a real credential; sign with another id"
                );
                Err(AuthError::DevIssuedShape(parsed.access_key_id))
            }
            Mode::Secure => Err(AuthError::UnrecognizedClient),
        }
    }
}

/// Where a request came from, for the global condition keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    /// The peer address (`aws:SourceIp`).
    pub ip: Option<std::net::IpAddr>,
    /// Whether it arrived over the listener's TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}

/// The authorization view of an authenticated request, the same for every
/// service: who, where, with which identity-side policies and global
/// condition keys.
pub fn caller(
    directory: &Directory,
    profiles: &ProfileCache,
    identity: &Identity,
    origin: Origin,
    service: ServiceHeaders,
) -> ferrokms_authz::Caller {
    let partition = identity.region.partition();
    let context = request_context(origin, service);
    ferrokms_authz::Caller {
        account: identity.principal.account().clone(),
        arn: identity.principal.arn(partition),
        region: identity.region.clone(),
        profile: profiles.get(directory, identity),
        context,

        trace: Default::default(),
    }
}

/// An IAM or STS caller: the principal and its key, with the same
/// authorization view as [`caller`] builds for KMS.
pub fn iam_caller(
    directory: &Directory,
    profiles: &ProfileCache,
    identity: &Identity,
    origin: Origin,
) -> ferrokms_iam::Caller {
    ferrokms_iam::Caller {
        principal: identity.principal.clone(),
        session: identity.session.clone(),
        authz: caller(
            directory,
            profiles,
            identity,
            origin,
            ServiceHeaders::default(),
        ),
    }
}

/// The request-wide global condition keys of a request (`aws:SourceIp`,
/// `aws:SecureTransport`, `aws:CurrentTime`, `aws:EpochTime`,
/// `kms:ViaService`, `aws:SourceArn`...), built by authorization only if a
/// policy reads one.
fn request_context(origin: Origin, service: ServiceHeaders) -> ferrokms_authz::RequestContext {
    let now = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    ferrokms_authz::RequestContext::new(ferrokms_authz::RequestFacts {
        source_ip: origin.ip,
        secure_transport: origin.secure_transport,
        epoch_seconds: now,
        via_service: service.via_service,
        service_call: service.service_call,
    })
}

/// The KMS caller a request by `principal` would be, built exactly as for
/// a signed request (identity policies, boundary, session policies of
/// `session`, principal condition keys, request-wide keys without a
/// source IP): what `ferrokms policy simulate` and `key access` evaluate.
pub fn caller_for(
    directory: &Directory,
    principal: &Principal,
    region: &Region,
    session: Option<&ferrokms_iam::Session>,
) -> ferrokms_authz::Caller {
    ferrokms_authz::Caller {
        account: principal.account().clone(),
        arn: principal.arn(region.partition()),
        region: region.clone(),
        profile: Arc::new(build_profile(directory, principal, region, session)),
        context: request_context(Origin::default(), ServiceHeaders::default()),

        trace: Default::default(),
    }
}

/// The caller profiles (principal, identity-side policies, principal
/// condition keys) derived from the directory, cached per access key until
/// the directory changes: the hot path then clones one `Arc`. Long-term
/// keys are few (the operators create them); sessions' profiles, which any
/// caller can multiply, are kept apart within a memory budget.
pub struct ProfileCache {
    entries:
        parking_lot::Mutex<foldhash::HashMap<String, (u64, Arc<ferrokms_authz::CallerProfile>)>>,
    sessions: ferrokms_iam::bounded_cache::BoundedCache<(u64, Arc<ferrokms_authz::CallerProfile>)>,
}

impl Default for ProfileCache {
    fn default() -> Self {
        ProfileCache {
            entries: Default::default(),
            sessions: ferrokms_iam::bounded_cache::BoundedCache::new(SESSION_PROFILES_BUDGET),
        }
    }
}

/// Bounds the cache of long-term keys' profiles; a full cache is simply
/// emptied (profiles are cheap to rebuild).
const PROFILE_CACHE_MAX: usize = 10_000;

/// The memory budget (estimated bytes) of sessions' profiles.
const SESSION_PROFILES_BUDGET: usize = 8 << 20;

impl ProfileCache {
    /// The caller profile for `identity`, built from `directory` on a miss.
    pub fn get(
        &self,
        directory: &Directory,
        identity: &Identity,
    ) -> Arc<ferrokms_authz::CallerProfile> {
        let partition = identity.region.partition();
        let key = ferrokms_textfast::concat(&[partition, "|", &identity.access_key_id]);
        // INVARIANT: the generation is read before the directory, so an
        // entry built from a state that changed meanwhile is already stale.
        let generation = directory.generation();
        if let Some(session) = &identity.session {
            return self.get_session(directory, identity, session, key, generation);
        }
        if let Some((g, p)) = self.entries.lock().get(&key) {
            if *g == generation {
                crate::metrics::record_profile_cache(true);
                return p.clone();
            }
        }
        crate::metrics::record_profile_cache(false);
        let profile = Arc::new(build_profile(
            directory,
            &identity.principal,
            &identity.region,
            None,
        ));
        let mut entries = self.entries.lock();
        if entries.len() >= PROFILE_CACHE_MAX {
            entries.clear();
        }
        entries.insert(key, (generation, profile.clone()));
        profile
    }

    fn get_session(
        &self,
        directory: &Directory,
        identity: &Identity,
        session: &ferrokms_iam::Session,
        key: String,
        generation: u64,
    ) -> Arc<ferrokms_authz::CallerProfile> {
        if let Some((g, p)) = self.sessions.get(&key) {
            if g == generation {
                crate::metrics::record_profile_cache(true);
                return p;
            }
        }
        crate::metrics::record_profile_cache(false);
        let profile = Arc::new(build_profile(
            directory,
            &identity.principal,
            &identity.region,
            Some(session),
        ));
        // The profile holds the session's tags and policies and the
        // principal's condition keys (a few KiB even for a bare session).
        self.sessions.insert(
            key,
            2 * session.weight + 4096,
            (generation, profile.clone()),
        );
        profile
    }
}

fn build_profile(
    directory: &Directory,
    principal: &Principal,
    region: &Region,
    session: Option<&ferrokms_iam::Session>,
) -> ferrokms_authz::CallerProfile {
    directory.caller_profile(principal, region.partition(), session)
}

/// Key-policy principals are checked against the identity directory. Under
/// `--dev` every 12-digit account exists, as unknown access keys can act in
/// any of them.
pub struct DirectoryPrincipals {
    /// The identity directory.
    pub directory: Arc<Directory>,
    /// `--dev`: every 12-digit account exists.
    pub dev: bool,
}

impl ferrokms_kms::authz::PrincipalDirectory for DirectoryPrincipals {
    fn account_exists(&self, account: &str) -> bool {
        match AccountId::parse(account) {
            Ok(a) => self.dev || self.directory.account_exists(&a),
            Err(_) => false,
        }
    }

    fn entity_exists(&self, arn: &str) -> bool {
        self.directory.entity_arn_exists(arn)
    }
}

/// The header a trusted principal uses to say it calls on behalf of an AWS
/// service (what AWS sets itself when S3 or EBS call KMS for a user).
pub const VIA_SERVICE_HEADER: &str = "x-ferrokms-via-service";

/// What the names of the trusted-service headers begin with.
const SERVICE_HEADER_PREFIX: &str = "x-ferrokms-";

/// The header a trusted principal uses to say it calls as an AWS service
/// principal itself (`dynamodb.amazonaws.com`), as AWS services do with
/// their own credentials: what a grant's `GranteeServicePrincipal` names.
pub const SERVICE_PRINCIPAL_HEADER: &str = "x-ferrokms-service-principal";

/// The resource a service-principal call is made for (`aws:SourceArn`,
/// which a grant's `SourceArn` constraint compares); only with
/// [`SERVICE_PRINCIPAL_HEADER`].
pub const SOURCE_ARN_HEADER: &str = "x-ferrokms-source-arn";

/// What the trusted-service headers of a request say: `kms:ViaService`
/// (a service calling for the signer), or a service principal calling
/// itself with its source resource.
#[derive(Debug, Default)]
pub struct ServiceHeaders {
    /// The `kms:ViaService` value (`s3.us-east-1.amazonaws.com`), if sent and trusted.
    pub via_service: Option<String>,
    /// A service principal calling on its own, with its source resource, if sent and trusted.
    pub service_call: Option<ferrokms_authz::ServiceCall>,
}

/// The trusted-service headers of this request: honoured only from a
/// configured trusted principal, and only when covered by the signature;
/// anyone else sending one is refused rather than silently ignored.
pub fn service_headers(
    headers: &axum::http::HeaderMap,
    identity: &Identity,
    trusted: &[String],
) -> Result<ServiceHeaders, crate::kms_api::ApiError> {
    // Most requests carry none of the three: one pass over the (few)
    // header names instead of three map lookups, each hashing its name.
    if !headers
        .keys()
        .any(|k| k.as_str().starts_with(SERVICE_HEADER_PREFIX))
    {
        return Ok(ServiceHeaders::default());
    }
    let read = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap_or("").trim().to_string())
    };
    let via = read(VIA_SERVICE_HEADER);
    let principal = read(SERVICE_PRINCIPAL_HEADER);
    let source_arn = read(SOURCE_ARN_HEADER);
    if via.is_none() && principal.is_none() && source_arn.is_none() {
        return Ok(ServiceHeaders::default());
    }
    let partition = identity.region.partition();
    let names = [
        Some(identity.principal.arn(partition)),
        identity.principal.role_arn(partition),
    ];
    let is_trusted = names
        .iter()
        .flatten()
        .any(|n| trusted.iter().any(|t| t == n));
    let refuse = |header: &str, why: &str| {
        crate::kms_api::ApiError::new(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to call on behalf of an AWS service: the {header} header {why}",
                identity.principal.arn(partition)
            ),
        )
    };
    for (header, value) in [
        (VIA_SERVICE_HEADER, &via),
        (SERVICE_PRINCIPAL_HEADER, &principal),
        (SOURCE_ARN_HEADER, &source_arn),
    ] {
        let Some(value) = value else { continue };
        if !is_trusted || !identity.signed_headers.iter().any(|h| h == header) {
            return Err(refuse(
                header,
                "is honoured only when signed by a principal trusted with --via-service-principal",
            ));
        }
        if value.is_empty() {
            return Err(refuse(header, "is empty"));
        }
    }
    let service_call = match (principal, source_arn) {
        (None, Some(_)) => {
            return Err(refuse(
                SOURCE_ARN_HEADER,
                "names the resource of a service-principal call: it needs the x-ferrokms-service-principal header",
            ))
        }
        (None, None) => None,
        (Some(p), _) if !ferrokms_kms::grants::is_service_principal(&p) => {
            return Err(refuse(
                SERVICE_PRINCIPAL_HEADER,
                "must name an AWS service principal such as dynamodb.amazonaws.com",
            ))
        }
        (Some(_), Some(arn)) if !ferrokms_kms::grants::is_source_arn(&arn) => {
            return Err(refuse(SOURCE_ARN_HEADER, "must be a resource ARN with an account"))
        }
        (Some(principal), source_arn) => Some(ferrokms_authz::ServiceCall {
            principal,
            source_arn,
        }),
    };
    Ok(ServiceHeaders {
        via_service: via,
        service_call,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator() -> (Authenticator, Arc<ferrokms_iam::AccessKey>) {
        use ferrokms_store::{MemoryStore, Sealer};
        let directory = Directory::open(
            Arc::new(MemoryStore::default()),
            Arc::new(Sealer::ephemeral().expect("sealer")),
        )
        .expect("open");
        let key = directory
            .create_account(&AccountId::parse("111122223333").expect("account"))
            .expect("account");
        let auth = Authenticator {
            directory: Arc::new(directory),
            verifier: Verifier::default(),
            mode: Mode::Secure,
        };
        (auth, key)
    }

    fn signed_headers(key: &ferrokms_iam::AccessKey, token: Option<&str>) -> Vec<(String, String)> {
        let base = [
            ("Host", "localhost"),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("X-Amz-Target", "TrentService.ListKeys"),
        ];
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &base,
            body: b"{}",
        };
        let creds = ferrokms_sigv4::Credentials {
            access_key_id: &key.id,
            secret_access_key: &key.secret,
            session_token: token,
        };
        let signed =
            ferrokms_sigv4::sign_request(&req, &creds, "us-east-1", "kms", SystemTime::now());
        base.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .chain(signed.iter().map(|(n, v)| (n.to_string(), v.to_string())))
            .collect()
    }

    fn authenticate(
        auth: &Authenticator,
        headers: &[(String, String)],
    ) -> Result<Identity, AuthError> {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let req = HttpRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        auth.authenticate(&req, &["kms"])
    }

    /// AWS's rule: a long-term access key is not a session; a security token
    /// sent with it is UnrecognizedClientException "The security token
    /// included in the request is invalid." even when the token is signed.
    #[test]
    fn long_term_key_with_a_security_token_is_an_unrecognized_client() {
        let (auth, key) = authenticator();
        assert!(authenticate(&auth, &signed_headers(&key, None)).is_ok());
        let err = authenticate(&auth, &signed_headers(&key, Some("FwoGZXIvYXdzEXAMPLE")))
            .expect_err("token with a long-term key");
        assert_eq!(err, AuthError::UnrecognizedClient);
        assert_eq!(err.code(), "UnrecognizedClientException");
        assert_eq!(err.query_code(), ("InvalidClientTokenId", 403));
        assert_eq!(
            err.message(),
            "The security token included in the request is invalid."
        );
    }

    /// The trusted-service headers as a request of `signed` headers would
    /// carry them, sent by the account root, trusted or not.
    fn service_facts(
        sent: &[(&'static str, &str)],
        signed: &[&str],
        trusted: bool,
    ) -> Result<ServiceHeaders, crate::kms_api::ApiError> {
        let mut headers = axum::http::HeaderMap::new();
        for (n, v) in sent {
            headers.insert(
                axum::http::HeaderName::from_static(n),
                v.parse().expect("header value"),
            );
        }
        let identity = Identity {
            principal: Principal::Root {
                account: AccountId::parse("111122223333").expect("account"),
            },
            region: Region::parse("us-east-1").expect("region"),
            service: "kms".into(),
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            session: None,
            signed_headers: signed.iter().map(ToString::to_string).collect(),
        };
        let trusted: Vec<String> = if trusted {
            vec!["arn:aws:iam::111122223333:root".into()]
        } else {
            Vec::new()
        };
        service_headers(&headers, &identity, &trusted)
    }

    #[test]
    fn a_service_principal_call_needs_a_trusted_signer_and_signed_headers() {
        const SP: &str = SERVICE_PRINCIPAL_HEADER;
        const SRC: &str = SOURCE_ARN_HEADER;
        let arn = "arn:aws:dynamodb:us-east-1:111122223333:table/t";
        let both = [(SP, "dynamodb.amazonaws.com"), (SRC, arn)];
        let call = service_facts(&both, &[SP, SRC], true)
            .expect("trusted and signed")
            .service_call
            .expect("a service call");
        assert_eq!(call.principal, "dynamodb.amazonaws.com");
        assert_eq!(call.source_arn.as_deref(), Some(arn));
        // No header at all: nothing, whoever signs.
        assert!(service_facts(&[], &[], false)
            .expect("plain request")
            .service_call
            .is_none());
        let refused = [
            // Not trusted, or the header not signed.
            service_facts(&both, &[SP, SRC], false),
            service_facts(&both, &[SP], true),
            // A source resource without the service principal.
            service_facts(&[(SRC, arn)], &[SRC], true),
            // Not a service principal, not an ARN with an account.
            service_facts(&[(SP, "dynamodb")], &[SP], true),
            service_facts(
                &[
                    (SP, "dynamodb.amazonaws.com"),
                    (SRC, "arn:aws:dynamodb:::table/t"),
                ],
                &[SP, SRC],
                true,
            ),
        ];
        for r in refused {
            let e = r.expect_err("refused");
            assert_eq!(e.code, "AccessDeniedException");
        }
    }

    #[test]
    fn issued_key_shapes_are_recognised() {
        assert!(looks_issued("AKIAIOSFODNN7EXAMPLE"));
        assert!(looks_issued("ASIAIOSFODNN7EXAMPLE"));
        assert!(!looks_issued("test"));
        assert!(!looks_issued("111122223333"));
        assert!(!looks_issued("AKIAshort"));
    }
}
