-- Whose rights an import writes with (migration 20261204000900_create_target_security, docs/security.md): csv_import.plan_write_as
-- decides at registration from the profile's write_as, the target's row-level security and the file's
-- uploader; csv_import.load_writer gives the chunk worker the uploader's role and claims, or null for the
-- pipeline's own rights.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(14);

create table pgtap_wa_rls (id int);
alter table pgtap_wa_rls enable row level security;
create table pgtap_wa_open (id int);

-- plan_write_as ----------------------------------------------------------------------------------------------
select is(csv_import.plan_write_as('public.pgtap_wa_rls', null, 'u1'), 'uploader',
  'default: a table with RLS and a signed-in uploader → the uploader''s rights');
select is(csv_import.plan_write_as('public.pgtap_wa_rls', null, null), 'service_role',
  'default: no uploader (service key) → the service role''s rights');
select is(csv_import.plan_write_as('public.pgtap_wa_open', null, 'u1'), 'service_role',
  'default: a table without RLS → the service role''s rights');
select is(csv_import.plan_write_as('public.pgtap_wa_open', 'uploader', 'u1'), 'uploader',
  'write_as uploader: the uploader''s rights, RLS or not');
select is(csv_import.plan_write_as('public.pgtap_wa_rls', 'service_role', 'u1'), 'service_role',
  'write_as service_role: the service role''s rights, whoever uploaded');
select throws_like($$ select csv_import.plan_write_as('public.pgtap_wa_rls', 'uploader', null) $$,
  '%write_as ''uploader''%no signed-in uploader%', 'write_as uploader refuses a file without a signed-in uploader');
select throws_ok($$ insert into csv_import.profiles (name, path_pattern, target_table, write_as)
  values ('pgtap_wa_bad', 'x/%', 'public.pgtap_wa_rls', 'postgres') $$, '23514', null,
  'write_as takes only uploader or service_role');

-- load_writer ------------------------------------------------------------------------------------------------
insert into auth.users (id, email, raw_app_meta_data)
values ('00000000-0000-4000-8000-0000000000a1', 'a1@example.com', '{"provider": "email"}');
insert into csv_import.jobs (bucket_id, object_name, object_version, owner_id, target_table, columns)
values ('csv-uploads', 'pgtap_wa/1.csv', 'v1', '00000000-0000-4000-8000-0000000000a1', 'public.pgtap_wa_rls',
        '{"write_as": "uploader"}'),
       ('csv-uploads', 'pgtap_wa/2.csv', 'v1', '00000000-0000-4000-8000-0000000000a1', 'public.pgtap_wa_rls',
        '{"write_as": "service_role"}'),
       ('csv-uploads', 'pgtap_wa/3.csv', 'v1', '00000000-0000-4000-8000-0000000000a1', 'public.pgtap_wa_rls',
        '{}');
select is(csv_import.load_writer((select id from csv_import.jobs where object_name = 'pgtap_wa/1.csv')),
  '{"role": "authenticated", "claims": {"sub": "00000000-0000-4000-8000-0000000000a1", "aud": "authenticated",
    "role": "authenticated", "email": "a1@example.com", "app_metadata": {"provider": "email"},
    "user_metadata": {}}}'::jsonb,
  'the uploader: role authenticated and the claims Supabase Auth would issue');
select is(csv_import.load_writer((select id from csv_import.jobs where object_name = 'pgtap_wa/2.csv')), null,
  'the service role: null (the pipeline''s own rights)');
select is(csv_import.load_writer((select id from csv_import.jobs where object_name = 'pgtap_wa/3.csv')) ->> 'role',
  'authenticated', 'a job planned before write_as existed follows the default rule');
select is(has_function_privilege('authenticated', 'csv_import.load_writer(bigint)', 'execute'), false,
  'clients cannot call it');

-- check_uploader_privileges ----------------------------------------------------------------------------------
create table pgtap_wa_cols (id int, secret text);
revoke all on pgtap_wa_cols from authenticated; -- public's default privileges grant all
grant select, insert (id) on pgtap_wa_cols to authenticated;
select lives_ok($$ select csv_import.check_uploader_privileges('public.pgtap_wa_cols', '{id}') $$,
  'columns the uploader may write pass');
select throws_ok($$ select csv_import.check_uploader_privileges('public.pgtap_wa_cols', '{id,secret}') $$, '42501',
  'Uploaders may not write column(s) secret of public.pgtap_wa_cols (privileges of the role authenticated): leave them out of the file, grant INSERT on them, or set the profile''s write_as to ''service_role''',
  'a column without INSERT privilege is named');
create schema pgtap_wa_closed;
create table pgtap_wa_closed.t (id int);
select throws_like($$ select csv_import.check_uploader_privileges('pgtap_wa_closed.t', '{id}') $$,
  '%no USAGE on its schema%', 'a schema the uploader cannot use is named');

select * from finish();
rollback;
