-- csv_import._on_object_change / enqueue_registration / request_registration / request_function /
-- function_endpoint / stop_job: what an upload, a new version, a metadata update and a delete do.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(24);

-- Fixtures: the bucket, test Vault secrets (replacing any), a helper to find an object's jobs.
insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict (id) do nothing;
insert into storage.buckets (id, name) values ('pgtap-other', 'pgtap-other'), ('pgtap-profiled', 'pgtap-profiled')
  on conflict (id) do nothing;
delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key');
do $$ begin
  perform vault.create_secret('https://pipeline.test/', 'csv_import_api_url');
  perform vault.create_secret('test-service-key', 'csv_import_service_key');
end $$;
create schema pgtap_csv;
create function pgtap_csv.job(p_name text, p_version text) returns bigint language sql stable as $$
  select id from csv_import.jobs where bucket_id = 'csv-uploads' and object_name = p_name and object_version = p_version
$$;
create function pgtap_csv.requests(p_job bigint) returns bigint language sql as $$
  select count(*) from net.http_request_queue
  where url like '%/functions/v1/csv-import-register' and convert_from(body, 'UTF8')::jsonb = jsonb_build_object('job_id', p_job)
$$;

-- A new object ---------------------------------------------------------------------------------------------
insert into storage.objects (id, bucket_id, name, owner_id, version, metadata)
values ('7e57ab1e-0000-4000-8000-000000000001', 'csv-uploads', 'pgtap/orders.csv',
        '11111111-1111-4111-8111-111111111111', 'v1', '{"size": 1234, "mimetype": "text/csv"}');

select results_eq(
  $$ select status::text, object_size, owner_id, object_version, object_id, register_attempts, error
     from csv_import.jobs where bucket_id = 'csv-uploads' and object_name = 'pgtap/orders.csv' $$,
  $$ values ('registering', 1234::bigint, '11111111-1111-4111-8111-111111111111', 'v1',
             '7e57ab1e-0000-4000-8000-000000000001'::uuid, 1, null::text) $$,
  'an upload creates one registering job with the object''s size, owner and version');

select is((select register_after from csv_import.jobs where id = pgtap_csv.job('pgtap/orders.csv', 'v1')),
  now() + interval '30 seconds', 'the next registration re-request is scheduled 30 s later');

select results_eq(
  $$ select method::text, url, convert_from(body, 'UTF8')::jsonb, headers ->> 'Authorization', headers ->> 'apikey',
            headers ->> 'Content-Type', timeout_milliseconds
     from net.http_request_queue
     where convert_from(body, 'UTF8')::jsonb = jsonb_build_object('job_id', pgtap_csv.job('pgtap/orders.csv', 'v1')) $$,
  $$ values ('POST', 'https://pipeline.test/functions/v1/csv-import-register',
             jsonb_build_object('job_id', pgtap_csv.job('pgtap/orders.csv', 'v1')), 'Bearer test-service-key',
             'test-service-key', 'application/json', 20000) $$,
  'exactly one pg_net POST to <api_url>/functions/v1/csv-import-register with {"job_id": …} and the Vault key');

-- The same version again ------------------------------------------------------------------------------------
update storage.objects set metadata = metadata || '{"cacheControl": "max-age=60"}', updated_at = now()
where bucket_id = 'csv-uploads' and name = 'pgtap/orders.csv';
select is((select count(*)::int from csv_import.jobs where bucket_id = 'csv-uploads' and object_name = 'pgtap/orders.csv'),
  1, 'a metadata-only update (same version) creates no job');
select is(pgtap_csv.requests(pgtap_csv.job('pgtap/orders.csv', 'v1')), 1::bigint, '… and sends no request');

select is(csv_import.enqueue_registration('csv-uploads', 'pgtap/orders.csv', '7e57ab1e-0000-4000-8000-000000000001',
            'v1', 1234, '11111111-1111-4111-8111-111111111111'),
  pgtap_csv.job('pgtap/orders.csv', 'v1'), 'registering the same version again returns the existing job');
select is(pgtap_csv.requests(pgtap_csv.job('pgtap/orders.csv', 'v1')), 1::bigint, '… without a second request');

