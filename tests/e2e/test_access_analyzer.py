"""IAM Access Analyzer on the ferrokms endpoint (REST-JSON, signing name
access-analyzer): ValidatePolicy and account analyzers through boto3's
`accessanalyzer` client, the aws CLI and cfn-policy-validator (run
unchanged with AWS_ENDPOINT_URL), authorization through the one path
(an IAM user needs the access-analyzer:* actions; another account's
analyzer is refused, root's included), and AWS's errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest

from accounts import client, uid
from conftest import REGION, clean_env, expect_error, make_client
from policies import allow, deny, doc, kp_allow, kp_deny, principal_allow

SERVER = "dev"
VE = "ValidationException"
AD = "AccessDeniedException"


def aa(principal_or_account):
    """An accessanalyzer client for an Account (its root) or a Principal
    with access-key credentials."""
    p = principal_or_account
    if hasattr(p, "creds"):
        k = p.creds
        return client(p.srv_endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="accessanalyzer")
    return client(p.srv.endpoint, p.id, "x", service="accessanalyzer")


def user_client(account, *statements):
    u = account.user(*statements) if statements else account.user()
    u.srv_endpoint = account.srv.endpoint
    return u, aa(u)


def findings(c, **kw):
    """Every finding, through boto3's paginator (maxResults/nextToken)."""
    out = []
    for page in c.get_paginator("validate_policy").paginate(**kw):
        out.extend(page["findings"])
    return out


def spanned(text, location):
    s = location["span"]
    assert s["start"]["line"] >= 1 and s["start"]["column"] >= 0
    return text[s["start"]["offset"] : s["end"]["offset"]]


# --- ValidatePolicy ---------------------------------------------------------------


def test_validate_policy_identity_findings_have_aws_codes_types_links_and_spans(A):
    c = aa(A)
    text = json.dumps(
        {
            "Statement": [
                {"Effect": "Allow", "Action": ["iam:PassRole", "s3:*", "s3:GetObject", "kms:Encryptt"], "Resource": "*"}
            ]
        },
        indent=2,
    )
    found = findings(c, policyType="IDENTITY_POLICY", policyDocument=text, PaginationConfig={"PageSize": 1})
    by_code = {f["issueCode"]: f for f in found}
    assert set(by_code) == {"MISSING_VERSION", "REDUNDANT_ACTION", "PASS_ROLE_WITH_STAR_IN_RESOURCE", "INVALID_ACTION"}, found
    assert by_code["MISSING_VERSION"]["findingType"] == "WARNING"
    assert by_code["REDUNDANT_ACTION"]["findingType"] == "SUGGESTION"
    assert by_code["PASS_ROLE_WITH_STAR_IN_RESOURCE"]["findingType"] == "SECURITY_WARNING"
    assert by_code["INVALID_ACTION"]["findingType"] == "ERROR"
    loc = by_code["REDUNDANT_ACTION"]["locations"][0]
    assert loc["path"] == [{"value": "Statement"}, {"index": 0}, {"value": "Action"}, {"index": 2}]
    assert spanned(text, loc) == '"s3:GetObject"'
    assert spanned(text, by_code["INVALID_ACTION"]["locations"][0]) == '"kms:Encryptt"'
    assert spanned(text, by_code["PASS_ROLE_WITH_STAR_IN_RESOURCE"]["locations"][0]) == '"*"'
    assert by_code["PASS_ROLE_WITH_STAR_IN_RESOURCE"]["learnMoreLink"].endswith(
        "#access-analyzer-reference-policy-checks-security-warning-pass-role-with-star-in-resource"
    )
    # One page of one finding, then the token to the next.
    page = c.validate_policy(policyType="IDENTITY_POLICY", policyDocument=text, maxResults=1)
    assert len(page["findings"]) == 1 and page["nextToken"]
    assert page["findings"][0] == found[0]


def test_validate_policy_key_policies_public_access_and_a_clean_default_policy(A):
    c = aa(A)
    admin = kp_allow(A.root_arn, "kms:*")
    clean = doc(admin)
    for rt in ({}, {"validatePolicyResourceType": "AWS::KMS::Key"}):
        assert c.validate_policy(policyType="RESOURCE_POLICY", policyDocument=clean, **rt)["findings"] == []
    public = doc(admin, kp_allow("*", ["kms:Decrypt"]))
    found = c.validate_policy(policyType="RESOURCE_POLICY", policyDocument=public)["findings"]
    f = next(f for f in found if f["issueCode"] == "PUBLIC_ACCESS")
    assert f["findingType"] == "SECURITY_WARNING"
    assert f["locations"][0]["path"] == [{"value": "Statement"}, {"index": 1}, {"value": "Principal"}]
    # KMS's own rules: nobody may ever change this policy.
    lockout = doc(kp_allow(A.root_arn, ["kms:Decrypt"]))
    codes = [f["issueCode"] for f in c.validate_policy(policyType="RESOURCE_POLICY", policyDocument=lockout, validatePolicyResourceType="AWS::KMS::Key")["findings"]]
    assert "LOCKOUT_RISK" in codes


