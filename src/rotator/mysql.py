"""The database port's adapter for MySQL, Aurora MySQL and MariaDB (PyMySQL).

Everything the driver can raise is turned into :mod:`rotator.errors` here. Driver
messages are copied only for error codes whose text names accounts and objects;
any other code is reported by number, because MySQL echoes statement text (which
may hold a bound password) in syntax and many other errors.
"""

from __future__ import annotations

import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
from aws_lambda_powertools import Tracer
from pymysql.connections import Connection

from rotator.accounts import (
    GRANT_OPTION,
    LIMIT_OPTIONS,
    Account,
    AccountProfile,
    Privilege,
    RoleGrant,
    TlsRequirement,
    differences,
    sync_statements,
)
from rotator.errors import (
    AccountReadError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    PrivilegeMismatchError,
    SecretMismatchError,
    UnsupportedDatabaseError,
)
from rotator.ports import ServerInfo, SyncReport
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from rotator.sql import Statement
from rotator.verification import AccountDefinition

# Each port method is a subsegment; nothing it returns or receives is recorded, and
# errors are recorded by the X-Ray SDK from their (credential-free) message. The
# handler decides what the X-Ray SDK patches (not PyMySQL).
tracer = Tracer(auto_patch=False)

# Error codes whose server message names only accounts, objects and privileges.
_SAFE_MESSAGES = frozenset({1044, 1045, 1133, 1141, 1142, 1143, 1227, 1370, 1396, 1403, 1410, 1698, 1959, 4162})
# denied, plugin, expired, locked, and MariaDB's 4150: blocked after max_password_errors
# refused logins (stale application instances can do that to the twin; ALTER USER unblocks)
_AUTH_ERRORS = frozenset({1045, 1698, 1862, 1820, 4150, 4151})
# access denied to the database / unknown database, when the login names a database
_NO_DATABASE = frozenset({1044, 1049})
# connect/lost/gone, too many connections, host blocked/not allowed, shutdown in progress, killed
_UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013, 1040, 1129, 1130, 1053, 1927})


class MySQLDatabase:
    """Opens verified-TLS connections and performs the rotation's database work.

    One instance lives per warm container: it keeps one TLS context per CA file,
    because building a context with a full CA bundle costs tens of milliseconds.
    """

    def __init__(self, settings: Settings, connect: Callable[..., Connection[Any]] = pymysql.connect) -> None:
        self._settings = settings
        self._connect = connect
        self._tls_contexts: dict[Path, ssl.SSLContext] = {}
        self.stats: Counter[str] = Counter()

    # -- the port -----------------------------------------------------------

    @tracer.capture_method(capture_response=False, capture_error=False)
    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo:
        """Log in with ``secret``, run a query, and say which server answered.

        ``attempts`` > 1 retries authentication failures (with a short pause) for
        replicas that may not have received a just-made user change yet.
        """
        for attempt in range(1, attempts):
            try:
                return self._login(secret)
            except DatabaseAuthError:
                time.sleep(min(0.25 * 2**attempt, 2.0))
        return self._login(secret)

    @tracer.capture_method(capture_response=False, capture_error=False)
    @contextmanager
    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[MySQLAdminSession]:
        """A session as the admin user, on the admin secret's host or, for an admin
        secret managed by RDS (no host), on the application secret's host."""
        target = admin if admin.host else app
        role = f"admin '{admin.username}' of {admin.secret_id}"
        with self._session(admin, target, role, app.secret_id) as session:
            yield MySQLAdminSession(session, app.secret_id)

    @tracer.capture_method(capture_response=False, capture_error=False)
    @contextmanager
    def own_account(self, candidates: Iterable[DatabaseSecret]) -> Iterator[OwnAccount]:
        """A session as the first candidate login the server accepts; tried one at a
        time, in order, so that a later candidate is not even read when an earlier works."""
        refusals: list[DatabaseAuthError] = []
        with ExitStack() as stack:
            for login in candidates:
                role = f"user '{login.username}'"
                try:
                    session = stack.enter_context(self._session(login, login, role, login.secret_id))
                except DatabaseAuthError as refused:  # the server's answer "not this password"
                    refusals.append(refused)
                    continue
                yield OwnAccount(session, login)
                return
        if not refusals:
            raise ValueError("own_account needs at least one candidate login")
        last = refusals[-1]
        raise DatabaseAuthError(
            last.secret_id, f"{last.problem}; refused with each of the {len(refusals)} passwords tried"
        )

    def _login(self, secret: DatabaseSecret) -> ServerInfo:
        with self._session(secret, secret, f"user '{secret.username}'", secret.secret_id) as session:
            session.scalar("SELECT 1")
            return session.server

    # -- connections --------------------------------------------------------

    def tls_context(self, ca_file: Path, secret_id: str) -> ssl.SSLContext:
        context = self._tls_contexts.get(ca_file)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise DatabaseTLSError(secret_id, f"cannot load CA bundle {ca_file}: {exc.__class__.__name__}") from exc
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._tls_contexts[ca_file] = context
            self.stats["tls_contexts"] += 1
        return context

    @contextmanager
    def _session(self, creds: DatabaseSecret, target: DatabaseSecret, role: str, secret_id: str) -> Iterator[Session]:
        """Connect as ``creds`` to ``target``'s host; errors name ``secret_id``."""
        host = target.host or ""
        where = f"{host}:{target.port}"
        options: dict[str, Any] = {
            "host": host,
            "port": target.port,
            "user": creds.username,
            "password": creds.password,
            "connect_timeout": self._settings.connect_timeout,
            "read_timeout": self._settings.read_timeout,
            "write_timeout": self._settings.read_timeout,
            "charset": "utf8mb4",
            "autocommit": True,
        }
        if target.dbname and target is creds:
            options["database"] = target.dbname
        if target.tls:
            ca_file = Path(target.ssl_ca) if target.ssl_ca else self._settings.ca_bundle
            options["ssl"] = self.tls_context(ca_file, secret_id)
        else:
            options["ssl_disabled"] = True

        self.stats["connections_attempted"] += 1
        try:
            connection = self._connect(**options)
        except pymysql.err.MySQLError as exc:
            raise _connect_error(exc, secret_id, role, where, options.get("database")) from None
        self.stats["connections_ok"] += 1
        if target.tls:
            self.stats["tls_handshakes"] += 1
        try:
            yield Session(connection, secret_id, self.stats)
        finally:
            with suppress(pymysql.err.MySQLError):  # the server already went away
                connection.close()


