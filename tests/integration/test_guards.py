"""Guards that keep the admin's work on the right server and within the server's limits."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rotator.errors import SecretMismatchError, UnsupportedDatabaseError
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event
from tests.support.families import max_user_length, private_server
from tests.support.servers import DatabaseServer
from tests.support.world import World, new_password


@pytest.fixture
def other_server(tmp_path: Path, db: DatabaseServer) -> Iterator[DatabaseServer]:
    """A second, writable server of the same family on another port, with its own CA."""
    with private_server(db.family, tmp_path / "other") as server:
        yield server


def test_admin_secret_on_another_server_is_refused(
    world: World, other_server: DatabaseServer, leak_check: LeakCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin secret whose host is a different (writable) server never gets the twin created there."""
    assert world.invoke is not None
    password = new_password()
    other_server.sql("CREATE USER 'admin'@'%%' IDENTIFIED BY %s", (password,))
    other_server.sql("GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION")
    other_server.sql("CREATE USER 'app'@'%%' IDENTIFIED BY %s", (world.app_secret()["password"],))
    world.client.put_secret_value(
        SecretId=world.admin_arn,
        SecretString=json.dumps(
            {
                "engine": other_server.family,
                "host": "127.0.0.1",
                "port": other_server.port,
                "username": "admin",
                "password": password,
            }
        ),
    )
    # Each server has its own CA: trust both, so only the server check can stop the admin.
    combined = other_server.base_dir / "both-cas.pem"
    combined.write_text(world.server.pki.ca_file.read_text() + other_server.pki.ca_file.read_text())
    monkeypatch.setenv("ROTATOR_CA_BUNDLE", str(combined))
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(SecretMismatchError, match="reaches a different server") as raised:
        world.invoke(event(world.app_arn, token, "setSecret"))
    leak_check.record(raised.value)
    assert other_server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]
    assert world.server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = 'app_clone'") == [(0,)]
    leak_check.assert_clean(password, *world.all_passwords())


def test_twin_name_longer_than_the_server_allows_is_refused(
    world_factory: Callable[..., World], db: DatabaseServer
) -> None:
    """A user name whose twin would exceed the server's limit fails setSecret before any change."""
    limit = max_user_length(db)
    world = world_factory(app_user="a" * (limit - 3))
    assert world.invoke is not None
    token = begin_rotation(world.client, world.app_arn)
    world.invoke(event(world.app_arn, token, "createSecret"))
    with pytest.raises(UnsupportedDatabaseError, match=f"longer than the server's limit of {limit}"):
        world.invoke(event(world.app_arn, token, "setSecret"))
    assert world.server.sql("SELECT COUNT(*) FROM mysql.user WHERE User LIKE %s", ("%_clone",)) == [(0,)]
