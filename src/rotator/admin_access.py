"""The admin secret an application secret names (``masterarn``), and sessions as that admin.

Used by the strategies that have an admin (rotator.strategies), by ``rotator fix``
(rotator.repair) and by the readiness checks, which ask the same questions read-only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager

from aws_lambda_powertools import Logger

from rotator.admin_host import ConfirmedAdmin, confirm_admin_host
from rotator.errors import DatabaseAuthError, SecretFormatError, SecretMismatchError, SecretStoreError
from rotator.ports import AdminSession, Database, SecretStore, ServerInfo
from rotator.secret import DatabaseSecret
from rotator.settings import ConfiguredHost

logger = Logger(child=True)

# How often testSecret tries the pending login against a replica before failing:
# an Aurora reader sees a user change made on the writer after a short lag.
REPLICA_LOGIN_ATTEMPTS = 5
_NO_HOSTS: Mapping[str, ConfiguredHost] = {}


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
            # An admin secret that names no engine takes the application's defaults (a
            # PostgreSQL master's secret without "port" means 5432, not MySQL's 3306).
            return DatabaseSecret.parse(self.masterarn, value, require_host=False, family_of=app.engine)
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
