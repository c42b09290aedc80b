-- The storage trigger's bounds (migration 20261205000101_bound_storage_trigger) and the pg_net timeouts of the
-- pipeline's calls (20261205000102_short_pg_net_timeouts).
--   - Objects nobody watches: an upload, a new version, a move within the bucket and a delete do no pipeline work —
--     the pipeline's functions are replaced (inside this rolled-back transaction) by ones that record every call, and
--     none is recorded; csv_import.jobs is not even read (pg_stat_xact_user_tables counts no scan of it).
--   - The trigger waits for a lock at most 2 s (function-level lock_timeout), restored after it.
--   - Kicks of dispatch are queued with a 5 s timeout, register calls with 20 s.
-- The concurrent cases (an overwrite while a batch holds the rows, a registration that must wait) are in
-- tests/storage_trigger_bounds_test.ts, which needs two sessions.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(11);

insert into storage.buckets (id, name) values ('pgtap-unwatched', 'pgtap-unwatched'), ('csv-uploads', 'csv-uploads')
  on conflict (id) do nothing;
delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key', 'csv_import_internal_secret');
do $$ begin
  perform vault.create_secret('https://pipeline.test/', 'csv_import_api_url');
  perform vault.create_secret('test-service-key', 'csv_import_service_key');
end $$;

-- Every pipeline function the trigger may reach records its calls (search_path is '' in them: pg_temp is explicit).
create table pg_temp.calls (fn text);
create or replace function csv_import._stop_jobs_of_object_quickly(p_bucket_id text, p_object_name text, p_error text,
  p_superseded_by bigint) returns void language plpgsql security definer set search_path = '' as $$
begin insert into pg_temp.calls values ('_stop_jobs_of_object_quickly'); end $$;
create or replace function csv_import.enqueue_registration(p_bucket_id text, p_object_name text, p_object_id uuid,
  p_version text, p_size bigint, p_owner_id text, p_etag text default null) returns bigint
language plpgsql security definer set search_path = '' as $$
begin insert into pg_temp.calls values ('enqueue_registration'); return null; end $$;
-- Scans of csv_import.jobs in this transaction (pg_stat_xact_user_tables counts them as they happen).
create function pg_temp.jobs_scans() returns bigint language sql volatile as $$
  select coalesce(seq_scan, 0) + coalesce(idx_scan, 0) from pg_catalog.pg_stat_xact_user_tables
  where relid = 'csv_import.jobs'::regclass
$$;

insert into storage.objects (bucket_id, name, version, metadata)
values ('pgtap-unwatched', 'pgtap/bounds/a.csv', 'v1', '{"size": 10}');
update storage.objects set version = 'v2' where bucket_id = 'pgtap-unwatched' and name = 'pgtap/bounds/a.csv';
update storage.objects set name = 'pgtap/bounds/b.csv' where bucket_id = 'pgtap-unwatched' and name = 'pgtap/bounds/a.csv';
set local storage.allow_delete_query = 'true';
delete from storage.objects where bucket_id = 'pgtap-unwatched' and name = 'pgtap/bounds/b.csv';
select is_empty($$ select fn from pg_temp.calls $$,
  'an upload, a new version, a move and a delete in a bucket nobody watches call none of the pipeline''s functions');

-- The same four in the watched bucket do reach them (the recording works).
insert into storage.objects (bucket_id, name, version, metadata) values ('csv-uploads', 'pgtap/bounds/a.csv', 'v1', '{"size": 10}');
update storage.objects set version = 'v2' where bucket_id = 'csv-uploads' and name = 'pgtap/bounds/a.csv';
update storage.objects set name = 'pgtap/bounds/b.csv' where bucket_id = 'csv-uploads' and name = 'pgtap/bounds/a.csv';
delete from storage.objects where bucket_id = 'csv-uploads' and name = 'pgtap/bounds/b.csv';
select results_eq($$ select fn, count(*)::int from pg_temp.calls group by fn order by fn $$,
  $$ values ('_stop_jobs_of_object_quickly', 2), ('enqueue_registration', 3) $$,
  '… while in a watched bucket: three registrations (upload, new version, moved-to name) and two stops (moved-from, delete)');

-- A rejects file and a hidden file in the watched bucket are not candidates either.
truncate pg_temp.calls;
insert into storage.objects (bucket_id, name, version) values ('csv-uploads', 'pgtap/bounds/x.rejects.csv', 'v1'),
  ('csv-uploads', 'pgtap/bounds/.emptyFolderPlaceholder', 'v1');
delete from storage.objects where bucket_id = 'csv-uploads' and name like 'pgtap/bounds/%';
select is_empty($$ select fn from pg_temp.calls $$, 'rejects files and hidden files do no pipeline work either');

-- Not even a read of csv_import.jobs for an unwatched upload, new version and delete.
create table pg_temp.scans as select pg_temp.jobs_scans() as before;
insert into storage.objects (bucket_id, name, version) values ('pgtap-unwatched', 'pgtap/bounds/c.csv', 'v1');
update storage.objects set version = 'v2' where bucket_id = 'pgtap-unwatched' and name = 'pgtap/bounds/c.csv';
delete from storage.objects where bucket_id = 'pgtap-unwatched' and name = 'pgtap/bounds/c.csv';
select is(pg_temp.jobs_scans(), (select before from pg_temp.scans),
  'an unwatched upload, new version and delete do not read csv_import.jobs');
select cmp_ok((select count(*) from csv_import.jobs where bucket_id = 'pgtap-none' and object_name = 'x'), '=', 0::bigint,
  '(a read of csv_import.jobs …)');
select cmp_ok(pg_temp.jobs_scans(), '>', (select before from pg_temp.scans), '… is counted, so the count above is real');
-- The trigger's lock bound.
select ok((select 'lock_timeout=2s' = any (proconfig) and 'search_path=""' = any (proconfig)
            from pg_proc where oid = 'csv_import._on_object_change()'::regprocedure),
  'the trigger runs with lock_timeout = 2s (and an empty search_path)');
select is(current_setting('lock_timeout'), '0', '… restored for the rest of the upload''s transaction');

-- pg_net timeouts.
create table pg_temp.req as select csv_import.request_function('dispatch', '{"reason": "pgtap"}') as dispatch,
  csv_import.request_function('register', '{"job_id": 0}') as register;
select is((select q.timeout_milliseconds from net.http_request_queue q join pg_temp.req r on q.id = r.dispatch), 5000,
  'a dispatch kick is queued with a 5 s timeout');
select is((select q.timeout_milliseconds from net.http_request_queue q join pg_temp.req r on q.id = r.register), 20000,
  'a register call with 20 s');
select is((select q.url from net.http_request_queue q join pg_temp.req r on q.id = r.dispatch),
  'https://pipeline.test/functions/v1/csv-import-dispatch', 'the endpoint is still function_endpoint''s (prefixed)');

select * from finish();
rollback;
