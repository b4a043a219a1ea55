"""The database port's adapter for MySQL, Aurora MySQL and MariaDB (PyMySQL).

Everything the driver can raise is turned into :mod:`rotator.errors` here. Driver
messages are copied only for error codes whose text names accounts and objects;
any other code is reported by number, because MySQL echoes statement text (which
may hold a bound password) in syntax and many other errors.
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pymysql
from aws_lambda_powertools import Tracer
from pymysql.connections import Connection

from rotator.accounts import (
    Account,
    AccountProfile,
    AccountState,
    ChangeOwnPassword,
    CreateUser,
    DropUser,
    Operation,
    Privilege,
    SetPassword,
    password_version,
    sync_operations,
)
from rotator.backends import DEFAULT_ENGINE, ENGINES, MYSQL
from rotator.backends.common import TLSContexts, first_accepted
from rotator.backends.mysql.definitions import PrintedDefinition, definition
from rotator.backends.mysql.dialects import Dialect, dialect_for
from rotator.backends.mysql.dialects.common import (
    COPY_ADVICE,
    MAX_USERNAME_SQL,
    AccountRecord,
    StoredPasswords,
    UserEntry,
)
from rotator.backends.mysql.hashes import matches
from rotator.comparison import AccountDefinition
from rotator.errors import (
    AccountLockedError,
    AccountReadError,
    AccountStateError,
    AdminHostError,
    CleartextAuthError,
    CurrentPasswordRequiredError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    NotPrimaryPasswordError,
    PasswordExpiredError,
    SecretMismatchError,
    StatementBuildError,
    UnsupportedDatabaseError,
    UnsupportedEngineError,
)
from rotator.ports import DualPasswords, HeldPasswords, LoginLimit, PasswordReport, ServerInfo, SyncReport
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from rotator.sql import Statement

# Each port method is a subsegment; nothing it returns or receives is recorded, and
# errors are recorded by the X-Ray SDK from their (credential-free) message. The
# handler decides what the X-Ray SDK patches (not PyMySQL).
tracer = Tracer(auto_patch=False)

# Error codes whose server message names only accounts, objects and privileges.
_SAFE_MESSAGES = frozenset({1044, 1045, 1133, 1141, 1142, 1143, 1227, 1370, 1396, 1403, 1410, 1698, 1959, 4162})
# denied, and the plugin refused the login
_AUTH_ERRORS = frozenset({1045, 1698})
# The password was right but the account cannot be used; what each code means and what to do.
_LOCKED = "unlock it (ALTER USER ... ACCOUNT UNLOCK) if the lock is not deliberate"
_LOCKED_OUT = (
    "a lock-out after too many refused logins; it ends by itself after the lock time, "
    "or at once with ALTER USER ... ACCOUNT UNLOCK (find what keeps logging in with a wrong password)"
)
_EXPIRED = (
    "an administrator must set a new password: ALTER USER ... IDENTIFIED BY the secret's AWSCURRENT "
    "password (it clears the expiry), or PASSWORD EXPIRE NEVER for an account rotator rotates"
)
_ACCOUNT_STATES: dict[int, tuple[type[AccountStateError], str, str]] = {
    3118: (AccountLockedError, "account is locked", _LOCKED),  # MySQL: ACCOUNT LOCK
    4151: (AccountLockedError, "account is locked", _LOCKED),  # MariaDB: ACCOUNT LOCK
    3955: (AccountLockedError, "account is locked after failed logins (FAILED_LOGIN_ATTEMPTS)", _LOCKED_OUT),
    4150: (AccountLockedError, "account is locked after failed logins (max_password_errors)", _LOCKED_OUT),
    1862: (PasswordExpiredError, "password expired", _EXPIRED),  # MySQL, at login
    1820: (PasswordExpiredError, "password expired", _EXPIRED),  # MariaDB's sandbox: the first statement
}
# access denied to the database / unknown database, when the login names a database
_NO_DATABASE = frozenset({1044, 1049})
# connect/lost/gone, too many connections, host blocked/not allowed, shutdown in progress, killed
_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013, 1040, 1129, 1130, 1053, 1927})
# How long a password change waits for a duplicate delivery's change (milliseconds of work).
LOCK_WAIT_SECONDS = 5
# GET_LOCK names: MySQL takes at most 64 characters (error 4163), MariaDB 192 bytes
# (error 1059). A longer name is hashed (docs/design.md, "Dual passwords").
LOCK_NAME_BYTES = 64
# Statement errors the core acts on: "incorrect current password" (REPLACE named a
# password that is not the primary one), "current password needs to be specified" (a
# change without REPLACE where PASSWORD REQUIRE CURRENT applies).
_ERROR_TYPES: dict[int, type[DatabaseError]] = {
    3891: NotPrimaryPasswordError,
    3892: CurrentPasswordRequiredError,
}


class MySQLDatabase:
    """Opens verified-TLS connections and performs the rotation's database work.

    One instance lives per warm container: it keeps one TLS context per CA file,
    because building a context with a full CA bundle costs tens of milliseconds.
    """

    def __init__(self, settings: Settings, connect: Callable[..., Connection[Any]] = pymysql.connect) -> None:
        self._settings = settings
        self._connect = connect
        self.stats: Counter[str] = Counter()
        self.tls_contexts = TLSContexts(self.stats)

    # -- the port -----------------------------------------------------------

    def supports(self, secret: DatabaseSecret) -> None:
        if ENGINES.get(secret.engine or DEFAULT_ENGINE) != MYSQL:
            raise UnsupportedEngineError(secret.secret_id, f"engine {secret.engine} is not of the MySQL family")

    @tracer.capture_method(capture_response=False, capture_error=False)
    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo:
        """Log in with ``secret``, run a query, and say which server answered.

        ``attempts`` > 1 retries authentication failures (with a short pause) for
        replicas that may not have received a just-made user change yet.
        """
        for attempt in range(1, attempts):
            try:
                return self._login(secret)
            except AccountStateError:
                raise  # locked or expired: waiting for a replica changes nothing
            except DatabaseAuthError:
                time.sleep(min(0.25 * 2**attempt, 2.0))
        return self._login(secret)

    @tracer.capture_method(capture_response=False, capture_error=False)
    @contextmanager
    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[MySQLAdminSession]:
        """A session as the admin user on the admin's own host, always with verified TLS.

        ``admin`` carries the host rotator.admin_host confirmed; the application secret
        only names the secret errors are about. The admin secret's ``"ssl": false`` is
        ignored, and its CA is its own ``ssl_ca`` or the function's bundle: nothing the
        application secret says decides where, or how, the admin's password travels."""
        if not admin.host:
            # rotator.admin_host fills in a confirmed host; never fall back to the app's.
            raise AdminHostError(app.secret_id, f"admin secret {admin.secret_id} has no confirmed host")
        role = f"admin '{admin.username}' of {admin.secret_id}"
        with self._session(admin, admin, role, app.secret_id, verified_tls=True, admin=True) as session:
            yield MySQLAdminSession(session, app.secret_id)

    @tracer.capture_method(capture_response=False, capture_error=False)
    @contextmanager
    def own_account(self, candidates: Iterable[DatabaseSecret]) -> Iterator[OwnAccount]:
        """A session as the first candidate login the server accepts, tried one at a time
        in order (:func:`rotator.backends.common.first_accepted`)."""
        with first_accepted(candidates, self._own_session) as own:
            yield own

    @contextmanager
    def _own_session(self, login: DatabaseSecret) -> Iterator[OwnAccount]:
        with self._session(login, login, f"user '{login.username}'", login.secret_id) as session:
            yield OwnAccount(session, login)

    def _login(self, secret: DatabaseSecret) -> ServerInfo:
        # The session's first statement (which server is this?) is the query that proves
        # the login works: nothing else to send.
        with self._session(secret, secret, f"user '{secret.username}'", secret.secret_id) as session:
            return session.server

    # -- connections --------------------------------------------------------

    @contextmanager
    def _session(
        self,
        creds: DatabaseSecret,
        target: DatabaseSecret,
        role: str,
        secret_id: str,
        *,
        verified_tls: bool = False,
        admin: bool = False,
    ) -> Iterator[Session]:
        """Connect as ``creds`` to ``target``'s host; errors name ``secret_id``. TLS unless
        the secret says ``"ssl": false`` and ``verified_tls`` (admin logins) is off. No
        login answers a cleartext authentication plugin (``_REFUSED_PLUGINS``). ``admin``:
        the session's first statement also reads what an admin session asks of the server."""
        host = target.host or ""
        where = f"{host}:{target.port}"
        options: dict[str, Any] = {
            "host": host,
            "port": target.port,
            "user": creds.username,
            # Bytes, not str: PyMySQL would encode a str password as latin-1 ("Pässwörd"
            # refused with 1045, CJK raising UnicodeEncodeError). The server hashes what
            # ALTER USER / SET PASSWORD received in the connection's utf8mb4, so the
            # handshake sends the same UTF-8 bytes (docs/design.md, "Passwords are bytes").
            "password": creds.password.encode("utf-8"),
            "connect_timeout": self._settings.connect_timeout,
            "read_timeout": self._settings.read_timeout,
            "write_timeout": self._settings.read_timeout,
            "charset": "utf8mb4",
            "autocommit": True,
            "auth_plugin_map": _REFUSED_PLUGINS,
        }
        if target.dbname and target is creds:
            options["database"] = target.dbname
        tls = target.tls or verified_tls
        if tls:
            ca_file = Path(target.ssl_ca) if target.ssl_ca else self._settings.ca_bundle
            options["ssl"] = self.tls_contexts.get(ca_file, secret_id)
        else:
            options["ssl_disabled"] = True

        self.stats["connections_attempted"] += 1
        try:
            connection = self._connect(**options)
        except _CleartextRequested as exc:
            raise CleartextAuthError(
                secret_id,
                f"{where} asked {role} to authenticate with '{exc.plugin}', which sends the password as typed: "
                "refused, nothing was sent (rotator answers no cleartext authentication plugin)",
            ) from None
        except pymysql.err.MySQLError as exc:
            raise _connect_error(exc, secret_id, role, where, options.get("database")) from None
        except Exception as exc:
            # The driver itself gave up, e.g. on an authentication plugin it cannot speak
            # (ed25519 without PyNaCl): typed, and no driver text.
            raise DatabaseError(
                secret_id, f"connecting to {where} as {role} failed in the driver ({type(exc).__name__})"
            ) from exc
        self.stats["connections_ok"] += 1
        if tls:
            self.stats["tls_handshakes"] += 1
        try:
            yield Session(connection, secret_id, self.stats, admin=admin)
        finally:
            with suppress(pymysql.err.MySQLError):  # the server already went away
                connection.close()


