//! The symbolic answers against brute force (issue 21, item 3).
//!
//! A seeded generator writes small policy sets (a key policy, identity
//! policies and a boundary for a few principals, grants with constraints)
//! over a small universe: five accounts, twenty-nine principals (every
//! kind in every account, roles in and out of the generator's patterns), ten actions
//! and, per condition key, values that realise every cell of the
//! generator's constants. For each set the test asks the concrete evaluator
//! every request of that universe and compares with the symbolic answers:
//!
//! * `check_access_not_granted` for each action: allowed by brute force
//!   exactly when the symbolic answer is `Allowed`;
//! * `check_no_public_access_for`: the same, over the principals of the
//!   accounts the case does not name;
//! * `check_no_new_access_for` on a pair (a set and a mutation of it).
//!
//! No `Unknown` is accepted: the generator only writes covered constructs.
//! `REACH_BRUTE_CASES` sets the number of cases (default 20, the CI size;
//! docs/analysis.md records a larger run), `REACH_BRUTE_SEED` the first
//! seed. Seeds in `tests/corpus/bruteforce.txt` run first: every
//! disagreement found is kept there.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ferrokms_authz::CallerPolicy;
use ferrokms_policy::{Context, ContextValue, PolicyKind, Timestamp};
use ferrokms_reach::concrete::{allows, Asker, Rep, RepKind};
use ferrokms_reach::{
    check_access_not_granted, check_no_new_access_for, check_no_public_access_for, Answer, Grant,
    Grantee, Holder, PolicySet,
};
use ferrokms_types::AccountId;

/// An account the generator never names that matches its "2*" pattern.
const E: &str = "200000000000";

const ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:PutKeyPolicy",
    "kms:Sign",
    "kms:ListGrants",
    "kms:DisableKey",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Condition families: (condition JSON bodies, the context key they read).
fn families() -> Vec<(Vec<String>, &'static str)> {
    let s = |v: &[&str]| {
        v.iter()
            .map(|x| x.replace("{A}", A).replace("{B}", B))
            .collect()
    };
    vec![
        (
            s(&[
                r#""StringEquals":{"kms:EncryptionContext:dept":"a"}"#,
                r#""StringEquals":{"kms:EncryptionContext:dept":["a","b"]}"#,
                r#""StringLike":{"kms:EncryptionContext:dept":"a*"}"#,
                r#""StringLike":{"kms:EncryptionContext:dept":"*b"}"#,
                r#""StringNotEquals":{"kms:EncryptionContext:dept":"a"}"#,
                r#""StringNotLike":{"kms:EncryptionContext:dept":"a?"}"#,
                r#""StringNotLike":{"kms:EncryptionContext:dept":["","a*","*b"]}"#,
                r#""Null":{"kms:EncryptionContext:dept":"true"}"#,
                r#""Null":{"kms:EncryptionContext:dept":"false"}"#,
                r#""StringEqualsIfExists":{"kms:EncryptionContext:dept":"b"}"#,
            ]),
            "kms:encryptioncontext:dept",
        ),
        (
            s(&[
                r#""StringEqualsIgnoreCase":{"kms:EncryptionContext:team":"Blue"}"#,
                r#""StringNotEqualsIgnoreCase":{"kms:EncryptionContext:team":"blue"}"#,
            ]),
            "kms:encryptioncontext:team",
        ),
        (
            s(&[
                r#""StringLike":{"kms:ViaService":"ec2.*"}"#,
                r#""StringEqualsIfExists":{"kms:ViaService":"s3.x"}"#,
                r#""ForAnyValue:StringEquals":{"kms:ViaService":"ec2.x"}"#,
                r#""ForAllValues:StringLike":{"kms:ViaService":"ec2.*"}"#,
            ]),
            "kms:viaservice",
        ),
        (
            s(&[
                r#""StringEquals":{"kms:CallerAccount":"{A}"}"#,
                r#""StringEquals":{"kms:CallerAccount":"{B}"}"#,
                r#""StringNotEquals":{"kms:CallerAccount":"{A}"}"#,
                r#""StringLike":{"aws:PrincipalAccount":"2*"}"#,
            ]),
            "",
        ),
        (
            s(&[
                r#""ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/r*"}"#,
                r#""ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::{A}:user/alice"}"#,
                r#""StringLike":{"aws:PrincipalArn":["arn:aws:iam::{B}:user/*","arn:aws:iam::{A}:root"]}"#,
            ]),
            "",
        ),
        (
            s(&[
                r#""StringEquals":{"aws:PrincipalType":"User"}"#,
                r#""StringEquals":{"aws:PrincipalType":["AssumedRole","FederatedUser"]}"#,
                r#""StringNotEquals":{"aws:PrincipalType":"Account"}"#,
            ]),
            "",
        ),
        (
            s(&[
                r#""IpAddress":{"aws:SourceIp":"10.0.0.0/16"}"#,
                r#""NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}"#,
            ]),
            "aws:sourceip",
        ),
        (
            s(&[
                r#""Bool":{"kms:GrantIsForAWSResource":"true"}"#,
                r#""Bool":{"kms:GrantIsForAWSResource":"false"}"#,
            ]),
            "kms:grantisforawsresource",
        ),
        (
            s(&[
                r#""DateLessThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}"#,
                r#""DateGreaterThanEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}"#,
            ]),
            "aws:currenttime",
        ),
    ]
}

