"""The PostgreSQL backend (Aurora PostgreSQL, RDS for PostgreSQL), in the shape of
Django's database backends: one module per concern.

- :mod:`.connection`: pg8000 logins (imported on first use), always verified TLS and
  SCRAM-SHA-256, driver errors as :mod:`rotator.errors`; the server's identification.
- :mod:`.features`: capabilities derived once from ``server_version_num``.
- :mod:`.catalogue`: what a role has and what the admin may give (pg_catalog).
- :mod:`.operations`: the statements (the twin's copy, SCRAM verifiers, the owner role,
  the adoption plan); :mod:`.sql` quotes.
- :mod:`.verification`: testSecret's independent reading.
- :mod:`.admin`: the engine calls a rotation makes.
- :mod:`.base`: the :class:`~rotator.ports.Database` port over them (what the core calls).

The registry (:mod:`rotator.backends`) imports this module for a secret whose engine is
``postgres`` or ``aurora-postgresql`` and calls :func:`create_database`; pg8000 is
imported on the first login only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rotator.ports import Database
    from rotator.settings import Settings

FLAVOR = "postgresql"
FLAVORS = frozenset({FLAVOR})


def create_database(settings: Settings) -> Database:
    """The backend's entry point: the Database port for PostgreSQL."""
    from rotator.backends.postgresql.base import PostgreSQLBackend  # noqa: PLC0415  (imported on first use)

    return PostgreSQLBackend(settings)
