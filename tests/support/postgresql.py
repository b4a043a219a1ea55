"""Throw-away PostgreSQL servers for tests (and, once rotator has a PostgreSQL backend,
the demo, the bench and the soak), in two versions either side of PostgreSQL 16's
change to role membership (``GRANT … WITH INHERIT/SET/ADMIN``; CREATEROLE no longer
implies power over every role):

- **15**: Debian 12's own ``postgresql-15`` (``/usr/lib/postgresql/15/bin``);
- **18**: Debian sid's ``postgresql-18`` in a sid chroot of its own
  (``/var/cache/rotator/postgresql-sid``, or ``ROTATOR_POSTGRESQL_CHROOT``), which
  ``scripts/ensure_postgresql.sh`` builds (the MySQL chroot is not touched).

``postgres`` refuses to run as root, and the suite runs as root: every server runs as
the ``postgres`` system user of its installation (the host's, or the chroot's), with
``setpriv``/``chroot --userspec`` *exec*-ing it, so the child process is the postmaster
itself. Its backends are its direct children, each in a process group of its own
(PostgreSQL calls setsid() in every child), so the server is "the postmaster and its
children": :meth:`PostgreSQLServer.kill` SIGKILLs all of them at once (a crashed
instance; the postmaster alone would let its backends end their sessions cleanly) and
:meth:`~PostgreSQLServer.pause` SIGSTOPs all of them (a frozen instance; stopping the
postmaster alone would leave open sessions working). :meth:`~PostgreSQLServer.stop` is a *fast*
shutdown (SIGINT: sessions are ended, then a clean checkpoint), PostgreSQL's equivalent
of mysqld's SIGTERM; its SIGTERM waits for every client to leave.

Each server has its own run directory (datadir, Unix socket, certificates, log) owned
by that user, outside pytest's tmp (which the postgres user cannot enter), removed on
exit; dead runs' directories are removed by the next run (the pid is in the name). The
datadir is a copy of a template made by ``initdb`` once per session and installation.

Authentication, as on Aurora/RDS PostgreSQL with ``rds.force_ssl=1``:

- TCP on 127.0.0.1 only: ``hostssl all all 127.0.0.1/32 scram-sha-256`` and an explicit
  ``hostnossl … reject`` (a plaintext login gets 28000 from pg_hba, whatever the password);
  ``password_encryption = scram-sha-256``; the server certificate names IP 127.0.0.1 only
  (signed by a CA made for the run: :func:`tests.support.servers.make_pki`), so a client
  that verifies the certificate really verifies it and a client that names the server
  ``localhost`` fails. ``tls=False`` makes a server that offers no TLS at all (``ssl=off``,
  ``host … scram-sha-256``), to prove a client refuses to go on without it.
- The test's own superuser ``root`` (initdb's bootstrap superuser, the suite's OS user)
  logs in over the Unix socket by ``peer`` authentication, no password: only root, only
  the socket. :meth:`PostgreSQLServer.rds_master` makes an Aurora-like master user
  (``CREATEDB CREATEROLE``, member of an ``rds_superuser`` role; no superuser).

How it differs from Aurora: no ``rds_superuser`` with its real privileges (the role is
made by the test, with what a test gives it), no ``rds.*`` settings, no ``aws_*`` roles,
no restricted password management (``rds_password``); a real superuser exists.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import pg8000.dbapi
import scramp

from tests.support.servers import LocalServer, free_port, make_pki

REPO = Path(__file__).resolve().parents[2]
CHROOT = Path(os.environ.get("ROTATOR_POSTGRESQL_CHROOT", "/var/cache/rotator/postgresql-sid"))
RUN_PREFIX = "rotator-pg-"
ROOT_USER = "root"
SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "public"})


@dataclass(frozen=True)
class Installation:
    """Where one PostgreSQL major version's binaries are and how a process is run as its
    ``postgres`` user: on the host (``root`` is None) or in a chroot."""

    major: int
    root: Path | None  # the chroot; None: the host

    @property
    def name(self) -> str:
        return f"postgresql{self.major}"

    @property
    def bindir(self) -> str:
        """As the server process sees it."""
        return f"/usr/lib/postgresql/{self.major}/bin"

    @property
    def installed(self) -> bool:
        marker_ok = self.root is None or (self.root / ".rotator-ready").exists()
        return marker_ok and self.host_path(Path(self.bindir) / "postgres").exists()

    def host_path(self, inner: Path | str) -> Path:
        """``inner`` (as the server sees it) as the host sees it."""
        return Path(inner) if self.root is None else self.root / str(inner).lstrip("/")

    def inner(self, path: Path) -> str:
        """A host path inside the installation, as the server sees it."""
        return str(path) if self.root is None else "/" + str(path.relative_to(self.root))

    @property
    def tmp(self) -> Path:
        """Where run directories go (the host's /tmp, or the chroot's)."""
        return self.host_path("/tmp")

    @functools.cached_property
    def ids(self) -> tuple[int, int]:
        """The uid and gid of the installation's ``postgres`` user."""
        if self.root is None:
            entry = pwd.getpwnam("postgres")
            return entry.pw_uid, entry.pw_gid
        for line in (self.root / "etc" / "passwd").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "postgres":
                return int(fields[2]), int(fields[3])
        raise RuntimeError(f"no postgres user in {self.root}/etc/passwd")

    def as_postgres(self, program: str, *args: str) -> list[str]:
        """The argv that *execs* ``program`` (in bindir) as the postgres user: no wrapper
        process stays between the suite and the server."""
        uid, gid = self.ids
        binary = f"{self.bindir}/{program}"
        if self.root is None:
            return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", binary, *args]
        return ["chroot", f"--userspec={uid}:{gid}", "--groups=", str(self.root), binary, *args]

    def prepare(self) -> None:
        """Binaries present, /proc in the chroot mounted, dead runs' directories removed."""
        ensure_installed()
        if self.root is not None and not (self.root / "proc" / "self").exists():
            subprocess.run(["mount", "-t", "proc", "proc", str(self.root / "proc")], check=True)
        for run_dir in self.tmp.glob(f"{RUN_PREFIX}*"):
            owner = run_dir.name.removeprefix(RUN_PREFIX).split("-", 1)[0]
            if owner.isdigit() and not Path(f"/proc/{owner}").exists():
                shutil.rmtree(run_dir, ignore_errors=True)

    def run_dir(self, label: str) -> Path:
        """A new directory for one server (or template), owned by the postgres user."""
        made = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-{self.major}-{label}-", dir=self.tmp))
        os.chown(made, *self.ids)
        return made


