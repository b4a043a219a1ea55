"""Lambda entry point: parse the event, wire once, run one step.

Observability follows Powertools' own examples: module-level Logger, Tracer and
Metrics, decorators on the handler. Idempotency is configured once, on the first
invocation (not at import), because its DynamoDB client needs the environment.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SecretsManagerEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from rotator import bootstrap
from rotator.errors import InvalidEventError, RotatorError
from rotator.rotation import RotationRequest, Step, StepResult

logger = Logger()
tracer = Tracer()
metrics = Metrics()

StepRunner = Callable[[dict[str, Any], LambdaContext], dict[str, str]]


@cache
def _container() -> bootstrap.Container:
    return bootstrap.build()


@cache
def _runner() -> StepRunner:
    """The step runner, wrapped by Powertools idempotency unless it is disabled."""
    container = _container()
    settings = container.settings
    if settings.idempotency_disabled or not settings.idempotency_table:
        if not settings.idempotency_disabled:
            logger.warning("IDEMPOTENCY_TABLE is not set: duplicate deliveries rely on the step state checks alone")
        return lambda event, _context: _run_step(event)
    from rotator.idempotency import make_idempotent  # noqa: PLC0415 - DynamoDB code only when used

    return make_idempotent(_run_step, settings)


def parse_event(event: dict[str, Any]) -> RotationRequest:
    parsed = SecretsManagerEvent(event)
    try:
        secret_id, token, step = parsed.secret_id, parsed.client_request_token, parsed.step
    except KeyError as exc:
        raise InvalidEventError(str(event.get("SecretId", "<no SecretId>")), f"event lacks {exc.args[0]}") from None
    if not secret_id or not token:
        raise InvalidEventError(str(secret_id or "<no SecretId>"), "event lacks SecretId or ClientRequestToken")
    try:
        parsed_step = Step(step)
    except ValueError:
        raise InvalidEventError(secret_id, f"unknown step {step!r}") from None
    rotation_token = event.get("RotationToken")
    return RotationRequest(secret_id, token, parsed_step, rotation_token if isinstance(rotation_token, str) else None)


def _run_step(event: dict[str, Any]) -> dict[str, str]:
    request = parse_event(event)
    result: StepResult = _container().rotation.run(request)
    return result.as_dict()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    request = parse_event(event)  # fail fast on a malformed event, before any AWS call
    logger.append_keys(step=request.step.value, secret_id=request.secret_id, token=request.token)
    tracer.put_annotation("step", request.step.value)
    metrics.add_dimension("Step", request.step.value)
    started = time.perf_counter()
    try:
        result = _runner()(_step_fields(event), context)
    except RotatorError as exc:
        _failed(exc, reason=exc.problem)
        raise
    except Exception as exc:
        # Not ours: its message may quote anything (SQL text, request parameters),
        # so log where it came from, not what it says.
        _failed(exc, reason="unexpected error", where=traceback.format_tb(exc.__traceback__)[-3:])
        raise
    finally:
        metrics.add_metric("StepDuration", MetricUnit.Milliseconds, (time.perf_counter() - started) * 1000)
    metrics.add_metric("StepSucceeded", MetricUnit.Count, 1)
    if request.step is Step.FINISH and result.get("outcome") == "promoted":
        metrics.add_metric("RotationCompleted", MetricUnit.Count, 1)
    logger.info("step done", extra={"outcome": result.get("outcome")})
    return result


def _failed(exc: Exception, **details: object) -> None:
    metrics.add_metric("StepFailed", MetricUnit.Count, 1)
    metrics.add_metadata("error", type(exc).__name__)
    logger.error("step failed", extra={"error": type(exc).__name__, **details})


def _step_fields(event: dict[str, Any]) -> dict[str, Any]:
    # The step needs only these fields; RotationToken is passed through for
    # PutSecretValue but is not part of the idempotency key (see docs/idempotency.md).
    return {key: event[key] for key in ("SecretId", "ClientRequestToken", "Step", "RotationToken") if key in event}
