"""``rotator rotate SECRET --local``: the four steps in this process, with one token,
against a moto server (started here) or, as on AWS, resuming a rotation that
Secrets Manager started (``--token``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.aws import begin_rotation, stages
from tests.support.cli import Cli
from tests.support.families import set_password
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = [pytest.mark.integration, pytest.mark.every_engine]

OUTCOMES = ["created", "twin-synced", "twin-verified", "promoted"]


def labels(world: World) -> dict[str, list[str]]:
    return stages(world.client, world.app_arn)


def version_with(world: World, label: str) -> str | None:
    return next((version for version, found in labels(world).items() if label in found), None)


def test_rotate_local_rotates_through_a_moto_server(server_world: World, db_cli: Cli) -> None:
    """Against --endpoint-url on 127.0.0.1 the CLI stages the rotation and runs the four steps:
    the twin becomes current, both users work, and no password is printed."""
    world = server_world
    before = version_with(world, "AWSCURRENT")
    run = db_cli("rotate", world.app_arn, "--local")
    assert run.code == 0, run.text
    for index, (step, outcome) in enumerate(
        zip(("createSecret", "setSecret", "testSecret", "finishSecret"), OUTCOMES, strict=True), 1
    ):
        assert f"[{index}/4] {step}: {outcome}" in run.err
    token = version_with(world, "AWSCURRENT")
    assert token != before and version_with(world, "AWSPREVIOUS") == before
    assert f"AWSCURRENT is version {token} (user 'app_clone')" in run.out
    assert world.app_secret()["username"] == "app_clone"
    assert world.can_use_grants(world.app_secret())
    assert world.can_use_grants(world.app_secret("AWSPREVIOUS"))
    assert run.leaks(world.all_passwords()) == []


def test_rotate_local_json_and_a_second_rotation(server_world: World, db_cli: Cli) -> None:
    """--json reports each step's outcome; a second rotation alternates back to the first user."""
    first = db_cli("rotate", server_world.app_arn, "--local", "--json")
    assert first.code == 0, first.text
    document = first.json()
    assert [step["outcome"] for step in document["steps"]] == OUTCOMES
    assert document["token"] == version_with(server_world, "AWSCURRENT") and document["username"] == "app_clone"
    second = db_cli("rotate", server_world.app_arn, "--local", "--json")
    assert second.code == 0, second.text
    assert second.json()["username"] == "app"
    assert server_world.can_use_grants(server_world.app_secret())


def test_a_failed_step_leaves_awscurrent_and_can_be_resumed(
    server_world: World, db_cli: Cli, db: DatabaseServer
) -> None:
    """When setSecret fails, the CLI says which step, keeps AWSCURRENT, leaves AWSPENDING with its
    value; once the cause is fixed, --token resumes the same rotation to the end."""
    world = server_world
    before = version_with(world, "AWSCURRENT")
    admin_password = world.admin_secret()["password"]
    set_password(db, "admin", "not-what-the-secret-says-1")
    failed = db_cli("rotate", world.app_arn, "--local")
    assert failed.code == 1
    assert "[1/4] createSecret: created" in failed.err and "[2/4] setSecret: FAILED" in failed.err
    token = version_with(world, "AWSPENDING")
    assert token is not None and token != before
    assert version_with(world, "AWSCURRENT") == before
    assert f"--local --token {token}" in failed.out
    assert world.app_secret("AWSPENDING")["username"] == "app_clone"

    set_password(db, "admin", admin_password)
    resumed = db_cli("rotate", world.app_arn, "--local", "--token", token)
    assert resumed.code == 0, resumed.text
    assert "[1/4] createSecret: pending-exists" in resumed.err
    assert version_with(world, "AWSCURRENT") == token
    assert world.can_use_grants(world.app_secret())
    assert failed.leaks(world.all_passwords()) == [] and resumed.leaks(world.all_passwords()) == []


def test_rotate_local_will_not_start_over_a_rotation_in_progress(server_world: World, db_cli: Cli) -> None:
    """A pending version already staged: starting another is refused (exit 2) and the way to resume named."""
    token = begin_rotation(server_world.client, server_world.app_arn)
    run = db_cli("rotate", server_world.app_arn, "--local")
    assert run.code == 2
    assert f"--token {token}" in run.err
    assert version_with(server_world, "AWSPENDING") == token


def test_on_aws_rotate_local_only_resumes(world: World, db_cli: Cli, aws: Any) -> None:
    """Without an emulator endpoint (AWS) the CLI refuses to start a rotation (RotateSecret would run
    the deployed function) and stages nothing; a rotation Secrets Manager started is finished with --token."""
    before = labels(world)
    refused = db_cli("rotate", world.app_arn, "--local")
    assert refused.code == 2
    assert "aws secretsmanager rotate-secret" in refused.err
    assert labels(world) == before

    token = begin_rotation(world.client, world.app_arn)  # what RotateSecret does on AWS
    resumed = db_cli("rotate", world.app_arn, "--local", "--token", token, "--debug")
    assert resumed.code == 0, resumed.text
    assert version_with(world, "AWSCURRENT") == token
    assert "INFO" in resumed.err  # --debug shows the steps' own log lines, on stderr
    assert resumed.leaks(world.all_passwords()) == []
    wrong = db_cli("rotate", world.app_arn, "--local", "--token", token)
    assert wrong.code == 2 and "is not the pending version" in wrong.err


def test_boto3_endpoint_variable_counts_as_the_emulator(
    server_world: World, db_cli: Cli, db: DatabaseServer, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS_ENDPOINT_URL_SECRETS_MANAGER (boto3's own setting) on 127.0.0.1 is an emulator too."""
    db_cli.base_args = ["--ca-bundle", str(db.pki.ca_file)]
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto_endpoint)
    run = db_cli("rotate", server_world.app_arn, "--local")
    assert run.code == 0, run.text
    assert server_world.app_secret()["username"] == "app_clone"
