"""The engine calls a rotation makes on PostgreSQL, as the admin (Aurora's master user) or
as the user itself: the twin's exact copy (alternating users), a password change
(single user, and the admin-driven same-user change for RDS Proxy), testSecret's
independent check, and the owner-role adoption with its dry run.

Roles, memberships, settings and database grants are shared by every database of the
server; object grants are per database, so the admin holds one session per database it
reads or changes (opened when first needed, all closed together): its own database
(the secret's ``dbname``) always, another one only where pg_shdepend says the roles hold
something. What a step reads of the roles it reads once (:class:`.catalogue.Reading`),
until it changes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from typing import NamedTuple

from rotator.backends.postgresql import catalogue, operations, verification
from rotator.backends.postgresql.catalogue import Missing, Reading, RoleProfile
from rotator.backends.postgresql.connection import PostgreSQLDatabase, Session
from rotator.backends.postgresql.operations import Planned
from rotator.backends.postgresql.sql import Statement, ident
from rotator.errors import (
    AdminPrivilegeError,
    DatabaseError,
    SecretMismatchError,
    UnsupportedDatabaseError,
)
from rotator.ports import SyncReport
from rotator.secret import TWIN_SUFFIX, DatabaseSecret

# PostgreSQL's NAMEDATALEN - 1: longer names are truncated by the server, silently.
MAX_NAME_BYTES = 63
DEFAULT_DATABASE = "postgres"


class AdoptionReport(NamedTuple):
    plan: tuple[str, ...]  # the statements, as a dry run prints them
    applied: bool


class OwnershipState(NamedTuple):
    """What ``rotator check`` reports about the owner-role design for one user."""

    owner_role: str | None  # from the user's ``role`` setting; None: ownership not shared
    owned_by_logins: dict[str, int]  # login role -> objects it owns itself (adoption moves them)

    @property
    def needs_adoption(self) -> bool:
        return self.owner_role is None or any(self.owned_by_logins.values())


class PgAdmin:
    """The admin's sessions on one server (the AdminSession port's PostgreSQL side)."""

    def __init__(
        self,
        database: PostgreSQLDatabase,
        admin: DatabaseSecret,
        *,
        host: str,
        port: int,
        dbname: str | None,
        secret_id: str,
    ) -> None:
        self._database = database
        self._admin = admin
        self._host, self._port = host, port
        self._home = dbname or admin.dbname or DEFAULT_DATABASE
        self.secret_id = secret_id
        self._stack = ExitStack()
        self._sessions: dict[str, Session] = {}
        self._readings: dict[str, Reading] = {}
        self.home = self.session(None)
        self.server = self.home.server
        self.features = self.home.features
        self.user = self.home.session_user

    def close(self) -> None:
        self._stack.close()
        self._sessions.clear()

    def session(self, database: str | None) -> Session:
        name = database or self._home
        if name not in self._sessions:
            self._sessions[name] = self._stack.enter_context(
                self._database.session(
                    self._admin,
                    host=self._host,
                    port=self._port,
                    database=name,
                    role=f"admin '{self._admin.username}' of {self._admin.secret_id}",
                    secret_id=self.secret_id,
                )
            )
        return self._sessions[name]

    # -- reading -----------------------------------------------------------------------------

    def read_profile(self, role: str) -> RoleProfile | None:
        """``role`` as the admin sees it, read together with its partner (``app`` <->
        ``app_clone``: a step asks about both) and kept until this session changes a role."""
        if role not in self._readings:
            roles = {role, partner(role)} - {""}
            reading = catalogue.read_roles(self.session, roles, self.user)
            self._readings.update(dict.fromkeys(roles, reading))
        return self._readings[role].profiles[role]

    def rights(self) -> catalogue.AdminRights:
        """The admin's own attributes, from any reading this session made (else one read)."""
        reading = next(iter(self._readings.values()), None) or catalogue.read_roles(self.session, (), self.user)
        return reading.rights or catalogue.AdminRights(False, False, False, False)

    def forget(self) -> None:
        """What was read before a change is not what the catalogue says after it."""
        self._readings.clear()

    def shortfall(self, profile: RoleProfile) -> list[Missing]:
        self.read_profile(profile.name)
        return catalogue.shortfall(self._readings[profile.name], profile, self.features)

    def ownership(self, user: str, twin: str | None = None) -> OwnershipState:
        profile = self.read_profile(user)
        if profile is None:
            raise SecretMismatchError(self.secret_id, f"role '{user}' does not exist on this server")
        logins = [user] + ([twin] if twin and self.read_profile(twin) is not None else [])
        owned = {}
        for login in logins:
            found = self.read_profile(login)
            owned[login] = sum(count for _, count in found.owned) if found else 0
        return OwnershipState(profile.owner_role, owned)

    # -- alternating users: the twin --------------------------------------------------------

    def preflight(self, source_user: str, twin_user: str) -> RoleProfile:
        """Read the user and refuse, before any change, what the admin cannot copy."""
        if len(twin_user.encode("utf-8")) > MAX_NAME_BYTES:
            raise UnsupportedDatabaseError(
                self.secret_id, f"role name '{twin_user}' is longer than PostgreSQL's {MAX_NAME_BYTES} bytes"
            )
        return self._copyable(source_user, f"'{twin_user}' everything '{source_user}' has")

    def _copyable(self, user: str, gift: str) -> RoleProfile:
        """``user``'s profile, refused before any change when the role does not exist or
        the admin cannot give all of it (``gift`` says to whom, for the error)."""
        profile = self.read_profile(user)
        if profile is None:
            raise SecretMismatchError(self.secret_id, f"role '{user}' does not exist on this server")
        missing = self.shortfall(profile)
        if missing:
            raise AdminPrivilegeError(
                self.secret_id,
                f"admin '{self.user}' cannot give {gift}; nothing was changed. "
                "Missing: " + "; ".join(m.problem for m in missing),
            )
        return profile

    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport:
        """Make ``twin_user`` exist with ``password`` and exactly what ``source_user`` has
        (attributes, memberships with options, settings, grants with grant options,
        default privileges), after the pre-flight. Shared changes in one transaction,
        then one transaction per database; a twin this call created is dropped again if
        a later step fails (its password is only in AWSPENDING: nobody uses it yet)."""
        source = self.preflight(source_user, twin_user)
        target = self.read_profile(twin_user)
        existed = target is not None
        home = self.home
        shared, local, creators = operations.copy_plan(source, target, twin_user, self.features)
        login = (operations.set_password if existed else operations.create_login)(twin_user, password)
        self.forget()
        try:
            if shared:
                with home.transaction():
                    home.execute(login)
                    for _, statement in shared:
                        home.execute(statement)
            else:
                home.execute(login)  # one statement: atomic without a transaction of its own
            executed = len(shared) + self._per_database(local, creators)
        except DatabaseError as exc:
            if existed:
                raise
            undone = self._drop_quietly(twin_user)
            raise type(exc)(
                exc.secret_id,
                f"{exc.problem}; {'dropped' if undone else 'could not drop'} role '{twin_user}' made by this attempt",
            ) from exc
        return SyncReport(("*",), int(existed), int(not existed), 0, executed)

    def _per_database(self, local: list[Planned], creators: set[str]) -> int:
        """Run per-database statements, each database in one transaction, the admin acting
        as ``creators`` (default privileges) through memberships granted and revoked
        inside it."""
        by_database: dict[str, list[Statement]] = {}
        for database, statement in local:
            by_database.setdefault(database or self._home, []).append(statement)
        executed = 0
        for database, statements in by_database.items():
            session = self.session(database)
            needs = [role for role in sorted(creators) if not self._member(role)]
            with session.transaction():
                for role in needs:
                    session.execute(operations.temporary_membership(role, self.user, self.features)[0])
                for statement in statements:
                    session.execute(statement)
                for role in needs:
                    session.execute(operations.temporary_membership(role, self.user, self.features)[1])
            executed += len(statements)
        return executed

    def _member(self, role: str) -> bool:
        return bool(
            self.home.scalar(
                "SELECT pg_has_role($1, $2, 'USAGE')", (self.user, role), f"is the admin acting as '{role}'"
            )
        )

    def _drop_quietly(self, role: str) -> bool:
        with suppress(DatabaseError):
            for database in catalogue.databases_of(self.home, role):
                self.session(database).execute(
                    Statement(f"DROP OWNED BY {ident(role)}", (), f"drop what '{role}' holds")
                )
            self.home.execute(Statement(f"DROP ROLE {ident(role)}", (), f"drop role '{role}'"))
            return True
        return False

    def verify_twin(self, source_user: str, twin_user: str) -> None:
        """testSecret: the twin must print like the user (rotator's second, independent
        reading of pg_catalog: :mod:`.verification`)."""
        verification.verify_copy(
            self.session, self.secret_id, source_user, twin_user, ignore_memberships=(source_user, twin_user)
        )

    # -- single user, set by the admin (RDS Proxy) ------------------------------------------

    def set_password(self, user: str, password: str) -> None:
        if not catalogue.role_exists(self.home, user):
            raise SecretMismatchError(self.secret_id, f"role '{user}' does not exist on this server")
        self.forget()
        self.home.execute(operations.set_password(user, password))

    # -- the owner role: set up, and adoption ----------------------------------------------

    def adoption_plan(self, user: str, owner: str, twin: str | None = None) -> list[Planned]:
        """The statements that bring ``user`` (and ``twin``) to the owner-role design; read
        only (the dry run)."""
        profile = self._copyable(user, f"owner role '{owner}' what '{user}' has")
        logins = [user] + ([twin] if twin and catalogue.role_exists(self.home, twin) else [])
        owned_in = {login: catalogue.owned_databases(self.home, [login]) for login in logins}
        admin_member_of = {
            role for role in (*logins, owner) if catalogue.role_exists(self.home, role) and self._member(role)
        }
        return operations.adoption_plan(
            admin=self.user,
            user=profile,
            logins=logins,
            owner=owner,
            owner_exists=catalogue.role_exists(self.home, owner),
            owned_in=owned_in,
            admin_member_of=admin_member_of,
            features=self.features,
        )

    def adopt(self, user: str, owner: str, twin: str | None = None, *, dry_run: bool = True) -> AdoptionReport:
        """The plan (dry run: nothing changes), or the plan applied in one transaction —
        all of it or nothing. The plan must touch one database besides the shared
        catalogues (the secret's ``dbname``): a transaction cannot span databases."""
        plan = self.adoption_plan(user, owner, twin)
        text = tuple(operations.render(plan))
        if dry_run:
            return AdoptionReport(text, False)
        databases = {database for database, _ in plan if database is not None}
        if len(databases) > 1:
            raise UnsupportedDatabaseError(
                self.secret_id,
                f"'{user}' owns or holds objects in {len(databases)} databases ({', '.join(sorted(databases))}): "
                "adoption runs in one transaction in one database; nothing was changed",
            )
        session = self.session(next(iter(databases), None))
        self.forget()
        with session.transaction():
            for _, statement in plan:
                session.execute(statement)
        return AdoptionReport(text, True)


