"""Will the next rotation of a secret work? Read-only answers, one finding per question.

The rules a rotation would discover the hard way, asked in advance: is the value
usable, is the admin secret there, does the current user log in with verified
TLS, can the admin create the twin and give it every privilege and role the
application user has, does the twin's name fit, is a rotation stuck, did the last
one complete, when is the next one due, has someone changed the twin behind
rotator's back. Nothing is written: the admin only reads the catalogue.

Used by ``rotator check`` / ``attach`` (which print the findings) and by the
scheduled readiness check, :class:`ReadinessSweep` (the canary function,
``rotator.canary``, publishes its reports as metrics and log lines).
"""

from __future__ import annotations

import datetime
import enum
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from rotator import schedule
from rotator.accounts import GRANT_OPTION, Account, RoleGrant, differences
from rotator.arns import function_qualifier
from rotator.comparison import check_readable
from rotator.errors import (
    AccountReadError,
    AccountStateError,
    AdminHostError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    RotatorError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
    StoreFailure,
    UnsafeTargetError,
    UnsupportedDatabaseError,
)
from rotator.grants import Shortfall, can_create_users, effective_privileges, shortfall
from rotator.ports import (
    CURRENT,
    PENDING,
    PREVIOUS,
    TESTED,
    AccountCatalogue,
    Database,
    DualPasswords,
    LoginLimit,
    SecretDescription,
    SecretStore,
    ServerInfo,
)
from rotator.schedule import PendingVersion, format_date, pending_version, schedule_state, schedule_text
from rotator.secret import TWIN_SUFFIX, DatabaseSecret, secret_name
from rotator.settings import ConfiguredHost
from rotator.strategies import AdminAccess, ensure_same_server, same_user_version
from rotator.targets import check_accounts, check_names

