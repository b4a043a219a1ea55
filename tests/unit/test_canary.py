"""The readiness check's parts that need no database: its settings, the schedule rules
that say a rotation is overdue, and how the canary handler reports a check that broke,
a listing it was refused and its metrics' dimensions (moto; the secrets' hosts refuse
connections on 127.0.0.1)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from rotator import canary
from rotator.errors import SecretStoreError
from rotator.ports import SecretDescription
from rotator.schedule import OVERDUE_SLACK, rotation_interval, schedule_state
from rotator.secret_store import SecretsManagerStore
from rotator.settings import ReadinessSettings, SettingsError
from tests.support.aws import FAKE_FUNCTION, create_secret
from tests.support.lambda_context import FakeLambdaContext
from tests.support.observe import Emitted

NOW = datetime.datetime(2026, 6, 15, 12, 0, tzinfo=datetime.UTC)
DAY = datetime.timedelta(days=1)
UNREACHABLE = {"engine": "mariadb", "host": "127.0.0.1", "port": 1, "username": "app", "password": "pw-unit-7Hq2"}


# -- settings ------------------------------------------------------------------------


def test_readiness_settings_read_the_list_and_the_option() -> None:
    """The secret list is comma-separated (blanks and repeats dropped); with the stack's function the
    listing option is on unless turned off (secrets attached by rotator attach are checked too);
    without a function (the rotation function's own environment) it is off."""
    settings = ReadinessSettings.from_env(
        {"CANARY_SECRET_ARNS": " arn:a , ,arn:b,arn:a", "ROTATION_FUNCTION_ARN": FAKE_FUNCTION}
    )
    assert settings.secret_ids == ("arn:a", "arn:b")
    assert settings.rotation_function_arn == FAKE_FUNCTION and settings.include_rotated_by_function is True
    off = ReadinessSettings.from_env({"ROTATION_FUNCTION_ARN": FAKE_FUNCTION, "CANARY_CHECK_ALL_ROTATED": "false"})
    assert off.include_rotated_by_function is False
    assert ReadinessSettings.from_env({}) == ReadinessSettings()


def test_listing_every_secret_of_the_function_needs_the_function() -> None:
    """CANARY_CHECK_ALL_ROTATED without ROTATION_FUNCTION_ARN is refused, naming both variables."""
    with pytest.raises(SettingsError, match="CANARY_CHECK_ALL_ROTATED needs ROTATION_FUNCTION_ARN"):
        ReadinessSettings.from_env({"CANARY_CHECK_ALL_ROTATED": "true"})


# -- the schedule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "interval"),
    [
        ({"AutomaticallyAfterDays": 30}, datetime.timedelta(days=30)),
        ({"ScheduleExpression": "rate(10 days)"}, datetime.timedelta(days=10)),
        ({"ScheduleExpression": "rate(4 hours)", "Duration": "1h"}, datetime.timedelta(hours=4)),
        ({"ScheduleExpression": "cron(0 4 1 * ? *)", "Duration": "4h"}, None),
        ({}, None),
    ],
)
def test_a_fixed_interval_comes_from_rate_or_days_only(rules: dict[str, Any], interval: datetime.timedelta) -> None:
    """rate() and AutomaticallyAfterDays have an interval; cron() has none (only NextRotationDate tells)."""
    assert rotation_interval(rules) == interval


def describe(rules: dict[str, Any], last: datetime.datetime | None, due: datetime.datetime | None) -> SecretDescription:
    return SecretDescription("arn", "app-db", True, {}, FAKE_FUNCTION, rules, last, due)


def test_a_next_rotation_date_past_its_window_is_overdue() -> None:
    """NextRotationDate in the past beyond the window and a day of slack: overdue since then (cron too)."""
    rules = {"ScheduleExpression": "cron(0 4 1 * ? *)", "Duration": "4h"}
    due = NOW - datetime.timedelta(hours=4) - OVERDUE_SLACK - datetime.timedelta(minutes=1)
    assert schedule_state(describe(rules, None, due), NOW).overdue_since == due
    within = NOW - datetime.timedelta(hours=4)
    state = schedule_state(describe(rules, None, within), NOW)
    assert state.overdue_since is None and state.due == within


