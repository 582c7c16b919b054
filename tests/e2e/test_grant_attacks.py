"""Grant authorization under attack, end to end through boto3.

Each test is named after the AWS rule it checks and plays the attacker: a
caller tries to get more out of a grant (or out of DryRun) than the rule
gives it. The rules (AWS, "Grants in AWS KMS"; docs/authorization.md "Grants"):

- a grant to the caller's account is the caller's own IAM permission, capped
  by its permissions boundary and session policies; a grant to the caller's
  role is capped by them too; one naming the caller's own ARN is not;
- a CreateGrant permission that comes from a grant lets its holder create
  only grants that narrow a grant that applies to it;
- ListRetirableGrants lists only for a principal of the caller's account;
- DryRun answers "would have succeeded" only to an authorized caller.

One module-scoped in-memory `--dev` server; accounts, users, roles and keys
are made with the helpers of test_kms_authz_matrix.py.
"""

from __future__ import annotations

import pytest

from conftest import expect_error
from policies import allow, deny, kp_allow
from accounts import (
    AD,
    IB,
    RB,
    denied_encrypt,
    encrypt,
    no_allow,
)

DRY = "DryRunOperationException"
IGNORE = ["IGNORE_CIPHERTEXT"]


SERVER = "dev"


def admin_key(A):
    """A key whose policy names only an admin user (not the account): the
    account's identity policies count for nothing on it; only grants let
    anyone else in. Returns (key, admin)."""
    admin = A.user()
    return A.key(kp_allow(admin.arn, "kms:*")), admin


# --- a grant to the account is the caller's IAM permission: identity ∩ boundary ∩ session ---


def test_grant_to_the_account_is_capped_by_the_callers_permissions_boundary(A):
    key, admin = admin_key(A)
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.root_arn, Operations=["Encrypt"])
    capped = A.user(allow("kms:*"), boundary=[allow("kms:DescribeKey")])
    denied_encrypt(capped, key, message=no_allow("Encrypt", key["Arn"], capped.arn, RB))
    within = A.user(allow("kms:*"), boundary=[allow("kms:Encrypt")])
    encrypt(within, key)


def test_grant_to_the_account_is_capped_by_the_session_policy(A):
    key, admin = admin_key(A)
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.id, Operations=["Encrypt"])
    session = A.role(allow("kms:*"), session_policy=[allow("kms:DescribeKey")])
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, RB))
    wider = session.assume(session_name="wider", session_policy=[allow("kms:Encrypt")])
    encrypt(wider, key)


def test_grant_to_the_account_still_needs_the_callers_identity_policy(A):
    key, admin = admin_key(A)
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.root_arn, Operations=["Encrypt"])
    bare = A.user(boundary=[allow("kms:*")])
    denied_encrypt(bare, key, message=no_allow("Encrypt", key["Arn"], bare.arn, RB))


def test_grant_to_a_role_is_capped_by_the_boundary_and_the_session_policy(A):
    key, admin = admin_key(A)
    session = A.role()
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=session.role_arn, Operations=["Encrypt"])
    encrypt(session, key)  # no identity policy needed: the grant names the role
    narrowed = session.assume(session_name="narrow", session_policy=[allow("kms:DescribeKey")])
    denied_encrypt(narrowed, key)
    bounded = A.role(boundary=[allow("kms:DescribeKey")])
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=bounded.role_arn, Operations=["Encrypt"])
    denied_encrypt(bounded, key)


def test_grant_naming_the_callers_own_user_or_session_arn_is_not_capped_by_boundary_or_session_policy(A):
    key, admin = admin_key(A)
    user = A.user(boundary=[allow("kms:DescribeKey")])
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    encrypt(user, key)
    session = A.role(session_policy=[allow("kms:DescribeKey")])
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=session.arn, Operations=["Encrypt"])
    encrypt(session, key)


def test_explicit_deny_in_a_boundary_still_beats_a_grant_naming_the_user(A):
    key, admin = admin_key(A)
    user = A.user(boundary=[allow("kms:*"), deny("kms:Encrypt")])
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    denied_encrypt(
        user, key, message=f"User: {user.arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']} with an explicit deny in a permissions boundary"
    )


