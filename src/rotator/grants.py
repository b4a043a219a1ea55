"""The server's rules for who may grant what, as functions over account profiles.

Used before anything is changed: by setSecret's pre-flight (the admin must be able
to give the twin everything the user holds, or nothing is created), by the
readiness check and by ``rotator check``. They mirror MySQL's and MariaDB's
documented rules; where the server knows better (partial revokes, a privilege
from a role that is not active), the statement fails and the step with it, with
nothing half-applied that a retry would not finish.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rotator.accounts import GRANT_OPTION, Account, Privilege, RoleGrant
from rotator.ports import AccountCatalogue


def effective_privileges(catalogue: AccountCatalogue, account: Account) -> tuple[set[Privilege], set[RoleGrant]]:
    """What ``account`` holds once logged in: its own grants plus those of its
    default roles (and of the roles granted to them), as the function's fresh
    connection will have them."""
    profile = catalogue.read_profile(account)
    held = set(profile.privileges)
    roles = set(profile.roles)
    queue = list(profile.default_roles)
    seen: set[tuple[str, str]] = set()
    while queue:
        role = queue.pop()
        if role in seen:
            continue
        seen.add(role)
        role_account = Account(*role)
        role_profile = catalogue.read_profile(role_account)
        held |= catalogue.role_privileges(role_account)
        roles |= role_profile.roles
        queue.extend((grant.role, grant.role_host) for grant in role_profile.roles)
    return held, roles


def can_create_users(held: Iterable[Privilege]) -> bool:
    # CREATE USER needs the global privilege, or INSERT on the mysql schema.
    return any(
        (p.privilege == "CREATE USER" and not p.schema) or (p.privilege == "INSERT" and _covers_schema(p, "mysql"))
        for p in held
    )


def can_grant(held: set[Privilege], wanted: Privilege) -> bool:
    """Whether an account holding ``held`` may grant ``wanted``: it must hold the
    privilege and GRANT OPTION at the same object or one that contains it."""
    target = Privilege(GRANT_OPTION, wanted.schema, wanted.table, "", wanted.routine_type)
    if not any(_covers(p, target) for p in held):
        return False
    return wanted.privilege == GRANT_OPTION or any(_covers(p, wanted) for p in held)


def can_grant_role(held: set[Privilege], roles: set[RoleGrant], wanted: RoleGrant) -> bool:
    if any(p.privilege == "ROLE_ADMIN" and not p.schema for p in held):  # MySQL 8
        return True
    return any(r.role == wanted.role and r.role_host == wanted.role_host and r.admin_option for r in roles)


def _covers(held: Privilege, wanted: Privilege) -> bool:
    if held.privilege != wanted.privilege:
        return False
    if not held.schema:
        return True  # global
    if not wanted.schema or not _covers_schema(held, wanted.schema):
        return False
    if not held.table:
        return True  # schema level: every table, column and routine in it
    if (held.table, held.routine_type) != (wanted.table, wanted.routine_type):
        return False
    return not held.column or held.column == wanted.column


def _covers_schema(held: Privilege, schema: str) -> bool:
    if not held.schema:
        return True
    return _like(held.schema).fullmatch(schema) is not None


def _like(pattern: str) -> re.Pattern[str]:
    """A schema name in a grant is a LIKE pattern: % and _ are wildcards, \\ escapes."""
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)
