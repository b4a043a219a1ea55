"""The targets of issue 5, judged from a report of any sections."""

from __future__ import annotations

from typing import Any

from bench.report import Table, clients, num

TARGETS = {
    # Issue 14: Secrets Manager plus DynamoDB, per warm rotation (AWS's sample makes 14).
    "aws_calls_per_warm_rotation": 12,
    "db_connections_per_rotation": 4,
    "boto3_clients_per_container": 1,
    "db_tls_contexts_per_container": 1,
    "import_ratio": 1.3,
    "zipped_bytes": 3 * 1024 * 1024,
}


def evaluate(report: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def add(name: str, target: str, measured: str, met: bool, note: str = "") -> None:
        found.append({"target": name, "limit": target, "measured": measured, "met": met, "note": note})

    groups = []
    if report.get("rotation"):
        groups.append(("new container", report["rotation"]["first"]["counts"]))
        if report["rotation"]["warm"]:
            groups.append(("warm", report["rotation"]["warm"]["mean"]))
    if report.get("bulk"):
        bulk = report["bulk"]
        # The container reads the shared admin secret once for all the secrets (then it is
        # cached): a cost of the container, not of each warm rotation.
        mean = dict(bulk["per_rotation"]["mean"])
        mean["secretsmanager_calls"] -= bulk.get("admin_secret_reads", 0) / bulk["secrets"]
        groups.append(("bulk", mean))
    if report.get("rotation_single"):
        groups.append(("single user, new container", report["rotation_single"]["first"]["counts"]))
    warm = [(name, c) for name, c in groups if "new container" not in name]
    if warm:
        add(
            "AWS API calls per warm rotation (Secrets Manager + DynamoDB)",
            f"<= {TARGETS['aws_calls_per_warm_rotation']}",
            ", ".join(f"{name} {num(c['secretsmanager_calls'])} + {num(c['dynamodb_calls'])}" for name, c in warm),
            max(c["secretsmanager_calls"] + c["dynamodb_calls"] for _, c in warm)
            <= TARGETS["aws_calls_per_warm_rotation"],
            "bulk: without the one read of the shared admin secret per container"
            if report.get("bulk", {}).get("admin_secret_reads")
            else "",
        )
    if groups:
        add(
            "DB connections per rotation",
            f"<= {TARGETS['db_connections_per_rotation']}",
            ", ".join(f"{name} {num(c['db_connections_attempted'])}" for name, c in groups),
            max(c["db_connections_attempted"] for _, c in groups) <= TARGETS["db_connections_per_rotation"],
        )
    containers = []
    if report.get("rotation"):
        containers.append((f"{report['rotation']['rotations']} rotations", report["rotation"]["container"]))
    if report.get("bulk"):
        containers.append((f"{report['bulk']['secrets']} secrets", report["bulk"]["container"]))
    if containers:
        sm_clients = max(c["boto3_clients"].get("secretsmanager", 0) for _, c in containers)
        all_clients = max(sum(c["boto3_clients"].values()) for _, c in containers)
        add(
            "boto3 clients per warm container",
            f"<= {TARGETS['boto3_clients_per_container']}",
            "; ".join(f"{name}: {clients(c)}" for name, c in containers),
            all_clients <= TARGETS["boto3_clients_per_container"],
            f"Secrets Manager clients: {sm_clients}; the DynamoDB client is idempotency's"
            if all_clients > sm_clients
            else "",
        )
        contexts = max(c["tls_contexts_default"] for _, c in containers)
        add(
            "database TLS contexts per warm container",
            f"<= {TARGETS['db_tls_contexts_per_container']}",
            "; ".join(f"{name}: {c['tls_contexts_default']}" for name, c in containers),
            contexts <= TARGETS["db_tls_contexts_per_container"],
        )
    if report.get("cold"):
        imports = report["cold"]["imports"]
        ratios, key = imports["ratio_per_round"], imports["target_variant"]
        add(
            "import rotator.handler vs boto3+pymysql (CPU time, same interpreter, tracing Active as deployed)",
            f"<= {TARGETS['import_ratio']}x",
            f"python {imports['python']}, {imports['interpreter']}; median of per-round ratios: "
            + ", ".join(f"{name} {value['median']:.2f}x" for name, value in ratios.items()),
            ratios[key]["median"] <= TARGETS["import_ratio"],
        )
    if report.get("package"):
        zipped = report["package"]["zipped_bytes"]
        add(
            "zipped artifact",
            f"<= {TARGETS['zipped_bytes'] / 2**20:.0f} MiB",
            f"{zipped / 2**20:.2f} MiB",
            zipped <= TARGETS["zipped_bytes"],
        )
    return found


def tables(targets: list[dict[str, Any]]) -> list[Table]:
    if not targets:
        return []
    table = Table("targets (issue 5)", ["target", "limit", "measured", "met"])
    for t in targets:
        table.add(
            t["target"],
            t["limit"],
            t["measured"] + (f" ({t['note']})" if t["note"] else ""),
            "yes" if t["met"] else "NO",
        )
    return [table]
