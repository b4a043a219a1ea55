"""Everything a read-only component could change, fingerprinted: every secret in (moto's)
Secrets Manager and the server's account tables.

A snapshot maps a place (``secret app-db: versions``, ``mysql.tables_priv``) to a
SHA-256 of what it held, so comparing two snapshots names what changed without
printing a value, a password hash or a grant.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

# The account and privilege tables of MariaDB and MySQL 8; each is read where it exists.
ACCOUNT_TABLES = (
    "user",
    "global_priv",
    "db",
    "tables_priv",
    "columns_priv",
    "procs_priv",
    "proxies_priv",
    "roles_mapping",
    "role_edges",
    "default_roles",
)


def _digest(value: Any) -> str:
    if isinstance(value, dict):  # a response: its request id and date differ every time
        value = {key: item for key, item in value.items() if key != "ResponseMetadata"}
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def secrets_snapshot(client: Any) -> dict[str, str]:
    """Each secret's description, its versions with their labels and values, and its resource policy."""
    found: dict[str, str] = {}
    for listed in client.list_secrets(IncludePlannedDeletion=True)["SecretList"]:
        arn = listed["ARN"]
        name = listed["Name"]
        found[f"secret {name}: description"] = _digest(client.describe_secret(SecretId=arn))
        versions = client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        # The versions and their labels; not their dates (a read records the date it was
        # made, and moto dates every version "now" whenever it lists them).
        labels = sorted((str(version["VersionId"]), sorted(version["VersionStages"])) for version in versions)
        found[f"secret {name}: versions"] = _digest(labels)
        for version in versions:
            try:
                value = client.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
            except ClientError:  # a version without a value (RotateSecret's staged one)
                value = {}
            found[f"secret {name}: value of {version['VersionId']}"] = _digest(value.get("SecretString"))
        found[f"secret {name}: resource policy"] = _digest(
            client.get_resource_policy(SecretId=arn).get("ResourcePolicy")
        )
    return found


def database_snapshot(server: Any) -> dict[str, str]:
    """Every row of the server's account and privilege tables (``server.sql`` as root)."""
    present = {
        str(name)
        for (name,) in server.sql(
            "SELECT TABLE_NAME FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_TYPE = 'BASE TABLE'"
        )
    }
    found: dict[str, str] = {}
    for table in ACCOUNT_TABLES:
        if table in present:
            rows = server.sql(f"SELECT * FROM mysql.`{table}`")
            found[f"mysql.{table}"] = _digest(sorted(repr(row) for row in rows))
    assert found, "no account table found"
    return found


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The places whose contents differ (or that appeared or vanished)."""
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
