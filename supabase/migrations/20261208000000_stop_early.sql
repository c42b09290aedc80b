-- Stopping early on a bad file (issue 15): besides tolerated_reject_rate, judged when every chunk is done, a
-- profile may stop a job as soon as its rejects pass a count (max_rejects), and have the rate judged as soon as
-- enough rows were seen (reject_rate_after_rows), so that a huge file of garbage stops within seconds instead of
-- after every row was parsed and refused.
--
-- Invariants:
-- - Both limits are the profile's at registration, kept on the job (as tolerated_reject_rate): editing a profile
--   never changes a running job. Null: no such limit (the default for both: a job then runs to its end and its
--   verdict and rejects report are complete, as before).
-- - The check runs in commit_batch after the batch's counts were added to the job, in the same transaction: the
--   batch that crosses a limit is committed (its valid rows stay loaded: nothing accepted is lost), then the job
--   is stopped as failed (stop_job: its other chunks are cancelled or refused at their next batch) with the
--   numbers in its error. Jobs registered before this migration have neither limit.

alter table csv_import.profiles
  add column max_rejects bigint check (max_rejects is null or max_rejects >= 0),
  add column reject_rate_after_rows bigint check (reject_rate_after_rows is null or reject_rate_after_rows >= 1);

comment on column csv_import.profiles.max_rejects is
  'Most rows a job may reject: past it the job stops at once, failed (null: no count limit).';
comment on column csv_import.profiles.reject_rate_after_rows is
  'Rows a job must have seen before tolerated_reject_rate is enforced while it runs (null: only at the end).';

alter table csv_import.jobs
  add column max_rejects bigint,
  add column reject_rate_after_rows bigint;

-- Why a running job must stop now (its error), or null. Judged on the job's running totals (rows_parsed,
-- rows_rejected grow with every committed batch): more rejects than max_rejects, or, once rows_parsed reached
-- reject_rate_after_rows, a reject rate above tolerated_reject_rate. Read-only, no locks. Idempotent.
-- Caller: commit_batch.
create or replace function csv_import._early_stop_reason(p_job csv_import.jobs)
returns text
language sql immutable
set search_path = ''
as $$
  select case
    when p_job.max_rejects is not null and p_job.rows_rejected > p_job.max_rejects then
      format('Stopped early: %s rows rejected, more than the profile''s max_rejects (%s), after %s rows; '
        || 'the %s valid rows seen were loaded and the rest of the file was not read',
        p_job.rows_rejected, p_job.max_rejects, p_job.rows_parsed, p_job.rows_loaded)
    when p_job.reject_rate_after_rows is not null and p_job.rows_parsed >= p_job.reject_rate_after_rows
         and p_job.rows_rejected > p_job.tolerated_reject_rate * p_job.rows_parsed then
      format('Stopped early: %s of the first %s rows rejected (%s%%), above the tolerated %s%% '
        || '(judged from %s rows on); the %s valid rows seen were loaded and the rest of the file was not read',
        p_job.rows_rejected, p_job.rows_parsed, round(100.0 * p_job.rows_rejected / p_job.rows_parsed, 2),
        round(100 * p_job.tolerated_reject_rate, 2), p_job.reject_rate_after_rows, p_job.rows_loaded)
  end
$$;

