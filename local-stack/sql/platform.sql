-- Local only, never deployed: the parts of the Supabase Postgres image that this project touches, so the
-- project's migrations run unmodified on a plain PostgreSQL (see ../shared/reference/supabase-platform.md
-- §4.1 for the storage columns, §1.10 for roles). With `supabase start` the real image provides all of this
-- instead and this file is not used. Run by local-stack/postgres.sh as the bootstrap superuser supabase_admin.
--
-- Sources (supabase/postgres unless named): migrations/db/migrate.sh (postgres owns the database and the objects
-- the init scripts create as it), init-scripts/00000000000000-initial-schema.sql (roles, publication, extensions
-- schema), 00000000000002-storage-schema.sql, 00000000000003-post-setup.sql (event triggers granting pg_cron and
-- pg_net), migrations/10000000000000_demote-postgres.sql and later grants (20230201083204, 20230224042246,
-- 20230306081037, 20230327032006, 20231013070755, 20240606060239), supabase/postgres#994 (postgres is no longer a
-- member of supabase_storage_admin or supabase_auth_admin), supabase/storage migrations/tenant/0046 and 0049
-- (GRANT ALL … WITH GRANT OPTION on storage.buckets/objects to postgres),
-- ansible/files/postgresql_extension_custom_scripts/{pg_cron,dblink}/after-create.sql.
--
-- Invariants:
-- - Idempotent: safe to run on every `stack up` (create … if not exists / create or replace only).
-- - Same names, columns, signatures, owners and grants as hosted where the pipeline can observe them; secrets in
--   the Vault stand-in are stored in plain text (hosted encrypts them) — acceptable for a loopback-only stack.
-- - Creates neither pg_cron nor pg_net: the project's migrations create them (20261203000000), as they must on
--   `supabase start`/`db reset` and on a hosted project.

-- Roles ------------------------------------------------------------------------------------------------
do $$
declare r text;
begin
  foreach r in array array['anon', 'authenticated', 'service_role'] loop
    if not exists (select 1 from pg_roles where rolname = r) then
      execute format('create role %I nologin noinherit', r);
    end if;
  end loop;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_storage_admin') then
    create role supabase_storage_admin login noinherit createrole noreplication password 'postgres';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit createrole noreplication password 'postgres';
  end if;
  -- migrate.sh: postgres is created as a superuser and owns the database; demote-postgres takes superuser away.
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres superuser login password 'postgres';
  end if;
