"""KMS authorization end to end: key policies, identity policies, the account
delegation rule, explicit denies, IAM-only operations and conditions, with
AWS's AccessDenied texts. Each test is named after the rule it checks."""

import json
import uuid

import pytest

from conftest import DEFAULT_ACCOUNT, REGION, Server, expect_error, make_client
from policies import doc, principal_allow, principal_deny

ACCT = DEFAULT_ACCOUNT
ROOT = f"arn:aws:iam::{ACCT}:root"


@pytest.fixture(scope="module")
def root(srv):
    class Root:
        kms = srv.client()
        iam = srv.client(service="iam")
        sts = srv.client(service="sts")

    return Root


ENABLE_IAM = principal_allow(ROOT, "kms:*", Sid="Enable IAM User Permissions")


def new_user(srv, root, identity_policy=None):
    """An IAM user with an access key (and an inline policy if given)."""
    name = "u" + uuid.uuid4().hex[:10]
    user = root.iam.create_user(UserName=name)["User"]
    if identity_policy is not None:
        root.iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(identity_policy))
    k = root.iam.create_access_key(UserName=name)["AccessKey"]

    class U:
        arn = user["Arn"]
        kms = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
        sts = make_client(srv.endpoint, k["AccessKeyId"], k["SecretAccessKey"], service="sts")

    return U


def new_role_session(srv, root, identity_policy=None):
    """A role trusted by the account, assumed by a user allowed to assume it."""
    name = "r" + uuid.uuid4().hex[:10]
    trust = doc({"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "sts:AssumeRole"})
    role = root.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
    if identity_policy is not None:
        root.iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(identity_policy))
    user = new_user(
        srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]}]}
    )
    creds = user.sts.assume_role(RoleArn=role["Arn"], RoleSessionName="s1")
    c = creds["Credentials"]

    class R:
        arn = role["Arn"]
        session_arn = creds["AssumedRoleUser"]["Arn"]
        kms = make_client(srv.endpoint, c["AccessKeyId"], c["SecretAccessKey"])
        name_ = name

    R.kms = make_client_with_token(srv.endpoint, c)
    return R


def make_client_with_token(endpoint, c):
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        region_name=REGION,
    )
    return session.client(
        "kms", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1, "mode": "standard"})
    )


def key_with(root, *statements):
    return root.kms.create_key(Policy=doc(*statements), BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]


def denied(op, key_arn, caller_arn, reason):
    return (
        f"User: {caller_arn} is not authorized to perform: kms:{op} on resource: {key_arn} because no {reason} allows the kms:{op} action"
    )


# --- seed 000, step by step (with a symmetric key until RSA signing lands) ---


