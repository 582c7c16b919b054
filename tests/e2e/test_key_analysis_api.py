"""ferrokms's analysis operations on the KMS endpoint (docs/analysis.md,
"What is and is not exposed over the API"): `FerrokmsService.SimulateKeyRequest`
answers what `ferrokms policy simulate` answers, word for word, and
`FerrokmsService.ListKeyAccess` lists what `ferrokms key access --exact`
lists, with only the key's own account known. Both are signed KMS JSON
requests, authorized before anything is read: another account's key is
refused first (root included), a caller needs kms:GetKeyPolicy and
kms:ListGrants on the key and iam:SimulatePrincipalPolicy on the principal
(iam:GetAccountAuthorizationDetails for the listing); bad input is a 400,
never a 500."""

from __future__ import annotations

import configparser
import json
import subprocess
import time

import pytest

from accounts import uid
from conftest import DEFAULT_ACCOUNT, REGION, make_client, raw_request, two_account_server
from policies import allow, deny, doc, kp_allow, kp_deny

# A data dir (the CLI reads it) and --dev's accounts (A, B).
SERVER_ARGS = ["--dev"]
AD = "AccessDeniedException"
PREFIX = "FerrokmsService."


def call(srv, creds, op, body, **kw):
    """One signed request as the principal whose (access key, secret) is
    `creds`."""
    return raw_request(srv.endpoint, PREFIX + op, body, access_key=creds[0], secret_key=creds[1], **kw)


def root(account):
    return (account.id, "x")


def user_creds(p):
    return (p.creds["AccessKeyId"], p.creds["SecretAccessKey"])


def cli_simulate(ferrokms_bin, srv, principal, action, key, context=(), tokens=()):
    args = [str(ferrokms_bin), "policy", "simulate", "--data-dir", str(srv.data_dir)]
    if srv.store_url:
        args += ["--store", srv.store_url]
    args += ["--principal", principal, "--action", action, "--key", key, "--json"]
    for c in context:
        args += ["--context", c]
    for t in tokens:
        args += ["--grant-token", t]
    p = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def api_simulate(srv, caller, principal, action, key, context=(), tokens=()):
    body = {"KeyId": key, "Principal": principal, "Action": action}
    if context:
        body["Context"] = [dict(zip(("Key", "Value"), c.split("=", 1))) for c in context]
    if tokens:
        body["GrantTokens"] = list(tokens)
    r = call(srv, caller, "SimulateKeyRequest", body)
    assert r.status == 200, (r.status, r.body)
    return r.json()


@pytest.fixture(scope="module")
def setup(A, B):
    """A's key: IAM delegation, a statement naming `named` with an
    encryption-context condition, a Deny for `denied`, B's root allowed to
    Encrypt; and a grant of Encrypt to `grantee`."""
    users = {
        "iam": A.user(allow("kms:Encrypt")),
        "nothing": A.user(),
        "denied": A.user(allow("kms:*")),
        "named": A.user(),
        "grantee": A.user(),
    }
    key = A.key(
        A.enable_iam(),
        kp_allow(users["named"].arn, "kms:Encrypt", Sid="NamedWithContext",
                 Condition={"StringEquals": {"kms:EncryptionContext:app": "demo"}}),
        kp_deny(users["denied"].arn, "kms:Encrypt", Sid="NoEncryptForDenied"),
        kp_allow(B.root_arn, ["kms:Encrypt", "kms:DescribeKey"], Sid="OtherAccount"),
    )
    grant = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=users["grantee"].arn, Operations=["Encrypt"])
    return {"key": key, "users": users, "grant": grant}


