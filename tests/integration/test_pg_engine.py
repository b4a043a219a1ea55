"""The PostgreSQL backend's engine calls on real servers (15 and 18), driven by an admin
like Aurora's master user (CREATEROLE, member of rds_superuser, no superuser): the twin's
exact copy and testSecret's independent check of it, refusal before any change, the
ownership case (20 alternating rotations by the engine), and adoption (dry run, apply).

The scenarios and their checks are test_postgresql_ownership.py's (which rotates with
the prototype tests/support/pgroles.py): here the backend does the rotating, and the
prototype's reading is the test's own, independent judge of the copy.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from rotator.backends.postgresql.admin import PgAdmin, admin_session
from rotator.backends.postgresql.connection import PostgreSQLDatabase
from rotator.errors import AdminPrivilegeError, DatabaseError, PrivilegeMismatchError
from tests.integration.test_pg_connection import ADMIN, backend, pg_secret
from tests.support.pgownership import (
    DATABASE,
    OWNER,
    SCHEMA,
    Admin,
    OwnerWorld,
    Work,
    between_rotations,
    catalogue_state,
    comparable,
    give_app_everything,
    set_up_legacy,
    set_up_owner_role,
    twenty_rotations,
)
from tests.support.pgroles import read_profile
from tests.support.postgresql import PostgreSQLServer, password_literal
from tests.support.world import new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


class Engine:
    """The backend as the rotation will call it: one admin session per step."""

    def __init__(self, pg: PostgreSQLServer, password: str) -> None:
        self.pg = pg
        self.db: PostgreSQLDatabase = backend(pg.pki.ca_file)
        self.admin = pg_secret("master", password, port=pg.port, secret_id=ADMIN)

    def session(self) -> Any:
        return admin_session(self.db, self.admin, pg_secret("app", "unused", port=self.pg.port, dbname=DATABASE))


@pytest.fixture
def master(pg: PostgreSQLServer) -> Iterator[tuple[Admin, Engine]]:
    password = new_password()
    pg.rds_master("master", password)
    admin = Admin(pg, "master", password)
    admin.run(None, f"CREATE DATABASE {DATABASE}")
    admin.run(DATABASE, f"CREATE SCHEMA {SCHEMA}")
    yield admin, Engine(pg, password)
    admin.close()


def sync(engine: Engine, world: OwnerWorld, current: str, twin: str) -> None:
    """setSecret (a new password, the exact copy) and testSecret (the independent check)
    of alternating users, by the backend."""
    world.passwords[twin] = new_password()
    with engine.session() as admin:
        admin.sync_twin(current, twin, world.passwords[twin])
    with engine.session() as admin:
        admin.verify_twin(current, twin)


def test_the_twin_is_an_exact_copy_and_testsecret_sees_any_drift(
    pg: PostgreSQLServer, master: tuple[Admin, Engine]
) -> None:
    """Attributes, memberships with their options (INHERIT/SET on 18), settings (global,
    per database), grants on database, schema, table, columns, sequence, function, type
    and large object with grant options, default privileges as creator and as grantee:
    copied by the backend, judged identical by the prototype's reading and by the
    backend's own verification; drift on both sides converges at the next sync; a
    difference made after the sync fails verification, naming it."""
    run, engine = master[0].run, master[1]
    world = OwnerWorld(pg, master[0], {"app": new_password()})
    run(
        None,
        "CREATE ROLE app LOGIN CREATEDB CONNECTION LIMIT 7 VALID UNTIL '2099-01-01' "
        f"PASSWORD {password_literal(world.passwords['app'])}",
    )
    give_app_everything(world)
    run(None, "CREATE ROLE reporting NOLOGIN")
    run(DATABASE, f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} GRANT SELECT ON TABLES TO app")
    # app as a creator of default privileges: made by app itself.
    run(DATABASE, f"GRANT CREATE ON SCHEMA {SCHEMA} TO app")
    session = world.login("app")
    session.cursor().execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} GRANT SELECT ON TABLES TO reporting")
    session.close()

    sync(engine, world, "app", "app_clone")
    query = master[0].query
    source, twin = read_profile(query, "app"), read_profile(query, "app_clone")
    assert comparable(twin)[:4] == comparable(source)[:4], "the prototype's reading disagrees"
    kinds = {grant.kind for grant in source.grants}
    assert kinds == {"DATABASE", "SCHEMA", "TABLE", "COLUMN", "SEQUENCE", "ROUTINE", "TYPE", "LARGE OBJECT"}
    if pg.major >= 16:
        (options,) = query(
            "SELECT inherit_option, set_option FROM pg_auth_members "
            "WHERE roleid = 'auditors'::regrole AND member = 'app_clone'::regrole"
        )
        assert options == (False, True)
    (granted,) = query(
        "SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a "
        "WHERE d.defaclrole = 'app_clone'::regrole AND a.grantee = 'reporting'::regrole",
        database=DATABASE,
    )[0]
    assert granted == 1, "app_clone's objects grant to reporting as app's do"
    connect_clone = world.login("app_clone")  # the new password logs in
    connect_clone.close()

    # Drift on both sides: the next sync follows the user and undoes the twin's extras.
    run(DATABASE, f"REVOKE INSERT ON {SCHEMA}.m FROM app")
    run(None, "REVOKE readers FROM app")
    run(None, "ALTER ROLE app SET search_path = 'app'")
    run(None, "ALTER ROLE app CONNECTION LIMIT 3")
    run(DATABASE, f"GRANT DELETE ON {SCHEMA}.m TO app_clone")
    run(DATABASE, f"GRANT SELECT ON {SCHEMA}.m TO app_clone WITH GRANT OPTION")
    run(None, "ALTER ROLE app_clone SET lock_timeout = '1s'")
    sync(engine, world, "app", "app_clone")
    assert comparable(read_profile(query, "app_clone"))[:4] == comparable(read_profile(query, "app"))[:4]

    # A difference the sync did not make: testSecret's own reading names it.
    run(DATABASE, f"GRANT TRUNCATE ON {SCHEMA}.mv TO app_clone")
    with engine.session() as admin, pytest.raises(PrivilegeMismatchError, match=r"only 'app_clone'.*view app\.mv"):
        admin.verify_twin("app", "app_clone")
    run(None, "ALTER ROLE app_clone NOCREATEDB")
    with engine.session() as admin, pytest.raises(PrivilegeMismatchError, match="rolcreatedb"):
        admin.verify_twin("app", "app_clone")


def test_what_the_master_cannot_give_is_refused_before_any_change(
    pg: PostgreSQLServer, master: tuple[Admin, Engine]
) -> None:
    """REPLICATION and BYPASSRLS, a role the master has no ADMIN OPTION on (18: pg_monitor;
    15: a superuser role), a privilege it holds without GRANT OPTION: AdminPrivilegeError
    naming each, and the catalogue unchanged (no twin)."""
    admin, engine = master
    admin.run(None, f"CREATE ROLE app LOGIN PASSWORD {password_literal('x')}")
    pg.sql("ALTER ROLE app REPLICATION BYPASSRLS")
    if pg.major >= 16:
        pg.sql("GRANT pg_monitor TO app")
    else:
        pg.sql("CREATE ROLE powerful SUPERUSER NOLOGIN")
        pg.sql("GRANT powerful TO app")
    pg.sql("CREATE ROLE other NOLOGIN")
    pg.sql(f"CREATE TABLE {SCHEMA}.others (id int)", database=DATABASE)
    pg.sql(f"ALTER TABLE {SCHEMA}.others OWNER TO other", database=DATABASE)
    pg.sql(f"GRANT SELECT ON {SCHEMA}.others TO app, master", database=DATABASE)  # master: no grant option
    before = catalogue_state(admin)
    with engine.session() as session, pytest.raises(AdminPrivilegeError) as refused:
        session.sync_twin("app", "app_clone", new_password())
    problem = refused.value.problem
    role = "pg_monitor" if pg.major >= 16 else "powerful"
    for named in (
        "REPLICATION",
        "BYPASSRLS",
        f"ADMIN OPTION on role {role}",
        f"SELECT WITH GRANT OPTION on table {SCHEMA}.others",
    ):
        assert named in problem
    assert "nothing was changed" in problem and refused.value.secret_id.endswith("pg-app-AbCdEf")
    assert catalogue_state(admin) == before
    pg.sql("DROP ROLE powerful" if pg.major < 16 else "REVOKE pg_monitor FROM app")
    pg.sql("ALTER ROLE app SUPERUSER NOREPLICATION NOBYPASSRLS")
    with engine.session() as session, pytest.raises(AdminPrivilegeError, match="SUPERUSER"):
        session.sync_twin("app", "app_clone", new_password())


# -- the ownership case ------------------------------------------------------------------


@pytest.fixture
def owner_world(pg: PostgreSQLServer, master: tuple[Admin, Engine]) -> OwnerWorld:
    admin = master[0]
    world = OwnerWorld(pg, admin, {"app": new_password()})
    set_up_owner_role(world)
    return world


@pytest.mark.slow
def test_twenty_engine_rotations_leave_every_object_usable_by_both_users(
    owner_world: OwnerWorld, master: tuple[Admin, Engine]
) -> None:
    """Alternating users, 20 rotations by the backend (sync_twin with a new password,
    verify_twin, then the twin becomes current), each current user — and the previous
    user's pooled session — creating and altering tables, views, sequences and functions
    in between: afterwards both users read, write and change every object, 0 "permission
    denied"; the owner role owns everything, the login roles nothing."""
    engine = master[1]
    twenty_rotations(owner_world, lambda world, current, twin: sync(engine, world, current, twin))


