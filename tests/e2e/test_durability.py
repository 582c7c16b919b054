"""Durability: state survives a graceful stop (SIGTERM) and a crash (SIGKILL)
on the same data directory; concurrency: parallel load gives no errors."""

import concurrent.futures
import os
import time

from conftest import expect_error

POLICY = '{"Version": "2012-10-17",  "Statement": [{"Sid":"keep-me","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}'


def test_sigterm_stops_gracefully_with_exit_code_zero(server_factory):
    s = server_factory()
    s.client().list_keys()
    t0 = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - t0 < 5


def test_state_survives_sigterm_and_restart_on_same_data_dir(server_factory):
    s = server_factory()
    c = s.client()
    k1 = c.create_key(Description="survivor", Policy=POLICY, Tags=[{"TagKey": "t", "TagValue": "v"}])["KeyMetadata"]
    k2 = c.create_key()["KeyMetadata"]
    c.create_alias(AliasName="alias/durable", TargetKeyId=k1["KeyId"])
    c.disable_key(KeyId=k2["KeyId"])
    c.enable_key_rotation(KeyId=k1["KeyId"], RotationPeriodInDays=180)
    blob = c.encrypt(KeyId="alias/durable", Plaintext=b"before restart", EncryptionContext={"a": "b"})["CiphertextBlob"]
    dk = c.generate_data_key(KeyId=k1["KeyId"], KeySpec="AES_256")
    k3 = c.create_key()["KeyMetadata"]
    sched = c.schedule_key_deletion(KeyId=k3["KeyId"], PendingWindowInDays=9)

    assert s.stop() == 0
    s.start()
    c = s.client()  # same credentials file, new port

    md = c.describe_key(KeyId="alias/durable")["KeyMetadata"]
    assert md == k1
    assert c.get_key_policy(KeyId=k1["KeyId"], PolicyName="default")["Policy"] == POLICY
    assert c.list_resource_tags(KeyId=k1["KeyId"])["Tags"] == [{"TagKey": "t", "TagValue": "v"}]
    assert [a["AliasName"] for a in c.list_aliases(KeyId=k1["KeyId"])["Aliases"]] == ["alias/durable"]
    rot = c.get_key_rotation_status(KeyId=k1["KeyId"])
    assert rot["KeyRotationEnabled"] is True and rot["RotationPeriodInDays"] == 180
    assert c.describe_key(KeyId=k2["KeyId"])["KeyMetadata"]["KeyState"] == "Disabled"
    md3 = c.describe_key(KeyId=k3["KeyId"])["KeyMetadata"]
    assert md3["KeyState"] == "PendingDeletion"
    assert md3["DeletionDate"] == sched["DeletionDate"]
    dec = c.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    assert dec["Plaintext"] == b"before restart"
    assert dec["KeyId"] == k1["Arn"]
    assert c.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    assert {k["KeyId"] for k in c.list_keys()["Keys"]} == {k1["KeyId"], k2["KeyId"], k3["KeyId"]}
    expect_error(c.encrypt, "DisabledException", KeyId=k2["KeyId"], Plaintext=b"x")
    # Writes still work after the restart.
    k4 = c.create_key()["KeyMetadata"]
    assert c.decrypt(CiphertextBlob=c.encrypt(KeyId=k4["KeyId"], Plaintext=b"new")["CiphertextBlob"])["Plaintext"] == b"new"


def test_key_survives_kill_9_right_after_create_key_returned(server_factory):
    s = server_factory()
    c = s.client()
    old = c.create_key()["KeyMetadata"]
    blob_old = c.encrypt(KeyId=old["KeyId"], Plaintext=b"old ciphertext")["CiphertextBlob"]
    new = c.create_key(Description="last write before crash")["KeyMetadata"]
    blob_new = c.encrypt(KeyId=new["KeyId"], Plaintext=b"new ciphertext")["CiphertextBlob"]
    c.create_alias(AliasName="alias/crash", TargetKeyId=new["KeyId"])
    assert s.kill() == -9

    s.start()
    c = s.client()
    assert c.describe_key(KeyId=new["KeyId"])["KeyMetadata"]["Description"] == "last write before crash"
    assert c.describe_key(KeyId="alias/crash")["KeyMetadata"]["KeyId"] == new["KeyId"]
    assert c.decrypt(CiphertextBlob=blob_new)["Plaintext"] == b"new ciphertext"
    assert c.decrypt(CiphertextBlob=blob_old)["Plaintext"] == b"old ciphertext"


def test_kill_9_immediately_after_create_key_keeps_the_key(server_factory):
    s = server_factory()
    c = s.client()
    md = c.create_key()["KeyMetadata"]
    s.kill()
    s.start()
    assert s.client().describe_key(KeyId=md["KeyId"])["KeyMetadata"]["Arn"] == md["Arn"]


def test_data_dir_restart_keeps_credentials_and_root_key_files(server_factory):
    s = server_factory()
    files = {p.name: p.read_bytes() for p in s.data_dir.iterdir() if p.name in ("credentials", "root.key")}
    assert set(files) == {"credentials", "root.key"}
    s.restart()
    for name, data in files.items():
        assert (s.data_dir / name).read_bytes() == data, name


def test_parallel_encrypt_decrypt_8_threads_x_25_has_no_errors(server):
    c0 = server.client()
    keys = [c0.create_key()["KeyMetadata"]["KeyId"] for _ in range(4)]
    deadline = time.monotonic() + 90

    def worker(n):
        c = server.client()
        done = 0
        for i in range(25):
            assert time.monotonic() < deadline, "load test took too long"
            kid = keys[(n + i) % len(keys)]
            pt = os.urandom(1 + (n * 25 + i) % 200)
            ctx = {"worker": str(n), "i": str(i)}
            enc = c.encrypt(KeyId=kid, Plaintext=pt, EncryptionContext=ctx)
            dec = c.decrypt(CiphertextBlob=enc["CiphertextBlob"], EncryptionContext=ctx)
            assert dec["Plaintext"] == pt
            assert dec["KeyId"].endswith(kid)
            done += 1
        return done

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8), timeout=120))
    assert results == [25] * 8


def test_parallel_create_key_and_alias_writes_are_all_durable(server_factory):
    s = server_factory()

    def worker(n):
        c = s.client()
        out = []
        for i in range(5):
            kid = c.create_key(Description=f"w{n}-{i}")["KeyMetadata"]["KeyId"]
            c.create_alias(AliasName=f"alias/par-{n}-{i}", TargetKeyId=kid)
            c.tag_resource(KeyId=kid, Tags=[{"TagKey": "n", "TagValue": str(n)}])
            out.append(kid)
        return out

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        made = [k for ks in pool.map(worker, range(6), timeout=120) for k in ks]
    assert len(set(made)) == 30
    s.kill()
    s.start()
    c = s.client()
    listed = []
    for page in c.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 7}):
        listed += [k["KeyId"] for k in page["Keys"]]
    assert sorted(listed) == sorted(made)
    aliases = {a["AliasName"] for a in c.list_aliases(Limit=100)["Aliases"] if not a["AliasName"].startswith("alias/aws/")}
    assert aliases == {f"alias/par-{n}-{i}" for n in range(6) for i in range(5)}
