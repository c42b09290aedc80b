-- Chunk work: claiming with leases, the atomic batch protocol, scan completion and failure.
--
-- Batch protocol (one database transaction per batch, run by the chunk worker):
--   begin;
--   select csv_import.begin_batch(chunk_id, lease_token, batch_seq);      -- locks the chunk row; 'ok' or why not
--   copy <target> (…) from stdin;                                          -- the batch's valid rows
--   select csv_import.commit_batch(chunk_id, lease_token, batch_seq, …);   -- progress marker, rejects, counts
--   commit;
-- The rows and the chunk's progress marker commit together or not at all, so a retried, duplicated or
-- replayed chunk resumes after its last committed batch and never writes a row twice.

-- Claims up to max_chunks ready chunks for work, within the global limit of running chunks and each job's
-- max_parallel_chunks, highest job priority first and round-robin across jobs of equal priority, counting the
-- chunks each job already has running (a job's next chunk is its (running + 1)-th: the job with the fewest
-- running chunks goes first, then each job's next, …), so a huge file cannot starve small ones, also when slots
-- free up one at a time. Within a job, chunks go in file order: a load chunk is ready once its entry state is
-- known, i.e. once the scans of every chunk before it are done, and a load scans its own range before loading
-- it (csv_import.complete_inline_scan), which makes the next load ready within ~0.1 s. So a scan chunk is only
-- claimed on its own where no load will scan it soon: ranges larger than inline_scan_max_bytes(), a file's
-- first scans (ramp-up: measured on the 1M-row file, the fourth load started 0.9 s after the first when each
-- waited for the inline scan before it), or a stalled job (nothing running and no load ready). Why not scans ahead of loads (as before): each scan was a separate
-- invocation and a second read of its range (Storage serves the file twice); measured on the 1M-row file, 15
-- scan invocations and 130 MB of reads are gone. Why not all scans first (before that): the first load waited
-- for every scan of the file (first row 1.2 s after registration for 16 chunks, ~45 s for 10 GB). Each claimed chunk gets a
-- fresh lease token and lease_until = now() + lease; the attempt is counted here, so a worker that dies still
-- uses an attempt. Locks: a transaction-level advisory lock serializing claims (so limits hold under
-- concurrent dispatchers), and the claimed chunk rows (FOR UPDATE SKIP LOCKED).
-- Callers: the dispatch logic of the Edge Functions (register, chunk, dispatch).
-- Largest chunk a load scans inline: it holds the range's bytes in memory while loading them (32 MiB keeps a
-- chunk invocation under its 64 MB budget). Larger chunks (a profile's chunk_size_bytes) get scan invocations.
create or replace function csv_import.inline_scan_max_bytes() returns bigint
language sql immutable
as $$ select 33554432::bigint $$;

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
  select least(max_chunks, global_limit - count(*)) into v_free from csv_import.chunks c where c.status = 'running';
  if v_free <= 0 then
    return;
  end if;

  return query
  with candidates as (
    select c.id, j.priority, j.created_at,
           running.n + row_number() over (partition by c.job_id order by c.claim_order, c.kind desc) as turn
    from csv_import.jobs j
    cross join lateral (
      select count(*)::int as n from csv_import.chunks r where r.job_id = j.id and r.status = 'running'
    ) as running
    cross join lateral (
      select c.id, c.job_id, c.kind, c.chunk_index, c.chunk_index as claim_order
      from csv_import.chunks c
      where c.job_id = j.id and c.status = 'pending' and c.available_at <= now()
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
  ), picked as (
    select id from candidates order by priority desc, turn, created_at, id limit v_free
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

-- What a worker needs to process a claimed chunk: its range, entry state and resume marker, and the job's
-- dialect, columns and target. Null when the lease is not (or no longer) this caller's.
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
    -- A load scans its own range first when that scan is not done and the range is small enough to hold.
    'scan_inline', c.kind = 'load' and c.end_offset - c.start_offset <= csv_import.inline_scan_max_bytes()
      and exists (
        select 1 from csv_import.chunks s
        where s.job_id = c.job_id and s.kind = 'scan' and s.chunk_index = c.chunk_index
          and s.status in ('pending', 'running')
      ),
    'bucket_id', j.bucket_id, 'object_name', j.object_name, 'object_version', j.object_version,
    'object_size', j.object_size, 'data_start', j.data_start, 'chunk_count', j.chunk_count,
    'target_table', j.target_table, 'dialect', j.dialect, 'columns', j.columns,
    'profile', to_jsonb(p) - 'created_at' - 'updated_at'
  )
  from csv_import.chunks c
  join csv_import.jobs j on j.id = c.job_id
  left join csv_import.profiles p on p.id = j.profile_id
  where c.id = p_chunk_id and c.lease_token = p_lease_token and c.status = 'running'
    and j.status in ('queued', 'running')
$$;

-- Opens a batch: locks the chunk row for the rest of the transaction and says whether this caller may write
-- batch number p_batch_seq ('ok'), or why not: 'lease_lost' (the lease expired and the chunk was retried or
-- given to another worker), 'duplicate' (that batch is already committed: a duplicate invocation got there
-- first), 'stopped' (the job was cancelled or failed), 'missing'. Only 'ok' may be followed by writes.
create or replace function csv_import.begin_batch(p_chunk_id bigint, p_lease_token uuid, p_batch_seq int)
returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_job_status csv_import.job_status;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if not found then
    return 'missing';
  end if;
  select status into v_job_status from csv_import.jobs where id = v_chunk.job_id;
  if v_job_status not in ('queued', 'running') or v_chunk.status = 'cancelled' then
    return 'stopped';
  end if;
  if v_chunk.status <> 'running' or v_chunk.lease_token is distinct from p_lease_token then
    return 'lease_lost';
  end if;
  if v_chunk.batches_committed <> p_batch_seq then
    return 'duplicate';
  end if;
  return 'ok';
end
$$;

-- Commits a batch opened by begin_batch (same transaction): advances the progress marker to p_next_offset /
-- p_next_line (the next record to parse), adds the batch's counts, stores its rejects (JSON array of
-- {line, column, reason, raw}; at most p_max_stored_rejects per job are kept, all are counted) and extends
-- the lease. With p_final the chunk succeeds, its next_record_at is set, the job's totals take the chunk's
-- totals, and when it was the job's last unfinished chunk the job is finalized in the same transaction.
-- Raises if the batch was not opened by this caller (defensive: begin_batch said so first).
-- Returns {"job_status": …, "job_finished": bool}.
create or replace function csv_import.commit_batch(
  p_chunk_id bigint,
  p_lease_token uuid,
  p_batch_seq int,
  p_first_record_at bigint,
  p_next_offset bigint,
  p_next_line bigint,
  p_rows_parsed bigint,
  p_rows_loaded bigint,
  p_rows_skipped bigint,
  p_rejects jsonb,
  p_final boolean,
  p_lease interval default interval '2 minutes',
  p_max_stored_rejects bigint default 100000
) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_rejected bigint := coalesce(jsonb_array_length(p_rejects), 0);
  v_stored bigint;
  v_job csv_import.jobs;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if v_chunk.status is distinct from 'running' or v_chunk.lease_token is distinct from p_lease_token
     or v_chunk.batches_committed <> p_batch_seq then
    raise exception 'Batch % of chunk % is not open for this lease', p_batch_seq, p_chunk_id
      using errcode = '40001';
  end if;

  select * into v_job from csv_import.jobs where id = v_chunk.job_id;
  v_stored := greatest(0, least(v_rejected, p_max_stored_rejects - v_job.rejects_stored));
  if v_stored > 0 then
    insert into csv_import.rejects (job_id, chunk_id, line_number, column_name, reason, raw_record)
    select v_chunk.job_id, p_chunk_id, r.line, r."column", r.reason, r.raw
    from jsonb_to_recordset(p_rejects) as r(line bigint, "column" text, reason text, raw text)
    limit v_stored;
  end if;

  update csv_import.chunks set
    batches_committed = batches_committed + 1,
    first_record_at = coalesce(first_record_at, p_first_record_at),
    resume_offset = p_next_offset,
    resume_line = p_next_line,
    rows_parsed = rows_parsed + p_rows_parsed,
    rows_loaded = rows_loaded + p_rows_loaded,
    rows_rejected = rows_rejected + v_rejected,
    rows_skipped = rows_skipped + p_rows_skipped,
    lease_until = case when p_final then null else now() + p_lease end,
    lease_token = case when p_final then null else lease_token end,
    status = case when p_final then 'succeeded'::csv_import.chunk_status else status end,
    next_record_at = case when p_final then p_next_offset end,
    finished_at = case when p_final then now() end,
    updated_at = now()
  where id = p_chunk_id
  returning * into v_chunk;

  update csv_import.jobs set
    rejects_stored = rejects_stored + v_stored,
    first_row_at = case when p_rows_loaded > 0 then coalesce(first_row_at, now()) else first_row_at end,
    rows_parsed = rows_parsed + case when p_final then v_chunk.rows_parsed else 0 end,
    rows_loaded = rows_loaded + case when p_final then v_chunk.rows_loaded else 0 end,
    rows_rejected = rows_rejected + case when p_final then v_chunk.rows_rejected else 0 end,
    rows_skipped = rows_skipped + case when p_final then v_chunk.rows_skipped else 0 end,
    bytes_loaded = bytes_loaded + case when p_final then v_chunk.end_offset - v_chunk.start_offset else 0 end,
    updated_at = now()
  where id = v_chunk.job_id
  returning * into v_job;

  if p_final then
    perform csv_import.finalize_job(v_chunk.job_id);
    select * into v_job from csv_import.jobs where id = v_chunk.job_id;
  end if;
  return jsonb_build_object('job_status', v_job.status,
    'job_finished', v_job.status not in ('registering', 'queued', 'running'));
end
$$;

-- Folds every newly contiguous scanned prefix of a job into the entry states of the following load chunks,
-- which makes them claimable: entry parity = XOR of the earlier scans' parities, lines before = header lines +
-- their newline counts, at_record_start = the previous chunk ends with a terminator at even parity. Locks the
-- job row FOR NO KEY UPDATE (serializes prefix advancement without waiting for batches holding KEY SHARE).
create or replace function csv_import._advance_scanned_prefix(p_job_id bigint)
returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_scan csv_import.chunks;
begin
  select * into v_job from csv_import.jobs where id = p_job_id for no key update;
  loop
    select * into v_scan from csv_import.chunks
    where job_id = p_job_id and kind = 'scan' and chunk_index = v_job.scanned_prefix and status = 'succeeded';
    exit when not found;
    v_job.prefix_parity := v_job.prefix_parity # v_scan.quote_parity;
    v_job.prefix_lines := v_job.prefix_lines + v_scan.newline_count;
    v_job.scanned_prefix := v_job.scanned_prefix + 1;
    update csv_import.chunks set entry_parity = v_job.prefix_parity, lines_before = v_job.prefix_lines,
      at_record_start = v_scan.ends_with_terminator and v_job.prefix_parity = 0, updated_at = now()
    where job_id = p_job_id and kind = 'load' and chunk_index = v_job.scanned_prefix;
  end loop;
  update csv_import.jobs set scanned_prefix = v_job.scanned_prefix, prefix_parity = v_job.prefix_parity,
    prefix_lines = v_job.prefix_lines, updated_at = now()
  where id = p_job_id;
end
$$;

-- Stores a scan chunk's summary (quote parity, newline count, and whether its last byte is the record
-- terminator), ends the chunk and advances its job's scanned prefix. The callers below have locked the row.
create or replace function csv_import._record_scan(
  p_scan_id bigint, p_quote_parity smallint, p_newline_count bigint, p_ends_with_terminator boolean
) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job_id bigint;
begin
  update csv_import.chunks set status = 'succeeded', quote_parity = p_quote_parity,
    newline_count = p_newline_count, ends_with_terminator = p_ends_with_terminator, lease_token = null,
    lease_until = null, finished_at = now(), updated_at = now()
  where id = p_scan_id
  returning job_id into v_job_id;
  perform csv_import._advance_scanned_prefix(v_job_id);
