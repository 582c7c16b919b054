"""Operations: /health, /ready, /metrics, TLS on the listener, and backup
and restore of a data directory. Real servers, real clients, 127.0.0.1."""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import re
import shutil
import ssl
import subprocess

import boto3
import pytest
from botocore.config import Config

import conftest
from conftest import REGION, Server, clean_env, raw_request


def get(server: Server, path: str, method: str = "GET"):
    host, port = server.endpoint.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
    finally:
        conn.close()


def samples(text: str) -> dict:
    """`name{labels}` -> value, for every sample line of an exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


# --- health, readiness, metrics --------------------------------------------


def test_health_and_ready_answer_get_without_credentials(server_factory):
    s = server_factory()
    assert get(s, "/health")[0] == 200
    status, headers, body = get(s, "/ready")
    assert status == 200 and body == b"ready\n"
    assert headers["content-type"].startswith("text/plain")


def test_operator_paths_do_not_accept_aws_style_posts(server_factory):
    s = server_factory()
    for path in ("/health", "/ready", "/metrics"):
        assert get(s, path, method="POST")[0] == 405, path
    # The AWS protocols' path is untouched: an unsigned GET / is an AWS error.
    status, headers, body = get(s, "/")
    assert status == 400 and b"UnknownOperationException" in body


def test_metrics_count_requests_by_operation_outcome_and_sigv4_failures(server_factory):
    s = server_factory()
    kms = s.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(3):
        kms.encrypt(KeyId=key, Plaintext=b"x")
    with pytest.raises(Exception):
        kms.describe_key(KeyId="alias/does-not-exist")
    unsigned = raw_request(s.endpoint, "TrentService.Encrypt", {}, sign=False)
    assert unsigned.status == 400
    bad = raw_request(s.endpoint, "TrentService.ListKeys", {}, access_key="AKIAAAAAAAAAAAAAAAAA", secret_key="x")
    assert bad.status == 400

    status, headers, body = get(s, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    m = samples(body.decode())
    assert m['ferrokms_requests_total{service="kms",operation="Encrypt",outcome="ok"}'] == 3
    assert m['ferrokms_requests_total{service="kms",operation="CreateKey",outcome="ok"}'] == 1
    assert m['ferrokms_requests_total{service="kms",operation="DescribeKey",outcome="client_error"}'] == 1
    assert m['ferrokms_errors_total{service="kms",code="NotFoundException"}'] == 1
    assert m['ferrokms_sigv4_failures_total{reason="missing"}'] == 1
    assert m['ferrokms_sigv4_failures_total{reason="unknown_key"}'] == 1
    # The histogram counts every outcome: 3 ok and the unsigned one.
    assert m['ferrokms_requests_total{service="kms",operation="Encrypt",outcome="client_error"}'] == 1
    assert m['ferrokms_request_duration_seconds_count{service="kms",operation="Encrypt"}'] == 4
    assert m['ferrokms_request_duration_seconds_bucket{service="kms",operation="Encrypt",le="+Inf"}'] == 4
    assert m['ferrokms_cache_requests_total{cache="profile",result="hit"}'] >= 3
    assert m["ferrokms_keys"] == 1
    assert m["ferrokms_ready"] == 1
    assert 'ferrokms_authorization_denials_total{service="kms"}' in m
    assert m["ferrokms_connections_total"] >= 1


def test_metrics_report_the_key_policy_cache_sharing_policies_by_text(server_factory):
    s = server_factory()
    kms = s.client()
    # Two keys with the default policy share one parsed copy; a third with
    # its own policy text is parsed anew.
    kms.create_key()
    kms.create_key()
    policy = kms.get_key_policy(KeyId=kms.list_keys()["Keys"][0]["KeyId"], PolicyName="default")["Policy"]
    kms.create_key(Policy=policy.replace("key-default-1", "key-custom-1"))
    m = samples(get(s, "/metrics")[2].decode())
    hits = m['ferrokms_cache_requests_total{cache="policy",result="hit"}']
    misses = m['ferrokms_cache_requests_total{cache="policy",result="miss"}']
    assert hits >= 1 and misses >= 2, (hits, misses)


# --- TLS --------------------------------------------------------------------


def self_signed(tmp_path):
    """A certificate for 127.0.0.1 (IP SAN) and its key, PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file = tmp_path / "cert.pem"
    key_file = tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class TlsServer(Server):
    cert: str = ""
    key: str = ""

    def args(self) -> list:
        return super().args() + ["--tls-cert", self.cert, "--tls-key", self.key]


@pytest.fixture
def tls_server(ferrokms_bin, tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    monkeypatch.setattr(
        conftest, "LISTEN_RE", re.compile(r"^ferrokms listening on (https?://127\.0\.0\.1:(\d+))\s*$")
    )
    s = TlsServer(ferrokms_bin, tmp_path, data_dir=tmp_path / "data")
    s.cert, s.key = str(cert), str(key)
    s.start()
    yield s, cert
    s.stop()


def test_boto3_over_tls_verifies_the_certificate_and_round_trips(tls_server):
    s, cert = tls_server
    assert s.endpoint.startswith("https://")
    ak, sk = s.profile_credentials()
    kms = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name=REGION).client(
        "kms",
        endpoint_url=s.endpoint,
        verify=str(cert),
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=15),
    )
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"over tls")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"over tls"


