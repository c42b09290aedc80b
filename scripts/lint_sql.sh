#!/usr/bin/env bash
# Usage: bash scripts/lint_sql.sh   (the local stack must be up: bash scripts/stack.sh up)
#
# Lints the pipeline's PL/pgSQL with plpgsql_check (Debian's postgresql-15-plpgsql-check, installed by
# scripts/install.sh) against the local database:
#   1. `supabase db lint` (the pinned CLI) over every function of schema csv_import, printing warnings and
#      failing on errors;
#   2. the trigger functions, which the CLI skips (plpgsql_check needs the table a trigger fires on), each checked
#      against every table it is attached to; any error fails.
# Checks only: plpgsql_check is created and dropped inside a rolled-back transaction, the schema is unchanged.

source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

supabase db lint --db-url "$SUPABASE_DB_URL?sslmode=disable" --schema csv_import --level warning --fail-on error

errors="$(psql_local -At <<'SQL'
begin;
create extension if not exists plpgsql_check;
select format('%s on %s: %s', t.tgfoid::regprocedure, t.tgrelid::regclass, r)
from pg_catalog.pg_trigger t
join pg_catalog.pg_proc p on p.oid = t.tgfoid
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
join pg_catalog.pg_language l on l.oid = p.prolang
cross join lateral plpgsql_check_function(t.tgfoid, t.tgrelid, fatal_errors => false) as r
where n.nspname = 'csv_import' and l.lanname = 'plpgsql' and not t.tgisinternal and r like 'error:%';
rollback;
SQL
)"
if [ -n "$errors" ]; then
  printf '%s\n' "$errors" >&2
  die "plpgsql_check found errors in trigger functions"
fi
log "PL/pgSQL lint passed (supabase db lint and plpgsql_check of the trigger functions)"
