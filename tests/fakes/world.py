"""A fake world: an application secret (and its admin secret) in the fake Secrets Manager,
their accounts on a fake server, and the core wired to both through its own seam,
:class:`rotator.rotation.Rotation` (store, database, password policy, admin hosts).

One world per strategy: ``alternating`` (the admin keeps a twin), ``single`` (the user
changes its own password), ``dual`` (single user on MySQL with APPLICATION_PASSWORD_ADMIN:
the old password stays as the secondary), ``same-user`` (the admin changes the user's
password; on MySQL with dual passwords).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rotator.accounts import GRANT_OPTION, Privilege
from rotator.ports import CURRENT
from rotator.readiness import ReadinessCheck, SecretReport
from rotator.rotation import Rotation, RotationRequest, Step, StepResult
from rotator.settings import ConfiguredHost, PasswordPolicy
from tests.fakes.database import ALL_STATIC, FakeDatabase, FakeServer
from tests.fakes.faults import FaultPlan
from tests.fakes.store import FakeSecretStore

STRATEGIES = ("alternating", "single", "dual", "same-user")
STEPS = tuple(Step)
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:rotator"
APP_PRIVILEGES = (
    Privilege("SELECT", "appdb"),
    Privilege("INSERT", "appdb"),
    Privilege("UPDATE", "appdb"),
    Privilege("DELETE", "appdb"),
    Privilege("SELECT", "reports", "summary"),
)
# GRANT ALL PRIVILEGES ON *.* ... WITH GRANT OPTION, as the catalogue rows list it.
ADMIN_PRIVILEGES = (*(Privilege(name) for name in ALL_STATIC), Privilege(GRANT_OPTION))


def new_password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


@dataclass
class FakeWorld:
    store: FakeSecretStore
    server: FakeServer
    database: FakeDatabase
    faults: FaultPlan
    app_arn: str
    admin_arn: str | None
    strategy: str
    admin_hosts: dict[str, ConfiguredHost] = field(default_factory=dict)
    policy: PasswordPolicy = field(default_factory=PasswordPolicy)

    @property
    def rotation(self) -> Rotation:
        return Rotation(self.store, self.database, self.policy, self.admin_hosts)

    def begin(self, token: str | None = None) -> str:
        return self.store.begin_rotation(self.app_arn, token)

    def step(self, token: str, step: Step | str) -> StepResult:
        return self.rotation.run(RotationRequest(self.app_arn, token, Step(step)))

    def rotate(self, token: str | None = None, steps: Sequence[Step] = STEPS) -> list[str]:
        token = self.begin(token)
        return [self.step(token, step).outcome for step in steps]

    def value(self, stage: str = CURRENT) -> dict[str, Any]:
        return self.store.value(self.app_arn, stage)

    def logs_in(self, value: dict[str, Any]) -> bool:
        """Whether ``value``'s credentials log in now (not counted as a login)."""
        return self.server.accepts(value["username"], value["password"])

    def check(self, **kwargs: Any) -> SecretReport:
        """``rotator check``'s read-only findings for the application secret."""
        kwargs.setdefault("admin_hosts", self.admin_hosts)
        return ReadinessCheck(self.store, self.database, **kwargs).run(self.app_arn)

    def passwords(self) -> set[str]:
        """Every password of the world: each version's, each account's, each one generated."""
        found = set(self.store.passwords_made)
        for arn in filter(None, (self.app_arn, self.admin_arn)):
            for text in self.store.all_values(arn):
                try:
                    found.add(str(json.loads(text).get("password", "")))
                except (ValueError, AttributeError):
                    continue  # a value that is not a JSON object holds no password
        for account in self.server.accounts.values():
            found |= {account.password or "", account.secondary or ""}
        return {password for password in found if password}


def make_world(
    strategy: str = "alternating",
    *,
    family: str | None = None,
    app_user: str = "app",
    hosts: Sequence[str] = ("%",),
    extra: dict[str, Any] | None = None,
    faults: FaultPlan | None = None,
) -> FakeWorld:
    """Users and secrets for one strategy (MySQL for ``dual``; ``family`` otherwise free)."""
    assert strategy in STRATEGIES, strategy
    family = family or ("mysql" if strategy in ("dual", "same-user") else "mariadb")
    faults = faults or FaultPlan()
    server = FakeServer(family)
    store = FakeSecretStore(faults)
    database = FakeDatabase(server, faults=faults)
    base = {"engine": family, "host": "127.0.0.1", "port": server.port}
    admin_arn = None
    if strategy in ("alternating", "same-user"):
        admin_password = new_password()
        server.create_user("admin", admin_password, privileges=ADMIN_PRIVILEGES)
        admin_arn = store.create_secret("rds-admin", {**base, "username": "admin", "password": admin_password})
    app_password = new_password()
    privileges = list(APP_PRIVILEGES)
    if strategy == "dual":
        privileges.append(Privilege("APPLICATION_PASSWORD_ADMIN", dynamic=True))
    for host in hosts:
        server.create_user(app_user, app_password, host=host, privileges=privileges)
    value: dict[str, Any] = {**base, "username": app_user, "password": app_password, "dbname": "appdb"}
    if admin_arn is not None:
        value["masterarn"] = admin_arn
    if strategy == "same-user":
        value["rotation_strategy"] = "single-user"
    value.update(extra or {})
    app_arn = store.create_secret("app-db", value)
    store.enable_rotation(app_arn, FUNCTION_ARN)
    return FakeWorld(store, server, database, faults, app_arn, admin_arn, strategy)