end
$$;

-- A scan invocation reports its chunk's summary (_record_scan). Idempotent: a scan whose lease is gone, or
-- that a load already scanned inline, is ignored ('lease_lost'). Locks: the chunk row, then the job row.
create or replace function csv_import.complete_scan(
  p_chunk_id bigint, p_lease_token uuid, p_quote_parity smallint, p_newline_count bigint,
  p_ends_with_terminator boolean
) returns text
language plpgsql security definer
set search_path = ''
as $$
begin
  perform 1 from csv_import.chunks
  where id = p_chunk_id and kind = 'scan' and status = 'running' and lease_token = p_lease_token
  for update;
  if not found then
    return 'lease_lost';
  end if;
  perform csv_import._record_scan(p_chunk_id, p_quote_parity, p_newline_count, p_ends_with_terminator);
  return 'ok';
end
$$;

-- A load chunk's worker reports the summary of its own range, read before loading it: the scan chunk of the
-- same range is done without an invocation or a second read of its own (a scan invocation holding it finds
-- its lease gone; the summary is a function of the bytes, so both would report the same). Returns 'ok', or
-- 'lease_lost' when the caller no longer holds the load chunk; a scan already done (or cancelled/dead with its
-- job) is left as it is ('ok'). The load chunk is only read (no lock: a lease lost meanwhile changes nothing,
-- the summary is the same whoever reports it). Locks: the scan chunk row, then the job row.
create or replace function csv_import.complete_inline_scan(
  p_load_chunk_id bigint, p_lease_token uuid, p_quote_parity smallint, p_newline_count bigint,
  p_ends_with_terminator boolean
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_load csv_import.chunks;
  v_scan_id bigint;
begin
  select * into v_load from csv_import.chunks
  where id = p_load_chunk_id and kind = 'load' and status = 'running' and lease_token = p_lease_token;
  if not found then
    return 'lease_lost';
  end if;
  select id into v_scan_id from csv_import.chunks
  where job_id = v_load.job_id and kind = 'scan' and chunk_index = v_load.chunk_index
    and status in ('pending', 'running')
  for update;
  if found then
    perform csv_import._record_scan(v_scan_id, p_quote_parity, p_newline_count, p_ends_with_terminator);
  end if;
  return 'ok';
end
$$;

-- A worker reports that its chunk failed. SQL decides: a transient failure goes back to the queue after
-- retry_delay(attempts) until the job's max_attempts, then the chunk is dead-lettered with the reason (the job
-- ends failed once its other chunks finish); a fatal failure (the file's fault, e.g. a record larger than the
-- limit) fails the whole job at once. Ignored when the caller's lease is gone. Returns 'retry', 'dead',
-- 'job_failed' or 'lease_lost'.
create or replace function csv_import.fail_chunk(
  p_chunk_id bigint, p_lease_token uuid, p_error text, p_fatal boolean default false
) returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_max int;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if not found or v_chunk.status <> 'running' or v_chunk.lease_token is distinct from p_lease_token then
    return 'lease_lost';
  end if;
  if p_fatal then
    update csv_import.chunks set last_error = p_error where id = p_chunk_id;
    perform csv_import.stop_job(v_chunk.job_id, 'failed', p_error);
    return 'job_failed';
  end if;
  select max_attempts into v_max from csv_import.jobs where id = v_chunk.job_id;
  return csv_import._retry_or_dead(p_chunk_id, p_error, v_chunk.attempts, v_max);