-- Plans a registering job in one transaction (as in 20261204000200_create_registration.sql, and it keeps the
-- profile's early-stop limits, p_plan max_rejects and reject_rate_after_rows, on the job): stores the dialect,
-- the column mapping and the data start found by the register function, and creates its chunks: load chunks
-- covering [data_start, object_size) in p_chunk_size steps, and a scan chunk for every load chunk but the last.
-- Load chunk 0 starts at a record boundary, so its entry state is known at once. Idempotent: a job that is no
-- longer registering is returned unchanged with planned = false. Locks: the job row. Caller: the register function.
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
     or v_data_start > v_size then
    raise exception 'Invalid plan for job %: data_start %, chunk_size %, size %', p_job_id, v_data_start,
      v_chunk_size, v_size using errcode = '22023';
  end if;
  v_count := ceil((v_size - v_data_start)::numeric / v_chunk_size)::int;

  update csv_import.jobs j set
    status = 'queued',
    object_size = v_size,
    profile_id = (p_plan ->> 'profile_id')::bigint,
    profile_name = p_plan ->> 'profile_name',
    target_table = p_plan ->> 'target_table',
    priority = coalesce((p_plan ->> 'priority')::int, 0),
    max_parallel_chunks = coalesce((p_plan ->> 'max_parallel_chunks')::int, 4),
    max_attempts = coalesce((p_plan ->> 'max_attempts')::int, 5),
    tolerated_reject_rate = coalesce((p_plan ->> 'tolerated_reject_rate')::numeric, 0),
    max_rejects = (p_plan ->> 'max_rejects')::bigint,
    reject_rate_after_rows = (p_plan ->> 'reject_rate_after_rows')::bigint,
    dialect = p_plan -> 'dialect',
    columns = p_plan -> 'columns',
    data_start = v_data_start,
    header_lines = coalesce((p_plan ->> 'header_lines')::bigint, 0),
    prefix_lines = coalesce((p_plan ->> 'header_lines')::bigint, 0),
    chunk_size = v_chunk_size,
    chunk_count = v_count,
    error = null,
    updated_at = now()
  where j.id = p_job_id;

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

-- Commits a batch opened by begin_batch (same transaction), as in 20261204000600_create_batches.sql, and then
-- stops the job when its totals crossed an early-stop limit (_early_stop_reason): the batch stays committed, the
-- job ends failed with the numbers (stop_job). First the job row, guarded: when the job was stopped meanwhile, or
-- its object no longer holds the job's version, nothing is written and {"refused": "stopped" | "superseded"} is
-- returned. Otherwise the batch's counts are added to the job, its rejects stored (at most p_max_stored_rejects
-- per job; all are counted), the chunk's progress marker advanced and its lease extended; with p_final the chunk
-- succeeds and, when it was the job's last unfinished chunk, the job is finalized in the same transaction.
-- Locks: the chunk row (already held from begin_batch), then the job row. Raises 40001 if the batch was not
-- opened by this caller. Returns {"job_status", "job_finished", "rejects_stored"} or {"refused"}.
-- Not idempotent by itself: begin_batch's sequence check makes a replayed batch a 'duplicate'. Caller: the chunk
-- worker, at the end of each batch transaction.
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
  p_lease interval default interval '15 seconds',
  p_max_stored_rejects bigint default 100000,
  p_rejected_unstored bigint default 0
) returns jsonb
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chunk csv_import.chunks;
  v_detailed bigint := coalesce(jsonb_array_length(p_rejects), 0);
  v_rejected bigint := coalesce(jsonb_array_length(p_rejects), 0) + coalesce(p_rejected_unstored, 0);
  v_stored bigint;
  v_job csv_import.jobs;
  v_stop text;
begin
  select * into v_chunk from csv_import.chunks where id = p_chunk_id for update;
  if v_chunk.status is distinct from 'running' or v_chunk.lease_token is distinct from p_lease_token
     or v_chunk.batches_committed <> p_batch_seq then
    raise exception 'Batch % of chunk % is not open for this lease', p_batch_seq, p_chunk_id
      using errcode = '40001';
  end if;

  -- The job row first, guarded by its status: a stop that committed before this update makes it match nothing
  -- (READ COMMITTED re-checks the row it waited for), a stop that comes later waits for this batch's commit.
  update csv_import.jobs j set
    rows_parsed = j.rows_parsed + p_rows_parsed,
    rows_loaded = j.rows_loaded + p_rows_loaded,
    rows_rejected = j.rows_rejected + v_rejected,
    rows_skipped = j.rows_skipped + p_rows_skipped,
    first_row_at = case when p_rows_loaded > 0 then coalesce(j.first_row_at, now()) else j.first_row_at end,
    updated_at = now()
  where j.id = v_chunk.job_id and j.status in ('queued', 'running')
  returning * into v_job;
  if not found then
    return jsonb_build_object('refused', 'stopped'::csv_import.batch_state);
  end if;
  if not csv_import.object_is_current(v_job.bucket_id, v_job.object_name, v_job.object_version) then
    return jsonb_build_object('refused', 'superseded'::csv_import.batch_state);
  end if;

  v_stored := greatest(0, least(v_detailed, p_max_stored_rejects - v_job.rejects_stored));
  if v_stored > 0 then
    insert into csv_import.rejects (job_id, chunk_id, line_number, column_name, reason, raw_record)
    select v_chunk.job_id, p_chunk_id, r.line, r."column", r.reason, r.raw
    from jsonb_to_recordset(p_rejects) as r(line bigint, "column" text, reason text, raw text)
    limit v_stored;
    update csv_import.jobs set rejects_stored = rejects_stored + v_stored where id = v_chunk.job_id;
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
  where id = p_chunk_id;

  if p_final then
    update csv_import.jobs set bytes_loaded = bytes_loaded + (v_chunk.end_offset - v_chunk.start_offset)
    where id = v_chunk.job_id;
    perform csv_import.finalize_job(v_chunk.job_id);
  end if;
  select * into v_job from csv_import.jobs where id = v_chunk.job_id;
  v_stop := case when v_job.status in ('queued', 'running') then csv_import._early_stop_reason(v_job) end;
  if v_stop is not null and csv_import.stop_job(v_job.id, 'failed', v_stop) then
    select * into v_job from csv_import.jobs where id = v_chunk.job_id;
  end if;
  return jsonb_build_object('job_status', v_job.status,
    'job_finished', v_job.status not in ('registering', 'queued', 'running'), 'rejects_stored', v_job.rejects_stored);
end
$$;

revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
