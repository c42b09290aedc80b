-- Registration: an upload to a watched bucket becomes a job, durably, inside the Storage API's own
-- transaction; the register Edge Function then plans it.
--
-- Flow: storage.objects INSERT/UPDATE (written by Storage only after the bytes are stored)
--   → csv_import.on_object_change (trigger) → csv_import.enqueue_registration (job row, status registering)
--   → csv_import.request_function('register') (pg_net, sent only if that transaction commits)
--   → register function → csv_import.register_job (plan + chunks, one transaction) or csv_import.fail_registration.
-- If the request is lost (pg_net's queue is unlogged) or register fails transiently, csv_import.reconcile
-- re-requests it with backoff, so registration never depends on one HTTP call.

-- The project URL and key the database uses to call the pipeline's Edge Functions, from Vault:
--   select vault.create_secret('https://<project-ref>.supabase.co', 'csv_import_api_url');
--   select vault.create_secret('<service role key or sb_secret_… key>', 'csv_import_service_key');
-- Returns null when either secret is missing.
create or replace function csv_import.function_endpoint(function_name text, out url text, out headers jsonb)
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_api_url text;
  v_key text;
begin
  select decrypted_secret into v_api_url from vault.decrypted_secrets where name = 'csv_import_api_url';
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'csv_import_service_key';
  if v_api_url is null or v_key is null then
    url := null;
    headers := null;
    return;
  end if;
  url := rtrim(v_api_url, '/') || '/functions/v1/' || function_name;
  headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key,
                                'apikey', v_key);
end
$$;

-- Queues an HTTP call of a pipeline function through pg_net; it is sent only if the caller commits.
-- Returns the pg_net request id, or null (and a warning) when Vault lacks the endpoint secrets.
-- Callers: enqueue_registration, reconcile.
create or replace function csv_import.request_function(function_name text, body jsonb)
returns bigint
language plpgsql security definer
set search_path = ''
as $$
declare
  v_endpoint record;
begin
  select * into v_endpoint from csv_import.function_endpoint(function_name);
  if v_endpoint.url is null then
    raise warning 'csv_import: Vault secrets csv_import_api_url / csv_import_service_key are missing; cannot call %',
      function_name;
    return null;
  end if;
  return net.http_post(url := v_endpoint.url, body := body, headers := v_endpoint.headers,
                       timeout_milliseconds := 60000);
end
$$;

-- Whether an object should be imported: a watched bucket (csv-uploads, or any bucket a profile names), and
-- not a file the pipeline writes itself (*.rejects.csv) or a hidden file such as Studio's
-- .emptyFolderPlaceholder.
create or replace function csv_import.is_import_candidate(bucket_id text, object_name text)
returns boolean
language sql stable
set search_path = ''
as $$
  select (bucket_id = 'csv-uploads' or exists (select 1 from csv_import.profiles p where p.bucket_id = $1))
     and object_name not like '%.rejects.csv'
     and left(storage.filename(object_name), 1) <> '.'
$$;

-- Creates the job for one object version (idempotent: the same version twice gives one job) and cancels the
-- running jobs of older versions of the same object (a new version supersedes them). Locks: the new job row;
-- the superseded job rows. Returns the job id. Caller: on_object_change.
create or replace function csv_import.enqueue_registration(
  p_bucket_id text, p_object_name text, p_object_id uuid, p_version text, p_size bigint, p_owner_id text
) returns bigint
language plpgsql security definer
set search_path = ''
as $$
declare
  v_job_id bigint;
begin
  insert into csv_import.jobs (bucket_id, object_name, object_id, object_version, object_size, owner_id)
  values (p_bucket_id, p_object_name, p_object_id, coalesce(p_version, p_object_id::text), p_size, p_owner_id)
  on conflict (bucket_id, object_name, object_version) do nothing
  returning id into v_job_id;
  if v_job_id is null then
    return (select id from csv_import.jobs where bucket_id = p_bucket_id and object_name = p_object_name
            and object_version = coalesce(p_version, p_object_id::text));
  end if;

  perform csv_import.stop_job(j.id, 'cancelled',
    format('Superseded by a newer version of %s (job %s)', p_object_name, v_job_id), v_job_id)
  from csv_import.jobs j
  where j.bucket_id = p_bucket_id and j.object_name = p_object_name and j.id <> v_job_id
    and j.status in ('registering', 'queued', 'running');

  perform csv_import.request_registration(v_job_id);
  return v_job_id;
