"""``rotator lock`` against moto: the takeover of a hand-made lock with no unlocked moment.

moto stores resource policies and does not enforce them, so what is proven here is the
sequence of calls and the policy stored after each one (the call log): read, one
PutResourcePolicy per secret, a read back, never DeleteResourcePolicy, and no call after
which a secret that had a policy has none. What the merged policy then allows and denies
is the lock's, evaluated in tests/template/test_decisions.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from rotator import iam_policies, locks
from tests.support.aws import create_secret
from tests.support.cli import Cli

REGION = "us-east-1"
ACCOUNT = DEFAULT_ACCOUNT_ID
VPCE = "vpce-0a1b2c3d4e5f60718"
OTHER_VPCE = "vpce-0fedcba9876543210"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
FUNCTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/rotator-RotationFunctionRole-AbC123"
DEPLOY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator-deploy"
VALUE = {"engine": "mariadb", "host": "db.internal", "port": 3306, "username": "app", "password": "pw-lock-0123456789"}
LOCK_ARGS = ("--endpoint", VPCE, "--break-glass", BREAK_GLASS, "--writer", FUNCTION_ROLE)


def hand_made(*endpoints: str) -> dict[str, Any]:
    """The console setup's lock: Deny GetSecretValue unless aws:sourceVpce (as it was written by hand)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"aws:sourceVpce": list(endpoints) or VPCE}},
            }
        ],
    }


CROSS_ACCOUNT_READ = {
    "Sid": "ReportingAccountReads",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::444455556666:role/reporting"},
    "Action": "secretsmanager:DescribeSecret",
    "Resource": "*",
}


def stored_policy(arn: str) -> str | None:
    policy: str | None = secretsmanager_backends[ACCOUNT][REGION].secrets[arn].policy
    return policy


@dataclass
class CallLog:
    """Every Secrets Manager call the CLI makes, and the secrets that had no policy after one."""

    watched: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    unlocked_after: list[tuple[str, str]] = field(default_factory=list)

    def before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.calls.append((model.name, str(params.get("SecretId", ""))))

    def after(self, model: Any, **_: Any) -> None:
        # After each call: every watched secret still has a policy in moto's store.
        self.unlocked_after += [(model.name, arn) for arn in self.watched if stored_policy(arn) is None]

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


@pytest.fixture
def call_log(monkeypatch: pytest.MonkeyPatch, aws: Any) -> Iterator[CallLog]:
    """The CLI's boto3 session, with its Secrets Manager calls recorded (before and after each)."""
    log = CallLog()

    def session(profile: str | None, region: str | None) -> boto3.session.Session:
        made = boto3.session.Session(profile_name=profile, region_name=region or REGION)
        made.events.register("before-parameter-build.secretsmanager", log.before)
        made.events.register("after-call.secretsmanager", log.after)
        return made

    monkeypatch.setattr("rotator.cli.context.make_session", session)
    yield log


@pytest.fixture
def seed_locked(aws: Any) -> list[str]:
    """Two secrets carrying the hand-made lock; one also grants another account a read."""
    arns = [create_secret(aws, "prod/app/db", VALUE), create_secret(aws, "prod/reports/db", VALUE)]
    aws.put_resource_policy(SecretId=arns[0], ResourcePolicy=json.dumps(hand_made()))
    shared = hand_made()
    shared["Statement"].insert(0, CROSS_ACCOUNT_READ)
    aws.put_resource_policy(SecretId=arns[1], ResourcePolicy=json.dumps(shared))
    return arns


def policy_of(aws: Any, arn: str) -> dict[str, Any] | None:
    return locks.parse(aws.get_resource_policy(SecretId=arn).get("ResourcePolicy"))


