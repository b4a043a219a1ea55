"""What every command needs: options, the AWS session and client, the secret
store and database adapters the function itself uses, and error classification.

Clients are built lazily, so ``rotator policy`` (which talks to nothing) and
``rotator --help`` need no credentials or region.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from rotator.bootstrap import BOTO_CONFIG
from rotator.cli.output import ExitCode, Output
from rotator.errors import RotatorError
from rotator.mysql import MySQLDatabase
from rotator.ports import PENDING, SecretDescription
from rotator.secret_store import SecretsManagerStore
from rotator.settings import PasswordPolicy, Settings, SettingsError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with one line."""


@dataclass(frozen=True)
class Options:
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    ca_bundle: Path | None = None
    debug: bool = False


def make_session(profile: str | None, region: str | None) -> boto3.session.Session:
    """The boto3 session for the --profile/--region options (a seam for tests)."""
    return boto3.session.Session(profile_name=profile, region_name=region)


# -- the secret store, with the calls only an operator makes ------------------


@dataclass(frozen=True)
class VersionInfo:
    version_id: str
    stages: tuple[str, ...]
    created: datetime.datetime | None


@dataclass(frozen=True)
class SecretDetails(SecretDescription):
    """DescribeSecret as the operator commands read it: what the rotation reads, and the schedule."""

    function_arn: str | None = None
    rules: dict[str, Any] = dataclasses.field(default_factory=dict)
    last_rotated: datetime.datetime | None = None
    next_rotation: datetime.datetime | None = None


class OperatorStore(SecretsManagerStore):
    """The function's own store adapter (same error mapping, same caches) plus the
    calls an operator needs. Every secret value read or written passes its
    password to the output's redactor."""

    def __init__(self, client: SecretsManagerClient, output: Output) -> None:
        super().__init__(client, admin_cache_seconds=300)
        self._redactor = output.redactor

    # Values: remember passwords so that no output line can carry one.

    def get_version(self, secret_id: str, version_id: str, stage: str) -> str | None:
        value = super().get_version(secret_id, version_id, stage)
        self._redactor.add_secret_string(value)
        return value

    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        value = super().get_admin(secret_id, refresh=refresh)
        self._redactor.add_secret_string(value)
        return value

    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None:
        self._redactor.add_secret_string(secret_string)
        super().put_pending(secret_id, token, secret_string, rotation_token)

    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str:
        password = super().random_password(secret_id, policy)
        self._redactor.add(password)
        return password

    # Operator calls.

    def details(self, secret_id: str) -> SecretDetails:
        response = self._call("DescribeSecret", secret_id, SecretId=secret_id)
        return SecretDetails(
            arn=response["ARN"],
            name=response["Name"],
            rotation_enabled=bool(response.get("RotationEnabled")),
            function_arn=response.get("RotationLambdaARN") or None,
            rules=dict(response.get("RotationRules") or {}),
            last_rotated=_date(response.get("LastRotatedDate")),
            next_rotation=_date(response.get("NextRotationDate")),
            versions={version: list(stages) for version, stages in response.get("VersionIdsToStages", {}).items()},
        )

    def labelled_versions(self, secret_id: str) -> list[VersionInfo]:
        """Versions that hold a staging label, with their creation dates."""
        found: list[VersionInfo] = []
        kwargs: dict[str, Any] = {"SecretId": secret_id, "MaxResults": 100}
        while True:
            response = self._call("ListSecretVersionIds", secret_id, **kwargs)
            for version in response.get("Versions", []):
                found.append(
                    VersionInfo(
                        version["VersionId"], tuple(version.get("VersionStages", [])), _date(version.get("CreatedDate"))
                    )
                )
            if not response.get("NextToken"):
                return found
            kwargs["NextToken"] = response["NextToken"]

    def secret_arns(self, function_arn: str | None = None) -> Iterator[str]:
        """Every secret in the account and region (optionally: rotated by one function)."""
        kwargs: dict[str, Any] = {"MaxResults": 100}
        while True:
            response = self._call("ListSecrets", "<all secrets>", **kwargs)
            for secret in response.get("SecretList", []):
                if function_arn is None or secret.get("RotationLambdaARN") == function_arn:
                    yield str(secret["ARN"])
            if not response.get("NextToken"):
                return
            kwargs["NextToken"] = response["NextToken"]

    def configure_rotation(
        self, secret_id: str, function_arn: str, rules: dict[str, Any], *, rotate_now: bool
    ) -> str | None:
        response = self._call(
            "RotateSecret",
            secret_id,
            SecretId=secret_id,
            RotationLambdaARN=function_arn,
            RotationRules=rules,
            RotateImmediately=rotate_now,
        )
        version = response.get("VersionId")
        return str(version) if version else None

    def remove_pending(self, secret_id: str, version_id: str) -> None:
        self._call(
            "UpdateSecretVersionStage",
            secret_id,
            SecretId=secret_id,
            VersionStage=PENDING,
            RemoveFromVersionId=version_id,
        )

    def call(self, operation: str, secret_id: str, **kwargs: Any) -> Any:
        """Any other Secrets Manager call, with the same error mapping."""
        return self._call(operation, secret_id, **kwargs)


