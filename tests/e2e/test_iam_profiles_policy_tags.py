"""Instance profiles and the tags of managed policies (what Terraform's
aws_iam_instance_profile, aws_iam_role and a tagged aws_iam_policy call),
through boto3 against a real server: each operation's shapes and errors as
AWS answers them, then the attacker's paths (another account's root, a user
without permission, tag limits). Terraform itself: test_terraform.py."""

import pytest

from accounts import uid
from conftest import expect_error
from policies import allow, doc

SERVER = "dev"

AD = "AccessDenied"
TRUST = doc({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})


def tags(**kv):
    return [{"Key": k, "Value": v} for k, v in kv.items()]


def as_dict(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list}


def denied_message(caller_arn, action, resource, why="no identity-based policy allows"):
    return f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource} because {why} the {action} action"


# --- instance profiles -------------------------------------------------------


def test_instance_profile_lifecycle_with_a_role_and_tags(A):
    iam = A.iam
    role = uid("r")
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST, Path="/svc/")
    name = uid("ip")
    created = iam.create_instance_profile(InstanceProfileName=name, Path="/ec2/", Tags=tags(team="blue"))["InstanceProfile"]
    assert created["InstanceProfileName"] == name
    assert created["Path"] == "/ec2/"
    assert created["Arn"] == f"arn:aws:iam::{A.id}:instance-profile/ec2/{name}"
    assert created["InstanceProfileId"].startswith("AIPA") and len(created["InstanceProfileId"]) == 21
    assert created["Roles"] == []
    assert as_dict(created["Tags"]) == {"team": "blue"}

    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    got = iam.get_instance_profile(InstanceProfileName=name.upper())["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == [role]
    assert got["Roles"][0]["Arn"] == f"arn:aws:iam::{A.id}:role/svc/{role}"
    assert got["CreateDate"] == created["CreateDate"]

    # At most one role per profile; the same role again is the same refusal.
    other = uid("r")
    iam.create_role(RoleName=other, AssumeRolePolicyDocument=TRUST)
    for r in (other, role):
        expect_error(iam.add_role_to_instance_profile, "LimitExceeded", 409,
                     message="Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
                     InstanceProfileName=name, RoleName=r)

    listed = iam.list_instance_profiles_for_role(RoleName=role)
    assert [p["InstanceProfileName"] for p in listed["InstanceProfiles"]] == [name]
    assert listed["IsTruncated"] is False
    assert iam.list_instance_profiles_for_role(RoleName=other)["InstanceProfiles"] == []
    assert name in [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]]
    assert [p["InstanceProfileName"] for p in iam.list_instance_profiles(PathPrefix="/ec2/")["InstanceProfiles"]] == [name]
    assert iam.list_instance_profiles(PathPrefix="/nothing/")["InstanceProfiles"] == []

    # The role's authorization details list the profile.
    details = iam.get_account_authorization_details(Filter=["Role"])["RoleDetailList"]
    mine = next(r for r in details if r["RoleName"] == role)
    assert [p["InstanceProfileName"] for p in mine["InstanceProfileList"]] == [name]

    # A role in a profile, and a profile with a role, cannot be deleted.
    expect_error(iam.delete_role, "DeleteConflict", 409,
                 message="Cannot delete entity, must remove roles from instance profile first.", RoleName=role)
    expect_error(iam.delete_instance_profile, "DeleteConflict", 409,
                 message="Cannot delete entity, must remove roles from instance profile first.",
                 InstanceProfileName=name)

    # Tags: re-tagging replaces (keys regardless of case), untag ignores unknown keys.
    iam.tag_instance_profile(InstanceProfileName=name, Tags=tags(TEAM="red", env="prod"))
    assert as_dict(iam.list_instance_profile_tags(InstanceProfileName=name)["Tags"]) == {"TEAM": "red", "env": "prod"}
    iam.untag_instance_profile(InstanceProfileName=name, TagKeys=["team", "nope"])
    assert as_dict(iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Tags"]) == {"env": "prod"}

    expect_error(iam.remove_role_from_instance_profile, "NoSuchEntity", 404,
                 InstanceProfileName=name, RoleName=other)
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role)
    assert iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"] == []
    iam.delete_role(RoleName=role)
    iam.delete_instance_profile(InstanceProfileName=name)
    expect_error(iam.get_instance_profile, "NoSuchEntity", 404,
                 message=f"Instance Profile {name} cannot be found.", InstanceProfileName=name)
    expect_error(iam.delete_instance_profile, "NoSuchEntity", 404, InstanceProfileName=name)


