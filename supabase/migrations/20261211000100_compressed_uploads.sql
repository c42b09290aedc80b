-- Issue 16, compressed uploads: `.csv.gz` (one or more gzip members) and a `.zip` holding one CSV (deflate or
-- stored) load with every guarantee a plain file has.
--
-- How: a gzip stream cannot be split at a byte offset, so a compressed job is planned with one chunk of kind
-- 'inflate' (the chain) and no load chunks. Each invocation of the chain resumes inflating from the last
-- checkpoint (zlib's zran technique: a deflate block boundary, its bit offset and the last 32 KiB of output,
-- csv_import.inflate_checkpoints), inflates a few chunk sizes of data, scans it as it goes (quote parity,
-- newlines), and commits in one transaction (commit_inflate_step): the checkpoints at its chunk boundaries, one
-- load chunk per range of decompressed data with that range's scan, and its own progress; then it hands itself on
-- (yield_chunk) and the next invocation goes on. Load chunks are ordinary loads of decompressed byte ranges: each
-- resumes inflation from the checkpoint at its start, so they run in parallel behind the chain.
--
-- Invariants:
-- - Offsets of a compressed job's load chunks, data_start, resume markers and rejects are decompressed offsets;
--   object_size stays the object's (compressed) size, data_size is the decompressed size once the chain has
--   reached the end (finalize_job checks the tiling against it), null before and for plain files.
-- - The chain commits exactly once per step: commit_inflate_step requires the caller's lease and the chain's
--   progress marker (the inflate chunk's resume_offset) to be where the step started, and the ranges to continue
--   the job's last load chunk without gap or overlap. A chain that dies resumes from its last committed
--   checkpoint; no range is created twice.
-- - The inflate chunk is claimable whenever it is pending, outside the job's max_parallel_chunks and the global
--   width (it is what every later load of its job waits for).

alter table csv_import.jobs add column compression jsonb;
alter table csv_import.jobs add column data_size bigint;
alter table csv_import.jobs add column inflated_out bigint not null default 0;
alter table csv_import.jobs add column inflated_in bigint not null default 0;
comment on column csv_import.jobs.compression is
  'A compressed upload: {"codec": gzip|deflate|stored, "data_offset", "data_end", "member", "expected", '
  '"max_data_bytes", "max_ratio"}; null for a plain file';
comment on column csv_import.jobs.data_size is
  'The decompressed size of a compressed upload, once its inflate chain reached the end; null otherwise';
comment on column csv_import.jobs.inflated_out is 'Decompressed bytes the inflate chain has committed';
comment on column csv_import.jobs.inflated_in is 'Object (compressed) bytes the inflate chain has consumed';

-- Where inflation can resume: a deflate block boundary (or a gzip member start) at decompressed offset out_offset.
-- in_offset: the first object byte not fully consumed; bits: how many bits of byte in_offset - 1 are not consumed
-- yet (0: byte-aligned); history: the last <= 32 KiB of output (the deflate window); member: a gzip member's
-- running CRC-32 and size.
create table csv_import.inflate_checkpoints (
  job_id bigint not null references csv_import.jobs (id) on delete cascade,
  out_offset bigint not null check (out_offset >= 0),
  in_offset bigint not null check (in_offset >= 0),
  bits smallint not null check (bits between 0 and 7),
  history bytea not null check (length(history) <= 32768),
  member jsonb,
  created_at timestamptz not null default now(),
  primary key (job_id, out_offset)
);
alter table csv_import.inflate_checkpoints enable row level security;
revoke all on csv_import.inflate_checkpoints from public, anon, authenticated;
grant all on csv_import.inflate_checkpoints to service_role;

-- What register_job stores on the job from the plan (one place for every plan field; register_job decides the
-- chunks). Caller: register_job, which holds the job row.
create or replace function csv_import._store_plan(
  p_job_id bigint, p_plan jsonb, p_size bigint, p_data_start bigint, p_chunk_size bigint, p_count int
) returns void
language sql security definer
set search_path = ''
as $$
  update csv_import.jobs j set
    status = 'queued',
    object_size = p_size,
    profile_id = (p_plan ->> 'profile_id')::bigint,
    profile_name = p_plan ->> 'profile_name',
    target_table = p_plan ->> 'target_table',
    priority = coalesce((p_plan ->> 'priority')::int, 0),
    max_parallel_chunks = coalesce((p_plan ->> 'max_parallel_chunks')::int, 4),
    max_attempts = coalesce((p_plan ->> 'max_attempts')::int, 5),
    tolerated_reject_rate = coalesce((p_plan ->> 'tolerated_reject_rate')::numeric, 0),
    max_rejects = (p_plan ->> 'max_rejects')::bigint,
    reject_rate_after_rows = (p_plan ->> 'reject_rate_after_rows')::bigint,
    dry_run = coalesce((p_plan ->> 'dry_run')::boolean, false),
    table_sql = p_plan ->> 'table_sql',
    scratch_table = p_plan ->> 'scratch_table',
    dialect = p_plan -> 'dialect',
    columns = p_plan -> 'columns',
    compression = nullif(p_plan -> 'compression', 'null'::jsonb),
    data_start = p_data_start,
    header_lines = coalesce((p_plan ->> 'header_lines')::bigint, 0),
    prefix_lines = coalesce((p_plan ->> 'header_lines')::bigint, 0),
    chunk_size = p_chunk_size,
    chunk_count = p_count,
    error = null,
    updated_at = now()
  where j.id = p_job_id
$$;

-- As in 20261209000200_dry_run.sql (a plain file: load chunks over [data_start, object_size), a scan chunk for every
-- load chunk but the last), and a compressed file (plan field "compression") gets the inflate chunk only: its load
-- chunks come from the chain (commit_inflate_step); data_start is then a decompressed offset. The job update is
-- _store_plan.
create or replace function csv_import.register_job(p_job_id bigint, p_plan jsonb)
returns table (job_id bigint, status csv_import.job_status, chunk_count int, planned boolean)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_size bigint;
  v_data_start bigint := (p_plan ->> 'data_start')::bigint;
  v_chunk_size bigint := (p_plan ->> 'chunk_size')::bigint;
  v_compressed boolean := coalesce(jsonb_typeof(p_plan -> 'compression') = 'object', false);
  v_count int;
begin
  select * into v_job from csv_import.jobs j where j.id = p_job_id for update;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'P0002';
  end if;
  if v_job.status <> 'registering' then
    return query select v_job.id, v_job.status, v_job.chunk_count, false;
    return;
  end if;
  v_size := coalesce((p_plan ->> 'object_size')::bigint, v_job.object_size);
  if v_chunk_size is null or v_chunk_size < 1 or v_data_start is null or v_data_start < 0 or v_size is null
     or (v_data_start > v_size and not v_compressed) then
    raise exception 'Invalid plan for job %: data_start %, chunk_size %, size %', p_job_id, v_data_start,
      v_chunk_size, v_size using errcode = '22023';
  end if;

  if v_compressed then
    perform csv_import._store_plan(p_job_id, p_plan, v_size, v_data_start, v_chunk_size, 0);
    insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset)
    values (p_job_id, 'inflate', 0, 0, greatest(v_size, 1));
    return query select j.id, j.status, j.chunk_count, true from csv_import.jobs j where j.id = p_job_id;
    return;
  end if;

  v_count := ceil((v_size - v_data_start)::numeric / v_chunk_size)::int;
  perform csv_import._store_plan(p_job_id, p_plan, v_size, v_data_start, v_chunk_size, v_count);

  insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, entry_parity, lines_before,
                                 at_record_start)
  select p_job_id, k.kind, i, v_data_start + i * v_chunk_size, least(v_data_start + (i + 1) * v_chunk_size, v_size),
         case when k.kind = 'load' and i = 0 then 0 end,
         case when k.kind = 'load' and i = 0 then coalesce((p_plan ->> 'header_lines')::bigint, 0) end,
         case when k.kind = 'load' and i = 0 then true end
  from generate_series(0, v_count - 1) as i
  cross join (values ('load'::csv_import.chunk_kind), ('scan'::csv_import.chunk_kind)) as k(kind)
  where k.kind = 'load' or i < v_count - 1;

  if v_count = 0 then
    perform csv_import.finalize_job(p_job_id); -- header only: nothing to load
  end if;
  return query select j.id, j.status, j.chunk_count, true from csv_import.jobs j where j.id = p_job_id;
