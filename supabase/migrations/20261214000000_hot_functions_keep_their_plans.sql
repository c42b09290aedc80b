-- Issue 14: the SQL-language functions on the per-file, per-chunk and per-batch paths become PL/pgSQL, so that a
-- connection plans their statements once instead of at every call.
--
-- Why: PostgreSQL before 18 caches no plan for a LANGUAGE sql function that it cannot inline, and none of these
-- can be inlined (SECURITY DEFINER or `set search_path`): every call from a new statement parses, analyses and
-- plans the body again (fmgr_sql keeps the plan only for the rest of the calling query). PL/pgSQL keeps each
-- statement's plan for the life of the connection (a generic plan after five custom ones). Measured on the local
-- stack, 300 separate `select csv_import.chunk_context(…)` statements in one psql session (a chunk id that does
-- not exist, so no row work): 0.79–0.86 ms a call as SQL, 0.13–0.17 ms as PL/pgSQL, 0.07 ms for `select 1`.
-- In issue 14's small-file burst (`deno run -A bench/burst.ts --big 0`, pg_stat_statements with track = all)
-- chunk_context took 3.8 ms a call of which its one query 1.5 ms: the rest was planning it.
--
-- The bodies, volatility, security and search_path are those of the definitions they replace (named below);
-- CREATE OR REPLACE keeps the grants. A function's answer when nothing matches is kept: a scalar subquery that
-- finds no row is NULL, as the SQL function's empty result was.

-- From 20261211000100_compressed_uploads.sql. One call per chunk a worker takes.
create or replace function csv_import.chunk_context(p_chunk_id bigint, p_lease_token uuid)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return (
    select jsonb_build_object(
      'chunk_id', c.id, 'job_id', c.job_id, 'kind', c.kind, 'chunk_index', c.chunk_index,
      'start_offset', c.start_offset, 'end_offset', c.end_offset, 'attempts', c.attempts,
      'max_attempts', j.max_attempts, 'lease_until', c.lease_until,
      'entry_parity', c.entry_parity, 'lines_before', c.lines_before, 'at_record_start', c.at_record_start,
      'batches_committed', c.batches_committed, 'resume_offset', c.resume_offset, 'resume_line', c.resume_line,
      'first_record_at', c.first_record_at,
      'scan_inline', c.kind = 'load' and c.end_offset - c.start_offset <= csv_import.inline_scan_max_bytes()
        and exists (
          select 1 from csv_import.chunks s
          where s.job_id = c.job_id and s.kind = 'scan' and s.chunk_index = c.chunk_index
            and s.status in ('pending', 'running')
        ),
      'bucket_id', j.bucket_id, 'object_name', j.object_name, 'object_version', j.object_version,
      'object_etag', j.object_etag, 'rejects_stored', j.rejects_stored,
      'object_size', j.object_size, 'data_start', j.data_start, 'chunk_count', j.chunk_count,
      'target_table', j.target_table, 'dialect', j.dialect, 'columns', j.columns,
      'profile', to_jsonb(p) - 'created_at' - 'updated_at',
      'compression', j.compression, 'data_size', j.data_size, 'chunk_size', j.chunk_size,
      'inflated_in', j.inflated_in,
      'checkpoint', case when j.compression is null then null
                         when c.kind = 'inflate' then csv_import._resume_checkpoint(j.id, coalesce(c.resume_offset, 0))
                         else csv_import._resume_checkpoint(j.id, coalesce(c.resume_offset, c.start_offset)) end,
      -- A load's range ends at a checkpoint (but the last): it inflates up to it in one read (in the runtime's
      -- native inflater where the range lies in one deflate stream), then on from it to finish its last record.
      'end_checkpoint', case when j.compression is not null and c.kind = 'load' then
        (select csv_import._checkpoint_json(k)
         from csv_import.inflate_checkpoints k where k.job_id = j.id and k.out_offset = c.end_offset)
      end
    )
    from csv_import.chunks c
    join csv_import.jobs j on j.id = c.job_id
    left join csv_import.profiles p on p.id = j.profile_id
    where c.id = p_chunk_id and c.lease_token = p_lease_token and c.status = 'running'
      and j.status in ('queued', 'running')
  );
end
$$;

