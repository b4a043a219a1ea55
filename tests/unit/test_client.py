"""rotator-client's rules (client/src/rotator_client): a cached AWSCURRENT with a TTL; on a
refused login one refresh shared by every thread, then one retry, no loop; no password in
any output. Secrets Manager is moto (in-process, or its server on 127.0.0.1 behind an
endpoint URL or a proxy); the database is a login function that refuses what a real server
would (PyMySQL's own errors). Against real servers: tests/integration/test_client.py.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pg8000.dbapi
import pg8000.exceptions
import pg8000.native
import pymysql
import pytest
from moto import mock_aws

from rotator_client import (
    Credentials,
    SecretCredentials,
    SecretFormatError,
    SecretUnavailableError,
    is_refused_login,
)
from rotator_client import pg8000 as client_pg8000
from rotator_client.refusals import mysql_error, sqlstate
from tests.unit.conftest import TlsEndpoint

OLD_PASSWORD = "pw-client-old-0123456789abcdef"
NEW_PASSWORD = "pw-client-new-fedcba9876543210"
REGION = "us-east-1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Secret:
    """A secret in moto, and the GetSecretValue calls any client made for it."""

    client: Any
    arn: str
    calls: list[str] = field(default_factory=list)

    def put(self, password: str, username: str = "app") -> None:
        self.client.put_secret_value(SecretId=self.arn, SecretString=json.dumps(value(password, username)))

    def count(self, target: Any) -> Any:
        """Count ``target``'s GetSecretValue calls (a botocore event hook: before the request is sent)."""
        target.meta.events.register(
            "before-call.secrets-manager.GetSecretValue", lambda **_: self.calls.append(threading.current_thread().name)
        )
        return target


