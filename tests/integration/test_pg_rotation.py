"""PostgreSQL rotations through the real Lambda code (``rotator.handler.lambda_handler``,
moto's Secrets Manager, private PostgreSQL 15 and 18 servers with verify-full TLS and
SCRAM): alternating users through the admin secret, single user, and the same user set
by the admin (RDS Proxy) — and the ownership case of issue 22: 20 rotations, each current
user creating and altering objects, afterwards 0 "permission denied" for either user.

No password appears in anything the function printed or raised (``leak_check``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rotator import handler as handler_module
from rotator.errors import EngineMismatchError, PrivilegeMismatchError, RotatorError
from tests.integration.conftest import LeakCheck, fresh_handler
from tests.support.aws import begin_rotation, create_secret, event, secret_value, stages
from tests.support.cli import Cli
from tests.support.lambda_context import FakeLambdaContext
from tests.support.pgownership import SCHEMA, Work, between_rotations, use_everything
from tests.support.postgresql import PostgreSQLServer
from tests.support.servers import DatabaseServer
from tests.support.world import PG_DATABASE, PgWorld, make_pg_world, new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@pytest.fixture
def pg_invoke(pg: PostgreSQLServer, aws: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """The handler, as deployed (idempotency aside), trusting the test servers' CA."""
    monkeypatch.setenv("ROTATOR_CA_BUNDLE", str(pg.pki.ca_file))
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "2")
    monkeypatch.setenv("DB_READ_TIMEOUT", "10")
    fresh_handler()

    def call(body: dict[str, Any]) -> Any:
        return handler_module.lambda_handler(body, FakeLambdaContext())

    yield call
    fresh_handler()


@pytest.fixture
def pg_world(pg: PostgreSQLServer, aws: Any, pg_invoke: Callable[..., Any]) -> Callable[..., PgWorld]:
    def build(**kwargs: Any) -> PgWorld:
        world = make_pg_world(pg, aws, **kwargs)
        world.invoke = pg_invoke
        return world

    return build


def rotate(world: PgWorld, leak_check: LeakCheck) -> None:
    """One rotation, the four steps through the handler; a failure is recorded for the leak check."""
    try:
        world.rotate()
    except RotatorError as exc:
        leak_check.record(exc)
        raise


def runs_as(world: PgWorld, value: dict[str, Any]) -> tuple[str, str]:
    session = world.connect(value)
    try:
        cursor = session.cursor()
        cursor.execute("SELECT current_user::text, session_user::text")
        row = cursor.fetchone()
        return str(row[0]), str(row[1])
    finally:
        session.close()


def test_alternating_users_rotate_through_the_handler(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], leak_check: LeakCheck
) -> None:
    """Three rotations through the admin secret: the user alternates app -> app_clone -> app
    -> app_clone; each new current user logs in, runs as the owner role and uses the
    application's grants; the previous user keeps working until the next rotation."""
    world = pg_world()
    users = [world.app_secret()["username"]]
    for _ in range(3):
        previous = world.app_secret()
        rotate(world, leak_check)
        current = world.app_secret()
        users.append(current["username"])
        assert current["password"] != previous["password"]
        assert world.can_use_grants(current)
        assert runs_as(world, current) == (world.owner, current["username"])
        assert world.logs_in(previous), "alternating users: AWSPREVIOUS keeps logging in"
    assert users == ["app", "app_clone", "app", "app_clone"]
    leak_check.assert_clean(*world.all_passwords())


def test_testsecret_compares_the_pg_catalogue_reading(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], leak_check: LeakCheck
) -> None:
    """A privilege given to the twin after setSecret is seen by testSecret's own reading of
    pg_catalog (compared by the core's comparison): PrivilegeMismatchError naming it; the
    version is not promoted. The next attempt's setSecret takes it away again."""
    world = pg_world()
    token = begin_rotation(world.client, world.app_arn)
    for step in ("createSecret", "setSecret"):
        world.invoke(event(world.app_arn, token, step))  # type: ignore[misc]
    world.master_sql("GRANT TRUNCATE ON app.items TO app_clone", PG_DATABASE)
    with pytest.raises(PrivilegeMismatchError) as raised:
        world.invoke(event(world.app_arn, token, "testSecret"))  # type: ignore[misc]
    leak_check.record(raised.value)
    assert "'app_clone' does not match 'app'" in str(raised.value)
    assert "app.items" in str(raised.value) and "D" in str(raised.value)
    assert "AWSCURRENT" not in stages(world.client, world.app_arn)[token]
    for step in STEPS[1:]:
        world.invoke(event(world.app_arn, token, step))  # type: ignore[misc]
    assert world.app_secret()["username"] == "app_clone"
    leak_check.assert_clean(*world.all_passwords())


