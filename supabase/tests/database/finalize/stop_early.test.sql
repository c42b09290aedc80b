-- Stopping early on a bad file: a job whose rejects pass its max_rejects, or whose reject rate is above its
-- tolerance once reject_rate_after_rows rows were seen, is stopped as failed by the commit of the batch that
-- crossed the limit: that batch stays committed (its valid rows and rejects kept), the job's error gives the
-- numbers, its other chunks are cancelled and its in-flight chunk's next batch is refused. Without limits, or
-- below them, nothing changes.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(16);

\ir ../_fixtures/jobs.psql

-- Commits batch p_seq of load chunk 0 of job p_job: p_loaded rows loaded and p_rejected rejected.
create function pgtap_csv.batch(p_job text, p_seq int, p_loaded int, p_rejected int) returns jsonb
language plpgsql as $$
declare
  v_rejects jsonb := coalesce((select jsonb_agg(jsonb_build_object('line', p_seq * 100 + i, 'column', 'qty',
    'reason', 'Not a number', 'raw', 'x')) from generate_series(1, p_rejected) as i), '[]');
begin
  perform csv_import.begin_batch(pgtap_csv.chunk(p_job, 'load', 0), pgtap_csv.token(p_job, 'load', 0), p_seq);
  return csv_import.commit_batch(pgtap_csv.chunk(p_job, 'load', 0), pgtap_csv.token(p_job, 'load', 0), p_seq,
    0, 10 * (p_seq + 1), 10 * (p_seq + 1), p_loaded + p_rejected, p_loaded, 0, v_rejects, false);
end $$;

do $$ begin
  perform pgtap_csv.plan_job('MAX', 300, 0, 100, '{"max_rejects": 3}');
  perform pgtap_csv.plan_job('RATE', 300, 0, 100, '{"reject_rate_after_rows": 10, "tolerated_reject_rate": 0.2}');
  perform pgtap_csv.plan_job('UNDER', 300, 0, 100,
    '{"max_rejects": 10, "reject_rate_after_rows": 10, "tolerated_reject_rate": 0.5}');
  perform pgtap_csv.plan_job('NONE', 300, 0, 100);
  perform pgtap_csv.lease(j, 'load', 0) from unnest(array['MAX', 'RATE', 'UNDER', 'NONE']) as j;
end $$;

select results_eq(
  $$ select max_rejects, reject_rate_after_rows from csv_import.jobs where id = pgtap_csv.job('RATE') $$,
  $$ values (null::bigint, 10::bigint) $$,
  'register_job keeps the plan''s early-stop limits on the job');

-- max_rejects ---------------------------------------------------------------------------------------------------------
select is(pgtap_csv.batch('MAX', 0, 3, 2) ->> 'job_finished', 'false', 'two rejects of at most three: the job runs on');
select is(pgtap_csv.batch('MAX', 1, 1, 2) ->> 'job_status', 'failed',
  'the batch that brings the rejects to four stops the job, failed');
select is((select error from csv_import.jobs where id = pgtap_csv.job('MAX')),
  'Stopped early: 4 rows rejected, more than the profile''s max_rejects (3), after 8 rows; the 4 valid rows seen '
  || 'were loaded and the rest of the file was not read',
  'the error gives the rejects, the limit, the rows seen and the rows loaded');
select results_eq(
  $$ select batches_committed, rows_loaded, rows_rejected from csv_import.chunks where id = pgtap_csv.chunk('MAX', 'load', 0) $$,
  $$ values (2, 4::bigint, 4::bigint) $$,
  'the crossing batch stays committed: nothing accepted is lost');
select is((select count(*)::int from csv_import.rejects where job_id = pgtap_csv.job('MAX')), 4,
  'every reject is kept for the rejects report');
select is(
  (select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('MAX') and status = 'cancelled'), 5,
  'all five chunks of the job are cancelled (the in-flight one too: this transaction held it)');
select is(csv_import.begin_batch(pgtap_csv.chunk('MAX', 'load', 0), pgtap_csv.token('MAX', 'load', 0), 2), 'stopped',
  'the in-flight chunk''s next batch is refused');
select is((select rejects_status::text from csv_import.jobs where id = pgtap_csv.job('MAX')), 'pending',
  'the rejects file becomes due');

-- The rate, once enough rows were seen --------------------------------------------------------------------------------
select is(pgtap_csv.batch('RATE', 0, 2, 3) ->> 'job_status', 'queued',
  '60 % rejected in the first 5 rows: not judged before 10 rows');
select is(pgtap_csv.batch('RATE', 1, 5, 0) ->> 'job_status', 'failed',
  '3 of the first 10 rows (30 %), above the tolerated 20 %: stopped');
select is((select error from csv_import.jobs where id = pgtap_csv.job('RATE')),
  'Stopped early: 3 of the first 10 rows rejected (30.00%), above the tolerated 20.00% (judged from 10 rows on); '
  || 'the 7 valid rows seen were loaded and the rest of the file was not read',
  'the error gives the rate, the tolerance and the rows seen');

-- Below the limits, or none -------------------------------------------------------------------------------------------
select is(pgtap_csv.batch('UNDER', 0, 6, 4) ->> 'job_finished', 'false',
  '4 of 10 rejected with 50 % tolerated and at most 10 rejects: the job runs on');
select is(pgtap_csv.batch('NONE', 0, 0, 10) ->> 'job_finished', 'false',
  'no limits: a job rejecting every row runs to its end (judged then)');

-- Profiles ------------------------------------------------------------------------------------------------------------
select throws_ok($$ insert into csv_import.profiles (name, path_pattern, target_table, max_rejects)
  values ('pgtap-neg', 'pgtap-neg/%', 'public.x', -1) $$, '23514', null, 'max_rejects may not be negative');
select throws_ok($$ insert into csv_import.profiles (name, path_pattern, target_table, reject_rate_after_rows)
  values ('pgtap-zero', 'pgtap-zero/%', 'public.x', 0) $$, '23514', null, 'reject_rate_after_rows is at least 1');

select * from finish();
rollback;
