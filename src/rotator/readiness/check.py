"""Will the next rotation of a secret work? Read-only answers, one finding per question.

:class:`ReadinessCheck` asks, in order: Secrets Manager (:mod:`.store`: the rotation's
configuration, state and schedule), the secret's value (:mod:`rotator.secret_checks`), then whatever
the secret's strategy needs (``Strategy.check``, :mod:`rotator.strategies`: the admin
secret, the logins and the strategy's pre-flight, the very one setSecret asks, with
:mod:`rotator.database_checks`' advice). Nothing is written: the admin only reads the catalogue.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping

from rotator import secret_checks
from rotator.errors import SecretStoreError, StoreFailure
from rotator.findings import STORE_HINTS, CheckContext, Finding, Level, SecretReport
from rotator.ports import PREVIOUS, TESTED, Database, SecretDescription, SecretStore
from rotator.readiness.store import StoreChecks
from rotator.secret import DatabaseSecret
from rotator.settings import ConfiguredHost
from rotator.strategies import same_user_version, strategy_for


class ReadinessCheck:
    def __init__(
        self,
        store: SecretStore,
        database: Database,
        *,
        database_checks: bool = True,
        stale_after: datetime.timedelta | None = None,
        function_arn: str | None = None,
        expect_rotation: bool = False,
        admin_hosts: Mapping[str, ConfiguredHost] | None = None,
    ) -> None:
        self.store = store
        self.database = database
        self.admin_hosts = admin_hosts or {}  # ADMIN_SECRET_HOSTS (rotator.admin_host)
        self.database_checks = database_checks
        # The scheduled check looks at secrets that must already be rotated (by
        # ``function_arn``): rotation off, or given to another function, is then a
        # failure. Before ``attach`` it is the normal state.
        self._store_checks = StoreChecks(
            store, stale_after=stale_after, function_arn=function_arn, expect_rotation=expect_rotation
        )

    def run(self, secret_id: str) -> SecretReport:
        report = SecretReport(secret_id)
        add = report.findings.append
        try:
            details = self.store.describe(secret_id)
        except SecretStoreError as exc:
            if exc.failure in (StoreFailure.CREDENTIALS, StoreFailure.UNREACHABLE):
                raise  # not about this secret: every other one would fail alike
            add(Finding("secret", Level.FAIL, exc.problem, STORE_HINTS.get(exc.failure, "")))
            report.error = exc
            return report
        if not same_secret(secret_id, details.arn):
            # Asked by an ARN, answered about another secret (a partial ARN of another
            # region or account resolves to a secret of the same name here): never report
            # one secret's health under the other's ARN.
            add(
                Finding(
                    "secret",
                    Level.FAIL,
                    f"asked for {secret_id}, Secrets Manager answered about {details.arn}: not this secret",
                    "name each secret by its full ARN, in the region the check runs in",
                )
            )
            return report
        report.arn, report.name = details.arn, details.name

        self._store_checks.run(details, add)
        app = secret_checks.current_value(self.store, details, add)
        if app is None:
            return report
        strategy = strategy_for(app, self.store, self.database, self.admin_hosts)
        if not secret_checks.value(app, strategy.describe(app), self.database, add):
            return report
        context = CheckContext(
            database_checks=self.database_checks,
            rotated_before=details.version_with(TESTED) is not None,
            previous=_Previous(self.store, details, app),
        )
        for finding in strategy.check(app, context):
            add(finding)
        return report


class _Previous:
    """AWSPREVIOUS of the same user, read only when a check asks for it."""

    def __init__(self, store: SecretStore, details: SecretDescription, app: DatabaseSecret) -> None:
        self._store, self._details, self._app = store, details, app
        self._read = False
        self._value: DatabaseSecret | None = None

    def __call__(self) -> DatabaseSecret | None:
        if not self._read:
            self._read = True
            try:
                self._value = same_user_version(self._store, self._details, PREVIOUS, self._app)
            except SecretStoreError:
                self._value = None
        return self._value


def same_secret(asked: str, arn: str) -> bool:
    """Whether ``arn`` (DescribeSecret's answer) is the secret asked for: any name, or an ARN
    that is ``arn`` itself or ``arn`` without its six-character suffix."""
    if not asked.startswith("arn:"):
        return True
    return arn == asked or (arn.startswith(asked + "-") and len(arn) == len(asked) + 7)
