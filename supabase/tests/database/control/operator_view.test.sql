-- The operator view's SQL: throughput_series (one row per minute, zeros where nothing happened, a committed batch
-- counted in its minute, a finished load chunk's bytes in its minute) and jobs_overview (every job newest first);
-- both for the service role only. Repeatable read, and what this transaction adds is measured as the difference
-- from before, so imports running elsewhere in the database do not move the numbers.
begin;
set transaction isolation level repeatable read;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(17);

\ir ../_fixtures/jobs.psql

-- throughput_series: shape ------------------------------------------------------------------------------------------
select is((select count(*)::int from csv_import.throughput_series()), 60, 'throughput_series: 60 minutes by default');
select is((select count(*)::int from csv_import.throughput_series(5)), 5, 'throughput_series(5): 5 minutes');
select is((select max(minute) from csv_import.throughput_series(5)), date_trunc('minute', now()),
  'the current minute is the last row');
select is(
  (select count(*)::int from (select minute - lag(minute) over (order by minute) as step
                              from csv_import.throughput_series(60)) s where step <> interval '1 minute'),
  0, 'consecutive minutes, oldest first, no gaps');
select throws_ok('select * from csv_import.throughput_series(0)', '22023', null, 'p_minutes 0 is refused');
select throws_ok('select * from csv_import.throughput_series(1441)', '22023', null,
  'p_minutes above a day (batch_log''s retention) is refused');

-- throughput_series: what this transaction adds ------------------------------------------------------------------------
create table pgtap_csv.series_before as select * from csv_import.throughput_series(60);
-- Job B commits a batch now (4 loaded, 1 rejected); a batch logged 10 minutes ago (7 loaded, 2 rejected); load chunk
-- 1 of B (bytes [100, 200)) succeeded 10 minutes ago.
do $$ begin
  perform pgtap_csv.plan_job('B', 300, 0, 100);
  perform pgtap_csv.lease('B', 'load', 0);
  perform csv_import.begin_batch(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0), 0);
  perform csv_import.commit_batch(pgtap_csv.chunk('B', 'load', 0), pgtap_csv.token('B', 'load', 0), 0, 0, 60, 6, 5, 4, 0,
    '[{"line": 3, "column": "qty", "reason": "Not a number", "raw": "x"}]', false);
  insert into csv_import.batch_log (job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped, committed_at)
  values (pgtap_csv.job('B'), pgtap_csv.chunk('B', 'load', 0), 9, 7, 2, 0, now() - interval '10 minutes');
  update csv_import.chunks set status = 'succeeded', finished_at = now() - interval '10 minutes'
  where id = pgtap_csv.chunk('B', 'load', 1);
end $$;
create table pgtap_csv.series_delta as
select a.minute, a.rows_loaded - b.rows_loaded as loaded, a.rows_rejected - b.rows_rejected as rejected,
  a.bytes - b.bytes as bytes
from csv_import.throughput_series(60) a join pgtap_csv.series_before b using (minute);
select is((select count(*)::int from pgtap_csv.series_delta), 60, 'the same 60 minutes (now() is the transaction''s)');
select results_eq(
  $$ select loaded, rejected from pgtap_csv.series_delta where minute = date_trunc('minute', now()) $$,
  $$ values (4::bigint, 1::bigint) $$, 'the committed batch counts in its minute: 4 loaded, 1 rejected');
select results_eq(
  $$ select loaded, rejected, bytes from pgtap_csv.series_delta
     where minute = date_trunc('minute', now() - interval '10 minutes') $$,
  $$ values (7::bigint, 2::bigint, 100::bigint) $$,
  'the older batch and the finished chunk''s bytes count in their minute');
select is(
  (select count(*)::int from pgtap_csv.series_delta where (loaded, rejected, bytes) <> (0, 0, 0)),
  2, 'every other minute is unchanged');
select is(
  (select count(*)::int from csv_import.throughput_series(60)
   where rows_loaded is null or rows_rejected is null or bytes is null),
  0, 'minutes without work are zeros, not nulls');

-- jobs_overview -----------------------------------------------------------------------------------------------------
select results_eq(
  $$ select job_id, status, object like 'pgtap/B-%', rows_loaded, rows_rejected, created_at, finished_at
     from csv_import.jobs_overview(1) $$,
  $$ values (pgtap_csv.job('B'), 'queued', true, 4::bigint, 1::bigint, now(), null::timestamptz) $$,
  'jobs_overview: the newest job first, with its object, status and rows');
select ok((select percent between 0 and 100 from csv_import.jobs_overview(1)), 'its progress as a percentage');
select is(
  (select array_agg(job_id order by n) from (select job_id, row_number() over () as n
                                            from csv_import.jobs_overview(100)) s),
  (select array_agg(id order by id desc) from (select id from csv_import.jobs order by id desc limit 100) j),
  'every job, newest first, up to the limit');
select throws_ok('select * from csv_import.jobs_overview(0)', '22023', null, 'p_limit 0 is refused');

-- Only the service role ------------------------------------------------------------------------------------------------
select is(
  (select array_agg(format('%s:%s', r, has_function_privilege(r, f, 'execute')) order by f, r)
   from unnest(array['anon', 'authenticated']) r
   cross join unnest(array['csv_import.throughput_series(int)', 'csv_import.jobs_overview(int)']) f),
  array['anon:f', 'authenticated:f', 'anon:f', 'authenticated:f'],
  'anon and authenticated may not execute either');
select ok(has_function_privilege('service_role', 'csv_import.throughput_series(int)', 'execute')
  and has_function_privilege('service_role', 'csv_import.jobs_overview(int)', 'execute'),
  'the service role may execute both');

select * from finish();
rollback;
