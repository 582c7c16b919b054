"""Hostile input on the wire, as an attacker would send it: IAM values that
would break every SDK's XML parser, SigV4 signatures that leave the
operation or the body uncovered, a long-term key dressed up with a session
token, and tag keys that differ only in case. Each test names the AWS rule
it holds ferrokms to (docs/identity.md, docs/authorization.md,
crates/sigv4/README.md)."""

import http.client
import json
import uuid
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (
    DEFAULT_ACCOUNT,
    HTTP_TIMEOUT,
    REGION,
    expect_error,
    make_client,
    raw_request,
)

ACCT = DEFAULT_ACCOUNT
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
TARGET_NOT_SIGNED = "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."
BAD_TOKEN = "The security token included in the request is invalid."
TAG_VALUE_PATTERN = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*"
DUPLICATE_TAGS = "Duplicate tag keys found. Please note that Tag keys are case insensitive."
TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"}],
})


def uid(prefix="w"):
    return prefix + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def iam(srv):
    return srv.client(service="iam")


@pytest.fixture(scope="module")
def iam_nv(srv):
    """IAM without botocore's parameter validation: the server answers."""
    return srv.client(service="iam", validate=False)


@pytest.fixture(scope="module")
def kms(srv):
    return srv.client()


def send(endpoint, method, path_query, body, headers):
    u = urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=HTTP_TIMEOUT)
    try:
        conn.request(method, path_query, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def kms_error(status_body):
    status, body = status_body
    doc = json.loads(body)
    return status, doc.get("__type"), doc.get("message") or doc.get("Message")


# --- finding 9: IAM input and the XML writer -------------------------------------


def test_vertical_tab_tag_value_is_refused_and_list_users_stays_parseable(iam, iam_nv):
    """tagValueType is [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*: U+000B is a control
    character (Cc), not a separator; and XML 1.0 cannot carry it at all."""
    name = uid("u")
    bad = "a\u000bb"
    expect_error(
        iam_nv.create_user, "ValidationError", 400, UserName=name, Tags=[{"Key": "k", "Value": bad}],
        message=(f"1 validation error detected: Value '{bad.replace(chr(11), chr(0xFFFD))}' at 'tags.1.member.value' "
                 f"failed to satisfy constraint: Member must satisfy regular expression pattern: {TAG_VALUE_PATTERN}"),
    )
    expect_error(iam.get_user, "NoSuchEntity", 404, UserName=name)
    ok = uid("u")
    iam.create_user(UserName=ok, Tags=[{"Key": "k", "Value": "fine"}])
    expect_error(iam_nv.tag_user, "ValidationError", 400, UserName=ok, Tags=[{"Key": "k", "Value": bad}])
    expect_error(iam_nv.tag_user, "ValidationError", 400, UserName=ok, Tags=[{"Key": "k\u000b", "Value": "v"}])
    # botocore parses every listing: nothing unparseable was stored.
    users = [u["UserName"] for p in iam.get_paginator("list_users").paginate() for u in p["Users"]]
    assert ok in users and name not in users
    assert iam.get_user(UserName=ok)["User"]["Tags"] == [{"Key": "k", "Value": "fine"}]
    iam.list_roles()
    iam.get_account_authorization_details()


@pytest.mark.parametrize("value", ["\u0000", "\u0008", "\u000c", "\u001f", "\u007f", "\u0085", "e\u0301", "\U0001F600"])
def test_tag_values_outside_the_iam_model_pattern_are_validation_errors(iam_nv, value):
    expect_error(iam_nv.create_role, "ValidationError", 400, RoleName=uid("r"),
                 AssumeRolePolicyDocument=TRUST, Tags=[{"Key": "k", "Value": value}])


@pytest.mark.parametrize("value", ["caf\u00e9", "\u65e5\u672c", "a b", "x_y.z:1/2=3+4-5@6", "\u2167", ""])
def test_tag_values_inside_the_iam_model_pattern_are_accepted(iam, value):
    r = uid("r")
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST, Tags=[{"Key": "k", "Value": value}])
    assert iam.get_role(RoleName=r)["Role"]["Tags"] == [{"Key": "k", "Value": value}]


