"""Which accounts an alternating-users rotation may change.

The admin creates and alters the twin, and revokes from it whatever the current
user does not hold. Pointed at the wrong account, that locks out the account every
other rotation depends on. So the user and its twin must never be:

- the admin secret's own user (``dba_clone`` rotating to ``dba`` = the admin; or an
  application secret that holds the admin's credentials);
- a reserved account of the server (``root``, ``mysql.*``, ``mariadb.sys``,
  ``PUBLIC``, Aurora's ``rdsadmin`` and other ``rds*`` accounts);
- a role;
- a locked twin (``ACCOUNT LOCK`` is someone's decision: rotator does not undo it);
- an account that can create or change other accounts: rotator cannot see other
  secrets, so any account with ``CREATE USER`` (or write access to the ``mysql``
  schema) is treated as some secret's admin. Such accounts are rotated by single-user
  rotation (the account changes its own password), as the admin secret itself is.

The name rules need no database and run in createSecret, before anything is
written; the catalogue rules run in setSecret before the first change. Both are
what ``rotator check`` reports.
"""

from __future__ import annotations

from rotator.accounts import Account
from rotator.errors import UnsafeTargetError
from rotator.grants import can_create_users, effective_privileges
from rotator.ports import AccountCatalogue
from rotator.secret import DatabaseSecret

RESERVED_USERS = frozenset({"root", "mariadb.sys", "PUBLIC", ""})
RESERVED_PREFIXES = ("mysql.", "rds")  # MySQL's system accounts; RDS and Aurora's own (rdsadmin, rdsrepladmin...)

_SINGLE_USER = "rotate it with single-user rotation (a secret without 'masterarn')"


def is_reserved(user: str) -> bool:
    return user in RESERVED_USERS or user.lower().startswith(RESERVED_PREFIXES)


def check_names(app: DatabaseSecret, twin: str | None, admin: DatabaseSecret) -> None:
    """Refuse, from the names alone, a user or twin (None: single user, no twin) that is
    the admin's or a reserved account."""
    if app.username == admin.username:
        raise UnsafeTargetError(
            app.secret_id,
            f"the secret's user '{app.username}' is the admin secret's own user: alternating users would "
            f"change the admin's password and privileges at the next rotation; {_SINGLE_USER}",
        )
    if twin is not None and twin == admin.username:
        raise UnsafeTargetError(
            app.secret_id,
            f"the twin of '{app.username}' is '{twin}', the admin secret's own user: setSecret would change "
            "the admin's password and revoke its privileges; rename the application user",
        )
    for kind, name in _targets(app, twin):
        if is_reserved(name):
            raise UnsafeTargetError(
                app.secret_id, f"the {kind} '{name}' is a reserved account of the server: rotator never changes it"
            )


def check_accounts(
    catalogue: AccountCatalogue, app: DatabaseSecret, twin: str | None, hosts: list[str]
) -> list[Account]:
    """Refuse a user or twin that is a role or can manage other accounts, or a locked
    twin (read-only). Returns the twin accounts whose password has expired: setSecret's
    new password clears the expiry, which is what an expired password asks for."""
    expired: list[Account] = []
    for kind, name in _targets(app, twin):
        if catalogue.is_role(name):
            raise UnsafeTargetError(
                app.secret_id, f"the {kind} '{name}' is a role: rotator rotates login accounts only"
            )
        for host in hosts if kind == "user" else catalogue.account_hosts(name):
            if kind == "twin":
                state = catalogue.account_state(Account(name, host))
                if state.locked:
                    raise UnsafeTargetError(
                        app.secret_id,
                        f"the twin '{name}'@'{host}' is locked (ACCOUNT LOCK): rotator does not undo a lock; "
                        f"if it is not deliberate, ALTER USER '{name}'@'{host}' ACCOUNT UNLOCK",
                    )
                if state.password_expired:
                    expired.append(Account(name, host))
            held, _roles = effective_privileges(catalogue, Account(name, host))
            if can_create_users(held):
                raise UnsafeTargetError(
                    app.secret_id,
                    f"the {kind} '{name}'@'{host}' can create and change accounts (CREATE USER): as far as "
                    f"rotator can tell it is an admin, and alternating users would change it; {_SINGLE_USER}",
                )
    return expired


def _targets(app: DatabaseSecret, twin: str | None) -> list[tuple[str, str]]:
    return [("user", app.username)] + ([("twin", twin)] if twin is not None else [])
