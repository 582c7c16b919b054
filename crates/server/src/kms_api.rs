//! The KMS wire protocol (AWS JSON 1.1, `X-Amz-Target: TrentService.<Op>`)
//! and the dispatch of each operation to `ferrokms_kms::Kms`.

use ferrokms_kms::{Caller, Kms, KmsError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use std::borrow::Cow;

use axum::response::Response;

use crate::auth::Identity;
use crate::pipeline::{Fault, Inbound, Operated, Placement, Protocol};
use crate::validate::{Model, WireError};
use crate::App;

/// The KMS service model (Smithy JSON) requests are validated against.
pub const KMS_MODEL: &str = include_str!("../model/kms.json");
/// The `X-Amz-Target` prefix of KMS operations (`TrentService.Encrypt`).
pub const TARGET_PREFIX: &str = "TrentService.";

/// An error ready for the wire: `__type`, optional message, HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error type, e.g. `NotFoundException`.
    pub code: &'static str,
    /// The message, if the error has one.
    pub message: Option<String>,
    /// The HTTP status.
    pub status: u16,
}

impl ApiError {
    /// A client error (HTTP 400) with a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: Some(message.into()),
            status: 400,
        }
    }
}

impl From<KmsError> for ApiError {
    fn from(e: KmsError) -> Self {
        // Real KMS answers 400 for every client fault (NotFound, Disabled,
        // AccessDenied and DryRunOperation included: the model declares no
        // other status for any of them).
        let status = match &e {
            KmsError::Internal(_) => 500,
            _ => 400,
        };
        ApiError {
            code: e.code(),
            message: e.message(),
            status,
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Serialization(m) => ApiError::new("SerializationException", m),
            WireError::Validation(m) => ApiError::new("ValidationException", m),
        }
    }
}

/// Whether the server runs an operation off the async executor: the
/// catalog says it writes to the store (which blocks) or is slow (RSA key
/// pair generation); the test clock's operation runs the sweeps.
pub fn runs_blocking(op: &str) -> bool {
    op == ADVANCE_CLOCK_OP
        || ferrokms_kms::catalog::operation(op)
            .is_some_and(ferrokms_authz::catalog::Operation::runs_blocking)
}

/// Encryption contexts up to this many pairs and bytes are authorized on the async workers;
/// larger ones (up to the bounds every operation enforces, 64 pairs and 8192 bytes) on the
/// blocking pool. The cost of matching a policy's patterns grows with the context: a
/// context within these bounds keeps even a 32 KiB policy of `?` patterns to a few
/// milliseconds of work in a debug build (docs/performance.md), so the workers answer
/// everyone else (`/health` included) while larger requests are authorized.
pub const INLINE_CONTEXT_PAIRS: usize = 8;
/// See [`INLINE_CONTEXT_PAIRS`]: the context's total bytes, keys and values.
pub const INLINE_CONTEXT_BYTES: usize = 1024;

/// Whether a request's encryption context makes its authorization possibly heavy (see
/// [`INLINE_CONTEXT_PAIRS`]): then the server runs it off the async workers. ReEncrypt carries
/// two contexts; every other operation at most `EncryptionContext`, one lookup in the body.
pub fn heavy_authorization(op: &str, body: &Value) -> bool {
    let heavy = |member: &str| match body.get(member) {
        Some(Value::Object(ec)) => {
            ec.len() > INLINE_CONTEXT_PAIRS
                || ec
                    .iter()
                    .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                    .sum::<usize>()
                    > INLINE_CONTEXT_BYTES
        }
        _ => false,
    };
    if op == "ReEncrypt" {
        heavy("SourceEncryptionContext") || heavy("DestinationEncryptionContext")
    } else {
        heavy("EncryptionContext")
    }
}

