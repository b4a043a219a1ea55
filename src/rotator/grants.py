"""The server's rules for who may grant what, as functions over account profiles.

Used before anything is changed: by setSecret's pre-flight (the admin must be able
to give the twin everything the user holds, or nothing is created), by the
readiness check and by ``rotator check``. They mirror MySQL's and MariaDB's
documented rules; where the server knows better than these rules, a statement
fails, and setSecret drops the accounts that attempt created (see
``MySQLAdminSession.sync_twin``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rotator.accounts import GRANT_OPTION, Account, Privilege, RoleGrant
from rotator.ports import AccountCatalogue


@dataclass(frozen=True)
class Shortfall:
    """What the admin cannot do of what copying ``user`` takes."""

    admin: Account
    user: str
    can_create_users: bool
    privileges: tuple[Privilege, ...]  # the user's privileges the admin cannot grant
    roles: tuple[RoleGrant, ...]  # the user's roles the admin cannot grant
    wanted_privileges: int
    wanted_roles: int

    @property
    def ok(self) -> bool:
        return self.can_create_users and not self.privileges and not self.roles

    def privileges_problem(self, shown: int = 8) -> str:
        listed = "; ".join(p.describe() for p in self.privileges[:shown])
        more = f" and {len(self.privileges) - shown} more" if len(self.privileges) > shown else ""
        return (
            f"admin {self.admin} cannot grant {len(self.privileges)} of the {self.wanted_privileges} "
            f"privilege(s) '{self.user}' holds: {listed}{more}"
        )

    def roles_problem(self) -> str:
        names = ", ".join(role.role_sql() for role in self.roles)
        return f"admin {self.admin} lacks ADMIN OPTION on role(s) {names} that '{self.user}' holds"

    def describe(self) -> str:
        parts = []
        if not self.can_create_users:
            parts.append(f"admin {self.admin} lacks CREATE USER")
        if self.privileges:
            parts.append(self.privileges_problem())
        if self.roles:
            parts.append(self.roles_problem())
        return "; ".join(parts)


def shortfall(catalogue: AccountCatalogue, user: str, hosts: Iterable[str]) -> Shortfall:
    """Can the logged-in admin create ``user``'s twin and give it every privilege and
    role ``user`` holds at ``hosts``? (Read-only.)"""
    admin = catalogue.current_account()
    held, roles = effective_privileges(catalogue, admin)
    wanted: set[Privilege] = set()
    wanted_roles: set[RoleGrant] = set()
    for host in hosts:
        profile = catalogue.read_profile(Account(user, host))
        wanted |= profile.privileges
        wanted_roles |= profile.roles
    return Shortfall(
        admin=admin,
        user=user,
        can_create_users=can_create_users(held),
        privileges=tuple(sorted(p for p in wanted if not can_grant(held, p))),
        roles=tuple(sorted(r for r in wanted_roles if not can_grant_role(held, roles, r))),
        wanted_privileges=len(wanted),
        wanted_roles=len(wanted_roles),
    )


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
