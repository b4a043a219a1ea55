"""Full rotations against real servers with verified TLS, driven through the handler (MariaDB and
MySQL; the engine-neutral cases, marked ``every_engine``, on PostgreSQL 15 and 18 too)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rotator.errors import AdminPrivilegeError, PrivilegeMismatchError
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, stages
from tests.support.families import default_roles, role_grants, set_default_role
from tests.support.world import World

OUTCOMES = ["created", "twin-synced", "twin-verified", "promoted"]


def assert_twins_equal(world: World, hosts: tuple[str, ...] = ("%",)) -> None:
    for host in hosts:
        assert world.grants("app", host) == world.grants("app_clone", host)


@pytest.mark.every_engine
def test_two_rotations_alternate_users_and_keep_both_credentials_working(world: World, leak_check: LeakCheck) -> None:
    """The first rotation creates the twin, the second alternates back; current and previous both log in."""
    first = world.rotate()
    assert [r["outcome"] for r in first] == OUTCOMES
    assert world.app_secret()["username"] == "app_clone"
    assert world.app_secret("AWSPREVIOUS")["username"] == "app"
    assert world.can_use_grants(world.app_secret()) and world.can_use_grants(world.app_secret("AWSPREVIOUS"))
    assert_twins_equal(world)

    second = world.rotate()
    assert [r["outcome"] for r in second] == OUTCOMES
    current, previous = world.app_secret(), world.app_secret("AWSPREVIOUS")
    assert (current["username"], previous["username"]) == ("app", "app_clone")
    assert world.can_use_grants(current) and world.can_use_grants(previous)
    assert_twins_equal(world)
    leak_check.assert_clean(*world.all_passwords())


@pytest.mark.every_engine
def test_pending_secret_keeps_every_field_and_changes_only_credentials(world_factory: Callable[..., World]) -> None:
    """Unknown fields of an existing secret survive a rotation unchanged."""
    world = world_factory(extra_secret_fields={"dbClusterIdentifier": "orders", "team": "payments", "ssl": "true"})
    before = world.app_secret()
    world.rotate()
    after = world.app_secret()
    assert {k: v for k, v in after.items() if k not in ("username", "password")} == {
        k: v for k, v in before.items() if k not in ("username", "password")
    }
    assert after["password"] != before["password"]


def test_host_specific_accounts_get_a_twin_at_each_host(world_factory: Callable[..., World]) -> None:
    """A user at several hosts gets its twin at exactly those hosts, each with that host's grants."""
    world = world_factory(hosts=("127.0.0.1", "10.%"))
    world.server.sql("GRANT SELECT ON `reports`.* TO 'app'@'10.%'")  # hosts may differ in privileges
    world.server.sql("CREATE USER 'app_clone'@'192.168.%' IDENTIFIED BY 'stray-pw-1'")  # a stray twin account
    world.rotate()
    hosts = sorted(h for (h,) in world.server.sql("SELECT Host FROM mysql.user WHERE User = 'app_clone'"))
    assert hosts == ["10.%", "127.0.0.1"]
    assert_twins_equal(world, ("127.0.0.1", "10.%"))
    assert world.can_use_grants(world.app_secret())


def test_grant_option_roles_tls_requirement_and_limits_are_copied(world_factory: Callable[..., World]) -> None:
    """WITH GRANT OPTION, a role with admin option and default role, REQUIRE SSL and limits all reach the twin."""
    world = world_factory()
    sql = world.server.sql
    sql("CREATE ROLE reporting")
    sql("GRANT SELECT ON `reports`.* TO reporting")
    sql("GRANT reporting TO 'app'@'%' WITH ADMIN OPTION")
    sql("GRANT reporting TO 'admin'@'%' WITH ADMIN OPTION")  # re-granting a role needs the admin option
    set_default_role(world.server, "reporting", "app")
    sql("GRANT UPDATE ON `reports`.`summary` TO 'app'@'%' WITH GRANT OPTION")
    sql("GRANT SELECT (`total`) ON `reports`.`summary` TO 'app'@'%'")
    sql("ALTER USER 'app'@'%' REQUIRE SSL WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20")
    world.rotate()
    assert_twins_equal(world)
    twin = sql("SELECT ssl_type, max_questions, max_user_connections FROM mysql.user WHERE User='app_clone'")
    assert twin == [("ANY", 5000, 20)]
    assert default_roles(world.server, "app_clone") == ["reporting"]
    assert role_grants(world.server, "app_clone") == [("reporting", True)]
    assert world.can_use_grants(world.app_secret())


def test_extra_privileges_of_the_twin_are_revoked(world: World) -> None:
    """A grant given only to the non-current twin is undone at the next rotation."""
    world.rotate()  # app_clone is current, app is the twin now
    world.server.sql("GRANT DROP ON *.* TO 'app'@'%'")
    world.server.sql("GRANT SELECT ON `mysql`.* TO 'app'@'%'")
    world.rotate()
    assert "DROP" not in " ".join(world.grants("app"))
    assert_twins_equal(world)


