//! Policy validation in the manner of IAM Access Analyzer: findings with a
//! severity, a stable code, the statement they concern and a message.
//! The grammar is the policy engine's; what is KMS's own (the action list,
//! which operation sets which condition key, key-policy conventions) lives
//! here.
//!
//! About 1,000 lines of code, kept in one file: the rules share the walk over
//! the statements and the tables of KMS actions and condition keys, and a
//! reader looking for why a finding appears reads them side by side.

use ferrokms_policy::{
    BaseOperator, Effect, ParseOptions, Policy, PolicyKind, PrincipalId, PrincipalSpec,
    SetOperator, Statement, Version,
};

/// Every KMS IAM action: the 56 operations of the KMS API model
/// (kms-2014-11-01) plus `ReEncryptFrom` and `ReEncryptTo`, the two
/// permissions ReEncrypt is authorized by.
pub const KMS_ACTIONS: &[&str] = &[
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decapsulate",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encapsulate",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
    "ReEncryptFrom",
    "ReEncryptTo",
];

/// The actions authorized against one key (what `ferrokms key access`
/// reports): every action except the keyless ones (CreateKey, ListKeys,
/// ListAliases, GenerateRandom, ListRetirableGrants, custom key stores),
/// ReEncrypt itself (authorized as ReEncryptFrom / ReEncryptTo) and
/// RetireGrant (authorized by the grant).
pub fn key_actions() -> Vec<&'static str> {
    const NOT_ON_A_KEY: &[&str] = &[
        "CreateKey",
        "ListKeys",
        "ListAliases",
        "GenerateRandom",
        "ListRetirableGrants",
        "ConnectCustomKeyStore",
        "CreateCustomKeyStore",
        "DeleteCustomKeyStore",
        "DescribeCustomKeyStores",
        "DisconnectCustomKeyStore",
        "UpdateCustomKeyStore",
        "ReEncrypt",
        "RetireGrant",
    ];
    KMS_ACTIONS
        .iter()
        .copied()
        .filter(|a| !NOT_ON_A_KEY.contains(a))
        .collect()
}

const ENCRYPTION_CONTEXT_OPS: &[&str] = &[
    "CreateGrant",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

const CRYPTO_OPS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
    "DescribeKey",
    "GetPublicKey",
];

/// The KMS condition keys that only some operations set (AWS, "Condition keys for AWS KMS"),
/// lowercased, with those operations. A key ending in `:` is a prefix.
/// Keys set on every key-resource request (kms:CallerAccount, kms:KeySpec,
/// kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion, kms:MultiRegionKeyType,
/// kms:ResourceAliases, kms:ViaService and the CustomerMasterKey forms) are
/// in [`KEY_WIDE_CONDITION_KEYS`].
pub const CONDITION_KEY_ACTIONS: &[(&str, &[&str])] = &[
    (
        "kms:bypasspolicylockoutsafetycheck",
        &["CreateKey", "PutKeyPolicy"],
    ),
    (
        "kms:datakeypairspec",
        &["GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"],
    ),
    (
        "kms:encryptionalgorithm",
        &[
            "Encrypt",
            "Decrypt",
            "ReEncrypt",
            "ReEncryptFrom",
            "ReEncryptTo",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "GenerateDataKeyPair",
            "GenerateDataKeyPairWithoutPlaintext",
        ],
    ),
    ("kms:encryptioncontext:", ENCRYPTION_CONTEXT_OPS),
    ("kms:encryptioncontextkeys", ENCRYPTION_CONTEXT_OPS),
    ("kms:expirationmodel", &["ImportKeyMaterial"]),
    ("kms:grantconstrainttype", &["CreateGrant"]),
    (
        "kms:grantisforawsresource",
        &["CreateGrant", "ListGrants", "RevokeGrant"],
    ),
    ("kms:grantoperations", &["CreateGrant"]),
    ("kms:granteeprincipal", &["CreateGrant"]),
    ("kms:retiringprincipal", &["CreateGrant"]),
    ("kms:grantconstraintsourcearn", &["CreateGrant"]),
    ("kms:granteeserviceprincipal", &["CreateGrant"]),
    ("kms:retiringserviceprincipal", &["CreateGrant"]),
    ("kms:keyagreementalgorithm", &["DeriveSharedSecret"]),
    ("kms:macalgorithm", &["GenerateMac", "VerifyMac"]),
    ("kms:messagetype", &["Sign", "Verify"]),
    ("kms:primaryregion", &["UpdatePrimaryRegion"]),
    (
        "kms:reencryptonsamekey",
        &["ReEncrypt", "ReEncryptFrom", "ReEncryptTo"],
    ),
    (
        "kms:recipientattestation:",
        &[
            "Decrypt",
            "GenerateDataKey",
            "GenerateRandom",
            "GenerateDataKeyPair",
            "DeriveSharedSecret",
        ],
    ),
    ("kms:replicaregion", &["ReplicateKey"]),
    ("kms:requestalias", CRYPTO_OPS),
    ("kms:rotationperiodindays", &["EnableKeyRotation"]),
    (
        "kms:schedulekeydeletionpendingwindowindays",
        &["ScheduleKeyDeletion"],
    ),
    ("kms:signingalgorithm", &["Sign", "Verify"]),
    (
        "kms:trailingdayswithoutkeyusage",
        &["ScheduleKeyDeletion", "DisableKey"],
    ),
    ("kms:validto", &["ImportKeyMaterial"]),
    ("kms:wrappingalgorithm", &["GetParametersForImport"]),
    ("kms:wrappingkeyspec", &["GetParametersForImport"]),
];

