"""rotator-client's integrations against real servers across real rotations (the handler,
moto's Secrets Manager): PyMySQL's ``connect`` and a SQLAlchemy engine's pool, on MariaDB
and MySQL, for alternating users, single user, and (MySQL) dual passwords. Each case
counts the GetSecretValue calls the application made (a botocore event hook on its client).
The rules themselves, with fakes: tests/unit/test_client.py.
"""

from __future__ import annotations

import logging
import ssl
import threading
import traceback
from collections.abc import Callable
from typing import Any

import pymysql
import pytest
import sqlalchemy

from rotator_client import SecretCredentials
from rotator_client import pymysql as client_pymysql
from rotator_client import sqlalchemy as client_sqlalchemy
from tests.integration.conftest import LeakCheck
from tests.support.families import only_on
from tests.support.world import World

pytestmark = pytest.mark.integration


class App:
    """An application's view: its SecretCredentials (own client, counted) and its TLS context."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.credentials = SecretCredentials(world.app_arn, region_name="us-east-1")
        self.reads: list[str] = []
        self.credentials.client.meta.events.register(  # type: ignore[attr-defined]
            "before-call.secrets-manager.GetSecretValue", lambda **_: self.reads.append("read")
        )
        self.tls = ssl.create_default_context(cafile=str(world.server.pki.ca_file))

    def connect(self) -> pymysql.connections.Connection[Any]:
        return client_pymysql.connect(self.credentials, ssl=self.tls, autocommit=True, connect_timeout=5)

    def engine(self, **kwargs: Any) -> sqlalchemy.Engine:
        return client_sqlalchemy.create_engine(
            self.credentials, "mysql+pymysql://", connect_args={"ssl": self.tls, "connect_timeout": 5}, **kwargs
        )


def current_user(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER()")
        (user,) = cursor.fetchone()
    return str(user).split("@")[0]


def works(connection: Any) -> bool:
    """The application's work: write and read back in appdb."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO appdb.items (note) VALUES (%s)", ("client",))
        cursor.execute("SELECT COUNT(*) FROM appdb.items")
        (count,) = cursor.fetchone()
    return int(count) > 0


def assert_clean(leak_check: LeakCheck, world: World, text: str = "", *more: str) -> None:
    """No password of any version in the test's output, nor in ``text`` (logs, errors, frames)."""
    passwords = {*world.all_passwords(), *more}
    leak_check.assert_clean(*passwords)
    assert not [password for password in passwords if password in text], "a password appeared"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="rotator_client")
    return caplog


def test_pymysql_connect_follows_alternating_users(
    world: World, leak_check: LeakCheck, logs: pytest.LogCaptureFixture
) -> None:
    """After one rotation the cached user still logs in (no read); after the second its password
    changed: one refused login, one GetSecretValue, one retry, now as the new AWSCURRENT. A
    connection opened before both rotations keeps working."""
    app = App(world)
    opened_before = app.connect()
    assert current_user(opened_before) == "app" and len(app.reads) == 1

    world.rotate()  # app_clone becomes AWSCURRENT; app's password is untouched
    second = app.connect()
    assert current_user(second) == "app" and len(app.reads) == 1

    world.rotate()  # app gets a new password: the cached one is refused
    third = app.connect()
    assert current_user(third) == "app" and works(third)
    assert len(app.reads) == 2
    stats = app.credentials.stats()
    assert (stats.refused_logins, stats.refreshes_after_refusal, stats.retries) == (1, 1, 1)
    assert works(opened_before) and works(second)
    for connection in (opened_before, second, third):
        connection.close()
    assert "login refused with secret app-db" in logs.text
    assert_clean(leak_check, world, logs.text)


def test_pymysql_connect_after_a_single_user_rotation(
    world_factory: Callable[..., World], leak_check: LeakCheck, logs: pytest.LogCaptureFixture
) -> None:
    """Single user (no dual passwords): after the rotation the cached password is refused; one
    refresh finds the new one and the retry logs in."""
    world = world_factory(single_user=True)
    app = App(world)
    app.connect().close()
    world.rotate()
    connection = app.connect()
    assert current_user(connection) == "app" and works(connection)
    connection.close()
    assert len(app.reads) == 2 and app.credentials.stats().retries == 1
    assert_clean(leak_check, world, logs.text)


