-- Enables the platform extensions the pipeline uses, as Supabase's docs show, so that the migrations alone take an
-- empty project (hosted, `supabase start`, `supabase db reset`, a preview branch, the local stack) to a working
-- pipeline: pg_cron (reconcile and lease jobs, cron.job_run_details in the health report) and pg_net (every call
-- of a pipeline function).
--
-- Why it is dated before every other migration (20261203, the others 20261204…): the migrations after it call
-- cron.schedule and net.http_post, and the SQL-language functions that read cron.job / cron.job_run_details are
-- validated when they are created, so the extensions must exist first. A database that already applied the
-- 20261204… set before this file existed (it had pg_cron enabled by hand) records it with
-- `supabase db push --include-all` / `supabase migration up --include-all`; it changes nothing there.
--
-- Sources:
-- - pg_cron: https://supabase.com/docs/guides/cron/install (supabase/supabase apps/docs/content/guides/cron/install.mdx):
--   `create extension pg_cron with schema pg_catalog; grant usage on schema cron to postgres;
--   grant all privileges on all tables in schema cron to postgres;`. On hosted and in the Supabase image the
--   non-superuser postgres may create it because supautils lists it in supautils.privileged_extensions (and
--   forces schema pg_catalog, supautils.extensions_parameter_overrides); supautils then runs the image's
--   after-create script (supabase/postgres ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql),
--   which already gives postgres these grants (with grant option; cron.job read-only). The local stack does the
--   same through trusted control files and an event trigger (local-stack/postgres.sh, local-stack/sql/platform.sql).
-- - pg_net: `create extension if not exists pg_net schema extensions`, as `supabase start` does
--   (supabase/cli apps/cli-go/internal/db/start/templates/webhook.sql); its objects live in schema net.
--
-- Replaces: README step 1 (enable pg_cron by hand before `db push`); the local bootstrap no longer pre-creates
-- either extension. Locks: CREATE EXTENSION's catalog locks, once. Idempotent: each is created only when missing,
-- and the grants are no-ops when postgres holds them already. Callers: `supabase db push` / `migration up` /
-- `db reset`.

do $$
begin
  -- Guarded rather than `if not exists` alone: a project that enabled pg_cron from the dashboard has it already.
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    create extension pg_cron with schema pg_catalog;
  end if;
end
$$;
grant usage on schema cron to postgres;
grant all privileges on all tables in schema cron to postgres;

do $$
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_net') then
    create extension pg_net with schema extensions;
  end if;
end
$$;
