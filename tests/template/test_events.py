"""The sample events in events/ drive the real handler through a whole rotation.

`sam local invoke` needs a container runtime these machines do not have, so the
events are run two other ways, each against moto and a private MariaDB with
verified TLS, with the environment `sam local invoke --env-vars events/env.json`
would give the function:

- in-process: each event file to ``rotator.handler.lambda_handler``;
- through the built artifact: the Lambda runtime interface emulator that ships
  with aws-sam-cli runs ``awslambdaric`` (Lambda's runtime client) on the
  artifact of ``sam build``, on 127.0.0.1, and each event is POSTed to it the
  way Lambda's Invoke API delivers it. Here idempotency is on, against a moto
  DynamoDB table created from the template's own table definition.

moto resolves the events' full ARN by its last segment, so the sample secret is
created under that name.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from rotator import handler as handler_module
from tests.support.attached import attach_without_rotating
from tests.support.aws import begin_rotation, secret_value, stages
from tests.support.lambda_context import FakeLambdaContext
from tests.support.mariadb import MariaDBServer, free_port
from tests.support.observe import Emitted
from tests.support.world import World, make_world, reset_server
from tests.template import cfn
from tests.template.conftest import (
    DEPLOYED,
    EVENTS_DIR,
    FUNCTION_ARN,
    REQUIRED,
    RUNTIME_VENV,
    SAM_VENV,
    STEPS,
    env_json,
    host_arch,
    load_event,
    sam_local_environment,
    tool,
)

pytestmark = pytest.mark.integration

SAMPLE = load_event("createSecret")
SAMPLE_ARN: str = SAMPLE["SecretId"]
SAMPLE_TOKEN: str = SAMPLE["ClientRequestToken"]
EXPECTED_OUTCOMES = ["created", "twin-synced", "twin-verified", "promoted"]


def test_sample_events_are_one_rotation() -> None:
    """One event per step, all for the same secret (a full ARN) and token, each with a RotationToken."""
    assert sorted(p.stem for p in EVENTS_DIR.glob("*.json")) == sorted([*STEPS, "env"])
    events = [load_event(step) for step in STEPS]
    assert [e["Step"] for e in events] == list(STEPS)
    assert {e["SecretId"] for e in events} == {SAMPLE_ARN}
    assert {e["ClientRequestToken"] for e in events} == {SAMPLE_TOKEN}
    assert re.fullmatch(r"arn:aws:secretsmanager:us-east-1:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}", SAMPLE_ARN)
    uuid.UUID(SAMPLE_TOKEN)
    rotation_tokens = {e["RotationToken"] for e in events}
    assert len(rotation_tokens) == 1 and SAMPLE_TOKEN not in rotation_tokens
    assert set().union(*(e.keys() for e in events)) == {"SecretId", "ClientRequestToken", "Step", "RotationToken"}


def seed_sample_rotation(server: MariaDBServer, client: Any) -> World:
    """The database users and secrets of a rotation, with the app secret under the events' ARN, staged AWSPENDING."""
    reset_server(server)
    world = make_world(server, client, name_prefix="seed-")
    client.create_secret(
        Name=SAMPLE_ARN.rsplit(":", maxsplit=1)[-1], SecretString=json.dumps(secret_value(client, world.app_arn))
    )
    begin_rotation(client, SAMPLE_ARN, SAMPLE_TOKEN)
    return world


def assert_rotated(world: World, client: Any) -> None:
    current = secret_value(client, SAMPLE_ARN)
    previous = secret_value(client, SAMPLE_ARN, "AWSPREVIOUS")
    assert current["username"] == "app_clone" and previous["username"] == "app"
    # AWSPENDING may stay on the new version: Secrets Manager clears it after finishSecret.
    assert "AWSCURRENT" in stages(client, SAMPLE_ARN)[SAMPLE_TOKEN]
    assert world.can_use_grants(current)


# -- in-process ---------------------------------------------------------------------


@pytest.fixture
def fresh_handler() -> Iterator[None]:
    handler_module._container.cache_clear()
    yield
    handler_module._container.cache_clear()


