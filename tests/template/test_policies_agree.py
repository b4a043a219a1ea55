"""template.yaml deploys the same policies ``rotator policy`` prints: the endpoint policy,
the secret resource policy (the lock) and the role path the key policy names, rendered for
sample parameters (tests/template/cfn.py) and compared with what rotator.iam_policies generates
for the same inputs (order of list items aside). tests/template/test_decisions.py then
evaluates both with a policy evaluator."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from rotator import iam_policies
from tests.template import cfn
from tests.template.conftest import CANARY_ROLE, CREATED_ENDPOINT, DEPLOY_ROLE, DEPLOYED, FUNCTION_ROLE, NETWORK

ACCOUNT = "123456789012"
EXISTING_ENDPOINT_ID = "vpce-0fedcba9876543210"
SECRETS = [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-db-AbCdEf"]
MORE_SECRETS = [*SECRETS, f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:billing-db-GhIjKl"]
OTHER_SECRETS = [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:legacy-*"]
ADMIN_SECRETS = [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds-admin-MnOpQr"]
READERS = [f"arn:aws:iam::{ACCOUNT}:role/orders-service", f"arn:aws:iam::{ACCOUNT}:role/billing-service"]
OPERATORS = [f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DBA_*"]
BREAK_GLASS = [f"arn:aws:iam::{ACCOUNT}:role/break-glass"]
CREATED = {**NETWORK, "CreateSecretsManagerEndpoint": "true", "RouteTableIds": "rtb-0", "DynamoDbPrefixListId": "pl-0"}
REUSED = {
    **NETWORK,
    "ExistingSecretsManagerEndpointId": EXISTING_ENDPOINT_ID,
    "ExistingEndpointSecurityGroupId": "sg-0123456789abcdef0",
    "EnableIdempotency": "false",
}


def render(base: Mapping[str, str], **parameters: Any) -> cfn.Rendered:
    values = {key: ",".join(v) if isinstance(v, list) else v for key, v in parameters.items()}
    overrides = {**base, **values}
    assert cfn.rule_violations(cfn.load(), overrides) == []
    return cfn.render(cfn.load(), overrides)


def _list(value: Any) -> list[Any]:
    return sorted(value) if isinstance(value, list) else [value]


def normal(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy with every list sorted and one-item lists as lists: IAM reads them alike."""
    statements = []
    for statement in policy["Statement"]:
        found: dict[str, Any] = {}
        for key, value in statement.items():
            if key in ("Action", "Resource", "NotResource"):
                found[key] = _list(value)
            elif key == "Principal" and value != "*":
                found[key] = {kind: _list(who) for kind, who in value.items()}
            elif key == "Condition":
                found[key] = {op: {name: _list(v) for name, v in block.items()} for op, block in value.items()}
            else:
                found[key] = value
        statements.append(found)
    return {"Version": policy["Version"], "Statement": sorted(statements, key=lambda s: str(s.get("Sid")))}


def template_endpoint_policy(**parameters: Any) -> dict[str, Any]:
    stack = render(CREATED, **parameters)
    return dict(cfn.deployed(stack.props("SecretsManagerEndpoint")["PolicyDocument"], DEPLOYED))


