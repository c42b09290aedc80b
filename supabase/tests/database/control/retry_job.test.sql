-- csv_import.retry_job: a redrive of a failed or cancelled job re-runs only its dead and cancelled chunks (attempts
-- reset, progress markers kept, so every committed batch stays) and the job can finish; a job that is not failed or
-- cancelled, or has nothing to re-run, is refused with a clear error; a never-planned job registers again.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(28);

\ir ../_fixtures/jobs.psql

create function pgtap_csv.commit(p_job text, p_index int, p_seq int, p_first bigint, p_next bigint, p_parsed bigint,
  p_loaded bigint, p_final boolean) returns jsonb language sql as $$
  select csv_import.commit_batch(pgtap_csv.chunk(p_job, 'load', p_index), pgtap_csv.token(p_job, 'load', p_index), p_seq,
    p_first, p_next, 10, p_parsed, p_loaded, 0, '[]', p_final) - 'rejects_stored'
$$;

-- Job A: load chunks [20, 120) and [120, 200), scan 0; one attempt per chunk. Chunk 0 succeeds, the scan completes,
-- chunk 1 commits batch 0 and then fails: it is dead, and the job fails.
do $$ begin
  perform pgtap_csv.plan_job('A', 200, 20, 100, '{"max_attempts": 1}');
  perform pgtap_csv.lease('A', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 0);
  perform pgtap_csv.commit('A', 0, 0, 20, 125, 10, 10, true);
  perform pgtap_csv.lease('A', 'scan', 0);
  perform csv_import.complete_scan(pgtap_csv.chunk('A', 'scan', 0), pgtap_csv.token('A', 'scan', 0), 0::smallint, 10, true);
  perform pgtap_csv.lease('A', 'load', 1);
  perform csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 1), pgtap_csv.token('A', 'load', 1), 0);
  perform pgtap_csv.commit('A', 1, 0, 125, 160, 4, 4, false);
  perform csv_import.fail_chunk(pgtap_csv.chunk('A', 'load', 1), pgtap_csv.token('A', 'load', 1), 'Storage answered 500');
end $$;
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('A')), 'failed',
  'fixture: the job failed because chunk 1 is dead');

select is(csv_import.retry_job(pgtap_csv.job('A')),
  jsonb_build_object('job_id', pgtap_csv.job('A'), 'status', 'running', 'chunks_requeued', 1, 'registration_requested', false),
  'retry_job requeues the one dead chunk and reopens the job');
select results_eq(
  $$ select status::text, error, finished_at, rows_parsed, rows_loaded, bytes_loaded
     from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('running', null::text, null::timestamptz, 14::bigint, 14::bigint, 100::bigint) $$,
  'the job runs again: error and finish cleared, totals are every committed batch''s (bytes: the succeeded chunks'')');
select results_eq(
  $$ select kind::text, chunk_index, status::text, attempts, batches_committed, resume_offset, rows_loaded, lease_token
     from csv_import.chunks where job_id = pgtap_csv.job('A') order by kind, chunk_index $$,
  $$ values ('load', 0, 'succeeded', 1, 1, 125::bigint, 10::bigint, null::uuid),
            ('load', 1, 'pending', 0, 1, 160::bigint, 4::bigint, null::uuid),
            ('scan', 0, 'succeeded', 1, 0, null::bigint, 0::bigint, null::uuid) $$,
  'only the dead chunk re-runs: pending, attempts 0, its committed batch and progress marker kept');
select is((select available_at from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 1)), now(),
  'it is ready at once');
select ok(pgtap_csv.chunk('A', 'load', 1) in (select chunk_id from csv_import.claim_chunks(100, 1000)),
  'claim_chunks hands it out again');

-- Refused while it runs (also: a second retry changes nothing).
select throws_ok(format('select csv_import.retry_job(%s)', pgtap_csv.job('A')), '55000',
  format('Job %s is running: only a failed or cancelled job can be retried', pgtap_csv.job('A')),
  'retry of a running job is refused with a clear error');

-- The re-run resumes after batch 0 and the job can finish.
select is(csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 1),
  (select lease_token from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 1)), 1), 'ok',
  'the re-run chunk resumes at batch 1');
update pgtap_csv.leases set token = (select lease_token from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 1))
where chunk_id = pgtap_csv.chunk('A', 'load', 1);
select is(pgtap_csv.commit('A', 1, 1, 160, 200, 3, 3, true),
  '{"job_status": "succeeded", "job_finished": true}'::jsonb, 'its final batch finishes the job');
select results_eq(
  $$ select status::text, error, rows_parsed, rows_loaded, bytes_loaded from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('succeeded', null::text, 17::bigint, 17::bigint, 180::bigint) $$,
  'the job succeeded with every row counted once');
select throws_ok(format('select csv_import.retry_job(%s)', pgtap_csv.job('A')), '55000',
  format('Job %s is succeeded: only a failed or cancelled job can be retried', pgtap_csv.job('A')),
  'retry of a succeeded job is refused with a clear error');

-- Cancelled job: every cancelled chunk re-runs; a job that never started is queued again.
do $$ begin
  perform pgtap_csv.plan_job('C', 300, 0, 100);
  perform csv_import.cancel_job(pgtap_csv.job('C'));
