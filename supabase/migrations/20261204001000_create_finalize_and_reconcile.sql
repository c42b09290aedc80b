-- Finalization and the reconciler (pg_cron, SQL only): every job reaches a terminal state without a person.
--
-- Both are split into named steps, one concern per function (as pgflow does): finalize_job = guard and lock →
-- totals from the chunks → _finalize_verdict (dead chunk? _finalize_tiling_gap? counts? reject rate?) → write;
-- reconcile = reclaim_expired_leases → _reconcile_registrations → _reconcile_orphans → _stop_stale_jobs →
-- _reconcile_finalize → _kick_dispatch_if_ready → _reconcile_prune_history.

-- The first load chunk whose owned records break the tiling of the job's data, or null when they tile it exactly:
-- chunk 0's first record is at data_start, each owning chunk's first record is the previous one's next record, the
-- last owning chunk ends at the object's size; chunks that own no record (one record spans them) report no
-- offsets and parsed nothing; a planned job always has an owning chunk (chunk 0 starts at a record start).
-- Read-only, no locks (the caller holds the job row and none of its chunks is pending or running). Volatile, as
-- the queries were inline in finalize_job (each statement reads a fresh snapshot). Idempotent. Caller:
-- _finalize_verdict.
create or replace function csv_import._finalize_tiling_gap(p_job csv_import.jobs)
returns int
language plpgsql security definer
set search_path = ''
as $$
begin
  return (
    select t.chunk_index
    from (
      select c.chunk_index, c.status, c.rows_parsed, c.first_record_at, c.next_record_at,
             lag(c.next_record_at) over w as previous_next,
             row_number() over w as nth,
             count(*) over () as owning
      from csv_import.chunks c
      where c.job_id = p_job.id and c.kind = 'load' and (c.first_record_at is not null or c.status <> 'succeeded')
      window w as (order by c.chunk_index)
    ) as t
    where t.status <> 'succeeded' or t.next_record_at is null
       or t.first_record_at is distinct from case when t.nth = 1 then p_job.data_start else t.previous_next end
       or (t.nth = t.owning and t.next_record_at <> p_job.object_size)
    union all
    select c.chunk_index from csv_import.chunks c
    where c.job_id = p_job.id and c.kind = 'load' and c.first_record_at is null
      and (c.status <> 'succeeded' or c.rows_parsed <> 0 or c.next_record_at is not null)
    union all
    -- Chunk 0 starts at data_start, a record start, so a planned job always has an owning chunk.
    select 0 where p_job.chunk_count > 0 and not exists (
      select 1 from csv_import.chunks c where c.job_id = p_job.id and c.kind = 'load' and c.first_record_at is not null)
    order by 1
    limit 1);
end
$$;

-- The terminal status of a job none of whose chunks is pending or running, and its error, given the totals of its
-- load chunks (sums: numeric): failed when a chunk is dead (the first one, scans first, is named), when the chunks' records do
-- not tile the file (_finalize_tiling_gap), when rows parsed <> loaded + rejected + skipped, or when the reject
-- rate exceeds the job's tolerance; else succeeded_with_rejects or succeeded. Read-only, no locks. Idempotent.
-- Caller: finalize_job.
create or replace function csv_import._finalize_verdict(
  p_job csv_import.jobs, p_parsed numeric, p_loaded numeric, p_rejected numeric, p_skipped numeric,
  out status csv_import.job_status, out error text
)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_dead csv_import.chunks;
  v_bad_chunk int;
begin
  select * into v_dead from csv_import.chunks c where c.job_id = p_job.id and c.status = 'dead'
  order by c.kind desc, c.chunk_index limit 1;
  if found then
    status := 'failed';
    error := format('Chunk %s (%s, bytes %s–%s) failed: %s', v_dead.chunk_index, v_dead.kind,
      v_dead.start_offset, v_dead.end_offset, v_dead.last_error);
    return;
  end if;
  v_bad_chunk := csv_import._finalize_tiling_gap(p_job);
  if v_bad_chunk is not null then
    status := 'failed';
    error := format('Consistency check failed: the chunks'' records do not tile the file exactly (chunk %s)',
      v_bad_chunk);
  elsif p_parsed <> p_loaded + p_rejected + p_skipped then
    status := 'failed';
    error := format('Consistency check failed: %s rows parsed but %s loaded + %s rejected + %s skipped',
      p_parsed, p_loaded, p_rejected, p_skipped);
  elsif p_rejected > 0 and p_rejected > p_job.tolerated_reject_rate * p_parsed then
    status := 'failed';
    error := format('Rejected %s of %s rows (%s%%), above the tolerated %s%%; the %s valid rows were loaded',
      p_rejected, p_parsed, round(100.0 * p_rejected / p_parsed, 2),
      round(100 * p_job.tolerated_reject_rate, 2), p_loaded);
  elsif p_rejected > 0 then
    status := 'succeeded_with_rejects';
  else
    status := 'succeeded';
  end if;
