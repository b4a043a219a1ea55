"""The fault matrix: each fault injected into a rotation while an application works.

Every case runs the application of bench/application.py (two workers of one
instance on rotator-client, a new login every five transactions) against a private
server of this module, once per server
family (cases crash and restart it), drives the rotation as Secrets Manager does (same token; on failure
the whole rotation again) and then checks, in :meth:`Scene.verdict`:

- AWSCURRENT logs in and uses its privileges;
- the application saw no failed transaction caused by the rotation (alternating
  users, and single user with MySQL's dual passwords). A failure is blamed on a database outage only when its error is a
  connection error (2002/2003/2006/2013/...) *and* it happened between the moment
  the case stopped the server and one second after it was back; every other failure,
  refused logins and missing privileges above all, counts against the rotation;
- the rotation either completed, with the twin's privileges exactly the current
  user's, or failed with a typed :class:`~rotator.errors.RotatorError`;
- no password of any version of either secret appears in the function's output,
  in any error message, or in the load's report.

The engine-neutral cases also run on PostgreSQL 15 (``every_engine("postgresql15")``:
alternating users in the owner-role design and single user, the application on pg8000);
the MySQL-only ones (login limits, dual passwords, MySQL's grants) stay MySQL's.

Results are tabulated in docs/reliability.md.
"""

from __future__ import annotations

import io
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from botocore.retries.standard import ExponentialBackoff

from bench.application import REFUSED_LOGIN, AppLoad, LoadConfig, app_can_work, prepare_schema
from rotator import bootstrap
from rotator import handler as handler_module
from rotator.backends.mysql.base import MySQLAdminSession, OwnAccount, Session
from rotator.backends.postgresql import connection as pg_connection
from rotator.backends.postgresql.base import PgAdminSession, PgOwnAccount
from rotator.backends.postgresql.sql import Statement as PgStatement
from rotator.cli import main as rotator_cli
from rotator.errors import (
    DatabaseAuthError,
    DatabaseError,
    PrivilegeMismatchError,
    RotationStateError,
    RotatorError,
    SecretStoreError,
)
from rotator.ports import SETTING, TESTED
from rotator.secret_store import SecretsManagerStore
from rotator.sql import Statement
from tests.integration.conftest import LeakCheck, fresh_handler
from tests.support.aws import (
    STEPS,
    RotationRecord,
    ServiceFaults,
    begin_rotation,
    drive_rotation,
    event,
    faithful_moto,
    stages,
)
from tests.support.families import only_on, require_control, session_server, set_password
from tests.support.servers import DatabaseServer
from tests.support.world import World, new_password

pytestmark = pytest.mark.slow

CREATE, SET, TEST, FINISH = STEPS
DATABASE_STEPS = (SET, TEST)  # createSecret and finishSecret talk only to Secrets Manager
WRITES = ("ALTER", "CREATE", "DROP", "GRANT", "REVOKE", "SET")
# The cases that do not depend on MySQL's SQL or features, also on PostgreSQL 15.
every_engine = pytest.mark.every_engine("postgresql15")
# The adapters' classes a case makes die after their work, per SQL family.
ADAPTERS: dict[str, dict[str, type]] = {
    "mysql": {"admin": MySQLAdminSession, "own": OwnAccount},
    "mariadb": {"admin": MySQLAdminSession, "own": OwnAccount},
    "postgresql": {"admin": PgAdminSession, "own": PgOwnAccount},
}


def adapter(server: DatabaseServer, kind: str) -> type:
    """``admin`` (the admin session) or ``own`` (a user on its own account) of the server's backend."""
    return ADAPTERS[server.family][kind]


@pytest.fixture(scope="module")
def database_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseServer]:
    """This module's own server of the family (overrides the session's): cases here crash and restart it."""
    family: str = request.param
    with session_server(family, tmp_path_factory.mktemp(f"faults-{family}")) as server:
        yield server


@pytest.fixture
def crashable(database_server: DatabaseServer) -> None:
    """The case crashes, stops or freezes the server: only one the suite started."""
    require_control(database_server)


@pytest.fixture(autouse=True)
def service() -> Iterator[ServiceFaults]:
    with faithful_moto() as faults:
        yield faults


class SimulatedTimeout(Exception):
    """Lambda ends an invocation that runs out of time; the function sees nothing."""


# What a failed step may raise: rotator's own errors, or Powertools' refusal of a
# concurrent duplicate (idempotency on), which Secrets Manager retries like any failure.
TYPED = (RotatorError, IdempotencyAlreadyInProgressError)


# -- the scene: a world, its application, and the checks after every case -------------


# One summary per case; written to $ROTATOR_FAULT_REPORT (JSON) when set, for docs/reliability.md.
SUMMARIES: list[dict[str, Any]] = []
DELIVERIES: dict[str, list[str]] = {}  # what each of two simultaneous deliveries answered


