"""What a rotation needs of the database, asked before its first change: each strategy's
pre-flight, as findings.

One place per strategy (:class:`~rotator.strategies.AlternatingUsers` and
:class:`~rotator.strategies.SameUserByAdmin` call these from their ``preflight``), used
twice: setSecret raises the refusal of the first failing finding, before it changes
anything; ``rotator check`` and the readiness check report every finding, with what to
do. A single user's own login is its pre-flight (it has no admin to ask).
"""

from __future__ import annotations

from collections.abc import Iterator

from rotator.accounts import GRANT_OPTION, Account, RoleGrant
from rotator.comparison import check_readable
from rotator.errors import (
    AccountReadError,
    AdminPrivilegeError,
    SecretMismatchError,
    UnsafeTargetError,
    UnsupportedDatabaseError,
)
from rotator.findings import Finding, Level
from rotator.grants import Shortfall, shortfall
from rotator.ports import AccountCatalogue
from rotator.secret import TWIN_SUFFIX, DatabaseSecret
from rotator.targets import check_accounts


def alternating_users(
    session: AccountCatalogue, current: DatabaseSecret, twin: str, hosts: list[str]
) -> Iterator[Finding]:
    """Can the admin make ``twin`` an exact copy of the current user, and can testSecret then
    verify it? (Read-only.)"""
    yield from user_accounts(current, hosts)
    yield definitions(session, current, hosts)  # what testSecret will read, refused now if it cannot be
    yield from targets(session, current, twin, hosts)
    yield twin_name(session, current, twin)
    yield from admin_privileges(session, current, twin, hosts)


def same_user_by_admin(session: AccountCatalogue, current: DatabaseSecret, hosts: list[str]) -> Iterator[Finding]:
    """May the admin change the user's password: a login account that is not an admin? (Read-only.)"""
    yield from user_accounts(current, hosts)
    yield from targets(session, current, None, hosts)


def user_accounts(current: DatabaseSecret, hosts: list[str]) -> Iterator[Finding]:
    if not hosts:
        problem = f"user '{current.username}' has no account on this server"
        yield Finding("app.accounts", Level.FAIL, problem, refusal=SecretMismatchError(current.secret_id, problem))
        return
    listed = ", ".join(repr(host) for host in hosts)
    yield Finding("app.accounts", Level.OK, f"'{current.username}' exists at host(s) {listed}")


def definitions(session: AccountCatalogue, current: DatabaseSecret, hosts: list[str]) -> Finding:
    """What testSecret compares must be readable: setSecret refuses otherwise."""
    try:
        check_readable(session, current.secret_id, current.username, hosts)
    except AccountReadError as exc:
        return Finding(
            "admin.read-definitions", Level.FAIL, exc.problem, "GRANT SELECT ON mysql.* TO the admin", refusal=exc
        )
    except UnsupportedDatabaseError as exc:
        return Finding("admin.read-definitions", Level.FAIL, exc.problem, refusal=exc)
    return Finding(
        "admin.read-definitions",
        Level.OK,
        f"the admin reads SHOW CREATE USER and SHOW GRANTS of '{current.username}' (testSecret compares them)",
    )


def targets(
    session: AccountCatalogue, current: DatabaseSecret, twin: str | None, hosts: list[str]
) -> Iterator[Finding]:
    """The user (and twin) must be login accounts that are not admins; a locked twin is refused."""
    try:
        expired = check_accounts(session, current, twin, hosts)
    except UnsafeTargetError as exc:
        yield Finding("target.accounts", Level.FAIL, exc.problem, "setSecret refuses this secret", refusal=exc)
        return
    if twin is None:
        yield Finding("target.accounts", Level.OK, f"'{current.username}' is a login account, not an admin")
        return
    yield Finding("target.accounts", Level.OK, f"'{current.username}' and '{twin}' are login accounts, not admins")
    if expired:
        yield Finding(
            "twin.expired",
            Level.WARN,
            f"the twin's password has expired ({', '.join(map(str, expired))}); setting the pending password "
            "clears the expiry",
            "nothing to do: setSecret sets the twin's new password, which clears the expiry",
        )


