"""The readiness check (canary) in template.yaml: its function, role, schedule, alarms and
parameters, rendered for the parameter sets a platform team deploys with. What its role may
do is evaluated request by request in tests/template/test_decisions.py."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from rotator import canary, iam_policies
from rotator.readiness import DEFAULT_MARGIN_SECONDS
from rotator.settings import Settings
from tests.template import cfn
from tests.template.conftest import (
    ADMIN_SECRET,
    APP_SECRET,
    CANARY_ARN,
    DEPLOYED,
    EVERYTHING,
    FUNCTION_ARN,
    KMS_KEY,
    OTHER_SECRETS,
    REPORTS_SECRET,
    REQUIRED,
    SCENARIOS,
)

CANARY_RESOURCES = {
    "CanaryFunction": "AWS::Serverless::Function",
    "CanaryLogGroup": "AWS::Logs::LogGroup",
    "CanaryFunctionRole": "AWS::IAM::Role",
    "CanaryFunctionPolicy": "AWS::IAM::Policy",
    "CanarySchedulerRole": "AWS::IAM::Role",
    "CanarySchedule": "AWS::Scheduler::Schedule",
    "CanaryNotReadyAlarm": "AWS::CloudWatch::Alarm",
    "CanaryErrorsAlarm": "AWS::CloudWatch::Alarm",
}
CANARY_PARAMETERS = {"EnableCanary", "CanaryScheduleExpression", "CanaryChecksAllRotatedSecrets", "CanaryTimeout"}
READ_ONLY = {
    *iam_policies.CANARY_SECRET_ACTIONS,
    *iam_policies.CANARY_ADMIN_ACTIONS,
    *iam_policies.CANARY_ACCOUNT_ACTIONS,
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(stack: cfn.Rendered, policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in stack.props(policy)["PolicyDocument"]["Statement"]}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> cfn.Rendered:
    return cfn.render(cfn.load(), SCENARIOS[request.param])


def test_every_canary_resource_exists_by_default_and_none_when_switched_off(template: dict[str, Any]) -> None:
    """The readiness check is on by default (each of its resources, its outputs); EnableCanary=false
    deploys none of them and leaves the rest of the stack as it was."""
    on = cfn.render(template, REQUIRED)
    assert {name: on.resources[name]["Type"] for name in CANARY_RESOURCES} == CANARY_RESOURCES
    assert {"CanaryFunctionArn", "CanaryFunctionRoleArn"} <= set(on.outputs)
    off = cfn.render(template, {**REQUIRED, "EnableCanary": "false"})
    assert not set(CANARY_RESOURCES) & set(off.resources)
    assert not {"CanaryFunctionArn", "CanaryFunctionRoleArn"} & set(off.outputs)
    assert set(on.resources) - set(CANARY_RESOURCES) == set(off.resources)
    assert "Canary" not in json.dumps(off.resources)


def test_every_canary_parameter_is_declared_grouped_and_used(template: dict[str, Any]) -> None:
    """Each canary parameter has a default, sits in the console's parameter group and is read by a resource."""
    declared = template["Parameters"]
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (group,) = [g for g in groups if g["Label"]["default"].startswith("Readiness check")]
    assert set(group["Parameters"]) == CANARY_PARAMETERS
    used = json.dumps([template["Resources"], template["Conditions"]])
    for name in CANARY_PARAMETERS:
        assert "Default" in declared[name] and declared[name].get("Description"), name
        assert f'{{"Ref": "{name}"}}' in used, name


def test_canary_runs_the_readiness_handler_on_the_rotation_functions_network(scenario: cfn.Rendered) -> None:
    """Same code artifact (CodeUri, makefile build), runtime, architecture, subnets, security group,
    Secrets Manager endpoint and database settings as the rotation function; its own role, log
    group and timeout; no retries of a failed run; at most one run at a time."""
    canary_props, rotation = scenario.props("CanaryFunction"), scenario.props("RotationFunction")
    assert canary_props["Handler"] == "rotator.canary.lambda_handler"
    assert scenario.resources["CanaryFunction"]["Metadata"]["BuildMethod"] == "makefile"
    for key in ("CodeUri", "Runtime", "Architectures", "VpcConfig", "Tracing", "MemorySize"):
        assert canary_props[key] == rotation[key], key
    assert canary_props["Role"] == {"Fn::GetAtt": ["CanaryFunctionRole", "Arn"]}
    assert canary_props["LoggingConfig"] == {"LogGroup": {"Ref": "CanaryLogGroup"}}
    assert canary_props["Timeout"] == scenario.parameters["CanaryTimeout"]
    assert canary_props["EventInvokeConfig"] == {"MaximumRetryAttempts": 0}
    assert canary_props["ReservedConcurrentExecutions"] == 1
    variables, rotation_variables = canary_props["Environment"]["Variables"], rotation["Environment"]["Variables"]
    for shared in ("SECRETS_MANAGER_ENDPOINT", "ROTATOR_CA_BUNDLE", "DB_CONNECT_TIMEOUT", "DB_READ_TIMEOUT"):
        assert variables[shared] == rotation_variables[shared], shared
    assert not {key for key in variables if "IDEMPOTENCY" in key or key.startswith("PASSWORD")}


