"""The child of bench/pgdriver.py: one PostgreSQL driver, driven against the private
servers under the Lambda runtime's Python (3.13), with the driver's cp313 wheels first on
sys.path. Standard library and the driver only (the runtime venv has nothing else).

    python -s -B bench/pgdriver_probe.py DRIVER CONFIG_JSON   # prints one JSON object

Every check records what the driver *does* (connected or not, TLS or not, the exception's
class, SQLSTATE and message); none decides what is right — bench/pgdriver.py prints them
side by side. A password appearing in any message is reported as a leak.
"""

from __future__ import annotations

import json
import socket
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

Config = dict[str, Any]


class Driver:
    """What differs between the drivers: how to connect, and how an error reads."""

    name = ""

    def connect(self, server: Config, user: str, password: str, mode: str, **extra: Any) -> Any:
        """``mode``: "verify" (verify-full against ``extra['ca']`` or the run's CA), or "default"
        (whatever the driver does when told nothing about TLS), or "plain" (no TLS)."""
        raise NotImplementedError

    def sqlstate(self, exc: BaseException) -> str | None:
        raise NotImplementedError

    def query(self, connection: Any, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
        cursor = connection.cursor()
        if params:
            cursor.execute(statement, params)
        else:
            cursor.execute(statement)
        return [list(row) for row in cursor.fetchall()] if cursor.description else []

    def mechanism(self, connection: Any) -> str:
        raise NotImplementedError

    def quote_identifier(self, connection: Any, name: str) -> str:
        raise NotImplementedError

    def facts(self) -> dict[str, Any]:
        return {}


class Pg8000(Driver):
    name = "pg8000"

    def __init__(self) -> None:
        import pg8000.dbapi
        import pg8000.native

        self.dbapi = pg8000.dbapi
        self.native = pg8000.native
        self._contexts: dict[str, ssl.SSLContext] = {}

    def context(self, ca: str) -> ssl.SSLContext:
        """Built once per CA file and reused: pg8000 takes an SSLContext."""
        if ca not in self._contexts:
            self._contexts[ca] = ssl.create_default_context(cafile=ca)
        return self._contexts[ca]

    def connect(self, server: Config, user: str, password: str, mode: str, **extra: Any) -> Any:
        options: dict[str, Any] = {}
        if mode == "verify":
            options["ssl_context"] = self.context(extra.get("ca", server["ca"]))
        elif mode == "plain":
            options["ssl_context"] = False
        host = extra.get("host", server["host"])
        if extra.get("nodelay"):
            # pg8000 leaves Nagle's algorithm on: its small writes then wait for the
            # server's delayed ACK. A socket of our own, with TCP_NODELAY as libpq sets it.
            sock = socket.create_connection((host, server["port"]), timeout=5)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            options["sock"] = sock
        else:
            options["port"] = server["port"]
        return self.dbapi.connect(
            user=user,
            password=password,
            host=host,
            database=extra.get("database", "postgres"),
            timeout=5,
            **options,
        )

    def sqlstate(self, exc: BaseException) -> str | None:
        fields = exc.args[0] if exc.args else None
        return str(fields["C"]) if isinstance(fields, dict) and "C" in fields else None

    def mechanism(self, connection: Any) -> str:
        auth = getattr(connection, "auth", None)
        return str(auth.mechanism_name) if auth is not None else "none (not SASL)"

    def quote_identifier(self, connection: Any, name: str) -> str:
        return str(self.native.identifier(name))

    def facts(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {"version": version("pg8000"), "scramp": version("scramp"), "paramstyle": self.dbapi.paramstyle}


class Psycopg(Driver):
    name = "psycopg"

    def __init__(self) -> None:
        import psycopg
        import psycopg.sql

        self.psycopg = psycopg

    def connect(self, server: Config, user: str, password: str, mode: str, **extra: Any) -> Any:
        # libpq does TLS itself: it takes a CA *file* (read at every connection), not an SSLContext.
        options: dict[str, Any] = {}
        if mode == "verify":
            options.update(sslmode="verify-full", sslrootcert=extra.get("ca", server["ca"]))
        elif mode == "plain":
            options["sslmode"] = "disable"
        options.update({k: v for k, v in extra.items() if k in {"channel_binding", "require_auth"}})
        return self.psycopg.connect(
            user=user,
            password=password,
            host=extra.get("host", server["host"]),
            port=server["port"],
            dbname=extra.get("database", "postgres"),
            connect_timeout=5,
            **options,
        )

    def sqlstate(self, exc: BaseException) -> str | None:
        return getattr(exc, "sqlstate", None)

    def mechanism(self, connection: Any) -> str:
        # libpq does not say which SASL mechanism it used; channel_binding=require proves PLUS.
        return "not reported by libpq"

    def quote_identifier(self, connection: Any, name: str) -> str:
        return str(self.psycopg.sql.Identifier(name).as_string(connection))

    def facts(self) -> dict[str, Any]:
        pq = self.psycopg.pq
        return {
            "version": self.psycopg.__version__,
            "implementation": pq.__impl__,
            "libpq": pq.version(),
            "paramstyle": self.psycopg.paramstyle,
        }


# -- the checks ---------------------------------------------------------------------------


def attempt(driver: Driver, passwords: list[str], action: Callable[[], Any]) -> dict[str, Any]:
    """Run ``action``; what it returned, or the error as a client would see it."""
    started = time.perf_counter()
    try:
        value = action()
        return {"ok": True, "value": value, "ms": (time.perf_counter() - started) * 1000}
    except Exception as exc:  # every failure is a finding here
        return {
            "ok": False,
            "error": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "bases": [f"{base.__module__}.{base.__qualname__}" for base in type(exc).__mro__[1:4]],
            "sqlstate": driver.sqlstate(exc),
            "message": str(exc)[:300],
            "password_in_message": any(p and p in f"{exc!s} {exc!r}" for p in passwords),
            "password_in_attributes": [
                name for name, text in reachable(exc) if any(p and p in text for p in passwords)
            ],
        }


def reachable(exc: BaseException) -> list[tuple[str, str]]:
    """The repr of every public attribute of an exception: what a logger that formats the
    exception's fields, or a traceback with locals, would print."""
    found = []
    for name in dir(exc):
        if name.startswith("_") or name in {"args", "with_traceback", "add_note"}:
            continue
        try:
            found.append((name, repr(getattr(exc, name))))
        except Exception:  # a property that fails has nothing to show
            continue
    return found


def tls_of(driver: Driver, connection: Any) -> dict[str, Any]:
    row = driver.query(connection, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0]
    return {"tls": bool(row[0]), "version": row[1], "mechanism": driver.mechanism(connection)}


def login(driver: Driver, server: Config, user: str, password: str, mode: str, **extra: Any) -> dict[str, Any]:
    connection = driver.connect(server, user, password, mode, **extra)
    try:
        return tls_of(driver, connection)
    finally:
        connection.close()


def run(driver: Driver, config: Config) -> dict[str, Any]:
    tls, plain = config["tls_server"], config["plain_server"]
    app, password = config["app"], config["password"]
    secrets = [password, config["nologin_password"]]
    results: dict[str, Any] = {"facts": driver.facts()}

    def check(name: str, action: Callable[[], Any]) -> None:
        results[name] = attempt(driver, secrets, action)

    # TLS
    check("verify_full", lambda: login(driver, tls, app, password, "verify"))
    check("wrong_ca", lambda: login(driver, tls, app, password, "verify", ca=config["other_ca"]))
    check("wrong_host_name", lambda: login(driver, tls, app, password, "verify", host="localhost"))
    check(
        "default_against_tls_server_as_localhost",
        lambda: login(driver, tls, app, password, "default", host="localhost"),
    )
    check("verify_full_against_server_without_tls", lambda: login(driver, plain, app, password, "verify"))
    check("default_against_server_without_tls", lambda: login(driver, plain, app, password, "default"))
    check("plaintext_against_tls_only_server", lambda: login(driver, tls, app, password, "plain"))
    # SCRAM
    if driver.name == "psycopg":
        check("require_channel_binding", lambda: login(driver, tls, app, password, "verify", channel_binding="require"))
        check(
            "require_scram_only",
            lambda: login(driver, tls, app, password, "verify", require_auth="scram-sha-256"),
        )
    # Errors a rotation must tell apart
    check("wrong_password_28P01", lambda: login(driver, tls, app, password + "x", "verify"))
    check("nologin_28000", lambda: login(driver, tls, "nologin", config["nologin_password"], "verify"))
    check("missing_database_3D000", lambda: login(driver, tls, app, password, "verify", database="nope"))

    def denied() -> Any:
        connection = driver.connect(tls, app, password, "verify")
        try:
            return driver.query(connection, "CREATE ROLE not_allowed")
        finally:
            connection.close()

    check("insufficient_privilege_42501", denied)

    # Binding and quoting
    def bound() -> Any:
        connection = driver.connect(tls, app, password, "verify")
        try:
            return driver.query(connection, "SELECT %s::text, %s::int", ("it's", 7))[0]
        finally:
            connection.close()

    def bound_utility() -> Any:
        connection = driver.connect(tls, app, password, "verify")
        try:
            return driver.query(connection, "ALTER ROLE app PASSWORD %s", (password,))
        finally:
            connection.close()

    check("bind_parameters", bound)
    check("bind_in_alter_role", bound_utility)

    def identifiers() -> Any:
        connection = driver.connect(tls, app, password, "verify")
        try:
            found = {}
            for name in config["identifiers"]:
                quoted = driver.quote_identifier(connection, name)
                cursor = connection.cursor()
                cursor.execute(f"SELECT 1 AS {quoted}")
                returned = cursor.description[0][0]
                found[name] = {"quoted": quoted, "round_trip": returned == name}
            return found
        finally:
            connection.close()

    check("identifiers", identifiers)

    # What a login costs, warm (the import and the CA bundle are loaded already)
    def timing(ca: str, **extra: Any) -> dict[str, float]:
        samples, cpu = [], []
        login(driver, tls, app, password, "verify", ca=ca, **extra)
        for _ in range(config["logins"]):
            started, cpu_started = time.perf_counter(), time.process_time()
            login(driver, tls, app, password, "verify", ca=ca, **extra)
            samples.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
        return {
            "median_ms": statistics.median(samples),
            "min_ms": min(samples),
            "max_ms": max(samples),
            "client_cpu_ms": statistics.median(cpu),
        }

    check("login_ms_run_ca", lambda: timing(tls["ca"]))
    check("login_ms_rds_bundle", lambda: timing(config["bundle"]))
    if driver.name == "pg8000":
        check("login_ms_run_ca_nodelay", lambda: timing(tls["ca"], nodelay=True))
        check("login_ms_rds_bundle_nodelay", lambda: timing(config["bundle"], nodelay=True))
    return results


def main() -> int:
    name, config = sys.argv[1], json.loads(sys.argv[2])
    driver: Driver = Pg8000() if name == "pg8000" else Psycopg()
    print(json.dumps(run(driver, config), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
