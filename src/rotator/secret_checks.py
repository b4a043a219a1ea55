"""The secret values' side of a secret's readiness: is AWSCURRENT a usable value, and is
the admin secret it names readable, with a host its credentials may go to."""

from __future__ import annotations

from rotator.admin_access import AdminAccess
from rotator.errors import (
    AdminHostError,
    SecretFormatError,
    SecretStoreError,
    UnsafeTargetError,
    UnsupportedEngineError,
)
from rotator.findings import MASK, STORE_HINTS, Add, Finding, Level
from rotator.ports import CURRENT, Database, SecretDescription, SecretStore
from rotator.secret import DatabaseSecret
from rotator.targets import check_names

ADMIN_HOST_ACTION = (
    "an RDS-managed admin secret needs the application's host to be an endpoint of its cluster or instance "
    "(its aws:rds:* tag), or an ADMIN_SECRET_HOSTS entry (the stack's AdminSecretHosts) naming the admin's host"
)


def current_value(store: SecretStore, details: SecretDescription, add: Add) -> DatabaseSecret | None:
    """AWSCURRENT, parsed (None: unusable, reported)."""
    version = details.version_with(CURRENT)
    if version is None:
        add(Finding("secret.value", Level.FAIL, "the secret has no AWSCURRENT version", "put a value first"))
        return None
    try:
        value = store.get_version(details.arn, version, CURRENT)
    except SecretStoreError as exc:
        add(Finding("secret.value", Level.FAIL, exc.problem, STORE_HINTS.get(exc.failure, "")))
        return None
    try:
        app = DatabaseSecret.parse(details.arn, value)
    except SecretFormatError as exc:
        add(
            Finding(
                "secret.value",
                Level.FAIL,
                exc.problem,
                "the value must be a JSON object with host, port, username, password "
                "(and engine, dbname, masterarn as needed): see docs/design.md",
            )
        )
        return None
    return app


def value(app: DatabaseSecret, mode: str, database: Database, add: Add) -> bool:
    """What the value says, and whether a backend serves its engine (False: none does)."""
    dbname = f"/{app.dbname}" if app.dbname else ""
    add(
        Finding(
            "secret.value",
            Level.OK,
            f"{app.engine or 'no engine'}: {app.username}@{app.host}:{app.port}{dbname}, password {MASK}; {mode}",
        )
    )
    if app.engine is None:
        add(
            Finding(
                "secret.engine",
                Level.WARN,
                "no 'engine' key: rotator does not need it, but RDS tooling and the console expect it",
                'add "engine": "mysql" (or mariadb, aurora-mysql)',
            )
        )
    try:
        database.supports(app)
    except UnsupportedEngineError as exc:
        add(
            Finding(
                "secret.engine",
                Level.FAIL,
                exc.problem,
                "rotate it with a rotator that has this engine's backend (rotator.backends), or correct 'engine'",
            )
        )
        return False
    if not app.tls:
        add(
            Finding(
                "secret.tls",
                Level.WARN,
                "'ssl' is false: rotation logs in to the database without TLS",
                'remove "ssl": false once the server offers TLS (rotator verifies the certificate)',
            )
        )
    return True


def admin_secret(access: AdminAccess, app: DatabaseSecret, twin: str | None, add: Add) -> DatabaseSecret | None:
    """The admin secret ``masterarn`` names, where its credentials may go, and whether the
    names rotated are neither the admin's nor reserved (as createSecret refuses them).
    The admin secret with its confirmed host; None when it is not usable."""
    try:
        admin = access.read(app)
    except SecretStoreError as exc:
        add(
            Finding(
                "admin.secret",
                Level.FAIL,
                exc.problem,
                "'masterarn' must name an admin secret the function (and you) can read",
            )
        )
        return None
    except SecretFormatError as exc:
        add(Finding("admin.secret", Level.FAIL, exc.problem))
        return None
    where = "" if admin.host else " (no host of its own)"
    add(Finding("admin.secret", Level.OK, f"admin secret readable: user {admin.username}{where}"))
    admin = _admin_host(access, app, admin, add)
    try:
        check_names(app, twin, admin)
    except UnsafeTargetError as exc:
        add(Finding("target.names", Level.FAIL, exc.problem, "createSecret refuses this secret"))
    else:
        names = f"neither '{app.username}' nor '{twin}' is" if twin else f"'{app.username}' is not"
        add(Finding("target.names", Level.OK, f"{names} reserved or the admin's"))
    return admin if admin.host else None


def _admin_host(access: AdminAccess, app: DatabaseSecret, admin: DatabaseSecret, add: Add) -> DatabaseSecret:
    """Where the admin's credentials go: the rule setSecret applies (rotator.admin_host).
    Refused, the admin is not logged in anywhere (its secret is returned without a host)."""
    try:
        confirmed = access.confirm(app, admin)
    except AdminHostError as exc:
        add(Finding("admin.host", Level.FAIL, exc.problem, ADMIN_HOST_ACTION))
        return admin
    except SecretStoreError as exc:
        add(Finding("admin.host", Level.FAIL, exc.problem, "the function needs DescribeSecret on the admin secret"))
        return admin
    host = f"{confirmed.secret.host}:{confirmed.secret.port}"
    add(Finding("admin.host", Level.OK, f"the admin logs in to {host} ({confirmed.confirmed_by})"))
    return confirmed.secret
