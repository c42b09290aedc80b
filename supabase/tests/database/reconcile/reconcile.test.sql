-- csv_import.reconcile: expired leases, registration re-kicks, finalization, roll-up, dispatch kicks, pruning.
--
-- reconcile() works on the whole database, so this file first hides every other job, and every stored object (which
-- would otherwise be registered as an orphan), for the length of its transaction (the deletes are rolled back with
-- everything else).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(26);

delete from csv_import.jobs;
set local storage.allow_delete_query = 'true';
delete from storage.objects;
delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key');
do $$ begin
  perform vault.create_secret('https://pipeline.test', 'csv_import_api_url');
  perform vault.create_secret('test-service-key', 'csv_import_service_key');
end $$;

\ir ../_fixtures/jobs.psql
create table pgtap_csv.queue_mark (id bigint);
create function pgtap_csv.mark_queue() returns void language sql as $$
  delete from pgtap_csv.queue_mark;
  insert into pgtap_csv.queue_mark select coalesce(max(id), 0) from net.http_request_queue;
$$;
-- Requests queued since the last mark.
create function pgtap_csv.new_requests() returns table (url text, body jsonb) language sql as $$
  -- (only this test's: the running stack's pg_cron jobs queue requests to its own URL meanwhile)
  select url, convert_from(body, 'UTF8')::jsonb from net.http_request_queue
  where id > (select id from pgtap_csv.queue_mark) and url like 'https://pipeline.test/%' order by id
$$;
create function pgtap_csv.registering(p_name text, p_attempts int, p_after interval, p_error text default null)
returns void language sql as $$
  -- The object is stored (its trigger creates the job and queues a request, dropped here), then the job is set
  -- to the registration state under test.
  insert into storage.objects (bucket_id, name, version, metadata)
  values ('csv-uploads', 'pgtap/' || p_name || '.csv', 'v1', '{"size": 100, "eTag": "\"r\""}');
  update csv_import.jobs set register_attempts = p_attempts, register_after = now() + p_after, error = p_error
  where bucket_id = 'csv-uploads' and object_name = 'pgtap/' || p_name || '.csv';
  delete from net.http_request_queue q using csv_import.jobs j
  where j.object_name = 'pgtap/' || p_name || '.csv' and convert_from(q.body, 'UTF8')::jsonb = jsonb_build_object('job_id', j.id);
  insert into pgtap_csv.jobs select p_name, id from csv_import.jobs where object_name = 'pgtap/' || p_name || '.csv'
$$;
create table pgtap_csv.summaries (step text primary key, summary jsonb);
create function pgtap_csv.reconcile(p_step text) returns jsonb language sql as $$
  insert into pgtap_csv.summaries values (p_step, csv_import.reconcile()) returning summary
$$;

-- Nothing to do -------------------------------------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.mark_queue(); end $$;
select is(pgtap_csv.reconcile('idle'),
  '{"expired_leases": 0, "registrations_requested": 0, "registrations_failed": 0, "orphans_registered": 0, "stale_jobs_stopped": 0, "jobs_finalized": 0, "dispatch_kicked": false}',
  'an idle pipeline: the summary is all zeros');
select is_empty($$ select * from pgtap_csv.new_requests() $$, 'no request is sent');

-- Expired leases ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('EXPIRED', 100, 0, 100, '{"max_attempts": 3}');
  perform pgtap_csv.lease('EXPIRED', 'load', 0);
  perform pgtap_csv.plan_job('LAST-ATTEMPT', 100, 0, 100, '{"max_attempts": 2}');
  perform pgtap_csv.lease('LAST-ATTEMPT', 'load', 0);
  update csv_import.chunks set attempts = 2 where id = pgtap_csv.chunk('LAST-ATTEMPT', 'load', 0);
  update csv_import.chunks set lease_until = now() - interval '1 second'
  where id in (pgtap_csv.chunk('EXPIRED', 'load', 0), pgtap_csv.chunk('LAST-ATTEMPT', 'load', 0));
  perform pgtap_csv.plan_job('LEASED', 100, 0, 100);
  perform pgtap_csv.lease('LEASED', 'load', 0);
  -- A job whose only pending chunk waits for a running scan: nothing is ready.
  perform pgtap_csv.plan_job('WAITING', 200, 0, 100);
  perform pgtap_csv.lease('WAITING', 'scan', 0);
  perform pgtap_csv.lease('WAITING', 'load', 0);
  -- Live leases by the wall clock, which reclaim_expired_leases compares with: the fixture's lease runs from the
  -- transaction's start, and hiding every other job above can take longer than that on a database with many.
  update csv_import.chunks set lease_until = clock_timestamp() + interval '10 minutes'
  where id in (pgtap_csv.chunk('LEASED', 'load', 0), pgtap_csv.chunk('WAITING', 'scan', 0),
               pgtap_csv.chunk('WAITING', 'load', 0));
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('leases'),
  '{"expired_leases": 2, "registrations_requested": 0, "registrations_failed": 0, "orphans_registered": 0, "stale_jobs_stopped": 0, "jobs_finalized": 0, "dispatch_kicked": true}',
  'two expired leases; the requeued chunk is ready at once, so dispatch is kicked');
