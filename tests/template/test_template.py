"""Assertions on template.yaml, rendered for the parameter sets a platform team deploys with."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from rotator import iam_policies
from rotator.settings import Settings
from tests.template import cfn
from tests.template.conftest import (
    ADMIN_SECRET,
    APP_ROLE,
    APP_SECRET,
    BREAK_GLASS,
    CREATED_ENDPOINT,
    CREATED_ENDPOINT_URL,
    DEPLOYED,
    EVERYTHING,
    KMS_KEY,
    NETWORK,
    OPERATOR_GROUP,
    OPERATORS,
    OTHER_SECRETS,
    PRIVATE_DNS,
    REPORTS_SECRET,
    REQUIRED,
    REUSED_ENDPOINT,
    ROOT,
    SCENARIOS,
    TABLE_KEY,
    env_json,
)

FUNCTION_ARN = {"Fn::GetAtt": ["RotationFunction", "Arn"]}
ROLE_ARN = {"Fn::GetAtt": ["RotationFunctionRole", "Arn"]}
CANARY_ROLE_ARN = {"Fn::GetAtt": ["CanaryFunctionRole", "Arn"]}
FUNCTION_GROUP = {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
# A created endpoint and nothing optional.
CREATED = {**NETWORK, "CreateSecretsManagerEndpoint": "true", "RouteTableIds": "rtb-0", "DynamoDbPrefixListId": "pl-0"}
ROTATION_ACTIONS = {
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
}
ENI_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}
# Actions that act on no resource (or have no resource-level permissions): the
# only ones allowed on Resource "*".
RESOURCELESS_ACTIONS = ENI_ACTIONS | {
    "secretsmanager:GetRandomPassword",
    "secretsmanager:ListSecrets",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_statements(rendered: cfn.Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every identity policy in the rendering (role inline policies and AWS::IAM::Policy)."""
    for name, role in rendered.of_type("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement
    for name, policy in rendered.of_type("AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            yield name, statement


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [s for s in document["Statement"] if s.get("Sid") == sid]
    assert len(found) == 1, f"expected one statement {sid}, found {[s.get('Sid') for s in document['Statement']]}"
    return found[0]


def render(overrides: dict[str, str]) -> cfn.Rendered:
    return cfn.render(cfn.load(), overrides)


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> cfn.Rendered:
    assert cfn.rule_violations(cfn.load(), SCENARIOS[request.param]) == []
    return render(SCENARIOS[request.param])


# -- the function -----------------------------------------------------------------


def test_function_runs_the_handler_in_the_vpc(scenario: cfn.Rendered) -> None:
    """The function is the rotator handler on python3.13 arm64, in the given subnets, behind its own group."""
    props = scenario.props("RotationFunction")
    assert props["Handler"] == "rotator.handler.lambda_handler"
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["CodeUri"] == "src/"
    assert scenario.resources["RotationFunction"]["Metadata"]["BuildMethod"] == "makefile"
    assert props["VpcConfig"]["SubnetIds"] == REQUIRED["SubnetIds"].split(",")
    assert props["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}]
    assert props["Tracing"] == "Active"
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": "RotationFunctionLogGroup"}}
    assert int(scenario.props("RotationFunctionLogGroup")["RetentionInDays"]) > 0
    assert 30 <= int(props["Timeout"]) <= 900
    assert int(props["MemorySize"]) >= 128


@pytest.mark.parametrize("value", ["0", "10", "25"])
def test_reserved_concurrency_is_none_or_at_least_ten(template: dict[str, Any], value: str) -> None:
    """Reserved concurrency is absent (0) or at least 10; smaller values are refused by the parameter pattern."""
    props = cfn.render(template, {**REQUIRED, "ReservedConcurrency": value}).props("RotationFunction")
    assert props.get("ReservedConcurrentExecutions", "0") == value
    pattern = template["Parameters"]["ReservedConcurrency"]["AllowedPattern"]
    assert all(re.fullmatch(pattern, str(n)) is None for n in range(1, 10))
    assert re.fullmatch(pattern, "10") and re.fullmatch(pattern, "0")


def test_x86_64_is_a_parameter(template: dict[str, Any]) -> None:
    """The Architecture parameter switches the function to x86_64."""
    props = cfn.render(template, {**REQUIRED, "Architecture": "x86_64"}).props("RotationFunction")
    assert props["Architectures"] == ["x86_64"]


def settings_variables() -> set[str]:
    """Every variable settings.py reads (its upper-case string constants)."""
    source = (ROOT / "src" / "rotator" / "settings.py").read_text()
    return {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.value)
    }


LAMBDA_SETS = {"AWS_REGION", "AWS_DEFAULT_REGION"}
POWERTOOLS = {
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_TRACE_DISABLED",
}
# What only the readiness check reads (ReadinessSettings).
READINESS_VARIABLES = {"CANARY_SECRET_ARNS", "CANARY_CHECK_ALL_ROTATED", "ROTATION_FUNCTION_ARN"}


def test_environment_declares_every_variable_the_function_reads(template: dict[str, Any]) -> None:
    """Every variable settings.py reads for rotation (except Lambda's own AWS_REGION) and Powertools'
    are declared on the rotation function; the readiness check's own are not."""
    read = settings_variables()
    assert "PASSWORD_LENGTH" in read and "IDEMPOTENCY_TABLE" in read  # the scan found the settings
    assert read >= READINESS_VARIABLES
    declared = set(cfn.render(template, REQUIRED).props("RotationFunction")["Environment"]["Variables"])
    assert (read - LAMBDA_SETS - READINESS_VARIABLES) | POWERTOOLS <= declared
    assert not declared & (LAMBDA_SETS | READINESS_VARIABLES), "Lambda reserves AWS_REGION"


def test_env_json_sets_only_declared_variables(template: dict[str, Any]) -> None:
    """sam local invoke drops variables the template does not declare: env.json uses none of those."""
    declared = set(cfn.render(template, REQUIRED).props("RotationFunction")["Environment"]["Variables"])
    assert set(env_json()) == {"RotationFunction"}
    local = env_json()["RotationFunction"]
    assert local, "env.json sets nothing"
    assert set(local) <= declared
    assert local["SECRETS_MANAGER_ENDPOINT"].startswith("http")


@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_environment_is_valid_settings(template: dict[str, Any], scenario_name: str) -> None:
    """The function's environment, as the template sets it and as it is once deployed, parses
    into rotator's Settings."""
    variables = cfn.render(template, SCENARIOS[scenario_name]).props("RotationFunction")["Environment"]["Variables"]
    env = {name: str(value) for name, value in cfn.deployed(variables, DEPLOYED).items()}
    settings = Settings.from_env(env)
    assert settings.password.length == 32
    assert settings.password.exclude_characters == "/@\"'\\:;`%"
    assert settings.ca_bundle.name == "rds-ca-bundle.pem"  # empty CaBundlePath: the bundled RDS CAs
    idempotent = SCENARIOS[scenario_name].get("EnableIdempotency", "true") == "true"
    assert settings.idempotency_disabled is not idempotent
    assert (settings.idempotency_table is not None) is idempotent
    by_name = SCENARIOS[scenario_name].get("CreateSecretsManagerEndpoint") == "true" and (
        SCENARIOS[scenario_name].get("EndpointPrivateDns", "false") == "false"
    )
    endpoint = CREATED_ENDPOINT_URL if by_name else SCENARIOS[scenario_name].get("SecretsManagerEndpointUrl") or None
    assert settings.secrets_manager_endpoint == endpoint


@pytest.mark.parametrize(
    ("parameter", "variable"),
    [
        ("PasswordLength", "PASSWORD_LENGTH"),
        ("DbConnectTimeout", "DB_CONNECT_TIMEOUT"),
        ("DbReadTimeout", "DB_READ_TIMEOUT"),
        ("IdempotencyExpirySeconds", "IDEMPOTENCY_EXPIRY_SECONDS"),
        ("AdminSecretCacheSeconds", "ADMIN_SECRET_CACHE_SECONDS"),
    ],
)
def test_numeric_parameter_bounds_are_accepted_by_settings(
    template: dict[str, Any], parameter: str, variable: str
) -> None:
    """Whatever value CloudFormation lets through for a numeric parameter, Settings accepts."""
    spec = template["Parameters"][parameter]
    for bound in (spec["MinValue"], spec["MaxValue"]):
        variables = cfn.render(template, {**REQUIRED, parameter: str(bound)}).props("RotationFunction")
        env = {k: v["Ref"] if isinstance(v, dict) else str(v) for k, v in variables["Environment"]["Variables"].items()}
        assert env[variable] == str(bound)
        Settings.from_env(env)


# -- network ----------------------------------------------------------------------


def egress_rules(rendered: cfn.Rendered) -> list[tuple[Any, dict[str, Any]]]:
    rules: list[tuple[Any, dict[str, Any]]] = []
    for name, group in rendered.of_type("AWS::EC2::SecurityGroup").items():
        rules += [
            ({"Fn::GetAtt": [name, "GroupId"]}, rule) for rule in group["Properties"].get("SecurityGroupEgress", [])
        ]
    for rule in rendered.of_type("AWS::EC2::SecurityGroupEgress").values():
        rules.append((rule["Properties"]["GroupId"], rule["Properties"]))
    return rules


def test_no_security_group_allows_egress_to_anywhere(scenario: cfn.Rendered) -> None:
    """No rule opens egress to 0.0.0.0/0 or ::/0, and every group has an explicit egress rule
    (a group created without one gets AWS's default allow-all egress)."""
    for group, rule in egress_rules(scenario):
        assert rule.get("CidrIp") not in ("0.0.0.0/0",), (group, rule)
        assert rule.get("CidrIpv6") not in ("::/0",), (group, rule)
    for name, group in scenario.of_type("AWS::EC2::SecurityGroup").items():
        assert group["Properties"].get("SecurityGroupEgress"), f"{name} would get the default allow-all egress"


def test_function_egress_is_database_endpoint_and_dynamodb_only(scenario: cfn.Rendered) -> None:
    """The function's group reaches only the database group on its port, the endpoint's group
    on 443 and DynamoDB's prefix list on 443."""
    own = {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
    rules = [rule for group, rule in egress_rules(scenario) if group == own]
    destinations = {
        (
            str(rule["IpProtocol"]),
            str(rule["FromPort"]),
            str(rule["ToPort"]),
            str(rule.get("DestinationSecurityGroupId") or rule.get("DestinationPrefixListId")),
        )
        for rule in rules
    }
    params = scenario.parameters
    expected = {("tcp", "3306", "3306", params["DatabaseSecurityGroupId"])}
    if scenario.conditions["HasSecondDatabasePort"]:
        port, group = params["SecondDatabasePort"], params["SecondDatabaseSecurityGroupId"]
        expected.add(("tcp", port, port, group or params["DatabaseSecurityGroupId"]))
    if scenario.conditions["CreateEndpoint"]:
        expected.add(("tcp", "443", "443", str({"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]})))
    else:
        expected.add(("tcp", "443", "443", params["ExistingEndpointSecurityGroupId"]))
    if scenario.conditions["IdempotencyEnabled"]:
        expected.add(("tcp", "443", "443", params["DynamoDbPrefixListId"]))
    assert destinations == expected
    assert all(rule.get("Description") for rule in rules)


DB_GROUP = REQUIRED["DatabaseSecurityGroupId"]
PG_GROUP = "sg-0db22222222222222"


def database_paths(rendered: cfn.Rendered) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(port, database group) of the function group's egress rules to a database, and of the
    ingress rules the stack adds to database groups (those from the function's group)."""
    egress = {
        (str(rule["FromPort"]), str(rule["DestinationSecurityGroupId"]))
        for group, rule in egress_rules(rendered)
        if group == FUNCTION_GROUP and str(rule["FromPort"]) != "443"
    }
    assert all(
        str(rule["FromPort"]) == str(rule["ToPort"]) for g, rule in egress_rules(rendered) if g == FUNCTION_GROUP
    )
    ingress = {
        (str(rule["Properties"]["FromPort"]), str(rule["Properties"]["GroupId"]))
        for rule in rendered.of_type("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"].get("SourceSecurityGroupId") == FUNCTION_GROUP
        and str(rule["Properties"]["FromPort"]) != "443"
    }
    return egress, ingress


@pytest.mark.parametrize(
    ("overrides", "paths"),
    [
        # An existing MySQL/MariaDB deploy: what it had, and nothing more.
        ({}, {("3306", DB_GROUP)}),
        # A PostgreSQL stack.
        ({"DatabasePort": "5432"}, {("5432", DB_GROUP)}),
        # One function for both engines, their clusters in one group ...
        ({"SecondDatabasePort": "5432"}, {("3306", DB_GROUP), ("5432", DB_GROUP)}),
        # ... or each in its own.
        (
            {"SecondDatabasePort": "5432", "SecondDatabaseSecurityGroupId": PG_GROUP},
            {("3306", DB_GROUP), ("5432", PG_GROUP)},
        ),
    ],
    ids=["mysql-default", "postgresql", "both-one-group", "both-two-groups"],
)
def test_function_reaches_the_databases_on_their_ports_only(
    template: dict[str, Any], overrides: dict[str, str], paths: set[tuple[str, str]]
) -> None:
    """The function's group (the readiness check's too) reaches each database group on its
    engine's port and nothing else of it; the stack admits it there unless told not to."""
    parameters = {**REQUIRED, **overrides}
    assert cfn.rule_violations(template, parameters) == []
    rendered = cfn.render(template, parameters)
    egress, ingress = database_paths(rendered)
    assert egress == paths
    assert ingress == paths
    assert rendered.props("CanaryFunction")["VpcConfig"] == rendered.props("RotationFunction")["VpcConfig"]
    assert rendered.props("RotationFunction")["VpcConfig"]["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}]
    if not overrides:
        # An existing MySQL stack's update: its inline rule as it was, no second-port resource.
        assert rendered.props("FunctionSecurityGroup")["SecurityGroupEgress"] == [
            {
                "Description": "MySQL/MariaDB",
                "IpProtocol": "tcp",
                "FromPort": "3306",
                "ToPort": "3306",
                "DestinationSecurityGroupId": DB_GROUP,
            }
        ]
        assert not {"FunctionToSecondDatabaseEgress", "SecondDatabaseFromFunctionIngress"} & set(rendered.resources)
    _egress, none = database_paths(cfn.render(template, {**parameters, "AddDatabaseIngressRule": "false"}))
    assert none == set()


def endpoint_ingress(rendered: cfn.Rendered, group: Any) -> list[dict[str, Any]]:
    ingress = [r["Properties"] for r in rendered.of_type("AWS::EC2::SecurityGroupIngress").values()]
    return [rule for rule in ingress if rule["GroupId"] == group]


def test_created_endpoint_admits_the_function_operators_and_optionally_a_cidr(template: dict[str, Any]) -> None:
    """A created endpoint's group admits 443 from the function's group, from the operators' group
    when given, and from EndpointClientCidr only when given."""
    group = {"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]}
    for overrides, sources, cidrs in (
        (CREATED, [FUNCTION_GROUP], []),
        (EVERYTHING, [FUNCTION_GROUP, OPERATOR_GROUP], ["10.20.0.0/16"]),
    ):
        rules = endpoint_ingress(cfn.render(template, overrides), group)
        assert {str(r["FromPort"]) for r in rules} == {"443"}
        assert [r["SourceSecurityGroupId"] for r in rules if "SourceSecurityGroupId" in r] == sources
        assert [r["CidrIp"] for r in rules if "CidrIp" in r] == cidrs


def test_reused_endpoint_admits_the_function_and_the_operators(template: dict[str, Any]) -> None:
    """A reused endpoint's group gets 443 from the function's group and the operators' group, nothing else."""
    rendered = cfn.render(template, REUSED_ENDPOINT)
    rules = endpoint_ingress(rendered, REUSED_ENDPOINT["ExistingEndpointSecurityGroupId"])
    assert [r["SourceSecurityGroupId"] for r in rules] == [FUNCTION_GROUP, OPERATOR_GROUP]
    assert not any("CidrIp" in r for r in rules)


@pytest.mark.parametrize(("overrides", "private_dns"), [(EVERYTHING, False), (PRIVATE_DNS, True)])
def test_created_endpoint_is_an_interface_private_dns_only_on_request(
    template: dict[str, Any], overrides: dict[str, str], private_dns: bool
) -> None:
    """The created endpoint is an interface endpoint in the function's subnets; private DNS is off
    (nothing else in the VPC changes) unless EndpointPrivateDns, and without it the function calls
    the endpoint by its own DNS name."""
    rendered = cfn.render(template, overrides)
    props = rendered.props("SecretsManagerEndpoint")
    assert props["VpcEndpointType"] == "Interface"
    assert props["PrivateDnsEnabled"] is private_dns
    assert props["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert props["SubnetIds"] == REQUIRED["SubnetIds"].split(",")
    assert props["SecurityGroupIds"] == [{"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]}]
    variables = cfn.deployed(rendered.props("RotationFunction")["Environment"]["Variables"], DEPLOYED)
    assert variables["SECRETS_MANAGER_ENDPOINT"] == ("" if private_dns else CREATED_ENDPOINT_URL)
    outputs = cfn.deployed({name: out["Value"] for name, out in rendered.outputs.items()}, DEPLOYED)
    assert outputs["SecretsManagerEndpointId"] == CREATED_ENDPOINT
    assert outputs.get("SecretsManagerEndpointUrl") == (None if private_dns else CREATED_ENDPOINT_URL)


def test_endpoints_are_reused_by_default(template: dict[str, Any]) -> None:
    """With the required parameters only, the VPC's Secrets Manager endpoint is reused (the template
    creates none) and the lock's endpoint is the given one."""
    rendered = cfn.render(template, REQUIRED)
    assert "SecretsManagerEndpoint" not in rendered.resources
    assert "EndpointSecurityGroup" not in rendered.resources
    assert rendered.outputs["SecretsManagerEndpointId"]["Value"] == REQUIRED["ExistingSecretsManagerEndpointId"]


def test_reused_endpoint_creates_no_endpoint_and_sets_its_url(template: dict[str, Any]) -> None:
    """Reusing an endpoint creates none, opens 443 to its group and passes its URL as SECRETS_MANAGER_ENDPOINT."""
    rendered = cfn.render(template, REUSED_ENDPOINT)
    assert not rendered.of_type("AWS::EC2::VPCEndpoint")
    assert "EndpointSecurityGroup" not in rendered.resources
    ingress = rendered.props("ExistingEndpointFromFunctionIngress")
    assert ingress["GroupId"] == REUSED_ENDPOINT["ExistingEndpointSecurityGroupId"]
    variables = rendered.props("RotationFunction")["Environment"]["Variables"]
    assert variables["SECRETS_MANAGER_ENDPOINT"] == REUSED_ENDPOINT["SecretsManagerEndpointUrl"]
    assert rendered.outputs["SecretsManagerEndpointId"]["Value"] == REUSED_ENDPOINT["ExistingSecretsManagerEndpointId"]


def principals(statement: dict[str, Any]) -> list[Any]:
    """Who a statement admits: every endpoint statement names them by aws:PrincipalArn."""
    assert statement["Principal"] == "*"
    return as_list(statement["Condition"]["ArnLike"]["aws:PrincipalArn"])


def test_endpoint_policy_allows_exactly_what_rotation_operators_and_readers_need(template: dict[str, Any]) -> None:
    """The endpoint policy lets the function's role rotate the rotated secrets, read the admin
    secrets and generate passwords; the readiness check's role only read them (and list secrets);
    the operators make exactly the CLI's calls; the application roles read; nothing else, and no
    action wildcard."""
    document = cfn.render(template, EVERYTHING).props("SecretsManagerEndpoint")["PolicyDocument"]
    rotated = [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]
    expected = {
        "RotationFunctionRotatesSecrets": ([ROLE_ARN], set(iam_policies.ROTATION_ACTIONS), rotated),
        "RotationFunctionReadsAdminSecrets": ([ROLE_ARN], set(iam_policies.ADMIN_SECRET_ACTIONS), [ADMIN_SECRET]),
        "RotationFunctionGeneratesPasswords": ([ROLE_ARN], set(iam_policies.RANDOM_PASSWORD_ACTIONS), ["*"]),
        "CanaryReadsRotatedSecrets": ([CANARY_ROLE_ARN], set(iam_policies.CANARY_SECRET_ACTIONS), rotated),
        "CanaryReadsAdminSecrets": ([CANARY_ROLE_ARN], set(iam_policies.CANARY_ADMIN_ACTIONS), [ADMIN_SECRET]),
        "CanaryListsSecrets": ([CANARY_ROLE_ARN], set(iam_policies.CANARY_ACCOUNT_ACTIONS), ["*"]),
        "ApplicationsReadRotatedSecrets": ([APP_ROLE], set(iam_policies.READER_ACTIONS), rotated),
        "OperatorsManageRotatedSecrets": ([OPERATORS], set(iam_policies.OPERATOR_SECRET_ACTIONS), rotated),
        "OperatorsReadAdminSecrets": ([OPERATORS], set(iam_policies.OPERATOR_ADMIN_ACTIONS), [ADMIN_SECRET]),
        "OperatorsListAndGenerate": ([OPERATORS], set(iam_policies.OPERATOR_ACCOUNT_ACTIONS), ["*"]),
    }
    assert {s["Sid"] for s in document["Statement"]} == set(expected)
    for sid, (who, actions, resources) in expected.items():
        found = statement(document, sid)
        assert found["Effect"] == "Allow"
        assert principals(found) == who, sid
        assert set(as_list(found["Action"])) == actions, sid
        assert as_list(found["Resource"]) == resources, sid


def test_private_dns_endpoint_keeps_every_other_secret_open_to_the_account(template: dict[str, Any]) -> None:
    """With private DNS the endpoint serves the whole VPC: one more statement lets every principal
    of the account use every secret of the account except the rotated and admin ones."""
    document = cfn.render(template, PRIVATE_DNS).props("SecretsManagerEndpoint")["PolicyDocument"]
    others = statement(document, "OtherSecretsUnchanged")
    assert (others["Principal"], others["Action"]) == ("*", "secretsmanager:*")
    assert others["NotResource"] == [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS, ADMIN_SECRET]
    assert "Resource" not in others
    account = cfn.PSEUDO["AWS::AccountId"]
    assert others["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account, "aws:ResourceAccount": account}}
    bare = cfn.render(template, {**CREATED, "EndpointPrivateDns": "true"})
    assert statement(bare.props("SecretsManagerEndpoint")["PolicyDocument"], "OtherSecretsUnchanged")["Resource"] == "*"


def test_endpoint_policy_without_secrets_allows_only_passwords(template: dict[str, Any]) -> None:
    """With no secrets configured yet, the endpoint policy allows only GetRandomPassword to the role
    (and ListSecrets to the readiness check, which checks every secret the function rotates)."""
    document = cfn.render(template, CREATED).props("SecretsManagerEndpoint")["PolicyDocument"]
    assert [s["Sid"] for s in document["Statement"]] == ["RotationFunctionGeneratesPasswords", "CanaryListsSecrets"]
    named_only = cfn.render(template, {**CREATED, "CanaryChecksAllRotatedSecrets": "false"})
    document = named_only.props("SecretsManagerEndpoint")["PolicyDocument"]
    assert [s["Sid"] for s in document["Statement"]] == ["RotationFunctionGeneratesPasswords"]


def test_dynamodb_gateway_keeps_to_this_account(template: dict[str, Any]) -> None:
    """The created DynamoDB gateway sits on the route tables; by default (account) the function's role
    reaches only the idempotency table through it, the readiness check's nothing, and every other
    principal of this account keeps this account's tables; table-only allows only item actions on the
    table, to this account's principals. No statement admits another account (evaluated in
    test_decisions.py)."""
    props = cfn.render(template, REQUIRED).props("DynamoDbEndpoint")
    assert props["VpcEndpointType"] == "Gateway"
    assert props["RouteTableIds"] == ["rtb-0123456789abcdef0"]
    table, others = props["PolicyDocument"]["Statement"]
    assert (table["Sid"], table["Resource"]) == ("RotatorIdempotencyTable", {"Fn::GetAtt": ["IdempotencyTable", "Arn"]})
    assert principals(table) == [ROLE_ARN]
    assert all(action.startswith("dynamodb:") and "*" not in action for action in table["Action"])
    assert (others["Sid"], others["Action"], others["Resource"]) == ("OtherPrincipalsOfThisAccount", "*", "*")
    account = cfn.PSEUDO["AWS::AccountId"]
    assert others["Condition"] == {
        "ArnNotLike": {"aws:PrincipalArn": [ROLE_ARN, CANARY_ROLE_ARN]},
        "StringEquals": {"aws:PrincipalAccount": account, "aws:ResourceAccount": account},
    }
    only = cfn.render(template, {**REQUIRED, "DynamoDbEndpointPolicy": "table-only"}).props("DynamoDbEndpoint")
    (single,) = only["PolicyDocument"]["Statement"]
    assert single["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    assert single["Condition"] == {"StringEquals": {"aws:PrincipalAccount": account}}
    disabled = cfn.render(template, REUSED_ENDPOINT)
    assert "DynamoDbEndpoint" not in disabled.resources and "IdempotencyTable" not in disabled.resources
    kept = cfn.render(template, {**REQUIRED, "CreateDynamoDbEndpoint": "false"})
    assert "DynamoDbEndpoint" not in kept.resources and "IdempotencyTable" in kept.resources


def test_idempotency_table_matches_powertools(template: dict[str, Any]) -> None:
    """The table has Powertools' key "id" and TTL attribute "expiration", on-demand, encrypted, with PITR."""
    props = cfn.render(template, REQUIRED).props("IdempotencyTable")
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


# -- permissions ------------------------------------------------------------------


def test_no_iam_statement_grants_wildcards(scenario: cfn.Rendered) -> None:
    """No statement grants secretsmanager:* (or any wildcard action), Resource "*" only for
    GetRandomPassword, the ENI actions and X-Ray writes, which have no resource to name; the one
    Deny takes the ENI actions from the function's code."""
    statements = list(iam_statements(scenario))
    assert statements
    for owner, stmt in statements:
        actions = set(as_list(stmt["Action"]))
        assert not any("*" in action for action in actions), (owner, stmt)
        if stmt["Effect"] == "Deny":
            assert stmt["Sid"] == "DenyNetworkInterfaceActionsToFunctionCode", (owner, stmt)
            continue
        assert stmt["Effect"] == "Allow", (owner, stmt)
        if "*" in as_list(stmt["Resource"]):
            assert actions <= RESOURCELESS_ACTIONS, (owner, stmt)


def test_function_code_may_not_touch_network_interfaces(scenario: cfn.Rendered) -> None:
    """The ENI actions Lambda needs are denied to calls made by the function's code (AWS's
    lambda:SourceFunctionArn pattern), for a list of functions a second one can join."""
    document = scenario.props("RotationFunctionPolicy")["PolicyDocument"]
    deny = statement(document, "DenyNetworkInterfaceActionsToFunctionCode")
    assert deny["Effect"] == "Deny" and deny["Resource"] == "*"
    assert set(deny["Action"]) >= ENI_ACTIONS and "ec2:DetachNetworkInterface" in deny["Action"]
    assert deny["Condition"] == {"ArnEquals": {"lambda:SourceFunctionArn": [FUNCTION_ARN]}}


def test_rotation_permissions_are_bound_to_this_function(template: dict[str, Any]) -> None:
    """The rotated secrets are writable only while their rotation function is this one
    (AllowRotationLambdaArn); admin secrets are read-only and unconditioned; the secrets' keys only
    via Secrets Manager and only for these secrets (kms:EncryptionContext:SecretARN)."""
    rendered = cfn.render(template, EVERYTHING)
    document = rendered.props("RotationFunctionPolicy")["PolicyDocument"]
    rotated = [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]
    rotate = statement(document, "RotateSecretsOfThisFunction")
    assert set(rotate["Action"]) == ROTATION_ACTIONS
    assert rotate["Resource"] == rotated
    assert rotate["Condition"] == {"StringEquals": {"secretsmanager:resource/AllowRotationLambdaArn": FUNCTION_ARN}}
    admin = statement(document, "ReadAdminSecrets")
    assert (admin["Action"], admin["Resource"], admin.get("Condition")) == (
        list(iam_policies.ADMIN_SECRET_ACTIONS),  # DescribeSecret: the RDS tag of a hostless admin secret
        [ADMIN_SECRET],
        None,
    )
    passwords = statement(document, "GeneratePasswords")
    assert (passwords["Action"], passwords["Resource"], passwords.get("Condition")) == (
        "secretsmanager:GetRandomPassword",
        "*",
        None,
    )
    via = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    kms = statement(document, "UseSecretKeysForRotatedSecrets")
    assert set(kms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert kms["Resource"] == [KMS_KEY]
    assert kms["Condition"] == {"StringEquals": via, "StringLike": {"kms:EncryptionContext:SecretARN": rotated}}
    admin_kms = statement(document, "UseSecretKeysForAdminSecrets")
    assert (admin_kms["Action"], admin_kms["Resource"]) == ("kms:Decrypt", [KMS_KEY])
    assert admin_kms["Condition"] == {
        "StringEquals": via,
        "StringLike": {"kms:EncryptionContext:SecretARN": [ADMIN_SECRET]},
    }
    table = statement(document, "IdempotencyRecords")
    assert table["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    table_key = statement(document, "UseIdempotencyTableKey")
    assert table_key["Resource"] == TABLE_KEY
    assert table_key["Condition"] == {"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}}
    assert rendered.props("RotationFunctionPolicy")["Roles"] == [{"Ref": "RotationFunctionRole"}]


def test_role_has_a_path_a_key_policy_can_name_in_advance(scenario: cfn.Rendered) -> None:
    """The role lives under /rotator/STACK/, which ``rotator policy kms --stack`` names before it exists."""
    assert scenario.props("RotationFunctionRole")["Path"] == "/rotator/rotator/"
    assert scenario.outputs["KeyPolicyPrincipalPattern"]["Value"] == "arn:aws:iam::123456789012:role/rotator/rotator/*"


@pytest.mark.parametrize(
    ("attached", "other", "expected"),
    [
        (APP_SECRET, "", [APP_SECRET]),
        ("", OTHER_SECRETS, [OTHER_SECRETS]),
        (f"{APP_SECRET},{REPORTS_SECRET}", OTHER_SECRETS, [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]),
        ("", "", None),
    ],
)
def test_rotated_secret_list_combines_attached_and_other(
    template: dict[str, Any], attached: str, other: str, expected: list[str] | None
) -> None:
    """The role's rotated secrets are exactly the attached plus the other ARNs; with none, no statement."""
    rendered = cfn.render(template, {**REQUIRED, "RotatedSecretArns": attached, "OtherRotatedSecretArns": other})
    sids = {s["Sid"]: s for s in rendered.props("RotationFunctionPolicy")["PolicyDocument"]["Statement"]}
    if expected is None:
        assert "RotateSecretsOfThisFunction" not in sids
    else:
        assert sids["RotateSecretsOfThisFunction"]["Resource"] == expected


def test_role_is_assumable_only_by_lambda_of_this_account(scenario: cfn.Rendered) -> None:
    """Only lambda.amazonaws.com, for this account, may assume the execution role."""
    (trust,) = scenario.props("RotationFunctionRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_invoke_permission_is_limited_to_this_account(scenario: cfn.Rendered) -> None:
    """Secrets Manager may invoke the function only for secrets of this account (SourceAccount)."""
    (permission,) = scenario.of_type("AWS::Lambda::Permission").values()
    props = permission["Properties"]
    assert props["Principal"] == "secretsmanager.amazonaws.com"
    assert props["Action"] == "lambda:InvokeFunction"
    assert props["FunctionName"] == FUNCTION_ARN
    assert props["SourceAccount"] == "123456789012"


# -- attaching secrets --------------------------------------------------------------


def test_each_attached_secret_gets_a_schedule_after_the_permission(template: dict[str, Any]) -> None:
    """One RotationSchedule per ARN, with this function, ordered after the invoke permission,
    the rotation policy and the network the first rotation needs."""
    rendered = cfn.render(template, EVERYTHING)
    schedules = rendered.of_type("AWS::SecretsManager::RotationSchedule")
    assert sorted(s["Properties"]["SecretId"] for s in schedules.values()) == sorted([APP_SECRET, REPORTS_SECRET])
    for schedule in schedules.values():
        props = schedule["Properties"]
        assert props["RotationLambdaARN"] == FUNCTION_ARN
        assert props["RotationRules"] == {"ScheduleExpression": "cron(0 4 1 * ? *)", "Duration": "4h"}
        assert props["RotateImmediatelyOnUpdate"] == "false"
        assert {"RotationInvokePermission", "RotationFunctionPolicy"} <= set(schedule["DependsOn"])
        network = {ref["Ref"] for ref in schedule["Metadata"]["RequiresNetwork"] if isinstance(ref, dict)}
        assert network == {
            "SecretsManagerEndpoint",
            "FunctionToEndpointEgress",
            "EndpointFromFunctionIngress",
            "DatabaseFromFunctionIngress",
            "DynamoDbEndpoint",
            "FunctionToDynamoDbEgress",
        }
        assert network <= set(rendered.resources)


def test_no_secrets_means_no_schedules_or_policies(template: dict[str, Any]) -> None:
    """With RotatedSecretArns empty, nothing is attached."""
    rendered = cfn.render(template, REQUIRED)
    assert not rendered.of_type("AWS::SecretsManager::RotationSchedule")
    assert not rendered.of_type("AWS::SecretsManager::ResourcePolicy")


@pytest.mark.parametrize("overrides", [EVERYTHING, REUSED_ENDPOINT], ids=["created-endpoint", "reused-endpoint"])
def test_resource_policy_locks_reads_writes_and_itself(template: dict[str, Any], overrides: dict[str, str]) -> None:
    """Each attached secret and each admin secret gets the lock, with BlockPublicPolicy: the
    attached ones all four statements, the admin ones all but DenyWritesByOthers (their writers
    are not the stack's to know); no statement exempts a service acting for a caller. What each
    statement decides is evaluated in test_decisions.py, its equality with the CLI's in
    test_policies_agree.py."""
    rendered = cfn.render(template, overrides)
    locks = rendered.of_type("AWS::SecretsManager::ResourcePolicy")
    attached = overrides["RotatedSecretArns"].split(",")
    locked = [*attached, *overrides["AdminSecretArns"].split(",")]
    assert sorted(p["Properties"]["SecretId"] for p in locks.values()) == sorted(locked)
    for policy in locks.values():
        props = policy["Properties"]
        assert props["BlockPublicPolicy"] is True
        sids = [statement["Sid"] for statement in props["ResourcePolicy"]["Statement"]]
        expected = [
            sid for sid in iam_policies.LOCK_SIDS if props["SecretId"] in attached or sid != "DenyWritesByOthers"
        ]
        assert sids == expected
        assert all(statement["Effect"] == "Deny" for statement in props["ResourcePolicy"]["Statement"])
        assert "aws:ViaAWSService" not in json.dumps(props)


def test_the_lock_is_a_stated_choice(template: dict[str, Any]) -> None:
    """LockSecretsToEndpoint has no default (sam deploy --guided asks, a deploy without it fails):
    true (the stack locks), rotator-lock (`rotator lock` did) or false, in so many words; both
    samconfig environments state it."""
    spec = template["Parameters"]["LockSecretsToEndpoint"]
    assert "Default" not in spec
    assert spec["AllowedValues"] == ["true", "rotator-lock", "false"]
    with pytest.raises(KeyError, match="LockSecretsToEndpoint"):
        cfn.render(template, {k: v for k, v in REQUIRED.items() if k != "LockSecretsToEndpoint"})
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "prod"):
        overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
        assert any(item.startswith("LockSecretsToEndpoint=") for item in overrides), env


@pytest.mark.parametrize("choice", ["false", "rotator-lock"])
def test_the_stack_adds_no_lock_unless_told(template: dict[str, Any], choice: str) -> None:
    """With LockSecretsToEndpoint=false (unlocked) or rotator-lock (the secrets carry the lock
    `rotator lock` merged into their policies) the secrets get schedules and no ResourcePolicy
    resource, which could not attach to a secret that has a policy."""
    rendered = cfn.render(template, {**EVERYTHING, "LockSecretsToEndpoint": choice})
    assert len(rendered.of_type("AWS::SecretsManager::RotationSchedule")) == 2
    assert not rendered.of_type("AWS::SecretsManager::ResourcePolicy")


@pytest.mark.parametrize(
    ("overrides", "broken"),
    [
        ({**REQUIRED, "LockSecretsToEndpoint": "true"}, "needs BreakGlassPrincipalArns"),
        (
            {**REQUIRED, "LockSecretsToEndpoint": "true", "BreakGlassPrincipalArns": BREAK_GLASS},
            "needs LockManagerPrincipalArns",
        ),
        ({**REQUIRED, "ExistingSecretsManagerEndpointId": ""}, "ExistingSecretsManagerEndpointId is required"),
        ({**REUSED_ENDPOINT, "ExistingEndpointSecurityGroupId": ""}, "ExistingEndpointSecurityGroupId is required"),
        ({**REQUIRED, "EndpointPrivateDns": "true"}, "EndpointPrivateDns applies to a created endpoint only"),
        ({**EVERYTHING, "SecretsManagerEndpointUrl": "https://vpce-0a.example"}, "SecretsManagerEndpointUrl is for"),
        ({**REQUIRED, "DynamoDbPrefixListId": ""}, "DynamoDbPrefixListId is required"),
        ({**REQUIRED, "RouteTableIds": ""}, "needs RouteTableIds"),
        ({**REQUIRED, "SecondDatabaseSecurityGroupId": "sg-0db2"}, "SecondDatabaseSecurityGroupId needs"),
        ({**REQUIRED, "SecondDatabasePort": "3306"}, "SecondDatabasePort equals DatabasePort on the same group"),
        ({**REQUIRED, "DatabasePort": "5432", "SecondDatabasePort": "5432"}, "SecondDatabasePort equals"),
    ],
)
def test_rules_refuse_unsafe_parameter_sets(template: dict[str, Any], overrides: dict[str, str], broken: str) -> None:
    """CloudFormation refuses parameter sets that would lock everyone out or leave the function without a route."""
    violations = cfn.rule_violations(template, overrides)
    assert any(broken in v for v in violations), violations


# -- alarms and outputs ---------------------------------------------------------------


def test_rotation_failures_reach_the_alarm_topic(template: dict[str, Any]) -> None:
    """RotationFailed/RotationAbandoned events and function errors publish to the topic, which may e-mail."""
    rendered = cfn.render(template, EVERYTHING)
    rule = rendered.props("RotationEventsRule")
    assert rule["EventPattern"]["source"] == ["aws.secretsmanager"]
    assert set(rule["EventPattern"]["detail"]["eventName"]) == {"RotationFailed", "RotationAbandoned"}
    assert rule["Targets"] == [{"Id": "AlarmTopic", "Arn": {"Ref": "AlarmTopic"}}]
    alarm = rendered.props("FunctionErrorsAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/Lambda", "Errors")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "RotationFunction"}}]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    topic_policy = rendered.props("AlarmTopicPolicy")["PolicyDocument"]
    publishers = {
        s["Principal"]["Service"]: s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in topic_policy["Statement"]
    }
    assert publishers == {
        "events.amazonaws.com": {"Fn::GetAtt": ["RotationEventsRule", "Arn"]},
        "cloudwatch.amazonaws.com": [
            {"Fn::GetAtt": [alarm, "Arn"]}
            for alarm in ("FunctionErrorsAlarm", "CanaryNotReadyAlarm", "CanaryErrorsAlarm")
        ],
    }
    assert rendered.props("AlarmEmailSubscription")["Endpoint"] == "dba-oncall@example.com"
    assert rendered.props("AlarmTopic")["KmsMasterKeyId"] == "alias/rotator-alarms"
    assert "AlarmEmailSubscription" not in cfn.render(template, REQUIRED).resources


def test_outputs_name_what_operators_need(scenario: cfn.Rendered) -> None:
    """Outputs give the RotationLambdaARN value, the role, the security group and the endpoint."""
    outputs = scenario.outputs
    assert outputs["RotationFunctionArn"]["Value"] == FUNCTION_ARN
    assert outputs["RotationFunctionRoleArn"]["Value"] == ROLE_ARN
    assert outputs["FunctionSecurityGroupId"]["Value"] == FUNCTION_GROUP
    assert "SecretsManagerEndpointId" in outputs
    assert "KeyPolicyPrincipalPattern" in outputs


def test_every_checkov_skip_has_a_reason(template: dict[str, Any]) -> None:
    """Each checkov skip in the template says why."""
    skips = [
        (name, skip)
        for name, resource in template["Resources"].items()
        if isinstance(resource, dict)
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips
    for name, skip in skips:
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (name, skip)
        assert len(skip.get("comment", "")) > 40, (name, skip)


# -- samconfig.toml -------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_environment_deploys_this_template(template: dict[str, Any], environment: str) -> None:
    """Each samconfig environment validates with lint, expands Fn::ForEach wherever SAM reads the
    template, deploys with the capabilities both transforms need, and passes parameters the
    template accepts (its Rules included)."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())[environment]
    assert config["validate"]["parameters"]["lint"] is True
    for command in ("build", "validate", "package", "deploy"):
        assert config[command]["parameters"]["language_extensions"] is True, command
    deploy = config["deploy"]["parameters"]
    assert deploy["resolve_s3"] is True
    assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    overrides = dict(item.split("=", 1) for item in deploy["parameter_overrides"])
    assert cfn.rule_violations(template, overrides) == []
    rendered = cfn.render(template, overrides)
    assert rendered.props("RotationFunction")["VpcConfig"]["SubnetIds"] == overrides["SubnetIds"].split(",")
    if environment == "prod":
        assert rendered.of_type("AWS::SecretsManager::ResourcePolicy"), "prod locks its secrets to the endpoint"


# -- schedule, keys, code signing -----------------------------------------------------


def test_schedule_defaults_to_cron_and_the_window_to_one_to_24_hours(template: dict[str, Any]) -> None:
    """The default schedule is a cron() expression (a rate() schedule may still rotate after a change
    with RotateImmediately=false); the window accepts 1h-24h only, as `rotator attach` does."""
    params = template["Parameters"]
    assert params["RotationScheduleExpression"]["Default"].startswith("cron(")
    schedule = params["RotationScheduleExpression"]["AllowedPattern"]
    for accepted in ("cron(0 4 1 * ? *)", "rate(30 days)", "rate(12 hours)"):
        assert re.fullmatch(schedule, accepted), accepted
    for refused in ("30 days", "rate(0 days)", "every month"):
        assert re.fullmatch(schedule, refused) is None, refused
    window = params["RotationWindow"]["AllowedPattern"]
    assert [hours for hours in range(0, 30) if re.fullmatch(window, f"{hours}h")] == list(range(1, 25))


def test_customer_managed_keys_and_code_signing_are_optional(template: dict[str, Any]) -> None:
    """The idempotency table, the log group and the function take a customer managed key / a
    code-signing config only when one is given."""
    plain = cfn.render(template, REQUIRED)
    assert "SSEType" not in plain.props("IdempotencyTable")["SSESpecification"]
    assert "KmsKeyId" not in plain.props("RotationFunctionLogGroup")
    assert "CodeSigningConfigArn" not in plain.props("RotationFunction")
    assert "UseIdempotencyTableKey" not in json.dumps(plain.props("RotationFunctionPolicy"))
    keyed = cfn.render(template, EVERYTHING)
    assert keyed.props("IdempotencyTable")["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": TABLE_KEY,
    }
    assert keyed.props("RotationFunctionLogGroup")["KmsKeyId"] == EVERYTHING["LogGroupKmsKeyArn"]
    assert keyed.props("RotationFunction")["CodeSigningConfigArn"] == EVERYTHING["CodeSigningConfigArn"]


def test_admin_secrets_are_locked_unless_told_not_to(template: dict[str, Any]) -> None:
    """With the lock on, the admin secrets are locked too; LockAdminSecrets=false leaves them alone."""
    locked = cfn.render(template, EVERYTHING).of_type("AWS::SecretsManager::ResourcePolicy")
    assert ADMIN_SECRET in {p["Properties"]["SecretId"] for p in locked.values()}
    spared = cfn.render(template, {**EVERYTHING, "LockAdminSecrets": "false"})
    ids = {p["Properties"]["SecretId"] for p in spared.of_type("AWS::SecretsManager::ResourcePolicy").values()}
    assert ids == {APP_SECRET, REPORTS_SECRET}


def test_operators_are_optional(template: dict[str, Any]) -> None:
    """Without operators the endpoint policy has no operator statement and no operator ingress exists."""
    rendered = cfn.render(template, {**EVERYTHING, "OperatorPrincipalArns": "", "OperatorSecurityGroupId": ""})
    sids = {s["Sid"] for s in rendered.props("SecretsManagerEndpoint")["PolicyDocument"]["Statement"]}
    assert not {sid for sid in sids if sid.startswith("Operators")}
    assert "EndpointFromOperatorsIngress" not in rendered.resources
