"""Aliases, tags, key policies and the rotation setting through boto3."""

import datetime as dt
import json

import pytest

from conftest import DEFAULT_ACCOUNT, REGION, expect_error


def alias_arn(name, account=DEFAULT_ACCOUNT):
    return f"arn:aws:kms:{REGION}:{account}:{name}"


# --- aliases -------------------------------------------------------------


def test_create_alias_then_list_aliases_with_key_id_shows_it(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    for ident in (key["KeyId"], key["Arn"]):
        aliases = kms.list_aliases(KeyId=ident)["Aliases"]
        assert [a["AliasName"] for a in aliases] == [alias_name], ident
    a = aliases[0]
    assert a["AliasArn"] == alias_arn(alias_name)
    assert a["TargetKeyId"] == key["KeyId"]
    assert isinstance(a["CreationDate"], dt.datetime)
    assert isinstance(a["LastUpdatedDate"], dt.datetime)


def test_list_aliases_without_key_id_lists_aliases_of_every_key(fresh):
    c = fresh.client
    k1 = c.create_key()["KeyMetadata"]["KeyId"]
    k2 = c.create_key()["KeyMetadata"]["KeyId"]
    c.create_alias(AliasName="alias/one", TargetKeyId=k1)
    c.create_alias(AliasName="alias/two", TargetKeyId=k2)
    c.create_alias(AliasName="alias/three", TargetKeyId=k2)
    resp = c.list_aliases()
    assert resp["Truncated"] is False
    # AWS also lists the predefined alias/aws/* aliases (without a target).
    assert all(a["AliasName"].startswith("alias/aws/") for a in resp["Aliases"] if "TargetKeyId" not in a)
    got = {a["AliasName"]: a["TargetKeyId"] for a in resp["Aliases"] if "TargetKeyId" in a}
    assert got == {"alias/one": k1, "alias/two": k2, "alias/three": k2}
    assert {a["AliasName"] for a in c.list_aliases(KeyId=k2)["Aliases"]} == {"alias/two", "alias/three"}


def test_list_aliases_pages_with_limit_and_marker(fresh):
    c = fresh.client
    k = c.create_key()["KeyMetadata"]["KeyId"]
    names = {f"alias/p{i}" for i in range(5)}
    for n in names:
        c.create_alias(AliasName=n, TargetKeyId=k)
    seen, kwargs = [], {"Limit": 2}
    for _ in range(30):
        resp = c.list_aliases(**kwargs)
        seen += [a["AliasName"] for a in resp["Aliases"]]
        if not resp["Truncated"]:
            break
        kwargs["Marker"] = resp["NextMarker"]
    assert sorted(n for n in seen if not n.startswith("alias/aws/")) == sorted(names)


def test_create_alias_accepts_key_arn_as_target(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["Arn"])
    assert kms.describe_key(KeyId=alias_name)["KeyMetadata"]["KeyId"] == key["KeyId"]


def test_create_alias_with_alias_as_target_is_not_found_invalid_key_id(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    expect_error(
        kms.create_alias,
        "NotFoundException",
        message=f"Invalid keyId '{alias_name}'",
        AliasName=alias_name + "-2",
        TargetKeyId=alias_name,
    )


def test_create_alias_that_already_exists_is_already_exists_exception(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    other = kms.create_key()["KeyMetadata"]
    expect_error(
        kms.create_alias,
        "AlreadyExistsException",
        message=f"An alias with the name {alias_arn(alias_name)} already exists",
        AliasName=alias_name,
        TargetKeyId=other["KeyId"],
    )


def test_create_alias_without_alias_prefix_is_validation_exception(kms, key):
    e = expect_error(kms.create_alias, "ValidationException", AliasName="noprefix", TargetKeyId=key["KeyId"])
    assert 'Alias must start with the prefix "alias/"' in e.response["Error"]["Message"]


def test_create_alias_with_reserved_aws_prefix_is_invalid_alias_name(kms, key):
    expect_error(kms.create_alias, "InvalidAliasNameException", AliasName="alias/aws/mine", TargetKeyId=key["KeyId"])


@pytest.mark.parametrize("name", ["alias/has space", "alias/bad!char", "alias/é"])
def test_create_alias_with_invalid_characters_is_validation_exception(kms, key, name):
    expect_error(kms.create_alias, "ValidationException", AliasName=name, TargetKeyId=key["KeyId"])


def test_create_alias_of_just_the_prefix_is_validation_exception(kms, key):
    expect_error(kms.create_alias, "ValidationException", AliasName="alias/", TargetKeyId=key["KeyId"])


def test_create_alias_for_pending_deletion_key_is_kms_invalid_state(kms, key, alias_name):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(kms.create_alias, "KMSInvalidStateException", AliasName=alias_name, TargetKeyId=key["KeyId"])


def test_update_alias_points_alias_at_new_key(kms, key, alias_name):
    new = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    old_blob = kms.encrypt(KeyId=alias_name, Plaintext=b"old")["CiphertextBlob"]
    kms.update_alias(AliasName=alias_name, TargetKeyId=new["Arn"])
    assert kms.encrypt(KeyId=alias_name, Plaintext=b"x")["KeyId"] == new["Arn"]
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []
    assert [a["AliasName"] for a in kms.list_aliases(KeyId=new["KeyId"])["Aliases"]] == [alias_name]
    # Ciphertexts made through the alias still name the old key.
    assert kms.decrypt(CiphertextBlob=old_blob)["KeyId"] == key["Arn"]
    expect_error(kms.decrypt, "IncorrectKeyException", CiphertextBlob=old_blob, KeyId=alias_name)


def test_update_alias_of_missing_alias_is_not_found(kms, key):
    expect_error(
        kms.update_alias,
        "NotFoundException",
        message=f"Alias {alias_arn('alias/e2e-never-made')} is not found.",
        AliasName="alias/e2e-never-made",
        TargetKeyId=key["KeyId"],
    )


def test_delete_alias_removes_it_and_second_delete_is_not_found(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    kms.delete_alias(AliasName=alias_name)
    expect_error(kms.describe_key, "NotFoundException", message=f"Alias {alias_arn(alias_name)} is not found.", KeyId=alias_name)
    expect_error(kms.delete_alias, "NotFoundException", message=f"Alias {alias_arn(alias_name)} is not found.", AliasName=alias_name)
    # The key itself is untouched.
    assert kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_alias_names_are_case_sensitive(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    expect_error(kms.describe_key, "NotFoundException", KeyId=alias_name.upper().replace("ALIAS/", "alias/"))


def test_key_only_operations_refuse_alias_arn(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    expect_error(kms.disable_key, "NotFoundException", message="Invalid arn", KeyId=alias_arn(alias_name))
    expect_error(kms.get_key_policy, "NotFoundException", KeyId=alias_name, PolicyName="default")


# --- tags ----------------------------------------------------------------


def test_create_key_with_tags_lists_them(kms):
    tags = [{"TagKey": "team", "TagValue": "crypto"}, {"TagKey": "env", "TagValue": "test"}]
    kid = kms.create_key(Tags=tags)["KeyMetadata"]["KeyId"]
    resp = kms.list_resource_tags(KeyId=kid)
    assert resp["Tags"] == tags
    assert resp["Truncated"] is False


def test_tag_resource_adds_tags_and_retag_replaces_value(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}])
    kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "a", "TagValue": "replaced"}])
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]}
    assert tags == {"a": "replaced", "b": "2"}


