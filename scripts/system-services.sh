#!/usr/bin/env bash
# Starts (or stops) the machine's MariaDB and PostgreSQL by hand: these machines have no
# systemd. `start` is idempotent: a server that already answers is left alone.
set -euo pipefail

MARIADB_PIDFILE=/run/mysqld/mariadbd.pid
MARIADB_SOCKET=/run/mysqld/mysqld.sock
PG_VERSION=$(ls /usr/lib/postgresql | sort -n | tail -1)

wait_for() {  # wait_for NAME COMMAND...: up to 60 s for COMMAND to succeed
  local name=$1; shift
  for _ in $(seq 120); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  echo "services: $name did not become ready; see its log" >&2
  return 1
}

mariadb_up() { mariadb-admin --socket="$MARIADB_SOCKET" ping >/dev/null 2>&1; }
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

start() {
  if ! mariadb_up; then
    echo "services: starting MariaDB"
    install -d -o mysql -g mysql /run/mysqld /var/log/mysql
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    start-stop-daemon --start --background --make-pidfile --pidfile "$MARIADB_PIDFILE" \
      --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1 --port=3306 \
      --socket="$MARIADB_SOCKET" --log-error=/var/log/mysql/error.log
    wait_for MariaDB mariadb_up
  fi
  if ! postgres_up; then
    echo "services: starting PostgreSQL $PG_VERSION"
    pg_lsclusters -h | grep -q "^$PG_VERSION main" || pg_createcluster "$PG_VERSION" main >/dev/null
    pg_ctlcluster "$PG_VERSION" main start
    wait_for PostgreSQL postgres_up
  fi
}

stop() {
  mariadb_up && start-stop-daemon --stop --pidfile "$MARIADB_PIDFILE" --retry 30 || true
  postgres_up && pg_ctlcluster "$PG_VERSION" main stop || true
}

status() {
  mariadb_up && echo "MariaDB: up" || echo "MariaDB: down"
  postgres_up && echo "PostgreSQL: up" || echo "PostgreSQL: down"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
