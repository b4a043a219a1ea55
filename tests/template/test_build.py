"""`sam build` (BuildMethod: makefile) makes a small, complete artifact for Lambda's python3.13.

The artifact holds the `rotator` package with its CA bundle and the packages of
src/requirements-lambda.txt, built for the function's architecture; it leaves
out what the python3.13 runtime already provides (boto3 and its dependencies).
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import lock_lambda_requirements as lock_script
from tests.template import cfn
from tests.template.conftest import ROOT, Runner

pytestmark = pytest.mark.slow

REQUIREMENTS = ROOT / "src" / "requirements-lambda.txt"
# What the Lambda python3.13 runtime ships (boto3 and its dependency closure).
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
NEVER_BUNDLED = RUNTIME_PROVIDED - {"jmespath"}  # jmespath is pinned for Powertools' idempotency keys
MAX_ZIPPED = 3 * 1024 * 1024
MAX_UNZIPPED = 12 * 1024 * 1024
TRIPLETS = {"arm64": "aarch64-linux-gnu", "x86_64": "x86_64-linux-gnu"}


_HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")


def locked(text: str) -> dict[str, tuple[str, list[str]]]:
    """Each requirement of a locked file: its pinned version and its --hash options (continuation
    lines joined). AssertionError for an entry that is not an exact pin."""
    found: dict[str, tuple[str, list[str]]] = {}
    for entry in lock_script.entries(text):
        words = entry.split("#", 1)[0].split()
        if not words:
            continue
        requirement, options = words[0], words[1:]
        name, equals, version = requirement.partition("==")
        assert equals and version, f"not an exact pin: {requirement}"
        found[canonicalize_name(name)] = (version, options)
    return found


def unhashed(text: str) -> list[str]:
    """The requirements of a locked file without a sha256 hash, or with anything else beside them."""
    return [
        name
        for name, (_version, options) in locked(text).items()
        if not options or not all(_HASH.match(option) for option in options)
    ]


def pins() -> dict[str, str]:
    return {name: version for name, (version, _hashes) in locked(REQUIREMENTS.read_text()).items()}


def bundled(artifact: Path) -> dict[str, PathDistribution]:
    return {
        canonicalize_name(PathDistribution(d).metadata["Name"]): PathDistribution(d)
        for d in artifact.glob("*.dist-info")
    }


def zipped_size(artifact: Path) -> int:
    """The artifact zipped as `sam deploy` uploads it (deflate)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(artifact.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(artifact))
    return len(buffer.getvalue())


def requirements_of(dist: PathDistribution, extras: set[str], arch: str) -> set[str]:
    environment = {
        "python_version": "3.13",
        "python_full_version": "3.13.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "platform_machine": TRIPLETS[arch].split("-")[0],
    }
    names = set()
    for line in dist.requires or []:
        requirement = Requirement(line)
        wanted = any(
            requirement.marker is None or requirement.marker.evaluate({**environment, "extra": extra})
            for extra in {"", *extras}
        )
        if wanted:
            names.add(canonicalize_name(requirement.name))
    return names


def test_every_pin_is_hashed() -> None:
    """Every requirement of the artifact is an exact pin with SHA-256 hashes only (src/Makefile
    installs with --require-hashes; `make lock-lambda` writes them). The check fails on an
    unhashed line, a hash of another algorithm or a malformed one."""
    text = REQUIREMENTS.read_text()
    assert unhashed(text) == []
    assert set(pins()) >= {"aws-lambda-powertools", "pymysql", "wrapt"}
    # wrapt has compiled code: one wheel, one hash, per platform the build supports.
    assert len(locked(text)["wrapt"][1]) == len(lock_script.PLATFORMS) == 2
    good = "pymysql==1.2.4 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert unhashed(good) == []
    assert unhashed(good + "jmespath==1.1.0\n") == ["jmespath"]
    assert unhashed("pymysql==1.2.4 --hash=md5:0123\n") == ["pymysql"]
    assert unhashed("pymysql==1.2.4 --hash=sha256:abc\n") == ["pymysql"]
    with pytest.raises(AssertionError, match="not an exact pin"):
        locked("pymysql>=1.2\n")


def test_the_build_installs_with_hashes_required() -> None:
    """src/Makefile's pip install requires hashes (an unhashed or unknown wheel fails the build)."""
    recipe = (ROOT / "src" / "Makefile").read_text()
    assert re.search(
        r"pip install [^\n]*--require-hashes[^\n]*\\\n(?:[^\n]*\\\n)*[^\n]*-r requirements-lambda\.txt", recipe
    )


