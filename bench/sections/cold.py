"""Section cold: (a) import time of ``rotator.handler`` against ``import boto3, pymysql``,
each in fresh interpreters, interleaved; (b) the first invocation: fresh processes
that import the handler and run one rotation against a moto server on 127.0.0.1,
as a new Lambda container would (``bench/coldstart.py`` is the child)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ARTIFACT, FUNCTION_ENV, REGION, REPO, RESULTS, SCRUB_ENV, STEPS, spread
from bench.driver import create_idempotency_table
from bench.report import Table, clients, fmt_spread
from bench.servers import DatabaseServer


@dataclass(frozen=True)
class Function:
    """The function's code and the interpreter that imports it: both sides of every
    comparison use the same one."""

    python: Path
    root: Path | None  # the artifact, first on sys.path; None: the package installed in the dev venv
    description: str

    @property
    def task_root(self) -> Path:
        return self.root or REPO / "src"

    @property
    def path(self) -> str:
        return str(self.root or "")


def function_under_test(artifact: Path | None) -> Function:
    """As shipped when it can be: the sam build artifact (with its .pyc) under the
    runtime's Python 3.13 (`make runtime-venv`: python3.13 with boto3, as Lambda's
    runtime provides it). Otherwise the source tree under the development venv."""
    python = runtime_python()
    if artifact is not None and python is not None:
        return Function(python, artifact, "the sam build artifact as shipped")
    return Function(
        Path(sys.executable), None, "the source tree, dev venv: NOT as shipped (no artifact or .venv-runtime)"
    )


def lambda_env(tracing: bool, task_root: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUB_ENV and not key.startswith("PYTHON")}
    env.update(FUNCTION_ENV)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "rotator",
            # Powertools and the X-Ray SDK look for it to know they run in Lambda; the
            # X-Ray SDK then skips its sampling clients. Lambda always sets it.
            "LAMBDA_TASK_ROOT": str(task_root),
            "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        }
    )
    return env


IMPORT_PROBE = (
    "import sys, time\n"
    "sys.path[:0] = [p for p in sys.argv[2:] if p]\n"
    "started, cpu = time.perf_counter(), time.process_time()\n"
    "for name in sys.argv[1].split(','):\n"
    "    __import__(name)\n"
    "print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)\n"
)


def time_import(modules: str, env: dict[str, str], python: Path, path: str) -> tuple[float, float]:
    """Wall and CPU milliseconds of importing ``modules`` in a fresh interpreter. From
    an artifact with -B: like Lambda, whose code directory is read-only, it writes no .pyc."""
    command = [str(python), "-s", *(["-B"] if path else []), "-c", IMPORT_PROBE, modules, path]
    result = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def runtime_python() -> Path | None:
    """The Lambda runtime's stand-in (python3.13 with boto3), made by `make runtime-venv`."""
    python = REPO / ".venv-runtime" / "bin" / "python"
    if not python.exists():
        return None
    return python if python_version(python).startswith("3.13.") else None


def python_version(python: Path) -> str:
    found = subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=False
    )
    return found.stdout.strip()


BASELINE = "boto3+pymysql"
META = {"ratio", "ratio_wall", "ratio_per_round", "python", "interpreter", "target_variant", "extra_by_package_ms"}


def run_import_timing(rounds: int, artifact: Path | None) -> dict[str, Any]:
    """Fresh interpreters, interleaved so load changes hit every variant alike. Every
    variant runs on the same interpreter and sys.path (the baseline's PyMySQL is the
    artifact's). The ratio uses CPU time: importing is CPU-bound, and on a shared
    machine CPU time moves far less with the load than wall time does (both are
    reported). Besides the ratio of the medians, each round's variant is divided by
    that round's baseline, measured moments apart: the median and spread of those
    per-round ratios is what the target is judged on, as it cancels slow changes
    of the machine's load."""
    function = function_under_test(artifact)
    with tempfile.TemporaryDirectory(prefix="rotator-artifact-") as scratch:

        def variant(modules: str, tracing: bool, root: Path | None = function.root) -> Callable[[], Any]:
            task_root = root or function.task_root
            return lambda: time_import(modules, lambda_env(tracing, task_root), function.python, str(root or ""))

        variants = {BASELINE: variant("boto3,pymysql", tracing=False)}
        if function.root is not None:
            # Lambda's code directory is read-only: a module without a .pyc in the
            # artifact is compiled at every cold start. The last variant shows what
            # the .pyc files of src/precompile.py save.
            bare = Path(scratch) / "bare"
            shutil.copytree(function.root, bare, ignore=shutil.ignore_patterns("__pycache__"))
            target = "handler as shipped (.pyc), tracing Active"
            variants[target] = variant("rotator.handler", tracing=True)
            variants["handler as shipped (.pyc), tracing off"] = variant("rotator.handler", tracing=False)
            variants["handler without .pyc, tracing Active"] = variant("rotator.handler", tracing=True, root=bare)
        else:
            target = "handler, tracing Active"
            variants[target] = variant("rotator.handler", tracing=True)
            variants["handler, tracing off"] = variant("rotator.handler", tracing=False)
        samples = interleaved(variants, rounds)
    result: dict[str, Any] = {
        name: {"wall": spread([w for w, _ in values]), "cpu": spread([c for _, c in values])}
        for name, values in samples.items()
    }
    base_cpu, base_wall = result[BASELINE]["cpu"]["median"], result[BASELINE]["wall"]["median"]
    others = [name for name in variants if name != BASELINE]
    result["ratio"] = {name: result[name]["cpu"]["median"] / base_cpu for name in others}
    result["ratio_wall"] = {name: result[name]["wall"]["median"] / base_wall for name in others}
    result["ratio_per_round"] = {
        name: spread([cpu / base for (_, cpu), (_, base) in zip(samples[name], samples[BASELINE], strict=True)])
        for name in others
    }
    result["python"] = python_version(function.python)
    result["interpreter"] = function.description
    result["target_variant"] = target
    result["extra_by_package_ms"] = import_breakdown(function)
    return result


