#!/usr/bin/env bash
# Usage: bash scripts/quickstart.sh [--rows N]
#
# The README's first command: installs what is missing, brings up the local stack (Postgres 15 + pg_cron, the
# Storage and Edge Functions stand-ins, the pg_net worker) and runs the pipeline end to end on a generated
# sample CSV (scripts/demo.ts), printing the result. The stack stays up afterwards
# (`bash scripts/stack.sh status`, `bash scripts/stack.sh down`).
source "$(dirname "$0")/lib.sh"
bash "$REPO_ROOT/scripts/stack.sh" up
cd "$REPO_ROOT"
deno run -A --config deno.json scripts/demo.ts "$@"
