"""What a refused login looks like, per driver family: the one decision that starts a refresh.

A refusal is an error that a newer AWSCURRENT can cure: the password (or, with
alternating users, the user) changed under a cached credential. Connection errors,
unknown databases and missing privileges are not: re-reading the secret would not help
them, so they surface at once.

- MySQL/MariaDB: error numbers (:data:`MYSQL_REFUSED_LOGIN`).
- PostgreSQL: SQLSTATE 28P01 ``invalid_password`` (:data:`POSTGRESQL_REFUSED_LOGIN`), as
  pg8000 (the server's fields in ``args[0]``), psycopg 3 (``sqlstate``) and psycopg2
  (``pgcode``) report it; and psycopg's failed *connection*, which carries no SQLSTATE at
  all (:func:`libpq_refused_login`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Recognizer = Callable[[BaseException], bool]

# MySQL and MariaDB: 1045 access denied (wrong password, or a user that is gone);
# 4150 MariaDB's "user is blocked" after max_password_errors refused logins and 3955
# MySQL's FAILED_LOGIN_ATTEMPTS lock: stale logins block the twin of alternating users,
# and the new AWSCURRENT may name the other user (docs/reliability.md, "Findings").
MYSQL_REFUSED_LOGIN = frozenset({1045, 3955, 4150})


def _driver_error(exc: BaseException) -> BaseException:
    """The DBAPI error itself when an ORM wrapped it (SQLAlchemy's ``.orig``)."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def mysql_error(codes: Iterable[int]) -> Recognizer:
    """A MySQL-protocol error with one of ``codes``: PyMySQL and mysqlclient carry the
    number as ``args[0]``, mysql-connector as ``errno``."""
    wanted = frozenset(codes)

    def recognize(exc: BaseException) -> bool:
        error = _driver_error(exc)
        number = getattr(error, "errno", None)
        if not isinstance(number, int) and error.args and isinstance(error.args[0], int):
            number = error.args[0]
        return isinstance(number, int) and number in wanted

    return recognize


def sqlstate(*states: str) -> Recognizer:
    """An error with one of the SQLSTATE ``states``: psycopg 3 carries it as ``sqlstate``,
    psycopg2 as ``pgcode``, pg8000 as the ``C`` field of the server's error fields
    (``args[0]``, a dict)."""
    wanted = frozenset(states)

    def recognize(exc: BaseException) -> bool:
        error = _driver_error(exc)
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if state is None and error.args and isinstance(error.args[0], dict):
            state = error.args[0].get("C")
        return isinstance(state, str) and state in wanted

    return recognize


# PostgreSQL: 28P01 is a wrong password, and equally a role that does not exist (SCRAM's
# mock authentication answers both alike) or a password past its VALID UNTIL - each cured
# by a newer AWSCURRENT. 28000 is not: pg_hba's refusals (no TLS, a host not admitted)
# and a NOLOGIN role do not depend on the password.
POSTGRESQL_REFUSED_LOGIN = frozenset({"28P01"})
# What PostgreSQL's server says for 28P01 (auth_failed() in its src/backend/libpq/auth.c),
# in its default English messages (lc_messages; Aurora and RDS keep it).
_AUTH_FAILED_MESSAGE = "password authentication failed for user"


def libpq_refused_login(exc: BaseException) -> bool:
    """psycopg (3 and 2) raise a failed connection as ``OperationalError`` with no SQLSTATE:
    libpq keeps only the server's message for an error before a session exists. Its text is
    the only sign of 28P01 there, so it is read for exactly that error of exactly those
    drivers (and never copied anywhere)."""
    error = _driver_error(exc)
    if type(error).__name__ != "OperationalError" or not type(error).__module__.startswith("psycopg"):
        return False
    if getattr(error, "sqlstate", None) or getattr(error, "pgcode", None):
        return False  # an error with a SQLSTATE is decided by it (sqlstate())
    return _AUTH_FAILED_MESSAGE in str(error)


REFUSED_LOGIN: tuple[Recognizer, ...] = (
    mysql_error(MYSQL_REFUSED_LOGIN),
    sqlstate(*POSTGRESQL_REFUSED_LOGIN),
    libpq_refused_login,
)


def is_refused_login(exc: BaseException) -> bool:
    """Whether a newer AWSCURRENT could make this failed login succeed."""
    return any(recognize(exc) for recognize in REFUSED_LOGIN)
