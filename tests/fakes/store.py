"""Secrets Manager in memory: the :class:`rotator.ports.SecretStore` port (and the
operator's writes) over secrets with versions and staging labels.

It behaves as the adapter (rotator.secret_store) does against the service: the same
:class:`~rotator.errors.SecretStoreError` failures for the same situations (a missing
secret is NOT_FOUND, a refused label move is OTHER with InvalidParameterException, a
denied call DENIED), a missing version or label read as ``None``. Where moto and AWS
differ (tests/unit/contract/test_store_contract.py names each case) it follows AWS.

``deny(arn, operation)`` makes one operation answer AccessDenied (moto enforces no
policy); ``faults`` counts every port call (tests.fakes.faults).
"""

from __future__ import annotations

import datetime
import json
import secrets
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from rotator.errors import SecretStoreError, StoreFailure
from rotator.ports import CURRENT, PENDING, PREVIOUS, SecretDescription, VersionInfo
from rotator.settings import PasswordPolicy
from tests.fakes.faults import FaultPlan

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class _Version:
    value: str | None
    stages: list[str]
    created: datetime.datetime


@dataclass
class _Secret:
    arn: str
    name: str
    versions: dict[str, _Version] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    function_arn: str | None = None
    rotation_enabled: bool = False
    rules: dict[str, Any] = field(default_factory=dict)
    last_rotated: datetime.datetime | None = None
    next_rotation: datetime.datetime | None = None
    policy: str | None = None  # the resource policy (JSON text)

    def holder(self, stage: str) -> str | None:
        return next((vid for vid, version in self.versions.items() if stage in version.stages), None)


