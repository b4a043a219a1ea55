"""template.yaml deploys the same policies ``rotator policy`` prints: the endpoint policy
and the secret resource policy, rendered for sample parameters (tests/template/cfn.py),
equal what rotator.policies generates for the same inputs (order of list items aside)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from rotator import policies
from tests.template import cfn

ACCOUNT = "123456789012"
ENDPOINT_ID = "vpce-0a1b2c3d4e5f60718"  # what Ref SecretsManagerEndpoint gives once deployed
EXISTING_ENDPOINT_ID = "vpce-0fedcba9876543210"
FUNCTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator-RotationFunctionRole-ABC123"
SECRETS = [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-db-AbCdEf"]
MORE_SECRETS = [*SECRETS, f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:billing-db-GhIjKl"]
OTHER_SECRETS = [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:legacy-*"]
ADMIN_SECRETS = [f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds-admin-MnOpQr"]
READERS = [f"arn:aws:iam::{ACCOUNT}:role/orders-service", f"arn:aws:iam::{ACCOUNT}:role/billing-service"]
BREAK_GLASS = [f"arn:aws:iam::{ACCOUNT}:role/break-glass"]

NETWORK = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "DatabaseSecurityGroupId": "sg-0db00000000000000",
    "RouteTableIds": "rtb-0123456789abcdef0",
    "DynamoDbPrefixListId": "pl-02cd2c6b",
}
# Values of the stack's own resources, known only once deployed.
DEPLOYED = {
    '{"Ref": "SecretsManagerEndpoint"}': ENDPOINT_ID,
    '{"Fn::GetAtt": ["RotationFunctionRole", "Arn"]}': FUNCTION_ROLE,
}


def render(**parameters: Any) -> cfn.Rendered:
    values = {key: ",".join(v) if isinstance(v, list) else v for key, v in parameters.items()}
    return cfn.render(cfn.load(), {**NETWORK, **values})


def deployed(node: Any) -> Any:
    """Replace the symbolic references to the stack's resources by their deployed values."""
    if isinstance(node, dict):
        key = _key(node)
        if key in DEPLOYED:
            return DEPLOYED[key]
        return {name: deployed(value) for name, value in node.items()}
    if isinstance(node, list):
        return [deployed(item) for item in node]
    return node


def _key(node: Mapping[str, Any]) -> str:
    return json.dumps(node, sort_keys=True)


def _list(value: Any) -> list[Any]:
    return sorted(value) if isinstance(value, list) else [value]


def normal(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy with every list sorted and one-item lists as lists: IAM reads them alike."""
    statements = []
    for statement in policy["Statement"]:
        found: dict[str, Any] = {}
        for key, value in statement.items():
            if key in ("Action", "Resource"):
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
    stack = render(CreateSecretsManagerEndpoint="true", **parameters)
    return dict(deployed(stack.props("SecretsManagerEndpoint")["PolicyDocument"]))


def template_resource_policy(secret: str, **parameters: Any) -> dict[str, Any]:
    stack = render(LockSecretsToEndpoint="true", BreakGlassPrincipalArns=BREAK_GLASS, **parameters)
    found = [
        props
        for props in (stack.props(name) for name in stack.of_type("AWS::SecretsManager::ResourcePolicy"))
        if props["SecretId"] == secret
    ]
    assert len(found) == 1, "the template should put one resource policy on each attached secret"
    return dict(deployed(found[0]["ResourcePolicy"]))


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        (
            {"RotatedSecretArns": SECRETS, "AdminSecretArns": ADMIN_SECRETS, "ApplicationRoleArns": READERS},
            policies.endpoint_policy(SECRETS, ADMIN_SECRETS, READERS, FUNCTION_ROLE),
        ),
        (
            {"RotatedSecretArns": MORE_SECRETS, "AdminSecretArns": ADMIN_SECRETS},
            policies.endpoint_policy(MORE_SECRETS, ADMIN_SECRETS, (), FUNCTION_ROLE),
        ),
        (
            {"RotatedSecretArns": SECRETS, "OtherRotatedSecretArns": OTHER_SECRETS, "ApplicationRoleArns": READERS},
            policies.endpoint_policy([*SECRETS, *OTHER_SECRETS], (), READERS, FUNCTION_ROLE),
        ),
    ],
    ids=["one-secret-admin-readers", "two-secrets-no-readers", "attached-and-other-secrets"],
)
def test_template_endpoint_policy_equals_the_generator(parameters: dict[str, Any], expected: dict[str, Any]) -> None:
    """The endpoint the template creates carries exactly the policy ``rotator policy endpoint
    --function-role`` prints for the same secrets, admin secrets and readers."""
    assert normal(template_endpoint_policy(**parameters)) == normal(expected)


RESOURCE_CASES = pytest.mark.parametrize(
    ("parameters", "endpoint"),
    [
        ({"RotatedSecretArns": MORE_SECRETS}, ENDPOINT_ID),
        (
            {
                "RotatedSecretArns": SECRETS,
                "CreateSecretsManagerEndpoint": "false",
                "ExistingSecretsManagerEndpointId": EXISTING_ENDPOINT_ID,
                "ExistingEndpointSecurityGroupId": "sg-0123456789abcdef0",
            },
            EXISTING_ENDPOINT_ID,
        ),
    ],
    ids=["created-endpoint", "existing-endpoint"],
)


@RESOURCE_CASES
def test_template_resource_policy_equals_the_generator(parameters: dict[str, Any], endpoint: str) -> None:
    """Each attached secret's resource policy is exactly what ``rotator policy resource`` prints
    for the stack's endpoint and break-glass principals."""
    template = template_resource_policy(SECRETS[0], **parameters)
    assert normal(template) == normal(policies.resource_policy([endpoint], BREAK_GLASS))


@RESOURCE_CASES
def test_template_resource_policy_differs_only_by_the_service_principal_exemption(
    parameters: dict[str, Any], endpoint: str
) -> None:
    """Until the two agree exactly, the one known difference is the generator's exemption of AWS
    services calling as themselves; nothing else may drift."""
    template = normal(template_resource_policy(SECRETS[0], **parameters))
    generated = normal(policies.resource_policy([endpoint], BREAK_GLASS))
    for document in (template, generated):
        document["Statement"][0]["Condition"]["BoolIfExists"].pop("aws:PrincipalIsAWSService", None)
    assert template == generated
