#!/usr/bin/env bash
# Usage: bash scripts/deploy.sh --project-ref <ref> [--db-url <url>] [--api-url <url>] [--env-file <file>]
#                               [--vault-credential internal-secret|service-key] [--redeploy-functions]
#                               [--workdir <dir>] [--dry-run]
#        (also `deno task deploy --project-ref <ref> …`)
#
# Deploys the pipeline to a hosted Supabase project in one command, step by step (docs/deploy.md):
#   1 link       supabase link --project-ref <ref>                 (skipped when already linked to <ref>)
#   2 db push    supabase db push (--db-url <url> | --linked) --include-all --skip-vault --yes (skipped when
#                up to date)
#   3 secrets    supabase secrets set --env-file <tmp>             (only the values whose digest differs)
#   4 functions  supabase functions deploy csv-import-register csv-import-chunk csv-import-inflate csv-import-dispatch
#                csv-import-health csv-import-api --project-ref <ref> --use-api   (skipped when unchanged since the last deploy)
#   5 vault      csv_import_api_url + csv_import_internal_secret (or csv_import_service_key), through psql:
#                updated if present and different, created if missing
#   6 bucket     the private bucket (csv-uploads, or STORAGE_BUCKET from the env file) through the Storage API
#
# Inputs (environment): SUPABASE_ACCESS_TOKEN (or a logged-in CLI); SUPABASE_DB_PASSWORD unless --db-url is
# given; SUPABASE_SECRET_KEY or SUPABASE_SERVICE_ROLE_KEY for the Storage API (else read with
# `supabase projects api-keys --reveal`); PIPELINE_INTERNAL_SECRET (else the one already in Vault, else a new
# random one); SUPABASE_CLI (path of the CLI; default the pinned one in tools/, which it must match).
#
# Invariants:
# - Every prerequisite is checked before anything changes; a missing one refuses (exit 2) with a message that
#   names it. Only `supabase link` (local files in supabase/.temp) precedes the remote read-only checks.
# - Idempotent: each step first reads the project's state and changes only what differs; a second run prints
#   "unchanged" for every step and "nothing changed". A failing step stops the run (exit 1) with its output.
# - No secret is printed, and none is put on a command line: keys, passwords and the internal secret reach the
#   CLI, psql and curl through files in a private temporary directory or stdin (the one exception: a --db-url
#   you give is passed on as `supabase db push --db-url`, the CLI's only way to take it); every line printed
#   is masked.
# - --dry-run prints every step with its command (secrets masked) and runs only the read-only checks.
# - Never touches the local stack: it reads neither SUPABASE_URL nor SUPABASE_DB_URL.

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUNCTIONS=(csv-import-register csv-import-chunk csv-import-inflate csv-import-dispatch csv-import-health csv-import-api)
DEFAULT_BUCKET="csv-uploads"

# --- output ------------------------------------------------------------------------------------------------

SECRETS_TO_MASK=()
remember_secret() { [ -n "${1:-}" ] && SECRETS_TO_MASK+=("$1"); return 0; }

# Replaces every remembered secret, and the password of any postgres URL, by ***.
mask() {
  local text="$1" s
  for s in "${SECRETS_TO_MASK[@]+"${SECRETS_TO_MASK[@]}"}"; do text="${text//"$s"/***}"; done
  # shellcheck disable=SC2001 # a regular expression, not a plain substitution
  sed -E 's#(postgres(ql)?://[^:/@[:space:]]+):[^@[:space:]]+@#\1:***@#g' <<<"$text"
}
say() { printf '[deploy] %s\n' "$(mask "$*")"; }
refuse() {
  printf '[deploy] refused: %s\n' "$(mask "$*")" >&2
  exit 2
}
fail() {
  printf '[deploy] failed: %s\n' "$(mask "$*")" >&2
  exit 1
}

# --- arguments ---------------------------------------------------------------------------------------------

