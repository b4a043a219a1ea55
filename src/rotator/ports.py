"""The ports the core talks to: the secret store and the database.

:mod:`rotator.rotation`, :mod:`rotator.strategies`, :mod:`rotator.readiness` and the CLI
depend on these protocols only; the adapters (:mod:`rotator.secret_store`, and per engine
family a backend of :mod:`rotator.backends`) are built and joined to them in
:mod:`rotator.bootstrap`.

Which port is which:

- :class:`SecretStore`: what a rotation step reads and writes in Secrets Manager,
  plus the read-only listings the readiness check needs.
- :class:`OperatorStore`: the writes only an operator makes (turn rotation on,
  clear a stuck label, stage a rotation on an emulator). The Lambda never has it.
- :class:`Database`: logins, an admin session, and a user's session on its own account.
- :class:`AccountCatalogue`: read-only questions about accounts (what a user holds,
  what the admin can grant); :class:`AdminSession` adds the twin's sync.
"""

import datetime
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from rotator.accounts import Account, AccountProfile, AccountState, Privilege
from rotator.comparison import AccountDefinition
from rotator.secret import DatabaseSecret
from rotator.settings import PasswordPolicy

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"
# Put on a version by testSecret once it passed, moved by the next rotation's
# testSecret. finishSecret promotes only a version that carries it, so a manual
# invoke (or a bug) cannot make an untested version current; a duplicate
# testSecret finds it and answers without touching the database.
TESTED = "ROTATOR_TESTED"
# Moved to the pending version by setSecret of a single-user rotation just before it
# changes the database's password, and left there (moved back only when the change
# certainly did not apply): the version whose password the database most likely holds.
# A retry (or the next rotation after an abandoned one, or ``rotator fix``) tries that
# password first, so that a failed-login limit as low as 1 is never spent on a password
# that is not the database's (rotator.recovery).
SETTING = "ROTATOR_SETTING"


# The reports and server facts below are NamedTuples, for the cold-start reason given in
# rotator.accounts; SecretDescription holds dicts, so it stays a (frozen) dataclass.


@dataclass(frozen=True)
class SecretDescription:
    """DescribeSecret: the labels every step checks, and the schedule operators read."""

    arn: str
    name: str
    rotation_enabled: bool
    versions: dict[str, list[str]] = field(default_factory=dict)
    function_arn: str | None = None
    rules: dict[str, Any] = field(default_factory=dict)
    last_rotated: datetime.datetime | None = None
    next_rotation: datetime.datetime | None = None

    def version_with(self, stage: str) -> str | None:
        return next((version for version, stages in self.versions.items() if stage in stages), None)

    def has_stage(self, version: str, stage: str) -> bool:
        return stage in self.versions.get(version, ())


class VersionInfo(NamedTuple):
    version_id: str
    stages: tuple[str, ...]
    created: datetime.datetime | None


class ServerInfo(NamedTuple):
    flavor: str  # what the server says it is: "mariadb" or "mysql" (Aurora MySQL reports as mysql), "postgresql"
    version: tuple[int, int, int]
    version_string: str
    read_only: bool
    identity: tuple[str, int, int]  # @@hostname, @@port, @@server_id


class DualPasswords(NamedTuple):
    """Whether a password change can keep the old password working as a secondary one
    (MySQL 8.0.14+ ``RETAIN CURRENT PASSWORD``): single-user rotation without a window."""

    server_has_them: bool  # the server family and version can
    available: bool  # ... and this change may (the privilege it needs is held)
    reason: str  # why (not), for logs and ``rotator check``; never a secret


class PasswordReport(NamedTuple):
    """What the admin's change of one user's password (at each of its hosts) did."""

    hosts: tuple[str, ...]
    changed: int
    already_set: int  # accounts an earlier attempt of this rotation had already changed
    retained_current: bool
    # accounts changed without RETAIN because the password to keep was already their
    # secondary one (the primary was someone else's): a plain change keeps the secondary
    kept_secondary: int = 0


class HeldPasswords(NamedTuple):
    """Which of some candidate passwords one account holds, as its admin reads the stored
    hashes (no login is tried, so no failed login is counted). The hashes stay in the
    adapter: only the candidates' keys come out."""

    host: str
    known: bool  # the plugin's hashes can be checked here; False: nothing below is known
    primary: str | None  # the key of the candidate that is the primary password; None: none is
    secondary: str | None  # the key of the candidate that is the secondary one; None: none is
    has_secondary: bool  # the account keeps a secondary password (MySQL dual passwords)

    @property
    def foreign_secondary(self) -> bool:
        """A secondary password that is none of the candidates: someone else's."""
        return self.known and self.has_secondary and self.secondary is None

    def holds(self, key: str) -> bool:
        """Whether the candidate ``key`` logs in here (as the primary or the secondary)."""
        return self.known and key in (self.primary, self.secondary)


