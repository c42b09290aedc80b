#!/usr/bin/env bash
# Usage: bash scripts/db_reset_pipeline.sh
#
# Development helper: drops the pipeline's schema from the local database and re-applies the migrations, for
# when a migration file was edited (or the history folded) before it was ever deployed. Touches nothing but
# csv_import, its cron jobs, its storage trigger (under its current name or the pre-fold one) and the migration history: every row of
# supabase_migrations.schema_migrations goes (all of them are csv_import's), so a version that is no longer in
# supabase/migrations, such as one of the pre-fold set, is forgotten too. pg_cron and pg_net are dropped as well
# (as the platform's superuser, who owns them), so that, as after `supabase db reset`, the migrations alone
# (20261203000000_enable_platform_extensions.sql first) bring the database back to a working pipeline.
source "$(dirname "$0")/lib.sh"
source "$REPO_ROOT/local-stack/postgres.sh"
# The storage trigger is dropped by the platform's superuser: postgres may create triggers on storage.objects (its
# TRIGGER privilege) but not drop them here (hosted allows it through supautils.drop_trigger_grants, which the local
# stack does not imitate; no migration drops one).
psql_admin -c "drop trigger if exists tg_objects__csv_import_register on storage.objects" \
  -c "drop trigger if exists csv_import_on_object_change on storage.objects" >/dev/null
psql_local -c "drop schema if exists csv_import cascade" \
  -c "select cron.unschedule(jobid) from cron.job where jobname like 'csv-import-%'" \
  -c "delete from supabase_migrations.schema_migrations" >/dev/null
psql_admin -c "drop extension if exists pg_cron cascade" -c "drop extension if exists pg_net cascade" >/dev/null
pg_apply
