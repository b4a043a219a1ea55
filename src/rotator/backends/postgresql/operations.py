"""The statements that change roles: the twin's copy, a password, the owner role, and the
plan that brings an existing database to the owner role (docs/postgresql.md). Pure
functions of catalogue reads (:mod:`.catalogue`): they read nothing themselves, so a dry
run is the list they return.

Each statement is paired with the database it must run in (None: any — roles,
memberships, settings and database grants are shared).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

from rotator.backends.postgresql.catalogue import (
    Attributes,
    DefaultPrivilege,
    Grant,
    Membership,
    RoleProfile,
    Setting,
)
from rotator.backends.postgresql.features import Features
from rotator.backends.postgresql.sql import Statement, ident, keyword, literal, setting_name

Planned = tuple[str | None, Statement]

# SCRAM iterations of a verifier made here: PostgreSQL's default (scram_iterations, 16+).
SCRAM_ITERATIONS = 4096


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password``, made here as libpq's
    ``PQencryptPasswordConn`` makes it. ``ALTER ROLE … PASSWORD`` takes it as already
    encrypted, so the password itself never reaches the server's statement text (a
    utility statement takes no bind parameter: the value must be written into the SQL,
    where ``log_statement`` or a failed statement's log line would show it)."""
    import scramp  # noqa: PLC0415  (PostgreSQL only; comes with pg8000)

    salt, stored_key, server_key, _ = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info(
        password, iteration_count=iterations, salt=os.urandom(16)
    )

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def create_login(role: str, password: str) -> Statement:
    return Statement(
        f"CREATE ROLE {ident(role)} LOGIN PASSWORD {literal(scram_verifier(password))}",
        (),
        f"create role '{role}' (password as a SCRAM verifier)",
    )


def set_password(role: str, password: str) -> Statement:
    """The admin's change of another role's password (alternating users' twin; the
    admin-driven single-user strategy for RDS Proxy)."""
    return Statement(
        f"ALTER ROLE {ident(role)} PASSWORD {literal(scram_verifier(password))}",
        (),
        f"set the password of role '{role}' (SCRAM verifier)",
    )


def set_own_password(password: str) -> list[Statement]:
    """A user's change of its own password. In the owner-role design the session runs as
    the owner role (``current_user``), and PostgreSQL lets a role change only its own
    password: the session steps out of the owner role for the change and back into its
    default (the ``role`` setting) afterwards. ``SESSION_USER`` names the login role."""
    return [
        Statement("SET ROLE NONE", (), "leave the owner role for the password change"),
        Statement(
            f"ALTER ROLE SESSION_USER PASSWORD {literal(scram_verifier(password))}",
            (),
            "change the session user's own password (SCRAM verifier)",
        ),
        Statement("RESET ROLE", (), "return to the session's default role"),
    ]


# -- the twin's copy ----------------------------------------------------------------------------


_FLAGS = (
    ("superuser", "SUPERUSER"),  # only ever named by a superuser admin (catalogue.shortfall)
    ("inherit", "INHERIT"),
    ("createrole", "CREATEROLE"),
    ("createdb", "CREATEDB"),
    ("login", "LOGIN"),
    ("replication", "REPLICATION"),
    ("bypassrls", "BYPASSRLS"),
)


def attribute_changes(wanted: Attributes, current: Attributes | None) -> str:
    """The ALTER ROLE options that turn ``current`` into ``wanted``: only what differs
    (an unchanged REPLICATION or BYPASSRLS is not named: the RDS master may not name it
    even to keep it). ``current`` None: a role just made by ``CREATE ROLE … LOGIN``,
    which has CREATE ROLE's defaults."""
    base = current or Attributes(False, True, False, False, True, False, False, -1, "infinity")
    parts = [
        flag if getattr(wanted, name) else f"NO{flag}"
        for name, flag in _FLAGS
        if getattr(wanted, name) != getattr(base, name)
    ]
    if wanted.connection_limit != base.connection_limit:
        parts.append(f"CONNECTION LIMIT {int(wanted.connection_limit)}")
    if wanted.valid_until != base.valid_until:
        parts.append(f"VALID UNTIL {literal(wanted.valid_until)}")
    return " ".join(parts)


def membership_grant(membership: Membership, member: str, features: Features) -> Statement:
    role = ident(membership.role)
    if features.membership_options:
        options = f"ADMIN {membership.admin}, INHERIT {bool(membership.inherit)}, SET {bool(membership.set)}".upper()
        sql = f"GRANT {role} TO {ident(member)} WITH {options}"
    else:
        sql = f"GRANT {role} TO {ident(member)}" + (" WITH ADMIN OPTION" if membership.admin else "")
    return Statement(sql, (), f"grant role '{membership.role}' to '{member}'")


def _setting(setting: Setting, role: str) -> Statement:
    where = f" IN DATABASE {ident(setting.database)}" if setting.database else ""
    return Statement(
        f"ALTER ROLE {ident(role)}{where} SET {setting_name(setting.name)} = {literal(setting.value)}",
        (),
        f"set {setting.name} for role '{role}'",
    )


