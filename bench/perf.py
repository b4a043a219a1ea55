"""make bench: what one rotation costs, and what many cost.

    python -m bench.perf                          # everything (a few minutes on a quiet machine)
    python -m bench.perf --only rotation,cold     # some sections
    python -m bench.perf --rotations 5 --secrets 20 --cold-runs 3   # quick look
    python -m bench.perf --update-docs            # also rewrite the figures in docs/performance.md

Sections (each prints a table; all of them go to --json, default bench/results/perf.json):

rotation  N rotations of one application secret through ``rotator.handler.lambda_handler``
          in one process (one container): the first in a new container, the rest warm.
          Secrets Manager and DynamoDB (idempotency on) are moto, in-process; the
          database is a private MariaDB with its own CA (verified TLS).
cold      (a) import time of ``rotator.handler`` against ``import boto3, pymysql``,
          each in fresh interpreters, interleaved; (b) the first invocation: fresh
          processes that import the handler and run one rotation against a moto
          server on 127.0.0.1, as a new Lambda container would.
package   zipped and unzipped size of the ``sam build`` artifact.
bulk      S application secrets sharing one admin secret, each rotated once, one
          after another, in one warm process.

The counts come from bench.counters (patches on botocore, boto3, PyMySQL and ssl),
cross-checked against rotator's own ``MySQLDatabase.stats``. Nothing leaves
127.0.0.1; the MariaDB and moto are thrown away at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import logging
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.counters import Probe, product_mismatches, summarize
from tests.support.env import LOCAL_ENV

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DOCS = REPO / "docs" / "performance.md"
ARTIFACT = REPO / ".aws-sam" / "build" / "RotationFunction"
REGION = "us-east-1"
TABLE = "rotator-bench-idempotency"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
SECTIONS = ("rotation", "cold", "package", "bulk")

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

# Issue 5 quotes these for AWS's published MySQL multi-user rotation function; they
# are not measured here (its source is not fetched at bench time).
AWS_SAMPLE = {
    "secretsmanager_calls": "14",
    "boto3_clients": "4",
    "db_connections": "5-8",
    "tls_contexts": "1 per connection",
}
TARGETS = {
    "secretsmanager_calls_per_rotation": 10,
    "db_connections_per_rotation": 4,
    "boto3_clients_per_container": 1,
    "db_tls_contexts_per_container": 1,
    "import_ratio": 1.3,
    "zipped_bytes": 3 * 1024 * 1024,
}


# == helpers =================================================================================


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


def fmt_spread(s: dict[str, float], unit: str = "ms") -> str:
    if not s:
        return "-"
    if s["n"] == 1:
        return f"{s['median']:.0f} {unit}"
    return f"{s['median']:.0f} {unit} [{s['p10']:.0f}-{s['p90']:.0f}]"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def versions(server_version: str | None = None) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("rotator", "boto3", "botocore", "aws-lambda-powertools", "aws-xray-sdk", "PyMySQL", "moto"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    if server_version:
        found["MariaDB"] = server_version
    return found


@contextlib.contextmanager
def function_output() -> Iterator[io.StringIO]:
    """Keep the function's JSON logs and EMF metrics off the terminal (they still cost what they cost)."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger("rotator").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(buffer) for h in handlers]
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)


def fresh_container() -> None:
    from rotator import handler as handler_module

    handler_module._container.cache_clear()


def product_stats() -> Counter[str]:
    """rotator's own database counters, if the container has been built."""
    from rotator import handler as handler_module

    if handler_module._container.cache_info().currsize == 0:
        return Counter()
    return Counter(handler_module._container().database.stats)


def create_idempotency_table(endpoint_url: str | None = None) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


# == one rotation, counted ====================================================================


@dataclass
class Rotation:
    step_ms: dict[str, float]
    counts: Counter[str]
    stats: Counter[str]
    outcomes: dict[str, str]

    @property
    def total_ms(self) -> float:
        return sum(self.step_ms.values())


def rotate(client: Any, arn: str, probe: Probe) -> Rotation:
    """Stage a rotation (not counted) and run its four steps through the handler (counted)."""
    from rotator import handler as handler_module
    from tests.support.aws import begin_rotation, event
    from tests.support.lambda_context import FakeLambdaContext

    token = begin_rotation(client, arn)
    before, stats_before = probe.snapshot(), product_stats()
    step_ms: dict[str, float] = {}
    outcomes: dict[str, str] = {}
    for step in STEPS:
        with probe.recording():
            started = time.perf_counter()
            result = handler_module.lambda_handler(event(arn, token, step), FakeLambdaContext())
            step_ms[step] = (time.perf_counter() - started) * 1000
        outcomes[step] = str(result.get("outcome"))
    stats = product_stats()
    stats.subtract(stats_before)
    return Rotation(step_ms, probe.since(before), Counter({k: v for k, v in stats.items() if v}), outcomes)


