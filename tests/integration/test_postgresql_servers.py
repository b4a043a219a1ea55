"""The private PostgreSQL servers themselves (tests/support/postgresql.py), on 15 and 18:
what later PostgreSQL tests of rotator rely on — a certificate that only verifies against
the run's CA and for 127.0.0.1, SCRAM-SHA-256 as the only way in over TCP, no plaintext,
and a lifecycle the fault matrix can drive (crash, restart, freeze).

These run before rotator has a PostgreSQL backend (issue 22), so they talk to the
servers with the driver alone (pg8000, the one docs/postgresql.md chose).
"""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import pg8000.dbapi
import pytest

from tests.support.families import private_server
from tests.support.postgresql import PostgreSQLServer, connect, password_literal, quote_ident, scram_verifier
from tests.support.servers import make_pki
from tests.support.world import new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


@pytest.fixture
def app(pg: PostgreSQLServer) -> tuple[str, str]:
    """A login role with a password (stored as a SCRAM verifier, as the server is set)."""
    password = new_password()
    pg.sql(f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
    return "app", password


def sqlstate(exc: BaseException) -> str:
    """pg8000 carries the server's ErrorResponse fields as a dict: C is the SQLSTATE."""
    assert isinstance(exc, pg8000.dbapi.DatabaseError), exc
    fields = exc.args[0]
    assert isinstance(fields, dict)
    return str(fields["C"])


def whoami(connection: pg8000.dbapi.Connection) -> tuple[str, bool, str]:
    cursor = connection.cursor()
    cursor.execute("SELECT current_user, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    user, tls, version = cursor.fetchone()
    return str(user), bool(tls), str(version)


# -- TLS -------------------------------------------------------------------------------


def test_verify_full_against_the_generated_ca(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """A client that verifies the certificate and the host name (127.0.0.1) logs in over TLS."""
    connection = connect(pg, *app)
    try:
        user, tls, version = whoami(connection)
    finally:
        connection.close()
    assert (user, tls) == ("app", True)
    assert version in {"TLSv1.2", "TLSv1.3"}


def test_another_ca_is_refused(pg: PostgreSQLServer, app: tuple[str, str], tmp_path: Path) -> None:
    """A CA that did not sign the server's certificate fails the handshake: nothing is sent."""
    other = make_pki(tmp_path / "other", common_name="another CA")
    context = ssl.create_default_context(cafile=str(other.ca_file))
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        pg8000.dbapi.connect(user=app[0], password=app[1], host=pg.host, port=pg.port, ssl_context=context, timeout=5)


def test_another_host_name_is_refused(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """The certificate names IP 127.0.0.1 only: the same server reached as "localhost" fails."""
    context = ssl.create_default_context(cafile=str(pg.pki.ca_file))
    with pytest.raises(ssl.SSLCertVerificationError, match="match"):
        pg8000.dbapi.connect(
            user=app[0], password=app[1], host="localhost", port=pg.port, ssl_context=context, timeout=5
        )


def test_plaintext_is_refused_by_pg_hba(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """Without TLS the server refuses the login whatever the password (28000, from pg_hba)."""
    with pytest.raises(pg8000.dbapi.DatabaseError) as refused:
        pg8000.dbapi.connect(user=app[0], password=app[1], host=pg.host, port=pg.port, ssl_context=False, timeout=5)
    assert sqlstate(refused.value) == "28000"
    assert "no encryption" in str(refused.value)


def test_a_server_without_tls_is_refused_by_the_client(pg: PostgreSQLServer, tmp_path: Path) -> None:
    """tls=False makes a server that offers no TLS: a client that requires it stops before
    authenticating (pg8000 with an SSLContext never falls back to plaintext)."""
    with private_server(pg.name, tmp_path / "plain", tls=False) as plain:
        assert isinstance(plain, PostgreSQLServer)
        password = new_password()
        plain.sql(f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
        with pytest.raises(pg8000.dbapi.InterfaceError, match="Server refuses SSL"):
            connect(plain, "app", password)
        # The same login without TLS works there: the refusal above is the client's.
        plaintext = pg8000.dbapi.connect(
            user="app",
            password=password,
            host=plain.host,
            port=plain.port,
            database="postgres",
            ssl_context=False,
            timeout=5,
        )
        try:
            assert whoami(plaintext)[:2] == ("app", False)
        finally:
            plaintext.close()


# -- SCRAM-SHA-256 --------------------------------------------------------------------


def test_passwords_are_stored_and_checked_as_scram(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """The stored secret is a SCRAM-SHA-256 verifier; the right password logs in, a wrong
    one gets 28P01 (invalid_password)."""
    (stored,) = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'app'")[0]
    assert str(stored).startswith("SCRAM-SHA-256$4096:")
    with pytest.raises(pg8000.dbapi.DatabaseError) as refused:
        connect(pg, app[0], app[1] + "x")
    assert sqlstate(refused.value) == "28P01"
    connect(pg, *app).close()


def test_password_set_by_the_server_is_scram_too(pg: PostgreSQLServer) -> None:
    """password_encryption = scram-sha-256: a password given in clear is stored as SCRAM."""
    password = new_password()
    pg.sql("CREATE ROLE plainset LOGIN PASSWORD '{}'".format(password.replace("'", "''")))
    (stored,) = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'plainset'")[0]
    assert str(stored).startswith("SCRAM-SHA-256$")
    connect(pg, "plainset", password).close()


def test_an_md5_password_cannot_log_in(pg: PostgreSQLServer) -> None:
    """pg_hba says scram-sha-256: a role whose password is stored as MD5 is refused, so every
    TCP login that works here has done SCRAM."""
    password = new_password()
    connection = pg.root()
    try:
        cursor = connection.cursor()
        cursor.execute("SET password_encryption = 'md5'")
        cursor.execute("CREATE ROLE md5user LOGIN PASSWORD '{}'".format(password.replace("'", "''")))
    finally:
        connection.close()
    (stored,) = pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'md5user'")[0]
    assert str(stored).startswith("md5")
    with pytest.raises(pg8000.dbapi.DatabaseError) as refused:
        connect(pg, "md5user", password)
    assert sqlstate(refused.value) == "28P01"


def test_channel_binding_is_used_over_tls(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """Over TLS the server offers SCRAM-SHA-256-PLUS and the client binds the exchange to
    the server's certificate (tls-server-end-point): a man in the middle with another
    certificate could not replay it."""
    connection = connect(pg, *app)
    try:
        assert connection._usock.version() in {"TLSv1.2", "TLSv1.3"}
        assert connection.auth.mechanism_name == "SCRAM-SHA-256-PLUS"
    finally:
        connection.close()


def test_a_client_made_verifier_logs_in(pg: PostgreSQLServer) -> None:
    """A verifier computed by the client (the password never in the statement) is stored as
    given and accepts the password it was made from."""
    password = new_password()
    verifier = scram_verifier(password)
    pg.sql(f"CREATE ROLE made LOGIN PASSWORD '{verifier}'")
    assert pg.sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'made'")[0][0] == verifier
    connect(pg, "made", password).close()


def test_root_has_no_way_in_over_tcp(pg: PostgreSQLServer) -> None:
    """The suite's superuser logs in by peer on the socket only: over TCP it has no password."""
    with pytest.raises(pg8000.dbapi.DatabaseError) as refused:
        connect(pg, "root", "")
    assert sqlstate(refused.value) == "28P01"
    assert pg.sql("SELECT current_user")[0][0] == "root"


# -- lifecycle --------------------------------------------------------------------------


def test_kill_ends_every_session_and_restart_recovers(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """SIGKILL takes the postmaster and its backends at once (an open session breaks);
    after a restart the server has recovered every committed change."""
    pg.sql(f"GRANT CREATE ON SCHEMA public TO {quote_ident(app[0])}")
    session = connect(pg, *app)
    session.autocommit = True
    session.cursor().execute("CREATE TABLE survivor (id int)")
    old_pid = pg.pid
    pg.kill()
    assert not pg.running
    with pytest.raises(pg8000.dbapi.InterfaceError):
        session.cursor().execute("SELECT 1")
    pg.start()
    assert pg.pid != old_pid
    again = connect(pg, *app)
    try:
        cursor = again.cursor()
        cursor.execute("SELECT count(*) FROM survivor")
        assert cursor.fetchone()[0] == 0
    finally:
        again.close()


def test_restart_is_a_clean_shutdown(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """stop() is a fast shutdown: open sessions are ended (57P01), not waited for."""
    session = connect(pg, *app)
    started = time.monotonic()
    pg.restart()
    assert time.monotonic() - started < 15
    with pytest.raises((pg8000.dbapi.InterfaceError, pg8000.dbapi.DatabaseError)):
        session.cursor().execute("SELECT 1")
    connect(pg, *app).close()
    assert "database system was shut down" in pg.log.read_text()


def test_pause_freezes_open_and_new_sessions(pg: PostgreSQLServer, app: tuple[str, str]) -> None:
    """pause() stops every process of the server: an open session's query and a new login
    both wait until resume(), then complete."""
    session = connect(pg, *app)
    results: dict[str, object] = {}

    def query() -> None:
        cursor = session.cursor()
        cursor.execute("SELECT 42")
        results["open"] = cursor.fetchone()[0]

    pg.pause()
    try:
        waiting = threading.Thread(target=query)
        waiting.start()
        # pg8000 lets the socket's own timeout through here (TimeoutError), not InterfaceError.
        with pytest.raises(TimeoutError):
            pg8000.dbapi.connect(
                user=app[0],
                password=app[1],
                host=pg.host,
                port=pg.port,
                ssl_context=ssl.create_default_context(cafile=str(pg.pki.ca_file)),
                timeout=1,
            )
        waiting.join(0.5)
        assert waiting.is_alive(), "the open session answered while the server was paused"
    finally:
        pg.resume()
    waiting.join(10)
    assert results == {"open": 42}
    session.close()
    connect(pg, *app).close()


def test_rds_like_master_is_not_a_superuser(pg: PostgreSQLServer) -> None:
    """rds_master() makes what Aurora's master user is: CREATEROLE and CREATEDB, a member of
    rds_superuser with ADMIN OPTION, no superuser."""
    password = new_password()
    pg.rds_master("master", password)
    connection = connect(pg, "master", password)
    try:
        cursor = connection.cursor()
        cursor.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolinherit FROM pg_roles WHERE rolname = current_user"
        )
        assert tuple(cursor.fetchone()) == (False, True, True, True)
        cursor.execute("SELECT pg_has_role('rds_superuser', 'MEMBER'), pg_has_role('rds_superuser', 'USAGE')")
        assert tuple(cursor.fetchone()) == (True, True)
        with pytest.raises(pg8000.dbapi.DatabaseError) as refused:
            cursor.execute("SELECT rolpassword FROM pg_authid LIMIT 1")
        assert sqlstate(refused.value) == "42501"
    finally:
        connection.close()


# -- what single-user rotation relies on ---------------------------------------------------------


def test_a_password_change_applies_at_commit_and_spares_open_sessions(pg: PostgreSQLServer) -> None:
    """One password per role: until the change commits, only the old password logs in;
    from the commit on, only the new one. Sessions opened before are never asked again."""
    master_password, old, new = new_password(), new_password(), new_password()
    pg.rds_master("master", master_password)
    admin = connect(pg, "master", master_password)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE ROLE app LOGIN PASSWORD {password_literal(old)}")
    admin.autocommit = False
    open_session = connect(pg, "app", old)
    open_session.autocommit = True
    admin.cursor().execute(f"ALTER ROLE app PASSWORD {password_literal(new)}")
    connect(pg, "app", old).close()
    with pytest.raises(pg8000.dbapi.DatabaseError) as before_commit:
        connect(pg, "app", new)
    assert sqlstate(before_commit.value) == "28P01"
    admin.commit()
    connect(pg, "app", new).close()
    with pytest.raises(pg8000.dbapi.DatabaseError) as after_commit:
        connect(pg, "app", old)
    assert sqlstate(after_commit.value) == "28P01"
    cursor = open_session.cursor()
    cursor.execute("DISCARD ALL")
    cursor.execute("SELECT session_user")
    assert cursor.fetchone()[0] == "app"
    open_session.close()
    admin.close()
