"""A MySQL or MariaDB server in memory, and the :class:`rotator.ports.Database` port over it.

:class:`FakeServer` holds what the server knows: accounts (``user@host``) with their
primary and (MySQL) secondary passwords, plugin, locked and expired state, failed-login
counters and limits, privileges, roles and policies. :class:`FakeDatabase` logs in to it
as the MySQL backend (rotator.backends.mysql) does and answers with the same typed errors
(rotator.errors) in the same situations; tests/integration/contract proves it against
real MariaDB and MySQL servers.

What the server decides (does this password log in, may this account keep its current
password, is this account locked out now) is modelled here; what rotator decides (which
password to try, whether to keep the old one) is not: the core asks, as it asks a server.
Passwords are kept in the clear (it is a model); nothing here logs.

A server may also model ownership (:class:`FakeOwnership`, PostgreSQL's: an object is owned by
the role that created it, or by the owner role a login creates as): its admin sessions then
implement the engine-neutral :class:`rotator.ports.SharedOwnership` port
(:class:`FakeOwningAdminSession`), proven against the real PostgreSQL adapter by
tests/integration/contract/test_ownership_contract.py.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

from rotator.accounts import (
    GRANT_OPTION,
    PASSWORD_VERSION_ATTRIBUTE,
    Account,
    AccountPolicy,
    AccountProfile,
    AccountState,
    Privilege,
    RoleGrant,
    canonical_attributes,
    password_version,
    sync_operations,
)
from rotator.backends import MYSQL, backend_module
from rotator.backends.mysql.definitions import PrintedDefinition, definition
from rotator.backends.mysql.dialects.common import COPY_ADVICE
from rotator.comparison import AccountDefinition
from rotator.errors import (
    AccountLockedError,
    AccountReadError,
    AdminHostError,
    CurrentPasswordRequiredError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    PasswordExpiredError,
    SecretMismatchError,
    UnsupportedDatabaseError,
)
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
from tests.fakes.faults import FaultPlan

CLIENT_HOST = "127.0.0.1"  # where the function's connections come from
PASSWORD_PLUGINS = {
    "mysql": frozenset({"caching_sha2_password", "mysql_native_password", "sha256_password"}),
    "mariadb": frozenset({"mysql_native_password", "ed25519"}),
}
DEFAULT_PLUGIN = {"mysql": "caching_sha2_password", "mariadb": "mysql_native_password"}
MAX_USERNAME = {"mysql": 32, "mariadb": 128}
VERSIONS = {"mysql": (9, 7, 4), "mariadb": (10, 11, 19)}
# The static privileges ALL PRIVILEGES stands for (the catalogue lists each one).
ALL_STATIC = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "PROCESS", "REFERENCES", "INDEX",
    "ALTER", "SHOW DATABASES", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "REPLICATION SLAVE",
    "REPLICATION CLIENT", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER",
    "EVENT", "TRIGGER",
)  # fmt: skip
# Global privileges that let a MySQL user keep its own current password as the secondary.
KEEPS_OWN = frozenset({"APPLICATION_PASSWORD_ADMIN", "CREATE USER", "ALL PRIVILEGES"})


@dataclass
class FakeAccount:
    user: str
    host: str
    password: str | None  # the primary password; None: none (a role, a socket account)
    secondary: str | None = None  # MySQL's dual passwords: the retained one
    plugin: str = ""
    locked: bool = False  # ACCOUNT LOCK
    expired: bool = False  # PASSWORD EXPIRE
    is_role: bool = False
    profile: AccountProfile = field(default_factory=AccountProfile)
    failed: int = 0  # refused logins in a row
    blocked: bool = False  # locked out by the failed-login limit

    @property
    def key(self) -> Account:
        return Account(self.user, self.host)


@dataclass
class FakeOwnership:
    """Who owns what on a server where objects have owners (PostgreSQL): each login role
    creates as its owner role (its per-role ``role`` setting) or, without one, as itself."""

    creates_as: dict[str, str] = field(default_factory=dict)  # login role -> owner role
    owned: dict[str, int] = field(default_factory=dict)  # role -> objects it owns

    def create(self, user: str, count: int = 1) -> None:
        """``user`` creates ``count`` objects (owned by the role it creates as)."""
        owner = self.creates_as.get(user, user)
        self.owned[owner] = self.owned.get(owner, 0) + count


@dataclass
class FakeServer:
    """One server. Arrange it as root would (``create_user``, ``grant``...), observe it
    with :meth:`accepts` (no login is counted)."""

    family: str = "mysql"
    version: tuple[int, int, int] | None = None
    hostname: str = "fake-db"
    port: int = 3306
    server_id: int = 1
    read_only: bool = False
    max_password_errors: int = 0  # MariaDB's global limit; 0: none
    tls: bool = True  # offers TLS with a certificate the function trusts
    running: bool = True
    schemas: set[str] = field(default_factory=lambda: {"appdb", "reports"})
    accounts: dict[Account, FakeAccount] = field(default_factory=dict)
    logins: list[tuple[str, bool]] = field(default_factory=list)  # (user, accepted), in order
    # None: accounts own nothing (MySQL): the admin session has no SharedOwnership.
    ownership: FakeOwnership | None = None

    def __post_init__(self) -> None:
        self.version = self.version or VERSIONS[self.family]

    @property
    def info(self) -> ServerInfo:
        assert self.version is not None
        suffix = "-MariaDB" if self.family == "mariadb" else ""
        return ServerInfo(
            self.family,
            self.version,
            ".".join(map(str, self.version)) + suffix,
            self.read_only,
            (self.hostname, self.port, self.server_id),
        )

    @property
    def dual_passwords(self) -> bool:
        assert self.version is not None
        return self.family == "mysql" and self.version >= (8, 0, 14)

    @property
    def account_attributes(self) -> bool:
        assert self.version is not None
        return self.family == "mysql" and self.version >= (8, 0, 21)

    # -- arranging ------------------------------------------------------------------------

    def create_user(
        self,
        user: str,
        password: str | None,
        *,
        host: str = "%",
        privileges: Iterable[Privilege] = (),
        plugin: str = "",
        policy: AccountPolicy | None = None,
    ) -> FakeAccount:
        account = FakeAccount(
            user,
            host,
            password,
            plugin=plugin or DEFAULT_PLUGIN[self.family],
            profile=AccountProfile(privileges=frozenset(privileges), policy=policy or AccountPolicy()),
        )
        account.profile = account.profile._replace(plugin=account.plugin)
        self.accounts[account.key] = account
        return account

    def create_role(self, name: str, privileges: Iterable[Privilege] = ()) -> FakeAccount:
        host = "%" if self.family == "mysql" else ""
        role = FakeAccount(name, host, None, is_role=True, locked=self.family == "mysql")
        role.profile = AccountProfile(privileges=frozenset(privileges))
        self.accounts[role.key] = role
        return role

    def account(self, user: str, host: str = "%") -> FakeAccount:
        return self.accounts[Account(user, host)]

    def grant(self, user: str, *privileges: Privilege, host: str = "%") -> None:
        account = self.account(user, host)
        account.profile = account.profile._replace(privileges=account.profile.privileges | set(privileges))

    def grant_role(self, user: str, role: str, *, host: str = "%", default: bool = True, admin: bool = False) -> None:
        account = self.account(user, host)
        role_host = "%" if self.family == "mysql" else ""
        grant = RoleGrant(role, role_host, admin)
        defaults = account.profile.default_roles | ({(role, role_host)} if default else set())
        account.profile = account.profile._replace(roles=account.profile.roles | {grant}, default_roles=defaults)

    def set_policy(self, user: str, host: str = "%", **changes: Any) -> None:
        account = self.account(user, host)
        account.profile = account.profile._replace(policy=account.profile.policy._replace(**changes))

    def drop_user(self, user: str, host: str = "%") -> None:
        del self.accounts[Account(user, host)]

    # -- observing ------------------------------------------------------------------------

    def accepts(self, user: str, password: str) -> bool:
        """Whether ``password`` logs in as ``user`` now (nothing is counted)."""
        account = self._match(user)
        return (
            account is not None
            and password in (account.password, account.secondary)
            and not (account.locked or account.blocked or account.expired)
        )

    def hosts(self, user: str) -> list[str]:
        return sorted(a.host for a in self.accounts.values() if a.user == user and not a.is_role)

    # -- the server's rules ------------------------------------------------------------------

    def _match(self, user: str) -> FakeAccount | None:
        """The account a TCP login from the function matches: its exact host, else '%'."""
        for host in (CLIENT_HOST, "%"):
            account = self.accounts.get(Account(user, host))
            if account is not None and not account.is_role:
                return account
        return None

    def limit(self, account: FakeAccount) -> LoginLimit:
        if self.family == "mariadb":
            return LoginLimit(self.max_password_errors, -1, "server")
        assert self.version is not None
        if self.version < (8, 0, 19):
            return LoginLimit()
        return LoginLimit(account.profile.policy.failed_login_attempts, account.profile.policy.password_lock_days)

    def authenticate(self, user: str, password: str, secret_id: str, role: str, where: str) -> FakeAccount:
        """A login, as the server answers it: counted towards the failed-login limit."""
        if not self.running:
            raise DatabaseUnreachableError(secret_id, f"cannot reach {where} as {role} (error 2003)")
        account = self._match(user)
        if account is not None and account.blocked:
            code = 4150 if self.family == "mariadb" else 3955
            self.logins.append((user, False))
            raise AccountLockedError(secret_id, f"{role} was refused by {where}: account is locked (error {code})")
        if account is None or password not in (account.password, account.secondary):
            self.logins.append((user, False))
            if account is not None:
                account.failed += 1
                limit = self.limit(account).attempts
                if limit and account.failed >= limit:
                    account.blocked = True
            raise DatabaseAuthError(secret_id, f"{role} was refused by {where} (error 1045)")
        account.failed = 0
        self.logins.append((user, True))
        if account.locked:
            code = 4151 if self.family == "mariadb" else 3118
            raise AccountLockedError(secret_id, f"{role} was refused by {where}: account is locked (error {code})")
        if account.expired:
            code = 1820 if self.family == "mariadb" else 1862
            raise PasswordExpiredError(secret_id, f"{role} was refused by {where}: password expired (error {code})")
        return account

    def effective(self, account: FakeAccount) -> set[Privilege]:
        held = set(account.profile.privileges)
        for role, host in account.profile.default_roles:
            found = self.accounts.get(Account(role, host))
            if found is not None:
                held |= self.effective(found)
        return held

    def holds(self, account: FakeAccount, privilege: str, schema: str = "") -> bool:
        return any(
            p.privilege in (privilege, "ALL PRIVILEGES") and p.schema in ("", schema) and not p.table
            for p in self.effective(account)
        )


def _mysql_family_only(path: str) -> ModuleType:
    """An importer for the registry that finds the MySQL backend (this fake) and no other."""
    if path != MYSQL:
        raise ModuleNotFoundError(f"No module named {path!r}", name=path)
    return SimpleNamespace(create_database=FakeDatabase)  # type: ignore[return-value]


class FakeDatabase:
    """The :class:`rotator.ports.Database` port over one or more fake servers, by endpoint."""

    def __init__(
        self, *servers: FakeServer, faults: FaultPlan | None = None, endpoints: dict[str, FakeServer] | None = None
    ) -> None:
        self.faults = faults or FaultPlan()
        self._servers = {f"{CLIENT_HOST}:{server.port}": server for server in servers}
        self._servers.update(endpoints or {})

    def server_at(self, secret: DatabaseSecret, secret_id: str, role: str, *, verified_tls: bool = False) -> FakeServer:
        where = f"{secret.host}:{secret.port}"
        server = self._servers.get(where)
        if server is None or not server.running:
            raise DatabaseUnreachableError(secret_id, f"cannot reach {where} as {role} (error 2003)")
        if (secret.tls or verified_tls) and not server.tls:
            raise DatabaseTLSError(secret_id, f"TLS handshake with {where} failed for {role} (server must offer TLS)")
        return server

    def _login(
        self, secret: DatabaseSecret, target: DatabaseSecret, role: str, secret_id: str, *, admin: bool = False
    ) -> tuple[FakeServer, FakeAccount]:
        server = self.server_at(target, secret_id, role, verified_tls=admin)
        where = f"{target.host}:{target.port}"
        account = server.authenticate(secret.username, secret.password, secret_id, role, where)
        if (
            not admin
            and target.dbname
            and not (
                target.dbname in server.schemas
                and any(p.schema in ("", target.dbname) for p in server.effective(account))
            )
        ):
            raise DatabaseError(
                secret_id,
                f"{role} cannot use database '{target.dbname}' (the secret's 'dbname') on {where} (error 1044)",
            )
        return server, account

    def supports(self, secret: DatabaseSecret) -> None:
        """The registry's answer (rotator.backends), for a rotator whose only backend is the
        MySQL family's: every other engine is refused as one without its backend."""
        with self.faults.call("Database.supports"):
            backend_module(secret.engine, secret.secret_id, import_module=_mysql_family_only)

    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo:
        with self.faults.call("Database.check_login"):
            for _ in range(1, attempts):
                try:
                    return self._login(secret, secret, f"user '{secret.username}'", secret.secret_id)[0].info
                except (AccountLockedError, PasswordExpiredError):
                    raise
                except DatabaseAuthError:
                    continue
            return self._login(secret, secret, f"user '{secret.username}'", secret.secret_id)[0].info

    @contextmanager
    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[FakeAdminSession]:
        with self.faults.call("Database.admin"):
            if not admin.host:
                raise AdminHostError(app.secret_id, f"admin secret {admin.secret_id} has no confirmed host")
            role = f"admin '{admin.username}' of {admin.secret_id}"
            server, account = self._login(admin, admin, role, app.secret_id, admin=True)
        session = FakeAdminSession if server.ownership is None else FakeOwningAdminSession
        yield session(server, account, app.secret_id, self.faults)

    @contextmanager
    def own_account(self, candidates: Iterable[DatabaseSecret]) -> Iterator[FakeOwnAccount]:
        with self.faults.call("Database.own_account"):
            refusals: list[DatabaseAuthError] = []
            found: tuple[FakeServer, FakeAccount, DatabaseSecret] | None = None
            for login in candidates:
                try:
                    server, account = self._login(login, login, f"user '{login.username}'", login.secret_id)
                except (AccountLockedError, PasswordExpiredError):
                    raise
                except DatabaseAuthError as refused:
                    refusals.append(refused)
                    continue
                found = (server, account, login)
                break
            if found is None:
                if not refusals:
                    raise ValueError("own_account needs at least one candidate login")
                last = refusals[-1]
                if len(refusals) == 1:
                    raise last
                raise DatabaseAuthError(
                    last.secret_id, f"{last.problem}; refused with each of the {len(refusals)} passwords tried"
                )
        yield FakeOwnAccount(*found, self.faults)


