"""The closed-VPC lock, proven by a policy evaluator: one row per request, its expected decision.

The policies are the ones the template renders for a concrete deployment (every
intrinsic function resolved, the stack's own resources replaced by deployed values)
and the ones ``rotator policy`` prints for the same inputs; each request is evaluated
by npm ``@cloud-copilot/iam-simulate`` (tests/template/simulator.py) together with
the identity policies of its principal, the secret's or key's resource policy and,
when it passes through a VPC endpoint, that endpoint's policy, as AWS evaluates it.

The rotation function and the readiness check (canary) are evaluated with their own
roles' policies. Other principals are given an identity policy that allows
everything: what is denied to them is denied by the lock or the endpoint, whatever
IAM grants. Every request states its context keys (the evaluator derives none).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rotator import iam_policies
from rotator.cli import main
from tests.template import cfn
from tests.template.conftest import (
    ACCOUNT,
    ADMIN_SECRET,
    APP_ROLE,
    APP_SECRET,
    BREAK_GLASS,
    CANARY_ARN,
    CANARY_ROLE,
    CREATED_ENDPOINT,
    DEPLOY_ROLE,
    DEPLOYED,
    DYNAMODB_ENDPOINT,
    EVERYTHING,
    FUNCTION_ARN,
    FUNCTION_ROLE,
    KMS_KEY,
    OTHER_SECRETS,
    PRIVATE_DNS,
    REPORTS_SECRET,
    REUSED_ENDPOINT,
    TABLE,
)
from tests.template.simulator import ALLOWED, EXPLICIT_DENY, IMPLICIT_DENY, Case, Outcome, simulate

REGION = cfn.PSEUDO["AWS::Region"]
EXISTING_ENDPOINT = REUSED_ENDPOINT["ExistingSecretsManagerEndpointId"]
LEGACY_SECRET = OTHER_SECRETS.replace("*", "billing-Qr5tUv")  # matches OtherRotatedSecretArns
OTHER_FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-elses-rotation"
UNRELATED_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:team-b/api-key-XyZ987"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_DBA_0123456789abcdef"
STRANGER = f"arn:aws:iam::{ACCOUNT}:role/someone-else"
OTHER_TEAM = f"arn:aws:iam::{ACCOUNT}:role/team-b-service"
OTHER_TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/team-b-orders"
# Another account: credentials brought into the VPC from outside, and that account's resources.
FOREIGN_ACCOUNT = "999988887777"
FOREIGN_ROLE = f"arn:aws:iam::{FOREIGN_ACCOUNT}:role/exfiltration"
FOREIGN_TABLE = f"arn:aws:dynamodb:{REGION}:{FOREIGN_ACCOUNT}:table/drop-box"
FOREIGN_SECRET = f"arn:aws:secretsmanager:{REGION}:{FOREIGN_ACCOUNT}:secret:drop-box-Zz9Yy8"
ALLOW_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
# What AWS attaches to an endpoint created without a policy: the shared endpoint
# the merged statements are added to.
DEFAULT_ENDPOINT_POLICY = {
    "Version": "2008-10-17",
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}],
}
SECRETS_MANAGER = f"secretsmanager.{REGION}.amazonaws.com"


# -- the policies under test -------------------------------------------------------


@dataclass(frozen=True)
class World:
    """The policies of one deployment: who may do what, and through which endpoint."""

    role_policies: list[dict[str, Any]]
    locks: dict[str, dict[str, Any]]  # secret ARN -> resource policy
    endpoint_id: str
    endpoint_policy: dict[str, Any]
    key_policy: dict[str, Any]
    dynamodb_endpoint_policy: dict[str, Any] | None = None
    canary_policies: list[dict[str, Any]] = field(default_factory=list)  # the readiness check's role


def rendered(parameters: Mapping[str, str]) -> cfn.Rendered:
    stack = cfn.render(cfn.load(), parameters)
    assert cfn.rule_violations(cfn.load(), parameters) == []
    return stack


def concrete(node: Any) -> Any:
    return cfn.deployed(node, DEPLOYED)


def role_policies(stack: cfn.Rendered, role_name: str = "RotationFunctionRole") -> list[dict[str, Any]]:
    """Every identity policy of one of the stack's roles: its inline ones and the AWS::IAM::Policy attached to it."""
    documents = [policy["PolicyDocument"] for policy in stack.props(role_name)["Policies"]]
    documents += [
        props["PolicyDocument"]
        for props in (stack.props(name) for name in stack.of_type("AWS::IAM::Policy"))
        if {"Ref": role_name} in props["Roles"]
    ]
    return [concrete(document) for document in documents]


def canary_policies(stack: cfn.Rendered) -> list[dict[str, Any]]:
    return role_policies(stack, "CanaryFunctionRole")


