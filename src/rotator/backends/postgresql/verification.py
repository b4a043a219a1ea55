"""testSecret's own reading of a PostgreSQL role: is the twin the same role but for its name?

setSecret reads a role through :mod:`.catalogue` (``aclexplode``, a list of object kinds,
the owner's entries left out) and writes the copy from that reading; checking the copy
with the same reading would share its blind spots. This module reads both roles a
second, independent way — what the server itself prints — and compares line by line:

- the role's whole ``pg_roles`` row as JSON (``to_jsonb``): a column the copy does not
  know about (a new attribute in a new version) shows up as a difference;
- memberships as their pg_auth_members rows (JSON: every option column the version has);
- per-role settings as ``setconfig``'s text;
- the ACLs of *every* catalogue that has one (found by looking for ``aclitem[]``
  columns in pg_attribute, not from a list: once per server version), as the server
  prints each ``aclitem`` (``grantee=arwdDxt*/grantor``), parsed here, each object named
  by ``pg_describe_object`` — in the admin's database and in every other database where
  the server's own dependency records (pg_shdepend, whatever the kind) name either
  role: a grant the copy's reading missed there is still seen, and the databases that
  hold nothing of theirs (template1, postgres) cost no session;
- default ACLs (``pg_default_acl``) naming the role as creator or grantee.

Normalised, because two copies still differ there: the role's own name becomes
``<role>``; a grantor is dropped (the twin's privileges are granted by the admin);
``rolvaliduntil`` NULL and ``infinity`` are one value; per role, a membership held from
several grantors is one line with the union of its options (what the role can do);
entries of objects the role owns are left out (ownership is not copied).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from rotator.backends.postgresql.connection import Session
from rotator.errors import PrivilegeMismatchError

ROLE = "<role>"
_SHOWN = 8


class RoleDefinition(NamedTuple):
    """One role as the server prints it, normalised; comparison-ready (lines, sorted)."""

    role: str
    lines: tuple[str, ...]


def parse_aclitem(item: str) -> tuple[str, str]:
    """``grantee=privs/grantor`` → (grantee, privs); the grantee ``""`` is PUBLIC. Names are
    printed double-quoted when they need it, with ``""`` for a quote."""
    grantee, i = _name(item, 0)
    if i >= len(item) or item[i] != "=":
        raise ValueError("not an aclitem")
    privileges = item[i + 1 :].split("/", 1)[0]
    return grantee, privileges


def _name(text: str, i: int) -> tuple[str, int]:
    if i < len(text) and text[i] == '"':
        out, i = [], i + 1
        while i < len(text):
            if text[i] == '"':
                if i + 1 < len(text) and text[i + 1] == '"':
                    out.append('"')
                    i += 2
                    continue
                return "".join(out), i + 1
            out.append(text[i])
            i += 1
        raise ValueError("unterminated name")
    end = i
    while end < len(text) and text[end] not in "=/":
        end += 1
    return text[i:end], end


# The catalogues with an ACL column, per server version (server_version_num): the layout
# of pg_catalog changes only with the server's version, so a warm container looks once.
_CATALOGUES: dict[int, tuple[tuple[str, str, str, bool], ...]] = {}
_OWNERS = {
    "pg_class": "relowner",
    "pg_namespace": "nspowner",
    "pg_proc": "proowner",
    "pg_type": "typowner",
    "pg_language": "lanowner",
    "pg_largeobject_metadata": "lomowner",
    "pg_foreign_data_wrapper": "fdwowner",
    "pg_foreign_server": "srvowner",
    "pg_database": "datdba",
    "pg_tablespace": "spcowner",
    "pg_parameter_acl": "",
    "pg_default_acl": "defaclrole",
    "pg_init_privs": "",
}


def acl_catalogues(session: Session) -> tuple[tuple[str, str, str, bool], ...]:
    """(catalogue, acl column, owner column or '', shared) for every catalogue with an
    ACL column, found in pg_attribute (aclitem[]) — so a new catalogue is not missed."""
    version = session.features.version_num
    if version not in _CATALOGUES:
        rows = session.rows(
            "SELECT c.relname::text, a.attname::text, c.relisshared FROM pg_attribute a JOIN pg_class c "
            "ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r' AND a.atttypid = 'aclitem[]'::regtype "
            "AND NOT a.attisdropped ORDER BY 1",
            (),
            "list the catalogues with ACLs",
        )
        _CATALOGUES[version] = tuple(
            (str(catalogue), str(column), _OWNERS.get(str(catalogue), ""), bool(shared))
            for catalogue, column, shared in rows
            # extension bookkeeping; default ACLs are read on their own
            if catalogue not in ("pg_init_privs", "pg_default_acl")
        )
    return _CATALOGUES[version]


def _naming(acl: str) -> str:
    """SQL: does the ACL text name one of the roles ($2: each name as an aclitem prints it,
    quotes doubled)? A cheap superset of the entries :func:`parse_aclitem` then decides on."""
    return f"EXISTS (SELECT FROM unnest($2::text[]) n WHERE strpos(array_to_string({acl}::text[], ' '), n) > 0)"


def _acls(catalogues: Iterable[tuple[str, str, str, bool]], *, shared: bool) -> str:
    """SQL: (object, owner, acl) of the rows of these catalogues whose ACL names the roles."""
    parts = []
    for catalogue, column, owner, is_shared in catalogues:
        if is_shared != shared:
            continue
        if catalogue == "pg_attribute":
            parts.append(
                "SELECT pg_describe_object('pg_class'::regclass, a.attrelid, a.attnum), "  # noqa: S608  (constants)
                "pg_get_userbyid(c.relowner)::text, a.attacl::text[] "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                f"WHERE a.attacl IS NOT NULL AND NOT a.attisdropped AND {_naming('a.attacl')}"
            )
            continue
        owner_sql = f"pg_get_userbyid({owner})::text" if owner else "NULL::text"
        # pg_describe_object names a large object by pg_largeobject, not its metadata table.
        described = "pg_largeobject" if catalogue == "pg_largeobject_metadata" else catalogue
        parts.append(
            f"SELECT pg_describe_object('{described}'::regclass, oid, 0), {owner_sql}, {column}::text[] "  # noqa: S608
            f"FROM pg_catalog.{catalogue} WHERE {column} IS NOT NULL AND {_naming(column)}"
        )
    if not parts:
        return "'[]'::json"
    return "(SELECT json_agg(x) FROM (" + " UNION ALL ".join(parts) + ") x(object, owner, acl))"  # noqa: S608


_DEFAULT_ACLS = (
    "(SELECT json_agg(x) FROM (SELECT pg_get_userbyid(defaclrole)::text, "  # noqa: S608  (constants)
    "coalesce(defaclnamespace::regnamespace::text, '*'), defaclobjtype::text, defaclacl::text[] FROM pg_default_acl "
    f"WHERE pg_get_userbyid(defaclrole) = ANY($1::text[]) OR {_naming('defaclacl')}) x(creator, schema, kind, acl))"
)
_SHARED = (
    "'roles', (SELECT json_agg(json_build_array(r.rolname::text, to_jsonb(r) - 'oid' - 'rolname' - 'rolpassword')) "
    "FROM pg_roles r WHERE r.rolname = ANY($1::text[])), "
    "'members', (SELECT json_agg(json_build_array(pg_get_userbyid(m.member)::text, pg_get_userbyid(m.roleid)::text, "
    "to_jsonb(m) - 'oid' - 'member' - 'grantor' - 'roleid')) FROM pg_auth_members m "
    "WHERE m.member IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[]))), "
    "'settings', (SELECT json_agg(json_build_array(pg_get_userbyid(s.setrole)::text, "
    "coalesce(d.datname::text, '*'), s.setconfig::text)) FROM pg_db_role_setting s "
    "LEFT JOIN pg_database d ON d.oid = s.setdatabase "
    "WHERE s.setrole IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[]))), "
    # Every database where the server's dependency records name either role, whatever the
    # kind of dependency: another database gets a session only if it holds something.
    "'databases', (SELECT json_agg(DISTINCT d.datname::text) FROM pg_shdepend s JOIN pg_database d "
    "ON d.oid = s.dbid WHERE s.refclassid = 'pg_authid'::regclass AND d.datallowconn "
    "AND s.refobjid IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1::text[]))), "
)


def _as_printed(role: str) -> str:
    """How an aclitem prints the role's name inside quotes (a superset match is enough)."""
    return role.replace('"', '""')


