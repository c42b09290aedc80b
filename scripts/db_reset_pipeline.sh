#!/usr/bin/env bash
# Usage: bash scripts/db_reset_pipeline.sh
#
# Development helper: drops the pipeline's schema from the local database and re-applies the migrations, for
# when a migration file was edited (or the history folded) before it was ever deployed. Touches nothing but
# csv_import, its cron jobs, its storage trigger (under its current name or the pre-fold one) and the migration history: every row of
# supabase_migrations.schema_migrations goes (all of them are csv_import's), so a version that is no longer in
# supabase/migrations, such as one of the pre-fold set, is forgotten too.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/local-stack/postgres.sh"
psql_local -c "drop trigger if exists tg_objects__csv_import_register on storage.objects" \
  -c "drop trigger if exists csv_import_on_object_change on storage.objects" \
  -c "drop schema if exists csv_import cascade" \
  -c "select cron.unschedule(jobid) from cron.job where jobname like 'csv-import-%'" \
  -c "delete from supabase_migrations.schema_migrations" >/dev/null
pg_apply
