"""The one place where SQL text is assembled.

Every statement is a *template* executed as ``sql % params`` (PyMySQL formats a
statement whenever parameters are given, and rotator always gives them, an empty
tuple included). So the rule is one: **every literal ``%`` in SQL text is written
``%%``** — :func:`quote_identifier` and :func:`percent_safe` do it, and
:class:`Statement` refuses a template that does not format.

Values (user names, hosts, passwords, numbers, JSON) are always bound as
parameters; account names are written ``%s@%s`` and bound too, which MySQL and
MariaDB accept as quoted strings. Schema, table, column and role names cannot be
bound, so they go through :func:`quote_identifier` (backticks doubled, ``%``
doubled, NUL refused); privilege keywords come from the server's own catalogue and
are checked by :func:`keyword`. Backslashes need nothing: inside backticks they are
ordinary characters (which keeps a grant's schema pattern ``app\\_%`` as it was).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rotator.errors import StatementBuildError

_KEYWORD = re.compile(r"^[A-Z][A-Z0-9_ ]*$")
_PLUGIN = re.compile(r"^[A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Statement:
    sql: str  # a template: %s per parameter, %% per literal %
    params: tuple[Any, ...] = field(default=(), repr=False)
    # What the statement does, in words safe to log and to put in an error.
    label: str = ""

    def __post_init__(self) -> None:
        try:
            self.sql % tuple("" for _ in self.params)
        except (TypeError, ValueError) as exc:
            raise StatementBuildError(f"{self.label or self.verb}: malformed statement template") from exc

    @property
    def verb(self) -> str:
        return self.sql.split(None, 1)[0].upper() if self.sql.strip() else ""


def quote_identifier(name: str) -> str:
    """Backtick-quote a schema, table, column or role name (or a host in ``role@host``) for a template."""
    if "\x00" in name:
        raise StatementBuildError("a name contains NUL")
    return percent_safe("`" + name.replace("`", "``") + "`")


def percent_safe(text: str) -> str:
    """``text`` as literal SQL inside a template: each ``%`` doubled."""
    return text.replace("%", "%%")


def keyword(word: str) -> str:
    """A privilege or routine keyword read from the server, checked before use."""
    upper = word.upper()
    if not _KEYWORD.match(upper):
        raise StatementBuildError(f"unexpected SQL keyword {word!r}")
    return upper


def plugin_name(name: str) -> str:
    """An authentication plugin's name read from the server, checked before use."""
    if not _PLUGIN.match(name):
        raise StatementBuildError(f"authentication {name!r} cannot be written as one plugin name")
    return name