def template_locks(stack: cfn.Rendered) -> dict[str, dict[str, Any]]:
    return {
        props["SecretId"]: concrete(props["ResourcePolicy"])
        for props in (stack.props(name) for name in stack.of_type("AWS::SecretsManager::ResourcePolicy"))
    }


def cli_policy(*argv: str) -> dict[str, Any]:
    """What ``rotator policy ...`` prints (run in-process, as an operator would run it)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["policy", *argv])
    assert code == 0, err.getvalue()
    printed: dict[str, Any] = json.loads(out.getvalue())
    return printed


def key_policy(*secret_args: str) -> dict[str, Any]:
    # The key policy an operator writes before the first deploy: the stack's role path.
    return cli_policy("kms", *secret_args, "--stack", cfn.PSEUDO["AWS::StackName"], "--replace")


def template_world(stack: cfn.Rendered, keys: dict[str, Any]) -> World:
    """Every policy of a stack that creates both endpoints, as deployed."""
    return World(
        role_policies(stack),
        template_locks(stack),
        CREATED_ENDPOINT,
        concrete(stack.props("SecretsManagerEndpoint")["PolicyDocument"]),
        keys,
        concrete(stack.props("DynamoDbEndpoint")["PolicyDocument"]),
        canary_policies(stack),
    )


# `rotator policy resource` for the same deployment: its endpoint, break-glass, and the
# deploy role as the lock's manager.
CLI_LOCK = (
    "resource",
    "--endpoint",
    CREATED_ENDPOINT,
    "--break-glass",
    BREAK_GLASS,
    "--lock-manager",
    DEPLOY_ROLE,
    "--replace",
)


def worlds(tmp: Path) -> dict[str, World]:
    created = rendered(EVERYTHING)
    reused = rendered(REUSED_ENDPOINT)
    private = rendered(PRIVATE_DNS)
    secret_args = ("--secrets", APP_SECRET, REPORTS_SECRET, OTHER_SECRETS, "--admin-secrets", ADMIN_SECRET)
    keys = key_policy(*secret_args)
    existing = tmp / "endpoint-policy.json"
    existing.write_text(json.dumps(DEFAULT_ENDPOINT_POLICY))
    return {
        # Everything from the template: created endpoint (private DNS off), created
        # DynamoDB gateway (shared policy).
        "template": template_world(created, keys),
        # The same deployment with every secret and endpoint policy from the CLI.
        "cli": World(
            role_policies(created),
            {
                **dict.fromkeys(
                    [APP_SECRET, REPORTS_SECRET],
                    cli_policy(*CLI_LOCK, "--writer", FUNCTION_ROLE, "--writer", EVERYTHING["OperatorPrincipalArns"]),
                ),
                ADMIN_SECRET: cli_policy(*CLI_LOCK),
            },
            CREATED_ENDPOINT,
            cli_policy(
                "endpoint",
                *secret_args,
                "--readers",
                APP_ROLE,
                "--function-role",
                FUNCTION_ROLE,
                "--operators",
                EVERYTHING["OperatorPrincipalArns"],
                "--canary-role",
                CANARY_ROLE,
                "--canary-lists",
                "--replace",
            ),
            keys,
            canary_policies=canary_policies(created),
        ),
        # A reused, shared endpoint: its default policy with rotator's statements merged in.
        "reused": World(
            role_policies(reused),
            template_locks(reused),
            EXISTING_ENDPOINT,
            cli_policy(
                "endpoint",
                "--secrets",
                APP_SECRET,
                "--admin-secrets",
                ADMIN_SECRET,
                "--function-role",
                FUNCTION_ROLE,
                "--operators",
                REUSED_ENDPOINT["OperatorPrincipalArns"],
                "--canary-role",
                CANARY_ROLE,
                "--merge",
                str(existing),
            ),
            key_policy("--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET),
            canary_policies=canary_policies(reused),
        ),
        # A created endpoint with private DNS: every client in the VPC passes it.
        "private-dns": template_world(private, keys),
    }


# -- the requests ----------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A request, where it comes from, and the decision AWS must give."""

    name: str
    principal: str
    action: str
    resource: str
    expected: str
    via_endpoint: bool = False
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    worlds: tuple[str, ...] = ("template", "cli", "reused")

    @property
    def _resource_account(self) -> str:
        # The resource's owner; "*" (ListSecrets, GetRandomPassword) is the caller's account.
        return self.resource.split(":")[4] if self.resource.count(":") >= 5 else ACCOUNT

    def case(self, world_name: str, world: World) -> Case:
        service = self.action.split(":")[0]
        context: dict[str, str | list[str]] = {
            "aws:PrincipalArn": self.principal,
            "aws:PrincipalAccount": self.principal.split(":")[4],
            "aws:ResourceAccount": self._resource_account,
            "aws:PrincipalIsAWSService": "false",
            "aws:ViaAWSService": "false",
            "aws:SecureTransport": "true",
        }
        identity = {FUNCTION_ROLE: world.role_policies, CANARY_ROLE: world.canary_policies}.get(
            self.principal, [ALLOW_EVERYTHING]
        )
        resource_policy = endpoint_policy = None
        if service == "secretsmanager":
            if self.via_endpoint:
                context["aws:SourceVpce"] = world.endpoint_id
                endpoint_policy = world.endpoint_policy
            resource_policy = world.locks.get(self.resource)
            rotated_by = _rotation_function(self.resource)
            if rotated_by:
                context["secretsmanager:resource/AllowRotationLambdaArn"] = rotated_by
        elif service == "kms":
            resource_policy = world.key_policy
            context["kms:CallerAccount"] = ACCOUNT
        elif service == "dynamodb" and self.via_endpoint:
            context["aws:SourceVpce"] = DYNAMODB_ENDPOINT
            endpoint_policy = world.dynamodb_endpoint_policy
        context.update(self.context)
        return Case(
            id=f"{world_name}: {self.name}",
            principal=self.principal,
            action=self.action,
            resource=self.resource,
            account=self._resource_account,
            context=context,
            identity_policies=identity,
            resource_policy=resource_policy,
            endpoint_policy=endpoint_policy,
        )


