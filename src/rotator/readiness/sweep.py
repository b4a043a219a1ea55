"""The scheduled readiness check: every secret the stack rotates, one after the other."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from rotator.errors import RotatorError, SecretStoreError, StoreFailure
from rotator.findings import Finding, Level, SecretReport
from rotator.ports import SecretStore
from rotator.readiness.check import ReadinessCheck

# Left when a secret is started: enough for one secret whose database does not
# answer (three logins at the connect timeout, a few Secrets Manager calls).
DEFAULT_MARGIN_SECONDS = 30.0


@dataclass
class SweepResult:
    reports: list[SecretReport]
    error: SecretStoreError | None = None  # listing the function's secrets failed; the listed ones were checked

    @property
    def not_ready(self) -> list[SecretReport]:
        return [report for report in self.reports if report.failed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": len(self.reports),
            "not_ready": [report.key for report in self.not_ready],
            "error": self.error.problem if self.error else None,
        }


class ReadinessSweep:
    """Every secret the stack rotates, checked one after the other, read-only.

    The secrets are the configured ones (the stack's list) and, when
    ``rotated_by`` is given, every secret whose rotation function is that one
    (``ListSecrets``). Each report is handed to ``publish`` as soon as it is done,
    so a run cut short still says what it found; secrets left when time runs out
    are reported as not checked, never silently dropped.
    """

    def __init__(
        self,
        check: ReadinessCheck,
        store: SecretStore,
        secret_ids: Sequence[str],
        *,
        rotated_by: str | None = None,
        margin_seconds: float = DEFAULT_MARGIN_SECONDS,
    ) -> None:
        self.check = check
        self.store = store
        self.secret_ids = list(dict.fromkeys(secret_ids))
        self.rotated_by = rotated_by
        self.margin_seconds = margin_seconds

    def run(
        self, publish: Callable[[SecretReport], None], seconds_left: Callable[[], float] | None = None
    ) -> SweepResult:
        targets = list(self.secret_ids)
        result = SweepResult([])
        if self.rotated_by:
            try:
                targets += [arn for arn in self.store.secret_arns(self.rotated_by) if arn not in targets]
            except SecretStoreError as exc:
                if exc.failure in (StoreFailure.CREDENTIALS, StoreFailure.UNREACHABLE):
                    raise
                result.error = exc
        for index, secret in enumerate(targets):
            if seconds_left is not None and seconds_left() < self.margin_seconds:
                for rest in targets[index:]:
                    report = _not_checked(rest, index, len(targets))
                    publish(report)
                    result.reports.append(report)
                break
            report = self._check(secret)
            publish(report)
            result.reports.append(report)
        return result

    def _check(self, secret: str) -> SecretReport:
        try:
            return self.check.run(secret)
        except SecretStoreError:
            raise  # about the caller, not this secret (see ReadinessCheck.run): every other would fail alike
        except RotatorError as exc:
            return SecretReport(secret, findings=[Finding("readiness.error", Level.FAIL, exc.problem)])
        except Exception as exc:  # a bug in one check must not leave the other secrets unchecked
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{PurePath(frame.filename).name}:{frame.lineno} ({frame.name})"
            problem = f"the check itself failed: unexpected {type(exc).__name__} at {where} (message withheld)"
            action = "a rotator bug: report it; the other secrets were checked"
            return SecretReport(secret, findings=[Finding("readiness.error", Level.FAIL, problem, action)])


def _not_checked(secret: str, done: int, total: int) -> SecretReport:
    return SecretReport(
        secret,
        findings=[
            Finding(
                "readiness.time",
                Level.FAIL,
                f"not checked: the readiness check ran out of time after {done} of {total} secret(s)",
                "raise the stack's CanaryTimeout, or look for a database that does not answer "
                "(db.reach findings slow every run down)",
            )
        ],
    )
