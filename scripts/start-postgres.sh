#!/usr/bin/env bash
# Starts the Debian PostgreSQL cluster (installing it if needed) and prints the test URL.
# Usage: eval "$(scripts/start-postgres.sh)"   -> exports WORKBENCH_TEST_POSTGRES_URL
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  echo "installing postgresql" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$ver main$"; then
  pg_createcluster "$ver" main >&2
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true
port=$(pg_lsclusters -h | awk -v v="$ver" '$1==v && $2=="main" {print $3}')
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -p $port" && break
  sleep 1
done
psql_pg() { su postgres -c "psql -p $port -v ON_ERROR_STOP=1 -qtAc \"$1\""; }
[ "$(psql_pg "SELECT 1 FROM pg_roles WHERE rolname='workbench'")" = "1" ] ||
  psql_pg "CREATE ROLE workbench LOGIN PASSWORD 'workbench' CREATEDB" >&2
[ "$(psql_pg "SELECT 1 FROM pg_database WHERE datname='workbench_test'")" = "1" ] ||
  psql_pg "CREATE DATABASE workbench_test OWNER workbench" >&2
echo "export WORKBENCH_TEST_POSTGRES_URL=postgresql://workbench:workbench@127.0.0.1:$port/workbench_test"
