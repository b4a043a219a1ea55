"""rotator.locks: recognising a policy's lock and planning a merge that never loosens it.

The moto tests of ``rotator lock`` (test_cli_lock.py) prove the call sequence; these prove
the rules of the merge on policy documents alone."""

from __future__ import annotations

from typing import Any

import pytest

from rotator import iam_policies, locks

ACCOUNT = "123456789012"
VPCE = "vpce-0a1b2c3d4e5f60718"
OTHER_VPCE = "vpce-0fedcba9876543210"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/BreakGlass"
WRITER = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/fn"
DEPLOY = f"arn:aws:iam::{ACCOUNT}:role/deploy"


def seed(condition: dict[str, Any], **extra: Any) -> dict[str, Any]:
    statement = {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [{**statement, "Condition": condition, **extra}]}


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {"aws:sourceVpce": VPCE}},
        {"StringNotEquals": {"aws:SourceVpce": [VPCE, OTHER_VPCE]}},
        {"StringNotEqualsIfExists": {"AWS:SOURCEVPCE": VPCE}},
        {"StringNotEquals": {"aws:sourceVpce": VPCE}, "ArnNotLike": {"aws:PrincipalArn": BREAK_GLASS}},
        {"StringNotEquals": {"aws:sourceVpce": VPCE}, "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}},
    ],
    ids=["plain", "two-endpoints", "if-exists-upper-case", "sparing-a-role", "sparing-services"],
)
def test_the_hand_made_lock_is_recognised_in_its_usual_spellings(condition: dict[str, Any]) -> None:
    """Key and operator case, IfExists, a list of endpoints and a principal exemption all read
    as the hand-made lock, and the merge takes it over (the lock replaces it)."""
    found = locks.inspect(seed(condition))
    assert found.holding is locks.Holding.HAND_MADE and VPCE in found.endpoints
    plan = locks.plan(seed(condition), iam_policies.resource_policy([VPCE], [BREAK_GLASS]))
    assert plan.replaced == ("#1",) and plan.kept == ()


@pytest.mark.parametrize(
    "policy",
    [
        seed({"StringNotEquals": {"aws:sourceVpc": "vpc-0123"}}),
        seed({"StringNotEquals": {"aws:sourceVpce": VPCE}, "NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}),
        seed({"StringNotEquals": {"aws:sourceVpce": VPCE}}, Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    **seed({"StringNotEquals": {"aws:sourceVpce": VPCE}})["Statement"][0],
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:*"],
                }
            ],
        },
    ],
    ids=["by-vpc", "with-an-ip-condition", "one-account", "more-actions"],
)
def test_anything_else_is_kept_as_it_is(policy: dict[str, Any]) -> None:
    """A statement that is not exactly the hand-made shape is never removed: the lock is added beside it."""
    assert locks.inspect(policy).holding is locks.Holding.OTHER
    plan = locks.plan(policy, iam_policies.resource_policy([VPCE], [BREAK_GLASS]))
    assert plan.replaced == () and plan.kept == ("#1",) and plan.kept_denies == ("#1",)
    assert plan.after["Statement"][0] == policy["Statement"][0]


def test_the_lock_through_cloudformation_is_covered_only_by_an_equal_or_stricter_statement() -> None:
    """Locking again without --lock-manager replaces the CloudFormation statement by the stricter
    'break-glass only'; with the managers it is unchanged; a lock in place is never refused for that."""
    with_managers = iam_policies.resource_policy([VPCE], [BREAK_GLASS], writers=[WRITER], lock_managers=[DEPLOY])
    assert not locks.plan(with_managers, with_managers).changed
    stricter = locks.plan(with_managers, iam_policies.resource_policy([VPCE], [BREAK_GLASS], writers=[WRITER]))
    assert "DenyLockChangesOutsideCloudFormation" in stricter.replaced
    assert locks.inspect(stricter.after).holding is locks.Holding.LOCK


def test_a_lock_denying_everywhere_is_not_replaced_by_one_with_an_endpoint() -> None:
    """An older statement that denied writes on every path (DenyWritesByOthers) is not covered
    by a statement that admits the endpoint: refused."""
    with_writers = iam_policies.resource_policy([VPCE], [BREAK_GLASS], writers=[WRITER])
    with pytest.raises(locks.LockRefused, match="DenyWritesByOthers"):
        locks.plan(with_writers, iam_policies.resource_policy([VPCE], [BREAK_GLASS]))


def test_sparing_services_is_refused_where_the_policy_allows_a_service() -> None:
    """The hand-made lock bound service principals too; the lock spares them. Where another
    statement allows a service principal something, that would let it read from outside: refused."""
    policy = seed({"StringNotEquals": {"aws:sourceVpce": VPCE}})
    policy["Statement"].insert(
        0,
        {"Effect": "Allow", "Principal": {"Service": "example.amazonaws.com"}, "Action": "*", "Resource": "*"},
    )
    with pytest.raises(locks.LockRefused, match="service principals"):
        locks.plan(policy, iam_policies.resource_policy([VPCE], [BREAK_GLASS]))


def test_a_merge_over_the_size_limit_is_refused() -> None:
    """AWS accepts 20 480 characters: a merge beyond that is refused before any call."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Big",
                "Effect": "Allow",
                "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/r{n:05d}" for n in range(600)]},
                "Action": "secretsmanager:Describe*",
                "Resource": "*",
            }
        ],
    }
    with pytest.raises(locks.LockRefused, match="characters"):
        locks.plan(policy, iam_policies.resource_policy([VPCE], [BREAK_GLASS]))
