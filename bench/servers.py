"""The database servers the bench can run against (``--server``).

The sections never name a server class: they get a started server from a
:class:`ServerKind`, which wraps the class of one of tests/support's private
servers (same interface: ``host``, ``port``, ``pki``, ``sql()``, a context
manager that installs, starts and stops it in its own directory): MariaDB from
tests/support/mariadb.py, MySQL (the Debian sid chroot's) from tests/support/mysql.py,
PostgreSQL 15 (Debian 12's) and 18 (the sid chroot's) from tests/support/postgresql.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

# The choices of --server; each must be a key of server_kinds().
SERVER_NAMES = ("mariadb", "mysql", "postgresql", "postgresql18")
# The sections a PostgreSQL server runs (bulk and cold make MySQL accounts of their own).
POSTGRESQL_SECTIONS = frozenset({"rotation", "package"})


class DatabaseServer(Protocol):
    """What the bench uses of a private test server."""

    host: str
    port: int
    pki: Any  # tests.support.mariadb.Pki: ca_file, cert_file, key_file

    def sql(self, statement: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


@dataclass(frozen=True)
class ServerKind:
    name: str  # the value of --server
    label: str  # how the report names its version ("MariaDB 10.11.19-...")
    server_class: Callable[[Path], DatabaseServer]  # e.g. MariaDBServer: built with its directory
    install_binaries: Callable[[], None]  # installs the server's binaries if missing
    version_sql: str = "SELECT VERSION()"

    @contextlib.contextmanager
    def running(self, directory: Path) -> Iterator[Any]:
        """A fresh server of this kind in ``directory``, stopped on exit."""
        self.install_binaries()
        with self.server_class(directory / self.name) as server:
            yield server

    def version(self, server: DatabaseServer) -> str:
        return str(server.sql(self.version_sql)[0][0])


def server_kinds() -> dict[str, ServerKind]:
    from tests.support.mariadb import MariaDBServer, ensure_binaries
    from tests.support.mysql import MySQLServer, ensure_chroot
    from tests.support.postgresql import PostgreSQLServer, ensure_installed

    def postgresql(major: int) -> Callable[[Path], DatabaseServer]:
        return lambda directory: PostgreSQLServer(directory, major=major)

    return {
        "mariadb": ServerKind("mariadb", "MariaDB", MariaDBServer, ensure_binaries),
        "mysql": ServerKind("mysql", "MySQL", MySQLServer, ensure_chroot),
        "postgresql": ServerKind("postgresql", "PostgreSQL", postgresql(15), ensure_installed, "SHOW server_version"),
        "postgresql18": ServerKind(
            "postgresql18", "PostgreSQL", postgresql(18), ensure_installed, "SHOW server_version"
        ),
    }


def server_kind(name: str) -> ServerKind:
    return server_kinds()[name]