def test_a_last_rotation_older_than_the_interval_is_overdue() -> None:
    """LastRotatedDate plus the rate() interval, the window and a day long past: overdue, even when
    NextRotationDate is missing; the due date is then the last rotation plus the interval."""
    rules = {"ScheduleExpression": "rate(10 days)", "Duration": "2h"}
    last = NOW - 12 * DAY
    state = schedule_state(describe(rules, last, None), NOW)
    assert state.overdue_since == last + 10 * DAY and state.due == last + 10 * DAY
    recent = NOW - 10 * DAY
    assert schedule_state(describe(rules, recent, None), NOW).overdue_since is None


def test_the_next_rotation_date_is_preferred_for_the_due_date() -> None:
    """When Secrets Manager names the next date, that is the one reported."""
    due = NOW + 3 * DAY
    assert schedule_state(describe({"AutomaticallyAfterDays": 30}, NOW - DAY, due), NOW).due == due


# -- the handler -----------------------------------------------------------------------


class Run:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self) -> tuple[dict[str, Any] | None, BaseException | None, Emitted]:
        self._capsys.readouterr()
        try:
            result, error = canary.lambda_handler({}, FakeLambdaContext()), None
        except Exception as exc:
            result, error = None, exc
        captured = self._capsys.readouterr()
        return result, error, Emitted.parse(captured.out + captured.err)


@pytest.fixture
def run(aws: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    monkeypatch.setenv("ROTATION_FUNCTION_ARN", FAKE_FUNCTION)
    monkeypatch.setenv("CANARY_CHECK_ALL_ROTATED", "false")  # the named secrets only, unless a case says
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "1")
    canary._container.cache_clear()
    yield Run(capsys)
    canary._container.cache_clear()


