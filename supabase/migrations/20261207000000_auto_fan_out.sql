-- The fan-out width, steered by what the database delivers (opt-in: FAN_OUT_AUTO_MAX > 0).
--
-- Why: the number of chunk invocations at once was one fixed number (WORKER_CONCURRENT_BATCHES, 4), chosen on a
-- 2-core machine where widths 1/2/4/8 took 46.7/24.5/21.5/28.0 s for 5M rows. A bigger database wants more, a
-- busy one fewer, and the same project sees both. The old worker's roadmap asked for "auto-scaling based on queue
-- size"; here the width follows the measured rows per second instead of a guess.
--
-- How (hill climbing with additive increase and multiplicative decrease), decided at most once per window of
-- fan_out_window() (2 s) by the dispatch that finds the window over, and only when the window was saturated
-- (every slot busy but the one the calling dispatch refills, which a finishing chunk just freed; and chunks left
-- waiting, ready or soon: within a job a load becomes ready when the load before it has scanned its range; a width
-- nobody could use says nothing about the database):
-- - the rows committed in the window (csv_import.batch_log) per second are the window's rate;
-- - after a step up, a rate at least 5 % above the rate before keeps climbing (+1, up to the maximum);
--   otherwise the width steps back and holds for fan_out_hold() (10 s) before it probes again;
-- - distress halves the width (never below 1): transactions of the database waiting for locks, or connections
--   above 80 % of max_connections;
-- - a window that was not saturated, or in which no row was committed (chunks still starting), changes nothing
--   and starts a new window.
-- Every closed window is written to csv_import.fan_out_log with its rate and decision, kept for a day (the
-- benchmark shows the width over time from it).
--
-- State: csv_import.fan_out (one row). Locks: that row, FOR UPDATE SKIP LOCKED: a dispatch that finds it
-- locked (another is deciding) uses the width as it is; nothing waits.

create table csv_import.fan_out (
  id boolean primary key default true check (id),
  width int not null check (width >= 1),
  -- The width and rate before the last step up (null: no step measured yet).
  base_width int,
  base_rate numeric,
  window_started_at timestamptz not null,
  hold_until timestamptz not null default '-infinity'
);

create table csv_import.fan_out_log (
  id bigint generated always as identity primary key,
  at timestamptz not null default clock_timestamp(),
  width int not null,
  rows_per_second numeric,
  reason text not null
);
create index fan_out_log_at_idx on csv_import.fan_out_log (at);

alter table csv_import.fan_out enable row level security;
alter table csv_import.fan_out_log enable row level security;
revoke all on csv_import.fan_out, csv_import.fan_out_log from public, anon, authenticated;
grant select, insert, update, delete on csv_import.fan_out, csv_import.fan_out_log to service_role;

-- Seconds of a measuring window. A constant: immutable, no locks. Caller: fan_out_width.
create or replace function csv_import.fan_out_window() returns interval
language sql immutable
set search_path = ''
as $$ select interval '2 seconds' $$;

-- How long the width holds after a step up that did not pay. A constant: immutable, no locks.
-- Caller: fan_out_width.
create or replace function csv_import.fan_out_hold() returns interval
language sql immutable
set search_path = ''
as $$ select interval '10 seconds' $$;

