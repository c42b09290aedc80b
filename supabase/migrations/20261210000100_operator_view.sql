-- The operator view (issue 17): what the health function's /jobs and /series routes answer, for the operator
-- screen of the web app (web/operator.html) and anyone holding the service key. Read-only, service role only.

-- Throughput per minute of the last p_minutes minutes, oldest first, the current (partial) minute last: exactly
-- p_minutes rows, minutes without work as zeros (generate_series), so a chart needs no gap handling.
-- rows_loaded and rows_rejected: the batches committed in that minute (csv_import.batch_log, kept a day by
-- prune_batch_log, hence at most 1440 minutes). bytes: batch_log records no bytes, so this is the byte span of the
-- load chunks that succeeded in that minute (csv_import.chunks.finished_at): a chunk's bytes count in the minute
-- it finished, not spread over the minutes it ran.
-- Raises 22023 for p_minutes outside 1..1440. Locks: none. Callers: the health function (GET /series).
create or replace function csv_import.throughput_series(p_minutes int default 60)
returns table (minute timestamptz, rows_loaded bigint, rows_rejected bigint, bytes bigint)
language plpgsql stable security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_first timestamptz := pg_catalog.date_trunc('minute', now()) - (p_minutes - 1) * interval '1 minute';
begin
  if p_minutes is null or p_minutes < 1 or p_minutes > 1440 then
    raise exception 'p_minutes must be from 1 to 1440 (batch_log is kept a day), got %', p_minutes
      using errcode = '22023';
  end if;
  return query
  select m.minute, coalesce(b.rows_loaded, 0)::bigint, coalesce(b.rows_rejected, 0)::bigint,
    coalesce(c.bytes, 0)::bigint
  from pg_catalog.generate_series(v_first, pg_catalog.date_trunc('minute', now()), interval '1 minute') as m(minute)
  left join (
    select pg_catalog.date_trunc('minute', l.committed_at) as minute, sum(l.rows_loaded) as rows_loaded,
      sum(l.rows_rejected) as rows_rejected
    from csv_import.batch_log l where l.committed_at >= v_first
    group by 1
  ) as b on b.minute = m.minute
  left join (
    select pg_catalog.date_trunc('minute', k.finished_at) as minute, sum(k.end_offset - k.start_offset) as bytes
    from csv_import.chunks k
    where k.kind = 'load' and k.status = 'succeeded' and k.finished_at >= v_first
    group by 1
  ) as c on c.minute = m.minute
  order by m.minute;
end
$$;

-- Every job, newest first (at most p_limit, 1..1000), whoever owns it: its object, owner, status, progress
-- (csv_import.job_progress: percent of the bytes after the header), rows loaded, rejects, when it was created and
-- finished, and its error. Raises 22023 for p_limit outside 1..1000. Locks: none. Callers: the health function
-- (GET /jobs).
create or replace function csv_import.jobs_overview(p_limit int default 100)
returns table (job_id bigint, bucket text, object text, owner_id text, status text, percent numeric,
  rows_loaded bigint, rows_rejected bigint, created_at timestamptz, finished_at timestamptz, error text)
language plpgsql stable security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  if p_limit is null or p_limit < 1 or p_limit > 1000 then
    raise exception 'p_limit must be from 1 to 1000, got %', p_limit using errcode = '22023';
  end if;
  return query
  select p.job_id, p.bucket_id, p.object_name, j.owner_id, p.status::text, p.percent, p.rows_loaded::bigint,
    p.rows_rejected::bigint, p.created_at, p.finished_at, p.error
  from csv_import.job_progress p
  join csv_import.jobs j on j.id = p.job_id
  order by p.job_id desc
  limit p_limit;
end
$$;

revoke execute on function csv_import.throughput_series(int), csv_import.jobs_overview(int)
  from public, anon, authenticated;
grant execute on function csv_import.throughput_series(int), csv_import.jobs_overview(int) to service_role;
