"""Section bulk: S application secrets sharing one admin secret, each rotated once,
one after another, in one warm process; afterwards every AWSCURRENT must log in."""

from __future__ import annotations

import json
import time
from typing import Any

from bench.common import REGION
from bench.counters import Probe, product_mismatches, summarize
from bench.driver import create_idempotency_table, fresh_container, function_output, per_rotation, rotate, timings
from bench.report import Table, clients, num
from bench.servers import DatabaseServer

# The fields every bulk secret copies from the world's application secret: the
# engine, host and port of whichever server the bench runs against.
SHARED_FIELDS = ("engine", "host", "port", "dbname")


def run_section(server: DatabaseServer, secrets: int, probe: Probe) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from tests.support.aws import create_secret
    from tests.support.world import DEFAULT_APP_GRANTS, make_world, new_password, reset_server

    reset_server(server)
    with mock_aws(), function_output():
        client = boto3.client("secretsmanager", region_name=REGION)
        create_idempotency_table()
        world = make_world(server, client)
        arns = [world.app_arn]
        base = {key: value for key, value in world.app_secret().items() if key in SHARED_FIELDS}
        for number in range(1, secrets):
            user = f"app{number:04d}"
            password = new_password()
            server.sql("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            for grant in DEFAULT_APP_GRANTS:
                server.sql(grant.format(account="%s@'%%'"), (user,))
            value = {**base, "username": user, "password": password, "masterarn": world.admin_arn}
            arns.append(create_secret(client, f"bulk/{user}", value))

        fresh_container()
        before = probe.snapshot()
        started = time.perf_counter()
        records = [rotate(client, arn, probe) for arn in arns]
        elapsed = time.perf_counter() - started
        container = probe.since(before)

        failures = 0
        for arn in arns:
            value = json.loads(client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
            try:
                world.connect(value).close()
            except Exception:
                failures += 1
        admin_arn = world.admin_arn
    fresh_container()
    reset_server(server)

    handler_seconds = sum(r.total_ms for r in records) / 1000
    mismatches = [problem for r in records for problem in product_mismatches(r.counts, r.stats)]
    return {
        "secrets": secrets,
        "admin_secret_reads": container.get(f"secret_read:{admin_arn}", 0),
        "handler_seconds": handler_seconds,
        "wall_seconds": elapsed,
        "rotations_per_second": secrets / handler_seconds,
        "rotations_per_second_wall": secrets / elapsed,
        "per_rotation": per_rotation(records),
        **timings(records),
        "container": summarize(container),
        "checks": {"current_login_failures": failures, "counter_mismatches": mismatches[:10]},
    }


def tables(report: dict[str, Any]) -> list[Table]:
    bulk = report.get("bulk")
    if not bulk:
        return []
    table = Table(f"bulk: {bulk['secrets']} secrets, one admin secret, one warm process", ["figure", "value"])
    table.add("rotations per second (handler time)", f"{bulk['rotations_per_second']:.2f}")
    table.add("rotations per second (with the bench's staging)", f"{bulk['rotations_per_second_wall']:.2f}")
    table.add("admin secret reads (GetSecretValue)", f"{bulk['admin_secret_reads']} for {bulk['secrets']} rotations")
    mean, group = bulk["per_rotation"]["mean"], bulk["per_rotation"]
    table.add(
        "Secrets Manager calls per rotation",
        f"{num(mean['secretsmanager_calls'])} "
        f"(min {group['min_secretsmanager_calls']}, max {group['max_secretsmanager_calls']})",
    )
    table.add("DynamoDB calls per rotation", num(mean["dynamodb_calls"]))
    table.add("boto3 clients, whole run", clients(bulk["container"]))
    table.add("database TLS contexts, whole run", num(bulk["container"]["tls_contexts_default"]))
    table.add("AWSCURRENT logins that failed afterwards", bulk["checks"]["current_login_failures"])
    return [table]