end $$;
alter database postgres owner to postgres;
-- 20230529180330_alter_api_roles_for_inherit.sql
alter role anon inherit;
alter role authenticated inherit;
alter role service_role inherit bypassrls;
grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role, authenticator to supabase_storage_admin;
alter role supabase_storage_admin set search_path = storage;
-- demote-postgres and the grants after it; not a member of supabase_storage_admin / supabase_auth_admin (#994).
alter role postgres nosuperuser createdb createrole login replication bypassrls;
grant all on database postgres to postgres;
grant anon, authenticated, service_role to postgres;
grant pg_monitor, pg_read_all_data, pg_signal_backend to postgres;
do $$
begin
  if pg_has_role('postgres', 'supabase_storage_admin', 'member') then revoke supabase_storage_admin from postgres; end if;
  if pg_has_role('postgres', 'supabase_auth_admin', 'member') then revoke supabase_auth_admin from postgres; end if;
end $$;
alter role postgres set search_path to "$user", public, extensions;

-- Extensions schema (Supabase installs extensions there; init scripts run as postgres, so postgres owns them) ---
set role postgres;
create schema if not exists extensions;
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
reset role;
grant usage on schema extensions to postgres, anon, authenticated, service_role;
grant usage on schema public to postgres, anon, authenticated, service_role;

-- Auth: the helpers RLS policies use, reading the request's JWT claims as PostgREST/Storage set them --------
create schema if not exists auth authorization supabase_admin;
grant usage on schema auth to postgres, anon, authenticated, service_role;

create table if not exists auth.users (
  id uuid primary key default gen_random_uuid(),
  email text unique,
  raw_app_meta_data jsonb not null default '{}',
  raw_user_meta_data jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create or replace function auth.jwt() returns jsonb
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

create or replace function auth.uid() returns uuid
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create or replace function auth.role() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create or replace function auth.email() returns text
language sql stable
as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

grant execute on function auth.jwt(), auth.uid(), auth.role(), auth.email() to anon, authenticated, service_role;
-- The columns the local auth endpoint (local-stack/auth/api.ts) signs users in with, named as GoTrue's: a bcrypt
-- hash made by pgcrypto's crypt() (GoTrue's own hashes are bcrypt too, $2a$10$), checked with crypt() again.
alter table auth.users add column if not exists encrypted_password text;
alter table auth.users add column if not exists last_sign_in_at timestamptz;
alter table auth.users owner to supabase_auth_admin;
alter function auth.jwt() owner to supabase_auth_admin;
alter function auth.uid() owner to supabase_auth_admin;
alter function auth.role() owner to supabase_auth_admin;
alter function auth.email() owner to supabase_auth_admin;
grant usage on schema auth to supabase_auth_admin;
-- The local auth endpoint hashes and checks passwords with extensions.crypt (GoTrue does it in Go).
grant usage on schema extensions to supabase_auth_admin;
grant all on all tables in schema auth to postgres;
grant all on all routines in schema auth to postgres;

-- Storage: the tables the Storage API writes (hosted columns, §4.1) ------------------------------------------
-- The schema belongs to supabase_admin; Storage's migrations (run as supabase_storage_admin) create the tables.
create schema if not exists storage authorization supabase_admin;
grant usage on schema storage to postgres, anon, authenticated, service_role;
grant all on schema storage to supabase_storage_admin;
set role supabase_storage_admin;

do $$
begin
  if not exists (select 1 from pg_type t join pg_namespace n on n.oid = t.typnamespace
                 where n.nspname = 'storage' and t.typname = 'buckettype') then
    create type storage.buckettype as enum ('STANDARD', 'ANALYTICS', 'VECTOR');
  end if;
end $$;

create table if not exists storage.buckets (
  id text primary key,
  name text not null,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  public boolean default false,
  avif_autodetection boolean default false,
  file_size_limit bigint,
  allowed_mime_types text[],
  type storage.buckettype not null default 'STANDARD'
);
create unique index if not exists bname on storage.buckets using btree (name);

create table if not exists storage.objects (
  id uuid primary key default gen_random_uuid(),
  bucket_id text references storage.buckets (id),
  name text,
  owner uuid,
  owner_id text,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  last_accessed_at timestamptz default now(),
  metadata jsonb,
  path_tokens text[] generated always as (string_to_array(name, '/')) stored,
  version text,
  user_metadata jsonb
);
create unique index if not exists bucketid_objname on storage.objects using btree (bucket_id, name);
create index if not exists name_prefix_search on storage.objects using btree (name text_pattern_ops);

alter table storage.buckets enable row level security;
alter table storage.objects enable row level security;
-- supabase/storage migrations/tenant/0046 and 0049.
grant all on storage.buckets, storage.objects to anon, authenticated, service_role;
grant all on storage.buckets, storage.objects to postgres with grant option;

create or replace function storage.foldername(name text) returns text[]
language plpgsql immutable
as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1 : array_length(_parts, 1) - 1];
end
$$;

create or replace function storage.filename(name text) returns text
language plpgsql immutable
as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create or replace function storage.extension(name text) returns text
language plpgsql immutable
as $$
declare _parts text[]; _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

create or replace function storage.update_updated_at_column() returns trigger
language plpgsql
as $$
begin
  new.updated_at = now();
  return new;
end
$$;

drop trigger if exists update_objects_updated_at on storage.objects;
create trigger update_objects_updated_at before update on storage.objects
  for each row execute function storage.update_updated_at_column();

-- Hosted blocks direct DELETEs on storage tables unless the Storage API itself sets this flag (§4.1).
create or replace function storage.protect_delete() returns trigger
language plpgsql
as $$
begin
  if coalesce(current_setting('storage.allow_delete_query', true), 'false') <> 'true' then
    raise exception 'Direct deletion from storage tables is not allowed. Use the Storage API instead.'
      using errcode = '42501', hint = 'This prevents accidental data loss from orphaned objects.';
  end if;
  return null;
end
$$;

drop trigger if exists protect_objects_delete on storage.objects;
create trigger protect_objects_delete before delete on storage.objects
  for each statement execute function storage.protect_delete();
