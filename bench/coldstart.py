"""The child process of the cold-start benchmark: one new "container".

    python -m bench.coldstart --secret ARN --token TOKEN --out result.json

Run by bench.perf in a fresh interpreter whose environment points Secrets Manager
and DynamoDB at a moto server on 127.0.0.1 and the CA bundle at the private
MariaDB's CA. It installs the probe, imports ``rotator.handler`` (counting what
the import creates), then drives the four steps of one rotation through
``lambda_handler`` as Secrets Manager would, timing each. The first step is the
first invocation of the container: it pays for the wiring (boto3 clients,
idempotency layer) on top of its own work.

The probe itself imports boto3, botocore and PyMySQL before ``rotator.handler``,
so the import time measured here is not the cold import time: bench.perf measures
that in separate, uninstrumented interpreters.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import socket
import time
from pathlib import Path
from typing import Any

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


def loopback_guard() -> None:
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address and str(address[0]) not in {"127.0.0.1", "::1", "localhost"}:
            raise ConnectionRefusedError(f"the bench may only connect to 127.0.0.1, not {address[0]}")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    loopback_guard()
    from bench.counters import Probe, summarize
    from tests.support.lambda_context import FakeLambdaContext

    probe = Probe()
    probe.install()
    output = io.StringIO()
    result: dict[str, Any] = {"steps": {}, "outcomes": {}}
    with contextlib.redirect_stdout(output), probe.recording():
        started = time.perf_counter()
        import rotator.handler as handler_module

        result["instrumented_import_ms"] = (time.perf_counter() - started) * 1000
        result["import_counts"] = summarize(probe.counts)
        before = probe.snapshot()
        rotation_started = time.perf_counter()
        for step in STEPS:
            event = {"SecretId": args.secret, "ClientRequestToken": args.token, "Step": step}
            step_started = time.perf_counter()
            response = handler_module.lambda_handler(event, FakeLambdaContext())
            result["steps"][step] = (time.perf_counter() - step_started) * 1000
            result["outcomes"][step] = response.get("outcome")
        result["rotation_ms"] = (time.perf_counter() - rotation_started) * 1000
        result["rotation_counts"] = summarize(probe.since(before))
    result["function_output_lines"] = len(output.getvalue().splitlines())
    args.out.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
