"""The MySQL-family backend: MySQL 8.0+, Aurora MySQL 3 and MariaDB 10.4+ (PyMySQL).

One package per engine family, in the shape of Django's database backends:

- :mod:`.base` — the connection and the sessions (the :class:`~rotator.ports.Database`
  port's adapter), every driver error turned into :mod:`rotator.errors`;
- :mod:`.dialects` — MariaDB's and MySQL's differences: named capabilities derived once
  from the server's version (``Features``), the catalogue queries that read an account,
  and the rendering of every account statement;
- :mod:`.definitions` — ``SHOW CREATE USER`` / ``SHOW GRANTS`` taken apart for testSecret's
  independent reading;
- :mod:`.hashes` — the stored password hashes the admin compares candidates with.

The registry (:mod:`rotator.backends`) imports this module when a secret's engine is of
the family, and calls :func:`create_database`; the driver is imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rotator.ports import Database
    from rotator.settings import Settings

# What the server's own version string may say it is (ServerInfo.flavor): the secret's
# engine is cross-checked against it after the login.
FLAVORS = frozenset({"mysql", "mariadb"})


def create_database(settings: Settings) -> Database:
    """The backend's entry point: the Database port for this family."""
    from rotator.backends.mysql.base import MySQLDatabase  # noqa: PLC0415 - the driver loads here, on first use

    return MySQLDatabase(settings)