@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_canary_environment_is_valid_settings(template: dict[str, Any], scenario_name: str) -> None:
    """As deployed, the canary's environment parses into Settings: the stack's attached secrets, this
    stack's rotation function, the listing option as given (on unless turned off: secrets attached
    with rotator attach are checked without another list)."""
    overrides = SCENARIOS[scenario_name]
    variables = cfn.render(template, overrides).props("CanaryFunction")["Environment"]["Variables"]
    settings = Settings.from_env({k: str(v) for k, v in cfn.deployed(variables, DEPLOYED).items()}).readiness
    attached = [arn for arn in overrides.get("RotatedSecretArns", "").split(",") if arn]
    assert list(settings.secret_ids) == attached
    assert settings.rotation_function_arn == FUNCTION_ARN
    assert settings.include_rotated_by_function is (overrides.get("CanaryChecksAllRotatedSecrets", "true") == "true")
    assert template["Parameters"]["CanaryChecksAllRotatedSecrets"]["Default"] == "true"


def test_canary_timeout_leaves_room_for_a_secret(template: dict[str, Any]) -> None:
    """The smallest CanaryTimeout exceeds the margin a run keeps for one more secret."""
    spec = template["Parameters"]["CanaryTimeout"]
    assert int(spec["MinValue"]) > DEFAULT_MARGIN_SECONDS
    assert int(spec["MaxValue"]) == 900


