"""Wiring: the one place where adapters are built and joined to the rotation.

Built lazily on the first invocation and kept for the life of the container, so
importing the handler stays cheap and one boto3 client, one TLS context per CA
file and the secret-version cache are reused by every warm invocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from rotator.mysql import MySQLDatabase
from rotator.rotation import Rotation
from rotator.secret_store import SecretsManagerStore
from rotator.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

# Throttling and 5xx answers are retried by botocore (standard mode: exponential
# backoff with jitter), not by a loop of ours.
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=15)


@dataclass
class Container:
    settings: Settings
    session: boto3.session.Session
    store: SecretsManagerStore
    database: MySQLDatabase
    rotation: Rotation


def secrets_manager_client(settings: Settings, session: boto3.session.Session | None = None) -> SecretsManagerClient:
    session = session or boto3.session.Session()
    kwargs: dict[str, Any] = {"config": BOTO_CONFIG}
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.secrets_manager_endpoint:
        kwargs["endpoint_url"] = settings.secrets_manager_endpoint
    return session.client("secretsmanager", **kwargs)


def build(settings: Settings | None = None, client: SecretsManagerClient | None = None) -> Container:
    settings = settings or Settings.from_env()
    # One session for every client of the container: a session loads the endpoint
    # rules and data files once, so a second client costs ~20 ms instead of ~90 ms.
    session = boto3.session.Session()
    store = SecretsManagerStore(
        client or secrets_manager_client(settings, session), admin_cache_seconds=settings.admin_cache_seconds
    )
    database = MySQLDatabase(settings)
    return Container(settings, session, store, database, Rotation(store, database, settings.password))