drop trigger if exists protect_buckets_delete on storage.buckets;
create trigger protect_buckets_delete before delete on storage.buckets
  for each statement execute function storage.protect_delete();
reset role;

-- Vault: the secret lookup that cron jobs and triggers use (vault.create_secret / vault.decrypted_secrets) ---
-- supabase_vault is created by supabase_admin at image build (20221207154255_create_pgsodium_and_vault.sql), so it
-- owns the schema and objects; postgres gets the grants supabase_vault's script gives it (GRANT ALL ON SCHEMA vault
-- and on vault.secrets TO postgres, supabase/vault sql/supabase_vault--0.1.7.sql).
create schema if not exists vault authorization supabase_admin;

create table if not exists vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
create unique index if not exists secrets_name_idx on vault.secrets (name) where name is not null;

create or replace view vault.decrypted_secrets as
  select id, name, description, secret, secret as decrypted_secret, key_id, nonce, created_at, updated_at
  from vault.secrets;

create or replace function vault.create_secret(
  new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null
) returns uuid
language sql
set search_path = ''
as $$
  insert into vault.secrets (secret, name, description, key_id)
  values (new_secret, new_name, coalesce(new_description, ''), new_key_id)
  returning id
$$;

create or replace function vault.update_secret(
  secret_id uuid, new_secret text default null, new_name text default null,
  new_description text default null, new_key_id uuid default null
) returns void
language sql
set search_path = ''
as $$
  update vault.secrets set
    secret = coalesce(new_secret, secret),
    name = coalesce(new_name, name),
    description = coalesce(new_description, description),
    key_id = coalesce(new_key_id, key_id),
    updated_at = now()
  where id = secret_id
$$;

revoke all on schema vault from public, anon, authenticated;
revoke all on all tables in schema vault from public, anon, authenticated;
revoke all on all functions in schema vault from public, anon, authenticated;
grant usage on schema vault to service_role;
grant select on vault.decrypted_secrets to service_role;
grant all on schema vault to postgres;
grant all on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid)
  to postgres with grant option;

-- Realtime: hosted projects have this publication; apps add tables to it for Postgres Changes -------------
-- (created by postgres in 00000000000000-initial-schema.sql, so postgres owns it)
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end $$;
alter publication supabase_realtime owner to postgres;

-- Default privileges that hosted sets for objects created by postgres in public -------------------------
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;
-- 20230224042246_grant_extensions_perms_for_postgres.sql
alter default privileges for role supabase_admin in schema extensions grant all on tables to postgres with grant option;
alter default privileges for role supabase_admin in schema extensions grant all on routines to postgres with grant option;
alter default privileges for role supabase_admin in schema extensions grant all on sequences to postgres with grant option;

-- Privileged extensions' after-create grants ---------------------------------------------------------------
-- On hosted, supautils runs CREATE EXTENSION of a privileged extension as supabase_admin and then its
-- after-create script; the image also has event triggers for pg_cron and pg_net (00000000000003-post-setup.sql,
-- 20231020085357_revoke_writes_on_cron_job_from_postgres.sql). Locally the extensions are `trusted`
-- (local-stack/postgres.sh) and these event triggers apply the same grants; SECURITY DEFINER (owned by
-- supabase_admin) stands in for supautils switching to supabase_admin around the whole statement.
-- supautils creates a privileged extension as supabase_admin, so supabase_admin owns the extension itself (pg_cron
-- inserts into cron.job as the extension's owner: cron.schedule fails if postgres owns it, as postgres may not write
-- cron.job). PostgreSQL makes the caller the owner of a trusted extension; this hands it to supabase_admin, as
-- supautils would have created it (pg_extension.extowner and its owner dependency in pg_shdepend).
create or replace function extensions.local_privileged_extension_owner() returns event_trigger
language plpgsql security definer
set search_path = ''
as $$
declare v_ext oid;
begin
  for v_ext in select ext.oid from pg_catalog.pg_event_trigger_ddl_commands() as ev
               join pg_catalog.pg_extension as ext on ev.objid = ext.oid
               where ext.extowner <> 'supabase_admin'::regrole
                 and ext.extname in ('pg_cron', 'pg_net', 'dblink', 'pgtap', 'plpgsql_check') loop
    update pg_catalog.pg_extension set extowner = 'supabase_admin'::regrole where oid = v_ext;
    update pg_catalog.pg_shdepend set refobjid = 'supabase_admin'::regrole
    where classid = 'pg_catalog.pg_extension'::regclass and objid = v_ext and deptype = 'o';
  end loop;
