"""The one place where this backend assembles SQL text.

PostgreSQL's rules differ from MySQL's (``rotator.sql`` is MySQL's: backticks, ``%%``),
so this package quotes for itself:

- statements are sent over the extended protocol one at a time, with values bound
  as ``$1, $2, …`` (pg8000's ``execute_unnamed``; no client-side paramstyle, so a
  ``%`` in SQL text means nothing special, and a statement can never carry a second
  one after a ``;``);
- role, database, schema and other names that cannot be bound go through
  :func:`ident` (always double-quoted, ``"`` doubled, NUL refused);
- the few values that *must* be written into a statement — utility statements
  (``ALTER ROLE … PASSWORD``, ``… SET name = value``, ``VALID UNTIL``) take no bind
  parameters — go through :func:`literal`;
- privilege keywords and setting names come from the server's own catalogue and are
  checked by :func:`keyword` / :func:`setting_name`.

A :class:`Statement`'s text may hold a password verifier; its ``label`` is what logs
and errors show.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from rotator.errors import StatementBuildError

_KEYWORD = re.compile(r"^[A-Z][A-Z ]*$")
# A run-time parameter name as pg_db_role_setting stores it: letters, digits,
# underscores, and dots for a custom (extension) class such as ``pgaudit.log``.
_SETTING = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$")


class Statement(NamedTuple):
    sql: str  # $n per parameter
    params: tuple[Any, ...] = ()
    # What the statement does, in words safe to log and to put in an error (never a
    # value: the text of a password change holds a verifier).
    label: str = ""

    @property
    def verb(self) -> str:
        return self.sql.split(None, 1)[0].upper() if self.sql.strip() else ""

    def describe(self) -> str:
        return self.label or self.verb


def ident(name: str) -> str:
    """A role, database, schema or other name, double-quoted."""
    if "\x00" in name:
        raise StatementBuildError("a name contains NUL")
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A string constant, as PostgreSQL's own ``quote_literal`` writes it: quotes doubled,
    and with backslashes an ``E''`` string whose backslashes are doubled (so the value
    reads the same whatever ``standard_conforming_strings`` says)."""
    if "\x00" in value:
        raise StatementBuildError("a value contains NUL")
    quoted = value.replace("'", "''")
    if "\\" in quoted:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def keyword(word: str) -> str:
    """A privilege keyword (``SELECT``, ``TEMPORARY``, ``MAINTAIN``…) read from the server."""
    upper = word.upper()
    if not _KEYWORD.match(upper):
        raise StatementBuildError(f"unexpected SQL keyword {word!r}")
    return upper


def setting_name(name: str) -> str:
    """A run-time parameter's name read from pg_db_role_setting, checked before use."""
    if not _SETTING.match(name):
        raise StatementBuildError(f"setting name {name!r} cannot be written as one name")
    return name
