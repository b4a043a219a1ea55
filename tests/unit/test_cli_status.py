"""``rotator status`` and ``rotator fix`` against moto: labels, stuck rotations, and
clearing a stale AWSPENDING label whose version never got a value (no setSecret can
have changed the database: no login needed). What fix does when the database may hold
the pending password is tests/integration/test_fix.py (real servers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from rotator.repair import Repair, RepairAction, RepairPlan
from rotator.secret_store import SecretsManagerStore
from tests.support.aws import begin_rotation, create_secret, stages
from tests.support.cli import Cli

VALUE = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "app", "password": "pw-status-123456"}


@pytest.fixture
def secret(aws: Any) -> str:
    return create_secret(aws, "app-db", VALUE)


@pytest.fixture
def stuck(aws: Any, secret: str) -> str:
    """A rotation that started (AWSPENDING staged) and never finished; returns its token."""
    return begin_rotation(aws, secret)


def current_version(client: Any, arn: str) -> str:
    return next(version for version, labels in stages(client, arn).items() if "AWSCURRENT" in labels)


def test_status_of_a_secret_without_rotation(cli: Cli, secret: str, aws: Any) -> None:
    """A plain secret: rotation not configured, its AWSCURRENT version shown, exit 0."""
    run = cli("status", secret)
    assert run.code == 0, run.text
    assert "rotation    not configured" in run.out
    assert current_version(aws, secret) in run.out
    assert "STUCK" not in run.out


def test_status_reports_a_rotation_in_progress_without_failing(cli: Cli, secret: str, stuck: str) -> None:
    """A pending version younger than the rotation window is "rotating", not stuck (exit 0)."""
    run = cli("status", secret)
    assert run.code == 0, run.text
    assert f"AWSPENDING on version {stuck}" in run.out
    assert "rotating" in run.out and "STUCK" not in run.out


def test_status_reports_a_stale_pending_version_as_stuck(
    cli: Cli, secret: str, stuck: str, cli_clock: Callable[[float], None]
) -> None:
    """A pending version older than the window (24h without a Duration) is stuck: exit 1 and the fix named."""
    cli_clock(25)
    run = cli("status", secret)
    assert run.code == 1
    assert "STUCK" in run.out and stuck in run.out
    assert "rotator fix app-db" in run.out


def test_status_json_describes_labels_and_the_stale_pending_version(
    cli: Cli, secret: str, stuck: str, aws: Any, cli_clock: Callable[[float], None]
) -> None:
    """--json gives labels, the rotation function and the pending version's age and staleness."""
    cli_clock(30)
    run = cli("status", secret, "--json")
    assert run.code == 1
    (entry,) = run.json()["secrets"]
    assert entry["labels"] == {"AWSCURRENT": current_version(aws, secret), "AWSPENDING": stuck}
    assert entry["pending"]["version"] == stuck
    assert entry["pending"]["stale"] is True
    assert entry["pending"]["age_seconds"] >= 30 * 3600 - 60
    assert entry["function_arn"].endswith(":function:rotator-not-deployed")


def test_stale_after_overrides_the_window(
    cli: Cli, secret: str, stuck: str, cli_clock: Callable[[float], None]
) -> None:
    """--stale-after makes a younger pending version count as stuck."""
    cli_clock(2)
    assert cli("status", secret).code == 0
    assert cli("status", secret, "--stale-after", "1").code == 1


def test_status_all_lists_every_secret_and_filters_by_function(cli: Cli, aws: Any, stuck: str) -> None:
    """--all walks ListSecrets; --function-arn keeps only the secrets that function rotates."""
    other = create_secret(aws, "other-db", VALUE)
    everything = cli("status", "--all", "--json").json()["secrets"]
    assert {entry["name"] for entry in everything} == {"app-db", "other-db"}
    function = everything[0]["function_arn"] or everything[1]["function_arn"]
    filtered = cli("status", "--all", "--function-arn", function, "--json").json()["secrets"]
    assert [entry["name"] for entry in filtered] == ["app-db"]
    assert other not in [entry["arn"] for entry in filtered]


def test_status_needs_secrets_or_all(cli: Cli, aws: Any) -> None:
    """Neither secrets nor --all is a usage error (exit 2, one line)."""
    run = cli("status")
    assert run.code == 2
    assert run.err.count("\n") == 1


