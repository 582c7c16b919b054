"""AWS's exact answers (issue #19 items 5 and 6): the error codes, texts and
statuses real AWS KMS gives, as suites recorded against it expect them.
Each test is named after the AWS rule it checks."""

import pytest

from conftest import expect_error

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"


@pytest.fixture(scope="module")
def kms(srv):
    return srv.client()


@pytest.fixture(scope="module")
def kms_raw(srv):
    """Without botocore's parameter checks: the server's validation answers."""
    return srv.client(validate=False)


@pytest.fixture(scope="module")
def west(srv):
    return srv.client(region=OTHER_REGION)


@pytest.fixture
def key(kms):
    return kms.create_key()["KeyMetadata"]


def tags(*keys):
    return [{"TagKey": k, "TagValue": "v"} for k in keys]


def model_enum(kms, shape):
    return kms.meta.service_model.shape_for(shape).enum


def mrk(kms):
    return kms.create_key(MultiRegion=True)["KeyMetadata"]


# --- tags: CreateKey, TagResource, ReplicateKey ---------------------------


def tag_calls(kms, key, region):
    """The three operations that take tags, each as a function of its tags."""
    return {
        "CreateKey": lambda t: kms.create_key(Tags=t),
        "TagResource": lambda t: kms.tag_resource(KeyId=key["KeyId"], Tags=t),
        "ReplicateKey": lambda t: kms.replicate_key(KeyId=mrk(kms)["KeyId"], ReplicaRegion=region, Tags=t),
    }


@pytest.mark.parametrize("op", ["CreateKey", "TagResource", "ReplicateKey"])
def test_a_tag_key_given_twice_is_tag_exception_duplicate_tag_keys(kms, key, op):
    call = tag_calls(kms, key, OTHER_REGION)[op]
    expect_error(lambda: call(tags("team", "env", "team")), "TagException", message="Duplicate tag keys")


@pytest.mark.parametrize("op", ["CreateKey", "TagResource", "ReplicateKey"])
@pytest.mark.parametrize("reserved", ["aws:team", "AWS:team", "Aws:team", "aWs:"])
def test_tag_keys_beginning_with_aws_in_any_case_are_reserved(kms, key, op, reserved):
    call = tag_calls(kms, key, OTHER_REGION)[op]
    expect_error(lambda: call(tags("ok", reserved)), "TagException", message="Tags beginning with aws: are reserved")


def test_a_tag_key_merely_containing_aws_is_not_reserved(kms, key):
    kms.tag_resource(KeyId=key["KeyId"], Tags=tags("team-aws:x", "awsome"))
    got = kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]
    assert [t["TagKey"] for t in got] == ["team-aws:x", "awsome"]


@pytest.mark.parametrize("op", ["CreateKey", "TagResource", "ReplicateKey"])
def test_fifty_one_tags_in_one_request_are_tag_exception_too_many_tags(kms, key, op):
    call = tag_calls(kms, key, OTHER_REGION)[op]
    expect_error(lambda: call(tags(*(f"k{i}" for i in range(51)))), "TagException", message="Too many tags")


def test_the_fifty_first_tag_of_a_key_is_tag_exception_too_many_tags(kms):
    m = kms.create_key(Tags=tags(*(f"k{i}" for i in range(50))))["KeyMetadata"]
    expect_error(kms.tag_resource, "TagException", message="Too many tags", KeyId=m["KeyId"], Tags=tags("k50"))
    # Re-tagging keys it already has adds none.
    kms.tag_resource(KeyId=m["KeyId"], Tags=tags("k0", "k49"))
    assert len(kms.list_resource_tags(KeyId=m["KeyId"], Limit=50)["Tags"]) == 50


def test_tags_are_checked_before_the_key_is_looked_up(kms):
    missing = "00000000-0000-0000-0000-000000000000"
    expect_error(kms.tag_resource, "TagException", message="Duplicate tag keys", KeyId=missing, Tags=tags("a", "a"))


# --- Decrypt / ReEncrypt with a key that cannot have made the ciphertext --


INCORRECT_KEY = "The key ID in the request does not identify a CMK that can perform this operation."


@pytest.fixture(scope="module")
def hmac_key(kms):
    return kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]


