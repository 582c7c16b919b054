//! External key stores in the KMS layer, before any proxy answers: the
//! authorization of the six operations (identity policies only), the
//! answers for what ferrokms cannot reach (CloudHSM, VPC endpoint services)
//! and for a proxy that cannot be reached (a KMS without an HTTPS client:
//! the CLI's, or a server whose proxy is down), and CreateKey's checks of
//! Origin EXTERNAL_KEY_STORE. The proxy round trips are end to end, in
//! tests/e2e/test_custom_key_stores.py.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use ferrokms_kms::api::{
    CreateCustomKeyStoreRequest, CreateKeyRequest, CustomKeyStoreIdRequest,
    DescribeCustomKeyStoresRequest, SecretString, UpdateCustomKeyStoreRequest,
    XksProxyAuthenticationCredential,
};
use ferrokms_kms::model::Origin;
use ferrokms_kms::KmsError;
use ferrokms_policy::PolicyKind;
use ferrokms_testkit::kms::{allow, kms, owner, user};
use zeroize::Zeroizing;

fn xks_request(name: &str) -> CreateCustomKeyStoreRequest {
    CreateCustomKeyStoreRequest {
        custom_key_store_name: name.into(),
        custom_key_store_type: Some("EXTERNAL_KEY_STORE".into()),
        xks_proxy_uri_endpoint: Some("https://127.0.0.1:9".into()),
        xks_proxy_uri_path: Some("/xks/kms/xks/v1".into()),
        xks_proxy_connectivity: Some("PUBLIC_ENDPOINT".into()),
        xks_proxy_authentication_credential: Some(XksProxyAuthenticationCredential {
            access_key_id: "ABCDEFGHIJKLMNOPQRSTUVWX".into(),
            raw_secret_access_key: SecretString(Zeroizing::new(
                "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
            )),
        }),
        ..Default::default()
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, KmsError>) -> &'static str {
    r.unwrap_err().code()
}

#[test]
fn the_store_operations_need_an_identity_policy() {
    let kms = kms();
    let nobody = user("nobody", &[]);
    assert_eq!(
        code(kms.create_custom_key_store(&nobody, xks_request("s"))),
        "AccessDeniedException"
    );
    assert_eq!(
        code(kms.describe_custom_key_stores(&nobody, DescribeCustomKeyStoresRequest::default())),
        "AccessDeniedException"
    );
    let id = || CustomKeyStoreIdRequest {
        custom_key_store_id: "cks-00000000000000000".into(),
    };
    // Authorization comes before the store is looked up: no existence leak.
    assert_eq!(
        code(kms.connect_custom_key_store(&nobody, id())),
        "AccessDeniedException"
    );
    assert_eq!(
        code(kms.delete_custom_key_store(&nobody, id())),
        "AccessDeniedException"
    );
    let reader = user(
        "reader",
        &[(
            PolicyKind::IdentityBased,
            allow(&["kms:DescribeCustomKeyStores"]),
        )],
    );
    let out = kms
        .describe_custom_key_stores(&reader, DescribeCustomKeyStoresRequest::default())
        .unwrap();
    assert!(out.custom_key_stores.is_empty());
    assert_eq!(
        code(kms.disconnect_custom_key_store(&reader, id())),
        "AccessDeniedException"
    );
    assert_eq!(
        code(kms.connect_custom_key_store(&owner(), id())),
        "CustomKeyStoreNotFoundException"
    );
}

#[test]
fn an_unreachable_proxy_creates_nothing() {
    let kms = kms();
    // No HTTPS client installed (`serve` without --xks-ca-file): no proxy
    // is trusted or dialled, said as AWS says a TLS failure.
    let err = kms
        .create_custom_key_store(&owner(), xks_request("s"))
        .unwrap_err();
    assert_eq!(err.code(), "XksProxyUriUnreachableException");
    assert!(
        err.to_string()
            .contains("cannot establish a TLS connection"),
        "{err}"
    );
    assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    let out = kms
        .describe_custom_key_stores(&owner(), DescribeCustomKeyStoresRequest::default())
        .unwrap();
    assert!(out.custom_key_stores.is_empty());
    assert!(!kms.has_custom_key_stores());
}

#[test]
fn cloudhsm_and_vpc_endpoint_services_cannot_be_found() {
    let kms = kms();
    let hsm = CreateCustomKeyStoreRequest {
        custom_key_store_name: "hsm".into(),
        cloud_hsm_cluster_id: Some("cluster-234abcdefgh".into()),
        ..Default::default()
    };
    assert_eq!(
        code(kms.create_custom_key_store(&owner(), hsm)),
        "CloudHsmClusterNotFoundException"
    );
    let mut vpc = xks_request("vpc");
    vpc.xks_proxy_connectivity = Some("VPC_ENDPOINT_SERVICE".into());
    vpc.xks_proxy_vpc_endpoint_service_name =
        Some("com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0".into());
    assert_eq!(
        code(kms.create_custom_key_store(&owner(), vpc)),
        "XksProxyVpcEndpointServiceNotFoundException"
    );
    let mut missing = xks_request("m");
    missing.xks_proxy_uri_path = None;
    assert_eq!(
        code(kms.create_custom_key_store(&owner(), missing)),
        "ValidationException"
    );
    let update = UpdateCustomKeyStoreRequest {
        custom_key_store_id: "cks-00000000000000000".into(),
        cloud_hsm_cluster_id: Some("cluster-234abcdefgh".into()),
        ..Default::default()
    };
    assert_eq!(
        code(kms.update_custom_key_store(&owner(), update)),
        "ValidationException"
    );
}

#[test]
fn create_key_in_an_external_key_store_needs_its_three_members_and_a_store() {
    let kms = kms();
    let req = |store: Option<&str>, xks: Option<&str>, origin| CreateKeyRequest {
        origin: Some(origin),
        custom_key_store_id: store.map(Into::into),
        xks_key_id: xks.map(Into::into),
        ..Default::default()
    };
    let o = Origin::ExternalKeyStore;
    assert_eq!(
        code(kms.create_key(&owner(), req(None, Some("k"), o))),
        "ValidationException"
    );
    assert_eq!(
        code(kms.create_key(&owner(), req(Some("cks-00000000000000000"), None, o))),
        "ValidationException"
    );
    assert_eq!(
        code(kms.create_key(&owner(), req(None, Some("k"), Origin::AwsKms))),
        "ValidationException"
    );
    assert_eq!(
        code(kms.create_key(&owner(), req(Some("cks-00000000000000000"), Some("k"), o))),
        "CustomKeyStoreNotFoundException"
    );
    // Unauthorized callers hear AccessDenied, not whether the store exists.
    let nobody = user("nobody", &[]);
    assert_eq!(
        code(kms.create_key(&nobody, req(Some("cks-00000000000000000"), Some("k"), o))),
        "AccessDeniedException"
    );
}
