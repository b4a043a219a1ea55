"""Secrets Manager as the rotation sees it, emulated by moto, driven like AWS drives it.

moto's ``rotate_secret`` stages an empty AWSPENDING version and turns rotation on,
then tries to invoke the function through moto's Lambda (which needs Docker). We
point it at a function that does not exist, accept the resulting
ResourceNotFoundException, and run the four steps ourselves, in-process
(:func:`drive_rotation`: the same token through the four steps, and on a failure the
whole rotation again with the same token). :func:`faithful_moto` makes in-process
moto behave like the service where a live load depends on it, and lets a test inject
service errors (:class:`ServiceFaults`). Used by the tests, ``make soak`` and the
fault matrix.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

Invoke = Callable[[dict[str, Any]], Any]
StepHook = Callable[[int, str], None]

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
FAKE_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:rotator-not-deployed"


def create_secret(client: Any, name: str, value: dict[str, Any]) -> str:
    return str(client.create_secret(Name=name, SecretString=json.dumps(value))["ARN"])


def begin_rotation(client: Any, arn: str, token: str | None = None) -> str:
    """Stage an empty AWSPENDING version under a new token, as RotateSecret does."""
    token = token or str(uuid.uuid4())
    for version, labels in stages(client, arn).items():
        if "AWSPENDING" in labels and "AWSCURRENT" in labels and version != token:
            # After a completed rotation AWS drops AWSPENDING itself; moto keeps it
            # and would then refuse the next RotateSecret as "still in progress".
            client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=version)
    try:
        client.rotate_secret(
            SecretId=arn,
            ClientRequestToken=token,
            RotationLambdaARN=FAKE_FUNCTION,
            RotationRules={"AutomaticallyAfterDays": 30},
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    labels_now = stages(client, arn)
    assert labels_now.get(token) == ["AWSPENDING"], labels_now
    return token


def event(arn: str, token: str, step: str, rotation_token: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"SecretId": arn, "ClientRequestToken": token, "Step": step}
    if rotation_token:
        body["RotationToken"] = rotation_token
    return body


def run_steps(invoke: Callable[[dict[str, Any]], Any], arn: str, token: str, steps: Iterable[str] = STEPS) -> list[Any]:
    return [invoke(event(arn, token, step)) for step in steps]


def secret_value(client: Any, arn: str, stage: str = "AWSCURRENT") -> dict[str, Any]:
    return dict(json.loads(client.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]))


def stages(client: Any, arn: str) -> dict[str, list[str]]:
    return dict(client.describe_secret(SecretId=arn)["VersionIdsToStages"])


def create_idempotency_table(dynamodb: Any, name: str) -> None:
    """The idempotency table as the SAM template declares it: key ``id`` (string),
    TTL on ``expiration``, on demand. Works against moto's DynamoDB."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


def idempotency_items(dynamodb: Any, name: str) -> list[dict[str, Any]]:
    """Every record in the idempotency table, as DynamoDB returns them."""
    return list(dynamodb.scan(TableName=name, ConsistentRead=True)["Items"])


# -- Secrets Manager's side of a rotation: the steps, retried as the service retries them --


@dataclass
class RotationRecord:
    token: str
    attempts: int = 0
    completed: bool = False
    errors: list[str] = field(default_factory=list)  # "<step>: <ErrorType>", one per failed attempt
    exceptions: list[BaseException] = field(default_factory=list, repr=False)
    outcomes: list[list[str]] = field(default_factory=list)  # per attempt, the outcome of each step that ran
    step_times: dict[str, tuple[float, float]] = field(default_factory=dict)  # last run of each step
    started: float = 0.0
    finished: float = 0.0

    @property
    def window(self) -> tuple[float, float] | None:
        """From the start of setSecret to the end of finishSecret: where, in single-user
        mode, the database has the new password and AWSCURRENT still holds the old one."""
        if "setSecret" in self.step_times and "finishSecret" in self.step_times:
            return self.step_times["setSecret"][0], self.step_times["finishSecret"][1]
        return None


