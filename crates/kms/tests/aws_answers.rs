//! AWS's exact answers where the logic lives in the KMS layer (issue #19
//! items 5 and 6); tests/e2e/test_aws_answers.py checks them on the wire.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use ferrokms_kms::api::{
    Blob, CreateKeyRequest, DecryptRequest, GenerateDataKeyRequest, GenerateRandomRequest,
    ReEncryptRequest, TagResourceRequest,
};
use ferrokms_kms::model::{DataKeySpec, KeySpec, KeyUsage, Tag};
use ferrokms_kms::KmsError;
use ferrokms_testkit::kms::{arn, encrypt, kms, new_key, owner};

const INCORRECT_KEY: &str =
    "The key ID in the request does not identify a CMK that can perform this operation.";

fn tags(keys: &[&str]) -> Vec<Tag> {
    keys.iter()
        .map(|k| Tag {
            key: k.to_string(),
            value: "v".into(),
        })
        .collect()
}

#[test]
fn decrypt_naming_an_hmac_key_is_incorrect_key_before_any_usage_check() {
    let kms = kms();
    let sym = new_key(&kms, None, None);
    let hmac = new_key(
        &kms,
        Some(KeySpec::Hmac256),
        Some(KeyUsage::GenerateVerifyMac),
    );
    let r = kms.decrypt(
        &owner(),
        DecryptRequest {
            ciphertext_blob: Some(Blob(encrypt(&kms, &owner(), &sym).unwrap())),
            key_id: Some(hmac),
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap_err(), KmsError::IncorrectKey(INCORRECT_KEY.into()));
}

#[test]
fn re_encrypt_naming_a_signing_key_as_source_is_incorrect_key() {
    let kms = kms();
    let sym = new_key(&kms, None, None);
    let sign = new_key(&kms, Some(KeySpec::EccNistP256), Some(KeyUsage::SignVerify));
    let r = kms.re_encrypt(
        &owner(),
        ReEncryptRequest {
            ciphertext_blob: Some(Blob(encrypt(&kms, &owner(), &sym).unwrap())),
            source_key_id: Some(sign),
            destination_key_id: sym.clone(),
            ..Default::default()
        },
    );
    assert_eq!(r.unwrap_err(), KmsError::IncorrectKey(INCORRECT_KEY.into()));
}

#[test]
fn a_key_usage_mismatch_names_the_usage_and_the_operation_only() {
    let kms = kms();
    let rsa = new_key(&kms, Some(KeySpec::Rsa2048), Some(KeyUsage::EncryptDecrypt));
    let r = kms.generate_data_key(
        &owner(),
        GenerateDataKeyRequest {
            key_id: rsa.clone(),
            key_spec: Some(DataKeySpec::Aes256),
            ..Default::default()
        },
    );
    assert_eq!(
        r.unwrap_err(),
        KmsError::InvalidKeyUsage(format!(
            "{} key usage is ENCRYPT_DECRYPT which is not valid for GenerateDataKey.",
            arn(&kms, &rsa)
        ))
    );
}

#[test]
fn generate_random_without_number_of_bytes_is_number_of_bytes_is_required() {
    let r = kms().generate_random(&owner(), GenerateRandomRequest::default());
    assert_eq!(
        r.unwrap_err(),
        KmsError::Validation("NumberOfBytes is required.".into())
    );
}

#[test]
fn a_non_symmetric_key_spec_without_key_usage_is_validation_exception() {
    let r = kms().create_key(
        &owner(),
        CreateKeyRequest {
            key_spec: Some(KeySpec::EccNistP256),
            ..Default::default()
        },
    );
    assert_eq!(
        r.unwrap_err(),
        KmsError::Validation(
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
                .into()
        )
    );
}

#[test]
fn tag_resource_checks_the_request_tags_before_looking_the_key_up() {
    let kms = kms();
    let missing = "00000000-0000-0000-0000-000000000000";
    let tag = |keys: &[&str]| {
        kms.tag_resource(
            &owner(),
            TagResourceRequest {
                key_id: missing.into(),
                tags: tags(keys),
            },
        )
        .unwrap_err()
    };
    assert_eq!(tag(&["a", "a"]), KmsError::Tag("Duplicate tag keys".into()));
    assert_eq!(
        tag(&["AWS:x"]),
        KmsError::Tag("Tags beginning with aws: are reserved".into())
    );
    assert!(matches!(tag(&["a"]), KmsError::NotFound(_)));
}

#[test]
fn the_fifty_first_tag_of_a_key_is_too_many_tags() {
    let kms = kms();
    let key = new_key(&kms, None, None);
    let fifty: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    let fifty: Vec<&str> = fifty.iter().map(String::as_str).collect();
    let tag = |keys: &[&str]| {
        kms.tag_resource(
            &owner(),
            TagResourceRequest {
                key_id: key.clone(),
                tags: tags(keys),
            },
        )
    };
    tag(&fifty).unwrap();
    assert_eq!(
        tag(&["k50"]).unwrap_err(),
        KmsError::Tag("Too many tags".into())
    );
    // The tags it already has are replaced, not added.
    tag(&["k0", "k49"]).unwrap();
}
