-- Issue 14: a claim's cost grows with what it claims, not with every job waiting. Measured in issue 14's burst
-- (300 small files uploaded at once, 2 cores; pg_stat_statements with track = all, `deno run -A bench/burst.ts
-- --big 0`): 601 claims of 13.7 ms each under the claims' advisory lock, which serializes them (5.6 ms of that
-- waiting for the lock), with up to 117 jobs queued behind the fan-out width. Two parts were wasted:
-- - marking jobs running looked at every queued job for a running chunk (3.4 ms a claim). Only claim_chunks
--   makes a chunk running, so only the jobs of the chunks it has just claimed can change;
-- - a claim with no free slot (most of them in a burst: every registration and every finished chunk dispatches)
--   still ranked every waiting job's ready chunks (2.9 ms) to claim none. It now returns first, unless a chain
--   waits (chains are claimed whatever runs).
-- After, old and new alternated on the whole burst (docs/performance.md): the database's CPU 8.2–9.7 → 6.7–7.7 s.
-- Tried and dropped: reading the candidates without `for update … skip locked` and locking only the picked
-- chunks. With three big files beside the small ones the planner then read every ready chunk once per job
-- (56 ms a claim, the database's CPU 9 → 22 s); the lateral's LockRows keeps it on a per-job plan.
-- Otherwise as in 20261211000100_compressed_uploads.sql.
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
  -- The global limit counts loads and scans; a chain is claimed whatever runs (one per compressed job).
  select greatest(least(max_chunks, global_limit - count(*)), 0) into v_free from csv_import.chunks c
  where c.status = 'running' and c.kind <> 'inflate';
  if v_free = 0 and not exists (
    select 1 from csv_import.chunks c
    where c.status = 'pending' and c.kind = 'inflate' and c.available_at <= now()
  ) then
    return;
  end if;

  return query
  with candidates as (
    select c.id, j.priority, j.created_at,
           running.n + row_number() over (partition by c.job_id order by c.claim_order, c.kind desc) as turn
    from csv_import.jobs j
    cross join lateral (
      select count(*)::int as n from csv_import.chunks r
      where r.job_id = j.id and r.status = 'running' and r.kind <> 'inflate'
    ) as running
    cross join lateral (
      select c.id, c.job_id, c.kind, c.chunk_index, c.chunk_index as claim_order
      from csv_import.chunks c
      where c.job_id = j.id and c.status = 'pending' and c.available_at <= now() and c.kind <> 'inflate'
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
  ), chains as (
    select c.id
    from csv_import.jobs j
    join csv_import.chunks c on c.job_id = j.id
    where j.status in ('queued', 'running') and c.kind = 'inflate' and c.status = 'pending'
      and c.available_at <= now()
    for update of c skip locked
  ), picked as (
    (select id from candidates order by priority desc, turn, created_at, id limit v_free)
    union all
    select id from chains
  ), claimed as (
    update csv_import.chunks c set
      status = 'running',
      attempts = c.attempts + 1,
      lease_token = gen_random_uuid(),
      lease_until = now() + lease,
      started_at = coalesce(c.started_at, now()),
      updated_at = now()
    from picked
    where c.id = picked.id
    returning c.id, c.job_id, c.kind, c.chunk_index, c.lease_token
  ), started as (
    update csv_import.jobs j set status = 'running', started_at = coalesce(j.started_at, now()), updated_at = now()
    where j.status = 'queued' and j.id in (select claimed.job_id from claimed)
  )
  select claimed.id, claimed.job_id, claimed.kind, claimed.chunk_index, claimed.lease_token from claimed;
end
$$;
