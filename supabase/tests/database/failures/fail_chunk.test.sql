-- csv_import.fail_chunk / csv_import._retry_or_dead: SQL decides retry with backoff, dead-letter, or job failure.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(25);

\ir ../_fixtures/jobs.psql
create function pgtap_csv.fail(p_job text, p_kind text, p_index int, p_error text, p_fatal boolean default false)
returns text language sql as $$
  select csv_import.fail_chunk(pgtap_csv.chunk(p_job, p_kind, p_index), pgtap_csv.token(p_job, p_kind, p_index), p_error, p_fatal)
$$;
create function pgtap_csv.state(p_job text, p_kind text, p_index int)
returns table (status text, attempts int, lease_token uuid, lease_until timestamptz, last_error text)
language sql stable as $$
  select status::text, attempts, lease_token, lease_until, last_error from csv_import.chunks
  where id = pgtap_csv.chunk(p_job, p_kind, p_index)
$$;
create function pgtap_csv.in_backoff(p_job text, p_kind text, p_index int, p_attempt int) returns boolean language sql as $$
  select available_at between now() + csv_import.retry_delay(p_attempt, jitter => 0)
                          and now() + csv_import.retry_delay(p_attempt, jitter => 1)
  from csv_import.chunks where id = pgtap_csv.chunk(p_job, p_kind, p_index)
$$;

-- Transient failures: retry with backoff, then dead-letter ------------------------------------------------------------
-- Job T: load chunks [0, 100) and [100, 200), scan 0; 3 attempts.
do $$ begin
  perform pgtap_csv.plan_job('T', 200, 0, 100, '{"max_attempts": 3}');
  perform pgtap_csv.lease('T', 'load', 0);
end $$;
select is(pgtap_csv.fail('T', 'load', 0, 'Storage returned 503'), 'retry', 'attempt 1 of 3 fails transiently: retry');
select results_eq($$ select * from pgtap_csv.state('T', 'load', 0) $$,
  $$ values ('pending', 1, null::uuid, null::timestamptz, 'Storage returned 503 (attempt 1 of 3)') $$,
  'the chunk is pending again, its lease released, the error says which attempt');
select ok(pgtap_csv.in_backoff('T', 'load', 0, 1), 'it becomes available after retry_delay(1): 2.5–5 s');
select is(pgtap_csv.fail('T', 'load', 0, 'Storage returned 503'), 'lease_lost',
  'the same (now stale) token cannot fail it again');

do $$ begin perform pgtap_csv.lease('T', 'load', 0); end $$;
select is(pgtap_csv.fail('T', 'load', 0, 'Connection reset'), 'retry', 'attempt 2 of 3: retry');
select ok(pgtap_csv.in_backoff('T', 'load', 0, 2), '… after retry_delay(2): 5–10 s');
select is((select last_error from pgtap_csv.state('T', 'load', 0)), 'Connection reset (attempt 2 of 3)', '… saying so');

do $$ begin perform pgtap_csv.lease('T', 'load', 0); end $$;
select is(pgtap_csv.fail('T', 'load', 0, 'Connection reset'), 'dead', 'attempt 3 of 3: dead-lettered');
select results_eq($$ select * from pgtap_csv.state('T', 'load', 0) $$,
  $$ values ('dead', 3, null::uuid, null::timestamptz, 'Connection reset (attempt 3 of 3)') $$,
  'the dead chunk keeps its reason');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('T')), 'queued',
  'the job waits for its other chunks');

-- The job's other chunks finish: the job fails with the dead chunk's reason.
do $$ begin
  perform pgtap_csv.lease('T', 'scan', 0);
  perform csv_import.complete_scan(pgtap_csv.chunk('T', 'scan', 0), pgtap_csv.token('T', 'scan', 0), 0::smallint, 3, false);
  perform pgtap_csv.lease('T', 'load', 1);
  perform csv_import.begin_batch(pgtap_csv.chunk('T', 'load', 1), pgtap_csv.token('T', 'load', 1), 0);
end $$;
select is(csv_import.commit_batch(pgtap_csv.chunk('T', 'load', 1), pgtap_csv.token('T', 'load', 1), 0, 100, 200, 9,
  5, 5, 0, '[]', true) ->> 'job_status', 'failed', 'when the last chunk finishes, the job fails');