def _connect_error(
    exc: pymysql.err.MySQLError, secret_id: str, role: str, where: str, dbname: str | None
) -> DatabaseError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    # PyMySQL wraps a socket-level failure (TLS included) in OperationalError 2003
    # and keeps what it wrapped as ``original_exception``.
    cause = getattr(exc, "original_exception", None)
    if isinstance(cause, ssl.SSLCertVerificationError):
        return DatabaseTLSError(
            secret_id, f"TLS verification of {where} failed for {role}: {cause.verify_message or 'untrusted'}"
        )
    if isinstance(cause, ssl.SSLError) or code == 2026:
        return DatabaseTLSError(secret_id, f"TLS handshake with {where} failed for {role} (server must offer TLS)")
    if dbname and code in _NO_DATABASE:
        # The server answers 1044 rather than "unknown database" to an account without
        # privileges, so as not to tell it which databases exist.
        return DatabaseError(
            secret_id,
            f"{role} cannot use database '{dbname}' (the secret's 'dbname') on {where}: it does not exist "
            f"or the user has no privilege on it (error {code})",
        )
    if code in _AUTH_ERRORS:
        blocked = ": blocked after too many failed logins (max_password_errors)" if code == 4150 else ""
        return DatabaseAuthError(secret_id, f"{role} was refused by {where} (error {code}{blocked})")
    if code in _UNREACHABLE or isinstance(cause, OSError):
        return DatabaseUnreachableError(secret_id, f"cannot reach {where} as {role} (error {code})")
    return DatabaseError(secret_id, f"connecting to {where} as {role} failed (error {code})")


