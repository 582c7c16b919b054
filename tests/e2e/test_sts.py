"""STS end to end: GetCallerIdentity, AssumeRole (same-account and
cross-account rules, session names, durations, session policies, ExternalId,
session tags, SourceIdentity, role chaining), GetSessionToken, and SigV4 with
temporary credentials (token required, expiry, revoked long-term keys), plus
the aws CLI role_arn + source_profile flow of seed 000."""

import json
import re
import subprocess
import sys
import time
import uuid

import pytest

from conftest import CLI_TIMEOUT, DEFAULT_ACCOUNT, REGION, BootServer, advance, clean_env, clock_server, expect_error, make_client
from policies import allow, doc, trust

ACCT = DEFAULT_ACCOUNT
OTHER = "444455556666"


def uid(prefix="e"):
    return prefix + uuid.uuid4().hex[:10]


# A server with a second account (via bootstrap) for cross-account cases.
SERVER = ("two-account", OTHER, "other.credentials")


@pytest.fixture(scope="module")
def iam(srv):
    return srv.client(service="iam")


@pytest.fixture(scope="module")
def other_iam(srv):
    import configparser

    cp = configparser.ConfigParser()
    cp.read(srv.data_dir / "other.credentials")
    sec = cp[f"root-{OTHER}"]
    return make_client(srv.endpoint, sec["aws_access_key_id"], sec["aws_secret_access_key"], service="iam")


def user(srv, iam, policy=None, account_iam=None):
    """A user with a key; returns (name, arn, sts client, credentials)."""
    c = account_iam or iam
    name = uid("u")
    arn = c.create_user(UserName=name)["User"]["Arn"]
    if policy is not None:
        c.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = c.create_access_key(UserName=name)["AccessKey"]
    creds = (k["AccessKeyId"], k["SecretAccessKey"])
    return name, arn, make_client(srv.endpoint, *creds, service="sts"), creds


def session_client(srv, creds, service="sts", token=True):
    s = boto3_session(creds, token)
    from botocore.config import Config

    return s.client(service, endpoint_url=srv.endpoint,
                    config=Config(region_name=REGION, retries={"total_max_attempts": 1, "mode": "standard"}))


def boto3_session(creds, token=True):
    import boto3

    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"] if token is True else (token or None), region_name=REGION)


def role(iam, trust_doc, **kw):
    name = uid("r")
    return name, iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_doc, **kw)["Role"]["Arn"]


# --- GetCallerIdentity ---------------------------------------------------------