class _CleartextRequested(pymysql.err.OperationalError):
    """Raised inside PyMySQL's handshake when the server names a refused plugin."""

    def __init__(self, plugin: str) -> None:
        super().__init__(2059, plugin)  # CR_AUTH_PLUGIN_CANNOT_LOAD
        self.plugin = plugin


class _RefuseCleartext:
    """PyMySQL's ``auth_plugin_map`` entry for the plugins that send the password as typed.

    PyMySQL answers ``mysql_clear_password`` with the password itself, and ``dialog``
    (MariaDB's PAM) with the password for a "Password: " prompt. It builds the plugin's
    handler from this map as soon as the server names the plugin, in its greeting or in an
    auth switch request, before anything is written for it: refusing in the constructor
    leaves nothing sent. (MySQL's own client refuses mysql_clear_password unless told to.)
    """

    plugin = ""

    def __init__(self, _connection: object) -> None:
        raise _CleartextRequested(self.plugin)


class _RefuseClearPassword(_RefuseCleartext):
    plugin = "mysql_clear_password"


class _RefuseDialog(_RefuseCleartext):
    plugin = "dialog"


_REFUSED_PLUGINS: dict[str, type[_RefuseCleartext]] = {
    refused.plugin: refused for refused in (_RefuseClearPassword, _RefuseDialog)
}