/// KMS condition keys present on every key-resource request (lowercased).
pub const KEY_WIDE_CONDITION_KEYS: &[&str] = &[
    "kms:calleraccount",
    "kms:keyspec",
    "kms:keyusage",
    "kms:customermasterkeyspec",
    "kms:customermasterkeyusage",
    "kms:keyorigin",
    "kms:multiregion",
    "kms:multiregionkeytype",
    "kms:resourcealiases",
    "kms:viaservice",
];

/// Every KMS condition key as AWS spells it (a key ending in `:` is a
/// prefix): what "did you mean" suggests for a near miss. The lowercased
/// tables above hold the same keys (a test checks it).
pub const KMS_CONDITION_KEY_NAMES: &[&str] = &[
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:CallerAccount",
    "kms:CustomerMasterKeySpec",
    "kms:CustomerMasterKeyUsage",
    "kms:DataKeyPairSpec",
    "kms:EncryptionAlgorithm",
    "kms:EncryptionContext:",
    "kms:EncryptionContextKeys",
    "kms:ExpirationModel",
    "kms:GrantConstraintType",
    "kms:GrantIsForAWSResource",
    "kms:GrantOperations",
    "kms:GranteePrincipal",
    "kms:RetiringPrincipal",
    "kms:GrantConstraintSourceArn",
    "kms:GranteeServicePrincipal",
    "kms:RetiringServicePrincipal",
    "kms:KeyAgreementAlgorithm",
    "kms:KeyOrigin",
    "kms:KeySpec",
    "kms:KeyUsage",
    "kms:MacAlgorithm",
    "kms:MessageType",
    "kms:MultiRegion",
    "kms:MultiRegionKeyType",
    "kms:PrimaryRegion",
    "kms:ReEncryptOnSameKey",
    "kms:RecipientAttestation:",
    "kms:ReplicaRegion",
    "kms:RequestAlias",
    "kms:ResourceAliases",
    "kms:RotationPeriodInDays",
    "kms:ScheduleKeyDeletionPendingWindowInDays",
    "kms:SigningAlgorithm",
    "kms:TrailingDaysWithoutKeyUsage",
    "kms:ValidTo",
    "kms:ViaService",
    "kms:WrappingAlgorithm",
    "kms:WrappingKeySpec",
];

/// What a `kms:` condition key is.
enum KmsConditionKey {
    /// Not a KMS condition key.
    Unknown,
    /// Set on every request about a key.
    KeyWide,
    /// Set only by these operations.
    SetBy(&'static [&'static str]),
}

fn kms_condition_key(lower: &str) -> KmsConditionKey {
    let setters = CONDITION_KEY_ACTIONS.iter().find(|(k, _)| {
        if k.ends_with(':') {
            lower.starts_with(k) && lower.len() > k.len()
        } else {
            lower == *k
        }
    });
    match setters {
        Some((_, ops)) => KmsConditionKey::SetBy(ops),
        None if KEY_WIDE_CONDITION_KEYS.contains(&lower) => KmsConditionKey::KeyWide,
        None => KmsConditionKey::Unknown,
    }
}

