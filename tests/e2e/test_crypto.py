"""Cryptographic operations through boto3: Encrypt, Decrypt, ReEncrypt,
GenerateDataKey, GenerateDataKeyWithoutPlaintext, GenerateRandom, DryRun."""

import pytest

from conftest import DEFAULT_ACCOUNT, REGION, expect_error

DRY_RUN_MESSAGE = "The request would have succeeded, but the DryRun option is set."


def test_encrypt_then_decrypt_round_trips_and_names_key_arn(kms, key):
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello kms")
    assert enc["KeyId"] == key["Arn"]
    assert enc["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert isinstance(enc["CiphertextBlob"], bytes) and b"hello kms" not in enc["CiphertextBlob"]
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"])
    assert dec["Plaintext"] == b"hello kms"
    assert dec["KeyId"] == key["Arn"]
    assert dec["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"


def test_encrypt_twice_gives_different_ciphertexts(kms, key):
    a = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    b = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"same")["CiphertextBlob"]
    assert a != b


def test_encrypt_and_decrypt_accept_key_id_key_arn_alias_name_and_alias_arn(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    alias_arn = f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:{alias_name}"
    for ident in (key["KeyId"], key["Arn"], alias_name, alias_arn):
        enc = kms.encrypt(KeyId=ident, Plaintext=ident.encode())
        assert enc["KeyId"] == key["Arn"], ident
        dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], KeyId=ident)
        assert dec["Plaintext"] == ident.encode(), ident
        assert dec["KeyId"] == key["Arn"], ident


def test_encrypt_of_4096_bytes_succeeds_and_4097_is_validation_exception(kms_novalidate, key):
    big = bytes(range(256)) * 16
    enc = kms_novalidate.encrypt(KeyId=key["KeyId"], Plaintext=big)
    assert kms_novalidate.decrypt(CiphertextBlob=enc["CiphertextBlob"])["Plaintext"] == big
    expect_error(kms_novalidate.encrypt, "ValidationException", KeyId=key["KeyId"], Plaintext=big + b"x")


def test_decrypt_with_the_same_encryption_context_in_another_order_succeeds(kms, key):
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={"a": "1", "b": "2", "c": "3"})
    dec = kms.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"c": "3", "a": "1", "b": "2"})
    assert dec["Plaintext"] == b"ctx"


@pytest.mark.parametrize(
    "ctx",
    [None, {"a": "1"}, {"a": "1", "b": "3"}, {"a": "1", "b": "2", "c": "3"}, {"A": "1", "b": "2"}],
    ids=["missing", "subset", "other-value", "superset", "other-case"],
)
def test_decrypt_with_different_encryption_context_is_invalid_ciphertext_without_message(kms, key, ctx):
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"ctx", EncryptionContext={"a": "1", "b": "2"})
    kwargs = {"CiphertextBlob": enc["CiphertextBlob"]}
    if ctx is not None:
        kwargs["EncryptionContext"] = ctx
    e = expect_error(kms.decrypt, "InvalidCiphertextException", **kwargs)
    assert e.response["Error"].get("Message", "") == ""


def test_decrypt_with_encryption_context_when_none_was_used_is_invalid_ciphertext(kms, key):
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=enc["CiphertextBlob"], EncryptionContext={"a": "b"})


def test_decrypt_of_flipped_ciphertext_byte_is_invalid_ciphertext_without_message(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"integrity matters")["CiphertextBlob"]
    # The version byte, and every byte of nonce, ciphertext and tag (the
    # 12 + 17 + 16 bytes at the end).
    positions = [0] + list(range(len(blob) - 45, len(blob)))
    for pos in positions:
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        e = expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=bytes(bad))
        assert e.response["Error"].get("Message", "") == "", pos