@pytest.fixture(scope="module", autouse=True)
def _summaries() -> Iterator[None]:
    yield
    target = os.environ.get("ROTATOR_FAULT_REPORT")
    if target:
        for summary in SUMMARIES:
            summary["deliveries"] = DELIVERIES.get(summary["case"], [])
        Path(target).write_text(json.dumps(SUMMARIES, indent=1) + "\n")


# The worlds a scene can run: alternating users, single user (its own password, no
# dual passwords), and the two single-user paths that keep the old password on MySQL.
DUAL_MODES = ("single-user-dual", "same-user")
SCENE_WORLDS: dict[str, dict[str, Any]] = {
    "alternating": {},
    "single-user": {"single_user": True},
    "single-user-dual": {"single_user": True, "dual_passwords": True},
    "same-user": {"extra_secret_fields": {"rotation_strategy": "single-user"}},
}


@dataclass
class Scene:
    name: str
    world: World
    load: AppLoad
    leak: LeakCheck
    mode: str  # a key of SCENE_WORLDS
    records: list[RotationRecord] = field(default_factory=list)

    @property
    def server(self) -> DatabaseServer:
        return self.world.server

    @property
    def alternating(self) -> bool:
        return self.mode == "alternating"

    @property
    def windowless(self) -> bool:
        """No window in which the old password is refused: alternating users, or a single
        user whose old password the server keeps as the secondary one (MySQL)."""
        return self.alternating or (self.mode in DUAL_MODES and self.server.family == "mysql")

    def rotate(self, **kwargs: Any) -> RotationRecord:
        assert self.world.invoke is not None
        record = drive_rotation(self.world.invoke, self.world.client, self.world.app_arn, **kwargs)
        for exc in record.exceptions:
            self.leak.record(exc)
        self.records.append(record)
        return record

    frozen: bool = False

    def crash(self) -> None:
        """SIGKILL: the server dies at once, like a crashed instance."""
        self.load.mark_outage_start()
        self.server.kill()

    def shut_down(self) -> None:
        """SIGTERM: a clean shutdown (connections are closed, pending work flushed)."""
        self.load.mark_outage_start()
        self.server.stop()

    def freeze(self) -> None:
        """SIGSTOP: the server accepts TCP connections (the kernel does) but answers nothing.
        PostgreSQL: every process of it (each session is a backend of its own)."""
        self.load.mark_outage_start()
        if self.server.family == "postgresql":
            self.server.pause()  # type: ignore[attr-defined]
        else:
            os.kill(self._pid(), signal.SIGSTOP)
        self.frozen = True

    def recover(self) -> None:
        if self.frozen:
            if self.server.family == "postgresql":
                self.server.resume()  # type: ignore[attr-defined]
            else:
                os.kill(self._pid(), signal.SIGCONT)
            self.frozen = False
            self.load.mark_outage_end()
        if not self.server.running:
            self.server.start()
            self.load.mark_outage_end()

    def _pid(self) -> int:
        return self.server.pid

    def verdict(self, record: RotationRecord) -> None:
        self.recover()
        self.load.wait_for_transactions(5)  # the application works after the case
        self.load.stop()
        world = self.world
        assert app_can_work(world, "AWSCURRENT"), "AWSCURRENT cannot log in and use its privileges"
        for exc in record.exceptions:
            assert isinstance(exc, TYPED), f"untyped failure: {type(exc).__name__}"
        if record.completed:
            assert "AWSCURRENT" in stages(world.client, world.app_arn)[record.token]
            if self.alternating:
                assert world.grants("app") == world.grants("app_clone"), "twin privileges differ"
        report = self.load.report()
        assert report.transactions_ok > 0
        if self.windowless:
            assert report.rotation_caused_failures == 0, report.rotation_caused_by_code
        output = self.leak.assert_clean(*world.all_passwords(), *self.load.passwords_seen)
        assert '"step done"' in output or '"step failed"' in output, "the function's log was not captured"
        assert all(p not in json.dumps(report.as_dict()) for p in world.all_passwords())
        SUMMARIES.append(
            {
                "case": self.name,
                "mode": self.mode,
                "attempts": record.attempts,
                "errors": record.errors,
                "messages": [str(exc) for exc in record.exceptions],  # leak-checked above
                "last_attempt": record.outcomes[-1] if record.outcomes else [],
                "completed": record.completed,
                "transactions_ok": report.transactions_ok,
                "failed_by_code": report.failed_by_code,
                "rotation_caused": report.rotation_caused_by_code,
                "outage_failures": report.outage_failures,
                "auth_failures_first_try": report.auth_failures_first_try,
                "credential_rereads": report.credential_rereads,
            }
        )


