"""The identity plane, attacked the way the security review attacked it:
through boto3 against a real server with two accounts. Each test is named
after the AWS rule it checks and tries the attacker's path first; the same
rules run in-process in crates/iam/src/authz/tests.rs."""

import configparser
import json
import subprocess
import time
import uuid

from conftest import DEFAULT_ACCOUNT, REGION, expect_error, make_client
from policies import doc

A = DEFAULT_ACCOUNT
B = "444455556666"


ALLOW_ALL = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})


def uid(prefix):
    return prefix + uuid.uuid4().hex[:10]


SERVER = ("two-account", B, "b.credentials")


def b_root(srv, service):
    cp = configparser.ConfigParser()
    cp.read(srv.data_dir / "b.credentials")
    sec = cp[f"root-{B}"]
    return make_client(srv.endpoint, sec["aws_access_key_id"], sec["aws_secret_access_key"], service=service)


def new_user(srv, iam, policy=None):
    """A user of iam's account with a key; (name, arn, credentials)."""
    name = uid("u")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    if policy:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, arn, (k["AccessKeyId"], k["SecretAccessKey"])


def session_client(srv, c, service):
    import boto3
    from botocore.config import Config

    s = boto3.session.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                              aws_session_token=c["SessionToken"], region_name=REGION)
    return s.client(service, endpoint_url=srv.endpoint,
                    config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))


# --- IAM resources belong to one account; root is all-powerful only in its own -------


def test_another_accounts_root_cannot_rewrite_a_policy_and_so_never_reaches_the_role(srv):
    a_iam = srv.client(service="iam")
    # A: a role that trusts account B, whose permissions come from A's managed policy.
    pol = a_iam.create_policy(PolicyName=uid("ops"), PolicyDocument=doc(
        {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}))["Policy"]
    arn = pol["Arn"]
    role = uid("r")
    role_arn = a_iam.create_role(RoleName=role, AssumeRolePolicyDocument=doc(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{B}:root"}, "Action": "sts:AssumeRole"}))["Role"]["Arn"]
    a_iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    # The attack: B's root widens A's policy to everything, makes it the
    # default, then assumes the role. It fails at the first step.
    b = b_root(srv, "iam")
    denied = f"User: arn:aws:iam::{B}:root is not authorized to perform: iam:CreatePolicyVersion on resource: {arn} because no resource-based policy allows the iam:CreatePolicyVersion action"
    expect_error(b.create_policy_version, "AccessDenied", 403, message=denied,
                 PolicyArn=arn, PolicyDocument=ALLOW_ALL, SetAsDefault=True)
    for call, kw in [
        (b.get_policy, {}),
        (b.get_policy_version, {"VersionId": "v1"}),
        (b.list_policy_versions, {}),
        (b.list_entities_for_policy, {}),
        (b.set_default_policy_version, {"VersionId": "v1"}),
        (b.delete_policy_version, {"VersionId": "v1"}),
        (b.delete_policy, {}),
    ]:
        expect_error(call, "AccessDenied", 403, PolicyArn=arn, **kw)
    # A's policy is untouched.
    versions = a_iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v1"]
    got = a_iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]["Document"]
    assert got["Statement"][0]["Action"] == "kms:DescribeKey"
    # B's root may still assume the role? No: roots never assume roles; and
    # B's users get only what A's unchanged policy grants.
    expect_error(b_root(srv, "sts").assume_role, "AccessDenied", 403, RoleArn=role_arn, RoleSessionName="xx")


def test_another_accounts_policy_is_neither_attachable_nor_a_boundary(srv):
    a_iam = srv.client(service="iam")
    arn = a_iam.create_policy(PolicyName=uid("admin"), PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    b = b_root(srv, "iam")
    name, _, creds = new_user(srv, b, ALLOW_ALL)
    mallory = make_client(srv.endpoint, *creds, service="iam")
    msg = f"Policy {arn} does not exist or is not attachable."
    expect_error(mallory.attach_user_policy, "NoSuchEntity", 404, message=msg, UserName=name, PolicyArn=arn)
    expect_error(b.attach_user_policy, "NoSuchEntity", 404, message=msg, UserName=name, PolicyArn=arn)
    expect_error(b.attach_role_policy, "NoSuchEntity", 404, RoleName=uid("nope"), PolicyArn=arn)
    expect_error(mallory.put_user_permissions_boundary, "NoSuchEntity", 404, UserName=name, PermissionsBoundary=arn)
    expect_error(b.create_user, "NoSuchEntity", 404, UserName=uid("e"), PermissionsBoundary=arn)
    assert b.list_attached_user_policies(UserName=name)["AttachedPolicies"] == []


# --- request-wide keys hold on IAM and STS -----------------------------------------


def test_an_expired_contractor_cannot_delete_its_own_deny(srv):
    iam = srv.client(service="iam")
    expired = doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Sid": "ContractEnded", "Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}},
    )
    name, arn, creds = new_user(srv, iam, expired)
    me = make_client(srv.endpoint, *creds, service="iam")
    expect_error(me.delete_user_policy, "AccessDenied", 403,
                 message=f"User: {arn} is not authorized to perform: iam:DeleteUserPolicy on resource: {arn} with an explicit deny in an identity-based policy",
                 UserName=name, PolicyName="p")
    expect_error(make_client(srv.endpoint, *creds, service="sts").assume_role, "AccessDenied", 403,
                 RoleArn=f"arn:aws:iam::{A}:role/any", RoleSessionName="xx")
    # Still in place, and KMS agrees.
    assert iam.get_user_policy(UserName=name, PolicyName="p")["PolicyName"] == "p"
    expect_error(make_client(srv.endpoint, *creds).list_keys, "AccessDeniedException", 400)


