//! Request and response shapes of the KMS operations, member for member as
//! the service model names them. Constraint checks that the model expresses
//! (lengths, ranges, enums, patterns) run at the edge before these types are
//! built; the operations check only KMS's own rules.
//!
//! Each type and member is the service model's shape and member of the same
//! name (`CreateKeyRequest.KeySpec` is `CreateKeyRequest::key_spec`), which
//! the AWS KMS API Reference documents; doc comments here say only what that
//! reference does not (ferrokms's own types, departures from the model).

// The members' documentation is AWS's (see above): a line per member here
// would repeat the member's name.
#![allow(missing_docs)]

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::crypto::EncryptionContext;
use crate::model::{
    DataKeyPairSpec, DataKeySpec, EncapsulationAlgorithm, EncryptionAlgorithm, ExpirationModel,
    ImportState, ImportType, IncludeKeyMaterial, KeyAgreementAlgorithm, KeyMaterialState,
    KeyMetadata, KeySpec, KeyState, KeyUsage, MacAlgorithm, MessageType, Origin, RotationType,
    SigningAlgorithm, Tag, WrappingAlgorithm, WrappingKeySpec,
};

/// A non-secret binary member, base64 on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Blob(pub Vec<u8>);

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        B64.decode(s.as_bytes())
            .map(Blob)
            .map_err(|_| serde::de::Error::custom("invalid base64 in a blob member"))
    }
}

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Base64 never needs JSON escaping: the text goes out as a finished
        // JSON string, which serde_json checks in one fast pass instead of
        // escaping byte by byte (figures: docs/performance.md, "Figures
        // behind comments in the code").
        let mut text = String::with_capacity(self.0.len().div_ceil(3) * 4 + 2);
        text.push('"');
        B64.encode_string(&self.0, &mut text);
        text.push('"');
        serde_json::value::RawValue::from_string(text)
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

/// A secret binary member (plaintext, data keys): wiped from memory on drop
/// and never printed by `Debug`.
#[derive(Clone, Default)]
pub struct SecretBlob(pub Zeroizing<Vec<u8>>);

impl std::fmt::Debug for SecretBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBlob({} bytes)", self.0.len())
    }
}

impl<'de> Deserialize<'de> for SecretBlob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        B64.decode(s.as_bytes())
            .map(|v| SecretBlob(Zeroizing::new(v)))
            .map_err(|_| serde::de::Error::custom("invalid base64 in a blob member"))
    }
}

impl Serialize for SecretBlob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(B64.encode(self.0.as_slice()));
        s.serialize_str(&text)
    }
}

/// Marker for operations whose response has no members: serialises as `{}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Empty {}

