-- The rejects CSV of a finished job is written to Storage by the Edge Functions (SQL cannot write objects); these
-- functions are how they claim a due file (one writer per file) and record that it was written.
--
-- Why: pending_rejects_files only listed the due files, so every dispatch running at that moment (one at the end of
-- each chunk invocation, plus cron's and the kicks') uploaded the same file. The last upload replaces the object
-- after the first writer has already recorded it as written, and a reader that followed rejects_object then could
-- find the version it was reading superseded (seen once in CI: a rejects CSV download that came back empty).
-- A claimed file is left alone by the other dispatches until its lease runs out; a write that fails is retried by a
-- later dispatch once the lease has expired, which also keeps a file that keeps failing from holding up the others.
--
-- Invariants:
-- - A job's rejects file is claimed by at most one dispatch at a time (row lock + rejects_claimed_until).
-- - Recording the file clears the claim; a job that becomes pending again is claimable at once.

-- Claims up to p_limit due rejects files (finished with rejects, file not yet written, not claimed by a live lease),
-- oldest job first, for p_lease_seconds. Caller: the dispatch logic (writePendingRejectFiles).
-- Locks: the claimed job rows (FOR UPDATE SKIP LOCKED). Not idempotent: a claim lasts p_lease_seconds.
create function csv_import.claim_rejects_files(p_limit int default 5, p_lease_seconds int default 60)
returns table (job_id bigint, bucket_id text, object_name text)
language sql volatile security definer
set search_path = ''
as $$
  with due as (
    select id from csv_import.jobs
    where rejects_status = 'pending' and (rejects_claimed_until is null or rejects_claimed_until <= now())
    order by id limit greatest(p_limit, 0)
    for update skip locked
  )
  update csv_import.jobs j set rejects_claimed_until = now() + make_interval(secs => greatest(p_lease_seconds, 1))
  from due where j.id = due.id
  returning j.id, j.bucket_id, j.object_name
$$;

-- Records that a job's rejects file was written and ends its claim. Idempotent (a second writer changes nothing).
-- Locks: the job row (update). Caller: the dispatch logic (rejects_file.ts).
create or replace function csv_import.record_rejects_file(p_job_id bigint, p_object_name text)
returns void
language sql security definer
set search_path = ''
as $$
  update csv_import.jobs
  set rejects_status = 'written', rejects_object = p_object_name, rejects_claimed_until = null, updated_at = now()
  where id = p_job_id and rejects_status = 'pending'
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
