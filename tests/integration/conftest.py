"""Real database servers (a private TLS instance per family, test session and xdist worker:
MariaDB, and MySQL from the Debian sid chroot or ROTATOR_MYSQL_DSN) + moto + the real handler.

Cases create fixed account and schema names (``app``, ``appdb``) and ``db`` empties the
server after each, so a server is never shared by two cases at once: each pytest-xdist
worker starts its own (a few seconds per family), rather than sharing one with
per-case names that every test would have to follow.

Every test that uses a database runs once per server family (see
tests/support/families.py): ``database_server`` is parametrised here, and
``fails_on`` / ``only_on`` marks become a strict xfail or a skip for one family.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pymysql
import pytest
from moto import mock_aws

from rotator import handler as handler_module
from tests.support.aws import create_idempotency_table
from tests.support.cli import Cli, moto_rotation_function
from tests.support.families import (
    FAMILIES,
    POSTGRESQL,
    apply_family_marks,
    family_id,
    private_server,
    server_name,
    session_server,
)
from tests.support.lambda_context import FakeLambdaContext
from tests.support.observe import SegmentCapture
from tests.support.postgresql import PostgreSQLServer
from tests.support.servers import DatabaseServer
from tests.support.world import World, make_world, reset_server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_server" in metafunc.fixturenames:
        # An engine-neutral case marked every_engine runs on PostgreSQL too (issue 22): on
        # every version, or on those the mark names (every_engine("postgresql15")).
        mark = metafunc.definition.get_closest_marker("every_engine")
        servers = FAMILIES if mark is None else (*FAMILIES, *(mark.args or POSTGRESQL))
        metafunc.parametrize("database_server", servers, ids=family_id, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        apply_family_marks(item)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    with session_server("mariadb", tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(scope="session")
def mysql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    with session_server("mysql", tmp_path_factory.mktemp("mysql")) as server:
        yield server


@pytest.fixture(scope="session")
def postgresql15(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    """Debian 12's PostgreSQL 15 (not yet in FAMILIES: see tests/support/servers.py)."""
    with session_server("postgresql15", tmp_path_factory.mktemp("postgresql15")) as server:
        yield server


@pytest.fixture(scope="session")
def postgresql18(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseServer]:
    """Debian sid's PostgreSQL 18 in its chroot (not yet in FAMILIES)."""
    with session_server("postgresql18", tmp_path_factory.mktemp("postgresql18")) as server:
        yield server


@pytest.fixture(params=POSTGRESQL, ids=family_id)
def pg(request: pytest.FixtureRequest) -> Iterator[PostgreSQLServer]:
    """The session's server of one PostgreSQL version, emptied of test roles and databases
    before and after each test (PostgreSQL-only modules, until the backend exists)."""
    server: PostgreSQLServer = request.getfixturevalue(request.param)
    if not server.running:
        server.start()
    server.reset()
    yield server
    if not server.running:
        server.start()
    server.reset()


@pytest.fixture(scope="session")
def database_server(request: pytest.FixtureRequest) -> DatabaseServer:
    """The session's server of the family this run of the test is for."""
    server: DatabaseServer = request.getfixturevalue(request.param)
    return server


@pytest.fixture
def db(database_server: DatabaseServer) -> Iterator[DatabaseServer]:
    """The session's server, emptied of test users and schemas after each test."""
    if not database_server.running:
        database_server.start()
    reset_server(database_server)
    yield database_server
    if not database_server.running:
        database_server.start()
    reset_server(database_server)


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, db: DatabaseServer) -> DatabaseServer:
    """The function's environment as the SAM template sets it, pointed at the test CA."""
    monkeypatch.setenv("ROTATOR_CA_BUNDLE", str(db.pki.ca_file))
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("DB_READ_TIMEOUT", "10")
    return db


def fresh_handler() -> None:
    """Forget the wiring of an earlier test (its moto backend and settings)."""
    handler_module._container.cache_clear()


@pytest.fixture
def invoke(function_env: DatabaseServer, aws: Any) -> Iterator[Callable[[dict[str, Any]], Any]]:
    fresh_handler()

    def call(event: dict[str, Any]) -> Any:
        return handler_module.lambda_handler(event, FakeLambdaContext())

    yield call
    fresh_handler()


@pytest.fixture
def world(db: DatabaseServer, aws: Any, invoke: Callable[[dict[str, Any]], Any]) -> World:
    created = make_world(db, aws)
    created.invoke = invoke
    return created


@pytest.fixture
def world_factory(db: DatabaseServer, aws: Any, invoke: Callable[[dict[str, Any]], Any]) -> Callable[..., World]:
    def build(**kwargs: Any) -> World:
        created = make_world(db, aws, **kwargs)
        created.invoke = invoke
        return created

    return build


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path


