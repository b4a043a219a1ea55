"""The benchmark's probe counts what it claims to count (bench/counters.py)."""

from __future__ import annotations

import ssl
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bench.counters import Probe, product_mismatches, summarize


def test_counts_clients_calls_and_errors_only_while_recording() -> None:
    """boto3 clients, API calls by operation and service errors are counted inside recording() only."""
    with mock_aws(), Probe() as probe:
        outside = boto3.client("secretsmanager", region_name="us-east-1")
        outside.create_secret(Name="not-counted", SecretString="{}")
        with probe.recording():
            client = boto3.session.Session().client("secretsmanager", region_name="us-east-1")
            client.describe_secret(SecretId="not-counted")
            with pytest.raises(ClientError):
                client.describe_secret(SecretId="missing")
        summary = summarize(probe.counts)
    assert summary["boto3_clients"] == {"secretsmanager": 1}
    assert summary["botocore_clients"] == {"secretsmanager": 1}
    assert summary["secretsmanager_by_operation"] == {"DescribeSecret": 2}
    assert summary["secretsmanager_calls"] == 2
    assert summary["api_errors"] == {"secretsmanager:ResourceNotFoundException": 1}


def test_counts_tls_contexts_and_restores_the_libraries() -> None:
    """ssl contexts are counted (all, and create_default_context); uninstalling restores the originals."""
    original_new = vars(ssl.SSLContext)["__new__"]
    original_default = ssl.create_default_context
    with Probe() as probe, probe.recording():
        ssl.create_default_context()
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    assert probe.counts["tls:default_context"] == 1
    assert probe.counts["tls:context"] == 2
    assert vars(ssl.SSLContext)["__new__"] is original_new
    assert ssl.create_default_context is original_default


def test_since_and_mismatches() -> None:
    """Deltas drop zero entries; a disagreement with rotator's own stats is reported by name."""
    probe = Probe()
    probe.counts.update({"db:attempted": 2, "db:ok": 2, "sql:SELECT": 3})
    before = probe.snapshot()
    probe.counts.update({"db:attempted": 1, "db:ok": 1, "sql:SELECT": 2})
    assert probe.since(before) == Counter({"db:attempted": 1, "db:ok": 1, "sql:SELECT": 2})
    stats = Counter({"connections_attempted": 1, "connections_ok": 1, "sql_select": 2})
    assert product_mismatches(probe.since(before), stats) == []
    stats["sql_select"] = 1
    assert product_mismatches(probe.since(before), stats) == [
        "sql by verb: rotator says {'SELECT': 1}, probe saw {'SELECT': 2}"
    ]
