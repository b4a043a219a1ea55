"""Section rotation: N rotations of one application secret through
``rotator.handler.lambda_handler`` in one process (one container), the first in a
new container, the rest warm; then the same for a single-user secret. Secrets
Manager and DynamoDB (idempotency on) are moto, in-process; the database is the
private server the driver started (verified TLS)."""

from __future__ import annotations

from typing import Any

from bench.common import REGION, STEPS
from bench.counters import Probe, product_mismatches, summarize
from bench.driver import (
    create_idempotency_table,
    duplicate_deliveries,
    fresh_container,
    function_output,
    per_rotation,
    rotate,
    timings,
)
from bench.report import Table, clients, fmt_spread, num, ops
from bench.servers import DatabaseServer

EXPECTED_OUTCOMES = {
    "alternating": {
        "createSecret": "created",
        "setSecret": "twin-synced",
        "testSecret": "twin-verified",
        "finishSecret": "promoted",
    },
    "single-user": {
        "createSecret": "created",
        "setSecret": "password-changed",
        "testSecret": "login-ok",
        "finishSecret": "promoted",
    },
    # MySQL, the user holding APPLICATION_PASSWORD_ADMIN: the old password stays the secondary.
    "single-user-dual": {
        "createSecret": "created",
        "setSecret": "password-changed-retaining-current",
        "testSecret": "login-ok-both",
        "finishSecret": "promoted",
    },
}

# Issue 5 quotes these for AWS's published MySQL multi-user rotation function; they
# are not measured here (its source is not fetched at bench time).
AWS_SAMPLE = {
    "secretsmanager_calls": "14",
    "boto3_clients": "4",
    "db_connections": "5-8",
    "tls_contexts": "1 per connection",
}


def run_section(server: DatabaseServer, rotations: int, probe: Probe, *, single_user: bool = False) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from tests.support.world import make_world, reset_server

    reset_server(server)
    with mock_aws(), function_output():
        client = boto3.client("secretsmanager", region_name=REGION)
        create_idempotency_table()
        world = make_world(server, client, single_user=single_user, dual_passwords=single_user)
        fresh_container()
        container_before = probe.snapshot()
        records = [rotate(client, world.app_arn, probe) for _ in range(rotations)]
        container = probe.since(container_before)
        duplicates = duplicate_deliveries(client, world.app_arn, probe)
        current_works = world.can_use_grants(world.app_secret())
        # Single user without dual passwords: AWSPREVIOUS holds the password that was just replaced.
        dual = single_user and server.family == "mysql"
        previous_works = world.can_use_grants(world.app_secret("AWSPREVIOUS")) if dual or not single_user else None
    fresh_container()
    reset_server(server)

    mismatches = [
        f"rotation {i + 1}: {problem}"
        for i, r in enumerate(records)
        for problem in product_mismatches(r.counts, r.stats)
    ]
    mode = "single-user" if single_user else "alternating"
    expected = EXPECTED_OUTCOMES["single-user-dual" if dual else mode]
    unexpected = [f"rotation {i + 1}: {r.outcomes}" for i, r in enumerate(records) if r.outcomes != expected]
    return {
        "mode": mode,
        "rotations": rotations,
        "first": {
            "counts": summarize(records[0].counts),
            "step_ms": records[0].step_ms,
            "rotation_ms": records[0].total_ms,
        },
        "warm": {**per_rotation(records[1:]), **timings(records[1:])} if rotations > 1 else {},
        "container": summarize(container),
        "duplicate_delivery": duplicates,
        "checks": {
            "current_works": current_works,
            "previous_works": previous_works,
            "counter_mismatches": mismatches,
            "unexpected_outcomes": unexpected,
        },
    }


def _step_sql(by_verb: dict[str, float]) -> str:
    """One step's statements: the total, then by verb."""
    return f"{num(sum(by_verb.values()))} ({ops(by_verb)})" if by_verb else "0"