// ---------------------------------------------------------------- keys

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateKeyRequest {
    pub policy: Option<String>,
    pub description: Option<String>,
    pub key_usage: Option<KeyUsage>,
    pub customer_master_key_spec: Option<KeySpec>,
    pub key_spec: Option<KeySpec>,
    pub origin: Option<Origin>,
    pub custom_key_store_id: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub tags: Option<Vec<Tag>>,
    pub multi_region: Option<bool>,
    pub xks_key_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyMetadataResponse {
    pub key_metadata: KeyMetadata,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct KeyIdRequest {
    pub key_id: String,
    pub grant_tokens: Option<Vec<String>>,
}

pub type DescribeKeyRequest = KeyIdRequest;
pub type EnableKeyRequest = KeyIdRequest;
pub type DisableKeyRequest = KeyIdRequest;
pub type CancelKeyDeletionRequest = KeyIdRequest;
pub type DisableKeyRotationRequest = KeyIdRequest;
pub type GetKeyRotationStatusRequest = KeyIdRequest;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRequest {
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListKeysRequest {
    pub limit: Option<u32>,
    pub marker: Option<String>,
    /// Whose keys: the caller's account (`SELF`, the default), keys other
    /// accounts share through RAM (`OTHER_ACCOUNTS_VIA_RAM`), or both.
    pub resource_owners: Option<Vec<ResourceOwner>>,
}

/// A `ResourceOwners` value of ListKeys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceOwner {
    /// The keys of the caller's account and region.
    #[serde(rename = "SELF")]
    OwnAccount,
    /// Keys other accounts share with the caller's through Resource Access
    /// Manager: ferrokms has no RAM, so there are none.
    OtherAccountsViaRam,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyListEntry {
    pub key_id: String,
    pub key_arn: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeysResponse {
    pub keys: Vec<KeyListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScheduleKeyDeletionRequest {
    pub key_id: String,
    pub pending_window_in_days: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleKeyDeletionResponse {
    pub key_id: String,
    /// Absent for a multi-Region primary that waits for its replicas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_date: Option<f64>,
    pub key_state: KeyState,
    pub pending_window_in_days: u32,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyIdResponse {
    pub key_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateKeyDescriptionRequest {
    pub key_id: String,
    pub description: String,
}

// ---------------------------------------------------------------- imported key material

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetParametersForImportRequest {
    pub key_id: String,
    /// Required by the model (checked at the edge).
    pub wrapping_algorithm: Option<WrappingAlgorithm>,
    pub wrapping_key_spec: Option<WrappingKeySpec>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetParametersForImportResponse {
    pub key_id: String,
    pub import_token: Blob,
    pub public_key: Blob,
    pub parameters_valid_to: f64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ImportKeyMaterialRequest {
    pub key_id: String,
    pub import_token: Blob,
    pub encrypted_key_material: Blob,
    /// `DateType`: epoch seconds on the JSON wire.
    pub valid_to: Option<f64>,
    pub expiration_model: Option<ExpirationModel>,
    pub import_type: Option<ImportType>,
    pub key_material_description: Option<String>,
    pub key_material_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImportKeyMaterialResponse {
    pub key_id: String,
    pub key_material_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteImportedKeyMaterialRequest {
    pub key_id: String,
    pub key_material_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteImportedKeyMaterialResponse {
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_id: Option<String>,
}

// ---------------------------------------------------------------- multi-Region keys

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReplicateKeyRequest {
    pub key_id: String,
    pub replica_region: String,
    pub policy: Option<String>,
    pub bypass_policy_lockout_safety_check: Option<bool>,
    pub description: Option<String>,
    pub tags: Option<Vec<Tag>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReplicateKeyResponse {
    pub replica_key_metadata: KeyMetadata,
    pub replica_policy: String,
    /// Absent when the replica has no tags, as on AWS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_tags: Option<Vec<Tag>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdatePrimaryRegionRequest {
    pub key_id: String,
    pub primary_region: String,
}

// ---------------------------------------------------------------- aliases

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AliasRequest {
    pub alias_name: String,
    pub target_key_id: String,
}

pub type CreateAliasRequest = AliasRequest;
pub type UpdateAliasRequest = AliasRequest;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeleteAliasRequest {
    pub alias_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListAliasesRequest {
    pub key_id: Option<String>,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasListEntry {
    pub alias_name: String,
    pub alias_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_date: Option<f64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListAliasesResponse {
    pub aliases: Vec<AliasListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// ---------------------------------------------------------------- tags

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagResourceRequest {
    pub key_id: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UntagResourceRequest {
    pub key_id: String,
    pub tag_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListKeyScopedRequest {
    pub key_id: String,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

pub type ListResourceTagsRequest = ListKeyScopedRequest;
pub type ListKeyPoliciesRequest = ListKeyScopedRequest;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListResourceTagsResponse {
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// ---------------------------------------------------------------- key policy

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetKeyPolicyRequest {
    pub key_id: String,
    pub policy_name: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyPolicyResponse {
    pub policy: String,
    pub policy_name: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PutKeyPolicyRequest {
    pub key_id: String,
    pub policy_name: Option<String>,
    pub policy: String,
    pub bypass_policy_lockout_safety_check: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyPoliciesResponse {
    pub policy_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// ---------------------------------------------------------------- rotation

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EnableKeyRotationRequest {
    pub key_id: String,
    pub rotation_period_in_days: Option<u32>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyRotationStatusResponse {
    pub key_rotation_enabled: bool,
    pub key_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_period_in_days: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_rotation_date: Option<f64>,
    /// Set while an on-demand rotation is in progress; ours complete within
    /// the call, so this is never set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_demand_rotation_start_date: Option<f64>,
}

pub type RotateKeyOnDemandRequest = KeyIdRequest;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotateKeyOnDemandResponse {
    /// The key ARN.
    pub key_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListKeyRotationsRequest {
    pub key_id: String,
    pub include_key_material: Option<IncludeKeyMaterial>,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

/// `RotationsListEntry`. KeyMaterialDescription, ImportState, ExpirationModel
/// and ValidTo are present only for EXTERNAL-origin keys.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationsListEntry {
    pub key_id: String,
    pub key_material_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_state: Option<ImportState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_model: Option<ExpirationModel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<f64>,
    pub key_material_state: KeyMaterialState,
    /// Absent for the first material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_date: Option<f64>,
    /// Absent for the first material.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_type: Option<RotationType>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListKeyRotationsResponse {
    pub rotations: Vec<RotationsListEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// ---------------------------------------------------------------- crypto

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncryptRequest {
    pub key_id: String,
    pub plaintext: SecretBlob,
    pub encryption_context: Option<EncryptionContext>,
    pub grant_tokens: Option<Vec<String>>,
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncryptResponse {
    pub ciphertext_blob: Blob,
    pub key_id: String,
    pub encryption_algorithm: EncryptionAlgorithm,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DecryptRequest {
    pub ciphertext_blob: Option<Blob>,
    pub encryption_context: Option<EncryptionContext>,
    pub grant_tokens: Option<Vec<String>>,
    pub key_id: Option<String>,
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    pub dry_run: Option<bool>,
    pub dry_run_modifiers: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecryptResponse {
    pub key_id: String,
    pub plaintext: SecretBlob,
    pub encryption_algorithm: EncryptionAlgorithm,
    /// Symmetric ciphertexts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_material_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReEncryptRequest {
    pub ciphertext_blob: Option<Blob>,
    pub source_encryption_context: Option<EncryptionContext>,
    pub source_key_id: Option<String>,
    pub destination_key_id: String,
    pub destination_encryption_context: Option<EncryptionContext>,
    pub source_encryption_algorithm: Option<EncryptionAlgorithm>,
    pub destination_encryption_algorithm: Option<EncryptionAlgorithm>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
    pub dry_run_modifiers: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReEncryptResponse {
    pub ciphertext_blob: Blob,
    pub source_key_id: String,
    pub key_id: String,
    pub source_encryption_algorithm: EncryptionAlgorithm,
    pub destination_encryption_algorithm: EncryptionAlgorithm,
    /// Symmetric keys only (asymmetric keys have no key material id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_key_material_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_key_material_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateDataKeyRequest {
    pub key_id: String,
    pub encryption_context: Option<EncryptionContext>,
    pub number_of_bytes: Option<u32>,
    pub key_spec: Option<DataKeySpec>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

pub type GenerateDataKeyWithoutPlaintextRequest = GenerateDataKeyRequest;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyResponse {
    pub ciphertext_blob: Blob,
    pub plaintext: SecretBlob,
    pub key_id: String,
    pub key_material_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyWithoutPlaintextResponse {
    pub ciphertext_blob: Blob,
    pub key_id: String,
    pub key_material_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateRandomRequest {
    pub number_of_bytes: Option<u32>,
    pub custom_key_store_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateRandomResponse {
    pub plaintext: SecretBlob,
}

// ---------------------------------------------------------------- custom key stores

/// ConnectCustomKeyStore, DisconnectCustomKeyStore and DeleteCustomKeyStore:
/// the store they name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CustomKeyStoreIdRequest {
    pub custom_key_store_id: String,
}

/// A secret string of a request (a proxy credential's secret, a CloudHSM
/// key store's password): wiped on drop, never shown by Debug.
#[derive(Default)]
pub struct SecretString(pub Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretString(Zeroizing::new(s)))
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(..)")
    }
}

/// `XksProxyAuthenticationCredentialType`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct XksProxyAuthenticationCredential {
    pub access_key_id: String,
    pub raw_secret_access_key: SecretString,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateCustomKeyStoreRequest {
    pub custom_key_store_name: String,
    pub cloud_hsm_cluster_id: Option<String>,
    pub trust_anchor_certificate: Option<String>,
    pub key_store_password: Option<SecretString>,
    pub custom_key_store_type: Option<String>,
    pub xks_proxy_uri_endpoint: Option<String>,
    pub xks_proxy_uri_path: Option<String>,
    pub xks_proxy_vpc_endpoint_service_name: Option<String>,
    pub xks_proxy_vpc_endpoint_service_owner: Option<String>,
    pub xks_proxy_authentication_credential: Option<XksProxyAuthenticationCredential>,
    pub xks_proxy_connectivity: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateCustomKeyStoreResponse {
    pub custom_key_store_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateCustomKeyStoreRequest {
    pub custom_key_store_id: String,
    pub new_custom_key_store_name: Option<String>,
    pub key_store_password: Option<SecretString>,
    pub cloud_hsm_cluster_id: Option<String>,
    pub xks_proxy_uri_endpoint: Option<String>,
    pub xks_proxy_uri_path: Option<String>,
    pub xks_proxy_vpc_endpoint_service_name: Option<String>,
    pub xks_proxy_vpc_endpoint_service_owner: Option<String>,
    pub xks_proxy_authentication_credential: Option<XksProxyAuthenticationCredential>,
    pub xks_proxy_connectivity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeCustomKeyStoresRequest {
    pub custom_key_store_id: Option<String>,
    pub custom_key_store_name: Option<String>,
    pub limit: Option<u32>,
    pub marker: Option<String>,
}

/// `XksProxyConfigurationType`: the proxy settings DescribeCustomKeyStores
/// shows (the access key id, never the secret).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct XksProxyConfiguration {
    pub connectivity: String,
    pub access_key_id: String,
    pub uri_endpoint: String,
    pub uri_path: String,
}

/// `CustomKeyStoresListEntry`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CustomKeyStore {
    pub custom_key_store_id: String,
    pub custom_key_store_name: String,
    pub connection_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection_error_code: Option<String>,
    pub creation_date: f64,
    pub custom_key_store_type: String,
    pub xks_proxy_configuration: XksProxyConfiguration,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeCustomKeyStoresResponse {
    pub custom_key_stores: Vec<CustomKeyStore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
    pub truncated: bool,
}

// ---------------------------------------------------------------- asymmetric, HMAC, key agreement

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SignRequest {
    pub key_id: String,
    pub message: SecretBlob,
    pub message_type: Option<MessageType>,
    pub grant_tokens: Option<Vec<String>>,
    pub signing_algorithm: Option<SigningAlgorithm>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SignResponse {
    pub key_id: String,
    pub signature: Blob,
    pub signing_algorithm: SigningAlgorithm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VerifyRequest {
    pub key_id: String,
    pub message: SecretBlob,
    pub message_type: Option<MessageType>,
    pub signature: Blob,
    pub signing_algorithm: Option<SigningAlgorithm>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyResponse {
    pub key_id: String,
    pub signature_valid: bool,
    pub signing_algorithm: SigningAlgorithm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetPublicKeyRequest {
    pub key_id: String,
    pub grant_tokens: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPublicKeyResponse {
    pub key_id: String,
    pub public_key: Blob,
    pub customer_master_key_spec: KeySpec,
    pub key_spec: KeySpec,
    pub key_usage: KeyUsage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption_algorithms: Option<Vec<EncryptionAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_algorithms: Option<Vec<SigningAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_agreement_algorithms: Option<Vec<KeyAgreementAlgorithm>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encapsulation_algorithms: Option<Vec<EncapsulationAlgorithm>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateMacRequest {
    pub message: SecretBlob,
    pub key_id: String,
    pub mac_algorithm: Option<MacAlgorithm>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateMacResponse {
    pub mac: Blob,
    pub mac_algorithm: MacAlgorithm,
    pub key_id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VerifyMacRequest {
    pub message: SecretBlob,
    pub key_id: String,
    pub mac_algorithm: Option<MacAlgorithm>,
    pub mac: Blob,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VerifyMacResponse {
    pub key_id: String,
    pub mac_valid: bool,
    pub mac_algorithm: MacAlgorithm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeriveSharedSecretRequest {
    pub key_id: String,
    pub key_agreement_algorithm: Option<KeyAgreementAlgorithm>,
    pub public_key: Blob,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
    pub recipient: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeriveSharedSecretResponse {
    pub key_id: String,
    pub shared_secret: SecretBlob,
    pub key_agreement_algorithm: KeyAgreementAlgorithm,
    pub key_origin: Origin,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EncapsulateRequest {
    pub key_id: String,
    pub encapsulation_algorithm: Option<EncapsulationAlgorithm>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EncapsulateResponse {
    pub key_id: String,
    pub shared_secret: SecretBlob,
    pub shared_secret_ciphertext_blob: Blob,
    pub encapsulation_algorithm: EncapsulationAlgorithm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DecapsulateRequest {
    pub key_id: String,
    pub shared_secret_ciphertext_blob: Blob,
    pub encapsulation_algorithm: Option<EncapsulationAlgorithm>,
    pub grant_tokens: Option<Vec<String>>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DecapsulateResponse {
    pub key_id: String,
    pub shared_secret: SecretBlob,
    pub encapsulation_algorithm: EncapsulationAlgorithm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GenerateDataKeyPairRequest {
    pub encryption_context: Option<EncryptionContext>,
    pub key_id: String,
    pub key_pair_spec: Option<DataKeyPairSpec>,
    pub grant_tokens: Option<Vec<String>>,
    pub recipient: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

pub type GenerateDataKeyPairWithoutPlaintextRequest = GenerateDataKeyPairRequest;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairResponse {
    pub private_key_ciphertext_blob: Blob,
    pub private_key_plaintext: SecretBlob,
    pub public_key: Blob,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GenerateDataKeyPairWithoutPlaintextResponse {
    pub private_key_ciphertext_blob: Blob,
    pub public_key: Blob,
    pub key_id: String,
    pub key_pair_spec: DataKeyPairSpec,
    pub key_material_id: String,
}

pub type GetKeyLastUsageRequest = KeyIdRequest;

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetKeyLastUsageResponse {
    /// The key id (not the ARN): the model calls it "the globally unique
    /// identifier", as for `KeyMetadata.KeyId`.
    pub key_id: String,
    /// Absent when the key was not used since `TrackingStartDate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_last_usage: Option<KeyLastUsageData>,
    pub tracking_start_date: f64,
    pub key_creation_date: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyLastUsageData {
    pub operation: &'static str,
    pub timestamp: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud_trail_event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kms_request_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_a_base64_json_string_to_every_serde_json_writer() {
        for bytes in [
            vec![],
            vec![0u8],
            vec![0xfb, 0xff, 0xfe, 1, 2],
            (0..=255).collect(),
        ] {
            let text = B64.encode(&bytes);
            let blob = Blob(bytes);
            assert_eq!(
                serde_json::to_string(&blob).unwrap(),
                serde_json::to_string(&text).unwrap()
            );
            assert_eq!(
                serde_json::to_value(&blob).unwrap(),
                serde_json::json!(text)
            );
            let back: Blob = serde_json::from_str(&serde_json::to_string(&blob).unwrap()).unwrap();
            assert_eq!(back, blob);
        }
    }
}