def test_decrypt_of_truncated_or_garbage_ciphertext_is_invalid_ciphertext(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    for bad in (blob[:-1], blob[: len(blob) // 2], b"\x00" * 64, b"x"):
        expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=bad)


def test_decrypt_with_key_id_naming_another_key_is_incorrect_key_exception(kms, key):
    other = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    expect_error(
        kms.decrypt,
        "IncorrectKeyException",
        message="The key ID in the request does not identify a CMK that can perform this operation.",
        CiphertextBlob=blob,
        KeyId=other["KeyId"],
    )


def test_decrypt_under_disabled_key_is_disabled_exception(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(kms.decrypt, "DisabledException", message=f"{key['Arn']} is disabled.", CiphertextBlob=blob)


def test_decrypt_under_pending_deletion_key_is_kms_invalid_state(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    expect_error(kms.decrypt, "KMSInvalidStateException", message=f"{key['Arn']} is pending deletion.", CiphertextBlob=blob)


def test_re_encrypt_to_another_key_then_decrypt_gives_original_plaintext(kms, key):
    dest = kms.create_key()["KeyMetadata"]
    enc = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"moving", EncryptionContext={"from": "src"})
    re = kms.re_encrypt(
        CiphertextBlob=enc["CiphertextBlob"],
        SourceEncryptionContext={"from": "src"},
        DestinationKeyId=dest["KeyId"],
        DestinationEncryptionContext={"to": "dst"},
    )
    assert re["SourceKeyId"] == key["Arn"]
    assert re["KeyId"] == dest["Arn"]
    assert re["SourceEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    assert re["DestinationEncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    dec = kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"to": "dst"})
    assert dec["Plaintext"] == b"moving"
    assert dec["KeyId"] == dest["Arn"]
    expect_error(kms.decrypt, "InvalidCiphertextException", CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"from": "src"})


def test_re_encrypt_with_wrong_source_key_id_is_incorrect_key_exception(kms, key):
    dest = kms.create_key()["KeyMetadata"]
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    expect_error(kms.re_encrypt, "IncorrectKeyException", CiphertextBlob=blob, SourceKeyId=dest["KeyId"], DestinationKeyId=dest["KeyId"])


def test_re_encrypt_to_alias_names_destination_key_arn(kms, key, alias_name):
    dest = kms.create_key()["KeyMetadata"]
    kms.create_alias(AliasName=alias_name, TargetKeyId=dest["KeyId"])
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"abc")["CiphertextBlob"]
    re = kms.re_encrypt(CiphertextBlob=blob, SourceKeyId=key["Arn"], DestinationKeyId=alias_name)
    assert re["KeyId"] == dest["Arn"]
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"])["Plaintext"] == b"abc"


@pytest.mark.parametrize("spec,size", [("AES_256", 32), ("AES_128", 16)])
def test_generate_data_key_with_key_spec_gives_plaintext_of_spec_size(kms, key, spec, size):
    dk = kms.generate_data_key(KeyId=key["KeyId"], KeySpec=spec)
    assert len(dk["Plaintext"]) == size
    assert dk["KeyId"] == key["Arn"]
    dec = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])
    assert dec["Plaintext"] == dk["Plaintext"]


@pytest.mark.parametrize("n", [1, 64, 1024])
def test_generate_data_key_with_number_of_bytes_gives_that_many(kms, key, n):
    dk = kms.generate_data_key(KeyId=key["KeyId"], NumberOfBytes=n, EncryptionContext={"k": "v"})
    assert len(dk["Plaintext"]) == n
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] == dk["Plaintext"]


def test_generate_data_key_with_both_or_neither_size_is_validation_exception(kms_novalidate, key):
    expect_error(kms_novalidate.generate_data_key, "ValidationException", KeyId=key["KeyId"])
    expect_error(kms_novalidate.generate_data_key, "ValidationException", KeyId=key["KeyId"], KeySpec="AES_256", NumberOfBytes=32)


def test_generate_data_key_without_plaintext_decrypts_to_32_bytes(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    dk = kms.generate_data_key_without_plaintext(KeyId=alias_name, KeySpec="AES_256")
    assert "Plaintext" not in dk
    assert dk["KeyId"] == key["Arn"]
    dec = kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])
    assert len(dec["Plaintext"]) == 32