def _reset(setting: Setting, role: str) -> Statement:
    where = f" IN DATABASE {ident(setting.database)}" if setting.database else ""
    return Statement(
        f"ALTER ROLE {ident(role)}{where} RESET {setting_name(setting.name)}", (), f"reset {setting.name} for '{role}'"
    )


def _on(grant: Grant) -> str:
    columns = f" ({grant.column})" if grant.column else ""
    kind = "TABLE" if grant.kind == "COLUMN" else grant.kind
    return f"{keyword(grant.privilege)}{columns} ON {kind} {grant.target}"


def grant_statement(grant: Grant, grantee: str) -> Statement:
    option = " WITH GRANT OPTION" if grant.grantable else ""
    return Statement(
        f"GRANT {_on(grant)} TO {ident(grantee)}{option}",
        (),
        f"grant {grant.privilege} on {grant.kind.lower()} {grant.target} to '{grantee}'",
    )


def revoke_statement(grant: Grant, grantee: str, *, option_only: bool = False) -> Statement:
    what = "GRANT OPTION FOR " if option_only else ""
    return Statement(
        f"REVOKE {what}{_on(grant)} FROM {ident(grantee)}",
        (),
        f"revoke {grant.privilege} on {grant.kind.lower()} {grant.target} from '{grantee}'",
    )


def default_privilege_statement(entry: DefaultPrivilege, *, revoke: bool = False) -> Statement:
    schema = f" IN SCHEMA {ident(entry.schema)}" if entry.schema else ""
    if revoke:
        action = f"REVOKE {keyword(entry.privilege)} ON {entry.objects} FROM {ident(entry.grantee)}"
    else:
        option = " WITH GRANT OPTION" if entry.grantable else ""
        action = f"GRANT {keyword(entry.privilege)} ON {entry.objects} TO {ident(entry.grantee)}{option}"
    return Statement(
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {ident(entry.creator)}{schema} {action}",
        (),
        f"{'revoke' if revoke else 'set'} a default privilege of '{entry.creator}' for '{entry.grantee}'",
    )


def _renamed(entries: Iterable[DefaultPrivilege], source: str, twin: str) -> frozenset[DefaultPrivilege]:
    """The source's default privileges as the twin must have them: its name replaced by
    the twin's, as creator or as grantee."""
    return frozenset(
        entry._replace(
            creator=twin if entry.creator == source else entry.creator,
            grantee=twin if entry.grantee == source else entry.grantee,
        )
        for entry in entries
    )


def wanted_memberships(source: RoleProfile, twin: str) -> frozenset[Membership]:
    """What the twin must be a member of: the source's memberships, except one in the
    twin itself (AWS's reference design made ``app_clone`` a member of ``app``; no role
    can be a member of itself, and the owner-role design does not need it)."""
    return frozenset(m for m in source.memberships if m.role not in (twin, source.name))


def copy_plan(
    source: RoleProfile, target: RoleProfile | None, twin: str, features: Features
) -> tuple[list[Planned], list[Planned], set[str]]:
    """What makes ``twin`` have exactly what ``source`` has, given what it has now
    (``target``; None: it has just been created with CREATE ROLE … LOGIN PASSWORD).

    Returns (shared statements, per-database statements, creators): the shared ones run
    in one transaction (role, memberships, settings, database and tablespace grants),
    the others in one transaction per database; ``creators`` are the roles whose default
    privileges change, which the admin must act as (a temporary membership). Revokes
    come before grants, so the twin never holds more than the source at any point."""
    shared: list[Planned] = []
    local: list[Planned] = []
    changes = attribute_changes(source.attributes, target.attributes if target else None)
    if changes:
        shared.append((None, Statement(f"ALTER ROLE {ident(twin)} {changes}", (), f"set attributes of '{twin}'")))
    want = wanted_memberships(source, twin)
    have = target.memberships if target else frozenset()
    by_role = {m.role: m for m in want}
    for membership in sorted(have - want, key=str):
        # Gone, or held with other options: revoked and (below) granted again with the
        # source's options — in one transaction, so no session sees it missing.
        shared.append(
            (
                None,
                Statement(
                    f"REVOKE {ident(membership.role)} FROM {ident(twin)}",
                    (),
                    f"revoke role '{membership.role}' from '{twin}'",
                ),
            )
        )
    for membership in sorted(want - have, key=str):
        shared.append((None, membership_grant(by_role[membership.role], twin, features)))
    settings = target.settings if target else frozenset()
    wanted_names = {(s.database, s.name) for s in source.settings}
    for setting in sorted(settings - source.settings, key=str):
        if (setting.database, setting.name) not in wanted_names:
            shared.append((None, _reset(setting, twin)))
    for setting in sorted(source.settings - settings, key=str):
        shared.append((None, _setting(setting, twin)))
    grants = target.grants if target else frozenset()
    for grant in sorted(grants - source.grants, key=str):
        weaker = grant._replace(grantable=False)
        plan = shared if grant.database is None else local
        if grant.grantable and weaker in source.grants:
            plan.append((grant.database, revoke_statement(grant, twin, option_only=True)))
        else:
            plan.append((grant.database, revoke_statement(grant, twin)))
    # A table-level REVOKE takes the same privilege off every column of the table too
    # (PostgreSQL's rule): the source's column grants on it are given again.
    revoked = {(g.database, g.target, g.privilege) for g in grants - source.grants if g.kind == "TABLE"}
    again = {g for g in source.grants if g.kind == "COLUMN" and (g.database, g.target, g.privilege) in revoked}
    for grant in sorted((source.grants - grants) | again, key=str):
        plan = shared if grant.database is None else local
        plan.append((grant.database, grant_statement(grant, twin)))
    want_defaults = _renamed(source.default_privileges, source.name, twin)
    have_defaults = target.default_privileges if target else frozenset()
    creators: set[str] = set()
    for entry in sorted(have_defaults - want_defaults, key=str):
        local.append((entry.database, default_privilege_statement(entry, revoke=True)))
        creators.add(entry.creator)
    for entry in sorted(want_defaults - have_defaults, key=str):
        local.append((entry.database, default_privilege_statement(entry)))
        creators.add(entry.creator)
    return shared, local, creators


