//! The finite universe of an analysis: representative principals, the
//! cells of every free context key, and which keys matter for which
//! (principal, action).
//!
//! # Principals
//!
//! The evaluator looks at a caller through: the `Principal` values it
//! equals (an ARN, its role's ARN, its account, `*`), its kind (root, user,
//! role session, federated user, service), its account (`kms:CallerAccount`,
//! `aws:PrincipalAccount`, whether it is the key's), its ARN as
//! `aws:PrincipalArn` gives it (a session's role ARN), and its
//! identity-side policies. Callers that agree on all of these are
//! indistinguishable. So the representatives are, for each account cell:
//! the root user; every principal some policy, grant or holder names (a
//! role by one session of it; a user also by a federated user of the same
//! name, which principal matching relates to it); one unnamed user (and,
//! where a policy reads `aws:PrincipalType`, one unnamed role session and
//! federated user); where a policy compares `aws:PrincipalArn`, one unnamed
//! user, role (by a session) and federated user per Venn cell of its
//! patterns and the named ARNs, among the ARNs of that account and kind (an
//! IAM path and name after `arn:aws:iam::ACCOUNT:user/` ...); and every
//! service principal named. The account cells are the Venn cells of
//! every account named literally and every pattern compared with
//! `kms:CallerAccount` or `aws:PrincipalAccount`, among twelve-digit
//! strings ([`crate::pattern`]); the accounts no policy names literally are
//! the *public* ones. A principal of an account the operator does not know
//! holds an allow-everything identity policy (its account decides, and more
//! identity permission never removes access: grants and delegation only
//! gain from it).
//!
//! Condition keys that identify the caller more finely than that
//! (`aws:username`, `aws:userid`, `aws:PrincipalTag/*`,
//! `aws:PrincipalOrgID`, ...), principals named by unique id,
//! `CanonicalUser` principals, `Federated` principals in a key policy, and
//! policy variables are outside the encoding: the analysis answers
//! "unknown" and names the construct. In a role's trust policy a
//! `Federated` provider is a representative of its own (its identities),
//! and one more stands for the providers no policy names.
//!
//! # Context
//!
//! Keys the key decides (`kms:KeySpec`, `aws:ResourceTag/*`, ...) come
//! from [`crate::model::KeyTarget::facts`]; keys the caller decides come
//! from the representative; `aws:ResourceAccount` and `aws:RequestedRegion`
//! from the key. Every other key a policy reads is *free*: the request may
//! carry any value or none, and [`crate::values`] gives one value per cell.
//! Grant constraints add their encryption-context pairs and source ARN as
//! literals of the keys they read, plus one encryption-context key no
//! constraint names (which `EncryptionContextEquals` refuses).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ferrokms_authz::CallerPolicy;
use ferrokms_policy::{
    evaluate_statement, Action, ContextValues, Mismatch, Policy, PolicyKind, PrincipalId,
    PrincipalSpec, Request, StatementResult,
};
use ferrokms_types::{AccountId, Arn};

use crate::concrete::{grant_names, role_asks, Asker, Rep, RepKind};
use crate::model::{Grantee, PolicySet, Resource};
use crate::pattern::{cells, Pattern};
use crate::values::KeyUse;
use crate::ReachError;

/// Condition keys outside the encoding: they identify the caller more
/// finely than the representatives do.
const UNSUPPORTED_KEYS: &[&str] = &[
    "aws:username",
    "aws:userid",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:principalservicename",
    "aws:principalservicenameslist",
    "aws:sourceidentity",
    "aws:federatedprovider",
    "kms:encryptioncontextkeys",
];

/// Keys the key, the caller or the request's target fix: not enumerated.
const DETERMINED_KEYS: &[&str] = &[
    "aws:resourceaccount",
    "aws:requestedregion",
    "aws:principaltype",
    "aws:principalisawsservice",
    "kms:keyspec",
    "kms:customermasterkeyspec",
    "kms:keyusage",
    "kms:customermasterkeyusage",
    "kms:keyorigin",
    "kms:multiregion",
    "kms:multiregionkeytype",
    "kms:resourcealiases",
];

/// Keys whose value is the caller's account.
const ACCOUNT_KEYS: &[&str] = &["kms:calleraccount", "aws:principalaccount"];