INSTALLATIONS = {
    15: Installation(15, None),
    18: Installation(18, CHROOT),
}
MAJORS = tuple(INSTALLATIONS)


def ensure_installed() -> None:
    """scripts/ensure_postgresql.sh when a version is missing (a new machine: ~2 minutes)."""
    if not all(installation.installed for installation in INSTALLATIONS.values()):
        subprocess.run([str(REPO / "scripts" / "ensure_postgresql.sh")], check=True)


def binary_version(major: int) -> str | None:
    """``15.20`` (None: not installed yet)."""
    installation = INSTALLATIONS[major]
    if not installation.installed:
        return None
    binary = f"{installation.bindir}/postgres"
    command = [binary] if installation.root is None else ["chroot", str(installation.root), binary]
    done = subprocess.run([*command, "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"\) (\d+\.\d+)", done.stdout)  # "postgres (PostgreSQL) 15.20 (Debian …)"
    return found.group(1) if found else "unknown"


@functools.cache
def template_datadir(major: int) -> Path:
    """An ``initdb`` datadir for this session (bootstrap superuser ``root``), copied for each
    server: a copy takes milliseconds, initdb a second or more. Removed at exit."""
    installation = INSTALLATIONS[major]
    installation.prepare()
    building = installation.run_dir("template")
    atexit.register(shutil.rmtree, building, True)
    data = building / "data"
    done = subprocess.run(
        installation.as_postgres(
            "initdb",
            "--pgdata",
            installation.inner(data),
            "--username",
            ROOT_USER,
            "--auth-local=peer",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # a throw-away server: no fsync of the new files
            "--no-instructions",
        ),
        capture_output=True,
        text=True,
        check=False,
        cwd="/",  # the postgres user cannot read the suite's working directory
    )
    if done.returncode != 0:
        raise RuntimeError(f"initdb ({major}) failed:\n{done.stdout}{done.stderr}")
    return data


class PostgreSQLServer(LocalServer):
    """``with PostgreSQLServer(tmp_path, major=15) as server:`` — a private server.

    ``base_dir`` only names the run: the files live in a run directory of the
    installation's (:attr:`base_dir`), removed on exit. ``server.root()`` is a
    superuser connection over the Unix socket (pg8000's DB-API, autocommit);
    ``server.sql(statement, params)`` runs one statement (``%s`` placeholders) in
    ``database`` (default ``postgres``).
    """

    family = "postgresql"
    system_users = frozenset({ROOT_USER})  # and every pg_* role: see made_roles()
    system_schemas = SYSTEM_SCHEMAS
    section = ""  # no option file of MySQL's kind
    # No socket yet, or 57P03 "the database system is starting up".
    not_ready = (pg8000.dbapi.InterfaceError, pg8000.dbapi.DatabaseError)
    # Its own session (a Ctrl-C at the terminal reaches pytest, not the server), and a
    # working directory the postgres user may enter.
    popen_options: ClassVar[dict[str, Any]] = {"start_new_session": True, "cwd": "/"}

    def __init__(
        self,
        base_dir: Path,
        port: int | None = None,
        extra_config: str = "",
        *,
        tls: bool = True,
        major: int = 15,
    ) -> None:
        self.installation = INSTALLATIONS[major]
        self.major = major
        self.installation.prepare()
        run_dir = self.installation.run_dir(base_dir.name)
        super().__init__(run_dir, port or free_port(), extra_config, tls=tls)
        self.socket_dir = run_dir
        self.socket = run_dir / f".s.PGSQL.{self.port}"
        self.log = run_dir / "postgresql.log"
        self.config = self.datadir / "postgresql.conf"

    def __repr__(self) -> str:
        return f"PostgreSQLServer({self.major}, 127.0.0.1:{self.port})"

    @property
    def name(self) -> str:
        """``postgresql15``: the installation, as a test id or a fixture names it."""
        return self.installation.name

    # -- lifecycle -------------------------------------------------------------

    def install(self) -> None:
        self.socket = self.socket_dir / f".s.PGSQL.{self.port}"  # named by the port, which start() may change
        if not self.datadir.exists():
            subprocess.run(["cp", "-a", str(template_datadir(self.major)), str(self.datadir)], check=True)
        uid, gid = self.installation.ids
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.installation.inner(self.socket_dir)}'",
            "password_encryption": "'scram-sha-256'",
            "max_connections": "200",
            "shared_buffers": "16MB",
            # A throw-away server: no fsync. Commits still write their WAL to the kernel
            # before they return (synchronous_commit stays on), so a SIGKILL loses no
            # committed transaction, as with mysqld's innodb_flush_log_at_trx_commit=2.
            "fsync": "off",
            "full_page_writes": "off",
            # Dynamic shared memory in files of the datadir: the chroot has no /dev/shm mount.
            "dynamic_shared_memory_type": "mmap",
            "timezone": "'UTC'",
            "log_timezone": "'UTC'",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "ssl": "off",
        }
        if self.tls:
            key = self.base_dir / "server.key"
            cert = self.base_dir / "server.crt"
            assert self.pki.cert_file is not None and self.pki.key_file is not None
            shutil.copyfile(self.pki.cert_file, cert)
            shutil.copyfile(self.pki.key_file, key)
            for path in (key, cert):
                os.chown(path, uid, gid)
            key.chmod(0o600)  # postgres refuses a key that others can read
            settings.update(
                {
                    "ssl": "on",
                    "ssl_cert_file": f"'{self.installation.inner(cert)}'",
                    "ssl_key_file": f"'{self.installation.inner(key)}'",
                }
            )
        text = "".join(f"{name} = {value}\n" for name, value in settings.items()) + self.extra_config
        self._write_owned(self.config, text)
        self._write_owned(self.datadir / "pg_hba.conf", self.hba())

    def hba(self) -> str:
        """Who may log in how: root by peer on the socket; everyone else over TLS by SCRAM."""
        lines = [f"local all {ROOT_USER} peer"]
        if self.tls:
            lines += ["hostssl all all 127.0.0.1/32 scram-sha-256", "hostnossl all all 127.0.0.1/32 reject"]
        else:
            lines += ["host all all 127.0.0.1/32 scram-sha-256"]
        return "".join(f"{line}\n" for line in lines)

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        os.chown(path, *self.installation.ids)

    def command(self) -> list[str]:
        return self.installation.as_postgres("postgres", "-D", self.installation.inner(self.datadir))

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT): open sessions are ended, then a clean checkpoint."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._process = None

    def kill(self) -> None:
        """Crash the server: SIGKILL to the postmaster and every backend at once."""
        if self._process and self._process.poll() is None:
            everyone = self._processes()
            for pid in everyone:
                signal_quietly(pid, signal.SIGKILL)
            self._process.wait()
            wait_for_exit(everyone)
        self._process = None

    def pause(self) -> None:
        """Freeze every process of the server (SIGSTOP): TCP connects still succeed (the
        kernel accepts them), but nothing answers, on new or open sessions."""
        for pid in self._processes():
            signal_quietly(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in reversed(self._processes()):  # the postmaster last
            signal_quietly(pid, signal.SIGCONT)

    def _processes(self) -> list[int]:
        """The postmaster (first, stopped so that it forks no one new) and its children."""
        if self._process is None:
            return []
        postmaster = self._process.pid
        signal_quietly(postmaster, signal.SIGSTOP)
        return [postmaster, *children(postmaster)]

    def __enter__(self) -> Self:
        self.install()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # The run directory goes with it: no clean shutdown needed.
        self.kill()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    # -- access ----------------------------------------------------------------

    def root(self, database: str = "postgres", **kwargs: Any) -> pg8000.dbapi.Connection:  # type: ignore[override]
        """The superuser ``root`` over the Unix socket (peer authentication), autocommit."""
        connection = pg8000.dbapi.connect(
            user=ROOT_USER, database=database, unix_sock=str(self.socket), timeout=5, **kwargs
        )
        connection.autocommit = True
        return connection

    def sql(
        self, statement: str, params: tuple[Any, ...] | None = None, *, database: str = "postgres"
    ) -> list[tuple[Any, ...]]:
        connection = self.root(database)
        try:
            cursor = connection.cursor()
            cursor.execute(statement, params or ())
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            connection.close()

    @property
    def version(self) -> str:
        return str(self.sql("SHOW server_version")[0][0]).split()[0]

    @property
    def server_version_num(self) -> int:
        return int(self.sql("SHOW server_version_num")[0][0])

    # -- test data ---------------------------------------------------------------

    def made_roles(self) -> list[str]:
        """Every role a test made (not root, not the predefined pg_* roles)."""
        rows = self.sql("SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname")
        return [str(name) for (name,) in rows if name not in self.system_users]

    def reset(self) -> None:
        """Drop every database and role a test made, and what those roles own or were granted
        in the databases that stay (``DROP OWNED`` in each)."""
        for (name,) in self.sql("SELECT datname FROM pg_database"):
            if name not in SYSTEM_DATABASES:
                self.sql(f"DROP DATABASE {quote_ident(str(name))} WITH (FORCE)")
        roles = self.made_roles()
        if not roles:
            return
        listed = ", ".join(quote_ident(role) for role in roles)
        for database in ("postgres", "template1"):
            self.sql(f"DROP OWNED BY {listed} CASCADE", database=database)
        for role in roles:
            self.sql(f"DROP ROLE {quote_ident(role)}")

    def rds_master(self, name: str, password: str) -> None:
        """A master user as Aurora/RDS PostgreSQL makes it: ``LOGIN NOSUPERUSER INHERIT
        CREATEDB CREATEROLE``, a member of ``rds_superuser`` (made here NOLOGIN with the
        predefined roles RDS gives it on every version: pg_monitor, pg_signal_backend)."""
        if not self.sql("SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser'"):
            self.sql("CREATE ROLE rds_superuser NOLOGIN")
            self.sql("GRANT pg_monitor, pg_signal_backend TO rds_superuser")
        self.sql(
            f"CREATE ROLE {quote_ident(name)} LOGIN NOSUPERUSER INHERIT CREATEDB CREATEROLE "
            f"PASSWORD {password_literal(password)}"
        )
        # RDS grants it WITH ADMIN OPTION: the master can make other rds_superusers.
        self.sql(f"GRANT rds_superuser TO {quote_ident(name)} WITH ADMIN OPTION")


def signal_quietly(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _stat(pid_dir: Path) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces): state, ppid, …"""
    return (pid_dir / "stat").read_text().rsplit(")", 1)[1].split()


def children(parent: int) -> list[int]:
    found = []
    for pid_dir in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(_stat(pid_dir)[1]) == parent:
                found.append(int(pid_dir.name))
    return found


def wait_for_exit(pids: list[int], timeout: float = 10.0) -> None:
    """Until none of ``pids`` lives: a new postmaster refuses to start while an old backend
    still holds the shared memory. (A zombie holds nothing: it counts as gone.)"""
    deadline = time.monotonic() + timeout
    pending = set(pids)
    while pending and time.monotonic() < deadline:
        for pid in list(pending):
            try:
                if _stat(Path(f"/proc/{pid}"))[0] == "Z":
                    pending.discard(pid)
            except (OSError, IndexError):
                pending.discard(pid)
        if pending:
            time.sleep(0.02)


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (``pg_authid.rolpassword``),
    computed here as libpq's PQencryptPasswordConn does: ``ALTER ROLE … PASSWORD`` takes it
    as already encrypted, so the password itself never reaches the server's statement text
    (utility statements take no bind parameters: the value must be written into the SQL)."""
    salt, stored_key, server_key, _ = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info(
        password, iteration_count=iterations, salt=os.urandom(16)
    )
    b64 = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def password_literal(password: str) -> str:
    """``'SCRAM-SHA-256$…'``: the verifier as a SQL literal (base64 holds no quote)."""
    return "'" + scram_verifier(password) + "'"


def quote_ident(name: str) -> str:
    """A PostgreSQL identifier, quoted (test data only: rotator quotes in its own sql module)."""
    return '"' + name.replace('"', '""') + '"'


def connect(server: PostgreSQLServer, user: str, password: str, *, database: str = "postgres", **kwargs: Any) -> Any:
    """A client login over TCP with verify-full TLS against the server's CA (pg8000), on a
    socket with TCP_NODELAY: pg8000's own leaves Nagle's algorithm on, and each login then
    waits ~40 ms for delayed ACKs (bench/pgdriver.py)."""
    sock = socket.create_connection((server.host, server.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return pg8000.dbapi.connect(
            user=user,
            password=password,
            host=server.host,  # the name TLS verifies
            database=database,
            sock=sock,
            ssl_context=_context(str(server.pki.ca_file)),
            timeout=5,
            **kwargs,
        )
    except BaseException:
        sock.close()
        raise


@functools.cache
def _context(ca_file: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


__all__ = [
    "CHROOT",
    "INSTALLATIONS",
    "MAJORS",
    "PostgreSQLServer",
    "binary_version",
    "connect",
    "ensure_installed",
    "make_pki",
    "quote_ident",
    "template_datadir",
]