PROJECT_REF="${SUPABASE_PROJECT_REF:-}"
DB_URL=""
API_URL=""
ENV_FILE=""
VAULT_CREDENTIAL="internal-secret"
REDEPLOY_FUNCTIONS=0
DRY_RUN=0
WORKDIR="$REPO_ROOT"

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --project-ref) PROJECT_REF="${2:-}"; shift 2 ;;
    --db-url) DB_URL="${2:-}"; shift 2 ;;
    --api-url) API_URL="${2:-}"; shift 2 ;;
    --env-file) ENV_FILE="${2:-}"; shift 2 ;;
    --vault-credential) VAULT_CREDENTIAL="${2:-}"; shift 2 ;;
    --redeploy-functions) REDEPLOY_FUNCTIONS=1; shift ;;
    --workdir) WORKDIR="${2:-}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) refuse "unknown argument '$1' (bash scripts/deploy.sh --help)" ;;
  esac
done
remember_secret "${SUPABASE_ACCESS_TOKEN:-}"
remember_secret "${SUPABASE_DB_PASSWORD:-}"
remember_secret "${SUPABASE_SECRET_KEY:-}"
remember_secret "${SUPABASE_SERVICE_ROLE_KEY:-}"
remember_secret "${PIPELINE_INTERNAL_SECRET:-}"

TMP="$(mktemp -d)"
chmod 700 "$TMP"
trap 'rm -rf "$TMP"' EXIT

# --- 0. prerequisites (local; nothing is contacted) -------------------------------------------------------

[ -n "$PROJECT_REF" ] || refuse "no project ref: pass --project-ref <ref> (the 20 letters in your project's dashboard URL)"
[[ "$PROJECT_REF" =~ ^[a-z]{20}$ ]] || refuse "project ref '$PROJECT_REF' is not 20 lowercase letters"
case "$VAULT_CREDENTIAL" in internal-secret | service-key) ;; *)
  refuse "--vault-credential must be internal-secret or service-key, not '$VAULT_CREDENTIAL'" ;;
esac
[ -d "$WORKDIR/supabase/migrations" ] && [ -d "$WORKDIR/supabase/functions" ] ||
  refuse "no supabase/migrations and supabase/functions under --workdir '$WORKDIR'"

for tool in psql curl jq openssl sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || case "$tool" in
    psql) refuse "psql not found: install the PostgreSQL client (e.g. apt-get install postgresql-client)" ;;
    *) refuse "$tool not found: install it (e.g. apt-get install $tool)" ;;
  esac
done

PINNED_CLI_VERSION="$(jq -r '.devDependencies.supabase' "$REPO_ROOT/tools/package.json")"
CLI="${SUPABASE_CLI:-$REPO_ROOT/tools/node_modules/.bin/supabase}"
[ -x "$CLI" ] || refuse "the pinned Supabase CLI is missing ($CLI): run bash scripts/install.sh"
cli_version="$("$CLI" --version 2>/dev/null | tail -1 | tr -d '[:space:]')" || true
[ "$cli_version" = "$PINNED_CLI_VERSION" ] ||
  refuse "Supabase CLI '$cli_version' at $CLI, but tools/package.json pins $PINNED_CLI_VERSION: run bash scripts/install.sh"

if [ -n "${SUPABASE_ACCESS_TOKEN:-}" ]; then
  token_source="SUPABASE_ACCESS_TOKEN"
elif [ -s "${HOME:-/nonexistent}/.supabase/access-token" ]; then
  token_source="~/.supabase/access-token"
elif "$CLI" projects list -o json >/dev/null 2>&1; then
  token_source="the CLI's login"
else
  refuse "no Supabase access token: set SUPABASE_ACCESS_TOKEN (https://supabase.com/dashboard/account/tokens) or run supabase login"
fi

if [ -z "$DB_URL" ] && [ -z "${SUPABASE_DB_PASSWORD:-}" ]; then
  refuse "no database credentials: pass --db-url <postgresql://…> or set SUPABASE_DB_PASSWORD (Dashboard → Project Settings → Database)"
