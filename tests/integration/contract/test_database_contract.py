"""The database contract: the same cases against the fake server (tests/fakes/database.py)
and the real adapter (rotator.backends.mysql) on the suite's private MariaDB and MySQL servers.

Every case runs four times: fake and real, on each family. The unit tests of the core
trust the fake on exactly what these cases show: which typed error a login, a session or a
change ends in, which password logs in afterwards, what the admin reads.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rotator.accounts import Account, Privilege
from rotator.backends.mysql.base import MySQLDatabase
from rotator.comparison import compare_accounts, profiles, verify_copy
from rotator.errors import (
    AccountLockedError,
    AccountReadError,
    CurrentPasswordRequiredError,
    DatabaseAuthError,
    DatabaseError,
    PasswordExpiredError,
)
from rotator.ports import Database
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from tests.fakes.database import ALL_STATIC, FakeDatabase, FakeServer
from tests.support.families import set_default_role
from tests.support.servers import DatabaseServer
from tests.support.world import new_password, reset_server

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:contract-AbCdEf"
APP = (Privilege("SELECT", "appdb"), Privilege("INSERT", "appdb"), Privilege("SELECT", "reports", "summary"))
APP_SQL = ("GRANT SELECT, INSERT ON `appdb`.* TO %s@'%%'", "GRANT SELECT ON `reports`.`summary` TO %s@'%%'")


@dataclass
class Kit:
    """One implementation of the port and how to arrange its server as root would."""

    family: str
    port: Database
    host: str
    server_port: int
    real: DatabaseServer | None = None
    fake: FakeServer | None = None

    def secret(self, user: str, password: str, **extra: Any) -> DatabaseSecret:
        value = {"engine": self.family, "host": self.host, "port": self.server_port, "username": user}
        return DatabaseSecret.parse(SECRET, json.dumps({**value, "password": password, **extra}))

    def create_user(self, user: str, password: str, *, admin: bool = False, reader: bool = False) -> DatabaseSecret:
        if self.fake is not None:
            if admin:
                privileges = [Privilege(name) for name in ALL_STATIC] + [Privilege("GRANT OPTION")]
            elif reader:
                privileges = [Privilege("CREATE USER"), Privilege("SELECT", "mysql", "user")]
            else:
                privileges = list(APP)
            self.fake.create_user(user, password, privileges=privileges)
        else:
            assert self.real is not None
            self.real.sql("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            if admin:
                self.real.sql("GRANT ALL PRIVILEGES ON *.* TO %s@'%%' WITH GRANT OPTION", (user,))
            elif reader:
                self.real.sql("GRANT CREATE USER ON *.* TO %s@'%%'", (user,))
                self.real.sql("GRANT SELECT ON `mysql`.`user` TO %s@'%%'", (user,))
            else:
                for grant in APP_SQL:
                    self.real.sql(grant, (user,))
        return self.secret(user, password)

    def alter(self, user: str, clause: str, **fake: Any) -> None:
        """ALTER USER user@'%' <clause> on the real server; the same change to the fake's account."""
        if self.fake is not None:
            account = self.fake.account(user)
            policy = {key: value for key, value in fake.items() if key in account.profile.policy._fields}
            for key, value in fake.items():
                if key not in policy:
                    setattr(account, key, value)
            if policy:
                self.fake.set_policy(user, **policy)
        else:
            assert self.real is not None
            self.real.sql(f"ALTER USER %s@'%%' {clause}", (user,))

    def max_password_errors(self, value: int) -> None:
        if self.fake is not None:
            self.fake.max_password_errors = value
        else:
            assert self.real is not None
            self.real.sql("SET GLOBAL max_password_errors = %s", (value,))


FAMILIES = ("mariadb", "mysql")


@pytest.fixture(params=[f"{kind}-{family}" for family in FAMILIES for kind in ("fake", "real")])
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    kind, family = str(request.param).split("-")
    if kind == "fake":
        yield fake_kit(family)
        return
    yield from real_kit(request, family)


def fake_kit(family: str) -> Kit:
    server = FakeServer(family, port=3306)
    return Kit(family, FakeDatabase(server), "127.0.0.1", 3306, fake=server)


def real_kit(request: pytest.FixtureRequest, family: str) -> Iterator[Kit]:
    real: DatabaseServer = request.getfixturevalue(family)
    if not real.running:
        real.start()
    reset_server(real)
    real.sql("CREATE DATABASE IF NOT EXISTS appdb")
    real.sql("CREATE DATABASE IF NOT EXISTS reports")
    real.sql("CREATE TABLE IF NOT EXISTS reports.summary (total INT)")
    settings = dataclasses.replace(Settings.from_env({}), ca_bundle=real.pki.ca_file, connect_timeout=2)
    yield Kit(family, MySQLDatabase(settings), real.host, real.port, real=real)
    if family == "mariadb":
        real.sql("SET GLOBAL max_password_errors = DEFAULT")
        real.sql("FLUSH PRIVILEGES")
    reset_server(real)