@pytest.fixture
def scene_factory(
    world_factory: Callable[..., World], leak_check: LeakCheck, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Scene]]:
    """A world with the application running. ``rotations_before`` rotations run under the
    load first, so when the fault comes the twin exists and workers hold a cached
    AWSCURRENT that the faulty rotation's setSecret makes stale (the re-read path)."""
    scenes: list[Scene] = []

    def build(
        *, single_user: bool = False, rotations_before: int = 1, mode: str | None = None, recycle_every: int = 5
    ) -> Scene:
        mode = mode or ("single-user" if single_user else "alternating")
        world = world_factory(**SCENE_WORLDS[mode])
        prepare_schema(world)
        load = AppLoad(world, LoadConfig(workers=2, recycle_every=recycle_every, failure_pause=0.02))
        scene = Scene(request.node.name, world, load, leak_check, mode)
        scenes.append(scene)
        load.start()
        load.wait_for_transactions(10)
        load.set_phase("warm-up")
        for _ in range(rotations_before):
            assert scene.rotate().completed
        load.set_phase("fault")
        return scene

    yield build
    for scene in scenes:
        scene.load.stop()
        scene.recover()


@pytest.fixture
def scene(scene_factory: Callable[..., Scene]) -> Scene:
    return scene_factory()


# -- fault injection --------------------------------------------------------------


class StatementTrap:
    """Runs ``action`` on the rotator's own session just before the first statement
    that ``when`` accepts, once armed: a fault in the middle of a step."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.when: Callable[[Statement], bool] | None = None
        self.action: Callable[[Any], None] = lambda _session: None
        self.fired = False
        self.writes = 0
        for session_class in (Session, pg_connection.Session):  # MySQL's and PostgreSQL's
            monkeypatch.setattr(session_class, "execute", self._trapped(session_class.execute))

    def _trapped(self, original: Callable[..., list[tuple[Any, ...]]]) -> Callable[..., list[tuple[Any, ...]]]:
        def execute(session: Any, statement: Statement) -> list[tuple[Any, ...]]:
            if self.when is not None and not self.fired and self.when(statement):
                self.fired = True
                self.action(session)
            rows = original(session, statement)
            if statement.verb in WRITES:
                self.writes += 1
            return rows

        return execute

    def arm(self, when: Callable[[Statement], bool], action: Callable[[Any], None]) -> None:
        self.when, self.action, self.fired, self.writes = when, action, False, 0


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> StatementTrap:
    return StatementTrap(monkeypatch)


def mid_step(trap: StatementTrap, step: str, alternating: bool) -> Callable[[Statement], bool]:
    """Where in a step the fault lands: setSecret after its first user change (the
    twin has the new password, its privileges not yet synced), or for single user
    right at the password change; testSecret while it reads privileges."""
    if step == SET and alternating:
        # MySQL's setSecret reads the twin back after its first change: the fault lands
        # between the two. PostgreSQL's warm setSecret is that one ALTER ROLE and nothing
        # after it (the twin already equal): the fault lands just before it.
        return lambda statement: trap.writes >= 1 or (isinstance(statement, PgStatement) and statement.verb in WRITES)
    if step == SET:  # MySQL's label; PostgreSQL's "change the session user's own password (…)"
        return lambda statement: statement.label.startswith(("set own password", "change the session user's own"))
    return lambda statement: statement.label.startswith(("read privileges", "read server info"))


def kill_session(server: DatabaseServer) -> Callable[[Any], None]:
    """``KILL CONNECTION`` of the function's session; PostgreSQL: ``pg_terminate_backend``."""

    def action(session: Any) -> None:
        if server.family == "postgresql":
            (pid,) = session._connection.run("SELECT pg_backend_pid()")[0]
            server.sql("SELECT pg_terminate_backend(%s)", (pid,))
        else:
            server.sql("KILL CONNECTION %s", (session._connection.thread_id(),))

    return action


@contextmanager
def container_per_thread() -> Iterator[None]:
    """Each thread gets its own container, as each Lambda execution environment does."""
    local = threading.local()
    original = handler_module._container

    def container() -> bootstrap.Container:
        built: bootstrap.Container | None = getattr(local, "container", None)
        if built is None:
            built = local.container = bootstrap.build()
        return built

    handler_module._container = container  # type: ignore[assignment]
    try:
        yield
    finally:
        handler_module._container = original  # type: ignore[assignment]


def deliver_twice(world: World, token: str, step: str) -> list[BaseException | dict[str, str]]:
    """Two deliveries of one step at the same moment, each in its own execution environment."""
    assert world.invoke is not None
    invoke = world.invoke
    barrier = threading.Barrier(2)
    results: list[BaseException | dict[str, str]] = []

    def deliver() -> None:
        handler_module._container().runner  # noqa: B018 - a warm execution environment: wired before the event arrives
        barrier.wait()
        try:
            results.append(invoke(event(world.app_arn, token, step)))
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def judge_deliveries(scene: Scene, results: list[BaseException | dict[str, str]]) -> None:
    """Each delivery succeeded or failed with a typed error (leak-checked); at least one succeeded."""
    for result in results:
        if isinstance(result, BaseException):
            scene.leak.record(result)
            assert isinstance(result, TYPED), f"untyped failure: {type(result).__name__}"
    assert any(isinstance(r, dict) for r in results), results
    DELIVERIES[scene.name] = [r["outcome"] if isinstance(r, dict) else type(r).__name__ for r in results]


