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

alter table csv_import.jobs add column if not exists object_etag text;
comment on column csv_import.jobs.object_etag is
  'ETag of the object version the job loads (storage.objects.metadata->>''eTag''); range responses must match it';

-- Whether the object a job loads still holds the job's version. Read-only, no locks (storage.objects' unique
-- index on bucket_id, name). Callers: begin_batch, commit_batch, _check_retryable, reconcile, the chunk worker.
create or replace function csv_import.object_is_current(p_bucket_id text, p_object_name text, p_version text)
returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from storage.objects o
    where o.bucket_id = p_bucket_id and o.name = p_object_name and coalesce(o.version, o.id::text) = p_version)
$$;

-- Moves a non-terminal job to a terminal status. Takes the job row only (never a chunk row: a batch in flight
-- may hold its chunk for seconds), then cancels the job's unfinished chunks that nobody holds; a chunk held by a
-- batch is cancelled when that batch ends (its commit_batch is refused; the worker calls release_stopped_chunk)
-- or by reconcile. Rejects already stored get their file. Returns whether this call stopped the job. Safe to
-- call twice. Callers: _stop_jobs_of_object, fail_chunk, cancel_job, reconcile.
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
-- begin_batch and commit_batch refuse that job's batches. Caller: on_object_change, enqueue_registration.
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

-- Creates the job for one object version (idempotent: the same version twice gives one job), then stops the
-- active jobs of older versions of the same object (superseded). The new job is committed with the upload even
-- when stopping the old ones has to wait for reconcile. Returns the job id. Callers: on_object_change, reconcile.
drop function if exists csv_import.enqueue_registration(text, text, uuid, text, bigint, text);
create or replace function csv_import.enqueue_registration(
  p_bucket_id text, p_object_name text, p_object_id uuid, p_version text, p_size bigint, p_owner_id text,
  p_etag text default null
) returns bigint
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job_id bigint;
  v_version text := coalesce(p_version, p_object_id::text);
begin
  insert into csv_import.jobs (bucket_id, object_name, object_id, object_version, object_size, owner_id, object_etag)
  values (p_bucket_id, p_object_name, p_object_id, v_version, p_size, p_owner_id, p_etag)
  on conflict (bucket_id, object_name, object_version) do nothing
  returning id into v_job_id;
  if v_job_id is null then
    return (select id from csv_import.jobs where bucket_id = p_bucket_id and object_name = p_object_name
            and object_version = v_version);
  end if;
  perform csv_import._stop_jobs_of_object_quickly(p_bucket_id, p_object_name,
    format('Superseded by a newer version of %s (job %s)', p_object_name, v_job_id), v_job_id);
  perform csv_import.request_registration(v_job_id);
  return v_job_id;
end
$$;

-- Trigger on storage.objects: a new object or a new version registers a job (a moved object counts as new under
-- its new name); a deleted or moved object cancels the active jobs of its old name. Never raises and never waits
-- longer than _stop_jobs_of_object's 2 s lock_timeout: an upload must not fail or hang because of the pipeline; reconcile later
-- registers any version left without a job and stops jobs whose version is gone.
create or replace function csv_import.on_object_change()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' or (old.bucket_id, old.name) is distinct from (new.bucket_id, new.name) then
    perform csv_import._stop_jobs_of_object_quickly(old.bucket_id, old.name,
      case when tg_op = 'DELETE' then format('The object %s was deleted during the import', old.name)
           else format('The object %s/%s was moved to %s/%s during the import', old.bucket_id, old.name,
                       new.bucket_id, new.name) end, null);
    if tg_op = 'DELETE' then
      return old;
    end if;
  elsif tg_op = 'UPDATE' and new.version is not distinct from old.version then
    return new; -- metadata-only change, same bytes
  end if;
  if not csv_import.is_import_candidate(new.bucket_id, new.name) then
    return new;
  end if;
  begin
    perform csv_import.enqueue_registration(new.bucket_id, new.name, new.id, new.version,
      nullif(new.metadata ->> 'size', '')::bigint, coalesce(new.owner_id, new.owner::text),
      nullif(new.metadata ->> 'eTag', ''));
  exception when others then
    -- Never fail the upload; csv_import.reconcile registers any object version that has no job.
    raise warning 'csv_import: could not register %/%: %', new.bucket_id, new.name, sqlerrm;
  end;
  return new;
end
$$;

