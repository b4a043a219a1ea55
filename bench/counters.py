"""Counting what the function does, from outside the function.

:class:`Probe` patches the libraries the function talks through (botocore, boto3,
PyMySQL, pg8000, ssl) for the life of the bench process and counts, while recording is
on, every:

- ``api:<service>:<Operation>``   botocore API call (retries inside botocore count once)
- ``api_error:<service>:<Code>``  an API call that ended in a service error
- ``secret_read:<SecretId>``      GetSecretValue calls, by the SecretId asked for
- ``client:boto3:<service>``      boto3 client created (``Session.client``)
- ``client:botocore:<service>``   botocore client created (boto3's and any other, e.g. the X-Ray SDK's)
- ``db:attempted`` / ``db:ok``    PyMySQL or pg8000 connection attempts / successes
- ``tls:handshake``               TLS handshakes (``SSLSocket.do_handshake``)
- ``tls:context``                 ``ssl.SSLContext`` objects built (by anyone, botocore included)
- ``tls:default_context``         ``ssl.create_default_context`` calls (how rotator builds its DB context)
- ``sql:<VERB>``                  SQL statements sent by PyMySQL or pg8000, by first keyword

and :func:`bench.driver.rotate` adds ``step_sql:<step>:<VERB>``, the same statements by rotation step.

Nothing here trusts rotator's own ``MySQLDatabase.stats`` (``PostgreSQLDatabase.stats``);
the bench compares the two (:func:`product_mismatches`) so either can catch the other out.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_MISSING = object()
STEP_SQL = "step_sql:"


class Probe:
    """``with Probe() as probe: ... with probe.recording(): <invoke>``; ``probe.counts`` holds the totals."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False
        self._undo: list[Callable[[], None]] = []

    # -- lifecycle ---------------------------------------------------------------

    def __enter__(self) -> Probe:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        previous, self.active = self.active, True
        try:
            yield
        finally:
            self.active = previous

    def snapshot(self) -> Counter[str]:
        return Counter(self.counts)

    def since(self, before: Counter[str]) -> Counter[str]:
        """What was counted after ``before`` was taken (zero entries dropped)."""
        delta = Counter(self.counts)
        delta.subtract(before)
        return Counter({key: value for key, value in delta.items() if value})

    def count(self, key: str, amount: int = 1) -> None:
        if self.active:
            self.counts[key] += amount

    # -- patches -------------------------------------------------------------------

    def install(self) -> None:
        import boto3.session
        import botocore.client
        import botocore.exceptions
        import botocore.session
        import pg8000.core
        import pymysql.connections
        import pymysql.cursors

        probe = self

        def make_api_call(original: Any) -> Any:
            def wrapper(client: Any, operation_name: str, api_params: Any) -> Any:
                service = client.meta.service_model.service_name
                probe.count(f"api:{service}:{operation_name}")
                if operation_name == "GetSecretValue":
                    probe.count(f"secret_read:{api_params.get('SecretId')}")
                try:
                    return original(client, operation_name, api_params)
                except botocore.exceptions.ClientError as exc:
                    probe.count(f"api_error:{service}:{exc.response.get('Error', {}).get('Code', 'Unknown')}")
                    raise

            return wrapper

        def boto3_client(original: Any) -> Any:
            def wrapper(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
                probe.count(f"client:boto3:{service_name}")
                return original(session, service_name, *args, **kwargs)

            return wrapper

        def botocore_client(original: Any) -> Any:
            def wrapper(session: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
                probe.count(f"client:botocore:{service_name}")
                return original(session, service_name, *args, **kwargs)

            return wrapper

        def db_connect(original: Any) -> Any:
            def wrapper(connection: Any, *args: Any, **kwargs: Any) -> Any:
                probe.count("db:attempted")
                result = original(connection, *args, **kwargs)
                probe.count("db:ok")
                return result

            return wrapper

        def count_statement(query: Any) -> None:
            text = query.decode("utf-8", "replace") if isinstance(query, bytes) else str(query)
            probe.count(f"sql:{text.split(None, 1)[0].upper() if text.strip() else 'EMPTY'}")

        def cursor_execute(original: Any) -> Any:
            def wrapper(cursor: Any, query: Any, args: Any = None) -> Any:
                count_statement(query)
                return original(cursor, query, args)

            return wrapper

        def pg_execute(original: Any) -> Any:
            # pg8000: every statement, the native API's and the DB-API's, goes through here.
            def wrapper(connection: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
                count_statement(statement)
                return original(connection, statement, *args, **kwargs)

            return wrapper

        def handshake(original: Any) -> Any:
            def wrapper(sock: Any, *args: Any, **kwargs: Any) -> Any:
                probe.count("tls:handshake")
                return original(sock, *args, **kwargs)

            return wrapper

        def new_context(original: Any) -> Any:
            def wrapper(cls: Any, *args: Any, **kwargs: Any) -> Any:
                probe.count("tls:context")
                return original(cls, *args, **kwargs)

            return staticmethod(wrapper)

        def default_context(original: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                probe.count("tls:default_context")
                return original(*args, **kwargs)

            return wrapper

        self._patch(botocore.client.BaseClient, "_make_api_call", make_api_call)
        self._patch(boto3.session.Session, "client", boto3_client)
        self._patch(botocore.session.Session, "create_client", botocore_client)
        self._patch(pymysql.connections.Connection, "connect", db_connect)
        self._patch(pymysql.cursors.Cursor, "execute", cursor_execute)
        self._patch(pg8000.core.CoreConnection, "__init__", db_connect)
        self._patch(pg8000.core.CoreConnection, "execute_unnamed", pg_execute)
        self._patch(ssl.SSLSocket, "do_handshake", handshake)
        self._patch_new_context(new_context)
        self._patch(ssl, "create_default_context", default_context)

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()

    def _patch(self, owner: Any, name: str, factory: Callable[[Any], Any]) -> None:
        own = vars(owner).get(name, _MISSING)
        original = getattr(owner, name)
        setattr(owner, name, factory(original))

        def undo() -> None:
            if own is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, own)

        self._undo.append(undo)

    def _patch_new_context(self, factory: Callable[[Any], Any]) -> None:
        # SSLContext.__new__ is a staticmethod: call the underlying function.
        own = vars(ssl.SSLContext)["__new__"]
        ssl.SSLContext.__new__ = factory(own.__func__ if isinstance(own, staticmethod) else own)  # type: ignore[method-assign]

        def undo() -> None:
            ssl.SSLContext.__new__ = own  # type: ignore[method-assign]

        self._undo.append(undo)


# -- reading counts ------------------------------------------------------------------


def by_prefix(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    """``{"api:secretsmanager:X": 2}`` and prefix ``"api:secretsmanager:"`` give ``{"X": 2}``."""
    return {key[len(prefix) :]: value for key, value in sorted(counts.items()) if key.startswith(prefix) and value}


def total(counts: Mapping[str, int], prefix: str) -> int:
    return sum(value for key, value in counts.items() if key.startswith(prefix))


def summarize(counts: Mapping[str, int]) -> dict[str, Any]:
    """The figures the report shows, from one set of counts."""
    sm = by_prefix(counts, "api:secretsmanager:")
    ddb = by_prefix(counts, "api:dynamodb:")
    other = {
        key[4:]: value
        for key, value in sorted(counts.items())
        if key.startswith("api:") and not key.startswith(("api:secretsmanager:", "api:dynamodb:")) and value
    }
    return {
        "secretsmanager_calls": sum(sm.values()),
        "secretsmanager_by_operation": sm,
        "dynamodb_calls": sum(ddb.values()),
        "dynamodb_by_operation": ddb,
        "other_aws_calls": other,
        "api_errors": by_prefix(counts, "api_error:"),
        "boto3_clients": by_prefix(counts, "client:boto3:"),
        "botocore_clients": by_prefix(counts, "client:botocore:"),
        "db_connections_attempted": counts.get("db:attempted", 0),
        "db_connections_ok": counts.get("db:ok", 0),
        "tls_handshakes": counts.get("tls:handshake", 0),
        "tls_contexts_all": counts.get("tls:context", 0),
        "tls_contexts_default": counts.get("tls:default_context", 0),
        "sql_by_verb": by_prefix(counts, "sql:"),
        "sql_statements": total(counts, "sql:"),
        "sql_by_step": by_step(counts),
    }


def by_step(counts: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """``{"step_sql:setSecret:SELECT": 12}`` gives ``{"setSecret": {"SELECT": 12}}`` (bench.driver.rotate)."""
    found: dict[str, dict[str, int]] = {}
    for key, value in sorted(counts.items()):
        if key.startswith(STEP_SQL) and value:
            step, _, verb = key[len(STEP_SQL) :].partition(":")
            found.setdefault(step, {})[verb] = value
    return found


def product_mismatches(probe_counts: Mapping[str, int], stats: Mapping[str, int]) -> list[str]:
    """Where rotator's own ``MySQLDatabase.stats`` (a delta over the same span) disagree with the probe."""
    pairs = {
        "connections_attempted": probe_counts.get("db:attempted", 0),
        "connections_ok": probe_counts.get("db:ok", 0),
        "tls_handshakes": probe_counts.get("tls:handshake", 0),
        "tls_contexts": probe_counts.get("tls:default_context", 0),
    }
    problems = [
        f"{name}: rotator says {stats.get(name, 0)}, probe saw {seen}"
        for name, seen in pairs.items()
        if stats.get(name, 0) != seen and name != "tls_handshakes"
    ]
    # rotator counts a handshake only for a connection that succeeds; a login refused
    # after the handshake (single-user setSecret's first probe) is one the probe sees too.
    refused = pairs["connections_attempted"] - pairs["connections_ok"]
    handshakes = stats.get("tls_handshakes", 0)
    if not handshakes <= pairs["tls_handshakes"] <= handshakes + refused:
        problems.append(f"tls_handshakes: rotator says {handshakes}, probe saw {pairs['tls_handshakes']}")
    sql_probe = by_prefix(probe_counts, "sql:")
    sql_stats = {key[4:].upper(): value for key, value in stats.items() if key.startswith("sql_") and value}
    if sql_probe != sql_stats:
        problems.append(f"sql by verb: rotator says {sql_stats}, probe saw {sql_probe}")
    return problems
