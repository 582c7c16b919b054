//! The questions: enumerate the representative requests, ask the concrete
//! evaluator each, and answer with a witness or with the count of what was
//! checked.

use ferrokms_policy::{Context, ContextValues};

use crate::concrete::{allows, Path, RepKind};
use crate::model::{PolicySet, RolePolicySet, KEY_ACTIONS, ROLE_ACTIONS};
use crate::pattern::Pattern;
use crate::universe::{Pair, Universe};
use crate::ReachError;

/// Representative requests one question may ask, in all: past this the
/// answer is "unknown" rather than a partial search.
pub const MAX_REQUESTS: u64 = 2_000_000;

/// A witness's or an access entry's context (`(key, value)` pairs as
/// this crate writes them, `[a, b]` for a multivalued key) as a request
/// context again, for whoever asks the concrete evaluator about it.
pub fn context_of(pairs: &[(String, String)]) -> Context {
    let mut ctx = Context::new();
    for (k, v) in pairs {
        match v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => ctx.insert_multi(
                k,
                inner
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(ferrokms_policy::ContextValue::from)
                    .collect(),
            ),
            None => ctx.insert(k, v.as_str()),
        }
    }
    ctx
}

/// A request the concrete evaluator allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// The caller (a session ARN for a role).
    pub principal: String,
    /// The class of principals it stands for.
    pub principal_class: String,
    /// The action (`kms:Decrypt`).
    pub action: String,
    /// The key ARN.
    pub resource: String,
    /// The request's free condition keys and their values (keys absent
    /// from the list are absent from the request).
    pub context: Vec<(String, String)>,
    /// How it is allowed.
    pub path: Path,
}

/// What a "not granted" rests on: every representative request was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// Representative requests asked.
    pub requests: u64,
    /// Representative principals.
    pub principals: usize,
    /// Actions.
    pub actions: usize,
}

/// The answer to an existence question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Some request is allowed; here is one.
    Allowed(Witness),
    /// No request is allowed: the enumeration of every cell was exhaustive.
    NotGranted(Proof),
    /// The policies use a construct outside the encoding, or the space is
    /// over the bound; why.
    Unknown(String),
}

/// One line of an access listing: principals of a class may perform the
/// actions through one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    /// The class of principals.
    pub principal_class: String,
    /// A principal of the class.
    pub example_principal: String,
    /// Outside the key's account and the known accounts.
    pub external: bool,
    /// How.
    pub path: Path,
    /// Only for some values of the request's condition keys.
    pub conditional: bool,
    /// The actions, sorted.
    pub actions: Vec<String>,
    /// For a conditional entry, a context under which the first action is
    /// allowed.
    pub example_context: Vec<(String, String)>,
}

struct Engine<'a> {
    sets: Vec<&'a PolicySet>,
    universe: Universe,
    asked: u64,
}

enum Flow {
    Go,
    Stop,
}

impl<'a> Engine<'a> {
    fn new(sets: Vec<&'a PolicySet>) -> Result<Self, ReachError> {
        let universe = Universe::build(&sets)?;
        Ok(Engine {
            sets,
            universe,
            asked: 0,
        })
    }

    fn reps(&self) -> usize {
        self.universe.askers.first().map_or(0, Vec::len)
    }

