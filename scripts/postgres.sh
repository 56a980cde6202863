#!/usr/bin/env bash
# Starts a private PostgreSQL server on 127.0.0.1 for the storage tests (never the system
# service) and prints the admin URL the tests use. `scripts/postgres.sh stop` stops it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PORT="${JUMPGATE_TEST_PG_PORT:-54329}"
# Outside /root, which the postgres user cannot enter.
DIR="${JUMPGATE_TEST_PG_DIR:-/var/tmp/jumpgate-test-postgres}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -z "$BIN" ]; then
  echo "postgres.sh: PostgreSQL is not installed (run scripts/setup.sh)" >&2
  exit 1
fi
# PostgreSQL refuses to run as root; the Debian package created the `postgres` user.
as_pg() { (cd / && runuser -u postgres -- "$@"); }

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$DIR/data/postmaster.pid" ]; then
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast stop >/dev/null || true
  fi
  exit 0
fi

# A fresh cluster each time: tests create throwaway databases, and nothing here is worth keeping.
if [ -f "$DIR/data/postmaster.pid" ]; then
  as_pg "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
fi
rm -rf "$DIR"
mkdir -p "$DIR"
chown postgres:postgres "$DIR"
as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR -c fsync=off" start >/dev/null
echo "postgres://postgres@127.0.0.1:$PORT/postgres"