class FakeOwnAccount:
    """The :class:`rotator.ports.OwnAccountSession` port: a user on its own account."""

    def __init__(self, server: FakeServer, account: FakeAccount, login: DatabaseSecret, faults: FaultPlan) -> None:
        self._server, self._account, self.login, self._faults = server, account, login, faults
        self.server = server.info

    def dual_passwords(self) -> DualPasswords:
        with self._faults.call("OwnAccountSession.dual_passwords"):
            return _own_dual(self._server, self._account)

    def admin_dual_passwords(self) -> DualPasswords:
        with self._faults.call("OwnAccountSession.admin_dual_passwords"):
            return _admin_dual(self._server)

    def change_password(self, new_password: str, *, retain_current: bool = False) -> bool:
        with self._faults.call("OwnAccountSession.change_password"):
            account = self._account
            if self._server.family == "mysql" and self.login.password != account.password:
                return False  # REPLACE named the secondary: error 3891, nothing changed
            if retain_current:
                dual = _own_dual(self._server, account)
                if not dual.available:
                    raise DatabaseError(self.login.secret_id, "set own password failed (error 1227)")
                account.secondary = account.password
            account.password = new_password
            account.expired = False
            return True

    def replace_primary(self, new_password: str) -> None:
        with self._faults.call("OwnAccountSession.replace_primary"):
            if self._server.family == "mysql" and self._account.profile.policy.require_current:
                raise CurrentPasswordRequiredError(self.login.secret_id, "set own password failed (error 3892)")
            self._account.password = new_password
            self._account.expired = False

    def login_limit(self) -> LoginLimit:
        with self._faults.call("OwnAccountSession.login_limit"):
            return self._server.limit(self._account)


