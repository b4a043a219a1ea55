"""What every command needs: options, the objects the composition root builds
(the same store and database adapters the function uses, plus the operator's
writes), and error classification.

Everything is built lazily, so ``rotator policy`` (which talks to nothing) and
``rotator --help`` need no credentials or region.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, NoRegionError, ProfileNotFound

from rotator import bootstrap
from rotator.cli.output import ExitCode, Output
from rotator.errors import RotatorError, SecretStoreError, StoreFailure
from rotator.ports import Database, OperatorStore, SecretStore
from rotator.rotation import Rotation
from rotator.settings import Settings, SettingsError


class UsageError(Exception):
    """Bad arguments or configuration: exit 2 with one line."""


class CredentialsError(Exception):
    """The AWS credentials could not be loaded (a broken profile or credential
    variable): exit 4, like missing credentials."""


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


# -- the context --------------------------------------------------------------


class Context:
    def __init__(self, options: Options, output: Output) -> None:
        self.options = options
        self.out = output

    @cached_property
    def settings(self) -> Settings:
        """The function's settings from the environment, with the command line's
        endpoint, region and CA bundle."""
        try:
            settings = Settings.from_env()
        except SettingsError as exc:
            raise UsageError(str(exc)) from None
        changes: dict[str, Any] = {
            "region": self.options.region,
            "secrets_manager_endpoint": self.options.endpoint_url,
        }
        if self.options.ca_bundle:
            if not self.options.ca_bundle.is_file():
                raise UsageError(f"--ca-bundle {self.options.ca_bundle}: no such file")
            changes["ca_bundle"] = self.options.ca_bundle
        return dataclasses.replace(settings, **changes)

    @cached_property
    def container(self) -> bootstrap.Container:
        try:
            session = make_session(self.options.profile, self.options.region)
        except ProfileNotFound:
            raise UsageError(f"AWS profile {self.options.profile!r} not found in the AWS config files") from None
        try:
            # Resolved here, apart from the client, so that a broken credential source
            # (an empty AWS_CONTAINER_CREDENTIALS_FULL_URI...) is not taken for a bad URL.
            session.get_credentials()
        except (ValueError, BotoCoreError) as exc:
            # botocore's messages name variables, files and hosts, never a key.
            raise CredentialsError(f"AWS credentials could not be loaded: {type(exc).__name__}: {exc}") from None
        try:
            # Every secret value read or written teaches the redactor a password.
            return bootstrap.build(self.settings, session=session, observe=self.out.redactor.add_secret_string)
        except NoRegionError:
            raise UsageError("no AWS region: pass --region or set AWS_REGION / a profile region") from None
        except ValueError as exc:  # botocore rejects a malformed endpoint URL with ValueError
            raise UsageError(f"invalid --endpoint-url: {exc}") from None

    @property
    def store(self) -> SecretStore:
        return self.container.store

    @property
    def operator(self) -> OperatorStore:
        return self.container.operator

    @property
    def database(self) -> Database:
        return self.container.database

    @property
    def rotation(self) -> Rotation:
        return self.container.rotation

    @property
    def endpoint_url(self) -> str:
        return str(self.container.api.client.meta.endpoint_url)

    @property
    def endpoint_is_local(self) -> bool:
        """Whether the Secrets Manager endpoint in use (--endpoint-url, or boto3's
        AWS_ENDPOINT_URL_SECRETS_MANAGER / AWS_ENDPOINT_URL) is on this machine: an emulator."""
        host = urlsplit(self.endpoint_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


# -- errors -------------------------------------------------------------------

_EXIT_CODES = {
    StoreFailure.NOT_FOUND: ExitCode.NOT_FOUND,
    StoreFailure.DENIED: ExitCode.DENIED,
    StoreFailure.CREDENTIALS: ExitCode.DENIED,
    StoreFailure.RETRY: ExitCode.RETRY,
    StoreFailure.UNREACHABLE: ExitCode.RETRY,
    StoreFailure.OTHER: ExitCode.PROBLEMS,
}

_HINTS = {
    ExitCode.NOT_FOUND: "check the name or ARN, the region (--region) and the account (--profile)",
    ExitCode.DENIED: "check the caller's credentials and IAM permissions, and any resource or endpoint policy",
    ExitCode.RETRY: "the service is throttling or unreachable after retries; try again later",
}


def hint(exc: BaseException) -> str:
    """What the operator can do about an error, if the error's kind says."""
    return _HINTS.get(classify(exc), "")


def classify(exc: BaseException) -> ExitCode:
    """The exit code an error means (see :class:`ExitCode`)."""
    if isinstance(exc, SecretStoreError):
        return _EXIT_CODES[exc.failure]
    if isinstance(exc, UsageError | SettingsError):
        return ExitCode.USAGE
    if isinstance(exc, CredentialsError):
        return ExitCode.DENIED
    if isinstance(exc, RotatorError):
        return ExitCode.PROBLEMS
    return ExitCode.INTERNAL


def problem_code(exc: BaseException) -> ExitCode:
    """The exit code of an error about one secret among many: never INTERNAL."""
    code = classify(exc)
    return code if code is not ExitCode.INTERNAL else ExitCode.PROBLEMS


def is_fatal(exc: BaseException) -> bool:
    """Whether an error concerns the caller or the endpoint rather than one secret
    (no or bad credentials, endpoint unreachable): then every other secret would
    fail the same way, so the run stops with one line instead of repeating it."""
    return isinstance(exc, SecretStoreError) and exc.failure in (StoreFailure.CREDENTIALS, StoreFailure.UNREACHABLE)


def describe_error(exc: BaseException) -> str:
    """One line, safe to print: rotator's own messages, or the class of anything else."""
    if isinstance(exc, RotatorError | UsageError | SettingsError | CredentialsError):
        return str(exc)
    return f"unexpected {type(exc).__name__} (rerun with --debug for the traceback)"