def template_locks(base: Mapping[str, str], **parameters: Any) -> dict[str, dict[str, Any]]:
    stack = render(
        base,
        LockSecretsToEndpoint="true",
        BreakGlassPrincipalArns=BREAK_GLASS,
        LockManagerPrincipalArns=[DEPLOY_ROLE],
        **parameters,
    )
    found = [stack.props(name) for name in stack.of_type("AWS::SecretsManager::ResourcePolicy")]
    return {props["SecretId"]: dict(cfn.deployed(props["ResourcePolicy"], DEPLOYED)) for props in found}


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"RotatedSecretArns": SECRETS, "AdminSecretArns": ADMIN_SECRETS, "ApplicationRoleArns": READERS},
            iam_policies.endpoint_policy(
                SECRETS, ADMIN_SECRETS, READERS, [FUNCTION_ROLE], canary_roles=[CANARY_ROLE], canary_lists=True
            ),
        ),
        (
            {"RotatedSecretArns": MORE_SECRETS, "AdminSecretArns": ADMIN_SECRETS},
            iam_policies.endpoint_policy(
                MORE_SECRETS, ADMIN_SECRETS, (), [FUNCTION_ROLE], canary_roles=[CANARY_ROLE], canary_lists=True
            ),
        ),
        (
            {"RotatedSecretArns": SECRETS, "OtherRotatedSecretArns": OTHER_SECRETS, "ApplicationRoleArns": READERS},
            iam_policies.endpoint_policy(
                [*SECRETS, *OTHER_SECRETS], (), READERS, [FUNCTION_ROLE], canary_roles=[CANARY_ROLE], canary_lists=True
            ),
        ),
        (
            {
                "OtherRotatedSecretArns": OTHER_SECRETS,
                "AdminSecretArns": ADMIN_SECRETS,
                "OperatorPrincipalArns": OPERATORS,
            },
            iam_policies.endpoint_policy(
                OTHER_SECRETS,
                ADMIN_SECRETS,
                (),
                [FUNCTION_ROLE],
                OPERATORS,
                canary_roles=[CANARY_ROLE],
                canary_lists=True,
            ),
        ),
        (
            {
                "RotatedSecretArns": MORE_SECRETS,
                "AdminSecretArns": ADMIN_SECRETS,
                "ApplicationRoleArns": READERS,
                "OperatorPrincipalArns": OPERATORS,
                "EndpointPrivateDns": "true",
            },
            iam_policies.endpoint_policy(
                MORE_SECRETS,
                ADMIN_SECRETS,
                READERS,
                [FUNCTION_ROLE],
                OPERATORS,
                canary_roles=[CANARY_ROLE],
                canary_lists=True,
                shared=True,
            ),
        ),
        (
            {"RotatedSecretArns": SECRETS, "AdminSecretArns": ADMIN_SECRETS, "CanaryChecksAllRotatedSecrets": "false"},
            iam_policies.endpoint_policy(SECRETS, ADMIN_SECRETS, (), [FUNCTION_ROLE], canary_roles=[CANARY_ROLE]),
        ),
        (
            {"RotatedSecretArns": SECRETS, "AdminSecretArns": ADMIN_SECRETS, "EnableCanary": "false"},
            iam_policies.endpoint_policy(SECRETS, ADMIN_SECRETS, (), [FUNCTION_ROLE]),
        ),
    ],
    ids=[
        "one-secret-admin-readers",
        "two-secrets-no-readers",
        "attached-and-other",
        "operators",
        "private-dns",
        "canary-named-secrets-only",
        "no-canary",
    ],
)
def test_template_endpoint_policy_equals_the_generator(parameters: dict[str, Any], expected: dict[str, Any]) -> None:
    """The endpoint the template creates carries exactly the policy ``rotator policy endpoint
    --function-role ... --canary-role ... --replace`` prints for the same secrets, admin secrets, readers,
    operators and readiness check."""
    assert normal(template_endpoint_policy(**parameters)) == normal(expected)


@pytest.mark.parametrize(
    ("base", "endpoint"), [(CREATED, CREATED_ENDPOINT), (REUSED, EXISTING_ENDPOINT_ID)], ids=["created", "reused"]
)
@pytest.mark.parametrize("operators", [[], OPERATORS], ids=["no-operators", "operators"])
def test_template_locks_equal_the_generator(base: dict[str, str], endpoint: str, operators: list[str]) -> None:
    """Each attached secret gets exactly what ``rotator policy resource --writer FUNCTION_ROLE
    --writer OPERATOR... --lock-manager DEPLOY_ROLE`` prints for the stack's endpoint and
    break-glass principals; each admin secret the same without writers (their writers are not
    the stack's to know)."""
    locks = template_locks(
        base, RotatedSecretArns=MORE_SECRETS, AdminSecretArns=ADMIN_SECRETS, OperatorPrincipalArns=operators
    )
    assert sorted(locks) == sorted([*MORE_SECRETS, *ADMIN_SECRETS])
    for secret, lock in locks.items():
        writers = [FUNCTION_ROLE, *operators] if secret in MORE_SECRETS else []
        expected = iam_policies.resource_policy([endpoint], BREAK_GLASS, writers=writers, lock_managers=[DEPLOY_ROLE])
        assert normal(lock) == normal(expected), secret


def test_admin_secrets_can_be_left_unlocked() -> None:
    """LockAdminSecrets=false locks only the attached secrets (for admin secrets whose policy lives elsewhere)."""
    locks = template_locks(CREATED, RotatedSecretArns=SECRETS, AdminSecretArns=ADMIN_SECRETS, LockAdminSecrets="false")
    assert sorted(locks) == SECRETS


def test_key_policy_names_the_roles_the_template_creates() -> None:
    """The role's path makes its ARN match ``rotator policy kms --stack``'s pattern before it exists,
    and the stack outputs the same pattern."""
    stack = render(CREATED, RotatedSecretArns=SECRETS)
    path = stack.props("RotationFunctionRole")["Path"]
    stack_name = cfn.PSEUDO["AWS::StackName"]
    assert path == f"/rotator/{stack_name}/"
    pattern = iam_policies.stack_role_pattern(SECRETS[0], stack_name)
    assert stack.outputs["KeyPolicyPrincipalPattern"]["Value"] == pattern
    assert FUNCTION_ROLE.startswith(pattern.removesuffix("*"))
    assert FUNCTION_ROLE.startswith(f"arn:aws:iam::{ACCOUNT}:role{path}")
