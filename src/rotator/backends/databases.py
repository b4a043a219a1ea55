"""The Database port over every backend of the registry (rotator.backends)."""

from __future__ import annotations

import importlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import chain
from types import ModuleType

from rotator.backends import DEFAULT_ENGINE, backend_module
from rotator.errors import EngineMismatchError
from rotator.ports import AdminSession, Database, OwnAccountSession, ServerInfo
from rotator.secret import DatabaseSecret
from rotator.settings import Settings


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

    @property
    def stats(self) -> Counter[str]:
        """The backends' own counters (connections, TLS, statements by verb), added up: what
        the bench and the tests compare with what the servers saw."""
        total: Counter[str] = Counter()
        for database, _flavors in self._backends.values():
            total.update(getattr(database, "stats", {}))
        return total

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