-- The fan-out width to claim with now: p_start when p_max is 0 (not steered: FAN_OUT_AUTO_MAX unset, returned at
-- once, nothing read or written), else between 1 and p_max, starting at p_start (see the file's header).
-- Locks: the csv_import.fan_out row (FOR UPDATE SKIP LOCKED; inserted on first use). Not idempotent: a call that
-- closes a window may change the width. Caller: dispatch (pipeline/dispatch.ts), on every claim.
create or replace function csv_import.fan_out_width(p_start int, p_max int)
returns int
language plpgsql security definer
set search_path = ''
as $$
declare
  v_state csv_import.fan_out;
  v_now timestamptz := clock_timestamp();
  v_max int := p_max;
  v_running int;
  v_ready boolean;
  v_rows bigint;
  v_rate numeric;
  v_lock_waits int;
  v_connections int;
  v_width int;
  v_reason text;
begin
  if p_max <= 0 then
    return greatest(p_start, 1);
  end if;
  insert into csv_import.fan_out (width, window_started_at)
  values (least(greatest(p_start, 1), v_max), v_now)
  on conflict (id) do nothing;
  select * into v_state from csv_import.fan_out for update skip locked;
  if not found then
    return least((select width from csv_import.fan_out), v_max);
  end if;
  v_width := least(v_state.width, v_max);
  if v_now - v_state.window_started_at < csv_import.fan_out_window() then
    return v_width;
  end if;

  select count(*) into v_running from csv_import.chunks where status = 'running';
  select exists (
    select 1 from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
    where c.status = 'pending' and c.available_at <= now() and j.status in ('queued', 'running')) into v_ready;
  select count(*) filter (where wait_event_type = 'Lock'), count(*)
    into v_lock_waits, v_connections
  from pg_catalog.pg_stat_activity where backend_type = 'client backend';
  select coalesce(sum(rows_parsed), 0) into v_rows from csv_import.batch_log
  where committed_at >= v_state.window_started_at;
  v_rate := round(v_rows / greatest(extract(epoch from v_now - v_state.window_started_at), 0.001), 1);

  if v_lock_waits > 0 or v_connections > 0.8 * current_setting('max_connections')::int then
    v_reason := format('distress: %s waiting for locks, %s connections', v_lock_waits, v_connections);
    v_state.base_width := null;
    v_state.base_rate := null;
    v_state.hold_until := v_now + csv_import.fan_out_hold();
    v_width := greatest(v_width / 2, 1);
  elsif v_running < v_width - 1 or not v_ready or v_rows = 0 then
    -- Not saturated, or nothing committed yet (chunks starting): nothing learned.
    v_reason := format('held: %s running, %s', v_running,
      case when not v_ready then 'nothing waiting' when v_rows = 0 then 'no row committed' else 'slots free' end);
  elsif v_state.base_width is not null and v_width > v_state.base_width then
    if v_rate >= v_state.base_rate * 1.05 then
      v_reason := format('step up paid (%s rows/s at %s, %s before)', v_rate, v_width, v_state.base_rate);
      v_state.base_width := v_width;
      v_state.base_rate := v_rate;
      v_width := least(v_width + 1, v_max);
    else
      v_reason := format('step up did not pay (%s rows/s at %s, %s at %s): back', v_rate, v_width,
        v_state.base_rate, v_state.base_width);
      v_width := v_state.base_width;
      v_state.base_width := null;
      v_state.base_rate := null;
      v_state.hold_until := v_now + csv_import.fan_out_hold();
    end if;
  elsif v_now >= v_state.hold_until and v_width < v_max then
    v_reason := format('probe up from %s (%s rows/s)', v_width, v_rate);
    v_state.base_width := v_width;
    v_state.base_rate := v_rate;
    v_width := v_width + 1;
  end if;

  update csv_import.fan_out set width = v_width, base_width = v_state.base_width, base_rate = v_state.base_rate,
    window_started_at = v_now, hold_until = v_state.hold_until;
  if v_reason is null then
    v_reason := format('held at %s (%s rows/s)', v_width, v_rate);
  end if;
  insert into csv_import.fan_out_log (width, rows_per_second, reason) values (v_width, v_rate, v_reason);
  delete from csv_import.fan_out_log where at < v_now - interval '1 day';
  return v_width;
end
$$;

revoke execute on function csv_import.fan_out_window(), csv_import.fan_out_hold(), csv_import.fan_out_width(int, int)
  from public, anon, authenticated;
grant execute on function csv_import.fan_out_window(), csv_import.fan_out_hold(), csv_import.fan_out_width(int, int)
  to service_role;
