-- csv_import.health and its parts: _health_status decides healthy / degraded / unhealthy from the metrics (table
-- driven); _health_metrics counts what this transaction adds (repeatable read, so concurrent imports elsewhere in
-- the database do not move the numbers between two calls); the batch_log trigger and its pruning; Realtime.
begin;
set transaction isolation level repeatable read;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(30);

\ir ../_fixtures/jobs.psql


-- _health_status, table-driven ---------------------------------------------------------------------------------------
create table pgtap_csv.base as select jsonb_build_object(
  'queue', jsonb_build_object('depth', 0, 'pending', 0, 'in_flight', 0, 'oldest_ready_age_seconds', null,
                              'expired_leases', 0, 'oldest_expired_lease_seconds', null),
  'jobs', jsonb_build_object('registering_stuck', 0, 'failed_in_window', 0),
  'window', jsonb_build_object('seconds', 300, 'reject_rate', null),
  'reconcile', jsonb_build_object('scheduled', true, 'last_start', now(), 'last_status', 'succeeded',
                                  'seconds_since_last_start', 20)) as m;
create function pgtap_csv.status(p_patch jsonb, p_path text[] default null) returns jsonb language sql as $$
  select csv_import._health_status(
    case when p_path is null then m else jsonb_set(m, p_path, (m #> p_path) || p_patch) end,
    interval '5 minutes', 0.5)
  from pgtap_csv.base
$$;
create table pgtap_csv.cases (n int, patch jsonb, path text[], status text, problem text);
insert into pgtap_csv.cases values
  (1, null, null, 'healthy', null),
  (2, '{"depth": 4, "oldest_ready_age_seconds": 400, "in_flight": 0}', '{queue}', 'unhealthy', 'Work is stuck: 4 chunks are ready, the oldest for 400 s, and none is running%'),
  (3, '{"depth": 4, "oldest_ready_age_seconds": 400, "in_flight": 2}', '{queue}', 'healthy', null),
  (4, '{"depth": 4, "oldest_ready_age_seconds": 200, "in_flight": 0}', '{queue}', 'healthy', null),
  (5, '{"expired_leases": 1, "oldest_expired_lease_seconds": 200}', '{queue}', 'unhealthy', 'Chunk leases expired 200 s ago and were not reclaimed%'),
  (6, '{"expired_leases": 2, "oldest_expired_lease_seconds": 30}', '{queue}', 'degraded', '2 chunk leases expired%'),
  (7, '{"scheduled": false}', '{reconcile}', 'unhealthy', 'The reconciler is not scheduled%'),
  (8, '{"seconds_since_last_start": 200}', '{reconcile}', 'unhealthy', 'The reconciler (pg_cron job csv-import-reconcile) has not run for 200 s'),
  (9, '{"last_start": null, "seconds_since_last_start": null, "last_status": null}', '{reconcile}', 'unhealthy', '%has not run for as long as its run history goes back'),
  (10, '{"last_status": "failed", "last_message": "ERROR: boom"}', '{reconcile}', 'degraded', 'The last reconcile run failed: ERROR: boom'),
  (11, '{"registering_stuck": 2}', '{jobs}', 'unhealthy', '2 jobs have been registering for more than 300 s%Vault%'),
  (12, '{"failed_in_window": 1}', '{jobs}', 'degraded', '1 jobs failed in the last 300 s'),
  (13, '{"reject_rate": 0.6}', '{window}', 'degraded', '60.0% of the rows parsed in the last 300 s were rejected'),
  (14, '{"reject_rate": 0.4}', '{window}', 'healthy', null);
select is(
  (select string_agg(format('%s:%s', n, pgtap_csv.status(patch, path) ->> 'status'), ' ' order by n) from pgtap_csv.cases),
  (select string_agg(format('%s:%s', n, status), ' ' order by n) from pgtap_csv.cases),
  '_health_status: the status of every case');
select is(
  (select string_agg(n::text, ' ' order by n) from pgtap_csv.cases
   where problem is not null and not exists (
     select 1 from jsonb_array_elements_text(pgtap_csv.status(patch, path) -> 'problems') p where p like problem)),
  null, '_health_status: every problem is named in a sentence');
select is(pgtap_csv.status(null) -> 'problems', '[]'::jsonb, 'healthy: no problems');
select is(
  jsonb_array_length(pgtap_csv.status('{"expired_leases": 1, "oldest_expired_lease_seconds": 200}', '{queue}') -> 'problems'), 2,
  'an unhealthy status also lists the degraded findings');
select is(
  pgtap_csv.status('{"expired_leases": 1, "oldest_expired_lease_seconds": 200}', '{queue}') -> 'problems' ->> 0,
  'Chunk leases expired 200 s ago and were not reclaimed (is the reconciler running?)', 'worst first');

-- health(): shape --------------------------------------------------------------------------------------------------
create table pgtap_csv.before as select csv_import.health() as h;
select is((select array_agg(k order by k) from jsonb_object_keys((select h from pgtap_csv.before)) k),
  '{checked_at,jobs,problems,queue,reconcile,status,stuck_after_seconds,totals,window}'::text[], 'health: top-level keys');
select is((select array_agg(k order by k) from jsonb_object_keys((select h -> 'queue' from pgtap_csv.before)) k),
  '{depth,expired_leases,in_flight,oldest_expired_lease_seconds,oldest_ready_age_seconds,pending}'::text[], 'health: queue keys');
select is((select array_agg(k order by k) from jsonb_object_keys((select h #> '{jobs,by_state}' from pgtap_csv.before)) k),
  (select array_agg(s::text order by s::text) from unnest(enum_range(null::csv_import.job_status)) s), 'health: a count for every job state');
select is((select array_agg(k order by k) from jsonb_object_keys((select h -> 'window' from pgtap_csv.before)) k),
  '{batches,reject_rate,rows_loaded,rows_parsed,rows_per_second,rows_rejected,rows_skipped,seconds}'::text[], 'health: window keys');
select ok((select h ->> 'status' in ('healthy', 'degraded', 'unhealthy') from pgtap_csv.before), 'health: a known status');
select is((select (h ->> 'stuck_after_seconds')::numeric from (select csv_import.health(interval '90 seconds') as h) x), 90::numeric,
  'health: stuck_after is a parameter');
select is((select h #>> '{reconcile,scheduled}' from pgtap_csv.before), 'true', 'health: the reconciler is scheduled');

-- health(): what this transaction adds ---------------------------------------------------------------------------------
-- Job H: 3 load chunks + 2 scans, all ready for 10 minutes; load 0 then leased, its lease expired 5 minutes ago:
-- its 2 scans ready, 1 in flight, 1 expired lease. Job B commits a batch (4 loaded, 1 rejected, 5 parsed).
do $$ begin
  perform pgtap_csv.plan_job('H', 300, 0, 100);
  update csv_import.chunks set available_at = now() - interval '10 minutes' where job_id = pgtap_csv.job('H');
  perform pgtap_csv.lease('H', 'load', 0);
  update csv_import.chunks set lease_until = now() - interval '5 minutes' where id = pgtap_csv.chunk('H', 'load', 0);
  perform pgtap_csv.plan_job('B', 300, 0, 100);
  perform pgtap_csv.lease('B', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0), 0);
  perform csv_import.commit_batch(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0), 0, 0, 60, 6, 5, 4, 0,
    '[{"line": 3, "column": "qty", "reason": "Not a number", "raw": "x"}]', false);
  insert into csv_import.jobs (bucket_id, object_name, object_version, created_at)
  values ('csv-uploads', 'pgtap/stuck-registering.csv', 'v1', now() - interval '10 minutes');
end $$;
create table pgtap_csv.after as select csv_import.health() as h;
create function pgtap_csv.delta(p_path text[]) returns numeric language sql as $$
  select (select (h #>> p_path)::numeric from pgtap_csv.after) - (select (h #>> p_path)::numeric from pgtap_csv.before)
$$;
select is(pgtap_csv.delta('{queue,depth}'), 4::numeric, 'queue depth counts ready chunks (the scans of H and B; load 1 and 2 await their entry state)');
select is(pgtap_csv.delta('{queue,pending}'), 8::numeric, 'pending counts every pending chunk of active jobs (H: 4, B: 4)');
select is(pgtap_csv.delta('{queue,in_flight}'), 2::numeric, 'in flight: the two leased chunks');
select is(pgtap_csv.delta('{queue,expired_leases}'), 1::numeric, 'the expired lease is counted');
select ok((select (h #>> '{queue,oldest_ready_age_seconds}')::numeric >= 600 from pgtap_csv.after), 'the oldest ready chunk''s age');
select ok((select (h #>> '{queue,oldest_expired_lease_seconds}')::numeric >= 300 from pgtap_csv.after), 'the oldest expired lease''s age');
select is(pgtap_csv.delta('{jobs,by_state,queued}'), 2::numeric, 'jobs by state: two more queued');
select is(pgtap_csv.delta('{jobs,registering_stuck}'), 1::numeric, 'the job registering for 10 minutes is stuck');
select is((select h ->> 'status' from pgtap_csv.after), 'unhealthy', 'stuck work makes the pipeline unhealthy');
select results_eq(
  $$ select job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped, committed_at from csv_import.batch_log
     where job_id = pgtap_csv.job('B') $$,
  $$ values (pgtap_csv.job('B'), pgtap_csv.chunk('B', 'load', 0), 5::bigint, 4::bigint, 1::bigint, 0::bigint, now()) $$,
  'commit_batch logs the batch: the counts it added, when');
select is(
  array[pgtap_csv.delta('{window,batches}'), pgtap_csv.delta('{window,rows_loaded}'), pgtap_csv.delta('{window,rows_rejected}')],
  array[1, 4, 1]::numeric[], 'the window counts the batch, its rows and rejects');
select is(array[pgtap_csv.delta('{totals,rows_loaded}'), pgtap_csv.delta('{totals,rows_rejected}')], array[4, 1]::numeric[],
  'the totals count the committed rows');

-- batch_log pruning --------------------------------------------------------------------------------------------------
insert into csv_import.batch_log (job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped, committed_at)
values (-1, -1, 1, 1, 0, 0, now() - interval '10 years');
select is(csv_import.prune_batch_log(interval '9 years'), 1::bigint, 'prune_batch_log deletes rows older than keep');
select is((select count(*)::int from csv_import.batch_log where job_id = pgtap_csv.job('B')), 1, '… and keeps newer ones');
select is((select count(*)::int from cron.job where jobname = 'csv-import-prune-batch-log'), 1, 'pruning is scheduled');

-- Realtime -----------------------------------------------------------------------------------------------------------
select is(csv_import.enable_realtime(), exists (select 1 from pg_publication where pubname = 'supabase_realtime'),
  'enable_realtime: true when the supabase_realtime publication exists');
select is(csv_import.enable_realtime(), exists (select 1 from pg_publication where pubname = 'supabase_realtime'),
  '… and again (idempotent)');
select is(
  (select count(*)::int from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'csv_import' and tablename = 'jobs'),
  (select count(*)::int from pg_publication where pubname = 'supabase_realtime'),
  'csv_import.jobs is published once when the publication exists');

select * from finish();
rollback;