-- Records the ETag of a job's object when the trigger could not (metadata without eTag). Only fills a missing
-- one. Caller: the register function.
create or replace function csv_import.record_object_etag(p_job_id bigint, p_etag text)
returns text
language sql security definer
set search_path = ''
as $$
  update csv_import.jobs set object_etag = coalesce(object_etag, p_etag), updated_at = now()
  where id = p_job_id
  returning object_etag
$$;

-- What a worker needs to process a claimed chunk (as before, plus the object version and ETag it must read).
create or replace function csv_import.chunk_context(p_chunk_id bigint, p_lease_token uuid)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'chunk_id', c.id, 'job_id', c.job_id, 'kind', c.kind, 'chunk_index', c.chunk_index,
    'start_offset', c.start_offset, 'end_offset', c.end_offset, 'attempts', c.attempts,
    'max_attempts', j.max_attempts, 'lease_until', c.lease_until,
    'entry_parity', c.entry_parity, 'lines_before', c.lines_before, 'at_record_start', c.at_record_start,
    'batches_committed', c.batches_committed, 'resume_offset', c.resume_offset, 'resume_line', c.resume_line,
    'first_record_at', c.first_record_at,
    'scan_inline', c.kind = 'load' and c.end_offset - c.start_offset <= csv_import.inline_scan_max_bytes()
      and exists (
        select 1 from csv_import.chunks s
        where s.job_id = c.job_id and s.kind = 'scan' and s.chunk_index = c.chunk_index
          and s.status in ('pending', 'running')
      ),
    'bucket_id', j.bucket_id, 'object_name', j.object_name, 'object_version', j.object_version,
    'object_etag', j.object_etag, 'rejects_stored', j.rejects_stored,
    'object_size', j.object_size, 'data_start', j.data_start, 'chunk_count', j.chunk_count,
    'target_table', j.target_table, 'dialect', j.dialect, 'columns', j.columns,
    'profile', to_jsonb(p) - 'created_at' - 'updated_at'
  )
  from csv_import.chunks c
  join csv_import.jobs j on j.id = c.job_id
  left join csv_import.profiles p on p.id = j.profile_id
  where c.id = p_chunk_id and c.lease_token = p_lease_token and c.status = 'running'
    and j.status in ('queued', 'running')
$$;

-- Opens a batch: locks the chunk row for the rest of the transaction and says whether this caller may write
-- batch number p_batch_seq ('ok'), or why not: 'superseded' (the object no longer holds the job's version: it
-- was overwritten, moved or deleted), 'stopped' (the job was cancelled or failed), 'lease_lost', 'duplicate'
-- (that batch is already committed), 'missing'. Only 'ok' may be followed by writes.
create or replace function csv_import.begin_batch(p_chunk_id bigint, p_lease_token uuid, p_batch_seq int)
returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_job csv_import.jobs;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if not found then
    return 'missing';
  end if;
  select * into v_job from csv_import.jobs where id = v_chunk.job_id;
  if v_job.status not in ('queued', 'running') or v_chunk.status = 'cancelled' then
    return 'stopped';
  end if;
  if v_chunk.status <> 'running' or v_chunk.lease_token is distinct from p_lease_token then
    return 'lease_lost';
  end if;
  if not csv_import.object_is_current(v_job.bucket_id, v_job.object_name, v_job.object_version) then
    return 'superseded';
  end if;
  if v_chunk.batches_committed <> p_batch_seq then
    return 'duplicate';
  end if;
  return 'ok';
end
$$;

