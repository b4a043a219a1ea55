"""What every throw-away database server of the tests shares, whatever its family.

:class:`DatabaseServer` is the small protocol that fixtures, :class:`~tests.support.world.World`,
the fault matrix, the demo, the bench and the soak depend on; MariaDB
(:mod:`tests.support.mariadb`) and MySQL (:mod:`tests.support.mysql`) implement it.
:class:`LocalServer` is the lifecycle both private servers share: a child process of
this one (so a test can SIGKILL or SIGSTOP it), its own datadir, socket, port on
127.0.0.1 and a freshly generated CA whose server certificate names IP 127.0.0.1
only, so a client that verifies the certificate really verifies it.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FAMILIES = ("mariadb", "mysql")
# The PostgreSQL servers (tests/support/postgresql.py), one per major version either side
# of PostgreSQL 16's membership change. Not yet in FAMILIES: rotator has no PostgreSQL
# backend (issue 22). Switching every database test on for them is this one change:
# FAMILIES = ("mariadb", "mysql", *POSTGRESQL)
POSTGRESQL = ("postgresql15", "postgresql18")
SYSTEM_SCHEMAS = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    # None for a server the suite did not start (ROTATOR_MYSQL_DSN): only its CA is known.
    cert_file: Path | None = None
    key_file: Path | None = None


def make_pki(directory: Path, common_name: str = "rotator test CA") -> Pki:
    """A CA and a server certificate for 127.0.0.1 signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            # IP only: a client reaching the same server as "localhost" must fail verification.
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem")
    pki.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    assert pki.cert_file is not None and pki.key_file is not None
    pki.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return pki


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def version_of(text: str) -> str:
    """``10.11.19`` out of ``mariadbd Ver 10.11.19-MariaDB-0+deb12u1`` or ``9.7.4-2``."""
    found = re.search(r"(\d+\.\d+\.\d+)", text)
    return found.group(1) if found else "unknown"


class _PortTakenError(RuntimeError):
    """The server could not bind its port: something else took it first."""


class ServerControlError(RuntimeError):
    """The server was not started by the suite: it cannot be stopped, crashed or restarted."""


