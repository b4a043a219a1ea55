"""How a MySQL-family server prints an account, taken apart: testSecret's independent reading.

setSecret reads the current user from catalogue rows and makes the twin match
(:mod:`rotator.accounts`); checking its work with the same reading would share its
blind spots, so testSecret reads both accounts a second, independent way: what the
server itself prints in ``SHOW CREATE USER`` and ``SHOW GRANTS`` for every host, taken
apart here into lines that :mod:`rotator.comparison` compares. Nothing in this module
knows what a privilege, a role or a policy *is*; anything the server prints is kept, so
whatever the sync cannot see shows up as a difference and fails testSecret.

Two accounts that are copies still print differently in a few places, and only
those are normalised (docs/design.md, "How testSecret verifies", says why):

- the account a line is about (``CREATE USER <acct>``, ``GRANT ... TO <acct>``,
  ``REVOKE ... FROM <acct>``, ``SET DEFAULT ROLE ... FOR <acct>``) becomes
  ``<account>`` — after checking it *is* the account asked for; the name appearing
  anywhere else (a schema called like the user, a proxied account) is kept;
- the authentication string after ``IDENTIFIED BY PASSWORD``, ``AS`` or ``USING`` (the
  password hash) becomes ``<hash>``; the plugin and the rest of the clause are kept;
- lists whose order carries no meaning are sorted: the privileges of one line, the
  columns of one privilege, the roles of a role grant or ``DEFAULT ROLE``, and the
  lines themselves.

Everything else is compared as printed: the host, TLS requirements, limits, password
policies, locking, comments and attributes, grant and admin options.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rotator.comparison import ACCOUNT, AccountDefinition
from rotator.errors import UnsupportedDatabaseError

HASH = "<hash>"

# What may follow an authentication string in either server's output. Finding one of
# these right after the closing quote is how the end of a hash is recognised (a hash
# may hold quotes and backslashes, escaped one way or the other: see _Line.secret).
_AFTER_SECRET = frozenset(
    {"AND", "OR", "DEFAULT", "REQUIRE", "WITH", "PASSWORD", "ACCOUNT", "ATTRIBUTE", "COMMENT", "FAILED_LOGIN_ATTEMPTS"}
)
_WORD = re.compile(r"[A-Za-z0-9_$]+")
_HEX = re.compile(r"0[xX][0-9A-Fa-f]*")
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


@dataclass(frozen=True)
class PrintedDefinition:
    """One account as the server prints it: ``SHOW CREATE USER`` and ``SHOW GRANTS``.
    Holds the password hash: never logged, never in a repr."""

    create_user: str = field(repr=False)
    grants: tuple[str, ...] = field(repr=False)

    @classmethod
    def from_rows(
        cls, create_user: Sequence[Sequence[object]], grants: Sequence[Sequence[object]]
    ) -> PrintedDefinition:
        """From the rows of the two statements (one text column each)."""
        return cls(
            create_user=_text(create_user[0][0]) if create_user else "",
            grants=tuple(_text(row[0]) for row in grants),
        )


def definition(printed: PrintedDefinition, user: str, host: str, secret_id: str) -> AccountDefinition:
    """What :mod:`rotator.comparison` compares: the normalised lines."""
    return AccountDefinition(normalise(printed, user, host, secret_id))


def normalise(definition: PrintedDefinition, user: str, host: str, secret_id: str) -> tuple[str, ...]:
    """The definition of ``user``@``host`` as sorted lines, with that account's name and its
    password hash replaced: equal for two accounts that are copies of each other."""
    where = f"'{user}'@'{host}'"
    try:
        lines = [_create_user(definition.create_user, user, host)]
    except _UnreadableError as exc:
        raise UnsupportedDatabaseError(
            secret_id, f"cannot read SHOW CREATE USER of {where} ({exc}); testSecret cannot verify the twin"
        ) from None
    for number, line in enumerate(definition.grants, start=1):
        try:
            lines.append(_grant(line, user, host))
        except _UnreadableError as exc:
            raise UnsupportedDatabaseError(
                secret_id,
                f"cannot read line {number} of SHOW GRANTS for {where} ({exc}); testSecret cannot verify the twin",
            ) from None
    return tuple(sorted(lines))


# -- taking one line apart ------------------------------------------------------------


class _UnreadableError(Exception):
    """A line that does not have the shape expected. The reason never quotes the line
    (it may hold a password hash)."""


def _create_user(text: str, user: str, host: str) -> str:
    """``CREATE USER <acct> [IDENTIFIED ...] [DEFAULT ROLE <roles>] <the rest, as printed>``."""
    line = _Line(text)
    line.expect("CREATE", "USER")
    parts = ["CREATE USER", line.subject(user, host)]
    if line.peek_word() == "IDENTIFIED":
        parts.append(line.authentication())
    if line.accept("DEFAULT"):  # MySQL prints the default roles here (MariaDB: in SHOW GRANTS)
        line.expect("ROLE")
        parts.append("DEFAULT ROLE " + ",".join(sorted(line.account_list())))
    parts.append(line.rest())
    return " ".join(part for part in parts if part)


def _grant(text: str, user: str, host: str) -> str:
    """``GRANT <list> [ON <object>] TO <acct> ...``, ``REVOKE <list> ON <object> FROM <acct>``
    (MySQL's partial revokes) or ``SET DEFAULT ROLE <list> FOR <acct>`` (MariaDB)."""
    line = _Line(text)
    verb = line.peek_word()
    if verb == "GRANT":
        line.expect("GRANT")
        preposition = "TO"
    elif verb == "REVOKE":
        line.expect("REVOKE")
        preposition = "FROM"
    elif verb == "SET":
        line.expect("SET", "DEFAULT", "ROLE")
        verb, preposition = "SET DEFAULT ROLE", "FOR"
    else:
        raise _UnreadableError("a line that is not GRANT, REVOKE or SET DEFAULT ROLE")
    parts = [verb, _sorted_list(line.segment({"ON", preposition}))]
    if preposition != "FOR" and line.accept("ON"):
        parts += ["ON", line.segment({preposition})]
    line.expect(preposition)
    parts += [preposition, line.subject(user, host)]
    if line.peek_word() == "IDENTIFIED":  # MariaDB's USAGE line repeats the authentication
        parts.append(line.authentication())
    parts.append(line.rest())
    return " ".join(part for part in parts if part)


def _sorted_list(text: str) -> str:
    """A privilege or role list in a fixed order, each privilege's columns sorted."""
    items = [_sorted_columns(item) for item in _split(text, ",")]
    if not items:
        raise _UnreadableError("an empty privilege list")
    return ", ".join(sorted(items))


def _sorted_columns(item: str) -> str:
    """``SELECT (`b`, `a`)`` -> ``SELECT (`a`, `b`)``; an item without columns as it is."""
    opening = next((start for kind, start, _ in _tokens(item, 0) if kind == "("), None)
    if opening is None:
        return item
    if not item.endswith(")"):
        raise _UnreadableError("a column list that does not close")
    columns = _split(item[opening + 1 : -1], ",")
    return f"{item[:opening].strip()} ({', '.join(sorted(columns))})"


def _split(text: str, separator: str) -> list[str]:
    """``text`` cut at ``separator`` outside quotes and parentheses, each part stripped."""
    parts, start, depth = [], 0, 0
    for kind, begin, _end in _tokens(text, 0):
        if kind == "(":
            depth += 1
        elif kind == ")":
            depth -= 1
        elif kind == separator and depth == 0:
            parts.append(text[start:begin].strip())
            start = begin + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]


