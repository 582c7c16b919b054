"""ferrokms as a KMS with external key stores (XKS): the six custom key store
operations through boto3, keys in an external key store and their
cryptographic operations, against a real proxy — a second ferrokms process
serving the XKS proxy API (`serve --xks`) over HTTPS with a certificate this
module makes, trusted by the KMS server through `--xks-ca-file`.
docs/xks.md ("ferrokms as a KMS with external key stores") describes what
is covered."""

import base64
import json
import re
import socket
import subprocess
import time
import uuid

import pytest

import conftest
from accounts import uid
from conftest import REGION, Server, expect_error
from policies import allow
from test_ops import TlsServer

HTTPS_RE = re.compile(r"^ferrokms listening on (https?://127\.0\.0\.1:(\d+))\s*$")
PATH = "/xks/kms/xks/v1"
ISE = "KMSInvalidStateException"


class ProxyServer(TlsServer):
    """The proxy: `serve --xks` over HTTPS on a fixed port (so that a
    restart keeps the endpoint the key store names)."""

    def listen_pattern(self):
        return HTTPS_RE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def xks_cli(ferrokms_bin, *args):
    p = subprocess.run(
        [str(ferrokms_bin), "xks", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=conftest.clean_env(),
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def ca_and_leaf(d):
    """A CA certificate (the KMS server's --xks-ca-file) and the proxy's
    certificate for 127.0.0.1 signed by it (with its key): PEM files. (A
    self-signed CA certificate cannot be a server's own: webpki refuses a CA
    as the end entity.)"""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ferrokms test XKS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "proxy.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (d / "proxy.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return d / "ca.pem", d / "proxy.pem", d / "proxy.key"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """(CA file for the KMS, proxy certificate, proxy key)."""
    return ca_and_leaf(tmp_path_factory.mktemp("xks-certs"))


@pytest.fixture(scope="module")
def proxy(ferrokms_bin, tmp_path_factory, certs):
    work = tmp_path_factory.mktemp("xks-proxy")
    s = ProxyServer(ferrokms_bin, work, data_dir=work / "data", extra_args=["--xks"])
    s.cert, s.key = str(certs[1]), str(certs[2])
    s.listen = f"127.0.0.1:{free_port()}"
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def srv(ferrokms_bin, tmp_path_factory, certs):
    """The KMS: an in-memory --dev server (accounts by 12-digit access key
    ids) that trusts the proxy's certificate. The proxy timeout is raised
    from AWS's 250 ms: debug builds on a shared two-core machine."""
    work = tmp_path_factory.mktemp("xks-kms")
    s = Server(
        ferrokms_bin,
        work,
        in_memory=True,
        dev=True,
        extra_args=["--xks-ca-file", str(certs[0]), "--xks-timeout-ms", "3000"],
    ).start()
    yield s
    s.stop()


def store_of(server):
    """The `ferrokms xks ...` arguments naming a server's store: its data
    dir, and its database on the PostgreSQL run."""
    args = ["--data-dir", server.data_dir]
    if server.store_url:
        args += ["--store", server.store_url]
    return args


@pytest.fixture(scope="module")
def cred(ferrokms_bin, proxy):
    c = xks_cli(ferrokms_bin, "credential", "create", *store_of(proxy))
    return {"AccessKeyId": c["AccessKeyId"], "RawSecretAccessKey": c["RawSecretAccessKey"]}


def new_xks_key(ferrokms_bin, proxy, usage=None, allow=None):
    args = ["key", "create", *store_of(proxy)]
    if usage:
        args += ["--usage", usage]
    if allow:
        args += ["--allow-principal", allow]
    return xks_cli(ferrokms_bin, *args)["XksKeyId"]


def endpoint_of(proxy):
    return proxy.endpoint


def create_store(kms, proxy, cred, name=None, path=PATH, **extra):
    args = dict(
        CustomKeyStoreName=name or uid("store"),
        CustomKeyStoreType="EXTERNAL_KEY_STORE",
        XksProxyUriEndpoint=endpoint_of(proxy),
        XksProxyUriPath=path,
        XksProxyAuthenticationCredential=cred,
        XksProxyConnectivity="PUBLIC_ENDPOINT",
    )
    args.update(extra)
    return kms.create_custom_key_store(**args)["CustomKeyStoreId"]


def describe(kms, store_id):
    return kms.describe_custom_key_stores(CustomKeyStoreId=store_id)["CustomKeyStores"][0]


def connected_store(kms, proxy, cred):
    sid = create_store(kms, proxy, cred)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "CONNECTED"
    return sid


@pytest.fixture
def acct(srv):
    """A fresh account of the KMS server for one test (an endpoint and path
    serve one store per account)."""
    from accounts import Account

    return Account(srv, conftest.fresh_account())


def xks_key(kms, sid, xks_key_id, **extra):
    return kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid, XksKeyId=xks_key_id, **extra)[
        "KeyMetadata"
    ]


def test_store_life_cycle_create_describe_connect_update_disconnect_delete(acct, proxy, cred):
    kms = acct.kms
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
    name = uid("store")
    sid = create_store(kms, proxy, cred, name=name)
    assert re.fullmatch(r"cks-[0-9a-f]{17}", sid)
    entry = describe(kms, sid)
    assert entry["CustomKeyStoreName"] == name
    assert entry["CustomKeyStoreType"] == "EXTERNAL_KEY_STORE"
    assert entry["ConnectionState"] == "DISCONNECTED"
    assert "ConnectionErrorCode" not in entry
    assert entry["XksProxyConfiguration"] == {
        "Connectivity": "PUBLIC_ENDPOINT",
        "AccessKeyId": cred["AccessKeyId"],
        "UriEndpoint": proxy.endpoint,
        "UriPath": PATH,
    }
    # The secret is never shown.
    assert cred["RawSecretAccessKey"] not in json.dumps(entry, default=str)
    assert kms.describe_custom_key_stores(CustomKeyStoreName=name)["CustomKeyStores"][0]["CustomKeyStoreId"] == sid
    # Name in use.
    expect_error(lambda: create_store(kms, proxy, cred, name=name, path="/other/kms/xks/v1"), "CustomKeyStoreNameInUseException")
    # Same endpoint and path in the same account.
    expect_error(lambda: create_store(kms, proxy, cred), "XksProxyUriInUseException")

    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "CONNECTED"
    kms.connect_custom_key_store(CustomKeyStoreId=sid)  # valid when connected
    # Connected: only the name can change.
    new_name = uid("renamed")
    kms.update_custom_key_store(CustomKeyStoreId=sid, NewCustomKeyStoreName=new_name)
    assert describe(kms, sid)["CustomKeyStoreName"] == new_name
    expect_error(
        lambda: kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyUriPath="/x/kms/xks/v1"),
        "CustomKeyStoreInvalidStateException",
    )
    expect_error(lambda: kms.delete_custom_key_store(CustomKeyStoreId=sid), "CustomKeyStoreInvalidStateException")
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "DISCONNECTED"
    expect_error(lambda: kms.disconnect_custom_key_store(CustomKeyStoreId=sid), "CustomKeyStoreInvalidStateException")
    # Disconnected: a proxy setting that the proxy refuses is not kept.
    expect_error(
        lambda: kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyUriPath="/nowhere/kms/xks/v1"),
        "XksProxyInvalidConfigurationException",
    )
    assert describe(kms, sid)["XksProxyConfiguration"]["UriPath"] == PATH
    kms.update_custom_key_store(CustomKeyStoreId=sid, XksProxyAuthenticationCredential=cred)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)
    expect_error(lambda: describe(kms, sid), "CustomKeyStoreNotFoundException")
    for op in ("connect_custom_key_store", "disconnect_custom_key_store", "delete_custom_key_store"):
        expect_error(lambda: getattr(kms, op)(CustomKeyStoreId=sid), "CustomKeyStoreNotFoundException")


