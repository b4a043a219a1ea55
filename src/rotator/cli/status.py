"""``rotator status`` and ``rotator fix``: where rotations stand, and repairing a stuck one.

``fix`` first finds out, read-only, which version's password the database holds
(:mod:`rotator.repair`), then either removes the stale AWSPENDING label (AWSCURRENT
still logs in) or finishes the rotation forward (only the pending version's password
logs in: AWSCURRENT moves to it, as finishSecret does) — never removing the only label
that points at the database's password. ``--dry-run`` says which, changing nothing. It
re-reads the labels just before acting, so a rotation that finished meanwhile is left
alone.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass
from typing import Any

from rotator import schedule
from rotator.cli.check import hours_argument
from rotator.cli.context import Context, UsageError, hint, is_fatal, problem_code
from rotator.cli.output import ExitCode, worst
from rotator.errors import SecretStoreError
from rotator.ports import CURRENT, PENDING, PREVIOUS, SecretDescription
from rotator.repair import Repair, RepairAction, RepairPlan
from rotator.schedule import (
    PendingVersion,
    format_age,
    format_date,
    pending_version,
    rotation_window,
    schedule_text,
)


@dataclass
class SecretStatus:
    secret: str
    details: SecretDescription | None = None
    pending: PendingVersion | None = None
    error: str = ""
    code: ExitCode = ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        if self.details is None:
            return {"secret": self.secret, "error": self.error}
        details = self.details
        return {
            "secret": self.secret,
            "arn": details.arn,
            "name": details.name,
            "rotation_enabled": details.rotation_enabled,
            "function_arn": details.function_arn,
            "rotation_rules": details.rules,
            "rotation_window_hours": rotation_window(details.rules).total_seconds() / 3600,
            "last_rotated": details.last_rotated.isoformat() if details.last_rotated else None,
            "next_rotation": details.next_rotation.isoformat() if details.next_rotation else None,
            "labels": {
                stage: details.version_with(stage)
                for stage in (CURRENT, PREVIOUS, PENDING)
                if details.version_with(stage)
            },
            "pending": None
            if self.pending is None
            else {
                "version": self.pending.version_id,
                "created": self.pending.created.isoformat() if self.pending.created else None,
                "age_seconds": self.pending.age.total_seconds() if self.pending.age else None,
                "stale": self.pending.stale,
            },
        }


def add_parsers(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    status = subparsers.add_parser(
        "status",
        parents=parents,
        help="rotation state of secrets: schedule, last/next rotation, labels, stuck rotations",
        description="Show each secret's rotation state. Exit status 1 when a rotation is stuck.",
    )
    status.add_argument("secrets", nargs="*", metavar="SECRET", help="secret name or ARN")
    status.add_argument("--all", action="store_true", help="every secret in the account and region")
    status.add_argument("--function-arn", help="with --all: only secrets rotated by this function")
    status.add_argument(
        "--stale-after",
        type=hours_argument,
        metavar="HOURS",
        help="a pending version older than this is stuck (default: the secret's rotation window)",
    )
    status.set_defaults(command=run_status)

    fix = subparsers.add_parser(
        "fix",
        parents=parents,
        help="repair a stuck rotation: clear AWSPENDING, or finish it when only its password works",
        description=(
            "For a pending version that has outlived the rotation window: find out which version's password "
            "the database holds (read-only: the admin's stored hashes, or logins, the most likely first), then "
            "remove the AWSPENDING label if AWSCURRENT still logs in, or finish the rotation (move AWSCURRENT to "
            "the pending version) if only the pending password does. Never removes the only label that points "
            "at the database's password. Run it where the function runs (it logs in to the database)."
        ),
    )
    fix.add_argument("secret", metavar="SECRET", help="secret name or ARN")
    fix.add_argument("--dry-run", action="store_true", help="find out and say what would be done; change nothing")
    fix.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    fix.add_argument(
        "--force", action="store_true", help="repair even if the pending version is still within its window"
    )
    fix.add_argument(
        "--stale-after",
        type=hours_argument,
        metavar="HOURS",
        help="a pending version older than this is stuck (default: the secret's rotation window)",
    )
    fix.set_defaults(command=run_fix)


# -- status ---------------------------------------------------------------------


def read_status(
    ctx: Context, secret: str, now: datetime.datetime, stale_after: datetime.timedelta | None
) -> SecretStatus:
    status = SecretStatus(secret)
    try:
        status.details = ctx.store.describe(secret)
        versions = ctx.store.labelled_versions(status.details.arn) if status.details.version_with(PENDING) else []
    except SecretStoreError as exc:
        if is_fatal(exc):
            raise
        status.code = problem_code(exc)
        status.error = exc.problem + (f" ({hint(exc)})" if hint(exc) else "")
        return status
    status.pending = pending_version(status.details, versions, now, stale_after)
    if status.pending is not None and status.pending.stale:
        status.code = ExitCode.PROBLEMS
    return status


def run_status(ctx: Context, args: argparse.Namespace) -> ExitCode:
    if args.all == bool(args.secrets):
        raise UsageError("name the secrets, or pass --all (not both)")
    if args.function_arn and not args.all:
        raise UsageError("--function-arn filters --all")
    if args.all:
        ctx.out.progress("listing secrets")
        secrets = list(ctx.store.secret_arns(args.function_arn))
    else:
        secrets = list(dict.fromkeys(args.secrets))
    now = schedule.utcnow()
    statuses = []
    for index, secret in enumerate(secrets, 1):
        if len(secrets) > 1:
            ctx.out.progress(f"[{index}/{len(secrets)}] {secret}")
        statuses.append(read_status(ctx, secret, now, args.stale_after))

    if ctx.out.json_mode:
        ctx.out.document({"command": "status", "secrets": [status.as_dict() for status in statuses]})
    else:
        for status in statuses:
            _print_status(ctx, status)
        stuck = sum(1 for status in statuses if status.pending is not None and status.pending.stale)
        ctx.out.line(f"{len(statuses)} secret(s), {stuck} stuck")
    return worst(status.code for status in statuses)


def _print_status(ctx: Context, status: SecretStatus) -> None:
    out = ctx.out
    if status.details is None:
        out.line(f"{status.secret}")
        out.line(f"  error       {status.error}")
        out.line()
        return
    details = status.details
    out.line(f"{details.name}  ({details.arn})")
    if details.function_arn:
        state = "enabled" if details.rotation_enabled else "disabled"
        out.line(f"  rotation    {state}, {schedule_text(details)}")
        out.line(f"  function    {details.function_arn}")
    else:
        out.line("  rotation    not configured")
    out.line(f"  last        {format_date(details.last_rotated)}")
    out.line(f"  next        {format_date(details.next_rotation)}")
    for stage in (CURRENT, PREVIOUS, PENDING):
        version = details.version_with(stage)
        if version and not (stage == PENDING and version == details.version_with(CURRENT)):
            out.line(f"  {stage:<11} {version}")
    pending = status.pending
    if pending is not None:
        if pending.stale:
            out.line(f"  STUCK       {pending.describe()}")
            out.line(f"              -> read the function's logs, then: rotator fix {details.name}")
        else:
            out.line(f"  rotating    {pending.describe()}")
    out.line()


# -- fix -----------------------------------------------------------------------


def run_fix(ctx: Context, args: argparse.Namespace) -> ExitCode:
    status = read_status(ctx, args.secret, schedule.utcnow(), args.stale_after)
    if status.details is None:
        ctx.out.error(f"{args.secret}: {status.error}")
        if ctx.out.json_mode:
            ctx.out.document({"command": "fix", "secret": args.secret, "ok": False, "error": status.error})
        return status.code
    details = status.details
    pending = status.pending
    result: dict[str, Any] = {
        "command": "fix",
        "secret": details.arn,
        "pending": None,
        "action": "none",
        "dry_run": args.dry_run,
    }

    if pending is None:
        return _done(ctx, result, f"{details.name}: no rotation in progress; nothing to fix", ExitCode.OK)
    result["pending"] = pending.version_id
    if not pending.stale and not args.force:
        return _done(
            ctx,
            result,
            f"{details.name}: {pending.describe()}; a rotation may still be running. "
            "Wait, or pass --force if you know it is not",
            ExitCode.PROBLEMS,
        )
    return _repair(ctx, args, details, pending, result)


def _repair(
    ctx: Context, args: argparse.Namespace, details: SecretDescription, pending: PendingVersion, result: dict[str, Any]
) -> ExitCode:
    ctx.out.progress(f"{details.name}: finding out which version's password the database holds")
    repair = Repair(ctx.store, ctx.database, ctx.operator)
    plan = repair.plan(details, pending.version_id)
    result["plan"] = {"action": plan.action.value, "reason": plan.reason, "logins": plan.logins}
    current = details.version_with(CURRENT)
    if plan.action is RepairAction.NOTHING:
        return _done(
            ctx, result, f"{details.name}: nothing done: {plan.reason}. The labels stay as they are", ExitCode.PROBLEMS
        )
    what = _plan_text(details.name, pending.version_id, current, plan)
    age = f" (pending version created {format_age(pending.age)} ago)" if pending.age is not None else ""
    statement = f"{what}{age}. Because {plan.reason}. No secret value and no database user changes."
    if args.dry_run:
        return _done(ctx, result, f"{statement} Dry run: nothing changed", ExitCode.OK)
    if not _confirmed(ctx, args, statement):
        return _done(ctx, result, "nothing changed", ExitCode.PROBLEMS)

    # Read the labels again right before acting: never race a finishing rotation.
    fresh = ctx.store.describe(details.arn)
    if fresh.version_with(PENDING) != pending.version_id or fresh.version_with(CURRENT) != current:
        return _done(ctx, result, f"{details.name}: the labels changed meanwhile; nothing done", ExitCode.PROBLEMS)
    repair.apply(fresh, pending.version_id, plan)
    after = ctx.store.describe(details.arn)
    result["labels"] = {stage: after.version_with(stage) for stage in (CURRENT, PREVIOUS, PENDING)}
    if plan.action is RepairAction.CLEAR:
        result["action"] = "removed AWSPENDING"
        message = (
            f"{details.name}: removed AWSPENDING from {pending.version_id}; AWSCURRENT is "
            f"{after.version_with(CURRENT)}. The next rotation can start (Secrets Manager's schedule, or "
            "aws secretsmanager rotate-secret)."
        )
    else:
        result["action"] = "finished: moved AWSCURRENT"
        message = (
            f"{details.name}: finished the rotation: AWSCURRENT is now {after.version_with(CURRENT)} (its password "
            f"is the database's), AWSPREVIOUS {after.version_with(PREVIOUS)}. Clients that re-read AWSCURRENT log "
            "in again."
        )
    return _done(ctx, result, message, ExitCode.OK)


def _confirmed(ctx: Context, args: argparse.Namespace, statement: str) -> bool:
    if args.yes:
        ctx.out.progress(statement)
        return True
    if not sys.stdin.isatty():
        raise UsageError(f"{statement} Not a terminal: pass --yes to confirm")
    ctx.out.stderr.write(f"{statement}\nProceed? [y/N] ")
    ctx.out.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _plan_text(name: str, pending: str, current: str | None, plan: RepairPlan) -> str:
    if plan.action is RepairAction.CLEAR:
        return f"{name}: remove the label AWSPENDING from version {pending}; AWSCURRENT stays on {current}"
    tested = " (labelled ROTATOR_TESTED first)" if plan.label_tested else ""
    return f"{name}: finish the rotation: move AWSCURRENT from {current} to version {pending}{tested}"


def _done(ctx: Context, result: dict[str, Any], message: str, code: ExitCode) -> ExitCode:
    result["message"] = message
    result["ok"] = code is ExitCode.OK
    if ctx.out.json_mode:
        ctx.out.document(result)
    else:
        ctx.out.line(message)
    return code
