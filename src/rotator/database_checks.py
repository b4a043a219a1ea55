"""The database's side of a secret's readiness: logins, the admin's view, and the advice
that goes with each finding. The strategies call these from their ``check``
(:mod:`rotator.strategies`): which of them apply is the strategy's decision, made there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rotator.accounts import Account
from rotator.admin_access import ensure_same_server
from rotator.comparison import compare_accounts, profiles
from rotator.errors import (
    AccountStateError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    SecretMismatchError,
    UnsafeTargetError,
)
from rotator.findings import Add, CheckContext, Finding, Level
from rotator.grants import can_create_users, effective_privileges
from rotator.ports import (
    CURRENT,
    PREVIOUS,
    AccountCatalogue,
    Database,
    DualPasswords,
    LoginLimit,
    ServerInfo,
    SharedOwnership,
)
from rotator.preflight import create_user
from rotator.secret import DatabaseSecret, secret_name

_SHOWN = 8  # privileges listed in one finding before "and N more"

# The strategy's own findings, asked of the admin's catalogue once the common ones passed.
AdminFindings = Callable[[AccountCatalogue, list[str]], Iterator[Finding]]


def skipped(add: Add) -> None:
    add(Finding("database", Level.SKIP, "database checks skipped (--no-database)"))


def with_admin(
    database: Database,
    app: DatabaseSecret,
    admin: DatabaseSecret | None,
    add: Add,
    strategy_findings: AdminFindings,
    *,
    single_user: bool,
) -> None:
    """The checks of a strategy that has an admin (``single_user``: for the same user's
    password, not a twin): the application's login, the admin's, the
    same server, the user's accounts and login limit, then ``strategy_findings``."""
    app_server: ServerInfo | None = None
    try:
        app_server = database.check_login(app)
    except DatabaseError as exc:
        add(database_failure("db.login", exc))
        if not isinstance(exc, DatabaseAuthError):
            return  # the admin would meet the same network or TLS problem
    else:
        add(logged_in(app, app_server))
    if admin is None:
        return
    try:
        with database.admin(admin, app) as session:
            add(Finding("db.admin-login", Level.OK, f"admin '{admin.username}' logs in with verified TLS"))
            _admin_checks(session, app, app_server, add, strategy_findings, single_user=single_user)
    except DatabaseError as exc:
        add(database_failure("db.admin-login", exc))


def _admin_checks(
    session: AccountCatalogue,
    app: DatabaseSecret,
    app_server: ServerInfo | None,
    add: Add,
    strategy_findings: AdminFindings,
    *,
    single_user: bool,
) -> None:
    if app_server is not None:
        try:
            # The very rule setSecret applies: the admin must change users on the
            # application's server (or the writer of a read-only replica).
            ensure_same_server(app, app_server, session.server)
        except SecretMismatchError as exc:
            add(Finding("db.same-server", Level.FAIL, exc.problem, "point the admin secret's host at the same server"))
            return
    try:
        hosts = session.account_hosts(app.username)
    except DatabaseError as exc:
        add(
            Finding(
                "admin.read-accounts",
                Level.FAIL,
                f"the admin cannot read the account tables: {exc.problem}",
                "GRANT SELECT ON mysql.* TO the admin account",
            )
        )
        return
    if hosts:
        limit = _strictest(session, app.username, hosts)
        add_login_limit(app, limit, session.dual_passwords(), add, single_user=single_user)
    try:
        for finding in strategy_findings(session, hosts):
            add(finding)
    except DatabaseError as exc:
        add(Finding("admin.read-accounts", Level.FAIL, f"reading the accounts failed: {exc.problem}"))


def logged_in(app: DatabaseSecret, server: ServerInfo) -> Finding:
    tls = "verified TLS" if app.tls else "no TLS"
    replica = ", read-only" if server.read_only else ""
    return Finding(
        "db.login",
        Level.OK,
        f"'{app.username}' logs in to {app.host}:{app.port} with {tls} ({server.version_string}{replica})",
    )


