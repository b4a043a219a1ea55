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

Not wired into the rotation core yet (docs/postgresql.md, "The backend").
"""

# The secret's "engine" values (AWS's secret structure) this backend serves.
ENGINES = frozenset({"postgres", "aurora-postgresql"})
FLAVOR = "postgresql"
