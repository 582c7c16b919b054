"""IAM Access Analyzer findings and access previews for KMS keys
(docs/analysis.md, "Access Analyzer API"), through boto3's
`accessanalyzer` client and the aws CLI: an ACCOUNT analyzer's external
access findings (public key policies, other accounts' principals, grants to
them), kept current as policies and grants change (RESOLVED, id kept,
ARCHIVED kept), the access previews of proposed key policies and grants
(NEW, UNCHANGED, CHANGED), and the attacks: another account's root, a
user without the actions, a key of another account in a preview, the
bounds."""

from __future__ import annotations

import json
import os
import time

import pytest

from accounts import client, uid
from conftest import REGION, expect_error
from policies import doc, kp_allow

SERVER = "dev"
VE = "ValidationException"
AD = "AccessDeniedException"
NF = "ResourceNotFoundException"


def aa(p):
    if hasattr(p, "creds"):
        k = p.creds
        return client(p.srv_endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="accessanalyzer")
    return client(p.srv.endpoint, p.id, "x", service="accessanalyzer")


@pytest.fixture(scope="module")
def analyzer(A):
    """A's ACCOUNT analyzer (the quota is one per account and Region)."""
    return aa(A).create_analyzer(analyzerName=uid("an"), type="ACCOUNT")["arn"]


def of_key(c, analyzer, key_arn, **filter_extra):
    """Every finding of one key, through boto3's paginator."""
    out = []
    flt = {"resource": {"eq": [key_arn]}, **filter_extra}
    for page in c.get_paginator("list_findings").paginate(analyzerArn=analyzer, filter=flt):
        out.extend(page["findings"])
    return out


def public_policy(A, extra=None):
    st = [A.enable_iam(), kp_allow("*", ["kms:Decrypt"], Sid="Open")]
    if extra:
        st.append(extra)
    return doc(*st)


def test_a_public_key_policy_is_a_public_finding_in_every_shape(A, analyzer):
    c = aa(A)
    key = A.kms.create_key(Policy=public_policy(A), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    (f,) = of_key(c, analyzer, key["Arn"])
    assert f["principal"] == {"AWS": "*"} and f["isPublic"] is True, f
    assert f["action"] == ["kms:Decrypt"]
    assert (f["resourceType"], f["status"], f["resourceOwnerAccount"]) == ("AWS::KMS::Key", "ACTIVE", A.id)
    assert f["condition"] == {} and f["sources"] == [{"type": "POLICY"}]
    got = c.get_finding(analyzerArn=analyzer, id=f["id"])["finding"]
    assert got["id"] == f["id"] and got["principal"] == {"AWS": "*"}
    v2 = [x for x in c.list_findings_v2(analyzerArn=analyzer, filter={"resource": {"eq": [key["Arn"]]}})["findings"]]
    assert [x["id"] for x in v2] == [f["id"]] and v2[0]["findingType"] == "ExternalAccess"
    d = c.get_finding_v2(analyzerArn=analyzer, id=f["id"])
    (detail,) = d["findingDetails"]
    ext = detail["externalAccessDetails"]
    assert ext["isPublic"] is True and ext["action"] == ["kms:Decrypt"] and ext["principal"] == {"AWS": "*"}
    # The filters of the model.
    assert [x["id"] for x in of_key(c, analyzer, key["Arn"], isPublic={"eq": ["true"]})] == [f["id"]]
    assert of_key(c, analyzer, key["Arn"], isPublic={"eq": ["false"]}) == []
    assert of_key(c, analyzer, key["Arn"], **{"principal.AWS": {"neq": ["*"]}}) == []
    assert of_key(c, analyzer, key["Arn"], resourceOwnerAccount={"eq": [A.id]}, status={"eq": ["ACTIVE"]}, resourceType={"eq": ["AWS::KMS::Key"]})
    assert of_key(c, analyzer, key["Arn"], error={"exists": True}) == []
    assert [x["id"] for x in c.list_findings(analyzerArn=analyzer, filter={"resource": {"contains": [key["KeyId"]]}})["findings"]] == [f["id"]]
    stats = c.get_findings_statistics(analyzerArn=analyzer)["findingsStatistics"][0]["externalAccessFindingsStatistics"]
    assert stats["totalActiveFindings"] >= 1 and stats["resourceTypeStatistics"]["AWS::KMS::Key"]["totalActivePublic"] >= 1


def test_another_accounts_principal_with_a_condition_and_a_grant_to_another_account(A, B, analyzer):
    c = aa(A)
    cond = {"StringEquals": {"kms:EncryptionContext:team": "blue"}}
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, ["kms:Encrypt", "kms:Decrypt"], Condition=cond))
    fs = of_key(c, analyzer, key["Arn"])
    assert fs, "the cross-account statement is a finding"
    for f in fs:
        assert f["principal"] == {"AWS": B.id} and f["isPublic"] is False, f
        assert f["condition"] == {"kms:EncryptionContext:team": "blue"}, f
    assert {"kms:Decrypt", "kms:Encrypt"} <= {a for f in fs for a in f["action"]}
    # A grant to a role of B: a finding without `sources` (the model has
    # no grant source), its constraints as the condition.
    clean = A.key(A.enable_iam())
    assert of_key(c, analyzer, clean["Arn"]) == []
    role = f"arn:aws:iam::{B.id}:role/app"
    g = A.kms.create_grant(
        KeyId=clean["KeyId"], GranteePrincipal=role, Operations=["Decrypt"], Constraints={"EncryptionContextSubset": {"app": "x"}}
    )
    (f,) = of_key(c, analyzer, clean["Arn"])
    assert f["principal"] == {"AWS": role} and "kms:Decrypt" in f["action"] and "sources" not in f, f
    assert f["condition"] == {"kms:EncryptionContext:app": "x"}
    A.kms.revoke_grant(KeyId=clean["KeyId"], GrantId=g["GrantId"])
    (r,) = of_key(c, analyzer, clean["Arn"])
    assert (r["id"], r["status"]) == (f["id"], "RESOLVED")


