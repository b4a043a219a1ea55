"""``rotator attach``: check each secret, then point its rotation at the function.

Secrets are handled one at a time; a failure (a failed check, a refused call) is
recorded and the run moves on, so one bad secret among forty does not stop the
other thirty-nine. The summary at the end lists what happened to each.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

from rotator.arns import FunctionArnError, rotation_function_arn
from rotator.cli.check import add_check_options, make_check, print_report, report_code
from rotator.cli.context import Context, hint, is_fatal, problem_code
from rotator.cli.output import ExitCode, worst
from rotator.errors import SecretStoreError
from rotator.readiness import ReadinessCheck, SecretReport

_SCHEDULE = re.compile(r"^(rate\(\s*[1-9]\d*\s+(hour|hours|day|days)\s*\)|cron\(.+\))$")


@dataclass
class Outcome:
    report: SecretReport
    result: str  # attached | refused | failed | would-attach
    detail: str = ""
    code: ExitCode = ExitCode.OK
    version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.report.as_dict(),
            "result": self.result,
            "detail": self.detail,
            "rotation_version": self.version,
        }


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "attach",
        parents=parents,
        help="check secrets, then turn on rotation with the deployed function",
        description=(
            "Run check on each secret; attach the ones that pass (or all of them with --force) by setting "
            "the rotation function and schedule (RotateSecret)."
        ),
    )
    parser.add_argument("secrets", nargs="+", metavar="SECRET", help="secret name or ARN")
    parser.add_argument(
        "--function-arn",
        required=True,
        type=_function_arn,
        help="the rotation function's unqualified ARN (no :alias or :version)",
    )
    parser.add_argument(
        "--schedule",
        required=True,
        type=_schedule,
        metavar="EXPR",
        help="rotation schedule: rate(N days), rate(N hours) or cron(...)",
    )
    parser.add_argument(
        "--duration",
        type=_duration,
        metavar="H",
        help="rotation window in hours (default: Secrets Manager's; see docs/operations.md)",
    )
    now = parser.add_mutually_exclusive_group()
    now.add_argument(
        "--rotate-now",
        dest="rotate_now",
        action="store_true",
        help="rotate immediately after attaching",
    )
    now.add_argument(
        "--no-rotate-now",
        dest="rotate_now",
        action="store_false",
        help="only test (Secrets Manager runs testSecret); rotate at the first scheduled window (default)",
    )
    parser.set_defaults(rotate_now=False)
    parser.add_argument("--force", action="store_true", help="attach even secrets whose check fails")
    parser.add_argument("--dry-run", action="store_true", help="check and say what would be done; change nothing")
    add_check_options(parser)
    parser.set_defaults(command=run)


def rotation_rules(schedule: str, duration_hours: int | None) -> dict[str, Any]:
    rules: dict[str, Any] = {"ScheduleExpression": schedule}
    if duration_hours is not None:
        rules["Duration"] = f"{duration_hours}h"
    return rules


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    rules = rotation_rules(args.schedule, args.duration)
    checker = make_check(ctx, args, function_arn=args.function_arn)
    secrets = list(dict.fromkeys(args.secrets))
    outcomes: list[Outcome] = []
    for index, secret in enumerate(secrets, 1):
        ctx.out.progress(f"[{index}/{len(secrets)}] {secret}: checking")
        outcome = _attach_one(ctx, checker, secret, args, rules)
        ctx.out.progress(f"[{index}/{len(secrets)}] {secret}: {outcome.result}{_suffix(outcome.detail)}")
        outcomes.append(outcome)

    if ctx.out.json_mode:
        ctx.out.document(
            {
                "command": "attach",
                "function_arn": args.function_arn,
                "rotation_rules": rules,
                "rotate_immediately": args.rotate_now,
                "dry_run": args.dry_run,
                "secrets": [outcome.as_dict() for outcome in outcomes],
            }
        )
    else:
        for outcome in outcomes:
            print_report(ctx, outcome.report)
            ctx.out.line(f"  => {outcome.result}{_suffix(outcome.detail)}")
            ctx.out.line()
        _summary(ctx, outcomes)
    return worst(outcome.code for outcome in outcomes)


def _attach_one(
    ctx: Context, checker: ReadinessCheck, secret: str, args: argparse.Namespace, rules: dict[str, Any]
) -> Outcome:
    report = checker.run(secret)
    if report.arn is None:  # the secret itself could not be read
        return Outcome(report, "failed", report.findings[0].message if report.findings else "", report_code(report))
    if report.blocking_checks and not args.force:
        failed = ", ".join(report.blocking_checks)
        return Outcome(report, "refused", f"check failed: {failed} (use --force to attach anyway)", report_code(report))
    if args.dry_run:
        return Outcome(report, "would-attach", _plan(args, rules), ExitCode.OK)
    try:
        version = ctx.operator.configure_rotation(report.arn, args.function_arn, rules, rotate_now=args.rotate_now)
    except SecretStoreError as exc:
        if is_fatal(exc):
            raise
        detail = exc.problem + (f" ({hint(exc)})" if hint(exc) else "")
        return Outcome(report, "failed", detail, problem_code(exc))
    forced = " despite failed checks (--force)" if report.blocking_checks else ""
    return Outcome(report, "attached", _plan(args, rules) + forced, ExitCode.OK, version)


def _plan(args: argparse.Namespace, rules: dict[str, Any]) -> str:
    when = "rotating now" if args.rotate_now else "testSecret now, first rotation at the next window"
    return f"{rules['ScheduleExpression']}{', window ' + rules['Duration'] if 'Duration' in rules else ''}; {when}"


def _summary(ctx: Context, outcomes: list[Outcome]) -> None:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    ctx.out.line("summary: " + ", ".join(f"{count} {result}" for result, count in counts.items()))
    for outcome in outcomes:
        if outcome.result in ("refused", "failed"):
            ctx.out.line(f"  {outcome.result:<8} {outcome.report.name or outcome.report.secret}: {outcome.detail}")


def _suffix(detail: str) -> str:
    return f" ({detail})" if detail else ""


def _schedule(value: str) -> str:
    value = value.strip()
    if not _SCHEDULE.match(value):
        raise argparse.ArgumentTypeError(f"not a schedule expression: {value!r} (rate(30 days), cron(0 4 ? * SUN *))")
    return value


def _duration(value: str) -> int:
    try:
        hours = int(value.rstrip("h"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {value!r}") from None
    if not 1 <= hours <= 24:
        raise argparse.ArgumentTypeError("the rotation window is 1 to 24 hours")
    return hours


def _function_arn(value: str) -> str:
    # Unqualified only: an alias or version ARN would not match AllowRotationLambdaArn (rotator.arns).
    try:
        return rotation_function_arn(value)
    except FunctionArnError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
