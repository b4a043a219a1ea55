"""``rotator rotate SECRET --local``: the four steps, in this process, as Secrets Manager runs them.

Secrets Manager starts a rotation with RotateSecret, which stages an empty version
labelled AWSPENDING under a new token and then invokes the function four times
with that token. There is no other API that stages such a version, and on AWS,
RotateSecret always invokes the deployed function too. So:

- against an emulator (``--endpoint-url`` on this machine, or ``--emulator``),
  ``--local`` stages the version with RotateSecret (moto stages it and cannot run
  a function) and then runs createSecret, setSecret, testSecret and finishSecret
  here, with that token, through :class:`rotator.rotation.Rotation`;
- against AWS, ``--local`` only *resumes* a rotation that Secrets Manager already
  started (``--token``, the AWSPENDING version id, from ``rotator status``): it
  runs the same four steps, each of which does only what is still missing.
  Starting a new rotation on AWS is ``aws secretsmanager rotate-secret``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rotator import rotation as rotation_module
from rotator.cli.context import Context, UsageError, describe_error, problem_code
from rotator.cli.output import ExitCode
from rotator.errors import RotatorError, SecretStoreError
from rotator.ports import CURRENT, PENDING
from rotator.rotation import Rotation, RotationRequest, Step
from rotator.secret import DatabaseSecret

# moto needs *some* function ARN, or it promotes the empty version at once.
PLACEHOLDER_FUNCTION = "arn:aws:lambda:us-east-1:000000000000:function:rotator-local"
STEPS = (Step.CREATE, Step.SET, Step.TEST, Step.FINISH)


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "rotate",
        parents=parents,
        help="run the four rotation steps in this process (--local)",
        description=(
            "Run createSecret, setSecret, testSecret and finishSecret in this process, with one token, "
            "exactly as Secrets Manager would invoke the function. Against an emulator the rotation is "
            "started here; against AWS, --token resumes a rotation Secrets Manager started."
        ),
    )
    parser.add_argument("secret", metavar="SECRET", help="secret name or ARN")
    parser.add_argument("--local", action="store_true", required=True, help="run the steps here (required)")
    parser.add_argument(
        "--token",
        metavar="VERSION_ID",
        help="resume the rotation whose AWSPENDING version is VERSION_ID instead of starting one",
    )
    parser.add_argument(
        "--emulator",
        action="store_true",
        help="the endpoint is a Secrets Manager emulator even though it is not on this machine",
    )
    parser.set_defaults(command=run)


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    emulator = args.emulator or ctx.endpoint_is_local
    if args.emulator and ctx.endpoint_url.endswith(".amazonaws.com"):
        raise UsageError("--emulator needs the emulator's --endpoint-url")
    if not args.token and not emulator:
        raise UsageError(
            "on AWS only RotateSecret can start a rotation, and it invokes the deployed function: "
            "use 'aws secretsmanager rotate-secret' for that, or resume a started rotation here with "
            "--token VERSION_ID (see 'rotator status'). Starting here needs an emulator (--endpoint-url)."
        )
    details = ctx.store.describe(args.secret)
    arn = details.arn
    pending = details.version_with(PENDING)
    current = details.version_with(CURRENT)
    if args.token:
        if pending != args.token or args.token == current:
            raise UsageError(
                f"{details.name}: version {args.token} is not the pending version "
                f"(AWSPENDING is on {pending or 'no version'})"
            )
        token = args.token
        ctx.out.progress(f"{details.name}: resuming the rotation of version {token}")
    else:
        if pending is not None and pending != current:
            raise UsageError(
                f"{details.name}: a rotation is already in progress (AWSPENDING on {pending}): "
                f"resume it with --token {pending}, or clear it with 'rotator fix'"
            )
        if pending is not None and pending == current:
            # A finished rotation's label. AWS drops it by itself; moto keeps it and
            # would refuse the next RotateSecret as "still in progress".
            ctx.operator.remove_label(arn, PENDING, pending)
        token = _stage(ctx, arn, details.function_arn, details.rotation_enabled)
        ctx.out.progress(f"{details.name}: staged AWSPENDING version {token} (emulator)")

    with _step_logs(ctx.options.debug):
        return _run_steps(ctx, ctx.rotation, details.name, arn, token)


def _run_steps(ctx: Context, rotation: Rotation, name: str, arn: str, token: str) -> ExitCode:
    steps: list[dict[str, Any]] = []
    for index, step in enumerate(STEPS, 1):
        started = time.perf_counter()
        try:
            result = rotation.run(RotationRequest(arn, token, step))
        except RotatorError as exc:
            elapsed = time.perf_counter() - started
            steps.append({"step": step.value, "ok": False, "error": exc.problem, "seconds": round(elapsed, 3)})
            ctx.out.progress(f"[{index}/4] {step.value}: FAILED after {elapsed:.2f}s: {exc.problem}")
            return _finish(ctx, name, arn, token, steps, failed=exc)
        elapsed = time.perf_counter() - started
        steps.append({"step": step.value, "ok": True, "outcome": result.outcome, "seconds": round(elapsed, 3)})
        ctx.out.progress(f"[{index}/4] {step.value}: {result.outcome} ({elapsed:.2f}s)")
    return _finish(ctx, name, arn, token, steps, failed=None)


@contextmanager
def _step_logs(debug: bool) -> Iterator[None]:
    """The steps log JSON for CloudWatch; here they go to stderr with --debug, else nowhere,
    so that stdout holds only the command's own output. Every core module's logger is a
    Powertools child logger under one parent (``<service>.rotator``): that parent is
    intercepted."""
    parent = logging.getLogger(rotation_module.logger.name.rpartition(".")[0])
    handler: logging.Handler = logging.StreamHandler(sys.stderr) if debug else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    propagate = parent.propagate
    parent.propagate = False
    parent.addHandler(handler)
    try:
        yield
    finally:
        parent.removeHandler(handler)
        parent.propagate = propagate


def _stage(ctx: Context, arn: str, function_arn: str | None, enabled: bool) -> str:
    """Stage an empty AWSPENDING version, as RotateSecret does, on an emulator."""
    token = ctx.operator.stage_rotation(arn, function_arn or PLACEHOLDER_FUNCTION, enable=not enabled)
    staged = ctx.store.describe(arn).versions.get(token, [])
    if PENDING not in staged:
        raise SecretStoreError(arn, f"RotateSecret did not stage version {token} as AWSPENDING (labels: {staged})")
    return token


def _finish(
    ctx: Context, name: str, arn: str, token: str, steps: list[dict[str, Any]], *, failed: RotatorError | None
) -> ExitCode:
    document: dict[str, Any] = {"command": "rotate", "secret": arn, "token": token, "steps": steps}
    if failed is None:
        value = DatabaseSecret.parse(arn, ctx.store.get_version(arn, token, CURRENT))
        document.update(ok=True, username=value.username)
        message = f"{name}: rotated; AWSCURRENT is version {token} (user '{value.username}')"
        code = ExitCode.OK
    else:
        code = problem_code(failed)
        document.update(ok=False, error=describe_error(failed))
        message = (
            f"{name}: rotation failed: {failed.problem}. AWSPENDING stays on {token}; AWSCURRENT is unchanged. "
            f"Fix the cause and resume with: rotator rotate {name} --local --token {token} "
            f"(or clear it with: rotator fix {name})"
        )
    if ctx.out.json_mode:
        ctx.out.document(document)
    else:
        ctx.out.line(message)
    return code