def duplicate_deliveries(client: Any, arn: str, probe: Probe) -> dict[str, Any]:
    """One more rotation with every step delivered twice: what a duplicate costs
    when the idempotency table answers it (counted: the second deliveries only)."""
    from rotator import handler as handler_module
    from tests.support.aws import begin_rotation, event
    from tests.support.lambda_context import FakeLambdaContext

    token = begin_rotation(client, arn)
    counted: Counter[str] = Counter()
    outcomes: dict[str, str] = {}
    for step in STEPS:
        first = handler_module.lambda_handler(event(arn, token, step), FakeLambdaContext())
        before = probe.snapshot()
        with probe.recording():
            again = handler_module.lambda_handler(event(arn, token, step), FakeLambdaContext())
        counted.update(probe.since(before))
        outcomes[step] = "same result" if again == first else f"different: {again.get('outcome')}"
    mean = summarize(Counter({k: v / len(STEPS) for k, v in counted.items()}))  # type: ignore[misc]
    return {"per_delivery": mean, "outcomes": outcomes}


def per_rotation(rotations: Sequence[Rotation]) -> dict[str, Any]:
    """Counts of a group of rotations: the mean per rotation, and whether every rotation did the same."""
    if not rotations:
        return {}
    summaries = [summarize(r.counts) for r in rotations]
    totals: Counter[str] = Counter()
    for r in rotations:
        totals.update(r.counts)
    mean = summarize(Counter({k: v / len(rotations) for k, v in totals.items()}))  # type: ignore[misc]
    return {
        "rotations": len(rotations),
        "identical": all(s == summaries[0] for s in summaries),
        "mean": mean,
        "min_secretsmanager_calls": min(s["secretsmanager_calls"] for s in summaries),
        "max_secretsmanager_calls": max(s["secretsmanager_calls"] for s in summaries),
        "max_db_connections_attempted": max(s["db_connections_attempted"] for s in summaries),
    }


def timings(rotations: Sequence[Rotation]) -> dict[str, Any]:
    return {
        "rotation_ms": spread([r.total_ms for r in rotations]),
        "step_ms": {step: spread([r.step_ms[step] for r in rotations]) for step in STEPS},
    }


# == section: rotation ========================================================================


EXPECTED_OUTCOMES = {
    "alternating": {
        "createSecret": "created",
        "setSecret": "twin-synced",
        "testSecret": "twin-verified",
        "finishSecret": "promoted",
    },
    "single-user": {
        "createSecret": "created",
        "setSecret": "password-changed",
        "testSecret": "login-ok",
        "finishSecret": "promoted",
    },
}


def run_rotation_section(server: Any, rotations: int, probe: Probe, *, single_user: bool = False) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from tests.support.world import make_world, reset_server

    reset_server(server)
    with mock_aws(), function_output():
        client = boto3.client("secretsmanager", region_name=REGION)
        create_idempotency_table()
        world = make_world(server, client, single_user=single_user)
        fresh_container()
        container_before = probe.snapshot()
        records = [rotate(client, world.app_arn, probe) for _ in range(rotations)]
        container = probe.since(container_before)
        duplicates = duplicate_deliveries(client, world.app_arn, probe)
        current_works = world.can_use_grants(world.app_secret())
        # Single user: AWSPREVIOUS holds the password that was just replaced.
        previous_works = None if single_user else world.can_use_grants(world.app_secret("AWSPREVIOUS"))
    fresh_container()
    reset_server(server)

    mismatches = [
        f"rotation {i + 1}: {problem}"
        for i, r in enumerate(records)
        for problem in product_mismatches(r.counts, r.stats)
    ]
    mode = "single-user" if single_user else "alternating"
    expected = EXPECTED_OUTCOMES[mode]
    unexpected = [f"rotation {i + 1}: {r.outcomes}" for i, r in enumerate(records) if r.outcomes != expected]
    return {
        "mode": mode,
        "rotations": rotations,
        "first": {
            "counts": summarize(records[0].counts),
            "step_ms": records[0].step_ms,
            "rotation_ms": records[0].total_ms,
        },
        "warm": {**per_rotation(records[1:]), **timings(records[1:])} if rotations > 1 else {},
        "container": summarize(container),
        "duplicate_delivery": duplicates,
        "checks": {
            "current_works": current_works,
            "previous_works": previous_works,
            "counter_mismatches": mismatches,
            "unexpected_outcomes": unexpected,
        },
    }


# == section: bulk ============================================================================


