-- The rejects CSV of a finished job is written to Storage by the Edge Functions (SQL cannot write objects);
-- these two functions are how they learn which files are due and record that one was written.

-- Jobs whose rejects file is due (finished with rejects, file not yet written), oldest first.
-- Caller: the dispatch logic (writePendingRejectFiles).
create or replace function csv_import.pending_rejects_files(p_limit int default 5)
returns table (job_id bigint, bucket_id text, object_name text)
language sql stable security definer
set search_path = ''
as $$
  select id, bucket_id, object_name from csv_import.jobs
  where rejects_status = 'pending' order by id limit p_limit
$$;

-- Records that a job's rejects file was written. Idempotent (a second writer of the same file changes nothing).
create or replace function csv_import.record_rejects_file(p_job_id bigint, p_object_name text)
returns void
language sql security definer
set search_path = ''
as $$
  update csv_import.jobs set rejects_status = 'written', rejects_object = p_object_name, updated_at = now()
  where id = p_job_id and rejects_status = 'pending'
$$;

revoke execute on function csv_import.pending_rejects_files(int), csv_import.record_rejects_file(bigint, text)
  from public, anon, authenticated;