/// The free encryption-context key no grant names.
pub(crate) const EXTRA_EC_KEY: &str = "kms:encryptioncontext:reach-other";

/// The service principal no policy names.
pub(crate) const OTHER_SERVICE: &str = "reach-other-service.amazonaws.com";

/// The identity provider no policy names (role analyses).
pub(crate) const OTHER_PROVIDER: &str = "reach-other-provider.example.com";

/// States the account-cell search may visit.
const ACCOUNT_STATES: usize = 500_000;

/// The representatives and key cells shared by the policy sets of one
/// analysis (one set, or the old and the new of a change).
pub struct Universe {
    /// One asker per representative and policy set: `askers[set][rep]`.
    pub askers: Vec<Vec<Asker>>,
    /// Cells already computed, by what was compared with the key.
    memo: HashMap<String, Vec<Option<ContextValues>>>,
    /// The keys some policy compares with a set operator: multivalued in
    /// every pair, whichever statements the pair reads.
    multi_keys: Vec<String>,
}

/// What one (principal, action) pair needs: its free keys with their
/// cells, and a signature of everything else its decisions depend on.
pub struct Pair {
    /// Each free key the pair's statements and grants read, with one
    /// value per cell of what they compare it with (`None`: absent).
    pub keys: Vec<(String, Vec<Option<ContextValues>>)>,
    /// Two actions of one representative with equal signatures get equal
    /// decisions in every context: the same statements apply but for
    /// their conditions, the same catalog flags, the same grant operations.
    pub signature: Vec<u8>,
}

/// How the analysis treats a condition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyClass {
    /// Outside the encoding.
    Unsupported,
    /// Fixed by the key, the caller or the key's account.
    Determined,
    /// The caller's account: realised by the account cells.
    Account,
    /// The caller's ARN (a session's role ARN): realised by principal
    /// cells of each account and kind.
    PrincipalArn,
    /// Any value, or none.
    Free,
}

fn classify(key: &str) -> KeyClass {
    if UNSUPPORTED_KEYS.contains(&key) || key.starts_with("aws:principaltag/") {
        KeyClass::Unsupported
    } else if DETERMINED_KEYS.contains(&key) || key.starts_with("aws:resourcetag/") {
        KeyClass::Determined
    } else if ACCOUNT_KEYS.contains(&key) {
        KeyClass::Account
    } else if key == "aws:principalarn" {
        KeyClass::PrincipalArn
    } else {
        KeyClass::Free
    }
}

#[derive(Default)]
struct Collect {
    accounts: Vec<AccountId>,
    /// Named principal ARNs (users, roles, sessions, federated users).
    named: Vec<String>,
    services: Vec<String>,
    account_use: Option<KeyUse>,
    principal_arn_use: Option<KeyUse>,
    keys: BTreeMap<String, KeyUse>,
    reads_principal_type: bool,
    /// A role's analysis: `{"Federated": ...}` principals are identity
    /// providers whose identities may ask the web-identity and SAML
    /// actions (outside the encoding for a key).
    federated_ok: bool,
    /// The providers named.
    providers: Vec<String>,
    /// Some resource-policy statement can name a service principal that
    /// no policy names (`"*"`, `{"AWS": "*"}`, a `NotPrincipal`).
    open_to_services: bool,
}

impl Collect {
    fn account(&mut self, a: AccountId) {
        if !self.accounts.contains(&a) {
            self.accounts.push(a);
        }
    }

    fn named(&mut self, arn: &str) -> Result<(), String> {
        let parsed = Arn::parse(arn).map_err(|_| format!("principal {arn} is not an ARN"))?;
        let acct = parsed
            .account_id()
            .ok_or_else(|| format!("principal {arn} has no account"))?;
        self.account(acct);
        if parsed.resource() != "root" && !self.named.iter().any(|n| n == arn) {
            self.named.push(arn.to_string());
        }
        Ok(())
    }

    fn aws_value(&mut self, v: &str) -> Result<(), String> {
        if let Ok(a) = AccountId::parse(v) {
            self.account(a);
            Ok(())
        } else {
            self.named(v)
        }
    }

