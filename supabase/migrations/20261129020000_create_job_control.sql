-- Operations: cancel and retry a job, an append-only log of committed batches (throughput metrics), one health
-- summary for the health Edge Function and the CLI, and Realtime on csv_import.jobs.
--
-- Invariants:
-- - Cancel and retry only move state through the existing protocol: cancel_job is stop_job (running chunks stop at
--   their next batch boundary, because begin_batch refuses batches of a stopped job or a cancelled chunk); retry_job
--   requeues dead and cancelled chunks with their progress markers, so every committed batch stays and nothing is
--   written twice.
-- - batch_log is written by a trigger on csv_import.chunks in the batch's own transaction (no edit of commit_batch:
--   any change of batches_committed logs the deltas), so a rolled-back batch logs nothing. It has no foreign keys,
--   to add no lock to the batch transaction; rows older than a day are pruned hourly.
-- - health() reads only; it never repairs anything (reconcile does).

-- Committed batches -------------------------------------------------------------------------------------------------
create table if not exists csv_import.batch_log (
  id bigint generated always as identity primary key,
  job_id bigint not null,
  chunk_id bigint not null,
  rows_parsed bigint not null,
  rows_loaded bigint not null,
  rows_rejected bigint not null,
  rows_skipped bigint not null,
  committed_at timestamptz not null default now()
);
create index if not exists batch_log_committed_at_idx on csv_import.batch_log (committed_at);
alter table csv_import.batch_log enable row level security;
revoke all on csv_import.batch_log from public, anon, authenticated;
grant all on csv_import.batch_log to service_role;

-- Appends one batch_log row per committed batch: the counts by which the chunk's totals grew. Runs inside
-- commit_batch's update of the chunk (same transaction; the chunk row is already locked). Cost: one small insert per
-- batch, about 5 µs measured here (20,000 inserts in 0.1 s), against milliseconds for a 5,000-row batch.
-- Caller: the trigger below.
create or replace function csv_import._log_batch()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into csv_import.batch_log (job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped)
  values (new.job_id, new.id, new.rows_parsed - old.rows_parsed, new.rows_loaded - old.rows_loaded,
          new.rows_rejected - old.rows_rejected, new.rows_skipped - old.rows_skipped);
  return null;
end
$$;

drop trigger if exists csv_import_log_batch on csv_import.chunks;
create trigger csv_import_log_batch
  after update of batches_committed on csv_import.chunks
  for each row when (new.batches_committed > old.batches_committed)
  execute function csv_import._log_batch();

-- Deletes batch_log rows older than `keep`; returns how many. Idempotent. Caller: pg_cron (hourly, below).
create or replace function csv_import.prune_batch_log(keep interval default interval '1 day')
returns bigint
language sql security definer
set search_path = ''
as $$
  with gone as (delete from csv_import.batch_log where committed_at < now() - keep returning 1)
  select count(*) from gone
$$;

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

-- Retry (redrive) -----------------------------------------------------------------------------------------------------
-- Re-runs a failed or cancelled job, like a Step Functions redrive: only its dead and cancelled chunks run again,
-- reset to pending with attempts 0 (a full attempt budget), keeping their progress markers, so each resumes after
-- its last committed batch and every committed batch stays. The job reopens (running, or queued if it never
-- started nor committed a batch; error and finished_at cleared; its totals are those of its succeeded chunks again,
-- as commit_batch expects) and dispatch is kicked. A job that was never planned (registration failed or was cancelled) is
-- registered again instead.
-- Refused with a clear error (SQLSTATE 55000) for a job that is not failed or cancelled, one superseded by a newer
-- version of its object, one whose object is gone, and one with nothing to re-run (e.g. failed for its reject rate);
-- P0002 for an unknown job.
-- Locks: the job's dead and cancelled chunk rows (id order), then the job row, as stop_job does. Idempotent in
-- effect: a second call finds the job reopened and is refused, changing nothing.
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
  perform 1 from csv_import.chunks where job_id = p_job_id and status in ('dead', 'cancelled') order by id for update;
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
  where job_id = p_job_id and status in ('dead', 'cancelled');
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
           coalesce(sum(c.end_offset - c.start_offset), 0) as bytes,
           exists (select 1 from csv_import.chunks p where p.job_id = p_job_id and p.batches_committed > 0) as progressed
    from csv_import.chunks c where c.job_id = p_job_id and c.kind = 'load' and c.status = 'succeeded'
  ) as t
  where j.id = p_job_id
  returning * into v_job;
  perform csv_import.request_function('dispatch', '{"reason": "retry"}'::jsonb);
  return jsonb_build_object('job_id', p_job_id, 'status', v_job.status, 'chunks_requeued', v_requeued,
    'registration_requested', false);
