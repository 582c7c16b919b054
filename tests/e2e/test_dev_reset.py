"""`serve --dev`: the state-reset endpoints of moto (`POST /moto-api/reset`)
and LocalStack (`POST /_localstack/state/reset`, `.../kms/reset`,
`.../iam/reset`), so that a test suite written for either runs unchanged
(docs/identity.md, "Resetting a --dev server").

- each path clears what docs/identity.md says: keys (with their policies,
  tags, material), aliases, grants, IAM users/roles/groups/policies and
  user access keys, in every account; accounts and root keys stay, the
  server's own credentials still work, and a restart finds the same empty
  state (it is durable: SQLite, or PostgreSQL on that round);
- without `--dev` the paths answer as any unknown request and change
  nothing, and unsigned AWS requests stay refused with or without `--dev`;
- resets while clients create and use keys: no 5xx but the documented
  ones, and afterwards memory and store agree (a restart shows the same);
- the reset is audited;
- a boto3 suite written the moto way (reset after each test, fake
  `testing` credentials, the endpoint from AWS_ENDPOINT_URL) runs as is.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from accounts import client, uid
from conftest import DEV_ACCOUNT, HTTP_TIMEOUT, REGION, fresh_account, raw_request
from policies import allow, doc

MOTO = "/moto-api/reset"
LOCALSTACK = "/_localstack/state/reset"
LOCALSTACK_KMS = "/_localstack/state/kms/reset"
LOCALSTACK_IAM = "/_localstack/state/iam/reset"
ALL_PATHS = (MOTO, LOCALSTACK, LOCALSTACK_KMS, LOCALSTACK_IAM)


def post(endpoint, path, method="POST", body=b""):
    u = urlsplit(endpoint)
    assert u.hostname == "127.0.0.1", endpoint
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def reset(endpoint, path=MOTO):
    status, headers, body = post(endpoint, path)
    assert status == 200, (path, status, body)
    if path == MOTO:
        assert body == b'{"status": "ok"}', body
        assert headers["content-type"] == "application/json", headers
    else:
        assert body == b"", body
    assert headers.get("x-amzn-requestid"), headers
    return headers


class State:
    """Some of everything in one account: keys of several kinds with
    policies and tags, aliases, a grant, an imported-material key, users
    with access keys, a group, a role, a managed policy."""

    def __init__(self, endpoint, account):
        self.endpoint = endpoint
        self.account = account
        self.kms = client(endpoint, account, "x")
        self.iam = client(endpoint, account, "x", service="iam")

    def make(self):
        sym = self.kms.create_key(Tags=[{"TagKey": "team", "TagValue": "a"}])["KeyMetadata"]
        rsa = self.kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        ext = self.kms.create_key(Origin="EXTERNAL")["KeyMetadata"]
        self.kms.create_alias(AliasName="alias/app", TargetKeyId=sym["KeyId"])
        self.kms.create_alias(AliasName="alias/signer", TargetKeyId=rsa["KeyId"])
        self.kms.enable_key_rotation(KeyId=sym["KeyId"])
        self.blob = self.kms.encrypt(KeyId="alias/app", Plaintext=b"before")["CiphertextBlob"]
        self.iam.create_user(UserName="alice")
        self.iam.put_user_policy(UserName="alice", PolicyName="kms", PolicyDocument=doc(allow("kms:*")))
        self.alice_key = self.iam.create_access_key(UserName="alice")["AccessKey"]
        self.iam.create_group(GroupName="devs")
        self.iam.add_user_to_group(GroupName="devs", UserName="alice")
        trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.account}:root"}, "Action": "sts:AssumeRole"})
        self.iam.create_role(RoleName="app", AssumeRolePolicyDocument=trust)
        self.iam.create_policy(PolicyName="readonly", PolicyDocument=doc(allow("kms:Describe*")))
        user_arn = f"arn:aws:iam::{self.account}:user/alice"
        self.kms.create_grant(KeyId=sym["KeyId"], GranteePrincipal=user_arn, Operations=["Decrypt"])
        self.keys = [sym["KeyId"], rsa["KeyId"], ext["KeyId"]]
        return self

    def counts(self):
        aliases = [a for a in self.kms.list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")]
        return {
            "keys": len(self.kms.list_keys()["Keys"]),
            "aliases": len(aliases),
            "users": len(self.iam.list_users()["Users"]),
            "groups": len(self.iam.list_groups()["Groups"]),
            "roles": len(self.iam.list_roles()["Roles"]),
            "policies": len(self.iam.list_policies(Scope="Local")["Policies"]),
        }


FULL = {"keys": 3, "aliases": 2, "users": 1, "groups": 1, "roles": 1, "policies": 1}
EMPTY = dict.fromkeys(FULL, 0)
KMS_PART = ("keys", "aliases")


def alice_works(s: State) -> bool:
    try:
        client(s.endpoint, s.alice_key["AccessKeyId"], s.alice_key["SecretAccessKey"]).list_keys()
        return True
    except ClientError as e:
        assert e.response["Error"]["Code"] == "UnrecognizedClientException", e.response
        return False


@pytest.mark.parametrize("path", [MOTO, LOCALSTACK])
def test_reset_clears_every_account_and_the_server_keeps_working(server_factory, path):
    srv = server_factory(dev=True)
    own = srv.client()  # the data dir's credentials file: account 111122223333's root key
    states = [State(srv.endpoint, DEV_ACCOUNT).make(), State(srv.endpoint, fresh_account()).make()]
    own_key = own.create_key()["KeyMetadata"]["KeyId"]
    for s in states:
        assert s.counts() == FULL
        assert alice_works(s)
    # The key's grant is there before.
    assert states[0].kms.list_grants(KeyId=states[0].keys[0])["Grants"]
    reset(srv.endpoint, path)
    for s in states:
        assert s.counts() == EMPTY, s.account
        # The user's access key went with the user.
        assert not alice_works(s)
        # The keys are gone, not pending deletion: NotFound, and their
        # ciphertexts no longer decrypt.
        for k in s.keys:
            with pytest.raises(ClientError) as ei:
                s.kms.describe_key(KeyId=k)
            assert ei.value.response["Error"]["Code"] == "NotFoundException"
        with pytest.raises(ClientError) as ei:
            s.kms.decrypt(CiphertextBlob=s.blob)
        # (as for any key the caller cannot see: AccessDeniedException)
        assert ei.value.response["Error"]["Code"] == "AccessDeniedException", ei.value.response
    with pytest.raises(ClientError):
        own.describe_key(KeyId=own_key)
    # The server's own root key still works, and so does the dev account:
    # the same names can be made again.
    assert own.list_keys()["Keys"] == []
    again = State(srv.endpoint, DEV_ACCOUNT).make()
    assert again.counts() == FULL
    assert own.create_key()["KeyMetadata"]["KeyManager"] == "CUSTOMER"
    # Durable: a restart loads the same state (the new one, nothing of the old).
    srv.restart()
    assert State(srv.endpoint, DEV_ACCOUNT).counts() == FULL
    assert len(srv.client().list_keys()["Keys"]) == 1
    assert State(srv.endpoint, states[1].account).counts() == EMPTY
    reset(srv.endpoint, path)
    srv.restart()
    assert State(srv.endpoint, DEV_ACCOUNT).counts() == EMPTY
    assert srv.client().list_keys()["Keys"] == []


def test_localstack_per_service_resets_clear_that_service_only(server_factory):
    srv = server_factory(dev=True)
    s = State(srv.endpoint, DEV_ACCOUNT).make()
    reset(srv.endpoint, LOCALSTACK_KMS)
    assert s.counts() == {**FULL, "keys": 0, "aliases": 0}
    assert alice_works(s)
    s.kms.create_key()
    reset(srv.endpoint, LOCALSTACK_IAM)
    assert s.counts() == {**EMPTY, "keys": 1}
    assert not alice_works(s)


def test_reset_paths_take_post_only(server_factory):
    srv = server_factory(dev=True, in_memory=True)
    s = State(srv.endpoint, DEV_ACCOUNT)
    s.kms.create_key()
    for path in ALL_PATHS:
        status, _, _ = post(srv.endpoint, path, method="GET")
        assert status == 405, path
    assert s.counts()["keys"] == 1


def unknown_answer(endpoint, path):
    status, headers, body = post(endpoint, path)
    return status, headers.get("x-amzn-errortype"), json.loads(body).get("__type")


def test_without_dev_the_paths_are_unknown_requests_and_reset_nothing(server_factory):
    srv = server_factory()
    kms = srv.client()
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    iam = srv.client(service="iam")
    iam.create_user(UserName="bob")
    # What any unknown path answers today.
    want = unknown_answer(srv.endpoint, "/no-such-path/" + uid())
    assert want == (400, "UnknownOperationException", "UnknownOperationException")
    for path in ALL_PATHS:
        assert unknown_answer(srv.endpoint, path) == want, path
        # Also with a body moto-style clients never send, and another verb.
        status, _, _ = post(srv.endpoint, path, body=b'{"reset": true}')
        assert status == 400
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Enabled"
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["bob"]
    # Unsigned AWS requests are refused here as on AWS.
    r = raw_request(srv.endpoint, "TrentService.ListKeys", {}, sign=False)
    assert (r.status, r.error_type) == (400, "MissingAuthenticationTokenException")


def test_with_dev_unsigned_aws_requests_are_still_refused(server_factory):
    srv = server_factory(dev=True, in_memory=True)
    r = raw_request(srv.endpoint, "TrentService.ListKeys", {}, sign=False)
    assert (r.status, r.error_type) == (400, "MissingAuthenticationTokenException")
    r = raw_request(srv.endpoint, None, "Action=ListUsers&Version=2010-05-08", sign=False,
                    content_type="application/x-www-form-urlencoded")
    assert r.status in (400, 403) and b"MissingAuthenticationToken" in r.body, r.body


def test_reset_is_audited(server_factory):
    srv = server_factory(dev=True)
    srv.client().create_key()
    headers = reset(srv.endpoint, LOCALSTACK)
    request_id = headers["x-amzn-requestid"]
    audit_file = srv.data_dir / "audit" / "audit.jsonl"
    deadline = time.monotonic() + 10
    record = None
    while record is None and time.monotonic() < deadline:
        if audit_file.exists():
            for line in audit_file.read_text().splitlines():
                r = json.loads(line)
                if r.get("requestID") == request_id:
                    record = r
        if record is None:
            time.sleep(0.1)
    assert record is not None, "no audit record of the reset"
    assert record["eventName"] == "FerrokmsDevReset"
    assert record["userIdentity"]["type"] == "Unknown"
    assert record["readOnly"] is False
    assert record["requestParameters"] == {"path": LOCALSTACK, "scope": "all"}
    assert record["responseElements"]["kms"]["keys"] == 1
    assert record["sourceIPAddress"] == "127.0.0.1"


def test_reset_while_requests_are_in_flight(server_factory):
    """Clients create keys, aliases and users and encrypt while resets run:
    no answer but the AWS errors of a key or user that vanished, and
    afterwards a restart finds exactly what the running server showed."""
    srv = server_factory(dev=True)
    errors, unexpected = [], []
    stop = threading.Event()
    allowed = {"NotFoundException", "AlreadyExistsException", "EntityAlreadyExists", "NoSuchEntity",
               "KMSInvalidStateException", "DependencyTimeoutException"}

    def worker(n):
        s = State(srv.endpoint, DEV_ACCOUNT)
        deadline = time.monotonic() + 8
        i = 0
        while not stop.is_set() and time.monotonic() < deadline and i < 200:
            i += 1
            try:
                k = s.kms.create_key()["KeyMetadata"]["KeyId"]
                s.kms.create_alias(AliasName=f"alias/w{n}-{i}", TargetKeyId=k)
                s.kms.encrypt(KeyId=f"alias/w{n}-{i}", Plaintext=b"x")
                s.iam.create_user(UserName=f"w{n}-{i}")
            except ClientError as e:
                code = e.response["Error"]["Code"]
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                (errors if code in allowed and status < 500 else unexpected).append((code, status))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(5):
            time.sleep(0.5)
            reset(srv.endpoint, MOTO)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not unexpected, unexpected
    s = State(srv.endpoint, DEV_ACCOUNT)
    before = s.counts()
    keys_before = sorted(k["KeyId"] for k in s.kms.list_keys(Limit=1000)["Keys"])
    srv.restart()
    s = State(srv.endpoint, DEV_ACCOUNT)
    assert s.counts() == before
    assert sorted(k["KeyId"] for k in s.kms.list_keys(Limit=1000)["Keys"]) == keys_before
    # Every alias left points at a key that exists.
    for a in s.kms.list_aliases()["Aliases"]:
        if "TargetKeyId" in a and not a["AliasName"].startswith("alias/aws/"):
            assert s.kms.describe_key(KeyId=a["TargetKeyId"])["KeyMetadata"]["KeyId"] == a["TargetKeyId"]
    reset(srv.endpoint, MOTO)
    assert s.counts() == EMPTY


# --- a suite written the moto way ------------------------------------------
#
# As moto's docs have it for server mode: fake credentials ("testing"), the
# endpoint in AWS_ENDPOINT_URL, boto3.client(...) with a region and nothing
# else, and POST /moto-api/reset after every test. Each test makes the same
# names, which would collide without the reset.


@pytest.fixture(scope="module")
def moto_server(ferrokms_bin, tmp_path_factory):
    from conftest import Server

    work = tmp_path_factory.mktemp("moto-way")
    s = Server(ferrokms_bin, work, data_dir=work / "data", dev=True).start()
    yield s
    s.stop()


@pytest.fixture
def aws(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield
    # moto's documented reset call, as suites write it.
    req = urllib.request.Request(f"{moto_server.endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as r:
        assert r.status == 200 and json.loads(r.read()) == {"status": "ok"}


def moto_client(service):
    return boto3.client(service, region_name=REGION, config=Config(retries={"total_max_attempts": 1}))


@pytest.mark.parametrize("round_", range(3))
def test_moto_way_suite_starts_clean_each_time(aws, round_):
    kms, iam = moto_client("kms"), moto_client("iam")
    assert kms.list_keys()["Keys"] == []
    key = kms.create_key(Description="app key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/my-app", TargetKeyId=key["KeyId"])
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId="alias/my-app", Plaintext=b"hi")["CiphertextBlob"])["Plaintext"] == b"hi"
    iam.create_user(UserName="ci-user")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["ci-user"]
    # The caller is the dev account's root, as in moto's default account.
    assert key["Arn"].startswith(f"arn:aws:kms:{REGION}:{DEV_ACCOUNT}:key/")
