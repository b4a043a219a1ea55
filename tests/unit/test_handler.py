"""The handler's logs, EMF metrics and errors, against moto (no database)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from rotator import handler as handler_module
from rotator.errors import InvalidEventError, RotationStateError
from rotator.handler import UnexpectedError, secret_name
from tests.support.observe import leaked
from tests.unit.conftest import APP_PASSWORD, Lambda, Rotating

REPO = Path(__file__).resolve().parents[2]


def test_successful_step_emits_step_metrics(idempotency_off: None, rotating: Rotating, handler: Lambda) -> None:
    """A step that ran prints one EMF record: StepSucceeded and StepDuration by Step, the secret only as metadata."""
    handler(rotating.event("createSecret"))

    emitted = handler.output()
    [record] = [r for r in emitted.emf if "StepSucceeded" in r]
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Rotator"
    assert directive["Dimensions"] == [["Step", "service"]]
    assert record["service"] == "rotator"
    assert emitted.metric("StepSucceeded", Step="createSecret") == [1.0]
    [duration] = emitted.metric("StepDuration", Step="createSecret")
    assert duration > 0
    assert record["secret"] == rotating.arn and record["token"] == rotating.token  # metadata, not dimensions
    assert emitted.dimension_names() <= {"Step", "service", "function_name"}
    [done] = emitted.messages("INFO")[-1:]
    assert (done["message"], done["outcome"], done["step"]) == ("step done", "created", "createSecret")


def test_finish_counts_a_completed_rotation_per_secret_name(
    idempotency_off: None, rotating: Rotating, handler: Lambda
) -> None:
    """finishSecret that promotes emits RotationCompleted by Step and, in its own record, by SecretName (not ARN)."""
    handler(rotating.event("createSecret"))
    rotating.mark_tested()  # as testSecret does once the pending login works (no database here)
    handler.output()

    assert handler(rotating.event("finishSecret"))["outcome"] == "promoted"

    emitted = handler.output()
    assert emitted.metric("RotationCompleted", Step="finishSecret") == [1.0]
    assert emitted.metric("RotationCompleted", SecretName="unit/app-db") == [1.0]
    assert emitted.metric("StepSucceeded", Step="finishSecret") == [1.0]


def test_cold_start_is_counted_once(idempotency_off: None, rotating: Rotating, handler: Lambda) -> None:
    """The first invocation of a container emits ColdStart (by function name); the next does not."""
    cold_start.reset_cold_start_flag()
    handler(rotating.event("createSecret"))
    handler(rotating.event("createSecret"))

    emitted = handler.output()
    assert emitted.metric("ColdStart", function_name="rotator") == [1.0]


def test_failed_step_logs_and_counts_the_reason(
    idempotency_off: None, rotating: Rotating, handler: Lambda, raise_in_step: Callable[[BaseException], None]
) -> None:
    """A RotatorError is re-raised unchanged, logged with its problem as reason and counted as StepFailed."""
    raise_in_step(RotationStateError(rotating.arn, "rotation is not enabled for this secret"))

    with pytest.raises(RotationStateError):
        handler(rotating.event("setSecret"))

    emitted = handler.output()
    assert emitted.metric("StepFailed", Step="setSecret") == [1.0]
    assert emitted.metric("StepDuration", Step="setSecret") != []
    assert "StepSucceeded" not in emitted.metric_names()
    [record] = [r for r in emitted.emf if "StepFailed" in r]
    assert record["error"] == "RotationStateError"
    [error] = emitted.messages("ERROR")
    assert (error["message"], error["error"]) == ("step failed", "RotationStateError")
    assert error["reason"] == "rotation is not enabled for this secret"


@pytest.mark.parametrize(
    "body",
    [
        {"ClientRequestToken": "t", "Step": "createSecret"},
        {"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf", "Step": "createSecret"},
        {"SecretId": "s", "ClientRequestToken": "t", "Step": "rotateEverything"},
        "createSecret",
        ["SecretId", "ClientRequestToken", "Step"],
        None,
        42,
    ],
    ids=["no-secret-id", "no-token", "unknown-step", "a-string", "a-list", "null", "a-number"],
)
def test_invalid_event_fails_before_any_aws_call(idempotency_off: None, handler: Lambda, body: Any) -> None:
    """A malformed event (or one that is not a JSON object at all) raises InvalidEventError, is logged as
    "step failed" and counted under Step=invalid, without wiring anything."""
    with pytest.raises(InvalidEventError):
        handler(body)

    emitted = handler.output()
    assert emitted.metric("StepFailed", Step="invalid") == [1.0]
    [error] = emitted.messages("ERROR")
    assert (error["message"], error["error"]) == ("step failed", "InvalidEventError")
    assert handler_module._container.cache_info().currsize == 0  # no client built, no AWS call made


def test_unexpected_error_message_is_withheld(
    idempotency_off: None, rotating: Rotating, handler: Lambda, raise_in_step: Callable[[BaseException], None]
) -> None:
    """An exception rotator did not anticipate becomes UnexpectedError: type and location logged, its text nowhere."""
    raise_in_step(ValueError(f"could not parse {APP_PASSWORD}"))

    with pytest.raises(UnexpectedError) as raised:
        handler(rotating.event("createSecret"))

    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert "ValueError" in str(raised.value)
    emitted = handler.output()
    [error] = emitted.messages("ERROR")
    assert (error["error"], error["reason"]) == ("ValueError", "unexpected error")
    assert any("conftest.py" in frame and frame.endswith("in fail") for frame in error["where"])
    assert leaked({"password": APP_PASSWORD}, emitted.text, str(raised.value)) == []


def test_event_is_never_logged_even_when_asked_by_environment() -> None:
    """POWERTOOLS_LOGGER_LOG_EVENT=true (read when the handler is imported) does not make it log the event,
    which holds the RotationToken."""
    rotation_token = f"rt-{uuid.uuid4()}"
    probe = (
        "import json, sys\n"
        "from rotator.handler import lambda_handler\n"
        "from tests.support.lambda_context import FakeLambdaContext\n"
        f"event = {{'Step': 'createSecret', 'ClientRequestToken': 't', 'RotationToken': {rotation_token!r}}}\n"
        "try:\n"
        "    lambda_handler(event, FakeLambdaContext())\n"
        "except Exception as exc:\n"
        "    print(json.dumps({'raised': type(exc).__name__}))\n"
    )
    output = run_python(probe, POWERTOOLS_LOGGER_LOG_EVENT="true")

    assert json.loads(output.splitlines()[-1]) == {"raised": "InvalidEventError"}
    assert '"message":"step failed"' in output  # the handler did log
    assert leaked({"RotationToken": rotation_token}, output) == []


def test_debug_logging_cannot_print_a_secret(
    idempotency_off: None, rotating: Rotating, handler: Lambda, caplog: pytest.LogCaptureFixture
) -> None:
    """With the root logger at DEBUG (Lambda's log-level setting), botocore still prints no request or response body."""
    caplog.set_level(logging.DEBUG)

    handler(rotating.event("createSecret"))

    assert caplog.records, "nothing was logged at all"
    secrets = {"pending password": rotating.pending_password(), "current password": APP_PASSWORD}
    assert leaked(secrets, caplog.text, handler.output().text) == []
    assert logging.getLogger("botocore").getEffectiveLevel() == logging.WARNING


@pytest.mark.parametrize(
    ("secret_id", "name"),
    [
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/app-db-a1B2c3", "prod/app-db"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-db-reader-Zz9Yy8", "app-db-reader"),
        ("arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:plain-AbCdEf", "plain"),
        ("prod/app-db", "prod/app-db"),
    ],
)
def test_secret_name_comes_from_the_arn(secret_id: str, name: str) -> None:
    """The SecretName dimension is the name inside the ARN, without the random six-character suffix."""
    assert secret_name(secret_id) == name


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter (module-level Powertools objects read the
    environment at import) with the test environment plus ``env``; its stdout."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), **env}
    result = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return result.stdout