end
$$;

-- Raises (55000) with the reason when a job may not be retried; see retry_job. Caller: retry_job.
create or replace function csv_import._check_retryable(p_job csv_import.jobs)
returns void
language plpgsql stable security definer
set search_path = ''
as $$
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
  if p_job.object_id is not null and not exists (
    select 1 from storage.objects o
    where o.id = p_job.object_id and o.bucket_id = p_job.bucket_id and o.name = p_job.object_name
  ) then
    raise exception 'The object %/% of job % no longer exists; upload it again', p_job.bucket_id,
      p_job.object_name, p_job.id using errcode = '55000';
  end if;
end
$$;

-- Health ---------------------------------------------------------------------------------------------------------------
-- The numbers behind health(): queue, leases, jobs by state, throughput over p_rate_window (from batch_log), totals
-- and the reconciler's last run (cron.job_run_details). Read-only; uses the partial indexes on pending and running
-- chunks; totals sum the load chunks of all jobs. Caller: health.
create or replace function csv_import._health_metrics(p_stuck_after interval, p_rate_window interval)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select jsonb_build_object(
    'checked_at', now(),
    'stuck_after_seconds', extract(epoch from p_stuck_after)::float8,
    'queue', (
      select jsonb_build_object(
        'depth', count(*) filter (where r.ready),
        'pending', count(*) filter (where c.status = 'pending'),
        'in_flight', count(*) filter (where c.status = 'running'),
        'oldest_ready_age_seconds', round(extract(epoch from now() - min(c.available_at) filter (where r.ready)), 1),
        'expired_leases', count(*) filter (where c.status = 'running' and c.lease_until < now()),
        'oldest_expired_lease_seconds', round(extract(epoch from now() - min(c.lease_until)
          filter (where c.status = 'running' and c.lease_until < now())), 1)
      )
      from csv_import.chunks c
      join csv_import.jobs j on j.id = c.job_id
      cross join lateral (
        select c.status = 'pending' and c.available_at <= now() and j.status in ('queued', 'running')
               and (c.kind = 'scan' or c.entry_parity is not null) as ready
      ) as r
      where c.status in ('pending', 'running')
    ),
    'jobs', (
      select jsonb_build_object(
        'by_state', (select jsonb_object_agg(s.state, coalesce(n.count, 0))
                     from unnest(enum_range(null::csv_import.job_status)) as s(state)
                     left join (select status, count(*) from csv_import.jobs group by status) as n
                       on n.status = s.state),
        'registering_stuck', (select count(*) from csv_import.jobs
                              where status = 'registering' and created_at < now() - p_stuck_after),
        'failed_in_window', (select count(*) from csv_import.jobs
                             where status = 'failed' and finished_at >= now() - p_rate_window))
    ),
    'window', (
      select jsonb_build_object(
        'seconds', extract(epoch from p_rate_window)::float8,
        'batches', count(*),
        'rows_parsed', coalesce(sum(b.rows_parsed), 0),
        'rows_loaded', coalesce(sum(b.rows_loaded), 0),
        'rows_rejected', coalesce(sum(b.rows_rejected), 0),
        'rows_skipped', coalesce(sum(b.rows_skipped), 0),
        'rows_per_second', round(coalesce(sum(b.rows_loaded), 0) / greatest(extract(epoch from p_rate_window), 1), 1),
        'reject_rate', round(sum(b.rows_rejected)::numeric / nullif(sum(b.rows_parsed), 0), 4))
      from csv_import.batch_log b where b.committed_at >= now() - p_rate_window
    ),
    'totals', (
      select jsonb_build_object(
        'rows_loaded', coalesce(sum(c.rows_loaded), 0),
        'rows_rejected', coalesce(sum(c.rows_rejected), 0),
        'rows_skipped', coalesce(sum(c.rows_skipped), 0),
        'bytes_loaded', coalesce(sum(c.end_offset - c.start_offset) filter (where c.status = 'succeeded'), 0))
      from csv_import.chunks c where c.kind = 'load'
    ),
    'reconcile', (
      select jsonb_build_object(
        'scheduled', cj.jobid is not null,
        'active', cj.active,
        'last_start', d.start_time,
        'last_end', d.end_time,
        'last_status', d.status,
        'last_message', case when d.status = 'failed' then d.return_message end,
        'seconds_since_last_start', round(extract(epoch from now() - d.start_time), 1))
      from (select 1) as one
      left join cron.job cj on cj.jobname = 'csv-import-reconcile'
      left join lateral (
        select r.start_time, r.end_time, r.status, r.return_message from cron.job_run_details r
        where r.jobid = cj.jobid order by r.runid desc limit 1
      ) as d on true
    )
  )
