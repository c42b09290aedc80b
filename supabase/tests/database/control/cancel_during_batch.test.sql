-- csv_import.cancel_job while a worker is inside a batch (two real sessions).
-- Expected: the cancel does not wait for the batch (stop_job takes the job row only); the batch is refused at
-- commit_batch and rolls back whole, so nothing is half-written; the worker hands its chunk back
-- (release_stopped_chunk: cancelled) and its next begin_batch answers 'stopped'.
--
-- Two sessions are needed, so the fixtures are committed through dblink in the pseudo-bucket 'pgtap-control' under
-- a random name and deleted at the end (and at the start, if an aborted run left any more than a minute ago).
begin;
create extension if not exists pgtap with schema extensions;
create extension if not exists dblink with schema extensions;
set local search_path = public, extensions;
select plan(8);
-- A second session is opened through dblink, by a password-checked route (see the fixture), or the file skips.
\ir ../_fixtures/dblink_route.psql
\if :dblink_ok

create schema pgtap_csv;
create table pgtap_csv.cfg as
  select format('host=%s port=%s dbname=%s user=postgres password=postgres application_name=pgtap_cancel options=-cstatement_timeout=30000',
                :'dblink_host', current_setting('port'), current_database()) as conn,
         'pgtap-control/' || md5(random()::text) || '.csv' as name,
         gen_random_uuid() as token;
create table pgtap_csv.outcome (step text primary key, result text);
create function pgtap_csv.remote(p_sql text) returns text language sql as $$
  select dblink_exec((select conn from pgtap_csv.cfg), p_sql)
$$;
create function pgtap_csv.job() returns bigint language sql stable as $$
  select id from csv_import.jobs where bucket_id = 'pgtap-control' and object_name = (select name from pgtap_csv.cfg)
$$;
create function pgtap_csv.chunk0() returns bigint language sql stable as $$
  select id from csv_import.chunks where job_id = pgtap_csv.job() and kind = 'load' and chunk_index = 0
$$;
create function pgtap_csv.cleanup(p_name text) returns void language plpgsql as $$
begin
  perform pgtap_csv.remote(format($r$
    do $x$ begin
      set local storage.allow_delete_query = 'true';
      delete from csv_import.jobs where bucket_id = 'pgtap-control'
        and (object_name = %1$L or (%1$L is null and created_at < now() - interval '1 minute'));
      delete from storage.objects where bucket_id = 'pgtap-control'
        and (name = %1$L or (%1$L is null and created_at < now() - interval '1 minute'));
      delete from storage.buckets b where id = 'pgtap-control' and not exists (select 1 from storage.objects o where o.bucket_id = b.id);
    end $x$ $r$, p_name));
end $$;

-- Fixtures: a job planned into 3 load chunks, load chunk 0 leased to "the worker", the others not due for an hour.
do $do$ begin
  perform pgtap_csv.cleanup(null);
  perform pgtap_csv.remote(format($$
    do $x$
    declare v_job bigint;
    begin
      set local client_min_messages = error;
      -- The stored object the job loads (a bucket no profile watches, so the job is made here by hand).
      insert into storage.buckets (id, name) values ('pgtap-control', 'pgtap-control') on conflict (id) do nothing;
      insert into storage.objects (bucket_id, name, version) values ('pgtap-control', %1$L, 'v1');
      insert into csv_import.jobs (bucket_id, object_name, object_version, object_size)
      values ('pgtap-control', %1$L, 'v1', 300) returning id into v_job;
      perform csv_import.register_job(v_job, '{"data_start": 0, "chunk_size": 100}');
      update csv_import.chunks set status = 'running', attempts = 1, lease_token = %2$L, lease_until = now() + interval '2 minutes'
      where job_id = v_job and kind = 'load' and chunk_index = 0;
      -- Keep the running pipeline's dispatcher away from the other (committed, so visible) chunks.
      update csv_import.chunks set available_at = now() + interval '1 hour' where job_id = v_job and status = 'pending';
    end $x$ $$, (select name from pgtap_csv.cfg), (select token from pgtap_csv.cfg)));