def test_validate_policy_grammar_errors_trust_policies_and_json_syntax(A):
    c = aa(A)
    no_principal = doc({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"})
    (f,) = c.validate_policy(policyType="RESOURCE_POLICY", policyDocument=no_principal)["findings"]
    assert (f["issueCode"], f["findingType"]) == ("MISSING_PRINCIPAL", "ERROR")
    with_principal = doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"})
    (f,) = c.validate_policy(policyType="IDENTITY_POLICY", policyDocument=with_principal)["findings"]
    assert f["issueCode"] == "UNSUPPORTED_PRINCIPAL"
    assert spanned(with_principal, f["locations"][0]) == '"Principal"'
    trust = doc({"Effect": "Allow", "Principal": {"AWS": A.root_arn}, "Action": "sts:AssumeRole"})
    assert c.validate_policy(policyType="RESOURCE_POLICY", policyDocument=trust, validatePolicyResourceType="AWS::IAM::AssumeRolePolicyDocument")["findings"] == []
    broken = '{\n  "Version": "2012-10-17",\n  "Statement": [ oops ]\n}'
    (f,) = c.validate_policy(policyType="IDENTITY_POLICY", policyDocument=broken)["findings"]
    assert f["issueCode"] == "JSON_SYNTAX_ERROR"
    start = f["locations"][0]["span"]["start"]
    assert (start["line"], start["column"]) == (3, 17)
    assert spanned(broken, f["locations"][0]) == "o"
    scp = doc(deny("kms:ScheduleKeyDeletion"))
    assert c.validate_policy(policyType="SERVICE_CONTROL_POLICY", policyDocument=scp)["findings"] == []


def test_validate_policy_bad_input_is_a_validation_exception_with_the_field(srv, A):
    c = make_client(srv.endpoint, A.id, "x", service="accessanalyzer", validate=False)
    e = expect_error(c.validate_policy, VE, policyType="NOPE", policyDocument="{}")
    r = e.response
    assert r["reason"] == "fieldValidationFailed"
    assert r["fieldList"][0]["name"] == "policyType"
    e = expect_error(
        c.validate_policy, VE, policyType="RESOURCE_POLICY", policyDocument="{}", validatePolicyResourceType="AWS::Nope::Thing"
    )
    assert e.response["fieldList"][0]["name"] == "validatePolicyResourceType"
    e = expect_error(c.validate_policy, VE, policyType="IDENTITY_POLICY", policyDocument="{}", nextToken="999")
    assert e.response["fieldList"][0]["name"] == "nextToken"
    e = expect_error(c.validate_policy, VE, policyType="IDENTITY_POLICY", policyDocument="{}", maxResults=0)
    assert e.response["fieldList"][0]["name"] == "maxResults"
    e = expect_error(c.list_analyzers, VE, type="SOMETIMES")
    assert e.response["fieldList"][0]["name"] == "type"
    e = expect_error(c.create_analyzer, VE, analyzerName="n", type="SOMETIMES")
    assert e.response["fieldList"][0]["name"] == "type"
    e = expect_error(c.create_analyzer, VE, analyzerName="n")
    assert e.response["fieldList"][0] == {"name": "type", "message": "Member must not be null"}
    big = doc(*[allow(f"s3:GetObject{i}", f"arn:aws:s3:::b{i}/*") for i in range(700)])
    e = expect_error(c.validate_policy, VE, policyType="IDENTITY_POLICY", policyDocument=big)
    assert e.response["fieldList"][0]["name"] == "policyDocument"


def test_operations_not_served_yet_and_unknown_routes(srv, A):
    c = aa(A)
    for call, kw in [
        (c.list_archive_rules, {"analyzerName": "x"}),
        (c.get_analyzed_resource, {"analyzerArn": f"arn:aws:access-analyzer:{REGION}:{A.id}:analyzer/x", "resourceArn": A.key_arn("k")}),
    ]:
        e = expect_error(call, VE, **kw)
        assert e.response["reason"] == "notSupported"
        assert "not implemented" in e.response["Error"]["Message"]
    # A path that is no operation, signed for the service.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(srv.endpoint)
    for method, path, body in [("GET", "/analyzer-nope", b""), ("PUT", "/analyzer", b"[1"), ("GET", "/analyzer", b"")]:
        req = AWSRequest(method=method, url=srv.endpoint + path, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(Credentials(A.id, "x"), "access-analyzer", REGION).add_auth(req)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
        try:
            conn.request(method, path, body=body, headers=dict(req.headers.items()))
            resp = conn.getresponse()
            status, headers, data = resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(resp.read())
        finally:
            conn.close()
        if path == "/analyzer" and method == "GET":
            assert status == 200 and "analyzers" in data
            continue
        assert status == 400 and headers["x-amzn-errortype"] == VE, (status, headers, data)
        assert data["reason"] == ("unknownOperation" if path != "/analyzer" else "cannotParse"), data
    # Unsigned: the service's authentication error, not the KMS fallback.
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    try:
        conn.request("GET", "/analyzer")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 403 and resp.getheader("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    finally:
        conn.close()


# --- custom policy checks (the decision procedure of crates/reach) ---------------------

OTHER = "999999999999"


def test_check_no_public_access_fails_a_public_key_policy_at_its_statement_and_passes_one_account(A):
    c = aa(A)
    root = f"arn:aws:iam::{A.id}:root"
    public = doc(kp_allow(root, "kms:*"), {**kp_allow("*", ["kms:Decrypt"]), "Sid": "Everyone"})
    r = c.check_no_public_access(policyDocument=public, resourceType="AWS::KMS::Key")
    assert r["result"] == "FAIL", r
    (reason,) = r["reasons"]
    assert (reason["statementIndex"], reason["statementId"]) == (1, "Everyone"), reason
    # The witness: a concrete request, a principal no policy names, kms:Decrypt.
    assert "kms:Decrypt" in reason["description"] and f":key/" in reason["description"], reason
    assert A.id not in reason["description"].split(" may ")[0], reason
    one_account = doc(kp_allow(root, "kms:*"), kp_allow(f"arn:aws:iam::{OTHER}:root", ["kms:Decrypt"]))
    r = c.check_no_public_access(policyDocument=one_account, resourceType="AWS::KMS::Key")
    assert (r["result"], r["reasons"]) == ("PASS", []), r
    # A condition pinning the caller's account closes a "*" principal.
    pinned = doc(kp_allow("*", ["kms:Decrypt"], Condition={"StringEquals": {"kms:CallerAccount": A.id}}))
    assert c.check_no_public_access(policyDocument=pinned, resourceType="AWS::KMS::Key")["result"] == "PASS"
    # A resource type of the model that ferrokms cannot analyse; one outside the model.
    e = expect_error(c.check_no_public_access, VE, policyDocument=public, resourceType="AWS::S3::Bucket")
    assert e.response["reason"] == "notSupported"
    e = expect_error(c.check_no_public_access, VE, policyDocument=public, resourceType="AWS::Nope::Thing")
    assert e.response["reason"] == "fieldValidationFailed"
    e = expect_error(c.check_no_public_access, VE, policyDocument="{not json", resourceType="AWS::KMS::Key")
    assert e.response["reason"] == "fieldValidationFailed"


def trust(*statements) -> str:
    """A trust policy of the given statements (no Resource element)."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_check_no_public_access_on_a_role_trust_policy(A):
    """AWS::IAM::AssumeRolePolicyDocument: the trust policy of a role of
    the caller's account, decided by ferrokms's own AssumeRole rule over
    every request (crates/reach, role_external_access)."""
    c = aa(A)
    rt = "AWS::IAM::AssumeRolePolicyDocument"
    anyone = trust(
        {"Sid": "Own", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A.id}:root"}, "Action": "sts:AssumeRole"},
        {"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"},
    )
    r = c.check_no_public_access(policyDocument=anyone, resourceType=rt)
    assert r["result"] == "FAIL", r
    (reason,) = r["reasons"]
    assert (reason["statementIndex"], reason["statementId"]) == (1, "Anyone"), reason
    d = reason["description"]
    assert "sts:AssumeRole" in d and f"arn:aws:iam::{A.id}:role/" in d and "trust policy" in d, d
    assert A.id not in d.split(" may ")[0], d
    own = trust({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{A.id}:root"}, "Action": "sts:AssumeRole"})
    r = c.check_no_public_access(policyDocument=own, resourceType=rt)
    assert (r["result"], r["reasons"]) == ("PASS", []), r
    # A named other account is external, not public; a service is neither.
    named = trust(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]},
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
    )
    assert c.check_no_public_access(policyDocument=named, resourceType=rt)["result"] == "PASS"
    # A condition pinning the caller's account closes a "*" principal.
    pinned = trust({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:PrincipalAccount": A.id}}})
    assert c.check_no_public_access(policyDocument=pinned, resourceType=rt)["result"] == "PASS"
    # Web identities of any provider through "*": public, the witness a federated identity.
    web = trust({"Sid": "Web", "Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRoleWithWebIdentity"})
    r = c.check_no_public_access(policyDocument=web, resourceType=rt)
    assert r["result"] == "FAIL", r
    (reason,) = r["reasons"]
    assert "sts:AssumeRoleWithWebIdentity" in reason["description"], reason
    assert (reason["statementIndex"], reason["statementId"]) == (0, "Web"), reason
    # An unknown construct never passes; a trust policy needs a Principal.
    tag = trust({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole",
                 "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}})
    r = c.check_no_public_access(policyDocument=tag, resourceType=rt)
    assert r["result"] == "FAIL" and "could not prove" in r["message"], r
    e = expect_error(c.check_no_public_access, VE, policyDocument=doc(allow("sts:AssumeRole")), resourceType=rt)
    assert e.response["reason"] == "fieldValidationFailed"


def test_check_access_not_granted_identity_and_key_policies(A):
    c = aa(A)
    ident = doc(allow(["kms:Encrypt", "kms:DescribeKey"]), {**allow("kms:Decrypt", f"arn:aws:kms:{REGION}:{A.id}:key/*"), "Sid": "Dec"})
    r = c.check_access_not_granted(policyDocument=ident, policyType="IDENTITY_POLICY", access=[{"actions": ["kms:Decrypt"]}])
    assert r["result"] == "FAIL", r
    (reason,) = r["reasons"]
    assert (reason["statementIndex"], reason["statementId"]) == (1, "Dec"), reason
    assert "kms:Decrypt" in reason["description"], reason
    r = c.check_access_not_granted(policyDocument=ident, policyType="IDENTITY_POLICY", access=[{"actions": ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy"]}])
    assert (r["result"], r["reasons"]) == ("PASS", []), r
    # Decrypt on a key of another account is not granted by a resource pattern of this one.
    other_key = f"arn:aws:kms:{REGION}:{OTHER}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    r = c.check_access_not_granted(
        policyDocument=doc(allow("kms:Decrypt", f"arn:aws:kms:{REGION}:{A.id}:key/*")),
        policyType="IDENTITY_POLICY",
        access=[{"actions": ["kms:Decrypt"], "resources": [other_key]}],
    )
    assert r["result"] == "PASS", r
    # ... and is by "Resource": "*" (the identity side of a cross-account use).
    r = c.check_access_not_granted(
        policyDocument=doc(allow("kms:Decrypt")), policyType="IDENTITY_POLICY", access=[{"actions": ["kms:Decrypt"], "resources": [other_key]}]
    )
    assert r["result"] == "FAIL" and other_key in r["reasons"][0]["description"], r
    # At most 10 distinct keys in one request.
    many = [f"arn:aws:kms:{REGION}:{A.id}:key/{uuid.uuid4()}" for _ in range(11)]
    e = expect_error(c.check_access_not_granted, VE, policyDocument=ident, policyType="IDENTITY_POLICY", access=[{"actions": ["kms:Decrypt"], "resources": many}])
    assert e.response["reason"] == "fieldValidationFailed"
    # A key policy (RESOURCE_POLICY): a grant of ReEncrypt* to another account.
    kp = doc(kp_allow(f"arn:aws:iam::{A.id}:user/admin", ["kms:DescribeKey"]), {**kp_allow(f"arn:aws:iam::{OTHER}:root", "kms:ReEncrypt*"), "Sid": "Other"})
    r = c.check_access_not_granted(policyDocument=kp, policyType="RESOURCE_POLICY", access=[{"actions": ["kms:ReEncryptFrom"]}])
    assert r["result"] == "FAIL" and r["reasons"][0]["statementId"] == "Other", r
    assert OTHER in r["reasons"][0]["description"], r
    r = c.check_access_not_granted(policyDocument=kp, policyType="RESOURCE_POLICY", access=[{"actions": ["kms:Decrypt", "kms:Sign"]}])
    assert r["result"] == "PASS", r
    # Only KMS actions can be analysed.
    e = expect_error(c.check_access_not_granted, VE, policyDocument=ident, policyType="IDENTITY_POLICY", access=[{"actions": ["s3:GetObject"]}])
    assert e.response["reason"] == "notSupported"


def test_check_no_new_access_adding_a_principal_fails_removing_one_passes(A):
    c = aa(A)
    root = f"arn:aws:iam::{A.id}:root"
    old = doc(kp_allow(root, "kms:*"))
    new = doc(kp_allow(root, "kms:*"), {**kp_allow(f"arn:aws:iam::{OTHER}:root", ["kms:Decrypt"]), "Sid": "AddOther"})
    r = c.check_no_new_access(existingPolicyDocument=old, newPolicyDocument=new, policyType="RESOURCE_POLICY")
    assert r["result"] == "FAIL", r
    (reason,) = r["reasons"]
    assert (reason["statementIndex"], reason["statementId"]) == (1, "AddOther"), reason
    assert OTHER in reason["description"] and "kms:Decrypt" in reason["description"], reason
    r = c.check_no_new_access(existingPolicyDocument=new, newPolicyDocument=old, policyType="RESOURCE_POLICY")
    assert (r["result"], r["reasons"]) == ("PASS", []), r
    # The reason names the statement the new policy added, not an older one
    # that also applies to the witness once a Deny is gone.
    everyone = {**kp_allow("*", ["kms:Decrypt"]), "Sid": "Everyone"}
    fenced = doc(root_st := kp_allow(root, "kms:*"), everyone, kp_deny("*", "kms:Decrypt", Condition={"StringNotEquals": {"kms:CallerAccount": A.id}}))
    opened = doc(root_st, everyone, {**kp_allow("*", ["kms:Decrypt"]), "Sid": "Again"})
    r = c.check_no_new_access(existingPolicyDocument=fenced, newPolicyDocument=opened, policyType="RESOURCE_POLICY")
    assert r["result"] == "FAIL" and (r["reasons"][0]["statementIndex"], r["reasons"][0]["statementId"]) == (2, "Again"), r
    # Identity policies: widening an action list is new access, narrowing is not.
    narrow, wide = doc(allow("kms:Encrypt")), doc(allow(["kms:Encrypt", "kms:Decrypt"]))
    assert c.check_no_new_access(existingPolicyDocument=narrow, newPolicyDocument=wide, policyType="IDENTITY_POLICY")["result"] == "FAIL"
    assert c.check_no_new_access(existingPolicyDocument=wide, newPolicyDocument=narrow, policyType="IDENTITY_POLICY")["result"] == "PASS"


def test_an_unknown_construct_never_passes(A):
    """A policy variable in a condition is outside the encoding: the check
    cannot be proven, so the answer is FAIL with a message saying so."""
    c = aa(A)
    var = doc(kp_allow("*", ["kms:Decrypt"], Condition={"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}))
    r = c.check_no_public_access(policyDocument=var, resourceType="AWS::KMS::Key")
    assert r["result"] == "FAIL" and "could not prove" in r["message"], r
    assert "variable" in r["message"] and "statementIndex" not in r["reasons"][0], r
    # A key that identifies the caller more finely than the encoding: unknown too.
    tag = doc(kp_allow("*", ["kms:Decrypt"], Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))
    r = c.check_no_public_access(policyDocument=tag, resourceType="AWS::KMS::Key")
    assert r["result"] == "FAIL" and "could not prove" in r["message"], r
    r = c.check_access_not_granted(policyDocument=var, policyType="RESOURCE_POLICY", access=[{"actions": ["kms:Decrypt"]}])
    assert r["result"] == "FAIL" and "could not prove" in r["message"], r
    r = c.check_no_new_access(existingPolicyDocument=doc(kp_allow(f"arn:aws:iam::{A.id}:root", "kms:*")), newPolicyDocument=var, policyType="RESOURCE_POLICY")
    assert r["result"] == "FAIL", r


def test_an_iam_user_needs_the_check_actions(A):
    u, c = user_client(A)
    e = expect_error(c.check_no_public_access, AD, 403, policyDocument=doc(kp_allow("*", "kms:Decrypt")), resourceType="AWS::KMS::Key")
    assert "access-analyzer:CheckNoPublicAccess" in e.response["Error"]["Message"]
    u2, c2 = user_client(A, allow("access-analyzer:CheckNoPublicAccess"))
    assert c2.check_no_public_access(policyDocument=doc(kp_allow("*", "kms:Decrypt")), resourceType="AWS::KMS::Key")["result"] == "FAIL"


# --- analyzers ----------------------------------------------------------------------


def test_analyzer_lifecycle_tags_conflict_quota_and_not_found(B):
    c = aa(B)
    arn = c.create_analyzer(analyzerName="main", type="ACCOUNT", tags={"team": "sec"}, clientToken="tok-1")["arn"]
    assert arn == f"arn:aws:access-analyzer:{REGION}:{B.id}:analyzer/main"
    # A retry with the same client token answers the same analyzer.
    assert c.create_analyzer(analyzerName="main", type="ACCOUNT", clientToken="tok-1")["arn"] == arn
    a = c.get_analyzer(analyzerName="main")["analyzer"]
    assert (a["arn"], a["name"], a["type"], a["status"], a["tags"]) == (arn, "main", "ACCOUNT", "ACTIVE", {"team": "sec"})
    assert abs(a["createdAt"].timestamp() - time.time()) < 120
    assert [x["arn"] for x in c.list_analyzers(type="ACCOUNT")["analyzers"]] == [arn]
    assert c.list_analyzers(type="ORGANIZATION")["analyzers"] == []
    e = expect_error(c.create_analyzer, "ConflictException", 409, analyzerName="main", type="ACCOUNT")
    assert e.response["resourceId"] == "main"
    e = expect_error(c.create_analyzer, "ServiceQuotaExceededException", 402, analyzerName="second", type="ACCOUNT")
    e = expect_error(c.create_analyzer, VE, analyzerName="org", type="ORGANIZATION")
    assert "organization" in e.response["Error"]["Message"]
    e = expect_error(c.create_analyzer, VE, analyzerName="bad/name", type="ACCOUNT")
    assert e.response["fieldList"][0]["name"] == "analyzerName"
    e = expect_error(c.create_analyzer, VE, analyzerName="t", type="ACCOUNT", tags={"aws:x": "y"})
    c.tag_resource(resourceArn=arn, tags={"env": "prod"})
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "sec", "env": "prod"}
    c.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert c.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "prod"}
    expect_error(c.get_analyzer, "ResourceNotFoundException", 404, analyzerName="nope")
    expect_error(c.list_tags_for_resource, "ResourceNotFoundException", 404, resourceArn=arn.replace("/main", "/nope"))
    # Another Region is another set of analyzers.
    west = boto3.session.Session(region_name="us-west-2").client(
        "accessanalyzer", endpoint_url=B.srv.endpoint, aws_access_key_id=B.id, aws_secret_access_key="x"
    )
    assert west.list_analyzers()["analyzers"] == []
    c.delete_analyzer(analyzerName="main")
    assert c.list_analyzers()["analyzers"] == []
    expect_error(c.delete_analyzer, "ResourceNotFoundException", 404, analyzerName="main")
    # The quota counts live analyzers: a new one may be made now.
    c.create_analyzer(analyzerName="again", type="ACCOUNT")
    c.delete_analyzer(analyzerName="again")


# --- authorization -------------------------------------------------------------------


def test_an_iam_user_needs_the_access_analyzer_actions(A):
    doc_text = doc(allow("s3:GetObject"))
    u, c = user_client(A)
    e = expect_error(c.validate_policy, AD, 403, policyType="IDENTITY_POLICY", policyDocument=doc_text)
    assert e.response["Error"]["Message"] == (
        f"User: {u.arn} is not authorized to perform: access-analyzer:ValidatePolicy on resource: * "
        "because no identity-based policy allows the access-analyzer:ValidatePolicy action"
    )
    name = uid("an")
    e = expect_error(c.create_analyzer, AD, 403, analyzerName=name, type="ACCOUNT")
    assert f"on resource: arn:aws:access-analyzer:{REGION}:{A.id}:analyzer/{name}" in e.response["Error"]["Message"]
    # Allowed: ValidatePolicy, and analyzers named ok-* only; an explicit deny wins.
    u2, c2 = user_client(
        A,
        allow(["access-analyzer:ValidatePolicy", "access-analyzer:ListAnalyzers"]),
        allow("access-analyzer:*Analyzer", f"arn:aws:access-analyzer:{REGION}:{A.id}:analyzer/ok-*"),
        deny("access-analyzer:DeleteAnalyzer"),
    )
    assert c2.validate_policy(policyType="IDENTITY_POLICY", policyDocument=doc_text)["findings"] == []
    expect_error(c2.create_analyzer, AD, 403, analyzerName="other", type="ACCOUNT")
    arn = c2.create_analyzer(analyzerName="ok-1", type="ACCOUNT")["arn"]
    assert c2.get_analyzer(analyzerName="ok-1")["analyzer"]["arn"] == arn
    e = expect_error(c2.delete_analyzer, AD, 403, analyzerName="ok-1")
    assert "with an explicit deny in an identity-based policy" in e.response["Error"]["Message"]
    # Tags need their own actions.
    expect_error(c2.tag_resource, AD, 403, resourceArn=arn, tags={"a": "b"})
    aa(A).delete_analyzer(analyzerName="ok-1")


def test_another_accounts_analyzer_is_refused_even_to_its_root(A, B):
    a_arn = aa(A).create_analyzer(analyzerName=uid("x"), type="ACCOUNT")["arn"]
    try:
        b = aa(B)
        for call, kw in [
            (b.list_tags_for_resource, {"resourceArn": a_arn}),
            (b.tag_resource, {"resourceArn": a_arn, "tags": {"k": "v"}}),
            (b.untag_resource, {"resourceArn": a_arn, "tagKeys": ["k"]}),
        ]:
            e = expect_error(call, AD, 403, **kw)
            assert e.response["Error"]["Message"].startswith(f"User: arn:aws:iam::{B.id}:root is not authorized to perform: access-analyzer:")
        # B's own view never shows A's analyzer.
        assert all(x["arn"] != a_arn for x in b.list_analyzers()["analyzers"])
        expect_error(b.get_analyzer, "ResourceNotFoundException", 404, analyzerName=a_arn.rsplit("/", 1)[1])
        assert aa(A).list_tags_for_resource(resourceArn=a_arn)["tags"] == {}
    finally:
        aa(A).delete_analyzer(analyzerName=a_arn.rsplit("/", 1)[1])


# --- durability and audit (a server on a data dir) ----------------------------------


def test_analyzers_survive_a_restart_and_calls_are_audited_with_their_decision(server_factory, ferrokms_bin):
    s = server_factory()
    c = s.client(service="accessanalyzer")
    arn = c.create_analyzer(analyzerName="kept", type="ACCOUNT", tags={"k": "v"})["arn"]
    iam = s.client(service="iam")
    name = uid("u")
    iam.create_user(UserName=name)
    k = iam.create_access_key(UserName=name)["AccessKey"]
    user = client(s.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="accessanalyzer")
    e = expect_error(user.get_analyzer, AD, 403, analyzerName="kept")
    rid = e.response["ResponseMetadata"]["RequestId"]
    s.restart()
    c = s.client(service="accessanalyzer")
    assert c.get_analyzer(analyzerName="kept")["analyzer"]["tags"] == {"k": "v"}
    assert c.list_analyzers()["analyzers"][0]["arn"] == arn
    time.sleep(0.2)
    p = subprocess.run(
        [str(ferrokms_bin), "audit", "--data-dir", str(s.data_dir), "--json"], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    recs = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    r = next(r for r in recs if r["requestID"] == rid)
    assert r["eventSource"].startswith("access-analyzer") and r["eventName"] == "GetAnalyzer"
    assert r["errorCode"] == AD and r["requestParameters"]["analyzerName"] == "kept"
    d = r["ferrokmsAuthorization"][0]
    assert d["allowed"] is False and d["action"] == "access-analyzer:GetAnalyzer"
    assert d["resource"] == arn


# --- the aws CLI ---------------------------------------------------------------------


def test_aws_cli_validate_policy_analyzers_and_checks(aws, tmp_path):
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}]}))
    r = aws("accessanalyzer", "validate-policy", "--policy-type", "IDENTITY_POLICY", "--policy-document", f"file://{p}")
    assert r.returncode == 0, r.stderr
    codes = [f["issueCode"] for f in r.json()["findings"]]
    assert codes == ["PASS_ROLE_WITH_STAR_IN_RESOURCE"]
    name = uid("cli")
    r = aws("accessanalyzer", "create-analyzer", "--analyzer-name", name, "--type", "ACCOUNT")
    assert r.returncode == 0, r.stderr
    r = aws("accessanalyzer", "list-analyzers", "--type", "ACCOUNT")
    assert name in [a["name"] for a in r.json()["analyzers"]]
    r = aws("accessanalyzer", "get-analyzer", "--analyzer-name", "missing-one")
    assert r.returncode != 0 and "ResourceNotFoundException" in r.stderr
    assert aws("accessanalyzer", "delete-analyzer", "--analyzer-name", name).returncode == 0
    # The custom checks: a public key policy fails, with the statement.
    kp = tmp_path / "kp.json"
    kp.write_text(doc({**kp_allow("*", "kms:Decrypt"), "Sid": "Open"}))
    r = aws("accessanalyzer", "check-no-public-access", "--resource-type", "AWS::KMS::Key", "--policy-document", f"file://{kp}")
    assert r.returncode == 0, r.stderr
    out = r.json()
    assert out["result"] == "FAIL" and out["reasons"][0]["statementId"] == "Open", out


# --- cfn-policy-validator --------------------------------------------------------------

CFN_VALIDATOR = Path(sys.executable).parent / "cfn-policy-validator"


def run_cfn_validator(srv, account, template: dict, tmp_path, command="validate"):
    if not CFN_VALIDATOR.exists():
        pytest.skip(f"cfn-policy-validator is not installed at {CFN_VALIDATOR} (tests/e2e/requirements.txt pins it; scripts/test.sh installs it)")
    t = tmp_path / f"t-{uuid.uuid4().hex[:6]}.json"
    t.write_text(json.dumps(template))
    cfg = tmp_path / "aws-config"
    cfg.write_text("")
    env = clean_env()
    env.update(
        AWS_ENDPOINT_URL=srv.endpoint,
        AWS_ACCESS_KEY_ID=account.id,
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
    )
    p = subprocess.run(
        [str(CFN_VALIDATOR), command, "--template-path", str(t), "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return p


def managed_policy_template(statement):
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "AppPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": [statement]}},
            }
        },
    }


def test_cfn_policy_validator_fails_a_bad_identity_policy_and_passes_a_clean_one(srv, A, tmp_path):
    bad = run_cfn_validator(srv, A, managed_policy_template({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}), tmp_path)
    assert bad.returncode != 0, (bad.stdout, bad.stderr)
    report = json.loads(bad.stdout)
    (f,) = report["BlockingFindings"]
    assert (f["code"], f["findingType"]) == ("PASS_ROLE_WITH_STAR_IN_RESOURCE", "SECURITY_WARNING")
    assert f["policyName"] == "AppPolicy", f
    clean = run_cfn_validator(
        srv, A, managed_policy_template({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket/*"}), tmp_path
    )
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
    assert json.loads(clean.stdout)["BlockingFindings"] == []
    # The validator found the analyzer it needs (it creates one if there is none).
    assert aa(A).list_analyzers(type="ACCOUNT")["analyzers"]


def test_cfn_policy_validator_reports_the_external_access_of_a_kms_key_and_passes_a_clean_one(srv, A, tmp_path):
    """`cfn-policy-validator validate` runs ValidatePolicy on the key
    policy and asks CreateAccessPreview (then GetAccessPreview and
    ListAccessPreviewFindings) for each AWS::KMS::Key: a key policy that
    gives `"AWS": "*"` kms:Decrypt is reported (PUBLIC_ACCESS from
    ValidatePolicy, EXTERNAL_PRINCIPAL from the access preview's public
    finding) and fails; a key of its own account only passes."""

    def template(*statements):
        policy = {"Version": "2012-10-17", "Statement": list(statements)}
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy}}},
        }

    root = kp_allow(f"arn:aws:iam::{A.id}:root", "kms:*")
    p = run_cfn_validator(srv, A, template(root, principal_allow("*", ["kms:Decrypt"])), tmp_path)
    assert p.returncode != 0, (p.stdout, p.stderr)
    blocking = json.loads(p.stdout)["BlockingFindings"]
    codes = {f["code"] for f in blocking}
    assert {"PUBLIC_ACCESS", "EXTERNAL_PRINCIPAL"} <= codes, p.stdout
    (ext,) = [f for f in blocking if f["code"] == "EXTERNAL_PRINCIPAL"]
    assert ext["details"]["principal"] == {"AWS": "*"} and ext["details"]["isPublic"] is True, ext
    assert ext["details"]["changeType"] == "NEW" and ext["details"]["action"] == ["kms:Decrypt"]
    clean = run_cfn_validator(srv, A, template(root), tmp_path)
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
    assert json.loads(clean.stdout)["BlockingFindings"] == []
    # Another account's principal is external access too.
    other = run_cfn_validator(srv, A, template(root, kp_allow("arn:aws:iam::999999999999:root", ["kms:Encrypt"])), tmp_path)
    assert other.returncode != 0, (other.stdout, other.stderr)
    (ext,) = [f for f in json.loads(other.stdout)["BlockingFindings"] if f["code"] == "EXTERNAL_PRINCIPAL"]
    assert ext["details"]["principal"] == {"AWS": "999999999999"} and ext["details"]["isPublic"] is False, ext


def test_cfn_policy_validator_reports_a_public_role_trust_policy_and_passes_a_clean_one(srv, A, tmp_path):
    """For each AWS::IAM::Role, cfn-policy-validator asks an access preview
    of its trust policy (`iamRole`): a role any principal may assume is
    reported (EXTERNAL_PRINCIPAL, public) and fails; a role only its own
    account may assume passes."""

    def template(principal):
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"AppRole": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}},
        }

    bad = run_cfn_validator(srv, A, template({"AWS": "*"}), tmp_path)
    assert bad.returncode != 0, (bad.stdout, bad.stderr)
    ext = [f for f in json.loads(bad.stdout)["BlockingFindings"] if f["code"] == "EXTERNAL_PRINCIPAL"]
    assert ext and ext[0]["details"]["principal"] == {"AWS": "*"} and ext[0]["details"]["isPublic"] is True, bad.stdout
    assert "sts:AssumeRole" in ext[0]["details"]["action"], ext
    clean = run_cfn_validator(srv, A, template({"AWS": f"arn:aws:iam::{A.id}:root"}), tmp_path)
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
    assert json.loads(clean.stdout)["BlockingFindings"] == []


def test_cfn_policy_validator_check_no_public_access_on_key_policies(srv, A, tmp_path):
    """cfn-policy-validator's check-no-public-access calls CheckNoPublicAccess
    for each AWS::KMS::Key: a public key policy fails, a clean one passes."""

    def key_template(*statements):
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Version": "2012-10-17", "Statement": list(statements)}}}},
        }

    root = kp_allow(f"arn:aws:iam::{A.id}:root", "kms:*")
    bad = run_cfn_validator(srv, A, key_template(root, {**kp_allow("*", ["kms:Decrypt"]), "Sid": "Open"}), tmp_path, "check-no-public-access")
    assert bad.returncode != 0, (bad.stdout, bad.stderr)
    (f,) = json.loads(bad.stdout)["BlockingFindings"]
    assert f["resourceName"] == "Key" and f["findingType"] == "SECURITY_WARNING", f
    assert "public" in json.dumps(f).lower(), f
    clean = run_cfn_validator(srv, A, key_template(root), tmp_path, "check-no-public-access")
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
    assert json.loads(clean.stdout)["BlockingFindings"] == []


# --- drift guard: the routes table is the pinned botocore's model -------------------------


def test_routes_table_is_the_pinned_botocore_accessanalyzer_model():
    import re

    import botocore.session

    src = (Path(__file__).resolve().parents[2] / "crates" / "analyzer" / "src" / "routes.rs").read_text()
    table = sorted(re.findall(r'route\(\s*"([A-Z]+)",\s*"([^"]+)",\s*"([A-Za-z0-9]+)",?\s*\)', src), key=lambda r: r[2])
    model = botocore.session.get_session().get_service_model("accessanalyzer")
    want = sorted(
        ((op.http["method"], op.http["requestUri"], name) for name in model.operation_names for op in [model.operation_model(name)]),
        key=lambda r: r[2],
    )
    assert table == want, "regenerate MODEL_ROUTES in crates/analyzer/src/routes.rs from botocore's accessanalyzer model"
    assert model.metadata["signingName"] == "access-analyzer" and model.metadata["protocol"] == "rest-json"
    vsrc = (Path(__file__).resolve().parents[2] / "crates" / "analyzer" / "src" / "validate.rs").read_text()
    for value in model.shape_for("PolicyType").enum + model.shape_for("ValidatePolicyResourceType").enum:
        assert f'"{value}"' in vsrc, value


def test_metrics_count_access_analyzer_requests_and_errors(srv, A):
    import urllib.request

    c = aa(A)
    c.validate_policy(policyType="IDENTITY_POLICY", policyDocument=doc(allow("s3:GetObject")))
    expect_error(c.get_analyzer, "ResourceNotFoundException", 404, analyzerName="no-such-one")
    with urllib.request.urlopen(srv.endpoint + "/metrics", timeout=15) as r:
        text = r.read().decode()
    assert 'ferrokms_requests_total{service="access-analyzer",operation="ValidatePolicy",outcome="ok"}' in text
    assert 'ferrokms_requests_total{service="access-analyzer",operation="GetAnalyzer",outcome="client_error"}' in text
    assert 'ferrokms_errors_total{service="access-analyzer",code="ResourceNotFoundException"}' in text


# --- several nodes on one PostgreSQL --------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("FERROKMS_TEST_PG_URL"), reason="needs FERROKMS_TEST_PG_URL (scripts/test.sh)")
def test_two_nodes_agree_on_analyzers_and_the_quota_holds_across_them(ferrokms_bin, tmp_path):
    import concurrent.futures

    from botocore.exceptions import ClientError

    from conftest import new_database
    from test_cluster import node

    url = new_database()
    a = node(ferrokms_bin, tmp_path, "a", url).start()
    b = node(ferrokms_bin, tmp_path, "b", url, root_key=a.data_dir / "root.key").start()
    try:
        ka, kb = (n.client(*a.profile_credentials(), service="accessanalyzer") for n in (a, b))

        def create(c, name):
            try:
                return c.create_analyzer(analyzerName=name, type="ACCOUNT")["arn"]
            except ClientError as e:
                return e.response["Error"]["Code"]

        for round_ in range(3):
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                results = list(pool.map(lambda args: create(*args), [(ka, f"a{round_}"), (kb, f"b{round_}")]))
            assert sorted(r.startswith("arn:") for r in results) == [False, True], results
            assert "ServiceQuotaExceededException" in results
            made = next(r for r in results if r.startswith("arn:")).rsplit("/", 1)[1]
            # The next request on the other node sees it, then its deletion.
            for c in (ka, kb):
                assert [x["name"] for x in c.list_analyzers()["analyzers"]] == [made]
            ka.delete_analyzer(analyzerName=made)
            assert kb.list_analyzers()["analyzers"] == []
    finally:
        a.stop()
        b.stop()


# --- tf-policy-validator ------------------------------------------------------------------

TF_VALIDATOR = Path(sys.executable).parent / "tf-policy-validator"

# tf-policy-validator's own configuration (its --config option). Its
# default.yaml names an aws_kms_key by an attribute `fakeName` that no plan
# has (0.0.9 stops with KeyError on any key, whatever the endpoint), so the
# test gives the two resource types it uses a name attribute of their own.
TF_CONFIG = """\
arnServiceMap:
  aws_kms_key: description?key
  aws_iam_policy: name?fakename
iamPolicyAttributes:
  aws_kms_key: policy
  aws_iam_policy: policy
"""


def tf_plan(resource_type, name, values):
    """A Terraform plan in `terraform show -json` form with one resource to create."""
    res = {
        "address": f"{resource_type}.{name}",
        "mode": "managed",
        "type": resource_type,
        "name": name,
        "provider_name": "registry.terraform.io/hashicorp/aws",
        "schema_version": 0,
        "values": values,
    }
    change = {"actions": ["create"], "before": None, "after": values, "after_unknown": {}}
    return {
        "format_version": "1.2",
        "terraform_version": "1.5.7",
        "planned_values": {"root_module": {"resources": [res]}},
        "resource_changes": [{k: res[k] for k in ("address", "mode", "type", "name", "provider_name")} | {"change": change}],
        "configuration": {"root_module": {"resources": [{k: res[k] for k in ("address", "mode", "type", "name")}]}},
    }


def run_tf_validator(srv, account, plan: dict, tmp_path):
    if not TF_VALIDATOR.exists():
        pytest.skip(f"tf-policy-validator is not installed at {TF_VALIDATOR} (tests/e2e/requirements.txt pins it; scripts/test.sh installs it)")
    p = tmp_path / f"plan-{uuid.uuid4().hex[:6]}.json"
    p.write_text(json.dumps(plan))
    cfg = tmp_path / "tf-config.yaml"
    cfg.write_text(TF_CONFIG)
    aws_cfg = tmp_path / "aws-config"
    aws_cfg.write_text("")
    env = clean_env()
    env.update(
        AWS_ENDPOINT_URL=srv.endpoint,
        AWS_ACCESS_KEY_ID=account.id,
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(aws_cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
    )
    return subprocess.run(
        [str(TF_VALIDATOR), "validate", "--config", str(cfg), "--template-path", str(p), "--region", REGION],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=str(tmp_path),
    )


def test_tf_policy_validator_fails_a_public_key_policy_and_passes_a_clean_one(srv, A, tmp_path):
    admin = kp_allow(f"arn:aws:iam::{A.id}:root", "kms:*")
    public = doc(admin, kp_allow("*", ["kms:Decrypt"]))
    bad = run_tf_validator(srv, A, tf_plan("aws_kms_key", "key", {"description": "app", "policy": public}), tmp_path)
    assert bad.returncode != 0, (bad.stdout, bad.stderr)
    (f,) = json.loads(bad.stdout)["BlockingFindings"]
    assert (f["code"], f["findingType"], f["policyName"]) == ("PUBLIC_ACCESS", "SECURITY_WARNING", "aws_kms_key.key")
    clean = run_tf_validator(srv, A, tf_plan("aws_kms_key", "key", {"description": "app", "policy": doc(admin)}), tmp_path)
    assert clean.returncode == 0, (clean.stdout, clean.stderr)
    assert json.loads(clean.stdout)["BlockingFindings"] == []
    passrole = doc(allow("iam:PassRole"))
    bad = run_tf_validator(srv, A, tf_plan("aws_iam_policy", "p", {"name": "p", "path": "/", "policy": passrole}), tmp_path)
    assert bad.returncode != 0, (bad.stdout, bad.stderr)
    assert [f["code"] for f in json.loads(bad.stdout)["BlockingFindings"]] == ["PASS_ROLE_WITH_STAR_IN_RESOURCE"]


def test_dev_reset_of_everything_deletes_analyzers(server_factory):
    import urllib.request

    s = server_factory(in_memory=True, dev=True)
    c = make_client(s.endpoint, "123456789012", "x", service="accessanalyzer")
    c.create_analyzer(analyzerName="before-reset", type="ACCOUNT")
    req = urllib.request.Request(s.endpoint + "/_localstack/state/kms/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=15).read()
    assert [a["name"] for a in c.list_analyzers()["analyzers"]] == ["before-reset"], "a KMS-only reset keeps them"
    req = urllib.request.Request(s.endpoint + "/moto-api/reset", method="POST", data=b"")
    urllib.request.urlopen(req, timeout=15).read()
    assert c.list_analyzers()["analyzers"] == []