select results_eq(
  $$ select status::text, attempts, lease_token, last_error from csv_import.chunks where id = pgtap_csv.chunk('EXPIRED', 'load', 0) $$,
  $$ values ('pending', 1, null::uuid, 'Lease expired: the worker stopped before finishing the chunk (attempt 1 of 3)') $$,
  'an expired lease is requeued, the attempt it used counted');
select ok((select available_at <= now() from csv_import.chunks where id = pgtap_csv.chunk('EXPIRED', 'load', 0)),
  '… ready at once (the expired lease was the wait; reported failures keep their backoff)');
select results_eq(
  $$ select c.status::text, j.status::text, j.error from csv_import.chunks c join csv_import.jobs j on j.id = c.job_id
     where c.id = pgtap_csv.chunk('LAST-ATTEMPT', 'load', 0) $$,
  $$ values ('dead', 'failed',
             'Chunk 0 (load, bytes 0–100) failed: Lease expired: the worker stopped before finishing the chunk (attempt 2 of 2)') $$,
  'an expired lease at the last attempt is dead-lettered and its job fails');
select is((select status::text from csv_import.chunks where id = pgtap_csv.chunk('LEASED', 'load', 0)), 'running',
  'a live lease is left alone');
select results_eq($$ select * from pgtap_csv.new_requests() $$,
  $$ values ('https://pipeline.test/functions/v1/csv-import-dispatch', '{"reason": "reconcile"}'::jsonb) $$, 'one dispatch request');
-- The requeued chunk is not the subject of what follows: it waits out a backoff from here on.
update csv_import.chunks set available_at = now() + interval '1 hour' where id = pgtap_csv.chunk('EXPIRED', 'load', 0);

-- Registrations ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.registering('R-DUE', 1, interval '-1 second');
  perform pgtap_csv.registering('R-NOT-DUE', 1, interval '10 seconds');
  perform pgtap_csv.registering('R-FOURTH', 4, interval '-1 second');
  perform pgtap_csv.registering('R-GIVE-UP', 5, interval '-1 second');
  perform pgtap_csv.registering('R-GIVE-UP-ERROR', 5, interval '-1 second', 'Storage timed out (HTTP 504)');
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('registrations'),
  '{"expired_leases": 0, "registrations_requested": 2, "registrations_failed": 2, "orphans_registered": 0, "stale_jobs_stopped": 0, "jobs_finalized": 0, "dispatch_kicked": false}',
  'due registrations are re-requested or, after 5 attempts, failed');
-- A set: the reconciler takes due jobs in no particular order (heap order varied between runs).
select set_eq($$ select * from pgtap_csv.new_requests() $$,
  $$ values ('https://pipeline.test/functions/v1/csv-import-register', jsonb_build_object('job_id', pgtap_csv.job('R-DUE'))),
            ('https://pipeline.test/functions/v1/csv-import-register', jsonb_build_object('job_id', pgtap_csv.job('R-FOURTH'))) $$,
  'one register request per due job');
select results_eq(
  $$ select status::text, register_attempts, register_after from csv_import.jobs where id = pgtap_csv.job('R-DUE') $$,
  $$ values ('registering', 2, now() + interval '30 seconds') $$,
  'a re-requested job counts the attempt and waits at least 30 s for the next one');
select ok((select register_after between now() + interval '40 seconds' and now() + interval '80 seconds'
           from csv_import.jobs where id = pgtap_csv.job('R-FOURTH')), '… or retry_delay(5) (40–80 s) once that is longer');
select results_eq(
  $$ select status::text, register_attempts from csv_import.jobs where id = pgtap_csv.job('R-NOT-DUE') $$,
  $$ values ('registering', 1) $$, 'a registration not yet due is left alone');
select results_eq(
  $$ select status::text, error, finished_at from csv_import.jobs where id in (pgtap_csv.job('R-GIVE-UP'), pgtap_csv.job('R-GIVE-UP-ERROR'))
     order by id $$,
  $$ values ('failed', 'Registration did not complete after 5 attempts: the register function never answered', now()),
            ('failed', 'Registration did not complete after 5 attempts: Storage timed out (HTTP 504)', now()) $$,
  'after 5 attempts the job fails, with the last error when there was one');