def test_fix_clears_a_stale_pending_label_and_keeps_awscurrent(
    cli: Cli, secret: str, stuck: str, aws: Any, cli_clock: Callable[[float], None]
) -> None:
    """fix --yes removes AWSPENDING from the stale version only; AWSCURRENT stays where it was,
    and a new rotation can then be staged."""
    before = current_version(aws, secret)
    cli_clock(48)
    run = cli("fix", secret, "--yes")
    assert run.code == 0, run.text
    assert f"removed AWSPENDING from {stuck}" in run.out
    labels = stages(aws, secret)
    assert "AWSPENDING" not in [label for version in labels.values() for label in version]
    assert current_version(aws, secret) == before
    assert aws.get_secret_value(SecretId=secret, VersionStage="AWSCURRENT")["VersionId"] == before
    assert cli("status", secret).code == 0
    begin_rotation(aws, secret)  # the next rotation can start


def test_fix_refuses_a_pending_version_within_its_window(cli: Cli, secret: str, stuck: str, aws: Any) -> None:
    """A pending version still inside its window may belong to a running rotation: fix leaves it (exit 1)
    unless --force."""
    run = cli("fix", secret, "--yes")
    assert run.code == 1
    assert "still be running" in run.out
    assert stages(aws, secret)[stuck] == ["AWSPENDING"]
    assert cli("fix", secret, "--yes", "--force").code == 0
    assert stuck not in {v for v, labels in stages(aws, secret).items() if "AWSPENDING" in labels}


def test_fix_asks_before_acting_and_respects_no(
    cli: Cli, secret: str, stuck: str, aws: Any, cli_clock: Callable[[float], None]
) -> None:
    """At a terminal, fix states its plan and does nothing unless the answer is yes."""
    cli_clock(48)
    declined = cli("fix", secret, stdin="n\n", tty=True)
    assert declined.code == 1
    assert "AWSCURRENT stays on" in declined.err and "Proceed?" in declined.err
    assert stages(aws, secret)[stuck] == ["AWSPENDING"]
    accepted = cli("fix", secret, stdin="y\n", tty=True)
    assert accepted.code == 0
    assert stages(aws, secret)[stuck] == []


def test_fix_without_a_terminal_needs_yes(
    cli: Cli, secret: str, stuck: str, aws: Any, cli_clock: Callable[[float], None]
) -> None:
    """In a script (stdin not a terminal) fix never guesses: exit 2, nothing changed."""
    cli_clock(48)
    run = cli("fix", secret, stdin="y\n")
    assert run.code == 2
    assert "--yes" in run.err
    assert stages(aws, secret)[stuck] == ["AWSPENDING"]


def test_fix_with_nothing_to_fix_succeeds(cli: Cli, secret: str) -> None:
    """No pending version: fix says so and exits 0."""
    run = cli("fix", secret, "--yes")
    assert run.code == 0
    assert "nothing to fix" in run.out


def test_fix_leaves_a_rotation_that_finishes_meanwhile(
    cli: Cli,
    secret: str,
    stuck: str,
    aws: Any,
    cli_clock: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the pending version becomes AWSCURRENT between the plan and the action, fix does nothing."""
    cli_clock(48)
    aws.put_secret_value(
        SecretId=secret, ClientRequestToken=stuck, SecretString='{"x": 1}', VersionStages=["AWSPENDING"]
    )
    # What the database holds is test_fix.py's business (real servers): here, AWSCURRENT logs in.
    monkeypatch.setattr(Repair, "plan", lambda *_: RepairPlan(RepairAction.CLEAR, "AWSCURRENT logs in", 1))
    real_describe = SecretsManagerStore.describe
    calls = {"n": 0}

    def describe(self: SecretsManagerStore, secret_id: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the re-read just before acting: the rotation finishes now
            old = current_version(aws, secret)
            aws.update_secret_version_stage(
                SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=stuck, RemoveFromVersionId=old
            )
        return real_describe(self, secret_id)

    monkeypatch.setattr(SecretsManagerStore, "describe", describe)
    run = cli("fix", secret, "--yes")
    assert run.code == 1
    assert "labels changed meanwhile" in run.out
    assert "AWSCURRENT" in stages(aws, secret)[stuck]
    assert "AWSPENDING" in stages(aws, secret)[stuck]


def test_fix_of_an_unknown_secret_is_one_line_exit_3(cli: Cli, aws: Any) -> None:
    """An unknown secret: exit 3, one error line, no traceback."""
    run = cli("fix", "no-such-secret", "--yes")
    assert run.code == 3
    assert run.err.count("\n") == 1 and "ResourceNotFoundException" in run.err
    assert "Traceback" not in run.err
