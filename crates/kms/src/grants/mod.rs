//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant,
//! RevokeGrant, and how a grant allows a request.
//!
//! A grant allows its grantee the listed operations on one key, optionally
//! only with a matching encryption context. Grants only ever allow: an
//! explicit deny in any policy still wins. ferrokms is strongly consistent,
//! so a grant is effective on the next request; grant tokens are still
//! accepted and validated as AWS clients send them.
//!
//! The rule itself (which grant allows which request) is
//! `ferrokms_authz::grants`, one pure function shared with the whole-space
//! analysis (`crates/reach`); this file reads its stored grants and the
//! request's caller into that rule's views ([`GrantRecord::view`],
//! `grant_caller`). The grant record, its token and the five operations
//! share private types, so they stay in this one file; the wire shapes are
//! in `wire`, the unit tests in `tests`.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ferrokms_authz::grants::{
    self as rule, GrantCaller, GrantRequest, GrantView, GranteeMatch, GranteeView, OperationMiss,
};
use ferrokms_authz::IdentitySide;
use ferrokms_policy::{Context, ContextValue, Decision};
use ferrokms_store::Change;
use ferrokms_types::AccountId;
use serde::{Deserialize, Serialize};

use crate::api::Empty;
use crate::crypto::random_bytes;
use crate::ids::{Accepts, KeyAddr, KeyRef};
use crate::model::{KeyRecord, KeySpec, KeyUsage};
use crate::ops::page;
use crate::{Caller, Kms, KmsError};

mod wire;
pub use wire::*;

pub(crate) const KIND_GRANT: &str = "kms.grant";
const MAX_GRANTS_PER_KEY: usize = 50_000;
const MAX_CONSTRAINT_PAIRS: usize = 8;
const MAX_CONSTRAINT_VALUE: usize = 384;
const TOKEN_PREFIX: &str = "fkgt1";

/// The constraints of a grant: on the encryption context, and on the
/// resource an AWS service calls for (`SourceArn`, compared with the
/// request's `aws:SourceArn`). Stored grants without `SourceArn` read as
/// having none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantConstraints {
    /// `EncryptionContextSubset`: the request's context must contain these pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    /// `EncryptionContextEquals`: the request's context must be exactly these pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// `SourceArn`: the request's `aws:SourceArn` must be this ARN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
}

impl GrantConstraints {
    /// An empty `EncryptionContextEquals` or `EncryptionContextSubset` is
    /// taken as not given (as AWS documents for its grant constraints in
    /// Access Analyzer): Terraform's provider sends an empty map for the
    /// one it was not given, and echoing it back in ListGrants would show
    /// a constraint nobody asked for.
    fn without_empty_maps(mut self) -> Self {
        for m in [
            &mut self.encryption_context_equals,
            &mut self.encryption_context_subset,
        ] {
            if m.as_ref().is_some_and(BTreeMap::is_empty) {
                *m = None;
            }
        }
        self
    }

    fn is_empty(&self) -> bool {
        !self.has_encryption_context() && self.source_arn.is_none()
    }

    /// Whether it constrains the encryption context (only symmetric
    /// encryption keys take one).
    fn has_encryption_context(&self) -> bool {
        self.encryption_context_subset.is_some() || self.encryption_context_equals.is_some()
    }

    /// The `SourceArn` constraint holds when the request is made for that
    /// very resource (its `aws:SourceArn`, exact match): a request that
    /// names no source resource never meets it.
    fn source_arn_holds(&self, request_source: Option<&str>) -> bool {
        rule::source_arn_holds(self.source_arn.as_deref(), request_source)
    }

    /// Keys compare case-insensitively, values case-sensitively (AWS's
    /// rule, `ferrokms_authz::grants::constraints_hold`).
    #[cfg(test)]
    fn holds(&self, ec: &BTreeMap<String, String>) -> bool {
        let lower: BTreeMap<String, String> = ec
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.clone()))
            .collect();
        let ops: [String; 0] = [];
        rule::constraints_hold(
            &GrantView {
                grantee: GranteeView::Aws(""),
                operations: &ops,
                encryption_context_subset: self.encryption_context_subset.as_ref(),
                encryption_context_equals: self.encryption_context_equals.as_ref(),
                source_arn: None,
            },
            &lower,
        )
    }

    /// Whether `child` is at least as strict as `self` (a grant-derived
    /// CreateGrant may only narrow).
    fn admits_child(&self, child: &GrantConstraints) -> bool {
        // A SourceArn constraint is kept as it is: the child is for the
        // same resource.
        if self
            .source_arn
            .as_ref()
            .is_some_and(|arn| child.source_arn.as_ref() != Some(arn))
        {
            return false;
        }
        if !self.has_encryption_context() {
            return true;
        }
        let lower = |m: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            m.iter()
                .map(|(k, v)| (k.to_lowercase(), v.clone()))
                .collect()
        };
        let contains = |big: &BTreeMap<String, String>, small: &BTreeMap<String, String>| {
            let big = lower(big);
            lower(small).iter().all(|(k, v)| big.get(k) == Some(v))
        };
        if let Some(eq) = &self.encryption_context_equals {
            // Only an identical Equals constraint is as strict.
            return child
                .encryption_context_equals
                .as_ref()
                .is_some_and(|c| lower(c) == lower(eq));
        }
        if let Some(sub) = &self.encryption_context_subset {
            return match (
                &child.encryption_context_equals,
                &child.encryption_context_subset,
            ) {
                (Some(eq), _) => contains(eq, sub),
                (None, Some(csub)) => contains(csub, sub),
                (None, None) => false,
            };
        }
        true
    }
}

