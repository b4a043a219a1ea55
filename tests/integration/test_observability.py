"""Idempotency, metrics and tracing of whole rotations against the real servers (all but the
trace case, which names MySQL's adapter, on PostgreSQL too), and
the proof that no credential reaches a log line, a metric, a trace segment or an
idempotency record."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from rotator import handler as handler_module
from rotator.errors import DatabaseAuthError
from tests.support.aws import STEPS, begin_rotation, event, idempotency_items, stages
from tests.support.families import set_password
from tests.support.observe import Emitted, RunSpy, SegmentCapture, leaked, secret_strings
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = pytest.mark.integration

WRONG_ADMIN_PASSWORD = "pw-admin-changed-behind-the-secret-4Qx9"  # set on the server to break a rotation


def database_stats() -> Counter[str]:
    return Counter(handler_module._container().database.stats)


def read(capsys: pytest.CaptureFixture[str]) -> Emitted:
    captured = capsys.readouterr()
    return Emitted.parse(captured.out + captured.err)


def rotation_token() -> str:
    return f"rt-{uuid.uuid4()}"  # shaped like the API's RotationTokenType


def break_admin(db: DatabaseServer, world: World) -> None:
    """Change the admin's password on the server only: the admin secret no longer logs in."""
    set_password(db, world.admin_user, WRONG_ADMIN_PASSWORD)


def repair_admin(db: DatabaseServer, world: World) -> None:
    set_password(db, world.admin_user, world.admin_secret()["password"])


