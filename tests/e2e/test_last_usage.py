"""GetKeyLastUsage end to end: the last successful cryptographic operation
of each key (each operation of KeyLastUsageTrackingOperation), never-used
keys, failures and DryRun not counting, ReEncrypt counting on both keys,
the request and audit ids, authorization (kms:GetKeyLastUsage, own account
only), NotFound, and usage surviving a graceful restart (flushed at
SIGTERM) and a FerrokmsAdvanceClock flush followed by kill -9."""

import base64
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import CLOCK, DEFAULT_ACCOUNT, expect_error, fresh_account, make_client
from policies import roots_may


SERVER = "clock"


@pytest.fixture
def kms(srv):
    # Per test: a restart moves the server to another port.
    return srv.client()


def new_key(kms, **kw):
    return kms.create_key(**kw)["KeyMetadata"]["KeyId"]


def usage(kms, key_id):
    return kms.get_key_last_usage(KeyId=key_id)


def last_op(kms, key_id):
    return usage(kms, key_id).get("KeyLastUsage", {}).get("Operation")


def test_a_key_never_used_has_no_key_last_usage_and_tracking_starts_at_creation(kms):
    key = new_key(kms)
    out = usage(kms, key)
    assert "KeyLastUsage" not in out
    assert out["KeyId"] == key
    assert out["TrackingStartDate"] == out["KeyCreationDate"]
    # Management operations and DescribeKey are not cryptographic uses.
    kms.describe_key(KeyId=key)
    kms.enable_key_rotation(KeyId=key)
    kms.update_key_description(KeyId=key, Description="x")
    assert "KeyLastUsage" not in usage(kms, key)


def test_each_tracked_symmetric_operation_is_recorded_with_time_and_ids(kms):
    key = new_key(kms)
    other = new_key(kms)
    t0 = time.time()
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    u = usage(kms, key)["KeyLastUsage"]
    assert u["Operation"] == "Encrypt"
    assert abs(u["Timestamp"].timestamp() - t0) < 30
    assert len(u["KmsRequestId"]) == 36 and len(u["CloudTrailEventId"]) == 36

    kms.decrypt(CiphertextBlob=blob)
    assert last_op(kms, key) == "Decrypt"
    kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    assert last_op(kms, key) == "GenerateDataKey"
    kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256")
    assert last_op(kms, key) == "GenerateDataKeyWithoutPlaintext"
    kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256")
    assert last_op(kms, key) == "GenerateDataKeyPair"
    kms.generate_data_key_pair_without_plaintext(KeyId=key, KeyPairSpec="ECC_NIST_P256")
    assert last_op(kms, key) == "GenerateDataKeyPairWithoutPlaintext"
    # ReEncrypt is recorded on the source and on the destination key.
    kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=other)
    assert last_op(kms, key) == "ReEncrypt"
    assert last_op(kms, other) == "ReEncrypt"


def test_the_request_id_is_the_responses_and_the_event_id_names_the_audit_record(srv, kms):
    key = new_key(kms)
    resp = kms.encrypt(KeyId=key, Plaintext=b"x")
    request_id = resp["ResponseMetadata"]["RequestId"]
    u = usage(kms, key)["KeyLastUsage"]
    assert u["KmsRequestId"] == request_id
    deadline = time.time() + 5
    found = None
    while found is None and time.time() < deadline:
        for p in sorted((srv.data_dir / "audit").iterdir()):
            for line in p.read_text().splitlines():
                rec = json.loads(line)
                if rec.get("requestID") == request_id:
                    found = rec
        time.sleep(0.05)
    assert found is not None, "the audit record of the Encrypt"
    assert found["eventID"] == u["CloudTrailEventId"]
    assert found["eventName"] == "Encrypt"


