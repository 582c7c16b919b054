//! The concrete decision for one request: the server's own authorization
//! path (`ferrokms_authz::decide` with the key policy as the resource
//! policy that must admit the caller), then KMS's grant rule where the
//! policies implicitly deny. Every answer of the analysis is a request this
//! function allows, or the proof that it allows none of the
//! representatives.
//!
//! The grant rule is the server's own: `ferrokms_authz::grants::allows`,
//! the one function `crates/kms/src/grants` decides grants with, over a
//! view of the model's grant ([`grant_view`]) and of the representative
//! caller ([`grant_caller`]). One difference by construction: the
//! request's `aws:SourceArn` is read from its context here, where the
//! server takes it from the service call that a trusted service principal
//! signs.

use std::sync::Arc;

use ferrokms_authz::grants::{self, GrantCaller, GrantRequest, GrantView, GranteeView};
use ferrokms_authz::{
    decide, Caller, CallerPolicy, CallerProfile, IdentitySide, Question, ResourcePolicy,
};
use ferrokms_policy::{CombineMode, Context, ContextValue, Decision, PolicyKind, RequestPrincipal};
use ferrokms_types::{AccountId, Region};

use crate::model::{Grant, Grantee, PolicySet, Resource};
use crate::ReachError;

/// How an allowed request is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Path {
    /// The key policy admits the caller on its own (or, across accounts,
    /// with the caller's identity policies, which its account controls).
    KeyPolicy,
    /// An identity-based policy, through the key policy's delegation to
    /// the account (`arn:aws:iam::ACCOUNT:root`).
    Delegation,
    /// A grant, by its id.
    Grant(String),
    /// A role's trust policy admits the caller on its own (or, across
    /// accounts, with the caller's identity policies).
    TrustPolicy,
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::KeyPolicy => f.write_str("key policy"),
            Path::Delegation => f.write_str("delegation + identity policy"),
            Path::Grant(id) => write!(f, "grant {id}"),
            Path::TrustPolicy => f.write_str("trust policy"),
        }
    }
}

/// What kind of principal a representative is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepKind {
    /// The account's root user.
    Root,
    /// An IAM user.
    User,
    /// A session of a role.
    Session {
        /// The role's ARN.
        role_arn: String,
    },
    /// A federated user.
    Federated,
    /// An AWS service principal.
    Service,
    /// An identity of a web-identity (OIDC) or SAML provider, as
    /// `{"Federated": ...}` names it (role analyses only).
    Provider,
}

/// One representative principal: a concrete caller standing for a class
/// of principals that every policy treats alike.
#[derive(Debug, Clone)]
pub struct Rep {
    /// The caller ARN (a session ARN for a role; the name for a service).
    pub arn: String,
    /// The caller's account (a service acts in the key's account).
    pub account: AccountId,
    /// What kind of principal.
    pub kind: RepKind,
    /// The class it stands for, as findings name it.
    pub class: String,
    /// Outside the key's account and the accounts the operator knows.
    pub external: bool,
    /// Of an account that no policy and no grant names literally: "anyone".
    pub public: bool,
}

impl Rep {
    /// The principal as the policy engine sees it.
    pub fn request_principal(&self) -> Result<RequestPrincipal, ReachError> {
        let p = match &self.kind {
            RepKind::Service => RequestPrincipal::service(&self.arn),
            // Not a principal of any account: the trust policy alone
            // decides (the policy engine treats a caller without an
            // account as of the resource's).
            RepKind::Provider => RequestPrincipal::anonymous().with_federated_provider(&self.arn),
            RepKind::Root => RequestPrincipal::root(self.account.clone()),
            RepKind::Session { role_arn } => RequestPrincipal::from_arn(&self.arn)
                .map_err(|e| ReachError::Input(e.to_string()))?
                .with_role_arn(role_arn),
            RepKind::User | RepKind::Federated => RequestPrincipal::from_arn(&self.arn)
                .map_err(|e| ReachError::Input(e.to_string()))?,
        };
        Ok(p)
    }

