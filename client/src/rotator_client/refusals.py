"""What a refused login looks like, per driver family: the one decision that starts a refresh.

A refusal is an error that a newer AWSCURRENT can cure: the password (or, with
alternating users, the user) changed under a cached credential. Connection errors,
unknown databases and missing privileges are not: re-reading the secret would not help
them, so they surface at once.

PostgreSQL (SQLSTATE 28P01, ``invalid_password``) plugs in as one more entry of
:data:`REFUSED_LOGIN`, ``sqlstate("28P01")``, once rotator rotates that engine.
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
    psycopg2 as ``pgcode``."""
    wanted = frozenset(states)

    def recognize(exc: BaseException) -> bool:
        error = _driver_error(exc)
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        return isinstance(state, str) and state in wanted

    return recognize


REFUSED_LOGIN: tuple[Recognizer, ...] = (mysql_error(MYSQL_REFUSED_LOGIN),)


def is_refused_login(exc: BaseException) -> bool:
    """Whether a newer AWSCURRENT could make this failed login succeed."""
    return any(recognize(exc) for recognize in REFUSED_LOGIN)
