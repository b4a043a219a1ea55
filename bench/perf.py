"""make bench: what one rotation costs, and what many cost.

    python -m bench.perf                          # everything (a few minutes on a quiet machine)
    python -m bench.perf --only rotation,cold     # some sections
    python -m bench.perf --rotations 5 --secrets 20 --cold-runs 3   # quick look
    python -m bench.perf --update-docs            # also rewrite the figures in docs/performance.md

Sections (each prints a table; all of them go to --json, default bench/results/perf.json),
one module each in bench/sections/:

rotation  N rotations of one application secret through ``rotator.handler.lambda_handler``
          in one process (one container): the first in a new container, the rest warm.
          Secrets Manager and DynamoDB (idempotency on) are moto, in-process; the
          database is a private server (--server) with its own CA (verified TLS).
cold      (a) import time of ``rotator.handler`` against ``import boto3, pymysql``,
          each in fresh interpreters, interleaved; (b) the first invocation: fresh
          processes that import the handler and run one rotation against a moto
          server on 127.0.0.1, as a new Lambda container would.
package   zipped and unzipped size of the ``sam build`` artifact.
bulk      S application secrets sharing one admin secret, each rotated once, one
          after another, in one warm process.

The counts come from bench.counters (patches on botocore, boto3, PyMySQL, pg8000 and
ssl), cross-checked against rotator's own database counters (``stats``). With
``--server postgresql`` (15) or ``postgresql18`` only the rotation and package
sections run: ``make bench BENCH_ARGS="--server postgresql --only rotation"``. Nothing leaves
127.0.0.1; the database server and moto are thrown away at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import targets
from bench.common import DOCS, FUNCTION_ENV, RESULTS, SCRUB_ENV, load, loopback_only, versions
from bench.counters import Probe
from bench.report import Table
from bench.sections import bulk, cold, package, rotation
from bench.servers import POSTGRESQL_SECTIONS, SERVER_NAMES, server_kind

SECTIONS = ("rotation", "cold", "package", "bulk")
NEEDS_DB = {"rotation", "bulk", "cold"}
FOOTNOTE = "AWS's published MySQL multi-user rotation function, as quoted in issue 5; not measured here."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    parser.add_argument("--server", choices=SERVER_NAMES, default="mariadb", help="the private database server")
    parser.add_argument(
        "--rotations", type=int, default=21, help="rotations of one secret in one process (1 new + N-1 warm)"
    )
    parser.add_argument("--single-user-rotations", type=int, default=6, help="the same for a single-user secret")
    parser.add_argument("--secrets", type=int, default=200, help="application secrets in the bulk section")
    parser.add_argument("--import-rounds", type=int, default=15, help="fresh interpreters per import variant")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh processes per first-invocation variant")
    parser.add_argument("--rebuild", action="store_true", help="run `make build` even if an artifact exists")
    parser.add_argument(
        "--artifact", type=Path, help="the built function the cold section imports (default: the package section's)"
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "perf.json")
    parser.add_argument("--update-docs", action="store_true", help="rewrite the figures block of docs/performance.md")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.server.startswith("postgresql") and set(args.sections) - POSTGRESQL_SECTIONS:
        parser.error(f"--server {args.server} runs the sections {', '.join(sorted(POSTGRESQL_SECTIONS))} only")
    if min(args.rotations, args.single_user_rotations, args.secrets) < 1:
        parser.error("--rotations, --single-user-rotations and --secrets must be at least 1")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    for key in SCRUB_ENV:
        os.environ.pop(key, None)
    os.environ.update(FUNCTION_ENV)

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
    kind = server_kind(args.server)
    server_version = None
    with loopback_only(), Probe() as probe, contextlib.ExitStack() as stack:
        server = None
        if NEEDS_DB & set(args.sections):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="rotator-bench-"))
            server = stack.enter_context(kind.running(Path(tmp)))
            os.environ["ROTATOR_CA_BUNDLE"] = str(server.pki.ca_file)
            server_version = kind.version(server)
        if "rotation" in args.sections:
            print(f"rotation: {args.rotations} rotations of one secret ...", file=sys.stderr)
            report["rotation"] = rotation.run_section(server, args.rotations, probe)
            report["rotation_single"] = rotation.run_section(
                server, args.single_user_rotations, probe, single_user=True
            )
        if "bulk" in args.sections:
            print(f"bulk: {args.secrets} secrets ...", file=sys.stderr)
            report["bulk"] = bulk.run_section(server, args.secrets, probe)
        if "package" in args.sections:
            print("package: building the artifact ...", file=sys.stderr)
            try:
                report["package"] = package.run_section(args.rebuild)
            except (subprocess.SubprocessError, OSError) as exc:  # e.g. no package index reachable
                detail = getattr(exc, "stderr", None) or str(exc)
                report["package_error"] = f"{type(exc).__name__}: {str(detail)[-500:]}"
                print(f"package: not measured ({report['package_error']})", file=sys.stderr)
        if "cold" in args.sections:
            print(f"cold: {args.import_rounds} x import, {args.cold_runs} x first rotation ...", file=sys.stderr)
            artifact = args.artifact or cold.find_artifact(report.get("package"))
            report["cold"] = cold.run_section(server, args.import_rounds, args.cold_runs, artifact)
    report["environment"]["load_after"] = load()
    report["environment"]["versions"] = versions(kind.label, server_version)
    report["targets"] = targets.evaluate(report)
    return report


def all_tables(report: dict[str, Any]) -> list[Table]:
    return [
        *rotation.tables(report),
        *bulk.tables(report),
        *cold.tables(report),
        *package.tables(report),
        *targets.tables(report.get("targets", [])),
    ]


# What a second delivery of each step answers (docs/observability.md, "Idempotency"):
# setSecret, the step that changes the database, is answered from the idempotency
# table with the first result; the others by their own state checks, at no database.
DUPLICATE_ANSWERS = {
    "createSecret": "different: pending-exists",
    "testSecret": "different: already-tested",
    "finishSecret": "different: already-current",
}


def problems(report: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for section in ("rotation", "rotation_single", "bulk"):
        checks = report.get(section, {}).get("checks", {})
        found += [f"{section}: {m}" for m in checks.get("counter_mismatches", [])]
        found += [f"{section}: unexpected outcome {o}" for o in checks.get("unexpected_outcomes", [])]
        duplicate = report.get(section, {}).get("duplicate_delivery", {})
        found += [
            f"{section}: duplicate {s}: {o}"
            for s, o in duplicate.get("outcomes", {}).items()
            if o != DUPLICATE_ANSWERS.get(s, "same result")
        ]
        if duplicate.get("per_delivery", {}).get("db_connections_attempted"):
            found.append(f"{section}: a duplicate delivery touched the database")
        if checks.get("current_works") is False or checks.get("previous_works") is False:
            found.append(f"{section}: AWSCURRENT or AWSPREVIOUS does not work after the rotations")
        if checks.get("current_login_failures"):
            found.append(f"{section}: {checks['current_login_failures']} AWSCURRENT logins failed")
    return found


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


def figures_markers(server: str) -> tuple[str, str]:
    """Where in docs/performance.md a run against ``server`` writes its figures; MariaDB's
    block keeps the unnamed markers, another server gets its own block."""
    tag = "bench:figures" if server == "mariadb" else f"bench:figures:{server}"
    return f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"


def update_docs(report: dict[str, Any], server: str) -> None:
    text = DOCS.read_text()
    begin, end = figures_markers(server)
    if begin not in text or end not in text:
        raise SystemExit(f"{DOCS} lacks the {begin} / {end} markers")
    body = "\n".join(
        [
            "",
            *(f"{line}  " for line in header(report)),
            "",
            "\n\n".join(t.markdown() for t in all_tables(report)),
            "",
            f"\\* {FOOTNOTE}",
            "",
        ]
    )
    before, _, rest = text.partition(begin)
    _, _, after = rest.partition(end)
    DOCS.write_text(before + begin + body + end + after)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print("\n".join(header(report)))
    for table in all_tables(report):
        print()
        print(table.render())
    print(f"\n* {FOOTNOTE}")
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
        update_docs(report, args.server)
        print(f"figures written to {DOCS}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