def _connect_error(
    exc: pymysql.err.MySQLError, secret_id: str, role: str, where: str, dbname: str | None
) -> DatabaseError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    # PyMySQL wraps a socket-level failure (TLS included) in OperationalError 2003
    # and keeps what it wrapped as ``original_exception``.
    cause = getattr(exc, "original_exception", None)
    if isinstance(cause, ssl.SSLError) or code == 2026:
        if isinstance(cause, ssl.SSLCertVerificationError):
            problem = f"TLS verification of {where} failed for {role}: {cause.verify_message or 'untrusted'}"
        else:
            problem = f"TLS handshake with {where} failed for {role} (server must offer TLS)"
        return DatabaseTLSError(secret_id, problem)
    if dbname and code in _NO_DATABASE:
        # The server answers 1044 rather than "unknown database" to an account without
        # privileges, so as not to tell it which databases exist.
        return DatabaseError(
            secret_id,
            f"{role} cannot use database '{dbname}' (the secret's 'dbname') on {where}: it does not exist "
            f"or the user has no privilege on it (error {code})",
        )
    if code in _ACCOUNT_STATES:
        return account_state_error(code, secret_id, f"{role} was refused by {where}")
    if code in _AUTH_ERRORS:
        return DatabaseAuthError(secret_id, f"{role} was refused by {where} (error {code})")
    if code in _UNREACHABLE or isinstance(cause, OSError):
        return DatabaseUnreachableError(secret_id, f"cannot reach {where} as {role} (error {code})")
    return DatabaseError(secret_id, f"connecting to {where} as {role} failed (error {code})")