CASES = {
    # name: (principal, context, tokens?, allowed)
    "allowed through delegation": ("iam", (), False, True),
    "denied by no policy": ("nothing", (), False, False),
    "denied by an explicit deny": ("denied", (), False, False),
    "allowed by a grant": ("grantee", (), True, True),
    "denied but for a condition": ("named", (), False, False),
    "allowed with the context": ("named", ("kms:EncryptionContext:app=demo",), False, True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_simulation_equals_policy_simulate(ferrokms_bin, srv, A, setup, case):
    who, context, with_token, allowed = CASES[case]
    principal = setup["users"][who].arn
    tokens = (setup["grant"]["GrantToken"],) if with_token else ()
    key = setup["key"]["Arn"]
    api = api_simulate(srv, root(A), principal, "kms:Encrypt", key, context, tokens)
    cli = cli_simulate(ferrokms_bin, srv, principal, "kms:Encrypt", key, context, tokens)
    assert api == cli
    assert api["allowed"] is allowed, api
    if case == "denied by no policy":
        assert api["message"].endswith("because no identity-based policy allows the kms:Encrypt action"), api
        assert api["suggestions"], api
    if case == "denied by an explicit deny":
        assert "with an explicit deny in a resource-based policy" in api["message"], api
        assert any("NoEncryptForDenied" in s for s in api["statements"]), api
    if case == "allowed by a grant":
        assert api["decision"] == "allow (grant)", api
        assert api["grant_tokens"][0]["applies"] is True, api
    if case == "denied but for a condition":
        assert any("but its condition fails" in s and "kms:EncryptionContext:app" in s for s in api["suggestions"]), api


def test_a_role_is_simulated_as_a_session_and_an_alias_names_the_key(ferrokms_bin, srv, A, setup):
    role = A.role(allow("kms:Encrypt"))
    alias = f"alias/{uid('a')}"
    A.kms.create_alias(AliasName=alias, TargetKeyId=setup["key"]["KeyId"])
    api = api_simulate(srv, root(A), role.role_arn, "kms:Encrypt", alias)
    cli = cli_simulate(ferrokms_bin, srv, role.role_arn, "kms:Encrypt", alias)
    assert api == cli
    assert api["allowed"] is True and api["role_arn"] == role.role_arn, api
    assert api["principal"].endswith(f":assumed-role/{role.role_name}/simulated"), api


def test_another_accounts_root_gets_the_key_side(ferrokms_bin, srv, A, B, setup):
    key = setup["key"]["Arn"]
    for action, allowed in (("kms:Encrypt", True), ("kms:Decrypt", False)):
        api = api_simulate(srv, root(A), B.id, action, key)
        assert api == cli_simulate(ferrokms_bin, srv, B.id, action, key)
        assert api["allowed"] is allowed, api
    # Another account's user: its own policies are not read (assumed to
    # allow everything), so the answer is the key policy's part: the key
    # delegates Encrypt to B, not Decrypt.
    someone = f"arn:aws:iam::{B.id}:user/someone"
    api = api_simulate(srv, root(A), someone, "kms:Encrypt", key)
    assert api["allowed"] is True and api["principal"] == someone, api
    assert any("assumed identity policy" in s for s in api["statements"]), api
    api = api_simulate(srv, root(A), someone, "kms:Decrypt", key)
    assert api["allowed"] is False and "no resource-based policy allows" in api["message"], api


def test_an_invalid_grant_token_is_what_a_request_would_get(ferrokms_bin, srv, A, setup):
    principal = setup["users"]["grantee"].arn
    key = setup["key"]["Arn"]
    api = api_simulate(srv, root(A), principal, "kms:Encrypt", key, tokens=("not-a-token",))
    assert api == cli_simulate(ferrokms_bin, srv, principal, "kms:Encrypt", key, tokens=("not-a-token",))
    assert api["error"] == "InvalidGrantTokenException" and api["allowed"] is False, api


# --- who may ask --------------------------------------------------------


def test_another_accounts_root_is_refused_before_anything_is_read(srv, A, B, setup):
    key = setup["key"]["Arn"]
    body = {"KeyId": key, "Principal": B.id, "Action": "kms:Encrypt"}
    r = call(srv, root(B), "SimulateKeyRequest", body)
    assert (r.status, r.error_type) == (400, AD), r
    msg = r.json()["message"]
    assert f"arn:aws:iam::{B.id}:root" in msg and "kms:GetKeyPolicy" in msg, msg
    assert "OtherAccount" not in msg and "Encrypt" not in msg.replace("kms:GetKeyPolicy", ""), msg
    # A key of A that does not exist: the same refusal, so nothing is learnt.
    missing = f"arn:aws:kms:{REGION}:{A.id}:key/00000000-0000-0000-0000-000000000000"
    r2 = call(srv, root(B), "SimulateKeyRequest", dict(body, KeyId=missing))
    assert (r2.status, r2.error_type) == (400, AD), r2
    r3 = call(srv, root(B), "ListKeyAccess", {"KeyId": key})
    assert (r3.status, r3.error_type) == (400, AD), r3


def test_a_user_needs_every_read_the_answer_stands_for(srv, A, setup):
    key = setup["key"]["Arn"]
    target = setup["users"]["iam"].arn
    body = {"KeyId": key, "Principal": target, "Action": "kms:Encrypt"}
    cases = [
        ((), "kms:GetKeyPolicy"),
        ((allow("kms:GetKeyPolicy"),), "kms:ListGrants"),
        ((allow(["kms:GetKeyPolicy", "kms:ListGrants"]),), "iam:SimulatePrincipalPolicy"),
        ((allow(["kms:GetKeyPolicy", "kms:ListGrants", "iam:SimulatePrincipalPolicy"]),
          deny("iam:SimulatePrincipalPolicy", target)), "iam:SimulatePrincipalPolicy"),
    ]
    for statements, missing in cases:
        u = A.user(*statements)
        r = call(srv, user_creds(u), "SimulateKeyRequest", body)
        assert (r.status, r.error_type) == (400, AD), (statements, r)
        assert f"perform: {missing} " in r.json()["message"], (statements, r.json())
    ok = A.user(allow(["kms:GetKeyPolicy", "kms:ListGrants"]), allow("iam:SimulatePrincipalPolicy", target))
    r = call(srv, user_creds(ok), "SimulateKeyRequest", body)
    assert r.status == 200 and r.json()["allowed"] is True, r
    # Another account's principal: iam:SimulateCustomPolicy, not the
    # principal's own policies.
    r = call(srv, user_creds(ok), "SimulateKeyRequest", dict(body, Principal="210987654321"))
    assert (r.status, r.error_type) == (400, AD) and "iam:SimulateCustomPolicy" in r.json()["message"], r


def test_unsigned_and_unknown_are_refused(srv, A, setup):
    body = {"KeyId": setup["key"]["Arn"], "Principal": A.id, "Action": "kms:Encrypt"}
    for op in ("SimulateKeyRequest", "ListKeyAccess"):
        r = raw_request(srv.endpoint, PREFIX + op, body, sign=False)
        assert r.status == 400 and r.error_type in ("MissingAuthenticationTokenException", "IncompleteSignatureException"), r
        assert b"allowed" not in r.body
    r = call(srv, root(A), "Nope", body)
    assert (r.status, r.error_type) == (400, "UnknownOperationException"), r


@pytest.mark.parametrize(
    "body,code",
    [
        ({}, "ValidationException"),
        ({"Principal": "x", "Action": "kms:Encrypt"}, "ValidationException"),
        ({"KeyId": "k" * 2049, "Principal": "x", "Action": "kms:Encrypt"}, "ValidationException"),
        ({"KeyId": "K", "Principal": "p" * 3000, "Action": "kms:Encrypt"}, "ValidationException"),
        ({"KeyId": "K", "Principal": "ROOT", "Action": "kms:Encrypt",
          "Context": [{"Key": f"k{i}", "Value": "v"} for i in range(65)]}, "ValidationException"),
        ({"KeyId": "K", "Principal": "ROOT", "Action": "kms:Encrypt",
          "Context": [{"Key": "k", "Value": "v" * 1025}]}, "ValidationException"),
        ({"KeyId": "K", "Principal": "ROOT", "Action": "kms:Encrypt", "GrantTokens": ["t"] * 11}, "ValidationException"),
        ({"KeyId": "K", "Principal": "ROOT", "Action": "kms:NoSuchAction"}, "ValidationException"),
        ({"KeyId": "K", "Principal": "not an arn", "Action": "kms:Encrypt"}, "ValidationException"),
        ({"KeyId": "K", "Principal": "arn:aws:s3:::bucket", "Action": "kms:Encrypt"}, "ValidationException"),
        ({"KeyId": 5, "Principal": "ROOT", "Action": "kms:Encrypt"}, "SerializationException"),
        ({"KeyId": "K", "Principal": "ROOT", "Action": "kms:Encrypt", "Context": "x"}, "SerializationException"),
        ("[1, 2]", "SerializationException"),
        ("{not json", "SerializationException"),
    ],
)
def test_bad_input_is_a_400(srv, A, setup, body, code):
    if isinstance(body, dict):
        body = {k: (setup["key"]["Arn"] if v == "K" else A.id if v == "ROOT" else v) for k, v in body.items()}
    r = call(srv, root(A), "SimulateKeyRequest", body)
    assert (r.status, r.error_type) == (400, code), (r.status, r.body[:300])


def test_an_unknown_user_of_the_account_is_not_found(srv, A, setup):
    body = {"KeyId": setup["key"]["Arn"], "Principal": f"arn:aws:iam::{A.id}:user/nobody-{uid()}", "Action": "kms:Encrypt"}
    r = call(srv, root(A), "SimulateKeyRequest", body)
    assert (r.status, r.error_type) == (400, "NotFoundException"), r


# --- ListKeyAccess ------------------------------------------------------


def cli_access(ferrokms_bin, srv, key):
    args = [str(ferrokms_bin), "key", "access", "--data-dir", str(srv.data_dir)]
    if srv.store_url:
        args += ["--store", srv.store_url]
    p = subprocess.run(args + [key, "--exact", "--json"], capture_output=True, text=True, timeout=120)
    assert p.returncode in (0, 1), p.stderr
    return json.loads(p.stdout)


def api_access(srv, caller, key):
    r = call(srv, caller, "ListKeyAccess", {"KeyId": key})
    assert r.status == 200, (r.status, r.body)
    return r.json()


@pytest.fixture(scope="module")
def D(srv):
    """The server's default account: the one account the directory holds
    (--dev's other accounts exist only while used), so the CLI's listing,
    which knows every account of the directory, knows exactly what the
    API's knows."""
    from accounts import Account

    return Account(srv, DEFAULT_ACCOUNT)


@pytest.fixture(scope="module")
def own_key(D):
    """A key whose policy names only its account's principals: delegation,
    a user with an encryption-context condition; a role allowed through
    IAM; a grant."""
    A = D
    named = A.user()
    role = A.role(allow(["kms:Decrypt", "kms:DescribeKey"]))
    grantee = A.user()
    key = A.key(
        A.enable_iam(),
        kp_allow(named.arn, "kms:Encrypt", Sid="NamedWithContext",
                 Condition={"StringEquals": {"kms:EncryptionContext:app": "demo"}}),
    )
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])
    return {"key": key, "named": named, "role": role, "grantee": grantee}