end
$$;
drop event trigger if exists issue_local_privileged_extension_owner;
create event trigger issue_local_privileged_extension_owner on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.local_privileged_extension_owner();

create or replace function extensions.grant_pg_cron_access() returns event_trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if exists (select from pg_catalog.pg_event_trigger_ddl_commands() as ev
             join pg_catalog.pg_extension as ext on ev.objid = ext.oid where ext.extname = 'pg_cron') then
    -- ansible/files/postgresql_extension_custom_scripts/pg_cron/after-create.sql
    grant usage on schema cron to postgres with grant option;
    grant all on all functions in schema cron to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all on sequences to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all on tables to postgres with grant option;
    alter default privileges for user supabase_admin in schema cron grant all on functions to postgres with grant option;
    grant all privileges on all tables in schema cron to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
  end if;
end
$$;
drop event trigger if exists issue_pg_cron_access;
create event trigger issue_pg_cron_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_cron_access();

create or replace function extensions.grant_pg_net_access() returns event_trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if exists (select 1 from pg_catalog.pg_event_trigger_ddl_commands() as ev
             join pg_catalog.pg_extension as ext on ev.objid = ext.oid where ext.extname = 'pg_net') then
    -- 00000000000003-post-setup.sql, grant_pg_net_access
    if not exists (select 1 from pg_catalog.pg_roles where rolname = 'supabase_functions_admin') then
      create user supabase_functions_admin noinherit createrole login noreplication;
    end if;
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
    alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;
    alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) security definer;
    alter function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) set search_path = net;
    alter function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) set search_path = net;
    revoke all on function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer) from public;
    revoke all on function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer) from public;
    grant execute on function net.http_get(url text, params jsonb, headers jsonb, timeout_milliseconds integer)
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
    grant execute on function net.http_post(url text, body jsonb, params jsonb, headers jsonb, timeout_milliseconds integer)
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
end
$$;
drop event trigger if exists issue_pg_net_access;
create event trigger issue_pg_net_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_pg_net_access();