def test_a_check_that_breaks_is_reported_and_the_other_secrets_are_checked(
    aws: Any, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception rotator did not anticipate, in one secret's check, makes that secret not ready
    (readiness.error: type and place, its text withheld) and the next secret is still checked."""
    broken = create_secret(aws, "broken-db", UNREACHABLE)
    fine = create_secret(aws, "fine-db", UNREACHABLE)
    monkeypatch.setenv("CANARY_SECRET_ARNS", f"{broken},{fine}")
    describe_secret = SecretsManagerStore.describe

    def fail_for_one(store: SecretsManagerStore, secret_id: str) -> SecretDescription:
        if secret_id == broken:
            raise ValueError("text that must not be shown")
        return describe_secret(store, secret_id)

    monkeypatch.setattr(SecretsManagerStore, "describe", fail_for_one)
    result, error, emitted = run()
    assert error is None and result is not None and result["checked"] == 2
    (line,) = [log for log in emitted.logs if log.get("secret") == "broken-db"]
    assert line["check"] == "readiness.error" and "unexpected ValueError at test_canary.py" in line["message"]
    assert line["secret_arn"] == broken
    assert "must not be shown" not in emitted.text
    assert emitted.metric("Ready", SecretArn=broken) == [0.0]
    assert any(log.get("secret") == "fine-db" and log["check"] == "db.reach" for log in emitted.logs if "check" in log)


def answer_with(code: str) -> Callable[..., tuple[AWSResponse, dict[str, Any]]]:
    """A before-call handler: botocore raises its answer as the service's error, no request made."""

    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        error = {"Error": {"Code": code, "Message": f"{code} (the test's answer)"}}
        return AWSResponse("https://secretsmanager.invalid", 400, {}, None), error

    return answer


def test_refused_credentials_stop_the_run_with_one_error_line(
    aws: Any, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials Secrets Manager refuses would fail every secret alike: the run stops at the first,
    logs one 'readiness check failed' line naming the error, and fails (CanaryErrorsAlarm)."""
    monkeypatch.setenv("CANARY_SECRET_ARNS", create_secret(aws, "app-db", UNREACHABLE))
    canary._container().api.client.meta.events.register(
        "before-call.secrets-manager.DescribeSecret", answer_with("UnrecognizedClientException")
    )
    _, error, emitted = run()
    assert isinstance(error, SecretStoreError) and error.code == "UnrecognizedClientException"
    (line,) = [log for log in emitted.logs if log["message"] == "readiness check failed"]
    assert line["error"] == "SecretStoreError" and "UnrecognizedClientException" in line["reason"]
    assert emitted.metric("Ready") == []
    assert emitted.metric("SecretsChecked") == [0.0] and emitted.metric("SecretsNotReady") == []


def test_a_refused_listing_still_reports_the_listed_secrets_then_fails(
    aws: Any, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the listing option, ListSecrets denied: the stack's own secrets are checked and
    published, then the invocation fails (the canary's error alarm) naming the refusal."""
    arn = create_secret(aws, "app-db", UNREACHABLE)
    monkeypatch.setenv("CANARY_SECRET_ARNS", arn)
    monkeypatch.setenv("CANARY_CHECK_ALL_ROTATED", "true")

    canary._container().api.client.meta.events.register(
        "before-call.secrets-manager.ListSecrets", answer_with("AccessDeniedException")
    )
    _, error, emitted = run()
    assert isinstance(error, SecretStoreError) and "ListSecrets failed: AccessDeniedException" in error.problem
    assert emitted.metric("Ready", SecretArn=arn) == [0.0]
    assert emitted.metric("SecretsChecked") == [1.0]
    (incomplete,) = [log for log in emitted.logs if log["message"] == "readiness check incomplete"]
    assert "AccessDeniedException" in incomplete["reason"]


def test_metrics_have_bounded_dimensions(aws: Any, run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ready is by SecretArn only (the full ARN: names repeat across regions; failing checks and the
    name are properties, not dimensions); the totals carry only the service; no password in any record."""
    arn = create_secret(aws, "app-db", UNREACHABLE)
    monkeypatch.setenv("CANARY_SECRET_ARNS", arn)
    _, error, emitted = run()
    assert error is None
    assert emitted.dimension_names() == {"SecretArn", "service"}
    (record,) = [r for r in emitted.emf if "Ready" in r]
    assert record["failing_checks"] == ["rotation.config", "db.reach"]
    assert record["SecretArn"] == arn and record["secret"] == "app-db"
    assert emitted.metric_names() == {"Ready", "SecretsChecked", "SecretsNotReady"}
    assert UNREACHABLE["password"] not in emitted.text


@pytest.mark.parametrize("all_rotated", ["false", "true"])
def test_nothing_to_check_is_not_ready(aws: Any, run: Run, monkeypatch: pytest.MonkeyPatch, all_rotated: str) -> None:
    """No secret named and (with the listing option) none rotated by the function: not green about
    nothing — SecretsNotReady 1 (the stack's alarm), SecretsChecked 0, an error line saying why."""
    create_secret(aws, "not-rotated-db", UNREACHABLE)  # exists, but the function does not rotate it
    monkeypatch.setenv("CANARY_SECRET_ARNS", "")
    monkeypatch.setenv("CANARY_CHECK_ALL_ROTATED", all_rotated)
    result, error, emitted = run()
    assert error is None and result is not None and result["checked"] == 0
    assert result["error"] == "no secret to check"
    assert emitted.metric("SecretsNotReady") == [1.0] and emitted.metric("SecretsChecked") == [0.0]
    (line,) = [log for log in emitted.logs if log["message"] == "readiness check found no secret to check"]
    assert line["level"] == "ERROR"
    reason = "no secret's rotation function is" if all_rotated == "true" else "CANARY_CHECK_ALL_ROTATED is false"
    assert reason in line["reason"] and "attach secrets" in line["action"]
    assert "readiness check done" not in emitted.text
    assert UNREACHABLE["password"] not in emitted.text


def test_a_same_named_secret_of_another_region_is_reported_under_its_own_arn(
    aws: Any, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A healthy-looking secret here and an ARN of another region with the same name: each is keyed
    by its full ARN; the other region's is not ready (not found here, or answered about another
    secret) and never borrows the local secret's report."""
    local = create_secret(aws, "app-db", UNREACHABLE)
    elsewhere = local.replace(":us-east-1:", ":eu-west-1:")
    partial = elsewhere[: -len("-AbCdEf")]  # without the suffix, as an ARN pattern names it
    monkeypatch.setenv("CANARY_SECRET_ARNS", ",".join((local, elsewhere, partial)))
    result, error, emitted = run()
    assert error is None and result is not None and result["checked"] == 3
    assert {local, elsewhere, partial} <= set(result["not_ready"])  # the local one fails db.reach here
    for foreign in (elsewhere, partial):
        (found,) = [log for log in emitted.logs if log.get("secret_arn") == foreign]
        assert found["check"] == "secret" and found["result"] == "fail"
        assert emitted.metric("Ready", SecretArn=foreign) == [0.0]
    (answered,) = [log for log in emitted.logs if log.get("secret_arn") == partial]
    assert f"Secrets Manager answered about {local}" in answered["message"]
    assert emitted.metric("Ready", SecretArn=local) == [0.0]
    local_checks = {log["check"] for log in emitted.logs if log.get("secret_arn") == local}
    assert {"rotation.config", "db.reach"} <= local_checks
    assert UNREACHABLE["password"] not in emitted.text
