"""testSecret's independent reading on both servers: a twin that differs from the user in
anything the server prints in SHOW CREATE USER / SHOW GRANTS (above all what setSecret's
own reading cannot see) fails testSecret with PrivilegeMismatchError, AWSCURRENT stays, and
finishSecret cannot run; an admin that cannot read those definitions is refused before any
change. Never a password or a hash in what the function prints or raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from rotator.errors import AccountReadError, PrivilegeMismatchError, RotationStateError
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, stages
from tests.support.families import account_tables_reader, only_on, set_default_role
from tests.support.servers import DatabaseServer
from tests.support.world import World, accounts_snapshot

Change = Callable[[DatabaseServer, str], None]


def sql(*statements: str) -> Change:
    """Statements run as root; ``{pending}`` is the pending password (bound, never in the text)."""

    def run(db: DatabaseServer, pending: str) -> None:
        for statement in statements:
            if "{pending}" in statement:
                db.sql(statement.replace("'%'", "'%%'").format(pending="%s"), (pending,))
            else:
                db.sql(statement)

    return run


def default_role_on_twin(db: DatabaseServer, pending: str) -> None:
    db.sql("CREATE ROLE reporting")
    db.sql("GRANT reporting TO 'app'@'%', 'app_clone'@'%'")
    set_default_role(db, "reporting", "app_clone")


# Each case: what is done between setSecret and testSecret, and a piece of the error that
# names the difference. "blind" marks what setSecret's catalogue reading cannot see today.
BOTH = {
    "proxy grant (blind)": (
        sql("GRANT PROXY ON 'admin'@'%' TO 'app_clone'@'%'"),
        "only 'app_clone': GRANT PROXY ON `admin`@`%` TO <account>",
    ),
    "account lock (blind)": (sql("ALTER USER 'app_clone'@'%' ACCOUNT LOCK"), "ACCOUNT LOCK"),
    "column grant": (
        sql("GRANT UPDATE (`total`) ON `reports`.`summary` TO 'app_clone'@'%'"),
        "only 'app_clone': GRANT SELECT, UPDATE (`total`) ON `reports`.`summary` TO <account>",
    ),
    "role admin option": (
        sql(
            "CREATE ROLE reporting",
            "GRANT reporting TO 'app'@'%'",
            "GRANT reporting TO 'app_clone'@'%' WITH ADMIN OPTION",
        ),
        "WITH ADMIN OPTION",
    ),
    "default role": (default_role_on_twin, "only 'app_clone'"),
    "tls requirement": (sql("ALTER USER 'app_clone'@'%' REQUIRE X509"), "REQUIRE X509"),
    "resource limit": (sql("ALTER USER 'app_clone'@'%' WITH MAX_USER_CONNECTIONS 7"), "MAX_USER_CONNECTIONS 7"),
    "privilege on the user only": (sql("GRANT CREATE ON `appdb`.* TO 'app'@'%'"), "only 'app': GRANT CREATE, DELETE"),
}
MYSQL_ONLY = {
    # issue 10: the sync's own result for a dynamic privilege held WITH GRANT OPTION
    "dynamic privilege grant option (blind)": (
        sql(
            "GRANT XA_RECOVER_ADMIN ON *.* TO 'app'@'%' WITH GRANT OPTION",
            "GRANT XA_RECOVER_ADMIN ON *.* TO 'app_clone'@'%'",
            "GRANT USAGE ON *.* TO 'app_clone'@'%' WITH GRANT OPTION",
        ),
        "only 'app': GRANT USAGE ON *.* TO <account>; GRANT XA_RECOVER_ADMIN ON *.* TO <account> WITH GRANT OPTION",
    ),
    "plugin (blind)": (
        sql("ALTER USER 'app_clone'@'%' IDENTIFIED WITH sha256_password BY {pending}"),
        "IDENTIFIED WITH 'sha256_password' AS <hash>",
    ),
    "password history (blind)": (sql("ALTER USER 'app_clone'@'%' PASSWORD HISTORY 5"), "PASSWORD HISTORY 5"),
    "failed login attempts (blind)": (
        sql("ALTER USER 'app_clone'@'%' FAILED_LOGIN_ATTEMPTS 3 PASSWORD_LOCK_TIME 1"),
        "FAILED_LOGIN_ATTEMPTS 3 PASSWORD_LOCK_TIME 1",
    ),
    "password require current (blind)": (
        sql("ALTER USER 'app'@'%' PASSWORD REQUIRE CURRENT"),
        "only 'app': CREATE USER <account>",
    ),
    "comment (blind)": (sql("ALTER USER 'app_clone'@'%' COMMENT 'owned by billing'"), "owned by billing"),
}
MARIADB_ONLY = {
    "plugin (blind)": (
        sql("ALTER USER 'app_clone'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD({pending}) OR unix_socket"),
        "IDENTIFIED VIA mysql_native_password USING <hash> OR unix_socket",
    ),
    "password expiry interval (blind)": (
        sql("ALTER USER 'app_clone'@'%' PASSWORD EXPIRE INTERVAL 30 DAY"),
        "PASSWORD EXPIRE INTERVAL 30 DAY",
    ),
}
CASES = [
    *(pytest.param(change, words, id=name) for name, (change, words) in BOTH.items()),
    *(
        pytest.param(change, words, id=f"mysql: {name}", marks=only_on("mysql", "MySQL's own account features"))
        for name, (change, words) in MYSQL_ONLY.items()
    ),
    *(
        pytest.param(change, words, id=f"mariadb: {name}", marks=only_on("mariadb", "MariaDB's own syntax"))
        for name, (change, words) in MARIADB_ONLY.items()
    ),
]


def hashes(db: DatabaseServer) -> Iterator[str]:
    """The printable end of every test account's password hash (MySQL's start with raw bytes)."""
    rows = db.sql("SELECT authentication_string FROM mysql.user WHERE User IN ('app', 'app_clone', 'admin')")
    for (value,) in rows:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes | bytearray) else str(value)
        if len(text) > 20:
            yield text[-16:]


def set_twin(world: World) -> str:
    """createSecret and setSecret of a new rotation; its token."""
    assert world.invoke is not None
    token = begin_rotation(world.client, world.app_arn)
    for step in ("createSecret", "setSecret"):
        world.invoke(event(world.app_arn, token, step))
    return token


@pytest.mark.parametrize(("change", "words"), CASES)
def test_a_twin_that_differs_fails_testsecret(
    world: World, db: DatabaseServer, leak_check: LeakCheck, change: Change, words: str
) -> None:
    """Changed between setSecret and testSecret: testSecret refuses naming the difference,
    AWSCURRENT does not move and finishSecret refuses the untested version."""
    assert world.invoke is not None
    current = world.app_secret()
    token = set_twin(world)
    change(db, world.app_secret("AWSPENDING")["password"])
    with pytest.raises(PrivilegeMismatchError) as raised:
        world.invoke(event(world.app_arn, token, "testSecret"))
    leak_check.record(raised.value)
    assert "'app_clone' does not match 'app'" in str(raised.value) and "at host '%'" in str(raised.value)
    assert words in str(raised.value)
    with pytest.raises(RotationStateError):
        world.invoke(event(world.app_arn, token, "finishSecret"))
    assert stages(world.client, world.app_arn)[token] == ["AWSPENDING"]
    assert world.app_secret() == current
    leak_check.assert_clean(*world.all_passwords(), *hashes(db))


@only_on("mysql", "partial revokes are MySQL's")
def test_a_partial_revoke_on_the_user_only_fails_testsecret(
    partial_revokes: DatabaseServer, world: World, leak_check: LeakCheck
) -> None:
    """issue 10's silent case: the user holds SELECT on *.* minus mysql.*, the twin all of it;
    setSecret's reading sees the same SELECT ON *.* for both, testSecret's does not."""
    assert world.invoke is not None
    current = world.app_secret()
    token = set_twin(world)
    for account in ("'app'@'%'", "'app_clone'@'%'"):
        partial_revokes.sql(f"GRANT SELECT ON *.* TO {account}")
    partial_revokes.sql("REVOKE SELECT ON `mysql`.* FROM 'app'@'%'")
    with pytest.raises(
        PrivilegeMismatchError, match=r"only 'app': REVOKE SELECT ON `mysql`\.\* FROM <account>"
    ) as raised:
        world.invoke(event(world.app_arn, token, "testSecret"))
    leak_check.record(raised.value)
    assert stages(world.client, world.app_arn)[token] == ["AWSPENDING"]
    assert world.app_secret() == current
    leak_check.assert_clean(*world.all_passwords(), *hashes(partial_revokes))


def test_twins_at_several_hosts_are_compared_host_by_host(
    world_factory: Callable[..., World], db: DatabaseServer
) -> None:
    """A difference at one of the user's hosts is reported at that host only."""
    world = world_factory(hosts=("127.0.0.1", "10.%"))
    token = set_twin(world)
    db.sql("GRANT SELECT ON `reports`.* TO 'app_clone'@'10.%'")
    assert world.invoke is not None
    with pytest.raises(PrivilegeMismatchError) as raised:
        world.invoke(event(world.app_arn, token, "testSecret"))
    assert "at host '10.%'" in str(raised.value) and "at host '127.0.0.1'" not in str(raised.value)


