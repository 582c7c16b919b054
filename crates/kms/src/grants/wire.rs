//! The wire shapes of the five grant operations (`CreateGrantRequest` …
//! `RevokeGrantRequest`), as the AWS KMS API Reference names their members
//! (see the `api` module); the grant rule and the operations are in the
//! parent module.

use serde::{Deserialize, Serialize};

use super::GrantConstraints;

/// CreateGrant request.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateGrantRequest {
    pub key_id: String,
    /// Exactly one of `grantee_principal` and `grantee_service_principal`.
    pub grantee_principal: Option<String>,
    pub grantee_service_principal: Option<String>,
    /// At most one of `retiring_principal` and `retiring_service_principal`.
    pub retiring_principal: Option<String>,
    pub retiring_service_principal: Option<String>,
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraints>,
    pub grant_tokens: Option<Vec<String>>,
    pub name: Option<String>,
    pub dry_run: Option<bool>,
}

/// CreateGrant response.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateGrantResponse {
    pub grant_token: String,
    pub grant_id: String,
}

/// ListGrants request.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListGrantsRequest {
    pub limit: Option<u32>,
    pub marker: Option<String>,
    pub key_id: String,
    pub grant_id: Option<String>,
    /// At most one of `grantee_principal` and `grantee_service_principal`.
    pub grantee_principal: Option<String>,
    pub grantee_service_principal: Option<String>,
}

/// ListRetirableGrants request.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRetirableGrantsRequest {
    pub limit: Option<u32>,
    pub marker: Option<String>,
    /// Exactly one of `retiring_principal` and `retiring_service_principal`.
    pub retiring_principal: Option<String>,
    pub retiring_service_principal: Option<String>,
}

/// `GrantListEntry`: one grant as ListGrants and ListRetirableGrants return it.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GrantListEntry {
    pub key_id: String,
    pub grant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub creation_date: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantee_principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grantee_service_principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retiring_service_principal: Option<String>,
}

/// ListGrants (and ListRetirableGrants) response.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListGrantsResponse {
    pub grants: Vec<GrantListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

/// RetireGrant request.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RetireGrantRequest {
    pub grant_token: Option<String>,
    pub key_id: Option<String>,
    pub grant_id: Option<String>,
    pub dry_run: Option<bool>,
}

/// RevokeGrant request.
// Members as in the AWS KMS API Reference (see the `api` module).
#[allow(missing_docs)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RevokeGrantRequest {
    pub key_id: String,
    pub grant_id: String,
    pub dry_run: Option<bool>,
}
