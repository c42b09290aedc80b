-- csv_import.finalize_job: the terminal status, only after the consistency checks; and the job_progress view.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(23);

\ir ../_fixtures/jobs.psql
-- Marks every chunk of a job finished as workers would leave them: scans succeeded; load chunk i succeeded,
-- owning [first_record_at, next_record_at) = its byte range, with p_parsed rows of which p_rejected rejected.
create function pgtap_csv.finish_chunks(p_job text, p_parsed bigint default 10, p_rejected bigint default 0)
returns void language sql as $$
  update csv_import.chunks set status = 'succeeded', finished_at = now(), lease_token = null, lease_until = null,
    quote_parity = case when kind = 'scan' then 0 end, newline_count = case when kind = 'scan' then 10 end,
    first_record_at = case when kind = 'load' then start_offset end,
    next_record_at = case when kind = 'load' then end_offset end,
    rows_parsed = case when kind = 'load' then p_parsed else 0 end,
    rows_loaded = case when kind = 'load' then p_parsed - p_rejected else 0 end,
    rows_rejected = case when kind = 'load' then p_rejected else 0 end
  where job_id = pgtap_csv.job(p_job)
$$;
create function pgtap_csv.outcome(p_job text) returns table (status text, error text) language sql stable as $$
  select status::text, error from csv_import.jobs where id = pgtap_csv.job(p_job)
$$;

-- Success ---------------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('OK', 300, 0, 100);
  update csv_import.jobs set status = 'running' where id = pgtap_csv.job('OK');
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('OK')), 'running'::csv_import.job_status,
  'a job with pending chunks is not finalized');
do $$ begin perform pgtap_csv.finish_chunks('OK'); end $$;
select is(csv_import.finalize_job(pgtap_csv.job('OK')), 'succeeded'::csv_import.job_status,
  'all chunks succeeded, records tile the file, rows add up: succeeded');
select results_eq(
  $$ select status::text, error, rows_parsed, rows_loaded, rows_rejected, bytes_loaded, rejects_status::text,
            finished_at > now() and finished_at <= clock_timestamp()
     from csv_import.jobs where id = pgtap_csv.job('OK') $$,
  $$ values ('succeeded', null::text, 30::bigint, 30::bigint, 0::bigint, 300::bigint, 'none', true) $$,
  'the totals come from the load chunks; finished_at is the wall clock when the verdict was written, not the transaction''s start');
do $$ begin update csv_import.chunks set rows_loaded = 0 where job_id = pgtap_csv.job('OK'); end $$;
select is(csv_import.finalize_job(pgtap_csv.job('OK')), 'succeeded'::csv_import.job_status, 'a second call returns the status');
select is((select rows_loaded from csv_import.jobs where id = pgtap_csv.job('OK')), 30::bigint, '… and changes nothing');
select is(csv_import.finalize_job(-1), null, 'an unknown job: null');

-- Tiling violations --------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('GAP', 300, 0, 100);
  perform pgtap_csv.finish_chunks('GAP');
  update csv_import.chunks set first_record_at = 110 where job_id = pgtap_csv.job('GAP') and kind = 'load' and chunk_index = 1;
  perform pgtap_csv.plan_job('OVERLAP', 300, 0, 100);
  perform pgtap_csv.finish_chunks('OVERLAP');
  update csv_import.chunks set next_record_at = 215 where job_id = pgtap_csv.job('OVERLAP') and kind = 'load' and chunk_index = 1;
  perform pgtap_csv.plan_job('START', 300, 20, 100);
  perform pgtap_csv.finish_chunks('START');
  update csv_import.chunks set first_record_at = 21 where job_id = pgtap_csv.job('START') and kind = 'load' and chunk_index = 0;
  perform pgtap_csv.plan_job('END', 300, 0, 100);
  perform pgtap_csv.finish_chunks('END');
  update csv_import.chunks set next_record_at = 299 where job_id = pgtap_csv.job('END') and kind = 'load' and chunk_index = 2;
  perform pgtap_csv.plan_job('NOMARK', 300, 0, 100);
  perform pgtap_csv.finish_chunks('NOMARK');
  update csv_import.chunks set first_record_at = null where job_id = pgtap_csv.job('NOMARK') and kind = 'load' and chunk_index = 1;
  perform pgtap_csv.plan_job('CANCELLED-CHUNK', 300, 0, 100);
  perform pgtap_csv.finish_chunks('CANCELLED-CHUNK');
  update csv_import.chunks set status = 'cancelled' where job_id = pgtap_csv.job('CANCELLED-CHUNK') and kind = 'load' and chunk_index = 2;