end
$$;

-- One step of a compressed job's inflate chain, committed at once: the checkpoints at the step's chunk boundaries
-- (p_checkpoints: [{out, in, bits, window (base64), member}]), a load chunk per completed range of decompressed
-- data (p_ranges: [{start, end, quote_parity, newline_count, ends_with_terminator}], contiguous, the first
-- continuing the job's last load chunk, or data_start), each range's scan as a succeeded scan chunk (but the last
-- range of the file's), the folded entry states (_advance_scanned_prefix: the new loads become ready in order), and
-- the chain's progress (p_to_out: the decompressed offset reached; p_in_offset: object bytes consumed). p_ended:
-- the stream is complete (verified), p_to_out is the decompressed size: the inflate chunk succeeds and the job
-- finalizes once its loads are done (at once when it has none: a header only).
-- Returns 'ok'; 'lease_lost' (not the caller's lease), 'stopped' (the job is no longer active), 'duplicate' (the
-- chain is not where the step began: another invocation committed it). Raises 22023 for ranges that do not
-- continue the data exactly. Locks: the inflate chunk row, then the job row (FOR NO KEY UPDATE), as
-- _advance_scanned_prefix. Idempotent: a repeated step is refused ('duplicate' or 'lease_lost'). Caller: the chunk
-- worker's inflate step.
create or replace function csv_import.commit_inflate_step(
  p_chunk_id bigint, p_lease_token uuid, p_from_out bigint, p_to_out bigint, p_in_offset bigint,
  p_ranges jsonb, p_checkpoints jsonb, p_ended boolean
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chain csv_import.chunks;
  v_job csv_import.jobs;
  v_expected bigint;
  v_index int;
  v_range jsonb;
  v_n int := jsonb_array_length(p_ranges);
  v_i int := 0;
begin
  select * into v_chain from csv_import.chunks
  where id = p_chunk_id and kind = 'inflate' and status = 'running' and lease_token = p_lease_token
  for update;
  if not found then
    return 'lease_lost';
  end if;
  select * into v_job from csv_import.jobs where id = v_chain.job_id for no key update;
  if v_job.status not in ('queued', 'running') then
    return 'stopped';
  end if;
  if coalesce(v_chain.resume_offset, 0) <> p_from_out then
    return 'duplicate';
  end if;

  v_expected := coalesce((select max(c.end_offset) from csv_import.chunks c
                          where c.job_id = v_job.id and c.kind = 'load'), v_job.data_start);
  v_index := v_job.chunk_count;
  for v_range in select value from jsonb_array_elements(p_ranges) loop
    v_i := v_i + 1;
    if (v_range ->> 'start')::bigint <> v_expected or (v_range ->> 'end')::bigint <= v_expected then
      raise exception 'Inflate step of job %: range %–% does not continue the data at %', v_job.id,
        v_range ->> 'start', v_range ->> 'end', v_expected using errcode = '22023';
    end if;
    -- Entry state: chunk 0 starts at data_start, a record start; the step's first range follows the scans of
    -- every range before it, all folded into the job's prefix (the next ones get theirs from
    -- _advance_scanned_prefix below, which folds this step's scans).
    insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, entry_parity,
                                   lines_before, at_record_start)
    select v_job.id, 'load', v_index, v_expected, (v_range ->> 'end')::bigint,
           case when v_index = 0 then 0 when v_index = v_job.scanned_prefix then v_job.prefix_parity end,
           case when v_index = 0 then v_job.header_lines
                when v_index = v_job.scanned_prefix then v_job.prefix_lines end,
           case when v_index = 0 then true
                when v_index = v_job.scanned_prefix then
                  (select s.ends_with_terminator from csv_import.chunks s
                   where s.job_id = v_job.id and s.kind = 'scan' and s.chunk_index = v_index - 1)
                  and v_job.prefix_parity = 0 end;
    if not (p_ended and v_i = v_n) then
      insert into csv_import.chunks (job_id, kind, chunk_index, start_offset, end_offset, status, quote_parity,
                                     newline_count, ends_with_terminator, finished_at)
      values (v_job.id, 'scan', v_index, v_expected, (v_range ->> 'end')::bigint, 'succeeded',
              (v_range ->> 'quote_parity')::smallint, (v_range ->> 'newline_count')::bigint,
              (v_range ->> 'ends_with_terminator')::boolean, now());
    end if;
    v_expected := (v_range ->> 'end')::bigint;
    v_index := v_index + 1;
  end loop;
  if (v_n > 0 and v_expected <> p_to_out) or (p_ended and p_to_out < v_job.data_start)
     or (p_ended and v_expected < p_to_out and p_to_out > v_job.data_start) then
    raise exception 'Inflate step of job %: the ranges end at % but the chain reached %', v_job.id, v_expected,
      p_to_out using errcode = '22023';
  end if;

  insert into csv_import.inflate_checkpoints (job_id, out_offset, in_offset, bits, history, member)
  select v_job.id, (cp ->> 'out')::bigint, (cp ->> 'in')::bigint, (cp ->> 'bits')::smallint,
         decode(cp ->> 'window', 'base64'), cp -> 'member'
  from jsonb_array_elements(p_checkpoints) as cp
  on conflict do nothing;

  update csv_import.jobs set chunk_count = v_index, inflated_out = p_to_out, inflated_in = p_in_offset,
    data_size = case when p_ended then p_to_out end, updated_at = now()
  where id = v_job.id;
  perform csv_import._advance_scanned_prefix(v_job.id);

  update csv_import.chunks set resume_offset = p_to_out, batches_committed = batches_committed + 1,
    status = case when p_ended then 'succeeded'::csv_import.chunk_status else status end,
    finished_at = case when p_ended then now() end,
    lease_token = case when p_ended then null else lease_token end,
    lease_until = case when p_ended then null else now() + interval '15 seconds' end,
    updated_at = now()
  where id = p_chunk_id;
  if p_ended then
    perform csv_import.finalize_job(v_job.id);
  end if;
  return 'ok';
end
$$;

-- A checkpoint as the functions read it (compression/inflate.ts checkpointFromJson): {out, in, bits, window
-- (base64, one line), member}. Immutable. Callers: _resume_checkpoint, chunk_context.
create or replace function csv_import._checkpoint_json(k csv_import.inflate_checkpoints)
returns jsonb
language sql immutable
set search_path = ''
as $$
  select jsonb_build_object('out', k.out_offset, 'in', k.in_offset, 'bits', k.bits,
    'window', pg_catalog.translate(pg_catalog.encode(k.history, 'base64'), E'\n', ''), 'member', k.member)
$$;

-- The checkpoint a worker resumes inflation from, as jsonb ({out, in, bits, window (base64), member}), or null
-- (start of the data): for the inflate chain, the one where it stopped; for a load, the last one at or before where
-- it starts reading (its range's start, or its resume marker). Read-only. Caller: chunk_context.
create or replace function csv_import._resume_checkpoint(p_job_id bigint, p_at bigint)
returns jsonb
language sql stable security definer
set search_path = ''
as $$
  select csv_import._checkpoint_json(k)
  from csv_import.inflate_checkpoints k
  where k.job_id = p_job_id and k.out_offset <= p_at
  order by k.out_offset desc
  limit 1
$$;

-- As in 20261204000400_create_chunk_claims.sql, and a compressed job's chunks learn its compression, its
-- decompressed size (when known), the checkpoint to resume inflation from (_resume_checkpoint) and, for a load,
-- the checkpoint at its range's end.
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
    'profile', to_jsonb(p) - 'created_at' - 'updated_at',
    'compression', j.compression, 'data_size', j.data_size, 'chunk_size', j.chunk_size,
    'inflated_in', j.inflated_in,
    'checkpoint', case when j.compression is null then null
                       when c.kind = 'inflate' then csv_import._resume_checkpoint(j.id, coalesce(c.resume_offset, 0))
                       else csv_import._resume_checkpoint(j.id, coalesce(c.resume_offset, c.start_offset)) end,
    -- A load's range ends at a checkpoint (but the last): it inflates up to it in one read (in the runtime's
    -- native inflater where the range lies in one deflate stream), then on from it to finish its last record.
    'end_checkpoint', case when j.compression is not null and c.kind = 'load' then
      (select csv_import._checkpoint_json(k)
       from csv_import.inflate_checkpoints k where k.job_id = j.id and k.out_offset = c.end_offset)
    end
  )
  from csv_import.chunks c
  join csv_import.jobs j on j.id = c.job_id
  left join csv_import.profiles p on p.id = j.profile_id
  where c.id = p_chunk_id and c.lease_token = p_lease_token and c.status = 'running'
    and j.status in ('queued', 'running')
$$;

-- As in 20261204000400_create_chunk_claims.sql, and a pending inflate chunk (a compressed job's chain) is claimed
-- whatever else runs: outside its job's max_parallel_chunks and the global limit, which count loads and scans
-- (every later load of its job waits for it; measured on the 1M-row file gzipped, a chain that waited for a free
-- slot after each step spanned 8.7 s of the job's 9.9 s).
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
    select c.id, j.priority, j.created_at, 0::bigint as turn
    from csv_import.jobs j
    join csv_import.chunks c on c.job_id = j.id
    where j.status in ('queued', 'running') and c.kind = 'inflate' and c.status = 'pending'
      and c.available_at <= now()
    for update of c skip locked
  ), picked as (
    (select id from candidates order by priority desc, turn, created_at, id limit v_free)
    union all
    select id from chains
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

-- As in 20261204000400_create_chunk_claims.sql, and a pending inflate chunk is ready work too.
create or replace function csv_import._kick_dispatch_if_ready(p_reason text)
returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  if exists (select 1 from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
             where c.status = 'pending' and c.available_at <= now() and j.status in ('queued', 'running')
               and (c.kind <> 'load' or c.entry_parity is not null))
     or exists (select 1 from csv_import.jobs where rejects_status = 'pending') then
    return csv_import.request_function('dispatch', jsonb_build_object('reason', p_reason)) is not null;
  end if;
  return false;
end
$$;

-- As in 20261204001000_create_finalize_and_reconcile.sql, and the last owning chunk of a compressed job ends at its
-- decompressed size (data_size).
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
       or (t.nth = t.owning and t.next_record_at <> coalesce(p_job.data_size, p_job.object_size))
    union all
    select c.chunk_index from csv_import.chunks c
    where c.job_id = p_job.id and c.kind = 'load' and c.first_record_at is null
      and (c.status <> 'succeeded' or c.rows_parsed <> 0 or c.next_record_at is not null)
    union all
    -- Chunk 0 starts at data_start, a record start, so a planned job always has an owning chunk.
    select 0 where p_job.chunk_count > 0 and not exists (
      select 1 from csv_import.chunks c where c.job_id = p_job.id and c.kind = 'load' and c.first_record_at is not null)
    union all
    -- A compressed job's chain must have reached the end of the stream.
    select -1 where p_job.compression is not null and p_job.data_size is null
    order by 1
    limit 1);
end
$$;

-- As in 20261209000200_dry_run.sql, and a compressed job's progress is measured against its decompressed size
-- (data_bytes_total: known once the chain ended, until then estimated from the compression ratio so far), with the
-- compressed bytes the chain has read (compressed_bytes_done of object_size).
create or replace view csv_import.job_progress with (security_invoker = true) as
select j.id as job_id, j.status, j.bucket_id, j.object_name, j.object_size, j.target_table, j.chunk_count,
  j.error, j.created_at, j.started_at, j.first_row_at, j.finished_at, j.rejects_object, j.rejects_status,
  p.chunks_done, p.chunks_running, p.chunks_dead, p.rows_parsed, p.rows_loaded, p.rows_rejected, p.rows_skipped,
  p.bytes_done,
  case when coalesce(d.total, 0) <= 0 then
         case when j.status in ('succeeded', 'succeeded_with_rejects', 'validated') then 100.0 else 0.0 end
       else least(round(100.0 * p.bytes_done / d.total, 1), 100.0) end as percent,
  case when j.started_at is null then 0
       else round(p.rows_loaded / greatest(extract(epoch from coalesce(j.finished_at, now()) - j.started_at), 0.001))
  end as rows_per_second,
  j.rejects_stored,
  case when p.rows_rejected > j.rejects_stored then
    format('Only the first %s of %s rejects are stored (the per-job limit, MAX_STORED_REJECTS or the profile''s max_stored_rejects); all are counted',
           j.rejects_stored, p.rows_rejected)
  end as rejects_note,
  j.compression ->> 'codec' as compression,
  greatest(d.total, 0)::bigint as data_bytes_total,
  j.data_size is not null or j.compression is null as data_size_known,
  case when j.compression is null then null else j.inflated_in end as compressed_bytes_done
from csv_import.jobs j
cross join lateral (
  select case
    when j.compression is null then j.object_size - j.data_start
    when j.data_size is not null then j.data_size - j.data_start
    when j.inflated_in > 0 then
      round(j.inflated_out::numeric * greatest(j.object_size, 1) / j.inflated_in)::bigint - j.data_start
  end as total
) as d
cross join lateral (
  select count(*) filter (where c.kind = 'load' and c.status = 'succeeded') as chunks_done,
         count(*) filter (where c.status = 'running') as chunks_running,
         count(*) filter (where c.status = 'dead') as chunks_dead,
         coalesce(sum(c.rows_parsed) filter (where c.kind = 'load'), 0) as rows_parsed,
         coalesce(sum(c.rows_loaded) filter (where c.kind = 'load'), 0) as rows_loaded,
         coalesce(sum(c.rows_rejected) filter (where c.kind = 'load'), 0) as rows_rejected,
         coalesce(sum(c.rows_skipped) filter (where c.kind = 'load'), 0) as rows_skipped,
         coalesce(sum(case when c.kind <> 'load' then 0
                           when c.status = 'succeeded' then c.end_offset - c.start_offset
                           when c.resume_offset is not null then greatest(least(c.resume_offset, c.end_offset) - c.start_offset, 0)
                           else 0 end), 0) as bytes_done
  from csv_import.chunks c where c.job_id = j.id
) as p;

-- As in 20261210000000_client_api.sql, and bytes_total is the data's size after its header whether the file is
-- plain or compressed (job_progress.data_bytes_total: a compressed file's is estimated until its end is inflated);
-- compression, compressed_bytes_total and compressed_bytes_done say how far the chain has read a compressed file.
create or replace view csv_import_api.imports with (security_invoker = true) as
select p.job_id as id, p.bucket_id as bucket, p.object_name as object, p.status::text as status,
  p.target_table as table_name,
  coalesce(p.data_bytes_total, 0) as bytes_total,
  p.bytes_done, p.percent, p.rows_parsed, p.rows_loaded, p.rows_rejected, p.rows_skipped, p.rows_per_second,
  case when p.status = 'running' and p.bytes_done > 0 and coalesce(p.first_row_at, p.started_at) is not null then
    ceil(greatest(coalesce(p.data_bytes_total, 0) - p.bytes_done, 0)
      * extract(epoch from now() - coalesce(p.first_row_at, p.started_at)) / p.bytes_done)::bigint
  end as eta_seconds,
  p.error, j.dry_run, p.created_at, p.started_at, p.finished_at, p.rejects_status::text as rejects_status,
  p.rejects_object,
  p.compression, case when p.compression is not null then p.object_size end as compressed_bytes_total,
  p.compressed_bytes_done
from csv_import.job_progress p
join csv_import.jobs j on j.id = p.job_id;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
