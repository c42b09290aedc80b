#!/usr/bin/env bash
# Usage: bash scripts/other_major.sh [MAJOR]   (run by scripts/test.sh; MAJOR defaults to PG_OTHER_MAJOR)
#
# CI's other-major phase: the full stack runs 17 (supabase/config.toml's major, new hosted projects; pg_cron there is
# the catalog stand-in whose jobs the gateway's runner runs), so the test command also starts a short-lived cluster
# of the other major (15, with Debian's real pg_cron 1.4; 17 when the stack runs 15) and, against it:
#   1. applies every migration and the seed exactly as the stack does (local-stack/postgres.sh pg_apply: the same
#      bootstrap and roles, migrations as the stack applies them), and creates config.toml's buckets as the stack's
#      gateway does at start (scripts/seed_buckets.ts),
#   2. runs the pgTAP suite (pg_prove),
#   3. on 15, the PL/pgSQL lint (scripts/lint_sql.sh; plpgsql_check exists for 15 only): an error counts as one
#      failed test,
#   4. runs the type-validator differential tests (supabase/functions/_shared/pg_types/convert_test.ts, our
#      converters against the server's own input functions), the database version conformance tests, and the
#      pg_cron stand-in's differential conformance tests (tests/conformance/database_pg_cron17_test.ts) with the
#      stand-in on whichever side runs 17 and the real pg_cron on the side that runs 15; on a 17 cluster without
#      a gateway, also the job runner's tests (local-stack/pg_cron/schedule_test.ts, runner_test.ts: jobs run by
#      a runner the test starts in its own process, about 45 s; on a 17 stack they run in the main Deno run,
#      against the gateway's runner),
#   5. starts an API gateway of its own in front of the cluster (local-stack/main.ts, as stack.sh starts the stack's:
#      Storage, the Edge Functions, the pg_net worker; on PG_OTHER_API_PORT, default API_PORT + 10) and runs the
#      end-to-end type differentials there (tests/all_types_test.ts: every type of that server, PostGIS on 15, loaded
#      through the pipeline and through \copy; tests/server_checked_types_test.ts), then stops the gateway,
# then stops the cluster and deletes its data, so every run applies every migration to an empty database.
# The last line is "pg<MAJOR>: N passed, N failed" (scripts/test.sh adds it to its totals); exits 1 if any failed.
#
# Invariants:
# - Never touches the stack's own cluster: its own port (PG_OTHER_PORT, default DB_PORT + 10) and state folder
#   ($STATE_DIR/other-pg<MAJOR>), and its own gateway (own API port, Storage folder and function workers): the
#   stack's Storage, functions and pg_net worker never see it, and the database points its pg_net calls at its own
#   gateway (pg_apply is given that URL). The
#   stack's database is only used by the pg_cron differential tests, each in a transaction that is rolled back
#   (the one test that commits jobs is skipped where a runner would run them: CRON_STANDIN_RUNNER=gateway).
# - The gateway is stopped, and the cluster stopped and deleted, on every exit path.

source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
export NO_COLOR=1

major="${1:-$PG_OTHER_MAJOR}"
port="${PG_OTHER_PORT:-$((DB_PORT + 10))}"
api_port="${PG_OTHER_API_PORT:-$((API_PORT + 10))}"
# The pg_cron differential: the stand-in on the 17 side, the real pg_cron on the 15 side (one is the stack's).
stack_major="$PG_MAJOR" stack_db_url="$SUPABASE_DB_URL"
report_dir="$STATE_DIR/test-reports"
mkdir -p "$report_dir"
export PG_MAJOR="$major" DB_PORT="$port" LOCAL_STATE_DIR="$STATE_DIR/other-pg$major"
export SUPABASE_DB_URL="postgresql://postgres:postgres@127.0.0.1:$port/postgres"
# This cluster's own gateway (step 5): pg_apply writes its URL into the database's pg_net endpoints.
export API_PORT="$api_port" SUPABASE_URL="http://127.0.0.1:$api_port"
source "$REPO_ROOT/scripts/lib.sh"
source "$REPO_ROOT/local-stack/postgres.sh"

gateway_pid=""
gateway_log="$STATE_DIR/logs/gateway.log"
stop_gateway() {
  [ -n "$gateway_pid" ] || return 0
  kill "$gateway_pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$gateway_pid" 2>/dev/null || true
  gateway_pid=""
}