def test_sign_verify_mac_and_key_agreement_operations_are_recorded(kms):
    sign_key = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    sig = kms.sign(KeyId=sign_key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    assert last_op(kms, sign_key) == "Sign"
    kms.verify(KeyId=sign_key, Message=b"m", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
    assert last_op(kms, sign_key) == "Verify"

    mac_key = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert last_op(kms, mac_key) == "GenerateMac"
    kms.verify_mac(KeyId=mac_key, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")
    assert last_op(kms, mac_key) == "VerifyMac"

    ka_key = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    peer = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kms.derive_shared_secret(KeyId=ka_key, KeyAgreementAlgorithm="ECDH", PublicKey=peer)
    assert last_op(kms, ka_key) == "DeriveSharedSecret"

    rsa_key = new_key(kms, KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    ct = kms.encrypt(KeyId=rsa_key, Plaintext=b"p", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    assert last_op(kms, rsa_key) == "Encrypt"
    kms.decrypt(KeyId=rsa_key, CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert last_op(kms, rsa_key) == "Decrypt"
    # GetPublicKey is not a tracked operation.
    kms.get_public_key(KeyId=rsa_key)
    assert last_op(kms, rsa_key) == "Decrypt"


def test_failed_operations_and_dry_runs_are_not_uses(kms):
    key = new_key(kms)
    expect_error(
        kms.encrypt, "DryRunOperationException", status=400, KeyId=key, Plaintext=b"x", DryRun=True
    )
    mac_key = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    expect_error(
        kms.verify_mac,
        "KMSInvalidMacException",
        KeyId=mac_key,
        Message=b"m",
        Mac=b"\0" * 32,
        MacAlgorithm="HMAC_SHA_256",
    )
    kms.disable_key(KeyId=key)
    expect_error(kms.encrypt, "DisabledException", KeyId=key, Plaintext=b"x")
    assert "KeyLastUsage" not in usage(kms, key)
    assert "KeyLastUsage" not in usage(kms, mac_key)


def test_get_key_last_usage_works_in_every_key_state_and_accepts_the_key_arn(kms):
    meta = kms.create_key()["KeyMetadata"]
    kms.encrypt(KeyId=meta["KeyId"], Plaintext=b"x")
    kms.schedule_key_deletion(KeyId=meta["KeyId"], PendingWindowInDays=7)
    out = usage(kms, meta["Arn"])
    assert out["KeyId"] == meta["KeyId"]
    assert out["KeyLastUsage"]["Operation"] == "Encrypt"


def test_unknown_keys_and_aliases_are_not_found(kms):
    expect_error(kms.get_key_last_usage, "NotFoundException", KeyId=str(uuid.uuid4()))
    alias = "alias/lu-" + uuid.uuid4().hex[:8]
    kms.create_alias(AliasName=alias, TargetKeyId=new_key(kms))
    expect_error(kms.get_key_last_usage, "NotFoundException", KeyId=alias)


def test_a_principal_without_kms_get_key_last_usage_is_denied(srv, kms):
    iam = srv.client(service="iam")
    name = "u" + uuid.uuid4().hex[:10]
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    root = f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"

    def policy(actions):
        return json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
                    {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": actions, "Resource": "*"},
                ],
            }
        )

    denied = new_key(kms, Policy=policy(["kms:DescribeKey"]))
    e = expect_error(user.get_key_last_usage, "AccessDeniedException", KeyId=denied)
    assert "kms:GetKeyLastUsage" in e.response["Error"]["Message"]
    allowed = new_key(kms, Policy=policy(["kms:GetKeyLastUsage"]))
    assert "KeyLastUsage" not in user.get_key_last_usage(KeyId=allowed)


def test_get_key_last_usage_does_not_work_cross_account(dev_server):
    owner_acct, other_acct = fresh_account(), fresh_account()
    owner = dev_server.client(owner_acct, "secret")
    other = dev_server.client(other_acct, "secret")
    arn = owner.create_key(Policy=roots_may(owner_acct, other_acct))["KeyMetadata"]["Arn"]
    other.encrypt(KeyId=arn, Plaintext=b"x")  # cross-account Encrypt works
    expect_error(other.get_key_last_usage, "AccessDeniedException", KeyId=arn)
    assert owner.get_key_last_usage(KeyId=arn)["KeyLastUsage"]["Operation"] == "Encrypt"


def test_last_usage_survives_a_graceful_restart(srv):
    kms = srv.client()
    key = new_key(kms)
    kms.generate_data_key(KeyId=key, NumberOfBytes=16)
    before = usage(kms, key)["KeyLastUsage"]
    srv.restart()  # SIGTERM: the usage is written at the stop
    after = usage(srv.client(), key)["KeyLastUsage"]
    assert after == before


def test_last_usage_flushed_by_the_sweep_survives_kill_9(srv):
    kms = srv.client()
    key = new_key(kms)
    kms.encrypt(KeyId=key, Plaintext=b"x")
    before = usage(kms, key)["KeyLastUsage"]
    r = srv.raw(CLOCK, {"Seconds": 0})  # runs the sweep, which flushes usage
    assert r.status == 200 and r.json()["UsageFlushed"] >= 1, r.body
    srv.kill()
    srv.start()
    assert usage(srv.client(), key)["KeyLastUsage"] == before