def tables(report: dict[str, Any]) -> list[Table]:
    """Per-rotation counts (with the bulk section's mean beside them), a duplicate
    delivery, and wall times."""
    rotation = report.get("rotation")
    bulk = report.get("bulk")
    if not rotation and not bulk:
        return []
    columns: list[tuple[str, dict[str, Any]]] = []
    if rotation:
        columns.append(("new container", rotation["first"]["counts"]))
        if rotation["warm"]:
            columns.append((f"warm, same secret (x{rotation['warm']['rotations']})", rotation["warm"]["mean"]))
    if bulk:
        columns.append((f"warm, {bulk['secrets']} secrets (mean)", bulk["per_rotation"]["mean"]))
    single = report.get("rotation_single")
    if single and single["warm"]:
        columns.append((f"single user, warm (x{single['warm']['rotations']})", single["warm"]["mean"]))
    table = Table("per rotation: 4 invocations, idempotency on", ["", *(name for name, _ in columns), "AWS sample*"])
    table.add(
        "Secrets Manager calls",
        *(num(c["secretsmanager_calls"]) for _, c in columns),
        AWS_SAMPLE["secretsmanager_calls"],
    )
    operations = sorted({op for _, c in columns for op in c["secretsmanager_by_operation"]})
    for op in operations:
        table.add(f"  {op}", *(num(c["secretsmanager_by_operation"].get(op, 0)) for _, c in columns), "")
    table.add("DynamoDB calls (idempotency)", *(num(c["dynamodb_calls"]) for _, c in columns), "-")
    table.add("  by operation", *(ops(c["dynamodb_by_operation"]) for _, c in columns), "")
    table.add("boto3 clients created", *(clients(c) for _, c in columns), AWS_SAMPLE["boto3_clients"])
    table.add(
        "DB connections attempted/ok",
        *(f"{num(c['db_connections_attempted'])}/{num(c['db_connections_ok'])}" for _, c in columns),
        AWS_SAMPLE["db_connections"],
    )
    table.add("TLS handshakes", *(num(c["tls_handshakes"]) for _, c in columns), "")
    table.add(
        "TLS contexts, database", *(num(c["tls_contexts_default"]) for _, c in columns), AWS_SAMPLE["tls_contexts"]
    )
    table.add("TLS contexts, all (botocore too)", *(num(c["tls_contexts_all"]) for _, c in columns), "")
    table.add("SQL statements", *(num(c["sql_statements"]) for _, c in columns), "")
    table.add("  by verb", *(ops(c["sql_by_verb"]) for _, c in columns), "")
    for step in STEPS:
        table.add(
            f"  {step}",
            *(_step_sql(c.get("sql_by_step", {}).get(step, {})) for _, c in columns),
            "",
        )
    found = [table]
    duplicate = rotation.get("duplicate_delivery") if rotation else None
    if duplicate:
        d = duplicate["per_delivery"]
        replay = Table("a duplicate delivery of a step (answered from the idempotency table)", ["figure", "value"])
        replay.add("Secrets Manager calls", num(d["secretsmanager_calls"]))
        replay.add("DynamoDB calls", f"{num(d['dynamodb_calls'])} ({ops(d['dynamodb_by_operation'])})")
        replay.add("DB connections", num(d["db_connections_attempted"]))
        replay.add("result", ", ".join(sorted(set(duplicate["outcomes"].values()))))
        found.append(replay)

    timing = Table(
        "wall time (median [p10-p90])",
        ["", "new container (1)", "warm, same secret", "warm, bulk", "single user, warm"],
    )
    warm = rotation["warm"] if rotation else {}
    single_warm = single["warm"] if single else {}
    for step in STEPS:
        timing.add(
            step,
            f"{rotation['first']['step_ms'][step]:.0f} ms" if rotation else "-",
            fmt_spread(warm["step_ms"][step]) if warm else "-",
            fmt_spread(bulk["step_ms"][step]) if bulk else "-",
            fmt_spread(single_warm["step_ms"][step]) if single_warm else "-",
        )
    timing.add(
        "rotation",
        f"{rotation['first']['rotation_ms']:.0f} ms" if rotation else "-",
        fmt_spread(warm["rotation_ms"]) if warm else "-",
        fmt_spread(bulk["rotation_ms"]) if bulk else "-",
        fmt_spread(single_warm["rotation_ms"]) if single_warm else "-",
    )
    found.append(timing)
    return found