/// Levenshtein distance over ASCII-lowercased bytes.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(cb));
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The KMS condition key an unknown `kms:` key is a near miss of (at most
/// 3 edits, or the same letters in another case), spelled as AWS spells it;
/// for a prefix key (`kms:EncryptionContex:app`) the suggestion keeps the
/// part after the prefix.
pub fn did_you_mean(key: &str) -> Option<String> {
    let suffix_at = key.rfind(':').filter(|&at| at > "kms".len());
    let mut best: Option<(usize, String)> = None;
    for name in KMS_CONDITION_KEY_NAMES {
        let (d, candidate) = match (name.strip_suffix(':'), suffix_at) {
            (Some(_), Some(at)) => (
                edit_distance(&key[..=at], name),
                format!("{name}{}", &key[at + 1..]),
            ),
            (Some(bare), None) => (edit_distance(key, bare), format!("{name}<key>")),
            (None, _) => (edit_distance(key, name), name.to_string()),
        };
        if d <= 3 && best.as_ref().is_none_or(|(b, _)| d < *b) {
            best = Some((d, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Whether a statement has a condition that no request of its actions can
/// meet: a positive test of a `kms:` key that is not a KMS condition key,
/// or that none of its KMS actions sets. Such a statement never applies.
fn never_applies(st: &Statement, actions: &[&str]) -> bool {
    let Some(c) = st.condition() else {
        return false;
    };
    c.blocks().iter().any(|b| {
        positive_operator(b.operator())
            && b.entries().iter().any(|e| {
                let lower = e.key().as_str().to_ascii_lowercase();
                lower.starts_with("kms:")
                    && match kms_condition_key(&lower) {
                        KmsConditionKey::Unknown => true,
                        KmsConditionKey::KeyWide => false,
                        KmsConditionKey::SetBy(ops) => {
                            !actions.is_empty() && !actions.iter().any(|a| ops.contains(a))
                        }
                    }
            })
    })
}

/// An operator that needs the key in the request to match (not negated,
/// not ...IfExists, not Null, not ForAllValues).
fn positive_operator(op: &ferrokms_policy::ConditionOperator) -> bool {
    !op.is_negated()
        && !op.if_exists
        && op.base != BaseOperator::Null
        && op.set != Some(SetOperator::ForAllValues)
}

/// The accounts a `Principal: "*"` Allow is limited to, when its only
/// restriction of the caller is kms:CallerAccount or aws:PrincipalAccount
/// equal to 12-digit account ids; `None` otherwise.
fn own_account_limit(st: &Statement) -> Option<Vec<String>> {
    let c = st.condition()?;
    let mut accounts: Vec<String> = Vec::new();
    for b in c.blocks() {
        let op = b.operator();
        let restricting = !op.is_negated() && !op.if_exists && op.base != BaseOperator::Null;
        for e in b.entries() {
            let k = e.key().as_str().to_ascii_lowercase();
            if !restricting {
                continue;
            }
            if k == "kms:calleraccount" || k == "aws:principalaccount" {
                let values: Vec<&str> = e
                    .values()
                    .iter()
                    .map(ferrokms_policy::ConditionValue::as_str)
                    .collect();
                if values.is_empty()
                    || !values
                        .iter()
                        .all(|v| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()))
                {
                    return None;
                }
                for v in values {
                    if !accounts.iter().any(|a| a == v) {
                        accounts.push(v.to_string());
                    }
                }
            } else if RESTRICTING_KEYS.contains(&k.as_str())
                || k.starts_with("aws:principaltag/")
                || k.starts_with("kms:encryptioncontext:")
            {
                return None;
            }
        }
    }
    (!accounts.is_empty()).then_some(accounts)
}

/// Condition keys that, tested positively, limit who can use an Allow with
/// `Principal: "*"` (lowercased).
const RESTRICTING_KEYS: &[&str] = &[
    "kms:calleraccount",
    "kms:viaservice",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceorgid",
    "aws:sourceip",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:userid",
    "aws:username",
    "aws:principalservicename",
];

/// Which kind of policy a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LintKind {
    /// A KMS key policy.
    Key,
    /// An IAM identity-based policy (user, group, role; inline or managed).
    Identity,
    /// A role trust policy.
    Trust,
}

/// How serious a finding is; the CLI exits non-zero on errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy is refused, or does something it cannot mean to.
    Error,
    /// Probably a mistake.
    Warning,
    /// Could be tighter.
    Suggestion,
    /// Not a problem in itself: something a reader of the policy should know.
    Info,
}

impl Severity {
    /// The severity as printed and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Suggestion => "suggestion",
            Severity::Info => "info",
        }
    }
}

/// One finding. `code` is stable (scripts may match on it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// The finding's code (one of the constants below).
    pub code: &'static str,
    /// The statement's index in `Statement` (0-based), if the finding has one.
    pub statement: Option<usize>,
    /// The statement's `Sid`, if it has one.
    pub sid: Option<String>,
    /// What was found, for people.
    pub message: String,
}

/// The policy engine refuses the document.
pub const SYNTAX_ERROR: &str = "SYNTAX_ERROR";
/// Key policy: `ForAllValues` with `kms:EncryptionContext:*` or `aws:RequestTag/*`.
pub const OVERLY_PERMISSIVE_CONDITION: &str = "OVERLY_PERMISSIVE_CONDITION";
/// Key policy: nobody may call PutKeyPolicy, so the policy can never change.
pub const LOCKOUT_RISK: &str = "LOCKOUT_RISK";
/// An Allow to everyone with no condition restricting the caller.
pub const PUBLIC_ACCESS: &str = "PUBLIC_ACCESS";
/// A `kms:` action or pattern that matches no KMS operation.
pub const UNKNOWN_ACTION: &str = "UNKNOWN_ACTION";
/// Key policy: `Resource` other than `"*"`.
pub const RESOURCE_NOT_STAR: &str = "RESOURCE_NOT_STAR";
/// Key policy: `kms:*` allowed to principals other than an account root.
pub const KMS_STAR_NOT_ROOT: &str = "KMS_STAR_NOT_ROOT";
/// `NotPrincipal` with Allow.
pub const NOT_PRINCIPAL_WITH_ALLOW: &str = "NOT_PRINCIPAL_WITH_ALLOW";
/// `Version` 2008-10-17: policy variables are literal text.
pub const DEPRECATED_VERSION: &str = "DEPRECATED_VERSION";
/// No `Version`: policy variables are literal text.
pub const MISSING_VERSION: &str = "MISSING_VERSION";
/// A KMS condition key that none of the statement's actions sets.
pub const CONDITION_KEY_NEVER_SET: &str = "CONDITION_KEY_NEVER_SET";
/// A `kms:` condition key that KMS does not define.
pub const UNKNOWN_CONDITION_KEY: &str = "UNKNOWN_CONDITION_KEY";
/// `kms:CreateGrant` allowed without a `kms:GrantIsForAWSResource` condition.
pub const CREATE_GRANT_WITHOUT_AWS_RESOURCE: &str = "CREATE_GRANT_WITHOUT_AWS_RESOURCE";
/// Key policy: no Allow names an account root, so IAM policies have no effect on the key.
pub const NO_ACCOUNT_DELEGATION: &str = "NO_ACCOUNT_DELEGATION";
/// Key policy: `Principal: "*"` limited only to the own account.
pub const ACCOUNT_WIDE_ACCESS: &str = "ACCOUNT_WIDE_ACCESS";

