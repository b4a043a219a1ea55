"""The application's host is a read-only replica (as an Aurora reader endpoint is):
user changes go through the admin secret's host, the writer, and reach the replica
by replication."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import create_secret
from tests.support.families import private_server
from tests.support.servers import DatabaseServer
from tests.support.world import World, make_world

# Each family's replication statements (MySQL 8.4+ dropped the MASTER/SLAVE words).
REPLICATION = {
    "mariadb": {
        "primary": "server-id=1\nlog-bin=binlog\nbinlog-format=ROW\n",
        "status": "SHOW MASTER STATUS",
        "follow": "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=%s, MASTER_USER='repl', "
        "MASTER_PASSWORD='repl-pw-1', MASTER_LOG_FILE=%s, MASTER_LOG_POS=%s",
        "start": "START SLAVE",
        "stop": "STOP SLAVE",
    },
    "mysql": {
        "primary": "server-id=1\nlog-bin=binlog\n",  # row-based by default
        "status": "SHOW BINARY LOG STATUS",
        "follow": "CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=%s, SOURCE_USER='repl', "
        "SOURCE_PASSWORD='repl-pw-1', SOURCE_LOG_FILE=%s, SOURCE_LOG_POS=%s, SOURCE_SSL=1",
        "start": "START REPLICA",
        "stop": "STOP REPLICA",
    },
}


@pytest.fixture
def primary_and_replica(tmp_path: Path, db: DatabaseServer) -> Iterator[tuple[DatabaseServer, DatabaseServer]]:
    replication = REPLICATION[db.family]
    with (
        private_server(db.family, tmp_path / "primary", extra_config=replication["primary"]) as primary,
        private_server(db.family, tmp_path / "replica", extra_config="server-id=2\nread-only=1\n") as replica,
    ):
        primary.sql("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl-pw-1'")
        primary.sql("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
        log_file, position = primary.sql(replication["status"])[0][:2]
        replica.sql(replication["follow"], (primary.port, log_file, position))
        replica.sql(replication["start"])
        yield primary, replica
        replica.sql(replication["stop"])


def wait_for_user(server: DatabaseServer, user: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,))[0][0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"{user} never replicated")


@pytest.fixture
def replica_world(
    primary_and_replica: tuple[DatabaseServer, DatabaseServer],
    aws: Any,
    invoke: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    primary, replica = primary_and_replica
    world = make_world(primary, aws, name_prefix="writer-")
    wait_for_user(replica, "app")
    # The application secret names the replica; the admin secret names the writer.
    app = world.app_secret()
    world.app_arn = create_secret(aws, "reader-app", {**app, "host": replica.host, "port": replica.port})
    bundle = primary.base_dir / "both-cas.pem"
    bundle.write_text(primary.pki.ca_file.read_text() + replica.pki.ca_file.read_text())
    monkeypatch.setenv("ROTATOR_CA_BUNDLE", str(bundle))
    world.ca_file = bundle
    world.invoke = invoke
    return world


def test_rotation_through_the_writer_reaches_the_reader(
    replica_world: World, primary_and_replica: tuple[DatabaseServer, DatabaseServer]
) -> None:
    """With the app on a read-only replica, the twin is made on the writer and logs in on the replica."""
    primary, replica = primary_and_replica
    assert replica.sql("SELECT @@read_only") == [(1,)]
    results = replica_world.rotate()
    assert [r["outcome"] for r in results] == ["created", "twin-synced", "twin-verified", "promoted"]
    current = replica_world.app_secret()
    assert current["username"] == "app_clone" and current["port"] == replica.port
    replica_world.connect(current).close()  # the new credentials work on the reader
    assert replica_world.grants("app_clone") == replica_world.grants("app")
    assert primary.sql("SELECT COUNT(*) FROM mysql.user WHERE User='app_clone'") == [(1,)]
