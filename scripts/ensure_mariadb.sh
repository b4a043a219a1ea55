#!/usr/bin/env bash
# Make sure the MariaDB binaries exist: the tests, the demo and the benchmarks start
# their own private TLS instances from them (tests/support/mariadb.py). No test uses
# the machine's shared server any more, so it is neither needed nor started.
set -euo pipefail
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "installing mariadb-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -yq mariadb-server mariadb-client
fi
