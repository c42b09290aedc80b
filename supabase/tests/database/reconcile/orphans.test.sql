-- csv_import.reconcile, step 2b: object versions of watched buckets updated between 1 day and 1 minute ago that have
-- no job for their (bucket, name, version) get one (the trigger could not register them); fresh objects (the
-- trigger's transaction may still be running), old ones and non-candidates are left alone; at most 100 per run,
-- oldest first.
--
-- reconcile() works on the whole database while a live stack may be working on it: this file touches no other job or
-- object, and counts only the jobs its own reconcile runs create (created in this transaction, after a mark).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(15);

insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict (id) do nothing;
insert into storage.buckets (id, name) values ('pgtap-other', 'pgtap-other'), ('pgtap-profiled', 'pgtap-profiled')
  on conflict (id) do nothing;
insert into csv_import.profiles (name, bucket_id, path_pattern, target_table)
values ('pgtap-profiled', 'pgtap-profiled', '%', 'public.pgtap_items');
delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key');
do $$ begin
  perform vault.create_secret('https://pipeline.test', 'csv_import_api_url');
  perform vault.create_secret('test-service-key', 'csv_import_service_key');
end $$;

create schema pgtap_csv;
create table pgtap_csv.queue_mark (id bigint, job_id bigint);
create function pgtap_csv.mark_queue() returns void language sql as $$
  delete from pgtap_csv.queue_mark;
  insert into pgtap_csv.queue_mark
  select (select coalesce(max(id), 0) from net.http_request_queue), (select coalesce(max(id), 0) from csv_import.jobs);
$$;
-- Jobs created since the last mark by this transaction (a live stack's jobs have their own created_at).
create function pgtap_csv.new_jobs() returns setof csv_import.jobs language sql stable as $$
  select * from csv_import.jobs where id > (select job_id from pgtap_csv.queue_mark) and created_at = now()
$$;
-- Register requests queued since the last mark, as job ids.
create function pgtap_csv.new_register_requests() returns setof bigint language sql as $$
  select (convert_from(body, 'UTF8')::jsonb ->> 'job_id')::bigint from net.http_request_queue
  where id > (select id from pgtap_csv.queue_mark) and url = 'https://pipeline.test/functions/v1/csv-import-register' order by id
$$;
-- An object as Storage stores it, last updated p_age ago; the trigger's job for it is removed (as if the trigger had
-- failed), unless p_keep_job.
create function pgtap_csv.object(p_bucket text, p_name text, p_version text, p_age interval, p_keep_job boolean default false)
returns void language sql as $$
  insert into storage.objects (id, bucket_id, name, owner_id, version, metadata, created_at, updated_at)
  values (gen_random_uuid(), p_bucket, p_name, '11111111-1111-4111-8111-111111111111', p_version,
          '{"size": 4321, "mimetype": "text/csv"}', now() - p_age, now() - p_age);
  delete from csv_import.jobs where bucket_id = p_bucket and object_name = p_name and not p_keep_job;
$$;
create function pgtap_csv.jobs_of(p_bucket text, p_name text)
returns table (object_version text, status text, register_attempts int, object_size bigint, owner_id text)
language sql stable as $$
  select object_version, status::text, register_attempts, object_size, owner_id from csv_import.jobs
  where bucket_id = p_bucket and object_name = p_name order by id
$$;
create table pgtap_csv.summaries (step text primary key, summary jsonb);
create function pgtap_csv.reconcile(p_step text) returns jsonb language sql as $$
  insert into pgtap_csv.summaries values (p_step, csv_import.reconcile()) returning summary
$$;

-- Objects ---------------------------------------------------------------------------------------------------------------
do $$ begin
  -- Orphans.
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/recent.csv', 'r1', interval '5 minutes');
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/no-version.csv', null, interval '10 minutes');
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/almost-a-day.csv', 'd1', interval '23 hours 59 minutes');
  perform pgtap_csv.object('pgtap-profiled', 'pgtap/orphan/profiled.csv', 'p1', interval '1 hour');
  -- Left alone.
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/fresh.csv', 'f1', interval '30 seconds');
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/old.csv', 'o1', interval '25 hours');
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/has-job.csv', 'h1', interval '5 minutes', true);
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/failed-job.csv', 'x1', interval '5 minutes', true);
  perform csv_import.fail_registration(
    (select id from csv_import.jobs where object_name = 'pgtap/orphan/failed-job.csv'), 'Not UTF-8');
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/data.rejects.csv', 'j1', interval '5 minutes');
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/.hidden.csv', 'k1', interval '5 minutes');
  perform pgtap_csv.object('pgtap-other', 'pgtap/orphan/unwatched.csv', 'u1', interval '5 minutes');
end $$;
-- A newer version whose trigger run was lost while the older version's job is still running.
do $$ begin
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/new-version.csv', 'n2', interval '3 minutes');
  insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, status)
  values ('csv-uploads', 'pgtap/orphan/new-version.csv', 'n1', 10, 'running');
  perform pgtap_csv.mark_queue();
