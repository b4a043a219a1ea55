"""Fixtures for the SAM application tests: the template, its tools, its build.

aws-sam-cli, checkov and the Lambda runtime emulation each live in their own
virtualenv, made by `make sam-venv checkov-venv runtime-venv` (which `make test`
runs first). The tools run as subprocesses with telemetry and update checks
off, so nothing here reaches past this machine except `sam build`'s pip, which
fetches the function's wheels from PyPI.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.mariadb import MariaDBServer, ensure_binaries
from tests.template import cfn

ROOT = cfn.ROOT
EVENTS_DIR = ROOT / "events"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")

SAM_VENV = ROOT / ".venv-sam"
CHECKOV_VENV = ROOT / ".venv-checkov"
RUNTIME_VENV = ROOT / ".venv-runtime"

# The smallest parameter set the template deploys with (every required
# parameter, defaults for the rest: the VPC's Secrets Manager endpoint reused, a
# DynamoDB gateway endpoint created), and one that turns every option on.
REQUIRED = {
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0fedcba9876543210",
    "DatabaseSecurityGroupId": "sg-0db00000000000000",
    "ExistingSecretsManagerEndpointId": "vpce-0fedcba9876543210",
    "ExistingEndpointSecurityGroupId": "sg-0e0000000000000e0",
    "RouteTableIds": "rtb-0123456789abcdef0",
    "DynamoDbPrefixListId": "pl-02cd2c6b",
    "LockSecretsToEndpoint": "false",
}
# The network, and the one choice every deploy states (it has no default): the lock.
NETWORK = {key: REQUIRED[key] for key in ("VpcId", "SubnetIds", "DatabaseSecurityGroupId", "LockSecretsToEndpoint")}
APP_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app/db-AbCdEf"
REPORTS_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/reports/db-GhIjKl"
OTHER_SECRETS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/legacy/*"
ADMIN_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/rds/admin-MnOpQr"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TABLE_KEY = "arn:aws:kms:us-east-1:123456789012:key/0000aaaa-11bb-22cc-33dd-444444eeeeee"
BREAK_GLASS = "arn:aws:iam::123456789012:role/BreakGlass"
# The role the stack is deployed as: CloudFormation changes the lock as it.
DEPLOY_ROLE = "arn:aws:iam::123456789012:role/rotator-deploy"
APP_ROLE = "arn:aws:iam::123456789012:role/app"
OPERATORS = "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DBA_*"
OPERATOR_GROUP = "sg-0a0000000000000a0"
EVERYTHING = {
    **NETWORK,
    "CreateSecretsManagerEndpoint": "true",
    "RouteTableIds": REQUIRED["RouteTableIds"],
    "DynamoDbPrefixListId": REQUIRED["DynamoDbPrefixListId"],
    "RotatedSecretArns": f"{APP_SECRET},{REPORTS_SECRET}",
    "OtherRotatedSecretArns": OTHER_SECRETS,
    "AdminSecretArns": ADMIN_SECRET,
    "KmsKeyArns": KMS_KEY,
    "ApplicationRoleArns": APP_ROLE,
    "OperatorPrincipalArns": OPERATORS,
    "OperatorSecurityGroupId": OPERATOR_GROUP,
    "EndpointClientCidr": "10.20.0.0/16",
    "LockSecretsToEndpoint": "true",
    "BreakGlassPrincipalArns": BREAK_GLASS,
    "LockManagerPrincipalArns": DEPLOY_ROLE,
    "IdempotencyTableKmsKeyArn": TABLE_KEY,
    "LogGroupKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/9999ffff-88ee-77dd-66cc-555555bbbbbb",
    "CodeSigningConfigArn": "arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-0123456789abcdef0",
    "AlarmEmail": "dba-oncall@example.com",
    "AlarmTopicKmsKeyId": "alias/rotator-alarms",
    "CanaryChecksAllRotatedSecrets": "true",
    # One function for both engines: MySQL on DatabasePort's default, PostgreSQL in its own group.
    "SecondDatabasePort": "5432",
    "SecondDatabaseSecurityGroupId": "sg-0db11111111111111",
}
# A created endpoint with private DNS: every client of the VPC goes through it.
PRIVATE_DNS = {**EVERYTHING, "EndpointPrivateDns": "true", "DynamoDbEndpointPolicy": "table-only"}
REUSED_ENDPOINT = {
    **REQUIRED,
    "SecretsManagerEndpointUrl": "https://vpce-0fedcba9876543210-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com",
    "EnableIdempotency": "false",
    "DynamoDbPrefixListId": "",
    "RouteTableIds": "",
    "RotatedSecretArns": APP_SECRET,
    "AdminSecretArns": ADMIN_SECRET,
    "OperatorPrincipalArns": OPERATORS,
    "OperatorSecurityGroupId": OPERATOR_GROUP,
    "LockSecretsToEndpoint": "true",
    "BreakGlassPrincipalArns": BREAK_GLASS,
    "LockManagerPrincipalArns": DEPLOY_ROLE,
    "CanaryChecksAllRotatedSecrets": "false",  # the readiness check reads only the named secrets
}
SCENARIOS = {
    "required-only": REQUIRED,
    "everything": EVERYTHING,
    "private-dns": PRIVATE_DNS,
    "reused-endpoint": REUSED_ENDPOINT,
}

# What the stack's own resources are once deployed (stack "rotator", cfn.PSEUDO's
# account and region), for policies handed to the evaluator.
ACCOUNT = cfn.PSEUDO["AWS::AccountId"]
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rotator-RotationFunction-AbC123dEf456"
FUNCTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/rotator-RotationFunctionRole-AbC123dEf456"
CANARY_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rotator-CanaryFunction-GhI789jKl012"
CANARY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/rotator-CanaryFunctionRole-GhI789jKl012"
CREATED_ENDPOINT = "vpce-0a1b2c3d4e5f60718"
DYNAMODB_ENDPOINT = "vpce-0d0d0d0d0d0d0d0d0"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/rotator-IdempotencyTable-AbC123dEf456"
DEPLOYED = {
    "Ref SecretsManagerEndpoint": CREATED_ENDPOINT,
    "Ref DynamoDbEndpoint": DYNAMODB_ENDPOINT,
    "GetAtt RotationFunction.Arn": FUNCTION_ARN,
    "GetAtt RotationFunctionRole.Arn": FUNCTION_ROLE,
    "GetAtt IdempotencyTable.Arn": TABLE,
    "Ref IdempotencyTable": TABLE.rpartition("/")[2],
    "Ref AlarmTopic": f"arn:aws:sns:us-east-1:{ACCOUNT}:rotator-AlarmTopic-AbC123dEf456",
    "Ref RotationFunction": FUNCTION_ARN.rpartition(":")[2],
    "GetAtt FunctionSecurityGroup.GroupId": "sg-0f0000000000000f0",
    "GetAtt RotationFunctionLogGroup.Arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:rotator-logs:*",
    "GetAtt CanaryFunction.Arn": CANARY_ARN,
    "GetAtt CanaryFunctionRole.Arn": CANARY_ROLE,
    "Ref CanaryFunction": CANARY_ARN.rpartition(":")[2],
    "GetAtt CanaryLogGroup.Arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:rotator-canary-logs:*",
    "GetAtt SecretsManagerEndpoint.DnsEntries": [
        f"Z7HUB22UULQXV:{CREATED_ENDPOINT}-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com",
        f"Z7HUB22UULQXV:{CREATED_ENDPOINT}-abcdefgh-us-east-1a.secretsmanager.us-east-1.vpce.amazonaws.com",
    ],
}
CREATED_ENDPOINT_URL = f"https://{CREATED_ENDPOINT}-abcdefgh.secretsmanager.us-east-1.vpce.amazonaws.com"


def tool(path: Path, make_target: str) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make {make_target}` (make test does)")
    return path


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[machine]


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return cfn.load()


@pytest.fixture(scope="session")
def tool_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for sam and checkov: no telemetry, no instance metadata, no update checks."""
    sam_home = tmp_path_factory.mktemp("sam-home")
    # SAM CLI asks PyPI for a newer version once a week unless its config says it
    # just did: give it a private config that says so.
    (sam_home / "metadata.json").write_text(json.dumps({"lastVersionCheck": time.time(), "telemetryEnabled": False}))
    env = dict(os.environ)
    env.update(
        {
            "SAM_CLI_TELEMETRY": "0",
            "AWS_EC2_METADATA_DISABLED": "true",
            "__SAM_CLI_APP_DIR": str(sam_home),
            "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true",
            "BC_SKIP_MAPPING": "TRUE",
        }
    )
    return env


Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def run_tool(tool_env: dict[str, str]) -> Runner:
    def run(args: Sequence[str | Path], *, env: Mapping[str, str] | None = None, timeout: float = 300) -> Any:
        return subprocess.run(
            [str(a) for a in args],
            cwd=ROOT,
            env={**tool_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(scope="session")
def sam() -> Path:
    return tool(SAM_VENV / "bin" / "sam", "sam-venv")


@pytest.fixture(scope="session")
def sam_build(sam: Path, run_tool: Runner, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """``sam build`` for an architecture, once per session; returns the function's artifact directory."""
    built: dict[str, Path] = {}

    def build(arch: str) -> Path:
        if arch not in built:
            with shared_dir(tmp_path_factory, f"sam-build-{arch}") as base:
                built[arch] = sam_build_into(base, arch)
        return built[arch]

    def sam_build_into(base: Path, arch: str) -> Path:
        artifact = base / "build" / "RotationFunction"
        if (base / "built").exists():  # another pytest-xdist worker built it
            return artifact
        result = run_tool(
            [sam, "build", "--build-dir", base / "build", "--parameter-overrides", f"Architecture={arch}"],
            # src/Makefile's pip: the sam venv's interpreter surely has one.
            env={
                "ROTATOR_ARCH": arch,
                "PYTHON": str(SAM_VENV / "bin" / "python"),
                "PYC_PYTHON": str(RUNTIME_VENV / "bin" / "python"),  # as `make build` does
            },
        )
        assert result.returncode == 0, f"sam build failed:\n{result.stdout}\n{result.stderr}"
        (base / "built").touch()
        return artifact

    return build


@contextmanager
def shared_dir(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """A directory of this run that every pytest-xdist worker sees, held under a lock:
    what is made in it is made once per run, not once per worker (a ``sam build``
    takes seconds of the two cores). Without xdist: the session's own temp dir."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # <basetemp>/popen-gwN -> <basetemp>, shared by the run's workers
    directory = base / name
    directory.mkdir(exist_ok=True)
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield directory
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBServer]:
    ensure_binaries()
    with MariaDBServer(tmp_path_factory.mktemp("mariadb-template")) as server:
        yield server


def load_event(step: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS_DIR / f"{step}.json").read_text())
    return loaded


def env_json() -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads((EVENTS_DIR / "env.json").read_text())
    return loaded


def sam_local_environment(template: Mapping[str, Any]) -> dict[str, str]:
    """The function's environment as ``sam local invoke --env-vars events/env.json`` builds it.

    The template's variables with default parameters, overlaid by env.json's
    values for the variables the template declares (SAM drops the others). A
    reference to one of the template's resources becomes its logical id.
    """
    declared = cfn.render(template, REQUIRED).props("RotationFunction")["Environment"]["Variables"]
    env = {name: value["Ref"] if isinstance(value, dict) else str(value) for name, value in declared.items()}
    env.update({k: v for k, v in env_json()["RotationFunction"].items() if k in declared})
    return env
