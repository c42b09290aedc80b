-- Registration: an upload to a watched bucket becomes a job, durably, inside the Storage API's own
-- transaction; the register Edge Function then plans it.
--
-- Flow: storage.objects INSERT/UPDATE (written by Storage only after the bytes are stored)
--   → csv_import._on_object_change (trigger) → csv_import.enqueue_registration (job row, status registering)
--   → csv_import.request_function('register') (pg_net, sent only if that transaction commits)
--   → register function → csv_import.register_job (plan + chunks, one transaction) or csv_import.fail_registration.
-- If the request is lost (pg_net's queue is unlogged) or register fails transiently, csv_import.reconcile
-- re-requests it with backoff, so registration never depends on one HTTP call.

-- A job belongs to one version of its object (jobs.object_version, jobs.object_etag); the storage trigger creates
-- the new version's job first and stops older ones without waiting long (20261204000300_create_job_stops.sql).

-- The endpoint and headers the database uses to call a pipeline function (see the Vault secrets below).
-- With csv_import_internal_secret in Vault, only that secret is sent (header x-pipeline-secret; the functions
-- are deployed with verify_jwt = false and accept it), so a queued pg_net request never carries the service
-- role key. Without it, the key in csv_import_service_key is sent. Null when Vault lacks the URL or both
-- credentials. The secrets, set once per project:
--   select vault.create_secret('https://<project-ref>.supabase.co', 'csv_import_api_url');
--   select vault.create_secret('<service role key or sb_secret_… key>', 'csv_import_service_key');
--   select vault.create_secret('<random secret, also set as the functions' INTERNAL_SECRET>', 'csv_import_internal_secret');
-- Reads Vault only; locks nothing; idempotent. Caller: request_function.
create or replace function csv_import.function_endpoint(p_function_name text, out url text, out headers jsonb)
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_api_url text;
  v_key text;
  v_internal text;
begin
  select decrypted_secret into v_api_url from vault.decrypted_secrets where name = 'csv_import_api_url';
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'csv_import_service_key';
  select decrypted_secret into v_internal from vault.decrypted_secrets where name = 'csv_import_internal_secret';
  if v_api_url is null or (v_key is null and v_internal is null) then
    url := null;
    headers := null;
    return;
  end if;
  url := rtrim(v_api_url, '/') || '/functions/v1/' || p_function_name;
  if v_internal is not null then
    headers := jsonb_build_object('Content-Type', 'application/json', 'x-pipeline-secret', v_internal);
  else
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key,
                                  'apikey', v_key);
  end if;
end
$$;

-- Queues an HTTP call of a pipeline function through pg_net; it is sent only if the caller commits.
-- Returns the pg_net request id, or null (and a warning) when Vault lacks the endpoint secrets.
-- Callers: enqueue_registration, reconcile.
-- Locks: none (pg_net queues the request). Not idempotent: each call queues a request.
create or replace function csv_import.request_function(p_function_name text, p_body jsonb)
returns bigint
language plpgsql security definer
set search_path = ''
as $$
declare
  v_endpoint record;
begin
  select * into v_endpoint from csv_import.function_endpoint(p_function_name);
  if v_endpoint.url is null then
    raise warning 'csv_import: Vault secrets csv_import_api_url / csv_import_service_key are missing; cannot call %',
      p_function_name;
    return null;
  end if;
  return net.http_post(url := v_endpoint.url, body := p_body, headers := v_endpoint.headers,
                       timeout_milliseconds := 60000);
end
$$;

-- Whether an object should be imported: a watched bucket (csv-uploads, or any bucket a profile names), and
-- not a file the pipeline writes itself (*.rejects.csv) or a hidden file such as Studio's
-- .emptyFolderPlaceholder.
-- Read-only, no locks; idempotent. Callers: _on_object_change, _reconcile_orphans.
create or replace function csv_import.is_import_candidate(p_bucket_id text, p_object_name text)
returns boolean
language sql stable
set search_path = ''
as $$
  select (p_bucket_id = 'csv-uploads' or exists (select 1 from csv_import.profiles p where p.bucket_id = p_bucket_id))
     and p_object_name not like '%.rejects.csv'
     and left(storage.filename(p_object_name), 1) <> '.'
$$;

-- Whether the object a job loads still holds the job's version. Read-only, no locks (storage.objects' unique
-- index on bucket_id, name). Callers: begin_batch, commit_batch, _check_retryable, reconcile, the chunk worker.
create or replace function csv_import.object_is_current(p_bucket_id text, p_object_name text, p_version text)
returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from storage.objects o
    where o.bucket_id = p_bucket_id and o.name = p_object_name and coalesce(o.version, o.id::text) = p_version)