def test_role_description_follows_role_description_type(iam, iam_nv):
    """roleDescriptionType: [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]*, at most 1000."""
    for bad in ["a\u000bb", "\u0000", "\u65e5"]:
        expect_error(iam_nv.create_role, "ValidationError", 400, RoleName=uid("r"),
                     AssumeRolePolicyDocument=TRUST, Description=bad)
    expect_error(iam_nv.create_role, "ValidationError", 400, RoleName=uid("r"),
                 AssumeRolePolicyDocument=TRUST, Description="x" * 1001)
    r = uid("r")
    desc = "caf\u00e9\tline\nend"
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST, Description=desc)
    assert iam.get_role(RoleName=r)["Role"]["Description"] == desc


def test_policy_description_and_path_follow_the_iam_model(iam, iam_nv):
    """policyDescriptionType has no pattern (max 1000): a U+000B is stored
    and the XML writer replaces it, so GetPolicy, ListPolicies and
    GetAccountAuthorizationDetails still parse. policyPathType is
    ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/."""
    doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]})
    expect_error(iam_nv.create_policy, "ValidationError", 400, PolicyName=uid("p"), PolicyDocument=doc,
                 Description="x" * 1001)
    expect_error(iam_nv.create_policy, "ValidationError", 400, PolicyName=uid("p"), PolicyDocument=doc,
                 Path="/a!b/")
    name = uid("p")
    arn = iam.create_policy(PolicyName=name, PolicyDocument=doc, Description="x\u000by\u0001z")["Policy"]["Arn"]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Description"] == "x\ufffdy\ufffdz"
    assert name in [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]]
    details = iam.get_account_authorization_details(Filter=["LocalManagedPolicy"])
    assert name in [p["PolicyName"] for p in details["Policies"]]


def test_iam_statement_ids_must_be_alphanumeric_but_key_policies_keep_theirs(iam, iam_nv, kms):
    """IAM: "Statement IDs (SID) must be alpha-numeric. Check that your input
    satisfies the regular expression [0-9A-Za-z]*"; KMS key policies allow
    any Sid (the default key policy's "Enable IAM User Permissions")."""
    sid_msg = ("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies "
               "the regular expression [0-9A-Za-z]*")
    bad = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Allow describe", "Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}]})
    u = uid("u")
    iam.create_user(UserName=u)
    expect_error(iam.put_user_policy, "MalformedPolicyDocument", 400, UserName=u, PolicyName="p",
                 PolicyDocument=bad, message=sid_msg)
    expect_error(iam.create_policy, "MalformedPolicyDocument", 400, PolicyName=uid("p"),
                 PolicyDocument=bad, message=sid_msg)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "trust-root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
         "Action": "sts:AssumeRole"}]})
    expect_error(iam.create_role, "MalformedPolicyDocument", 400, RoleName=uid("r"),
                 AssumeRolePolicyDocument=trust, message=sid_msg)
    good = bad.replace("Allow describe", "AllowDescribe")
    iam.put_user_policy(UserName=u, PolicyName="p", PolicyDocument=good)
    key_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
         "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"}]})
    key_id = kms.create_key(Policy=key_policy)["KeyMetadata"]["KeyId"]
    assert "Enable IAM User Permissions" in kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]


# --- finding 10: SigV4 --------------------------------------------------------------


