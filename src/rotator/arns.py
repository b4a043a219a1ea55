"""The ARNs rotator reads, parsed in one place: Lambda functions and RDS clusters/instances.

A rotation function must be named by its *unqualified* ARN. The function's role (and a
resource policy rotator prints) allows secret access only when the secret's
``RotationLambdaARN`` equals the function's ARN
(``secretsmanager:resource/AllowRotationLambdaArn``), and that key holds the ARN exactly
as the secret was attached: a secret attached to ``…:function:rotator:live`` (an alias)
or ``…:function:rotator:7`` (a version) does not match ``…:function:rotator``, and every
call of its rotation would be denied.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_FUNCTION = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<name>[A-Za-z0-9_-]{1,64})(?::(?P<qualifier>[A-Za-z0-9_$-]+))?$"
)
# arn:aws:rds:eu-west-1:123456789012:cluster:prod-db (or :db:prod-db-1 for an instance)
_RDS = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):rds:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>cluster|db):(?P<identifier>[A-Za-z][A-Za-z0-9-]{0,62})$"
)


class FunctionArnError(ValueError):
    """Not the unqualified ARN of a Lambda function; the message says why."""


def rotation_function_arn(value: str) -> str:
    """``value`` if it is an unqualified Lambda function ARN, else FunctionArnError."""
    value = value.strip()
    match = _FUNCTION.match(value)
    if match is None:
        raise FunctionArnError(f"not a Lambda function ARN: {value!r}")
    qualifier = match["qualifier"]
    if qualifier is not None:
        kind = "version" if qualifier.isdigit() or qualifier == "$LATEST" else "alias"
        unqualified = value[: -len(qualifier) - 1]
        raise FunctionArnError(
            f"{value!r} names {kind} '{qualifier}' of the function: Secrets Manager's condition "
            f"AllowRotationLambdaArn compares the ARN as attached, so the function's calls would be denied; "
            f"use the unqualified ARN {unqualified}"
        )
    return value


def function_qualifier(value: str) -> str | None:
    """The alias or version a function ARN names (``…:function:x:live`` → ``live``), or None."""
    match = _FUNCTION.match(value.strip())
    return match["qualifier"] if match else None


class RdsResource(NamedTuple):
    """An RDS cluster or DB instance named by its ARN."""

    partition: str
    region: str
    account: str
    kind: str  # "cluster" or "db" (an instance)
    identifier: str

    @classmethod
    def parse(cls, arn: str) -> RdsResource | None:
        match = _RDS.match(arn.strip())
        if match is None:
            return None
        return cls(match["partition"], match["region"], match["account"], match["kind"], match["identifier"].lower())

    def describe(self) -> str:
        return f"{'cluster' if self.kind == 'cluster' else 'DB instance'} '{self.identifier}'"
