//! The spec's request and response JSON: parsing (with its bounds) into
//! [`XksRequest`], and the shapes written back.

use base64::Engine;
use serde::Deserialize;
use zeroize::{Zeroize, Zeroizing};

use super::{Operation, XksError};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// The longest plaintext or ciphertext this proxy takes (the spec asks for
/// at least 4300 bytes); longer is `UnsupportedOperationException`.
pub(super) const MAX_DATA_BYTES: usize = 8192;
/// The longest AAD (the spec asks for at least 8192 bytes).
pub(super) const MAX_AAD_BYTES: usize = 8192;
/// The spec's bound on `ciphertextMetadata`.
pub(super) const MAX_CIPHERTEXT_METADATA_BYTES: usize = 20;
/// The spec's bound on the ARNs of `requestMetadata`; the other fields
/// get the same.
const MAX_METADATA_FIELD: usize = 2048;

/// `requestMetadata` as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawMetadata {
    aws_principal_arn: Option<String>,
    aws_source_vpc: Option<String>,
    aws_source_vpce: Option<String>,
    kms_key_arn: Option<String>,
    kms_operation: Option<String>,
    kms_request_id: Option<String>,
    kms_via_service: Option<String>,
}

/// The request body as sent; unknown members are ignored (the spec lets
/// KMS add fields).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    request_metadata: Option<RawMetadata>,
    plaintext: Option<String>,
    ciphertext: Option<String>,
    ciphertext_metadata: Option<String>,
    encryption_algorithm: Option<String>,
    additional_authenticated_data: Option<String>,
    initialization_vector: Option<String>,
    authentication_tag: Option<String>,
    ciphertext_data_integrity_value_algorithm: Option<String>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(p) = &mut self.plaintext {
            p.zeroize();
        }
    }
}