def run_bulk_section(server: Any, secrets: int, probe: Probe) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from tests.support.aws import create_secret
    from tests.support.world import DEFAULT_APP_GRANTS, make_world, new_password, reset_server

    reset_server(server)
    with mock_aws(), function_output():
        client = boto3.client("secretsmanager", region_name=REGION)
        create_idempotency_table()
        world = make_world(server, client)
        arns = [world.app_arn]
        base = {"engine": "mariadb", "host": server.host, "port": server.port, "dbname": "appdb"}
        for number in range(1, secrets):
            user = f"app{number:04d}"
            password = new_password()
            server.sql("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            for grant in DEFAULT_APP_GRANTS:
                server.sql(grant.format(account="%s@'%%'"), (user,))
            value = {**base, "username": user, "password": password, "masterarn": world.admin_arn}
            arns.append(create_secret(client, f"bulk/{user}", value))

        fresh_container()
        before = probe.snapshot()
        started = time.perf_counter()
        records = [rotate(client, arn, probe) for arn in arns]
        elapsed = time.perf_counter() - started
        container = probe.since(before)

        failures = 0
        for arn in arns:
            value = json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
            try:
                world.connect(value).close()
            except Exception:
                failures += 1
        admin_arn = world.admin_arn
    fresh_container()
    reset_server(server)

    handler_seconds = sum(r.total_ms for r in records) / 1000
    mismatches = [problem for r in records for problem in product_mismatches(r.counts, r.stats)]
    return {
        "secrets": secrets,
        "admin_secret_reads": container.get(f"secret_read:{admin_arn}", 0),
        "handler_seconds": handler_seconds,
        "wall_seconds": elapsed,
        "rotations_per_second": secrets / handler_seconds,
        "rotations_per_second_wall": secrets / elapsed,
        "per_rotation": per_rotation(records),
        **timings(records),
        "container": summarize(container),
        "checks": {"current_login_failures": failures, "counter_mismatches": mismatches[:10]},
    }


# == section: cold ============================================================================


def lambda_env(tracing: bool) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in SCRUB_ENV and not key.startswith("PYTHON")}
    env.update(FUNCTION_ENV)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "rotator",
            # Powertools and the X-Ray SDK look for it to know they run in Lambda; the
            # X-Ray SDK then skips its sampling clients. Lambda always sets it.
            "LAMBDA_TASK_ROOT": str(REPO / "src"),
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


def time_import(
    modules: str, env: dict[str, str], *, path: str = "", no_bytecode: bool = False, python: str = sys.executable
) -> tuple[float, float]:
    """Wall and CPU milliseconds of importing ``modules`` in a fresh interpreter."""
    command = [python, "-s", *(["-B"] if no_bytecode else []), "-c", IMPORT_PROBE, modules, path]
    result = subprocess.run(command, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True)
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def runtime_python() -> Path | None:
    """The Lambda runtime's stand-in (python3.13 with boto3), made by `make runtime-venv`."""
    python = REPO / ".venv-runtime" / "bin" / "python"
    if not python.exists():
        return None
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=False
    )
    return python if version.stdout.strip() == "(3, 13)" else None


def run_import_timing(rounds: int, artifact: Path | None) -> dict[str, Any]:
    """Fresh interpreters, interleaved so load changes hit every variant alike. The
    ratio uses CPU time: importing is CPU-bound, and on a shared machine CPU time
    moves far less with the load than wall time does (both are reported)."""
    variants: dict[str, Callable[[], tuple[float, float]]] = {
        "boto3+pymysql": lambda: time_import("boto3,pymysql", lambda_env(tracing=False)),
        "handler, tracing Active": lambda: time_import("rotator.handler", lambda_env(tracing=True)),
        "handler, tracing off": lambda: time_import("rotator.handler", lambda_env(tracing=False)),
    }
    scratch: Path | None = None
    if artifact is not None and runtime_python() is not None:
        # The artifact ships .pyc for CPython 3.13 (src/precompile.py); /var/task is
        # read-only, so whatever has none is compiled at every cold start. Import it
        # as shipped and with its .pyc removed, with the runtime's Python (-B: like
        # Lambda, write nothing).
        python = str(runtime_python())
        scratch = Path(tempfile.mkdtemp(prefix="rotator-artifact-"))
        shutil.copytree(artifact, scratch / "shipped")
        shutil.copytree(artifact, scratch / "bare", ignore=shutil.ignore_patterns("__pycache__"))
        shipped, bare = str(scratch / "shipped"), str(scratch / "bare")
        variants["artifact as shipped (.pyc), py3.13, tracing Active"] = lambda: time_import(
            "rotator.handler", lambda_env(tracing=True), path=shipped, no_bytecode=True, python=python
        )
        variants["artifact without .pyc, py3.13, tracing Active"] = lambda: time_import(
            "rotator.handler", lambda_env(tracing=True), path=bare, no_bytecode=True, python=python
        )
    for variant in variants.values():  # warm the page cache and the .pyc files once
        variant()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        for round_number in range(rounds):
            names = list(variants)
            names = names[round_number % len(names) :] + names[: round_number % len(names)]
            for name in names:
                samples[name].append(variants[name]())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    result: dict[str, Any] = {
        name: {"wall": spread([w for w, _ in values]), "cpu": spread([c for _, c in values])}
        for name, values in samples.items()
    }
    base_cpu, base_wall = result["boto3+pymysql"]["cpu"]["median"], result["boto3+pymysql"]["wall"]["median"]
    others = [name for name in variants if name != "boto3+pymysql"]
    result["ratio"] = {name: result[name]["cpu"]["median"] / base_cpu for name in others}
    result["ratio_wall"] = {name: result[name]["wall"]["median"] / base_wall for name in others}
    result["python"] = platform.python_version()
    result["extra_by_package_ms"] = import_breakdown(lambda_env(tracing=True))
    return result


