"""IAM end to end over the query protocol with boto3, the aws CLI and raw
HTTP: users, groups, roles, policies and versions, boundaries, tags,
pagination, account details, policy simulation, authorization errors, bad
input, persistence and the declarative bootstrap."""

import configparser
import html
import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import (
    CLI_TIMEOUT,
    DEFAULT_ACCOUNT,
    REGION,
    Server,
    boot_server,
    clean_env,
    expect_error,
    make_client,
    raw_request,
)
from policies import allow, deny, doc

ACCT = DEFAULT_ACCOUNT
REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "seed-000.toml"


def uid(prefix="e"):
    return prefix + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def iam(srv):
    return srv.client(service="iam")


def iam_nv(iam, op="create_role"):
    """The same operation on a client without botocore's parameter
    validation, so that the server's validation answers."""
    c = make_client(iam.meta.endpoint_url, iam._request_signer._credentials.access_key,
                    iam._request_signer._credentials.secret_key, service="iam", validate=False)
    return getattr(c, op)


def user_with_key(srv, iam, policy=None, name=None):
    """A new user with an access key; returns (name, iam client as the user)."""
    name = name or uid("u")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return name, make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="iam")


# --- users -------------------------------------------------------------------


def test_user_lifecycle_with_aws_ids_arns_paths_and_update(iam):
    name = uid("u")
    u = iam.create_user(UserName=name, Path="/team/a/", Tags=[{"Key": "k", "Value": "v"}])["User"]
    assert u["UserId"].startswith("AIDA") and len(u["UserId"]) == 21
    assert u["Arn"] == f"arn:aws:iam::{ACCT}:user/team/a/{name}"
    assert u["Tags"] == [{"Key": "k", "Value": "v"}]
    assert iam.get_user(UserName=name)["User"]["Path"] == "/team/a/"
    expect_error(iam.create_user, "EntityAlreadyExists", 409, UserName=name.upper())
    new = name + "x"
    iam.update_user(UserName=name, NewUserName=new, NewPath="/b/")
    expect_error(iam.get_user, "NoSuchEntity", 404, UserName=name,
                 message=f"The user with name {name} cannot be found.")
    got = iam.get_user(UserName=new)["User"]
    assert got["Arn"] == f"arn:aws:iam::{ACCT}:user/b/{new}" and got["UserId"] == u["UserId"]
    assert new in [x["UserName"] for x in iam.list_users(PathPrefix="/b/")["Users"]]
    iam.delete_user(UserName=new)
    expect_error(iam.delete_user, "NoSuchEntity", 404, UserName=new)


def test_update_user_keeps_access_keys_and_groups(srv, iam):
    name, client = user_with_key(srv, iam)
    g = uid("g")
    iam.create_group(GroupName=g)
    iam.add_user_to_group(GroupName=g, UserName=name)
    iam.update_user(UserName=name, NewUserName=name + "2")
    assert [x["UserName"] for x in iam.get_group(GroupName=g)["Users"]] == [name + "2"]
    keys = iam.list_access_keys(UserName=name + "2")["AccessKeyMetadata"]
    assert len(keys) == 1 and keys[0]["UserName"] == name + "2"
    # The key now acts as the renamed user.
    sts = make_client(srv.endpoint, keys[0]["AccessKeyId"], "x", service="sts")
    del sts  # secret is not listed; identity checked via the user's own client
    expect_error(client.get_user, "AccessDenied", 403,
                 message=f"User: arn:aws:iam::{ACCT}:user/{name}2 is not authorized to perform: "
                         f"iam:GetUser on resource: arn:aws:iam::{ACCT}:user/{name}2 because no "
                         "identity-based policy allows the iam:GetUser action")


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "é", "a/b"])
def test_invalid_user_names_are_validation_errors(srv, bad):
    iam = srv.client(service="iam", validate=False)
    with pytest.raises(ClientError) as ei:
        iam.create_user(UserName=bad)
    err = ei.value.response
    assert err["Error"]["Code"] == "ValidationError", err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_delete_user_conflicts_as_aws(srv, iam):
    name, _ = user_with_key(srv, iam, policy=doc(allow("iam:GetUser")))
    expect_error(iam.delete_user, "DeleteConflict", 409, UserName=name)
    for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    expect_error(iam.delete_user, "DeleteConflict", 409, UserName=name,
                 message="Cannot delete entity, must delete policies first.")
    iam.delete_user_policy(UserName=name, PolicyName="p")
    g = uid("g")
    iam.create_group(GroupName=g)
    iam.add_user_to_group(GroupName=g, UserName=name)
    expect_error(iam.delete_user, "DeleteConflict", 409, UserName=name,
                 message="Cannot delete entity, must remove users from group first.")
    iam.remove_user_from_group(GroupName=g, UserName=name)
    iam.delete_user(UserName=name)


def test_access_key_limit_and_status(iam):
    name = uid("u")
    iam.create_user(UserName=name)
    a = iam.create_access_key(UserName=name)["AccessKey"]
    assert a["AccessKeyId"].startswith("AKIA") and len(a["AccessKeyId"]) == 20
    iam.create_access_key(UserName=name)
    expect_error(iam.create_access_key, "LimitExceeded", 409, UserName=name)
    iam.update_access_key(UserName=name, AccessKeyId=a["AccessKeyId"], Status="Inactive")
    st = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}
    assert st[a["AccessKeyId"]] == "Inactive"


# --- roles -------------------------------------------------------------------

TRUST = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "sts:AssumeRole"})


