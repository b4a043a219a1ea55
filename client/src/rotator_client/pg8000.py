"""pg8000 with credentials that follow rotations.

    tls = ssl.create_default_context(cafile="rds-ca-bundle.pem")
    connection = connect(credentials, ssl_context=tls)          # pg8000.dbapi (DB-API 2)
    connection = connect_native(credentials, ssl_context=tls)   # pg8000.native

Both log in with the secret's host, port, user, password and ``dbname`` (as
``database``) and take every other pg8000 argument as given; a ``host``, ``port`` or
``database`` argument wins over the secret's. A refused login (SQLSTATE 28P01) gets the
shared refresh and one retry (:meth:`SecretCredentials.connect`).

pg8000 verifies the server only when asked: pass ``ssl_context=`` a context with the CA
that signed the database's certificate (the RDS CA bundle on AWS; ``create_default_context``
checks the host name too). Without it pg8000 encrypts when the server offers TLS but
checks nothing, and goes on in plaintext when the server offers none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pg8000.dbapi
import pg8000.native

from rotator_client.credentials import Credentials, SecretCredentials

C = TypeVar("C")
_FROM_THE_SECRET = ("user", "password")


def _login(factory: Callable[..., C], credentials: Credentials, kwargs: dict[str, Any]) -> C:
    clashes = [key for key in _FROM_THE_SECRET if key in kwargs]
    if clashes:
        raise TypeError(f"{', '.join(clashes)} come(s) from the secret; do not pass them")
    # What the secret leaves out stays pg8000's default (localhost, 5432, the user's database).
    from_secret = {"host": credentials.host, "port": credentials.port, "database": credentials.dbname}
    options: dict[str, Any] = {key: value for key, value in from_secret.items() if value is not None} | kwargs
    # The password goes straight into the call, never into a local of this frame.
    return factory(user=credentials.username, password=credentials.password, **options)


def login(credentials: Credentials, **kwargs: Any) -> pg8000.dbapi.Connection:
    """One pg8000 DB-API login with ``credentials`` (no refresh, no retry)."""
    return _login(pg8000.dbapi.connect, credentials, kwargs)


def connect(credentials: SecretCredentials, **kwargs: Any) -> pg8000.dbapi.Connection:
    """A pg8000 DB-API connection with the secret's AWSCURRENT credentials: cached, refreshed
    once and retried once when the login is refused."""
    return credentials.connect(lambda current: login(current, **kwargs))


def connect_native(credentials: SecretCredentials, **kwargs: Any) -> pg8000.native.Connection:
    """The same for pg8000's native API (``connection.run(sql, name=value)``)."""
    return credentials.connect(lambda current: _login(pg8000.native.Connection, current, kwargs))
