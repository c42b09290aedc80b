-- The chunk count guard (issue 11, item 6): csv_import.jobs refuses more than 100,000 chunks per job, so a plan
-- with a tiny chunk size on a large file fails before a single chunk row is written; plans within the bound
-- are untouched.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(5);

create schema pgtap_target;
create table pgtap_target.items (id bigint primary key, name text);
\ir ../_fixtures/jobs.psql

insert into csv_import.jobs (bucket_id, object_name, object_version, object_size)
values ('csv-uploads', 'pgtap/guard-' || gen_random_uuid() || '.csv', 'v1', 100001);

select throws_ok(
  $$ select csv_import.register_job((select max(id) from csv_import.jobs where object_name like 'pgtap/guard-%'),
       '{"data_start": 0, "chunk_size": 1, "header_lines": 0, "target_table": "pgtap_target.items"}') $$,
  '54000', null,
  'a plan of 100,001 one-byte chunks is refused');
select is((select count(*)::int from csv_import.chunks
           where job_id = (select max(id) from csv_import.jobs where object_name like 'pgtap/guard-%')), 0,
  'and no chunk row was written');
select is((select status::text from csv_import.jobs where object_name like 'pgtap/guard-%'), 'registering',
  'the job is still registering (the register function fails it with a message)');

select lives_ok($$ select pgtap_csv.plan_job('small', 3000, 0, 1000) $$, 'a plan of 3 chunks is accepted');
select lives_ok($$ update csv_import.jobs set chunk_count = 100000 where id = pgtap_csv.job('small') $$,
  'a job may have exactly 100,000 chunks');

select * from finish();
rollback;
