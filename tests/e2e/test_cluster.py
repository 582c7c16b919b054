"""Several ferrokms nodes on one PostgreSQL database.

The rule under test (docs/deployment.md): a change acknowledged by one node
is in effect on every node for the next request, revocations included, and
writes that check-then-act (alias names, the default account, scheduled
rotation) happen once across nodes. These tests need the suite's
PostgreSQL (scripts/test.sh starts one and sets FERROKMS_TEST_PG_URL); without
it they are skipped.
"""

import concurrent.futures
import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conftest import (
    CLOCK,
    DEFAULT_ACCOUNT,
    PG_BIN,
    PG_URL,
    Server,
    clean_env,
    dump_database,
    expect_error,
    make_client,
    new_database,
)
from test_import import import_material

pytestmark = pytest.mark.skipif(not PG_URL, reason="needs FERROKMS_TEST_PG_URL (scripts/test.sh)")

DAY = 86400


def node(ferrokms_bin, base: Path, name: str, url: str, root_key=None, extra=()) -> Server:
    work = base / name
    work.mkdir(parents=True, exist_ok=True)
    args = ["--test-clock", *extra]
    if root_key is not None:
        args += ["--root-key-file", str(root_key)]
    return Server(ferrokms_bin, work, data_dir=work / "data", store_url=url, extra_args=args)


@pytest.fixture
def pair(ferrokms_bin, tmp_path):
    """Nodes a and b on one fresh database; b is given a's root key."""
    url = new_database()
    a = node(ferrokms_bin, tmp_path, "a", url).start()
    b = node(ferrokms_bin, tmp_path, "b", url, root_key=a.data_dir / "root.key").start()
    creds = a.profile_credentials()
    yield a, b, creds
    a.stop()
    b.stop()


def clients(pair, service="kms"):
    a, b, (ak, sk) = pair
    return (
        make_client(a.endpoint, ak, sk, service=service),
        make_client(b.endpoint, ak, sk, service=service),
    )


def test_key_created_on_one_node_is_usable_on_the_other_at_once(pair):
    ka, kb = clients(pair)
    key = ka.create_key(Description="made on a")["KeyMetadata"]["KeyId"]
    assert kb.describe_key(KeyId=key)["KeyMetadata"]["Description"] == "made on a"
    ct = ka.encrypt(KeyId=key, Plaintext=b"across nodes")["CiphertextBlob"]
    assert kb.decrypt(CiphertextBlob=ct)["Plaintext"] == b"across nodes"
    ct_b = kb.encrypt(KeyId=key, Plaintext=b"and back")["CiphertextBlob"]
    assert ka.decrypt(CiphertextBlob=ct_b)["Plaintext"] == b"and back"


def test_rotation_on_one_node_new_material_used_and_old_ciphertext_decrypts_on_the_other(pair):
    ka, kb = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    old = ka.encrypt(KeyId=key, Plaintext=b"v1")["CiphertextBlob"]
    kb.rotate_key_on_demand(KeyId=key)
    new = ka.encrypt(KeyId=key, Plaintext=b"v2")["CiphertextBlob"]
    assert new != old
    assert kb.decrypt(CiphertextBlob=new)["Plaintext"] == b"v2"
    assert kb.decrypt(CiphertextBlob=old)["Plaintext"] == b"v1"
    assert ka.describe_key(KeyId=key)["KeyMetadata"].get("CurrentKeyMaterialId") == kb.describe_key(
        KeyId=key
    )["KeyMetadata"].get("CurrentKeyMaterialId")


def test_disabled_key_is_refused_by_the_other_node_on_the_next_request(pair):
    ka, kb = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    kb.encrypt(KeyId=key, Plaintext=b"x")
    ka.disable_key(KeyId=key)
    expect_error(kb.encrypt, "DisabledException", KeyId=key, Plaintext=b"x")
    ka.enable_key(KeyId=key)
    kb.encrypt(KeyId=key, Plaintext=b"x")


def test_tightened_key_policy_is_enforced_by_the_other_node_on_the_next_request(pair):
    ka, kb = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    kb.encrypt(KeyId=key, Plaintext=b"x")
    root = f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
            {"Sid": "NoEncrypt", "Effect": "Deny", "Principal": {"AWS": root}, "Action": "kms:Encrypt", "Resource": "*"},
        ],
    }
    ka.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(policy))
    err = expect_error(kb.encrypt, "AccessDeniedException", KeyId=key, Plaintext=b"x")
    assert "explicit deny in a resource-based policy" in err.response["Error"]["Message"]


