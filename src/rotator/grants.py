"""The server's rules for who may grant what, as functions over account profiles.

Used before anything is changed: by setSecret's pre-flight (the admin must be able
to give the twin everything the user holds, or nothing is created), by the
readiness check and by ``rotator check``. They mirror MySQL's and MariaDB's
documented rules; where the server knows better than these rules, a statement
fails, and setSecret drops the accounts that attempt created (see
``MySQLAdminSession.sync_twin``).
"""

import re
from collections.abc import Iterable
from typing import NamedTuple

from rotator.accounts import GRANT_OPTION, SYSTEM_USER, Account, Privilege, ProxyGrant, RoleGrant
from rotator.ports import AccountCatalogue


# A NamedTuple, like the values in rotator.accounts: cheaper to define at cold start.
class Shortfall(NamedTuple):
    """What the admin cannot do of what copying ``user`` takes."""

    admin: Account
    user: str
    can_create_users: bool
    privileges: tuple[Privilege, ...]  # the user's privileges the admin cannot grant
    roles: tuple[RoleGrant, ...]  # the user's roles the admin cannot grant
    wanted_privileges: int
    wanted_roles: int
    proxies: tuple[ProxyGrant, ...] = ()  # the user's proxy grants the admin cannot grant
    wanted_proxies: int = 0
    protected: tuple[Account, ...] = ()  # twin accounts holding SYSTEM_USER, which the admin lacks
    uncopyable: tuple[str, ...] = ()  # what the server cannot give a twin at all (plugin, ...)
    advice: str = ""  # what to do about ``uncopyable``, in the backend's words

    @property
    def ok(self) -> bool:
        return self.can_create_users and not (
            self.privileges or self.roles or self.proxies or self.protected or self.uncopyable
        )

    def privileges_problem(self, shown: int = 8) -> str:
        listed = "; ".join(p.describe() for p in self.privileges[:shown])
        more = f" and {len(self.privileges) - shown} more" if len(self.privileges) > shown else ""
        return (
            f"admin {self.admin} cannot grant {len(self.privileges)} of the {self.wanted_privileges} "
            f"privilege(s) '{self.user}' holds: {listed}{more}"
        )

    def roles_problem(self) -> str:
        names = ", ".join(RoleGrant(role.role, role.role_host).describe() for role in self.roles)
        return f"admin {self.admin} lacks ADMIN OPTION on role(s) {names} that '{self.user}' holds"

    def proxies_problem(self) -> str:
        listed = "; ".join(proxy.describe() for proxy in self.proxies)
        return f"admin {self.admin} cannot grant {listed} that '{self.user}' holds (it needs each WITH GRANT OPTION)"

    def protected_problem(self) -> str:
        listed = ", ".join(str(account) for account in self.protected)
        return f"admin {self.admin} lacks {SYSTEM_USER}, which it needs to change {listed} (it holds {SYSTEM_USER})"

    def copy_problem(self) -> str:
        return f"'{self.user}' cannot be copied to a twin on this server: " + "; ".join(self.uncopyable)

    def describe(self) -> str:
        parts = [self.copy_problem()] if self.uncopyable else []
        if not self.can_create_users:
            parts.append(f"admin {self.admin} lacks CREATE USER")
        for present, problem in (
            (self.privileges, self.privileges_problem),
            (self.roles, self.roles_problem),
            (self.proxies, self.proxies_problem),
            (self.protected, self.protected_problem),
        ):
            if present:
                parts.append(problem())
        return "; ".join(parts)


def shortfall(catalogue: AccountCatalogue, user: str, hosts: Iterable[str], twin: str | None = None) -> Shortfall:
    """Can the logged-in admin create ``user``'s twin and give it every privilege, role,
    proxy grant and setting ``user`` holds at ``hosts`` (and change the ``twin`` accounts
    that exist)? (Read-only.)"""
    admin = catalogue.current_account()
    held, roles = effective_privileges(catalogue, admin)
    admin_proxies = catalogue.read_profile(admin).proxies
    wanted: set[Privilege] = set()
    wanted_roles: set[RoleGrant] = set()
    wanted_proxies: set[ProxyGrant] = set()
    uncopyable: list[str] = []
    advice = ""
    for host in hosts:
        profile = catalogue.read_profile(Account(user, host))
        wanted |= profile.privileges
        wanted_roles |= profile.roles
        wanted_proxies |= profile.proxies
        problems = catalogue.copy_problems(profile)
        uncopyable += [problem for problem in problems if problem not in uncopyable]
        if problems and not advice:
            advice = catalogue.copy_advice(profile)
    protected: list[Account] = []
    if twin is not None and not _holds_system_user(held):
        for host in catalogue.account_hosts(twin):
            twin_held, _ = effective_privileges(catalogue, Account(twin, host))
            if _holds_system_user(twin_held):
                protected.append(Account(twin, host))
    return Shortfall(
        admin=admin,
        user=user,
        can_create_users=can_create_users(held),
        privileges=tuple(sorted(p for p in wanted if not can_grant(held, p))),
        roles=tuple(sorted(r for r in wanted_roles if not can_grant_role(held, roles, r))),
        wanted_privileges=len(wanted),
        wanted_roles=len(wanted_roles),
        proxies=tuple(sorted(p for p in wanted_proxies if not can_grant_proxy(admin, admin_proxies, p))),
        wanted_proxies=len(wanted_proxies),
        protected=tuple(protected),
        uncopyable=tuple(uncopyable),
        advice=advice,
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
    privilege and GRANT OPTION at the same object or one that contains it. A MySQL
    dynamic privilege has its own grant option: the static GRANT OPTION does not cover it."""
    if wanted.dynamic:
        return any(p.dynamic and p.grantable and p.privilege == wanted.privilege for p in held)
    target = Privilege(GRANT_OPTION, wanted.schema, wanted.table, "", wanted.routine_type)
    if not any(_covers(p, target) for p in held):
        return False
    return wanted.privilege == GRANT_OPTION or any(_covers(p, wanted) for p in held)


def can_grant_proxy(admin: Account, held: Iterable[ProxyGrant], wanted: ProxyGrant) -> bool:
    """GRANT PROXY needs PROXY on the same account WITH GRANT OPTION (``''@''``: any
    account, as root has it), or being that account."""
    if (admin.user, admin.host) == (wanted.user, wanted.host):
        return True
    return any(p.grant_option and (p.user, p.host) in ((wanted.user, wanted.host), ("", "")) for p in held)


def can_grant_role(held: set[Privilege], roles: set[RoleGrant], wanted: RoleGrant) -> bool:
    if any(p.privilege == "ROLE_ADMIN" and not p.schema for p in held):  # MySQL 8
        return True
    return any(r.role == wanted.role and r.role_host == wanted.role_host and r.admin_option for r in roles)


def _holds_system_user(held: Iterable[Privilege]) -> bool:
    return any(p.privilege == SYSTEM_USER and not p.schema for p in held)


def _covers(held: Privilege, wanted: Privilege) -> bool:
    if held.privilege != wanted.privilege or held.dynamic:
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
