"""The two policies that keep rotated secrets inside the VPC, as plain data.

- :func:`resource_policy` is attached to each secret. It denies ``GetSecretValue``
  to requests that do not come through the VPC endpoint, and nothing else: the
  console, ``DescribeSecret``, ``RotateSecret`` and the other management calls keep
  working from anywhere, AWS services acting for a principal (``aws:ViaAWSService``)
  or as themselves (``aws:PrincipalIsAWSService``) are not denied, and the
  break-glass principals are exempt. Rotation is not affected: Secrets Manager
  invokes the function through Lambda (not through this policy), and the function
  calls Secrets Manager through the endpoint.
- :func:`endpoint_policy` is attached to the Secrets Manager interface endpoint. It
  allows exactly what rotation needs (the four calls on the rotated secrets,
  ``GetSecretValue`` on the admin secrets, ``GetRandomPassword``, which has no
  resource) and, for the named reader roles, reading the rotated secrets.

Both are pure functions returning dicts, so the CLI prints them, the template's
policies are tested against them, and nothing here talks to AWS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

VERSION = "2012-10-17"

ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
ADMIN_SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
RANDOM_PASSWORD_ACTIONS = ("secretsmanager:GetRandomPassword",)
# Applications read the value; caching clients (aws-secretsmanager-caching) also
# call DescribeSecret to notice a new AWSCURRENT version.
READER_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")

_ENDPOINT_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
# arn:partition:service:region:account:resource; IAM principals have no region.
_ARN = re.compile(r"^arn:aws[a-z-]*:([a-z0-9-]+):([a-z0-9-]*):(\d{12}|\*|):(.+)$")


class PolicyError(ValueError):
    """An argument cannot be put into a policy (malformed endpoint id or ARN)."""


Policy = dict[str, Any]


def resource_policy(endpoints: Sequence[str], break_glass: Sequence[str] = ()) -> Policy:
    """The secret resource policy: ``GetSecretValue`` only through ``endpoints``.

    ``break_glass`` principals (IAM role or user ARNs, ``*`` wildcards allowed)
    may read the secret from anywhere, so an outage of the endpoint or the VPC
    never locks everyone out.
    """
    endpoint_ids = _unique(_endpoint_id(endpoint) for endpoint in endpoints)
    if not endpoint_ids:
        raise PolicyError("at least one VPC endpoint id is needed")
    principals = _unique(_arn(arn, services={"iam"}, what="break-glass principal") for arn in break_glass)
    condition: dict[str, Any] = {
        "StringNotEquals": {"aws:SourceVpce": _one_or_list(endpoint_ids)},
        # A service acting for a principal (forward access sessions) or as itself
        # is not a request from outside the network: denying it breaks AWS features,
        # not attackers holding stolen credentials.
        "BoolIfExists": {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"},
    }
    if principals:
        condition["ArnNotLike"] = {"aws:PrincipalArn": _one_or_list(principals)}
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "DenyGetSecretValueOutsideEndpoint",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": condition,
            }
        ],
    }


def endpoint_policy(
    secrets: Sequence[str],
    admin_secrets: Sequence[str] = (),
    readers: Sequence[str] = (),
    function_role: str | None = None,
) -> Policy:
    """The Secrets Manager endpoint policy: rotation of ``secrets`` and their reads.

    Without ``function_role`` the rotation statements name no principal (``*``):
    the function's own IAM policy still limits who can do what, and the endpoint
    policy limits *what* can pass through the endpoint.
    """
    secret_arns = _unique(_arn(arn, services={"secretsmanager"}, what="secret") for arn in secrets)
    if not secret_arns:
        raise PolicyError("at least one secret ARN is needed")
    admin_arns = _unique(_arn(arn, services={"secretsmanager"}, what="admin secret") for arn in admin_secrets)
    reader_arns = _unique(_arn(arn, services={"iam"}, what="reader principal") for arn in readers)
    rotator: Any = {"AWS": _arn(function_role, services={"iam"}, what="function role")} if function_role else "*"

    statements: list[dict[str, Any]] = [
        _allow("RotationFunctionRotatesSecrets", rotator, ROTATION_ACTIONS, secret_arns),
    ]
    if admin_arns:
        statements.append(_allow("RotationFunctionReadsAdminSecrets", rotator, ADMIN_SECRET_ACTIONS, admin_arns))
    statements.append(_allow("RotationFunctionGeneratesPasswords", rotator, RANDOM_PASSWORD_ACTIONS, ["*"]))
    if reader_arns:
        statements.append(
            _allow("ApplicationsReadRotatedSecrets", {"AWS": _one_or_list(reader_arns)}, READER_ACTIONS, secret_arns)
        )
    return {"Version": VERSION, "Statement": statements}


def _allow(sid: str, principal: Any, actions: Sequence[str], resources: Sequence[str]) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": principal,
        "Action": _one_or_list(list(actions)),
        "Resource": _one_or_list(list(resources)),
    }


def _endpoint_id(value: str) -> str:
    value = value.strip()
    if not _ENDPOINT_ID.match(value):
        raise PolicyError(f"not a VPC endpoint id: {value!r} (expected vpce-0123456789abcdef0)")
    return value


def _arn(value: str, *, services: set[str], what: str) -> str:
    value = value.strip()
    match = _ARN.match(value)
    if not match or match.group(1) not in services:
        kinds = " or ".join(sorted(services))
        raise PolicyError(f"not a {what} ARN: {value!r} (expected arn:aws:{kinds}:...)")
    return value


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _one_or_list(values: list[str]) -> str | list[str]:
    # IAM reads a one-element list and a string alike; a string reads better.
    return values[0] if len(values) == 1 else values
