"""The composition root: the one place where adapters are built and joined to the core.

The handler, the readiness check (``rotator.canary``) and the operator CLI all get
their objects from :func:`build`. A function builds its container lazily on the first
invocation and keeps it for the life of the execution environment, so importing the handler stays
cheap and one boto3 session and client, one TLS context per CA file and the
secret-version cache are reused by every warm invocation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from rotator import idempotency
from rotator.backends.databases import Databases
from rotator.rotation import Rotation
from rotator.secret_store import SecretsManagerApi, SecretsManagerOperator, SecretsManagerStore, ValueObserver
from rotator.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from rotator.ports import Database, OperatorStore, SecretStore
    from rotator.readiness import ReadinessSweep

# Throttling and 5xx answers are retried by botocore (standard mode: exponential
# backoff with jitter), not by a loop of ours.
BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=15)


@dataclass
class Container:
    """The wired objects, typed on the ports (rotator.ports): the core and the CLI never
    see which adapter is behind them."""

    settings: Settings
    session: boto3.session.Session
    api: SecretsManagerApi
    store: SecretStore
    database: Database
    rotation: Rotation

    @cached_property
    def runner(self) -> idempotency.Runner:
        """How the handler runs a step it parsed: the rotation, with Powertools idempotency
        around the steps that need it (see :mod:`rotator.idempotency`). Raises
        SettingsError when idempotency is on and has no table."""
        return idempotency.step_runner(self.rotation.run, self.settings, lambda: self.dynamodb)

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        return idempotency.dynamodb_client(self.settings, self.session)

    @cached_property
    def readiness(self) -> ReadinessSweep:
        """The scheduled readiness check (``rotator.canary``): the same read-only rules as
        ``rotator check``, over the secrets the settings name, expecting each to be
        rotated by this stack's function. Builds no writer: the check only reads."""
        # Imported here: the rotation function's cold start never needs the readiness rules.
        from rotator.readiness import ReadinessCheck, ReadinessSweep  # noqa: PLC0415

        wanted = self.settings.readiness
        check = ReadinessCheck(
            self.store,
            self.database,
            function_arn=wanted.rotation_function_arn,
            expect_rotation=True,
            admin_hosts=self.settings.admin_hosts,
        )
        rotated_by = wanted.rotation_function_arn if wanted.include_rotated_by_function else None
        return ReadinessSweep(check, self.store, wanted.secret_ids, rotated_by=rotated_by)

    @cached_property
    def operator(self) -> OperatorStore:
        """Writes only an operator makes (the CLI); the function never builds it."""
        return SecretsManagerOperator(self.api)


def secrets_manager_client(settings: Settings, session: boto3.session.Session) -> SecretsManagerClient:
    kwargs: dict[str, Any] = {"config": BOTO_CONFIG}
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.secrets_manager_endpoint:
        kwargs["endpoint_url"] = settings.secrets_manager_endpoint
    return session.client("secretsmanager", **kwargs)


def build(
    settings: Settings | None = None,
    *,
    session: boto3.session.Session | None = None,
    observe: ValueObserver | None = None,
) -> Container:
    """Everything, wired. ``observe`` sees every secret value the store reads or writes."""
    settings = settings or Settings.from_env()
    # One session for every client of the container: a session loads the endpoint
    # rules and data files once, so a second client costs ~20 ms instead of ~90 ms.
    session = session or boto3.session.Session()
    api = SecretsManagerApi(secrets_manager_client(settings, session))
    store = SecretsManagerStore(api, admin_cache_seconds=settings.admin_cache_seconds, observe=observe)
    # The backend of each secret's engine is imported on its first use (rotator.backends).
    database = Databases(settings)
    return Container(
        settings, session, api, store, database, Rotation(store, database, settings.password, settings.admin_hosts)
    )
