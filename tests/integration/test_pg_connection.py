"""The PostgreSQL backend's logins on real servers (15 and 18): verify-full TLS against the
CA bundle or a typed refusal (never plaintext), SCRAM verifiers made by the function,
driver failures as rotator's typed errors, and no password in any error or log line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rotator.backends.postgresql.admin import admin_session, own_account
from rotator.backends.postgresql.connection import PostgreSQLDatabase
from rotator.errors import (
    AccountLockedError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    InsufficientPrivilegeError,
)
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from tests.support.postgresql import PostgreSQLServer, connect, password_literal
from tests.support.servers import free_port, make_pki
from tests.support.world import new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pg-app-AbCdEf"
ADMIN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pg-master-AbCdEf"


def pg_secret(
    user: str,
    password: str,
    *,
    host: str = "127.0.0.1",
    port: int,
    dbname: str | None = None,
    secret_id: str = SECRET,
    **extra: Any,
) -> DatabaseSecret:
    """A PostgreSQL secret as AWS's structure has it (``DatabaseSecret.parse`` does not know
    the engine yet: the core's registry is i23's)."""
    raw = {"engine": "postgres", "username": user, "password": password, "host": host, "port": port, **extra}
    if dbname:
        raw["dbname"] = dbname
    return DatabaseSecret(
        secret_id=secret_id,
        username=user,
        password=password,
        host=host,
        port=port,
        dbname=dbname,
        engine="postgres",
        masterarn=None,
        tls=extra.get("ssl", True) is not False,
        ssl_ca=extra.get("ssl_ca"),
        strategy="single-user",
        raw=json.loads(json.dumps(raw)),
    )


def backend(ca_file: Path) -> PostgreSQLDatabase:
    return PostgreSQLDatabase(Settings.from_env({"ROTATOR_CA_BUNDLE": str(ca_file), "DB_CONNECT_TIMEOUT": "2"}))


@pytest.fixture
def app(pg: PostgreSQLServer) -> Iterator[tuple[str, str]]:
    password = new_password()
    pg.sql(f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
    yield "app", password


def login(db: PostgreSQLDatabase, secret: DatabaseSecret, database: str = "postgres") -> Any:
    return db.session(
        secret,
        host=secret.host or "",
        port=secret.port,
        database=database,
        role=f"user '{secret.username}'",
        secret_id=secret.secret_id,
    )


def try_login(db: PostgreSQLDatabase, secret: DatabaseSecret, database: str = "postgres") -> None:
    with login(db, secret, database):
        pass


def test_verify_full_logs_in_with_scram_and_identifies_the_server(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """A login verifies the certificate and the host name against the bundle, authenticates
    by SCRAM (with channel binding) and reads which server answered."""
    user, password = app
    db = backend(pg.pki.ca_file)
    with login(db, pg_secret(user, password, port=pg.port)) as session:
        assert session.server.flavor == "postgresql"
        assert session.server.version[0] == pg.major
        assert session.features.version_num == pg.server_version_num
        assert session.server.read_only is False and session.in_recovery is False
        assert session.server.identity == ("127.0.0.1", pg.port, pg.server_version_num)
        assert session.scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    assert db.stats["tls_handshakes"] == 1 and db.stats["connections_ok"] == 1
    db2 = backend(pg.pki.ca_file)
    try_login(db2, pg_secret(user, password, port=pg.port))
    try_login(db2, pg_secret(user, password, port=pg.port))
    assert db2.stats["tls_contexts"] == 1, "one TLS context per CA file, reused"


def test_a_wrong_host_name_or_ca_is_refused_typed(pg: PostgreSQLServer, app: tuple[str, str], tmp_path: Path) -> None:
    """The certificate names 127.0.0.1 only: dialling ``localhost`` fails verification; a
    bundle without the server's CA fails too. Both typed, before any password is sent."""
    user, password = app
    with pytest.raises(DatabaseTLSError, match="TLS verification of localhost"):
        try_login(backend(pg.pki.ca_file), pg_secret(user, password, host="localhost", port=pg.port))
    other = make_pki(tmp_path / "other", "another CA")
    with pytest.raises(DatabaseTLSError, match=r"TLS verification of 127\.0\.0\.1"):
        try_login(backend(other.ca_file), pg_secret(user, password, port=pg.port))


