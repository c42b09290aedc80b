-- The client API for signed-in users (issue 17): what an app shows a user about the imports of the files they
-- uploaded, in a schema of its own that PostgREST can expose (add csv_import_api to the API's exposed schemas;
-- supabase/config.toml does so locally) without exposing the pipeline's schema.
--
-- Invariants:
-- - Row-level security decides: the views are security_invoker, so csv_import's policies ("owners read their
--   jobs", "owners read their rejects") apply to the caller; a user sees exactly the jobs whose owner_id is their
--   auth.uid(), and nothing else.
-- - Only signed-in users (authenticated) may use the schema; anon has no usage on it (42501), the service role
--   reads csv_import itself.
-- - cancel_import cancels a job only for its owner, and answers "not found" (P0002, PostgREST: 404) alike for a
--   job that does not exist and another user's job, so a caller learns nothing about others' jobs.
-- - csv_import.jobs is in the supabase_realtime publication where it exists (csv_import.enable_realtime, again
--   here: a project whose Realtime was enabled after the first migrations gets it now), so clients on hosted follow
--   their jobs with Postgres Changes; the jobs row changes on every state change and every finished chunk.
create schema if not exists csv_import_api;
revoke all on schema csv_import_api from public, anon;
grant usage on schema csv_import_api to authenticated;

-- One row per import the caller can see (their own), with its progress. bytes_total counts the bytes the load
-- chunks cover (the file after its header, once registration found it; the whole file before), so bytes_done
-- reaches bytes_total when every chunk is done. eta_seconds: the remaining bytes at the rate since the first row
-- was written, only while running with some bytes done; null otherwise.
create view csv_import_api.imports with (security_invoker = true) as
select p.job_id as id, p.bucket_id as bucket, p.object_name as object, p.status::text as status,
  p.target_table as table_name,
  greatest(coalesce(p.object_size - coalesce(j.data_start, 0), 0), 0) as bytes_total,
  p.bytes_done, p.percent, p.rows_parsed, p.rows_loaded, p.rows_rejected, p.rows_skipped, p.rows_per_second,
  case when p.status = 'running' and p.bytes_done > 0 and coalesce(p.first_row_at, p.started_at) is not null then
    ceil(greatest(p.object_size - coalesce(j.data_start, 0) - p.bytes_done, 0)
      * extract(epoch from now() - coalesce(p.first_row_at, p.started_at)) / p.bytes_done)::bigint
  end as eta_seconds,
  p.error, j.dry_run, p.created_at, p.started_at, p.finished_at, p.rejects_status::text as rejects_status,
  p.rejects_object
from csv_import.job_progress p
join csv_import.jobs j on j.id = p.job_id;

-- The stored rejects of the caller's imports (all are counted in imports.rows_rejected; at most the per-job limit
-- is stored).
create view csv_import_api.import_rejects with (security_invoker = true) as
select r.job_id as import_id, r.line_number as line, r.column_name, r.reason, r.raw_record as raw
from csv_import.rejects r;

revoke all on csv_import_api.imports, csv_import_api.import_rejects from public, anon;
grant select on csv_import_api.imports, csv_import_api.import_rejects to authenticated;

-- Cancels the caller's import through csv_import.cancel_job (running chunks stop at their next batch boundary;
-- nothing is half-written) and returns the job's status afterwards; an import that already ended is left as it
-- is and its status returned. Raises P0002 "Import <id> not found" when there is no such import or it is not the
-- caller's (auth.uid() is null or another user's). Locks: as cancel_job. Idempotent. Callers: signed-in users,
-- through PostgREST (rpc/cancel_import) or the csv-import-api function.
create or replace function csv_import_api.cancel_import(p_import_id bigint)
returns text
language plpgsql security definer
set search_path = ''
as $$
declare
  v_uid uuid := auth.uid();
begin
  if v_uid is null or not exists (select 1 from csv_import.jobs
                                  where id = p_import_id and owner_id = v_uid::text) then
    raise exception 'Import % not found', p_import_id using errcode = 'P0002';
  end if;
  return csv_import.cancel_job(p_import_id, 'Cancelled by its owner') ->> 'status';
end
$$;
revoke execute on function csv_import_api.cancel_import(bigint) from public, anon;
grant execute on function csv_import_api.cancel_import(bigint) to authenticated;

select csv_import.enable_realtime();
