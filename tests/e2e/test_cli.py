"""The aws CLI (v1) end to end, configured only through the environment
(AWS_SHARED_CREDENTIALS_FILE, AWS_PROFILE, AWS_DEFAULT_REGION,
AWS_ENDPOINT_URL, an empty AWS_CONFIG_FILE)."""

import base64

from conftest import DEFAULT_ACCOUNT, REGION

# aws CLI v1 exits 255 when the service answers with an error (v2: 254).
CLIENT_ERROR_EXIT = 255


def ok(res):
    assert res.returncode == 0, (res.returncode, res.stdout, res.stderr)
    return res


def test_cli_create_key_prints_key_metadata(aws):
    md = ok(aws("kms", "create-key", "--description", "from the cli")).json()["KeyMetadata"]
    assert md["Description"] == "from the cli"
    assert md["KeyState"] == "Enabled"
    assert md["Arn"] == f"arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:key/{md['KeyId']}"


def test_cli_encrypt_fileb_then_decrypt_round_trips(aws, tmp_path):
    kid = ok(aws("kms", "create-key")).json()["KeyMetadata"]["KeyId"]
    plain = bytes(range(256))
    (tmp_path / "plain.bin").write_bytes(plain)
    enc = ok(
        aws(
            "kms", "encrypt", "--key-id", kid, "--plaintext", f"fileb://{tmp_path / 'plain.bin'}",
            "--encryption-context", "purpose=e2e,stage=cli",
        )
    ).json()
    assert enc["KeyId"].endswith(kid)
    (tmp_path / "ct.bin").write_bytes(base64.b64decode(enc["CiphertextBlob"]))
    out = ok(
        aws(
            "kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct.bin'}",
            "--encryption-context", "stage=cli,purpose=e2e",
            "--output", "text", "--query", "Plaintext",
        )
    ).stdout.strip()
    assert base64.b64decode(out) == plain


def test_cli_decrypt_with_wrong_context_fails_with_invalid_ciphertext(aws, tmp_path):
    kid = ok(aws("kms", "create-key")).json()["KeyMetadata"]["KeyId"]
    (tmp_path / "p").write_bytes(b"secret")
    ct = ok(aws("kms", "encrypt", "--key-id", kid, "--plaintext", f"fileb://{tmp_path / 'p'}",
                "--output", "text", "--query", "CiphertextBlob")).stdout.strip()
    (tmp_path / "ct").write_bytes(base64.b64decode(ct))
    res = aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'ct'}", "--encryption-context", "a=b")
    assert res.returncode == CLIENT_ERROR_EXIT
    assert "An error occurred (InvalidCiphertextException) when calling the Decrypt operation" in res.stderr


def test_cli_create_alias_and_list_aliases(aws):
    kid = ok(aws("kms", "create-key")).json()["KeyMetadata"]["KeyId"]
    ok(aws("kms", "create-alias", "--alias-name", "alias/cli-e2e", "--target-key-id", kid))
    aliases = ok(aws("kms", "list-aliases", "--key-id", kid)).json()["Aliases"]
    assert [(a["AliasName"], a["TargetKeyId"]) for a in aliases] == [("alias/cli-e2e", kid)]
    all_aliases = ok(aws("kms", "list-aliases")).json()["Aliases"]
    assert "alias/cli-e2e" in [a["AliasName"] for a in all_aliases]
    md = ok(aws("kms", "describe-key", "--key-id", "alias/cli-e2e")).json()["KeyMetadata"]
    assert md["KeyId"] == kid


def test_cli_generate_data_key_gives_32_byte_key_that_decrypts(aws, tmp_path):
    kid = ok(aws("kms", "create-key")).json()["KeyMetadata"]["KeyId"]
    dk = ok(aws("kms", "generate-data-key", "--key-id", kid, "--key-spec", "AES_256")).json()
    plain = base64.b64decode(dk["Plaintext"])
    assert len(plain) == 32
    (tmp_path / "dk.bin").write_bytes(base64.b64decode(dk["CiphertextBlob"]))
    out = ok(aws("kms", "decrypt", "--ciphertext-blob", f"fileb://{tmp_path / 'dk.bin'}",
                 "--output", "text", "--query", "Plaintext")).stdout.strip()
    assert base64.b64decode(out) == plain


def test_cli_list_keys_paginates_through_everything(aws):
    made = {ok(aws("kms", "create-key")).json()["KeyMetadata"]["KeyId"] for _ in range(3)}
    keys = ok(aws("kms", "list-keys", "--page-size", "1")).json()["Keys"]
    ids = [k["KeyId"] for k in keys]
    assert len(ids) == len(set(ids))
    assert made <= set(ids)


def test_cli_describe_key_of_missing_alias_exits_255_with_aws_error_text(aws):
    res = aws("kms", "describe-key", "--key-id", "alias/cli-missing")
    assert res.returncode == CLIENT_ERROR_EXIT
    assert res.stdout == ""
    assert res.stderr.strip() == (
        "An error occurred (NotFoundException) when calling the DescribeKey operation: "
        f"Alias arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:alias/cli-missing is not found."
    )


def test_cli_describe_key_of_unknown_key_id_reports_not_found(aws):
    kid = "0badc0de-0000-4000-8000-000000000000"
    res = aws("kms", "describe-key", "--key-id", kid)
    assert res.returncode == CLIENT_ERROR_EXIT
    assert (
        "An error occurred (NotFoundException) when calling the DescribeKey operation: "
        f"Key 'arn:aws:kms:{REGION}:{DEFAULT_ACCOUNT}:key/{kid}' does not exist"
    ) in res.stderr


def test_cli_with_wrong_secret_reports_invalid_signature(aws, tmp_path, server):
    akid, _ = server.profile_credentials()
    creds = tmp_path / "bad-credentials"
    creds.write_text(f"[ferrokms]\naws_access_key_id = {akid}\naws_secret_access_key = {'x' * 40}\n")
    res = aws("kms", "list-keys", env_extra={"AWS_SHARED_CREDENTIALS_FILE": str(creds)})
    assert res.returncode == CLIENT_ERROR_EXIT
    assert "An error occurred (InvalidSignatureException) when calling the ListKeys operation" in res.stderr


def test_cli_generate_random(aws):
    out = ok(aws("kms", "generate-random", "--number-of-bytes", "48", "--output", "text", "--query", "Plaintext")).stdout
    assert len(base64.b64decode(out.strip())) == 48
