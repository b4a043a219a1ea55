"""A SQLAlchemy engine whose pool logs in with credentials that follow rotations.

    engine = create_engine(credentials, "mysql+pymysql://", connect_args={"ssl": tls_context})
    engine = create_engine(credentials, "postgresql+pg8000://", connect_args={"ssl_context": tls_context})

Every new connection the pool opens goes through :meth:`SecretCredentials.connect`
(SQLAlchemy's ``do_connect`` event): the cached AWSCURRENT, one shared refresh and one
retry when the database refuses it. Connections already in the pool are not touched:
MySQL, MariaDB and PostgreSQL check a password only at login, so they keep working
after a rotation (docs/applications.md says for how long, per strategy).

What the URL names wins (its host, port, database); the secret fills in the rest, and
always the user name and password. ``use_credentials`` does the same for an engine
made elsewhere.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy.engine import URL, Dialect, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from rotator_client.credentials import Credentials, SecretCredentials


def create_engine(credentials: SecretCredentials, url: str | URL = "mysql+pymysql://", **kwargs: Any) -> Engine:
    """``sqlalchemy.create_engine(url, **kwargs)`` that logs in with ``credentials``."""
    engine = sqlalchemy.create_engine(url, **kwargs)
    use_credentials(engine, credentials)
    return engine


def use_credentials(engine: Engine, credentials: SecretCredentials) -> None:
    """Make every new connection of ``engine``'s pool log in with ``credentials``."""
    url = engine.url
    if url.username or url.password:
        raise ValueError("the user name and password come from the secret; leave them out of the URL")
    dialect = engine.dialect
    base = _connect_params(dialect, url)

    def do_connect(dialect: Dialect, _record: ConnectionPoolEntry, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        # cparams: the URL's and connect_args' parameters; the secret's go over them
        # under the names this driver uses (PyMySQL's "user", psycopg's "dbname"...).
        return credentials.connect(
            lambda current: dialect.connect(*cargs, **{**cparams, **_from_secret(dialect, url, base, current)})
        )

    sqlalchemy.event.listen(engine, "do_connect", do_connect)


def _connect_params(dialect: Dialect, url: URL) -> dict[str, Any]:
    _args, params = dialect.create_connect_args(url)
    return dict(params)


def _from_secret(dialect: Dialect, url: URL, base: dict[str, Any], credentials: Credentials) -> dict[str, Any]:
    """The driver's connect parameters that the secret sets: those the dialect derives from
    the URL with the secret's values filled in, less what the URL alone gives."""
    filled = url.set(
        username=credentials.username,
        password=credentials.password,
        host=url.host or credentials.host,
        port=url.port or credentials.port,
        database=url.database or credentials.dbname,
    )
    return {key: value for key, value in _connect_params(dialect, filled).items() if base.get(key) != value}
