"""How the database is changed: one small object per rotation strategy.

:class:`rotator.rotation.Rotation` decides *whether* a step has work to do (the
labels, the pending value); a strategy decides *what* setSecret and testSecret do
for one kind of secret:

- :class:`AlternatingUsers` (the secret names an admin secret in ``masterarn``):
  the admin keeps a twin user (``app`` <-> ``app_clone``) identical to the current
  one, and each rotation moves the application to the other user, so the previous
  credentials keep working until the next rotation.
- :class:`SingleUser` (no ``masterarn``): the user changes its own password.
- :class:`SameUserByAdmin` (``masterarn`` and ``"rotation_strategy": "single-user"``):
  the admin changes the user's password; the user name never changes (RDS Proxy).

Both single-user strategies keep the old password working as the secondary one where
the server has dual passwords (MySQL 8.0.14+ ``RETAIN CURRENT PASSWORD``), so that,
as with alternating users, AWSCURRENT and AWSPREVIOUS both log in after a rotation
and no login is refused in between. Elsewhere the old password stops working at
setSecret: the single-user window (docs/reliability.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import NamedTuple, Protocol

from aws_lambda_powertools import Logger

from rotator import preflight
from rotator.admin_access import AdminAccess, ensure_same_server
from rotator.comparison import verify_copy
from rotator.errors import (
    AccountStateError,
    ConcurrentChangeError,
    CurrentPasswordRequiredError,
    DatabaseAuthError,
    DatabaseError,
    DatabaseUnreachableError,
    ForeignPasswordError,
    SecretFormatError,
)
from rotator.findings import CheckContext, Finding, Level
from rotator.ports import (
    CURRENT,
    PENDING,
    PREVIOUS,
    SETTING,
    TESTED,
    AccountCatalogue,
    AdminSession,
    Database,
    DualPasswords,
    HeldPasswords,
    OwnAccountSession,
    SecretDescription,
    SecretStore,
    ServerInfo,
)
from rotator.recovery import LikelyLogins, mark_setting, restore_setting
from rotator.secret import DatabaseSecret
from rotator.settings import ConfiguredHost
from rotator.targets import check_names

logger = Logger(child=True)

_NO_HOSTS: Mapping[str, ConfiguredHost] = {}

# What a step noticed besides its outcome; the handler counts each as a metric
# (docs/observability.md). Identifiers only.
FOREIGN_SECONDARY = "foreign-secondary-password"  # a secondary password that is no version's, replaced
FOREIGN_PRIMARY = "foreign-primary-password"  # a primary password changed outside rotator, replaced
ABANDONED_ROTATION = "abandoned-rotation-password"  # the database held an abandoned rotation's password


class Outcome(NamedTuple):
    """What setSecret or testSecret did (``name``), and what it noticed on the way."""

    name: str
    notices: tuple[str, ...] = ()


class Strategy(Protocol):
    def pending_username(self, current: DatabaseSecret) -> str:
        """The user name createSecret writes into the pending version."""
        ...

    def before_create(self, current: DatabaseSecret) -> None:
        """Refuse, before anything is written, a secret this strategy cannot rotate."""
        ...

    def set(
        self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> Outcome:
        """Make the database accept ``pending`` (the secret version ``token``); the outcome."""
        ...

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> Outcome: ...

    def describe(self, current: DatabaseSecret) -> str:
        """How the secret is rotated, in words (``rotator check``'s secret.value)."""
        ...

    def check(self, current: DatabaseSecret, context: CheckContext) -> Iterator[Finding]:
        """Read-only: every finding about what this strategy's next rotation needs (the
        admin secret, the logins, its pre-flight and what it would take over or undo)."""
        ...


def strategy_for(
    current: DatabaseSecret,
    store: SecretStore,
    database: Database,
    admin_hosts: Mapping[str, ConfiguredHost] = _NO_HOSTS,
) -> Strategy:
    """The one place the strategy is chosen (docs/design.md, "Strategies")."""
    if not current.masterarn:
        return SingleUser(store, database)
    admin = AdminAccess(store, database, current.masterarn, admin_hosts)
    return AlternatingUsers(database, admin) if current.alternates else SameUserByAdmin(store, database, admin)


class AlternatingUsers:
    def __init__(self, database: Database, admin: AdminAccess) -> None:
        self._database = database
        self._admin = admin

    def pending_username(self, current: DatabaseSecret) -> str:
        return current.twin_username

    def before_create(self, current: DatabaseSecret) -> None:
        # A masterarn pointing nowhere, or a twin that is the admin, fails here, before anything is written.
        check_names(current, current.twin_username, self._admin.secret(current))

    def set(
        self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> Outcome:
        app_server = self._database.check_login(current)  # the current user must still work
        with self._admin.session(current) as session:
            ensure_same_server(current, app_server, session.server)
            refuse_on_failure(self.preflight(session, current, session.account_hosts(current.username)))
            report = session.sync_twin(current.username, pending.username, pending.password)
        details = {
            "username": pending.username,
            "hosts": list(report.hosts),
            "users_created": report.created,
            "users_dropped": report.dropped,
            "statements": report.statements,
        }
        if report.changed_existing_twin and description.version_with(TESTED) is None:
            # No version of this secret has passed a rotator test: the twin was made by
            # someone else, and its own privileges and hosts are now gone.
            logger.warning("took over an existing twin user that differed from the current user", extra=details)
            return Outcome("twin-taken-over")
        logger.info("twin user matches current user", extra=details)
        return Outcome("twin-synced")

    def preflight(self, session: AccountCatalogue, current: DatabaseSecret, hosts: list[str]) -> Iterator[Finding]:
        """What the sync needs, asked before its first change (rotator.preflight)."""
        return preflight.alternating_users(session, current, current.twin_username, hosts)

    def describe(self, current: DatabaseSecret) -> str:
        return f"alternating users through {current.masterarn}"

    def check(self, current: DatabaseSecret, context: CheckContext) -> Iterator[Finding]:
        from rotator import database_checks as database  # noqa: PLC0415 - a rotation never needs the readiness rules
        from rotator import secret_checks as secrets  # noqa: PLC0415

        twin = current.twin_username
        found: list[Finding] = []
        admin = secrets.admin_secret(self._admin, current, twin, found.append)
        if not context.database_checks:
            database.skipped(found.append)
            return iter(found)

        def alternating(session: AccountCatalogue, hosts: list[str]) -> Iterator[Finding]:
            yield from self.preflight(session, current, hosts)
            if hosts:
                state: list[Finding] = []
                database.twin_state(
                    session, current.username, twin, state.append, rotated_before=context.rotated_before
                )
                database.ownership(session, current, twin, state.append)
                yield from state

        database.with_admin(self._database, current, admin, found.append, alternating, single_user=False)
        return iter(found)

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> Outcome:
        with self._admin.session(current) as session:
            # Not the profile setSecret synced from (a blind spot of the sync would be one
            # of the check): the server's own SHOW CREATE USER / SHOW GRANTS, compared.
            verify_copy(session, current.secret_id, current.username, pending.username)
        self._database.check_login(pending, attempts=self._admin.login_attempts(current))
        logger.info("pending credentials log in and privileges match", extra={"username": pending.username})
        return Outcome("twin-verified")


class SingleUser:
    def __init__(self, store: SecretStore, database: Database) -> None:
        self._store = store
        self._database = database

    def pending_username(self, current: DatabaseSecret) -> str:
        return current.username

    def before_create(self, current: DatabaseSecret) -> None:
        return None

    def set(
        self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> Outcome:
        # The password the database most likely holds first (rotator.recovery): AWSCURRENT
        # on a first attempt, so a normal rotation makes no refused login (servers count
        # those towards FAILED_LOGIN_ATTEMPTS / max_password_errors); the pending one on a
        # retry after this step began the change; an abandoned rotation's after one.
        logins = LikelyLogins(self._store, description, token, current, pending)
        with self._database.own_account(logins) as own:
            if own.login is pending:
                logger.info("pending password already works")
                return Outcome("password-already-set")
            version, what = logins.source(own.login)
            notices: list[str] = []
            if own.login is not current:
                logger.warning(
                    "the database holds the password of another version than AWSCURRENT; changing it from there",
                    extra={"username": current.username, "version": version, "what": what},
                )
                if what != PREVIOUS:
                    notices.append(ABANDONED_ROTATION)
            dual = own.dual_passwords()
            warn_without_dual_passwords(dual, current)
            # Keep as the secondary only AWSCURRENT's password: retaining any other would
            # drop AWSCURRENT's if it is the secondary (an abandoned dual-password change).
            retain = dual.available and own.login is current
            if retain and self._secondary_is_foreign(own, description, current):
                notices.append(FOREIGN_SECONDARY)
            mark_setting(self._store, description, token)
            try:
                changed = self._change(own, logins, current, pending, dual, retain=retain, what=what)
            except (DatabaseUnreachableError, ConcurrentChangeError):
                # The connection failed: the change may have applied (the statement was sent,
                # the answer lost); or another session changed the account at the same moment
                # (a duplicate delivery setting this same pending password). The label stays
                # on the pending version, the likelier one.
                raise
            except DatabaseError:
                # The port's typed refusal means nothing changed (the OwnAccountSession port:
                # the server refused it, or the statement was never sent), so the password that
                # logged in is still the database's. The label goes back to its version before
                # the error propagates: the retry tries that password first and spends no
                # refused login on the pending one (a limit of 1 would lock the account out).
                # Any other exception says nothing about the change (a bug after it, a timeout
                # that killed the invocation): the label stays, as after a lost connection
                # (docs/reliability.md, "ROTATOR_SETTING").
                restore_setting(self._store, description, token, version)
                raise
        return Outcome(changed.name, (*notices, *changed.notices))

    def _change(
        self,
        own: OwnAccountSession,
        logins: LikelyLogins,
        current: DatabaseSecret,
        pending: DatabaseSecret,
        dual: DualPasswords,
        *,
        retain: bool,
        what: str,
    ) -> Outcome:
        if own.change_password(pending.password, retain_current=retain):
            logger.info("changed own password", extra={"username": current.username, "retained_current": retain})
            return Outcome(change_outcome(dual, "password-changed", retained=retain))
        # The login's password was refused as "not the primary one": it is the secondary.
        if logins.setting is None and self._logs_in(pending):
            # A rotation begun before ROTATOR_SETTING existed: its earlier attempt made
            # the pending password primary and kept the current one as the secondary.
            logger.info("pending password already set by an earlier attempt; the current one kept as secondary")
            return Outcome("password-already-set")
        self._replace_foreign_primary(own, current, pending, what)
        if own.login is current:  # AWSCURRENT's is the secondary, and stays
            return Outcome("password-changed-retaining-current", (FOREIGN_PRIMARY,))
        return Outcome(change_outcome(dual, "password-changed", retained=False), (FOREIGN_PRIMARY,))

    def describe(self, current: DatabaseSecret) -> str:
        return "single user"

    def check(self, current: DatabaseSecret, context: CheckContext) -> Iterator[Finding]:
        """No admin: the user's own login is its pre-flight (it tells the window, the
        failed-login limit, and whether AWSPREVIOUS is the secondary password)."""
        from rotator import database_checks as database  # noqa: PLC0415 - a rotation never needs the readiness rules

        found: list[Finding] = []
        if context.database_checks:
            database.own_account(self._database, current, context, found.append)
        else:
            database.skipped(found.append)
            database.add_window(current, None, found.append, by_admin=False)
        return iter(found)

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> Outcome:
        with self._database.own_account((pending,)) as own:
            dual = own.dual_passwords()
            limit = own.login_limit().attempts if dual.available else 0
        logger.info("pending credentials log in")
        if not dual.available:
            return Outcome("login-ok")
        return Outcome(current_still_works(self._database, current, limit))

    def _logs_in(self, login: DatabaseSecret) -> bool:
        try:
            self._database.check_login(login)
        except AccountStateError:
            raise
        except DatabaseAuthError:
            return False
        return True

    def _secondary_is_foreign(
        self, own: OwnAccountSession, description: SecretDescription, current: DatabaseSecret
    ) -> bool:
        """Before RETAIN replaces the secondary password with AWSCURRENT's: is it AWSPREVIOUS's,
        as the last rotation left it? A user cannot read its own hashes, so only a login
        with AWSPREVIOUS tells, and only where no failed-login limit counts a refusal."""
        previous = same_user_version(self._store, description, PREVIOUS, current)
        if previous is None or previous.password == current.password:
            return False
        limit = own.login_limit()
        if limit.attempts:
            logger.info(
                "not checking that the secondary password is AWSPREVIOUS's: a refused login would count",
                extra={"username": current.username, "limit": limit.describe()},
            )
            return False
        if self._logs_in(previous):
            return False
        logger.warning(
            "AWSPREVIOUS no longer logs in: the account's secondary password is someone else's (or there is "
            "none); this change replaces it with AWSCURRENT's",
            extra={"username": current.username},
        )
        return True

    @staticmethod
    def _replace_foreign_primary(
        own: OwnAccountSession, current: DatabaseSecret, pending: DatabaseSecret, what: str
    ) -> None:
        """The login's password is only the secondary one: the primary was changed outside
        this rotation (by someone, or by a rotation that was abandoned). Replace the primary
        and keep the secondary, so that the password that logged in (AWSCURRENT's, normally)
        keeps working: never a window."""
        try:
            own.replace_primary(pending.password)
        except CurrentPasswordRequiredError:
            raise ForeignPasswordError(
                current.secret_id,
                f"the primary password of user '{current.username}' is not {what}'s ({what}'s logs in only as "
                "the secondary one): it was changed outside rotator, and the account requires the current "
                "password to change it (PASSWORD REQUIRE CURRENT); nothing was changed. Make AWSCURRENT's "
                "password the primary again (ALTER USER ... IDENTIFIED BY ... RETAIN CURRENT PASSWORD), or put "
                "the database's password in the secret",
            ) from None
        logger.warning(
            "the account's primary password was changed outside this rotation; replaced it, keeping the "
            "secondary (the password that logged in)",
            extra={"username": current.username, "logged_in_with": what},
        )


class SameUserByAdmin:
    """One user name for good (RDS Proxy, or an account that may not change its own
    password): the admin sets the new password, keeping the old one as the secondary
    where the server has dual passwords."""

    def __init__(self, store: SecretStore, database: Database, admin: AdminAccess) -> None:
        self._store = store
        self._database = database
        self._admin = admin

    def pending_username(self, current: DatabaseSecret) -> str:
        return current.username

    def before_create(self, current: DatabaseSecret) -> None:
        check_names(current, None, self._admin.secret(current))

    def set(
        self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> Outcome:
        app_server = self._app_server(description, token, current, pending)
        with self._admin.session(current) as session:
            if app_server is not None:
                ensure_same_server(current, app_server, session.server)
            refuse_on_failure(self.preflight(session, current, session.account_hosts(current.username)))
            dual = session.dual_passwords()
            warn_without_dual_passwords(dual, current)
            # The admin reads which passwords the account holds before acting: someone
            # else's, or an abandoned rotation's, is reported before it is replaced.
            notices = self._report_held(session, description, token, current, pending)
            mark_setting(self._store, description, token)
            report = session.set_password(
                current.username, pending.password, version=token, retain_current=dual.available, keep=current.password
            )
        details = {
            "username": current.username,
            "hosts": list(report.hosts),
            "changed": report.changed,
            "already_set": report.already_set,
            "retained_current": report.retained_current,
            "kept_secondary": report.kept_secondary,
        }
        if report.changed == 0:
            logger.info("pending password already set by an earlier attempt", extra=details)
            return Outcome("password-already-set", notices)
        logger.info("admin set the user's password", extra=details)
        retained = report.retained_current or report.kept_secondary > 0
        return Outcome(change_outcome(dual, "password-set", retained=retained), notices)

    def preflight(self, session: AccountCatalogue, current: DatabaseSecret, hosts: list[str]) -> Iterator[Finding]:
        """What the admin's change needs, asked before it (rotator.preflight)."""
        return preflight.same_user_by_admin(session, current, hosts)

    def describe(self, current: DatabaseSecret) -> str:
        return f"single user, password set by the admin of {current.masterarn}"

    def check(self, current: DatabaseSecret, context: CheckContext) -> Iterator[Finding]:
        from rotator import database_checks as database  # noqa: PLC0415 - a rotation never needs the readiness rules
        from rotator import secret_checks as secrets  # noqa: PLC0415

        found: list[Finding] = []
        admin = secrets.admin_secret(self._admin, current, None, found.append)
        if not context.database_checks:
            database.skipped(found.append)
            database.add_window(current, None, found.append, by_admin=True)
            return iter(found)

        def same_user(session: AccountCatalogue, hosts: list[str]) -> Iterator[Finding]:
            yield from self.preflight(session, current, hosts)
            if hosts:
                more: list[Finding] = []
                database.same_user(session, current, context.previous(), more.append)
                yield from more

        database.with_admin(self._database, current, admin, found.append, same_user, single_user=True)
        return iter(found)

    def test(self, current: DatabaseSecret, pending: DatabaseSecret) -> Outcome:
        attempts = self._admin.login_attempts(current)
        if attempts > 1:
            self._database.check_login(pending, attempts=attempts)  # a replica: wait for the change
        with self._database.own_account((pending,)) as own:
            dual = dual_passwords_of(own, current)
            limit = own.login_limit().attempts if dual.available else 0
        logger.info("pending credentials log in", extra={"username": pending.username})
        if not dual.available:
            return Outcome("login-ok")
        return Outcome(current_still_works(self._database, current, limit))

    def _report_held(
        self,
        session: AdminSession,
        description: SecretDescription,
        token: str,
        current: DatabaseSecret,
        pending: DatabaseSecret,
    ) -> tuple[str, ...]:
        candidates = {CURRENT: current.password, PENDING: pending.password}
        previous = same_user_version(self._store, description, PREVIOUS, current)
        if previous is not None:
            candidates[PREVIOUS] = previous.password
        setting = description.version_with(SETTING)
        if setting not in (None, token, description.version_with(CURRENT)):
            assert setting is not None
            abandoned = same_user_version(self._store, description, SETTING, current)
            if abandoned is not None:
                candidates[SETTING] = abandoned.password
        notices: set[str] = set()
        for held in session.passwords_held(current.username, candidates):
            notices.update(report_held(held, current))
        return tuple(sorted(notices))

    def _app_server(
        self, description: SecretDescription, token: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> ServerInfo | None:
        """Which server the application uses, when the admin secret names another
        endpoint (a user of the same name elsewhere must never be changed)."""
        if not self._admin.elsewhere(current):
            return None
        with self._database.own_account(LikelyLogins(self._store, description, token, current, pending)) as own:
            return own.server


def refuse_on_failure(findings: Iterable[Finding]) -> None:
    """setSecret's use of a pre-flight: the refusal of the first failing finding is raised,
    before anything changes (the later questions are not even asked); warnings are logged."""
    for finding in findings:
        if finding.refusal is not None:
            raise finding.refusal
        if finding.level is Level.WARN:
            logger.warning(finding.message, extra={"check": finding.check})


def report_held(held: HeldPasswords, current: DatabaseSecret) -> list[str]:
    """What the admin found among one account's passwords, logged before anything changes;
    the notices. ``held``'s keys are the labels of the versions the passwords came from."""
    if not held.known or held.primary == PENDING:
        return []  # unknown plugin; or this rotation's own earlier attempt
    where = {"username": current.username, "host": held.host}
    if held.primary == CURRENT:
        if held.foreign_secondary:
            logger.warning(
                "the account's secondary password is no version's (not AWSPREVIOUS's): someone else's; "
                "this change replaces it with AWSCURRENT's",
                extra=where,
            )
            return [FOREIGN_SECONDARY]
        return []
    if held.primary == SETTING:
        logger.warning(
            "the account's password is that of a rotation that was abandoned after its setSecret; "
            "changing it from there" + (", keeping AWSCURRENT's as the secondary" if held.secondary == CURRENT else ""),
            extra=where,
        )
        return [ABANDONED_ROTATION]
    if held.secondary == CURRENT:
        logger.warning(
            "the account's primary password is not AWSCURRENT's (changed outside rotator); AWSCURRENT's is the "
            "secondary: this change replaces the primary and keeps AWSCURRENT's",
            extra=where,
        )
    else:
        logger.warning(
            "AWSCURRENT's password is not the account's (changed outside rotator): clients using it are refused "
            "until finishSecret gives them the new one",
            extra=where,
        )
    return [FOREIGN_PRIMARY]


def same_user_version(
    store: SecretStore, description: SecretDescription, stage: str, current: DatabaseSecret
) -> DatabaseSecret | None:
    """The version holding ``stage``, when it is the same user's (its password may be the
    account's); read only when asked."""
    version = description.version_with(stage)
    value = store.get_version(description.arn, version, stage) if version else None
    if value is None:
        return None
    try:
        found = DatabaseSecret.parse(description.arn, value)
    except SecretFormatError:
        return None
    return found if found.username == current.username else None


def dual_passwords_of(own: OwnAccountSession, current: DatabaseSecret) -> DualPasswords:
    """Whether this secret's password changes keep the old password as the secondary one:
    the user's own change (single user), or the admin's (the same user, by the admin)."""
    if current.masterarn:
        return own.admin_dual_passwords()
    return own.dual_passwords()


def warn_without_dual_passwords(dual: DualPasswords, current: DatabaseSecret) -> None:
    if dual.server_has_them and not dual.available:
        logger.warning(
            "single-user rotation without dual passwords: logins with the old password fail "
            "from this change until clients read the new AWSCURRENT",
            extra={"username": current.username, "reason": dual.reason},
        )


def change_outcome(dual: DualPasswords, changed: str, *, retained: bool) -> str:
    """``changed``, suffixed with how: the handler counts ``...-without-dual`` as DualPasswordFallback."""
    if retained:
        return f"{changed}-retaining-current"
    return f"{changed}-without-dual" if dual.server_has_them and not dual.available else changed


def current_still_works(database: Database, current: DatabaseSecret, limit: int = 0) -> str:
    """With dual passwords, AWSCURRENT's password should still log in (as the secondary)
    until the next rotation. If it does not, the rotation still goes on: the database
    already has the pending password, and only finishSecret gives it to the clients.
    Not tried where a failed-login limit would count a refusal (``limit``): the check
    only warns, and a refusal there could lock the account out."""
    if limit:
        logger.info(
            "not logging in with the current password: a refusal would count towards the failed-login limit",
            extra={"username": current.username, "failed_login_attempts": limit},
        )
        return "login-ok"
    try:
        database.check_login(current)
    except DatabaseAuthError as refused:
        logger.warning(
            "the current password no longer logs in although the server keeps secondary passwords; "
            "clients using it fail until finishSecret",
            extra={"username": current.username, "problem": refused.problem},
        )
        return "login-ok-current-refused"
    logger.info("current credentials still log in (secondary password)")
    return "login-ok-both"
