"""Assertions on template.yaml, rendered for the parameter sets a platform team deploys with."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator
from typing import Any

import pytest

from rotator.settings import Settings
from tests.template import cfn
from tests.template.conftest import (
    ADMIN_SECRET,
    APP_ROLE,
    APP_SECRET,
    BREAK_GLASS,
    EVERYTHING,
    KMS_KEY,
    OTHER_SECRETS,
    REPORTS_SECRET,
    REQUIRED,
    REUSED_ENDPOINT,
    ROOT,
    SCENARIOS,
    env_json,
)

FUNCTION_ARN = {"Fn::GetAtt": ["RotationFunction", "Arn"]}
ROLE_ARN = {"Fn::GetAtt": ["RotationFunctionRole", "Arn"]}
ROTATION_ACTIONS = {
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
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


def test_environment_declares_every_variable_the_function_reads(template: dict[str, Any]) -> None:
    """Every variable settings.py reads (except Lambda's own AWS_REGION) and Powertools' are declared."""
    source = (ROOT / "src" / "rotator" / "settings.py").read_text()
    read = {
        node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.value)
    }
    assert "PASSWORD_LENGTH" in read and "IDEMPOTENCY_TABLE" in read  # the scan found the settings
    declared = set(cfn.render(template, REQUIRED).props("RotationFunction")["Environment"]["Variables"])
    lambda_sets = {"AWS_REGION", "AWS_DEFAULT_REGION"}
    powertools = {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "POWERTOOLS_TRACE_DISABLED",
    }
    assert (read - lambda_sets) | powertools <= declared
    assert not declared & lambda_sets, "Lambda reserves AWS_REGION"


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
    """The function's environment, as the template sets it, parses into rotator's Settings."""
    variables = cfn.render(template, SCENARIOS[scenario_name]).props("RotationFunction")["Environment"]["Variables"]
    env = {k: v["Ref"] if isinstance(v, dict) else str(v) for k, v in variables.items()}
    settings = Settings.from_env(env)
    assert settings.password.length == 32
    assert settings.password.exclude_characters == "/@\"'\\:;`%"
    assert settings.ca_bundle.name == "rds-ca-bundle.pem"  # empty CaBundlePath: the bundled RDS CAs
    idempotent = SCENARIOS[scenario_name].get("EnableIdempotency", "true") == "true"
    assert settings.idempotency_disabled is not idempotent
    assert (settings.idempotency_table == "IdempotencyTable") is idempotent
    endpoint = SCENARIOS[scenario_name].get("SecretsManagerEndpointUrl") or None
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
    if scenario.conditions["CreateEndpoint"]:
        expected.add(("tcp", "443", "443", str({"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]})))
    else:
        expected.add(("tcp", "443", "443", params["ExistingEndpointSecurityGroupId"]))
    if scenario.conditions["IdempotencyEnabled"]:
        expected.add(("tcp", "443", "443", params["DynamoDbPrefixListId"]))
    assert destinations == expected
    assert all(rule.get("Description") for rule in rules)


def test_endpoint_admits_the_function_and_optionally_a_cidr(template: dict[str, Any]) -> None:
    """The endpoint's group admits 443 from the function's group, plus EndpointClientCidr only when given."""
    for overrides, cidrs in ((REQUIRED, []), (EVERYTHING, ["10.20.0.0/16"])):
        rendered = cfn.render(template, overrides)
        ingress = [r["Properties"] for r in rendered.of_type("AWS::EC2::SecurityGroupIngress").values()]
        to_endpoint = [r for r in ingress if r["GroupId"] == {"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]}]
        assert {str(r["FromPort"]) for r in to_endpoint} == {"443"}
        assert [r["SourceSecurityGroupId"] for r in to_endpoint if "SourceSecurityGroupId" in r] == [
            {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
        ]
        assert [r["CidrIp"] for r in to_endpoint if "CidrIp" in r] == cidrs


def test_secrets_manager_endpoint_is_private_dns_interface(template: dict[str, Any]) -> None:
    """The created endpoint is an interface endpoint with private DNS, in the function's subnets."""
    props = cfn.render(template, REQUIRED).props("SecretsManagerEndpoint")
    assert props["VpcEndpointType"] == "Interface"
    assert props["PrivateDnsEnabled"] is True
    assert props["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert props["SubnetIds"] == REQUIRED["SubnetIds"].split(",")
    assert props["SecurityGroupIds"] == [{"Fn::GetAtt": ["EndpointSecurityGroup", "GroupId"]}]


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


def test_endpoint_policy_allows_exactly_what_rotation_needs(template: dict[str, Any]) -> None:
    """The endpoint policy lets the function's role rotate the rotated secrets, read the admin
    secrets and generate passwords, lets the application roles read, and allows nothing else."""
    document = cfn.render(template, EVERYTHING).props("SecretsManagerEndpoint")["PolicyDocument"]
    assert {s["Sid"] for s in document["Statement"]} == {
        "RotationFunctionRotatesSecrets",
        "RotationFunctionReadsAdminSecrets",
        "RotationFunctionGeneratesPasswords",
        "ApplicationsReadRotatedSecrets",
    }
    assert all(s["Effect"] == "Allow" and "Condition" not in s for s in document["Statement"])
    rotate = statement(document, "RotationFunctionRotatesSecrets")
    assert rotate["Principal"] == {"AWS": ROLE_ARN}
    assert set(rotate["Action"]) == ROTATION_ACTIONS
    assert rotate["Resource"] == [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]
    admin = statement(document, "RotationFunctionReadsAdminSecrets")
    assert (admin["Principal"], admin["Action"], admin["Resource"]) == (
        {"AWS": ROLE_ARN},
        "secretsmanager:GetSecretValue",
        [ADMIN_SECRET],
    )
    passwords = statement(document, "RotationFunctionGeneratesPasswords")
    assert (passwords["Principal"], passwords["Action"], passwords["Resource"]) == (
        {"AWS": ROLE_ARN},
        "secretsmanager:GetRandomPassword",
        "*",
    )
    apps = statement(document, "ApplicationsReadRotatedSecrets")
    assert apps["Principal"] == {"AWS": [APP_ROLE]}
    assert set(apps["Action"]) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    assert apps["Resource"] == [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]


def test_endpoint_policy_without_secrets_allows_only_passwords(template: dict[str, Any]) -> None:
    """With no secrets configured yet, the endpoint policy allows only GetRandomPassword to the role."""
    document = cfn.render(template, REQUIRED).props("SecretsManagerEndpoint")["PolicyDocument"]
    assert [s["Sid"] for s in document["Statement"]] == ["RotationFunctionGeneratesPasswords"]


def test_dynamodb_gateway_is_scoped_to_the_table(template: dict[str, Any]) -> None:
    """The DynamoDB gateway endpoint sits on the route tables and allows only item actions on the idempotency table."""
    props = cfn.render(template, REQUIRED).props("DynamoDbEndpoint")
    assert props["VpcEndpointType"] == "Gateway"
    assert props["RouteTableIds"] == ["rtb-0123456789abcdef0"]
    (only,) = props["PolicyDocument"]["Statement"]
    assert only["Effect"] == "Allow"
    assert only["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    assert all(action.startswith("dynamodb:") and "*" not in action for action in only["Action"])
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
    """No statement grants secretsmanager:* (or any wildcard action), and Resource "*" only for
    GetRandomPassword, the ENI actions and X-Ray writes, which have no resource to name."""
    statements = list(iam_statements(scenario))
    assert statements
    for owner, stmt in statements:
        assert stmt["Effect"] == "Allow", (owner, stmt)
        actions = set(as_list(stmt["Action"]))
        assert not any("*" in action for action in actions), (owner, stmt)
        if "*" in as_list(stmt["Resource"]):
            assert actions <= RESOURCELESS_ACTIONS, (owner, stmt)


def test_rotation_permissions_are_bound_to_this_function(template: dict[str, Any]) -> None:
    """The rotated secrets are writable only while their rotation function is this one
    (AllowRotationLambdaArn); admin secrets are read-only and unconditioned; KMS only via Secrets Manager."""
    rendered = cfn.render(template, EVERYTHING)
    document = rendered.props("RotationFunctionPolicy")["PolicyDocument"]
    rotate = statement(document, "RotateSecretsOfThisFunction")
    assert set(rotate["Action"]) == ROTATION_ACTIONS
    assert rotate["Resource"] == [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]
    assert rotate["Condition"] == {"StringEquals": {"secretsmanager:resource/AllowRotationLambdaArn": FUNCTION_ARN}}
    admin = statement(document, "ReadAdminSecrets")
    assert (admin["Action"], admin["Resource"], admin.get("Condition")) == (
        "secretsmanager:GetSecretValue",
        [ADMIN_SECRET],
        None,
    )
    passwords = statement(document, "GeneratePasswords")
    assert (passwords["Action"], passwords["Resource"], passwords.get("Condition")) == (
        "secretsmanager:GetRandomPassword",
        "*",
        None,
    )
    kms = statement(document, "UseSecretKeysThroughSecretsManager")
    assert set(kms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert kms["Resource"] == [KMS_KEY]
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    table = statement(document, "IdempotencyRecords")
    assert table["Resource"] == {"Fn::GetAtt": ["IdempotencyTable", "Arn"]}
    assert rendered.props("RotationFunctionPolicy")["Roles"] == [{"Ref": "RotationFunctionRole"}]


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
        assert props["RotationRules"] == {"ScheduleExpression": "rate(30 days)", "Duration": "4h"}
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
def test_resource_policy_denies_only_reads_outside_the_endpoint(
    template: dict[str, Any], overrides: dict[str, str]
) -> None:
    """Each attached secret's policy denies GetSecretValue only, only when the request came neither
    through the endpoint, nor from a break-glass principal, nor from an AWS service."""
    rendered = cfn.render(template, overrides)
    policies = rendered.of_type("AWS::SecretsManager::ResourcePolicy")
    attached = overrides["RotatedSecretArns"].split(",")
    assert sorted(p["Properties"]["SecretId"] for p in policies.values()) == sorted(attached)
    endpoint = (
        {"Ref": "SecretsManagerEndpoint"}
        if rendered.conditions["CreateEndpoint"]
        else overrides["ExistingSecretsManagerEndpointId"]
    )
    for policy in policies.values():
        props = policy["Properties"]
        assert props["BlockPublicPolicy"] is True
        (deny,) = props["ResourcePolicy"]["Statement"]
        assert (deny["Sid"], deny["Effect"], deny["Principal"]) == ("DenyGetSecretValueOutsideEndpoint", "Deny", "*")
        assert deny["Action"] == "secretsmanager:GetSecretValue"
        assert deny["Condition"] == {
            "StringNotEquals": {"aws:SourceVpce": endpoint},
            "ArnNotLike": {"aws:PrincipalArn": [BREAK_GLASS]},
            "BoolIfExists": {"aws:ViaAWSService": "false", "aws:PrincipalIsAWSService": "false"},
        }


def test_resource_policy_is_opt_in(template: dict[str, Any]) -> None:
    """Without LockSecretsToEndpoint the secrets get schedules but keep their own policies."""
    rendered = cfn.render(template, {**EVERYTHING, "LockSecretsToEndpoint": "false"})
    assert len(rendered.of_type("AWS::SecretsManager::RotationSchedule")) == 2
    assert not rendered.of_type("AWS::SecretsManager::ResourcePolicy")


@pytest.mark.parametrize(
    ("overrides", "broken"),
    [
        ({**REQUIRED, "LockSecretsToEndpoint": "true"}, "needs BreakGlassPrincipalArns"),
        ({**REUSED_ENDPOINT, "ExistingSecretsManagerEndpointId": ""}, "needs the endpoint id"),
        ({**REUSED_ENDPOINT, "ExistingEndpointSecurityGroupId": ""}, "ExistingEndpointSecurityGroupId is required"),
        ({**REQUIRED, "DynamoDbPrefixListId": ""}, "DynamoDbPrefixListId is required"),
        ({**REQUIRED, "RouteTableIds": ""}, "needs RouteTableIds"),
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
        "cloudwatch.amazonaws.com": {"Fn::GetAtt": ["FunctionErrorsAlarm", "Arn"]},
    }
    assert rendered.props("AlarmEmailSubscription")["Endpoint"] == "dba-oncall@example.com"
    assert rendered.props("AlarmTopic")["KmsMasterKeyId"] == "alias/rotator-alarms"
    assert "AlarmEmailSubscription" not in cfn.render(template, REQUIRED).resources


def test_outputs_name_what_operators_need(scenario: cfn.Rendered) -> None:
    """Outputs give the RotationLambdaARN value, the role, the security group and the endpoint."""
    outputs = scenario.outputs
    assert outputs["RotationFunctionArn"]["Value"] == FUNCTION_ARN
    assert outputs["RotationFunctionRoleArn"]["Value"] == ROLE_ARN
    assert outputs["FunctionSecurityGroupId"]["Value"] == {"Fn::GetAtt": ["FunctionSecurityGroup", "GroupId"]}
    assert "SecretsManagerEndpointId" in outputs


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
