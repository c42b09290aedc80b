-- The database presents its service key to the functions as hosted's gateway accepts it (migration
-- 20261205000000_prefix_function_names.sql): an opaque sb_secret_ key only as `apikey` (hosted refuses a
-- publishable or secret key in `Authorization: Bearer` unless it equals `apikey`,
-- supabase/supabase:apps/docs/content/guides/api/api-keys.mdx), a legacy JWT key as Bearer and apikey.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(6);

delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key', 'csv_import_internal_secret');
do $$ begin
  perform vault.create_secret('https://pipeline.test/', 'csv_import_api_url');
  perform vault.create_secret('sb_secret_pgtapKey0123456789', 'csv_import_service_key');
end $$;

select is((select url from csv_import.function_endpoint('register')),
  'https://pipeline.test/functions/v1/csv-import-register', 'the endpoint carries the prefixed name');
select is((select headers from csv_import.function_endpoint('register')),
  '{"Content-Type": "application/json", "apikey": "sb_secret_pgtapKey0123456789"}'::jsonb,
  'an sb_secret_ key is sent as apikey only');
select ok(not ((select headers from csv_import.function_endpoint('chunk')) ? 'Authorization'),
  'no Authorization header for an sb_ key, for any function');

-- What pg_net sends is what function_endpoint says.
create temp table pgtap_queue_before on commit drop as select coalesce(max(id), 0) as id from net.http_request_queue;
select isnt(csv_import.request_function('dispatch', '{"reason": "pgtap"}'), null, 'the request is queued');
select is((select headers from net.http_request_queue where id > (select id from pgtap_queue_before)),
  '{"Content-Type": "application/json", "apikey": "sb_secret_pgtapKey0123456789"}'::jsonb,
  'the queued request carries the sb_ key as apikey only');

-- A legacy JWT service key keeps both headers.
do $$ begin
  perform vault.update_secret((select id from vault.secrets where name = 'csv_import_service_key'),
    'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig');
end $$;
select is((select headers from csv_import.function_endpoint('register')),
  jsonb_build_object('Content-Type', 'application/json',
    'Authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig',
    'apikey', 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.sig'),
  'a legacy JWT key is sent as Bearer and apikey');

select * from finish();
rollback;