def test_a_deny_outside_the_corporate_network_or_without_tls_stops_iam(srv):
    iam = srv.client(service="iam")
    _, _, creds = new_user(srv, iam, doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}))
    expect_error(make_client(srv.endpoint, *creds, service="iam").list_users, "AccessDenied", 403)
    _, _, creds = new_user(srv, iam, doc(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}))
    expect_error(make_client(srv.endpoint, *creds, service="iam").list_roles, "AccessDenied", 403)
    # From loopback it is allowed when the network matches.
    _, _, creds = new_user(srv, iam, doc(
        {"Effect": "Allow", "Action": "iam:ListRoles", "Resource": "*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}))
    make_client(srv.endpoint, *creds, service="iam").list_roles()


# --- IAM's own condition keys ------------------------------------------------------


def test_a_user_allowed_only_a_harmless_tag_cannot_give_itself_the_abac_tag_a_key_trusts(srv):
    iam = srv.client(service="iam")
    kms = srv.client()
    key = kms.create_key(Policy=doc(
        {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "TeamBlue", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt",
         "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalTag/team": "blue",
                                                          "kms:CallerAccount": A}}}))["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"payroll")["CiphertextBlob"]
    name, arn, creds = new_user(srv, iam, doc(
        {"Effect": "Allow", "Action": "iam:TagUser", "Resource": "*",
         "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": ["nickname"]}}}))
    me = make_client(srv.endpoint, *creds, service="iam")
    me.tag_user(UserName=name, Tags=[{"Key": "nickname", "Value": "m"}])
    expect_error(me.tag_user, "AccessDenied", 403, UserName=name, Tags=[{"Key": "team", "Value": "blue"}])
    expect_error(me.tag_user, "AccessDenied", 403, UserName=name,
                 Tags=[{"Key": "nickname", "Value": "m"}, {"Key": "team", "Value": "blue"}])
    expect_error(make_client(srv.endpoint, *creds).decrypt, "AccessDeniedException", 400, CiphertextBlob=blob)


def test_policy_arn_and_permissions_boundary_conditions_hold(srv):
    iam = srv.client(service="iam")
    ro = iam.create_policy(PolicyName=uid("ro"), PolicyDocument=doc(
        {"Effect": "Allow", "Action": "iam:Get*", "Resource": "*"}))["Policy"]["Arn"]
    admin = iam.create_policy(PolicyName=uid("adm"), PolicyDocument=ALLOW_ALL)["Policy"]["Arn"]
    name, _, creds = new_user(srv, iam, doc(
        {"Effect": "Allow", "Action": "iam:AttachUserPolicy", "Resource": "*",
         "Condition": {"ArnEquals": {"iam:PolicyARN": ro}}},
        {"Effect": "Allow", "Action": "iam:CreateUser", "Resource": "*",
         "Condition": {"StringEquals": {"iam:PermissionsBoundary": ro}}}))
    me = make_client(srv.endpoint, *creds, service="iam")
    expect_error(me.attach_user_policy, "AccessDenied", 403, UserName=name, PolicyArn=admin)
    me.attach_user_policy(UserName=name, PolicyArn=ro)
    expect_error(me.create_user, "AccessDenied", 403, UserName=uid("n"))
    expect_error(me.create_user, "AccessDenied", 403, UserName=uid("n"), PermissionsBoundary=admin)
    me.create_user(UserName=uid("n"), PermissionsBoundary=ro)


