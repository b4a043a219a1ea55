"""Powertools idempotency around the steps, against moto's DynamoDB (no database)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyPersistenceLayerError,
)

from rotator.errors import RotationStateError
from rotator.idempotency import IDEMPOTENT_STEPS, KEY_EXPRESSION
from rotator.settings import SettingsError
from tests.support.aws import idempotency_items
from tests.support.mariadb import free_port
from tests.support.observe import RunSpy
from tests.unit.conftest import Lambda, Rotating


def test_key_is_secret_id_token_and_step() -> None:
    """The idempotency key is exactly the three event fields that name one step of one rotation."""
    assert KEY_EXPRESSION == "[SecretId, ClientRequestToken, Step]"


def test_only_set_secret_writes_to_the_table(
    idempotency_table: str, rotating: Rotating, handler: Lambda, dynamodb: Any
) -> None:
    """createSecret and finishSecret are idempotent through Secrets Manager: no DynamoDB record, no replay."""
    assert handler(rotating.event("createSecret"))["outcome"] == "created"
    assert handler(rotating.event("createSecret"))["outcome"] == "pending-exists"
    with pytest.raises(RotationStateError, match="has not passed testSecret"):
        handler(rotating.event("finishSecret"))
    assert idempotency_items(dynamodb, idempotency_table) == []
    assert "StepReplayed" not in handler.output().metric_names()
    assert {"setSecret"} == IDEMPOTENT_STEPS


@pytest.mark.parametrize("failure", ["unreachable", "missing table"])
def test_idempotency_store_failure_fails_closed(
    failure: str,
    idempotency_table: str,
    rotating: Rotating,
    handler: Lambda,
    runs: RunSpy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When DynamoDB cannot be used the step does not run, fails within seconds, and says why in log and metrics."""
    if failure == "unreachable":
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")
        cause = "EndpointConnectionError"
    else:
        monkeypatch.setenv("IDEMPOTENCY_TABLE", "no-such-table")
        cause = "ResourceNotFoundException"
    started = time.monotonic()

    handler(rotating.event("createSecret"))
    handler.output()
    with pytest.raises(IdempotencyPersistenceLayerError):
        handler(rotating.event("setSecret"))

    assert time.monotonic() - started < 15
    assert runs.calls == ["createSecret"]  # setSecret never ran: no login to the database was tried
    emitted = handler.output()
    assert emitted.metric("IdempotencyStoreError", Step="setSecret") == [1.0]
    assert emitted.metric("StepFailed", Step="setSecret") == [1.0]
    [error] = emitted.messages("ERROR")
    assert error["message"] == "step failed"
    assert error["error"] == "IdempotencyPersistenceLayerError"
    assert error["reason"].startswith("idempotency table unavailable: Failed to save in progress record")
    assert error["reason"].endswith(f"({cause})")


def test_without_a_table_the_function_refuses_to_run(rotating: Rotating, handler: Lambda, runs: RunSpy) -> None:
    """Idempotency fails closed on configuration too: no IDEMPOTENCY_TABLE and no explicit opt-out is an error."""
    with pytest.raises(SettingsError, match="IDEMPOTENCY_TABLE is not set"):
        handler(rotating.event("createSecret"))
    assert runs.calls == []
    [error] = handler.output().messages("ERROR")
    assert error["error"] == "SettingsError"


def test_opt_out_by_environment_runs_every_delivery(
    idempotency_off: None, rotating: Rotating, handler: Lambda, runs: RunSpy
) -> None:
    """POWERTOOLS_IDEMPOTENCY_DISABLED=true needs no table and runs every duplicate (state checks keep it safe)."""
    assert handler(rotating.event("createSecret"))["outcome"] == "created"
    assert handler(rotating.event("createSecret"))["outcome"] == "pending-exists"
    assert runs.calls == ["createSecret", "createSecret"]
    warnings = handler.output().messages("WARNING")
    assert [log["message"] for log in warnings] == [
        "idempotency is disabled: duplicate deliveries rely on the step state checks alone"
    ]
