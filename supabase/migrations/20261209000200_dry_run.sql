-- Issue 15, dry runs: validate a file against its profile without writing a row.
--
-- A job with dry_run set (from its profile's dry_run, or asked for by the upload itself: the object's user
-- metadata {"csv_import": {"dry_run": true}}, which `csv-import import --dry-run` sets) runs every step of a real
-- load: each batch's rows go to the target table through the same COPY and refusal isolation, so PostgreSQL
-- checks every type, constraint and trigger; the chunk worker then rolls the rows back (a savepoint around them)
-- and commits only the batch's progress, counts and rejects. The job ends 'validated' with its counts, rejects
-- and rejects CSV, or 'failed' where the real load would fail (the reject rate, an early stop, a dead chunk).
-- What a dry run cannot see: a duplicate key between two rows of the same file in different batches (each
-- batch's rows are gone before the next one's arrive), and sequences advance as in any rolled-back insert.
--
-- Also kept on the job from the plan here, for a table made from the file (20261209000300_tables_from_files.sql):
-- table_sql, its CREATE TABLE, shown by the CLI, and scratch_table, a dry run's stand-in for it.

alter table csv_import.profiles add column dry_run boolean not null default false;
comment on column csv_import.profiles.dry_run is
  'Validate files without writing a row: jobs end ''validated'' with counts and rejects (or ''failed'')';
alter table csv_import.jobs add column dry_run boolean not null default false;
alter table csv_import.jobs add column table_sql text;
alter table csv_import.jobs add column scratch_table text;
comment on column csv_import.jobs.dry_run is
  'The job validates its file without writing a row (profile dry_run, or the upload''s user metadata)';
comment on column csv_import.jobs.table_sql is
  'The CREATE TABLE statement of the table the pipeline made from the file, when it made one';
comment on column csv_import.jobs.scratch_table is
  'A dry run''s stand-in for a table it would make (csv_import_scratch), dropped once the job is done';

-- As in 20261208000000_stop_early.sql, and it keeps the plan's dry_run, table_sql and scratch_table on the job.
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
    dry_run = coalesce((p_plan ->> 'dry_run')::boolean, false),
    table_sql = p_plan ->> 'table_sql',
    scratch_table = p_plan ->> 'scratch_table',
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

-- As in 20261204001000_create_finalize_and_reconcile.sql, and a dry run that would have succeeded (with or without
-- rejects) ends 'validated'; one that would fail fails with the same message, saying nothing was written.
create or replace function csv_import._finalize_verdict(
  p_job csv_import.jobs, p_parsed numeric, p_loaded numeric, p_rejected numeric, p_skipped numeric,
  out status csv_import.job_status, out error text
)
language plpgsql security definer
set search_path = ''
as $$
declare
  v_dead csv_import.chunks;
  v_bad_chunk int;
begin
  select * into v_dead from csv_import.chunks c where c.job_id = p_job.id and c.status = 'dead'
  order by c.kind desc, c.chunk_index limit 1;
  if found then
    status := 'failed';
    error := format('Chunk %s (%s, bytes %s–%s) failed: %s', v_dead.chunk_index, v_dead.kind,
      v_dead.start_offset, v_dead.end_offset, v_dead.last_error);
    return;
  end if;
  v_bad_chunk := csv_import._finalize_tiling_gap(p_job);
  if v_bad_chunk is not null then
    status := 'failed';
    error := format('Consistency check failed: the chunks'' records do not tile the file exactly (chunk %s)',
      v_bad_chunk);
  elsif p_parsed <> p_loaded + p_rejected + p_skipped then
    status := 'failed';
    error := format('Consistency check failed: %s rows parsed but %s loaded + %s rejected + %s skipped',
      p_parsed, p_loaded, p_rejected, p_skipped);
  elsif p_rejected > 0 and p_rejected > p_job.tolerated_reject_rate * p_parsed then
    status := 'failed';
    error := format('Rejected %s of %s rows (%s%%), above the tolerated %s%%; %s',
      p_rejected, p_parsed, round(100.0 * p_rejected / p_parsed, 2),
      round(100 * p_job.tolerated_reject_rate, 2),
      case when p_job.dry_run then format('a dry run: the %s valid rows were not written', p_loaded)
           else format('the %s valid rows were loaded', p_loaded) end);
  elsif p_job.dry_run then
    status := 'validated';
  elsif p_rejected > 0 then
    status := 'succeeded_with_rejects';
  else
    status := 'succeeded';
  end if;
end
$$;

-- As in 20261204000000_create_csv_import_schema.sql, and a validated job with no data rows shows 100 %.
create or replace view csv_import.job_progress with (security_invoker = true) as
select j.id as job_id, j.status, j.bucket_id, j.object_name, j.object_size, j.target_table, j.chunk_count,
  j.error, j.created_at, j.started_at, j.first_row_at, j.finished_at, j.rejects_object, j.rejects_status,
  p.chunks_done, p.chunks_running, p.chunks_dead, p.rows_parsed, p.rows_loaded, p.rows_rejected, p.rows_skipped,
  p.bytes_done,
  case when coalesce(j.object_size - j.data_start, 0) <= 0 then
         case when j.status in ('succeeded', 'succeeded_with_rejects', 'validated') then 100.0 else 0.0 end
       else round(100.0 * p.bytes_done / (j.object_size - j.data_start), 1) end as percent,
  case when j.started_at is null then 0
       else round(p.rows_loaded / greatest(extract(epoch from coalesce(j.finished_at, now()) - j.started_at), 0.001))
  end as rows_per_second,
  j.rejects_stored,
  case when p.rows_rejected > j.rejects_stored then
    format('Only the first %s of %s rejects are stored (the per-job limit, MAX_STORED_REJECTS or the profile''s max_stored_rejects); all are counted',
           j.rejects_stored, p.rows_rejected)
  end as rejects_note
from csv_import.jobs j
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

-- As in 20261208000000_stop_early.sql, and a dry run's reason says its valid rows were not written.
create or replace function csv_import._early_stop_reason(p_job csv_import.jobs)
returns text
language sql immutable
set search_path = ''
as $$
  select case
    when p_job.max_rejects is not null and p_job.rows_rejected > p_job.max_rejects then
      format('Stopped early: %s rows rejected, more than the profile''s max_rejects (%s), after %s rows; '
        || '%s and the rest of the file was not read',
        p_job.rows_rejected, p_job.max_rejects, p_job.rows_parsed, v.seen)
    when p_job.reject_rate_after_rows is not null and p_job.rows_parsed >= p_job.reject_rate_after_rows
         and p_job.rows_rejected > p_job.tolerated_reject_rate * p_job.rows_parsed then
      format('Stopped early: %s of the first %s rows rejected (%s%%), above the tolerated %s%% '
        || '(judged from %s rows on); %s and the rest of the file was not read',
        p_job.rows_rejected, p_job.rows_parsed, round(100.0 * p_job.rows_rejected / p_job.rows_parsed, 2),
        round(100 * p_job.tolerated_reject_rate, 2), p_job.reject_rate_after_rows, v.seen)
  end
  from (select format(case when p_job.dry_run then 'a dry run: the %s valid rows seen were not written'
                           else 'the %s valid rows seen were loaded' end, p_job.rows_loaded) as seen) v
$$;

revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
