"""Seed 000 replayed with the real aws CLI, step by step, messages included.

A role `kms-exports-role` with no permissions is assumed through an aws CLI
profile with `role_arn` + `source_profile`; it tries to sign with an RSA key:
denied because no identity-based policy allows kms:Sign; allowed once the key
policy names the role; denied again when that statement is removed; allowed
by an identity policy because the key policy enables IAM policies; and the
identity policy stops counting once the key policy no longer delegates to
the account.
"""

import json
import re
import subprocess
import sys

import pytest

from conftest import CLI_TIMEOUT, DEFAULT_ACCOUNT, REGION, clean_env
from policies import doc

ACCT = DEFAULT_ACCOUNT
ROLE_ARN = f"arn:aws:iam::{ACCT}:role/kms-exports-role"
ROOT = f"arn:aws:iam::{ACCT}:root"

ENABLE_IAM = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}
ALLOW_ROLE = {
    "Sid": "Allow use of the key",
    "Effect": "Allow",
    "Principal": {"AWS": ROLE_ARN},
    "Action": ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"],
    "Resource": "*",
}


@pytest.fixture(scope="module")
def seed(srv):
    work = srv.workdir
    home = work / "home"
    home.mkdir()
    creds = work / "credentials"
    config = work / "config"
    creds.write_text(srv.credentials_file.read_text())
    config.write_text("")
    env = clean_env()
    env.update(
        HOME=str(home),  # the CLI caches assumed-role credentials under ~/.aws/cli/cache
        AWS_SHARED_CREDENTIALS_FILE=str(creds),
        AWS_CONFIG_FILE=str(config),
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=srv.endpoint,
        AWS_PAGER="",
        AWS_EC2_METADATA_DISABLED="true",
    )

    def aws(*args, profile="ferrokms"):
        p = subprocess.run(
            [sys.executable, "-m", "awscli", *map(str, args), "--profile", profile],
            env=env,
            cwd=str(work),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
        )
        return p

    def ok(*args, profile="ferrokms"):
        p = aws(*args, profile=profile)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else None

    # The account's identities, made with the aws CLI alone.
    ok("iam", "create-user", "--user-name", "dev")
    key = ok("iam", "create-access-key", "--user-name", "dev")["AccessKey"]
    with creds.open("a") as f:
        f.write(f"\n[dev]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n")
    ok(
        "iam", "put-user-policy", "--user-name", "dev", "--policy-name", "assume-exports-role",
        "--policy-document", doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": ROLE_ARN}),
    )
    ok(
        "iam", "create-role", "--role-name", "kms-exports-role",
        "--assume-role-policy-document",
        doc({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"}),
    )
    config.write_text(
        f"[profile exports-test]\noutput = json\nrole_arn = {ROLE_ARN}\nsource_profile = dev\nregion = {REGION}\n"
    )
    kms_key = ok("kms", "create-key", "--key-spec", "RSA_2048", "--key-usage", "SIGN_VERIFY")["KeyMetadata"]
    ok("kms", "create-alias", "--alias-name", "alias/kms-exports-test", "--target-key-id", kms_key["KeyId"])

    class Seed:
        pass

    Seed.aws, Seed.ok, Seed.key = aws, ok, kms_key
    return Seed


def sign(seed):
    return seed.aws(
        "kms", "sign", "--region", "us-east-1", "--key-id", seed.key["KeyId"],
        "--message", "hello world", "--message-type", "RAW",
        "--signing-algorithm", "RSASSA_PKCS1_V1_5_SHA_256",
        profile="exports-test",
    )


def put_key_policy(seed, *statements):
    seed.ok("kms", "put-key-policy", "--key-id", seed.key["KeyId"], "--policy-name", "default",
            "--policy", doc(*statements), "--bypass-policy-lockout-safety-check")


def expect_denied(p, key_arn, reason):
    assert p.returncode != 0
    pattern = (
        r"An error occurred \(AccessDeniedException\) when calling the Sign operation: "
        rf"User: arn:aws:sts::{ACCT}:assumed-role/kms-exports-role/botocore-session-\d+ "
        rf"is not authorized to perform: kms:Sign on resource: {re.escape(key_arn)} "
        rf"because no {reason} allows the kms:Sign action"
    )
    assert re.search(pattern, p.stderr), p.stderr


def test_seed000_step1_the_profile_assumes_the_role(seed):
    who = seed.ok("sts", "get-caller-identity", profile="exports-test")
    assert re.fullmatch(rf"arn:aws:sts::{ACCT}:assumed-role/kms-exports-role/botocore-session-\d+", who["Arn"])


def test_seed000_step2_role_without_permissions_is_denied_by_missing_identity_policy(seed):
    expect_denied(sign(seed), seed.key["Arn"], "identity-based policy")


def test_seed000_step3_key_policy_naming_the_role_allows_sign(seed):
    put_key_policy(seed, ENABLE_IAM, ALLOW_ROLE)
    p = sign(seed)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["KeyId"] == seed.key["Arn"]
    assert out["SigningAlgorithm"] == "RSASSA_PKCS1_V1_5_SHA_256"
    assert len(out["Signature"]) > 300  # 256 bytes, base64


def test_seed000_step4_removing_the_statement_denies_again(seed):
    put_key_policy(seed, ENABLE_IAM)
    expect_denied(sign(seed), seed.key["Arn"], "identity-based policy")


def test_seed000_step5_identity_policy_allows_because_the_key_policy_enables_iam(seed):
    seed.ok(
        "iam", "put-role-policy", "--role-name", "kms-exports-role", "--policy-name", "use-exports-key",
        "--policy-document",
        doc({"Effect": "Allow", "Action": ["kms:DescribeKey", "kms:GetPublicKey", "kms:Sign", "kms:Verify"], "Resource": seed.key["Arn"]}),
    )
    p = sign(seed)
    assert p.returncode == 0, p.stderr


def test_seed000_step6_identity_policy_is_ineffective_without_the_enable_iam_statement(seed):
    admin_only = {
        "Sid": "Only the dev user administers",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCT}:user/dev"},
        "Action": "kms:*",
        "Resource": "*",
    }
    put_key_policy(seed, admin_only)
    expect_denied(sign(seed), seed.key["Arn"], "resource-based policy")