def _tokens(text: str, start: int) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) from ``start`` on: kind is "name" (a quoted name or string),
    "word" (bare), or the punctuation character itself. Spaces are skipped."""
    position = start
    while position < len(text):
        char = text[position]
        if char == " ":
            position += 1
        elif char in "`\"'":
            end = _quoted_end(text, position)
            yield "name", position, end
            position = end
        elif word := _WORD.match(text, position):
            yield "word", position, word.end()
            position = word.end()
        else:
            yield char, position, position + 1
            position += 1


def _quoted_end(text: str, start: int) -> int:
    """Where the quoted name or string opening at ``start`` ends (after its closing quote).
    Backtick and double-quoted names double their quote; strings may also use backslash."""
    quote = text[start]
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\" and quote == "'":
            position += 2
        elif char == quote:
            if text[position + 1 : position + 2] != quote:
                return position + 1
            position += 2
        else:
            position += 1
    raise _UnreadableError("a quoted name or string that does not close")


def _unquote(raw: str) -> str:
    quote = raw[0]
    if quote not in "`\"'":
        return raw
    inner = raw[1:-1]
    if quote != "'":
        return inner.replace(quote * 2, quote)
    out, position = [], 0
    while position < len(inner):
        char = inner[position]
        if char == "\\" and position + 1 < len(inner):
            out.append(_ESCAPES.get(inner[position + 1], inner[position + 1]))
            position += 2
        elif char == "'":  # a doubled quote
            out.append("'")
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


class _Line:
    """A cursor over one printed line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def _skip(self) -> None:
        while self.text[self.position : self.position + 1] == " ":
            self.position += 1

    def peek_word(self) -> str:
        self._skip()
        word = _WORD.match(self.text, self.position)
        return word.group().upper() if word else ""

    def accept(self, word: str) -> bool:
        if self.peek_word() != word:
            return False
        self.position += len(word)
        return True

    def expect(self, *words: str) -> None:
        for word in words:
            if not self.accept(word):
                raise _UnreadableError(f"expected {word}")

    def name(self) -> str:
        """A quoted name or string, or a bare word; as printed."""
        self._skip()
        start = self.position
        if self.text[start : start + 1] in ("`", '"', "'"):
            self.position = _quoted_end(self.text, start)
        elif word := _WORD.match(self.text, start):
            self.position = word.end()
        else:
            raise _UnreadableError("expected a name")
        return self.text[start : self.position]

    def account(self) -> tuple[str, str, str | None]:
        """``name@host`` (or a bare role name, MariaDB): (as printed, user, host)."""
        start = self.position
        user = _unquote(self.name())
        host = None
        if self.text[self.position : self.position + 1] == "@":
            self.position += 1
            host = _unquote(self.name())
        return self.text[start : self.position].strip(), user, host

    def account_list(self) -> list[str]:
        accounts = [self.account()[0]]
        self._skip()
        while self.text[self.position : self.position + 1] == ",":
            self.position += 1
            accounts.append(self.account()[0])
            self._skip()
        return accounts

    def subject(self, user: str, host: str) -> str:
        """The account the line is about: it must be the one asked for."""
        _, found_user, found_host = self.account()
        if (found_user, found_host) != (user, host):
            raise _UnreadableError("the line is about another account than the one asked for")
        return ACCOUNT

    def segment(self, stops: set[str]) -> str:
        """The text up to the first bare word of ``stops`` outside parentheses."""
        depth = 0
        for kind, start, end in _tokens(self.text, self.position):
            if kind == "(":
                depth += 1
            elif kind == ")":
                depth -= 1
            elif kind == "word" and depth == 0 and self.text[start:end].upper() in stops:
                found = self.text[self.position : start].strip()
                self.position = start
                return found
        raise _UnreadableError(f"expected {' or '.join(sorted(stops))}")

    def authentication(self) -> str:
        """``IDENTIFIED BY PASSWORD <hash>`` / ``IDENTIFIED WITH <plugin> [AS <hash>]``
        (MySQL; ``AND IDENTIFIED ...`` for further factors) / ``IDENTIFIED VIA <plugin>
        [USING <hash>] [OR ...]`` (MariaDB), with every hash masked."""
        parts = []
        while True:
            self.expect("IDENTIFIED")
            parts.append("IDENTIFIED")
            if self.accept("BY"):
                parts.append("BY")
                if self.accept("PASSWORD"):
                    parts.append("PASSWORD")
                self.secret()
                parts.append(HASH)
            elif self.accept("WITH"):
                parts += ["WITH", self.name()]
                if self.accept("AS"):
                    self.secret()
                    parts += ["AS", HASH]
            elif self.accept("VIA"):
                parts += ["VIA", *self._plugins()]
            else:
                raise _UnreadableError("expected BY, WITH or VIA after IDENTIFIED")
            if self.peek_word() != "AND":
                return " ".join(parts)
            self.expect("AND")
            parts.append("AND")

    def _plugins(self) -> list[str]:
        parts = [self.name()]
        if self.accept("USING"):
            self.secret()
            parts += ["USING", HASH]
        if self.accept("OR"):
            parts += ["OR", *self._plugins()]
        return parts

    def secret(self) -> None:
        """Step over an authentication string without keeping it.

        The servers escape one differently: MariaDB doubles quotes and backslashes,
        MySQL backslash-escapes (``\\'``), or doubles quotes and prints backslashes raw
        under ``NO_BACKSLASH_ESCAPES``, or prints ``0x...`` with
        ``print_identified_with_as_hex``. A hash is random bytes, so both readings are
        tried: the one whose closing quote is followed by the end of the line or a
        keyword that can follow a hash is it. Both or neither: refuse (a retry of the
        rotation makes new hashes)."""
        self._skip()
        start = self.position
        if hexadecimal := _HEX.match(self.text, start):
            self.position = hexadecimal.end()
            return
        if self.text[start : start + 1] != "'":
            raise _UnreadableError("expected a quoted authentication string")
        ends = {end for backslash in (True, False) if (end := self._string_end(start, backslash=backslash))}
        if len(ends) != 1:
            raise _UnreadableError("cannot tell where the authentication string ends")
        self.position = ends.pop()

    def _string_end(self, start: int, *, backslash: bool) -> int | None:
        text, position = self.text, start + 1
        while position < len(text):
            char = text[position]
            if char == "\\" and backslash:
                position += 2
            elif char == "'":
                if text[position + 1 : position + 2] == "'":
                    position += 2
                    continue
                return position + 1 if _secret_ends_before(text[position + 1 :]) else None
            else:
                position += 1
        return None

    def rest(self) -> str:
        """The remainder as printed (TLS requirement, limits, policies, options...)."""
        return self.text[self.position :].strip()


def _secret_ends_before(after: str) -> bool:
    """Whether ``after`` can follow an authentication string: the end, or a keyword."""
    words = after.split(None, 1)
    return not after or (after[0] == " " and bool(words) and words[0] in _AFTER_SECRET)


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)