/// Case-insensitive `*` / `?` matching of an action pattern (without its
/// `kms:` prefix) against an action name.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob_match(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((c, rest)) => match name.split_first() {
            Some((n, nrest)) => c.eq_ignore_ascii_case(n) && glob_match(rest, nrest),
            None => false,
        },
    }
}

/// The KMS actions an action pattern (`kms:Get*`, `*`, `kms:*`) matches;
/// `None` for another service's pattern.
pub fn expand_action(pattern: &str) -> Option<Vec<&'static str>> {
    let rest = if pattern == "*" {
        "*"
    } else {
        let (service, rest) = pattern.split_once(':')?;
        if !glob_match(service.as_bytes(), b"kms") {
            return None;
        }
        rest
    };
    Some(
        KMS_ACTIONS
            .iter()
            .copied()
            .filter(|a| glob_match(rest.as_bytes(), a.as_bytes()))
            .collect(),
    )
}

/// The KMS actions a statement covers (Action, or the complement of
/// NotAction); empty without an action element.
pub fn statement_actions(st: &Statement) -> Vec<&'static str> {
    let Some(el) = st.action() else {
        return Vec::new();
    };
    let mut named: Vec<&'static str> = Vec::new();
    for p in el.patterns() {
        for a in expand_action(p.as_str()).unwrap_or_default() {
            if !named.contains(&a) {
                named.push(a);
            }
        }
    }
    if el.negated() {
        KMS_ACTIONS
            .iter()
            .copied()
            .filter(|a| !named.contains(a))
            .collect()
    } else {
        named
    }
}

fn is_account_root(id: &PrincipalId) -> bool {
    matches!(id, PrincipalId::Account(_))
}

fn is_everyone(st: &Statement) -> bool {
    match st.principal() {
        Some(p) if !p.negated() => match p.spec() {
            PrincipalSpec::Wildcard => true,
            PrincipalSpec::Typed(entries) => entries
                .iter()
                .any(|e| e.values().iter().any(|v| v.id() == &PrincipalId::Everyone)),
        },
        _ => false,
    }
}

fn has_restricting_condition(st: &Statement) -> bool {
    let Some(c) = st.condition() else {
        return false;
    };
    c.blocks().iter().any(|b| {
        let op = b.operator();
        !op.is_negated() && !op.if_exists && op.base != BaseOperator::Null && {
            b.entries().iter().any(|e| {
                let k = e.key().as_str().to_ascii_lowercase();
                RESTRICTING_KEYS.contains(&k.as_str())
                    || k.starts_with("aws:principaltag/")
                    || (k.starts_with("kms:encryptioncontext:")
                        && !e.values().iter().any(|v| v.as_str().contains('*')))
            })
        }
    })
}

fn parse_statement_index(message: &str) -> Option<usize> {
    let at = message.find("Statement[")?;
    let rest = &message[at + "Statement[".len()..];
    rest[..rest.find(']')?].parse().ok()
}

/// Validates a policy document of the given kind. Findings come in
/// document order, policy-wide ones first.
pub fn lint(text: &str, kind: LintKind) -> Vec<Finding> {
    let policy_kind = match kind {
        LintKind::Key | LintKind::Trust => PolicyKind::ResourceBased,
        LintKind::Identity => PolicyKind::IdentityBased,
    };
    let policy = match Policy::parse(text, &ParseOptions::for_kind(policy_kind)) {
        Ok(p) => p,
        Err(e) => {
            let mut message = e.to_string();
            if kind == LintKind::Key
                && Policy::parse(text, &ParseOptions::for_kind(PolicyKind::IdentityBased)).is_ok()
            {
                message.push_str(
                    "; the document reads as an IAM identity policy (no Principal): lint it with --kind identity",
                );
            }
            return vec![Finding {
                severity: Severity::Error,
                code: SYNTAX_ERROR,
                statement: parse_statement_index(&message),
                sid: None,
                message,
            }];
        }
    };
    lint_policy(&policy, kind)
}

