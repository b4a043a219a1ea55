"""What ``rotator fix`` does with a stuck rotation: decided read-only, then one way or the other.

A pending version older than its rotation window blocks the next ``RotateSecret``.
Removing its AWSPENDING label is safe only while AWSCURRENT's password still logs in:
a single-user setSecret may already have changed the database to the pending password,
and then the pending version holds the only password that works. Removing that label
would leave it on no version a client or a rotation reads (issue 25).

So fix first finds out which password the database holds — as the admin, from the
stored hashes, where the secret has one and the plugin's hash can be computed (no login
at all); otherwise by logging in, the most likely password first and no more often than
the decision needs (a failed-login limit counts every refusal) — and then:

- **clear** (remove AWSPENDING) when AWSCURRENT's password logs in: alternating users
  (setSecret only ever changes the other user), or a single user whose account still
  takes AWSCURRENT's password (as the primary, or as the secondary one that MySQL's
  dual passwords keep);
- **finish** (move AWSCURRENT to the pending version, as finishSecret does, and take
  AWSPENDING off it) when the pending version's password logs in and AWSCURRENT's does
  not. For one account (single user) fix's login with the pending password is what
  testSecret proves, so fix labels the version ``ROTATOR_TESTED`` first: the labels then
  read as after a completed rotation. For alternating users the other user's privileges
  must also have been verified, so fix finishes only a version that already passed
  testSecret (``ROTATOR_TESTED``);
- **nothing** when neither logs in (the password was changed outside rotator), an
  account is locked or expired, or the database cannot be asked from here.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from rotator.admin_access import AdminAccess
from rotator.errors import AccountStateError, DatabaseAuthError, DatabaseError, SecretFormatError, SecretStoreError
from rotator.ports import (
    CURRENT,
    PENDING,
    SETTING,
    TESTED,
    Database,
    DualPasswords,
    OperatorStore,
    SecretDescription,
    SecretStore,
)
from rotator.secret import DatabaseSecret
from rotator.strategies import dual_passwords_of


class RepairAction(enum.StrEnum):
    CLEAR = "clear"
    FINISH = "finish"
    NOTHING = "nothing"


@dataclass(frozen=True)
class RepairPlan:
    action: RepairAction
    reason: str  # what was found, in identifiers only
    logins: int = 0  # logins fix made to decide (each may count towards a failed-login limit)
    label_tested: bool = False  # finish: put ROTATOR_TESTED on the version first


class Repair:
    """Decides what ``fix`` does about one pending version, and does it."""

    def __init__(self, store: SecretStore, database: Database, operator: OperatorStore) -> None:
        self._store = store
        self._database = database
        self._operator = operator
        self._logins = 0

    def plan(self, description: SecretDescription, pending_version: str) -> RepairPlan:
        self._logins = 0
        arn = description.arn
        current_version = description.version_with(CURRENT)
        if current_version is None:
            return RepairPlan(RepairAction.NOTHING, "the secret has no AWSCURRENT version")
        try:
            current = DatabaseSecret.parse(arn, self._store.get_version(arn, current_version, CURRENT))
            value = self._store.get_version(arn, pending_version, PENDING)
            pending = DatabaseSecret.parse(arn, value) if value is not None else None
        except SecretFormatError as exc:
            return RepairPlan(RepairAction.NOTHING, f"a version's value cannot be read: {exc.problem}")
        if pending is None:
            return RepairPlan(
                RepairAction.CLEAR,
                "the pending version has no value: createSecret never wrote it, so no setSecret changed the database",
            )
        try:
            if current.alternates:
                plan = self._alternating(description, pending_version, current, pending)
            else:
                plan = self._by_hashes(current, pending) or self._one_account(
                    description, pending_version, current, pending
                )
        except AccountStateError as exc:
            plan = RepairPlan(RepairAction.NOTHING, f"{exc.problem}; no other login tried (it would count as refused)")
        except DatabaseError as exc:
            plan = RepairPlan(
                RepairAction.NOTHING,
                f"cannot tell which password the database holds: {exc.problem} (run fix where the function runs)",
            )
        return RepairPlan(plan.action, plan.reason, self._logins, plan.label_tested)

    # -- the decisions -----------------------------------------------------------------

    def _alternating(
        self, description: SecretDescription, version: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> RepairPlan:
        if self._logs_in(current):
            return RepairPlan(
                RepairAction.CLEAR,
                f"AWSCURRENT ('{current.username}') logs in; setSecret only ever changes the other user "
                f"('{pending.username}'), so the label can go",
            )
        if not description.has_stage(version, TESTED):
            return RepairPlan(
                RepairAction.NOTHING,
                f"AWSCURRENT ('{current.username}') is refused by the database, and the pending version never passed "
                f"testSecret (the privileges of '{pending.username}' are not verified): the password was changed "
                "outside rotator; set the database's password in AWSCURRENT (or the other way round)",
            )
        if self._logs_in(pending):
            return RepairPlan(
                RepairAction.FINISH,
                f"AWSCURRENT ('{current.username}') is refused; the pending version ('{pending.username}') passed "
                "testSecret and logs in",
            )
        return RepairPlan(RepairAction.NOTHING, "neither AWSCURRENT nor the pending version logs in")

    def _by_hashes(self, current: DatabaseSecret, pending: DatabaseSecret) -> RepairPlan | None:
        """With an admin: read the account's stored hashes, no user login at all. None when
        they cannot tell (no admin secret, an admin refused, a plugin whose hash is unknown)."""
        if not current.masterarn:
            return None
        admin = AdminAccess(self._store, self._database, current.masterarn)
        try:
            with admin.session(current) as session:
                held = session.passwords_held(current.username, {CURRENT: current.password, PENDING: pending.password})
        except (DatabaseAuthError, SecretFormatError, SecretStoreError):
            return None  # the admin cannot help here: logins decide
        if not held or not all(found.known for found in held):
            return None
        user = current.username
        if all(found.holds(CURRENT) for found in held):
            how = "as the secondary password" if any(found.primary != CURRENT for found in held) else "as the primary"
            return RepairPlan(
                RepairAction.CLEAR,
                f"the account '{user}' still takes AWSCURRENT's password ({how}; read from its stored hashes by "
                "the admin), so the label can go",
            )
        if all(found.primary == PENDING for found in held):
            return RepairPlan(
                RepairAction.FINISH,
                f"the account '{user}' has the pending version's password and not AWSCURRENT's (read from its "
                "stored hashes by the admin): setSecret changed it and the rotation stopped before finishSecret",
                label_tested=True,
            )
        hosts = ", ".join(f"'{found.host}'" for found in held if not found.holds(CURRENT))
        return RepairPlan(
            RepairAction.NOTHING,
            f"the account '{user}' at host(s) {hosts} has neither AWSCURRENT's nor the pending version's password: "
            "it was changed outside rotator",
        )

    def _one_account(
        self, description: SecretDescription, version: str, current: DatabaseSecret, pending: DatabaseSecret
    ) -> RepairPlan:
        """A single user: logins, the more likely password first (rotator.recovery)."""
        user = current.username
        finish = RepairPlan(
            RepairAction.FINISH,
            f"the pending version's password logs in as '{user}' and AWSCURRENT's does not: setSecret changed the "
            "password and the rotation stopped before finishSecret",
            label_tested=True,
        )
        clear = RepairPlan(RepairAction.CLEAR, f"AWSCURRENT's password still logs in as '{user}', so the label can go")
        neither = RepairPlan(
            RepairAction.NOTHING,
            f"neither AWSCURRENT's nor the pending version's password logs in as '{user}': it was changed outside "
            "rotator; set the database's password in AWSCURRENT (or the other way round)",
        )
        if not (description.has_stage(version, SETTING) or description.has_stage(version, TESTED)):
            # setSecret of this version never began changing the password: AWSCURRENT first.
            if self._logs_in(current):
                return clear
            return finish if self._logs_in(pending) else neither
        dual = self._dual_if_logs_in(pending, current)
        if dual is None:  # the change never happened
            return clear if self._logs_in(current) else neither
        if not dual.available:
            # Changed without keeping the old password: AWSCURRENT's cannot log in, and a
            # login to prove it would only be refused (and counted).
            return finish
        return clear if self._logs_in(current) else finish

    # -- logins --------------------------------------------------------------------------

    def _logs_in(self, login: DatabaseSecret) -> bool:
        return self._counted(lambda: self._database.check_login(login))

    def _dual_if_logs_in(self, pending: DatabaseSecret, current: DatabaseSecret) -> DualPasswords | None:
        """Log in with the pending password; whether its change kept the old password
        (None: refused). The same question setSecret asked (rotator.strategies)."""
        found: list[DualPasswords] = []

        def login() -> None:
            with self._database.own_account((pending,)) as own:
                found.append(dual_passwords_of(own, current))

        return found[0] if self._counted(login) else None

    def _counted(self, login: Callable[[], object]) -> bool:
        self._logins += 1
        try:
            login()
        except AccountStateError:
            raise
        except DatabaseAuthError:
            return False
        return True

    # -- acting ------------------------------------------------------------------------------

    def apply(self, description: SecretDescription, pending_version: str, plan: RepairPlan) -> None:
        """Carry out a plan, on labels read just before (the caller re-read them)."""
        arn = description.arn
        if plan.action is RepairAction.CLEAR:
            self._operator.remove_label(arn, PENDING, pending_version)
        elif plan.action is RepairAction.FINISH:
            if plan.label_tested and not description.has_stage(pending_version, TESTED):
                self._store.move_label(arn, TESTED, pending_version, description.version_with(TESTED))
            self._store.move_label(arn, CURRENT, pending_version, description.version_with(CURRENT))
            # As a completed rotation leaves it: the version is AWSCURRENT, nothing pending.
            self._operator.remove_label(arn, PENDING, pending_version)