    /// Asks every representative context of (`rep`, `action`): `f` gets
    /// the context and each set's outcome.
    fn each(
        &mut self,
        rep: usize,
        action: &str,
        pair: &Pair,
        mut f: impl FnMut(&Context, &[Option<Path>]) -> Flow,
    ) -> Result<(), ReachError> {
        let keys = &pair.keys;
        let sizes: Vec<usize> = keys.iter().map(|(_, v)| v.len()).collect();
        let total = sizes
            .iter()
            .try_fold(1u64, |acc, &n| acc.checked_mul(n as u64));
        match total {
            Some(t) if self.asked.saturating_add(t) <= MAX_REQUESTS => {}
            _ => {
                return Err(ReachError::Unknown(format!(
                    "more than {MAX_REQUESTS} representative requests"
                )))
            }
        }
        let mut digits = vec![0usize; keys.len()];
        loop {
            let mut ctx = Context::new();
            for (d, (name, values)) in digits.iter().zip(keys) {
                match &values[*d] {
                    Some(ContextValues::Single(v)) => ctx.insert(name, v.clone()),
                    Some(ContextValues::Multi(vs)) => ctx.insert_multi(name, vs.clone()),
                    None => {}
                }
            }
            let mut outcomes = Vec::with_capacity(self.sets.len());
            for (si, set) in self.sets.iter().enumerate() {
                outcomes.push(allows(set, &self.universe.askers[si][rep], action, &ctx)?);
            }
            self.asked += 1;
            if let Flow::Stop = f(&ctx, &outcomes) {
                return Ok(());
            }
            // Next combination.
            let mut i = 0;
            loop {
                if i == digits.len() {
                    return Ok(());
                }
                digits[i] += 1;
                if digits[i] < sizes[i] {
                    break;
                }
                digits[i] = 0;
                i += 1;
            }
        }
    }

    /// The first request (over `reps` and `actions`) whose outcomes
    /// satisfy `want`; the witness takes its path from set `from`.
    fn find(
        &mut self,
        keep: impl Fn(&crate::concrete::Rep) -> bool,
        actions: &[&str],
        want: impl Fn(&[Option<Path>]) -> bool,
        from: usize,
    ) -> Answer {
        let key_arn = self.sets[from].key.arn.clone();
        let mut principals = 0;
        for rep in 0..self.reps() {
            if !keep(&self.universe.askers[from][rep].rep) {
                continue;
            }
            principals += 1;
            // Actions whose signature was already searched without a find
            // are decided alike: nothing to find there either.
            let mut searched: Vec<Vec<u8>> = Vec::new();
            for action in actions {
                let pair = match self.universe.pair(&self.sets, rep, action) {
                    Ok(p) => p,
                    Err(e) => return Answer::Unknown(e.to_string()),
                };
                if searched.contains(&pair.signature) {
                    continue;
                }
                let mut found: Option<(Context, Path)> = None;
                let r = self.each(rep, action, &pair, |ctx, outcomes| {
                    if want(outcomes) {
                        if let Some(p) = &outcomes[from] {
                            found = Some((ctx.clone(), p.clone()));
                            return Flow::Stop;
                        }
                    }
                    Flow::Go
                });
                if let Err(e) = r {
                    return Answer::Unknown(e.to_string());
                }
                searched.push(pair.signature);
                if let Some((ctx, path)) = found {
                    let r = &self.universe.askers[from][rep].rep;
                    return Answer::Allowed(Witness {
                        principal: r.arn.clone(),
                        principal_class: r.class.clone(),
                        action: (*action).to_string(),
                        resource: key_arn,
                        context: render(&ctx),
                        path,
                    });
                }
            }
        }
        Answer::NotGranted(Proof {
            requests: self.asked,
            principals,
            actions: actions.len(),
        })
    }
}

fn render(ctx: &Context) -> Vec<(String, String)> {
    ctx.iter()
        .map(|e| {
            let v = match &e.values {
                ContextValues::Single(v) => v.as_text().into_owned(),
                ContextValues::Multi(vs) => {
                    let items: Vec<String> = vs.iter().map(|v| v.as_text().into_owned()).collect();
                    format!("[{}]", items.join(", "))
                }
            };
            (e.name.clone(), v)
        })
        .collect()
}

fn all_actions() -> Vec<&'static str> {
    KEY_ACTIONS.iter().map(|(a, _, _)| *a).collect()
}

fn engine_or_answer(sets: Vec<&PolicySet>) -> Result<Engine<'_>, Box<Answer>> {
    Engine::new(sets).map_err(|e| Box::new(Answer::Unknown(e.to_string())))
}