def test_untag_resource_removes_named_tags_and_ignores_missing_ones(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "a", "TagValue": "1"}, {"TagKey": "b", "TagValue": "2"}])
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["a", "never-there"])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "b", "TagValue": "2"}]
    kms.untag_resource(KeyId=key["KeyId"], TagKeys=["never-there"])
    assert kms.list_resource_tags(KeyId=key["KeyId"])["Tags"] == [{"TagKey": "b", "TagValue": "2"}]


def test_tag_resource_with_aws_prefix_is_tag_exception(kms, key):
    expect_error(kms.tag_resource, "TagException", KeyId=key["KeyId"], Tags=[{"TagKey": "aws:x", "TagValue": "1"}])


def test_tag_resource_on_pending_deletion_key_is_kms_invalid_state(kms, key):
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(kms.tag_resource, "KMSInvalidStateException", KeyId=key["KeyId"], Tags=[{"TagKey": "a", "TagValue": "1"}])


def test_tag_resource_on_unknown_key_is_not_found(kms):
    expect_error(
        kms.tag_resource,
        "NotFoundException",
        KeyId="00000000-0000-0000-0000-000000000000",
        Tags=[{"TagKey": "a", "TagValue": "1"}],
    )


def test_list_resource_tags_pages_with_limit(kms, key):
    tags = [{"TagKey": f"k{i}", "TagValue": str(i)} for i in range(5)]
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags)
    got, kwargs = [], {"KeyId": key["KeyId"], "Limit": 2}
    for _ in range(10):
        resp = kms.list_resource_tags(**kwargs)
        got += resp["Tags"]
        if not resp["Truncated"]:
            break
        kwargs["Marker"] = resp["NextMarker"]
    assert got == tags


