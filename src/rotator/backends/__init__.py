"""The one registry of database backends: a secret's ``engine`` -> the package that serves it.

A backend is a package per engine family, in the shape of Django's database backends
(docs/design.md, "Backends"): its connection and sessions, its features and rendering,
its catalogue reading. The core talks to the :class:`~rotator.ports.Database` port only;
:class:`rotator.backends.databases.Databases` is that port over every backend, and sends
each call to the backend of the secret's engine. A backend module is imported on the first secret of its family,
so a function's cold start imports only the engine it rotates (and its driver).

Each backend module provides:

- ``FLAVORS``: what its servers say they are (``ServerInfo.flavor``);
- ``create_database(settings) -> Database``: the entry point.

The engine names are those of AWS's secret JSON structure; a secret without ``engine``
is of the MySQL family, as before engines chose anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

from rotator.errors import UnsupportedEngineError

MYSQL = "rotator.backends.mysql"
POSTGRESQL = "rotator.backends.postgresql"

ENGINES: dict[str, str] = {
    "mysql": MYSQL,
    "mariadb": MYSQL,
    "aurora-mysql": MYSQL,
    "aurora": MYSQL,  # Aurora MySQL 1 (5.6-compatible), as older secrets name it
    "postgres": POSTGRESQL,
    "aurora-postgresql": POSTGRESQL,
}
DEFAULT_ENGINE = "mysql"  # a secret without "engine"


class EngineDefaults(NamedTuple):
    """What a secret of the family means when it leaves a key out (AWS's secret JSON
    structure per engine), and what it may not say."""

    port: int
    dbname: str | None  # None: the server's default for the login
    plaintext_allowed: bool  # whether ``"ssl": false`` is accepted for the secret's own logins


# Per backend module: read by rotator.secret when a value is parsed (no import of the backend).
FAMILY_DEFAULTS: dict[str, EngineDefaults] = {
    MYSQL: EngineDefaults(port=3306, dbname=None, plaintext_allowed=True),
    # AWS's PostgreSQL secret: "dbname" optional, "postgres" when absent; the backend
    # logs in with verified TLS only (docs/postgresql.md), so "ssl": false is refused.
    POSTGRESQL: EngineDefaults(port=5432, dbname="postgres", plaintext_allowed=False),
}


def engine_defaults(engine: str | None) -> EngineDefaults:
    """The defaults of ``engine``'s family (an unknown engine: the MySQL family's, as before)."""
    return FAMILY_DEFAULTS[ENGINES.get(engine or DEFAULT_ENGINE, MYSQL)]


def backend_module(
    engine: str | None, secret_id: str, import_module: Callable[[str], ModuleType] = importlib.import_module
) -> ModuleType:
    """The backend of ``engine``; UnsupportedEngineError (naming the secret) when none
    serves it yet: no connection was made, nothing changed."""
    name = engine or DEFAULT_ENGINE
    path = ENGINES.get(name)
    if path is None:
        raise UnsupportedEngineError(
            secret_id, f"unsupported engine {name!r}; expected one of {', '.join(sorted(ENGINES))}"
        )
    try:
        module = import_module(path)
    except ModuleNotFoundError as exc:
        if exc.name is None or not path.startswith(exc.name):
            raise  # a module the backend needs is missing: a broken artifact, not an unknown engine
        module = None
    if module is None or not callable(getattr(module, "create_database", None)):
        raise UnsupportedEngineError(secret_id, f"engine {name} is not supported yet; nothing was changed")
    return module