# --- identities by unique id -------------------------------------------------------


def test_a_deleted_users_session_credentials_stop_working_and_a_new_namesake_does_not_revive_them(srv):
    iam = srv.client(service="iam")
    name, _, creds = new_user(srv, iam, ALLOW_ALL)
    c = make_client(srv.endpoint, *creds, service="sts").get_session_token(DurationSeconds=900)["Credentials"]
    session_client(srv, c, "kms").list_keys()
    iam.delete_access_key(UserName=name, AccessKeyId=creds[0])
    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)
    expect_error(session_client(srv, c, "sts").get_caller_identity, "InvalidClientTokenId", 403)
    # Someone else is created under the same name, with every permission.
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=ALLOW_ALL)
    expect_error(session_client(srv, c, "sts").get_caller_identity, "InvalidClientTokenId", 403)
    expect_error(session_client(srv, c, "kms").list_keys, "UnrecognizedClientException", 400)


def test_a_session_of_a_deleted_role_is_refused_even_after_the_role_is_recreated(srv):
    iam = srv.client(service="iam")
    _, uarn, creds = new_user(srv, iam)
    role = uid("r")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": uarn}, "Action": "sts:AssumeRole"})
    role_arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    sts = make_client(srv.endpoint, *creds, service="sts")
    c = sts.assume_role(RoleArn=role_arn, RoleSessionName="old")["Credentials"]
    session_client(srv, c, "sts").get_caller_identity()
    iam.delete_role(RoleName=role)
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName=role, PolicyName="all", PolicyDocument=ALLOW_ALL)
    expect_error(session_client(srv, c, "sts").get_caller_identity, "InvalidClientTokenId", 403)
    expect_error(session_client(srv, c, "kms").list_keys, "UnrecognizedClientException", 400)
    fresh = sts.assume_role(RoleArn=role_arn, RoleSessionName="new")["Credentials"]
    session_client(srv, fresh, "kms").list_keys()


# --- GetSessionToken credentials and IAM --------------------------------------------


def test_get_session_token_credentials_cannot_call_iam_or_other_sts_operations(srv):
    iam = srv.client(service="iam")
    name, _, creds = new_user(srv, iam, ALLOW_ALL)
    c = make_client(srv.endpoint, *creds, service="sts").get_session_token(DurationSeconds=900)["Credentials"]
    for call in (session_client(srv, c, "iam").list_users, session_client(srv, c, "iam").get_user):
        expect_error(call, "InvalidClientTokenId", 403, message="The security token included in the request is invalid")
    session_client(srv, c, "sts").get_caller_identity()
    session_client(srv, c, "kms").list_keys()


# --- audit ------------------------------------------------------------------------


