//! KMS's grant rule: whether one grant allows one request, where the
//! policies implicitly denied. One pure function ([`allows`]) over two small
//! views, so that the server (`crates/kms/src/grants`, over its stored
//! grants and the request's [`crate::Caller`]) and the whole-space analysis
//! (`crates/reach`, over its model of a key's grants and its representative
//! callers) decide grants by the same code.
//!
//! The rule, as AWS documents it for grants and as ferrokms applies it:
//!
//! * the grantee names the caller: its own ARN (user, session, federated
//!   user, the account's root user), the role of its session, its account
//!   (12 digits or the root ARN, in the caller's partition), or, for a
//!   grant to a service principal, the service principal making the call
//!   itself ([`grantee_match`]);
//! * the caller's own identity-side policies cap a grant as they cap a
//!   key-policy statement naming the grantee ([`admits`]);
//! * the grant lists the operation; its encryption-context constraints
//!   (`EncryptionContextSubset`, `EncryptionContextEquals`: keys compared
//!   case-insensitively, values case-sensitively) hold unless the
//!   operation takes no context (DescribeKey, RetireGrant, CreateGrant);
//!   its `SourceArn` constraint holds for the request's `aws:SourceArn` on
//!   every operation but RetireGrant ([`operation_miss`]).

use std::collections::BTreeMap;

use ferrokms_policy::Context;
use ferrokms_types::AccountId;

use crate::IdentitySide;

/// Whom a grant names as its grantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GranteeView<'a> {
    /// An account (12 digits or its root ARN) or an IAM / STS principal ARN.
    Aws(&'a str),
    /// An AWS service principal (`dynamodb.amazonaws.com`).
    Service(&'a str),
}

/// One grant, as the rule reads it.
#[derive(Debug, Clone, Copy)]
pub struct GrantView<'a> {
    /// The grantee.
    pub grantee: GranteeView<'a>,
    /// The operations the grant allows, by name (`Decrypt`, no `kms:`).
    pub operations: &'a [String],
    /// `EncryptionContextSubset`: the request's context must contain these pairs.
    pub encryption_context_subset: Option<&'a BTreeMap<String, String>>,
    /// `EncryptionContextEquals`: the request's context must be exactly these pairs.
    pub encryption_context_equals: Option<&'a BTreeMap<String, String>>,
    /// `SourceArn`: the request's `aws:SourceArn` must be this ARN.
    pub source_arn: Option<&'a str>,
}

/// The caller, as a grantee is matched against it.
#[derive(Debug, Clone, Copy)]
pub struct GrantCaller<'a> {
    /// The caller's ARN (a session ARN for a role session, the root ARN
    /// for the root user).
    pub arn: &'a str,
    /// The caller's account; `None` for a caller that is no principal of
    /// an account (a service principal as the analysis models one).
    pub account: Option<&'a AccountId>,
    /// The partition of the caller's account (`aws`).
    pub partition: &'a str,
    /// The role of a role session (with its path when known).
    pub role_arn: Option<&'a str>,
    /// The AWS service principal making the call itself, if any (what a
    /// grant to a service principal applies to).
    pub service: Option<&'a str>,
}

/// One request, as the grant rule reads it.
#[derive(Debug, Clone, Copy)]
pub struct GrantRequest<'a> {
    /// Who asks.
    pub caller: GrantCaller<'a>,
    /// The operation, by name (`Decrypt`, no `kms:`).
    pub operation: &'a str,
    /// The request's encryption context, keys lowercased
    /// ([`encryption_context`]).
    pub encryption_context: &'a BTreeMap<String, String>,
    /// The resource the request is made for (`aws:SourceArn`), if any.
    pub source_arn: Option<&'a str>,
    /// What the caller's own identity-side policies said of the action.
    pub identity_side: IdentitySide,
}

/// How a grant names the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GranteeMatch {
    /// Its own ARN: user, session, federated user, root user.
    Direct,
    /// The role of its session.
    Role,
    /// Its account (12 digits or the account's root ARN).
    Account,
    /// The AWS service principal making the call.
    Service,
}

/// Why a grant does not cover an operation ([`operation_miss`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationMiss {
    /// The grant does not list the operation.
    NotListed,
    /// The encryption context does not meet the grant's constraints.
    Constraints,
    /// The request is not made for the resource of the grant's `SourceArn`
    /// constraint.
    SourceArn,
}

/// Whether `arn` is `arn:PARTITION:iam::ACCOUNT:root`, compared piece by
/// piece (no string is built: this runs for every grant of a key on every
/// request the policies do not allow).
fn is_root_of(arn: &str, partition: &str, account: &AccountId) -> bool {
    arn.strip_prefix("arn:")
        .and_then(|r| r.strip_prefix(partition))
        .and_then(|r| r.strip_prefix(":iam::"))
        .and_then(|r| r.strip_prefix(account.as_str()))
        == Some(":root")
}