def test_role_lifecycle(iam):
    name = uid("r")
    r = iam.create_role(RoleName=name, Path="/svc/", AssumeRolePolicyDocument=TRUST,
                        MaxSessionDuration=7200, Description="d")["Role"]
    assert r["RoleId"].startswith("AROA")
    assert r["Arn"] == f"arn:aws:iam::{ACCT}:role/svc/{name}"
    assert r["AssumeRolePolicyDocument"] == json.loads(TRUST)
    assert iam.get_role(RoleName=name)["Role"]["MaxSessionDuration"] == 7200
    expect_error(iam_nv(iam), "ValidationError", 400, RoleName=uid("r"),
                 AssumeRolePolicyDocument=TRUST, MaxSessionDuration=100)
    expect_error(iam.create_role, "MalformedPolicyDocument", 400, RoleName=uid("r"),
                 AssumeRolePolicyDocument=doc(allow("sts:AssumeRole")))
    new_trust = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=new_trust)
    assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == json.loads(new_trust)
    iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=doc(allow("s3:*")))
    expect_error(iam.delete_role, "DeleteConflict", 409, RoleName=name)
    iam.delete_role_policy(RoleName=name, PolicyName="p")
    iam.delete_role(RoleName=name)
    expect_error(iam.get_role, "NoSuchEntity", 404, RoleName=name,
                 message=f"The role with name {name} cannot be found.")


# --- groups ------------------------------------------------------------------


def test_groups_membership_and_group_policies(srv, iam):
    g = uid("g")
    grp = iam.create_group(GroupName=g, Path="/ops/")["Group"]
    assert grp["GroupId"].startswith("AGPA")
    assert grp["Arn"] == f"arn:aws:iam::{ACCT}:group/ops/{g}"
    expect_error(iam.create_group, "EntityAlreadyExists", 409, GroupName=g)
    name, client = user_with_key(srv, iam)
    # Nothing allows ListRoles yet.
    expect_error(client.list_roles, "AccessDenied", 403)
    iam.add_user_to_group(GroupName=g, UserName=name)
    iam.add_user_to_group(GroupName=g, UserName=name)  # idempotent
    assert [x["UserName"] for x in iam.get_group(GroupName=g)["Users"]] == [name]
    assert [x["GroupName"] for x in iam.list_groups_for_user(UserName=name)["Groups"]] == [g]
    assert g in [x["GroupName"] for x in iam.list_groups(PathPrefix="/ops/")["Groups"]]
    # A group inline policy counts for its users.
    iam.put_group_policy(GroupName=g, PolicyName="list", PolicyDocument=doc(allow("iam:ListRoles")))
    assert iam.list_group_policies(GroupName=g)["PolicyNames"] == ["list"]
    assert json.loads(json.dumps(iam.get_group_policy(GroupName=g, PolicyName="list")["PolicyDocument"]))["Statement"][0]["Action"] == "iam:ListRoles"
    client.list_roles()
    # So does an attached managed policy.
    pol = iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("iam:ListGroups")))["Policy"]
    iam.attach_group_policy(GroupName=g, PolicyArn=pol["Arn"])
    assert [a["PolicyArn"] for a in iam.list_attached_group_policies(GroupName=g)["AttachedPolicies"]] == [pol["Arn"]]
    client.list_groups()
    # A group deny wins over anything.
    iam.put_group_policy(GroupName=g, PolicyName="deny", PolicyDocument=doc(deny("iam:ListGroups")))
    expect_error(client.list_groups, "AccessDenied", 403,
                 message=re.compile(r".*with an explicit deny in an? identity-based policy"))
    # DeleteGroup conflicts: members, inline policies, attached policies.
    expect_error(iam.delete_group, "DeleteConflict", 409, GroupName=g,
                 message="Cannot delete entity, must remove users from group first.")
    iam.remove_user_from_group(GroupName=g, UserName=name)
    expect_error(iam.remove_user_from_group, "NoSuchEntity", 404, GroupName=g, UserName=name)
    expect_error(client.list_roles, "AccessDenied", 403)
    expect_error(iam.delete_group, "DeleteConflict", 409, GroupName=g,
                 message="Cannot delete entity, must delete policies first.")
    iam.delete_group_policy(GroupName=g, PolicyName="list")
    iam.delete_group_policy(GroupName=g, PolicyName="deny")
    expect_error(iam.delete_group, "DeleteConflict", 409, GroupName=g)
    iam.detach_group_policy(GroupName=g, PolicyArn=pol["Arn"])
    iam.delete_group(GroupName=g)
    expect_error(iam.get_group, "NoSuchEntity", 404, GroupName=g,
                 message=f"The group with name {g} cannot be found.")


# --- managed policies ----------------------------------------------------------


def test_policy_versions_default_limit_and_entities(iam):
    p = iam.create_policy(PolicyName=uid("p"), Path="/x/", PolicyDocument=doc(allow("s3:GetObject")),
                          Description="desc")["Policy"]
    arn = p["Arn"]
    assert p["PolicyId"].startswith("ANPA") and arn.endswith(f":policy/x/{p['PolicyName']}")
    for i in range(4):
        v = iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc(allow(f"s3:Get{i}")),
                                      SetAsDefault=(i == 1))["PolicyVersion"]
        assert v["VersionId"] == f"v{i + 2}"
    expect_error(iam.create_policy_version, "LimitExceeded", 409, PolicyArn=arn,
                 PolicyDocument=doc(allow("s3:*")))
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [v["VersionId"] for v in versions] == ["v5", "v4", "v3", "v2", "v1"]
    assert [v["VersionId"] for v in versions if v["IsDefaultVersion"]] == ["v3"]
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v5")
    assert iam.get_policy_version(PolicyArn=arn, VersionId="v5")["PolicyVersion"]["IsDefaultVersion"]
    expect_error(iam.set_default_policy_version, "NoSuchEntity", 404, PolicyArn=arn, VersionId="v9")
    expect_error(iam.delete_policy_version, "DeleteConflict", 409, PolicyArn=arn, VersionId="v5")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    # Entities.
    u, r, g = uid("u"), uid("r"), uid("g")
    iam.create_user(UserName=u)
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    iam.create_group(GroupName=g)
    iam.attach_user_policy(UserName=u, PolicyArn=arn)
    iam.attach_role_policy(RoleName=r, PolicyArn=arn)
    iam.attach_group_policy(GroupName=g, PolicyArn=arn)
    e = iam.list_entities_for_policy(PolicyArn=arn)
    assert [x["UserName"] for x in e["PolicyUsers"]] == [u]
    assert [x["RoleName"] for x in e["PolicyRoles"]] == [r]
    assert [x["GroupName"] for x in e["PolicyGroups"]] == [g]
    assert e["PolicyUsers"][0]["UserId"].startswith("AIDA")
    only_roles = iam.list_entities_for_policy(PolicyArn=arn, EntityFilter="Role")
    assert only_roles["PolicyUsers"] == [] and len(only_roles["PolicyRoles"]) == 1
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 3
    expect_error(iam.delete_policy, "DeleteConflict", 409, PolicyArn=arn)
    expect_error(iam.detach_user_policy, "NoSuchEntity", 404, UserName=u, PolicyArn=arn + "nope")


