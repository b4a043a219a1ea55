"""Write the hashes of every wheel the Lambda build installs into src/requirements-lambda.txt.

src/Makefile installs the artifact's packages with ``pip install --require-hashes``: pip
refuses a file whose SHA-256 is not listed for its requirement, and a requirement without
hashes. The build supports two platforms (``manylinux2014_aarch64``, ``manylinux2014_x86_64``;
CPython 3.13, wheels only), so each pin lists the hash of the wheel pip picks for each:
one hash for a pure-Python wheel (the same file on both), two for a package with
compiled code (wrapt).

To change a version: edit its ``name==version`` line (its old hashes are then stale),
run ``make lock-lambda`` (this script), review the diff (new files, new hashes) and
commit it. The wheels are fetched with ``pip download --isolated``: from pip's default
index (PyPI), ignoring this machine's pip configuration (local mirrors, find-links), so
that the hashes are those of the files every machine's build gets. Comments are kept.

Usage:  python scripts/lock_lambda_requirements.py [src/requirements-lambda.txt]
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent.parent / "src" / "requirements-lambda.txt"
# What src/Makefile builds for (its PLATFORM_* and --python-version).
PLATFORMS = ("manylinux2014_aarch64", "manylinux2014_x86_64")
PYTHON_VERSION = "3.13"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def entries(text: str) -> list[str]:
    """The file's logical lines: continuation lines (``\\``) joined, comments and blanks kept."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return joined


def pin_of(entry: str) -> tuple[str, str] | None:
    """``(name, version)`` of a requirement entry (its options dropped); None for a comment or blank."""
    requirement = entry.split("#", 1)[0].split(" --", 1)[0].strip()
    if not requirement:
        return None
    match = _PIN.match(requirement)
    if match is None:
        raise SystemExit(f"not an exact pin (name==version): {requirement!r}")
    return match[1], match[2]


def wheel_hashes(name: str, version: str) -> list[str]:
    """SHA-256 of the wheel pip picks for ``name==version`` on each build platform."""
    found: set[str] = set()
    for platform in PLATFORMS:
        with tempfile.TemporaryDirectory() as directory:
            subprocess.run(
                [
                    sys.executable, "-m", "pip", "download", "--isolated", "--quiet", "--no-deps",
                    "--only-binary=:all:", "--platform", platform, "--implementation", "cp",
                    "--python-version", PYTHON_VERSION, "--dest", directory, f"{name}=={version}",
                ],
                check=True,
            )  # fmt: skip
            (wheel,) = Path(directory).glob("*.whl")
            found.add(hashlib.sha256(wheel.read_bytes()).hexdigest())
            print(f"  {platform}: {wheel.name}")
    return sorted(found)


def lock(text: str) -> str:
    lines: list[str] = []
    for entry in entries(text):
        pin = pin_of(entry)
        if pin is None:
            lines.append(entry.rstrip())
            continue
        name, version = pin
        print(f"{name}=={version}")
        options = [f"--hash=sha256:{digest}" for digest in wheel_hashes(name, version)]
        lines.append(" \\\n    ".join([f"{name}=={version}", *options]))
    return "\n".join(lines) + "\n"


def main(path: str | None = None) -> None:
    target = Path(path) if path else REQUIREMENTS
    target.write_text(lock(target.read_text()))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
