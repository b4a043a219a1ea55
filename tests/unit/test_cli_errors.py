"""How ``rotator`` fails: one line and a meaningful exit code for bad arguments, unknown
secrets, access denied, missing credentials and throttling (retried by botocore first);
a traceback only with --debug; and the AWS CLI's --endpoint-url, --region and --profile."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from rotator.bootstrap import BOTO_CONFIG
from rotator.cli.output import ExitCode
from rotator.secret_store import SecretsManagerStore
from tests.support.aws import create_secret
from tests.support.cli import AwsFault, Cli

VALUE = {"engine": "mysql", "host": "db.internal", "port": 3306, "username": "app", "password": "pw-errors-123456"}


def one_line(text: str) -> bool:
    return text.count("\n") == 1 and "Traceback" not in text


def test_no_command_and_unknown_options_are_usage_errors(cli: Cli) -> None:
    """Bad arguments exit 2 with a single line pointing at --help."""
    for argv in ([], ["check", "x", "--bogus"], ["frobnicate"], ["rotate", "app-db"]):
        run = cli(*argv)
        assert run.code == ExitCode.USAGE, argv
        assert one_line(run.err) and "--help" in run.err, argv


def test_help_and_version_exit_zero(cli: Cli) -> None:
    """--help and --version print to stdout and exit 0."""
    assert cli("--help").code == 0
    version = cli("--version")
    assert version.code == 0 and version.out.startswith("rotator ")


def test_access_denied_is_exit_4_in_one_line(cli: Cli, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """AccessDeniedException from Secrets Manager: exit 4 and a hint about IAM, no traceback."""
    AwsFault("AccessDeniedException").install(monkeypatch)
    run = cli("status", "app-db")
    assert run.code == ExitCode.DENIED
    assert "AccessDeniedException" in run.out and "IAM permissions" in run.out
    fix = cli("fix", "app-db", "--yes")
    assert fix.code == ExitCode.DENIED and one_line(fix.err)


def test_throttling_is_retried_by_botocore_then_exit_5(cli: Cli, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A throttled call is retried by botocore's standard retry mode (the function's own
    BOTO_CONFIG: max_attempts requests, with back-off), then reported in one line, exit 5."""
    fault = AwsFault("ThrottlingException").install(monkeypatch)
    run = cli("fix", "app-db", "--yes")
    assert run.code == ExitCode.RETRY
    assert one_line(run.err) and "ThrottlingException" in run.err and "try again later" in run.err
    # botocore reads max_attempts as retries after the first request (and rewrites the dict).
    retries = BOTO_CONFIG.retries
    assert fault.attempts == retries.get("total_max_attempts", retries.get("max_attempts", 0) + 1) == 6
    assert len(fault.sleeps) == fault.attempts - 1 and all(delay >= 0 for delay in fault.sleeps)


