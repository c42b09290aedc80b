-- csv_import.claim_rejects_files / csv_import.record_rejects_file: how the dispatch logic claims the jobs whose rejects
-- CSVs are due (oldest job first, one writer per file for the length of a lease) and records that one was written
-- (idempotently, ending the claim).
--
-- A live stack may have its own jobs with a pending rejects file: the first claim takes every due file (inside this
-- transaction, rolled back at the end), so later claims can only return this file's jobs, and those are checked by id.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(18);

create schema pgtap_csv;
create table pgtap_csv.jobs (name text primary key, id bigint not null);
create function pgtap_csv.job(p_name text) returns bigint language sql stable as $$
  select id from pgtap_csv.jobs where name = p_name
$$;
create function pgtap_csv.finished_job(p_name text, p_status text, p_rejects_status text) returns bigint
language sql as $$
  with j as (
    insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, status, rows_rejected,
                                 rejects_status, finished_at)
    values ('csv-uploads', 'pgtap/rejects/' || p_name || '.csv', 'v1', 100, p_status::csv_import.job_status,
            case when p_rejects_status = 'none' then 0 else 3 end, p_rejects_status::csv_import.rejects_file_status, now())
    returning id)
  insert into pgtap_csv.jobs select p_name, id from j returning id
$$;
-- Claims (p_limit, p_lease_seconds) and returns this file's jobs among the claimed, oldest first.
create function pgtap_csv.claim(p_limit int default 1000000, p_lease_seconds int default 60)
returns table (name text, bucket_id text, object_name text) language sql as $$
  select j.name, p.bucket_id, p.object_name from csv_import.claim_rejects_files(p_limit, p_lease_seconds) p
  join pgtap_csv.jobs j on j.id = p.job_id order by p.job_id
$$;
create function pgtap_csv.claimed_until(p_name text) returns timestamptz language sql stable as $$
  select rejects_claimed_until from csv_import.jobs where id = pgtap_csv.job(p_name)
$$;
create function pgtap_csv.expire(p_names text[]) returns void language sql as $$
  update csv_import.jobs set rejects_claimed_until = now() - interval '1 second'
  where id in (select pgtap_csv.job(n) from unnest(p_names) as n)
$$;
create function pgtap_csv.state(p_name text) returns table (rejects_status text, rejects_object text) language sql stable as $$
  select rejects_status::text, rejects_object from csv_import.jobs where id = pgtap_csv.job(p_name)
$$;

do $$ begin
  perform pgtap_csv.finished_job('with-rejects', 'succeeded_with_rejects', 'pending');
  perform pgtap_csv.finished_job('none', 'succeeded', 'none');
  perform pgtap_csv.finished_job('too-many', 'failed', 'pending');
  perform pgtap_csv.finished_job('written', 'succeeded_with_rejects', 'written');
  perform pgtap_csv.finished_job('cancelled', 'cancelled', 'pending');
end $$;
update csv_import.jobs set rejects_object = 'pgtap/rejects/written.csv.rejects.csv' where id = pgtap_csv.job('written');

-- Claiming -------------------------------------------------------------------------------------------------------------
select results_eq($$ select * from pgtap_csv.claim() $$,
  $$ values ('with-rejects', 'csv-uploads', 'pgtap/rejects/with-rejects.csv'),
            ('too-many', 'csv-uploads', 'pgtap/rejects/too-many.csv'),
            ('cancelled', 'csv-uploads', 'pgtap/rejects/cancelled.csv') $$,
  'every job whose rejects file is pending is claimed (whatever its status), with its object, oldest first');
select is(
  array(select pgtap_csv.claimed_until(n) from unnest(array['with-rejects', 'too-many', 'cancelled', 'none', 'written']) n),
  array[now() + interval '60 seconds', now() + interval '60 seconds', now() + interval '60 seconds', null, null],
  '… each for a lease of 60 s by default; jobs without a due file are not touched');
select is_empty($$ select * from pgtap_csv.claim() $$,
  'a claimed file is not handed to a second writer while its lease lasts');

