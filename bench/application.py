"""An application under load while its credentials rotate, on rotator-client.

Used by ``make soak`` (bench/soak.py), by tests/integration/test_soak.py and, as the
live load of every case, by the fault matrix (tests/integration/test_faults.py).

:class:`AppLoad` runs ``apps`` application instances. Each is one
:class:`rotator_client.SecretCredentials` — one cache, one Secrets Manager client, one
lock: what one application process holds — shared by its ``workers`` threads. A
worker runs short transactions (insert a row, read it back, commit) on its own
connection, and opens a new one every M transactions through
``rotator_client.pymysql.login`` (MySQL, MariaDB) or ``rotator_client.pg8000.login``
(PostgreSQL) under ``SecretCredentials.connect`` (the cached
AWSCURRENT; on a refused login one refresh shared by the instance's threads and one
retry), so new logins happen all the time. The client has no process-wide state, so
an instance behaves as a process would; instances run as threads of this process
because moto runs here, in-process, for the function and the application alike.

Counted from outside the client: every GetSecretValue of an instance (a botocore
event hook on its client, with its time), and every login with the secret version it
used. From them bench/soak.py derives the reads per rotation and the adoption time.
Every failed transaction is recorded with its error code and time, so a report can
tell failures caused by the rotation (refused logins, missing privileges) from
failures caused by a database outage the caller declared with
:meth:`AppLoad.mark_outage_start` / :meth:`AppLoad.mark_outage_end`.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import pg8000.dbapi
import pymysql
from botocore.exceptions import ClientError

from rotator_client import Credentials, CredentialsError, SecretCredentials, SecretUnavailableError
from rotator_client import pg8000 as client_pg8000
from rotator_client import pymysql as client_pymysql
from rotator_client.credentials import DEFAULT_MAX_REFRESH_INTERVAL, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_TTL
from tests.support.world import PG_SCHEMA, PgWorld, World

SOAK_TABLE = "appdb.soak_events"  # MySQL's schema appdb; PostgreSQL: schema app of database appdb
PG_SOAK_TABLE = f"{PG_SCHEMA}.soak_events"

AUTH_ERRORS = frozenset({1045, 1698, 3955, 4150})  # 4150/3955: blocked after failed logins
PRIVILEGE_ERRORS = frozenset({1044, 1142, 1143, 1227, 1370})
# The server is down, shutting down, restarting, or dropped the connection
# (0: PyMySQL's "connection already closed" InterfaceError).
CONNECTION_ERRORS = frozenset({0, 1053, 1927, 2002, 2003, 2006, 2013, 2055})
# PostgreSQL's SQLSTATEs, as strings: 28P01 a wrong password (the one a newer AWSCURRENT
# cures), 28000 not permitted to log in; 42501 insufficient privilege; 57P0x shutting down /
# starting up, 08xxx connection failures, 53300 too many connections. "network" is a
# pg8000 InterfaceError or a socket error: the server went away under the session.
PG_AUTH_ERRORS = frozenset({"28P01", "28000"})
PG_PRIVILEGE_ERRORS = frozenset({"42501"})
PG_CONNECTION_ERRORS = frozenset({"network", "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006"})
# What a login refused for its password is, per SQL family: the only failure a window may cause.
REFUSED_LOGIN = {"mariadb": "1045", "mysql": "1045", "postgresql": "28P01"}


def error_code(exc: BaseException) -> int:
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return 0


def pg_error_code(exc: BaseException) -> str:
    """A pg8000 error's SQLSTATE (the ``C`` field of the server's error), else "network"."""
    if isinstance(exc, pg8000.dbapi.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("C", "network"))
    return "network"


def error_class(code: str) -> str:
    if code.startswith("secretsmanager:") or code in {"readback", "secret-format"}:
        return "other"
    if not code.isdigit():  # a SQLSTATE (PostgreSQL)
        if code in PG_AUTH_ERRORS:
            return "auth"
        if code in PG_PRIVILEGE_ERRORS:
            return "privilege"
        return "connection" if code in PG_CONNECTION_ERRORS or code.startswith("08") else "other"
    number = int(code)
    if number in AUTH_ERRORS:
        return "auth"
    if number in PRIVILEGE_ERRORS:
        return "privilege"
    if number in CONNECTION_ERRORS:
        return "connection"
    return "other"


def prepare_schema(world: World) -> None:
    """The table the application writes to (the app user may use ``appdb.*``; on PostgreSQL
    the master makes it in schema ``app`` and grants it to the role that holds the user's
    privileges: the owner role, or the user itself)."""
    if isinstance(world, PgWorld):
        holder = world.owner or world.app_user
        for statement in (
            f"CREATE TABLE IF NOT EXISTS {PG_SOAK_TABLE} "
            "(id bigserial PRIMARY KEY, worker int NOT NULL, note varchar(40) NOT NULL)",
            f'GRANT SELECT, INSERT ON {PG_SOAK_TABLE} TO "{holder}"',
            f'GRANT USAGE ON SEQUENCE {PG_SOAK_TABLE}_id_seq TO "{holder}"',
        ):
            world.master_sql(statement, "appdb")
        return
    world.server.sql(
        f"CREATE TABLE IF NOT EXISTS {SOAK_TABLE} "
        "(id BIGINT AUTO_INCREMENT PRIMARY KEY, worker INT NOT NULL, note VARCHAR(40) NOT NULL)"
    )


class _Driver:
    """What differs between the SQL families for the application: its driver's login (through
    rotator-client's glue), its transaction, and how its errors read."""

    errors: tuple[type[BaseException], ...] = (pymysql.err.MySQLError,)

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls

    def login(self, current: Credentials) -> Any:
        return client_pymysql.login(
            current, ssl=self.tls, autocommit=False, connect_timeout=3, read_timeout=10, write_timeout=10
        )

    def code(self, exc: BaseException) -> str:
        return str(error_code(exc))

    def transaction(self, connection: Any, worker: int, note: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SOAK_TABLE} (worker, note) VALUES (%s, %s)", (worker, note))
            cursor.execute(f"SELECT worker, note FROM {SOAK_TABLE} WHERE id = LAST_INSERT_ID()")
            row = cursor.fetchone()
        connection.commit()
        return row


