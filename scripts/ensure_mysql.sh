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
# shellcheck source=sid_chroot.sh
source "$(dirname "$0")/sid_chroot.sh"
sid_ensure_debootstrap
MIRROR="$(sid_mirror)"
echo "building a Debian sid chroot for MySQL in $CHROOT (from $MIRROR)"
sid_bootstrap "$CHROOT" "$(dirname "$CHROOT")/debootstrap.log" "$MIRROR"
sid_apt_install "$CHROOT" mysql-server-core mysql-client-core
chroot "$CHROOT" mysqld --version
touch "$CHROOT/.rotator-ready"