def test_instance_profile_input_errors(A):
    iam = A.iam
    name = uid("ip")
    iam.create_instance_profile(InstanceProfileName=name)
    expect_error(iam.create_instance_profile, "EntityAlreadyExists", 409,
                 message=f"Instance Profile {name.upper()} already exists.", InstanceProfileName=name.upper())
    expect_error(iam.create_instance_profile, "ValidationError", 400, InstanceProfileName="bad name")
    expect_error(iam.create_instance_profile, "ValidationError", 400, InstanceProfileName=uid("ip"), Path="no-slash")
    expect_error(iam.add_role_to_instance_profile, "NoSuchEntity", 404,
                 message="The role with name nobody cannot be found.", InstanceProfileName=name, RoleName="nobody")
    expect_error(iam.add_role_to_instance_profile, "NoSuchEntity", 404,
                 message="Instance Profile nothing cannot be found.", InstanceProfileName="nothing", RoleName="nobody")
    expect_error(iam.list_instance_profiles_for_role, "NoSuchEntity", 404, RoleName="nobody")
    # Paging.
    for _ in range(2):
        iam.create_instance_profile(InstanceProfileName=uid("ip"), Path="/paged/")
    first = iam.list_instance_profiles(PathPrefix="/paged/", MaxItems=1)
    assert first["IsTruncated"] is True and len(first["InstanceProfiles"]) == 1
    second = iam.list_instance_profiles(PathPrefix="/paged/", MaxItems=1, Marker=first["Marker"])
    assert second["IsTruncated"] is False
    assert first["InstanceProfiles"][0]["InstanceProfileName"] != second["InstanceProfiles"][0]["InstanceProfileName"]


# --- tags of managed policies ------------------------------------------------


def test_managed_policy_tags_are_kept_shown_and_changed(A):
    iam = A.iam
    created = iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("kms:ListKeys")),
                                Tags=tags(owner="platform", cc="42"))["Policy"]
    arn = created["Arn"]
    assert as_dict(created["Tags"]) == {"owner": "platform", "cc": "42"}
    assert as_dict(iam.get_policy(PolicyArn=arn)["Policy"]["Tags"]) == {"owner": "platform", "cc": "42"}
    iam.tag_policy(PolicyArn=arn, Tags=tags(OWNER="security", env="test"))
    assert as_dict(iam.list_policy_tags(PolicyArn=arn)["Tags"]) == {"OWNER": "security", "cc": "42", "env": "test"}
    iam.untag_policy(PolicyArn=arn, TagKeys=["CC", "absent"])
    assert as_dict(iam.get_policy(PolicyArn=arn)["Policy"]["Tags"]) == {"OWNER": "security", "env": "test"}
    page = iam.list_policy_tags(PolicyArn=arn, MaxItems=1)
    assert page["IsTruncated"] is True and len(page["Tags"]) == 1
    # ListPolicies does not return tags (as on AWS).
    listed = [p for p in iam.list_policies(Scope="Local")["Policies"] if p["Arn"] == arn]
    assert len(listed) == 1 and "Tags" not in listed[0]
    missing = f"arn:aws:iam::{A.id}:policy/none-{uid('x')}"
    expect_error(iam.tag_policy, "NoSuchEntity", 404, PolicyArn=missing, Tags=tags(a="b"))
    expect_error(iam.list_policy_tags, "NoSuchEntity", 404, PolicyArn=missing)


def test_tag_limits_are_enforced_with_aws_errors(A):
    iam = A.iam
    fifty = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    arn = iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("kms:ListKeys")), Tags=fifty)["Policy"]["Arn"]
    assert len(iam.list_policy_tags(PolicyArn=arn)["Tags"]) == 50
    # A 51st key is over the quota; replacing a value is not.
    expect_error(iam.tag_policy, "LimitExceeded", 409, message="Cannot exceed quota for TagsPerEntity: 50",
                 PolicyArn=arn, Tags=tags(extra="x"))
    iam.tag_policy(PolicyArn=arn, Tags=tags(k0="changed"))
    fifty_one = fifty + [{"Key": "k50", "Value": "v"}]
    ip = uid("ip")
    iam.create_instance_profile(InstanceProfileName=ip, Tags=fifty)
    expect_error(iam.tag_instance_profile, "LimitExceeded", 409, InstanceProfileName=ip, Tags=tags(extra="x"))
    raw = A.srv.client(A.id, "x", service="iam", validate=False)
    expect_error(raw.create_policy, "LimitExceeded", 409, PolicyName=uid("p"),
                 PolicyDocument=doc(allow("kms:ListKeys")), Tags=fifty_one)
    expect_error(raw.create_instance_profile, "LimitExceeded", 409, InstanceProfileName=uid("ip"), Tags=fifty_one)
    expect_error(raw.tag_policy, "ValidationError", 400,
                 message=f"1 validation error detected: Value '{'k' * 129}' at 'tags.1.member.key' failed to satisfy constraint: Member must have length between 1 and 128",
                 PolicyArn=arn, Tags=tags(**{"k" * 129: "v"}))
    expect_error(raw.tag_instance_profile, "ValidationError", 400, InstanceProfileName=ip,
                 Tags=tags(k="v" * 257))
    expect_error(raw.tag_policy, "ValidationError", 400, PolicyArn=arn, Tags=tags(k="bad\u0007value"))
    expect_error(raw.tag_policy, "InvalidInput", 400,
                 message="Duplicate tag keys found. Please note that Tag keys are case insensitive.",
                 PolicyArn=arn, Tags=tags(a="1", A="2"))
    expect_error(raw.untag_policy, "ValidationError", 400, PolicyArn=arn, TagKeys=[f"k{i}" for i in range(51)])
    expect_error(raw.untag_instance_profile, "ValidationError", 400, InstanceProfileName=ip, TagKeys=["k" * 129])
    expect_error(raw.tag_policy, "ValidationError", 400, PolicyArn=arn, Tags=[])
    # Nothing was changed by the refused requests.
    assert as_dict(iam.list_policy_tags(PolicyArn=arn)["Tags"])["k0"] == "changed"
    assert len(iam.list_policy_tags(PolicyArn=arn)["Tags"]) == 50


