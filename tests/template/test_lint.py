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


RENDERINGS = {"everything": EVERYTHING, "private-dns": PRIVATE_DNS, "reused-endpoint": REUSED_ENDPOINT}


@pytest.fixture(scope="module")
def checkov_reports(
    run_tool: Runner, template: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """checkov's report on template.yaml and on each rendering, from one checkov process
    (each file is scanned on its own; one process instead of four saves ~10 s of start-up)."""
    directory = tmp_path_factory.mktemp("checkov")
    targets = {"template.yaml": cfn.TEMPLATE_PATH}
    for name, overrides in RENDERINGS.items():
        targets[name] = directory / f"{name}.json"
        targets[name].write_text(json.dumps(cfn.render(template, overrides).as_template(), indent=1))
    binary = tool(CHECKOV_VENV / "bin" / "checkov", "checkov-venv")
    files = [argument for target in targets.values() for argument in ("--file", target)]
    result = run_tool([binary, *files, "--framework", "cloudformation", "--skip-download", "--output", "json"])
    assert result.returncode in (0, 1), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return {name: checkov_report_of(report, target) for name, target in targets.items()}


def checkov_report_of(report: dict[str, Any], target: Path) -> dict[str, Any]:
    """The part of a report of several files that is about ``target``, shaped like a report of one."""

    def about(check: dict[str, Any]) -> bool:
        return (cfn.ROOT / check["file_abs_path"]).resolve() == target.resolve()

    results = {
        kind: [c for c in report["results"][kind] if about(c)]
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
    }
    return {"results": results, "summary": {"passed": len(results["passed_checks"])}}


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


def test_checkov_template(checkov_reports: dict[str, dict[str, Any]], template: dict[str, Any]) -> None:
    """checkov finds no failure in template.yaml; what it skips is what the template's Metadata skips, with reasons."""
    passed, failed, skipped = summary(checkov_reports["template.yaml"])
    assert failed == []
    assert passed > 20
    assert {check for check, _ in skipped} == declared_skips(template)


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_checkov_rendered(checkov_reports: dict[str, dict[str, Any]], template: dict[str, Any], rendering: str) -> None:
    """checkov finds no failure in the template as rendered for a concrete deployment either."""
    passed, failed, skipped = summary(checkov_reports[rendering])
    assert failed == []
    assert passed > 20
    assert {check for check, _ in skipped} <= declared_skips(template)
