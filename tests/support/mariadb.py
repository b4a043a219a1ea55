"""A throw-away MariaDB server for tests, the demo and the benchmarks.

Each instance has its own data directory, socket and port on 127.0.0.1, and a
freshly generated CA and server certificate (subjectAltName IP:127.0.0.1), so a
client that verifies the certificate really verifies it. It starts in well under
a second. It is stopped by signalling its own process: ``mariadb-admin shutdown``
without a socket would find the machine's shared server instead.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path


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


class MariaDBServer:
    """``with MariaDBServer(tmp_path) as server:`` — root over the socket, TLS on TCP."""

    def __init__(self, base_dir: Path, port: int | None = None, extra_config: str = "") -> None:
        self.base_dir = base_dir
        self.extra_config = extra_config
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.socket = base_dir / "mariadb.sock"
        self.datadir = base_dir / "data"
        self.config = base_dir / "my.cnf"
        self.log = base_dir / "mariadb.log"
        self.pki = make_pki(base_dir / "pki")
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------

    def install(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "[mariadbd]\n"
            f"datadir={self.datadir}\n"
            f"socket={self.socket}\n"
            f"port={self.port}\n"
            "bind-address=127.0.0.1\n"
            "user=root\n"
            "skip-name-resolve\n"
            "innodb_buffer_pool_size=32M\n"
            "innodb_log_file_size=16M\n"
            "max_connections=300\n"
            f"pid-file={self.base_dir / 'mariadb.pid'}\n"
            f"ssl_ca={self.pki.ca_file}\n"
            f"ssl_cert={self.pki.cert_file}\n"
            f"ssl_key={self.pki.key_file}\n"
            f"{self.extra_config}"
        )
        if not self.datadir.exists():
            subprocess.run(
                [
                    INSTALL_DB,
                    f"--defaults-file={self.config}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                check=True,
                capture_output=True,
            )

    def start(self, timeout: float = 20.0) -> None:
        if self._process and self._process.poll() is None:
            return
        if not self.datadir.exists():
            self.install()
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [MARIADBD, f"--defaults-file={self.config}"], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: see {self.log}")
            try:
                self.root().close()
                return
            except pymysql.err.MySQLError:
                time.sleep(0.05)
        raise RuntimeError(f"mariadbd did not start within {timeout}s: see {self.log}")

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

    def __enter__(self) -> MariaDBServer:
        self.install()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access ----------------------------------------------------------------

    def root(self, **kwargs: Any) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(
            unix_socket=str(self.socket), user="root", password="", autocommit=True, connect_timeout=2, **kwargs
        )

    def sql(self, statement: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        connection = self.root()
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        finally:
            connection.close()


def ensure_binaries() -> None:
    """Install Debian's mariadb-server when the binaries are missing (CI on a new machine)."""
    if Path(MARIADBD).exists() and Path(INSTALL_DB).exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-yq", "mariadb-server"], check=True, env=env)
