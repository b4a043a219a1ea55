"""make soak: rotations back to back through the real handler while an application works.

    python -m bench.soak                       # MariaDB and MySQL, both modes, 100 rotations each
    python -m bench.soak --server mariadb --mode alternating --rotations 20 --apps 1 --workers 2
    python -m bench.soak --server mysql --mode single-user          # dual passwords
    python -m bench.soak --server postgresql --rotations 30         # PostgreSQL 15 (postgresql18: 18)

The application is bench/application.py on rotator-client (client/): --apps
instances, each one SecretCredentials (what one process holds: one cache, one client,
one lock) shared by --workers threads, each thread opening a new connection every
--recycle transactions. Every GetSecretValue of an instance is counted (a botocore
event hook on its client) and every login's secret version recorded: the report gives
the reads per instance per rotation and the adoption time (from the end of a
rotation's finishSecret to the moment the last worker logged in with that version or a
newer one).

Single user on MySQL runs with dual passwords (the user holds APPLICATION_PASSWORD_ADMIN):
the old password stays the secondary one, so, as with alternating users, no
transaction may fail. MariaDB has no dual passwords: single user there has a window
between setSecret and finishSecret in which the cached password is refused and
AWSCURRENT does not yet hold the new one (docs/reliability.md). PostgreSQL has one password
per role: single user there has the same window; alternating users rotate a twin in the
owner-role design (docs/postgresql.md), and the application logs in with pg8000.

Each soak gets a private database server (--server; own datadir, port and CA;
verified TLS) and an in-process moto Secrets Manager; both are thrown away at the end.
A table goes to stdout, the full report as JSON to --json (default
bench/results/soak.json). The function's own output (logs, metrics) and the client's
log are captured, scanned for every password the secrets ever held and written to
bench/results/soak-function-output.log.

Exit status 1 when a soak without a window (alternating users; single user with dual
passwords) saw a failed transaction or an instance made more than 2 GetSecretValue
calls in one rotation, when any rotation did not complete, the final AWSCURRENT does
not work, the two counts of GetSecretValue disagree, or a password appeared in any output.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.application import AppLoad, LoadConfig, LoadReport, Login, app_can_work, prepare_schema, summary
from bench.common import RESULTS, loopback_only
from bench.driver import fresh_container, function_output
from bench.servers import SERVER_NAMES, ServerKind, server_kinds
from rotator_client.credentials import DEFAULT_MAX_REFRESH_INTERVAL, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_TTL
from tests.support.aws import Invoke, RotationRecord, drive_rotation, stages
from tests.support.env import LOCAL_ENV
from tests.support.world import World

FUNCTION_ENV = {
    **LOCAL_ENV,
    "POWERTOOLS_IDEMPOTENCY_DISABLED": "true",
    "DB_CONNECT_TIMEOUT": "3",
    "DB_READ_TIMEOUT": "10",
}
MAX_READS_PER_ROTATION = 2  # per application instance (issue 24)
# --server: "both" (the default) is the MySQL family's two; "all" adds PostgreSQL 15.
MYSQL_FAMILIES = ("mariadb", "mysql")


@dataclass(frozen=True)
class SoakConfig:
    rotations: int = 100
    load: LoadConfig = field(default_factory=lambda: LoadConfig(apps=2, workers=4))
    baseline_seconds: float = 3.0
    after_seconds: float = 1.0
    gap_seconds: float = 0.2
    max_seconds: float = 600.0
    attempts: int = 3


@dataclass
class SoakReport:
    mode: str
    config: dict[str, Any]
    elapsed_seconds: float
    timed_out: bool
    rotations_requested: int
    rotations_completed: int
    rotations_retried: int
    rotation_errors: dict[str, int]
    rotation_seconds: dict[str, float]
    window_seconds: dict[str, float]
    failures_inside_windows: int
    reads_per_rotation: dict[str, Any]
    adoption_seconds: dict[str, Any]
    final_current_works: bool
    final_previous_works: bool
    load: LoadReport

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["load"] = self.load.as_dict()
        return data


def run_soak(world: World, invoke: Invoke, config: SoakConfig, *, mode: str) -> SoakReport:
    """R rotations back to back while the application runs; bounded by ``max_seconds``."""
    prepare_schema(world)
    initial = next(v for v, labels in stages(world.client, world.app_arn).items() if "AWSCURRENT" in labels)
    began = time.monotonic()
    deadline = began + config.max_seconds
    records: list[RotationRecord] = []
    timed_out = False
    load = AppLoad(world, config.load)
    with load:
        load.wait_for_transactions(config.load.apps * config.load.workers)
        time.sleep(config.baseline_seconds)
        load.set_phase("rotating")
        for _ in range(config.rotations):
            if time.monotonic() > deadline:
                timed_out = True
                break
            records.append(drive_rotation(invoke, world.client, world.app_arn, attempts=config.attempts))
            if config.gap_seconds:
                time.sleep(config.gap_seconds)
        load.set_phase("after")
        time.sleep(config.after_seconds)
    ended = time.monotonic()
    report = load.report()
    world.passwords_seen |= load.passwords_seen

    windows = [w for w in (r.window for r in records) if w]
    inside = sum(
        1
        for f in report.failures
        if f.cause == "rotation" and any(start <= f.at <= end + 0.5 for start, end in windows)
    )
    completed = [r for r in records if r.completed]
    order = {initial: 0} | {r.token: i for i, r in enumerate(completed, start=1)}
    finishes = [(i, r.step_times["finishSecret"][1]) for i, r in enumerate(completed, start=1)]
    workers = config.load.apps * config.load.workers
    return SoakReport(
        mode=mode,
        config=asdict(config),
        elapsed_seconds=round(ended - began, 2),
        timed_out=timed_out,
        rotations_requested=config.rotations,
        rotations_completed=len(completed),
        rotations_retried=sum(r.attempts > 1 for r in records),
        rotation_errors=dict(Counter(e for r in records for e in r.errors)),
        rotation_seconds=seconds([r.finished - r.started for r in records]),
        window_seconds=seconds([end - start for start, end in windows]),
        failures_inside_windows=inside,
        reads_per_rotation=reads_per_rotation(load.read_times, [r.started for r in records], ended),
        adoption_seconds=adoption(load.logins, order, finishes, workers),
        final_current_works=app_can_work(world, "AWSCURRENT"),
        final_previous_works=app_can_work(world, "AWSPREVIOUS"),
        load=report,
    )


def reads_per_rotation(read_times: Sequence[Sequence[float]], starts: Sequence[float], end: float) -> dict[str, Any]:
    """GetSecretValue calls of each instance in each rotation's interval (from its start to
    the next one's; the last one's runs to the end of the soak). The first reads, before
    any rotation, are not in any interval."""
    if not starts:
        return {}
    bounds = [*starts, end]
    counts = [
        sum(1 for t in times if bounds[i] <= t < bounds[i + 1]) for times in read_times for i in range(len(starts))
    ]
    return {
        "max": max(counts),
        "mean": round(sum(counts) / len(counts), 3),
        "histogram": {str(k): v for k, v in sorted(Counter(counts).items())},
        "total": sum(counts),
        "before_rotations": sum(1 for times in read_times for t in times if t < starts[0]),
    }


def adoption(
    logins: Sequence[Login], order: dict[str, int], finishes: Sequence[tuple[int, float]], workers: int
) -> dict[str, Any]:
    """Per rotation, from the end of its finishSecret to the first login of the *last*
    worker with that version or a newer one (0 if one already had, during finishSecret).
    A rotation some worker never adopted before the soak ended is counted apart."""
    by_worker: dict[int, list[tuple[float, int]]] = {}
    for login in sorted(logins):
        by_worker.setdefault(login.worker, []).append((login.at, order.get(login.version_id, -1)))
    times: list[float] = []
    not_adopted = 0
    for index, finished in finishes:
        latest: float | None = 0.0
        for worker in range(workers):
            first = next((at for at, version in by_worker.get(worker, []) if version >= index), None)
            if first is None:
                latest = None
                break
            latest = max(latest or 0.0, first - finished)
        if latest is None:
            not_adopted += 1
        else:
            times.append(max(latest, 0.0))
    return {**seconds(times), "not_adopted_by_the_end": not_adopted}


def seconds(values: Sequence[float]) -> dict[str, float]:
    found = summary([v * 1000 for v in values])
    return {key: (value if key == "count" else round(value / 1000, 3)) for key, value in found.items()}


# -- the command ---------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("alternating", "single-user", "both"), default="both")
    parser.add_argument(
        "--server",
        choices=(*SERVER_NAMES, "both", "all"),
        default="both",
        help="the private database server(s): both = MariaDB and MySQL; all = both and PostgreSQL 15",
    )
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--apps", type=int, default=2, help="application instances (one SecretCredentials each)")
    parser.add_argument("--workers", type=int, default=4, help="threads per application instance")
    parser.add_argument("--recycle", type=int, default=20, help="transactions per connection")
    parser.add_argument("--ttl", type=float, default=DEFAULT_TTL, help="rotator-client's cache TTL (s)")
    parser.add_argument(
        "--min-refresh-interval",
        type=float,
        default=DEFAULT_MIN_REFRESH_INTERVAL,
        help="rotator-client: first hold-off after a re-read that found nothing newer (s)",
    )
    parser.add_argument(
        "--max-refresh-interval",
        type=float,
        default=DEFAULT_MAX_REFRESH_INTERVAL,
        help="rotator-client: longest hold-off (each one doubles the last) (s)",
    )
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of load before the first rotation")
    parser.add_argument("--after", type=float, default=1.0, help="seconds of load after the last rotation")
    parser.add_argument(
        "--gap", type=float, default=0.2, help="seconds between rotations (0: back to back; see docs/reliability.md)"
    )
    parser.add_argument("--max-seconds", type=float, default=600.0, help="per soak; no rotation starts after it")
    parser.add_argument(
        "--dual-passwords",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="single user on MySQL: give the user APPLICATION_PASSWORD_ADMIN (keeps the old password)",
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "soak.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "SECRETS_MANAGER_ENDPOINT"):
        os.environ.pop(key, None)
    os.environ.pop("IDEMPOTENCY_TABLE", None)
    os.environ.update(FUNCTION_ENV)
    config = SoakConfig(
        rotations=args.rotations,
        load=LoadConfig(
            apps=args.apps,
            workers=args.workers,
            recycle_every=args.recycle,
            ttl=args.ttl,
            min_refresh_interval=args.min_refresh_interval,
            max_refresh_interval=args.max_refresh_interval,
        ),
        baseline_seconds=args.baseline,
        after_seconds=args.after,
        gap_seconds=args.gap,
        max_seconds=args.max_seconds,
    )
    servers = {"both": MYSQL_FAMILIES, "all": (*MYSQL_FAMILIES, "postgresql")}.get(args.server, (args.server,))
    modes = ("alternating", "single-user") if args.mode == "both" else (args.mode,)
    results: list[dict[str, Any]] = []
    failed = False
    outputs: list[str] = []
    with loopback_only():
        for name in servers:
            kind = server_kinds()[name]
            for mode in modes:
                dual = mode == "single-user" and name == "mysql" and args.dual_passwords
                label = f"{name}, {mode}{' (dual passwords)' if dual else ''}"
                report, output, leaked = soak_one(kind, mode, config, dual_passwords=dual)
                outputs.append(f"===== {label} =====\n{output}")
                print(f"\n== soak: {label} ==")
                print(format_report(report))
                print(f"{'passwords found in any output'.ljust(40)}  {leaked}")
                results.append(
                    {"server": name, "dual_passwords": dual, **report.as_dict(), "passwords_in_output": leaked}
                )
                failed |= bool(leaked) or report.rotations_completed < report.rotations_requested
                failed |= not report.final_current_works
                failed |= report.load.secret_reads != report.load.client_reads
                if mode == "alternating" or dual:  # no window: nothing may fail, few reads
                    failed |= report.load.transactions_failed > 0
                    failed |= report.reads_per_rotation.get("max", 0) > MAX_READS_PER_ROTATION
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"soak": results}, indent=2, default=str) + "\n")
    (args.json.parent / "soak-function-output.log").write_text("\n".join(outputs))
    print(f"\nJSON report: {args.json}")
    return 1 if failed else 0


def soak_one(kind: ServerKind, mode: str, config: SoakConfig, *, dual_passwords: bool) -> tuple[SoakReport, str, int]:
    """One soak on a fresh private server and a fresh moto; returns (report, captured output, leaks)."""
    import boto3
    from moto import mock_aws

    from rotator import handler as handler_module
    from tests.support.aws import faithful_moto
    from tests.support.lambda_context import FakeLambdaContext
    from tests.support.world import make_world, reset_server

    with tempfile.TemporaryDirectory(prefix="rotator-soak-") as tmp, kind.running(Path(tmp)) as server:
        os.environ["ROTATOR_CA_BUNDLE"] = str(server.pki.ca_file)
        fresh_container()
        captured = io.StringIO()
        with mock_aws(), faithful_moto(), function_output(captured), client_log(captured):
            client = boto3.client("secretsmanager", region_name="us-east-1")
            single_user = mode == "single-user"
            world = make_world(server, client, single_user=single_user, dual_passwords=dual_passwords)

            def invoke(event: dict[str, Any]) -> Any:
                return handler_module.lambda_handler(event, FakeLambdaContext())

            report = run_soak(world, invoke, config, mode=mode)
            passwords = world.all_passwords()
        fresh_container()
        try:
            reset_server(server)  # drop the soak's users and schemas; the datadir goes next
        except Exception as exc:  # the report stands; the private datadir is removed anyway
            print(f"note: could not reset the private server ({type(exc).__name__}); removing its datadir")
        output = captured.getvalue()
        leaked = leaks(output + json.dumps(report.as_dict(), default=str), passwords)
        return report, output, leaked


@contextlib.contextmanager
def client_log(buffer: io.StringIO) -> Iterator[None]:
    """rotator-client's log (INFO: one line per re-read after a refused login) into ``buffer``."""
    handler = logging.StreamHandler(buffer)
    logger = logging.getLogger("rotator_client")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def leaks(text: str, secrets: set[str]) -> int:
    """How many of ``secrets`` appear in ``text`` (never which)."""
    return sum(1 for secret in secrets if secret and secret in text)


