//! Every authorization decision is kept with the request, naming the
//! statements that decided it, so audit records and explanations can show it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use ferrokms_kms::api::{CreateKeyRequest, EncryptRequest, SecretBlob};
use ferrokms_kms::{Caller, KmsError};
use ferrokms_testkit::kms::{kms, root};

#[test]
fn decision_trace_names_the_key_policy_statement_that_allowed_and_the_reason_of_a_denial() {
    let kms = kms();
    let owner = root("111122223333");
    let key = kms
        .create_key(&owner, CreateKeyRequest::default())
        .unwrap()
        .key_metadata;
    let encrypt = |caller: &Caller| {
        kms.encrypt(
            caller,
            EncryptRequest {
                key_id: key.arn.clone(),
                plaintext: SecretBlob(zeroize::Zeroizing::new(b"x".to_vec())),
                ..Default::default()
            },
        )
    };
    let caller = root("111122223333");
    encrypt(&caller).unwrap();
    let d = caller.decisions();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].action, "kms:Encrypt");
    assert_eq!(d[0].resource, key.arn);
    assert!(d[0].allowed);
    assert_eq!(
        d[0].statements,
        ["key policy #0 (Enable IAM User Permissions) Allow"]
    );

    let stranger = root("444455556666");
    assert!(matches!(encrypt(&stranger), Err(KmsError::AccessDenied(_))));
    let d = stranger.decisions();
    assert!(!d[0].allowed);
    assert_eq!(
        d[0].decision,
        "because no resource-based policy allows the kms:Encrypt action"
    );
}

/// Another account's root asking for a key's policy is refused before any
/// policy is read; the trace says so as a value, and the explanation that
/// reads it says the action cannot cross accounts.
#[test]
fn a_refusal_of_another_accounts_key_is_recorded_as_such() {
    let kms = kms();
    let key = kms
        .create_key(&root("111122223333"), CreateKeyRequest::default())
        .unwrap()
        .key_metadata;
    let stranger = root("444455556666");
    let r = kms
        .simulate(&stranger, &key.arn, "kms:GetKeyPolicy", Default::default())
        .unwrap();
    assert!(!r.allowed);
    assert_eq!(r.reason, ferrokms_authz::Reason::OtherAccount);
    assert_eq!(
        r.decision,
        "because no resource-based policy allows the kms:GetKeyPolicy action"
    );
    let s = ferrokms_kms::explain::suggest(&r, &stranger.arn, None, "444455556666", "111122223333");
    assert!(s[0].contains("cannot be used across accounts"), "{s:?}");
}
