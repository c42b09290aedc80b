-- Security: row-level security on the pipeline tables and who may execute the pipeline's functions.
-- Owners of an uploaded object read their jobs, chunks and rejects; nobody else does; clients write nothing and
-- call no pipeline function; the service role may do everything.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(35);

\ir ../_fixtures/jobs.psql
grant usage on schema pgtap_csv to anon, authenticated, service_role;
grant select on all tables in schema pgtap_csv to anon, authenticated, service_role;

-- Alice and Bob each own a job with chunks and a reject; one job has no owner.
do $$ begin
  perform pgtap_csv.plan_job('ALICE', 300, 0, 100);
  perform pgtap_csv.plan_job('BOB', 300, 0, 100);
  perform pgtap_csv.plan_job('NOBODY', 300, 0, 100);
  update csv_import.jobs set owner_id = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa' where id = pgtap_csv.job('ALICE');
  update csv_import.jobs set owner_id = 'bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb' where id = pgtap_csv.job('BOB');
  insert into csv_import.rejects (job_id, line_number, reason, raw_record)
  values (pgtap_csv.job('ALICE'), 2, 'Alice''s reject', 'a'), (pgtap_csv.job('BOB'), 3, 'Bob''s reject', 'b');
  insert into csv_import.profiles (name, bucket_id, path_pattern, target_table)
  values ('pgtap-security', 'pgtap-security', '%', 'public.t');
end $$;

-- Alice ----------------------------------------------------------------------------------------------------------------
set local role authenticated;
set local "request.jwt.claims" = '{"sub": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "role": "authenticated"}';
select results_eq($$ select id from csv_import.jobs $$, $$ select pgtap_csv.job('ALICE') $$,
  'an authenticated user sees only the jobs of objects she owns');
select results_eq($$ select distinct job_id from csv_import.chunks $$, $$ select pgtap_csv.job('ALICE') $$,
  '… only their chunks');
select is((select count(*)::int from csv_import.chunks), 5, '… all of them');
select results_eq($$ select reason from csv_import.rejects $$, $$ values ('Alice''s reject') $$, '… only their rejects');
select results_eq($$ select job_id from csv_import.job_progress $$, $$ select pgtap_csv.job('ALICE') $$,
  '… and only their progress');
select ok((select count(*) from csv_import.profiles where name = 'pgtap-security') = 1, 'profiles are readable');

select throws_ok($$ insert into csv_import.jobs (bucket_id, object_name, object_version) values ('b', 'o', 'v') $$,
  '42501', 'permission denied for table jobs', 'she cannot insert jobs');
select throws_ok($$ update csv_import.jobs set status = 'succeeded' $$, '42501', 'permission denied for table jobs',
  '… nor update them');
select throws_ok($$ delete from csv_import.jobs $$, '42501', 'permission denied for table jobs', '… nor delete them');
select throws_ok($$ update csv_import.chunks set attempts = 0 $$, '42501', 'permission denied for table chunks',
  '… nor update chunks');
select throws_ok($$ insert into csv_import.rejects (job_id, line_number, reason, raw_record) values (1, 1, 'r', 'x') $$,
  '42501', 'permission denied for table rejects', '… nor insert rejects');
select throws_ok($$ update csv_import.profiles set priority = 100 $$, '42501', 'permission denied for table profiles',
  '… nor change profiles');

select throws_ok($$ select * from csv_import.claim_chunks() $$, '42501', 'permission denied for function claim_chunks',
  'she cannot claim chunks');
select throws_ok(format($$ select csv_import.commit_batch(%s, null, 0, 0, 0, 0, 0, 0, 0, '[]', true) $$,
    pgtap_csv.chunk('ALICE', 'load', 0)),
  '42501', 'permission denied for function commit_batch', '… nor commit batches');
select throws_ok(format($$ select csv_import.begin_batch(%s, null, 0) $$, pgtap_csv.chunk('ALICE', 'load', 0)),
  '42501', 'permission denied for function begin_batch', '… nor begin them');
select throws_ok(format($$ select * from csv_import.register_job(%s, '{}') $$, pgtap_csv.job('ALICE')),
  '42501', 'permission denied for function register_job', '… nor register jobs');