-- Commits a batch opened by begin_batch (same transaction). First the job row, guarded: when the job was stopped
-- meanwhile, or its object no longer holds the job's version, nothing is written and {"refused": "stopped" |
-- "superseded"} is returned — the caller rolls the batch back. Otherwise the batch's counts are added to the job
-- (totals grow per batch), its rejects stored (at most p_max_stored_rejects per job; all are counted), the
-- chunk's progress marker advanced and its lease extended; with p_final the chunk succeeds and, when it was the
-- job's last unfinished chunk, the job is finalized in the same transaction. Locks: the chunk row (already held
-- from begin_batch), then the job row. Raises 40001 if the batch was not opened by this caller.
-- p_rejected_unstored: rejects of this batch beyond those in p_rejects, counted only (the worker stops sending
-- details once the job's stored rejects reach the cap: 1M rejected rows cost 1M JSON objects for nothing).
-- Returns {"job_status", "job_finished", "rejects_stored"} or {"refused"}.
drop function if exists csv_import.commit_batch(bigint, uuid, int, bigint, bigint, bigint, bigint, bigint, bigint, jsonb,
  boolean, interval, bigint);
create or replace function csv_import.commit_batch(
  p_chunk_id bigint,
  p_lease_token uuid,
  p_batch_seq int,
  p_first_record_at bigint,
  p_next_offset bigint,
  p_next_line bigint,
  p_rows_parsed bigint,
  p_rows_loaded bigint,
  p_rows_skipped bigint,
  p_rejects jsonb,
  p_final boolean,
  p_lease interval default interval '15 seconds',
  p_max_stored_rejects bigint default 100000,
  p_rejected_unstored bigint default 0
) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_detailed bigint := coalesce(jsonb_array_length(p_rejects), 0);
  v_rejected bigint := coalesce(jsonb_array_length(p_rejects), 0) + coalesce(p_rejected_unstored, 0);
  v_stored bigint;
  v_job csv_import.jobs;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if v_chunk.status is distinct from 'running' or v_chunk.lease_token is distinct from p_lease_token
     or v_chunk.batches_committed <> p_batch_seq then
    raise exception 'Batch % of chunk % is not open for this lease', p_batch_seq, p_chunk_id
      using errcode = '40001';
  end if;

  -- The job row first, guarded by its status: a stop that committed before this update makes it match nothing
  -- (READ COMMITTED re-checks the row it waited for), a stop that comes later waits for this batch's commit.
  update csv_import.jobs j set
    rows_parsed = j.rows_parsed + p_rows_parsed,
    rows_loaded = j.rows_loaded + p_rows_loaded,
    rows_rejected = j.rows_rejected + v_rejected,
    rows_skipped = j.rows_skipped + p_rows_skipped,
    first_row_at = case when p_rows_loaded > 0 then coalesce(j.first_row_at, now()) else j.first_row_at end,
    updated_at = now()
  where j.id = v_chunk.job_id and j.status in ('queued', 'running')
  returning * into v_job;
  if not found then
    return jsonb_build_object('refused', 'stopped');
  end if;
  if not csv_import.object_is_current(v_job.bucket_id, v_job.object_name, v_job.object_version) then
    return jsonb_build_object('refused', 'superseded');
  end if;

  v_stored := greatest(0, least(v_detailed, p_max_stored_rejects - v_job.rejects_stored));
  if v_stored > 0 then
    insert into csv_import.rejects (job_id, chunk_id, line_number, column_name, reason, raw_record)
    select v_chunk.job_id, p_chunk_id, r.line, r."column", r.reason, r.raw
    from jsonb_to_recordset(p_rejects) as r(line bigint, "column" text, reason text, raw text)
    limit v_stored;
    update csv_import.jobs set rejects_stored = rejects_stored + v_stored where id = v_chunk.job_id;
  end if;

  update csv_import.chunks set
    batches_committed = batches_committed + 1,
    first_record_at = coalesce(first_record_at, p_first_record_at),
    resume_offset = p_next_offset,
    resume_line = p_next_line,
    rows_parsed = rows_parsed + p_rows_parsed,
    rows_loaded = rows_loaded + p_rows_loaded,
    rows_rejected = rows_rejected + v_rejected,
    rows_skipped = rows_skipped + p_rows_skipped,
    lease_until = case when p_final then null else now() + p_lease end,
    lease_token = case when p_final then null else lease_token end,
    status = case when p_final then 'succeeded'::csv_import.chunk_status else status end,
    next_record_at = case when p_final then p_next_offset end,
    finished_at = case when p_final then now() end,
    updated_at = now()
  where id = p_chunk_id;

  if p_final then
    update csv_import.jobs set bytes_loaded = bytes_loaded + (v_chunk.end_offset - v_chunk.start_offset)
    where id = v_chunk.job_id;
    perform csv_import.finalize_job(v_chunk.job_id);
  end if;
  select * into v_job from csv_import.jobs where id = v_chunk.job_id;
  return jsonb_build_object('job_status', v_job.status,
    'job_finished', v_job.status not in ('registering', 'queued', 'running'), 'rejects_stored', v_job.rejects_stored);
end
$$;

-- A worker that has used its invocation's work budget (WORKER_INVOCATION_WORK_MS) hands its chunk on between two
-- batches: pending again, ready at once, the attempt it was claimed with given back (a yield is no failure), so
-- the next invocation resumes after the last committed batch. Ignored ('lease_lost') when the lease is not the
-- caller's. Locks: the chunk row. Caller: the chunk worker.
create or replace function csv_import.yield_chunk(p_chunk_id bigint, p_lease_token uuid)
returns text
language plpgsql security definer
set search_path = ''
as $$
begin
  update csv_import.chunks set status = 'pending', lease_token = null, lease_until = null, available_at = now(),
    attempts = greatest(attempts - 1, 0), updated_at = now()
  where id = p_chunk_id and lease_token = p_lease_token and status = 'running';
  return case when found then 'yielded' else 'lease_lost' end;
end
$$;

-- A worker whose batch was refused ('stopped' or 'superseded') or found its job stopped hands its chunk back:
-- cancelled when the job is stopped; when only the object changed (the trigger could not stop the job in time),
-- the job is stopped here as superseded. Idempotent; ignored when the lease is not the caller's. Locks: the job
-- row (stop_job), then the chunk row. Returns the chunk's status afterwards. Caller: the chunk worker.
create or replace function csv_import.release_stopped_chunk(p_chunk_id bigint, p_lease_token uuid)
returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id;
  if not found or v_chunk.lease_token is distinct from p_lease_token then
    return coalesce(v_chunk.status::text, 'missing');
  end if;
  perform csv_import._stop_if_superseded(v_chunk.job_id);
  update csv_import.chunks c set status = 'cancelled', lease_token = null, lease_until = null, updated_at = now()
  from csv_import.jobs j
  where c.id = p_chunk_id and j.id = c.job_id and j.status not in ('queued', 'running')
    and c.status in ('pending', 'running') and c.lease_token = p_lease_token;
  return (select status::text from csv_import.chunks where id = p_chunk_id);
end
$$;

-- Heartbeat: extends the caller's lease while its worker is alive. A chunk held by the caller's own batch is
-- not waited for ('busy': that batch extends the lease when it commits). Returns 'ok', 'busy' or 'lost' (the
-- lease is no longer the caller's: stop). Caller: the chunk worker, every LEASE_SECONDS / 4.
create or replace function csv_import.renew_lease(p_chunk_id bigint, p_lease_token uuid, p_lease interval)
returns text
language plpgsql security definer
set search_path = ''
as $$
begin
  update csv_import.chunks c set lease_until = now() + p_lease
  where c.id = (select u.id from csv_import.chunks u
                where u.id = p_chunk_id and u.lease_token = p_lease_token and u.status = 'running'
                for no key update skip locked);
  if found then
    return 'ok';
  end if;
  return case when exists (select 1 from csv_import.chunks
                           where id = p_chunk_id and lease_token = p_lease_token and status = 'running')
              then 'busy' else 'lost' end;
end
$$;

-- Requeues (with backoff) or dead-letters running chunks whose lease expired: their worker died, froze or lost
-- its connection. A chunk held by a live transaction is skipped (its batch is still working or the database
-- has not yet ended a frozen session: idle_in_transaction_session_timeout). Chunks of stopped jobs are
-- cancelled instead. Kicks dispatch when it requeued anything. Returns how many leases it reclaimed.
-- Callers: reconcile, reclaim_and_claim_chunks (dispatch), pg_cron (csv-import-leases).
create or replace function csv_import.reclaim_expired_leases()
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk record;
  v_count int := 0;
begin
  for v_chunk in
    select c.id, c.attempts, j.max_attempts, j.status as job_status
    from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
    -- clock_timestamp(), not now(): on pg_cron 1.4 a lease round sleeps inside its transaction, whose now() is
    -- the minute's start, so a lease that expired during the sleep was not seen (a killed worker's chunk then
    -- waited for the next minute: 57 s measured).
    where c.status = 'running' and c.lease_until < clock_timestamp()
    order by c.id
    for update of c skip locked
  loop
    if v_chunk.job_status in ('queued', 'running') then
      perform csv_import._retry_or_dead(v_chunk.id, 'Lease expired: the worker stopped before finishing the chunk',
        v_chunk.attempts, v_chunk.max_attempts, p_backoff => false);
    else
      update csv_import.chunks set status = 'cancelled', lease_token = null, lease_until = null, updated_at = now()
      where id = v_chunk.id;
    end if;
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

-- Requeues a chunk, or dead-letters it after p_max attempts (as before). With p_backoff false the chunk is ready at
-- once: an expired lease already waited LEASE_SECONDS, and a further backoff only delayed the take-over of a killed
-- worker's chunk to the next reclaim round. Failures a worker reports (fail_chunk) keep the backoff.
drop function if exists csv_import._retry_or_dead(bigint, text, int, int);
create or replace function csv_import._retry_or_dead(
  p_chunk_id bigint, p_error text, p_attempts int, p_max int, p_backoff boolean default true
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_dead csv_import.chunks;
begin
  if p_attempts >= p_max then
    update csv_import.chunks set status = 'dead', lease_token = null, lease_until = null, finished_at = now(),
      last_error = format('%s (attempt %s of %s)', p_error, p_attempts, p_max), updated_at = now()
    where id = p_chunk_id
    returning * into v_dead;
    if v_dead.kind = 'scan' then
      update csv_import.chunks set status = 'cancelled', finished_at = now(), updated_at = now(),
        last_error = format('Not processed: scan chunk %s before it failed', v_dead.chunk_index)
      where job_id = v_dead.job_id and chunk_index > v_dead.chunk_index and status = 'pending';
    end if;
    perform csv_import.finalize_job(v_dead.job_id);
    return 'dead';
  end if;
  update csv_import.chunks set status = 'pending', lease_token = null, lease_until = null,
    available_at = now() + case when p_backoff then csv_import.retry_delay(p_attempts) else interval '0' end,
    last_error = format('%s (attempt %s of %s)', p_error, p_attempts, p_max), updated_at = now()
  where id = p_chunk_id;
  return 'retry';
end
$$;

-- Dispatches ready chunks when any are waiting (through pg_net). Returns whether a request was queued.
-- Callers: reconcile, pg_cron (csv-import-leases).
create or replace function csv_import._kick_dispatch_if_ready(p_reason text)
returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  if exists (select 1 from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
             where c.status = 'pending' and c.available_at <= now() and j.status in ('queued', 'running')
               and (c.kind = 'scan' or c.entry_parity is not null))
     or exists (select 1 from csv_import.jobs where rejects_status = 'pending') then
    return csv_import.request_function('dispatch', jsonb_build_object('reason', p_reason)) is not null;
  end if;
  return false;
end
$$;

-- pg_cron's lease round: reclaims expired leases, then kicks dispatch when chunks are ready — in two statements,
-- so the kick sees the chunks just requeued (in one SELECT both would share a snapshot taken before the reclaim,
-- and the kick waited for the next round: +10 s to every take-over). Returns how many leases it reclaimed.
-- Caller: pg_cron (csv-import-leases).
create or replace function csv_import.reclaim_leases_and_kick()
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_count int;
begin
  v_count := csv_import.reclaim_expired_leases();
  perform csv_import._kick_dispatch_if_ready('leases');
  return v_count;
end
$$;

-- What dispatch calls: reclaims expired leases (so any dispatch, one per finished chunk, takes over a dead
-- worker's chunk without waiting for pg_cron), then claims ready chunks (csv_import.claim_chunks, same arguments
-- and result). Two statements, so the claim sees the reclaimed chunks. Caller: dispatch.ts.
create or replace function csv_import.reclaim_and_claim_chunks(
  max_chunks int default 8,
  global_limit int default 8,
  lease interval default interval '15 seconds'
) returns table (chunk_id bigint, job_id bigint, kind csv_import.chunk_kind, chunk_index int, lease_token uuid)
language plpgsql security definer
set search_path = ''
as $$
begin
  perform csv_import.reclaim_expired_leases();
  return query select * from csv_import.claim_chunks(max_chunks, global_limit, lease);
end
$$;

-- The job of the version an object holds now, if it has one. Read-only. Callers: release_stopped_chunk,
-- _stop_stale_jobs, _check_retryable.
create or replace function csv_import.current_job_of_object(p_bucket_id text, p_object_name text)
returns bigint
language sql stable security definer
set search_path = ''
as $$
  select j.id from storage.objects o
  join csv_import.jobs j on j.bucket_id = o.bucket_id and j.object_name = o.name
                        and j.object_version = coalesce(o.version, o.id::text)
  where o.bucket_id = p_bucket_id and o.name = p_object_name
$$;

-- Stops an active job whose object no longer holds its version (overwritten, moved or deleted after the storage
-- trigger could not stop it in time), as superseded by the job of the version the object holds now, if any.
-- Returns whether it stopped the job. Locks: the job row (stop_job). Callers: release_stopped_chunk,
-- _stop_stale_jobs.
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
  v_newer := csv_import.current_job_of_object(v_job.bucket_id, v_job.object_name);
  return csv_import.stop_job(v_job.id, 'cancelled', format(
    'The object %s changed during the import (%s); the rows of this version that were committed stay',
    v_job.object_name, coalesce('superseded by job ' || v_newer, 'overwritten, moved or deleted')), v_newer);
end
$$;

-- Stops active jobs whose object no longer holds their version (the trigger could not stop them in time), and
-- cancels leftover chunks of stopped jobs. Bounded per call. Returns how many jobs it stopped. Caller: reconcile.
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

-- Raises (55000) with the reason when a job may not be retried (see retry_job): not failed or cancelled;
-- superseded; its object gone, or holding another version than the job's (an upsert keeps the object's id, so
-- the version decides: retrying would read the new bytes at the old offsets), naming the newer version's job.
create or replace function csv_import._check_retryable(p_job csv_import.jobs)
returns void
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_newer bigint;
begin
  if p_job.status in ('registering', 'queued', 'running') then
    raise exception 'Job % is %: only a failed or cancelled job can be retried', p_job.id, p_job.status
      using errcode = '55000', hint = 'Wait for it to finish, or cancel it first.';
  elsif p_job.status not in ('failed', 'cancelled') then
    raise exception 'Job % is %: only a failed or cancelled job can be retried', p_job.id, p_job.status
      using errcode = '55000';
  end if;
  if p_job.superseded_by is not null then
    raise exception 'Job % was superseded by job % (a newer version of %); retry that one instead', p_job.id,
      p_job.superseded_by, p_job.object_name using errcode = '55000';
  end if;
  if not exists (select 1 from storage.objects o where o.bucket_id = p_job.bucket_id and o.name = p_job.object_name)
  then
    raise exception 'The object %/% of job % no longer exists; upload it again', p_job.bucket_id,
      p_job.object_name, p_job.id using errcode = '55000';
  end if;
  if not csv_import.object_is_current(p_job.bucket_id, p_job.object_name, p_job.object_version) then
    v_newer := csv_import.current_job_of_object(p_job.bucket_id, p_job.object_name);
    raise exception 'The object %/% was overwritten after job % started: %', p_job.bucket_id, p_job.object_name,
      p_job.id, coalesce(format('job %s imports the new version; retry that one instead', v_newer),
                         'the new version has no job yet (reconcile registers it within a minute)')
      using errcode = '55000';
  end if;
end
$$;

-- Re-runs a failed or cancelled job (see the job control migration); as before, except that the job's totals
-- are those of all its load chunks (every committed batch stays, and commit_batch adds per batch).
create or replace function csv_import.retry_job(p_job_id bigint)
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_requeued int;
begin
  select * into v_job from csv_import.jobs where id = p_job_id for no key update;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'P0002';
  end if;
  perform csv_import._check_retryable(v_job);

  if v_job.data_start is null then
    update csv_import.jobs set status = 'registering', error = null, finished_at = null, register_attempts = 0,
      register_after = now(), updated_at = now()
    where id = p_job_id;
    perform csv_import.request_registration(p_job_id);
    return jsonb_build_object('job_id', p_job_id, 'status', 'registering', 'chunks_requeued', 0,
      'registration_requested', true);
  end if;

  update csv_import.chunks set status = 'pending', attempts = 0, available_at = now(), lease_token = null,
    lease_until = null, finished_at = null, updated_at = now()
  where id in (select id from csv_import.chunks where job_id = p_job_id and status in ('dead', 'cancelled')
               order by id for update);
  get diagnostics v_requeued = row_count;
  if v_requeued = 0 then
    raise exception 'Job % has no dead or cancelled chunks to re-run (it ended: %)', p_job_id,
      coalesce(v_job.error, v_job.status::text)
      using errcode = '55000', hint = 'Upload the file again to import it anew.';
  end if;

  update csv_import.jobs j set
    status = case when j.started_at is not null or t.progressed then 'running' else 'queued' end::csv_import.job_status,
    error = null, finished_at = null, updated_at = now(),
    rejects_status = case when j.rejects_status = 'pending' then 'none' else j.rejects_status end,
    rows_parsed = t.parsed, rows_loaded = t.loaded, rows_rejected = t.rejected, rows_skipped = t.skipped,
    bytes_loaded = t.bytes
  from (
    select coalesce(sum(c.rows_parsed), 0) as parsed, coalesce(sum(c.rows_loaded), 0) as loaded,
           coalesce(sum(c.rows_rejected), 0) as rejected, coalesce(sum(c.rows_skipped), 0) as skipped,
           coalesce(sum(c.end_offset - c.start_offset) filter (where c.status = 'succeeded'), 0) as bytes,
           bool_or(c.batches_committed > 0) as progressed
    from csv_import.chunks c where c.job_id = p_job_id and c.kind = 'load'
  ) as t
  where j.id = p_job_id
  returning * into v_job;
  perform csv_import.request_function('dispatch', '{"reason": "retry"}'::jsonb);
  return jsonb_build_object('job_id', p_job_id, 'status', v_job.status, 'chunks_requeued', v_requeued,
    'registration_requested', false);
end
$$;

-- The reconciler, run by pg_cron every minute (the pipeline's speed never depends on it). Each step is idempotent:
--   1. expired leases (reclaim_expired_leases; also every 10 s by csv-import-leases);
--   2. registrations that did not complete: re-request with backoff, fail after 5 attempts; and object versions
--      of the last day in watched buckets that have no job at all (the trigger could not register them);
--   3. jobs whose object version is gone (the trigger could not stop them in time), and leftover chunks of stopped
--      jobs (_stop_stale_jobs);
--   4. finalize jobs whose chunks are all finished (normally done by the last chunk already);
--   5. kick the dispatch function when ready chunks or unwritten rejects files are waiting;
--   6. prune pg_cron's run history and pg_net's responses older than a week / a day (each on its own: a failure
--      there never undoes the steps above).
-- Job totals need no roll-up: commit_batch adds every batch's counts. Returns a summary for logs and tests.
create or replace function csv_import.reconcile()
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_expired int;
  v_rekicked int := 0;
  v_failed_registrations int := 0;
  v_orphans int := 0;
  v_stale int;
  v_object storage.objects;
  v_finalized int := 0;
  v_kicked boolean;
  v_job record;
begin
  v_expired := csv_import.reclaim_expired_leases();

  for v_job in
    select id, register_attempts, error from csv_import.jobs
    where status = 'registering' and register_after <= now()
    for update skip locked
  loop
    if v_job.register_attempts >= 5 then
      update csv_import.jobs set status = 'failed', finished_at = now(), updated_at = now(),
        error = format('Registration did not complete after %s attempts: %s', v_job.register_attempts,
                       coalesce(v_job.error, 'the register function never answered'))
      where id = v_job.id;
      v_failed_registrations := v_failed_registrations + 1;
    else
      perform csv_import.request_registration(v_job.id);
      v_rekicked := v_rekicked + 1;
    end if;
  end loop;

  for v_object in
    select o.* from storage.objects o
    where o.bucket_id in (select 'csv-uploads' union select p.bucket_id from csv_import.profiles p)
      and o.updated_at between now() - interval '1 day' and now() - interval '1 minute'
      and csv_import.is_import_candidate(o.bucket_id, o.name)
      and not exists (select 1 from csv_import.jobs j where j.bucket_id = o.bucket_id and j.object_name = o.name
                      and j.object_version = coalesce(o.version, o.id::text))
    order by o.updated_at
    limit 100
  loop
    perform csv_import.enqueue_registration(v_object.bucket_id, v_object.name, v_object.id, v_object.version,
      nullif(v_object.metadata ->> 'size', '')::bigint, coalesce(v_object.owner_id, v_object.owner::text),
      nullif(v_object.metadata ->> 'eTag', ''));
    v_orphans := v_orphans + 1;
  end loop;

  v_stale := csv_import._stop_stale_jobs();

  for v_job in
    select j.id from csv_import.jobs j
    where j.status in ('queued', 'running') and j.chunk_count > 0
      and not exists (select 1 from csv_import.chunks c where c.job_id = j.id and c.status in ('pending', 'running'))
  loop
    perform csv_import.finalize_job(v_job.id);
    v_finalized := v_finalized + 1;
  end loop;

  v_kicked := csv_import._kick_dispatch_if_ready('reconcile');

  begin
    delete from cron.job_run_details where end_time < now() - interval '7 days';
  exception when others then
    raise warning 'csv_import.reconcile: could not prune cron.job_run_details: %', sqlerrm;
  end;
  begin
    delete from net._http_response where created < now() - interval '1 day';
  exception when others then
    raise warning 'csv_import.reconcile: could not prune net._http_response: %', sqlerrm;
  end;

  return jsonb_build_object('expired_leases', v_expired, 'registrations_requested', v_rekicked,
    'registrations_failed', v_failed_registrations, 'orphans_registered', v_orphans, 'stale_jobs_stopped', v_stale,
    'jobs_finalized', v_finalized, 'dispatch_kicked', v_kicked);
end
$$;

-- Privileges: the service role only (see the schema migration).
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;

-- Expired leases every 10 s (pg_cron job csv-import-leases): a seconds schedule where pg_cron has them (1.5+,
-- hosted Supabase); on older pg_cron (Debian 12 ships 1.4: minutes only, and a job's procedure may not COMMIT) six
-- jobs a minute, at 0, 10, … 50 s, each a sleep then the reclaim in its own statement (pg_cron runs a job's
-- command as one implicit transaction: the reclaim commits at once after the sleep; the sleep holds no xid).
do $$
declare
  v_offset int;
begin
  if (select pg_catalog.string_to_array(pg_catalog.split_part(extversion, '-', 1), '.')::int[] >= array[1, 5]
      from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform cron.schedule('csv-import-leases', '10 seconds', 'select csv_import.reclaim_leases_and_kick()');
  else
    foreach v_offset in array array[0, 10, 20, 30, 40, 50] loop
      perform cron.schedule(format('csv-import-leases-%s', v_offset), '* * * * *',
        format('select pg_catalog.pg_sleep(%s); select csv_import.reclaim_leases_and_kick()', v_offset));
    end loop;
  end if;
end
$$;

-- Rows of a refused piece whose key already exists in the target (insert mode), found set-wise before
-- insert_isolating bisects the rest: each becomes a reject with PostgreSQL's own wording (duplicate key value
-- violates unique constraint "<index>", Key (<columns>)=(<values>) already exists.) and is removed from the
-- caller's staging table pg_temp.csv_import_stage (columns c1..cn, text, in p_columns order). Why: bisection
-- costs ~1 ms per refused row (two statements, each a subtransaction, per row when every row is refused): a
-- re-imported 30,000-row file took 62 s; one query per unique index instead.
-- Only unique indexes that are immediate, valid, without expressions or predicates, NULLs distinct, and whose
-- key columns are all in the file are used; anything else (and a duplicate within the file itself) is left to
-- bisection, as is everything if a query here fails. SECURITY INVOKER: it sees the target as the caller does.
-- Returns (seq, message, detail). Caller: the chunk worker's isolating path (loader.ts).
create or replace function csv_import.take_existing_keys(p_table text, p_columns text[], p_types text[])
returns table (seq bigint, message text, detail text)
language plpgsql
set search_path = ''
as $$
declare
  v_index record;
  v_cond text;
  v_vals text;
  v_cols text;
  v_pos int;
  v_ok boolean;
  k int;
begin
  for v_index in
    select i.indexrelid, c.relname::text as name, i.indkey::int[] as keys, i.indnkeyatts as nkeys
    from pg_catalog.pg_index i join pg_catalog.pg_class c on c.oid = i.indexrelid
    where i.indrelid = pg_catalog.to_regclass(p_table) and i.indisunique and i.indisvalid and i.indimmediate
      and i.indexprs is null and i.indpred is null
      and not coalesce((pg_catalog.to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false)
    order by i.indexrelid
  loop
    v_cond := null; v_vals := null; v_cols := null; v_ok := true;
    for k in 1 .. v_index.nkeys loop
      select array_position(p_columns, a.attname::text) into v_pos
      from pg_catalog.pg_attribute a
      where a.attrelid = pg_catalog.to_regclass(p_table)
        and a.attnum = v_index.keys[pg_catalog.array_lower(v_index.keys, 1) + k - 1]; -- int2vector: 0-based
      if v_pos is null then
        v_ok := false;
        exit;
      end if;
      v_cond := concat_ws(' and ', v_cond, format('t.%s = (s.c%s)::%s',
        pg_catalog.pg_get_indexdef(v_index.indexrelid, k, true), v_pos, p_types[v_pos]));
      v_vals := concat_ws(' || '', '' || ', v_vals, format('((s.c%s)::%s)::text', v_pos, p_types[v_pos]));
      v_cols := concat_ws(', ', v_cols, pg_catalog.pg_get_indexdef(v_index.indexrelid, k, true));
    end loop;
    continue when not v_ok;
    begin
      return query execute format(
        'with gone as (delete from pg_temp.csv_import_stage s where exists (select 1 from %s t where %s) '
        'returning s.seq, %s as vals) select seq, %L::text, ''Key ('' || %L || '')=('' || vals || '') already exists.'' from gone',
        p_table, v_cond, v_vals, format('duplicate key value violates unique constraint "%s"', v_index.name), v_cols);
    exception when others then
      raise warning 'csv_import.take_existing_keys: % on index % (left to bisection)', sqlerrm, v_index.name;
    end;
  end loop;
end
$$;
revoke execute on function csv_import.take_existing_keys(text, text[], text[]) from public, anon, authenticated;
grant execute on function csv_import.take_existing_keys(text, text[], text[]) to service_role;
