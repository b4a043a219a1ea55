"""The benchmark's rotation section against the real servers (MariaDB, MySQL, PostgreSQL 15
and 18): its counts add up and agree with rotator's own database counters
(bench/sections/rotation.py; figures in docs/performance.md)."""

from __future__ import annotations

import pytest

from bench.common import FUNCTION_ENV
from bench.counters import Probe
from bench.sections.rotation import run_section as run_rotation_section
from tests.support.servers import DatabaseServer

pytestmark = pytest.mark.slow  # bench code at work; make test runs it, -m "not slow" leaves it out


@pytest.mark.every_engine
def test_two_rotations_are_counted_consistently(db: DatabaseServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new-container and a warm rotation: totals equal their parts, the probe agrees with
    the backend's own stats, and the counts stay within issue 5's and issue 23's bounds
    (PostgreSQL's too: one admin session per step, however many databases the server has)."""
    for key, value in FUNCTION_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ROTATOR_CA_BUNDLE", str(db.pki.ca_file))
    with Probe() as probe:
        report = run_rotation_section(db, 2, probe)

    checks = report["checks"]
    assert checks["counter_mismatches"] == []
    assert checks["unexpected_outcomes"] == []
    assert checks["current_works"] and checks["previous_works"]
    # Issue 14's budget: at most 12 AWS calls per warm rotation (Secrets Manager plus
    # DynamoDB); a new container reads the admin secret once more.
    for counts, budget in ((report["first"]["counts"], 13), (report["warm"]["mean"], 12)):
        assert counts["secretsmanager_calls"] == sum(counts["secretsmanager_by_operation"].values())
        assert counts["sql_statements"] == sum(counts["sql_by_verb"].values())
        assert counts["db_connections_ok"] == counts["db_connections_attempted"] == counts["tls_handshakes"]
        assert counts["secretsmanager_calls"] + counts["dynamodb_calls"] <= budget
        assert counts["db_connections_attempted"] <= 4
        assert counts["dynamodb_calls"] == 2  # idempotency on setSecret only
    warm = report["warm"]["mean"]
    assert sum(sum(verbs.values()) for verbs in warm["sql_by_step"].values()) == warm["sql_statements"]
    if db.family == "postgresql":
        # One catalogue reading per step (and per database that holds something of the pair):
        # a warm alternating rotation on one application database is 10 statements.
        assert warm["sql_statements"] <= 12, warm["sql_by_verb"]
    else:
        # Issue 23's budget: a warm alternating rotation reads each account once per step and
        # sends at most 20 statements (40 before); testSecret still reads both accounts'
        # SHOW CREATE USER and SHOW GRANTS itself, whatever setSecret read.
        assert warm["sql_statements"] <= 20
        assert warm["sql_by_step"]["testSecret"].get("SHOW", 0) >= 4
    container = report["container"]
    assert container["boto3_clients"].get("secretsmanager") == 1
    assert container["tls_contexts_default"] == 1
    assert report["warm"]["mean"]["boto3_clients"] == {}
