"""Accounts and principals for end-to-end authorization tests: an account
of a `--dev` server driven by its root user (a 12-digit access key id is that
account's root), which makes IAM users, roles (assumed into sessions),
managed policies and keys with given policies; AWS's AccessDenied texts; the
Encrypt call the matrices use. The `A` and `B` fixtures of conftest.py are
two fresh accounts of the module's server."""

from __future__ import annotations

import uuid

import boto3
from botocore.config import Config

from conftest import REGION, Server, expect_error
from policies import allow, doc, kp_allow

AD = "AccessDeniedException"


def uid(prefix="x"):
    return prefix + uuid.uuid4().hex[:10]


# One boto3 session for every client: creating a session per client costs
# ~0.1 s (service model loading); a client from a shared session ~0.03 s.
_SESSION = boto3.session.Session(region_name=REGION)
_CONFIG = Config(
    region_name=REGION,
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=15,
)


def client(endpoint, access_key, secret_key, token=None, service="kms"):
    return _SESSION.client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        config=_CONFIG,
    )


class Principal:
    """A caller: its ARN, account and (lazily made) KMS client; role
    sessions also carry the role ARN and role id."""

    def __init__(self, arn, account, make_kms, **extra):
        self.arn = arn
        self.account = account
        self._make_kms = make_kms
        self._kms = None
        for k, v in extra.items():
            setattr(self, k, v)

    @property
    def kms(self):
        if self._kms is None:
            self._kms = self._make_kms()
        return self._kms


class Account:
    """One account of the dev server, driven by its root user."""

    def __init__(self, srv: Server, account_id: str):
        self.srv = srv
        self.id = account_id
        self.root_arn = f"arn:aws:iam::{account_id}:root"
        self.kms = client(srv.endpoint, account_id, "x")
        self.iam = client(srv.endpoint, account_id, "x", service="iam")
        self.root = Principal(self.root_arn, account_id, lambda: self.kms)
        self.kms.list_keys()  # the account exists from its first call on

    def key_arn(self, key_id):
        return f"arn:aws:kms:{REGION}:{self.id}:key/{key_id}"

    def alias_arn(self, name):
        return f"arn:aws:kms:{REGION}:{self.id}:{name}"

    def managed_policy(self, *statements):
        return self.iam.create_policy(PolicyName=uid("p"), PolicyDocument=doc(*statements))["Policy"]["Arn"]

    def user(self, *statements, boundary=None, name=None, group_statements=None, managed=None, path=None):
        """An IAM user with an access key, an inline policy of `statements`
        (if any), a permissions boundary of `boundary` statements (if given),
        a group with `group_statements`, and managed policy statements."""
        name = name or uid("u")
        kw = {"Path": path} if path else {}
        if boundary is not None:
            kw["PermissionsBoundary"] = self.managed_policy(*boundary)
        user = self.iam.create_user(UserName=name, **kw)["User"]
        if statements:
            self.iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=doc(*statements))
        if group_statements:
            g = uid("g")
            self.iam.create_group(GroupName=g)
            self.iam.put_group_policy(GroupName=g, PolicyName="gp", PolicyDocument=doc(*group_statements))
            self.iam.add_user_to_group(GroupName=g, UserName=name)
        if managed:
            self.iam.attach_user_policy(UserName=name, PolicyArn=self.managed_policy(*managed))
        k = self.iam.create_access_key(UserName=name)["AccessKey"]
        endpoint = self.srv.endpoint
        return Principal(
            user["Arn"],
            self.id,
            lambda: client(endpoint, k["AccessKeyId"], k["SecretAccessKey"]),
            name=name,
            user_id=user["UserId"],
            creds=k,
        )

    def role(self, *statements, boundary=None, session_policy=None, session_name="s1", name=None, path=None):
        """A role trusted by this account with an inline policy of
        `statements`, assumed (optionally with a session policy) by a user
        allowed to assume it."""
        name = name or uid("r")
        kw = {"Path": path} if path else {}
        if boundary is not None:
            kw["PermissionsBoundary"] = self.managed_policy(*boundary)
        trust = doc({"Effect": "Allow", "Principal": {"AWS": self.root_arn}, "Action": "sts:AssumeRole"})
        role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, **kw)["Role"]
        if statements:
            self.iam.put_role_policy(RoleName=name, PolicyName="inline", PolicyDocument=doc(*statements))
        assumer = self.user(allow("sts:AssumeRole", role["Arn"]))
        endpoint = self.srv.endpoint
        sts = client(endpoint, assumer.creds["AccessKeyId"], assumer.creds["SecretAccessKey"], service="sts")

        def assume(session_name=session_name, session_policy=session_policy):
            args = dict(RoleArn=role["Arn"], RoleSessionName=session_name)
            if session_policy is not None:
                args["Policy"] = doc(*session_policy)
            out = sts.assume_role(**args)
            c = out["Credentials"]
            return Principal(
                out["AssumedRoleUser"]["Arn"],
                self.id,
                lambda: client(endpoint, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]),
                role_arn=role["Arn"],
                role_id=role["RoleId"],
                role_name=name,
                assume=assume,
            )

        return assume()

    def key(self, *statements, **kw):
        """A key with the given key-policy statements (the lockout check
        bypassed), or AWS's default policy when none are given."""
        if statements:
            kw["Policy"] = doc(*statements)
            kw["BypassPolicyLockoutSafetyCheck"] = True
        return self.kms.create_key(**kw)["KeyMetadata"]

    def enable_iam(self, actions="kms:*", **extra):
        return kp_allow(self.root_arn, actions, Sid="EnableIAMPolicies", **extra)


def no_allow(action, key_arn, caller_arn, reason):
    return f"User: {caller_arn} is not authorized to perform: kms:{action} on resource: {key_arn} because no {reason} allows the kms:{action} action"


def explicit(action, key_arn, caller_arn, where):
    return f"User: {caller_arn} is not authorized to perform: kms:{action} on resource: {key_arn} with an explicit deny in {where}"


RB = "resource-based policy"
IB = "identity-based policy"
PB = "permissions boundary"
SP = "session policy"


def encrypt(p, key, **kw):
    return p.kms.encrypt(KeyId=kw.pop("KeyId", key["Arn"]), Plaintext=b"x", **kw)


def denied_encrypt(p, key, message=None, **kw):
    return expect_error(p.kms.encrypt, AD, message=message, KeyId=kw.pop("KeyId", key["Arn"]), Plaintext=b"x", **kw)
