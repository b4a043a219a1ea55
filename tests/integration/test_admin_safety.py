"""The admin account is never the target, and a refusal leaves nothing behind (issue 11).

Each case prepares a world in which a rotation would harm an account it must never
touch, and shows that the rotation refuses before any change, that the admin still
logs in, and that ``rotator check`` reported the same refusal beforehand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from rotator.errors import AdminPrivilegeError, DatabaseError, RotationStateError, UnsafeTargetError
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, secret_value, stages
from tests.support.cli import Cli, CliRun
from tests.support.mariadb import MariaDBServer
from tests.support.observe import Emitted
from tests.support.world import World, new_password

pytestmark = pytest.mark.integration

Build = Callable[..., World]


def findings(run: CliRun) -> dict[str, dict[str, str]]:
    [secret] = run.json()["secrets"]
    return {finding["check"]: finding for finding in secret["findings"]}


def accounts(server: MariaDBServer) -> list[tuple[Any, ...]]:
    """Every account with its password hash: any change to any account shows here."""
    return server.sql("SELECT User, Host, authentication_string FROM mysql.user ORDER BY User, Host")


def admin_logs_in(world: World) -> bool:
    world.connect(world.admin_secret()).close()
    return True


# -- the admin (or another admin) as the user or the twin ---------------------------------


def twin_is_the_admin(build: Build, db: MariaDBServer) -> World:
    """App user 'dba_clone', admin 'dba': the twin of the app user is the admin."""
    return build(app_user="dba_clone", admin_user="dba")


def app_secret_holds_the_admin(build: Build, db: MariaDBServer) -> World:
    """The application secret names the admin's own user and password."""
    world = build()
    admin = world.admin_secret()
    app = secret_value(world.client, world.app_arn)
    world.client.put_secret_value(
        SecretId=world.app_arn,
        SecretString=json.dumps({**app, "username": admin["username"], "password": admin["password"]}),
    )
    return world


def twin_is_a_role(build: Build, db: MariaDBServer) -> World:
    world = build()
    db.sql("CREATE ROLE app_clone")
    return world


def twin_is_another_admin(build: Build, db: MariaDBServer) -> World:
    """'app_clone' exists and can create users: some other secret's admin, as far as rotator can tell."""
    world = build()
    db.sql("CREATE USER 'app_clone'@'%%' IDENTIFIED BY %s", (new_password(),))
    db.sql("GRANT CREATE USER, SELECT ON *.* TO 'app_clone'@'%' WITH GRANT OPTION")
    return world


def user_is_an_admin(build: Build, db: MariaDBServer) -> World:
    return build(app_grants=("GRANT CREATE USER ON *.* TO {account}", "GRANT SELECT ON `appdb`.* TO {account}"))


