"""``rotator check`` against the real MariaDB: for every reason a rotation can fail
that check knows about, check fails with that reason *and* a rotation of the same
secret really fails; when check passes, the rotation succeeds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rotator.errors import (
    AccountLockedError,
    AccountReadError,
    AdminPrivilegeError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    RotatorError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
    UnsafeTargetError,
    UnsupportedDatabaseError,
)
from rotator.iam_policies import resource_policy
from tests.support.aws import secret_value
from tests.support.cli import Cli, CliRun
from tests.support.families import account_tables_reader, max_user_length, only_on, set_default_role, socket_host
from tests.support.servers import DatabaseServer, free_port, make_pki
from tests.support.world import World

pytestmark = pytest.mark.integration

Build = Callable[..., World]


def findings(run: CliRun) -> dict[str, dict[str, str]]:
    (report,) = run.json()["secrets"]
    return {finding["check"]: finding for finding in report["findings"]}


def put_current(world: World, arn: str, **changes: Any) -> None:
    value = {**secret_value(world.client, arn), **changes}
    value = {key: item for key, item in value.items() if item is not None}
    world.client.put_secret_value(SecretId=arn, SecretString=__import__("json").dumps(value))


def test_a_healthy_secret_passes_every_check(world: World, db_cli: Cli) -> None:
    """The default world, locked as `rotator lock` locks it: every finding ok, exit 0; users and
    hosts shown, no password anywhere."""
    lock = resource_policy(["vpce-0123456789abcdef0"], ["arn:aws:iam::123456789012:role/break-glass"])
    world.client.put_resource_policy(SecretId=world.app_arn, ResourcePolicy=json.dumps(lock))
    run = db_cli("check", world.app_arn)
    assert run.code == 0, run.text
    for check in (
        "secret.value", "admin.secret", "db.login", "db.admin-login", "app.accounts",
        "twin.name", "admin.create-user", "admin.grant", "admin.read-definitions", "twin.state", "rotation.state",
        "secret.lock",
    ):  # fmt: skip
        assert f"ok    {check}" in run.out, check
    assert "'app' logs in to 127.0.0.1" in run.out and "verified TLS" in run.out
    assert "admin 'admin'@'%' can grant all 5 privilege(s) of 'app'" in run.out
    assert "fail" not in run.out and "warn" not in run.out
    assert run.leaks(world.all_passwords()) == []
    assert [step["outcome"] for step in world.rotate()][-1] == "promoted"


# -- each failure check knows, and the rotation that proves it --------------------


def wrong_app_password(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    db.sql("ALTER USER 'app'@'%' IDENTIFIED BY 'changed-behind-our-back-1'")
    return world


def wrong_admin_password(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    db.sql("ALTER USER 'admin'@'%' IDENTIFIED BY 'changed-behind-our-back-2'")
    return world


def untrusted_certificate(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    other_ca = make_pki(tmp / "other-ca", "some other CA").ca_file
    return build(extra_secret_fields={"ssl_ca": str(other_ca)})


def nothing_listening(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(extra_secret_fields={"port": free_port()})


def admin_without_create_user(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(
        admin_grants=(
            "GRANT SELECT ON *.* TO {account} WITH GRANT OPTION",
            "GRANT INSERT, UPDATE, DELETE ON `appdb`.* TO {account} WITH GRANT OPTION",
        )
    )


def admin_blind_to_accounts(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(
        admin_grants=(
            "GRANT CREATE USER ON *.* TO {account}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `appdb`.* TO {account} WITH GRANT OPTION",
            "GRANT SELECT ON `reports`.* TO {account} WITH GRANT OPTION",
        )
    )


def admin_cannot_grant_a_table(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(
        admin_grants=(
            "GRANT CREATE USER ON *.* TO {account}",
            "GRANT SELECT ON `mysql`.* TO {account}",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON `appdb`.* TO {account} WITH GRANT OPTION",
        )
    )


def admin_reads_account_tables_only(
    build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest
) -> World:
    return build(admin_grants=account_tables_reader(db))


def admin_without_role_admin(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    db.sql("CREATE ROLE reporting")
    db.sql("GRANT SELECT ON `reports`.* TO reporting")
    world = build(app_grants=("GRANT SELECT ON `appdb`.* TO {account}", "GRANT reporting TO {account}"))
    if db.family == "mysql":  # ALL PRIVILEGES includes ROLE_ADMIN, which grants any role on MySQL
        db.sql("REVOKE ROLE_ADMIN ON *.* FROM 'admin'@'%'")
    return world


def admin_without_dynamic_grant_option(
    build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest
) -> World:
    world = build(app_grants=("GRANT SELECT ON `appdb`.* TO {account}", "GRANT BACKUP_ADMIN ON *.* TO {account}"))
    db.sql("REVOKE BACKUP_ADMIN ON *.* FROM 'admin'@'%'")
    db.sql("GRANT BACKUP_ADMIN ON *.* TO 'admin'@'%'")  # held, but not its own grant option
    return world


def host_without_password(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    socket_host(db)
    return world


def twin_locked(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1' ACCOUNT LOCK")
    return world


def twin_with_system_user(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1'")
    db.sql("GRANT SYSTEM_USER ON *.* TO 'app_clone'@'%'")
    db.sql("REVOKE SYSTEM_USER ON *.* FROM 'admin'@'%'")
    return world


def proxy_not_grantable(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    db.sql("CREATE USER 'base'@'%' IDENTIFIED BY 'base-password-1'")
    db.sql("GRANT PROXY ON 'base'@'%' TO 'app'@'%'")
    return world


def app_locked(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    world = build()
    db.sql("ALTER USER 'app'@'%' ACCOUNT LOCK")
    return world


def twin_name_too_long(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(app_user="a" * (max_user_length(db) - 4))  # the user fits; its twin (+ "_clone") does not


def admin_on_another_server(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    other: DatabaseServer = request.getfixturevalue("second_server")
    world = build()
    password = world.admin_secret()["password"]
    other.sql("DROP USER IF EXISTS 'admin'@'%'")
    other.sql("CREATE USER 'admin'@'%%' IDENTIFIED BY %s", (password,))
    other.sql("GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION")
    put_current(world, world.admin_arn, port=other.port)
    return world


def admin_secret_missing(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(extra_secret_fields={"masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf"})


def unusable_value(build: Build, db: DatabaseServer, tmp: Path, request: pytest.FixtureRequest) -> World:
    return build(extra_secret_fields={"engine": "oracle"})


MYSQL_ONLY = only_on("mysql", "dynamic privileges and SYSTEM_USER are MySQL 8's")


@pytest.mark.parametrize(
    ("scenario", "check", "words", "error"),
    [
        (wrong_app_password, "db.login", "was refused", DatabaseAuthError),
        (wrong_admin_password, "db.admin-login", "admin 'admin'", DatabaseAuthError),
        (untrusted_certificate, "db.tls", "TLS verification", DatabaseTLSError),
        (nothing_listening, "db.reach", "cannot reach", DatabaseUnreachableError),
        (admin_without_create_user, "admin.create-user", "lacks CREATE USER", AdminPrivilegeError),
        (admin_blind_to_accounts, "admin.read-accounts", "SELECT command denied", DatabaseError),
        (
            admin_reads_account_tables_only,
            "admin.read-definitions",
            "cannot read the definition of 'app'@'%'",
            AccountReadError,
        ),
        (admin_cannot_grant_a_table, "admin.grant", "SELECT ON `reports`.`summary`", AdminPrivilegeError),
        (admin_without_role_admin, "admin.roles", "`reporting`", AdminPrivilegeError),
        pytest.param(
            admin_without_dynamic_grant_option,
            "admin.grant",
            "BACKUP_ADMIN ON *.*",
            AdminPrivilegeError,
            marks=MYSQL_ONLY,
            id="admin_without_dynamic_grant_option",
        ),
        (host_without_password, "app.copy", "authentication plugin", UnsupportedDatabaseError),
        (twin_locked, "target.accounts", "is locked", UnsafeTargetError),
        pytest.param(
            twin_with_system_user,
            "admin.system-user",
            "lacks SYSTEM_USER",
            AdminPrivilegeError,
            marks=MYSQL_ONLY,
            id="twin_with_system_user",
        ),
        (proxy_not_grantable, "admin.proxy", "PROXY ON 'base'@'%'", AdminPrivilegeError),
        (app_locked, "db.login", "locked", AccountLockedError),
        (twin_name_too_long, "twin.name", "characters; the server allows", UnsupportedDatabaseError),
        (admin_on_another_server, "db.same-server", "different server", SecretMismatchError),
        (admin_secret_missing, "admin.secret", "not found", SecretStoreError),
        (unusable_value, "secret.value", "unsupported engine", SecretFormatError),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_check_fails_for_each_reason_a_rotation_would_fail(
    world_factory: Build,
    db: DatabaseServer,
    db_cli: Cli,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    scenario: Callable[..., World],
    check: str,
    words: str,
    error: type[RotatorError],
) -> None:
    """Check names the failing pre-condition (exit 1, with an action), leaks no password,
    and a rotation of the same secret fails with the refusal check predicted."""
    world = scenario(world_factory, db, tmp_path, request)
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 1, run.text
    found = findings(run)
    assert found[check]["level"] == "fail", found
    assert words in found[check]["message"]
    assert run.leaks(world.all_passwords()) == []
    human = db_cli("check", world.app_arn)
    assert f"fail  {check}" in human.out
    with pytest.raises(RotatorError) as raised:
        world.rotate()
    assert type(raised.value) is error, raised.value
    assert "AWSCURRENT" in world.client.describe_secret(SecretId=world.app_arn)["VersionIdsToStages"].get(
        world.client.get_secret_value(SecretId=world.app_arn, VersionStage="AWSCURRENT")["VersionId"], []
    )


# -- what check lets through --------------------------------------------------------


def test_a_twin_that_differs_is_a_warning_and_the_rotation_succeeds(
    world: World, db: DatabaseServer, db_cli: Cli
) -> None:
    """A leftover twin with other privileges is a warning (taken over: rotator never rotated this
    secret): setSecret brings it in line."""
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1'")
    db.sql("GRANT DELETE ON `reports`.* TO 'app_clone'@'%'")
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 0, run.text
    twin = findings(run)["twin.takeover"]
    assert twin["level"] == "warn" and "extra DELETE ON `reports`.*" in twin["message"]
    assert [step["outcome"] for step in world.rotate()][-1] == "promoted"
    assert findings(db_cli("check", world.app_arn, "--json"))["twin.state"]["level"] == "ok"


def test_after_a_rotation_the_twin_pair_checks_clean(world: World, db_cli: Cli) -> None:
    """Once app_clone is current, app is its twin: both exist, match, and check passes."""
    world.rotate()
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 0, run.text
    found = findings(run)
    assert "'app_clone' logs in" in found["db.login"]["message"]
    assert found["twin.state"]["message"].startswith("'app' exists and matches 'app_clone'")


def test_admin_privileges_through_a_default_role_count(world_factory: Build, db: DatabaseServer, db_cli: Cli) -> None:
    """An admin whose privileges come from its default role (as on Aurora MySQL 3) passes,
    and the rotation agrees."""
    db.sql("CREATE ROLE dba")
    db.sql("GRANT ALL PRIVILEGES ON *.* TO dba WITH GRANT OPTION")
    world = world_factory(admin_grants=("GRANT dba TO {account}",))
    set_default_role(db, "dba", "admin")
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 0, run.text
    assert findings(run)["admin.grant"]["level"] == "ok"
    assert [step["outcome"] for step in world.rotate()][-1] == "promoted"


def test_a_single_user_secret_passes_with_a_warning(world_factory: Build, db_cli: Cli) -> None:
    """Without masterarn: the login is checked, single-user mode is a warning, no admin checks."""
    world = world_factory(single_user=True)
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 0, run.text
    found = findings(run)
    assert found["secret.mode"]["level"] == "warn"
    assert found["db.login"]["level"] == "ok"
    assert "admin.grant" not in found
    assert [step["outcome"] for step in world.rotate()][-1] == "promoted"


def test_an_admin_secret_without_host_logs_in_only_where_an_operator_confirmed(
    world: World, db_cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An RDS-managed admin secret (username and password only) is fine once its host is
    confirmed (ADMIN_SECRET_HOSTS): check names the host and what confirmed it. Without,
    admin.host fails and the admin is not logged in anywhere (tests/integration/test_admin_host.py)."""
    admin = secret_value(world.client, world.admin_arn)
    world.client.put_secret_value(
        SecretId=world.admin_arn,
        SecretString=json.dumps({"username": admin["username"], "password": admin["password"]}),
    )
    refused = findings(db_cli("check", world.app_arn, "--json"))
    assert refused["admin.host"]["level"] == "fail" and "db.admin-login" not in refused
    monkeypatch.setenv("ADMIN_SECRET_HOSTS", f"{world.admin_arn}={world.server.host}")
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 0, run.text
    found = findings(run)
    assert "no host of its own" in found["admin.secret"]["message"]
    assert found["admin.host"]["message"] == (
        f"the admin logs in to {world.server.host}:{world.server.port} (ADMIN_SECRET_HOSTS)"
    )
    assert found["db.admin-login"]["level"] == "ok"
