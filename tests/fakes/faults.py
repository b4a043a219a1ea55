"""Faults between port calls: every call a fake port receives is counted, and a test can
make the Nth one fail before or after it takes effect.

One :class:`FaultPlan` is shared by the fake secret store and the fake database, so the
count runs across both ports in the order the core calls them: "the 7th port call of a
rotation" names one point between two calls, whichever port they go to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

BEFORE = "before"  # the call fails and changes nothing (a refused request, a timeout on the way)
AFTER = "after"  # the call took effect, then the function died (Lambda timeout, crash)


class InjectedFault(Exception):
    """The function stopped between two port calls (no rotator error: Lambda died)."""


@dataclass
class FaultPlan:
    calls: list[str] = field(default_factory=list)
    _at: int | None = None
    _when: str = BEFORE
    _name: str | None = None
    _error: Callable[[str], BaseException] = InjectedFault
    fired: str | None = None  # which call failed, and when: "after Database.admin"

    def arm(self, at: int, when: str = BEFORE, error: Callable[[str], BaseException] | None = None) -> None:
        """Fail the ``at``-th call (0-based, counted from now on) ``when`` it runs."""
        self._at, self._name, self._when, self.fired = len(self.calls) + at, None, when, None
        if error is not None:
            self._error = error

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
        return self._error(name)
