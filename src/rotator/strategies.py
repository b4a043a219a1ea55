"""How the database is changed: one small object per rotation strategy.

:class:`rotator.rotation.Rotation` decides *whether* a step has work to do (the
labels, the pending value); a strategy decides *what* setSecret and testSecret do
for one kind of secret:

- :class:`AlternatingUsers` (the secret names an admin secret in ``masterarn``):
  the admin keeps a twin user (``app`` <-> ``app_clone``) identical to the current
  one, and each rotation moves the application to the other user, so the previous
  credentials keep working until the next rotation.
- :class:`SingleUser` (no ``masterarn``): the user changes its own password.
- :class:`SameUserByAdmin` (``masterarn`` and ``"rotation_strategy": "single-user"``):
  the admin changes the user's password; the user name never changes (RDS Proxy).

Both single-user strategies keep the old password working as the secondary one where
the server has dual passwords (MySQL 8.0.14+ ``RETAIN CURRENT PASSWORD``), so that,
as with alternating users, AWSCURRENT and AWSPREVIOUS both log in after a rotation
and no login is refused in between. Elsewhere the old password stops working at
setSecret: the single-user window (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Protocol

from aws_lambda_powertools import Logger

from rotator.admin_host import ConfirmedAdmin, confirm_admin_host
from rotator.dialects import dialect_for
from rotator.errors import (
    AdminPrivilegeError,
    DatabaseAuthError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
    UnsupportedDatabaseError,
)
from rotator.grants import shortfall
from rotator.ports import (
    PREVIOUS,
    TESTED,
    AdminSession,
    Database,
    DualPasswords,
    SecretDescription,
    SecretStore,
    ServerInfo,
)
from rotator.secret import DatabaseSecret
from rotator.settings import ConfiguredHost
from rotator.targets import check_accounts, check_names
from rotator.verification import check_readable, verify_copy

logger = Logger(child=True)

# How often testSecret tries the pending login against a replica before failing:
# an Aurora reader sees a user change made on the writer after a short lag.
REPLICA_LOGIN_ATTEMPTS = 5
_NO_HOSTS: Mapping[str, ConfiguredHost] = {}


class Strategy(Protocol):
    def pending_username(self, current: DatabaseSecret) -> str:
        """The user name createSecret writes into the pending version."""
        ...

    def before_create(self, current: DatabaseSecret) -> None:
        """Refuse, before anything is written, a secret this strategy cannot rotate."""
        ...

    def set(self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        """Make the database accept ``pending`` (the secret version ``token``); the outcome."""
        ...

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> str: ...


def strategy_for(
    current: DatabaseSecret,
    store: SecretStore,
    database: Database,
    admin_hosts: Mapping[str, ConfiguredHost] = _NO_HOSTS,
) -> Strategy:
    if not current.masterarn:
        return SingleUser(store, database)
    admin = AdminAccess(store, database, current.masterarn, admin_hosts)
    return AlternatingUsers(database, admin) if current.alternates else SameUserByAdmin(database, admin)


class AdminAccess:
    """The admin secret named by an application secret's ``masterarn``, and sessions as that admin."""

    def __init__(
        self,
        store: SecretStore,
        database: Database,
        masterarn: str,
        admin_hosts: Mapping[str, ConfiguredHost] = _NO_HOSTS,
    ) -> None:
        self._store = store
        self._database = database
        self.masterarn = masterarn
        self._admin_hosts = admin_hosts

    def secret(self, app: DatabaseSecret, *, refresh: bool = False) -> DatabaseSecret:
        """The admin secret with the host its login may go to (rotator.admin_host)."""
        return self.confirm(app, self.read(app, refresh=refresh)).secret

    def read(self, app: DatabaseSecret, *, refresh: bool = False) -> DatabaseSecret:
        """The admin secret as stored (an RDS-managed one has no host)."""
        try:
            value = self._store.get_admin(self.masterarn, refresh=refresh)
        except SecretStoreError as exc:
            raise exc.about(app.secret_id, f"admin secret {self.masterarn}") from exc
        try:
            return DatabaseSecret.parse(self.masterarn, value, require_host=False)
        except SecretFormatError as exc:
            raise SecretFormatError(app.secret_id, f"admin secret {self.masterarn}: {exc.problem}") from None

    def confirm(self, app: DatabaseSecret, admin: DatabaseSecret) -> ConfirmedAdmin:
        """AdminHostError unless the admin's host is its own or one an operator (or RDS's tag) confirmed."""

        def tags() -> Mapping[str, str]:
            try:
                return self._store.admin_tags(self.masterarn)
            except SecretStoreError as exc:
                raise exc.about(app.secret_id, f"admin secret {self.masterarn} (its tags)") from exc

        return confirm_admin_host(app, admin, self._admin_hosts, tags)

    def elsewhere(self, app: DatabaseSecret) -> bool:
        """Whether the admin logs in to another endpoint than the application (a replica's
        writer, or a mistake): the application's host is then asked which server it is."""
        admin = self.secret(app)
        return bool(admin.host) and (admin.host, admin.port) != (app.host, app.port)

    def login_attempts(self, app: DatabaseSecret) -> int:
        """Pending logins to try: on a replica a user change made on the writer arrives late."""
        return REPLICA_LOGIN_ATTEMPTS if self.elsewhere(app) else 1

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

    def set(self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret) -> str:
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
        self._database.check_login(pending, attempts=self._admin.login_attempts(current))
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

    def set(self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        # The current password first: on a first attempt it is the one that works,
        # so a normal rotation makes no refused login (which servers count towards
        # lock-outs such as FAILED_LOGIN_ATTEMPTS / max_password_errors). Then the
        # pending one (a retry after this step changed the password), then the
        # previous version's (AWSCURRENT was changed without the database).
        with self._database.own_account(self._candidates(description, current, pending)) as own:
            if own.login is pending:
                logger.info("pending password already works")
                return "password-already-set"
            dual = own.dual_passwords()
            warn_without_dual_passwords(dual, current)
            if own.change_password(pending.password, retain_current=dual.available):
                logger.info(
                    "changed own password",
                    extra={"username": current.username, "retained_current": dual.available},
                )
                return password_outcome(dual, "password-changed")
        # The login's password was refused as "not the primary one": it is the secondary
        # an earlier attempt of this step kept, having made the pending password primary.
        self._database.check_login(pending)
        logger.info("pending password already set by an earlier attempt; the current one kept as secondary")
        return "password-already-set"

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        with self._database.own_account((pending,)) as own:
            dual = own.dual_passwords()
        logger.info("pending credentials log in")
        return current_still_works(self._database, current) if dual.available else "login-ok"

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


class SameUserByAdmin:
    """One user name for good (RDS Proxy, or an account that may not change its own
    password): the admin sets the new password, keeping the old one as the secondary
    where the server has dual passwords."""

    def __init__(self, database: Database, admin: AdminAccess) -> None:
        self._database = database
        self._admin = admin

    def pending_username(self, current: DatabaseSecret) -> str:
        return current.username

    def before_create(self, current: DatabaseSecret) -> None:
        check_names(current, None, self._admin.secret(current))

    def set(self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        app_server = self._app_server(current, pending)
        with self._admin.session(current) as session:
            if app_server is not None:
                ensure_same_server(current, app_server, session.server)
            hosts = session.account_hosts(current.username)
            if not hosts:
                raise SecretMismatchError(current.secret_id, f"user '{current.username}' has no account on this server")
            check_accounts(session, current, None, hosts)
            dual = session.dual_passwords()
            warn_without_dual_passwords(dual, current)
            report = session.set_password(
                current.username, pending.password, version=token, retain_current=dual.available
            )
        details = {
            "username": current.username,
            "hosts": list(report.hosts),
            "changed": report.changed,
            "already_set": report.already_set,
            "retained_current": report.retained_current,
        }
        if report.changed == 0:
            logger.info("pending password already set by an earlier attempt", extra=details)
            return "password-already-set"
        logger.info("admin set the user's password", extra=details)
        return password_outcome(dual, "password-set")

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        server = self._database.check_login(pending, attempts=self._admin.login_attempts(current))
        logger.info("pending credentials log in", extra={"username": pending.username})
        dual = dialect_for(server, current.secret_id).admin_dual_passwords()
        return current_still_works(self._database, current) if dual.available else "login-ok"

    def _app_server(self, current: DatabaseSecret, pending: DatabaseSecret) -> ServerInfo | None:
        """Which server the application uses, when the admin secret names another
        endpoint (a user of the same name elsewhere must never be changed)."""
        if not self._admin.elsewhere(current):
            return None
        with self._database.own_account((current, pending)) as own:
            return own.server


def warn_without_dual_passwords(dual: DualPasswords, current: DatabaseSecret) -> None:
    if dual.server_has_them and not dual.available:
        logger.warning(
            "single-user rotation without dual passwords: logins with the old password fail "
            "from this change until clients read the new AWSCURRENT",
            extra={"username": current.username, "reason": dual.reason},
        )


def password_outcome(dual: DualPasswords, changed: str) -> str:
    """``changed``, suffixed with how: the handler counts ``...-without-dual`` as DualPasswordFallback."""
    if dual.available:
        return f"{changed}-retaining-current"
    return f"{changed}-without-dual" if dual.server_has_them else changed


def current_still_works(database: Database, current: DatabaseSecret) -> str:
    """With dual passwords, AWSCURRENT's password should still log in (as the secondary)
    until the next rotation. If it does not, the rotation still goes on: the database
    already has the pending password, and only finishSecret gives it to the clients."""
    try:
        database.check_login(current)
    except DatabaseAuthError as refused:
        logger.warning(
            "the current password no longer logs in although the server keeps secondary passwords; "
            "clients using it fail until finishSecret",
            extra={"username": current.username, "problem": refused.problem},
        )
        return "login-ok-current-refused"
    logger.info("current credentials still log in (secondary password)")
    return "login-ok-both"


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
