"""The cases of issue 10 on both server families: an account that uses roles, wildcard
schema names, dynamic privileges, partial revokes or account policies is either copied
exactly to its twin (SHOW CREATE USER and SHOW GRANTS of every host, as the server
prints them, equal but for name and password hash) or refused with a typed error
before anything changes."""

from __future__ import annotations

import json
from collections.abc import Callable

import pymysql
import pytest

from rotator import bootstrap
from rotator.accounts import Account
from rotator.errors import (
    AdminPrivilegeError,
    RotatorError,
    UnsafeTargetError,
    UnsupportedDatabaseError,
)
from rotator.handler import UnexpectedError
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from tests.support.aws import stages
from tests.support.families import only_on, set_default_role, socket_host
from tests.support.servers import DatabaseServer
from tests.support.world import World, accounts_snapshot

OUTCOMES = ["created", "twin-synced", "twin-verified", "promoted"]


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
@pytest.mark.parametrize("dual", [False, True], ids=["one-password", "dual-passwords"])
@pytest.mark.parametrize("where", ["account", "server"])
def test_single_user_with_password_require_current(
    world_factory: Callable[..., World], db: DatabaseServer, where: str, dual: bool
) -> None:
    """A user that must name its current password to change it, by its own PASSWORD REQUIRE CURRENT or the
    server's password_require_current=ON, rotates itself (MySQL's REPLACE clause), with or without
    keeping the old password as the secondary one."""
    world = world_factory(single_user=True, dual_passwords=dual)
    outcomes = (
        ["created", "password-changed-retaining-current", "login-ok-both", "promoted"]
        if dual
        else ["created", "password-changed-without-dual", "login-ok", "promoted"]
    )
    if where == "account":
        db.sql("ALTER USER 'app'@'%' PASSWORD REQUIRE CURRENT")
    else:
        db.sql("SET GLOBAL password_require_current = ON")
    try:
        old = world.app_secret()
        assert [result["outcome"] for result in world.rotate()] == outcomes
    finally:
        db.sql("SET GLOBAL password_require_current = OFF")
    assert world.can_use_grants(world.app_secret())
    if dual:
        world.connect(old).close()  # the secondary password
    else:
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


# -- names that look like SQL ------------------------------------------------------------------

HOSTILE_USER = "a'p%p\\"  # quote, percent, backslash: bound as a string
HOSTILE_SCHEMA, HOSTILE_TABLE, HOSTILE_COLUMN, HOSTILE_ROLE = "we'ird%db", "t`a%b", "c'o\\l", "r'o`l%e"


def test_names_with_quotes_backticks_percent_and_backslashes_are_copied(
    world_factory: Callable[..., World], db: DatabaseServer
) -> None:
    """A user, host pattern, role, schema, table and column whose names hold ', `, % and \\ rotate to an exact twin."""
    world = world_factory(app_user=HOSTILE_USER, hosts=("127.0.0.%",))
    quoted = {name: "`" + name.replace("`", "``") + "`" for name in (HOSTILE_SCHEMA, HOSTILE_TABLE, HOSTILE_COLUMN)}
    db.sql(f"CREATE DATABASE {quoted[HOSTILE_SCHEMA]}")
    db.sql(f"CREATE TABLE {quoted[HOSTILE_SCHEMA]}.{quoted[HOSTILE_TABLE]} ({quoted[HOSTILE_COLUMN]} INT)")
    role = "`" + HOSTILE_ROLE.replace("`", "``") + "`"
    db.sql(f"CREATE ROLE {role}")
    db.sql(f"GRANT {role} TO 'admin'@'%' WITH ADMIN OPTION")
    root = db.root()
    try:
        with root.cursor() as cursor:  # each statement formatted by PyMySQL: its literal % doubled
            target = f"{quoted[HOSTILE_SCHEMA]}.{quoted[HOSTILE_TABLE]}".replace("%", "%%")
            cursor.execute(f"GRANT SELECT ({quoted[HOSTILE_COLUMN]}) ON {target} TO %s@%s", (HOSTILE_USER, "127.0.0.%"))
            cursor.execute(f"GRANT INSERT ON {target} TO %s@%s", (HOSTILE_USER, "127.0.0.%"))
            cursor.execute(f"GRANT {role.replace('%', '%%')} TO %s@%s", (HOSTILE_USER, "127.0.0.%"))
    finally:
        root.close()
    assert copy_or_refusal(world) is None
    assert world.app_secret()["username"] == HOSTILE_USER + "_clone"
    connection = world.connect(world.app_secret())
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {quoted[HOSTILE_COLUMN]} FROM {target}", ())  # formatted: %% is %
    finally:
        connection.close()