def _admin_dual(server: FakeServer) -> DualPasswords:
    """Whether an admin's change of an account's password keeps the old one (and marks it)."""
    version = server.info.version_string
    if not server.dual_passwords:
        return DualPasswords(False, False, f"{server.family} {version} has no dual passwords")
    if not server.account_attributes:
        return DualPasswords(True, False, f"MySQL {version} has no account attributes (8.0.21+) to mark it")
    return DualPasswords(True, True, "the admin keeps the current password as the secondary one")


def _own_dual(server: FakeServer, account: FakeAccount) -> DualPasswords:
    if not server.dual_passwords:
        return DualPasswords(False, False, f"{server.family} {server.info.version_string} has no dual passwords")
    held = {p.privilege for p in server.effective(account) if not p.schema}
    if held & KEEPS_OWN:
        return DualPasswords(True, True, "the user may keep its current password (APPLICATION_PASSWORD_ADMIN)")
    return DualPasswords(True, False, "the user lacks APPLICATION_PASSWORD_ADMIN")


class FakeAdminSession:
    """The :class:`rotator.ports.AdminSession` port: the admin's view of the accounts."""

    def __init__(self, server: FakeServer, admin: FakeAccount, secret_id: str, faults: FaultPlan) -> None:
        self._db, self._admin, self._secret_id, self._faults = server, admin, secret_id, faults
        self.server = server.info

    # -- reading ----------------------------------------------------------------------------

    def _readable(self, what: str) -> None:
        """Reading the account tables needs SELECT on them (error 1142 otherwise)."""
        user_table = Privilege("SELECT", "mysql", "user") in self._db.effective(self._admin)
        if not (user_table or self._db.holds(self._admin, "SELECT", "mysql")):
            raise DatabaseError(self._secret_id, f"{what} failed (error 1142)")

    def current_account(self) -> Account:
        with self._faults.call("AdminSession.current_account"):
            return self._admin.key

    def account_hosts(self, user: str) -> list[str]:
        with self._faults.call("AdminSession.account_hosts"):
            self._readable(f"list hosts of '{user}'")
            return self._db.hosts(user)

    def read_profile(self, account: Account) -> AccountProfile:
        with self._faults.call("AdminSession.read_profile"):
            self._readable(f"read the profile of {account}")
            found = self._db.accounts.get(account)
            return found.profile if found is not None else AccountProfile()

    def role_privileges(self, role: Account) -> set[Privilege]:
        with self._faults.call("AdminSession.role_privileges"):
            found = self._db.accounts.get(role)
            return set(found.profile.privileges) if found is not None else set()

    def max_username_length(self) -> int:
        with self._faults.call("AdminSession.max_username_length"):
            return MAX_USERNAME[self._db.family]

    def is_role(self, name: str) -> bool:
        with self._faults.call("AdminSession.is_role"):
            accounts = self._db.accounts.values()
            if self._db.family == "mariadb":
                return any(a.user == name and a.is_role for a in accounts)
            granted = any(
                name in {r.role for r in a.profile.roles} | {d[0] for d in a.profile.default_roles} for a in accounts
            )
            return granted or any(a.user == name and a.locked and a.password is None for a in accounts)

    def account_state(self, account: Account) -> AccountState:
        with self._faults.call("AdminSession.account_state"):
            found = self._db.accounts.get(account)
            return AccountState(found.locked, found.expired) if found is not None else AccountState()

    def copy_advice(self, profile: AccountProfile) -> str:
        return COPY_ADVICE

    def copy_problems(self, profile: AccountProfile) -> list[str]:
        with self._faults.call("AdminSession.copy_problems"):
            plugins = PASSWORD_PLUGINS[self._db.family]
            if profile.plugin and profile.plugin not in plugins:
                listed = ", ".join(sorted(plugins))
                return [f"authentication plugin {profile.plugin}: rotator can set passwords only with {listed}"]
            return []

    def dual_passwords(self) -> DualPasswords:
        with self._faults.call("AdminSession.dual_passwords"):
            return _admin_dual(self._db)

    def passwords_held(self, user: str, candidates: dict[str, str]) -> list[HeldPasswords]:
        with self._faults.call("AdminSession.passwords_held"):
            return [self._held(self._db.account(user, host), candidates) for host in self._db.hosts(user)]

    def _held(self, account: FakeAccount, candidates: dict[str, str]) -> HeldPasswords:
        has_secondary = account.secondary is not None
        if account.plugin not in PASSWORD_PLUGINS[self._db.family]:
            return HeldPasswords(account.host, False, None, None, has_secondary)
        primary = next((key for key, pw in candidates.items() if pw == account.password), None)
        secondary = next(
            (key for key, pw in candidates.items() if has_secondary and pw == account.secondary and key != primary),
            None,
        )
        return HeldPasswords(account.host, True, primary, secondary, has_secondary)

    def login_limit(self, account: Account) -> LoginLimit:
        with self._faults.call("AdminSession.login_limit"):
            found = self._db.accounts.get(account)
            return self._db.limit(found) if found is not None else LoginLimit()

    def account_definition(self, user: str, host: str) -> AccountDefinition:
        with self._faults.call("AdminSession.account_definition"):
            name = f"'{user}'@'{host}'"
            if not self._db.holds(self._admin, "SELECT", "mysql"):
                raise AccountReadError(
                    self._secret_id,
                    f"the admin cannot read the definition of {name}, which testSecret compares: "
                    f"SHOW CREATE USER {name} failed (error 1227)",
                )
            found = self._db.accounts.get(Account(user, host))
            if found is None:
                raise AccountReadError(self._secret_id, f"the admin cannot read the definition of {name} (error 1396)")
            return _definition(found, self._db.family)

    # -- changing ---------------------------------------------------------------------------

    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport:
        with self._faults.call("AdminSession.sync_twin"):
            limit = MAX_USERNAME[self._db.family]
            if len(twin_user) > limit:
                raise UnsupportedDatabaseError(
                    self._secret_id, f"user name '{twin_user}' is longer than the server's limit of {limit} characters"
                )
            hosts = self._db.hosts(source_user)
            if not hosts:
                raise SecretMismatchError(self._secret_id, f"user '{source_user}' has no account on this server")
            self._may("CREATE USER", f"create or change '{twin_user}'")
            twin_hosts = set(self._db.hosts(twin_user))
            created = dropped = statements = 0
            for host in hosts:
                source = self._db.account(source_user, host)
                for privilege in source.profile.privileges:
                    self._may_grant(privilege)
                twin = self._db.accounts.get(Account(twin_user, host))
                if twin is None:
                    twin = FakeAccount(twin_user, host, password, plugin=source.plugin)
                    self._db.accounts[twin.key] = twin
                    created += 1
                elif twin.plugin != source.plugin:
                    twin.secondary = None  # a new plugin discards the secondary password
                twin.password, twin.plugin, twin.expired = password, source.plugin, False
                before = twin.profile._replace(plugin=source.plugin)
                statements += len(sync_operations(source.profile, before, twin.key))
                twin.profile = source.profile
            for host in sorted(twin_hosts - set(hosts)):
                self._db.drop_user(twin_user, host)
                dropped += 1
            return SyncReport(tuple(hosts), len(twin_hosts & set(hosts)), created, dropped, statements)

    def set_password(
        self, user: str, password: str, *, version: str, retain_current: bool, keep: str | None = None
    ) -> PasswordReport:
        with self._faults.call("AdminSession.set_password"):
            hosts = self._db.hosts(user)
            if not hosts:
                raise SecretMismatchError(self._secret_id, f"user '{user}' has no account on this server")
            self._may("CREATE USER", f"set the password of '{user}'")
            if retain_current and not self._db.account_attributes:
                raise UnsupportedDatabaseError(
                    self._secret_id, "SetPassword: the server cannot keep the current password"
                )
            changed = already = kept = 0
            retained = False
            for host in hosts:
                account = self._db.account(user, host)
                state = self._held(account, {"new": password, **({"keep": keep} if keep is not None else {})})
                if retain_current and (password_version(account.profile) == version or state.primary == "new"):
                    already += 1
                    continue
                retain = retain_current
                if retain and keep is not None and state.known and state.primary != "keep":
                    retain = False
                    kept += state.secondary == "keep"
                if retain:
                    account.secondary = account.password
                    attributes = json.loads(account.profile.policy.attributes or "{}")
                    attributes[PASSWORD_VERSION_ATTRIBUTE] = version
                    policy = account.profile.policy._replace(attributes=canonical_attributes(json.dumps(attributes)))
                    account.profile = account.profile._replace(policy=policy)
                account.password, account.expired = password, False
                retained = retained or retain
                changed += 1
            return PasswordReport(tuple(hosts), changed, already, retained, kept)

    def _may(self, privilege: str, what: str) -> None:
        if not self._db.holds(self._admin, privilege):
            raise DatabaseError(self._secret_id, f"{what} failed (error 1227)")

    def _may_grant(self, wanted: Privilege) -> None:
        """GRANT needs the privilege and GRANT OPTION on the object or above (error 1044/1142)."""
        held = self._db.effective(self._admin)

        def covers(p: Privilege, name: str) -> bool:
            return p.privilege in (name, "ALL PRIVILEGES") and (
                not p.schema or (p.schema == wanted.schema and p.table in ("", wanted.table))
            )

        if not (any(covers(p, wanted.privilege) for p in held) and any(covers(p, GRANT_OPTION) for p in held)):
            raise DatabaseError(self._secret_id, f"grant {wanted.describe()} failed (error 1044)")