/// Whom a grant names, as its grantee or retiring principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantPrincipal {
    /// An account (12 digits or its root ARN), or an IAM / STS principal
    /// ARN (`GranteePrincipal`, `RetiringPrincipal`).
    Aws(String),
    /// An AWS service principal, `dynamodb.amazonaws.com`
    /// (`GranteeServicePrincipal`, `RetiringServicePrincipal`).
    Service(String),
}

impl GrantPrincipal {
    /// The grantee as the grant rule reads it.
    fn view(&self) -> GranteeView<'_> {
        match self {
            GrantPrincipal::Aws(p) => GranteeView::Aws(p),
            GrantPrincipal::Service(s) => GranteeView::Service(s),
        }
    }

    fn aws(&self) -> Option<&str> {
        match self {
            GrantPrincipal::Aws(p) => Some(p),
            GrantPrincipal::Service(_) => None,
        }
    }

    fn service(&self) -> Option<&str> {
        match self {
            GrantPrincipal::Service(p) => Some(p),
            GrantPrincipal::Aws(_) => None,
        }
    }

    /// How messages and reports name it.
    pub fn describe(&self) -> String {
        match self {
            GrantPrincipal::Aws(p) => p.clone(),
            GrantPrincipal::Service(p) => format!("the service principal {p}"),
        }
    }
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredGrant", into = "StoredGrant")]
pub struct GrantRecord {
    /// The key the grant is on.
    pub key: KeyAddr,
    /// The grant id, unique per key.
    pub grant_id: String,
    /// The name given at CreateGrant, if any (CreateGrant with the same name is idempotent).
    pub name: Option<String>,
    /// Who the grant allows.
    pub grantee: GrantPrincipal,
    /// The `RetiringPrincipal`, if any: who may retire the grant.
    pub retiring: Option<GrantPrincipal>,
    /// The operations the grant allows, by name.
    pub operations: Vec<String>,
    /// The conditions the request must meet.
    pub constraints: GrantConstraints,
    /// The account of the principal that created the grant.
    pub issuing_account: AccountId,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A grant as the store holds it. Grants stored before service principals
/// existed have `grantee` and `retiring` only and read unchanged; a grant
/// to a service principal has `grantee_service` instead of `grantee`
/// (so a server older than this one refuses to load it rather than
/// misreading it), and `retiring_service` in place of `retiring`.
#[derive(Serialize, Deserialize)]
struct StoredGrant {
    key: KeyAddr,
    grant_id: String,
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grantee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grantee_service: Option<String>,
    retiring: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retiring_service: Option<String>,
    operations: Vec<String>,
    constraints: GrantConstraints,
    issuing_account: AccountId,
    created_ms: i64,
}

impl TryFrom<StoredGrant> for GrantRecord {
    type Error = String;

    fn try_from(g: StoredGrant) -> Result<Self, String> {
        let grantee = match (g.grantee, g.grantee_service) {
            (Some(p), None) => GrantPrincipal::Aws(p),
            (None, Some(s)) => GrantPrincipal::Service(s),
            _ => return Err("a grant names exactly one grantee".into()),
        };
        let retiring = match (g.retiring, g.retiring_service) {
            (None, None) => None,
            (Some(p), None) => Some(GrantPrincipal::Aws(p)),
            (None, Some(s)) => Some(GrantPrincipal::Service(s)),
            (Some(_), Some(_)) => return Err("a grant names at most one retiring principal".into()),
        };
        Ok(GrantRecord {
            key: g.key,
            grant_id: g.grant_id,
            name: g.name,
            grantee,
            retiring,
            operations: g.operations,
            constraints: g.constraints,
            issuing_account: g.issuing_account,
            created_ms: g.created_ms,
        })
    }
}

impl From<GrantRecord> for StoredGrant {
    fn from(g: GrantRecord) -> Self {
        let (grantee, grantee_service) = match g.grantee {
            GrantPrincipal::Aws(p) => (Some(p), None),
            GrantPrincipal::Service(s) => (None, Some(s)),
        };
        let (retiring, retiring_service) = match g.retiring {
            None => (None, None),
            Some(GrantPrincipal::Aws(p)) => (Some(p), None),
            Some(GrantPrincipal::Service(s)) => (None, Some(s)),
        };
        StoredGrant {
            key: g.key,
            grant_id: g.grant_id,
            name: g.name,
            grantee,
            grantee_service,
            retiring,
            retiring_service,
            operations: g.operations,
            constraints: g.constraints,
            issuing_account: g.issuing_account,
            created_ms: g.created_ms,
        }
    }
}

impl GrantRecord {
    /// The grant as the rule (`ferrokms_authz::grants`) reads it.
    pub fn view(&self) -> GrantView<'_> {
        GrantView {
            grantee: self.grantee.view(),
            operations: &self.operations,
            encryption_context_subset: self.constraints.encryption_context_subset.as_ref(),
            encryption_context_equals: self.constraints.encryption_context_equals.as_ref(),
            source_arn: self.constraints.source_arn.as_deref(),
        }
    }
}

