"""Fixtures shared by every test layer.

Nothing here may reach past 127.0.0.1: a socket guard fails any other connection,
and AWS is moto, in-process.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.env import LOCAL_ENV

if TYPE_CHECKING:  # imported in the fixtures: rotator reads the environment set below
    from tests.support.cli import Cli, MotoServer
    from tests.support.observe import RunSpy

TEST_ENV = {**LOCAL_ENV, "SAM_CLI_TELEMETRY": "0"}
for _key, _value in TEST_ENV.items():
    os.environ[_key] = _value
for _key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SECRETS_MANAGER_ENDPOINT", "IDEMPOTENCY_TABLE"):
    os.environ.pop(_key, None)


def _share_botocore_data() -> None:
    """One botocore data loader for every session of the test process.

    Each ``boto3.session.Session()`` (the function builds one per container, and the tests
    build a container per case) gets a new loader that parses the service models and
    ``endpoints.json`` again: ~40 ms per client, a tenth of the integration tier's time
    (issue 23). The loader only reads botocore's read-only data files and caches what it
    parsed, so sharing it changes nothing a test can observe but the time."""
    import botocore.loaders
    import botocore.session

    create = botocore.loaders.create_loader
    loaders: dict[str | None, botocore.loaders.Loader] = {}

    def shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
        if search_path_string not in loaders:
            loaders[search_path_string] = create(search_path_string)
        return loaders[search_path_string]

    botocore.session.create_loader = shared_loader  # type: ignore[assignment]


_share_botocore_data()

_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guard(address: Any) -> None:
    if isinstance(address, tuple) and address and str(address[0]) not in _LOOPBACK:
        raise ConnectionRefusedError(f"tests may only connect to 127.0.0.1, not {address[0]}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _guard(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _guard(address)
    return _real_connect_ex(self, address)


# The tiers (make unit, make integration, make template; make test runs them all): each
# test is marked with its directory's tier, so `-m "not integration"` selects by tier too.
TIERS = ("unit", "integration", "template")
_TESTS_DIR = Path(__file__).parent


def pytest_configure(config: pytest.Config) -> None:
    from tests.support.mysql import DSN_VARIABLE, external_dsn

    workers = config.getoption("numprocesses", None)
    if workers and not hasattr(config, "workerinput") and external_dsn():
        raise pytest.UsageError(
            f"{DSN_VARIABLE} names one MySQL server for every pytest-xdist worker: their test accounts "
            "would collide. Run with -n 0 (make ... WORKERS=0)."
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(_TESTS_DIR).parts if item.path.is_relative_to(_TESTS_DIR) else ()
        if parts and parts[0] in TIERS:
            item.add_marker(parts[0])


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which database server each family's integration tests run on, and its version."""
    from tests.support.families import FAMILIES, describe

    return [f"database server: {describe(family)}" for family in FAMILIES]


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is *now* (capsys/capfd replace it per test)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture(autouse=True)
def _powertools_logs_follow_stdout() -> Iterator[None]:
    """Powertools' Logger keeps the ``sys.stdout`` it saw at import, which under pytest
    is the session's capture: point it at the test's stdout so capsys, capfd and the
    leak checks see the function's JSON logs (as CloudWatch would)."""
    service = logging.getLogger(os.environ["POWERTOOLS_SERVICE_NAME"])
    handlers = [handler for handler in service.handlers if isinstance(handler, logging.StreamHandler)]
    previous = [handler.setStream(_CurrentStdout()) for handler in handlers]  # type: ignore[arg-type]
    yield
    for handler, stream in zip(handlers, previous, strict=True):
        if stream is not None:
            handler.setStream(stream)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli("check", arn)`` runs the rotator CLI in-process: exit code, stdout, stderr."""
    from tests.support.cli import Cli

    return Cli(capsys, monkeypatch)


@pytest.fixture(scope="session")
def _moto_server() -> Iterator[MotoServer]:
    from tests.support.cli import MotoServer

    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def moto_endpoint(_moto_server: MotoServer) -> Iterator[str]:
    """The URL of a moto server on 127.0.0.1, emptied after each test."""
    _moto_server.reset()
    yield _moto_server.url
    _moto_server.reset()


@pytest.fixture
def cli_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """``cli_clock(hours)`` makes the CLI believe it runs that many hours from now
    (moto dates every version "now", so this is how a pending version grows old)."""
    import datetime

    from rotator import schedule

    def advance(hours: float) -> None:
        moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=hours)
        monkeypatch.setattr(schedule, "utcnow", lambda: moment)

    return advance


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> RunSpy:
    """Counts the rotation steps that really ran behind the handler's idempotency layer."""
    from rotator.rotation import Rotation
    from tests.support.observe import RunSpy

    spy = RunSpy(Rotation.run)
    monkeypatch.setattr(Rotation, "run", spy.method())
    return spy
