"""``rotator check`` on the Secrets Manager side (moto, --no-database): every problem
with the secret or its admin secret is one finding, with what to do about it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.attached import attach_without_rotating
from tests.support.aws import begin_rotation, create_secret
from tests.support.cli import Cli

ADMIN = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "admin", "password": "pw-admin-7654321"}
APP = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "app", "password": "pw-app-1234567"}
PASSWORDS = [ADMIN["password"], APP["password"]]


@pytest.fixture
def admin_arn(aws: Any) -> str:
    return create_secret(aws, "rds-admin", ADMIN)


def findings(run: Any) -> dict[str, dict[str, str]]:
    (report,) = run.json()["secrets"]
    return {finding["check"]: finding for finding in report["findings"]}


def test_a_good_secret_passes_and_masks_the_password(cli: Cli, aws: Any, admin_arn: str) -> None:
    """A well-formed secret with a readable admin secret: exit 0, user and host shown, password masked."""
    arn = create_secret(aws, "app-db", {**APP, "dbname": "appdb", "masterarn": admin_arn})
    run = cli("check", arn, "--no-database")
    assert run.code == 0, run.text
    assert "app@db.internal:3306/appdb, password ********" in run.out
    assert "admin secret readable: user admin" in run.out
    assert "1 of 1 secret(s) ready" in run.out
    assert run.leaks(PASSWORDS) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not json at all", "not valid JSON"),
        (json.dumps({**APP, "host": ""}), "missing required key(s): host"),
        (json.dumps({**APP, "engine": "oracle"}), "unsupported engine"),
        (json.dumps({**APP, "port": "three"}), "'port' must be a number"),
        (json.dumps(["a", "list"]), "must be a JSON object"),
    ],
)
def test_an_unusable_secret_value_fails_with_the_reason(cli: Cli, aws: Any, value: str, expected: str) -> None:
    """Each way the value can be unusable for rotation is a secret.value failure naming the problem."""
    arn = aws.create_secret(Name="app-db", SecretString=value)["ARN"]
    run = cli("check", arn, "--no-database", "--json")
    assert run.code == 1
    found = findings(run)["secret.value"]
    assert found["level"] == "fail"
    assert expected in found["message"]
    assert "host, port, username, password" in found["action"]
    assert run.leaks(PASSWORDS) == []


@pytest.mark.parametrize("engine", ["postgres", "aurora-postgresql"])
def test_an_engine_without_its_backend_fails_before_any_database_check(
    cli: Cli, aws: Any, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL secret while its backend is not in this rotator (an artifact built
    without it: the package cannot be imported): secret.engine fails, naming the engine;
    no database is reached and no password shown."""
    monkeypatch.setitem(sys.modules, "rotator.backends.postgresql", None)
    arn = create_secret(aws, "app-db", {**APP, "engine": engine})
    run = cli("check", arn, "--json")
    assert run.code == 1
    found = findings(run)
    assert found["secret.engine"]["level"] == "fail"
    assert f"engine {engine} is not supported yet" in found["secret.engine"]["message"]
    assert not any(check.startswith(("db.", "admin.")) for check in found)
    assert run.leaks(PASSWORDS) == []


def test_a_missing_admin_secret_fails(cli: Cli, aws: Any) -> None:
    """masterarn pointing at nothing is an admin.secret failure (createSecret would fail the same way)."""
    arn = create_secret(aws, "app-db", {**APP, "masterarn": "no-such-admin"})
    run = cli("check", arn, "--no-database", "--json")
    assert run.code == 1
    found = findings(run)["admin.secret"]
    assert found["level"] == "fail" and "no-such-admin" in found["message"]


def test_an_unusable_admin_secret_fails(cli: Cli, aws: Any) -> None:
    """An admin secret without a password is an admin.secret failure."""
    admin = create_secret(aws, "rds-admin", {"username": "admin"})
    arn = create_secret(aws, "app-db", {**APP, "masterarn": admin})
    found = findings(cli("check", arn, "--no-database", "--json"))["admin.secret"]
    assert found["level"] == "fail" and "password" in found["message"]


