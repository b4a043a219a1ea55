"""The admin's credentials travel only with verified TLS to the admin's own host, and no
login answers a cleartext authentication plugin (issue 21, item 6).

An RDS-managed admin secret has no host: the host its password goes to must be one an
operator confirmed (ADMIN_SECRET_HOSTS, here) or RDS's own tag names (tests/unit), never
the application secret's word alone. The server decides what matters here: the admin
account ``REQUIRE SSL`` refuses any login without TLS, so a rotation that completes
proves the admin's login used TLS whatever the secrets say about ``ssl``.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymysql
import pytest

from rotator.backends.mysql.base import MySQLDatabase
from rotator.errors import AdminHostError, CleartextAuthError, DatabaseTLSError
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, secret_value, stages
from tests.support.cli import Cli, CliRun
from tests.support.families import only_on, private_server
from tests.support.hostile import auth_switch_server
from tests.support.servers import DatabaseServer, make_pki
from tests.support.world import World, accounts_snapshot

pytestmark = pytest.mark.integration

Build = Callable[..., World]
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cleartext-AbCdEf"


def findings(run: CliRun) -> dict[str, dict[str, str]]:
    [secret] = run.json()["secrets"]
    return {finding["check"]: finding for finding in secret["findings"]}


def rds_managed(world: World, **extra: Any) -> None:
    """Make the admin secret look like RDS's (username and password only), and the admin
    account refuse any login without TLS."""
    admin = world.admin_secret()
    world.client.put_secret_value(
        SecretId=world.admin_arn,
        SecretString=json.dumps({"username": admin["username"], "password": admin["password"], **extra}),
    )
    world.server.sql("ALTER USER %s@'%%' REQUIRE SSL", (world.admin_user,))


def app_without_tls(world: World) -> None:
    """The application secret says "ssl": false (its own logins go without TLS)."""
    value = world.app_secret()
    world.client.put_secret_value(SecretId=world.app_arn, SecretString=json.dumps({**value, "ssl": False}))


# -- a hostless admin secret ------------------------------------------------------------


def test_a_hostless_admin_secret_with_a_confirmed_host_rotates_over_verified_tls(
    world: World, monkeypatch: pytest.MonkeyPatch, db_cli: Cli
) -> None:
    """ADMIN_SECRET_HOSTS pairs the RDS-managed admin secret with its host; the application
    secret says "ssl": false, and the admin (REQUIRE SSL) still logs in: the admin's login
    always uses verified TLS. check says the same before, and the rotation completes."""
    monkeypatch.setenv("ADMIN_SECRET_HOSTS", f"{world.admin_arn}={world.server.host}:{world.server.port}")
    rds_managed(world, ssl=False)  # the admin secret's own "ssl": false is ignored too
    app_without_tls(world)
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 0, run.text
    found = findings(run)
    assert found["admin.host"]["level"] == "ok"
    assert f"{world.server.host}:{world.server.port} (ADMIN_SECRET_HOSTS)" in found["admin.host"]["message"]
    assert found["db.admin-login"]["level"] == "ok"
    assert "no TLS" in found["db.login"]["message"]
    assert [step["outcome"] for step in world.rotate()][-1] == "promoted"
    assert world.can_use_grants(world.app_secret())
    assert run.leaks(world.all_passwords()) == []


def test_without_ssl_in_its_login_the_admin_is_refused_by_the_server(world: World) -> None:
    """The control: the admin account really refuses a login without TLS (so the test above
    proves TLS was used, not merely that a login worked)."""
    rds_managed(world)
    admin = world.admin_secret()
    with pytest.raises(pymysql.err.OperationalError) as refused:
        pymysql.connect(
            host=world.server.host,
            port=world.server.port,
            user=admin["username"],
            password=admin["password"],
            ssl_disabled=True,
            connect_timeout=5,
        )
    assert refused.value.args[0] == 1045


def test_check_says_a_hostless_admin_secret_has_no_confirmed_host(world: World, db_cli: Cli) -> None:
    """Nothing confirms the application's host for the RDS-managed admin secret (no setting,
    no RDS tag): check fails admin.host, says what to do, and never logs the admin in."""
    rds_managed(world)
    run = db_cli("check", world.app_arn, "--json")
    assert run.code == 1
    found = findings(run)
    assert found["admin.host"]["level"] == "fail"
    assert f"admin secret {world.admin_arn} has no host" in found["admin.host"]["message"]
    assert "ADMIN_SECRET_HOSTS" in found["admin.host"]["action"]
    assert "db.admin-login" not in found
    assert run.leaks(world.all_passwords()) == []


def test_a_hostless_admin_secret_is_not_sent_to_the_application_host_alone(world: World, leak_check: LeakCheck) -> None:
    """The same secret rotated: createSecret refuses, naming the secret and what to do,
    before any login and before anything is written; setSecret (should someone call it)
    refuses alike; the database is untouched; no password appears anywhere."""
    rds_managed(world)
    before = accounts_snapshot(world.server)
    token = begin_rotation(world.client, world.app_arn)
    with pytest.raises(AdminHostError, match=rf"^{world.app_arn}: admin secret {world.admin_arn} has no host") as exc:
        world.invoke(event(world.app_arn, token, "createSecret"))
    leak_check.record(exc.value)
    assert stages(world.client, world.app_arn)[token] == ["AWSPENDING"]
    with pytest.raises(world.client.exceptions.ResourceNotFoundException):
        world.client.get_secret_value(SecretId=world.app_arn, VersionId=token, VersionStage="AWSPENDING")
    assert accounts_snapshot(world.server) == before
    leak_check.assert_clean(*world.all_passwords())


def test_an_admin_secret_whose_host_disagrees_with_the_setting_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, leak_check: LeakCheck
) -> None:
    """An admin secret with a host and an ADMIN_SECRET_HOSTS entry naming another: refused
    before any login (someone is wrong about where the admin's password goes)."""
    monkeypatch.setenv("ADMIN_SECRET_HOSTS", f"{world.admin_arn}=db.elsewhere.internal")
    token = begin_rotation(world.client, world.app_arn)
    with pytest.raises(AdminHostError, match=r"ADMIN_SECRET_HOSTS confirms db\.elsewhere\.internal") as exc:
        world.invoke(event(world.app_arn, token, "createSecret"))
    leak_check.record(exc.value)
    leak_check.assert_clean(*world.all_passwords())


def test_the_admin_ignores_the_application_secrets_ssl_ca(world: World, tmp_path: Path) -> None:
    """A hostless admin logs in with the function's CA bundle, not the application secret's
    ssl_ca: with the bundle wrong and the app's ssl_ca right, the app logs in and the admin
    fails TLS verification (so an app secret cannot pick the CA the admin's login trusts)."""
    wrong = make_pki(tmp_path / "wrong").ca_file
    database = MySQLDatabase(Settings.from_env({"ROTATOR_CA_BUNDLE": str(wrong), "DB_CONNECT_TIMEOUT": "2"}))
    app_value = {**world.app_secret(), "ssl_ca": str(world.server.pki.ca_file)}
    app = DatabaseSecret.parse(world.app_arn, json.dumps(app_value))
    admin = DatabaseSecret.parse(world.admin_arn, json.dumps(world.admin_secret()), require_host=False)
    database.check_login(app)
    with pytest.raises(DatabaseTLSError, match="TLS verification"), database.admin(admin, app):
        pass


# -- cleartext authentication plugins ---------------------------------------------------


@contextmanager
def written_packets(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every packet PyMySQL writes (before TLS encrypts it)."""
    written: list[bytes] = []
    original = pymysql.connections.Connection.write_packet

    def recording(self: Any, payload: bytes) -> None:
        written.append(bytes(payload))
        original(self, payload)

    monkeypatch.setattr(pymysql.connections.Connection, "write_packet", recording)
    yield written


def login(server: DatabaseServer, host: str, port: int, user: str, password: str) -> None:
    database = MySQLDatabase(Settings.from_env({"ROTATOR_CA_BUNDLE": str(server.pki.ca_file), "DB_READ_TIMEOUT": "5"}))
    value = {"host": host, "port": port, "username": user, "password": password}
    database.check_login(DatabaseSecret.parse(ARN, json.dumps(value)))


@pytest.mark.parametrize("plugin", ["mysql_clear_password", "dialog"])
def test_a_request_for_a_cleartext_plugin_is_refused_before_anything_is_sent(
    database_server: DatabaseServer, plugin: str, leak_check: LeakCheck
) -> None:
    """Greeted like the family's real server, over TLS verified against its CA, and then
    asked (auth switch request) for a plugin that sends the password as typed: rotator's
    login refuses with CleartextAuthError and sends nothing more; the endpoint received no
    password. The control, PyMySQL left to itself, sends the password at once."""
    if database_server.pki.key_file is None:
        pytest.skip("needs the test server's certificate and key (a server the suite started)")
    password = "pw-cleartext-Xy7-never-sent"
    with auth_switch_server(database_server, plugin) as endpoint:
        with pytest.raises(CleartextAuthError, match=f"authenticate with '{plugin}'.*refused, nothing was sent") as exc:
            login(database_server, endpoint.host, endpoint.port, "tls_user", password)
        leak_check.record(exc.value)
        [refused] = endpoint.finished()
        assert refused.switched and refused.after_switch == b""
        assert password.encode() not in refused.everything
        assert b"tls_user" in refused.handshake_response  # TLS completed: the response was read
        context = ssl.create_default_context(cafile=str(database_server.pki.ca_file))
        with pytest.raises(pymysql.err.MySQLError):
            pymysql.connect(
                host=endpoint.host, port=endpoint.port, user="tls_user", password=password, ssl=context, read_timeout=5
            )
        [_, answered] = endpoint.finished()
        assert password.encode() in answered.after_switch
    leak_check.assert_clean(password)


@pytest.fixture
def pam_server(tmp_path: Path) -> Iterator[DatabaseServer]:
    """A private MariaDB whose PAM plugin (v1: in the server's process) asks for the password
    as typed (``pam_use_cleartext_plugin``: mysql_clear_password; the default is dialog)."""
    config = "plugin-load-add=auth_pam_v1.so\nloose-pam-use-cleartext-plugin=ON\n"
    with private_server("mariadb", tmp_path / "pam", extra_config=config) as server:
        if not server.sql("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'pam'")[0][0]:
            pytest.skip("MariaDB's auth_pam_v1 plugin is not installed")
        yield server


@only_on("mariadb", "MariaDB ships a server plugin that asks for cleartext (pam); MySQL Community has none")
def test_mariadb_pam_asks_for_the_password_as_typed_and_is_refused(
    database_server: DatabaseServer, pam_server: DatabaseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server asks: an account IDENTIFIED VIA pam makes MariaDB switch to
    mysql_clear_password (and, in its default mode, dialog). rotator's login refuses, and
    no packet it wrote holds the password; PyMySQL left to itself writes it (and PAM
    refuses it: 1045)."""
    pam_server.sql("CREATE USER 'pam_user'@'%' IDENTIFIED VIA pam USING 'rotator-test'")
    password = "pw-pam-Qz4-never-sent"
    with written_packets(monkeypatch) as written:
        with pytest.raises(CleartextAuthError, match="'mysql_clear_password'"):
            login(pam_server, pam_server.host, pam_server.port, "pam_user", password)
        assert written and not any(password.encode() in packet for packet in written)
        written.clear()
        context = ssl.create_default_context(cafile=str(pam_server.pki.ca_file))
        with pytest.raises(pymysql.err.OperationalError) as answered:
            pymysql.connect(host=pam_server.host, port=pam_server.port, user="pam_user", password=password, ssl=context)
        assert answered.value.args[0] == 1045
        assert any(password.encode() in packet for packet in written)


def test_check_reports_a_cleartext_request_without_the_password(
    world: World, database_server: DatabaseServer, db_cli: Cli
) -> None:
    """rotator check on a secret whose host asks for cleartext: db.login fails naming the
    plugin, and neither password appears."""
    if database_server.pki.key_file is None:
        pytest.skip("needs the test server's certificate and key (a server the suite started)")
    with auth_switch_server(database_server, "mysql_clear_password") as endpoint:
        value = {**world.app_secret(), "host": endpoint.host, "port": endpoint.port}
        world.client.put_secret_value(SecretId=world.app_arn, SecretString=json.dumps(value))
        run = db_cli("check", world.app_arn, "--json")
        assert all(not exchange.after_switch for exchange in endpoint.finished())
    assert run.code == 1
    assert "'mysql_clear_password', which sends the password as typed" in findings(run)["db.login"]["message"]
    assert run.leaks(world.all_passwords()) == []
    assert secret_value(world.client, world.app_arn)["host"] == endpoint.host