def test_generate_data_key_on_disabled_key_is_disabled_exception(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(kms.generate_data_key, "DisabledException", message=f"{key['Arn']} is disabled.", KeyId=key["KeyId"], KeySpec="AES_256")


@pytest.mark.parametrize("n", [1, 32, 1024])
def test_generate_random_returns_requested_number_of_bytes(kms, n):
    out = kms.generate_random(NumberOfBytes=n)["Plaintext"]
    assert len(out) == n


def test_generate_random_gives_different_bytes_each_call(kms):
    assert kms.generate_random(NumberOfBytes=32)["Plaintext"] != kms.generate_random(NumberOfBytes=32)["Plaintext"]


def test_generate_random_of_zero_bytes_is_server_validation_exception(kms_novalidate):
    expect_error(
        kms_novalidate.generate_random,
        "ValidationException",
        message="1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        NumberOfBytes=0,
    )


def test_generate_random_of_1025_bytes_is_server_validation_exception(kms_novalidate):
    expect_error(
        kms_novalidate.generate_random,
        "ValidationException",
        message="1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value less than or equal to 1024",
        NumberOfBytes=1025,
    )


def test_encrypt_with_dry_run_is_dry_run_operation_exception_400(kms, key):
    expect_error(kms.encrypt, "DryRunOperationException", status=400, message=DRY_RUN_MESSAGE, KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)


def test_decrypt_with_dry_run_is_dry_run_operation_exception_400(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(kms.decrypt, "DryRunOperationException", status=400, CiphertextBlob=blob, DryRun=True)


def test_generate_data_key_with_dry_run_is_dry_run_operation_exception_400(kms, key):
    expect_error(kms.generate_data_key, "DryRunOperationException", status=400, KeyId=key["KeyId"], KeySpec="AES_256", DryRun=True)
    expect_error(
        kms.generate_data_key_without_plaintext, "DryRunOperationException", status=400, KeyId=key["KeyId"], KeySpec="AES_256", DryRun=True
    )


def test_re_encrypt_with_dry_run_is_dry_run_operation_exception_400(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(kms.re_encrypt, "DryRunOperationException", status=400, CiphertextBlob=blob, DestinationKeyId=key["KeyId"], DryRun=True)


def test_dry_run_on_disabled_key_reports_disabled_not_dry_run(kms, key):
    kms.disable_key(KeyId=key["KeyId"])
    expect_error(kms.encrypt, "DisabledException", KeyId=key["KeyId"], Plaintext=b"x", DryRun=True)


def test_encrypt_under_unknown_key_is_not_found(kms):
    expect_error(
        kms.encrypt,
        "NotFoundException",
        message=f"Alias arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:alias/missing-e2e is not found.",
        KeyId="alias/missing-e2e",
        Plaintext=b"x",
    )


def test_encrypt_with_key_arn_of_another_region_is_not_found_invalid_arn_naming_it(server, key):
    west = server.client(region="eu-west-1")
    expect_error(west.encrypt, "NotFoundException", message="Invalid arn us-east-1", KeyId=key["Arn"], Plaintext=b"x")


def test_empty_encryption_context_is_the_same_as_none(kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={})["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"y")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={})["Plaintext"] == b"y"


def test_encrypt_of_empty_plaintext_is_server_validation_exception(kms_novalidate, key):
    expect_error(
        kms_novalidate.encrypt,
        "ValidationException",
        message="1 validation error detected: Value at 'plaintext' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        KeyId=key["KeyId"],
        Plaintext=b"",
    )


def test_generate_data_key_of_zero_bytes_is_server_validation_exception(kms_novalidate, key):
    expect_error(
        kms_novalidate.generate_data_key,
        "ValidationException",
        message="1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1",
        KeyId=key["KeyId"],
        NumberOfBytes=0,
    )


def test_encrypt_with_asymmetric_algorithm_on_symmetric_key_is_invalid_key_usage(kms, key):
    expect_error(kms.encrypt, "InvalidKeyUsageException", KeyId=key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1")


def test_generate_data_key_and_decrypt_accept_alias_arn(kms, key, alias_name):
    kms.create_alias(AliasName=alias_name, TargetKeyId=key["KeyId"])
    arn = f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:{alias_name}"
    dk = kms.generate_data_key(KeyId=arn, NumberOfBytes=48)
    assert dk["KeyId"] == key["Arn"]
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], KeyId=arn)["Plaintext"] == dk["Plaintext"]


def test_decrypt_in_another_region_is_access_denied_ciphertext_refers_to_missing_key(server, kms, key):
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    west = server.client(region="eu-west-2")
    expect_error(
        west.decrypt,
        "AccessDeniedException",
        message="The ciphertext refers to a customer master key that does not exist, does not exist in this region, "
        "or you are not allowed to access.",
        CiphertextBlob=blob,
    )
