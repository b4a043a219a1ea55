"""Powertools idempotency around setSecret, against moto's DynamoDB and the real database:
what a record holds, how a duplicate is answered, and the expiry check."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest

from rotator import handler as handler_module
from tests.support.aws import begin_rotation, event, idempotency_items
from tests.support.lambda_context import FakeLambdaContext
from tests.support.observe import Emitted, RunSpy, leaked
from tests.support.world import World

pytestmark = [pytest.mark.integration, pytest.mark.every_engine]


def read(capsys: pytest.CaptureFixture[str]) -> Emitted:
    captured = capsys.readouterr()
    return Emitted.parse(captured.out + captured.err)


def records(table: str) -> list[dict[str, Any]]:
    return idempotency_items(boto3.client("dynamodb", region_name="us-east-1"), table)


def test_duplicate_set_secret_is_answered_from_the_table(
    idempotency_table: str, world: World, runs: RunSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second setSecret delivery returns the stored result without running the step, timed or counted as work."""
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    first = world.invoke(event(world.app_arn, token, "setSecret"))
    read(capsys)

    second = world.invoke(event(world.app_arn, token, "setSecret"))

    assert second == first
    assert runs.calls == ["createSecret", "setSecret"]
    emitted = read(capsys)
    assert emitted.metric("StepReplayed", Step="setSecret") == [1.0]
    assert emitted.metric("StepSucceeded", Step="setSecret") == [1.0]
    assert "StepDuration" not in emitted.metric_names()  # nothing ran, nothing timed
    assert [log["message"] for log in emitted.messages("INFO")] == [
        "duplicate delivery: answered from the idempotency table"
    ]


def test_record_holds_the_result_and_expires_after_the_configured_time(
    idempotency_table: str, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The record holds a hashed key, status, expiry IDEMPOTENCY_EXPIRY_SECONDS ahead and the credential-free result."""
    monkeypatch.setenv("IDEMPOTENCY_EXPIRY_SECONDS", "120")
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    before = int(time.time())
    result = world.invoke(event(world.app_arn, token, "setSecret"))

    [record] = records(idempotency_table)
    assert set(record) == {"id", "status", "expiration", "in_progress_expiration", "data"}
    assert record["status"]["S"] == "COMPLETED"
    assert result == {"step": "setSecret", "secret": world.app_arn, "outcome": "twin-synced"}
    assert json.loads(record["data"]["S"]) == result
    assert before + 120 <= int(record["expiration"]["N"]) <= int(time.time()) + 120
    prefix, digest = record["id"]["S"].rsplit("#", 1)
    assert prefix == "rotator.step"  # fixed, whatever the code layout
    assert len(digest) == 64  # sha256 of the key fields, nothing readable
    secrets = {"pending password": world.app_secret("AWSPENDING")["password"]}
    secrets["current password"] = world.app_secret()["password"]
    assert leaked(secrets, json.dumps(record)) == []


def test_rotation_token_is_not_part_of_the_key_nor_stored(
    idempotency_table: str, world: World, runs: RunSpy, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deliveries differing only in RotationToken are duplicates, and no RotationToken reaches the table or output."""
    # Shaped like the API's RotationTokenType: 36-256 characters of [a-zA-Z0-9-].
    tokens = {"rotation token 1": f"rt-{uuid.uuid4()}", "rotation token 2": f"rt-{uuid.uuid4()}"}
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret", tokens["rotation token 1"]))
    first = world.invoke(event(world.app_arn, token, "setSecret", tokens["rotation token 1"]))
    second = world.invoke(event(world.app_arn, token, "setSecret", tokens["rotation token 2"]))

    assert second == first
    assert runs.calls == ["createSecret", "setSecret"]
    assert leaked(tokens, json.dumps(records(idempotency_table)), read(capsys).text) == []


def test_expiry_shorter_than_the_function_timeout_is_flagged(
    idempotency_table: str, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A setSecret record that would expire before the invocation's time is up is logged as a warning."""
    monkeypatch.setenv("IDEMPOTENCY_EXPIRY_SECONDS", "60")
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    read(capsys)

    handler_module.lambda_handler(event(world.app_arn, token, "setSecret"), FakeLambdaContext(timeout_ms=120_000))
    handler_module.lambda_handler(event(world.app_arn, token, "setSecret"), FakeLambdaContext(timeout_ms=50_000))
    warnings = read(capsys).messages("WARNING")
    assert [(w["step"], w["expiry_seconds"]) for w in warnings] == [("setSecret", 60)]
    assert warnings[0]["message"].startswith("IDEMPOTENCY_EXPIRY_SECONDS is shorter than the function timeout")
