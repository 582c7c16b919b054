"""CloudTrail's LookupEvents on the ferrokms endpoint (AWS JSON 1.1,
signing name cloudtrail) over the server's audit trail: boto3's
`cloudtrail` client and `aws cloudtrail lookup-events`, the lookup
attributes, time range and paging, each denial's explanation in
CloudTrailEvent, authorization through the one path (a user needs
cloudtrail:LookupEvents), and an account never sees another's events,
root included."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from accounts import client
from conftest import REGION, clean_env, expect_error
from policies import allow

# A data dir (the trail is written there) and --dev's accounts (A, B).
SERVER_ARGS = ["--dev"]
AD = "AccessDeniedException"


def trail(account, validate=True):
    if not validate:
        from botocore.config import Config

        import boto3

        return boto3.session.Session().client(
            "cloudtrail",
            endpoint_url=account.srv.endpoint,
            aws_access_key_id=account.id,
            aws_secret_access_key="x",
            region_name=REGION,
            config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
        )
    return client(account.srv.endpoint, account.id, "x", service="cloudtrail")


def events(ct, **kw):
    """Every event, through boto3's paginator (MaxResults/NextToken)."""
    out = []
    for page in ct.get_paginator("lookup_events").paginate(**kw):
        out.extend(page["Events"])
    return out


def by_resource(key_id):
    return {"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": key_id}]}


def wait_for(fn, what):
    """The trail is written a few milliseconds after the answer: polls
    fn() (bounded: 50 tries, 5 s) until it returns something true."""
    deadline = time.monotonic() + 5
    for _ in range(50):
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    pytest.fail(f"not in the trail within 5 s: {what}")


@pytest.fixture(scope="module")
def denied(A):
    """A key of A, encrypted with by A's root, then refused to a user of
    A with no policy: (key id, user)."""
    key = A.key()["KeyId"]
    A.kms.encrypt(KeyId=key, Plaintext=b"x")
    u = A.user()
    with pytest.raises(Exception):
        u.kms.encrypt(KeyId=key, Plaintext=b"x")
    return key, u


def test_the_keys_events_come_newest_first_with_cloudtrails_members(A, denied):
    key, u = denied
    ct = trail(A)
    got = wait_for(
        lambda: [e for e in events(ct, **by_resource(key)) if e["EventName"] == "Encrypt"][:2]
        if len([e for e in events(ct, **by_resource(key)) if e["EventName"] == "Encrypt"]) >= 2
        else None,
        "the two Encrypt calls",
    )
    refused, allowed = got
    assert refused["EventTime"] >= allowed["EventTime"]
    assert refused["Username"] == u.name and allowed["Username"] == "root"
    assert refused["EventSource"] == "kms.amazonaws.com" and refused["ReadOnly"] == "true"
    assert refused["AccessKeyId"] == u.creds["AccessKeyId"]
    assert refused["Resources"] == [{"ResourceType": "AWS::KMS::Key", "ResourceName": A.key_arn(key)}]
    record = json.loads(refused["CloudTrailEvent"])
    assert record["eventID"] == refused["EventId"]
    assert record["errorCode"] == AD
    assert u.arn in record["errorMessage"]
    assert record["ferrokmsAuthorization"][0]["allowed"] is False
    # What would allow it, in `ferrokms policy explain`'s words.
    assert record["ferrokmsExplanation"], record
    assert any("kms:Encrypt" in s and u.arn in s for s in record["ferrokmsExplanation"])
    ok = json.loads(allowed["CloudTrailEvent"])
    assert "errorCode" not in ok and "ferrokmsExplanation" not in ok
    # The key id or its ARN name the resource.
    assert [e["EventId"] for e in events(ct, **by_resource(A.key_arn(key)))] == [
        e["EventId"] for e in events(ct, **by_resource(key))
    ]


