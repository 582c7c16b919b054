//! The custom policy checks: CheckNoPublicAccess, CheckAccessNotGranted
//! and CheckNoNewAccess, answered by the decision procedure of
//! `ferrokms_reach`.
//!
//! The policy under check is about one KMS key: the key ARN given in an
//! `access` entry of CheckAccessNotGranted, else a key of the caller's
//! account and Region with an all-zero id. A resource policy is that key's
//! key policy. An identity policy is held by one user of the caller's
//! account (`user/access-check`) under the default key policy (the account
//! root may use the key, so identity policies decide), and the question is
//! asked of that user only.
//!
//! CheckNoPublicAccess also takes `AWS::IAM::AssumeRolePolicyDocument`:
//! the document is the trust policy of a role of the caller's account
//! (`role/access-check`), asked by `ferrokms_reach::check_no_public_access_role`.
//!
//! Results: `Allowed(witness)` is FAIL with a reason naming the witness
//! request and the statement that allows it (found by evaluating each
//! Allow statement of the checked policy against the witness with the
//! policy engine); `NotGranted(proof)` is PASS; `Unknown(reason)` is FAIL
//! (AWS's results are only PASS and FAIL, and a PASS must be a proof), its
//! message saying the check could not be proven and why.

use std::sync::Arc;

use ferrokms_authz::catalog::Operation;
use ferrokms_authz::Caller;
use ferrokms_policy::{
    evaluate_statement, Action, Context, Effect, ParseOptions, Policy, PolicyKind, Request,
    RequestPrincipal,
};
use ferrokms_reach::{Answer, Holder, KeyTarget, PolicySet, RolePolicySet, Witness};
use serde_json::{json, Value};

use crate::analyzers::{Input, MAX_POLICY_CHARS};
use crate::{authorize, AnalyzerError, ValidationReason};

/// The model's `AccessCheckResourceType` values.
const RESOURCE_TYPES: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::DynamoDB::Stream",
    "AWS::EFS::FileSystem",
    "AWS::OpenSearchService::Domain",
    "AWS::Kinesis::Stream",
    "AWS::Kinesis::StreamConsumer",
    "AWS::KMS::Key",
    "AWS::Lambda::Function",
    "AWS::S3::Bucket",
    "AWS::S3::AccessPoint",
    "AWS::S3Express::DirectoryBucket",
    "AWS::S3::Glacier",
    "AWS::S3Outposts::Bucket",
    "AWS::S3Outposts::AccessPoint",
    "AWS::SecretsManager::Secret",
    "AWS::SNS::Topic",
    "AWS::SQS::Queue",
    "AWS::IAM::AssumeRolePolicyDocument",
    "AWS::S3Tables::TableBucket",
    "AWS::ApiGateway::RestApi",
    "AWS::CodeArtifact::Domain",
    "AWS::Backup::BackupVault",
    "AWS::CloudTrail::Dashboard",
    "AWS::CloudTrail::EventDataStore",
    "AWS::S3Tables::Table",
    "AWS::S3Express::AccessPoint",
];
/// The model's limit on CheckAccessNotGranted's `access` list.
const MAX_ACCESS: usize = 10;
/// The model's limit on an access entry's actions and resources.
const MAX_ACCESS_ITEMS: usize = 100;
/// Distinct keys one CheckAccessNotGranted may name (each is one run of
/// the decision procedure, bounded by its own request bound).
const MAX_KEYS: usize = 10;
/// The user an identity policy is checked for.
const CHECK_USER: &str = "access-check";

/// The model's `AccessCheckPolicyType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckPolicyType {
    Identity,
    Resource,
}

fn policy_type(input: &Input<'_>) -> Result<CheckPolicyType, AnalyzerError> {
    match input.required("policyType")? {
        "IDENTITY_POLICY" => Ok(CheckPolicyType::Identity),
        "RESOURCE_POLICY" => Ok(CheckPolicyType::Resource),
        _ => Err(AnalyzerError::field(
            "policyType",
            "Member must satisfy enum value set: [IDENTITY_POLICY, RESOURCE_POLICY]",
        )),
    }
}

fn parse_document(
    input: &Input<'_>,
    member: &str,
    kind: PolicyKind,
) -> Result<Arc<Policy>, AnalyzerError> {
    parse_with(input, member, &ParseOptions::for_kind(kind))
}

/// The document `member`, within ValidatePolicy's size limit, parsed
/// with `options`.
fn parse_with(
    input: &Input<'_>,
    member: &str,
    options: &ParseOptions,
) -> Result<Arc<Policy>, AnalyzerError> {
    let text = input.required(member)?;
    let chars = text.chars().filter(|c| !c.is_whitespace()).count();
    if chars > MAX_POLICY_CHARS {
        return Err(AnalyzerError::field(
            member,
            format!("The policy has {chars} characters other than whitespace, more than the maximum of {MAX_POLICY_CHARS}"),
        ));
    }
    Policy::parse(text, options)
        .map(Arc::new)
        .map_err(|e| AnalyzerError::field(member, format!("The policy document is invalid: {e}")))
}