end
$$;

-- Shared by fail_chunk and reconcile (expired leases): requeue with backoff, or dead-letter. A dead scan chunk
-- also cancels the pending chunks after it: their load chunks could never learn their entry state, and the job
-- would never end. Then the job is finalized if nothing else is left to run.
create or replace function csv_import._retry_or_dead(p_chunk_id bigint, p_error text, p_attempts int, p_max int)
returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_dead csv_import.chunks;
begin
  if p_attempts >= p_max then
    update csv_import.chunks set status = 'dead', lease_token = null, lease_until = null, finished_at = now(),
      last_error = format('%s (attempt %s of %s)', p_error, p_attempts, p_max), updated_at = now()
    where id = p_chunk_id
    returning * into v_dead;
    if v_dead.kind = 'scan' then
      update csv_import.chunks set status = 'cancelled', finished_at = now(), updated_at = now(),
        last_error = format('Not processed: scan chunk %s before it failed', v_dead.chunk_index)
      where job_id = v_dead.job_id and chunk_index > v_dead.chunk_index and status = 'pending';
    end if;
    perform csv_import.finalize_job(v_dead.job_id);
    return 'dead';
  end if;
  update csv_import.chunks set status = 'pending', lease_token = null, lease_until = null,
    available_at = now() + csv_import.retry_delay(p_attempts),
    last_error = format('%s (attempt %s of %s)', p_error, p_attempts, p_max), updated_at = now()
  where id = p_chunk_id;
  return 'retry';