def test_a_server_without_tls_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    """A server that offers no TLS (and would accept the login in plaintext) gets the
    SSLRequest, answers "N", and the backend stops there: typed, no plaintext login
    (the server's log shows no authentication attempt)."""
    with PostgreSQLServer(tmp_path / "plain", tls=False, major=15) as plain:
        password = new_password()
        plain.sql(f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
        plain.sql("ALTER SYSTEM SET log_connections = on")
        plain.sql("SELECT pg_reload_conf()")
        with pytest.raises(DatabaseTLSError, match="does not offer TLS"):
            try_login(backend(plain.pki.ca_file), pg_secret("app", password, port=plain.port))
        assert "user=app" not in plain.log.read_text(), "a plaintext startup message reached the server"


def test_ssl_false_in_a_secret_is_refused(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """``"ssl": false`` cannot turn verification off for PostgreSQL: refused, typed."""
    user, password = app
    with pytest.raises(DatabaseTLSError, match="always use verified TLS"):
        try_login(backend(pg.pki.ca_file), pg_secret(user, password, port=pg.port, ssl=False))


def test_driver_failures_are_typed_and_never_carry_the_password(
    pg: PostgreSQLServer, app: tuple[str, str], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """28P01 (wrong password) -> DatabaseAuthError; NOLOGIN (28000 after the password) ->
    AccountLockedError; 3D000 -> DatabaseError; a closed port -> DatabaseUnreachableError;
    42501 in a session -> InsufficientPrivilegeError. No message, log line or output
    holds a password."""
    caplog.set_level(logging.DEBUG)
    user, password = app
    db = backend(pg.pki.ca_file)
    wrong = new_password()
    errors: list[BaseException] = []
    with pytest.raises(DatabaseAuthError, match="28P01") as refused:
        try_login(db, pg_secret(user, wrong, port=pg.port))
    assert type(refused.value) is DatabaseAuthError
    errors.append(refused.value)
    pg.sql("CREATE ROLE nologin NOLOGIN PASSWORD " + password_literal(password))
    with pytest.raises(AccountLockedError, match="NOLOGIN") as locked:
        try_login(db, pg_secret("nologin", password, port=pg.port))
    errors.append(locked.value)
    with pytest.raises(DatabaseError, match="does not exist") as missing:
        try_login(db, pg_secret(user, password, port=pg.port), database="nowhere")
    errors.append(missing.value)
    with pytest.raises(DatabaseUnreachableError) as unreachable:
        try_login(db, pg_secret(user, password, port=free_port()))
    errors.append(unreachable.value)
    pg.sql("CREATE TABLE private (id int)")
    with login(db, pg_secret(user, password, port=pg.port)) as session:
        with pytest.raises(InsufficientPrivilegeError, match="42501") as denied:
            session.rows("SELECT * FROM private", (), "read private")
        errors.append(denied.value)
        assert session.scalar("SELECT 1") == 1, "the session survives a refused statement"
    captured = capfd.readouterr()
    text = "\n".join(str(e) + repr(e.__cause__) for e in errors) + caplog.text + captured.out + captured.err
    for secret in (password, wrong):
        assert secret not in text


def test_the_admin_sets_a_scram_verifier_and_the_password_never_reaches_the_server(
    pg: PostgreSQLServer, app: tuple[str, str]
) -> None:
    """The admin-driven same-user change (RDS Proxy): ``ALTER ROLE … PASSWORD`` carries a
    verifier made by the function; pg_authid holds ``SCRAM-SHA-256$4096:…``, the new
    password logs in, the old one not, and the server's statement log (log_statement =
    all) never saw the password."""
    user, old = app
    master_password = new_password()
    pg.rds_master("master", master_password)
    pg.sql("GRANT app TO master WITH ADMIN OPTION" if pg.major >= 16 else "SELECT 1")
    pg.sql("ALTER ROLE master SET log_statement = 'all'")
    db = backend(pg.pki.ca_file)
    admin = pg_secret("master", master_password, port=pg.port, secret_id=ADMIN)
    new = new_password()
    with admin_session(db, admin, pg_secret(user, old, port=pg.port)) as session:
        session.set_password(user, new)
    (stored,) = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")[0]
    assert str(stored).startswith("SCRAM-SHA-256$4096:")
    connect(pg, user, new).close()
    with pytest.raises(DatabaseAuthError):
        try_login(db, pg_secret(user, old, port=pg.port))
    log = pg.log.read_text()
    assert "ALTER ROLE" in log, "the statement log is on"
    assert new not in log and master_password not in log


def test_a_user_changes_its_own_password_from_inside_the_owner_role(pg: PostgreSQLServer) -> None:
    """Single user without an admin: the session runs as the owner role (``role``
    setting), yet the change applies to the login role, and the session returns to the
    owner role afterwards."""
    password = new_password()
    pg.sql("CREATE ROLE app_owner NOLOGIN")
    pg.sql(f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
    pg.sql("GRANT app_owner TO app")
    pg.sql("ALTER ROLE app SET role = 'app_owner'")
    db = backend(pg.pki.ca_file)
    new = new_password()
    with own_account(db, pg_secret("app", password, port=pg.port)) as own:
        own.change_password(new)
        assert own._session.scalar("SELECT current_user::text") == "app_owner"
    connect(pg, "app", new).close()
    (stored,) = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")[0]
    assert str(stored).startswith("SCRAM-SHA-256$")
    assert pg.sql("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'app_owner'")[0][0] is True
