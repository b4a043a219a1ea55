"""Unit fixtures: moto in-process (Secrets Manager, DynamoDB), no database.

The handler-level fixtures use a single-user secret whose host is never contacted:
createSecret and finishSecret talk only to Secrets Manager, which is all the
handler and idempotency tests need.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from rotator import bootstrap
from rotator import handler as handler_module
from rotator.ports import TESTED
from rotator.rotation import Rotation
from tests.support.aws import begin_rotation, create_idempotency_table, create_secret, event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.mariadb import free_port, make_pki
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


# -- a Secrets Manager endpoint behind a forward proxy (the CLI's and rotator-client's proxy tests) --


@dataclass(frozen=True)
class TlsEndpoint:
    url: str
    ca_file: Path


@pytest.fixture
def tls_endpoint(tmp_path: Path) -> Iterator[TlsEndpoint]:
    """moto's Secrets Manager behind HTTPS on 127.0.0.1, its certificate signed by a test CA."""
    pki = make_pki(tmp_path / "pki")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    server = make_server(
        "127.0.0.1", 0, DomainDispatcherApplication(create_backend_app), threaded=True, ssl_context=context
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsEndpoint(f"https://127.0.0.1:{server.server_port}", pki.ca_file)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture
def behind_a_dead_proxy(monkeypatch: pytest.MonkeyPatch, tls_endpoint: TlsEndpoint) -> str:
    """HTTPS_PROXY (and HTTP_PROXY) point at a port nothing listens on; botocore trusts the test CA."""
    proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tls_endpoint.ca_file))
    # botocore's back-off between retries of the unreachable proxy: no need to wait for it.
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _seconds: None)
    return proxy