def import_breakdown(env: dict[str, str]) -> dict[str, float]:
    """Where the handler's import time goes beyond boto3 + pymysql: ``-X importtime``
    self times of the modules imported after those two, by top-level package (one run;
    importtime's own overhead inflates every figure a little)."""
    code = "import boto3, pymysql\nimport rotator.handler\n"
    result = subprocess.run(
        [sys.executable, "-s", "-X", "importtime", "-c", code],
        env=env,
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


def run_first_invocation(server: Any, runs: int) -> list[dict[str, Any]]:
    """Fresh processes, each a new container running one rotation against a moto server,
    with tracing Active (the template's default) and off, interleaved."""
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
                        [sys.executable, "-m", "bench.coldstart", "--secret", world.app_arn, "--token", token,
                         "--out", str(out)],
                        env=coldstart_env(tracing, endpoint, server.pki.ca_file),
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
            "step_ms": {step: spread([r["steps"][step] for r in found]) for step in STEPS},
            "rotation_ms": spread([r["rotation_ms"] for r in found]),
            "instrumented_import_ms": spread([r["instrumented_import_ms"] for r in found]),
            "import_counts": found[0]["import_counts"],
            "rotation_counts": found[0]["rotation_counts"],
            "outcomes": found[0]["outcomes"],
        }
        for tracing, found in results.items()
    ]


def coldstart_env(tracing: bool, endpoint: str, ca_file: Path) -> dict[str, str]:
    env = lambda_env(tracing)
    env.update(
        {
            "SECRETS_MANAGER_ENDPOINT": endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
            "ROTATOR_CA_BUNDLE": str(ca_file),
            "PYTHONPATH": str(REPO),
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


# == section: package =========================================================================


def makefile_has_build() -> bool:
    makefile = REPO / "Makefile"
    return makefile.exists() and re.search(r"^build:", makefile.read_text(), re.MULTILINE) is not None


def build_artifact(rebuild: bool) -> tuple[Path, str]:
    """The sam build artifact: `make build` when the Makefile has it, else the same pip install by hand."""
    if makefile_has_build():
        if rebuild or not ARTIFACT.exists():
            subprocess.run(["make", "build"], cwd=REPO, check=True, capture_output=True, timeout=900)
        return ARTIFACT, "make build (sam build, BuildMethod: makefile)"
    # Without `make build`: the recipe sam build runs (src/Makefile, BuildMethod: makefile),
    # run by hand into a directory of ours. It only reads src/.
    target = RESULTS / "artifact"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(
        [
            "make",
            "-C",
            str(REPO / "src"),
            "build-RotationFunction",
            f"ARTIFACTS_DIR={target}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return target, "make -C src build-RotationFunction (the recipe of sam build; arm64), run by the bench without SAM"


def run_package_section(rebuild: bool) -> dict[str, Any]:
    directory, method = build_artifact(rebuild)
    files = [p for p in directory.rglob("*") if p.is_file()]
    unzipped = sum(p.stat().st_size for p in files)
    by_top: Counter[str] = Counter()
    for p in files:
        by_top[p.relative_to(directory).parts[0]] += p.stat().st_size
    with tempfile.TemporaryDirectory(prefix="rotator-zip-") as tmp:
        archive = Path(tmp) / "function.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(files):
                zf.write(p, p.relative_to(directory))
        zipped = archive.stat().st_size
    compiled = sorted(str(p.relative_to(directory)) for p in files if p.suffix in {".so", ".pyd"})
    return {
        "method": method,
        "directory": str(directory.relative_to(REPO)) if directory.is_relative_to(REPO) else str(directory),
        "files": len(files),
        "unzipped_bytes": unzipped,
        "zipped_bytes": zipped,
        "largest": dict(by_top.most_common(8)),
        "compiled_extensions": compiled,
        "pyc_files": sum(1 for p in files if p.suffix == ".pyc"),
    }


# == the report ===============================================================================


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        row = [str(c) for c in cells]
        self.rows.append(row + [""] * (len(self.header) - len(row)))

    def render(self) -> str:
        widths = [max(len(row[i]) for row in [self.header, *self.rows]) for i in range(len(self.header))]
        lines = [f"== {self.title} =="]
        for index, row in enumerate([self.header, *self.rows]):
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * width for width in widths))
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.header) + " |"]
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in self.rows]
        return "\n".join(lines)