    fn policy(&mut self, policy: &Policy, resource_based: bool) -> Result<(), String> {
        let variables = policy.variables_enabled();
        for st in policy.statements() {
            if resource_based {
                if let Some(p) = st.principal() {
                    let everyone = match p.spec() {
                        PrincipalSpec::Wildcard => true,
                        PrincipalSpec::Typed(entries) => entries
                            .iter()
                            .flat_map(ferrokms_policy::PrincipalEntry::values)
                            .any(|v| *v.id() == PrincipalId::Everyone),
                    };
                    self.open_to_services |= everyone || p.negated();
                    if let PrincipalSpec::Typed(entries) = p.spec() {
                        for e in entries {
                            for v in e.values() {
                                self.principal(v.id(), v.as_str())?;
                            }
                        }
                    }
                }
            }
            if let Some(r) = st.resource() {
                if variables && r.patterns().iter().any(|p| p.as_str().contains("${")) {
                    return Err("a policy variable in a Resource element".into());
                }
            }
            let Some(cond) = st.condition() else { continue };
            for block in cond.blocks() {
                for entry in block.entries() {
                    let key = entry.key().as_str().to_lowercase();
                    let values: Vec<&str> = entry
                        .values()
                        .iter()
                        .map(ferrokms_policy::ConditionValue::as_str)
                        .collect();
                    let class = classify(&key);
                    if class == KeyClass::Unsupported {
                        return Err(format!(
                            "condition key {} identifies the caller more finely than the encoding",
                            entry.key().as_str()
                        ));
                    }
                    if key == "aws:principaltype" {
                        self.reads_principal_type = true;
                    }
                    if class == KeyClass::Determined {
                        continue;
                    }
                    if class == KeyClass::PrincipalArn {
                        for v in &values {
                            if let Some(a) = principal_arn_account(v)? {
                                self.account(a);
                            }
                        }
                        self.principal_arn_use
                            .get_or_insert_with(|| KeyUse::new("aws:PrincipalArn"))
                            .add(block.operator(), &values, variables);
                        continue;
                    }
                    if class == KeyClass::Account {
                        self.account_use
                            .get_or_insert_with(|| KeyUse::new("kms:CallerAccount"))
                            .add(block.operator(), &values, variables);
                        continue;
                    }
                    self.keys
                        .entry(key.clone())
                        .or_insert_with(|| KeyUse::new(&key))
                        .add(block.operator(), &values, variables);
                }
            }
        }
        Ok(())
    }

    fn principal(&mut self, id: &PrincipalId, text: &str) -> Result<(), String> {
        match id {
            PrincipalId::Everyone => Ok(()),
            PrincipalId::Account(a) => {
                self.account(a.clone());
                Ok(())
            }
            PrincipalId::User(arn)
            | PrincipalId::AssumedRoleSession(arn)
            | PrincipalId::FederatedUser(arn) => self.named(arn),
            PrincipalId::Role { arn, .. } => self.named(arn),
            PrincipalId::Service(s) => {
                if !self.services.contains(s) {
                    self.services.push(s.clone());
                }
                Ok(())
            }
            PrincipalId::Federated(f) if self.federated_ok => {
                if !self.providers.contains(f) {
                    self.providers.push(f.clone());
                }
                Ok(())
            }
            PrincipalId::UniqueId(_) | PrincipalId::Federated(_) | PrincipalId::CanonicalUser(_) => {
                Err(format!("principal {text}: unique ids, Federated and CanonicalUser principals are outside the encoding"))
            }
        }
    }
}

/// The account an `aws:PrincipalArn` value names: `None` for `*` (any
/// account), the account for twelve digits; anything else is outside the
/// encoding, whose principal cells are searched one account at a time (so
/// a pattern must not split the accounts further than the account cells
/// do).
fn principal_arn_account(value: &str) -> Result<Option<AccountId>, String> {
    if value.chars().all(|c| c == '*') {
        return Ok(None);
    }
    let parts: Vec<&str> = value.split(':').collect();
    let fixed = parts.len() >= 6
        && parts[..4].iter().all(|p| !p.contains(['*', '?']))
        && (parts[4] == "*" || AccountId::parse(parts[4]).is_ok());
    if !fixed {
        return Err(format!(
            "aws:PrincipalArn value {value}: its account part is neither * nor an account id"
        ));
    }
    Ok(AccountId::parse(parts[4]).ok())
}

