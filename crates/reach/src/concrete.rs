//! The concrete decision for one request: the server's own authorization
//! path (`ferrokms_authz::decide` with the key policy as the resource
//! policy that must admit the caller), then KMS's grant rule where the
//! policies implicitly deny. Every answer of the analysis is a request this
//! function allows, or the proof that it allows none of the
//! representatives.
//!
//! The grant rule mirrors `crates/kms/src/grants/mod.rs` (`grantee_match`,
//! `IdentityCaps::admit`, `GrantRecord::operation_miss`), which this crate
//! cannot call (the crate graph points from `kms` down to `authz`, not
//! back). One difference by construction: the request's `aws:SourceArn` is
//! read from its context here, where the server takes it from the service
//! call that a trusted service principal signs.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrokms_authz::{
    decide, Caller, CallerPolicy, CallerProfile, IdentitySide, Question, ResourcePolicy,
};
use ferrokms_policy::{CombineMode, Context, ContextValue, Decision, PolicyKind, RequestPrincipal};
use ferrokms_types::{AccountId, Region};

use crate::model::{key_action, Grant, Grantee, PolicySet};
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
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::KeyPolicy => f.write_str("key policy"),
            Path::Delegation => f.write_str("delegation + identity policy"),
            Path::Grant(id) => write!(f, "grant {id}"),
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
    let (cross, grantable) = key_action(action)
        .ok_or_else(|| ReachError::Input(format!("not a key action: {action}")))?;
    let verdict = ask(set, asker, &asker.identity, action, context, cross)?;
    let reachable = asker.rep.account == set.key.account || cross;
    if verdict.0.is_allowed() {
        if asker.rep.external
            || !asker.has_identity_policies
            || matches!(asker.rep.kind, RepKind::Root)
        {
            return Ok(Some(Path::KeyPolicy));
        }
        let bare = ask(set, asker, &asker.bare, action, context, cross)?;
        return Ok(Some(if bare.0.is_allowed() {
            Path::KeyPolicy
        } else {
            Path::Delegation
        }));
    }
    if !matches!(verdict.0, Decision::ImplicitDeny { .. }) || !reachable || !grantable {
        return Ok(None);
    }
    let op = action.get(4..).unwrap_or(action);
    let ec = encryption_context(context);
    Ok(set
        .grants
        .iter()
        .find(|g| grant_allows(g, &asker.rep, op, context, &ec, verdict.1))
        .map(|g| Path::Grant(g.id.clone())))
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
        if want("kms:CallerAccount") && !ctx.contains("kms:CallerAccount") {
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

/// How a grant names the caller (`crates/kms/src/grants`, `GranteeMatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GranteeMatch {
    Direct,
    Role,
    Account,
    Service,
}

fn grantee_match(grantee: &Grantee, rep: &Rep) -> Option<GranteeMatch> {
    match grantee {
        Grantee::Service(s) => {
            (rep.kind == RepKind::Service && rep.arn == *s).then_some(GranteeMatch::Service)
        }
        Grantee::Aws(p) => {
            if rep.kind == RepKind::Service {
                return None;
            }
            if *p == rep.arn {
                return Some(GranteeMatch::Direct);
            }
            if let RepKind::Session { role_arn } = &rep.kind {
                if role_arn == p {
                    return Some(GranteeMatch::Role);
                }
            }
            let root = rep.account.root_arn("aws");
            (*p == root || p == rep.account.as_str()).then_some(GranteeMatch::Account)
        }
    }
}

/// Whether `grantee` can name `rep` at all (what makes a grant's
/// constraints matter for the representative).
pub fn grant_names(g: &Grant, rep: &Rep) -> bool {
    grantee_match(&g.grantee, rep).is_some()
}

fn grant_allows(
    g: &Grant,
    rep: &Rep,
    op: &str,
    ctx: &Context,
    ec: &BTreeMap<String, String>,
    side: IdentitySide,
) -> bool {
    let Some(m) = grantee_match(&g.grantee, rep) else {
        return false;
    };
    let admitted = match m {
        GranteeMatch::Direct | GranteeMatch::Service => true,
        GranteeMatch::Role => side.boundary && side.session,
        GranteeMatch::Account => side.identity && side.boundary && side.session,
    };
    if !admitted || !g.operations.iter().any(|o| o == op) {
        return false;
    }
    if !matches!(op, "DescribeKey" | "RetireGrant" | "CreateGrant") && !constraints_hold(g, ec) {
        return false;
    }
    if op != "RetireGrant" {
        if let Some(arn) = &g.source_arn {
            let source = ctx.get("aws:SourceArn").and_then(|e| {
                e.values
                    .as_slice()
                    .first()
                    .map(|v| v.as_text().into_owned())
            });
            if source.as_deref() != Some(arn.as_str()) {
                return false;
            }
        }
    }
    true
}

const EC_PREFIX: &str = "kms:encryptioncontext:";

/// The request's encryption context, keys lowercased (as
/// `context_encryption_context` and `lowered` in `crates/kms/src/grants`).
fn encryption_context(ctx: &Context) -> BTreeMap<String, String> {
    ctx.iter()
        .filter(|e| e.name.to_lowercase().starts_with(EC_PREFIX))
        .filter_map(|e| {
            let key = e.name.get(EC_PREFIX.len()..)?.to_lowercase();
            let v = e.values.as_slice().first()?.as_text().into_owned();
            Some((key, v))
        })
        .collect()
}

fn constraints_hold(g: &Grant, ec: &BTreeMap<String, String>) -> bool {
    let has =
        |m: &BTreeMap<String, String>| m.iter().all(|(k, v)| ec.get(&k.to_lowercase()) == Some(v));
    // An empty map is no constraint (`GrantConstraints::without_empty_maps`).
    if let Some(eq) = g
        .encryption_context_equals
        .as_ref()
        .filter(|m| !m.is_empty())
    {
        if eq.len() != ec.len() || !has(eq) {
            return false;
        }
    }
    if let Some(sub) = &g.encryption_context_subset {
        if !has(sub) {
            return false;
        }
    }
    true
}
