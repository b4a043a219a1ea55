"""Compile, for Lambda's Python, the modules a cold start of either function imports.

Lambda's code directory is read-only, so an artifact without .pyc files makes
every cold start compile Powertools, the X-Ray SDK, PyMySQL (or pg8000) and rotator from
source (about 200 ms, see docs/performance.md). Run by src/Makefile during
`sam build` with a python3.13 that has boto3 (the runtime's own): it imports the
handlers (rotation and readiness check: one artifact serves both) from the
artifact, as the runtime does, and writes unchecked-hash .pyc files for exactly
the modules that import loaded from the artifact, and for those the handler
defers to its first invocation (:data:`FIRST_USE`), so the zip
grows by what a cold start uses and not by every module of every package.
`make bench` lists any module a first rotation still loads without a .pyc.

    python3.13 precompile.py ARTIFACTS_DIR
"""

from __future__ import annotations

import importlib.util
import os
import pkgutil
import py_compile
import sys
from pathlib import Path

LAMBDA_PYTHON = (3, 13)
# Imported on first use rather than with the handler: rotator.idempotency builds the
# Powertools layer on the first invocation, the handler's failure path reads its errors;
# the registry (rotator.backends) imports a database backend, and its driver, on the first
# secret of its engine. Every module of every backend package the artifact ships is
# compiled (:func:`backend_modules`: a new backend, or a new module of one, needs no line
# here); the drivers whose import a backend defers to its first login are listed.
FIRST_USE = (
    "aws_lambda_powertools.utilities.idempotency",
    # rotator.backends.postgresql.connection imports these on the first PostgreSQL login.
    "pg8000.native",
    "pg8000.exceptions",
)
BACKENDS = "rotator.backends"


def backend_modules() -> list[str]:
    """The modules of the backend packages (importing each subpackage to find its own)."""
    package = importlib.import_module(BACKENDS)
    return [info.name for info in pkgutil.walk_packages(package.__path__, f"{BACKENDS}.")]


def main(artifacts: str) -> int:
    if sys.version_info[:2] != LAMBDA_PYTHON:
        print(f"precompile: skipped, needs Python {LAMBDA_PYTHON[0]}.{LAMBDA_PYTHON[1]}", file=sys.stderr)
        return 0
    root = Path(artifacts).resolve()
    sys.dont_write_bytecode = True  # only the files written below may land in the artifact
    sys.path.insert(0, str(root))
    # What Lambda sets: Powertools and the X-Ray SDK take their in-Lambda paths. Tracing
    # on, as the template's default TracingMode=Active, whatever the caller's environment
    # says (the tests and the bench turn it off): it imports the X-Ray SDK's botocore
    # patch on top of everything tracing off imports.
    os.environ.update(
        {
            "LAMBDA_TASK_ROOT": str(root),
            "AWS_LAMBDA_FUNCTION_NAME": "rotator",
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "POWERTOOLS_SERVICE_NAME": "rotator",
            "POWERTOOLS_TRACE_DISABLED": "false",
        }
    )
    for local_marker in ("AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):  # Powertools turns tracing off under these
        os.environ.pop(local_marker, None)
    import rotator.canary  # noqa: PLC0415 - after sys.path points at the artifact
    import rotator.handler  # noqa: F401, PLC0415

    for name in (*FIRST_USE, *backend_modules()):
        importlib.import_module(name)

    compiled = 0
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        if not source or not source.endswith(".py") or not Path(source).resolve().is_relative_to(root):
            continue
        py_compile.compile(
            source,
            cfile=importlib.util.cache_from_source(source),
            # The path relative to the artifact, not this build's scratch directory: both
            # functions' builds then hold the same bytes (import puts the real path back).
            dfile=str(Path(source).resolve().relative_to(root)),
            doraise=True,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        compiled += 1
    print(f"precompile: {compiled} modules compiled for Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
