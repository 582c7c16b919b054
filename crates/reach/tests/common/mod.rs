//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use ferrokms_policy::{ParseOptions, Policy, PolicyKind};
use ferrokms_reach::{KeyTarget, PolicySet};

pub const A: &str = "111111111111";
pub const B: &str = "222222222222";
pub const C: &str = "333333333333";
pub const D: &str = "444444444444";
pub const KEY: &str = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

pub fn policy(kind: PolicyKind, text: &str) -> Arc<Policy> {
    Arc::new(
        Policy::parse(text, &ParseOptions::for_kind(kind))
            .unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

pub fn key_policy(statements: &str) -> Arc<Policy> {
    policy(
        PolicyKind::ResourceBased,
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
    )
}

pub fn identity(statements: &str) -> Arc<Policy> {
    policy(
        PolicyKind::IdentityBased,
        &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
    )
}

pub fn set(key_policy_statements: &str) -> PolicySet {
    PolicySet::new(
        KeyTarget::new(KEY).unwrap(),
        key_policy(key_policy_statements),
    )
}

pub const ROOT_ADMIN: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}"#;