class _PgDriver(_Driver):
    """pg8000 on a socket of our own with TCP_NODELAY (pg8000's own waits ~40 ms per login for
    delayed ACKs: docs/postgresql.md, "Driver"), verify-full TLS with the one context."""

    errors = (pg8000.dbapi.Error, OSError)

    def login(self, current: Credentials) -> Any:
        sock = socket.create_connection((current.host or "127.0.0.1", current.port or 5432), timeout=3)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            return client_pg8000.login(current, sock=sock, ssl_context=self.tls, timeout=10)
        except BaseException:
            sock.close()
            raise

    def code(self, exc: BaseException) -> str:
        return pg_error_code(exc)

    def transaction(self, connection: Any, worker: int, note: str) -> Any:
        cursor = connection.cursor()
        cursor.execute(f"INSERT INTO {PG_SOAK_TABLE} (worker, note) VALUES (%s, %s) RETURNING id", (worker, note))
        (row_id,) = cursor.fetchone()
        cursor.execute(f"SELECT worker, note FROM {PG_SOAK_TABLE} WHERE id = %s", (row_id,))
        row = cursor.fetchone()
        connection.commit()
        return tuple(row) if row is not None else None


def driver_for(world: World, tls: ssl.SSLContext) -> _Driver:
    return _PgDriver(tls) if world.server.family == "postgresql" else _Driver(tls)


@dataclass(frozen=True)
class LoadConfig:
    apps: int = 1  # application instances (one SecretCredentials each)
    workers: int = 8  # threads per instance
    recycle_every: int = 20  # transactions per connection
    ttl: float = DEFAULT_TTL  # rotator-client's cache TTL
    min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL
    max_refresh_interval: float = DEFAULT_MAX_REFRESH_INTERVAL
    failure_pause: float = 0.05  # back-off after a failed transaction
    outage_grace: float = 1.0  # seconds after a declared outage still blamed on it


@dataclass(frozen=True)
class Failure:
    at: float  # time.monotonic()
    worker: int
    code: str  # MySQL error number, SQLSTATE or "network" (PostgreSQL), "secretsmanager:<Code>", …
    during: str  # login | transaction
    phase: str
    cause: str = ""  # outage | rotation (filled in by the report)


class Login(NamedTuple):
    """A login that succeeded: when, by which worker, with which version of the secret."""

    at: float
    app: int
    worker: int
    version_id: str