class DatabaseServer(Protocol):
    """A server a test can log in to as root and (when ``controllable``) crash and restart."""

    host: str
    port: int
    pki: Pki
    base_dir: Path  # a directory of the host's for a test's scratch files (CA bundles)

    @property
    def family(self) -> str:
        """ "mariadb" or "mysql": which SQL the test data is written in."""
        ...

    @property
    def system_users(self) -> frozenset[str]:
        """Accounts reset_server never drops."""
        ...

    @property
    def system_schemas(self) -> frozenset[str]:
        """Schemas reset_server never drops."""
        ...

    @property
    def controllable(self) -> bool:
        """False: start/stop/kill/restart raise ServerControlError (the suite did not start it)."""
        ...

    @property
    def version(self) -> str: ...

    @property
    def running(self) -> bool: ...

    @property
    def pid(self) -> int: ...

    def start(self, timeout: float = ...) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...

    def kill(self) -> None: ...

    def restart(self) -> None: ...

    def root(self, **kwargs: Any) -> pymysql.connections.Connection[Any]: ...

    def sql(self, statement: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class RootSql:
    """``sql()`` and ``version`` over whatever ``root()`` connects to."""

    def root(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        raise NotImplementedError

    def sql(self, statement: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        connection = self.root()
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        finally:
            connection.close()

    @property
    def version(self) -> str:
        return version_of(str(self.sql("SELECT VERSION()")[0][0]))


class LocalServer(RootSql):
    """A private server run as a child process; subclasses say how to install and run it.

    ``with Server(tmp_path) as server:`` — root over the socket, TLS on TCP.
    ``tls=False`` starts it without any certificate (a server that offers no TLS).
    ``extra_config`` is appended to its option file (``key=value`` lines).
    """

    family: ClassVar[str]
    system_users: ClassVar[frozenset[str]]
    section: ClassVar[str]  # the option file's group: [mariadbd] or [mysqld]
    system_schemas = SYSTEM_SCHEMAS
    controllable = True
    # What root() raises while the server is still starting up: start() tries again.
    not_ready: ClassVar[tuple[type[Exception], ...]] = (pymysql.err.MySQLError,)
    popen_options: ClassVar[dict[str, Any]] = {}  # how the server's process is started

    def __init__(self, base_dir: Path, port: int | None = None, extra_config: str = "", *, tls: bool = True) -> None:
        self.base_dir = base_dir
        self.extra_config = extra_config
        self.tls = tls
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.socket = base_dir / f"{self.family}.sock"
        self.datadir = base_dir / "data"
        self.config = base_dir / "my.cnf"
        self.log = base_dir / f"{self.family}.log"
        self.pki = make_pki(base_dir / "pki")
        self._process: subprocess.Popen[bytes] | None = None
        self._started = False  # once up, a restart keeps the port

    # -- what differs per family -------------------------------------------------

    def initialize(self) -> None:
        """Make the datadir (the system tables, root without a password on the socket)."""
        raise NotImplementedError

    def command(self) -> list[str]:
        """The argv that runs the server in the foreground with ``self.config``."""
        raise NotImplementedError

    def family_options(self) -> list[str]:
        return []

    def inner(self, path: Path | None) -> str:
        """``path`` as the server process sees it."""
        return str(path)

    # -- lifecycle -------------------------------------------------------------

    def install(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        options = [
            f"datadir={self.inner(self.datadir)}",
            f"socket={self.inner(self.socket)}",
            f"port={self.port}",
            "bind-address=127.0.0.1",
            "user=root",
            "skip-name-resolve",
            "innodb_buffer_pool_size=32M",
            "max_connections=300",
            f"pid-file={self.inner(self.base_dir / (self.family + '.pid'))}",
            *self.tls_options(),
            *self.family_options(),
        ]
        self.config.write_text(f"[{self.section}]\n" + "".join(f"{line}\n" for line in options) + self.extra_config)
        if not self.datadir.exists():
            self.initialize()

    def tls_options(self) -> list[str]:
        """The server's TLS settings (none: it offers no TLS)."""
        if not self.tls:
            return []
        files = {"ca": self.pki.ca_file, "cert": self.pki.cert_file, "key": self.pki.key_file}
        return [f"ssl_{name}={self.inner(path)}" for name, path in files.items()]

    def start(self, timeout: float = 60.0) -> None:
        if self.running:
            return
        if not self.datadir.exists():
            self.install()
        # free_port() only found a port free a moment ago: under pytest-xdist another
        # worker's server (or anything else) may have bound it since. A new server takes
        # another; a restarted one keeps its port (the test's secrets name it).
        for _attempt in range(0 if self._started else 3):
            try:
                self._start(timeout)
                return
            except _PortTakenError:
                self.port = free_port()
                self.install()
        self._start(timeout)

    def _start(self, timeout: float) -> None:
        logged = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, **self.popen_options)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                with self.log.open("rb") as log:
                    log.seek(logged)
                    if b"Address already in use" in log.read():
                        raise _PortTakenError(self.port)
                raise RuntimeError(f"the {self.family} server exited: see {self.log}")
            try:
                self.root().close()
                self._started = True
                return
            except self.not_ready:
                time.sleep(0.05)
        raise RuntimeError(f"the {self.family} server did not start within {timeout}s: see {self.log}")

    def stop(self, timeout: float = 30.0) -> None:
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): no clean shutdown, like a failover."""
        if self._process and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        """The server process itself: a signal sent to it reaches the database, not a wrapper."""
        if self._process is None:
            raise RuntimeError(f"the {self.family} server is not running")
        return self._process.pid

    def __enter__(self) -> Self:
        self.install()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------

    def root(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        # Plaintext over the socket unless asked otherwise: with no TLS option PyMySQL
        # builds a default TLS context (the system CA store, ~20 ms) for every connection,
        # and the fixtures open hundreds of root connections (issue 23: a quarter of the
        # integration tier's time went there). The socket never leaves this machine.
        if not any(key == "ssl" or key.startswith("ssl_") for key in kwargs):
            kwargs["ssl_disabled"] = True
        return pymysql.connect(
            unix_socket=str(self.socket), user="root", password="", autocommit=True, connect_timeout=2, **kwargs
        )
