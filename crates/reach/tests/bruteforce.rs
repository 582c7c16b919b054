//! The symbolic answers against brute force (issue 21, item 3).
//!
//! A seeded generator writes small policy sets (a key policy, identity
//! policies, a boundary and session policies for a few principals, grants
//! with constraints, to principals or to a service principal) over a small
//! universe: five accounts, thirty-two principals (every kind in every
//! account, roles in and out of the generator's patterns, three services),
//! ten actions and, per condition key, values that realise every cell of
//! the generator's constants (strings, IP ranges, `Bool`, dates, numbers).
//! For each set the test asks the concrete evaluator every request of that
//! universe and compares with the symbolic answers:
//!
//! * `check_access_not_granted` for each action: allowed by brute force
//!   exactly when the symbolic answer is `Allowed`;
//! * `check_no_public_access_for`: the same, over the principals of the
//!   accounts the case does not name;
//! * `check_no_new_access_for` on a pair (a set and a mutation of it).
//!
//! A second test does the same for IAM roles' trust policies
//! (`check_access_not_granted_role`, `check_no_public_access_role`, the
//! actions of `role_external_access`), with identity providers in the
//! universe.
//!
//! No `Unknown` is accepted: the generator only writes covered constructs.
//! `REACH_BRUTE_CASES` sets the number of cases (default 20, the CI size;
//! docs/analysis.md records larger runs), `REACH_BRUTE_SEED` the first
//! seed, `REACH_BRUTE_ROLE_CASES` the role cases (default 200),
//! `REACH_BRUTE_TIMES` prints each case's time. Seeds in
//! `tests/corpus/bruteforce.txt` run first: every disagreement found is
//! kept there (plain seeds are generator 1's, which draws as it did when
//! they were found; `v2 N` generator 2's, the random run's; `role N` the
//! role generator's).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use common::*;
use ferrokms_authz::CallerPolicy;
use ferrokms_policy::{Context, ContextValue, PolicyKind, Timestamp};
use ferrokms_reach::concrete::{allows, Asker, Rep, RepKind};
use ferrokms_reach::{
    check_access_not_granted, check_access_not_granted_role, check_no_new_access_for,
    check_no_public_access_for, check_no_public_access_role, role_external_access, Answer, Grant,
    Grantee, Holder, PolicySet, RolePolicySet, ROLE_ACTIONS,
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
        // Generator 2 only (the first nine are generator 1's, whose seeds
        // the corpus keeps).
        (
            s(&[
                r#""NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}"#,
                r#""NumericGreaterThanEquals":{"aws:MultiFactorAuthAge":"600"}"#,
                r#""NumericEquals":{"aws:MultiFactorAuthAge":["600","3600"]}"#,
                r#""NumericNotEquals":{"aws:MultiFactorAuthAge":"600"}"#,
                r#""NumericLessThanEqualsIfExists":{"aws:MultiFactorAuthAge":"3600"}"#,
                r#""NumericGreaterThan":{"aws:MultiFactorAuthAge":"600.5"}"#,
            ]),
            "aws:multifactorauthage",
        ),
        (
            s(&[
                r#""DateNotEquals":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}"#,
                r#""DateLessThanEquals":{"aws:CurrentTime":"2024-06-01T00:00:00Z"}"#,
                r#""DateGreaterThan":{"aws:CurrentTime":["2023-01-01T00:00:00Z","2024-06-01T00:00:00Z"]}"#,
                r#""DateEqualsIfExists":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}"#,
            ]),
            "aws:currenttime",
        ),
        (
            s(&[
                r#""StringEquals":{"aws:PrincipalType":"AWSService"}"#,
                r#""Bool":{"aws:PrincipalIsAWSService":"true"}"#,
                r#""Bool":{"aws:PrincipalIsAWSService":"false"}"#,
                r#""StringEquals":{"aws:SourceArn":"arn:aws:dynamodb:us-east-1:{A}:table/t"}"#,
                r#""ArnLike":{"aws:SourceArn":"arn:aws:dynamodb:*:{A}:table/*"}"#,
            ]),
            "aws:sourcearn",
        ),
    ]
}

