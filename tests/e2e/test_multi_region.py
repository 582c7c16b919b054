"""Multi-Region keys end to end: the Region is the SigV4 scope, so a replica
is the same mrk- key id reached with a client of another Region. Deletion
waiting periods and rotations run on the test clock."""

import json

import pytest

from conftest import advance, expect_error

DAY = 86400
PRIMARY = "us-east-1"
REPLICA = "eu-west-1"
OTHER = "ap-southeast-2"


SERVER = "clock"


@pytest.fixture
def east(srv):
    return srv.client(region=PRIMARY)


@pytest.fixture
def west(srv):
    return srv.client(region=REPLICA)


def mrk(kms, **kw):
    m = kms.create_key(MultiRegion=True, **kw)["KeyMetadata"]
    assert m["KeyId"].startswith("mrk-")
    assert m["MultiRegion"] is True
    return m


def test_create_multi_region_key_describes_itself_as_primary(east):
    m = mrk(east)
    cfg = m["MultiRegionConfiguration"]
    assert cfg["MultiRegionKeyType"] == "PRIMARY"
    assert cfg["PrimaryKey"] == {"Arn": m["Arn"], "Region": PRIMARY}
    assert cfg["ReplicaKeys"] == []
    single = east.create_key()["KeyMetadata"]
    assert "MultiRegionConfiguration" not in single


def test_replicate_key_shares_id_and_material_with_own_policy_tags_description(east, west):
    m = mrk(east, Description="primary", Tags=[{"TagKey": "side", "TagValue": "east"}])
    key_id = m["KeyId"]
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "root", "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{m['AWSAccountId']}:root"},
            "Action": "kms:*", "Resource": "*",
        }],
    })
    out = east.replicate_key(
        KeyId=key_id, ReplicaRegion=REPLICA, Description="replica", Policy=policy,
        Tags=[{"TagKey": "side", "TagValue": "west"}],
    )
    rm = out["ReplicaKeyMetadata"]
    assert rm["KeyId"] == key_id
    assert rm["Arn"] == m["Arn"].replace(PRIMARY, REPLICA)
    assert rm["Description"] == "replica"
    assert rm["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert json.loads(out["ReplicaPolicy"]) == json.loads(policy)
    assert out["ReplicaTags"] == [{"TagKey": "side", "TagValue": "west"}]

    # Ciphertext made in one Region decrypts in the other, both ways.
    blob = east.encrypt(KeyId=key_id, Plaintext=b"from east")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from east"
    blob = west.encrypt(KeyId=key_id, Plaintext=b"from west")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=blob)["Plaintext"] == b"from west"

    pm = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert pm["Description"] == "primary"
    assert pm["MultiRegionConfiguration"]["ReplicaKeys"] == [
        {"Arn": rm["Arn"], "Region": REPLICA}
    ]
    assert west.list_resource_tags(KeyId=key_id)["Tags"] == [
        {"TagKey": "side", "TagValue": "west"}
    ]