def test_findings_are_kept_current_resolved_archived_and_active_again(A, analyzer):
    c = aa(A)
    key = A.kms.create_key(Policy=public_policy(A), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    (f,) = of_key(c, analyzer, key["Arn"])
    c.update_findings(analyzerArn=analyzer, ids=[f["id"]], status="ARCHIVED")
    (a,) = of_key(c, analyzer, key["Arn"])
    assert (a["id"], a["status"]) == (f["id"], "ARCHIVED")
    # A change that keeps the access: same id, still ARCHIVED, analysed again.
    time.sleep(0.01)
    A.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=public_policy(A, kp_allow(A.root_arn, "kms:DescribeKey", Sid="More")), BypassPolicyLockoutSafetyCheck=True)
    (a2,) = of_key(c, analyzer, key["Arn"])
    assert (a2["id"], a2["status"], a2["createdAt"]) == (f["id"], "ARCHIVED", f["createdAt"])
    assert a2["analyzedAt"] > a["analyzedAt"]
    # The access goes: RESOLVED, same id and createdAt.
    A.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=doc(A.enable_iam()))
    (r,) = of_key(c, analyzer, key["Arn"])
    assert (r["id"], r["status"], r["createdAt"]) == (f["id"], "RESOLVED", f["createdAt"]) and r["updatedAt"] > a2["updatedAt"]
    assert of_key(c, analyzer, key["Arn"], status={"eq": ["ACTIVE", "ARCHIVED"]}) == []
    # It returns: ACTIVE again, same id.
    A.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=public_policy(A), BypassPolicyLockoutSafetyCheck=True)
    (b,) = of_key(c, analyzer, key["Arn"])
    assert (b["id"], b["status"]) == (f["id"], "ACTIVE")
    # By resource ARN.
    c.update_findings(analyzerArn=analyzer, resourceArn=key["Arn"], status="ARCHIVED")
    assert [x["status"] for x in of_key(c, analyzer, key["Arn"])] == ["ARCHIVED"]
    c.update_findings(analyzerArn=analyzer, resourceArn=key["Arn"], status="ACTIVE")
    assert [x["status"] for x in of_key(c, analyzer, key["Arn"])] == ["ACTIVE"]
    # A key scheduled for deletion is still a key (its policy still holds);
    # tags change the fingerprint and the key is analysed again.
    A.kms.tag_resource(KeyId=key["KeyId"], Tags=[{"TagKey": "t", "TagValue": "v"}])
    (t,) = of_key(c, analyzer, key["Arn"])
    assert t["id"] == f["id"] and t["analyzedAt"] > b["analyzedAt"]


