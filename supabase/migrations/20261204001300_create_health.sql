-- Health: one summary for the health Edge Function and the CLI (read-only; it never repairs anything, reconcile
-- does), and Realtime on csv_import.jobs.

-- Health ---------------------------------------------------------------------------------------------------------------
-- The numbers behind health(): queue, leases, jobs by state, throughput over p_rate_window (from batch_log), totals
-- and the reconciler's last run (cron.job_run_details). Read-only; uses the partial indexes on pending and running
-- chunks; totals sum the load chunks of all jobs. Caller: health.
-- Locks: none.
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
-- Caller: health.
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
  v_bad text[] := '{}'::text[];
  v_warn text[] := '{}'::text[];
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
-- Returns whether jobs is published afterwards. Idempotent. Callers: this migration (below); run it again after enabling
-- Realtime on a project whose publication was created later.
-- Locks: the publication (ALTER PUBLICATION) when it adds the table.
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

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