started=$SECONDS
trap 'stop_gateway; pg_destroy >/dev/null 2>&1 || true' EXIT
pg_destroy >/dev/null 2>&1 || true
log "PostgreSQL $major on 127.0.0.1:$port: migrations, pgTAP, the type differentials and conformance tests"
pg_start
pg_apply
# The buckets config.toml declares, created as the stack's gateway creates them at start (the pgTAP fixtures use them).
deno run -A scripts/seed_buckets.ts >/dev/null

passed=0
failed=0

other_db_url="$SUPABASE_DB_URL"
cron_standin="" cron_reference="" cron_runner=""
if [ "$stack_major" = 15 ] && [ "$major" = 17 ]; then cron_standin="$other_db_url" cron_reference="$stack_db_url"; fi
if [ "$stack_major" = 17 ] && [ "$major" = 15 ]; then
  cron_standin="$stack_db_url" cron_reference="$other_db_url" cron_runner=gateway
fi

mapfile -t pgtap_files < <(find supabase/tests -name '*.sql' | sort)
set +e
pg_prove --ext .sql -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres "${pgtap_files[@]}" > "$report_dir/pg$major-pgtap.txt" 2>&1
pgtap_status=$?
set -e
{ grep -vE ' ok$' "$report_dir/pg$major-pgtap.txt" || true; } | sed "s/^/[pg$major] /"
tally_pgtap "$report_dir/pg$major-pgtap.txt" "$pgtap_status"

# PL/pgSQL lint on 15 (the stack's own run lints when the stack is 15).
if [ "$major" = 15 ]; then
  set +e
  bash scripts/lint_sql.sh > "$report_dir/pg$major-lint_sql.txt" 2>&1
  lint_status=$?
  set -e
  if [ "$lint_status" -ne 0 ]; then
    failed=$((failed + 1))
    sed "s/^/[pg$major] /" "$report_dir/pg$major-lint_sql.txt"
  fi
fi

deno_files=(supabase/functions/_shared/pg_types/convert_test.ts tests/conformance/database_versions_test.ts)
[ "$major" != 17 ] || deno_files+=(local-stack/pg_cron/schedule_test.ts local-stack/pg_cron/runner_test.ts)
set +e
deno test -A --config deno.json "${deno_files[@]}" > "$report_dir/pg$major-deno.txt" 2>&1
deno_status=$?
set -e
{ grep -E 'FAILED|^error|=> ' "$report_dir/pg$major-deno.txt" || true; } | sed "s/^/[pg$major] /"
tally_deno "$report_dir/pg$major-deno.txt" "$deno_status"

if [ -n "$cron_reference" ]; then
  set +e
  SUPABASE_DB_URL="$cron_standin" CRON_REFERENCE_DB_URL="$cron_reference" CRON_STANDIN_RUNNER="$cron_runner" \
    deno test -A --config deno.json tests/conformance/database_pg_cron17_test.ts > "$report_dir/pg$major-cron.txt" 2>&1
  cron_status=$?
  set -e
  { grep -E 'FAILED|^error|=> ' "$report_dir/pg$major-cron.txt" || true; } | sed "s/^/[pg$major] /"
  tally_deno "$report_dir/pg$major-cron.txt" "$cron_status"
fi
# The end-to-end type differentials through this cluster's own gateway (as stack.sh starts the stack's).
mkdir -p "$STATE_DIR/logs" "$STATE_DIR/storage"
deno run -A --config deno.json local-stack/main.ts </dev/null >>"$gateway_log" 2>&1 &
gateway_pid=$!
for _ in $(seq 1 300); do
  curl -fsS -m 2 "$SUPABASE_URL/_local/health" >/dev/null 2>&1 && break
  kill -0 "$gateway_pid" 2>/dev/null || break
  sleep 0.1
done
set +e
if curl -fsS -m 2 "$SUPABASE_URL/_local/health" >/dev/null 2>&1; then
  deno test -A --config deno.json tests/all_types_test.ts tests/server_checked_types_test.ts \
    > "$report_dir/pg$major-e2e.txt" 2>&1
  e2e_status=$?
else
  echo "the gateway in front of PostgreSQL $major did not become healthy (log: $gateway_log)" > "$report_dir/pg$major-e2e.txt"
  tail -20 "$gateway_log" >> "$report_dir/pg$major-e2e.txt"
  e2e_status=1
fi
set -e
stop_gateway
{ grep -E 'FAILED|^error|=> |did not become healthy' "$report_dir/pg$major-e2e.txt" || true; } | sed "s/^/[pg$major] /"
tally_deno "$report_dir/pg$major-e2e.txt" "$e2e_status"

log "PostgreSQL $major done in $((SECONDS - started)) s (reports: $report_dir/pg$major-*.txt)"
echo "pg$major: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
