"""The ownership scenarios of docs/postgresql.md ("Ownership") as test code, shared by the
tests that rotate by hand (tests/integration/test_postgresql_ownership.py, with
tests/support/pgroles.py) and those where rotator's PostgreSQL backend rotates
(tests/integration/test_pg_engine.py): the same world, the same work between rotations,
the same checks, whoever rotates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pg8000.dbapi

from tests.support.pgroles import Profile, ident
from tests.support.postgresql import PostgreSQLServer, connect, password_literal

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


def give_app_everything(world: OwnerWorld) -> None:
    """What an exact copy must carry, given to ``app`` (which must exist): memberships with
    their options (INHERIT/SET on 16+), settings (global and per database), and grants on
    the database, schema, table, columns, view, sequence, function, type and large object,
    some with grant options."""
    run = world.admin.run
    run(None, "CREATE ROLE readers NOLOGIN")
    run(None, "CREATE ROLE auditors NOLOGIN")
    run(None, "GRANT readers TO app WITH ADMIN OPTION")
    run(None, "GRANT auditors TO app" + (" WITH INHERIT FALSE, SET TRUE" if world.version >= 160000 else ""))
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


def set_up_owner_role(world: OwnerWorld) -> None:
    """The design set up from scratch: app_owner with the privileges, app a member of it."""
    admin = world.admin
    admin.run(None, f"CREATE ROLE {OWNER} NOLOGIN")
    admin.run(None, f"GRANT CONNECT, TEMPORARY ON DATABASE {DATABASE} TO {OWNER}")
    admin.run(DATABASE, f"GRANT USAGE, CREATE ON SCHEMA {SCHEMA} TO {OWNER}")
    admin.run(None, f"CREATE ROLE app LOGIN PASSWORD {password_literal(world.passwords['app'])}")
    admin.run(None, f"GRANT {OWNER} TO app{membership_options(world.version)}")
    admin.run(None, f"ALTER ROLE app SET role = '{OWNER}'")


def comparable(profile: Profile) -> tuple[Any, ...]:
    return (profile.attributes, profile.memberships, profile.settings, profile.grants, profile.default_privileges)


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


Rotate = Callable[[OwnerWorld, str, str], object]  # (world, current user, twin): the twin becomes current


def twenty_rotations(world: OwnerWorld, rotate: Rotate) -> None:
    """20 rotations alternating app and app_clone by ``rotate``, each current user (and the
    previous user's still-open session) creating and altering tables, views, sequences and
    functions between rotations; then asserts that each of the two users can read, write
    and change every object — no "permission denied" at any point — and that the owner
    role owns everything (the login roles own nothing)."""
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


def set_up_legacy(world: OwnerWorld) -> None:
    """A database as AWS's reference function leaves it: tables, a view, a sequence and a
    function owned by ``app`` itself, a grant app gave a reporting role, app's default
    privileges, and ``app_clone`` a member of ``app`` that owns a table of its own."""
    master = world.admin
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