def drive_rotation(
    invoke: Invoke,
    client: Any,
    arn: str,
    *,
    token: str | None = None,
    stage: bool = True,
    attempts: int = 3,
    retry_pause: float = 0.0,
    before_step: StepHook | None = None,
) -> RotationRecord:
    """One rotation as Secrets Manager runs it: stage AWSPENDING under a token
    (unless ``stage`` is false), run the four steps with that token, and on a
    failure run all four again with the same token, up to ``attempts`` times.
    ``before_step(attempt, step)`` runs before each invocation (fault injection)."""
    if stage:
        token = begin_rotation(client, arn, token)
    assert token, "a token is needed when the rotation is not staged here"
    record = RotationRecord(token, started=time.monotonic())
    for attempt in range(1, attempts + 1):
        record.attempts = attempt
        outcomes: list[str] = []
        record.outcomes.append(outcomes)
        step = STEPS[0]
        try:
            for step in STEPS:
                if before_step is not None:
                    before_step(attempt, step)
                began = time.monotonic()
                result = invoke(event(arn, token, step))
                record.step_times[step] = (began, time.monotonic())
                outcomes.append(str(result.get("outcome")))
        except Exception as exc:  # Secrets Manager retries whatever the function raised
            record.errors.append(f"{step}: {type(exc).__name__}")
            record.exceptions.append(exc)
            if attempt < attempts and retry_pause:
                time.sleep(retry_pause)
            continue
        record.completed = True
        break
    record.finished = time.monotonic()
    return record


# -- harness fidelity ------------------------------------------------------------


@dataclass
class _Fault:
    operation: str
    status: int
    code: str
    applied: bool
    remaining: int


class ServiceFaults:
    """Errors the emulated Secrets Manager answers, as the service would: a throttled
    call is refused before it does anything; a 5xx with ``applied`` does the work and
    loses the answer.

    Injected in the emulator, not with a client ``before-send`` hook: botocore emits
    ``before-send`` to every handler and takes the first response, so in-process moto
    would still apply a call whose answer a client hook replaced.
    """

    def __init__(self) -> None:
        self._faults: list[_Fault] = []
        self.answered: list[str] = []

    def inject(self, operation: str, status: int, code: str, *, applied: bool = False, times: int = 1) -> None:
        self._faults.append(_Fault(operation, status, code, applied, times))

    def _take(self, request: Any) -> _Fault | None:
        raw = request.headers.get("X-Amz-Target") or ""
        target = raw.decode() if isinstance(raw, bytes) else str(raw)
        for fault in self._faults:
            if fault.remaining and target.endswith(f".{fault.operation}"):
                fault.remaining -= 1
                self.answered.append(f"{fault.operation}: {fault.status} {fault.code}")
                return fault
        return None

    def handle(self, request: Any, process: Callable[[], Any]) -> Any:
        fault = self._take(request)
        if fault is None:
            return process()
        if fault.applied:
            process()
        body = json.dumps({"__type": fault.code, "message": "injected fault"})
        return fault.status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "fault"}, body


@contextmanager
def faithful_moto() -> Iterator[ServiceFaults]:
    """Make in-process moto behave like Secrets Manager where the load depends on it,
    and let a test inject service errors (:class:`ServiceFaults`).

    - moto's backends are not thread-safe (UpdateSecretVersionStage removes
      AWSCURRENT from one version before adding it to the other, and readers iterate
      the version dict): every request to the emulator is serialized, as each AWS
      API call is atomic.
    - moto lets a second PutSecretValue overwrite an AWSPENDING version with a
      different value; AWS refuses it with ResourceExistsException.
    """
    from moto.core.botocore_stubber import BotocoreStubber
    from moto.secretsmanager.exceptions import ResourceExistsException
    from moto.secretsmanager.models import SecretsManagerBackend

    lock = threading.RLock()
    faults = ServiceFaults()
    original_process = BotocoreStubber.process_request
    original_check = SecretsManagerBackend._check_with_existing_secrets_and_versions

    def process_request(self: Any, request: Any) -> Any:
        with lock:
            return faults.handle(request, lambda: original_process(self, request))

    def check(
        self: Any,
        secret_name: str,
        client_request_token: str | None,
        secret_string: str | None,
        secret_binary: str | None,
        on_create: bool = False,
    ) -> Any:
        # moto's SecretsStore resolves names and ARNs in __contains__/__getitem__, not in get()
        secret = self.secrets[secret_name] if secret_name in self.secrets else None  # noqa: SIM401
        version = getattr(secret, "versions", {}).get(client_request_token) if client_request_token else None
        if version and "secret_string" in version and version["secret_string"] != secret_string:
            raise ResourceExistsException(
                f"You can't use ClientRequestToken {client_request_token} because that value is already in use "
                "for a version of this secret."
            )
        return original_check(self, secret_name, client_request_token, secret_string, secret_binary, on_create)

    BotocoreStubber.process_request = process_request  # type: ignore[method-assign]
    SecretsManagerBackend._check_with_existing_secrets_and_versions = check  # type: ignore[method-assign]
    try:
        yield faults
    finally:
        BotocoreStubber.process_request = original_process  # type: ignore[method-assign]
        SecretsManagerBackend._check_with_existing_secrets_and_versions = original_check  # type: ignore[method-assign]
