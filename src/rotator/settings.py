"""Configuration, read from the environment in this one place."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from rotator.arns import FunctionArnError, rotation_function_arn

BUNDLED_CA = Path(__file__).with_name("certs") / "rds-ca-bundle.pem"

# Characters that break connection strings, shell snippets or JSON embedded in
# config files. AWS's own rotation templates exclude the same set.
DEFAULT_EXCLUDE_CHARACTERS = "/@\"'\\:;`%"


class SettingsError(ValueError):
    """An environment variable holds a value rotator cannot use."""


class ConfiguredHost(NamedTuple):
    """An ``ADMIN_SECRET_HOSTS`` entry: the host an operator confirmed for one admin secret."""

    host: str
    port: int | None

    def __str__(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class PasswordPolicy:
    length: int = 32
    exclude_characters: str = DEFAULT_EXCLUDE_CHARACTERS
    exclude_punctuation: bool = False
    require_each_included_type: bool = True


@dataclass(frozen=True)
class ReadinessSettings:
    """What the scheduled readiness check (``rotator.canary``) looks at; the rotation
    function does not read these."""

    secret_ids: tuple[str, ...] = ()
    rotation_function_arn: str | None = None  # this stack's rotation function
    include_rotated_by_function: bool = False  # also every secret it rotates (ListSecrets)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadinessSettings:
        function_arn = env.get("ROTATION_FUNCTION_ARN") or None
        if function_arn:
            try:
                function_arn = rotation_function_arn(function_arn)
            except FunctionArnError as exc:
                raise SettingsError(f"ROTATION_FUNCTION_ARN: {exc}") from None
        # By default every secret the function rotates: secrets attached outside the
        # template (rotator attach) are checked without another list to keep up to date.
        include = _bool(env, "CANARY_CHECK_ALL_ROTATED", function_arn is not None)
        if include and not function_arn:
            raise SettingsError(
                "CANARY_CHECK_ALL_ROTATED needs ROTATION_FUNCTION_ARN: the function whose secrets to list"
            )
        listed = (item.strip() for item in env.get("CANARY_SECRET_ARNS", "").split(","))
        return cls(tuple(dict.fromkeys(item for item in listed if item)), function_arn, include)


@dataclass(frozen=True)
class Settings:
    password: PasswordPolicy
    ca_bundle: Path
    connect_timeout: int
    read_timeout: int
    secrets_manager_endpoint: str | None
    region: str | None
    idempotency_table: str | None
    idempotency_disabled: bool
    idempotency_expiry_seconds: int
    admin_cache_seconds: int
    readiness: ReadinessSettings = field(default_factory=ReadinessSettings)
    # Hosts operators confirmed for admin secrets that have none (rotator.admin_host).
    admin_hosts: Mapping[str, ConfiguredHost] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            password=PasswordPolicy(
                length=_int(env, "PASSWORD_LENGTH", 32, low=16, high=4096),
                exclude_characters=env.get("EXCLUDE_CHARACTERS", DEFAULT_EXCLUDE_CHARACTERS),
                exclude_punctuation=_bool(env, "EXCLUDE_PUNCTUATION", False),
                require_each_included_type=_bool(env, "REQUIRE_EACH_INCLUDED_TYPE", True),
            ),
            ca_bundle=Path(env.get("ROTATOR_CA_BUNDLE") or BUNDLED_CA),
            connect_timeout=_int(env, "DB_CONNECT_TIMEOUT", 5, low=1, high=60),
            read_timeout=_int(env, "DB_READ_TIMEOUT", 20, low=1, high=600),
            secrets_manager_endpoint=env.get("SECRETS_MANAGER_ENDPOINT") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            idempotency_disabled=_bool(env, "POWERTOOLS_IDEMPOTENCY_DISABLED", False),
            idempotency_expiry_seconds=_int(env, "IDEMPOTENCY_EXPIRY_SECONDS", 300, low=60, high=3600),
            admin_cache_seconds=_int(env, "ADMIN_SECRET_CACHE_SECONDS", 300, low=0, high=3600),
            readiness=ReadinessSettings.from_env(env),
            admin_hosts=_admin_hosts(env.get("ADMIN_SECRET_HOSTS", "")),
        )


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


# A DNS name or an IPv4 address (what an RDS endpoint or a test server is).
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _admin_hosts(raw: str) -> dict[str, ConfiguredHost]:
    """ADMIN_SECRET_HOSTS: ``ARN=host[:port],…`` (rotator.admin_host says what it confirms).
    A secret name may hold ``=`` (a host never does), so each entry is split at its last ``=``."""
    found: dict[str, ConfiguredHost] = {}
    for entry in (item.strip() for item in raw.split(",")):
        if not entry:
            continue
        key, equals, target = (part.strip() for part in entry.rpartition("="))
        if not equals or not key or not target:
            raise SettingsError(f"ADMIN_SECRET_HOSTS: entry {entry!r} is not <admin secret ARN>=<host>[:<port>]")
        host, port = _host_and_port(target)
        if not _HOST.match(host):
            raise SettingsError(f"ADMIN_SECRET_HOSTS: entry for {key}: {host!r} is not a host name")
        configured = ConfiguredHost(host, port)
        if found.get(key, configured) != configured:
            raise SettingsError(f"ADMIN_SECRET_HOSTS: two different hosts for {key}")
        found[key] = configured
    return found


def _host_and_port(target: str) -> tuple[str, int | None]:
    host, colon, port = target.rpartition(":")
    if not colon:
        return target, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SettingsError(f"ADMIN_SECRET_HOSTS: {target!r}: the port must be a number from 1 to 65535")
    return host, int(port)
