"""The child process of the cold-start benchmark: one new "container".

    python -m bench.coldstart --secret ARN --token TOKEN --out result.json [--artifact DIR]

Run by the bench's cold section in a fresh interpreter (the runtime's Python 3.13
with the sam build artifact first on its path, as shipped, when both exist) whose
environment points Secrets Manager and DynamoDB at a moto server on 127.0.0.1 and
the CA bundle at the private database server's CA. It installs the probe, imports ``rotator.handler`` (counting what
the import creates), then drives the four steps of one rotation through
``lambda_handler`` as Secrets Manager would, timing each. The first step is the
first invocation of the container: it pays for the wiring (boto3 clients,
idempotency layer) on top of its own work. With --artifact it also lists the
modules the artifact holds without a .pyc that the import or the rotation loaded:
Lambda compiles those at every cold start (its code directory is read-only).

The probe itself imports boto3, botocore and PyMySQL before ``rotator.handler``,
so the import time measured here is not the cold import time: bench.perf measures
that in separate, uninstrumented interpreters.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import socket
import sys
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
    parser.add_argument("--artifact", default="", help="the artifact directory the function is imported from")
    args = parser.parse_args()

    loopback_guard()
    from bench.counters import Probe, summarize
    from tests.support.lambda_context import FakeLambdaContext

    probe = Probe()
    probe.install()
    output = io.StringIO()
    result: dict[str, Any] = {"steps": {}, "steps_cpu": {}, "outcomes": {}}
    with contextlib.redirect_stdout(output), probe.recording():
        started = time.perf_counter()
        import rotator.handler as handler_module

        result["instrumented_import_ms"] = (time.perf_counter() - started) * 1000
        result["import_counts"] = summarize(probe.counts)
        before = probe.snapshot()
        rotation_started = time.perf_counter()
        for step in STEPS:
            event = {"SecretId": args.secret, "ClientRequestToken": args.token, "Step": step}
            step_started, step_cpu = time.perf_counter(), time.process_time()
            response = handler_module.lambda_handler(event, FakeLambdaContext())
            result["steps"][step] = (time.perf_counter() - step_started) * 1000
            result["steps_cpu"][step] = (time.process_time() - step_cpu) * 1000
            if step == STEPS[0]:
                # This process's CPU from its start to the end of the first invocation:
                # interpreter, the probe, the handler's import and the first step, all
                # of which a new container pays (less the probe).
                result["cold_start_cpu_ms"] = time.process_time() * 1000
            result["outcomes"][step] = response.get("outcome")
        result["rotation_ms"] = (time.perf_counter() - rotation_started) * 1000
        result["rotation_counts"] = summarize(probe.since(before))
    result["function_output_lines"] = len(output.getvalue().splitlines())
    result["compiled_at_run_time"] = without_pyc(Path(args.artifact).resolve()) if args.artifact else []
    args.out.write_text(json.dumps(result))
    return 0


def without_pyc(root: Path) -> list[str]:
    """Loaded modules whose source is under ``root`` and that have no .pyc beside it."""
    found = []
    for name, module in list(sys.modules.items()):
        source = getattr(module, "__file__", None)
        if not source or not source.endswith(".py") or not Path(source).resolve().is_relative_to(root):
            continue
        if not Path(importlib.util.cache_from_source(source)).exists():
            found.append(name)
    return sorted(found)


if __name__ == "__main__":
    raise SystemExit(main())
