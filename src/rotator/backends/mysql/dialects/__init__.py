"""One dialect per server family, chosen once from the server's own version.

:func:`dialect_for` is the only place that looks at which family a server is;
everything else asks the dialect's :class:`~rotator.backends.mysql.dialects.common.Features` and lets
it render operations and read the catalogue (see :mod:`rotator.backends.mysql.dialects.common`).
"""

from __future__ import annotations

from rotator.backends.mysql.dialects.common import Dialect, Features, Runner
from rotator.backends.mysql.dialects.mariadb import MariaDB
from rotator.backends.mysql.dialects.mysql8 import MySQL
from rotator.errors import UnsupportedDatabaseError
from rotator.ports import ServerInfo

__all__ = ["Dialect", "Features", "MariaDB", "MySQL", "Runner", "dialect_for"]

MINIMUM = {"mariadb": (10, 4, 0), "mysql": (8, 0, 0)}


def dialect_for(server: ServerInfo, secret_id: str) -> Dialect:
    """The dialect of ``server``; UnsupportedDatabaseError for a family or version rotator
    cannot manage accounts on (MySQL before 8.0, MariaDB before 10.4)."""
    minimum = MINIMUM[server.flavor]
    if server.version < minimum:
        raise UnsupportedDatabaseError(
            secret_id,
            f"{server.flavor} {server.version_string} is older than rotator supports "
            f"({'.'.join(map(str, minimum))} and later): it cannot manage accounts there",
        )
    return MariaDB(server) if server.flavor == "mariadb" else MySQL(server)