end
$$;

-- Row-isolating insert, used by the chunk worker for a batch piece the database refused (insert mode) and for
-- every batch in upsert / skip_duplicates mode: runs p_insert, an INSERT … SELECT over the rows
-- (p_from, p_to] of the caller's staging table (the range as $1 and $2), and when the database refuses it with a
-- data error (SQLSTATE classes 22 and 23, and 21000) bisects the range in subtransactions down to single rows,
-- so that every acceptable row loads and each refused row is reported once, with PostgreSQL's message. Any
-- other error propagates. k refused rows of n cost O(k log n) statements, all on the server: from the worker
-- each statement costs a round trip, ~1.5 ms with postgres.js in Deno (measured: its writes wait for a
-- setImmediate, ~1.1 ms there), so a file re-imported in insert mode (every row a duplicate key) took ~11 ms
-- per row client-side, over the chunk lease for a 5,000-row batch; here ~0.1 ms per row.
-- Returns {"inserted": rows inserted (or updated, for upserts), "rejects": [{seq, message, detail, column}]}.
-- SECURITY INVOKER: the statement runs with the caller's rights on the caller's staging table.
create or replace function csv_import.insert_isolating(p_insert text, p_from bigint, p_to bigint)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  v_count bigint;
  v_state text;
  v_message text;
  v_detail text;
  v_column text;
  v_left jsonb;
  v_right jsonb;
  v_mid bigint;