-- From 20261204001100_create_rejects_files.sql. Called by every function invocation as it ends.
create or replace function csv_import.claim_rejects_files(p_limit integer default 5, p_lease_seconds integer default 60)
returns table (job_id bigint, bucket_id text, object_name text)
language plpgsql security definer
set search_path = ''
as $$
#variable_conflict use_column
begin
  return query
  with due as (
    select id from csv_import.jobs
    where rejects_status = 'pending' and (rejects_claimed_until is null or rejects_claimed_until <= now())
    order by id limit greatest(p_limit, 0)
    for update skip locked
  )
  update csv_import.jobs j set rejects_claimed_until = now() + make_interval(secs => greatest(p_lease_seconds, 1))
  from due where j.id = due.id
  returning j.id, j.bucket_id, j.object_name;
end
$$;

-- From 20261211000100_compressed_uploads.sql. Once per registration (register_job).
create or replace function csv_import._store_plan(
  p_job_id bigint, p_plan jsonb, p_size bigint, p_data_start bigint, p_chunk_size bigint, p_count integer
)
returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  update csv_import.jobs j set
    status = 'queued',
    object_size = p_size,
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
    compression = nullif(p_plan -> 'compression', 'null'::jsonb),
    data_start = p_data_start,
    header_lines = coalesce((p_plan ->> 'header_lines')::bigint, 0),
    prefix_lines = coalesce((p_plan ->> 'header_lines')::bigint, 0),
    chunk_size = p_chunk_size,
    chunk_count = p_count,
    error = null,
    updated_at = now()
  where j.id = p_job_id;
end
$$;

-- From 20261204000200_create_registration.sql (so are the three after the next). Once per registration: the
-- profile an object's path picks (the longest matching pattern).
create or replace function csv_import.resolve_profile(p_bucket_id text, p_object_name text)
returns csv_import.profiles
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    select p from csv_import.profiles p
    where p.bucket_id = p_bucket_id and p_object_name like p.path_pattern
    order by length(p.path_pattern) desc, p.id
    limit 1
  );
end
$$;

