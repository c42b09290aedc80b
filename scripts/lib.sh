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

# Runs psql against the local database as the `postgres` role over loopback TCP.
psql_local() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$DB_HOST" -p "$DB_PORT" -U postgres -d postgres "$@"
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
