-- Stopping jobs: a terminal status for a job that is still registering, queued or running (cancel, supersede,
-- delete or move of its object, fatal failure), without ever waiting long on a batch in flight.
--
-- A job belongs to one version of its object, and never waits long on a batch to stop.
--
-- What was wrong (issue 10): the storage trigger's stop_job waited on the chunk row a running batch held; Storage's
-- upsert gave up after a few seconds, the lock timeout was swallowed, and the upload committed with neither the
-- old job's cancellation nor the new version's job. The old job's later chunks then read the object by name and
-- loaded the new version's bytes at the old offsets (85,203 rows of the wrong file). retry_job re-ran a cancelled
-- job against an overwritten object (125,756 rows twice).
--
-- Invariants:
-- - A job records its object's version and ETag (jobs.object_version, jobs.object_etag). Every batch is tied to
--   that version: begin_batch and commit_batch refuse ('superseded') once storage.objects holds another version
--   (or none), and the chunk worker never parses a range response whose ETag differs from the job's.
-- - Stopping a job (stop_job: cancel, supersede, delete, fatal failure) takes the job row only: it never waits
--   for a batch in flight. commit_batch updates the job row first, guarded by its status, so a batch either
--   commits before the stop (its rows belong to the job's own version) or is refused and rolled back.
-- - Chunks a stop could not lock (a batch held them) are cancelled by the worker when it sees the stop, or by
--   reconcile; a stopped job's chunks never run again.
-- - The storage trigger creates the new version's job first; superseding older jobs waits for a job row at most
--   2 s (the lock_timeout of csv_import._stop_jobs_of_object; Storage's own upsert waits 5 s for its object lock,
--   supabase/storage src/storage/uploader.ts completeUpload) and otherwise leaves it to reconcile (the batches are refused meanwhile).
--   The upload never fails and never waits longer than that.
-- - Job totals (rows_*) grow with every committed batch, so a job stopped mid-way reports what it committed.
-- - Leases are short (LEASE_SECONDS, 15 s) and renewed by a heartbeat while a worker is alive
--   (csv_import.renew_lease); expired leases are reclaimed by every dispatch and every 10 s by pg_cron
--   (csv_import.reclaim_expired_leases), so a killed worker's chunk is taken over within ~30 s.

-- Moves a non-terminal job to a terminal status. Takes the job row only (never a chunk row: a batch in flight
-- may hold its chunk for seconds), then cancels the job's unfinished chunks that nobody holds; a chunk held by a
-- batch is cancelled when that batch ends (its commit_batch is refused; the worker calls release_stopped_chunk)
-- or by reconcile. Rejects already stored get their file. Returns whether this call stopped the job. Safe to
-- call twice. Callers: _stop_jobs_of_object, fail_chunk, cancel_job, reconcile.
-- Locks: the job row, then (SKIP LOCKED) its unfinished chunk rows.
create or replace function csv_import.stop_job(
  p_job_id bigint, p_status csv_import.job_status, p_error text, p_superseded_by bigint default null
) returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  update csv_import.jobs set status = p_status, error = p_error, superseded_by = p_superseded_by,
    finished_at = now(), updated_at = now(),
    rejects_status = case when rows_rejected > 0 or rejects_stored > 0 then 'pending' else rejects_status end
  where id = p_job_id and status in ('registering', 'queued', 'running');
  if not found then
    return false;
  end if;
  perform csv_import._cancel_unheld_chunks(p_job_id);
  return true;
end
$$;

-- Cancels the pending and running chunks of a job that no transaction holds (SKIP LOCKED). Caller: stop_job,
-- reconcile. Returns how many.
-- Idempotent.
create or replace function csv_import._cancel_unheld_chunks(p_job_id bigint)
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_count int;
begin
  update csv_import.chunks c set status = 'cancelled', lease_token = null, lease_until = null, updated_at = now()
  where c.id in (select u.id from csv_import.chunks u
                 where u.job_id = p_job_id and u.status in ('pending', 'running')
                 order by u.id for update skip locked);
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

-- Stops the active jobs of an object name other than p_superseded_by, waiting at most 2 s (lock_timeout) for
-- each job row (the function's SET clause bounds it; raises 55P03 past it). Caller: _stop_jobs_of_object_quickly.
-- Idempotent: stopped jobs are skipped.
create or replace function csv_import._stop_jobs_of_object(
  p_bucket_id text, p_object_name text, p_error text, p_superseded_by bigint
) returns int
language plpgsql security definer
set search_path = ''
set lock_timeout = '2s'
as $$
declare
  v_count int := 0;
  v_job_id bigint;
begin
  for v_job_id in
    select j.id from csv_import.jobs j
    where j.bucket_id = p_bucket_id and j.object_name = p_object_name
      and j.id is distinct from p_superseded_by and j.status in ('registering', 'queued', 'running')
    order by j.id
  loop
    if csv_import.stop_job(v_job_id, 'cancelled', p_error, p_superseded_by) then
      v_count := v_count + 1;
    end if;
  end loop;
  return v_count;
end
$$;

-- The storage trigger's way to stop older jobs: never raises. When a job row is held past the lock timeout the
-- stop is left to reconcile (csv_import.reconcile stops jobs whose object version is gone) and, meanwhile,
-- begin_batch and commit_batch refuse that job's batches. Caller: _on_object_change, enqueue_registration.
-- Locks: as _stop_jobs_of_object. Idempotent.
create or replace function csv_import._stop_jobs_of_object_quickly(
  p_bucket_id text, p_object_name text, p_error text, p_superseded_by bigint
) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  perform csv_import._stop_jobs_of_object(p_bucket_id, p_object_name, p_error, p_superseded_by);
exception when others then
  raise warning 'csv_import: could not stop the jobs of %/% now (%); reconcile will', p_bucket_id, p_object_name,
    sqlerrm;
end
$$;

-- Stops an active job whose object no longer holds its version (overwritten, moved or deleted after the storage
-- trigger could not stop it in time), as superseded by the job of the version the object holds now, if any.
-- Returns whether it stopped the job. Locks: the job row (stop_job). Callers: release_stopped_chunk,
-- _stop_stale_jobs.
-- Idempotent: a stopped job is left as it is.
create or replace function csv_import._stop_if_superseded(p_job_id bigint)
returns boolean
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_newer bigint;
begin
  select * into v_job from csv_import.jobs where id = p_job_id;
  if v_job.status not in ('registering', 'queued', 'running')
     or csv_import.object_is_current(v_job.bucket_id, v_job.object_name, v_job.object_version) then
    return false;
  end if;
  v_newer := csv_import._current_job_of_object(v_job.bucket_id, v_job.object_name);
  return csv_import.stop_job(v_job.id, 'cancelled', format(
    'The object %s changed during the import (%s); the rows of this version that were committed stay',
    v_job.object_name, coalesce('superseded by job ' || v_newer, 'overwritten, moved or deleted')), v_newer);
end
$$;

-- Stops active jobs whose object no longer holds their version (the trigger could not stop them in time), and
-- cancels leftover chunks of stopped jobs. Bounded per call. Returns how many jobs it stopped. Caller: reconcile.
-- Locks: the job rows it stops (stop_job), unheld chunk rows (SKIP LOCKED). Idempotent.
create or replace function csv_import._stop_stale_jobs(p_limit int default 100)
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job record;
  v_count int := 0;
begin
  for v_job in
    select j.id, j.bucket_id, j.object_name from csv_import.jobs j
    where j.status in ('registering', 'queued', 'running')
      and not csv_import.object_is_current(j.bucket_id, j.object_name, j.object_version)
    order by j.id
    limit p_limit
  loop
    if csv_import._stop_if_superseded(v_job.id) then
      v_count := v_count + 1;
    end if;
  end loop;
  for v_job in
    select distinct c.job_id as id from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
    where c.status in ('pending', 'running') and j.status not in ('registering', 'queued', 'running')
    limit p_limit
  loop
    perform csv_import._cancel_unheld_chunks(v_job.id);
  end loop;
  return v_count;
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
