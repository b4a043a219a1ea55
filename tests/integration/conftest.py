"""Real MariaDB (a private TLS instance per test session) + moto + the real handler."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rotator import handler as handler_module
from tests.support.lambda_context import FakeLambdaContext
from tests.support.mariadb import MariaDBServer, ensure_binaries
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
    handler_module._runner.cache_clear()


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