end $do$;

-- The race ------------------------------------------------------------------------------------------------------------
do $do$
declare
  v_conn text := (select conn from pgtap_csv.cfg);
  v_chunk bigint := pgtap_csv.chunk0();
  v_token uuid := (select token from pgtap_csv.cfg);
  v_result text;
  v_started timestamptz;
begin
  perform dblink_connect('pgtap_worker', v_conn);
  perform dblink_connect('pgtap_operator', v_conn);

  -- The worker opens batch 0 (and so holds the chunk's row lock).
  perform dblink_exec('pgtap_worker', 'begin');
  insert into pgtap_csv.outcome
  select 'begin_batch', r from dblink('pgtap_worker', format('select csv_import.begin_batch(%s, %L, 0)', v_chunk, v_token)) as t(r text);

  -- Meanwhile an operator cancels the job.
  perform dblink_exec('pgtap_operator', 'set client_min_messages = error');
  v_started := clock_timestamp();
  select r into v_result
  from dblink('pgtap_operator', format($$ select csv_import.cancel_job(%s, 'Stop it')::text $$, pgtap_csv.job())) as t(r text);
  insert into pgtap_csv.outcome values ('cancel', v_result),
    ('cancel_fast', (clock_timestamp() - v_started < interval '1 second')::text);

  -- The worker reaches the end of its batch (its rows would be written between begin_batch and commit_batch).
  select r into v_result
  from dblink('pgtap_worker', format($$ select csv_import.commit_batch(%s, %L, 0, 0, 60, 5, 4, 4, 0, '[]', false)::text $$,
                                     v_chunk, v_token), false) as t(r text);
  insert into pgtap_csv.outcome values ('commit_batch', coalesce(v_result, dblink_error_message('pgtap_worker')));
  insert into pgtap_csv.outcome values ('worker_rollback', dblink_exec('pgtap_worker', 'rollback', false));
  insert into pgtap_csv.outcome
  select 'release', r from dblink('pgtap_worker', format('select csv_import.release_stopped_chunk(%s, %L)', v_chunk, v_token))
    as t(r text);
  perform dblink_disconnect('pgtap_worker');
  perform dblink_disconnect('pgtap_operator');
end $do$;

select is((select result from pgtap_csv.outcome where step = 'begin_batch'), 'ok', 'the worker opened its batch');
select is((select result from pgtap_csv.outcome where step = 'cancel')::jsonb ->> 'status', 'cancelled',
  'the job was cancelled');
select is((select result from pgtap_csv.outcome where step = 'cancel_fast'), 'true',
  '… without waiting for the worker''s batch');
select is((select result from pgtap_csv.outcome where step = 'commit_batch'), '{"refused": "stopped"}',
  'the batch is refused at commit_batch (the worker rolls it back whole)');
select is((select result from pgtap_csv.outcome where step = 'release'), 'cancelled',
  'the worker hands its chunk back: cancelled');
select results_eq(
  $$ select j.status::text, j.error, c.status::text, c.batches_committed, c.rows_loaded
     from csv_import.jobs j join csv_import.chunks c on c.id = pgtap_csv.chunk0() where j.id = pgtap_csv.job() $$,
  $$ values ('cancelled', 'Stop it', 'cancelled', 0, 0::bigint) $$,
  'the job and the chunk are cancelled; nothing of the refused batch committed');
-- (asked through another session: this session's snapshot of the chunk row is what the fixtures left)
select is(
  (select r from dblink((select conn from pgtap_csv.cfg), format('select csv_import.begin_batch(%s, %L, 1)',
     pgtap_csv.chunk0(), (select token from pgtap_csv.cfg))) as t(r text)),
  'stopped', 'the worker''s next batch is refused: stopped');
select is(
  (select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job() and status in ('pending', 'running')), 0,
  'nothing of the job is left to dispatch');

do $do$ begin perform pgtap_csv.cleanup((select name from pgtap_csv.cfg)); end $do$;

\else
select skip(:'dblink_skip', 8);
\endif

select * from finish();
rollback;