/// Values of each key realising every cell of the generator's constants.
fn brute_values(key: &str, multi: bool) -> Vec<Option<Vec<ContextValue>>> {
    let strs = |v: &[&str]| -> Vec<Option<Vec<ContextValue>>> {
        std::iter::once(None)
            .chain(
                v.iter()
                    .map(|s| Some(vec![ContextValue::String((*s).into())])),
            )
            .collect()
    };
    match key {
        "kms:encryptioncontext:dept" => strs(&["", "a", "b", "ab", "ax", "xb", "x", "A"]),
        "kms:encryptioncontext:team" => strs(&["blue", "BLUE", "x"]),
        "kms:encryptioncontext:other" => strs(&["1"]),
        "kms:viaservice" => {
            let mut v = strs(&["ec2.x", "ec2.y", "s3.x", "x"]);
            if multi {
                let set = |xs: &[&str]| {
                    Some(
                        xs.iter()
                            .map(|s| ContextValue::String((*s).into()))
                            .collect(),
                    )
                };
                v.push(set(&[]));
                v.push(set(&["ec2.x", "s3.x"]));
                v.push(set(&["ec2.x", "ec2.y"]));
            }
            v
        }
        "aws:sourceip" => std::iter::once(None)
            .chain(
                ["10.0.0.1", "10.1.0.1", "192.168.0.1"]
                    .iter()
                    .map(|s| Some(vec![ContextValue::Ip(s.parse().unwrap())])),
            )
            .collect(),
        "kms:grantisforawsresource" => vec![
            None,
            Some(vec![ContextValue::Bool(true)]),
            Some(vec![ContextValue::Bool(false)]),
        ],
        "aws:currenttime" => std::iter::once(None)
            .chain(
                [
                    "2023-06-01T00:00:00Z",
                    "2024-01-01T00:00:00Z",
                    "2024-06-01T00:00:00Z",
                ]
                .iter()
                .map(|s| Some(vec![ContextValue::Date(s.parse::<Timestamp>().unwrap())])),
            )
            .collect(),
        "aws:sourcearn" => strs(&["arn:aws:s3:::bucket", "x"]),
        _ => vec![None],
    }
}