def test_bad_input_pagination_and_not_found(A, analyzer):
    c = aa(A)
    for _ in range(2):
        A.kms.create_key(Policy=public_policy(A), BypassPolicyLockoutSafetyCheck=True)
    page = c.list_findings(analyzerArn=analyzer, maxResults=1)
    assert len(page["findings"]) == 1 and page["nextToken"]
    n = sum(len(p["findings"]) for p in c.get_paginator("list_findings").paginate(analyzerArn=analyzer, PaginationConfig={"PageSize": 1}))
    assert n == len(c.list_findings(analyzerArn=analyzer)["findings"]) >= 2
    ids = [f["id"] for f in c.list_findings(analyzerArn=analyzer, sort={"attributeName": "id", "orderBy": "DESC"})["findings"]]
    assert ids == sorted(ids, reverse=True)
    e = expect_error(c.list_findings, VE, analyzerArn=analyzer, filter={"nope": {"eq": ["x"]}})
    assert "nope" in e.response["Error"]["Message"]
    expect_error(c.list_findings, VE, analyzerArn=analyzer, sort={"attributeName": "colour"})
    expect_error(c.list_findings, VE, analyzerArn=analyzer, nextToken="zz")
    expect_error(c.get_finding, NF, 404, analyzerArn=analyzer, id="00000000-0000-0000-0000-000000000000")
    expect_error(lambda: c.update_findings(analyzerArn=analyzer, ids=["00000000-0000-0000-0000-000000000000"], status="ARCHIVED"), NF, 404)
    expect_error(lambda: c.update_findings(analyzerArn=analyzer, status="ARCHIVED"), VE)
    missing = analyzer.rsplit("/", 1)[0] + "/missing"
    expect_error(c.list_findings, NF, 404, analyzerArn=missing)
    expect_error(c.list_findings, VE, analyzerArn="arn:aws:kms:us-east-1:111122223333:key/x")


def preview(c, analyzer, configurations):
    pid = c.create_access_preview(analyzerArn=analyzer, configurations=configurations)["id"]
    p = c.get_access_preview(analyzerArn=analyzer, accessPreviewId=pid)["accessPreview"]
    fs = []
    if p["status"] == "COMPLETED":
        for page in c.get_paginator("list_access_preview_findings").paginate(analyzerArn=analyzer, accessPreviewId=pid):
            fs.extend(page["findings"])
    return pid, p, fs


