"""Terraform's AWS provider (hashicorp/aws 5.100.0), end to end, against a
server this module starts: `terraform apply` of tests/e2e/terraform/kms_iam.tf
(KMS keys of every spec family, aliases, grants with constraints, imported
and multi-Region keys, ciphertexts and secrets, and the IAM roles, policies,
users, access keys, groups and instance profiles used with them), checked
with boto3; then `terraform plan -detailed-exitcode` must find nothing to
change, `terraform destroy` must leave every key PendingDeletion (a multi-Region
primary PendingReplicaDeletion while its replicas wait) and every
IAM entity gone, and a second `terraform apply` must succeed.

An external key store (tests/e2e/terraform/xks.tf: the
aws_kms_custom_key_store resource, EXTERNAL_KEY_STORE, and its data source
by id and by name) is applied, renamed in place and destroyed against a KMS
that trusts a ferrokms XKS proxy the test starts over HTTPS
(test_custom_key_stores.py's).

Coverage of the provider's KMS schema (checked against `terraform providers
schema -json` by the test): every aws_kms_* resource, data source and
ephemeral resource is in the configurations except those in `LEFT_OUT`:

- data source aws_kms_secret: removed from the provider in 2.0; it always
  fails with "this data source has been replaced with aws_kms_secrets"
  (aws_kms_secrets, which is covered, replaces it).

Needs `terraform` on the PATH and a filesystem mirror of the provider
(FERROKMS_TF_MIRROR, else /opt/tf-plugins or the usual plugin
directories); without them it skips saying which is missing. It runs
once per CI run: with FERROKMS_TEST_PG_URL set (the suite's second,
PostgreSQL run) it skips, as Terraform's behaviour does not depend on the
storage. FERROKMS_TF_LOG=DEBUG writes Terraform's debug log (every
request the provider makes) to tf-*.log in the test's directory.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import PG_URL, REGION, clean_env

SERVER = "dev"

PROVIDER_VERSION = "5.100.0"
PROVIDER_DIR = Path("registry.terraform.io/hashicorp/aws") / PROVIDER_VERSION / "linux_amd64"
HCL = Path(__file__).parent / "terraform" / "kms_iam.tf"
# The external key store, applied against a KMS that trusts a proxy the
# test starts (test_external_key_store_apply_update_destroy).
XKS_HCL = Path(__file__).parent / "terraform" / "xks.tf"
WEST = "us-west-2"

# What the configuration leaves out of the provider's KMS schema, and why
# (see the module docstring).
LEFT_OUT = {
    ("data", "aws_kms_secret"): "removed from the provider in 2.0 (always fails); aws_kms_secrets replaces it",
}

# Bounds of each Terraform command (the provider alone takes seconds to start).
INIT_TIMEOUT = 180
APPLY_TIMEOUT = 480
PLAN_TIMEOUT = 300
SCHEMA_TIMEOUT = 180


def find_mirror() -> Path | None:
    """The filesystem mirror holding the provider: FERROKMS_TF_MIRROR, else
    /opt/tf-plugins, else Terraform's usual plugin directories."""
    env = os.environ.get("FERROKMS_TF_MIRROR")
    candidates = [Path(env)] if env else [
        Path("/opt/tf-plugins"),
        Path.home() / ".terraform.d" / "plugins",
        Path.home() / ".local" / "share" / "terraform" / "plugins",
        Path("/usr/local/share/terraform/plugins"),
        Path("/usr/share/terraform/plugins"),
    ]
    for c in candidates:
        d = c / PROVIDER_DIR
        if d.is_dir() and any(p.name.startswith("terraform-provider-aws") for p in d.iterdir()):
            return c
        packed = c / "registry.terraform.io/hashicorp/aws" / f"terraform-provider-aws_{PROVIDER_VERSION}_linux_amd64.zip"
        if packed.is_file():
            return c
    return None


