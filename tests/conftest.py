"""Fixtures shared by every test layer.

Nothing here may reach past 127.0.0.1: a socket guard fails any other connection,
and AWS is moto, in-process.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "rotator",
    "POWERTOOLS_METRICS_NAMESPACE": "Rotator",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "SAM_CLI_TELEMETRY": "0",
}
for _key, _value in TEST_ENV.items():
    os.environ[_key] = _value
for _key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SECRETS_MANAGER_ENDPOINT", "IDEMPOTENCY_TABLE"):
    os.environ.pop(_key, None)

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


@pytest.fixture(autouse=True, scope="session")
def _loopback_only() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]
