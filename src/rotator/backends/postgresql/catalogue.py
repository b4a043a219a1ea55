"""What a PostgreSQL role *has*, read from pg_catalog by an admin like Aurora's master
user (no superuser: pg_roles, never pg_authid), and what that admin may give
(docs/postgresql.md, "An exact copy: the catalogue map").

Role attributes, memberships and per-role settings are shared catalogues (any
database answers). Object privileges live in each database's own catalogue:
pg_shdepend (shared) says which databases hold an ACL entry or an owned object of the
role, and each of those is read over a session of its own (``Sessions``).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from rotator.backends.postgresql.connection import Session
from rotator.backends.postgresql.features import Features
from rotator.backends.postgresql.sql import ident, keyword

# A session in ``database`` (None: the admin's first one; shared catalogues only).
Sessions = Callable[[str | None], Session]


# The object catalogues with an ACL, per database: GRANT's keyword -> (catalogue, the
# identity quoted as GRANT takes it (regclass, regprocedure… casts and quote_ident
# quote), owner column, ACL column, row filter, has_*_privilege function that says
# whether the admin may grant on it; None: the owner's rights decide, as for large
# objects, which have no such function).
class AclSource(NamedTuple):
    catalogue: str
    name: str
    owner: str
    acl: str
    where: str
    check: str | None


OBJECT_ACLS: dict[str, AclSource] = {
    # Tables, partitioned tables, views, materialized views, foreign tables: GRANT … ON TABLE.
    "TABLE": AclSource(
        "pg_class",
        "o.oid::regclass::text",
        "relowner",
        "relacl",
        "relkind IN ('r','p','v','m','f')",
        "has_table_privilege",
    ),
    "SEQUENCE": AclSource(
        "pg_class", "o.oid::regclass::text", "relowner", "relacl", "relkind = 'S'", "has_sequence_privilege"
    ),
    "SCHEMA": AclSource("pg_namespace", "quote_ident(nspname)", "nspowner", "nspacl", "", "has_schema_privilege"),
    "ROUTINE": AclSource("pg_proc", "o.oid::regprocedure::text", "proowner", "proacl", "", "has_function_privilege"),
    "TYPE": AclSource("pg_type", "o.oid::regtype::text", "typowner", "typacl", "", "has_type_privilege"),
    "LANGUAGE": AclSource("pg_language", "quote_ident(lanname)", "lanowner", "lanacl", "", "has_language_privilege"),
    "LARGE OBJECT": AclSource("pg_largeobject_metadata", "o.oid::text", "lomowner", "lomacl", "", None),
    "FOREIGN DATA WRAPPER": AclSource(
        "pg_foreign_data_wrapper",
        "quote_ident(fdwname)",
        "fdwowner",
        "fdwacl",
        "",
        "has_foreign_data_wrapper_privilege",
    ),
    "FOREIGN SERVER": AclSource(
        "pg_foreign_server", "quote_ident(srvname)", "srvowner", "srvacl", "", "has_server_privilege"
    ),
}
# Shared objects: the same rows from any database.
SHARED_ACLS: dict[str, AclSource] = {
    "DATABASE": AclSource("pg_database", "quote_ident(datname)", "datdba", "datacl", "", "has_database_privilege"),
    "TABLESPACE": AclSource(
        "pg_tablespace", "quote_ident(spcname)", "spcowner", "spcacl", "", "has_tablespace_privilege"
    ),
}
DEFAULT_ACL_KINDS = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
    "L": "LARGE OBJECTS",
}

# The parameters of every reading: $1 the roles read (text[]), $2 the admin (may it
# grant what they hold?), $3 whether granting a role needs ADMIN OPTION on it (16+).
_WANTED = "wanted AS (SELECT oid, rolname FROM pg_roles WHERE rolname = ANY($1::text[]))"
# May the admin grant role ``r`` (a membership, or act as a creator of default privileges)?
# 16+: ADMIN OPTION on it; 15: CREATEROLE covers every role but a superuser.
_CAN_GRANT_ROLE = (
    "CASE WHEN $3::bool THEN pg_has_role($2::name, {r}.oid, 'MEMBER WITH ADMIN OPTION') ELSE NOT {r}.rolsuper END"
)


def _acl_rows(kind: str, source: AclSource) -> str:
    """The roles' entries in one catalogue's ACL, without the owner's own (an owner's rights
    come with ownership; they are not grants): (role, kind, name, column, privilege,
    grantable, may the admin grant it)."""
    if source.check:
        may = f"{source.check}($2::name, o.oid, a.privilege_type || ' WITH GRANT OPTION')"
    else:  # large objects: the owner, or a role with its privileges, may grant
        may = f"pg_has_role($2::name, o.{source.owner}, 'USAGE')"
    where = f" AND o.{source.where}" if source.where else ""
    return (
        f"SELECT w.rolname, '{kind}', {source.name}, NULL::text, a.privilege_type, a.is_grantable, {may} "  # noqa: S608  (constants)
        f"FROM pg_catalog.{source.catalogue} o, aclexplode(o.{source.acl}) a JOIN wanted w ON w.oid = a.grantee "
        f"WHERE o.{source.owner} <> a.grantee{where}"
    )


_COLUMN_ROWS = (
    "SELECT w.rolname, 'COLUMN', c.oid::regclass::text, quote_ident(t.attname), a.privilege_type, a.is_grantable, "
    "has_column_privilege($2::name, c.oid, t.attnum, a.privilege_type || ' WITH GRANT OPTION') "
    "FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid, aclexplode(t.attacl) a "
    "JOIN wanted w ON w.oid = a.grantee "
    "WHERE t.attacl IS NOT NULL AND NOT t.attisdropped AND c.relowner <> a.grantee"
)
_DEFAULT_ROWS = (
    "SELECT c.rolname, n.nspname, d.defaclobjtype::text, a.privilege_type, g.rolname, a.is_grantable, "  # noqa: S608
    + _CAN_GRANT_ROLE.format(r="c")
    + " FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace "
    "JOIN pg_roles c ON c.oid = d.defaclrole, aclexplode(d.defaclacl) a JOIN pg_roles g ON g.oid = a.grantee "
    "WHERE (c.oid IN (SELECT oid FROM wanted) OR g.oid IN (SELECT oid FROM wanted)) AND a.grantee <> d.defaclrole"
)
# What the roles hold in the database the session is in: object and column grants,
# default privileges (as creator and as grantee).
_GRANT_COLUMNS = "role, kind, name, col, privilege, grantable, may"
_LOCAL = (
    "'grants', (SELECT json_agg(x) FROM ("  # noqa: S608
    + " UNION ALL ".join([*(_acl_rows(kind, source) for kind, source in OBJECT_ACLS.items()), _COLUMN_ROWS])
    + f") x({_GRANT_COLUMNS})), 'defaults', (SELECT json_agg(x) FROM ("  # noqa: S608
    + _DEFAULT_ROWS
    + ") x(creator, schema, kind, privilege, grantee, grantable, may))"
)
LOCAL_READING = f"WITH {_WANTED} SELECT json_build_object({_LOCAL})"
# The shared catalogues (any database answers) and, in the same statement, the session's
# own database: one statement when the roles hold nothing elsewhere.
SHARED_READING = (
    f"WITH {_WANTED} SELECT json_build_object("  # noqa: S608  (constants)
    "'roles', (SELECT json_agg(json_build_array(r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, "
    "r.rolcreatedb, r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit, "
    "CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN 'infinity' "
    "ELSE to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') END)) "
    "FROM pg_roles r WHERE r.oid IN (SELECT oid FROM wanted)), "
    "'admin', (SELECT json_build_array(rolsuper, rolcreaterole, rolreplication, rolbypassrls) "
    "FROM pg_roles WHERE rolname = $2::name), "
    # 16+ may hold one membership several times (one per grantor): what the role can do
    # is the union of their options, and that is what a copy reproduces.
    "'memberships', (SELECT json_agg(x) FROM (SELECT w.rolname, g.rolname, "
    "bool_or(m.admin_option), {options}, " + _CAN_GRANT_ROLE.format(r="g") + " "
    "FROM pg_auth_members m JOIN wanted w ON w.oid = m.member JOIN pg_roles g ON g.oid = m.roleid "
    "GROUP BY w.rolname, g.rolname, g.oid, g.rolsuper) x(role, granted, admin, inherit, set, may)), "
    "'settings', (SELECT json_agg(json_build_array(w.rolname, d.datname, s.setconfig)) "
    "FROM pg_db_role_setting s JOIN wanted w ON w.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase), "
    "'shared_grants', (SELECT json_agg(x) FROM ("
    + " UNION ALL ".join(_acl_rows(kind, source) for kind, source in SHARED_ACLS.items())
    + f") x({_GRANT_COLUMNS})), "  # noqa: S608
    # pg_shdepend (shared) says where the roles have an ACL entry, own an object or are
    # named in a default privilege: only those databases get a session of their own.
    "'databases', (SELECT json_agg(DISTINCT d.datname) FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid "
    "WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('a', 'o', 'i') "
    "AND s.refobjid IN (SELECT oid FROM wanted) AND d.datallowconn), "
    "'owned', (SELECT json_agg(x) FROM (SELECT w.rolname, d.datname, count(*) "
    "FROM pg_shdepend s JOIN wanted w ON w.oid = s.refobjid LEFT JOIN pg_database d ON d.oid = s.dbid "
    "WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype = 'o' GROUP BY w.rolname, d.datname) "
    "x(role, database, count)), " + _LOCAL + ")"
)
_MEMBERSHIP_OPTIONS = {True: "bool_or(m.inherit_option), bool_or(m.set_option)", False: "NULL::bool, NULL::bool"}


class Attributes(NamedTuple):
    """pg_roles' attributes of one role. ``valid_until``: ISO 8601 in UTC, or
    ``infinity`` for never (NULL and 'infinity' mean the same; SQL writes only the second)."""

    superuser: bool
    inherit: bool
    createrole: bool
    createdb: bool
    login: bool
    replication: bool
    bypassrls: bool
    connection_limit: int
    valid_until: str


class Membership(NamedTuple):
    role: str
    admin: bool
    inherit: bool | None  # None before 16 (the member's INHERIT attribute decides)
    set: bool | None


class Setting(NamedTuple):
    database: str | None  # None: every database
    name: str
    value: str


class Grant(NamedTuple):
    database: str | None  # None: a shared object (database, tablespace)
    kind: str  # GRANT's object keyword: TABLE, SEQUENCE, SCHEMA, ROUTINE, …, COLUMN
    target: str  # quoted as GRANT takes it (for COLUMN: the table)
    column: str | None  # quoted column name (COLUMN only)
    privilege: str
    grantable: bool


class DefaultPrivilege(NamedTuple):
    """One entry of pg_default_acl: objects ``creator`` makes (in ``schema``) grant
    ``privilege`` to ``grantee``. The role being read is either."""

    database: str
    creator: str
    schema: str | None
    objects: str  # TABLES, SEQUENCES, …
    privilege: str
    grantee: str
    grantable: bool


class RoleProfile(NamedTuple):
    """Everything a role has that a copy reproduces (its password aside), and what it owns
    (owner rights are not grants and are not copied: the owner role is for them)."""

    name: str
    attributes: Attributes
    memberships: frozenset[Membership]
    settings: frozenset[Setting]
    grants: frozenset[Grant]
    default_privileges: frozenset[DefaultPrivilege]
    owned: tuple[tuple[str | None, int], ...]  # (database, objects) it owns; None: shared objects

    @property
    def owner_role(self) -> str | None:
        """The owner role its sessions create as (the ``role`` setting for every database)."""
        return next((s.value for s in self.settings if s.database is None and s.name == "role"), None)

    def as_creator(self) -> frozenset[DefaultPrivilege]:
        return frozenset(d for d in self.default_privileges if d.creator == self.name)


def role_exists(session: Session, role: str) -> bool:
    return bool(session.rows("SELECT 1 FROM pg_roles WHERE rolname = $1", (role,), "does the role exist"))


def existing_roles(session: Session, roles: Iterable[str]) -> set[str]:
    rows = session.rows(
        "SELECT rolname::text FROM pg_roles WHERE rolname = ANY($1::text[])", (list(roles),), "do the roles exist"
    )
    return {str(name) for (name,) in rows}


def normalise_valid_until(value: str) -> str:
    """``infinity``, or the UTC timestamp the reading printed as ISO 8601 with its zone."""
    if value == "infinity":
        return value
    return datetime.datetime.fromisoformat(value).replace(tzinfo=datetime.UTC).isoformat()


class AdminRights(NamedTuple):
    superuser: bool
    createrole: bool
    replication: bool
    bypassrls: bool


class Missing(NamedTuple):
    """One thing the admin cannot give a twin, and what would let it (None: nothing can)."""

    problem: str
    fix: str | None


class Reading(NamedTuple):
    """Some roles as the admin sees them, read together (one statement in the admin's
    database for the shared catalogues and that database, one more per other database
    where they hold something), with what the admin may grant of what they hold."""

    profiles: dict[str, RoleProfile | None]  # None: the role does not exist
    admin: str
    rights: AdminRights | None
    grantable: frozenset[Grant]  # of the roles' grants, those the admin may give
    roles_grantable: frozenset[str]  # of the roles named (memberships, creators), those it may grant


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def read_roles(sessions: Sessions, roles: Iterable[str], admin: str) -> Reading:
    """``roles`` as ``admin`` sees them: the shared catalogues and the admin's database in one
    statement; every other database where pg_shdepend (shared) says they hold something, one
    statement in a session there. template0/template1/postgres get no session unless so."""
    names = sorted(set(roles))
    home = sessions(None)
    features = home.features
    params = (names, admin, features.createrole_needs_admin_option)
    sql = SHARED_READING.replace("{options}", _MEMBERSHIP_OPTIONS[features.membership_options])
    shared = _json(home.scalar(sql, params, "read the roles (shared catalogues and this database)"))
    grants: dict[str, set[Grant]] = {name: set() for name in names}
    grantable: set[Grant] = set()
    roles_grantable: set[str] = set()
    defaults: dict[str, set[DefaultPrivilege]] = {name: set() for name in names}

    def add_grants(rows: Any, database: str | None) -> None:
        for row in rows or ():
            grant = Grant(
                database,
                str(row["kind"]),
                str(row["name"]),
                str(row["col"]) if row["col"] is not None else None,
                keyword(str(row["privilege"])),
                bool(row["grantable"]),
            )
            grants[str(row["role"])].add(grant)
            if row["may"]:
                grantable.add(grant)

    def add_local(local: Any, database: str) -> None:
        add_grants(local.get("grants"), database)
        for row in local.get("defaults") or ():
            entry = DefaultPrivilege(
                database,
                str(row["creator"]),
                str(row["schema"]) if row["schema"] else None,
                DEFAULT_ACL_KINDS[str(row["kind"])],
                keyword(str(row["privilege"])),
                str(row["grantee"]),
                bool(row["grantable"]),
            )
            if row["may"]:
                roles_grantable.add(entry.creator)
            for name in {entry.creator, entry.grantee} & set(names):
                defaults[name].add(entry)

    add_grants(shared.get("shared_grants"), None)
    add_local(shared, home.database)
    for database in shared.get("databases") or ():
        if database != home.database:
            add_local(_json(sessions(database).scalar(LOCAL_READING, params, "read the roles' grants")), database)
    memberships: dict[str, set[Membership]] = {name: set() for name in names}
    for row in shared.get("memberships") or ():
        granted = str(row["granted"])
        inherit, set_ = row["inherit"], row["set"]
        options = (None if option is None else bool(option) for option in (inherit, set_))
        memberships[str(row["role"])].add(Membership(granted, bool(row["admin"]), *options))
        if row["may"]:
            roles_grantable.add(granted)
    settings: dict[str, set[Setting]] = {name: set() for name in names}
    for role, database, config in shared.get("settings") or ():
        for item in config or ():
            name, _, value = str(item).partition("=")
            settings[str(role)].add(Setting(str(database) if database else None, name, value))
    owned: dict[str, list[tuple[str | None, int]]] = {name: [] for name in names}
    for row in sorted(shared.get("owned") or (), key=lambda r: str(r["database"] or "")):
        owned[str(row["role"])].append((str(row["database"]) if row["database"] else None, int(row["count"])))
    profiles: dict[str, RoleProfile | None] = dict.fromkeys(names)
    for row in shared.get("roles") or ():
        name = str(row[0])
        superuser, inherit, createrole, createdb, login, replication, bypassrls = (bool(v) for v in row[1:8])
        attributes = Attributes(
            superuser,
            inherit,
            createrole,
            createdb,
            login,
            replication,
            bypassrls,
            int(row[8]),
            normalise_valid_until(str(row[9])),
        )
        profiles[name] = RoleProfile(
            name,
            attributes,
            frozenset(memberships[name]),
            frozenset(settings[name]),
            frozenset(grants[name]),
            frozenset(defaults[name]),
            tuple(owned[name]),
        )
    rights = AdminRights(*(bool(v) for v in shared["admin"])) if shared.get("admin") else None
    return Reading(profiles, admin, rights, frozenset(grantable), frozenset(roles_grantable))


def read_profile(sessions: Sessions, role: str, admin: str | None = None) -> RoleProfile | None:
    """``role`` as the admin sees it; None when it does not exist."""
    home = sessions(None)
    return read_roles(sessions, (role,), admin or home.session_user).profiles[role]


def databases_of(session: Session, *roles: str) -> list[str]:
    """The databases where any of ``roles`` has an ACL entry, owns an object, or is named
    in a default privilege (pg_shdepend: shared, so any database answers)."""
    rows = session.rows(
        "SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE s.refclassid = 'pg_authid'::regclass AND s.deptype IN ('a', 'o', 'i') "
        "AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[])) "
        "AND d.datallowconn ORDER BY 1",
        (list(roles),),
        "list the databases that hold privileges of the roles",
    )
    return [str(name) for (name,) in rows]


def describe(profile: RoleProfile, names: Iterable[str], account: str) -> tuple[str, ...]:
    """The copy's reading of a role as comparable lines (``rotator check``'s ``twin.state``
    compares a user's and its twin's with the core's one comparison): ``names`` (the role
    and its partner) read as ``account``; a membership in one of them is not a copy's to
    have (the twin is never a member of the user). Owned objects are left out: ownership
    is the owner role's, not copied."""
    own = set(names)

    def who(role: str) -> str:
        return account if role in own else role

    def where(database: str | None) -> str:
        return f" in database {database}" if database else ""

    a = profile.attributes
    flags = [flag if getattr(a, name) else f"NO{flag}" for name, flag in _ATTRIBUTE_FLAGS]
    lines = [f"role {' '.join(flags)} CONNECTION LIMIT {a.connection_limit} VALID UNTIL {a.valid_until}"]
    lines += [
        f"member of {m.role} (admin {m.admin}, inherit {m.inherit}, set {m.set})"
        for m in profile.memberships
        if m.role not in own
    ]
    lines += [f"setting {s.name}={s.value}{where(s.database)}" for s in profile.settings]
    lines += [
        f"{g.privilege}{f' ({g.column})' if g.column else ''} ON {g.kind} {g.target}{where(g.database)}"
        f"{' WITH GRANT OPTION' if g.grantable else ''}"
        for g in profile.grants
    ]
    lines += [
        f"default privilege{where(d.database)}: {d.privilege} ON {d.objects} made by {who(d.creator)}"
        f"{f' in schema {d.schema}' if d.schema else ''} TO {who(d.grantee)}"
        f"{' WITH GRANT OPTION' if d.grantable else ''}"
        for d in profile.default_privileges
    ]
    return tuple(sorted(lines))