def terraform_runner(work: Path, hcl: Path):
    """A function running terraform in `work` on a copy of `hcl`, offline
    (the provider from the mirror only), after `terraform init`; skips the
    test when terraform or the mirror is missing (or on the PostgreSQL run)."""
    if PG_URL:
        pytest.skip("Terraform runs once per CI run: skipped on the PostgreSQL run (its behaviour does not depend on the storage)")
    exe = shutil.which("terraform")
    if not exe:
        pytest.skip("terraform is not on the PATH")
    mirror = find_mirror()
    if mirror is None:
        pytest.skip(f"no filesystem mirror of hashicorp/aws {PROVIDER_VERSION} (set FERROKMS_TF_MIRROR; looked in /opt/tf-plugins and the usual plugin directories)")
    cli = work / "cli.tfrc"
    cli.write_text(
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/aws"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/aws"]\n  }\n}\n'
    )
    shutil.copy(hcl, work / "main.tf")
    env = clean_env()
    env.update(
        TF_CLI_CONFIG_FILE=str(cli),
        TF_DATA_DIR=str(work / ".terraform"),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.pop("TF_LOG", None)
    log_level = os.environ.get("FERROKMS_TF_LOG")
    counter = {"n": 0}

    def run(*args, timeout, check=True):
        counter["n"] += 1
        e = dict(env)
        if log_level:
            e["TF_LOG"] = log_level
            e["TF_LOG_PATH"] = str(work / f"tf-{counter['n']}-{args[0]}.log")
        p = subprocess.run([exe, *args], cwd=work, env=e, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            pytest.fail(f"terraform {' '.join(args)} exited {p.returncode}\n{p.stdout[-6000:]}\n{p.stderr[-6000:]}")
        return p

    run("init", "-input=false", "-no-color", timeout=INIT_TIMEOUT)
    run.work = work
    return run


@pytest.fixture(scope="module")
def tf(srv, tmp_path_factory):
    """Runs terraform on kms_iam.tf in the module's own working and data
    directory, against `srv`."""
    return terraform_runner(tmp_path_factory.mktemp("terraform"), HCL)


def client(srv, account, service, region=REGION):
    return boto3.session.Session().client(
        service, endpoint_url=srv.endpoint, region_name=region,
        aws_access_key_id=account, aws_secret_access_key="x",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=30))


def variables(srv, account, work):
    """terraform.tfvars.json: the endpoint, the account root's credentials,
    fresh key material, a ciphertext made here with boto3 and a ValidTo
    within AWS's 365 days."""
    kms = client(srv, account, "kms")
    key = kms.create_key(Description="boto3 key for the ephemeral aws_kms_secrets")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"made by boto3", EncryptionContext={"app": "terraform"})["CiphertextBlob"]
    valid_to = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=300)).replace(microsecond=0)
    v = {
        "endpoint": srv.endpoint,
        "access_key": account,
        "secret_key": "x",
        "suffix": os.urandom(4).hex(),
        "key_material": base64.b64encode(os.urandom(32)).decode(),
        "boto3_ciphertext": base64.b64encode(blob).decode(),
        "boto3_plaintext": "made by boto3",
        "valid_to": valid_to.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (work / "terraform.tfvars.json").write_text(json.dumps(v))
    return v


def outputs(tf):
    return {k: v["value"] for k, v in json.loads(tf("output", "-json", "-no-color", timeout=PLAN_TIMEOUT).stdout).items()}


def pem_body(der: bytes) -> str:
    return base64.b64encode(der).decode()


def check_applied(srv, account, out):
    kms = client(srv, account, "kms")
    west = client(srv, account, "kms", WEST)
    iam = client(srv, account, "iam")
    keys = out["key_ids"]

    def meta(k, c=kms):
        return c.describe_key(KeyId=k)["KeyMetadata"]

    sym = meta(keys["symmetric"])
    assert (sym["KeySpec"], sym["KeyState"], sym["Description"]) == ("SYMMETRIC_DEFAULT", "Enabled", "symmetric, rotated every 180 days")
    rot = kms.get_key_rotation_status(KeyId=keys["symmetric"])
    assert rot["KeyRotationEnabled"] is True and rot["RotationPeriodInDays"] == 180
    assert {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=keys["symmetric"])["Tags"]} == {"team": "blue", "env": "test"}
    policy = json.loads(kms.get_key_policy(KeyId=keys["symmetric"], PolicyName="default")["Policy"])
    assert any(s.get("Principal", {}).get("AWS") == f"arn:aws:iam::{account}:role/tf/{out['iam']['role']}" for s in policy["Statement"])
    for k, spec, usage in [("rsa", "RSA_2048", "SIGN_VERIFY"), ("ecc", "ECC_NIST_P256", "SIGN_VERIFY"),
                           ("hmac", "HMAC_256", "GENERATE_VERIFY_MAC"), ("multi_region", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")]:
        m = meta(keys[k])
        assert (m["KeySpec"], m["KeyUsage"], m["KeyState"]) == (spec, usage, "Enabled"), k
    assert meta(keys["multi_region"])["MultiRegion"] is True
    # The replicas are in us-west-2 under the primary's id.
    rep = out["replica_key_ids"]
    assert rep["replica"] == keys["multi_region"] and rep["replica_external"] == keys["mr_primary"]
    for k in rep.values():
        m = meta(k, west)
        assert m["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA" and m["KeyState"] == "Enabled", m
    # The public key data source is the key's.
    der = kms.get_public_key(KeyId=keys["rsa"])["PublicKey"]
    assert "".join(out["public_key_pem"].split("\n")[1:-2]) == pem_body(der)
    # Imported material: enabled and expiring; without material: waiting.
    imp = meta(keys["imported"])
    assert (imp["Origin"], imp["KeyState"], imp["ExpirationModel"]) == ("EXTERNAL", "Enabled", "KEY_MATERIAL_EXPIRES")
    assert meta(keys["pending"])["KeyState"] == "PendingImport" == out["pending_state"]
    assert meta(keys["mr_primary"])["KeyState"] == "Enabled"
    # The same material was imported into the primary and its replica, and
    # into the single-Region key: a ciphertext of one decrypts with the other.
    blob = kms.encrypt(KeyId=keys["mr_primary"], Plaintext=b"shared")["CiphertextBlob"]
    assert west.decrypt(CiphertextBlob=blob, KeyId=rep["replica_external"])["Plaintext"] == b"shared"
    # Alias and data sources.
    alias = [a for a in kms.list_aliases(KeyId=keys["symmetric"])["Aliases"]]
    assert [a["AliasArn"] for a in alias] == [out["alias_arn"]]
    assert out["data_key_arn"] == sym["Arn"] and out["data_alias_target"] == keys["symmetric"]
    # Grants with their constraints.
    grants = {g["Name"]: g for g in kms.list_grants(KeyId=keys["symmetric"])["Grants"]}
    assert grants["tf-grant-equals"]["Constraints"] == {"EncryptionContextEquals": {"app": "terraform"}}
    assert grants["tf-grant-subset"]["Constraints"] == {"EncryptionContextSubset": {"app": "terraform"}}
    assert sorted(g["GrantId"] for g in grants.values()) == sorted(out["grant_ids"])
    # aws_kms_secrets decrypted both ciphertexts made by Terraform.
    assert out["secrets"] == {"resource": "made by terraform", "data": "made by a data source"}
    # IAM.
    names = out["iam"]
    role = iam.get_role(RoleName=names["role"])["Role"]
    assert role["MaxSessionDuration"] == 7200 and {t["Key"]: t["Value"] for t in role["Tags"]} == {"team": "blue", "env": "test"}
    assert iam.list_role_policies(RoleName=names["role"])["PolicyNames"] == ["use-key"]
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=names["role"])["AttachedPolicies"]] == [names["policy_arn"]]
    pol = iam.get_policy(PolicyArn=names["policy_arn"])["Policy"]
    assert {t["Key"]: t["Value"] for t in pol["Tags"]} == {"owner": "platform", "cost-center": "42"}
    assert pol["AttachmentCount"] == 3
    ip = iam.get_instance_profile(InstanceProfileName=names["instance_profile"])["InstanceProfile"]
    assert [r["RoleName"] for r in ip["Roles"]] == [names["role"]] and ip["Tags"] == [{"Key": "purpose", "Value": "ec2"}]
    assert sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=names["user"])["Groups"]) == sorted(names["groups"])
    assert iam.list_user_policies(UserName=names["user"])["PolicyNames"] == ["sign"]
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=names["user"])["AccessKeyMetadata"]] == [names["access_key_id"]]


