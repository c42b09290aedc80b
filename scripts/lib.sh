# shellcheck shell=bash
# Usage: source "$(dirname "$0")/lib.sh"
#
# Shared settings for every script: where the repo, the pinned tools and the local stack's state live,
# and the local stack's well-known addresses. Sourcing it changes nothing on disk.
#
# Invariants:
# - Every path is absolute, so scripts work from any working directory.
# - The local stack listens on loopback only: API (Storage + Functions) on $API_PORT, Postgres on $DB_PORT,
#   the same ports `supabase start` uses, so URLs in docs and tests hold for both.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT
export STATE_DIR="${LOCAL_STATE_DIR:-$REPO_ROOT/.local}"
export TOOLS_BIN="$REPO_ROOT/tools/node_modules/.bin"
# The deno npm package puts the real binary in node_modules/deno/ and a Node.js wrapper in .bin/; use the
# binary directly (one process instead of two for every stack service and test run).
# /usr/sbin: runuser (to run Postgres as the postgres user) lives there and a minimal PATH may lack it.
export PATH="$REPO_ROOT/tools/node_modules/deno:$TOOLS_BIN:$PATH:/usr/sbin:/sbin"

export API_PORT="${API_PORT:-54321}"
export DB_PORT="${DB_PORT:-54322}"
export DB_HOST=127.0.0.1
export PGPASSWORD="${PGPASSWORD:-postgres}"
export PGOPTIONS="${PGOPTIONS:--c client_min_messages=warning}"
export SUPABASE_URL="${SUPABASE_URL:-http://127.0.0.1:$API_PORT}"
export SUPABASE_DB_URL="${SUPABASE_DB_URL:-postgresql://postgres:postgres@127.0.0.1:$DB_PORT/postgres}"

# Deno keeps its module cache outside the repo (shared across clones on one machine).
export DENO_NO_UPDATE_CHECK=1
# Deno prints Rust backtraces on any error when this is set in the environment; they are noise here.
export RUST_BACKTRACE=0
export DENO_NO_PROMPT=1
# Use the OS trust store (npm registry access may go through a TLS-inspecting proxy whose CA only the OS trusts).
export DENO_TLS_CA_STORE="${DENO_TLS_CA_STORE:-system}"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '\033[31m[%s] error:\033[0m %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# ---- PostgreSQL major version and binaries ------------------------------------------------------------------
# PG_MAJOR picks the local stack's server: 17 by default, as supabase/config.toml's [db] major_version and new
# hosted projects: the npm server assembled by local-stack/pg17/build.sh into $PG17_ROOT (outside the repo, readable
# by the `postgres` OS user; its name is a hash of the recipe), with pgTAP and a pg_cron *catalog stand-in that runs
# no job itself* (local-stack/pg17/pg_cron--1.6.sql: there is no honest source of pg_cron for 17 on this machine);
# the gateway's job runner (local-stack/pg_cron/runner.ts) runs its jobs. 15 is Debian's postgresql-15 with
# Debian's real pg_cron 1.4, whose scheduler runs the jobs (PG_MAJOR=15 runs the whole stack there). CI runs the
# other major too (PG_OTHER_MAJOR, scripts/other_major.sh: 15 when the stack runs 17, with the PL/pgSQL lint and
# the stand-in's differential tests against the real pg_cron).
# After pg_select_major: PG_BIN (initdb, pg_ctl, postgres), PG_SHAREDIR (its extension/ folder holds control and
# SQL files) and PG_PKGLIBDIR (loadable modules) of the selected server.
export PG_MAJOR="${PG_MAJOR:-17}"
PG17_ROOT="${PG17_ROOT:-/var/tmp/csv-pipeline-pg17/$(cat "$REPO_ROOT"/local-stack/pg17/{pins.env,build.sh,pg_cron.control,pg_cron--1.6.sql} | sha1sum | cut -c1-12)}"
export PG17_ROOT
pg_select_major() {
  case "$1" in
    15) PG_BIN=/usr/lib/postgresql/15/bin PG_SHAREDIR=/usr/share/postgresql/15 PG_PKGLIBDIR=/usr/lib/postgresql/15/lib ;;
    17) PG_BIN="$PG17_ROOT/bin" PG_SHAREDIR="$PG17_ROOT/share/postgresql" PG_PKGLIBDIR="$PG17_ROOT/lib/postgresql" ;;
    *) die "PG_MAJOR=$1: the local stack runs PostgreSQL 17 (default) or 15" ;;
  esac
  export PG_BIN PG_SHAREDIR PG_PKGLIBDIR
}
pg_select_major "$PG_MAJOR"
# The other major (scripts/other_major.sh); PG_OTHER_MAJOR=none in the environment skips that part of a test run.
if [ -z "${PG_OTHER_MAJOR:-}" ]; then
  if [ "$PG_MAJOR" = 17 ]; then PG_OTHER_MAJOR=15; else PG_OTHER_MAJOR=17; fi
fi
export PG_OTHER_MAJOR

# Runs psql against the local database as the `postgres` role over loopback TCP.
psql_local() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres "$@"
}

# Runs a command as root: directly when we are root, through sudo otherwise.
# Test tallies: add a report's results to the caller's $passed and $failed. A non-zero exit status with no failed
# test in the report (a crash, a file that did not compile) counts as one failure.
tally_pgtap() { # <pg_prove report> <pg_prove exit status>
  local total bad
  total="$(grep -oE 'Tests=[0-9]+' "$1" | grep -oE '[0-9]+' || echo 0)"
  # `|| true`: grep finds nothing when every test passed, which under pipefail would end the script.
  bad="$({ grep -oE 'Failed [0-9]+/[0-9]+ subtests' "$1" || true; } | awk -F'[ /]' '{s+=$2} END {print s+0}')"
  if [ "$2" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  passed=$((passed + total - bad))
  failed=$((failed + bad))
}
tally_deno() { # <deno test output> <deno test exit status>
  local summary good bad
  summary="$(sed 's/\x1b\[[0-9;]*m//g' "$1" | { grep -E '^(ok|FAILED) \| [0-9]+ passed' || true; } | tail -1)"
  good="$(printf '%s' "$summary" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)"
  bad="$(printf '%s' "$summary" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)"
  if [ "$2" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; fi
  passed=$((passed + good))
  failed=$((failed + bad))
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
