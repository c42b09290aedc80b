-- Operator control: cancel and retry (redrive) a job.
--
-- Invariants:
-- - Cancel and retry only move state through the existing protocol: cancel_job is stop_job (running chunks stop at
--   their next batch boundary, because begin_batch and commit_batch refuse batches of a stopped job); retry_job
--   requeues dead and cancelled chunks with their progress markers, so every committed batch stays and nothing is
--   written twice.

-- Cancel ------------------------------------------------------------------------------------------------------------
-- Cancels a job: it stops dispatching (pending chunks are cancelled), chunks in flight stop at their next batch
-- boundary (begin_batch answers 'stopped'; the batch in progress, if any, commits first because stop_job waits for
-- its row lock), and nothing is half-written. A job with rejects gets its rejects file written (dispatch is kicked).
-- Locks: as stop_job (unfinished chunk rows in id order, then the job row). Idempotent: a job that is already
-- finished (cancelled or not) is left as it is and reported with cancelled = false. Raises P0002 for an unknown job.
-- Returns {"job_id", "status", "cancelled", "chunks_cancelled"}. Callers: the CLI (cancel), operators.
create or replace function csv_import.cancel_job(p_job_id bigint, p_reason text default 'Cancelled by request')
returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_stopped boolean;
  v_chunks bigint := 0;
  v_job csv_import.jobs;
begin
  if not exists (select 1 from csv_import.jobs where id = p_job_id) then
    raise exception 'Job % does not exist', p_job_id using errcode = 'P0002';
  end if;
  v_stopped := csv_import.stop_job(p_job_id, 'cancelled',
    coalesce(nullif(btrim(p_reason), ''), 'Cancelled by request'));
  if v_stopped then
    -- stop_job stamped the chunks it cancelled with updated_at = now(), this transaction's start.
    select count(*) into v_chunks from csv_import.chunks
    where job_id = p_job_id and status = 'cancelled' and updated_at = now();
    -- stop_job looks at the job's totals, which count finished chunks only; rejects stored by committed batches of
    -- the chunks it stopped need the file too.
    update csv_import.jobs set rejects_status = 'pending'
    where id = p_job_id and rejects_status = 'none' and rejects_stored > 0;
  end if;
  select * into v_job from csv_import.jobs where id = p_job_id;
  if v_stopped then
    if v_job.rejects_status = 'pending' then
      perform csv_import.request_function('dispatch', '{"reason": "cancel"}'::jsonb);
    end if;
  end if;
  return jsonb_build_object('job_id', p_job_id, 'status', v_job.status, 'cancelled', v_stopped,
    'chunks_cancelled', v_chunks);
end
$$;

-- Raises (55000) with the reason when a job may not be retried (see retry_job): not failed or cancelled;
-- superseded; its object gone, or holding another version than the job's (an upsert keeps the object's id, so
-- the version decides: retrying would read the new bytes at the old offsets), naming the newer version's job.
-- Read-only, no locks (retry_job holds the job row). Idempotent. Caller: retry_job.
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
    v_newer := csv_import._current_job_of_object(p_job.bucket_id, p_job.object_name);
    raise exception 'The object %/% was overwritten after job % started: %', p_job.bucket_id, p_job.object_name,
      p_job.id, coalesce(format('job %s imports the new version; retry that one instead', v_newer),
                         'the new version has no job yet (reconcile registers it within a minute)')
      using errcode = '55000';
  end if;
end
$$;

-- Re-runs a failed or cancelled job, like a Step Functions redrive: only its dead and cancelled chunks run again,
-- reset to pending with attempts 0 (a full attempt budget), keeping their progress markers, so each resumes after
-- its last committed batch and every committed batch stays. The job reopens (running, or queued if it never
-- started nor committed a batch; error and finished_at cleared; its totals are those of all its load chunks, as
-- commit_batch adds per batch) and dispatch is kicked. A job that was never planned (registration failed or was
-- cancelled) is registered again instead. Refused (55000, _check_retryable) for a job that is not failed or
-- cancelled, superseded, whose object is gone or overwritten, or with nothing to re-run; P0002 for an unknown job.
-- Locks: the job row (FOR NO KEY UPDATE), then its dead and cancelled chunk rows (id order). Idempotent in effect:
-- a second call finds the job reopened and is refused, changing nothing.
-- Returns {"job_id", "status", "chunks_requeued", "registration_requested"}. Callers: the CLI (retry), operators.
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
  returning j.* into v_job;
  perform csv_import.request_function('dispatch', '{"reason": "retry"}'::jsonb);
  return jsonb_build_object('job_id', p_job_id, 'status', v_job.status, 'chunks_requeued', v_requeued,
    'registration_requested', false);
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