# --- attackers ---------------------------------------------------------------


def test_another_accounts_root_cannot_read_or_change_profiles_or_policy_tags(A, B):
    role = uid("r")
    A.iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    ip = uid("ip")
    ip_arn = A.iam.create_instance_profile(InstanceProfileName=ip, Tags=tags(t="a"))["InstanceProfile"]["Arn"]
    A.iam.add_role_to_instance_profile(InstanceProfileName=ip, RoleName=role)
    pol = A.iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("kms:ListKeys")), Tags=tags(t="a"))["Policy"]["Arn"]

    # Policies are named by ARN: another account's is refused before it is read.
    for call, action, kw in [
        (B.iam.tag_policy, "iam:TagPolicy", dict(Tags=tags(t="b"))),
        (B.iam.untag_policy, "iam:UntagPolicy", dict(TagKeys=["t"])),
        (B.iam.list_policy_tags, "iam:ListPolicyTags", {}),
    ]:
        expect_error(call, AD, 403, message=denied_message(B.root_arn, action, pol, "no resource-based policy allows"),
                     PolicyArn=pol, **kw)
    # Instance profiles are named by name: B's root finds only its own account's.
    for call, kw in [
        (B.iam.get_instance_profile, {}),
        (B.iam.tag_instance_profile, dict(Tags=tags(t="b"))),
        (B.iam.untag_instance_profile, dict(TagKeys=["t"])),
        (B.iam.list_instance_profile_tags, {}),
        (B.iam.remove_role_from_instance_profile, dict(RoleName=role)),
        (B.iam.delete_instance_profile, {}),
    ]:
        expect_error(call, "NoSuchEntity", 404, InstanceProfileName=ip, **kw)
    expect_error(B.iam.list_instance_profiles_for_role, "NoSuchEntity", 404, RoleName=role)
    assert ip not in [p["InstanceProfileName"] for p in B.iam.list_instance_profiles()["InstanceProfiles"]]
    # B's own profile cannot take A's role.
    b_ip = uid("ip")
    B.iam.create_instance_profile(InstanceProfileName=b_ip)
    expect_error(B.iam.add_role_to_instance_profile, "NoSuchEntity", 404, InstanceProfileName=b_ip, RoleName=role)
    # A's are as they were.
    got = A.iam.get_instance_profile(InstanceProfileName=ip)["InstanceProfile"]
    assert got["Arn"] == ip_arn and [r["RoleName"] for r in got["Roles"]] == [role]
    assert as_dict(got["Tags"]) == {"t": "a"}
    assert as_dict(A.iam.list_policy_tags(PolicyArn=pol)["Tags"]) == {"t": "a"}


