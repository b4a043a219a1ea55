"""A throw-away MySQL server for tests, the demo and the benchmarks, or the one
``ROTATOR_MYSQL_DSN`` names.

Debian 12 has no MySQL: ``scripts/ensure_mysql.sh`` keeps a Debian sid chroot with
``mysql-server-core`` outside the checkout (``/var/cache/rotator/mysql-sid``, or
``ROTATOR_MYSQL_CHROOT``). :class:`MySQLServer` runs that chroot's ``mysqld`` as a
child process (``chroot`` execs it, so the child *is* the server and SIGKILL or
SIGSTOP reach it), with its config, datadir, socket and certificates in a per-run
directory under the chroot's ``/tmp`` that is removed when the server is. The
datadir is a copy of a template made once by ``mysqld --initialize-insecure`` (~9 s)
and kept in the chroot beside the binaries that made it.

How it resembles Aurora MySQL 3 and where it cannot: MySQL 9.7 is the MySQL 8.0
family (roles at host ``'%'``, ``mysql.role_edges``/``mysql.default_roles``,
dynamic privileges, partial revokes, dual passwords, ``PASSWORD REQUIRE CURRENT``,
``FAILED_LOGIN_ATTEMPTS``) and runs with the binary log off as Aurora does by
default; but it has no ``mysql_native_password`` (Aurora 3's
default plugin: every account here uses ``caching_sha2_password``), no
``@@have_ssl``, and no Aurora-only roles or privileges (``rds_superuser_role``,
``AWS_LOAD_S3_ACCESS``, ``LOAD FROM S3``): tests create roles named like Aurora's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from tests.support.servers import SYSTEM_SCHEMAS, LocalServer, Pki, RootSql, ServerControlError, version_of

REPO = Path(__file__).resolve().parents[2]
CHROOT = Path(os.environ.get("ROTATOR_MYSQL_CHROOT", "/var/cache/rotator/mysql-sid"))
MYSQLD = "/usr/sbin/mysqld"  # inside the chroot
DSN_VARIABLE = "ROTATOR_MYSQL_DSN"
SYSTEM_USERS = frozenset({"root", "mysql.session", "mysql.sys", "mysql.infoschema"})
RUN_PREFIX = "rotator-run-"


class MySQLServer(LocalServer):
    """``with MySQLServer(tmp_path) as server:`` — a private mysqld from the chroot.

    ``base_dir`` only names the run: the files live under the chroot (the server
    cannot see the host's directories), in :attr:`base_dir`, removed on exit.
    """

    family = "mysql"
    system_users = SYSTEM_USERS
    section = "mysqld"

    def __init__(self, base_dir: Path, port: int | None = None, extra_config: str = "", *, tls: bool = True) -> None:
        prepare_chroot()
        # The pid in the name lets a later run remove what a killed one left behind.
        run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-{base_dir.name}-", dir=CHROOT / "tmp"))
        super().__init__(run_dir, port, extra_config, tls=tls)

    def inner(self, path: Path | None) -> str:
        return "/" + str(Path(str(path)).relative_to(CHROOT))

    def family_options(self) -> list[str]:
        options = [
            "mysqlx=OFF",
            "secure-file-priv=",  # its default directory does not exist in the chroot: it would not start
            "innodb_redo_log_capacity=16M",
            "auto_generate_certs=OFF",
            "skip-log-bin",  # as on Aurora MySQL, where binary logging is off unless turned on
            "innodb_flush_log_at_trx_commit=2",  # a throw-away server: no fsync per account change
        ]
        if not self.tls:
            options.append("tls_version=")  # no protocol at all: the server offers no TLS
        return options

    def initialize(self) -> None:
        shutil.copytree(template_datadir(), self.datadir, symlinks=True)
        # Each copy must get its own server_uuid (replication refuses equal ones).
        (self.datadir / "auto.cnf").unlink(missing_ok=True)

    def command(self) -> list[str]:
        return ["chroot", str(CHROOT), MYSQLD, f"--defaults-file={self.inner(self.config)}"]

    def __exit__(self, *exc: object) -> None:
        # The run directory goes with it: no clean shutdown needed (it takes seconds).
        self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)


def ensure_chroot() -> None:
    """Build the chroot when it is missing (a new machine): scripts/ensure_mysql.sh, ~1 minute."""
    if not (CHROOT / ".rotator-ready").exists():
        subprocess.run([str(REPO / "scripts" / "ensure_mysql.sh")], check=True)


def prepare_chroot() -> None:
    """/proc mounted (mysqld reads it), and the run directories of dead runs removed."""
    ensure_chroot()
    proc = CHROOT / "proc"
    if not (proc / "self").exists():
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
    for run_dir in (CHROOT / "tmp").glob(f"{RUN_PREFIX}*"):
        owner = run_dir.name.removeprefix(RUN_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(run_dir, ignore_errors=True)


def binary_version() -> str | None:
    """The chroot's mysqld version (None: the chroot is not built yet)."""
    if not (CHROOT / ".rotator-ready").exists():
        return None
    done = subprocess.run(["chroot", str(CHROOT), MYSQLD, "--version"], capture_output=True, text=True, check=False)
    return version_of(done.stdout)


def template_datadir() -> Path:
    """A freshly initialised datadir (root@localhost, no password), made once per mysqld
    version and kept in the chroot; built aside and renamed, so a run that dies half
    way (or a concurrent run) never leaves a half-made template behind."""
    version = binary_version() or "unknown"
    template = CHROOT / "var" / "lib" / f"rotator-template-{version}"
    if template.exists():
        return template
    building = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-template-", dir=CHROOT / "tmp"))
    inner_data = "/" + str((building / "data").relative_to(CHROOT))
    done = subprocess.run(
        [
            "chroot",
            str(CHROOT),
            MYSQLD,
            "--no-defaults",
            "--initialize-insecure",
            "--user=root",
            f"--datadir={inner_data}",
            "--innodb-redo-log-capacity=16M",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mysqld --initialize-insecure failed:\n{done.stdout}{done.stderr}")
    # Certificates made by --initialize would be served when no ssl_* option is given.
    for name in ("ca.pem", "ca-key.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem"):
        (building / "data" / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another run finished first: use its template
        (building / "data").rename(template)
    shutil.rmtree(building, ignore_errors=True)
    return template


# -- a MySQL of your own: ROTATOR_MYSQL_DSN -------------------------------------------


class ExternalMySQL(RootSql):
    """The server ``ROTATOR_MYSQL_DSN`` names, e.g.
    ``mysql://root:pw@127.0.0.1:3307/?ssl_ca=/path/ca.pem``: credentials that can
    create users and grant anything, and the CA that verifies the server's certificate.

    The suite did not start it, so it cannot crash or restart it (cases that do are
    skipped), and it keeps every account and schema that existed when it first
    connected: reset_server drops only what the tests made.
    """

    family = "mysql"
    controllable = False

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        query = parse_qs(parts.query)
        if parts.scheme != "mysql" or not parts.hostname or not parts.username or "ssl_ca" not in query:
            raise ValueError(f"{DSN_VARIABLE} must look like mysql://USER:PASSWORD@HOST:PORT/?ssl_ca=/path/ca.pem")
        self.host = parts.hostname
        self.port = parts.port or 3306
        self.user = unquote(parts.username)
        self._password = unquote(parts.password or "")
        self.pki = Pki(Path(query["ssl_ca"][0]))
        if not self.pki.ca_file.exists():
            raise ValueError(f"{DSN_VARIABLE}: CA file {self.pki.ca_file} does not exist")
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(self.host, self.port, proto=socket.IPPROTO_TCP)}
        if not all(address.startswith("127.") or address == "::1" for address in addresses):
            # The suite's socket guard: tests talk to loopback only (use a tunnel).
            raise ValueError(f"{DSN_VARIABLE}: {self.host} must resolve to a loopback address, not {addresses}")
        self.base_dir = Path(tempfile.mkdtemp(prefix="rotator-external-mysql-"))
        self.system_users: frozenset[str] = frozenset()
        self.system_schemas: frozenset[str] = frozenset()

    def __repr__(self) -> str:  # never the password
        return f"ExternalMySQL({self.user}@{self.host}:{self.port})"

    def root(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self._password,
            ssl={"ca": str(self.pki.ca_file)},
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.base_dir, ignore_errors=True)

    def start(self, timeout: float = 0.0) -> None:
        """Connect once and remember what must survive reset_server."""
        if not self.system_users:
            self.system_users = SYSTEM_USERS | {user for (user,) in self.sql("SELECT DISTINCT User FROM mysql.user")}
            self.system_schemas = SYSTEM_SCHEMAS | {name for (name,) in self.sql("SHOW DATABASES")}

    @property
    def running(self) -> bool:
        return True

    @property
    def pid(self) -> int:
        raise ServerControlError(f"{DSN_VARIABLE}: the suite did not start this server")

    def stop(self, timeout: float = 0.0) -> None:
        raise ServerControlError(f"{DSN_VARIABLE}: the suite cannot stop this server")

    def kill(self) -> None:
        raise ServerControlError(f"{DSN_VARIABLE}: the suite cannot crash this server")

    def restart(self) -> None:
        raise ServerControlError(f"{DSN_VARIABLE}: the suite cannot restart this server")


def external_dsn() -> str | None:
    return os.environ.get(DSN_VARIABLE) or None