/// Whether any principal may perform any of `actions` (names or patterns
/// such as `kms:ReEncrypt*`, matched against the key actions) on the key.
pub fn check_access_not_granted(set: &PolicySet, actions: &[&str]) -> Answer {
    let chosen = matching_actions(actions);
    let mut engine = match engine_or_answer(vec![set]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(|_| true, &chosen, |o| o[0].is_some(), 0)
}

/// The key actions that `actions` (names or patterns such as
/// `kms:ReEncrypt*`, case-insensitive) cover.
pub fn matching_actions(actions: &[&str]) -> Vec<&'static str> {
    matching(actions, all_actions())
}

fn matching(actions: &[&str], among: Vec<&'static str>) -> Vec<&'static str> {
    let patterns: Vec<Pattern> = actions
        .iter()
        .map(|a| Pattern::glob(&a.to_lowercase()))
        .collect();
    among
        .into_iter()
        .filter(|a| patterns.iter().any(|p| p.is_match(&a.to_lowercase())))
        .collect()
}

/// [`check_access_not_granted`] asked of one principal only (`principal`,
/// the ARN of a [`crate::Holder`] of the set): whether its policies let it
/// perform any of `actions` on the key.
pub fn check_access_not_granted_by(set: &PolicySet, actions: &[&str], principal: &str) -> Answer {
    let chosen = matching_actions(actions);
    let mut engine = match engine_or_answer(vec![set]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(|r| r.arn == principal, &chosen, |o| o[0].is_some(), 0)
}

/// [`check_no_new_access`] asked of one principal only (`principal`, the
/// ARN of a [`crate::Holder`] of both sets).
pub fn check_no_new_access_by(old: &PolicySet, new: &PolicySet, principal: &str) -> Answer {
    let mut engine = match engine_or_answer(vec![new, old]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(
        |r| r.arn == principal,
        &new.actions(),
        |o| o[0].is_some() && o[1].is_none(),
        0,
    )
}

/// Whether a principal of an account that no policy and no grant names
/// may perform some key action: the key is public.
pub fn check_no_public_access(set: &PolicySet) -> Answer {
    check_no_public_access_for(set, &set.actions())
}

/// [`check_no_public_access`] for the key actions `actions` only.
pub fn check_no_public_access_for(set: &PolicySet, actions: &[&str]) -> Answer {
    let mut engine = match engine_or_answer(vec![set]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(|r| r.public, actions, |o| o[0].is_some(), 0)
}

/// Whether `new` allows some request that `old` does not (both about the
/// same key): the witness is allowed by `new` and refused by `old`.
pub fn check_no_new_access(old: &PolicySet, new: &PolicySet) -> Answer {
    check_no_new_access_for(old, new, &new.actions())
}

/// [`check_no_new_access`] for the key actions `actions` only.
pub fn check_no_new_access_for(old: &PolicySet, new: &PolicySet, actions: &[&str]) -> Answer {
    let mut engine = match engine_or_answer(vec![new, old]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(|_| true, actions, |o| o[0].is_some() && o[1].is_none(), 0)
}

/// Every (principal class, path) by which principals outside the key's
/// account can use the key, with the actions: the external-access findings.
pub fn external_access(set: &PolicySet) -> Result<Vec<AccessEntry>, ReachError> {
    listing(set, true)
}

/// [`external_access`] for every principal, the key's own account's too.
pub fn access_listing(set: &PolicySet) -> Result<Vec<AccessEntry>, ReachError> {
    listing(set, false)
}

fn listing(set: &PolicySet, external_only: bool) -> Result<Vec<AccessEntry>, ReachError> {
    let mut engine = Engine::new(vec![set])?;
    let mut out: Vec<AccessEntry> = Vec::new();
    let actions = set.actions();
    for rep in 0..engine.reps() {
        let r = engine.universe.askers[0][rep].rep.clone();
        // An identity of a federated provider is of no account: outside
        // the role's whatever account the representative carries.
        let outside = r.kind == RepKind::Provider || r.account != set.key.account;
        if external_only && !outside {
            continue;
        }
        // Per action signature: what its search found (see `Pair`).
        type Found = (Vec<(Path, Context, u64)>, u64);
        let mut done: Vec<(Vec<u8>, Found)> = Vec::new();
        for action in &actions {
            let pair = engine.universe.pair(&engine.sets, rep, action)?;
            // Per path: the first context it allows in, and in how many.
            let mut paths: Vec<(Path, Context, u64)> = Vec::new();
            let mut total = 0u64;
            if let Some((_, (p, t))) = done.iter().find(|(s, _)| *s == pair.signature) {
                paths.clone_from(p);
                total = *t;
            } else {
                engine.each(rep, action, &pair, |ctx, o| {
                    total += 1;
                    if let Some(p) = &o[0] {
                        match paths.iter_mut().find(|(q, _, _)| q == p) {
                            Some(entry) => entry.2 += 1,
                            None => paths.push((p.clone(), ctx.clone(), 1)),
                        }
                    }
                    Flow::Go
                })?;
                done.push((pair.signature.clone(), (paths.clone(), total)));
            }
            for (path, ctx, n) in paths {
                let conditional = n < total;
                let entry = out.iter_mut().find(|e| {
                    e.principal_class == r.class && e.path == path && e.conditional == conditional
                });
                match entry {
                    Some(e) => {
                        if !e.actions.iter().any(|a| a == action) {
                            e.actions.push((*action).to_string());
                        }
                    }
                    None => out.push(AccessEntry {
                        principal_class: r.class.clone(),
                        example_principal: r.arn.clone(),
                        external: r.external || outside,
                        path,
                        conditional,
                        actions: vec![(*action).to_string()],
                        example_context: if conditional {
                            render(&ctx)
                        } else {
                            Vec::new()
                        },
                    }),
                }
            }
        }
    }
    for e in &mut out {
        e.actions.sort();
    }
    out.sort_by(|a, b| {
        (a.principal_class.as_str(), &a.path, a.conditional).cmp(&(
            b.principal_class.as_str(),
            &b.path,
            b.conditional,
        ))
    });
    Ok(out)
}

/// Which way a request's decision changes from the old policy set to the
/// new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Change {
    /// Allowed under the new set, refused under the old.
    Added,
    /// Allowed under the old set, refused under the new.
    Removed,
}

/// One line of an access diff: requests of a principal class for one
/// action whose decision the change turns, with the path of the set that
/// allows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffEntry {
    /// Added or removed.
    pub change: Change,
    /// The class of principals.
    pub principal_class: String,
    /// Outside the key's account and the known accounts.
    pub external: bool,
    /// The action.
    pub action: String,
    /// How the set that allows the requests allows them (the new set for
    /// added access, the old one for removed access).
    pub path: Path,
    /// Only some representative requests of the class and action change
    /// this way (others keep their decision, or change by another path).
    pub conditional: bool,
    /// A request the concrete evaluator allows under one set and refuses
    /// under the other (the first one asked); its path is [`Self::path`].
    pub witness: Witness,
    /// Representative requests that change this way.
    pub requests: u64,
}

/// Everything a change of policy set does to the key's access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDiff {
    /// The changes, sorted by change, principal class, action and path.
    pub entries: Vec<DiffEntry>,
    /// What the list rests on: every representative request of both sets
    /// was asked of both.
    pub proof: Proof,
}

impl AccessDiff {
    /// Whether some request is allowed by the new set and not by the old.
    pub fn adds_access(&self) -> bool {
        self.entries.iter().any(|e| e.change == Change::Added)
    }
}

/// Every (principal class, action, path) whose requests `new` allows and
/// `old` refuses (added) or `old` allows and `new` refuses (removed), each
/// with a witness; both about the same key. The universe is built from
/// both sets together, so both are asked the same representative
/// requests, and every one is asked: an empty list is a proof that the
/// change turns no decision. Requests allowed by both (even by different
/// paths) are not changes of access and are not listed.
pub fn access_diff(old: &PolicySet, new: &PolicySet) -> Result<AccessDiff, ReachError> {
    if old.key.arn != new.key.arn {
        return Err(ReachError::Input(format!(
            "the two policy sets are about different keys: {} and {}",
            old.key.arn, new.key.arn
        )));
    }
    let mut engine = Engine::new(vec![new, old])?;
    let actions = all_actions();
    // Per (change, class, action, path): first context, its representative,
    // and how many requests; per (class, action): requests asked.
    type Key = (Change, String, &'static str, Path);
    let mut found: Vec<(Key, usize, Context, u64)> = Vec::new();
    let mut totals: Vec<((String, &'static str), u64)> = Vec::new();
    // Per representative and action signature: what its search found.
    type Seen = (Vec<(Change, Path, Context, u64)>, u64);
    for rep in 0..engine.reps() {
        let class = engine.universe.askers[0][rep].rep.class.clone();
        let mut done: Vec<(Vec<u8>, Seen)> = Vec::new();
        for action in &actions {
            let pair = engine.universe.pair(&engine.sets, rep, action)?;
            let seen: Seen = match done.iter().find(|(s, _)| *s == pair.signature) {
                Some((_, s)) => s.clone(),
                None => {
                    let mut changes: Vec<(Change, Path, Context, u64)> = Vec::new();
                    let mut total = 0u64;
                    engine.each(rep, action, &pair, |ctx, o| {
                        total += 1;
                        let turned = match (&o[0], &o[1]) {
                            (Some(p), None) => Some((Change::Added, p)),
                            (None, Some(p)) => Some((Change::Removed, p)),
                            _ => None,
                        };
                        if let Some((change, p)) = turned {
                            match changes
                                .iter_mut()
                                .find(|(c, q, _, _)| *c == change && q == p)
                            {
                                Some(entry) => entry.3 += 1,
                                None => changes.push((change, p.clone(), ctx.clone(), 1)),
                            }
                        }
                        Flow::Go
                    })?;
                    done.push((pair.signature.clone(), (changes.clone(), total)));
                    (changes, total)
                }
            };
            let (changes, total) = seen;
            match totals
                .iter_mut()
                .find(|((c, a), _)| *c == class && a == action)
            {
                Some(t) => t.1 += total,
                None => totals.push(((class.clone(), action), total)),
            }
            for (change, path, ctx, n) in changes {
                let key: Key = (change, class.clone(), action, path);
                match found.iter_mut().find(|(k, _, _, _)| *k == key) {
                    Some(f) => f.3 += n,
                    None => found.push((key, rep, ctx, n)),
                }
            }
        }
    }
    let mut entries: Vec<DiffEntry> = found
        .into_iter()
        .map(|((change, class, action, path), rep, ctx, n)| {
            let total = totals
                .iter()
                .find(|((c, a), _)| *c == class && *a == action)
                .map_or(n, |t| t.1);
            let r = &engine.universe.askers[0][rep].rep;
            DiffEntry {
                change,
                external: r.external || r.account != new.key.account,
                action: action.to_string(),
                conditional: n < total,
                witness: Witness {
                    principal: r.arn.clone(),
                    principal_class: class.clone(),
                    action: action.to_string(),
                    resource: new.key.arn.clone(),
                    context: render(&ctx),
                    path: path.clone(),
                },
                path,
                principal_class: class,
                requests: n,
            }
        })
        .collect();
    entries.sort_by(|a, b| {
        (a.change, a.principal_class.as_str(), &a.action, &a.path).cmp(&(
            b.change,
            b.principal_class.as_str(),
            &b.action,
            &b.path,
        ))
    });
    Ok(AccessDiff {
        entries,
        proof: Proof {
            requests: engine.asked,
            principals: engine.reps(),
            actions: actions.len(),
        },
    })
}

/// Every (principal class, path, actions) by which principals outside the
/// role's account may assume it, or pass session tags or a source identity
/// when they do: the external-access findings of an IAM role
/// (`AWS::IAM::Role`).
///
/// The contract, for whoever wires findings or access previews to it:
///
/// * each request is decided by ferrokms's own AssumeRole rule
///   (`crates/iam/src/sts.rs`): `ferrokms_authz::decide` with the trust
///   policy as the resource policy that must admit the caller
///   (`CombineMode::ResourcePolicyRequired`, the question may cross
///   accounts, the role's tags as `aws:ResourceTag/*` from
///   [`RolePolicySet::facts`]); across accounts the caller's identity
///   policies must allow too, and a principal of an account the operator
///   does not know is taken to hold an allow-everything identity policy
///   (its own account decides). The root user is never allowed (STS
///   refuses it before any policy is read);
/// * the actions are [`ROLE_ACTIONS`]. `sts:AssumeRoleWithWebIdentity` and
///   `sts:AssumeRoleWithSAML` are asked of the identities of a
///   `{"Federated": ...}` provider (each provider named, and one no policy
///   names, which a `"*"` principal admits), and `sts:AssumeRole` of IAM
///   principals and services only; `sts:TagSession` and
///   `sts:SetSourceIdentity` of both. Federated identities are of no
///   account, so every entry for them is external;
/// * an entry's `path` is [`Path::TrustPolicy`] (the trust policy admits
///   the caller, across accounts with the caller's identity policies) or
///   [`Path::Delegation`] (the trust policy names the caller's account and
///   its identity policy allows); a `conditional` entry carries a context
///   (values of the request's free keys, such as `sts:ExternalId` or
///   `accounts.google.com:aud`) under which its first action is allowed;
/// * `Err(ReachError::Unknown(why))` for a construct outside the encoding
///   (as for keys: policy variables, keys identifying the caller such as
///   `aws:PrincipalOrgID` or `aws:SourceIdentity`, principals by unique id,
///   `CanonicalUser`...) or a space over [`MAX_REQUESTS`]: never a partial
///   list.
///
/// Services (`{"Service": ...}`) are not external access: they are listed
/// by [`role_access_listing`] only.
pub fn role_external_access(set: &RolePolicySet) -> Result<Vec<AccessEntry>, ReachError> {
    listing(&set.as_policy_set(), true)
}

/// [`role_external_access`] for every principal, the role's own account's
/// and services too.
pub fn role_access_listing(set: &RolePolicySet) -> Result<Vec<AccessEntry>, ReachError> {
    listing(&set.as_policy_set(), false)
}

/// Whether a principal of an account that no policy names, or an identity
/// of a provider that no policy names, may assume the role (any of
/// [`ROLE_ACTIONS`], decided as [`role_external_access`] says): the role
/// is public. `Allowed` carries the request, `NotGranted` the proof,
/// `Unknown` the construct outside the encoding.
pub fn check_no_public_access_role(set: &RolePolicySet) -> Answer {
    let ps = set.as_policy_set();
    let mut engine = match engine_or_answer(vec![&ps]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(|r| r.public, ROLE_ACTIONS, |o| o[0].is_some(), 0)
}

/// Whether any principal may perform one of `actions` (names or patterns
/// such as `sts:AssumeRole*`, matched against [`ROLE_ACTIONS`]) on the
/// role.
pub fn check_access_not_granted_role(set: &RolePolicySet, actions: &[&str]) -> Answer {
    let chosen = matching(actions, ROLE_ACTIONS.to_vec());
    let ps = set.as_policy_set();
    let mut engine = match engine_or_answer(vec![&ps]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(|_| true, &chosen, |o| o[0].is_some(), 0)
}

/// Whether `new` (a trust policy change of the same role) allows a request
/// that `old` refuses: the witness is allowed by `new` and refused by
/// `old`.
pub fn check_no_new_access_role(old: &RolePolicySet, new: &RolePolicySet) -> Answer {
    let (o, n) = (old.as_policy_set(), new.as_policy_set());
    let mut engine = match engine_or_answer(vec![&n, &o]) {
        Ok(e) => e,
        Err(a) => return *a,
    };
    engine.find(
        |_| true,
        ROLE_ACTIONS,
        |o| o[0].is_some() && o[1].is_none(),
        0,
    )
}