fi
[ -z "$DB_URL" ] || [[ "$DB_URL" =~ ^postgres(ql)?:// ]] || refuse "--db-url is not a postgresql:// URL"
API_URL="${API_URL:-https://$PROJECT_REF.supabase.co}"
API_URL="${API_URL%/}"
[[ "$API_URL" =~ ^https?://[^/]+$ ]] || refuse "--api-url '$API_URL' is not an http(s) origin"

# The settings the functions read (supabase/functions/_shared/platform/config.ts), minus the injected SUPABASE_*.
mapfile -t KNOWN_SETTINGS < <(grep -oE '"[A-Z][A-Z0-9_]{2,}"' "$WORKDIR/supabase/functions/_shared/platform/config.ts" |
  tr -d '"' | grep -v '^SUPABASE_' | sort -u)
declare -A SETTINGS=()
SETTING_NAMES=()
if [ -n "$ENV_FILE" ]; then
  [ -r "$ENV_FILE" ] || refuse "env file '$ENV_FILE' cannot be read"
  line_no=0
  while IFS= read -r line || [ -n "$line" ]; do
    line_no=$((line_no + 1))
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] ||
      refuse "env file '$ENV_FILE' line $line_no is not NAME=value"
    name="${BASH_REMATCH[2]}"
    value="${BASH_REMATCH[3]}"
    [[ "$value" =~ ^\"(.*)\"$ || "$value" =~ ^\'(.*)\'$ ]] && value="${BASH_REMATCH[1]}"
    [[ "$name" == SUPABASE_* ]] && refuse "env file '$ENV_FILE': $name: names starting with SUPABASE_ are injected by the platform and cannot be set"
    printf '%s\n' "${KNOWN_SETTINGS[@]}" | grep -qxF "$name" ||
      refuse "env file '$ENV_FILE': $name is not a setting the functions read (see docs/configuration.md)"
    [ -n "$value" ] || refuse "env file '$ENV_FILE': $name is empty"
    [ -n "${SETTINGS[$name]+x}" ] || SETTING_NAMES+=("$name")
    SETTINGS[$name]="$value"
    [ "$name" = "PIPELINE_INTERNAL_SECRET" ] && remember_secret "$value"
  done <"$ENV_FILE"
fi
BUCKET="${SETTINGS[STORAGE_BUCKET]:-$DEFAULT_BUCKET}"

TEMP_DIR="$WORKDIR/supabase/.temp"
linked_ref="$(cat "$TEMP_DIR/project-ref" 2>/dev/null || true)"

# Runs the CLI in the work directory, output captured in $TMP/out; returns its exit status.
cli() {
  (cd "$WORKDIR" && "$CLI" "$@" --workdir "$WORKDIR") >"$TMP/out" 2>&1 </dev/null
}
# Runs a step's CLI command; on failure stops the deploy with the command's masked output.
run_step() {
  local step="$1"
  shift
  if ! cli "$@"; then
    fail "step '$step' (supabase $*) exited non-zero; nothing after it ran:
$(cat "$TMP/out")"
  fi
  while IFS= read -r l; do say "  $l"; done <"$TMP/out"
}

say "project $PROJECT_REF, API $API_URL, CLI $cli_version, token from $token_source$([ "$DRY_RUN" = 1 ] && echo ', dry run')"
CHANGED=()

# --- 1. link -------------------------------------------------------------------------------------------------

if [ "$linked_ref" = "$PROJECT_REF" ]; then
  say "1 link: unchanged (already linked to $PROJECT_REF)"
elif [ "$DRY_RUN" = 1 ]; then
  say "1 link: would run: supabase link --project-ref $PROJECT_REF"
else
  say "1 link: supabase link --project-ref $PROJECT_REF"
  run_step link link --project-ref "$PROJECT_REF"
  CHANGED+=(link)
fi

# --- read-only checks of the project ------------------------------------------------------------------------

# The database URL: --db-url, else the pooler URL `supabase link` stored (it has no password), else the
# direct host (IPv6 only unless the project has the IPv4 add-on).
DB_SOURCE="--db-url"
if [ -z "$DB_URL" ]; then
  enc_password="$(jq -rn --arg p "$SUPABASE_DB_PASSWORD" '$p|@uri')"
  remember_secret "$enc_password"
  if [ -s "$TEMP_DIR/pooler-url" ]; then
    pooler="$(tr -d '[:space:]' <"$TEMP_DIR/pooler-url")"
    rest="${pooler#*://}"
    user="${rest%%@*}"
    DB_URL="postgresql://${user%%:*}:$enc_password@${rest#*@}"
    DB_SOURCE="the linked project's pooler URL"
  else
    DB_URL="postgresql://postgres:$enc_password@db.$PROJECT_REF.supabase.co:5432/postgres"
    DB_SOURCE="the direct host"
  fi
fi
DB_URL_MASKED="$(mask "$DB_URL")"

# psql reads the URL from a connection service file, so the password is on no command line.
write_service_file() {
  # Parses postgresql://user:password@host:port/dbname?params into libpq service-file keywords.
  local rest="${DB_URL#*://}" userinfo hostpart dbpart host port params
  userinfo="${rest%%@*}"
  hostpart="${rest#*@}"
  dbpart="${hostpart#*/}"
  [ "$dbpart" = "$hostpart" ] && dbpart="postgres"
  hostpart="${hostpart%%/*}"
  params=""
  [[ "$dbpart" == *\?* ]] && params="${dbpart#*\?}" && dbpart="${dbpart%%\?*}"
  host="${hostpart%:*}"
  port="${hostpart##*:}"
  [ "$host" = "$hostpart" ] && port=5432
  host="${host#[}"
  host="${host%]}"
  urldecode() { printf '%b' "${1//%/\\x}"; }
  {
    echo "[deploy]"
    echo "host=$host"
    echo "port=$port"
    echo "dbname=$(urldecode "${dbpart:-postgres}")"
    echo "user=$(urldecode "${userinfo%%:*}")"
    [[ "$userinfo" == *:* ]] && echo "password=$(urldecode "${userinfo#*:}")"
    local kv
    IFS='&' read -r -a kvs <<<"$params"
    for kv in "${kvs[@]+"${kvs[@]}"}"; do [ -n "$kv" ] && echo "$(urldecode "${kv%%=*}")=$(urldecode "${kv#*=}")"; done
  } >"$TMP/pg_service.conf"
}
write_service_file
psql_run() {
  PGSERVICEFILE="$TMP/pg_service.conf" PGSERVICE=deploy PGPASSWORD="" PGOPTIONS="" \
    psql -X -q -A -t -v ON_ERROR_STOP=1 "$@"
}

DB_CHECKED=0
if psql_run -c 'select 1' >"$TMP/psql.out" 2>&1; then
  DB_CHECKED=1
elif [ "$DRY_RUN" = 1 ] && [ "$DB_SOURCE" = "the direct host" ]; then
  say "database checks skipped: cannot reach $DB_URL_MASKED (not linked yet: the pooler URL comes from supabase link; pass --db-url to check)"
else
  refuse "cannot connect to the database at $DB_URL_MASKED ($DB_SOURCE): $(head -3 "$TMP/psql.out")"
fi

vault_value() { # prints the decrypted Vault secret named $1 (empty when missing); never echoed to the user
  psql_run -c "select decrypted_secret from vault.decrypted_secrets where name = '$1'" 2>"$TMP/psql.err" ||
    refuse "cannot read Vault (vault.decrypted_secrets) as $(sed -n 's/^user=//p' "$TMP/pg_service.conf"): $(head -3 "$TMP/psql.err")"
}

# The Storage API key: given, else the project's secret key (or legacy service_role) from the Management API.
SERVICE_KEY="${SUPABASE_SECRET_KEY:-${SUPABASE_SERVICE_ROLE_KEY:-}}"
if [ -z "$SERVICE_KEY" ]; then
  if cli projects api-keys --project-ref "$PROJECT_REF" --reveal -o json; then
    SERVICE_KEY="$(jq -r 'first(.[] | select(.type == "secret") | .api_key) // first(.[] | select(.name == "service_role") | .api_key) // empty' \
      "$TMP/out" 2>/dev/null || true)"
  fi
  [ -n "$SERVICE_KEY" ] ||
    refuse "no service key for the Storage API: set SUPABASE_SECRET_KEY (an sb_secret_… key) or SUPABASE_SERVICE_ROLE_KEY, or make supabase projects api-keys --project-ref $PROJECT_REF --reveal work"
  rm -f "$TMP/out"
fi
remember_secret "$SERVICE_KEY"

# The internal secret: the function secret and Vault must hold the same value; one is generated only once.
INTERNAL_SECRET=""
if [ "$VAULT_CREDENTIAL" = internal-secret ]; then
  in_vault=""
  [ "$DB_CHECKED" = 1 ] && in_vault="$(vault_value csv_import_internal_secret)"
  INTERNAL_SECRET="${SETTINGS[PIPELINE_INTERNAL_SECRET]:-${PIPELINE_INTERNAL_SECRET:-$in_vault}}"
  if [ -z "$INTERNAL_SECRET" ]; then
    INTERNAL_SECRET="$(openssl rand -hex 32)"
    say "PIPELINE_INTERNAL_SECRET: none in Vault or the environment, $([ "$DRY_RUN" = 1 ] && echo 'would generate' || echo 'generated') a new one"
  elif [ -n "$in_vault" ] && [ "$INTERNAL_SECRET" != "$in_vault" ]; then
    say "PIPELINE_INTERNAL_SECRET: the given value replaces the one in Vault"
  fi
  remember_secret "$INTERNAL_SECRET"
  [ -n "${SETTINGS[PIPELINE_INTERNAL_SECRET]+x}" ] || SETTING_NAMES+=(PIPELINE_INTERNAL_SECRET)
  SETTINGS[PIPELINE_INTERNAL_SECRET]="$INTERNAL_SECRET"
fi

# The entry the mode does not write stays as it is; say when it matters (function_endpoint prefers the secret).
if [ "$DB_CHECKED" = 1 ] && [ "$VAULT_CREDENTIAL" = service-key ] && [ -n "$(vault_value csv_import_internal_secret)" ]; then
  say "note: Vault also holds csv_import_internal_secret, which the database sends instead of the key; delete it to use the key"
fi
if [ "$DB_CHECKED" = 1 ] && [ "$VAULT_CREDENTIAL" = internal-secret ] && [ -n "$(vault_value csv_import_service_key)" ]; then
  say "note: Vault also holds csv_import_service_key; unused while csv_import_internal_secret is set (delete it to keep the key out of the database)"
fi

# Storage API headers in a file (curl -H @file): an sb_ key goes as apikey only (hosted refuses it as Bearer),
# a legacy JWT as both.
{
  echo "apikey: $SERVICE_KEY"
  [[ "$SERVICE_KEY" == sb_* ]] || echo "Authorization: Bearer $SERVICE_KEY"
} >"$TMP/storage_headers"
storage() { # storage METHOD PATH [JSON]: prints the HTTP status, body in $TMP/body
  local args=(-sS -m 30 -o "$TMP/body" -w '%{http_code}' -X "$1" -H @"$TMP/storage_headers")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data "$3")
  curl "${args[@]}" "$API_URL/storage/v1/$2" 2>"$TMP/curl.err" || echo "000"
}
status="$(storage GET "bucket/$BUCKET")"
body_code="$(jq -r '.statusCode // empty' "$TMP/body" 2>/dev/null || true)"
if [ "$status" = 200 ]; then
  is_public="$(jq -r '.public' "$TMP/body")"
  [ "$is_public" = false ] ||
    refuse "bucket '$BUCKET' exists and is public (public: $is_public): uploads would be readable by anyone; make it private (Dashboard → Storage → Edit bucket) or choose another STORAGE_BUCKET"
  BUCKET_STATE=present
elif [ "$status" = 404 ] || { [ "$status" = 400 ] && [ "$body_code" = 404 ]; }; then
  BUCKET_STATE=missing
else
  refuse "cannot read bucket '$BUCKET' through the Storage API at $API_URL (HTTP $status): $(head -c 300 "$TMP/body" 2>/dev/null)$(head -c 300 "$TMP/curl.err")"
fi

# --- 2. db push ---------------------------------------------------------------------------------------------

if [ "$DB_SOURCE" = "--db-url" ]; then
  push_target=(--db-url "$DB_URL")
else
  push_target=(--linked)
fi
# --include-all: a migration dated before the project's newest one (20261203000000, which enables the extensions,
# on a project deployed before it existed) is applied too instead of refused; every migration is idempotent.
push_shown="supabase db push $(mask "${push_target[*]}") --include-all --skip-vault --yes"
if cli db push "${push_target[@]}" --include-all --dry-run; then
  pending="$(mask "$(cat "$TMP/out")")"
else
  pending=""
  if [ "$DRY_RUN" = 1 ]; then
    say "2 db push: cannot list pending migrations: $(mask "$(head -3 "$TMP/out")")"
  else
    fail "step 'db push' (supabase db push --dry-run) exited non-zero; nothing after it ran:
$(cat "$TMP/out")"
  fi
fi
# The CLI says "Local database is up to date." instead when --db-url is a loopback address on config.toml's db
# port (a `supabase start` stack), "Remote …" otherwise.
if grep -qE '(Remote|Local) database is up to date' <<<"$pending"; then
  say "2 db push: unchanged (the database is up to date)"
elif [ "$DRY_RUN" = 1 ]; then
  say "2 db push: would run: $push_shown"
  grep -E '\.sql' <<<"$pending" | while IFS= read -r l; do say "  $l"; done || true
else
  say "2 db push: $push_shown"
  run_step "db push" db push "${push_target[@]}" --include-all --skip-vault --yes
  CHANGED+=("db push")
fi

# --- 3. secrets ---------------------------------------------------------------------------------------------

declare -A DIGESTS=()
if cli secrets list --project-ref "$PROJECT_REF" -o json; then
  while IFS=$'\t' read -r n d; do DIGESTS[$n]="$d"; done < <(jq -r '.[] | [.name, .value] | @tsv' "$TMP/out" 2>/dev/null || true)
elif [ "$DRY_RUN" = 0 ]; then
  fail "step 'secrets' (supabase secrets list) exited non-zero; nothing after it ran:
$(cat "$TMP/out")"
fi
to_set=()
for name in "${SETTING_NAMES[@]+"${SETTING_NAMES[@]}"}"; do
  digest="$(printf '%s' "${SETTINGS[$name]}" | sha256sum | cut -d' ' -f1)"
  [ "${DIGESTS[$name]:-}" = "$digest" ] || to_set+=("$name")
done
if [ ${#to_set[@]} -eq 0 ]; then
  say "3 secrets: unchanged (${#SETTING_NAMES[@]} set, same digests)"
else
  : >"$TMP/secrets.env"
  shown=()
  for name in "${to_set[@]}"; do
    printf '%s=%s\n' "$name" "${SETTINGS[$name]}" >>"$TMP/secrets.env"
    if [ "$name" = PIPELINE_INTERNAL_SECRET ]; then shown+=("$name=***"); else shown+=("$name=$(mask "${SETTINGS[$name]}")"); fi
  done
  if [ "$DRY_RUN" = 1 ]; then
    say "3 secrets: would run: supabase secrets set --project-ref $PROJECT_REF --env-file <private file: ${shown[*]}>"
  else
    say "3 secrets: supabase secrets set --project-ref $PROJECT_REF --env-file <private file: ${shown[*]}>"
    run_step secrets secrets set --project-ref "$PROJECT_REF" --env-file "$TMP/secrets.env"
    CHANGED+=("secrets (${to_set[*]})")
  fi
fi

# --- 4. functions -------------------------------------------------------------------------------------------

functions_hash="$(cd "$WORKDIR/supabase" && find -L functions -type f ! -name '.env' ! -name 'deno.lock' | LC_ALL=C sort |
  xargs -d '\n' sha256sum | cat - config.toml | sha256sum | cut -d' ' -f1)"
state_file="$TEMP_DIR/csv-import-functions-$PROJECT_REF.sha256"
deployed_all=0
if cli functions list --project-ref "$PROJECT_REF" -o json; then
  deployed="$(jq -r '.[] | select((.status // "ACTIVE") == "ACTIVE") | .slug' "$TMP/out" 2>/dev/null || true)"
  deployed_all=1
  for f in "${FUNCTIONS[@]}"; do grep -qxF "$f" <<<"$deployed" || deployed_all=0; done
fi
deploy_cmd=(functions deploy "${FUNCTIONS[@]}" --project-ref "$PROJECT_REF" --use-api)
if [ "$REDEPLOY_FUNCTIONS" = 0 ] && [ "$deployed_all" = 1 ] && [ "$(cat "$state_file" 2>/dev/null)" = "$functions_hash" ]; then
  say "4 functions: unchanged (all five deployed, sources as at the last deploy from here; --redeploy-functions forces)"
elif [ "$DRY_RUN" = 1 ]; then
  say "4 functions: would run: supabase ${deploy_cmd[*]}"
else
  say "4 functions: supabase ${deploy_cmd[*]}"
  run_step functions "${deploy_cmd[@]}"
  mkdir -p "$TEMP_DIR"
  printf '%s\n' "$functions_hash" >"$state_file"
  CHANGED+=(functions)
fi

# --- 5. vault -----------------------------------------------------------------------------------------------

VAULT_NAMES=(csv_import_api_url)
VAULT_VALUES=("$API_URL")
if [ "$VAULT_CREDENTIAL" = internal-secret ]; then
  VAULT_NAMES+=(csv_import_internal_secret)
  VAULT_VALUES+=("$INTERNAL_SECRET")
else
  VAULT_NAMES+=(csv_import_service_key)
  VAULT_VALUES+=("$SERVICE_KEY")
fi
for v in "${VAULT_VALUES[@]}"; do [[ "$v" != *'$vault_value$'* ]] || refuse "a Vault value contains \$vault_value\$"; done
# One transaction (works through a transaction-mode pooler too): a temporary function compares each entry and
# creates or updates it only when it differs; prints name<TAB>create|update|unchanged. Values arrive on stdin.
vault_sql() { # vault_sql apply|check
  cat <<'SQL'
begin;
create function pg_temp.csv_import_put_secret(p_name text, p_value text, p_apply boolean) returns text
language plpgsql as $fn$
declare
  v_id uuid;
  v_old text;
begin
  select id, decrypted_secret into v_id, v_old from vault.decrypted_secrets where name = p_name;
  if v_id is null then
    if p_apply then perform vault.create_secret(p_value, p_name); end if;
    return 'create';
  elsif v_old is distinct from p_value then
    if p_apply then perform vault.update_secret(v_id, p_value); end if;
    return 'update';
  end if;
  return 'unchanged';
end
$fn$;
SQL
  local i apply=false
  [ "$1" = apply ] && apply=true
  for i in "${!VAULT_NAMES[@]}"; do
    printf "select '%s' || chr(9) || pg_temp.csv_import_put_secret('%s', \$vault_value\$%s\$vault_value\$, %s);\n" \
      "${VAULT_NAMES[$i]}" "${VAULT_NAMES[$i]}" "${VAULT_VALUES[$i]}" "$apply"
  done
  echo "commit;"
}
if [ "$DB_CHECKED" = 1 ]; then
  vault_sql check | psql_run >"$TMP/vault.out" 2>&1 || refuse "cannot read Vault: $(head -3 "$TMP/vault.out")"
  vault_plan="$(grep -v $'\tunchanged$' "$TMP/vault.out" | sed 's/\t/: /' | paste -sd, - || true)"
else
  vault_plan="not checked"
fi
if [ -z "$vault_plan" ]; then
  say "5 vault: unchanged (${VAULT_NAMES[*]})"
elif [ "$DRY_RUN" = 1 ]; then
  say "5 vault: would run: psql $DB_URL_MASKED (one transaction: vault.create_secret / vault.update_secret): $vault_plan"
else
  say "5 vault: psql $DB_URL_MASKED (one transaction): $vault_plan"
  vault_sql apply | psql_run >"$TMP/vault.out" 2>&1 || fail "step 'vault' (psql) failed; nothing after it ran:
$(cat "$TMP/vault.out")"
  CHANGED+=("vault ($vault_plan)")
fi

# --- 6. bucket ----------------------------------------------------------------------------------------------

bucket_json="$(jq -cn --arg id "$BUCKET" '{id: $id, name: $id, public: false}')"
if [ "$BUCKET_STATE" = present ]; then
  say "6 bucket: unchanged ('$BUCKET' exists, private)"
elif [ "$DRY_RUN" = 1 ]; then
  say "6 bucket: would run: POST $API_URL/storage/v1/bucket $bucket_json"
else
  say "6 bucket: POST $API_URL/storage/v1/bucket $bucket_json"
  status="$(storage POST bucket "$bucket_json")"
  [ "$status" = 200 ] || fail "step 'bucket' (POST /storage/v1/bucket) answered HTTP $status: $(head -c 300 "$TMP/body")"
  CHANGED+=(bucket)
fi

# --- summary ------------------------------------------------------------------------------------------------

if [ "$DRY_RUN" = 1 ]; then
  say "dry run: nothing was changed"
elif [ ${#CHANGED[@]} -eq 0 ]; then
  say "done: nothing changed (the project was already deployed)"
else
  summary="$(printf '%s; ' "${CHANGED[@]}")"
  say "done: changed ${summary%; }"
  say "next: curl -H 'apikey: <secret key>' $API_URL/functions/v1/csv-import-health (docs/deploy.md, Check)"
fi