end $$;
select is(csv_import.retry_job(pgtap_csv.job('C')),
  jsonb_build_object('job_id', pgtap_csv.job('C'), 'status', 'queued', 'chunks_requeued', 5, 'registration_requested', false),
  'a cancelled job that never started: all five chunks requeued, the job queued');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('C') and status = 'pending'), 5,
  '… all pending');

-- Nothing to re-run: failed on its reject rate (every chunk succeeded).
do $$ begin
  perform pgtap_csv.plan_job('R', 100, 0, 100);
  perform pgtap_csv.lease('R', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('R', 'load', 0), pgtap_csv.token('R', 'load', 0), 0);
  perform csv_import.commit_batch(pgtap_csv.chunk('R', 'load', 0), pgtap_csv.token('R', 'load', 0), 0, 0, 100, 3, 2, 1, 0,
    '[{"line": 2, "column": "qty", "reason": "Not a number", "raw": "x"}]', true);
end $$;
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('R')), 'failed',
  'fixture: a job failed on its reject rate');
select throws_like(format('select csv_import.retry_job(%s)', pgtap_csv.job('R')),
  format('Job %s has no dead or cancelled chunks to re-run (it ended: Rejected 1 of 2 rows%%', pgtap_csv.job('R')),
  'retry of a job with nothing to re-run is refused, saying why it ended');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('R')), 'failed', '… and it stays failed');

-- Never planned: registration failed, so it registers again.
do $$
declare v_id bigint;
begin
  insert into storage.objects (bucket_id, name, version) values ('csv-uploads', 'pgtap/unplanned.csv', 'v1');
  select id into v_id from csv_import.jobs where object_name = 'pgtap/unplanned.csv';
  update csv_import.jobs set register_attempts = 5 where id = v_id;
  insert into pgtap_csv.jobs values ('U', v_id);
  perform csv_import.fail_registration(v_id, 'No import profile matches pgtap/unplanned.csv');
end $$;
select is(csv_import.retry_job(pgtap_csv.job('U')),
  jsonb_build_object('job_id', pgtap_csv.job('U'), 'status', 'registering', 'chunks_requeued', 0, 'registration_requested', true),
  'a job whose registration failed registers again');
select results_eq(
  $$ select status::text, finished_at, register_attempts from csv_import.jobs where id = pgtap_csv.job('U') $$,
  $$ values ('registering', null::timestamptz, 1) $$,
  'registering, attempts restarted (one request sent)');

-- Superseded, gone, unknown.
do $$ begin
  perform pgtap_csv.plan_job('S', 300, 0, 100);
  perform pgtap_csv.plan_job('S2', 300, 0, 100);
  perform csv_import.stop_job(pgtap_csv.job('S'), 'cancelled', 'Superseded', pgtap_csv.job('S2'));
  perform pgtap_csv.plan_job('G', 300, 0, 100);
  perform csv_import.cancel_job(pgtap_csv.job('G'));
  update storage.objects o set name = o.name || '.moved' from csv_import.jobs j
  where j.id = pgtap_csv.job('G') and o.name = j.object_name;
  -- D2: cancelled mid-job, then a different file is uploaded under the same name (x-upsert keeps the object's id).
  perform pgtap_csv.plan_job('D', 300, 0, 100);
  perform csv_import.cancel_job(pgtap_csv.job('D'));
  perform pgtap_csv.overwrite('D');
end $$;
insert into pgtap_csv.jobs select 'E', j.id from csv_import.jobs j
where j.object_version = 'v2' and j.object_name = (select object_name from csv_import.jobs where id = pgtap_csv.job('D'));
select throws_ok(format('select csv_import.retry_job(%s)', pgtap_csv.job('D')), '55000',
  format('The object csv-uploads/%s was overwritten after job %s started: job %s imports the new version; retry that one instead',
         (select object_name from csv_import.jobs where id = pgtap_csv.job('D')), pgtap_csv.job('D'), pgtap_csv.job('E')),
  'a cancelled job whose object was overwritten is refused, naming the new version''s job (it would read the new bytes)');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('D')), 'cancelled', '… and it stays cancelled');
select throws_like(format('select csv_import.retry_job(%s)', pgtap_csv.job('S')),
  format('Job %s was superseded by job %s%%retry that one instead', pgtap_csv.job('S'), pgtap_csv.job('S2')),
  'a superseded job is refused');
select throws_like(format('select csv_import.retry_job(%s)', pgtap_csv.job('G')),
  '%no longer exists; upload it again', 'a job whose object is gone is refused');
select throws_ok('select csv_import.retry_job(-1)', 'P0002', 'Job -1 does not exist', 'an unknown job raises');

-- Privileges ----------------------------------------------------------------------------------------------------------
select ok(not has_function_privilege('anon', 'csv_import.retry_job(bigint)', 'execute'), 'anon may not retry');
select ok(not has_function_privilege('authenticated', 'csv_import.retry_job(bigint)', 'execute'),
  'authenticated users may not retry');
select ok(has_function_privilege('service_role', 'csv_import.retry_job(bigint)', 'execute'), 'the service role may retry');
select ok(not has_function_privilege('authenticated', 'csv_import.health(interval, interval, numeric)', 'execute'),
  'authenticated users may not read health');
select ok(has_function_privilege('service_role', 'csv_import.health(interval, interval, numeric)', 'execute'),
  'the service role may read health');

select * from finish();
rollback;