-- Finalization and roll-up ------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('DONE', 200, 0, 100);
  update csv_import.jobs set status = 'running' where id = pgtap_csv.job('DONE');
  update csv_import.chunks set status = 'succeeded', first_record_at = start_offset, next_record_at = end_offset,
    rows_parsed = case when kind = 'load' then 4 else 0 end, rows_loaded = case when kind = 'load' then 4 else 0 end
  where job_id = pgtap_csv.job('DONE');
  perform pgtap_csv.plan_job('STALE', 200, 0, 100);
  update csv_import.jobs set status = 'running' where id = pgtap_csv.job('STALE');
  perform pgtap_csv.lease('STALE', 'load', 0);
  update csv_import.chunks set lease_until = clock_timestamp() + interval '10 minutes'
  where id = pgtap_csv.chunk('STALE', 'load', 0);
  -- A new version whose trigger could not stop the job (its row was held past the lock timeout): simulated by
  -- storing the version without the trigger's stop.
  update storage.objects o set version = 'v2' from csv_import.jobs j
  where j.id = pgtap_csv.job('STALE') and o.name = j.object_name;
  update csv_import.jobs set status = 'running', error = null, superseded_by = null, finished_at = null
  where id = pgtap_csv.job('STALE');
  update csv_import.chunks set status = case when kind = 'load' and chunk_index = 0 then 'running' else 'pending' end::csv_import.chunk_status
  where job_id = pgtap_csv.job('STALE');
end $$;
insert into pgtap_csv.jobs select 'STALE-V2', id from csv_import.jobs
where object_version = 'v2' and object_name = (select object_name from csv_import.jobs where id = pgtap_csv.job('STALE'));
select is(pgtap_csv.reconcile('finalize') ->> 'jobs_finalized', '1', 'a job whose chunks are all finished is finalized');
select results_eq($$ select status::text, rows_loaded from csv_import.jobs where id = pgtap_csv.job('DONE') $$,
  $$ values ('succeeded', 8::bigint) $$, '… succeeded, with its totals');
select results_eq(
  $$ select j.status::text, j.error, j.superseded_by = pgtap_csv.job('STALE-V2'),
            (select count(*)::int from csv_import.chunks c where c.job_id = j.id and c.status in ('pending', 'running'))
     from csv_import.jobs j where id = pgtap_csv.job('STALE') $$,
  $$ values ('cancelled', format('The object %s changed during the import (superseded by job %s); the rows of this version that were committed stay',
                                 (select object_name from csv_import.jobs where id = pgtap_csv.job('STALE')), pgtap_csv.job('STALE-V2')), true, 0) $$,
  'a job whose object holds another version is stopped, superseded by that version''s job, its chunks cancelled');

-- Dispatch kicks ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('READY', 100, 0, 100);
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('ready') ->> 'dispatch_kicked', 'true', 'a ready chunk: dispatch is kicked');
select results_eq($$ select * from pgtap_csv.new_requests() $$,
  $$ values ('https://pipeline.test/functions/v1/csv-import-dispatch', '{"reason": "reconcile"}'::jsonb) $$,
  '… with one POST to /functions/v1/csv-import-dispatch');

do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('READY'), 'cancelled', 'test');
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('not-ready') ->> 'dispatch_kicked', 'false', 'no ready chunk: no kick');
do $$ begin
  update csv_import.jobs set rejects_status = 'pending' where id = pgtap_csv.job('DONE');
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('rejects') ->> 'dispatch_kicked', 'true', 'a rejects file waiting to be written: dispatch is kicked');
select is((select count(*)::int from pgtap_csv.new_requests()), 1, '… once');

do $$ begin
  delete from vault.secrets where name in ('csv_import_api_url', 'csv_import_service_key');
  perform pgtap_csv.mark_queue();
end $$;
select is(pgtap_csv.reconcile('no-vault') ->> 'dispatch_kicked', 'false', 'without the Vault secrets the kick is reported as not sent');
select is_empty($$ select * from pgtap_csv.new_requests() $$, '… and nothing is queued');

-- Pruning ------------------------------------------------------------------------------------------------------------------------
insert into net._http_response (id, status_code, content, created) values
  (-101, 200, 'old', now() - interval '2 days'), (-102, 200, 'recent', now() - interval '1 hour');
do $$ begin perform pgtap_csv.reconcile('prune'); end $$;
select results_eq($$ select id from net._http_response where id in (-101, -102) $$, $$ values (-102::bigint) $$,
  'pg_net responses older than a day are pruned');

-- Idempotent: running it again right away finds nothing new.
select is(pgtap_csv.reconcile('again') - 'dispatch_kicked',
  '{"expired_leases": 0, "registrations_requested": 0, "registrations_failed": 0, "orphans_registered": 0, "stale_jobs_stopped": 0, "jobs_finalized": 0}',
  'a second run right after finds nothing to do');

select * from finish();
rollback;