def check_destroyed(srv, account, out):
    kms = client(srv, account, "kms")
    west = client(srv, account, "kms", WEST)
    iam = client(srv, account, "iam")
    # A multi-Region primary whose replicas are still waiting out their own
    # deletion window is PendingReplicaDeletion, as on AWS; the others are
    # PendingDeletion.
    primaries = set(out["replica_key_ids"].values())
    for k in out["key_ids"].values():
        want = "PendingReplicaDeletion" if k in primaries else "PendingDeletion"
        assert kms.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == want, k
    for k in out["replica_key_ids"].values():
        assert west.describe_key(KeyId=k)["KeyMetadata"]["KeyState"] == "PendingDeletion", k
    assert kms.list_aliases(KeyId=out["key_ids"]["symmetric"])["Aliases"] == []
    names = out["iam"]
    gone = [
        (iam.get_role, dict(RoleName=names["role"])),
        (iam.get_policy, dict(PolicyArn=names["policy_arn"])),
        (iam.get_instance_profile, dict(InstanceProfileName=names["instance_profile"])),
        (iam.get_user, dict(UserName=names["user"])),
        *[(iam.get_group, dict(GroupName=g)) for g in names["groups"]],
    ]
    for call, kw in gone:
        with pytest.raises(ClientError) as e:
            call(**kw)
        assert e.value.response["Error"]["Code"] == "NoSuchEntity", kw