def account_state_error(code: int, secret_id: str, what: str) -> AccountStateError:
    error, state, action = _ACCOUNT_STATES[code]
    return error(secret_id, f"{what}: {state} (error {code}); {action}")


def _held(host: str, stored: StoredPasswords | None, candidates: dict[str, str]) -> HeldPasswords:
    """Which candidate is the primary and which the secondary password of one account."""
    if stored is None:
        return HeldPasswords(host, False, None, None, False)
    primary = secondary = None
    for key, password in candidates.items():
        is_primary = matches(stored.plugin, stored.primary, password)
        if is_primary is None:
            return HeldPasswords(host, False, None, None, stored.secondary is not None)
        if is_primary and primary is None:
            primary = key
        elif stored.secondary is not None and secondary is None and matches(stored.plugin, stored.secondary, password):
            secondary = key
    return HeldPasswords(host, True, primary, secondary, stored.secondary is not None)


def password_lock_name(user: str) -> str:
    """The named lock held while one user's password is read and changed: readable for
    the usual names, and for a name too long for either server (MySQL counts 64
    characters, MariaDB 192 bytes) its SHA-256 instead: the same on every delivery."""
    name = f"rotator.password:{user}"
    if len(name.encode("utf-8")) <= LOCK_NAME_BYTES:
        return name
    return "rotator.password#" + hashlib.sha256(user.encode("utf-8")).hexdigest()[:40]