def test_replayed_request_with_a_changed_target_is_refused_when_the_target_was_not_signed(srv, kms):
    """A signature that does not cover X-Amz-Target could be replayed within
    the skew window as another operation with the same body: the header must
    be signed when it is sent (every SDK, awscurl >= 0.34 and curl >= 7.86 do)."""
    key_id = kms.create_key(Description="replay target")["KeyMetadata"]["KeyId"]
    ak, sk = srv.profile_credentials()
    body = json.dumps({"KeyId": key_id, "PendingWindowInDays": 7})
    # Signed without X-Amz-Target (host, content-type, x-amz-date only), the
    # header added afterwards: what a captured request replayed as another
    # operation looks like.
    for target in ["TrentService.DescribeKey", "TrentService.ScheduleKeyDeletion"]:
        r = raw_request(srv.endpoint, None, body, access_key=ak, secret_key=sk,
                        headers={"X-Amz-Target": target})
        assert (r.status, r.error_type) == (400, "IncompleteSignatureException"), r
        assert r.json()["message"] == TARGET_NOT_SIGNED
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    # With the target signed, changing it on replay is a signature mismatch.
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.DescribeKey"})
    SigV4Auth(Credentials(ak, sk), "kms", REGION).add_auth(req)
    headers = dict(req.headers.items())
    assert "x-amz-target" in headers["Authorization"]
    assert kms_error(send(srv.endpoint, "POST", "/", body, headers))[0] == 200
    headers["X-Amz-Target"] = "TrentService.ScheduleKeyDeletion"
    assert kms_error(send(srv.endpoint, "POST", "/", body, headers)) == (400, "InvalidSignatureException", MISMATCH)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_query_protocol_request_without_target_header_still_verifies(srv):
    """IAM and STS name the operation in the signed body: no X-Amz-Target."""
    ak, sk = srv.profile_credentials()
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(ak, sk), "sts", REGION).add_auth(req)
    status, out = send(srv.endpoint, "POST", "/", body, dict(req.headers.items()))
    assert status == 200 and b"GetCallerIdentityResult" in out


def test_unsigned_payload_header_is_refused_whatever_the_body(srv, kms):
    """AWS allows UNSIGNED-PAYLOAD only for S3; KMS hashes the body it
    receives, so a signature over the literal is SignatureDoesNotMatch."""
    key_id = kms.create_key(Description="unsigned payload")["KeyMetadata"]["KeyId"]
    ak, sk = srv.profile_credentials()
    signed_body = json.dumps({"KeyId": key_id})
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=signed_body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.DisableKey",
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(ak, sk), "kms", REGION).add_auth(req)
    headers = dict(req.headers.items())
    for body in [signed_body, json.dumps({"KeyId": key_id, "x": 1})]:
        assert kms_error(send(srv.endpoint, "POST", "/", body, headers)) == (400, "InvalidSignatureException", MISMATCH)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_presigned_unsigned_payload_is_refused(srv, kms):
    """A presigned URL over UNSIGNED-PAYLOAD would carry any body."""
    key_id = kms.create_key(Description="presigned unsigned")["KeyMetadata"]["KeyId"]
    ak, sk = srv.profile_credentials()
    body = json.dumps({"KeyId": key_id})
    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.DisableKey",
        "X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4QueryAuth(Credentials(ak, sk), "kms", REGION, expires=300).add_auth(req)
    u = urlsplit(req.url)
    assert "X-Amz-Signature=" in u.query
    headers = {k: v for k, v in req.headers.items() if k.lower() != "authorization"}
    status, typ, msg = kms_error(send(srv.endpoint, "POST", f"/?{u.query}", body, headers))
    assert (status, typ, msg) == (400, "InvalidSignatureException", MISMATCH)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def token_client(srv, service, access_key, secret_key, token):
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                    aws_session_token=token, region_name=REGION)
    return session.client(service, endpoint_url=srv.endpoint,
                          config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


def assuming_user(srv, iam):
    """An STS client of a new user allowed to assume roles and tag sessions
    (roles cannot be assumed by an account's root)."""
    name = uid("u")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}]}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="sts")


