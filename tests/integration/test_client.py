"""rotator-client's integrations against real servers across real rotations (the handler,
moto's Secrets Manager): PyMySQL's ``connect`` and a SQLAlchemy engine's pool, on MariaDB
and MySQL, for alternating users, single user, and (MySQL) dual passwords; pg8000's
``connect`` and a postgresql+pg8000 pool on PostgreSQL 15, with a password changed under them. Each case
counts the GetSecretValue calls the application made (a botocore event hook on its client).
The rules themselves, with fakes: tests/unit/test_client.py.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pg8000.exceptions
import pymysql
import pytest
import sqlalchemy
from moto import mock_aws

from rotator_client import SecretCredentials
from rotator_client import pg8000 as client_pg8000
from rotator_client import pymysql as client_pymysql
from rotator_client import sqlalchemy as client_sqlalchemy
from tests.integration.conftest import LeakCheck
from tests.support.families import only_on
from tests.support.postgresql import PostgreSQLServer, password_literal, quote_ident
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


# -- PostgreSQL (pg8000, and SQLAlchemy's postgresql+pg8000) --------------------------------


@pytest.fixture
def pg15(postgresql15: PostgreSQLServer) -> Iterator[PostgreSQLServer]:
    """The session's PostgreSQL 15, emptied of test roles and databases before and after."""
    if not postgresql15.running:
        postgresql15.start()
    postgresql15.reset()
    yield postgresql15
    postgresql15.reset()


class PgApp:
    """An application on PostgreSQL: a secret in moto (in-process), its SecretCredentials
    (counted), verify-full TLS against the server's CA."""

    def __init__(self, server: PostgreSQLServer, client: Any, user: str, password: str) -> None:
        self.server = server
        self.client = client
        self.user = user
        value = {"engine": "postgres", "host": "127.0.0.1", "port": server.port, "dbname": "appdb"}
        self.value = {**value, "username": user}
        self.arn = str(client.create_secret(Name="app-pg", SecretString=self.secret(password))["ARN"])
        self.credentials = SecretCredentials(self.arn, region_name="us-east-1")
        self.reads: list[str] = []
        self.credentials.client.meta.events.register(  # type: ignore[attr-defined]
            "before-call.secrets-manager.GetSecretValue", lambda **_: self.reads.append("read")
        )
        self.tls = ssl.create_default_context(cafile=str(server.pki.ca_file))

    def secret(self, password: str) -> str:
        return json.dumps({**self.value, "password": password})

    def rotate(self, password: str) -> None:
        """What a single-user rotation does: the role's password, then AWSCURRENT."""
        self.server.sql(f"ALTER ROLE {quote_ident(self.user)} PASSWORD {password_literal(password)}")
        self.client.put_secret_value(SecretId=self.arn, SecretString=self.secret(password))

    def connect(self) -> Any:
        return client_pg8000.connect(self.credentials, ssl_context=self.tls, timeout=5)


def pg_user(connection: Any) -> str:
    cursor = connection.cursor()
    cursor.execute("SELECT current_user")
    (user,) = cursor.fetchone()
    return str(user)


def test_pg8000_and_sqlalchemy_follow_a_password_changed_under_them(
    pg15: PostgreSQLServer, leak_check: LeakCheck, logs: pytest.LogCaptureFixture
) -> None:
    """On a real PostgreSQL 15 (verify-full TLS, SCRAM-SHA-256): the password changes under the
    client; an open connection keeps working, the next pg8000 login is refused with 28P01, one
    GetSecretValue, and it is connected; a SQLAlchemy pool (postgresql+pg8000) does the same on
    the next rotation. A password changed behind the secret's back: the refusal surfaces after one
    refresh. No password in any output, error or client frame."""
    passwords = ["pw-pg-client-0-0123456789", "pw-pg-client-1-0123456789", "pw-pg-client-2-0123456789"]
    pg15.sql(f"CREATE ROLE app_pg LOGIN PASSWORD {password_literal(passwords[0])}")
    pg15.sql("CREATE DATABASE appdb OWNER app_pg")
    with mock_aws():
        app = PgApp(pg15, boto3.client("secretsmanager", region_name="us-east-1"), "app_pg", passwords[0])
        held = app.connect()
        assert pg_user(held) == "app_pg" and len(app.reads) == 1

        app.rotate(passwords[1])
        assert pg_user(held) == "app_pg"  # PostgreSQL checks a password at login only
        fresh = app.connect()
        assert pg_user(fresh) == "app_pg"
        stats = app.credentials.stats()
        assert (len(app.reads), stats.refused_logins, stats.retries) == (2, 1, 1)
        fresh.close()

        engine = client_sqlalchemy.create_engine(
            app.credentials, "postgresql+pg8000://", connect_args={"ssl_context": app.tls, "timeout": 5}
        )
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT current_database()").scalar_one() == "appdb"
        engine.dispose()  # the next connection is a new login
        app.rotate(passwords[2])
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT current_user").scalar_one() == "app_pg"
        stats = app.credentials.stats()
        assert (len(app.reads), stats.refused_logins, stats.retries) == (3, 2, 2)
        engine.dispose()

        outside = "pw-pg-changed-outside-012345"
        pg15.sql(f"ALTER ROLE app_pg PASSWORD {password_literal(outside)}")
        with pytest.raises(pg8000.exceptions.DatabaseError) as raised:
            app.connect()
        assert raised.value.args[0]["C"] == "28P01"
        stats = app.credentials.stats()
        assert (len(app.reads), stats.refused_logins, stats.retries) == (4, 3, 2)
        held.close()

    leak_check.record(raised.value)
    frames = [
        repr(frame.f_locals)
        for frame, _ in traceback.walk_tb(raised.value.__traceback__)
        if "rotator_client" in frame.f_code.co_filename
    ]
    assert frames, "the error did not pass through the client"
    text = repr(raised.value) + "".join(traceback.format_exception(raised.value)) + "".join(frames) + logs.text
    leak_check.assert_clean(*passwords, outside)
    assert not [password for password in (*passwords, outside) if password in text]