end
$$;

-- Asks the register function to plan a job and schedules the next re-request in case this one is lost.
-- Callers: enqueue_registration, reconcile.
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

-- Moves a non-terminal job to a terminal status and stops its unfinished chunks (running chunks stop at
-- their next batch boundary: begin_batch refuses batches of a stopped job). Locks: its unfinished chunk rows
-- (in id order), then the job row — chunk before job, as claim_chunks, commit_batch and complete_scan take
-- them — so a stop waits for a batch in progress to commit instead of deadlocking with it. Safe to call twice.
-- Callers: enqueue_registration, on_object_change, fail_chunk, cancel_job.
create or replace function csv_import.stop_job(
  p_job_id bigint, p_status csv_import.job_status, p_error text, p_superseded_by bigint default null
) returns boolean
language plpgsql security definer
set search_path = ''
as $$
begin
  perform 1 from csv_import.chunks where job_id = p_job_id and status in ('pending', 'running')
  order by id for update;
  update csv_import.jobs set status = p_status, error = p_error, superseded_by = p_superseded_by,
    finished_at = now(), updated_at = now(),
    rejects_status = case when rows_rejected > 0 then 'pending' else rejects_status end
  where id = p_job_id and status in ('registering', 'queued', 'running');
  if not found then
    return false;
  end if;
  update csv_import.chunks set status = 'cancelled', lease_token = null, lease_until = null, updated_at = now()
  where job_id = p_job_id and status in ('pending', 'running');
  return true;
end
$$;

-- Trigger on storage.objects: a new object or a new version registers a job (a moved object counts as new
-- under its new name); a deleted or moved object cancels the running job of its old name. Never raises (an
-- upload must not fail because of the pipeline): reconcile later registers any version left without a job.
create or replace function csv_import.on_object_change()
returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_gone text;
begin
  -- The old name's running job can no longer read its object when it is deleted or moved.
  if tg_op = 'DELETE' or (old.bucket_id, old.name) is distinct from (new.bucket_id, new.name) then
    v_gone := case when tg_op = 'DELETE' then format('The object %s was deleted during the import', old.name)
                   else format('The object %s/%s was moved to %s/%s during the import', old.bucket_id, old.name,
                               new.bucket_id, new.name) end;
    perform csv_import.stop_job(j.id, 'cancelled', v_gone)
    from csv_import.jobs j
    where j.bucket_id = old.bucket_id and j.object_name = old.name
      and j.status in ('registering', 'queued', 'running');
    if tg_op = 'DELETE' then
      return old;
    end if;
  elsif tg_op = 'UPDATE' and new.version is not distinct from old.version then
    return new; -- metadata-only change, same bytes
  end if;
  if csv_import.is_import_candidate(new.bucket_id, new.name) then
    perform csv_import.enqueue_registration(new.bucket_id, new.name, new.id, new.version,
      nullif(new.metadata ->> 'size', '')::bigint, coalesce(new.owner_id, new.owner::text));
  end if;
  return new;
exception when others then
  -- Never fail the upload; csv_import.reconcile registers any object version that has no job.
  raise warning 'csv_import: could not register %/%: %', new.bucket_id, new.name, sqlerrm;
  return coalesce(new, old);
end
$$;

drop trigger if exists csv_import_on_object_change on storage.objects;
create trigger csv_import_on_object_change
  after insert or update or delete on storage.objects
  for each row execute function csv_import.on_object_change();

-- The import profile for an object: the profile of its bucket whose path_pattern (LIKE) matches the name,
-- the longest pattern winning, then the lowest id. Null when none matches.
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

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
