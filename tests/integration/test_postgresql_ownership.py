"""PostgreSQL alternating users with ownership solved — the *mechanism*, proven with SQL on
real servers (PostgreSQL 15 and 18: either side of 16's membership change), driven by an
admin like Aurora's master user (CREATEROLE, member of rds_superuser, no superuser).

The design (docs/postgresql.md, "Ownership"): one NOLOGIN **owner role** (``app_owner``)
holds every privilege and owns every object; both alternating login roles are members of
it and have the per-role setting ``role = app_owner``, so each session runs as the owner
role (``current_user``) while logged in as itself (``session_user``). Whatever either user
creates is the owner role's, and a rotation copies only what the login role itself has
(its attributes, its membership in the owner role, its settings): nothing it creates.

These tests rotate by hand, with the statements the backend will send
(tests/support/pgroles.py). **They will be superseded** by the same scenarios driving
rotator's real PostgreSQL backend through the handler (issue 22): keep the assertions,
replace :func:`rotate` and :func:`adopt` with rotations and the ``rotator`` command.
"""

from __future__ import annotations

from collections.abc import Iterator

import pg8000.dbapi
import pytest

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
    sqlstate,
    twenty_rotations,
)
from tests.support.pgroles import adoption_plan, copy_statements, ident, read_profile, shortfall
from tests.support.postgresql import PostgreSQLServer, connect, password_literal
from tests.support.world import new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]


@pytest.fixture
def master(pg: PostgreSQLServer) -> Iterator[Admin]:
    password = new_password()
    pg.rds_master("master", password)
    admin = Admin(pg, "master", password)
    admin.run(None, f"CREATE DATABASE {DATABASE}")
    admin.run(DATABASE, f"CREATE SCHEMA {SCHEMA}")  # the master's: the owner role creates in it
    yield admin
    admin.close()


@pytest.fixture
def owner_world(pg: PostgreSQLServer, master: Admin) -> OwnerWorld:
    """The design set up from scratch: app_owner with the privileges, app a member of it."""
    world = OwnerWorld(pg, master, {"app": new_password()})
    set_up_owner_role(world)
    return world


def rotate(world: OwnerWorld, current: str, twin: str) -> list[str]:
    """setSecret of alternating users, by hand: refuse what the admin cannot copy, then give
    the twin a new password and exactly what the current user has. Returns the statements
    (without the password's)."""
    admin = world.admin
    source = read_profile(admin.query, current)
    assert shortfall(admin.query, admin.user, source) == []
    exists = bool(admin.query("SELECT 1 FROM pg_roles WHERE rolname = %s", (twin,)))
    world.passwords[twin] = new_password()
    verifier = password_literal(world.passwords[twin])
    if exists:
        admin.run(None, f"ALTER ROLE {ident(twin)} PASSWORD {verifier}")
        target = read_profile(admin.query, twin)
    else:
        admin.run(None, f"CREATE ROLE {ident(twin)} LOGIN PASSWORD {verifier}")
        target = None
    statements = copy_statements(source, target, twin, world.version)
    for database, statement in statements:
        admin.run(database, statement)
    assert comparable(read_profile(admin.query, twin)) == comparable(source), "the twin is not an exact copy"
    return [statement for _, statement in statements]


def test_twenty_rotations_leave_every_object_usable_by_both_users(owner_world: OwnerWorld) -> None:
    """20 rotations alternating app and app_clone, each current user (and the previous
    user's still-open session) creating and altering tables, views, sequences and
    functions between rotations: afterwards each of the two users can read, write and
    change every object — no "permission denied" at any point — and the owner role owns
    everything (the login roles own nothing)."""
    twenty_rotations(owner_world, rotate)


