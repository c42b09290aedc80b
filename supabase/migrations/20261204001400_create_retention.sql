-- Retention: finished jobs older than a configurable age are deleted with their chunks, rejects and batch_log rows,
-- in bounded steps, by pg_cron every 10 minutes.
--
-- Invariants:
-- - Only finished jobs (succeeded, succeeded_with_rejects, failed, cancelled) whose finished_at is older than
--   `keep`; never a registering, queued or running job, nor one a concurrent retry_job or cancel_job holds (the job
--   rows are locked FOR UPDATE SKIP LOCKED and their status re-checked under the lock).
-- - Bounded: at most `max_jobs` jobs per call, taken oldest first while their rejects and chunks together
--   (jobs.rejects_stored + chunk_count) stay within `max_rows`; the first job is always taken, so every call
--   progresses (a job holds at most MAX_STORED_REJECTS rejects). A backlog is worked off over several runs.
-- - `keep` is at least one day: csv_import.reconcile re-registers object versions of the last day that have no job,
--   so a younger job must not disappear.
-- - Objects in Storage (the uploads and the rejects CSVs) are left alone: they are the bucket owner's.
--
-- Where the age is configured: the pg_cron job's command. The default keeps 30 days; to keep 90:
--   select cron.schedule('csv-import-prune-finished-jobs', '*/10 * * * *',
--                        $$select csv_import.prune_finished_jobs(interval '90 days')$$);
-- (cron.schedule with an existing name replaces that job's schedule and command).
--
-- batch_log rows older than a day are deleted hourly (csv_import.prune_batch_log).

-- Deletes batch_log rows older than `keep`; returns how many. Idempotent. Caller: pg_cron (hourly, below).
-- Locks: the rows it deletes.
create or replace function csv_import.prune_batch_log(keep interval default interval '1 day')
returns bigint
language sql security definer
set search_path = ''
as $$
  with gone as (delete from csv_import.batch_log where committed_at < now() - keep returning 1)
  select count(*) from gone
$$;

-- Deletes finished jobs older than `keep` (bounded by max_jobs and max_rows, see above), their rejects, chunks,
-- batch_log rows and key claims (csv_import.key_claims, 20261204000800_create_key_claims.sql); and, first, the key
-- claims of jobs that can load no more rows (succeeded, or superseded by a newer version), up to 5 × max_rows per
-- call (1,000,000 claims took 3.9 s here). Returns what it removed: {"jobs", "chunks", "rejects", "batch_log",
-- "key_claims"}.
-- Locks: the chosen job rows (FOR UPDATE SKIP LOCKED); rows of other jobs whose superseded_by names a chosen job
-- (set to null). Idempotent: a second call removes only what has aged since. Callers: pg_cron (below), operators;
-- reconcile may call it.
create or replace function csv_import.prune_finished_jobs(
  keep interval default interval '30 days',
  max_jobs int default 500,
  max_rows bigint default 200000
)
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ids bigint[];
  v_done bigint[];
  v_jobs bigint;
  v_chunks bigint;
  v_rejects bigint;
  v_batches bigint;
  v_claims bigint := 0;
  v_count bigint;
begin
  if keep is null or keep < interval '1 day' then
    raise exception 'keep must be at least 1 day, got %', coalesce(keep::text, 'null')
      using errcode = '22023',
      hint = 'reconcile re-registers object versions of the last day that have no job';
  end if;

  -- The jobs that hold claims (a skip scan over the primary key), and of those the ones that will load no more.
  with recursive ids as (
    (select job_id from csv_import.key_claims order by job_id limit 1)
    union all
    select (select k.job_id from csv_import.key_claims k where k.job_id > ids.job_id order by k.job_id limit 1)
    from ids where ids.job_id is not null
  )
  select coalesce(array_agg(ids.job_id), '{}') into v_done
  from ids left join csv_import.jobs j on j.id = ids.job_id
  where ids.job_id is not null
    and (j.id is null or j.status in ('succeeded', 'succeeded_with_rejects') or j.superseded_by is not null);
  if cardinality(v_done) > 0 then
    delete from csv_import.key_claims k using (
      select job_id, key from csv_import.key_claims where job_id = any (v_done) limit greatest(max_rows * 5, 0)
    ) d
    where k.job_id = d.job_id and k.key = d.key;
    get diagnostics v_claims = row_count;
  end if;

  select coalesce(array_agg(id order by id), '{}') into v_ids
  from (
    select id, row_number() over (order by finished_at, id) as n,
           sum(rejects_stored + chunk_count) over (order by finished_at, id) as running
    from (
      select id, finished_at, rejects_stored, chunk_count from csv_import.jobs
      where status in ('succeeded', 'succeeded_with_rejects', 'failed', 'cancelled')
        and finished_at < now() - keep
      order by finished_at, id
      limit greatest(max_jobs, 0)
      for update skip locked
    ) locked
  ) taken
  where running <= max_rows or n = 1;

  if cardinality(v_ids) = 0 then
    return jsonb_build_object('jobs', 0, 'chunks', 0, 'rejects', 0, 'batch_log', 0, 'key_claims', v_claims);
  end if;

  update csv_import.jobs set superseded_by = null
  where superseded_by = any (v_ids) and not (id = any (v_ids));
  delete from csv_import.rejects where job_id = any (v_ids);
  get diagnostics v_rejects = row_count;
  delete from csv_import.batch_log where job_id = any (v_ids);
  get diagnostics v_batches = row_count;
  delete from csv_import.key_claims where job_id = any (v_ids);
  get diagnostics v_count = row_count;
  v_claims := v_claims + v_count;
  delete from csv_import.chunks where job_id = any (v_ids);
  get diagnostics v_chunks = row_count;
  delete from csv_import.jobs where id = any (v_ids);
  get diagnostics v_jobs = row_count;
  return jsonb_build_object('jobs', v_jobs, 'chunks', v_chunks, 'rejects', v_rejects, 'batch_log', v_batches,
    'key_claims', v_claims);
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