def test_create_refuses_bad_credentials_unreachable_endpoints_and_bad_paths(acct, proxy, cred):
    kms = acct.kms
    wrong = {"AccessKeyId": cred["AccessKeyId"], "RawSecretAccessKey": base64.b64encode(b"w" * 33).decode()}
    expect_error(lambda: create_store(kms, proxy, wrong), "XksProxyIncorrectAuthenticationCredentialException")
    unknown = {"AccessKeyId": "ABCDEFGHIJKLMNOPQRSTUVWX", "RawSecretAccessKey": cred["RawSecretAccessKey"]}
    expect_error(lambda: create_store(kms, proxy, unknown), "XksProxyIncorrectAuthenticationCredentialException")
    expect_error(
        lambda: create_store(kms, proxy, cred, XksProxyUriEndpoint=f"https://127.0.0.1:{free_port()}"),
        "XksProxyUriUnreachableException",
    )
    expect_error(lambda: create_store(kms, proxy, cred, path="/other/kms/xks/v1"), "XksProxyInvalidConfigurationException")
    # botocore does not check patterns; the server does, as AWS.
    expect_error(lambda: create_store(kms, proxy, cred, path="/kms/xks/v9/extra"), "ValidationException")
    expect_error(lambda: create_store(kms, proxy, cred, XksProxyUriEndpoint="http://127.0.0.1:1"), "ValidationException")
    # VPC endpoint services and CloudHSM clusters cannot be reached from here.
    expect_error(
        lambda: create_store(
            kms,
            proxy,
            cred,
            XksProxyConnectivity="VPC_ENDPOINT_SERVICE",
            XksProxyVpcEndpointServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
        ),
        "XksProxyVpcEndpointServiceNotFoundException",
    )
    expect_error(
        lambda: kms.create_custom_key_store(
            CustomKeyStoreName=uid("hsm"),
            CloudHsmClusterId="cluster-234abcdefgh",
            TrustAnchorCertificate="-----BEGIN CERTIFICATE-----",
            KeyStorePassword="password1",
        ),
        "CloudHsmClusterNotFoundException",
    )
    assert kms.describe_custom_key_stores()["CustomKeyStores"] == []