def _md_cell(cell: str) -> str:
    """Markdown collapses leading spaces: an indented (sub-)row label gets a dash instead."""
    text = cell.replace("|", "/")
    return f"- {text.lstrip()}" if text.startswith("  ") else text


def num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def ops(by_operation: dict[str, float]) -> str:
    return ", ".join(f"{name} {num(count)}" for name, count in by_operation.items()) or "-"


def clients(counts: dict[str, Any]) -> str:
    return ", ".join(f"{name} {num(n)}" for name, n in counts["boto3_clients"].items()) or "0"


def rotation_tables(report: dict[str, Any]) -> list[Table]:
    rotation = report.get("rotation")
    bulk = report.get("bulk")
    if not rotation and not bulk:
        return []
    columns: list[tuple[str, dict[str, Any]]] = []
    if rotation:
        columns.append(("new container", rotation["first"]["counts"]))
        if rotation["warm"]:
            columns.append((f"warm, same secret (x{rotation['warm']['rotations']})", rotation["warm"]["mean"]))
    if bulk:
        columns.append((f"warm, {bulk['secrets']} secrets (mean)", bulk["per_rotation"]["mean"]))
    single = report.get("rotation_single")
    if single and single["warm"]:
        columns.append((f"single user, warm (x{single['warm']['rotations']})", single["warm"]["mean"]))
    table = Table("per rotation: 4 invocations, idempotency on", ["", *(name for name, _ in columns), "AWS sample*"])
    table.add(
        "Secrets Manager calls",
        *(num(c["secretsmanager_calls"]) for _, c in columns),
        AWS_SAMPLE["secretsmanager_calls"],
    )
    operations = sorted({op for _, c in columns for op in c["secretsmanager_by_operation"]})
    for op in operations:
        table.add(f"  {op}", *(num(c["secretsmanager_by_operation"].get(op, 0)) for _, c in columns), "")
    table.add("DynamoDB calls (idempotency)", *(num(c["dynamodb_calls"]) for _, c in columns), "-")
    table.add("  by operation", *(ops(c["dynamodb_by_operation"]) for _, c in columns), "")
    table.add("boto3 clients created", *(clients(c) for _, c in columns), AWS_SAMPLE["boto3_clients"])
    table.add(
        "DB connections attempted/ok",
        *(f"{num(c['db_connections_attempted'])}/{num(c['db_connections_ok'])}" for _, c in columns),
        AWS_SAMPLE["db_connections"],
    )
    table.add("TLS handshakes", *(num(c["tls_handshakes"]) for _, c in columns), "")
    table.add(
        "TLS contexts, database", *(num(c["tls_contexts_default"]) for _, c in columns), AWS_SAMPLE["tls_contexts"]
    )
    table.add("TLS contexts, all (botocore too)", *(num(c["tls_contexts_all"]) for _, c in columns), "")
    table.add("SQL statements", *(num(c["sql_statements"]) for _, c in columns), "")
    table.add("  by verb", *(ops(c["sql_by_verb"]) for _, c in columns), "")
    tables = [table]
    duplicate = rotation.get("duplicate_delivery") if rotation else None
    if duplicate:
        d = duplicate["per_delivery"]
        replay = Table("a duplicate delivery of a step (answered from the idempotency table)", ["figure", "value"])
        replay.add("Secrets Manager calls", num(d["secretsmanager_calls"]))
        replay.add("DynamoDB calls", f"{num(d['dynamodb_calls'])} ({ops(d['dynamodb_by_operation'])})")
        replay.add("DB connections", num(d["db_connections_attempted"]))
        replay.add("result", ", ".join(sorted(set(duplicate["outcomes"].values()))))
        tables.append(replay)

    timing = Table(
        "wall time (median [p10-p90])",
        ["", "new container (1)", "warm, same secret", "warm, bulk", "single user, warm"],
    )
    warm = rotation["warm"] if rotation else {}
    single_warm = single["warm"] if single else {}
    for step in STEPS:
        timing.add(
            step,
            f"{rotation['first']['step_ms'][step]:.0f} ms" if rotation else "-",
            fmt_spread(warm["step_ms"][step]) if warm else "-",
            fmt_spread(bulk["step_ms"][step]) if bulk else "-",
            fmt_spread(single_warm["step_ms"][step]) if single_warm else "-",
        )
    timing.add(
        "rotation",
        f"{rotation['first']['rotation_ms']:.0f} ms" if rotation else "-",
        fmt_spread(warm["rotation_ms"]) if warm else "-",
        fmt_spread(bulk["rotation_ms"]) if bulk else "-",
        fmt_spread(single_warm["rotation_ms"]) if single_warm else "-",
    )
    tables.append(timing)
    return tables