def test_cross_account_grant_to_the_external_account_is_capped_by_the_callers_boundary(A, B):
    key = A.key(A.enable_iam())
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=B.root_arn, Operations=["Encrypt"])
    capped = B.user(allow("kms:Encrypt", key["Arn"]), boundary=[allow("kms:Decrypt")])
    denied_encrypt(capped, key)
    within = B.user(allow("kms:Encrypt", key["Arn"]), boundary=[allow("kms:Encrypt")])
    encrypt(within, key)


# --- CreateGrant from a grant: only a narrowing of a grant that applies to the caller ---


def grant_ids(A, key):
    return sorted(g["GrantId"] for g in A.kms.list_grants(KeyId=key["KeyId"])["Grants"])


def test_create_grant_only_grantee_cannot_grant_itself_decrypt(A):
    key = A.key(A.enable_iam())
    x = A.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=x.arn, Operations=["CreateGrant"])
    # A grant to the account that x's identity policies do not make usable.
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.root_arn, Operations=["Decrypt", "CreateGrant"])
    before = grant_ids(A, key)
    for ops in (["Decrypt"], ["CreateGrant", "Decrypt"], ["Encrypt"]):
        expect_error(
            x.kms.create_grant,
            AD,
            message=no_allow("CreateGrant", key["Arn"], x.arn, IB),
            KeyId=key["Arn"],
            GranteePrincipal=x.arn,
            Operations=ops,
        )
    assert grant_ids(A, key) == before
    blob = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    expect_error(x.kms.decrypt, AD, CiphertextBlob=blob)
    # What it holds it may hand out.
    x.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=x.arn, Operations=["CreateGrant"])


def test_grant_to_the_account_is_a_create_grant_parent_only_where_the_callers_identity_policy_allows_create_grant(A):
    key, admin = admin_key(A)
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.root_arn, Operations=["Encrypt", "CreateGrant"])
    bare = A.user(allow("kms:Encrypt"))
    expect_error(
        bare.kms.create_grant,
        AD,
        message=no_allow("CreateGrant", key["Arn"], bare.arn, RB),
        KeyId=key["Arn"],
        GranteePrincipal=bare.arn,
        Operations=["Encrypt"],
    )
    capped = A.user(allow("kms:*"), boundary=[allow("kms:Encrypt")])
    expect_error(capped.kms.create_grant, AD, KeyId=key["Arn"], GranteePrincipal=capped.arn, Operations=["Encrypt"])
    granter, end = A.user(allow("kms:CreateGrant")), A.user()
    granter.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["Encrypt"])
    encrypt(end, key)
    expect_error(granter.kms.create_grant, AD, KeyId=key["Arn"], GranteePrincipal=granter.arn, Operations=["Decrypt"])


def test_grant_to_a_role_is_no_create_grant_parent_for_a_session_whose_policy_does_not_allow_it(A):
    key, admin = admin_key(A)
    session = A.role(session_policy=[allow("kms:Encrypt")])
    admin.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=session.role_arn, Operations=["Encrypt", "CreateGrant"])
    expect_error(session.kms.create_grant, AD, KeyId=key["Arn"], GranteePrincipal=session.arn, Operations=["Encrypt"])
    plain = session.assume(session_name="plain", session_policy=None)
    plain.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=session.arn, Operations=["Encrypt"])


def test_grant_derived_create_grant_cannot_drop_or_change_the_parents_encryption_context_constraint(A):
    key = A.key(A.enable_iam())
    x, end = A.user(), A.user()
    A.kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=x.arn,
        Operations=["Decrypt", "CreateGrant"],
        Constraints={"EncryptionContextSubset": {"tenant": "a"}},
    )
    tenant_b = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"b's secret", EncryptionContext={"tenant": "b"})["CiphertextBlob"]
    for constraints in (None, {"EncryptionContextSubset": {"tenant": "b"}}, {"EncryptionContextSubset": {"other": "x"}}):
        kw = {"Constraints": constraints} if constraints else {}
        expect_error(x.kms.create_grant, AD, KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["Decrypt"], **kw)
    expect_error(end.kms.decrypt, AD, CiphertextBlob=tenant_b, EncryptionContext={"tenant": "b"})
    x.kms.create_grant(
        KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": {"tenant": "a"}}
    )


# --- ListRetirableGrants: only for a principal of the caller's own account ---