def test_takeover_replaces_the_hand_made_lock_with_one_put_and_no_gap(
    cli: Cli, aws: Any, seed_locked: list[str], call_log: CallLog
) -> None:
    """--apply reads each policy, writes the merged one with one PutResourcePolicy per secret and
    reads it back; no DeleteResourcePolicy, and after every call each secret still has a policy.
    The hand-made statement is taken over, the cross-account statement kept in its place."""
    call_log.watched = seed_locked
    run = cli("lock", *seed_locked, *LOCK_ARGS, "--apply")
    assert run.code == 0, run.text
    assert call_log.unlocked_after == []
    assert "DeleteResourcePolicy" not in call_log.operations()
    for arn in seed_locked:
        assert [op for op, secret in call_log.calls if secret == arn] == [
            "GetResourcePolicy",
            "PutResourcePolicy",
            "GetResourcePolicy",
        ]
    lock = iam_policies.resource_policy([VPCE], [BREAK_GLASS], writers=[FUNCTION_ROLE])
    assert policy_of(aws, seed_locked[0]) == {"Version": "2012-10-17", "Statement": lock["Statement"]}
    assert policy_of(aws, seed_locked[1]) == {
        "Version": "2012-10-17",
        "Statement": [CROSS_ACCOUNT_READ, *lock["Statement"]],
    }
    assert "taken over: #1" in run.out and "kept as it is: ReportingAccountReads" in run.out
    assert "2 of 2 secret(s) locked" in run.out
    assert run.leaks([VALUE["password"]]) == []


def test_dry_run_is_the_default_and_writes_nothing(
    cli: Cli, aws: Any, seed_locked: list[str], call_log: CallLog
) -> None:
    """Without --apply: the diff and a summary, only GetResourcePolicy calls, the policies unchanged."""
    before = [policy_of(aws, arn) for arn in seed_locked]
    run = cli("lock", *seed_locked, *LOCK_ARGS)
    assert run.code == 0, run.text
    assert set(call_log.operations()) == {"GetResourcePolicy"}
    assert [policy_of(aws, arn) for arn in seed_locked] == before
    assert "in place: a hand-made lock" in run.out
    assert '+      "Sid": "DenyWritesByOthers",' in run.out
    assert "dry run: 2 policies to write; --apply writes them" in run.out


def test_a_loosening_merge_is_refused_and_nothing_is_written(
    cli: Cli, aws: Any, seed_locked: list[str], call_log: CallLog
) -> None:
    """The hand-made lock admits one endpoint; a lock admitting another would let requests through
    that it refuses: refused, exit 1, and no secret is written - not even the sound ones."""
    loose = create_secret(aws, "prod/loose/db", VALUE)
    aws.put_resource_policy(SecretId=loose, ResourcePolicy=json.dumps(hand_made(OTHER_VPCE)))
    before = {arn: policy_of(aws, arn) for arn in [*seed_locked, loose]}
    run = cli("lock", *seed_locked, loose, *LOCK_ARGS, "--apply")
    assert run.code == 1, run.text
    assert "PutResourcePolicy" not in call_log.operations()
    assert {arn: policy_of(aws, arn) for arn in before} == before
    assert f"admits only {OTHER_VPCE}; the lock would also admit {VPCE}" in run.out
    assert "nothing written" in run.out


def test_a_narrower_endpoint_list_is_not_loosening(cli: Cli, aws: Any) -> None:
    """A hand-made lock admitting two endpoints is taken over by a lock admitting one of them."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    aws.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(hand_made(VPCE, OTHER_VPCE)))
    run = cli("lock", arn, *LOCK_ARGS, "--apply")
    assert run.code == 0, run.text
    found = locks.inspect(policy_of(aws, arn))
    assert (found.holding, found.endpoints) == (locks.Holding.LOCK, (VPCE,))


def test_dropping_the_writers_of_a_lock_in_place_is_refused(cli: Cli, aws: Any, call_log: CallLog) -> None:
    """A secret locked with --writer keeps its writer statement: locking it again without
    --writer would open writes through the endpoint, and is refused."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    assert cli("lock", arn, *LOCK_ARGS, "--lock-manager", DEPLOY_ROLE, "--apply").code == 0
    call_log.calls.clear()
    run = cli("lock", arn, "--endpoint", VPCE, "--break-glass", BREAK_GLASS, "--apply")
    assert run.code == 1, run.text
    assert "statement DenyWritesByOthers of the policy in place" in run.out
    assert "PutResourcePolicy" not in call_log.operations()