fn default_key(caller: &Caller) -> String {
    format!(
        "arn:{}:kms:{}:{}:key/00000000-0000-0000-0000-000000000000",
        caller.region.partition(),
        caller.region.as_str(),
        caller.account.as_str()
    )
}

fn check_user(caller: &Caller) -> String {
    format!(
        "arn:{}:iam::{}:user/{CHECK_USER}",
        caller.region.partition(),
        caller.account.as_str()
    )
}

/// The policy set in which `policy` (of type `ty`) is checked, for `key`.
fn policy_set(
    caller: &Caller,
    key: &str,
    ty: CheckPolicyType,
    policy: &Arc<Policy>,
) -> Result<PolicySet, AnalyzerError> {
    let target = KeyTarget::new(key).map_err(|e| AnalyzerError::field("access", e.to_string()))?;
    match ty {
        CheckPolicyType::Resource => Ok(PolicySet::new(target, Arc::clone(policy))),
        CheckPolicyType::Identity => {
            // The key's account and the caller's (the holder's) may use
            // the key through their identity policies.
            let mut roots = vec![format!(
                "arn:{}:iam::{}:root",
                caller.region.partition(),
                target.account.as_str()
            )];
            if caller.account != target.account {
                roots.push(format!(
                    "arn:{}:iam::{}:root",
                    caller.region.partition(),
                    caller.account.as_str()
                ));
            }
            let text = json!({"Version": "2012-10-17", "Statement": [{
                "Sid": "Enable IAM User Permissions", "Effect": "Allow",
                "Principal": {"AWS": roots}, "Action": "kms:*", "Resource": "*"}]})
            .to_string();
            let key_policy =
                Policy::parse(&text, &ParseOptions::for_kind(PolicyKind::ResourceBased))
                    .map_err(|e| AnalyzerError::Corrupt(format!("default key policy: {e}")))?;
            let mut set = PolicySet::new(target, Arc::new(key_policy));
            if !set.knows(&caller.account) {
                set.known_accounts.push(caller.account.clone());
            }
            set.holders.push(Holder {
                arn: check_user(caller),
                policies: vec![(PolicyKind::IdentityBased, Arc::clone(policy))],
            });
            Ok(set)
        }
    }
}

fn kind_of(ty: CheckPolicyType) -> PolicyKind {
    match ty {
        CheckPolicyType::Identity => PolicyKind::IdentityBased,
        CheckPolicyType::Resource => PolicyKind::ResourceBased,
    }
}

/// The first Allow statement of `policy` that applies to the witness
/// request, preferring one that `old` (the existing policy of
/// CheckNoNewAccess) does not have: its index and Sid.
fn granting_statement(
    policy: &Policy,
    old: Option<&Policy>,
    kind: PolicyKind,
    w: &Witness,
) -> Option<(usize, Option<String>)> {
    // The web-identity and SAML actions are asked of a provider's
    // identities (see `ferrokms_reach::role_external_access`).
    let principal = if w
        .action
        .eq_ignore_ascii_case("sts:AssumeRoleWithWebIdentity")
        || w.action.eq_ignore_ascii_case("sts:AssumeRoleWithSAML")
    {
        RequestPrincipal::anonymous().with_federated_provider(&w.principal)
    } else {
        RequestPrincipal::from_arn(&w.principal).ok()?
    };
    let action = Action::parse(&w.action).ok()?;
    let ctx = ferrokms_reach::context_of(&w.context);
    let request = Request::new(principal, action, &w.resource)
        .with_context(ctx)
        .with_principal_context();
    let applying: Vec<(usize, &ferrokms_policy::Statement)> = policy
        .statements()
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.effect() == Effect::Allow && evaluate_statement(s, kind, &request).applies()
        })
        .collect();
    let is_new = |s: &ferrokms_policy::Statement| old.is_none_or(|o| !o.statements().contains(s));
    applying
        .iter()
        .find(|(_, s)| is_new(s))
        .or_else(|| applying.first())
        .map(|(i, s)| (*i, s.sid().map(str::to_string)))
}

fn describe(w: &Witness) -> String {
    let ctx = if w.context.is_empty() {
        "no condition keys".to_string()
    } else {
        w.context
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "principal {} ({}) may perform {} on {} with context [{ctx}], through the {}",
        w.principal, w.principal_class, w.action, w.resource, w.path
    )
}