end
$$;

-- Decides a job's terminal status once none of its chunks is pending or running. Never marks a job succeeded
-- unless (1) every load chunk succeeded, (2) the chunks' owned byte ranges tile the data exactly (chunk 0's
-- first record is at data_start, each chunk's next record is the next chunk's first, the last ends at the
-- object's size: every record owned exactly once), and (3) rows in = loaded + rejected + skipped. Then:
-- succeeded, succeeded_with_rejects, or failed when the reject rate exceeds the profile's tolerance or a chunk
-- is dead (_finalize_verdict). Takes the authoritative totals from the chunks. Locks: the job row (FOR NO KEY
-- UPDATE). Idempotent: a job that is finished, or still has chunks to run, is returned unchanged; safe to call any
-- time, twice. Callers: commit_batch (last chunk), _retry_or_dead, register_job (empty file), _reconcile_finalize.
create or replace function csv_import.finalize_job(p_job_id bigint)
returns csv_import.job_status
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_totals record;
  v_verdict record;
begin
  -- FOR NO KEY UPDATE, not FOR UPDATE: the row's key never changes, and FOR UPDATE would conflict with the
  -- KEY SHARE lock that a concurrent batch's INSERT into csv_import.rejects takes on the job row (foreign key),
  -- while that batch waits for this transaction's update of the same row: a deadlock.
  select * into v_job from csv_import.jobs where id = p_job_id for no key update;
  if not found or v_job.status not in ('queued', 'running') then
    return v_job.status;
  end if;
  if exists (select 1 from csv_import.chunks where job_id = p_job_id and status in ('pending', 'running')) then
    return v_job.status;
  end if;

  select coalesce(sum(rows_parsed), 0) as parsed, coalesce(sum(rows_loaded), 0) as loaded,
         coalesce(sum(rows_rejected), 0) as rejected, coalesce(sum(rows_skipped), 0) as skipped
  into v_totals from csv_import.chunks where job_id = p_job_id and kind = 'load';

  select * into v_verdict
  from csv_import._finalize_verdict(v_job, v_totals.parsed, v_totals.loaded, v_totals.rejected, v_totals.skipped);

  update csv_import.jobs set status = v_verdict.status, error = v_verdict.error, finished_at = now(),
    updated_at = now(),
    rows_parsed = v_totals.parsed, rows_loaded = v_totals.loaded, rows_rejected = v_totals.rejected,
    rows_skipped = v_totals.skipped,
    bytes_loaded = (select coalesce(sum(end_offset - start_offset), 0) from csv_import.chunks
                    where job_id = p_job_id and kind = 'load' and status = 'succeeded'),
    rejects_status = case when v_totals.rejected > 0 then 'pending' else 'none' end::csv_import.rejects_file_status
  where id = p_job_id;
  return v_verdict.status;
end
$$;

-- How many times a registration is requested (the trigger's request, then reconcile's re-requests with backoff)
-- before reconcile fails the job. Immutable. Callers: _reconcile_registrations.
-- A constant: no locks.
create or replace function csv_import.registration_max_attempts()
returns int
language sql immutable
set search_path = ''
as $$ select 5 $$;

