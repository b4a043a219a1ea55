"""``rotator lock SECRET...``: merge the lock into each secret's resource policy, with no gap.

Reads each secret's policy (GetResourcePolicy), merges the lock into it
(:mod:`rotator.locks`: rotator's older statements and the hand-made ``Deny
GetSecretValue unless aws:sourceVpce`` are taken over, everything else is kept) and
shows the change. Only with ``--apply`` does it write, with one ``PutResourcePolicy``
per secret: never ``DeleteResourcePolicy``, so the old policy holds until the new
one does. A dry run is the default because a lock that is wrong locks people out (or
lets them in); the diff is what a reviewer approves.

Every secret is read and planned before anything is written: if one merge would
loosen its policy in place, or one secret cannot be read, nothing is written at all.
"""

from __future__ import annotations

import argparse
import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from rotator import iam_policies, locks
from rotator.cli.context import Context, UsageError, hint, is_fatal, problem_code
from rotator.cli.output import ExitCode, worst
from rotator.cli.policy import lock_options, lock_policy
from rotator.errors import SecretStoreError
from rotator.readiness import Finding, Level

_HOLDINGS = {
    locks.Holding.NONE: "no resource policy",
    locks.Holding.LOCK: "rotator's lock",
    locks.Holding.OLD_LOCK: "an earlier rotator lock (reads only)",
    locks.Holding.HAND_MADE: "a hand-made lock (Deny GetSecretValue unless aws:sourceVpce)",
    locks.Holding.OTHER: "a resource policy without a lock",
}


@dataclass
class Outcome:
    secret: str
    result: str  # unchanged | would-lock | locked | refused | failed
    arn: str | None = None
    name: str | None = None
    holding: locks.Holding | None = None
    plan: locks.Plan | None = None
    detail: str = ""
    code: ExitCode = ExitCode.OK
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "secret": self.secret,
            "arn": self.arn,
            "name": self.name,
            "result": self.result,
            "holding": self.holding.value if self.holding else None,
            "detail": self.detail,
        }
        if self.plan is not None:
            found.update(
                replaced=list(self.plan.replaced),
                kept=list(self.plan.kept),
                kept_denies=list(self.plan.kept_denies),
                policy=self.plan.after,
            )
        return found


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lock",
        parents=parents,
        help="merge the lock into each secret's resource policy (a dry run unless --apply)",
        description=(
            "Read each secret's resource policy, merge the lock into it (taking over rotator's older lock and the "
            "hand-made Deny GetSecretValue unless aws:sourceVpce; keeping every other statement), refuse a merge "
            "that would loosen it, and show the change. With --apply, write it with one PutResourcePolicy per "
            "secret: never DeleteResourcePolicy, never a moment without a policy."
        ),
    )
    parser.add_argument("secrets", nargs="+", metavar="SECRET", help="secret name or ARN")
    lock_options(parser)
    parser.add_argument("--apply", action="store_true", help="write the merged policies (default: show them only)")
    parser.set_defaults(command=run)


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    try:
        lock = lock_policy(ctx, args)
    except iam_policies.PolicyError as exc:
        raise UsageError(str(exc)) from None
    secrets = list(dict.fromkeys(args.secrets))
    outcomes = []
    for index, secret in enumerate(secrets, 1):
        ctx.out.progress(f"[{index}/{len(secrets)}] reading the resource policy of {secret}")
        outcomes.append(_plan(ctx, secret, lock))
    sound = all(outcome.result in ("unchanged", "would-lock") for outcome in outcomes)
    if args.apply and sound:
        for outcome in outcomes:
            if outcome.result == "would-lock":
                _write(ctx, outcome)
    _report(ctx, outcomes, applied=args.apply and sound, asked=args.apply)
    return worst(outcome.code for outcome in outcomes)


def _plan(ctx: Context, secret: str, lock: iam_policies.Policy) -> Outcome:
    try:
        arn, name, text = ctx.operator.resource_policy(secret)
    except SecretStoreError as exc:
        if is_fatal(exc):
            raise
        action = hint(exc)
        detail = exc.problem + (f" ({action})" if action else "")
        return Outcome(secret, "failed", detail=detail, code=problem_code(exc))
    outcome = Outcome(secret, "failed", arn, name)
    try:
        existing = locks.parse(text)
        outcome.holding = locks.inspect(existing).holding
        outcome.plan = locks.plan(existing, lock)
    except (ValueError, iam_policies.PolicyError) as exc:
        # LockRefused is a PolicyError; a policy that is not JSON is a ValueError.
        outcome.result, outcome.detail, outcome.code = "refused", str(exc), ExitCode.PROBLEMS
        return outcome
    outcome.result = "would-lock" if outcome.plan.changed else "unchanged"
    return outcome