$$;

-- Decides the overall status from health metrics (pure; table-driven tests in supabase/tests/database/control/):
--   unhealthy: work is stuck — ready chunks waited longer than p_stuck_after with nothing in flight; leases expired
--              more than 3 minutes ago and were not reclaimed; the reconciler has not started for more than
--              3 minutes (it runs every minute) or is not scheduled; jobs registering longer than p_stuck_after
--              (usually the Vault secrets are missing);
--   degraded:  expired leases waiting for the reconciler (workers stopped before finishing: CPU or wall-clock
--              limits); the last reconcile run failed; jobs failed in the window; the window's reject rate is
--              above p_max_reject_rate;
--   healthy:   none of these.
-- Returns {"status": …, "problems": [sentences, worst first]}.
create or replace function csv_import._health_status(p_metrics jsonb, p_stuck_after interval,
  p_max_reject_rate numeric)
returns jsonb
language plpgsql immutable
set search_path = ''
as $$
declare
  q jsonb := p_metrics -> 'queue';
  rc jsonb := p_metrics -> 'reconcile';
  w jsonb := p_metrics -> 'window';
  v_stuck float8 := extract(epoch from p_stuck_after);
  v_bad text[] := '{}';
  v_warn text[] := '{}';
begin
  if (q ->> 'oldest_ready_age_seconds')::numeric > v_stuck and (q ->> 'in_flight')::int = 0 then
    v_bad := v_bad || format('Work is stuck: %s chunks are ready, the oldest for %s s, and none is running '
      '(can the database reach the dispatch function?)', q ->> 'depth', q ->> 'oldest_ready_age_seconds');
  end if;
  if (q ->> 'oldest_expired_lease_seconds')::numeric > 180 then
    v_bad := v_bad || format('Chunk leases expired %s s ago and were not reclaimed (is the reconciler running?)',
      q ->> 'oldest_expired_lease_seconds');
  end if;
  if not coalesce((rc ->> 'scheduled')::boolean, false) then
    v_bad := v_bad || 'The reconciler is not scheduled: pg_cron job csv-import-reconcile is missing'::text;
  elsif rc ->> 'last_start' is null or (rc ->> 'seconds_since_last_start')::numeric > 180 then
    v_bad := v_bad || format('The reconciler (pg_cron job csv-import-reconcile) has not run for %s',
      coalesce((rc ->> 'seconds_since_last_start') || ' s', 'as long as its run history goes back'));
  end if;
  if (p_metrics #>> '{jobs,registering_stuck}')::int > 0 then
    v_bad := v_bad || format('%s jobs have been registering for more than %s s (are the Vault secrets '
      'csv_import_api_url and csv_import_service_key set?)', p_metrics #>> '{jobs,registering_stuck}', v_stuck);
  end if;
  if (q ->> 'expired_leases')::int > 0 then
    v_warn := v_warn || format('%s chunk leases expired (workers stopped before finishing); the reconciler '
      'retries them', q ->> 'expired_leases');
  end if;
  if rc ->> 'last_status' = 'failed' then
    v_warn := v_warn || format('The last reconcile run failed: %s', rc ->> 'last_message');
  end if;
  if (p_metrics #>> '{jobs,failed_in_window}')::int > 0 then
    v_warn := v_warn || format('%s jobs failed in the last %s s', p_metrics #>> '{jobs,failed_in_window}',
      w ->> 'seconds');
  end if;
  if (w ->> 'reject_rate')::numeric > p_max_reject_rate then
    v_warn := v_warn || format('%s%% of the rows parsed in the last %s s were rejected',
      round(100 * (w ->> 'reject_rate')::numeric, 1), w ->> 'seconds');
  end if;
  return jsonb_build_object(
    'status', case when cardinality(v_bad) > 0 then 'unhealthy' when cardinality(v_warn) > 0 then 'degraded'
                   else 'healthy' end,
    'problems', to_jsonb(v_bad || v_warn));
end
$$;

-- The pipeline's health in one JSON document: {"status": "healthy" | "degraded" | "unhealthy", "problems": […],
-- "checked_at", "stuck_after_seconds", "queue": {depth, pending, in_flight, oldest_ready_age_seconds,
-- expired_leases, oldest_expired_lease_seconds}, "jobs": {by_state: {<status>: n}, registering_stuck,
-- failed_in_window}, "window": {seconds, batches, rows_parsed, rows_loaded, rows_rejected, rows_skipped,
-- rows_per_second, reject_rate}, "totals": {rows_loaded, rows_rejected, rows_skipped, bytes_loaded},
-- "reconcile": {scheduled, active, last_start, last_end, last_status, last_message, seconds_since_last_start}}.
-- Read-only, no locks. Callers: the health Edge Function, the CLI (status).
create or replace function csv_import.health(
  stuck_after interval default interval '5 minutes',
  rate_window interval default interval '5 minutes',
  max_reject_rate numeric default 0.5
) returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select csv_import._health_status(m, health.stuck_after, health.max_reject_rate) || m
  from csv_import._health_metrics(health.stuck_after, health.rate_window) as m
$$;

-- Realtime ---------------------------------------------------------------------------------------------------------
-- Adds csv_import.jobs to the supabase_realtime publication when that publication exists and does not already
-- publish it (or all tables), so clients can follow a job with Postgres Changes (RLS: owners see their jobs).
-- Returns whether jobs is published afterwards. Idempotent. Callers: this migration; run it again after enabling
-- Realtime on a project whose publication was created later.
create or replace function csv_import.enable_realtime()
returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    return false;
  end if;
  if not exists (select 1 from pg_catalog.pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'csv_import' and tablename = 'jobs') then
    alter publication supabase_realtime add table csv_import.jobs;
  end if;
  return true;
end
$$;
select csv_import.enable_realtime();

-- Privileges: the service role only (see the schema migration).
revoke execute on function csv_import._log_batch(), csv_import.prune_batch_log(interval),
  csv_import.cancel_job(bigint, text), csv_import.retry_job(bigint), csv_import._check_retryable(csv_import.jobs),
  csv_import._health_metrics(interval, interval), csv_import._health_status(jsonb, interval, numeric),
  csv_import.health(interval, interval, numeric), csv_import.enable_realtime()
  from public, anon, authenticated;
grant execute on function csv_import.prune_batch_log(interval), csv_import.cancel_job(bigint, text),
  csv_import.retry_job(bigint), csv_import._check_retryable(csv_import.jobs),
  csv_import._health_metrics(interval, interval), csv_import._health_status(jsonb, interval, numeric),
  csv_import.health(interval, interval, numeric), csv_import.enable_realtime()
  to service_role;

select cron.schedule('csv-import-prune-batch-log', '17 * * * *', 'select csv_import.prune_batch_log()');
