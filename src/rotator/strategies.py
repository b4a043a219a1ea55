"""How the database is changed: one small object per rotation strategy.

:class:`rotator.rotation.Rotation` decides *whether* a step has work to do (the
labels, the pending value); a strategy decides *what* setSecret and testSecret do
for one kind of secret:

- :class:`AlternatingUsers` (the secret names an admin secret in ``masterarn``):
  the admin keeps a twin user (``app`` <-> ``app_clone``) identical to the current
  one, and each rotation moves the application to the other user, so the previous
  credentials keep working until the next rotation.
- :class:`SingleUser` (no ``masterarn``): the user changes its own password.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Protocol

from aws_lambda_powertools import Logger

from rotator.errors import (
    AdminPrivilegeError,
    DatabaseAuthError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
    UnsupportedDatabaseError,
)
from rotator.grants import shortfall
from rotator.ports import PREVIOUS, TESTED, AdminSession, Database, SecretDescription, SecretStore, ServerInfo
from rotator.secret import DatabaseSecret
from rotator.targets import check_accounts, check_names
from rotator.verification import check_readable, verify_copy

logger = Logger(child=True)

# How often testSecret tries the pending login against a replica before failing:
# an Aurora reader sees a user change made on the writer after a short lag.
REPLICA_LOGIN_ATTEMPTS = 5


class Strategy(Protocol):
    def pending_username(self, current: DatabaseSecret) -> str:
        """The user name createSecret writes into the pending version."""
        ...

    def before_create(self, current: DatabaseSecret) -> None:
        """Refuse, before anything is written, a secret this strategy cannot rotate."""
        ...

    def set(self, description: SecretDescription, current: DatabaseSecret, pending: DatabaseSecret) -> str: ...

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> str: ...


def strategy_for(current: DatabaseSecret, store: SecretStore, database: Database) -> Strategy:
    if current.masterarn:
        return AlternatingUsers(database, AdminAccess(store, database, current.masterarn))
    return SingleUser(store, database)


class AdminAccess:
    """The admin secret named by an application secret's ``masterarn``, and sessions as that admin."""

    def __init__(self, store: SecretStore, database: Database, masterarn: str) -> None:
        self._store = store
        self._database = database
        self.masterarn = masterarn

    def secret(self, app: DatabaseSecret, *, refresh: bool = False) -> DatabaseSecret:
        try:
            value = self._store.get_admin(self.masterarn, refresh=refresh)
        except SecretStoreError as exc:
            raise exc.about(app.secret_id, f"admin secret {self.masterarn}") from exc
        try:
            return DatabaseSecret.parse(self.masterarn, value, require_host=False)
        except SecretFormatError as exc:
            raise SecretFormatError(app.secret_id, f"admin secret {self.masterarn}: {exc.problem}") from None

    @contextmanager
    def session(self, app: DatabaseSecret) -> Iterator[AdminSession]:
        """A session as the admin. The admin secret may be cached: when its login is
        refused, it is read again and, if it changed meanwhile, the login retried once."""
        admin = self.secret(app)
        with ExitStack() as stack:
            try:
                session = stack.enter_context(self._database.admin(admin, app))
            except DatabaseAuthError:
                fresh = self.secret(app, refresh=True)
                if (fresh.username, fresh.password) == (admin.username, admin.password):
                    raise
                logger.info("admin credentials changed since they were cached; logging in with the new ones")
                session = stack.enter_context(self._database.admin(fresh, app))
            yield session