/// Operations that may wait for an external key store proxy (up to its
/// timeout) when their key is in an external key store: while any custom key
/// store exists, they run on the blocking pool so that the async workers
/// never wait on a proxy. Without stores they stay on the workers.
pub fn may_call_a_proxy(op: &str) -> bool {
    matches!(
        op,
        "Encrypt"
            | "Decrypt"
            | "ReEncrypt"
            | "GenerateDataKey"
            | "GenerateDataKeyWithoutPlaintext"
            | "GenerateDataKeyPair"
            | "GenerateDataKeyPairWithoutPlaintext"
    )
}

/// The test-only operation of `ferrokms serve --test-clock`
/// (`TrentService.FerrokmsAdvanceClock`, body `{"Seconds": N}`): moves the
/// service clock forward, then runs the sweeps (deletions due, rotations
/// due, expired imported material) and the flush of key usage at once.
/// STS sessions issue and expire by the same moved clock.
/// Not in the service model; the server routes it here only
/// when the flag is set, otherwise it is an unknown operation.
pub const ADVANCE_CLOCK_OP: &str = "FerrokmsAdvanceClock";

/// Runs [`ADVANCE_CLOCK_OP`]: account root only. Answers the new service
/// time and what the sweeps did.
pub fn advance_clock(
    kms: &Kms,
    directory: &ferrokms_iam::Directory,
    caller: &Caller,
    body: Value,
) -> Result<Vec<u8>, ApiError> {
    if caller.arn != caller.account.root_arn(caller.region.partition()) {
        return Err(ApiError::new(
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: {ADVANCE_CLOCK_OP} (account root only)",
                caller.arn
            ),
        ));
    }
    let seconds = match body.get("Seconds") {
        Some(Value::Number(n)) => n.as_i64().filter(|s| (0..=100 * 366 * 86_400).contains(s)),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            "ValidationException",
            "Seconds must be an integer from 0 to 3162240000.",
        )
    })?;
    kms.clock.advance_ms(seconds * 1000);
    directory.advance_clock_ms(seconds * 1000);
    let sweep = kms.sweep();
    // As the periodic sweeper does: tests see usage in the store (and on
    // other nodes) after this call.
    let usage_flushed = kms.flush_usage()?;
    let out = serde_json::json!({
        "Now": ferrokms_kms::model::ms_to_epoch_seconds(kms.clock.now_ms()),
        "KeysDeleted": sweep.keys_deleted?,
        "KeysRotated": sweep.keys_rotated?,
        "MaterialsExpired": sweep.materials_expired?,
        "UsageFlushed": usage_flushed,
    });
    Ok(serde_json::to_vec(&out).unwrap_or_default())
}

fn decode<T: DeserializeOwned>(body: Value) -> Result<T, ApiError> {
    serde_json::from_value(body).map_err(|e| ApiError::new("SerializationException", e.to_string()))
}

fn encode<T: Serialize>(r: Result<T, KmsError>) -> Result<Vec<u8>, ApiError> {
    let out = r?;
    // Room for the usual response (an Encrypt answer is ~330 bytes) without
    // growing the buffer three times from serde_json's default.
    let mut buf = Vec::with_capacity(512);
    serde_json::to_writer(&mut buf, &out)
        .map(|()| buf)
        .map_err(|e| ApiError {
            code: "KMSInternalException",
            message: Some(format!("response encoding failed: {e}")),
            status: 500,
        })
}

