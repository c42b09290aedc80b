-- csv_import.cancel_job: a cancelled job stops dispatching, its in-flight chunk stops at the next batch boundary
-- keeping what it committed, nothing is half-written, a second cancel changes nothing; only the service role may
-- call it.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(17);

\ir ../_fixtures/jobs.psql

-- Job A: three load chunks of 100 bytes (two scans); load chunk 0 is in flight and has committed batch 0.
do $$ begin
  perform pgtap_csv.plan_job('A', 300, 0, 100);
  perform pgtap_csv.lease('A', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 0);
  perform csv_import.commit_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 0,
    0, 60, 5, 4, 3, 0, '[{"line": 3, "column": "qty", "reason": "Not a number", "raw": "x"}]', false);
end $$;

select is(csv_import.cancel_job(pgtap_csv.job('A')),
  jsonb_build_object('job_id', pgtap_csv.job('A'), 'status', 'cancelled', 'cancelled', true, 'chunks_cancelled', 5),
  'cancel_job cancels the job and its five unfinished chunks');
select results_eq(
  $$ select status::text, error, finished_at, rejects_status::text from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('cancelled', 'Cancelled by request', now(), 'pending') $$,
  'the job is cancelled with the default reason, and its rejects file becomes due');
select is(
  (select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('A') and status in ('pending', 'running')), 0,
  'no chunk of the job is left to dispatch or run');
select is(
  (select count(*)::int from csv_import.claim_chunks(100, 1000) c where c.job_id = pgtap_csv.job('A')), 0,
  'claim_chunks hands out nothing of a cancelled job');
select is(csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 1), 'stopped',
  'the in-flight chunk''s next batch is refused: stopped');
select throws_ok(
  format($$ select csv_import.commit_batch(%s, %L, 1, 0, 100, 9, 4, 4, 0, '[]', true) $$,
         pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0)),
  '40001', null, 'a batch that slipped past begin_batch cannot commit (its rows roll back with it)');
select results_eq(
  $$ select status::text, batches_committed, resume_offset, rows_loaded, lease_token from csv_import.chunks
     where id = pgtap_csv.chunk('A', 'load', 0) $$,
  $$ values ('cancelled', 1, 60::bigint, 3::bigint, null::uuid) $$,
  'the committed batch stays: progress marker and counts kept, lease dropped');
select is((select count(*)::int from csv_import.rejects where job_id = pgtap_csv.job('A')), 1,
  'the committed batch''s reject stays');

-- Idempotent ----------------------------------------------------------------------------------------------------------
select is(csv_import.cancel_job(pgtap_csv.job('A'), 'Again'),
  jsonb_build_object('job_id', pgtap_csv.job('A'), 'status', 'cancelled', 'cancelled', false, 'chunks_cancelled', 0),
  'a second cancel changes nothing');
select is((select error from csv_import.jobs where id = pgtap_csv.job('A')), 'Cancelled by request',
  '… not even the reason');

-- Other states --------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('EMPTY', 10, 10, 100); -- header only: succeeded at registration
  insert into csv_import.jobs (bucket_id, object_name, object_version) values ('csv-uploads', 'pgtap/registering.csv', 'v1');
end $$;
select is(csv_import.cancel_job(pgtap_csv.job('EMPTY')),
  jsonb_build_object('job_id', pgtap_csv.job('EMPTY'), 'status', 'succeeded', 'cancelled', false, 'chunks_cancelled', 0),
  'a finished job is left as it is');
select is(
  csv_import.cancel_job((select id from csv_import.jobs where object_name = 'pgtap/registering.csv'), 'Wrong file') ->> 'status',
  'cancelled', 'a registering job can be cancelled');
select is((select error from csv_import.jobs where object_name = 'pgtap/registering.csv'), 'Wrong file',
  '… with the given reason');
select throws_ok($$ select csv_import.cancel_job(-1) $$, 'P0002', 'Job -1 does not exist', 'an unknown job raises');

-- Privileges ----------------------------------------------------------------------------------------------------------
select ok(not has_function_privilege('anon', 'csv_import.cancel_job(bigint, text)', 'execute'), 'anon may not cancel');
select ok(not has_function_privilege('authenticated', 'csv_import.cancel_job(bigint, text)', 'execute'),
  'authenticated users may not cancel');
select ok(has_function_privilege('service_role', 'csv_import.cancel_job(bigint, text)', 'execute'),
  'the service role may cancel');

select * from finish();
rollback;