def test_list_retirable_grants_for_another_accounts_principal_is_access_denied(A, B):
    key = A.key(A.enable_iam())
    retirer, grantee = A.user(), A.user()
    g = A.kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=grantee.arn,
        RetiringPrincipal=retirer.arn,
        Operations=["Decrypt"],
        Constraints={"EncryptionContextEquals": {"customer": "acme-secret-project"}},
    )
    lister = B.user(allow("kms:ListRetirableGrants"))
    for attacker in (B.root, lister):
        for principal in (retirer.arn, A.root_arn, A.id):
            expect_error(
                attacker.kms.list_retirable_grants,
                AD,
                message=f"User: {attacker.arn} is not authorized to perform: kms:ListRetirableGrants on resource: {principal} because no resource-based policy allows the kms:ListRetirableGrants action",
                RetiringPrincipal=principal,
            )
    assert [x["GrantId"] for x in A.kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]] == [g["GrantId"]]
    own = A.user(allow("kms:ListRetirableGrants"))
    assert [x["GrantId"] for x in own.kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]] == [g["GrantId"]]


# --- DryRun: "would have succeeded" only after authorization ---


def test_dry_run_decrypt_ignoring_the_ciphertext_without_a_key_id_is_a_validation_error(A, B):
    A.key(A.enable_iam())
    for caller in (A.user(), B.root, A.root):
        expect_error(
            caller.kms.decrypt,
            "ValidationException",
            message="1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
            DryRun=True,
            DryRunModifiers=IGNORE,
        )


def test_dry_run_decrypt_ignoring_the_ciphertext_needs_authorization_on_the_named_key(A, B):
    key = A.key(A.enable_iam())
    nobody = A.user()
    expect_error(
        nobody.kms.decrypt, AD, message=no_allow("Decrypt", key["Arn"], nobody.arn, IB), KeyId=key["Arn"], DryRun=True, DryRunModifiers=IGNORE
    )
    expect_error(B.root.kms.decrypt, AD, KeyId=key["Arn"], DryRun=True, DryRunModifiers=IGNORE)
    expect_error(A.kms.decrypt, DRY, status=400, KeyId=key["KeyId"], DryRun=True, DryRunModifiers=IGNORE)
    # A grant with an encryption-context constraint: judged on the request's context.
    x = A.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=x.arn, Operations=["Decrypt"], Constraints={"EncryptionContextSubset": {"t": "a"}})
    expect_error(x.kms.decrypt, AD, KeyId=key["Arn"], DryRun=True, DryRunModifiers=IGNORE)
    expect_error(x.kms.decrypt, AD, KeyId=key["Arn"], EncryptionContext={"t": "b"}, DryRun=True, DryRunModifiers=IGNORE)
    expect_error(x.kms.decrypt, DRY, status=400, KeyId=key["Arn"], EncryptionContext={"t": "a"}, DryRun=True, DryRunModifiers=IGNORE)


def test_dry_run_re_encrypt_ignoring_the_ciphertext_needs_re_encrypt_from_on_the_source_key(A, B):
    src, dst = A.key(A.enable_iam()), A.key(A.enable_iam())
    x = A.user()
    A.kms.create_grant(KeyId=dst["KeyId"], GranteePrincipal=x.arn, Operations=["ReEncryptTo"])
    expect_error(
        x.kms.re_encrypt,
        AD,
        message=no_allow("ReEncryptFrom", src["Arn"], x.arn, IB),
        SourceKeyId=src["Arn"],
        DestinationKeyId=dst["Arn"],
        DryRun=True,
        DryRunModifiers=IGNORE,
    )
    expect_error(
        x.kms.re_encrypt,
        "ValidationException",
        message="1 validation error detected: Value null at 'sourceKeyId' failed to satisfy constraint: Member must not be null",
        DestinationKeyId=dst["Arn"],
        DryRun=True,
        DryRunModifiers=IGNORE,
    )
    A.kms.create_grant(KeyId=src["KeyId"], GranteePrincipal=x.arn, Operations=["ReEncryptFrom"])
    expect_error(x.kms.re_encrypt, DRY, status=400, SourceKeyId=src["Arn"], DestinationKeyId=dst["Arn"], DryRun=True, DryRunModifiers=IGNORE)
    expect_error(B.root.kms.re_encrypt, AD, SourceKeyId=src["Arn"], DestinationKeyId=dst["Arn"], DryRun=True, DryRunModifiers=IGNORE)