def test_access_previews_new_unchanged_and_changed(A, B, analyzer):
    c = aa(A)
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, ["kms:Decrypt"]))
    (existing,) = of_key(c, analyzer, key["Arn"])
    # The same policy: UNCHANGED, with the existing finding.
    pid, p, fs = preview(c, analyzer, {key["Arn"]: {"kmsKey": {"keyPolicies": {"default": doc(A.enable_iam(), kp_allow(B.root_arn, ["kms:Decrypt"]))}}}})
    assert p["status"] == "COMPLETED" and p["analyzerArn"] == analyzer and key["Arn"] in p["configurations"]
    (u,) = fs
    assert (u["changeType"], u["status"], u["existingFindingId"], u["existingFindingStatus"]) == ("UNCHANGED", "ACTIVE", existing["id"], "ACTIVE")
    # Nothing given for an existing key: its own policy, so the same.
    _, _, fs = preview(c, analyzer, {key["Arn"]: {"kmsKey": {}}})
    assert [f["changeType"] for f in fs] == ["UNCHANGED"]
    # Public instead of B: a NEW public finding and B's CHANGED to RESOLVED.
    _, _, fs = preview(c, analyzer, {key["Arn"]: {"kmsKey": {"keyPolicies": {"default": public_policy(A)}}}})
    by = {f["changeType"]: f for f in fs}
    assert set(by) == {"NEW", "CHANGED"}, fs
    assert by["NEW"]["isPublic"] is True and by["NEW"]["status"] == "ACTIVE" and "existingFindingId" not in by["NEW"]
    assert (by["CHANGED"]["status"], by["CHANGED"]["existingFindingId"]) == ("RESOLVED", existing["id"])
    # The filter of ListAccessPreviewFindings.
    pid2, _, _ = preview(c, analyzer, {key["Arn"]: {"kmsKey": {"keyPolicies": {"default": public_policy(A)}}}})
    got = c.list_access_preview_findings(analyzerArn=analyzer, accessPreviewId=pid2, filter={"changeType": {"eq": ["NEW"]}})["findings"]
    assert [f["changeType"] for f in got] == ["NEW"]
    # A key that does not exist yet: the default policy unless given; grants.
    new_arn = A.key_arn("proposed-key")
    _, p, fs = preview(c, analyzer, {new_arn: {"kmsKey": {}}})
    assert p["status"] == "COMPLETED" and fs == []
    _, _, fs = preview(
        c,
        analyzer,
        {
            new_arn: {
                "kmsKey": {
                    "grants": [
                        {
                            "operations": ["Decrypt"],
                            "granteePrincipal": B.root_arn,
                            "issuingAccount": A.id,
                            "constraints": {"encryptionContextEquals": {"k": "v"}},
                        }
                    ]
                }
            }
        },
    )
    (g,) = fs
    assert g["changeType"] == "NEW" and g["principal"] == {"AWS": B.id} and g["condition"] == {"kms:EncryptionContext:k": "v"}, g
    # A policy that does not parse: FAILED, INVALID_CONFIGURATION.
    _, p, _ = preview(c, analyzer, {new_arn: {"kmsKey": {"keyPolicies": {"default": "{not json"}}}})
    assert (p["status"], p["statusReason"]) == ("FAILED", {"code": "INVALID_CONFIGURATION"})
    listed = [x["id"] for x in c.list_access_previews(analyzerArn=analyzer)["accessPreviews"]]
    assert pid in listed and pid2 in listed
    expect_error(c.get_access_preview, NF, 404, analyzerArn=analyzer, accessPreviewId="00000000-0000-0000-0000-000000000000")
    expect_error(c.get_access_preview, VE, analyzerArn=analyzer, accessPreviewId="not-an-id")


def test_access_preview_refusals_and_bounds(A, B, analyzer):
    c = aa(A)
    e = expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={"arn:aws:s3:::bucket": {"s3Bucket": {}}})
    assert e.response["reason"] == "notSupported" and "kmsKey" in e.response["Error"]["Message"]
    e = expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={"arn:aws:sqs:us-east-1:%s:q" % A.id: {"sqsQueue": {}}})
    assert e.response["reason"] == "notSupported" and "iamRole" in e.response["Error"]["Message"]
    # A key of another account.
    e = expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={B.key_arn("k"): {"kmsKey": {}}})
    assert B.id in e.response["Error"]["Message"]
    many = {A.key_arn(f"k{i}"): {"kmsKey": {}} for i in range(11)}
    expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations=many)
    expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={})
    big = doc(*[kp_allow(A.root_arn, "kms:DescribeKey", Sid="S" + "x" * 100 + str(i)) for i in range(400)])
    expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={A.key_arn("k"): {"kmsKey": {"keyPolicies": {"default": big}}}})
    expect_error(
        c.create_access_preview,
        VE,
        analyzerArn=analyzer,
        configurations={A.key_arn("k"): {"kmsKey": {"grants": [{"operations": ["Fly"], "granteePrincipal": B.root_arn, "issuingAccount": A.id}]}}},
    )
    expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={A.key_arn("k"): {"kmsKey": {"keyPolicies": {"other": "{}"}}}})