def own_account(database: Database, app: DatabaseSecret, context: CheckContext, add: Add) -> None:
    """A single user: its own login tells the server's dual passwords (the window), the
    account's failed-login limit and, with dual passwords, whether AWSPREVIOUS is the secondary."""
    try:
        with database.own_account((app,)) as own:
            dual = own.dual_passwords()
            add_window(app, dual, add, by_admin=False)
            limit = own.login_limit()
            add_login_limit(app, limit, dual, add, single_user=True)
            if dual.available:
                _own_secondary(database, app, limit, context.previous(), add)
            server = own.server
    except DatabaseError as exc:
        add(database_failure("db.login", exc))
        add_window(app, None, add, by_admin=False)
        return
    add(logged_in(app, server))


def twin_state(session: AccountCatalogue, user: str, twin: str, add: Add, *, rotated_before: bool) -> None:
    """How the twin compares with the user, by the comparison testSecret makes
    (rotator.comparison), over the catalogue profiles; what the twin holds beyond the
    user since the last rotation is drift."""
    found = compare_accounts(session, user, twin, profiles(session))
    if not found.twin_hosts:
        add(Finding("twin.state", Level.OK, f"'{twin}' does not exist yet: setSecret creates it"))
        return
    differences = (
        [] if found.same_hosts else [f"hosts differ ({', '.join(found.hosts)} vs {', '.join(found.twin_hosts)})"]
    )
    differences += [difference for host in found.by_host for difference in host.differences]
    extras = [f"host '{host}'" for host in found.extra_hosts]
    extras += [extra for host in found.by_host for extra in host.extras]
    if not differences:
        add(Finding("twin.state", Level.OK, f"'{twin}' exists and matches '{user}' at {len(found.hosts)} host(s)"))
        return
    difference = "; ".join(differences[:20])
    if not rotated_before:
        add(
            Finding(
                "twin.takeover",
                Level.WARN,
                f"'{twin}' exists, was not made by rotator for this secret, and differs: {difference}. "
                "The first rotation takes it over: its own privileges and extra hosts are removed",
                f"if '{twin}' belongs to someone else, rename the application user; otherwise nothing to do",
            )
        )
    elif extras:
        # testSecret proved the twin equal to the user when this secret last
        # rotated; what the twin holds beyond the user was given to it since.
        listed = "; ".join(extras[:_SHOWN])
        more = f" and {len(extras) - _SHOWN} more" if len(extras) > _SHOWN else ""
        add(
            Finding(
                "twin.drift",
                Level.FAIL,
                f"'{twin}' holds what '{user}' does not, given to it directly since the last rotation: "
                f"{listed}{more}. The AWSPREVIOUS credentials log in with it, and the next rotation "
                f"revokes it when '{twin}' becomes current",
                f"give it to '{user}' (the AWSCURRENT user: the next rotation copies it to '{twin}') and "
                f"revoke it from '{twin}'; or, if nobody needs it, revoke it from '{twin}'",
            )
        )
    else:
        add(
            Finding(
                "twin.state",
                Level.WARN,
                f"'{twin}' exists but differs: {difference}",
                f"nothing to do: setSecret brings the twin in line before testSecret verifies it "
                f"(a change made to '{twin}' itself is undone then; make it to '{user}')",
            )
        )


def ownership(session: AccountCatalogue, app: DatabaseSecret, twin: str, add: Add) -> None:
    """``db.ownership``, on engines where a user owns what it creates (PostgreSQL): do the
    alternating users create as one owner role, and does either own objects itself?
    Either way the other user gets "permission denied" on them after a rotation; the fix
    is ``rotator adopt`` (a dry run, then ``--apply``)."""
    if not isinstance(session, SharedOwnership):
        return  # MySQL's accounts own nothing: both users reach what either created
    state = session.ownership(app.username, twin)
    fix = f"rotator adopt {secret_name(app.secret_id)} (prints the plan, changes nothing), then again with --apply"
    owned = [f"'{login}' owns {count}" for login, count in state.owned_by_logins if count]
    if state.owner_role is None:
        add(
            Finding(
                "db.ownership",
                Level.WARN,
                f"'{app.username}' has no owner role (no per-role setting 'role'): what either alternating user "
                'creates is its own, and the other user gets "permission denied" on it after the next rotation'
                + (f" ({', '.join(owned)} object(s) now)" if owned else ""),
                fix,
            )
        )
    elif owned:
        add(
            Finding(
                "db.ownership",
                Level.WARN,
                f"objects are owned by login roles, not by owner role '{state.owner_role}': {', '.join(owned)}; "
                "after a rotation the other user cannot alter or drop them",
                fix,
            )
        )
    else:
        add(
            Finding(
                "db.ownership",
                Level.OK,
                f"'{app.username}' and '{twin}' create as owner role '{state.owner_role}'; neither owns objects itself",
            )
        )