select throws_ok(format($$ select csv_import.stop_job(%s, 'cancelled', 'mine') $$, pgtap_csv.job('BOB')),
  '42501', 'permission denied for function stop_job', '… nor stop jobs (not even her own)');
select throws_ok($$ select csv_import.reconcile() $$, '42501', 'permission denied for function reconcile',
  '… nor run the reconciler');
select throws_ok($$ select * from csv_import.function_endpoint('register') $$, '42501',
  'permission denied for function function_endpoint', '… nor read the pipeline''s endpoint and service key from Vault');
select throws_ok($$ select csv_import.fail_chunk(-1, null, 'x', true) $$,
  '42501', 'permission denied for function fail_chunk', '… nor fail chunks');

-- Bob, and a request without a user --------------------------------------------------------------------------------------------
set local "request.jwt.claims" = '{"sub": "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb", "role": "authenticated"}';
select results_eq($$ select id from csv_import.jobs $$, $$ select pgtap_csv.job('BOB') $$, 'Bob sees only his job');
select results_eq($$ select reason from csv_import.rejects $$, $$ values ('Bob''s reject') $$, '… and his rejects');
set local "request.jwt.claims" = '';
select is_empty($$ select id from csv_import.jobs $$, 'without a user id nothing is visible');

-- anon ------------------------------------------------------------------------------------------------------------------------
set local role anon;
set local "request.jwt.claims" = '{"role": "anon"}';
select throws_ok($$ select * from csv_import.jobs $$, '42501', 'permission denied for schema csv_import',
  'anon cannot even see the schema');
select throws_ok($$ select * from csv_import.job_progress $$, '42501', 'permission denied for schema csv_import',
  '… nor the progress view');
select throws_ok($$ select csv_import.reconcile() $$, '42501', 'permission denied for schema csv_import',
  '… nor call its functions');

-- Execute privileges, for every function ------------------------------------------------------------------------------------
reset role;
select is_empty(
  $$ select p.oid::regprocedure from pg_proc p where p.pronamespace = 'csv_import'::regnamespace
     and (has_function_privilege('authenticated', p.oid, 'execute') or has_function_privilege('anon', p.oid, 'execute')) $$,
  'no csv_import function is executable by authenticated or anon');
select is_empty(
  $$ select p.oid::regprocedure from pg_proc p where p.pronamespace = 'csv_import'::regnamespace
     and not has_function_privilege('service_role', p.oid, 'execute') $$,
  'every csv_import function is executable by service_role');

-- The service role ------------------------------------------------------------------------------------------------------------
set local role service_role;
set local "request.jwt.claims" = '{"role": "service_role"}';
select is((select count(*)::int from csv_import.jobs where id in (pgtap_csv.job('ALICE'), pgtap_csv.job('BOB'), pgtap_csv.job('NOBODY'))),
  3, 'the service role sees every job');
select lives_ok($$ select * from csv_import.claim_chunks(0) $$, 'the service role may claim');
select lives_ok(format($$ select csv_import.stop_job(%s, 'cancelled', 'by the service role') $$, pgtap_csv.job('NOBODY')),
  '… stop jobs');
select lives_ok($$ select csv_import.reconcile() $$, '… run the reconciler');
select lives_ok(format($$ update csv_import.jobs set priority = 7 where id = %s $$, pgtap_csv.job('BOB')),
  '… and write the tables');

-- Uploads by a user still register (the trigger runs as its owner, whatever the uploader may execute) -------------------------
reset role;
insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict (id) do nothing;
create policy pgtap_uploads on storage.objects for insert to authenticated with check (bucket_id = 'csv-uploads');
set local role authenticated;
set local "request.jwt.claims" = '{"sub": "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa", "role": "authenticated"}';
select lives_ok(
  $$ insert into storage.objects (bucket_id, name, owner_id, version, metadata)
     values ('csv-uploads', 'pgtap/security/upload.csv', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa', 'v1', '{"size": 10}') $$,
  'an authenticated upload succeeds');
select results_eq(
  $$ select status::text, owner_id from csv_import.jobs where object_name = 'pgtap/security/upload.csv' $$,
  $$ values ('registering', 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa') $$,
  '… registers a job, which the uploader can see');
reset role;

select * from finish();
rollback;