def _acl_lines(rows: Iterable[dict[str, Any]], lines: dict[str, list[str]], prefix: str = "") -> None:
    """Per role: ``acl <object>: <privs>`` for every ACL entry naming it."""
    for row in rows:
        for item in row["acl"] or ():
            grantee, privileges = parse_aclitem(str(item))
            if grantee in lines and grantee != row["owner"]:
                lines[grantee].append(f"{prefix}acl {row['object']}: {privileges}")


def _default_lines(rows: Iterable[dict[str, Any]], lines: dict[str, list[str]], database: str) -> None:
    for row in rows:
        creator, schema, kind = str(row["creator"]), str(row["schema"]), str(row["kind"])
        for item in row["acl"] or ():
            grantee, privileges = parse_aclitem(str(item))
            if grantee == creator:
                continue
            for role, found in lines.items():
                if role in (creator, grantee):
                    subject = ROLE if creator == role else creator
                    other = ROLE if grantee == role else grantee
                    found.append(f"[{database}] default acl of {subject} in {schema} on {kind}: {other}={privileges}")


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def read_definitions(sessions: Callable[[str | None], Session], roles: tuple[str, ...]) -> dict[str, RoleDefinition]:
    """The roles' definitions, read the independent way: one statement in the admin's
    database (the shared catalogues and that database's ACLs), one more in each other
    database the server's dependency records (pg_shdepend, any kind) name either role in."""
    home = sessions(None)
    catalogues = acl_catalogues(home)
    params = (list(roles), [_as_printed(role) for role in roles])
    local = f"'acl', {_acls(catalogues, shared=False)}, 'defaults', {_DEFAULT_ACLS}"
    found = _json(
        home.scalar(
            f"SELECT json_build_object({_SHARED}'shared_acl', {_acls(catalogues, shared=True)}, {local})",
            params,
            "print the roles",
        )
    )
    lines: dict[str, list[str]] = {role: [] for role in roles}
    printed = {str(name): attributes for name, attributes in found.get("roles") or ()}
    for role in roles:
        if role not in printed:
            lines[role].append("role does not exist")
            continue
        attributes = dict(_json(printed[role]))
        if attributes.get("rolvaliduntil") in (None, "infinity"):
            attributes["rolvaliduntil"] = "infinity"
        lines[role].append("role " + json.dumps(attributes, sort_keys=True))
    merged: dict[str, dict[str, dict[str, bool]]] = {role: {} for role in roles}
    for member, granted, options in found.get("members") or ():
        if member not in merged:
            continue
        held = merged[member].setdefault(str(granted), {})
        for key, value in _json(options).items():
            held[key] = bool(held.get(key)) or bool(value)
    for role, memberships in merged.items():
        lines[role] += [
            f"member of {granted} {json.dumps(opts, sort_keys=True)}" for granted, opts in memberships.items()
        ]
    for role, database, config in found.get("settings") or ():
        if role in lines:
            lines[role].append(f"settings in {database}: {config}")
    _acl_lines(found.get("shared_acl") or (), lines)
    _acl_lines(found.get("acl") or (), lines, f"[{home.database}] ")
    _default_lines(found.get("defaults") or (), lines, home.database)
    for database in found.get("databases") or ():
        if database == home.database:
            continue
        there = _json(
            sessions(database).scalar(f"SELECT json_build_object({local})", params, "print the roles' grants")
        )
        _acl_lines(there.get("acl") or (), lines, f"[{database}] ")
        _default_lines(there.get("defaults") or (), lines, database)
    return {role: RoleDefinition(role, tuple(sorted(_normalised(lines[role], role)))) for role in roles}


