-- Issue 14: a claim with a free slot visits jobs in the order they would win, and stops once no later job can
-- win, instead of ranking (and row-locking) every waiting job's ready chunks. In issue 14's burst of small
-- files (`deno run -A bench/burst.ts --big 0`, pg_stat_statements with track = all) the claims were still the
-- database's biggest cost: 601 claims, 6.0 ms each under the claims' advisory lock (which serializes them),
-- 12 ms of the ~21 ms of database time a small file costs. With 150 single-chunk jobs waiting, one claim took
-- 13 ms: every waiting job's chunk was read and locked `for update` to pick one.
--
-- The pick is the same but for ties: the free slots go to the ready chunks ranked by (priority desc, turn,
-- created_at, job id), where a job's k-th ready chunk (in file order) has turn running + k; ties between jobs
-- created at the same instant used to go by chunk id, now by job id (the order the uploads were recorded in).
-- A job's best chunk has turn running + 1, so visiting jobs by (priority desc, running, created_at, id) visits
-- them in the order of their best chunk; once `v_free` collected chunks rank before the next job's best one,
-- that job and every later one can win no slot and the visit stops. Each visited job's chunks are read with
-- the same rules and row locks as before.
-- Otherwise as in 20261212000000_claims_scale_with_claimed.sql.
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
  v_job record;
  -- The chunks collected so far, as parallel arrays: id and rank key (priority, turn, created_at, job id; two
  -- chunks of one job never tie, their turns differ).
  v_ids bigint[] := '{}';
  v_priorities int[] := '{}';
  v_turns int[] := '{}';
  v_created timestamptz[] := '{}';
  v_jobs bigint[] := '{}';
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

  if v_free > 0 then
    for v_job in
      select j.id, j.priority, j.created_at, j.max_parallel_chunks, coalesce(r.n, 0) as n
      from csv_import.jobs j
      left join (
        select r.job_id, count(*)::int as n from csv_import.chunks r
        where r.status = 'running' and r.kind <> 'inflate'
        group by r.job_id
      ) r on r.job_id = j.id
      where j.status in ('queued', 'running') and coalesce(r.n, 0) < j.max_parallel_chunks
      order by j.priority desc, coalesce(r.n, 0), j.created_at, j.id
    loop
      -- Stop once v_free collected chunks rank before this job's best (turn n + 1; the job ids differ).
      exit when (
        select count(*) from unnest(v_priorities, v_turns, v_created, v_jobs) as k(priority, turn, created_at, job)
        where (-k.priority, k.turn, k.created_at, k.job) < (-v_job.priority, v_job.n + 1, v_job.created_at, v_job.id)
      ) >= v_free;
      select v_ids || coalesce(array_agg(c.id), '{}'),
             v_priorities || coalesce(array_agg(v_job.priority), '{}'),
             v_turns || coalesce(array_agg(v_job.n + c.k), '{}'),
             v_created || coalesce(array_agg(v_job.created_at), '{}'),
             v_jobs || coalesce(array_agg(v_job.id), '{}')
        into v_ids, v_priorities, v_turns, v_created, v_jobs
      from (
        select c.id, row_number() over (order by c.chunk_index, c.kind desc)::int as k
        from (
          select c.id, c.chunk_index, c.kind
          from csv_import.chunks c
          where c.job_id = v_job.id and c.status = 'pending' and c.available_at <= now() and c.kind <> 'inflate'
            and case
              when c.kind = 'load' then c.entry_parity is not null
              else c.end_offset - c.start_offset > csv_import.inline_scan_max_bytes()
                or c.chunk_index between 1 and v_job.max_parallel_chunks - 2
                or (v_job.n = 0 and not exists (
                  select 1 from csv_import.chunks l
                  where l.job_id = v_job.id and l.kind = 'load' and l.status = 'pending'
                    and l.available_at <= now() and l.entry_parity is not null))
            end
          order by c.chunk_index, c.kind desc -- the enum orders scan before load
          limit v_job.max_parallel_chunks - v_job.n
          for update of c skip locked
        ) c
      ) c;
    end loop;
  end if;

  return query
  with candidates as (
    select k.id, k.priority, k.turn, k.created_at, k.job
    from unnest(v_ids, v_priorities, v_turns, v_created, v_jobs) as k(id, priority, turn, created_at, job)
  ), chains as (
    select c.id
    from csv_import.jobs j
    join csv_import.chunks c on c.job_id = j.id
    where j.status in ('queued', 'running') and c.kind = 'inflate' and c.status = 'pending'
      and c.available_at <= now()
    for update of c skip locked
  ), picked as (
    (select id from candidates order by priority desc, turn, created_at, job limit v_free)
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
