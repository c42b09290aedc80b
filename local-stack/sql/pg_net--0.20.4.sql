-- Local only, never deployed: the install script of the pg_net stand-in extension (supabase/pg_net 0.20.4,
-- sql/pg_net.sql), which is not packaged for this machine. local-stack/postgres.sh copies it and pg_net.control
-- into the server's extension folder; the migration 20261203000000_enable_platform_extensions.sql creates it
-- (`create extension pg_net with schema extensions`), as on hosted. Same schema, tables, types, signatures,
-- defaults and grants as pg_net's own script (../shared/reference/supabase-platform.md §2); the C functions are
-- SQL here, and the requests themselves are performed by the stack's worker (local-stack/pg_net/worker.ts), which
-- only ever sees committed queue rows — so, exactly like pg_net, a request is sent only after the enqueuing
-- transaction commits, and never when it rolls back.
--
-- Invariants:
-- - Runs as an extension script (objects owned by the bootstrap superuser, as supautils creates pg_net on
--   hosted); the Supabase image's after-create grants are applied by platform.sql's event trigger.
-- - net.http_request_queue and net._http_response are UNLOGGED, as in pg_net.
-- - net.wake() sends NOTIFY net_wake, which Postgres delivers only at commit: the wake-up is transactional too.

create schema if not exists net;

create domain net.http_method as text check (value ilike 'get' or value ilike 'post' or value ilike 'delete');

create unlogged table net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb,
  body bytea,
  timeout_milliseconds int not null
);

create unlogged table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out bool,
  error_msg text,
  created timestamptz not null default now()
);
create index on net._http_response (created);

-- Percent-encodes a string (UTF-8 bytes; unreserved characters kept), as pg_net's _urlencode_string does.
create or replace function net._urlencode_string(string varchar) returns text
language sql immutable strict
set search_path = ''
as $$
  select coalesce(string_agg(
    case when b between 48 and 57 or b between 65 and 90 or b between 97 and 122 or b in (45, 46, 95, 126)
      then chr(b) else '%' || upper(lpad(to_hex(b), 2, '0')) end, '' order by i), '')
  from (select i, get_byte(convert_to(string, 'UTF8'), i) as b
        from generate_series(0, octet_length(convert_to(string, 'UTF8')) - 1) as i) as bytes
$$;

-- Appends already-encoded key=value pairs to a URL.
create or replace function net._encode_url_with_params_array(url text, params_array text[]) returns text
language sql immutable strict
set search_path = ''
as $$
  select case when cardinality(params_array) = 0 then url
    else url || case when strpos(url, '?') > 0 then '&' else '?' end || array_to_string(params_array, '&') end
$$;

create or replace function net._params_array(params jsonb) returns text[]
language sql immutable
set search_path = ''
as $$
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
  from jsonb_each_text(coalesce(params, '{}'::jsonb))
$$;

-- Wakes the worker; the notification is delivered when the calling transaction commits.
create or replace function net.wake() returns void
language sql
set search_path = ''
as $$ select pg_notify('net_wake', '') $$;

create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql volatile
set search_path = ''
as $$
declare request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._encode_url_with_params_array(url, net._params_array(params)), headers, timeout_milliseconds)
  returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;

create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
) returns bigint
language plpgsql volatile
set search_path = ''
as $$
declare
  request_id bigint;
  content_type text;
begin
  select value into content_type from jsonb_each_text(coalesce(headers, '{}'::jsonb))
  where lower(key) = 'content-type' limit 1;
  if content_type is null then
    headers := coalesce(headers, '{}'::jsonb) || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._encode_url_with_params_array(url, net._params_array(params)), headers,
          convert_to(body::text, 'UTF8'), timeout_milliseconds)
  returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;

create or replace function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000,
  body jsonb default null
) returns bigint
language plpgsql volatile
set search_path = ''
as $$
declare request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('DELETE', net._encode_url_with_params_array(url, net._params_array(params)), headers,
          case when body is null then null else convert_to(body::text, 'UTF8') end, timeout_milliseconds)
  returning id into request_id;
  perform net.wake();
  return request_id;
end
$$;

-- True when the stack's worker is connected (it sets application_name = 'pg_net worker', like pg_net's).
create or replace function net.check_worker_is_up() returns void
language plpgsql
set search_path = ''
as $$
begin
  if not exists (select 1 from pg_catalog.pg_stat_activity where application_name = 'pg_net worker') then
    raise exception 'the pg_net background worker is not up';
  end if;
end
$$;

create or replace function net.worker_restart() returns bool
language sql
set search_path = ''
as $$ select pg_notify('net_worker_restart', '') is not null or true $$;

-- Blocks until a request has its response (pg_net: net._await_response).
create or replace function net._await_response(request_id bigint) returns bool
language plpgsql
as $$
declare rec net._http_response;
begin
  while rec is null loop
    select * into rec from net._http_response where id = request_id;
    if rec is null then
      perform pg_sleep(0.05);
    end if;
  end loop;
  return true;
end
$$;

-- Waits until the worker is connected (pg_net: net.wait_until_running, a C function).
create or replace function net.wait_until_running() returns void
language plpgsql
set search_path = ''
as $$
begin
  while not exists (select 1 from pg_catalog.pg_stat_activity where application_name = 'pg_net worker') loop
    perform pg_catalog.pg_sleep(0.05);
  end loop;
end
$$;

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');
create type net.http_response as (status_code integer, headers jsonb, body text);
create type net.http_response_result as (status net.request_status, message text, response net.http_response);

create or replace function net._http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
as $$
declare rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;
  select * into rec from net._http_response where id = request_id;
  if rec is null or rec.error_msg is not null then
    return ('ERROR', coalesce(rec.error_msg, 'request matching request_id not found'), null)::net.http_response_result;
  end if;
  return ('SUCCESS', 'ok', (rec.status_code, rec.headers, rec.content)::net.http_response)::net.http_response_result;
end
$$;

create or replace function net.http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  return net._http_collect_response(request_id, async);
end
$$;

-- pg_net's own grants (sql/pg_net.sql): everyone may use the schema and its tables.
grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;