def cold_tables(report: dict[str, Any]) -> list[Table]:
    cold = report.get("cold")
    if not cold:
        return []
    imports = cold["imports"]
    table = Table(
        f"cold start: import in a fresh interpreter (python {imports['python']})",
        ["", "CPU median [p10-p90]", "wall median [p10-p90]", "vs boto3+pymysql: CPU", "wall"],
    )
    for name, values in imports.items():
        if name in {"ratio", "ratio_wall", "python", "extra_by_package_ms"}:
            continue
        cpu, wall = imports["ratio"].get(name, 1.0), imports["ratio_wall"].get(name, 1.0)
        table.add(name, fmt_spread(values["cpu"]), fmt_spread(values["wall"]), f"{cpu:.2f}x", f"{wall:.2f}x")
    extra = imports.get("extra_by_package_ms", {})
    if extra:
        table.add(
            "beyond boto3+pymysql (-X importtime, ms)",
            ", ".join(f"{k} {v:.0f}" for k, v in list(extra.items())[:6]),
        )
    tables = [table]
    first = Table(
        "cold start: a new container's first rotation (fresh process, moto server on 127.0.0.1)",
        ["", "tracing Active", "tracing off"],
    )
    runs = {run["tracing"]: run for run in cold["first_invocation"]}
    on, off = runs.get(True), runs.get(False)
    first.add(
        "first invocation (createSecret)", *(fmt_spread(r["first_invocation_ms"]) if r else "-" for r in (on, off))
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
    tables.append(first)
    return tables


def package_tables(report: dict[str, Any]) -> list[Table]:
    package = report.get("package")
    if not package:
        return []
    table = Table("package: the sam build artifact", ["figure", "value"])
    table.add("built by", package["method"])
    table.add("zipped", f"{package['zipped_bytes'] / 1e6:.2f} MB ({package['zipped_bytes']:,} bytes)")
    table.add("unzipped", f"{package['unzipped_bytes'] / 1e6:.2f} MB in {package['files']} files")
    table.add(
        "largest parts (unzipped)", ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in list(package["largest"].items())[:5])
    )
    table.add("compiled extensions", ", ".join(package["compiled_extensions"]) or "none")
    return [table]