def interleaved(
    variants: dict[str, Callable[[], tuple[float, float]]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """Each variant once to warm the page cache, then ``rounds`` rounds, each starting
    one variant later than the previous."""
    for measure in variants.values():
        measure()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name]())
    return samples


def import_breakdown(function: Function) -> dict[str, float]:
    """Where the handler's import time goes beyond boto3 + pymysql: ``-X importtime``
    self times of the modules imported after those two, by top-level package (one run;
    importtime's own overhead inflates every figure a little)."""
    code = f"import sys\nsys.path.insert(0, {function.path!r})\nimport boto3, pymysql\nimport rotator.handler\n"
    result = subprocess.run(
        [str(function.python), "-s", *(["-B"] if function.path else []), "-X", "importtime", "-c", code],
        env=lambda_env(True, function.task_root),
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match:
            rows.append((int(match[1]), len(match[3]) // 2, match[4]))
    start = max(index for index, (_, depth, name) in enumerate(rows) if name == "pymysql" and depth == 0)
    by_package: Counter[str] = Counter()
    for self_us, _, name in rows[start + 1 :]:
        by_package[name.split(".")[0]] += self_us
    return {name: round(us / 1000, 1) for name, us in by_package.most_common(10)}


def run_first_invocation(server: DatabaseServer, runs: int, function: Function) -> list[dict[str, Any]]:
    """Fresh processes of ``function``'s interpreter, each a new container running one
    rotation against a moto server, with tracing Active (the template's default) and
    off, interleaved."""
    import urllib.request

    import boto3
    from moto.server import ThreadedMotoServer

    from tests.support.aws import begin_rotation
    from tests.support.mariadb import free_port
    from tests.support.world import make_world, reset_server

    reset_server(server)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto_server.start()
    results: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    try:
        # The server shares moto's in-process backends: start from empty ones.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
        client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=endpoint)
        create_idempotency_table(endpoint)
        world = make_world(server, client)
        with tempfile.TemporaryDirectory(prefix="rotator-cold-") as tmp:
            for run in range(runs):
                for tracing in (True, False) if run % 2 == 0 else (False, True):
                    token = begin_rotation(client, world.app_arn)
                    out = Path(tmp) / f"run{run}-{tracing}.json"
                    child = subprocess.run(
                        [str(function.python), "-s", *(["-B"] if function.path else []), "-m", "bench.coldstart",
                         "--secret", world.app_arn, "--token", token, "--out", str(out), "--artifact", function.path],
                        env=coldstart_env(tracing, endpoint, server.pki.ca_file, function),
                        cwd=REPO,
                        check=False,
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )  # fmt: skip
                    if child.returncode != 0:
                        raise RuntimeError(f"bench.coldstart failed ({child.returncode}):\n{child.stderr[-3000:]}")
                    results[tracing].append(json.loads(out.read_text()))
    finally:
        moto_server.stop()
        reset_server(server)
    return [
        {
            "runs": runs,
            "tracing": tracing,
            "first_invocation_ms": spread([r["steps"]["createSecret"] for r in found]),
            "first_invocation_cpu_ms": spread([r["steps_cpu"]["createSecret"] for r in found]),
            "cold_start_cpu_ms": spread([r["cold_start_cpu_ms"] for r in found]),
            "step_ms": {step: spread([r["steps"][step] for r in found]) for step in STEPS},
            "rotation_ms": spread([r["rotation_ms"] for r in found]),
            "instrumented_import_ms": spread([r["instrumented_import_ms"] for r in found]),
            "import_counts": found[0]["import_counts"],
            "rotation_counts": found[0]["rotation_counts"],
            "outcomes": found[0]["outcomes"],
            "compiled_at_run_time": sorted({name for r in found for name in r["compiled_at_run_time"]}),
        }
        for tracing, found in results.items()
    ]


def coldstart_env(tracing: bool, endpoint: str, ca_file: Path, function: Function) -> dict[str, str]:
    env = lambda_env(tracing, function.task_root)
    env.update(
        {
            "SECRETS_MANAGER_ENDPOINT": endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "ROTATOR_CA_BUNDLE": str(ca_file),
            # The artifact first: rotator and its bundled packages come from there.
            "PYTHONPATH": os.pathsep.join(p for p in (function.path, str(REPO)) if p),
        }
    )
    if tracing:
        env.update(
            {
                "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_udp_port()}",  # nobody listens: segments are dropped
                "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
            }
        )
    return env


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tables(report: dict[str, Any]) -> list[Table]:
    cold = report.get("cold")
    if not cold:
        return []
    imports = cold["imports"]
    table = Table(
        f"cold start: import in a fresh interpreter (python {imports['python']}, {imports['interpreter']})",
        ["", "CPU median [p10-p90]", "wall median [p10-p90]", "vs boto3+pymysql: CPU", "wall", "CPU, per round"],
    )
    for name, values in imports.items():
        if name in META:
            continue
        cpu, wall = imports["ratio"].get(name, 1.0), imports["ratio_wall"].get(name, 1.0)
        per_round = imports["ratio_per_round"].get(name)
        table.add(
            name,
            fmt_spread(values["cpu"]),
            fmt_spread(values["wall"]),
            f"{cpu:.2f}x",
            f"{wall:.2f}x",
            f"{per_round['median']:.2f}x [{per_round['p10']:.2f}-{per_round['p90']:.2f}]" if per_round else "1.00x",
        )
    extra = imports.get("extra_by_package_ms", {})
    if extra:
        table.add(
            "beyond boto3+pymysql (-X importtime, ms)",
            ", ".join(f"{k} {v:.0f}" for k, v in list(extra.items())[:6]),
        )
    found = [table]
    first = Table(
        f"cold start: a new container's first rotation (fresh process, {imports['interpreter']}, "
        "moto server on 127.0.0.1)",
        ["", "tracing Active", "tracing off"],
    )
    runs = {run["tracing"]: run for run in cold["first_invocation"]}
    on, off = runs.get(True), runs.get(False)
    first.add(
        "first invocation (createSecret)", *(fmt_spread(r["first_invocation_ms"]) if r else "-" for r in (on, off))
    )
    first.add("  its CPU time", *(fmt_spread(r["first_invocation_cpu_ms"]) if r else "-" for r in (on, off)))
    first.add(
        "  CPU from process start to its end",
        *(fmt_spread(r["cold_start_cpu_ms"]) if r else "-" for r in (on, off)),
    )
    for step in STEPS[1:]:
        first.add(f"then {step}", *(fmt_spread(r["step_ms"][step]) if r else "-" for r in (on, off)))
    first.add("whole first rotation", *(fmt_spread(r["rotation_ms"]) if r else "-" for r in (on, off)))
    first.add(
        "clients created by the import",
        *(
            ", ".join(f"{k} {v}" for k, v in r["import_counts"]["botocore_clients"].items()) or "0" if r else "-"
            for r in (on, off)
        ),
    )
    first.add(
        "boto3 clients created by the rotation", *(clients(r["rotation_counts"]) if r else "-" for r in (on, off))
    )
    first.add(
        "Secrets Manager / DynamoDB calls",
        *(
            f"{r['rotation_counts']['secretsmanager_calls']} / {r['rotation_counts']['dynamodb_calls']}" if r else "-"
            for r in (on, off)
        ),
    )
    first.add(
        "modules compiled at run time (no .pyc)",
        *(", ".join(r["compiled_at_run_time"]) or "none" if r else "-" for r in (on, off)),
    )
    found.append(first)
    return found


def find_artifact(package: dict[str, Any] | None) -> Path | None:
    """The artifact the package section measured, else one built earlier."""
    if package:
        return REPO / package["directory"]
    built = [d for d in (ARTIFACT, RESULTS / "artifact") if (d / "rotator" / "handler.py").exists()]
    return built[0] if built else None


def run_section(server: DatabaseServer, import_rounds: int, cold_runs: int, artifact: Path | None) -> dict[str, Any]:
    return {
        "imports": run_import_timing(import_rounds, artifact),
        "first_invocation": run_first_invocation(server, cold_runs, function_under_test(artifact)),
    }
