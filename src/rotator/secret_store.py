"""The secret store port's adapter for AWS Secrets Manager (boto3).

A secret *version* never changes value once written, so values read by version id
are cached for the life of the container: the four steps of one rotation then read
each version once. The admin secret is read by label (it rotates on its own
schedule), so it is cached for a short time only, and the rotation re-reads it
when the cached credentials are refused.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Tracer
from botocore.exceptions import BotoCoreError, ClientError

from rotator.errors import SecretStoreError
from rotator.ports import CURRENT, PENDING, SecretDescription
from rotator.settings import PasswordPolicy

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_CACHE_SIZE = 512

# Each port method is a subsegment. Responses are never captured (they hold secret
# values); errors are recorded by the X-Ray SDK from their (credential-free) message.
# The handler decides what the X-Ray SDK patches.
tracer = Tracer(auto_patch=False)


class SecretsManagerStore:
    def __init__(self, client: SecretsManagerClient, *, admin_cache_seconds: int = 300) -> None:
        self.client = client
        self._admin_cache_seconds = admin_cache_seconds
        self._versions: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._admins: dict[str, tuple[float, str | None]] = {}

    @tracer.capture_method(capture_response=False, capture_error=False)
    def describe(self, secret_id: str) -> SecretDescription:
        response = self._call("DescribeSecret", secret_id, SecretId=secret_id)
        return SecretDescription(
            arn=response["ARN"],
            name=response["Name"],
            rotation_enabled=bool(response.get("RotationEnabled")),
            versions={version: list(stages) for version, stages in response.get("VersionIdsToStages", {}).items()},
        )

    @tracer.capture_method(capture_response=False, capture_error=False)
    def get_version(self, secret_id: str, version_id: str, stage: str) -> str | None:
        key = (secret_id, version_id)
        if key in self._versions:
            self._versions.move_to_end(key)
            return self._versions[key]
        try:
            response = self._call(
                "GetSecretValue",
                secret_id,
                not_found_ok=True,
                SecretId=secret_id,
                VersionId=version_id,
                VersionStage=stage,
            )
        except _NotFound:
            return None
        value: str | None = response.get("SecretString")
        if value is not None:
            self._remember(key, value)
        return value

    @tracer.capture_method(capture_response=False, capture_error=False)
    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        cached = self._admins.get(secret_id)
        if cached and not refresh and time.monotonic() - cached[0] < self._admin_cache_seconds:
            return cached[1]
        try:
            response = self._call(
                "GetSecretValue", secret_id, not_found_ok=True, SecretId=secret_id, VersionStage=CURRENT
            )
        except _NotFound:
            raise SecretStoreError(secret_id, "not found (check 'masterarn')") from None
        value: str | None = response.get("SecretString")
        self._admins[secret_id] = (time.monotonic(), value)
        return value

    @tracer.capture_method(capture_response=False, capture_error=False)
    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None:
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "ClientRequestToken": token,
            "SecretString": secret_string,
            "VersionStages": [PENDING],
        }
        if rotation_token:
            kwargs["RotationToken"] = rotation_token
        self._call("PutSecretValue", secret_id, **kwargs)
        self._remember((secret_id, token), secret_string)

    @tracer.capture_method(capture_response=False, capture_error=False)
    def promote(self, secret_id: str, token: str, current_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": CURRENT, "MoveToVersionId": token}
        if current_version:
            kwargs["RemoveFromVersionId"] = current_version
        self._call("UpdateSecretVersionStage", secret_id, **kwargs)

    @tracer.capture_method(capture_response=False, capture_error=False)
    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str:
        response = self._call(
            "GetRandomPassword",
            secret_id,
            PasswordLength=policy.length,
            ExcludeCharacters=policy.exclude_characters,
            ExcludePunctuation=policy.exclude_punctuation,
            RequireEachIncludedType=policy.require_each_included_type,
        )
        return str(response["RandomPassword"])

    def _remember(self, key: tuple[str, str], value: str) -> None:
        self._versions[key] = value
        self._versions.move_to_end(key)
        while len(self._versions) > _CACHE_SIZE:
            self._versions.popitem(last=False)

    def _call(self, operation: str, secret_id: str, *, not_found_ok: bool = False, **kwargs: Any) -> Any:
        method = getattr(self.client, _snake(operation))
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "Unknown")
            if code == "ResourceNotFoundException" and not_found_ok:
                raise _NotFound from None
            # Service messages name the secret, never its value: safe to chain.
            raise SecretStoreError(secret_id, f"{operation} failed: {code}") from exc
        except BotoCoreError as exc:
            # Client-side errors (parameter validation) can quote a parameter's value.
            raise SecretStoreError(secret_id, f"{operation} failed: {exc.__class__.__name__}") from None


class _NotFound(Exception):
    pass


def _snake(operation: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in operation).lstrip("_")
