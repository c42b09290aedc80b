-- Chunk claims and leases: claiming ready chunks with a lease, renewing, yielding and reclaiming leases, and the
-- failure path (fail_chunk → _retry_or_dead).
--
-- Invariants:
-- - The attempt is counted when a chunk is claimed, not when it fails, so a worker that dies still uses one.
-- - Leases are short (LEASE_SECONDS, 15 s) and renewed by a heartbeat while a worker is alive (renew_lease);
--   expired leases are reclaimed by every dispatch (reclaim_and_claim_chunks) and every 10 s by pg_cron
--   (reclaim_leases_and_kick), so a killed worker's chunk is taken over within ~30 s.

-- Largest chunk a load scans inline: it holds the range's bytes in memory while loading them (32 MiB keeps a
-- chunk invocation under its 64 MB budget). Larger chunks (a profile's chunk_size_bytes) get scan invocations.
-- A constant: immutable, no locks. Callers: claim_chunks, chunk_context, the chunk worker.
create or replace function csv_import.inline_scan_max_bytes() returns bigint
language sql immutable
as $$ select 33554432::bigint $$;

-- Claims up to max_chunks ready chunks for work, within the global limit of running chunks and each job's
-- max_parallel_chunks, highest job priority first and round-robin across jobs of equal priority, counting the
-- chunks each job already has running (a job's next chunk is its (running + 1)-th: the job with the fewest
-- running chunks goes first, then each job's next, …), so a huge file cannot starve small ones, also when slots
-- free up one at a time. Within a job, chunks go in file order: a load chunk is ready once its entry state is
-- known, i.e. once the scans of every chunk before it are done, and a load scans its own range before loading
-- it (csv_import.complete_inline_scan), which makes the next load ready within ~0.1 s. So a scan chunk is only
-- claimed on its own where no load will scan it soon: ranges larger than inline_scan_max_bytes(), a file's
-- first scans (ramp-up: measured on the 1M-row file, the fourth load started 0.9 s after the first when each
-- waited for the inline scan before it), or a stalled job (nothing running and no load ready). Why not scans ahead of loads (an earlier design): each scan was a separate
-- invocation and a second read of its range (Storage serves the file twice); measured on the 1M-row file, 15
-- scan invocations and 130 MB of reads are gone. Why not all scans first (before that): the first load waited
-- for every scan of the file (first row 1.2 s after registration for 16 chunks, ~45 s for 10 GB). Each claimed chunk gets a
-- fresh lease token and lease_until = now() + lease; the attempt is counted here, so a worker that dies still
-- uses an attempt. Locks: a transaction-level advisory lock serializing claims (so limits hold under
-- concurrent dispatchers), and the claimed chunk rows (FOR UPDATE SKIP LOCKED).
-- Callers: the dispatch logic of the Edge Functions (register, chunk, dispatch).
-- Not idempotent: each call claims more chunks (within the limits).
create or replace function csv_import.claim_chunks(
  max_chunks int default 8,
  global_limit int default 8,
  lease interval default interval '2 minutes'
) returns table (chunk_id bigint, job_id bigint, kind csv_import.chunk_kind, chunk_index int, lease_token uuid)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_free int;
begin
  perform pg_advisory_xact_lock(hashtext('csv_import.claim_chunks'));
  select least(max_chunks, global_limit - count(*)) into v_free from csv_import.chunks c where c.status = 'running';
  if v_free <= 0 then
    return;
  end if;

  return query
  with candidates as (
    select c.id, j.priority, j.created_at,
           running.n + row_number() over (partition by c.job_id order by c.claim_order, c.kind desc) as turn
    from csv_import.jobs j
    cross join lateral (
      select count(*)::int as n from csv_import.chunks r where r.job_id = j.id and r.status = 'running'
    ) as running
    cross join lateral (
      select c.id, c.job_id, c.kind, c.chunk_index, c.chunk_index as claim_order
      from csv_import.chunks c
      where c.job_id = j.id and c.status = 'pending' and c.available_at <= now()
        and case
          when c.kind = 'load' then c.entry_parity is not null
          -- A scan only where no load will scan it inline soon: ranges too big to hold; a file's first
          -- scans after the first (1 .. max_parallel_chunks - 2), which run beside load 0 so that the first
          -- max_parallel_chunks loads start together instead of one inline scan after another; or a stalled
          -- job (nothing running, no load ready: e.g. its loads wait out a retry delay).
          else c.end_offset - c.start_offset > csv_import.inline_scan_max_bytes()
            or c.chunk_index between 1 and j.max_parallel_chunks - 2
            or (running.n = 0 and not exists (
              select 1 from csv_import.chunks l
              where l.job_id = j.id and l.kind = 'load' and l.status = 'pending'
                and l.available_at <= now() and l.entry_parity is not null))
        end
      order by c.chunk_index, c.kind desc -- the enum orders scan before load
      limit greatest(j.max_parallel_chunks - running.n, 0)
      for update of c skip locked
    ) as c
    where j.status in ('queued', 'running')
  ), picked as (
    select id from candidates order by priority desc, turn, created_at, id limit v_free
  )
  update csv_import.chunks c set
    status = 'running',
    attempts = c.attempts + 1,
    lease_token = gen_random_uuid(),
    lease_until = now() + lease,
    started_at = coalesce(c.started_at, now()),
    updated_at = now()
  from picked
  where c.id = picked.id
  returning c.id, c.job_id, c.kind, c.chunk_index, c.lease_token;

  update csv_import.jobs j set status = 'running', started_at = coalesce(j.started_at, now()), updated_at = now()
  where j.status = 'queued'
    and exists (select 1 from csv_import.chunks c where c.job_id = j.id and c.status = 'running');
end
$$;

-- Requeues (with backoff) or dead-letters running chunks whose lease expired: their worker died, froze or lost
-- its connection. A chunk held by a live transaction is skipped (its batch is still working or the database
-- has not yet ended a frozen session: idle_in_transaction_session_timeout). Chunks of stopped jobs are
-- cancelled instead. Kicks dispatch when it requeued anything. Returns how many leases it reclaimed.
-- Callers: reconcile, reclaim_and_claim_chunks (dispatch), pg_cron (csv-import-leases).
-- Locks: the expired chunk rows (FOR UPDATE SKIP LOCKED), then what _retry_or_dead takes. Idempotent: a reclaimed
-- lease is no longer running.
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

-- What dispatch calls: reclaims expired leases (so any dispatch, one per finished chunk, takes over a dead
-- worker's chunk without waiting for pg_cron), then claims ready chunks (csv_import.claim_chunks, same arguments
-- and result). Two statements, so the claim sees the reclaimed chunks. Caller: dispatch.ts.
-- Locks: as reclaim_expired_leases, then as claim_chunks. Not idempotent (it claims).
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

-- Dispatches ready chunks when any are waiting (through pg_net). Returns whether a request was queued.
-- Callers: reconcile, pg_cron (csv-import-leases).
-- Read-only, no locks; each call that finds work queues one request.
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
-- Locks: as reclaim_expired_leases. Idempotent but for the kick.
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

-- Heartbeat: extends the caller's lease while its worker is alive. A chunk held by the caller's own batch is
-- not waited for ('busy': that batch extends the lease when it commits). Returns 'ok', 'busy' or 'lost' (the
-- lease is no longer the caller's: stop). Caller: the chunk worker, every LEASE_SECONDS / 4.
-- Locks: the chunk row (FOR NO KEY UPDATE SKIP LOCKED). Idempotent.
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

-- What a worker needs to process a claimed chunk: its range, entry state, resume marker and attempts, and the
-- job's object version and ETag (the bytes it must read), dialect, columns, target and profile. Null when the lease
-- is not (or no longer) this caller's or the job is stopped. Read-only. Caller: the chunk worker.
-- Locks: none.
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

-- A worker that has used its invocation's work budget (WORKER_INVOCATION_WORK_MS) hands its chunk on between two
-- batches: pending again, ready at once, the attempt it was claimed with given back (a yield is no failure), so
-- the next invocation resumes after the last committed batch. Ignored ('lease_lost') when the lease is not the
-- caller's. Locks: the chunk row. Caller: the chunk worker.
-- Idempotent: a second call finds the lease gone ('lease_lost').
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

-- A worker reports that its chunk failed. SQL decides: a transient failure goes back to the queue after
-- retry_delay(attempts) until the job's max_attempts, then the chunk is dead-lettered with the reason (the job
-- ends failed once its other chunks finish); a fatal failure (the file's fault, e.g. a record larger than the
-- limit) fails the whole job at once. Ignored when the caller's lease is gone. Returns 'retry', 'dead',
-- 'job_failed' or 'lease_lost'.
-- Locks: the chunk row (FOR UPDATE), then the job row (stop_job or finalize_job). Idempotent: a second call finds
-- the lease gone. Caller: the chunk worker.
create or replace function csv_import.fail_chunk(
  p_chunk_id bigint, p_lease_token uuid, p_error text, p_fatal boolean default false
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_max int;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if not found or v_chunk.status <> 'running' or v_chunk.lease_token is distinct from p_lease_token then
    return 'lease_lost';
  end if;
  if p_fatal then
    update csv_import.chunks set last_error = p_error where id = p_chunk_id;
    perform csv_import.stop_job(v_chunk.job_id, 'failed', p_error);
    return 'job_failed';
  end if;
  select max_attempts into v_max from csv_import.jobs where id = v_chunk.job_id;
  return csv_import._retry_or_dead(p_chunk_id, p_error, v_chunk.attempts, v_max);
end
$$;

-- Requeues a chunk with backoff (retry_delay), or dead-letters it after p_max attempts; a dead scan chunk also
-- cancels the pending chunks after it (their load chunks could never learn their entry state), then the job is
-- finalized if nothing else is left to run. With p_backoff false the chunk is ready at
-- once: an expired lease already waited LEASE_SECONDS, and a further backoff only delayed the take-over of a killed
-- worker's chunk to the next reclaim round. Failures a worker reports (fail_chunk) keep the backoff.
-- Locks: the chunk row (update; the callers hold it already), the pending chunk rows after a dead scan, then the
-- job row (finalize_job). Not idempotent: call it once per failure, under the chunk's lock. Callers: fail_chunk,
-- reclaim_expired_leases.
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

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