/// How many of [`families`] generator 1 draws from.
const V1_FAMILIES: usize = 9;

/// The service principals of the brute-force universe: the one the
/// generator names, and two it never names.
const SERVICES: &[&str] = &[
    "dynamodb.amazonaws.com",
    "s3.amazonaws.com",
    "sqs.amazonaws.com",
];

/// Values of each key realising every cell of the generator's constants.
/// `condition`: a condition of the case reads the key (not only a grant);
/// `dynamodb`: the case names a DynamoDB table.
fn brute_values(
    key: &str,
    multi: bool,
    condition: bool,
    dynamodb: bool,
) -> Vec<Option<Vec<ContextValue>>> {
    let strs = |v: &[&str]| -> Vec<Option<Vec<ContextValue>>> {
        std::iter::once(None)
            .chain(
                v.iter()
                    .map(|s| Some(vec![ContextValue::String((*s).into())])),
            )
            .collect()
    };
    match key {
        "kms:encryptioncontext:dept" if condition => {
            strs(&["", "a", "b", "ab", "ax", "xb", "x", "A"])
        }
        // Read by grant constraints only: their values and one other.
        "kms:encryptioncontext:dept" => strs(&["a", "b", "ab", "A"]),
        "kms:encryptioncontext:team" => strs(&["blue", "BLUE", "x"]),
        "kms:encryptioncontext:other" => strs(&["1"]),
        "aws:multifactorauthage" => std::iter::once(None)
            .chain(
                ["0", "600", "600.25", "600.5", "1000", "3600", "7200"]
                    .iter()
                    .map(|s| Some(vec![ContextValue::Number(s.parse().unwrap())])),
            )
            .chain([Some(vec![ContextValue::String("soon".into())])])
            .collect(),
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
                    "2022-06-01T00:00:00Z",
                    "2023-01-01T00:00:00Z",
                    "2023-06-01T00:00:00Z",
                    "2024-01-01T00:00:00Z",
                    "2024-03-01T00:00:00Z",
                    "2024-06-01T00:00:00Z",
                    "2025-01-01T00:00:00Z",
                ]
                .iter()
                .map(|s| Some(vec![ContextValue::Date(s.parse::<Timestamp>().unwrap())])),
            )
            .collect(),
        // The DynamoDB tables only where a case names one (generator 2):
        // t matches both its literal and its pattern, u the pattern only.
        "aws:sourcearn" if dynamodb => strs(&[
            "arn:aws:s3:::bucket",
            "x",
            "arn:aws:dynamodb:us-east-1:111111111111:table/t",
            "arn:aws:dynamodb:eu-west-1:111111111111:table/u",
        ]),
        "aws:sourcearn" => strs(&["arn:aws:s3:::bucket", "x"]),
        _ => vec![None],
    }
}

struct Gen {
    rng: Rng,
    /// Generator 2: numeric and more date operators, service principals
    /// (in key policies and grants), session policies. Generator 1 draws
    /// exactly as it did when the corpus's plain seeds were found.
    v2: bool,
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
        let mut principals = vec![
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
        ];
        if self.v2 {
            principals.extend([
                r#""Principal":{"Service":"dynamodb.amazonaws.com"}"#.to_string(),
                format!(
                    r#""Principal":{{"Service":"dynamodb.amazonaws.com","AWS":"arn:aws:iam::{A}:role/r"}}"#
                ),
                r#""NotPrincipal":{"Service":"dynamodb.amazonaws.com"}"#.to_string(),
            ]);
        }
        let principal = self.rng.pick(&principals).clone();
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
        if self.v2 && self.rng.chance(30) {
            return self.service_grant(i);
        }
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