/// Validates the body against the model and runs the operation.
pub fn dispatch(
    kms: &Kms,
    model: &Model,
    caller: &Caller,
    op: &str,
    body: Value,
) -> Result<Vec<u8>, ApiError> {
    if !model.has_operation(op) {
        return Err(ApiError {
            code: "UnknownOperationException",
            message: None,
            status: 400,
        });
    }
    model.validate(op, &body)?;
    // Grant tokens are accepted by every operation that has the member;
    // each must name a grant that exists (CreateGrant checks its own).
    if let Some(tokens) = body.get("GrantTokens").and_then(Value::as_array) {
        let tokens: Vec<String> = tokens
            .iter()
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        kms.validate_grant_tokens(&tokens)?;
    }
    macro_rules! call {
        ($method:ident) => {
            encode(kms.$method(caller, decode(body)?))
        };
    }
    match op {
        "CreateKey" => call!(create_key),
        "DescribeKey" => call!(describe_key),
        "ListKeys" => call!(list_keys),
        "EnableKey" => call!(enable_key),
        "DisableKey" => call!(disable_key),
        "ScheduleKeyDeletion" => call!(schedule_key_deletion),
        "CancelKeyDeletion" => call!(cancel_key_deletion),
        "UpdateKeyDescription" => call!(update_key_description),
        "CreateAlias" => call!(create_alias),
        "UpdateAlias" => call!(update_alias),
        "DeleteAlias" => call!(delete_alias),
        "ListAliases" => call!(list_aliases),
        "TagResource" => call!(tag_resource),
        "UntagResource" => call!(untag_resource),
        "ListResourceTags" => call!(list_resource_tags),
        "GetKeyPolicy" => call!(get_key_policy),
        "PutKeyPolicy" => call!(put_key_policy),
        "ListKeyPolicies" => call!(list_key_policies),
        "EnableKeyRotation" => call!(enable_key_rotation),
        "DisableKeyRotation" => call!(disable_key_rotation),
        "GetKeyRotationStatus" => call!(get_key_rotation_status),
        "RotateKeyOnDemand" => call!(rotate_key_on_demand),
        "ListKeyRotations" => call!(list_key_rotations),
        "GetParametersForImport" => call!(get_parameters_for_import),
        "ImportKeyMaterial" => call!(import_key_material),
        "DeleteImportedKeyMaterial" => call!(delete_imported_key_material),
        "ReplicateKey" => call!(replicate_key),
        "UpdatePrimaryRegion" => call!(update_primary_region),
        "Encrypt" => call!(encrypt),
        "Decrypt" => call!(decrypt),
        "ReEncrypt" => call!(re_encrypt),
        "GenerateDataKey" => call!(generate_data_key),
        "GenerateDataKeyWithoutPlaintext" => call!(generate_data_key_without_plaintext),
        "GenerateRandom" => call!(generate_random),
        "CreateGrant" => call!(create_grant),
        "ListGrants" => call!(list_grants),
        "ListRetirableGrants" => call!(list_retirable_grants),
        "RetireGrant" => call!(retire_grant),
        "RevokeGrant" => call!(revoke_grant),
        "Sign" => call!(sign),
        "Verify" => call!(verify),
        "GetPublicKey" => call!(get_public_key),
        "GenerateMac" => call!(generate_mac),
        "VerifyMac" => call!(verify_mac),
        "DeriveSharedSecret" => call!(derive_shared_secret),
        "Encapsulate" => call!(encapsulate),
        "Decapsulate" => call!(decapsulate),
        "GetKeyLastUsage" => call!(get_key_last_usage),
        "GenerateDataKeyPair" => call!(generate_data_key_pair),
        "GenerateDataKeyPairWithoutPlaintext" => {
            call!(generate_data_key_pair_without_plaintext)
        }
        "CreateCustomKeyStore" => call!(create_custom_key_store),
        "DescribeCustomKeyStores" => call!(describe_custom_key_stores),
        "ConnectCustomKeyStore" => call!(connect_custom_key_store),
        "DisconnectCustomKeyStore" => call!(disconnect_custom_key_store),
        "DeleteCustomKeyStore" => call!(delete_custom_key_store),
        "UpdateCustomKeyStore" => call!(update_custom_key_store),
        other => Err(ApiError::new(
            "UnsupportedOperationException",
            format!("{other} is not implemented by this version of ferrokms."),
        )),
    }
}

/// A KMS request in the pipeline (`crate::pipeline`): the operation named
/// by `X-Amz-Target`, and its JSON body once admitted.
pub(crate) struct KmsRequest {
    /// The catalog's name for a known operation (no copy per request).
    op: Cow<'static, str>,
    body: Value,
    /// Made here so that GetKeyLastUsage can name this request's audit record.
    usage_ids: ferrokms_kms::usage::RequestIds,
}