/// See [`Kms::grant_token_report`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantTokenReport {
    /// Whether the token is one this server issued and its grant still exists.
    pub valid: bool,
    /// The grant the token names.
    pub grant_id: Option<String>,
    /// The ARN of the grant's key.
    pub key_arn: Option<String>,
    /// The grantee, described for people.
    pub grantee: Option<String>,
    /// The operations the grant allows.
    pub operations: Vec<String>,
    /// Whether the grant would allow the request (for an account grantee:
    /// provided the caller's identity policy allows too).
    pub applies: bool,
    /// Why it does not apply, or the condition under which it does.
    pub reasons: Vec<String>,
}

/// The caller as the grant rule matches a grantee against it: its ARN,
/// account and partition, the role of its session (as the edge's profile
/// has it), and the AWS service principal making the call itself (only a
/// trusted principal's signed `x-ferrokms-service-principal` header makes
/// one: no user or role of any account is ever a service principal).
fn grant_caller(caller: &Caller) -> GrantCaller<'_> {
    let role_arn = match caller
        .profile
        .principal
        .as_ref()
        .map(ferrokms_policy::RequestPrincipal::kind)
    {
        Some(ferrokms_policy::PrincipalKind::AssumedRole { role_arn, .. }) => {
            Some(role_arn.as_str())
        }
        _ => None,
    };
    GrantCaller {
        arn: &caller.arn,
        account: Some(&caller.account),
        partition: caller.region.partition(),
        role_arn,
        service: caller_service(caller).map(|c| c.principal.as_str()),
    }
}

/// Which grants a decision may fall back on where the policies implicitly
/// deny.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GrantUse<'a> {
    /// Any grant for the action that applies to the caller.
    Any,
    /// CreateGrant of a child grant: only a grant that allows CreateGrant to
    /// the caller and holds every operation of the child, with constraints
    /// that the child's are at least as strict as.
    Child {
        operations: &'a [String],
        constraints: &'a GrantConstraints,
    },
}

/// The AWS service principal a request is made by, if any.
fn caller_service(caller: &Caller) -> Option<&ferrokms_authz::ServiceCall> {
    caller.context.service_call()
}

/// The resource a request is made for (`aws:SourceArn`), if any.
fn caller_source_arn(caller: &Caller) -> Option<&str> {
    caller_service(caller)?.source_arn.as_deref()
}

/// An AWS service principal as the service model spells one
/// (`ServicePrincipalType`: at least three dot-separated labels of
/// letters, digits and `-`, at most 128 characters), `s3.amazonaws.com`.
pub fn is_service_principal(p: &str) -> bool {
    let labels: Vec<&str> = p.split('.').collect();
    (1..=128).contains(&p.len())
        && labels.len() >= 3
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// A `SourceArn` as the service model spells one
/// (`GrantConstraintSourceArnType`): an ARN with a 12-digit account and a
/// resource, 20 to 512 characters.
pub fn is_source_arn(arn: &str) -> bool {
    (20..=512).contains(&arn.len())
        && ferrokms_types::Arn::parse(arn)
            .is_ok_and(|a| a.partition().starts_with("aws") && a.account_id().is_some())
}

/// Grantee and retiring principals: an account, or an IAM / STS principal
/// ARN (user, role, assumed-role session, federated user, account root).
fn is_principal_id(p: &str) -> bool {
    if AccountId::parse(p).is_ok() {
        return true;
    }
    let Ok(arn) = ferrokms_types::Arn::parse(p) else {
        return false;
    };
    arn.account_id().is_some()
        && match arn.service() {
            "iam" => {
                arn.resource() == "root"
                    || arn.resource().starts_with("user/")
                    || arn.resource().starts_with("role/")
            }
            "sts" => {
                arn.resource().starts_with("assumed-role/")
                    || arn.resource().starts_with("federated-user/")
            }
            _ => false,
        }
}

/// Whether a principal (a 12-digit account id or an IAM / STS principal
/// ARN) belongs to the caller's account, in the caller's partition.
fn principal_in_account(p: &str, caller: &Caller) -> bool {
    if let Ok(account) = AccountId::parse(p) {
        return account == caller.account;
    }
    is_principal_id(p)
        && ferrokms_types::Arn::parse(p).is_ok_and(|arn| {
            arn.partition() == caller.region.partition() && arn.account() == caller.account.as_str()
        })
}

/// The grant operation an authorization action corresponds to.
fn grant_operation(action: &str) -> &str {
    action
}

/// Which grant operations a key can take (AWS, "Grant operations").
fn operation_valid_for(op: &str, r: &KeyRecord) -> bool {
    let symmetric = r.key_spec == KeySpec::SymmetricDefault;
    match op {
        "Decrypt" | "Encrypt" | "ReEncryptFrom" | "ReEncryptTo" => {
            r.key_usage == KeyUsage::EncryptDecrypt
        }
        "GenerateDataKey"
        | "GenerateDataKeyWithoutPlaintext"
        | "GenerateDataKeyPair"
        | "GenerateDataKeyPairWithoutPlaintext" => symmetric,
        "Sign" | "Verify" => r.key_usage == KeyUsage::SignVerify,
        "GenerateMac" | "VerifyMac" => r.key_usage == KeyUsage::GenerateVerifyMac,
        "DeriveSharedSecret" => r.key_usage == KeyUsage::KeyAgreement,
        "Encapsulate" | "Decapsulate" => r.key_usage == KeyUsage::EncapsulateDecapsulate,
        "GetPublicKey" => !symmetric && r.key_usage != KeyUsage::GenerateVerifyMac,
        "DescribeKey" | "CreateGrant" | "RetireGrant" => true,
        _ => false,
    }
}

fn encode_token(g: &GrantRecord) -> Result<String, KmsError> {
    let nonce = hex::encode(&*random_bytes(16)?);
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        B64URL.encode(format!("{}|{}|{nonce}", g.key.storage_id(), g.grant_id))
    ))
}

