"""ferrokms as an AWS KMS external key store proxy (`serve --xks`), tested
from the "External Key Store (XKS) Proxy API Specification" v1: every
request is signed by botocore's own SigV4 signer for the service
`kms-xks-proxy`, with credentials and keys made by `ferrokms xks ...`
while the server runs (so the server must read them from the store).
docs/xks.md describes what is covered."""

import base64
import hashlib
import json
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

import conftest
from conftest import REGION

SERVER_ARGS = ["--xks"]
API = "/xks/kms/xks/v1"
SERVICE = "kms-xks-proxy"
PRINCIPAL = "arn:aws:iam::123456789012:user/Alice"
KEY_ARN = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def unb64(s: str) -> bytes:
    return base64.b64decode(s)


def cli(ferrokms_bin, *args):
    p = subprocess.run(
        [str(ferrokms_bin), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        env=conftest.clean_env(),
    )
    return p


def storage(server):
    """The server's store, as the offline commands name it (its data dir, and
    its PostgreSQL database under the suite's PostgreSQL pass)."""
    args = ["--data-dir", server.data_dir]
    if server.store_url:
        args += ["--store", server.store_url]
    return args


def new_credential(ferrokms_bin, server):
    p = cli(ferrokms_bin, "xks", "credential", "create", *storage(server))
    assert p.returncode == 0, p.stderr
    c = json.loads(p.stdout)
    return c["AccessKeyId"], c["RawSecretAccessKey"]


def new_key(ferrokms_bin, server, usage=None, allow=()):
    args = ["xks", "key", "create", *storage(server)]
    if usage is not None:
        args += ["--usage", usage]
    for pattern in allow:
        args += ["--allow-principal", pattern]
    p = cli(ferrokms_bin, *args)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["XksKeyId"]


class Proxy:
    """A client of the proxy API: signs with botocore's SigV4Auth."""

    def __init__(self, endpoint, access_key, secret, api=API, cafile=None):
        self.endpoint, self.api = endpoint, api
        self.creds = Credentials(access_key, secret)
        self.context = ssl.create_default_context(cafile=str(cafile)) if cafile else None

    def send(self, path, body, *, sign=True, creds=None, service=SERVICE, method="POST", tamper=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = AWSRequest(
            method=method,
            url=self.endpoint + self.api + path,
            data=data,
            headers={"Content-Type": "application/json"},
        )
        if sign:
            SigV4Auth(creds or self.creds, service, REGION).add_auth(req)
        headers = dict(req.headers.items())
        if tamper is not None:
            data = tamper(data)
        r = urllib.request.Request(
            self.endpoint + self.api + path,
            data=data if method == "POST" else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(r, timeout=conftest.HTTP_TIMEOUT, context=self.context) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, (json.loads(raw) if raw else None)

    def ok(self, path, body, **kw):
        status, doc = self.send(path, body, **kw)
        assert status == 200, (status, doc)
        return doc

    def error(self, path, body, name, status, **kw):
        got_status, doc = self.send(path, body, **kw)
        assert (got_status, doc and doc.get("errorName")) == (status, name), (got_status, doc)
        msg = doc.get("errorMessage", "")
        assert len(msg) < 512 and all(0x20 <= ord(c) <= 0x7E for c in msg)
        return doc


def meta(op="Encrypt", **extra):
    m = {
        "awsPrincipalArn": PRINCIPAL,
        "kmsKeyArn": KEY_ARN,
        "kmsOperation": op,
        "kmsRequestId": str(uuid.uuid4()),
        "kmsViaService": "ebs",
    }
    m.update(extra)
    return m


def enc_body(plaintext: bytes, aad: bytes = None, cdiv=False, **meta_extra):
    b = {"requestMetadata": meta("Encrypt", **meta_extra), "plaintext": b64(plaintext), "encryptionAlgorithm": "AES_GCM"}
    if aad is not None:
        b["additionalAuthenticatedData"] = b64(aad)
    if cdiv:
        b["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
    return b


def dec_body(out, aad: bytes = None, **meta_extra):
    b = {
        "requestMetadata": meta("Decrypt", **meta_extra),
        "ciphertext": out["ciphertext"],
        "initializationVector": out["initializationVector"],
        "authenticationTag": out["authenticationTag"],
        "encryptionAlgorithm": "AES_GCM",
    }
    if aad is not None:
        b["additionalAuthenticatedData"] = b64(aad)
    return b


@pytest.fixture(scope="module")
def env(srv, ferrokms_bin):
    """A credential and keys of every usage, all made while `srv` runs."""
    ak, sk = new_credential(ferrokms_bin, srv)
    keys = {
        "both": new_key(ferrokms_bin, srv),
        "encrypt": new_key(ferrokms_bin, srv, "ENCRYPT"),
        "decrypt": new_key(ferrokms_bin, srv, "DECRYPT"),
        "none": new_key(ferrokms_bin, srv, ""),
    }
    return Proxy(srv.endpoint, ak, sk), keys


# --- the CLI -----------------------------------------------------------------


def test_credentials_have_the_shapes_create_custom_key_store_accepts(srv, ferrokms_bin):
    import re

    for _ in range(3):
        ak, sk = new_credential(ferrokms_bin, srv)
        assert re.fullmatch(r"[A-Z2-7]{20,30}", ak), ak
        assert re.fullmatch(r"[a-zA-Z0-9/+=]{43,64}", sk), sk
    # The secret is sealed in the store, not written in the clear.
    if srv.store_url:
        stored = conftest.dump_database(srv.store_url)
    else:
        # WAL mode: recent writes are in the -wal file.
        stored = b"".join(f.read_bytes() for f in srv.data_dir.glob("ferrokms.sqlite*"))
    assert ak.encode() in stored and sk.encode() not in stored


def test_key_create_refuses_unknown_usages_and_missing_data_dirs(srv, ferrokms_bin, tmp_path):
    p = cli(ferrokms_bin, "xks", "key", "create", *storage(srv), "--usage", "SIGN")
    assert p.returncode != 0 and "unknown key usage 'SIGN'" in p.stderr
    p = cli(ferrokms_bin, "xks", "credential", "create", "--data-dir", tmp_path / "nowhere")
    assert p.returncode != 0 and "does not exist" in p.stderr


# --- GetHealthStatus and GetKeyMetadata ---------------------------------------


def test_health_answers_the_spec_shape(env):
    proxy, _ = env
    h = proxy.ok("/health", {"requestMetadata": {"kmsRequestId": str(uuid.uuid4()), "kmsOperation": "KmsHealthCheck"}})
    assert isinstance(h["xksProxyFleetSize"], int) and h["xksProxyFleetSize"] > 0
    for f in ("xksProxyVendor", "xksProxyModel", "ekmVendor"):
        assert isinstance(h[f], str) and h[f]
    assert 1 <= len(h["ekmFleetDetails"]) <= 10
    for d in h["ekmFleetDetails"]:
        assert d["healthStatus"] == "ACTIVE" and d["id"] and d["model"]


def test_health_without_metadata_is_a_validation_error(env):
    proxy, _ = env
    proxy.error("/health", {}, "ValidationException", 400)
    proxy.error("/health", {"requestMetadata": {}}, "ValidationException", 400)


def test_metadata_reports_spec_usage_and_status_for_each_kind_of_key(env):
    proxy, keys = env
    want = {"both": ["ENCRYPT", "DECRYPT"], "encrypt": ["ENCRYPT"], "decrypt": ["DECRYPT"], "none": []}
    for kind, usage in want.items():
        for op in ("CreateKey", "DescribeKey"):
            body = {"requestMetadata": {k: v for k, v in meta(op).items() if k != "kmsKeyArn"}}
            m = proxy.ok(f"/keys/{keys[kind]}/metadata", body)
            assert m == {"keySpec": "AES_256", "keyUsage": usage, "keyStatus": "ENABLED"}, kind


def test_metadata_validation_and_unknown_keys(env):
    proxy, keys = env
    proxy.error(f"/keys/{keys['both']}/metadata", {}, "ValidationException", 400)
    proxy.error(f"/keys/{keys['both']}/metadata", {"requestMetadata": {}}, "ValidationException", 400)
    proxy.error(f"/keys/{keys['both']}/metadata", b"not json", "ValidationException", 400)
    proxy.error("/keys/non_existing_key/metadata", {"requestMetadata": meta("DescribeKey")}, "KeyNotFoundException", 404)


# --- Encrypt and Decrypt ----------------------------------------------------


@pytest.mark.parametrize("aad", [None, b"project=nile,department=marketing", bytes(range(256)) * 32])
def test_encrypt_then_decrypt_round_trips_with_the_spec_sizes(env, aad):
    proxy, keys = env
    k = keys["both"]
    for plaintext in (b"Hello World!", bytes(4300)):
        out = proxy.ok(f"/keys/{k}/encrypt", enc_body(plaintext, aad))
        assert len(unb64(out["ciphertext"])) == len(plaintext)
        assert len(unb64(out["initializationVector"])) == 12
        assert len(unb64(out["authenticationTag"])) == 16
        assert "ciphertextMetadata" not in out and "ciphertextDataIntegrityValue" not in out
        back = proxy.ok(f"/keys/{k}/decrypt", dec_body(out, aad))
        assert unb64(back["plaintext"]) == plaintext


def test_two_encryptions_of_one_plaintext_differ(env):
    proxy, keys = env
    a = proxy.ok(f"/keys/{keys['both']}/encrypt", enc_body(b"same"))
    b = proxy.ok(f"/keys/{keys['both']}/encrypt", enc_body(b"same"))
    assert a["initializationVector"] != b["initializationVector"] and a["ciphertext"] != b["ciphertext"]


@pytest.mark.parametrize("aad", [None, b"project=nile"])
def test_cdiv_is_sha256_of_aad_iv_ciphertext_and_tag(env, aad):
    proxy, keys = env
    out = proxy.ok(f"/keys/{keys['both']}/encrypt", enc_body(b"data key bytes", aad, cdiv=True))
    hashed = (aad or b"") + unb64(out["initializationVector"]) + unb64(out["ciphertext"]) + unb64(out["authenticationTag"])
    assert unb64(out["ciphertextDataIntegrityValue"]) == hashlib.sha256(hashed).digest()
    assert unb64(proxy.ok(f"/keys/{keys['both']}/decrypt", dec_body(out, aad))["plaintext"]) == b"data key bytes"


def test_tampered_ciphertext_iv_tag_aad_or_metadata_is_invalid_ciphertext(env):
    proxy, keys = env
    k = keys["both"]
    aad = b"project=nile"
    out = proxy.ok(f"/keys/{k}/encrypt", enc_body(b"secret message", aad))

    def flipped(field):
        raw = bytearray(unb64(out[field]))
        raw[0] ^= 1
        return {**out, field: b64(bytes(raw))}

    for field in ("ciphertext", "initializationVector", "authenticationTag"):
        proxy.error(f"/keys/{k}/decrypt", dec_body(flipped(field), aad), "InvalidCiphertextException", 400)
    proxy.error(f"/keys/{k}/decrypt", dec_body(out, None), "InvalidCiphertextException", 400)
    proxy.error(f"/keys/{k}/decrypt", dec_body(out, b"project=blue"), "InvalidCiphertextException", 400)
    # ciphertextMetadata is bound into the AAD: adding some breaks the tag,
    # and moving the AAD into it is not the same AAD.
    body = dec_body(out, aad)
    body["ciphertextMetadata"] = b64(b"key_version=1")
    proxy.error(f"/keys/{k}/decrypt", body, "InvalidCiphertextException", 400)
    body = dec_body(out, None)
    body["ciphertextMetadata"] = b64(aad)
    proxy.error(f"/keys/{k}/decrypt", body, "InvalidCiphertextException", 400)
    # A 16-byte IV (the spec allows it) is not one of this proxy's.
    proxy.error(f"/keys/{k}/decrypt", {**dec_body(out, aad), "initializationVector": b64(bytes(16))}, "InvalidCiphertextException", 400)
    proxy.error(f"/keys/{k}/decrypt", {**dec_body(out, aad), "authenticationTag": b64(bytes(12))}, "InvalidCiphertextException", 400)
    proxy.error(f"/keys/{k}/decrypt", {**dec_body(out, aad), "ciphertext": "%%%"}, "InvalidCiphertextException", 400)
    # Another key's decryption of it fails the same way.
    other = proxy.ok(f"/keys/{keys['decrypt']}/metadata", {"requestMetadata": meta("DescribeKey")})
    assert other["keyUsage"] == ["DECRYPT"]
    proxy.error(f"/keys/{keys['decrypt']}/decrypt", dec_body(out, aad), "InvalidCiphertextException", 400)


def test_encrypt_and_decrypt_input_validation(env):
    proxy, keys = env
    k = keys["both"]
    no_plaintext = enc_body(b"x")
    del no_plaintext["plaintext"]
    proxy.error(f"/keys/{k}/encrypt", no_plaintext, "ValidationException", 400)
    proxy.error(f"/keys/{k}/encrypt", {**enc_body(b"x"), "encryptionAlgorithm": "RSAES_OAEP_SHA_256"}, "ValidationException", 400)
    proxy.error(f"/keys/{k}/encrypt", {**enc_body(b"x"), "ciphertextDataIntegrityValueAlgorithm": "MD5"}, "ValidationException", 400)
    proxy.error(f"/keys/{k}/encrypt", {**enc_body(b"x"), "plaintext": "not base64!"}, "ValidationException", 400)
    no_arn = enc_body(b"x")
    del no_arn["requestMetadata"]["kmsKeyArn"]
    proxy.error(f"/keys/{k}/encrypt", no_arn, "ValidationException", 400)
    long_arn = enc_body(b"x", awsPrincipalArn="arn:aws:iam::123456789012:user/" + "a" * 2100)
    proxy.error(f"/keys/{k}/encrypt", long_arn, "ValidationException", 400)
    out = proxy.ok(f"/keys/{k}/encrypt", enc_body(b"x"))
    for field in ("ciphertext", "initializationVector", "authenticationTag"):
        body = dec_body(out)
        del body[field]
        proxy.error(f"/keys/{k}/decrypt", body, "ValidationException", 400)
    body = dec_body(out)
    body["ciphertextMetadata"] = b64(bytes(21))
    proxy.error(f"/keys/{k}/decrypt", body, "ValidationException", 400)
    # A kmsOperation the spec does not list is not refused.
    assert proxy.ok(f"/keys/{k}/encrypt", enc_body(b"x", kmsOperation="BulkEncrypt"))["ciphertext"]
    proxy.error("/keys/non_existing_key/encrypt", enc_body(b"x"), "KeyNotFoundException", 404)


def test_key_usage_is_enforced(env):
    proxy, keys = env
    out = proxy.ok(f"/keys/{keys['encrypt']}/encrypt", enc_body(b"enc only", b"aad"))
    proxy.error(f"/keys/{keys['encrypt']}/decrypt", dec_body(out, b"aad"), "InvalidKeyUsageException", 400)
    # A CDIV is vouched for by decrypting the result (Appendix C): an
    # encrypt-only key cannot give one.
    for aad in (b"aad", None):
        proxy.error(f"/keys/{keys['encrypt']}/encrypt", enc_body(b"x", aad, cdiv=True), "InvalidKeyUsageException", 400)
    for kind in ("decrypt", "none"):
        for cdiv in (False, True):
            proxy.error(f"/keys/{keys[kind]}/encrypt", enc_body(b"x", b"aad", cdiv), "InvalidKeyUsageException", 400)
    proxy.error(f"/keys/{keys['none']}/decrypt", dec_body(out, b"aad"), "InvalidKeyUsageException", 400)


def test_a_key_with_allowed_principals_refuses_other_callers(env, srv, ferrokms_bin):
    """The spec's optional secondary authorization, per key: only callers
    whose awsPrincipalArn matches one of the key's patterns."""
    proxy, _ = env
    k = new_key(ferrokms_bin, srv, allow=["arn:aws:iam::123456789012:user/Al*", "arn:aws:iam::123456789012:role/app"])
    out = proxy.ok(f"/keys/{k}/encrypt", enc_body(b"for alice"))
    role = "arn:aws:iam::123456789012:role/app"
    assert proxy.ok(f"/keys/{k}/decrypt", dec_body(out, awsPrincipalArn=role))["plaintext"] == b64(b"for alice")
    bob = "arn:aws:iam::123456789012:user/Bob"
    doc = proxy.error(f"/keys/{k}/decrypt", dec_body(out, awsPrincipalArn=bob), "AccessDeniedException", 403)
    assert bob in doc["errorMessage"]
    proxy.error(f"/keys/{k}/encrypt", enc_body(b"x", awsPrincipalArn="arn:aws:iam::123456789012:role/app2"), "AccessDeniedException", 403)
    proxy.error(f"/keys/{k}/metadata", {"requestMetadata": meta("DescribeKey", awsPrincipalArn=bob)}, "AccessDeniedException", 403)
    # Health is never subject to it (the spec).
    proxy.ok("/health", {"requestMetadata": meta("KmsHealthCheck", awsPrincipalArn=bob)})
    p = cli(ferrokms_bin, "xks", "key", "create", *storage(srv), "--allow-principal", "")
    assert p.returncode != 0 and "--allow-principal" in p.stderr


# --- authentication, paths, limits --------------------------------------------


def test_signatures_are_checked(env):
    proxy, keys = env
    path = f"/keys/{keys['both']}/encrypt"
    body = enc_body(b"x")
    ak = proxy.creds.access_key
    proxy.error(path, body, "AuthenticationFailedException", 401, sign=False)
    proxy.error(path, body, "AuthenticationFailedException", 401, creds=Credentials(ak, "wrong" + proxy.creds.secret_key))
    proxy.error(path, body, "AuthenticationFailedException", 401, creds=Credentials("Invalid" + ak, proxy.creds.secret_key))
    proxy.error(path, body, "AuthenticationFailedException", 401, creds=Credentials("A" * 24, proxy.creds.secret_key))
    # Signed for another service, or altered after signing.
    proxy.error(path, body, "AuthenticationFailedException", 401, service="kms")
    proxy.error(path, body, "AuthenticationFailedException", 401, tamper=lambda d: d.replace(b"Alice", b"Mallo"))
    proxy.error("/health", {"requestMetadata": meta("KmsHealthCheck")}, "AuthenticationFailedException", 401, sign=False)


def test_stale_signatures_are_refused(env, monkeypatch):
    import datetime

    import botocore.auth

    proxy, keys = env
    # botocore signs with the time it reads here: six minutes ago is past
    # the five minutes of clock skew the spec allows.
    real = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real() - datetime.timedelta(minutes=6))
    proxy.error(f"/keys/{keys['both']}/metadata", {"requestMetadata": meta("DescribeKey")}, "AuthenticationFailedException", 401)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: real() - datetime.timedelta(minutes=4))
    proxy.ok(f"/keys/{keys['both']}/metadata", {"requestMetadata": meta("DescribeKey")})


def test_wrong_paths_and_methods(env):
    proxy, keys = env
    proxy.error(f"/keys/{keys['both']}/sign", enc_body(b"x"), "InvalidUriPathException", 404)
    bad_prefix = Proxy(proxy.endpoint, proxy.creds.access_key, proxy.creds.secret_key, api="/xks/invalid/kms/xks/v1")
    bad_prefix.error("/health", {"requestMetadata": meta("KmsHealthCheck")}, "InvalidUriPathException", 404)
    status, doc = proxy.send("/health", b"", method="GET")
    assert (status, doc["errorName"]) == (405, "MethodNotAllowed")


def test_bodies_past_the_limits_are_refused_without_being_used(env):
    proxy, keys = env
    k = keys["both"]
    # Plaintext and AAD beyond this proxy's 8192 bytes: 501, as the spec says.
    proxy.error(f"/keys/{k}/encrypt", enc_body(bytes(8193)), "UnsupportedOperationException", 501)
    proxy.error(f"/keys/{k}/encrypt", enc_body(b"x", bytes(8193)), "UnsupportedOperationException", 501)
    # A signed body over 64 KiB.
    big = json.dumps({**enc_body(b"x"), "padding": "a" * (70 * 1024)}).encode()
    proxy.error(f"/keys/{k}/encrypt", big, "UnsupportedOperationException", 501)
    # An unsigned large body: authentication fails, whatever it holds.
    proxy.error(f"/keys/{k}/encrypt", json.dumps({"padding": "a" * 30000}).encode(), "AuthenticationFailedException", 401, sign=False)


def test_the_kms_api_still_answers_on_the_same_listener(srv):
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key, Plaintext=b"k")["CiphertextBlob"])["Plaintext"] == b"k"