def test_get_caller_identity_root_user_and_session(srv, iam):
    root = srv.client(service="sts").get_caller_identity()
    assert root["Arn"] == f"arn:aws:iam::{ACCT}:root" and root["Account"] == ACCT and root["UserId"] == ACCT
    name, arn, sts, _ = user(srv, iam)
    me = sts.get_caller_identity()
    assert me["Arn"] == arn and me["UserId"].startswith("AIDA")
    rname, rarn = role(iam, trust(arn))
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="s1")
    assert c["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/{rname}/s1"
    assert c["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA") and c["AssumedRoleUser"]["AssumedRoleId"].endswith(":s1")
    assert c["Credentials"]["AccessKeyId"].startswith("ASIA")
    me = session_client(srv, c["Credentials"]).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{ACCT}:assumed-role/{rname}/s1"


# --- same-account and cross-account rules ------------------------------------------


def test_trust_naming_the_user_needs_no_identity_policy(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    _, rarn = role(iam, trust(arn))
    sts.assume_role(RoleArn=rarn, RoleSessionName="direct")


def test_trust_naming_the_account_needs_an_identity_policy(srv, iam):
    name, arn, sts, _ = user(srv, iam)
    _, rarn = role(iam, trust(f"arn:aws:iam::{ACCT}:root"))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss",
                 message=f"User: {arn} is not authorized to perform: sts:AssumeRole on resource: {rarn} "
                         "because no identity-based policy allows the sts:AssumeRole action")
    iam.put_user_policy(UserName=name, PolicyName="a", PolicyDocument=doc(allow("sts:AssumeRole", rarn)))
    sts.assume_role(RoleArn=rarn, RoleSessionName="ss")


def test_trust_not_admitting_the_caller_denies_even_with_identity_policy(srv, iam):
    _, other_arn, _, _ = user(srv, iam)
    _, arn, sts, _ = user(srv, iam, policy=doc(allow("sts:AssumeRole")))
    _, rarn = role(iam, trust(other_arn))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss")


def test_cross_account_needs_trust_and_identity_policy(srv, iam, other_iam):
    name, arn, sts, _ = user(srv, iam)
    _, rarn = role(other_iam, trust(arn))
    assert rarn.startswith(f"arn:aws:iam::{OTHER}:role/")
    # Trust names the user directly, but across accounts the identity side must allow too.
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="xx",
                 message=f"User: {arn} is not authorized to perform: sts:AssumeRole on resource: {rarn} "
                         "because no identity-based policy allows the sts:AssumeRole action")
    iam.put_user_policy(UserName=name, PolicyName="x", PolicyDocument=doc(allow("sts:AssumeRole", rarn)))
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="xx")
    assert c["AssumedRoleUser"]["Arn"].startswith(f"arn:aws:sts::{OTHER}:assumed-role/")
    # Trust not naming the caller's account: denied whatever the identity policy says.
    _, rarn2 = role(other_iam, trust(f"arn:aws:iam::{OTHER}:root"))
    iam.put_user_policy(UserName=name, PolicyName="x", PolicyDocument=doc(allow("sts:AssumeRole")))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn2, RoleSessionName="xx")


def test_root_cannot_assume_roles_and_unknown_roles_are_denied(srv, iam):
    _, rarn = role(iam, trust(f"arn:aws:iam::{ACCT}:root"))
    expect_error(srv.client(service="sts").assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss",
                 message="Roles may not be assumed by root accounts.")
    _, _, sts, _ = user(srv, iam, policy=doc(allow("sts:AssumeRole")))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=f"arn:aws:iam::{ACCT}:role/nope", RoleSessionName="ss")


# --- parameters ------------------------------------------------------------------------


def test_session_name_and_duration_rules(srv, iam):
    _, arn, _, creds = user(srv, iam)
    sts = make_client(srv.endpoint, *creds, service="sts", validate=False)
    _, rarn = role(iam, trust(arn), MaxSessionDuration=7200)
    for bad in ["a", "x" * 65, "has space", "semi;colon"]:
        expect_error(sts.assume_role, "ValidationError", 400, RoleArn=rarn, RoleSessionName=bad)
    expect_error(sts.assume_role, "ValidationError", 400, RoleArn=rarn, RoleSessionName="ok", DurationSeconds=899)
    expect_error(sts.assume_role, "ValidationError", 400, RoleArn=rarn, RoleSessionName="ok", DurationSeconds=7201,
                 message="The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="user@example.com,x=y", DurationSeconds=7200)
    left = c["Credentials"]["Expiration"].timestamp() - time.time()
    assert 7100 < left <= 7200
    expect_error(sts.assume_role, "ValidationError", 400, RoleSessionName="ok")


def test_session_policy_and_policy_arns_cap_the_role(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    rname, rarn = role(iam, trust(arn))
    iam.put_role_policy(RoleName=rname, PolicyName="p", PolicyDocument=doc(allow(["iam:ListUsers", "iam:ListRoles"])))
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="capped", Policy=doc(allow("iam:ListUsers")))
    assert "PackedPolicySize" in c
    ri = session_client(srv, c["Credentials"], "iam")
    ri.list_users()
    expect_error(ri.list_roles, "AccessDenied", 403,
                 message=f"User: arn:aws:sts::{ACCT}:assumed-role/{rname}/capped is not authorized to perform: "
                         f"iam:ListRoles on resource: arn:aws:iam::{ACCT}:role/ because no session policy "
                         "allows the iam:ListRoles action")
    managed = iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("iam:ListRoles")))["Policy"]["Arn"]
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="arns", PolicyArns=[{"arn": managed}])
    ri = session_client(srv, c["Credentials"], "iam")
    ri.list_roles()
    expect_error(ri.list_users, "AccessDenied", 403)
    expect_error(sts.assume_role, "NoSuchEntity", 404, RoleArn=rarn, RoleSessionName="xx",
                 PolicyArns=[{"arn": f"arn:aws:iam::{ACCT}:policy/none"}])
    expect_error(sts.assume_role, "MalformedPolicyDocument", 400, RoleArn=rarn, RoleSessionName="xx", Policy="{bad")