def test_a_login_with_the_right_password_names_the_server(kit: Kit) -> None:
    """check_login: the server's family; a wrong password or user: DatabaseAuthError, not an account state."""
    app = kit.create_user("app", new_password())
    assert kit.port.check_login(app).flavor == kit.family
    for wrong in (kit.secret("app", "wrong-password-1"), kit.secret("nobody", "wrong-password-1")):
        with pytest.raises(DatabaseAuthError) as refused:
            kit.port.check_login(wrong)
        assert type(refused.value) is DatabaseAuthError


def test_a_locked_account_is_refused_as_locked(kit: Kit) -> None:
    """ACCOUNT LOCK: the right password ends in AccountLockedError."""
    app = kit.create_user("app", new_password())
    kit.alter("app", "ACCOUNT LOCK", locked=True)
    with pytest.raises(AccountLockedError):
        kit.port.check_login(app)


def test_an_expired_password_is_refused_as_expired(kit: Kit) -> None:
    """PASSWORD EXPIRE: the right password ends in PasswordExpiredError (at login or at the first statement)."""
    app = kit.create_user("app", new_password())
    kit.alter("app", "PASSWORD EXPIRE", expired=True)
    with pytest.raises(PasswordExpiredError):
        kit.port.check_login(app)


def test_one_refused_login_under_a_limit_of_one_locks_the_right_password_out(kit: Kit) -> None:
    """FAILED_LOGIN_ATTEMPTS 1 (MySQL) / max_password_errors 1 (MariaDB): a wrong password, then the
    right one is refused as locked."""
    app = kit.create_user("app", new_password())
    if kit.family == "mysql":
        kit.alter("app", "FAILED_LOGIN_ATTEMPTS 1 PASSWORD_LOCK_TIME 1", failed_login_attempts=1, password_lock_days=1)
    else:
        kit.max_password_errors(1)
    with pytest.raises(DatabaseAuthError):
        kit.port.check_login(kit.secret("app", "wrong-password-1"))
    with pytest.raises(AccountLockedError):
        kit.port.check_login(app)


def test_own_account_takes_the_first_password_that_logs_in(kit: Kit) -> None:
    """own_account: the first accepted candidate is the session's login; none: DatabaseAuthError saying how many."""
    password = new_password()
    kit.create_user("app", password)
    wrong, right = kit.secret("app", "wrong-password-1"), kit.secret("app", password)
    with kit.port.own_account([wrong, right]) as own:
        assert own.login is right
    both_wrong = [wrong, kit.secret("app", "wrong-password-2")]
    with pytest.raises(DatabaseAuthError, match="each of the 2 passwords"), kit.port.own_account(both_wrong):
        pass


def test_own_dual_passwords_follow_the_server_and_the_privilege(kit: Kit) -> None:
    """dual_passwords of a user: MariaDB has none; MySQL's need APPLICATION_PASSWORD_ADMIN."""
    app = kit.create_user("app", new_password())
    with kit.port.own_account([app]) as own:
        dual = own.dual_passwords()
    assert (dual.server_has_them, dual.available) == ((False, False) if kit.family == "mariadb" else (True, False))


@pytest.fixture
def dual_user(kit: Kit) -> DatabaseSecret:
    if kit.family != "mysql":
        pytest.skip("dual passwords are MySQL's")
    app = kit.create_user("app", new_password())
    if kit.fake is not None:
        kit.fake.grant("app", Privilege("APPLICATION_PASSWORD_ADMIN", dynamic=True))
    else:
        assert kit.real is not None
        kit.real.sql("GRANT APPLICATION_PASSWORD_ADMIN ON *.* TO %s@'%%'", ("app",))
    return app


def test_a_change_retaining_the_current_password_leaves_both_logging_in(kit: Kit, dual_user: DatabaseSecret) -> None:
    """change_password(retain_current): the new and the old password log in; a session that logged
    in with the (now secondary) old one cannot change the primary: False, nothing changed."""
    new = new_password()
    with kit.port.own_account([dual_user]) as own:
        assert own.dual_passwords().available
        assert own.change_password(new, retain_current=True)
    kit.port.check_login(kit.secret("app", new))
    kit.port.check_login(dual_user)
    with kit.port.own_account([dual_user]) as own:
        assert own.change_password(new_password()) is False
    kit.port.check_login(kit.secret("app", new))


def test_replacing_a_primary_that_requires_the_current_password_is_refused(kit: Kit, dual_user: DatabaseSecret) -> None:
    """replace_primary under PASSWORD REQUIRE CURRENT: CurrentPasswordRequiredError, the password unchanged."""
    kit.alter("app", "PASSWORD REQUIRE CURRENT", require_current=True)
    with kit.port.own_account([dual_user]) as own, pytest.raises(CurrentPasswordRequiredError):
        own.replace_primary(new_password())
    kit.port.check_login(dual_user)