def _write(ctx: Context, outcome: Outcome) -> None:
    assert outcome.plan is not None and outcome.arn is not None
    try:
        ctx.operator.put_resource_policy(outcome.arn, json.dumps(outcome.plan.after))
        _, _, written = ctx.operator.resource_policy(outcome.arn)
    except SecretStoreError as exc:
        if is_fatal(exc):
            raise
        action = hint(exc)
        outcome.result = "failed"
        outcome.detail = f"{exc.problem}; the policy in place is unchanged" + (f" ({action})" if action else "")
        outcome.code = problem_code(exc)
        return
    if locks.parse(written) != outcome.plan.after:
        outcome.result, outcome.code = "failed", ExitCode.PROBLEMS
        outcome.detail = "the policy read back is not the one written (changed meanwhile?): run lock again"
        return
    outcome.result = "locked"


def _report(ctx: Context, outcomes: list[Outcome], *, applied: bool, asked: bool) -> None:
    if ctx.out.json_mode:
        ctx.out.document(
            {"command": "lock", "applied": applied, "secrets": [outcome.as_dict() for outcome in outcomes]}
        )
        return
    for outcome in outcomes:
        title = outcome.name or outcome.secret
        ctx.out.line(f"{title}" + (f"  ({outcome.arn})" if outcome.arn else ""))
        if outcome.holding is not None:
            ctx.out.line(f"  in place: {_HOLDINGS[outcome.holding]}")
        if outcome.plan is not None and outcome.result != "refused":
            if outcome.plan.replaced:
                ctx.out.line(f"  taken over: {', '.join(outcome.plan.replaced)}")
            if outcome.plan.kept:
                ctx.out.line(f"  kept as it is: {', '.join(outcome.plan.kept)}")
            for sid in outcome.plan.kept_denies:
                ctx.out.line(f"  note: kept Deny statement {sid} applies beside the lock; it may refuse what it allows")
            if outcome.plan.changed:
                ctx.out.stdout.write(_diff(outcome.plan))
        ctx.out.line(f"  {outcome.result}" + (f": {outcome.detail}" if outcome.detail else ""))
        ctx.out.line()
    if asked and not applied:
        ctx.out.line("nothing written: every secret's merge must be sound before any is applied")
    elif not asked:
        pending = sum(1 for outcome in outcomes if outcome.result == "would-lock")
        ctx.out.line(f"dry run: {pending} polic{'y' if pending == 1 else 'ies'} to write; --apply writes them")
    else:
        done = sum(1 for outcome in outcomes if outcome.result == "locked")
        ctx.out.line(f"{done} of {len(outcomes)} secret(s) locked, one PutResourcePolicy each")


def _diff(plan: locks.Plan) -> str:
    before = json.dumps(plan.before, indent=2).splitlines() if plan.before is not None else []
    after = json.dumps(plan.after, indent=2).splitlines()
    label = "in place" if plan.before is not None else "in place (no resource policy)"
    lines = difflib.unified_diff(before, after, fromfile=label, tofile="to write", lineterm="", n=2)
    return "".join(f"    {line}\n" for line in lines)


# -- rotator check's finding ------------------------------------------------------------

_TAKE_OVER = (
    "CloudFormation's AWS::SecretsManager::ResourcePolicy cannot attach to a secret that has a policy (AWS: "
    "remove it first, which leaves the secret unlocked): merge the lock into it with `rotator lock {secret} "
    "--endpoint VPCE --break-glass ARN ... --apply` and deploy with LockSecretsToEndpoint=rotator-lock"
)


def lock_finding(ctx: Context, secret: str) -> Finding:
    """``secret.lock``: is the secret locked, and can the template's lock attach to it?"""
    try:
        _, _, text = ctx.operator.resource_policy(secret)
        found = locks.inspect(locks.parse(text))
    except SecretStoreError as exc:
        return Finding("secret.lock", Level.WARN, f"the resource policy could not be read: {exc.problem}", hint(exc))
    except (ValueError, iam_policies.PolicyError) as exc:
        return Finding("secret.lock", Level.WARN, f"the resource policy could not be read: {exc}")
    endpoints = f" (endpoints {', '.join(found.endpoints)})" if found.endpoints else ""
    if found.holding is locks.Holding.LOCK:
        return Finding("secret.lock", Level.OK, f"locked to the VPC endpoint by rotator's lock{endpoints}")
    if found.holding is locks.Holding.NONE:
        return Finding(
            "secret.lock",
            Level.WARN,
            "no resource policy: nothing keeps reads and writes inside the VPC",
            "deploy with LockSecretsToEndpoint=true (the stack attaches the lock), or run `rotator lock`",
        )
    if found.holding is locks.Holding.OLD_LOCK:
        return Finding(
            "secret.lock",
            Level.WARN,
            f"an earlier rotator lock{endpoints} guards reads only: writes and the lock itself are open",
            f"`rotator lock {secret} ... --apply` takes it over",
        )
    what = (
        f"a hand-made lock{endpoints} (Deny GetSecretValue unless aws:sourceVpce) guards reads only"
        if found.holding is locks.Holding.HAND_MADE
        else f"a resource policy ({found.statements} statement(s)) without a lock"
    )
    return Finding("secret.lock", Level.WARN, what, _TAKE_OVER.format(secret=secret))