def partner(role: str) -> str:
    """The other user of an alternating pair: ``app`` <-> ``app_clone``."""
    return role.removesuffix(TWIN_SUFFIX) if role.endswith(TWIN_SUFFIX) else role + TWIN_SUFFIX


@contextmanager
def admin_session(database: PostgreSQLDatabase, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[PgAdmin]:
    """The admin on the application's server: ``admin.host`` must be the host
    rotator.admin_host confirmed (as on MySQL, never the application secret's alone)."""
    host = admin.host or ""
    if not host:
        raise UnsupportedDatabaseError(app.secret_id, f"admin secret {admin.secret_id} has no confirmed host")
    session = PgAdmin(database, admin, host=host, port=admin.port, dbname=app.dbname, secret_id=app.secret_id)
    try:
        yield session
    finally:
        session.close()


class OwnAccount:
    """A user logged in as itself (single-user rotation, no admin)."""

    def __init__(self, session: Session, login: DatabaseSecret) -> None:
        self._session = session
        self.login = login
        self.server = session.server

    def change_password(self, new_password: str) -> None:
        """Replace this role's password (there is one: PostgreSQL has no dual passwords).
        Works from inside the owner role (operations.set_own_password)."""
        for statement in operations.set_own_password(new_password):
            self._session.execute(statement)


@contextmanager
def own_account(database: PostgreSQLDatabase, login: DatabaseSecret) -> Iterator[OwnAccount]:
    with database.session(
        login,
        host=login.host or "",
        port=login.port,
        database=login.dbname or DEFAULT_DATABASE,
        role=f"user '{login.username}'",
        secret_id=login.secret_id,
    ) as session:
        yield OwnAccount(session, login)