def test_a_user_without_permission_is_refused_with_aws_message(A):
    role = uid("r")
    A.iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
    ip = uid("ip")
    A.iam.create_instance_profile(InstanceProfileName=ip)
    pol = A.iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("kms:ListKeys")))["Policy"]["Arn"]
    # Allowed to read only; and to manage profiles, but not to pass roles.
    u = A.user(allow(["iam:GetInstanceProfile", "iam:ListInstanceProfiles", "iam:AddRoleToInstanceProfile"]))
    iam = A.srv.client(u.creds["AccessKeyId"], u.creds["SecretAccessKey"], service="iam")
    ip_arn = f"arn:aws:iam::{A.id}:instance-profile/{ip}"
    assert iam.get_instance_profile(InstanceProfileName=ip)["InstanceProfile"]["Arn"] == ip_arn
    for call, action, resource, kw in [
        (iam.create_instance_profile, "iam:CreateInstanceProfile", f"arn:aws:iam::{A.id}:instance-profile/new",
         dict(InstanceProfileName="new")),
        (iam.delete_instance_profile, "iam:DeleteInstanceProfile", ip_arn, dict(InstanceProfileName=ip)),
        (iam.tag_instance_profile, "iam:TagInstanceProfile", ip_arn, dict(InstanceProfileName=ip, Tags=tags(a="b"))),
        (iam.list_instance_profiles_for_role, "iam:ListInstanceProfilesForRole", f"arn:aws:iam::{A.id}:role/{role}",
         dict(RoleName=role)),
        (iam.remove_role_from_instance_profile, "iam:RemoveRoleFromInstanceProfile", ip_arn,
         dict(InstanceProfileName=ip, RoleName=role)),
        (iam.tag_policy, "iam:TagPolicy", pol, dict(PolicyArn=pol, Tags=tags(a="b"))),
        (iam.list_policy_tags, "iam:ListPolicyTags", pol, dict(PolicyArn=pol)),
        (iam.create_policy, "iam:CreatePolicy", f"arn:aws:iam::{A.id}:policy/x",
         dict(PolicyName="x", PolicyDocument=doc(allow("kms:ListKeys")))),
        # Adding a role needs iam:PassRole on it too.
        (iam.add_role_to_instance_profile, "iam:PassRole", f"arn:aws:iam::{A.id}:role/{role}",
         dict(InstanceProfileName=ip, RoleName=role)),
    ]:
        expect_error(call, AD, 403, message=denied_message(u.arn, action, resource), **kw)
    # Unauthorized callers learn nothing of which names exist.
    expect_error(iam.delete_instance_profile, AD, 403, InstanceProfileName="does-not-exist")
    assert A.iam.get_instance_profile(InstanceProfileName=ip)["InstanceProfile"]["Roles"] == []


def test_tag_conditions_decide_who_may_tag_and_create(A):
    """aws:RequestTag / aws:TagKeys on CreatePolicy and Tag*, and
    aws:ResourceTag on the profile's and the policy's own tags."""
    statements = [
        allow(["iam:CreatePolicy", "iam:TagPolicy", "iam:CreateInstanceProfile", "iam:GetInstanceProfile"]),
        {"Effect": "Deny", "Action": ["iam:CreatePolicy", "iam:TagPolicy", "iam:CreateInstanceProfile"],
         "Resource": "*", "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["protected"]}}},
        {"Effect": "Deny", "Action": ["iam:GetInstanceProfile", "iam:TagPolicy"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:ResourceTag/locked": "yes"}}},
    ]
    u = A.user(*statements)
    iam = A.srv.client(u.creds["AccessKeyId"], u.creds["SecretAccessKey"], service="iam")
    expect_error(iam.create_policy, AD, 403, PolicyName=uid("p"), PolicyDocument=doc(allow("kms:ListKeys")),
                 Tags=tags(protected="x"))
    arn = iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(allow("kms:ListKeys")), Tags=tags(ok="x"))["Policy"]["Arn"]
    iam.tag_policy(PolicyArn=arn, Tags=tags(more="y"))
    A.iam.tag_policy(PolicyArn=arn, Tags=tags(locked="yes"))
    expect_error(iam.tag_policy, AD, 403, PolicyArn=arn, Tags=tags(more="z"))
    expect_error(iam.create_instance_profile, AD, 403, InstanceProfileName=uid("ip"), Tags=tags(protected="x"))
    ip = uid("ip")
    iam.create_instance_profile(InstanceProfileName=ip, Tags=tags(locked="no"))
    iam.get_instance_profile(InstanceProfileName=ip)
    A.iam.tag_instance_profile(InstanceProfileName=ip, Tags=tags(locked="yes"))
    expect_error(iam.get_instance_profile, AD, 403, InstanceProfileName=ip)


def test_instance_profiles_and_policy_tags_survive_a_restart(server_factory):
    s = server_factory()
    iam = s.client(service="iam")
    iam.create_role(RoleName="kept", AssumeRolePolicyDocument=TRUST)
    iam.create_instance_profile(InstanceProfileName="kept-ip", Tags=tags(a="1"))
    iam.add_role_to_instance_profile(InstanceProfileName="kept-ip", RoleName="kept")
    arn = iam.create_policy(PolicyName="kept-p", PolicyDocument=doc(allow("kms:ListKeys")), Tags=tags(b="2"))["Policy"]["Arn"]
    s.restart()
    iam = s.client(service="iam")
    got = iam.get_instance_profile(InstanceProfileName="kept-ip")["InstanceProfile"]
    assert [r["RoleName"] for r in got["Roles"]] == ["kept"] and as_dict(got["Tags"]) == {"a": "1"}
    assert as_dict(iam.get_policy(PolicyArn=arn)["Policy"]["Tags"]) == {"b": "2"}
    expect_error(iam.delete_role, "DeleteConflict", 409, RoleName="kept")