class LoginLimit(NamedTuple):
    """A failed-login limit that applies to an account: after ``attempts`` refused logins
    in a row the server locks it (MySQL FAILED_LOGIN_ATTEMPTS per account, error 3955;
    MariaDB max_password_errors for every account, error 4150). ``attempts`` 0: none."""

    attempts: int = 0
    lock_days: int = 0  # MySQL PASSWORD_LOCK_TIME (-1 UNBOUNDED); MariaDB: -1, until FLUSH PRIVILEGES
    scope: str = "account"  # "account" (MySQL) or "server" (MariaDB's global variable)

    def describe(self) -> str:
        if self.scope == "server":
            return f"max_password_errors = {self.attempts} (for every account of the server, until FLUSH PRIVILEGES)"
        lock = "UNBOUNDED" if self.lock_days < 0 else f"{self.lock_days} day(s)"
        return f"FAILED_LOGIN_ATTEMPTS {self.attempts} (PASSWORD_LOCK_TIME {lock})"


class SyncReport(NamedTuple):
    hosts: tuple[str, ...]
    existed: int  # twin accounts that were there before this sync
    created: int
    dropped: int
    statements: int  # grants, revokes and other changes beyond the password

    @property
    def changed_existing_twin(self) -> bool:
        """The twin existed and differed from the user (not just its password)."""
        return self.existed > 0 and (self.statements > 0 or self.dropped > 0)


class Ownership(NamedTuple):
    """Whether the objects alternating users create are shared through an owner role
    (PostgreSQL: docs/postgresql.md, "Ownership")."""

    owner_role: str | None  # the role the user's sessions create as; None: not shared
    owned_by_logins: tuple[tuple[str, int], ...]  # (login role, objects it owns itself)

    @property
    def needs_adoption(self) -> bool:
        return self.owner_role is None or any(count for _, count in self.owned_by_logins)


class Adoption(NamedTuple):
    """``rotator adopt``: the statements that bring a user (and its twin) to the owner role."""

    owner_role: str
    statements: tuple[str, ...]  # as a dry run prints them; never a password
    applied: bool


@runtime_checkable
class SharedOwnership(Protocol):
    """An admin session of an engine where what a user creates is owned by that user
    (PostgreSQL), so that alternating users share objects through an owner role. Engines
    whose accounts own nothing (MySQL) do not have it: the core asks ``isinstance``."""

    def ownership(self, user: str, twin: str | None) -> Ownership: ...

    def adopt(self, user: str, twin: str | None, *, apply: bool) -> Adoption:
        """The plan (``apply`` False: nothing changes), or the plan applied in one transaction."""
        ...