def _rotation_function(secret: str) -> str | None:
    if secret in (APP_SECRET, REPORTS_SECRET, LEGACY_SECRET):
        return FUNCTION_ARN
    if secret == OTHER_FUNCTIONS_SECRET:
        return OTHER_FUNCTION
    return None


OTHER_FUNCTIONS_SECRET = OTHER_SECRETS.replace("*", "rotated-elsewhere-Ab12Cd")
GET = "secretsmanager:GetSecretValue"
# Rows whose point is that the request fails, whichever policy refuses it first.
DENIED = "Denied"
# Rows that depend on the endpoint policy restricting something: not for the
# reused endpoint, whose (AWS default) policy lets everything through.
OWN_ENDPOINT = ("template", "cli")
FAS_CLOUDFORMATION = {"aws:ViaAWSService": "true", "aws:CalledVia": ["cloudformation.amazonaws.com"]}
FAS_CLOUDFORMATION_FIRST = {**FAS_CLOUDFORMATION, "aws:CalledViaFirst": "cloudformation.amazonaws.com"}


def name(secret: str) -> str:
    return "admin secret" if secret == ADMIN_SECRET else "rotated secret"


def kms_context(secret: str, *, via: str | None = SECRETS_MANAGER) -> dict[str, str]:
    context = {"kms:EncryptionContext:SecretARN": secret, "kms:EncryptionContext:SecretVersionId": "v1"}
    return {**context, "kms:ViaService": via} if via else context


