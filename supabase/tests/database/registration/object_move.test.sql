-- csv_import._on_object_change for UPDATEs of storage.objects: a move or rename (bucket_id or name changes) cancels
-- the unfinished job of the old name and registers the object under its new name (when that is an import
-- candidate); a metadata-only update (same name, bucket and version) does nothing.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = warning;
select plan(18);

-- Fixtures: the buckets, test Vault secrets (replacing any), helpers to find an object's jobs and requests.
insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict (id) do nothing;
insert into storage.buckets (id, name) values ('pgtap-other', 'pgtap-other'), ('pgtap-profiled', 'pgtap-profiled')
  on conflict (id) do nothing;
insert into csv_import.profiles (name, bucket_id, path_pattern, target_table)
values ('pgtap-profiled', 'pgtap-profiled', '%', 'public.pgtap_items');
delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key');
do $$ begin
  perform vault.create_secret('https://pipeline.test/', 'csv_import_api_url');
  perform vault.create_secret('test-service-key', 'csv_import_service_key');
end $$;
create schema pgtap_csv;
create function pgtap_csv.job(p_bucket text, p_name text, p_version text) returns bigint language sql stable as $$
  select id from csv_import.jobs where bucket_id = p_bucket and object_name = p_name and object_version = p_version
$$;
create function pgtap_csv.job(p_name text, p_version text) returns bigint language sql stable as $$
  select pgtap_csv.job('csv-uploads', p_name, p_version)
$$;
create function pgtap_csv.requests(p_job bigint) returns bigint language sql as $$
  select count(*) from net.http_request_queue
  where url like '%/functions/v1/csv-import-register' and convert_from(body, 'UTF8')::jsonb = jsonb_build_object('job_id', p_job)
$$;
create procedure pgtap_csv.move(p_from_bucket text, p_from text, p_to_bucket text, p_to text)
language sql as $$
  update storage.objects set bucket_id = p_to_bucket, name = p_to where bucket_id = p_from_bucket and name = p_from
$$;
create function pgtap_csv.moved(p_from text, p_to text, p_to_bucket text default 'csv-uploads') returns text
language sql stable as $$
  select format('The object csv-uploads/%s was moved to %s/%s during the import', p_from, p_to_bucket, p_to)
$$;

-- An uploaded, planned object --------------------------------------------------------------------------------------
insert into storage.objects (id, bucket_id, name, owner_id, version, metadata)
values ('7e57ab1e-0000-4000-8000-0000000000a1', 'csv-uploads', 'pgtap/move/a.csv',
        '11111111-1111-4111-8111-111111111111', 'v1', '{"size": 1000, "mimetype": "text/csv"}');
do $$ begin
  perform csv_import.register_job(pgtap_csv.job('pgtap/move/a.csv', 'v1'),
    '{"data_start": 10, "chunk_size": 500, "header_lines": 1, "target_table": "public.pgtap_items"}');
end $$;
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('pgtap/move/a.csv', 'v1')), 'queued',
  'the upload''s job is planned');

-- Metadata-only updates -------------------------------------------------------------------------------------------------
update storage.objects set metadata = metadata || '{"cacheControl": "max-age=60"}', user_metadata = '{"tag": "x"}',
  last_accessed_at = now() + interval '1 minute'
where bucket_id = 'csv-uploads' and name = 'pgtap/move/a.csv';
update storage.objects set owner_id = '22222222-2222-4222-8222-222222222222'
where bucket_id = 'csv-uploads' and name = 'pgtap/move/a.csv';
select results_eq(
  $$ select object_name, object_version, status::text, error, register_attempts from csv_import.jobs
     where object_name like 'pgtap/move/%' order by id $$,
  $$ values ('pgtap/move/a.csv', 'v1', 'queued', null::text, 1) $$,
  'metadata-only updates (metadata, user metadata, owner; same name, bucket and version) create and stop nothing');
select is(pgtap_csv.requests(pgtap_csv.job('pgtap/move/a.csv', 'v1')), 1::bigint, '… and send no request');

