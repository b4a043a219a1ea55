"""Section package: zipped and unzipped size of the ``sam build`` artifact."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ARTIFACT, REPO, RESULTS
from bench.report import Table


def makefile_has_build() -> bool:
    makefile = REPO / "Makefile"
    return makefile.exists() and re.search(r"^build:", makefile.read_text(), re.MULTILINE) is not None


def build_artifact(rebuild: bool) -> tuple[Path, str]:
    """The sam build artifact: `make build` when the Makefile has it, else the same pip install by hand."""
    if makefile_has_build():
        if rebuild or not ARTIFACT.exists():
            subprocess.run(["make", "build"], cwd=REPO, check=True, capture_output=True, timeout=900)
        return ARTIFACT, "make build (sam build, BuildMethod: makefile)"
    # Without `make build`: the recipe sam build runs (src/Makefile, BuildMethod: makefile),
    # run by hand into a directory of ours. It only reads src/.
    target = RESULTS / "artifact"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    subprocess.run(
        [
            "make",
            "-C",
            str(REPO / "src"),
            "build-RotationFunction",
            f"ARTIFACTS_DIR={target}",
            f"PYTHON={sys.executable}",
        ],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return target, "make -C src build-RotationFunction (the recipe of sam build; arm64), run by the bench without SAM"


def run_section(rebuild: bool) -> dict[str, Any]:
    directory, method = build_artifact(rebuild)
    files = [p for p in directory.rglob("*") if p.is_file()]
    unzipped = sum(p.stat().st_size for p in files)
    by_top: Counter[str] = Counter()
    for p in files:
        by_top[p.relative_to(directory).parts[0]] += p.stat().st_size
    with tempfile.TemporaryDirectory(prefix="rotator-zip-") as tmp:
        archive = Path(tmp) / "function.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(files):
                zf.write(p, p.relative_to(directory))
        zipped = archive.stat().st_size
    compiled = sorted(str(p.relative_to(directory)) for p in files if p.suffix in {".so", ".pyd"})
    return {
        "method": method,
        "directory": str(directory.relative_to(REPO)) if directory.is_relative_to(REPO) else str(directory),
        "files": len(files),
        "unzipped_bytes": unzipped,
        "zipped_bytes": zipped,
        "largest": dict(by_top.most_common(8)),
        "compiled_extensions": compiled,
        "pyc_files": sum(1 for p in files if p.suffix == ".pyc"),
    }


def tables(report: dict[str, Any]) -> list[Table]:
    package = report.get("package")
    if not package:
        return []
    table = Table("package: the sam build artifact", ["figure", "value"])
    table.add("built by", package["method"])
    table.add("zipped", f"{package['zipped_bytes'] / 1e6:.2f} MB ({package['zipped_bytes']:,} bytes)")
    table.add("unzipped", f"{package['unzipped_bytes'] / 1e6:.2f} MB in {package['files']} files")
    table.add(
        "largest parts (unzipped)", ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in list(package["largest"].items())[:5])
    )
    table.add("compiled extensions", ", ".join(package["compiled_extensions"]) or "none")
    return [table]
