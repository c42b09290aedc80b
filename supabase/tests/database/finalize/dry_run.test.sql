-- Dry runs (20261209000200_dry_run.sql): register_job keeps the plan's dry_run and table_sql on the job; a dry run
-- whose last batch commits ends 'validated' (with rejects or without), one past its tolerance fails saying nothing
-- was written, and an early stop says so too; validated jobs age out with the other finished ones.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
set local client_min_messages = error;
select plan(11);

\ir ../_fixtures/jobs.psql

-- Commits batch p_seq of load chunk 0 of job p_job (the job's only chunk): p_loaded loaded, p_rejected rejected.
create function pgtap_csv.batch(p_job text, p_seq int, p_loaded int, p_rejected int, p_final boolean) returns jsonb
language plpgsql as $$
declare
  v_rejects jsonb := coalesce((select jsonb_agg(jsonb_build_object('line', p_seq * 100 + i, 'column', 'qty',
    'reason', 'Not a number', 'raw', 'x')) from generate_series(1, p_rejected) as i), '[]');
begin
  perform csv_import.begin_batch(pgtap_csv.chunk(p_job, 'load', 0), pgtap_csv.token(p_job, 'load', 0), p_seq);
  return csv_import.commit_batch(pgtap_csv.chunk(p_job, 'load', 0), pgtap_csv.token(p_job, 'load', 0), p_seq,
    0, case when p_final then 100 else 10 * (p_seq + 1) end, 10 * (p_seq + 1), p_loaded + p_rejected, p_loaded, 0,
    v_rejects, p_final);
end $$;

do $$ begin
  perform pgtap_csv.plan_job('CLEAN', 100, 0, 100, '{"dry_run": true, "table_sql": "create table t (a int)"}');
  perform pgtap_csv.plan_job('REJECTS', 100, 0, 100, '{"dry_run": true, "tolerated_reject_rate": 0.5}');
  perform pgtap_csv.plan_job('OVER', 100, 0, 100, '{"dry_run": true}');
  perform pgtap_csv.plan_job('EARLY', 100, 0, 100, '{"dry_run": true, "max_rejects": 1}');
  perform pgtap_csv.plan_job('REAL', 100, 0, 100);
  perform pgtap_csv.lease(j, 'load', 0) from unnest(array['CLEAN', 'REJECTS', 'OVER', 'EARLY', 'REAL']) as j;
end $$;

select results_eq(
  $$ select dry_run, table_sql from csv_import.jobs where id in (pgtap_csv.job('CLEAN'), pgtap_csv.job('REAL'))
     order by id $$,
  $$ values (true, 'create table t (a int)'), (false, null) $$,
  'register_job keeps the plan''s dry_run and table_sql (absent: false and null)');
select is(pgtap_csv.batch('CLEAN', 0, 10, 0, true) ->> 'job_status', 'validated',
  'a dry run without rejects ends validated');
select is(pgtap_csv.batch('REJECTS', 0, 8, 2, true) ->> 'job_status', 'validated',
  'with rejects within its tolerance too');
select results_eq(
  $$ select rows_loaded, rows_rejected, rejects_status::text from csv_import.jobs where id = pgtap_csv.job('REJECTS') $$,
  $$ values (8::bigint, 2::bigint, 'pending') $$,
  'with its counts, and its rejects file due');
select is(pgtap_csv.batch('OVER', 0, 8, 2, true) ->> 'job_status', 'failed', 'past its tolerance it fails');
select is((select error from csv_import.jobs where id = pgtap_csv.job('OVER')),
  'Rejected 2 of 10 rows (20.00%), above the tolerated 0.00%; a dry run: the 8 valid rows were not written',
  'saying nothing was written');
select is(pgtap_csv.batch('EARLY', 0, 3, 2, false) ->> 'job_status', 'failed', 'a dry run stops early too');
select is((select error from csv_import.jobs where id = pgtap_csv.job('EARLY')),
  'Stopped early: 2 rows rejected, more than the profile''s max_rejects (1), after 5 rows; a dry run: the 3 valid '
  || 'rows seen were not written and the rest of the file was not read',
  'an early stop of a dry run says so');
select is(pgtap_csv.batch('REAL', 0, 10, 0, true) ->> 'job_status', 'succeeded', 'a job that is no dry run succeeds');

-- 400 days old, pruned with keep = 365 days: jobs of other tests (younger) are untouched.
update csv_import.jobs set finished_at = now() - interval '400 days' where id = pgtap_csv.job('CLEAN');
select is((csv_import.prune_finished_jobs(interval '365 days') ->> 'jobs')::int, 1, 'pruned: one job');
select is((select count(*)::int from csv_import.jobs where id = pgtap_csv.job('CLEAN')), 0,
  'a validated job ages out like the other finished ones');

select * from finish();
rollback;
