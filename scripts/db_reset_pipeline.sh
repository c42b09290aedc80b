#!/usr/bin/env bash
# Usage: bash scripts/db_reset_pipeline.sh
#
# Development helper: drops the pipeline's schema from the local database and re-applies the migrations, for
# when a migration file was edited before it was ever deployed. Touches nothing but csv_import, its cron job,
# its storage trigger and the migration history rows of supabase/migrations.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/local-stack/postgres.sh"
versions="$(find "$REPO_ROOT/supabase/migrations" -name '*.sql' -printf "'%f'," | sed -E "s/_[^']*'/'/g; s/,$//")"
psql_local -c "drop trigger if exists csv_import_on_object_change on storage.objects" \
  -c "drop schema if exists csv_import cascade" \
  -c "select cron.unschedule(jobid) from cron.job where jobname like 'csv-import-%'" \
  -c "delete from supabase_migrations.schema_migrations where version in (${versions:-''})" >/dev/null
pg_apply
