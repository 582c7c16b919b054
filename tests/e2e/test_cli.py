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


# --- issue #25: set-ups that must explain themselves ---------------------------

import json
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

import conftest
from conftest import clean_env, local_server, make_client

ANSI = "\x1b["


def ferrokms_run(ferrokms_bin, *args, env_extra=None, timeout=60):
    env = clean_env()
    env.update(env_extra or {})
    return subprocess.run(
        [str(ferrokms_bin), *map(str, args)],
        env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )


def test_in_memory_start_prints_root_credentials_that_work(ferrokms_bin, tmp_path):
    """Item 8: `serve --in-memory` alone used to refuse every request and say nothing."""
    s = local_server(ferrokms_bin, tmp_path, "--in-memory")
    try:
        err = s.stderr_text()
        assert "--in-memory: created account 111122223333" in err, err
        key_id = re.search(r"aws_access_key_id = (\S+)", err).group(1)
        secret = re.search(r"aws_secret_access_key = (\S+)", err).group(1)
        assert f"--endpoint-url {s.endpoint}" in err
        kms = make_client(s.endpoint, key_id, secret)
        assert kms.create_key()["KeyMetadata"]["KeyState"] == "Enabled"
    finally:
        s.stop()


def test_dev_mode_says_why_it_refuses_aws_example_key_id(dev_server):
    """Item 9: AKIAIOSFODNN7EXAMPLE is refused under --dev with the reason
    in the error's message and in the server's log."""
    kms = dev_server.client("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    with pytest.raises(Exception) as exc:
        kms.list_keys()
    err = exc.value.response["Error"]
    assert err["Code"] == "UnrecognizedClientException"
    assert "AWS's documented example" in err["Message"], err
    assert "sign with any other id" in err["Message"]
    assert "refused an unknown access key id shaped like an AWS-issued one" in dev_server.stderr_text()


def test_user_errors_are_one_line_without_a_backtrace(ferrokms_bin, tmp_path):
    """Item 10: the right heading, the cause once, no stack backtrace even
    with RUST_BACKTRACE=1; a missing root key file says how to make one; an
    unreachable PostgreSQL names its address and the reason."""
    bt = {"RUST_BACKTRACE": "1"}
    p = ferrokms_run(ferrokms_bin, "serve", "--in-memory", "--root-key-file", tmp_path / "rk", env_extra=bt)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "backtrace" not in p.stderr.lower()
    assert f"root key file {tmp_path / 'rk'} does not exist; make one with `openssl rand -hex 32 >" in lines[0]
    assert "cannot open the data directory" not in p.stderr

    p = ferrokms_run(ferrokms_bin, "serve", "--data-dir", tmp_path / "pg", "--store",
                     "postgres://u:hunter2@127.0.0.1:1/db", env_extra=bt)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "cannot connect to PostgreSQL at postgres://u@127.0.0.1:1/db" in lines[0]
    assert "refused" in lines[0].lower()
    assert "hunter2" not in p.stderr and "backtrace" not in p.stderr.lower()
    assert not (tmp_path / "pg").exists()


@pytest.mark.skipif(bool(conftest.PG_URL), reason="a SQLite data directory")
def test_root_key_is_never_generated_beside_an_existing_database(ferrokms_bin, tmp_path):
    """Item 11: a backup restored without its root key is refused, and no
    fresh root.key appears beside it."""
    data = tmp_path / "data"
    s = local_server(ferrokms_bin, tmp_path, "--data-dir", data)
    s.stop()
    restored = tmp_path / "restored"
    restored.mkdir()
    p = ferrokms_run(ferrokms_bin, "backup", "--data-dir", data, "--to", restored / "ferrokms.sqlite")
    assert p.returncode == 0, p.stderr
    p = ferrokms_run(ferrokms_bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", restored)
    assert p.returncode == 1
    assert "listening" not in p.stdout
    assert f"root key file {restored / 'root.key'} does not exist, but the database" in p.stderr
    assert "Put that key at" in p.stderr
    assert not (restored / "root.key").exists()


@pytest.mark.skipif(bool(conftest.PG_URL), reason="a SQLite data directory")
def test_new_data_dir_is_logged_and_no_create_refuses(ferrokms_bin, tmp_path):
    """Item 12: a mistyped --data-dir is said loudly, and --no-create refuses;
    the offline tools never create one."""
    p = ferrokms_run(ferrokms_bin, "serve", "--no-create", "--data-dir", tmp_path / "typo")
    assert p.returncode == 1
    assert "data directory" in p.stderr and "does not exist; check --data-dir" in p.stderr
    assert not (tmp_path / "typo").exists()
    p = ferrokms_run(ferrokms_bin, "account", "list", "--data-dir", tmp_path / "typo")
    assert p.returncode == 1 and not (tmp_path / "typo").exists(), p.stderr

    s = local_server(ferrokms_bin, tmp_path, "--data-dir", tmp_path / "new")
    try:
        assert "WARN" in s.stderr_text() and "created a new data directory" in s.stderr_text()
    finally:
        s.stop()
    # An existing one starts with --no-create, quietly.
    s = local_server(ferrokms_bin, tmp_path, "--no-create", "--data-dir", tmp_path / "new")
    try:
        assert "created a new data directory" not in s.stderr_text()
    finally:
        s.stop()


def test_tls_listener_hints_and_plain_http_gets_an_answer(ferrokms_bin, tmp_path):
    """Item 13: the first-start hint names https:// on a TLS listener, and a
    client speaking plain HTTP to it is told to use https://."""
    from test_ops import self_signed

    cert, key = self_signed(tmp_path)
    s = local_server(ferrokms_bin, tmp_path, "--data-dir", tmp_path / "tls", "--tls-cert", cert, "--tls-key", key)
    try:
        assert s.endpoint.startswith("https://")
        assert f"--endpoint-url https://127.0.0.1:{s.port}" in s.stderr_text()
        assert "http://" not in s.stderr_text()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
            c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while chunk := c.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert b"This port serves HTTPS: use an https:// endpoint URL." in answer
        # HTTPS itself still works.
        ctx = ssl.create_default_context(cafile=str(cert))
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as c:
                c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert c.recv(4096).startswith(b"HTTP/1.1 200")
        assert "a client sent plain HTTP to this TLS listener" in s.stderr_text()
    finally:
        s.stop()


def test_tls_client_on_a_plain_listener_is_logged(ferrokms_bin, tmp_path):
    s = local_server(ferrokms_bin, tmp_path, "--in-memory")
    try:
        ctx = ssl.create_default_context()
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as raw:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        deadline = time.monotonic() + 10
        while "TLS handshake on this plain-HTTP listener" not in s.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "TLS handshake on this plain-HTTP listener" in s.stderr_text()
    finally:
        s.stop()


def test_logs_have_no_colour_off_a_terminal_json_on_request_and_a_bad_filter_is_refused(ferrokms_bin, tmp_path):
    """Item 15."""
    s = local_server(ferrokms_bin, tmp_path, "--in-memory")
    s.stop()
    assert ANSI not in s.stderr_text() and "ferrokms listening" in s.stderr_text()

    s = local_server(ferrokms_bin, tmp_path, "--in-memory", env_extra={"FERROKMS_LOG_FORMAT": "json"})
    s.stop()
    records = [json.loads(l) for l in s.stderr_text().splitlines() if l.startswith("{")]
    assert any(r["fields"]["message"] == "ferrokms listening" for r in records), s.stderr_text()
    assert ANSI not in s.stderr_text()

    p = ferrokms_run(ferrokms_bin, "serve", "--in-memory", env_extra={"FERROKMS_LOG": "info,=x"})
    assert p.returncode == 2
    assert "FERROKMS_LOG='info,=x' is not a log filter" in p.stderr
    p = ferrokms_run(ferrokms_bin, "serve", "--in-memory", env_extra={"FERROKMS_LOG_FORMAT": "xml"})
    assert p.returncode == 2 and "use text (the default) or json" in p.stderr


def readme_block(lang: str, must_contain: str) -> str:
    """The README's fenced block of `lang` that contains `must_contain`."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    blocks = re.findall(rf"```{lang}\n(.*?)```", text, re.S)
    found = [b for b in blocks if must_contain in b]
    assert len(found) == 1, (lang, must_contain, len(found))
    return found[0]


@pytest.mark.skipif(bool(conftest.PG_URL), reason="a SQLite data directory")
def test_readme_boto3_block_and_role_profile_work_as_written(ferrokms_bin, tmp_path):
    """Item 7: the README's copy-paste block, run as written (only the port
    and the interpreter differ), and a role_arn profile with it: botocore's
    AssumeRole must reach ferrokms, not AWS's STS."""
    import sys

    s = local_server(ferrokms_bin, tmp_path, "--data-dir", tmp_path / "ferrokms-data")
    try:
        block = readme_block("sh", 'boto3.client("kms")')
        script = block.replace("127.0.0.1:7300", f"127.0.0.1:{s.port}").replace("python3 ", f"{sys.executable} ")
        env = clean_env()
        env["AWS_CONFIG_FILE"] = str(tmp_path / "empty-config")
        (tmp_path / "empty-config").write_text("")
        p = subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.strip() == "[]"

        # A role `app` the account root may assume, allowed kms:ListKeys.
        key_id, secret = re.findall(r"= (\S+)", (tmp_path / "ferrokms-data" / "credentials").read_text())
        iam = make_client(s.endpoint, key_id, secret, service="iam")
        trust = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}'
        iam.create_role(RoleName="app", AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName="app", PolicyName="kms", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:ListKeys","Resource":"*"}]}')
        # The user `dev` whose key the role profile's source_profile names.
        iam.create_user(UserName="dev")
        iam.put_user_policy(UserName="dev", PolicyName="assume", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/app"}]}')
        ak = iam.create_access_key(UserName="dev")["AccessKey"]
        with open(tmp_path / "ferrokms-data" / "credentials", "a") as f:
            f.write(f"[dev]\naws_access_key_id = {ak['AccessKeyId']}\naws_secret_access_key = {ak['SecretAccessKey']}\n")
        (tmp_path / "config").write_text(readme_block("ini", "role_arn"))
        env["AWS_CONFIG_FILE"] = str(tmp_path / "config")
        role_script = script.replace("AWS_PROFILE=ferrokms", "AWS_PROFILE=app").replace(
            'print(boto3.client("kms").list_keys()["Keys"])',
            'print(boto3.client("sts").get_caller_identity()["Arn"]); print(boto3.client("kms").list_keys()["Keys"])',
        )
        assert role_script != script
        p = subprocess.run(["bash", "-euc", role_script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        arn, keys = p.stdout.strip().splitlines()
        assert arn.startswith("arn:aws:sts::111122223333:assumed-role/app/"), arn
        assert keys == "[]"
    finally:
        s.stop()


def test_backup_on_a_postgresql_node_points_at_pg_dump(ferrokms_bin, tmp_path):
    """Item 17: `backup` copies SQLite only; a PostgreSQL node is told what to use."""
    p = ferrokms_run(ferrokms_bin, "backup", "--data-dir", tmp_path, "--to", tmp_path / "b",
                     env_extra={"FERROKMS_STORE": "postgres://u:p@127.0.0.1:1/db"})
    assert p.returncode == 1
    assert "back the database up with pg_dump" in p.stderr, p.stderr
    (tmp_path / "root.key").write_text("ab" * 32 + "\n")
    p = ferrokms_run(ferrokms_bin, "backup", "--data-dir", tmp_path, "--to", tmp_path / "b")
    assert p.returncode == 1
    assert "if it is a PostgreSQL node's directory, back the database up with pg_dump" in p.stderr, p.stderr


def test_help_is_true_to_the_program(ferrokms_bin):
    """Item 17: `policy --help` no longer calls simulate and explain offline."""
    p = ferrokms_run(ferrokms_bin, "--help")
    assert "Offline policy tools" not in p.stdout
    assert "simulate, explain and generate read a data directory" in " ".join(p.stdout.split())
    p = ferrokms_run(ferrokms_bin, "backup", "--help")
    assert "pg_dump" in p.stdout
