-- Security hardening (migration 20261204000900_create_target_security): which tables an import may write (csv_import.check_target and
-- the profiles trigger), the narrower credential the database sends when Vault holds an internal secret, the
-- stored-rejects note, and that clients cannot reach the database's secrets (Vault, pg_net's queue).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(17);

create schema "pgtap Sec; --";
create table "pgtap Sec; --"."Ta""ble" (id int);
create view "pgtap Sec; --".v as select 1 as id;
create table pgtap_sec_plain (id int);

-- check_target ---------------------------------------------------------------------------------------------------
select is(csv_import.check_target('"pgtap Sec; --"."Ta""ble"'), '"pgtap Sec; --"."Ta""ble"',
  'a hostile-but-legal name resolves to itself, quoted');
select is(csv_import.check_target('Public.PGTAP_SEC_PLAIN'), 'public.pgtap_sec_plain',
  'an unquoted mixed-case name resolves as SQL folds it');
select throws_ok($$ select csv_import.check_target('pg_catalog.pg_authid') $$, '42501',
  'Target table pg_catalog.pg_authid is in schema pg_catalog, which imports may not write (system, Supabase platform and csv_import schemas are protected)',
  'a system catalog is refused');
select throws_like($$ select csv_import.check_target('csv_import.jobs') $$, '%in schema csv_import, which imports may not write%',
  'the pipeline''s own tables are refused');
select throws_like($$ select csv_import.check_target('auth.users') $$, '%in schema auth, which imports may not write%',
  'Supabase platform tables are refused');
select throws_ok($$ select csv_import.check_target('"pgtap Sec; --".v') $$, '42809',
  'Target "pgtap Sec; --".v is not a table (a view); imports write ordinary or partitioned tables only', 'a view is refused');
select throws_ok($$ select csv_import.check_target('public.nope') $$, '42P01', 'Target table public.nope does not exist',
  'a missing table');
select throws_ok($$ select csv_import.check_target('nope') $$, '42P01',
  'Target table nope does not exist (write it schema-qualified, e.g. public.nope)', 'an unqualified name never resolves');
select throws_like($$ select csv_import.check_target('public.t; drop table x') $$,
  '%is not a valid table name%', 'a malformed name is refused as such, never executed');
select is(csv_import.is_protected_schema('pg_temp_3'), true, 'temporary schemas are protected');

-- profiles -----------------------------------------------------------------------------------------------------------
select throws_ok($$ insert into csv_import.profiles (name, path_pattern, target_table) values ('pgtap-sec', 'x/%', 'auth.users') $$,
  '42501', 'Profile pgtap-sec: target_table auth.users is in schema auth, which imports may not write (system, Supabase platform and csv_import schemas are protected)',
  'a profile naming a protected schema is refused when written');
select lives_ok($$ insert into csv_import.profiles (name, path_pattern, target_table) values ('pgtap-sec', 'x/%', 'public.later') $$,
  'a profile may name a table created later');
select throws_like($$ update csv_import.profiles set target_table = 'Vault.Secrets' where name = 'pgtap-sec' $$,
  '%is in schema vault%', '… and cannot be changed to a protected one (names fold as SQL folds them)');

-- function_endpoint with an internal secret --------------------------------------------------------------------------
select vault.create_secret('pgtap-internal-secret', 'csv_import_internal_secret');
select is((select headers from csv_import.function_endpoint('dispatch')),
  '{"Content-Type": "application/json", "x-pipeline-secret": "pgtap-internal-secret"}'::jsonb,
  'with csv_import_internal_secret in Vault, queued requests carry only that secret, never the service key');

-- job_progress says when stored rejects are capped --------------------------------------------------------------------
insert into csv_import.jobs (bucket_id, object_name, object_version, rejects_stored, status)
values ('pgtap-sec', 'capped.csv', 'v1', 2, 'running');
insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, rows_rejected, status)
select id, 'load', 0, 0, 10, 5, 'succeeded' from csv_import.jobs where bucket_id = 'pgtap-sec';
select is((select rejects_note from csv_import.job_progress p join csv_import.jobs j on j.id = p.job_id
           where j.bucket_id = 'pgtap-sec'),
  'Only the first 2 of 5 rejects are stored (the per-job limit, MAX_STORED_REJECTS or the profile''s max_stored_rejects); all are counted',
  'job_progress notes capped rejects');

-- The database's secrets are out of clients' reach ------------------------------------------------------------------
-- Not schema net: pg_net grants it (and ALL on its tables) to PUBLIC (supabase/pg_net sql/pg_net.sql) and the Supabase
-- image to anon and authenticated (supabase/postgres init-scripts/00000000000003-post-setup.sql, grant_pg_net_access);
-- revoking it has no lasting effect on hosted (https://supabase.com/docs/guides/troubleshooting/revoking-access-to-pg_net-objects-has-no-effect-0bbc16).
-- Queued headers carry only x-pipeline-secret when it is set, and net is not an API schema (config.toml [api] schemas).
select is_empty($$ select r from unnest(array['anon', 'authenticated']) r
  where has_schema_privilege(r, 'vault', 'usage') or has_schema_privilege(r, 'cron', 'usage') $$,
  'anon and authenticated cannot use the vault or cron schemas');
select is_empty($$ select p.oid::regprocedure from pg_proc p where p.pronamespace = 'csv_import'::regnamespace
  and p.prosecdef and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%') $$,
  'every SECURITY DEFINER function pins its search_path');

select * from finish();
rollback;