$$;

-- The job of the version an object holds now, if it has one. Read-only. Callers: release_stopped_chunk,
-- _stop_stale_jobs, _check_retryable.
-- Locks: none.
create or replace function csv_import._current_job_of_object(p_bucket_id text, p_object_name text)
returns bigint
language sql stable security definer
set search_path = ''
as $$
  select j.id from storage.objects o
  join csv_import.jobs j on j.bucket_id = o.bucket_id and j.object_name = o.name
                        and j.object_version = coalesce(o.version, o.id::text)
  where o.bucket_id = p_bucket_id and o.name = p_object_name
$$;

-- The import profile for an object: the profile of its bucket whose path_pattern (LIKE) matches the name,
-- the longest pattern winning, then the lowest id. Null when none matches.
-- Read-only, no locks; idempotent. Callers: the register function, the CLI.
create or replace function csv_import.resolve_profile(p_bucket_id text, p_object_name text)
returns csv_import.profiles
language sql stable
set search_path = ''
as $$
  select p.* from csv_import.profiles p
  where p.bucket_id = p_bucket_id and p_object_name like p.path_pattern
  order by length(p.path_pattern) desc, p.id
  limit 1
$$;

-- Describes a target table's columns for registration and the chunk workers' validation: one JSON object per
-- live column, in column order (shape: TargetColumnRow in supabase/functions/_shared/pg_types/columns.ts).
-- Domains are resolved to their base type through any number of levels: the typmod is the nearest one
-- declared on the way down, NOT NULL counts on the column or any domain level, domain CHECKs are flagged.
-- has_default: omitting the column still gives it a value (DEFAULT, a domain's DEFAULT, identity or generated); generated
-- columns must never be written. Typmods are decoded as PostgreSQL encodes them (varchar length = typmod - 4;
-- numeric precision = (typmod - 4) >> 16, scale = sign-extended low 11 bits). Raises 42P01 with a clear
-- message when the table does not exist. Read-only.
-- Locks: none. Callers: the register function, the chunk worker (loader), the CLI.
create or replace function csv_import.describe_target(p_table text)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_oid oid;
begin
  begin
    v_oid := pg_catalog.to_regclass(p_table);
  exception when invalid_name or syntax_error then
    v_oid := null;
  end;
  if v_oid is null then
    raise exception 'Target table % does not exist', p_table using errcode = '42P01';
  end if;
  return (
    with recursive cols as (
      select a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.atthasdef, a.attidentity, a.attgenerated
      from pg_catalog.pg_attribute a
      where a.attrelid = v_oid and a.attnum > 0 and not a.attisdropped
    ),
    chain (attnum, typid, typmod, domain_not_null, domain_checks, domain_default, is_domain, depth) as (
      select attnum, atttypid, atttypmod, false, false, false, false, 0 from cols
      union all
      select ch.attnum, t.typbasetype,
             case when ch.typmod <> -1 then ch.typmod else t.typtypmod end,
             ch.domain_not_null or t.typnotnull,
             ch.domain_checks or exists (
               select 1 from pg_catalog.pg_constraint k where k.contypid = t.oid and k.contype = 'c'),
             ch.domain_default or t.typdefaultbin is not null,
             true,
             ch.depth + 1
      from chain ch
      join pg_catalog.pg_type t on t.oid = ch.typid
      where t.typtype = 'd'
    ),
    base as (
      select distinct on (attnum) * from chain order by attnum, depth desc
    )
    select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
      'name', c.attname::text,
      'ordinal', c.attnum::int,
      'column_type', pg_catalog.format_type(c.atttypid, c.atttypmod),
      'base_type_name', bt.typname::text,
      'base_type_schema', bn.nspname::text,
      'base_type_kind', bt.typtype::text,
      'base_type_category', bt.typcategory::text,
      'base_type', pg_catalog.format_type(b.typid, nullif(b.typmod, -1)),
      'typmod', b.typmod::int,
      'is_domain', b.is_domain,
      'not_null', c.attnotnull or b.domain_not_null,
      'column_not_null', c.attnotnull,
      'domain_not_null', b.domain_not_null,
      'domain_has_checks', b.domain_checks,
      'has_default', c.atthasdef or c.attidentity <> '' or c.attgenerated <> '' or b.domain_default,
      'identity', case c.attidentity when 'a' then 'always' when 'd' then 'by_default' end,
      'generated', c.attgenerated <> '',
      'char_length', case when bt.typname in ('varchar', 'bpchar') and b.typmod >= 4 then b.typmod - 4 end,
      'numeric_precision', case when bt.typname = 'numeric' and b.typmod >= 4 then ((b.typmod - 4) >> 16) & 65535 end,
      'numeric_scale', case when bt.typname = 'numeric' and b.typmod >= 4 then (((b.typmod - 4) & 2047) # 1024) - 1024 end,
      'datetime_precision', case when bt.typname in ('timestamp', 'timestamptz', 'time', 'timetz') and b.typmod >= 0
                                 then b.typmod end,
      'enum_labels', case when bt.typtype = 'e' then (
        select pg_catalog.jsonb_agg(e.enumlabel::text order by e.enumsortorder)
        from pg_catalog.pg_enum e where e.enumtypid = b.typid) end,
      'element_type', case when bt.typcategory = 'A' and bt.typelem <> 0 then pg_catalog.format_type(bt.typelem, null) end
    ) order by c.attnum)
    from cols c
    join base b on b.attnum = c.attnum
    join pg_catalog.pg_type bt on bt.oid = b.typid
    join pg_catalog.pg_namespace bn on bn.oid = bt.typnamespace
  );
