"""The cases of issue 10 on both server families: an account that uses roles, wildcard
schema names, dynamic privileges, partial revokes or account policies is either copied
exactly to its twin (SHOW CREATE USER and SHOW GRANTS of every host, as the server
prints them, equal but for name and password hash) or refused with a typed error
before anything changes. ``fails_on`` marks what rotator gets wrong today."""

from __future__ import annotations

from collections.abc import Callable

import pymysql
import pytest

from rotator.errors import RotatorError
from rotator.handler import UnexpectedError
from tests.support.aws import stages
from tests.support.families import fails_on, only_on, set_default_role
from tests.support.servers import DatabaseServer
from tests.support.world import World, accounts_snapshot

OUTCOMES = ["created", "twin-synced", "twin-verified", "promoted"]
SINGLE_USER_OUTCOMES = ["created", "password-changed", "login-ok", "promoted"]

# The precise failures of rotator today (issue 10), one per case: remove a mark when its fix lands.
LITERAL_PERCENT = (
    "issue 10: setSecret fails with 'unexpected ValueError' on every retry: the GRANT's SQL text holds a literal % "
    "({what}) and PyMySQL's `sql % args` raises \"unsupported format character '`' (0x60)\""
)
ROLE_AT_PERCENT = LITERAL_PERCENT.format(what="the role `AWS_LOAD_S3_ACCESS`@`%`")
SCHEMA_PATTERN = LITERAL_PERCENT.format(what="the schema pattern `app\\_%`")
DYNAMIC_GRANT_OPTION = (
    "issue 10: setSecret gives the twin 'GRANT USAGE ON *.* ... WITH GRANT OPTION' (the static grant option on "
    "every global privilege) instead of 'GRANT XA_RECOVER_ADMIN ON *.* ... WITH GRANT OPTION'; testSecret's "
    "independent reading refuses it (PrivilegeMismatchError), after setSecret changed the twin"
)
PARTIAL_REVOKE = (
    "issue 10: setSecret gives the twin SELECT on mysql.* without the user's 'REVOKE SELECT ON `mysql`.*' (more "
    "than the user); testSecret's independent reading refuses it (PrivilegeMismatchError), after setSecret "
    "changed the twin"
)
REQUIRE_CURRENT = "issue 10: single-user setSecret fails with DatabaseError 'set own password failed (error 3892)'"
SINGLE_USER_STATE = {
    ("mariadb", "locked"): "issue 10: DatabaseAuthError \"neither the current nor the pending password of 'app' is "
    'accepted" (the login was refused with 4151, account locked; the message does not say so)',
    ("mariadb", "expired"): "issue 10: DatabaseError 'read server info failed (error 1820)' (password expired; "
    "the message does not say so)",
    ("mysql", "locked"): "issue 10: DatabaseError \"connecting to 127.0.0.1:PORT as user 'app' failed (error 3118)\" "
    "(account locked; the message does not say so)",
    ("mysql", "expired"): "issue 10: DatabaseAuthError \"neither the current nor the pending password of 'app' is "
    'accepted" (the login was refused with 1862, password expired; the message does not say so)',
}
TWIN_LOCKED = (
    "issue 10: setSecret changes the locked twin's password and privileges, then testSecret refuses it "
    "(PrivilegeMismatchError: ACCOUNT LOCK differs, before trying its login); nothing refuses before the change"
)
TWIN_EXPIRED = (
    "issue 10: the rotation completes: setSecret's ALTER USER ... IDENTIFIED BY clears the twin's expiry; "
    "the issue asks for a refusal before the change"
)


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


@fails_on("mysql", ROLE_AT_PERCENT)
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


@fails_on("mariadb", SCHEMA_PATTERN)
@fails_on("mysql", SCHEMA_PATTERN)
def test_wildcard_schema_grant_is_copied(world: World, db: DatabaseServer) -> None:
    """``GRANT SELECT ON `app\\_%`.*`` (a schema pattern) reaches the twin as the same pattern."""
    db.sql("GRANT SELECT ON `app\\_%`.* TO 'app'@'%'")
    copy_or_refusal(world)


# -- MySQL's own privileges --------------------------------------------------------------


@only_on("mysql", "dynamic privileges are MySQL 8's")
@fails_on("mysql", DYNAMIC_GRANT_OPTION)
def test_dynamic_privileges_keep_their_own_grant_option(world: World, db: DatabaseServer) -> None:
    """One dynamic privilege WITH GRANT OPTION and one without: the twin holds each as the user does."""
    db.sql("GRANT XA_RECOVER_ADMIN ON *.* TO 'app'@'%' WITH GRANT OPTION")
    db.sql("GRANT BACKUP_ADMIN ON *.* TO 'app'@'%'")
    copy_or_refusal(world)


@only_on("mysql", "partial revokes are MySQL 8's")
@fails_on("mysql", PARTIAL_REVOKE)
def test_partial_revoke_is_copied(partial_revokes: DatabaseServer, world: World) -> None:
    """With partial_revokes=ON, ``SELECT ON *.*`` minus ``mysql.*`` reaches the twin minus the same schema."""
    partial_revokes.sql("GRANT SELECT ON *.* TO 'app'@'%'")
    partial_revokes.sql("REVOKE SELECT ON `mysql`.* FROM 'app'@'%'")
    copy_or_refusal(world)


# -- account states ----------------------------------------------------------------------


@only_on("mysql", "PASSWORD REQUIRE CURRENT is MySQL 8's")
@fails_on("mysql", REQUIRE_CURRENT)
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


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(
            state, marks=[fails_on(family, SINGLE_USER_STATE[family, state]) for family in ("mariadb", "mysql")]
        )
        for state in ACCOUNT_STATES
    ],
)
def test_single_user_locked_or_expired_is_a_typed_error(
    world_factory: Callable[..., World], db: DatabaseServer, state: str
) -> None:
    """A single user whose account is locked or whose password expired: a typed error that says so, no change."""
    world = world_factory(single_user=True)
    db.sql(f"ALTER USER 'app'@'%' {ACCOUNT_STATES[state]}")
    assert state in str(refused_before_change(world))


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(
            "locked",
            marks=[
                fails_on("mariadb", TWIN_LOCKED),
                fails_on("mysql", TWIN_LOCKED),
            ],
        ),
        pytest.param("expired", marks=[fails_on("mariadb", TWIN_EXPIRED), fails_on("mysql", TWIN_EXPIRED)]),
    ],
)
def test_locked_or_expired_twin_is_detected_before_its_password_changes(
    world: World, db: DatabaseServer, state: str
) -> None:
    """An existing twin that is locked or expired stops setSecret with a typed error that says so, before any change."""
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1'")
    db.sql(f"ALTER USER 'app_clone'@'%' {ACCOUNT_STATES[state]}")
    assert state in str(refused_before_change(world))
