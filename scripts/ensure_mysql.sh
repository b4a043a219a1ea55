#!/usr/bin/env bash
# Make sure a MySQL server binary is available for the test suite, the demo and
# the benchmarks. Debian 12 has no MySQL: Debian sid's mysql-server-core runs in a
# minimal sid chroot kept outside the checkout (it needs a newer libc than the
# host's) and reused by every run. ~1 minute and ~800 MB the first time.
#
# Skipped when ROTATOR_MYSQL_DSN points the suite at a MySQL of your own.
# ROTATOR_MYSQL_CHROOT overrides where the chroot lives.
set -euo pipefail
if [ -n "${ROTATOR_MYSQL_DSN:-}" ]; then
  echo "ROTATOR_MYSQL_DSN is set: using that MySQL server, no chroot"
  exit 0
fi
CHROOT="${ROTATOR_MYSQL_CHROOT:-/var/cache/rotator/mysql-sid}"
if [ -x "$CHROOT/usr/sbin/mysqld" ] && [ -f "$CHROOT/.rotator-ready" ]; then
  exit 0
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  echo "installing debootstrap (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -yq debootstrap >/dev/null \
    || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -yq debootstrap; }
fi
# The machine's own Debian mirror: never a host written into the repository.
MIRROR="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
if [ -z "$MIRROR" ]; then
  MIRROR="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
fi
[ -n "$MIRROR" ] || { echo "no Debian mirror found in the machine's apt sources" >&2; exit 1; }
echo "building a Debian sid chroot for MySQL in $CHROOT (from $MIRROR)"
mkdir -p "$(dirname "$CHROOT")"
if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
  rm -rf "$CHROOT"
  debootstrap --variant=minbase sid "$CHROOT" "$MIRROR" >"$(dirname "$CHROOT")/debootstrap.log" 2>&1 \
    || { tail -20 "$(dirname "$CHROOT")/debootstrap.log" >&2; exit 1; }
fi
# The index served here is a snapshot whose Release file has expired.
chroot "$CHROOT" apt-get -q -o Acquire::Check-Valid-Until=false update >/dev/null
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -yq --no-install-recommends \
  -o Acquire::Check-Valid-Until=false mysql-server-core mysql-client-core >/dev/null
chroot "$CHROOT" mysqld --version
touch "$CHROOT/.rotator-ready"