# A table reads best one request per line: keep the formatter out of it.
# fmt: off
ROWS = [
    # The function, through the endpoint: the four steps, the admin secret, passwords.
    Row("function reads the rotated secret via the endpoint", FUNCTION_ROLE, GET, APP_SECRET, ALLOWED, True),
    *(
        Row(f"function {action.split(':')[1]} via the endpoint", FUNCTION_ROLE, action, APP_SECRET, ALLOWED, True)
        for action in iam_policies.ROTATION_ACTIONS
    ),
    Row("function reads the admin secret via the endpoint", FUNCTION_ROLE, GET, ADMIN_SECRET, ALLOWED, True),
    # Its RDS tag confirms a hostless admin secret's host (rotator.admin_host).
    Row("function describes the admin secret via the endpoint", FUNCTION_ROLE, "secretsmanager:DescribeSecret",
        ADMIN_SECRET, ALLOWED, True),
    Row(
        "function generates a password via the endpoint",
        FUNCTION_ROLE, "secretsmanager:GetRandomPassword", "*", ALLOWED, True,
    ),
    Row(
        "function rotates an OtherRotatedSecretArns secret via the endpoint",
        FUNCTION_ROLE, "secretsmanager:PutSecretValue", LEGACY_SECRET, ALLOWED, True, worlds=OWN_ENDPOINT,
    ),
    # ... and nothing else.
    Row("function outside the endpoint is denied", FUNCTION_ROLE, GET, APP_SECRET, EXPLICIT_DENY),
    Row("function outside the endpoint: admin secret denied", FUNCTION_ROLE, GET, ADMIN_SECRET, EXPLICIT_DENY),
    Row(
        "function writing a secret another function rotates",
        FUNCTION_ROLE, "secretsmanager:PutSecretValue", OTHER_FUNCTIONS_SECRET, IMPLICIT_DENY, True,
        worlds=OWN_ENDPOINT,
    ),
    Row(
        "function deleting the secret", FUNCTION_ROLE, "secretsmanager:DeleteSecret", APP_SECRET, IMPLICIT_DENY, True
    ),
    Row(
        "function writing the admin secret",
        FUNCTION_ROLE, "secretsmanager:PutSecretValue", ADMIN_SECRET, IMPLICIT_DENY, True,
    ),
    # Applications.
    Row("app role reads via the endpoint", APP_ROLE, GET, APP_SECRET, ALLOWED, True, worlds=OWN_ENDPOINT),
    Row(
        "app role describes via the endpoint",
        APP_ROLE, "secretsmanager:DescribeSecret", APP_SECRET, ALLOWED, True, worlds=OWN_ENDPOINT,
    ),
    # Not a writer: the lock refuses it through any endpoint, a shared one included.
    Row(
        "app role writing via the endpoint is denied",
        APP_ROLE, "secretsmanager:PutSecretValue", APP_SECRET, EXPLICIT_DENY, True,
    ),
    Row("app role reading the admin secret via the endpoint", APP_ROLE, GET, ADMIN_SECRET, IMPLICIT_DENY, True,
        worlds=OWN_ENDPOINT),
    Row("app role outside the endpoint is denied", APP_ROLE, GET, APP_SECRET, EXPLICIT_DENY),
    Row("a role the endpoint policy does not name", STRANGER, GET, APP_SECRET, IMPLICIT_DENY, True,
        worlds=OWN_ENDPOINT),
    # Operators and break-glass.
    Row("operator reading from outside is denied", OPERATOR, GET, APP_SECRET, EXPLICIT_DENY),
    Row("operator reading the admin secret from outside", OPERATOR, GET, ADMIN_SECRET, EXPLICIT_DENY),
    Row("break-glass reads from outside", BREAK_GLASS, GET, APP_SECRET, ALLOWED),
    Row("break-glass reads the admin secret from outside", BREAK_GLASS, GET, ADMIN_SECRET, ALLOWED),
    # Operators in the VPC: every call of the CLI (`rotator fix` moves a label, `rotate
    # --local` writes a version) but changing the lock, which the lock keeps to
    # break-glass and CloudFormation (rows below).
    *(
        Row(f"operator {action.split(':')[1]} via the endpoint", OPERATOR, action, APP_SECRET, ALLOWED, True)
        for action in iam_policies.OPERATOR_SECRET_ACTIONS
        if action not in iam_policies.LOCK_POLICY_ACTIONS
    ),
    *(
        Row(f"operator {action.split(':')[1]} (admin) via the endpoint", OPERATOR, action, ADMIN_SECRET, ALLOWED, True)
        for action in iam_policies.OPERATOR_ADMIN_ACTIONS
        if action not in iam_policies.LOCK_POLICY_ACTIONS
    ),
    *(
        Row(f"operator {action.split(':')[1]} via the endpoint", OPERATOR, action, "*", ALLOWED, True)
        for action in iam_policies.OPERATOR_ACCOUNT_ACTIONS
    ),
    Row(
        "operator deleting the secret via the endpoint",
        OPERATOR, "secretsmanager:DeleteSecret", APP_SECRET, IMPLICIT_DENY, True, worlds=OWN_ENDPOINT,
    ),
    # The forward-access path (item 1): CloudFormation resolving the secret for a caller.
    Row("operator via CloudFormation (forward access)", OPERATOR, GET, APP_SECRET, EXPLICIT_DENY, False,
        FAS_CLOUDFORMATION_FIRST),
    Row("app role via CloudFormation (forward access)", APP_ROLE, GET, ADMIN_SECRET, EXPLICIT_DENY, False,
        FAS_CLOUDFORMATION_FIRST),
    # Setting up rotation with the lock on: none of these is denied from anywhere.
    *(
        Row(f"operator {action.split(':')[1]} from outside{' (admin secret)' if secret == ADMIN_SECRET else ''}",
            OPERATOR, action, secret, ALLOWED)
        for action in iam_policies.LOCK_OPEN_ACTIONS
        for secret in (APP_SECRET, ADMIN_SECRET)
    ),
    # KMS: the secrets' key, only through Secrets Manager, only for these secrets.
    Row("function decrypts its secret via Secrets Manager", FUNCTION_ROLE, "kms:Decrypt", KMS_KEY, ALLOWED,
        context=kms_context(APP_SECRET), worlds=OWN_ENDPOINT),
    Row("function encrypts a new version via Secrets Manager", FUNCTION_ROLE, "kms:GenerateDataKey", KMS_KEY, ALLOWED,
        context=kms_context(APP_SECRET), worlds=OWN_ENDPOINT),
    Row("function decrypts the admin secret", FUNCTION_ROLE, "kms:Decrypt", KMS_KEY, ALLOWED,
        context=kms_context(ADMIN_SECRET), worlds=OWN_ENDPOINT),
    Row("function encrypting for the admin secret", FUNCTION_ROLE, "kms:GenerateDataKey", KMS_KEY, IMPLICIT_DENY,
        context=kms_context(ADMIN_SECRET), worlds=OWN_ENDPOINT),
    Row("function decrypting another function's secret", FUNCTION_ROLE, "kms:Decrypt", KMS_KEY, IMPLICIT_DENY,
        context=kms_context(UNRELATED_SECRET), worlds=OWN_ENDPOINT),
    Row("function decrypting with the key directly", FUNCTION_ROLE, "kms:Decrypt", KMS_KEY, IMPLICIT_DENY,
        context=kms_context(APP_SECRET, via=None), worlds=OWN_ENDPOINT),
    # Network interfaces: Lambda may manage them, the function's code may not.
    Row("Lambda creates the function's ENI", FUNCTION_ROLE, "ec2:CreateNetworkInterface",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*", ALLOWED),
    *(
        Row(f"function code calling {action}", FUNCTION_ROLE, action, "*", EXPLICIT_DENY,
            context={"lambda:SourceFunctionArn": FUNCTION_ARN})
        for action in ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")
    ),
]

# The readiness check (canary): reads through the endpoint, writes nothing, anywhere.
CANARY_WRITES = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:DeleteSecret",
)
# fmt: off
CANARY_ROWS = [
    *(
        Row(f"canary {action.split(':')[1]} via the endpoint", CANARY_ROLE, action, APP_SECRET, ALLOWED, True)
        for action in iam_policies.CANARY_SECRET_ACTIONS
    ),
    Row("canary reads the admin secret via the endpoint", CANARY_ROLE, GET, ADMIN_SECRET, ALLOWED, True),
    Row("canary reads an OtherRotatedSecretArns secret via the endpoint", CANARY_ROLE,
        "secretsmanager:DescribeSecret", LEGACY_SECRET, ALLOWED, True, worlds=OWN_ENDPOINT),
    Row("canary lists secrets via the endpoint (option on)", CANARY_ROLE, "secretsmanager:ListSecrets", "*",
        ALLOWED, True, worlds=OWN_ENDPOINT),
    Row("canary lists no secrets with the option off", CANARY_ROLE, "secretsmanager:ListSecrets", "*",
        IMPLICIT_DENY, True, worlds=("reused",)),
    # Denied by its role and the endpoint, and most of them by the lock too: denied either way.
    *(
        Row(f"canary {action.split(':')[1]} is denied ({name(secret)})", CANARY_ROLE, action, secret, DENIED, True)
        for action in CANARY_WRITES
        for secret in (APP_SECRET, ADMIN_SECRET)
    ),
    *(
        Row(f"canary {action.split(':')[1]} from outside is denied", CANARY_ROLE, action, APP_SECRET, DENIED)
        for action in CANARY_WRITES
    ),
    Row("canary does not generate passwords", CANARY_ROLE, "secretsmanager:GetRandomPassword", "*", IMPLICIT_DENY,
        True),
    Row("canary reads nothing outside the endpoint", CANARY_ROLE, GET, APP_SECRET, EXPLICIT_DENY),
    Row("canary reading another team's secret", CANARY_ROLE, GET, UNRELATED_SECRET, IMPLICIT_DENY, True),
    # Item 5 of issue 21: a secret the stack's lists match but another function rotates.
    Row("canary reading a listed secret another function rotates", CANARY_ROLE, GET, OTHER_FUNCTIONS_SECRET,
        IMPLICIT_DENY, True, worlds=OWN_ENDPOINT),
    Row("canary describing a listed secret another function rotates", CANARY_ROLE,
        "secretsmanager:DescribeSecret", OTHER_FUNCTIONS_SECRET, IMPLICIT_DENY, True, worlds=OWN_ENDPOINT),
    # Item 6: an admin secret's RDS tag confirms the admin's host (rotator.admin_host).
    Row("canary describes the admin secret (its RDS tag confirms the admin's host)", CANARY_ROLE,
        "secretsmanager:DescribeSecret", ADMIN_SECRET, ALLOWED, True),
    *(
        Row(f"canary {what}", CANARY_ROLE, action, KMS_KEY, expected, context=kms_context(secret, via=via),
            worlds=OWN_ENDPOINT)
        for what, action, secret, via, expected in (
            ("decrypts its secret via Secrets Manager", "kms:Decrypt", APP_SECRET, SECRETS_MANAGER, ALLOWED),
            ("decrypts the admin secret via Secrets Manager", "kms:Decrypt", ADMIN_SECRET, SECRETS_MANAGER, ALLOWED),
            ("encrypting a new version", "kms:GenerateDataKey", APP_SECRET, SECRETS_MANAGER, IMPLICIT_DENY),
            ("decrypting with the key directly", "kms:Decrypt", APP_SECRET, None, IMPLICIT_DENY),
        )
    ),
    Row("canary writing the idempotency table", CANARY_ROLE, "dynamodb:PutItem", TABLE, IMPLICIT_DENY, True,
        worlds=("template",)),
    Row("Lambda creates the canary's ENI", CANARY_ROLE, "ec2:CreateNetworkInterface",
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*", ALLOWED),
    Row("canary code calling ec2:CreateNetworkInterface", CANARY_ROLE, "ec2:CreateNetworkInterface", "*",
        EXPLICIT_DENY, context={"lambda:SourceFunctionArn": CANARY_ARN}),
]
# fmt: on

# Shared infrastructure: what the created endpoints change for everyone else.
SPILL_OVER = [
    Row(
        "function writes its idempotency record",
        FUNCTION_ROLE,
        "dynamodb:PutItem",
        TABLE,
        ALLOWED,
        True,
        worlds=("template",),
    ),
    Row(
        "function writing another table through the gateway",
        FUNCTION_ROLE,
        "dynamodb:PutItem",
        OTHER_TABLE,
        IMPLICIT_DENY,
        True,
        worlds=("template", "private-dns"),
    ),
    Row(
        "another team keeps its tables (shared gateway)",
        OTHER_TEAM,
        "dynamodb:GetItem",
        OTHER_TABLE,
        ALLOWED,
        True,
        worlds=("template",),
    ),
    Row(
        "another team loses its tables (table-only gateway)",
        OTHER_TEAM,
        "dynamodb:GetItem",
        OTHER_TABLE,
        IMPLICIT_DENY,
        True,
        worlds=("private-dns",),
    ),
    Row(
        "another team keeps its secrets (private DNS endpoint)",
        OTHER_TEAM,
        GET,
        UNRELATED_SECRET,
        ALLOWED,
        True,
        worlds=("private-dns", "reused"),
    ),
    Row(
        "another team cannot read rotated secrets (private DNS endpoint)",
        OTHER_TEAM,
        GET,
        APP_SECRET,
        IMPLICIT_DENY,
        True,
        worlds=("private-dns",),
    ),
    Row(
        "the function still rotates through a private DNS endpoint",
        FUNCTION_ROLE,
        "secretsmanager:PutSecretValue",
        APP_SECRET,
        ALLOWED,
        True,
        worlds=("private-dns",),
    ),
]
# fmt: on

# The lock, request by request (docs/deploy.md, "What the lock denies"): every read and
# write of the value, and every change of the lock, for both kinds of secret.
LOCKED = (APP_SECRET, ADMIN_SECRET)
LOCKED_ACTIONS = (*iam_policies.LOCK_READ_ACTIONS, *iam_policies.LOCK_WRITE_ACTIONS)
ALL_LOCK_ACTIONS = (*LOCKED_ACTIONS, *iam_policies.LOCK_POLICY_ACTIONS)
# CloudFormation acting for the deploying principal (a forward access session; the same
# with a stack service role): no aws:SourceVpce, aws:CalledVia names it.
VIA_CLOUDFORMATION = {
    "aws:ViaAWSService": "true",
    "aws:CalledVia": ["cloudformation.amazonaws.com"],
    "aws:CalledViaFirst": "cloudformation.amazonaws.com",
    "aws:CalledViaLast": "cloudformation.amazonaws.com",
}
# fmt: off
LOCK_ROWS = [
    # Outside the endpoint: nobody reads or writes, whatever IAM allows.
    *(
        Row(f"operator {action.split(':')[1]} from outside ({name(secret)})", OPERATOR, action, secret, EXPLICIT_DENY)
        for action in ALL_LOCK_ACTIONS
        for secret in LOCKED
    ),
    *(
        Row(f"function {action.split(':')[1]} from outside", FUNCTION_ROLE, action, APP_SECRET, EXPLICIT_DENY)
        for action in iam_policies.ROTATION_ACTIONS
        if action in LOCKED_ACTIONS
    ),
    # ... nor through another service acting for the caller.
    *(
        Row(f"operator {action.split(':')[1]} via CloudFormation ({name(secret)})", OPERATOR, action, secret,
            EXPLICIT_DENY, context=VIA_CLOUDFORMATION)
        for action in ALL_LOCK_ACTIONS
        for secret in LOCKED
    ),
    # Break-glass does everything from anywhere: an outage of the endpoint locks nobody out.
    *(
        Row(f"break-glass {action.split(':')[1]} from outside ({name(secret)})", BREAK_GLASS, action, secret, ALLOWED)
        for action in ALL_LOCK_ACTIONS
        for secret in LOCKED
    ),
    # Through the endpoint, writers only: a principal the endpoint lets through (a shared
    # endpoint lets everyone) still cannot write a rotated secret.
    *(
        Row(f"another team {action.split(':')[1]} via the endpoint", OTHER_TEAM, action, APP_SECRET, EXPLICIT_DENY,
            True)
        for action in iam_policies.LOCK_WRITE_ACTIONS
    ),
    # The lock itself: break-glass anywhere, the deploy role only through CloudFormation.
    *(
        Row(f"operator {action.split(':')[1]} via the endpoint ({name(secret)})", OPERATOR, action, secret,
            EXPLICIT_DENY, True)
        for action in iam_policies.LOCK_POLICY_ACTIONS
        for secret in LOCKED
    ),
    *(
        Row(f"CloudFormation {action.split(':')[1]} as the deploy role ({name(secret)})", DEPLOY_ROLE, action,
            secret, ALLOWED, context=VIA_CLOUDFORMATION)
        for action in (*iam_policies.LOCK_POLICY_ACTIONS, "secretsmanager:GetResourcePolicy")
        for secret in LOCKED
    ),
    *(
        Row(f"deploy role {action.split(':')[1]} directly, not via CloudFormation ({name(secret)})", DEPLOY_ROLE,
            action, secret, EXPLICIT_DENY)
        for action in iam_policies.LOCK_POLICY_ACTIONS
        for secret in LOCKED
    ),
    *(
        Row(f"another stack's deployer {action.split(':')[1]} via CloudFormation", STRANGER, action, APP_SECRET,
            EXPLICIT_DENY, context=VIA_CLOUDFORMATION)
        for action in iam_policies.LOCK_POLICY_ACTIONS
    ),
    Row("CloudFormation sets the rotation schedule as the deploy role", DEPLOY_ROLE, "secretsmanager:RotateSecret",
        APP_SECRET, ALLOWED, context=VIA_CLOUDFORMATION),
    Row("the deploy role resolving the secret in a template", DEPLOY_ROLE, GET, APP_SECRET, EXPLICIT_DENY,
        context=VIA_CLOUDFORMATION),
    Row("the deploy role writing the secret via CloudFormation", DEPLOY_ROLE, "secretsmanager:UpdateSecret",
        APP_SECRET, EXPLICIT_DENY, context=VIA_CLOUDFORMATION),
]

# The planted-pending-value attack, step by step: RotateSecret with a token of one's own
# (configuring rotation is open: allowed), then the pending value under that token - from
# outside, from inside through the endpoint, or by moving a label or removing the lock
# first. Every way to plant is refused, so createSecret finds no value it did not write.
PLANTER = STRANGER
ATTACK = [
    Row("attack: RotateSecret with an own token from outside", PLANTER, "secretsmanager:RotateSecret", APP_SECRET,
        ALLOWED),
    Row("attack: PutSecretValue of the pending version from outside", PLANTER, "secretsmanager:PutSecretValue",
        APP_SECRET, EXPLICIT_DENY),
    Row("attack: PutSecretValue of the pending version via the endpoint", PLANTER,
        "secretsmanager:PutSecretValue", APP_SECRET, EXPLICIT_DENY, True),
    Row("attack: PutSecretValue via CloudFormation", PLANTER, "secretsmanager:PutSecretValue", APP_SECRET,
        EXPLICIT_DENY, context=VIA_CLOUDFORMATION),
    Row("attack: AWSPENDING moved onto a version of one's own", PLANTER,
        "secretsmanager:UpdateSecretVersionStage", APP_SECRET, EXPLICIT_DENY, True),
    Row("attack: UpdateSecret with a value of one's own", PLANTER, "secretsmanager:UpdateSecret", APP_SECRET,
        EXPLICIT_DENY, True),
    Row("attack: DeleteResourcePolicy first, from outside", PLANTER, "secretsmanager:DeleteResourcePolicy",
        APP_SECRET, EXPLICIT_DENY),
    Row("attack: PutResourcePolicy first, via the endpoint", PLANTER, "secretsmanager:PutResourcePolicy",
        APP_SECRET, EXPLICIT_DENY, True),
    Row("attack: delete the secret to re-create it unlocked", PLANTER, "secretsmanager:DeleteSecret", APP_SECRET,
        EXPLICIT_DENY, True),
]

# No way out: credentials of another account, or resources of another account, find no
# path through the endpoints the template creates.
WAY_OUT = [
    Row("another account's role writes its own table through the gateway", FOREIGN_ROLE, "dynamodb:PutItem",
        FOREIGN_TABLE, IMPLICIT_DENY, True, worlds=("template", "private-dns")),
    Row("a role of this account writes another account's table through the gateway", OTHER_TEAM,
        "dynamodb:PutItem", FOREIGN_TABLE, IMPLICIT_DENY, True, worlds=("template", "private-dns")),
    Row("another account's role writing the idempotency table through the gateway", FOREIGN_ROLE,
        "dynamodb:PutItem", TABLE, IMPLICIT_DENY, True, worlds=("template", "private-dns")),
    Row("another account's role writes its own secret through the private DNS endpoint", FOREIGN_ROLE,
        "secretsmanager:PutSecretValue", FOREIGN_SECRET, IMPLICIT_DENY, True, worlds=("private-dns",)),
    Row("a role of this account writes another account's secret through the private DNS endpoint", OTHER_TEAM,
        "secretsmanager:PutSecretValue", FOREIGN_SECRET, IMPLICIT_DENY, True, worlds=("private-dns",)),
    Row("another account's role through the endpoint rotator created (no private DNS)", FOREIGN_ROLE,
        "secretsmanager:PutSecretValue", FOREIGN_SECRET, IMPLICIT_DENY, True, worlds=OWN_ENDPOINT),
]
# fmt: on


def _cases() -> Iterator[tuple[str, str, Row]]:
    for row in [*ROWS, *CANARY_ROWS, *SPILL_OVER, *LOCK_ROWS, *ATTACK, *WAY_OUT]:
        for world in row.worlds:
            yield f"{world}: {row.name}", world, row


CASES = list(_cases())


@pytest.fixture(scope="module")
def decisions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    built = worlds(tmp_path_factory.mktemp("policies"))
    return simulate([row.case(world, built[world]) for _, world, row in CASES])


@pytest.mark.parametrize(("case_id", "world", "row"), CASES, ids=[case_id for case_id, _, _ in CASES])
def test_decision(decisions: dict[str, Outcome], case_id: str, world: str, row: Row) -> None:
    """The evaluator's decision for this request under these policies is the expected one."""
    outcome = decisions[case_id]
    assert outcome.errors is None, outcome.errors
    expected = (EXPLICIT_DENY, IMPLICIT_DENY) if row.expected == DENIED else (row.expected,)
    assert outcome.decision in expected, f"{case_id}: {outcome.decision} (expected {row.expected})"


def test_every_numbered_row_of_the_issue_is_in_the_table() -> None:
    """The rows the issue asks for are all present (function in/out, app read/write, operator
    outside, break-glass, forward access, setup calls, another function's secret via KMS)."""
    names = {row.name for row in [*ROWS, *SPILL_OVER, *LOCK_ROWS, *WAY_OUT]}
    for required in (
        "function reads the rotated secret via the endpoint",
        "function outside the endpoint is denied",
        "app role reads via the endpoint",
        "app role writing via the endpoint is denied",
        "operator reading from outside is denied",
        "break-glass reads from outside",
        "operator via CloudFormation (forward access)",
        "operator RotateSecret from outside",
        "operator DescribeSecret from outside",
        "operator PutSecretValue from outside (rotated secret)",
        "operator UpdateSecretVersionStage from outside (rotated secret)",
        "operator UpdateSecret from outside (rotated secret)",
        "operator PutResourcePolicy from outside (rotated secret)",
        "operator DeleteResourcePolicy from outside (admin secret)",
        "CloudFormation PutResourcePolicy as the deploy role (rotated secret)",
        "CloudFormation DeleteResourcePolicy as the deploy role (admin secret)",
        "another team PutSecretValue via the endpoint",
        "another account's role writes its own table through the gateway",
        "function decrypting another function's secret",
    ):
        assert required in names, required


def test_the_encryption_context_workaround_is_used_only_for_kms(decisions: dict[str, Outcome]) -> None:
    """Only KMS requests (kms:EncryptionContext:SecretARN) go through the evaluator's unchecked
    path; everything else through its validating one."""
    for case_id, _, row in CASES:
        expected = "runUnsafeSimulation" if row.action.startswith("kms:") else "runSimulation"
        assert decisions[case_id].engine == expected, case_id


def test_every_case_has_its_own_name() -> None:
    """No two rows of one world share a name (a shared name would hide one of them)."""
    ids = [case_id for case_id, _, _ in CASES]
    assert len(ids) == len(set(ids))


def test_the_planted_pending_value_attack_is_refused(decisions: dict[str, Outcome]) -> None:
    """Replaying the attack against the lock of the CLI and of the template: starting a
    rotation with a token of one's own is allowed (configuring rotation is open), and every
    way to put a value of one's own under that token - PutSecretValue from outside, through
    the endpoint, through CloudFormation, moving AWSPENDING, UpdateSecret, or removing,
    rewriting or deleting the lock first - is refused explicitly, by the lock itself."""
    start, *plants = ATTACK
    for world in start.worlds:
        assert decisions[f"{world}: {start.name}"].decision == ALLOWED
        for step in plants:
            assert decisions[f"{world}: {step.name}"].decision == EXPLICIT_DENY, f"{world}: {step.name}"
    assert {"template", "cli", "reused"} <= set(start.worlds)


def test_every_write_and_lock_action_is_denied_outside_for_both_policies(decisions: dict[str, Outcome]) -> None:
    """Each action the lock guards has an outside row for the rotated and the admin secret,
    in the CLI's policy and the template's, and each is denied; break-glass is allowed each."""
    for world in ("template", "cli"):
        for action in ALL_LOCK_ACTIONS:
            for secret in LOCKED:
                verb = action.split(":")[1]
                assert decisions[f"{world}: operator {verb} from outside ({name(secret)})"].decision == EXPLICIT_DENY
                assert decisions[f"{world}: break-glass {verb} from outside ({name(secret)})"].decision == ALLOWED