def test_single_user_changes_its_own_password(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], leak_check: LeakCheck
) -> None:
    """No admin: the user changes its own password (stepping out of the owner role for
    it); PostgreSQL has no dual passwords, so the old password is refused at once."""
    world = pg_world(single_user=True)
    for _ in range(2):
        previous = world.app_secret()
        rotate(world, leak_check)
        current = world.app_secret()
        assert current["username"] == "app"
        assert world.can_use_grants(current)
        assert runs_as(world, current) == (world.owner, "app")
        assert not world.logs_in(previous), "one password per role: the old one is refused"
    leak_check.assert_clean(*world.all_passwords())


def test_the_same_user_set_by_the_admin(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], leak_check: LeakCheck
) -> None:
    """RDS Proxy's strategy (``masterarn`` + ``"rotation_strategy": "single-user"``): the
    master sets the user's password; the user name never changes and no twin is made."""
    world = pg_world(extra_secret_fields={"rotation_strategy": "single-user"})
    for _ in range(2):
        previous = world.app_secret()
        rotate(world, leak_check)
        current = world.app_secret()
        assert current["username"] == "app"
        assert world.can_use_grants(current)
        assert not world.logs_in(previous)
    assert not pg.sql("SELECT 1 FROM pg_roles WHERE rolname = 'app_clone'")
    leak_check.assert_clean(*world.all_passwords())


def test_twenty_rotations_leave_every_object_usable_by_both_users(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], leak_check: LeakCheck
) -> None:
    """Issue 22's done-when: alternating users, 20 rotations through the handler, each
    current user creating and altering tables, views, sequences and functions between
    rotations (and the previous user's still-open session writing after the rotation);
    afterwards each of the two users reads, writes and alters every object: 0
    "permission denied", 0 failures; the owner role owns everything, the logins nothing."""
    world = pg_world()
    work = Work()
    previous_session = None
    for i in range(20):
        value = world.app_secret()
        session = world.connect(value)
        between_rotations(work, session, value["username"], i)
        if previous_session is not None:
            work(previous_session, "pooled", f"INSERT INTO {SCHEMA}.t{i} (note) VALUES ('pooled')")
            work(previous_session, "pooled", f"CREATE TABLE {SCHEMA}.late{i} (id int, note text)")
            previous_session.close()
        rotate(world, leak_check)
        previous_session = session
    assert previous_session is not None
    previous_session.close()
    assert work.denied() == [], work.denied()[:5]
    assert work.failures == [], work.failures[:5]

    rows = world.master_sql(
        "SELECT c.relname::text, c.relkind::text, pg_get_userbyid(c.relowner)::text FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'app' AND c.relkind IN ('r','v','S','i') "
        "AND c.relname <> 'items' AND c.relname NOT LIKE 'items%' "
        "UNION ALL SELECT p.proname::text, 'f', pg_get_userbyid(p.proowner)::text FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'app'",
        PG_DATABASE,
    )
    owners = {name: owner for name, _kind, owner in rows}
    kinds = {name: kind for name, kind, _owner in rows}
    assert len(owners) >= 20 * 4
    assert set(owners.values()) == {world.owner}, owners
    final = Work()
    assert {world.app_secret(stage)["username"] for stage in ("AWSCURRENT", "AWSPREVIOUS")} == {"app", "app_clone"}
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        value = world.app_secret(stage)
        session = world.connect(value)
        use_everything(final, session, value["username"], owners, kinds)
        session.close()
    assert final.denied() == [], final.denied()[:5]
    assert final.failures == [], final.failures[:5]
    assert final.done >= 2 * (20 * 6 + 20 * 2 + 20 * 2 + 20 * 2)
    leak_check.assert_clean(*world.all_passwords())


