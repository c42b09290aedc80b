-- A new version of an object is uploaded while a worker is inside a batch of the old version's job (issue 10, D1:
-- the upload used to wait for the batch, Storage gave up after a few seconds, the stop was swallowed and the old
-- job went on to load the new version's bytes).
-- Expected, A (the batch is still writing): the upload does not wait; it cancels the old job (superseded) and
-- registers the new version; the batch is refused at commit_batch and rolls back; the next batch is refused.
-- Expected, B (the batch already updated the job row and does not commit for longer than the trigger's lock
-- timeout): the upload still succeeds within ~2 s with the new version registered; the old job's batches are
-- refused ('superseded') from then on, and reconcile stops it.
--
-- Two real sessions are needed, so the fixtures are committed through dblink under a random name and deleted at
-- the end (and at the start, if an aborted run left any more than a minute ago).
begin;
create extension if not exists pgtap with schema extensions;
create extension if not exists dblink with schema extensions;
set local search_path = public, extensions;
select plan(13);
-- A second session is opened through dblink, by a password-checked route (see the fixture), or the file skips.
\ir ../_fixtures/dblink_route.psql
\if :dblink_ok

create schema pgtap_csv;
create table pgtap_csv.cfg as
  select format('host=%s port=%s dbname=%s user=postgres password=postgres application_name=pgtap_supersede options=-cstatement_timeout=30000',
                :'dblink_host', current_setting('port'), current_database()) as conn,
         'pgtap-concurrency/' || md5(random()::text) || '.csv' as name,
         'pgtap-concurrency/' || md5(random()::text) || '-b.csv' as name_b,
         gen_random_uuid() as token,
         exists (select 1 from storage.buckets where id = 'csv-uploads') as bucket_existed;
create table pgtap_csv.outcome (step text primary key, result text);
create function pgtap_csv.remote(p_sql text) returns text language sql as $$
  select dblink_exec((select conn from pgtap_csv.cfg), p_sql)
$$;
create function pgtap_csv.job(p_version text, p_name text default null) returns bigint language sql stable as $$
  select id from csv_import.jobs
  where bucket_id = 'csv-uploads' and object_name = coalesce(p_name, (select name from pgtap_csv.cfg))
    and object_version = p_version
$$;
create function pgtap_csv.chunk0(p_version text, p_name text default null) returns bigint language sql stable as $$
  select id from csv_import.chunks where job_id = pgtap_csv.job(p_version, p_name) and kind = 'load' and chunk_index = 0
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
        and (name in (%1$L, %3$L) or (%1$L is null and created_at < now() - interval '1 minute'));
      delete from csv_import.jobs where bucket_id = 'csv-uploads' and object_name like 'pgtap-concurrency/%%'
        and (object_name in (%1$L, %3$L) or (%1$L is null and created_at < now() - interval '1 minute'));
      if %1$L is not null and not %2$L then
        delete from storage.buckets b where id = 'csv-uploads'
          and not exists (select 1 from storage.objects o where o.bucket_id = b.id);
      end if;
    end $x$ $r$, p_name, (select bucket_existed from pgtap_csv.cfg), (select name_b from pgtap_csv.cfg)));
end $$;

-- Fixtures: each object (v1), its job planned into 3 load chunks, load chunk 0 leased to "the worker".
do $do$
declare
  v_name text;
begin
  perform pgtap_csv.cleanup(null);
  foreach v_name in array array[(select name from pgtap_csv.cfg), (select name_b from pgtap_csv.cfg)] loop
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
      end $x$ $$, v_name, (select token from pgtap_csv.cfg)));
  end loop;
end $do$;

-- A: the upload comes while the batch is writing ------------------------------------------------------------------------
do $do$
declare
  v_conn text := (select conn from pgtap_csv.cfg);
  v_chunk bigint := pgtap_csv.chunk0('v1');
  v_token uuid := (select token from pgtap_csv.cfg);
  v_result text;
  v_started timestamptz;
begin
  perform dblink_connect('pgtap_worker', v_conn);
  perform dblink_connect('pgtap_uploader', v_conn);
  -- The worker opens batch 0 (and so holds the chunk's row lock).
  perform dblink_exec('pgtap_worker', 'begin');
  insert into pgtap_csv.outcome
  select 'a_begin_batch', r from dblink('pgtap_worker', format('select csv_import.begin_batch(%s, %L, 0)', v_chunk, v_token)) as t(r text);
  -- Meanwhile the Storage API writes version 2 of the object.
  perform dblink_exec('pgtap_uploader', 'set client_min_messages = error');
  v_started := clock_timestamp();
  select r into v_result from dblink('pgtap_uploader', format(
    $$ update storage.objects set version = 'v2', metadata = '{"size": 400}' where bucket_id = 'csv-uploads' and name = %L $$,
    (select name from pgtap_csv.cfg)), false) as t(r text);
  insert into pgtap_csv.outcome values ('a_upload', dblink_error_message('pgtap_uploader')),
    ('a_upload_fast', (clock_timestamp() - v_started < interval '1 second')::text);
  -- The worker reaches the end of its batch.
  select r into v_result
  from dblink('pgtap_worker', format($$ select csv_import.commit_batch(%s, %L, 0, 0, 60, 5, 4, 4, 0, '[]', false)::text $$,
                                     v_chunk, v_token), false) as t(r text);
  insert into pgtap_csv.outcome values ('a_commit_batch', coalesce(v_result, dblink_error_message('pgtap_worker')));
  insert into pgtap_csv.outcome values ('a_worker_rollback', dblink_exec('pgtap_worker', 'rollback', false));
  perform dblink_disconnect('pgtap_worker');
  perform dblink_disconnect('pgtap_uploader');
end $do$;

select is((select result from pgtap_csv.outcome where step = 'a_begin_batch'), 'ok', 'A: the worker opened its batch');
select is((select result from pgtap_csv.outcome where step = 'a_upload'), 'OK', 'A: the upload succeeded');
select is((select result from pgtap_csv.outcome where step = 'a_upload_fast'), 'true',
  'A: … without waiting for the worker''s batch');
select is((select result from pgtap_csv.outcome where step = 'a_commit_batch'), '{"refused": "stopped"}',
  'A: the batch is refused at commit (the caller rolls it back)');
select results_eq(
  $$ select status::text, superseded_by, error, (select batches_committed from csv_import.chunks c where c.id = pgtap_csv.chunk0('v1'))
     from csv_import.jobs j where id = pgtap_csv.job('v1') $$,
  $$ values ('cancelled', pgtap_csv.job('v2'),
             format('Superseded by a newer version of %s (job %s)', (select name from pgtap_csv.cfg), pgtap_csv.job('v2')), 0) $$,
  'A: the old job is cancelled and superseded, and nothing of the refused batch committed');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('v2')), 'registering',
  'A: the new version is registered');
