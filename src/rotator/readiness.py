"""Will the next rotation of a secret work? Read-only answers, one finding per question.

The rules a rotation would discover the hard way, asked in advance: is the value
usable, is the admin secret there, does the current user log in with verified
TLS, can the admin create the twin and give it every privilege and role the
application user has, does the twin's name fit, is a rotation stuck. Nothing is
written: the admin only reads the catalogue.

Used by ``rotator check`` / ``attach`` (which print the findings) and by the
scheduled readiness check (which publishes them as metrics and log lines).
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rotator import rotation_state
from rotator.accounts import GRANT_OPTION
from rotator.errors import (
    AccountReadError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    PrivilegeMismatchError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
    StoreFailure,
    UnsafeTargetError,
    UnsupportedDatabaseError,
)
from rotator.grants import shortfall
from rotator.ports import (
    CURRENT,
    PENDING,
    TESTED,
    AccountCatalogue,
    Database,
    SecretDescription,
    SecretStore,
    ServerInfo,
)
from rotator.rotation_state import pending_version, schedule_text
from rotator.secret import TWIN_SUFFIX, DatabaseSecret
from rotator.strategies import ensure_same_server
from rotator.targets import check_accounts, check_names
from rotator.verification import check_readable

MASK = "********"
_SHOWN = 8  # privileges listed in one finding before "and N more"

STORE_HINTS = {
    StoreFailure.NOT_FOUND: "check the name or ARN, the region and the account",
    StoreFailure.DENIED: "check the caller's credentials and IAM permissions, and any resource or endpoint policy",
    StoreFailure.CREDENTIALS: "check the caller's credentials",
    StoreFailure.RETRY: "the service is throttling or unavailable after retries; try again later",
    StoreFailure.UNREACHABLE: "the Secrets Manager endpoint cannot be reached from here",
}


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "secret": self.secret,
            "arn": self.arn,
            "name": self.name,
            "ok": not self.failed,
            "findings": [finding.as_dict() for finding in self.findings],
        }


class ReadinessCheck:
    def __init__(
        self,
        store: SecretStore,
        database: Database,
        *,
        database_checks: bool = True,
        stale_after: datetime.timedelta | None = None,
        function_arn: str | None = None,
    ) -> None:
        self.store = store
        self.database = database
        self.database_checks = database_checks
        self.stale_after = stale_after
        self.function_arn = function_arn

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
        report.arn, report.name = details.arn, details.name

        self._rotation_state(details, add)
        app = self._current_value(details, add)
        if app is None:
            return report
        admin = self._admin_secret(app, add)
        if not self.database_checks:
            add(Finding("database", Level.SKIP, "database checks skipped (--no-database)"))
            return report
        self._database(app, admin, details.version_with(TESTED) is not None, add)
        return report

    # -- Secrets Manager ---------------------------------------------------------

    def _rotation_state(self, details: SecretDescription, add: Callable[[Finding], None]) -> None:
        if details.function_arn:
            enabled = "enabled" if details.rotation_enabled else "configured but disabled"
            message = f"rotation {enabled}: {details.function_arn} ({schedule_text(details)})"
            if self.function_arn and details.function_arn != self.function_arn:
                add(Finding("rotation.config", Level.WARN, message, "attach replaces it with the new function"))
            else:
                add(Finding("rotation.config", Level.OK, message))
        else:
            add(Finding("rotation.config", Level.OK, "rotation not configured yet"))
        pending = details.version_with(PENDING)
        if pending is None or pending == details.version_with(CURRENT):
            add(Finding("rotation.state", Level.OK, "no rotation in progress"))
            return
        try:
            versions = self.store.labelled_versions(details.arn)
        except SecretStoreError as exc:
            add(Finding("rotation.state", Level.FAIL, exc.problem, STORE_HINTS.get(exc.failure, "")))
            return
        stuck = pending_version(details, versions, rotation_state.utcnow(), self.stale_after)
        if stuck is None:
            add(Finding("rotation.state", Level.OK, "no rotation in progress"))
        elif stuck.stale:
            add(
                Finding(
                    "rotation.state",
                    Level.FAIL,
                    f"stuck rotation: {stuck.describe()}; RotateSecret will refuse to start another",
                    f"find why it failed (the function's logs), then: rotator fix {details.name}",
                )
            )
        else:
            add(
                Finding(
                    "rotation.state",
                    Level.WARN,
                    f"a rotation is in progress: {stuck.describe()}",
                    "wait for it to finish, then check again (rotator status)",
                )
            )

    def _current_value(self, details: SecretDescription, add: Callable[[Finding], None]) -> DatabaseSecret | None:
        version = details.version_with(CURRENT)
        if version is None:
            add(Finding("secret.value", Level.FAIL, "the secret has no AWSCURRENT version", "put a value first"))
            return None
        try:
            value = self.store.get_version(details.arn, version, CURRENT)
        except SecretStoreError as exc:
            add(Finding("secret.value", Level.FAIL, exc.problem, STORE_HINTS.get(exc.failure, "")))
            return None
        try:
            app = DatabaseSecret.parse(details.arn, value)
        except SecretFormatError as exc:
            add(
                Finding(
                    "secret.value",
                    Level.FAIL,
                    exc.problem,
                    "the value must be a JSON object with host, port, username, password "
                    "(and engine, dbname, masterarn as needed): see docs/design.md",
                )
            )
            return None
        database = f"/{app.dbname}" if app.dbname else ""
        mode = f"alternating users through {app.masterarn}" if app.masterarn else "single user"
        add(
            Finding(
                "secret.value",
                Level.OK,
                f"{app.engine or 'no engine'}: {app.username}@{app.host}:{app.port}{database}, password {MASK}; {mode}",
            )
        )
        if app.engine is None:
            add(
                Finding(
                    "secret.engine",
                    Level.WARN,
                    "no 'engine' key: rotator does not need it, but RDS tooling and the console expect it",
                    'add "engine": "mysql" (or mariadb, aurora-mysql)',
                )
            )
        if not app.tls:
            add(
                Finding(
                    "secret.tls",
                    Level.WARN,
                    "'ssl' is false: rotation logs in to the database without TLS",
                    'remove "ssl": false once the server offers TLS (rotator verifies the certificate)',
                )
            )
        if not app.masterarn:
            add(
                Finding(
                    "secret.mode",
                    Level.WARN,
                    "single-user rotation: between setSecret and the moment clients read the new value, "
                    "logins with the old password fail",
                    'add "masterarn" (the admin secret\'s ARN) to rotate with alternating users',
                )
            )
        return app

    def _admin_secret(self, app: DatabaseSecret, add: Callable[[Finding], None]) -> DatabaseSecret | None:
        if not app.masterarn:
            return None
        try:
            value = self.store.get_admin(app.masterarn)
        except SecretStoreError as exc:
            add(
                Finding(
                    "admin.secret",
                    Level.FAIL,
                    f"admin secret {app.masterarn}: {exc.problem}",
                    "'masterarn' must name an admin secret the function (and you) can read",
                )
            )
            return None
        try:
            admin = DatabaseSecret.parse(app.masterarn, value, require_host=False)
        except SecretFormatError as exc:
            add(Finding("admin.secret", Level.FAIL, f"admin secret {app.masterarn}: {exc.problem}"))
            return None
        where = "" if admin.host else " (no host: rotator logs in as admin on the application's host)"
        add(Finding("admin.secret", Level.OK, f"admin secret readable: user {admin.username}{where}"))
        try:
            check_names(app, app.twin_username, admin)
        except UnsafeTargetError as exc:
            add(Finding("target.names", Level.FAIL, exc.problem, "createSecret refuses this secret"))
        else:
            add(Finding("target.names", Level.OK, f"neither '{app.username}' nor '{app.twin_username}' is reserved"))
        return admin

    # -- the database ---------------------------------------------------------------

    def _database(
        self, app: DatabaseSecret, admin: DatabaseSecret | None, rotated_before: bool, add: Callable[[Finding], None]
    ) -> None:
        database = self.database
        app_server: ServerInfo | None = None
        try:
            app_server = database.check_login(app)
        except DatabaseError as exc:
            add(_database_failure("db.login", exc))
            if not isinstance(exc, DatabaseAuthError):
                return  # the admin would meet the same network or TLS problem
        else:
            tls = "verified TLS" if app.tls else "no TLS"
            replica = ", read-only" if app_server.read_only else ""
            add(
                Finding(
                    "db.login",
                    Level.OK,
                    f"'{app.username}' logs in to {app.host}:{app.port} with {tls} "
                    f"({app_server.version_string}{replica})",
                )
            )
        if admin is None:
            return
        try:
            with database.admin(admin, app) as session:
                add(Finding("db.admin-login", Level.OK, f"admin '{admin.username}' logs in with verified TLS"))
                self._admin_checks(session, app, app_server, rotated_before, add)
        except DatabaseError as exc:
            add(_database_failure("db.admin-login", exc))

    def _admin_checks(
        self,
        session: AccountCatalogue,
        app: DatabaseSecret,
        app_server: ServerInfo | None,
        rotated_before: bool,
        add: Callable[[Finding], None],
    ) -> None:
        if app_server is not None:
            try:
                # The very rule setSecret applies: the admin must change users on the
                # application's server (or the writer of a read-only replica).
                ensure_same_server(app, app_server, session.server)
            except SecretMismatchError as exc:
                add(
                    Finding(
                        "db.same-server", Level.FAIL, exc.problem, "point the admin secret's host at the same server"
                    )
                )
                return
        try:
            hosts = session.account_hosts(app.username)
        except DatabaseError as exc:
            add(
                Finding(
                    "admin.read-accounts",
                    Level.FAIL,
                    f"the admin cannot read the account tables: {exc.problem}",
                    "GRANT SELECT ON mysql.* TO the admin account",
                )
            )
            return
        if not hosts:
            add(Finding("app.accounts", Level.FAIL, f"user '{app.username}' has no account on this server"))
            return
        add(
            Finding("app.accounts", Level.OK, f"'{app.username}' exists at host(s) {', '.join(repr(h) for h in hosts)}")
        )

        twin = app.twin_username
        try:
            self._targets(session, app, twin, hosts, add)
            self._twin_name(session, twin, add)
            self._admin_privileges(session, app.username, hosts, add)
            self._definitions(session, app, hosts, add)
            self._twin_state(session, app.username, twin, hosts, add, rotated_before=rotated_before)
        except DatabaseError as exc:
            add(Finding("admin.read-accounts", Level.FAIL, f"reading the accounts failed: {exc.problem}"))

    @staticmethod
    def _targets(
        session: AccountCatalogue, app: DatabaseSecret, twin: str, hosts: list[str], add: Callable[[Finding], None]
    ) -> None:
        try:
            check_accounts(session, app, twin, hosts)
        except UnsafeTargetError as exc:
            add(Finding("target.accounts", Level.FAIL, exc.problem, "setSecret refuses this secret"))
        else:
            add(Finding("target.accounts", Level.OK, f"'{app.username}' and '{twin}' are login accounts, not admins"))

    @staticmethod
    def _twin_name(session: AccountCatalogue, twin: str, add: Callable[[Finding], None]) -> None:
        limit = session.max_username_length()
        if len(twin) > limit:
            add(
                Finding(
                    "twin.name",
                    Level.FAIL,
                    f"twin user name '{twin}' has {len(twin)} characters; the server allows {limit}",
                    f"use an application user name of at most {limit - len(TWIN_SUFFIX)} characters",
                )
            )
        else:
            add(Finding("twin.name", Level.OK, f"twin '{twin}' fits the server's limit of {limit} characters"))

    @staticmethod
    def _admin_privileges(
        session: AccountCatalogue, user: str, hosts: list[str], add: Callable[[Finding], None]
    ) -> None:
        lacking = shortfall(session, user, hosts)
        admin = lacking.admin
        if lacking.can_create_users:
            add(Finding("admin.create-user", Level.OK, f"admin {admin} can create users"))
        else:
            add(
                Finding(
                    "admin.create-user",
                    Level.FAIL,
                    f"admin {admin} lacks CREATE USER: it cannot create the twin or change its password",
                    f"GRANT CREATE USER ON *.* TO {admin}",
                )
            )
        if lacking.privileges:
            first = lacking.privileges[0]
            grant = "USAGE" if first.privilege == GRANT_OPTION else first.privilege
            add(
                Finding(
                    "admin.grant",
                    Level.FAIL,
                    lacking.privileges_problem(),
                    f"give the admin each privilege WITH GRANT OPTION, e.g. GRANT {grant} ON "
                    f"{first.on_clause()} TO {admin} WITH GRANT OPTION",
                )
            )
        else:
            add(
                Finding(
                    "admin.grant",
                    Level.OK,
                    f"admin {admin} can grant all {lacking.wanted_privileges} privilege(s) of '{user}'",
                )
            )
        if lacking.wanted_roles:
            if lacking.roles:
                add(
                    Finding(
                        "admin.roles",
                        Level.FAIL,
                        lacking.roles_problem(),
                        f"GRANT {lacking.roles[0].role_sql()} TO {admin} WITH ADMIN OPTION",
                    )
                )
            else:
                add(Finding("admin.roles", Level.OK, f"admin {admin} can grant the {lacking.wanted_roles} role(s)"))

    @staticmethod
    def _definitions(
        session: AccountCatalogue, app: DatabaseSecret, hosts: list[str], add: Callable[[Finding], None]
    ) -> None:
        """What testSecret compares must be readable: setSecret refuses otherwise."""
        try:
            check_readable(session, app.secret_id, app.username, hosts)
        except AccountReadError as exc:
            add(Finding("admin.read-definitions", Level.FAIL, exc.problem, "GRANT SELECT ON mysql.* TO the admin"))
        except UnsupportedDatabaseError as exc:
            add(Finding("admin.read-definitions", Level.FAIL, exc.problem))
        else:
            add(
                Finding(
                    "admin.read-definitions",
                    Level.OK,
                    f"the admin reads SHOW CREATE USER and SHOW GRANTS of '{app.username}' (testSecret compares them)",
                )
            )

    @staticmethod
    def _twin_state(
        session: AccountCatalogue,
        user: str,
        twin: str,
        hosts: list[str],
        add: Callable[[Finding], None],
        *,
        rotated_before: bool,
    ) -> None:
        twin_hosts = session.account_hosts(twin)
        if not twin_hosts:
            add(Finding("twin.state", Level.OK, f"'{twin}' does not exist yet: setSecret creates it"))
            return
        try:
            session.verify_twin(user, twin)
        except PrivilegeMismatchError as exc:
            difference = exc.problem.split(": ", 1)[-1]
            if rotated_before:
                add(
                    Finding(
                        "twin.state",
                        Level.WARN,
                        f"'{twin}' exists but differs: {difference}",
                        "nothing to do: setSecret brings the twin in line before testSecret verifies it",
                    )
                )
            else:
                add(
                    Finding(
                        "twin.takeover",
                        Level.WARN,
                        f"'{twin}' exists, was not made by rotator for this secret, and differs: {difference}. "
                        "The first rotation takes it over: its own privileges and extra hosts are removed",
                        f"if '{twin}' belongs to someone else, rename the application user; otherwise nothing to do",
                    )
                )
        else:
            add(Finding("twin.state", Level.OK, f"'{twin}' exists and matches '{user}' at {len(hosts)} host(s)"))


def _database_failure(check: str, exc: DatabaseError) -> Finding:
    if isinstance(exc, DatabaseTLSError):
        action = (
            "the CA bundle (--ca-bundle, ROTATOR_CA_BUNDLE or the secret's ssl_ca) must hold the server's CA, "
            "and the certificate must name the secret's host"
        )
        return Finding("db.tls", Level.FAIL, exc.problem, action)
    if isinstance(exc, DatabaseUnreachableError):
        action = "run check from a network that reaches the database (the function's VPC), and check host and port"
        return Finding("db.reach", Level.FAIL, exc.problem, action)
    if isinstance(exc, DatabaseAuthError):
        return Finding(check, Level.FAIL, exc.problem, "the secret's username and password must log in")
    return Finding(check, Level.FAIL, exc.problem)