def test_a_postgres_secret_that_reaches_mariadb_is_refused(
    mariadb: DatabaseServer, aws: Any, pg_invoke: Callable[..., Any], leak_check: LeakCheck
) -> None:
    """A secret that says postgres but whose host is a MariaDB server: setSecret stops with
    EngineMismatchError naming the secret, before anything is sent; the pending version is
    not promoted and nothing on the server changed."""
    password = new_password()
    value = {
        "engine": "postgres",
        "host": mariadb.host,
        "port": mariadb.port,
        "username": "app",
        "password": password,
    }
    arn = create_secret(aws, "pg-at-mariadb", value)
    token = begin_rotation(aws, arn)
    pg_invoke(event(arn, token, "createSecret"))
    pending = secret_value(aws, arn, "AWSPENDING")["password"]
    before = mariadb.sql("SELECT User, Host FROM mysql.user ORDER BY 1, 2")
    with pytest.raises(EngineMismatchError) as raised:
        pg_invoke(event(arn, token, "setSecret"))
    leak_check.record(raised.value)
    assert raised.value.secret_id == arn
    assert "not answer as a PostgreSQL server" in str(raised.value)
    assert mariadb.sql("SELECT User, Host FROM mysql.user ORDER BY 1, 2") == before
    assert "AWSCURRENT" not in stages(aws, arn)[token]
    leak_check.assert_clean(password, pending)


# -- ownership: rotator check and rotator adopt ------------------------------------------


def findings(run: Any) -> dict[str, dict[str, str]]:
    (report,) = run.json()["secrets"]
    return {finding["check"]: finding for finding in report["findings"]}


def test_check_says_when_adoption_is_needed_and_adopt_brings_the_database_to_the_owner_role(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], cli: Cli
) -> None:
    """A database as AWS's function leaves it (the user owns its table): ``rotator check``
    reports ``db.ownership`` naming the command; ``rotator adopt`` prints the plan and
    changes nothing; ``--apply`` runs it; then check is OK, and after two rotations the
    twin alters the table the user made before adoption: no "permission denied"."""
    world = pg_world(owner_role=False)
    app = world.app_secret()
    session = world.connect(app)
    session.cursor().execute("CREATE TABLE app.legacy (id int, note text)")
    session.close()
    cli.base_args = ["--region", "us-east-1", "--ca-bundle", str(pg.pki.ca_file)]
    passwords = world.all_passwords()

    run = cli("check", world.app_arn, "--json")
    found = findings(run)["db.ownership"]
    assert found["level"] == "warn", found
    assert "no owner role" in found["message"] and "'app' owns 1" in found["message"]
    assert "rotator adopt app-db" in found["action"]
    assert run.leaks(passwords) == []

    owners = "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 'app.legacy'::regclass"
    dry = cli("adopt", world.app_arn)
    assert dry.code == 0, dry.text
    assert 'CREATE ROLE "app_owner" NOLOGIN' in dry.out and 'REASSIGN OWNED BY "app" TO "app_owner"' in dry.out
    assert "dry run, nothing changed" in dry.out
    assert world.master_sql(owners, PG_DATABASE) == [("app",)]
    assert not pg.sql("SELECT 1 FROM pg_roles WHERE rolname = 'app_owner'")

    applied = cli("adopt", world.app_arn, "--apply")
    assert applied.code == 0, applied.text
    assert "in one transaction" in applied.out
    assert world.master_sql(owners, PG_DATABASE) == [("app_owner",)]
    assert cli("adopt", world.app_arn).out.strip().endswith("already creates as owner role 'app_owner'")

    after = findings(cli("check", world.app_arn, "--json"))["db.ownership"]
    assert after["level"] == "ok", after
    for run in (dry, applied):
        assert run.leaks(passwords) == []

    world.owner = "app_owner"
    world.rotate()
    world.rotate()  # app_clone, then app again
    work = Work()
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        value = world.app_secret(stage)
        user_session = world.connect(value)
        work(user_session, value["username"], f"ALTER TABLE app.legacy ADD COLUMN by_{value['username']} int")
        work(user_session, value["username"], "INSERT INTO app.legacy (id) VALUES (1)")
        user_session.close()
    assert work.failures == [], work.failures


