-- A job's finished_at is when its verdict was written, not when the transaction that wrote it began. The last
-- chunk's final batch finalizes the job inside the batch's transaction (commit_batch → finalize_job), which began
-- before that batch's COPY: `now()` put finished_at up to one batch (4 MiB of rows, 0.1–0.3 s on 2 busy cores)
-- before the rows were in, and the benchmark's wall time (created_at → finished_at) was that much short.
-- Measured on the 1M-row benchmark: the last chunk's `chunk_loaded` log line came ~0.1 s after the recorded
-- finish. `clock_timestamp()` is taken after the verdict, one round trip before the commit.
-- A chunk's own finished_at (commit_batch) stays the final batch's transaction start (docs/performance.md, the
-- benchmark's `conc` column). Otherwise as in 20261204001000_create_finalize_and_reconcile.sql.
create or replace function csv_import.finalize_job(p_job_id bigint)
returns csv_import.job_status
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_totals record;
  v_verdict record;
begin
  -- FOR NO KEY UPDATE, not FOR UPDATE: the row's key never changes, and FOR UPDATE would conflict with the
  -- KEY SHARE lock that a concurrent batch's INSERT into csv_import.rejects takes on the job row (foreign key),
  -- while that batch waits for this transaction's update of the same row: a deadlock.
  select * into v_job from csv_import.jobs where id = p_job_id for no key update;
  if not found or v_job.status not in ('queued', 'running') then
    return v_job.status;
  end if;
  if exists (select 1 from csv_import.chunks where job_id = p_job_id and status in ('pending', 'running')) then
    return v_job.status;
  end if;

  select coalesce(sum(rows_parsed), 0) as parsed, coalesce(sum(rows_loaded), 0) as loaded,
         coalesce(sum(rows_rejected), 0) as rejected, coalesce(sum(rows_skipped), 0) as skipped
  into v_totals from csv_import.chunks where job_id = p_job_id and kind = 'load';

  select * into v_verdict
  from csv_import._finalize_verdict(v_job, v_totals.parsed, v_totals.loaded, v_totals.rejected, v_totals.skipped);

  update csv_import.jobs set status = v_verdict.status, error = v_verdict.error, finished_at = clock_timestamp(),
    updated_at = now(),
    rows_parsed = v_totals.parsed, rows_loaded = v_totals.loaded, rows_rejected = v_totals.rejected,
    rows_skipped = v_totals.skipped,
    bytes_loaded = (select coalesce(sum(end_offset - start_offset), 0) from csv_import.chunks
                    where job_id = p_job_id and kind = 'load' and status = 'succeeded'),
    rejects_status = case when v_totals.rejected > 0 then 'pending' else 'none' end::csv_import.rejects_file_status
  where id = p_job_id;
  return v_verdict.status;
end
$$;