def twin_name(session: AccountCatalogue, current: DatabaseSecret, twin: str) -> Finding:
    limit = session.max_username_length()
    if len(twin) <= limit:
        return Finding("twin.name", Level.OK, f"twin '{twin}' fits the server's limit of {limit} characters")
    return Finding(
        "twin.name",
        Level.FAIL,
        f"twin user name '{twin}' has {len(twin)} characters; the server allows {limit}",
        f"use an application user name of at most {limit - len(TWIN_SUFFIX)} characters",
        refusal=UnsupportedDatabaseError(
            current.secret_id, f"user name '{twin}' is longer than the server's limit of {limit} characters"
        ),
    )


def admin_privileges(
    session: AccountCatalogue, current: DatabaseSecret, twin: str, hosts: list[str]
) -> Iterator[Finding]:
    """Can the admin create the twin and grant it every privilege, role and proxy grant the
    user holds (grants.shortfall)? Each shortfall is its own finding; setSecret refuses
    with all of them at once."""
    lacking = shortfall(session, current.username, hosts, twin)
    problem = f"{lacking.describe()}; nothing was changed"
    refused = AdminPrivilegeError(current.secret_id, problem)
    admin, user = lacking.admin, current.username
    if lacking.uncopyable:
        yield Finding(
            "app.copy",
            Level.FAIL,
            lacking.copy_problem(),
            lacking.advice,
            refusal=UnsupportedDatabaseError(current.secret_id, problem),
        )
    else:
        yield Finding("app.copy", Level.OK, f"everything '{user}' holds can be copied to a twin on this server")
    if lacking.proxies:
        first = lacking.proxies[0]
        yield Finding(
            "admin.proxy",
            Level.FAIL,
            lacking.proxies_problem(),
            f"GRANT PROXY ON '{first.user}'@'{first.host}' TO {admin} WITH GRANT OPTION",
            refusal=refused,
        )
    elif lacking.wanted_proxies:
        yield Finding("admin.proxy", Level.OK, f"admin {admin} can grant the {lacking.wanted_proxies} proxy grant(s)")
    if lacking.protected:
        yield Finding(
            "admin.system-user",
            Level.FAIL,
            lacking.protected_problem(),
            f"GRANT SYSTEM_USER ON *.* TO {admin}, or drop the twin if nobody uses it",
            refusal=refused,
        )
    yield create_user(admin, lacking.can_create_users, "create the twin or change its password", refused)
    yield from _grants(lacking, user, refused)


def _grants(lacking: Shortfall, user: str, refused: AdminPrivilegeError) -> Iterator[Finding]:
    admin = lacking.admin
    if lacking.privileges:
        first = lacking.privileges[0]
        grant = "USAGE" if first.privilege == GRANT_OPTION else first.privilege
        yield Finding(
            "admin.grant",
            Level.FAIL,
            lacking.privileges_problem(),
            f"give the admin each privilege WITH GRANT OPTION, e.g. GRANT {grant} ON "
            f"{first.object_name()} TO {admin} WITH GRANT OPTION",
            refusal=refused,
        )
    else:
        yield Finding(
            "admin.grant", Level.OK, f"admin {admin} can grant all {lacking.wanted_privileges} privilege(s) of '{user}'"
        )
    if lacking.roles:
        yield Finding(
            "admin.roles",
            Level.FAIL,
            lacking.roles_problem(),
            f"GRANT {RoleGrant(lacking.roles[0].role, lacking.roles[0].role_host).describe()} "
            f"TO {admin} WITH ADMIN OPTION",
            refusal=refused,
        )
    elif lacking.wanted_roles:
        yield Finding("admin.roles", Level.OK, f"admin {admin} can grant the {lacking.wanted_roles} role(s)")


def create_user(admin: Account, held: bool, needed_for: str, refusal: AdminPrivilegeError | None = None) -> Finding:
    if held:
        return Finding("admin.create-user", Level.OK, f"admin {admin} holds CREATE USER (to {needed_for})")
    return Finding(
        "admin.create-user",
        Level.FAIL,
        f"admin {admin} lacks CREATE USER: it cannot {needed_for}",
        f"GRANT CREATE USER ON *.* TO {admin}",
        refusal=refusal,
    )
