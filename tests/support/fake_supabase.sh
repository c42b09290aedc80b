#!/usr/bin/env bash
# A stand-in for the Supabase CLI, for tests/conformance/deploy_test.ts only: scripts/deploy.sh runs it as
# SUPABASE_CLI. It records every call and keeps a fake project's state, so a test can see which commands ran,
# with which arguments, in which order, and that a second deploy finds nothing to do.
#
#   FAKE_LOG       file that gets one line per call: the arguments, tab-separated (env-file contents as
#                  NAME=sha256 of the value, never the value)
#   FAKE_STATE     directory holding the fake project (pushed, secrets.json, functions.json)
#   FAKE_FAIL      "<command> <subcommand>" (e.g. "functions deploy") that fails with exit 1 and a message
#   FAKE_VERSION   what --version prints (default 2.117.0)
#   FAKE_LOGGED_OUT=1  `projects list` fails (no login)
#   FAKE_SERVICE_KEY   the key `projects api-keys --reveal -o json` returns (type "secret")
#
# Invariants: it answers the read-only commands deploy.sh uses (db push --dry-run, secrets list, functions
# list, projects api-keys, projects list) in the JSON/text shapes of CLI 2.117.0 as far as deploy.sh reads them,
# and changes its state only for link, db push, secrets set and functions deploy.
set -euo pipefail

if [ "${1:-}" = "--version" ]; then
  echo "${FAKE_VERSION:-2.117.0}"
  exit 0
fi
state="${FAKE_STATE:?FAKE_STATE is not set}"
mkdir -p "$state"

line="$(printf '%s\t' "$@")"
env_file=""
workdir="."
prev=""
for a in "$@"; do
  [ "$prev" = "--env-file" ] && env_file="$a"
  [ "$prev" = "--workdir" ] && workdir="$a"
  prev="$a"
done
if [ -n "$env_file" ]; then
  while IFS='=' read -r n v; do
    line+="$n=$(printf '%s' "$v" | sha256sum | cut -d' ' -f1)"$'\t'
  done <"$env_file"
fi
printf '%s\n' "${line%$'\t'}" >>"${FAKE_LOG:?FAKE_LOG is not set}"

cmd="${1:-} ${2:-}"
if [ -n "${FAKE_FAIL:-}" ] && [ "$cmd" = "$FAKE_FAIL" ] && [[ " $* " != *" --dry-run "* ]]; then
  echo "fake supabase: $FAKE_FAIL failed: unexpected status 500" >&2
  exit 1
fi

case "$cmd" in
  "projects list")
    [ "${FAKE_LOGGED_OUT:-0}" = 1 ] && { echo "Access token not provided." >&2; exit 1; }
    echo "[]"
    ;;
  "projects api-keys")
    jq -cn --arg k "${FAKE_SERVICE_KEY:-}" '[{name: "default", type: "secret", api_key: $k}]'
    ;;
  "link "*)
    ref="$3"
    [ "$ref" = "--project-ref" ] && ref="$4"
    mkdir -p "$workdir/supabase/.temp"
    printf '%s' "$ref" >"$workdir/supabase/.temp/project-ref"
    echo "Finished supabase link."
    ;;
  "db push")
    if [[ " $* " == *" --dry-run "* ]]; then
      if [ -f "$state/pushed" ]; then
        echo "Remote database is up to date."
      else
        echo "DRY RUN: migrations will *not* be pushed to the database."
        echo "Would push these migrations:"
        for f in "$workdir"/supabase/migrations/*.sql; do echo " • $(basename "$f")"; done
      fi
    else
      touch "$state/pushed"
      echo "Applying migrations…"
      echo "Finished supabase db push."
    fi
    ;;
  "secrets list")
    cat "$state/secrets.json" 2>/dev/null || echo "[]"
    ;;
  "secrets set")
    current="$(cat "$state/secrets.json" 2>/dev/null || echo "[]")"
    while IFS='=' read -r n v; do
      d="$(printf '%s' "$v" | sha256sum | cut -d' ' -f1)"
      current="$(jq -c --arg n "$n" --arg d "$d" '[.[] | select(.name != $n)] + [{name: $n, value: $d}]' <<<"$current")"
    done <"$env_file"
    printf '%s\n' "$current" >"$state/secrets.json"
    echo "Finished supabase secrets set."
    ;;
  "functions list")
    cat "$state/functions.json" 2>/dev/null || echo "[]"
    ;;
  "functions deploy")
    slugs=()
    for a in "${@:3}"; do [[ "$a" == csv-import-* ]] && slugs+=("$a"); done
    printf '%s\n' "${slugs[@]}" | jq -Rsc 'split("\n") | map(select(. != "")) | map({slug: ., status: "ACTIVE", version: 1})' \
      >"$state/functions.json"
    echo "Deployed Functions on project: ${slugs[*]}"
    ;;
  *)
    echo "fake supabase: unexpected command: $*" >&2
    exit 64
    ;;
esac