class LeakCheck:
    """Collects everything the function printed and every error it raised, so a
    test can prove that no credential appears in any of it."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self._capfd = capfd
        self.errors: list[str] = []
        self.output = ""

    def record(self, exc: BaseException) -> None:
        self.errors.append(f"{type(exc).__name__}: {exc}")

    def assert_clean(self, *secrets: str) -> str:
        captured = self._capfd.readouterr()
        self.output += captured.out + captured.err
        text = self.output + "\n".join(self.errors)
        for secret in secrets:
            assert secret, "an empty string cannot be checked for"
            assert secret not in text, "a credential appeared in the function's output or errors"
        return text


@pytest.fixture
def leak_check(capfd: pytest.CaptureFixture[str]) -> LeakCheck:
    return LeakCheck(capfd)


IDEMPOTENCY_TABLE = "rotator-idempotency"


@pytest.fixture
def idempotency_table(function_env: DatabaseServer, aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Idempotency on, as deployed, against a moto DynamoDB table shaped like the template's."""
    create_idempotency_table(boto3.client("dynamodb", region_name="us-east-1"), IDEMPOTENCY_TABLE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    monkeypatch.delenv("POWERTOOLS_IDEMPOTENCY_DISABLED", raising=False)
    return IDEMPOTENCY_TABLE


@pytest.fixture
def xray(monkeypatch: pytest.MonkeyPatch) -> Iterator[SegmentCapture]:
    """Tracing on, as in Lambda (tests otherwise run with POWERTOOLS_TRACE_DISABLED): the
    X-Ray SDK enabled, botocore patched as the handler patches it, sampling off (record
    everything) and an emitter that keeps the serialized segments instead of sending
    them to a daemon. The test runs inside one open segment; ``xray.close()`` ends it."""
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core import xray_recorder

    from rotator import secret_store
    from rotator.backends.mysql import base as mysql

    capture = SegmentCapture(xray_recorder)
    monkeypatch.setattr(xray_recorder, "_emitter", capture)
    monkeypatch.setattr(xray_recorder, "_sampling", False)
    for module in (handler_module, mysql, secret_store):
        monkeypatch.setattr(module.tracer, "disabled", False)
    global_sdk_config.set_sdk_enabled(True)
    try:
        handler_module.tracer.patch(["botocore"])  # what the handler does at import when tracing is on
        capture.open("rotator-test")
        yield capture
    finally:
        capture.close()
        global_sdk_config.set_sdk_enabled(False)


# -- the operator CLI (issue 6) ------------------------------------------------------


@pytest.fixture
def db_cli(cli: Cli, db: DatabaseServer) -> Cli:
    """The CLI, trusting the test server's CA for database TLS (``--ca-bundle``)."""
    cli.base_args = ["--ca-bundle", str(db.pki.ca_file)]
    return cli


@pytest.fixture
def server_world(db: DatabaseServer, moto_endpoint: str, db_cli: Cli) -> World:
    """A world whose secrets live in a moto *server* (for ``--endpoint-url``), with the
    CLI pointed at it; ``world.client`` talks to the same server."""
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    db_cli.base_args += ["--endpoint-url", moto_endpoint]
    return make_world(db, client)


@pytest.fixture(scope="session")
def second_server(
    database_server: DatabaseServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DatabaseServer]:
    """Another server of the same family on another port, with the same CA and
    certificate (so TLS verifies and only the server's identity differs)."""
    with private_server(
        server_name(database_server), tmp_path_factory.mktemp("second"), pki=database_server.pki
    ) as server:
        yield server


@pytest.fixture
def plain_server(database_server: DatabaseServer, tmp_path: Path) -> Iterator[DatabaseServer]:
    """A private server of the same family that offers no TLS at all (not the machine's shared one)."""
    with private_server(server_name(database_server), tmp_path / "plain", tls=False) as server:
        yield server


@pytest.fixture
def partial_revokes(db: DatabaseServer) -> Iterator[DatabaseServer]:
    """MySQL with ``partial_revokes=ON`` for the test (dynamic: no restart; off again once
    the test's accounts, the only ones with partial revokes, are dropped)."""
    if db.family != "mysql":
        pytest.skip("partial revokes are MySQL's")
    before = db.sql("SELECT @@GLOBAL.partial_revokes")[0][0]
    try:
        db.sql("SET GLOBAL partial_revokes = ON")
    except pymysql.err.MySQLError as exc:  # e.g. a managed server that only takes parameter groups
        pytest.skip(f"cannot turn partial_revokes on: {exc}")
    yield db
    reset_server(db)
    db.sql("SET GLOBAL partial_revokes = %s", (int(before),))


@pytest.fixture
def rotation_function(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ARN of a rotation function that exists in (in-process) moto."""
    return moto_rotation_function(monkeypatch)