class Session:
    """One open connection. Every statement goes through :meth:`execute`."""

    def __init__(self, connection: Connection[Any], secret_id: str, stats: Counter[str]) -> None:
        self._connection = connection
        self._secret_id = secret_id
        self._stats = stats
        self.server = self._read_server_info()

    def execute(self, statement: Statement) -> list[tuple[Any, ...]]:
        self._stats[f"sql_{statement.verb.lower()}"] += 1
        try:
            with self._connection.cursor() as cursor:
                cursor.execute(statement.sql, statement.params or None)
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
            detail = f": {exc.args[1]}" if code in _SAFE_MESSAGES and len(exc.args) > 1 else ""
            label = statement.label or statement.verb
            error = DatabaseUnreachableError if code in _UNREACHABLE else DatabaseError
            raise error(self._secret_id, f"{label} failed (error {code}){detail}") from None

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = self.execute(Statement(sql, params, sql.split(" FROM ", maxsplit=1)[0][:60]))
        return rows[0][0] if rows else None

    def _read_server_info(self) -> ServerInfo:
        row = self.execute(
            Statement(
                "SELECT VERSION(), @@read_only, @@innodb_read_only, @@hostname, @@port, @@server_id",
                (),
                "read server info",
            )
        )[0]
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

    def change_password(self, new_password: str) -> None:
        # MariaDB requires CREATE USER for ALTER USER even on one's own account;
        # MySQL >= 5.7.6 documents ALTER USER USER() for exactly this.
        if self.server.flavor == "mysql" and self.server.version >= (5, 7, 6):
            sql = "ALTER USER USER() IDENTIFIED BY %s"
        else:
            sql = "SET PASSWORD = PASSWORD(%s)"
        self._session.execute(Statement(sql, (new_password,), "set own password"))


