"""The registry of database backends (rotator.backends): the secret's engine chooses the
backend, imported on first use; an engine no backend serves yet, or a server of another
family than the engine says, is refused with a typed error naming the secret."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import types
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from rotator import backends
from rotator.backends.databases import Databases
from rotator.errors import EngineMismatchError, SecretMismatchError, UnsupportedDatabaseError, UnsupportedEngineError
from rotator.ports import CURRENT, PENDING, SecretDescription, ServerInfo
from rotator.rotation import Rotation, RotationRequest, Step
from rotator.secret import ENGINES, DatabaseSecret
from rotator.settings import Settings

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-db-AbCdEf"
SERVERS = {
    "mysql": ServerInfo("mysql", (8, 0, 36), "8.0.36", False, ("db", 3306, 1)),
    "mariadb": ServerInfo("mariadb", (10, 11, 6), "10.11.6-MariaDB", False, ("db", 3306, 1)),
    "postgresql": ServerInfo("postgresql", (15, 0, 0), "PostgreSQL 15.0", False, ("db", 5432, 1)),
}


def secret(engine: str | None) -> DatabaseSecret:
    value: dict[str, Any] = {"host": "db.example", "port": 3306, "username": "app", "password": "pw-1"}
    if engine is not None:
        value["engine"] = engine
    return DatabaseSecret.parse(SECRET, json.dumps(value))


class FakeDatabase:
    """A backend's Database that reaches a server of the given flavor."""

    def __init__(self, flavor: str) -> None:
        self.server = SERVERS[flavor]
        self.calls: list[str] = []

    def supports(self, secret: DatabaseSecret) -> None:
        return None

    def check_login(self, secret: DatabaseSecret, *, attempts: int = 1) -> ServerInfo:
        self.calls.append("check_login")
        return self.server

    @contextmanager
    def admin(self, admin: DatabaseSecret, app: DatabaseSecret) -> Iterator[Any]:
        self.calls.append("admin")
        yield types.SimpleNamespace(server=self.server)

    @contextmanager
    def own_account(self, candidates: Iterable[DatabaseSecret]) -> Iterator[Any]:
        logins = list(candidates)
        self.calls.append(f"own_account({len(logins)})")
        yield types.SimpleNamespace(server=self.server, login=logins[0])


def fake_backend(name: str, flavors: set[str], reaches: str) -> tuple[types.ModuleType, FakeDatabase]:
    module = types.ModuleType(name)
    database = FakeDatabase(reaches)
    module.FLAVORS = frozenset(flavors)  # type: ignore[attr-defined]
    module.create_database = lambda settings: database  # type: ignore[attr-defined]
    return module, database


def test_the_engines_are_awss_names_and_a_missing_engine_is_the_mysql_family() -> None:
    """Every engine name of AWS's secret structure for MySQL, MariaDB and PostgreSQL is in
    the one registry, and the secret format accepts exactly those."""
    assert {"mysql", "mariadb", "aurora-mysql", "postgres", "aurora-postgresql"} <= set(backends.ENGINES)
    assert set(ENGINES) == set(backends.ENGINES)
    assert backends.backend_module(None, SECRET).__name__ == backends.MYSQL
    for engine in ("mysql", "mariadb", "aurora-mysql"):
        assert backends.backend_module(engine, SECRET).__name__ == "rotator.backends.mysql"


@pytest.mark.parametrize("engine", ["postgres", "aurora-postgresql"])
def test_postgres_engines_go_to_the_postgresql_backend(engine: str) -> None:
    """Both AWS names of PostgreSQL are served by rotator.backends.postgresql, whose entry
    point builds a Database without importing the driver (pg8000 comes with the first login)."""
    module = backends.backend_module(engine, SECRET)
    assert module.__name__ == backends.POSTGRESQL
    assert set(module.FLAVORS) == {"postgresql"}
    database = module.create_database(Settings.from_env({}))
    assert callable(database.check_login) and callable(database.admin) and callable(database.own_account)


@pytest.mark.parametrize("engine", ["postgres", "aurora-postgresql"])
def test_postgres_without_its_backend_is_not_supported_yet(engine: str) -> None:
    """Until rotator.backends.postgresql provides its entry point, a PostgreSQL secret is
    refused with a typed error naming the secret."""

    def missing(path: str) -> types.ModuleType:
        if path == backends.POSTGRESQL:
            raise ModuleNotFoundError(f"No module named {path!r}", name=path)
        return importlib.import_module(path)

    with pytest.raises(UnsupportedEngineError) as raised:
        backends.backend_module(engine, SECRET, missing)
    assert str(raised.value) == f"{SECRET}: engine {engine} is not supported yet; nothing was changed"
    assert isinstance(raised.value, UnsupportedDatabaseError)


def test_a_backend_package_without_the_entry_point_is_not_supported_yet() -> None:
    """A package that exists but has no create_database (work in progress) is refused alike."""
    empty = types.ModuleType(backends.POSTGRESQL)
    with pytest.raises(UnsupportedEngineError, match="engine postgres is not supported yet"):
        backends.backend_module("postgres", SECRET, lambda path: empty)


def test_a_missing_dependency_of_a_backend_is_not_taken_for_an_unknown_engine() -> None:
    """A backend whose driver is missing is a broken artifact: its ImportError goes up as it is."""

    def broken(path: str) -> types.ModuleType:
        raise ModuleNotFoundError("No module named 'pymysql'", name="pymysql")

    with pytest.raises(ModuleNotFoundError, match="pymysql"):
        backends.backend_module("mysql", SECRET, broken)