def test_another_account_and_a_user_without_the_actions_are_refused(A, B, analyzer):
    key = A.kms.create_key(Policy=public_policy(A), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    c = aa(A)
    (f,) = of_key(c, analyzer, key["Arn"])
    pid = c.create_access_preview(analyzerArn=analyzer, configurations={key["Arn"]: {"kmsKey": {}}})["id"]
    calls = lambda x: [  # noqa: E731
        (x.list_findings, {"analyzerArn": analyzer}),
        (x.list_findings_v2, {"analyzerArn": analyzer}),
        (x.get_finding, {"analyzerArn": analyzer, "id": f["id"]}),
        (x.get_finding_v2, {"analyzerArn": analyzer, "id": f["id"]}),
        (lambda: x.update_findings(analyzerArn=analyzer, ids=[f["id"]], status="ARCHIVED"), {}),
        (x.get_findings_statistics, {"analyzerArn": analyzer}),
        (x.create_access_preview, {"analyzerArn": analyzer, "configurations": {key["Arn"]: {"kmsKey": {}}}}),
        (x.get_access_preview, {"analyzerArn": analyzer, "accessPreviewId": pid}),
        (x.list_access_previews, {"analyzerArn": analyzer}),
        (x.list_access_preview_findings, {"analyzerArn": analyzer, "accessPreviewId": pid}),
    ]
    for call, kw in calls(aa(B)):
        e = expect_error(call, AD, 403, **kw)
        assert e.response["Error"]["Message"].startswith(f"User: arn:aws:iam::{B.id}:root is not authorized to perform: access-analyzer:"), e.response
        assert analyzer in e.response["Error"]["Message"]
    u = A.user()
    u.srv_endpoint = A.srv.endpoint
    for call, kw in calls(aa(u)):
        expect_error(call, AD, 403, **kw)
    # Allowed on the analyzer ARN: the user reads the findings.
    r = A.user({"Effect": "Allow", "Action": ["access-analyzer:ListFindings", "access-analyzer:GetFinding"], "Resource": analyzer})
    r.srv_endpoint = A.srv.endpoint
    assert f["id"] in [x["id"] for x in aa(r).list_findings(analyzerArn=analyzer, filter={"resource": {"eq": [key["Arn"]]}})["findings"]]
    expect_error(lambda: aa(r).update_findings(analyzerArn=analyzer, ids=[f["id"]], status="ARCHIVED"), AD, 403)
    # Nothing changed for A.
    assert of_key(c, analyzer, key["Arn"])[0]["status"] == "ACTIVE"


def test_an_unknown_analysis_is_an_error_finding_never_silence(A, analyzer):
    """A policy variable in a condition is outside reach's encoding: the
    key gets a finding with `error` set."""
    c = aa(A)
    st = kp_allow("*", "kms:Decrypt", Condition={"StringEquals": {"aws:PrincipalTag/team": "${aws:username}"}})
    key = A.key(A.enable_iam(), st)
    fs = of_key(c, analyzer, key["Arn"])
    assert fs, "an analysis that cannot conclude is reported"
    if any(f.get("error") for f in fs):
        (f,) = fs
        assert f["error"] and "principal" not in f and f["status"] == "ACTIVE"
        assert of_key(c, analyzer, key["Arn"], error={"exists": True})
    else:
        # reach handles the construct: then the statement is a public finding.
        assert any(f["isPublic"] for f in fs), fs


def test_a_key_its_account_cannot_read_is_an_error_finding(A, analyzer):
    """A key policy that does not let the key's own account read the key
    (DescribeKey, GetKeyPolicy, ListGrants...): the analyzer, which reads
    as the account's root user, reports an error finding for it, as AWS's
    does when its service-linked role is refused, never silence."""
    c = aa(A)
    key = A.key(kp_allow("*", "kms:Decrypt"))
    (f,) = of_key(c, analyzer, key["Arn"])
    assert f["error"] and "principal" not in f and f["status"] == "ACTIVE", f
    assert [x["id"] for x in of_key(c, analyzer, key["Arn"], error={"exists": True})] == [f["id"]]
    # Stable across calls.
    assert of_key(c, analyzer, key["Arn"]) == [f]


def test_aws_cli_lists_and_archives_findings(A, analyzer, tmp_path):
    import subprocess
    import sys

    from conftest import clean_env

    key = A.kms.create_key(Policy=public_policy(A), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    cfg = tmp_path / "aws-config"
    cfg.write_text("")
    env = clean_env()
    env.update(
        AWS_ENDPOINT_URL=A.srv.endpoint,
        AWS_ACCESS_KEY_ID=A.id,
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_PAGER="",
        AWS_EC2_METADATA_DISABLED="true",
    )

    def aws(*args):
        p = subprocess.run([sys.executable, "-m", "awscli", *args], env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) if p.stdout.strip() else {}

    flt = json.dumps({"resource": {"eq": [key["Arn"]]}})
    (f,) = aws("accessanalyzer", "list-findings", "--analyzer-arn", analyzer, "--filter", flt)["findings"]
    assert f["isPublic"] is True
    aws("accessanalyzer", "update-findings", "--analyzer-arn", analyzer, "--ids", f["id"], "--status", "ARCHIVED")
    got = aws("accessanalyzer", "get-finding", "--analyzer-arn", analyzer, "--id", f["id"])["finding"]
    assert got["status"] == "ARCHIVED"


@pytest.mark.skipif(not os.environ.get("FERROKMS_TEST_PG_URL"), reason="needs FERROKMS_TEST_PG_URL (scripts/test.sh)")
def test_two_nodes_agree_on_findings_their_ids_and_archive(ferrokms_bin, tmp_path):
    """Two nodes on one PostgreSQL: a key made on one is a finding on the
    other with the same id; an archive on one holds on the other; a policy
    change on one resolves it on the other."""
    from conftest import new_database
    from test_cluster import node

    url = new_database()
    a = node(ferrokms_bin, tmp_path, "a", url).start()
    b = node(ferrokms_bin, tmp_path, "b", url, root_key=a.data_dir / "root.key").start()
    try:
        creds = a.profile_credentials()
        aa_a, aa_b = (n.client(*creds, service="accessanalyzer") for n in (a, b))
        kms_a, kms_b = (n.client(*creds) for n in (a, b))
        account = kms_a.describe_key(KeyId=kms_a.create_key()["KeyMetadata"]["KeyId"])["KeyMetadata"]["AWSAccountId"]
        root = f"arn:aws:iam::{account}:root"
        an = aa_a.create_analyzer(analyzerName="main", type="ACCOUNT")["arn"]
        key = kms_a.create_key(
            Policy=doc(kp_allow(root, "kms:*"), kp_allow("*", ["kms:Decrypt"])), BypassPolicyLockoutSafetyCheck=True
        )["KeyMetadata"]
        (fb,) = of_key(aa_b, an, key["Arn"])
        (fa,) = of_key(aa_a, an, key["Arn"])
        assert fa["id"] == fb["id"] and fb["isPublic"] is True
        aa_b.update_findings(analyzerArn=an, ids=[fb["id"]], status="ARCHIVED")
        assert of_key(aa_a, an, key["Arn"])[0]["status"] == "ARCHIVED"
        kms_b.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=doc(kp_allow(root, "kms:*")))
        (r,) = of_key(aa_a, an, key["Arn"])
        assert (r["id"], r["status"]) == (fa["id"], "RESOLVED")
        assert of_key(aa_b, an, key["Arn"])[0]["status"] == "RESOLVED"
    finally:
        a.stop()
        b.stop()


def trust(*principals_and_actions):
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": p, "Action": a} for p, a in principals_and_actions],
        }
    )


