"""Taking a secret's resource policy over: what is in place, and the lock merged into it.

A secret already locked by hand cannot be given the template's lock: CloudFormation's
``AWS::SecretsManager::ResourcePolicy`` attaches only to a secret without a policy, and
removing the hand-made one first leaves the secret unlocked in between. ``rotator lock``
instead reads the policy in place, merges the lock (:func:`rotator.iam_policies.resource_policy`)
into it and writes the result with one ``PutResourcePolicy``: the old policy holds until
the new one does. This module is the pure part: recognising what a policy holds
(:func:`inspect`) and planning the merge (:func:`plan`), which refuses a merge that would
loosen the policy in place.

What the merge replaces, and nothing else: rotator's own statements (by Sid, earlier
versions' included) and the hand-made lock of the console setup this project replaces -
one statement denying ``secretsmanager:GetSecretValue`` to everyone (``Principal: *``)
unless ``aws:sourceVpce`` is one of some endpoints, optionally sparing some principals
by ``aws:PrincipalArn``. Every other statement is kept as it is, in its place; the
lock's statements are appended. A statement that is not recognised is never removed.

*Loosening* means: the merged policy would allow a request that the policy in place
denies, to anyone other than the principals this command names (break-glass, writers,
lock managers - naming them is what the command is for). Concretely, each replaced
statement must be covered by one of the new statements: the same actions or more,
denied on at least the same paths (no endpoint the old statement did not admit; a
statement that denied on every path is replaced only by one that does too). A replaced
statement that did not spare AWS service principals is refused when another statement
of the policy allows a service principal something (the lock spares them).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rotator import iam_policies

# The one action the hand-made lock denies (iam_policies.LOCK_READ_ACTIONS).
_READ_ACTION = iam_policies.LOCK_READ_ACTIONS[0].lower()
_SOURCE_VPCE = "aws:sourcevpce"
_PRINCIPAL_ARN = "aws:principalarn"
_VPCE_OPERATORS = ("stringnotequals", "stringnotequalsifexists")
_PRINCIPAL_OPERATORS = ("arnnotlike", "arnnotequals", "stringnotlike", "stringnotequals")


class Holding(enum.StrEnum):
    """What a secret's resource policy holds, as far as the lock is concerned."""

    NONE = "none"  # no resource policy
    LOCK = "lock"  # rotator's lock (this version's statements)
    OLD_LOCK = "old-lock"  # an earlier rotator lock, guarding reads only
    HAND_MADE = "hand-made"  # the console setup's Deny GetSecretValue unless aws:sourceVpce
    OTHER = "other"  # a policy without any lock rotator knows


class LockRefused(iam_policies.PolicyError):
    """The merge would loosen the policy in place, or cannot be made; nothing is written."""


@dataclass(frozen=True)
class Inspection:
    holding: Holding
    statements: int
    endpoints: tuple[str, ...] = ()  # the endpoints the lock in place admits, if any


@dataclass(frozen=True)
class Plan:
    """The policy in place, the policy to write, and what the merge did."""

    before: dict[str, Any] | None
    after: dict[str, Any]
    replaced: tuple[str, ...]  # Sids (or #positions) of statements taken over
    kept: tuple[str, ...]  # Sids (or #positions) of statements kept as they are
    kept_denies: tuple[str, ...]  # kept Deny statements: they still apply next to the lock

    @property
    def changed(self) -> bool:
        return self.before != self.after


def parse(text: str | None) -> dict[str, Any] | None:
    """The policy document GetResourcePolicy returned (a JSON string, or nothing)."""
    if text is None or not text.strip():
        return None
    loaded = json.loads(text)
    if not isinstance(loaded, dict):
        raise iam_policies.PolicyError("the resource policy in place is not a JSON object")
    return loaded


def inspect(policy: Mapping[str, Any] | None) -> Inspection:
    """What ``policy`` holds (for ``rotator check`` and the plan's summary)."""
    if policy is None:
        return Inspection(Holding.NONE, 0)
    statements = _statements(policy)
    sids = {statement.get("Sid") for statement in statements}
    if "DenyOutsideEndpoint" in sids:
        found = next(s for s in statements if s.get("Sid") == "DenyOutsideEndpoint")
        return Inspection(Holding.LOCK, len(statements), _endpoints(found))
    for statement in statements:
        if statement.get("Sid") in iam_policies.RETIRED_LOCK_SIDS:
            return Inspection(Holding.OLD_LOCK, len(statements), _endpoints(statement))
        if _hand_made(statement):
            return Inspection(Holding.HAND_MADE, len(statements), _endpoints(statement))
    return Inspection(Holding.OTHER, len(statements))


def plan(existing: Mapping[str, Any] | None, lock: Mapping[str, Any]) -> Plan:
    """``existing`` with ``lock`` merged in; :class:`LockRefused` if that would loosen it."""
    before = dict(existing) if existing is not None else None
    statements = _statements(existing) if existing is not None else []
    ours = list(lock["Statement"])
    replaced: list[tuple[int, dict[str, Any]]] = []
    kept: list[tuple[int, dict[str, Any]]] = []
    for position, statement in enumerate(statements, 1):
        (replaced if _taken_over(statement) else kept).append((position, statement))
    for position, old in replaced:
        _refuse_loosening(position, old, ours, [statement for _, statement in kept])
    after = {
        "Version": (existing or {}).get("Version", iam_policies.VERSION),
        "Statement": [statement for _, statement in kept] + ours,
    }
    size = len(json.dumps(after, separators=(",", ":")))
    if size > iam_policies.SIZE_LIMITS["resource"]:
        raise LockRefused(
            f"the merged policy has {size} characters; AWS accepts {iam_policies.SIZE_LIMITS['resource']}"
        )
    return Plan(
        before,
        after,
        tuple(_label(position, s) for position, s in replaced),
        tuple(_label(position, s) for position, s in kept),
        tuple(_label(position, s) for position, s in kept if s.get("Effect") == "Deny"),
    )


