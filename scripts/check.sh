#!/usr/bin/env bash
# Usage: bash scripts/check.sh
#
# Static checks CI runs: `deno fmt --check`, `deno lint`, the lock file, and `deno check` of every Edge Function
# entry point with that function's own deno.json (exactly how it is bundled on deploy), plus the local stack,
# CLI, bench, scripts and tests under the root deno.json.
#
# Lock files, one rule: the root deno.lock is the only one, tracked and frozen (deno.json "lock": {"frozen": true},
# so no deno command, install.sh's `deno cache` included, rewrites it on the way), and checked --frozen here, so a
# change to an import (or to deno.json's imports) without the updated lock fails; update it on purpose with
# `deno install --frozen=false` and commit it. Each function's deno.json says "lock": false: no supabase/functions/*/deno.lock (`supabase functions deploy`
# uploads the entry point's import graph and deno.json, never a lock file; the Docker bundler did read one, and
# failed on Deno 2's v5 format: supabase/edge-runtime#615). A function's deno.json pins exact versions and maps
# a specifier only as the root deno.json maps it, so the root lock covers every version a function deploys with.
# The upload page's code (web/src/, browser code: the DOM's types, not Deno's) is checked the same way with
# web/deno.json, which follows the same rule.

source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

deno fmt --check --quiet
deno lint --quiet
# Every dependency in deno.json is in deno.lock, as locked (nothing is written).
deno install --quiet --frozen
fn_dirs=()
for fn_dir in supabase/functions/*/; do
  name="$(basename "$fn_dir")"
  [ "${name:0:1}" = "_" ] || [ ! -f "$fn_dir/index.ts" ] && continue
  fn_dirs+=("${fn_dir%/}")
done
# The rule above, for the functions' configs: "lock": false, and every import mapped as the root maps it.
deno eval --quiet '
  const root = JSON.parse(Deno.readTextFileSync("deno.json")).imports ?? {};
  const problems = [];
  for (const path of Deno.args) {
    const config = JSON.parse(Deno.readTextFileSync(path));
    if (config.lock !== false) problems.push(`${path}: set "lock": false (the root deno.lock is the only lock file)`);
    for (const [name, target] of Object.entries(config.imports ?? {})) {
      if (root[name] !== target) problems.push(`${path}: "${name}" maps to ${target}, the root deno.json to ${root[name]}`);
    }
  }
  if (problems.length > 0) {
    console.error(problems.join("\n"));
    Deno.exit(1);
  }
' "${fn_dirs[@]/%//deno.json}" web/deno.json
for fn_dir in "${fn_dirs[@]}"; do
  deno check --quiet --config "$fn_dir/deno.json" "$fn_dir/index.ts"
done
stray_locks="$(git ls-files --cached --others --exclude-standard '*deno.lock' ':!deno.lock')"
[ -z "$stray_locks" ] || die "only the root deno.lock is kept; remove: $stray_locks"
# The page's tests (web/src/*_test.ts: pure modules under Deno) are checked with everything else below.
mapfile -t web_files < <(git ls-files --cached --others --exclude-standard -- 'web/src/*.ts' ':!web/src/*_test.ts')
deno check --quiet --config web/deno.json "${web_files[@]}"
mapfile -t ts_files < <(git ls-files --cached --others --exclude-standard -- '*.ts' | grep -v -E '^(tools|supabase/functions/[^_][^/]*)/' | grep -v '/testdata/' | grep -v -x -F -f <(printf '%s\n' "${web_files[@]}"))
# --frozen: fails when the code imports something deno.lock does not hold as locked.
deno check --quiet --frozen "${ts_files[@]}"
log "fmt, lint, lock file and type checks passed"
