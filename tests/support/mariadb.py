"""A throw-away MariaDB server for tests, the demo and the benchmarks.

The machine's own binaries (Debian's mariadb-server), a datadir made by
``mariadb-install-db`` per server; it starts in well under a second. It is stopped
by signalling its own process: ``mariadb-admin shutdown`` without a socket would
find the machine's shared server instead. Lifecycle and PKI: :mod:`tests.support.servers`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support.servers import LocalServer, Pki, free_port, make_pki, version_of

__all__ = ["MariaDBServer", "Pki", "binary_version", "ensure_binaries", "free_port", "make_pki"]

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


class MariaDBServer(LocalServer):
    family = "mariadb"
    system_users = frozenset({"root", "mariadb.sys", ""})
    section = "mariadbd"

    def family_options(self) -> list[str]:
        return ["innodb_log_file_size=16M"]

    def initialize(self) -> None:
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

    def command(self) -> list[str]:
        return [MARIADBD, f"--defaults-file={self.config}"]


def ensure_binaries() -> None:
    """Install Debian's mariadb-server when the binaries are missing (CI on a new machine)."""
    if Path(MARIADBD).exists() and Path(INSTALL_DB).exists():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-yq", "mariadb-server"], check=True, env=env)


def binary_version() -> str | None:
    """The version of the binaries a private server would run (None: not installed yet)."""
    if not Path(MARIADBD).exists():
        return None
    done = subprocess.run([MARIADBD, "--version"], capture_output=True, text=True, check=False)
    return version_of(done.stdout)