-- A new version ---------------------------------------------------------------------------------------------
update storage.objects set version = 'v2', metadata = '{"size": 2000}'
where bucket_id = 'csv-uploads' and name = 'pgtap/orders.csv';

select results_eq(
  $$ select object_version, status::text, object_size from csv_import.jobs
     where bucket_id = 'csv-uploads' and object_name = 'pgtap/orders.csv' order by id $$,
  $$ values ('v1', 'cancelled', 1234::bigint), ('v2', 'registering', 2000::bigint) $$,
  'a new version creates a new job and cancels the old one');
select results_eq(
  $$ select superseded_by, error, finished_at is not null from csv_import.jobs
     where id = pgtap_csv.job('pgtap/orders.csv', 'v1') $$,
  $$ values (pgtap_csv.job('pgtap/orders.csv', 'v2'),
             format('Superseded by a newer version of pgtap/orders.csv (job %s)', pgtap_csv.job('pgtap/orders.csv', 'v2')),
             true) $$,
  'the old job records superseded_by and says why');
select is(pgtap_csv.requests(pgtap_csv.job('pgtap/orders.csv', 'v2')), 1::bigint,
  'the new version is requested for registration');

-- A new version of a planned (queued) job stops its chunks too.
select ok((select planned from csv_import.register_job(pgtap_csv.job('pgtap/orders.csv', 'v2'),
  '{"data_start": 10, "chunk_size": 500, "header_lines": 1}')), 'v2 planned');
update storage.objects set version = 'v3', metadata = '{"size": 3000}'
where bucket_id = 'csv-uploads' and name = 'pgtap/orders.csv';
select results_eq(
  $$ select status::text, count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('pgtap/orders.csv', 'v2')
     group by status $$,
  $$ values ('cancelled', 7) $$,
  'superseding a queued job cancels all of its chunks');

-- Storage's permission probe ----------------------------------------------------------------------------------
-- Before storing an upload, Storage tries the row's INSERT (x-upsert: its upsert) with version '1' in a transaction
-- it rolls back (supabase/storage src/storage/uploader.ts canUpload / testPermission). The trigger ignores it.
insert into storage.objects (bucket_id, name, version) values ('csv-uploads', 'pgtap/probed.csv', '1');
select is_empty($$ select 1 from csv_import.jobs where object_name = 'pgtap/probed.csv' $$,
  'the permission probe of a new object creates no job …');
select is_empty(
  $$ select 1 from net.http_request_queue q join csv_import.jobs j
       on convert_from(q.body, 'UTF8')::jsonb = jsonb_build_object('job_id', j.id)
     where j.object_name = 'pgtap/probed.csv' $$,
  '… and sends no request');
insert into storage.objects (bucket_id, name, version, metadata)
values ('csv-uploads', 'pgtap/orders.csv', '1', '{"size": 1}')
on conflict (bucket_id, name) do update set version = excluded.version, metadata = excluded.metadata;
select results_eq(
  $$ select object_version, status::text from csv_import.jobs
     where bucket_id = 'csv-uploads' and object_name = 'pgtap/orders.csv' and object_version in ('1', 'v3') $$,
  $$ values ('v3', 'registering') $$,
  'the x-upsert probe of an object being imported neither registers it nor stops its job');
-- What Storage's rollback would do: the probed rows go away again.
update storage.objects set version = 'v3', metadata = '{"size": 3000}'
where bucket_id = 'csv-uploads' and name = 'pgtap/orders.csv';
set local storage.allow_delete_query = 'true';
delete from storage.objects where bucket_id = 'csv-uploads' and name = 'pgtap/probed.csv';
reset storage.allow_delete_query;

-- Objects that are not imported -----------------------------------------------------------------------------
insert into storage.objects (bucket_id, name, version, metadata) values
  ('csv-uploads', 'pgtap/orders.rejects.csv', 'r1', '{"size": 10}'),
  ('csv-uploads', 'pgtap/sub/.emptyFolderPlaceholder', 'e1', '{"size": 0}'),
  ('pgtap-other', 'pgtap/orders.csv', 'o1', '{"size": 10}');
