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
from tests.integration.test_postgresql_ownership import SCHEMA, Work, between_rotations, use_everything
from tests.support.aws import begin_rotation, create_secret, event, secret_value, stages
from tests.support.lambda_context import FakeLambdaContext
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
