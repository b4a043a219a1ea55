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
  columns in pg_attribute, not from a list), as the server prints each ``aclitem``
  (``grantee=arwdDxt*/grantor``), parsed here, each object named by
  ``pg_describe_object`` — in every database the server has that allows connections;
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
from typing import NamedTuple

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


def acl_catalogues(session: Session) -> list[tuple[str, str, str, bool]]:
    """(catalogue, acl column, owner column or '', shared) for every catalogue with an
    ACL column, found in pg_attribute (aclitem[]) — so a new catalogue is not missed."""
    rows = session.rows(
        "SELECT c.relname::text, a.attname::text, c.relisshared FROM pg_attribute a JOIN pg_class c "
        "ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'pg_catalog' AND c.relkind = 'r' AND a.atttypid = 'aclitem[]'::regtype "
        "AND NOT a.attisdropped ORDER BY 1",
        (),
        "list the catalogues with ACLs",
    )
    owners = {
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
    found = []
    for catalogue, column, shared in rows:
        if catalogue in ("pg_init_privs", "pg_default_acl"):
            continue  # extension bookkeeping; default ACLs are read on their own
        found.append((str(catalogue), str(column), owners.get(str(catalogue), ""), bool(shared)))
    return found


def _acl_lines(session: Session, roles: tuple[str, ...], *, shared: bool) -> dict[str, list[str]]:
    """Per role: ``acl <object>: <privs>`` for every ACL entry naming it, in this database."""
    lines: dict[str, list[str]] = {role: [] for role in roles}
    for catalogue, column, owner, is_shared in acl_catalogues(session):
        if is_shared != shared:
            continue
        if catalogue == "pg_attribute":
            sql = (
                "SELECT pg_describe_object('pg_class'::regclass, a.attrelid, a.attnum), "
                "pg_get_userbyid(c.relowner)::text, a.attacl::text[] "
                "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE a.attacl IS NOT NULL AND NOT a.attisdropped"
            )
        else:
            owner_sql = f"pg_get_userbyid({owner})::text" if owner else "NULL::text"
            # pg_describe_object names a large object by pg_largeobject, not its metadata table.
            described = "pg_largeobject" if catalogue == "pg_largeobject_metadata" else catalogue
            sql = (
                f"SELECT pg_describe_object('{described}'::regclass, oid, 0), {owner_sql}, {column}::text[] "  # noqa: S608
                f"FROM pg_catalog.{catalogue} WHERE {column} IS NOT NULL"
            )
        for described, owned_by, acl in session.rows(sql, (), f"read the ACLs of {catalogue}"):
            for item in acl or ():
                grantee, privileges = parse_aclitem(str(item))
                if grantee in lines and grantee != owned_by:
                    lines[grantee].append(f"acl {described}: {privileges}")
    return lines


def read_definitions(  # noqa: PLR0912  (one reading, top to bottom)
    sessions: Callable[[str | None], Session], roles: tuple[str, ...]
) -> dict[str, RoleDefinition]:
    """The roles' definitions, read the independent way, in every database that allows
    connections (a grant in a database the catalogue's pg_shdepend reading missed is
    still seen)."""
    shared = sessions(None)
    lines: dict[str, list[str]] = {role: [] for role in roles}
    for role in roles:
        row = shared.rows(
            "SELECT (to_jsonb(r) - 'oid' - 'rolname' - 'rolpassword')::text FROM pg_roles r WHERE rolname = $1",
            (role,),
            f"print role '{role}'",
        )
        if not row:
            lines[role].append("role does not exist")
            continue
        attributes = json.loads(str(row[0][0]))
        if attributes.get("rolvaliduntil") in (None, "infinity"):
            attributes["rolvaliduntil"] = "infinity"
        lines[role].append("role " + json.dumps(attributes, sort_keys=True))
        member_rows = shared.rows(
            "SELECT (to_jsonb(m) - 'oid' - 'member' - 'grantor' - 'roleid')::text, pg_get_userbyid(m.roleid)::text "
            "FROM pg_auth_members m WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = $1)",
            (role,),
            f"print the memberships of '{role}'",
        )
        merged: dict[str, dict[str, bool]] = {}
        for options, granted in member_rows:
            held = merged.setdefault(str(granted), {})
            for key, value in json.loads(str(options)).items():
                held[key] = bool(held.get(key)) or bool(value)
        lines[role] += [f"member of {granted} {json.dumps(opts, sort_keys=True)}" for granted, opts in merged.items()]
        for database, config in shared.rows(
            "SELECT coalesce(d.datname::text, '*'), s.setconfig::text FROM pg_db_role_setting s "
            "LEFT JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1)",
            (role,),
            f"print the settings of '{role}'",
        ):
            lines[role].append(f"settings in {database}: {config}")
    for role, found in _acl_lines(shared, roles, shared=True).items():
        lines[role] += found
    databases = [
        str(name)
        for (name,) in shared.rows(
            "SELECT datname::text FROM pg_database WHERE datallowconn ORDER BY 1", (), "list the databases"
        )
    ]
    for database in databases:
        session = sessions(database)
        for role, found in _acl_lines(session, roles, shared=False).items():
            lines[role] += [f"[{database}] {line}" for line in found]
        for creator, schema, kind, acl in session.rows(
            "SELECT pg_get_userbyid(defaclrole)::text, coalesce(defaclnamespace::regnamespace::text, '*'), "
            "defaclobjtype::text, defaclacl::text[] FROM pg_default_acl",
            (),
            "read the default ACLs",
        ):
            for item in acl or ():
                grantee, privileges = parse_aclitem(str(item))
                if grantee == creator:
                    continue
                for role in roles:
                    if role in (creator, grantee):
                        subject = ROLE if creator == role else creator
                        other = ROLE if grantee == role else grantee
                        lines[role].append(
                            f"[{database}] default acl of {subject} in {schema} on {kind}: {other}={privileges}"
                        )
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
