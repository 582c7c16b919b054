"""Policy documents for the e2e tests: key policies, identity-based
policies, trust policies. One place for the statement builders the test
files share.

Statements are dicts; ``doc`` wraps them as the JSON text the APIs take.
"""

from __future__ import annotations

import json


def doc(*statements) -> str:
    """A policy document of the given statements, as JSON text."""
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(actions, resource="*", **extra) -> dict:
    """An identity-policy Allow statement (no Principal)."""
    st = {"Effect": "Allow", "Action": actions, "Resource": resource}
    st.update(extra)
    return st


def deny(actions, resource="*", **extra) -> dict:
    """An identity-policy Deny statement (no Principal)."""
    st = {"Effect": "Deny", "Action": actions, "Resource": resource}
    st.update(extra)
    return st


def kp_allow(principal, actions, **extra) -> dict:
    """A key-policy Allow statement; ``principal`` is a value of
    Principal.AWS (or the whole Principal when it is the string "*")."""
    st = {"Effect": "Allow", "Principal": principal if principal == "*" else {"AWS": principal}, "Action": actions, "Resource": "*"}
    st.update(extra)
    return st


def kp_deny(principal, actions, **extra) -> dict:
    """A key-policy Deny statement; ``principal`` as for ``kp_allow``."""
    st = {"Effect": "Deny", "Principal": principal if principal == "*" else {"AWS": principal}, "Action": actions, "Resource": "*"}
    st.update(extra)
    return st


def principal_allow(principal, actions, **extra) -> dict:
    """A resource-policy Allow statement with ``{"AWS": principal}`` as its
    Principal, even for "*"."""
    st = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions, "Resource": "*"}
    st.update(extra)
    return st


def principal_deny(principal, actions, **extra) -> dict:
    """A resource-policy Deny statement with ``{"AWS": principal}`` as its
    Principal, even for "*"."""
    st = {"Effect": "Deny", "Principal": {"AWS": principal}, "Action": actions, "Resource": "*"}
    st.update(extra)
    return st


def roots_may(*accounts, actions="kms:*") -> str:
    """A key policy (JSON text) that lets the root of each account do
    ``actions``: a key of the first account shared with the others."""
    return doc(kp_allow([f"arn:aws:iam::{a}:root" for a in accounts], actions))


def trust(principal, actions="sts:AssumeRole", **extra) -> str:
    """A role trust policy (JSON text) of one statement admitting
    ``principal`` (a value of Principal.AWS)."""
    st = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}
    st.update(extra)
    return doc(st)