class FakeOwningAdminSession(FakeAdminSession):
    """The admin session of a server that models ownership: also the
    :class:`rotator.ports.SharedOwnership` port (what the PostgreSQL backend's session has)."""

    @property
    def _ownership(self) -> FakeOwnership:
        assert self._db.ownership is not None
        return self._db.ownership

    def _logins(self, user: str, twin: str | None) -> list[str]:
        if not self._db.hosts(user):
            raise SecretMismatchError(self._secret_id, f"role '{user}' does not exist on this server")
        return [user] + ([twin] if twin and self._db.hosts(twin) else [])

    def ownership(self, user: str, twin: str | None) -> Ownership:
        with self._faults.call("AdminSession.ownership"):
            logins = self._logins(user, twin)
            owned = tuple(sorted((login, self._ownership.owned.get(login, 0)) for login in logins))
            return Ownership(self._ownership.creates_as.get(user), owned)

    def adopt(self, user: str, twin: str | None, *, apply: bool) -> Adoption:
        """The owner role is the user's own when it has one, else ``<user>_owner``; the plan
        names each step the real one takes (no password), applied all at once."""
        with self._faults.call("AdminSession.adopt"):
            logins = self._logins(user, twin)
            state = self._ownership
            owner = state.creates_as.get(user) or f"{min(logins, key=len)}_owner"
            plan = (
                [] if owner in state.owned or owner in state.creates_as.values() else [f'CREATE ROLE "{owner}" NOLOGIN']
            )
            plan += [f'GRANT "{owner}" TO "{login}"' for login in logins]
            plan += [f'REASSIGN OWNED BY "{login}" TO "{owner}"' for login in logins if state.owned.get(login)]
            plan += [f"ALTER ROLE \"{login}\" SET role = '{owner}'" for login in logins]
            if apply:
                self._may("CREATE USER", f"adopt '{user}'")  # PostgreSQL: CREATEROLE
                for login in logins:
                    state.owned[owner] = state.owned.get(owner, 0) + state.owned.pop(login, 0)
                    state.creates_as[login] = owner
            return Adoption(owner, tuple(plan), apply)


