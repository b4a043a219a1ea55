"""Logins to PostgreSQL (Aurora PostgreSQL, RDS for PostgreSQL) with pg8000: always TLS
verified against the CA bundle (certificate and host name: libpq's ``verify-full``),
SCRAM-SHA-256 only, and every driver failure turned into :mod:`rotator.errors` here.

How the connection is made, and why (docs/postgresql.md, "Driver" and "The backend"):

- pg8000 is imported on the first PostgreSQL login only: a MySQL cold start does not
  pay its ~25 ms.
- The socket is ours: ``socket.create_connection`` with our connect timeout and
  ``TCP_NODELAY`` (pg8000's own socket leaves Nagle's algorithm on: +40 ms per login).
- TLS is negotiated here, not by the driver: the SSLRequest is sent on that socket and
  the server's answer read; ``N`` (no TLS) is a :class:`DatabaseTLSError` and nothing
  else is sent — there is no code path that continues in plaintext. The socket is
  wrapped with the container's one :class:`ssl.SSLContext` (``CERT_REQUIRED``, host name
  checked against the name we dialled) and only then handed to pg8000 with
  ``ssl_context=False`` ("already done"); pg8000 sees a TLS socket and uses SCRAM's
  channel binding (SCRAM-SHA-256-PLUS) on it.
- The authentication the server asks for is checked before the driver answers it:
  SCRAM-SHA-256 only. A request for the password in clear (``password`` in pg_hba) is
  :class:`CleartextAuthError` and one for MD5 :class:`UnsupportedDatabaseError`, with
  nothing sent.
- The SQLSTATE of a server error is ``exc.args[0]["C"]``; the server's message is
  copied only for SQLSTATEs whose text names roles and objects (``_SAFE_MESSAGES``),
  because a syntax error quotes the statement, and a password change's statement holds
  a verifier. No statement text, password or connection string is put in any error.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from pathlib import Path
from typing import Any

from rotator.backends.common import TLSContexts
from rotator.backends.postgresql.features import Features
from rotator.backends.postgresql.sql import Statement
from rotator.errors import (
    AccountLockedError,
    CleartextAuthError,
    ConcurrentChangeError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    EngineMismatchError,
    InsufficientPrivilegeError,
    PrivilegeMismatchError,
    UnsupportedDatabaseError,
)
from rotator.ports import ServerInfo
from rotator.secret import DatabaseSecret
from rotator.settings import Settings

# The SSLRequest message: length 8, code 80877103 (PostgreSQL protocol, "SSL Session Encryption").
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
# Authentication request codes (AuthenticationOk, SASL, SASLContinue, SASLFinal): SCRAM.
_SCRAM_CODES = frozenset({0, 10, 11, 12})
_CLEARTEXT, _MD5 = 3, 5

# SQLSTATEs whose server message names only roles, objects and privileges.
_SAFE_MESSAGES = frozenset(
    {"42501", "42704", "0LP01", "0L000", "2BP01", "3D000", "28000", "55006", "42710", "0P000", "22023"}
)
# The server is there but cannot take the session now.
_UNREACHABLE = frozenset({"53300", "57P01", "57P02", "57P03", "08006", "08001", "08004"})
# A GRANT that granted nothing (the grantor holds the privilege without grant option):
# the server only warns. Raised as an error: a copy must never be silently short.
_NOT_GRANTED = frozenset({"01007", "01006"})
# Two sessions changing one role at once: serialization failure, deadlock, and XX000, which
# is how an ALTER ROLE racing another ALTER ROLE of the same role fails ("tuple concurrently
# updated"; a duplicate setSecret delivery). The other session's change may stand.
_CONCURRENT = frozenset({"40001", "40P01", "XX000"})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a pg8000 DatabaseError (``args[0]`` is the server's fields)."""
    fields = exc.args[0] if exc.args else None
    return str(fields.get("C")) if isinstance(fields, dict) and fields.get("C") else None


def _field(exc: BaseException, key: str) -> str:
    fields = exc.args[0] if exc.args else None
    return str(fields.get(key, "")) if isinstance(fields, dict) else ""


class _WeakAuthenticationError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@cache
def _driver() -> Any:
    """pg8000's native connection, refusing every authentication but SCRAM (imported here,
    on the first PostgreSQL login)."""
    import pg8000.native  # noqa: PLC0415  (lazy: a MySQL cold start never imports it)

    class Connection(pg8000.native.Connection):  # type: ignore[misc]
        def handle_AUTHENTICATION_REQUEST(self, data: bytes, context: Any) -> None:
            (code,) = struct.unpack("!i", data[:4])
            if code not in _SCRAM_CODES:
                raise _WeakAuthenticationError(code)
            super().handle_AUTHENTICATION_REQUEST(data, context)

    return Connection


def _driver_errors() -> tuple[type[Exception], type[Exception]]:
    import pg8000.exceptions  # noqa: PLC0415

    return pg8000.exceptions.DatabaseError, pg8000.exceptions.InterfaceError