/// As [`lint`], for a parsed policy.
pub fn lint_policy(policy: &Policy, kind: LintKind) -> Vec<Finding> {
    let mut out = Vec::new();
    let policy_wide = |severity, code, message: String| Finding {
        severity,
        code,
        statement: None,
        sid: None,
        message,
    };
    match policy.version() {
        None => out.push(policy_wide(
            Severity::Warning,
            MISSING_VERSION,
            "the policy has no Version: it is read as 2008-10-17, where policy variables such as ${aws:username} are literal text; add \"Version\": \"2012-10-17\"".into(),
        )),
        Some(Version::V2008_10_17) => out.push(policy_wide(
            Severity::Warning,
            DEPRECATED_VERSION,
            "Version 2008-10-17 is deprecated: policy variables are literal text in it; use \"2012-10-17\"".into(),
        )),
        Some(_) => {}
    }
    if kind == LintKind::Key {
        let can_update = policy.statements().iter().any(|st| {
            st.effect() == Effect::Allow
                && st.principal().is_some()
                && statement_actions(st).contains(&"PutKeyPolicy")
        });
        if !can_update {
            out.push(policy_wide(
                Severity::Error,
                LOCKOUT_RISK,
                "no statement allows kms:PutKeyPolicy to anyone: nobody could ever update this key policy (CreateKey and PutKeyPolicy refuse it unless the lockout safety check is bypassed)".into(),
            ));
        }
    }
    if kind == LintKind::Key {
        let delegates = policy.statements().iter().any(|st| {
            st.effect() == Effect::Allow
                && st.principal().is_some_and(|p| {
                    !p.negated()
                        && matches!(p.spec(), PrincipalSpec::Typed(entries)
                            if entries.iter().flat_map(ferrokms_policy::PrincipalEntry::values).any(|v| is_account_root(v.id())))
                })
        });
        if !delegates {
            out.push(policy_wide(
                Severity::Warning,
                NO_ACCOUNT_DELEGATION,
                "no statement allows the account (\"AWS\": \"arn:aws:iam::ACCOUNT:root\"): IAM policies have no effect on this key, only the principals this policy names may use it; to let IAM policies of the account decide, add the default key policy's statement (Allow arn:aws:iam::ACCOUNT:root kms:*)".into(),
            ));
        }
    }
    for (i, st) in policy.statements().iter().enumerate() {
        lint_statement(&mut out, i, st, kind);
    }
    out
}

