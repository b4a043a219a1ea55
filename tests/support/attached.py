"""A secret attached to a rotation function the way ``rotator attach`` leaves it without
rotating at once, emulated by moto."""

from __future__ import annotations

import contextlib
from typing import Any


def attach_without_rotating(client: Any, arn: str, function_arn: str, days: int = 30) -> None:
    """Turn rotation on as ``RotateSecret(RotateImmediately=False)`` does: Secrets Manager stages a
    pending copy, runs testSecret on it and drops the label. moto cannot run the function (it
    refuses to invoke one it does not have, with rotation on and the copy staged), so the label
    is dropped here."""
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.rotate_secret(
            SecretId=arn,
            RotationLambdaARN=function_arn,
            RotationRules={"AutomaticallyAfterDays": days},
            RotateImmediately=False,
        )
    for version, labels in client.describe_secret(SecretId=arn)["VersionIdsToStages"].items():
        if labels == ["AWSPENDING"]:
            client.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=version)