@pytest.mark.every_engine
def test_duplicate_delivery_of_each_step_does_not_touch_the_database(
    idempotency_table: str, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each step delivered twice in a row: the duplicate opens no database connection and changes
    nothing; setSecret's is answered from the idempotency table, the others from the secret's own state."""
    token = begin_rotation(world.client, world.app_arn)
    duplicates = []
    for step in STEPS:
        first = world.invoke(event(world.app_arn, token, step))
        before = database_stats()
        labels = stages(world.client, world.app_arn)

        duplicate = world.invoke(event(world.app_arn, token, step))

        duplicates.append(duplicate["outcome"])
        assert duplicate["outcome"] == first["outcome"] or step != "setSecret"
        assert database_stats() == before, f"the duplicate {step} touched the database"
        assert stages(world.client, world.app_arn) == labels

    assert duplicates == ["pending-exists", "twin-synced", "already-tested", "already-current"]
    assert database_stats()["connections_ok"] > 0  # the first deliveries did connect
    assert world.app_secret()["username"] == "app_clone"
    emitted = read(capsys)
    assert emitted.metric("StepReplayed", Step="setSecret") == [1.0]
    for step in STEPS:
        assert emitted.metric("StepSucceeded", Step=step) == [1.0, 1.0]
    assert emitted.metric("RotationCompleted", SecretName="app-db") == [1.0]


@pytest.mark.every_engine
def test_failed_step_runs_again_when_retried(idempotency_table: str, world: World, db: DatabaseServer) -> None:
    """setSecret that failed leaves no record: the same delivery retried after the cause is fixed really runs."""
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    break_admin(db, world)

    with pytest.raises(DatabaseAuthError):
        world.invoke(event(world.app_arn, token, "setSecret"))
    assert idempotency_items(boto3.client("dynamodb", region_name="us-east-1"), idempotency_table) == []

    repair_admin(db, world)
    before = database_stats()
    assert world.invoke(event(world.app_arn, token, "setSecret"))["outcome"] == "twin-synced"
    assert database_stats()["connections_ok"] > before["connections_ok"]
    assert [world.invoke(event(world.app_arn, token, step))["outcome"] for step in STEPS[2:]] == [
        "twin-verified",
        "promoted",
    ]
    assert world.can_use_grants(world.app_secret())


@pytest.mark.every_engine
def test_concurrent_deliveries_of_a_step_run_it_once(idempotency_table: str, world: World, runs: RunSpy) -> None:
    """Two setSecret deliveries at once: one runs against the database, the other is refused having touched nothing."""
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    release = runs.hold_next()

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(world.invoke, event(world.app_arn, token, "setSecret"))
        assert runs.entered.wait(10), "the first delivery never reached the step"
        before = database_stats()
        with pytest.raises(IdempotencyAlreadyInProgressError):
            world.invoke(event(world.app_arn, token, "setSecret"))
        assert database_stats() == before
        release.set()
        assert first.result(timeout=60)["outcome"] == "twin-synced"

    assert runs.calls == ["createSecret", "setSecret"]
    assert world.invoke(event(world.app_arn, token, "testSecret"))["outcome"] == "twin-verified"


def rotate_then_fail(world: World, db: DatabaseServer) -> tuple[dict[str, str], list[str]]:
    """One full rotation and one that fails in setSecret, every event with a RotationToken.
    Returns the rotation tokens used (labelled) and the text of every error raised."""
    tokens: dict[str, str] = {}
    token = begin_rotation(world.client, world.app_arn)
    for step in STEPS:
        tokens[f"RotationToken of {step} (rotation 1)"] = rt = rotation_token()
        world.invoke(event(world.app_arn, token, step, rt))

    errors: list[str] = []
    token = begin_rotation(world.client, world.app_arn)
    tokens["RotationToken of createSecret (rotation 2)"] = rt = rotation_token()
    world.invoke(event(world.app_arn, token, "createSecret", rt))
    break_admin(db, world)
    tokens["RotationToken of setSecret (rotation 2)"] = rt = rotation_token()
    with pytest.raises(DatabaseAuthError) as raised:
        world.invoke(event(world.app_arn, token, "setSecret", rt))
    errors.append(f"{type(raised.value).__name__}: {raised.value}")
    return tokens, errors


def everything_secret(world: World, tokens: dict[str, str]) -> dict[str, str]:
    secrets = secret_strings(world.client, [world.app_arn, world.admin_arn])
    secrets.update({f"password {n}": p for n, p in enumerate(sorted(world.all_passwords()))})
    secrets["admin password set on the server"] = WRONG_ADMIN_PASSWORD
    secrets.update(tokens)
    return secrets


@pytest.mark.every_engine
def test_no_secret_in_logs_metrics_or_idempotency_records(
    idempotency_table: str,
    world: World,
    db: DatabaseServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Across a full and a failed rotation, no password, secret string or RotationToken is printed, logged,
    counted or stored, and stdout carries the expected EMF metrics."""
    tokens, errors = rotate_then_fail(world, db)

    emitted = read(capsys)
    records = json.dumps(idempotency_items(boto3.client("dynamodb", region_name="us-east-1"), idempotency_table))
    secrets = everything_secret(world, tokens)
    assert len(secrets) >= 12
    assert leaked(secrets, emitted.text, caplog.text, records, *errors) == []

    for step in STEPS:
        assert emitted.metric("StepSucceeded", Step=step) == [1.0] * (2 if step == "createSecret" else 1)
        assert len(emitted.metric("StepDuration", Step=step)) == (2 if step in ("createSecret", "setSecret") else 1)
    assert emitted.metric("StepFailed", Step="setSecret") == [1.0]
    assert emitted.metric("RotationCompleted", Step="finishSecret") == [1.0]
    assert emitted.metric("RotationCompleted", SecretName="app-db") == [1.0]
    [failure] = emitted.messages("ERROR")
    assert (failure["error"], failure["step"]) == ("DatabaseAuthError", "setSecret")
    assert "refused" in failure["reason"]


def test_traces_show_the_ports_but_no_secret(
    idempotency_table: str, world: World, db: DatabaseServer, xray: SegmentCapture
) -> None:
    """With tracing on, the handler, both ports and the AWS calls are subsegments, none holding a credential."""
    tokens, errors = rotate_then_fail(world, db)
    xray.close()

    names = xray.names()
    assert {
        "## lambda_handler",
        "## rotator.secret_store.SecretsManagerStore.describe",
        "## rotator.secret_store.SecretsManagerStore.get_version",
        "## rotator.secret_store.SecretsManagerStore.random_password",
        "## rotator.secret_store.SecretsManagerStore.put_pending",
        "## rotator.secret_store.SecretsManagerStore.move_label",
        "## rotator.backends.mysql.base.MySQLDatabase.check_login",
        "## rotator.backends.mysql.base.MySQLDatabase.admin",
        "## rotator.backends.mysql.base.MySQLAdminSession.sync_twin",
        "## rotator.backends.mysql.base.MySQLAdminSession.account_definition",
        "secretsmanager",
        "dynamodb",
    } <= names
    handlers = [e for e in xray.entities() if e["name"] == "## lambda_handler"]
    assert [h["annotations"]["step"] for h in handlers] == [*STEPS, "createSecret", "setSecret"]
    assert {h["annotations"]["secret"] for h in handlers} == {"app-db"}
    failed = [e for e in xray.entities() if isinstance(e.get("cause"), dict) and e["cause"].get("exceptions")]
    recorded = {(x["type"], x.get("message", "")) for e in failed for x in e["cause"]["exceptions"]}
    # The failure, with its message (built from identifiers), and the pending-version
    # lookups that are expected to find nothing.
    assert {t for t, _ in recorded} == {"DatabaseAuthError", "ResourceNotFoundException"}
    assert all("was refused by" in m for t, m in recorded if t == "DatabaseAuthError")
    documents: list[Any] = xray.documents
    assert leaked(everything_secret(world, tokens), *documents, *errors) == []
    assert not any("metadata" in e and "response" in json.dumps(e["metadata"]) for e in xray.entities())