# --- key policy ------------------------------------------------------------


def test_get_key_policy_returns_default_policy_for_key_created_without_one(kms, key):
    resp = kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")
    assert resp["PolicyName"] == "default"
    assert json.loads(resp["Policy"]) == {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def test_get_key_policy_without_policy_name_returns_default_policy(kms, key):
    assert kms.get_key_policy(KeyId=key["Arn"])["PolicyName"] == "default"


POLICY_TEXT = (
    '{ "Version":"2012-10-17",\n\t"Statement": [{"Sid":"x", "Effect":"Allow",'
    '  "Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}] }'
)


def test_get_key_policy_returns_policy_given_to_create_key_verbatim(kms):
    kid = kms.create_key(Policy=POLICY_TEXT)["KeyMetadata"]["KeyId"]
    assert kms.get_key_policy(KeyId=kid, PolicyName="default")["Policy"] == POLICY_TEXT


def test_put_key_policy_then_get_key_policy_returns_text_verbatim(kms, key):
    kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=POLICY_TEXT)
    assert kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == POLICY_TEXT


def test_put_key_policy_with_malformed_json_is_malformed_policy_document(kms, key):
    expect_error(kms.put_key_policy, "MalformedPolicyDocumentException", KeyId=key["KeyId"], PolicyName="default", Policy="{not json")


def test_list_key_policies_returns_only_default(kms, key):
    resp = kms.list_key_policies(KeyId=key["KeyId"])
    assert resp["PolicyNames"] == ["default"]
    assert resp["Truncated"] is False


def test_get_key_policy_of_unknown_key_is_not_found(kms):
    expect_error(kms.get_key_policy, "NotFoundException", KeyId="11111111-2222-3333-4444-555555555555", PolicyName="default")


# --- rotation ----------------------------------------------------------------


def test_key_rotation_is_off_for_a_new_key(kms, key):
    resp = kms.get_key_rotation_status(KeyId=key["KeyId"])
    assert resp["KeyRotationEnabled"] is False
    assert "NextRotationDate" not in resp


def test_enable_key_rotation_defaults_to_365_days_and_disable_turns_it_off(kms, key):
    kms.enable_key_rotation(KeyId=key["KeyId"])
    resp = kms.get_key_rotation_status(KeyId=key["Arn"])
    assert resp["KeyRotationEnabled"] is True
    assert resp["KeyId"] == key["Arn"]
    assert resp["RotationPeriodInDays"] == 365
    expected = key["CreationDate"] + dt.timedelta(days=365)
    assert abs((resp["NextRotationDate"] - expected).total_seconds()) < 60
    kms.disable_key_rotation(KeyId=key["KeyId"])
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is False


def test_enable_key_rotation_with_custom_period(kms, key):
    kms.enable_key_rotation(KeyId=key["KeyId"], RotationPeriodInDays=90)
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["RotationPeriodInDays"] == 90


def test_enable_key_rotation_on_disabled_key_is_disabled_exception(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(kms.enable_key_rotation, "DisabledException", message=f"{key['Arn']} is disabled.", KeyId=key["KeyId"])


def test_enable_key_rotation_with_period_below_90_is_validation_exception(kms_novalidate, key):
    expect_error(kms_novalidate.enable_key_rotation, "ValidationException", KeyId=key["KeyId"], RotationPeriodInDays=89)