def test_a_throttled_call_that_recovers_succeeds(cli: Cli, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two throttled answers, then the real one: the command succeeds without the operator noticing."""
    arn = create_secret(aws, "app-db", VALUE)
    fault = AwsFault("ThrottlingException", operation="DescribeSecret", times=2).install(monkeypatch)
    run = cli("status", arn)
    assert run.code == 0, run.text
    assert fault.attempts == 2 and len(fault.sleeps) == 2
    assert "Throttling" not in run.text


def test_unexpected_errors_are_one_line_unless_debug(cli: Cli, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug (an exception rotator does not know) exits 70 with one line; --debug adds the traceback."""
    create_secret(aws, "app-db", VALUE)

    def broken(self: Any, secret_id: str) -> Any:
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(SecretsManagerStore, "describe", broken)
    run = cli("status", "app-db")
    assert run.code == ExitCode.INTERNAL
    assert one_line(run.err) and "RuntimeError" in run.err and "--debug" in run.err
    debug = cli("--debug", "status", "app-db")
    assert debug.code == ExitCode.INTERNAL
    assert "Traceback" in debug.err and "something nobody expected" in debug.err


def test_json_mode_errors_are_also_a_json_document(cli: Cli, aws: Any) -> None:
    """With --json a fatal error is still one stderr line, plus a JSON document on stdout."""
    run = cli("fix", "no-such-secret", "--yes", "--json")
    assert run.code == ExitCode.NOT_FOUND
    assert one_line(run.err)
    assert run.json()["ok"] is False


# -- --endpoint-url, --region, --profile, against a moto server ----------------------


@pytest.fixture
def eu_secret(moto_endpoint: str) -> str:
    client = boto3.client("secretsmanager", region_name="eu-west-1", endpoint_url=moto_endpoint)
    return create_secret(client, "eu-app-db", VALUE)


def test_endpoint_url_and_region_select_where_secrets_are_read(cli: Cli, moto_endpoint: str, eu_secret: str) -> None:
    """--endpoint-url reaches the moto server; --region picks the region the secret lives in."""
    found = cli("status", "eu-app-db", "--endpoint-url", moto_endpoint, "--region", "eu-west-1")
    assert found.code == 0, found.text
    assert eu_secret in found.out
    elsewhere = cli("--endpoint-url", moto_endpoint, "--region", "us-east-1", "status", "eu-app-db")
    assert elsewhere.code == ExitCode.NOT_FOUND


def test_profile_supplies_region_and_credentials(
    cli: Cli, moto_endpoint: str, eu_secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--profile reads the AWS config files like the AWS CLI; an unknown profile is a usage error."""
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = eu-west-1\naws_access_key_id = opskey\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    run = cli("status", "eu-app-db", "--endpoint-url", moto_endpoint, "--profile", "ops")
    assert run.code == 0, run.text
    unknown = cli("status", "eu-app-db", "--endpoint-url", moto_endpoint, "--profile", "nope")
    assert unknown.code == ExitCode.USAGE and one_line(unknown.err) and "nope" in unknown.err


def test_missing_credentials_and_region_are_one_line(
    cli: Cli, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials: exit 4. No region: exit 2. Each in one line."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    monkeypatch.setattr("botocore.credentials.InstanceMetadataProvider.load", lambda self: None)
    monkeypatch.setattr("botocore.credentials.ContainerProvider.load", lambda self: None)
    run = cli("status", "app-db", "--endpoint-url", moto_endpoint)
    assert run.code == ExitCode.DENIED
    assert one_line(run.err) and "no AWS credentials" in run.err
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable)
    run = cli("status", "app-db", "--endpoint-url", moto_endpoint)
    assert run.code == ExitCode.USAGE and one_line(run.err) and "region" in run.err


def test_an_unreachable_endpoint_is_exit_5(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed endpoint port: botocore retries the connection, then one line and exit 5."""
    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda seconds: None)
    run = cli("status", "app-db", "--endpoint-url", "http://127.0.0.1:9")
    assert run.code == ExitCode.RETRY
    assert one_line(run.err) and "127.0.0.1:9" in run.err


def test_console_script_runs_as_a_process(moto_endpoint: str, eu_secret: str) -> None:
    """The installed ``rotator`` script: exit codes and one-line errors in a real process."""
    script = Path(sys.executable).with_name("rotator")
    env = {**os.environ, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
    ok = subprocess.run(
        [str(script), "status", "eu-app-db", "--endpoint-url", moto_endpoint, "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert '"name": "eu-app-db"' in ok.stdout
    missing = subprocess.run(
        [str(script), "fix", "nothing-here", "--yes", "--endpoint-url", moto_endpoint],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == ExitCode.NOT_FOUND
    assert one_line(missing.stderr) and missing.stdout == ""


def test_a_password_in_an_unexpected_message_is_masked(cli: Cli, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last line of defence: even a traceback (--debug) that quotes a secret value shows
    every password the CLI has read as ********."""
    arn = create_secret(aws, "app-db", VALUE)

    def leaky_parse(secret_id: str, secret_string: str | None, **_: Any) -> Any:
        raise RuntimeError(f"could not parse {secret_string}")

    monkeypatch.setattr("rotator.secret.DatabaseSecret.parse", leaky_parse)
    run = cli("--debug", "check", arn, "--no-database")
    assert run.code == ExitCode.INTERNAL
    assert "could not parse" in run.err and "********" in run.err
    assert run.leaks([VALUE["password"]]) == []


@pytest.mark.parametrize("hours", ["inf", "1e300", "nan", "-1"])
def test_an_impossible_stale_after_is_a_usage_error(cli: Cli, aws: Any, hours: str) -> None:
    """--stale-after that is infinite, absurd, not a number or negative: exit 2, one line, no traceback."""
    for command in (["status", "app-db"], ["check", "app-db", "--no-database"], ["fix", "app-db", "--yes"]):
        run = cli(*command, "--stale-after", hours)
        assert run.code == ExitCode.USAGE, (command, run.text)
        assert one_line(run.err) and "--stale-after" in run.err


def test_a_broken_credential_source_is_a_credentials_error(
    cli: Cli, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty AWS_CONTAINER_CREDENTIALS_FULL_URI (and no keys) is reported as a credentials problem,
    exit 4, not as an invalid --endpoint-url."""
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable)
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
    run = cli("status", "app-db", "--endpoint-url", moto_endpoint)
    assert run.code == ExitCode.DENIED, run.text
    assert one_line(run.err) and "AWS credentials could not be loaded" in run.err
    assert "endpoint-url" not in run.err
