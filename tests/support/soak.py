"""An application under load while its credentials rotate: the soak engine.

Used by ``make soak`` (``bench/soak.py``), by ``tests/integration/test_soak.py``
and, as the live load of every case, by ``tests/integration/test_faults.py``.

- :class:`AppLoad` is the application: K worker threads, each an application
  instance with its own Secrets Manager client and its own database connection.
  A worker runs short transactions (insert a row, read it back, commit) and opens
  a new connection every M transactions, so new logins happen all the time. It
  behaves like a good Secrets Manager client: it caches AWSCURRENT, and when a
  *new* login is refused it re-reads AWSCURRENT once and retries once.
- :func:`drive_rotation` drives one rotation as Secrets Manager does: the same
  token through the four steps, and on a failure the whole rotation again with
  the same token.
- :func:`run_soak` runs R rotations back to back under the load and reports.

Every failed transaction is recorded with its error code and time, so a report
can tell failures caused by the rotation (refused logins, missing privileges) from
failures caused by a database outage the caller declared with
:meth:`AppLoad.mark_outage_start` / :meth:`AppLoad.mark_outage_end`.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any

import boto3
import pymysql
from botocore.exceptions import BotoCoreError, ClientError

from tests.support.aws import STEPS, begin_rotation, event
from tests.support.world import World

Invoke = Callable[[dict[str, Any]], Any]
StepHook = Callable[[int, str], None]

SOAK_TABLE = "appdb.soak_events"

AUTH_ERRORS = frozenset({1045, 1698, 4150})  # 4150: MariaDB blocked the user (max_password_errors)
PRIVILEGE_ERRORS = frozenset({1044, 1142, 1143, 1227, 1370})
# The server is down, shutting down, restarting, or dropped the connection
# (0: PyMySQL's "connection already closed" InterfaceError).
CONNECTION_ERRORS = frozenset({0, 1053, 1927, 2002, 2003, 2006, 2013, 2055})


def error_code(exc: BaseException) -> int:
    if isinstance(exc, pymysql.err.MySQLError) and exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return 0


def error_class(code: str) -> str:
    if code.startswith("secretsmanager:") or code == "readback":
        return "other"
    number = int(code)
    if number in AUTH_ERRORS:
        return "auth"
    if number in PRIVILEGE_ERRORS:
        return "privilege"
    if number in CONNECTION_ERRORS:
        return "connection"
    return "other"


def prepare_schema(world: World) -> None:
    """The table the application writes to (the app user may use ``appdb.*``)."""
    world.server.sql(
        f"CREATE TABLE IF NOT EXISTS {SOAK_TABLE} "
        "(id BIGINT AUTO_INCREMENT PRIMARY KEY, worker INT NOT NULL, note VARCHAR(40) NOT NULL)"
    )


# -- the application -----------------------------------------------------------


@dataclass(frozen=True)
class LoadConfig:
    workers: int = 8
    recycle_every: int = 20  # transactions per connection
    reread_attempts: int = 1  # re-reads of AWSCURRENT after a refused new login
    reread_pause: float = 0.0  # seconds before the second and later re-reads
    pending_fallback: bool = False  # single user: after the re-reads, try AWSPENDING once
    # "on-refusal": read AWSCURRENT once, again when a login is refused (reread_attempts).
    # "per-rotation": read it again only when a new rotation has begun, never on a
    # refusal: a client that keeps one credential for a whole rotation (a cache TTL).
    refresh: str = "on-refusal"
    failure_pause: float = 0.05  # back-off after a failed transaction
    outage_grace: float = 1.0  # seconds after a declared outage still blamed on it


@dataclass(frozen=True)
class Failure:
    at: float  # time.monotonic()
    worker: int
    code: str  # MySQL error number, "secretsmanager:<Code>" or "readback"
    during: str  # login | transaction | secret-read
    phase: str
    cause: str = ""  # outage | rotation (filled in by the report)


@dataclass
class LoadReport:
    transactions_ok: int
    transactions_failed: int
    failed_by_code: dict[str, int]
    rotation_caused_failures: int
    rotation_caused_by_code: dict[str, int]
    outage_failures: int
    logins: int
    auth_failures_first_try: int
    credential_rereads: int
    logins_recovered_by_reread: int
    logins_recovered_by_pending: int
    secret_reads: int
    latency_ms: dict[str, dict[str, float]]
    failures: list[Failure] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = [asdict(f) for f in self.failures[:50]]
        return data


class _SecretReadError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Worker:
    index: int
    client: Any
    credential: dict[str, Any] | None = None
    generation: int = 0  # the rotation during which ``credential`` was read
    connection: pymysql.connections.Connection[Any] | None = None
    used: int = 0


class AppLoad:
    """``with AppLoad(world) as load:`` — the application runs until the block ends."""

    def __init__(self, world: World, config: LoadConfig | None = None) -> None:
        self.world = world
        self.config = config or LoadConfig()
        self._tls = ssl.create_default_context(cafile=str(world.server.pki.ca_file))  # one context, reused
        region = world.client.meta.region_name
        self._workers = [
            _Worker(i, boto3.session.Session().client("secretsmanager", region_name=region))
            for i in range(self.config.workers)
        ]
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._phase = "baseline"
        self._counters: Counter[str] = Counter()
        self._latencies: dict[str, list[float]] = {}
        self._failures: list[Failure] = []
        self._outages: list[list[float]] = []
        self._generation = 0
        self.passwords_seen: set[str] = set()

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

    def new_rotation(self) -> None:
        """A rotation begins: per-rotation clients read AWSCURRENT at their next login."""
        with self._lock:
            self._generation += 1

    def mark_outage_start(self) -> None:
        with self._lock:
            self._outages.append([time.monotonic(), float("inf")])

    def mark_outage_end(self) -> None:
        with self._lock:
            if self._outages and self._outages[-1][1] == float("inf"):
                self._outages[-1][1] = time.monotonic()

    # -- one application instance ------------------------------------------------

    def _run(self, worker: _Worker) -> None:
        sequence = 0
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
                sequence += 1
                elapsed = (time.perf_counter() - started) * 1000
                with self._lock:
                    self._counters["ok"] += 1
                    self._latencies.setdefault(phase, []).append(elapsed)
            except _SecretReadError as exc:
                self._failed(worker, phase, exc.code, "secret-read")
            except _ReadBackError:
                self._failed(worker, phase, "readback", during)
            except pymysql.err.MySQLError as exc:
                self._failed(worker, phase, str(error_code(exc)), during)

    def _failed(self, worker: _Worker, phase: str, code: str, during: str) -> None:
        with self._lock:
            self._failures.append(Failure(time.monotonic(), worker.index, code, during, phase))
        self._close(worker)
        self._stop.wait(self.config.failure_pause)

    def _login(self, worker: _Worker) -> pymysql.connections.Connection[Any]:
        per_rotation = self.config.refresh == "per-rotation"
        if worker.credential is None or (per_rotation and worker.generation != self._generation):
            worker.generation = self._generation
            worker.credential = self._read_current(worker)
        try:
            return self._connect(worker.credential)
        except pymysql.err.OperationalError as exc:
            if error_code(exc) not in AUTH_ERRORS or self.config.reread_attempts < 1 or per_rotation:
                raise
            self._count("auth_failures_first_try")
            refused = exc
        for attempt in range(self.config.reread_attempts):
            if attempt and self.config.reread_pause:
                self._stop.wait(self.config.reread_pause)
            worker.credential = self._read_current(worker)
            self._count("credential_rereads")
            try:
                connection = self._connect(worker.credential)
            except pymysql.err.OperationalError as exc:
                if error_code(exc) not in AUTH_ERRORS:
                    raise
                refused = exc
                continue
            self._count("logins_recovered_by_reread")
            return connection
        if self.config.pending_fallback:
            # Single user: between setSecret and finishSecret the database already has
            # the AWSPENDING password. Use it for this login only; keep AWSCURRENT cached.
            try:
                pending = self._read_stage(worker, "AWSPENDING")
            except _SecretReadError:
                raise refused from None
            try:
                connection = self._connect(pending)
            except pymysql.err.OperationalError as exc:
                if error_code(exc) not in AUTH_ERRORS:
                    raise
                raise refused from None
            self._count("logins_recovered_by_pending")
            return connection
        raise refused

    def _read_current(self, worker: _Worker) -> dict[str, Any]:
        return self._read_stage(worker, "AWSCURRENT")

    def _read_stage(self, worker: _Worker, stage: str) -> dict[str, Any]:
        try:
            response = worker.client.get_secret_value(SecretId=self.world.app_arn, VersionStage=stage)
        except ClientError as exc:
            raise _SecretReadError(f"secretsmanager:{exc.response.get('Error', {}).get('Code', '?')}") from None
        except BotoCoreError as exc:
            raise _SecretReadError(f"secretsmanager:{type(exc).__name__}") from None
        self._count("secret_reads")
        value: dict[str, Any] = json.loads(response["SecretString"])
        self.passwords_seen.add(str(value.get("password", "")))
        return value

    def _connect(self, value: dict[str, Any]) -> pymysql.connections.Connection[Any]:
        self._count("logins")
        return pymysql.connect(
            host=value["host"],
            port=int(value["port"]),
            user=value["username"],
            password=value["password"],
            database=value.get("dbname"),
            ssl=self._tls,
            autocommit=False,
            connect_timeout=3,
            read_timeout=10,
            write_timeout=10,
        )

    def _transaction(self, worker: _Worker, note: str) -> None:
        connection = worker.connection
        assert connection is not None
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SOAK_TABLE} (worker, note) VALUES (%s, %s)", (worker.index, note))
            cursor.execute(f"SELECT worker, note FROM {SOAK_TABLE} WHERE id = LAST_INSERT_ID()")
            row = cursor.fetchone()
        connection.commit()
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

    # -- the report ----------------------------------------------------------------

    def report(self) -> LoadReport:
        with self._lock:
            failures = [
                Failure(f.at, f.worker, f.code, f.during, f.phase, self._cause(f.code, f.at)) for f in self._failures
            ]
            latencies = {phase: sorted(values) for phase, values in self._latencies.items()}
            counters = Counter(self._counters)
        rotation_caused = [f for f in failures if f.cause == "rotation"]
        return LoadReport(
            transactions_ok=counters["ok"],
            transactions_failed=len(failures),
            failed_by_code=dict(Counter(f.code for f in failures)),
            rotation_caused_failures=len(rotation_caused),
            rotation_caused_by_code=dict(Counter(f.code for f in rotation_caused)),
            outage_failures=len(failures) - len(rotation_caused),
            logins=counters["logins"],
            auth_failures_first_try=counters["auth_failures_first_try"],
            credential_rereads=counters["credential_rereads"],
            logins_recovered_by_reread=counters["logins_recovered_by_reread"],
            logins_recovered_by_pending=counters["logins_recovered_by_pending"],
            secret_reads=counters["secret_reads"],
            latency_ms={phase: _summary(values) for phase, values in latencies.items()},
            failures=failures,
        )

    def _cause(self, code: str, at: float) -> str:
        """A connection-class failure inside a declared outage (plus grace) is the
        outage's; everything else (refused logins, missing privileges, connection
        errors while the server was up) is blamed on the rotation."""
        if error_class(code) == "connection":
            for start, end in self._outages:
                if start - 0.05 <= at <= end + self.config.outage_grace:
                    return "outage"
        return "rotation"


class _ReadBackError(Exception):
    pass


def _summary(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"count": len(ordered), "p50": pick(0.50), "p99": pick(0.99), "max": round(ordered[-1], 2)}


# -- Secrets Manager's side: driving rotations --------------------------------


@dataclass
class RotationRecord:
    token: str
    attempts: int = 0
    completed: bool = False
    errors: list[str] = field(default_factory=list)  # "<step>: <ErrorType>", one per failed attempt
    exceptions: list[BaseException] = field(default_factory=list, repr=False)
    outcomes: list[list[str]] = field(default_factory=list)  # per attempt, the outcome of each step that ran
    step_times: dict[str, tuple[float, float]] = field(default_factory=dict)  # last run of each step
    started: float = 0.0
    finished: float = 0.0

    @property
    def window(self) -> tuple[float, float] | None:
        """From the start of setSecret to the end of finishSecret: where, in single-user
        mode, the database has the new password and AWSCURRENT still holds the old one."""
        if "setSecret" in self.step_times and "finishSecret" in self.step_times:
            return self.step_times["setSecret"][0], self.step_times["finishSecret"][1]
        return None


def drive_rotation(
    invoke: Invoke,
    client: Any,
    arn: str,
    *,
    token: str | None = None,
    stage: bool = True,
    attempts: int = 3,
    retry_pause: float = 0.0,
    before_step: StepHook | None = None,
) -> RotationRecord:
    """One rotation as Secrets Manager runs it: stage AWSPENDING under a token
    (unless ``stage`` is false), run the four steps with that token, and on a
    failure run all four again with the same token, up to ``attempts`` times.
    ``before_step(attempt, step)`` runs before each invocation (fault injection)."""
    if stage:
        token = begin_rotation(client, arn, token)
    assert token, "a token is needed when the rotation is not staged here"
    record = RotationRecord(token, started=time.monotonic())
    for attempt in range(1, attempts + 1):
        record.attempts = attempt
        outcomes: list[str] = []
        record.outcomes.append(outcomes)
        step = STEPS[0]
        try:
            for step in STEPS:
                if before_step is not None:
                    before_step(attempt, step)
                began = time.monotonic()
                result = invoke(event(arn, token, step))
                record.step_times[step] = (began, time.monotonic())
                outcomes.append(str(result.get("outcome")))
        except Exception as exc:  # Secrets Manager retries whatever the function raised
            record.errors.append(f"{step}: {type(exc).__name__}")
            record.exceptions.append(exc)
            if attempt < attempts and retry_pause:
                time.sleep(retry_pause)
            continue
        record.completed = True
        break
    record.finished = time.monotonic()
    return record


# -- the soak ------------------------------------------------------------------


@dataclass(frozen=True)
class SoakConfig:
    rotations: int = 100
    load: LoadConfig = field(default_factory=LoadConfig)
    baseline_seconds: float = 3.0
    after_seconds: float = 1.0
    gap_seconds: float = 0.0
    max_seconds: float = 600.0
    attempts: int = 3


@dataclass
class SoakReport:
    mode: str
    config: dict[str, Any]
    elapsed_seconds: float
    timed_out: bool
    rotations_requested: int
    rotations_completed: int
    rotations_retried: int
    rotation_errors: dict[str, int]
    rotation_seconds: dict[str, float]
    window_seconds: dict[str, float]
    failures_inside_windows: int
    final_current_works: bool
    final_previous_works: bool
    load: LoadReport

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["load"] = self.load.as_dict()
        return data


def run_soak(world: World, invoke: Invoke, config: SoakConfig, *, mode: str) -> SoakReport:
    """R rotations back to back while the application runs; bounded by ``max_seconds``."""
    prepare_schema(world)
    began = time.monotonic()
    deadline = began + config.max_seconds
    records: list[RotationRecord] = []
    timed_out = False
    load = AppLoad(world, config.load)
    with load:
        load.wait_for_transactions(config.load.workers)
        time.sleep(config.baseline_seconds)
        load.set_phase("rotating")
        for _ in range(config.rotations):
            if time.monotonic() > deadline:
                timed_out = True
                break
            load.new_rotation()
            records.append(drive_rotation(invoke, world.client, world.app_arn, attempts=config.attempts))
            if config.gap_seconds:
                time.sleep(config.gap_seconds)
        load.set_phase("after")
        time.sleep(config.after_seconds)
    report = load.report()
    world.passwords_seen |= load.passwords_seen

    windows = [w for w in (r.window for r in records) if w]
    inside = sum(
        1
        for f in report.failures
        if f.cause == "rotation" and any(start <= f.at <= end + 0.5 for start, end in windows)
    )
    return SoakReport(
        mode=mode,
        config=asdict(config),
        elapsed_seconds=round(time.monotonic() - began, 2),
        timed_out=timed_out,
        rotations_requested=config.rotations,
        rotations_completed=sum(r.completed for r in records),
        rotations_retried=sum(r.attempts > 1 for r in records),
        rotation_errors=dict(Counter(e for r in records for e in r.errors)),
        rotation_seconds=_seconds([r.finished - r.started for r in records]),
        window_seconds=_seconds([end - start for start, end in windows]),
        failures_inside_windows=inside,
        final_current_works=app_can_work(world, "AWSCURRENT"),
        final_previous_works=app_can_work(world, "AWSPREVIOUS"),
        load=report,
    )


def _seconds(values: Sequence[float]) -> dict[str, float]:
    summary = _summary([v * 1000 for v in values])
    return {key: (value if key == "count" else round(value / 1000, 3)) for key, value in summary.items()}


def app_can_work(world: World, stage: str) -> bool:
    """Log in with the ``stage`` version and run the application's transaction."""
    try:
        value = world.app_secret(stage)
        connection = world.connect(value)
    except (ClientError, pymysql.err.MySQLError):
        return False
    try:
        connection.begin()
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SOAK_TABLE} (worker, note) VALUES (%s, %s)", (-1, stage))
            cursor.execute(f"SELECT COUNT(*) FROM {SOAK_TABLE} WHERE worker = -1")
        connection.commit()
        return True
    except pymysql.err.MySQLError:
        return False
    finally:
        with suppress(Exception):
            connection.close()