    /// The caller's identity as the server's edge would build it, with the
    /// given policies.
    pub fn identity(&self, policies: Vec<CallerPolicy>) -> Result<Arc<CallerProfile>, ReachError> {
        let principal = self.request_principal()?;
        let mut context = Context::new();
        for (k, v) in principal.context_keys() {
            context.insert(k, v);
        }
        Ok(Arc::new(CallerProfile {
            principal: Some(principal),
            policies,
            context,
        }))
    }
}

/// A representative ready to ask with: its identity with and without its
/// identity-based policies (the second tells the key-policy path from the
/// delegation path).
pub struct Asker {
    /// The representative.
    pub rep: Rep,
    identity: Arc<CallerProfile>,
    bare: Arc<CallerProfile>,
    has_identity_policies: bool,
}

impl Asker {
    /// Prepares `rep` with `policies`.
    pub fn new(rep: Rep, policies: Vec<CallerPolicy>) -> Result<Self, ReachError> {
        let has_identity_policies = policies.iter().any(|p| p.kind == PolicyKind::IdentityBased);
        let bare_policies = policies
            .iter()
            .filter(|p| p.kind != PolicyKind::IdentityBased)
            .cloned()
            .collect();
        Ok(Asker {
            identity: rep.identity(policies)?,
            bare: rep.identity(bare_policies)?,
            has_identity_policies,
            rep,
        })
    }
}

impl Asker {
    /// The identity-side policies it holds.
    pub fn policies(&self) -> &[CallerPolicy] {
        &self.identity.policies
    }
}

/// Whether `set` allows `action` by `asker` with `context`, and how.
pub fn allows(
    set: &PolicySet,
    asker: &Asker,
    action: &str,
    context: &Context,
) -> Result<Option<Path>, ReachError> {
    let (cross, grantable) = set
        .action_flags(action)
        .ok_or_else(|| ReachError::Input(format!("not an action of the resource: {action}")))?;
    if set.resource == Resource::Role && !role_asks(&asker.rep.kind, action) {
        return Ok(None);
    }
    let verdict = ask(set, asker, &asker.identity, action, context, cross)?;
    let reachable = asker.rep.account == set.key.account || cross;
    if verdict.0.is_allowed() {
        let direct = match set.resource {
            Resource::Key => Path::KeyPolicy,
            Resource::Role => Path::TrustPolicy,
        };
        if asker.rep.external
            || !asker.has_identity_policies
            || matches!(asker.rep.kind, RepKind::Root)
        {
            return Ok(Some(direct));
        }
        let bare = ask(set, asker, &asker.bare, action, context, cross)?;
        return Ok(Some(if bare.0.is_allowed() {
            direct
        } else {
            Path::Delegation
        }));
    }
    if !matches!(verdict.0, Decision::ImplicitDeny { .. }) || !reachable || !grantable {
        return Ok(None);
    }
    let op = action.get(4..).unwrap_or(action);
    let ec = grants::encryption_context(context);
    let source = context.get("aws:SourceArn").and_then(|e| {
        e.values
            .as_slice()
            .first()
            .map(|v| v.as_text().into_owned())
    });
    let request = GrantRequest {
        caller: grant_caller(&asker.rep),
        operation: op,
        encryption_context: &ec,
        source_arn: source.as_deref(),
        identity_side: verdict.1,
    };
    Ok(set
        .grants
        .iter()
        .find(|g| grants::allows(&grant_view(g), &request))
        .map(|g| Path::Grant(g.id.clone())))
}

/// Whether a caller of this kind makes a request of `action` on a role at
/// all. The root user never does: `crates/iam/src/sts.rs` refuses it
/// before any policy is read ("Roles may not be assumed by root
/// accounts"), and TagSession and SetSourceIdentity are only asked within
/// an AssumeRole. A federated identity (of a `{"Federated": ...}`
/// provider) asks the web-identity and SAML actions, and with them
/// TagSession and SetSourceIdentity; an IAM principal or a service asks
/// AssumeRole, TagSession and SetSourceIdentity, never the federated ones.
pub(crate) fn role_asks(kind: &RepKind, action: &str) -> bool {
    let federated_action = action.eq_ignore_ascii_case("sts:AssumeRoleWithWebIdentity")
        || action.eq_ignore_ascii_case("sts:AssumeRoleWithSAML");
    match kind {
        RepKind::Root => false,
        RepKind::Provider => !action.eq_ignore_ascii_case("sts:AssumeRole"),
        _ => !federated_action,
    }
}