class AlternatingUsers:
    def __init__(self, database: Database, admin: AdminAccess) -> None:
        self._database = database
        self._admin = admin

    def pending_username(self, current: DatabaseSecret) -> str:
        return current.twin_username

    def before_create(self, current: DatabaseSecret) -> None:
        # A masterarn pointing nowhere, or a twin that is the admin, fails here, before anything is written.
        check_names(current, current.twin_username, self._admin.secret(current))

    def set(self, description: SecretDescription, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        app_server = self._database.check_login(current)  # the current user must still work
        with self._admin.session(current) as session:
            ensure_same_server(current, app_server, session.server)
            self._preflight(session, current, pending.username)
            report = session.sync_twin(current.username, pending.username, pending.password)
        details = {
            "username": pending.username,
            "hosts": list(report.hosts),
            "users_created": report.created,
            "users_dropped": report.dropped,
            "statements": report.statements,
        }
        if report.changed_existing_twin and description.version_with(TESTED) is None:
            # No version of this secret has passed a rotator test: the twin was made by
            # someone else, and its own privileges and hosts are now gone.
            logger.warning("took over an existing twin user that differed from the current user", extra=details)
            return "twin-taken-over"
        logger.info("twin user matches current user", extra=details)
        return "twin-synced"

    def _preflight(self, session: AdminSession, current: DatabaseSecret, twin: str) -> None:
        """Everything that would refuse the sync, asked before its first change."""
        hosts = session.account_hosts(current.username)
        # What testSecret will read: refused now (before any change) if it cannot be read.
        check_readable(session, current.secret_id, current.username, hosts)
        expired = check_accounts(session, current, twin, hosts)
        lacking = shortfall(session, current.username, hosts, twin)
        if lacking.uncopyable:
            raise UnsupportedDatabaseError(current.secret_id, f"{lacking.describe()}; nothing was changed")
        if not lacking.ok:
            raise AdminPrivilegeError(current.secret_id, f"{lacking.describe()}; nothing was changed")
        if expired:
            logger.warning(
                "the twin's password has expired; setting the pending password clears the expiry",
                extra={"accounts": [str(account) for account in expired]},
            )

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        with self._admin.session(current) as session:
            # Not the profile setSecret synced from (a blind spot of the sync would be one
            # of the check): the server's own SHOW CREATE USER / SHOW GRANTS, compared.
            verify_copy(session, current.secret_id, current.username, pending.username)
        admin = self._admin.secret(current)
        on_replica = bool(admin.host) and (admin.host, admin.port) != (current.host, current.port)
        self._database.check_login(pending, attempts=REPLICA_LOGIN_ATTEMPTS if on_replica else 1)
        logger.info("pending credentials log in and privileges match", extra={"username": pending.username})
        return "twin-verified"


class SingleUser:
    def __init__(self, store: SecretStore, database: Database) -> None:
        self._store = store
        self._database = database

    def pending_username(self, current: DatabaseSecret) -> str:
        return current.username

    def before_create(self, current: DatabaseSecret) -> None:
        return None

    def set(self, description: SecretDescription, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        # The current password first: on a first attempt it is the one that works,
        # so a normal rotation makes no refused login (which servers count towards
        # lock-outs such as FAILED_LOGIN_ATTEMPTS / max_password_errors). Then the
        # pending one (a retry after this step changed the password), then the
        # previous version's (AWSCURRENT was changed without the database).
        with self._database.own_account(self._candidates(description, current, pending)) as own:
            if own.login is pending:
                logger.info("pending password already works")
                return "password-already-set"
            own.change_password(pending.password)
        logger.info("changed own password", extra={"username": current.username})
        return "password-changed"

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        self._database.check_login(pending)
        logger.info("pending credentials log in")
        return "login-ok"

    def _candidates(
        self, description: SecretDescription, current: DatabaseSecret, pending: DatabaseSecret
    ) -> Iterator[DatabaseSecret]:
        yield current
        yield pending
        # Read only when both were refused: a normal rotation never pays for it.
        previous_version = description.version_with(PREVIOUS)
        value = self._store.get_version(description.arn, previous_version, PREVIOUS) if previous_version else None
        if value is not None:
            previous = DatabaseSecret.parse(description.arn, value)
            if previous.username == current.username:
                logger.info("current and pending passwords refused; trying the previous version's")
                yield previous


def ensure_same_server(app: DatabaseSecret, app_server: ServerInfo, admin_server: ServerInfo) -> None:
    """The admin must change users on the server the application uses (or, for
    a read replica, on its writer); never create the twin somewhere else."""
    if admin_server.identity == app_server.identity or app_server.read_only:
        return
    raise SecretMismatchError(
        app.secret_id,
        f"admin secret {app.masterarn} reaches a different server ({admin_server.identity[0]}) "
        f"than the application's host {app.host}",
    )
