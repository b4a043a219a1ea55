"""The cases of issue 10 on both server families: an account that uses roles, wildcard
schema names, dynamic privileges, partial revokes or account policies is either copied
exactly to its twin (SHOW CREATE USER and SHOW GRANTS of every host, as the server
prints them, equal but for name and password hash) or refused with a typed error
before anything changes."""

from __future__ import annotations

from collections.abc import Callable

import pymysql
import pytest

from rotator.errors import RotatorError, UnsafeTargetError
from rotator.handler import UnexpectedError
from tests.support.aws import stages
from tests.support.families import only_on, set_default_role
from tests.support.servers import DatabaseServer
from tests.support.world import World, accounts_snapshot

OUTCOMES = ["created", "twin-synced", "twin-verified", "promoted"]
SINGLE_USER_OUTCOMES = ["created", "password-changed", "login-ok", "promoted"]

def copy_or_refusal(world: World) -> RotatorError | None:
    """One rotation that either completes with an exact twin or is refused, typed, with no
    change to any account or to AWSCURRENT. Returns the refusal (None: it completed)."""
    before, current = accounts_snapshot(world.server), world.app_secret()
    try:
        outcomes = [result["outcome"] for result in world.rotate()]
    except RotatorError as refusal:
        assert not isinstance(refusal, UnexpectedError), f"not a typed refusal: {refusal}"
        assert accounts_snapshot(world.server) == before, "refused after changing an account"
        assert world.app_secret() == current
        return refusal
    assert outcomes == OUTCOMES
    source, twin = world.account("app"), world.account("app_clone")
    assert twin == source, "the twin is not an exact copy"
    return None


def refused_before_change(world: World) -> RotatorError:
    """One rotation that must fail typed and change nothing; returns the error."""
    before, current = accounts_snapshot(world.server), world.app_secret()
    with pytest.raises(RotatorError) as raised:
        world.rotate()
    assert not isinstance(raised.value, UnexpectedError), f"not a typed error: {raised.value}"
    assert accounts_snapshot(world.server) == before, "an account changed"
    assert world.app_secret() == current
    assert "AWSCURRENT" in stages(world.client, world.app_arn)[current_version(world)]
    return raised.value


def current_version(world: World) -> str:
    return next(v for v, labels in stages(world.client, world.app_arn).items() if "AWSCURRENT" in labels)


# -- roles, including Aurora's ------------------------------------------------------------


def test_roles_named_like_aurora_s_and_a_default_role_are_copied(world: World, db: DatabaseServer) -> None:
    """A role named like Aurora's AWS_LOAD_S3_ACCESS (on MySQL: an account at '%') and a
    default role reach the twin exactly, or the rotation is refused before any change."""
    db.sql("CREATE ROLE AWS_LOAD_S3_ACCESS")
    db.sql("CREATE ROLE reporting")
    db.sql("GRANT SELECT ON `reports`.* TO reporting")
    for role in ("AWS_LOAD_S3_ACCESS", "reporting"):
        db.sql(f"GRANT {role} TO 'app'@'%'")
        db.sql(f"GRANT {role} TO 'admin'@'%' WITH ADMIN OPTION")  # MariaDB: re-granting a role needs it
    set_default_role(db, "reporting", "app")
    copy_or_refusal(world)


# -- names that look like patterns ---------------------------------------------------------


def test_wildcard_schema_grant_is_copied(world: World, db: DatabaseServer) -> None:
    """``GRANT SELECT ON `app\\_%`.*`` (a schema pattern) reaches the twin as the same pattern."""
    db.sql("GRANT SELECT ON `app\\_%`.* TO 'app'@'%'")
    copy_or_refusal(world)


# -- MySQL's own privileges --------------------------------------------------------------


@only_on("mysql", "dynamic privileges are MySQL 8's")
def test_dynamic_privileges_keep_their_own_grant_option(world: World, db: DatabaseServer) -> None:
    """One dynamic privilege WITH GRANT OPTION and one without: the twin holds each as the user does."""
    db.sql("GRANT XA_RECOVER_ADMIN ON *.* TO 'app'@'%' WITH GRANT OPTION")
    db.sql("GRANT BACKUP_ADMIN ON *.* TO 'app'@'%'")
    copy_or_refusal(world)


@only_on("mysql", "partial revokes are MySQL 8's")
def test_partial_revoke_is_copied(partial_revokes: DatabaseServer, world: World) -> None:
    """With partial_revokes=ON, ``SELECT ON *.*`` minus ``mysql.*`` reaches the twin minus the same schema."""
    partial_revokes.sql("GRANT SELECT ON *.* TO 'app'@'%'")
    partial_revokes.sql("REVOKE SELECT ON `mysql`.* FROM 'app'@'%'")
    copy_or_refusal(world)


# -- account states ----------------------------------------------------------------------


@only_on("mysql", "PASSWORD REQUIRE CURRENT is MySQL 8's")
def test_single_user_with_password_require_current(world_factory: Callable[..., World], db: DatabaseServer) -> None:
    """A user that must name its current password to change it rotates itself (MySQL's REPLACE clause)."""
    world = world_factory(single_user=True)
    db.sql("ALTER USER 'app'@'%' PASSWORD REQUIRE CURRENT")
    old = world.app_secret()
    assert [result["outcome"] for result in world.rotate()] == SINGLE_USER_OUTCOMES
    assert world.can_use_grants(world.app_secret())
    with pytest.raises(pymysql.err.OperationalError):
        world.connect(old).close()


ACCOUNT_STATES = {"locked": "ACCOUNT LOCK", "expired": "PASSWORD EXPIRE"}


@pytest.mark.parametrize("state", ACCOUNT_STATES)
def test_single_user_locked_or_expired_is_a_typed_error(
    world_factory: Callable[..., World], db: DatabaseServer, state: str
) -> None:
    """A single user whose account is locked or whose password expired: a typed error that says so, no change."""
    world = world_factory(single_user=True)
    db.sql(f"ALTER USER 'app'@'%' {ACCOUNT_STATES[state]}")
    assert state in str(refused_before_change(world))


def test_locked_twin_is_refused_before_its_password_changes(world: World, db: DatabaseServer) -> None:
    """An existing twin that is locked (someone's decision) stops setSecret with a typed error that says so,
    before any change."""
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1'")
    db.sql("ALTER USER 'app_clone'@'%' ACCOUNT LOCK")
    refusal = refused_before_change(world)
    assert isinstance(refusal, UnsafeTargetError) and "locked" in str(refusal)


def test_expired_twin_is_detected_and_healed_by_its_new_password(
    world: World, db: DatabaseServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing twin whose password expired is seen before the change (a warning naming it) and healed:
    the new password clears the expiry, and the rotation completes with an exact, usable twin."""
    world.rotate()  # app_clone is current; app, idle until the next rotation, is the twin
    db.sql("ALTER USER 'app'@'%' PASSWORD EXPIRE")
    capsys.readouterr()
    assert [result["outcome"] for result in world.rotate()] == OUTCOMES
    assert "the twin's password has expired" in capsys.readouterr().out
    assert world.account("app") == world.account("app_clone")
    assert world.can_use_grants(world.app_secret())