class Session:
    """One open connection. Every statement goes through :meth:`execute`."""

    def __init__(
        self, connection: Connection[Any], secret_id: str, stats: Counter[str], *, admin: bool = False
    ) -> None:
        self._connection = connection
        self._secret_id = secret_id
        self._stats = stats
        self._dialect: Dialect | None = None
        self.current_user = ""  # CURRENT_USER(): the account the server matched the login to
        self.username_column: int | None = None  # admin sessions: mysql.user.User's declared length
        self.server = self._read_server_info(admin=admin)

    @property
    def secret_id(self) -> str:
        return self._secret_id

    @property
    def dialect(self) -> Dialect:
        """The server family's dialect, chosen once from the server's version."""
        if self._dialect is None:
            self._dialect = dialect_for(self.server, self._secret_id)
        return self._dialect

    def execute(self, statement: Statement) -> list[tuple[Any, ...]]:
        self._stats[f"sql_{statement.verb.lower()}"] += 1
        label = statement.label or statement.verb
        try:
            with self._connection.cursor() as cursor:
                # Always with a tuple, even empty: the text is then always a template, and
                # a literal % is always %% (rotator.sql), whatever the parameters.
                cursor.execute(statement.sql, statement.params)
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            if code in _ACCOUNT_STATES:
                raise account_state_error(code, self._secret_id, f"{label} failed") from None
            detail = f": {exc.args[1]}" if code in _SAFE_MESSAGES and len(exc.args) > 1 else ""
            error = _ERROR_TYPES.get(code, DatabaseUnreachableError if code in _UNREACHABLE else DatabaseError)
            raise error(self._secret_id, f"{label} failed (error {code}){detail}") from None
        except Exception as exc:
            # Not the server's answer: the statement could not be sent (formatting,
            # encoding...). Typed, named by its label; the text may hold a password.
            raise DatabaseError(
                self._secret_id, f"{label} could not be sent ({type(exc).__name__}): nothing was executed"
            ) from exc

    def run(self, op: Operation) -> int:
        """Render ``op`` in the server's dialect and execute it; the number of statements."""
        try:
            statements = self.dialect.render(op)
        except StatementBuildError as exc:
            raise UnsupportedDatabaseError(self._secret_id, f"{type(op).__name__}: {exc}") from exc
        for statement in statements:
            self.execute(statement)
        return len(statements)

    def _read_server_info(self, *, admin: bool) -> ServerInfo:
        # One statement per connection asks everything the session will want of the
        # server itself: its version and identity, who we are, and (an admin) the longest
        # user name it takes.
        sql = "SELECT VERSION(), @@read_only, @@innodb_read_only, @@hostname, @@port, @@server_id, CURRENT_USER()"
        row = self.execute(Statement(sql + (f", ({MAX_USERNAME_SQL})" if admin else ""), (), "read server info"))[0]
        self.current_user = str(row[6])
        if admin and row[7]:
            self.username_column = int(row[7])
        version_string = str(row[0])
        numbers = version_string.split("-", 1)[0].split(".")
        version = tuple(int("".join(ch for ch in part if ch.isdigit()) or 0) for part in [*numbers, "0", "0"][:3])
        return ServerInfo(
            flavor="mariadb" if "mariadb" in version_string.lower() else "mysql",
            version=(version[0], version[1], version[2]),
            version_string=version_string,
            read_only=bool(int(row[1])) or bool(int(row[2])),
            identity=(str(row[3]), int(row[4]), int(row[5])),
        )


class OwnAccount:
    """A user logged in on its own account (single-user rotation)."""

    def __init__(self, session: Session, login: DatabaseSecret) -> None:
        self._session = session
        self.login = login
        self.server = session.server

    def dual_passwords(self) -> DualPasswords:
        return self._session.dialect.own_dual_passwords(self._session)

    def admin_dual_passwords(self) -> DualPasswords:
        return self._session.dialect.admin_dual_passwords()

    def change_password(self, new_password: str, *, retain_current: bool = False) -> bool:
        # The dialect names the password this session logged in with where the server
        # wants it (MySQL's REPLACE, for REQUIRE CURRENT), and the server checks it
        # against the primary password: a compare-and-swap that a retry cannot repeat.
        try:
            self._session.run(ChangeOwnPassword(new_password, self.login.password, retain_current=retain_current))
        except NotPrimaryPasswordError:
            return False
        return True

    def replace_primary(self, new_password: str) -> None:
        # No REPLACE (the primary is not a password we know) and no RETAIN: the server
        # then keeps the secondary password as it is (checked on MySQL 9.7).
        self._session.run(ChangeOwnPassword(new_password, None))

    def login_limit(self) -> LoginLimit:
        return self._session.dialect.login_limit(self._session, None)