def bulk_tables(report: dict[str, Any]) -> list[Table]:
    bulk = report.get("bulk")
    if not bulk:
        return []
    table = Table(f"bulk: {bulk['secrets']} secrets, one admin secret, one warm process", ["figure", "value"])
    table.add("rotations per second (handler time)", f"{bulk['rotations_per_second']:.2f}")
    table.add("rotations per second (with the bench's staging)", f"{bulk['rotations_per_second_wall']:.2f}")
    table.add("admin secret reads (GetSecretValue)", f"{bulk['admin_secret_reads']} for {bulk['secrets']} rotations")
    mean, group = bulk["per_rotation"]["mean"], bulk["per_rotation"]
    table.add(
        "Secrets Manager calls per rotation",
        f"{num(mean['secretsmanager_calls'])} "
        f"(min {group['min_secretsmanager_calls']}, max {group['max_secretsmanager_calls']})",
    )
    table.add("DynamoDB calls per rotation", num(mean["dynamodb_calls"]))
    table.add("boto3 clients, whole run", clients(bulk["container"]))
    table.add("database TLS contexts, whole run", num(bulk["container"]["tls_contexts_default"]))
    table.add("AWSCURRENT logins that failed afterwards", bulk["checks"]["current_login_failures"])
    return [table]


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def add(name: str, target: str, measured: str, met: bool, note: str = "") -> None:
        found.append({"target": name, "limit": target, "measured": measured, "met": met, "note": note})

    groups = []
    if report.get("rotation"):
        groups.append(("new container", report["rotation"]["first"]["counts"]))
        if report["rotation"]["warm"]:
            groups.append(("warm", report["rotation"]["warm"]["mean"]))
    if report.get("bulk"):
        groups.append(("bulk", report["bulk"]["per_rotation"]["mean"]))
    if report.get("rotation_single"):
        groups.append(("single user, new container", report["rotation_single"]["first"]["counts"]))
    if groups:
        worst_sm = max(c["secretsmanager_calls"] for _, c in groups)
        add(
            "Secrets Manager calls per rotation",
            f"<= {TARGETS['secretsmanager_calls_per_rotation']}",
            ", ".join(f"{name} {num(c['secretsmanager_calls'])}" for name, c in groups),
            worst_sm <= TARGETS["secretsmanager_calls_per_rotation"],
        )
        worst_db = max(c["db_connections_attempted"] for _, c in groups)
        add(
            "DB connections per rotation",
            f"<= {TARGETS['db_connections_per_rotation']}",
            ", ".join(f"{name} {num(c['db_connections_attempted'])}" for name, c in groups),
            worst_db <= TARGETS["db_connections_per_rotation"],
        )
    containers = []
    if report.get("rotation"):
        containers.append((f"{report['rotation']['rotations']} rotations", report["rotation"]["container"]))
    if report.get("bulk"):
        containers.append((f"{report['bulk']['secrets']} secrets", report["bulk"]["container"]))
    if containers:
        sm_clients = max(c["boto3_clients"].get("secretsmanager", 0) for _, c in containers)
        all_clients = max(sum(c["boto3_clients"].values()) for _, c in containers)
        add(
            "boto3 clients per warm container",
            f"<= {TARGETS['boto3_clients_per_container']}",
            "; ".join(f"{name}: {clients(c)}" for name, c in containers),
            all_clients <= TARGETS["boto3_clients_per_container"],
            f"Secrets Manager clients: {sm_clients}; the DynamoDB client is idempotency's"
            if all_clients > sm_clients
            else "",
        )
        contexts = max(c["tls_contexts_default"] for _, c in containers)
        add(
            "database TLS contexts per warm container",
            f"<= {TARGETS['db_tls_contexts_per_container']}",
            "; ".join(f"{name}: {c['tls_contexts_default']}" for name, c in containers),
            contexts <= TARGETS["db_tls_contexts_per_container"],
        )
    if report.get("cold"):
        ratios = report["cold"]["imports"]["ratio"]
        key = "handler, tracing Active"
        add(
            "import rotator.handler vs boto3+pymysql (CPU time, tracing Active as deployed)",
            f"<= {TARGETS['import_ratio']}x",
            ", ".join(f"{name} {value:.2f}x" for name, value in ratios.items()),
            ratios[key] <= TARGETS["import_ratio"],
        )
    if report.get("package"):
        zipped = report["package"]["zipped_bytes"]
        add(
            "zipped artifact",
            f"<= {TARGETS['zipped_bytes'] / 2**20:.0f} MiB",
            f"{zipped / 2**20:.2f} MiB",
            zipped <= TARGETS["zipped_bytes"],
        )
    return found


def targets_table(targets: list[dict[str, Any]]) -> list[Table]:
    if not targets:
        return []
    table = Table("targets (issue 5)", ["target", "limit", "measured", "met"])
    for t in targets:
        table.add(
            t["target"],
            t["limit"],
            t["measured"] + (f" ({t['note']})" if t["note"] else ""),
            "yes" if t["met"] else "NO",
        )
    return [table]


def all_tables(report: dict[str, Any]) -> list[Table]:
    return [
        *rotation_tables(report),
        *bulk_tables(report),
        *cold_tables(report),
        *package_tables(report),
        *targets_table(report.get("targets", [])),
    ]


def header(report: dict[str, Any]) -> list[str]:
    env = report["environment"]
    v = env["versions"]
    return [
        f"rotator benchmark, {env['date']}",
        f"machine: {env['cpus']} CPUs ({env['platform']}), "
        f"load average before {env['load_before']}, after {env['load_after']}",
        "versions: " + ", ".join(f"{k} {value}" for k, value in v.items()),
        "parameters: " + ", ".join(f"{k.replace('_', ' ')} {value}" for k, value in env["parameters"].items()),
    ]


def update_docs(report: dict[str, Any]) -> None:
    text = DOCS.read_text()
    begin, end = "<!-- bench:figures:begin -->", "<!-- bench:figures:end -->"
    if begin not in text or end not in text:
        raise SystemExit(f"{DOCS} lacks the {begin} / {end} markers")
    body = "\n".join(
        [
            "",
            *(f"{line}  " for line in header(report)),
            "",
            "\n\n".join(t.markdown() for t in all_tables(report)),
            "",
            "\\* AWS's published MySQL multi-user rotation function, as quoted in issue 5; not measured here.",
            "",
        ]
    )
    before, _, rest = text.partition(begin)
    _, _, after = rest.partition(end)
    DOCS.write_text(before + begin + body + end + after)