/// The allow-everything identity policy of an external principal.
fn allow_all() -> Result<Arc<Policy>, ReachError> {
    const TEXT: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    Policy::parse(
        TEXT,
        &ferrokms_policy::ParseOptions::for_kind(PolicyKind::IdentityBased),
    )
    .map(Arc::new)
    .map_err(|e| ReachError::Input(format!("the allow-all policy: {e}")))
}

impl Universe {
    /// Builds the universe of `sets` (they must be about the same key).
    pub fn build(sets: &[&PolicySet]) -> Result<Self, ReachError> {
        let unknown = ReachError::Unknown;
        let Some(first) = sets.first() else {
            return Err(ReachError::Input("no policy set".into()));
        };
        let mut c = Collect {
            federated_ok: first.resource == Resource::Role,
            ..Collect::default()
        };
        c.account(first.key.account.clone());
        for set in sets {
            c.policy(&set.key_policy, true).map_err(unknown)?;
            for h in &set.holders {
                c.aws_value(&h.arn).map_err(unknown)?;
                for (_, p) in &h.policies {
                    c.policy(p, false).map_err(unknown)?;
                }
            }
            for g in &set.grants {
                match &g.grantee {
                    Grantee::Aws(p) => c.aws_value(p).map_err(unknown)?,
                    Grantee::Service(s) => {
                        if !c.services.contains(s) {
                            c.services.push(s.clone());
                        }
                    }
                }
                let lit = |keys: &mut BTreeMap<String, KeyUse>, key: &str, v: &str| {
                    keys.entry(key.to_string())
                        .or_insert_with(|| KeyUse::new(key))
                        .add_literal(v);
                };
                for m in [&g.encryption_context_subset, &g.encryption_context_equals]
                    .into_iter()
                    .flatten()
                {
                    for (k, v) in m {
                        lit(
                            &mut c.keys,
                            &format!("kms:encryptioncontext:{}", k.to_lowercase()),
                            v,
                        );
                    }
                }
                if g.encryption_context_equals.is_some() {
                    c.keys
                        .entry(EXTRA_EC_KEY.to_string())
                        .or_insert_with(|| KeyUse::new(EXTRA_EC_KEY));
                }
                if let Some(arn) = &g.source_arn {
                    lit(&mut c.keys, "aws:sourcearn", arn);
                }
            }
        }
        let accounts = account_cells(&c).map_err(unknown)?;
        // Every key's cells are computed once here, so that a construct
        // outside the encoding is reported whatever the question; the pairs
        // then compute the (smaller) cells of what they read.
        for u in c.keys.values() {
            u.representatives().map_err(unknown)?;
        }
        let multi_keys = c
            .keys
            .iter()
            .filter(|(_, u)| u.is_multi())
            .map(|(k, _)| k.clone())
            .collect();
        let reps = representatives(&c, &accounts, first).map_err(unknown)?;
        let mut askers = Vec::with_capacity(sets.len());
        for set in sets {
            let mut row = Vec::with_capacity(reps.len());
            for rep in &reps {
                let policies = policies_of(set, rep)?;
                row.push(Asker::new(rep.clone(), policies)?);
            }
            askers.push(row);
        }
        Ok(Universe {
            askers,
            memo: HashMap::new(),
            multi_keys,
        })
    }

