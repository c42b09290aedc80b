-- A job loads one version of its object: the trigger records the version and ETag, batches are refused once the
-- object holds another version, and a job's worker that meets the new version stops the job as superseded.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(11);

\ir ../_fixtures/jobs.psql

do $$ begin
  perform pgtap_csv.plan_job('A', 300, 0, 100);
  perform pgtap_csv.lease('A', 'load', 0);
end $$;

select results_eq(
  $$ select object_version, object_etag from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('v1', '"pgtap"') $$, 'the job records the object''s version and its ETag (metadata.eTag)');
select is(csv_import.chunk_context(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0)) ->> 'object_etag',
  '"pgtap"', 'the chunk''s context carries the ETag its reads must match');
select ok((select csv_import.object_is_current(bucket_id, object_name, object_version) from csv_import.jobs
           where id = pgtap_csv.job('A')), 'the object holds the job''s version');

-- An overwrite stops the job through the storage trigger (a batch in flight is refused at commit: see
-- concurrency/supersede_during_batch, which needs two sessions).
select pgtap_csv.overwrite('A');
select results_eq(
  $$ select j.status::text, n.object_version, n.object_etag
     from csv_import.jobs j join csv_import.jobs n on n.id = j.superseded_by where j.id = pgtap_csv.job('A') $$,
  $$ values ('cancelled', 'v2', '"pgtap-v2"') $$,
  'the old job is cancelled and superseded by the new version''s job (with its own ETag)');
select is(csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0), 0), 'stopped',
  'the old job''s next batch is refused');

-- When the trigger could not stop the job (simulated: the job is reopened), the version check refuses.
do $$ begin
  perform pgtap_csv.plan_job('B', 300, 0, 100);
  perform pgtap_csv.lease('B', 'load', 0);
  perform pgtap_csv.overwrite('B');
  update csv_import.jobs set status = 'running', error = null, superseded_by = null, finished_at = null
  where id = pgtap_csv.job('B');
  update csv_import.chunks set status = 'running', lease_token = pgtap_csv.token('B', 'load', 0),
    lease_until = now() + interval '20 seconds'
  where id = pgtap_csv.chunk('B', 'load', 0);
end $$;
select is(csv_import.begin_batch(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0), 0), 'superseded',
  'begin_batch refuses a job whose object holds another version');
select is(csv_import.commit_batch(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0), 0, 0, 50, 5, 4, 4, 0,
    '[]', false), '{"refused": "superseded"}'::jsonb, 'so does commit_batch');
select is(csv_import.release_stopped_chunk(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0)), 'cancelled',
  'the worker hands the chunk back …');
select results_eq(
  $$ select status::text, error, superseded_by is not null from csv_import.jobs where id = pgtap_csv.job('B') $$,
  $$ values ('cancelled', format('The object %s changed during the import (superseded by job %s); the rows of this version that were committed stay',
                                 (select object_name from csv_import.jobs where id = pgtap_csv.job('B')),
                                 (select id from csv_import.jobs where object_version = 'v2'
                                    and object_name = (select object_name from csv_import.jobs where id = pgtap_csv.job('B')))), true) $$,
  '… and the job stops, superseded by the new version''s job');

-- stop_job takes the job row only: it does not wait for a chunk a batch holds (SKIP LOCKED), and says so.
do $$ begin
  perform pgtap_csv.plan_job('C', 300, 0, 100);
end $$;
select ok(csv_import.stop_job(pgtap_csv.job('C'), 'cancelled', 'Stop'), 'stop_job stops a queued job');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('C') and status = 'cancelled'),
  (select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('C')), '… and cancels every chunk nobody holds');

select * from finish();
rollback;