def test_oversized_and_malformed_policies(iam):
    name = uid("u")
    iam.create_user(UserName=name)
    big = doc(allow(["s3:" + "A" * 40 + str(i) for i in range(60)]))
    expect_error(iam.put_user_policy, "LimitExceeded", 409, UserName=name, PolicyName="big",
                 PolicyDocument=big)
    e = expect_error(iam.put_user_policy, "MalformedPolicyDocument", 400, UserName=name,
                     PolicyName="bad", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}')
    assert "Effect" in e.response["Error"]["Message"]
    expect_error(iam.create_policy, "MalformedPolicyDocument", 400, PolicyName=uid("p"),
                 PolicyDocument="not json")


# --- permissions boundaries ----------------------------------------------------


def test_permissions_boundary_caps_identity_policies(srv, iam):
    boundary = iam.create_policy(PolicyName=uid("b"), PolicyDocument=doc(allow(["iam:Get*", "iam:List*"])))["Policy"]
    name, client = user_with_key(srv, iam, policy=doc(allow("iam:*")))
    client.list_roles()
    client.get_user(UserName=name)
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=boundary["Arn"])
    u = iam.get_user(UserName=name)["User"]
    assert u["PermissionsBoundary"] == {"PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                                        "PermissionsBoundaryArn": boundary["Arn"]}
    assert iam.get_policy(PolicyArn=boundary["Arn"])["Policy"]["PermissionsBoundaryUsageCount"] == 1
    client.list_roles()
    role = uid("r")
    expect_error(client.create_role, "AccessDenied", 403, RoleName=role, AssumeRolePolicyDocument=TRUST,
                 message=f"User: arn:aws:iam::{ACCT}:user/{name} is not authorized to perform: iam:CreateRole "
                         f"on resource: arn:aws:iam::{ACCT}:role/{role} because no permissions boundary "
                         "allows the iam:CreateRole action")
    expect_error(iam.delete_policy, "DeleteConflict", 409, PolicyArn=boundary["Arn"])
    iam.delete_user_permissions_boundary(UserName=name)
    assert "PermissionsBoundary" not in iam.get_user(UserName=name)["User"]
    client.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    # Created with a boundary; roles too.
    u2 = uid("u")
    got = iam.create_user(UserName=u2, PermissionsBoundary=boundary["Arn"])["User"]
    assert got["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary["Arn"]
    r2 = uid("r")
    iam.create_role(RoleName=r2, AssumeRolePolicyDocument=TRUST, PermissionsBoundary=boundary["Arn"])
    assert iam.get_role(RoleName=r2)["Role"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary["Arn"]
    iam.delete_role_permissions_boundary(RoleName=r2)
    assert "PermissionsBoundary" not in iam.get_role(RoleName=r2)["Role"]
    iam.put_role_permissions_boundary(RoleName=r2, PermissionsBoundary=boundary["Arn"])
    expect_error(iam.put_role_permissions_boundary, "NoSuchEntity", 404, RoleName=r2,
                 PermissionsBoundary=f"arn:aws:iam::{ACCT}:policy/none")
    assert [x["UserName"] for x in iam.list_entities_for_policy(
        PolicyArn=boundary["Arn"], PolicyUsageFilter="PermissionsBoundary")["PolicyUsers"]] == [u2]


# --- tags ------------------------------------------------------------------------


def test_user_and_role_tags(iam):
    u, r = uid("u"), uid("r")
    iam.create_user(UserName=u, Tags=[{"Key": "a", "Value": "1"}])
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    iam.tag_user(UserName=u, Tags=[{"Key": "A", "Value": "2"}, {"Key": "b", "Value": ""}])
    assert iam.list_user_tags(UserName=u)["Tags"] == [{"Key": "A", "Value": "2"}, {"Key": "b", "Value": ""}]
    iam.untag_user(UserName=u, TagKeys=["a", "zzz"])
    assert iam.list_user_tags(UserName=u)["Tags"] == [{"Key": "b", "Value": ""}]
    iam.tag_role(RoleName=r, Tags=[{"Key": "team", "Value": "blue"}])
    assert iam.get_role(RoleName=r)["Role"]["Tags"] == [{"Key": "team", "Value": "blue"}]
    iam.untag_role(RoleName=r, TagKeys=["team"])
    assert iam.list_role_tags(RoleName=r)["Tags"] == []
    expect_error(iam.tag_role, "LimitExceeded", 409, RoleName=r,
                 Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)])
    expect_error(iam.tag_user, "NoSuchEntity", 404, UserName=uid("u"), Tags=[{"Key": "a", "Value": "b"}])
    expect_error(iam.tag_user, "InvalidInput", 400, UserName=u,
                 Tags=[{"Key": "x", "Value": "1"}, {"Key": "X", "Value": "2"}])


# --- pagination and reports ------------------------------------------------------


def test_list_pagination_marker_max_items(iam):
    path = f"/{uid('pg')}/"
    names = sorted(uid("u") for _ in range(5))
    for n in names:
        iam.create_user(UserName=n, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=2)
    assert first["IsTruncated"] and len(first["Users"]) == 2
    second = iam.list_users(PathPrefix=path, MaxItems=2, Marker=first["Marker"])
    third = iam.list_users(PathPrefix=path, MaxItems=2, Marker=second["Marker"])
    assert not third["IsTruncated"] and "Marker" not in third
    seen = [u["UserName"] for page in (first, second, third) for u in page["Users"]]
    assert sorted(seen) == names
    pages = iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 1})
    assert sorted(u["UserName"] for p in pages for u in p["Users"]) == names
    expect_error(iam_nv(iam, "list_users"), "ValidationError", 400, MaxItems=0)
    expect_error(iam.list_users, "ValidationError", 400, Marker="garbage")