def test_every_lookup_attribute_filters(A, denied):
    key, u = denied
    ct = trail(A)
    mine = wait_for(lambda: events(ct, **by_resource(key)), "the key's events")
    one = mine[0]
    cases = {
        "EventId": one["EventId"],
        "EventName": "Encrypt",
        "Username": u.name,
        "AccessKeyId": u.creds["AccessKeyId"],
        "EventSource": "kms.amazonaws.com",
        "ResourceType": "AWS::KMS::Key",
        "ReadOnly": "false",
    }
    for k, v in cases.items():
        got = events(ct, LookupAttributes=[{"AttributeKey": k, "AttributeValue": v}])
        assert got, k
        for e in got:
            if k == "EventId":
                assert e["EventId"] == v
            elif k == "EventName":
                assert e["EventName"] == v
            elif k == "Username":
                assert e["Username"] == v
            elif k == "AccessKeyId":
                assert e["AccessKeyId"] == v
            elif k == "EventSource":
                assert e["EventSource"] == v
            elif k == "ResourceType":
                assert any(r["ResourceType"] == v for r in e["Resources"])
            else:
                assert e["ReadOnly"] == "false"
    assert [e["EventId"] for e in events(ct, LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": one["EventId"]}])] == [one["EventId"]]


def test_time_range_and_paging_are_newest_first_without_repeats(A):
    ct = trail(A)
    key = A.key()["KeyId"]
    for _ in range(7):
        A.kms.describe_key(KeyId=key)
    got = wait_for(
        lambda: (lambda es: es if len(es) >= 7 else None)(events(ct, **by_resource(key))),
        "the 7 DescribeKey events of the key",
    )
    pages = list(ct.get_paginator("lookup_events").paginate(PaginationConfig={"PageSize": 3}, **by_resource(key)))
    assert all(len(p["Events"]) <= 3 for p in pages) and len(pages) >= 3
    paged = [e["EventId"] for p in pages for e in p["Events"]]
    assert paged == [e["EventId"] for e in got]
    assert len(set(paged)) == len(paged)
    times = [e["EventTime"] for e in got]
    assert times == sorted(times, reverse=True)
    newest = got[0]["EventTime"]
    assert events(ct, StartTime=newest.timestamp() + 3600, **by_resource(key)) == []
    assert len(events(ct, EndTime=newest.timestamp() - 3600, **by_resource(key))) == 0
    assert len(events(ct, StartTime=newest.timestamp() - 3600, EndTime=newest.timestamp() + 1, **by_resource(key))) == len(got)


def test_bad_input_gets_cloudtrails_errors(A):
    ct = trail(A, validate=False)
    expect_error(ct.lookup_events, "InvalidMaxResultsException", MaxResults=51)
    expect_error(ct.lookup_events, "InvalidMaxResultsException", MaxResults=0)
    expect_error(
        ct.lookup_events,
        "InvalidLookupAttributesException",
        LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "Encrypt"},
            {"AttributeKey": "EventName", "AttributeValue": "Decrypt"},
        ],
    )
    expect_error(
        ct.lookup_events,
        "InvalidLookupAttributesException",
        LookupAttributes=[{"AttributeKey": "Colour", "AttributeValue": "red"}],
    )
    expect_error(ct.lookup_events, "InvalidTimeRangeException", StartTime=2_000_000_000, EndTime=1_000_000_000)
    expect_error(ct.lookup_events, "InvalidNextTokenException", NextToken="not-a-token")
    expect_error(ct.lookup_events, "InvalidEventCategoryException", EventCategory="data")
    assert ct.lookup_events(EventCategory="insight")["Events"] == []