class SecretStore(Protocol):
    def describe(self, secret_id: str) -> SecretDescription: ...

    def get_version(self, secret_id: str, version_id: str, stage: str | None) -> str | None:
        """The SecretString of one version, or None when that version has no value yet.
        ``stage``: a label the version must hold (None for a version that holds none)."""
        ...

    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        """The AWSCURRENT SecretString of an admin secret (may be cached)."""
        ...

    def admin_tags(self, secret_id: str) -> dict[str, str]:
        """An admin secret's tags (DescribeSecret), for an admin secret without a host (may be cached)."""
        ...

    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None: ...

    def move_label(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        """Attach ``stage`` to ``to_version``, taking it from ``from_version``. Moving
        AWSCURRENT moves AWSPREVIOUS along with it (Secrets Manager does that)."""
        ...

    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str: ...

    def labelled_versions(self, secret_id: str) -> list[VersionInfo]:
        """Versions that hold a staging label, with their creation dates."""
        ...

    def unlabelled_versions(self, secret_id: str, limit: int) -> list[VersionInfo]:
        """The ``limit`` newest versions that hold no staging label any more (deprecated,
        still readable by id until Secrets Manager deletes them), newest first."""
        ...

    def secret_arns(self, function_arn: str | None = None) -> list[str]:
        """Every secret of the account and region (optionally: only those rotated by ``function_arn``)."""
        ...


class OperatorStore(Protocol):
    def configure_rotation(
        self, secret_id: str, function_arn: str, rules: dict[str, Any], *, rotate_now: bool
    ) -> str | None: ...

    def remove_label(self, secret_id: str, stage: str, version_id: str) -> None: ...

    def resource_policy(self, secret_id: str) -> tuple[str, str, str | None]:
        """The secret's ARN, name and resource policy (None: it has none)."""
        ...

    def put_resource_policy(self, secret_id: str, policy: str) -> None: ...

    def stage_rotation(self, secret_id: str, function_arn: str, *, enable: bool) -> str:
        """On an emulator: stage an empty AWSPENDING version as RotateSecret does; its token."""
        ...


class AccountCatalogue(Protocol):
    """Read-only: the accounts of one server as its admin sees them."""

    server: ServerInfo

    def current_account(self) -> Account: ...

    def account_hosts(self, user: str) -> list[str]: ...

    def read_profile(self, account: Account) -> AccountProfile: ...

    def role_privileges(self, role: Account) -> set[Privilege]: ...

    def max_username_length(self) -> int: ...

    def is_role(self, name: str) -> bool:
        """Whether ``name`` is a role (MariaDB) or an account used as one (MySQL 8)."""
        ...

    def account_state(self, account: Account) -> AccountState:
        """Whether the account is locked or its password expired (not part of the profile)."""
        ...

    def copy_problems(self, profile: AccountProfile) -> list[str]:
        """What of ``profile`` this server cannot give a twin (plugin, syntax); empty: everything."""
        ...

    def copy_advice(self, profile: AccountProfile) -> str:
        """What to do about :meth:`copy_problems` of ``profile``, in the engine's words (MySQL:
        single-user rotation; PostgreSQL: what to grant the admin)."""
        ...

    def dual_passwords(self) -> DualPasswords:
        """Whether the admin's password changes can keep the old password as a secondary one."""
        ...

    def passwords_held(self, user: str, candidates: dict[str, str]) -> list[HeldPasswords]:
        """For each host of ``user``: which of ``candidates`` (key -> password) is its primary
        and its secondary password, read from the stored hashes (no login is tried)."""
        ...

    def login_limit(self, account: Account) -> LoginLimit:
        """The failed-login limit that applies to ``account``."""
        ...

    def account_definition(self, user: str, host: str) -> AccountDefinition:
        """The account as the server prints it (MySQL family: ``SHOW CREATE USER``, ``SHOW
        GRANTS``), normalised by the backend: the second, independent reading testSecret
        compares (:mod:`rotator.comparison`). AccountReadError when the admin may not read
        it; UnsupportedDatabaseError when the backend cannot take it apart."""
        ...


class AdminSession(AccountCatalogue, Protocol):
    """The admin's session: the catalogue, and the one change rotation makes to accounts."""

    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport: ...

    def set_password(
        self, user: str, password: str, *, version: str, retain_current: bool, keep: str | None = None
    ) -> PasswordReport:
        """Set ``user``'s password at each of its hosts (keeping its plugin). With
        ``retain_current``, the old password stays valid as the secondary one and the
        change is marked with ``version``: an account already marked (or whose primary
        already is ``password``) is left alone, so a retry never makes the new password its
        own secondary. ``keep``: the password that must stay valid (AWSCURRENT's); where
        the stored hashes show it is the secondary and not the primary, the change does
        not retain the primary (someone else's) and the secondary ``keep`` stays."""
        ...


class OwnAccountSession(Protocol):
    """A user logged in on its own account, with whichever candidate login worked."""

    login: DatabaseSecret
    server: ServerInfo

    def dual_passwords(self) -> DualPasswords:
        """Whether this user may keep its current password while changing it."""
        ...

    def admin_dual_passwords(self) -> DualPasswords:
        """Whether an admin's change of this account's password keeps the old one as the
        secondary (the server's family and version say; no statement is sent)."""
        ...

    def change_password(self, new_password: str, *, retain_current: bool = False) -> bool:
        """Replace the password this session logged in with. False, and nothing changed,
        when that password is not the account's primary one (MySQL: it is the secondary
        that an earlier dual-password change kept). DatabaseUnreachableError when the
        connection failed: the change may have applied; ConcurrentChangeError when another
        session changed the account at the same moment: its change may stand. Any other
        DatabaseError: it did not
        (the server refused it, or the statement was never sent); setSecret relies on that
        to move ROTATOR_SETTING back (rotator.recovery). An exception that is no
        DatabaseError tells nothing: the label stays."""
        ...

    def replace_primary(self, new_password: str) -> None:
        """Replace the account's primary password, whatever it is, keeping its secondary
        one: for a session that logged in with the secondary password. A typed error
        (ForeignPasswordError) when the account requires the current password."""
        ...

    def login_limit(self) -> LoginLimit:
        """The failed-login limit that applies to this account (read as the user)."""
        ...


class Database(Protocol):
    def supports(self, secret: DatabaseSecret) -> None:
        """UnsupportedEngineError unless a backend serves the secret's ``engine`` (no
        connection is made: createSecret asks before it writes anything)."""
        ...

    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo: ...

    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> AbstractContextManager[AdminSession]: ...

    def own_account(self, candidates: Iterable[DatabaseSecret]) -> AbstractContextManager[OwnAccountSession]:
        """A session as the first of ``candidates`` (same user, other passwords) that
        the server accepts; DatabaseAuthError naming the user when none is."""
        ...