# -- adoption --------------------------------------------------------------------------------


@pytest.fixture
def legacy_world(pg: PostgreSQLServer, master: tuple[Admin, Engine]) -> OwnerWorld:
    """As AWS's reference function leaves a database: objects owned by ``app``, a grant app
    gave ``reporting``, app's default privileges, and ``app_clone`` a member of app that
    owns a table of its own."""
    admin = master[0]
    world = OwnerWorld(pg, admin, {"app": new_password(), "app_clone": new_password()})
    set_up_legacy(world)
    return world


def test_adoption_dry_run_changes_nothing_and_apply_moves_everything_in_one_transaction(
    legacy_world: OwnerWorld, master: tuple[Admin, Engine]
) -> None:
    """The dry run lists the plan and leaves the catalogue as it was; the ownership state
    says adoption is needed. Applied (one transaction), the login roles own nothing, a
    session opened before keeps working, reporting keeps SELECT (and gets it on new
    tables), the master keeps no membership, and then engine rotations work without
    "permission denied". A failing plan changes nothing at all."""
    world, engine = legacy_world, master[1]
    before = catalogue_state(world.admin)
    with engine.session() as admin:
        state = admin.ownership("app", "app_clone")
        assert state.needs_adoption and state.owner_role is None and state.owned_by_logins["app"] > 0
        report = admin.adopt("app", OWNER, "app_clone", dry_run=True)
    assert not report.applied
    assert catalogue_state(world.admin) == before, "the dry run changed the catalogue"
    assert f'[{DATABASE}] REASSIGN OWNED BY "app" TO "{OWNER}"' in report.plan
    assert f'[{DATABASE}] REASSIGN OWNED BY "app_clone" TO "{OWNER}"' in report.plan
    assert report.plan[-1] == f"ALTER ROLE \"app_clone\" SET role = '{OWNER}'"
    assert not any("PASSWORD" in line for line in report.plan)

    # All or nothing: a plan that fails at its last statement leaves no trace.
    world.admin.run(None, "CREATE ROLE blocker NOLOGIN")
    with engine.session() as admin:
        plan = admin.adoption_plan("app", OWNER, "app_clone")
        session = admin.session(DATABASE)
        with pytest.raises(DatabaseError, match="22012"), session.transaction():
            for _, statement in plan:
                session.execute(statement)
            session.rows("SELECT 1/0", (), "fail on purpose")
    world.admin.run(None, "DROP ROLE blocker")
    assert catalogue_state(world.admin) == before

    old_session = world.login("app")
    with engine.session() as admin:
        assert admin.adopt("app", OWNER, "app_clone", dry_run=False).applied
        assert not admin.ownership("app", "app_clone").needs_adoption
    assert world.owned_by("app") == world.owned_by("app_clone") == 0
    assert set(world.owners().values()) == {OWNER}
    work = Work()
    work(old_session, "app (old session)", f"ALTER TABLE {SCHEMA}.t ADD COLUMN during int", f"DROP VIEW {SCHEMA}.v")
    old_session.close()
    session = world.login("app")
    work(
        session,
        "app",
        f"CREATE TABLE {SCHEMA}.after (id int, note text)",
        f"INSERT INTO {SCHEMA}.t (note) VALUES ('x')",
    )
    session.close()
    assert work.failures == []
    check = world.admin.query
    for table in ("t", "after"):
        (readable,) = check("SELECT has_table_privilege('reporting', %s, 'SELECT')", (f"{SCHEMA}.{table}",), DATABASE)[
            0
        ]
        assert readable, f"reporting lost SELECT on {table}"
    for role in ("app", "app_clone", OWNER):
        (held,) = check("SELECT pg_has_role('master', %s, 'USAGE')", (role,))[0]
        assert not held, f"the master kept the privileges of {role}"

    current = "app"
    for i in range(4):
        session = world.login(current)
        between_rotations(work, session, current, i)
        session.close()
        twin = "app_clone" if current == "app" else "app"
        sync(engine, world, current, twin)
        current = twin
    assert work.failures == [], work.failures[:5]
    (member,) = check("SELECT pg_has_role('app_clone', 'app', 'MEMBER')")[0]
    assert not member
    assert set(world.owners().values()) == {OWNER}


def test_the_engine_reads_what_the_admin_is(master: tuple[Admin, Engine]) -> None:
    """The admin session knows who it is and which server it reached (the core's
    "secret says postgres, server is postgres" cross-check reads ``server.flavor``)."""
    with master[1].session() as admin:
        assert isinstance(admin, PgAdmin)
        assert admin.user == "master" and admin.server.flavor == "postgresql"