-- ansible/files/postgresql_extension_custom_scripts/dblink/after-create.sql: only supabase_admin keeps
-- dblink_connect_u (the variant without dblink's password check).
create or replace function extensions.grant_dblink_access() returns event_trigger
language plpgsql security definer
set search_path = ''
as $$
declare r record;
begin
  if exists (select 1 from pg_catalog.pg_event_trigger_ddl_commands() as ev
             join pg_catalog.pg_extension as ext on ev.objid = ext.oid where ext.extname = 'dblink') then
    for r in (select p.oid, (pg_catalog.aclexplode(p.proacl)).grantee from pg_catalog.pg_proc p
              where p.proname = 'dblink_connect_u') loop
      continue when r.grantee = 'supabase_admin'::regrole;
      execute pg_catalog.format('revoke all on function %s(%s) from %s', r.oid::regproc,
        pg_catalog.pg_get_function_identity_arguments(r.oid),
        case when r.grantee = 0 then 'public' else r.grantee::regrole::text end);
    end loop;
  end if;
end
$$;
drop event trigger if exists issue_dblink_access;
create event trigger issue_dblink_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_dblink_access();
revoke all on function extensions.grant_pg_cron_access(), extensions.grant_pg_net_access(),
  extensions.grant_dblink_access(), extensions.local_privileged_extension_owner() from public;


-- supautils.policy_grants, locally ----------------------------------------------------------------------------
-- Hosted lets postgres create, alter and drop policies on some platform tables it does not own
-- (supautils.policy_grants in supabase/postgres ansible/files/postgresql_config/supautils.conf.j2: auth.users,
-- storage.buckets, storage.objects, …; supabase/postgres#993, #1822). Without supautils: for the length of one
-- CREATE/ALTER/DROP POLICY statement run as postgres, postgres is made a member of the owners of those tables
-- (granted at ddl_command_start, revoked at ddl_command_end; both inside the statement's transaction, so a failed
-- statement rolls the grant back too), and at the end the statement is refused unless its table is one
-- policy_grants lists or one postgres may manage anyway — the same outcome as on hosted. The event trigger
-- functions run as the caller (not SECURITY DEFINER), so a CREATE POLICY inside an extension's script, which runs as
-- the bootstrap superuser, is left alone; only the membership switch is SECURITY DEFINER (callable by postgres: a
-- test that called it directly would escape the emulation).
create or replace function extensions.local_policy_grants_switch(p_on boolean) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  if p_on then
    grant supabase_storage_admin, supabase_auth_admin to postgres;
  else
    revoke supabase_storage_admin, supabase_auth_admin from postgres;
  end if;
  perform pg_catalog.set_config('local_stack.policy_grants', case when p_on then 'on' else 'off' end, true);
end
$$;
revoke all on function extensions.local_policy_grants_switch(boolean) from public;
grant execute on function extensions.local_policy_grants_switch(boolean) to postgres;

create or replace function extensions.local_policy_grants_listed(p_table text) returns boolean
language sql immutable
set search_path = ''
as $$ select p_table in ('auth.users', 'storage.buckets', 'storage.migrations', 'storage.objects') $$;

create or replace function extensions.local_policy_grants_start() returns event_trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'postgres' then
    perform extensions.local_policy_grants_switch(true);
  end if;
end
$$;
create or replace function extensions.local_policy_grants_end() returns event_trigger
language plpgsql
set search_path = ''
as $$
declare v_table regclass;
begin
  if pg_catalog.current_setting('local_stack.policy_grants', true) is distinct from 'on' then
    return;
  end if;
  perform extensions.local_policy_grants_switch(false);
  for v_table in
    select p.polrelid::regclass from pg_catalog.pg_event_trigger_ddl_commands() c
    join pg_catalog.pg_policy p on p.oid = c.objid where c.classid = 'pg_catalog.pg_policy'::regclass loop
    if not extensions.local_policy_grants_listed(v_table::text)
       and not pg_catalog.pg_has_role((select relowner from pg_catalog.pg_class where oid = v_table), 'usage') then
      raise exception 'must be owner of table %', v_table using errcode = '42501';
    end if;
  end loop;
end
$$;
create or replace function extensions.local_policy_grants_drop() returns event_trigger
language plpgsql
set search_path = ''
as $$
declare v_table text;
begin
  if pg_catalog.current_setting('local_stack.policy_grants', true) is distinct from 'on' then
    return;
  end if;
  for v_table in select pg_catalog.split_part(o.object_identity, ' on ', 2)
                 from pg_catalog.pg_event_trigger_dropped_objects() o where o.object_type = 'policy' and o.original loop
    -- Not one of policy_grants' tables: allowed only if postgres manages it without the temporary membership
    -- (still in force here: sql_drop comes before ddl_command_end).
    if not extensions.local_policy_grants_listed(v_table)
       and not exists (select 1 from pg_catalog.pg_class c
                       where c.oid = pg_catalog.to_regclass(v_table)
                         and c.relowner not in ('supabase_storage_admin'::regrole, 'supabase_auth_admin'::regrole)
                         and pg_catalog.pg_has_role('postgres', c.relowner, 'usage')) then
      raise exception 'must be owner of relation %', v_table using errcode = '42501';
    end if;
  end loop;
end
$$;
drop event trigger if exists local_policy_grants_start;
create event trigger local_policy_grants_start on ddl_command_start
  when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') execute function extensions.local_policy_grants_start();
drop event trigger if exists local_policy_grants_end;
create event trigger local_policy_grants_end on ddl_command_end
  when tag in ('CREATE POLICY', 'ALTER POLICY', 'DROP POLICY') execute function extensions.local_policy_grants_end();
drop event trigger if exists local_policy_grants_drop;
create event trigger local_policy_grants_drop on sql_drop
  when tag in ('DROP POLICY') execute function extensions.local_policy_grants_drop();

-- supautils.privileged_role_allowed_configs, locally: settings postgres may change although they are
-- superuser-only in PostgreSQL (supautils.conf.j2; the core ones of its list). PostgreSQL 15's GRANT SET ON
-- PARAMETER gives exactly that.
grant set on parameter session_replication_role, log_lock_waits, log_min_messages, track_io_timing to postgres;
