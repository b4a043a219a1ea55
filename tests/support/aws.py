"""Secrets Manager as the rotation sees it, emulated by moto, driven like AWS drives it.

moto's ``rotate_secret`` stages an empty AWSPENDING version and turns rotation on,
then tries to invoke the function through moto's Lambda (which needs Docker). We
point it at a function that does not exist, accept the resulting
ResourceNotFoundException, and run the four steps ourselves, in-process.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

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