def test_sample_events_rotate_in_process(
    template: dict[str, Any], mariadb: MariaDBServer, monkeypatch: pytest.MonkeyPatch, fresh_handler: None
) -> None:
    """Fed to the handler in order, the four event files rotate the sample secret (moto in-process)."""
    env = sam_local_environment(template)
    assert env["POWERTOOLS_IDEMPOTENCY_DISABLED"] == "true"  # as env.json sets it for local runs
    # moto intercepts the regular endpoint in-process; env.json's URL is for a container.
    env["SECRETS_MANAGER_ENDPOINT"] = ""
    env["ROTATOR_CA_BUNDLE"] = str(mariadb.pki.ca_file)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="us-east-1")
        world = seed_sample_rotation(mariadb, client)
        results = [handler_module.lambda_handler(load_event(step), FakeLambdaContext()) for step in STEPS]
        assert [r["outcome"] for r in results] == EXPECTED_OUTCOMES
        assert [r["step"] for r in results] == list(STEPS)
        assert_rotated(world, client)


# -- the built artifact through the runtime interface emulator -------------------------


@pytest.fixture
def moto_server() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    yield url
    server.stop()


def emulator_binary(arch: str) -> Path:
    found = sorted(SAM_VENV.glob(f"lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-{arch}"))
    if not found:
        pytest.fail(f"aws-sam-cli in {SAM_VENV.name} ships no aws-lambda-rie-{arch}: run `make sam-venv`")
    return found[-1]


class Emulator:
    """aws-lambda-rie running `python -m awslambdaric HANDLER` (the rotation handler by default) in the artifact."""

    def __init__(
        self, artifact: Path, function_env: dict[str, str], log: Path, handler: str = "rotator.handler.lambda_handler"
    ) -> None:
        self.port = free_port()
        self.log = log
        python = tool(RUNTIME_VENV / "bin" / "python", "runtime-venv")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            # What Lambda itself puts in the environment.
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "LAMBDA_TASK_ROOT": str(artifact),
            "PYTHONPATH": str(artifact),
            "_HANDLER": handler,
            "AWS_LAMBDA_FUNCTION_TIMEOUT": "60",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}",
            **function_env,
        }
        command = [
            str(emulator_binary(host_arch())),
            "--runtime-interface-emulator-address",
            f"127.0.0.1:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{free_port()}",
            str(python),
            "-m",
            "awslambdaric",
            handler,
        ]
        self._log_file = log.open("w")
        self.process = subprocess.Popen(command, cwd=artifact, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the emulator did not start:\n{log.read_text()}") from None
                time.sleep(0.1)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=json.dumps(event).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=90) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture
