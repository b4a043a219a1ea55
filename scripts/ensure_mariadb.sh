#!/usr/bin/env bash
# Make sure the MariaDB binaries exist and the machine's shared server answers on
# 127.0.0.1:3306. Tests start their own private TLS instances from the same binaries.
set -euo pipefail
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "installing mariadb-server (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -yq mariadb-server mariadb-client
fi
if ! mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1; then
  echo "starting the shared MariaDB server"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 60); do
    mariadb-admin --protocol=tcp -h127.0.0.1 -P3306 -uroot ping >/dev/null 2>&1 && break
    sleep 0.5
  done
fi
