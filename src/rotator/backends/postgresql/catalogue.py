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
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from rotator.backends.postgresql.connection import Session
from rotator.backends.postgresql.sql import keyword

# A session in ``database`` (None: the admin's first one; shared catalogues only).
Sessions = Callable[[str | None], Session]

# Object ACLs, per database: (kind, query yielding (identity, owner, acl)). The identity
# is quoted as GRANT takes it (regclass, regprocedure… casts and quote_ident quote).
OBJECT_ACLS: dict[str, str] = {
    # Tables, partitioned tables, views, materialized views, foreign tables: GRANT … ON TABLE.
    "TABLE": "SELECT oid::regclass::text, relowner, relacl FROM pg_class WHERE relkind IN ('r','p','v','m','f')",
    "SEQUENCE": "SELECT oid::regclass::text, relowner, relacl FROM pg_class WHERE relkind = 'S'",
    "SCHEMA": "SELECT quote_ident(nspname), nspowner, nspacl FROM pg_namespace",
    "ROUTINE": "SELECT oid::regprocedure::text, proowner, proacl FROM pg_proc",
    "TYPE": "SELECT oid::regtype::text, typowner, typacl FROM pg_type",
    "LANGUAGE": "SELECT quote_ident(lanname), lanowner, lanacl FROM pg_language",
    "LARGE OBJECT": "SELECT oid::text, lomowner, lomacl FROM pg_largeobject_metadata",
    "FOREIGN DATA WRAPPER": "SELECT quote_ident(fdwname), fdwowner, fdwacl FROM pg_foreign_data_wrapper",
    "FOREIGN SERVER": "SELECT quote_ident(srvname), srvowner, srvacl FROM pg_foreign_server",
}
# Shared objects: the same rows from any database.
SHARED_ACLS: dict[str, str] = {
    "DATABASE": "SELECT quote_ident(datname), datdba, datacl FROM pg_database",
    "TABLESPACE": "SELECT quote_ident(spcname), spcowner, spcacl FROM pg_tablespace",
}
COLUMN_ACLS = (
    "SELECT c.oid::regclass::text, quote_ident(a.attname), c.relowner, a.attacl "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE a.attacl IS NOT NULL AND NOT a.attisdropped"
)
DEFAULT_ACL_KINDS = {
    "r": "TABLES",
    "S": "SEQUENCES",
    "f": "FUNCTIONS",
    "T": "TYPES",
    "n": "SCHEMAS",
    "L": "LARGE OBJECTS",
}
# has_*_privilege per kind: may the admin give this privilege?
PRIVILEGE_CHECKS = {
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
# Kinds whose has_*_privilege takes a plain (unquoted) name; the others parse a quoted one.
_PLAIN_NAMES = frozenset({"SCHEMA", "DATABASE", "TABLESPACE", "LANGUAGE", "FOREIGN DATA WRAPPER", "FOREIGN SERVER"})


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

    def as_grantee(self) -> frozenset[DefaultPrivilege]:
        return frozenset(d for d in self.default_privileges if d.grantee == self.name)


def role_exists(session: Session, role: str) -> bool:
    return bool(session.rows("SELECT 1 FROM pg_roles WHERE rolname = $1", (role,), "does the role exist"))


def normalise_valid_until(value: Any) -> str:
    if value is None:
        return "infinity"
    if isinstance(value, datetime.datetime):
        if value in (datetime.datetime.max, datetime.datetime.min):
            return "infinity"
        return value.astimezone(datetime.UTC).isoformat()
    return str(value)


def read_attributes(session: Session, role: str) -> Attributes | None:
    rows = session.rows(
        "SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, "
        "rolconnlimit, rolvaliduntil FROM pg_roles WHERE rolname = $1",
        (role,),
        f"read the attributes of role '{role}'",
    )
    if not rows:
        return None
    row = rows[0]
    superuser, inherit, createrole, createdb, login, replication, bypassrls = (bool(value) for value in row[:7])
    return Attributes(
        superuser,
        inherit,
        createrole,
        createdb,
        login,
        replication,
        bypassrls,
        int(row[7]),
        normalise_valid_until(row[8]),
    )


def read_profile(sessions: Sessions, role: str) -> RoleProfile | None:
    """``role`` as the admin sees it; None when it does not exist."""
    shared = sessions(None)
    attributes = read_attributes(shared, role)
    if attributes is None:
        return None
    options = (
        "bool_or(m.admin_option), bool_or(m.inherit_option), bool_or(m.set_option)"
        if shared.features.membership_options
        else "bool_or(m.admin_option), NULL::bool, NULL::bool"
    )
    # 16+ may hold one membership several times (one per grantor): what the role can do
    # is the union of their options, and that is what a copy reproduces.
    memberships = frozenset(
        Membership(str(name), bool(admin), inherit, set_)
        for name, admin, inherit, set_ in shared.rows(
            f"SELECT r.rolname, {options} FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "  # noqa: S608  (constants)
            "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1) GROUP BY r.rolname",
            (role,),
            f"read the memberships of role '{role}'",
        )
    )
    settings: set[Setting] = set()
    for database, config in shared.rows(
        "SELECT d.datname, s.setconfig FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase "
        "WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)",
        (role,),
        f"read the settings of role '{role}'",
    ):
        for item in config or ():
            name, _, value = str(item).partition("=")
            settings.add(Setting(str(database) if database else None, name, value))
    grants: set[Grant] = set()
    for kind, sql in SHARED_ACLS.items():
        grants |= _acl_grants(shared, None, kind, sql, role)
    defaults: set[DefaultPrivilege] = set()
    for database in databases_of(shared, role):
        session = sessions(database)
        for kind, sql in OBJECT_ACLS.items():
            grants |= _acl_grants(session, database, kind, sql, role)
        grants |= _column_grants(session, database, role)
        defaults |= _default_privileges(session, database, role)
    owned = tuple(
        (str(database) if database else None, int(count))
        for database, count in shared.rows(
            "SELECT d.datname, count(*) FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid "
            "WHERE s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1) "
            "AND s.refclassid = 'pg_authid'::regclass AND s.deptype = 'o' GROUP BY d.datname ORDER BY 1",
            (role,),
            f"list what role '{role}' owns",
        )
    )
    return RoleProfile(
        role, attributes, memberships, frozenset(settings), frozenset(grants), frozenset(defaults), owned
    )


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


def _acl_grants(session: Session, database: str | None, kind: str, sql: str, role: str) -> set[Grant]:
    """The role's entries in one catalogue's ACL column, without the owner's own (an owner's
    rights come with ownership; they are not grants)."""
    rows = session.rows(
        f"SELECT o.name, a.privilege_type, a.is_grantable FROM ({sql}) AS o(name, owner, acl), aclexplode(o.acl) a "  # noqa: S608
        "WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) AND o.owner <> a.grantee",
        (role,),
        f"read {kind.lower()} privileges of role '{role}'",
    )
    return {Grant(database, kind, str(name), None, keyword(str(p)), bool(g)) for name, p, g in rows}


def _column_grants(session: Session, database: str, role: str) -> set[Grant]:
    rows = session.rows(
        "SELECT o.tbl, o.col, a.privilege_type, a.is_grantable "  # noqa: S608  (a constant)
        f"FROM ({COLUMN_ACLS}) AS o(tbl, col, owner, acl), aclexplode(o.acl) a "
        "WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1) AND o.owner <> a.grantee",
        (role,),
        f"read column privileges of role '{role}'",
    )
    return {Grant(database, "COLUMN", str(t), str(c), keyword(str(p)), bool(g)) for t, c, p, g in rows}


def _default_privileges(session: Session, database: str, role: str) -> set[DefaultPrivilege]:
    """Default privileges the role sets as a creator (``FOR ROLE role``) and those that
    name it as the grantee (``… TO role``): both are tied to the role's name, and a twin
    that creates objects, or receives them, needs its own."""
    rows = session.rows(
        "SELECT c.rolname, n.nspname, d.defaclobjtype::text, a.privilege_type, g.rolname, a.is_grantable "
        "FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace "
        "JOIN pg_roles c ON c.oid = d.defaclrole, aclexplode(d.defaclacl) a JOIN pg_roles g ON g.oid = a.grantee "
        "WHERE (c.rolname = $1 OR g.rolname = $1) AND a.grantee <> d.defaclrole",
        (role,),
        f"read default privileges of role '{role}'",
    )
    return {
        DefaultPrivilege(
            database,
            str(creator),
            str(schema) if schema else None,
            DEFAULT_ACL_KINDS[str(kind)],
            keyword(str(privilege)),
            str(grantee),
            bool(grantable),
        )
        for creator, schema, kind, privilege, grantee, grantable in rows
    }


# -- what the admin may give ------------------------------------------------------------------


def shortfall(sessions: Sessions, admin: str, profile: RoleProfile, twin_exists: bool = False) -> list[str]:
    """What ``admin`` could not give a twin of ``profile`` — read from the admin's own
    rights, before any change: the attributes only a superuser (15) or a holder (16+)
    gives, SUPERUSER itself, ADMIN OPTION on each role (16+; 15: CREATEROLE covers every
    non-superuser role), GRANT OPTION (or the owner's privileges) on each object, and
    membership rights over the creators of default privileges."""
    shared = sessions(None)
    features = shared.features
    (row,) = shared.rows(
        "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1",
        (admin,),
        "read the admin's attributes",
    )
    superuser, createrole, replication, bypassrls = (bool(v) for v in row)
    missing: list[str] = []
    if profile.attributes.superuser and not superuser:
        missing.append("SUPERUSER (a superuser is copied only by a superuser)")
    if superuser:
        return missing
    if not createrole:
        missing.append("CREATEROLE (to create and alter the twin)")
    held = {"REPLICATION": replication, "BYPASSRLS": bypassrls}
    wanted = {"REPLICATION": profile.attributes.replication, "BYPASSRLS": profile.attributes.bypassrls}
    for flag, needed in wanted.items():
        if needed and (not features.privileged_attributes_need_own or not held[flag]):
            missing.append(f"the {flag} attribute")
    for membership in sorted(profile.memberships, key=str):
        if not can_grant_role(shared, admin, membership.role):
            missing.append(f"ADMIN OPTION on role {membership.role}")
    for creator in sorted({d.creator for d in profile.default_privileges} - {profile.name, admin}):
        if not can_grant_role(shared, admin, creator):
            missing.append(f"ADMIN OPTION on role {creator} (to copy its default privileges)")
    for grant in sorted(profile.grants, key=str):
        if not _may_grant(sessions(grant.database), admin, grant):
            target = f"{grant.target} ({grant.column})" if grant.column else grant.target
            missing.append(f"{grant.privilege} WITH GRANT OPTION on {grant.kind.lower()} {target}")
    return missing


def can_grant_role(session: Session, admin: str, role: str) -> bool:
    if session.features.createrole_needs_admin_option:
        return bool(
            session.scalar(
                "SELECT pg_has_role($1, $2, 'MEMBER WITH ADMIN OPTION')", (admin, role), f"ADMIN OPTION on '{role}'"
            )
        )
    return bool(session.scalar("SELECT NOT rolsuper FROM pg_roles WHERE rolname = $1", (role,), f"is '{role}' super"))


def _may_grant(session: Session, admin: str, grant: Grant) -> bool:
    if grant.kind == "COLUMN":
        column = grant.column or ""
        name = column[1:-1].replace('""', '"') if column.startswith('"') else column
        return bool(
            session.scalar(
                "SELECT has_column_privilege($1, $2::regclass, $3, $4)",
                (admin, grant.target, name, f"{grant.privilege} WITH GRANT OPTION"),
                "may the admin grant a column privilege",
            )
        )
    if grant.kind == "LARGE OBJECT":
        # No has_*_privilege function: the owner, or a role with its privileges, may grant.
        return bool(
            session.scalar(
                "SELECT pg_has_role($1, lomowner, 'USAGE') FROM pg_largeobject_metadata WHERE oid = $2::oid",
                (admin, grant.target),
                "may the admin grant on a large object",
            )
        )
    target = grant.target
    if grant.kind in _PLAIN_NAMES and target.startswith('"'):
        target = target[1:-1].replace('""', '"')
    return bool(
        session.scalar(
            f"SELECT {PRIVILEGE_CHECKS[grant.kind]}($1, $2, $3)",
            (admin, target, f"{grant.privilege} WITH GRANT OPTION"),
            f"may the admin grant on a {grant.kind.lower()}",
        )
    )


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
