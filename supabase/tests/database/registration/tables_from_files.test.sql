-- A table made from the file (20261209000300_tables_from_files.sql): the profile columns and their checks, the
-- zero-configuration profile for auto/, and the dropping of a finished dry run's stand-in table.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(8);

select results_eq(
  $$ select path_pattern, target_table, target_schema, create_table from csv_import.profiles
     where name = 'tables-from-files' $$,
  $$ values ('auto/%', null::text, 'public', true) $$,
  'a profile makes a table in public for every file under auto/');
select is((csv_import.resolve_profile('csv-uploads', 'auto/sales.csv')).name, 'tables-from-files',
  'resolve_profile finds it for a file under auto/');

select throws_ok($$ insert into csv_import.profiles (name, path_pattern, target_table) values ('pgtap-none', 'n/%', null) $$,
  '23514', null, 'a profile without a target table must make one per file');
select throws_ok($$ insert into csv_import.profiles (name, path_pattern, create_table) values ('pgtap-noschema', 'n/%', true) $$,
  '23514', null, '... in a named schema');
select throws_ok($$ insert into csv_import.profiles (name, path_pattern, create_table, target_schema)
  values ('pgtap-auth', 'n/%', true, 'auth') $$, '23514', null, 'never in a protected schema');
select lives_ok($$ insert into csv_import.profiles (name, path_pattern, create_table, target_schema)
  values ('pgtap-ok', 'n/%', true, 'public') $$, 'a per-file profile in public');

-- A finished dry run's stand-in is dropped by prune_finished_jobs, whatever the job's age; a running one's is kept.
create table csv_import_scratch.pgtap_done (a int);
create table csv_import_scratch.pgtap_running (a int);
insert into csv_import.jobs (bucket_id, object_name, object_version, status, dry_run, scratch_table, finished_at)
values ('csv-uploads', 'pgtap/done.csv', 'v1', 'validated', true, 'csv_import_scratch.pgtap_done', now()),
       ('csv-uploads', 'pgtap/running.csv', 'v1', 'running', true, 'csv_import_scratch.pgtap_running', null);
select csv_import.prune_finished_jobs();
select results_eq(
  $$ select to_regclass('csv_import_scratch.pgtap_done')::text, to_regclass('csv_import_scratch.pgtap_running')::text $$,
  $$ values (null::text, 'csv_import_scratch.pgtap_running') $$,
  'the finished dry run''s stand-in is dropped, the running one''s kept');
select is((select scratch_table from csv_import.jobs where object_name = 'pgtap/done.csv'), null,
  'and the job no longer names it');

select * from finish();
rollback;
