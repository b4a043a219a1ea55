"""The PostgreSQL backend as the core sees it: the :class:`~rotator.ports.Database` port
and its sessions over the engine calls of :mod:`.admin`.

The ports speak of accounts at hosts (MySQL's ``user@host``). A PostgreSQL role has no
host: it is one account, named here at the host :data:`HOST` (``*``, "from anywhere
pg_hba allows"), so the core's per-host loops run once. The rest of the answers are
PostgreSQL's own, honestly worded:

- no dual passwords (one password per role): ``server_has_them=False`` with the reason;
  single-user rotation has its window (docs/postgresql.md, "Single user");
- no failed-login limit (``login_limit``: none) and no readable stored hashes for the
  admin (Aurora's master user reads ``pg_roles``, never ``pg_authid``):
  ``passwords_held`` answers ``known=False``;
- ``read_profile`` answers only what the core's account rules ask of a profile: whether
  the role can create and change roles (CREATEROLE or SUPERUSER, shown as the
  ``CREATE USER`` privilege the rules look for). What a copy needs and the admin cannot
  give is the catalogue's own shortfall (:func:`.catalogue.shortfall`), reported through
  ``copy_problems``; the copy itself and its comparison stay inside the backend;
- ``account_definition``: testSecret's independent reading (:mod:`.verification`) with
  the role's name as ``<account>``, compared by the core (:mod:`rotator.comparison`).
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager

from rotator.accounts import Account, AccountProfile, AccountState, Privilege
from rotator.backends.common import first_accepted
from rotator.backends.postgresql import catalogue, verification
from rotator.backends.postgresql.admin import (
    MAX_NAME_BYTES,
    OwnAccount,
    PgAdmin,
    admin_session,
    partner,
)
from rotator.backends.postgresql.admin import (
    own_account as own_session,
)
from rotator.backends.postgresql.catalogue import RoleProfile
from rotator.backends.postgresql.connection import PostgreSQLDatabase
from rotator.comparison import ACCOUNT, AccountDefinition
from rotator.errors import AccountStateError, DatabaseAuthError
from rotator.ports import (
    Adoption,
    DualPasswords,
    HeldPasswords,
    LoginLimit,
    Ownership,
    PasswordReport,
    ServerInfo,
    SyncReport,
)
from rotator.secret import DatabaseSecret
from rotator.settings import Settings

HOST = "*"  # a role's one "account": PostgreSQL has no per-host accounts
# What the core's rules look for in an account that can create and change accounts.
MANAGES_ROLES = Privilege("CREATE USER")
NO_DUAL_PASSWORDS = DualPasswords(
    server_has_them=False,
    available=False,
    reason="PostgreSQL keeps one password per role: the old one stops working at the change",
)


class RoleAccount(AccountProfile):
    """A role's profile as the core's account rules read it, carrying the catalogue reading
    it came from (for ``copy_problems``: what the admin could not give a twin)."""

    role: RoleProfile | None = None


class PgAdminSession:
    """The AdminSession port on PostgreSQL: the admin's sessions (:class:`.admin.PgAdmin`)."""

    def __init__(self, admin: PgAdmin) -> None:
        self._admin = admin
        self.server: ServerInfo = admin.server
        self._exists: dict[str, bool] = {}
        self._definitions: dict[str, AccountDefinition] = {}

    # -- the catalogue ---------------------------------------------------------------------

    def _profile(self, role: str) -> RoleProfile | None:
        return self._admin.read_profile(role)  # read with its partner, kept until a change

    def current_account(self) -> Account:
        return Account(self._admin.user, HOST)

    def account_hosts(self, user: str) -> list[str]:
        """One small query for the user and its partner (testSecret asks about both and
        reads nothing else of the copy's catalogue), kept until this session changes a role."""
        if user not in self._exists:
            roles = sorted({user, partner(user)} - {""})
            found = catalogue.existing_roles(self._admin.home, roles)
            self._exists.update({role: role in found for role in roles})
        return [HOST] if self._exists[user] else []

    def read_profile(self, account: Account) -> AccountProfile:
        if account.user == self._admin.user:
            # The core asks what the admin may do: whether it can create and change roles
            # (its attributes come with any reading of the roles; the admin's own grants
            # are not read, nor its databases visited).
            rights = self._admin.rights()
            manages = rights.superuser or rights.createrole
            return RoleAccount(privileges=frozenset({MANAGES_ROLES}) if manages else frozenset())
        role = self._profile(account.user)
        if role is None:
            return RoleAccount()
        manages = role.attributes.superuser or role.attributes.createrole
        # The whole role as the copy reads it, compared by the core's one comparison
        # (``rotator check``'s twin.state/twin.drift); the core's account rules look at
        # ``privileges`` only.
        definition = catalogue.describe(role, (account.user, partner(account.user)), ACCOUNT)
        profile = RoleAccount(privileges=frozenset({MANAGES_ROLES}) if manages else frozenset(), definition=definition)
        profile.role = role
        return profile

    def role_privileges(self, role: Account) -> set[Privilege]:
        return set(self.read_profile(role).privileges)

    def max_username_length(self) -> int:
        return MAX_NAME_BYTES

    def is_role(self, name: str) -> bool:
        """A role that may not log in (NOLOGIN): a group role, not an account."""
        role = self._profile(name)
        return role is not None and not role.attributes.login

    def account_state(self, account: Account) -> AccountState:
        """No lock on PostgreSQL (NOLOGIN is ``is_role``); VALID UNTIL in the past is an
        expired password (the next password change with the copy sets it again)."""
        role = self._profile(account.user)
        if role is None or role.attributes.valid_until == "infinity":
            return AccountState()
        until = datetime.datetime.fromisoformat(role.attributes.valid_until)
        return AccountState(password_expired=until <= datetime.datetime.now(datetime.UTC))

    def copy_problems(self, profile: AccountProfile) -> list[str]:
        role = profile.role if isinstance(profile, RoleAccount) else None
        return [missing.problem for missing in self._admin.shortfall(role)] if role is not None else []

    def copy_advice(self, profile: AccountProfile) -> str:
        role = profile.role if isinstance(profile, RoleAccount) else None
        return catalogue.advice(self._admin.user, self._admin.shortfall(role)) if role is not None else ""

    def dual_passwords(self) -> DualPasswords:
        return NO_DUAL_PASSWORDS

    def passwords_held(self, user: str, candidates: dict[str, str]) -> list[HeldPasswords]:
        # The verifiers are in pg_authid, which Aurora's master user cannot read.
        return [HeldPasswords(HOST, known=False, primary=None, secondary=None, has_secondary=False)]

    def login_limit(self, account: Account) -> LoginLimit:
        return LoginLimit()  # PostgreSQL locks no role after failed logins

    def account_definition(self, user: str, host: str) -> AccountDefinition:
        """testSecret's reading of ``user``. It scans every catalogue with an ACL in every
        database whatever the number of roles, so the user and its twin (``name`` <->
        ``name_clone``) are read in one pass and kept until this session changes a role:
        testSecret's comparison of the pair costs one pass, not two."""
        if user not in self._definitions:
            roles = tuple(sorted({user, partner(user)} - {""}))
            for role, found in verification.read_definitions(self._admin.session, roles).items():
                lines = tuple(sorted(line.replace(verification.ROLE, ACCOUNT) for line in found.lines))
                self._definitions[role] = AccountDefinition(lines)
        return self._definitions[user]

    # -- changes -----------------------------------------------------------------------------

    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport:
        # The copy starts from what the pre-flight read in this session (nothing has
        # changed since); the readings are dropped once it changes anything.
        try:
            return self._admin.sync_twin(source_user, twin_user, password)
        finally:
            self._forget()

    def _forget(self) -> None:
        """What was read before a change is not what the catalogue says after it."""
        self._admin.forget()
        self._exists.clear()
        self._definitions.clear()

    def set_password(
        self, user: str, password: str, *, version: str, retain_current: bool, keep: str | None = None
    ) -> PasswordReport:
        """One password per role: set it (no secondary to keep, nothing to mark)."""
        self._admin.set_password(user, password)
        return PasswordReport((HOST,), changed=1, already_set=0, retained_current=False)

    # -- ownership (rotator check, rotator adopt) ----------------------------------------------

    def ownership(self, user: str, twin: str | None) -> Ownership:
        state = self._admin.ownership(user, twin)
        return Ownership(state.owner_role, tuple(sorted(state.owned_by_logins.items())))

    def adopt(self, user: str, twin: str | None, *, apply: bool) -> Adoption:
        """The owner role is the user's ``role`` setting when it has one, else
        ``<user>_owner`` (the twin's base name: ``app_clone`` -> ``app_owner``)."""
        owner = self._admin.ownership(user, twin).owner_role or f"{owner_base(user, twin)}_owner"
        self._forget()
        report = self._admin.adopt(user, owner, twin, dry_run=not apply)
        return Adoption(owner, report.plan, report.applied)


