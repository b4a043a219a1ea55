#!/usr/bin/env bash
# Make sure the PostgreSQL servers the integration tests start privately exist
# (tests/support/postgresql.py):
#
# - PostgreSQL 15: Debian 12's own postgresql-15 (apt), run from /usr/lib/postgresql/15/bin.
# - PostgreSQL 18: Debian sid's postgresql-18 in a minimal sid chroot kept outside the
#   checkout (its binaries need a newer libc than the host's), reused by every run.
#   ~1-2 minutes and ~300 MB the first time.
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
echo "building a Debian sid chroot for PostgreSQL $MAJOR in $CHROOT (from $MIRROR)"
mkdir -p "$(dirname "$CHROOT")"
LOG="$(dirname "$CHROOT")/debootstrap-postgresql.log"
if [ ! -x "$CHROOT/usr/bin/apt-get" ]; then
  rm -rf "$CHROOT"
  debootstrap --variant=minbase sid "$CHROOT" "$MIRROR" >"$LOG" 2>&1 || { tail -20 "$LOG" >&2; exit 1; }
fi
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
# The index served here is a snapshot whose Release file has expired.
chroot "$CHROOT" apt-get -q -o Acquire::Check-Valid-Until=false update >/dev/null
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -yq --no-install-recommends \
  -o Acquire::Check-Valid-Until=false -o Dpkg::Options::=--force-confold "postgresql-$MAJOR" >/dev/null
# A run that died half way through configuring packages is finished here.
chroot "$CHROOT" env DEBIAN_FRONTEND=noninteractive dpkg --configure -a >/dev/null
chroot "$CHROOT" "/usr/lib/postgresql/$MAJOR/bin/postgres" --version
touch "$CHROOT/.rotator-ready"
