"""Powertools idempotency for rotation steps, configured once per container.

The key is ``[SecretId, ClientRequestToken, Step]``: one record per step of one
rotation. ``RotationToken`` is left out on purpose. AWS documents it as "a unique
identifier that indicates the source of the request", needed by ``PutSecretValue``
for cross-account or assumed-role rotation, and sensitive (CloudTrail omits it);
AWS does not say whether it stays the same across a step's deliveries. If it
differs, keying on it would let a duplicate through; if it does not, it adds
nothing; and hashed into the key it would be stored. It travels to the step in
memory only.

What the table holds (docs/observability.md has the full story): the hashed key,
``status``, ``expiration`` (the TTL attribute), ``in_progress_expiration`` and,
once the step succeeded, ``data`` = the step's
:class:`~rotator.rotation.StepResult` (step, secret ARN, outcome), which holds
no credential.

Behaviour the handler relies on:

- a step that raises leaves no record, so Secrets Manager's retry runs it again;
- a duplicate of a step that succeeded returns the stored result without running;
- a concurrent duplicate raises ``IdempotencyAlreadyInProgressError``, which
  Secrets Manager treats as a failure and retries later;
- DynamoDB unreachable: ``IdempotencyPersistenceLayerError`` *before* the step
  runs (fail closed), within seconds thanks to :data:`DYNAMODB_CONFIG`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from rotator.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from mypy_boto3_dynamodb import DynamoDBClient

logger = Logger(child=True)

KEY_EXPRESSION = "[SecretId, ClientRequestToken, Step]"

# DynamoDB sits in front of every step. When it cannot be reached (no gateway
# endpoint, a policy denies it) the step must fail in seconds with a clear error,
# not spend the function's whole timeout in connect retries.
DYNAMODB_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@dataclass(frozen=True)
class StepRun:
    """A step's result, and whether it came from the idempotency table (a replay)."""

    result: dict[str, str]
    replayed: bool = False


StepFunction = Callable[..., dict[str, str]]  # called as step(event=...)
Runner = Callable[[dict[str, Any], LambdaContext], StepRun]

# Set by the response hook when Powertools answers from a stored record; read by
# the runner in the same invocation (a ContextVar keeps concurrent threads apart).
_replayed: ContextVar[bool] = ContextVar("rotator_idempotent_replay", default=False)


def dynamodb_client(settings: Settings, session: boto3.session.Session | None = None) -> DynamoDBClient:
    """The persistence layer's client. ``AWS_ENDPOINT_URL_DYNAMODB`` (read by botocore)
    points it at a local DynamoDB or a moto server in development."""
    session = session or boto3.session.Session()
    if settings.region:
        return session.client("dynamodb", region_name=settings.region, config=DYNAMODB_CONFIG)
    return session.client("dynamodb", config=DYNAMODB_CONFIG)


def make_idempotent(step: StepFunction, settings: Settings, client: DynamoDBClient | None = None) -> Runner:
    """Wrap ``step`` (called as ``step(event=...)``) so each ``[SecretId, ClientRequestToken, Step]``
    runs at most once at a time and, after success, is answered from the table until it expires."""
    if not settings.idempotency_table:
        raise ValueError("make_idempotent needs IDEMPOTENCY_TABLE")
    # Imported when the layer is built (the first invocation), not with the handler:
    # a container with idempotency off never loads the package (src/precompile.py
    # still ships its .pyc).
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(
        table_name=settings.idempotency_table,
        boto3_client=client or dynamodb_client(settings),
    )
    config = IdempotencyConfig(
        event_key_jmespath=KEY_EXPRESSION,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_expiry_seconds,
        hash_function="sha256",
        response_hook=_mark_replay,
    )
    idempotent_step = idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)(
        step
    )

    expiry_ms = settings.idempotency_expiry_seconds * 1000

    def runner(event: dict[str, Any], context: LambdaContext) -> StepRun:
        # The in-progress record then expires when this invocation's time is up,
        # so a crashed or timed-out invocation blocks a retry only until then.
        config.register_lambda_context(context)
        if context.get_remaining_time_in_millis() > expiry_ms:
            # The record's own expiry would end first: a duplicate arriving after it
            # could run concurrently with this invocation.
            logger.warning(
                "IDEMPOTENCY_EXPIRY_SECONDS is shorter than the function timeout: "
                "a late duplicate could run while this step still runs",
                extra={"expiry_seconds": settings.idempotency_expiry_seconds},
            )
        marker = _replayed.set(False)
        try:
            result: dict[str, str] = idempotent_step(event=event)
            return StepRun(result, replayed=_replayed.get())
        finally:
            _replayed.reset(marker)

    return runner


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    _replayed.set(True)
    return response
