"""``rotator attach`` over a mix of secrets on the real MariaDB: the ones whose
rotation would work are attached; the ones it would not are refused, with why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.cli import Cli
from tests.support.families import max_user_length
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = pytest.mark.integration


def function_of(world: World, arn: str) -> str | None:
    return world.client.describe_secret(SecretId=arn).get("RotationLambdaARN") or None


def test_attach_over_good_and_bad_databases(
    world_factory: Callable[..., World], db_cli: Cli, rotation_function: str, aws: Any, db: DatabaseServer
) -> None:
    """Two healthy secrets are attached; a secret whose admin cannot grant a table and one whose
    twin name is too long are refused with their failed checks; the summary lists both."""
    good = world_factory()
    also_good = world_factory(app_user="billing", admin_user="admin_b", name_prefix="b-")
    weak_admin = world_factory(
        app_user="orders",
        admin_user="admin_c",
        name_prefix="c-",
        admin_grants=(
            "GRANT CREATE USER ON *.* TO {account}",
            "GRANT SELECT ON `mysql`.* TO {account}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `appdb`.* TO {account} WITH GRANT OPTION",
        ),
    )
    long_name = world_factory(app_user="x" * (max_user_length(db) - 3), admin_user="admin_d", name_prefix="d-")
    arns = [good.app_arn, also_good.app_arn, weak_admin.app_arn, long_name.app_arn]

    run = db_cli(
        "attach", *arns, "--function-arn", rotation_function, "--schedule", "rate(30 days)", "--duration", "4", "--json"
    )
    assert run.code == 1, run.text
    results = {entry["name"]: entry for entry in run.json()["secrets"]}
    assert results["app-db"]["result"] == "attached"
    assert results["b-app-db"]["result"] == "attached"
    assert results["c-app-db"]["result"] == "refused" and "admin.grant" in results["c-app-db"]["detail"]
    assert results["d-app-db"]["result"] == "refused" and "twin.name" in results["d-app-db"]["detail"]
    assert function_of(good, good.app_arn) == rotation_function
    assert function_of(good, also_good.app_arn) == rotation_function
    assert function_of(good, weak_admin.app_arn) is None
    assert function_of(good, long_name.app_arn) is None
    every_password = set().union(*(world.all_passwords() for world in (good, also_good, weak_admin, long_name)))
    assert run.leaks(every_password) == []

    human = db_cli("attach", weak_admin.app_arn, "--function-arn", rotation_function, "--schedule", "rate(30 days)")
    assert human.code == 1
    assert "fail  admin.grant" in human.out
    assert "summary: 1 refused" in human.out