    /// The free keys that can change the decision of `action` by
    /// representative `rep` in any of `sets`, with their cells: those read
    /// by a statement that applies to the pair but for its conditions, and
    /// those the grants naming it constrain. Other statements do not apply
    /// to the pair whatever the context, so only what these compare
    /// partitions the pair's contexts.
    pub fn pair(
        &mut self,
        sets: &[&PolicySet],
        rep: usize,
        action: &str,
    ) -> Result<Pair, ReachError> {
        let parsed = Action::parse(action).map_err(|e| ReachError::Input(e.to_string()))?;
        let (cross, grantable) = sets
            .first()
            .and_then(|s| s.action_flags(action))
            .ok_or_else(|| ReachError::Input(format!("not an action of the resource: {action}")))?;
        let op = action.get(4..).unwrap_or(action);
        let mut signature = vec![u8::from(cross), u8::from(grantable)];
        // On a role, whether the representative asks the action at all
        // (the federated actions are its providers' only).
        signature.push(u8::from(sets.first().is_none_or(|s| {
            s.resource != Resource::Role || role_asks(&self.askers[0][rep].rep.kind, action)
        })));
        signature.push(u8::from(matches!(
            op,
            "DescribeKey" | "RetireGrant" | "CreateGrant"
        )));
        let mut uses: BTreeMap<String, KeyUse> = BTreeMap::new();
        let mut fingerprints: BTreeMap<String, String> = BTreeMap::new();
        for (si, set) in sets.iter().enumerate() {
            let asker = &self.askers[si][rep];
            let principal = asker.rep.request_principal()?;
            let request = Request::in_account(
                principal,
                parsed.clone(),
                &set.key.arn,
                Some(set.key.account.clone()),
            );
            let mut policies: Vec<(PolicyKind, &Policy)> =
                vec![(PolicyKind::ResourceBased, &set.key_policy)];
            for p in asker.policies() {
                policies.push((p.kind, &p.policy));
            }
            for (kind, policy) in policies {
                let variables = policy.variables_enabled();
                for st in policy.statements() {
                    let matters = match evaluate_statement(st, kind, &request) {
                        StatementResult::Applies { .. } => true,
                        StatementResult::NotApplicable(Mismatch::Condition(_)) => true,
                        StatementResult::NotApplicable(_) => false,
                    };
                    signature.push(u8::from(matters));
                    if !matters {
                        continue;
                    }
                    for block in st
                        .condition()
                        .map(ferrokms_policy::Condition::blocks)
                        .unwrap_or_default()
                    {
                        for e in block.entries() {
                            let key = e.key().as_str().to_lowercase();
                            if classify(&key) != KeyClass::Free {
                                continue;
                            }
                            let values: Vec<&str> = e
                                .values()
                                .iter()
                                .map(ferrokms_policy::ConditionValue::as_str)
                                .collect();
                            let fp = fingerprints.entry(key.clone()).or_default();
                            fp.push_str(&format!("{}{values:?}{variables};", block.operator()));
                            uses.entry(key.clone())
                                .or_insert_with(|| KeyUse::new(&key))
                                .add(block.operator(), &values, variables);
                        }
                    }
                }
            }
            for g in &set.grants {
                let names = grantable && grant_names(g, &asker.rep);
                let listed = g.operations.iter().any(|o| o == op);
                signature.push(u8::from(names) + 2 * u8::from(listed));
                if !names || !listed {
                    continue;
                }
                let mut lit = |key: &str, v: &str| {
                    fingerprints
                        .entry(key.to_string())
                        .or_default()
                        .push_str(&format!("={v:?};"));
                    uses.entry(key.to_string())
                        .or_insert_with(|| KeyUse::new(key))
                        .add_literal(v);
                };
                for m in [&g.encryption_context_subset, &g.encryption_context_equals]
                    .into_iter()
                    .flatten()
                {
                    for (k, v) in m {
                        lit(&format!("kms:encryptioncontext:{}", k.to_lowercase()), v);
                    }
                }
                if let Some(arn) = &g.source_arn {
                    lit("aws:sourcearn", arn);
                }
                if g.encryption_context_equals.is_some() {
                    fingerprints.entry(EXTRA_EC_KEY.to_string()).or_default();
                    uses.entry(EXTRA_EC_KEY.to_string())
                        .or_insert_with(|| KeyUse::new(EXTRA_EC_KEY));
                }
            }
        }
        let mut keys = Vec::with_capacity(uses.len());
        for (name, mut u) in uses {
            if self.multi_keys.contains(&name) {
                u.set_multi();
                fingerprints
                    .entry(name.clone())
                    .or_default()
                    .push_str("multi;");
            }
            let fp = format!(
                "{name}|{}",
                fingerprints.get(&name).map_or("", String::as_str)
            );
            let values = match self.memo.get(&fp) {
                Some(v) => v.clone(),
                None => {
                    let v = u.representatives().map_err(ReachError::Unknown)?;
                    self.memo.insert(fp, v.clone());
                    v
                }
            };
            keys.push((name, values));
        }
        Ok(Pair { keys, signature })
    }
}