# -- the database goes away ----------------------------------------------------------


@every_engine
@pytest.mark.usefixtures("crashable")
@pytest.mark.parametrize(
    ("step", "how"),
    [(CREATE, "crash"), (SET, "crash"), (SET, "shutdown"), (TEST, "crash"), (TEST, "shutdown"), (FINISH, "crash")],
)
def test_database_goes_away_during_a_step_then_retry(scene: Scene, trap: StatementTrap, step: str, how: str) -> None:
    """The server is killed (or shut down) during the step and restarted; the retried rotation completes."""
    go_away = scene.crash if how == "crash" else scene.shut_down

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == step:
            if step in DATABASE_STEPS:
                trap.arm(mid_step(trap, step, alternating=True), lambda _session: go_away())
            else:
                go_away()  # down while a step that needs no database runs
        elif not scene.server.running:
            scene.recover()

    record = scene.rotate(before_step=before_step)
    assert record.completed
    if step in DATABASE_STEPS:
        assert trap.fired and record.errors == [f"{step}: DatabaseUnreachableError"]
    else:
        assert record.errors == []
    scene.verdict(record)


@every_engine
@pytest.mark.usefixtures("crashable")
def test_database_crash_at_single_user_password_change(
    scene_factory: Callable[..., Scene], trap: StatementTrap
) -> None:
    """Single user: the server dies as the password change is sent; the retry converges."""
    scene = scene_factory(single_user=True)

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == SET:
            trap.arm(mid_step(trap, SET, alternating=False), lambda _session: scene.crash())
        elif not scene.server.running:
            scene.recover()

    record = scene.rotate(before_step=before_step)
    assert record.completed and record.errors == ["setSecret: DatabaseUnreachableError"]
    scene.verdict(record)