def _definition(account: FakeAccount, family: str) -> AccountDefinition:
    """What the MySQL backend returns: the server's ``SHOW CREATE USER`` and ``SHOW GRANTS``
    as each family prints them (:func:`_printed`), normalised by the backend's own
    rotator.backends.mysql.definitions. The contract test compares these lines with a real
    server's for the same account."""
    return definition(_printed(account, family), account.user, account.host, "fake")


def _printed(account: FakeAccount, family: str) -> PrintedDefinition:
    """SHOW CREATE USER and SHOW GRANTS of the model, in the order and words each family
    prints them (checked on MariaDB 10.11 and MySQL 9.7: tests/integration/contract)."""
    profile, name = account.profile, f"`{account.user}`@`{account.host}`"
    policy = profile.policy
    digest = hashlib.sha256((account.password or "").encode()).hexdigest()
    lifetime = {None: "DEFAULT", 0: "NEVER"}.get(policy.password_lifetime, f"INTERVAL {policy.password_lifetime} DAY")
    if family == "mariadb":
        identified = (
            f"IDENTIFIED BY PASSWORD '*{digest[:40].upper()}'"
            if account.plugin == "mysql_native_password"
            else f"IDENTIFIED VIA {account.plugin} USING '{digest}'"
        )
        create = [f"CREATE USER {name} {identified}"]
        if profile.tls.ssl_type:
            create.append(f"REQUIRE {profile.tls.ssl_type}")
        if account.locked:
            create.append("ACCOUNT LOCK")
        if policy.password_lifetime is not None:
            create.append(f"PASSWORD EXPIRE {lifetime}")
        usage_suffix = f" {identified}"
    else:
        create = [f"CREATE USER {name} IDENTIFIED WITH '{account.plugin}' AS '$A$005${digest}'"]
        if profile.default_roles:
            create.append("DEFAULT ROLE " + ",".join(f"`{r}`@`{h}`" for r, h in sorted(profile.default_roles)))
        create.append(f"REQUIRE {profile.tls.ssl_type or 'NONE'}")
        create.append(f"PASSWORD EXPIRE {lifetime} ACCOUNT {'LOCK' if account.locked else 'UNLOCK'}")
        create.append("PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT")
        create.append(
            {None: "PASSWORD REQUIRE CURRENT DEFAULT", True: "PASSWORD REQUIRE CURRENT"}.get(
                policy.require_current, "PASSWORD REQUIRE CURRENT OPTIONAL"
            )
        )
        if policy.failed_login_attempts:
            lock = "UNBOUNDED" if policy.password_lock_days < 0 else str(policy.password_lock_days)
            create.append(f"FAILED_LOGIN_ATTEMPTS {policy.failed_login_attempts} PASSWORD_LOCK_TIME {lock}")
        if policy.attributes:
            create.append(f"ATTRIBUTE '{policy.attributes}'")
        usage_suffix = ""
    grants: dict[tuple[str, str, str], list[str]] = {}
    options: set[tuple[str, str, str]] = set()
    for p in sorted(profile.privileges):
        where = (p.schema, p.table, p.routine_type)
        if p.privilege == GRANT_OPTION:
            options.add(where)
            grants.setdefault(where, [])
        else:
            grants.setdefault(where, []).append(p.privilege + (f" (`{p.column}`)" if p.column else ""))
    grants.setdefault(("", "", ""), [])
    lines = []
    for where, names in sorted(grants.items()):
        target = Privilege("USAGE", *where[:2], routine_type=where[2]).object_name()
        option = " WITH GRANT OPTION" if where in options else ""
        suffix = usage_suffix if not names and where == ("", "", "") else ""
        lines.append(f"GRANT {', '.join(names) or 'USAGE'} ON {target} TO {name}{suffix}{option}")
    for role in sorted(profile.roles):
        plain = RoleGrant(role.role, role.role_host).describe()
        lines.append(f"GRANT {plain} TO {name}" + (" WITH ADMIN OPTION" if role.admin_option else ""))
    if family == "mariadb" and profile.default_roles:
        lines.append(f"SET DEFAULT ROLE `{min(profile.default_roles)[0]}` FOR {name}")
    return PrintedDefinition(" ".join(create), tuple(lines))
