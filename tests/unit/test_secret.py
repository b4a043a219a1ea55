"""The secret JSON as RDS and AWS's templates write it, and what rotator rejects."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.errors import SecretFormatError
from rotator.secret import DatabaseSecret

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-AbCdEf"

RDS_CONSOLE_SECRET = {
    "engine": "mysql",
    "host": "db.cluster-abc.us-east-1.rds.amazonaws.com",
    "port": 3306,
    "username": "app",
    "password": "s3cr3t-Value",
    "dbname": "orders",
    "dbClusterIdentifier": "db",
    "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:admin-XyZ",
}


def parse(value: object, **kwargs: Any) -> DatabaseSecret:
    return DatabaseSecret.parse(ARN, json.dumps(value), **kwargs)


def test_rds_console_secret_parses_and_round_trips_unknown_fields() -> None:
    """A secret written by RDS keeps every field, known or not, when rewritten."""
    secret = parse({**RDS_CONSOLE_SECRET, "team": "payments"})
    assert (secret.host, secret.port, secret.dbname, secret.engine) == (
        RDS_CONSOLE_SECRET["host"],
        3306,
        "orders",
        "mysql",
    )
    rewritten = json.loads(secret.with_credentials("app_clone", "other").to_json())
    assert rewritten == {**RDS_CONSOLE_SECRET, "team": "payments", "username": "app_clone", "password": "other"}


@pytest.mark.parametrize(
    ("ssl_value", "expected"),
    [(None, True), (True, True), ("true", True), ("TRUE", True), (False, False), ("false", False)],
)
def test_ssl_flag_accepts_booleans_and_strings_and_defaults_to_tls(ssl_value: object, expected: bool) -> None:
    """'ssl' may be a boolean or "true"/"false"; a missing flag means verified TLS."""
    value = dict(RDS_CONSOLE_SECRET)
    if ssl_value is not None:
        value["ssl"] = ssl_value
    assert parse(value).tls is expected


def test_port_may_be_a_string() -> None:
    """Some tools write the port as a string."""
    assert parse({**RDS_CONSOLE_SECRET, "port": "3307"}).port == 3307


@pytest.mark.parametrize(
    ("secret_string", "problem"),
    [
        ("not json {", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"host": "h", "password": "p"}), "missing required key(s): username"),
        (json.dumps({"username": "u", "password": "p"}), "missing required key(s): host"),
        (json.dumps({**RDS_CONSOLE_SECRET, "engine": "oracle"}), "unsupported engine 'oracle'"),
        (json.dumps({**RDS_CONSOLE_SECRET, "port": "x"}), "'port' must be a number"),
        (json.dumps({**RDS_CONSOLE_SECRET, "port": 70000}), "out of range"),
        (json.dumps({**RDS_CONSOLE_SECRET, "ssl": "maybe"}), "'ssl' must be true or false"),
        (json.dumps({**RDS_CONSOLE_SECRET, "password": 5}), "'password' must be a string"),
    ],
)
def test_malformed_secrets_raise_a_typed_error_naming_the_secret(secret_string: str, problem: str) -> None:
    """Each malformed secret fails with SecretFormatError naming the secret and the problem."""
    with pytest.raises(SecretFormatError) as raised:
        DatabaseSecret.parse(ARN, secret_string)
    assert raised.value.secret_id == ARN
    assert problem in str(raised.value)
    assert str(raised.value).startswith(ARN)


def test_error_for_invalid_json_does_not_quote_the_document() -> None:
    """json's own message quotes the text near the error, which may be the password."""
    with pytest.raises(SecretFormatError) as raised:
        DatabaseSecret.parse(ARN, '{"password": "hunter2-secret", oops}')
    assert "hunter2" not in str(raised.value)


def test_rds_managed_admin_secret_needs_no_host() -> None:
    """An admin secret managed by RDS holds only username and password."""
    admin = parse({"username": "admin", "password": "x"}, require_host=False)
    assert admin.host is None and admin.tls


def test_twin_username_alternates() -> None:
    """The twin of 'app' is 'app_clone' and the twin of 'app_clone' is 'app'."""
    secret = parse(RDS_CONSOLE_SECRET)
    assert secret.twin_username == "app_clone"
    assert secret.with_credentials("app_clone", "p").twin_username == "app"


def test_differences_ignore_credentials_only() -> None:
    """Two versions may differ in username and password, and in nothing else."""
    current = parse(RDS_CONSOLE_SECRET)
    assert current.differences(current.with_credentials("app_clone", "new")) == []
    moved = parse({**RDS_CONSOLE_SECRET, "host": "evil.example", "note": "x"})
    assert moved.differences(current) == ["host", "note"]


def test_password_is_not_in_repr() -> None:
    """A secret printed by accident (debugger, f-string) does not show the password."""
    assert "s3cr3t-Value" not in repr(parse(RDS_CONSOLE_SECRET))