def test_privilege_changes_on_the_current_user_are_carried_to_the_twin(world: World) -> None:
    """The current user is the source of truth: grants added or revoked between rotations follow."""
    world.rotate()
    world.server.sql("GRANT CREATE ON `appdb`.* TO 'app_clone'@'%'")
    world.server.sql("REVOKE SELECT ON `reports`.`summary` FROM 'app_clone'@'%'")
    world.rotate()
    assert world.app_secret()["username"] == "app"
    assert_twins_equal(world)
    assert any("CREATE" in line for line in world.grants("app"))


@pytest.mark.every_engine
def test_every_step_delivered_twice_converges(world: World) -> None:
    """Each step run twice in a row (duplicate delivery) leaves the same exact end state."""
    assert world.invoke is not None
    token = begin_rotation(world.client, world.app_arn)
    outcomes = []
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        outcomes.append(world.invoke(event(world.app_arn, token, step))["outcome"])
        outcomes.append(world.invoke(event(world.app_arn, token, step))["outcome"])
    assert outcomes == [
        "created",
        "pending-exists",
        "twin-synced",
        "twin-synced",
        "twin-verified",
        "already-tested",
        "promoted",
        "already-current",
    ]
    assert "AWSCURRENT" in stages(world.client, world.app_arn)[token]
    assert_twins_equal(world)


def test_setsecret_refused_by_the_preflight_is_retried_to_exact_privileges(world: World, leak_check: LeakCheck) -> None:
    """The admin lacks one grantable privilege: setSecret refuses before any change and nothing completes;
    fixed, the retry converges."""
    assert world.invoke is not None
    world.server.sql("CREATE DATABASE audit")
    world.server.sql("GRANT SELECT ON `audit`.* TO 'app'@'%'")
    world.server.sql("REVOKE ALL PRIVILEGES, GRANT OPTION FROM 'admin'@'%'")
    world.server.sql("GRANT ALL PRIVILEGES ON `appdb`.* TO 'admin'@'%' WITH GRANT OPTION")
    world.server.sql("GRANT ALL PRIVILEGES ON `reports`.* TO 'admin'@'%' WITH GRANT OPTION")
    world.server.sql("GRANT CREATE USER, SELECT ON *.* TO 'admin'@'%'")
    before = world.app_secret()
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(AdminPrivilegeError) as raised:
        world.invoke(event(world.app_arn, token, "setSecret"))
    leak_check.record(raised.value)
    assert "cannot grant 1 of the 6 privilege(s) 'app' holds: SELECT ON `audit`.*" in str(raised.value)
    assert world.server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]
    # testSecret refuses the missing twin, so finishSecret is never reached.
    with pytest.raises(PrivilegeMismatchError) as mismatch:
        world.invoke(event(world.app_arn, token, "testSecret"))
    leak_check.record(mismatch.value)
    assert "hosts differ" in str(mismatch.value)
    assert world.app_secret() == before and world.can_use_grants(before)

    world.server.sql("GRANT SELECT ON `audit`.* TO 'admin'@'%' WITH GRANT OPTION")
    outcomes = [
        world.invoke(event(world.app_arn, token, s))["outcome"]
        for s in ("createSecret", "setSecret", "testSecret", "finishSecret")
    ]
    assert outcomes == ["pending-exists", "twin-synced", "twin-verified", "promoted"]
    assert_twins_equal(world)
    leak_check.assert_clean(*world.all_passwords())


def test_testsecret_refuses_a_twin_changed_after_setsecret(world: World) -> None:
    """A privilege added to the twin between setSecret and testSecret fails the test step."""
    assert world.invoke is not None
    token = begin_rotation(world.client, world.app_arn)
    for step in ("createSecret", "setSecret"):
        world.invoke(event(world.app_arn, token, step))
    world.server.sql("GRANT DROP ON `appdb`.* TO 'app_clone'@'%'")
    with pytest.raises(PrivilegeMismatchError, match="only 'app_clone': GRANT DELETE, DROP, INSERT, SELECT, UPDATE ON"):
        world.invoke(event(world.app_arn, token, "testSecret"))
    assert stages(world.client, world.app_arn)[token] == ["AWSPENDING"]
    # The retry of the whole rotation (as Secrets Manager does) repairs the twin. This
    # secret never completed a rotation, so the changed twin counts as taken over.
    results = world.rotate(token)
    assert [r["outcome"] for r in results] == ["pending-exists", "twin-taken-over", "twin-verified", "promoted"]
    assert_twins_equal(world)


@pytest.mark.every_engine
def test_rotation_token_is_passed_to_put_secret_value(world: World) -> None:
    """createSecret forwards RotationToken to PutSecretValue (needed for cross-account rotation)."""
    assert world.invoke is not None
    calls: list[dict[str, object]] = []
    from rotator import handler

    client = handler._container().api.client
    client.meta.events.register(
        "provide-client-params.secrets-manager.PutSecretValue", lambda params, **_: calls.append(dict(params))
    )
    token = begin_rotation(world.client, world.app_arn)
    rotation_token = "rt-" + "9" * 40
    world.invoke(event(world.app_arn, token, "createSecret", rotation_token=rotation_token))
    assert calls and calls[0]["RotationToken"] == rotation_token
    assert calls[0]["ClientRequestToken"] == token and calls[0]["VersionStages"] == ["AWSPENDING"]
