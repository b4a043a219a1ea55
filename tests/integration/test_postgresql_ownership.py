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
from dataclasses import dataclass, field
from typing import Any

import pg8000.dbapi
import pytest

from tests.support.pgroles import Profile, adoption_plan, copy_statements, ident, read_profile, shortfall
from tests.support.postgresql import PostgreSQLServer, connect, password_literal
from tests.support.world import new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

DATABASE = "appdb"
SCHEMA = "app"
OWNER = "app_owner"
USERS = ("app", "app_clone")


def sqlstate(exc: BaseException) -> str:
    fields = exc.args[0] if exc.args else None
    return str(fields.get("C")) if isinstance(fields, dict) else type(exc).__name__


class Admin:
    """The master user's sessions, one per database, autocommit."""

    def __init__(self, pg: PostgreSQLServer, user: str, password: str) -> None:
        self.pg, self.user, self._password = pg, user, password
        self._sessions: dict[str, Any] = {}

    def session(self, database: str | None) -> Any:
        name = database or "postgres"
        if name not in self._sessions:
            self._sessions[name] = connect(self.pg, self.user, self._password, database=name)
            self._sessions[name].autocommit = True
        return self._sessions[name]

    def query(self, sql: str, params: tuple[Any, ...] = (), database: str | None = None) -> list[tuple[Any, ...]]:
        cursor = self.session(database).cursor()
        cursor.execute(sql, params) if params else cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []

    def run(self, database: str | None, statement: str) -> None:
        self.query(statement, database=database)

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()


@dataclass
class OwnerWorld:
    pg: PostgreSQLServer
    admin: Admin
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        return self.pg.server_version_num

    def login(self, user: str) -> Any:
        session = connect(self.pg, user, self.passwords[user], database=DATABASE)
        session.autocommit = True
        return session

    def owners(self) -> dict[str, str]:
        """Every relation and function in the schema, with its owner."""
        rows = self.admin.query(
            "SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'S', 'i') "
            "UNION ALL SELECT p.proname, pg_get_userbyid(p.proowner) FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
            (SCHEMA, SCHEMA),
            database=DATABASE,
        )
        return {str(name): str(owner) for name, owner in rows}

    def owned_by(self, role: str) -> int:
        """Objects the role owns in any database (pg_shdepend: shared, readable anywhere)."""
        (count,) = self.admin.query(
            "SELECT count(*) FROM pg_shdepend "
            "WHERE deptype = 'o' AND refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (role,),
        )[0]
        return int(count)