def format_report(report: SoakReport) -> str:
    """The report as a table for a person."""
    load = report.load
    reads = report.reads_per_rotation
    adopted = report.adoption_seconds
    rows: list[tuple[str, str]] = [
        ("mode", report.mode),
        ("application", f"{load.apps} instance(s) x {load.workers_per_app} workers"),
        ("rotations completed", f"{report.rotations_completed} / {report.rotations_requested}"),
        ("rotations retried", str(report.rotations_retried)),
        ("rotation errors", _codes(report.rotation_errors)),
        ("rotation time p50 / max (s)", _pair(report.rotation_seconds)),
        ("setSecret->finishSecret p50 / max (s)", _pair(report.window_seconds)),
        ("transactions ok", str(load.transactions_ok)),
        ("transactions failed", f"{load.transactions_failed}  {_codes(load.failed_by_code)}"),
        ("  caused by the rotation", f"{load.rotation_caused_failures}  {_codes(load.rotation_caused_by_code)}"),
        ("  failed new logins inside a window", str(report.failures_inside_windows)),
        ("new logins / refused", f"{load.logins} / {load.refused_logins}"),
        (
            "refused first logins -> recovered by the retry",
            f"{load.auth_failures_first_try} -> {load.logins_recovered_by_reread}",
        ),
        ("GetSecretValue, all (hook / client count)", f"{load.secret_reads} / {load.client_reads}"),
        ("  after a refused login", str(load.credential_rereads)),
        (
            "GetSecretValue per instance per rotation",
            f"max {reads.get('max', '-')}, mean {reads.get('mean', '-')}  {reads.get('histogram', {})}",
        ),
        (
            "adoption finishSecret->last worker p50 / max (s)",
            f"{_pair(adopted)}  (not adopted by the end: {adopted.get('not_adopted_by_the_end', 0)})",
        ),
    ]
    for phase, found in load.latency_ms.items():
        if found.get("count"):
            rows.append(
                (f"latency {phase} p50 / p99 (ms)", f"{found['p50']} / {found['p99']}  (n={int(found['count'])})")
            )
    rows += [
        ("final AWSCURRENT works", "yes" if report.final_current_works else "NO"),
        ("final AWSPREVIOUS works", "yes" if report.final_previous_works else "no"),
        ("elapsed (s)", f"{report.elapsed_seconds}{'  (stopped by the time bound)' if report.timed_out else ''}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _codes(counts: dict[str, int]) -> str:
    return ", ".join(f"{code}: {n}" for code, n in sorted(counts.items())) or "-"


def _pair(found: dict[str, Any]) -> str:
    return f"{found['p50']} / {found['max']}" if found.get("count") else "-"


if __name__ == "__main__":
    sys.exit(main())
