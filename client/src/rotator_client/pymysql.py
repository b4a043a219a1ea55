"""PyMySQL with credentials that follow rotations.

    connection = connect(credentials, ssl=ssl.create_default_context(cafile="rds-ca-bundle.pem"))

``connect`` logs in with the secret's host, port, user, password and ``dbname`` (as
``database``) and takes every other PyMySQL argument as given; a ``host``, ``port`` or
``database`` argument wins over the secret's. A refused login gets the shared refresh
and one retry (:meth:`SecretCredentials.connect`).

PyMySQL verifies the server only when asked: pass ``ssl=`` a context with the CA that
signed the database's certificate (the RDS CA bundle on AWS). Without any TLS argument
it encrypts when the server offers TLS but checks nothing.
"""

from __future__ import annotations

from typing import Any

import pymysql

from rotator_client.credentials import Credentials, SecretCredentials

_FROM_THE_SECRET = ("user", "password", "passwd")


def login(credentials: Credentials, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    """One PyMySQL login with ``credentials`` (no refresh, no retry)."""
    clashes = [key for key in _FROM_THE_SECRET if key in kwargs]
    if clashes:
        raise TypeError(f"{', '.join(clashes)} come(s) from the secret; do not pass them")
    # The password goes straight into the call, never into a local of this frame.
    options: dict[str, Any] = {"host": credentials.host, "database": credentials.dbname, **kwargs}
    if credentials.port is not None:
        options.setdefault("port", credentials.port)
    return pymysql.connect(user=credentials.username, password=credentials.password, **options)


def connect(credentials: SecretCredentials, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    """A PyMySQL connection with the secret's AWSCURRENT credentials: cached, refreshed once
    and retried once when the login is refused."""
    return credentials.connect(lambda current: login(current, **kwargs))