-- A rename within the bucket, same version --------------------------------------------------------------------------------
call pgtap_csv.move('csv-uploads', 'pgtap/move/a.csv', 'csv-uploads', 'pgtap/move/b.csv');
select results_eq(
  $$ select status::text, error, superseded_by, finished_at from csv_import.jobs where id = pgtap_csv.job('pgtap/move/a.csv', 'v1') $$,
  $$ values ('cancelled', pgtap_csv.moved('pgtap/move/a.csv', 'pgtap/move/b.csv'), null::bigint, now()) $$,
  'a rename cancels the old name''s job, saying where the object went');
select results_eq(
  $$ select status::text, count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('pgtap/move/a.csv', 'v1')
     group by status $$,
  $$ values ('cancelled', 3) $$, '… and stops its chunks');
select results_eq(
  $$ select status::text, object_id, object_size, owner_id, register_attempts from csv_import.jobs
     where id = pgtap_csv.job('pgtap/move/b.csv', 'v1') $$,
  $$ values ('registering', '7e57ab1e-0000-4000-8000-0000000000a1'::uuid, 1000::bigint,
             '22222222-2222-4222-8222-222222222222', 1) $$,
  'the new name gets a registering job for the same version');
select is(pgtap_csv.requests(pgtap_csv.job('pgtap/move/b.csv', 'v1')), 1::bigint, '… and one register request');

-- A move to another watched bucket ----------------------------------------------------------------------------------------
call pgtap_csv.move('csv-uploads', 'pgtap/move/b.csv', 'pgtap-profiled', 'pgtap/move/c.csv');
select results_eq(
  $$ select status::text, error from csv_import.jobs where id = pgtap_csv.job('pgtap/move/b.csv', 'v1') $$,
  $$ values ('cancelled', pgtap_csv.moved('pgtap/move/b.csv', 'pgtap/move/c.csv', 'pgtap-profiled')) $$,
  'a move to another bucket cancels the old job');
select results_eq(
  $$ select status::text, object_version from csv_import.jobs where bucket_id = 'pgtap-profiled' and object_name = 'pgtap/move/c.csv' $$,
  $$ values ('registering', 'v1') $$, '… and registers it in the new (watched) bucket');

-- Moves to where nothing is imported ------------------------------------------------------------------------------------
insert into storage.objects (bucket_id, name, version, metadata) values
  ('csv-uploads', 'pgtap/move/d.csv', 'd1', '{"size": 10}'),
  ('csv-uploads', 'pgtap/move/e.csv', 'e1', '{"size": 10}'),
  ('csv-uploads', 'pgtap/move/f.csv', 'f1', '{"size": 10}');
call pgtap_csv.move('csv-uploads', 'pgtap/move/d.csv', 'pgtap-other', 'pgtap/move/d.csv');
call pgtap_csv.move('csv-uploads', 'pgtap/move/e.csv', 'csv-uploads', 'pgtap/move/e.rejects.csv');
call pgtap_csv.move('csv-uploads', 'pgtap/move/f.csv', 'csv-uploads', 'pgtap/move/.f.csv');
select results_eq(
  $$ select object_name, status::text, error from csv_import.jobs
     where object_name in ('pgtap/move/d.csv', 'pgtap/move/e.csv', 'pgtap/move/f.csv') order by object_name $$,
  $$ values ('pgtap/move/d.csv', 'cancelled', pgtap_csv.moved('pgtap/move/d.csv', 'pgtap/move/d.csv', 'pgtap-other')),
            ('pgtap/move/e.csv', 'cancelled', pgtap_csv.moved('pgtap/move/e.csv', 'pgtap/move/e.rejects.csv')),
            ('pgtap/move/f.csv', 'cancelled', pgtap_csv.moved('pgtap/move/f.csv', 'pgtap/move/.f.csv')) $$,
  'a move to an unwatched bucket, to a *.rejects.csv name or to a hidden name cancels the old job');
