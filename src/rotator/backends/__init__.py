"""The one registry of database backends: a secret's ``engine`` -> the package that serves it.

A backend is a package per engine family, in the shape of Django's database backends
(docs/design.md, "Backends"): its connection and sessions, its features and rendering,
its catalogue reading. The core talks to the :class:`~rotator.ports.Database` port only;
:class:`Databases` is that port over every backend, and sends each call to the backend
of the secret's engine. A backend module is imported on the first secret of its family,
so a function's cold start imports only the engine it rotates (and its driver).

Each backend module provides:

- ``FLAVORS``: what its servers say they are (``ServerInfo.flavor``);
- ``create_database(settings) -> Database``: the entry point.

The engine names are those of AWS's secret JSON structure; a secret without ``engine``
is of the MySQL family, as before engines chose anything.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from types import ModuleType
from typing import TYPE_CHECKING

from rotator.errors import EngineMismatchError, UnsupportedEngineError

if TYPE_CHECKING:
    from rotator.ports import AdminSession, Database, OwnAccountSession, ServerInfo
    from rotator.secret import DatabaseSecret
    from rotator.settings import Settings

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


def ensure_engine(secret: DatabaseSecret, server: ServerInfo, flavors: Iterable[str]) -> None:
    """The server must be of the family the secret's engine names (MariaDB and MySQL are
    one family): a secret that says postgres but reaches MySQL is refused, and the other
    way round."""
    if server.flavor not in flavors:
        engine = secret.engine or DEFAULT_ENGINE
        raise EngineMismatchError(
            secret.secret_id,
            f"the secret's engine is {engine}, but {secret.host}:{secret.port} is a {server.flavor} server "
            f"({server.version_string}); nothing was changed",
        )


class Databases:
    """The Database port over every backend: each call goes to the backend of the
    secret's engine, built once per family, and the server it reached is checked to be
    of that family."""

    def __init__(
        self, settings: Settings, import_module: Callable[[str], ModuleType] = importlib.import_module
    ) -> None:
        self._settings = settings
        self._import = import_module
        self._backends: dict[str, tuple[Database, frozenset[str]]] = {}

    def _backend(self, secret: DatabaseSecret) -> tuple[Database, frozenset[str]]:
        module = backend_module(secret.engine, secret.secret_id, self._import)
        if module.__name__ not in self._backends:
            self._backends[module.__name__] = (module.create_database(self._settings), frozenset(module.FLAVORS))
        return self._backends[module.__name__]

    def supports(self, secret: DatabaseSecret) -> None:
        self._backend(secret)

    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo:
        database, flavors = self._backend(secret)
        server = database.check_login(secret, attempts=attempts)
        ensure_engine(secret, server, flavors)
        return server

    @contextmanager
    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[AdminSession]:
        database, flavors = self._backend(app)  # the application's engine: an admin secret may not say
        with database.admin(admin, app) as session:
            ensure_engine(app, session.server, flavors)
            yield session

    @contextmanager
    def own_account(self, candidates: Iterable[DatabaseSecret]) -> Iterator[OwnAccountSession]:
        logins = iter(candidates)
        first = next(logins, None)
        if first is None:
            raise ValueError("own_account needs at least one candidate login")
        database, flavors = self._backend(first)
        with database.own_account(chain((first,), logins)) as own:
            ensure_engine(first, own.server, flavors)
            yield own