def test_the_admin_reads_accounts_and_makes_a_twin_that_verifies(kit: Kit) -> None:
    """The admin's catalogue: hosts, privileges, state; sync_twin makes a twin that logs in and that
    the catalogue's comparison (rotator check's twin.state) and testSecret's independent reading
    (verify_copy) both find equal."""
    admin = kit.create_user("admin", new_password(), admin=True)
    app = kit.create_user("app", new_password())
    twin_password = new_password()
    with kit.port.admin(admin, app) as session:
        assert session.current_account() == Account("admin", "%")
        assert session.account_hosts("app") == ["%"]
        assert session.account_hosts("app_clone") == []
        assert set(APP) <= set(session.read_profile(Account("app", "%")).privileges)
        assert not session.is_role("app")
        assert session.account_state(Account("app", "%")) == (False, False)
        report = session.sync_twin("app", "app_clone", twin_password)
        assert (report.hosts, report.created, report.existed, report.dropped) == (("%",), 1, 0, 0)
        assert compare_accounts(session, "app", "app_clone", profiles(session)).matches
        verify_copy(session, SECRET, "app", "app_clone")
        again = session.sync_twin("app", "app_clone", twin_password)
        assert (again.created, again.existed, again.statements) == (0, 1, 0)
    kit.port.check_login(kit.secret("app_clone", twin_password))


def test_the_admin_tells_which_candidate_each_account_holds(kit: Kit) -> None:
    """passwords_held: the candidate that is the primary, read without a login."""
    admin = kit.create_user("admin", new_password(), admin=True)
    password = new_password()
    app = kit.create_user("app", password)
    with kit.port.admin(admin, app) as session:
        (held,) = session.passwords_held("app", {"current": password, "other": "pw-other-000001"})
    assert (held.host, held.known, held.primary, held.secondary, held.has_secondary) == (
        "%",
        True,
        "current",
        None,
        False,
    )


def test_an_admin_that_cannot_read_definitions_gets_account_read_error(kit: Kit) -> None:
    """An admin with CREATE USER and SELECT on mysql.user only: hosts are readable, SHOW CREATE USER
    of another account is not: AccountReadError (what setSecret's pre-flight refuses on)."""
    reader = kit.create_user("reader", new_password(), reader=True)
    app = kit.create_user("app", new_password())
    with kit.port.admin(reader, app) as session:
        assert session.account_hosts("app") == ["%"]
        with pytest.raises(AccountReadError):
            session.account_definition("app", "%")


def test_a_database_the_user_may_not_use_is_not_an_auth_error(kit: Kit) -> None:
    """A secret naming a database the user has no privilege on: DatabaseError, not DatabaseAuthError
    (another password would not help)."""
    password = new_password()
    kit.create_user("app", password)
    with pytest.raises(DatabaseError) as refused:
        kit.port.check_login(kit.secret("app", password, dbname="secretdb"))
    assert not isinstance(refused.value, DatabaseAuthError)


def arrange_rich_account(kit: Kit) -> DatabaseSecret:
    """``app`` with a column grant, a grant option, a default role, a password lifetime, a lock
    and (MySQL) a failed-login limit: the same account on the fake and on the real server."""
    admin = kit.create_user("admin", new_password(), admin=True)
    kit.create_user("app", new_password())
    if kit.fake is not None:
        kit.fake.create_role("reporting", [Privilege("SELECT", "reports")])
        kit.fake.grant_role("app", "reporting")
        kit.fake.grant(
            "app",
            Privilege("SELECT", "reports", "summary", "total"),
            Privilege("UPDATE", "reports"),
            Privilege("GRANT OPTION", "reports"),
        )
    else:
        assert kit.real is not None
        kit.real.sql("CREATE ROLE reporting")
        kit.real.sql("GRANT SELECT ON reports.* TO reporting")
        kit.real.sql("GRANT reporting TO app@'%'")
        set_default_role(kit.real, "reporting", "app")
        kit.real.sql("GRANT SELECT (total) ON reports.summary TO app@'%'")
        kit.real.sql("GRANT UPDATE ON reports.* TO app@'%' WITH GRANT OPTION")
    kit.alter("app", "PASSWORD EXPIRE INTERVAL 90 DAY", password_lifetime=90)
    kit.alter("app", "ACCOUNT LOCK", locked=True)
    if kit.family == "mysql":
        kit.alter("app", "FAILED_LOGIN_ATTEMPTS 3 PASSWORD_LOCK_TIME 2", failed_login_attempts=3, password_lock_days=2)
    return admin


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("account", ["plain", "rich"])
def test_the_fake_prints_the_definition_the_real_backend_returns(
    request: pytest.FixtureRequest, family: str, account: str
) -> None:
    """account_definition: the fake's normalised lines (SHOW CREATE USER / SHOW GRANTS as its
    family prints them, taken apart by the backend's own parser) equal the real backend's for
    the same account, so testSecret's comparison on the fakes is the one on a real server."""
    real = real_kit(request, family)
    lines = [definition_of(fake_kit(family), account)]
    try:
        lines.append(definition_of(next(real), account))
    finally:
        next(real, None)  # the real server's clean-up
    fake, printed = lines
    assert fake == printed


def definition_of(kit: Kit, account: str) -> tuple[str, ...]:
    if account == "rich":
        admin = arrange_rich_account(kit)
    else:
        admin = kit.create_user("admin", new_password(), admin=True)
        kit.create_user("app", new_password())
    with kit.port.admin(admin, kit.secret("app", "unused")) as session:
        return session.account_definition("app", "%").lines