def test_seed000_role_session_without_identity_policy_is_denied_because_no_identity_based_policy_allows(srv, root):
    key = root.kms.create_key()["KeyMetadata"]  # default key policy: delegates to the account
    role = new_role_session(srv, root)
    expect_error(
        role.kms.encrypt,
        "AccessDeniedException",
        message=denied("Encrypt", key["Arn"], role.session_arn, "identity-based policy"),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_seed000_key_policy_naming_the_role_allows_its_sessions_then_removal_denies_again(srv, root):
    role = new_role_session(srv, root)
    key = root.kms.create_key()["KeyMetadata"]
    root.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(ENABLE_IAM, principal_allow(role.arn, ["kms:DescribeKey", "kms:Encrypt"], Sid="Allow use of the key")),
    )
    assert role.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["KeyId"] == key["Arn"]
    root.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=doc(ENABLE_IAM))
    expect_error(
        role.kms.encrypt,
        "AccessDeniedException",
        message=denied("Encrypt", key["Arn"], role.session_arn, "identity-based policy"),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_seed000_identity_policy_allows_when_key_policy_enables_iam_policies(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    role = new_role_session(
        srv,
        root,
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": key["Arn"]}]},
    )
    blob = role.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    assert role.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_identity_policy_is_ineffective_when_key_policy_does_not_delegate_to_the_account(srv, root):
    user = new_user(srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    other = new_user(srv, root)
    key = key_with(root, principal_allow(other.arn, "kms:*"))
    expect_error(
        user.kms.encrypt,
        "AccessDeniedException",
        message=denied("Encrypt", key["Arn"], user.arn, "resource-based policy"),
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_root_user_is_denied_when_key_policy_does_not_name_the_account(srv, root):
    admin = new_user(srv, root)
    key = key_with(root, principal_allow(admin.arn, "kms:*"))
    expect_error(
        root.kms.describe_key,
        "AccessDeniedException",
        message=denied("DescribeKey", key["Arn"], ROOT, "resource-based policy"),
        KeyId=key["KeyId"],
    )
    assert admin.kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"] == key["Arn"]


def test_key_policy_naming_a_user_allows_without_any_identity_policy(srv, root):
    user = new_user(srv, root)
    key = key_with(root, ENABLE_IAM, principal_allow(user.arn, ["kms:Encrypt"]))
    user.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    expect_error(
        user.kms.describe_key,
        "AccessDeniedException",
        message=denied("DescribeKey", key["Arn"], user.arn, "identity-based policy"),
        KeyId=key["KeyId"],
    )


def test_explicit_deny_in_key_policy_overrides_identity_allow(srv, root):
    user = new_user(srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    key = key_with(root, ENABLE_IAM, principal_deny(user.arn, "kms:Encrypt"))
    expect_error(
        user.kms.encrypt,
        "AccessDeniedException",
        message=f"User: {user.arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']} with an explicit deny in a resource-based policy",
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )
    user.kms.describe_key(KeyId=key["KeyId"])


def test_explicit_deny_in_identity_policy_overrides_key_policy_allow(srv, root):
    user = new_user(
        srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "kms:Encrypt", "Resource": "*"}]}
    )
    key = key_with(root, ENABLE_IAM, principal_allow(user.arn, "kms:*"))
    expect_error(
        user.kms.encrypt,
        "AccessDeniedException",
        message=f"User: {user.arn} is not authorized to perform: kms:Encrypt on resource: {key['Arn']} with an explicit deny in an identity-based policy",
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )


def test_deny_with_account_principal_applies_to_every_principal_of_the_account(srv, root):
    user = new_user(srv, root)
    key = key_with(root, principal_allow(user.arn, "kms:*"), principal_deny(ROOT, "kms:Encrypt"))
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")
    user.kms.describe_key(KeyId=key["KeyId"])


def test_create_key_is_authorized_by_identity_policy_on_resource_star(srv, root):
    user = new_user(srv, root)
    expect_error(
        user.kms.create_key,
        "AccessDeniedException",
        message=f"User: {user.arn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action",
    )


def test_create_key_with_tags_also_needs_tag_resource_and_says_so_without_a_resource(srv, root):
    user = new_user(srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}]})
    user.kms.create_key()
    expect_error(
        user.kms.create_key,
        "AccessDeniedException",
        message=f"User: {user.arn} is not authorized to perform: kms:TagResource because no identity-based policy allows the kms:TagResource action",
        Tags=[{"TagKey": "team", "TagValue": "a"}],
    )


def test_list_keys_and_generate_random_need_identity_permission(srv, root):
    user = new_user(srv, root)
    expect_error(user.kms.list_keys, "AccessDeniedException")
    expect_error(user.kms.generate_random, "AccessDeniedException", NumberOfBytes=8)
    allowed = new_user(
        srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:ListKeys", "kms:GenerateRandom"], "Resource": "*"}]}
    )
    allowed.kms.list_keys()
    assert len(allowed.kms.generate_random(NumberOfBytes=8)["Plaintext"]) == 8


def test_encryption_context_condition_in_key_policy_must_hold(srv, root):
    user = new_user(srv, root)
    key = key_with(
        root,
        ENABLE_IAM,
        principal_allow(user.arn, ["kms:Encrypt", "kms:Decrypt"], Condition={"StringEquals": {"kms:EncryptionContext:purpose": "backup"}}),
    )
    blob = user.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"purpose": "backup"})["CiphertextBlob"]
    user.kms.decrypt(CiphertextBlob=blob, EncryptionContext={"purpose": "backup"})
    expect_error(
        user.kms.encrypt,
        "AccessDeniedException",
        KeyId=key["KeyId"],
        Plaintext=b"x",
        EncryptionContext={"purpose": "other"},
    )
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")