end
$$;

-- Creates the job for one object version (idempotent: the same version twice gives one job), then stops the
-- active jobs of older versions of the same object (superseded). The new job is committed with the upload even
-- when stopping the old ones has to wait for reconcile. Returns the job id. Callers: _on_object_change, reconcile.
-- Locks: the new job row; the older jobs' rows (_stop_jobs_of_object_quickly, at most 2 s each).
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
  perform csv_import._stop_jobs_of_object_quickly(p_bucket_id, p_object_name,
    format('Superseded by a newer version of %s (job %s)', p_object_name, v_job_id), v_job_id);
  perform csv_import.request_registration(v_job_id);
  return v_job_id;
end
$$;

-- Asks the register function to plan a job and schedules the next re-request in case this one is lost.
-- Callers: enqueue_registration, reconcile.
-- Locks: the job row (update). Not idempotent: each call queues a request and counts an attempt.
create or replace function csv_import.request_registration(p_job_id bigint)
returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_request bigint;
begin
  v_request := csv_import.request_function('register', jsonb_build_object('job_id', p_job_id));
  update csv_import.jobs set
    register_attempts = register_attempts + 1,
    register_after = now() + greatest(interval '30 seconds', csv_import.retry_delay(register_attempts + 1)),
    error = case when v_request is null
      then 'Waiting for the pipeline to be configured: Vault secrets csv_import_api_url and csv_import_service_key are missing'
      else error end,
    updated_at = now()
  where id = p_job_id;
end
$$;