def test_listing_equals_key_access_exact(ferrokms_bin, srv, D, own_key):
    key = own_key["key"]["Arn"]
    api = api_access(srv, root(D), key)
    assert api == cli_access(ferrokms_bin, srv, key)
    assert api["exact"] is True, api
    entries = api["access"]
    named = [e for e in entries if own_key["named"].arn in e["principal"]]
    assert named and all(e["conditional"] for e in named if e["path"] == "key policy"), named
    cond = [e for e in named if e["conditional"] and "Encrypt" in " ".join(e["actions"])]
    # Condition key names are case-insensitive; the analysis lower-cases them.
    ctx = [(c["key"].lower(), c["value"]) for c in cond[0]["exampleContext"]] if cond else []
    assert ("kms:encryptioncontext:app", "demo") in ctx, named
    # The role, as its sessions, through delegation + its identity policy.
    role = [e for e in entries if own_key["role"].role_name in e["principal"]]
    assert any(e["path"] == "delegation + identity policy" and not e["conditional"] for e in role), role
    grantee = [e for e in entries if own_key["grantee"].arn in e["principal"]]
    assert any(e["path"].startswith("grant ") for e in grantee), grantee


def test_only_the_keys_account_is_known(ferrokms_bin, tmp_path):
    """The CLI knows every account of the directory; the API only the
    key's, so another account's IAM policies neither show nor shape the
    answer: that account is listed as the key lets it in."""
    other = "444455556666"
    s = two_account_server(ferrokms_bin, tmp_path, other, "creds")
    try:
        owner = s.profile_credentials()
        cp = configparser.ConfigParser()
        cp.read(s.data_dir / "creds")
        other_root = (cp[f"root-{other}"]["aws_access_key_id"], cp[f"root-{other}"]["aws_secret_access_key"])
        other_iam = make_client(s.endpoint, *other_root, service="iam")
        secret = uid("bsecret")
        other_iam.create_user(UserName=secret)
        other_iam.put_user_policy(UserName=secret, PolicyName="p", PolicyDocument=doc(allow("kms:Encrypt")))
        kms = s.client()
        key = kms.create_key(Policy=doc(
            kp_allow(f"arn:aws:iam::{DEFAULT_ACCOUNT}:root", "kms:*", Sid="EnableIAMPolicies"),
            kp_allow(f"arn:aws:iam::{other}:root", ["kms:Encrypt", "kms:DescribeKey"], Sid="OtherAccount"),
        ))["KeyMetadata"]
        api = api_access(s, owner, key["Arn"])
        cli = cli_access(ferrokms_bin, s, key["Arn"])
        assert secret in json.dumps(cli), cli
        assert secret not in json.dumps(api), api
        theirs = [e for e in api["access"] if other in e["principal"]]
        assert theirs and all(e["external"] for e in theirs), api
        assert any("kms:Encrypt" in e["actions"] for e in theirs), theirs

        def own(d):
            return [e for e in d["access"] if other not in e["principal"] and other not in e["example"]]

        assert own(api) == own(cli)
    finally:
        s.stop()