def test_what_both_accounts_have_alike_is_no_difference(world: World, db: DatabaseServer) -> None:
    """A limit given to both accounts between setSecret and testSecret is no difference: the rotation completes."""
    token = set_twin(world)
    for account in ("'app'@'%'", "'app_clone'@'%'"):
        db.sql(f"ALTER USER {account} WITH MAX_QUERIES_PER_HOUR 100")
    assert world.invoke is not None
    outcomes = [world.invoke(event(world.app_arn, token, step))["outcome"] for step in ("testSecret", "finishSecret")]
    assert outcomes == ["twin-verified", "promoted"]


def test_an_admin_that_cannot_read_definitions_is_refused_before_any_change(
    world_factory: Callable[..., World], db: DatabaseServer, leak_check: LeakCheck
) -> None:
    """setSecret asks for what testSecret will read before its first change: AccountReadError
    naming the privilege, no account touched, AWSCURRENT unchanged. (Before testSecret read
    the definitions, this admin's empty view of information_schema made setSecret give the
    twin nothing and testSecret find nothing missing: without a dbname to log in to, the
    rotation completed with a twin holding only USAGE, on both servers.)"""
    world = world_factory(admin_grants=account_tables_reader(db), extra_secret_fields={"dbname": None})
    assert world.invoke is not None
    before, current = accounts_snapshot(db), world.app_secret()
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(
        AccountReadError, match=r"cannot read the definition of 'app'@'%'.*SELECT ON mysql\.\*"
    ) as raised:
        world.invoke(event(world.app_arn, token, "setSecret"))
    leak_check.record(raised.value)
    assert accounts_snapshot(db) == before
    assert world.app_secret() == current
    leak_check.assert_clean(*world.all_passwords())
