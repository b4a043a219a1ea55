"""One comparison of two accounts: is the twin the same account as the user but for its name?

The hosts first (the twin must exist at exactly the user's hosts), then host by host,
what only one of the two has. Two readings of an account feed it:

- :class:`AccountDefinition` — the account as the server prints it, normalised by its
  backend (MySQL family: ``SHOW CREATE USER`` and ``SHOW GRANTS``,
  :mod:`rotator.backends.mysql.definitions`). testSecret compares these
  (:func:`verify_copy`): a reading independent of the catalogue rows setSecret synced
  from, so that a blind spot of the sync cannot hide in the check of its work;
- :class:`~rotator.accounts.AccountProfile` — the catalogue rows the sync itself reads
  (:func:`profiles`). ``rotator check`` compares these (``twin.state``, ``twin.takeover``,
  ``twin.drift``: what the twin holds beyond the user).

Either way the same function (:func:`compare_accounts`) decides what differs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from rotator.accounts import Account, AccountProfile, differences
from rotator.errors import PrivilegeMismatchError

ACCOUNT = "<account>"
_SHOWN_LINES = 6  # differing lines quoted per account in an error
_LINE_CHARS = 240
_CONTEXT_WORDS = 2  # words kept on each side of a difference within a line


class AccountDefinition(NamedTuple):
    """One account as its server prints it, normalised by the backend: sorted lines in
    which the account's own name is ``<account>`` and its password hash ``<hash>``, so
    that two accounts that are copies of each other have equal definitions."""

    lines: tuple[str, ...]


class HostDifference(NamedTuple):
    """How the twin differs from the user at one host."""

    host: str
    differences: tuple[str, ...]  # every difference, worded
    extras: tuple[str, ...]  # what the twin has there and the user does not


class AccountComparison(NamedTuple):
    user: str
    twin: str
    hosts: tuple[str, ...]  # the user's
    twin_hosts: tuple[str, ...]
    by_host: tuple[HostDifference, ...]  # the hosts both have (none read when ``only_if_same_hosts``)

    @property
    def same_hosts(self) -> bool:
        return sorted(self.hosts) == sorted(self.twin_hosts)

    @property
    def matches(self) -> bool:
        return self.same_hosts and not any(found.differences for found in self.by_host)

    @property
    def extra_hosts(self) -> tuple[str, ...]:
        return tuple(host for host in self.twin_hosts if host not in self.hosts)


# (user, twin, host) -> (differences, extras) at that host
HostComparer = Callable[[str, str, str], tuple[Sequence[str], Sequence[str]]]


class AccountLister(Protocol):
    def account_hosts(self, user: str) -> list[str]: ...


class DefinitionSource(AccountLister, Protocol):
    """The two read-only questions testSecret's verification asks (the admin's catalogue)."""

    def account_definition(self, user: str, host: str) -> AccountDefinition: ...


class ProfileSource(AccountLister, Protocol):
    def read_profile(self, account: Account) -> AccountProfile: ...


def compare_accounts(
    source: AccountLister, user: str, twin: str, compare_host: HostComparer, *, only_if_same_hosts: bool = False
) -> AccountComparison:
    """How ``twin`` differs from ``user``: their hosts, and at each host both have, what
    ``compare_host`` finds. ``only_if_same_hosts``: read nothing more when the hosts differ."""
    hosts, twin_hosts = tuple(source.account_hosts(user)), tuple(source.account_hosts(twin))
    by_host: list[HostDifference] = []
    if hosts and not (only_if_same_hosts and sorted(hosts) != sorted(twin_hosts)):
        for host in (host for host in hosts if host in twin_hosts):
            found, extras = compare_host(user, twin, host)
            by_host.append(HostDifference(host, tuple(found), tuple(extras)))
    return AccountComparison(user, twin, hosts, twin_hosts, tuple(by_host))


def definitions(source: DefinitionSource) -> HostComparer:
    """Compare the printed definitions (testSecret): the lines only one side has."""

    def compare_host(user: str, twin: str, host: str) -> tuple[list[str], list[str]]:
        only_user, only_twin = compare(
            source.account_definition(user, host).lines, source.account_definition(twin, host).lines
        )
        if len(only_user) == len(only_twin) == 1:
            only_user, only_twin = _around_difference(only_user[0], only_twin[0])
        if not (only_user or only_twin):
            return [], []
        return [f"at host '{host}': {_quote(user, only_user)}; {_quote(twin, only_twin)}"], only_twin

    return compare_host


def profiles(source: ProfileSource) -> HostComparer:
    """Compare the catalogue profiles (``rotator check``): each difference as the sync sees
    it; the extras are the privileges and roles only the twin holds."""

    def compare_host(user: str, twin: str, host: str) -> tuple[list[str], list[str]]:
        mine = source.read_profile(Account(user, host))
        theirs = source.read_profile(Account(twin, host))
        extras = [f"@'{host}': {privilege.describe()}" for privilege in sorted(theirs.privileges - mine.privileges)]
        extras += [f"@'{host}': role {role.describe()}" for role in sorted(theirs.roles - mine.roles)]
        extras += [f"@'{host}': {line}" for line in sorted(set(theirs.definition) - set(mine.definition))]
        return [f"@'{host}': {difference}" for difference in differences(mine, theirs)], extras

    return compare_host


def verify_copy(source: DefinitionSource, secret_id: str, user: str, twin: str) -> None:
    """Raise PrivilegeMismatchError unless ``twin`` exists at exactly ``user``'s hosts and,
    host by host, prints the same definition but for its name and password hash."""
    found = compare_accounts(source, user, twin, definitions(source), only_if_same_hosts=True)
    hosts, twin_hosts = sorted(found.hosts), sorted(found.twin_hosts)
    if not hosts:
        raise PrivilegeMismatchError(secret_id, f"'{user}' has no account on this server: nothing to compare with")
    if hosts != twin_hosts:
        raise PrivilegeMismatchError(
            secret_id,
            f"'{twin}' does not match '{user}': hosts differ "
            f"({_hosts(hosts)} vs {_hosts(twin_hosts) if twin_hosts else 'none'})",
        )
    problems = [difference for host in found.by_host for difference in host.differences]
    if problems:
        raise PrivilegeMismatchError(
            secret_id, f"'{twin}' does not match '{user}' (SHOW CREATE USER / SHOW GRANTS): " + " | ".join(problems)
        )


def check_readable(source: DefinitionSource, secret_id: str, user: str, hosts: Sequence[str]) -> None:
    """Read ``user``'s definition at each host, as testSecret will: setSecret asks this
    before its first change, so that an admin who cannot read definitions (or a definition
    its backend cannot take apart) is refused before anything changes."""
    for host in hosts:
        source.account_definition(user, host)


def compare(user_lines: Sequence[str], twin_lines: Sequence[str]) -> tuple[list[str], list[str]]:
    """The normalised lines only the user has, and those only the twin has."""
    mine, theirs = Counter(user_lines), Counter(twin_lines)
    return sorted((mine - theirs).elements()), sorted((theirs - mine).elements())


# -- messages ---------------------------------------------------------------------------


def _quote(user: str, lines: list[str]) -> str:
    if not lines:
        return f"nothing only '{user}' has"
    shown = [line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS] + "..." for line in lines[:_SHOWN_LINES]]
    more = f" and {len(lines) - _SHOWN_LINES} more" if len(lines) > _SHOWN_LINES else ""
    return f"only '{user}': " + "; ".join(shown) + more


def _around_difference(first: str, second: str) -> tuple[list[str], list[str]]:
    """Two lines about the same thing (equal up to ``<account>``) that differ further on,
    such as two long CREATE USER lines: each shortened to the words around the difference."""
    head, _, first_tail = first.partition(f" {ACCOUNT} ")
    second_head, _, second_tail = second.partition(f" {ACCOUNT} ")
    a, b = first_tail.split(" "), second_tail.split(" ")
    if head != second_head or not first_tail or not second_tail:
        return [first], [second]
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1

    def shortened(words: list[str]) -> str:
        start, end = max(prefix - _CONTEXT_WORDS, 0), len(words) - max(suffix - _CONTEXT_WORDS, 0)
        return " ".join(
            [head, ACCOUNT, *(["..."] if start else []), *words[start:end], *(["..."] if end < len(words) else [])]
        )

    return [shortened(a)], [shortened(b)]


def _hosts(hosts: Sequence[str]) -> str:
    return ", ".join(f"'{host}'" for host in hosts)
