#!/usr/bin/env bash
# Usage: bash scripts/test.sh [deno test filter args...]
#
# The whole test suite, from a fresh machine: installs what is missing, brings the local stack up, then runs
#   1. static checks (scripts/check.sh: fmt, lint, type checks of every function entry point),
#   2. pgTAP tests in supabase/tests/database against the local database (pg_prove),
#   3. the other major (scripts/other_major.sh): a short-lived PostgreSQL 15 cluster (17 when PG_MAJOR=15) with
#      every migration applied, the pgTAP suite, the type-validator differential tests, the version conformance
#      tests, the pg_cron stand-in's differential tests against the real pg_cron 1.4 and the PL/pgSQL lint
#      (scripts/lint_sql.sh: plpgsql_check, which exists for 15 only, through `supabase db lint`; an error fails
#      the run), wherever 15 runs, and the end-to-end type differentials (tests/all_types_test.ts,
#      tests/server_checked_types_test.ts) through an API gateway of its own (line "pg15: N passed, N failed"),
#   4. Deno tests (unit, property, contract tests of the local stand-ins, integration and end-to-end tests)
#      against the real local stack, whose Edge Runtime shares workers as the platform does (per_worker),
#   5. the main end-to-end pipeline tests again with the runtime isolating every request (FUNCTIONS_POLICY=
#      per_request), so the pipeline is proven under both modes (skipped when test filter args are given).
# Ends with one summary line "tests: N passed, N failed" and exits non-zero if anything failed.
# Leaves the stack running (stop it with `bash scripts/stack.sh down`).

source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
export NO_COLOR=1

bash scripts/stack.sh up
bash scripts/check.sh

passed=0
failed=0
report_dir="$STATE_DIR/test-reports"
mkdir -p "$report_dir"

# PL/pgSQL lint: a lint error counts as one failed test (a clean lint adds nothing, so totals compare with earlier runs).
# plpgsql_check exists for 15 only (Debian's package): on a 17 stack scripts/other_major.sh lints its 15 cluster.
if [ "$PG_MAJOR" = 15 ]; then
  set +e
  bash scripts/lint_sql.sh 2>&1 | tee "$report_dir/lint_sql.txt"
  lint_status=${PIPESTATUS[0]}
  set -e
  [ "$lint_status" -eq 0 ] || failed=$((failed + 1))
fi

# pgTAP: each file runs in its own transaction and rolls back.
mapfile -t pgtap_files < <(find supabase/tests -name '*.sql' | sort)
if [ "${#pgtap_files[@]}" -gt 0 ]; then
  log "pgTAP: ${#pgtap_files[@]} file(s)"
  set +e
  pg_prove --ext .sql -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres "${pgtap_files[@]}" | tee "$report_dir/pgtap.txt"
  pgtap_status=${PIPESTATUS[0]}
  set -e
  tally_pgtap "$report_dir/pgtap.txt" "$pgtap_status"
fi

# The other PostgreSQL major: its last line is "pg<major>: N passed, N failed". PG_OTHER_MAJOR=none skips it
# (a quicker local run; CI never sets it).
if [ "${PG_OTHER_MAJOR}" != none ]; then
  set +e
  bash scripts/other_major.sh 2>&1 | tee "$report_dir/other_major.txt"
  set -e
  other="$(grep -E '^pg[0-9]+: [0-9]+ passed, [0-9]+ failed$' "$report_dir/other_major.txt" | tail -1)"
  if [ -z "$other" ]; then
    failed=$((failed + 1))
  else
    passed=$((passed + $(printf '%s' "$other" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')))
    failed=$((failed + $(printf '%s' "$other" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')))
  fi
fi

# Deno tests: everything named *_test.ts outside tools/ and the state folders.
log "Deno tests"
set +e
deno test -A --config deno.json "$@" 2>&1 | tee "$report_dir/deno.txt"
deno_status=${PIPESTATUS[0]}
set -e
tally_deno "$report_dir/deno.txt" "$deno_status"

# The pipeline under the isolated runtime mode: the gateway restarted with FUNCTIONS_POLICY=per_request, the main
# import, exactly-once, worker-liveness and beforeunload tests, then the gateway back in its default mode.
if [ "$#" -eq 0 ]; then
  log "Deno tests: the pipeline with the Edge Runtime isolating every request (FUNCTIONS_POLICY=per_request)"
  FUNCTIONS_POLICY=per_request bash scripts/stack.sh restart-api
  set +e
  deno test -A --config deno.json tests/end_to_end_test.ts tests/exactly_once_test.ts \
    tests/worker_liveness_test.ts tests/shared_worker_test.ts 2>&1 | tee "$report_dir/deno-isolated.txt"
  isolated_status=${PIPESTATUS[0]}
  set -e
  bash scripts/stack.sh restart-api
  tally_deno "$report_dir/deno-isolated.txt" "$isolated_status"
fi

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