def test_long_term_key_with_a_security_token_is_refused(srv, iam):
    """AWS: a long-term access key sent with X-Amz-Security-Token is
    UnrecognizedClientException "The security token included in the request
    is invalid." (InvalidClientTokenId over the query protocol)."""
    ak, sk = srv.profile_credentials()
    u = uid("u")
    iam.create_user(UserName=u)
    k = iam.create_access_key(UserName=u)["AccessKey"]
    for key, secret in [(ak, sk), (k["AccessKeyId"], k["SecretAccessKey"])]:
        kms = token_client(srv, "kms", key, secret, "FwoGZXIvYXdzEXAMPLETOKEN")
        expect_error(kms.list_keys, "UnrecognizedClientException", 400, message=BAD_TOKEN)
        sts = token_client(srv, "sts", key, secret, "FwoGZXIvYXdzEXAMPLETOKEN")
        expect_error(sts.get_caller_identity, "InvalidClientTokenId", 403, message=BAD_TOKEN)
    # A real session's token still works with its own key, and the session's
    # token does not lend itself to the long-term key.
    role = uid("r")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    creds = assuming_user(srv, iam).assume_role(
        RoleArn=f"arn:aws:iam::{ACCT}:role/{role}", RoleSessionName="sess")["Credentials"]
    sts = token_client(srv, "sts", creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert ":assumed-role/" in sts.get_caller_identity()["Arn"]
    kms = token_client(srv, "kms", ak, sk, creds["SessionToken"])
    expect_error(kms.list_keys, "UnrecognizedClientException", 400, message=BAD_TOKEN)


# --- finding 11: tag keys differing only in case -------------------------------------------


@pytest.mark.parametrize("op", ["create_user", "create_role", "tag_user", "tag_role"])
def test_iam_tag_keys_differing_only_in_case_are_refused(iam, op):
    """AWS IAM: InvalidInput "Duplicate tag keys found. Please note that Tag
    keys are case insensitive." for one request; Unicode case counts too."""
    u, r = uid("u"), uid("r")
    if op.startswith("tag_"):
        iam.create_user(UserName=u)
        iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    args = {"create_user": {"UserName": u}, "tag_user": {"UserName": u},
            "create_role": {"RoleName": r, "AssumeRolePolicyDocument": TRUST}, "tag_role": {"RoleName": r}}[op]
    for a, b in [("team", "Team"), ("\u00c9quipe", "\u00e9quipe")]:
        expect_error(getattr(iam, op), "InvalidInput", 400, message=DUPLICATE_TAGS,
                     Tags=[{"Key": a, "Value": "red"}, {"Key": b, "Value": "blue"}], **args)
    if op.startswith("tag_"):
        lister = iam.list_user_tags(UserName=u) if op == "tag_user" else iam.list_role_tags(RoleName=r)
        assert lister["Tags"] == []


def test_kms_tag_keys_differing_only_in_case_cannot_sidestep_a_request_tag_deny(srv, iam, kms):
    """A Deny on aws:RequestTag/team must hold: {team: red, Team: blue} is
    refused (TagException) instead of letting one spelling's value stand in
    for the other in the case-insensitive request context."""
    name = uid("u")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": ["kms:CreateKey", "kms:TagResource"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:RequestTag/team": "red"}}},
        ]}))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
    expect_error(user.create_key, "AccessDeniedException", 400, Tags=[{"TagKey": "team", "TagValue": "red"}])
    before = {x["KeyId"] for p in kms.get_paginator("list_keys").paginate() for x in p["Keys"]}
    for tags in ([{"TagKey": "team", "TagValue": "red"}, {"TagKey": "Team", "TagValue": "blue"}],
                 [{"TagKey": "Team", "TagValue": "blue"}, {"TagKey": "team", "TagValue": "red"}]):
        expect_error(user.create_key, "TagException", 400, Tags=tags)
    after = {x["KeyId"] for p in kms.get_paginator("list_keys").paginate() for x in p["Keys"]}
    assert after == before
    key_id = user.create_key(Tags=[{"TagKey": "team", "TagValue": "blue"}])["KeyMetadata"]["KeyId"]
    expect_error(user.tag_resource, "TagException", 400, KeyId=key_id,
                 Tags=[{"TagKey": "TEAM", "TagValue": "red"}, {"TagKey": "team", "TagValue": "blue"}])
    # Nor against the key's own tags: Team beside team would make
    # aws:ResourceTag/team ambiguous.
    expect_error(user.tag_resource, "TagException", 400, KeyId=key_id,
                 Tags=[{"TagKey": "Team", "TagValue": "green"}])
    assert user.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "blue"}]
    user.tag_resource(KeyId=key_id, Tags=[{"TagKey": "team", "TagValue": "green"}])
    assert user.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "team", "TagValue": "green"}]


def test_sts_session_tag_keys_differing_only_in_case_are_refused(srv, iam):
    role = uid("r")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
        "Action": ["sts:AssumeRole", "sts:TagSession"]}]})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    sts = assuming_user(srv, iam)
    expect_error(sts.assume_role, "InvalidInput", 400, message=DUPLICATE_TAGS,
                 RoleArn=f"arn:aws:iam::{ACCT}:role/{role}", RoleSessionName="sess",
                 Tags=[{"Key": "team", "Value": "red"}, {"Key": "TEAM", "Value": "blue"}])