def test_get_account_authorization_details(iam):
    u, g, r = uid("u"), uid("g"), uid("r")
    pol = iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("s3:*")))["Policy"]
    iam.create_user(UserName=u)
    iam.create_group(GroupName=g)
    iam.add_user_to_group(GroupName=g, UserName=u)
    iam.put_user_policy(UserName=u, PolicyName="in", PolicyDocument=doc(allow("sqs:*")))
    iam.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName=r, PolicyArn=pol["Arn"])
    d = iam.get_account_authorization_details()
    ud = next(x for x in d["UserDetailList"] if x["UserName"] == u)
    assert ud["GroupList"] == [g]
    assert ud["UserPolicyList"][0]["PolicyName"] == "in"
    assert ud["UserPolicyList"][0]["PolicyDocument"]["Statement"][0]["Action"] == "sqs:*"
    rd = next(x for x in d["RoleDetailList"] if x["RoleName"] == r)
    assert rd["AttachedManagedPolicies"] == [{"PolicyName": pol["PolicyName"], "PolicyArn": pol["Arn"]}]
    assert rd["AssumeRolePolicyDocument"] == json.loads(TRUST)
    assert any(x["GroupName"] == g for x in d["GroupDetailList"])
    pd = next(x for x in d["Policies"] if x["Arn"] == pol["Arn"])
    assert pd["PolicyVersionList"][0]["IsDefaultVersion"]
    only = iam.get_account_authorization_details(Filter=["Role"])
    assert only["UserDetailList"] == [] and only["RoleDetailList"]


# --- authorization of IAM calls ----------------------------------------------------


def test_iam_calls_are_authorized_by_identity_policies(srv, iam):
    name, client = user_with_key(srv, iam)
    expect_error(client.create_role, "AccessDenied", 403, RoleName="x", AssumeRolePolicyDocument=TRUST,
                 message=f"User: arn:aws:iam::{ACCT}:user/{name} is not authorized to perform: "
                         f"iam:CreateRole on resource: arn:aws:iam::{ACCT}:role/x because no "
                         "identity-based policy allows the iam:CreateRole action")
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=doc(
        allow("iam:CreateRole", f"arn:aws:iam::{ACCT}:role/ok-*")))
    r = "ok-" + uid("r")
    client.create_role(RoleName=r, AssumeRolePolicyDocument=TRUST)
    expect_error(client.create_role, "AccessDenied", 403, RoleName="no-" + r, AssumeRolePolicyDocument=TRUST)
    expect_error(client.get_role, "AccessDenied", 403, RoleName=r)


# --- simulation ---------------------------------------------------------------------

