"""Lambda entry point: parse the event, wire once, run one step.

Observability follows Powertools' own examples: module-level Logger, Tracer and
Metrics, decorators on the handler. Everything else is wired once, on the first
invocation (not at import), by :mod:`rotator.bootstrap`.
docs/observability.md lists every log line, metric and trace this emits, and why
none of them can hold a credential.
"""

from __future__ import annotations

import time
import traceback
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from rotator import bootstrap, telemetry
from rotator.errors import InvalidEventError, RotatorError, UnexpectedError
from rotator.rotation import RotationRequest, Step
from rotator.secret import secret_name
from rotator.settings import SettingsError

telemetry.quiet_sdk_loggers()  # before anything can log: no log level makes botocore print a secret
logger = Logger()
tracer = Tracer(auto_patch=True, patch_modules=telemetry.PATCHED_MODULES)
NAMESPACE = telemetry.NAMESPACE
metrics = Metrics(namespace=NAMESPACE)
# RotationCompleted per secret name goes out as its own EMF record (see _rotation_completed).
per_secret_metrics = EphemeralMetrics(namespace=NAMESPACE)

# What a step noticed (rotator.strategies' notices), counted by name: someone else's
# password found on the account (and replaced), or an abandoned rotation's recovered.
NOTICE_METRICS = {
    "foreign-secondary-password": "ForeignSecondaryPassword",
    "foreign-primary-password": "ForeignPrimaryPassword",
    "abandoned-rotation-password": "AbandonedRotationRecovered",
}


@cache
def _container() -> bootstrap.Container:
    """The execution environment's wiring, built on the first invocation."""
    return bootstrap.build()


@logger.inject_lambda_context(clear_state=True, log_event=False)  # never log the event: it holds the RotationToken
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Powertools clears the metric set only when it prints it: with
    # POWERTOOLS_METRICS_DISABLED set, values would pile up across invocations.
    metrics.clear_metrics()
    try:
        request = RotationRequest.from_event(event)  # fail fast on a malformed event, before any AWS call
    except InvalidEventError as exc:
        metrics.add_dimension("Step", "invalid")
        _failed(exc, exc.problem)
        raise
    name = secret_name(request.secret_id)
    logger.append_keys(step=request.step.value, secret_id=request.secret_id, token=request.token)
    tracer.put_annotation("step", request.step.value)
    tracer.put_annotation("secret", name)
    metrics.add_dimension("Step", request.step.value)
    metrics.add_metadata("secret", request.secret_id)
    metrics.add_metadata("token", request.token)
    started = time.perf_counter()
    try:
        run = _container().runner(request, context)
    except Exception as exc:
        _add_duration(started)
        error = _on_failure(exc, request.secret_id)
        if error is exc:
            raise
        raise error from None
    metrics.add_metric("StepSucceeded", MetricUnit.Count, 1)
    outcome = run.result.get("outcome", "")
    tracer.put_annotation("outcome", outcome)
    if run.replayed:
        # Not timed and not counted as a completed rotation: nothing ran.
        metrics.add_metric("StepReplayed", MetricUnit.Count, 1)
        logger.info("duplicate delivery: answered from the idempotency table", extra={"outcome": outcome})
        return run.result
    _add_duration(started)
    if request.step is Step.FINISH and outcome == "promoted":
        _rotation_completed(name)
    if outcome == "twin-taken-over":
        metrics.add_metric("TwinTakenOver", MetricUnit.Count, 1)
    if outcome.endswith("-without-dual"):
        # The server keeps secondary passwords, but this change could not: a window opened.
        metrics.add_metric("DualPasswordFallback", MetricUnit.Count, 1)
    for notice in run.result.get("notices", ()):
        metrics.add_metric(NOTICE_METRICS.get(notice, "StepNotice"), MetricUnit.Count, 1)
    logger.info("step done", extra={"outcome": outcome})
    return run.result


def _on_failure(exc: Exception, secret_id: str) -> Exception:
    """Log and count a failed step; return the exception to raise.

    Every message that leaves the function is built from identifiers only: ours by
    construction (rotator.errors), Powertools' idempotency errors carry the hashed
    key and botocore's error text, settings errors name an environment variable.
    Anything else is replaced by :class:`UnexpectedError`, because its message may
    quote anything (SQL text, request parameters).
    """
    # Not imported with the handler: importing this module loads the whole idempotency
    # package, which _runner() loads anyway when idempotency is on (src/precompile.py
    # ships its .pyc).
    from aws_lambda_powertools.utilities.idempotency.exceptions import (  # noqa: PLC0415
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
    )

    if isinstance(exc, RotatorError | SettingsError):
        _failed(exc, exc.problem if isinstance(exc, RotatorError) else str(exc))
        return exc
    if isinstance(exc, IdempotencyAlreadyInProgressError):
        metrics.add_metric("StepRejectedInProgress", MetricUnit.Count, 1)
        _failed(exc, "a delivery of this step is already running; Secrets Manager retries later")
        return exc
    if isinstance(exc, IdempotencyPersistenceLayerError):
        metrics.add_metric("IdempotencyStoreError", MetricUnit.Count, 1)
        _failed(exc, f"idempotency table unavailable: {exc.message} ({_cause(exc)})")
        return exc
    # Where it came from, not what it says.
    where = [line.strip().splitlines()[0] for line in traceback.format_tb(exc.__traceback__)[-3:]]
    _failed(exc, "unexpected error", where=where)
    return UnexpectedError(secret_id, f"unexpected {type(exc).__name__} (message withheld; see the function log)")


def _failed(exc: Exception, reason: str, **details: object) -> None:
    metrics.add_metric("StepFailed", MetricUnit.Count, 1)
    metrics.add_metadata("error", type(exc).__name__)
    tracer.put_annotation("error", type(exc).__name__)
    logger.error("step failed", extra={"error": type(exc).__name__, "reason": reason, **details})


def _add_duration(started: float) -> None:
    metrics.add_metric("StepDuration", MetricUnit.Milliseconds, (time.perf_counter() - started) * 1000)


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "ClientError"))
    return type(cause).__name__ if cause is not None else "no cause"


def _rotation_completed(name: str) -> None:
    """RotationCompleted twice: with the step's dimensions (all secrets together) and
    per secret *name*, in its own EMF record, so an alarm can watch one secret."""
    metrics.add_metric("RotationCompleted", MetricUnit.Count, 1)
    per_secret_metrics.clear_metrics()
    per_secret_metrics.add_dimension("SecretName", name)
    per_secret_metrics.add_metric("RotationCompleted", MetricUnit.Count, 1)
    per_secret_metrics.flush_metrics()
