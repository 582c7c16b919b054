"""KMS authorization matrix, end to end through boto3 (and a few aws CLI calls).

Each test is named after the AWS rule it checks (AWS KMS developer guide: key policies, IAM policies, grants, condition keys; docs/authorization.md): key-policy
principal forms, account delegation and its limits, explicit denies on every
side (key policy, identity policy, permissions boundary, session policy),
NotAction / NotResource / NotPrincipal, action and resource wildcards,
cross-account rules, condition keys, grants, the lockout safety check,
aliases in identity policies and the order of authorization and key state.

Everything runs on one module-scoped in-memory `--dev` server: a 12-digit
access key id is that account's root, which creates the IAM users, roles and
policies of its account; keys are per account.

About 1,650 lines, one test per rule: the matrix is one file so that every
KMS authorization rule is found by its name in one place (the in-process
table is crates/kms/tests/authz_rules.rs).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accounts import AD, IB, PB, RB, SP, Account, Principal, client, denied_encrypt, encrypt, explicit, no_allow, uid
from conftest import CLI_TIMEOUT, REGION, clean_env, expect_error, fresh_account
from policies import allow, deny, doc, kp_allow, kp_deny


# --- servers, accounts and principals --------------------------------------


SERVER = "dev"


# --- key-policy-only access: every principal form ---------------------------


def _principal_value(form, A, user, session):
    return {
        "user-arn": user.arn,
        "role-arn": session.role_arn,
        "session-arn": session.arn,
        "star-string": "*",
        "star-in-aws": "*",
        "user-arn-in-list": [A.root_arn.replace(":root", ":user/" + user.name), session.role_arn],
    }[form]


@pytest.mark.parametrize(
    "form,caller",
    [
        pytest.param("user-arn", "user", id="key_policy_user_arn_allows_that_user_without_identity_policy"),
        pytest.param("role-arn", "session", id="key_policy_role_arn_allows_every_session_of_the_role"),
        pytest.param("session-arn", "session", id="key_policy_session_arn_allows_that_session"),
        pytest.param("star-string", "user", id="key_policy_principal_star_allows_a_user_of_the_account_directly"),
        pytest.param("star-in-aws", "session", id="key_policy_principal_aws_star_allows_a_role_session_directly"),
        pytest.param("user-arn-in-list", "user", id="key_policy_principal_list_matches_any_member"),
        pytest.param("user-arn-in-list", "session", id="key_policy_principal_list_role_member_matches_session"),
    ],
)
def test_key_policy_naming_the_principal_allows_on_its_own(A, form, caller):
    user = A.user()
    session = A.role()
    value = _principal_value(form, A, user, session)
    if form == "star-in-aws":
        st = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*"}
    else:
        st = kp_allow(value, "kms:Encrypt")
    key = A.key(st)
    p = user if caller == "user" else session
    assert encrypt(p, key)["KeyId"] == key["Arn"]
    # Only the listed action: DescribeKey has no statement at all.
    expect_error(p.kms.describe_key, AD, message=no_allow("DescribeKey", key["Arn"], p.arn, RB), KeyId=key["Arn"])


def test_key_policy_session_arn_does_not_allow_another_session_of_the_same_role(A):
    s1 = A.role(session_name="first")
    s2 = s1.assume(session_name="second")
    key = A.key(kp_allow(s1.arn, "kms:Encrypt"))
    encrypt(s1, key)
    denied_encrypt(s2, key, message=no_allow("Encrypt", key["Arn"], s2.arn, RB))


def test_key_policy_role_arn_does_not_allow_sessions_of_another_role(A):
    s1, s2 = A.role(), A.role()
    key = A.key(kp_allow(s1.role_arn, "kms:Encrypt"))
    denied_encrypt(s2, key, message=no_allow("Encrypt", key["Arn"], s2.arn, RB))


def test_key_policy_user_arn_does_not_allow_another_user(A):
    u1, u2 = A.user(), A.user()
    key = A.key(kp_allow(u1.arn, "kms:*"))
    denied_encrypt(u2, key, message=no_allow("Encrypt", key["Arn"], u2.arn, RB))


@pytest.mark.parametrize(
    "form",
    [
        pytest.param("root-arn", id="account_principal_root_arn_form_delegates_to_identity_policies"),
        pytest.param("account-id", id="account_principal_bare_account_id_form_delegates_the_same_way"),
    ],
)
def test_account_principal_delegates_and_grants_nothing_directly(A, form):
    principal = A.root_arn if form == "root-arn" else A.id
    key = A.key(kp_allow(principal, "kms:*"))
    # The root user needs no identity policy.
    encrypt(A.root, key)
    # An IAM user needs its own identity policy.
    bare = A.user()
    denied_encrypt(bare, key, message=no_allow("Encrypt", key["Arn"], bare.arn, IB))
    allowed = A.user(allow("kms:Encrypt", key["Arn"]))
    encrypt(allowed, key)


def test_identity_policy_of_a_role_session_is_ineffective_without_delegation(A):
    other = A.user()
    session = A.role(allow("kms:*"))
    key = A.key(kp_allow(other.arn, "kms:*"))
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, RB))


def test_principal_star_whose_condition_fails_does_not_delegate_either(A):
    user = A.user(allow("kms:*"))
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalType": "AssumedRole"}}))
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, RB))


# --- delegation is limited to the delegating statement -----------------------


@pytest.mark.parametrize(
    "op,allowed",
    [
        pytest.param("Encrypt", True, id="root_statement_allowing_encrypt_delegates_encrypt"),
        pytest.param("GenerateDataKey", False, id="root_statement_allowing_encrypt_does_not_delegate_generate_data_key"),
        pytest.param("DescribeKey", False, id="root_statement_allowing_encrypt_does_not_delegate_describe_key"),
        pytest.param("Decrypt", False, id="root_statement_allowing_encrypt_does_not_delegate_decrypt"),
    ],
)
def test_delegation_covers_only_the_actions_of_the_delegating_statement(A, op, allowed):
    user = A.user(allow("kms:*"))
    key = A.key(A.enable_iam("kms:Encrypt"))
    blob = encrypt(A.root, key)["CiphertextBlob"]
    calls = {
        "Encrypt": lambda: user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x"),
        "GenerateDataKey": lambda: user.kms.generate_data_key(KeyId=key["Arn"], NumberOfBytes=16),
        "DescribeKey": lambda: user.kms.describe_key(KeyId=key["Arn"]),
        "Decrypt": lambda: user.kms.decrypt(CiphertextBlob=blob),
    }
    if allowed:
        calls[op]()
    else:
        expect_error(calls[op], AD, message=no_allow(op, key["Arn"], user.arn, RB))


def test_delegation_holds_only_under_the_delegating_statements_conditions(A):
    user = A.user(allow("kms:Encrypt"))
    key = A.key(A.enable_iam("kms:Encrypt", Condition={"StringEquals": {"kms:EncryptionContext:app": "billing"}}))
    encrypt(user, key, EncryptionContext={"app": "billing"})
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, RB), EncryptionContext={"app": "other"})


def test_identity_policy_and_key_policy_statement_combine_per_action(A):
    # Key policy names the user for Encrypt; delegation covers DescribeKey only.
    user = A.user(allow("kms:DescribeKey"))
    key = A.key(kp_allow(user.arn, "kms:Encrypt"), A.enable_iam("kms:DescribeKey"))
    encrypt(user, key)
    user.kms.describe_key(KeyId=key["Arn"])
    expect_error(
        user.kms.get_key_policy,
        AD,
        message=no_allow("GetKeyPolicy", key["Arn"], user.arn, RB),
        KeyId=key["Arn"],
        PolicyName="default",
    )


# --- explicit deny on every side --------------------------------------------


def test_explicit_deny_with_principal_star_in_key_policy_beats_a_statement_naming_the_user(A):
    user = A.user()
    key = A.key(kp_allow(user.arn, "kms:*"), kp_deny("*", "kms:Encrypt"))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))
    user.kms.describe_key(KeyId=key["Arn"])


def test_explicit_deny_naming_a_role_in_key_policy_applies_to_its_sessions(A):
    session = A.role(allow("kms:*"))
    key = A.key(A.enable_iam(), kp_deny(session.role_arn, "kms:Encrypt"))
    denied_encrypt(session, key, message=explicit("Encrypt", key["Arn"], session.arn, "a resource-based policy"))


def test_explicit_deny_in_a_group_policy_is_an_identity_based_deny(A):
    user = A.user(allow("kms:*"), group_statements=[deny("kms:Encrypt")])
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "an identity-based policy"))


def test_explicit_deny_in_an_attached_managed_policy_is_an_identity_based_deny(A):
    user = A.user(managed=[deny("kms:Encrypt")])
    key = A.key(kp_allow(user.arn, "kms:*"))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "an identity-based policy"))


def test_explicit_deny_in_key_policy_is_reported_before_an_identity_deny(A):
    user = A.user(deny("kms:Encrypt"))
    key = A.key(A.enable_iam(), kp_deny(user.arn, "kms:Encrypt"))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))


def test_session_policy_caps_delegated_identity_permissions(A):
    session = A.role(allow("kms:*"), session_policy=[allow("kms:DescribeKey")])
    key = A.key(A.enable_iam())
    session.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, SP))


def test_explicit_deny_in_a_session_policy(A):
    session = A.role(allow("kms:*"), session_policy=[allow("kms:*"), deny("kms:Encrypt")])
    key = A.key(A.enable_iam())
    denied_encrypt(session, key, message=explicit("Encrypt", key["Arn"], session.arn, "a session policy"))


def test_session_policy_caps_a_key_policy_statement_naming_the_role(A):
    # IAM rule: a resource-policy grant to a ROLE ARN is limited by the session policy.
    session = A.role(session_policy=[allow("kms:DescribeKey")])
    key = A.key(kp_allow(session.role_arn, "kms:*"))
    session.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, SP))


def test_session_policy_does_not_cap_a_key_policy_statement_naming_the_session_itself(A):
    # IAM rule: a resource-policy grant to the SESSION ARN is not limited by the session policy.
    session = A.role(session_policy=[allow("kms:DescribeKey")])
    key = A.key(kp_allow(session.arn, "kms:*"))
    encrypt(session, key)


def test_permissions_boundary_caps_delegated_identity_permissions(A):
    user = A.user(allow("kms:*"), boundary=[allow("kms:DescribeKey")])
    key = A.key(A.enable_iam())
    user.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, PB))


def test_explicit_deny_in_a_permissions_boundary(A):
    user = A.user(allow("kms:*"), boundary=[allow("kms:*"), deny("kms:Encrypt")])
    key = A.key(A.enable_iam())
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a permissions boundary"))


def test_permissions_boundary_does_not_cap_a_key_policy_statement_naming_the_user(A):
    # IAM rule: a resource-policy grant to a USER ARN is not limited by an implicit boundary deny.
    user = A.user(boundary=[allow("kms:DescribeKey")])
    key = A.key(kp_allow(user.arn, "kms:*"))
    encrypt(user, key)


def test_permissions_boundary_caps_a_key_policy_statement_naming_the_role(A):
    session = A.role(boundary=[allow("kms:DescribeKey")])
    key = A.key(kp_allow(session.role_arn, "kms:*"))
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, PB))


def test_permissions_boundary_caps_iam_only_create_key(A):
    user = A.user(allow("kms:*"), boundary=[allow("kms:ListKeys")])
    user.kms.list_keys()
    expect_error(
        user.kms.create_key,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:CreateKey on resource: * because no permissions boundary allows the kms:CreateKey action",
    )


# --- NotAction / NotResource / NotPrincipal ----------------------------------


def test_not_action_allow_in_key_policy_allows_everything_else(A):
    user = A.user()
    key = A.key(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "NotAction": ["kms:Decrypt", "kms:Put*"], "Resource": "*"})
    blob = encrypt(user, key)["CiphertextBlob"]
    user.kms.describe_key(KeyId=key["Arn"])
    expect_error(user.kms.decrypt, AD, message=no_allow("Decrypt", key["Arn"], user.arn, IB), CiphertextBlob=blob)


def test_not_action_deny_in_key_policy_denies_everything_but_the_listed_actions(A):
    user = A.user()
    key = A.key(
        kp_allow(user.arn, "kms:*"),
        {"Effect": "Deny", "Principal": {"AWS": user.arn}, "NotAction": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"},
        A.enable_iam(),
    )
    encrypt(user, key)
    expect_error(
        user.kms.generate_data_key,
        AD,
        message=explicit("GenerateDataKey", key["Arn"], user.arn, "a resource-based policy"),
        KeyId=key["Arn"],
        NumberOfBytes=16,
    )


def test_not_action_in_identity_policy(A):
    user = A.user({"Effect": "Allow", "NotAction": "kms:Encrypt", "Resource": "*"})
    key = A.key(A.enable_iam())
    user.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_not_resource_in_identity_policy_excludes_the_named_key(A):
    k1, k2 = A.key(A.enable_iam()), A.key(A.enable_iam())
    user = A.user({"Effect": "Allow", "Action": "kms:Encrypt", "NotResource": k1["Arn"]})
    encrypt(user, k2)
    denied_encrypt(user, k1, message=no_allow("Encrypt", k1["Arn"], user.arn, IB))


def test_not_resource_deny_in_identity_policy_denies_every_other_key(A):
    k1, k2 = A.key(A.enable_iam()), A.key(A.enable_iam())
    user = A.user(allow("kms:*"), {"Effect": "Deny", "Action": "kms:*", "NotResource": k1["Arn"]})
    encrypt(user, k1)
    denied_encrypt(user, k2, message=explicit("Encrypt", k2["Arn"], user.arn, "an identity-based policy"))


def test_not_resource_in_key_policy_naming_this_key_matches_nothing(A):
    user = A.user()
    key = A.key(A.enable_iam())
    other = A.key(A.enable_iam())
    A.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt", "NotResource": key["Arn"]}),
    )
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))
    A.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt", "NotResource": other["Arn"]}),
    )
    encrypt(user, key)


def test_not_principal_deny_in_key_policy_denies_everyone_not_listed(A):
    admin, other = A.user(), A.user()
    key = A.key(
        kp_allow("*", "kms:*"),
        {"Effect": "Deny", "NotPrincipal": {"AWS": [admin.arn, A.root_arn]}, "Action": "kms:Encrypt", "Resource": "*"},
    )
    encrypt(admin, key)
    encrypt(A.root, key)
    denied_encrypt(other, key, message=explicit("Encrypt", key["Arn"], other.arn, "a resource-based policy"))
    other.kms.describe_key(KeyId=key["Arn"])


def test_not_principal_deny_listing_session_role_and_account_spares_that_session(A):
    # The IUG's documented form: the session ARN, its role ARN and the account ARN.
    session = A.role()
    user = A.user()
    key = A.key(
        kp_allow("*", "kms:*"),
        {"Effect": "Deny", "NotPrincipal": {"AWS": [session.arn, session.role_arn, A.root_arn]}, "Action": "kms:Encrypt", "Resource": "*"},
    )
    encrypt(session, key)
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))


# --- wildcards in actions ----------------------------------------------------


@pytest.mark.parametrize(
    "pattern,op,allowed",
    [
        pytest.param("kms:Gen*", "GenerateDataKey", True, id="action_prefix_wildcard_kms_Gen_star_matches_GenerateDataKey"),
        pytest.param("kms:Gen*", "Encrypt", False, id="action_prefix_wildcard_kms_Gen_star_does_not_match_Encrypt"),
        pytest.param("kms:*Key", "DescribeKey", True, id="action_suffix_wildcard_kms_star_Key_matches_DescribeKey"),
        pytest.param("kms:*Key", "GenerateDataKey", True, id="action_suffix_wildcard_kms_star_Key_matches_GenerateDataKey"),
        pytest.param("kms:*Key", "Encrypt", False, id="action_suffix_wildcard_kms_star_Key_does_not_match_Encrypt"),
        pytest.param("KMS:encrypt", "Encrypt", True, id="action_names_are_case_insensitive_KMS_encrypt"),
        pytest.param("kms:ENCRYPT", "Encrypt", True, id="action_names_are_case_insensitive_ENCRYPT"),
        pytest.param("kms:Encr?pt", "Encrypt", True, id="action_question_mark_matches_one_character"),
        pytest.param("kms:Encry?", "Encrypt", False, id="action_question_mark_matches_exactly_one_character"),
        pytest.param("*", "Encrypt", True, id="action_star_alone_matches_every_action"),
        pytest.param("kms:Encrypt*", "Encrypt", True, id="action_trailing_star_matches_the_empty_suffix"),
    ],
)
def test_action_wildcards_in_key_policy(A, pattern, op, allowed):
    user = A.user()
    key = A.key(A.enable_iam(), kp_allow(user.arn, pattern))
    call = {
        "Encrypt": lambda: user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x"),
        "GenerateDataKey": lambda: user.kms.generate_data_key(KeyId=key["Arn"], NumberOfBytes=16),
        "DescribeKey": lambda: user.kms.describe_key(KeyId=key["Arn"]),
    }[op]
    if allowed:
        call()
    else:
        expect_error(call, AD, message=no_allow(op, key["Arn"], user.arn, IB))


@pytest.mark.parametrize(
    "pattern,allowed",
    [
        pytest.param("kms:Gen*", True, id="identity_action_wildcard_kms_Gen_star_allows_GenerateDataKey"),
        pytest.param("KMS:generatedatakey", True, id="identity_action_names_are_case_insensitive"),
        pytest.param("kms:Generate*Pair", False, id="identity_action_wildcard_that_does_not_match_is_no_allow"),
    ],
)
def test_action_wildcards_in_identity_policy(A, pattern, allowed):
    user = A.user(allow(pattern))
    key = A.key(A.enable_iam())
    if allowed:
        user.kms.generate_data_key(KeyId=key["Arn"], NumberOfBytes=16)
    else:
        expect_error(
            user.kms.generate_data_key, AD, message=no_allow("GenerateDataKey", key["Arn"], user.arn, IB), KeyId=key["Arn"], NumberOfBytes=16
        )


# --- wildcards and forms in identity-policy resources ------------------------


def _resource_pattern(form, A, key):
    kid = key["KeyId"]
    return {
        "key-arn": key["Arn"],
        "account-keys-star": f"arn:aws:kms:{REGION}:{A.id}:key/*",
        "region-star": f"arn:aws:kms:*:{A.id}:key/{kid}",
        "id-prefix-star": f"arn:aws:kms:{REGION}:{A.id}:key/{kid[:8]}*",
        "question-marks": f"arn:aws:kms:{REGION}:{A.id}:key/{kid[:-2]}??",
        "star": "*",
        "kms-star": "arn:aws:kms:*:*:*",
        "uppercase-id": f"arn:aws:kms:{REGION}:{A.id}:key/{kid.upper()}",
        "other-account": f"arn:aws:kms:{REGION}:999999999999:key/*",
        "other-region": f"arn:aws:kms:eu-west-1:{A.id}:key/*",
        "alias-arn": f"arn:aws:kms:{REGION}:{A.id}:alias/*",
        "one-question-too-few": f"arn:aws:kms:{REGION}:{A.id}:key/{kid[:-2]}?",
    }[form]


@pytest.mark.parametrize(
    "form,allowed",
    [
        pytest.param("key-arn", True, id="resource_exact_key_arn_matches"),
        pytest.param("account-keys-star", True, id="resource_key_star_matches_every_key_of_the_account"),
        pytest.param("region-star", True, id="resource_region_wildcard_matches"),
        pytest.param("id-prefix-star", True, id="resource_key_id_prefix_star_matches"),
        pytest.param("question-marks", True, id="resource_question_marks_match_single_characters"),
        pytest.param("star", True, id="resource_star_matches_everything"),
        pytest.param("kms-star", True, id="resource_star_in_the_resource_part_spans_the_slash"),
        pytest.param("uppercase-id", False, id="resource_arn_matching_is_case_sensitive"),
        pytest.param("other-account", False, id="resource_of_another_account_does_not_match"),
        pytest.param("other-region", False, id="resource_of_another_region_does_not_match"),
        pytest.param("alias-arn", False, id="resource_alias_arn_never_matches_the_key"),
        pytest.param("one-question-too-few", False, id="resource_question_mark_matches_exactly_one_character"),
    ],
)
def test_identity_policy_resource_patterns(A, form, allowed):
    key = A.key(A.enable_iam())
    name = uid("alias/res-")
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    user = A.user(allow("kms:Encrypt", _resource_pattern(form, A, key)))
    if allowed:
        encrypt(user, key)
    else:
        denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))
        # Naming the key by its alias changes nothing: the resource is the key ARN.
        denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB), KeyId=name)


def test_key_policy_resource_naming_another_key_does_not_apply(A):
    user = A.user()
    other = A.key(A.enable_iam())
    key = A.key(A.enable_iam())
    A.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt", "Resource": other["Arn"]}),
    )
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))
    A.kms.put_key_policy(
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt", "Resource": key["Arn"]}),
    )
    encrypt(user, key)


# --- cross-account ------------------------------------------------------------


@pytest.mark.parametrize(
    "key_side,caller_side,expected",
    [
        pytest.param("account", True, None, id="cross_account_key_policy_account_and_caller_identity_policy_allow"),
        pytest.param("account", False, IB, id="cross_account_key_policy_alone_is_not_enough"),
        pytest.param("user", False, IB, id="cross_account_key_policy_naming_the_external_user_still_needs_its_identity_policy"),
        pytest.param("user", True, None, id="cross_account_key_policy_naming_the_user_plus_identity_policy_allow"),
        pytest.param("none", True, RB, id="cross_account_identity_policy_alone_is_not_enough"),
        pytest.param("star", True, None, id="cross_account_principal_star_plus_identity_policy_allow"),
        pytest.param("star", False, IB, id="cross_account_principal_star_still_needs_the_callers_identity_policy"),
    ],
)
def test_cross_account_needs_both_sides(A, B, key_side, caller_side, expected):
    user = B.user(allow("kms:Encrypt", f"arn:aws:kms:*:{A.id}:key/*")) if caller_side else B.user()
    principal = {"account": B.root_arn, "user": user.arn, "star": "*", "none": None}[key_side]
    stmts = [A.enable_iam()]
    if principal is not None:
        stmts.append(kp_allow(principal, "kms:Encrypt"))
    key = A.key(*stmts)
    if expected is None:
        assert encrypt(user, key)["KeyId"] == key["Arn"]
    else:
        denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, expected))


def test_cross_account_root_of_the_external_account_needs_only_the_key_policy(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, ["kms:Encrypt", "kms:DescribeKey"]))
    encrypt(B.root, key)
    assert B.kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["AWSAccountId"] == A.id


def test_cross_account_role_session_allowed_through_its_role_arn_and_identity_policy(A, B):
    session = B.role(allow("kms:Encrypt", f"arn:aws:kms:{REGION}:{A.id}:key/*"))
    key = A.key(A.enable_iam(), kp_allow(session.role_arn, "kms:Encrypt"))
    encrypt(session, key)


def test_cross_account_delegation_covers_only_the_delegated_actions(A, B):
    user = B.user(allow("kms:*"))
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, "kms:Encrypt"))
    encrypt(user, key)
    expect_error(user.kms.describe_key, AD, message=no_allow("DescribeKey", key["Arn"], user.arn, RB), KeyId=key["Arn"])


def test_cross_account_identity_policy_for_own_account_keys_does_not_cover_the_external_key(A, B):
    user = B.user(allow("kms:*", f"arn:aws:kms:*:{B.id}:key/*"))
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, "kms:*"))
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_cross_account_explicit_deny_in_the_callers_identity_policy_wins(A, B):
    user = B.user(allow("kms:*"), deny("kms:Encrypt", f"arn:aws:kms:*:{A.id}:*"))
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "an identity-based policy"))


def test_cross_account_deny_of_the_external_account_in_key_policy_covers_its_users(A, B):
    user = B.user(allow("kms:*"))
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"), kp_deny(B.id, "kms:Encrypt"))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))


def test_cross_account_key_must_be_named_by_arn_a_bare_key_id_resolves_in_the_callers_account(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:*"))
    expect_error(
        B.kms.encrypt,
        "NotFoundException",
        message=f"Key '{B.key_arn(key['KeyId'])}' does not exist",
        KeyId=key["KeyId"],
        Plaintext=b"x",
    )
    encrypt(B.root, key)


def test_cross_account_alias_name_resolves_in_the_callers_account_but_alias_arn_works(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:*"))
    name = uid("alias/x-")
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    expect_error(B.kms.encrypt, "NotFoundException", KeyId=name, Plaintext=b"x")
    assert B.kms.encrypt(KeyId=A.alias_arn(name), Plaintext=b"x")["KeyId"] == key["Arn"]


@pytest.mark.parametrize(
    "op",
    [
        pytest.param("PutKeyPolicy", id="put_key_policy_is_not_a_cross_account_operation"),
        pytest.param("GetKeyPolicy", id="get_key_policy_is_not_a_cross_account_operation"),
        pytest.param("EnableKey", id="enable_key_is_not_a_cross_account_operation"),
        pytest.param("DisableKey", id="disable_key_is_not_a_cross_account_operation"),
        pytest.param("ScheduleKeyDeletion", id="schedule_key_deletion_is_not_a_cross_account_operation"),
        pytest.param("TagResource", id="tag_resource_is_not_a_cross_account_operation"),
        pytest.param("UpdateKeyDescription", id="update_key_description_is_not_a_cross_account_operation"),
        pytest.param("EnableKeyRotation", id="enable_key_rotation_is_not_a_cross_account_operation"),
        pytest.param("ListResourceTags", id="list_resource_tags_is_not_a_cross_account_operation"),
    ],
)
def test_operations_not_allowed_cross_account_are_denied_even_when_the_key_policy_allows(A, B, op):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:*"))
    arn = key["Arn"]
    calls = {
        "PutKeyPolicy": lambda: B.kms.put_key_policy(KeyId=arn, PolicyName="default", Policy=doc(A.enable_iam())),
        "GetKeyPolicy": lambda: B.kms.get_key_policy(KeyId=arn, PolicyName="default"),
        "EnableKey": lambda: B.kms.enable_key(KeyId=arn),
        "DisableKey": lambda: B.kms.disable_key(KeyId=arn),
        "ScheduleKeyDeletion": lambda: B.kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7),
        "TagResource": lambda: B.kms.tag_resource(KeyId=arn, Tags=[{"TagKey": "a", "TagValue": "b"}]),
        "UpdateKeyDescription": lambda: B.kms.update_key_description(KeyId=arn, Description="d"),
        "EnableKeyRotation": lambda: B.kms.enable_key_rotation(KeyId=arn),
        "ListResourceTags": lambda: B.kms.list_resource_tags(KeyId=arn),
    }
    expect_error(calls[op], AD, message=no_allow(op, arn, B.root_arn, RB))
    assert A.kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"


def test_cross_account_operations_that_are_allowed_work_with_the_key_arn(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:*"))
    dest = B.key()
    arn = key["Arn"]
    B.kms.describe_key(KeyId=arn)
    assert B.kms.get_key_rotation_status(KeyId=arn)["KeyRotationEnabled"] is False
    B.kms.generate_data_key(KeyId=arn, NumberOfBytes=32)
    B.kms.generate_data_key_without_plaintext(KeyId=arn, NumberOfBytes=32)
    blob = B.kms.encrypt(KeyId=arn, Plaintext=b"x")["CiphertextBlob"]
    out = B.kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dest["KeyId"])
    assert out["SourceKeyId"] == arn and out["KeyId"] == dest["Arn"]
    assert B.kms.list_grants(KeyId=arn)["Grants"] == []


def test_decrypt_of_another_accounts_ciphertext_needs_both_sides(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, "kms:Decrypt"))
    blob = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret", EncryptionContext={"a": "1"})["CiphertextBlob"]
    allowed = B.user(allow("kms:Decrypt", key["Arn"]))
    out = allowed.kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "1"})
    assert out["Plaintext"] == b"secret" and out["KeyId"] == key["Arn"]
    bare = B.user()
    expect_error(
        bare.kms.decrypt, AD, message=no_allow("Decrypt", key["Arn"], bare.arn, IB), CiphertextBlob=blob, EncryptionContext={"a": "1"}
    )


def test_decrypt_of_another_accounts_ciphertext_without_key_policy_access_is_denied(A, B):
    key = A.key(A.enable_iam())
    blob = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"secret")["CiphertextBlob"]
    expect_error(B.kms.decrypt, AD, message=no_allow("Decrypt", key["Arn"], B.root_arn, RB), CiphertextBlob=blob)


def test_cross_account_caller_account_condition_with_principal_star(A, B):
    key = A.key(A.enable_iam(), kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"kms:CallerAccount": B.id}}))
    user = B.user(allow("kms:Encrypt"))
    encrypt(user, key)
    C = Account(B.srv, fresh_account())
    denied_encrypt(C.root, key, message=no_allow("Encrypt", key["Arn"], C.root_arn, RB))


# --- grants: cross-account, account grantees, key state ------------------------


def test_cross_account_grant_replaces_the_callers_identity_policy(A, B):
    key = A.key(A.enable_iam())
    user = B.user()
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, RB))
    g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt", "Decrypt"])
    blob = encrypt(user, key, GrantTokens=[g["GrantToken"]])["CiphertextBlob"]
    assert user.kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"x"
    expect_error(user.kms.describe_key, AD, KeyId=key["Arn"])


def test_cross_account_grant_is_still_beaten_by_an_identity_deny(A, B):
    key = A.key(A.enable_iam())
    user = B.user(deny("kms:Encrypt"))
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "an identity-based policy"))


def test_grant_to_an_external_account_principal_needs_iam_delegation_in_that_account(A, B):
    key = A.key(A.enable_iam())
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=B.root_arn, Operations=["Encrypt"])
    encrypt(B.root, key)
    bare = B.user()
    denied_encrypt(bare, key)
    delegated = B.user(allow("kms:Encrypt", key["Arn"]))
    encrypt(delegated, key)


def test_grant_to_the_own_account_principal_needs_an_identity_policy(A):
    other = A.user()
    key = A.key(kp_allow(other.arn, "kms:*"))  # the key policy does not delegate to the account
    other.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=A.root_arn, Operations=["Encrypt"])
    bare = A.user()
    denied_encrypt(bare, key, message=no_allow("Encrypt", key["Arn"], bare.arn, RB))
    delegated = A.user(allow("kms:Encrypt"))
    encrypt(delegated, key)


def test_cross_account_create_grant_needs_key_arn_and_both_sides(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, "kms:CreateGrant"))
    granter = B.user(allow("kms:CreateGrant", key["Arn"]))
    grantee = B.user()
    expect_error(
        granter.kms.create_grant, "NotFoundException", KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt"]
    )
    g = granter.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=grantee.arn, Operations=["Encrypt"], RetiringPrincipal=granter.arn)
    encrypt(grantee, key)
    listed = A.kms.list_grants(KeyId=key["KeyId"])["Grants"]
    assert [x["GrantId"] for x in listed] == [g["GrantId"]]
    assert listed[0]["IssuingAccount"] == B.root_arn
    bare = B.user()
    expect_error(
        bare.kms.create_grant,
        AD,
        message=no_allow("CreateGrant", key["Arn"], bare.arn, IB),
        KeyId=key["Arn"],
        GranteePrincipal=grantee.arn,
        Operations=["Encrypt"],
    )


def test_cross_account_retiring_principal_finds_and_retires_the_grant(A, B):
    key = A.key(A.enable_iam())
    grantee = B.user()
    retirer = B.user()
    g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=retirer.arn, Operations=["Encrypt"])
    found = B.kms.list_retirable_grants(RetiringPrincipal=retirer.arn)["Grants"]
    assert [x["GrantId"] for x in found] == [g["GrantId"]] and found[0]["KeyId"] == key["Arn"]
    encrypt(grantee, key)
    retirer.kms.retire_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    denied_encrypt(grantee, key)


def test_grant_holder_gets_the_key_state_error_after_authorization(A):
    key = A.key(A.enable_iam())
    user, stranger = A.user(), A.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    A.kms.disable_key(KeyId=key["KeyId"])
    expect_error(user.kms.encrypt, "DisabledException", message=f"{key['Arn']} is disabled.", KeyId=key["Arn"], Plaintext=b"x")
    denied_encrypt(stranger, key, message=no_allow("Encrypt", key["Arn"], stranger.arn, IB))


def test_grant_with_encryption_context_constraint_cross_account(A, B):
    key = A.key(A.enable_iam())
    user = B.user()
    A.kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"], Constraints={"EncryptionContextSubset": {"tenant": "b"}}
    )
    encrypt(user, key, EncryptionContext={"tenant": "b", "x": "y"})
    denied_encrypt(user, key, EncryptionContext={"tenant": "a"})


# --- conditions -------------------------------------------------------------------


def _cond_key(A, user, actions, condition):
    return A.key(A.enable_iam(), kp_allow(user.arn, actions, Condition=condition))


@pytest.mark.parametrize(
    "policy_key,ctx,allowed",
    [
        pytest.param("kms:EncryptionContext:Purpose", {"purpose": "backup"}, True, id="encryption_context_key_name_suffix_is_case_insensitive_lower_request"),
        pytest.param("kms:encryptioncontext:purpose", {"Purpose": "backup"}, True, id="encryption_context_key_name_suffix_is_case_insensitive_upper_request"),
        pytest.param("kms:EncryptionContext:purpose", {"purpose": "Backup"}, False, id="encryption_context_value_is_case_sensitive_with_string_equals"),
        pytest.param("kms:EncryptionContext:purpose", {}, False, id="encryption_context_condition_with_no_context_is_not_met"),
    ],
)
def test_encryption_context_condition_key(A, policy_key, ctx, allowed):
    user = A.user()
    key = _cond_key(A, user, "kms:Encrypt", {"StringEquals": {policy_key: "backup"}})
    if allowed:
        encrypt(user, key, EncryptionContext=ctx)
    else:
        denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB), EncryptionContext=ctx)


@pytest.mark.parametrize(
    "op,ctx,allowed",
    [
        pytest.param("ForAnyValue:StringEquals", {"app": "1", "x": "2"}, True, id="encryption_context_keys_for_any_value_matches_when_one_key_is_listed"),
        pytest.param("ForAnyValue:StringEquals", {"x": "2"}, False, id="encryption_context_keys_for_any_value_fails_when_no_key_is_listed"),
        pytest.param("ForAnyValue:StringEquals", {}, False, id="encryption_context_keys_for_any_value_fails_without_context"),
        pytest.param("ForAllValues:StringEquals", {"app": "1", "env": "2"}, True, id="encryption_context_keys_for_all_values_matches_when_every_key_is_listed"),
        pytest.param("ForAllValues:StringEquals", {"app": "1", "x": "2"}, False, id="encryption_context_keys_for_all_values_fails_on_an_unlisted_key"),
        pytest.param("ForAllValues:StringEquals", {}, True, id="encryption_context_keys_for_all_values_is_true_without_context"),
    ],
)
def test_encryption_context_keys_set_operators(A, op, ctx, allowed):
    user = A.user()
    key = _cond_key(A, user, "kms:Encrypt", {op: {"kms:EncryptionContextKeys": ["app", "env"]}})
    if allowed:
        encrypt(user, key, EncryptionContext=ctx)
    else:
        denied_encrypt(user, key, EncryptionContext=ctx)


def test_null_condition_on_encryption_context_keys_requires_a_context(A):
    user = A.user()
    key = _cond_key(A, user, "kms:Encrypt", {"Null": {"kms:EncryptionContextKeys": "false"}})
    encrypt(user, key, EncryptionContext={"any": "thing"})
    denied_encrypt(user, key)


def test_if_exists_condition_holds_when_the_key_is_absent(A):
    user = A.user()
    key = _cond_key(A, user, "kms:Encrypt", {"StringEqualsIfExists": {"kms:EncryptionContext:app": "x"}})
    encrypt(user, key)
    encrypt(user, key, EncryptionContext={"app": "x"})
    denied_encrypt(user, key, EncryptionContext={"app": "y"})


def test_encryption_algorithm_condition_defaults_to_symmetric_default(A):
    user = A.user()
    key = _cond_key(A, user, ["kms:Encrypt", "kms:GenerateDataKey"], {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}})
    encrypt(user, key)
    user.kms.generate_data_key(KeyId=key["Arn"], NumberOfBytes=16)


def test_encryption_algorithm_condition_on_rsa_encrypt(A):
    user = A.user()
    key = A.key(
        A.enable_iam(),
        kp_allow(user.arn, "kms:Encrypt", Condition={"StringEquals": {"kms:EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}}),
        KeySpec="RSA_2048",
        KeyUsage="ENCRYPT_DECRYPT",
    )
    user.kms.encrypt(KeyId=key["Arn"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    expect_error(
        user.kms.encrypt,
        AD,
        message=no_allow("Encrypt", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        Plaintext=b"x",
        EncryptionAlgorithm="RSAES_OAEP_SHA_1",
    )


@pytest.mark.parametrize(
    "condition,create_args,allowed",
    [
        pytest.param({"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}, {}, True, id="create_key_key_spec_condition_sees_the_default_spec"),
        pytest.param({"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}, {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, False, id="create_key_key_spec_condition_refuses_another_spec"),
        pytest.param({"StringEquals": {"kms:KeyUsage": "SIGN_VERIFY"}}, {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, True, id="create_key_key_usage_condition_allows_the_usage"),
        pytest.param({"StringEquals": {"kms:KeyUsage": "SIGN_VERIFY"}}, {}, False, id="create_key_key_usage_condition_sees_the_default_usage"),
        pytest.param({"StringLike": {"kms:KeySpec": "ECC_*"}}, {"KeySpec": "ECC_NIST_P384", "KeyUsage": "SIGN_VERIFY"}, True, id="create_key_key_spec_string_like"),
    ],
)
def test_create_key_spec_and_usage_conditions_in_identity_policy(A, condition, create_args, allowed):
    user = A.user(allow("kms:CreateKey", Condition=condition))
    pol = doc(kp_allow(user.arn, "kms:*"))
    if allowed:
        user.kms.create_key(Policy=pol, **create_args)
    else:
        expect_error(
            user.kms.create_key,
            AD,
            message=f"User: {user.arn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action",
            Policy=pol,
            **create_args,
        )


@pytest.mark.parametrize(
    "condition,tags,allowed",
    [
        pytest.param({"StringEquals": {"aws:RequestTag/team": "blue"}}, [("team", "blue")], True, id="request_tag_condition_met"),
        pytest.param({"StringEquals": {"aws:RequestTag/team": "blue"}}, [("team", "red")], False, id="request_tag_condition_value_mismatch"),
        pytest.param({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}, [("team", "a"), ("env", "b")], True, id="tag_keys_for_all_values_met"),
        pytest.param({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "env"]}}, [("team", "a"), ("owner", "b")], False, id="tag_keys_for_all_values_unlisted_key"),
        pytest.param({"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}}, [("env", "a")], False, id="tag_keys_for_any_value_missing_key"),
    ],
)
def test_create_key_request_tag_and_tag_keys_conditions(A, condition, tags, allowed):
    user = A.user(allow("kms:CreateKey"), allow("kms:TagResource", Condition=condition))
    pol = doc(kp_allow(user.arn, "kms:*"))
    t = [{"TagKey": k, "TagValue": v} for k, v in tags]
    if allowed:
        user.kms.create_key(Policy=pol, Tags=t)
    else:
        expect_error(
            user.kms.create_key,
            AD,
            message=f"User: {user.arn} is not authorized to perform: kms:TagResource because no identity-based policy allows the kms:TagResource action",
            Policy=pol,
            Tags=t,
        )


def test_tag_resource_request_tag_condition_in_identity_policy(A):
    user = A.user(allow("kms:TagResource", Condition={"StringEquals": {"aws:RequestTag/env": "dev"}}))
    key = A.key(A.enable_iam())
    user.kms.tag_resource(KeyId=key["Arn"], Tags=[{"TagKey": "env", "TagValue": "dev"}])
    expect_error(
        user.kms.tag_resource,
        AD,
        message=no_allow("TagResource", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        Tags=[{"TagKey": "env", "TagValue": "prod"}],
    )


@pytest.mark.parametrize(
    "cond_key,tag,allowed",
    [
        pytest.param("aws:ResourceTag/env", ("env", "dev"), True, id="resource_tag_condition_matches_the_keys_tag"),
        pytest.param("aws:ResourceTag/env", ("env", "prod"), False, id="resource_tag_condition_value_mismatch"),
        pytest.param("aws:ResourceTag/env", None, False, id="resource_tag_condition_untagged_key"),
        pytest.param("aws:resourcetag/ENV", ("env", "dev"), True, id="resource_tag_condition_key_name_is_case_insensitive"),
    ],
)
def test_resource_tag_condition_in_identity_policy(A, cond_key, tag, allowed):
    user = A.user(allow("kms:Encrypt", Condition={"StringEquals": {cond_key: "dev"}}))
    kw = {"Tags": [{"TagKey": tag[0], "TagValue": tag[1]}]} if tag else {}
    key = A.key(A.enable_iam(), **kw)
    if allowed:
        encrypt(user, key)
    else:
        denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_resource_tag_with_username_policy_variable(A):
    user = A.user(allow("kms:Encrypt", Condition={"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}))
    mine = A.key(A.enable_iam(), Tags=[{"TagKey": "owner", "TagValue": user.name}])
    theirs = A.key(A.enable_iam(), Tags=[{"TagKey": "owner", "TagValue": "someone-else"}])
    encrypt(user, mine)
    denied_encrypt(user, theirs)


def test_request_alias_condition_with_string_like_and_alias_arn(A):
    key = A.key(A.enable_iam())
    good, bad = uid("alias/app-"), uid("alias/other-")
    A.kms.create_alias(AliasName=good, TargetKeyId=key["KeyId"])
    A.kms.create_alias(AliasName=bad, TargetKeyId=key["KeyId"])
    user = A.user(allow("kms:Encrypt", Condition={"StringLike": {"kms:RequestAlias": "alias/app-*"}}))
    encrypt(user, key, KeyId=good)
    encrypt(user, key, KeyId=A.alias_arn(good))  # the condition value is the alias name
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB), KeyId=bad)
    denied_encrypt(user, key, KeyId=key["Arn"])


def test_resource_aliases_condition_follows_the_keys_aliases(A):
    key = A.key(A.enable_iam())
    name = uid("alias/finance-")
    user = A.user(allow("kms:Encrypt", Condition={"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/finance-*"}}))
    denied_encrypt(user, key)
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    encrypt(user, key)  # by key ARN: the key's aliases count, not how it is named
    A.kms.delete_alias(AliasName=name)
    denied_encrypt(user, key)


def test_principal_arn_condition_is_the_role_arn_for_sessions(A):
    session = A.role()
    key = A.key(
        A.enable_iam(),
        kp_allow("*", "kms:Encrypt", Condition={"ArnEquals": {"aws:PrincipalArn": session.role_arn}}),
        kp_allow("*", "kms:DescribeKey", Condition={"ArnEquals": {"aws:PrincipalArn": session.arn}}),
    )
    encrypt(session, key)
    expect_error(session.kms.describe_key, AD, KeyId=key["Arn"])


@pytest.mark.parametrize(
    "caller,principal_type",
    [
        pytest.param("user", "User", id="principal_type_is_User_for_iam_users"),
        pytest.param("session", "AssumedRole", id="principal_type_is_AssumedRole_for_role_sessions"),
        pytest.param("root", "Account", id="principal_type_is_Account_for_the_root_user"),
    ],
)
def test_principal_type_condition(A, caller, principal_type):
    p = {"user": A.user, "session": A.role, "root": lambda: A.root}[caller]()
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalType": principal_type}}))
    encrypt(p, key)
    other = A.user() if caller != "user" else A.role()
    denied_encrypt(other, key, message=no_allow("Encrypt", key["Arn"], other.arn, RB))


def test_username_condition_is_present_only_for_iam_users(A):
    user = A.user()
    session = A.role()
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:username": user.name}}))
    encrypt(user, key)
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, RB))
    other = A.user()
    denied_encrypt(other, key)


def test_userid_condition_is_role_id_and_session_name_for_sessions(A):
    session = A.role(session_name="batch")
    user = A.user()
    key = A.key(
        kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:userid": f"{session.role_id}:batch"}}),
        kp_allow("*", "kms:DescribeKey", Condition={"StringEquals": {"aws:userid": user.user_id}}),
    )
    encrypt(session, key)
    user.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(user, key)
    other_session = session.assume(session_name="other")
    denied_encrypt(other_session, key)


@pytest.mark.parametrize(
    "condition,allowed",
    [
        pytest.param({"IpAddress": {"aws:SourceIp": "127.0.0.1"}}, True, id="source_ip_single_address_matches_loopback"),
        pytest.param({"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}, True, id="source_ip_cidr_matches_loopback"),
        pytest.param({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, False, id="source_ip_other_cidr_does_not_match"),
        pytest.param({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, True, id="not_ip_address_matches_outside_the_cidr"),
        pytest.param({"Bool": {"aws:SecureTransport": "false"}}, True, id="secure_transport_is_false_on_plain_http"),
        pytest.param({"Bool": {"aws:SecureTransport": "true"}}, False, id="secure_transport_true_is_not_met_on_plain_http"),
        pytest.param({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, True, id="current_time_after_a_past_date"),
        pytest.param({"DateGreaterThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}, False, id="current_time_after_a_future_date_is_not_met"),
        pytest.param({"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}}, True, id="current_time_before_a_future_date"),
        pytest.param({"Null": {"aws:SourceIp": "false"}}, True, id="null_false_on_a_present_global_key"),
        pytest.param({"Null": {"aws:username": "true"}}, False, id="null_true_on_username_fails_for_an_iam_user"),
        pytest.param({"StringEquals": {"aws:RequestedRegion": REGION}}, True, id="requested_region_is_the_endpoint_region"),
        pytest.param({"DateGreaterThan": {"aws:CurrentTime": "1577836800"}}, True, id="current_time_compared_with_epoch_seconds"),
        pytest.param({"NumericGreaterThan": {"aws:EpochTime": "1577836800"}}, True, id="epoch_time_is_present_and_numeric"),
        pytest.param({"IpAddress": {"AWS:SOURCEIP": "127.0.0.1/32"}}, True, id="global_condition_key_names_are_case_insensitive"),
        pytest.param({"Bool": {"aws:MultiFactorAuthPresent": "true"}}, False, id="mfa_present_is_absent_for_long_term_keys_so_bool_true_fails"),
        pytest.param({"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}, True, id="mfa_present_bool_if_exists_holds_when_absent"),
        pytest.param({"Null": {"aws:TokenIssueTime": "true"}}, True, id="token_issue_time_is_absent_for_long_term_keys"),
        pytest.param({"StringEquals": {"kms:KeyOrigin": "AWS_KMS"}}, True, id="key_origin_resource_condition"),
        pytest.param({"Bool": {"kms:MultiRegion": "true"}}, False, id="multi_region_resource_condition_false_for_single_region_keys"),
        pytest.param({"StringEquals": {"kms:CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"}}, True, id="deprecated_customer_master_key_spec_still_works"),
        pytest.param({"StringEquals": {"aws:ResourceAccount": "OWN"}}, True, id="resource_account_is_the_keys_account"),
    ],
)
def test_global_condition_keys_in_key_policy(A, condition, allowed):
    user = A.user()
    condition = json.loads(json.dumps(condition).replace('"OWN"', json.dumps(A.id)))
    key = _cond_key(A, user, "kms:Encrypt", condition)
    if allowed:
        encrypt(user, key)
    else:
        denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_deny_on_insecure_transport_is_an_explicit_deny(A):
    user = A.user(allow("kms:*"))
    key = A.key(A.enable_iam(), kp_deny("*", "kms:*", Condition={"Bool": {"aws:SecureTransport": "false"}}))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))


def test_bypass_policy_lockout_safety_check_deny_on_create_key(A):
    user = A.user(allow("kms:CreateKey"), deny("kms:CreateKey", Condition={"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}))
    pol = doc(kp_allow(user.arn, "kms:*"))
    user.kms.create_key(Policy=pol)
    user.kms.create_key(Policy=pol, BypassPolicyLockoutSafetyCheck=False)
    expect_error(
        user.kms.create_key,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:CreateKey on resource: * with an explicit deny in an identity-based policy",
        Policy=pol,
        BypassPolicyLockoutSafetyCheck=True,
    )


def test_bypass_policy_lockout_safety_check_deny_on_put_key_policy(A):
    user = A.user()
    stmts = [kp_allow(user.arn, "kms:*"), kp_deny("*", "kms:PutKeyPolicy", Condition={"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}})]
    key = A.key(*stmts)
    user.kms.put_key_policy(KeyId=key["Arn"], PolicyName="default", Policy=doc(*stmts))
    expect_error(
        user.kms.put_key_policy,
        AD,
        message=explicit("PutKeyPolicy", key["Arn"], user.arn, "a resource-based policy"),
        KeyId=key["Arn"],
        PolicyName="default",
        Policy=doc(*stmts),
        BypassPolicyLockoutSafetyCheck=True,
    )


def test_bypass_policy_lockout_safety_check_key_is_absent_when_omitted(A):
    user = A.user(allow("kms:CreateKey", Condition={"Null": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}))
    pol = doc(kp_allow(user.arn, "kms:*"))
    user.kms.create_key(Policy=pol)
    expect_error(user.kms.create_key, AD, Policy=pol, BypassPolicyLockoutSafetyCheck=False)


def test_re_encrypt_on_same_key_condition(A):
    user = A.user()
    k1 = A.key(
        A.enable_iam(),
        kp_allow(user.arn, ["kms:Encrypt", "kms:ReEncrypt*"], Condition={"Bool": {"kms:ReEncryptOnSameKey": "false"}}),
    )
    k2 = A.key(A.enable_iam(), kp_allow(user.arn, "kms:ReEncrypt*"))
    blob = A.kms.encrypt(KeyId=k1["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    user.kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=k2["Arn"])
    expect_error(user.kms.re_encrypt, AD, CiphertextBlob=blob, DestinationKeyId=k1["Arn"])


def test_re_encrypt_needs_re_encrypt_from_and_re_encrypt_to_separately(A):
    user = A.user()
    src = A.key(A.enable_iam(), kp_allow(user.arn, "kms:ReEncryptFrom"))
    dst = A.key(A.enable_iam(), kp_allow(user.arn, "kms:ReEncryptFrom"))
    blob = A.kms.encrypt(KeyId=src["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(
        user.kms.re_encrypt, AD, message=no_allow("ReEncryptTo", dst["Arn"], user.arn, IB), CiphertextBlob=blob, DestinationKeyId=dst["Arn"]
    )


@pytest.mark.parametrize(
    "operations,allowed",
    [
        pytest.param(["Encrypt"], True, id="grant_operations_for_all_values_subset_allowed"),
        pytest.param(["Encrypt", "Decrypt"], True, id="grant_operations_for_all_values_exact_set_allowed"),
        pytest.param(["Encrypt", "CreateGrant"], False, id="grant_operations_for_all_values_extra_operation_denied"),
    ],
)
def test_grant_operations_condition_on_create_grant(A, operations, allowed):
    user = A.user()
    grantee = A.user()
    key = _cond_key(A, user, "kms:CreateGrant", {"ForAllValues:StringEquals": {"kms:GrantOperations": ["Encrypt", "Decrypt"]}})
    args = dict(KeyId=key["Arn"], GranteePrincipal=grantee.arn, Operations=operations)
    if allowed:
        user.kms.create_grant(**args)
    else:
        expect_error(user.kms.create_grant, AD, message=no_allow("CreateGrant", key["Arn"], user.arn, IB), **args)


@pytest.mark.parametrize(
    "condition,good,bad",
    [
        pytest.param(
            {"StringEquals": {"kms:GranteePrincipal": "GOOD"}},
            {},
            {"GranteePrincipal": "BAD"},
            id="grantee_principal_condition_on_create_grant",
        ),
        pytest.param(
            {"StringEquals": {"kms:GrantConstraintType": "EncryptionContextEquals"}},
            {"Constraints": {"EncryptionContextEquals": {"a": "1"}}},
            {"Constraints": {"EncryptionContextSubset": {"a": "1"}}},
            id="grant_constraint_type_condition_on_create_grant",
        ),
        pytest.param(
            {"StringEquals": {"kms:RetiringPrincipal": "GOOD"}},
            {"RetiringPrincipal": "GOOD"},
            {},
            id="retiring_principal_condition_on_create_grant",
        ),
        pytest.param(
            {"ForAnyValue:StringEquals": {"kms:GrantOperations": "Decrypt"}},
            {"Operations": ["Decrypt", "Encrypt"]},
            {"Operations": ["Encrypt"]},
            id="grant_operations_for_any_value_condition_on_create_grant",
        ),
        pytest.param(
            {"StringEquals": {"kms:EncryptionContext:tenant": "t1"}},
            {"Constraints": {"EncryptionContextSubset": {"tenant": "t1"}}},
            {"Constraints": {"EncryptionContextSubset": {"tenant": "t2"}}},
            id="encryption_context_condition_on_create_grant_reads_the_constraint",
        ),
    ],
)
def test_create_grant_condition_keys_in_key_policy(A, condition, good, bad):
    user, good_p, bad_p = A.user(), A.user(), A.user()

    def fill(v):
        if isinstance(v, dict):
            return {k: fill(x) for k, x in v.items()}
        return {"GOOD": good_p.arn, "BAD": bad_p.arn}.get(v, v) if isinstance(v, str) else v

    key = _cond_key(A, user, "kms:CreateGrant", fill(condition))
    base = dict(KeyId=key["Arn"], GranteePrincipal=good_p.arn, Operations=["Encrypt"])
    user.kms.create_grant(**{**base, **fill(good)})
    expect_error(user.kms.create_grant, AD, message=no_allow("CreateGrant", key["Arn"], user.arn, IB), **{**base, **fill(bad)})


# --- op-specific condition keys of asymmetric, HMAC and lifecycle operations ----


@pytest.fixture(scope="module")
def rsa_sign_key(A):
    return A.key(A.enable_iam(), KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")


def test_signing_algorithm_condition_on_sign(A, rsa_sign_key):
    key = rsa_sign_key
    user = A.user(allow(["kms:Sign", "kms:Verify"], key["Arn"], Condition={"StringEquals": {"kms:SigningAlgorithm": "RSASSA_PSS_SHA_256"}}))
    sig = user.kms.sign(KeyId=key["Arn"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    user.kms.verify(KeyId=key["Arn"], Message=b"m", Signature=sig, SigningAlgorithm="RSASSA_PSS_SHA_256")
    expect_error(
        user.kms.sign,
        AD,
        message=no_allow("Sign", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        Message=b"m",
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )


def test_message_type_condition_on_sign(A, rsa_sign_key):
    key = rsa_sign_key
    user = A.user(allow("kms:Sign", key["Arn"], Condition={"StringEquals": {"kms:MessageType": "DIGEST"}}))
    user.kms.sign(KeyId=key["Arn"], Message=b"\x01" * 32, MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_256")
    expect_error(
        user.kms.sign,
        AD,
        message=no_allow("Sign", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        Message=b"m",
        MessageType="RAW",
        SigningAlgorithm="RSASSA_PSS_SHA_256",
    )


def test_mac_algorithm_condition_on_generate_mac(A):
    key = A.key(A.enable_iam(), KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    ok = A.user(allow("kms:GenerateMac", key["Arn"], Condition={"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_256"}}))
    no = A.user(allow("kms:GenerateMac", key["Arn"], Condition={"StringEquals": {"kms:MacAlgorithm": "HMAC_SHA_512"}}))
    ok.kms.generate_mac(KeyId=key["Arn"], Message=b"m", MacAlgorithm="HMAC_SHA_256")
    # Authorization comes before the algorithm check: AccessDenied, not InvalidKeyUsage.
    expect_error(no.kms.generate_mac, AD, message=no_allow("GenerateMac", key["Arn"], no.arn, IB), KeyId=key["Arn"], Message=b"m", MacAlgorithm="HMAC_SHA_256")


def test_key_agreement_algorithm_condition_on_derive_shared_secret(A):
    key = A.key(A.enable_iam(), KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    peer = A.key(A.enable_iam(), KeySpec="ECC_NIST_P256", KeyUsage="KEY_AGREEMENT")
    pub = A.kms.get_public_key(KeyId=peer["KeyId"])["PublicKey"]
    ok = A.user(allow("kms:DeriveSharedSecret", key["Arn"], Condition={"StringEquals": {"kms:KeyAgreementAlgorithm": "ECDH"}}))
    no = A.user(allow("kms:DeriveSharedSecret", key["Arn"]), deny("kms:DeriveSharedSecret", Condition={"StringEquals": {"kms:KeyAgreementAlgorithm": "ECDH"}}))
    ok.kms.derive_shared_secret(KeyId=key["Arn"], KeyAgreementAlgorithm="ECDH", PublicKey=pub)
    expect_error(
        no.kms.derive_shared_secret,
        AD,
        message=explicit("DeriveSharedSecret", key["Arn"], no.arn, "an identity-based policy"),
        KeyId=key["Arn"],
        KeyAgreementAlgorithm="ECDH",
        PublicKey=pub,
    )


def test_data_key_pair_spec_condition_on_generate_data_key_pair(A):
    key = A.key(A.enable_iam())
    user = A.user(allow("kms:GenerateDataKeyPair*", key["Arn"], Condition={"StringEquals": {"kms:DataKeyPairSpec": "ECC_NIST_P256"}}))
    user.kms.generate_data_key_pair(KeyId=key["Arn"], KeyPairSpec="ECC_NIST_P256")
    user.kms.generate_data_key_pair_without_plaintext(KeyId=key["Arn"], KeyPairSpec="ECC_NIST_P256")
    expect_error(
        user.kms.generate_data_key_pair,
        AD,
        message=no_allow("GenerateDataKeyPair", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        KeyPairSpec="ECC_NIST_P384",
    )


def test_schedule_key_deletion_pending_window_condition(A):
    user = A.user(allow(["kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"], Condition={"NumericGreaterThanEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "14"}}))
    key = A.key(A.enable_iam())
    expect_error(
        user.kms.schedule_key_deletion,
        AD,
        message=no_allow("ScheduleKeyDeletion", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        PendingWindowInDays=7,
    )
    assert user.kms.schedule_key_deletion(KeyId=key["Arn"], PendingWindowInDays=14)["PendingWindowInDays"] == 14


def test_rotation_period_in_days_condition_on_enable_key_rotation(A):
    user = A.user(allow("kms:EnableKeyRotation", Condition={"NumericLessThanEquals": {"kms:RotationPeriodInDays": "180"}}))
    key = A.key(A.enable_iam())
    user.kms.enable_key_rotation(KeyId=key["Arn"], RotationPeriodInDays=90)
    expect_error(
        user.kms.enable_key_rotation,
        AD,
        message=no_allow("EnableKeyRotation", key["Arn"], user.arn, IB),
        KeyId=key["Arn"],
        RotationPeriodInDays=365,
    )


def test_key_spec_resource_condition_on_sign(A, rsa_sign_key):
    user = A.user(allow("kms:Sign", Condition={"StringLike": {"kms:KeySpec": "RSA_*"}}))
    user.kms.sign(KeyId=rsa_sign_key["Arn"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    ecc = A.key(A.enable_iam(), KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
    expect_error(user.kms.sign, AD, message=no_allow("Sign", ecc["Arn"], user.arn, IB), KeyId=ecc["Arn"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")


# --- the lockout safety check ----------------------------------------------------------


def test_lockout_check_passes_for_a_policy_naming_the_caller_directly(A):
    user = A.user(allow("kms:CreateKey"))
    key = user.kms.create_key(Policy=doc(kp_allow(user.arn, "kms:*")))["KeyMetadata"]
    user.kms.put_key_policy(KeyId=key["Arn"], PolicyName="default", Policy=doc(kp_allow(user.arn, ["kms:PutKeyPolicy", "kms:Describe*"])))


def test_lockout_check_passes_for_a_role_session_when_the_policy_names_its_role(A):
    session = A.role(allow("kms:CreateKey"))
    session.kms.create_key(Policy=doc(kp_allow(session.role_arn, "kms:*")))


def test_lockout_check_refuses_a_policy_that_only_delegates_when_the_caller_has_no_identity_permission(A):
    user = A.user(allow("kms:CreateKey"))
    key = user.kms.create_key(Policy=doc(kp_allow(user.arn, "kms:*")))["KeyMetadata"]
    expect_error(
        user.kms.put_key_policy,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        KeyId=key["Arn"],
        PolicyName="default",
        Policy=doc(A.enable_iam()),
    )


def test_lockout_check_refuses_a_policy_denying_the_caller_put_key_policy(A):
    key = A.key(A.enable_iam())
    expect_error(
        A.kms.put_key_policy,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        KeyId=key["KeyId"],
        PolicyName="default",
        Policy=doc(A.enable_iam(), kp_deny(A.root_arn, "kms:PutKeyPolicy")),
    )


def test_lockout_check_counts_a_callers_identity_deny(A):
    user = A.user(allow("kms:*"), deny("kms:PutKeyPolicy"))
    expect_error(
        user.kms.create_key,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        Policy=doc(A.enable_iam()),
    )


# --- aliases in identity policies ------------------------------------------------------


def test_alias_arn_pattern_in_identity_policy_must_match_the_alias(A):
    key = A.key(A.enable_iam())
    user = A.user(allow("kms:CreateAlias", [A.alias_arn("alias/team-*"), key["Arn"]]))
    user.kms.create_alias(AliasName=uid("alias/team-"), TargetKeyId=key["KeyId"])
    bad = uid("alias/other-")
    expect_error(
        user.kms.create_alias,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:CreateAlias on resource: {A.alias_arn(bad)} because no identity-based policy allows the kms:CreateAlias action",
        AliasName=bad,
        TargetKeyId=key["KeyId"],
    )


def test_delete_alias_needs_permission_on_the_alias_and_the_key(A):
    key = A.key(A.enable_iam())
    name = uid("alias/del-")
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    alias_only = A.user(allow("kms:DeleteAlias", A.alias_arn("alias/*")))
    expect_error(alias_only.kms.delete_alias, AD, message=no_allow("DeleteAlias", key["Arn"], alias_only.arn, IB), AliasName=name)
    both = A.user(allow("kms:DeleteAlias", [A.alias_arn("alias/*"), key["Arn"]]))
    both.kms.delete_alias(AliasName=name)


def test_update_alias_needs_permission_on_the_old_and_the_new_key(A):
    old, new = A.key(A.enable_iam()), A.key(A.enable_iam())
    name = uid("alias/upd-")
    A.kms.create_alias(AliasName=name, TargetKeyId=old["KeyId"])
    new_only = A.user(allow("kms:UpdateAlias", [A.alias_arn(name), new["Arn"]]))
    expect_error(new_only.kms.update_alias, AD, message=no_allow("UpdateAlias", old["Arn"], new_only.arn, IB), AliasName=name, TargetKeyId=new["KeyId"])
    both = A.user(allow("kms:UpdateAlias", [A.alias_arn(name), old["Arn"], new["Arn"]]))
    both.kms.update_alias(AliasName=name, TargetKeyId=new["KeyId"])


def test_list_aliases_is_authorized_by_identity_policy_only(A):
    user = A.user()
    expect_error(
        user.kms.list_aliases,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:ListAliases on resource: * because no identity-based policy allows the kms:ListAliases action",
    )
    A.user(allow("kms:ListAliases")).kms.list_aliases()


# --- key state vs authorization order ---------------------------------------------------


def test_unauthorized_caller_gets_access_denied_not_invalid_state_on_a_key_pending_deletion(A):
    key = A.key(A.enable_iam())
    A.kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    stranger = A.user()
    denied_encrypt(stranger, key, message=no_allow("Encrypt", key["Arn"], stranger.arn, IB))
    expect_error(A.kms.encrypt, "KMSInvalidStateException", message=f"{key['Arn']} is pending deletion.", KeyId=key["KeyId"], Plaintext=b"x")
    assert A.kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion"


def test_unauthorized_external_caller_gets_access_denied_on_a_disabled_key(A, B):
    key = A.key(A.enable_iam())
    A.kms.disable_key(KeyId=key["KeyId"])
    denied_encrypt(B.root, key, message=no_allow("Encrypt", key["Arn"], B.root_arn, RB))


def test_unauthorized_caller_cannot_enable_or_cancel_deletion(A):
    key = A.key(A.enable_iam())
    A.kms.disable_key(KeyId=key["KeyId"])
    user = A.user(allow("kms:Encrypt"))
    expect_error(user.kms.enable_key, AD, message=no_allow("EnableKey", key["Arn"], user.arn, IB), KeyId=key["Arn"])
    expect_error(user.kms.encrypt, "DisabledException", KeyId=key["Arn"], Plaintext=b"x")


# --- the aws CLI ----------------------------------------------------------------------------


def _cli(srv, access_key, secret, *args):
    env = clean_env()
    env.update(
        AWS_ACCESS_KEY_ID=access_key,
        AWS_SECRET_ACCESS_KEY=secret,
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=srv.endpoint,
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_PAGER="",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        [sys.executable, "-m", "awscli", *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
    )


def test_cli_cross_account_encrypt_by_arn_works_and_by_bare_key_id_is_not_found(srv, A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:Encrypt"))
    p = _cli(srv, B.id, "x", "kms", "encrypt", "--key-id", key["Arn"], "--plaintext", "aGVsbG8=", "--output", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["KeyId"] == key["Arn"]
    p = _cli(srv, B.id, "x", "kms", "encrypt", "--key-id", key["KeyId"], "--plaintext", "aGVsbG8=")
    assert p.returncode != 0
    assert f"(NotFoundException) when calling the Encrypt operation: Key '{B.key_arn(key['KeyId'])}' does not exist" in p.stderr


def test_cli_user_denied_for_want_of_an_identity_policy_prints_awss_text(srv, A):
    user = A.user()
    key = A.key(A.enable_iam())
    p = _cli(srv, user.creds["AccessKeyId"], user.creds["SecretAccessKey"], "kms", "describe-key", "--key-id", key["Arn"])
    assert p.returncode != 0
    assert (
        "An error occurred (AccessDeniedException) when calling the DescribeKey operation: "
        + no_allow("DescribeKey", key["Arn"], user.arn, IB)
    ) in p.stderr


def test_cli_put_key_policy_not_allowed_cross_account(srv, A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:*"))
    p = _cli(
        srv, B.id, "x", "kms", "put-key-policy", "--key-id", key["Arn"], "--policy-name", "default", "--policy", doc(A.enable_iam())
    )
    assert p.returncode != 0
    assert no_allow("PutKeyPolicy", key["Arn"], B.root_arn, RB) in p.stderr


# --- more cross-account and session rules ----------------------------------------------------


def test_cross_account_session_policy_caps_the_external_role_session(A, B):
    session = B.role(allow("kms:*"), session_policy=[allow("kms:DescribeKey")])
    key = A.key(A.enable_iam(), kp_allow(session.role_arn, "kms:*"))
    session.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(session, key, message=no_allow("Encrypt", key["Arn"], session.arn, SP))


def test_cross_account_permissions_boundary_caps_the_external_user(A, B):
    user = B.user(allow("kms:*"), boundary=[allow("kms:DescribeKey")])
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"))
    user.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, PB))


def test_resource_account_condition_in_identity_policy_keeps_the_caller_in_its_own_account(A, B):
    # Data-perimeter pattern: allow only keys of the caller's own account.
    user = B.user(allow("kms:*", Condition={"StringEquals": {"aws:ResourceAccount": "${aws:PrincipalAccount}"}}))
    own = B.key()
    encrypt(user, own)
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"))
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_cross_account_get_public_key_and_sign_are_cross_account_operations(A, B, rsa_sign_key):
    A.kms.put_key_policy(KeyId=rsa_sign_key["KeyId"], PolicyName="default", Policy=doc(A.enable_iam(), kp_allow(B.id, ["kms:GetPublicKey", "kms:Sign"])))
    assert B.kms.get_public_key(KeyId=rsa_sign_key["Arn"])["KeyId"] == rsa_sign_key["Arn"]
    B.kms.sign(KeyId=rsa_sign_key["Arn"], Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256")
    expect_error(
        B.kms.verify,
        AD,
        message=no_allow("Verify", rsa_sign_key["Arn"], B.root_arn, RB),
        KeyId=rsa_sign_key["Arn"],
        Message=b"m",
        Signature=b"\x00" * 256,
        SigningAlgorithm="RSASSA_PSS_SHA_256",
    )
    A.kms.put_key_policy(KeyId=rsa_sign_key["KeyId"], PolicyName="default", Policy=doc(A.enable_iam()))


def test_cross_account_revoke_grant_and_list_grants_need_both_sides(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.root_arn, ["kms:RevokeGrant", "kms:ListGrants"]))
    grantee = B.user()
    g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])
    bare = B.user()
    expect_error(bare.kms.list_grants, AD, message=no_allow("ListGrants", key["Arn"], bare.arn, IB), KeyId=key["Arn"])
    admin = B.user(allow(["kms:RevokeGrant", "kms:ListGrants"], key["Arn"]))
    assert [x["GrantId"] for x in admin.kms.list_grants(KeyId=key["Arn"])["Grants"]] == [g["GrantId"]]
    admin.kms.revoke_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    denied_encrypt(grantee, key)


def test_cross_account_grant_to_an_external_role_covers_its_sessions(A, B):
    key = A.key(A.enable_iam())
    session = B.role()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=session.role_arn, Operations=["GenerateDataKey"])
    session.kms.generate_data_key(KeyId=key["Arn"], NumberOfBytes=16)


def test_cross_account_grantee_gets_disabled_exception_once_authorized(A, B):
    key = A.key(A.enable_iam())
    user = B.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Encrypt"])
    A.kms.disable_key(KeyId=key["KeyId"])
    expect_error(user.kms.encrypt, "DisabledException", message=f"{key['Arn']} is disabled.", KeyId=key["Arn"], Plaintext=b"x")


def test_cross_account_decrypt_naming_the_key_by_bare_id_is_not_found(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:Decrypt"))
    blob = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    expect_error(B.kms.decrypt, "NotFoundException", message=f"Key '{B.key_arn(key['KeyId'])}' does not exist", CiphertextBlob=blob, KeyId=key["KeyId"])
    assert B.kms.decrypt(CiphertextBlob=blob, KeyId=key["Arn"])["Plaintext"] == b"x"


def test_cross_account_re_encrypt_from_an_external_source_key(A, B):
    src = A.key(A.enable_iam(), kp_allow(B.id, "kms:ReEncryptFrom"))
    blob = A.kms.encrypt(KeyId=src["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    dst = B.key()
    user = B.user(allow("kms:ReEncryptTo", dst["Arn"]))
    expect_error(user.kms.re_encrypt, AD, message=no_allow("ReEncryptFrom", src["Arn"], user.arn, IB), CiphertextBlob=blob, DestinationKeyId=dst["Arn"])
    B.kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dst["Arn"])


# --- more principal-related condition keys ---------------------------------------------------


def test_principal_tag_condition_sees_user_tags(A):
    user = A.user()
    A.iam.tag_user(UserName=user.name, Tags=[{"Key": "team", "Value": "blue"}])
    other = A.user()
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalTag/team": "blue"}}))
    encrypt(user, key)
    denied_encrypt(other, key, message=no_allow("Encrypt", key["Arn"], other.arn, RB))


def test_principal_account_condition(A, B):
    key = A.key(A.enable_iam(), kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalAccount": B.id}}))
    encrypt(B.root, key)
    user = A.user(allow("kms:Encrypt"))
    encrypt(user, key)  # delegated through the account statement
    stranger = A.user()
    denied_encrypt(stranger, key, message=no_allow("Encrypt", key["Arn"], stranger.arn, IB))


def test_encryption_context_value_with_username_policy_variable(A):
    user = A.user()
    key = A.key(A.enable_iam(), kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"kms:EncryptionContext:owner": "${aws:username}"}}))
    encrypt(user, key, EncryptionContext={"owner": user.name})
    denied_encrypt(user, key, EncryptionContext={"owner": "someone"})


def test_negated_operator_on_a_missing_encryption_context_key_is_true_so_the_deny_applies(A):
    user = A.user()
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"), kp_deny("*", "kms:Encrypt", Condition={"StringNotEquals": {"kms:EncryptionContext:app": "x"}}))
    encrypt(user, key, EncryptionContext={"app": "x"})
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))
    denied_encrypt(user, key, EncryptionContext={"app": "y"})


def test_deny_with_string_not_equals_if_exists_applies_when_the_key_is_missing(A):
    # IUG: with ...IfExists a missing key makes the condition true, so the Deny applies.
    user = A.user()
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:*"), kp_deny("*", "kms:Encrypt", Condition={"StringNotEqualsIfExists": {"kms:EncryptionContext:app": "x"}}))
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "a resource-based policy"))
    encrypt(user, key, EncryptionContext={"app": "x"})
    denied_encrypt(user, key, EncryptionContext={"app": "y"})


def test_string_equals_ignore_case_on_encryption_context_value(A):
    user = A.user()
    key = _cond_key(A, user, "kms:Encrypt", {"StringEqualsIgnoreCase": {"kms:EncryptionContext:env": "PROD"}})
    encrypt(user, key, EncryptionContext={"env": "prod"})
    denied_encrypt(user, key, EncryptionContext={"env": "dev"})


def test_via_service_condition_is_absent_for_direct_calls(A):
    user = A.user()
    key = _cond_key(A, user, "kms:Encrypt", {"StringEquals": {"kms:ViaService": f"ec2.{REGION}.amazonaws.com"}})
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_key_property_condition_can_never_be_met_by_an_operation_without_a_key(A):
    user = A.user(allow("kms:ListKeys", Condition={"StringEquals": {"kms:KeySpec": "SYMMETRIC_DEFAULT"}}))
    expect_error(user.kms.list_keys, AD)


def test_generate_random_honours_global_conditions(A):
    ok = A.user(allow("kms:GenerateRandom", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    no = A.user(allow("kms:GenerateRandom", Condition={"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}))
    assert len(ok.kms.generate_random(NumberOfBytes=4)["Plaintext"]) == 4
    expect_error(
        no.kms.generate_random,
        AD,
        message=f"User: {no.arn} is not authorized to perform: kms:GenerateRandom on resource: * because no identity-based policy allows the kms:GenerateRandom action",
        NumberOfBytes=4,
    )


def test_caller_account_condition_on_create_key(A):
    user = A.user(allow("kms:CreateKey", Condition={"StringEquals": {"kms:CallerAccount": A.id}}))
    user.kms.create_key(Policy=doc(kp_allow(user.arn, "kms:*")))


def test_for_all_values_with_request_tag_in_key_policy_is_refused_as_overly_permissive(A):
    e = expect_error(
        A.kms.create_key,
        "MalformedPolicyDocumentException",
        Policy=doc(A.enable_iam(), kp_allow(A.root_arn, "kms:TagResource", Condition={"ForAllValues:StringEquals": {"aws:RequestTag/env": "x"}})),
    )
    assert e.response["Error"]["Message"].startswith("OverlyPermissiveCondition")


# --- grants and policies meet -----------------------------------------------------------------


def test_retire_grant_in_a_key_policy_has_no_effect(A):
    key = A.key(A.enable_iam())
    grantee = A.user()
    stranger = A.user()
    A.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=doc(A.enable_iam(), kp_allow(stranger.arn, "kms:RetireGrant")))
    g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])
    expect_error(stranger.kms.retire_grant, AD, KeyId=key["Arn"], GrantId=g["GrantId"])


def test_identity_policy_allowing_retire_grant_in_the_issuing_account_may_retire(A):
    key = A.key(A.enable_iam())
    grantee = A.user()
    admin = A.user(allow("kms:RetireGrant"))
    g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])
    admin.kms.retire_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    denied_encrypt(grantee, key)


@pytest.mark.parametrize(
    "who",
    [
        pytest.param("retiring", id="identity_deny_of_retire_grant_stops_the_retiring_principal"),
        pytest.param("grantee", id="identity_deny_of_retire_grant_stops_a_grantee_holding_retire_grant"),
    ],
)
def test_identity_deny_of_retire_grant_wins_over_the_grant(A, who):
    key = A.key(A.enable_iam())
    denied_user = A.user(deny("kms:RetireGrant"))
    if who == "retiring":
        grantee = A.user()
        g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=denied_user.arn, Operations=["Encrypt"])
    else:
        grantee = denied_user
        g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, Operations=["Encrypt", "RetireGrant"])
    expect_error(
        denied_user.kms.retire_grant,
        AD,
        message=explicit("RetireGrant", key["Arn"], denied_user.arn, "an identity-based policy"),
        KeyId=key["Arn"],
        GrantId=g["GrantId"],
    )
    encrypt(grantee, key)


def test_grant_covers_only_its_operations_and_not_describe_key(A):
    key = A.key(A.enable_iam())
    user = A.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Decrypt"])
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_grant_to_a_session_arn_does_not_cover_other_sessions_of_the_role(A):
    key = A.key(A.enable_iam())
    s1 = A.role(session_name="one")
    s2 = s1.assume(session_name="two")
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=s1.arn, Operations=["Encrypt"])
    encrypt(s1, key)
    denied_encrypt(s2, key)


def test_explicit_deny_in_a_session_policy_beats_a_grant(A):
    key = A.key(A.enable_iam())
    session = A.role(session_policy=[allow("kms:*"), deny("kms:Encrypt")])
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=session.role_arn, Operations=["Encrypt"])
    denied_encrypt(session, key, message=explicit("Encrypt", key["Arn"], session.arn, "a session policy"))


# --- aliases ---------------------------------------------------------------------------------------


def test_identity_deny_on_an_alias_arn_does_not_block_use_of_the_key_through_the_alias(A):
    key = A.key(A.enable_iam())
    name = uid("alias/deny-")
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    user = A.user(allow("kms:Encrypt"), deny("kms:Encrypt", A.alias_arn(name)))
    encrypt(user, key, KeyId=name)


def test_create_alias_needs_the_alias_half_even_when_the_key_policy_allows(A):
    user = A.user()
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:CreateAlias"))
    name = uid("alias/half-")
    expect_error(
        user.kms.create_alias,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:CreateAlias on resource: {A.alias_arn(name)} because no identity-based policy allows the kms:CreateAlias action",
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )
    both = A.user(allow("kms:CreateAlias", A.alias_arn("alias/*")))
    A.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=doc(A.enable_iam(), kp_allow(both.arn, "kms:CreateAlias")))
    both.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])


# --- key state vs authorization, continued -------------------------------------------------


def test_unauthorized_caller_gets_access_denied_on_cancel_key_deletion_and_describe(A):
    key = A.key(A.enable_iam())
    A.kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    user = A.user()
    expect_error(user.kms.cancel_key_deletion, AD, message=no_allow("CancelKeyDeletion", key["Arn"], user.arn, IB), KeyId=key["Arn"])
    expect_error(user.kms.describe_key, AD, message=no_allow("DescribeKey", key["Arn"], user.arn, IB), KeyId=key["Arn"])
    allowed = A.user(allow(["kms:DescribeKey", "kms:CancelKeyDeletion"]))
    assert allowed.kms.describe_key(KeyId=key["Arn"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    allowed.kms.cancel_key_deletion(KeyId=key["Arn"])


def test_unauthorized_create_grant_on_a_disabled_key_is_access_denied(A):
    key = A.key(A.enable_iam())
    A.kms.disable_key(KeyId=key["KeyId"])
    user, grantee = A.user(), A.user()
    expect_error(user.kms.create_grant, AD, KeyId=key["Arn"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])
    expect_error(A.kms.create_grant, "DisabledException", KeyId=key["Arn"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])


def test_dry_run_is_authorized_first(A):
    key = A.key(A.enable_iam())
    user = A.user()
    expect_error(user.kms.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x", DryRun=True)
    expect_error(A.kms.encrypt, "DryRunOperationException", status=400, KeyId=key["Arn"], Plaintext=b"x", DryRun=True)


# --- paths in principal ARNs ----------------------------------------------------------------------


def test_user_with_a_path_is_named_by_its_full_arn_and_reported_with_it(A):
    user = A.user(path="/dev/team/")
    assert user.arn == f"arn:aws:iam::{A.id}:user/dev/team/{user.name}"
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:Encrypt"))
    encrypt(user, key)
    expect_error(user.kms.describe_key, AD, message=no_allow("DescribeKey", key["Arn"], user.arn, IB), KeyId=key["Arn"])


def test_role_with_a_path_session_arn_omits_the_path_but_principal_arn_keeps_it(A):
    session = A.role(path="/svc/")
    assert session.role_arn == f"arn:aws:iam::{A.id}:role/svc/{session.role_name}"
    assert session.arn == f"arn:aws:sts::{A.id}:assumed-role/{session.role_name}/s1"
    key = A.key(
        A.enable_iam(),
        kp_allow(session.role_arn, "kms:Encrypt"),
        kp_allow("*", "kms:DescribeKey", Condition={"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{A.id}:role/svc/*"}}),
    )
    encrypt(session, key)
    session.kms.describe_key(KeyId=key["Arn"])
    expect_error(session.kms.generate_data_key, AD, message=no_allow("GenerateDataKey", key["Arn"], session.arn, IB), KeyId=key["Arn"], NumberOfBytes=16)


def test_session_token_issue_time_is_present_for_role_sessions(A):
    session = A.role()
    user = A.user()
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"Null": {"aws:TokenIssueTime": "false"}}))
    encrypt(session, key)
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, RB))


def test_grant_is_for_aws_resource_is_false_for_direct_calls(A):
    user, grantee = A.user(), A.user()
    key = A.key(A.enable_iam(), kp_allow(user.arn, "kms:CreateGrant", Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}}))
    expect_error(user.kms.create_grant, AD, message=no_allow("CreateGrant", key["Arn"], user.arn, IB), KeyId=key["Arn"], GranteePrincipal=grantee.arn, Operations=["Encrypt"])


def test_lockout_check_passes_for_a_policy_allowing_principal_star(A):
    key = A.key(A.enable_iam())
    A.kms.put_key_policy(KeyId=key["KeyId"], PolicyName="default", Policy=doc(kp_allow("*", "kms:*")))
    encrypt(A.user(), key)


# --- IAM-only listings, perimeter denies ---------------------------------------------------------


def test_list_keys_lists_keys_whose_policy_does_not_name_the_caller(A):
    key = A.key(kp_allow(A.root_arn, "kms:*"))
    user = A.user(allow("kms:ListKeys"))
    ids = set()
    kw = {}
    while True:
        page = user.kms.list_keys(Limit=1000, **kw)
        ids |= {k["KeyId"] for k in page["Keys"]}
        if not page.get("Truncated"):
            break
        kw = {"Marker": page["NextMarker"]}
    assert key["KeyId"] in ids


def test_list_aliases_with_a_key_id_is_still_an_iam_only_operation(A):
    key = A.key(A.enable_iam())
    name = uid("alias/la-")
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    user = A.user(allow("kms:ListAliases"))
    assert [a["AliasName"] for a in user.kms.list_aliases(KeyId=key["KeyId"])["Aliases"]] == [name]


def test_deny_every_other_account_with_principal_star_and_caller_account(A, B):
    key = A.key(
        A.enable_iam(),
        kp_allow(B.id, "kms:*"),
        kp_deny("*", "kms:*", Condition={"StringNotEquals": {"kms:CallerAccount": A.id}}),
    )
    expect_error(B.kms.encrypt, AD, message=explicit("Encrypt", key["Arn"], B.root_arn, "a resource-based policy"), KeyId=key["Arn"], Plaintext=b"x")
    encrypt(A.root, key)


def test_identity_deny_outside_a_source_ip_range(A):
    user = A.user(allow("kms:*"), deny("kms:*", Condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}))
    key = A.key(A.enable_iam())
    denied_encrypt(user, key, message=explicit("Encrypt", key["Arn"], user.arn, "an identity-based policy"))


def test_lockout_check_counts_the_callers_permissions_boundary(A):
    user = A.user(allow("kms:*"), boundary=[allow("kms:CreateKey")])
    expect_error(
        user.kms.create_key,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        Policy=doc(A.enable_iam()),
    )
    # A policy naming the user directly is not capped by the boundary.
    user.kms.create_key(Policy=doc(kp_allow(user.arn, "kms:*")))


def test_cross_account_generate_data_key_pair_is_a_cross_account_operation(A, B):
    key = A.key(A.enable_iam(), kp_allow(B.id, "kms:GenerateDataKeyPair"))
    out = B.kms.generate_data_key_pair(KeyId=key["Arn"], KeyPairSpec="ECC_NIST_P256")
    assert out["KeyId"] == key["Arn"]


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param("root", id="userid_of_the_root_user_is_the_account_id"),
        pytest.param("user", id="userid_of_an_iam_user_is_its_unique_id"),
    ],
)
def test_userid_of_root_and_users(A, caller):
    p = A.root if caller == "root" else A.user()
    value = A.id if caller == "root" else p.user_id
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:userid": value}}))
    encrypt(p, key)


@pytest.mark.parametrize(
    "caller",
    [
        pytest.param("root", id="principal_arn_of_the_root_user_is_the_root_arn"),
        pytest.param("user", id="principal_arn_of_an_iam_user_is_the_user_arn"),
    ],
)
def test_principal_arn_of_root_and_users(A, caller):
    p = A.root if caller == "root" else A.user()
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"ArnEquals": {"aws:PrincipalArn": p.arn}}))
    encrypt(p, key)


def test_group_policy_allow_counts_as_identity_policy(A):
    user = A.user(group_statements=[allow("kms:Encrypt")])
    key = A.key(A.enable_iam())
    encrypt(user, key)


def test_request_alias_condition_on_describe_key(A):
    key = A.key(A.enable_iam())
    name = uid("alias/dk-")
    A.kms.create_alias(AliasName=name, TargetKeyId=key["KeyId"])
    user = A.user(allow("kms:DescribeKey", Condition={"StringEquals": {"kms:RequestAlias": name}}))
    assert user.kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"] == key["Arn"]
    expect_error(user.kms.describe_key, AD, message=no_allow("DescribeKey", key["Arn"], user.arn, IB), KeyId=key["KeyId"])


def test_lockout_check_passes_for_a_session_named_by_its_session_arn(A):
    session = A.role(allow("kms:CreateKey"))
    session.kms.create_key(Policy=doc(kp_allow(session.arn, "kms:*")))


def test_lockout_check_refuses_a_policy_that_drops_the_only_statement_naming_the_caller(A):
    user = A.user()
    key = A.key(kp_allow(user.arn, "kms:*"), A.enable_iam("kms:Describe*"))
    expect_error(
        user.kms.put_key_policy,
        "MalformedPolicyDocumentException",
        message="The new key policy will not allow you to update the key policy in the future.",
        KeyId=key["Arn"],
        PolicyName="default",
        Policy=doc(kp_allow(user.arn, "kms:Encrypt"), A.enable_iam()),
    )
    user.kms.put_key_policy(
        KeyId=key["Arn"], PolicyName="default", Policy=doc(kp_allow(user.arn, "kms:Encrypt"), A.enable_iam()), BypassPolicyLockoutSafetyCheck=True
    )
    expect_error(user.kms.put_key_policy, AD, message=no_allow("PutKeyPolicy", key["Arn"], user.arn, IB), KeyId=key["Arn"], PolicyName="default", Policy=doc(A.enable_iam()))


def test_account_statement_with_a_principal_type_condition_delegates_only_to_users(A):
    key = A.key(kp_allow(A.root_arn, "kms:*", Condition={"StringEquals": {"aws:PrincipalType": "User"}}))
    user = A.user(allow("kms:Encrypt"))
    encrypt(user, key)
    expect_error(A.kms.encrypt, AD, message=no_allow("Encrypt", key["Arn"], A.root_arn, RB), KeyId=key["Arn"], Plaintext=b"x")


# --- policy variables in identity-policy resources ---------------------------------------------


def test_policy_variable_in_resource_resolves_from_the_principals_tag(A):
    k1, k2 = A.key(A.enable_iam()), A.key(A.enable_iam())
    user = A.user(allow("kms:Encrypt", f"arn:aws:kms:{REGION}:{A.id}:key/${{aws:PrincipalTag/keyid}}"))
    A.iam.tag_user(UserName=user.name, Tags=[{"Key": "keyid", "Value": k1["KeyId"]}])
    encrypt(user, k1)
    denied_encrypt(user, k2, message=no_allow("Encrypt", k2["Arn"], user.arn, IB))


def test_unresolved_policy_variable_in_resource_matches_nothing(A):
    key = A.key(A.enable_iam())
    user = A.user(allow("kms:Encrypt", f"arn:aws:kms:{REGION}:{A.id}:key/${{aws:PrincipalTag/missing}}*"))
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_policy_variables_are_literal_text_in_version_2008_10_17(A):
    key = A.key(A.enable_iam())
    user = A.user()
    A.iam.put_user_policy(
        UserName=user.name,
        PolicyName="old",
        PolicyDocument=json.dumps(
            {"Version": "2008-10-17", "Statement": [allow("kms:Encrypt", Condition={"StringEquals": {"kms:EncryptionContext:u": "${aws:username}"}})]}
        ),
    )
    encrypt(user, key, EncryptionContext={"u": "${aws:username}"})
    denied_encrypt(user, key, EncryptionContext={"u": user.name})


def test_session_tags_are_principal_tags_of_the_session(A):
    name = uid("r")
    trust = doc({"Effect": "Allow", "Principal": {"AWS": A.root_arn}, "Action": ["sts:AssumeRole", "sts:TagSession"]})
    role = A.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
    assumer = A.user(allow(["sts:AssumeRole", "sts:TagSession"], role["Arn"]))
    sts = client(A.srv.endpoint, assumer.creds["AccessKeyId"], assumer.creds["SecretAccessKey"], service="sts")
    key = A.key(kp_allow("*", "kms:Encrypt", Condition={"StringEquals": {"aws:PrincipalTag/project": "apollo"}}))
    for value, ok in (("apollo", True), ("gemini", False)):
        c = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="tagged", Tags=[{"Key": "project", "Value": value}])["Credentials"]
        k = client(A.srv.endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        if ok:
            k.encrypt(KeyId=key["Arn"], Plaintext=b"x")
        else:
            expect_error(k.encrypt, AD, KeyId=key["Arn"], Plaintext=b"x")


# --- grants, continued -------------------------------------------------------------------------------


def test_account_retiring_principal_lets_iam_principals_of_that_account_retire(A, B):
    key = A.key(A.enable_iam())
    grantee = B.user()
    g = A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=grantee.arn, RetiringPrincipal=B.root_arn, Operations=["Encrypt"])
    bare = B.user()
    expect_error(bare.kms.retire_grant, AD, KeyId=key["Arn"], GrantId=g["GrantId"])
    retirer = B.user(allow("kms:RetireGrant"))
    retirer.kms.retire_grant(KeyId=key["Arn"], GrantId=g["GrantId"])
    denied_encrypt(grantee, key)


def test_cross_account_grant_derived_create_grant_may_narrow_without_iam(A, B):
    key = A.key(A.enable_iam())
    middle, end = B.user(), B.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=middle.arn, Operations=["Encrypt", "Decrypt", "CreateGrant"])
    middle.kms.create_grant(KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["Encrypt"])
    encrypt(end, key)
    expect_error(middle.kms.create_grant, AD, KeyId=key["Arn"], GranteePrincipal=end.arn, Operations=["GenerateDataKey"])


def test_re_encrypt_by_grants_needs_re_encrypt_from_on_the_source_and_re_encrypt_to_on_the_destination(A):
    src, dst = A.key(A.enable_iam()), A.key(A.enable_iam())
    user = A.user()
    blob = A.kms.encrypt(KeyId=src["KeyId"], Plaintext=b"x")["CiphertextBlob"]
    A.kms.create_grant(KeyId=src["KeyId"], GranteePrincipal=user.arn, Operations=["ReEncryptFrom"])
    expect_error(user.kms.re_encrypt, AD, message=no_allow("ReEncryptTo", dst["Arn"], user.arn, IB), CiphertextBlob=blob, DestinationKeyId=dst["Arn"])
    A.kms.create_grant(KeyId=dst["KeyId"], GranteePrincipal=user.arn, Operations=["ReEncryptTo"])
    assert user.kms.re_encrypt(CiphertextBlob=blob, DestinationKeyId=dst["Arn"])["KeyId"] == dst["Arn"]


def test_grant_constraints_do_not_apply_to_describe_key(A):
    key = A.key(A.enable_iam())
    user = A.user()
    A.kms.create_grant(
        KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["DescribeKey", "Encrypt"], Constraints={"EncryptionContextEquals": {"a": "1"}}
    )
    user.kms.describe_key(KeyId=key["Arn"])
    denied_encrypt(user, key)
    encrypt(user, key, EncryptionContext={"a": "1"})


def test_grant_equals_constraint_on_decrypt_needs_the_exact_context(A):
    key = A.key(A.enable_iam())
    user = A.user()
    A.kms.create_grant(KeyId=key["KeyId"], GranteePrincipal=user.arn, Operations=["Decrypt"], Constraints={"EncryptionContextEquals": {"A": "1"}})
    exact = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "1"})["CiphertextBlob"]
    more = A.kms.encrypt(KeyId=key["KeyId"], Plaintext=b"x", EncryptionContext={"a": "1", "b": "2"})["CiphertextBlob"]
    assert user.kms.decrypt(CiphertextBlob=exact, EncryptionContext={"a": "1"})["Plaintext"] == b"x"
    expect_error(user.kms.decrypt, AD, message=no_allow("Decrypt", key["Arn"], user.arn, IB), CiphertextBlob=more, EncryptionContext={"a": "1", "b": "2"})


# --- IAM-only operations: every identity-side policy type ------------------------------------------


def test_create_key_tag_sub_check_explicit_deny_has_no_resource_clause(A):
    user = A.user(allow("kms:*"), deny("kms:TagResource"))
    expect_error(
        user.kms.create_key,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:TagResource with an explicit deny in an identity-based policy",
        Policy=doc(kp_allow(user.arn, "kms:*")),
        Tags=[{"TagKey": "a", "TagValue": "b"}],
    )


def test_create_key_tag_sub_check_capped_by_the_permissions_boundary(A):
    user = A.user(allow("kms:*"), boundary=[allow("kms:CreateKey")])
    pol = doc(kp_allow(user.arn, "kms:*"))
    user.kms.create_key(Policy=pol)
    expect_error(
        user.kms.create_key,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:TagResource because no permissions boundary allows the kms:TagResource action",
        Policy=pol,
        Tags=[{"TagKey": "a", "TagValue": "b"}],
    )


@pytest.mark.parametrize(
    "session_policy,message_tail",
    [
        pytest.param([allow("kms:Describe*")], "because no session policy allows the kms:ListKeys action", id="list_keys_capped_by_the_session_policy"),
        pytest.param([allow("kms:*"), deny("kms:List*")], "with an explicit deny in a session policy", id="list_keys_explicit_deny_in_the_session_policy"),
    ],
)
def test_iam_only_operation_and_session_policies(A, session_policy, message_tail):
    session = A.role(allow("kms:*"), session_policy=session_policy)
    expect_error(
        session.kms.list_keys,
        AD,
        message=f"User: {session.arn} is not authorized to perform: kms:ListKeys on resource: * {message_tail}",
    )


def test_alias_half_of_create_alias_capped_by_the_session_policy(A):
    key = A.key(A.enable_iam())
    session = A.role(allow("kms:*"), session_policy=[allow("kms:CreateAlias", key["Arn"])])
    name = uid("alias/sp-")
    expect_error(
        session.kms.create_alias,
        AD,
        message=f"User: {session.arn} is not authorized to perform: kms:CreateAlias on resource: {A.alias_arn(name)} because no session policy allows the kms:CreateAlias action",
        AliasName=name,
        TargetKeyId=key["KeyId"],
    )


def test_list_retirable_grants_needs_an_identity_policy(A):
    user = A.user()
    expect_error(
        user.kms.list_retirable_grants,
        AD,
        message=f"User: {user.arn} is not authorized to perform: kms:ListRetirableGrants on resource: * because no identity-based policy allows the kms:ListRetirableGrants action",
        RetiringPrincipal=user.arn,
    )
    A.user(allow("kms:ListRetirableGrants")).kms.list_retirable_grants(RetiringPrincipal=user.arn)


# --- key-policy statement shapes ------------------------------------------------------------------------


def test_key_policy_statement_without_resource_has_no_effect(A):
    user = A.user()
    key = A.key(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Action": "kms:Encrypt"})
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_key_policy_statement_without_action_has_no_effect(A):
    user = A.user()
    key = A.key(A.enable_iam(), {"Effect": "Allow", "Principal": {"AWS": user.arn}, "Resource": "*"})
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))


def test_wildcard_inside_a_principal_arn_is_refused(A):
    expect_error(
        A.kms.create_key,
        "MalformedPolicyDocumentException",
        Policy=doc(A.enable_iam(), kp_allow(f"arn:aws:iam::{A.id}:user/*", "kms:Encrypt")),
    )


def test_service_principal_statement_does_not_match_iam_callers(A):
    user = A.user()
    key = A.key(A.enable_iam(), {"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:*", "Resource": "*"})
    denied_encrypt(user, key, message=no_allow("Encrypt", key["Arn"], user.arn, IB))
    encrypt(A.root, key)