# (operator, condition value, context type, context values, expected decision)
OPERATOR_CASES = [
    ("StringEquals", "blue", "string", ["blue"], "allowed"),
    ("StringEquals", "blue", "string", ["red"], "implicitDeny"),
    ("StringNotEquals", "blue", "string", ["red"], "allowed"),
    ("StringEqualsIgnoreCase", "BLUE", "string", ["blue"], "allowed"),
    ("StringNotEqualsIgnoreCase", "BLUE", "string", ["blue"], "implicitDeny"),
    ("StringLike", "bl*", "string", ["blue"], "allowed"),
    ("StringNotLike", "bl?e", "string", ["blue"], "implicitDeny"),
    ("NumericEquals", "10", "numeric", ["10.0"], "allowed"),
    ("NumericNotEquals", "10", "numeric", ["11"], "allowed"),
    ("NumericLessThan", "10", "numeric", ["9"], "allowed"),
    ("NumericLessThanEquals", "10", "numeric", ["11"], "implicitDeny"),
    ("NumericGreaterThan", "10", "numeric", ["11"], "allowed"),
    ("NumericGreaterThanEquals", "10", "numeric", ["10"], "allowed"),
    ("DateEquals", "2020-01-01T00:00:00Z", "date", ["2020-01-01T00:00:00Z"], "allowed"),
    ("DateNotEquals", "2020-01-01T00:00:00Z", "date", ["2021-01-01T00:00:00Z"], "allowed"),
    ("DateLessThan", "2020-01-01T00:00:00Z", "date", ["2019-06-01T00:00:00Z"], "allowed"),
    ("DateLessThanEquals", "2020-01-01T00:00:00Z", "date", ["2020-06-01T00:00:00Z"], "implicitDeny"),
    ("DateGreaterThan", "2020-01-01T00:00:00Z", "date", ["2020-06-01T00:00:00Z"], "allowed"),
    ("DateGreaterThanEquals", "2020-01-01T00:00:00Z", "date", ["2020-01-01T00:00:00Z"], "allowed"),
    ("Bool", "true", "boolean", ["true"], "allowed"),
    ("Bool", "true", "boolean", ["false"], "implicitDeny"),
    ("BinaryEquals", "aGVsbG8=", "binary", ["aGVsbG8="], "allowed"),
    ("IpAddress", "10.0.0.0/8", "ip", ["10.1.2.3"], "allowed"),
    ("IpAddress", "10.0.0.0/8", "ip", ["192.168.0.1"], "implicitDeny"),
    ("NotIpAddress", "10.0.0.0/8", "ip", ["192.168.0.1"], "allowed"),
    ("ArnEquals", "arn:aws:iam::111122223333:role/r", "string", ["arn:aws:iam::111122223333:role/r"], "allowed"),
    ("ArnLike", "arn:aws:iam::*:role/*", "string", ["arn:aws:iam::111122223333:role/r"], "allowed"),
    ("ArnNotEquals", "arn:aws:iam::111122223333:role/r", "string", ["arn:aws:iam::111122223333:role/q"], "allowed"),
    ("ArnNotLike", "arn:aws:iam::*:role/*", "string", ["arn:aws:iam::111122223333:user/u"], "allowed"),
    ("StringEqualsIfExists", "blue", None, None, "allowed"),
    ("ForAnyValue:StringEquals", "b", "stringList", ["a", "b"], "allowed"),
    ("ForAllValues:StringEquals", "a", "stringList", ["a", "b"], "implicitDeny"),
    ("ForAnyValue:NumericLessThan", "5", "numericList", ["9", "1"], "allowed"),
    ("ForAllValues:IpAddress", "10.0.0.0/8", "ipList", ["10.0.0.1", "10.9.9.9"], "allowed"),
    ("ForAnyValue:DateGreaterThan", "2020-01-01T00:00:00Z", "dateList", ["2019-01-01T00:00:00Z", "2021-01-01T00:00:00Z"], "allowed"),
    ("ForAllValues:Bool", "true", "booleanList", ["true", "true"], "allowed"),
    ("ForAnyValue:BinaryEquals", "aGk=", "binaryList", ["aGVsbG8=", "aGk="], "allowed"),
    ("Null", "true", None, None, "allowed"),
    ("Null", "false", "string", ["x"], "allowed"),
]


@pytest.mark.parametrize("op,value,ctype,cvalues,expected", OPERATOR_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(OPERATOR_CASES)])
def test_simulate_custom_policy_every_condition_operator(iam, op, value, ctype, cvalues, expected):
    key = "aws:RequestTag/k" if "List" not in (ctype or "") else "aws:TagKeys"
    policy = doc(allow("s3:GetObject", Condition={op: {key: value}}))
    kwargs = dict(PolicyInputList=[policy], ActionNames=["s3:GetObject"])
    if ctype is not None:
        kwargs["ContextEntries"] = [{"ContextKeyName": key, "ContextKeyValues": cvalues, "ContextKeyType": ctype}]
    r = iam.simulate_custom_policy(**kwargs)["EvaluationResults"]
    assert [x["EvalDecision"] for x in r] == [expected], r


def test_simulate_custom_policy_decisions_matched_statements_and_missing_keys(iam):
    policy = ('{\n  "Version": "2012-10-17",\n  "Statement": [\n'
              '    {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},\n'
              '    {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*",\n'
              '     "Condition": {"StringEquals": {"aws:RequestTag/env": "prod"}}}\n  ]\n}')
    r = iam.simulate_custom_policy(
        PolicyInputList=[policy], ActionNames=["s3:GetObject", "s3:DeleteObject", "sqs:SendMessage"],
        ResourceArns=["arn:aws:s3:::b/k"],
        ContextEntries=[{"ContextKeyName": "aws:RequestTag/env", "ContextKeyValues": ["prod"], "ContextKeyType": "string"}],
    )["EvaluationResults"]
    by = {x["EvalActionName"]: x for x in r}
    assert by["s3:GetObject"]["EvalDecision"] == "allowed"
    assert by["s3:GetObject"]["EvalResourceName"] == "arn:aws:s3:::b/k"
    m = by["s3:GetObject"]["MatchedStatements"]
    assert m == [{"SourcePolicyId": "PolicyInputList.1", "SourcePolicyType": "none",
                  "StartPosition": {"Line": 4, "Column": 5}, "EndPosition": {"Line": 4, "Column": 58}}]
    assert by["s3:DeleteObject"]["EvalDecision"] == "explicitDeny"
    assert by["s3:DeleteObject"]["MatchedStatements"][0]["StartPosition"]["Line"] == 5
    assert by["sqs:SendMessage"]["EvalDecision"] == "implicitDeny"
    assert by["sqs:SendMessage"]["MatchedStatements"] == []
    # Without the context value, the key is reported missing.
    r = iam.simulate_custom_policy(PolicyInputList=[policy], ActionNames=["s3:DeleteObject"])["EvaluationResults"]
    assert r[0]["EvalDecision"] == "allowed" and r[0]["MissingContextValues"] == ["aws:RequestTag/env"]