impl KmsRequest {
    pub fn new(op: &str, request_num: u128) -> Self {
        let op = match ferrokms_kms::catalog::operation(op) {
            Some(row) => Cow::Borrowed(row.name),
            None if op == ADVANCE_CLOCK_OP => Cow::Borrowed(ADVANCE_CLOCK_OP),
            None => Cow::Owned(op.to_string()),
        };
        KmsRequest {
            op,
            body: Value::Null,
            usage_ids: ferrokms_kms::usage::RequestIds {
                request_id: request_num,
                event_id: crate::ids::unique_id_u128(),
            },
        }
    }
}

impl From<ApiError> for Fault {
    fn from(e: ApiError) -> Self {
        Fault {
            code: e.code.into(),
            status: e.status,
            message: e.message,
            members: None,
        }
    }
}

impl Protocol for KmsRequest {
    type Caller = Caller;
    type Call = (Cow<'static, str>, Value, ferrokms_kms::usage::RequestIds);
    type Output = Vec<u8>;

    const SERVICES: &'static [&'static str] = &["kms"];

    fn service<'a>(&'a self, _: Option<&'a Identity>) -> &'a str {
        "kms"
    }

    fn operation(&self) -> &str {
        &self.op
    }

    /// AWS's retryable answer, which the SDKs retry by themselves.
    fn unavailable() -> Fault {
        Fault {
            code: "DependencyTimeoutException".into(),
            status: 503,
            message: Some(
                "The system timed out while trying to fulfill the request. You can retry the request."
                    .into(),
            ),
            members: None,
        }
    }

    fn internal() -> Fault {
        Fault {
            code: "KMSInternalException".into(),
            status: 500,
            message: Some("The operation failed unexpectedly.".into()),
            members: None,
        }
    }

    /// The trusted-service facts (`kms:ViaService`, a service principal and
    /// its source ARN) from a trusted principal, the caller, and the body
    /// as JSON (an empty body is an empty object).
    fn admit(
        &mut self,
        app: &App,
        req: &Inbound<'_>,
        identity: &Identity,
    ) -> Result<Caller, Fault> {
        let service =
            crate::auth::service_headers(req.headers, identity, &app.via_service_principals)?;
        let caller =
            crate::auth::caller(&app.directory, &app.profiles, identity, req.origin, service);
        self.body = if req.body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&req.body).map_err(|e| {
                ApiError::new(
                    "SerializationException",
                    format!("The request body is not valid JSON: {e}"),
                )
            })?
        };
        Ok(caller)
    }

    fn audit_parameters(&self, memo: Option<&mut crate::audit::ParamsMemo>) -> Vec<u8> {
        crate::audit::request_parameters_json(&self.body, memo)
    }

    fn event_id(&self) -> Option<[u8; 36]> {
        Some(crate::ids::id_bytes(self.usage_ids.event_id))
    }

    /// Writes go under the cluster write lock on several nodes; writes,
    /// slow operations and heavy authorization (a large encryption context
    /// tried against a policy full of patterns) run off the async workers,
    /// so that no request holds one for more than a few milliseconds.
    fn placement(&self, app: &App) -> Placement {
        if app.cluster.is_some() && !crate::cluster::kms_op_reads_only(&self.op) {
            Placement::Locked
        } else if runs_blocking(&self.op)
            || heavy_authorization(&self.op, &self.body)
            || (app.kms.has_custom_key_stores() && may_call_a_proxy(&self.op))
        {
            Placement::Blocking
        } else {
            Placement::Inline
        }
    }

    fn call(&mut self) -> Self::Call {
        (
            self.op.clone(),
            std::mem::take(&mut self.body),
            self.usage_ids,
        )
    }

    fn operate(app: &App, (op, body, usage_ids): Self::Call, caller: Caller) -> Operated<Vec<u8>> {
        let result = if app.test_clock && op == ADVANCE_CLOCK_OP {
            advance_clock(&app.kms, &app.directory, &caller, body)
        } else {
            ferrokms_kms::usage::with_request_ids(usage_ids, || {
                dispatch(&app.kms, &app.kms_model, &caller, &op, body)
            })
        };
        Operated {
            result: result.map_err(Fault::from),
            trace: caller.into_trace(),
        }
    }

    fn response_elements(&self, out: &Vec<u8>) -> Vec<u8> {
        crate::audit::response_elements(&self.op, out)
    }

    fn respond(&self, out: Vec<u8>, _: &str) -> Response {
        crate::json_response(axum::http::StatusCode::OK, out)
    }

    fn respond_error(&self, fault: &Fault, _: &str) -> Response {
        crate::error_response(fault)
    }
}