def test_decrypt_naming_an_hmac_key_is_incorrect_key_before_any_key_usage_check(kms, key, hmac_key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(kms.decrypt, "IncorrectKeyException", message=INCORRECT_KEY, CiphertextBlob=blob, KeyId=hmac_key["Arn"])


def test_re_encrypt_naming_an_hmac_source_key_is_incorrect_key(kms, key, hmac_key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(
        kms.re_encrypt, "IncorrectKeyException", message=INCORRECT_KEY,
        CiphertextBlob=blob, SourceKeyId=hmac_key["KeyId"], DestinationKeyId=key["KeyId"],
    )


def test_decrypt_naming_another_symmetric_key_is_incorrect_key(kms, key):
    other = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(kms.decrypt, "IncorrectKeyException", message=INCORRECT_KEY, CiphertextBlob=blob, KeyId=other["KeyId"])


# --- DryRun --------------------------------------------------------------


DRY_RUN = "The request would have succeeded, but the DryRun option is set."


def test_dry_run_operation_exception_is_sent_with_http_400(kms, key):
    expect_error(kms.encrypt, "DryRunOperationException", status=400, message=DRY_RUN, KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)
    expect_error(
        kms.create_grant, "DryRunOperationException", status=400,
        KeyId=key["KeyId"], GranteePrincipal=f"arn:aws:iam::{key['AWSAccountId']}:root", Operations=["Decrypt"], DryRun=True,
    )


def test_dry_run_operation_exception_is_http_400_on_the_wire(srv, key):
    r = srv.raw("TrentService.GenerateDataKey", {"KeyId": key["KeyId"], "KeySpec": "AES_256", "DryRun": True})
    assert (r.status, r.error_type) == (400, "DryRunOperationException"), r


# --- aliases -------------------------------------------------------------


def test_an_alias_name_with_a_colon_is_validation_exception_invalid_characters(kms, key):
    expect_error(
        kms.create_alias, "ValidationException", message="alias/app:prod contains invalid characters for an alias",
        AliasName="alias/app:prod", TargetKeyId=key["KeyId"],
    )


def test_alias_names_of_letters_digits_slash_underscore_and_hyphen_are_accepted(kms, key):
    kms.create_alias(AliasName="alias/App_1/prod-2", TargetKeyId=key["KeyId"])
    kms.delete_alias(AliasName="alias/App_1/prod-2")


ALIAS_PREFIX = 'Alias must start with the prefix "alias/". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html'


def test_delete_alias_without_the_alias_prefix_answers_as_create_alias(kms, key):
    create = expect_error(kms.create_alias, "ValidationException", AliasName="app", TargetKeyId=key["KeyId"])
    delete = expect_error(kms.delete_alias, "ValidationException", AliasName="app")
    assert create.response["Error"]["Message"] == delete.response["Error"]["Message"] == ALIAS_PREFIX


def test_update_alias_without_the_alias_prefix_answers_as_create_alias(kms, key):
    expect_error(kms.update_alias, "ValidationException", message=ALIAS_PREFIX, AliasName="app", TargetKeyId=key["KeyId"])


def test_delete_alias_of_an_alias_that_does_not_exist_is_still_not_found(kms):
    expect_error(kms.delete_alias, "NotFoundException", AliasName="alias/never-made")


def test_the_aws_cli_shows_the_invalid_alias_characters_text(aws):
    key_id = aws("kms", "create-key").json()["KeyMetadata"]["KeyId"]
    r = aws("kms", "create-alias", "--alias-name", "alias/a:b", "--target-key-id", key_id)
    assert r.returncode != 0
    assert "(ValidationException) when calling the CreateAlias operation: alias/a:b contains invalid characters for an alias" in r.stderr, r.stderr


# --- ReplicateKey's answer -----------------------------------------------


def test_replicate_key_without_tags_answers_no_replica_tags(kms):
    out = kms.replicate_key(KeyId=mrk(kms)["KeyId"], ReplicaRegion=OTHER_REGION)
    assert "ReplicaTags" not in out


def test_replicate_key_with_tags_answers_them(kms):
    out = kms.replicate_key(KeyId=mrk(kms)["KeyId"], ReplicaRegion=OTHER_REGION, Tags=tags("side"))
    assert out["ReplicaTags"] == tags("side")


def test_replicate_key_answers_the_replica_metadata_as_aws_does_while_creating(kms, west):
    primary = mrk(kms)
    out = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)
    m = out["ReplicaKeyMetadata"]
    assert (m["KeyState"], m["Enabled"]) == ("Creating", False)
    assert m["Arn"] == primary["Arn"].replace(REGION, OTHER_REGION)
    assert m["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    # The replica is usable at once here (AWS: within seconds).
    assert west.describe_key(KeyId=m["Arn"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_replicating_a_replica_is_not_a_multi_region_primary_key(kms, west):
    primary = mrk(kms)
    replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=OTHER_REGION)["ReplicaKeyMetadata"]
    expect_error(
        west.replicate_key, "UnsupportedOperationException",
        message=f"{replica['Arn']} is not a multi-region primary key.",
        KeyId=replica["KeyId"], ReplicaRegion="ap-southeast-2",
    )


# --- AWS's message texts -------------------------------------------------


def test_a_key_arn_of_another_region_is_not_found_invalid_arn_naming_that_region(kms, west, key):
    expect_error(west.describe_key, "NotFoundException", message=f"Invalid arn {REGION}", KeyId=key["Arn"])
    expect_error(west.encrypt, "NotFoundException", message=f"Invalid arn {REGION}", KeyId=key["Arn"], Plaintext=b"x")


def test_a_malformed_key_arn_is_not_found_invalid_arn(kms):
    expect_error(kms.describe_key, "NotFoundException", message="Invalid arn", KeyId=f"arn:aws:kms:{REGION}:111122223333:key/nope")


def test_generate_random_without_number_of_bytes_is_number_of_bytes_is_required(kms):
    expect_error(kms.generate_random, "ValidationException", message="NumberOfBytes is required.")


@pytest.mark.parametrize("alg, limit", [("RSAES_OAEP_SHA_1", 214), ("RSAES_OAEP_SHA_256", 190)])
def test_rsa_plaintext_over_the_limit_names_algorithm_key_spec_and_limit(kms, alg, limit):
    k = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    kms.encrypt(KeyId=k["KeyId"], Plaintext=b"x" * limit, EncryptionAlgorithm=alg)
    expect_error(
        kms.encrypt, "ValidationException",
        message=f"Algorithm {alg} and key spec RSA_2048 cannot encrypt data larger than {limit} bytes.",
        KeyId=k["KeyId"], Plaintext=b"x" * (limit + 1), EncryptionAlgorithm=alg,
    )


@pytest.mark.parametrize("spec", ["RSA_2048", "ECC_NIST_P256", "HMAC_256"])
def test_a_non_symmetric_key_spec_without_key_usage_is_validation_exception(kms, spec):
    expect_error(
        kms.create_key, "ValidationException",
        message="You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
        KeySpec=spec,
    )


def test_a_key_usage_mismatch_names_the_usage_and_operation_not_the_key_spec(kms, hmac_key):
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    expect_error(
        kms.generate_data_key, "InvalidKeyUsageException",
        message=f"{rsa['Arn']} key usage is ENCRYPT_DECRYPT which is not valid for GenerateDataKey.",
        KeyId=rsa["KeyId"], KeySpec="AES_256",
    )
    expect_error(
        kms.encrypt, "InvalidKeyUsageException",
        message=f"{hmac_key['Arn']} key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt.",
        KeyId=hmac_key["KeyId"], Plaintext=b"x",
    )


def test_derive_shared_secret_with_an_invalid_public_key_has_an_empty_message(kms):
    k = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")["KeyMetadata"]
    expect_error(
        kms.derive_shared_secret, "ValidationException", message="",
        KeyId=k["KeyId"], KeyAgreementAlgorithm="ECDH", PublicKey=b"not a public key",
    )


@pytest.mark.parametrize(
    "op, member, shape, kw",
    [
        ("create_key", "keySpec", "KeySpec", {"KeySpec": "NOPE"}),
        ("create_key", "keyUsage", "KeyUsageType", {"KeyUsage": "NOPE"}),
        ("create_key", "origin", "OriginType", {"Origin": "NOPE"}),
        ("generate_data_key_pair", "keyPairSpec", "DataKeyPairSpec", {"KeyId": "k", "KeyPairSpec": "NOPE"}),
        ("sign", "signingAlgorithm", "SigningAlgorithmSpec", {"KeyId": "k", "Message": b"m", "SigningAlgorithm": "NOPE"}),
    ],
)
def test_validation_messages_list_enum_values_in_the_model_order(kms_raw, op, member, shape, kw):
    values = ", ".join(model_enum(kms_raw, shape))
    expect_error(
        getattr(kms_raw, op), "ValidationException",
        message=f"1 validation error detected: Value 'NOPE' at '{member}' failed to satisfy constraint: "
        f"Member must satisfy enum value set: [{values}]",
        **kw,
    )


# --- custom key stores: an account that has none --------------------------


STORE = "cks-1234567890abcdef0"


def test_describe_custom_key_stores_of_an_account_without_any_is_an_empty_list(kms):
    out = kms.describe_custom_key_stores()
    assert (out["CustomKeyStores"], out["Truncated"]) == ([], False)


@pytest.mark.parametrize(
    "op, kw",
    [
        ("describe_custom_key_stores", {"CustomKeyStoreId": STORE}),
        ("describe_custom_key_stores", {"CustomKeyStoreName": "hsm"}),
        ("connect_custom_key_store", {"CustomKeyStoreId": STORE}),
        ("disconnect_custom_key_store", {"CustomKeyStoreId": STORE}),
        ("delete_custom_key_store", {"CustomKeyStoreId": STORE}),
        ("update_custom_key_store", {"CustomKeyStoreId": STORE, "NewCustomKeyStoreName": "x"}),
        ("create_key", {"CustomKeyStoreId": STORE, "Origin": "AWS_CLOUDHSM"}),
        ("generate_random", {"CustomKeyStoreId": STORE, "NumberOfBytes": 8}),
    ],
)
def test_a_custom_key_store_that_does_not_exist_is_custom_key_store_not_found(kms, op, kw):
    expect_error(getattr(kms, op), "CustomKeyStoreNotFoundException", **kw)


def test_create_custom_key_store_of_cloudhsm_finds_no_cluster(kms):
    # No CloudHSM cluster is reachable from ferrokms (external key stores
    # are: test_custom_key_stores.py).
    expect_error(
        kms.create_custom_key_store, "CloudHsmClusterNotFoundException",
        CustomKeyStoreName="hsm", CloudHsmClusterId="cluster-234567abcde", TrustAnchorCertificate="x", KeyStorePassword="secret-pw",
    )