@every_engine
@pytest.mark.usefixtures("crashable")
def test_database_freezes_during_set_secret_then_retry(
    scene_factory: Callable[..., Scene], trap: StatementTrap, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server stops answering (SIGSTOP) mid-step: the function's read timeout ends the step
    with DatabaseUnreachableError instead of hanging until Lambda kills it; the retry completes."""
    monkeypatch.setenv("DB_READ_TIMEOUT", "2")
    scene = scene_factory()

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == SET:
            trap.arm(mid_step(trap, SET, alternating=True), lambda _session: scene.freeze())
        elif scene.frozen:
            scene.recover()

    record = scene.rotate(before_step=before_step)
    assert trap.fired and record.completed and record.errors == ["setSecret: DatabaseUnreachableError"]
    scene.verdict(record)


@every_engine
@pytest.mark.parametrize(("single_user", "step"), [(False, SET), (False, TEST), (True, SET)])
def test_session_killed_during_a_step_then_retry(
    scene_factory: Callable[..., Scene], trap: StatementTrap, single_user: bool, step: str
) -> None:
    """``KILL CONNECTION`` of the function's session mid-step fails the step; the retry completes."""
    scene = scene_factory(single_user=single_user)

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == step:
            trap.arm(mid_step(trap, step, alternating=not single_user), kill_session(scene.server))

    record = scene.rotate(before_step=before_step)
    assert trap.fired and record.completed
    assert len(record.errors) == 1 and record.errors[0].startswith(step)
    assert isinstance(record.exceptions[0], DatabaseError)
    scene.verdict(record)


# -- the admin credentials stop working ------------------------------------------------


@every_engine
@pytest.mark.parametrize("step", STEPS)
def test_admin_password_changed_behind_our_back_then_fixed(scene: Scene, step: str) -> None:
    """Admin refused: the rotation stays failed with DatabaseAuthError and AWSCURRENT untouched;
    once the admin secret holds the new password, the retry completes."""
    world = scene.world
    new_admin_password = new_password()
    world.passwords_seen.add(new_admin_password)
    current_before = world.app_secret()

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == step:
            set_password(world.server, world.admin_user, new_admin_password)
        if attempt == 2 and name == CREATE:
            # Stayed failed: AWSCURRENT is what it was and still works.
            assert world.app_secret() == current_before and app_can_work(world, "AWSCURRENT")
            admin = {**world.admin_secret(), "password": new_admin_password}  # the operator fixes the secret
            world.client.put_secret_value(SecretId=world.admin_arn, SecretString=json.dumps(admin))

    record = scene.rotate(before_step=before_step)
    assert record.completed
    if step == FINISH:
        assert record.errors == []  # finishSecret needs no admin login
    else:
        failing_step = TEST if step == TEST else SET
        assert record.errors == [f"{failing_step}: DatabaseAuthError"]
        assert isinstance(record.exceptions[0], DatabaseAuthError)
        assert "admin" in str(record.exceptions[0])
    scene.verdict(record)


@only_on("mariadb", "max_password_errors (error 4150) is MariaDB's; MySQL locks per account (FAILED_LOGIN_ATTEMPTS)")
def test_stale_clients_block_the_twin_then_the_retry_unblocks_it(scene: Scene) -> None:
    """MariaDB's max_password_errors: refused logins of stale application instances block the
    twin after setSecret changed its password; testSecret fails with AccountLockedError (error
    4150, a lock-out), so the blocked user never becomes AWSCURRENT; the retry's ALTER USER unblocks it."""
    world = scene.world
    stale = world.app_secret("AWSPREVIOUS")  # the twin, with the password it has before setSecret

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == TEST:
            codes = []  # the workers' own stale logins may already have counted against it
            while 4150 not in codes and len(codes) < 5:
                with pytest.raises(pymysql.err.OperationalError) as refused:
                    world.connect(stale).close()
                codes.append(refused.value.args[0])
            assert codes[-1] == 4150 and set(codes) <= {1045, 4150}, codes

    world.server.sql("SET GLOBAL max_password_errors = 2")
    try:
        record = scene.rotate(before_step=before_step)
    finally:
        world.server.sql("SET GLOBAL max_password_errors = DEFAULT")
    assert record.completed and record.errors == ["testSecret: AccountLockedError"]
    assert "locked after failed logins (max_password_errors) (error 4150)" in str(record.exceptions[0])
    scene.verdict(record)


# -- Secrets Manager throttles or fails once ---------------------------------------------

SM_CALLS = {CREATE: "PutSecretValue", SET: "DescribeSecret", TEST: "DescribeSecret", FINISH: "UpdateSecretVersionStage"}
SM_FAULTS = {
    "throttled": (400, "ThrottlingException", False),
    "5xx-after-apply": (500, "InternalServiceError", True),
}


@every_engine
@pytest.mark.parametrize("fault", SM_FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_secrets_manager_fails_one_call(scene: Scene, service: ServiceFaults, step: str, fault: str) -> None:
    """One throttled or 5xx answer is absorbed by botocore's retries (standard mode); a write
    whose answer was lost is repeated harmlessly, or the rotation's retry finds it done."""
    status, code, applied = SM_FAULTS[fault]

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == step:
            service.inject(SM_CALLS[step], status, code, applied=applied)

    record = scene.rotate(before_step=before_step)
    assert record.completed and service.answered == [f"{SM_CALLS[step]}: {status} {code}"]
    if step == FINISH and applied:
        # The label moved, the answer was lost; botocore's retry repeats the call, which
        # now finds AWSCURRENT elsewhere and is refused. The rotation's retry sees the
        # token is AWSCURRENT and ends at once.
        assert record.errors in ([], ["finishSecret: SecretStoreError"])
        if record.errors:
            assert record.outcomes[-1] == ["already-current"] * 4
    else:
        assert record.errors == [], [str(e) for e in record.exceptions]
    scene.verdict(record)


# -- the function dies between the database change and the secret write -----------------


def die_after(monkeypatch: pytest.MonkeyPatch, owner: type, method: str, label: str | None = None) -> list[int]:
    """``owner.method`` does its work and then the invocation times out, once (for
    ``move_label``: once it moved ``label``)."""
    original = getattr(owner, method)
    died: list[int] = []

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if not died and (label is None or args[1] == label):
            died.append(1)
            raise SimulatedTimeout(f"{owner.__name__}.{method} finished, then the invocation timed out")
        return result

    # A real timeout ends the process: no code of the function runs after it. The exception
    # stands in for it; it is no DatabaseError, so the core's clean-up for a change it knows
    # did not apply (single user: ROTATOR_SETTING moved back) does not run on it either.
    monkeypatch.setattr(owner, method, wrapper)
    return died


@every_engine
@pytest.mark.parametrize(
    ("single_user", "step", "owner", "method", "label"),
    [
        (False, CREATE, SecretsManagerStore, "put_pending", None),
        (False, SET, "admin", "sync_twin", None),
        (True, SET, "own", "change_password", None),
        (False, TEST, SecretsManagerStore, "move_label", TESTED),
        (False, FINISH, SecretsManagerStore, "move_label", "AWSCURRENT"),
    ],
    ids=[
        "create-after-put",
        "set-after-sync",
        "single-user-set-after-alter",
        "test-after-label",
        "finish-after-promote",
    ],
)
def test_function_dies_after_its_write_then_retry(
    scene_factory: Callable[..., Scene],
    monkeypatch: pytest.MonkeyPatch,
    single_user: bool,
    step: str,
    owner: type | str,
    method: str,
    label: str | None,
) -> None:
    """The step's change is made, the invocation times out before returning; the retry
    (a fresh execution environment, same token) finds the change and completes."""
    scene = scene_factory(single_user=single_user)
    died = die_after(monkeypatch, adapter(scene.server, owner) if isinstance(owner, str) else owner, method, label)

    def before_step(attempt: int, name: str) -> None:
        if attempt == 2 and name == CREATE:
            fresh_handler()  # Lambda replaces the execution environment after a timeout

    record = scene.rotate(before_step=before_step)
    # The handler turns what it did not anticipate into UnexpectedError (message withheld).
    assert died and record.completed and record.errors == [f"{step}: UnexpectedError"]
    assert isinstance(record.exceptions[0].__context__, SimulatedTimeout)
    if step == FINISH:
        expected_retry = ["already-current"] * 4
    elif step == TEST:
        expected_retry = ["pending-exists", "twin-synced", "already-tested", "promoted"]
    elif single_user:
        expected_retry = ["pending-exists", "password-already-set", "login-ok", "promoted"]
    else:
        expected_retry = ["pending-exists", "twin-synced", "twin-verified", "promoted"]
    assert record.outcomes[-1] == expected_retry
    if single_user:
        # Between the timeout and the retry's finishSecret the database has the new
        # password and AWSCURRENT the old one: new logins are refused. Measured, not hidden.
        report = scene.load.report()
        assert set(report.rotation_caused_by_code) <= {REFUSED_LOGIN[scene.server.family]}
    scene.verdict(record)


# -- two deliveries of the same step at once -----------------------------------------------


@every_engine
# Both "execution environments" share the handler module's Metrics object here; one
# flush empties the other's set. Separate processes on Lambda: an artifact, not a finding.
@pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
@pytest.mark.parametrize(
    ("single_user", "step", "rotations_before", "idempotency"),
    [(False, step, 1, False) for step in STEPS]
    + [(False, SET, 0, False), (True, SET, 1, False), (False, SET, 1, True)],
    ids=[*STEPS, "setSecret-twin-not-yet-created", "single-user-setSecret", "setSecret-idempotency-on"],
)
def test_two_deliveries_of_a_step_at_once(
    scene_factory: Callable[..., Scene],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    single_user: bool,
    step: str,
    rotations_before: int,
    idempotency: bool,
) -> None:
    """Each delivery succeeds or fails with a typed error; the rotation (retried if needed) completes."""
    lockstep = rotations_before == 0 and step == SET
    if lockstep and request.getfixturevalue("database_server").family == "postgresql":
        pytest.skip("the lock-step hook is MySQL's adapter (account_hosts); the other interleavings run here")
    if idempotency:
        request.getfixturevalue("idempotency_table")  # as deployed: Powertools idempotency on DynamoDB
    scene = scene_factory(single_user=single_user, rotations_before=rotations_before)
    world = scene.world
    assert world.invoke is not None
    token = begin_rotation(world.client, world.app_arn)
    if lockstep:
        # The worst interleaving, made certain: both deliveries find the twin missing
        # before either creates it.
        both_looked = threading.Barrier(2, timeout=10)
        original = MySQLAdminSession.account_hosts

        def account_hosts(self: MySQLAdminSession, user: str) -> list[str]:
            hosts = original(self, user)
            if user == world.app_user + "_clone":
                with suppress(threading.BrokenBarrierError):
                    both_looked.wait()
            return hosts

        monkeypatch.setattr(MySQLAdminSession, "account_hosts", account_hosts)
    with container_per_thread():
        for earlier in STEPS[: STEPS.index(step)]:
            world.invoke(event(world.app_arn, token, earlier))
        results = deliver_twice(world, token, step)
        if lockstep:
            monkeypatch.setattr(MySQLAdminSession, "account_hosts", original)
            outcomes = sorted(r["outcome"] if isinstance(r, dict) else type(r).__name__ for r in results)
            assert outcomes == ["DatabaseError", "twin-synced"]  # CREATE USER lost the race: error 1396
        judge_deliveries(scene, results)
        record = scene.rotate(token=token, stage=False)  # as Secrets Manager would continue / retry
    assert record.completed
    scene.verdict(record)


# -- single user without a window: dual passwords under the faults that matter -------------


@only_on("mysql", "dual passwords are MySQL 8.0.14+; on MariaDB these paths have the documented window")
@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("single-user-dual", "dies-after-change"),
        ("single-user-dual", "twice-at-once"),
        ("same-user", "dies-after-change"),
        ("same-user", "twice-at-once"),
        ("same-user", "admin-broken"),
    ],
)
def test_dual_password_rotation_under_faults(
    scene_factory: Callable[..., Scene], monkeypatch: pytest.MonkeyPatch, mode: str, fault: str
) -> None:
    """The function dies between the password change and its return, a duplicate setSecret
    arrives at the same moment, or the admin's password is broken: the rotation ends complete
    (or failed, typed) and the application never sees a refused login (Scene.verdict)."""
    scene = scene_factory(mode=mode)
    world = scene.world
    if fault == "dies-after-change":
        owner, method = (
            (OwnAccount, "change_password") if mode == "single-user-dual" else (MySQLAdminSession, "set_password")
        )
        died = die_after(monkeypatch, owner, method)

        def before_step(attempt: int, name: str) -> None:
            if attempt == 2 and name == CREATE:
                fresh_handler()

        record = scene.rotate(before_step=before_step)
        assert died and record.errors == [f"{SET}: UnexpectedError"]
        assert record.outcomes[-1] == ["pending-exists", "password-already-set", "login-ok-both", "promoted"]
    elif fault == "twice-at-once":
        assert world.invoke is not None
        token = begin_rotation(world.client, world.app_arn)
        with container_per_thread():
            world.invoke(event(world.app_arn, token, CREATE))
            judge_deliveries(scene, deliver_twice(world, token, SET))
            record = scene.rotate(token=token, stage=False)
    else:
        new_admin_password = new_password()
        world.passwords_seen.add(new_admin_password)

        def before_step(attempt: int, name: str) -> None:
            if attempt == 1 and name == SET:
                world.server.sql("ALTER USER %s@'%%' IDENTIFIED BY %s", (world.admin_user, new_admin_password))
            if attempt == 2 and name == CREATE:
                assert app_can_work(world, "AWSCURRENT")
                admin = {**world.admin_secret(), "password": new_admin_password}
                world.client.put_secret_value(SecretId=world.admin_arn, SecretString=json.dumps(admin))

        record = scene.rotate(before_step=before_step)
        assert record.errors == [f"{SET}: DatabaseAuthError"] and "admin" in str(record.exceptions[0])
    assert record.completed
    assert app_can_work(world, "AWSPREVIOUS"), "the old password is not the secondary one"
    scene.verdict(record)