class FakeSecretStore:
    """Secrets Manager for one account and region. Arrange with :meth:`create_secret`,
    :meth:`begin_rotation`, :meth:`enable_rotation`; read with :meth:`value`, :meth:`stages`."""

    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.faults = faults or FaultPlan()
        self._secrets: dict[str, _Secret] = {}
        self._denied: set[tuple[str, str]] = set()
        self._clock = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        self.passwords_made: list[str] = []  # every GetRandomPassword answer (leak checks)

    # -- arranging (what a person or RotateSecret does) -----------------------------------

    def create_secret(self, name: str, value: dict[str, Any] | str, tags: dict[str, str] | None = None) -> str:
        arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-{secrets.token_hex(3)}"
        secret = _Secret(arn, name, tags=dict(tags or {}))
        text = value if isinstance(value, str) else json.dumps(value)
        secret.versions[str(uuid.uuid4())] = _Version(text, [CURRENT], self._tick())
        self._secrets[arn] = secret
        return arn

    def enable_rotation(self, arn: str, function_arn: str, rules: dict[str, Any] | None = None) -> None:
        secret = self._find(arn, "RotateSecret")
        secret.function_arn = function_arn
        secret.rotation_enabled = True
        secret.rules = dict(rules or {"AutomaticallyAfterDays": 30})

    def begin_rotation(self, arn: str, token: str | None = None) -> str:
        """Stage an empty AWSPENDING version under ``token``, as RotateSecret does before
        it invokes the function (and turn rotation on, as the first RotateSecret does)."""
        secret = self._find(arn, "RotateSecret")
        if not secret.rotation_enabled:
            self.enable_rotation(arn, secret.function_arn or f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rotator")
        token = token or str(uuid.uuid4())
        pending = secret.holder(PENDING)
        if pending is not None and pending != token:
            secret.versions[pending].stages.remove(PENDING)
        secret.versions.setdefault(token, _Version(None, [], self._tick()))
        if PENDING not in secret.versions[token].stages:
            secret.versions[token].stages.append(PENDING)
        return token

    def put_value(self, arn: str, value: dict[str, Any] | str, stages: list[str]) -> str:
        """A new version carrying ``stages`` (taken from whichever version held them)."""
        secret = self._find(arn, "PutSecretValue")
        version = str(uuid.uuid4())
        text = value if isinstance(value, str) else json.dumps(value)
        secret.versions[version] = _Version(text, [], self._tick())
        for stage in stages:
            self._attach(secret, stage, version)
        return version

    def deny(self, arn: str, operation: str) -> None:
        """``operation`` (``GetSecretValue``...) on ``arn`` answers AccessDeniedException from now on."""
        self._denied.add((arn, operation))

    def delete(self, arn: str) -> None:
        del self._secrets[arn]

    def set_dates(
        self, arn: str, *, last_rotated: datetime.datetime | None, next_rotation: datetime.datetime | None
    ) -> None:
        secret = self._find(arn, "DescribeSecret")
        secret.last_rotated, secret.next_rotation = last_rotated, next_rotation

    # -- observing -----------------------------------------------------------------------

    def stages(self, arn: str) -> dict[str, list[str]]:
        return {vid: list(v.stages) for vid, v in self._find(arn, "DescribeSecret").versions.items() if v.stages}

    def value(self, arn: str, stage: str = CURRENT) -> dict[str, Any]:
        secret = self._find(arn, "GetSecretValue")
        holder = secret.holder(stage)
        assert holder is not None, f"no version holds {stage}"
        text = secret.versions[holder].value
        assert text is not None
        return dict(json.loads(text))

    def all_values(self, arn: str) -> list[str]:
        """Every version's value (for leak checks: no policy applies to the test itself)."""
        return [v.value for v in self._secrets[arn].versions.values() if v.value is not None]

    # -- the SecretStore port ----------------------------------------------------------------

    def describe(self, secret_id: str) -> SecretDescription:
        with self.faults.call("SecretStore.describe"):
            secret = self._find(secret_id, "DescribeSecret")
            return SecretDescription(
                arn=secret.arn,
                name=secret.name,
                rotation_enabled=secret.rotation_enabled,
                versions={vid: list(v.stages) for vid, v in secret.versions.items() if v.stages},
                function_arn=secret.function_arn,
                rules=dict(secret.rules),
                last_rotated=secret.last_rotated,
                next_rotation=secret.next_rotation,
            )

    def get_version(self, secret_id: str, version_id: str, stage: str | None) -> str | None:
        with self.faults.call("SecretStore.get_version"):
            try:
                secret = self._find(secret_id, "GetSecretValue")
            except SecretStoreError as exc:
                if exc.failure is StoreFailure.NOT_FOUND:
                    return None
                raise
            version = secret.versions.get(version_id)
            if version is None:
                return None
            if stage is not None and stage not in version.stages:
                # moto's answer (the contract test holds the adapter to it): not "not found".
                raise _client_error(secret_id, "GetSecretValue", "InvalidRequestException")
            return version.value

    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        with self.faults.call("SecretStore.get_admin"):
            try:
                secret = self._find(secret_id, "GetSecretValue")
            except SecretStoreError as exc:
                if exc.failure is StoreFailure.NOT_FOUND:
                    raise SecretStoreError(secret_id, "not found (check 'masterarn')", StoreFailure.NOT_FOUND) from None
                raise
            holder = secret.holder(CURRENT)
            return secret.versions[holder].value if holder else None

    def admin_tags(self, secret_id: str) -> dict[str, str]:
        with self.faults.call("SecretStore.admin_tags"):
            return dict(self._find(secret_id, "DescribeSecret").tags)

    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None:
        with self.faults.call("SecretStore.put_pending"):
            secret = self._find(secret_id, "PutSecretValue")
            version = secret.versions.get(token)
            if version is not None and version.value is not None:
                if version.value != secret_string:  # AWS refuses; moto would overwrite
                    raise _client_error(secret_id, "PutSecretValue", "ResourceExistsException")
                return
            if version is None:
                version = secret.versions[token] = _Version(None, [], self._tick())
            version.value = secret_string
            self._attach(secret, PENDING, token)

    def move_label(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        with self.faults.call("SecretStore.move_label"):
            secret = self._find(secret_id, "UpdateSecretVersionStage")
            remove_from = from_version if from_version and from_version != to_version else None
            holder = secret.holder(stage)
            if to_version not in secret.versions:
                raise _client_error(secret_id, "UpdateSecretVersionStage", "InvalidParameterException")
            if holder is not None and holder != to_version and holder != remove_from:
                # Secrets Manager wants the version that holds the label named.
                raise _client_error(secret_id, "UpdateSecretVersionStage", "InvalidParameterException")
            if remove_from is not None and holder != remove_from:
                raise _client_error(secret_id, "UpdateSecretVersionStage", "InvalidParameterException")
            if holder == to_version:
                return
            self._attach(secret, stage, to_version)

    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str:
        with self.faults.call("SecretStore.random_password"):
            self._check_denied(secret_id, "GetRandomPassword")
            alphabet = [c for c in string.ascii_letters + string.digits if c not in policy.exclude_characters]
            punctuation = [] if policy.exclude_punctuation else list(string.punctuation)
            punctuation = [c for c in punctuation if c not in policy.exclude_characters]
            chars = alphabet + punctuation
            password = "".join(secrets.choice(chars) for _ in range(policy.length))
            self.passwords_made.append(password)
            return password

    def labelled_versions(self, secret_id: str) -> list[VersionInfo]:
        with self.faults.call("SecretStore.labelled_versions"):
            secret = self._find(secret_id, "ListSecretVersionIds")
            return [VersionInfo(vid, tuple(v.stages), v.created) for vid, v in secret.versions.items() if v.stages]

    def unlabelled_versions(self, secret_id: str, limit: int) -> list[VersionInfo]:
        with self.faults.call("SecretStore.unlabelled_versions"):
            secret = self._find(secret_id, "ListSecretVersionIds")
            found = [VersionInfo(vid, (), v.created) for vid, v in secret.versions.items() if not v.stages]
            return sorted(found, key=lambda version: version.created or self._clock, reverse=True)[:limit]

    def secret_arns(self, function_arn: str | None = None) -> list[str]:
        with self.faults.call("SecretStore.secret_arns"):
            self._check_denied("<all secrets>", "ListSecrets")
            return [s.arn for s in self._secrets.values() if function_arn is None or s.function_arn == function_arn]

    # -- the OperatorStore port -----------------------------------------------------------------

    def remove_label(self, secret_id: str, stage: str, version_id: str) -> None:
        with self.faults.call("OperatorStore.remove_label"):
            secret = self._find(secret_id, "UpdateSecretVersionStage")
            if stage not in secret.versions.get(version_id, _Version(None, [], self._clock)).stages:
                raise _client_error(secret_id, "UpdateSecretVersionStage", "InvalidParameterException")
            secret.versions[version_id].stages.remove(stage)

    def configure_rotation(
        self, secret_id: str, function_arn: str, rules: dict[str, Any], *, rotate_now: bool
    ) -> str | None:
        """RotateSecret with a schedule: rotation on; with ``rotate_now``, a rotation staged
        (its token; the fake invokes no function: the test drives the steps)."""
        with self.faults.call("OperatorStore.configure_rotation"):
            secret = self._find(secret_id, "RotateSecret")
            secret.function_arn, secret.rotation_enabled, secret.rules = function_arn, True, dict(rules)
            return self.begin_rotation(secret.arn) if rotate_now else None

    def resource_policy(self, secret_id: str) -> tuple[str, str, str | None]:
        with self.faults.call("OperatorStore.resource_policy"):
            secret = self._find(secret_id, "GetResourcePolicy")
            return secret.arn, secret.name, secret.policy

    def put_resource_policy(self, secret_id: str, policy: str) -> None:
        """Replace the whole policy in one call. (AWS also refuses a policy that grants broad
        access, BlockPublicPolicy; neither moto nor the fake evaluates policies.)"""
        with self.faults.call("OperatorStore.put_resource_policy"):
            secret = self._find(secret_id, "PutResourcePolicy")
            try:
                json.loads(policy)
            except ValueError:
                raise _client_error(secret_id, "PutResourcePolicy", "MalformedPolicyDocumentException") from None
            secret.policy = policy

    def stage_rotation(self, secret_id: str, function_arn: str, *, enable: bool) -> str:
        with self.faults.call("OperatorStore.stage_rotation"):
            secret = self._find(secret_id, "RotateSecret")
            if enable:
                secret.function_arn, secret.rotation_enabled = function_arn, True
            return self.begin_rotation(secret.arn)

    # -- the service's rules ------------------------------------------------------------------

    def _attach(self, secret: _Secret, stage: str, version_id: str) -> None:
        holder = secret.holder(stage)
        if holder == version_id:
            return
        if holder is not None:
            secret.versions[holder].stages.remove(stage)
            if stage == CURRENT:
                # AWSPREVIOUS follows: Secrets Manager moves it to the version AWSCURRENT left.
                previous = secret.holder(PREVIOUS)
                if previous is not None:
                    secret.versions[previous].stages.remove(PREVIOUS)
                secret.versions[holder].stages.append(PREVIOUS)
        secret.versions[version_id].stages.append(stage)
        if stage == CURRENT:
            secret.last_rotated = self._tick()

    def _find(self, secret_id: str, operation: str) -> _Secret:
        self._check_denied(secret_id, operation)
        secret = self._secrets.get(secret_id) or next(
            (s for s in self._secrets.values() if secret_id in (s.name, s.arn.rsplit("-", 1)[0])), None
        )
        if secret is None:
            raise _client_error(secret_id, operation, "ResourceNotFoundException")
        self._check_denied(secret.arn, operation)
        return secret

    def _check_denied(self, secret_id: str, operation: str) -> None:
        if (secret_id, operation) in self._denied:
            raise _client_error(secret_id, operation, "AccessDeniedException")

    def _tick(self) -> datetime.datetime:
        self._clock += datetime.timedelta(seconds=1)
        return self._clock


_FAILURES = {
    "ResourceNotFoundException": StoreFailure.NOT_FOUND,
    "AccessDeniedException": StoreFailure.DENIED,
}


def _client_error(secret_id: str, operation: str, code: str) -> SecretStoreError:
    """What SecretsManagerApi.call makes of the service's error ``code``."""
    return SecretStoreError(secret_id, f"{operation} failed: {code}", _FAILURES.get(code, StoreFailure.OTHER), code)