# -- plugins, policies, proxies, routines --------------------------------------------------------


@only_on("mysql", "MariaDB's other password plugin, ed25519, needs PyNaCl, which the function does not ship")
def test_the_twin_gets_the_user_s_authentication_plugin(world: World, db: DatabaseServer) -> None:
    """A user on a password plugin other than the server's default gets a twin on the same plugin that logs in
    (MySQL 9.7 has no mysql_native_password, Aurora MySQL 3's default: sha256_password stands in for it)."""
    db.sql("ALTER USER 'app'@'%%' IDENTIFIED WITH sha256_password BY %s", (world.app_secret()["password"],))
    assert copy_or_refusal(world) is None
    assert db.sql("SELECT plugin FROM mysql.user WHERE User = 'app_clone'") == [("sha256_password",)]
    assert world.can_use_grants(world.app_secret())
    assert copy_or_refusal(world) is None  # and back: 'app' keeps its plugin as the twin


def test_a_plugin_without_a_password_is_refused_before_any_change(world: World, db: DatabaseServer) -> None:
    """A host of the user authenticated by the operating system (unix_socket / auth_socket) has no password to
    give a twin: refused, naming the plugin, before anything changes."""
    plugin = socket_host(db)
    refusal = refused_before_change(world)
    assert isinstance(refusal, UnsupportedDatabaseError) and f"authentication plugin {plugin}" in str(refusal)


@only_on("mysql", "password history, reuse, REQUIRE CURRENT, failed-login lock and attributes are MySQL 8's")
def test_account_policies_are_copied(world: World, db: DatabaseServer) -> None:
    """Every password and login policy, the comment and the attributes reach the twin as the user has them."""
    db.sql(
        "ALTER USER 'app'@'%' PASSWORD EXPIRE INTERVAL 90 DAY PASSWORD HISTORY 5 PASSWORD REUSE INTERVAL 30 DAY "
        "PASSWORD REQUIRE CURRENT OPTIONAL FAILED_LOGIN_ATTEMPTS 4 PASSWORD_LOCK_TIME UNBOUNDED"
    )
    db.sql("""ALTER USER 'app'@'%' ATTRIBUTE '{"team": "payments", "tier": {"level": 1}}'""")
    db.sql("ALTER USER 'app'@'%' COMMENT 'orders service'")
    assert copy_or_refusal(world) is None
    # The next rotation copies back onto 'app' itself, which then holds a different comment.
    db.sql("ALTER USER 'app_clone'@'%' PASSWORD HISTORY 2 COMMENT 'changed'")
    db.sql("""ALTER USER 'app'@'%' ATTRIBUTE '{"owner": "someone"}'""")
    assert copy_or_refusal(world) is None


def test_password_expiry_interval_is_copied(world: World, db: DatabaseServer) -> None:
    """PASSWORD EXPIRE INTERVAL (both families' per-account password policy) reaches the twin."""
    db.sql("ALTER USER 'app'@'%' PASSWORD EXPIRE INTERVAL 45 DAY")
    assert copy_or_refusal(world) is None