def _normalised(lines: Iterable[str], role: str) -> list[str]:
    return [line.replace(f"member of {role} ", f"member of {ROLE} ") for line in lines]


def compare(user: RoleDefinition, twin: RoleDefinition) -> tuple[list[str], list[str]]:
    only_user = sorted(set(user.lines) - set(twin.lines))
    only_twin = sorted(set(twin.lines) - set(user.lines))
    return only_user, only_twin


def verify_copy(
    sessions: Callable[[str | None], Session],
    secret_id: str,
    user: str,
    twin: str,
    *,
    ignore_memberships: Iterable[str] = (),
) -> None:
    """Raise PrivilegeMismatchError unless ``twin`` prints the same as ``user`` but for its
    name. ``ignore_memberships``: roles a twin may not be a member of (itself; the other)."""
    found = read_definitions(sessions, (user, twin))
    skip = {f"member of {name} " for name in ignore_memberships}

    def kept(definition: RoleDefinition) -> RoleDefinition:
        lines = tuple(line for line in definition.lines if not any(line.startswith(s) for s in skip))
        return definition._replace(lines=lines)

    only_user, only_twin = compare(kept(found[user]), kept(found[twin]))
    if only_user or only_twin:
        shown = [f"only '{user}': {line}" for line in only_user[:_SHOWN]]
        shown += [f"only '{twin}': {line}" for line in only_twin[:_SHOWN]]
        more = len(only_user) + len(only_twin) - len(shown)
        raise PrivilegeMismatchError(
            secret_id,
            f"'{twin}' does not match '{user}' (pg_catalog as printed): "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else ""),
        )