def test_listing_needs_every_read_it_stands_for(srv, D, own_key):
    A = D
    key = own_key["key"]["Arn"]
    for statements, missing in [
        ((), "kms:GetKeyPolicy"),
        ((allow("kms:GetKeyPolicy"),), "kms:ListGrants"),
        ((allow(["kms:GetKeyPolicy", "kms:ListGrants"]),), "iam:GetAccountAuthorizationDetails"),
    ]:
        u = A.user(*statements)
        r = call(srv, user_creds(u), "ListKeyAccess", {"KeyId": key})
        assert (r.status, r.error_type) == (400, AD), (statements, r)
        assert f"perform: {missing} " in r.json()["message"], r.json()
    ok = A.user(allow(["kms:GetKeyPolicy", "kms:ListGrants", "iam:GetAccountAuthorizationDetails"]))
    r = call(srv, user_creds(ok), "ListKeyAccess", {"KeyId": key})
    assert r.status == 200 and r.json()["exact"] is True, r


@pytest.mark.parametrize("body,code", [
    ({}, "ValidationException"),
    ({"KeyId": "k" * 2049}, "ValidationException"),
    ({"KeyId": ["x"]}, "SerializationException"),
    ({"KeyId": "not a key id"}, "NotFoundException"),
    ("{", "SerializationException"),
])
def test_listing_bad_input_is_a_400(srv, A, body, code):
    r = call(srv, root(A), "ListKeyAccess", body)
    assert r.status == 400, (r.status, r.body[:300])
    assert r.error_type in (code, "NotFoundException", "ValidationException") if code == "NotFoundException" else r.error_type == code, r.body[:300]


def test_the_condition_search_is_bounded(srv, D, own_key):
    """A key policy of many conditional statements naming the principal:
    the search for the failing condition stops after its budget and says
    so, instead of re-evaluating every statement (the CLI searches all)."""
    who = own_key["named"].arn
    statements = [
        kp_allow(who, "kms:Encrypt", Sid=f"S{i}",
                 Condition={"StringEquals": {f"kms:EncryptionContext:k{i}": "v", "aws:SourceIp": "10.0.0.1"}})
        for i in range(70)
    ]
    key = D.key(D.enable_iam(), *statements)
    started = time.monotonic()
    r = call(srv, root(D), "SimulateKeyRequest", {"KeyId": key["Arn"], "Principal": who, "Action": "kms:Encrypt"})
    took = time.monotonic() - started
    assert r.status == 200, r
    answer = r.json()
    assert answer["allowed"] is False, answer
    assert answer["suggestions"][-1].startswith("(the search for failing conditions stopped after 64 evaluations"), answer
    assert any("but its condition fails" in s for s in answer["suggestions"][:-1]), answer
    print(f"SimulateKeyRequest on 70 conditional statements: {took:.2f} s")
