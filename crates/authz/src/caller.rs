//! Who is calling: the principal's profile (shared between its requests)
//! and the request's own facts (where from, when, over what).

use std::sync::Arc;

use ferrokms_policy::{Context, Policy, PolicyKind, RequestPrincipal};
use ferrokms_types::{AccountId, Region};

use crate::record::AuthzRecord;
use crate::AuthzError;

/// Who is calling, as established by authentication: the same value for
/// every service (KMS, IAM, STS). One per request: it carries the request's
/// decision trace, which the edge takes by value at the end
/// ([`Caller::into_trace`]).
#[derive(Debug)]
pub struct Caller {
    /// The account the caller belongs to (of the access key, or of the assumed role).
    pub account: AccountId,
    /// The region of the request (from the SigV4 credential scope).
    pub region: Region,
    /// The principal's ARN as AWS prints it in messages: the session ARN for
    /// an assumed role, `arn:aws:iam::ACCOUNT:root` for the root user.
    pub arn: String,
    /// What is true of the principal whatever the request (who it is, its
    /// identity-side policies, its own condition keys): shared between
    /// requests (the edge caches it until the identities change).
    pub profile: Arc<CallerProfile>,
    /// Keys of this request alone (`aws:SourceIp`, `aws:CurrentTime`,
    /// `kms:ViaService`...), built only if a policy reads one.
    pub context: RequestContext,
    /// Every authorization decision taken for this request, in order: the
    /// services add each verdict they conclude ([`Caller::record`]); the
    /// audit record and `policy explain` read it.
    pub trace: Trace,
}

/// The decisions of one request. Owned by its [`Caller`] (never shared
/// between requests or threads: no lock), appended to while the
/// operation runs, and handed over by value when the caller is consumed.
#[derive(Debug, Default)]
pub struct Trace(std::cell::RefCell<Vec<AuthzRecord>>);

impl Trace {
    /// How many decisions were recorded so far.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// Whether no decision was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// The `i`th decision recorded.
    pub fn get(&self, i: usize) -> Option<AuthzRecord> {
        self.0.borrow().get(i).cloned()
    }
}

impl Clone for Caller {
    /// The same caller asking anew (in another region, with another
    /// policy, for an analysis): its trace starts empty. A service that
    /// decides through such a copy adds the copy's trace to the request's
    /// ([`Caller::absorb`]).
    fn clone(&self) -> Self {
        Caller {
            account: self.account.clone(),
            region: self.region.clone(),
            arn: self.arn.clone(),
            profile: self.profile.clone(),
            context: self.context.clone(),
            trace: Trace::default(),
        }
    }
}

impl Caller {
    /// The account's root user, with no further context (tests, tools,
    /// bootstrap files applied by the operator).
    pub fn root(account: AccountId, region: Region) -> Caller {
        Caller {
            arn: account.root_arn(region.partition()),
            account,
            region,
            profile: Default::default(),
            context: RequestContext::default(),
            trace: Trace::default(),
        }
    }

    /// Adds a decision to the request's trace.
    pub fn record(&self, r: AuthzRecord) {
        self.trace.0.borrow_mut().push(r);
    }

    /// Moves the decisions another caller (a copy of this one asking in
    /// this request's name) took so far into this request's trace.
    pub fn absorb(&self, other: &Caller) {
        let taken = std::mem::take(&mut *other.trace.0.borrow_mut());
        self.trace.0.borrow_mut().extend(taken);
    }

    /// The decisions recorded so far (tests, analyses).
    pub fn decisions(&self) -> Vec<AuthzRecord> {
        self.trace.0.borrow().clone()
    }

    /// The request's decisions, by value: the caller is done.
    pub fn into_trace(self) -> Vec<AuthzRecord> {
        self.trace.0.into_inner()
    }

    /// The principal as the policy engine sees it: the profile's, built by
    /// the edge once per principal, or derived from the ARN.
    pub fn request_principal(&self) -> Result<RequestPrincipal, AuthzError> {
        match &self.profile.principal {
            Some(p) => Ok(p.clone()),
            None => RequestPrincipal::from_arn(&self.arn)
                .map_err(|e| AuthzError::Principal(format!("{}: {e}", self.arn))),
        }
    }
}

/// One identity-side policy of the caller (identity-based, permissions
/// boundary or session policy), parsed once by whoever owns it.
#[derive(Clone)]
pub struct CallerPolicy {
    /// How the trace names the policy (`user inline policy NAME`, a managed policy's name).
    pub label: String,
    /// Which side of the decision it sits on (identity-based, boundary, session).
    pub kind: PolicyKind,
    /// The parsed policy, shared with the entity that holds it.
    pub policy: Arc<Policy>,
}