select is_empty(
  $$ select 1 from csv_import.jobs where bucket_id = 'pgtap-other'
     or object_name in ('pgtap/move/e.rejects.csv', 'pgtap/move/.f.csv') $$,
  '… and registers nothing under the new name');

-- A move of an object whose import already finished ----------------------------------------------------------------------
insert into storage.objects (bucket_id, name, version, metadata) values ('csv-uploads', 'pgtap/move/g.csv', 'g1', '{"size": 10}');
update csv_import.jobs set status = 'succeeded', finished_at = now() - interval '1 hour'
where id = pgtap_csv.job('pgtap/move/g.csv', 'g1');
call pgtap_csv.move('csv-uploads', 'pgtap/move/g.csv', 'csv-uploads', 'pgtap/move/h.csv');
select results_eq(
  $$ select status::text, error, finished_at from csv_import.jobs where id = pgtap_csv.job('pgtap/move/g.csv', 'g1') $$,
  $$ values ('succeeded', null::text, now() - interval '1 hour') $$,
  'a finished job keeps its status when its object is moved');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('pgtap/move/h.csv', 'g1')), 'registering',
  '… and the object is registered under its new name');

-- A move that also changes the version (as Storage's move does) ---------------------------------------------------------------
insert into storage.objects (bucket_id, name, version, metadata) values ('csv-uploads', 'pgtap/move/i.csv', 'i1', '{"size": 10}');
update storage.objects set name = 'pgtap/move/j.csv', version = 'j1', metadata = '{"size": 20}'
where bucket_id = 'csv-uploads' and name = 'pgtap/move/i.csv';
select results_eq(
  $$ select object_name, object_version, status::text, error, superseded_by, object_size from csv_import.jobs
     where object_name in ('pgtap/move/i.csv', 'pgtap/move/j.csv') order by id $$,
  $$ values ('pgtap/move/i.csv', 'i1', 'cancelled', pgtap_csv.moved('pgtap/move/i.csv', 'pgtap/move/j.csv'), null::bigint, 10::bigint),
            ('pgtap/move/j.csv', 'j1', 'registering', null, null, 20) $$,
  'a move with a new version: the old job is cancelled as moved, the new name''s version registered');

-- A move onto a name whose previous object left a running job of another version ------------------------------------------------
insert into storage.objects (bucket_id, name, version, metadata) values ('csv-uploads', 'pgtap/move/k.csv', 'k1', '{"size": 10}');
insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, status)
values ('csv-uploads', 'pgtap/move/l.csv', 'old', 10, 'running');
call pgtap_csv.move('csv-uploads', 'pgtap/move/k.csv', 'csv-uploads', 'pgtap/move/l.csv');
select results_eq(
  $$ select status::text, superseded_by from csv_import.jobs where id = pgtap_csv.job('pgtap/move/l.csv', 'old') $$,
  $$ values ('cancelled', pgtap_csv.job('pgtap/move/l.csv', 'k1')) $$,
  'the moved object supersedes a stale job of its new name');

-- Rollback of the Storage transaction takes the job with it (the trigger runs in it) --------------------------------------------
savepoint before_move;
call pgtap_csv.move('csv-uploads', 'pgtap/move/h.csv', 'csv-uploads', 'pgtap/move/m.csv');
select isnt(pgtap_csv.job('pgtap/move/m.csv', 'g1'), null, 'inside the Storage transaction the new job exists');
rollback to savepoint before_move;
select results_eq(
  $$ select pgtap_csv.job('pgtap/move/m.csv', 'g1'), (select status::text from csv_import.jobs where id = pgtap_csv.job('pgtap/move/h.csv', 'g1')) $$,
  $$ values (null::bigint, 'registering') $$, 'a rolled-back move leaves no job and cancels nothing');

-- Every step above sent exactly one register request per new job.
select is(
  (select count(*)::int from csv_import.jobs j where j.object_name like 'pgtap/move/%' and j.object_version <> 'old'
     and pgtap_csv.requests(j.id) <> 1),
  0, 'one register request per registered job, none for metadata updates');

select * from finish();
rollback;