fn lint_statement(out: &mut Vec<Finding>, index: usize, st: &Statement, kind: LintKind) {
    let sid = st.sid().map(str::to_string);
    let mut push = |severity, code, message: String| {
        out.push(Finding {
            severity,
            code,
            statement: Some(index),
            sid: sid.clone(),
            message,
        });
    };
    let allow = st.effect() == Effect::Allow;
    let actions = statement_actions(st);

    if let Some(el) = st.action() {
        for p in el.patterns() {
            if let Some(matched) = expand_action(p.as_str()) {
                if matched.is_empty() {
                    push(
                        Severity::Error,
                        UNKNOWN_ACTION,
                        format!("\"{}\" matches no KMS action", p.as_str()),
                    );
                }
            }
        }
    }

    let dead = never_applies(st, &actions);
    if allow
        && !dead
        && kind != LintKind::Identity
        && is_everyone(st)
        && !has_restricting_condition(st)
    {
        let (severity, what) = match kind {
            LintKind::Key => (
                Severity::Error,
                "this key: anyone, in any account, may use it",
            ),
            _ => (
                Severity::Error,
                "this role: anyone, in any account, may assume it",
            ),
        };
        push(
            severity,
            PUBLIC_ACCESS,
            format!("Principal \"*\" with Allow and no condition restricting the caller (kms:CallerAccount, aws:PrincipalAccount, aws:PrincipalOrgID, ...) makes {what}"),
        );
    }

    if allow && !dead && kind == LintKind::Key && is_everyone(st) {
        if let Some(accounts) = own_account_limit(st) {
            let what = if actions.len() == KMS_ACTIONS.len() {
                "do anything with this key".to_string()
            } else {
                actions
                    .iter()
                    .map(|a| format!("kms:{a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            push(
                Severity::Info,
                ACCOUNT_WIDE_ACCESS,
                format!("Principal \"*\" limited to account {}: every principal of the account may {what} regardless of IAM (its IAM policies cannot narrow this; only a Deny can); name the principals instead if that is not intended", accounts.join(", ")),
            );
        }
    }

    if kind == LintKind::Key {
        if let Some(r) = st.resource() {
            if r.negated() || r.patterns().iter().any(|p| p.as_str() != "*") {
                push(
                    Severity::Warning,
                    RESOURCE_NOT_STAR,
                    "in a key policy, Resource should be \"*\" (it means this key); another value matches nothing or only this key's ARN".into(),
                );
            }
        }
        if allow && actions.len() == KMS_ACTIONS.len() {
            if let Some(p) = st.principal().filter(|p| !p.negated()) {
                let non_root: Vec<&str> = match p.spec() {
                    PrincipalSpec::Wildcard => vec!["*"],
                    PrincipalSpec::Typed(entries) => entries
                        .iter()
                        .flat_map(ferrokms_policy::PrincipalEntry::values)
                        .filter(|v| !is_account_root(v.id()))
                        .map(ferrokms_policy::PrincipalValue::as_str)
                        .collect(),
                };
                if !non_root.is_empty() {
                    push(
                        Severity::Warning,
                        KMS_STAR_NOT_ROOT,
                        format!("kms:* is granted to {}: key users should not administer the key; give them only the operations they need (and keep kms:* for the account root)", non_root.join(", ")),
                    );
                }
            }
        }
    }

    if allow
        && st
            .principal()
            .is_some_and(ferrokms_policy::PrincipalElement::negated)
    {
        push(
            Severity::Warning,
            NOT_PRINCIPAL_WITH_ALLOW,
            "NotPrincipal with Allow allows everyone not listed, including other accounts and anonymous callers; name the principals in Principal instead".into(),
        );
    }

    if let Some(c) = st.condition() {
        let kms_actions = !actions.is_empty();
        for b in c.blocks() {
            let op = b.operator();
            let positive = positive_operator(op);
            for e in b.entries() {
                let key = e.key().as_str();
                let lower = key.to_ascii_lowercase();
                if kind == LintKind::Key
                    && op.set == Some(SetOperator::ForAllValues)
                    && (lower.starts_with("kms:encryptioncontext:")
                        || lower.starts_with("aws:requesttag/"))
                {
                    push(
                        Severity::Error,
                        OVERLY_PERMISSIVE_CONDITION,
                        format!("ForAllValues with the single-valued key {key} matches requests without it or with other values; KMS refuses such a key policy: remove ForAllValues"),
                    );
                }
                if !lower.starts_with("kms:") {
                    continue;
                }
                let effect = if positive {
                    "the condition can never match, so the statement never applies"
                } else {
                    "no request has it, so this test restricts nothing"
                };
                match kms_condition_key(&lower) {
                    KmsConditionKey::Unknown => {
                        let hint = did_you_mean(key)
                            .map(|k| format!(" (did you mean {k}?)"))
                            .unwrap_or_default();
                        push(
                            Severity::Warning,
                            UNKNOWN_CONDITION_KEY,
                            format!("{key} is not a KMS condition key{hint}: {effect}"),
                        );
                    }
                    KmsConditionKey::SetBy(ops) if positive && kms_actions && !actions.iter().any(|a| ops.contains(a)) => push(
                        Severity::Warning,
                        CONDITION_KEY_NEVER_SET,
                        format!(
                            "{key} is set only by {}, none of which this statement covers ({}): {effect}",
                            ops.iter().map(|o| format!("kms:{o}")).collect::<Vec<_>>().join(", "),
                            actions.iter().map(|o| format!("kms:{o}")).collect::<Vec<_>>().join(", ")
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }

    if allow && actions.contains(&"CreateGrant") && st.action().is_some_and(|a| !a.negated()) {
        let only_root = match st.principal() {
            None => false,
            Some(p) => {
                !p.negated()
                    && matches!(p.spec(), PrincipalSpec::Typed(entries)
                        if entries.iter().flat_map(ferrokms_policy::PrincipalEntry::values).all(|v| is_account_root(v.id())))
            }
        };
        let has_key = st.condition().is_some_and(|c| {
            c.blocks().iter().any(|b| {
                b.entries().iter().any(|e| {
                    e.key()
                        .as_str()
                        .eq_ignore_ascii_case("kms:GrantIsForAWSResource")
                })
            })
        });
        if !only_root && !has_key {
            push(
                Severity::Suggestion,
                CREATE_GRANT_WITHOUT_AWS_RESOURCE,
                "kms:CreateGrant without a kms:GrantIsForAWSResource condition lets the principal delegate its permissions to anyone; add \"Bool\": {\"kms:GrantIsForAWSResource\": \"true\"} if only AWS services need to create grants".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str, kind: LintKind) -> Vec<&'static str> {
        lint(text, kind).into_iter().map(|f| f.code).collect()
    }

    fn key_policy(statements: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}}{statements}]}}"#
        )
    }

    fn finding(text: &str, kind: LintKind, code: &str) -> Finding {
        lint(text, kind)
            .into_iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} in {:?}", lint(text, kind)))
    }

    #[test]
    fn action_list_has_the_56_operations_and_the_reencrypt_permissions() {
        assert_eq!(KMS_ACTIONS.len(), 58);
        assert_eq!(key_actions().len(), 45);
        assert_eq!(expand_action("kms:ReEncrypt*").unwrap().len(), 3);
        assert_eq!(expand_action("KMS:encrypt").unwrap(), vec!["Encrypt"]);
        assert_eq!(expand_action("s3:GetObject"), None);
    }

    #[test]
    fn default_key_policy_is_clean() {
        let text = crate::default_key_policy(
            &ferrokms_types::AccountId::parse("111122223333").unwrap(),
            "aws",
        );
        assert_eq!(lint(&text, LintKind::Key), vec![]);
    }

    #[test]
    fn syntax_error() {
        let f = finding(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#,
            LintKind::Key,
            SYNTAX_ERROR,
        );
        assert_eq!(f.severity, Severity::Error);
        assert_eq!(f.statement, Some(0));
        assert!(f.message.contains("Principal"), "{}", f.message);
        assert_eq!(
            finding("not json", LintKind::Identity, SYNTAX_ERROR).statement,
            None
        );
    }

    #[test]
    fn lockout_risk() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}"#;
        let f = finding(text, LintKind::Key, LOCKOUT_RISK);
        assert_eq!(f.severity, Severity::Error);
        assert!(!codes(text, LintKind::Identity).contains(&LOCKOUT_RISK));
        assert!(!codes(&key_policy(""), LintKind::Key).contains(&LOCKOUT_RISK));
    }

    #[test]
    fn public_access() {
        let open = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#,
        );
        let f = finding(&open, LintKind::Key, PUBLIC_ACCESS);
        assert_eq!((f.severity, f.statement), (Severity::Error, Some(1)));
        let aws_star = key_policy(
            r#",{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}"#,
        );
        assert!(codes(&aws_star, LintKind::Key).contains(&PUBLIC_ACCESS));
        let restricted = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}"#,
        );
        assert!(!codes(&restricted, LintKind::Key).contains(&PUBLIC_ACCESS));
        let deny = key_policy(
            r#",{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#,
        );
        assert!(!codes(&deny, LintKind::Key).contains(&PUBLIC_ACCESS));
    }

    #[test]
    fn unknown_action() {
        let text = key_policy(
            r#",{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":["kms:Encrypt","kms:EncryptAll","kms:Frobnicate*","kms:Gen*"],"Resource":"*"}"#,
        );
        let found: Vec<Finding> = lint(&text, LintKind::Key)
            .into_iter()
            .filter(|f| f.code == UNKNOWN_ACTION)
            .collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].message.contains("kms:EncryptAll"));
        assert!(found[1].message.contains("kms:Frobnicate*"));
        assert_eq!(found[0].severity, Severity::Error);
        let identity = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","kms:Sing"],"Resource":"*"}]}"#;
        assert_eq!(codes(identity, LintKind::Identity), vec![UNKNOWN_ACTION]);
    }

    #[test]
    fn resource_not_star() {
        let text = key_policy(
            r#",{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Encrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/*"}"#,
        );
        let f = finding(&text, LintKind::Key, RESOURCE_NOT_STAR);
        assert_eq!((f.severity, f.statement), (Severity::Warning, Some(1)));
    }

    #[test]
    fn kms_star_not_root() {
        let text = key_policy(
            r#",{"Sid":"Users","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:*","Resource":"*"}"#,
        );
        let f = finding(&text, LintKind::Key, KMS_STAR_NOT_ROOT);
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.sid.as_deref(), Some("Users"));
        assert!(f.message.contains("role/app"));
    }

    #[test]
    fn not_principal_with_allow() {
        let text = key_policy(
            r#",{"Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/eve"},"Action":"kms:Encrypt","Resource":"*"}"#,
        );
        assert_eq!(
            finding(&text, LintKind::Key, NOT_PRINCIPAL_WITH_ALLOW).severity,
            Severity::Warning
        );
    }

    #[test]
    fn deprecated_and_missing_version() {
        let old = r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
        assert_eq!(codes(old, LintKind::Identity), vec![DEPRECATED_VERSION]);
        let none = r#"{"Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
        assert_eq!(codes(none, LintKind::Identity), vec![MISSING_VERSION]);
    }

    #[test]
    fn condition_key_never_set() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"x"}}},
            {"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:SigningAlgorithm":"ECDSA_SHA_256"}}},
            {"Effect":"Allow","Action":["kms:Encrypt","kms:Sign"],"Resource":"*","Condition":{"StringEquals":{"kms:SigningAlgorithm":"ECDSA_SHA_256"}}},
            {"Effect":"Allow","Action":"kms:Sign","Resource":"*","Condition":{"StringEqualsIfExists":{"kms:EncryptionContext:app":"x"}}},
            {"Effect":"Allow","Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}]}"#;
        let found: Vec<Finding> = lint(text, LintKind::Identity)
            .into_iter()
            .filter(|f| f.code == CONDITION_KEY_NEVER_SET)
            .collect();
        assert_eq!(
            found.iter().map(|f| f.statement).collect::<Vec<_>>(),
            vec![Some(0), Some(1)]
        );
        assert!(found[1]
            .message
            .contains("kms:SigningAlgorithm is set only by kms:Sign, kms:Verify"));
    }

    #[test]
    fn unknown_condition_key() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Sign","Resource":"*","Condition":{"StringEquals":{"kms:SigningAlgorythm":"x"}}}]}"#;
        assert_eq!(codes(text, LintKind::Identity), vec![UNKNOWN_CONDITION_KEY]);
        let f = finding(text, LintKind::Identity, UNKNOWN_CONDITION_KEY);
        assert!(
            f.message.contains("(did you mean kms:SigningAlgorithm?)")
                && f.message.contains("never applies"),
            "{}",
            f.message
        );
    }

    #[test]
    fn unknown_condition_key_is_one_finding_not_public_access() {
        // A misspelled kms:CallerAccount: the statement never applies, so
        // it is not public either.
        let text = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAcount":"111122223333"}}}"#,
        );
        assert_eq!(codes(&text, LintKind::Key), vec![UNKNOWN_CONDITION_KEY]);
        assert!(finding(&text, LintKind::Key, UNKNOWN_CONDITION_KEY)
            .message
            .contains("did you mean kms:CallerAccount?"));
        // Negated, the unknown key restricts nothing: public, and said so.
        let negated = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:CallerAcount":"444455556666"}}}"#,
        );
        assert_eq!(
            codes(&negated, LintKind::Key),
            vec![PUBLIC_ACCESS, UNKNOWN_CONDITION_KEY]
        );
        assert!(finding(&negated, LintKind::Key, UNKNOWN_CONDITION_KEY)
            .message
            .contains("restricts nothing"));
        // A key never set by the statement's actions: one finding too.
        let never = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:SigningAlgorithm":"ECDSA_SHA_256"}}}"#,
        );
        assert_eq!(codes(&never, LintKind::Key), vec![CONDITION_KEY_NEVER_SET]);
    }

    #[test]
    fn did_you_mean_near_misses() {
        assert_eq!(
            did_you_mean("kms:EncryptionContex:app").as_deref(),
            Some("kms:EncryptionContext:app")
        );
        assert_eq!(
            did_you_mean("kms:ViaServices").as_deref(),
            Some("kms:ViaService")
        );
        assert_eq!(did_you_mean("kms:Frobnicate"), None);
    }

    #[test]
    fn condition_key_names_match_the_tables() {
        let mut lower: Vec<String> = CONDITION_KEY_ACTIONS
            .iter()
            .map(|(k, _)| k.to_string())
            .chain(KEY_WIDE_CONDITION_KEYS.iter().map(ToString::to_string))
            .collect();
        let mut named: Vec<String> = KMS_CONDITION_KEY_NAMES
            .iter()
            .map(|k| k.to_ascii_lowercase())
            .collect();
        lower.sort();
        named.sort();
        assert_eq!(lower, named);
    }

    #[test]
    fn no_account_delegation() {
        // Seed 000's lesson: without the account root, IAM policies do nothing.
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/admin"},"Action":["kms:PutKeyPolicy","kms:Decrypt"],"Resource":"*"}]}"#;
        let f = finding(text, LintKind::Key, NO_ACCOUNT_DELEGATION);
        assert_eq!((f.severity, f.statement), (Severity::Warning, None));
        assert!(f.message.contains("IAM policies have no effect"));
        assert!(!codes(&key_policy(""), LintKind::Key).contains(&NO_ACCOUNT_DELEGATION));
        assert!(!codes(text, LintKind::Identity).contains(&NO_ACCOUNT_DELEGATION));
    }

    #[test]
    fn account_wide_access() {
        let text = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}"#,
        );
        let f = finding(&text, LintKind::Key, ACCOUNT_WIDE_ACCESS);
        assert_eq!((f.severity, f.statement), (Severity::Info, Some(1)));
        assert!(
            f.message.contains("account 111122223333")
                && f.message
                    .contains("kms:Encrypt, kms:Decrypt regardless of IAM"),
            "{}",
            f.message
        );
        assert!(!codes(&text, LintKind::Key).contains(&PUBLIC_ACCESS));
        // Further limited (to a role): not account-wide.
        let narrower = key_policy(
            r#",{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333","aws:PrincipalArn":"arn:aws:iam::111122223333:role/app"}}}"#,
        );
        assert!(!codes(&narrower, LintKind::Key).contains(&ACCOUNT_WIDE_ACCESS));
    }

    #[test]
    fn identity_policy_linted_as_key_policy_suggests_the_kind() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
        let f = finding(text, LintKind::Key, SYNTAX_ERROR);
        assert!(f.message.contains("--kind identity"), "{}", f.message);
        let broken = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Alow","Action":"kms:Encrypt","Resource":"*"}]}"#;
        assert!(!finding(broken, LintKind::Key, SYNTAX_ERROR)
            .message
            .contains("--kind identity"));
    }

    #[test]
    fn create_grant_without_aws_resource() {
        let text = key_policy(
            r#",{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":["kms:CreateGrant","kms:ListGrants"],"Resource":"*"}"#,
        );
        let f = finding(&text, LintKind::Key, CREATE_GRANT_WITHOUT_AWS_RESOURCE);
        assert_eq!(f.severity, Severity::Suggestion);
        let guarded = key_policy(
            r#",{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}"#,
        );
        assert!(!codes(&guarded, LintKind::Key).contains(&CREATE_GRANT_WITHOUT_AWS_RESOURCE));
    }

    #[test]
    fn overly_permissive_condition_code_is_reserved_for_key_policies() {
        // KMS itself refuses ForAllValues with kms:EncryptionContext:*.
        let text = key_policy(
            r#",{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*","Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContext:app":"x"}}}"#,
        );
        assert!(codes(&text, LintKind::Key).contains(&OVERLY_PERMISSIVE_CONDITION));
        assert!(!codes(&text, LintKind::Identity).contains(&OVERLY_PERMISSIVE_CONDITION));
    }
}
