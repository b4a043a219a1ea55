"""The secret store ports' adapters for AWS Secrets Manager (boto3).

:class:`SecretsManagerApi` makes every call and turns every failure into a
:class:`~rotator.errors.SecretStoreError` with a :class:`~rotator.errors.StoreFailure`;
:class:`SecretsManagerStore` (the function's port, and the read-only listings of
the readiness check) and :class:`SecretsManagerOperator` (writes only an operator
makes) both call through it.

A secret *version* never changes value once written, so values read by version id
are cached for the life of the container: the four steps of one rotation then read
each version once. The admin secret is read by label (it rotates on its own
schedule), so it is cached for a short time only, and the rotation re-reads it
when the cached credentials are refused.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Tracer
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from rotator.errors import SecretStoreError, StoreFailure
from rotator.ports import CURRENT, PENDING, SecretDescription, VersionInfo
from rotator.settings import PasswordPolicy

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

_CACHE_SIZE = 512

# Each port method is a subsegment. Responses are never captured (they hold secret
# values); errors are recorded by the X-Ray SDK from their (credential-free) message.
# The handler decides what the X-Ray SDK patches.
tracer = Tracer(auto_patch=False)

_NOT_FOUND = frozenset({"ResourceNotFoundException"})
_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "KMSAccessDeniedException"})
_RETRY = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServiceError",
        "InternalFailure",
    }
)

# Called with every secret value read or written (the CLI's redactor learns from it
# the passwords it must never print).
ValueObserver = Callable[[str | None], None]


class SecretsManagerApi:
    def __init__(self, client: SecretsManagerClient) -> None:
        self.client = client

    def call(self, operation: str, secret_id: str, **kwargs: Any) -> Any:
        """``client.<operation>(**kwargs)``; every failure a SecretStoreError about ``secret_id``."""
        method = getattr(self.client, _snake(operation))
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            # Service messages name the secret, never its value: safe to chain.
            raise SecretStoreError(secret_id, f"{operation} failed: {code}", _failure(code), code) from exc
        except BotoCoreError as exc:
            # Client-side errors (parameter validation) can quote a parameter's value:
            # keep the class name only, and do not chain.
            name = type(exc).__name__
            if isinstance(exc, NoCredentialsError | PartialCredentialsError):
                problem, failure = f"{operation} failed: no AWS credentials found ({name})", StoreFailure.CREDENTIALS
            elif isinstance(exc, BotoConnectionError):
                # The message names the endpoint URL only.
                problem = f"{operation} failed: cannot reach the Secrets Manager endpoint: {exc}"
                failure = StoreFailure.UNREACHABLE
            else:
                problem, failure = f"{operation} failed: {name}", StoreFailure.OTHER
            raise SecretStoreError(secret_id, problem, failure, name) from None


class SecretsManagerStore:
    def __init__(
        self, api: SecretsManagerApi, *, admin_cache_seconds: int = 300, observe: ValueObserver | None = None
    ) -> None:
        self.api = api
        self._admin_cache_seconds = admin_cache_seconds
        self._observe = observe or _ignore
        self._versions: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._admins: dict[str, tuple[float, str | None]] = {}
        self._admin_tags: dict[str, dict[str, str]] = {}

    @tracer.capture_method(capture_response=False, capture_error=False)
    def describe(self, secret_id: str) -> SecretDescription:
        response = self.api.call("DescribeSecret", secret_id, SecretId=secret_id)
        return SecretDescription(
            arn=response["ARN"],
            name=response["Name"],
            rotation_enabled=bool(response.get("RotationEnabled")),
            versions={version: list(stages) for version, stages in response.get("VersionIdsToStages", {}).items()},
            function_arn=response.get("RotationLambdaARN") or None,
            rules=dict(response.get("RotationRules") or {}),
            last_rotated=_date(response.get("LastRotatedDate")),
            next_rotation=_date(response.get("NextRotationDate")),
        )

    @tracer.capture_method(capture_response=False, capture_error=False)
    def get_version(self, secret_id: str, version_id: str, stage: str | None) -> str | None:
        key = (secret_id, version_id)
        if key in self._versions:
            self._versions.move_to_end(key)
            return self._versions[key]
        # The stage, when known, is asked too: a version that lost it meanwhile is not read.
        labels = {"VersionStage": stage} if stage else {}
        response = self._get_value(secret_id, VersionId=version_id, **labels)
        if response is None:
            return None
        value: str | None = response.get("SecretString")
        self._observe(value)
        if value is not None:
            self._remember(key, value)
        return value

    @tracer.capture_method(capture_response=False, capture_error=False)
    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        cached = self._admins.get(secret_id)
        if cached and not refresh and time.monotonic() - cached[0] < self._admin_cache_seconds:
            return cached[1]
        response = self._get_value(secret_id, VersionStage=CURRENT)
        if response is None:
            raise SecretStoreError(secret_id, "not found (check 'masterarn')", StoreFailure.NOT_FOUND)
        value: str | None = response.get("SecretString")
        self._observe(value)
        self._admins[secret_id] = (time.monotonic(), value)
        return value

    @tracer.capture_method(capture_response=False, capture_error=False)
    def admin_tags(self, secret_id: str) -> dict[str, str]:
        # Read only for an admin secret without a host (rotator.admin_host). Kept for the
        # container's life: the tags that matter there are RDS's own aws:rds:* tags, which
        # nobody else can set or change, and the secret stays bound to its cluster.
        cached = self._admin_tags.get(secret_id)
        if cached is None:
            response = self.api.call("DescribeSecret", secret_id, SecretId=secret_id)
            cached = {str(tag["Key"]): str(tag.get("Value", "")) for tag in response.get("Tags") or ()}
            self._admin_tags[secret_id] = cached
        return cached

    @tracer.capture_method(capture_response=False, capture_error=False)
    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None:
        self._observe(secret_string)
        kwargs: dict[str, Any] = {
            "SecretId": secret_id,
            "ClientRequestToken": token,
            "SecretString": secret_string,
            "VersionStages": [PENDING],
        }
        if rotation_token:
            kwargs["RotationToken"] = rotation_token
        self.api.call("PutSecretValue", secret_id, **kwargs)
        self._remember((secret_id, token), secret_string)

    @tracer.capture_method(capture_response=False, capture_error=False)
    def move_label(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        kwargs: dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage, "MoveToVersionId": to_version}
        if from_version and from_version != to_version:
            kwargs["RemoveFromVersionId"] = from_version
        self.api.call("UpdateSecretVersionStage", secret_id, **kwargs)

    @tracer.capture_method(capture_response=False, capture_error=False)
    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str:
        response = self.api.call(
            "GetRandomPassword",
            secret_id,
            PasswordLength=policy.length,
            ExcludeCharacters=policy.exclude_characters,
            ExcludePunctuation=policy.exclude_punctuation,
            RequireEachIncludedType=policy.require_each_included_type,
        )
        password = str(response["RandomPassword"])
        self._observe(password)
        return password

    def labelled_versions(self, secret_id: str) -> list[VersionInfo]:
        found: list[VersionInfo] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "MaxResults": 100}
        while True:
            response = self.api.call("ListSecretVersionIds", secret_id, **kwargs)
            for version in response.get("Versions", []):
                found.append(
                    VersionInfo(
                        version["VersionId"], tuple(version.get("VersionStages", [])), _date(version.get("CreatedDate"))
                    )
                )
            if not response.get("NextToken"):
                return found
            kwargs["NextToken"] = response["NextToken"]

    def unlabelled_versions(self, secret_id: str, limit: int) -> list[VersionInfo]:
        found: list[VersionInfo] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "MaxResults": 100, "IncludeDeprecated": True}
        while True:
            response = self.api.call("ListSecretVersionIds", secret_id, **kwargs)
            for version in response.get("Versions", []):
                if not version.get("VersionStages"):
                    found.append(VersionInfo(version["VersionId"], (), _date(version.get("CreatedDate"))))
            if not response.get("NextToken"):
                break
            kwargs["NextToken"] = response["NextToken"]
        oldest = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        return sorted(found, key=lambda version: version.created or oldest, reverse=True)[:limit]

    def secret_arns(self, function_arn: str | None = None) -> list[str]:
        """Every secret in the account and region (optionally: rotated by one function)."""
        found: list[str] = []
        kwargs: dict[str, Any] = {"MaxResults": 100}
        while True:
            response = self.api.call("ListSecrets", "<all secrets>", **kwargs)
            for secret in response.get("SecretList", []):
                if function_arn is None or secret.get("RotationLambdaARN") == function_arn:
                    found.append(str(secret["ARN"]))
            if not response.get("NextToken"):
                return found
            kwargs["NextToken"] = response["NextToken"]

    def _get_value(self, secret_id: str, **kwargs: Any) -> dict[str, Any] | None:
        """GetSecretValue; None when the secret or version does not exist (yet)."""
        try:
            response: dict[str, Any] = self.api.call("GetSecretValue", secret_id, SecretId=secret_id, **kwargs)
        except SecretStoreError as exc:
            if exc.failure is StoreFailure.NOT_FOUND:
                return None
            raise
        return response

    def _remember(self, key: tuple[str, str], value: str) -> None:
        self._versions[key] = value
        self._versions.move_to_end(key)
        while len(self._versions) > _CACHE_SIZE:
            self._versions.popitem(last=False)


class SecretsManagerOperator:
    """What an operator changes: never called by the function."""

    def __init__(self, api: SecretsManagerApi) -> None:
        self.api = api

    def configure_rotation(
        self, secret_id: str, function_arn: str, rules: dict[str, Any], *, rotate_now: bool
    ) -> str | None:
        response = self.api.call(
            "RotateSecret",
            secret_id,
            SecretId=secret_id,
            RotationLambdaARN=function_arn,
            RotationRules=rules,
            RotateImmediately=rotate_now,
        )
        version = response.get("VersionId")
        return str(version) if version else None

    def remove_label(self, secret_id: str, stage: str, version_id: str) -> None:
        self.api.call(
            "UpdateSecretVersionStage",
            secret_id,
            SecretId=secret_id,
            VersionStage=stage,
            RemoveFromVersionId=version_id,
        )

    def resource_policy(self, secret_id: str) -> tuple[str, str, str | None]:
        """The secret's ARN, name and resource policy (JSON text; None when it has none)."""
        response = self.api.call("GetResourcePolicy", secret_id, SecretId=secret_id)
        policy = response.get("ResourcePolicy")
        return str(response["ARN"]), str(response["Name"]), str(policy) if policy else None

    def put_resource_policy(self, secret_id: str, policy: str) -> None:
        """Replace the secret's whole resource policy in one call (there is never a moment
        without one); Secrets Manager refuses a policy that grants broad access."""
        self.api.call("PutResourcePolicy", secret_id, SecretId=secret_id, ResourcePolicy=policy, BlockPublicPolicy=True)

    def stage_rotation(self, secret_id: str, function_arn: str, *, enable: bool) -> str:
        """On an emulator: RotateSecret with a new token, which stages an empty AWSPENDING
        version under it. moto stages the version, then fails to find (or run) the
        function, which is expected here; any other failure is not."""
        token = str(uuid.uuid4())
        kwargs: dict[str, Any] = {"SecretId": secret_id, "ClientRequestToken": token, "RotationLambdaARN": function_arn}
        if enable:
            # moto turns rotation on only for a rule in days; the steps refuse a
            # secret whose rotation is off, as they would on AWS.
            kwargs["RotationRules"] = {"AutomaticallyAfterDays": 30}
        try:
            self.api.call("RotateSecret", secret_id, **kwargs)
        except SecretStoreError as exc:
            if exc.failure is not StoreFailure.NOT_FOUND:
                raise
        return token


def _failure(code: str) -> StoreFailure:
    if code in _NOT_FOUND:
        return StoreFailure.NOT_FOUND
    if code in _CREDENTIALS:
        return StoreFailure.CREDENTIALS
    if code in _DENIED:
        return StoreFailure.DENIED
    if code in _RETRY:
        return StoreFailure.RETRY
    return StoreFailure.OTHER


def _date(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    return None


def _ignore(_value: str | None) -> None:
    return None


def _snake(operation: str) -> str:
    return "".join(f"_{ch.lower()}" if ch.isupper() else ch for ch in operation).lstrip("_")