def test_single_user_and_plaintext_secrets_get_warnings(cli: Cli, aws: Any) -> None:
    """No masterarn (single user), ssl false and no engine are warnings, not failures (exit 0)."""
    value = {key: v for key, v in APP.items() if key != "engine"}
    arn = create_secret(aws, "app-db", {**value, "ssl": False})
    run = cli("check", arn, "--no-database", "--json")
    assert run.code == 0
    found = findings(run)
    assert found["secret.mode"]["level"] == "warn" and "masterarn" in found["secret.mode"]["action"]
    assert found["secret.tls"]["level"] == "warn"
    assert found["secret.engine"]["level"] == "warn"
    assert found["database"]["level"] == "skip"


def test_a_stuck_rotation_fails_and_names_the_fix(
    cli: Cli, aws: Any, admin_arn: str, cli_clock: Callable[[float], None]
) -> None:
    """A stale AWSPENDING version fails rotation.state (RotateSecret would refuse) and points at rotator fix."""
    arn = create_secret(aws, "app-db", {**APP, "masterarn": admin_arn})
    token = begin_rotation(aws, arn)
    cli_clock(36)
    run = cli("check", arn, "--no-database", "--json")
    assert run.code == 1
    found = findings(run)["rotation.state"]
    assert found["level"] == "fail" and token in found["message"]
    assert found["action"].endswith("rotator fix app-db")


def test_a_rotation_in_progress_is_a_warning(cli: Cli, aws: Any, admin_arn: str) -> None:
    """A fresh pending version is a warning: a rotation may be running right now."""
    arn = create_secret(aws, "app-db", {**APP, "masterarn": admin_arn})
    begin_rotation(aws, arn)
    run = cli("check", arn, "--no-database", "--json")
    assert run.code == 0
    assert findings(run)["rotation.state"]["level"] == "warn"


def test_an_unknown_secret_is_a_finding_and_exit_3(cli: Cli, aws: Any, admin_arn: str) -> None:
    """Checking several secrets continues past an unknown one; the exit code says "not found"."""
    good = create_secret(aws, "app-db", {**APP, "masterarn": admin_arn})
    run = cli("check", good, "no-such-secret", "--no-database")
    assert run.code == 3
    assert "no-such-secret" in run.out and "ResourceNotFoundException" in run.out
    assert "1 of 2 secret(s) ready" in run.out
    assert "[2/2] checking no-such-secret" in run.err  # progress goes to stderr


def test_check_json_is_one_document_on_stdout(cli: Cli, aws: Any, admin_arn: str) -> None:
    """--json prints one parseable document per run; progress stays on stderr."""
    arn = create_secret(aws, "app-db", {**APP, "masterarn": admin_arn})
    run = cli("check", arn, "--no-database", "--json")
    document = run.json()
    assert document["command"] == "check"
    assert document["secrets"][0]["arn"] == arn and document["secrets"][0]["ok"] is True
    assert "[1/1]" in run.err
    quiet = cli("check", arn, "--no-database", "--json", "--quiet")
    assert quiet.err == ""


def test_a_secret_attached_to_a_qualified_function_arn_fails(cli: Cli, aws: Any, admin_arn: str) -> None:
    """A secret attached by hand to an alias of a function: its rotations would be denied
    (AllowRotationLambdaArn names the unqualified function), and check says how to fix it."""
    arn = create_secret(aws, "app-db", {**APP, "masterarn": admin_arn})
    attach_without_rotating(aws, arn, "arn:aws:lambda:us-east-1:123456789012:function:rotator:live")
    found = findings(cli("check", arn, "--no-database", "--json"))["rotation.config"]
    assert found["level"] == "fail"
    assert "qualified function ARN (':live')" in found["message"]
    assert "unqualified ARN" in found["action"]
