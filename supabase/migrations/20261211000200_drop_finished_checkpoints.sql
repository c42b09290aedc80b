-- Issue 16: a compressed job's checkpoints (csv_import.inflate_checkpoints: a window of up to 32 KiB per range,
-- about 0.4 % of the decompressed data, 40 MB for a 10 GB file) serve its chain, its loads and a retry of the job
-- when it failed or was cancelled (retry_job takes no other). Once the job has succeeded, or a dry run is
-- validated, nothing reads them again: they go at once instead of staying until prune_finished_jobs (30 days
-- by default), which on a small plan's database is space a user pays for.
create function csv_import._drop_finished_checkpoints()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from csv_import.inflate_checkpoints where job_id = new.id;
  return null;
end
$$;
revoke all on function csv_import._drop_finished_checkpoints() from public, anon, authenticated;

create trigger jobs_drop_finished_checkpoints
after update of status on csv_import.jobs
for each row
when (new.compression is not null and old.status is distinct from new.status
      and new.status in ('succeeded', 'succeeded_with_rejects', 'validated'))
execute function csv_import._drop_finished_checkpoints();
