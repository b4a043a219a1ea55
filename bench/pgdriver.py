"""Which PostgreSQL driver rotator's backend uses: pg8000 (pure Python) against psycopg 3
(``psycopg[binary]``: libpq and OpenSSL in a manylinux wheel), measured the way the
function would ship and run them (docs/postgresql.md, "Driver").

    python -m bench.pgdriver                       # everything, ~2 minutes
    python -m bench.pgdriver --rounds 5 --logins 5 # a quick look

1. **artifact**: the wheels the driver adds to the Lambda zip, as src/Makefile installs
   them (``pip --platform … --python-version 3.13 --only-binary=:all:``) for arm64 and
   x86_64: the closure of its requirements under the *target's* markers, minus what the
   python3.13 runtime provides (boto3's closure, python-dateutil) and what the artifact
   already bundles (src/requirements-lambda.txt); zipped and unzipped, with the .pyc
   files of the modules an import loads (as src/precompile.py ships them), and licenses.
2. **import**: CPU milliseconds of importing the driver on top of boto3 in fresh Python
   3.13 interpreters (the Lambda runtime's stand-in, .venv-runtime), interleaved rounds,
   with the x86_64 wheels and their .pyc first on sys.path: bench/sections/cold.py's
   method. PyMySQL, today's driver, is measured alike for scale.
3. **behaviour**: bench/pgdriver_probe.py, per driver and per server (private PostgreSQL
   15 and 18, tests/support/postgresql.py): verify-full TLS, a wrong CA or host name, a
   server without TLS (what each driver does when told to verify, and when told
   nothing), SCRAM-SHA-256 and channel binding, the SQLSTATEs a rotation must tell apart
   (28P01, 28000, 42501, 3D000), parameter binding, identifier quoting, and what a
   verified login costs with the run's CA and with the RDS CA bundle rotator ships.

Nothing leaves 127.0.0.1 but pip's downloads from the package index. Results also go to
bench/results/pgdriver.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bench.common import REPO, RESULTS, load, spread
from bench.report import Table, fmt_spread
from bench.sections.cold import interleaved, runtime_python, time_import

WORK = RESULTS / "pgdriver"
RUNTIME_PROVIDED = frozenset(
    canonicalize_name(n) for n in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")
)


@dataclass(frozen=True)
class Candidate:
    name: str
    requirement: str  # what pyproject / requirements-lambda.txt would name
    imports: str  # what the backend would import


CANDIDATES = (
    Candidate("pg8000", "pg8000", "pg8000.dbapi"),
    Candidate("psycopg", "psycopg[binary]", "psycopg"),
)
REFERENCE = Candidate("pymysql (today)", "pymysql", "pymysql")

# (label, pip --platform values, environment markers' platform_machine)
PLATFORMS = (
    ("arm64, manylinux2014 (src/Makefile today)", ("manylinux2014_aarch64",), "aarch64"),
    ("arm64, + manylinux_2_28", ("manylinux_2_28_aarch64", "manylinux2014_aarch64"), "aarch64"),
    ("x86_64, manylinux2014", ("manylinux2014_x86_64",), "x86_64"),
)
HOSTILE_IDENTIFIERS = ("app", "App", 'a"b', "a b", "ünï", "x; DROP ROLE app; --", "a%sb")


def pip() -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]


def bundled_names() -> set[str]:
    pins = (REPO / "src" / "requirements-lambda.txt").read_text().splitlines()
    return {canonicalize_name(Requirement(line).name) for line in pins if line.strip() and not line.startswith("#")}


def target_env(machine: str) -> dict[str, str]:
    """Environment markers as Lambda's python3.13 evaluates them."""
    return {
        "python_version": "3.13",
        "python_full_version": "3.13.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": machine,
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def wheel_metadata(wheel: Path) -> tuple[str, str, list[str], str]:
    """(name, version, Requires-Dist lines, license) of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(meta).decode()
    headers: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        if ": " in line:
            key, value = line.split(": ", 1)
            headers.setdefault(key, []).append(value)
    license_ = (headers.get("License-Expression") or headers.get("License") or ["?"])[0]
    return headers["Name"][0], headers["Version"][0], headers.get("Requires-Dist", []), license_


def closure(candidate: Candidate, wheels: dict[str, Path], machine: str) -> list[str]:
    """The distributions the artifact would gain: the requirement's closure under the
    target's markers, minus the runtime's and the artifact's own."""
    env = target_env(machine)
    top = Requirement(candidate.requirement)
    pending: list[tuple[str, set[str]]] = [(canonicalize_name(top.name), set(top.extras))]
    needed: list[str] = []
    seen: set[str] = set()
    # The reference (PyMySQL) is bundled already: counted whole, as if it were new.
    skip = RUNTIME_PROVIDED | (set() if candidate is REFERENCE else bundled_names())
    while pending:
        name, extras = pending.pop()
        if name in seen or name in skip:
            continue
        seen.add(name)
        needed.append(name)
        for line in wheel_metadata(wheels[name])[2]:
            requirement = Requirement(line)
            marker: Marker | None = requirement.marker
            if marker is None or any(marker.evaluate({**env, "extra": extra}) for extra in extras or {""}):
                pending.append((canonicalize_name(requirement.name), set(requirement.extras)))
    return needed


def download(candidate: Candidate, platforms: tuple[str, ...], into: Path) -> dict[str, Path]:
    """The wheels pip picks for the target (with every dependency pip's own resolver finds)."""
    into.mkdir(parents=True, exist_ok=True)
    flags = [f"--platform={p}" for p in platforms]
    subprocess.run(
        [*pip(), "download", "--only-binary=:all:", *flags, "--implementation=cp", "--python-version=3.13",
         "-d", str(into), candidate.requirement],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return {canonicalize_name(wheel_metadata(w)[0]): w for w in into.glob("*.whl")}


def install(wheels: list[Path], into: Path) -> None:
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(into)


COMPILE = (
    "import importlib.util, py_compile, sys\n"
    "root = sys.argv[1]\n"
    "sys.path.insert(0, root)\n"
    "for name in sys.argv[2].split(','):\n"
    "    __import__(name)\n"
    "for module in list(sys.modules.values()):\n"
    "    path = getattr(module, '__file__', None) or ''\n"
    "    if path.startswith(root) and path.endswith('.py'):\n"
    "        py_compile.compile(path, cfile=importlib.util.cache_from_source(path), doraise=True,\n"
    "                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
)


def precompile(python: Path, root: Path, modules: str) -> None:
    """.pyc for exactly the modules an import loads, as src/precompile.py does for rotator."""
    subprocess.run([str(python), "-s", "-c", COMPILE, str(root), modules], check=True, env=clean_env())


def zipped_size(root: Path) -> tuple[int, int, int]:
    """(zipped, unzipped, files) of a directory, deflated as sam package zips it."""
    files = [p for p in root.rglob("*") if p.is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "a.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(files):
                zf.write(p, p.relative_to(root))
        return archive.stat().st_size, sum(p.stat().st_size for p in files), len(files)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and not k.startswith("AWS_")}


# -- 1. artifact ------------------------------------------------------------------------


def measure_artifact(python: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for candidate in (*CANDIDATES, REFERENCE):
        per_platform: dict[str, Any] = {}
        for label, platforms, machine in PLATFORMS:
            key = f"{candidate.imports.split('.')[0]}-{platforms[0]}"
            wheels = download(candidate, platforms, WORK / "wheels" / key)
            needed = closure(candidate, wheels, machine)
            root = WORK / "site" / key
            install([wheels[name] for name in needed], root)
            zipped, unzipped, files = zipped_size(root)
            distributions = {}
            for name in needed:
                _, version, _, license_ = wheel_metadata(wheels[name])
                distributions[name] = {"version": version, "license": license_, "wheel": wheels[name].name}
            entry: dict[str, Any] = {
                "distributions": distributions,
                "zipped_bytes": zipped,
                "unzipped_bytes": unzipped,
                "files": files,
            }
            if python is not None and machine == "x86_64":
                precompile(python, root, candidate.imports)
                entry["zipped_with_pyc_bytes"] = zipped_size(root)[0]
                entry["site"] = str(root)
            per_platform[label] = entry
        results[candidate.name] = per_platform
    return results


# -- 2. import --------------------------------------------------------------------------


def measure_import(python: Path, artifact: dict[str, Any], rounds: int) -> dict[str, Any]:
    x86 = PLATFORMS[2][0]
    env = clean_env()

    def variant(modules: str, root: str) -> Callable[[], tuple[float, float]]:
        return lambda: time_import(modules, env, python, root)

    empty = str(WORK / "site" / "empty")
    Path(empty).mkdir(parents=True, exist_ok=True)
    variants = {"boto3 (baseline)": variant("boto3", empty)}
    for candidate in (*CANDIDATES, REFERENCE):
        variants[f"boto3 + {candidate.name}"] = variant(
            f"boto3,{candidate.imports}", artifact[candidate.name][x86]["site"]
        )
    samples = interleaved(variants, rounds)
    base = samples["boto3 (baseline)"]
    version = subprocess.run([str(python), "-V"], capture_output=True, text=True, check=True).stdout.strip()
    result: dict[str, Any] = {"python": version, "importtime": {}}
    for candidate in (*CANDIDATES, REFERENCE):
        site = artifact[candidate.name][x86]["site"]
        runs = [importtime(python, site, candidate.imports, env) for _ in range(max(3, rounds // 3))]
        result["importtime"][f"boto3 + {candidate.name}"] = {
            "self_ms": spread([sum(r.values()) for r in runs]),
            "by_package_ms": runs[-1],
        }
    for name, values in samples.items():
        result[name] = {
            "cpu": spread([c for _, c in values]),
            "wall": spread([w for w, _ in values]),
            "added_cpu_per_round": spread([c - b for (_, c), (_, b) in zip(values, base, strict=True)]),
        }
    return result


def importtime(python: Path, site: str, module: str, env: dict[str, str]) -> dict[str, float]:
    """``-X importtime`` self times of what importing ``module`` after boto3 loads, by
    top-level package: less sensitive to the machine's load than a stopwatch (it adds its
    own overhead to every figure alike)."""
    code = f"import sys; sys.path.insert(0, {site!r}); import boto3; import {module}"
    done = subprocess.run(
        [str(python), "-s", "-B", "-X", "importtime", "-c", code], env=env, capture_output=True, text=True, check=True
    )
    rows = []
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if match:
            rows.append((int(match[1]), len(match[3]) // 2, match[4]))
    start = max(index for index, (_, depth, name) in enumerate(rows) if name == "boto3" and depth == 0)
    by_package: dict[str, float] = {}
    for self_us, _, name in rows[start + 1 :]:
        top = name.split(".")[0]
        by_package[top] = by_package.get(top, 0.0) + self_us / 1000
    return {name: round(ms, 1) for name, ms in sorted(by_package.items(), key=lambda item: -item[1])[:8]}


# -- 3. behaviour -----------------------------------------------------------------------


def measure_behaviour(python: Path, artifact: dict[str, Any], logins: int) -> dict[str, Any]:
    from tests.support.postgresql import MAJORS, PostgreSQLServer, password_literal
    from tests.support.servers import make_pki
    from tests.support.world import new_password

    x86 = PLATFORMS[2][0]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rotator-pgdriver-") as tmp:
        scratch = Path(tmp)
        other_ca = make_pki(scratch / "other", common_name="another CA").ca_file
        for major in MAJORS:
            with (
                PostgreSQLServer(scratch / f"tls{major}", major=major) as tls,
                PostgreSQLServer(scratch / f"plain{major}", major=major, tls=False) as plain,
            ):
                bundle = scratch / f"bundle{major}.pem"
                bundle.write_text(
                    (REPO / "src/rotator/certs/rds-ca-bundle.pem").read_text() + tls.pki.ca_file.read_text()
                )
                password, nologin_password = new_password(), new_password()
                for server in (tls, plain):
                    server.sql(f"CREATE ROLE app LOGIN PASSWORD {password_literal(password)}")
                    server.sql(f"CREATE ROLE nologin NOLOGIN PASSWORD {password_literal(nologin_password)}")
                config = {
                    "tls_server": {"host": tls.host, "port": tls.port, "ca": str(tls.pki.ca_file)},
                    "plain_server": {"host": plain.host, "port": plain.port, "ca": str(tls.pki.ca_file)},
                    "other_ca": str(other_ca),
                    "bundle": str(bundle),
                    "app": "app",
                    "password": password,
                    "nologin_password": nologin_password,
                    "identifiers": list(HOSTILE_IDENTIFIERS),
                    "logins": logins,
                }
                version = tls.version
                for candidate in CANDIDATES:
                    site = artifact[candidate.name][x86]["site"]
                    done = subprocess.run(
                        [str(python), "-s", "-B", "-c",
                         f"import sys; sys.path[:0] = [{site!r}, {str(REPO / 'bench')!r}]; "
                         "import pgdriver_probe; sys.exit(pgdriver_probe.main())",
                         candidate.name, json.dumps(config)],
                        capture_output=True, text=True, env=clean_env(), timeout=300, check=False,
                    )  # fmt: skip
                    if done.returncode != 0:
                        raise RuntimeError(f"probe {candidate.name} failed:\n{done.stderr[-3000:]}")
                    output = done.stdout + done.stderr
                    if password in output or nologin_password in output:
                        raise RuntimeError(f"the {candidate.name} probe printed a password")
                    results.setdefault(f"PostgreSQL {version}", {})[candidate.name] = json.loads(done.stdout)
    return results


# -- report -----------------------------------------------------------------------------


def kb(n: int) -> str:
    return f"{n / 1000:.0f} kB"


def outcome(entry: dict[str, Any]) -> str:
    if entry["ok"]:
        value = entry["value"]
        if isinstance(value, dict) and "tls" in value:
            return f"connected, TLS {'on (' + value['version'] + ')' if value['tls'] else 'OFF'}, {value['mechanism']}"
        return f"ok: {value}"[:90]
    state = f" [{entry['sqlstate']}]" if entry["sqlstate"] else " [no SQLSTATE]"
    leak = " PASSWORD IN MESSAGE" if entry["password_in_message"] else ""
    if entry["password_in_attributes"]:
        leak += f" password in exc.{'/'.join(entry['password_in_attributes'])}"
    return f"{entry['error'].rsplit('.', 1)[-1]}{state}: {condensed(entry['message'])}{leak}"


def condensed(message: str) -> str:
    """The server's or the library's own words, without the connection preamble."""
    text = re.sub(r"^connection failed: connection to server at \S+, port \d+ failed: ", "", message)
    text = re.sub(r"^\{'S': '\w+', 'V': '\w+', 'C': '\w+', 'M': '([^']*)'.*", r"\1", text)
    return " ".join(text.split())[:80]


def tables(report: dict[str, Any]) -> list[Table]:
    out = []
    artifact = Table(
        "artifact: what the driver adds to the Lambda zip",
        ["driver", "platform", "zipped", "unzipped", "distributions"],
    )
    for name, per_platform in report["artifact"].items():
        for label, entry in per_platform.items():
            dists = ", ".join(f"{d} {v['version']} ({v['license']})" for d, v in entry["distributions"].items())
            zipped = kb(entry["zipped_bytes"])
            if "zipped_with_pyc_bytes" in entry:
                zipped += f" ({kb(entry['zipped_with_pyc_bytes'])} with .pyc)"
            out_label = label
            artifact.add(name, out_label, zipped, kb(entry["unzipped_bytes"]), dists)
    out.append(artifact)
    if "import" in report:
        imp = report["import"]
        table = Table(
            f"import: CPU ms in a fresh {imp['python']} (median [p10-p90])",
            ["variant", "cpu", "wall", "added to boto3 (per round)"],
        )
        for name, entry in imp.items():
            if name in {"python", "importtime"}:
                continue
            table.add(
                name, fmt_spread(entry["cpu"]), fmt_spread(entry["wall"]), fmt_spread(entry["added_cpu_per_round"])
            )
        out.append(table)
        detail = Table(
            "import: -X importtime self ms after boto3 (median), by package", ["variant", "self", "packages"]
        )
        for name, entry in imp["importtime"].items():
            packages = ", ".join(f"{k} {v}" for k, v in entry["by_package_ms"].items())
            detail.add(name, fmt_spread(entry["self_ms"]), packages)
        out.append(detail)
    for server, drivers in report.get("behaviour", {}).items():
        names = list(drivers)
        table = Table(f"behaviour against {server}", ["check", *names])
        checks = [k for k in drivers[names[0]] if k != "facts"]
        for extra in drivers[names[-1]]:
            if extra not in checks and extra != "facts":
                checks.append(extra)
        table.add("driver", *(json.dumps(drivers[n]["facts"]) for n in names))
        for check in checks:
            cells = []
            for n in names:
                entry = drivers[n].get(check)
                if entry is None:
                    cells.append("n/a")
                elif check.startswith("login_ms") and entry["ok"]:
                    v = entry["value"]
                    cells.append(
                        f"{v['median_ms']:.1f} ms [{v['min_ms']:.1f}-{v['max_ms']:.1f}], "
                        f"client CPU {v['client_cpu_ms']:.1f} ms"
                    )
                elif check == "identifiers" and entry["ok"]:
                    cells.append(
                        ", ".join(
                            f"{v['quoted']}{'' if v['round_trip'] else ' (LOST)'}" for v in entry["value"].values()
                        )
                    )
                else:
                    cells.append(outcome(entry))
            table.add(check, *cells)
        out.append(table)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="fresh interpreters per import variant")
    parser.add_argument("--logins", type=int, default=20, help="verified logins timed per driver and CA file")
    parser.add_argument("--json", type=Path, default=RESULTS / "pgdriver.json")
    parser.add_argument("--no-servers", action="store_true", help="artifact and import sections only")
    args = parser.parse_args(argv)
    python = runtime_python()
    if python is None:
        print("no .venv-runtime with Python 3.13 (make runtime-venv): import and behaviour sections skipped")
    report: dict[str, Any] = {"load": load()}
    report["artifact"] = measure_artifact(python)
    if python is not None:
        report["import"] = measure_import(python, report["artifact"], args.rounds)
        if not args.no_servers:
            report["behaviour"] = measure_behaviour(python, report["artifact"], args.logins)
    report["load_after"] = load()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=str))
    for table in tables(report):
        print(table.render(), end="\n\n")
    print(f"load average before/after: {report['load']} / {report['load_after']}; JSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