def test_canary_role_can_only_read(template: dict[str, Any]) -> None:
    """The canary's role reads the rotated secrets (Describe, Get, ListSecretVersionIds) and the admin
    secrets (Get); ListSecrets only with the option; the keys only to decrypt, via Secrets Manager,
    for these secrets; nothing that writes, no DynamoDB, no GetRandomPassword; the function's code
    may not touch network interfaces."""
    stack = cfn.render(template, EVERYTHING)
    found = statements(stack, "CanaryFunctionPolicy")
    rotated = [APP_SECRET, REPORTS_SECRET, OTHER_SECRETS]
    assert set(found["ReadRotatedSecrets"]["Action"]) == set(iam_policies.CANARY_SECRET_ACTIONS)
    assert found["ReadRotatedSecrets"]["Resource"] == rotated
    assert (found["ReadAdminSecrets"]["Action"], found["ReadAdminSecrets"]["Resource"]) == (
        list(iam_policies.CANARY_ADMIN_ACTIONS),
        [ADMIN_SECRET],
    )
    assert (found["ListSecrets"]["Action"], found["ListSecrets"]["Resource"]) == ("secretsmanager:ListSecrets", "*")
    via = {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    assert found["DecryptRotatedSecrets"] == {
        "Sid": "DecryptRotatedSecrets",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": [KMS_KEY],
        "Condition": {"StringEquals": via, "StringLike": {"kms:EncryptionContext:SecretARN": rotated}},
    }
    assert found["DecryptAdminSecrets"]["Condition"]["StringLike"] == {
        "kms:EncryptionContext:SecretARN": [ADMIN_SECRET]
    }
    deny = found["DenyNetworkInterfaceActionsToFunctionCode"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"ArnEquals": {"lambda:SourceFunctionArn": [{"Fn::GetAtt": ["CanaryFunction", "Arn"]}]}}
    allowed = {
        action
        for statement in found.values()
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if not action.startswith("kms:")
    }
    assert allowed == READ_ONLY
    role = stack.props("CanaryFunctionRole")
    assert role["Path"] == "/rotator/rotator/"
    runtime = {a for p in role["Policies"] for s in p["PolicyDocument"]["Statement"] for a in as_list(s["Action"])}
    assert not {action for action in runtime if action.split(":")[0] in ("secretsmanager", "dynamodb", "kms")}
    assert stack.props("CanaryFunctionPolicy")["Roles"] == [{"Ref": "CanaryFunctionRole"}]
    plain = statements(cfn.render(template, {**REQUIRED, "RotatedSecretArns": APP_SECRET}), "CanaryFunctionPolicy")
    assert set(plain) == {"ReadRotatedSecrets", "ListSecrets", "DenyNetworkInterfaceActionsToFunctionCode"}
    listed_only = {**REQUIRED, "RotatedSecretArns": APP_SECRET, "CanaryChecksAllRotatedSecrets": "false"}
    assert set(statements(cfn.render(template, listed_only), "CanaryFunctionPolicy")) == {
        "ReadRotatedSecrets",
        "DenyNetworkInterfaceActionsToFunctionCode",
    }


def test_schedule_invokes_the_canary_daily_through_a_role_that_can_do_nothing_else(template: dict[str, Any]) -> None:
    """EventBridge Scheduler runs it at CanaryScheduleExpression (daily by default, UTC, no flexible
    window), after its permissions exist, with a role that may only invoke it (this account's scheduler)."""
    stack = cfn.render(template, REQUIRED)
    schedule = stack.props("CanarySchedule")
    assert schedule["ScheduleExpression"] == "cron(0 9 * * ? *)"
    assert (schedule["ScheduleExpressionTimezone"], schedule["FlexibleTimeWindow"], schedule["State"]) == (
        "UTC",
        {"Mode": "OFF"},
        "ENABLED",
    )
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["CanaryFunction", "Arn"]}
    assert schedule["Target"]["RoleArn"] == {"Fn::GetAtt": ["CanarySchedulerRole", "Arn"]}
    assert stack.resources["CanarySchedule"]["DependsOn"] == ["CanaryFunctionPolicy"]
    role = stack.props("CanarySchedulerRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    (policy,) = role["Policies"]
    (invoke,) = policy["PolicyDocument"]["Statement"]
    assert (invoke["Action"], invoke["Resource"]) == (
        "lambda:InvokeFunction",
        {"Fn::GetAtt": ["CanaryFunction", "Arn"]},
    )


def test_schedule_expression_parameter_accepts_daily_forms_only_as_scheduler_does(template: dict[str, Any]) -> None:
    """The schedule takes a cron() or rate() expression EventBridge Scheduler understands; the default is daily."""
    pattern = template["Parameters"]["CanaryScheduleExpression"]["AllowedPattern"]
    for accepted in ("cron(0 9 * * ? *)", "rate(1 day)", "rate(12 hours)", "rate(30 minutes)"):
        assert re.fullmatch(pattern, accepted), accepted
    for refused in ("daily", "rate(0 days)", "rate(1 week)", "at(2026-01-01T00:00:00)"):
        assert re.fullmatch(pattern, refused) is None, refused
    custom = cfn.render(template, {**REQUIRED, "CanaryScheduleExpression": "rate(12 hours)"})
    assert custom.props("CanarySchedule")["ScheduleExpression"] == "rate(12 hours)"


def test_alarms_watch_what_the_canary_publishes_and_reach_the_alarm_topic(template: dict[str, Any]) -> None:
    """CanaryNotReadyAlarm watches the metric and service the canary publishes (SecretsNotReady ≥ 1,
    keeping its state between runs); CanaryErrorsAlarm a run that failed; both publish to the alarm
    topic, which admits them."""
    stack = cfn.render(template, EVERYTHING)
    variables = stack.props("CanaryFunction")["Environment"]["Variables"]
    alarm = stack.props("CanaryNotReadyAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        variables["POWERTOOLS_METRICS_NAMESPACE"],
        canary.NOT_READY_METRIC,
    )
    assert alarm["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["TreatMissingData"] == "ignore"
    errors = stack.props("CanaryErrorsAlarm")
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CanaryFunction"}}]
    for props in (alarm, errors):
        assert props["AlarmActions"] == props["OKActions"] == [{"Ref": "AlarmTopic"}]
    (cloudwatch,) = [
        s
        for s in stack.props("AlarmTopicPolicy")["PolicyDocument"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert {"Fn::GetAtt": ["CanaryNotReadyAlarm", "Arn"]} in cloudwatch["Condition"]["ArnEquals"]["aws:SourceArn"]
    deployed = cfn.deployed(stack.outputs["CanaryFunctionArn"]["Value"], DEPLOYED)
    assert deployed == CANARY_ARN