class PostgreSQLDatabase:
    """Opens verified-TLS SCRAM sessions. One instance per warm container: it keeps one
    TLS context per CA file (a context with the 100+ certificate RDS bundle costs tens of
    milliseconds to build)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.stats: Counter[str] = Counter()
        self.tls_contexts = TLSContexts(self.stats)

    @contextmanager
    def session(
        self, creds: DatabaseSecret, *, host: str, port: int, database: str, role: str, secret_id: str
    ) -> Iterator[Session]:
        """A session as ``creds`` at ``host:port`` in ``database``; errors name ``secret_id``
        and ``role`` (words such as "admin 'master' of <arn>"), never the password."""
        where = f"{host}:{port}"
        if not creds.tls:
            raise DatabaseTLSError(
                secret_id,
                f'the secret says "ssl": false, but PostgreSQL logins always use verified TLS '
                f"(remove the key or set it to true); nothing was sent to {where}",
            )
        ca_file = Path(creds.ssl_ca) if creds.ssl_ca else self._settings.ca_bundle
        context = self.tls_contexts.get(ca_file, secret_id)
        self.stats["connections_attempted"] += 1
        tls_sock = self._tls_socket(context, host, port, role, secret_id)
        database_error, interface_error = _driver_errors()
        try:
            tls_sock.settimeout(self._settings.read_timeout)
            connection = _driver()(
                creds.username,
                host=host,
                port=port,
                database=database,
                password=creds.password,
                sock=tls_sock,
                ssl_context=False,  # TLS is already up (above): the driver must not negotiate
                application_name="rotator",
            )
        except _WeakAuthenticationError as exc:
            tls_sock.close()
            if exc.code == _CLEARTEXT:
                raise CleartextAuthError(
                    secret_id,
                    f"{where} asked {role} for the password in clear (pg_hba method 'password'): refused, "
                    "nothing was sent (rotator logs in with SCRAM-SHA-256 only)",
                ) from None
            raise UnsupportedDatabaseError(
                secret_id,
                f"{where} asked {role} for authentication method {exc.code}"
                f"{' (MD5)' if exc.code == _MD5 else ''}: refused, nothing was sent "
                "(rotator logs in with SCRAM-SHA-256 only; set password_encryption = scram-sha-256 and "
                "the password again, and use scram-sha-256 in pg_hba)",
            ) from None
        except database_error as exc:
            tls_sock.close()
            raise _login_error(exc, secret_id, role, where, database) from None
        except (interface_error, OSError) as exc:
            tls_sock.close()
            raise DatabaseUnreachableError(
                secret_id, f"the session of {role} with {where} failed during login ({type(exc).__name__})"
            ) from None
        self.stats["connections_ok"] += 1
        try:
            yield Session(connection, secret_id, self.stats, where)
        finally:
            with suppress(Exception):  # the server may have gone already
                connection.close()

    def _tls_socket(self, context: ssl.SSLContext, host: str, port: int, role: str, secret_id: str) -> ssl.SSLSocket:
        """A TCP connection with TLS up and the server verified, or a typed error: the one
        place a PostgreSQL login's transport is decided."""
        where = f"{host}:{port}"
        try:
            raw = socket.create_connection((host, port), timeout=self._settings.connect_timeout)
        except OSError as exc:
            raise DatabaseUnreachableError(
                secret_id, f"cannot reach {where} as {role} ({type(exc).__name__})"
            ) from None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            raw.sendall(_SSL_REQUEST)
            answer = raw.recv(1)
            if answer not in (b"S", b"N"):
                # A PostgreSQL server answers the SSLRequest with one byte, S or N; anything
                # else (a MySQL server's greeting, which it sends unasked) is another engine.
                raise EngineMismatchError(
                    secret_id,
                    f"the secret's engine is PostgreSQL, but {where} did not answer as a PostgreSQL server "
                    f"(to {role}'s SSLRequest); nothing was sent",
                )
            if answer != b"S":
                # "N": the server offers no TLS. Nothing is sent in plaintext: we stop here.
                raise DatabaseTLSError(
                    secret_id,
                    f"{where} does not offer TLS to {role} (answer {answer!r} to the SSLRequest): "
                    "refused, nothing was sent (rotator never logs in without verified TLS)",
                )
            tls = context.wrap_socket(raw, server_hostname=host)
        except (DatabaseTLSError, EngineMismatchError):
            raw.close()
            raise
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            raise DatabaseTLSError(
                secret_id, f"TLS verification of {where} failed for {role}: {exc.verify_message or 'untrusted'}"
            ) from None
        except ssl.SSLError as exc:
            raw.close()
            raise DatabaseTLSError(
                secret_id, f"TLS handshake with {where} failed for {role} ({exc.reason or type(exc).__name__})"
            ) from None
        except OSError as exc:
            raw.close()
            raise DatabaseUnreachableError(
                secret_id, f"cannot reach {where} as {role} during the TLS handshake ({type(exc).__name__})"
            ) from None
        self.stats["tls_handshakes"] += 1
        return tls


