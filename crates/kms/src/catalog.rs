//! The KMS operation catalog: for each operation of the service model, its
//! IAM action(s) and resource, whether it may reach another account's key,
//! whether it changes state (cluster write lock, blocking thread), whether a
//! grant can allow it and whether GetKeyLastUsage counts it. The server's
//! pipeline and the authorization rules read this table; a test checks it
//! against the embedded service model (crates/server) and against the grant
//! and usage rules here.

use ferrokms_authz::catalog::{Operation, Resource, Service};

const fn op(name: &'static str, action: &'static str) -> Operation {
    Operation::new(Service::Kms, name, action)
}

/// Every KMS operation of the service model, sorted by name.
pub const OPERATIONS: &[Operation] = &[
    op("CancelKeyDeletion", "kms:CancelKeyDeletion").on(Resource::Key),
    op("ConnectCustomKeyStore", "kms:ConnectCustomKeyStore"),
    op("CreateAlias", "kms:CreateAlias").on(Resource::AliasAndKey),
    op("CreateCustomKeyStore", "kms:CreateCustomKeyStore"),
    op("CreateGrant", "kms:CreateGrant")
        .on(Resource::Key)
        .cross_account()
        .grant_operation(),
    op("CreateKey", "kms:CreateKey").also(&["kms:TagResource", "kms:PutKeyPolicy"]),
    op("Decapsulate", "kms:Decapsulate")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("Decrypt", "kms:Decrypt")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("DeleteAlias", "kms:DeleteAlias").on(Resource::AliasAndKey),
    op("DeleteCustomKeyStore", "kms:DeleteCustomKeyStore"),
    op("DeleteImportedKeyMaterial", "kms:DeleteImportedKeyMaterial").on(Resource::Key),
    op("DeriveSharedSecret", "kms:DeriveSharedSecret")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("DescribeCustomKeyStores", "kms:DescribeCustomKeyStores").reads_only(),
    op("DescribeKey", "kms:DescribeKey")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation(),
    op("DisableKey", "kms:DisableKey").on(Resource::Key),
    op("DisableKeyRotation", "kms:DisableKeyRotation").on(Resource::Key),
    op("DisconnectCustomKeyStore", "kms:DisconnectCustomKeyStore"),
    op("EnableKey", "kms:EnableKey").on(Resource::Key),
    op("EnableKeyRotation", "kms:EnableKeyRotation").on(Resource::Key),
    op("Encapsulate", "kms:Encapsulate")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("Encrypt", "kms:Encrypt")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("GenerateDataKey", "kms:GenerateDataKey")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("GenerateDataKeyPair", "kms:GenerateDataKeyPair")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .slow()
        .grant_operation()
        .counts_for_last_usage(),
    op(
        "GenerateDataKeyPairWithoutPlaintext",
        "kms:GenerateDataKeyPairWithoutPlaintext",
    )
    .on(Resource::Key)
    .cross_account()
    .reads_only()
    .slow()
    .grant_operation()
    .counts_for_last_usage(),
    op(
        "GenerateDataKeyWithoutPlaintext",
        "kms:GenerateDataKeyWithoutPlaintext",
    )
    .on(Resource::Key)
    .cross_account()
    .reads_only()
    .grant_operation()
    .counts_for_last_usage(),
    op("GenerateMac", "kms:GenerateMac")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("GenerateRandom", "kms:GenerateRandom").reads_only(),
    op("GetKeyLastUsage", "kms:GetKeyLastUsage")
        .on(Resource::Key)
        .reads_only(),
    op("GetKeyPolicy", "kms:GetKeyPolicy")
        .on(Resource::Key)
        .reads_only(),
    op("GetKeyRotationStatus", "kms:GetKeyRotationStatus")
        .on(Resource::Key)
        .cross_account()
        .reads_only(),
    // Generates an RSA wrapping key pair (seconds for RSA-4096) and keeps it.
    op("GetParametersForImport", "kms:GetParametersForImport").on(Resource::Key),
    op("GetPublicKey", "kms:GetPublicKey")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation(),
    op("ImportKeyMaterial", "kms:ImportKeyMaterial").on(Resource::Key),
    op("ListAliases", "kms:ListAliases").reads_only(),
    op("ListGrants", "kms:ListGrants")
        .on(Resource::Key)
        .cross_account()
        .reads_only(),
    op("ListKeyPolicies", "kms:ListKeyPolicies")
        .on(Resource::Key)
        .reads_only(),
    op("ListKeyRotations", "kms:ListKeyRotations")
        .on(Resource::Key)
        .reads_only(),
    op("ListKeys", "kms:ListKeys").reads_only(),
    op("ListResourceTags", "kms:ListResourceTags")
        .on(Resource::Key)
        .reads_only(),
    op("ListRetirableGrants", "kms:ListRetirableGrants").reads_only(),
    op("PutKeyPolicy", "kms:PutKeyPolicy").on(Resource::Key),
    op("ReEncrypt", "kms:ReEncryptFrom")
        .also(&["kms:ReEncryptTo"])
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("ReplicateKey", "kms:ReplicateKey")
        .also(&["kms:CreateKey", "kms:PutKeyPolicy", "kms:TagResource"])
        .on(Resource::Key),
    op("RetireGrant", "kms:RetireGrant")
        .on(Resource::Key)
        .cross_account()
        .grant_operation(),
    op("RevokeGrant", "kms:RevokeGrant")
        .on(Resource::Key)
        .cross_account(),
    op("RotateKeyOnDemand", "kms:RotateKeyOnDemand").on(Resource::Key),
    op("ScheduleKeyDeletion", "kms:ScheduleKeyDeletion").on(Resource::Key),
    op("Sign", "kms:Sign")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("TagResource", "kms:TagResource").on(Resource::Key),
    op("UntagResource", "kms:UntagResource").on(Resource::Key),
    op("UpdateAlias", "kms:UpdateAlias").on(Resource::AliasAndKey),
    op("UpdateCustomKeyStore", "kms:UpdateCustomKeyStore"),
    op("UpdateKeyDescription", "kms:UpdateKeyDescription").on(Resource::Key),
    op("UpdatePrimaryRegion", "kms:UpdatePrimaryRegion").on(Resource::Key),
    op("Verify", "kms:Verify")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
    op("VerifyMac", "kms:VerifyMac")
        .on(Resource::Key)
        .cross_account()
        .reads_only()
        .grant_operation()
        .counts_for_last_usage(),
];