def test_proxy_and_routine_grants_are_copied(world: World, db: DatabaseServer) -> None:
    """GRANT PROXY (mysql.proxies_priv) and EXECUTE on a procedure (mysql.procs_priv) reach the twin."""
    db.sql("CREATE USER 'base'@'%' IDENTIFIED BY 'base-password-1'")
    db.sql("GRANT PROXY ON 'base'@'%' TO 'admin'@'%' WITH GRANT OPTION")
    db.sql("GRANT PROXY ON 'base'@'%' TO 'app'@'%'")
    db.sql("CREATE PROCEDURE appdb.touch() SELECT 1")
    db.sql("GRANT EXECUTE ON PROCEDURE appdb.touch TO 'app'@'%'")
    assert copy_or_refusal(world) is None


def test_a_proxy_grant_the_admin_cannot_give_is_refused_before_any_change(world: World, db: DatabaseServer) -> None:
    """Without PROXY ... WITH GRANT OPTION the admin cannot copy a proxy grant: AdminPrivilegeError naming it."""
    db.sql("CREATE USER 'base'@'%' IDENTIFIED BY 'base-password-1'")
    db.sql("GRANT PROXY ON 'base'@'%' TO 'app'@'%'")
    refusal = refused_before_change(world)
    assert isinstance(refusal, AdminPrivilegeError) and "PROXY ON 'base'@'%'" in str(refusal)


# -- what the admin must hold --------------------------------------------------------------------


@only_on("mysql", "dynamic privileges are MySQL 8's")
def test_a_dynamic_privilege_the_admin_holds_without_grant_option_is_refused(world: World, db: DatabaseServer) -> None:
    """The admin holds BACKUP_ADMIN but not its own grant option: refused before any change, naming it."""
    db.sql("GRANT BACKUP_ADMIN ON *.* TO 'app'@'%'")
    db.sql("REVOKE BACKUP_ADMIN ON *.* FROM 'admin'@'%'")
    db.sql("GRANT BACKUP_ADMIN ON *.* TO 'admin'@'%'")
    refusal = refused_before_change(world)
    assert isinstance(refusal, AdminPrivilegeError) and "BACKUP_ADMIN ON *.*" in str(refusal)


@only_on("mysql", "SYSTEM_USER is MySQL 8's")
def test_a_twin_with_system_user_needs_an_admin_with_system_user(world: World, db: DatabaseServer) -> None:
    """A leftover twin holding SYSTEM_USER can only be changed by an admin that holds it too: refused beforehand."""
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1'")
    db.sql("GRANT SYSTEM_USER ON *.* TO 'app_clone'@'%'")
    db.sql("REVOKE SYSTEM_USER ON *.* FROM 'admin'@'%'")
    refusal = refused_before_change(world)
    assert isinstance(refusal, AdminPrivilegeError) and "SYSTEM_USER" in str(refusal)


# -- what one admin session reads ---------------------------------------------------------


def test_an_admin_session_never_hides_its_own_changes(world: World, db: DatabaseServer) -> None:
    """An admin session reads each account once per step, but what it reads after its own sync is the
    server's new state (as a fresh session reads it): the twin's hosts and profile, not what the
    session read before changing them."""
    db.sql("CREATE USER 'app_clone'@'%%' IDENTIFIED BY %s", ("Old-twin-1",))
    db.sql("CREATE USER 'app_clone'@'10.9.8.7' IDENTIFIED BY %s", ("Old-twin-1",))
    db.sql("GRANT SELECT ON `extra`.* TO 'app_clone'@'%'")
    container = bootstrap.build(Settings.from_env())
    app = DatabaseSecret.parse(world.app_arn, json.dumps(world.app_secret()))
    admin = DatabaseSecret.parse(world.admin_arn, json.dumps(world.admin_secret()), require_host=False)
    twin = Account("app_clone", "%")
    with container.database.admin(admin, app) as session:
        before = (session.account_hosts("app_clone"), session.read_profile(twin))
        session.sync_twin("app", "app_clone", "New-twin-1")
        after = (session.account_hosts("app_clone"), session.read_profile(twin))
    with container.database.admin(admin, app) as fresh:
        assert after == (fresh.account_hosts("app_clone"), fresh.read_profile(twin))
        assert after[0] == fresh.account_hosts("app")
        assert after[1].privileges == fresh.read_profile(Account("app", "%")).privileges
    assert before != after