impl std::fmt::Debug for CallerPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallerPolicy({:?}, {})", self.kind, self.label)
    }
}

/// What a request itself says about the global condition keys: where it
/// came from, over what, when, and through which service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFacts {
    /// The peer address (`aws:SourceIp`).
    pub source_ip: Option<std::net::IpAddr>,
    /// `aws:SecureTransport`.
    pub secure_transport: bool,
    /// `aws:CurrentTime` and `aws:EpochTime`, in seconds.
    pub epoch_seconds: i64,
    /// `kms:ViaService` (and `aws:ViaAWSService` true) when a trusted
    /// service principal made the call for the caller.
    pub via_service: Option<String>,
    /// The AWS service principal making the call itself (not on anyone's
    /// behalf), with the resource it acts for: what a grant to a service
    /// principal (`GranteeServicePrincipal`) applies to.
    pub service_call: Option<ServiceCall>,
}

/// A call an AWS service principal makes itself (AWS: with its own service
/// credentials), on behalf of one of its resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCall {
    /// The service principal, `dynamodb.amazonaws.com`
    /// (`aws:PrincipalServiceName`).
    pub principal: String,
    /// The resource the call is made for (`aws:SourceArn`; its account is
    /// `aws:SourceAccount`), when the service names one.
    pub source_arn: Option<String>,
}

/// The request-wide condition keys of one request. Built on first use:
/// the default key policy reads none of them, and building them cost about
/// 3% of an Encrypt request (four keys, their strings and a timestamp).
#[derive(Debug, Default, Clone)]
pub struct RequestContext {
    /// `None`: no request-wide keys at all (tests, analyses of stored data).
    facts: Option<RequestFacts>,
    built: std::sync::OnceLock<Context>,
}

impl RequestContext {
    /// The context of a request with request-wide facts; keys are built on first use.
    pub fn new(facts: RequestFacts) -> Self {
        RequestContext {
            facts: Some(facts),
            built: std::sync::OnceLock::new(),
        }
    }

    /// The keys as a policy context.
    pub fn get(&self) -> &Context {
        self.built.get_or_init(|| {
            let mut context = Context::new();
            let Some(f) = &self.facts else {
                return context;
            };
            if let Some(ip) = f.source_ip {
                context.insert("aws:SourceIp", ip);
            }
            // True only for the listener's own TLS (`serve --tls-cert`): a
            // TLS proxy in front of a plain listener is invisible here.
            context.insert("aws:SecureTransport", f.secure_transport);
            context.insert(
                "aws:CurrentTime",
                ferrokms_policy::Timestamp::from_epoch_seconds(f.epoch_seconds),
            );
            context.insert("aws:EpochTime", f.epoch_seconds);
            if let Some(service) = &f.via_service {
                context.insert("kms:ViaService", service.as_str());
                context.insert("aws:ViaAWSService", true);
            }
            if let Some(call) = &f.service_call {
                context.insert("aws:PrincipalIsAWSService", true);
                context.insert("aws:PrincipalServiceName", call.principal.as_str());
                if let Some(arn) = &call.source_arn {
                    context.insert("aws:SourceArn", arn.as_str());
                    if let Ok(parsed) = ferrokms_types::Arn::parse(arn) {
                        context.insert("aws:SourceAccount", parsed.account());
                    }
                }
            }
            context
        })
    }

    /// The service that made the call for the caller, if any.
    pub fn via_service(&self) -> Option<&str> {
        self.facts.as_ref()?.via_service.as_deref()
    }

    /// The AWS service principal making the call itself, if any.
    pub fn service_call(&self) -> Option<&ServiceCall> {
        self.facts.as_ref()?.service_call.as_ref()
    }
}

/// The principal's side of authorization: who it is, its identity-side
/// policies, and its own condition keys (principal tags, source identity,
/// token issue time).
#[derive(Debug, Default)]
pub struct CallerProfile {
    /// `None`: derived from the caller's ARN.
    pub principal: Option<RequestPrincipal>,
    /// The identity-side policies, evaluated with the resource's policy.
    pub policies: Vec<CallerPolicy>,
    /// The principal's own condition keys (`aws:PrincipalTag/*`, `aws:SourceIdentity`...).
    pub context: Context,
}