-- (asked through another session, as a worker would)
select is(
  (select r from dblink((select conn from pgtap_csv.cfg), format('select csv_import.begin_batch(%s, %L, 0)',
     pgtap_csv.chunk0('v1'), (select token from pgtap_csv.cfg))) as t(r text)),
  'stopped', 'A: the worker''s next batch is refused');

-- B: the batch holds the job row past the trigger's lock timeout -------------------------------------------------------
do $do$
declare
  v_conn text := (select conn from pgtap_csv.cfg);
  v_name text := (select name_b from pgtap_csv.cfg);
  v_chunk bigint := pgtap_csv.chunk0('v1', (select name_b from pgtap_csv.cfg));
  v_token uuid := (select token from pgtap_csv.cfg);
  v_result text;
  v_started timestamptz;
begin
  perform dblink_connect('pgtap_worker', v_conn);
  perform dblink_connect('pgtap_uploader', v_conn);
  perform dblink_exec('pgtap_worker', 'begin');
  perform * from dblink('pgtap_worker', format('select csv_import.begin_batch(%s, %L, 0)', v_chunk, v_token)) as t(r text);
  select r into v_result
  from dblink('pgtap_worker', format($$ select csv_import.commit_batch(%s, %L, 0, 0, 60, 5, 4, 4, 0, '[]', false)::text $$,
                                     v_chunk, v_token)) as t(r text);
  insert into pgtap_csv.outcome values ('b_commit_batch', v_result);
  -- The worker does not commit yet (frozen, or a slow deferred trigger): the upload comes.
  perform dblink_exec('pgtap_uploader', 'set client_min_messages = error');
  v_started := clock_timestamp();
  perform * from dblink('pgtap_uploader', format(
    $$ update storage.objects set version = 'v2', metadata = '{"size": 400}' where bucket_id = 'csv-uploads' and name = %L returning 1 $$,
    v_name)) as t(r int);
  insert into pgtap_csv.outcome values ('b_upload_bounded',
    (clock_timestamp() - v_started between interval '1.5 seconds' and interval '4 seconds')::text);
  insert into pgtap_csv.outcome values ('b_worker_commit', dblink_exec('pgtap_worker', 'commit', false));
  insert into pgtap_csv.outcome
  select 'b_next_batch', r from dblink('pgtap_worker', format('select csv_import.begin_batch(%s, %L, 1)', v_chunk, v_token)) as t(r text);
  perform dblink_disconnect('pgtap_worker');
  perform dblink_disconnect('pgtap_uploader');
end $do$;

select is((select result::jsonb ->> 'job_finished' from pgtap_csv.outcome where step = 'b_commit_batch'), 'false',
  'B: the batch reached commit_batch (it holds the job row)');
select is((select result from pgtap_csv.outcome where step = 'b_upload_bounded'), 'true',
  'B: the upload waited for the job row only up to the trigger''s lock timeout (2 s)');
select results_eq(
  $$ select status in ('queued', 'running'), (select batches_committed from csv_import.chunks c where c.id = pgtap_csv.chunk0('v1', (select name_b from pgtap_csv.cfg)))
     from csv_import.jobs j where id = pgtap_csv.job('v1', (select name_b from pgtap_csv.cfg)) $$,
  $$ values (true, 1) $$,
  'B: the old job could not be stopped then; its batch (read from its own version) committed');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('v2', (select name_b from pgtap_csv.cfg))),
  'registering', 'B: the new version is registered all the same');
select is((select result from pgtap_csv.outcome where step = 'b_next_batch'), 'superseded',
  'B: the old job''s next batch is refused: its object holds another version');
select is(
  (select r from dblink((select conn from pgtap_csv.cfg), $$
     select csv_import._stop_stale_jobs()::text $$) as t(r text)) || ' ' ||
  (select r from dblink((select conn from pgtap_csv.cfg), $$
     select status::text || ' ' || coalesce(superseded_by::text, '-') from csv_import.jobs
     where object_name = $$ || quote_literal((select name_b from pgtap_csv.cfg)) || $$ and object_version = 'v1' $$) as t(r text)),
  format('1 cancelled %s', pgtap_csv.job('v2', (select name_b from pgtap_csv.cfg))),
  'B: reconcile stops it as superseded by the new version''s job');

do $do$ begin perform pgtap_csv.cleanup((select name from pgtap_csv.cfg)); end $do$;

\else
select skip(:'dblink_skip', 13);
\endif

select * from finish();
rollback;