def of_role(c, analyzer, role_arn):
    return [f for f in c.list_findings(analyzerArn=analyzer, filter={"resource": {"eq": [role_arn]}})["findings"]]


def test_a_role_another_account_may_assume_is_a_finding_kept_current(A, B, analyzer):
    """Roles' trust policies are analysed like key policies
    (resourceType AWS::IAM::Role): another account's root that may assume
    the role is a finding; the role's own account is not; a changed trust
    policy resolves it; a deleted role's finding stays RESOLVED."""
    c = aa(A)
    name = uid("role")
    arn = A.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(({"AWS": B.root_arn}, "sts:AssumeRole")))["Role"]["Arn"]
    (f,) = of_role(c, analyzer, arn)
    assert (f["resourceType"], f["principal"], f["isPublic"], f["status"]) == ("AWS::IAM::Role", {"AWS": B.id}, False, "ACTIVE"), f
    assert f["action"] == ["sts:AssumeRole"] and f["resourceOwnerAccount"] == A.id
    assert c.get_finding(analyzerArn=analyzer, id=f["id"])["finding"]["resourceType"] == "AWS::IAM::Role"
    by_type = c.list_findings(analyzerArn=analyzer, filter={"resourceType": {"eq": ["AWS::IAM::Role"]}, "resource": {"eq": [arn]}})["findings"]
    assert [x["id"] for x in by_type] == [f["id"]]
    stats = c.get_findings_statistics(analyzerArn=analyzer)["findingsStatistics"][0]
    assert stats["externalAccessFindingsStatistics"]["resourceTypeStatistics"]["AWS::IAM::Role"]["totalActiveCrossAccount"] >= 1
    # Only the role's own account: the finding is resolved, its id kept.
    A.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust(({"AWS": A.root_arn}, "sts:AssumeRole")))
    (r,) = of_role(c, analyzer, arn)
    assert (r["id"], r["status"]) == (f["id"], "RESOLVED")
    # Anyone: a public finding; the role deleted: resolved.
    A.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust(({"AWS": "*"}, "sts:AssumeRole")))
    public = [x for x in of_role(c, analyzer, arn) if x["status"] == "ACTIVE"]
    assert [(x["principal"], x["isPublic"]) for x in public] == [({"AWS": "*"}, True)], public
    A.iam.delete_role(RoleName=name)
    assert {x["status"] for x in of_role(c, analyzer, arn)} == {"RESOLVED"}