def test_the_router_refuses_a_postgres_secret_before_any_login() -> None:
    """Databases asks the registry before it connects: nothing is reached for an engine no backend serves."""
    imported: list[str] = []

    def importer(path: str) -> types.ModuleType:
        imported.append(path)
        raise ModuleNotFoundError(f"No module named {path!r}", name=path)

    databases = Databases(Settings.from_env({}), importer)
    with pytest.raises(UnsupportedEngineError, match="not supported yet"):
        databases.supports(secret("postgres"))
    with pytest.raises(UnsupportedEngineError):
        databases.check_login(secret("postgres"))
    assert imported == [backends.POSTGRESQL, backends.POSTGRESQL]


@pytest.mark.parametrize("reaches", ["mysql", "mariadb"])
def test_mariadb_and_mysql_are_one_family(reaches: str) -> None:
    """A secret that says mysql may reach MariaDB and the other way round."""
    module, database = fake_backend(backends.MYSQL, {"mysql", "mariadb"}, reaches)
    databases = Databases(Settings.from_env({}), lambda path: module)
    for engine in ("mysql", "mariadb", None):
        assert databases.check_login(secret(engine)).flavor == reaches
        with databases.admin(secret(None), secret(engine)) as session:
            assert session.server.flavor == reaches
        with databases.own_account([secret(engine), secret(engine)]) as own:
            assert own.login.engine == engine
    assert database.calls.count("own_account(2)") == 3  # every candidate reaches the backend


def test_a_secret_that_says_mysql_but_reaches_another_family_is_refused() -> None:
    """The server's own answer is checked against the secret's engine after each login."""
    module, _ = fake_backend(backends.MYSQL, {"mysql", "mariadb"}, "postgresql")
    databases = Databases(Settings.from_env({}), lambda path: module)
    with pytest.raises(EngineMismatchError) as raised:
        databases.check_login(secret("mysql"))
    assert str(raised.value).startswith(f"{SECRET}: the secret's engine is mysql, but db.example:3306 is a postgresql")
    assert isinstance(raised.value, SecretMismatchError)
    with pytest.raises(EngineMismatchError), databases.admin(secret(None), secret("mysql")):
        pytest.fail("the session must not be handed out")
    with pytest.raises(EngineMismatchError), databases.own_account([secret(None)]):
        pytest.fail("the session must not be handed out")


def test_a_secret_that_says_postgres_but_reaches_mysql_is_refused() -> None:
    """Once a PostgreSQL backend is registered, a postgres secret that reaches MySQL is refused."""
    module, _ = fake_backend(backends.POSTGRESQL, {"postgresql"}, "mysql")
    databases = Databases(Settings.from_env({}), lambda path: module)
    with pytest.raises(
        EngineMismatchError, match=re.escape("engine is postgres, but db.example:3306 is a mysql server")
    ):
        databases.check_login(secret("postgres"))


def test_one_backend_instance_per_family() -> None:
    """The backend is built once and reused: one TLS context cache, one set of connections' settings."""
    built: list[str] = []
    module, database = fake_backend(backends.MYSQL, {"mysql", "mariadb"}, "mysql")
    create = module.create_database

    def counting(settings: Settings) -> Any:
        built.append("x")
        return create(settings)

    module.create_database = counting  # type: ignore[attr-defined]
    databases = Databases(Settings.from_env({}), lambda path: module)
    for engine in ("mysql", "mariadb", "aurora-mysql", None):
        databases.check_login(secret(engine))
    assert built == ["x"] and database.calls == ["check_login"] * 4


def test_importing_the_handler_imports_no_backend() -> None:
    """The Lambda's cold start imports the backend of the engine it rotates on first use, not at import."""
    code = (
        "import sys, rotator.handler, rotator.canary\n"
        "print(sorted(m for m in sys.modules if m.startswith(('rotator.backends.mysql', 'pymysql'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class OneSecretStore:
    """Just enough of the SecretStore port for createSecret of one secret."""

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = json.dumps(value)
        self.written: list[str] = []

    def describe(self, secret_id: str) -> SecretDescription:
        versions = {"v-current": [CURRENT], "v-token": [PENDING]}
        return SecretDescription(SECRET, "app-db", rotation_enabled=True, versions=versions)

    def get_version(self, secret_id: str, version_id: str, stage: str | None) -> str | None:
        return self.value if version_id == "v-current" else None

    def random_password(self, secret_id: str, policy: object) -> str:
        self.written.append("GetRandomPassword")
        return "generated-1"

    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None:
        self.written.append("PutSecretValue")


@pytest.mark.parametrize("step", [Step.CREATE, Step.SET, Step.TEST])
def test_a_postgres_secret_is_refused_by_every_step_before_any_change(step: Step) -> None:
    """createSecret writes no pending version, setSecret and testSecret reach no server."""
    store = OneSecretStore({"engine": "postgres", "host": "db", "username": "app", "password": "pw-1"})

    def importer(path: str) -> types.ModuleType:
        if path == backends.POSTGRESQL:
            raise ModuleNotFoundError(f"No module named {path!r}", name=path)
        return pytest.fail(f"imported {path}")

    settings = Settings.from_env({})
    rotation = Rotation(store, Databases(settings, importer), settings.password)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedEngineError, match="engine postgres is not supported yet") as raised:
        rotation.run(RotationRequest(SECRET, "v-token", step, None))
    assert raised.value.secret_id == SECRET
    assert store.written == []
