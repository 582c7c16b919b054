"""Key lifecycle operations through boto3: CreateKey, DescribeKey, ListKeys,
EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion,
UpdateKeyDescription."""

import datetime as dt
import re
import uuid

import pytest

from conftest import DEFAULT_ACCOUNT, REGION, expect_error

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def now():
    return dt.datetime.now(dt.timezone.utc)


def test_create_key_returns_full_symmetric_default_key_metadata(kms):
    before = now() - dt.timedelta(seconds=5)
    md = kms.create_key(Description="my first key")["KeyMetadata"]
    after = now() + dt.timedelta(seconds=5)
    assert UUID_RE.match(md["KeyId"])
    assert md["Arn"] == f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:key/{md['KeyId']}"
    assert md["AWSAccountId"] == DEFAULT_ACCOUNT
    assert before <= md["CreationDate"] <= after
    assert md["Enabled"] is True
    assert md["Description"] == "my first key"
    assert md["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert md["KeyState"] == "Enabled"
    assert md["Origin"] == "AWS_KMS"
    assert md["KeyManager"] == "CUSTOMER"
    assert md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["CustomerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
    assert md["MultiRegion"] is False
    assert "DeletionDate" not in md


def test_create_key_without_description_has_empty_description(kms):
    md = kms.create_key()["KeyMetadata"]
    assert md["Description"] == ""


def test_describe_key_matches_create_key_metadata(kms, key):
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md == key


def test_describe_key_accepts_key_id_key_arn_alias_name_and_alias_arn(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:{alias_name}"
    for ident in (key["KeyId"], key["Arn"], alias_name, alias_arn, key["KeyId"].upper()):
        assert kms.describe_key(KeyId=ident)["KeyMetadata"]["Arn"] == key["Arn"], ident


def test_describe_key_of_unknown_key_id_is_not_found_with_arn_in_message(kms):
    kid = str(uuid.uuid4())
    expect_error(
        kms.describe_key,
        "NotFoundException",
        message=f"Key 'arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:key/{kid}' does not exist",
        KeyId=kid,
    )


def test_describe_key_of_unknown_alias_is_not_found(kms):
    expect_error(
        kms.describe_key,
        "NotFoundException",
        message=f"Alias arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:alias/no-such-alias is not found.",
        KeyId="alias/no-such-alias",
    )


def test_describe_key_with_malformed_key_id_is_not_found_invalid_key_id(kms):
    expect_error(kms.describe_key, "NotFoundException", message="Invalid keyId 'not-a-key'", KeyId="not-a-key")


def test_describe_key_by_arn_of_another_region_is_not_found_invalid_arn_naming_it(kms, key):
    other = key["Arn"].replace(f":{REGION}:", ":eu-west-1:")
    expect_error(kms.describe_key, "NotFoundException", message="Invalid arn eu-west-1", KeyId=other)


def test_keys_are_per_region(server, key):
    west = server.client(region="eu-west-1")
    ids = [k["KeyId"] for k in west.list_keys(Limit=1000)["Keys"]]
    assert key["KeyId"] not in ids
    expect_error(west.describe_key, "NotFoundException", KeyId=key["KeyId"])


def test_create_key_with_sm2_spec_is_unsupported_operation(kms):
    # Asymmetric keys are supported (see test_asymmetric.py); SM2 exists only
    # in AWS China Regions and ferrokms refuses it.
    expect_error(kms.create_key, "UnsupportedOperationException", KeySpec="SM2", KeyUsage="SIGN_VERIFY")


def test_list_keys_returns_key_id_and_key_arn(fresh):
    c = fresh.client
    created = [c.create_key()["KeyMetadata"] for _ in range(3)]
    resp = c.list_keys()
    assert resp["Truncated"] is False
    assert "NextMarker" not in resp
    got = {k["KeyId"]: k["KeyArn"] for k in resp["Keys"]}
    assert got == {m["KeyId"]: m["Arn"] for m in created}


def test_list_keys_pages_with_limit_marker_and_truncated(fresh):
    c = fresh.client
    want = {c.create_key()["KeyMetadata"]["KeyId"] for _ in range(5)}
    seen = []
    pages = 0
    kwargs = {"Limit": 2}
    while True:
        resp = c.list_keys(**kwargs)
        pages += 1
        assert len(resp["Keys"]) <= 2
        seen += [k["KeyId"] for k in resp["Keys"]]
        if not resp["Truncated"]:
            assert "NextMarker" not in resp
            break
        assert len(resp["Keys"]) == 2
        assert resp["NextMarker"]
        kwargs["Marker"] = resp["NextMarker"]
        assert pages < 10
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == want


def test_list_keys_paginator_yields_every_key(fresh):
    c = fresh.client
    want = {c.create_key()["KeyMetadata"]["KeyId"] for _ in range(4)}
    got = []
    for page in c.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 3}):
        got += [k["KeyId"] for k in page["Keys"]]
    assert sorted(got) == sorted(want)


def test_list_keys_with_invalid_marker_is_invalid_marker_exception(fresh):
    expect_error(fresh.client.list_keys, "InvalidMarkerException", Marker="garbage")


def test_list_keys_with_limit_zero_is_validation_exception(fresh, dev_server):
    c = dev_server.client(fresh.account, "s", validate=False)
    expect_error(
        c.list_keys,
        "ValidationException",
        message="1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        Limit=0,
    )


def test_disable_key_sets_state_disabled_and_enable_key_restores_it(kms, key):
    kid = key["KeyId"]
    assert kms.disable_key(KeyId=kid)["ResponseMetadata"]["HTTPStatusCode"] == 200
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert (md["KeyState"], md["Enabled"]) == ("Disabled", False)
    kms.enable_key(KeyId=key["Arn"])
    md = kms.describe_key(KeyId=kid)["KeyMetadata"]
    assert (md["KeyState"], md["Enabled"]) == ("Enabled", True)


def test_disabled_key_refuses_encrypt_with_disabled_exception(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(
        kms.encrypt,
        "DisabledException",
        message=f"{key['Arn']} is disabled.",
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_enable_key_does_not_accept_alias(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    expect_error(kms.enable_key, "NotFoundException", message=f"Invalid keyId '{alias_name}'", KeyId=alias_name)


def test_schedule_key_deletion_returns_arn_date_state_and_window(kms, key):
    before = now()
    resp = kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert resp["KeyId"] == key["Arn"]
    assert resp["KeyState"] == "PendingDeletion"
    assert resp["PendingWindowInDays"] == 7
    expected = before + dt.timedelta(days=7)
    assert abs((resp["DeletionDate"] - expected).total_seconds()) < 60
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "PendingDeletion"
    assert md["Enabled"] is False
    assert abs((md["DeletionDate"] - resp["DeletionDate"]).total_seconds()) < 1


def test_schedule_key_deletion_defaults_to_30_days(kms, key):
    resp = kms.schedule_key_deletion(KeyId=key["Arn"])
    assert resp["PendingWindowInDays"] == 30
    assert abs((resp["DeletionDate"] - (now() + dt.timedelta(days=30))).total_seconds()) < 60


@pytest.mark.parametrize(
    "days,constraint",
    [(6, "greater than or equal to 7"), (31, "less than or equal to 30")],
)
def test_schedule_key_deletion_outside_7_to_30_days_is_validation_exception(kms_novalidate, key, days, constraint):
    expect_error(
        kms_novalidate.schedule_key_deletion,
        "ValidationException",
        message=f"1 validation error detected: Value '{days}' at 'pendingWindowInDays' failed to "
        f"satisfy constraint: Member must have value {constraint}",
        KeyId=key["KeyId"],
        PendingWindowInDays=days,
    )


def test_pending_deletion_key_refuses_encrypt_with_kms_invalid_state(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(
        kms.encrypt,
        "KMSInvalidStateException",
        message=f"{key['Arn']} is pending deletion.",
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_pending_deletion_key_refuses_enable_key_with_kms_invalid_state(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(kms.enable_key, "KMSInvalidStateException", message=f"{key['Arn']} is pending deletion.", KeyId=key["KeyId"])


def test_cancel_key_deletion_returns_arn_and_leaves_key_disabled(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    resp = kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert resp["KeyId"] == key["Arn"]
    md = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
    assert md["KeyState"] == "Disabled"
    assert md["Enabled"] is False
    assert "DeletionDate" not in md
    kms.enable_key(KeyId=key["KeyId"])
    assert kms.encrypt(KeyId=key["KeyId"], Plaintext=b"back")["KeyId"] == key["Arn"]


def test_cancel_key_deletion_of_key_not_pending_deletion_is_kms_invalid_state(kms, key):
    expect_error(kms.cancel_key_deletion, "KMSInvalidStateException", KeyId=key["KeyId"])


def test_update_key_description_changes_description(kms, key):
    kms.update_key_description(KeyId=key["Arn"], Description="new words")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "new words"


def test_list_keys_includes_pending_deletion_keys(fresh):
    c = fresh.client
    kid = c.create_key()["KeyMetadata"]["KeyId"]
    c.schedule_key_deletion(KeyId=kid, PendingWindowInDays=7)
    assert kid in [k["KeyId"] for k in c.list_keys()["Keys"]]


def test_schedule_key_deletion_twice_is_kms_invalid_state(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(
        kms.schedule_key_deletion,
        "KMSInvalidStateException",
        message=f"{key['Arn']} is pending deletion.",
        KeyId=key["KeyId"],
        PendingWindowInDays=7,
    )


def test_disable_key_of_pending_deletion_key_is_kms_invalid_state(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(kms.disable_key, "KMSInvalidStateException", message=f"{key['Arn']} is pending deletion.", KeyId=key["KeyId"])


def test_describe_key_still_works_while_pending_deletion(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_update_key_description_works_on_disabled_key(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    kms.update_key_description(KeyId=key["KeyId"], Description="still editable")
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Description"] == "still editable"


def test_key_rotation_status_is_false_while_pending_deletion_and_returns_after_cancel(kms, key):
    kms.enable_key_rotation(KeyId=key["KeyId"])
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False
    kms.cancel_key_deletion(KeyId=key["KeyId"])
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True


def test_key_arns_use_the_partition_of_the_region(server):
    gov = server.client(region="us-gov-west-1")
    md = gov.create_key()["KeyMetadata"]
    assert md["Arn"] == f"arn:aws-us-gov:kms:us-gov-west-1:{DEFAULT_ACCOUNT}:key/{md['KeyId']}"
    assert gov.encrypt(KeyId=md["Arn"], Plaintext=b"x")["KeyId"] == md["Arn"]