fn policies_of(set: &PolicySet, rep: &Rep) -> Result<Vec<CallerPolicy>, ReachError> {
    let holder_arn = match &rep.kind {
        RepKind::Session { role_arn } => role_arn.as_str(),
        _ => rep.arn.as_str(),
    };
    if let Some(h) = set.holders.iter().find(|h| h.arn == holder_arn) {
        return Ok(h
            .policies
            .iter()
            .enumerate()
            .map(|(i, (kind, policy))| CallerPolicy {
                label: format!("{} policy {i}", kind.as_str()),
                kind: *kind,
                policy: policy.clone(),
            })
            .collect());
    }
    if rep.external
        && !matches!(
            rep.kind,
            RepKind::Root | RepKind::Service | RepKind::Provider
        )
    {
        return Ok(vec![CallerPolicy {
            label: "external identity policy (any)".into(),
            kind: PolicyKind::IdentityBased,
            policy: allow_all()?,
        }]);
    }
    Ok(Vec::new())
}

/// The accounts: one per cell, with whether a policy names it literally.
fn account_cells(c: &Collect) -> Result<Vec<(AccountId, bool)>, String> {
    let mut patterns: Vec<Pattern> = c
        .accounts
        .iter()
        .map(|a| Pattern::literal(a.as_str()))
        .collect();
    let mut literals: Vec<String> = c.accounts.iter().map(|a| a.as_str().to_string()).collect();
    if let Some(u) = &c.account_use {
        let (p, l) = u.text_patterns()?;
        patterns.extend(p);
        literals.extend(l);
    }
    let found = cells(
        &patterns,
        &[Pattern::account_shape()],
        false,
        ACCOUNT_STATES,
    )
    .map_err(|e| format!("more than {} account-pattern states", e.0))?;
    let mut out: Vec<(AccountId, bool)> = c.accounts.iter().map(|a| (a.clone(), true)).collect();
    for cell in found {
        let Ok(a) = AccountId::parse(&cell.witness) else {
            continue;
        };
        if out.iter().any(|(b, _)| *b == a) {
            continue;
        }
        let named = literals.contains(&cell.witness);
        out.push((a, named));
    }
    Ok(out)
}

/// States the principal-ARN cell search may visit per account and kind.
const PRINCIPAL_ARN_STATES: usize = 200_000;

