# shellcheck shell=bash
# Sourced by ensure_mysql.sh and ensure_postgresql.sh: a minimal Debian sid chroot
# (debootstrap from the machine's own mirror) for servers whose binaries need a newer
# libc than the host's, and apt inside it.

# debootstrap on the host (apt).
sid_ensure_debootstrap() {
  if ! command -v debootstrap >/dev/null 2>&1; then
    echo "installing debootstrap (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -yq debootstrap >/dev/null \
      || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -yq debootstrap; }
  fi
}

# The machine's own Debian mirror: never a host written into the repository.
sid_mirror() {
  local mirror
  mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
  if [ -z "$mirror" ]; then
    mirror="$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  fi
  [ -n "$mirror" ] || { echo "no Debian mirror found in the machine's apt sources" >&2; return 1; }
  echo "$mirror"
}

# sid_bootstrap CHROOT LOG MIRROR: a minbase sid in CHROOT unless it has apt already.
sid_bootstrap() {
  local chroot="$1" log="$2" mirror="$3"
  mkdir -p "$(dirname "$chroot")"
  if [ ! -x "$chroot/usr/bin/apt-get" ]; then
    rm -rf "$chroot"
    debootstrap --variant=minbase sid "$chroot" "$mirror" >"$log" 2>&1 || { tail -20 "$log" >&2; return 1; }
  fi
}

# sid_apt_install CHROOT PACKAGE…: without recommends, keeping config files already there.
sid_apt_install() {
  local chroot="$1"
  shift
  # The index served here is a snapshot whose Release file has expired.
  chroot "$chroot" apt-get -q -o Acquire::Check-Valid-Until=false update >/dev/null
  chroot "$chroot" env DEBIAN_FRONTEND=noninteractive apt-get install -yq --no-install-recommends \
    -o Acquire::Check-Valid-Until=false -o Dpkg::Options::=--force-confold "$@" >/dev/null
}