def test_the_configuration_covers_the_providers_kms_schema(tf):
    """Every aws_kms_* resource, data source and ephemeral resource of the
    provider is in kms_iam.tf or xks.tf, or in LEFT_OUT (with its reason)."""
    schema = json.loads(tf("providers", "schema", "-json", timeout=SCHEMA_TIMEOUT).stdout)
    aws = schema["provider_schemas"]["registry.terraform.io/hashicorp/aws"]
    text = HCL.read_text() + XKS_HCL.read_text()
    for kind, block in [("resource", "resource_schemas"), ("data", "data_source_schemas"),
                        ("ephemeral", "ephemeral_resource_schemas")]:
        for name in sorted(aws.get(block, {})):
            if not name.startswith("aws_kms_"):
                continue
            declared = f'{kind} "{name}" "' in text
            assert declared != ((kind, name) in LEFT_OUT), f"{kind} {name}: declared={declared}, left out={(kind, name) in LEFT_OUT}"
    for kind, name in LEFT_OUT:
        block = {"resource": "resource_schemas", "data": "data_source_schemas"}[kind]
        assert name in aws[block], f"{kind} {name} is no longer in the provider"


def test_apply_plan_destroy_apply(tf, srv, A):
    started = time.monotonic()
    v = variables(srv, A.id, tf.work)
    tf("apply", "-input=false", "-no-color", "-auto-approve", timeout=APPLY_TIMEOUT)
    out = outputs(tf)
    assert out["account"] == A.id
    check_applied(srv, A.id, out)
    # The provider signs in with the user's access key Terraform made.
    sts = boto3.session.Session().client(
        "sts", endpoint_url=srv.endpoint, region_name=REGION,
        aws_access_key_id=out["iam"]["access_key_id"], aws_secret_access_key=out["access_key_secret"])
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{A.id}:user/tf/tf-ci-{v['suffix']}"

    plan = tf("plan", "-input=false", "-no-color", "-detailed-exitcode", timeout=PLAN_TIMEOUT, check=False)
    assert plan.returncode == 0, f"plan found changes after apply (exit {plan.returncode}):\n{plan.stdout[-8000:]}\n{plan.stderr[-4000:]}"

    tf("destroy", "-input=false", "-no-color", "-auto-approve", timeout=APPLY_TIMEOUT)
    check_destroyed(srv, A.id, out)

    tf("apply", "-input=false", "-no-color", "-auto-approve", timeout=APPLY_TIMEOUT)
    again = outputs(tf)
    assert again["key_ids"]["symmetric"] != out["key_ids"]["symmetric"]
    check_applied(srv, A.id, again)
    print(f"terraform apply, plan, destroy, apply: {time.monotonic() - started:.0f} s")