class MySQLAdminSession:
    """The admin's view of the users being rotated (the AdminSession port). What to
    read and how to write it is the server family's dialect's business."""

    def __init__(self, session: Session, secret_id: str) -> None:
        self._session = session
        self._secret_id = secret_id
        self.server = session.server
        self._dialect = session.dialect
        # A step asks about the same names and accounts several times (the pre-flight's
        # targets, grants and twin, then the sync): each is read once per session, in one
        # statement, and kept until this session writes (_run). Nothing else is kept:
        # testSecret's definitions (SHOW CREATE USER / SHOW GRANTS) are read every time.
        self._users: dict[str, UserEntry] = {}
        self._accounts: dict[Account, AccountRecord] = {}

    def max_username_length(self) -> int:
        return self._dialect.max_username_length(self._session.username_column)

    def _user(self, name: str) -> UserEntry:
        if name not in self._users:
            with self._typed(f"list hosts of '{name}'"):
                self._users[name] = self._dialect.read_user(self._session, name)
        return self._users[name]

    def account_hosts(self, user: str) -> list[str]:
        return list(self._user(user).hosts)

    def is_role(self, name: str) -> bool:
        entry = self._user(name)
        if entry.is_role is None:
            with self._typed(f"is '{name}' a role"):
                entry = self._users[name] = entry._replace(is_role=self._dialect.role_named(self._session, name))
        return bool(entry.is_role)

    def _account(self, account: Account) -> AccountRecord:
        if account not in self._accounts:
            with self._typed(f"read the profile of {account}"):
                self._accounts[account] = self._dialect.read_account(self._session, account)
        return self._accounts[account]

    def account_state(self, account: Account) -> AccountState:
        return self._account(account).state

    def copy_problems(self, profile: AccountProfile) -> list[str]:
        return self._dialect.copy_problems(profile)

    def copy_advice(self, profile: AccountProfile) -> str:
        # What the twin cannot be given here is the account's own (its plugin, its syntax):
        # no grant to the admin changes that.
        return COPY_ADVICE

    def read_profile(self, account: Account) -> AccountProfile:
        return self._account(account).profile

    def _run(self, op: Operation) -> int:
        try:
            return self._session.run(op)
        finally:
            self._forget(op)

    def _forget(self, op: Operation) -> None:
        """What this session's own write may have changed is read again: the written
        account's rows (every account's after a DROP USER, which also removes the grants
        of a dropped role), and every user name's hosts and role-ness."""
        self._users.clear()
        account = getattr(op, "account", None)
        if account is None or isinstance(op, DropUser):
            self._accounts.clear()
        else:
            self._accounts.pop(account, None)

    def role_privileges(self, role: Account) -> set[Privilege]:
        """Everything a role holds (MariaDB: its global privileges too)."""
        with self._typed(f"read the privileges of role {role}"):
            return self._dialect.role_privileges(self._session, role, self.read_profile(role))

    @contextmanager
    def _typed(self, what: str) -> Iterator[None]:
        """A statement the dialect could not build (a name it cannot write) is a typed error."""
        try:
            yield
        except StatementBuildError as exc:
            raise UnsupportedDatabaseError(self._secret_id, f"{what}: {exc}") from exc

    def current_account(self) -> Account:
        """The account the server matched this login to (``CURRENT_USER()``, read by the session's first statement)."""
        user, _, host = self._session.current_user.rpartition("@")
        return Account(user, host)

    @tracer.capture_method(capture_response=False, capture_error=False)
    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport:
        """Make ``twin_user`` exist at exactly the hosts of ``source_user``, with
        ``password``, the source's authentication plugin and exactly the same profile
        at each host."""
        limit = self.max_username_length()
        if len(twin_user) > limit:
            raise UnsupportedDatabaseError(
                self._secret_id, f"user name '{twin_user}' is longer than the server's limit of {limit} characters"
            )
        hosts = self.account_hosts(source_user)
        if not hosts:
            raise SecretMismatchError(self._secret_id, f"user '{source_user}' has no account on this server")
        # What the pre-flight just read in this session is still what the server holds: the
        # sync starts from it, and reads again only what its own writes changed.
        twin_hosts = set(self.account_hosts(twin_user))
        created: list[Account] = []
        dropped = executed = 0
        try:
            for host in hosts:
                twin = Account(twin_user, host)
                source = self.read_profile(Account(source_user, host))
                if host in twin_hosts:
                    self._run(SetPassword(twin, password, source.plugin))
                else:
                    self._run(CreateUser(twin, password, source.plugin))
                    created.append(twin)
                for op in sync_operations(source, self.read_profile(twin), twin):
                    executed += self._run(op)
        except DatabaseError as exc:
            # The server refused what the pre-flight allowed: leave no half-made account
            # behind (its password is only in AWSPENDING, so nobody uses it yet).
            undone = self._drop_quietly(created)
            if not undone:
                raise
            raise type(exc)(
                exc.secret_id, f"{exc.problem}; dropped the {undone} account(s) this attempt created"
            ) from exc
        for host in sorted(twin_hosts - set(hosts)):
            self._run(DropUser(Account(twin_user, host)))
            dropped += 1
        return SyncReport(tuple(hosts), len(twin_hosts & set(hosts)), len(created), dropped, executed)

    def dual_passwords(self) -> DualPasswords:
        return self._dialect.admin_dual_passwords()

    def login_limit(self, account: Account) -> LoginLimit:
        with self._typed(f"read the login limit of {account}"):
            policy = self.read_profile(account).policy if self._dialect.features.has_failed_login_lock else None
            return self._dialect.login_limit(self._session, policy)

    @tracer.capture_method(capture_response=False, capture_error=False)
    def passwords_held(self, user: str, candidates: dict[str, str]) -> list[HeldPasswords]:
        held = []
        for host in self.account_hosts(user):
            with self._typed(f"read the password hashes of '{user}'@'{host}'"):
                stored = self._dialect.stored_passwords(self._session, Account(user, host))
            held.append(_held(host, stored, candidates))
        return held

    @tracer.capture_method(capture_response=False, capture_error=False)
    def set_password(
        self, user: str, password: str, *, version: str, retain_current: bool, keep: str | None = None
    ) -> PasswordReport:
        hosts = self.account_hosts(user)
        if not hosts:
            raise SecretMismatchError(self._secret_id, f"user '{user}' has no account on this server")
        changed = already = kept = 0
        retained = False
        # Read the mark (and the hashes), then change: two deliveries at once must not both
        # find it missing (the second change would make the new password its own secondary).
        with self._named_lock(password_lock_name(user)):
            self._accounts.clear()  # read under the lock: another delivery may have just changed them
            for host in hosts:
                account = Account(user, host)
                profile = self.read_profile(account)
                candidates = {"new": password, **({"keep": keep} if keep is not None else {})}
                state = _held(host, self._dialect.stored_passwords(self._session, account), candidates)
                if retain_current and (password_version(profile) == version or state.primary == "new"):
                    already += 1  # a retry: its secondary is already the old password; keep it
                    continue
                retain = retain_current
                if retain and keep is not None and state.known and state.primary != "keep":
                    # The password to keep is not the primary: retaining would drop it (if it
                    # is the secondary) for someone else's. A plain change keeps the secondary.
                    retain = False
                    kept += state.secondary == "keep"
                self._run(SetPassword(account, password, profile.plugin, retain_current=retain, version=version))
                retained = retained or retain
                changed += 1
        return PasswordReport(tuple(hosts), changed, already, retained, kept)

    @contextmanager
    def _named_lock(self, name: str) -> Iterator[None]:
        """The server's named lock (GET_LOCK: any account, both families), held by this
        session; released at the end, or by the server when the session dies."""
        timeout = LOCK_WAIT_SECONDS
        acquired = self._session.execute(Statement("SELECT GET_LOCK(%s, %s)", (name, timeout), "take a named lock"))
        if not acquired or acquired[0][0] != 1:
            raise DatabaseError(self._secret_id, f"another session held the lock '{name}' for {timeout} s")
        try:
            yield
        finally:
            with suppress(DatabaseError):
                self._session.execute(Statement("SELECT RELEASE_LOCK(%s)", (name,), "release a named lock"))

    def _drop_quietly(self, accounts: list[Account]) -> int:
        dropped = 0
        for account in accounts:
            with suppress(DatabaseError):
                self._run(DropUser(account))
                dropped += 1
        return dropped

    @tracer.capture_method(capture_response=False, capture_error=False)
    def account_definition(self, user: str, host: str) -> AccountDefinition:
        """``SHOW CREATE USER`` and ``SHOW GRANTS`` of one account, as printed: testSecret's
        independent reading, taken apart by rotator.backends.mysql.definitions. Two statements, nothing else: it must
        not share a query with the profile the sync reads."""
        account = f"'{user}'@'{host}'"
        try:
            created = self._session.execute(
                Statement("SHOW CREATE USER %s@%s", (user, host), f"SHOW CREATE USER {account}")
            )
            grants = self._session.execute(
                Statement("SHOW GRANTS FOR %s@%s", (user, host), f"SHOW GRANTS FOR {account}")
            )
        except DatabaseUnreachableError:
            raise
        except DatabaseError as exc:
            raise AccountReadError(
                self._secret_id,
                f"the admin cannot read the definition of {account}, which testSecret compares: {exc.problem} "
                "(reading another account's SHOW CREATE USER and SHOW GRANTS needs SELECT ON mysql.*)",
            ) from exc
        return definition(PrintedDefinition.from_rows(created, grants), user, host, self._secret_id)
