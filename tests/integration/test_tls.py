"""TLS: verified by default, never a silent fallback, plaintext only when the secret says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rotator.backends.mysql.base import MySQLDatabase
from rotator.errors import DatabaseTLSError
from rotator.secret import DatabaseSecret
from rotator.settings import BUNDLED_CA, Settings
from tests.support.servers import DatabaseServer, make_pki

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:tls-test-AbCdEf"


def secret(server_host: str, port: int, **extra: object) -> DatabaseSecret:
    value = {"host": server_host, "port": port, "username": "tls_user", "password": "pw-tls-1"}
    return DatabaseSecret.parse(ARN, json.dumps({**value, **extra}))


@pytest.fixture
def tls_user(db: DatabaseServer) -> DatabaseServer:
    db.sql("CREATE USER 'tls_user'@'%' IDENTIFIED BY 'pw-tls-1' REQUIRE SSL")
    return db


def database(ca: Path) -> MySQLDatabase:
    return MySQLDatabase(Settings.from_env({"ROTATOR_CA_BUNDLE": str(ca), "DB_CONNECT_TIMEOUT": "2"}))


def test_verified_tls_logs_in_and_reuses_one_context(tls_user: DatabaseServer) -> None:
    """Logins verify the server against the CA bundle and share one TLS context."""
    db = database(tls_user.pki.ca_file)
    for _ in range(3):
        info = db.check_login(secret(tls_user.host, tls_user.port))
    assert info.flavor == tls_user.family
    assert db.stats["tls_contexts"] == 1 and db.stats["tls_handshakes"] == 3


def test_host_name_must_match_the_certificate(tls_user: DatabaseServer) -> None:
    """The certificate names 127.0.0.1 only: the same server reached as "localhost" fails verification."""
    db = database(tls_user.pki.ca_file)
    with pytest.raises(DatabaseTLSError, match="TLS verification of localhost"):
        db.check_login(secret("localhost", tls_user.port))


def test_per_secret_ca_file_overrides_the_default(tls_user: DatabaseServer, tmp_path: Path) -> None:
    """A secret's own ssl_ca wins over the function's CA bundle."""
    wrong = make_pki(tmp_path / "wrong").ca_file
    db = database(wrong)
    with pytest.raises(DatabaseTLSError):
        db.check_login(secret(tls_user.host, tls_user.port))
    db.check_login(secret(tls_user.host, tls_user.port, ssl_ca=str(tls_user.pki.ca_file)))


def test_missing_ca_file_is_a_clear_error(tls_user: DatabaseServer) -> None:
    """A CA path that does not exist names the path."""
    db = database(Path("/nonexistent/ca.pem"))
    with pytest.raises(DatabaseTLSError, match=r"cannot load CA bundle /nonexistent/ca\.pem"):
        db.check_login(secret(tls_user.host, tls_user.port))


def test_server_without_tls_is_refused_unless_the_secret_opts_out(plain_server: DatabaseServer) -> None:
    """No silent plaintext fallback: TLS is required unless the secret says "ssl": false."""
    plain_server.sql("CREATE USER IF NOT EXISTS 'plain_user'@'%' IDENTIFIED BY 'pw-plain-1'")
    db = database(BUNDLED_CA)
    value = {"host": plain_server.host, "port": plain_server.port, "username": "plain_user", "password": "pw-plain-1"}
    with pytest.raises(DatabaseTLSError, match="server must offer TLS"):
        db.check_login(DatabaseSecret.parse(ARN, json.dumps(value)), attempts=1)
    info = db.check_login(DatabaseSecret.parse(ARN, json.dumps({**value, "ssl": False})))
    assert info.flavor == plain_server.family
