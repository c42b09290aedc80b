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
--
-- Imports write with the uploader's rights (issue 11, item 1; docs/security.md). Before, every batch wrote as
-- the pipeline's database role (postgres, which bypasses row-level security): a user could plant rows owned by
-- someone else by putting user_id in the file, `default auth.uid()` was NULL (so owner-scoped tables refused
-- every row without an owner column), and duplicate-key rejects showed values of rows the uploader cannot read.
--
-- Invariants:
-- - Whose rights a job writes with is decided once, at registration (csv_import.plan_write_as), and stored in
--   the job's plan (columns.write_as): 'uploader' or 'service_role'.
--   profile write_as null (default): 'uploader' when the target has row-level security enabled and the file
--   has an owner (a signed-in uploader), else 'service_role'; 'uploader': always the uploader, and a file
--   without a signed-in uploader fails at registration; 'service_role': the pipeline's own rights.
-- - 'uploader' batches run each INSERT as the role `authenticated` with the uploader's JWT claims
--   (request.jwt.claims, request.jwt.claim.sub/role, as PostgREST and Storage set them), so policies,
--   auth.uid() defaults and column grants apply exactly as for the same user's INSERT through the API. COPY FROM
--   cannot write a table with RLS for a role subject to it, so such batches are staged (COPY into a temp table
--   as the pipeline) and inserted with INSERT … SELECT as the uploader, refusals isolated per row.
-- - No new privilege for clients: csv_import.insert_isolating (20261204000700; runs caller-supplied SQL) stays executable
--   by the service role only; it switches to the uploader's role for each INSERT and back, by itself.
-- - Rejects of 'uploader' batches never carry PostgreSQL's DETAIL (e.g. `Key (email)=(…) already exists` of a
--   row the uploader cannot read); the message (constraint name and reason) stays.

-- Schemas no import may write: PostgreSQL's, Supabase's platform schemas, and the pipeline's own state.
-- A constant: immutable, no locks. Callers: is_protected_schema.
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
-- Immutable, no locks. Callers: check_target, _check_profile_target.
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
-- Locks: none.
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
-- Locks: none beyond the profile row being written; a check only. Caller: the trigger tg_profiles__check_target.
create or replace function csv_import._check_profile_target()
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

create trigger tg_profiles__check_target
  before insert or update of target_table on csv_import.profiles
  for each row execute function csv_import._check_profile_target();

-- Whose rights a file's import writes with: 'uploader' or 'service_role' (see the invariants above), from the
-- profile's write_as, whether the target (as check_target canonicalised it) has row-level security enabled,
-- and the object's owner (the uploader's auth uid; null for uploads with the service or anon key). Raises
-- 42501 when the profile requires the uploader's rights and the file has no signed-in uploader. Read-only.
-- Callers: the register function (planning), csv_import.load_writer (jobs whose plan has no write_as).
-- Locks: none.
create or replace function csv_import.plan_write_as(p_table text, p_write_as text, p_owner_id text)
returns text
language plpgsql stable
set search_path = ''
as $$
begin
  if p_write_as = 'service_role' then
    return 'service_role';
  end if;
  if p_write_as = 'uploader' then
    if nullif(p_owner_id, '') is null then
      raise exception 'The profile writes with the uploader''s rights (write_as ''uploader''), but this file has no signed-in uploader (it was uploaded with the service or anon key): upload it with a user''s session, or set the profile''s write_as to ''service_role'''
        using errcode = '42501';
    end if;
    return 'uploader';
  end if;
  if nullif(p_owner_id, '') is not null and coalesce((
       select c.relrowsecurity from pg_catalog.pg_class c where c.oid = pg_catalog.to_regclass(p_table)), false) then
    return 'uploader';
  end if;
  return 'service_role';
end
$$;

-- Whom a job's batches write as: null for the pipeline's own rights ('service_role'), else
-- {"role": "authenticated", "claims": {...}} with the uploader's JWT claims as Supabase Auth issues them (sub,
-- role, aud, and email, phone, app_metadata, user_metadata, is_anonymous from auth.users when the user is
-- there; custom claims an access token hook would add are not known here). Read-only. Caller: the chunk
-- worker, once per load.
-- Locks: none.
create or replace function csv_import.load_writer(p_job_id bigint)
returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_job csv_import.jobs;
  v_write_as text;
  v_user jsonb;
begin
  select * into v_job from csv_import.jobs where id = p_job_id;
  if not found then
    raise exception 'Job % does not exist', p_job_id using errcode = 'P0002';
  end if;
  -- Jobs planned before write_as existed: the default rule.
  v_write_as := coalesce(v_job.columns ->> 'write_as',
                         csv_import.plan_write_as(v_job.target_table, null, v_job.owner_id));
  if v_write_as <> 'uploader' then
    return null;
  end if;
  select pg_catalog.to_jsonb(u) into v_user from auth.users u where u.id::text = v_job.owner_id;
  return pg_catalog.jsonb_build_object('role', 'authenticated', 'claims', pg_catalog.jsonb_strip_nulls(
    pg_catalog.jsonb_build_object(
      'sub', v_job.owner_id, 'role', 'authenticated', 'aud', 'authenticated',
      'email', v_user ->> 'email', 'phone', nullif(v_user ->> 'phone', ''),
      'app_metadata', v_user -> 'raw_app_meta_data', 'user_metadata', v_user -> 'raw_user_meta_data',
      'is_anonymous', v_user -> 'is_anonymous')));
end
$$;

-- Raises 42501 naming the columns of p_columns that the role authenticated may not INSERT into p_table
-- (table or column privileges, and USAGE on its schema); returns nothing when it may write them all.
-- Read-only. Caller: the register function, for jobs that write with the uploader's rights.
-- Locks: none.
create or replace function csv_import.check_uploader_privileges(p_table text, p_columns text[])
returns void
language plpgsql stable
set search_path = ''
as $$
declare
  v_oid oid := pg_catalog.to_regclass(p_table);
  v_denied text;
begin
  if v_oid is null then
    raise exception 'Target table % does not exist', p_table using errcode = '42P01';
  end if;
  if not pg_catalog.has_schema_privilege('authenticated',
       (select c.relnamespace from pg_catalog.pg_class c where c.oid = v_oid), 'USAGE') then
    raise exception 'Uploaders may not write %: the role authenticated has no USAGE on its schema; grant it, or set the profile''s write_as to ''service_role''',
      p_table using errcode = '42501';
  end if;
  select pg_catalog.string_agg(pg_catalog.quote_ident(col), ', ' order by ord) into v_denied
  from unnest(p_columns) with ordinality as u(col, ord)
  where not pg_catalog.has_column_privilege('authenticated', v_oid, col, 'INSERT');
  if v_denied is not null then
    raise exception 'Uploaders may not write column(s) % of % (privileges of the role authenticated): leave them out of the file, grant INSERT on them, or set the profile''s write_as to ''service_role''',
      v_denied, p_table using errcode = '42501';
  end if;
end
$$;

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