def test_revoked_grant_is_not_honoured_by_the_other_node(pair):
    a, b, (ak, sk) = pair
    ka, kb = clients(pair)
    iam_a, iam_b = clients(pair, "iam")
    iam_a.create_user(UserName="grantee")
    creds = iam_a.create_access_key(UserName="grantee")["AccessKey"]
    user_arn = f"arn:aws:iam::{DEFAULT_ACCOUNT}:user/grantee"
    # The default key policy: the user has no identity policy, only the grant.
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    grant = ka.create_grant(KeyId=key, GranteePrincipal=user_arn, Operations=["Encrypt"])
    user_b = make_client(b.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    user_b.encrypt(KeyId=key, Plaintext=b"granted")
    ka.revoke_grant(KeyId=key, GrantId=grant["GrantId"])
    expect_error(user_b.encrypt, "AccessDeniedException", KeyId=key, Plaintext=b"x")


def test_deleted_access_key_is_rejected_by_the_other_node_on_the_next_request(pair):
    a, b, _ = pair
    iam_a, _ = clients(pair, "iam")
    iam_a.create_user(UserName="shortlived")
    iam_a.put_user_policy(
        UserName="shortlived",
        PolicyName="kms",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}]}
        ),
    )
    creds = iam_a.create_access_key(UserName="shortlived")["AccessKey"]
    user_b = make_client(b.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    user_b.list_keys()
    iam_a.delete_access_key(UserName="shortlived", AccessKeyId=creds["AccessKeyId"])
    expect_error(user_b.list_keys, "UnrecognizedClientException")


def test_identity_policy_removed_on_one_node_denies_on_the_other(pair):
    a, b, _ = pair
    ka, _ = clients(pair)
    iam_a, _ = clients(pair, "iam")
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    iam_a.create_user(UserName="worker")
    iam_a.put_user_policy(
        UserName="worker",
        PolicyName="enc",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}]}
        ),
    )
    creds = iam_a.create_access_key(UserName="worker")["AccessKey"]
    user_b = make_client(b.endpoint, creds["AccessKeyId"], creds["SecretAccessKey"])
    user_b.encrypt(KeyId=key, Plaintext=b"x")
    iam_a.delete_user_policy(UserName="worker", PolicyName="enc")
    err = expect_error(user_b.encrypt, "AccessDeniedException", KeyId=key, Plaintext=b"x")
    assert "no identity-based policy allows the kms:Encrypt action" in err.response["Error"]["Message"]


def test_same_alias_created_on_both_nodes_at_once_exists_once(pair):
    ka, kb = clients(pair)
    k1 = ka.create_key()["KeyMetadata"]["KeyId"]
    k2 = kb.create_key()["KeyMetadata"]["KeyId"]
    outcomes = []
    for round_ in range(5):
        name = f"alias/race-{round_}"

        def create(client, key):
            try:
                client.create_alias(AliasName=name, TargetKeyId=key)
                return "ok"
            except ClientError as e:
                return e.response["Error"]["Code"]

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = sorted(pool.map(lambda ck: create(*ck), [(ka, k1), (kb, k2)]))
        outcomes.append(results)
        assert results == ["AlreadyExistsException", "ok"], results
        owners = {
            a["TargetKeyId"]
            for c in (ka, kb)
            for a in c.list_aliases()["Aliases"]
            if a["AliasName"] == name
        }
        assert len(owners) == 1, owners


def test_writes_on_both_nodes_at_once_are_all_kept(pair):
    ka, kb = clients(pair)

    def make(client, i):
        return client.create_key(Description=f"k{i}")["KeyMetadata"]["KeyId"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futs = [pool.submit(make, ka if i % 2 else kb, i) for i in range(40)]
        made = {f.result(timeout=60) for f in futs}
    assert len(made) == 40

    def listed(client):
        ids, marker = set(), None
        while True:
            page = client.list_keys(**({"Marker": marker} if marker else {}))
            ids |= {k["KeyId"] for k in page["Keys"]}
            if not page.get("Truncated"):
                return ids
            marker = page["NextMarker"]

    assert made <= listed(ka)
    assert listed(ka) == listed(kb)


def test_automatic_rotation_happens_once_across_nodes(pair):
    a, b, (ak, sk) = pair
    ka, kb = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    ka.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
    # Both nodes' clocks pass the rotation date; each runs its sweep.
    for srv in (a, b):
        r = srv.raw(CLOCK, {"Seconds": 91 * DAY}, access_key=ak, secret_key=sk)
        assert r.status == 200, r.body
    rotations = kb.list_key_rotations(KeyId=key)["Rotations"]
    assert [r["RotationType"] for r in rotations] == ["AUTOMATIC"], rotations
    assert ka.list_key_rotations(KeyId=key)["Rotations"] == rotations


def test_key_deleted_at_the_end_of_its_window_is_gone_on_every_node(pair):
    a, b, _ = pair
    ka, kb = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    ka.create_alias(AliasName="alias/doomed", TargetKeyId=key)
    kb.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert ka.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    r = a.raw(CLOCK, {"Seconds": 8 * DAY})
    assert r.status == 200, r.body
    expect_error(kb.describe_key, "NotFoundException", KeyId=key)
    assert "alias/doomed" not in {x["AliasName"] for x in kb.list_aliases()["Aliases"]}


def test_nodes_starting_together_on_an_empty_database_create_one_default_account(ferrokms_bin, tmp_path):
    url = new_database()
    first = node(ferrokms_bin, tmp_path, "first", url)
    # Both need the same root key before either starts.
    first.data_dir.mkdir(parents=True)
    root_key = tmp_path / "root.key"
    root_key.write_text("ab" * 32 + "\n")
    root_key.chmod(0o600)
    nodes = [
        node(ferrokms_bin, tmp_path, name, url, root_key=root_key) for name in ("n1", "n2", "n3")
    ]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda n: n.start(), nodes))
    try:
        written = [n for n in nodes if n.credentials_file.exists()]
        assert len(written) == 1, [str(n.credentials_file) for n in nodes]
        ak, sk = written[0].profile_credentials()
        for n in nodes:
            sts = make_client(n.endpoint, ak, sk, service="sts")
            assert sts.get_caller_identity()["Account"] == DEFAULT_ACCOUNT
    finally:
        for n in nodes:
            n.stop()