/// The catalog row of an operation.
pub fn operation(name: &str) -> Option<&'static Operation> {
    ferrokms_authz::catalog::find(OPERATIONS, name)
}

/// Whether `kms:ACTION` (without the prefix) may be allowed on another
/// account's key: some operation that may cross accounts is authorized by
/// it. Asked only when the accounts differ.
pub fn action_crosses_accounts(action: &str) -> bool {
    OPERATIONS.iter().any(|o| {
        o.cross_account
            && std::iter::once(o.action)
                .chain(o.conditional_actions.iter().copied())
                .any(|a| a.strip_prefix("kms:") == Some(action))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalog_is_sorted_and_each_operation_appears_once() {
        for w in OPERATIONS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
    }

    #[test]
    fn every_action_lint_knows_is_an_operation_or_its_action() {
        // The lint's list has the operations, ReEncrypt included (policies
        // name it through kms:ReEncrypt*), and ReEncrypt's two actions.
        for a in crate::lint::KMS_ACTIONS {
            let named = OPERATIONS.iter().any(|o| {
                o.name == *a
                    || std::iter::once(o.action)
                        .chain(o.conditional_actions.iter().copied())
                        .any(|x| x.strip_prefix("kms:") == Some(*a))
            });
            assert!(named, "kms:{a} is neither an operation nor its action");
        }
        for o in OPERATIONS {
            assert!(crate::lint::KMS_ACTIONS.contains(&o.name), "{}", o.name);
        }
    }

    #[test]
    fn only_the_documented_actions_cross_accounts() {
        // AWS, "Allowing users in other accounts to use a KMS key": the cryptographic operations, DescribeKey,
        // GetPublicKey, the grant operations and GetKeyRotationStatus.
        let mut crossing: Vec<&str> = crate::lint::KMS_ACTIONS
            .iter()
            .copied()
            .filter(|a| action_crosses_accounts(a))
            .collect();
        crossing.sort_unstable();
        assert_eq!(
            crossing,
            [
                "CreateGrant",
                "Decapsulate",
                "Decrypt",
                "DeriveSharedSecret",
                "DescribeKey",
                "Encapsulate",
                "Encrypt",
                "GenerateDataKey",
                "GenerateDataKeyPair",
                "GenerateDataKeyPairWithoutPlaintext",
                "GenerateDataKeyWithoutPlaintext",
                "GenerateMac",
                "GetKeyRotationStatus",
                "GetPublicKey",
                "ListGrants",
                "ReEncryptFrom",
                "ReEncryptTo",
                "RetireGrant",
                "RevokeGrant",
                "Sign",
                "Verify",
                "VerifyMac",
            ]
        );
        assert!(!action_crosses_accounts("PutKeyPolicy"));
        assert!(!action_crosses_accounts("ScheduleKeyDeletion"));
    }

    #[test]
    fn the_operations_getkeylastusage_counts_are_the_tracked_ones() {
        let mut counted: Vec<&str> = OPERATIONS
            .iter()
            .filter(|o| o.counts_for_last_usage)
            .map(|o| o.name)
            .collect();
        counted.sort_unstable();
        let mut tracked: Vec<&str> = crate::usage::TrackedOp::all()
            .iter()
            .map(|t| t.as_str())
            .collect();
        tracked.sort_unstable();
        assert_eq!(counted, tracked);
    }

    #[test]
    fn operations_that_change_state_run_blocking() {
        for o in OPERATIONS {
            if !o.reads_only {
                assert!(o.runs_blocking(), "{}", o.name);
            }
        }
        assert!(operation("GenerateDataKeyPair")
            .is_some_and(ferrokms_authz::catalog::Operation::runs_blocking));
        assert!(operation("Encrypt").is_some_and(|o| !o.runs_blocking()));
    }
}