-- Reconcile step: registrations that did not complete in time (register_after passed) are requested again with
-- backoff (request_registration), or failed through fail_registration once registration_max_attempts() requests
-- went unanswered. Locks: the due registering job rows (FOR UPDATE SKIP LOCKED: one held by the register function
-- is left for the next round). Idempotent per round. Returns (requested, failed). Caller: reconcile.
create or replace function csv_import._reconcile_registrations(out requested int, out failed int)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job record;
begin
  requested := 0;
  failed := 0;
  for v_job in
    select id, register_attempts, error from csv_import.jobs
    where status = 'registering' and register_after <= now()
    for update skip locked
  loop
    if v_job.register_attempts >= csv_import.registration_max_attempts() then
      perform csv_import.fail_registration(v_job.id,
        format('Registration did not complete after %s attempts: %s', v_job.register_attempts,
               coalesce(v_job.error, 'the register function never answered')));
      failed := failed + 1;
    else
      perform csv_import.request_registration(v_job.id);
      requested := requested + 1;
    end if;
  end loop;
end
$$;

-- Reconcile step: object versions of the last day in watched buckets (older than a minute, so the trigger's own
-- transaction has committed) that have no job at all, because the trigger could not register them, are
-- registered (enqueue_registration), at most 100 per round, oldest first. Locks: the new job rows (and what
-- enqueue_registration takes). Idempotent: a registered version has a job. Returns how many. Caller: reconcile.
create or replace function csv_import._reconcile_orphans()
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_object storage.objects;
  v_count int := 0;
begin
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
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

-- Reconcile step: finalizes planned jobs none of whose chunks is pending or running (normally the last chunk's
-- commit_batch has done it already). Locks: each job row (finalize_job). Idempotent. Returns how many jobs it
-- looked at. Caller: reconcile.
create or replace function csv_import._reconcile_finalize()
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job record;
  v_count int := 0;
begin
  for v_job in
    select j.id from csv_import.jobs j
    where j.status in ('queued', 'running') and j.chunk_count > 0
      and not exists (select 1 from csv_import.chunks c where c.job_id = j.id and c.status in ('pending', 'running'))
  loop
    perform csv_import.finalize_job(v_job.id);
    v_count := v_count + 1;
  end loop;
  return v_count;
end
$$;

-- Reconcile step: prunes pg_cron's run history older than a week and pg_net's responses older than a day, each
-- on its own (a failure there is a warning and never undoes the steps before it). Locks: the rows it deletes.
-- Idempotent. Caller: reconcile.
create or replace function csv_import._reconcile_prune_history()
returns void
language plpgsql security definer
set search_path = ''
as $$
begin
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
end
$$;

-- The reconciler, run by pg_cron every minute (the pipeline's speed never depends on it). Each step is its own
-- function and idempotent:
--   1. expired leases (reclaim_expired_leases; also every 10 s by csv-import-leases);
--   2. registrations that did not complete: re-request with backoff, fail after registration_max_attempts()
--      (_reconcile_registrations); and object versions of the last day in watched buckets that have no job at all
--      (_reconcile_orphans: the trigger could not register them);
--   3. jobs whose object version is gone (the trigger could not stop them in time), and leftover chunks of stopped
--      jobs (_stop_stale_jobs);
--   4. finalize jobs whose chunks are all finished (_reconcile_finalize; normally done by the last chunk already);
--   5. kick the dispatch function when ready chunks or unwritten rejects files are waiting (_kick_dispatch_if_ready);
--   6. prune pg_cron's run history and pg_net's responses older than a week / a day (_reconcile_prune_history).
-- Job totals need no roll-up: commit_batch adds every batch's counts. Locks: what each step takes (row locks with
-- SKIP LOCKED where a worker may hold the row). Returns a summary for logs and tests. Caller: pg_cron
-- (csv-import-reconcile), tests.
create or replace function csv_import.reconcile()
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_expired int;
  v_registrations record;
  v_orphans int;
  v_stale int;
  v_finalized int;
  v_kicked boolean;
begin
  v_expired := csv_import.reclaim_expired_leases();
  select * into v_registrations from csv_import._reconcile_registrations();
  v_orphans := csv_import._reconcile_orphans();
  v_stale := csv_import._stop_stale_jobs();
  v_finalized := csv_import._reconcile_finalize();
  v_kicked := csv_import._kick_dispatch_if_ready('reconcile');
  perform csv_import._reconcile_prune_history();
  return jsonb_build_object('expired_leases', v_expired, 'registrations_requested', v_registrations.requested,
    'registrations_failed', v_registrations.failed, 'orphans_registered', v_orphans, 'stale_jobs_stopped', v_stale,
    'jobs_finalized', v_finalized, 'dispatch_kicked', v_kicked);
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