DENY_WITHOUT_TLS = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"},
        {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Encrypt",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ],
}


def test_aws_secure_transport_is_true_over_tls_and_false_over_plain_http(tls_server, server_factory):
    s, cert = tls_server
    ak, sk = s.profile_credentials()
    kms = boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk, region_name=REGION).client(
        "kms",
        endpoint_url=s.endpoint,
        verify=str(cert),
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=15),
    )
    key = kms.create_key(Policy=json.dumps(DENY_WITHOUT_TLS))["KeyMetadata"]["KeyId"]
    assert kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]

    plain = server_factory()
    pk = plain.client()
    key = pk.create_key(Policy=json.dumps(DENY_WITHOUT_TLS))["KeyMetadata"]["KeyId"]
    conftest.expect_error(pk.encrypt, "AccessDeniedException", KeyId=key, Plaintext=b"x")


def test_tls_listener_refuses_plain_http_and_unverified_clients_fail(tls_server):
    s, cert = tls_server
    port = s.port
    # Plain HTTP is not served: it gets a plain-HTTP 400 saying to use
    # https:// (issue #25 item 13), and the connection is closed.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/health")
    r = conn.getresponse()
    assert r.status == 400
    assert b"use an https:// endpoint URL" in r.read()
    conn.close()
    # A client that trusts only the system roots refuses the self-signed cert.
    ctx = ssl.create_default_context()
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    with pytest.raises(ssl.SSLError):
        conn.request("GET", "/health")
    conn.close()
    # With the cert trusted, the operator endpoints answer over TLS.
    ctx = ssl.create_default_context(cafile=str(cert))
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
    conn.request("GET", "/health")
    assert conn.getresponse().status == 200
    conn.close()


def test_serve_refuses_to_start_with_a_missing_or_mismatched_key(ferrokms_bin, tmp_path):
    cert, key = self_signed(tmp_path)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    _, other_key = self_signed(other_dir)
    for k in (tmp_path / "nope.pem", other_key):
        p = subprocess.run(
            [str(ferrokms_bin), "serve", "--in-memory", "--listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(k)],
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        assert p.returncode != 0, p.stdout
        assert "listening" not in p.stdout


# --- backup and restore -------------------------------------------------------


def run_cli(ferrokms_bin, *args):
    return subprocess.run(
        [str(ferrokms_bin), *map(str, args)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.skipif(bool(conftest.PG_URL), reason="`ferrokms backup` copies the SQLite store; PostgreSQL: test_cluster.py")
def test_online_backup_restores_to_a_server_that_decrypts_ciphertexts_made_before_it(
    server_factory, ferrokms_bin, tmp_path
):
    s = server_factory()
    kms = s.client()
    key = kms.create_key(Description="before backup")["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"made before the backup")["CiphertextBlob"]

    backup = tmp_path / "backup.sqlite"
    p = run_cli(ferrokms_bin, "backup", "--data-dir", s.data_dir, "--to", backup)
    assert p.returncode == 0, p.stderr
    assert backup.stat().st_mode & 0o077 == 0, "the backup must be private"
    assert "root key is not in the backup" in p.stderr
    # A second backup to the same file is refused, not overwritten.
    assert run_cli(ferrokms_bin, "backup", "--data-dir", s.data_dir, "--to", backup).returncode != 0

    # Changes after the backup are not in it.
    kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    later = kms.create_key(Description="after backup")["KeyMetadata"]["KeyId"]
    s.stop()

    restored = tmp_path / "restored"
    restored.mkdir(mode=0o700)
    shutil.copy(backup, restored / "ferrokms.sqlite")
    shutil.copy(s.data_dir / "root.key", restored / "root.key")
    (restored / "root.key").chmod(0o600)
    r = server_factory(data_dir=restored)
    kms2 = r.client(*s.profile_credentials())
    assert kms2.decrypt(CiphertextBlob=blob)["Plaintext"] == b"made before the backup"
    assert kms2.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    ids = {k["KeyId"] for k in kms2.list_keys()["Keys"]}
    assert key in ids and later not in ids


@pytest.mark.skipif(bool(conftest.PG_URL), reason="`ferrokms backup` copies the SQLite store; PostgreSQL: test_cluster.py")
def test_a_backup_restored_with_another_root_key_does_not_serve(server_factory, ferrokms_bin, tmp_path):
    s = server_factory()
    kms = s.client()
    kms.create_key()
    backup = tmp_path / "b.sqlite"
    assert run_cli(ferrokms_bin, "backup", "--data-dir", s.data_dir, "--to", backup).returncode == 0
    s.stop()
    restored = tmp_path / "wrong-key"
    restored.mkdir(mode=0o700)
    shutil.copy(backup, restored / "ferrokms.sqlite")
    (restored / "root.key").write_text("11" * 32 + "\n")
    (restored / "root.key").chmod(0o600)
    r = server_factory(data_dir=restored, start=False)
    with pytest.raises(RuntimeError, match="exited"):
        r.start()


def test_backup_of_a_directory_without_a_database_fails_cleanly(ferrokms_bin, tmp_path):
    p = run_cli(ferrokms_bin, "backup", "--data-dir", tmp_path / "empty", "--to", tmp_path / "x.sqlite")
    assert p.returncode != 0 and "not a ferrokms data directory" in p.stderr
    assert not (tmp_path / "x.sqlite").exists()