-- Records the ETag of a job's object when the trigger could not (metadata without eTag). Only fills a missing
-- one. Caller: the register function.
-- Locks: the job row (update). Idempotent: a recorded ETag is kept.
create or replace function csv_import.record_object_etag(p_job_id bigint, p_etag text)
returns text
language sql security definer
set search_path = ''
as $$
  update csv_import.jobs set object_etag = coalesce(object_etag, p_etag), updated_at = now()
  where id = p_job_id
  returning object_etag
$$;

-- Plans a registering job in one transaction: stores the dialect, the column mapping and the data start
-- found by the register function, and creates its chunks: load chunks covering [data_start, object_size) in
-- p_chunk_size steps, and a scan chunk for every load chunk but the last (a load chunk needs the scans of
-- all earlier chunks to know its entry state). Load chunk 0 starts at a record boundary, so its entry state is
-- known at once. Idempotent: a job that is no longer registering is returned unchanged with planned = false.
-- Locks: the job row. Caller: the register function.
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

-- Fails a registering job with the file's problem (not UTF-8, no profile, missing columns, …), or, for a
-- transient problem, leaves it registering so reconcile re-requests it with backoff. Caller: register.
-- Locks: the job row (update). Idempotent: a job that is no longer registering is left as it is.
create or replace function csv_import.fail_registration(p_job_id bigint, p_error text, p_transient boolean default false)
returns csv_import.job_status
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status csv_import.job_status;
begin
  if p_transient then
    update csv_import.jobs set error = p_error, updated_at = now()
    where id = p_job_id and status = 'registering'
    returning status into v_status;
  else
    update csv_import.jobs set status = 'failed', error = p_error, finished_at = now(), updated_at = now()
    where id = p_job_id and status = 'registering'
    returning status into v_status;
  end if;
  return coalesce(v_status, (select status from csv_import.jobs where id = p_job_id));
end
$$;

-- Refuses a job row whose chunk_count is over 100,000 (MAX_CHUNKS_CEILING in config.ts).
-- Locks: none beyond the row being written. Idempotent: a check only. Caller: trigger tg_jobs__check_chunk_count.
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

create trigger tg_jobs__check_chunk_count
  before insert or update of chunk_count on csv_import.jobs
  for each row
  when (new.chunk_count > 100000)
  execute function csv_import._check_chunk_count();

-- Trigger on storage.objects: a new object or a new version registers a job (a moved object counts as new under
-- its new name); a deleted or moved object cancels the active jobs of its old name. Never raises and never waits
-- longer than _stop_jobs_of_object's 2 s lock_timeout: an upload must not fail or hang because of the pipeline; reconcile later
-- registers any version left without a job and stops jobs whose version is gone.
-- Idempotent per object version (enqueue_registration). Caller: the trigger tg_objects__csv_import_register.
create or replace function csv_import._on_object_change()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' or (old.bucket_id, old.name) is distinct from (new.bucket_id, new.name) then
    perform csv_import._stop_jobs_of_object_quickly(old.bucket_id, old.name,
      case when tg_op = 'DELETE' then format('The object %s was deleted during the import', old.name)
           else format('The object %s/%s was moved to %s/%s during the import', old.bucket_id, old.name,
                       new.bucket_id, new.name) end, null);
    if tg_op = 'DELETE' then
      return old;
    end if;
  elsif tg_op = 'UPDATE' and new.version is not distinct from old.version then
    return new; -- metadata-only change, same bytes
  end if;
  if not csv_import.is_import_candidate(new.bucket_id, new.name) then
    return new;
  end if;
  begin
    perform csv_import.enqueue_registration(new.bucket_id, new.name, new.id, new.version,
      nullif(new.metadata ->> 'size', '')::bigint, coalesce(new.owner_id, new.owner::text),
      nullif(new.metadata ->> 'eTag', ''));
  exception when others then
    -- Never fail the upload; csv_import.reconcile registers any object version that has no job.
    raise warning 'csv_import: could not register %/%: %', new.bucket_id, new.name, sqlerrm;
  end;
  return new;
end
$$;

create trigger tg_objects__csv_import_register
  after insert or update or delete on storage.objects
  for each row execute function csv_import._on_object_change();

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
