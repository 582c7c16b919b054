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