-- From 20261204000700_create_row_refusals.sql. Once per chunk (the load's writer).
create or replace function csv_import.has_deferred_constraints(p_table text)
returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
  return (
    with tree as ( -- pg_partition_tree lists nothing for a table that is not partitioned
      select pg_catalog.to_regclass(p_table) as relid
      union select relid from pg_catalog.pg_partition_tree(pg_catalog.to_regclass(p_table))
    )
    select exists (select 1 from pg_catalog.pg_constraint k join tree t on t.relid = k.conrelid where k.condeferred)
        or exists (select 1 from pg_catalog.pg_trigger g join tree t on t.relid = g.tgrelid
                   where g.tginitdeferred and g.tgenabled <> 'D' and (g.tgtype & 4) <> 0) -- fires on INSERT
  );
end
$$;

-- By the storage trigger, for every object written, moved or deleted.
create or replace function csv_import.is_import_candidate(p_bucket_id text, p_object_name text)
returns boolean
language plpgsql stable
set search_path = ''
as $$
begin
  return (p_bucket_id = 'csv-uploads' or exists (select 1 from csv_import.profiles p where p.bucket_id = p_bucket_id))
     and p_object_name not like '%.rejects.csv'
     and left(storage.filename(p_object_name), 1) <> '.';
end
$$;

-- By begin_batch and commit_batch, twice per batch.
create or replace function csv_import.object_is_current(p_bucket_id text, p_object_name text, p_version text)
returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return exists (
    select 1 from storage.objects o
    where o.bucket_id = p_bucket_id and o.name = p_object_name and coalesce(o.version, o.id::text) = p_version);
end
$$;

-- Beside object_is_current when an object changed under a job. At most one row: an object is one row of
-- storage.objects, and a job is unique per object version.
create or replace function csv_import._current_job_of_object(p_bucket_id text, p_object_name text)
returns bigint
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return (
    select j.id from storage.objects o
    join csv_import.jobs j on j.bucket_id = o.bucket_id and j.object_name = o.name
                          and j.object_version = coalesce(o.version, o.id::text)
    where o.bucket_id = p_bucket_id and o.name = p_object_name
    limit 1
  );
end
$$;

-- From 20261204000200_create_registration.sql, once per upload, inside Storage's INSERT of the object row: the
-- older jobs of the object are stopped only when there is one to stop. _stop_jobs_of_object_quickly opens a
-- subtransaction (its exception block) and _stop_jobs_of_object then finds no job for a new object, as it does for
-- nearly every upload: 1.55 ms of the 7.3 ms the registration took per upload in issue 14's burst. The check reads
-- what _stop_jobs_of_object's loop would, in the same snapshot, so the stops happen exactly as before. It is here
-- and not in _stop_jobs_of_object_quickly: after this function's INSERT into csv_import.jobs the read cannot wait
-- for a lock, whereas a delete's or a move's read there could, outside the exception block that keeps the storage
-- trigger from ever raising.
create or replace function csv_import.enqueue_registration(
  p_bucket_id text, p_object_name text, p_object_id uuid, p_version text, p_size bigint, p_owner_id text,
  p_etag text default null
) returns bigint
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job_id bigint;
  v_version text := coalesce(p_version, p_object_id::text);
begin
  insert into csv_import.jobs (bucket_id, object_name, object_id, object_version, object_size, owner_id, object_etag)
  values (p_bucket_id, p_object_name, p_object_id, v_version, p_size, p_owner_id, p_etag)
  on conflict (bucket_id, object_name, object_version) do nothing
  returning id into v_job_id;
  if v_job_id is null then
    return (select id from csv_import.jobs where bucket_id = p_bucket_id and object_name = p_object_name
            and object_version = v_version);
  end if;
  if exists (
    select 1 from csv_import.jobs j
    where j.bucket_id = p_bucket_id and j.object_name = p_object_name
      and j.id <> v_job_id and j.status in ('registering', 'queued', 'running')
  ) then
    perform csv_import._stop_jobs_of_object_quickly(p_bucket_id, p_object_name,
      format('Superseded by a newer version of %s (job %s)', p_object_name, v_job_id), v_job_id);
  end if;
  perform csv_import.request_registration(v_job_id);
  return v_job_id;
end
$$;

-- From 20261209000200_dry_run.sql. By commit_batch, once per batch.
create or replace function csv_import._early_stop_reason(p_job csv_import.jobs)
returns text
language plpgsql immutable
set search_path = ''
as $$
declare
  v_seen text := format(case when p_job.dry_run then 'a dry run: the %s valid rows seen were not written'
                             else 'the %s valid rows seen were loaded' end, p_job.rows_loaded);
begin
  return case
    when p_job.max_rejects is not null and p_job.rows_rejected > p_job.max_rejects then
      format('Stopped early: %s rows rejected, more than the profile''s max_rejects (%s), after %s rows; '
        || '%s and the rest of the file was not read',
        p_job.rows_rejected, p_job.max_rejects, p_job.rows_parsed, v_seen)
    when p_job.reject_rate_after_rows is not null and p_job.rows_parsed >= p_job.reject_rate_after_rows
         and p_job.rows_rejected > p_job.tolerated_reject_rate * p_job.rows_parsed then
      format('Stopped early: %s of the first %s rows rejected (%s%%), above the tolerated %s%% '
        || '(judged from %s rows on); %s and the rest of the file was not read',
        p_job.rows_rejected, p_job.rows_parsed, round(100.0 * p_job.rows_rejected / p_job.rows_parsed, 2),
        round(100 * p_job.tolerated_reject_rate, 2), p_job.reject_rate_after_rows, v_seen)
  end;
end
$$;

-- From 20261204000100_create_backoff.sql. By request_registration, once per upload, and on every failure.
create or replace function csv_import.retry_delay(
  attempt int,
  base interval default interval '5 seconds',
  cap interval default interval '10 minutes',
  jitter double precision default random()
) returns interval
language plpgsql immutable parallel safe
set search_path = ''
as $$
begin
  -- The exponential is compared with the cap in seconds (2^(attempt-1) bounded so the double cannot overflow)
  -- before it becomes an interval: base * 2^(attempt-1) as an interval overflows from attempt ~43 on.
  return case when extract(epoch from base) * power(2, least(greatest(attempt, 1), 1000) - 1) >= extract(epoch from cap)
              then cap
              else base * power(2, greatest(attempt, 1) - 1) end
         * (0.5 + least(greatest(jitter, 0), 1) / 2);
end
$$;

-- From 20261205000102_short_pg_net_timeouts.sql. By request_function, once per pg_net request.
create or replace function csv_import.request_timeout_ms(p_function_name text)
returns int
language plpgsql immutable
set search_path = ''
as $$
begin
  return case p_function_name when 'dispatch' then 5000 else 20000 end;
end
$$;