# -- a stale AWSPENDING from an abandoned rotation -------------------------------------------


@every_engine
@pytest.mark.parametrize("abandoned_after", [CREATE, SET, TEST])
def test_stale_pending_from_an_abandoned_rotation(scene: Scene, abandoned_after: str) -> None:
    """A new rotation ignores the abandoned version's value; a late retry of the old token is
    refused with RotationStateError and changes nothing."""
    world = scene.world
    assert world.invoke is not None
    stale = begin_rotation(world.client, world.app_arn)
    for step in STEPS[: STEPS.index(abandoned_after) + 1]:
        world.invoke(event(world.app_arn, stale, step))
    stale_value = world.client.get_secret_value(SecretId=world.app_arn, VersionId=stale)["SecretString"]
    stale_password = json.loads(stale_value)["password"]

    record = scene.rotate()
    assert record.completed and record.errors == []
    assert world.app_secret()["password"] != stale_password

    late = scene.rotate(token=stale, stage=False, attempts=1)
    assert not late.completed and late.errors == ["createSecret: RotationStateError"]
    assert isinstance(late.exceptions[0], RotationStateError)
    assert "AWSCURRENT" in stages(world.client, world.app_arn)[record.token]
    scene.verdict(record)


# -- no way to a lock-out (issue 25): a limit of 1, and the operator's repair ----------------------