def test_a_membership_clone_breaks_after_one_rotation(pg: PostgreSQLServer, master: Admin) -> None:
    """The control: AWS's reference design (``GRANT app TO app_clone``) gets "permission
    denied" as soon as the user who did not create a table is current again — the same
    checks catch it, so the proof above can fail."""
    passwords = {"app": new_password(), "app_clone": new_password()}
    master.run(None, f"CREATE ROLE app LOGIN PASSWORD {password_literal(passwords['app'])}")
    master.run(None, f"GRANT CONNECT ON DATABASE {DATABASE} TO app")
    master.run(DATABASE, f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO app")
    master.run(None, f"CREATE ROLE app_clone LOGIN PASSWORD {password_literal(passwords['app_clone'])}")
    master.run(None, "GRANT app TO app_clone" + (" WITH INHERIT TRUE" if pg.server_version_num >= 160000 else ""))
    work = Work()
    clone = connect(pg, "app_clone", passwords["app_clone"], database=DATABASE)
    clone.autocommit = True
    work(clone, "app_clone", f"CREATE TABLE {SCHEMA}.by_clone (id int)")
    clone.close()
    app = connect(pg, "app", passwords["app"], database=DATABASE)
    app.autocommit = True
    work(app, "app", f"SELECT * FROM {SCHEMA}.by_clone", f"ALTER TABLE {SCHEMA}.by_clone ADD COLUMN x int")
    app.close()
    assert [statement for _, statement, _ in work.denied()] == [
        f"SELECT * FROM {SCHEMA}.by_clone",
        f"ALTER TABLE {SCHEMA}.by_clone ADD COLUMN x int",
    ]


# -- an existing database, brought to the owner role ------------------------------------------


@pytest.fixture
def legacy_world(pg: PostgreSQLServer, master: Admin) -> OwnerWorld:
    """A database as AWS's reference function leaves it: tables, a view, a sequence and a
    function owned by ``app`` itself, a grant app gave a reporting role, app's default
    privileges, and ``app_clone`` a member of ``app`` that owns a table of its own."""
    world = OwnerWorld(pg, master, {"app": new_password(), "app_clone": new_password()})
    set_up_legacy(world)
    assert world.owned_by("app") > 0 and world.owned_by("app_clone") > 0
    return world


def adopt(world: OwnerWorld, *, dry_run: bool = False) -> list[tuple[str | None, str]]:
    """The future ``rotator`` command that brings a database to the owner role: the plan
    (a dry run prints it and changes nothing), then the same statements, in order."""
    admin = world.admin
    source = read_profile(admin.query, "app")
    assert shortfall(admin.query, admin.user, source) == []
    plan = adoption_plan(admin.query, admin.user, "app", OWNER, twin="app_clone")
    if not dry_run:
        for database, statement in plan:
            admin.run(database, statement)
    return plan


def test_an_existing_database_is_brought_to_the_owner_role(legacy_world: OwnerWorld) -> None:
    """Objects owned by the login roles (AWS's design) move to the owner role, by the master
    user alone: the dry run changes nothing; the real run keeps every session working
    (one opened before it included), keeps app's grant to reporting and its default
    privileges (now the owner role's), leaves the master no membership it did not have,
    and then rotations create no "permission denied"."""
    world = legacy_world
    before = catalogue_state(world.admin)
    plan = adopt(world, dry_run=True)
    assert catalogue_state(world.admin) == before, "the dry run changed the catalogue"
    statements = [statement for _, statement in plan]
    assert 'REASSIGN OWNED BY "app" TO "app_owner"' in statements
    assert 'REASSIGN OWNED BY "app_clone" TO "app_owner"' in statements
    assert statements[-1] == "ALTER ROLE \"app_clone\" SET role = 'app_owner'"

    old_session = world.login("app")  # opened before the change, as the user itself
    adopt(world)

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
    assert world.owners()["after"] == OWNER
    check = world.admin.query
    for table in ("t", "after"):
        (readable,) = check("SELECT has_table_privilege('reporting', %s, 'SELECT')", (f"{SCHEMA}.{table}",), DATABASE)[
            0
        ]
        assert readable, f"reporting lost SELECT on {table}"
    for role in ("app", "app_clone", OWNER):
        (held,) = check("SELECT pg_has_role('master', %s, 'USAGE')", (role,))[0]
        assert not held, f"the master kept the privileges of {role}"

    # From here on the rotations of the owner design: app_clone loses its membership in app.
    work = Work()
    current = "app"
    for i in range(4):
        session = world.login(current)
        between_rotations(work, session, current, i)
        session.close()
        twin = "app_clone" if current == "app" else "app"
        rotate(world, current, twin)
        current = twin
    assert work.failures == [], work.failures[:5]
    (member,) = check("SELECT pg_has_role('app_clone', 'app', 'MEMBER')")[0]
    assert not member
    assert set(world.owners().values()) == {OWNER}


def test_sessions_keep_the_owner_role_and_what_escapes_is_found(owner_world: OwnerWorld) -> None:
    """RESET ROLE and DISCARD ALL (a pooler's reset) return to the owner role; only SET ROLE
    NONE leaves it, and an object made then is owned by the login role — which
    pg_shdepend shows (what ``rotator check`` reports) and adoption moves back."""
    world = owner_world
    session = world.login("app")
    cursor = session.cursor()
    for reset in ("RESET ROLE", "DISCARD ALL", "RESET ALL"):
        cursor.execute(reset)
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] == OWNER, reset
    cursor.execute("SET ROLE NONE")
    cursor.execute(f"CREATE TABLE {SCHEMA}.escaped (id int)")
    session.close()
    assert world.owners()["escaped"] == "app"
    assert world.owned_by("app") == 1
    for database, statement in adoption_plan(world.admin.query, "master", "app", OWNER):
        world.admin.run(database, statement)
    assert world.owners()["escaped"] == OWNER
    assert world.owned_by("app") == 0


def test_a_lost_membership_never_locks_the_user_out(owner_world: OwnerWorld) -> None:
    """Should the membership go (someone revokes it), the role setting does not stop the
    login: the session runs as the user itself (with the server's warning)."""
    world = owner_world
    world.admin.run(None, f"REVOKE {OWNER} FROM app")
    session = world.login("app")
    cursor = session.cursor()
    cursor.execute("SELECT current_user, session_user")
    assert tuple(cursor.fetchone()) == ("app", "app")
    session.close()


