-- Registration without the Vault endpoint secrets: the upload succeeds, the job exists and explains itself.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(6);

insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict (id) do nothing;
delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key');
create temp table pgtap_queue_before on commit drop as select coalesce(max(id), 0) as id from net.http_request_queue;

select lives_ok(
  $$ insert into storage.objects (bucket_id, name, owner_id, version, metadata)
     values ('csv-uploads', 'pgtap/no-vault.csv', '22222222-2222-4222-8222-222222222222', 'v1', '{"size": 99}') $$,
  'the upload does not fail when Vault lacks the pipeline secrets');

select results_eq(
  $$ select status::text, object_size, register_attempts, error from csv_import.jobs
     where bucket_id = 'csv-uploads' and object_name = 'pgtap/no-vault.csv' $$,
  $$ values ('registering', 99::bigint, 1,
             'Waiting for the pipeline to be configured: Vault secrets csv_import_api_url and csv_import_service_key are missing') $$,
  'the job is created, and its error names the missing secrets');

select is_empty(
  $$ select 1 from net.http_request_queue where id > (select id from pgtap_queue_before) $$,
  'no request is queued');

select results_eq($$ select url, headers from csv_import.function_endpoint('register') $$,
  $$ values (null::text, null::jsonb) $$, 'function_endpoint returns nulls');
select is(csv_import.request_function('register', '{}'), null, 'request_function returns null');

-- Only one secret present is still "missing".
do $$ begin perform vault.create_secret('https://pipeline.test', 'csv_import_api_url'); end $$;
select is((select url from csv_import.function_endpoint('register')), null, 'one secret alone is not enough');

select * from finish();
rollback;