@pytest.mark.parametrize(("disabled", "patched"), [("true", []), ("false", ["botocore"])])
def test_tracing_follows_powertools_trace_disabled(disabled: str, patched: list[str]) -> None:
    """In a Lambda-like process POWERTOOLS_TRACE_DISABLED switches tracing off; when on, only botocore is patched."""
    probe = (
        "import json, aws_xray_sdk\n"
        "from aws_xray_sdk.core.patcher import _PATCHED_MODULES\n"
        "from rotator import handler, secret_store\n"
        "from rotator.backends.mysql import base as mysql\n"
        "print(json.dumps({'disabled': [m.tracer.disabled for m in (handler, mysql, secret_store)],\n"
        "  'sdk_enabled': aws_xray_sdk.global_sdk_config.sdk_enabled(), 'patched': sorted(_PATCHED_MODULES)}))\n"
    )
    output = run_python(
        probe,
        LAMBDA_TASK_ROOT=str(REPO),  # outside Lambda Powertools disables tracing regardless
        AWS_LAMBDA_FUNCTION_NAME="rotator",
        POWERTOOLS_TRACE_DISABLED=disabled,
    )

    state = json.loads(output.strip().splitlines()[-1])
    off = disabled == "true"
    assert state == {"disabled": [off, off, off], "sdk_enabled": not off, "patched": patched}