_ATTRIBUTE_FLAGS = (
    ("superuser", "SUPERUSER"),
    ("login", "LOGIN"),
    ("inherit", "INHERIT"),
    ("createrole", "CREATEROLE"),
    ("createdb", "CREATEDB"),
    ("replication", "REPLICATION"),
    ("bypassrls", "BYPASSRLS"),
)


# -- what the admin may give ------------------------------------------------------------------


def shortfall(reading: Reading, profile: RoleProfile, features: Features) -> list[Missing]:
    """What the reading's admin could not give a twin of ``profile`` — from the admin's own
    rights, read with the profile, before any change: the attributes only a superuser (15)
    or a holder (16+) gives, SUPERUSER itself, ADMIN OPTION on each role (16+; 15:
    CREATEROLE covers every non-superuser role), GRANT OPTION (or the owner's privileges)
    on each object, and membership rights over the creators of default privileges. Each
    with the statement that would give the admin what it lacks."""
    admin = reading.admin
    rights = reading.rights or AdminRights(False, False, False, False)
    missing: list[Missing] = []
    if profile.attributes.superuser and not rights.superuser:
        missing.append(Missing("SUPERUSER (a superuser is copied only by a superuser)", None))
    if rights.superuser:
        return missing
    if not rights.createrole:
        missing.append(Missing("CREATEROLE (to create and alter the twin)", f"ALTER ROLE {ident(admin)} CREATEROLE"))
    held = {"REPLICATION": rights.replication, "BYPASSRLS": rights.bypassrls}
    wanted = {"REPLICATION": profile.attributes.replication, "BYPASSRLS": profile.attributes.bypassrls}
    for flag, needed in wanted.items():
        if needed and (not features.privileged_attributes_need_own or not held[flag]):
            # 15: only a superuser gives these, and only to a superuser's copy; 16+: a holder.
            fix = (
                f"ALTER ROLE {ident(admin)} {flag} (as a superuser)"
                if features.privileged_attributes_need_own
                else None
            )
            missing.append(Missing(f"the {flag} attribute", fix))
    for membership in sorted(profile.memberships, key=str):
        if membership.role not in reading.roles_grantable:
            missing.append(
                Missing(
                    f"ADMIN OPTION on role {membership.role}",
                    f"GRANT {ident(membership.role)} TO {ident(admin)} WITH ADMIN OPTION",
                )
            )
    for creator in sorted({d.creator for d in profile.default_privileges} - {profile.name, admin}):
        if creator not in reading.roles_grantable:
            missing.append(
                Missing(
                    f"ADMIN OPTION on role {creator} (to copy its default privileges)",
                    f"GRANT {ident(creator)} TO {ident(admin)} WITH ADMIN OPTION",
                )
            )
    for grant in sorted(profile.grants - reading.grantable, key=str):
        target = f"{grant.target} ({grant.column})" if grant.column else grant.target
        on = grant._replace(grantable=True)
        where = f" (in database {grant.database}, as the owner of {grant.kind.lower()} {grant.target})"
        missing.append(
            Missing(
                f"{grant.privilege} WITH GRANT OPTION on {grant.kind.lower()} {target}",
                f"{_grant_text(on, admin)}{where if grant.database else ''}",
            )
        )
    return missing