struct Gen {
    rng: Rng,
    /// The condition families this case draws from (at most two).
    menu: Vec<usize>,
    fams: Vec<(Vec<String>, &'static str)>,
}

impl Gen {
    fn condition(&mut self) -> String {
        if self.menu.is_empty() || !self.rng.chance(45) {
            return String::new();
        }
        let f = *self.rng.pick(&self.menu);
        let body = self.rng.pick(&self.fams[f].0).clone();
        format!(r#","Condition":{{{body}}}"#)
    }

    fn actions(&mut self) -> String {
        let a = self.rng.pick(&[
            r#""Action":"kms:*""#,
            r#""Action":"kms:Decrypt""#,
            r#""Action":["kms:Encrypt","kms:Decrypt"]"#,
            r#""Action":"kms:Re*""#,
            r#""Action":"kms:CreateGrant""#,
            r#""Action":"kms:Describe*""#,
            r#""Action":["kms:PutKeyPolicy","kms:Sign"]"#,
            r#""Action":"*""#,
            r#""NotAction":"kms:Decrypt""#,
        ]);
        (*a).to_string()
    }

    fn key_statement(&mut self) -> String {
        let effect = if self.rng.chance(75) { "Allow" } else { "Deny" };
        let principal = self
            .rng
            .pick(&[
                r#""Principal":"*""#.to_string(),
                format!(r#""Principal":{{"AWS":"{A}"}}"#),
                format!(r#""Principal":{{"AWS":"arn:aws:iam::{A}:root"}}"#),
                format!(r#""Principal":{{"AWS":"arn:aws:iam::{A}:user/alice"}}"#),
                format!(r#""Principal":{{"AWS":"arn:aws:iam::{A}:role/r"}}"#),
                format!(r#""Principal":{{"AWS":"{B}"}}"#),
                format!(r#""Principal":{{"AWS":"arn:aws:iam::{C}:user/dave"}}"#),
                format!(r#""Principal":{{"AWS":["arn:aws:iam::{A}:user/bob","{B}"]}}"#),
                format!(r#""NotPrincipal":{{"AWS":"arn:aws:iam::{A}:user/alice"}}"#),
                format!(r#""NotPrincipal":{{"AWS":"arn:aws:iam::{A}:root"}}"#),
                format!(r#""NotPrincipal":{{"AWS":["arn:aws:iam::{B}:root","{C}"]}}"#),
            ])
            .clone();
        let actions = self.actions();
        let cond = self.condition();
        format!(r#"{{"Effect":"{effect}",{principal},{actions},"Resource":"*"{cond}}}"#)
    }

    fn identity_statement(&mut self) -> String {
        let effect = if self.rng.chance(80) { "Allow" } else { "Deny" };
        let actions = self.actions();
        let resource = self
            .rng
            .pick(&[
                "*".to_string(),
                KEY.to_string(),
                format!("arn:aws:kms:us-east-1:{A}:key/other"),
            ])
            .clone();
        let cond = self.condition();
        format!(r#"{{"Effect":"{effect}",{actions},"Resource":"{resource}"{cond}}}"#)
    }

    fn statements(&mut self, n: usize, key: bool) -> String {
        let v: Vec<String> = (0..n)
            .map(|_| {
                if key {
                    self.key_statement()
                } else {
                    self.identity_statement()
                }
            })
            .collect();
        v.join(",")
    }

    fn grant(&mut self, i: usize) -> Grant {
        let grantee = self
            .rng
            .pick(&[
                format!("arn:aws:iam::{A}:user/alice"),
                format!("arn:aws:iam::{A}:role/r"),
                B.to_string(),
                format!("arn:aws:iam::{B}:root"),
                format!("arn:aws:iam::{C}:user/dave"),
                A.to_string(),
            ])
            .clone();
        let mut operations: Vec<String> = [
            "Encrypt",
            "Decrypt",
            "DescribeKey",
            "CreateGrant",
            "ReEncryptFrom",
        ]
        .iter()
        .filter(|_| self.rng.chance(45))
        .map(|s| (*s).to_string())
        .collect();
        if operations.is_empty() {
            operations.push("Decrypt".into());
        }
        let (subset, equals) = match self.rng.below(4) {
            0 => (
                Some(BTreeMap::from([("dept".to_string(), "a".to_string())])),
                None,
            ),
            1 => (
                None,
                Some(BTreeMap::from([("dept".to_string(), "b".to_string())])),
            ),
            2 => (
                Some(BTreeMap::from([("Dept".to_string(), "ab".to_string())])),
                None,
            ),
            _ => (None, None),
        };
        let source_arn = self
            .rng
            .chance(20)
            .then(|| "arn:aws:s3:::bucket".to_string());
        Grant {
            id: format!("g{i}"),
            grantee: Grantee::Aws(grantee),
            operations,
            encryption_context_subset: subset,
            encryption_context_equals: equals,
            source_arn,
        }
    }

    fn set(&mut self) -> PolicySet {
        let n = 1 + self.rng.below(3);
        let kp = self.statements(n, true);
        let mut s = set(&kp);
        for (who, max) in [
            (format!("arn:aws:iam::{A}:user/alice"), 2),
            (format!("arn:aws:iam::{A}:user/bob"), 1),
            (format!("arn:aws:iam::{A}:role/r"), 1),
        ] {
            let n = self.rng.below(max + 1);
            if n == 0 {
                continue;
            }
            let mut policies = vec![(
                PolicyKind::IdentityBased,
                identity(&self.statements(n, false)),
            )];
            if self.rng.chance(25) {
                policies.push((
                    PolicyKind::PermissionsBoundary,
                    common::policy(
                        PolicyKind::PermissionsBoundary,
                        &format!(
                            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                            self.statements(1, false)
                        ),
                    ),
                ));
            }
            s.holders.push(Holder { arn: who, policies });
        }
        for i in 0..self.rng.below(3) {
            let g = self.grant(i);
            s.grants.push(g);
        }
        s
    }

    /// A variation of `s`: one more key-policy statement, or one fewer, or
    /// a grant more or fewer.
    fn mutate(&mut self, s: &PolicySet) -> PolicySet {
        let mut t = s.clone();
        let text = s.key_policy.to_json_string();
        match self.rng.below(3) {
            0 => {
                let extra = self.key_statement();
                let body = text.trim_end_matches("]}").to_string();
                t.key_policy =
                    common::policy(PolicyKind::ResourceBased, &format!("{body},{extra}]}}"));
            }
            1 => {
                let g = self.grant(9);
                t.grants.push(g);
            }
            _ => {
                t.grants.pop();
            }
        }
        t
    }
}

fn texts(s: &PolicySet) -> String {
    let mut out = s.key_policy.to_json_string();
    for h in &s.holders {
        for (_, p) in &h.policies {
            out.push_str(&p.to_json_string());
        }
    }
    out.push_str(&format!("{:?}", s.grants));
    out
}

/// The brute-force universe's principals.
fn principals() -> Vec<(String, AccountId, RepKind)> {
    let acct = |a: &str| AccountId::parse(a).unwrap();
    let session = |a: &str, role: &str, name: &str| {
        (
            format!("arn:aws:sts::{a}:assumed-role/{role}/{name}"),
            acct(a),
            RepKind::Session {
                role_arn: format!("arn:aws:iam::{a}:role/{role}"),
            },
        )
    };
    let user = |a: &str, n: &str| (format!("arn:aws:iam::{a}:user/{n}"), acct(a), RepKind::User);
    let root = |a: &str| (format!("arn:aws:iam::{a}:root"), acct(a), RepKind::Root);
    let fed = |a: &str, n: &str| {
        (
            format!("arn:aws:sts::{a}:federated-user/{n}"),
            acct(a),
            RepKind::Federated,
        )
    };
    vec![
        root(A),
        user(A, "alice"),
        user(A, "bob"),
        user(A, "nobody"),
        session(A, "r", "s1"),
        session(A, "other", "s2"),
        session(A, "rx", "s3"),
        fed(A, "alice"),
        fed(A, "zed"),
        root(B),
        user(B, "carol"),
        session(B, "r", "s"),
        session(B, "zz", "s"),
        fed(B, "fay"),
        root(C),
        user(C, "dave"),
        user(C, "eve"),
        session(C, "worker", "w"),
        session(C, "r", "w2"),
        fed(C, "gus"),
        root(D),
        user(D, "frank"),
        session(D, "job", "j"),
        session(D, "r", "j2"),
        fed(D, "hal"),
        // Matches `aws:PrincipalAccount` "2*" without being B: an
        // unnamed account in that cell.
        root(E),
        user(E, "gina"),
        session(E, "r", "g"),
        session(E, "zz", "g2"),
    ]
}

fn askers(s: &PolicySet) -> Vec<Asker> {
    let allow_all = identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#);
    principals()
        .into_iter()
        .map(|(arn, account, kind)| {
            let external = !s.knows(&account);
            let holder_arn = match &kind {
                RepKind::Session { role_arn } => role_arn.clone(),
                _ => arn.clone(),
            };
            let policies: Vec<CallerPolicy> = match s.holders.iter().find(|h| h.arn == holder_arn) {
                Some(h) => h
                    .policies
                    .iter()
                    .map(|(k, p)| CallerPolicy {
                        label: "p".into(),
                        kind: *k,
                        policy: Arc::clone(p),
                    })
                    .collect(),
                None if external && kind != RepKind::Root => vec![CallerPolicy {
                    label: "any".into(),
                    kind: PolicyKind::IdentityBased,
                    policy: allow_all.clone(),
                }],
                None => Vec::new(),
            };
            let rep = Rep {
                class: arn.clone(),
                arn,
                account,
                kind,
                external,
                public: false,
            };
            Asker::new(rep, policies).unwrap()
        })
        .collect()
}

/// Every context over the keys the texts read.
fn contexts(text: &str, fams: &[(Vec<String>, &'static str)], grants: bool) -> Vec<Context> {
    let lower = text.to_lowercase();
    let multi = text.contains("ForAnyValue") || text.contains("ForAllValues");
    let mut keys: Vec<&str> = fams
        .iter()
        .map(|(_, k)| *k)
        .filter(|k| !k.is_empty() && lower.contains(k))
        .collect();
    if grants {
        for k in [
            "kms:encryptioncontext:dept",
            "aws:sourcearn",
            "kms:encryptioncontext:other",
        ] {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let mut out = vec![Context::new()];
    for k in keys {
        let vals = brute_values(k, multi && k == "kms:viaservice");
        let mut next = Vec::new();
        for c in &out {
            for v in &vals {
                let mut c2 = c.clone();
                match v {
                    None => {}
                    Some(vs) if vs.len() == 1 && !(multi && k == "kms:viaservice") => {
                        c2.insert(k, vs[0].clone());
                    }
                    Some(vs) => c2.insert_multi(k, vs.clone()),
                }
                next.push(c2);
            }
        }
        out = next;
    }
    out
}

fn is_allowed(a: &Answer, what: &str, seed: u64) -> bool {
    match a {
        Answer::Allowed(_) => true,
        Answer::NotGranted(_) => false,
        Answer::Unknown(why) => panic!("seed {seed}: {what}: unknown ({why})"),
    }
}

/// How many answers of each kind the run compared: (allowed, not granted)
/// for access, public, new access.
static TALLY: std::sync::Mutex<[u64; 6]> = std::sync::Mutex::new([0; 6]);

fn tally(i: usize, allowed: bool) {
    let mut t = TALLY.lock().unwrap();
    t[2 * i + usize::from(!allowed)] += 1;
}

fn run_case(seed: u64) {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        menu: Vec::new(),
        fams: families(),
    };
    let nf = g.fams.len();
    for _ in 0..g.rng.below(3) {
        let f = g.rng.below(nf);
        if !g.menu.contains(&f) {
            g.menu.push(f);
        }
    }
    let old = g.set();
    let new = if g.rng.chance(60) {
        g.mutate(&old)
    } else {
        g.set()
    };
    let (ta, tb) = (texts(&old), texts(&new));
    let grants = !old.grants.is_empty() || !new.grants.is_empty();
    let ctxs = contexts(&format!("{ta}{tb}"), &g.fams, grants);
    let (ao, an) = (askers(&old), askers(&new));
    let public = |s: &str, r: &Rep| {
        // The key's own account is never public: it is the key's.
        let named = |acct: &str| acct == A || s.contains(acct);
        !named(r.account.as_str())
    };
    let show = |s: &PolicySet| texts(s);
    for action in ACTIONS {
        let mut brute_old = false;
        let mut brute_public = false;
        let mut brute_new = false;
        for (i, asker) in ao.iter().enumerate() {
            for c in &ctxs {
                let o = allows(&old, asker, action, c).unwrap().is_some();
                let n = allows(&new, &an[i], action, c).unwrap().is_some();
                brute_old |= o;
                brute_public |= o && public(&ta, &asker.rep);
                brute_new |= n && !o;
            }
        }
        tally(0, brute_old);
        tally(1, brute_public);
        tally(2, brute_new);
        let sym = check_access_not_granted(&old, &[action]);
        assert_eq!(
            is_allowed(&sym, "access", seed),
            brute_old,
            "seed {seed}: CheckAccessNotGranted {action}: symbolic {sym:?}, brute force {brute_old}\n{}",
            show(&old)
        );
        let sym = check_no_public_access_for(&old, &[action]);
        assert_eq!(
            is_allowed(&sym, "public", seed),
            brute_public,
            "seed {seed}: CheckNoPublicAccess {action}: symbolic {sym:?}, brute force {brute_public}\n{}",
            show(&old)
        );
        let sym = check_no_new_access_for(&old, &new, &[action]);
        assert_eq!(
            is_allowed(&sym, "new access", seed),
            brute_new,
            "seed {seed}: CheckNoNewAccess {action}: symbolic {sym:?}, brute force {brute_new}\nold {}\nnew {}",
            show(&old),
            show(&new)
        );
    }
}

#[test]
fn symbolic_answers_agree_with_brute_force() {
    let corpus = include_str!("corpus/bruteforce.txt");
    for line in corpus.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Ok(seed) = line.parse::<u64>() {
            run_case(seed);
        }
    }
    let cases: u64 = std::env::var("REACH_BRUTE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let first: u64 = std::env::var("REACH_BRUTE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let started = std::time::Instant::now();
    for seed in first..first + cases {
        run_case(seed);
    }
    let t = *TALLY.lock().unwrap();
    eprintln!(
        "brute force: {cases} cases agreed in {:?}; (allowed, not granted): access {:?}, public {:?}, new access {:?}",
        started.elapsed(),
        (t[0], t[1]),
        (t[2], t[3]),
        (t[4], t[5])
    );
    // The generator must produce both answers of every question, or the
    // comparison proves little.
    if cases >= 20 {
        assert!(t.iter().all(|&n| n > 0), "one-sided tally {t:?}");
    }
}

/// The asker of the brute-force universe for a witness's principal (a
/// representative of the symbolic universe, maybe not one of
/// [`principals`]), with the identity-side policies `s` gives it.
fn witness_asker(s: &PolicySet, principal: &str) -> Asker {
    let account = AccountId::parse(principal.split(':').nth(4).unwrap()).unwrap();
    let resource = principal.splitn(6, ':').nth(5).unwrap();
    let kind = if resource == "root" {
        RepKind::Root
    } else if let Some(rest) = resource.strip_prefix("assumed-role/") {
        let role = rest.split('/').next().unwrap();
        RepKind::Session {
            role_arn: format!("arn:aws:iam::{account}:role/{role}"),
        }
    } else if resource.starts_with("federated-user/") {
        RepKind::Federated
    } else {
        RepKind::User
    };
    let external = !s.knows(&account);
    let holder_arn = match &kind {
        RepKind::Session { role_arn } => role_arn.clone(),
        _ => principal.to_string(),
    };
    let policies: Vec<CallerPolicy> = match s.holders.iter().find(|h| h.arn == holder_arn) {
        Some(h) => h
            .policies
            .iter()
            .map(|(k, p)| CallerPolicy {
                label: "p".into(),
                kind: *k,
                policy: Arc::clone(p),
            })
            .collect(),
        None if external && kind != RepKind::Root => vec![CallerPolicy {
            label: "any".into(),
            kind: PolicyKind::IdentityBased,
            policy: identity(r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#),
        }],
        None => Vec::new(),
    };
    let rep = Rep {
        class: principal.to_string(),
        arn: principal.to_string(),
        account,
        kind,
        external,
        public: false,
    };
    Asker::new(rep, policies).unwrap()
}

/// A witness's context as a request context (`[a, b]` is multivalued;
/// `aws:CurrentTime` a date). `None` when the text does not give the value
/// back (a date outside what the timestamp parser reads, such as the far
/// past the date cells may pick): that witness is not asked again.
fn witness_context(w: &ferrokms_reach::Witness) -> Option<Context> {
    let mut ctx = Context::new();
    for (k, v) in &w.context {
        if k.eq_ignore_ascii_case("aws:currenttime") {
            ctx.insert(k, ContextValue::Date(v.parse::<Timestamp>().ok()?));
            continue;
        }
        match v.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(inner) => ctx.insert_multi(
                k,
                inner
                    .split(", ")
                    .filter(|s| !s.is_empty())
                    .map(ContextValue::from)
                    .collect(),
            ),
            None => ctx.insert(k, v.as_str()),
        }
    }
    Some(ctx)
}

/// `access_diff` against brute force on the generator's pairs: the
/// (change, action, path) triples it lists are exactly those for which
/// some request of the brute-force universe is allowed by one set (by that
/// path) and refused by the other, and each witness is such a request.
fn diff_case(seed: u64) -> (u64, u64) {
    use ferrokms_reach::{access_diff, Change};
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        menu: Vec::new(),
        fams: families(),
    };
    let nf = g.fams.len();
    for _ in 0..g.rng.below(3) {
        let f = g.rng.below(nf);
        if !g.menu.contains(&f) {
            g.menu.push(f);
        }
    }
    let old = g.set();
    let new = if g.rng.chance(60) {
        g.mutate(&old)
    } else {
        g.set()
    };
    let (ta, tb) = (texts(&old), texts(&new));
    let grants = !old.grants.is_empty() || !new.grants.is_empty();
    let ctxs = contexts(&format!("{ta}{tb}"), &g.fams, grants);
    let (ao, an) = (askers(&old), askers(&new));
    let diff = access_diff(&old, &new).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    let mut brute: Vec<(Change, String, ferrokms_reach::Path)> = Vec::new();
    for action in ACTIONS {
        for (i, asker) in ao.iter().enumerate() {
            for c in &ctxs {
                let o = allows(&old, asker, action, c).unwrap();
                let n = allows(&new, &an[i], action, c).unwrap();
                let t = match (n, o) {
                    (Some(p), None) => (Change::Added, (*action).to_string(), p),
                    (None, Some(p)) => (Change::Removed, (*action).to_string(), p),
                    _ => continue,
                };
                if !brute.contains(&t) {
                    brute.push(t);
                }
            }
        }
    }
    let mut symbolic: Vec<(Change, String, ferrokms_reach::Path)> = Vec::new();
    for e in &diff.entries {
        // The witness: allowed by one set by the entry's path, refused by
        // the other, asked again of the concrete evaluator.
        let (yes, no) = match e.change {
            Change::Added => (&new, &old),
            Change::Removed => (&old, &new),
        };
        let w = &e.witness;
        if let Some(ctx) = witness_context(w) {
            assert_eq!(
                allows(yes, &witness_asker(yes, &w.principal), &w.action, &ctx).unwrap(),
                Some(e.path.clone()),
                "seed {seed}: witness {w:?} not allowed by its set\nold {ta}\nnew {tb}"
            );
            assert_eq!(
                allows(no, &witness_asker(no, &w.principal), &w.action, &ctx).unwrap(),
                None,
                "seed {seed}: witness {w:?} allowed by the other set\nold {ta}\nnew {tb}"
            );
        }
        if !ACTIONS.contains(&e.action.as_str()) {
            continue;
        }
        let t = (e.change, e.action.clone(), e.path.clone());
        if !symbolic.contains(&t) {
            symbolic.push(t);
        }
    }
    brute.sort();
    symbolic.sort();
    assert_eq!(
        symbolic, brute,
        "seed {seed}: access_diff (left) and brute force (right) differ\nold {ta}\nnew {tb}"
    );
    let added = brute.iter().filter(|t| t.0 == Change::Added).count() as u64;
    (added, brute.len() as u64 - added)
}

#[test]
fn access_diff_agrees_with_brute_force() {
    let cases: u64 = std::env::var("REACH_BRUTE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let first: u64 = std::env::var("REACH_BRUTE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let (mut added, mut removed, mut unchanged) = (0, 0, 0);
    for seed in first..first + cases {
        let (a, r) = diff_case(seed);
        added += a;
        removed += r;
        unchanged += u64::from(a + r == 0);
    }
    eprintln!(
        "access diff: {cases} cases agreed; (change, action, path) triples added {added}, removed {removed}; cases without change {unchanged}"
    );
    if cases >= 20 {
        assert!(
            added > 0 && removed > 0,
            "one-sided: added {added}, removed {removed}"
        );
    }
}
