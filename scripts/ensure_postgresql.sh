#!/usr/bin/env bash
# Make sure the PostgreSQL servers the integration tests start privately exist
# (tests/support/postgresql.py):
#
# - PostgreSQL 15: Debian 12's own postgresql-15 (apt), run from /usr/lib/postgresql/15/bin.
# - PostgreSQL 18: Debian sid's postgresql-18 in a minimal sid chroot kept outside the
#   checkout (its binaries need a newer libc than the host's), reused by every run.
#   ~1-2 minutes and ~600 MB the first time.
#
# The chroot is its own: /var/cache/rotator/postgresql-sid (ROTATOR_POSTGRESQL_CHROOT
# overrides it), never the MySQL one (scripts/ensure_mysql.sh), whose mysqld other
# test runs may be using. No cluster is created and no service is started in it: the
# tests run initdb and postgres themselves.
set -euo pipefail

# -- PostgreSQL 15 on the host ---------------------------------------------------------
if [ ! -x /usr/lib/postgresql/15/bin/postgres ]; then
  echo "installing postgresql-15 (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -yq postgresql-15
fi

# -- PostgreSQL 18 in a Debian sid chroot ----------------------------------------------
CHROOT="${ROTATOR_POSTGRESQL_CHROOT:-/var/cache/rotator/postgresql-sid}"
MAJOR=18
if [ -x "$CHROOT/usr/lib/postgresql/$MAJOR/bin/postgres" ] && [ -f "$CHROOT/.rotator-ready" ]; then
  exit 0
fi
# shellcheck source=sid_chroot.sh
source "$(dirname "$0")/sid_chroot.sh"
sid_ensure_debootstrap
MIRROR="$(sid_mirror)"
echo "building a Debian sid chroot for PostgreSQL $MAJOR in $CHROOT (from $MIRROR)"
sid_bootstrap "$CHROOT" "$(dirname "$CHROOT")/debootstrap-postgresql.log" "$MIRROR"
# Packages must not start services in the chroot (the host's network is shared) and
# postgresql-common must not create a "main" cluster: the tests make their own.
printf '#!/bin/sh\nexit 101\n' >"$CHROOT/usr/sbin/policy-rc.d"
chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
mkdir -p "$CHROOT/etc/postgresql-common"
printf 'create_main_cluster = false\n' >"$CHROOT/etc/postgresql-common/createcluster.conf"
# postgresql-common's maintainer scripts fail without /proc (the servers need it too).
if [ ! -e "$CHROOT/proc/self" ]; then
  mount -t proc proc "$CHROOT/proc"
fi
# A run that died half way through configuring packages is finished first (apt refuses
# to install anything while dpkg was interrupted).
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null
sid_apt_install "$CHROOT" "postgresql-$MAJOR"
chroot "$CHROOT" "/usr/lib/postgresql/$MAJOR/bin/postgres" --version
touch "$CHROOT/.rotator-ready"