def owner_base(user: str, twin: str | None) -> str:
    """The shorter of the pair's names (``app`` of ``app`` / ``app_clone``)."""
    return min((name for name in (user, twin) if name), key=len)


class PgOwnAccount:
    """The OwnAccountSession port on PostgreSQL: a user logged in as itself."""

    def __init__(self, own: OwnAccount) -> None:
        self._own = own
        self.login: DatabaseSecret = own.login
        self.server: ServerInfo = own.server

    def dual_passwords(self) -> DualPasswords:
        return NO_DUAL_PASSWORDS

    def admin_dual_passwords(self) -> DualPasswords:
        return NO_DUAL_PASSWORDS

    def change_password(self, new_password: str, *, retain_current: bool = False) -> bool:
        self._own.change_password(new_password)
        return True  # the login's password is the role's only one

    def replace_primary(self, new_password: str) -> None:
        self._own.change_password(new_password)

    def login_limit(self) -> LoginLimit:
        return LoginLimit()


class PostgreSQLBackend:
    """The Database port on PostgreSQL (one per warm container: it keeps the TLS contexts)."""

    def __init__(self, settings: Settings) -> None:
        self._database = PostgreSQLDatabase(settings)
        self.stats = self._database.stats

    def supports(self, secret: DatabaseSecret) -> None:
        return None

    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo:
        """Log in with ``secret`` and say which server answered; ``attempts`` > 1 retries a
        refusal (a replica that has not replayed the change yet)."""
        for attempt in range(1, attempts):
            try:
                return self._login(secret)
            except AccountStateError:
                raise
            except DatabaseAuthError:
                time.sleep(min(0.25 * 2**attempt, 2.0))
        return self._login(secret)

    def _login(self, secret: DatabaseSecret) -> ServerInfo:
        with self._session(secret) as own:
            return own.server

    def _session(self, login: DatabaseSecret) -> AbstractContextManager[OwnAccount]:
        return own_session(self._database, login)

    @contextmanager
    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[PgAdminSession]:
        with admin_session(self._database, admin, app) as session:
            yield PgAdminSession(session)

    @contextmanager
    def own_account(self, candidates: Iterable[DatabaseSecret]) -> Iterator[PgOwnAccount]:
        """A session as the first candidate the server accepts, tried in order
        (:func:`rotator.backends.common.first_accepted`)."""
        with first_accepted(candidates, self._session) as own:
            yield PgOwnAccount(own)
