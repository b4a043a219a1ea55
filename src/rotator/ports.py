"""The two ports the rotation steps talk to: the secret store and the database.

:mod:`rotator.rotation` depends on these protocols only; the adapters
(:mod:`rotator.secret_store`, :mod:`rotator.mysql`) are wired in by the handler.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from rotator.secret import DatabaseSecret
from rotator.settings import PasswordPolicy

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


@dataclass(frozen=True)
class SecretDescription:
    arn: str
    name: str
    rotation_enabled: bool
    versions: dict[str, list[str]] = field(default_factory=dict)

    def version_with(self, stage: str) -> str | None:
        return next((version for version, stages in self.versions.items() if stage in stages), None)


@dataclass(frozen=True)
class ServerInfo:
    flavor: str  # "mariadb" or "mysql" (Aurora MySQL reports as mysql)
    version: tuple[int, int, int]
    version_string: str
    read_only: bool
    identity: tuple[str, int, int]  # @@hostname, @@port, @@server_id

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "mariadb"


@dataclass(frozen=True)
class SyncReport:
    hosts: tuple[str, ...]
    created: int
    dropped: int
    statements: int


class SecretStore(Protocol):
    def describe(self, secret_id: str) -> SecretDescription: ...

    def get_version(self, secret_id: str, version_id: str, stage: str) -> str | None:
        """The SecretString of one version, or None when that version has no value yet."""
        ...

    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        """The AWSCURRENT SecretString of an admin secret (may be cached)."""
        ...

    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None: ...

    def promote(self, secret_id: str, token: str, current_version: str | None) -> None: ...

    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str: ...


class AdminSession(Protocol):
    server: ServerInfo

    def sync_twin(self, source_user: str, twin_user: str, password: str) -> SyncReport: ...

    def verify_twin(self, source_user: str, twin_user: str) -> None: ...


class Database(Protocol):
    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo: ...

    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> AbstractContextManager[AdminSession]: ...

    def change_own_password(self, login: DatabaseSecret, new_password: str) -> None: ...