@only_on("mysql", "dual passwords (RETAIN CURRENT PASSWORD) are MySQL 8.0.14+")
def test_with_dual_passwords_the_cached_login_outlives_one_rotation(
    world_factory: Callable[..., World], leak_check: LeakCheck
) -> None:
    """Single user with dual passwords: the cached (now secondary) password still logs in after a
    rotation, without a read; after the next rotation it is gone and one refresh recovers."""
    world = world_factory(single_user=True, dual_passwords=True)
    app = App(world)
    app.connect().close()
    world.rotate()
    app.connect().close()
    assert len(app.reads) == 1
    world.rotate()
    connection = app.connect()
    assert works(connection)
    connection.close()
    assert len(app.reads) == 2 and app.credentials.stats().retries == 1
    assert_clean(leak_check, world)


def test_a_sqlalchemy_pool_opens_new_connections_with_the_new_credentials(
    world: World, leak_check: LeakCheck, logs: pytest.LogCaptureFixture
) -> None:
    """A pooled connection held across two rotations keeps working (passwords are checked at
    login); eight threads that then need new connections at once are refused with the cached
    password and share one GetSecretValue: every one logs in, as the new AWSCURRENT user."""
    app = App(world)
    engine = app.engine(pool_size=2, max_overflow=10)
    held = engine.connect()
    assert held.exec_driver_sql("SELECT CURRENT_USER()").scalar_one().startswith("app@")
    world.rotate()
    world.rotate()
    expected = world.app_secret()["username"]

    barrier = threading.Barrier(8)
    users: list[str] = []
    lock = threading.Lock()

    def new_connection() -> None:
        barrier.wait()
        with engine.connect() as connection:
            user = connection.exec_driver_sql("SELECT CURRENT_USER()").scalar_one()
            connection.exec_driver_sql("INSERT INTO appdb.items (note) VALUES ('pool')")
            connection.commit()
            barrier_done.wait()  # keep it checked out: the next thread must open its own
        with lock:
            users.append(str(user).split("@")[0])

    barrier_done = threading.Barrier(8)
    threads = [threading.Thread(target=new_connection) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert users == [expected] * 8
    assert len(app.reads) == 2  # the first read, and one refresh for the eight
    assert held.exec_driver_sql("SELECT 1").scalar_one() == 1
    held.close()
    engine.dispose()
    assert_clean(leak_check, world, logs.text)


def test_a_sqlalchemy_login_refused_after_the_refresh_surfaces_once(
    world: World, leak_check: LeakCheck, logs: pytest.LogCaptureFixture
) -> None:
    """Someone changed the user's password behind the secret's back: the pool's login is refused,
    the one refresh finds nothing newer, and SQLAlchemy raises the driver's 1045 — no retry, no
    loop. No password in its message, its traceback, or the client's frames."""
    app = App(world)
    engine = app.engine(poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
    outside = "pw-changed-outside-0123456789"
    world.server.sql("ALTER USER %s@'%%' IDENTIFIED BY %s", (world.app_user, outside))
    with pytest.raises(sqlalchemy.exc.OperationalError) as raised:
        engine.connect()
    assert raised.value.orig is not None and raised.value.orig.args[0] == 1045
    stats = app.credentials.stats()
    assert (len(app.reads), stats.refused_logins, stats.retries) == (2, 1, 0)
    frames = [
        repr(frame.f_locals)
        for frame, _ in traceback.walk_tb(raised.value.__traceback__)
        if "rotator_client" in frame.f_code.co_filename
    ]
    assert frames, "the error did not pass through the client"
    text = str(raised.value) + repr(raised.value) + "".join(traceback.format_exception(raised.value)) + "".join(frames)
    assert_clean(leak_check, world, text + logs.text, outside)
    engine.dispose()
