"""The template passes `sam validate --lint`, cfn-lint and checkov.

checkov does not look inside Fn::ForEach and reads conditional values loosely,
so it also scans the template as rendered for concrete parameter sets (every
option on; a reused endpoint): every resource and value those deploy is scanned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.template import cfn
from tests.template.conftest import CHECKOV_VENV, EVERYTHING, PRIVATE_DNS, REUSED_ENDPOINT, SAM_VENV, Runner, tool

pytestmark = pytest.mark.slow


def test_sam_validate_lint(sam: Path, run_tool: Runner) -> None:
    """`sam validate --lint` (samconfig's validate settings) accepts the template."""
    result = run_tool([sam, "validate", "--lint"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_cfn_lint(run_tool: Runner) -> None:
    """cfn-lint, the same version SAM uses, reports nothing (warnings included)."""
    result = run_tool([tool(SAM_VENV / "bin" / "cfn-lint", "sam-venv"), "template.yaml"])
    assert result.returncode == 0, result.stdout + result.stderr


def checkov(run_tool: Runner, target: Path) -> dict[str, Any]:
    binary = tool(CHECKOV_VENV / "bin" / "checkov", "checkov-venv")
    result = run_tool(
        [binary, "--file", target, "--framework", "cloudformation", "--skip-download", "--output", "json"]
    )
    assert result.returncode in (0, 1), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def summary(report: dict[str, Any]) -> tuple[int, list[str], set[tuple[str, str]]]:
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    skipped = {(c["check_id"], c["resource"]) for c in report["results"]["skipped_checks"]}
    return int(report["summary"]["passed"]), failed, skipped


def declared_skips(template: dict[str, Any]) -> set[str]:
    return {
        skip["id"]
        for resource in template["Resources"].values()
        if isinstance(resource, dict)
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }


def test_checkov_template(run_tool: Runner, template: dict[str, Any]) -> None:
    """checkov finds no failure in template.yaml; what it skips is what the template's Metadata skips, with reasons."""
    passed, failed, skipped = summary(checkov(run_tool, cfn.TEMPLATE_PATH))
    assert failed == []
    assert passed > 20
    assert {check for check, _ in skipped} == declared_skips(template)


@pytest.mark.parametrize(
    "overrides", [EVERYTHING, PRIVATE_DNS, REUSED_ENDPOINT], ids=["everything", "private-dns", "reused-endpoint"]
)
def test_checkov_rendered(
    run_tool: Runner, template: dict[str, Any], tmp_path: Path, overrides: dict[str, str]
) -> None:
    """checkov finds no failure in the template as rendered for a concrete deployment either."""
    rendered = cfn.render(template, overrides)
    target = tmp_path / "rendered.json"
    target.write_text(json.dumps(rendered.as_template(), indent=1))
    passed, failed, skipped = summary(checkov(run_tool, target))
    assert failed == []
    assert passed > 20
    assert {check for check, _ in skipped} <= declared_skips(template)
