"""The one place where SQL text is assembled.

Values (user names, hosts, passwords, numbers) are always bound as parameters;
account names are written ``%s@%s`` and bound too, which MySQL and MariaDB accept
as quoted strings. Schema, table, column and role names cannot be bound, so they
go through :func:`quote_identifier`; privilege keywords come from the server's
own catalogue and are checked against :data:`_KEYWORD`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_KEYWORD = re.compile(r"^[A-Z][A-Z0-9_ ]*$")


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[Any, ...] = field(default=(), repr=False)
    # What the statement does, in words safe to log and to put in an error.
    label: str = ""

    @property
    def verb(self) -> str:
        return self.sql.split(None, 1)[0].upper()


def quote_identifier(name: str) -> str:
    """Backtick-quote a schema, table, column or role name."""
    if "\x00" in name:
        raise ValueError("identifier contains NUL")
    return "`" + name.replace("`", "``") + "`"


def keyword(word: str) -> str:
    """A privilege or routine keyword read from the server, checked before use."""
    upper = word.upper()
    if not _KEYWORD.match(upper):
        raise ValueError(f"unexpected SQL keyword {word!r}")
    return upper