select pgtap_csv.expire(array['with-rejects', 'too-many', 'cancelled']);
select results_eq($$ select name from pgtap_csv.claim(2) $$, $$ values ('with-rejects'), ('too-many') $$,
  'an expired claim can be claimed again (a failed write is retried); p_limit caps the claim, oldest first');
select results_eq($$ select name from pgtap_csv.claim(5, 300) $$, $$ values ('cancelled') $$,
  '… and the next claim takes what is left');
select is(pgtap_csv.claimed_until('cancelled'), now() + interval '300 seconds', 'p_lease_seconds sets the lease');
select pgtap_csv.expire(array['with-rejects']);
select is_empty($$ select * from pgtap_csv.claim(0) $$, 'a limit of 0: nothing');

-- Recording ---------------------------------------------------------------------------------------------------------------
select lives_ok(
  $$ select csv_import.record_rejects_file(pgtap_csv.job('with-rejects'), 'pgtap/rejects/with-rejects.csv.rejects.csv') $$,
  'record_rejects_file records a written file');
select results_eq($$ select * from pgtap_csv.state('with-rejects') $$,
  $$ values ('written', 'pgtap/rejects/with-rejects.csv.rejects.csv') $$, '… the job''s rejects file is written');
select is(pgtap_csv.claimed_until('with-rejects'), null, '… its claim ended');
select is((select updated_at from csv_import.jobs where id = pgtap_csv.job('with-rejects')), now(), '… and the job updated');
select pgtap_csv.expire(array['too-many', 'cancelled']);
select results_eq($$ select name from pgtap_csv.claim() $$, $$ values ('too-many'), ('cancelled') $$,
  '… and it is never claimed again');

do $$ begin
  update csv_import.jobs set updated_at = now() - interval '1 minute' where id = pgtap_csv.job('with-rejects');
  perform csv_import.record_rejects_file(pgtap_csv.job('with-rejects'), 'pgtap/rejects/other.rejects.csv');
end $$;
select results_eq(
  $$ select rejects_status::text, rejects_object, updated_at from csv_import.jobs where id = pgtap_csv.job('with-rejects') $$,
  $$ values ('written', 'pgtap/rejects/with-rejects.csv.rejects.csv', now() - interval '1 minute') $$,
  'recording again (a second writer) changes nothing, not even updated_at');

do $$ begin
  perform csv_import.record_rejects_file(pgtap_csv.job('none'), 'pgtap/rejects/none.rejects.csv');
  perform csv_import.record_rejects_file(pgtap_csv.job('written'), 'pgtap/rejects/elsewhere.rejects.csv');
end $$;
select results_eq($$ select s.* from unnest(array['none', 'written']) as n, pgtap_csv.state(n) as s $$,
  $$ values ('none', null::text), ('written', 'pgtap/rejects/written.csv.rejects.csv') $$,
  'a job without rejects, or whose file is already written, is not changed');
select lives_ok($$ select csv_import.record_rejects_file(-1, 'nowhere.rejects.csv') $$, 'an unknown job: no error');

-- Privileges ------------------------------------------------------------------------------------------------------------------
select results_eq(
  $$ select r, has_function_privilege(r, 'csv_import.claim_rejects_files(int, int)', 'execute'),
            has_function_privilege(r, 'csv_import.record_rejects_file(bigint, text)', 'execute')
     from unnest(array['anon', 'authenticated', 'service_role']) as r $$,
  $$ values ('anon', false, false), ('authenticated', false, false), ('service_role', true, true) $$,
  'only the service role may call them');
select results_eq(
  $$ select p.proname::text collate "default", p.prosecdef, p.provolatile::text collate "default" from pg_proc p
     where p.pronamespace = 'csv_import'::regnamespace and p.proname in ('claim_rejects_files', 'record_rejects_file')
     order by 1 $$,
  $$ values ('claim_rejects_files', true, 'v'), ('record_rejects_file', true, 'v') $$,
  'both are security definer and volatile');
select is(
  (select count(*)::int from pg_proc p where p.pronamespace = 'csv_import'::regnamespace
     and p.proname in ('claim_rejects_files', 'record_rejects_file')
     and not (p.proconfig @> array['search_path=""'])),
  0, '… with an empty search_path');

select * from finish();
rollback;
