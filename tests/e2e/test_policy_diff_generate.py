"""`ferrokms policy diff` and `ferrokms policy generate` (docs/analysis.md):
the real binary on policy files and on the data dir of a real server that
boto3 drives."""

import json
import subprocess
import time
import uuid

import accounts
from conftest import DEFAULT_ACCOUNT, REGION, expect_error, make_client

ACCT = DEFAULT_ACCOUNT
OTHER = "444455556666"
KEY = f"arn:aws:kms:{REGION}:{ACCT}:key/00000000-0000-0000-0000-000000000000"
ROOT_DELEGATION = {
    "Sid": "Enable IAM User Permissions",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}


def cli(ferrokms_bin, *args):
    return subprocess.run([str(ferrokms_bin), *map(str, args)], capture_output=True, text=True, timeout=120)


def write(tmp_path, name, statements):
    p = tmp_path / name
    p.write_text(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    return p


def diff(ferrokms_bin, old, new, *extra):
    p = cli(ferrokms_bin, "policy", "diff", old, new, "--json", *extra)
    assert p.returncode in (0, 1, 2), p.stderr
    return p.returncode, json.loads(p.stdout) if p.stdout.strip() else None, p


def test_diff_adding_a_cross_account_principal_shows_it_with_a_witness_and_exits_1(ferrokms_bin, tmp_path):
    old = write(tmp_path, "old.json", [ROOT_DELEGATION])
    share = {
        "Sid": "Share",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
        "Action": ["kms:Decrypt", "kms:DescribeKey"],
        "Resource": "*",
    }
    new = write(tmp_path, "new.json", [ROOT_DELEGATION, share])
    code, out, p = diff(ferrokms_bin, old, new)
    assert code == 1, p.stdout + p.stderr
    assert out["addsAccess"] is True and out["unknown"] is False
    (k,) = out["keys"]
    assert k["key"] == KEY and k["exact"] is True and k["removed"] == []
    assert k["proof"]["requests"] > 0
    added = {(e["action"], e["path"]) for e in k["added"]}
    # Exactly the two shared actions, through the key policy, by the
    # other account's principals (its root and any of its users).
    assert {a for a, _ in added} == {"kms:Decrypt", "kms:DescribeKey"}, k["added"]
    assert all(path == "key policy" for _, path in added)
    for e in k["added"]:
        assert OTHER in e["principal"] and e["external"] is True
        w = e["witness"]
        assert w["key"] == KEY and w["action"] == e["action"] and f":{OTHER}:" in w["principal"]
    # The text form says the same, and exits the same.
    t = cli(ferrokms_bin, "policy", "diff", old, new)
    assert t.returncode == 1
    assert "ADDED:" in t.stdout and "witness (each action):" in t.stdout and OTHER in t.stdout
    assert "REMOVED: nothing" in t.stdout


def test_diff_removing_a_statement_shows_the_removed_access_and_exits_0(ferrokms_bin, tmp_path):
    alice = f"arn:aws:iam::{ACCT}:user/alice"
    user_stmt = {
        "Sid": "Alice",
        "Effect": "Allow",
        "Principal": {"AWS": alice},
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:app": "billing"}},
    }
    old = write(tmp_path, "old.json", [ROOT_DELEGATION, user_stmt])
    new = write(tmp_path, "new.json", [ROOT_DELEGATION])
    code, out, p = diff(ferrokms_bin, old, new)
    assert code == 0, p.stdout + p.stderr
    (k,) = out["keys"]
    assert k["added"] == []
    # Alice (and nobody else gains or loses anything but Encrypt).
    assert {e["action"] for e in k["removed"]} == {"kms:Encrypt"}, k["removed"]
    (e,) = [e for e in k["removed"] if e["principal"] == alice]
    assert (e["action"], e["path"], e["conditional"]) == ("kms:Encrypt", "key policy", True)
    ctx = {c["key"].lower(): c["value"] for c in e["witness"]["context"]}
    assert ctx == {"kms:encryptioncontext:app": "billing"}
    # Reversed, the same access is added: exit 1.
    code, out, _ = diff(ferrokms_bin, new, old)
    assert code == 1 and [x["action"] for x in out["keys"][0]["added"]] == ["kms:Encrypt"]


def test_diff_of_identical_policies_exits_0_and_lists_nothing(ferrokms_bin, tmp_path):
    old = write(tmp_path, "old.json", [ROOT_DELEGATION])
    new = write(tmp_path, "new.json", [ROOT_DELEGATION])
    code, out, p = diff(ferrokms_bin, old, new)
    assert code == 0, p.stderr
    (k,) = out["keys"]
    assert k["added"] == [] and k["removed"] == [] and k["proof"]["requests"] > 0
    t = cli(ferrokms_bin, "policy", "diff", old, new)
    assert t.returncode == 0 and "adds no access" in t.stdout


def test_diff_outside_the_encoding_is_unknown_with_exit_2(ferrokms_bin, tmp_path):
    old = write(tmp_path, "old.json", [ROOT_DELEGATION])
    by_name = dict(ROOT_DELEGATION, Sid="ByName", Condition={"StringEquals": {"aws:username": "alice"}})
    new = write(tmp_path, "new.json", [ROOT_DELEGATION, by_name])
    code, out, p = diff(ferrokms_bin, old, new)
    assert code == 2, p.stdout + p.stderr
    assert out["keys"][0]["exact"] is False and "aws:username" in out["keys"][0]["unknown"]
    # A file that is no policy: exit 2 with the reason.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    p = cli(ferrokms_bin, "policy", "diff", old, bad)
    assert p.returncode == 2 and "bad.json" in p.stderr


def test_identity_diff_reports_keys_the_policies_name(ferrokms_bin, tmp_path):
    k1 = f"arn:aws:kms:{REGION}:{ACCT}:key/11111111-1111-1111-1111-111111111111"
    old = write(tmp_path, "old.json", [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": k1}])
    new = write(tmp_path, "new.json", [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": k1}])
    code, out, p = diff(ferrokms_bin, old, new, "--kind", "identity")
    assert code == 1, p.stdout + p.stderr
    by_key = {k["key"]: k for k in out["keys"]}
    assert set(by_key) == {k1, KEY}
    holder = f"arn:aws:iam::{ACCT}:user/policy-diff"
    assert [(e["principal"], e["action"], e["path"]) for e in by_key[k1]["added"]] == [
        (holder, "kms:Decrypt", "delegation + identity policy")
    ]
    assert by_key[KEY]["added"] == [] and by_key[KEY]["removed"] == []


def test_diff_against_a_key_of_the_data_dir(ferrokms_bin, srv, tmp_path):
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]
    current = json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"])
    old = tmp_path / "current.json"
    old.write_text(json.dumps(current))
    share = {"Sid": "Share", "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:Decrypt", "Resource": "*"}
    new = write(tmp_path, "new.json", current["Statement"] + [share])
    # On the PostgreSQL pass the server's state is in its database.
    data = ["--data-dir", srv.data_dir, *(["--store", srv.store_url] if srv.store_url else [])]
    code, out, p = diff(ferrokms_bin, old, new, "--key", key["KeyId"], *data)
    assert code == 1, p.stdout + p.stderr
    (k,) = out["keys"]
    assert k["key"] == key["Arn"]
    assert {(e["action"], e["external"]) for e in k["added"]} == {("kms:Decrypt", True)}
    code, out, p = diff(ferrokms_bin, old, old, "--key", key["KeyId"], *data)
    assert code == 0, p.stdout + p.stderr


# ------------------------------------------------------------ generate


def new_user(srv, policy):
    iam = srv.client(service="iam")
    name = "gen" + uuid.uuid4().hex[:8]
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    user.access_key = (k["AccessKeyId"], k["SecretAccessKey"])
    return name, f"arn:aws:iam::{ACCT}:user/{name}", user


def generate(ferrokms_bin, srv, principal, *extra):
    return cli(ferrokms_bin, "policy", "generate", "--data-dir", srv.data_dir, "--principal", principal, *extra)


def test_generate_writes_exactly_the_observed_access_and_it_suffices(ferrokms_bin, srv):
    kms = srv.client()
    a = kms.create_key()["KeyMetadata"]
    b = kms.create_key()["KeyMetadata"]
    blob_b = kms.encrypt(KeyId=b["KeyId"], Plaintext=b"for b")["CiphertextBlob"]
    blob_a = kms.encrypt(KeyId=a["KeyId"], Plaintext=b"for a")["CiphertextBlob"]
    name, arn, user = new_user(
        srv, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}]}
    )
    started = time.time()
    user.encrypt(KeyId=a["Arn"], Plaintext=b"x")
    assert user.decrypt(CiphertextBlob=blob_b)["Plaintext"] == b"for b"
    expect_error(lambda: user.generate_data_key(KeyId=a["Arn"], KeySpec="AES_256"), "AccessDeniedException")
    # The writer flushes every few milliseconds: bounded wait for the records.
    out = None
    while time.time() - started < 10:
        p = generate(ferrokms_bin, srv, arn, "--json", "--key-policy-statement")
        if p.returncode == 0:
            out = json.loads(p.stdout)
            if out["denied"]:
                break
        time.sleep(0.2)
    assert out is not None, p.stdout + p.stderr
    statements = out["identityPolicy"]["Statement"]
    got = sorted((tuple(s["Action"]), s["Resource"]) for s in statements)
    assert got == [(("kms:Decrypt",), b["Arn"]), (("kms:Encrypt",), a["Arn"])], statements
    assert out["denied"] == [{"action": "kms:GenerateDataKey", "resource": a["Arn"]}]
    proof = out["proof"]
    assert proof["proven"] is True
    assert {k["key"]: k["granted"] for k in proof["keys"]} == {a["Arn"]: ["kms:Encrypt"], b["Arn"]: ["kms:Decrypt"]}
    assert proof["unobservedKey"]["granted"] == [] and proof["unobservedKey"]["requests"] > 0
    kps = {tuple(s["keys"]): s["statement"] for s in out["keyPolicyStatements"]}
    assert kps[(a["Arn"],)]["Principal"] == {"AWS": arn} and kps[(a["Arn"],)]["Action"] == ["kms:Encrypt"]
    # The text form: the policy, the note on the denial, the proof.
    t = generate(ferrokms_bin, srv, arn)
    assert t.returncode == 0, t.stderr
    assert "denied, not granted: kms:GenerateDataKey" in t.stdout and "requests asked" in t.stdout

    # Applied as the user's only policy, the same calls succeed and others
    # are refused.
    iam = srv.client(service="iam")
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(out["identityPolicy"]))
    user.encrypt(KeyId=a["Arn"], Plaintext=b"x")
    assert user.decrypt(CiphertextBlob=blob_b)["Plaintext"] == b"for b"
    expect_error(lambda: user.decrypt(CiphertextBlob=blob_a), "AccessDeniedException")
    expect_error(lambda: user.encrypt(KeyId=b["Arn"], Plaintext=b"x"), "AccessDeniedException")