def test_a_wheel_whose_hash_is_not_listed_is_refused(tmp_path: Path) -> None:
    """What --require-hashes buys, shown with pip itself on a local wheel: listed, it installs;
    with another hash, pip refuses it (no network: --no-index, the wheel is a local file)."""
    wheel = tmp_path / "rotator_lock_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("rotator_lock_probe/__init__.py", "")
        info = "rotator_lock_probe-1.0.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: rotator-lock-probe\nVersion: 1.0\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()

    def install(hash_value: str) -> subprocess.CompletedProcess[str]:
        requirements = tmp_path / "requirements.txt"
        requirements.write_text(f"rotator-lock-probe==1.0 --hash=sha256:{hash_value}\n")
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-index",
            "--find-links",
            str(tmp_path),
            "--require-hashes",
            "--no-deps",
            "--target",
            str(tmp_path / "target"),
            "-r",
            str(requirements),
        ]
        return subprocess.run(command, capture_output=True, text=True, check=False)  # fmt: skip

    refused = install("1" * 64)
    assert refused.returncode != 0 and "THESE PACKAGES DO NOT MATCH THE HASHES" in refused.stdout + refused.stderr
    accepted = install(digest)
    assert accepted.returncode == 0, accepted.stderr


@pytest.fixture(scope="module")
def artifact(sam_build: Callable[[str], Path]) -> Path:
    return sam_build("arm64")


def test_artifact_holds_the_rotator_package_and_its_ca_bundle(artifact: Path) -> None:
    """Every file of src/rotator is in the artifact, byte for byte (besides the compiled modules)."""
    source = ROOT / "src" / "rotator"
    expected = {p.relative_to(source) for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    shipped = {
        p.relative_to(artifact / "rotator")
        for p in (artifact / "rotator").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == expected
    assert Path("handler.py") in shipped
    bundle = Path("certs") / "rds-ca-bundle.pem"
    assert (artifact / "rotator" / bundle).read_bytes() == (source / bundle).read_bytes()
    assert b"BEGIN CERTIFICATE" in (artifact / "rotator" / bundle).read_bytes()
    assert not (artifact / "bin").exists()


def test_cold_start_modules_are_precompiled_for_python_313(artifact: Path) -> None:
    """The modules a cold start imports, with the handler or on its first invocation, ship as
    unchecked-hash .pyc for CPython 3.13 (Lambda's code directory is read-only, so anything else
    would be compiled at every cold start)."""
    compiled = list(artifact.rglob("*.pyc"))
    assert all(p.name.endswith(".cpython-313.pyc") for p in compiled), "a .pyc for another Python"
    names = {f"{p.parent.parent.relative_to(artifact)}/{p.name.split('.')[0]}" for p in compiled}
    assert {
        "rotator/handler",
        "rotator/canary",
        "rotator/rotation",
        "rotator/backends/mysql/base",
        "pymysql/connections",
    } <= names
    # Deferred to the first invocation by the handler, compiled all the same.
    assert "aws_lambda_powertools/utilities/idempotency/persistence/dynamodb" in names
    # Every module of every backend, and the PostgreSQL driver its first login imports
    # (pg8000 with SCRAM and its channel binding): a PostgreSQL cold start compiles nothing.
    backends = artifact / "rotator" / "backends"
    shipped = {f"{p.parent.relative_to(artifact)}/{p.stem}" for p in backends.rglob("*.py")}
    assert "rotator/backends/postgresql/connection" in shipped
    assert shipped <= names, f"backend modules without a .pyc: {sorted(shipped - names)}"
    assert {"pg8000/native", "pg8000/core", "pg8000/exceptions", "scramp/core", "asn1crypto/x509"} <= names
    # Imported only with tracing Active (the template's default), whatever the build's environment.
    assert "aws_xray_sdk/ext/botocore/patch" in names
    # Flags word 0b01 = hash-based, check_source off: valid whatever the zip does to mtimes.
    handler = next(p for p in compiled if p.name.startswith("handler."))
    assert int.from_bytes(handler.read_bytes()[4:8], "little") == 0b01
    assert len(compiled) < 400, "only what a cold start imports, not every module bundled"


def test_artifact_bundles_exactly_the_pinned_packages(artifact: Path) -> None:
    """The artifact holds the pinned versions of requirements-lambda.txt and none of boto3's closure."""
    shipped = {name: dist.version for name, dist in bundled(artifact).items()}
    assert shipped == pins()
    assert not set(shipped) & NEVER_BUNDLED
    top_level = {p.name for p in artifact.iterdir()}
    assert not {"boto3", "botocore", "s3transfer", "urllib3", "dateutil"} & top_level


def test_bundled_packages_need_nothing_the_runtime_lacks(artifact: Path) -> None:
    """Walking the requirements from the function's own (pyproject: Powertools with its tracer
    extra, PyMySQL, boto3) reaches every bundled package, and nothing beyond bundled + runtime."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = {canonicalize_name(Requirement(r).name): set(Requirement(r).extras) for r in project["dependencies"]}
    roots[canonicalize_name("aws-lambda-powertools")] |= {"tracer"}  # the handler runs Tracer
    dists = bundled(artifact)
    reached: set[str] = set()
    pending = list(roots.items())
    while pending:
        name, extras = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        if name in RUNTIME_PROVIDED and name not in dists:
            continue
        assert name in dists, f"{name} is required but neither bundled nor provided by the runtime"
        pending += [(needed, set()) for needed in requirements_of(dists[name], extras, "arm64")]
    assert set(dists) <= reached, f"bundled but not needed: {set(dists) - reached}"


def test_pins_satisfy_pyproject(artifact: Path) -> None:
    """Each pinned version is inside the range pyproject.toml declares for it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]
    pinned = pins()
    checked = set()
    for requirement in declared:
        name = canonicalize_name(requirement.name)
        if name in pinned:
            assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]} outside {requirement}"
            checked.add(name)
    assert {"aws-lambda-powertools", "pymysql"} <= checked