@pytest.mark.parametrize(("port", "expected"), [(3306.0, 3306), ("3307", 3307), (3308, 3308)])
def test_an_integral_port_is_accepted_in_any_numeric_form(port: object, expected: int) -> None:
    """Some tools write the port as a float (3306.0) or a string: both are read when integral."""
    assert parse({**RDS_CONSOLE_SECRET, "port": port}).port == expected


@pytest.mark.parametrize("port", [3306.5, True, [3306], "33o6"])
def test_a_port_that_is_not_an_integer_is_refused(port: object) -> None:
    """A fractional, boolean, list or non-numeric port is a SecretFormatError naming 'port'."""
    with pytest.raises(SecretFormatError, match="'port' must be a number"):
        parse({**RDS_CONSOLE_SECRET, "port": port})


@pytest.mark.parametrize(
    ("fields", "strategy", "alternates"),
    [
        ({}, "alternating-users", True),
        ({"rotation_strategy": "single-user"}, "single-user", False),
        ({"rotation_strategy": "alternating-users"}, "alternating-users", True),
    ],
)
def test_rotation_strategy_defaults_to_alternating_users_with_a_masterarn(
    fields: dict[str, str], strategy: str, alternates: bool
) -> None:
    """With a masterarn the default is alternating users; "single-user" keeps the user name (the admin
    sets its password); the key is kept in every version like any other."""
    secret = parse({**RDS_CONSOLE_SECRET, **fields})
    assert (secret.strategy, secret.alternates) == (strategy, alternates)
    assert json.loads(secret.with_credentials("app", "x").to_json()).get("rotation_strategy") == fields.get(
        "rotation_strategy"
    )
    without_admin = {key: value for key, value in RDS_CONSOLE_SECRET.items() if key != "masterarn"}
    assert parse(without_admin).strategy == "single-user"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"rotation_strategy": "alternating-users"}, "alternating-users needs 'masterarn'"),
        ({"rotation_strategy": "dual"}, "'rotation_strategy' must be one of alternating-users, single-user"),
        ({"rotation_strategy": 1}, "'rotation_strategy' must be one of"),
    ],
)
def test_a_strategy_that_cannot_work_is_refused(fields: dict[str, object], problem: str) -> None:
    without_admin = {key: value for key, value in RDS_CONSOLE_SECRET.items() if key != "masterarn"}
    with pytest.raises(SecretFormatError, match=problem) as raised:
        parse({**without_admin, **fields})
    assert "s3cr3t-Value" not in str(raised.value)


@pytest.mark.parametrize("engine", ["postgres", "aurora-postgresql"])
def test_a_postgresql_secret_defaults_to_port_5432_and_database_postgres(engine: str) -> None:
    """AWS's PostgreSQL secret structure: ``port`` and ``dbname`` optional (5432, "postgres");
    the value written back keeps only what the secret said."""
    value = {"engine": engine, "host": "pg.example", "username": "app", "password": "pw-1"}
    secret = parse(value)
    assert (secret.port, secret.dbname, secret.tls) == (5432, "postgres", True)
    assert json.loads(secret.to_json()) == value
    given = parse({**value, "port": 6432, "dbname": "appdb"})
    assert (given.port, given.dbname) == (6432, "appdb")


def test_a_mysql_secret_keeps_its_defaults() -> None:
    """Without engine, and for the MySQL family: port 3306, no database."""
    for engine in (None, "mysql", "mariadb", "aurora-mysql"):
        value = {"host": "db.example", "username": "app", "password": "pw-1"}
        if engine:
            value["engine"] = engine
        secret = parse(value)
        assert (secret.port, secret.dbname) == (3306, None)
        assert not parse({**value, "ssl": False}).tls


@pytest.mark.parametrize("flag", [False, "false", "FALSE"])
def test_a_postgresql_secret_may_not_turn_tls_off(flag: object) -> None:
    """``"ssl": false`` on a PostgreSQL secret is refused when the value is parsed, naming the
    secret: the backend never logs in without verified TLS."""
    value = {"engine": "postgres", "host": "pg", "username": "app", "password": "pw-secret-1", "ssl": flag}
    with pytest.raises(SecretFormatError) as raised:
        parse(value)
    assert str(raised.value).startswith(f"{ARN}: 'ssl': false is not accepted for engine postgres")
    assert "pw-secret-1" not in str(raised.value)


def test_an_admin_secret_without_engine_takes_the_application_engine_defaults() -> None:
    """A PostgreSQL master's secret that names neither engine nor port means port 5432 when
    read for a PostgreSQL application secret; its "ssl" is not judged (admin logins are
    always verified TLS)."""
    value = {"host": "pg.example", "username": "master", "password": "pw-1", "ssl": False}
    admin = parse(value, require_host=False, family_of="postgres")
    assert (admin.port, admin.dbname) == (5432, "postgres")
    assert parse(value, require_host=False).port == 3306
