-- csv_import.registrations_waiting: the jobs an idle register isolate takes itself (pipeline/register_queue.ts):
-- requested once, not failed, not planned, created since the isolate started, after a given id, in id order.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(6);

create schema pgtap_csv;
-- A job as the storage trigger leaves it once its registration was requested p_attempts times.
create function pgtap_csv.job(p_attempts int, p_error text default null) returns bigint language sql as $$
  insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, register_attempts, error)
  values ('csv-uploads', 'pgtap/' || gen_random_uuid() || '.csv', 'v1', 10, p_attempts, p_error)
  returning id
$$;
create temp table pgtap_jobs (name text primary key, id bigint) on commit drop;
insert into pgtap_jobs values
  ('first', pgtap_csv.job(1)), ('second', pgtap_csv.job(1)), ('failed_once', pgtap_csv.job(1, 'Storage answered 503')),
  ('asked_again', pgtap_csv.job(2)), ('planned', pgtap_csv.job(1)), ('third', pgtap_csv.job(1)),
  ('before_the_isolate', pgtap_csv.job(1));
update csv_import.jobs set status = 'queued' where id = (select id from pgtap_jobs where name = 'planned');
update csv_import.jobs set created_at = now() - interval '1 minute'
where id = (select id from pgtap_jobs where name = 'before_the_isolate');
-- Only this file's jobs: others may exist in the database.
-- The isolate started 30 s ago unless said otherwise.
create function pgtap_csv.waiting(p_after bigint, p_limit int, p_started timestamptz default now() - interval '30 s')
returns setof text language sql as $$
  select k.name from csv_import.registrations_waiting(p_after, p_started, p_limit) as w(id)
  join pgtap_jobs k on k.id = w.id order by w.id
$$;

select results_eq($$ select pgtap_csv.waiting((select min(id) - 1 from pgtap_jobs), 100) $$,
  $$ values ('first'), ('second'), ('third') $$,
  'requested once, neither failed nor planned, created since the isolate started, in id order');
select results_eq(
  $$ select pgtap_csv.waiting((select min(id) - 1 from pgtap_jobs), 100, '-infinity') $$,
  $$ values ('first'), ('second'), ('third'), ('before_the_isolate') $$,
  'a job created before the isolate started (it may wait in an older isolate''s queue) only when asked for');
select results_eq($$ select pgtap_csv.waiting((select id from pgtap_jobs where name = 'first'), 100) $$,
  $$ values ('second'), ('third') $$, 'only after the given id');
select is((select count(*)::int from csv_import.registrations_waiting(0, '-infinity', 2)), 2, 'at most p_limit');
select is((select count(*)::int from csv_import.registrations_waiting(0, '-infinity', -1)), 0, 'a negative limit takes none');
select is_empty(
  $$ select 1 where has_function_privilege('authenticated', 'csv_import.registrations_waiting(bigint, timestamptz, int)', 'execute')
        or has_function_privilege('anon', 'csv_import.registrations_waiting(bigint, timestamptz, int)', 'execute') $$,
  'clients cannot call it');

select * from finish();
rollback;
