"""The four rotation steps, as a small state machine over two ports.

Secrets Manager calls the function once per step with the same token (the new
version id) and retries the whole rotation when a step fails, so every step first
checks where the rotation stands and does only what is still missing:

- createSecret  writes the AWSPENDING value once; a retry finds it and stops.
- setSecret     makes the database match the pending value (the strategy's work:
                see :mod:`rotator.strategies`), whatever state an earlier attempt left.
- testSecret    proves the pending value works (and, for alternating users, that
                the twin's privileges equal the current user's), then labels the
                version ROTATOR_TESTED; a duplicate finds the label and stops.
- finishSecret  moves AWSCURRENT to the token in one call, and only to a version
                labelled ROTATOR_TESTED.

A token that is already AWSCURRENT is a finished rotation: every step succeeds
without doing anything.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from rotator.errors import InvalidEventError, RotationStateError, SecretMismatchError
from rotator.ports import CURRENT, PENDING, TESTED, Database, SecretDescription, SecretStore
from rotator.secret import DatabaseSecret
from rotator.settings import ConfiguredHost, PasswordPolicy
from rotator.strategies import Outcome, Strategy, strategy_for

logger = Logger(child=True)


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

    @classmethod
    def from_event(cls, event: object) -> RotationRequest:
        """The request in a Secrets Manager rotation event, or InvalidEventError.

        Read by hand rather than through Powertools' SecretsManagerEvent: importing
        its data_classes package loads every event type (~30 ms of cold start) to
        read three keys."""
        if not isinstance(event, dict):
            raise InvalidEventError("<no SecretId>", f"event is not a JSON object (got {type(event).__name__})")
        secret_id, token, step = (event.get(key) for key in ("SecretId", "ClientRequestToken", "Step"))
        if not isinstance(secret_id, str) or not secret_id:
            raise InvalidEventError("<no SecretId>", "event lacks SecretId")
        if not isinstance(token, str) or not token:
            raise InvalidEventError(secret_id, "event lacks ClientRequestToken")
        try:
            parsed_step = Step(str(step))
        except ValueError:
            raise InvalidEventError(secret_id, f"unknown step {step!r}") from None
        rotation_token = event.get("RotationToken")
        return cls(secret_id, token, parsed_step, rotation_token if isinstance(rotation_token, str) else None)

    def key_fields(self) -> dict[str, str]:
        """What the idempotency key is computed from (rotator.idempotency): never the
        RotationToken, which travels to PutSecretValue in memory only."""
        return {"SecretId": self.secret_id, "ClientRequestToken": self.token, "Step": self.step.value}


@dataclass(frozen=True)
class StepResult:
    """What a step did. Returned by the handler and stored by idempotency: no secrets."""

    step: str
    secret_arn: str
    outcome: str
    notices: tuple[str, ...] = ()  # what it noticed on the way (rotator.strategies), counted as metrics

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"step": self.step, "secret": self.secret_arn, "outcome": self.outcome}
        if self.notices:
            result["notices"] = list(self.notices)
        return result


class Rotation:
    def __init__(
        self,
        store: SecretStore,
        database: Database,
        policy: PasswordPolicy,
        admin_hosts: Mapping[str, ConfiguredHost] | None = None,
    ) -> None:
        self._store = store
        self._database = database
        self._policy = policy
        self._admin_hosts = admin_hosts or {}  # rotator.admin_host

    def run(self, request: RotationRequest) -> StepResult:
        description = self._store.describe(request.secret_id)
        arn, token = description.arn, request.token
        if not description.rotation_enabled:
            raise RotationStateError(arn, "rotation is not enabled for this secret")
        if token not in description.versions:
            raise RotationStateError(arn, f"version {token} is not a version of this secret")
        if description.has_stage(token, CURRENT):
            logger.info("version is already AWSCURRENT; nothing to do")
            return StepResult(request.step, arn, "already-current")
        if not description.has_stage(token, PENDING):
            raise RotationStateError(arn, f"version {token} is not staged AWSPENDING")

        if request.step is Step.FINISH:
            return StepResult(request.step, arn, self._finish(description, token))
        current = self._load(description, description.version_with(CURRENT), CURRENT)
        self._database.supports(current)  # an engine no backend serves: refused before anything changes
        strategy = strategy_for(current, self._store, self._database, self._admin_hosts)
        if request.step is Step.CREATE:
            outcome = Outcome(self._create(description, request, current, strategy))
        elif request.step is Step.SET:
            outcome = strategy.set(description, token, current, self._pending(description, token, current, strategy))
        else:
            outcome = self._test(description, token, current, strategy)
        return StepResult(request.step, arn, outcome.name, outcome.notices)

    def _create(
        self, description: SecretDescription, request: RotationRequest, current: DatabaseSecret, strategy: Strategy
    ) -> str:
        if self._store.get_version(description.arn, request.token, PENDING) is not None:
            logger.info("pending version already has a value")
            return "pending-exists"
        strategy.before_create(current)
        username = strategy.pending_username(current)
        pending = current.with_credentials(username, self._store.random_password(description.arn, self._policy))
        self._store.put_pending(description.arn, request.token, pending.to_json(), request.rotation_token)
        logger.info("stored pending version", extra={"username": username})
        return "created"

    def _test(self, description: SecretDescription, token: str, current: DatabaseSecret, strategy: Strategy) -> Outcome:
        if description.has_stage(token, TESTED):
            logger.info("version already passed testSecret")
            return Outcome("already-tested")
        outcome = strategy.test(current, self._pending(description, token, current, strategy))
        self._store.move_label(description.arn, TESTED, token, description.version_with(TESTED))
        return outcome

    def _finish(self, description: SecretDescription, token: str) -> str:
        if not description.has_stage(token, TESTED):
            raise RotationStateError(
                description.arn,
                f"version {token} has not passed testSecret: finishSecret promotes only a tested version",
            )
        current_version = description.version_with(CURRENT)
        self._store.move_label(description.arn, CURRENT, token, current_version)
        logger.info("moved AWSCURRENT to the new version", extra={"previous_version": current_version})
        return "promoted"

    def _load(self, description: SecretDescription, version: str | None, stage: str) -> DatabaseSecret:
        if version is None:
            raise RotationStateError(description.arn, f"secret has no {stage} version")
        value = self._store.get_version(description.arn, version, stage)
        if value is None:
            raise RotationStateError(description.arn, f"{stage} version {version} has no value")
        return DatabaseSecret.parse(description.arn, value)

    def _pending(
        self, description: SecretDescription, token: str, current: DatabaseSecret, strategy: Strategy
    ) -> DatabaseSecret:
        """The pending value, refused unless it differs from the current one in the
        credentials only, and names the user the strategy rotates to."""
        arn = description.arn
        value = self._store.get_version(arn, token, PENDING)
        if value is None:
            raise RotationStateError(arn, f"pending version {token} has no value (createSecret has not run)")
        pending = DatabaseSecret.parse(arn, value)
        changed = current.differences(pending)
        if changed:
            raise SecretMismatchError(
                arn, f"pending version differs from current in {', '.join(changed)}; only credentials may change"
            )
        expected = strategy.pending_username(current)
        if pending.username != expected:
            raise SecretMismatchError(arn, f"pending user '{pending.username}' is not '{expected}'")
        return pending
