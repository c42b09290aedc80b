-- The pipeline's Edge Functions are deployed under one prefix, csv-import-register, csv-import-chunk,
-- csv-import-dispatch and csv-import-health, so that deploying the pipeline into a project cannot collide with or
-- overwrite the project's own functions (a user's `register` or `health`). Callers keep naming the role
-- (request_function('register', …)); the endpoint adds the prefix. The TypeScript twin of the names is
-- supabase/functions/_shared/pipeline/function_names.ts.
--
-- Also: a new-style key (sb_secret_…) is sent only as `apikey`. Hosted Supabase refuses a publishable or secret key
-- in `Authorization: Bearer …` unless it equals the `apikey` header, and then passes the request on to be refused
-- as "not a JWT" (https://supabase.com/docs/guides/api/api-keys). A legacy JWT service key keeps both headers.
--
-- Replaces function_endpoint of 20261204000200_create_registration.sql. Reads Vault only; locks nothing;
-- idempotent. Caller: request_function.
create or replace function csv_import.function_endpoint(p_function_name text, out url text, out headers jsonb)
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_api_url text;
  v_key text;
  v_internal text;
begin
  select decrypted_secret into v_api_url from vault.decrypted_secrets where name = 'csv_import_api_url';
  select decrypted_secret into v_key from vault.decrypted_secrets where name = 'csv_import_service_key';
  select decrypted_secret into v_internal from vault.decrypted_secrets where name = 'csv_import_internal_secret';
  if v_api_url is null or (v_key is null and v_internal is null) then
    url := null;
    headers := null;
    return;
  end if;
  url := rtrim(v_api_url, '/') || '/functions/v1/csv-import-' || p_function_name;
  if v_internal is not null then
    headers := jsonb_build_object('Content-Type', 'application/json', 'x-pipeline-secret', v_internal);
  elsif v_key like 'sb\_%' then
    headers := jsonb_build_object('Content-Type', 'application/json', 'apikey', v_key);
  else
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_key,
                                  'apikey', v_key);
  end if;
end
$$;