select is((select error from csv_import.jobs where id = pgtap_csv.job('T')),
  'Chunk 0 (load, bytes 0–100) failed: Connection reset (attempt 3 of 3)', '… with the dead chunk''s reason');

-- A dead scan: the load chunks after it can never learn their entry state ---------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('D', 300, 0, 100, '{"max_attempts": 1}');
  perform pgtap_csv.lease('D', 'scan', 0);
end $$;
select is(pgtap_csv.fail('D', 'scan', 0, 'Storage returned 500'), 'dead', 'a scan at its last attempt is dead-lettered');
do $$ begin
  perform pgtap_csv.lease('D', 'scan', 1);
  perform csv_import.complete_scan(pgtap_csv.chunk('D', 'scan', 1), pgtap_csv.token('D', 'scan', 1), 0::smallint, 3, false);
  perform pgtap_csv.lease('D', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('D', 'load', 0), pgtap_csv.token('D', 'load', 0), 0);
  perform csv_import.commit_batch(pgtap_csv.chunk('D', 'load', 0), pgtap_csv.token('D', 'load', 0), 0, 0, 100, 4,
    3, 3, 0, '[]', true);
  perform csv_import.reconcile();
end $$;
select results_eq(
  $$ select status::text, error from csv_import.jobs where id = pgtap_csv.job('D') $$,
  $$ values ('failed', 'Chunk 0 (scan, bytes 0–100) failed: Storage returned 500 (attempt 1 of 1)') $$,
  'the job still ends (failed, with the scan''s reason) once every chunk that can run has run');
select is_empty(
  $$ select 1 from csv_import.chunks where job_id = pgtap_csv.job('D') and status in ('pending', 'running') $$,
  'no chunk is left waiting forever');

-- Fatal failure: the file's fault fails the job at once ------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('F', 400, 0, 100);
  perform pgtap_csv.lease('F', 'scan', 0);
  perform pgtap_csv.lease('F', 'scan', 1);
  perform pgtap_csv.lease('F', 'load', 0);
end $$;
select is(pgtap_csv.fail('F', 'load', 0, 'Record at line 7 is larger than the 1 MiB limit', true), 'job_failed',
  'a fatal failure fails the job');
select results_eq(
  $$ select status::text, error, finished_at from csv_import.jobs where id = pgtap_csv.job('F') $$,
  $$ values ('failed', 'Record at line 7 is larger than the 1 MiB limit', now()) $$,
  'at once, with the message');
select results_eq(
  $$ select status::text, count(*)::int, count(lease_token)::int from csv_import.chunks where job_id = pgtap_csv.job('F')
     group by status $$,
  $$ values ('cancelled', 7, 0) $$,
  'all its unfinished chunks (pending and running) are cancelled and their leases released');
select is((select last_error from pgtap_csv.state('F', 'load', 0)), 'Record at line 7 is larger than the 1 MiB limit',
  'the failing chunk keeps the reason');
select is(csv_import.complete_scan(pgtap_csv.chunk('F', 'scan', 1), pgtap_csv.token('F', 'scan', 1), 0::smallint, 1, false),
  'lease_lost', 'a running scan of the failed job can no longer complete');
select is(pgtap_csv.fail('F', 'scan', 0, 'later', false), 'lease_lost', '… nor fail');

-- Failures in a job that has already ended ---------------------------------------------------------------------------------
select is(csv_import.fail_chunk(-1, gen_random_uuid(), 'x'), 'lease_lost', 'an unknown chunk: lease_lost');

-- _retry_or_dead directly (shared with reconcile) ---------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('R', 300, 0, 100, '{"max_attempts": 9}');
  perform pgtap_csv.lease('R', 'load', 0);
end $$;
select is(csv_import._retry_or_dead(pgtap_csv.chunk('R', 'load', 0), 'Lease expired', 4, 5), 'retry',
  '_retry_or_dead: attempts below the maximum retry');
select ok(pgtap_csv.in_backoff('R', 'load', 0, 4), '… after retry_delay(attempts)');
select is(csv_import._retry_or_dead(pgtap_csv.chunk('R', 'load', 0), 'Lease expired', 5, 5), 'dead',
  '… at the maximum: dead');

select * from finish();
rollback;
