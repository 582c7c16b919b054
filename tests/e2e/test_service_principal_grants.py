"""Grants to AWS service principals and ListKeys' ResourceOwners, end to end
through boto3, each test named after the AWS rule it checks.

An AWS service principal calls ferrokms through a principal trusted with
``--via-service-principal``: it signs ``X-Ferrokms-Service-Principal``
(the service principal it calls as) and ``X-Ferrokms-Source-Arn`` (the
resource it calls for, ``aws:SourceArn``), docs/keys.md. A grant with
``GranteeServicePrincipal`` applies to those calls only, and only for the
resource of its ``SourceArn`` constraint; no user or role of any account
gets anything from it.
"""

from __future__ import annotations

import pytest

from accounts import Account
from conftest import REGION, expect_error, fresh_account, make_client
from policies import allow, doc, kp_allow

SERVICES = fresh_account()
STAND_IN = f"arn:aws:iam::{SERVICES}:user/aws-services"

SERVER = "dev"
SERVER_ARGS = ["--via-service-principal", STAND_IN]

DYNAMODB = "dynamodb.amazonaws.com"
AD = "AccessDeniedException"
VE = "ValidationException"


@pytest.fixture(scope="module")
def stand_in(srv):
    """The access key of the user trusted to stand in for AWS services."""
    acct = Account(srv, SERVICES)
    acct.iam.create_user(UserName="aws-services")
    acct.iam.put_user_policy(
        UserName="aws-services",
        PolicyName="kms",
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:ListRetirableGrants","kms:ListGrants"],"Resource":"*"}]}',
    )
    return acct.iam.create_access_key(UserName="aws-services")["AccessKey"]


def as_service(srv, creds, principal=DYNAMODB, source_arn=None, access_key=None):
    """A KMS client signing the service-principal headers on every request."""
    c = make_client(srv.endpoint, access_key or creds["AccessKeyId"], creds["SecretAccessKey"])

    def add(request, **_):
        request.headers["X-Ferrokms-Service-Principal"] = principal
        if source_arn is not None:
            request.headers["X-Ferrokms-Source-Arn"] = source_arn

    c.meta.events.register_first("before-sign.kms.*", add)
    return c


def table(account, name="orders"):
    return f"arn:aws:dynamodb:{REGION}:{account.id}:table/{name}"


def service_grant(account, key, ops=("Encrypt", "Decrypt", "DescribeKey"), **kw):
    args = dict(
        KeyId=key["KeyId"],
        GranteeServicePrincipal=DYNAMODB,
        RetiringPrincipal=account.root_arn,
        Operations=list(ops),
        Constraints={"SourceArn": table(account)},
    )
    args.update(kw)
    return account.kms.create_grant(**args)


# --- rule: a grant to a service principal allows that service's calls for its SourceArn ---