def test_external_id_condition(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    _, rarn = role(iam, trust(arn, Condition={"StringEquals": {"sts:ExternalId": "secret-123"}}))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss")
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss", ExternalId="wrong-123")
    sts.assume_role(RoleArn=rarn, RoleSessionName="ss", ExternalId="secret-123")


# --- session tags and source identity ------------------------------------------------------


def test_session_tags_need_tag_session_and_become_principal_tags(srv, iam):
    _, arn, sts, creds = user(srv, iam)
    sts_nv = make_client(srv.endpoint, *creds, service="sts", validate=False).assume_role
    tags = [{"Key": "team", "Value": "blue"}, {"Key": "cost", "Value": "42"}]
    rname, rarn = role(iam, trust(arn))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="tt", Tags=tags,
                 message=re.compile(r".*sts:TagSession.*"))
    rname, rarn = role(iam, trust(arn, ["sts:AssumeRole", "sts:TagSession"],
                                  Condition={"StringEquals": {"aws:RequestTag/team": "blue"}}))
    iam.put_role_policy(RoleName=rname, PolicyName="p", PolicyDocument=doc(
        allow("iam:ListUsers", Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}),
        allow("iam:ListRoles", Condition={"StringEquals": {"aws:PrincipalTag/team": "red"}})))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="tt",
                 Tags=[{"Key": "team", "Value": "green"}])
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="tt", Tags=tags, TransitiveTagKeys=["team"])
    ri = session_client(srv, c["Credentials"], "iam")
    ri.list_users()
    expect_error(ri.list_roles, "AccessDenied", 403)
    expect_error(sts.assume_role, "InvalidParameterValue", 400, RoleArn=rarn, RoleSessionName="tt",
                 Tags=tags, TransitiveTagKeys=["nope"])
    expect_error(sts_nv, "ValidationError", 400, RoleArn=rarn, RoleSessionName="tt",
                 Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    expect_error(sts_nv, "PackedPolicyTooLarge", 400, RoleArn=rarn, RoleSessionName="tt",
                 Policy=doc(allow(["s3:" + "A" * 50 + str(i) for i in range(50)])))
    expect_error(sts_nv, "ValidationError", 400, RoleArn=rarn, RoleSessionName="tt", ExternalId="bad id!")


def test_role_tags_are_principal_tags_and_session_tags_override(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    rname, rarn = role(iam, trust(arn, ["sts:AssumeRole", "sts:TagSession"]),
                       Tags=[{"Key": "team", "Value": "red"}])
    iam.put_role_policy(RoleName=rname, PolicyName="p", PolicyDocument=doc(
        allow("iam:ListRoles", Condition={"StringEquals": {"aws:PrincipalTag/team": "red"}})))
    plain = session_client(srv, sts.assume_role(RoleArn=rarn, RoleSessionName="aa")["Credentials"], "iam")
    plain.list_roles()
    tagged = session_client(srv, sts.assume_role(RoleArn=rarn, RoleSessionName="bb",
                                                 Tags=[{"Key": "team", "Value": "blue"}])["Credentials"], "iam")
    expect_error(tagged.list_roles, "AccessDenied", 403)


def test_transitive_tags_pass_to_chained_sessions(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    r1, r1arn = role(iam, trust(arn, ["sts:AssumeRole", "sts:TagSession"]))
    r2, r2arn = role(iam, trust(f"arn:aws:iam::{ACCT}:role/{r1}", ["sts:AssumeRole", "sts:TagSession"]))
    iam.put_role_policy(RoleName=r1, PolicyName="p", PolicyDocument=doc(allow("sts:AssumeRole", r2arn)))
    iam.put_role_policy(RoleName=r2, PolicyName="p", PolicyDocument=doc(
        allow("iam:ListUsers", Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}})))
    c1 = sts.assume_role(RoleArn=r1arn, RoleSessionName="one", Tags=[{"Key": "team", "Value": "blue"}],
                         TransitiveTagKeys=["team"])
    s1 = session_client(srv, c1["Credentials"])
    expect_error(s1.assume_role, "InvalidParameterValue", 400, RoleArn=r2arn, RoleSessionName="two",
                 Tags=[{"Key": "team", "Value": "red"}])
    # Chained sessions last at most an hour.
    expect_error(s1.assume_role, "ValidationError", 400, RoleArn=r2arn, RoleSessionName="two", DurationSeconds=3601)
    c2 = s1.assume_role(RoleArn=r2arn, RoleSessionName="two")
    session_client(srv, c2["Credentials"], "iam").list_users()


def test_source_identity_needs_set_source_identity_and_sticks(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    _, rarn = role(iam, trust(arn))
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss", SourceIdentity="alice")
    rname, rarn = role(iam, trust(arn, ["sts:AssumeRole", "sts:SetSourceIdentity"],
                                  Condition={"StringLike": {"sts:SourceIdentity": "ali*"}}))
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="ss", SourceIdentity="alice")
    assert c["SourceIdentity"] == "alice"
    expect_error(sts.assume_role, "AccessDenied", 403, RoleArn=rarn, RoleSessionName="ss", SourceIdentity="bob1")


# --- GetSessionToken and temporary credentials ---------------------------------------------


def test_get_session_token_for_user_and_root(srv, iam):
    name, arn, sts, _ = user(srv, iam, policy=doc(allow("iam:GetUser")))
    c = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    assert session_client(srv, c).get_caller_identity()["Arn"] == arn
    # AWS: credentials from GetSessionToken without MFA cannot call IAM.
    expect_error(session_client(srv, c, "iam").get_user, "InvalidClientTokenId", 403,
                 message="The security token included in the request is invalid", UserName=name)
    expect_error(session_client(srv, c).get_session_token, "AccessDenied", 403,
                 message="Cannot call GetSessionToken with session credentials")
    expect_error(make_client(srv.endpoint, *srv.profile_credentials(), service="sts", validate=False).get_session_token,
                 "ValidationError", 400, DurationSeconds=7200)
    srv.client(service="sts").get_session_token(DurationSeconds=3600)


def test_temporary_key_works_only_with_its_token(srv, iam):
    _, arn, sts, _ = user(srv, iam)
    _, rarn = role(iam, trust(arn))
    c = sts.assume_role(RoleArn=rarn, RoleSessionName="tok")["Credentials"]
    expect_error(session_client(srv, c, token=None).get_caller_identity, "InvalidClientTokenId", 403,
                 message="The security token included in the request is invalid.")
    expect_error(session_client(srv, c, token="x" * 40).get_caller_identity, "InvalidClientTokenId", 403)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as ei:
        session_client(srv, c, "kms", token=None).list_keys()
    assert ei.value.response["Error"]["Code"] == "UnrecognizedClientException"
    session_client(srv, c).get_caller_identity()


def test_inactive_or_deleted_keys_stop_working_at_once(srv, iam):
    name, _, sts, creds = user(srv, iam)
    kms = make_client(srv.endpoint, *creds)
    sts.get_caller_identity()
    iam.update_access_key(UserName=name, AccessKeyId=creds[0], Status="Inactive")
    expect_error(sts.get_caller_identity, "InvalidClientTokenId", 403)
    expect_error(make_client(srv.endpoint, *creds, service="iam").list_users, "InvalidClientTokenId", 403)
    expect_error(kms.list_keys, "UnrecognizedClientException", 400)
    iam.update_access_key(UserName=name, AccessKeyId=creds[0], Status="Active")
    sts.get_caller_identity()
    iam.delete_access_key(UserName=name, AccessKeyId=creds[0])
    expect_error(sts.get_caller_identity, "InvalidClientTokenId", 403)
    expect_error(kms.list_keys, "UnrecognizedClientException", 400)


def test_expired_session_is_refused_with_expired_token(ferrokms_bin, tmp_path):
    # The shortest real session lasts 15 minutes: the test clock moves the
    # server past its expiry (the expiry is sealed in the token itself).
    s = clock_server(ferrokms_bin, tmp_path)
    try:
        iam = s.client(service="iam")
        name = "exp"
        arn = iam.create_user(UserName=name)["User"]["Arn"]
        k = iam.create_access_key(UserName=name)["AccessKey"]
        iam.create_role(RoleName="exprole", AssumeRolePolicyDocument=trust(arn))
        sts = make_client(s.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="sts")
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCT}:role/exprole", RoleSessionName="ee", DurationSeconds=900)["Credentials"]
        session_client(s, c).get_caller_identity()
        advance(s, 899)
        session_client(s, c).get_caller_identity()
        advance(s, 2)
        expect_error(session_client(s, c).get_caller_identity, "ExpiredToken", 400,
                     message="The security token included in the request is expired")
        from botocore.exceptions import ClientError

        with pytest.raises(ClientError) as ei:
            session_client(s, c, "kms").list_keys()
        assert ei.value.response["Error"]["Code"] == "ExpiredTokenException"
        # Long-term keys are unaffected.
        make_client(s.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="sts").get_caller_identity()
    finally:
        s.stop()


