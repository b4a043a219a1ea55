"""The CLI behind a forward proxy: with HTTPS_PROXY set, the Secrets Manager endpoint must be
named in NO_PROXY, or the calls go to the proxy (and, on a real network, out of the VPC).

A moto server on 127.0.0.1 stands for the endpoint, served over TLS with a test CA (as an
interface endpoint is); the proxy is a port nothing listens on (both in tests/unit/conftest.py).
With NO_PROXY naming the endpoint the CLI reaches it directly; without, it tries the proxy
and fails.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import boto3
import pytest

from tests.support.cli import Cli
from tests.unit.conftest import TlsEndpoint


@pytest.fixture
def secret_arn(tls_endpoint: TlsEndpoint) -> Iterator[str]:
    """A rotator secret on the endpoint, created before any proxy is configured (and removed
    after: the server shares moto's in-process backends)."""
    client = boto3.client(
        "secretsmanager", region_name="us-east-1", endpoint_url=tls_endpoint.url, verify=str(tls_endpoint.ca_file)
    )
    value = {"engine": "mariadb", "host": "db.internal", "username": "app", "password": "pw-proxy-0123456789"}
    arn = str(client.create_secret(Name=f"proxy/app-db-{uuid.uuid4().hex[:8]}", SecretString=json.dumps(value))["ARN"])
    yield arn
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_no_proxy_naming_the_endpoint_reaches_it_directly(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, tls_endpoint: TlsEndpoint, secret_arn: str, behind_a_dead_proxy: str
) -> None:
    """With HTTPS_PROXY pointing nowhere and NO_PROXY naming the endpoint's host, the CLI talks to
    the endpoint directly (TLS verified) and reports the secret."""
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    run = cli("--endpoint-url", tls_endpoint.url, "--region", "us-east-1", "--json", "status", secret_arn)
    assert run.code == 0, run.err
    assert "proxy/app-db" in run.out
    assert run.leaks(["pw-proxy-0123456789"]) == []


def test_without_no_proxy_the_calls_go_to_the_proxy(
    cli: Cli, tls_endpoint: TlsEndpoint, secret_arn: str, behind_a_dead_proxy: str
) -> None:
    """Without NO_PROXY the same command goes to the (dead) proxy and stops with exit code 5
    (unreachable): what a host behind a proxy sees until the endpoint is in its NO_PROXY."""
    run = cli("--endpoint-url", tls_endpoint.url, "--region", "us-east-1", "status", secret_arn)
    assert run.code == 5, run.text
    assert "cannot reach the Secrets Manager endpoint" in run.err
    assert f'Failed to connect to proxy URL: "{behind_a_dead_proxy}"' in run.err