def test_grant_to_a_service_principal_allows_its_calls_for_the_source_arn(srv, A, stand_in):
    key = A.key()
    dynamodb = as_service(srv, stand_in, source_arn=table(A))
    expect_error(dynamodb.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")
    service_grant(A, key)
    blob = dynamodb.encrypt(KeyId=key["Arn"], Plaintext=b"item")["CiphertextBlob"]
    assert dynamodb.decrypt(CiphertextBlob=blob)["Plaintext"] == b"item"
    assert dynamodb.describe_key(KeyId=key["Arn"])["KeyMetadata"]["Arn"] == key["Arn"]


def test_source_arn_constraint_refuses_a_call_for_another_resource_or_none(srv, A, stand_in):
    key = A.key()
    service_grant(A, key)
    for client in [
        as_service(srv, stand_in, source_arn=table(A, "invoices")),
        as_service(srv, stand_in, source_arn=None),
    ]:
        expect_error(client.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")
        expect_error(client.describe_key, AD, KeyId=key["Arn"])


def test_grant_to_a_service_principal_does_not_let_any_user_or_role_use_the_key(srv, A, B, stand_in):
    key = A.key(kp_allow(A.root_arn, "kms:*"))
    service_grant(A, key, ops=("Encrypt",))
    plain_stand_in = make_client(srv.endpoint, stand_in["AccessKeyId"], stand_in["SecretAccessKey"])
    for c in [
        plain_stand_in,
        A.user().kms,
        A.role().kms,
        B.kms,
        B.user(allow("kms:*")).kms,
    ]:
        expect_error(c.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")


def test_service_principal_headers_are_refused_from_untrusted_principals(srv, A):
    key = A.key()
    service_grant(A, key)
    user = A.user(allow("kms:*"))
    forged = as_service(srv, user.creds, source_arn=table(A))
    expect_error(forged.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")
    expect_error(forged.list_keys, AD)


def test_grant_to_one_service_principal_does_not_let_another_service_use_the_key(srv, A, stand_in):
    key = A.key()
    service_grant(A, key)
    s3 = as_service(srv, stand_in, principal="s3.amazonaws.com", source_arn=table(A))
    expect_error(s3.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")


# --- rule: CreateGrant's exactly-one-of rules for service principals ---


def test_create_grant_needs_exactly_one_grantee_and_a_source_arn_and_retiring_principal_for_a_service(A):
    key = A.key()
    expect_error(
        service_grant,
        VE,
        message="You must specify either GranteePrincipal or GranteeServicePrincipal, but not both.",
        account=A,
        key=key,
        GranteePrincipal=A.root_arn,
    )
    expect_error(
        A.kms.create_grant,
        VE,
        message="You must specify either GranteePrincipal or GranteeServicePrincipal.",
        KeyId=key["KeyId"],
        Operations=["Encrypt"],
    )
    expect_error(
        service_grant,
        VE,
        message="When you specify a GranteeServicePrincipal, you must also specify a SourceArn grant constraint.",
        account=A,
        key=key,
        Constraints={},
    )
    expect_error(
        A.kms.create_grant,
        VE,
        message="When you specify a GranteeServicePrincipal, you must also specify either a RetiringPrincipal or a RetiringServicePrincipal.",
        KeyId=key["KeyId"],
        GranteeServicePrincipal=DYNAMODB,
        Operations=["Encrypt"],
        Constraints={"SourceArn": table(A)},
    )
    expect_error(
        service_grant,
        VE,
        message="You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both.",
        account=A,
        key=key,
        RetiringServicePrincipal=DYNAMODB,
    )
    # The service model's patterns.
    expect_error(service_grant, VE, account=A, key=key, GranteeServicePrincipal="not-a-service")
    expect_error(service_grant, VE, account=A, key=key, Constraints={"SourceArn": "arn:aws:dynamodb:::table/x"})


def test_naming_a_service_principal_in_another_accounts_key_grant_is_refused(srv, A, B, stand_in):
    key = A.key()
    expect_error(
        B.kms.create_grant,
        AD,
        KeyId=key["Arn"],
        GranteeServicePrincipal=DYNAMODB,
        RetiringPrincipal=B.root_arn,
        Operations=["Encrypt"],
        Constraints={"SourceArn": table(B)},
    )
    expect_error(as_service(srv, stand_in, source_arn=table(B)).encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")


def test_create_grant_condition_keys_limit_the_service_principal_and_source_arn(A):
    granter = A.user()
    key = A.key(
        kp_allow(A.root_arn, "kms:*"),
        {
            "Effect": "Allow",
            "Principal": {"AWS": granter.arn},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": {
                    "kms:GranteeServicePrincipal": DYNAMODB,
                    "kms:GrantConstraintSourceArn": table(A),
                }
            },
        },
    )
    args = dict(KeyId=key["KeyId"], RetiringPrincipal=A.root_arn, Operations=["Encrypt"])
    granter.kms.create_grant(GranteeServicePrincipal=DYNAMODB, Constraints={"SourceArn": table(A)}, **args)
    expect_error(
        granter.kms.create_grant,
        AD,
        GranteeServicePrincipal="s3.amazonaws.com",
        Constraints={"SourceArn": table(A)},
        **args,
    )
    expect_error(
        granter.kms.create_grant,
        AD,
        GranteeServicePrincipal=DYNAMODB,
        Constraints={"SourceArn": table(A, "other")},
        **args,
    )


# --- rule: ListGrants shows GranteeServicePrincipal and filters by it for that service only ---


def test_list_grants_shows_and_filters_by_grantee_service_principal(srv, A, stand_in):
    key = A.key()
    other = A.key()
    gid = service_grant(A, key)["GrantId"]
    service_grant(A, other)
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.root_arn, Operations=["Encrypt"])
    grants = A.kms.list_grants(KeyId=key["KeyId"])["Grants"]
    g = next(g for g in grants if g["GrantId"] == gid)
    assert g["GranteeServicePrincipal"] == DYNAMODB
    assert "GranteePrincipal" not in g
    assert g["Constraints"] == {"SourceArn": table(A)}
    # The filter is only for callers in that service principal.
    expect_error(A.kms.list_grants, AD, KeyId=key["KeyId"], GranteeServicePrincipal=DYNAMODB)
    # The service itself, allowed to list by the key policy: only its grants of this key.
    A.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(kp_allow(A.root_arn, "kms:*"), kp_allow(STAND_IN, "kms:ListGrants")),
        BypassPolicyLockoutSafetyCheck=True,
    )
    dynamodb = as_service(srv, stand_in, source_arn=table(A))
    listed = dynamodb.list_grants(KeyId=key["Arn"], GranteeServicePrincipal=DYNAMODB)["Grants"]
    assert [g["GrantId"] for g in listed] == [gid]
    expect_error(
        as_service(srv, stand_in, principal="s3.amazonaws.com").list_grants,
        AD,
        KeyId=key["Arn"],
        GranteeServicePrincipal=DYNAMODB,
    )
    assert A.kms.list_grants(KeyId=key["KeyId"], GranteePrincipal=DYNAMODB)["Grants"] == []
    expect_error(
        A.kms.list_grants,
        VE,
        KeyId=key["KeyId"],
        GranteePrincipal=A.root_arn,
        GranteeServicePrincipal=DYNAMODB,
    )


def test_list_grants_of_another_accounts_key_stays_closed_to_a_service_filter(srv, A, B, stand_in):
    key = A.key()
    service_grant(A, key)
    expect_error(B.kms.list_grants, AD, KeyId=key["Arn"], GranteeServicePrincipal=DYNAMODB)
    expect_error(
        as_service(srv, stand_in, source_arn=table(A)).list_grants,
        AD,
        KeyId=key["Arn"],
        GranteeServicePrincipal=DYNAMODB,
    )


# --- rule: ListRetirableGrants by RetiringServicePrincipal; RetireGrant by it ---


def test_retiring_service_principal_lists_and_retires_its_grants(srv, A, stand_in):
    key = A.key()
    args = dict(
        KeyId=key["KeyId"],
        GranteeServicePrincipal=DYNAMODB,
        RetiringServicePrincipal=DYNAMODB,
        Operations=["Encrypt"],
        Constraints={"SourceArn": table(A)},
    )
    gid = A.kms.create_grant(**args)["GrantId"]
    dynamodb = as_service(srv, stand_in, source_arn=table(A, "elsewhere"))
    listed = dynamodb.list_retirable_grants(RetiringServicePrincipal=DYNAMODB)["Grants"]
    assert gid in [g["GrantId"] for g in listed]
    entry = next(g for g in listed if g["GrantId"] == gid)
    assert entry["RetiringServicePrincipal"] == DYNAMODB and "RetiringPrincipal" not in entry
    expect_error(A.kms.list_retirable_grants, AD, RetiringServicePrincipal=DYNAMODB)
    expect_error(A.kms.list_retirable_grants, VE)
    # Another service and a user of the account cannot retire it; the
    # retiring service can, whatever resource it calls for (SourceArn does
    # not apply to RetireGrant).
    expect_error(
        as_service(srv, stand_in, principal="s3.amazonaws.com").retire_grant,
        AD,
        KeyId=key["Arn"],
        GrantId=gid,
    )
    expect_error(A.user().kms.retire_grant, AD, KeyId=key["Arn"], GrantId=gid)
    dynamodb.retire_grant(KeyId=key["Arn"], GrantId=gid)
    assert gid not in [g["GrantId"] for g in A.kms.list_grants(KeyId=key["KeyId"])["Grants"]]


# --- rule: ListKeys ResourceOwners ---


def test_list_keys_resource_owners_self_and_ram(srv, A, B):
    key = A.key()
    B.key()

    def arns(**kw):
        return [k["KeyArn"] for k in A.kms.list_keys(**kw)["Keys"]]

    mine = arns()
    assert key["Arn"] in mine
    assert arns(ResourceOwners=["SELF"]) == mine
    assert arns(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM", "SELF"]) == mine
    out = A.kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM"])
    assert out["Keys"] == [] and out["Truncated"] is False
    # The service model's list: 1 or 2 values of the enum (the server's
    # own check, past boto3's).
    raw = make_client(srv.endpoint, A.id, "x", validate=False)
    expect_error(raw.list_keys, VE, ResourceOwners=[])
    expect_error(raw.list_keys, VE, ResourceOwners=["SELF", "OTHER_ACCOUNTS_VIA_RAM", "SELF"])
    expect_error(raw.list_keys, VE, ResourceOwners=["EVERYONE"])