#[cfg(test)]
mod catalog_tests {
    /// The KMS catalog has exactly the operations of the embedded model.
    #[test]
    fn the_kms_catalog_matches_the_embedded_service_model() {
        let model: serde_json::Value = serde_json::from_str(super::KMS_MODEL).unwrap_or_default();
        let mut ops: Vec<&str> = model["operations"]
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        ops.sort_unstable();
        let catalog: Vec<&str> = ferrokms_kms::catalog::OPERATIONS
            .iter()
            .map(|o| o.name)
            .collect();
        assert!(ops.len() >= 54);
        assert_eq!(catalog, ops);
    }

    /// Every IAM and STS operation the catalog names exists in the service
    /// model (the operation lists under crates/iam/model, kept equal to the
    /// test venv's botocore by tests/e2e/test_catalogs.py), and the IAM
    /// dispatcher serves each of them.
    #[test]
    fn the_iam_and_sts_catalogs_name_operations_of_their_models() {
        for (list, catalog) in [
            (
                include_str!("../../iam/model/iam-operations.txt"),
                ferrokms_iam::catalog::IAM_OPERATIONS,
            ),
            (
                include_str!("../../iam/model/sts-operations.txt"),
                ferrokms_iam::catalog::STS_OPERATIONS,
            ),
        ] {
            let model: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
            for o in catalog {
                assert!(model.contains(&o.name), "{} is not in the model", o.name);
            }
        }
    }
}

#[cfg(test)]
mod heavy_tests {
    use super::*;
    use serde_json::json;

    fn ctx(pairs: usize, value_len: usize) -> Value {
        Value::Object(
            (0..pairs)
                .map(|i| (format!("k{i}"), Value::String("v".repeat(value_len))))
                .collect(),
        )
    }

    /// Small contexts (the usual ones) stay on the async workers; more pairs or bytes than
    /// the inline bounds, in any of the three members, go to the blocking pool.
    #[test]
    fn only_requests_with_a_large_encryption_context_are_heavy() {
        let heavy = |body: Value| heavy_authorization("Encrypt", &body);
        assert!(!heavy(json!({"KeyId": "k", "Plaintext": "eA=="})));
        assert!(!heavy(json!({"EncryptionContext": ctx(8, 10)})));
        // 8 pairs: keys "k0".."k7" (16 bytes) and values of 126 bytes: 1024 bytes.
        assert!(!heavy(json!({"EncryptionContext": ctx(8, 126)})));
        assert!(heavy(json!({"EncryptionContext": ctx(8, 127)})));
        assert!(heavy(json!({"EncryptionContext": ctx(9, 0)})));
        assert!(heavy_authorization(
            "Decrypt",
            &json!({"EncryptionContext": ctx(9, 0)})
        ));
        for m in ["SourceEncryptionContext", "DestinationEncryptionContext"] {
            assert!(
                heavy_authorization("ReEncrypt", &json!({m: ctx(9, 0)})),
                "{m}"
            );
            assert!(!heavy(json!({m: ctx(9, 0)})), "{m} outside ReEncrypt");
        }
        // Not an object: the model check answers it; nothing to weigh here.
        assert!(!heavy(json!({"EncryptionContext": "x".repeat(5000)})));
    }
}
