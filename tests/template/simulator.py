"""Python side of the policy evaluator: requests in, AWS's decision out.

The decisions come from npm ``@cloud-copilot/iam-simulate`` (pinned in
tests/policy-simulator/package.json, installed by ``make policy-simulator``, which
``make test`` runs), not from our own reading of the policies. It evaluates identity,
resource and VPC endpoint policies together, as AWS does for one request. It does
not derive context keys from the principal or the network path: every request here
states them (``aws:PrincipalArn``, ``aws:SourceVpce``, ``aws:ViaAWSService`` ...).
AGPL-3.0: a test tool only, never part of the Lambda artifact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.template.cfn import ROOT

SIMULATOR_DIR = ROOT / "tests" / "policy-simulator"
ALLOWED = "Allowed"
EXPLICIT_DENY = "ExplicitlyDenied"
IMPLICIT_DENY = "ImplicitlyDenied"


@dataclass(frozen=True)
class Case:
    """One request and the policies AWS would evaluate for it."""

    id: str
    principal: str
    action: str
    resource: str
    account: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    identity_policies: Sequence[Mapping[str, Any]] = ()
    resource_policy: Mapping[str, Any] | None = None
    endpoint_policy: Mapping[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "action": self.action,
            "resource": self.resource,
            "account": self.account,
            "context": dict(self.context),
            "identityPolicies": [{"name": f"identity-{n}", "policy": p} for n, p in enumerate(self.identity_policies)],
            "resourcePolicy": self.resource_policy,
            "endpointPolicy": self.endpoint_policy,
        }


@dataclass(frozen=True)
class Outcome:
    decision: str | None
    engine: str | None = None
    errors: Any = None


def simulate(cases: Sequence[Case]) -> dict[str, Outcome]:
    """Every case's decision, in one run of the evaluator."""
    node = shutil.which("node")
    script = SIMULATOR_DIR / "simulate.mjs"
    if node is None or not (SIMULATOR_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
        pytest.fail("the policy evaluator is missing: run `make policy-simulator` (make test does)")
    result = subprocess.run(
        [node, str(script)],
        input=json.dumps([case.as_json() for case in cases]),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=SIMULATOR_DIR,
    )
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout)
    return {item["id"]: Outcome(item["decision"], item.get("engine"), item.get("errors")) for item in outcomes}
