"""What every backend decides alike, whatever its engine: which of the candidate logins
opens the user's own session, and the verified TLS context a login is wrapped in.

Engine-neutral: no driver is imported here, so a backend's first use still imports only
its own driver.
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TypeVar

from rotator.errors import AccountStateError, DatabaseAuthError, DatabaseTLSError
from rotator.secret import DatabaseSecret

S = TypeVar("S")


@contextmanager
def first_accepted(
    candidates: Iterable[DatabaseSecret], login: Callable[[DatabaseSecret], AbstractContextManager[S]]
) -> Iterator[S]:
    """The session of the first candidate the server accepts (``login`` opens one). Tried
    one at a time, in order, so that a later candidate is not even read when an earlier
    works. One refusal is raised as it is; several as the last, saying how many passwords
    were tried."""
    refusals: list[DatabaseAuthError] = []
    with ExitStack() as stack:
        for candidate in candidates:
            try:
                session = stack.enter_context(login(candidate))
            except AccountStateError:
                # The password was right (a locked or expired account, a role that
                # cannot log in): another one would only count as a failed login.
                raise
            except DatabaseAuthError as refused:  # the server's answer "not this password"
                refusals.append(refused)
                continue
            yield session
            return
    if not refusals:
        raise ValueError("own_account needs at least one candidate login")
    last = refusals[-1]
    if len(refusals) == 1:
        raise last
    raise DatabaseAuthError(last.secret_id, f"{last.problem}; refused with each of the {len(refusals)} passwords tried")


class TLSContexts:
    """One verifying TLS context per CA file, kept for the warm container: a context
    with the 100+ certificate RDS bundle costs tens of milliseconds to build.
    ``stats["tls_contexts"]`` (the backend's counter) counts the contexts built."""

    def __init__(self, stats: Counter[str]) -> None:
        self._contexts: dict[Path, ssl.SSLContext] = {}
        self._stats = stats

    def get(self, ca_file: Path, secret_id: str) -> ssl.SSLContext:
        """The context for ``ca_file``: certificate and host name verified, TLS 1.2 or
        later; a CA bundle that cannot be read is a :class:`DatabaseTLSError` naming
        ``secret_id``."""
        context = self._contexts.get(ca_file)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=str(ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise DatabaseTLSError(secret_id, f"cannot load CA bundle {ca_file}: {exc.__class__.__name__}") from exc
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            # create_default_context's defaults; no login may ever run unverified.
            assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
            self._contexts[ca_file] = context
            self._stats["tls_contexts"] += 1
        return context
