"""The findings model: one answer per question about a secret's next rotation.

A finding is what ``rotator check`` prints, what the readiness check publishes, and what
a strategy's pre-flight yields (:mod:`rotator.strategies`): setSecret raises the
``refusal`` of the first finding that has one, before anything changes; the checks
report them all.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rotator.errors import RotatorError, SecretStoreError, StoreFailure
from rotator.secret import DatabaseSecret, secret_name

MASK = "********"

# What to do when Secrets Manager answered a read with an error.
STORE_HINTS = {
    StoreFailure.NOT_FOUND: "check the name or ARN, the region and the account",
    StoreFailure.DENIED: "check the caller's credentials and IAM permissions, and any resource or endpoint policy",
    StoreFailure.CREDENTIALS: "check the caller's credentials",
    StoreFailure.RETRY: "the service is throttling or unavailable after retries; try again later",
    StoreFailure.UNREACHABLE: "the Secrets Manager endpoint cannot be reached from here",
}

# Failures about what already happened, not about what the next rotation will meet: a
# rotation that did not complete when due (rotation.last) and a twin changed since the
# last rotation (twin.drift). They need a person, but they do not stop a rotation, so
# ``attach`` does not refuse a secret for them (re-attaching may be the cure).
HISTORY_CHECKS = frozenset({"rotation.last", "twin.drift"})


class Level(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Finding:
    """One answer: a stable id, a level, what was found and what to do."""

    check: str
    level: Level
    message: str
    action: str = ""
    # What setSecret raises for this finding, before any change (a strategy's pre-flight
    # failure); None for what only the checks report. Not part of the answer.
    refusal: RotatorError | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, str]:
        found = {"check": self.check, "level": self.level.value, "message": self.message}
        if self.action:
            found["action"] = self.action
        return found


@dataclass
class SecretReport:
    secret: str
    arn: str | None = None
    name: str | None = None
    findings: list[Finding] = field(default_factory=list)
    error: SecretStoreError | None = None  # set when the secret itself could not be read

    @property
    def failed(self) -> bool:
        return any(finding.level is Level.FAIL for finding in self.findings)

    @property
    def failing_checks(self) -> list[str]:
        return [finding.check for finding in self.findings if finding.level is Level.FAIL]

    @property
    def blocking_checks(self) -> list[str]:
        """The failing checks that would make the next rotation fail (or refuse to start)."""
        return [check for check in self.failing_checks if check not in HISTORY_CHECKS]

    @property
    def label(self) -> str:
        """The secret's name (from DescribeSecret, else from the ARN it was asked by)."""
        return self.name or secret_name(self.secret)

    @property
    def key(self) -> str:
        """What findings and metrics are keyed by: the secret's full ARN (or what it was
        asked by, when it could not be read). Names repeat across regions and accounts."""
        return self.arn or self.secret

    def as_dict(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "arn": self.arn,
            "name": self.name,
            "ok": not self.failed,
            "findings": [finding.as_dict() for finding in self.findings],
        }


Add = Callable[[Finding], None]


class CheckContext(NamedTuple):
    """What a strategy's check (``Strategy.check``) gets besides the secret."""

    database_checks: bool  # False: names and secrets only, no login (--no-database)
    rotated_before: bool  # a version of the secret passed a rotator test (ROTATOR_TESTED)
    previous: Callable[[], DatabaseSecret | None]  # AWSPREVIOUS of the same user, read when asked