def _dry_run_calls(A):
    """(operation, callable taking a KMS client) for every operation that
    takes DryRun, each a call the key owner is authorized to make."""
    sym = A.key(A.enable_iam())
    sign = A.key(A.enable_iam(), KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    mac = A.key(A.enable_iam(), KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    agree = A.key(A.enable_iam(), KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    kem = A.key(A.enable_iam(), KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")
    blob = A.kms.encrypt(KeyId=sym["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    g = A.kms.create_grant(KeyId=sym["KeyId"], GranteePrincipal=A.user().arn, Operations=["Encrypt"])
    grantee = A.user().arn
    return [
        ("Encrypt", lambda k: k.encrypt(KeyId=sym["Arn"], Plaintext=b"x", DryRun=True)),
        ("Decrypt", lambda k: k.decrypt(CiphertextBlob=blob, DryRun=True)),
        ("Decrypt IGNORE_CIPHERTEXT", lambda k: k.decrypt(KeyId=sym["Arn"], DryRun=True, DryRunModifiers=IGNORE)),
        ("ReEncrypt", lambda k: k.re_encrypt(CiphertextBlob=blob, DestinationKeyId=sym["Arn"], DryRun=True)),
        (
            "ReEncrypt IGNORE_CIPHERTEXT",
            lambda k: k.re_encrypt(SourceKeyId=sym["Arn"], DestinationKeyId=sym["Arn"], DryRun=True, DryRunModifiers=IGNORE),
        ),
        ("GenerateDataKey", lambda k: k.generate_data_key(KeyId=sym["Arn"], KeySpec="AES_256", DryRun=True)),
        ("GenerateDataKeyWithoutPlaintext", lambda k: k.generate_data_key_without_plaintext(KeyId=sym["Arn"], KeySpec="AES_256", DryRun=True)),
        ("GenerateDataKeyPair", lambda k: k.generate_data_key_pair(KeyId=sym["Arn"], KeyPairSpec="ECC_NIST_P256", DryRun=True)),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            lambda k: k.generate_data_key_pair_without_plaintext(KeyId=sym["Arn"], KeyPairSpec="ECC_NIST_P256", DryRun=True),
        ),
        ("Sign", lambda k: k.sign(KeyId=sign["Arn"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256", DryRun=True)),
        ("Verify", lambda k: k.verify(KeyId=sign["Arn"], Message=b"m", Signature=b"\x00" * 8, SigningAlgorithm="ECDSA_SHA_256", DryRun=True)),
        ("GenerateMac", lambda k: k.generate_mac(KeyId=mac["Arn"], Message=b"m", MacAlgorithm="HMAC_SHA_256", DryRun=True)),
        ("VerifyMac", lambda k: k.verify_mac(KeyId=mac["Arn"], Message=b"m", Mac=b"\x00" * 32, MacAlgorithm="HMAC_SHA_256", DryRun=True)),
        (
            "DeriveSharedSecret",
            lambda k: k.derive_shared_secret(KeyId=agree["Arn"], KeyAgreementAlgorithm="ECDH", PublicKey=b"\x00" * 8, DryRun=True),
        ),
        ("Encapsulate", lambda k: k.encapsulate(KeyId=kem["Arn"], EncapsulationAlgorithm="ML_KEM", DryRun=True)),
        (
            "Decapsulate",
            lambda k: k.decapsulate(KeyId=kem["Arn"], SharedSecretCiphertextBlob=b"\x00" * 1088, EncapsulationAlgorithm="ML_KEM", DryRun=True),
        ),
        ("CreateGrant", lambda k: k.create_grant(KeyId=sym["Arn"], GranteePrincipal=grantee, Operations=["Encrypt"], DryRun=True)),
        ("RetireGrant", lambda k: k.retire_grant(KeyId=sym["Arn"], GrantId=g["GrantId"], DryRun=True)),
        ("RevokeGrant", lambda k: k.revoke_grant(KeyId=sym["Arn"], GrantId=g["GrantId"], DryRun=True)),
    ]


def test_dry_run_answers_would_have_succeeded_only_after_authorization_for_every_operation_that_takes_it(A, B):
    strangers = (A.user(), B.root, B.user(allow("kms:*")))
    for name, call in _dry_run_calls(A):
        for stranger in strangers:
            err = expect_error(lambda: call(stranger.kms), AD)
            assert err.response["Error"]["Code"] == AD, (name, stranger.arn)
        expect_error(lambda: call(A.kms), DRY, status=400)
