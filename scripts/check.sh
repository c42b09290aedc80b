#!/usr/bin/env bash
# Usage: bash scripts/check.sh
#
# Static checks CI runs: `deno fmt --check`, `deno lint`, and `deno check` of every Edge Function entry point
# with that function's own deno.json (exactly how it is bundled on deploy), plus the local stack, scripts and
# tests under the root deno.json.

source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

deno fmt --check --quiet
deno lint --quiet
for fn_dir in supabase/functions/*/; do
  name="$(basename "$fn_dir")"
  [ "${name:0:1}" = "_" ] || [ ! -f "$fn_dir/index.ts" ] && continue
  deno check --quiet --config "$fn_dir/deno.json" "$fn_dir/index.ts"
done
mapfile -t ts_files < <(git ls-files --cached --others --exclude-standard -- '*.ts' | grep -v -E '^(tools|supabase/functions/[^_][^/]*)/' | grep -v '/testdata/')
deno check --quiet "${ts_files[@]}"
log "fmt, lint and type checks passed"