def membership_options(version: int) -> str:
    """How a login role joins the owner role: INHERIT (its privileges even if a session
    leaves the role, e.g. ``SET ROLE NONE``), SET (the role setting may take it), no ADMIN."""
    return " WITH INHERIT TRUE, SET TRUE, ADMIN FALSE" if version >= 160000 else ""


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
    version = world.version
    master.run(None, f"CREATE ROLE {OWNER} NOLOGIN")
    master.run(None, f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO {OWNER}")
    master.run(DATABASE, f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO {OWNER}")
    master.run(None, f"CREATE ROLE app LOGIN PASSWORD {password_literal(world.passwords['app'])}")
    master.run(None, f"GRANT {OWNER} TO app{membership_options(version)}")
    master.run(None, f"ALTER ROLE app SET role = '{OWNER}'")
    return world


def comparable(profile: Profile) -> tuple[Any, ...]:
    return (profile.attributes, profile.memberships, profile.settings, profile.grants, profile.default_privileges)


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


class Work:
    """Runs statements as one user and keeps every failure's SQLSTATE."""

    def __init__(self) -> None:
        self.failures: list[tuple[str, str, str]] = []
        self.done = 0

    def __call__(self, session: Any, user: str, *statements: str) -> None:
        for statement in statements:
            try:
                session.cursor().execute(statement)
                self.done += 1
            except pg8000.dbapi.DatabaseError as exc:
                self.failures.append((user, statement, sqlstate(exc)))

    def denied(self) -> list[tuple[str, str, str]]:
        return [failure for failure in self.failures if failure[2] == "42501"]


def between_rotations(work: Work, session: Any, user: str, i: int) -> None:
    """What an application (and its migrations) does while ``user`` is current: create
    tables, views, sequences and functions, and change and drop those the *other* user
    made before — the operations that need ownership, not a grant."""
    work(
        session,
        user,
        f"CREATE TABLE {SCHEMA}.t{i} (id bigserial PRIMARY KEY, note text)",
        f"INSERT INTO {SCHEMA}.t{i} (note) VALUES ('made by {user}')",
        f"CREATE VIEW {SCHEMA}.v{i} AS SELECT id, note FROM {SCHEMA}.t{i}",
        f"CREATE SEQUENCE {SCHEMA}.s{i}",
        f"CREATE FUNCTION {SCHEMA}.f{i}() RETURNS int LANGUAGE sql AS 'SELECT {i}'",
        f"CREATE TABLE {SCHEMA}.scratch{i} (id int, note text)",
    )
    if i == 0:
        return
    before = i - 1
    work(
        session,
        user,
        f"ALTER TABLE {SCHEMA}.t{before} ADD COLUMN c{i} int",
        f"CREATE INDEX ON {SCHEMA}.t{before} (note)",
        f"INSERT INTO {SCHEMA}.t{before} (note) VALUES ('{user} after rotation {i}')",
        f"UPDATE {SCHEMA}.t{before} SET c{i} = {i}",
        f"DELETE FROM {SCHEMA}.t{before} WHERE note LIKE 'made by %'",
        f"CREATE OR REPLACE VIEW {SCHEMA}.v{before} AS SELECT id, note, {i} AS rev FROM {SCHEMA}.t{before}",
        f"SELECT nextval('{SCHEMA}.s{before}')",
        f"ALTER SEQUENCE {SCHEMA}.s{before} INCREMENT BY 2",
        f"CREATE OR REPLACE FUNCTION {SCHEMA}.f{before}() RETURNS int LANGUAGE sql AS 'SELECT {i * 10}'",
        f"DROP TABLE {SCHEMA}.scratch{before}",
        f"TRUNCATE {SCHEMA}.t0",
    )


def use_everything(work: Work, session: Any, user: str, owners: dict[str, str], kinds: dict[str, str]) -> None:
    """Read, write and change every object in the schema as ``user``."""
    for name in sorted(owners):
        kind = kinds.get(name)
        qualified = f"{SCHEMA}.{ident(name)}"
        if kind == "r":
            work(
                session,
                user,
                f"SELECT count(*) FROM {qualified}",
                f"INSERT INTO {qualified} (note) VALUES ('final check by {user}')",
                f"UPDATE {qualified} SET note = note || '.'",
                f"DELETE FROM {qualified} WHERE note = 'nothing'",
                f"ALTER TABLE {qualified} ADD COLUMN final_{user} int",
                f"COMMENT ON TABLE {qualified} IS 'checked by {user}'",
            )
        elif kind == "v":
            work(session, user, f"SELECT count(*) FROM {qualified}", f"COMMENT ON VIEW {qualified} IS '{user}'")
        elif kind == "S" and not name.endswith("_id_seq"):
            work(session, user, f"SELECT nextval('{qualified}')", f"ALTER SEQUENCE {qualified} RESTART")
        elif kind == "f":
            work(session, user, f"SELECT {qualified}()", f"COMMENT ON FUNCTION {qualified}() IS '{user}'")


def test_twenty_rotations_leave_every_object_usable_by_both_users(owner_world: OwnerWorld) -> None:
    """20 rotations alternating app and app_clone, each current user (and the previous
    user's still-open session) creating and altering tables, views, sequences and
    functions between rotations: afterwards each of the two users can read, write and
    change every object — no "permission denied" at any point — and the owner role owns
    everything (the login roles own nothing)."""
    world = owner_world
    work = Work()
    current, previous_session = "app", None
    for i in range(20):
        session = world.login(current)
        cursor = session.cursor()
        cursor.execute("SELECT current_user, session_user")
        assert tuple(cursor.fetchone()) == (OWNER, current)
        between_rotations(work, session, current, i)
        if previous_session is not None:
            # The other user's pooled session, opened before the last rotation, still works.
            work(previous_session, "pooled", f"INSERT INTO {SCHEMA}.t{i} (note) VALUES ('pooled')")
            work(previous_session, "pooled", f"CREATE TABLE {SCHEMA}.late{i} (id int, note text)")
            previous_session.close()
        twin = USERS[1] if current == USERS[0] else USERS[0]
        rotate(world, current, twin)
        previous_session, current = session, twin
    assert previous_session is not None
    previous_session.close()

    assert work.denied() == [], work.denied()[:5]
    assert work.failures == [], work.failures[:5]
    owners = world.owners()
    assert set(owners.values()) == {OWNER}, owners
    assert world.owned_by("app") == world.owned_by("app_clone") == 0

    kinds = dict(
        world.admin.query(
            "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s UNION ALL SELECT p.proname, 'f' FROM pg_proc p JOIN pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = %s",
            (SCHEMA, SCHEMA),
            database=DATABASE,
        )
    )
    final = Work()
    for user in USERS:
        session = world.login(user)
        use_everything(final, session, user, owners, kinds)
        session.close()
    assert final.denied() == [], final.denied()[:5]
    assert final.failures == [], final.failures[:5]
    # 20 tables, 20 views, 20 sequences, 20 functions, each used by both users.
    assert final.done >= 2 * (20 * 6 + 20 * 2 + 20 * 2 + 20 * 2)


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


def catalogue_state(admin: Admin) -> tuple[Any, ...]:
    """Roles, memberships, owners and default privileges: any change shows up here."""
    return (
        admin.query("SELECT rolname, rolcanlogin, rolinherit FROM pg_roles ORDER BY 1"),
        admin.query(
            "SELECT roleid::regrole::text, member::regrole::text, admin_option FROM pg_auth_members ORDER BY 1, 2"
        ),
        admin.query("SELECT setrole::regrole::text, setconfig FROM pg_db_role_setting ORDER BY 1"),
        admin.query("SELECT classid, objid, refobjid, deptype FROM pg_shdepend ORDER BY 1, 2, 3, 4"),
        admin.query(
            "SELECT defaclrole::regrole::text, defaclacl::text FROM pg_default_acl ORDER BY 1", database=DATABASE
        ),
    )


@pytest.fixture
def legacy_world(pg: PostgreSQLServer, master: Admin) -> OwnerWorld:
    """A database as AWS's reference function leaves it: tables, a view, a sequence and a
    function owned by ``app`` itself, a grant app gave a reporting role, app's default
    privileges, and ``app_clone`` a member of ``app`` that owns a table of its own."""
    world = OwnerWorld(pg, master, {"app": new_password(), "app_clone": new_password()})
    master.run(None, "CREATE ROLE reporting NOLOGIN")
    master.run(None, f"CREATE ROLE app LOGIN PASSWORD {password_literal(world.passwords['app'])}")
    master.run(None, f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO app")
    master.run(DATABASE, f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO app")
    master.run(DATABASE, f"GRANT USAGE ON SCHEMA {SCHEMA} TO reporting")
    app = world.login("app")
    Work()(
        app,
        "app",
        f"CREATE TABLE {SCHEMA}.t (id bigserial PRIMARY KEY, note text)",
        f"CREATE VIEW {SCHEMA}.v AS SELECT id, note FROM {SCHEMA}.t",
        f"CREATE SEQUENCE {SCHEMA}.s",
        f"CREATE FUNCTION {SCHEMA}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        f"GRANT SELECT ON {SCHEMA}.t TO reporting",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {SCHEMA} GRANT SELECT ON TABLES TO reporting",
    )
    app.close()
    master.run(None, f"CREATE ROLE app_clone LOGIN PASSWORD {password_literal(world.passwords['app_clone'])}")
    master.run(None, "GRANT app TO app_clone" + (" WITH INHERIT TRUE" if world.version >= 160000 else ""))
    clone = world.login("app_clone")
    Work()(clone, "app_clone", f"CREATE TABLE {SCHEMA}.by_clone (id int, note text)")
    clone.close()
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
    version = world.version
    run = master.run
    run(
        None,
        f"CREATE ROLE app LOGIN CREATEDB CONNECTION LIMIT 7 VALID UNTIL '2099-01-01' PASSWORD {password_literal('x')}",
    )
    run(None, "CREATE ROLE readers NOLOGIN")
    run(None, "CREATE ROLE auditors NOLOGIN")
    run(None, "GRANT readers TO app WITH ADMIN OPTION")
    run(None, "GRANT auditors TO app" + (" WITH INHERIT FALSE, SET TRUE" if version >= 160000 else ""))
    run(None, "ALTER ROLE app SET statement_timeout = '5s'")
    run(None, f"ALTER ROLE app IN DATABASE {DATABASE} SET work_mem = '8MB'")
    run(None, f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO app")
    for statement in (
        f"GRANT USAGE ON SCHEMA {SCHEMA} TO app WITH GRANT OPTION",
        f"CREATE TABLE {SCHEMA}.m (id int, secret text)",
        f"GRANT SELECT (id), UPDATE (id) ON {SCHEMA}.m TO app WITH GRANT OPTION",
        f"GRANT INSERT ON {SCHEMA}.m TO app",
        f"CREATE VIEW {SCHEMA}.mv AS SELECT id FROM {SCHEMA}.m",
        f"GRANT SELECT ON {SCHEMA}.mv TO app",
        f"CREATE SEQUENCE {SCHEMA}.ms",
        f"GRANT USAGE, SELECT ON SEQUENCE {SCHEMA}.ms TO app",
        f"CREATE FUNCTION {SCHEMA}.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1'",
        f"REVOKE EXECUTE ON FUNCTION {SCHEMA}.f(int) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {SCHEMA}.f(int) TO app",
        f"CREATE TYPE {SCHEMA}.mood AS ENUM ('ok')",
        f"GRANT USAGE ON TYPE {SCHEMA}.mood TO app",
        "SELECT lo_create(4242)",
        "GRANT SELECT, UPDATE ON LARGE OBJECT 4242 TO app",
    ):
        run(DATABASE, statement)
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
