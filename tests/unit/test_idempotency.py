"""Powertools idempotency around the steps, against moto's DynamoDB (no database)."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from rotator.errors import SecretStoreError
from rotator.idempotency import KEY_EXPRESSION
from rotator.settings import SettingsError
from tests.support.aws import idempotency_items, stages
from tests.support.lambda_context import FakeLambdaContext
from tests.support.mariadb import free_port
from tests.support.observe import RunSpy, leaked
from tests.unit.conftest import APP_PASSWORD, Lambda, Rotating


def test_key_is_secret_id_token_and_step() -> None:
    """The idempotency key is exactly the three event fields that name one step of one rotation."""
    assert KEY_EXPRESSION == "[SecretId, ClientRequestToken, Step]"


@pytest.mark.parametrize("step", ["createSecret", "finishSecret"])
def test_duplicate_after_success_is_answered_from_the_table(
    idempotency_table: str, rotating: Rotating, handler: Lambda, runs: RunSpy, step: str
) -> None:
    """A second delivery of a step that succeeded returns the stored result without running the step."""
    if step == "finishSecret":
        handler(rotating.event("createSecret"))
    first = handler(rotating.event(step))
    labels = stages(rotating.client, rotating.arn)
    handler.output()

    second = handler(rotating.event(step))

    assert second == first
    assert runs.calls.count(step) == 1
    assert stages(rotating.client, rotating.arn) == labels
    emitted = handler.output()
    assert emitted.metric("StepReplayed", Step=step) == [1.0]
    assert emitted.metric("StepSucceeded", Step=step) == [1.0]
    assert "StepDuration" not in emitted.metric_names()  # nothing ran, nothing timed
    assert "RotationCompleted" not in emitted.metric_names()  # a replayed finishSecret completes nothing
    assert [log["message"] for log in emitted.messages("INFO")] == [
        "duplicate delivery: answered from the idempotency table"
    ]


def test_failed_step_leaves_no_record_and_its_retry_runs(
    idempotency_table: str,
    rotating: Rotating,
    handler: Lambda,
    runs: RunSpy,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb: Any,
) -> None:
    """A step that raised is not remembered: the retry of the same delivery runs it again and succeeds."""
    store = handler.container.store
    real = store.random_password
    failures = iter([SecretStoreError(rotating.arn, "GetRandomPassword failed: ThrottlingException")])

    def flaky(secret_id: str, policy: Any) -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return real(secret_id, policy)

    monkeypatch.setattr(store, "random_password", flaky)

    with pytest.raises(SecretStoreError):
        handler(rotating.event("createSecret"))
    assert idempotency_items(dynamodb, idempotency_table) == []

    assert handler(rotating.event("createSecret"))["outcome"] == "created"
    assert runs.calls == ["createSecret", "createSecret"]
    [record] = idempotency_items(dynamodb, idempotency_table)
    assert record["status"]["S"] == "COMPLETED"


def test_concurrent_duplicate_is_refused_while_the_first_runs(
    idempotency_table: str, rotating: Rotating, handler: Lambda, runs: RunSpy
) -> None:
    """Two concurrent deliveries of one step: exactly one runs, the other gets IdempotencyAlreadyInProgressError."""
    release = runs.hold_next()
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(handler, rotating.event("createSecret"))
        assert runs.entered.wait(10), "the first delivery never reached the step"
        with pytest.raises(IdempotencyAlreadyInProgressError):
            handler(rotating.event("createSecret"))
        release.set()
        assert first.result(timeout=30)["outcome"] == "created"

    assert runs.calls == ["createSecret"]
    # The refused delivery's record. (Two invocations at once in one process share
    # Powertools' metric set, so the first one's record is not checked: Lambda never
    # runs two invocations in one process.)
    emitted = handler.output()
    assert emitted.metric("StepRejectedInProgress", Step="createSecret") == [1.0]
    assert emitted.metric("StepFailed", Step="createSecret") == [1.0]


def test_rotation_token_is_not_part_of_the_key_nor_stored(
    idempotency_table: str, rotating: Rotating, handler: Lambda, runs: RunSpy, dynamodb: Any
) -> None:
    """Deliveries differing only in RotationToken are duplicates, and no RotationToken reaches the table or output."""
    # Shaped like the API's RotationTokenType: 36-256 characters of [a-zA-Z0-9-].
    tokens = {"rotation token 1": f"rt-{uuid.uuid4()}", "rotation token 2": f"rt-{uuid.uuid4()}"}
    first = handler(rotating.event("createSecret", rotation_token=tokens["rotation token 1"]))
    second = handler(rotating.event("createSecret", rotation_token=tokens["rotation token 2"]))

    assert second == first
    assert runs.calls == ["createSecret"]
    items = json.dumps(idempotency_items(dynamodb, idempotency_table))
    assert leaked(tokens, items, handler.output().text) == []


def test_record_holds_the_result_and_expires_after_the_configured_time(
    idempotency_table: str, rotating: Rotating, handler: Lambda, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record holds a hashed key, status, expiry IDEMPOTENCY_EXPIRY_SECONDS ahead and the credential-free result."""
    monkeypatch.setenv("IDEMPOTENCY_EXPIRY_SECONDS", "120")
    before = int(time.time())
    result = handler(rotating.event("createSecret"))

    [record] = idempotency_items(dynamodb, idempotency_table)
    assert set(record) == {"id", "status", "expiration", "in_progress_expiration", "data"}
    assert record["status"]["S"] == "COMPLETED"
    assert result == {"step": "createSecret", "secret": rotating.arn, "outcome": "created"}
    assert json.loads(record["data"]["S"]) == result
    assert before + 120 <= int(record["expiration"]["N"]) <= int(time.time()) + 120
    key = record["id"]["S"]
    assert key.endswith("rotator.handler._run_step#" + key.rsplit("#", 1)[1])
    assert len(key.rsplit("#", 1)[1]) == 64  # sha256 of the key fields, nothing readable
    assert rotating.token not in key and rotating.arn not in key
    secrets = {"pending password": rotating.pending_password(), "current password": APP_PASSWORD}
    assert leaked(secrets, json.dumps(record)) == []


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

    with pytest.raises(IdempotencyPersistenceLayerError):
        handler(rotating.event("createSecret"))

    assert time.monotonic() - started < 15
    assert runs.calls == []
    assert stages(rotating.client, rotating.arn)[rotating.token] == ["AWSPENDING"]
    with pytest.raises(rotating.client.exceptions.ResourceNotFoundException):
        rotating.pending_password()  # createSecret wrote nothing
    emitted = handler.output()
    assert emitted.metric("IdempotencyStoreError", Step="createSecret") == [1.0]
    assert emitted.metric("StepFailed", Step="createSecret") == [1.0]
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


def test_expiry_shorter_than_the_function_timeout_is_flagged(
    idempotency_table: str, rotating: Rotating, handler: Lambda, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that would expire before the invocation's time is up is logged as a warning on every step."""
    monkeypatch.setenv("IDEMPOTENCY_EXPIRY_SECONDS", "60")

    handler(rotating.event("createSecret"), FakeLambdaContext(timeout_ms=120_000))
    handler(rotating.event("finishSecret"), FakeLambdaContext(timeout_ms=50_000))

    warnings = handler.output().messages("WARNING")
    assert [(w["step"], w["expiry_seconds"]) for w in warnings] == [("createSecret", 60)]
    assert warnings[0]["message"].startswith("IDEMPOTENCY_EXPIRY_SECONDS is shorter than the function timeout")
