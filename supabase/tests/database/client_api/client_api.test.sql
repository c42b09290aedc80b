-- The client API (migration 20261210000000_client_api): a signed-in user sees, through csv_import_api, exactly the
-- imports of the objects they uploaded and their rejects, and cancels only their own; another user sees and
-- cancels none of them; anon may not use the schema at all.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(21);

\ir ../_fixtures/jobs.psql
grant usage on schema pgtap_csv to anon, authenticated;
grant select on all tables in schema pgtap_csv to anon, authenticated;

-- Alice owns a running job (load chunk 0 committed a batch with a reject) and a finished one; Bob owns nothing.
do $$ begin
  perform pgtap_csv.plan_job('A', 300, 0, 100);
  perform pgtap_csv.plan_job('A2', 300, 0, 100);
  perform pgtap_csv.plan_job('OTHER', 300, 0, 100);
  update csv_import.jobs set owner_id = 'a17a17a1-aaaa-4aaa-8aaa-aaaaaaaaaaaa'
  where id in (pgtap_csv.job('A'), pgtap_csv.job('A2'));
  update csv_import.jobs set owner_id = 'c17c17c1-cccc-4ccc-8ccc-cccccccccccc' where id = pgtap_csv.job('OTHER');
  perform pgtap_csv.lease('A', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 0);
  perform csv_import.commit_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 0,
    0, 60, 5, 4, 3, 0, '[{"line": 3, "column": "qty", "reason": "Not a number", "raw": "x"}]', false);
  update csv_import.jobs set status = 'running', started_at = now() - interval '10 seconds',
    first_row_at = now() - interval '10 seconds'
  where id = pgtap_csv.job('A');
  insert into csv_import.rejects (job_id, line_number, reason, raw_record)
  values (pgtap_csv.job('OTHER'), 7, 'Someone else''s reject', 'o');
end $$;

-- Alice ----------------------------------------------------------------------------------------------------------
set local role authenticated;
set local "request.jwt.claims" = '{"sub": "a17a17a1-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "role": "authenticated"}';
select results_eq($$ select id from csv_import_api.imports order by id $$,
  $$ select unnest(array[pgtap_csv.job('A'), pgtap_csv.job('A2')]) $$,
  'a user sees exactly the imports of the objects she uploaded');
select results_eq(
  format($$ select status, bytes_total, bytes_done, rows_parsed, rows_loaded, rows_rejected, dry_run
            from csv_import_api.imports where id = %s $$, pgtap_csv.job('A')),
  $$ values ('running', 300::bigint, 60::numeric, 4::numeric, 3::numeric, 1::numeric, false) $$,
  '… with its progress: bytes, rows, rejects');
select ok((select eta_seconds between 30 and 60 from csv_import_api.imports where id = pgtap_csv.job('A')),
  '… and an ETA while running (240 bytes left at 60 bytes per 10 s: ~40 s)');
select is((select eta_seconds from csv_import_api.imports where id = pgtap_csv.job('A2')), null,
  '… but none for an import that is not running');
select results_eq($$ select import_id, line, column_name, reason, raw from csv_import_api.import_rejects $$,
  $$ select pgtap_csv.job('A'), 3::bigint, 'qty', 'Not a number', 'x' $$,
  'she sees the rejects of her imports only');
select throws_ok(format('select csv_import_api.cancel_import(%s)', pgtap_csv.job('OTHER')), 'P0002',
  format('Import %s not found', pgtap_csv.job('OTHER')), 'she cannot cancel another user''s import: not found');
select throws_ok('select csv_import_api.cancel_import(-1)', 'P0002', 'Import -1 not found',
  '… the same answer as for an import that does not exist');
select throws_ok($$ select * from csv_import.cancel_job(1) $$, '42501', null,
  'the pipeline''s cancel_job stays closed to her');

-- Bob ------------------------------------------------------------------------------------------------------------
set local "request.jwt.claims" = '{"sub": "b17b17b1-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "role": "authenticated"}';
select is_empty($$ select id from csv_import_api.imports $$, 'another user sees none of her imports');
select is_empty($$ select line from csv_import_api.import_rejects $$, '… nor their rejects');
select throws_ok(format('select csv_import_api.cancel_import(%s)', pgtap_csv.job('A')), 'P0002',
  format('Import %s not found', pgtap_csv.job('A')), '… and cannot cancel them: not found');
set local "request.jwt.claims" = '{"role": "authenticated"}';
select is_empty($$ select id from csv_import_api.imports $$, 'a token without a user id sees nothing');
select throws_ok(format('select csv_import_api.cancel_import(%s)', pgtap_csv.job('A')), 'P0002', null,
  '… and cancels nothing');

-- anon -----------------------------------------------------------------------------------------------------------
set local role anon;
set local "request.jwt.claims" = '{"role": "anon"}';
select throws_ok($$ select * from csv_import_api.imports $$, '42501', 'permission denied for schema csv_import_api',
  'anon may not read imports');
select throws_ok($$ select * from csv_import_api.import_rejects $$, '42501',
  'permission denied for schema csv_import_api', '… nor rejects');
select throws_ok(format('select csv_import_api.cancel_import(%s)', pgtap_csv.job('A')), '42501', null,
  '… nor cancel');

-- Alice cancels hers ---------------------------------------------------------------------------------------------
set local role authenticated;
set local "request.jwt.claims" = '{"sub": "a17a17a1-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "role": "authenticated"}';
select is(csv_import_api.cancel_import(pgtap_csv.job('A')), 'cancelled', 'she cancels her running import');
select is(csv_import_api.cancel_import(pgtap_csv.job('A')), 'cancelled', '… a second cancel changes nothing');
select results_eq(format('select status, error from csv_import_api.imports where id = %s', pgtap_csv.job('A')),
  $$ values ('cancelled', 'Cancelled by its owner') $$, '… and the view says so');
reset role;
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('OTHER')), 'queued',
  'the other user''s import is untouched');

select ok(not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime')
  or exists (select 1 from pg_catalog.pg_publication_tables
             where pubname = 'supabase_realtime' and schemaname = 'csv_import' and tablename = 'jobs'),
  'csv_import.jobs is published to Realtime wherever the supabase_realtime publication exists');

select * from finish();
rollback;
