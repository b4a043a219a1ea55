"""Unit fixtures: moto in-process (Secrets Manager, DynamoDB), no database.

The handler-level fixtures use a single-user secret whose host is never contacted:
createSecret and finishSecret talk only to Secrets Manager, which is all the
handler and idempotency tests need.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rotator import bootstrap
from rotator import handler as handler_module
from rotator.ports import TESTED
from rotator.rotation import Rotation
from tests.support.aws import begin_rotation, create_idempotency_table, create_secret, event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.observe import Emitted

IDEMPOTENCY_TABLE = "rotator-idempotency"
APP_PASSWORD = "pw-unit-Initial-0123456789abcdef"  # a test credential, looked for in outputs


@pytest.fixture
def aws() -> Iterator[Any]:
    """A Secrets Manager client on moto's in-process backend (emptied after the test)."""
    with mock_aws():
        yield boto3.client("secretsmanager", region_name="us-east-1")


@pytest.fixture
def dynamodb(aws: Any) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture
def idempotency_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")


@pytest.fixture
def idempotency_table(monkeypatch: pytest.MonkeyPatch, dynamodb: Any) -> str:
    """Idempotency on, against a moto DynamoDB table shaped like the template's."""
    create_idempotency_table(dynamodb, IDEMPOTENCY_TABLE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    monkeypatch.delenv("POWERTOOLS_IDEMPOTENCY_DISABLED", raising=False)
    return IDEMPOTENCY_TABLE


@dataclass
class Rotating:
    """A secret with a rotation begun: its ARN and the new version's token."""

    client: Any
    arn: str
    token: str

    def event(self, step: str, rotation_token: str | None = None) -> dict[str, Any]:
        return event(self.arn, self.token, step, rotation_token)

    def mark_tested(self) -> None:
        """Label the version as testSecret does when it passes."""
        self.client.update_secret_version_stage(SecretId=self.arn, VersionStage=TESTED, MoveToVersionId=self.token)

    def pending_password(self) -> str:
        value = self.client.get_secret_value(SecretId=self.arn, VersionId=self.token, VersionStage="AWSPENDING")
        return str(json.loads(value["SecretString"])["password"])


@pytest.fixture
def rotating(aws: Any) -> Rotating:
    """A single-user MariaDB secret (its host is never contacted) with a rotation begun."""
    arn = create_secret(
        aws,
        "unit/app-db",
        {"engine": "mariadb", "host": "127.0.0.1", "port": 1, "username": "app", "password": APP_PASSWORD},
    )
    return Rotating(aws, arn, begin_rotation(aws, arn))


class Lambda:
    """The handler as Secrets Manager calls it, and what it printed since the last look."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, body: dict[str, Any], context: FakeLambdaContext | None = None) -> Any:
        return handler_module.lambda_handler(body, context or FakeLambdaContext())

    def output(self) -> Emitted:
        captured = self._capsys.readouterr()
        return Emitted.parse(captured.out + captured.err)

    @property
    def container(self) -> bootstrap.Container:
        return handler_module._container()


@pytest.fixture
def handler(capsys: pytest.CaptureFixture[str], aws: Any) -> Iterator[Lambda]:
    """The handler with fresh wiring, built on first use inside the moto mock (so
    environment fixtures listed before it in a test apply)."""
    handler_module._container.cache_clear()
    yield Lambda(capsys)
    handler_module._container.cache_clear()


@pytest.fixture
def raise_in_step(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException], None]:
    """Make the steps raise ``error`` from inside the rotation."""

    def install(error: BaseException) -> None:
        def fail(rotation: Rotation, request: Any) -> Any:
            raise error

        monkeypatch.setattr(Rotation, "run", fail)

    return install