def format_report(report: SoakReport) -> str:
    """The report as a table for a person."""
    load = report.load
    rows: list[tuple[str, str]] = [
        ("mode", report.mode),
        ("rotations completed", f"{report.rotations_completed} / {report.rotations_requested}"),
        ("rotations retried", str(report.rotations_retried)),
        ("rotation errors", _codes(report.rotation_errors)),
        ("rotation time p50 / max (s)", _pair(report.rotation_seconds)),
        ("setSecret->finishSecret p50 / max (s)", _pair(report.window_seconds)),
        ("transactions ok", str(load.transactions_ok)),
        ("transactions failed", f"{load.transactions_failed}  {_codes(load.failed_by_code)}"),
        ("  caused by the rotation", f"{load.rotation_caused_failures}  {_codes(load.rotation_caused_by_code)}"),
        ("  failed new logins inside a window", str(report.failures_inside_windows)),
        ("new logins", str(load.logins)),
        ("auth failures on first try", str(load.auth_failures_first_try)),
        ("AWSCURRENT re-reads", str(load.credential_rereads)),
        ("logins recovered by the re-read", str(load.logins_recovered_by_reread)),
        ("logins recovered with AWSPENDING", str(load.logins_recovered_by_pending)),
    ]
    for phase, summary in load.latency_ms.items():
        if summary.get("count"):
            rows.append(
                (f"latency {phase} p50 / p99 (ms)", f"{summary['p50']} / {summary['p99']}  (n={int(summary['count'])})")
            )
    rows += [
        ("final AWSCURRENT works", "yes" if report.final_current_works else "NO"),
        ("final AWSPREVIOUS works", "yes" if report.final_previous_works else "no"),
        ("elapsed (s)", f"{report.elapsed_seconds}{'  (stopped by the time bound)' if report.timed_out else ''}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(counts.items())) or "-"


def _pair(summary: dict[str, float]) -> str:
    return f"{summary['p50']} / {summary['max']}" if summary.get("count") else "-"


# -- harness fidelity ------------------------------------------------------------


@dataclass
class _Fault:
    operation: str
    status: int
    code: str
    applied: bool
    remaining: int


class ServiceFaults:
    """Errors the emulated Secrets Manager answers, as the service would: a throttled
    call is refused before it does anything; a 5xx with ``applied`` does the work and
    loses the answer.

    Injected in the emulator, not with a client ``before-send`` hook: botocore emits
    ``before-send`` to every handler and takes the first response, so in-process moto
    would still apply a call whose answer a client hook replaced.
    """

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self.answered: list[str] = []

    def inject(self, operation: str, status: int, code: str, *, applied: bool = False, times: int = 1) -> None:
        self._faults.append(_Fault(operation, status, code, applied, times))

    def _take(self, request: Any) -> _Fault | None:
        raw = request.headers.get("X-Amz-Target") or ""
        target = raw.decode() if isinstance(raw, bytes) else str(raw)
        for fault in self._faults:
            if fault.remaining and target.endswith(f".{fault.operation}"):
                fault.remaining -= 1
                self.answered.append(f"{fault.operation}: {fault.status} {fault.code}")
                return fault
        return None

    def handle(self, request: Any, process: Callable[[], Any]) -> Any:
        fault = self._take(request)
        if fault is None:
            return process()
        if fault.applied:
            process()
        body = json.dumps({"__type": fault.code, "message": "injected fault"})
        return fault.status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fault"}, body


@contextmanager
def faithful_moto() -> Iterator[ServiceFaults]:
    """Make in-process moto behave like Secrets Manager where the load depends on it,
    and let a test inject service errors (:class:`ServiceFaults`).

    - moto's backends are not thread-safe (UpdateSecretVersionStage removes
      AWSCURRENT from one version before adding it to the other, and readers iterate
      the version dict): every request to the emulator is serialized, as each AWS
      API call is atomic.
    - moto lets a second PutSecretValue overwrite an AWSPENDING version with a
      different value; AWS refuses it with ResourceExistsException.
    """
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.secretsmanager.exceptions import ResourceExistsException
    from moto.secretsmanager.models import SecretsManagerBackend

    lock = threading.RLock()
    faults = ServiceFaults()
    original_process = BotocoreStubber.process_request
    original_check = SecretsManagerBackend._check_with_existing_secrets_and_versions

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return faults.handle(request, lambda: original_process(self, request))

    def check(
        self: Any,
        secret_name: str,
        client_request_token: str | None,
        secret_string: str | None,
        secret_binary: str | None,
        on_create: bool = False,
    ) -> Any:
        # moto's SecretsStore resolves names and ARNs in __contains__/__getitem__, not in get()
        secret = self.secrets[secret_name] if secret_name in self.secrets else None  # noqa: SIM401
        version = getattr(secret, "versions", {}).get(client_request_token) if client_request_token else None
        if version and "secret_string" in version and version["secret_string"] != secret_string:
            raise ResourceExistsException(
                f"You can't use ClientRequestToken {client_request_token} because that value is already in use "
                "for a version of this secret."
            )
        return original_check(self, secret_name, client_request_token, secret_string, secret_binary, on_create)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    SecretsManagerBackend._check_with_existing_secrets_and_versions = check  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        BotocoreStubber.process_request = original_process  # type: ignore[method-assign]
        SecretsManagerBackend._check_with_existing_secrets_and_versions = original_check  # type: ignore[method-assign]


@contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse any TCP connection that is not to 127.0.0.1 (the soak runs outside pytest's guard)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address and str(address[0]) not in {"127.0.0.1", "::1", "localhost"}:
            raise ConnectionRefusedError(f"the soak may only connect to 127.0.0.1, not {address[0]}")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


def leaks(text: str, secrets: set[str]) -> int:
    """How many of ``secrets`` appear in ``text`` (never which)."""
    return sum(1 for secret in secrets if secret and secret in text)
