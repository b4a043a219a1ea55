"""Single-user rotation without a window: dual passwords (MySQL 8.0.14+), and the same
user name with the password set by the admin (``"rotation_strategy": "single-user"``
with a ``masterarn``: RDS Proxy's case).

On MySQL the old password stays valid as the secondary one: after a rotation both
AWSCURRENT and AWSPREVIOUS log in, as with alternating users. MariaDB has no dual
passwords: there the same rotations work with the window documented in
docs/reliability.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from rotator.errors import DatabaseAuthError, UnsafeTargetError
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, stages
from tests.support.cli import Cli, CliRun
from tests.support.families import only_on
from tests.support.observe import Emitted
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = pytest.mark.integration

SAME_USER = {"rotation_strategy": "single-user"}


def findings(run: CliRun) -> dict[str, dict[str, str]]:
    [secret] = run.json()["secrets"]
    return {finding["check"]: finding for finding in secret["findings"]}


@pytest.fixture
def dual(world_factory: Callable[..., World]) -> World:
    """Single user that may keep its current password (APPLICATION_PASSWORD_ADMIN) where the server can."""
    return world_factory(single_user=True, dual_passwords=True)


@pytest.fixture
def same_user(world_factory: Callable[..., World]) -> World:
    return world_factory(extra_secret_fields=SAME_USER)


# -- single user, its own password ------------------------------------------------------


@only_on("mysql", "dual passwords (RETAIN CURRENT PASSWORD) are MySQL 8.0.14+")
def test_single_user_keeps_the_old_password_as_the_secondary(dual: World, leak_check: LeakCheck) -> None:
    """After each rotation AWSCURRENT and AWSPREVIOUS both log in; the one before them no longer does."""
    original = dual.app_secret()
    assert [r["outcome"] for r in dual.rotate()] == [
        "created",
        "password-changed-retaining-current",
        "login-ok-both",
        "promoted",
    ]
    first = dual.app_secret()
    assert first["username"] == original["username"] == "app"
    assert dual.logs_in(first) and dual.logs_in(original)
    assert dual.app_secret("AWSPREVIOUS") == original
    dual.rotate()
    second = dual.app_secret()
    assert dual.logs_in(second) and dual.logs_in(first)
    assert not dual.logs_in(original)  # replaced as the secondary by the second rotation
    assert dual.can_use_grants(second) and dual.can_use_grants(first)
    assert dual.server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]
    leak_check.assert_clean(*dual.all_passwords())


@only_on("mysql", "dual passwords (RETAIN CURRENT PASSWORD) are MySQL 8.0.14+")
def test_single_user_set_secret_again_leaves_the_secondary_alone(dual: World) -> None:
    """A second setSecret (a retry) finds the pending password primary and changes nothing:
    the current password is still the secondary, not replaced by the pending one."""
    assert dual.invoke is not None
    current = dual.app_secret()
    token = begin_rotation(dual.client, dual.app_arn)
    dual.invoke(event(dual.app_arn, token, "createSecret"))
    assert dual.invoke(event(dual.app_arn, token, "setSecret"))["outcome"] == "password-changed-retaining-current"
    assert dual.invoke(event(dual.app_arn, token, "setSecret"))["outcome"] == "password-already-set"
    assert dual.logs_in(current) and dual.logs_in(dual.app_secret("AWSPENDING"))
    assert dual.invoke(event(dual.app_arn, token, "testSecret"))["outcome"] == "login-ok-both"
    dual.invoke(event(dual.app_arn, token, "finishSecret"))
    assert dual.logs_in(dual.app_secret()) and dual.logs_in(dual.app_secret("AWSPREVIOUS"))


@only_on("mysql", "the privilege dual passwords need exists on MySQL only")
def test_without_the_privilege_single_user_falls_back_loudly(
    world_factory: Callable[..., World], db_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """No APPLICATION_PASSWORD_ADMIN: rotator check says the window is there and why; the
    rotation works as before (the old password stops working) with a warning and a metric."""
    world = world_factory(single_user=True)
    window = findings(db_cli("check", world.app_arn, "--json"))["secret.mode"]
    assert window["level"] == "warn"
    assert window["message"].startswith("single-user window: yes, because the user lacks APPLICATION_PASSWORD_ADMIN")
    assert "GRANT APPLICATION_PASSWORD_ADMIN" in window["action"]
    capsys.readouterr()
    original = world.app_secret()
    outcomes = [r["outcome"] for r in world.rotate()]
    assert outcomes == ["created", "password-changed-without-dual", "login-ok", "promoted"]
    output = capsys.readouterr().out
    assert not [password for password in world.all_passwords() if password in output]
    emitted = Emitted.parse(output)
    [warning] = [log for log in emitted.messages("WARNING") if "without dual passwords" in log["message"]]
    assert "APPLICATION_PASSWORD_ADMIN" in warning["reason"]
    assert emitted.metric("DualPasswordFallback", Step="setSecret") == [1.0]
    assert not world.logs_in(original) and world.logs_in(world.app_secret())


def test_rotator_check_tells_whether_single_user_has_a_window(dual: World, db_cli: Cli, db: DatabaseServer) -> None:
    """MySQL with the privilege: no window (ok); MariaDB: a window, because it has no dual passwords."""
    window = findings(db_cli("check", dual.app_arn, "--json"))["secret.mode"]
    if db.family == "mysql":
        assert window["level"] == "ok" and window["message"].startswith("single-user window: no")
    else:
        assert window["level"] == "warn"
        assert window["message"].startswith("single-user window: yes, because mariadb")
        assert "has no dual passwords" in window["message"]


# -- the same user, its password set by the admin ------------------------------------------


def test_same_user_by_admin_keeps_the_user_name(same_user: World, leak_check: LeakCheck, db: DatabaseServer) -> None:
    """The admin sets the password of the same user: no twin is ever made; on MySQL the old
    password stays the secondary (both versions log in), on MariaDB it stops working."""
    original = same_user.app_secret()
    outcomes = [r["outcome"] for r in same_user.rotate()]
    new = same_user.app_secret()
    assert new["username"] == original["username"] == "app" and new["password"] != original["password"]
    assert same_user.can_use_grants(new)
    if db.family == "mysql":
        assert outcomes == ["created", "password-set-retaining-current", "login-ok-both", "promoted"]
        assert same_user.logs_in(original)
        same_user.rotate()
        assert same_user.logs_in(same_user.app_secret()) and same_user.logs_in(new)
        assert not same_user.logs_in(original)
    else:
        assert outcomes == ["created", "password-set", "login-ok", "promoted"]
        assert not same_user.logs_in(original)
    assert db.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]
    leak_check.assert_clean(*same_user.all_passwords())


def test_same_user_by_admin_set_secret_again_converges(same_user: World, db: DatabaseServer) -> None:
    """A retried setSecret leaves what the first made: on MySQL the account is marked with the
    version (one statement with the change), so the secondary stays the current password."""
    assert same_user.invoke is not None
    current = same_user.app_secret()
    token = begin_rotation(same_user.client, same_user.app_arn)
    same_user.invoke(event(same_user.app_arn, token, "createSecret"))
    first = same_user.invoke(event(same_user.app_arn, token, "setSecret"))["outcome"]
    second = same_user.invoke(event(same_user.app_arn, token, "setSecret"))["outcome"]
    pending = same_user.app_secret("AWSPENDING")
    assert same_user.logs_in(pending)
    if db.family == "mysql":
        assert (first, second) == ("password-set-retaining-current", "password-already-set")
        assert same_user.logs_in(current)
        [(attributes,)] = db.sql("SELECT ATTRIBUTE FROM information_schema.USER_ATTRIBUTES WHERE USER = 'app'")
        assert json.loads(attributes) == {"rotator_password_version": token}
    else:
        assert (first, second) == ("password-set", "password-set")  # the same password again: harmless
    assert same_user.invoke(event(same_user.app_arn, token, "testSecret"))["outcome"].startswith("login-ok")
    same_user.invoke(event(same_user.app_arn, token, "finishSecret"))
    assert "AWSCURRENT" in stages(same_user.client, same_user.app_arn)[token]


def test_same_user_by_admin_never_changes_the_admin(world_factory: Callable[..., World], db_cli: Cli) -> None:
    """An application secret holding the admin's own user is refused before anything is written."""
    world = world_factory(extra_secret_fields=SAME_USER)
    assert world.invoke is not None
    admin = world.admin_secret()
    app = world.app_secret()
    world.client.put_secret_value(
        SecretId=world.app_arn,
        SecretString=json.dumps({**app, "username": admin["username"], "password": admin["password"]}),
    )
    assert findings(db_cli("check", world.app_arn, "--json"))["target.names"]["level"] == "fail"
    token = begin_rotation(world.client, world.app_arn)
    with pytest.raises(UnsafeTargetError, match="admin secret's own user"):
        world.invoke(event(world.app_arn, token, "createSecret"))
    assert world.logs_in(world.admin_secret())