    /// A grant to the service principal the generator names, usually
    /// for one source resource (as AWS services create them).
    fn service_grant(&mut self, i: usize) -> Grant {
        let operations = if self.rng.chance(50) {
            vec!["Decrypt".to_string(), "Encrypt".to_string()]
        } else {
            vec!["DescribeKey".to_string(), "CreateGrant".to_string()]
        };
        let source_arn = self
            .rng
            .chance(70)
            .then(|| format!("arn:aws:dynamodb:us-east-1:{A}:table/t"));
        let subset = self
            .rng
            .chance(30)
            .then(|| BTreeMap::from([("dept".to_string(), "a".to_string())]));
        Grant {
            id: format!("s{i}"),
            grantee: Grantee::Service("dynamodb.amazonaws.com".into()),
            operations,
            encryption_context_subset: subset,
            encryption_context_equals: None,
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
            // The session policy of the role's sessions (AssumeRole's
            // Policy), capping them like a boundary.
            if self.v2 && who.contains(":role/") && self.rng.chance(40) {
                policies.push((
                    PolicyKind::SessionPolicy,
                    common::policy(
                        PolicyKind::SessionPolicy,
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
    .into_iter()
    // Services act in the key's account, as the analysis models them.
    .chain(
        SERVICES
            .iter()
            .map(|s| ((*s).to_string(), acct(A), RepKind::Service)),
    )
    .collect()
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
    // Two families may read one key (dates).
    keys.sort_unstable();
    keys.dedup();
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
        let vals = brute_values(
            k,
            multi && k == "kms:viaservice",
            lower.contains(k),
            lower.contains("dynamodb"),
        );
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
/// for access, public, new access, and for roles access and public.
static TALLY: std::sync::Mutex<[u64; 10]> = std::sync::Mutex::new([0; 10]);

fn tally(i: usize, allowed: bool) {
    let mut t = TALLY.lock().unwrap();
    t[2 * i + usize::from(!allowed)] += 1;
}

fn run_case(seed: u64, v2: bool) {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        v2,
        menu: Vec::new(),
        fams: families(),
    };
    let nf = if v2 { g.fams.len() } else { V1_FAMILIES };
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
    if std::env::var_os("REACH_BRUTE_TIMES").is_some() {
        eprintln!("seed {seed}: {} contexts, menu {:?}", ctxs.len(), g.menu);
    }
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
        let (v2, seed) = match line.strip_prefix("v2 ") {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        if let Ok(seed) = seed.parse::<u64>() {
            run_case(seed, v2);
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
    let times = std::env::var_os("REACH_BRUTE_TIMES").is_some();
    for seed in first..first + cases {
        let t = std::time::Instant::now();
        run_case(seed, true);
        if times {
            eprintln!("seed {seed}: {:?}", t.elapsed());
        }
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
        assert!(t[..6].iter().all(|&n| n > 0), "one-sided tally {t:?}");
    }
}

// --- IAM role trust policies ------------------------------------------------

/// The role of the role cases.
const ROLE: &str = "arn:aws:iam::111111111111:role/target";

/// The identity providers of the brute-force universe: two the generator
/// names, one it never names.
const PROVIDERS: &[&str] = &[
    "accounts.google.com",
    "arn:aws:iam::111111111111:saml-provider/corp",
    "other.example.com",
];

fn trust_statement(rng: &mut Rng) -> String {
    let effect = if rng.chance(80) { "Allow" } else { "Deny" };
    let principal = rng
        .pick(&[
            r#""Principal":"*""#.to_string(),
            r#""Principal":{"AWS":"*"}"#.to_string(),
            format!(r#""Principal":{{"AWS":"{A}"}}"#),
            format!(r#""Principal":{{"AWS":"arn:aws:iam::{A}:root"}}"#),
            format!(r#""Principal":{{"AWS":"arn:aws:iam::{A}:role/r"}}"#),
            format!(r#""Principal":{{"AWS":"{B}"}}"#),
            format!(r#""Principal":{{"AWS":"arn:aws:iam::{C}:user/dave"}}"#),
            r#""Principal":{"Service":"ec2.amazonaws.com"}"#.to_string(),
            r#""Principal":{"Federated":"accounts.google.com"}"#.to_string(),
            format!(r#""Principal":{{"Federated":"arn:aws:iam::{A}:saml-provider/corp"}}"#),
            format!(r#""NotPrincipal":{{"AWS":"arn:aws:iam::{B}:root"}}"#),
        ])
        .clone();
    let action = *rng.pick(&[
        r#""sts:AssumeRole""#,
        r#""sts:AssumeRoleWithWebIdentity""#,
        r#""sts:AssumeRoleWithSAML""#,
        r#"["sts:AssumeRole","sts:TagSession"]"#,
        r#""sts:*""#,
        r#""sts:SetSourceIdentity""#,
    ]);
    let cond = if rng.chance(45) {
        let body = rng
            .pick(&[
                r#""StringEquals":{"sts:ExternalId":"x1"}"#.to_string(),
                r#""StringEquals":{"accounts.google.com:aud":"app"}"#.to_string(),
                r#""StringNotEquals":{"accounts.google.com:aud":"app"}"#.to_string(),
                format!(r#""StringEquals":{{"aws:PrincipalAccount":"{A}"}}"#),
                r#""ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/r*"}"#.to_string(),
                r#""StringEquals":{"aws:PrincipalType":"AssumedRole"}"#.to_string(),
                r#""Null":{"sts:ExternalId":"false"}"#.to_string(),
            ])
            .clone();
        format!(r#","Condition":{{{body}}}"#)
    } else {
        String::new()
    };
    format!(r#"{{"Effect":"{effect}",{principal},"Action":{action}{cond}}}"#)
}

fn role_set(rng: &mut Rng) -> RolePolicySet {
    let n = 1 + rng.below(3);
    let statements: Vec<String> = (0..n).map(|_| trust_statement(rng)).collect();
    let text = format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    );
    let trust = Arc::new(
        ferrokms_policy::Policy::parse(&text, &ferrokms_policy::ParseOptions::for_trust_policy())
            .unwrap_or_else(|e| panic!("{e}: {text}")),
    );
    let mut s = RolePolicySet::new(ROLE, trust).unwrap();
    for who in [
        format!("arn:aws:iam::{A}:user/alice"),
        format!("arn:aws:iam::{A}:role/r"),
    ] {
        if rng.chance(60) {
            let effect = if rng.chance(80) { "Allow" } else { "Deny" };
            let resource = *rng.pick(&[ROLE, "*", "arn:aws:iam::111111111111:role/other"]);
            let action = *rng.pick(&["sts:AssumeRole", "sts:*", "*"]);
            s.holders.push(Holder {
                arn: who,
                policies: vec![(
                    PolicyKind::IdentityBased,
                    identity(&format!(
                        r#"{{"Effect":"{effect}","Action":"{action}","Resource":"{resource}"}}"#
                    )),
                )],
            });
        }
    }
    s
}

fn role_contexts(text: &str) -> Vec<Context> {
    let mut out = vec![Context::new()];
    for (key, values) in [
        ("sts:ExternalId", &["x1", "x2"][..]),
        ("accounts.google.com:aud", &["app", "x"][..]),
    ] {
        if !text.contains(key) {
            continue;
        }
        let mut next = Vec::new();
        for c in &out {
            next.push(c.clone());
            for v in values {
                let mut c2 = c.clone();
                c2.insert(key, *v);
                next.push(c2);
            }
        }
        out = next;
    }
    out
}

fn role_askers(s: &PolicySet) -> Vec<Asker> {
    let mut out = askers(s);
    // The service the role generator names.
    let ec2 = Rep {
        arn: "ec2.amazonaws.com".into(),
        account: AccountId::parse(A).unwrap(),
        kind: RepKind::Service,
        class: "ec2".into(),
        external: false,
        public: false,
    };
    out.push(Asker::new(ec2, Vec::new()).unwrap());
    for p in PROVIDERS {
        let rep = Rep {
            arn: (*p).to_string(),
            account: AccountId::parse(A).unwrap(),
            kind: RepKind::Provider,
            class: (*p).to_string(),
            external: true,
            public: false,
        };
        out.push(Asker::new(rep, Vec::new()).unwrap());
    }
    out
}

fn run_role_case(seed: u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let old = role_set(&mut rng);
    let text = old.trust_policy.to_json_string();
    let ps = old.as_policy_set();
    let ask = role_askers(&ps);
    let ctxs = role_contexts(&text);
    // (principal, action) pairs allowed, and which of them are external
    // and public.
    let mut any_public = false;
    let mut external_actions: Vec<&str> = Vec::new();
    for action in ROLE_ACTIONS {
        let mut brute = false;
        for a in &ask {
            for c in &ctxs {
                if allows(&ps, a, action, c).unwrap().is_none() {
                    continue;
                }
                brute = true;
                let r = &a.rep;
                let outside = r.kind == RepKind::Provider || r.account.as_str() != A;
                if outside && r.kind != RepKind::Service && !external_actions.contains(action) {
                    external_actions.push(action);
                }
                let public = match r.kind {
                    RepKind::Provider => !text.contains(r.arn.as_str()),
                    RepKind::Service => false,
                    _ => r.account.as_str() != A && !text.contains(r.account.as_str()),
                };
                any_public |= public;
            }
        }
        tally(3, brute);
        let sym = check_access_not_granted_role(&old, &[action]);
        assert_eq!(
            is_allowed(&sym, "role access", seed),
            brute,
            "role seed {seed}: CheckAccessNotGranted {action}: symbolic {sym:?}, brute force {brute}\n{text}"
        );
    }
    tally(4, any_public);
    let sym = check_no_public_access_role(&old);
    assert_eq!(
        is_allowed(&sym, "role public", seed),
        any_public,
        "role seed {seed}: CheckNoPublicAccess: symbolic {sym:?}, brute force {any_public}\n{text}"
    );
    let listed = role_external_access(&old)
        .unwrap_or_else(|e| panic!("role seed {seed}: external access: {e}\n{text}"));
    let mut symbolic: Vec<&str> = listed
        .iter()
        .flat_map(|e| e.actions.iter().map(String::as_str))
        .collect();
    symbolic.sort_unstable();
    symbolic.dedup();
    external_actions.sort_unstable();
    assert_eq!(
        symbolic, external_actions,
        "role seed {seed}: external access {listed:?}\n{text}"
    );
}

#[test]
fn role_answers_agree_with_brute_force() {
    let cases: u64 = std::env::var("REACH_BRUTE_ROLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let corpus = include_str!("corpus/bruteforce.txt");
    for line in corpus.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(Ok(seed)) = line.strip_prefix("role ").map(|s| s.trim().parse::<u64>()) {
            run_role_case(seed);
        }
    }
    let started = std::time::Instant::now();
    for seed in 1..=cases {
        run_role_case(seed);
    }
    let t = *TALLY.lock().unwrap();
    eprintln!(
        "role brute force: {cases} cases agreed in {:?}; (allowed, not granted): access {:?}, public {:?}",
        started.elapsed(),
        (t[6], t[7]),
        (t[8], t[9]),
    );
    if cases >= 200 {
        assert!(t[6..10].iter().all(|&n| n > 0), "one-sided tally {t:?}");
    }
}

/// The asker of the brute-force universe for a witness's principal (a
/// representative of the symbolic universe, maybe not one of
/// [`principals`]), with the identity-side policies `s` gives it.
fn witness_asker(s: &PolicySet, principal: &str) -> Asker {
    // A service principal (the one no policy names, or a named one): no
    // account of its own, no identity-side policy.
    if !principal.starts_with("arn:") {
        let rep = Rep {
            class: principal.to_string(),
            arn: principal.to_string(),
            account: s.key.account.clone(),
            kind: RepKind::Service,
            external: false,
            public: false,
        };
        return Asker::new(rep, Vec::new()).unwrap();
    }
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
    // Generator 1, as the diff's recorded runs drew.
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        v2: false,
        menu: Vec::new(),
        fams: families(),
    };
    let nf = V1_FAMILIES;
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
