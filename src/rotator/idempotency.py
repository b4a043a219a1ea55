"""Powertools idempotency for rotation steps, configured once per container.

The key is ``[SecretId, ClientRequestToken, Step]``: one record per step of one
rotation. ``RotationToken`` is left out on purpose: it identifies a delivery, not
the work, and is sensitive, so it should not decide (or be hashed into) the key.
The stored response is the step's :class:`~rotator.rotation.StepResult`, which
holds no credentials. A step that raises leaves no record, so Secrets Manager's
retry runs it again; a concurrent duplicate raises
``IdempotencyAlreadyInProgressError``, which Secrets Manager treats as a failure
and retries later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from rotator.bootstrap import BOTO_CONFIG
from rotator.settings import Settings

KEY_EXPRESSION = "[SecretId, ClientRequestToken, Step]"

Runner = Callable[[dict[str, Any], LambdaContext], dict[str, str]]


def make_idempotent(run: Callable[[dict[str, Any]], dict[str, str]], settings: Settings) -> Runner:
    assert settings.idempotency_table, "make_idempotent needs IDEMPOTENCY_TABLE"
    persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table, boto_config=BOTO_CONFIG)
    config = IdempotencyConfig(
        event_key_jmespath=KEY_EXPRESSION,
        raise_on_no_idempotency_key=True,
        expires_after_seconds=settings.idempotency_expiry_seconds,
    )

    @idempotent_function(data_keyword_argument="event", persistence_store=persistence, config=config)  # type: ignore[untyped-decorator]
    def idempotent_step(event: dict[str, Any]) -> dict[str, str]:
        return run(event)

    def runner(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
        # Lets an in-progress record expire when this invocation's time is up,
        # so a crashed invocation does not block the retry for the full expiry.
        config.register_lambda_context(context)
        result: dict[str, str] = idempotent_step(event=event)
        return result

    return runner