# == main =====================================================================================


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--rotations", type=int, default=21, help="rotations of one secret in one process (1 new + N-1 warm)"
    )
    parser.add_argument("--single-user-rotations", type=int, default=6, help="the same for a single-user secret")
    parser.add_argument("--secrets", type=int, default=200, help="application secrets in the bulk section")
    parser.add_argument("--import-rounds", type=int, default=9, help="fresh interpreters per import variant")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes per first-invocation variant")
    parser.add_argument("--rebuild", action="store_true", help="run `make build` even if an artifact exists")
    parser.add_argument("--json", type=Path, default=RESULTS / "perf.json")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the figures block of docs/performance.md")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if min(args.rotations, args.single_user_rotations, args.secrets) < 1:
        parser.error("--rotations, --single-user-rotations and --secrets must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    for key in SCRUB_ENV:
        os.environ.pop(key, None)
    os.environ.update(FUNCTION_ENV)
    from tests.support.mariadb import MariaDBServer, ensure_binaries
    from tests.support.soak import loopback_only

    report: dict[str, Any] = {
        "environment": {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "platform": f"{platform.system()} {platform.machine()}",
            "load_before": load(),
            "parameters": {
                "rotations": args.rotations,
                "single_user_rotations": args.single_user_rotations,
                "secrets": args.secrets,
                "import_rounds": args.import_rounds,
                "cold_runs": args.cold_runs,
            },
        }
    }
    needs_db = {"rotation", "bulk", "cold"} & set(args.sections)
    server_version = None
    with loopback_only(), Probe() as probe, contextlib.ExitStack() as stack:
        server = None
        if needs_db:
            ensure_binaries()
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rotator-bench-"))
            server = stack.enter_context(MariaDBServer(Path(tmp) / "mariadb"))
            os.environ["ROTATOR_CA_BUNDLE"] = str(server.pki.ca_file)
            server_version = str(server.sql("SELECT VERSION()")[0][0])
        if "rotation" in args.sections:
            print(f"rotation: {args.rotations} rotations of one secret ...", file=sys.stderr)
            report["rotation"] = run_rotation_section(server, args.rotations, probe)
            report["rotation_single"] = run_rotation_section(
                server, args.single_user_rotations, probe, single_user=True
            )
        if "bulk" in args.sections:
            print(f"bulk: {args.secrets} secrets ...", file=sys.stderr)
            report["bulk"] = run_bulk_section(server, args.secrets, probe)
        if "package" in args.sections:
            print("package: building the artifact ...", file=sys.stderr)
            try:
                report["package"] = run_package_section(args.rebuild)
            except (subprocess.SubprocessError, OSError) as exc:  # e.g. no package index reachable
                detail = getattr(exc, "stderr", None) or str(exc)
                report["package_error"] = f"{type(exc).__name__}: {str(detail)[-500:]}"
                print(f"package: not measured ({report['package_error']})", file=sys.stderr)
        if "cold" in args.sections:
            print(f"cold: {args.import_rounds} x import, {args.cold_runs} x first rotation ...", file=sys.stderr)
            built = [d for d in (ARTIFACT, RESULTS / "artifact") if (d / "rotator" / "handler.py").exists()]
            artifact = built[0] if built else None
            if report.get("package"):
                artifact = REPO / report["package"]["directory"]
            report["cold"] = {
                "imports": run_import_timing(args.import_rounds, artifact),
                "first_invocation": run_first_invocation(server, args.cold_runs),
            }
    report["environment"]["load_after"] = load()
    report["environment"]["versions"] = versions(server_version)
    report["targets"] = evaluate_targets(report)
    return report


def problems(report: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for section in ("rotation", "rotation_single", "bulk"):
        checks = report.get(section, {}).get("checks", {})
        found += [f"{section}: {m}" for m in checks.get("counter_mismatches", [])]
        found += [f"{section}: unexpected outcome {o}" for o in checks.get("unexpected_outcomes", [])]
        duplicate = report.get(section, {}).get("duplicate_delivery", {})
        found += [
            f"{section}: duplicate {s}: {o}" for s, o in duplicate.get("outcomes", {}).items() if o != "same result"
        ]
        if checks.get("current_works") is False or checks.get("previous_works") is False:
            found.append(f"{section}: AWSCURRENT or AWSPREVIOUS does not work after the rotations")
        if checks.get("current_login_failures"):
            found.append(f"{section}: {checks['current_login_failures']} AWSCURRENT logins failed")
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print("\n".join(header(report)))
    for table in all_tables(report):
        print()
        print(table.render())
    print("\n* AWS's published MySQL multi-user rotation function, as quoted in issue 5; not measured here.")
    found = problems(report)
    report["problems"] = found
    if report.get("package_error"):
        print(f"\npackage: not measured: {report['package_error']}")
    for problem in found:
        print(f"PROBLEM: {problem}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nJSON report: {args.json}")
    if args.update_docs:
        update_docs(report)
        print(f"figures written to {DOCS}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
