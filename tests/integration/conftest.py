"""Real MariaDB (a private TLS instance per test session) + moto + the real handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rotator import handler as handler_module
from tests.support.aws import create_idempotency_table
from tests.support.cli import Cli, moto_rotation_function
from tests.support.lambda_context import FakeLambdaContext
from tests.support.mariadb import MariaDBServer, ensure_binaries
from tests.support.observe import SegmentCapture
from tests.support.world import World, make_world, reset_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    ensure_binaries()
    with MariaDBServer(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture
def db(mariadb: MariaDBServer) -> Iterator[MariaDBServer]:
    """The session's server, emptied of test users and schemas after each test."""
    if not mariadb.running:
        mariadb.start()
    reset_server(mariadb)
    yield mariadb
    if not mariadb.running:
        mariadb.start()
    reset_server(mariadb)


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch, db: MariaDBServer) -> MariaDBServer:
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
def invoke(function_env: MariaDBServer, aws: Any) -> Iterator[Callable[[dict[str, Any]], Any]]:
    fresh_handler()

    def call(event: dict[str, Any]) -> Any:
        return handler_module.lambda_handler(event, FakeLambdaContext())

    yield call
    fresh_handler()


@pytest.fixture
def world(db: MariaDBServer, aws: Any, invoke: Callable[[dict[str, Any]], Any]) -> World:
    created = make_world(db, aws)
    created.invoke = invoke
    return created


@pytest.fixture
def world_factory(db: MariaDBServer, aws: Any, invoke: Callable[[dict[str, Any]], Any]) -> Callable[..., World]:
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
def idempotency_table(function_env: MariaDBServer, aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
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

    from rotator import mysql, secret_store

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
def db_cli(cli: Cli, db: MariaDBServer) -> Cli:
    """The CLI, trusting the test server's CA for database TLS (``--ca-bundle``)."""
    cli.base_args = ["--ca-bundle", str(db.pki.ca_file)]
    return cli


@pytest.fixture
def server_world(db: MariaDBServer, moto_endpoint: str, db_cli: Cli) -> World:
    """A world whose secrets live in a moto *server* (for ``--endpoint-url``), with the
    CLI pointed at it; ``world.client`` talks to the same server."""
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    db_cli.base_args += ["--endpoint-url", moto_endpoint]
    return make_world(db, client)


@pytest.fixture(scope="session")
def second_mariadb(mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    """Another server on another port, with the same CA and certificate as ``mariadb``
    (so TLS verifies and only the server's identity differs)."""
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb-2"))
    server.pki = mariadb.pki
    with server:
        yield server


@pytest.fixture
def rotation_function(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The ARN of a rotation function that exists in (in-process) moto."""
    return moto_rotation_function(monkeypatch)
