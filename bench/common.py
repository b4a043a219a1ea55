"""What every bench section shares: where things are, the function's environment,
summary statistics, the machine's description, and the loopback guard."""

from __future__ import annotations

import contextlib
import platform
import socket
import statistics
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.support.env import LOCAL_ENV

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs" / "performance.md"
ARTIFACT = REPO / ".aws-sam" / "build" / "RotationFunction"
REGION = "us-east-1"
TABLE = "rotator-bench-idempotency"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

# The function's environment as the template sets it, minus what needs Lambda.
# Tracing: Powertools switches the tracer off outside Lambda (no LAMBDA_TASK_ROOT);
# the cold-start children turn it on as the template's default TracingMode=Active does.
FUNCTION_ENV = {
    **LOCAL_ENV,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_IDEMPOTENCY_DISABLED": "false",
    "IDEMPOTENCY_TABLE": TABLE,
    "DB_CONNECT_TIMEOUT": "3",
    "DB_READ_TIMEOUT": "10",
}
SCRUB_ENV = (
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "SECRETS_MANAGER_ENDPOINT",
    "LAMBDA_TASK_ROOT",
    "AWS_LAMBDA_FUNCTION_NAME",
    "_X_AMZN_TRACE_ID",
)


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and spread of ``values`` (ms or s, as given)."""
    ordered = sorted(values)
    if not ordered:
        return {}
    if len(ordered) == 1:
        only = ordered[0]
        return {"n": 1, "median": only, "p10": only, "p90": only, "min": only, "max": only}
    deciles = statistics.quantiles(ordered, n=10, method="inclusive")
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p10": deciles[0],
        "p90": deciles[-1],
        "min": ordered[0],
        "max": ordered[-1],
    }


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def versions(server_label: str, server_version: str | None = None) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("rotator", "boto3", "botocore", "aws-lambda-powertools", "aws-xray-sdk", "PyMySQL", "moto"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    if server_version:
        found[server_label] = server_version
    return found


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Refuse any TCP connection that is not to 127.0.0.1 (the bench and the soak run outside pytest's guard)."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address and str(address[0]) not in {"127.0.0.1", "::1", "localhost"}:
            raise ConnectionRefusedError(f"the bench may only connect to 127.0.0.1, not {address[0]}")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
