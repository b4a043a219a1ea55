"""A small IAM policy evaluator: enough of the policy language to prove what the
generated policies allow and deny (one policy at a time, no SCPs or boundaries).

Matches AWS's documented rules for the parts it implements: wildcard actions and
resources, ``Principal`` by ARN or ``*``, and the condition operators the policies
use, including how a missing key behaves (negated operators and ``...IfExists``
match it; positive operators do not).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

_OPERATORS = {
    "StringEquals": (False, "string"),
    "StringNotEquals": (True, "string"),
    "StringLike": (False, "like"),
    "StringNotLike": (True, "like"),
    "ArnEquals": (False, "string"),
    "ArnNotEquals": (True, "string"),
    "ArnLike": (False, "like"),
    "ArnNotLike": (True, "like"),
    "Bool": (False, "bool"),
}


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    principal: str  # the caller's aws:PrincipalArn (a role ARN for a role session)
    context: dict[str, str] = field(default_factory=dict)

    def key(self, name: str) -> str | None:
        if name.lower() == "aws:principalarn":
            return self.principal
        return next((value for key, value in self.context.items() if key.lower() == name.lower()), None)


def evaluate(policy: dict[str, Any], request: Request) -> str:
    """The decision: "deny", "allow" or "implicit" (no statement applies)."""
    decision = "implicit"
    for statement in _list(policy["Statement"]):
        if not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return "deny"
        decision = "allow"
    return decision


def _applies(statement: dict[str, Any], request: Request) -> bool:
    return (
        _principal_matches(statement.get("Principal", "*"), request.principal)
        and any(_like(pattern, request.action, case=False) for pattern in _list(statement["Action"]))
        and any(_like(pattern, request.resource) for pattern in _list(statement.get("Resource", "*")))
        and all(
            _condition(operator, key, values, request)
            for operator, block in statement.get("Condition", {}).items()
            for key, values in block.items()
        )
    )


def _principal_matches(principal: Any, arn: str) -> bool:
    if principal == "*":
        return True
    return any(candidate in ("*", arn) for candidate in _list(principal.get("AWS", [])))


def _condition(operator: str, key: str, values: Any, request: Request) -> bool:
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if base not in _OPERATORS:
        raise ValueError(f"operator {operator} is not implemented by this evaluator")
    negated, kind = _OPERATORS[base]
    actual = request.key(key)
    if actual is None:
        return if_exists or negated
    expected = [str(value) for value in _list(values)]
    if kind == "bool":
        matched = any(actual.lower() == value.lower() for value in expected)
    elif kind == "like":
        matched = any(_like(value, actual) for value in expected)
    else:
        matched = actual in expected
    return not matched if negated else matched


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