def test_replicate_key_errors(east, west):
    key_id = mrk(east)["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    expect_error(east.replicate_key, "AlreadyExistsException", KeyId=key_id, ReplicaRegion=REPLICA)
    # Only a primary replicates.
    expect_error(west.replicate_key, "UnsupportedOperationException", KeyId=key_id, ReplicaRegion=OTHER)
    single = east.create_key()["KeyMetadata"]["KeyId"]
    expect_error(east.replicate_key, "UnsupportedOperationException", KeyId=single, ReplicaRegion=REPLICA)
    disabled = mrk(east)["KeyId"]
    east.disable_key(KeyId=disabled)
    expect_error(east.replicate_key, "DisabledException", KeyId=disabled, ReplicaRegion=REPLICA)


def test_rotation_is_shared_and_managed_on_the_primary(srv, east, west):
    key_id = mrk(east)["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    expect_error(west.enable_key_rotation, "UnsupportedOperationException", KeyId=key_id)
    expect_error(west.rotate_key_on_demand, "UnsupportedOperationException", KeyId=key_id)
    east.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    assert west.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    east.rotate_key_on_demand(KeyId=key_id)
    east_mat = east.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    west_mat = west.describe_key(KeyId=key_id)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert east_mat == west_mat
    assert len(west.list_key_rotations(KeyId=key_id)["Rotations"]) == 1
    blob = west.encrypt(KeyId=key_id, Plaintext=b"new")["CiphertextBlob"]
    assert east.decrypt(CiphertextBlob=blob)["Plaintext"] == b"new"


def test_update_primary_region_swaps_primary_and_replica(east, west):
    key_id = mrk(east)["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    expect_error(west.update_primary_region, "UnsupportedOperationException",
                 KeyId=key_id, PrimaryRegion=PRIMARY)
    expect_error(east.update_primary_region, "NotFoundException",
                 KeyId=key_id, PrimaryRegion=OTHER)
    east.update_primary_region(KeyId=key_id, PrimaryRegion=REPLICA)
    wcfg = west.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert wcfg["MultiRegionKeyType"] == "PRIMARY"
    assert wcfg["PrimaryKey"]["Region"] == REPLICA
    assert [r["Region"] for r in wcfg["ReplicaKeys"]] == [PRIMARY]
    ecfg = east.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert ecfg["MultiRegionKeyType"] == "REPLICA"
    assert ecfg["PrimaryKey"]["Region"] == REPLICA


def test_primary_with_replicas_waits_in_pending_replica_deletion(srv, east, west):
    key_id = mrk(east)["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    out = east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert out["KeyState"] == "PendingReplicaDeletion"
    assert "DeletionDate" not in out
    m = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert m["KeyState"] == "PendingReplicaDeletion"
    assert m["PendingDeletionWindowInDays"] == 7
    assert "DeletionDate" not in m
    expect_error(east.encrypt, "KMSInvalidStateException", KeyId=key_id, Plaintext=b"x")

    west.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    advance(srv, 8 * DAY)
    expect_error(west.describe_key, "NotFoundException", KeyId=key_id)
    m = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert m["KeyState"] == "PendingDeletion"
    assert m["MultiRegionConfiguration"]["ReplicaKeys"] == []
    advance(srv, 8 * DAY)
    expect_error(east.describe_key, "NotFoundException", KeyId=key_id)


def test_cancel_key_deletion_of_a_primary_pending_replica_deletion(east, west):
    key_id = mrk(east)["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    east.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    east.cancel_key_deletion(KeyId=key_id)
    assert east.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"


def test_replicas_survive_a_restart(srv):
    east = srv.client(region=PRIMARY)
    key_id = mrk(east)["KeyId"]
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA)
    blob = east.encrypt(KeyId=key_id, Plaintext=b"durable")["CiphertextBlob"]
    srv.restart()
    west = srv.client(region=REPLICA)
    assert west.decrypt(CiphertextBlob=blob)["Plaintext"] == b"durable"
    cfg = west.describe_key(KeyId=key_id)["KeyMetadata"]["MultiRegionConfiguration"]
    assert cfg["PrimaryKey"]["Region"] == PRIMARY


def test_multi_region_condition_keys_authorize_replicate_and_update_primary(srv):
    east = srv.client(region=PRIMARY)
    acct = east.create_key()["KeyMetadata"]["AWSAccountId"]
    policy = json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "root", "Effect": "Allow",
             "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "onlyEu", "Effect": "Deny",
             "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
             "Action": ["kms:ReplicateKey", "kms:UpdatePrimaryRegion"], "Resource": "*",
             "Condition": {"StringNotLike": {"kms:ReplicaRegion": "eu-*",
                                               "kms:PrimaryRegion": "eu-*"}}},
            {"Sid": "noEncryptOnPrimary", "Effect": "Deny",
             "Principal": {"AWS": f"arn:aws:iam::{acct}:root"},
             "Action": "kms:Encrypt", "Resource": "*",
             "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "PRIMARY"}}},
        ],
    })
    key_id = mrk(east, Policy=policy)["KeyId"]
    expect_error(east.replicate_key, "AccessDeniedException", KeyId=key_id, ReplicaRegion=OTHER)
    east.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA, Policy=policy)
    expect_error(east.encrypt, "AccessDeniedException", KeyId=key_id, Plaintext=b"x")
    west = srv.client(region=REPLICA)
    assert west.encrypt(KeyId=key_id, Plaintext=b"x")["KeyId"].endswith(key_id)
