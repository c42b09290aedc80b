-- Scan completion: a scan chunk's summary (quote parity, newlines, terminator) and the job's scanned prefix, which
-- gives the following load chunks their entry state.

-- Folds every newly contiguous scanned prefix of a job into the entry states of the following load chunks,
-- which makes them claimable: entry parity = XOR of the earlier scans' parities, lines before = header lines +
-- their newline counts, at_record_start = the previous chunk ends with a terminator at even parity. Locks the
-- job row FOR NO KEY UPDATE (serializes prefix advancement without waiting for batches holding KEY SHARE).
-- Idempotent: a folded prefix is not folded again. Caller: _record_scan.
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
-- Locks: the scan chunk row, then the job row (_advance_scanned_prefix). Idempotent in effect (the same summary).
-- Callers: complete_scan, complete_inline_scan.
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
-- Caller: the chunk worker (scan invocations).
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
-- Idempotent: a scan already done is left as it is. Caller: the chunk worker.
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

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