def same_user(session: AccountCatalogue, app: DatabaseSecret, previous: DatabaseSecret | None, add: Add) -> None:
    """The same user, its password set by the admin: the admin may change it (CREATE USER),
    the window depends on the server's dual passwords, and which passwords the account holds."""
    try:
        admin = session.current_account()
        held, _roles = effective_privileges(session, admin)
    except (UnsafeTargetError, DatabaseError) as exc:
        add(Finding("admin.read-accounts", Level.FAIL, f"reading the accounts failed: {exc.problem}"))
        return
    add(create_user(admin, can_create_users(held), f"change '{app.username}''s password"))
    add_window(app, session.dual_passwords(), add, by_admin=True)
    _held_passwords(session, app, previous, add)


def single_user_window(app: DatabaseSecret, dual: DualPasswords | None, *, by_admin: bool) -> Finding:
    """Whether a single-user rotation (``by_admin``: the admin sets the same user's password)
    has a window in which logins with the old password fail: from setSecret's change until
    clients read the new AWSCURRENT. ``dual`` None when no login told."""
    if dual is not None and dual.available:
        return Finding(
            "secret.mode",
            Level.OK,
            "single-user window: no; the old password stays valid as the secondary one until the next "
            f"rotation (dual passwords: {dual.reason})",
        )
    because = dual.reason if dual is not None else "it depends on the server, which did not answer"
    if by_admin:
        action = "on MySQL 8.0.21+ (Aurora MySQL 3) the admin keeps the old password; elsewhere clients must retry"
    elif dual is not None and dual.server_has_them:
        action = f"GRANT APPLICATION_PASSWORD_ADMIN ON *.* TO '{app.username}' (at each of its hosts)"
    else:
        action = 'add "masterarn" (the admin secret\'s ARN) to rotate with alternating users'
    return Finding(
        "secret.mode",
        Level.WARN,
        f"single-user window: yes, because {because}: between setSecret and the moment clients read the "
        "new value, logins with the old password fail",
        action,
    )


def _strictest(session: AccountCatalogue, user: str, hosts: list[str]) -> LoginLimit:
    """The lowest failed-login limit among the user's accounts (none when unreadable)."""
    try:
        limits = [session.login_limit(Account(user, host)) for host in hosts]
    except DatabaseError:
        return LoginLimit()
    limited = [limit for limit in limits if limit.attempts]
    return min(limited, key=lambda limit: limit.attempts) if limited else LoginLimit()


def add_login_limit(
    app: DatabaseSecret, limit: LoginLimit, dual: DualPasswords | None, add: Add, *, single_user: bool
) -> None:
    """A failed-login limit makes rotation fragile: refused logins of clients that still hold
    an old password lock the account, and a lock-out refuses the right password too."""
    if not limit.attempts:
        return
    window = single_user and not (dual is not None and dual.available)
    if window:
        who = (
            "clients logging in with the old password between setSecret and finishSecret (the single-user "
            "window) are refused and count towards it"
        )
    else:
        who = (
            "clients still using an old password (AWSPREVIOUS after the next rotation) are refused and count towards it"
        )
    few = "one refused login" if limit.attempts == 1 else f"{limit.attempts} refused logins in a row"
    if limit.scope == "server":
        action = (
            "raise max_password_errors well above the number of application instances (SET GLOBAL and the "
            "server's configuration), or leave it at its default (no limit)"
        )
    else:
        action = (
            f"ALTER USER '{app.username}'@... FAILED_LOGIN_ATTEMPTS 0 PASSWORD_LOCK_TIME 0 for an account rotator "
            "rotates, or keep the limit well above the number of application instances"
        )
    add(
        Finding(
            "db.login-limit",
            Level.WARN,
            f"'{app.username}': {limit.describe()}: {few} lock(s) the account, and then the right password is "
            f"refused too; {who}. rotator's own logins try the password the database most likely holds first",
            f"{action}; clients should treat errors 3955/4150 like a refused login and re-read AWSCURRENT",
        )
    )