def test_simulate_boundaries_resource_policy_and_caller(iam):
    ident = doc(allow(["s3:*", "sqs:*"]))
    boundary = doc(allow("s3:*"))
    r = iam.simulate_custom_policy(PolicyInputList=[ident], PermissionsBoundaryPolicyInputList=[boundary],
                                   ActionNames=["s3:GetObject", "sqs:SendMessage"])["EvaluationResults"]
    by = {x["EvalActionName"]: x for x in r}
    assert by["s3:GetObject"]["EvalDecision"] == "allowed"
    assert by["s3:GetObject"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": True}
    assert by["sqs:SendMessage"]["EvalDecision"] == "implicitDeny"
    assert by["sqs:SendMessage"]["PermissionsBoundaryDecisionDetail"] == {"AllowedByPermissionsBoundary": False}
    caller = f"arn:aws:iam::{ACCT}:user/alice"
    resource_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": caller}, "Action": "s3:GetObject", "Resource": "*"}]})
    r = iam.simulate_custom_policy(PolicyInputList=[doc(allow("sqs:*"))], ResourcePolicy=resource_policy,
                                   CallerArn=caller, ActionNames=["s3:GetObject"],
                                   ResourceArns=["arn:aws:s3:::bucket/key"])["EvaluationResults"]
    assert r[0]["EvalDecision"] == "allowed"
    assert r[0]["MatchedStatements"][0]["SourcePolicyId"] == "ResourcePolicy"
    assert r[0]["EvalDecisionDetails"]["Resource Policy"] == "allowed"
    expect_error(iam.simulate_custom_policy, "InvalidInput", 400, PolicyInputList=[ident],
                 ResourcePolicy=resource_policy, ActionNames=["s3:GetObject"])
    expect_error(iam.simulate_custom_policy, "InvalidInput", 400, PolicyInputList=["{nope"],
                 ActionNames=["s3:GetObject"])
    expect_error(iam.simulate_custom_policy, "InvalidInput", 400, PolicyInputList=[ident],
                 ActionNames=["s3:GetObject"],
                 ContextEntries=[{"ContextKeyName": "aws:x", "ContextKeyValues": ["ten"], "ContextKeyType": "numeric"}])


def test_simulate_principal_policy_and_context_keys(iam):
    u, g = uid("u"), uid("g")
    iam.create_user(UserName=u)
    iam.create_group(GroupName=g)
    iam.add_user_to_group(GroupName=g, UserName=u)
    iam.put_user_policy(UserName=u, PolicyName="own", PolicyDocument=doc(
        allow("s3:GetObject", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})))
    iam.put_group_policy(GroupName=g, PolicyName="grp", PolicyDocument=doc(allow("sqs:SendMessage")))
    arn = iam.get_user(UserName=u)["User"]["Arn"]
    r = iam.simulate_principal_policy(
        PolicySourceArn=arn, ActionNames=["s3:GetObject", "sqs:SendMessage", "sns:Publish"],
        ContextEntries=[{"ContextKeyName": "aws:SourceIp", "ContextKeyValues": ["10.0.0.1"], "ContextKeyType": "ip"}],
    )["EvaluationResults"]
    by = {x["EvalActionName"]: x for x in r}
    assert by["s3:GetObject"]["EvalDecision"] == "allowed"
    assert by["s3:GetObject"]["MatchedStatements"][0]["SourcePolicyId"] == "own"
    assert by["s3:GetObject"]["MatchedStatements"][0]["SourcePolicyType"] == "user"
    assert by["sqs:SendMessage"]["MatchedStatements"][0]["SourcePolicyType"] == "group"
    assert by["sns:Publish"]["EvalDecision"] == "implicitDeny"
    keys = iam.get_context_keys_for_principal_policy(PolicySourceArn=arn)["ContextKeyNames"]
    assert keys == ["aws:SourceIp"]
    keys = iam.get_context_keys_for_custom_policy(PolicyInputList=[doc(
        allow("s3:*", f"arn:aws:s3:::b/${{aws:username}}/*",
              Condition={"StringEquals": {"s3:prefix": "x"}, "Bool": {"aws:SecureTransport": "true"}}))])["ContextKeyNames"]
    assert sorted(keys) == ["aws:SecureTransport", "aws:username", "s3:prefix"]
    expect_error(iam.simulate_principal_policy, "NoSuchEntity", 404,
                 PolicySourceArn=f"arn:aws:iam::{ACCT}:user/nobody", ActionNames=["s3:GetObject"])


def test_simulate_custom_policy_with_the_aws_cli(srv, tmp_path):
    env = clean_env()
    cfg = tmp_path / "config"
    cfg.write_text("")
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(srv.credentials_file), AWS_PROFILE="ferrokms",
               AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=srv.endpoint, AWS_CONFIG_FILE=str(cfg), AWS_PAGER="")
    policy = doc(allow("kms:Sign", Condition={"StringEquals": {"kms:SigningAlgorithm": "RSASSA_PSS_SHA_256"}}))
    p = subprocess.run(
        [sys.executable, "-m", "awscli", "iam", "simulate-custom-policy", "--policy-input-list", policy,
         "--action-names", "kms:Sign", "kms:Verify", "--context-entries",
         "ContextKeyName=kms:SigningAlgorithm,ContextKeyValues=RSASSA_PSS_SHA_256,ContextKeyType=string"],
        env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)["EvaluationResults"]
    assert [(x["EvalActionName"], x["EvalDecision"]) for x in out] == [("kms:Sign", "allowed"), ("kms:Verify", "implicitDeny")]


# --- bad input ----------------------------------------------------------------------