# -- the exact copy, and what the master cannot give ---------------------------------------------


def test_the_twin_is_an_exact_copy_of_everything_the_user_has(pg: PostgreSQLServer, master: Admin) -> None:
    """Role attributes, memberships with their options, settings (global and per database),
    grants on the database, schema, table, columns, sequence, function, type and large
    object with their grant options: read from pg_catalog, given to the twin by the
    master, read back identical. A second sync after changes on both sides converges,
    revoking what the twin has in excess."""
    world = OwnerWorld(pg, master, {"app": new_password()})
    run = master.run
    run(
        None,
        f"CREATE ROLE app LOGIN CREATEDB CONNECTION LIMIT 7 VALID UNTIL '2099-01-01' PASSWORD {password_literal('x')}",
    )
    give_app_everything(world)
    source = read_profile(master.query, "app")
    kinds = {grant.kind for grant in source.grants}
    assert kinds == {"DATABASE", "SCHEMA", "TABLE", "COLUMN", "SEQUENCE", "ROUTINE", "TYPE", "LARGE OBJECT"}
    assert len(source.memberships) == 2 and len(source.settings) == 2
    rotate(world, "app", "app_clone")

    # Drift on both sides: the next sync follows the user and undoes the twin's extras.
    run(DATABASE, f"REVOKE INSERT ON {SCHEMA}.m FROM app")
    run(None, "REVOKE readers FROM app")
    run(None, "ALTER ROLE app SET search_path = 'app'")
    run(None, "ALTER ROLE app CONNECTION LIMIT 3")
    run(DATABASE, f"GRANT DELETE ON {SCHEMA}.m TO app_clone")
    run(None, "ALTER ROLE app_clone SET lock_timeout = '1s'")
    statements = rotate(world, "app", "app_clone")
    assert any(statement.startswith("REVOKE DELETE") for statement in statements)
    assert any(statement.startswith('REVOKE "readers"') for statement in statements)
    assert any("RESET lock_timeout" in statement for statement in statements)


def test_what_the_master_cannot_give_is_refused_before_any_change(pg: PostgreSQLServer, master: Admin) -> None:
    """The REPLICATION and BYPASSRLS attributes, a role the master has no ADMIN OPTION on
    (16+: a predefined role such as pg_monitor; 15: a superuser role), and a privilege on
    an object the master neither owns nor holds WITH GRANT OPTION: all found by reading,
    before the twin exists."""
    version = pg.server_version_num
    master.run(None, f"CREATE ROLE app LOGIN PASSWORD {password_literal('x')}")
    pg.sql("ALTER ROLE app REPLICATION BYPASSRLS")  # only a superuser (root) can
    if version >= 160000:
        pg.sql("GRANT pg_monitor TO app")
    else:
        pg.sql("CREATE ROLE powerful SUPERUSER NOLOGIN")
        pg.sql("GRANT powerful TO app")
    pg.sql("CREATE ROLE other NOLOGIN")
    pg.sql(f"CREATE TABLE {SCHEMA}.others (id int)", database=DATABASE)
    pg.sql(f"ALTER TABLE {SCHEMA}.others OWNER TO other", database=DATABASE)
    pg.sql(f"GRANT USAGE ON SCHEMA {SCHEMA} TO app", database=DATABASE)
    pg.sql(f"GRANT SELECT ON {SCHEMA}.others TO app", database=DATABASE)
    source = read_profile(master.query, "app")
    missing = shortfall(master.query, "master", source)
    role = "pg_monitor" if version >= 160000 else "powerful"
    assert missing == [
        "the REPLICATION attribute",
        "the BYPASSRLS attribute",
        f"ADMIN OPTION on role {role}",
        f"SELECT WITH GRANT OPTION on table {SCHEMA}.others",
    ]
    assert not master.query("SELECT 1 FROM pg_roles WHERE rolname = 'app_clone'")
    # And the server agrees, in two ways: without any privilege the GRANT fails (42501);
    # with the privilege but no grant option it *succeeds* with only a warning and grants
    # nothing — so a copy must check before (as above) and read back after.
    master.run(None, "CREATE ROLE probe NOLOGIN")
    with pytest.raises(pg8000.dbapi.DatabaseError) as refused:
        master.run(DATABASE, f"GRANT SELECT ON {SCHEMA}.others TO probe")
    assert sqlstate(refused.value) == "42501"
    pg.sql(f"GRANT SELECT ON {SCHEMA}.others TO master", database=DATABASE)
    master.run(DATABASE, f"GRANT SELECT ON {SCHEMA}.others TO probe")
    (granted,) = master.query("SELECT has_table_privilege('probe', %s, 'SELECT')", (f"{SCHEMA}.others",), DATABASE)[0]
    assert granted is False