select is_empty(
  $$ select 1 from csv_import.jobs where object_name in ('pgtap/orders.rejects.csv', 'pgtap/sub/.emptyFolderPlaceholder')
     or bucket_id = 'pgtap-other' $$,
  'no job for *.rejects.csv, hidden files, or a bucket without a profile');

insert into csv_import.profiles (name, bucket_id, path_pattern, target_table)
values ('pgtap-profiled', 'pgtap-profiled', '%', 'public.pgtap_items');
insert into storage.objects (bucket_id, name, version, metadata)
values ('pgtap-profiled', 'pgtap/items.csv', 'p1', '{"size": 10}');
select is((select status::text from csv_import.jobs where bucket_id = 'pgtap-profiled' and object_name = 'pgtap/items.csv'),
  'registering', 'a bucket named by a profile is watched');

select results_eq(
  $$ select csv_import.is_import_candidate(b, n) from (values
       ('csv-uploads', 'a.csv'), ('csv-uploads', 'dir/a.csv'), ('csv-uploads', 'a.rejects.csv'),
       ('csv-uploads', 'dir/.hidden.csv'), ('pgtap-other', 'a.csv'), ('pgtap-profiled', 'a.csv')) as t(b, n) $$,
  $$ values (true), (true), (false), (false), (false), (true) $$,
  'is_import_candidate: watched buckets, minus rejects files and hidden files');

-- Deleting the object ---------------------------------------------------------------------------------------
set local storage.allow_delete_query = 'true';
delete from storage.objects where bucket_id = 'csv-uploads' and name = 'pgtap/orders.csv';
select results_eq(
  $$ select status::text, error, superseded_by from csv_import.jobs where id = pgtap_csv.job('pgtap/orders.csv', 'v3') $$,
  $$ values ('cancelled', 'The object pgtap/orders.csv was deleted during the import', null::bigint) $$,
  'deleting the object cancels its unfinished job, saying why');
select results_eq(
  $$ select object_version, status::text from csv_import.jobs
     where bucket_id = 'csv-uploads' and object_name = 'pgtap/orders.csv' order by id $$,
  $$ values ('v1', 'cancelled'), ('v2', 'cancelled'), ('v3', 'cancelled') $$,
  'finished jobs keep their status and message');
select is((select error from csv_import.jobs where id = pgtap_csv.job('pgtap/orders.csv', 'v1')),
  format('Superseded by a newer version of pgtap/orders.csv (job %s)', pgtap_csv.job('pgtap/orders.csv', 'v2')),
  '… the delete does not overwrite an earlier message');

-- stop_job directly ------------------------------------------------------------------------------------------
select is(csv_import.stop_job(pgtap_csv.job('pgtap/orders.csv', 'v3'), 'failed', 'again'), false,
  'stop_job on a finished job changes nothing and returns false');

-- function_endpoint / request_function ----------------------------------------------------------------------
select results_eq(
  $$ select url, headers from csv_import.function_endpoint('dispatch') $$,
  $$ values ('https://pipeline.test/functions/v1/csv-import-dispatch',
             '{"Content-Type": "application/json", "Authorization": "Bearer test-service-key", "apikey": "test-service-key"}'::jsonb) $$,
  'function_endpoint builds the URL (trailing slash trimmed) and headers from Vault');
create temp table pgtap_requests on commit drop as
  select 'dispatch' as fn, csv_import.request_function('dispatch', '{"reason": "pgtap"}') as id
  union all select 'chunk', csv_import.request_function('chunk', '{"chunk_id": 1}');
select results_eq(
  $$ select q.url, convert_from(q.body, 'UTF8')::jsonb from pgtap_requests r join net.http_request_queue q using (id)
     order by r.fn desc $$,
  $$ values ('https://pipeline.test/functions/v1/csv-import-dispatch', '{"reason": "pgtap"}'::jsonb),
            ('https://pipeline.test/functions/v1/csv-import-chunk', '{"chunk_id": 1}'::jsonb) $$,
  'request_function queues a POST of the body to the named function and returns the pg_net request id');

select * from finish();
rollback;