def test_connecting_to_a_stopped_proxy_fails_with_its_error_code(acct, proxy, cred):
    kms = acct.kms
    sid = create_store(kms, proxy, cred)
    proxy.stop()
    try:
        kms.connect_custom_key_store(CustomKeyStoreId=sid)
        entry = describe(kms, sid)
        assert entry["ConnectionState"] == "FAILED"
        assert entry["ConnectionErrorCode"] == "XKS_PROXY_NOT_REACHABLE"
        # FAILED must be disconnected before connecting again.
        expect_error(lambda: kms.connect_custom_key_store(CustomKeyStoreId=sid), "CustomKeyStoreInvalidStateException")
    finally:
        proxy.start()
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert "ConnectionErrorCode" not in describe(kms, sid)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "CONNECTED"
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.delete_custom_key_store(CustomKeyStoreId=sid)


def test_keys_in_the_store_round_trip_every_operation(acct, proxy, cred, ferrokms_bin):
    kms = acct.kms
    sid = connected_store(kms, proxy, cred)
    xid = new_xks_key(ferrokms_bin, proxy)
    meta = xks_key(kms, sid, xid, Description="xks")
    assert meta["Origin"] == "EXTERNAL_KEY_STORE"
    assert meta["CustomKeyStoreId"] == sid
    assert meta["XksKeyConfiguration"] == {"Id": xid}
    assert meta["KeyState"] == "Enabled"
    key_id = meta["KeyId"]
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["XksKeyConfiguration"] == {"Id": xid}
    ctx = {"purpose": "xks"}
    ct = kms.encrypt(KeyId=key_id, Plaintext=b"through the proxy", EncryptionContext=ctx)["CiphertextBlob"]
    assert ct[0] == 2  # the double-encrypted blob
    out = kms.decrypt(CiphertextBlob=ct, EncryptionContext=ctx)
    assert out["Plaintext"] == b"through the proxy" and out["KeyId"] == meta["Arn"]
    expect_error(lambda: kms.decrypt(CiphertextBlob=ct, EncryptionContext={"purpose": "other"}), ISE)
    # The largest plaintext: the version-2 blob stays within CiphertextBlob's 6144 bytes.
    big = kms.encrypt(KeyId=key_id, Plaintext=b"\xa5" * 4096)["CiphertextBlob"]
    assert len(big) <= 6144
    assert kms.decrypt(CiphertextBlob=big)["Plaintext"] == b"\xa5" * 4096
    # A flipped byte of the proxy's ciphertext or IV: the proxy refuses it
    # (InvalidCiphertextException there, KMSInvalidStateException here, as
    # the spec's table has it).
    for at in (len(ct) - 1, 60):
        bad = bytearray(ct)
        bad[at] ^= 1
        err = expect_error(lambda: kms.decrypt(CiphertextBlob=bytes(bad), EncryptionContext=ctx), ISE)
        assert "corrupted" in err.response["Error"]["Message"]
    dk = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]
    wo = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=16)
    assert len(kms.decrypt(CiphertextBlob=wo["CiphertextBlob"])["Plaintext"]) == 16
    pair = kms.generate_data_key_pair(KeyId=key_id, KeyPairSpec="ECC_NIST_P256")
    assert kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"])["Plaintext"] == pair["PrivateKeyPlaintext"]
    # ReEncrypt to an ordinary key and back.
    plain_key = kms.create_key()["KeyMetadata"]["KeyId"]
    to_plain = kms.re_encrypt(CiphertextBlob=ct, SourceEncryptionContext=ctx, DestinationKeyId=plain_key)
    assert to_plain["CiphertextBlob"][0] == 1
    back = kms.re_encrypt(CiphertextBlob=to_plain["CiphertextBlob"], DestinationKeyId=key_id, DestinationEncryptionContext=ctx)
    assert back["CiphertextBlob"][0] == 2
    assert kms.decrypt(CiphertextBlob=back["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == b"through the proxy"
    # No rotation for keys in custom key stores, as on AWS.
    expect_error(lambda: kms.enable_key_rotation(KeyId=key_id), "UnsupportedOperationException")
    expect_error(lambda: kms.rotate_key_on_demand(KeyId=key_id), "UnsupportedOperationException")
    # The external key is used once per store; unknown ones are not found.
    expect_error(lambda: xks_key(kms, sid, xid), "XksKeyAlreadyInUseException")
    expect_error(lambda: xks_key(kms, sid, "no-such-key"), "XksKeyNotFoundException")
    enc_only = new_xks_key(ferrokms_bin, proxy, usage="ENCRYPT")
    expect_error(lambda: xks_key(kms, sid, enc_only), "XksKeyInvalidConfigurationException")
    expect_error(lambda: kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId=sid), "ValidationException")
    expect_error(
        lambda: kms.create_key(Origin="EXTERNAL_KEY_STORE", CustomKeyStoreId="cks-00000000000000000", XksKeyId="k"),
        "CustomKeyStoreNotFoundException",
    )
    # A store with keys cannot be deleted.
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    expect_error(lambda: kms.delete_custom_key_store(CustomKeyStoreId=sid), "CustomKeyStoreHasCMKsException")


def test_disconnected_store_makes_its_keys_unavailable(acct, proxy, cred, ferrokms_bin):
    kms = acct.kms
    sid = connected_store(kms, proxy, cred)
    key_id = xks_key(kms, sid, new_xks_key(ferrokms_bin, proxy))["KeyId"]
    ct = kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Unavailable"
    err = expect_error(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x"), ISE)
    assert "not connected" in err.response["Error"]["Message"]
    expect_error(lambda: kms.decrypt(CiphertextBlob=ct), ISE)
    expect_error(lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256"), ISE)
    expect_error(
        lambda: xks_key(kms, sid, new_xks_key(ferrokms_bin, proxy)), "CustomKeyStoreInvalidStateException"
    )
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"x"


def test_ciphertexts_need_the_proxy_stop_and_restart(acct, proxy, cred, ferrokms_bin):
    kms = acct.kms
    sid = connected_store(kms, proxy, cred)
    key_id = xks_key(kms, sid, new_xks_key(ferrokms_bin, proxy))["KeyId"]
    cts = [kms.encrypt(KeyId=key_id, Plaintext=bytes([i]) * 32)["CiphertextBlob"] for i in range(5)]
    proxy.stop()
    try:
        for ct in cts[:2]:
            err = expect_error(lambda: kms.decrypt(CiphertextBlob=ct), ISE)
            assert "external key store proxy" in err.response["Error"]["Message"]
        expect_error(lambda: kms.encrypt(KeyId=key_id, Plaintext=b"y"), ISE)
        # The store stays CONNECTED (AWS's state is the store's, not each call's).
        assert describe(kms, sid)["ConnectionState"] == "CONNECTED"
    finally:
        proxy.start()
    for i, ct in enumerate(cts):
        assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == bytes([i]) * 32


def test_another_account_cannot_see_or_use_the_store_or_its_keys(A, B, proxy, cred, ferrokms_bin):
    sid = connected_store(A.kms, proxy, cred)
    key_id = xks_key(A.kms, sid, new_xks_key(ferrokms_bin, proxy))["KeyId"]
    ct = A.kms.encrypt(KeyId=key_id, Plaintext=b"mine")["CiphertextBlob"]
    assert B.kms.describe_custom_key_stores()["CustomKeyStores"] == []
    for op in ("connect_custom_key_store", "disconnect_custom_key_store", "delete_custom_key_store"):
        expect_error(lambda: getattr(B.kms, op)(CustomKeyStoreId=sid), "CustomKeyStoreNotFoundException")
    expect_error(lambda: B.kms.update_custom_key_store(CustomKeyStoreId=sid, NewCustomKeyStoreName="x"), "CustomKeyStoreNotFoundException")
    expect_error(lambda: B.kms.describe_custom_key_stores(CustomKeyStoreId=sid), "CustomKeyStoreNotFoundException")
    expect_error(lambda: xks_key(B.kms, sid, new_xks_key(ferrokms_bin, proxy)), "CustomKeyStoreNotFoundException")
    expect_error(lambda: B.kms.encrypt(KeyId=A.key_arn(key_id), Plaintext=b"x"), "AccessDeniedException")
    expect_error(lambda: B.kms.decrypt(CiphertextBlob=ct), "AccessDeniedException")
    # Another account may name the same proxy (uniqueness is per account
    # and Region); its store is its own.
    other = create_store(B.kms, proxy, cred)
    assert [s["CustomKeyStoreId"] for s in B.kms.describe_custom_key_stores()["CustomKeyStores"]] == [other]
    expect_error(lambda: A.kms.describe_custom_key_stores(CustomKeyStoreId=other), "CustomKeyStoreNotFoundException")


def test_iam_policies_decide_the_store_operations(acct, proxy, cred):
    nobody = acct.user()
    expect_error(lambda: create_store(nobody.kms, proxy, cred), "AccessDeniedException")
    expect_error(lambda: nobody.kms.describe_custom_key_stores(), "AccessDeniedException")
    admin = acct.user(allow(["kms:CreateCustomKeyStore", "kms:DescribeCustomKeyStores"]))
    sid = create_store(admin.kms, proxy, cred)
    assert describe(admin.kms, sid)["ConnectionState"] == "DISCONNECTED"
    expect_error(lambda: admin.kms.connect_custom_key_store(CustomKeyStoreId=sid), "AccessDeniedException")


def audit_records(ferrokms_bin, data_dir):
    time.sleep(0.3)  # the audit writer flushes every few milliseconds
    p = subprocess.run(
        [str(ferrokms_bin), "audit", "--data-dir", str(data_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=conftest.clean_env(),
    )
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_stores_survive_a_restart_sealed_and_the_proxy_sees_the_request_metadata(ferrokms_bin, tmp_path, proxy, cred, certs):
    """A KMS server on a data dir: the store and its keys are durable, the
    secret is stored only sealed and never audited, and the proxy receives
    the caller, the key, the operation and the KMS request id."""
    s = Server(
        ferrokms_bin,
        tmp_path,
        data_dir=tmp_path / "data",
        extra_args=["--xks-ca-file", str(certs[0]), "--xks-timeout-ms", "3000"],
    ).start()
    try:
        kms = s.client()
        sid = connected_store(kms, proxy, cred)
        xid = new_xks_key(ferrokms_bin, proxy)
        key = xks_key(kms, sid, xid)
        resp = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"durable")
        ct, rid = resp["CiphertextBlob"], resp["ResponseMetadata"]["RequestId"]
        s.stop()
        if s.store_url:
            db = conftest.dump_database(s.store_url)
        else:
            db = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("ferrokms.sqlite*"))
        # (PostgreSQL's dump shows the documents' bytes in hex.)
        forms = lambda text: (text.encode(), text.encode().hex().encode())  # noqa: E731
        assert any(f in db for f in forms(cred["AccessKeyId"]))  # the store is there...
        assert not any(f in db for f in forms(cred["RawSecretAccessKey"]))  # ...its secret only sealed
        s.start()
        kms = s.client()
        entry = describe(kms, sid)
        assert entry["ConnectionState"] == "CONNECTED"
        assert kms.decrypt(CiphertextBlob=ct)["Plaintext"] == b"durable"
        recs = audit_records(ferrokms_bin, s.data_dir)
        create = [r for r in recs if r["eventName"] == "CreateCustomKeyStore"]
        assert len(create) == 1
        params = create[0]["requestParameters"]
        assert params["xksProxyAuthenticationCredential"] == {"accessKeyId": cred["AccessKeyId"]}
        assert params["customKeyStoreType"] == "EXTERNAL_KEY_STORE"
        assert create[0]["responseElements"] == {"customKeyStoreId": sid}
        trail = b"".join(f.read_bytes() for f in (s.data_dir / "audit").iterdir() if f.is_file())
        assert cred["RawSecretAccessKey"].encode() not in trail
        assert {"ConnectCustomKeyStore", "CreateKey", "Encrypt", "Decrypt", "DescribeCustomKeyStores"} <= {
            r["eventName"] for r in recs
        }
    finally:
        s.stop()
    # The proxy's own audit trail: the KMS request's id, caller, key, operation.
    proxy_recs = [r for r in audit_records(ferrokms_bin, proxy.data_dir) if r.get("eventSource") == "kms-xks-proxy.amazonaws.com"]
    by_rid = {
        r["requestParameters"]["requestMetadata"]["kmsRequestId"]: r for r in proxy_recs if r.get("requestParameters")
    }
    enc = by_rid[rid]
    assert enc["eventName"] == "Encrypt"
    meta = enc["requestParameters"]["requestMetadata"]
    assert meta["kmsOperation"] == "Encrypt"
    assert meta["kmsKeyArn"] == key["Arn"]
    assert meta["awsPrincipalArn"].endswith(":root")
    assert enc["requestParameters"]["xksKeyId"] == xid


@pytest.mark.skipif(not conftest.PG_URL, reason="several nodes need the suite's PostgreSQL (FERROKMS_TEST_PG_URL, scripts/test.sh)")
def test_a_store_made_on_one_node_is_used_by_another_on_the_same_database(ferrokms_bin, tmp_path, proxy, cred, certs):
    """Nodes a and b on one PostgreSQL database (b with a's root key): a
    store created and connected on a, and its key, work on b at once; a
    disconnect on b is in effect on a."""
    url = conftest.new_database()
    args = ["--xks-ca-file", str(certs[0]), "--xks-timeout-ms", "3000"]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Server(ferrokms_bin, tmp_path / "a", data_dir=tmp_path / "a" / "data", store_url=url, extra_args=args).start()
    try:
        b = Server(
            ferrokms_bin,
            tmp_path / "b",
            data_dir=tmp_path / "b" / "data",
            store_url=url,
            extra_args=[*args, "--root-key-file", str(a.data_dir / "root.key")],
        ).start()
        try:
            ak, sk = a.profile_credentials()
            ka, kb = a.client(ak, sk), b.client(ak, sk)
            sid = connected_store(ka, proxy, cred)
            key_id = xks_key(ka, sid, new_xks_key(ferrokms_bin, proxy))["KeyId"]
            assert describe(kb, sid)["ConnectionState"] == "CONNECTED"
            ct = kb.encrypt(KeyId=key_id, Plaintext=b"two nodes")["CiphertextBlob"]
            assert ka.decrypt(CiphertextBlob=ct)["Plaintext"] == b"two nodes"
            kb.disconnect_custom_key_store(CustomKeyStoreId=sid)
            expect_error(lambda: ka.decrypt(CiphertextBlob=ct), ISE)
        finally:
            b.stop()
    finally:
        a.stop()


def test_the_proxys_own_authorization_sees_the_kms_caller(acct, proxy, cred, ferrokms_bin):
    """The proxy's secondary authorization (`xks key create --allow-principal`)
    judges the `awsPrincipalArn` KMS sends: the caller's ARN. A refusal is
    KMSInvalidStateException with the spec's message (CreateKey and the
    cryptographic operations alike)."""
    kms = acct.kms
    sid = connected_store(kms, proxy, cred)
    root_only = new_xks_key(ferrokms_bin, proxy, allow=acct.root_arn)
    key_id = xks_key(kms, sid, root_only)["KeyId"]
    ct = kms.encrypt(KeyId=key_id, Plaintext=b"root may")["CiphertextBlob"]
    user = acct.user(allow("kms:*"))
    err = expect_error(lambda: user.kms.decrypt(CiphertextBlob=ct), ISE)
    assert "denied access" in err.response["Error"]["Message"]
    expect_error(lambda: user.kms.encrypt(KeyId=key_id, Plaintext=b"x"), ISE)
    assert user.kms.generate_random(NumberOfBytes=8)["Plaintext"]  # the user may use KMS otherwise
    someone_else = new_xks_key(ferrokms_bin, proxy, allow="arn:aws:iam::*:user/someone-else")
    expect_error(lambda: xks_key(kms, sid, someone_else), ISE)


def test_a_kms_without_xks_ca_file_trusts_no_proxy(server_factory, proxy, cred):
    """Without --xks-ca-file no certificate is trusted (never the system's
    store, never unverified) and no proxy is ever dialled: the answer is
    AWS's TLS failure."""
    s = server_factory(in_memory=True, dev=True)
    kms = conftest.make_client(s.endpoint, conftest.fresh_account(), "x")
    err = expect_error(lambda: create_store(kms, proxy, cred), "XksProxyUriUnreachableException")
    assert "TLS" in err.response["Error"]["Message"]


def test_a_proxy_that_never_answers_times_out(acct, proxy, cred):
    """A listener that never answers where the proxy was (the kernel
    completes the TCP handshake from its backlog; nothing reads the TLS
    ClientHello): the call ends at --xks-timeout-ms (3 s here) with
    XKS_PROXY_TIMED_OUT; nothing waits longer."""
    kms = acct.kms
    sid = create_store(kms, proxy, cred)
    port = proxy.port
    proxy.stop()
    silent = socket.socket()
    silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        silent.bind(("127.0.0.1", port))
        silent.listen(8)
        started = time.monotonic()
        kms.connect_custom_key_store(CustomKeyStoreId=sid)
        took = time.monotonic() - started
        entry = describe(kms, sid)
        assert entry["ConnectionState"] == "FAILED"
        assert entry["ConnectionErrorCode"] == "XKS_PROXY_TIMED_OUT"
        assert 2.5 < took < 15, took
    finally:
        silent.close()
        proxy.start()
    kms.disconnect_custom_key_store(CustomKeyStoreId=sid)
    kms.connect_custom_key_store(CustomKeyStoreId=sid)
    assert describe(kms, sid)["ConnectionState"] == "CONNECTED"


def test_two_create_keys_racing_for_one_external_key_make_one_key(acct, proxy, cred, ferrokms_bin):
    import concurrent.futures

    from botocore.exceptions import ClientError

    kms = acct.kms
    sid = connected_store(kms, proxy, cred)
    xid = new_xks_key(ferrokms_bin, proxy)

    def attempt(_):
        try:
            return xks_key(kms, sid, xid)["KeyId"]
        except ClientError as e:
            return e.response["Error"]["Code"]

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    made = [o for o in outcomes if not o.endswith("Exception")]
    assert len(made) == 1, outcomes
    assert sorted(o for o in outcomes if o.endswith("Exception")) == ["XksKeyAlreadyInUseException"] * 3