def iam_raw(srv, body, content_type="application/x-www-form-urlencoded; charset=utf-8"):
    ak, sk = srv.profile_credentials()
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client
    from urllib.parse import urlsplit

    req = AWSRequest(method="POST", url=srv.endpoint + "/", data=body, headers={"Content-Type": content_type})
    SigV4Auth(Credentials(ak, sk), "iam", REGION).add_auth(req)
    u = urlsplit(srv.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request("POST", "/", body=body, headers=dict(req.headers.items()))
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def error_code(xml):
    m = re.search(r"<Code>([^<]*)</Code>", xml)
    return m.group(1) if m else None


def test_bad_query_input_gets_aws_errors_and_server_survives(srv, iam):
    status, body = iam_raw(srv, "Action=NoSuchThing&Version=2010-05-08")
    assert (status, error_code(body)) == (400, "InvalidAction")
    assert body.startswith("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">")
    assert "<Type>Sender</Type>" in body and "<RequestId>" in body
    status, body = iam_raw(srv, "Action=CreateUser&Version=2010-05-08")
    assert (status, error_code(body)) == (400, "ValidationError")
    assert "Value null at 'userName' failed to satisfy constraint: Member must not be null" in html.unescape(body)
    status, body = iam_raw(srv, "Version=2010-05-08")
    assert (status, error_code(body)) == (400, "MissingAction")
    for garbage in ["%%%&&&==", "Action=%ZZ&Version", "Action=CreateUser&UserName=%00%01&Version=2010-05-08",
                    "&" * 1000, "Action=ListUsers&MaxItems=abc&Version=2010-05-08"]:
        status, body = iam_raw(srv, garbage)
        assert 400 <= status < 500 and error_code(body), (garbage, status, body)
    status, body = iam_raw(srv, "Action=GetUser&Version=2010-05-08&UserName=" + "x" * 200_000)
    assert status in (400, 404) and error_code(body)
    # Unsigned.
    r = raw_request(srv.endpoint, None, "Action=ListUsers&Version=2010-05-08", sign=False,
                    content_type="application/x-www-form-urlencoded")
    assert r.status in (400, 403) and b"<ErrorResponse" in r.body
    # Still serving.
    iam.list_users()


# --- persistence ----------------------------------------------------------------------


def test_identity_state_survives_restart(server_factory):
    s = server_factory()
    iam = s.client(service="iam")
    g = "grp"
    b = iam.create_policy(PolicyName="bound", PolicyDocument=doc(allow("iam:Get*")))["Policy"]["Arn"]
    iam.create_user(UserName="keep", Tags=[{"Key": "t", "Value": "1"}], PermissionsBoundary=b)
    iam.create_group(GroupName=g)
    iam.add_user_to_group(GroupName=g, UserName="keep")
    iam.put_group_policy(GroupName=g, PolicyName="gp", PolicyDocument=doc(allow("iam:GetUser")))
    iam.create_policy_version(PolicyArn=b, PolicyDocument=doc(allow("iam:List*")), SetAsDefault=True)
    k = iam.create_access_key(UserName="keep")["AccessKey"]
    s.restart()
    iam = s.client(service="iam")
    u = iam.get_user(UserName="keep")["User"]
    assert u["Tags"] == [{"Key": "t", "Value": "1"}]
    assert u["PermissionsBoundary"]["PermissionsBoundaryArn"] == b
    assert [x["UserName"] for x in iam.get_group(GroupName=g)["Users"]] == ["keep"]
    assert iam.list_group_policies(GroupName=g)["PolicyNames"] == ["gp"]
    assert iam.get_policy(PolicyArn=b)["Policy"]["DefaultVersionId"] == "v2"
    sts = make_client(s.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="sts")
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCT}:user/keep"


# --- bootstrap ---------------------------------------------------------------------------


def snapshot(s):
    iam = s.client(service="iam")
    kms = s.client()
    return (
        [(u["UserName"], u["UserId"]) for u in iam.list_users()["Users"]],
        [(r["RoleName"], r["RoleId"], json.dumps(r["AssumeRolePolicyDocument"], sort_keys=True)) for r in iam.list_roles()["Roles"]],
        [k["AccessKeyId"] for k in iam.list_access_keys(UserName="dev")["AccessKeyMetadata"]],
        iam.list_user_policies(UserName="dev")["PolicyNames"],
        sorted(k["KeyId"] for k in kms.list_keys()["Keys"]),
        sorted((a["AliasName"], a.get("TargetKeyId")) for a in kms.list_aliases()["Aliases"]),
    )


def test_bootstrap_seed_000_is_idempotent(ferrokms_bin, tmp_path):
    s = boot_server(ferrokms_bin, tmp_path, SEED)
    s.start()
    try:
        creds = s.data_dir / "seed-000.credentials"
        assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
        before = snapshot(s)
        assert [u for u, _ in before[0]] == ["dev"] and len(before[2]) == 1
        key = s.client().describe_key(KeyId="alias/kms-exports-test")["KeyMetadata"]
        assert key["KeySpec"] == "RSA_2048" and key["KeyUsage"] == "SIGN_VERIFY"
        creds_text = creds.read_text()
        s.restart()
        assert snapshot(s) == before
        assert creds.read_text() == creds_text
        assert "bootstrap" not in s.stderr_text() or "change=" not in s.stderr_text()
    finally:
        s.stop()


def test_bootstrap_groups_policies_given_keys_and_second_account(ferrokms_bin, tmp_path):
    shared_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "ext", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::444455556666:user/ext"},
         "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"}]})
    ext_policy = doc(allow(["kms:Encrypt", "kms:DescribeKey"]))
    f = tmp_path / "boot.toml"
    f.write_text(f'''
credentials_file = "more.credentials"

[[accounts]]
id = "{ACCT}"

[[accounts.policies]]
name = "read-iam"
path = "/boot/"
document = '{doc(allow(["iam:Get*", "iam:List*"]))}'

[[accounts.groups]]
name = "readers"
managed_policies = ["read-iam"]
inline_policies.sts = '{doc(allow("sts:GetCallerIdentity"))}'

[[accounts.users]]
name = "carol"
groups = ["readers"]
tags = {{ team = "blue" }}
permissions_boundary = "read-iam"

[[accounts.users.access_keys]]
id = "AKIABOOTSTRAPCAROL01"
secret = "carol-secret-carol-secret-carol-secret-1"

[[accounts.keys]]
alias = "alias/shared"
description = "usable by ext"
policy = '{shared_policy}'

[[accounts]]
id = "444455556666"

[[accounts.users]]
name = "ext"
inline_policies.kms = '{ext_policy}'
[[accounts.users.access_keys]]
profile = "ext"
''')
    s = boot_server(ferrokms_bin, tmp_path, f)
    s.start()
    try:
        carol = make_client(s.endpoint, "AKIABOOTSTRAPCAROL01", "carol-secret-carol-secret-carol-secret-1", service="iam")
        assert carol.get_user()["User"]["Tags"] == [{"Key": "team", "Value": "blue"}]
        carol.list_users()
        expect_error(carol.create_user, "AccessDenied", 403, UserName="x")
        cp = configparser.ConfigParser()
        cp.read(s.data_dir / "more.credentials")
        assert set(cp.sections()) == {"root-444455556666", "ext"}
        ext = make_client(s.endpoint, cp["ext"]["aws_access_key_id"], cp["ext"]["aws_secret_access_key"], service="sts")
        assert ext.get_caller_identity()["Arn"] == "arn:aws:iam::444455556666:user/ext"
        key_arn = s.client().describe_key(KeyId="alias/shared")["KeyMetadata"]["Arn"]
        ext_kms = make_client(s.endpoint, cp["ext"]["aws_access_key_id"], cp["ext"]["aws_secret_access_key"])
        assert ext_kms.encrypt(KeyId=key_arn, Plaintext=b"hi")["KeyId"] == key_arn
        before = (s.data_dir / "more.credentials").read_text()
        s.restart()
        assert (s.data_dir / "more.credentials").read_text() == before
        assert "change=" not in s.stderr_text()
    finally:
        s.stop()