end $$;
create table pgtap_csv.finalized as
  select i, n, csv_import.finalize_job(pgtap_csv.job(n))::text as returned
  from unnest(array['GAP', 'OVERLAP', 'START', 'END', 'NOMARK', 'CANCELLED-CHUNK']) with ordinality as t(n, i);
select results_eq(
  $$ select returned, (pgtap_csv.outcome(n)).error from pgtap_csv.finalized order by i $$,
  $$ values ('failed', 'Consistency check failed: the chunks'' records do not tile the file exactly (chunk 1)'),
            ('failed', 'Consistency check failed: the chunks'' records do not tile the file exactly (chunk 2)'),
            ('failed', 'Consistency check failed: the chunks'' records do not tile the file exactly (chunk 0)'),
            ('failed', 'Consistency check failed: the chunks'' records do not tile the file exactly (chunk 2)'),
            ('failed', 'Consistency check failed: the chunks'' records do not tile the file exactly (chunk 1)'),
            ('failed', 'Consistency check failed: the chunks'' records do not tile the file exactly (chunk 2)') $$,
  'a gap, an overlap, a wrong start, a wrong end, a missing marker or an unfinished chunk fail the job, naming the chunk');

-- Rows that do not add up -------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('ROWS', 200, 0, 100);
  perform pgtap_csv.finish_chunks('ROWS');
  update csv_import.chunks set rows_loaded = 8, rows_rejected = 1
  where job_id = pgtap_csv.job('ROWS') and kind = 'load' and chunk_index = 1;
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('ROWS')), 'failed'::csv_import.job_status, 'rows in <> rows out: failed');
select is((pgtap_csv.outcome('ROWS')).error, 'Consistency check failed: 20 rows parsed but 18 loaded + 1 rejected + 0 skipped',
  '… with the numbers');

-- Skipped rows count as accounted for.
do $$ begin
  perform pgtap_csv.plan_job('SKIP', 100, 0, 100);
  perform pgtap_csv.finish_chunks('SKIP');
  update csv_import.chunks set rows_loaded = 7, rows_skipped = 3 where job_id = pgtap_csv.job('SKIP');
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('SKIP')), 'succeeded'::csv_import.job_status,
  'parsed = loaded + skipped: succeeded');
select is((select rows_skipped from csv_import.jobs where id = pgtap_csv.job('SKIP')), 3::bigint, '… skipped rows counted');

-- Reject rate --------------------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('TOO-MANY', 100, 0, 100, '{"tolerated_reject_rate": 0.1}');
  perform pgtap_csv.finish_chunks('TOO-MANY', 10, 2);
  perform pgtap_csv.plan_job('AT-LIMIT', 100, 0, 100, '{"tolerated_reject_rate": 0.1}');
  perform pgtap_csv.finish_chunks('AT-LIMIT', 10, 1);
  perform pgtap_csv.plan_job('NONE-TOLERATED', 300, 0, 100);
  perform pgtap_csv.finish_chunks('NONE-TOLERATED', 1000, 0);
  update csv_import.chunks set rows_rejected = 1, rows_loaded = 999
  where job_id = pgtap_csv.job('NONE-TOLERATED') and kind = 'load' and chunk_index = 2;
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('TOO-MANY')), 'failed'::csv_import.job_status,
  'a reject rate above the tolerance: failed');
