-- A new version of an object is uploaded while a worker is inside a batch of the old version's job.
-- Expected: the upload waits for the batch to commit (stop_job waits for the chunk's row lock), then the old job is
-- cancelled and the new version registered; neither session deadlocks, and nothing is silently dropped (the
-- trigger swallows errors, so a deadlock there would lose the new version's registration without a trace).
--
-- Two real sessions are needed, so the fixtures are committed through dblink under a random name and deleted at
-- the end (and at the start, if an aborted run left any more than a minute ago).
begin;
create extension if not exists pgtap with schema extensions;
create extension if not exists dblink with schema extensions;
set local search_path = public, extensions;
select plan(8);

create schema pgtap_csv;
create table pgtap_csv.cfg as
  select format('host=127.0.0.1 port=%s dbname=%s user=postgres password=postgres application_name=pgtap_supersede options=-cstatement_timeout=30000',
                current_setting('port'), current_database()) as conn,
         'pgtap-concurrency/' || md5(random()::text) || '.csv' as name,
         gen_random_uuid() as token,
         exists (select 1 from storage.buckets where id = 'csv-uploads') as bucket_existed;
create table pgtap_csv.outcome (step text primary key, result text);
create function pgtap_csv.remote(p_sql text) returns text language sql as $$
  select dblink_exec((select conn from pgtap_csv.cfg), p_sql)
$$;
create function pgtap_csv.job(p_version text) returns bigint language sql stable as $$
  select id from csv_import.jobs
  where bucket_id = 'csv-uploads' and object_name = (select name from pgtap_csv.cfg) and object_version = p_version
$$;
-- Deletes this run's committed fixtures (p_name), or those an aborted run left (p_name null), and the bucket if this
-- run created it and it is empty.
create function pgtap_csv.cleanup(p_name text) returns void language plpgsql as $$
begin
  perform pgtap_csv.remote(format($r$
    do $x$ begin
      set local storage.allow_delete_query = 'true';
      set local client_min_messages = error;
      delete from storage.objects where bucket_id = 'csv-uploads' and name like 'pgtap-concurrency/%%'
        and (name = %1$L or (%1$L is null and created_at < now() - interval '1 minute'));
      delete from csv_import.jobs where bucket_id = 'csv-uploads' and object_name like 'pgtap-concurrency/%%'
        and (object_name = %1$L or (%1$L is null and created_at < now() - interval '1 minute'));
      if %1$L is not null and not %2$L then
        delete from storage.buckets b where id = 'csv-uploads'
          and not exists (select 1 from storage.objects o where o.bucket_id = b.id);
      end if;
    end $x$ $r$, p_name, (select bucket_existed from pgtap_csv.cfg)));
end $$;

-- Fixtures: the object (v1), its job planned into 3 load chunks, load chunk 0 leased to "the worker".
do $do$ begin
  perform pgtap_csv.cleanup(null);
  perform pgtap_csv.remote(format($$
    do $x$
    declare v_job bigint;
    begin
      set local client_min_messages = error;
      insert into storage.buckets (id, name) values ('csv-uploads', 'csv-uploads') on conflict (id) do nothing;
      insert into storage.objects (bucket_id, name, version, metadata) values ('csv-uploads', %1$L, 'v1', '{"size": 300}');
      select id into v_job from csv_import.jobs where bucket_id = 'csv-uploads' and object_name = %1$L;
      perform csv_import.register_job(v_job, '{"data_start": 0, "chunk_size": 100}');
      update csv_import.chunks set status = 'running', attempts = 1, lease_token = %2$L, lease_until = now() + interval '2 minutes'
      where job_id = v_job and kind = 'load' and chunk_index = 0;
    end $x$ $$, (select name from pgtap_csv.cfg), (select token from pgtap_csv.cfg)));
end $do$;

-- The race ------------------------------------------------------------------------------------------------------------
do $do$
declare
  v_conn text := (select conn from pgtap_csv.cfg);
  v_chunk bigint := (select id from csv_import.chunks where job_id = pgtap_csv.job('v1') and kind = 'load' and chunk_index = 0);
  v_token uuid := (select token from pgtap_csv.cfg);
  v_uploader int;
  v_result text;
  i int := 0;
begin
  perform dblink_connect('pgtap_worker', v_conn);
  perform dblink_connect('pgtap_uploader', v_conn);
  v_uploader := (select pid from dblink('pgtap_uploader', 'select pg_backend_pid()') as t(pid int));

  -- The worker opens batch 0 (and so holds the chunk's row lock).
  perform dblink_exec('pgtap_worker', 'begin');
  insert into pgtap_csv.outcome
  select 'begin_batch', r from dblink('pgtap_worker', format('select csv_import.begin_batch(%s, %L, 0)', v_chunk, v_token)) as t(r text);

  -- Meanwhile the Storage API writes version 2 of the object.
  perform dblink_exec('pgtap_uploader', 'set client_min_messages = error');
  perform dblink_send_query('pgtap_uploader', format(
    $$ update storage.objects set version = 'v2', metadata = '{"size": 400}' where bucket_id = 'csv-uploads' and name = %L $$,
    (select name from pgtap_csv.cfg)));
  while not exists (select 1 from pg_locks where pid = v_uploader and not granted) and i < 200 loop
    perform pg_sleep(0.025);
    i := i + 1;
  end loop;
  insert into pgtap_csv.outcome values ('uploader_waited', (i < 200)::text);

  -- The worker commits its batch (its rows would be written between begin_batch and commit_batch).
  select r into v_result
  from dblink('pgtap_worker', format($$ select csv_import.commit_batch(%s, %L, 0, 0, 60, 5, 4, 4, 0, '[]', false)::text $$,
                                     v_chunk, v_token), false) as t(r text);
  insert into pgtap_csv.outcome values ('commit_batch', coalesce(v_result, dblink_error_message('pgtap_worker')));
  insert into pgtap_csv.outcome values ('worker_commit', dblink_exec('pgtap_worker', 'commit', false));
  select status into v_result from dblink_get_result('pgtap_uploader', false) as t(status text);
  insert into pgtap_csv.outcome values ('upload', coalesce(v_result, dblink_error_message('pgtap_uploader')));
  perform dblink_disconnect('pgtap_worker');
  perform dblink_disconnect('pgtap_uploader');
end $do$;

select is((select result from pgtap_csv.outcome where step = 'begin_batch'), 'ok', 'the worker opened its batch');
select is((select result from pgtap_csv.outcome where step = 'uploader_waited'), 'true',
  'the new version''s upload waited for the worker''s batch');
select is((select result from pgtap_csv.outcome where step = 'commit_batch'), '{"job_status": "queued", "job_finished": false}',
  'the batch committed (no deadlock with the waiting upload)');
select is((select result from pgtap_csv.outcome where step = 'worker_commit'), 'COMMIT', '… and its transaction too');
select is((select result from pgtap_csv.outcome where step = 'upload'), 'UPDATE 1', 'the upload succeeded');
select results_eq(
  $$ select status::text, superseded_by, (select batches_committed from csv_import.chunks c
                                          where c.job_id = j.id and c.kind = 'load' and c.chunk_index = 0)
     from csv_import.jobs j where id = pgtap_csv.job('v1') $$,
  $$ values ('cancelled', pgtap_csv.job('v2'), 1) $$,
  'the old job is cancelled and superseded, keeping the batch that committed');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('v2')), 'registering',
  'the new version is registered');
-- (asked through another session: begin_batch's row lock, held here until rollback, would block the cleanup)
select is(
  (select r from dblink((select conn from pgtap_csv.cfg), format('select csv_import.begin_batch(%s, %L, 1)',
     (select id from csv_import.chunks where job_id = pgtap_csv.job('v1') and kind = 'load' and chunk_index = 0),
     (select token from pgtap_csv.cfg))) as t(r text)),
  'stopped', 'the worker''s next batch is refused');

do $do$ begin perform pgtap_csv.cleanup((select name from pgtap_csv.cfg)); end $do$;

select * from finish();
rollback;