/// How `grantee` names `caller`, if it does. A grant to a service
/// principal applies only to a call that service principal makes itself:
/// no user or role of any account is ever a service principal.
pub fn grantee_match(grantee: GranteeView<'_>, caller: &GrantCaller<'_>) -> Option<GranteeMatch> {
    let grantee = match grantee {
        GranteeView::Aws(p) => p,
        GranteeView::Service(s) => {
            return (caller.service == Some(s)).then_some(GranteeMatch::Service)
        }
    };
    if grantee == caller.arn {
        return Some(GranteeMatch::Direct);
    }
    if caller.role_arn == Some(grantee) {
        return Some(GranteeMatch::Role);
    }
    let account = caller.account?;
    (grantee == account.as_str() || is_root_of(grantee, caller.partition, account))
        .then_some(GranteeMatch::Account)
}

/// Whether a grant naming the caller this way may apply, given what the
/// caller's own identity-side policies said. A grant is read like a
/// key-policy statement naming its grantee (IAM's rules for resource-based
/// policies): one naming the caller's own ARN is not capped by the
/// caller's policies; one naming the role of its session is capped by the
/// permissions boundary and session policies; one naming its account only
/// delegates to the caller's identity policies, so it needs identity
/// policies ∩ boundary ∩ session policies to allow. A service principal
/// has no identity-side policies: those of the principal trusted to stand
/// in for it do not cap it.
pub fn admits(side: IdentitySide, m: GranteeMatch) -> bool {
    match m {
        GranteeMatch::Direct | GranteeMatch::Service => true,
        GranteeMatch::Role => side.boundary && side.session,
        GranteeMatch::Account => side.identity && side.boundary && side.session,
    }
}

/// Whether the encryption-context constraints hold for `ec` (keys
/// lowercased): constraint keys compare case-insensitively, values
/// case-sensitively (AWS's rule).
pub fn constraints_hold(grant: &GrantView<'_>, ec: &BTreeMap<String, String>) -> bool {
    let has =
        |m: &BTreeMap<String, String>| m.iter().all(|(k, v)| ec.get(&k.to_lowercase()) == Some(v));
    if let Some(eq) = grant.encryption_context_equals {
        if eq.len() != ec.len() || !has(eq) {
            return false;
        }
    }
    grant.encryption_context_subset.is_none_or(has)
}

/// The grant's operation rule: the grant lists `op`, and its constraints
/// hold for the request's encryption context `ec` (keys lowercased) unless
/// the operation takes none (DescribeKey, RetireGrant, CreateGrant), and
/// its `SourceArn` constraint holds for the request's `aws:SourceArn`
/// (exact match; a request made for no resource never meets it) on every
/// operation but RetireGrant (AWS: "it does not apply to RetireGrant").
/// `None` when the grant covers it.
pub fn operation_miss(
    grant: &GrantView<'_>,
    op: &str,
    ec: &BTreeMap<String, String>,
    source_arn: Option<&str>,
) -> Option<OperationMiss> {
    if !grant.operations.iter().any(|o| o == op) {
        Some(OperationMiss::NotListed)
    } else if !matches!(op, "DescribeKey" | "RetireGrant" | "CreateGrant")
        && !constraints_hold(grant, ec)
    {
        Some(OperationMiss::Constraints)
    } else if op != "RetireGrant" && !source_arn_holds(grant.source_arn, source_arn) {
        Some(OperationMiss::SourceArn)
    } else {
        None
    }
}

/// Whether a `SourceArn` constraint (`constraint`) holds for a request
/// made for `request_source`: exact match, and a request made for no
/// resource never meets one.
pub fn source_arn_holds(constraint: Option<&str>, request_source: Option<&str>) -> bool {
    constraint.is_none_or(|arn| request_source == Some(arn))
}

/// Whether `grant` allows `request`: it names the caller, the caller's
/// identity-side policies do not cap it, and it covers the operation.
/// Asked only where the policies implicitly denied and the action may
/// reach the key (an explicit deny always wins).
pub fn allows(grant: &GrantView<'_>, request: &GrantRequest<'_>) -> bool {
    grantee_match(grant.grantee, &request.caller).is_some_and(|m| admits(request.identity_side, m))
        && operation_miss(
            grant,
            request.operation,
            request.encryption_context,
            request.source_arn,
        )
        .is_none()
}

const EC_PREFIX: &str = "kms:encryptioncontext:";