fn representatives(
    c: &Collect,
    accounts: &[(AccountId, bool)],
    set: &PolicySet,
) -> Result<Vec<Rep>, String> {
    let arn_patterns = match &c.principal_arn_use {
        Some(u) => Some(u.text_patterns()?.0),
        None => None,
    };
    let mut reps = Vec::new();
    let key_account = &set.key.account;
    for (acct, named) in accounts {
        let external = !set.knows(acct);
        let public = !named;
        let who = if public {
            format!("any principal of an account no policy names (e.g. {acct})")
        } else {
            format!("account {acct}")
        };
        let mut push = |arn: String, kind: RepKind, class: String| {
            if !reps.iter().any(|r: &Rep| r.arn == arn) {
                reps.push(Rep {
                    arn,
                    account: acct.clone(),
                    kind,
                    class,
                    external,
                    public,
                });
            }
        };
        push(
            acct.root_arn("aws"),
            RepKind::Root,
            if public {
                who.clone()
            } else {
                format!("arn:aws:iam::{acct}:root")
            },
        );
        for arn in &c.named {
            let Ok(parsed) = Arn::parse(arn) else {
                continue;
            };
            if parsed.account_id().as_ref() != Some(acct) {
                continue;
            }
            let res = parsed.resource();
            if let Some(rest) = res.strip_prefix("role/") {
                let name = rest.rsplit('/').next().unwrap_or(rest);
                push(
                    acct.sts_arn(&format!("assumed-role/{name}/reach-session")),
                    RepKind::Session {
                        role_arn: arn.clone(),
                    },
                    arn.clone(),
                );
            } else if let Some(rest) = res.strip_prefix("assumed-role/") {
                let role = rest.split('/').next().unwrap_or(rest);
                push(
                    arn.clone(),
                    RepKind::Session {
                        role_arn: acct.iam_arn(&format!("role/{role}")),
                    },
                    arn.clone(),
                );
            } else if res.starts_with("federated-user/") {
                push(arn.clone(), RepKind::Federated, arn.clone());
            } else if let Some(rest) = res.strip_prefix("user/") {
                let name = rest.rsplit('/').next().unwrap_or(rest);
                push(arn.clone(), RepKind::User, arn.clone());
                push(
                    acct.sts_arn(&format!("federated-user/{name}")),
                    RepKind::Federated,
                    format!("federated user {name} of account {acct}"),
                );
            }
        }
        let other = |what: &str| {
            if public {
                who.clone()
            } else {
                format!("any other {what} of account {acct}")
            }
        };
        push(
            acct.iam_arn("user/reach-other-user"),
            RepKind::User,
            other("user"),
        );
        // Where a policy compares aws:PrincipalArn: one unnamed principal
        // of each kind per cell of its patterns (the named ones are
        // literal patterns, so the cells' witnesses are not them).
        if let Some(patterns) = &arn_patterns {
            for (kind, prefix) in [
                ("user", acct.iam_arn("user/")),
                ("role", acct.iam_arn("role/")),
                ("federated user", acct.sts_arn("federated-user/")),
            ] {
                let mut pats = patterns.clone();
                pats.extend(
                    c.named
                        .iter()
                        .filter(|n| n.starts_with(&prefix))
                        .map(|n| Pattern::literal(n)),
                );
                let found = cells(
                    &pats,
                    &[Pattern::iam_name(&prefix)],
                    false,
                    PRINCIPAL_ARN_STATES,
                )
                .map_err(|e| format!("aws:PrincipalArn: more than {} pattern states", e.0))?;
                for cell in found {
                    let arn = cell.witness;
                    let name = arn
                        .get(prefix.len()..)
                        .and_then(|n| n.rsplit('/').next())
                        .unwrap_or_default()
                        .to_string();
                    if name.is_empty() {
                        continue;
                    }
                    let class = if public {
                        who.clone()
                    } else {
                        format!("{kind}s of account {acct} like {arn}")
                    };
                    match kind {
                        "role" => push(
                            acct.sts_arn(&format!("assumed-role/{name}/reach-session")),
                            RepKind::Session {
                                role_arn: arn.clone(),
                            },
                            class,
                        ),
                        "user" => push(arn, RepKind::User, class),
                        _ => push(arn, RepKind::Federated, class),
                    }
                }
            }
        }
        if c.reads_principal_type {
            push(
                acct.sts_arn("assumed-role/reach-other-role/reach-session"),
                RepKind::Session {
                    role_arn: acct.iam_arn("role/reach-other-role"),
                },
                other("role session"),
            );
            push(
                acct.sts_arn("federated-user/reach-other"),
                RepKind::Federated,
                other("federated user"),
            );
        }
    }
    for s in &c.services {
        reps.push(Rep {
            arn: s.clone(),
            account: key_account.clone(),
            kind: RepKind::Service,
            class: format!("service {s}"),
            external: false,
            public: false,
        });
    }
    // Where a statement can name a service that no policy names, one such
    // service: it differs from every other representative (no account, its
    // own principal type, matched by no account or ARN principal).
    if c.open_to_services && !c.services.iter().any(|s| s == OTHER_SERVICE) {
        reps.push(Rep {
            arn: OTHER_SERVICE.to_string(),
            account: key_account.clone(),
            kind: RepKind::Service,
            class: "any service principal no policy names".to_string(),
            external: false,
            public: false,
        });
    }
    // A role's identity providers: each one named, and one that no policy
    // names (a `"*"` principal admits its identities too): identities
    // from outside every account, so external; the unnamed one public.
    if c.federated_ok {
        for p in c.providers.iter().filter(|p| *p != OTHER_PROVIDER) {
            reps.push(Rep {
                arn: p.clone(),
                account: key_account.clone(),
                kind: RepKind::Provider,
                class: format!("federated identities of {p}"),
                external: true,
                public: false,
            });
        }
        reps.push(Rep {
            arn: OTHER_PROVIDER.to_string(),
            account: key_account.clone(),
            kind: RepKind::Provider,
            class: "federated identities of a provider no policy names".to_string(),
            external: true,
            public: true,
        });
    }
    Ok(reps)
}
