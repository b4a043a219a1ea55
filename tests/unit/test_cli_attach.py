"""``rotator attach`` against moto (--no-database): check first, attach what passes,
continue past failures, and send Secrets Manager the schedule that was asked for."""

from __future__ import annotations

from typing import Any

import pytest

from rotator.cli import context
from tests.support.attached import attach_without_rotating
from tests.support.aws import FAKE_FUNCTION, create_secret
from tests.support.cli import Cli, moto_rotation_function

APP = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "app", "password": "pw-app-1234567"}
ADMIN = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "admin", "password": "pw-admin-7654321"}


@pytest.fixture
def function_arn(aws: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    return moto_rotation_function(monkeypatch)


@pytest.fixture
def rotate_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of every RotateSecret call the CLI makes."""
    calls: list[dict[str, Any]] = []
    make_session = context.make_session

    def recording(profile: str | None, region: str | None) -> Any:
        session = make_session(profile, region)
        session.events.register(
            "provide-client-params.secrets-manager.RotateSecret", lambda params, **_: calls.append(dict(params))
        )
        return session

    monkeypatch.setattr(context, "make_session", recording)
    return calls


@pytest.fixture
def secrets(aws: Any) -> dict[str, str]:
    """Two good secrets and two that check refuses (unusable value, missing admin secret)."""
    admin = create_secret(aws, "rds-admin", ADMIN)
    return {
        "good-1": create_secret(aws, "good-1", {**APP, "masterarn": admin}),
        "good-2": create_secret(aws, "good-2", {**APP, "username": "app2", "masterarn": admin}),
        "bad-json": aws.create_secret(Name="bad-json", SecretString="{not json")["ARN"],
        "no-admin": create_secret(aws, "no-admin", {**APP, "masterarn": "missing-admin"}),
    }


def rotation_function_of(client: Any, arn: str) -> str | None:
    return client.describe_secret(SecretId=arn).get("RotationLambdaARN") or None


def test_attach_attaches_good_secrets_and_refuses_bad_ones(
    cli: Cli, aws: Any, function_arn: str, secrets: dict[str, str]
) -> None:
    """Over a mix, the good secrets get the function, the failing ones are refused and left alone,
    the run continues to the end and the summary and exit code (1) say so."""
    run = cli(
        "attach", *secrets.values(), "--function-arn", function_arn, "--schedule", "rate(30 days)", "--no-database"
    )
    assert run.code == 1
    assert rotation_function_of(aws, secrets["good-1"]) == function_arn
    assert rotation_function_of(aws, secrets["good-2"]) == function_arn
    assert rotation_function_of(aws, secrets["bad-json"]) is None
    assert rotation_function_of(aws, secrets["no-admin"]) is None
    assert "summary: 2 attached, 2 refused" in run.out
    assert "refused  bad-json: check failed: secret.value" in run.out
    assert "refused  no-admin: check failed: admin.secret" in run.out
    for index in range(1, 5):
        assert f"[{index}/4]" in run.err
    assert run.leaks([APP["password"], ADMIN["password"]]) == []


def test_attach_sends_the_schedule_window_and_rotate_now_choice(
    cli: Cli, function_arn: str, secrets: dict[str, str], rotate_calls: list[dict[str, Any]]
) -> None:
    """RotateSecret gets the function, ScheduleExpression and Duration, and RotateImmediately
    false by default, true with --rotate-now."""
    base = ["--function-arn", function_arn, "--schedule", "cron(0 4 ? * SUN *)", "--duration", "3", "--no-database"]
    assert cli("attach", secrets["good-1"], *base).code == 0
    assert cli("attach", secrets["good-2"], *base, "--rotate-now").code == 0
    first, second = rotate_calls
    assert first == {
        "SecretId": secrets["good-1"],
        "RotationLambdaARN": function_arn,
        "RotationRules": {"ScheduleExpression": "cron(0 4 ? * SUN *)", "Duration": "3h"},
        "RotateImmediately": False,
    }
    assert second["SecretId"] == secrets["good-2"] and second["RotateImmediately"] is True


def test_force_attaches_a_secret_that_fails_check(
    cli: Cli, aws: Any, function_arn: str, secrets: dict[str, str]
) -> None:
    """--force attaches despite failed checks, and says so."""
    run = cli(
        "attach", secrets["no-admin"], "--function-arn", function_arn, "--schedule", "rate(7 days)",
        "--no-database", "--force",
    )  # fmt: skip
    assert run.code == 0
    assert rotation_function_of(aws, secrets["no-admin"]) == function_arn
    assert "despite failed checks (--force)" in run.out


def test_dry_run_changes_nothing(
    cli: Cli, aws: Any, function_arn: str, secrets: dict[str, str], rotate_calls: list[dict[str, Any]]
) -> None:
    """--dry-run checks and reports what it would do, and makes no RotateSecret call."""
    run = cli(
        "attach", secrets["good-1"], "--function-arn", function_arn, "--schedule", "rate(30 days)",
        "--no-database", "--dry-run", "--json",
    )  # fmt: skip
    assert run.code == 0
    assert run.json()["secrets"][0]["result"] == "would-attach"
    assert rotate_calls == []
    assert rotation_function_of(aws, secrets["good-1"]) is None


def test_attach_reports_unknown_secrets_and_a_refused_call(cli: Cli, aws: Any, secrets: dict[str, str]) -> None:
    """An unknown secret and a RotateSecret that fails (the function does not exist) are each
    reported; the worst outcome (not found: 3) is the exit code."""
    missing_function = "arn:aws:lambda:us-east-1:123456789012:function:not-deployed"
    run = cli(
        "attach", "no-such-secret", secrets["good-1"], "--function-arn", missing_function,
        "--schedule", "rate(30 days)", "--no-database", "--json",
    )  # fmt: skip
    assert run.code == 3
    results = {entry["secret"]: entry for entry in run.json()["secrets"]}
    assert results["no-such-secret"]["result"] == "failed"
    assert results[secrets["good-1"]]["result"] == "failed"
    assert "RotateSecret failed: ResourceNotFoundException" in results[secrets["good-1"]]["detail"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--schedule", "every tuesday"),
        ("--function-arn", "arn:aws:iam::123456789012:role/not-a-function"),
        ("--duration", "36"),
    ],
)
def test_attach_rejects_bad_arguments_in_one_line(cli: Cli, option: str, value: str) -> None:
    """A malformed schedule, function ARN or window: exit 2, one line, before any AWS call."""
    args = {
        "--function-arn": "arn:aws:lambda:us-east-1:123456789012:function:rotator",
        "--schedule": "rate(30 days)",
    }
    args[option] = value
    run = cli("attach", "app-db", *[item for pair in args.items() for item in pair])
    assert run.code == 2
    assert run.err.count("\n") == 1 and "rotator attach --help" in run.err


def test_an_overdue_rotation_does_not_stop_attaching_it_again(
    cli: Cli, aws: Any, function_arn: str, secrets: dict[str, str], cli_clock: Any
) -> None:
    """A secret whose due rotation never completed (rotation.last fails: check exits 1) is still
    attached: re-attaching is the usual cure, and the failure is about the past, not the next rotation."""
    arn = secrets["good-1"]
    attach_without_rotating(aws, arn, FAKE_FUNCTION, days=1)  # earlier, to another function
    cli_clock(24 * 5)
    check = cli("check", arn, "--no-database", "--json")
    (report,) = check.json()["secrets"]
    assert check.code == 1 and [f["check"] for f in report["findings"] if f["level"] == "fail"] == ["rotation.last"]
    run = cli("attach", arn, "--function-arn", function_arn, "--schedule", "rate(30 days)", "--no-database")
    assert run.code == 0, run.text
    assert rotation_function_of(aws, arn) == function_arn


@pytest.mark.parametrize(
    ("qualified", "kind"),
    [
        ("arn:aws:lambda:us-east-1:123456789012:function:rotator:live", "alias 'live'"),
        ("arn:aws:lambda:us-east-1:123456789012:function:rotator:7", "version '7'"),
        ("arn:aws:lambda:us-east-1:123456789012:function:rotator:$LATEST", "version '$LATEST'"),
    ],
)
def test_attach_refuses_a_qualified_function_arn(
    cli: Cli, aws: Any, secrets: dict[str, str], rotate_calls: list[dict[str, Any]], qualified: str, kind: str
) -> None:
    """An alias or version ARN would not match AllowRotationLambdaArn (the function's calls would be
    denied): exit 2, one line naming the qualifier and the unqualified ARN to use, no AWS call."""
    run = cli("attach", secrets["good-1"], "--function-arn", qualified, "--schedule", "rate(30 days)")
    assert run.code == 2
    assert run.err.count("\n") == 1
    assert kind in run.err and "AllowRotationLambdaArn" in run.err
    assert "use the unqualified ARN arn:aws:lambda:us-east-1:123456789012:function:rotator " in run.err
    assert rotate_calls == [] and rotation_function_of(aws, secrets["good-1"]) is None
