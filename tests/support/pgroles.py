"""What a PostgreSQL login role *has*, read from pg_catalog, and the statements that give
the same to another role: the catalogue map of docs/postgresql.md ("An exact copy"), as
test code. The ownership proof (tests/integration/test_postgresql_ownership.py) rotates
with it before rotator has a PostgreSQL backend; afterwards it stays the tests' own,
independent reading of a role (as tests/support/world.py's is for MySQL), and the backend
has its own (src/rotator never imports this).

Everything is read by an admin like Aurora's master user (no superuser): pg_roles (never
pg_authid), pg_auth_members, pg_db_role_setting, and each object catalogue's acl column
through ``aclexplode``. Object grants live in each database's own catalogue:
pg_shdepend says which databases hold any (``deptype 'a'``, shared, readable from any
database), and each of those is read over its own connection.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Query = Callable[..., list[tuple[Any, ...]]]  # query(sql, params=(), database=None) -> rows

ATTRIBUTES = (
    "rolinherit",
    "rolcreaterole",
    "rolcreatedb",
    "rolcanlogin",
    "rolreplication",
    "rolconnlimit",
    "rolvaliduntil",
    "rolbypassrls",
)
# Attributes an admin cannot give unless it has them itself (16+) or is a superuser (15).
PRIVILEGED_ATTRIBUTES = {"rolreplication": "REPLICATION", "rolbypassrls": "BYPASSRLS"}

# Object acl columns: (kind, catalogue query yielding (identity, owner, acl)), per database.
# The identity is already quoted as GRANT wants it (regclass, regprocedure, … casts quote).
OBJECT_ACLS = {
    # Tables, partitioned tables, views, materialized views, foreign tables: all GRANT … ON TABLE.
    "TABLE": "SELECT oid::regclass::text, relowner, relacl FROM pg_class WHERE relkind IN ('r','p','v','m','f')",
    "SEQUENCE": "SELECT c.oid::regclass::text, c.relowner, c.relacl FROM pg_class c WHERE c.relkind = 'S'",
    "SCHEMA": "SELECT quote_ident(nspname), nspowner, nspacl FROM pg_namespace",
    "ROUTINE": "SELECT p.oid::regprocedure::text, p.proowner, p.proacl FROM pg_proc p",
    "TYPE": "SELECT t.oid::regtype::text, t.typowner, t.typacl FROM pg_type t",
    "LANGUAGE": "SELECT quote_ident(lanname), lanowner, lanacl FROM pg_language",
    "LARGE OBJECT": "SELECT oid::text, lomowner, lomacl FROM pg_largeobject_metadata",
    "FOREIGN DATA WRAPPER": "SELECT quote_ident(fdwname), fdwowner, fdwacl FROM pg_foreign_data_wrapper",
    "FOREIGN SERVER": "SELECT quote_ident(srvname), srvowner, srvacl FROM pg_foreign_server",
}
COLUMN_ACLS = (
    "SELECT c.oid::regclass::text, quote_ident(a.attname), c.relowner, a.attacl "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE a.attacl IS NOT NULL AND NOT a.attisdropped"
)
# Shared catalogues: the same rows from any database.
SHARED_ACLS = {
    "DATABASE": "SELECT quote_ident(datname), datdba, datacl FROM pg_database",
    "TABLESPACE": "SELECT quote_ident(spcname), spcowner, spcacl FROM pg_tablespace",
}
DEFAULT_ACL_KINDS = {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}


@dataclass(frozen=True)
class Grant:
    database: str | None  # None: a shared object (database, tablespace)
    kind: str  # GRANT's object keyword: TABLE, SEQUENCE, SCHEMA, ROUTINE, …
    target: str  # quoted, as GRANT takes it; "tbl (col)" for a column
    privilege: str
    grantable: bool

    def statement(self, grantee: str) -> str:
        on = self.target
        if self.kind == "COLUMN":
            table, column = self.target.rsplit(" ", 1)
            return f"GRANT {self.privilege} {column} ON TABLE {table} TO {ident(grantee)}" + self._option
        return f"GRANT {self.privilege} ON {self.kind} {on} TO {ident(grantee)}" + self._option

    @property
    def _option(self) -> str:
        return " WITH GRANT OPTION" if self.grantable else ""


@dataclass(frozen=True)
class Membership:
    role: str
    admin: bool
    inherit: bool | None  # None before PostgreSQL 16 (the member's rolinherit decides)
    set: bool | None

    def statement(self, member: str, version: int) -> str:
        if version >= 160000:
            options = f"ADMIN {self.admin}, INHERIT {self.inherit}, SET {self.set}".upper()
            return f"GRANT {ident(self.role)} TO {ident(member)} WITH {options}"
        return f"GRANT {ident(self.role)} TO {ident(member)}" + (" WITH ADMIN OPTION" if self.admin else "")


@dataclass(frozen=True)
class Setting:
    database: str | None  # None: every database
    name: str
    value: str

    def statement(self, role: str) -> str:
        where = f" IN DATABASE {ident(self.database)}" if self.database else ""
        return f"ALTER ROLE {ident(role)}{where} SET {self.name} = {literal(self.value)}"


@dataclass(frozen=True)
class DefaultPrivilege:
    database: str
    schema: str | None
    objects: str  # TABLES, SEQUENCES, …
    privilege: str
    grantee: str
    grantable: bool

    def statement(self, creator: str) -> str:
        schema = f" IN SCHEMA {ident(self.schema)}" if self.schema else ""
        option = " WITH GRANT OPTION" if self.grantable else ""
        return (
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(creator)}{schema} "
            f"GRANT {self.privilege} ON {self.objects} TO {ident(self.grantee)}{option}"
        )


@dataclass(frozen=True)
class Profile:
    """Everything a role has that a copy must reproduce (its password aside)."""

    attributes: tuple[tuple[str, Any], ...]
    memberships: frozenset[Membership]
    settings: frozenset[Setting]
    grants: frozenset[Grant]
    default_privileges: frozenset[DefaultPrivilege]
    owned: frozenset[tuple[str | None, str]]  # (database, catalogue) of what it owns: owner rights, not grants

    @property
    def attribute_map(self) -> dict[str, Any]:
        return dict(self.attributes)


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read_profile(query: Query, role: str) -> Profile:
    """``role`` as the admin sees it. ``query(sql, params, database)`` runs in ``database``
    (None: any one)."""
    version = int(query("SHOW server_version_num")[0][0])
    (row,) = query(f"SELECT {', '.join(ATTRIBUTES)} FROM pg_roles WHERE rolname = %s", (role,))
    attributes = tuple(zip(ATTRIBUTES, (normalise(v) for v in row), strict=True))
    options = "m.admin_option, m.inherit_option, m.set_option" if version >= 160000 else "m.admin_option, NULL, NULL"
    memberships = frozenset(
        Membership(str(name), bool(admin), inherit, set_)
        for name, admin, inherit, set_ in query(
            f"SELECT r.rolname, {options} FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
            "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s)",
            (role,),
        )
    )
    settings = set()
    for database, config in query(
        "SELECT d.datname, s.setconfig FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        (role,),
    ):
        for item in config:
            name, value = str(item).split("=", 1)
            settings.add(Setting(database, name, value))
    grants: set[Grant] = set()
    for kind, sql in SHARED_ACLS.items():
        grants |= acl_grants(query, None, kind, sql, role)
    databases = [
        str(name)
        for (name,) in query(
            "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s) AND s.deptype IN ('a', 'o')",
            (role,),
        )
    ]
    defaults: set[DefaultPrivilege] = set()
    for database in databases:
        for kind, sql in OBJECT_ACLS.items():
            grants |= acl_grants(query, database, kind, sql, role)
        grants |= column_grants(query, database, role)
        defaults |= default_privileges(query, database, role)
    owned = frozenset(
        (str(database) if database else None, str(catalogue))
        for database, catalogue in query(
            "SELECT d.datname, s.classid::regclass::text FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid "
            "WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s) AND s.deptype = 'o'",
            (role,),
        )
    )
    return Profile(attributes, memberships, frozenset(settings), frozenset(grants), frozenset(defaults), owned)


def normalise(value: Any) -> Any:
    """One form per meaning: a VALID UNTIL never set (NULL) and 'infinity' both never expire,
    and SQL can write only the second."""
    if value is None:
        return "infinity"
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    return value


def acl_grants(query: Query, database: str | None, kind: str, sql: str, role: str) -> set[Grant]:
    """The role's entries in one catalogue's acl column, leaving out objects it owns (an
    owner's rights are not grants: they come with ownership)."""
    rows = query(
        f"SELECT o.name, a.privilege_type, a.is_grantable FROM ({sql}) AS o(name, owner, acl), aclexplode(o.acl) a "
        "WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s) AND o.owner <> a.grantee",
        (role,),
        database=database,
    )
    return {Grant(database, kind, str(name), str(privilege), bool(grantable)) for name, privilege, grantable in rows}


def column_grants(query: Query, database: str, role: str) -> set[Grant]:
    rows = query(
        f"SELECT o.tbl || ' (' || o.col || ')', a.privilege_type, a.is_grantable "
        f"FROM ({COLUMN_ACLS}) AS o(tbl, col, owner, acl), aclexplode(o.acl) a "
        "WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = %s) AND o.owner <> a.grantee",
        (role,),
        database=database,
    )
    return {
        Grant(database, "COLUMN", str(name), str(privilege), bool(grantable)) for name, privilege, grantable in rows
    }


def default_privileges(query: Query, database: str, role: str) -> set[DefaultPrivilege]:
    """What objects the role creates will grant to others (``ALTER DEFAULT PRIVILEGES FOR ROLE
    role``): tied to the creator, so a twin that creates objects needs its own."""
    rows = query(
        "SELECT n.nspname, d.defaclobjtype, a.privilege_type, g.rolname, a.is_grantable "
        "FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace, aclexplode(d.defaclacl) a "
        "JOIN pg_roles g ON g.oid = a.grantee "
        "WHERE d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = %s) AND a.grantee <> d.defaclrole",
        (role,),
        database=database,
    )
    return {
        DefaultPrivilege(database, schema, DEFAULT_ACL_KINDS[str(kind)], str(privilege), str(grantee), bool(grantable))
        for schema, kind, privilege, grantee, grantable in rows
    }


# -- copying ---------------------------------------------------------------------------------


def attribute_clause(attributes: dict[str, Any]) -> str:
    """The role attributes as CREATE/ALTER ROLE options."""
    flags = {
        "rolinherit": "INHERIT",
        "rolcreaterole": "CREATEROLE",
        "rolcreatedb": "CREATEDB",
        "rolcanlogin": "LOGIN",
        "rolreplication": "REPLICATION",
        "rolbypassrls": "BYPASSRLS",
    }
    parts = [flag if attributes[name] else f"NO{flag}" for name, flag in flags.items()]
    parts.append(f"CONNECTION LIMIT {int(attributes['rolconnlimit'])}")
    parts.append(f"VALID UNTIL {literal(str(attributes['rolvaliduntil']))}")
    return " ".join(parts)


def copy_statements(source: Profile, target: Profile | None, twin: str, version: int) -> list[tuple[str | None, str]]:
    """(database, statement) pairs that make ``twin`` have what ``source`` has, given what
    it has now (``target``; None: it does not exist yet — CREATE ROLE comes first, from
    the caller, with the password). Grants the twin has in excess are revoked."""
    statements: list[tuple[str | None, str]] = []
    attributes = source.attribute_map
    # Only what differs: an unchanged REPLICATION/BYPASSRLS is not repeated (the master may
    # not name it even to keep it).
    current = target.attribute_map if target else {}
    if attributes != current:
        statements.append((None, f"ALTER ROLE {ident(twin)} {changed_attributes(attributes, current)}"))
    have = target.memberships if target else frozenset()
    for membership in sorted(source.memberships - have, key=str):
        statements.append((None, membership.statement(twin, version)))
    for membership in sorted(have - source.memberships, key=str):
        if membership.role not in {m.role for m in source.memberships}:
            statements.append((None, f"REVOKE {ident(membership.role)} FROM {ident(twin)}"))
    settings = target.settings if target else frozenset()
    for setting in sorted(settings - source.settings, key=str):
        where = f" IN DATABASE {ident(setting.database)}" if setting.database else ""
        statements.append((None, f"ALTER ROLE {ident(twin)}{where} RESET {setting.name}"))
    for setting in sorted(source.settings - settings, key=str):
        statements.append((None, setting.statement(twin)))
    grants = target.grants if target else frozenset()
    for grant in sorted(grants - source.grants, key=str):
        on = grant.target if grant.kind != "COLUMN" else grant.target.rsplit(" ", 1)[0]
        column = f" {grant.target.rsplit(' ', 1)[1]}" if grant.kind == "COLUMN" else ""
        kind = "TABLE" if grant.kind == "COLUMN" else grant.kind
        statements.append((grant.database, f"REVOKE {grant.privilege}{column} ON {kind} {on} FROM {ident(twin)}"))
    for grant in sorted(source.grants - grants, key=str):
        statements.append((grant.database, grant.statement(twin)))
    defaults = target.default_privileges if target else frozenset()
    for default in sorted(source.default_privileges - defaults, key=str):
        statements.append((default.database, default.statement(twin)))
    return statements


def changed_attributes(wanted: dict[str, Any], current: dict[str, Any]) -> str:
    clause = attribute_clause(wanted).split(" ")
    if not current:
        return " ".join(word for word in clause if word not in {"NOREPLICATION", "NOBYPASSRLS"})
    keep = attribute_clause(current).split(" ")
    privileged = {"REPLICATION", "NOREPLICATION", "BYPASSRLS", "NOBYPASSRLS"}
    return " ".join(word for word in clause if not (word in privileged and word in keep))


def shortfall(query: Query, admin: str, source: Profile) -> list[str]:
    """What ``admin`` could not give the twin — found before any change, so that a rotation
    refuses instead of half-copying. Read from the admin's own rights: role attributes,
    ADMIN OPTION on each role (16+; on 15 CREATEROLE covers every non-superuser role),
    and GRANT OPTION (or ownership through membership) on each object."""
    version = int(query("SHOW server_version_num")[0][0])
    (row,) = query(
        "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s", (admin,)
    )
    superuser, createrole, replication, bypassrls = row
    missing: list[str] = []
    if superuser:
        return missing
    if not createrole:
        missing.append("CREATEROLE (to create and alter the twin)")
    mine = {"rolreplication": replication, "rolbypassrls": bypassrls}
    for name, flag in PRIVILEGED_ATTRIBUTES.items():
        # 15: only a superuser may give it; 16+: only a role that has it.
        if source.attribute_map[name] and (version < 160000 or not mine[name]):
            missing.append(f"the {flag} attribute")
    for membership in sorted(source.memberships, key=str):
        if version >= 160000:
            (allowed,) = query("SELECT pg_has_role(%s, %s, 'MEMBER WITH ADMIN OPTION')", (admin, membership.role))[0]
        else:
            (allowed,) = query("SELECT NOT rolsuper FROM pg_roles WHERE rolname = %s", (membership.role,))[0]
        if not allowed:
            missing.append(f"ADMIN OPTION on role {membership.role}")
    checks = {
        "TABLE": "has_table_privilege",
        "SEQUENCE": "has_sequence_privilege",
        "SCHEMA": "has_schema_privilege",
        "ROUTINE": "has_function_privilege",
        "TYPE": "has_type_privilege",
        "LANGUAGE": "has_language_privilege",
        "DATABASE": "has_database_privilege",
        "TABLESPACE": "has_tablespace_privilege",
        "FOREIGN DATA WRAPPER": "has_foreign_data_wrapper_privilege",
        "FOREIGN SERVER": "has_server_privilege",
    }
    for grant in sorted(source.grants, key=str):
        if grant.kind == "COLUMN":
            table, column = grant.target.rsplit(" ", 1)
            sql = "SELECT has_column_privilege(%s, %s::regclass, %s, %s)"
            params: tuple[Any, ...] = (
                admin,
                table,
                column.strip("()").strip('"'),
                f"{grant.privilege} WITH GRANT OPTION",
            )
        elif grant.kind == "LARGE OBJECT":
            # No has_*_privilege function: the owner, or a role with its privileges, may grant.
            sql = "SELECT pg_has_role(%s, lomowner, 'USAGE') FROM pg_largeobject_metadata WHERE oid = %s::oid"
            params = (admin, grant.target)
        else:
            sql = f"SELECT {checks[grant.kind]}(%s, %s, %s)"
            params = (admin, unquoted(grant), f"{grant.privilege} WITH GRANT OPTION")
        (allowed,) = query(sql, params, database=grant.database)[0]
        if not allowed:
            missing.append(f"{grant.privilege} WITH GRANT OPTION on {grant.kind.lower()} {grant.target}")
    return missing


def unquoted(grant: Grant) -> str:
    """has_*_privilege takes a name as text: quoted identifiers are accepted where the
    function parses a qualified name (tables, functions, types), plain names elsewhere."""
    if grant.kind in {"SCHEMA", "DATABASE", "TABLESPACE", "LANGUAGE", "FOREIGN DATA WRAPPER", "FOREIGN SERVER"}:
        name = grant.target
        return name[1:-1].replace('""', '"') if name.startswith('"') else name
    return grant.target


def apply(run: Callable[[str | None, str], None], statements: Iterable[tuple[str | None, str]]) -> None:
    for database, statement in statements:
        run(database, statement)


# -- bringing an existing database to the owner role ---------------------------------------


def owned_databases(query: Query, role: str) -> list[str | None]:
    """Where ``role`` owns anything (None: a shared object, e.g. a database it owns)."""
    rows = query(
        "SELECT DISTINCT d.datname FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid "
        "WHERE s.deptype = 'o' AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = %s)",
        (role,),
    )
    return sorted((str(name) if name else None for (name,) in rows), key=lambda n: n or "")


def adoption_plan(
    query: Query, admin: str, user: str, owner: str, twin: str | None = None
) -> list[tuple[str | None, str]]:
    """The statements that bring ``user`` (and its twin, if it exists) to the owner-role design,
    computed from catalogue reads only (a dry run is this list, printed): the owner role
    gets the user's privileges and memberships and then everything the login roles own;
    the user's default privileges move to the owner role (the creator from now on); the
    login roles join the owner role and their sessions take it. The admin holds the two
    roles only while it reassigns (REASSIGN OWNED needs the privileges of both)."""
    version = int(query("SHOW server_version_num")[0][0])
    logins = [user] + ([twin] if twin and query("SELECT 1 FROM pg_roles WHERE rolname = %s", (twin,)) else [])
    profile = read_profile(query, user)
    inherit_set = " WITH INHERIT TRUE, SET TRUE" if version >= 160000 else ""
    plan: list[tuple[str | None, str]] = []
    if not query("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)):
        plan.append((None, f"CREATE ROLE {ident(owner)} NOLOGIN"))
    # Privileges first: the owner role can do what the user did before anything moves.
    for membership in sorted(profile.memberships, key=str):
        if membership.role != owner:
            plan.append((None, Membership(membership.role, False, True, True).statement(owner, version)))
    plan += [(grant.database, grant.statement(owner)) for grant in sorted(profile.grants, key=str)]
    # Membership before ownership moves: sessions open as the user keep every right
    # (a member with INHERIT has its owner role's privileges, ownership included).
    for login in logins:
        plan.append(
            (None, f"GRANT {ident(owner)} TO {ident(login)}" + (inherit_set + ", ADMIN FALSE" if inherit_set else ""))
        )
    plan += [(None, f"GRANT {ident(role)} TO {ident(admin)}{inherit_set}") for role in (*logins, owner)]
    for login in logins:
        for database in owned_databases(query, login):
            plan.append((database, f"REASSIGN OWNED BY {ident(login)} TO {ident(owner)}"))
    for default in sorted(profile.default_privileges, key=str):
        plan.append((default.database, default.statement(owner)))
        schema = f" IN SCHEMA {ident(default.schema)}" if default.schema else ""
        plan.append(
            (
                default.database,
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(user)}{schema} "
                f"REVOKE {default.privilege} ON {default.objects} FROM {ident(default.grantee)}",
            )
        )
    plan += [(None, f"REVOKE {ident(role)} FROM {ident(admin)}") for role in (*logins, owner)]
    plan += [(None, f"ALTER ROLE {ident(login)} SET role = {literal(owner)}") for login in logins]
    return plan