@contextmanager
def login_limit_of_one(scene: Scene) -> Iterator[None]:
    """MySQL FAILED_LOGIN_ATTEMPTS 1 on the application user, MariaDB max_password_errors = 1
    (global): a single refused login locks the account."""
    server, user = scene.server, scene.world.app_user
    if server.family == "mysql":
        server.sql("ALTER USER %s@'%%' FAILED_LOGIN_ATTEMPTS 1 PASSWORD_LOCK_TIME 1", (user,))
    else:
        server.sql("SET GLOBAL max_password_errors = 1")
    try:
        yield
    finally:
        if server.family == "mysql":
            server.sql("ALTER USER %s@'%%' FAILED_LOGIN_ATTEMPTS 0 PASSWORD_LOCK_TIME 0", (user,))
        else:
            server.sql("SET GLOBAL max_password_errors = DEFAULT")


def test_single_user_retry_after_a_crash_under_a_login_limit_of_one(
    scene_factory: Callable[..., Scene], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single user, no dual passwords, one refused login locks the account: the function dies right
    after setSecret's ALTER USER; the retry (a fresh environment) tries the pending password first
    (ROTATOR_SETTING) and completes without a refused login: AWSCURRENT works at the end, not locked.
    The application keeps its connections (it makes no new login in the window, which would lock
    the account whoever made it: rotator check warns about such a limit)."""
    scene = scene_factory(single_user=True, recycle_every=10**9)
    died = die_after(monkeypatch, OwnAccount, "change_password")

    def before_step(attempt: int, name: str) -> None:
        if attempt == 2 and name == CREATE:
            fresh_handler()

    with login_limit_of_one(scene):
        record = scene.rotate(before_step=before_step)
        assert died and record.completed and record.errors == [f"{SET}: UnexpectedError"]
        assert record.outcomes[-1] == ["pending-exists", "password-already-set", "login-ok", "promoted"]
        assert app_can_work(scene.world, "AWSCURRENT"), "the account was locked"
    scene.verdict(record)


def run_fix(scene: Scene) -> dict[str, Any]:
    """``rotator fix --force --yes --json`` as the operator runs it; its output joins the leak check."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = rotator_cli(
            ["--ca-bundle", str(scene.server.pki.ca_file), "fix", scene.world.app_arn, "--force", "--yes", "--json"]
        )
    scene.leak.output += out.getvalue() + err.getvalue()
    assert code == 0, out.getvalue() + err.getvalue()
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@every_engine
@pytest.mark.parametrize("mode", ["single-user", "single-user-dual", "same-user"])
def test_abandoned_after_a_crash_then_fixed_then_rotated(
    scene_factory: Callable[..., Scene], monkeypatch: pytest.MonkeyPatch, database_server: DatabaseServer, mode: str
) -> None:
    """The function dies right after setSecret's password change and Secrets Manager gives up: the
    database holds the pending password. rotator fix finds out which password logs in: without dual
    passwords only the pending one (finish: AWSCURRENT moves to it); with MySQL's dual passwords both
    (clear: AWSCURRENT stays). The next rotation completes — with dual passwords without a window
    (the abandoned password is replaced without RETAIN, AWSCURRENT's stays the secondary)."""
    if database_server.family in ("mariadb", "postgresql") and mode != "single-user":
        pytest.skip("dual passwords are MySQL's; on MariaDB and PostgreSQL these modes have the single-user window")
    scene = scene_factory(mode=mode)
    world = scene.world
    assert world.invoke is not None
    owner, method = ("own", "change_password") if mode.startswith("single-user") else ("admin", "set_password")
    died = die_after(monkeypatch, adapter(scene.server, owner), method)
    abandoned = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, abandoned, CREATE))
    with pytest.raises(RotatorError) as raised:
        world.invoke(event(world.app_arn, abandoned, SET))
    scene.leak.record(raised.value)
    assert died and SETTING in stages(world.client, world.app_arn)[abandoned]
    fresh_handler()

    fixed = run_fix(scene)
    dual = scene.server.family == "mysql" and mode != "single-user"
    assert fixed["plan"]["action"] == ("clear" if dual else "finish"), fixed
    assert app_can_work(world, "AWSCURRENT")
    record = scene.rotate()
    assert record.completed and record.errors == []
    if dual:
        assert record.outcomes[-1][1:] == [
            "password-changed" if mode == "single-user-dual" else "password-set-retaining-current",
            "login-ok-both",
            "promoted",
        ]
    scene.verdict(record)