# -- recognising statements -----------------------------------------------------------


def _taken_over(statement: Mapping[str, Any]) -> bool:
    sid = statement.get("Sid")
    return sid in iam_policies.LOCK_SIDS or sid in iam_policies.RETIRED_LOCK_SIDS or _hand_made(statement)


def _hand_made(statement: Mapping[str, Any]) -> bool:
    """Deny GetSecretValue to everyone unless aws:sourceVpce (optionally sparing principals)."""
    if statement.get("Effect") != "Deny" or statement.get("Principal") not in ("*", {"AWS": "*"}):
        return False
    if "NotAction" in statement or "NotPrincipal" in statement or "NotResource" in statement:
        return False
    if [action.lower() for action in _as_list(statement.get("Action"))] != [_READ_ACTION]:
        return False
    condition = _lowered(statement.get("Condition"))
    if condition is None or not _endpoints(statement):
        return False
    allowed = {(op, _SOURCE_VPCE) for op in _VPCE_OPERATORS}
    allowed |= {(op, _PRINCIPAL_ARN) for op in _PRINCIPAL_OPERATORS}
    allowed.add(("boolifexists", "aws:principalisawsservice"))
    return all((op, key) in allowed for op, block in condition.items() for key in block)


def _endpoints(statement: Mapping[str, Any]) -> tuple[str, ...]:
    condition = _lowered(statement.get("Condition")) or {}
    found: list[str] = []
    for operator in _VPCE_OPERATORS:
        found += [str(value) for value in _as_list(condition.get(operator, {}).get(_SOURCE_VPCE))]
    return tuple(dict.fromkeys(found))


def _lowered(condition: Any) -> dict[str, dict[str, Any]] | None:
    """The condition block with operators and keys in lower case (IAM compares them so)."""
    if not isinstance(condition, Mapping) or not all(isinstance(block, Mapping) for block in condition.values()):
        return None
    return {op.lower(): {key.lower(): value for key, value in block.items()} for op, block in condition.items()}


# -- the loosening check ----------------------------------------------------------------


def _refuse_loosening(
    position: int, old: Mapping[str, Any], ours: Sequence[Mapping[str, Any]], kept: Sequence[Mapping[str, Any]]
) -> None:
    label = _label(position, old)
    old_actions = {action.lower() for action in _as_list(old.get("Action"))}
    old_paths = _endpoints(old)
    old_via = _called_via(old)
    covering = [
        new
        for new in ours
        if old_actions <= {action.lower() for action in _as_list(new.get("Action"))}
        and _called_via(new) in (old_via, None)
    ]
    if not covering:
        actions = ", ".join(sorted(old_actions))
        raise LockRefused(
            f"statement {label} of the policy in place denies {actions} in a way the lock would not "
            "(pass the same --writer/--lock-manager principals as before, or keep the policy as it is)"
        )
    if old_paths:
        # Denied outside old_paths: the new statement must deny outside a subset of them.
        wider = [new for new in covering if _endpoints(new) and not set(_endpoints(new)) <= set(old_paths)]
        if len(wider) == len(covering):
            admitted = sorted(set(_endpoints(wider[0])) - set(old_paths))
            raise LockRefused(
                f"statement {label} of the policy in place admits only {', '.join(old_paths)}; the lock would also "
                f"admit {', '.join(admitted)}"
            )
    elif all(_endpoints(new) for new in covering):
        raise LockRefused(
            f"statement {label} of the policy in place denies on every path; the lock would admit "
            f"{', '.join(_endpoints(covering[0]))}"
        )
    spares_services = "boolifexists" in (_lowered(old.get("Condition")) or {})
    if not spares_services and any(_names_a_service(statement) for statement in kept):
        raise LockRefused(
            f"statement {label} of the policy in place also binds AWS service principals, which another "
            "statement allows something; the lock spares service principals"
        )


def _called_via(statement: Mapping[str, Any]) -> Any:
    condition = _lowered(statement.get("Condition")) or {}
    for operator, block in condition.items():
        if "aws:calledvia" in block:
            return (operator, tuple(sorted(_as_list(block["aws:calledvia"]))))
    return None


def _names_a_service(statement: Mapping[str, Any]) -> bool:
    principal = statement.get("Principal")
    return statement.get("Effect") == "Allow" and isinstance(principal, Mapping) and "Service" in principal


# -- helpers ------------------------------------------------------------------------------


def _statements(policy: Mapping[str, Any]) -> list[dict[str, Any]]:
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise iam_policies.PolicyError("the resource policy in place has no Statement list")
    return statements


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _label(position: int, statement: Mapping[str, Any]) -> str:
    sid = statement.get("Sid")
    return str(sid) if sid else f"#{position}"
