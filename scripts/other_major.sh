#!/usr/bin/env bash
# Usage: bash scripts/other_major.sh [MAJOR]   (run by scripts/test.sh; MAJOR defaults to PG_OTHER_MAJOR)
#
# CI's 17 phase: the full stack runs 15 (Debian's real pg_cron runs the pipeline's jobs there), while
# supabase/config.toml and new hosted projects run 17, so the test command also starts a short-lived cluster of the
# other major (17 when the stack runs 15) and, against it:
#   1. applies every migration and the seed exactly as the stack does (local-stack/postgres.sh pg_apply: the same
#      bootstrap and roles, migrations as the stack applies them), and creates config.toml's buckets as the stack's
#      gateway does at start (scripts/seed_buckets.ts),
#   2. runs the pgTAP suite (pg_prove),
#   3. runs the type-validator differential tests (supabase/functions/_shared/pg_types/convert_test.ts, our
#      converters against the server's own input functions), the database version conformance tests, and, on 17,
#      the pg_cron stand-in's differential conformance tests against the real pg_cron of the stack's 15
#      (tests/conformance/database_pg_cron17_test.ts; CRON_REFERENCE_DB_URL) and the job runner's tests
#      (local-stack/pg_cron/schedule_test.ts: its parser against the stand-in's validator; runner_test.ts: jobs
#      run by a runner the test starts in its own process, about 45 s),
# then stops the cluster and deletes its data, so every run applies every migration to an empty database.
# On 17, pg_cron is a catalog stand-in that runs no job itself (local-stack/pg17/pg_cron--1.6.sql); a PG_MAJOR=17
# stack's gateway runs its jobs with local-stack/pg_cron/runner.ts, which this phase tests on its own cluster.
# The last line is "pg<MAJOR>: N passed, N failed" (scripts/test.sh adds it to its totals); exits 1 if any failed.
#
# Invariants:
# - Never touches the stack's own cluster: its own port (PG_OTHER_PORT, default DB_PORT + 10) and state folder
#   ($STATE_DIR/other-pg<MAJOR>), and no API: the stack's Storage, functions and pg_net worker never see it. The
#   stack's database is only read, by the pg_cron differential tests, each in a transaction that is rolled back.
# - The cluster is stopped and deleted on every exit path.

source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
export NO_COLOR=1

major="${1:-$PG_OTHER_MAJOR}"
port="${PG_OTHER_PORT:-$((DB_PORT + 10))}"
# The stack's database, with the real pg_cron when the stack runs 15: the reference of the stand-in's tests.
cron_reference=""
if [ "$PG_MAJOR" = 15 ] && [ "$major" = 17 ]; then cron_reference="$SUPABASE_DB_URL"; fi
report_dir="$STATE_DIR/test-reports"
mkdir -p "$report_dir"
export PG_MAJOR="$major" DB_PORT="$port" LOCAL_STATE_DIR="$STATE_DIR/other-pg$major"
export SUPABASE_DB_URL="postgresql://postgres:postgres@127.0.0.1:$port/postgres"
source "$REPO_ROOT/scripts/lib.sh"
source "$REPO_ROOT/local-stack/postgres.sh"

started=$SECONDS
trap 'pg_destroy >/dev/null 2>&1 || true' EXIT
pg_destroy >/dev/null 2>&1 || true
log "PostgreSQL $major on 127.0.0.1:$port: migrations, pgTAP, the type differential and conformance tests"
pg_start
pg_apply
# The buckets config.toml declares, created as the stack's gateway creates them at start (the pgTAP fixtures use them).
deno run -A scripts/seed_buckets.ts >/dev/null

passed=0
failed=0

mapfile -t pgtap_files < <(find supabase/tests -name '*.sql' | sort)
set +e
pg_prove --ext .sql -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres "${pgtap_files[@]}" > "$report_dir/pg$major-pgtap.txt" 2>&1
pgtap_status=$?
set -e
{ grep -vE ' ok$' "$report_dir/pg$major-pgtap.txt" || true; } | sed "s/^/[pg$major] /"
tally_pgtap "$report_dir/pg$major-pgtap.txt" "$pgtap_status"

deno_files=(supabase/functions/_shared/pg_types/convert_test.ts tests/conformance/database_versions_test.ts)
[ -z "$cron_reference" ] || deno_files+=(tests/conformance/database_pg_cron17_test.ts)
[ "$major" != 17 ] || deno_files+=(local-stack/pg_cron/schedule_test.ts local-stack/pg_cron/runner_test.ts)
set +e
CRON_REFERENCE_DB_URL="$cron_reference" deno test -A --config deno.json "${deno_files[@]}" \
  > "$report_dir/pg$major-deno.txt" 2>&1
deno_status=$?
set -e
{ grep -E 'FAILED|^error|=> ' "$report_dir/pg$major-deno.txt" || true; } | sed "s/^/[pg$major] /"
tally_deno "$report_dir/pg$major-deno.txt" "$deno_status"

log "PostgreSQL $major done in $((SECONDS - started)) s (reports: $report_dir/pg$major-*.txt)"
echo "pg$major: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
