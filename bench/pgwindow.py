"""The single-user window on PostgreSQL, measured (docs/postgresql.md, "Single user").

PostgreSQL keeps one password per role (no dual passwords): from the commit of
``ALTER ROLE … PASSWORD`` on, the old password is refused. This measures, on private
PostgreSQL 15 and 18 servers (tests/support/postgresql.py), with pg8000:

- how long the statement takes, by the user itself and by an Aurora-like master user,
  with a verifier computed by the client (the password never in the statement) and with
  the password in clear (the server computes SCRAM, 4096 iterations);
- when the change applies: inside an open transaction nothing changes for new logins;
  right after the commit the new password logs in and the old one is refused;
- what happens to sessions that were open: they are never re-authenticated and keep
  working (queries, ``DISCARD ALL``);
- the window under load: W clients logging in again and again with the password they
  hold; the admin changes it; each client learns the new one ``--delay`` ms later (what
  finishSecret and the client's re-read take): the refused logins in between.

    python -m bench.pgwindow                  # ~30 s
    python -m bench.pgwindow --changes 50 --clients 8 --delay 200

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pg8000.dbapi

from bench.common import RESULTS, load
from bench.report import Table
from tests.support.postgresql import MAJORS, PostgreSQLServer, connect, password_literal
from tests.support.world import new_password


def timed(action: Any) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


def as_master(server: PostgreSQLServer, master_password: str, statement: str) -> None:
    """Roles are made by the master, as on Aurora: on 16+ it may change only the passwords
    of roles it has ADMIN OPTION on, which a role's creator gets."""
    admin = connect(server, "master", master_password)
    admin.autocommit = True
    try:
        admin.cursor().execute(statement)
    finally:
        admin.close()


def logs_in(server: PostgreSQLServer, user: str, password: str) -> bool:
    try:
        connect(server, user, password).close()
        return True
    except pg8000.dbapi.DatabaseError as exc:
        if exc.args and isinstance(exc.args[0], dict) and exc.args[0].get("C") == "28P01":
            return False
        raise


def measure_statement(server: PostgreSQLServer, changes: int, master_password: str) -> dict[str, Any]:
    """Milliseconds of ALTER ROLE … PASSWORD, by the user and by the master, two ways."""
    password = new_password()
    as_master(server, master_password, f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
    own = connect(server, "app", password)
    own.autocommit = True
    admin = connect(server, "master", master_password)
    admin.autocommit = True
    samples: dict[str, list[float]] = {"by the user, verifier": [], "by the user, clear": []}
    samples.update({"by the master, verifier": [], "by the master, clear": []})
    for _ in range(changes):
        for who, session in (("by the user", own), ("by the master", admin)):
            # The verifier's PBKDF2 runs in the client before the statement: not in the figure.
            statement = f"ALTER ROLE app PASSWORD {password_literal(new_password())}"
            samples[f"{who}, verifier"].append(timed(lambda s=session, q=statement: s.cursor().execute(q)))
            clear = f"ALTER ROLE app PASSWORD '{new_password()}'"
            samples[f"{who}, clear"].append(timed(lambda s=session, q=clear: s.cursor().execute(q)))
    own.close()
    admin.close()
    server.sql("DROP ROLE app")
    return {name: {"median_ms": statistics.median(v), "max_ms": max(v), "n": len(v)} for name, v in samples.items()}


def measure_visibility(server: PostgreSQLServer, master_password: str) -> dict[str, Any]:
    """When new logins see the change, and what open sessions do."""
    old, new = new_password(), new_password()
    as_master(server, master_password, f"CREATE ROLE app LOGIN PASSWORD {password_literal(old)}")
    open_sessions = [connect(server, "app", old) for _ in range(3)]
    for session in open_sessions:
        session.autocommit = True
    admin = connect(server, "master", master_password)
    cursor = admin.cursor()  # a transaction: pg8000's DB-API is not autocommit by default
    cursor.execute(f"ALTER ROLE app PASSWORD {password_literal(new)}")
    in_transaction = {"old": logs_in(server, "app", old), "new": logs_in(server, "app", new)}
    committed_at = time.perf_counter()
    admin.commit()
    first_new = logs_in(server, "app", new)
    first_new_ms = (time.perf_counter() - committed_at) * 1000
    after_commit = {"new": first_new, "old": logs_in(server, "app", old)}
    still_working = 0
    for session in open_sessions:
        session_cursor = session.cursor()
        session_cursor.execute("DISCARD ALL")
        session_cursor.execute("SELECT count(*) FROM pg_stat_activity")
        still_working += int(bool(session_cursor.fetchone()))
        session.close()
    admin.close()
    server.sql("DROP ROLE app")
    return {
        "before commit (change in an open transaction)": in_transaction,
        "right after commit": after_commit,
        "ms from commit to the first login with the new password (login included)": first_new_ms,
        "sessions open before the change that still work after it": f"{still_working}/{len(open_sessions)}",
    }


def measure_window(server: PostgreSQLServer, master_password: str, clients: int, delay_ms: float) -> dict[str, Any]:
    """W clients log in again and again with the password they hold; the master changes it;
    each client is told the new password ``delay_ms`` later."""
    password = new_password()
    as_master(server, master_password, f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
    held = {"password": password}
    stop = threading.Event()
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            ok = logs_in(server, "app", held["password"])
            with lock:
                counts["ok" if ok else "refused"] += 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    with lock:
        before = dict(counts)
    new = new_password()
    admin = connect(server, "master", master_password)
    admin.autocommit = True
    admin.cursor().execute(f"ALTER ROLE app PASSWORD {password_literal(new)}")
    time.sleep(delay_ms / 1000)
    held["password"] = new
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(10)
    admin.close()
    server.sql("DROP ROLE app")
    return {
        "clients": clients,
        "delay_ms": delay_ms,
        "logins before the change": before["ok"],
        "refused logins": counts["refused"],
        "logins in all": counts["ok"] + counts["refused"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=30, help="password changes timed per way")
    parser.add_argument("--clients", type=int, default=4, help="clients logging in during the window section")
    parser.add_argument("--delay", type=float, default=100.0, help="ms until the clients hold the new password")
    parser.add_argument("--json", type=Path, default=RESULTS / "pgwindow.json")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"load": load()}
    with tempfile.TemporaryDirectory(prefix="rotator-pgwindow-") as tmp:
        for major in MAJORS:
            with PostgreSQLServer(Path(tmp) / f"pg{major}", major=major) as server:
                master_password = new_password()
                server.rds_master("master", master_password)
                report[f"PostgreSQL {server.version}"] = {
                    "statement": measure_statement(server, args.changes, master_password),
                    "visibility": measure_visibility(server, master_password),
                    "window": measure_window(server, master_password, args.clients, args.delay),
                }
    report["load_after"] = load()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    for name, figures in report.items():
        if not name.startswith("PostgreSQL"):
            continue
        table = Table(f"single user on {name}", ["figure", "value"])
        for way, value in figures["statement"].items():
            table.add(f"ALTER ROLE … PASSWORD {way}", f"{value['median_ms']:.2f} ms median, {value['max_ms']:.2f} max")
        for figure, value in figures["visibility"].items():
            table.add(
                figure,
                json.dumps(value)
                if isinstance(value, dict)
                else (f"{value:.1f}" if isinstance(value, float) else value),
            )
        window = figures["window"]
        table.add(
            f"window: {window['clients']} clients told {window['delay_ms']:.0f} ms after the commit",
            f"{window['refused logins']} refused of {window['logins in all']} logins",
        )
        print(table.render(), end="\n\n")
    print(f"load average before/after: {report['load']} / {report['load_after']}; JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