/// The encryption context an operation carries, read back from its
/// condition keys (`kms:EncryptionContext:<k>`), keyed by lowercased keys
/// (grant constraints compare keys case-insensitively).
pub fn encryption_context(ctx: &Context) -> BTreeMap<String, String> {
    ctx.iter()
        .filter(|e| e.name.to_lowercase().starts_with(EC_PREFIX))
        .filter_map(|e| {
            let key = e.name.get(EC_PREFIX.len()..)?.to_lowercase();
            let v = e.values.as_slice().first()?.as_text().into_owned();
            Some((key, v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn view<'a>(
        grantee: GranteeView<'a>,
        ops: &'a [String],
        subset: Option<&'a BTreeMap<String, String>>,
        equals: Option<&'a BTreeMap<String, String>>,
    ) -> GrantView<'a> {
        GrantView {
            grantee,
            operations: ops,
            encryption_context_subset: subset,
            encryption_context_equals: equals,
            source_arn: None,
        }
    }

    #[test]
    fn constraint_keys_are_case_insensitive_and_values_case_sensitive() {
        let ops = vec!["Decrypt".to_string()];
        let sub = map(&[("Purpose", "backup")]);
        let g = view(GranteeView::Aws("1"), &ops, Some(&sub), None);
        assert!(constraints_hold(
            &g,
            &map(&[("purpose", "backup"), ("extra", "x")])
        ));
        assert!(!constraints_hold(&g, &map(&[("purpose", "Backup")])));
        assert!(!constraints_hold(&g, &map(&[])));
        let eq = map(&[("A", "1")]);
        let e = view(GranteeView::Aws("1"), &ops, None, Some(&eq));
        assert!(constraints_hold(&e, &map(&[("a", "1")])));
        assert!(!constraints_hold(&e, &map(&[("a", "1"), ("b", "2")])));
    }

    #[test]
    fn a_grant_is_capped_like_a_key_policy_statement_naming_its_grantee() {
        let side = |identity, boundary, session| IdentitySide {
            identity,
            boundary,
            session,
        };
        assert!(admits(side(false, false, false), GranteeMatch::Direct));
        assert!(admits(side(false, false, false), GranteeMatch::Service));
        assert!(admits(side(false, true, true), GranteeMatch::Role));
        assert!(!admits(side(true, false, true), GranteeMatch::Role));
        assert!(!admits(side(true, true, false), GranteeMatch::Role));
        assert!(admits(side(true, true, true), GranteeMatch::Account));
        assert!(!admits(side(false, true, true), GranteeMatch::Account));
        assert!(!admits(side(true, false, true), GranteeMatch::Account));
        assert!(!admits(side(true, true, false), GranteeMatch::Account));
    }

    #[test]
    fn grantees_match_the_caller_its_role_its_account_or_the_calling_service() {
        let acct = AccountId::parse("111122223333").unwrap();
        let session = GrantCaller {
            arn: "arn:aws:sts::111122223333:assumed-role/r/s",
            account: Some(&acct),
            partition: "aws",
            role_arn: Some("arn:aws:iam::111122223333:role/r"),
            service: None,
        };
        let m = |g| grantee_match(g, &session);
        assert_eq!(
            m(GranteeView::Aws(
                "arn:aws:sts::111122223333:assumed-role/r/s"
            )),
            Some(GranteeMatch::Direct)
        );
        assert_eq!(
            m(GranteeView::Aws("arn:aws:iam::111122223333:role/r")),
            Some(GranteeMatch::Role)
        );
        assert_eq!(
            m(GranteeView::Aws("111122223333")),
            Some(GranteeMatch::Account)
        );
        assert_eq!(
            m(GranteeView::Aws("arn:aws:iam::111122223333:root")),
            Some(GranteeMatch::Account)
        );
        for other in [
            "arn:aws-cn:iam::111122223333:root",
            "arn:aws:iam::111122223333:rootx",
            "arn:aws:iam::444455556666:root",
            "arn:aws:iam::111122223333:role/other",
        ] {
            assert_eq!(m(GranteeView::Aws(other)), None, "{other}");
        }
        assert_eq!(m(GranteeView::Service("s3.amazonaws.com")), None);
        let service = GrantCaller {
            service: Some("s3.amazonaws.com"),
            ..session
        };
        assert_eq!(
            grantee_match(GranteeView::Service("s3.amazonaws.com"), &service),
            Some(GranteeMatch::Service)
        );
    }

    #[test]
    fn the_operation_rule_skips_constraints_where_the_operation_takes_none() {
        let ops = vec!["Decrypt".to_string(), "RetireGrant".to_string()];
        let sub = map(&[("a", "1")]);
        let mut g = view(GranteeView::Aws("1"), &ops, Some(&sub), None);
        g.source_arn = Some("arn:aws:sqs:us-east-1:111122223333:q");
        let none = map(&[]);
        assert_eq!(
            operation_miss(&g, "Encrypt", &none, None),
            Some(OperationMiss::NotListed)
        );
        assert_eq!(
            operation_miss(&g, "Decrypt", &none, None),
            Some(OperationMiss::Constraints)
        );
        assert_eq!(
            operation_miss(&g, "Decrypt", &map(&[("a", "1")]), None),
            Some(OperationMiss::SourceArn)
        );
        assert_eq!(
            operation_miss(
                &g,
                "Decrypt",
                &map(&[("a", "1")]),
                Some("arn:aws:sqs:us-east-1:111122223333:q")
            ),
            None
        );
        assert_eq!(operation_miss(&g, "RetireGrant", &none, None), None);
        assert!(!source_arn_holds(Some("x"), Some("X")));
        assert!(source_arn_holds(None, None));
    }

    #[test]
    fn the_encryption_context_is_read_from_its_condition_keys_lowercased() {
        let mut ctx = Context::new();
        ctx.insert("kms:EncryptionContext:Dept", "a");
        ctx.insert("kms:CallerAccount", "1");
        assert_eq!(encryption_context(&ctx), map(&[("dept", "a")]));
    }
}