def _login_error(exc: BaseException, secret_id: str, role: str, where: str, database: str) -> DatabaseError:
    code = sqlstate(exc) or "?"
    if code == "28P01":
        # A wrong password, a role that does not exist, or a VALID UNTIL in the past: the
        # server answers all three alike (its log says which).
        return DatabaseAuthError(secret_id, f"{role} was refused by {where} (SQLSTATE 28P01: authentication failed)")
    if code == "28000":
        if _field(exc, "R") == "InitializeSessionUserId":
            # Checked after the password: it was right, but the role has NOLOGIN.
            return AccountLockedError(
                secret_id,
                f"{role} was refused by {where}: the role may not log in (NOLOGIN, SQLSTATE 28000); "
                "ALTER ROLE … LOGIN if that is not deliberate",
            )
        return DatabaseAuthError(
            secret_id, f"{role} was refused by {where} before authentication (pg_hba.conf, SQLSTATE 28000)"
        )
    if code == "3D000":
        return DatabaseError(secret_id, f"{role} cannot use database '{database}' on {where}: it does not exist")
    if code in _UNREACHABLE:
        return DatabaseUnreachableError(secret_id, f"{where} cannot take a session of {role} now (SQLSTATE {code})")
    return DatabaseError(secret_id, f"login of {role} to {where} failed (SQLSTATE {code})")


class Session:
    """One open connection, in autocommit; every statement goes through :meth:`execute`."""

    def __init__(self, connection: Any, secret_id: str, stats: Counter[str], where: str) -> None:
        self._connection = connection
        self.secret_id = secret_id
        self._stats = stats
        self.where = where
        self._in_transaction = False
        row = self.execute(
            Statement(
                "SELECT current_setting('server_version_num')::int, current_setting('server_version'), "
                "pg_is_in_recovery(), current_setting('transaction_read_only') = 'on', "
                "coalesce(host(inet_server_addr()), ''), coalesce(inet_server_port(), 0), "
                "session_user::text, current_database()",
                (),
                "read server info",
            )
        )[0]
        self.features = Features(int(row[0]))
        self.in_recovery = bool(row[2])
        self.session_user = str(row[6])
        self.database = str(row[7])
        version_string = str(row[1])
        numbers = [int(part) if part.isdigit() else 0 for part in version_string.split(maxsplit=1)[0].split(".")]
        self.server = ServerInfo(
            flavor="postgresql",
            version=(self.features.major, numbers[1] if len(numbers) > 1 else 0, 0),
            version_string=version_string,
            read_only=bool(row[2]) or bool(row[3]),
            identity=(str(row[4]), int(row[5]), int(row[0])),
        )

    def execute(self, statement: Statement) -> list[tuple[Any, ...]]:
        """Run one statement (extended protocol, values bound as $n); its rows."""
        self._stats[f"sql_{statement.verb.lower()}"] += 1
        database_error, interface_error = _driver_errors()
        self._connection.notices.clear()
        try:
            context = self._connection.execute_unnamed(statement.sql, vals=statement.params)
        except database_error as exc:
            raise self._statement_error(exc, statement) from None
        except (interface_error, OSError) as exc:
            raise DatabaseUnreachableError(
                self.secret_id, f"{statement.describe()} failed: connection to {self.where} lost ({type(exc).__name__})"
            ) from None
        for notice in list(self._connection.notices):
            if isinstance(notice, dict) and notice.get("C") in _NOT_GRANTED:
                raise PrivilegeMismatchError(
                    self.secret_id,
                    f"{statement.describe()}: the server granted less than asked (SQLSTATE {notice.get('C')}: "
                    f"{notice.get('M', '')}); the admin holds the privilege without GRANT OPTION",
                )
        rows = context.rows or []
        return [tuple(row) for row in rows]

    def _statement_error(self, exc: BaseException, statement: Statement) -> DatabaseError:
        code = sqlstate(exc) or "?"
        detail = f": {_field(exc, 'M')}" if code in _SAFE_MESSAGES else ""
        problem = f"{statement.describe()} failed (SQLSTATE {code}){detail}"
        if code == "42501":
            return InsufficientPrivilegeError(self.secret_id, problem)
        if code in _UNREACHABLE:
            return DatabaseUnreachableError(self.secret_id, problem)
        if code in _CONCURRENT:
            return ConcurrentChangeError(self.secret_id, problem)
        return DatabaseError(self.secret_id, problem)

    def rows(self, sql: str, params: tuple[Any, ...] = (), label: str = "") -> list[tuple[Any, ...]]:
        return self.execute(Statement(sql, params, label or sql.split(" FROM ", maxsplit=1)[0][:60]))

    def scalar(self, sql: str, params: tuple[Any, ...] = (), label: str = "") -> Any:
        found = self.rows(sql, params, label)
        return found[0][0] if found else None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction: all of it or nothing (PostgreSQL's DDL and role changes are
        transactional). Not nested."""
        if self._in_transaction:
            yield
            return
        self.execute(Statement("BEGIN", (), "BEGIN"))
        self._in_transaction = True
        try:
            yield
        except BaseException:
            with suppress(DatabaseError):
                self.execute(Statement("ROLLBACK", (), "ROLLBACK"))
            raise
        finally:
            self._in_transaction = False
        self.execute(Statement("COMMIT", (), "COMMIT"))
