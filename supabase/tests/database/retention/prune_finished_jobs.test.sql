-- csv_import.prune_finished_jobs: deletes finished jobs older than `keep` with their chunks, rejects, batch_log
-- rows and key claims (and at once the key claims of jobs that load no more), in bounded steps (max_jobs,
-- max_rows), never an active job; the index on rejects.chunk_id; the pg_cron job.
-- The jobs here are 400 days old and pruned with keep = 365 days, so jobs of other tests (younger) are untouched.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(29);

create schema pgtap_prune;
create table pgtap_prune.jobs (name text primary key, id bigint not null);
create function pgtap_prune.job(p_name text) returns bigint language sql stable as $$
  select id from pgtap_prune.jobs where name = p_name
$$;
-- A job in `status`, finished `age` ago (null: not finished), with `chunks` chunks, `rejects` rejects spread over
-- them and one batch_log row per chunk.
create function pgtap_prune.make(p_name text, p_status text, p_age interval, p_chunks int, p_rejects int)
returns bigint language plpgsql as $$
declare v_id bigint;
begin
  insert into csv_import.jobs (bucket_id, object_name, object_version, status, created_at, finished_at, chunk_count,
                               rejects_stored)
  values ('csv-uploads', 'pgtap_prune/' || p_name || '-' || gen_random_uuid() || '.csv', 'v1',
          p_status::csv_import.job_status, now() - interval '401 days', now() - p_age, p_chunks, p_rejects)
  returning id into v_id;
  insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, status)
  select v_id, 'load', i, i * 100, i * 100 + 100, 'succeeded' from generate_series(0, p_chunks - 1) i;
  insert into csv_import.rejects (job_id, chunk_id, line_number, reason, raw_record)
  select v_id, (select id from csv_import.chunks where job_id = v_id and chunk_index = g % p_chunks), g + 1, 'bad', 'x'
  from generate_series(1, p_rejects) g;
  insert into csv_import.batch_log (job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped)
  select v_id, id, 10, 10, 0, 0 from csv_import.chunks where job_id = v_id;
  insert into pgtap_prune.jobs values (p_name, v_id);
  return v_id;
end $$;
create function pgtap_prune.left(p_name text) returns text language sql stable as $$
  select format('jobs %s chunks %s rejects %s batch_log %s',
    (select count(*) from csv_import.jobs where id = pgtap_prune.job(p_name)),
    (select count(*) from csv_import.chunks where job_id = pgtap_prune.job(p_name)),
    (select count(*) from csv_import.rejects where job_id = pgtap_prune.job(p_name)),
    (select count(*) from csv_import.batch_log where job_id = pgtap_prune.job(p_name)))
$$;

-- Finished long ago, oldest first: ok1 (400 d), failed (399 d), cancelled (398 d), big (397 d, 300 rejects),
-- ok2 (396 d). Younger: recent (10 d). Active, however old: running, queued, registering (their finished_at set
-- as a stale value would be after a retry that did not clear it).
select pgtap_prune.make('ok1', 'succeeded', '400 days', 2, 3);
select pgtap_prune.make('failed', 'failed', '399 days', 1, 1);
select pgtap_prune.make('cancelled', 'cancelled', '398 days', 0, 0);
select pgtap_prune.make('big', 'succeeded_with_rejects', '397 days', 3, 300);
select pgtap_prune.make('ok2', 'succeeded', '396 days', 1, 0);
select pgtap_prune.make('recent', 'succeeded', '10 days', 1, 2);
select pgtap_prune.make('running', 'running', '400 days', 2, 2);
select pgtap_prune.make('queued', 'queued', '400 days', 1, 0);
select pgtap_prune.make('registering', 'registering', '400 days', 0, 0);
select pgtap_prune.make('failed_recent', 'failed', '2 days', 1, 0);
select pgtap_prune.make('superseded', 'cancelled', '2 days', 1, 0);
update csv_import.jobs set superseded_by = pgtap_prune.job('recent') where id = pgtap_prune.job('superseded');
-- Key claims (write_keyed): of jobs that will load no more (succeeded, superseded, gone) they go at the next
-- call; of jobs that may still load (running, or failed and retryable) they stay until the job is pruned.
insert into csv_import.key_claims (job_id, key, line)
select pgtap_prune.job(j), jsonb_build_array(k), k
from unnest(array['ok1', 'recent', 'recent', 'running', 'running', 'failed_recent', 'superseded']) with ordinality
  as t(j, k);
insert into csv_import.key_claims (job_id, key, line) values (-42, '[1]', 1);
create function pgtap_prune.claims(p_name text) returns bigint language sql stable as $$
  select count(*) from csv_import.key_claims where job_id = pgtap_prune.job(p_name)
$$;
-- A job that stays (recent) superseded by one that goes (cancelled): the reference must not block the delete.
update csv_import.jobs set superseded_by = pgtap_prune.job('cancelled') where id = pgtap_prune.job('recent');

select has_index('csv_import', 'rejects', 'rejects_chunk_idx', array['chunk_id'], 'rejects.chunk_id is indexed');
select is((select schedule from cron.job where jobname = 'csv-import-prune-finished-jobs'), '*/10 * * * *',
  'pg_cron runs the pruning every 10 minutes');
select is((select command from cron.job where jobname = 'csv-import-prune-finished-jobs'),
  'select csv_import.prune_finished_jobs()', 'with the default age');