def test_a_secret_without_a_policy_gets_the_lock_and_a_second_run_changes_nothing(
    cli: Cli, aws: Any, call_log: CallLog
) -> None:
    """No policy in place: the lock is put (once); running the same command again writes nothing."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    first = cli("lock", arn, *LOCK_ARGS, "--apply")
    assert first.code == 0, first.text
    assert "in place (no resource policy)" in first.out
    call_log.calls.clear()
    second = cli("lock", arn, *LOCK_ARGS, "--apply")
    assert second.code == 0, second.text
    assert call_log.operations() == ["GetResourcePolicy"]
    assert "unchanged" in second.out and "0 of 1 secret(s) locked" in second.out


def test_an_older_rotator_lock_is_taken_over(cli: Cli, aws: Any) -> None:
    """A lock of an earlier rotator (Sid DenyGetSecretValueOutsideEndpoint, reads only) is replaced."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    old = hand_made()
    old["Statement"][0].update(Sid="DenyGetSecretValueOutsideEndpoint", Principal="*")
    aws.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(old))
    run = cli("lock", arn, *LOCK_ARGS, "--apply", "--json")
    assert run.code == 0, run.text
    (outcome,) = run.json()["secrets"]
    assert (outcome["holding"], outcome["result"], outcome["replaced"]) == (
        "old-lock",
        "locked",
        ["DenyGetSecretValueOutsideEndpoint"],
    )
    assert [s["Sid"] for s in policy_of(aws, arn)["Statement"]] == [  # type: ignore[index]
        "DenyOutsideEndpoint",
        "DenyWritesByOthers",
        "DenyLockChangesByOthers",
    ]


def test_an_unknown_deny_is_kept_and_pointed_out(cli: Cli, aws: Any) -> None:
    """A Deny statement the merge does not recognise stays, and the plan says it applies beside the lock."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    odd = hand_made()
    odd["Statement"][0].update(Sid="DenyOutsideOffice", Condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}})
    aws.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(odd))
    run = cli("lock", arn, *LOCK_ARGS)
    assert run.code == 0, run.text
    assert "in place: a resource policy without a lock" in run.out
    assert "note: kept Deny statement DenyOutsideOffice applies beside the lock" in run.out


def test_a_missing_secret_is_reported_and_nothing_is_written(cli: Cli, aws: Any, call_log: CallLog) -> None:
    """One secret that cannot be read stops every write (exit 3: not found)."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    run = cli("lock", arn, "prod/no-such-secret", *LOCK_ARGS, "--apply")
    assert run.code == 3, run.text
    assert "PutResourcePolicy" not in call_log.operations()
    assert policy_of(aws, arn) is None


# -- rotator check's finding ------------------------------------------------------------


def lock_finding(run: Any) -> dict[str, str]:
    (report,) = run.json()["secrets"]
    (finding,) = [f for f in report["findings"] if f["check"] == "secret.lock"]
    return dict(finding)


def test_check_says_the_template_cannot_attach_to_a_hand_made_lock(cli: Cli, aws: Any, seed_locked: list[str]) -> None:
    """check on a hand-made lock: a warning that CloudFormation cannot attach its lock and names
    `rotator lock`; after the takeover: ok."""
    before = lock_finding(cli("check", seed_locked[0], "--no-database", "--json"))
    assert before["level"] == "warn"
    assert "hand-made lock" in before["message"] and "cannot attach" in before["action"]
    assert f"rotator lock {seed_locked[0]}" in before["action"]
    assert cli("lock", seed_locked[0], *LOCK_ARGS, "--apply").code == 0
    after = lock_finding(cli("check", seed_locked[0], "--no-database", "--json"))
    assert after["level"] == "ok" and VPCE in after["message"]


def test_check_warns_about_a_secret_without_a_policy(cli: Cli, aws: Any) -> None:
    """No resource policy: a warning naming both ways to lock it."""
    arn = create_secret(aws, "prod/app/db", VALUE)
    finding = lock_finding(cli("check", arn, "--no-database", "--json"))
    assert finding["level"] == "warn" and "no resource policy" in finding["message"]
    assert "LockSecretsToEndpoint=true" in finding["action"] and "rotator lock" in finding["action"]