def test_generate_maps_role_sessions_to_the_role(ferrokms_bin, srv):
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]
    iam = srv.client(service="iam")
    role = "genrole" + uuid.uuid4().hex[:6]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}),
    )
    _, _, user = new_user(srv, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn}]})
    sts = make_client(srv.endpoint, *user.access_key, service="sts")
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="s1")["Credentials"]
    session = accounts.client(srv.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    session.describe_key(KeyId=key["Arn"])
    session_arn = f"arn:aws:sts::{ACCT}:assumed-role/{role}/s1"
    started, p = time.time(), None
    while time.time() - started < 10:
        p = generate(ferrokms_bin, srv, session_arn, "--json")
        if p.returncode == 0:
            break
        time.sleep(0.2)
    assert p.returncode == 0, p.stdout + p.stderr
    out = json.loads(p.stdout)
    assert out["principal"] == role_arn
    assert [(s["Action"], s["Resource"]) for s in out["identityPolicy"]["Statement"]] == [(["kms:DescribeKey"], key["Arn"])]
    assert out["proof"]["proven"] is True


def test_generate_refuses_roots_and_service_principals(ferrokms_bin, srv):
    for who in (f"arn:aws:iam::{ACCT}:root", ACCT, "dynamodb.amazonaws.com"):
        p = generate(ferrokms_bin, srv, who)
        assert p.returncode == 2, (who, p.stdout, p.stderr)
        assert "--principal" in p.stderr and p.stdout == ""
    p = generate(ferrokms_bin, srv, f"arn:aws:iam::{ACCT}:user/never-seen")
    assert p.returncode == 1 and "no successful KMS request" in p.stderr
    p = generate(ferrokms_bin, srv, f"arn:aws:iam::{ACCT}:user/x", "--since", "yesterday")
    assert p.returncode == 2 and "--since" in p.stderr