end $$;

-- First run -----------------------------------------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.reconcile('first'); end $$;
select is((select (summary ->> 'orphans_registered')::int from pgtap_csv.summaries where step = 'first'),
  (select count(*)::int from pgtap_csv.new_jobs()), 'orphans_registered counts the jobs the run created');
select results_eq(
  $$ select bucket_id || ':' || object_name from pgtap_csv.new_jobs() j
     where object_name like 'pgtap/orphan/%' and register_attempts = 1 and status = 'registering'
       and exists (select 1 from pgtap_csv.new_register_requests() r where r = j.id)
     order by 1 $$,
  $$ values ('csv-uploads:pgtap/orphan/almost-a-day.csv'), ('csv-uploads:pgtap/orphan/new-version.csv'),
            ('csv-uploads:pgtap/orphan/no-version.csv'), ('csv-uploads:pgtap/orphan/recent.csv'),
            ('pgtap-profiled:pgtap/orphan/profiled.csv') $$,
  'recent, unversioned, almost a day old, newer-version and profiled-bucket objects, each with a register request');
select results_eq($$ select * from pgtap_csv.jobs_of('csv-uploads', 'pgtap/orphan/recent.csv') $$,
  $$ values ('r1', 'registering', 1, 4321::bigint, '11111111-1111-4111-8111-111111111111') $$,
  'the orphan''s job has the object''s version, size and owner');
select is((select object_version from csv_import.jobs where object_name = 'pgtap/orphan/no-version.csv'),
  (select id::text from storage.objects where name = 'pgtap/orphan/no-version.csv'),
  'an object without a version is registered under its id, as the trigger does');
select results_eq($$ select object_version, status from pgtap_csv.jobs_of('csv-uploads', 'pgtap/orphan/new-version.csv') $$,
  $$ values ('n1', 'cancelled'), ('n2', 'registering') $$,
  'a newer version without a job is registered and supersedes the running older one');
select is_empty(
  $$ select object_name from csv_import.jobs where object_name in ('pgtap/orphan/fresh.csv', 'pgtap/orphan/old.csv',
       'pgtap/orphan/data.rejects.csv', 'pgtap/orphan/.hidden.csv', 'pgtap/orphan/unwatched.csv') $$,
  'fresh (< 1 minute) and old (> 1 day) objects, rejects files, hidden files and unwatched buckets are left alone');
select results_eq(
  $$ select object_name, object_version, status::text, register_attempts from csv_import.jobs
     where object_name in ('pgtap/orphan/has-job.csv', 'pgtap/orphan/failed-job.csv') order by object_name $$,
  $$ values ('pgtap/orphan/failed-job.csv', 'x1', 'failed', 1), ('pgtap/orphan/has-job.csv', 'h1', 'registering', 1) $$,
  'a version that has a job, even a failed one, is not registered again');

-- Second run ----------------------------------------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.mark_queue(); end $$;
select is(pgtap_csv.reconcile('second') ->> 'orphans_registered', '0', 'a second run registers nothing');
select is_empty($$ select * from pgtap_csv.new_jobs() $$, '… creates no job');
select is_empty($$ select * from pgtap_csv.new_register_requests() $$, '… and requests no registration');

-- Once a fresh object is a minute old, it is registered -------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.object('csv-uploads', 'pgtap/orphan/later.csv', 'l1', interval '61 seconds');
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('later') ->> 'orphans_registered', '1', 'an object just over a minute old is registered');
select results_eq($$ select object_name from pgtap_csv.new_jobs() $$, $$ values ('pgtap/orphan/later.csv') $$, '… that one');

-- At most 100 per run, oldest first -------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.object('csv-uploads', format('pgtap/orphan/bulk-%s.csv', i), 'b1', make_interval(mins => 2 + i))
  from generate_series(1, 101) as i;
end $$;
select is(pgtap_csv.reconcile('bulk') ->> 'orphans_registered', '100', 'at most 100 orphans per run');
select is((select string_agg(o.name, ',') from storage.objects o where name like 'pgtap/orphan/bulk-%'
             and not exists (select 1 from csv_import.jobs j where j.object_name = o.name)),
  'pgtap/orphan/bulk-1.csv', '… oldest first: the most recent one waits');
select is(pgtap_csv.reconcile('bulk-rest') ->> 'orphans_registered', '1', 'the next run registers the rest');

select * from finish();
rollback;