@pytest.mark.parametrize(
    ("scenario", "step", "check", "words"),
    [
        (twin_is_the_admin, "createSecret", "target.names", "'dba', the admin secret's own user"),
        (app_secret_holds_the_admin, "createSecret", "target.names", "is the admin secret's own user"),
        (twin_is_a_role, "setSecret", "target.accounts", "'app_clone' is a role"),
        (twin_is_another_admin, "setSecret", "target.accounts", "can create and change accounts"),
        (user_is_an_admin, "setSecret", "target.accounts", "the user 'app'@'%' can create and change accounts"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_an_admin_or_role_is_never_the_target(
    world_factory: Build,
    db: MariaDBServer,
    db_cli: Cli,
    scenario: Callable[[Build, MariaDBServer], World],
    step: str,
    check: str,
    words: str,
) -> None:
    """The rotation refuses with UnsafeTargetError at ``step`` before any account changes; the admin
    still logs in; check reported the same reason beforehand (exit 1)."""
    world = scenario(world_factory, db)
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 1, run.text
    assert findings(run)[check]["level"] == "fail"
    assert words in findings(run)[check]["message"]

    before = accounts(db)
    token = begin_rotation(world.client, world.app_arn)
    if step == "setSecret":
        world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(UnsafeTargetError, match=re.escape(words)) as raised:
        world.invoke(event(world.app_arn, token, step))

    assert accounts(db) == before
    assert admin_logs_in(world)
    if step == "createSecret":
        with pytest.raises(world.client.exceptions.ResourceNotFoundException):
            world.client.get_secret_value(SecretId=world.app_arn, VersionId=token, VersionStage="AWSPENDING")
    assert run.leaks(world.all_passwords()) == []
    assert not any(password in str(raised.value) for password in world.all_passwords())


@pytest.mark.parametrize("user", ["root", "mysql.session", "mariadb.sys", "rdsadmin"])
def test_a_reserved_account_is_never_the_target(world_factory: Build, user: str) -> None:
    """A secret naming a reserved account of the server is refused by createSecret: nothing written."""
    world = world_factory()
    app = secret_value(world.client, world.app_arn)
    world.client.put_secret_value(SecretId=world.app_arn, SecretString=json.dumps({**app, "username": user}))
    token = begin_rotation(world.client, world.app_arn)
    with pytest.raises(UnsafeTargetError, match="reserved account"):
        world.invoke(event(world.app_arn, token, "createSecret"))
    assert stages(world.client, world.app_arn)[token] == ["AWSPENDING"]


# -- refusals that leave nothing behind -----------------------------------------------


def test_an_admin_that_cannot_grant_everything_creates_nothing(world_factory: Build, db: MariaDBServer) -> None:
    """The admin lacks GRANT OPTION on one of the user's privileges: setSecret refuses before CREATE USER."""
    world = world_factory(
        admin_grants=(
            "GRANT CREATE USER, SELECT ON *.* TO {account}",
            "GRANT ALL PRIVILEGES ON `appdb`.* TO {account} WITH GRANT OPTION",
        )
    )
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(AdminPrivilegeError, match=r"cannot grant 1 of .*SELECT ON `reports`.`summary`.*nothing"):
        world.invoke(event(world.app_arn, token, "setSecret"))
    assert db.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]


def test_a_statement_the_server_refuses_drops_the_accounts_this_attempt_created(
    world: World, db: MariaDBServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the server refuses what the pre-flight allowed, the twin this attempt created is dropped again."""
    from rotator.backends.mysql.base import Session
    from rotator.sql import Statement

    original = Session.execute

    def refuse_grants(session: Session, statement: Statement) -> list[tuple[Any, ...]]:
        if statement.verb == "GRANT":
            return original(session, Statement("GRANT NOPE", (), statement.label))  # a server-side refusal
        return original(session, statement)

    monkeypatch.setattr(Session, "execute", refuse_grants)
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(DatabaseError, match=r"dropped the 1 account\(s\) this attempt created"):
        world.invoke(event(world.app_arn, token, "setSecret"))
    assert db.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]


def test_a_twin_made_by_someone_else_is_taken_over_loudly(
    world: World, db: MariaDBServer, db_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pre-existing, different twin: check warns (twin.takeover); setSecret takes it over with a
    warning log line and the TwinTakenOver metric; the twin ends exactly like the user."""
    db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'someone-elses-password-1'")
    db.sql("CREATE USER 'app_clone'@'10.%' IDENTIFIED BY 'someone-elses-password-1'")
    db.sql("GRANT DELETE ON `reports`.* TO 'app_clone'@'%'")
    takeover = findings(db_cli("check", world.app_arn, "--json"))["twin.takeover"]
    assert takeover["level"] == "warn" and "was not made by rotator" in takeover["message"]
    capsys.readouterr()

    outcomes = [result["outcome"] for result in world.rotate()]

    assert outcomes == ["created", "twin-taken-over", "twin-verified", "promoted"]
    emitted = Emitted.parse(capsys.readouterr().out)
    [warning] = [log for log in emitted.messages("WARNING") if log["message"].startswith("took over")]
    assert warning["message"] == "took over an existing twin user that differed from the current user"
    assert warning["users_dropped"] == 1
    assert emitted.metric("TwinTakenOver", Step="setSecret") == [1.0]
    assert db.sql("SELECT Host FROM mysql.user WHERE User = 'app_clone'") == [("%",)]


def test_finish_secret_right_after_create_secret_promotes_nothing(world: World) -> None:
    """finishSecret on a version that setSecret and testSecret never saw is refused; AWSCURRENT stays."""
    current = world.app_secret()
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(RotationStateError, match="has not passed testSecret"):
        world.invoke(event(world.app_arn, token, "finishSecret"))
    assert world.app_secret() == current
    assert world.can_use_grants(world.app_secret())
    # Secrets Manager's order still completes it.
    for step in ("setSecret", "testSecret", "finishSecret"):
        world.invoke(event(world.app_arn, token, step))
    assert world.app_secret()["username"] == "app_clone"


# -- clear words ---------------------------------------------------------------------


def test_a_dbname_that_does_not_exist_is_named(world_factory: Build, leak_check: LeakCheck) -> None:
    """The message names the 'dbname' field and the database, not only an error number."""
    world = world_factory(extra_secret_fields={"dbname": "no_such_db"})
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(DatabaseError, match=r"cannot use database 'no_such_db' \(the secret's 'dbname'\)") as raised:
        world.invoke(event(world.app_arn, token, "setSecret"))
    leak_check.record(raised.value)
    leak_check.assert_clean(*world.all_passwords())