begin
  if p_to <= p_from then
    return jsonb_build_object('inserted', 0, 'rejects', '[]'::jsonb);
  end if;
  begin
    execute p_insert using p_from, p_to;
    get diagnostics v_count = row_count;
    return jsonb_build_object('inserted', v_count, 'rejects', '[]'::jsonb);
  exception when others then
    get stacked diagnostics v_state = returned_sqlstate, v_message = message_text,
      v_detail = pg_exception_detail, v_column = column_name;
    if not (v_state like '22%' or v_state like '23%' or v_state = '21000') then
      raise;
    end if;
  end;
  if p_to - p_from = 1 then
    return jsonb_build_object('inserted', 0, 'rejects', jsonb_build_array(jsonb_build_object(
      'seq', p_to, 'message', v_message, 'detail', nullif(v_detail, ''), 'column', nullif(v_column, ''))));
  end if;
  v_mid := p_from + (p_to - p_from) / 2;
  v_left := csv_import.insert_isolating(p_insert, p_from, v_mid);
  v_right := csv_import.insert_isolating(p_insert, v_mid, p_to);
  return jsonb_build_object('inserted', (v_left->>'inserted')::bigint + (v_right->>'inserted')::bigint,
    'rejects', (v_left->'rejects') || (v_right->'rejects'));
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