/// A parsed, checked request.
pub(super) struct XksRequest {
    /// The request metadata, kept for the audit record.
    pub metadata: Vec<(&'static str, String)>,
    /// What the operation takes.
    pub input: Input,
}

/// The operation's own inputs.
pub(super) enum Input {
    /// GetKeyMetadata and GetHealthStatus take nothing but metadata.
    None,
    /// Encrypt.
    Encrypt {
        /// The plaintext (wiped when dropped).
        plaintext: Zeroizing<Vec<u8>>,
        /// The AAD, empty when absent.
        aad: Vec<u8>,
        /// Whether a CDIV (SHA_256) is asked for.
        cdiv: bool,
    },
    /// Decrypt.
    Decrypt {
        /// The ciphertext.
        ciphertext: Vec<u8>,
        /// The IV (12 or 16 bytes).
        iv: Vec<u8>,
        /// The tag (16 bytes).
        tag: Vec<u8>,
        /// The AAD, empty when absent.
        aad: Vec<u8>,
        /// The ciphertext metadata, empty when absent.
        ciphertext_metadata: Vec<u8>,
    },
}

fn validation(m: impl Into<String>) -> XksError {
    XksError::Validation(m.into())
}

fn required(field: &str, value: Option<&String>) -> Result<(), XksError> {
    match value {
        Some(v) if !v.is_empty() => Ok(()),
        _ => Err(validation(format!("requestMetadata.{field} is required"))),
    }
}

/// Parses and checks the body of `op`.
pub(super) fn parse(op: Operation, body: &[u8]) -> Result<XksRequest, XksError> {
    let mut raw: Raw = serde_json::from_slice(body)
        .map_err(|_| validation("The request body is not the JSON this API takes"))?;
    let meta = raw
        .request_metadata
        .take()
        .ok_or_else(|| validation("requestMetadata is required"))?;
    required("kmsOperation", meta.kms_operation.as_ref())?;
    required("kmsRequestId", meta.kms_request_id.as_ref())?;
    if op != Operation::GetHealthStatus {
        required("awsPrincipalArn", meta.aws_principal_arn.as_ref())?;
    }
    if matches!(op, Operation::Encrypt | Operation::Decrypt) {
        required("kmsKeyArn", meta.kms_key_arn.as_ref())?;
    }
    let fields = [
        ("awsPrincipalArn", meta.aws_principal_arn),
        ("awsSourceVpc", meta.aws_source_vpc),
        ("awsSourceVpce", meta.aws_source_vpce),
        ("kmsKeyArn", meta.kms_key_arn),
        ("kmsOperation", meta.kms_operation),
        ("kmsRequestId", meta.kms_request_id),
        ("kmsViaService", meta.kms_via_service),
    ];
    let mut metadata = Vec::new();
    for (name, value) in fields {
        if let Some(v) = value {
            if v.len() > MAX_METADATA_FIELD {
                return Err(validation(format!(
                    "requestMetadata.{name} is longer than {MAX_METADATA_FIELD} characters"
                )));
            }
            metadata.push((name, v));
        }
    }
    let input = match op {
        Operation::GetKeyMetadata | Operation::GetHealthStatus => Input::None,
        Operation::Encrypt => encrypt_input(&raw)?,
        Operation::Decrypt => decrypt_input(&raw)?,
    };
    Ok(XksRequest { metadata, input })
}

fn algorithm(raw: &Raw) -> Result<(), XksError> {
    match raw.encryption_algorithm.as_deref() {
        Some("AES_GCM") => Ok(()),
        Some(_) => Err(validation("encryptionAlgorithm must be AES_GCM")),
        None => Err(validation("encryptionAlgorithm is required")),
    }
}

/// Decodes base64 of at most `max` bytes; `bad` is the error for
/// malformed text.
fn decode(
    field: &str,
    text: &str,
    max: usize,
    bad: fn(String) -> XksError,
) -> Result<Vec<u8>, XksError> {
    let too_long = || {
        XksError::UnsupportedOperation(format!(
            "{field} is longer than this proxy's limit of {max} bytes"
        ))
    };
    // Base64 of `max` bytes is at most this long: refuse before decoding.
    if text.len() > max.div_ceil(3) * 4 {
        return Err(too_long());
    }
    let bytes = B64
        .decode(text.as_bytes())
        .map_err(|_| bad(format!("{field} is not valid base64")))?;
    if bytes.len() > max {
        return Err(too_long());
    }
    Ok(bytes)
}

fn encrypt_input(raw: &Raw) -> Result<Input, XksError> {
    let plaintext = raw
        .plaintext
        .as_deref()
        .ok_or_else(|| validation("plaintext is required"))?;
    let plaintext = Zeroizing::new(decode(
        "plaintext",
        plaintext,
        MAX_DATA_BYTES,
        XksError::Validation,
    )?);
    algorithm(raw)?;
    let aad = match raw.additional_authenticated_data.as_deref() {
        Some(a) => decode(
            "additionalAuthenticatedData",
            a,
            MAX_AAD_BYTES,
            XksError::Validation,
        )?,
        None => Vec::new(),
    };
    let cdiv = match raw.ciphertext_data_integrity_value_algorithm.as_deref() {
        None => false,
        Some("SHA_256") => true,
        Some(_) => {
            return Err(validation(
                "ciphertextDataIntegrityValueAlgorithm must be SHA_256",
            ))
        }
    };
    Ok(Input::Encrypt {
        plaintext,
        aad,
        cdiv,
    })
}

fn decrypt_input(raw: &Raw) -> Result<Input, XksError> {
    let need = |v: &Option<String>, name: &str| -> Result<String, XksError> {
        v.clone()
            .ok_or_else(|| validation(format!("{name} is required")))
    };
    let ciphertext = need(&raw.ciphertext, "ciphertext")?;
    let iv = need(&raw.initialization_vector, "initializationVector")?;
    let tag = need(&raw.authentication_tag, "authenticationTag")?;
    algorithm(raw)?;
    let bad = XksError::InvalidCiphertext;
    let ciphertext = decode("ciphertext", &ciphertext, MAX_DATA_BYTES, bad)?;
    let iv = decode("initializationVector", &iv, 16, bad)?;
    if iv.len() != 12 && iv.len() != 16 {
        return Err(bad("initializationVector must be 12 or 16 bytes".into()));
    }
    let tag = decode("authenticationTag", &tag, 16, bad)?;
    if tag.len() != 16 {
        return Err(bad("authenticationTag must be 16 bytes".into()));
    }
    let aad = match raw.additional_authenticated_data.as_deref() {
        Some(a) => decode("additionalAuthenticatedData", a, MAX_AAD_BYTES, bad)?,
        None => Vec::new(),
    };
    let ciphertext_metadata = match raw.ciphertext_metadata.as_deref() {
        Some(m) => {
            let m = decode("ciphertextMetadata", m, 1024, bad)?;
            if m.len() > MAX_CIPHERTEXT_METADATA_BYTES {
                return Err(validation(format!(
                    "ciphertextMetadata is longer than {MAX_CIPHERTEXT_METADATA_BYTES} bytes"
                )));
            }
            m
        }
        None => Vec::new(),
    };
    Ok(Input::Decrypt {
        ciphertext,
        iv,
        tag,
        aad,
        ciphertext_metadata,
    })
}

/// The audit record's `requestParameters`: the key, the credential, the
/// request metadata and the algorithm names; never the data.
pub(super) fn audit_parameters(
    request: &XksRequest,
    key_id: Option<&str>,
    access_key_id: &str,
) -> Vec<u8> {
    let mut meta = serde_json::Map::new();
    for (name, value) in &request.metadata {
        meta.insert((*name).to_string(), value.as_str().into());
    }
    let mut v = serde_json::Map::new();
    if let Some(k) = key_id {
        v.insert("xksKeyId".into(), k.into());
    }
    v.insert("xksAccessKeyId".into(), access_key_id.into());
    v.insert("requestMetadata".into(), meta.into());
    match &request.input {
        Input::Encrypt { aad, cdiv, .. } => {
            v.insert("encryptionAlgorithm".into(), "AES_GCM".into());
            v.insert(
                "additionalAuthenticatedData".into(),
                (!aad.is_empty()).into(),
            );
            if *cdiv {
                v.insert(
                    "ciphertextDataIntegrityValueAlgorithm".into(),
                    "SHA_256".into(),
                );
            }
        }
        Input::Decrypt { aad, .. } => {
            v.insert("encryptionAlgorithm".into(), "AES_GCM".into());
            v.insert(
                "additionalAuthenticatedData".into(),
                (!aad.is_empty()).into(),
            );
        }
        Input::None => {}
    }
    serde_json::to_vec(&serde_json::Value::Object(v)).unwrap_or_default()
}

/// GetHealthStatus's answer.
pub(super) fn health_response(healthy: bool) -> Vec<u8> {
    let version = env!("CARGO_PKG_VERSION");
    serde_json::json!({
        "xksProxyFleetSize": 1,
        "xksProxyVendor": "ferrokms",
        "xksProxyModel": format!("ferrokms XKS proxy {version}"),
        "ekmVendor": "ferrokms",
        "ekmFleetDetails": [{
            "id": "ferrokms",
            "model": format!("ferrokms sealed key store {version}"),
            "healthStatus": if healthy { "ACTIVE" } else { "UNAVAILABLE" },
        }],
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const META: &str = r#""requestMetadata": {"awsPrincipalArn": "arn:aws:iam::123456789012:user/Alice",
        "kmsKeyArn": "arn:aws:kms:us-east-2:123456789012:key/k", "kmsOperation": "Encrypt",
        "kmsRequestId": "r-1", "somethingNew": 7}"#;

    fn err(op: Operation, body: &str) -> XksError {
        match parse(op, body.as_bytes()) {
            Err(e) => e,
            Ok(_) => panic!("accepted: {body}"),
        }
    }

    #[test]
    fn metadata_is_required_and_unknown_members_are_ignored() {
        assert!(matches!(
            err(Operation::GetKeyMetadata, "{}"),
            XksError::Validation(_)
        ));
        assert!(matches!(
            err(Operation::GetHealthStatus, r#"{"requestMetadata": {}}"#),
            XksError::Validation(_)
        ));
        assert!(matches!(
            err(Operation::GetKeyMetadata, "[1]"),
            XksError::Validation(_)
        ));
        let ok = parse(
            Operation::GetKeyMetadata,
            format!("{{{META}, \"extra\": true}}").as_bytes(),
        )
        .unwrap();
        assert_eq!(ok.metadata.len(), 4);
        assert!(parse(
            Operation::GetHealthStatus,
            br#"{"requestMetadata": {"kmsOperation": "KmsHealthCheck", "kmsRequestId": "x"}}"#
        )
        .is_ok());
    }

    #[test]
    fn encrypt_and_decrypt_inputs_are_checked() {
        assert!(matches!(
            err(
                Operation::Encrypt,
                &format!(r#"{{{META}, "encryptionAlgorithm": "AES_GCM"}}"#)
            ),
            XksError::Validation(_)
        ));
        assert!(matches!(
            err(
                Operation::Encrypt,
                &format!(r#"{{{META}, "plaintext": "AA==", "encryptionAlgorithm": "RSA"}}"#)
            ),
            XksError::Validation(_)
        ));
        let big = B64.encode(vec![0u8; MAX_DATA_BYTES + 1]);
        assert!(matches!(
            err(
                Operation::Encrypt,
                &format!(r#"{{{META}, "plaintext": "{big}", "encryptionAlgorithm": "AES_GCM"}}"#)
            ),
            XksError::UnsupportedOperation(_)
        ));
        let iv = B64.encode([0u8; 11]);
        let tag = B64.encode([0u8; 16]);
        assert!(matches!(
            err(
                Operation::Decrypt,
                &format!(
                    r#"{{{META}, "ciphertext": "AA==", "initializationVector": "{iv}",
                    "authenticationTag": "{tag}", "encryptionAlgorithm": "AES_GCM"}}"#
                )
            ),
            XksError::InvalidCiphertext(_)
        ));
        let iv = B64.encode([0u8; 12]);
        let md = B64.encode([0u8; 21]);
        assert!(matches!(
            err(
                Operation::Decrypt,
                &format!(
                    r#"{{{META}, "ciphertext": "AA==", "initializationVector": "{iv}",
                    "authenticationTag": "{tag}", "ciphertextMetadata": "{md}",
                    "encryptionAlgorithm": "AES_GCM"}}"#
                )
            ),
            XksError::Validation(_)
        ));
    }
}