# --- audit ---------------------------------------------------------------------


def test_every_call_is_audited_with_its_request_metadata_and_never_its_data(env, srv, ferrokms_bin):
    proxy, keys = env
    secret = ("xks-plaintext-" + uuid.uuid4().hex).encode()
    body = enc_body(secret, b"audited-aad")
    rid = body["requestMetadata"]["kmsRequestId"]
    out = proxy.ok(f"/keys/{keys['both']}/encrypt", body)
    dec = dec_body(out, b"audited-aad")
    back = proxy.ok(f"/keys/{keys['both']}/decrypt", dec)
    assert unb64(back["plaintext"]) == secret
    failed = enc_body(b"x")
    proxy.error(f"/keys/{keys['decrypt']}/encrypt", failed, "InvalidKeyUsageException", 400)
    status, unsigned = proxy.send("/health", {"requestMetadata": meta("KmsHealthCheck")}, sign=False)
    assert status == 401
    time.sleep(0.3)
    p = cli(ferrokms_bin, "audit", "--data-dir", srv.data_dir, "--json")
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    xks = [r for r in recs if r.get("eventSource") == "kms-xks-proxy.amazonaws.com"]
    by_rid = {r["requestParameters"]["requestMetadata"]["kmsRequestId"]: r for r in xks if r.get("requestParameters")}
    enc = by_rid[rid]
    assert enc["eventName"] == "Encrypt" and "errorCode" not in enc and enc["awsRegion"] == REGION
    params = enc["requestParameters"]
    assert params["xksKeyId"] == keys["both"] and params["xksAccessKeyId"] == proxy.creds.access_key
    assert params["requestMetadata"]["awsPrincipalArn"] == PRINCIPAL
    assert params["requestMetadata"]["kmsKeyArn"] == KEY_ARN
    assert by_rid[dec["requestMetadata"]["kmsRequestId"]]["eventName"] == "Decrypt"
    refused = by_rid[failed["requestMetadata"]["kmsRequestId"]]
    assert refused["errorCode"] == "InvalidKeyUsageException"
    # Authentication failures are recorded too, without what they sent.
    failures = [r for r in xks if r.get("errorCode") == "AuthenticationFailedException"]
    assert failures and all(not r.get("requestParameters") for r in failures)
    assert any(r["eventName"] == "GetHealthStatus" for r in failures)
    trail = b"".join(f.read_bytes() for f in (srv.data_dir / "audit").iterdir() if f.is_file())
    for needle in (secret, b64(secret).encode(), back["plaintext"].encode()):
        assert needle not in trail