/// The key and grant id a token names, if it is one of ours.
fn decode_token(token: &str) -> Option<(String, String)> {
    let body = token.strip_prefix(TOKEN_PREFIX)?;
    let text = String::from_utf8(B64URL.decode(body).ok()?).ok()?;
    let mut parts = text.split('|');
    let key = parts.next()?.to_string();
    let grant = parts.next()?.to_string();
    parts.next()?;
    Some((key, grant))
}

fn entry(g: &GrantRecord) -> GrantListEntry {
    GrantListEntry {
        key_id: g.key.arn(),
        grant_id: g.grant_id.clone(),
        name: g.name.clone(),
        creation_date: crate::model::ms_to_epoch_seconds(g.created_ms),
        grantee_principal: g.grantee.aws().map(str::to_string),
        retiring_principal: g
            .retiring
            .as_ref()
            .and_then(|r| r.aws())
            .map(str::to_string),
        issuing_account: format!(
            "arn:{}:iam::{}:root",
            g.key.region.partition(),
            g.issuing_account
        ),
        operations: g.operations.clone(),
        constraints: (!g.constraints.is_empty()).then(|| g.constraints.clone()),
        grantee_service_principal: g.grantee.service().map(str::to_string),
        retiring_service_principal: g
            .retiring
            .as_ref()
            .and_then(|r| r.service())
            .map(str::to_string),
    }
}

/// True only when an AWS service (a trusted principal setting kms:ViaService)
/// makes the call on the principal's behalf.
fn for_aws_resource(caller: &Caller) -> bool {
    caller.context.via_service().is_some()
}

/// CreateGrant's grantee and retiring principal: exactly one grantee
/// (`GranteePrincipal` or `GranteeServicePrincipal`), at most one retiring
/// principal (`RetiringPrincipal` or `RetiringServicePrincipal`), in the
/// words of the API reference (AWS's exact texts are not documented).
fn grant_principals(
    req: &CreateGrantRequest,
) -> Result<(GrantPrincipal, Option<GrantPrincipal>), KmsError> {
    let grantee = match (&req.grantee_principal, &req.grantee_service_principal) {
        (Some(p), None) => GrantPrincipal::Aws(p.clone()),
        (None, Some(s)) => GrantPrincipal::Service(s.clone()),
        (Some(_), Some(_)) => return Err(KmsError::Validation(
            "You must specify either GranteePrincipal or GranteeServicePrincipal, but not both."
                .into(),
        )),
        (None, None) => {
            return Err(KmsError::Validation(
                "You must specify either GranteePrincipal or GranteeServicePrincipal.".into(),
            ))
        }
    };
    let retiring = match (&req.retiring_principal, &req.retiring_service_principal) {
        (None, None) => None,
        (Some(p), None) => Some(GrantPrincipal::Aws(p.clone())),
        (None, Some(s)) => Some(GrantPrincipal::Service(s.clone())),
        (Some(_), Some(_)) => return Err(KmsError::Validation(
            "You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
                .into(),
        )),
    };
    Ok((grantee, retiring))
}

/// The filter "usable only by callers in a service principal" (ListGrants'
/// `GranteeServicePrincipal`, ListRetirableGrants'
/// `RetiringServicePrincipal`): the caller must be that service principal
/// itself. Anyone else, a user or role of any account included, is refused
/// rather than shown the grants of a service.
fn require_service_caller(caller: &Caller, action: &str, service: &str) -> Result<(), KmsError> {
    if caller_service(caller).is_some_and(|c| c.principal == service) {
        return Ok(());
    }
    Err(KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{action} for the service principal {service}: this filter is only usable by callers in that service principal",
        caller.arn
    )))
}

/// One page of ListGrants / ListRetirableGrants: the markers are positions
/// in the listing's order; 50 entries by default, at most 100.
fn grant_page(
    entries: impl Iterator<Item = GrantListEntry>,
    limit: Option<u32>,
    marker: Option<&str>,
) -> Result<ListGrantsResponse, KmsError> {
    let entries: Vec<(usize, GrantListEntry)> = entries.enumerate().collect();
    let (items, next) = page(entries, |(i, _)| format!("{i:08}"), limit, 50, 100, marker)?;
    Ok(ListGrantsResponse {
        grants: items.into_iter().map(|(_, e)| e).collect(),
        truncated: next.is_some(),
        next_marker: next,
    })
}

fn dry_run(flag: Option<bool>) -> Result<(), KmsError> {
    if flag == Some(true) {
        Err(KmsError::DryRunOperation(
            "The request would have succeeded, but the DryRun option is set.".into(),
        ))
    } else {
        Ok(())
    }
}