class MySQLAdminSession:
    """The admin's view of the users being rotated (the AdminSession port)."""

    def __init__(self, session: Session, secret_id: str) -> None:
        self._session = session
        self._secret_id = secret_id
        self.server = session.server

    def max_username_length(self) -> int:
        length = self._session.scalar(
            "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'"
        )
        return int(length) if length else (80 if self.server.is_mariadb else 32)

    def account_hosts(self, user: str) -> list[str]:
        sql = "SELECT Host FROM mysql.user WHERE User = %s ORDER BY Host"
        if self.server.is_mariadb:  # MariaDB lists roles in mysql.user too
            sql = "SELECT Host FROM mysql.user WHERE User = %s AND is_role = 'N' ORDER BY Host"
        rows = self._session.execute(
            Statement(
                sql,
                (user,),
                f"list hosts of '{user}'",
            )
        )
        return [str(row[0]) for row in rows]

    @tracer.capture_method(capture_response=False, capture_error=False)
    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport:
        """Make ``twin_user`` exist at exactly the hosts of ``source_user``, with
        ``password`` and exactly the same profile at each host."""
        limit = self.max_username_length()
        if len(twin_user) > limit:
            raise UnsupportedDatabaseError(
                self._secret_id, f"user name '{twin_user}' is longer than the server's limit of {limit} characters"
            )
        hosts = self.account_hosts(source_user)
        if not hosts:
            raise SecretMismatchError(self._secret_id, f"user '{source_user}' has no account on this server")
        twin_hosts = set(self.account_hosts(twin_user))
        created: list[Account] = []
        dropped = executed = 0
        try:
            for host in hosts:
                twin = Account(twin_user, host)
                if host in twin_hosts:
                    self._session.execute(self._set_password(twin, password))
                else:
                    self._session.execute(
                        Statement(
                            "CREATE USER %s@%s IDENTIFIED BY %s", (twin_user, host, password), f"create user {twin}"
                        )
                    )
                    created.append(twin)
                for statement in sync_statements(
                    self.read_profile(Account(source_user, host)), self.read_profile(twin), twin
                ):
                    self._session.execute(statement)
                    executed += 1
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
            stray = Account(twin_user, host)
            self._session.execute(Statement("DROP USER %s@%s", (twin_user, host), f"drop user {stray}"))
            dropped += 1
        return SyncReport(tuple(hosts), len(twin_hosts & set(hosts)), len(created), dropped, executed)

    def _drop_quietly(self, accounts: list[Account]) -> int:
        dropped = 0
        for account in accounts:
            with suppress(DatabaseError):
                self._session.execute(
                    Statement("DROP USER %s@%s", (account.user, account.host), f"drop user {account}")
                )
                dropped += 1
        return dropped

    def is_role(self, name: str) -> bool:
        params: tuple[str, ...] = (name,)
        if self.server.is_mariadb:
            sql = "SELECT COUNT(*) FROM mysql.user WHERE User = %s AND is_role = 'Y'"
        elif self.server.version >= (8, 0, 0):
            # MySQL roles are accounts: one granted as a role, or one made by CREATE ROLE
            # (locked, with no password) that nobody holds yet.
            sql = (
                "SELECT (SELECT COUNT(*) FROM mysql.role_edges WHERE FROM_USER = %s)"
                " + (SELECT COUNT(*) FROM mysql.default_roles WHERE DEFAULT_ROLE_USER = %s)"
                " + (SELECT COUNT(*) FROM mysql.user WHERE User = %s AND account_locked = 'Y'"
                " AND authentication_string = '')"
            )
            params = (name, name, name)
        else:
            return False
        return bool(self._session.execute(Statement(sql, params, f"is '{name}' a role"))[0][0])

    @tracer.capture_method(capture_response=False, capture_error=False)
    def verify_twin(self, source_user: str, twin_user: str) -> None:
        """Raise unless the twin exists at the same hosts with the same profile."""
        hosts = self.account_hosts(source_user)
        twin_hosts = self.account_hosts(twin_user)
        problems: list[str] = []
        if hosts != twin_hosts:
            problems.append(f"hosts differ ({', '.join(hosts)} vs {', '.join(twin_hosts) or 'none'})")
        for host in set(hosts) & set(twin_hosts):
            for difference in differences(
                self.read_profile(Account(source_user, host)), self.read_profile(Account(twin_user, host))
            ):
                problems.append(f"@'{host}': {difference}")
        if problems:
            raise PrivilegeMismatchError(
                self._secret_id, f"'{twin_user}' does not match '{source_user}': " + "; ".join(problems[:20])
            )

    @tracer.capture_method(capture_response=False, capture_error=False)
    def account_definition(self, user: str, host: str) -> AccountDefinition:
        """``SHOW CREATE USER`` and ``SHOW GRANTS`` of one account, as printed: testSecret's
        independent reading (rotator.verification). Two statements, nothing else: it must
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
        return AccountDefinition.from_rows(created, grants)

    def _set_password(self, account: Account, password: str) -> Statement:
        if self.server.flavor == "mysql" and self.server.version < (5, 7, 6):
            sql = "SET PASSWORD FOR %s@%s = PASSWORD(%s)"
        else:
            sql = "ALTER USER %s@%s IDENTIFIED BY %s"
        return Statement(sql, (account.user, account.host, password), f"set password of {account}")

    # -- reading a profile ----------------------------------------------------

    def read_profile(self, account: Account) -> AccountProfile:
        user_row = self._user_row(account)
        limits = [(name, user_row[LIMIT_OPTIONS[name]]) for name in self._limit_options] if user_row else []
        return AccountProfile(
            privileges=frozenset(self._privileges(account)),
            roles=frozenset(self._roles(account)),
            default_roles=frozenset(self._default_roles(account, user_row)),
            tls=TlsRequirement(*(_text(user_row[column]) for column in _TLS_COLUMNS)) if user_row else TlsRequirement(),
            limits=tuple((name, value if isinstance(value, Decimal) else int(value)) for name, value in limits),
        )

    # -- read-only questions asked by `rotator check` --------------------------

    def current_account(self) -> Account:
        """The account the server matched this login to (``CURRENT_USER()``)."""
        user, _, host = str(self._session.scalar("SELECT CURRENT_USER()")).rpartition("@")
        return Account(user, host)

    def role_privileges(self, role: Account) -> set[Privilege]:
        """Everything a role holds: its profile, plus (MariaDB) its global privileges."""
        held = set(self.read_profile(role).privileges)
        if self.server.is_mariadb:
            columns = ", ".join(column for column, _ in _GLOBAL_COLUMNS)
            rows = self._session.execute(
                Statement(
                    f"SELECT {columns} FROM mysql.user WHERE User = %s AND Host = %s AND is_role = 'Y'",  # noqa: S608 - constant columns
                    (role.user, role.host),
                    f"read global privileges of role {role}",
                )
            )
            for row in rows[:1]:
                held |= {Privilege(name) for (_, name), value in zip(_GLOBAL_COLUMNS, row, strict=True) if _yes(value)}
        return held

    @property
    def _limit_options(self) -> list[str]:
        return [name for name in LIMIT_OPTIONS if self.server.is_mariadb or name != "MAX_STATEMENT_TIME"]

    def _privileges(self, account: Account) -> Iterator[Privilege]:
        # The four privilege views have one shape: read them in one round trip.
        grantee = f"'{account.user}'@'{account.host}'"
        rows = self._session.execute(Statement(_PRIVILEGES_SQL, (grantee,) * 4, f"read privileges of {account}"))
        for schema, table, column, privilege, grantable in rows:
            if privilege != "USAGE":
                yield Privilege(str(privilege), str(schema), str(table), str(column))
            if grantable == "YES":
                # Grant option belongs to the object; a column grant's object is its table.
                yield Privilege(GRANT_OPTION, str(schema), str(table))
        routines = self._session.execute(
            Statement(
                "SELECT Db, Routine_name, Routine_type, Proc_priv FROM mysql.procs_priv WHERE User = %s AND Host = %s",
                (account.user, account.host),
                f"read routine privileges of {account}",
            )
        )
        for schema, name, routine_type, privileges in routines:
            for privilege in str(privileges).split(","):
                if privilege:
                    kind = GRANT_OPTION if privilege == "Grant" else privilege.upper()
                    yield Privilege(kind, str(schema), str(name), "", str(routine_type))

    def _roles(self, account: Account) -> Iterator[RoleGrant]:
        if self.server.is_mariadb:
            sql = "SELECT Role, '', Admin_option FROM mysql.roles_mapping WHERE User = %s AND Host = %s"
        elif self.server.version >= (8, 0, 0):
            sql = (
                "SELECT FROM_USER, FROM_HOST, WITH_ADMIN_OPTION FROM mysql.role_edges "
                "WHERE TO_USER = %s AND TO_HOST = %s"
            )
        else:
            return
        for role, role_host, admin_option in self._session.execute(
            Statement(sql, (account.user, account.host), f"read roles of {account}")
        ):
            yield RoleGrant(str(role), str(role_host), admin_option == "Y")

    def _default_roles(self, account: Account, user_row: dict[str, Any]) -> Iterator[tuple[str, str]]:
        if self.server.is_mariadb:
            if user_row and user_row["default_role"]:  # MariaDB keeps it in mysql.user
                yield (_text(user_row["default_role"]), "")
            return
        if self.server.version < (8, 0, 0):
            return
        for role, role_host in self._session.execute(
            Statement(
                "SELECT DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST FROM mysql.default_roles WHERE USER = %s AND HOST = %s",
                (account.user, account.host),
                f"read default roles of {account}",
            )
        ):
            yield (str(role), str(role_host))

    def _user_row(self, account: Account) -> dict[str, Any]:
        """The account's row of mysql.user (TLS requirement, limits, MariaDB's default
        role), read once per profile; empty when the account does not exist."""
        columns = [*_TLS_COLUMNS, *(LIMIT_OPTIONS[name] for name in self._limit_options)]
        if self.server.is_mariadb:
            columns.append("default_role")
        rows = self._session.execute(
            Statement(
                f"SELECT {', '.join(columns)} FROM mysql.user WHERE User = %s AND Host = %s",  # noqa: S608 - constant columns
                (account.user, account.host),
                f"read account {account}",
            )
        )
        return dict(zip(columns, rows[0], strict=True)) if rows else {}


# mysql.user's global privilege columns (MariaDB 10.4+) and the names
# information_schema gives the same privileges.
_GLOBAL_COLUMNS = (
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("Reload_priv", "RELOAD"),
    ("Shutdown_priv", "SHUTDOWN"),
    ("Process_priv", "PROCESS"),
    ("File_priv", "FILE"),
    ("Grant_priv", GRANT_OPTION),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Show_db_priv", "SHOW DATABASES"),
    ("Super_priv", "SUPER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Execute_priv", "EXECUTE"),
    ("Repl_slave_priv", "REPLICATION SLAVE"),
    ("Repl_client_priv", "BINLOG MONITOR"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Create_user_priv", "CREATE USER"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Create_tablespace_priv", "CREATE TABLESPACE"),
)


_TLS_COLUMNS = ("ssl_type", "ssl_cipher", "x509_issuer", "x509_subject")
_PRIVILEGES_SQL = " UNION ALL ".join(
    f"SELECT {columns}, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.{view} WHERE GRANTEE = %s"  # noqa: S608
    for columns, view in (
        ("'', '', ''", "USER_PRIVILEGES"),
        ("TABLE_SCHEMA, '', ''", "SCHEMA_PRIVILEGES"),
        ("TABLE_SCHEMA, TABLE_NAME, ''", "TABLE_PRIVILEGES"),
        ("TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME", "COLUMN_PRIVILEGES"),
    )
)


def _yes(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    return str(value).upper() == "Y"


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