select throws_ok($$select csv_import.prune_finished_jobs(interval '12 hours')$$, '22023',
  'keep must be at least 1 day, got 12:00:00', 'keep under a day is refused');

-- Step 1: max_jobs 2 → the two oldest, with everything of theirs.
create temp table step1 as select csv_import.prune_finished_jobs(interval '365 days', 2) as r;
select is((select r - 'key_claims' from step1),
  '{"jobs": 2, "chunks": 3, "rejects": 4, "batch_log": 3}'::jsonb, 'step 1: the two oldest jobs and their rows');
select cmp_ok((select (r ->> 'key_claims')::int from step1), '>=', 5,
  'step 1: and the key claims of jobs that load no more');
select is(
  format('ok1 %s recent %s superseded %s gone %s running %s failed_recent %s', pgtap_prune.claims('ok1'),
    pgtap_prune.claims('recent'), pgtap_prune.claims('superseded'),
    (select count(*) from csv_import.key_claims where job_id = -42), pgtap_prune.claims('running'),
    pgtap_prune.claims('failed_recent')),
  'ok1 0 recent 0 superseded 0 gone 0 running 2 failed_recent 1',
  'claims of succeeded, superseded and deleted jobs went; of running and retryable jobs they stay');
select is(pgtap_prune.left('ok1'), 'jobs 0 chunks 0 rejects 0 batch_log 0', 'ok1 is gone with its rows');
select is(pgtap_prune.left('failed'), 'jobs 0 chunks 0 rejects 0 batch_log 0', 'failed is gone with its rows');
select is(pgtap_prune.left('cancelled'), 'jobs 1 chunks 0 rejects 0 batch_log 0', 'cancelled waits for the next step');

-- Step 2: max_rows 100 → cancelled (0 rows); big (303 rows) would exceed it and waits.
select is(csv_import.prune_finished_jobs(interval '365 days', 500, 100),
  '{"jobs": 1, "chunks": 0, "rejects": 0, "batch_log": 0, "key_claims": 0}'::jsonb,
  'step 2: max_rows stops before a job whose rejects would exceed it');
select is((select superseded_by from csv_import.jobs where id = pgtap_prune.job('recent')), null,
  'a kept job no longer points at a pruned one');
-- Step 3: the first job of a step is always taken, whatever its size.
select is(csv_import.prune_finished_jobs(interval '365 days', 500, 100),
  '{"jobs": 1, "chunks": 3, "rejects": 300, "batch_log": 3, "key_claims": 0}'::jsonb, 'step 3: one big job, alone');
select is(pgtap_prune.left('big'), 'jobs 0 chunks 0 rejects 0 batch_log 0', 'big is gone with its rows');
select is(csv_import.prune_finished_jobs(interval '365 days'),
  '{"jobs": 1, "chunks": 1, "rejects": 0, "batch_log": 1, "key_claims": 0}'::jsonb,
  'step 4: the last old finished job');
select is(csv_import.prune_finished_jobs(interval '365 days'),
  '{"jobs": 0, "chunks": 0, "rejects": 0, "batch_log": 0, "key_claims": 0}'::jsonb, 'then nothing: idempotent');

-- Never an active or a younger job.
select is(pgtap_prune.left('running'), 'jobs 1 chunks 2 rejects 2 batch_log 2', 'a running job stays');
select is(pgtap_prune.left('queued'), 'jobs 1 chunks 1 rejects 0 batch_log 1', 'a queued job stays');
select is(pgtap_prune.left('registering'), 'jobs 1 chunks 0 rejects 0 batch_log 0', 'a registering job stays');
select is(pgtap_prune.left('recent'), 'jobs 1 chunks 1 rejects 2 batch_log 1', 'a job younger than keep stays');
select is((csv_import.prune_finished_jobs(interval '5 days') ->> 'jobs')::int >= 1, true,
  'with a shorter keep it goes too');
select is(pgtap_prune.left('recent'), 'jobs 0 chunks 0 rejects 0 batch_log 0', 'recent is gone with its rows');
select is(pgtap_prune.left('running'), 'jobs 1 chunks 2 rejects 2 batch_log 2', 'the running job still stays');
select is(pgtap_prune.claims('running'), 2::bigint, 'with its key claims');
-- A failed job's claims go with the job.
update csv_import.jobs set finished_at = now() - interval '400 days' where id = pgtap_prune.job('failed_recent');
select is(csv_import.prune_finished_jobs(interval '365 days') -> 'key_claims', '1'::jsonb,
  'a pruned job takes its key claims with it');
select is(pgtap_prune.claims('failed_recent'), 0::bigint, 'failed_recent has no claims left');

-- A job row locked by another session (a retry or cancel in progress) is skipped, not waited for. One transaction
-- cannot hold a lock against itself, so this checks the clause.
select matches(pg_get_functiondef('csv_import.prune_finished_jobs(interval, int, bigint)'::regprocedure),
  'for update skip locked', 'job rows are taken FOR UPDATE SKIP LOCKED');

-- Privileges: the service role may call it, clients may not.
select ok(has_function_privilege('service_role', 'csv_import.prune_finished_jobs(interval, int, bigint)', 'execute'),
  'service_role may prune');
select ok(not has_function_privilege('authenticated', 'csv_import.prune_finished_jobs(interval, int, bigint)',
  'execute'), 'authenticated may not');

select * from finish();
rollback;
