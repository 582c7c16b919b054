"""Durability under faults: nothing acknowledged is lost.

* kill -9 a node in the middle of a stream of CreateKey / PutKeyPolicy /
  CreateGrant / Encrypt calls, restart it, and find every acknowledged
  change and every acknowledged ciphertext (on SQLite, and on PostgreSQL
  when the suite runs against it);
* PostgreSQL restarted under load: requests fail cleanly and quickly while
  it is down (no hang) and the node recovers by itself;
* SQLite on a full disk: clean errors, no corruption, and the node carries
  on once space is back.

Every loop is bounded in count and in time.
"""

import json
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ConnectionClosedError, ReadTimeoutError

from conftest import DEFAULT_ACCOUNT, PG_URL, Server, make_client

STREAM_SECONDS = 1.5
MAX_OPS = 400


class Ledger:
    """What the server acknowledged, per kind of change."""

    def __init__(self):
        self.lock = threading.Lock()
        self.keys = set()
        self.policies = {}  # key id -> policy text last acknowledged
        self.grants = {}  # grant id -> key id
        self.ciphertexts = []  # (blob, plaintext)


def policy_text(i: int) -> str:
    root = f"arn:aws:iam::{DEFAULT_ACCOUNT}:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": f"Owner{i}", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"}
            ],
        }
    )


def stream(client, ledger: Ledger, stop: threading.Event, worker: int):
    """One client's stream of mixed writes and encryptions until the server
    dies or the bound is reached."""
    i = 0
    key = None
    while not stop.is_set() and i < MAX_OPS:
        i += 1
        try:
            step = i % 4
            if step == 1 or key is None:
                key = client.create_key(Description=f"w{worker}-{i}")["KeyMetadata"]["KeyId"]
                with ledger.lock:
                    ledger.keys.add(key)
            elif step == 2:
                text = policy_text(i)
                client.put_key_policy(KeyId=key, PolicyName="default", Policy=text)
                with ledger.lock:
                    ledger.policies[key] = text
            elif step == 3:
                g = client.create_grant(
                    KeyId=key,
                    GranteePrincipal=f"arn:aws:iam::{DEFAULT_ACCOUNT}:root",
                    Operations=["Decrypt"],
                )
                with ledger.lock:
                    ledger.grants[g["GrantId"]] = key
            else:
                pt = f"w{worker}-{i}".encode()
                ct = client.encrypt(KeyId=key, Plaintext=pt)["CiphertextBlob"]
                with ledger.lock:
                    ledger.ciphertexts.append((ct, pt))
        except (ClientError, EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, OSError):
            # The server died mid-request: that request was never acknowledged.
            return


def check_ledger(client, ledger: Ledger):
    for key in ledger.keys:
        client.describe_key(KeyId=key)
    for key, text in ledger.policies.items():
        got = client.get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        assert json.loads(got) == json.loads(text), key
    by_key = {}
    for grant, key in ledger.grants.items():
        by_key.setdefault(key, set()).add(grant)
    for key, grants in by_key.items():
        listed = {g["GrantId"] for g in client.list_grants(KeyId=key, Limit=100)["Grants"]}
        assert grants <= listed, key
    for ct, pt in ledger.ciphertexts:
        assert client.decrypt(CiphertextBlob=ct)["Plaintext"] == pt


@pytest.mark.parametrize("round_", range(3))
def test_kill_9_during_a_stream_of_writes_loses_nothing_acknowledged(server_factory, round_):
    srv = server_factory()
    client = srv.client()
    ledger = Ledger()
    stop = threading.Event()
    threads = [threading.Thread(target=stream, args=(client, ledger, stop, w)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(STREAM_SECONDS * (0.5 + round_ / 2))
    srv.kill()
    stop.set()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert len(ledger.keys) > 0, "the stream made progress before the kill"
    srv.start()
    check_ledger(srv.client(), ledger)


def pg_dir() -> Path:
    d = os.environ.get("FERROKMS_TEST_PG_DIR")
    if not d:
        pytest.skip("needs FERROKMS_TEST_PG_DIR (scripts/test.sh)")
    return Path(d)


@pytest.mark.skipif(not PG_URL, reason="needs the suite's PostgreSQL (scripts/test.sh)")
def test_postgres_restart_under_load_gives_errors_not_hangs_and_the_node_recovers(server_factory):
    srv = server_factory()
    client = srv.client()
    key = client.create_key()["KeyMetadata"]["KeyId"]
    outcomes = []
    stop = threading.Event()

    def load():
        c = srv.client()
        n = 0
        while not stop.is_set() and n < 5000:
            n += 1
            started = time.monotonic()
            try:
                c.encrypt(KeyId=key, Plaintext=b"x")
                outcomes.append(("ok", time.monotonic() - started))
            except ClientError as e:
                outcomes.append((e.response["Error"]["Code"], time.monotonic() - started))

    workers = [threading.Thread(target=load) for _ in range(2)]
    for w in workers:
        w.start()
    time.sleep(0.5)
    subprocess.run(
        ["bash", str(Path(__file__).resolve().parents[2] / "scripts" / "pg.sh"), "restart", str(pg_dir())],
        check=True,
        timeout=60,
    )
    # Recovery: within a bounded time, requests succeed again by themselves.
    deadline = time.monotonic() + 30
    recovered = False
    while time.monotonic() < deadline:
        try:
            client.encrypt(KeyId=key, Plaintext=b"after")
            recovered = True
            break
        except ClientError:
            time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join(timeout=60)
        assert not w.is_alive()
    assert recovered, "the node did not recover after PostgreSQL came back"
    errors = {code for code, _ in outcomes if code != "ok"}
    assert errors <= {"DependencyTimeoutException"}, errors
    slowest = max(t for _, t in outcomes)
    assert slowest < 20, f"a request waited {slowest:.1f}s: that is a hang"
    # The key and its material are intact after the restart.
    ct = client.encrypt(KeyId=key, Plaintext=b"intact")["CiphertextBlob"]
    assert client.decrypt(CiphertextBlob=ct)["Plaintext"] == b"intact"


@pytest.mark.skipif(bool(PG_URL), reason="the SQLite data dir (this run keeps state in PostgreSQL)")
def test_sqlite_disk_full_gives_clean_errors_no_corruption_and_recovers(ferrokms_bin, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    try:
        work = tmp_path / "work"
        work.mkdir()
        srv = Server(ferrokms_bin, work, data_dir=mnt / "data")
        srv.start()
        client = srv.client()
        # Fill the disk with a file we can delete later, leaving a little room.
        filler = mnt / "filler"
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 256 * 1024))
        acknowledged = []
        failures = []
        for i in range(3000):
            try:
                acknowledged.append(
                    client.create_key(Description="d" * 200)["KeyMetadata"]["KeyId"]
                )
            except ClientError as e:
                failures.append((e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]))
                if len(failures) >= 5:
                    break
        assert failures, "the disk never filled up"
        assert {f for f in failures} <= {("KMSInternalException", 500)}, failures
        # Reads keep working on a full disk.
        for key in acknowledged[-5:]:
            client.describe_key(KeyId=key)
        # Space comes back: writes work again without a restart.
        filler.unlink()
        later = client.create_key()["KeyMetadata"]["KeyId"]
        srv.stop()
        db = sqlite3.connect(str(mnt / "data" / "ferrokms.sqlite"))
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.close()
        srv.start()
        client = srv.client()
        for key in acknowledged + [later]:
            client.describe_key(KeyId=key)
        srv.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