# -- the current user's privileges change ----------------------------------------------------

PRIVILEGE_CHANGES = {
    "grant-added": ("GRANT CREATE ON `appdb`.* TO %s@'%%'", "GRANT INSERT (`total`) ON `reports`.`summary` TO %s@'%%'"),
    "grant-revoked": ("REVOKE DELETE ON `appdb`.* FROM %s@'%%'",),
}


@pytest.mark.parametrize("change", PRIVILEGE_CHANGES)
def test_privileges_changed_between_rotations_reach_the_twin_exactly(
    scene_factory: Callable[..., Scene], change: str
) -> None:
    """A grant added to or revoked from the current user is carried to the twin by the next rotation."""
    scene = scene_factory(rotations_before=1)
    world = scene.world
    current_user = world.app_secret()["username"]
    for statement in PRIVILEGE_CHANGES[change]:
        world.server.sql(statement, (current_user,))
    assert world.grants("app") != world.grants("app_clone")

    record = scene.rotate()
    assert record.completed and record.errors == []
    assert world.app_secret()["username"] != current_user
    scene.verdict(record)


def test_privileges_changed_during_a_rotation_fail_test_secret_then_retry_syncs(scene: Scene) -> None:
    """A grant added between setSecret and testSecret is caught (PrivilegeMismatchError); the retry syncs it."""
    world = scene.world
    current_user = world.app_secret()["username"]

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == TEST:
            world.server.sql("GRANT SELECT ON `reports`.* TO %s@'%%'", (current_user,))

    record = scene.rotate(before_step=before_step)
    assert record.completed and record.errors == ["testSecret: PrivilegeMismatchError"]
    assert isinstance(record.exceptions[0], PrivilegeMismatchError)
    assert "SELECT ON `reports`.*" in str(record.exceptions[0])
    scene.verdict(record)


@every_engine
def test_secret_store_failing_every_retry_is_a_typed_error(
    scene: Scene, service: ServiceFaults, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call throttled on every one of botocore's attempts fails the step with SecretStoreError."""
    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda _self, _context: 0)  # keep the test fast
    retries = dict(bootstrap.BOTO_CONFIG.retries or {})  # type: ignore[attr-defined]
    # botocore rewrites {"max_attempts": n} (retries) into {"total_max_attempts": n + 1} when it builds a client
    attempts = int(retries.get("total_max_attempts") or int(retries["max_attempts"]) + 1)

    def before_step(attempt: int, name: str) -> None:
        if attempt == 1 and name == CREATE:
            service.inject("DescribeSecret", 400, "ThrottlingException", times=attempts)

    record = scene.rotate(before_step=before_step)
    assert record.completed and record.errors == ["createSecret: SecretStoreError"]
    assert isinstance(record.exceptions[0], SecretStoreError) and "ThrottlingException" in str(record.exceptions[0])
    scene.verdict(record)