def test_bootstrap_check_command_and_bad_files(ferrokms_bin, tmp_path):
    ok = subprocess.run([str(ferrokms_bin), "bootstrap", "check", str(SEED)], capture_output=True, text=True,
                        timeout=30, env=clean_env())
    assert ok.returncode == 0 and "ok" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[[accounts]]\nid = "111122223333"\n[[accounts.policies]]\nname = "p"\ndocument = "{}"\n')
    p = subprocess.run([str(ferrokms_bin), "bootstrap", "check", str(bad)], capture_output=True, text=True,
                       timeout=30, env=clean_env())
    assert p.returncode != 0 and "policy p" in p.stderr
    s = boot_server(ferrokms_bin, tmp_path, bad)
    with pytest.raises(RuntimeError, match="exited"):
        s.start()


def test_every_condition_operator_in_one_aws_cli_simulation(srv, tmp_path):
    """All OPERATOR_CASES at once through `aws iam simulate-custom-policy`:
    statement i allows `test:Op{i}` under case i's condition on its own key."""
    statements, entries, expected = [], [], {}
    for i, (op, value, ctype, cvalues, decision) in enumerate(OPERATOR_CASES):
        key = f"test:key{i}"
        statements.append(allow(f"test:Op{i}", Condition={op: {key: value}}))
        if ctype is not None:
            entries.append({"ContextKeyName": key, "ContextKeyValues": cvalues, "ContextKeyType": ctype})
        expected[f"test:Op{i}"] = decision
    inp = tmp_path / "input.json"
    inp.write_text(json.dumps({"PolicyInputList": [doc(*statements)], "ActionNames": sorted(expected),
                               "ContextEntries": entries}))
    env = clean_env()
    cfg = tmp_path / "config"
    cfg.write_text("")
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(srv.credentials_file), AWS_PROFILE="ferrokms",
               AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=srv.endpoint, AWS_CONFIG_FILE=str(cfg), AWS_PAGER="")
    p = subprocess.run([sys.executable, "-m", "awscli", "iam", "simulate-custom-policy", "--cli-input-json",
                        f"file://{inp}"], env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    got = {r["EvalActionName"]: r["EvalDecision"] for r in json.loads(p.stdout)["EvaluationResults"]}
    assert got == expected


def test_response_documents_have_aws_shape(srv, iam):
    name = uid("u")
    status, body = iam_raw(srv, f"Action=CreateUser&Version=2010-05-08&UserName={name}")
    assert status == 200
    assert body.startswith('<CreateUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">')
    assert f"<CreateUserResult><User><Path>/</Path><UserName>{name}</UserName>" in body
    assert re.search(r"<ResponseMetadata>\s*<RequestId>[0-9a-f-]{36}</RequestId>", body)
    status, body = iam_raw(srv, f"Action=DeleteUser&Version=2010-05-08&UserName={name}")
    assert status == 200 and "DeleteUserResult" not in body and "<DeleteUserResponse" in body


def test_aws_cli_paging_and_simulate_principal_policy(srv, iam, tmp_path):
    path = f"/{uid('cli')}/"
    groups = sorted(uid("g") for _ in range(3))
    for g in groups:
        iam.create_group(GroupName=g, Path=path)
    u = uid("u")
    arn = iam.create_user(UserName=u)["User"]["Arn"]
    iam.put_user_policy(UserName=u, PolicyName="p", PolicyDocument=doc(allow("iam:ListGroups")))
    env = clean_env()
    cfg = tmp_path / "config"
    cfg.write_text("")
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(srv.credentials_file), AWS_PROFILE="ferrokms",
               AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=srv.endpoint, AWS_CONFIG_FILE=str(cfg), AWS_PAGER="")

    def cli(*args):
        p = subprocess.run([sys.executable, "-m", "awscli", *args], env=env, capture_output=True, text=True,
                           timeout=CLI_TIMEOUT, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    # The CLI follows Marker/IsTruncated on its own.
    out = cli("iam", "list-groups", "--path-prefix", path, "--page-size", "1")
    assert sorted(g["GroupName"] for g in out["Groups"]) == groups
    out = cli("iam", "simulate-principal-policy", "--policy-source-arn", arn,
              "--action-names", "iam:ListGroups", "iam:CreateGroup")
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in out["EvaluationResults"]] == [
        ("iam:ListGroups", "allowed"), ("iam:CreateGroup", "implicitDeny")]