def test_node_with_a_different_root_key_refuses_to_start(pair, ferrokms_bin, tmp_path):
    a, _, _ = pair
    other = tmp_path / "other.key"
    other.write_text("22" * 32 + "\n")
    other.chmod(0o600)
    stranger = node(ferrokms_bin, tmp_path, "stranger", a.store_url, root_key=other)
    with pytest.raises(RuntimeError):
        stranger.start()
    assert "sealed with a different root key" in stranger.stderr_text()
    # Without any root key, a node joining the database is told what is
    # missing, and no fresh root key is generated beside it.
    keyless = node(ferrokms_bin, tmp_path, "keyless", a.store_url)
    with pytest.raises(RuntimeError):
        keyless.start()
    assert "a root key is generated only for a new database" in keyless.stderr_text()
    assert not (keyless.data_dir / "root.key").exists()


def test_restored_pg_dump_decrypts_ciphertexts_made_before_the_backup(pair, ferrokms_bin, tmp_path):
    a, _, (ak, sk) = pair
    ka, _ = clients(pair)
    key = ka.create_key(Description="backed up")["KeyMetadata"]["KeyId"]
    ka.create_alias(AliasName="alias/backed-up", TargetKeyId=key)
    ct = ka.encrypt(KeyId=key, Plaintext=b"before the backup")["CiphertextBlob"]
    dump = dump_database(a.store_url)
    # Changes after the backup are not in it.
    ka.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)

    restored = new_database()
    u = urlsplit(restored)
    psql = str(Path(PG_BIN) / "psql") if PG_BIN else "psql"
    subprocess.run(
        [psql, "-q", "-v", "ON_ERROR_STOP=1", "-h", u.hostname, "-p", str(u.port), "-U", u.username, u.path.lstrip("/")],
        input=dump,
        check=True,
        timeout=60,
        capture_output=True,
        env=clean_env(),
    )
    c = node(ferrokms_bin, tmp_path, "restored", restored, root_key=a.data_dir / "root.key").start()
    try:
        kc = make_client(c.endpoint, ak, sk)
        meta = kc.describe_key(KeyId="alias/backed-up")["KeyMetadata"]
        assert meta["KeyId"] == key and meta["KeyState"] == "Enabled"
        assert kc.decrypt(CiphertextBlob=ct)["Plaintext"] == b"before the backup"
    finally:
        c.stop()


def test_account_created_offline_on_the_database_is_usable_on_running_nodes_at_once(pair, ferrokms_bin, tmp_path):
    a, b, _ = pair
    out = subprocess.run(
        [
            str(ferrokms_bin), "account", "create", "444455556666",
            "--store", a.store_url,
            "--data-dir", str(tmp_path / "admin"),
            "--root-key-file", str(a.data_dir / "root.key"),
        ],
        capture_output=True, timeout=60, env=clean_env(), check=True,
    )
    assert b"next request" in out.stderr
    lines = dict(
        line.split(" = ", 1) for line in out.stdout.decode().splitlines() if " = " in line
    )
    sts = make_client(b.endpoint, lines["aws_access_key_id"], lines["aws_secret_access_key"], service="sts")
    assert sts.get_caller_identity()["Account"] == "444455556666"


