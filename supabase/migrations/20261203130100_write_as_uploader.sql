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
-- - No new privilege for clients: csv_import.insert_isolating (20261203130000; runs caller-supplied SQL) stays executable
--   by the service role only; it switches to the uploader's role for each INSERT and back, by itself.
-- - Rejects of 'uploader' batches never carry PostgreSQL's DETAIL (e.g. `Key (email)=(…) already exists` of a
--   row the uploader cannot read); the message (constraint name and reason) stays.

alter table csv_import.profiles
  add column if not exists write_as text check (write_as in ('uploader', 'service_role'));
comment on column csv_import.profiles.write_as is
  'Whose rights imports write with: null = the uploader''s when the target has row-level security and the file '
  'a signed-in uploader, else the service role''s; ''uploader'' = always the uploader''s (files without a '
  'signed-in uploader fail); ''service_role'' = the pipeline''s, bypassing RLS (docs/security.md)';

-- Whose rights a file's import writes with: 'uploader' or 'service_role' (see the invariants above), from the
-- profile's write_as, whether the target (as check_target canonicalised it) has row-level security enabled,
-- and the object's owner (the uploader's auth uid; null for uploads with the service or anon key). Raises
-- 42501 when the profile requires the uploader's rights and the file has no signed-in uploader. Read-only.
-- Callers: the register function (planning), csv_import.load_writer (jobs planned before this migration).
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

-- Only the service role (and the owner) may call the pipeline's functions; see the schema migration.
revoke execute on all functions in schema csv_import from public, anon, authenticated;
grant execute on all functions in schema csv_import to service_role;
