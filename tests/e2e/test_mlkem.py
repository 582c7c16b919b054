"""ML-KEM keys (ML_KEM_512/768/1024, KeyUsage ENCAPSULATE_DECAPSULATE) and
their operations Encapsulate and Decapsulate (issue #19 item 2), end to end
through boto3.

The wire is checked by an independent implementation: Python
`cryptography` (50.x) encapsulates offline to the public key GetPublicKey
returns and ferrokms's Decapsulate recovers the same secret; ML-KEM data
key pairs load in `cryptography` and decapsulate what their public key
encapsulated. `cryptography` has ML-KEM-768 and ML-KEM-1024 only, so
ML-KEM-512 is checked offline by structure (the SPKI's algorithm identifier
and key length, the PKCS#8 seed form) and round trip through ferrokms; its
interoperability is checked in Rust against the `ml-kem` crate
(crates/kms/src/mlkem.rs).

Each test is named after the AWS rule it checks. One module-scoped
in-memory `--dev` server; accounts and users come from the helpers of
test_kms_authz_matrix.py.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import mlkem

from accounts import AD, RB, no_allow
from conftest import expect_error
from policies import allow, kp_allow

SERVER = "dev"

SPECS = ["ML_KEM_512", "ML_KEM_768", "ML_KEM_1024"]
# FIPS 203 Table 3: encapsulation key and ciphertext lengths.
EK_LEN = {"ML_KEM_512": 800, "ML_KEM_768": 1184, "ML_KEM_1024": 1568}
CT_LEN = {"ML_KEM_512": 768, "ML_KEM_768": 1088, "ML_KEM_1024": 1568}
# id-alg-ml-kem-512/768/1024 (2.16.840.1.101.3.4.4.1-3), DER AlgorithmIdentifier.
ALG_ID = {
    spec: bytes.fromhex("300b06096086480165030404") + bytes([arc])
    for spec, arc in (("ML_KEM_512", 1), ("ML_KEM_768", 2), ("ML_KEM_1024", 3))
}
# The specs `cryptography` implements.
OFFLINE = {"ML_KEM_768": mlkem.MLKEM768PublicKey, "ML_KEM_1024": mlkem.MLKEM1024PublicKey}
KEM = "ML_KEM"
DRY = "DryRunOperationException"
ICE = "InvalidCiphertextException"
IKU = "InvalidKeyUsageException"


_keys: dict = {}


def kem_key(A, spec="ML_KEM_768"):
    """One ML-KEM key per spec for the module."""
    if spec not in _keys:
        _keys[spec] = A.kms.create_key(KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    return _keys[spec]


def encapsulate(kms, key_id, **kw):
    return kms.encapsulate(KeyId=key_id, EncapsulationAlgorithm=KEM, **kw)


def decapsulate(kms, key_id, ct, **kw):
    return kms.decapsulate(KeyId=key_id, SharedSecretCiphertextBlob=ct, EncapsulationAlgorithm=KEM, **kw)


# --- CreateKey, DescribeKey, GetPublicKey -----------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_ml_kem_key_specs_take_only_key_usage_encapsulate_decapsulate(A, spec):
    md = A.kms.create_key(KeySpec=spec, KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    assert (md["KeySpec"], md["KeyUsage"], md["KeyState"]) == (spec, "ENCAPSULATE_DECAPSULATE", "Enabled")
    for usage in ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "KEY_AGREEMENT", "GENERATE_VERIFY_MAC"):
        expect_error(
            A.kms.create_key,
            "ValidationException",
            message=f"KeyUsage {usage} is not compatible with KeySpec {spec}",
            KeySpec=spec,
            KeyUsage=usage,
        )
    # KeyUsage is required for every key spec but SYMMETRIC_DEFAULT.
    expect_error(
        A.kms.create_key,
        "ValidationException",
        message="You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        KeySpec=spec,
    )


@pytest.mark.parametrize("spec", ["SYMMETRIC_DEFAULT", "RSA_2048", "ECC_NIST_P256", "ML_DSA_65", "HMAC_256"])
def test_key_usage_encapsulate_decapsulate_is_only_for_ml_kem_key_specs(A, spec):
    expect_error(
        A.kms.create_key,
        "ValidationException",
        message=f"KeyUsage ENCAPSULATE_DECAPSULATE is not compatible with KeySpec {spec}",
        KeySpec=spec,
        KeyUsage="ENCAPSULATE_DECAPSULATE",
    )


def test_ml_kem_keys_cannot_take_imported_key_material(A):
    expect_error(
        A.kms.create_key,
        "UnsupportedOperationException",
        KeySpec="ML_KEM_768",
        KeyUsage="ENCAPSULATE_DECAPSULATE",
        Origin="EXTERNAL",
    )


def test_key_metadata_of_an_ml_kem_key_lists_only_its_encapsulation_algorithm(A):
    md = A.kms.describe_key(KeyId=kem_key(A)["KeyId"])["KeyMetadata"]
    assert md["EncapsulationAlgorithms"] == [KEM]
    for other in ("EncryptionAlgorithms", "SigningAlgorithms", "MacAlgorithms", "KeyAgreementAlgorithms"):
        assert other not in md, md
    sym = A.kms.create_key()["KeyMetadata"]
    assert "EncapsulationAlgorithms" not in sym


@pytest.mark.parametrize("spec", SPECS)
def test_get_public_key_returns_a_der_subject_public_key_info(A, spec):
    md = kem_key(A, spec)
    out = A.kms.get_public_key(KeyId=md["KeyId"])
    assert (out["KeyId"], out["KeySpec"], out["KeyUsage"]) == (md["Arn"], spec, "ENCAPSULATE_DECAPSULATE")
    assert out["EncapsulationAlgorithms"] == [KEM]
    for other in ("EncryptionAlgorithms", "SigningAlgorithms", "KeyAgreementAlgorithms"):
        assert other not in out
    der = out["PublicKey"]
    # SEQUENCE { AlgorithmIdentifier, BIT STRING { 0 unused bits, ek } }
    assert der[4:17] == ALG_ID[spec]
    assert der[17] == 0x03 and der[21] == 0x00
    assert len(der) == 22 + EK_LEN[spec]
    if spec in OFFLINE:
        pub = serialization.load_der_public_key(der)
        assert isinstance(pub, OFFLINE[spec])
        assert pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == der


# --- Encapsulate / Decapsulate against an independent implementation ------------------


@pytest.mark.parametrize("spec", sorted(OFFLINE))
def test_decapsulate_recovers_what_cryptography_encapsulated_offline_to_the_public_key(A, spec):
    md = kem_key(A, spec)
    pub = serialization.load_der_public_key(A.kms.get_public_key(KeyId=md["KeyId"])["PublicKey"])
    secret, ct = pub.encapsulate()
    assert len(ct) == CT_LEN[spec]
    out = decapsulate(A.kms, md["KeyId"], ct)
    assert out == {**out, "KeyId": md["Arn"], "EncapsulationAlgorithm": KEM}
    assert out["SharedSecret"] == secret


@pytest.mark.parametrize("spec", SPECS)
def test_encapsulate_returns_a_32_byte_secret_and_a_ciphertext_of_the_key_specs_length(A, spec):
    md = kem_key(A, spec)
    out = encapsulate(A.kms, md["KeyId"])
    assert out["KeyId"] == md["Arn"] and out["EncapsulationAlgorithm"] == KEM
    assert len(out["SharedSecret"]) == 32
    assert len(out["SharedSecretCiphertextBlob"]) == CT_LEN[spec]
    assert decapsulate(A.kms, md["Arn"], out["SharedSecretCiphertextBlob"])["SharedSecret"] == out["SharedSecret"]
    again = encapsulate(A.kms, md["KeyId"])
    assert again["SharedSecret"] != out["SharedSecret"]
    assert again["SharedSecretCiphertextBlob"] != out["SharedSecretCiphertextBlob"]


def test_encapsulate_and_decapsulate_take_an_alias(A):
    md = kem_key(A)
    A.kms.create_alias(AliasName="alias/mlkem-e2e", TargetKeyId=md["KeyId"])
    out = encapsulate(A.kms, "alias/mlkem-e2e")
    assert out["KeyId"] == md["Arn"]
    assert decapsulate(A.kms, "alias/mlkem-e2e", out["SharedSecretCiphertextBlob"])["SharedSecret"] == out["SharedSecret"]


# --- implicit rejection (attacker's ciphertexts) ---------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_decapsulate_is_invalid_ciphertext_only_when_the_length_is_inconsistent_with_the_key_spec(A, spec):
    md = kem_key(A, spec)
    ct = encapsulate(A.kms, md["KeyId"])["SharedSecretCiphertextBlob"]
    wrong = {ct[:-1], ct + b"\x00", b"\x01"} | {b"\x00" * n for n in CT_LEN.values() if n != CT_LEN[spec]}
    for bad in wrong:
        expect_error(decapsulate, ICE, kms=A.kms, key_id=md["KeyId"], ct=bad)


@pytest.mark.parametrize("spec", SPECS)
def test_decapsulate_answers_a_tampered_ciphertext_with_a_pseudo_random_32_byte_secret(A, spec):
    md = kem_key(A, spec)
    out = encapsulate(A.kms, md["KeyId"])
    ct = bytearray(out["SharedSecretCiphertextBlob"])
    ct[7] ^= 0x40
    rejected = decapsulate(A.kms, md["KeyId"], bytes(ct))["SharedSecret"]
    assert len(rejected) == 32 and rejected != out["SharedSecret"]
    # Implicit rejection is a function of the ciphertext: the same answer again.
    assert decapsulate(A.kms, md["KeyId"], bytes(ct))["SharedSecret"] == rejected
    # All zeroes of the right length, too.
    zeros = decapsulate(A.kms, md["KeyId"], b"\x00" * CT_LEN[spec])["SharedSecret"]
    assert len(zeros) == 32 and zeros != rejected


def test_decapsulate_with_another_ml_kem_key_gives_a_32_byte_value_that_is_not_the_secret(A):
    one = kem_key(A)
    other = A.kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    out = encapsulate(A.kms, one["KeyId"])
    got = decapsulate(A.kms, other["KeyId"], out["SharedSecretCiphertextBlob"])["SharedSecret"]
    assert len(got) == 32 and got != out["SharedSecret"]


# --- key usage and key state --------------------------------------------------------------


def test_an_ml_kem_key_is_invalid_key_usage_for_every_other_cryptographic_operation(A):
    md = kem_key(A)
    k = md["KeyId"]
    calls = [
        lambda: A.kms.encrypt(KeyId=k, Plaintext=b"x"),
        lambda: A.kms.encrypt(KeyId=k, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
        lambda: A.kms.generate_data_key(KeyId=k, KeySpec="AES_256"),
        lambda: A.kms.generate_data_key_pair(KeyId=k, KeyPairSpec="ML_KEM_768"),
        lambda: A.kms.sign(KeyId=k, Message=b"m", SigningAlgorithm="ML_DSA_SHAKE_256"),
        lambda: A.kms.generate_mac(KeyId=k, Message=b"m", MacAlgorithm="HMAC_SHA_256"),
        lambda: A.kms.derive_shared_secret(KeyId=k, KeyAgreementAlgorithm="ECDH", PublicKey=b"\x30" * 8),
    ]
    for call in calls:
        expect_error(call, IKU)


@pytest.mark.parametrize(
    "spec,usage",
    [
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        ("RSA_2048", "ENCRYPT_DECRYPT"),
        ("ECC_NIST_P256", "KEY_AGREEMENT"),
        ("ML_DSA_44", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ],
)
def test_encapsulate_and_decapsulate_need_an_encapsulate_decapsulate_key(A, spec, usage):
    md = A.kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]
    for op, call in (
        ("Encapsulate", lambda: encapsulate(A.kms, md["KeyId"])),
        ("Decapsulate", lambda: decapsulate(A.kms, md["KeyId"], b"\x00" * 1088)),
    ):
        expect_error(call, IKU, message=f"{md['Arn']} key usage is {usage} which is not valid for {op}.")


def test_a_disabled_ml_kem_key_is_disabled_exception_and_one_pending_deletion_is_invalid_state(A):
    md = A.kms.create_key(KeySpec="ML_KEM_512", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    ct = encapsulate(A.kms, md["KeyId"])["SharedSecretCiphertextBlob"]
    A.kms.disable_key(KeyId=md["KeyId"])
    expect_error(encapsulate, "DisabledException", kms=A.kms, key_id=md["KeyId"])
    expect_error(decapsulate, "DisabledException", kms=A.kms, key_id=md["KeyId"], ct=ct)
    expect_error(A.kms.get_public_key, "DisabledException", KeyId=md["KeyId"])
    A.kms.schedule_key_deletion(KeyId=md["KeyId"], PendingWindowInDays=7)
    expect_error(encapsulate, "KMSInvalidStateException", kms=A.kms, key_id=md["KeyId"])
    expect_error(decapsulate, "KMSInvalidStateException", kms=A.kms, key_id=md["KeyId"], ct=ct)


def test_dry_run_answers_dry_run_operation_and_returns_no_secret(A):
    md = kem_key(A)
    expect_error(encapsulate, DRY, status=400, kms=A.kms, key_id=md["KeyId"], DryRun=True)
    expect_error(decapsulate, DRY, status=400, kms=A.kms, key_id=md["KeyId"], ct=b"\x00" * 1088, DryRun=True)


# --- authorization: another account, grants ---------------------------------------------


def test_another_account_without_a_key_policy_statement_is_denied(A, B):
    md = kem_key(A)
    expect_error(
        encapsulate, AD, message=no_allow("Encapsulate", md["Arn"], B.root_arn, RB), kms=B.kms, key_id=md["Arn"]
    )
    expect_error(
        decapsulate,
        AD,
        message=no_allow("Decapsulate", md["Arn"], B.root_arn, RB),
        kms=B.kms,
        key_id=md["Arn"],
        ct=b"\x00" * 1088,
    )


def test_encapsulate_and_decapsulate_work_across_accounts_by_key_arn(A, B):
    md = A.key(
        A.enable_iam(),
        kp_allow(B.root_arn, ["kms:Encapsulate", "kms:Decapsulate"]),
        KeySpec="ML_KEM_1024",
        KeyUsage="ENCAPSULATE_DECAPSULATE",
    )
    user = B.user(allow(["kms:Encapsulate", "kms:Decapsulate"], md["Arn"]))
    out = encapsulate(user.kms, md["Arn"])
    assert decapsulate(user.kms, md["Arn"], out["SharedSecretCiphertextBlob"])["SharedSecret"] == out["SharedSecret"]
    assert decapsulate(A.kms, md["KeyId"], out["SharedSecretCiphertextBlob"])["SharedSecret"] == out["SharedSecret"]
    # By key id alone, the key is looked up in the caller's own account.
    expect_error(encapsulate, "NotFoundException", kms=user.kms, key_id=md["KeyId"])


def test_a_grant_allows_only_the_operations_it_lists(A, B):
    md = A.key(A.enable_iam(), KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")
    grantee = B.user(allow(["kms:Encapsulate", "kms:Decapsulate"], md["Arn"]))
    g = A.kms.create_grant(KeyId=md["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encapsulate"])
    out = encapsulate(grantee.kms, md["Arn"], GrantTokens=[g["GrantToken"]])
    assert len(out["SharedSecret"]) == 32
    expect_error(
        decapsulate,
        AD,
        kms=grantee.kms,
        key_id=md["Arn"],
        ct=out["SharedSecretCiphertextBlob"],
        GrantTokens=[g["GrantToken"]],
    )
    A.kms.create_grant(KeyId=md["KeyId"], GranteePrincipal=grantee.arn, Operations=["Decapsulate"])
    assert decapsulate(grantee.kms, md["Arn"], out["SharedSecretCiphertextBlob"])["SharedSecret"] == out["SharedSecret"]


def test_grant_operations_encapsulate_and_decapsulate_are_valid_only_for_an_ml_kem_key(A):
    md = kem_key(A)
    for op in ("Encapsulate", "Decapsulate", "GetPublicKey", "DescribeKey"):
        A.kms.create_grant(KeyId=md["KeyId"], GranteePrincipal=A.root_arn, Operations=[op])
    for op in ("Encrypt", "Decrypt", "Sign", "DeriveSharedSecret", "GenerateDataKeyPair"):
        expect_error(
            A.kms.create_grant,
            "ValidationException",
            message=f"Grant operation {op} is not valid for {md['Arn']} with key spec ML_KEM_768 and key usage ENCAPSULATE_DECAPSULATE.",
            KeyId=md["KeyId"],
            GranteePrincipal=A.root_arn,
            Operations=[op],
        )
    sym = A.kms.create_key()["KeyMetadata"]
    for op in ("Encapsulate", "Decapsulate"):
        expect_error(A.kms.create_grant, "ValidationException", KeyId=sym["KeyId"], GranteePrincipal=A.root_arn, Operations=[op])


# --- multi-Region keys -------------------------------------------------------------------------


def test_a_multi_region_ml_kem_replica_decapsulates_what_its_primary_encapsulated(srv, A):
    md = A.kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE", MultiRegion=True)["KeyMetadata"]
    A.kms.replicate_key(KeyId=md["KeyId"], ReplicaRegion="us-west-2")
    west = srv.client(A.id, "x", region="us-west-2")
    out = encapsulate(A.kms, md["KeyId"])
    assert decapsulate(west, md["KeyId"], out["SharedSecretCiphertextBlob"])["SharedSecret"] == out["SharedSecret"]
    assert west.get_public_key(KeyId=md["KeyId"])["PublicKey"] == A.kms.get_public_key(KeyId=md["KeyId"])["PublicKey"]
    assert west.describe_key(KeyId=md["KeyId"])["KeyMetadata"]["EncapsulationAlgorithms"] == [KEM]


# --- GetKeyLastUsage -------------------------------------------------------------------------


def test_get_key_last_usage_counts_encapsulate_and_decapsulate(A):
    md = A.kms.create_key(KeySpec="ML_KEM_768", KeyUsage="ENCAPSULATE_DECAPSULATE")["KeyMetadata"]
    assert "KeyLastUsage" not in A.kms.get_key_last_usage(KeyId=md["KeyId"])
    A.kms.get_public_key(KeyId=md["KeyId"])
    assert "KeyLastUsage" not in A.kms.get_key_last_usage(KeyId=md["KeyId"])
    ct = encapsulate(A.kms, md["KeyId"])["SharedSecretCiphertextBlob"]
    assert A.kms.get_key_last_usage(KeyId=md["KeyId"])["KeyLastUsage"]["Operation"] == "Encapsulate"
    decapsulate(A.kms, md["KeyId"], ct)
    assert A.kms.get_key_last_usage(KeyId=md["KeyId"])["KeyLastUsage"]["Operation"] == "Decapsulate"
    # A refused request is not a use.
    expect_error(decapsulate, ICE, kms=A.kms, key_id=md["KeyId"], ct=b"\x00")
    expect_error(encapsulate, DRY, status=400, kms=A.kms, key_id=md["KeyId"], DryRun=True)
    assert A.kms.get_key_last_usage(KeyId=md["KeyId"])["KeyLastUsage"]["Operation"] == "Decapsulate"


# --- data key pairs ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_ml_kem_data_key_pairs_have_a_pkcs8_seed_private_key_of_the_same_length_for_every_spec(A, spec):
    sym = A.kms.create_key()["KeyMetadata"]
    out = A.kms.generate_data_key_pair(KeyId=sym["KeyId"], KeyPairSpec=spec)
    assert out["KeyPairSpec"] == spec and out["KeyId"] == sym["Arn"]
    priv, pub = out["PrivateKeyPlaintext"], out["PublicKey"]
    # PrivateKeyInfo { 0, AlgorithmIdentifier, OCTET STRING { [0] seed (64) } }
    assert len(priv) == 86
    assert priv[:5] == bytes.fromhex("3054020100") and priv[5:18] == ALG_ID[spec]
    assert priv[18:22] == bytes.fromhex("04428040")
    assert pub[4:17] == ALG_ID[spec] and len(pub) == 22 + EK_LEN[spec]
    assert A.kms.decrypt(CiphertextBlob=out["PrivateKeyCiphertextBlob"])["Plaintext"] == priv
    if spec in OFFLINE:
        key = serialization.load_der_private_key(priv, password=None)
        assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == pub
        # What the returned public key encapsulates, the private key decapsulates.
        secret, ct = serialization.load_der_public_key(pub).encapsulate()
        assert key.decapsulate(ct) == secret
    wo = A.kms.generate_data_key_pair_without_plaintext(KeyId=sym["KeyId"], KeyPairSpec=spec)
    assert "PrivateKeyPlaintext" not in wo and wo["PublicKey"] != pub
    assert len(A.kms.decrypt(CiphertextBlob=wo["PrivateKeyCiphertextBlob"])["Plaintext"]) == 86
