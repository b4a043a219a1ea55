"""The policy generator (rotator.policies) and ``rotator policy``: valid IAM JSON, and
what each policy allows and denies, evaluated request by request."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from rotator import policies
from tests.support.aws import create_secret
from tests.support.cli import Cli
from tests.support.iam import Request, evaluate

ACCOUNT = "123456789012"
VPCE = "vpce-0a1b2c3d4e5f60718"
OTHER_VPCE = "vpce-0fffffffffffffff0"
APP_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-db-AbCdEf"
OTHER_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:other-db-ZyXwVu"
ADMIN_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds-admin-QwErTy"
FUNCTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator-function"
APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-service"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
STRANGER = f"arn:aws:iam::{ACCOUNT}:role/someone-else"


def valid_iam(policy: dict[str, Any]) -> bool:
    IAMPolicyDocumentValidator(json.dumps(policy)).validate()  # raises MalformedPolicyDocument
    return True


def through(endpoint: str | None = VPCE, **context: str) -> dict[str, str]:
    return {"aws:SourceVpce": endpoint, **context} if endpoint else dict(context)


# -- the resource policy ---------------------------------------------------------


@pytest.fixture
def resource() -> dict[str, Any]:
    return policies.resource_policy([VPCE], [BREAK_GLASS])


def test_resource_policy_is_valid_iam_json(resource: dict[str, Any]) -> None:
    """The secret resource policy passes an IAM policy grammar check (moto's validator)."""
    assert valid_iam(resource)


def test_resource_policy_denies_reads_from_outside_the_endpoint(resource: dict[str, Any]) -> None:
    """GetSecretValue with stolen credentials from the internet or another endpoint is denied."""
    outside = Request("secretsmanager:GetSecretValue", APP_SECRET, APP_ROLE, through(None))
    elsewhere = Request("secretsmanager:GetSecretValue", APP_SECRET, APP_ROLE, through(OTHER_VPCE))
    assert evaluate(resource, outside) == "deny"
    assert evaluate(resource, elsewhere) == "deny"


def test_resource_policy_lets_reads_through_the_endpoint(resource: dict[str, Any]) -> None:
    """Applications and the rotation function reading through the endpoint are not denied."""
    for principal in (APP_ROLE, FUNCTION_ROLE):
        assert evaluate(resource, Request("secretsmanager:GetSecretValue", APP_SECRET, principal, through())) != "deny"


def test_resource_policy_denies_nothing_but_get_secret_value(resource: dict[str, Any]) -> None:
    """Rotation setup and management from the console or CLI (outside the VPC) keep working."""
    for action in (
        "secretsmanager:DescribeSecret",
        "secretsmanager:RotateSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
        "secretsmanager:PutResourcePolicy",
        "secretsmanager:DeleteResourcePolicy",
    ):
        assert evaluate(resource, Request(action, APP_SECRET, STRANGER, through(None))) == "implicit", action


def test_resource_policy_exempts_break_glass_and_aws_services(resource: dict[str, Any]) -> None:
    """The break-glass role reads from anywhere, and services acting for a caller are not denied."""
    get = "secretsmanager:GetSecretValue"
    assert evaluate(resource, Request(get, APP_SECRET, BREAK_GLASS, through(None))) != "deny"
    via_service = through(None, **{"aws:ViaAWSService": "true"})
    assert evaluate(resource, Request(get, APP_SECRET, APP_ROLE, via_service)) != "deny"
    as_service = through(None, **{"aws:PrincipalIsAWSService": "true"})
    assert evaluate(resource, Request(get, APP_SECRET, "secretsmanager.amazonaws.com", as_service)) != "deny"


def test_resource_policy_break_glass_accepts_wildcards_and_several_endpoints() -> None:
    """Wildcard break-glass ARNs match their roles; every listed endpoint is allowed."""
    policy = policies.resource_policy([VPCE, OTHER_VPCE], [f"arn:aws:iam::{ACCOUNT}:role/breakglass-*"])
    get = "secretsmanager:GetSecretValue"
    assert evaluate(policy, Request(get, APP_SECRET, f"arn:aws:iam::{ACCOUNT}:role/breakglass-ops", {})) != "deny"
    assert evaluate(policy, Request(get, APP_SECRET, STRANGER, through(OTHER_VPCE))) != "deny"
    assert evaluate(policy, Request(get, APP_SECRET, STRANGER, {})) == "deny"
    assert valid_iam(policy)


def test_resource_policy_without_break_glass_has_no_principal_exemption() -> None:
    """With no break-glass principal, nobody reads from outside the endpoint."""
    policy = policies.resource_policy([VPCE])
    assert "ArnNotLike" not in policy["Statement"][0]["Condition"]
    assert evaluate(policy, Request("secretsmanager:GetSecretValue", APP_SECRET, BREAK_GLASS, {})) == "deny"


@pytest.mark.parametrize(
    ("endpoints", "break_glass"),
    [([], []), (["vpc-0123456789abcdef0"], []), ([VPCE], ["arn:aws:sts::123456789012:assumed-role/x/y"])],
)
def test_resource_policy_rejects_malformed_arguments(endpoints: list[str], break_glass: list[str]) -> None:
    """No endpoint, a VPC id instead of an endpoint id, or a session ARN are refused."""
    with pytest.raises(policies.PolicyError):
        policies.resource_policy(endpoints, break_glass)


# -- the endpoint policy ---------------------------------------------------------


@pytest.fixture
def endpoint() -> dict[str, Any]:
    return policies.endpoint_policy([APP_SECRET], [ADMIN_SECRET], [APP_ROLE], FUNCTION_ROLE)


def test_endpoint_policy_is_valid_iam_json(endpoint: dict[str, Any]) -> None:
    """The endpoint policy passes an IAM policy grammar check (moto's validator)."""
    assert valid_iam(endpoint)


def test_endpoint_policy_allows_exactly_what_rotation_needs(endpoint: dict[str, Any]) -> None:
    """The function may run the four steps on the rotated secret, read its admin secret
    and generate passwords; nothing on other secrets, nothing else on the admin secret."""
    for action in policies.ROTATION_ACTIONS:
        assert evaluate(endpoint, Request(action, APP_SECRET, FUNCTION_ROLE)) == "allow", action
        assert evaluate(endpoint, Request(action, OTHER_SECRET, FUNCTION_ROLE)) == "implicit", action
    assert evaluate(endpoint, Request("secretsmanager:GetSecretValue", ADMIN_SECRET, FUNCTION_ROLE)) == "allow"
    assert evaluate(endpoint, Request("secretsmanager:PutSecretValue", ADMIN_SECRET, FUNCTION_ROLE)) == "implicit"
    assert evaluate(endpoint, Request("secretsmanager:GetRandomPassword", "*", FUNCTION_ROLE)) == "allow"
    assert evaluate(endpoint, Request("secretsmanager:DeleteSecret", APP_SECRET, FUNCTION_ROLE)) == "implicit"


def test_endpoint_policy_lets_readers_read_and_nothing_more(endpoint: dict[str, Any]) -> None:
    """Reader roles read the rotated secret; they cannot write it or read the admin secret."""
    assert evaluate(endpoint, Request("secretsmanager:GetSecretValue", APP_SECRET, APP_ROLE)) == "allow"
    assert evaluate(endpoint, Request("secretsmanager:DescribeSecret", APP_SECRET, APP_ROLE)) == "allow"
    assert evaluate(endpoint, Request("secretsmanager:PutSecretValue", APP_SECRET, APP_ROLE)) == "implicit"
    assert evaluate(endpoint, Request("secretsmanager:GetSecretValue", ADMIN_SECRET, APP_ROLE)) == "implicit"
    assert evaluate(endpoint, Request("secretsmanager:GetSecretValue", APP_SECRET, STRANGER)) == "implicit"


def test_endpoint_policy_without_function_role_scopes_by_resource_only() -> None:
    """Without --function-role the rotation statements name any principal, still only for the listed secrets."""
    policy = policies.endpoint_policy([APP_SECRET])
    assert evaluate(policy, Request("secretsmanager:PutSecretValue", APP_SECRET, STRANGER)) == "allow"
    assert evaluate(policy, Request("secretsmanager:PutSecretValue", OTHER_SECRET, STRANGER)) == "implicit"
    assert [s["Sid"] for s in policy["Statement"]] == [
        "RotationFunctionRotatesSecrets",
        "RotationFunctionGeneratesPasswords",
    ]
    assert valid_iam(policy)


def test_endpoint_policy_rejects_non_secret_arns() -> None:
    """A role ARN given as a secret (or the reverse) is refused rather than silently allowed."""
    with pytest.raises(policies.PolicyError):
        policies.endpoint_policy([APP_ROLE])
    with pytest.raises(policies.PolicyError):
        policies.endpoint_policy([APP_SECRET], readers=[APP_SECRET])


# -- the command -----------------------------------------------------------------


def test_policy_resource_command_prints_the_generator_output(cli: Cli) -> None:
    """``rotator policy resource`` prints exactly the generator's document, as JSON."""
    run = cli("policy", "resource", "--endpoint", VPCE, "--break-glass", BREAK_GLASS)
    assert run.code == 0
    assert run.json() == policies.resource_policy([VPCE], [BREAK_GLASS])


def test_policy_endpoint_command_prints_the_generator_output(cli: Cli) -> None:
    """``rotator policy endpoint`` prints the generator's document for the same arguments."""
    run = cli(
        "policy", "endpoint", "--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET,
        "--readers", APP_ROLE, "--function-role", FUNCTION_ROLE,
    )  # fmt: skip
    assert run.code == 0
    assert run.json() == policies.endpoint_policy([APP_SECRET], [ADMIN_SECRET], [APP_ROLE], FUNCTION_ROLE)


def test_policy_endpoint_warns_when_admin_secrets_are_missing(cli: Cli) -> None:
    """Without admin secrets the operator is told that alternating-user rotation would be blocked."""
    run = cli("policy", "endpoint", "--secrets", APP_SECRET)
    assert run.code == 0
    assert "admin" in run.err and "--resolve-admins" in run.err


def test_policy_endpoint_resolves_admin_secrets_from_masterarn(cli: Cli, aws: Any) -> None:
    """--resolve-admins reads each secret's masterarn and adds the admin secret's ARN."""
    admin_arn = create_secret(aws, "rds-admin", {"username": "admin", "password": "pw-admin-123456"})
    app_arn = create_secret(
        aws,
        "app-db",
        {"host": "db.internal", "username": "app", "password": "pw-app-1234567", "masterarn": "rds-admin"},
    )
    run = cli("policy", "endpoint", "--secrets", app_arn, "--resolve-admins")
    assert run.code == 0, run.err
    statements = {s["Sid"]: s for s in run.json()["Statement"]}
    assert statements["RotationFunctionReadsAdminSecrets"]["Resource"] == admin_arn
    assert run.leaks(["pw-admin-123456", "pw-app-1234567"]) == []


def test_policy_with_a_malformed_endpoint_id_is_a_one_line_usage_error(cli: Cli) -> None:
    """A bad endpoint id exits 2 with one line naming it, and no traceback."""
    run = cli("policy", "resource", "--endpoint", "vpce-nothex", "--break-glass", BREAK_GLASS)
    assert run.code == 2
    assert run.out == ""
    assert run.err.count("\n") == 1 and "vpce-nothex" in run.err
    assert "Traceback" not in run.err


def test_policy_resource_without_break_glass_warns(cli: Cli) -> None:
    """A lock with no break-glass principal is printed, with a warning that nobody can read from outside."""
    run = cli("policy", "resource", "--endpoint", VPCE)
    assert run.code == 0
    assert run.json() == policies.resource_policy([VPCE])
    assert "warning" in run.err and "--break-glass" in run.err