def temporary_membership(role: str, admin: str, features: Features) -> tuple[Statement, Statement]:
    """The admin acts as ``role`` (ALTER DEFAULT PRIVILEGES FOR ROLE, REASSIGN OWNED need
    its privileges) within one transaction: granted before, revoked after."""
    options = " WITH INHERIT TRUE, SET TRUE" if features.membership_options else ""
    return (
        Statement(f"GRANT {ident(role)} TO {ident(admin)}{options}", (), f"let the admin act as '{role}'"),
        Statement(f"REVOKE {ident(role)} FROM {ident(admin)}", (), f"end the admin's membership in '{role}'"),
    )


# -- the owner role -----------------------------------------------------------------------------


def owner_membership(owner: str, login: str, features: Features) -> Statement:
    """A login role joins the owner role: INHERIT (its privileges, ownership included, even
    after ``SET ROLE NONE``), SET (the ``role`` setting takes it), no ADMIN (neither login
    may grant the owner role on)."""
    options = " WITH INHERIT TRUE, SET TRUE, ADMIN FALSE" if features.membership_options else ""
    return Statement(f"GRANT {ident(owner)} TO {ident(login)}{options}", (), f"make '{login}' a member of '{owner}'")


def owner_setting(owner: str, login: str) -> Statement:
    return Statement(
        f"ALTER ROLE {ident(login)} SET role = {literal(owner)}", (), f"sessions of '{login}' create as '{owner}'"
    )


def adoption_plan(
    *,
    admin: str,
    user: RoleProfile,
    logins: list[str],
    owner: str,
    owner_exists: bool,
    owned_in: dict[str, list[str | None]],
    admin_member_of: set[str],
    features: Features,
) -> list[Planned]:
    """The statements that bring ``user`` (and its twin, if ``logins`` names it) to the
    owner-role design, from catalogue reads only (a dry run prints this list):

    1. the owner role exists and gets the user's privileges and memberships, so it can do
       what the user did before anything moves;
    2. the login roles join it (INHERIT: sessions open as the user keep every right);
    3. the admin holds the login roles and the owner role for the duration (REASSIGN OWNED
       needs the privileges of both sides) and moves everything they own, per database;
    4. the user's default privileges become the owner role's (the creator from now on);
    5. the admin's temporary memberships end; last, the ``role`` setting makes new
       sessions create as the owner role.

    Nothing is taken from the user: its own grants stay; a twin's extras go at the next
    copy."""
    plan: list[Planned] = []
    if not owner_exists:
        plan.append((None, Statement(f"CREATE ROLE {ident(owner)} NOLOGIN", (), f"create the owner role '{owner}'")))
    for membership in sorted(user.memberships, key=str):
        if membership.role not in (owner, *logins):
            plan.append((None, membership_grant(Membership(membership.role, False, True, True), owner, features)))
    plan += [(grant.database, grant_statement(grant, owner)) for grant in sorted(user.grants, key=str)]
    plan += [(None, owner_membership(owner, login, features)) for login in logins]
    temporary = [role for role in (*logins, owner) if role not in admin_member_of]
    plan += [(None, temporary_membership(role, admin, features)[0]) for role in temporary]
    for login in logins:
        for database in owned_in.get(login, []):
            plan.append(
                (
                    database,
                    Statement(
                        f"REASSIGN OWNED BY {ident(login)} TO {ident(owner)}",
                        (),
                        f"move what '{login}' owns to '{owner}'",
                    ),
                )
            )
    for entry in sorted(user.as_creator(), key=str):
        plan.append((entry.database, default_privilege_statement(entry._replace(creator=owner))))
        plan.append((entry.database, default_privilege_statement(entry, revoke=True)))
    plan += [(None, temporary_membership(role, admin, features)[1]) for role in temporary]
    plan += [(None, owner_setting(owner, login)) for login in logins]
    return plan


def render(plan: Iterable[Planned]) -> list[str]:
    """A plan as text for a dry run: ``[database] statement`` (no password is ever in a plan)."""
    return [f"[{database}] {statement.sql}" if database else statement.sql for database, statement in plan]