select results_eq($$ select error, rows_loaded, rejects_status::text from csv_import.jobs where id = pgtap_csv.job('TOO-MANY') $$,
  $$ values ('Rejected 2 of 10 rows (20.00%), above the tolerated 10.00%; the 8 valid rows were loaded', 8::bigint, 'pending') $$,
  '… with the numbers; the rejects file is still due');
select is(csv_import.finalize_job(pgtap_csv.job('AT-LIMIT')), 'succeeded_with_rejects'::csv_import.job_status,
  'a reject rate at the tolerance: succeeded_with_rejects');
select is(csv_import.finalize_job(pgtap_csv.job('NONE-TOLERATED')), 'failed'::csv_import.job_status,
  'one reject in 3000 rows with no tolerance: failed');
select is((pgtap_csv.outcome('NONE-TOLERATED')).error,
  'Rejected 1 of 3000 rows (0.03%), above the tolerated 0.00%; the 2999 valid rows were loaded', '… saying so');

-- Dead chunks, finished jobs ---------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('DEAD', 300, 0, 100);
  perform pgtap_csv.finish_chunks('DEAD');
  update csv_import.chunks set status = 'dead', last_error = 'Storage returned 503 (attempt 5 of 5)'
  where job_id = pgtap_csv.job('DEAD') and kind = 'load' and chunk_index = 1;
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('DEAD')), 'failed'::csv_import.job_status, 'a dead chunk fails the job');
select is((pgtap_csv.outcome('DEAD')).error, 'Chunk 1 (load, bytes 100–200) failed: Storage returned 503 (attempt 5 of 5)',
  '… with its reason');
do $$ begin
  perform pgtap_csv.plan_job('GONE', 300, 0, 100);
  perform csv_import.stop_job(pgtap_csv.job('GONE'), 'cancelled', 'Cancelled by the test');
end $$;
select is(csv_import.finalize_job(pgtap_csv.job('GONE')), 'cancelled'::csv_import.job_status, 'a cancelled job stays cancelled');
select is((pgtap_csv.outcome('GONE')).error, 'Cancelled by the test', '… with its message');

-- job_progress --------------------------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('PROGRESS', 420, 20, 100);
  update csv_import.jobs set status = 'running', started_at = now() - interval '10 seconds' where id = pgtap_csv.job('PROGRESS');
  update csv_import.chunks set status = 'succeeded', rows_parsed = 50, rows_loaded = 49, rows_rejected = 1
  where job_id = pgtap_csv.job('PROGRESS') and kind = 'load' and chunk_index = 0;
  update csv_import.chunks set status = 'running', resume_offset = 160, rows_parsed = 20, rows_loaded = 20
  where job_id = pgtap_csv.job('PROGRESS') and kind = 'load' and chunk_index = 1;
  update csv_import.chunks set status = 'dead' where job_id = pgtap_csv.job('PROGRESS') and kind = 'load' and chunk_index = 3;
  update csv_import.chunks set status = 'succeeded', rows_parsed = 7 where job_id = pgtap_csv.job('PROGRESS') and kind = 'scan';
end $$;
select results_eq(
  $$ select chunks_done, chunks_running, chunks_dead, rows_parsed, rows_loaded, rows_rejected, bytes_done, percent,
            rows_per_second
     from csv_import.job_progress where job_id = pgtap_csv.job('PROGRESS') $$,
  $$ values (1::bigint, 1::bigint, 1::bigint, 70::numeric, 69::numeric, 1::numeric, 140::numeric, 35.0, 7::numeric) $$,
  'job_progress: load chunks done, committed rows and bytes (a running chunk up to its marker), percent, rows/s');
select results_eq(
  $$ select percent from csv_import.job_progress where job_id = pgtap_csv.job('OK') $$,
  $$ values (100.0) $$, 'a succeeded job is at 100 %');
do $$ begin
  perform pgtap_csv.plan_job('EMPTY', 42, 42, 100);
end $$;
select results_eq(
  $$ select status::text, percent, chunks_done from csv_import.job_progress where job_id = pgtap_csv.job('EMPTY') $$,
  $$ values ('succeeded', 100.0, 0::bigint) $$, 'a header-only job is at 100 %');

select * from finish();
rollback;