def _date(value: Any) -> datetime.datetime | None:
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    return None


# -- the context --------------------------------------------------------------


class Context:
    def __init__(self, options: Options, output: Output) -> None:
        self.options = options
        self.out = output

    @cached_property
    def session(self) -> boto3.session.Session:
        try:
            return make_session(self.options.profile, self.options.region)
        except ProfileNotFound:
            raise UsageError(f"AWS profile {self.options.profile!r} not found in the AWS config files") from None

    @cached_property
    def client(self) -> SecretsManagerClient:
        kwargs: dict[str, Any] = {"config": BOTO_CONFIG}
        if self.options.endpoint_url:
            kwargs["endpoint_url"] = self.options.endpoint_url
        try:
            return self.session.client("secretsmanager", **kwargs)
        except NoRegionError:
            raise UsageError("no AWS region: pass --region or set AWS_REGION / a profile region") from None
        except ValueError as exc:  # botocore rejects a malformed endpoint URL with ValueError
            raise UsageError(f"invalid --endpoint-url: {exc}") from None

    @cached_property
    def store(self) -> OperatorStore:
        return OperatorStore(self.client, self.out)

    @cached_property
    def settings(self) -> Settings:
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
        changes: dict[str, Any] = {
            "region": self.client.meta.region_name,
            "secrets_manager_endpoint": self.options.endpoint_url,
        }
        if self.options.ca_bundle:
            if not self.options.ca_bundle.is_file():
                raise UsageError(f"--ca-bundle {self.options.ca_bundle}: no such file")
            changes["ca_bundle"] = self.options.ca_bundle
        return dataclasses.replace(settings, **changes)

    @cached_property
    def database(self) -> MySQLDatabase:
        return MySQLDatabase(self.settings)

    @property
    def endpoint_is_local(self) -> bool:
        """Whether the Secrets Manager endpoint in use (--endpoint-url, or boto3's
        AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL) is on this machine: an emulator."""
        host = urlsplit(self.client.meta.endpoint_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


# -- errors -------------------------------------------------------------------

_NOT_FOUND = frozenset({"ResourceNotFoundException"})
# The caller's credentials are bad: every secret would fail alike (see is_fatal).
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
_DENIED = _CREDENTIALS | {"AccessDeniedException", "AccessDenied", "KMSAccessDeniedException"}
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

HINTS = {
    ExitCode.NOT_FOUND: "check the name or ARN, the region (--region) and the account (--profile)",
    ExitCode.DENIED: "check the caller's credentials and IAM permissions, and any resource or endpoint policy",
    ExitCode.RETRY: "the service is throttling or unreachable after retries; try again later",
}


E = TypeVar("E", bound=BaseException)


def _in_chain(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of ``kind`` in ``exc``'s chain of causes (ours wrap the SDK's)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        current = current.__cause__ or current.__context__
    return None


def aws_error_code(exc: BaseException) -> str | None:
    """The AWS error code behind a (possibly wrapped) exception."""
    error = _in_chain(exc, ClientError)
    return None if error is None else str(error.response.get("Error", {}).get("Code", "Unknown"))


def classify(exc: BaseException) -> ExitCode:
    """The exit code an error means (see :class:`ExitCode`)."""
    code = aws_error_code(exc)
    cause = _botocore_cause(exc)
    if code in _NOT_FOUND:
        found = ExitCode.NOT_FOUND
    elif code in _DENIED or isinstance(cause, NoCredentialsError | PartialCredentialsError):
        found = ExitCode.DENIED
    elif code in _RETRY or isinstance(cause, BotoConnectionError):
        found = ExitCode.RETRY
    elif isinstance(exc, UsageError | SettingsError):
        found = ExitCode.USAGE
    elif isinstance(exc, RotatorError | BotoCoreError) or code is not None:
        found = ExitCode.PROBLEMS
    else:
        found = ExitCode.INTERNAL
    return found


def is_fatal(exc: BaseException) -> bool:
    """Whether an error concerns the caller or the endpoint rather than one secret
    (no or bad credentials, endpoint unreachable): then every other secret would
    fail the same way, so the run stops with one line instead of repeating it."""
    cause = _botocore_cause(exc)
    if isinstance(cause, NoCredentialsError | PartialCredentialsError | BotoConnectionError):
        return True
    return aws_error_code(exc) in _CREDENTIALS


def describe_error(exc: BaseException) -> str:
    """One line, safe to print: rotator's own messages, or the class of anything else."""
    cause = _botocore_cause(exc)
    if isinstance(cause, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found (set a profile with --profile, or the AWS_* variables)"
    if isinstance(cause, BotoConnectionError):
        # The message names the endpoint URL only.
        return f"cannot reach the Secrets Manager endpoint: {cause}"
    if isinstance(exc, RotatorError | UsageError | SettingsError):
        return str(exc)
    if isinstance(exc, ClientError):
        return f"{exc.operation_name} failed: {aws_error_code(exc)}"
    return f"unexpected {type(exc).__name__} (rerun with --debug for the traceback)"


def _botocore_cause(exc: BaseException) -> BaseException | None:
    return _in_chain(exc, BotoCoreError)
