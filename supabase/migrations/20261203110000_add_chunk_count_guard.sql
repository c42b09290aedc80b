-- A ceiling on the chunks of one job, enforced where chunks are created (issue 11, item 6).
--
-- The register function plans at most MAX_CHUNKS_PER_JOB load chunks (10,000 by default, at most 100,000: see
-- config.ts), raising the chunk size of a file that would need more. This is the database's own guard against
-- a plan that ignores that bound (an older function, a hand-written call to csv_import.register_job): a 5 MB
-- file planned with 1-byte chunks made 10.5M chunk rows (3.9 GB), claims took 7–18 s and an unrelated 2-row job
-- 21 s. csv_import.register_job sets jobs.chunk_count before it inserts the chunks, so the trigger refuses the
-- plan before any chunk row is written, and the whole registration rolls back.

-- Refuses a job row whose chunk_count is over 100,000 (MAX_CHUNKS_CEILING in config.ts).
-- Locks: none beyond the row being written. Idempotent: a check only. Caller: trigger jobs_chunk_count_guard.
create or replace function csv_import._check_chunk_count()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.chunk_count > 100000 then
    raise exception 'Job % would have % chunks; a job may have at most 100000 (raise its chunk size)',
      new.id, new.chunk_count
      using errcode = '54000', -- program_limit_exceeded
        hint = 'The register function plans at most MAX_CHUNKS_PER_JOB chunks by raising the chunk size.';
  end if;
  return new;
end
$$;

create trigger jobs_chunk_count_guard
  before insert or update of chunk_count on csv_import.jobs
  for each row
  when (new.chunk_count > 100000)
  execute function csv_import._check_chunk_count();

revoke execute on function csv_import._check_chunk_count() from public, anon, authenticated;