impl Kms {
    /// Whether a grant on the key allows `action` for the caller, where the
    /// policies implicitly denied. `side` is what the caller's identity-side
    /// policies said of the action (see `ferrokms_authz::grants::admits`);
    /// the rule is `ferrokms_authz::grants::allows`.
    pub(crate) fn grant_allows(
        &self,
        caller: &Caller,
        record: &KeyRecord,
        action: &str,
        op_context: &Context,
        side: IdentitySide,
        usage: GrantUse<'_>,
    ) -> bool {
        let grants = match self.state.read().grants.get(&record.addr) {
            Some(g) => g.clone(),
            None => return false,
        };
        let op = grant_operation(action);
        let ec = rule::encryption_context(op_context);
        let source_arn = caller_source_arn(caller);
        let request = GrantRequest {
            caller: grant_caller(caller),
            operation: op,
            encryption_context: &ec,
            source_arn,
            identity_side: side,
        };
        grants.iter().any(|g| match usage {
            GrantUse::Child {
                operations,
                constraints,
            } => {
                rule::grantee_match(g.grantee.view(), &request.caller)
                    .is_some_and(|m| rule::admits(side, m))
                    && op == "CreateGrant"
                    && g.operations.iter().any(|o| o == op)
                    && operations.iter().all(|o| g.operations.contains(o))
                    && g.constraints.source_arn_holds(source_arn)
                    && g.constraints.admits_child(constraints)
            }
            GrantUse::Any => rule::allows(&g.view(), &request),
        })
    }

    /// Checks the grant tokens a request carries: each must name a grant
    /// this server issued (a retired grant's token is no longer valid).
    pub fn validate_grant_tokens(&self, tokens: &[String]) -> Result<(), KmsError> {
        for t in tokens {
            let valid = decode_token(t).is_some_and(|(_, id)| self.find_grant(&id).is_some());
            if !valid {
                return Err(KmsError::InvalidGrantToken(
                    "The grant token is not valid.".into(),
                ));
            }
        }
        Ok(())
    }

    /// What a grant token means for a request (for `ferrokms policy
    /// simulate --grant-token`): which grant it names and whether that grant
    /// would allow `action` by `caller` on the key `key_arn` with `context`,
    /// and if not, why. The rule is [`Kms::grant_allows`]'s own
    /// (`ferrokms_authz::grants`).
    pub fn grant_token_report(
        &self,
        token: &str,
        caller: &Caller,
        key_arn: &str,
        action: &str,
        context: &Context,
    ) -> GrantTokenReport {
        let grant = decode_token(token).and_then(|(_, id)| self.find_grant(&id));
        let Some(g) = grant else {
            return GrantTokenReport {
                valid: false,
                grant_id: None,
                key_arn: None,
                grantee: None,
                operations: Vec::new(),
                applies: false,
                reasons: vec![
                    "The grant token is not valid (InvalidGrantTokenException): \
                    it does not name a grant of this server, or the grant was retired or revoked."
                        .into(),
                ],
            };
        };
        let action = action.strip_prefix("kms:").unwrap_or(action);
        let mut reasons = Vec::new();
        let grant_key = g.key.arn();
        if grant_key != key_arn {
            reasons.push(format!("the grant is for key {grant_key}, not {key_arn}"));
        }
        let who = grant_caller(caller);
        match rule::grantee_match(g.grantee.view(), &who) {
            None => reasons.push(match &g.grantee {
                GrantPrincipal::Aws(p) => {
                    format!(
                        "the grantee is {p}, not {} (nor its role or account)",
                        caller.arn
                    )
                }
                GrantPrincipal::Service(p) => format!(
                    "the grantee is the AWS service principal {p}: only a call that service \
                     principal makes itself can use the grant"
                ),
            }),
            Some(GranteeMatch::Account) => reasons.push(format!(
                "the grantee is the account {}: the grant applies only where the caller's own \
                 identity-based policy also allows kms:{action} (and its permissions boundary \
                 and session policy, if any)",
                g.grantee.describe()
            )),
            Some(GranteeMatch::Role) => reasons.push(format!(
                "the grantee is the role {}: the grant applies only where the session's \
                 permissions boundary and session policy, if any, also allow kms:{action}",
                g.grantee.describe()
            )),
            Some(GranteeMatch::Direct | GranteeMatch::Service) => {}
        }
        let op = grant_operation(action);
        let source_arn = caller_source_arn(caller);
        match rule::operation_miss(
            &g.view(),
            op,
            &rule::encryption_context(context),
            source_arn,
        ) {
            Some(OperationMiss::NotListed) => reasons.push(format!(
                "the grant allows {}, not {op}",
                g.operations.join(", ")
            )),
            Some(OperationMiss::Constraints) => reasons.push(
                "the request's encryption context does not meet the grant's constraints \
                 (give it with --context kms:EncryptionContext:KEY=VALUE)"
                    .into(),
            ),
            Some(OperationMiss::SourceArn) => reasons.push(format!(
                "the grant applies only to requests made for {} (aws:SourceArn), and this one is {}",
                g.constraints.source_arn.as_deref().unwrap_or_default(),
                source_arn.map_or("made for no resource".to_string(), |a| format!("made for {a}"))
            )),
            None => {}
        }
        // An account or role grantee is conditional, not refused: it is
        // listed as a reason but the grant can still apply.
        let applies = reasons.is_empty()
            || (reasons.len() == 1
                && matches!(
                    rule::grantee_match(g.grantee.view(), &who),
                    Some(GranteeMatch::Account | GranteeMatch::Role)
                ));
        GrantTokenReport {
            valid: true,
            grant_id: Some(g.grant_id.clone()),
            key_arn: Some(grant_key),
            grantee: Some(g.grantee.describe()),
            operations: g.operations.clone(),
            applies,
            reasons,
        }
    }

    fn find_grant(&self, grant_id: &str) -> Option<Arc<GrantRecord>> {
        self.state
            .read()
            .grants
            .values()
            .flat_map(|v| v.iter())
            .find(|g| g.grant_id == grant_id)
            .cloned()
    }