def test_access_previews_of_role_trust_policies(A, B, analyzer):
    """`iamRole` previews: a new role needs its trust policy; an existing
    one is previewed under a proposed trust policy (NEW, CHANGED against
    its findings); another account's role is refused; a trust policy that
    does not parse is FAILED."""
    c = aa(A)
    new_arn = f"arn:aws:iam::{A.id}:role/{uid('proposed')}"
    _, p, fs = preview(c, analyzer, {new_arn: {"iamRole": {"trustPolicy": trust(({"AWS": B.root_arn}, "sts:AssumeRole"))}}})
    (n,) = fs
    assert p["status"] == "COMPLETED" and (n["changeType"], n["principal"], n["resourceType"]) == ("NEW", {"AWS": B.id}, "AWS::IAM::Role"), n
    _, _, fs = preview(c, analyzer, {new_arn: {"iamRole": {"trustPolicy": trust(({"Service": "lambda.amazonaws.com"}, "sts:AssumeRole"))}}})
    assert fs == [], fs
    e = expect_error(c.create_access_preview, VE, analyzerArn=analyzer, configurations={new_arn: {"iamRole": {}}})
    assert "trustPolicy" in e.response["Error"]["Message"]
    expect_error(
        c.create_access_preview,
        VE,
        analyzerArn=analyzer,
        configurations={f"arn:aws:iam::{B.id}:role/theirs": {"iamRole": {"trustPolicy": trust(({"AWS": "*"}, "sts:AssumeRole"))}}},
    )
    _, p, _ = preview(c, analyzer, {new_arn: {"iamRole": {"trustPolicy": "{not json"}}})
    assert (p["status"], p["statusReason"]) == ("FAILED", {"code": "INVALID_CONFIGURATION"})
    # An existing role with a finding: the same policy is UNCHANGED; a public one NEW + CHANGED.
    name = uid("role")
    arn = A.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(({"AWS": B.root_arn}, "sts:AssumeRole")))["Role"]["Arn"]
    (existing,) = of_role(c, analyzer, arn)
    _, _, fs = preview(c, analyzer, {arn: {"iamRole": {}}})
    assert [(f["changeType"], f.get("existingFindingId")) for f in fs] == [("UNCHANGED", existing["id"])], fs
    _, _, fs = preview(c, analyzer, {arn: {"iamRole": {"trustPolicy": trust(({"AWS": "*"}, "sts:AssumeRole"))}}})
    assert sorted(f["changeType"] for f in fs) == ["CHANGED", "NEW"], fs


def test_concurrent_findings_calls_agree_and_lose_nothing(A, B, analyzer):
    """Many ListFindings at once right after keys changed: the analysis
    runs outside the write locks and its result is merged under them, so
    every call answers, none duplicates or loses a finding, and all of
    them see the same findings of the changed keys."""
    from concurrent.futures import ThreadPoolExecutor

    keys = [A.key(A.enable_iam(), kp_allow(B.root_arn, ["kms:Decrypt"]))["Arn"] for _ in range(6)]

    def listing(_):
        c = aa(A)
        out = {}
        for k in keys:
            out[k] = sorted((f["id"], f["status"]) for f in of_key(c, analyzer, k))
        return out

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(listing, range(8)))
    first = answers[0]
    assert all(a == first for a in answers), answers
    assert all(len(v) == 1 and v[0][1] == "ACTIVE" for v in first.values()), first
