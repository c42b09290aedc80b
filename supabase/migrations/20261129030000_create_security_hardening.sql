-- Security hardening: which tables an import may write, per-profile limits, a narrower credential for the
-- database's calls of the pipeline's functions, and a clear signal when a job's stored rejects are capped.
--
-- Invariants:
-- - An import writes only ordinary or partitioned tables outside PostgreSQL's and Supabase's own schemas and
--   outside csv_import (csv_import.check_target, called by the register function before planning; profiles
--   naming such a schema are refused when written).
-- - The plan stores the target as check_target's canonical, quoted `schema.table`, so the loader writes exactly
--   the table that was described (an unquoted mixed-case name resolves as SQL folds it, once).
-- - A profile may lower MAX_FILE_BYTES and MAX_STORED_REJECTS, never raise them.
-- - When Vault holds csv_import_internal_secret, the database calls the functions with that secret only
--   (x-pipeline-secret), never with the service role key: pg_net keeps request headers in
--   net.http_request_queue until sent, where (on hosted) every role that can use pg_net may read them.

alter table csv_import.profiles
  add column if not exists max_file_bytes bigint check (max_file_bytes is null or max_file_bytes >= 1),
  add column if not exists max_stored_rejects bigint check (max_stored_rejects is null or max_stored_rejects >= 0);
comment on column csv_import.profiles.max_file_bytes is 'Largest file accepted for this profile (at most MAX_FILE_BYTES)';
comment on column csv_import.profiles.max_stored_rejects is
  'Rejects stored per job for this profile (at most MAX_STORED_REJECTS; all are counted)';

-- Schemas no import may write: PostgreSQL's, Supabase's platform schemas, and the pipeline's own state.
create or replace function csv_import.protected_schemas()
returns text[]
language sql immutable
set search_path = ''
as $$
  select array['pg_catalog', 'information_schema', 'pg_toast', 'csv_import', 'auth', 'storage', 'vault', 'net',
               'cron', 'extensions', 'realtime', '_realtime', 'supabase_functions', 'supabase_migrations',
               'graphql', 'graphql_public', 'pgsodium', 'pgsodium_masks', 'pgbouncer', '_analytics', 'pgtle']
$$;

-- Whether a schema is one no import may write (pg_temp_N, pg_toast_temp_N and other pg_* schemas included).
create or replace function csv_import.is_protected_schema(p_schema text)
returns boolean
language sql immutable
set search_path = ''
as $$
  select p_schema = any (csv_import.protected_schemas()) or p_schema like 'pg\_%'
$$;

-- Resolves an import's target table (a name as SQL writes it: public.orders, "My Schema"."My Table") and
-- returns it canonical and quoted (format %I.%I). Refuses, each with its own message: a malformed name (42602),
-- a table that does not exist (42P01; names must be schema-qualified), a table in a protected schema (42501),
-- and anything that is not an ordinary or partitioned table (42809). Read-only. Caller: register.
create or replace function csv_import.check_target(p_table text)
returns text
language plpgsql stable
set search_path = ''
as $$
declare
  v_oid oid;
  v_schema text;
  v_name text;
  v_kind "char";
begin
  begin
    v_oid := pg_catalog.to_regclass(p_table);
  exception when invalid_name or syntax_error or invalid_text_representation then
    raise exception 'Target table % is not a valid table name: write schema.table, quoting names that need it (e.g. public."My Table")',
      coalesce(pg_catalog.quote_literal(p_table), 'null') using errcode = '42602';
  end;
  if v_oid is null then
    raise exception 'Target table % does not exist%', p_table,
      case when p_table not like '%.%' then ' (write it schema-qualified, e.g. public.' || p_table || ')' else '' end
      using errcode = '42P01';
  end if;
  select n.nspname, c.relname, c.relkind into v_schema, v_name, v_kind
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  where c.oid = v_oid;
  if csv_import.is_protected_schema(v_schema) then
    raise exception 'Target table %.% is in schema %, which imports may not write (system, Supabase platform and csv_import schemas are protected)',
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_name), pg_catalog.quote_ident(v_schema)
      using errcode = '42501';
  end if;
  if v_kind not in ('r', 'p') then
    raise exception 'Target %.% is not a table (a %); imports write ordinary or partitioned tables only',
      pg_catalog.quote_ident(v_schema), pg_catalog.quote_ident(v_name),
      case v_kind when 'v' then 'view' when 'm' then 'materialized view' when 'f' then 'foreign table'
                  when 'S' then 'sequence' when 'i' then 'index' else 'relation of kind ' || v_kind::text end
      using errcode = '42809';
  end if;
  return pg_catalog.format('%I.%I', v_schema, v_name);
end
$$;

-- Profiles may not name a protected schema (checked when written; whether the table exists is checked when a
-- file registers, so a profile may be created before its table).
create or replace function csv_import.check_profile_target()
returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_parts text[];
begin
  begin
    v_parts := pg_catalog.parse_ident(new.target_table);
  exception when others then
    raise exception 'Profile %: target_table % is not a valid table name: write schema.table, quoting names that need it (e.g. public."My Table")',
      new.name, pg_catalog.quote_literal(new.target_table) using errcode = '42602';
  end;
  if pg_catalog.array_length(v_parts, 1) > 2 then
    raise exception 'Profile %: target_table % must be schema.table', new.name, new.target_table
      using errcode = '42602';
  end if;
  if pg_catalog.array_length(v_parts, 1) = 2 and csv_import.is_protected_schema(v_parts[1]) then
    raise exception 'Profile %: target_table % is in schema %, which imports may not write (system, Supabase platform and csv_import schemas are protected)',
      new.name, new.target_table, pg_catalog.quote_ident(v_parts[1]) using errcode = '42501';
  end if;
  return new;
end
$$;

drop trigger if exists check_profile_target on csv_import.profiles;
create trigger check_profile_target
  before insert or update of target_table on csv_import.profiles
  for each row execute function csv_import.check_profile_target();

-- The endpoint and headers the database uses to call a pipeline function (see the registration migration).
-- With csv_import_internal_secret in Vault, only that secret is sent (header x-pipeline-secret; the functions
-- are deployed with verify_jwt = false and accept it), so a queued pg_net request never carries the service
-- role key. Without it, the key in csv_import_service_key is sent as before. Null when Vault lacks the URL or
-- both credentials.
create or replace function csv_import.function_endpoint(function_name text, out url text, out headers jsonb)
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
  url := rtrim(v_api_url, '/') || '/functions/v1/' || function_name;
  if v_internal is not null then
    headers := jsonb_build_object('Content-Type', 'application/json', 'x-pipeline-secret', v_internal);
  else
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key,
                                  'apikey', v_key);
  end if;
end
$$;

-- Progress per job, readable by owners (security_invoker: RLS applies). Columns appended here:
-- rejects_stored and rejects_note, which says when only part of the rejects were stored.
create or replace view csv_import.job_progress with (security_invoker = true) as
select j.id as job_id, j.status, j.bucket_id, j.object_name, j.object_size, j.target_table, j.chunk_count,
  j.error, j.created_at, j.started_at, j.first_row_at, j.finished_at, j.rejects_object, j.rejects_status,
  p.chunks_done, p.chunks_running, p.chunks_dead, p.rows_parsed, p.rows_loaded, p.rows_rejected, p.rows_skipped,
  p.bytes_done,
  case when coalesce(j.object_size - j.data_start, 0) <= 0 then
         case when j.status in ('succeeded', 'succeeded_with_rejects') then 100.0 else 0.0 end
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
grant select on csv_import.job_progress to authenticated, service_role;

-- Only the service role may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
