-- Finalization and the reconciler (pg_cron, SQL only): every job reaches a terminal state without a person.

-- Decides a job's terminal status once none of its chunks is pending or running. Never marks a job succeeded
-- unless (1) every load chunk succeeded, (2) the chunks' owned byte ranges tile the data exactly (chunk 0's
-- first record is at data_start, each chunk's next record is the next chunk's first, the last ends at the
-- object's size: every record owned exactly once), and (3) rows in = loaded + rejected + skipped. Then:
-- succeeded, succeeded_with_rejects, or failed when the reject rate exceeds the profile's tolerance or a chunk
-- is dead. Takes the authoritative totals from the chunks. Locks: the job row. Safe to call any time, twice.
-- Callers: commit_batch (last chunk), _retry_or_dead, register_job (empty file), reconcile.
create or replace function csv_import.finalize_job(p_job_id bigint)
returns csv_import.job_status
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_dead csv_import.chunks;
  v_totals record;
  v_bad_chunk int;
  v_status csv_import.job_status;
  v_error text;
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

  select * into v_dead from csv_import.chunks where job_id = p_job_id and status = 'dead'
  order by kind desc, chunk_index limit 1;
  if found then
    v_status := 'failed';
    v_error := format('Chunk %s (%s, bytes %s–%s) failed: %s', v_dead.chunk_index, v_dead.kind,
      v_dead.start_offset, v_dead.end_offset, v_dead.last_error);
  else
    -- Chunks that own no record (one record spans them) report no offsets and must have parsed nothing; the
    -- others, in order, must continue exactly where the previous one stopped.
    select t.chunk_index into v_bad_chunk
    from (
      select c.chunk_index, c.status, c.rows_parsed, c.first_record_at, c.next_record_at,
             lag(c.next_record_at) over w as previous_next,
             row_number() over w as nth,
             count(*) over () as owning
      from csv_import.chunks c
      where c.job_id = p_job_id and c.kind = 'load' and (c.first_record_at is not null or c.status <> 'succeeded')
      window w as (order by c.chunk_index)
    ) as t
    where t.status <> 'succeeded' or t.next_record_at is null
       or t.first_record_at is distinct from case when t.nth = 1 then v_job.data_start else t.previous_next end
       or (t.nth = t.owning and t.next_record_at <> v_job.object_size)
    union all
    select c.chunk_index from csv_import.chunks c
    where c.job_id = p_job_id and c.kind = 'load' and c.first_record_at is null
      and (c.status <> 'succeeded' or c.rows_parsed <> 0 or c.next_record_at is not null)
    union all
    -- Chunk 0 starts at data_start, a record start, so a planned job always has an owning chunk.
    select 0 where v_job.chunk_count > 0 and not exists (
      select 1 from csv_import.chunks c where c.job_id = p_job_id and c.kind = 'load' and c.first_record_at is not null)
    order by 1
    limit 1;
    if found then
      v_status := 'failed';
      v_error := format('Consistency check failed: the chunks'' records do not tile the file exactly (chunk %s)',
        v_bad_chunk);
    elsif v_totals.parsed <> v_totals.loaded + v_totals.rejected + v_totals.skipped then
      v_status := 'failed';
      v_error := format('Consistency check failed: %s rows parsed but %s loaded + %s rejected + %s skipped',
        v_totals.parsed, v_totals.loaded, v_totals.rejected, v_totals.skipped);
    elsif v_totals.rejected > 0 and v_totals.rejected > v_job.tolerated_reject_rate * v_totals.parsed then
      v_status := 'failed';
      v_error := format('Rejected %s of %s rows (%s%%), above the tolerated %s%%; the %s valid rows were loaded',
        v_totals.rejected, v_totals.parsed, round(100.0 * v_totals.rejected / v_totals.parsed, 2),
        round(100 * v_job.tolerated_reject_rate, 2), v_totals.loaded);
    elsif v_totals.rejected > 0 then
      v_status := 'succeeded_with_rejects';
    else
      v_status := 'succeeded';
    end if;
  end if;

  update csv_import.jobs set status = v_status, error = v_error, finished_at = now(), updated_at = now(),
    rows_parsed = v_totals.parsed, rows_loaded = v_totals.loaded, rows_rejected = v_totals.rejected,
    rows_skipped = v_totals.skipped,
    bytes_loaded = (select coalesce(sum(end_offset - start_offset), 0) from csv_import.chunks
                    where job_id = p_job_id and kind = 'load' and status = 'succeeded'),
    rejects_status = case when v_totals.rejected > 0 then 'pending' else 'none' end
  where id = p_job_id;
  return v_status;
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

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
