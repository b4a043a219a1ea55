"""Powertools idempotency for rotation steps, configured once per container.

Only setSecret is wrapped: it is the step that changes the database, and the only
one whose duplicate would do work again. The others are idempotent through
Secrets Manager itself, at no extra call: createSecret finds the pending value it
wrote (``PutSecretValue`` with the token), testSecret finds the ROTATOR_TESTED
label it put, finishSecret finds the token already AWSCURRENT. Wrapping them too
cost two DynamoDB writes per step (docs/observability.md).

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
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from rotator.settings import Settings, SettingsError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from mypy_boto3_dynamodb import DynamoDBClient

    from rotator.rotation import RotationRequest, StepResult

logger = Logger(child=True)

KEY_EXPRESSION = "[SecretId, ClientRequestToken, Step]"
KEY_PREFIX = "rotator.step"

# DynamoDB sits in front of every step. When it cannot be reached (no gateway
# endpoint, a policy denies it) the step must fail in seconds with a clear error,
# not spend the function's whole timeout in connect retries.
DYNAMODB_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=2, read_timeout=5)


@dataclass(frozen=True)
class StepRun:
    """A step's result, and whether it came from the idempotency table (a replay)."""

    result: dict[str, Any]
    replayed: bool = False


# The handler parses the event once; the step and the idempotency key both take that request.
StepFunction = Callable[["RotationRequest"], "StepResult"]
Runner = Callable[["RotationRequest", LambdaContext], StepRun]

# The steps whose duplicates Powertools answers from the table (see the module docstring).
IDEMPOTENT_STEPS = frozenset({"setSecret"})

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


def step_runner(step: StepFunction, settings: Settings, dynamodb: Callable[[], DynamoDBClient]) -> Runner:
    """How the handler runs ``step``: through Powertools idempotency for
    :data:`IDEMPOTENT_STEPS`, directly for the others.

    Idempotency fails closed: without a table it is an error unless
    POWERTOOLS_IDEMPOTENCY_DISABLED=true says running without it is intended.
    """
    if settings.idempotency_disabled:
        logger.warning("idempotency is disabled: duplicate deliveries rely on the step state checks alone")
        return _direct(step)
    if not settings.idempotency_table:
        raise SettingsError(
            "IDEMPOTENCY_TABLE is not set (set POWERTOOLS_IDEMPOTENCY_DISABLED=true to run without idempotency)"
        )
    table = settings.idempotency_table
    direct = _direct(step)

    @cache
    def protected() -> Runner:
        # Built on the first setSecret, not with the container: a cold start that
        # begins with createSecret never imports the idempotency package (about 5 ms;
        # src/precompile.py ships its .pyc all the same).
        return _idempotent(step, settings, table, dynamodb())

    def runner(request: RotationRequest, context: LambdaContext) -> StepRun:
        if request.step.value in IDEMPOTENT_STEPS:
            return protected()(request, context)
        return direct(request, context)

    return runner


def _direct(step: StepFunction) -> Runner:
    def runner(request: RotationRequest, _context: LambdaContext) -> StepRun:
        return StepRun(step(request).as_dict())

    return runner


def _idempotent(step: StepFunction, settings: Settings, table: str, client: DynamoDBClient) -> Runner:
    """``step`` wrapped so each ``[SecretId, ClientRequestToken, Step]`` runs at most once
    at a time and, after success, is answered from the table until it expires."""
    from aws_lambda_powertools.utilities.idempotency import (  # noqa: PLC0415 - see step_runner
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    persistence = DynamoDBPersistenceLayer(table_name=table, boto3_client=client)
    config = IdempotencyConfig(
        event_key_jmespath=KEY_EXPRESSION,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_expiry_seconds,
        hash_function="sha256",
        response_hook=_mark_replay,
    )

    # A fixed key prefix: the records do not depend on where ``step`` is defined.
    idempotent_step: Callable[..., dict[str, Any]] = idempotent_function(
        data_keyword_argument="event", persistence_store=persistence, config=config, key_prefix=KEY_PREFIX
    )(_keyword_event(step))

    expiry_ms = settings.idempotency_expiry_seconds * 1000

    def runner(request: RotationRequest, context: LambdaContext) -> StepRun:
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
            result = idempotent_step(event=request.key_fields(), request=request)
            return StepRun(result, replayed=_replayed.get())
        finally:
            _replayed.reset(marker)

    return runner


def _keyword_event(step: StepFunction) -> Callable[..., dict[str, Any]]:
    """Powertools passes the key's fields by keyword (``data_keyword_argument``) and hashes
    them; the step runs on the request they came from."""

    def call(*, event: dict[str, Any], request: RotationRequest) -> dict[str, Any]:
        return step(request).as_dict()

    return call


def _mark_replay(response: Any, idempotent_data: DataRecord) -> Any:
    _replayed.set(True)
    return response