    /// CreateGrant
    pub fn create_grant(
        &self,
        caller: &Caller,
        req: CreateGrantRequest,
    ) -> Result<CreateGrantResponse, KmsError> {
        if let Some(t) = &req.grant_tokens {
            self.validate_grant_tokens(t)?;
        }
        if req.operations.is_empty() {
            return Err(KmsError::validation(
                None,
                "operations",
                "Member must have length greater than or equal to 1",
            ));
        }
        let (grantee, retiring) = grant_principals(&req)?;
        let constraints = req
            .constraints
            .clone()
            .map(GrantConstraints::without_empty_maps)
            .unwrap_or_default();
        if matches!(grantee, GrantPrincipal::Service(_)) {
            if constraints.source_arn.is_none() {
                return Err(KmsError::Validation(
                    "When you specify a GranteeServicePrincipal, you must also specify a SourceArn grant constraint.".into(),
                ));
            }
            if retiring.is_none() {
                return Err(KmsError::Validation(
                    "When you specify a GranteeServicePrincipal, you must also specify either a RetiringPrincipal or a RetiringServicePrincipal.".into(),
                ));
            }
        }
        for (m, member) in [
            (
                &constraints.encryption_context_equals,
                "constraints.encryptionContextEquals",
            ),
            (
                &constraints.encryption_context_subset,
                "constraints.encryptionContextSubset",
            ),
        ] {
            let Some(m) = m else { continue };
            if m.len() > MAX_CONSTRAINT_PAIRS || m.values().any(|v| v.len() > MAX_CONSTRAINT_VALUE)
            {
                return Err(KmsError::Validation(format!(
                    "A grant constraint may hold at most {MAX_CONSTRAINT_PAIRS} pairs of at most {MAX_CONSTRAINT_VALUE} characters each."
                )));
            }
            // The keys too: a constraint is an encryption context, with its size bound.
            crate::ops::check_encryption_context(m.iter(), member)?;
        }
        let mut cond = Context::new();
        cond.insert_multi(
            "kms:GrantOperations",
            req.operations
                .iter()
                .map(|o| ContextValue::String(o.clone()))
                .collect(),
        );
        match &grantee {
            GrantPrincipal::Aws(p) => cond.insert("kms:GranteePrincipal", p.as_str()),
            GrantPrincipal::Service(p) => cond.insert("kms:GranteeServicePrincipal", p.as_str()),
        }
        match &retiring {
            Some(GrantPrincipal::Aws(p)) => cond.insert("kms:RetiringPrincipal", p.as_str()),
            Some(GrantPrincipal::Service(p)) => {
                cond.insert("kms:RetiringServicePrincipal", p.as_str());
            }
            None => {}
        }
        // One value per constraint the grant has (a grant may combine an
        // encryption-context constraint with SourceArn).
        let mut types = Vec::new();
        if constraints.encryption_context_equals.is_some() {
            types.push(ContextValue::String("EncryptionContextEquals".into()));
        } else if constraints.encryption_context_subset.is_some() {
            types.push(ContextValue::String("EncryptionContextSubset".into()));
        }
        if let Some(arn) = &constraints.source_arn {
            types.push(ContextValue::String("SourceArn".into()));
            cond.insert("kms:GrantConstraintSourceArn", arn.as_str());
        }
        if !types.is_empty() {
            cond.insert_multi("kms:GrantConstraintType", types);
        }
        cond.insert("kms:GrantIsForAWSResource", for_aws_resource(caller));
        let ec: BTreeMap<String, String> = constraints
            .encryption_context_equals
            .clone()
            .or_else(|| constraints.encryption_context_subset.clone())
            .unwrap_or_default();
        for (k, v) in &ec {
            cond.insert(&format!("kms:EncryptionContext:{k}"), v.as_str());
        }
        let key = self.lookup(&KeyRef::parse(
            &req.key_id,
            &caller.account,
            &caller.region,
            Accepts::KeyOnly,
        )?)?;
        // Policies, or a grant of the caller's that this one narrows.
        self.authorize_key_with(
            caller,
            &key,
            "CreateGrant",
            cond,
            GrantUse::Child {
                operations: &req.operations,
                constraints: &constraints,
            },
        )?;
        let r = &key.record;
        self.require_usable(r)?;
        if let Some(bad) = req.operations.iter().find(|o| !operation_valid_for(o, r)) {
            return Err(KmsError::Validation(format!(
                "Grant operation {bad} is not valid for {} with key spec {} and key usage {}.",
                r.arn(),
                r.key_spec,
                r.key_usage
            )));
        }
        // SourceArn is valid on every key (AWS: "supported on grants for
        // all types of KMS keys"); an encryption context only on symmetric
        // encryption keys.
        if constraints.has_encryption_context() && r.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::Validation(
                "Grant constraints are only valid for symmetric encryption KMS keys.".into(),
            ));
        }
        for p in std::iter::once(&grantee).chain(retiring.as_ref()) {
            let valid = match p {
                GrantPrincipal::Aws(p) => is_principal_id(p),
                GrantPrincipal::Service(p) => is_service_principal(p),
            };
            if !valid {
                return Err(KmsError::Validation(format!(
                    "{} is not a valid principal for a grant.",
                    p.describe()
                )));
            }
        }
        if let Some(arn) = constraints
            .source_arn
            .as_deref()
            .filter(|a| !is_source_arn(a))
        {
            return Err(KmsError::validation(
                Some(arn),
                "constraints.sourceArn",
                "Member must satisfy regular expression pattern: ^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$",
            ));
        }
        dry_run(req.dry_run)?;
        let w = self.writer.lock();
        self.current_key(&w, &r.addr)?;
        let existing = self
            .state
            .read()
            .grants
            .get(&r.addr)
            .cloned()
            .unwrap_or_default();
        if let Some(name) = &req.name {
            let same = existing.iter().find(|g| {
                g.name.as_deref() == Some(name)
                    && g.grantee == grantee
                    && g.retiring == retiring
                    && g.operations == req.operations
                    && g.constraints == constraints
            });
            if let Some(g) = same {
                return Ok(CreateGrantResponse {
                    grant_token: encode_token(g)?,
                    grant_id: g.grant_id.clone(),
                });
            }
        }
        if existing.len() >= MAX_GRANTS_PER_KEY {
            return Err(KmsError::LimitExceeded(format!(
                "A KMS key can have at most {MAX_GRANTS_PER_KEY} grants."
            )));
        }
        let grant = GrantRecord {
            key: r.addr.clone(),
            grant_id: hex::encode(&*random_bytes(32)?),
            name: req.name.clone(),
            grantee,
            retiring,
            operations: req.operations.clone(),
            constraints,
            issuing_account: caller.account.clone(),
            created_ms: self.clock.now_ms(),
        };
        self.store.apply(&[Change::Put {
            kind: KIND_GRANT,
            id: grant.grant_id.clone(),
            body: serde_json::to_vec(&grant).map_err(|e| KmsError::Internal(e.to_string()))?,
        }])?;
        let token = encode_token(&grant)?;
        let id = grant.grant_id.clone();
        self.state
            .write()
            .grants
            .entry(grant.key.clone())
            .or_default()
            .push(Arc::new(grant));
        Ok(CreateGrantResponse {
            grant_token: token,
            grant_id: id,
        })
    }

    /// ListGrants
    pub fn list_grants(
        &self,
        caller: &Caller,
        req: ListGrantsRequest,
    ) -> Result<ListGrantsResponse, KmsError> {
        let mut cond = Context::new();
        cond.insert("kms:GrantIsForAWSResource", for_aws_resource(caller));
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOnly, "ListGrants", cond)?;
        let grantee = match (&req.grantee_principal, &req.grantee_service_principal) {
            (Some(_), Some(_)) => return Err(KmsError::Validation(
                "You can specify either GranteePrincipal or GranteeServicePrincipal, but not both."
                    .into(),
            )),
            (Some(p), None) => Some(GrantPrincipal::Aws(p.clone())),
            (None, Some(s)) => {
                require_service_caller(caller, "ListGrants", s)?;
                Some(GrantPrincipal::Service(s.clone()))
            }
            (None, None) => None,
        };
        let grants = self
            .state
            .read()
            .grants
            .get(&key.record.addr)
            .cloned()
            .unwrap_or_default();
        if let Some(id) = &req.grant_id {
            if !grants.iter().any(|g| &g.grant_id == id) {
                return Err(KmsError::InvalidGrantId(format!(
                    "Grant ID {id} is not valid."
                )));
            }
        }
        let entries = grants
            .iter()
            .filter(|g| req.grant_id.as_ref().is_none_or(|id| &g.grant_id == id))
            .filter(|g| grantee.as_ref().is_none_or(|p| &g.grantee == p))
            .map(|g| entry(g));
        grant_page(entries, req.limit, req.marker.as_deref())
    }

    /// ListRetirableGrants: identity policy only; grants on any key whose
    /// retiring principal is the one named, which must be a principal of the
    /// caller's own account (AWS: "You must specify a principal in your AWS
    /// account"): another account's grants, and the encryption contexts of
    /// their constraints, are not the caller's to see.
    pub fn list_retirable_grants(
        &self,
        caller: &Caller,
        req: ListRetirableGrantsRequest,
    ) -> Result<ListGrantsResponse, KmsError> {
        let retiring = match (&req.retiring_principal, &req.retiring_service_principal) {
            (Some(p), None) => GrantPrincipal::Aws(p.clone()),
            (None, Some(s)) => GrantPrincipal::Service(s.clone()),
            _ => {
                return Err(KmsError::Validation(
                    "You must specify either RetiringPrincipal or RetiringServicePrincipal, but not both."
                        .into(),
                ))
            }
        };
        self.authorize_identity_only(caller, "ListRetirableGrants", "*", Context::new())?;
        match &retiring {
            GrantPrincipal::Aws(p) if !principal_in_account(p, caller) => {
                // IAM's answer when the resource (here the retiring
                // principal) is in another account and no resource-based
                // policy admits the caller: there is no such policy for a
                // principal.
                return Err(KmsError::AccessDenied(format!(
                    "User: {} is not authorized to perform: kms:ListRetirableGrants on resource: {p} because no resource-based policy allows the kms:ListRetirableGrants action",
                    caller.arn
                )));
            }
            GrantPrincipal::Aws(_) => {}
            GrantPrincipal::Service(s) => require_service_caller(caller, "ListRetirableGrants", s)?,
        }
        let mut all: Vec<GrantRecord> = self
            .state
            .read()
            .grants
            .values()
            .flat_map(|v| v.iter())
            .filter(|g| g.retiring.as_ref() == Some(&retiring))
            .map(|g| (**g).clone())
            .collect();
        all.sort_by(|a, b| {
            a.created_ms
                .cmp(&b.created_ms)
                .then(a.grant_id.cmp(&b.grant_id))
        });
        grant_page(all.iter().map(entry), req.limit, req.marker.as_deref())
    }

    /// RetireGrant: by token, or by key ARN and grant id. Allowed for the
    /// retiring principal, the grantee when the grant includes RetireGrant,
    /// and the issuing account (its root, or its principals whose IAM
    /// policies allow kms:RetireGrant). Key policies have no say.
    pub fn retire_grant(
        &self,
        caller: &Caller,
        req: RetireGrantRequest,
    ) -> Result<Empty, KmsError> {
        let grant = match (&req.grant_token, &req.key_id, &req.grant_id) {
            (Some(t), _, _) => {
                let (_, id) = decode_token(t).ok_or_else(|| {
                    KmsError::InvalidGrantToken("The grant token is not valid.".into())
                })?;
                self.find_grant(&id).ok_or_else(|| {
                    KmsError::InvalidGrantToken("The grant token is not valid.".into())
                })?
            }
            (None, Some(k), Some(id)) => {
                let key_ref = KeyRef::parse(k, &caller.account, &caller.region, Accepts::KeyOnly)?;
                let key = self.lookup(&key_ref)?;
                self.find_grant(id)
                    .filter(|g| g.key == key.record.addr)
                    .ok_or_else(|| KmsError::NotFound(format!("Grant ID {id} not found")))?
            }
            _ => {
                return Err(KmsError::Validation(
                    "Either GrantToken, or both KeyId and GrantId, must be specified.".into(),
                ))
            }
        };
        // One identity-side decision on kms:RetireGrant: the issuing
        // account's own permission, and the caps (boundary, session
        // policies) on what a grant naming the caller's role or account is
        // worth, as for any other grant operation
        // (ferrokms_authz::grants::admits).
        let key_arn = grant.key.arn();
        let verdict = self.identity_decision(caller, "RetireGrant", &key_arn, Context::new())?;
        // An explicit deny of kms:RetireGrant in the caller's policies wins
        // over every way of being allowed to retire.
        if matches!(verdict.decision, Decision::ExplicitDeny { .. }) {
            let (record, outcome) = verdict.conclude(None);
            caller.record(record);
            return Err(KmsError::AccessDenied(outcome.err().unwrap_or_default()));
        }
        let side = verdict.identity_side;
        let who = grant_caller(caller);
        let by_retiring = grant
            .retiring
            .as_ref()
            .and_then(|r| rule::grantee_match(r.view(), &who))
            .is_some_and(|m| rule::admits(side, m));
        // The grantee retires only through a grant that allows RetireGrant,
        // and only as itself or its role (a grant to an account is not a
        // grantee's right to retire).
        let by_grantee = grant.operations.iter().any(|o| o == "RetireGrant")
            && rule::grantee_match(grant.grantee.view(), &who)
                .is_some_and(|m| m != GranteeMatch::Account && rule::admits(side, m));
        let by_issuer = caller.account == grant.issuing_account && verdict.is_allowed();
        if !(by_retiring || by_grantee || by_issuer) {
            // Neither the grant nor the issuing account's policies let the
            // caller retire it (an identity policy of another account that
            // allows kms:RetireGrant on the key counts for nothing).
            let reason = "because no identity-based policy allows the kms:RetireGrant action";
            caller.record(crate::authz::AuthzRecord {
                action: "kms:RetireGrant".into(),
                resource: key_arn.clone(),
                allowed: false,
                reason: ferrokms_authz::Reason::NoAllow(ferrokms_authz::PolicySide::Identity),
                decision: reason.into(),
                statements: verdict.statements,
            });
            return Err(KmsError::AccessDenied(format!(
                "User: {} is not authorized to perform: kms:RetireGrant on resource: {key_arn} {reason}",
                caller.arn,
            )));
        }
        let (record, _) = verdict.conclude(if by_issuer {
            None
        } else if by_retiring {
            Some("allow (retiring principal of the grant)")
        } else {
            Some("allow (grantee of the grant)")
        });
        caller.record(record);
        dry_run(req.dry_run)?;
        self.delete_grant(&grant)
    }

    /// RevokeGrant: authorized by kms:RevokeGrant on the key.
    pub fn revoke_grant(
        &self,
        caller: &Caller,
        req: RevokeGrantRequest,
    ) -> Result<Empty, KmsError> {
        let mut cond = Context::new();
        cond.insert("kms:GrantIsForAWSResource", for_aws_resource(caller));
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOnly, "RevokeGrant", cond)?;
        let grant = self
            .find_grant(&req.grant_id)
            .filter(|g| g.key == key.record.addr)
            .ok_or_else(|| KmsError::NotFound(format!("Grant ID {} not found", req.grant_id)))?;
        dry_run(req.dry_run)?;
        self.delete_grant(&grant)
    }

    fn delete_grant(&self, grant: &GrantRecord) -> Result<Empty, KmsError> {
        let _w = self.writer.lock();
        self.store.apply(&[Change::Delete {
            kind: KIND_GRANT,
            id: grant.grant_id.clone(),
        }])?;
        if let Some(v) = self.state.write().grants.get_mut(&grant.key) {
            v.retain(|g| g.grant_id != grant.grant_id);
        }
        Ok(Empty {})
    }
}

#[cfg(test)]
mod tests;