fn ask(
    set: &PolicySet,
    asker: &Asker,
    identity: &Arc<CallerProfile>,
    action: &str,
    context: &Context,
    cross: bool,
) -> Result<(Decision, IdentitySide), ReachError> {
    let region = Region::parse(&set.key.region)
        .map_err(|_| ReachError::Input(format!("not a region: {}", set.key.region)))?;
    let caller = Caller {
        account: asker.rep.account.clone(),
        region,
        arn: asker.rep.arn.clone(),
        profile: identity.clone(),
        context: ferrokms_authz::RequestContext::default(),
        trace: Default::default(),
    };
    let caller_account = asker.rep.account.to_string();
    let resource_keys = |ctx: &mut Context, want: &dyn Fn(&str) -> bool| {
        for e in set.key.facts.iter() {
            if want(&e.name) && !ctx.contains(&e.name) {
                match &e.values {
                    ferrokms_policy::ContextValues::Single(v) => ctx.insert(&e.name, v.clone()),
                    ferrokms_policy::ContextValues::Multi(v) => {
                        ctx.insert_multi(&e.name, v.clone());
                    }
                }
            }
        }
        if set.resource == Resource::Key
            && want("kms:CallerAccount")
            && !ctx.contains("kms:CallerAccount")
        {
            ctx.insert(
                "kms:CallerAccount",
                ContextValue::String(caller_account.clone()),
            );
        }
    };
    let reachable = asker.rep.account == set.key.account || cross;
    let verdict = decide(
        &caller,
        Question {
            action,
            resource: &set.key.arn,
            resource_account: &set.key.account,
            cross_account: reachable,
            resource_policy: Some(ResourcePolicy {
                label: "key policy",
                policy: &set.key_policy,
                mode: CombineMode::ResourcePolicyRequired,
            }),
            context: Some(context),
            resource_keys: Some(&resource_keys),
        },
    )
    .map_err(|e| ReachError::Input(e.to_string()))?;
    Ok((verdict.decision, verdict.identity_side))
}

/// A model grant as the grant rule (`ferrokms_authz::grants`) reads it.
pub fn grant_view(g: &Grant) -> GrantView<'_> {
    GrantView {
        grantee: match &g.grantee {
            Grantee::Aws(p) => GranteeView::Aws(p),
            Grantee::Service(s) => GranteeView::Service(s),
        },
        operations: &g.operations,
        encryption_context_subset: g.encryption_context_subset.as_ref(),
        encryption_context_equals: g.encryption_context_equals.as_ref(),
        source_arn: g.source_arn.as_deref(),
    }
}

/// A representative as the grant rule matches grantees against it: a
/// service principal is the service making the call itself, of no
/// account; any other is its ARN, its account and its session's role.
pub fn grant_caller(rep: &Rep) -> GrantCaller<'_> {
    let service = rep.kind == RepKind::Service;
    let of_account = !matches!(rep.kind, RepKind::Service | RepKind::Provider);
    GrantCaller {
        arn: &rep.arn,
        account: of_account.then_some(&rep.account),
        partition: "aws",
        role_arn: match &rep.kind {
            RepKind::Session { role_arn } => Some(role_arn),
            _ => None,
        },
        service: service.then_some(rep.arn.as_str()),
    }
}

/// Whether `grantee` can name `rep` at all (what makes a grant's
/// constraints matter for the representative).
pub fn grant_names(g: &Grant, rep: &Rep) -> bool {
    grants::grantee_match(grant_view(g).grantee, &grant_caller(rep)).is_some()
}