@pytest.mark.parametrize(
    "kind", [{}, {"single_user": True}, {"extra_secret_fields": {"rotation_strategy": "single-user"}}]
)
def test_check_passes_a_ready_postgresql_secret_of_each_strategy(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], cli: Cli, kind: dict[str, Any]
) -> None:
    """``rotator check`` on PostgreSQL: the logins, the strategy's pre-flight (the user is a
    login role, not an admin; what the twin needs the admin can give; testSecret's reading
    works), the window of a single user (no dual passwords), the ownership: nothing fails."""
    world = pg_world(**kind)
    cli.base_args = ["--region", "us-east-1", "--ca-bundle", str(pg.pki.ca_file)]
    run = cli("check", world.app_arn, "--json")
    found = findings(run)
    failed = {check: finding["message"] for check, finding in found.items() if finding["level"] == "fail"}
    assert failed == {} and run.code == 0, run.text
    assert found["db.login"]["level"] == "ok"
    if not kind:
        assert found["db.ownership"]["level"] == "ok"
        assert found["admin.read-definitions"]["level"] == "ok"
        assert found["app.copy"]["level"] == "ok"
    else:
        assert "db.ownership" not in found
    assert run.leaks(world.all_passwords()) == []


def test_what_the_admin_cannot_give_the_twin_is_refused_before_any_change(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], cli: Cli
) -> None:
    """A privilege the master holds without GRANT OPTION (the superuser granted the user
    something on a table the master does not own): check names it, setSecret refuses it
    and makes no twin."""
    world = pg_world()
    pg.sql("CREATE TABLE app.secret_stuff (id int)", database=PG_DATABASE)
    pg.sql("GRANT SELECT ON app.secret_stuff TO app", database=PG_DATABASE)
    cli.base_args = ["--region", "us-east-1", "--ca-bundle", str(pg.pki.ca_file)]
    found = findings(cli("check", world.app_arn, "--json"))
    assert found["app.copy"]["level"] == "fail"
    assert "SELECT WITH GRANT OPTION on table app.secret_stuff" in found["app.copy"]["message"]
    # The advice is PostgreSQL's (what to grant the admin), not MySQL's single-user rotation.
    assert 'GRANT SELECT ON TABLE app.secret_stuff TO "master" WITH GRANT OPTION' in found["app.copy"]["action"]
    assert "single-user" not in found["app.copy"]["action"]
    with pytest.raises(RotatorError, match="secret_stuff"):
        world.rotate()
    assert not pg.sql("SELECT 1 FROM pg_roles WHERE rolname = 'app_clone'")


def test_check_compares_the_whole_role_with_its_twin(
    pg: PostgreSQLServer, pg_world: Callable[..., PgWorld], cli: Cli
) -> None:
    """``twin.state`` on PostgreSQL compares the whole role as the copy reads it (attributes,
    memberships, settings, grants, default privileges) by the core's comparison: after a
    rotation the twin matches; a privilege given to the twin alone is ``twin.drift`` naming
    it; a membership taken from the twin is a difference setSecret will undo."""
    world = pg_world()
    world.rotate()  # app_clone is current, app the twin
    cli.base_args = ["--region", "us-east-1", "--ca-bundle", str(pg.pki.ca_file)]
    assert findings(cli("check", world.app_arn, "--json"))["twin.state"]["level"] == "ok"

    world.master_sql("GRANT TRUNCATE ON app.items TO app", PG_DATABASE)
    world.master_sql("ALTER ROLE app SET work_mem = '8MB'")
    drift = findings(cli("check", world.app_arn, "--json"))["twin.drift"]
    assert drift["level"] == "fail", drift
    assert "TRUNCATE ON TABLE app.items in database appdb" in drift["message"]
    assert "setting work_mem=8MB" in drift["message"]

    world.master_sql("REVOKE TRUNCATE ON app.items FROM app", PG_DATABASE)
    world.master_sql("ALTER ROLE app RESET work_mem")
    world.master_sql(f"REVOKE {world.owner} FROM app")
    state = findings(cli("check", world.app_arn, "--json"))["twin.state"]
    assert state["level"] == "warn", state
    assert f"missing member of {world.owner}" in state["message"]
    world.rotate()  # setSecret gives the twin its membership again
    assert runs_as(world, world.app_secret()) == (world.owner, "app")
