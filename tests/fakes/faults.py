"""Faults between port calls: every call a fake port receives is counted, and a test can
make the Nth one fail before it takes effect (an error the function sees) or after (the
function dies there, unobserved).

One :class:`FaultPlan` is shared by the fake secret store and the fake database, so the
count runs across both ports in the order the core calls them: "the 7th port call of a
rotation" names one point between two calls, whichever port they go to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rotator.errors import DatabaseError

BEFORE = "before"  # the call fails and changes nothing (a refused request, a timeout on the way)
AFTER = "after"  # the call took effect, then the function died (Lambda timeout, crash)


class InjectedFault(BaseException):
    """A fault the plan injected (what a test that drives the retries catches): one of the two below."""


class InjectedError(InjectedFault, Exception):
    """BEFORE: the call raised and changed nothing. The function sees the exception (an
    ``except Exception`` catches it), as it sees a refused or failed request."""


class InjectedDatabaseError(InjectedError, DatabaseError):
    """BEFORE, on a database port: the adapter's typed answer for a call that did not take
    effect (the server refused it, or it was never sent: rotator.ports)."""

    def __init__(self, name: str) -> None:
        DatabaseError.__init__(self, "fake", f"{name} failed (injected before it took effect)")


class FunctionDied(InjectedFault):
    """AFTER: the call took effect, then Lambda killed the function (timeout, crash, out of
    memory). No code of the function observes that, so this is not an ``Exception``: only
    ``finally`` blocks and context managers' exits still run on the way out, which a real
    death would not run either (none of them changes the database or the store)."""


DATABASE_PORTS = ("Database.", "AdminSession.", "OwnAccountSession.", "AccountCatalogue.")


def default_error(when: str, name: str) -> Callable[[str], BaseException]:
    if when == AFTER:
        return FunctionDied
    return InjectedDatabaseError if name.startswith(DATABASE_PORTS) else InjectedError


@dataclass
class FaultPlan:
    calls: list[str] = field(default_factory=list)
    _at: int | None = None
    _when: str = BEFORE
    _name: str | None = None
    _error: Callable[[str], BaseException] | None = None  # None: default_error(when, name)
    fired: str | None = None  # which call failed, and when: "after Database.admin"

    def arm(self, at: int, when: str = BEFORE, error: Callable[[str], BaseException] | None = None) -> None:
        """Fail the ``at``-th call (0-based, counted from now on) ``when`` it runs."""
        self._at, self._name, self._when, self._error, self.fired = len(self.calls) + at, None, when, error, None

    def fail_next(self, name: str, error: Callable[[str], BaseException], when: str = BEFORE) -> None:
        """Fail the next call of the port method ``name`` (``Database.admin``...)."""
        self._at, self._name, self._when, self._error, self.fired = None, name, when, error, None

    @contextmanager
    def call(self, name: str) -> Iterator[None]:
        index = len(self.calls)
        self.calls.append(name)
        if self._fires(index, name, BEFORE):
            raise self._fire(name)
        yield
        if self._fires(index, name, AFTER):
            raise self._fire(name)

    def _fires(self, index: int, name: str, when: str) -> bool:
        if self.fired is not None or self._when != when:
            return False
        if self._at is not None:
            return index == self._at
        return self._name == name

    def _fire(self, name: str) -> BaseException:
        self.fired = f"{self._when} {name}"
        return (self._error or default_error(self._when, name))(name)