def test_imported_material_is_usable_on_the_other_node_and_its_deletion_is_enforced_there(pair):
    ka, kb = clients(pair)
    key = ka.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    import_material(ka, key, material)
    ct = kb.encrypt(KeyId=key, Plaintext=b"imported")["CiphertextBlob"]
    assert ka.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported"
    ka.delete_imported_key_material(KeyId=key)
    assert kb.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingImport"
    expect_error(kb.decrypt, "KMSInvalidStateException", CiphertextBlob=ct)
    # The same material, imported again on the other node, decrypts the old ciphertext.
    import_material(kb, key, material)
    assert ka.decrypt(CiphertextBlob=ct)["Plaintext"] == b"imported"


def test_replica_made_on_one_node_decrypts_on_the_other(pair):
    ka, kb = clients(pair)
    a, b, (ak, sk) = pair
    key = ka.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    ct = ka.encrypt(KeyId=key, Plaintext=b"mrk")["CiphertextBlob"]
    ka.replicate_key(KeyId=key, ReplicaRegion="eu-west-1")
    west_b = make_client(b.endpoint, ak, sk, region="eu-west-1")
    assert west_b.decrypt(CiphertextBlob=ct, KeyId=key)["Plaintext"] == b"mrk"


def test_key_access_reads_the_shared_database(pair, ferrokms_bin):
    a, _, _ = pair
    ka, _ = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    out = subprocess.run(
        [str(ferrokms_bin), "key", "access", "--store", a.store_url, "--data-dir", str(a.data_dir), key],
        capture_output=True, timeout=60, env=clean_env(),
    )
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    assert f"arn:aws:iam::{DEFAULT_ACCOUNT}:root" in out.stdout.decode()


def test_last_usage_flushed_on_one_node_is_seen_on_the_other_and_never_moves_back(pair):
    a, b, (ak, sk) = pair
    ka, kb = clients(pair)
    key = ka.create_key()["KeyMetadata"]["KeyId"]
    ka.encrypt(KeyId=key, Plaintext=b"x")
    on_a = ka.get_key_last_usage(KeyId=key)["KeyLastUsage"]
    # FerrokmsAdvanceClock runs the sweep, which writes usage under the cluster lock.
    r = a.raw(CLOCK, {"Seconds": 0}, access_key=ak, secret_key=sk)
    assert r.status == 200 and r.json()["UsageFlushed"] >= 1, r.body
    assert kb.get_key_last_usage(KeyId=key)["KeyLastUsage"] == on_a
    # b holds exactly what is stored: its flush writes nothing back.
    r = b.raw(CLOCK, {"Seconds": 0}, access_key=ak, secret_key=sk)
    assert r.status == 200 and r.json()["UsageFlushed"] == 0, r.body
    # A later use on b reaches a; a's older use does not replace it.
    kb.generate_data_key(KeyId=key, NumberOfBytes=16)
    r = b.raw(CLOCK, {"Seconds": 0}, access_key=ak, secret_key=sk)
    assert r.status == 200, r.body
    on_b = kb.get_key_last_usage(KeyId=key)["KeyLastUsage"]
    assert on_b["Operation"] == "GenerateDataKey"
    assert ka.get_key_last_usage(KeyId=key)["KeyLastUsage"] == on_b
    a.raw(CLOCK, {"Seconds": 0}, access_key=ak, secret_key=sk)
    assert kb.get_key_last_usage(KeyId=key)["KeyLastUsage"] == on_b


def test_max_staleness_bounds_how_long_a_node_may_serve_an_old_state(ferrokms_bin, tmp_path):
    """With --max-staleness-ms N a node may serve a change made elsewhere up
    to N ms late, never later (docs/deployment.md)."""
    url = new_database()
    a = node(ferrokms_bin, tmp_path, "a", url).start()
    b = node(
        ferrokms_bin, tmp_path, "b", url, root_key=a.data_dir / "root.key", extra=["--max-staleness-ms", "300"]
    ).start()
    try:
        ak, sk = a.profile_credentials()
        ka, kb = make_client(a.endpoint, ak, sk), make_client(b.endpoint, ak, sk)
        # b learns of the key at most 300 ms after it was created.
        key = ka.create_key()["KeyMetadata"]["KeyId"]
        time.sleep(0.35)
        kb.encrypt(KeyId=key, Plaintext=b"x")
        ka.disable_key(KeyId=key)
        disabled_at = time.monotonic()
        # Within the bound b may still encrypt; past it, it must refuse.
        time.sleep(0.35)
        expect_error(kb.encrypt, "DisabledException", KeyId=key, Plaintext=b"x")
        assert time.monotonic() - disabled_at < 5
        # Writes on b still see everything first (they take the lock and catch up).
        ka.enable_key(KeyId=key)
        kb.disable_key(KeyId=key)
        assert ka.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    finally:
        a.stop()
        b.stop()