def test_artifact_is_small(artifact: Path) -> None:
    """The artifact stays under 3 MB zipped (12 MB unzipped)."""
    unzipped = sum(p.stat().st_size for p in artifact.rglob("*") if p.is_file())
    zipped = zipped_size(artifact)
    assert zipped <= MAX_ZIPPED, f"{zipped} bytes zipped"
    assert unzipped <= MAX_UNZIPPED, f"{unzipped} bytes unzipped"
    largest = max((p for p in artifact.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    assert largest.stat().st_size < 1024 * 1024, f"{largest} is {largest.stat().st_size} bytes"


@pytest.mark.parametrize("arch", ["arm64", "x86_64"])
def test_compiled_code_matches_the_architecture(sam_build: Callable[[str], Path], arch: str) -> None:
    """Extension modules are CPython 3.13 builds for the function's architecture (wrapt's, today)."""
    extensions = list(sam_build(arch).rglob("*.so"))
    assert extensions, "expected wrapt's C extension"
    for extension in extensions:
        assert re.search(rf"\.cpython-313-{TRIPLETS[arch]}\.so$", extension.name), extension


def test_built_template_points_at_the_artifact(artifact: Path) -> None:
    """The built template runs each handler from its artifact and still leaves Fn::ForEach to CloudFormation."""
    built = cfn.load(artifact.parent / "template.yaml")
    function = built["Resources"]["RotationFunction"]["Properties"]
    assert function["CodeUri"] == "RotationFunction"
    assert function["Handler"] == "rotator.handler.lambda_handler"
    canary = built["Resources"]["CanaryFunction"]["Properties"]
    assert (canary["CodeUri"], canary["Handler"]) == ("CanaryFunction", "rotator.canary.lambda_handler")
    assert "Fn::ForEach::AttachedSecrets" in built["Resources"]


def test_both_functions_are_one_artifact(artifact: Path) -> None:
    """The readiness check's build holds the same files, byte for byte, as the rotation function's
    (.pyc included): SAM names the uploaded object by the content's checksum, so it is uploaded once."""

    def contents(root: Path) -> dict[str, str]:
        return {
            str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in root.rglob("*")
            if path.is_file()
        }

    canary = contents(artifact.parent / "CanaryFunction")
    assert canary == contents(artifact)
    assert "rotator/canary.py" in canary


def test_build_refuses_an_unknown_architecture(sam: Path, run_tool: Runner, tmp_path: Path) -> None:
    """src/Makefile stops with a clear message instead of guessing the platform."""
    result = run_tool([sam, "build", "--build-dir", tmp_path / "build"], env={"ROTATOR_ARCH": "sparc"})
    assert result.returncode != 0
    assert "ROTATOR_ARCH must be arm64 or x86_64" in result.stdout + result.stderr
