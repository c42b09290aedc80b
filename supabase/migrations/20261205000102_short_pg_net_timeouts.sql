-- Short pg_net timeouts: a call that hangs holds up every request queued behind it for as long as its timeout.
--
-- What was wrong (platform-fidelity review row 9): every call used timeout_milliseconds := 60000. pg_net's worker
-- takes a batch of requests, waits for every one of them to finish or time out, then sleeps 1 s before the next batch
-- (supabase/pg_net src/worker.c; local-stack/pg_net/worker.ts does the same), so one slow dispatch delayed the
-- register calls queued with it by up to a minute.
--
-- Now request_function gives each pipeline function a timeout that fits what it does before it answers:
-- - dispatch: 5 s. It is a kick: dispatch answers as soon as it has taken the work and does the rest in the
--   background (EdgeRuntime.waitUntil), so an answer takes a cold start (about 1–2 s on hosted) at most. A kick that
--   times out costs nothing: the chunks stay ready and the next kick (csv-import-leases every 10 s, reconcile every
--   minute) dispatches them.
-- - register: 20 s. Register answers after planning the job (a HEAD and one range read of the object, describing the
--   target, one register_job transaction), a few seconds at normal Storage and database latencies, a cold start
--   included. A register cut off by the timeout is not lost: register_job is idempotent per job and reconcile
--   re-requests a registration that did not complete (register_after, at least 30 s later).
-- - anything else: 20 s, the same bound.
--
-- Replaces request_function of 20261204000200_create_registration.sql (same signature; the endpoint and headers come
-- from function_endpoint as redefined by 20261205000000_prefix_function_names.sql, unchanged).
-- Locks: none (pg_net queues the request). Not idempotent: each call queues a request.
-- Callers: request_registration (register), _kick_dispatch_if_ready, cancel_job and retry_job (dispatch).
create or replace function csv_import.request_timeout_ms(p_function_name text)
returns int
language sql immutable
set search_path = ''
as $$
  select case p_function_name when 'dispatch' then 5000 else 20000 end
$$;

create or replace function csv_import.request_function(p_function_name text, p_body jsonb)
returns bigint
language plpgsql security definer
set search_path = ''
as $$
declare
  v_endpoint record;
begin
  select * into v_endpoint from csv_import.function_endpoint(p_function_name);
  if v_endpoint.url is null then
    raise warning 'csv_import: Vault secrets csv_import_api_url / csv_import_service_key are missing; cannot call %',
      p_function_name;
    return null;
  end if;
  return net.http_post(url := v_endpoint.url, body := p_body, headers := v_endpoint.headers,
                       timeout_milliseconds := csv_import.request_timeout_ms(p_function_name));
end
$$;

revoke execute on function csv_import.request_timeout_ms(text), csv_import.request_function(text, jsonb)
  from public, anon, authenticated;
grant execute on function csv_import.request_timeout_ms(text), csv_import.request_function(text, jsonb) to service_role;