def test_sts_unknown_action_and_missing_parameters(srv):
    sts = make_client(srv.endpoint, *srv.profile_credentials(), service="sts", validate=False)
    expect_error(sts.assume_role, "ValidationError", 400, RoleSessionName="xx")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client
    from urllib.parse import urlsplit

    body = "Action=GetFederationTokenX&Version=2011-06-15"
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    SigV4Auth(Credentials(*srv.profile_credentials()), "sts", REGION).add_auth(req)
    u = urlsplit(srv.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    assert resp.status == 400 and "<Code>InvalidAction</Code>" in text
    assert 'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' in text


# --- the aws CLI: role_arn + source_profile (seed 000) ----------------------------------------


def test_aws_cli_profile_with_role_arn_and_source_profile(ferrokms_bin, tmp_path):
    from pathlib import Path

    seed = Path(__file__).resolve().parents[2] / "examples" / "seed-000.toml"
    s = BootServer(ferrokms_bin, tmp_path, data_dir=tmp_path / "data")
    s.bootstrap = str(seed)
    s.start()
    try:
        cfg = tmp_path / "config"
        cfg.write_text(
            "[profile dev]\nregion = us-east-1\n"
            "[profile exports-test]\noutput = json\n"
            f"role_arn = arn:aws:iam::{ACCT}:role/kms-exports-role\nsource_profile = dev\nregion = us-east-1\n")
        env = clean_env()
        home = tmp_path / "home"
        home.mkdir()
        # A private HOME: the CLI caches assumed-role credentials under ~/.aws/cli/cache.
        env.update(HOME=str(home), AWS_CONFIG_FILE=str(cfg), AWS_SHARED_CREDENTIALS_FILE=str(s.data_dir / "seed-000.credentials"),
                   AWS_ENDPOINT_URL=s.endpoint, AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true")
        p = subprocess.run([sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--profile", "exports-test"],
                           env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        out = json.loads(p.stdout)
        assert re.fullmatch(rf"arn:aws:sts::{ACCT}:assumed-role/kms-exports-role/botocore-session-\d+", out["Arn"]), out
        assert out["Account"] == ACCT and out["UserId"].startswith("AROA")
        p = subprocess.run([sys.executable, "-m", "awscli", "sts", "get-caller-identity", "--profile", "dev"],
                           env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        assert json.loads(p.stdout)["Arn"] == f"arn:aws:iam::{ACCT}:user/dev"
    finally:
        s.stop()