def advice(admin: str, missing: list[Missing]) -> str:
    """What to do about ``missing``, in PostgreSQL's words: what to grant the admin, or
    single-user rotation when no grant makes the copy possible (SUPERUSER; 15's
    REPLICATION/BYPASSRLS)."""
    fixes = [m.fix for m in missing if m.fix]
    if len(fixes) < len(missing):
        lacking = "; ".join(fixes)
        also = f" (and give admin '{admin}': {lacking})" if lacking else ""
        return f"no grant lets admin '{admin}' copy this user: rotate it with single-user rotation{also}"
    return f"give admin '{admin}' what it lacks, then check again: " + "; ".join(fixes)


def _grant_text(grant: Grant, grantee: str) -> str:
    columns = f" ({grant.column})" if grant.column else ""
    kind = "TABLE" if grant.kind == "COLUMN" else grant.kind
    return f"GRANT {grant.privilege}{columns} ON {kind} {grant.target} TO {ident(grantee)} WITH GRANT OPTION"


def owned_databases(session: Session, roles: Iterable[str]) -> list[str | None]:
    """Where any of ``roles`` owns anything (None: a shared object such as a database)."""
    rows = session.rows(
        "SELECT DISTINCT d.datname FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid "
        "WHERE s.deptype = 'o' AND s.refclassid = 'pg_authid'::regclass "
        "AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[]))",
        (list(roles),),
        "list where the roles own objects",
    )
    return sorted((str(name) if name else None for (name,) in rows), key=lambda n: n or "")
