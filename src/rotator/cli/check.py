"""``rotator check``: will the first rotation of these secrets work? (read-only)

The questions and their answers are :mod:`rotator.readiness`, the same rules the
scheduled readiness check and setSecret's own pre-flight use; this module only
gathers the arguments and prints the findings.
"""

from __future__ import annotations

import argparse
import datetime
import math
from typing import Any

from rotator.cli.context import Context, problem_code
from rotator.cli.lock import lock_finding
from rotator.cli.output import ExitCode, worst
from rotator.readiness import ReadinessCheck, SecretReport


def report_code(report: SecretReport) -> ExitCode:
    """The exit code of one secret's report."""
    if report.error is not None:
        return problem_code(report.error)
    return ExitCode.PROBLEMS if report.failed else ExitCode.OK


def make_check(ctx: Context, args: argparse.Namespace, *, function_arn: str | None = None) -> ReadinessCheck:
    return ReadinessCheck(
        ctx.store,
        ctx.database,
        database_checks=args.database,
        stale_after=args.stale_after,
        function_arn=function_arn,
        admin_hosts=ctx.settings.admin_hosts,
    )


# -- the command ----------------------------------------------------------------


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check",
        parents=parents,
        help="read-only pre-flight: will rotation of these secrets work?",
        description="Check, without changing anything, that each secret can be rotated by rotator.",
    )
    parser.add_argument("secrets", nargs="+", metavar="SECRET", help="secret name or ARN")
    add_check_options(parser)
    parser.set_defaults(command=run)


def add_check_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-database",
        dest="database",
        action="store_false",
        help="check Secrets Manager only (when this machine cannot reach the databases)",
    )
    parser.add_argument(
        "--stale-after",
        type=hours_argument,
        metavar="HOURS",
        help="a pending version older than this is stuck (default: the secret's rotation window)",
    )


# Ten years: any longer is a typo, and timedelta overflows not far beyond.
MAX_HOURS = 24 * 366 * 10


def hours_argument(value: str) -> datetime.timedelta:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {value!r}") from None
    if not math.isfinite(hours) or not 0 <= hours <= MAX_HOURS:
        raise argparse.ArgumentTypeError(f"hours must be between 0 and {MAX_HOURS}, got {value!r}")
    return datetime.timedelta(hours=hours)


def check_all(ctx: Context, checker: ReadinessCheck, secrets: list[str]) -> list[SecretReport]:
    reports = []
    for index, secret in enumerate(secrets, 1):
        ctx.out.progress(f"[{index}/{len(secrets)}] checking {secret}")
        reports.append(checker.run(secret))
    return reports


def print_report(ctx: Context, report: SecretReport) -> None:
    title = report.name or report.secret
    ctx.out.line(f"{title}" + (f"  ({report.arn})" if report.arn else ""))
    ctx.out.findings(report.findings)


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    checker = make_check(ctx, args)
    reports = check_all(ctx, checker, list(dict.fromkeys(args.secrets)))
    for report in reports:
        if report.error is None:
            report.findings.append(lock_finding(ctx, report.arn or report.secret))
    if ctx.out.json_mode:
        ctx.out.document({"command": "check", "secrets": [report.as_dict() for report in reports]})
    else:
        for report in reports:
            print_report(ctx, report)
            ctx.out.line()
        passed = sum(1 for report in reports if not report.failed)
        ctx.out.line(f"{passed} of {len(reports)} secret(s) ready for rotation")
    return worst(report_code(report) for report in reports)