def emulator(sam_build: Callable[[str], Path], tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(function_env: dict[str, str], function: str = "RotationFunction", handler: str | None = None) -> Emulator:
        # The host's architecture: the emulator and the wheels' compiled code must match it.
        artifact = sam_build(host_arch()).parent / function
        log = tmp_path / f"emulator-{function}.log"
        started.append(Emulator(artifact, function_env, log, *([handler] if handler else [])))
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_sample_events_rotate_through_the_built_artifact(
    template: dict[str, Any], mariadb: MariaDBServer, moto_server: str, emulator: Callable[..., Emulator]
) -> None:
    """The `sam build` artifact, run by Lambda's runtime client under the emulator, answers each
    sample event the way Lambda returns it, rotates the secret and records each step for idempotency."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_server, region_name="us-east-1")
    table = cfn.render(template, REQUIRED).props("IdempotencyTable")
    env = sam_local_environment(template)
    table_name = env["IDEMPOTENCY_TABLE"]
    dynamodb.create_table(
        TableName=table_name,
        KeySchema=table["KeySchema"],
        AttributeDefinitions=table["AttributeDefinitions"],
        BillingMode=table["BillingMode"],
    )
    dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=table["TimeToLiveSpecification"])
    world = seed_sample_rotation(mariadb, secrets)

    env.update(
        {
            "SECRETS_MANAGER_ENDPOINT": moto_server,  # env.json's URL, pointed at this moto server
            "ROTATOR_CA_BUNDLE": str(mariadb.pki.ca_file),
            # Beyond env.json: the deployed configuration's idempotency and tracing.
            "POWERTOOLS_IDEMPOTENCY_DISABLED": "false",
            "AWS_ENDPOINT_URL_DYNAMODB": moto_server,
            "POWERTOOLS_TRACE_DISABLED": "false",
        }
    )
    assert set(env_json()["RotationFunction"]) <= set(env)
    function = emulator(env)

    malformed = function.invoke({**load_event("createSecret"), "Step": "rotateEverything"})
    assert malformed["errorType"] == "InvalidEventError"

    results = [function.invoke(load_event(step)) for step in STEPS]
    assert [r.get("outcome") for r in results] == EXPECTED_OUTCOMES, results
    assert_rotated(world, secrets)

    [record] = dynamodb.scan(TableName=table_name)["Items"]  # idempotency wraps setSecret only
    assert record["status"]["S"] == "COMPLETED"
    assert int(record[table["TimeToLiveSpecification"]["AttributeName"]]["N"]) > time.time()
    # A duplicate setSecret is answered from the record, not re-run; a duplicate
    # finishSecret finds the version current.
    assert function.invoke(load_event("setSecret")) == results[1]
    assert function.invoke(load_event("finishSecret"))["outcome"] == "already-current"

    log = function.log.read_text()
    assert "Subsegment ## lambda_handler" in log, "the bundled X-Ray SDK did not trace the handler"
    for value in (secret_value(secrets, SAMPLE_ARN), secret_value(secrets, SAMPLE_ARN, "AWSPREVIOUS")):
        assert value["password"] not in log


def test_runtime_loads_the_compiled_wheels(sam_build: Callable[[str], Path]) -> None:
    """The runtime's Python imports the artifact's compiled extension (built for cp313 on this architecture)."""
    python = tool(RUNTIME_VENV / "bin" / "python", "runtime-venv")
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if version != "(3, 13)":
        pytest.skip(f"the runtime venv has Python {version}, not Lambda's 3.13 (no python3.13 on this machine)")
    artifact = sam_build(host_arch())
    probe = "import wrapt.__wrapt__ as w, wrapt; print(w._using_c_extension, wrapt.__file__)"
    result = subprocess.run(
        [python, "-c", probe],
        cwd=artifact,
        env={"PYTHONPATH": str(artifact)},
        capture_output=True,
        text=True,
        check=True,
    )
    using_c, location = result.stdout.split()
    assert using_c == "True"
    assert Path(location).is_relative_to(artifact)


def test_the_readiness_check_runs_from_its_built_artifact(
    template: dict[str, Any], mariadb: MariaDBServer, moto_server: str, emulator: Callable[..., Emulator]
) -> None:
    """The canary's `sam build` artifact, run by Lambda's runtime client under the emulator with the
    environment the template gives it, checks the stack's secret and reports it ready, with its
    metric and log lines and no password."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server, region_name="us-east-1")
    reset_server(mariadb)
    world = make_world(mariadb, secrets)
    attach_without_rotating(secrets, world.app_arn, FUNCTION_ARN)
    declared = cfn.render(template, {**REQUIRED, "RotatedSecretArns": world.app_arn}).props("CanaryFunction")
    env = {name: str(value) for name, value in cfn.deployed(declared["Environment"]["Variables"], DEPLOYED).items()}
    assert env["CANARY_SECRET_ARNS"] == world.app_arn and env["ROTATION_FUNCTION_ARN"] == FUNCTION_ARN
    env.update({"SECRETS_MANAGER_ENDPOINT": moto_server, "ROTATOR_CA_BUNDLE": str(mariadb.pki.ca_file)})
    function = emulator(env, "CanaryFunction", declared["Handler"])

    assert function.invoke({}) == {"checked": 1, "not_ready": [], "error": None}

    log = function.log.read_text()
    emitted = Emitted.parse(log)
    assert emitted.metric("Ready", SecretArn=world.app_arn) == [1.0]
    assert {line["check"] for line in emitted.logs if "check" in line} >= {"rotation.config", "db.admin-login"}
    assert "Subsegment ## lambda_handler" in log, "the bundled X-Ray SDK did not trace the handler"
    for password in world.all_passwords():
        assert password not in log