def test_rotator_check_reads_a_same_user_secret(same_user: World, db_cli: Cli, db: DatabaseServer) -> None:
    """check knows the strategy: no twin checks, the admin may change passwords, and the window."""
    found = findings(db_cli("check", same_user.app_arn, "--json"))
    assert "twin.name" not in found and "twin.state" not in found
    assert found["admin.create-user"]["level"] == "ok" and found["target.accounts"]["level"] == "ok"
    assert "password set by the admin" in found["secret.value"]["message"]
    assert found["secret.mode"]["level"] == ("ok" if db.family == "mysql" else "warn")


def test_test_secret_refuses_a_pending_password_the_server_does_not_have(dual: World, leak_check: LeakCheck) -> None:
    """testSecret before setSecret: the pending login is refused, typed and named, and the
    version is not labelled tested (finishSecret will not promote it)."""
    assert dual.invoke is not None
    token = begin_rotation(dual.client, dual.app_arn)
    dual.invoke(event(dual.app_arn, token, "createSecret"))
    refused = r"^.*: user 'app' was refused by 127\.0\.0\.1:\d+ \(error 1045\)$"
    with pytest.raises(DatabaseAuthError, match=refused) as raised:
        dual.invoke(event(dual.app_arn, token, "testSecret"))
    leak_check.record(raised.value)
    assert stages(dual.client, dual.app_arn)[token] == ["AWSPENDING"]
    assert dual.logs_in(dual.app_secret())
    leak_check.assert_clean(*dual.all_passwords())
