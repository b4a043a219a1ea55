"""The four rotation steps, as a small state machine over two ports.

Secrets Manager calls the function once per step with the same token (the new
version id) and retries the whole rotation when a step fails, so every step first
checks where the rotation stands and does only what is still missing:

- createSecret  writes the AWSPENDING value once; a retry finds it and stops.
- setSecret     makes the database match the pending value. Alternating users:
                the admin brings the twin user to exactly the current user's hosts,
                password and privileges, whatever state an earlier attempt left.
                Single user: the user changes its own password.
- testSecret    logs in with the pending value and, for alternating users, proves
                the twin's privileges equal the current user's.
- finishSecret  moves AWSCURRENT to the token in one call.

A token that is already AWSCURRENT is a finished rotation: every step succeeds
without doing anything.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aws_lambda_powertools import Logger

from rotator.errors import (
    DatabaseAuthError,
    RotationStateError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
)
from rotator.ports import (
    CURRENT,
    PENDING,
    PREVIOUS,
    AdminSession,
    Database,
    SecretDescription,
    SecretStore,
    ServerInfo,
)
from rotator.secret import DatabaseSecret
from rotator.settings import PasswordPolicy

logger = Logger(child=True)
T = TypeVar("T")

# How often testSecret tries the pending login against a replica before failing:
# an Aurora reader sees a user change made on the writer after a short lag.
REPLICA_LOGIN_ATTEMPTS = 5


class Step(enum.StrEnum):
    CREATE = "createSecret"
    SET = "setSecret"
    TEST = "testSecret"
    FINISH = "finishSecret"


@dataclass(frozen=True)
class RotationRequest:
    secret_id: str
    token: str
    step: Step
    rotation_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StepResult:
    """What a step did. Returned by the handler and stored by idempotency: no secrets."""

    step: str
    secret_arn: str
    outcome: str

    def as_dict(self) -> dict[str, str]:
        return {"step": self.step, "secret": self.secret_arn, "outcome": self.outcome}


class Rotation:
    def __init__(self, store: SecretStore, database: Database, policy: PasswordPolicy) -> None:
        self._store = store
        self._database = database
        self._policy = policy

    def run(self, request: RotationRequest) -> StepResult:
        description = self._store.describe(request.secret_id)
        arn = description.arn
        if not description.rotation_enabled:
            raise RotationStateError(arn, "rotation is not enabled for this secret")
        stages = description.versions.get(request.token)
        if stages is None:
            raise RotationStateError(arn, f"version {request.token} is not a version of this secret")
        if CURRENT in stages:
            logger.info("version is already AWSCURRENT; nothing to do")
            return StepResult(request.step, arn, "already-current")
        if PENDING not in stages:
            raise RotationStateError(arn, f"version {request.token} is not staged AWSPENDING")

        steps: dict[Step, Callable[[SecretDescription, RotationRequest], str]] = {
            Step.CREATE: self._create,
            Step.SET: self._set,
            Step.TEST: self._test,
            Step.FINISH: self._finish,
        }
        outcome = steps[request.step](description, request)
        return StepResult(request.step, arn, outcome)

    # -- createSecret --------------------------------------------------------

    def _create(self, description: SecretDescription, request: RotationRequest) -> str:
        arn = description.arn
        current = self._current(description)
        if self._store.get_version(arn, request.token, PENDING) is not None:
            logger.info("pending version already has a value")
            return "pending-exists"
        if current.masterarn:
            self._admin_secret(current)  # a masterarn pointing nowhere fails here, before anything is written
            username = current.twin_username
        else:
            username = current.username
        pending = current.with_credentials(username, self._store.random_password(arn, self._policy))
        self._store.put_pending(arn, request.token, pending.to_json(), request.rotation_token)
        logger.info("stored pending version", extra={"username": username})
        return "created"

    # -- setSecret -----------------------------------------------------------

    def _set(self, description: SecretDescription, request: RotationRequest) -> str:
        current, pending = self._pair(description, request.token)
        if not current.masterarn:
            return self._set_single_user(description, current, pending)

        app_server = self._database.check_login(current)  # the current user must still work

        def sync(session: AdminSession) -> str:
            ensure_same_server(current, app_server, session.server)
            report = session.sync_twin(current.username, pending.username, pending.password)
            logger.info(
                "twin user matches current user",
                extra={
                    "username": pending.username,
                    "hosts": list(report.hosts),
                    "users_created": report.created,
                    "users_dropped": report.dropped,
                    "statements": report.statements,
                },
            )
            return "twin-synced"

        return self._as_admin(current, sync)

    def _set_single_user(self, description: SecretDescription, current: DatabaseSecret, pending: DatabaseSecret) -> str:
        # The current password first: on a first attempt it is the one that works,
        # so a normal rotation makes no refused login (which servers count towards
        # lock-outs such as FAILED_LOGIN_ATTEMPTS / max_password_errors).
        try:
            self._database.change_own_password(current, pending.password)
            logger.info("changed own password", extra={"username": current.username})
            return "password-changed"
        except DatabaseAuthError:
            pass
        try:
            # A retry after this step already changed the password.
            self._database.check_login(pending)
            logger.info("pending password already works")
            return "password-already-set"
        except DatabaseAuthError:
            pass
        # AWSCURRENT was changed without the database: the previous version's
        # password may be the one that still works.
        previous_version = description.version_with(PREVIOUS)
        previous = self._load(description.arn, previous_version, PREVIOUS) if previous_version else None
        if previous is None or previous.username != current.username:
            raise DatabaseAuthError(
                description.arn, f"neither the current nor the pending password of '{current.username}' is accepted"
            )
        logger.info("current password refused; changing it with the previous version's password")
        self._database.change_own_password(previous, pending.password)
        return "password-changed"

    # -- testSecret ----------------------------------------------------------

    def _test(self, description: SecretDescription, request: RotationRequest) -> str:
        current, pending = self._pair(description, request.token)
        if pending.username == current.username or not current.masterarn:
            self._database.check_login(pending)
            logger.info("pending credentials log in")
            return "login-ok"

        admin = self._admin_secret(current)
        on_replica = bool(admin.host) and (admin.host, admin.port) != (current.host, current.port)

        def verify(session: AdminSession) -> str:
            session.verify_twin(current.username, pending.username)
            return "twin-verified"

        outcome = self._as_admin(current, verify)
        self._database.check_login(pending, attempts=REPLICA_LOGIN_ATTEMPTS if on_replica else 1)
        logger.info("pending credentials log in and privileges match", extra={"username": pending.username})
        return outcome

    # -- finishSecret --------------------------------------------------------

    def _finish(self, description: SecretDescription, request: RotationRequest) -> str:
        current_version = description.version_with(CURRENT)
        self._store.promote(description.arn, request.token, current_version)
        logger.info("moved AWSCURRENT to the new version", extra={"previous_version": current_version})
        return "promoted"

    # -- helpers ---------------------------------------------------------------

    def _current(self, description: SecretDescription) -> DatabaseSecret:
        version = description.version_with(CURRENT)
        if version is None:
            raise RotationStateError(description.arn, "secret has no AWSCURRENT version")
        return self._load(description.arn, version, CURRENT)

    def _load(self, arn: str, version: str, stage: str) -> DatabaseSecret:
        value = self._store.get_version(arn, version, stage)
        if value is None:
            raise RotationStateError(arn, f"{stage} version {version} has no value")
        return DatabaseSecret.parse(arn, value)

    def _pair(self, description: SecretDescription, token: str) -> tuple[DatabaseSecret, DatabaseSecret]:
        current = self._current(description)
        value = self._store.get_version(description.arn, token, PENDING)
        if value is None:
            raise RotationStateError(
                description.arn, f"pending version {token} has no value (createSecret has not run)"
            )
        pending = DatabaseSecret.parse(description.arn, value)
        changed = current.differences(pending)
        if changed:
            raise SecretMismatchError(
                description.arn,
                f"pending version differs from current in {', '.join(changed)}; only credentials may change",
            )
        if current.masterarn and pending.username not in (current.username, current.twin_username):
            raise SecretMismatchError(
                description.arn, f"pending user '{pending.username}' is neither '{current.username}' nor its twin"
            )
        if not current.masterarn and pending.username != current.username:
            raise SecretMismatchError(description.arn, "single-user rotation cannot change the user name")
        return current, pending

    def _admin_secret(self, app: DatabaseSecret, *, refresh: bool = False) -> DatabaseSecret:
        assert app.masterarn is not None
        try:
            value = self._store.get_admin(app.masterarn, refresh=refresh)
        except SecretStoreError as exc:
            raise SecretStoreError(app.secret_id, f"admin secret {app.masterarn}: {exc.problem}") from exc
        try:
            return DatabaseSecret.parse(app.masterarn, value, require_host=False)
        except SecretFormatError as exc:
            raise SecretFormatError(app.secret_id, f"admin secret {app.masterarn}: {exc.problem}") from None

    def _as_admin(self, app: DatabaseSecret, work: Callable[[AdminSession], T]) -> T:
        """Run ``work`` in an admin session; if the (possibly cached) admin
        credentials are refused, read the admin secret again and retry once."""
        admin = self._admin_secret(app)
        try:
            with self._database.admin(admin, app) as session:
                return work(session)
        except DatabaseAuthError:
            fresh = self._admin_secret(app, refresh=True)
            if fresh.password == admin.password and fresh.username == admin.username:
                raise
            logger.info("admin credentials changed since they were cached; retrying with the new ones")
            with self._database.admin(fresh, app) as session:
                return work(session)


def ensure_same_server(app: DatabaseSecret, app_server: ServerInfo, admin_server: ServerInfo) -> None:
    """The admin must change users on the server the application uses (or, for
    a read replica, on its writer); never create the twin somewhere else."""
    if admin_server.identity == app_server.identity or app_server.read_only:
        return
    raise SecretMismatchError(
        app.secret_id,
        f"admin secret {app.masterarn} reaches a different server ({admin_server.identity[0]}) "
        f"than the application's host {app.host}",
    )