# --- persistence, prefix, HTTPS ---------------------------------------------


def test_keys_survive_a_restart_and_decrypt_what_they_encrypted(server_factory, ferrokms_bin):
    s = server_factory(start=False)
    s.extra_args = ["--xks"]
    s.start()
    ak, sk = new_credential(ferrokms_bin, s)
    k = new_key(ferrokms_bin, s)
    out = Proxy(s.endpoint, ak, sk).ok(f"/keys/{k}/encrypt", enc_body(b"durable", b"a"))
    s.restart()
    back = Proxy(s.endpoint, ak, sk).ok(f"/keys/{k}/decrypt", dec_body(out, b"a"))
    assert unb64(back["plaintext"]) == b"durable"
    # Without --xks the proxy's paths are not served.
    s.extra_args = []
    s.restart()
    status, doc = Proxy(s.endpoint, ak, sk).send(f"/keys/{k}/metadata", {"requestMetadata": meta("DescribeKey")})
    assert status == 400 and doc is not None and "errorName" not in doc


def test_https_with_a_custom_prefix(ferrokms_bin, tmp_path, monkeypatch):
    import re

    from test_ops import TlsServer, self_signed

    cert, key = self_signed(tmp_path)
    monkeypatch.setattr(conftest, "LISTEN_RE", re.compile(r"^ferrokms listening on (https?://127\.0\.0\.1:(\d+))\s*$"))
    s = TlsServer(ferrokms_bin, tmp_path, data_dir=tmp_path / "data", extra_args=["--xks", "--xks-path-prefix", "/tenant_a"])
    s.cert, s.key = str(cert), str(key)
    s.start()
    try:
        assert s.endpoint.startswith("https://")
        ak, sk = new_credential(ferrokms_bin, s)
        k = new_key(ferrokms_bin, s)
        proxy = Proxy(s.endpoint, ak, sk, api="/tenant_a/kms/xks/v1", cafile=cert)
        assert proxy.ok("/health", {"requestMetadata": meta("KmsHealthCheck")})["ekmFleetDetails"][0]["healthStatus"] == "ACTIVE"
        out = proxy.ok(f"/keys/{k}/encrypt", enc_body(b"over tls", b"aad", cdiv=True))
        assert unb64(proxy.ok(f"/keys/{k}/decrypt", dec_body(out, b"aad"))["plaintext"]) == b"over tls"
        # The default prefix is not this server's.
        Proxy(s.endpoint, ak, sk, cafile=cert).error("/health", {"requestMetadata": meta("KmsHealthCheck")}, "InvalidUriPathException", 404)
    finally:
        s.stop()
    p = subprocess.run(
        [str(ferrokms_bin), "serve", "--in-memory", "--listen", "127.0.0.1:0", "--xks", "--xks-path-prefix", "no-slash"],
        capture_output=True,
        text=True,
        timeout=30,
        env=conftest.clean_env(),
    )
    assert p.returncode != 0 and "--xks-path-prefix" in p.stderr