/// A reason for a witness: its description and the statement of `policy`
/// that grants it, when one statement does on its own.
fn reason(
    policy: &Policy,
    old: Option<&Policy>,
    kind: PolicyKind,
    w: &Witness,
    lead: &str,
) -> Value {
    let mut r = serde_json::Map::new();
    r.insert(
        "description".into(),
        format!("{lead}: {}", describe(w)).into(),
    );
    if let Some((index, sid)) = granting_statement(policy, old, kind, w) {
        r.insert("statementIndex".into(), index.into());
        if let Some(sid) = sid {
            r.insert("statementId".into(), sid.into());
        }
    }
    Value::Object(r)
}

/// Messages of one check: (PASS, FAIL).
struct Messages {
    pass: &'static str,
    fail: &'static str,
    lead: &'static str,
}

fn answer(
    answer: &Answer,
    policy: &Policy,
    old: Option<&Policy>,
    kind: PolicyKind,
    m: &Messages,
) -> Value {
    match answer {
        Answer::NotGranted(_) => json!({"result": "PASS", "message": m.pass, "reasons": []}),
        Answer::Allowed(w) => json!({
            "result": "FAIL",
            "message": m.fail,
            "reasons": [reason(policy, old, kind, w, m.lead)],
        }),
        Answer::Unknown(why) => {
            let why = why.strip_prefix("unknown: ").unwrap_or(why);
            json!({
            "result": "FAIL",
            "message": format!("ferrokms could not prove the check (so it does not pass): {why}"),
            "reasons": [{"description": format!("The analysis is unknown: {why}")}],
            })
        }
    }
}

/// The role whose trust policy CheckNoPublicAccess checks.
fn check_role(caller: &Caller) -> String {
    format!(
        "arn:{}:iam::{}:role/{CHECK_USER}",
        caller.region.partition(),
        caller.account.as_str()
    )
}

/// CheckNoPublicAccess: resource types `AWS::KMS::Key` and
/// `AWS::IAM::AssumeRolePolicyDocument`.
pub(crate) fn check_no_public_access(
    caller: &Caller,
    op: &Operation,
    input: &Input<'_>,
) -> Result<Value, AnalyzerError> {
    authorize(caller, op, "*", &Context::new())?;
    let rt = input.required("resourceType")?;
    if !RESOURCE_TYPES.contains(&rt) {
        return Err(AnalyzerError::field(
            "resourceType",
            format!(
                "Member must satisfy enum value set: [{}]",
                RESOURCE_TYPES.join(", ")
            ),
        ));
    }
    let messages = Messages {
        pass: "The resource policy does not grant public access for the given resource type.",
        fail: "The resource policy grants public access for the given resource type.",
        lead: "Public access",
    };
    if rt == "AWS::IAM::AssumeRolePolicyDocument" {
        let policy = parse_with(input, "policyDocument", &ParseOptions::for_trust_policy())?;
        let set = RolePolicySet::new(&check_role(caller), Arc::clone(&policy))
            .map_err(|e| AnalyzerError::Corrupt(format!("the checked role: {e}")))?;
        let a = ferrokms_reach::check_no_public_access_role(&set);
        return Ok(answer(
            &a,
            &policy,
            None,
            PolicyKind::ResourceBased,
            &messages,
        ));
    }
    if rt != "AWS::KMS::Key" {
        return Err(AnalyzerError::validation(
            ValidationReason::NotSupported,
            format!("ferrokms checks public access for resource types AWS::KMS::Key and AWS::IAM::AssumeRolePolicyDocument only, not {rt}"),
        ));
    }
    let policy = parse_document(input, "policyDocument", PolicyKind::ResourceBased)?;
    let set = policy_set(
        caller,
        &default_key(caller),
        CheckPolicyType::Resource,
        &policy,
    )?;
    let a = ferrokms_reach::check_no_public_access(&set);
    Ok(answer(
        &a,
        &policy,
        None,
        PolicyKind::ResourceBased,
        &messages,
    ))
}

/// One `access` entry: its actions (key-action patterns) and resources.
struct AccessEntry {
    actions: Vec<String>,
    resources: Vec<String>,
}

