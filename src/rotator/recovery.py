"""Which password does the database hold? The logins a single user tries, most likely first.

A single-user rotation changes the one account's password in setSecret and gives the
new password to the clients only in finishSecret. When a rotation stops in between
(the function died and Secrets Manager gave up, testSecret kept failing), the database
holds the pending version's password while AWSCURRENT holds the old one; with MySQL's
dual passwords the old one still logs in, as the secondary. A retry, the next rotation
and ``rotator fix`` (:mod:`rotator.repair`) must then find the database's password
without locking the account out: a server with a failed-login limit (MySQL
``FAILED_LOGIN_ATTEMPTS``, MariaDB ``max_password_errors``) counts every refused login,
and with a limit of 1 the first wrong guess locks the right password out too.

A single user cannot read its account's state before it logs in, so the passwords are
tried most likely first, and each is read from Secrets Manager only when the one before
was refused. The evidence for "most likely" is a staging label: setSecret moves
``ROTATOR_SETTING`` (:data:`rotator.ports.SETTING`) to the pending version just before it
changes the password, and nothing moves it again until the next setSecret, except
setSecret itself when its change certainly did not apply (:func:`restore_setting`: the
server refused it, or it was never sent). What remains is a death between the two (Lambda
killed after the label moved, before the change was sent) and a connection lost with the
change unanswered: the label then stays on a version whose password the database may not
hold, and the retry's first login may be refused (docs/reliability.md, "ROTATOR_SETTING").
So:

1. the version holding ``ROTATOR_SETTING`` when it is not AWSCURRENT: the pending
   version (a retry of a setSecret that may have changed the password), or the version
   of a rotation that was abandoned after its setSecret began (its AWSPENDING label
   gone, the staging label still there, which also keeps Secrets Manager from deleting
   the version);
2. AWSCURRENT (the normal case: no refused login at all);
3. the pending version, only when no version holds the label (a rotation begun before
   rotator had it): setSecret of this version has not begun otherwise;
4. AWSPREVIOUS (AWSCURRENT was changed without the database);
5. the :data:`UNLABELLED_TRIED` newest versions that hold no label any more
   (``ListSecretVersionIds`` with deprecated versions), for the same user: an abandoned
   rotation whose labels were all removed.

The label costs one ``UpdateSecretVersionStage`` per single-user rotation
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Iterator

from aws_lambda_powertools import Logger

from rotator.errors import SecretFormatError, SecretStoreError
from rotator.ports import CURRENT, PENDING, PREVIOUS, SETTING, SecretDescription, SecretStore
from rotator.secret import DatabaseSecret

logger = Logger(child=True)

# Unlabelled versions tried, newest first, before a single-user login gives up. Each is a
# login that may be refused (and counted): a few cover an abandoned rotation or two.
UNLABELLED_TRIED = 3


class LikelyLogins:
    """The same user's passwords the database may hold, most likely first: an iterable
    of logins for :meth:`rotator.ports.Database.own_account`, read lazily."""

    def __init__(
        self,
        store: SecretStore,
        description: SecretDescription,
        token: str,
        current: DatabaseSecret,
        pending: DatabaseSecret | None,
    ) -> None:
        self._store = store
        self._description = description
        self._token = token
        self._current = current
        self._pending = pending
        self.setting = description.version_with(SETTING)
        self._sources: dict[int, tuple[str, str]] = {}  # id(login) -> (version id, what it is)
        self._passwords: set[str] = set()  # offered already (never logged)

    @property
    def pending_likely(self) -> bool:
        """Whether setSecret of the pending version began changing the password."""
        return self.setting == self._token

    def source(self, login: DatabaseSecret) -> tuple[str, str]:
        """The version a login came from and what it is (``AWSCURRENT``, ``an abandoned
        rotation's version``...): identifiers only."""
        return self._sources.get(id(login), ("", "unknown"))

    def __iter__(self) -> Iterator[DatabaseSecret]:
        description, token = self._description, self._token
        current_version = description.version_with(CURRENT) or ""
        offered: set[str] = set()
        if self.pending_likely and self._pending is not None:
            yield from self._offer(offered, token, PENDING, self._pending)
        elif self.setting not in (None, current_version, token):
            assert self.setting is not None
            yield from self._read(offered, self.setting, SETTING, "an abandoned rotation's version")
        yield from self._offer(offered, current_version, CURRENT, self._current)
        if self.setting is None and self._pending is not None:
            yield from self._offer(offered, token, PENDING, self._pending)
        previous = description.version_with(PREVIOUS)
        if previous is not None:
            yield from self._read(offered, previous, PREVIOUS, PREVIOUS)
        try:
            unlabelled = self._store.unlabelled_versions(description.arn, UNLABELLED_TRIED)
        except SecretStoreError as exc:
            logger.warning("cannot list the secret's unlabelled versions", extra={"problem": exc.problem})
            return
        for version in unlabelled:
            yield from self._read(offered, version.version_id, None, "an unlabelled version")

    def _read(self, offered: set[str], version: str, stage: str | None, what: str) -> Iterator[DatabaseSecret]:
        if version in offered:
            return
        arn = self._description.arn
        try:
            value = self._store.get_version(arn, version, stage)
            login = DatabaseSecret.parse(arn, value) if value is not None else None
        except (SecretStoreError, SecretFormatError) as exc:
            logger.info(
                "a version's value cannot be used as a login", extra={"version": version, "problem": exc.problem}
            )
            return
        if login is None or login.username != self._current.username:
            return  # another user's (an alternating twin's): never this account's password
        logger.info("trying the password of another version", extra={"version": version, "what": what})
        yield from self._offer(offered, version, what, login)

    def _offer(self, offered: set[str], version: str, what: str, login: DatabaseSecret) -> Iterator[DatabaseSecret]:
        if version in offered:
            return
        offered.add(version)
        if login.password in self._passwords:
            return  # the same password again: a second refusal would only be counted
        self._passwords.add(login.password)
        self._sources[id(login)] = (version, what)
        yield login


def mark_setting(store: SecretStore, description: SecretDescription, token: str) -> None:
    """Move ``ROTATOR_SETTING`` to the pending version ``token``, just before setSecret
    changes the database's password to its own (see the module's docstring)."""
    holder = description.version_with(SETTING)
    if holder == token:
        return
    try:
        store.move_label(description.arn, SETTING, token, holder)
    except SecretStoreError:
        # A duplicate delivery may have moved it meanwhile; only then is this one done.
        if store.describe(description.arn).version_with(SETTING) != token:
            raise


def restore_setting(store: SecretStore, description: SecretDescription, token: str, version: str) -> None:
    """Move ``ROTATOR_SETTING`` back from ``token`` to ``version`` (the version whose password
    logged in; AWSCURRENT's when unknown) when setSecret's change failed before it applied
    (refused by the server, or never sent): nothing changed, so that password is still the
    one to try first. Best effort: the error being reported matters more."""
    target = version or description.version_with(CURRENT)
    if not target or target == token:
        return
    try:
        store.move_label(description.arn, SETTING, target, token)
    except SecretStoreError as exc:
        logger.warning("could not move ROTATOR_SETTING back after a refused change", extra={"problem": exc.problem})