def test_external_key_store_apply_update_destroy(ferrokms_bin, tmp_path):
    """aws_kms_custom_key_store (EXTERNAL_KEY_STORE) and its data source:
    apply (CreateCustomKeyStore checks the proxy's health), plan clean, a
    rename in place (UpdateCustomKeyStore), destroy (DeleteCustomKeyStore)."""
    from conftest import Server, fresh_account
    from test_custom_key_stores import ProxyServer, ca_and_leaf, free_port, store_of, xks_cli

    tf = terraform_runner(tmp_path, XKS_HCL)
    ca, cert, key = ca_and_leaf(tmp_path)
    proxy = ProxyServer(ferrokms_bin, tmp_path, data_dir=tmp_path / "proxy", extra_args=["--xks"])
    proxy.cert, proxy.key = str(cert), str(key)
    proxy.listen = f"127.0.0.1:{free_port()}"
    kms_work = tmp_path / "kms"
    kms_work.mkdir()
    kms_srv = Server(ferrokms_bin, kms_work, in_memory=True, dev=True,
                     extra_args=["--xks-ca-file", str(ca), "--xks-timeout-ms", "3000"])
    proxy.start()
    try:
        kms_srv.start()
        cred = xks_cli(ferrokms_bin, "credential", "create", *store_of(proxy))
        account = fresh_account()
        v = {
            "endpoint": kms_srv.endpoint,
            "access_key": account,
            "secret_key": "x",
            "suffix": os.urandom(4).hex(),
            "proxy_endpoint": proxy.endpoint,
            "proxy_access_key_id": cred["AccessKeyId"],
            "proxy_secret": cred["RawSecretAccessKey"],
            "store_name": "tf-xks-" + os.urandom(4).hex(),
        }
        (tmp_path / "terraform.tfvars.json").write_text(json.dumps(v))
        tf("apply", "-input=false", "-no-color", "-auto-approve", timeout=APPLY_TIMEOUT)
        out = outputs(tf)
        kms = client(kms_srv, account, "kms")
        entry = kms.describe_custom_key_stores(CustomKeyStoreId=out["store_id"])["CustomKeyStores"][0]
        assert entry["CustomKeyStoreName"] == v["store_name"]
        assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
        assert entry["XksProxyConfiguration"]["UriEndpoint"] == proxy.endpoint
        assert out["connection_state"] == "DISCONNECTED" and out["by_name_id"] == out["store_id"]
        plan = tf("plan", "-input=false", "-no-color", "-detailed-exitcode", timeout=PLAN_TIMEOUT, check=False)
        assert plan.returncode == 0, f"plan found changes after apply (exit {plan.returncode}):\n{plan.stdout[-8000:]}\n{plan.stderr[-4000:]}"
        v["store_name"] += "-renamed"
        (tmp_path / "terraform.tfvars.json").write_text(json.dumps(v))
        tf("apply", "-input=false", "-no-color", "-auto-approve", timeout=APPLY_TIMEOUT)
        assert outputs(tf)["store_id"] == out["store_id"]  # in place
        assert kms.describe_custom_key_stores(CustomKeyStoreId=out["store_id"])["CustomKeyStores"][0]["CustomKeyStoreName"] == v["store_name"]
        tf("destroy", "-input=false", "-no-color", "-auto-approve", timeout=APPLY_TIMEOUT)
        assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    finally:
        kms_srv.stop()
        proxy.stop()