def test_another_accounts_events_are_never_seen_even_by_its_root(A, B, denied):
    key, _ = denied
    a_events = wait_for(lambda: events(trail(A), **by_resource(key)), "A's events")
    B.kms.list_keys()
    b_ct = trail(B)
    wait_for(lambda: events(b_ct, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "ListKeys"}]), "B's ListKeys")
    seen = events(b_ct)
    assert seen
    for e in seen:
        assert json.loads(e["CloudTrailEvent"])["userIdentity"]["accountId"] == B.id
    assert events(b_ct, **by_resource(key)) == []
    for e in a_events[:3]:
        assert events(b_ct, LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": e["EventId"]}]) == []
    # And A sees none of B's.
    for e in events(trail(A)):
        assert json.loads(e["CloudTrailEvent"])["userIdentity"]["accountId"] == A.id


def test_a_user_needs_cloudtrail_lookup_events_and_the_call_is_audited(A):
    nobody = A.user()
    ct = client(A.srv.endpoint, nobody.creds["AccessKeyId"], nobody.creds["SecretAccessKey"], service="cloudtrail")
    err = expect_error(ct.lookup_events, AD)
    assert "cloudtrail:LookupEvents" in str(err) and nobody.arn in str(err)
    reader = A.user(allow("cloudtrail:LookupEvents", "*"))
    ct = client(A.srv.endpoint, reader.creds["AccessKeyId"], reader.creds["SecretAccessKey"], service="cloudtrail")
    assert ct.lookup_events(MaxResults=1)["Events"]
    got = wait_for(
        lambda: events(trail(A), LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "LookupEvents"}]),
        "the LookupEvents calls",
    )
    users = {e["Username"] for e in got}
    assert {nobody.name, reader.name} <= users
    refused = next(e for e in got if e["Username"] == nobody.name)
    record = json.loads(refused["CloudTrailEvent"])
    assert refused["EventSource"] == "cloudtrail.amazonaws.com"
    assert record["errorCode"] == AD
    assert record["ferrokmsAuthorization"][0]["action"] == "cloudtrail:LookupEvents"


def test_aws_cli_lookup_events(A, denied, tmp_path):
    key, _ = denied
    env = clean_env()
    cfg = tmp_path / "config"
    cfg.write_text("")
    env.update(
        AWS_ACCESS_KEY_ID=A.id,
        AWS_SECRET_ACCESS_KEY="x",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=A.srv.endpoint,
        AWS_CONFIG_FILE=str(cfg),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_PAGER="",
    )
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            f"AttributeKey=ResourceName,AttributeValue={key}",
            "--max-results",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert len(out["Events"]) >= 2
    assert {e["EventName"] for e in out["Events"]} <= {"Encrypt", "CreateKey", "DescribeKey"}
    assert all(r["ResourceName"] == A.key_arn(key) for e in out["Events"] for r in e["Resources"])


def test_metrics_count_lookup_events(A):
    import urllib.request

    ct = trail(A, validate=False)
    ct.lookup_events(MaxResults=1)
    expect_error(ct.lookup_events, "InvalidMaxResultsException", MaxResults=99)
    with urllib.request.urlopen(A.srv.endpoint + "/metrics", timeout=15) as r:
        text = r.read().decode()
    assert 'ferrokms_requests_total{service="cloudtrail",operation="LookupEvents",outcome="ok"}' in text
    assert 'ferrokms_requests_total{service="cloudtrail",operation="LookupEvents",outcome="client_error"}' in text


def test_an_unsigned_or_unknown_cloudtrail_call_gets_an_aws_error(A):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from conftest import raw_request

    target = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."

    def signed(op, body):
        """Signed for cloudtrail (raw_request signs for kms)."""
        hdrs = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target + op}
        req = AWSRequest(method="POST", url=A.srv.endpoint + "/", data=body, headers=hdrs)
        SigV4Auth(Credentials(A.id, "x"), "cloudtrail", REGION).add_auth(req)
        return raw_request(A.srv.endpoint, None, body, sign=False, headers=dict(req.headers.items()))

    r = raw_request(A.srv.endpoint, target + "LookupEvents", {}, sign=False)
    assert r.status in (400, 403) and r.error_type, (r.status, r.body)
    r = signed("DescribeTrails", b"{}")
    assert (r.status, r.error_type) == (400, "UnknownOperationException"), (r.status, r.body)
    r = signed("LookupEvents", b"[1]")
    assert (r.status, r.error_type) == (400, "SerializationException"), (r.status, r.body)
    r = signed("LookupEvents", b"{}")
    assert r.status == 200 and "Events" in r.json(), (r.status, r.body)