def test_principal_star_with_caller_account_condition_admits_only_that_account(srv, root):
    user = new_user(srv, root)
    key = key_with(
        root,
        principal_allow("*", "kms:Encrypt", Condition={"StringEquals": {"kms:CallerAccount": ACCT}}),
        principal_allow("*", "kms:DescribeKey", Condition={"StringEquals": {"kms:CallerAccount": "999999999999"}}),
    )
    user.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")
    expect_error(user.kms.describe_key, "AccessDeniedException", KeyId=key["KeyId"])


def test_alias_operations_check_both_the_alias_and_the_key(srv, root):
    key = key_with(root, ENABLE_IAM)
    user = new_user(
        srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:CreateAlias", "Resource": f"arn:aws:kms:{REGION}:{ACCT}:alias/*"}]}
    )
    name = "alias/a" + uuid.uuid4().hex[:8]
    expect_error(
        user.kms.create_alias,
        "AccessDeniedException",
        message=denied("CreateAlias", key["Arn"], user.arn, "identity-based policy"),
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )
    both = new_user(
        srv,
        root,
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "kms:CreateAlias", "Resource": [f"arn:aws:kms:{REGION}:{ACCT}:alias/*", key["Arn"]]}
            ],
        },
    )
    both.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])


def test_request_alias_condition_matches_only_when_the_key_is_named_by_that_alias(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    name = "alias/ra" + uuid.uuid4().hex[:8]
    root.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    user = new_user(
        srv,
        root,
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Condition": {"StringEquals": {"kms:RequestAlias": name}}}],
        },
    )
    user.kms.encrypt(KeyId=name, Plaintext=b"x")
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")


def test_decrypt_of_a_ciphertext_whose_key_is_gone_says_the_ciphertext_refers_to_an_unusable_key(srv, root):
    fake = bytes([1, 36]) + str(uuid.uuid4()).encode() + ACCT.encode() + bytes(4) + bytes(12) + bytes(20)
    expect_error(
        root.kms.decrypt,
        "AccessDeniedException",
        message="The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.",
        CiphertextBlob=fake,
    )


def test_key_state_is_checked_after_authorization(srv, root):
    user = new_user(srv, root)
    key = key_with(root, ENABLE_IAM)
    root.kms.disable_key(KeyId=key["KeyId"])
    # Unauthorized callers learn nothing about the key's state.
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")
    expect_error(root.kms.encrypt, "DisabledException", KeyId=key["KeyId"], Plaintext=b"x")


# --- key policy validation (CreateKey / PutKeyPolicy) ---


def test_lockout_safety_check_refuses_a_policy_that_stops_the_caller_updating_it(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    other = new_user(srv, root)
    expect_error(
        root.kms.put_key_policy,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(principal_allow(other.arn, "kms:*")),
    )
    # The same policy passes when the check is bypassed, and then locks root out.
    root.kms.put_key_policy(
        KeyId=key["KeyId"], PolicyName="default", Policy=doc(principal_allow(other.arn, "kms:*")), BypassPolicyLockoutSafetyCheck=True
    )
    expect_error(root.kms.get_key_policy, "AccessDeniedException", KeyId=key["KeyId"], PolicyName="default")


def test_lockout_check_counts_the_callers_identity_policies(srv, root):
    user = new_user(
        srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:CreateKey", "kms:PutKeyPolicy"], "Resource": "*"}]}
    )
    key = user.kms.create_key(Policy=doc(ENABLE_IAM))["KeyMetadata"]
    weak = new_user(srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}]})
    expect_error(
        weak.kms.create_key,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        Policy=doc(ENABLE_IAM),
    )
    assert key["KeyState"] == "Enabled"


def test_key_policy_naming_a_principal_that_does_not_exist_is_malformed(srv, root):
    expect_error(
        root.kms.create_key,
        "MalformedPolicyDocumentException",
        message="Policy contains a statement with one or more invalid principals.",
        Policy=doc(ENABLE_IAM, principal_allow(f"arn:aws:iam::{ACCT}:user/nobody-{uuid.uuid4().hex[:6]}", "kms:Encrypt")),
    )
    expect_error(
        root.kms.create_key,
        "MalformedPolicyDocumentException",
        message="Policy contains a statement with one or more invalid principals.",
        Policy=doc(ENABLE_IAM, principal_allow("arn:aws:iam::999988887777:root", "kms:Encrypt")),
    )


def test_key_policy_statement_without_principal_is_malformed(srv, root):
    e = expect_error(
        root.kms.create_key,
        "MalformedPolicyDocumentException",
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}),
    )
    assert "Principal" in e.response["Error"]["Message"]


def test_for_all_values_with_encryption_context_key_is_rejected_as_overly_permissive(srv, root):
    e = expect_error(
        root.kms.create_key,
        "MalformedPolicyDocumentException",
        Policy=doc(
            ENABLE_IAM,
            principal_allow(ROOT, "kms:Decrypt", Condition={"ForAllValues:StringEquals": {"kms:EncryptionContext:app": "x"}}),
        ),
    )
    assert e.response["Error"]["Message"].startswith("OverlyPermissiveCondition")


def test_get_key_policy_returns_the_text_exactly_as_given(srv, root):
    text = '{\n  "Version": "2012-10-17",\n  "Statement": [ {"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"%s"},"Action":"kms:*","Resource":"*"} ]\n}' % ROOT
    key = root.kms.create_key(Policy=text)["KeyMetadata"]
    assert root.kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"] == text


# --- grants ---


def test_grant_allows_its_grantee_the_listed_operations_without_any_policy(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["KeyId"], Plaintext=b"x")
    g = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt", "Decrypt"])
    assert len(g["GrantId"]) == 64 and g["GrantToken"]
    blob = user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x", GrantTokens=[g["GrantToken"]])["CiphertextBlob"]
    assert user.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    expect_error(user.kms.describe_key, "AccessDeniedException", KeyId=key["Arn"])


def test_grant_to_a_role_covers_every_session_of_the_role(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    role = new_role_session(srv, root)
    root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=role.arn, Operations=["Encrypt"])
    role.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")


def test_grant_encryption_context_subset_constraint_must_be_met(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    root.kms.create_grant(
        KeyId=key["KeyId"],
        GranteePrincipal=user.arn,
        Operations=["Encrypt"],
        Constraints={"EncryptionContextSubset": {"Department": "IT"}},
    )
    user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x", EncryptionContext={"department": "IT", "extra": "1"})
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"x", EncryptionContext={"Department": "it"})
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"x")


def test_grant_encryption_context_equals_constraint_needs_exactly_that_context(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    root.kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"], Constraints={"EncryptionContextEquals": {"a": "1"}}
    )
    user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x", EncryptionContext={"a": "1"})
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"x", EncryptionContext={"a": "1", "b": "2"})


def test_explicit_deny_in_key_policy_overrides_a_grant(srv, root):
    user = new_user(srv, root)
    key = key_with(root, ENABLE_IAM, principal_deny(user.arn, "kms:Encrypt"))
    root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"x")


def test_retiring_principal_retires_a_grant_by_token_and_it_stops_working_at_once(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    retirer = new_user(srv, root)
    g = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, RetiringPrincipal=retirer.arn, Operations=["Encrypt"])
    user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    retirer.kms.retire_grant(GrantToken=g["GrantToken"])
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"x")
    expect_error(user.kms.encrypt, "InvalidGrantTokenException", KeyId=key["Arn"], Plaintext=b"x", GrantTokens=[g["GrantToken"]])


def test_grantee_may_retire_only_when_the_grant_includes_retire_grant(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    g1 = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    expect_error(user.kms.retire_grant, "AccessDeniedException", KeyId=key["Arn"], GrantId=g1["GrantId"])
    g2 = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt", "RetireGrant"])
    user.kms.retire_grant(KeyId=key["Arn"], GrantId=g2["GrantId"])
    # The issuing account's root may always retire.
    root.kms.retire_grant(KeyId=key["Arn"], GrantId=g1["GrantId"])
    assert root.kms.list_grants(KeyId=key["KeyId"])["Grants"] == []


def test_revoke_grant_needs_kms_revoke_grant_on_the_key(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    g = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt", "RetireGrant"])
    expect_error(user.kms.revoke_grant, "AccessDeniedException", KeyId=key["KeyId"], GrantId=g["GrantId"])
    root.kms.revoke_grant(KeyId=key["KeyId"], GrantId=g["GrantId"])
    expect_error(user.kms.encrypt, "AccessDeniedException", KeyId=key["Arn"], Plaintext=b"x")
    expect_error(root.kms.revoke_grant, "NotFoundException", KeyId=key["KeyId"], GrantId=g["GrantId"])


def test_list_grants_shows_grant_entries_with_filters_and_rejects_unknown_grant_ids(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    a, b = new_user(srv, root), new_user(srv, root)
    ga = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=a.arn, Operations=["Encrypt"], Name="for-a")
    root.kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=b.arn, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": {"k": "v"}}
    )
    grants = root.kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [g["GranteePrincipal"] for g in grants] == [a.arn, b.arn]
    first = grants[0]
    assert first["KeyId"] == key["Arn"] and first["Name"] == "for-a" and first["Operations"] == ["Encrypt"]
    assert first["IssuingAccount"] == ROOT
    assert grants[1]["Constraints"] == {"EncryptionContextEquals": {"k": "v"}}
    only = root.kms.list_grants(KeyId=key["KeyId"], GranteePrincipal=a.arn)["Grants"]
    assert [g["GrantId"] for g in only] == [ga["GrantId"]]
    page1 = root.kms.list_grants(KeyId=key["KeyId"], Limit=1)
    assert page1["Truncated"] and len(page1["Grants"]) == 1
    page2 = root.kms.list_grants(KeyId=key["KeyId"], Limit=1, Marker=page1["NextMarker"])
    assert page2["Grants"][0]["GranteePrincipal"] == b.arn and not page2["Truncated"]
    expect_error(root.kms.list_grants, "InvalidGrantIdException", KeyId=key["KeyId"], GrantId="0" * 64)


def test_list_retirable_grants_finds_grants_by_retiring_principal(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user, retirer = new_user(srv, root), new_user(srv, root)
    g = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, RetiringPrincipal=retirer.arn, Operations=["Encrypt"])
    found = root.kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]
    assert [x["GrantId"] for x in found] == [g["GrantId"]]


def test_create_grant_with_the_same_name_and_parameters_returns_the_same_grant_id(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    args = dict(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"], Name="idem")
    g1, g2 = root.kms.create_grant(**args), root.kms.create_grant(**args)
    assert g1["GrantId"] == g2["GrantId"] and g1["GrantToken"] != g2["GrantToken"]
    g3 = root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    assert g3["GrantId"] != g1["GrantId"]


def test_grant_operation_the_key_cannot_perform_is_a_validation_error(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    user = new_user(srv, root)
    expect_error(root.kms.create_grant, "ValidationException", KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Sign"])


def test_unknown_grant_token_is_invalid_grant_token_exception(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    expect_error(root.kms.encrypt, "InvalidGrantTokenException", KeyId=key["KeyId"], Plaintext=b"x", GrantTokens=["not-a-token"])


def test_grant_derived_create_grant_may_hand_out_only_a_subset_of_its_operations(srv, root):
    key = root.kms.create_key()["KeyMetadata"]
    middle, end = new_user(srv, root), new_user(srv, root)
    root.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=middle.arn, Operations=["Encrypt", "CreateGrant"])
    middle.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["Encrypt"])
    end.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x")
    expect_error(
        middle.kms.create_grant, "AccessDeniedException", KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["Decrypt"]
    )


# --- AWS managed keys and kms:ViaService ---


def test_list_aliases_shows_predefined_aws_aliases_without_a_target(srv, root):
    aliases = {a["AliasName"]: a for a in root.kms.list_aliases(Limit=100)["Aliases"]}
    assert "alias/aws/s3" in aliases


def test_describe_key_on_a_predefined_aws_alias_creates_the_aws_managed_key(srv, root):
    md = root.kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert md["KeyManager"] == "AWS" and md["KeyState"] == "Enabled"
    again = root.kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert again["KeyId"] == md["KeyId"]
    listed = {a["AliasName"]: a for a in root.kms.list_aliases(KeyId=md["KeyId"])["Aliases"]}
    assert listed["alias/aws/ebs"]["TargetKeyId"] == md["KeyId"]
    policy_text = json.loads(root.kms.get_key_policy(KeyId=md["KeyId"], PolicyName="default")["Policy"])
    cond = policy_text["Statement"][0]["Condition"]["StringEquals"]
    assert cond == {"kms:CallerAccount": ACCT, "kms:ViaService": f"ec2.{REGION}.amazonaws.com"}


def test_aws_managed_key_cannot_be_changed_by_the_account_its_policy_allows_only_reads(srv, root):
    md = root.kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    expect_error(root.kms.disable_key, "AccessDeniedException", KeyId=md["KeyId"])
    expect_error(root.kms.schedule_key_deletion, "AccessDeniedException", KeyId=md["KeyId"])
    expect_error(root.kms.put_key_policy, "AccessDeniedException", KeyId=md["KeyId"], PolicyName="default", Policy=doc(ENABLE_IAM))
    assert root.kms.get_key_rotation_status(KeyId=md["KeyId"])["KeyRotationEnabled"] is True


def test_aws_managed_key_is_usable_only_through_its_service(srv, root):
    md = root.kms.describe_key(KeyId="alias/aws/s3")["KeyMetadata"]
    user = new_user(srv, root, {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
    expect_error(
        user.kms.encrypt,
        "AccessDeniedException",
        message=denied("Encrypt", md["Arn"], user.arn, "resource-based policy"),
        KeyId="alias/aws/s3",
        Plaintext=b"x",
    )


def via_service_client(endpoint, access_key, secret, service_host):
    """A client that signs an X-Ferrokms-Via-Service header on every request."""
    c = make_client(endpoint, access_key, secret)

    def add(request, **_):
        request.headers["X-Ferrokms-Via-Service"] = service_host

    c.meta.events.register_first("before-sign.kms.*", add)
    return c


def test_via_service_header_is_refused_from_untrusted_principals(srv, root):
    ak, sk = srv.profile_credentials()
    c = via_service_client(srv.endpoint, ak, sk, f"s3.{REGION}.amazonaws.com")
    expect_error(c.list_keys, "AccessDeniedException")


def test_trusted_service_principal_sets_kms_via_service_and_can_use_aws_managed_keys(ferrokms_bin, tmp_path):
    import subprocess

    work = tmp_path / "via"
    work.mkdir()
    # First start creates the user, second start trusts it.
    s = Server(ferrokms_bin, work, data_dir=work / "data")
    s.start()
    iam = s.client(service="iam")
    iam.create_user(UserName="s3-service")
    iam.put_user_policy(
        UserName="s3-service",
        PolicyName="kms",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}),
    )
    k = iam.create_access_key(UserName="s3-service")["AccessKey"]
    s.stop()
    trusted = Server(ferrokms_bin, work, data_dir=work / "data", store_url=s.store_url)
    old_args = trusted.args
    trusted.args = lambda: old_args() + ["--via-service-principal", f"arn:aws:iam::{ACCT}:user/s3-service"]
    trusted.start()
    try:
        via = via_service_client(trusted.endpoint, k["AccessKeyId"], k["SecretAccessKey"], f"s3.{REGION}.amazonaws.com")
        blob = via.encrypt(KeyId="alias/aws/s3", Plaintext=b"object")["CiphertextBlob"]
        assert via.decrypt(CiphertextBlob=blob)["Plaintext"] == b"object"
        plain = make_client(trusted.endpoint, k["AccessKeyId"], k["SecretAccessKey"])
        expect_error(plain.encrypt, "AccessDeniedException", KeyId="alias/aws/s3", Plaintext=b"x")
    finally:
        trusted.stop()