def _held_passwords(session: AccountCatalogue, app: DatabaseSecret, previous: DatabaseSecret | None, add: Add) -> None:
    """The same user set by the admin: which passwords the account holds, from its stored
    hashes (no login): someone else's primary or secondary is reported before the next
    rotation replaces it."""
    candidates = {CURRENT: app.password}
    if previous is not None:
        candidates[PREVIOUS] = previous.password
    try:
        held = [found for found in session.passwords_held(app.username, candidates) if found.known]
    except DatabaseError:
        return
    foreign_secondary = [found.host for found in held if found.primary == CURRENT and found.foreign_secondary]
    foreign_primary = [found.host for found in held if found.primary != CURRENT and found.secondary == CURRENT]
    if foreign_primary:
        add(
            Finding(
                "db.passwords",
                Level.WARN,
                f"the primary password of '{app.username}' at host(s) {_listed(foreign_primary)} is not AWSCURRENT's "
                "(changed outside rotator, or by an abandoned rotation); AWSCURRENT's logs in only as the secondary "
                "one. The next rotation replaces the primary and keeps AWSCURRENT's",
                "if someone uses that password, give them the secret instead",
            )
        )
    elif foreign_secondary:
        add(
            Finding(
                "db.passwords",
                Level.WARN,
                f"'{app.username}' at host(s) {_listed(foreign_secondary)} keeps a secondary password that is "
                "neither AWSCURRENT's nor AWSPREVIOUS's: someone else's. The next rotation replaces it with "
                "AWSCURRENT's",
                "if someone uses that password, give them the secret instead",
            )
        )
    elif held and all(found.primary == CURRENT for found in held):
        add(Finding("db.passwords", Level.OK, f"AWSCURRENT's password is the primary of '{app.username}'"))


def _listed(hosts: list[str]) -> str:
    return ", ".join(f"'{host}'" for host in hosts)


def add_window(app: DatabaseSecret, dual: DualPasswords | None, add: Add, *, by_admin: bool) -> None:
    add(single_user_window(app, dual, by_admin=by_admin))


def _own_secondary(
    database: Database, app: DatabaseSecret, limit: LoginLimit, previous: DatabaseSecret | None, add: Add
) -> None:
    """Single user with dual passwords: the secondary should be AWSPREVIOUS's, which the
    next rotation replaces. A user cannot read its hashes, so only a login tells, and it
    is tried only where no failed-login limit would count a refusal."""
    if previous is None or previous.password == app.password or limit.attempts:
        return
    try:
        database.check_login(previous)
    except DatabaseAuthError:
        add(
            Finding(
                "db.passwords",
                Level.WARN,
                f"AWSPREVIOUS no longer logs in as '{app.username}': the account's secondary password is "
                "someone else's (or there is none). The next rotation replaces it with AWSCURRENT's",
                "if someone uses that password, give them the secret instead",
            )
        )
    except DatabaseError:
        return
    else:
        add(Finding("db.passwords", Level.OK, "AWSPREVIOUS logs in as the secondary password, as expected"))


def database_failure(check: str, exc: DatabaseError) -> Finding:
    if isinstance(exc, DatabaseTLSError):
        action = (
            "the CA bundle (--ca-bundle, ROTATOR_CA_BUNDLE or the secret's ssl_ca) must hold the server's CA, "
            "and the certificate must name the secret's host"
        )
        return Finding("db.tls", Level.FAIL, exc.problem, action)
    if isinstance(exc, DatabaseUnreachableError):
        action = "run check from a network that reaches the database (the function's VPC), and check host and port"
        return Finding("db.reach", Level.FAIL, exc.problem, action)
    if isinstance(exc, AccountStateError):
        return Finding(check, Level.FAIL, exc.problem)  # the message says what to do
    if isinstance(exc, DatabaseAuthError):
        return Finding(check, Level.FAIL, exc.problem, "the secret's username and password must log in")
    return Finding(check, Level.FAIL, exc.problem)
