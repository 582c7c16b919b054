"""Authentication, the secure first start, dev mode and account isolation."""

import os
import stat

from conftest import DEFAULT_ACCOUNT, DEV_ACCOUNT, REGION, dump_database, expect_error, fresh_account


# --- secure first start -------------------------------------------------------


def test_first_start_writes_credentials_file_mode_0600_with_profile_ferrokms(server):
    path = server.credentials_file
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    akid, secret = server.profile_credentials("ferrokms")
    assert len(akid) == 20 and akid.startswith("AKIA") and akid.isalnum() and akid.isupper()
    assert len(secret) == 40


def test_first_start_profile_credentials_act_as_default_account_root(server):
    c = server.client()
    md = c.create_key()["KeyMetadata"]
    assert md["AWSAccountId"] == DEFAULT_ACCOUNT
    assert md["Arn"].startswith(f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:key/")


def test_wrong_secret_key_is_invalid_signature_exception(server):
    akid, secret = server.profile_credentials()
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    c = server.client(akid, wrong)
    e = expect_error(c.list_keys, "InvalidSignatureException")
    assert "signature" in e.response["Error"]["Message"].lower()


def test_unknown_akia_access_key_is_unrecognized_client_exception(server):
    c = server.client("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    expect_error(
        c.list_keys,
        "UnrecognizedClientException",
        message="The security token included in the request is invalid.",
    )


def test_secure_mode_refuses_unknown_non_akia_access_key(server):
    for akid in ("test", "123456789012"):
        expect_error(server.client(akid, "test").list_keys, "UnrecognizedClientException")


def test_database_and_root_key_file_do_not_hold_secret_access_key_in_clear(server):
    server.client().create_key()  # make sure something was written
    _, secret = server.profile_credentials()
    data = server.data_dir
    files = [p for p in data.iterdir() if p.is_file() and p.name != "credentials"]
    assert any(p.name == "root.key" for p in files)
    for p in files:
        assert secret.encode() not in p.read_bytes(), p
    if server.store_url:
        dump = dump_database(server.store_url)
        assert b"ferrokms_objects" in dump
        assert secret.encode() not in dump
    else:
        assert any(p.name.startswith("ferrokms.sqlite") for p in files)


def test_second_start_on_same_data_dir_keeps_credentials(server_factory):
    s = server_factory()
    before = s.credentials_file.read_bytes()
    akid, secret = s.profile_credentials()
    s.restart()
    assert s.credentials_file.read_bytes() == before
    assert s.client(akid, secret).list_keys()["Keys"] == []


# --- dev mode -----------------------------------------------------------------


def test_dev_mode_unknown_access_key_acts_as_account_000000000000(dev_server):
    md = dev_server.client("test", "test").create_key()["KeyMetadata"]
    assert md["AWSAccountId"] == DEV_ACCOUNT
    assert md["Arn"] == f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:key/{md['KeyId']}"


def test_dev_mode_twelve_digit_access_key_acts_as_that_account(dev_server):
    md = dev_server.client("123456789012", "whatever").create_key()["KeyMetadata"]
    assert md["AWSAccountId"] == "123456789012"
    assert md["Arn"].startswith(f"arn:aws:kms:{REGION}:123456789012:key/")


def test_dev_mode_refuses_unknown_akia_shaped_access_key(dev_server):
    expect_error(dev_server.client("AKIAIOSFODNN7EXAMPLE", "x").list_keys, "UnrecognizedClientException")
    expect_error(dev_server.client("ASIAIOSFODNN7EXAMPLE", "x").list_keys, "UnrecognizedClientException")


def test_dev_mode_accounts_are_isolated(dev_server):
    a = dev_server.client(fresh_account(), "x")
    b = dev_server.client(fresh_account(), "x")
    kid = a.create_key()["KeyMetadata"]["KeyId"]
    assert b.list_keys()["Keys"] == []
    expect_error(b.describe_key, "NotFoundException", KeyId=kid)


def test_dev_account_option_changes_default_dev_account(server_factory):
    s = server_factory(in_memory=True, dev=True, dev_account="210987654321")
    md = s.client("test", "test").create_key()["KeyMetadata"]
    assert md["AWSAccountId"] == "210987654321"
    assert ":210987654321:key/" in md["Arn"]


def test_dev_mode_on_data_dir_still_verifies_issued_keys(server_factory):
    s = server_factory(dev=True)
    akid, secret = s.profile_credentials()
    assert s.client(akid, secret).create_key()["KeyMetadata"]["AWSAccountId"] == DEFAULT_ACCOUNT
    expect_error(s.client(akid, "wrong" * 8).list_keys, "InvalidSignatureException")


# --- cross-account access -------------------------------------------------------


def test_encrypt_with_another_accounts_key_arn_is_access_denied(dev_server):
    owner_acct, other_acct = fresh_account(), fresh_account()
    owner = dev_server.client(owner_acct, "x")
    other = dev_server.client(other_acct, "x")
    md = owner.create_key()["KeyMetadata"]
    expect_error(
        other.encrypt,
        "AccessDeniedException",
        message=f"User: arn:aws:iam::{other_acct}:root is not authorized to perform: kms:Encrypt on resource: "
        f"{md['Arn']} because no resource-based policy allows the kms:Encrypt action",
        KeyId=md["Arn"],
        Plaintext=b"x",
    )


def test_describe_key_with_another_accounts_key_arn_is_access_denied(dev_server):
    owner_acct, other_acct = fresh_account(), fresh_account()
    md = dev_server.client(owner_acct, "x").create_key()["KeyMetadata"]
    e = expect_error(dev_server.client(other_acct, "x").describe_key, "AccessDeniedException", KeyId=md["Arn"])
    assert "kms:DescribeKey" in e.response["Error"]["Message"]


def test_decrypt_of_another_accounts_ciphertext_is_access_denied(dev_server):
    owner_acct, other_acct = fresh_account(), fresh_account()
    owner = dev_server.client(owner_acct, "x")
    md = owner.create_key()["KeyMetadata"]
    blob = owner.encrypt(KeyId=md["KeyId"], Plaintext=b"mine")["CiphertextBlob"]
    expect_error(dev_server.client(other_acct, "x").decrypt, "AccessDeniedException", CiphertextBlob=blob)