def test_iam_and_sts_records_carry_the_source_address_and_the_decision_trace(ferrokms_bin, srv):
    iam = srv.client(service="iam")
    _, arn, creds = new_user(srv, iam, doc({"Sid": "Lists", "Effect": "Allow", "Action": "iam:ListUsers", "Resource": "*"}))
    me = make_client(srv.endpoint, *creds, service="iam")
    rid_ok = me.list_users()["ResponseMetadata"]["RequestId"]
    err = expect_error(me.list_roles, "AccessDenied", 403)
    rid_denied = err.response["ResponseMetadata"]["RequestId"]
    time.sleep(0.3)
    p = subprocess.run([str(ferrokms_bin), "audit", "--data-dir", str(srv.data_dir), "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    recs = {r["requestID"]: r for r in map(json.loads, p.stdout.splitlines()) if r.get("requestID")}
    ok, denied = recs[rid_ok], recs[rid_denied]
    for r in (ok, denied):
        assert r["sourceIPAddress"] == "127.0.0.1"
        assert r["eventSource"] == "iam.amazonaws.com"
    assert ok["ferrokmsAuthorization"][0]["action"] == "iam:ListUsers"
    assert ok["ferrokmsAuthorization"][0]["allowed"] is True
    assert any("(Lists) Allow" in s for s in ok["ferrokmsAuthorization"][0]["statements"])
    d = denied["ferrokmsAuthorization"][0]
    assert d["action"] == "iam:ListRoles" and d["allowed"] is False
    assert "no identity-based policy allows" in d["decision"]


# --- a simulation is bounded: its cost is actions × resources × statements × context ---


def test_a_simulation_too_large_to_answer_quickly_is_refused_before_it_runs(srv):
    """An auditor allowed iam:SimulateCustomPolicy sends, in one request, 200 actions on 200
    resources (40,000 pairs), or a page of 1,000 pairs against a policy of 300 statements; the
    server refuses either at once (InvalidInput, nothing evaluated). A page costs only its own
    results: the largest accepted simulation, paged 1,000 results at a time, answers quickly."""
    iam = srv.client(service="iam")
    _, _, (ak, sk) = new_user(srv, iam, doc({"Effect": "Allow", "Action": "iam:Simulate*", "Resource": "*"}))
    auditor = make_client(srv.endpoint, ak, sk, service="iam")

    def policy_of(n):
        return doc(*({"Sid": f"S{i}", "Effect": "Allow", "Action": f"kms:Action{i}", "Resource": "*"}
                     for i in range(n)))

    actions = [f"kms:Action{i}" for i in range(200)]
    resources = [f"arn:aws:kms:{REGION}:{A}:key/k{i}" for i in range(200)]
    started = time.monotonic()
    e = expect_error(lambda: auditor.simulate_custom_policy(
        PolicyInputList=[policy_of(100)], ActionNames=actions, ResourceArns=resources), "InvalidInput")
    assert "The simulation is too large" in str(e), e
    e = expect_error(lambda: auditor.simulate_custom_policy(
        PolicyInputList=[policy_of(300)], ActionNames=actions[:100], ResourceArns=resources[:100],
        MaxItems=1000), "InvalidInput")
    assert "in one page" in str(e), e
    assert time.monotonic() - started < 2
    many_entries = [{"ContextKeyName": f"aws:Key{i}", "ContextKeyValues": ["v"], "ContextKeyType": "string"}
                    for i in range(101)]
    expect_error(lambda: auditor.simulate_custom_policy(
        PolicyInputList=[policy_of(1)], ActionNames=actions[:1], ContextEntries=many_entries), "InvalidInput")
    # The largest accepted: 100 × 100 pairs, 100 statements, in pages of 1,000 results.
    started = time.monotonic()
    pages = auditor.get_paginator("simulate_custom_policy").paginate(
        PolicyInputList=[policy_of(100)], ActionNames=actions[:100], ResourceArns=resources[:100],
        PaginationConfig={"PageSize": 1000})
    results = [r for p in pages for r in p["EvaluationResults"]]
    took = time.monotonic() - started
    assert len(results) == 10_000
    assert [(r["EvalActionName"], r["EvalResourceName"]) for r in results[999:1001]] == [
        ("kms:Action9", resources[99]), ("kms:Action10", resources[0])]
    assert sum(r["EvalDecision"] == "allowed" for r in results) == 10_000
    print(f"largest accepted simulation answered in {took:.2f} s (10 pages)")


# --- an unauthorized caller learns nothing of which names exist -----------------------


def test_an_unauthorized_user_cannot_probe_which_users_roles_and_groups_exist(srv):
    """A user with no IAM permissions asks about a name that exists and one that does not: AWS
    authorizes on the ARN first, so both answers are the same AccessDenied; the account's root is
    told NoSuchEntity."""
    iam = srv.client(service="iam")
    real = uid("real")
    iam.create_user(UserName=real)
    iam.create_group(GroupName=real)
    _, _, (ak, sk) = new_user(srv, iam, doc({"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": "*"}))
    probe = make_client(srv.endpoint, ak, sk, service="iam")
    ghost = uid("ghost")
    calls = {
        "DeleteUser": lambda n: probe.delete_user(UserName=n),
        "ListGroupsForUser": lambda n: probe.list_groups_for_user(UserName=n),
        "ListAccessKeys": lambda n: probe.list_access_keys(UserName=n),
        "TagUser": lambda n: probe.tag_user(UserName=n, Tags=[{"Key": "k", "Value": "v"}]),
        "DeleteGroup": lambda n: probe.delete_group(GroupName=n),
    }
    for action, call in calls.items():
        answers = []
        for name in (real, ghost):
            e = expect_error(lambda: call(name), "AccessDenied", 403)
            answers.append(str(e).replace(name, "NAME"))
        assert answers[0] == answers[1], (action, answers)
        assert f"iam:{action}" in answers[0], answers[0]
    expect_error(lambda: iam.delete_user(UserName=ghost), "NoSuchEntity", 404)