fn access_list(input: &Input<'_>) -> Result<Vec<AccessEntry>, AnalyzerError> {
    let Some(Value::Array(items)) = input.body.get("access") else {
        return Err(AnalyzerError::field("access", "Member must be a list"));
    };
    if items.is_empty() || items.len() > MAX_ACCESS {
        return Err(AnalyzerError::field(
            "access",
            format!("Member must have length between 1 and {MAX_ACCESS}"),
        ));
    }
    let strings = |v: Option<&Value>, name: &str| -> Result<Vec<String>, AnalyzerError> {
        match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() <= MAX_ACCESS_ITEMS => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| AnalyzerError::field(name, "Member must be a string"))
                })
                .collect(),
            Some(_) => Err(AnalyzerError::field(
                name,
                format!("Member must be a list of at most {MAX_ACCESS_ITEMS} strings"),
            )),
        }
    };
    let mut out = Vec::new();
    for item in items {
        let actions = strings(item.get("actions"), "access.actions")?;
        let resources = strings(item.get("resources"), "access.resources")?;
        if actions.is_empty() && resources.is_empty() {
            return Err(AnalyzerError::field(
                "access",
                "An access entry needs actions or resources",
            ));
        }
        for a in &actions {
            if !a.to_ascii_lowercase().starts_with("kms:") {
                return Err(AnalyzerError::validation(
                    ValidationReason::NotSupported,
                    format!("ferrokms checks access to KMS key actions only, not {a}"),
                ));
            }
        }
        out.push(AccessEntry { actions, resources });
    }
    Ok(out)
}

/// CheckAccessNotGranted for KMS key actions.
pub(crate) fn check_access_not_granted(
    caller: &Caller,
    op: &Operation,
    input: &Input<'_>,
) -> Result<Value, AnalyzerError> {
    authorize(caller, op, "*", &Context::new())?;
    let ty = policy_type(input)?;
    let kind = kind_of(ty);
    let policy = parse_document(input, "policyDocument", kind)?;
    let access = access_list(input)?;
    let messages = Messages {
        pass: "The policy document does not grant access to perform the listed actions or resources.",
        fail: "The policy document grants access to perform one or more of the listed actions or resources.",
        lead: "Access granted",
    };
    let user = check_user(caller);
    // Per key, the actions of every entry that names it: the check is
    // whether one of an entry's actions is allowed on one of its keys.
    let mut per_key: std::collections::BTreeMap<String, Vec<&str>> =
        std::collections::BTreeMap::new();
    for entry in &access {
        let actions: Vec<&str> = if entry.actions.is_empty() {
            vec!["kms:*"]
        } else {
            entry.actions.iter().map(String::as_str).collect()
        };
        // A key ARN names the key; anything else (a pattern) is checked on
        // a key of the caller's account.
        let keys: Vec<String> = if entry.resources.is_empty() {
            vec![default_key(caller)]
        } else {
            entry
                .resources
                .iter()
                .map(|r| {
                    if r.contains(":key/") && !r.contains('*') && !r.contains('?') {
                        r.clone()
                    } else {
                        default_key(caller)
                    }
                })
                .collect()
        };
        for key in keys {
            let list = per_key.entry(key).or_default();
            for a in &actions {
                if !list.contains(a) {
                    list.push(a);
                }
            }
        }
    }
    if per_key.len() > MAX_KEYS {
        return Err(AnalyzerError::field(
            "access",
            format!("ferrokms checks at most {MAX_KEYS} distinct keys in one request"),
        ));
    }
    for (key, actions) in &per_key {
        let set = policy_set(caller, key, ty, &policy)?;
        let a = match ty {
            CheckPolicyType::Resource => ferrokms_reach::check_access_not_granted(&set, actions),
            CheckPolicyType::Identity => {
                ferrokms_reach::check_access_not_granted_by(&set, actions, &user)
            }
        };
        if !matches!(a, Answer::NotGranted(_)) {
            return Ok(answer(&a, &policy, None, kind, &messages));
        }
    }
    Ok(json!({"result": "PASS", "message": messages.pass, "reasons": []}))
}

/// CheckNoNewAccess: `newPolicyDocument` against `existingPolicyDocument`.
pub(crate) fn check_no_new_access(
    caller: &Caller,
    op: &Operation,
    input: &Input<'_>,
) -> Result<Value, AnalyzerError> {
    authorize(caller, op, "*", &Context::new())?;
    let ty = policy_type(input)?;
    let kind = kind_of(ty);
    let new = parse_document(input, "newPolicyDocument", kind)?;
    let old = parse_document(input, "existingPolicyDocument", kind)?;
    let key = default_key(caller);
    let new_set = policy_set(caller, &key, ty, &new)?;
    let old_set = policy_set(caller, &key, ty, &old)?;
    let a = match ty {
        CheckPolicyType::Resource => ferrokms_reach::check_no_new_access(&old_set, &new_set),
        CheckPolicyType::Identity => {
            ferrokms_reach::check_no_new_access_by(&old_set, &new_set, &check_user(caller))
        }
    };
    Ok(answer(
        &a,
        &new,
        Some(&old),
        kind,
        &Messages {
            pass:
                "The modified permissions do not grant new access compared to your existing policy.",
            fail: "The modified permissions grant new access compared to your existing policy.",
            lead: "New access",
        },
    ))
}