MASK = "********"
ADMIN_HOST_ACTION = (
    "an RDS-managed admin secret needs the application's host to be an endpoint of its cluster or instance "
    "(its aws:rds:* tag), or an ADMIN_SECRET_HOSTS entry (the stack's AdminSecretHosts) naming the admin's host"
)
_SHOWN = 8  # privileges listed in one finding before "and N more"

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
        self.stale_after = stale_after
        self.function_arn = function_arn
        # The scheduled check looks at secrets that must already be rotated (by
        # ``function_arn``): rotation off, or given to another function, is then a
        # failure. Before ``attach`` it is the normal state.
        self.expect_rotation = expect_rotation

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

        self._rotation_state(details, add)
        app = self._current_value(details, add)
        if app is None:
            return report
        admin = self._admin_secret(app, add)
        if not self.database_checks:
            add(Finding("database", Level.SKIP, "database checks skipped (--no-database)"))
            _add_window(app, None, add)
            return report
        self._database(app, admin, details.version_with(TESTED) is not None, add, _Previous(self.store, details, app))
        return report

    # -- Secrets Manager ---------------------------------------------------------

    def _rotation_state(self, details: SecretDescription, add: Callable[[Finding], None]) -> None:
        self._rotation_config(details, add)
        stuck: PendingVersion | None = None
        pending = details.version_with(PENDING)
        if pending is not None and pending != details.version_with(CURRENT):
            try:
                versions = self.store.labelled_versions(details.arn)
            except SecretStoreError as exc:
                add(Finding("rotation.state", Level.FAIL, exc.problem, STORE_HINTS.get(exc.failure, "")))
                return
            stuck = pending_version(details, versions, schedule.utcnow(), self.stale_after)
        if stuck is None:
            add(Finding("rotation.state", Level.OK, "no rotation in progress"))
        elif stuck.stale:
            add(_stuck_rotation(details, stuck))
        else:
            add(
                Finding(
                    "rotation.state",
                    Level.WARN,
                    f"a rotation is in progress: {stuck.describe()}",
                    "wait for it to finish, then check again (rotator status)",
                )
            )
        if details.rotation_enabled:
            self._schedule(details, stuck, add)

    def _rotation_config(self, details: SecretDescription, add: Callable[[Finding], None]) -> None:
        expected = self.expect_rotation
        if not details.function_arn:
            if expected:
                add(
                    Finding(
                        "rotation.config",
                        Level.FAIL,
                        "rotation is not configured: no rotation will run",
                        "attach it: the stack's RotatedSecretArns, or rotator attach",
                    )
                )
            else:
                add(Finding("rotation.config", Level.OK, "rotation not configured yet"))
            return
        enabled = "enabled" if details.rotation_enabled else "configured but disabled"
        message = f"rotation {enabled}: {details.function_arn} ({schedule_text(details)})"
        qualifier = function_qualifier(details.function_arn)
        if qualifier is not None and (expected or not self.function_arn):
            add(
                Finding(
                    "rotation.config",
                    Level.FAIL,
                    f"{message}; a qualified function ARN (':{qualifier}'): rotator's role allows the "
                    "function's calls only where AllowRotationLambdaArn is the unqualified ARN, so they are denied",
                    "attach it again with the function's unqualified ARN (rotator attach --function-arn)",
                )
            )
        elif self.function_arn and details.function_arn != self.function_arn:
            if expected:
                add(
                    Finding(
                        "rotation.config",
                        Level.FAIL,
                        f"{message}; not this stack's function {self.function_arn}",
                        "attach it to this function again (RotatedSecretArns, or rotator attach), "
                        "or take it off the stack's list",
                    )
                )
            else:
                add(Finding("rotation.config", Level.WARN, message, "attach replaces it with the new function"))
        elif expected and not details.rotation_enabled:
            add(
                Finding(
                    "rotation.config",
                    Level.FAIL,
                    f"{message}: no rotation will run",
                    "turn it on again: redeploy the stack, or rotator attach",
                )
            )
        else:
            add(Finding("rotation.config", Level.OK, message))

    def _schedule(
        self, details: SecretDescription, stuck: PendingVersion | None, add: Callable[[Finding], None]
    ) -> None:
        """Did the last rotation complete, and when is the next one due (rotation is on)?"""
        state = schedule_state(details, schedule.utcnow())
        last = format_date(details.last_rotated) if details.last_rotated else None
        if state.overdue_since is not None:
            done = f"the last one completed {last}" if last else "none has completed since rotation was turned on"
            add(
                Finding(
                    "rotation.last",
                    Level.FAIL,
                    f"the rotation due by {format_date(state.overdue_since)} has not completed ({done})",
                    "read why in the function's log group (its 'step failed' lines for this secret), "
                    f"fix the cause (rotator check {details.name} from the VPC), then rotate: "
                    f"aws secretsmanager rotate-secret --secret-id {details.name}",
                )
            )
        elif last:
            add(Finding("rotation.last", Level.OK, f"last rotation completed {last}"))
        elif state.due is not None:
            add(
                Finding(
                    "rotation.last",
                    Level.OK,
                    f"no rotation has completed yet; the first is due by {format_date(state.due)}",
                )
            )
        else:
            add(
                Finding(
                    "rotation.last",
                    Level.WARN,
                    "no rotation has completed yet, and Secrets Manager names no next rotation date",
                    f"rotator status {details.name}; if the schedule is set, start one: "
                    f"aws secretsmanager rotate-secret --secret-id {details.name}",
                )
            )
        due = f"due by {format_date(state.due)}" if state.due else "date unknown"
        upcoming = f"next rotation {due} ({schedule_text(details)})"
        if stuck is None:
            add(Finding("rotation.next", Level.OK, upcoming))
            return
        blocked = "blocked" if stuck.stale else "blocked unless the rotation in progress finishes"
        add(
            Finding(
                "rotation.next",
                Level.WARN,
                f"{upcoming}: {blocked}: RotateSecret refuses to start while AWSPENDING stays on "
                f"version {stuck.version_id}",
                "see rotation.state",
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
        if app.alternates:
            mode = f"alternating users through {app.masterarn}"
        else:
            mode = f"single user, password set by the admin of {app.masterarn}" if app.masterarn else "single user"
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
        return app

    def _admin_secret(self, app: DatabaseSecret, add: Callable[[Finding], None]) -> DatabaseSecret | None:
        if not app.masterarn:
            return None
        access = AdminAccess(self.store, self.database, app.masterarn, self.admin_hosts)
        try:
            admin = access.read(app)
        except SecretStoreError as exc:
            add(
                Finding(
                    "admin.secret",
                    Level.FAIL,
                    exc.problem,
                    "'masterarn' must name an admin secret the function (and you) can read",
                )
            )
            return None
        except SecretFormatError as exc:
            add(Finding("admin.secret", Level.FAIL, exc.problem))
            return None
        where = "" if admin.host else " (no host of its own)"
        add(Finding("admin.secret", Level.OK, f"admin secret readable: user {admin.username}{where}"))
        admin = self._admin_host(access, app, admin, add)
        twin = app.twin_username if app.alternates else None
        try:
            check_names(app, twin, admin)
        except UnsafeTargetError as exc:
            add(Finding("target.names", Level.FAIL, exc.problem, "createSecret refuses this secret"))
        else:
            names = f"neither '{app.username}' nor '{twin}' is" if twin else f"'{app.username}' is not"
            add(Finding("target.names", Level.OK, f"{names} reserved or the admin's"))
        return admin if admin.host else None

    @staticmethod
    def _admin_host(
        access: AdminAccess, app: DatabaseSecret, admin: DatabaseSecret, add: Callable[[Finding], None]
    ) -> DatabaseSecret:
        """Where the admin's credentials go: the rule setSecret applies (rotator.admin_host).
        Refused, the admin is not logged in anywhere (its secret is returned without a host)."""
        try:
            confirmed = access.confirm(app, admin)
        except AdminHostError as exc:
            add(Finding("admin.host", Level.FAIL, exc.problem, ADMIN_HOST_ACTION))
            return admin
        except SecretStoreError as exc:
            add(Finding("admin.host", Level.FAIL, exc.problem, "the function needs DescribeSecret on the admin secret"))
            return admin
        host = f"{confirmed.secret.host}:{confirmed.secret.port}"
        add(Finding("admin.host", Level.OK, f"the admin logs in to {host} ({confirmed.confirmed_by})"))
        return confirmed.secret

    # -- the database ---------------------------------------------------------------

    def _database(
        self,
        app: DatabaseSecret,
        admin: DatabaseSecret | None,
        rotated_before: bool,
        add: Callable[[Finding], None],
        previous: _Previous,
    ) -> None:
        database = self.database
        app_server: ServerInfo | None = None
        try:
            if app.masterarn:
                app_server = database.check_login(app)
            else:
                with database.own_account((app,)) as own:
                    app_server = own.server
                    dual = own.dual_passwords()
                    _add_window(app, dual, add)
                    limit = own.login_limit()
                    _add_login_limit(app, limit, dual, add)
                    if dual.available:
                        self._own_secondary(app, limit, previous(), add)
        except DatabaseError as exc:
            add(_database_failure("db.login", exc))
            if not app.masterarn:
                _add_window(app, None, add)
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
                self._admin_checks(session, app, app_server, rotated_before, add, previous=previous)
        except DatabaseError as exc:
            add(_database_failure("db.admin-login", exc))

    def _own_secondary(
        self, app: DatabaseSecret, limit: LoginLimit, previous: DatabaseSecret | None, add: Callable[[Finding], None]
    ) -> None:
        """Single user with dual passwords: the secondary should be AWSPREVIOUS's, which the
        next rotation replaces. A user cannot read its hashes, so only a login tells, and it
        is tried only where no failed-login limit would count a refusal."""
        if previous is None or previous.password == app.password or limit.attempts:
            return
        try:
            self.database.check_login(previous)
        except DatabaseAuthError:
            add(
                Finding(
                    "db.passwords",
                    Level.WARN,
                    f"AWSPREVIOUS no longer logs in as '{app.username}': the account's secondary password is "
                    "someone else's (or there is none). The next rotation replaces it with AWSCURRENT's",
                    "if someone uses that password, give them the secret instead",
                )
            )
        except DatabaseError:
            return
        else:
            add(Finding("db.passwords", Level.OK, "AWSPREVIOUS logs in as the secondary password, as expected"))

    def _admin_checks(
        self,
        session: AccountCatalogue,
        app: DatabaseSecret,
        app_server: ServerInfo | None,
        rotated_before: bool,
        add: Callable[[Finding], None],
        *,
        previous: _Previous,
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
        _add_login_limit(app, _strictest(session, app.username, hosts), session.dual_passwords(), add)
        if not app.alternates:
            self._same_user(session, app, hosts, add)
            _held_passwords(session, app, previous(), add)
            return

        twin = app.twin_username
        try:
            self._definitions(session, app, hosts, add)  # setSecret's pre-flight asks it first too
            self._targets(session, app, twin, hosts, add)
            self._twin_name(session, twin, add)
            self._admin_privileges(session, app.username, twin, hosts, add)
            self._twin_state(session, app.username, twin, hosts, add, rotated_before=rotated_before)
        except DatabaseError as exc:
            add(Finding("admin.read-accounts", Level.FAIL, f"reading the accounts failed: {exc.problem}"))

    @staticmethod
    def _same_user(
        session: AccountCatalogue, app: DatabaseSecret, hosts: list[str], add: Callable[[Finding], None]
    ) -> None:
        """Single user, password set by the admin: the user must be a login account the
        admin may change, and the window depends on the server's dual passwords."""
        try:
            check_accounts(session, app, None, hosts)
            admin = session.current_account()
            held, _roles = effective_privileges(session, admin)
        except UnsafeTargetError as exc:
            add(Finding("target.accounts", Level.FAIL, exc.problem, "setSecret refuses this secret"))
            return
        except DatabaseError as exc:
            add(Finding("admin.read-accounts", Level.FAIL, f"reading the accounts failed: {exc.problem}"))
            return
        add(Finding("target.accounts", Level.OK, f"'{app.username}' is a login account, not an admin"))
        add(_create_user(admin, can_create_users(held), f"change '{app.username}''s password"))
        _add_window(app, session.dual_passwords(), add)

    @staticmethod
    def _targets(
        session: AccountCatalogue, app: DatabaseSecret, twin: str, hosts: list[str], add: Callable[[Finding], None]
    ) -> None:
        try:
            expired = check_accounts(session, app, twin, hosts)
        except UnsafeTargetError as exc:
            add(Finding("target.accounts", Level.FAIL, exc.problem, "setSecret refuses this secret"))
            return
        add(Finding("target.accounts", Level.OK, f"'{app.username}' and '{twin}' are login accounts, not admins"))
        if expired:
            add(
                Finding(
                    "twin.expired",
                    Level.WARN,
                    f"the password of {', '.join(map(str, expired))} has expired",
                    "nothing to do: setSecret sets the twin's new password, which clears the expiry",
                )
            )

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
        session: AccountCatalogue, user: str, twin: str, hosts: list[str], add: Callable[[Finding], None]
    ) -> None:
        lacking = shortfall(session, user, hosts, twin)
        admin = lacking.admin
        _copy_findings(lacking, add)
        add(_create_user(admin, lacking.can_create_users, "create the twin or change its password"))
        if lacking.privileges:
            first = lacking.privileges[0]
            grant = "USAGE" if first.privilege == GRANT_OPTION else first.privilege
            add(
                Finding(
                    "admin.grant",
                    Level.FAIL,
                    lacking.privileges_problem(),
                    f"give the admin each privilege WITH GRANT OPTION, e.g. GRANT {grant} ON "
                    f"{first.object_name()} TO {admin} WITH GRANT OPTION",
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
                        f"GRANT {RoleGrant(lacking.roles[0].role, lacking.roles[0].role_host).describe()} "
                        f"TO {admin} WITH ADMIN OPTION",
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
        found = compare_twin(session, user, twin, hosts, twin_hosts)
        if not found.differences:
            add(Finding("twin.state", Level.OK, f"'{twin}' exists and matches '{user}' at {len(hosts)} host(s)"))
            return
        difference = "; ".join(found.differences[:20])
        if not rotated_before:
            add(
                Finding(
                    "twin.takeover",
                    Level.WARN,
                    f"'{twin}' exists, was not made by rotator for this secret, and differs: {difference}. "
                    "The first rotation takes it over: its own privileges and extra hosts are removed",
                    f"if '{twin}' belongs to someone else, rename the application user; otherwise nothing to do",
                )
            )
        elif found.extras:
            # testSecret proved the twin equal to the user when this secret last
            # rotated; what the twin holds beyond the user was given to it since.
            listed = "; ".join(found.extras[:_SHOWN])
            more = f" and {len(found.extras) - _SHOWN} more" if len(found.extras) > _SHOWN else ""
            add(
                Finding(
                    "twin.drift",
                    Level.FAIL,
                    f"'{twin}' holds what '{user}' does not, given to it directly since the last rotation: "
                    f"{listed}{more}. The AWSPREVIOUS credentials log in with it, and the next rotation "
                    f"revokes it when '{twin}' becomes current",
                    f"give it to '{user}' (the AWSCURRENT user: the next rotation copies it to '{twin}') and "
                    f"revoke it from '{twin}'; or, if nobody needs it, revoke it from '{twin}'",
                )
            )
        else:
            add(
                Finding(
                    "twin.state",
                    Level.WARN,
                    f"'{twin}' exists but differs: {difference}",
                    f"nothing to do: setSecret brings the twin in line before testSecret verifies it "
                    f"(a change made to '{twin}' itself is undone then; make it to '{user}')",
                )
            )


@dataclass(frozen=True)
class TwinComparison:
    differences: tuple[str, ...]  # every difference, worded as testSecret's verification words it
    extras: tuple[str, ...]  # hosts, privileges and roles the twin holds and the user does not


def compare_twin(
    catalogue: AccountCatalogue, user: str, twin: str, hosts: list[str], twin_hosts: list[str]
) -> TwinComparison:
    """How the twin differs from the user (read-only). A grant made to the user since
    the last rotation shows as something the twin lacks; only a change made to the
    twin itself gives it something the user does not have."""
    found: list[str] = []
    extras = [f"host '{host}'" for host in twin_hosts if host not in hosts]
    if hosts != twin_hosts:
        found.append(f"hosts differ ({', '.join(hosts)} vs {', '.join(twin_hosts)})")
    for host in (host for host in hosts if host in twin_hosts):
        source = catalogue.read_profile(Account(user, host))
        copy = catalogue.read_profile(Account(twin, host))
        found += [f"@'{host}': {difference}" for difference in differences(source, copy)]
        extras += [f"@'{host}': {privilege.describe()}" for privilege in sorted(copy.privileges - source.privileges)]
        extras += [f"@'{host}': role {role.describe()}" for role in sorted(copy.roles - source.roles)]
    return TwinComparison(tuple(found), tuple(extras))


def single_user_window(app: DatabaseSecret, dual: DualPasswords | None) -> Finding | None:
    """Whether a single-user rotation has a window in which logins with the old
    password fail: from setSecret's change until clients read the new AWSCURRENT.
    None for alternating users (no window); ``dual`` None when no login told."""
    if app.alternates:
        return None
    if dual is not None and dual.available:
        return Finding(
            "secret.mode",
            Level.OK,
            "single-user window: no; the old password stays valid as the secondary one until the next "
            f"rotation (dual passwords: {dual.reason})",
        )
    because = dual.reason if dual is not None else "it depends on the server, which did not answer"
    if dual is not None and dual.server_has_them and not app.masterarn:
        action = f"GRANT APPLICATION_PASSWORD_ADMIN ON *.* TO '{app.username}' (at each of its hosts)"
    elif app.masterarn:
        action = "on MySQL 8.0.21+ (Aurora MySQL 3) the admin keeps the old password; elsewhere clients must retry"
    else:
        action = 'add "masterarn" (the admin secret\'s ARN) to rotate with alternating users'
    return Finding(
        "secret.mode",
        Level.WARN,
        f"single-user window: yes, because {because}: between setSecret and the moment clients read the "
        "new value, logins with the old password fail",
        action,
    )


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


def _strictest(session: AccountCatalogue, user: str, hosts: list[str]) -> LoginLimit:
    """The lowest failed-login limit among the user's accounts (none when unreadable)."""
    try:
        limits = [session.login_limit(Account(user, host)) for host in hosts]
    except DatabaseError:
        return LoginLimit()
    limited = [limit for limit in limits if limit.attempts]
    return min(limited, key=lambda limit: limit.attempts) if limited else LoginLimit()


def _add_login_limit(
    app: DatabaseSecret, limit: LoginLimit, dual: DualPasswords | None, add: Callable[[Finding], None]
) -> None:
    """A failed-login limit makes rotation fragile: refused logins of clients that still hold
    an old password lock the account, and a lock-out refuses the right password too."""
    if not limit.attempts:
        return
    window = not app.alternates and not (dual is not None and dual.available)
    if window:
        who = (
            "clients logging in with the old password between setSecret and finishSecret (the single-user "
            "window) are refused and count towards it"
        )
    else:
        who = (
            "clients still using an old password (AWSPREVIOUS after the next rotation) are refused and count towards it"
        )
    few = "one refused login" if limit.attempts == 1 else f"{limit.attempts} refused logins in a row"
    if limit.scope == "server":
        action = (
            "raise max_password_errors well above the number of application instances (SET GLOBAL and the "
            "server's configuration), or leave it at its default (no limit)"
        )
    else:
        action = (
            f"ALTER USER '{app.username}'@... FAILED_LOGIN_ATTEMPTS 0 PASSWORD_LOCK_TIME 0 for an account rotator "
            "rotates, or keep the limit well above the number of application instances"
        )
    add(
        Finding(
            "db.login-limit",
            Level.WARN,
            f"'{app.username}': {limit.describe()}: {few} lock(s) the account, and then the right password is "
            f"refused too; {who}. rotator's own logins try the password the database most likely holds first",
            f"{action}; clients should treat errors 3955/4150 like a refused login and re-read AWSCURRENT",
        )
    )


def _held_passwords(
    session: AccountCatalogue, app: DatabaseSecret, previous: DatabaseSecret | None, add: Callable[[Finding], None]
) -> None:
    """The same user set by the admin: which passwords the account holds, from its stored
    hashes (no login): someone else's primary or secondary is reported before the next
    rotation replaces it."""
    candidates = {CURRENT: app.password}
    if previous is not None:
        candidates[PREVIOUS] = previous.password
    try:
        held = [found for found in session.passwords_held(app.username, candidates) if found.known]
    except DatabaseError:
        return
    foreign_secondary = [found.host for found in held if found.primary == CURRENT and found.foreign_secondary]
    foreign_primary = [found.host for found in held if found.primary != CURRENT and found.secondary == CURRENT]
    if foreign_primary:
        add(
            Finding(
                "db.passwords",
                Level.WARN,
                f"the primary password of '{app.username}' at host(s) {_listed(foreign_primary)} is not AWSCURRENT's "
                "(changed outside rotator, or by an abandoned rotation); AWSCURRENT's logs in only as the secondary "
                "one. The next rotation replaces the primary and keeps AWSCURRENT's",
                "if someone uses that password, give them the secret instead",
            )
        )
    elif foreign_secondary:
        add(
            Finding(
                "db.passwords",
                Level.WARN,
                f"'{app.username}' at host(s) {_listed(foreign_secondary)} keeps a secondary password that is "
                "neither AWSCURRENT's nor AWSPREVIOUS's: someone else's. The next rotation replaces it with "
                "AWSCURRENT's",
                "if someone uses that password, give them the secret instead",
            )
        )
    elif held and all(found.primary == CURRENT for found in held):
        add(Finding("db.passwords", Level.OK, f"AWSCURRENT's password is the primary of '{app.username}'"))


def _listed(hosts: list[str]) -> str:
    return ", ".join(f"'{host}'" for host in hosts)


def _create_user(admin: object, held: bool, needed_for: str) -> Finding:
    if held:
        return Finding("admin.create-user", Level.OK, f"admin {admin} holds CREATE USER (to {needed_for})")
    return Finding(
        "admin.create-user",
        Level.FAIL,
        f"admin {admin} lacks CREATE USER: it cannot {needed_for}",
        f"GRANT CREATE USER ON *.* TO {admin}",
    )


def _add_window(app: DatabaseSecret, dual: DualPasswords | None, add: Callable[[Finding], None]) -> None:
    window = single_user_window(app, dual)
    if window is not None:
        add(window)


def _stuck_rotation(details: SecretDescription, stuck: PendingVersion) -> Finding:
    """A stale pending version, and which step the labels say it stopped at."""
    message = f"stuck rotation: {stuck.describe()}; RotateSecret will refuse to start another"
    if details.has_stage(stuck.version_id, TESTED):
        return Finding(
            "rotation.state",
            Level.FAIL,
            f"{message}. It passed testSecret (ROTATOR_TESTED) but finishSecret never promoted it",
            f"read why finishSecret failed (the function's logs), then finish it from the VPC: rotator rotate "
            f"{details.name} --local --token {stuck.version_id}; or clear it: rotator fix {details.name}",
        )
    return Finding(
        "rotation.state",
        Level.FAIL,
        f"{message}. It never passed testSecret: createSecret, setSecret or testSecret failed",
        f"find why it failed (the function's logs), then: rotator fix {details.name}",
    )


def _copy_findings(lacking: Shortfall, add: Callable[[Finding], None]) -> None:
    """What setSecret's pre-flight refuses besides missing grants: what cannot be copied
    at all, proxy grants, and twins protected by SYSTEM_USER."""
    if lacking.uncopyable:
        add(
            Finding(
                "app.copy",
                Level.FAIL,
                lacking.copy_problem(),
                "rotate this account with single-user rotation (it keeps its own plugin and settings)",
            )
        )
    else:
        add(Finding("app.copy", Level.OK, f"everything '{lacking.user}' holds can be copied to a twin on this server"))
    if lacking.proxies:
        first = lacking.proxies[0]
        add(
            Finding(
                "admin.proxy",
                Level.FAIL,
                lacking.proxies_problem(),
                f"GRANT PROXY ON '{first.user}'@'{first.host}' TO {lacking.admin} WITH GRANT OPTION",
            )
        )
    elif lacking.wanted_proxies:
        add(
            Finding(
                "admin.proxy", Level.OK, f"admin {lacking.admin} can grant the {lacking.wanted_proxies} proxy grant(s)"
            )
        )
    if lacking.protected:
        add(
            Finding(
                "admin.system-user",
                Level.FAIL,
                lacking.protected_problem(),
                f"GRANT SYSTEM_USER ON *.* TO {lacking.admin}, or drop the twin if nobody uses it",
            )
        )


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
    if isinstance(exc, AccountStateError):
        return Finding(check, Level.FAIL, exc.problem)  # the message says what to do
    if isinstance(exc, DatabaseAuthError):
        return Finding(check, Level.FAIL, exc.problem, "the secret's username and password must log in")
    return Finding(check, Level.FAIL, exc.problem)


# -- the scheduled check --------------------------------------------------------------

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


def same_secret(asked: str, arn: str) -> bool:
    """Whether ``arn`` (DescribeSecret's answer) is the secret asked for: any name, or an ARN
    that is ``arn`` itself or ``arn`` without its six-character suffix."""
    if not asked.startswith("arn:"):
        return True
    return arn == asked or (arn.startswith(asked + "-") and len(arn) == len(asked) + 7)


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