@dataclass
class LoadReport:
    apps: int
    workers_per_app: int
    transactions_ok: int
    transactions_failed: int
    failed_by_code: dict[str, int]
    rotation_caused_failures: int
    rotation_caused_by_code: dict[str, int]
    outage_failures: int
    logins: int  # attempts
    refused_logins: int
    auth_failures_first_try: int  # a connect()'s first login refused
    credential_rereads: int  # GetSecretValue calls started by a refused login (the client's count)
    logins_recovered_by_reread: int  # connect() calls whose retry logged in
    secret_reads: int  # every GetSecretValue, counted by the hook
    client_reads: int  # the same, as the clients count them (reads + failed reads): must agree
    latency_ms: dict[str, dict[str, float]]
    failures: list[Failure] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = [asdict(f) for f in self.failures[:50]]
        return data


class _ReadBackError(Exception):
    pass


@dataclass
class _App:
    index: int
    credentials: SecretCredentials
    reads: list[float] = field(default_factory=list)  # times of its GetSecretValue calls


@dataclass
class _Worker:
    index: int  # unique across instances
    app: _App
    connection: Any = None  # a PyMySQL or pg8000 connection
    used: int = 0


class AppLoad:
    """``with AppLoad(world) as load:`` — the application runs until the block ends."""

    def __init__(self, world: World, config: LoadConfig | None = None) -> None:
        self.world = world
        self.config = config or LoadConfig()
        self._tls = ssl.create_default_context(cafile=str(world.server.pki.ca_file))  # one context, reused
        self._driver = driver_for(world, self._tls)
        region = world.client.meta.region_name
        self._apps = [self._app(index, region) for index in range(self.config.apps)]
        self._workers = [
            _Worker(app.index * self.config.workers + n, app) for app in self._apps for n in range(self.config.workers)
        ]
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._phase = "baseline"
        self._counters: Counter[str] = Counter()
        self._latencies: dict[str, list[float]] = {}
        self._failures: list[Failure] = []
        self._outages: list[list[float]] = []
        self.logins: list[Login] = []
        self.passwords_seen: set[str] = set()

    def _app(self, index: int, region: str) -> _App:
        credentials = SecretCredentials(
            self.world.app_arn,
            region_name=region,
            ttl=self.config.ttl,
            min_refresh_interval=self.config.min_refresh_interval,
            max_refresh_interval=self.config.max_refresh_interval,
        )
        app = _App(index, credentials)
        credentials.client.meta.events.register(  # type: ignore[attr-defined]
            "before-call.secrets-manager.GetSecretValue", lambda **_: app.reads.append(time.monotonic())
        )
        return app

    @property
    def read_times(self) -> list[list[float]]:
        """Per instance, the time of each GetSecretValue call."""
        return [list(app.reads) for app in self._apps]

    # -- control -----------------------------------------------------------------

    def start(self) -> None:
        for worker in self._workers:
            thread = threading.Thread(target=self._run, args=(worker,), name=f"app-{worker.index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for worker in self._workers:
            self._close(worker)

    def __enter__(self) -> AppLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_phase(self, phase: str) -> None:
        self._phase = phase

    def wait_for_transactions(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` more transactions have committed (the load is really running)."""
        with self._lock:
            target = self._counters["ok"] + count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._counters["ok"] >= target:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"the application did not commit {count} transactions within {timeout}s")

    def mark_outage_start(self) -> None:
        with self._lock:
            self._outages.append([time.monotonic(), float("inf")])

    def mark_outage_end(self) -> None:
        with self._lock:
            if self._outages and self._outages[-1][1] == float("inf"):
                self._outages[-1][1] = time.monotonic()

    # -- one worker ----------------------------------------------------------------

    def _run(self, worker: _Worker) -> None:
        while not self._stop.is_set():
            phase = self._phase
            started = time.perf_counter()
            during = "login"
            try:
                if worker.connection is None or worker.used >= self.config.recycle_every:
                    self._close(worker)
                    worker.connection = self._login(worker)
                    worker.used = 0
                during = "transaction"
                self._transaction(worker, phase)
                worker.used += 1
                elapsed = (time.perf_counter() - started) * 1000
                with self._lock:
                    self._counters["ok"] += 1
                    self._latencies.setdefault(phase, []).append(elapsed)
            except SecretUnavailableError as exc:
                self._failed(worker, phase, f"secretsmanager:{exc.code}", during)
            except CredentialsError:
                self._failed(worker, phase, "secret-format", during)
            except _ReadBackError:
                self._failed(worker, phase, "readback", during)
            except self._driver.errors as exc:
                self._failed(worker, phase, self._driver.code(exc), during)

    def _failed(self, worker: _Worker, phase: str, code: str, during: str) -> None:
        with self._lock:
            self._failures.append(Failure(time.monotonic(), worker.index, code, during, phase))
        self._close(worker)
        self._stop.wait(self.config.failure_pause)

    def _login(self, worker: _Worker) -> Any:
        """rotator-client's rule (``SecretCredentials.connect``) around its driver's login."""
        attempts: list[Credentials] = []

        def login(current: Credentials) -> Any:
            attempts.append(current)
            return self._open(worker, current, first=len(attempts) == 1)

        connection = worker.app.credentials.connect(login)
        if len(attempts) > 1:
            self._count("logins_recovered_by_reread")
        return connection

    def _open(self, worker: _Worker, current: Credentials, *, first: bool) -> Any:
        self._count("logins")
        with self._lock:
            self.passwords_seen.add(current.password)
        try:
            connection = self._driver.login(current)
        except self._driver.errors as exc:
            if error_class(self._driver.code(exc)) == "auth":
                self._count("refused_logins")
                if first:
                    self._count("auth_failures_first_try")
            raise
        with self._lock:
            self.logins.append(Login(time.monotonic(), worker.app.index, worker.index, current.version_id))
        return connection

    def _transaction(self, worker: _Worker, note: str) -> None:
        connection = worker.connection
        assert connection is not None
        row = self._driver.transaction(connection, worker.index, note)
        if row != (worker.index, note):
            raise _ReadBackError

    def _close(self, worker: _Worker) -> None:
        connection, worker.connection = worker.connection, None
        if connection is not None:
            with suppress(Exception):
                connection.close()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counters[name] += 1

    # -- the report ------------------------------------------------------------------

    def report(self) -> LoadReport:
        with self._lock:
            failures = [
                Failure(f.at, f.worker, f.code, f.during, f.phase, self._cause(f.code, f.at)) for f in self._failures
            ]
            counters = Counter(self._counters)
            latencies = {phase: summary(values) for phase, values in self._latencies.items()}
        stats = [app.credentials.stats() for app in self._apps]
        rotation_caused = [f for f in failures if f.cause == "rotation"]
        return LoadReport(
            apps=self.config.apps,
            workers_per_app=self.config.workers,
            transactions_ok=counters["ok"],
            transactions_failed=len(failures),
            failed_by_code=dict(Counter(f.code for f in failures)),
            rotation_caused_failures=len(rotation_caused),
            rotation_caused_by_code=dict(Counter(f.code for f in rotation_caused)),
            outage_failures=sum(1 for f in failures if f.cause == "outage"),
            logins=counters["logins"],
            refused_logins=counters["refused_logins"],
            auth_failures_first_try=counters["auth_failures_first_try"],
            credential_rereads=sum(s.refreshes_after_refusal for s in stats),
            logins_recovered_by_reread=counters["logins_recovered_by_reread"],
            secret_reads=sum(len(app.reads) for app in self._apps),
            client_reads=sum(s.reads + s.failed_reads for s in stats),
            latency_ms=latencies,
            failures=failures,
        )

    def _cause(self, code: str, at: float) -> str:
        """A connection error during a declared outage (plus grace) is the
        outage's; everything else (refused logins, missing privileges, connection
        errors while the server was up) is blamed on the rotation."""
        if error_class(code) == "connection":
            for start, end in self._outages:
                if start - 0.05 <= at <= end + self.config.outage_grace:
                    return "outage"
        return "rotation"


def summary(values: Sequence[float]) -> dict[str, float]:
    """Count, median, p99 and maximum of ``values`` (rounded)."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"count": len(ordered), "p50": pick(0.50), "p99": pick(0.99), "max": round(ordered[-1], 2)}


def app_can_work(world: World, stage: str) -> bool:
    """Log in with the ``stage`` version and run the application's transaction."""
    errors = (pymysql.err.MySQLError, pg8000.dbapi.Error, OSError)
    try:
        value = world.app_secret(stage)
        connection = world.connect(value)
    except (ClientError, *errors):
        return False
    table = PG_SOAK_TABLE if isinstance(world, PgWorld) else SOAK_TABLE
    try:
        if isinstance(world, PgWorld):
            connection.autocommit = False  # pg8000: a property; the next statement begins
        else:
            connection.begin()
        cursor = connection.cursor()
        cursor.execute(f"INSERT INTO {table} (worker, note) VALUES (%s, %s)", (-1, stage))
        cursor.execute(f"SELECT COUNT(*) FROM {table} WHERE worker = -1")
        cursor.fetchall()
        connection.commit()
        return True
    except errors:
        return False
    finally:
        with suppress(Exception):
            connection.close()