def value(password: str, username: str = "app") -> dict[str, Any]:
    return {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": username, "password": password}


@pytest.fixture
def secret() -> Iterator[Secret]:
    with mock_aws():
        client = boto3.client("secretsmanager", region_name=REGION)
        arn = client.create_secret(Name="app-db", SecretString=json.dumps(value(OLD_PASSWORD)))["ARN"]
        yield Secret(client, arn)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def credentials(secret: Secret, clock: FakeClock) -> SecretCredentials:
    """A SecretCredentials on its own default client (counted), TTL 300 s, on a fake clock."""
    made = SecretCredentials(secret.arn, region_name=REGION, clock=clock)
    secret.count(made.client)
    return made


def refused() -> pymysql.err.OperationalError:
    return pymysql.err.OperationalError(1045, "Access denied for user 'app'@'10.0.0.7' (using password: YES)")


class Database:
    """Accepts logins with ``accepted`` passwords and refuses the rest with 1045, as MySQL does."""

    def __init__(self, *accepted: str) -> None:
        self.accepted = set(accepted)
        self.attempts: list[str] = []
        self._lock = threading.Lock()

    def login(self, credentials: Credentials) -> str:
        with self._lock:
            self.attempts.append(credentials.version_id)
        if credentials.password not in self.accepted:
            raise refused()
        return f"connection as {credentials.username}"


# -- the cache and its TTL ---------------------------------------------------------------


def test_reads_awscurrent_once_and_answers_from_the_cache(credentials: SecretCredentials, secret: Secret) -> None:
    """Many get() calls within the TTL: one GetSecretValue; the value is AWSCURRENT's, parsed."""
    first = credentials.get()
    for _ in range(20):
        assert credentials.get() is first
    assert len(secret.calls) == 1
    assert (first.username, first.host, first.port, first.engine, first.dbname) == (
        "app",
        "db.internal",
        3306,
        "mariadb",
        None,
    )
    assert first.password == OLD_PASSWORD
    assert first.version_id


def test_reads_again_when_the_ttl_has_passed(credentials: SecretCredentials, secret: Secret, clock: FakeClock) -> None:
    """After ``ttl`` seconds the next get() reads AWSCURRENT again and returns the new version."""
    old = credentials.get()
    secret.put(NEW_PASSWORD)
    clock.now += 299
    assert credentials.get() is old
    clock.now += 2
    new = credentials.get()
    assert new.password == NEW_PASSWORD and new.version_id != old.version_id
    assert len(secret.calls) == 2


def test_threads_that_find_the_ttl_expired_share_one_read(
    credentials: SecretCredentials, secret: Secret, clock: FakeClock
) -> None:
    """16 threads calling get() at once after the TTL: one GetSecretValue."""
    credentials.get()
    clock.now += 301
    barrier = threading.Barrier(16)
    results: list[Credentials] = []

    def worker() -> None:
        barrier.wait()
        results.append(credentials.get())

    run_threads(worker, 16)
    assert len(results) == 16 and len({id(r) for r in results}) == 1
    assert len(secret.calls) == 2


def test_a_failed_ttl_read_serves_the_cached_value_and_tries_again_later(
    credentials: SecretCredentials, secret: Secret, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """When the TTL read fails (here: access to the secret is gone), the cached value is served on,
    with one warning, and the read is tried again 30 s later, not on every call."""
    caplog.set_level(logging.DEBUG, logger="rotator_client")
    cached = credentials.get()
    secret.client.delete_secret(SecretId=secret.arn, ForceDeleteWithoutRecovery=True)
    clock.now += 301
    assert credentials.get() is cached
    assert credentials.get() is cached
    assert len(secret.calls) == 2
    assert "could not re-read the secret after its TTL" in caplog.text and "ResourceNotFoundException" in caplog.text
    clock.now += 31
    assert credentials.get() is cached
    assert len(secret.calls) == 3
    assert OLD_PASSWORD not in caplog.text
    assert credentials.stats().failed_reads == 2


def test_the_first_read_failing_raises_a_typed_error_naming_the_secret(secret: Secret) -> None:
    """No cached value to fall back on: SecretUnavailableError with the service's code and the secret's name."""
    credentials = SecretCredentials(secret.arn.replace("app-db", "missing-db"), region_name=REGION)
    with pytest.raises(SecretUnavailableError) as raised:
        credentials.get()
    assert raised.value.code == "ResourceNotFoundException"
    assert str(raised.value).startswith("missing-db")


@pytest.mark.parametrize(
    ("secret_string", "problem"),
    [
        ("not json {" + OLD_PASSWORD, "not valid JSON"),
        (json.dumps([OLD_PASSWORD]), "not a JSON object"),
        (json.dumps({"username": "app", "secret": OLD_PASSWORD}), "missing or not a string: password"),
        (json.dumps({**value(OLD_PASSWORD), "port": "x" + OLD_PASSWORD}), "'port' is not a number"),
    ],
)
def test_a_malformed_secret_is_refused_by_name_without_its_content(
    secret: Secret, secret_string: str, problem: str
) -> None:
    """Bad JSON, a non-object, a missing password, a bad port: SecretFormatError naming the
    problem, never quoting the value (json's own message would)."""
    secret.client.put_secret_value(SecretId=secret.arn, SecretString=secret_string)
    with pytest.raises(SecretFormatError) as raised:
        SecretCredentials(secret.arn, region_name=REGION).get()
    assert problem in str(raised.value)
    assert OLD_PASSWORD not in str(raised.value) + repr(raised.value)


# -- a refused login: one shared refresh, one retry ----------------------------------------


def test_a_refused_login_reads_again_once_and_retries_once(credentials: SecretCredentials, secret: Secret) -> None:
    """The cached password is refused (a rotation changed it): one GetSecretValue, one retry with
    the new version, and the value stays cached for the next logins."""
    credentials.get()
    secret.put(NEW_PASSWORD, username="app_clone")
    database = Database(NEW_PASSWORD)
    assert credentials.connect(database.login) == "connection as app_clone"
    assert len(secret.calls) == 2 and len(database.attempts) == 2
    assert credentials.connect(database.login) == "connection as app_clone"
    assert len(secret.calls) == 2
    assert credentials.stats()._asdict() == {
        "reads": 2,
        "refreshes_after_refusal": 1,
        "failed_reads": 0,
        "refused_logins": 1,
        "retries": 1,
    }


def test_sixteen_threads_refused_at_once_cost_one_read(credentials: SecretCredentials, secret: Secret) -> None:
    """16 threads hold the cached value, are all refused at the same moment, and all recover:
    exactly one GetSecretValue between them (a lock and the value's generation), one retry each."""
    credentials.get()
    secret.put(NEW_PASSWORD)
    database = Database(NEW_PASSWORD)
    barrier = threading.Barrier(16)

    def login(current: Credentials) -> str:
        if current.password == OLD_PASSWORD:
            barrier.wait()  # every thread is refused together
        return database.login(current)

    results: list[str] = []
    run_threads(lambda: results.append(credentials.connect(login)), 16)
    assert results == ["connection as app"] * 16
    assert len(secret.calls) == 2  # the first read, and one refresh for all sixteen
    assert len(database.attempts) == 32  # each thread: the refused login and one retry
    stats = credentials.stats()
    assert (stats.refused_logins, stats.refreshes_after_refusal, stats.retries) == (16, 1, 16)


def test_a_refusal_after_the_refresh_surfaces_without_a_loop(credentials: SecretCredentials, secret: Secret) -> None:
    """The retry with the new version is refused too: its error surfaces as PyMySQL raised it,
    after exactly two logins and one refresh."""
    credentials.get()
    secret.put(NEW_PASSWORD)
    database = Database()  # refuses everything
    with pytest.raises(pymysql.err.OperationalError) as raised:
        credentials.connect(database.login)
    assert raised.value.args[0] == 1045
    assert len(database.attempts) == 2 and len(set(database.attempts)) == 2
    assert len(secret.calls) == 2


def test_a_refresh_that_finds_the_refused_login_again_does_not_retry(
    credentials: SecretCredentials, secret: Secret, clock: FakeClock
) -> None:
    """Nothing newer in AWSCURRENT (single user between setSecret and finishSecret, or a wrong
    password): no retry with the same password, and refusals within the hold-off (0.1 s after
    the first such re-read) surface without reading; the first one after it reads again."""
    credentials.get()
    database = Database(NEW_PASSWORD)
    with pytest.raises(pymysql.err.OperationalError):
        credentials.connect(database.login)
    assert len(database.attempts) == 1 and len(secret.calls) == 2
    clock.now += 0.05
    with pytest.raises(pymysql.err.OperationalError):
        credentials.connect(database.login)
    assert len(database.attempts) == 2 and len(secret.calls) == 2
    secret.put(NEW_PASSWORD)  # finishSecret
    clock.now += 0.06
    assert credentials.connect(database.login) == "connection as app"
    assert len(secret.calls) == 3


def test_a_refusal_that_persists_costs_fewer_and_fewer_reads(
    credentials: SecretCredentials, secret: Secret, clock: FakeClock
) -> None:
    """A login refused for a minute, attempted every 50 ms: the hold-off doubles from 0.1 s to
    10 s (a dozen reads, not 1,200); a read that finds a newer value ends it."""
    read_at: list[float] = []
    credentials.client.meta.events.register(  # type: ignore[attr-defined]
        "before-call.secrets-manager.GetSecretValue", lambda **_: read_at.append(clock.now)
    )
    credentials.get()
    database = Database(NEW_PASSWORD)
    for _ in range(1200):
        with pytest.raises(pymysql.err.OperationalError):
            credentials.connect(database.login)
        clock.now += 0.05
    gaps = [b - a for a, b in itertools.pairwise(read_at[1:])]  # between the refusal-driven reads
    hold_offs = [min(10.0, 0.1 * 2**n) for n in range(len(gaps))]
    assert all(hold <= gap < hold + 0.051 for gap, hold in zip(gaps, hold_offs, strict=True)), gaps
    assert hold_offs[-1] == 10.0 and len(read_at) < 15
    secret.put(NEW_PASSWORD)
    clock.now += 10
    assert credentials.connect(database.login) == "connection as app"
    secret.put(NEW_PASSWORD + "-next", username="app_clone")  # the next rotation: refused, re-read at once
    database.accepted.add(NEW_PASSWORD + "-next")
    database.accepted.discard(NEW_PASSWORD)
    reads = len(read_at)
    assert credentials.connect(database.login) == "connection as app_clone"
    assert len(read_at) == reads + 1


def test_other_login_errors_surface_at_once_without_a_read(credentials: SecretCredentials, secret: Secret) -> None:
    """A server that is down (2003) or a missing database (1049): a new secret would not help."""
    credentials.get()
    for code in (2003, 1049):

        def login(_: Credentials, code: int = code) -> str:
            raise pymysql.err.OperationalError(code, "nope")

        with pytest.raises(pymysql.err.OperationalError) as raised:
            credentials.connect(login)
        assert raised.value.args[0] == code
    assert len(secret.calls) == 1


def test_a_thread_refused_with_a_value_already_replaced_retries_without_reading(
    credentials: SecretCredentials, secret: Secret
) -> None:
    """Generation rule: the cache moved on since this value was handed out, so the refresh is
    the cache as it is now, not another GetSecretValue."""
    stale = credentials.get()
    secret.put(NEW_PASSWORD)
    fresh = credentials.refresh_after_refusal(stale)  # another thread's refresh
    assert fresh.password == NEW_PASSWORD and fresh.generation == stale.generation + 1
    assert credentials.refresh_after_refusal(stale) is fresh
    assert len(secret.calls) == 2


def test_when_the_refresh_cannot_read_the_refusal_surfaces_with_the_cause(
    credentials: SecretCredentials, secret: Secret
) -> None:
    """The driver's refusal is what the application sees; why no newer value came is its cause."""
    credentials.get()
    secret.client.delete_secret(SecretId=secret.arn, ForceDeleteWithoutRecovery=True)
    with pytest.raises(pymysql.err.OperationalError) as raised:
        credentials.connect(Database().login)
    assert isinstance(raised.value.__cause__, SecretUnavailableError)
    assert raised.value.__cause__.code == "ResourceNotFoundException"


# -- what counts as a refused login ------------------------------------------------------


class ConnectorError(Exception):
    """mysql-connector's errors carry the number as ``errno``."""

    def __init__(self, errno: int) -> None:
        super().__init__(f"{errno}: denied")
        self.errno = errno


class PsycopgError(Exception):
    """psycopg 3's errors carry the SQLSTATE as ``sqlstate``."""

    sqlstate = "28P01"


class Wrapped(Exception):
    """SQLAlchemy wraps the DBAPI error and keeps it as ``orig``."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__("wrapped")
        self.orig = orig


def test_refused_logins_are_recognised_per_driver() -> None:
    """1045, MariaDB's 4150 and MySQL's 3955 lock-outs are refusals (PyMySQL, mysql-connector, wrapped
    by SQLAlchemy); a server that is down, an unknown database or a missing privilege are not."""
    for code in (1045, 4150, 3955):
        assert is_refused_login(pymysql.err.OperationalError(code, "x"))
        assert is_refused_login(ConnectorError(code))
        assert is_refused_login(Wrapped(pymysql.err.OperationalError(code, "x")))
    for code in (2003, 2013, 1049, 1044, 1142):
        assert not is_refused_login(pymysql.err.OperationalError(code, "x"))
    assert not is_refused_login(ValueError("1045"))
    # PostgreSQL's 28P01, since rotator rotates PostgreSQL (issue 22): psycopg's sqlstate too.
    assert is_refused_login(PsycopgError()) and is_refused_login(Wrapped(PsycopgError()))


def test_postgresql_plugs_in_with_one_recognizer(secret: Secret) -> None:
    """``sqlstate("28P01")`` recognises psycopg's invalid_password (and psycopg2's ``pgcode``),
    and a SecretCredentials given it refreshes on that error like on 1045."""
    assert sqlstate("28P01")(PsycopgError()) and sqlstate("28P01")(Wrapped(PsycopgError()))
    assert not sqlstate("28P01")(pymysql.err.OperationalError(1045, "x"))
    postgres_refusal = sqlstate("28P01")
    credentials = SecretCredentials(
        secret.arn, region_name=REGION, refused_login=lambda exc: is_refused_login(exc) or postgres_refusal(exc)
    )
    credentials.get()
    secret.put(NEW_PASSWORD)

    def login(current: Credentials) -> str:
        if current.password != NEW_PASSWORD:
            raise PsycopgError()
        return "connected"

    assert credentials.connect(login) == "connected"
    assert mysql_error({1045})(pymysql.err.OperationalError(1045, "x"))


# -- PostgreSQL -------------------------------------------------------------------------


def pg_error(state: str, message: str = 'password authentication failed for user "app"') -> Exception:
    """What pg8000 raises for a server error: the server's fields as ``args[0]``."""
    return pg8000.exceptions.DatabaseError({"S": "FATAL", "V": "FATAL", "C": state, "M": message})


def libpq_error(message: str, module: str = "psycopg") -> Exception:
    """What psycopg (3 or 2) raises for a failed connection: OperationalError, message only."""
    error_type = type("OperationalError", (Exception,), {"__module__": module})
    return error_type(f'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  {message}')


def test_postgresql_refusals_are_recognised_per_driver() -> None:
    """28P01 (invalid_password: a changed password, a role gone, an expired VALID UNTIL) is a refusal
    as pg8000, psycopg (also its SQLSTATE-less failed connection) and psycopg2 report it, wrapped by
    SQLAlchemy or not; 28000 (pg_hba, NOLOGIN), 3D000, 42501, 57P03 and network errors are not."""
    assert is_refused_login(pg_error("28P01")) and is_refused_login(Wrapped(pg_error("28P01")))
    assert is_refused_login(libpq_error('password authentication failed for user "app"'))
    assert is_refused_login(libpq_error('password authentication failed for user "app"', module="psycopg2"))
    assert sqlstate("28P01")(type("Psycopg2Error", (Exception,), {"pgcode": "28P01"})())
    for state in ("28000", "3D000", "42501", "57P03", "53300"):
        assert not is_refused_login(pg_error(state, "some other failure"))
    assert not is_refused_login(pg_error("28000", 'password authentication failed for user "app"'))
    assert not is_refused_login(libpq_error('no pg_hba.conf entry for host "10.0.0.7", user "app"'))
    assert not is_refused_login(libpq_error('role "app" is not permitted to log in'))
    # The message alone decides nothing outside psycopg's connection failures.
    assert not is_refused_login(RuntimeError('password authentication failed for user "app"'))
    assert not is_refused_login(pg8000.exceptions.InterfaceError("Server refuses SSL"))
    assert not is_refused_login(ConnectionRefusedError(111, "Connection refused"))


class PostgreSQL(Database):
    """Accepts logins with ``accepted`` passwords and refuses the rest with 28P01, as pg8000 reports it."""

    def login(self, credentials: Credentials) -> str:
        with self._lock:
            self.attempts.append(credentials.version_id)
        if credentials.password not in self.accepted:
            raise pg_error("28P01")
        return f"connection as {credentials.username}"


def test_postgresql_refusal_reads_once_for_all_threads_and_retries_once(
    credentials: SecretCredentials, secret: Secret
) -> None:
    """16 threads refused with 28P01 at the same moment: one GetSecretValue between them, one retry
    each, every one connected with the new value, which stays cached."""
    credentials.get()
    secret.put(NEW_PASSWORD, username="app_clone")
    database = PostgreSQL(NEW_PASSWORD)
    barrier = threading.Barrier(16)

    def login(current: Credentials) -> str:
        if current.password == OLD_PASSWORD:
            barrier.wait()
        return database.login(current)

    results: list[str] = []
    run_threads(lambda: results.append(credentials.connect(login)), 16)
    assert results == ["connection as app_clone"] * 16
    assert len(secret.calls) == 2 and len(database.attempts) == 32
    assert credentials.connect(database.login) == "connection as app_clone"
    assert len(secret.calls) == 2


def test_a_postgresql_refusal_after_the_refresh_surfaces_without_a_loop(
    credentials: SecretCredentials, secret: Secret, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The retry is refused too: pg8000's 28P01 surfaces as raised, after two logins and one refresh;
    no password in the log, the output or the error (its text, repr, traceback, the client's frames)."""
    caplog.set_level(logging.DEBUG, logger="rotator_client")
    credentials.get()
    secret.put(NEW_PASSWORD)
    database = PostgreSQL()  # refuses everything
    with pytest.raises(pg8000.exceptions.DatabaseError) as raised:
        credentials.connect(database.login)
    assert raised.value.args[0]["C"] == "28P01"
    assert len(database.attempts) == 2 and len(set(database.attempts)) == 2
    assert len(secret.calls) == 2
    error = raised.value
    text = caplog.text + "".join(capsys.readouterr()) + str(error) + repr(error)
    text += "".join(traceback.format_exception(error))
    for frame, _line in traceback.walk_tb(error.__traceback__):
        if "rotator_client" in frame.f_code.co_filename:
            text += repr(frame.f_locals)
    assert "login refused with secret app-db" in caplog.text
    assert OLD_PASSWORD not in text and NEW_PASSWORD not in text


def test_pg8000_login_takes_the_secret_and_refuses_its_fields_as_arguments(
    secret: Secret, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rotator_client.pg8000 logs in with the secret's user, password, host, port and dbname (an
    argument wins over the secret's host, port, database); user and password cannot be passed."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(pg8000.dbapi, "connect", lambda **kwargs: calls.append(kwargs) or "dbapi")
    monkeypatch.setattr(pg8000.native, "Connection", lambda **kwargs: calls.append(kwargs) or "native")
    pg_value = {"engine": "postgres", "host": "pg.internal", "port": 5432, "dbname": "appdb"}
    secret.client.put_secret_value(
        SecretId=secret.arn, SecretString=json.dumps({**pg_value, "username": "app", "password": NEW_PASSWORD})
    )
    credentials = SecretCredentials(secret.arn, region_name=REGION)
    assert client_pg8000.connect(credentials, timeout=5) == "dbapi"
    assert client_pg8000.connect_native(credentials, port=6432, database="reports") == "native"
    login = {"user": "app", "password": NEW_PASSWORD, "host": "pg.internal", "port": 5432, "database": "appdb"}
    assert calls == [{**login, "timeout": 5}, {**login, "port": 6432, "database": "reports"}]
    with pytest.raises(TypeError, match=r"come\(s\) from the secret"):
        client_pg8000.connect(credentials, password="x")


# -- the network of a closed VPC ----------------------------------------------------------


def test_an_explicit_endpoint_url_is_used(moto_endpoint: str) -> None:
    """``endpoint_url=`` (an interface endpoint without private DNS) is where the secret is read."""
    arn = create_on(boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint))
    credentials = SecretCredentials(arn, region_name=REGION, endpoint_url=moto_endpoint)
    assert credentials.get().password == OLD_PASSWORD


def test_aws_endpoint_url_secrets_manager_is_honoured(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ``endpoint_url=``, botocore's AWS_ENDPOINT_URL_SECRETS_MANAGER names the endpoint."""
    arn = create_on(boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto_endpoint))
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    assert SecretCredentials(arn, region_name=REGION).get().password == OLD_PASSWORD


@pytest.fixture
def proxied_secret(tls_endpoint: TlsEndpoint) -> Iterator[str]:
    """A secret on the TLS endpoint, made before the proxy is configured (removed after: the
    server shares moto's in-process backends)."""
    client = boto3.client(
        "secretsmanager", region_name=REGION, endpoint_url=tls_endpoint.url, verify=str(tls_endpoint.ca_file)
    )
    arn = create_on(client)
    yield arn
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_behind_a_proxy_no_proxy_naming_the_endpoint_reaches_it(
    tls_endpoint: TlsEndpoint, proxied_secret: str, behind_a_dead_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY points nowhere; with the endpoint in NO_PROXY the read goes straight to it (TLS verified)."""
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    credentials = SecretCredentials(proxied_secret, region_name=REGION, endpoint_url=tls_endpoint.url)
    assert credentials.get().password == OLD_PASSWORD


def test_behind_a_proxy_without_no_proxy_the_read_goes_to_the_proxy(
    tls_endpoint: TlsEndpoint, proxied_secret: str, behind_a_dead_proxy: str
) -> None:
    """Without NO_PROXY the read goes to the (dead) proxy: a typed error saying so, no value."""
    with pytest.raises(SecretUnavailableError) as raised:
        SecretCredentials(proxied_secret, region_name=REGION, endpoint_url=tls_endpoint.url).get()
    assert raised.value.code == "ProxyConnectionError"
    assert behind_a_dead_proxy in str(raised.value)


def create_on(client: Any) -> str:
    name = f"client/app-db-{uuid.uuid4().hex[:8]}"
    return str(client.create_secret(Name=name, SecretString=json.dumps(value(OLD_PASSWORD)))["ARN"])


# -- no password anywhere ------------------------------------------------------------------


def test_no_password_in_logs_errors_reprs_or_tracebacks(
    credentials: SecretCredentials,
    secret: Secret,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every path that writes or raises — refresh and retry, a refused retry, a refresh that finds
    nothing, a failed TTL read — with the client's log at DEBUG: no password in the log, stdout,
    stderr, any exception's str/repr or formatted traceback, any repr; and no frame of the client
    holds a password in a local (what error trackers print)."""
    caplog.set_level(logging.DEBUG, logger="rotator_client")
    errors: list[BaseException] = []
    credentials.get()
    secret.put(NEW_PASSWORD)
    credentials.connect(Database(NEW_PASSWORD).login)  # refresh and retry
    secret.put(OLD_PASSWORD + "-3")
    for database in (Database(), Database()):  # a refused retry; then a refresh that finds nothing newer
        with pytest.raises(pymysql.err.OperationalError) as raised:
            credentials.connect(database.login)
        errors.append(raised.value)
        clock.now += 2
    secret.client.delete_secret(SecretId=secret.arn, ForceDeleteWithoutRecovery=True)
    clock.now += 301
    current = credentials.get()  # the failed TTL read, logged
    with pytest.raises(pymysql.err.OperationalError) as raised:
        credentials.connect(Database().login)  # a refusal whose refresh cannot read
    errors.append(raised.value)

    passwords = {OLD_PASSWORD, NEW_PASSWORD, OLD_PASSWORD + "-3"}
    text = caplog.text + "".join(capsys.readouterr()) + repr(current) + str(current) + repr(credentials)
    for error in errors:
        text += str(error) + repr(error) + "".join(traceback.format_exception(error))
        for frame, _line in traceback.walk_tb(error.__traceback__):
            if "rotator_client" in frame.f_code.co_filename:
                text += repr(frame.f_locals)
    assert "login refused with secret app-db" in caplog.text  # the log was captured
    assert not [p for p in passwords if p in text]


def run_threads(target: Callable[[], None], count: int) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
