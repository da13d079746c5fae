#!/usr/bin/env bash
# The PostgreSQL side alone of a right code against the bare route's UPDATE, without Node:
# `bash bench/pgbench/run.sh` (needs psql and pgbench). Applies the migrations to a scratch
# database, seeds it, and runs each script for 8 s at 10 clients, prepared, as the pool does.
# right-code.sql is src/second-factor/phone-code.ts completeLogin's statement with the policy
# and parameters written out, and without `completed_at IS NULL` so that a login can be
# completed again (each run then does the full work). The -without-event variant is made from
# it here, with the login's event insert (the also_written CTE) cut out.
set -euo pipefail
cd "$(dirname "$0")"
url=${BENCH_DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=spa_pgbench_$$
psql "$url" -qc "CREATE DATABASE $db"
trap 'psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
target=${url%/*}/$db
for migration in ../../prisma/migrations/*/migration.sql; do psql "$target" -q -v ON_ERROR_STOP=1 -f "$migration"; done
psql "$target" -q -v ON_ERROR_STOP=1 -f seed.sql -c 'VACUUM ANALYZE' -c 'CHECKPOINT'
without_event=$(mktemp)
trap 'rm -f "$without_event"; psql "$url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
sed '/also_written AS/,/FROM completed$/d' right-code.sql > "$without_event"
for script in bare-update.sql right-code.sql "$without_event"; do
  printf '%-26s ' "$([ "$script" = "$without_event" ] && echo right-code-without-event || basename "$script" .sql)"
  pgbench "$target" -n -M prepared -c 10 -j 2 -T "${PGBENCH_SECONDS:-8}" -f "$script" 2>&1 | grep -E '^tps'
done
