"""Rotation of key material end to end: scheduled rotations (the service
clock moved forward with the test-only FerrokmsAdvanceClock operation of
`ferrokms serve --test-clock`), RotateKeyOnDemand, ListKeyRotations and its
paging, GetKeyRotationStatus, the error cases, and authorization."""

import json
import uuid

import pytest

from conftest import CLOCK, DEFAULT_ACCOUNT, advance, expect_error, fresh_account, make_client
from policies import roots_may

DAY = 86400


SERVER = "clock"


@pytest.fixture
def kms(srv):
    # Per test: a restart moves the server to another port.
    return srv.client()


def new_key(kms, **kw):
    return kms.create_key(**kw)["KeyMetadata"]["KeyId"]


def rotations(kms, key_id, **kw):
    return kms.list_key_rotations(KeyId=key_id, **kw)["Rotations"]


def material(kms, key_id):
    return kms.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]


def test_scheduled_rotation_after_the_period_keeps_old_ciphertexts(srv, kms):
    key = new_key(kms)
    old_material = material(kms, key)
    old_blob = kms.encrypt(KeyId=key, Plaintext=b"before")["CiphertextBlob"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key)
    assert status["KeyRotationEnabled"] is True
    assert status["RotationPeriodInDays"] == 90
    first_next = status["NextRotationDate"]
    assert "OnDemandRotationStartDate" not in status

    advance(srv, 89 * DAY)
    assert rotations(kms, key) == []
    out = advance(srv, 2 * DAY)
    assert out["KeysRotated"] >= 1

    rots = rotations(kms, key)
    assert len(rots) == 1
    rot = rots[0]
    assert rot["RotationType"] == "AUTOMATIC"
    assert rot["KeyId"] == key
    assert rot["KeyMaterialState"] == "CURRENT"
    assert rot["RotationDate"] > first_next
    new_material = material(kms, key)
    assert new_material != old_material
    assert rot["KeyMaterialId"] == new_material

    # The old ciphertext still decrypts, and names the old material.
    d = kms.decrypt(CiphertextBlob=old_blob)
    assert d["Plaintext"] == b"before"
    assert d["KeyMaterialId"] == old_material
    # New ciphertexts use the new material.
    new_blob = kms.encrypt(KeyId=key, Plaintext=b"after")["CiphertextBlob"]
    d = kms.decrypt(CiphertextBlob=new_blob)
    assert d["Plaintext"] == b"after"
    assert d["KeyMaterialId"] == new_material

    # The schedule moved on by one period from the rotation.
    second_next = kms.get_key_rotation_status(KeyId=key)["NextRotationDate"]
    assert second_next > first_next
    assert abs((second_next - rot["RotationDate"]).total_seconds() - 90 * DAY) < 1

    # Both materials with ALL_KEY_MATERIAL; the first has no rotation fields.
    all_mats = rotations(kms, key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert [m["KeyMaterialId"] for m in all_mats] == [old_material, new_material]
    assert "RotationType" not in all_mats[0] and "RotationDate" not in all_mats[0]
    assert all_mats[0]["KeyMaterialState"] == "NON_CURRENT"


def test_several_missed_periods_rotate_once(srv, kms):
    key = new_key(kms)
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    advance(srv, 365 * DAY)
    assert len(rotations(kms, key)) == 1


def test_rotate_on_demand_is_listed_and_does_not_move_the_schedule(srv, kms):
    key = new_key(kms)
    arn = kms.describe_key(KeyId=key)["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=180)
    next_date = kms.get_key_rotation_status(KeyId=key)["NextRotationDate"]
    before = material(kms, key)
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    assert kms.rotate_key_on_demand(KeyId=key)["KeyId"] == arn
    rots = rotations(kms, key)
    assert [r["RotationType"] for r in rots] == ["ON_DEMAND"]
    assert rots[0]["KeyMaterialId"] == material(kms, key) != before
    assert kms.get_key_rotation_status(KeyId=key)["NextRotationDate"] == next_date
    assert kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == before
    # Without automatic rotation enabled too.
    other = new_key(kms)
    kms.rotate_key_on_demand(KeyId=other)
    assert kms.get_key_rotation_status(KeyId=other)["KeyRotationEnabled"] is False
    assert len(rotations(kms, other)) == 1


def test_list_key_rotations_pages(kms):
    key = new_key(kms)
    for _ in range(5):
        kms.rotate_key_on_demand(KeyId=key)
    seen, marker = [], None
    while True:
        kw = {"Marker": marker} if marker else {}
        page = kms.list_key_rotations(KeyId=key, Limit=2, **kw)
        assert len(page["Rotations"]) <= 2
        seen += page["Rotations"]
        if not page["Truncated"]:
            assert "NextMarker" not in page
            break
        marker = page["NextMarker"]
    assert len(seen) == 5
    assert len({r["KeyMaterialId"] for r in seen}) == 5
    assert [r["KeyMaterialState"] for r in seen] == ["NON_CURRENT"] * 4 + ["CURRENT"]
    # The paginator sees the same thing.
    pages = kms.get_paginator("list_key_rotations").paginate(KeyId=key, PaginationConfig={"PageSize": 3})
    assert [r["KeyMaterialId"] for p in pages for r in p["Rotations"]] == [r["KeyMaterialId"] for r in seen]
    expect_error(kms.list_key_rotations, "InvalidMarkerException", KeyId=key, Marker="nope")


def test_the_26th_on_demand_rotation_exceeds_the_limit(kms):
    key = new_key(kms)
    for _ in range(25):
        kms.rotate_key_on_demand(KeyId=key)
    expect_error(kms.rotate_key_on_demand, "LimitExceededException", KeyId=key)
    assert len(rotations(kms, key, Limit=1000)) == 25


def test_rotation_errors_by_key_type_and_state(kms):
    asym = new_key(kms, KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    expect_error(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=asym)
    expect_error(kms.list_key_rotations, "UnsupportedOperationException", KeyId=asym)
    hmac = new_key(kms, KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    expect_error(kms.rotate_key_on_demand, "UnsupportedOperationException", KeyId=hmac)

    disabled = new_key(kms)
    kms.disable_key(KeyId=disabled)
    expect_error(kms.rotate_key_on_demand, "DisabledException", KeyId=disabled)
    assert rotations(kms, disabled) == []

    doomed = new_key(kms)
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=30)
    expect_error(kms.rotate_key_on_demand, "KMSInvalidStateException", KeyId=doomed)

    expect_error(kms.rotate_key_on_demand, "NotFoundException", KeyId=str(uuid.uuid4()))
    expect_error(kms.list_key_rotations, "NotFoundException", KeyId=str(uuid.uuid4()))


def test_disabled_key_rotates_when_enabled_again(srv, kms):
    key = new_key(kms)
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    kms.disable_key(KeyId=key)
    advance(srv, 91 * DAY)
    assert rotations(kms, key) == []
    kms.enable_key(KeyId=key)
    advance(srv, 0)
    assert [r["RotationType"] for r in rotations(kms, key)] == ["AUTOMATIC"]


def test_rotations_survive_a_restart(srv, kms):
    key = new_key(kms)
    blobs = [kms.encrypt(KeyId=key, Plaintext=b"0")["CiphertextBlob"]]
    for i in range(1, 4):
        kms.rotate_key_on_demand(KeyId=key)
        blobs.append(kms.encrypt(KeyId=key, Plaintext=str(i).encode())["CiphertextBlob"])
    current = material(kms, key)
    srv.restart()
    kms = srv.client()
    assert material(kms, key) == current
    for i, b in enumerate(blobs):
        assert kms.decrypt(CiphertextBlob=b)["Plaintext"] == str(i).encode()
    assert len(rotations(kms, key)) == 3


def test_advance_clock_is_for_the_account_root_only(srv, kms):
    iam = srv.client(service="iam")
    name = "u" + uuid.uuid4().hex[:10]
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    k = iam.create_access_key(UserName=name)["AccessKey"]
    r = srv.raw(CLOCK, {"Seconds": 1}, access_key=k["AccessKeyId"], secret_key=k["SecretAccessKey"])
    assert r.status == 400 and r.error_type == "AccessDeniedException", r.body
    # The user may rotate with an identity policy (the default key policy delegates to IAM).
    user = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    key = new_key(kms)
    user.rotate_key_on_demand(KeyId=key)
    assert len(user.list_key_rotations(KeyId=key)["Rotations"]) == 1
    bad = srv.raw(CLOCK, {"Seconds": "soon"})
    assert bad.status == 400 and bad.error_type == "ValidationException", bad.body


def test_rotation_actions_are_key_policy_actions(srv, kms):
    iam = srv.client(service="iam")
    name = "u" + uuid.uuid4().hex[:10]
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    root = f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"
    pol = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "kms:ListKeyRotations", "Resource": "*"},
        ],
    }
    key = new_key(kms, Policy=json.dumps(pol))
    assert user.list_key_rotations(KeyId=key)["Rotations"] == []
    e = expect_error(user.rotate_key_on_demand, "AccessDeniedException", KeyId=key)
    assert "kms:RotateKeyOnDemand" in e.response["Error"]["Message"]


def test_rotation_operations_do_not_work_cross_account(dev_server):
    owner_acct, other_acct = fresh_account(), fresh_account()
    owner = dev_server.client(owner_acct, "secret")
    other = dev_server.client(other_acct, "secret")
    arn = owner.create_key(Policy=roots_may(owner_acct, other_acct))["KeyMetadata"]["Arn"]
    other.describe_key(KeyId=arn)  # cross-account DescribeKey works
    expect_error(other.rotate_key_on_demand, "AccessDeniedException", KeyId=arn)
    expect_error(other.list_key_rotations, "AccessDeniedException", KeyId=arn)
    # Without --test-clock the clock operation does not exist.
    r = dev_server.raw(CLOCK, {"Seconds": 1}, access_key=owner_acct, secret_key="secret")
    assert r.status == 400 and r.error_type == "UnknownOperationException", r.body
