-- csv_import.begin_batch / csv_import.commit_batch: the atomic, idempotent batch protocol of a load chunk.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(32);

\ir ../_fixtures/jobs.psql
create function pgtap_csv.begin_batch(p_job text, p_index int, p_seq int) returns text language sql as $$
  select csv_import.begin_batch(pgtap_csv.chunk(p_job, 'load', p_index), pgtap_csv.token(p_job, 'load', p_index), p_seq)
$$;
create function pgtap_csv.commit_batch(p_job text, p_index int, p_seq int, p_first bigint, p_next bigint, p_line bigint,
  p_parsed bigint, p_loaded bigint, p_skipped bigint, p_rejects jsonb, p_final boolean, p_max_stored bigint default 100000)
returns jsonb language sql as $$
  -- (without rejects_stored, which the cap section checks on its own)
  select csv_import.commit_batch(pgtap_csv.chunk(p_job, 'load', p_index), pgtap_csv.token(p_job, 'load', p_index), p_seq,
    p_first, p_next, p_line, p_parsed, p_loaded, p_skipped, p_rejects, p_final, p_max_stored_rejects => p_max_stored)
    - 'rejects_stored'
$$;

-- Job A: load chunks [20, 120) and [120, 200), scan 0, 1 header line, 50 % rejects tolerated.
do $$ begin
  perform pgtap_csv.plan_job('A', 200, 20, 100, '{"tolerated_reject_rate": 0.5}');
  perform pgtap_csv.lease('A', 'load', 0);
end $$;

-- Batch 0 ------------------------------------------------------------------------------------------------------
select is(pgtap_csv.begin_batch('A', 0, 0), 'ok', 'begin_batch: the leaseholder may write batch 0');
select is(pgtap_csv.commit_batch('A', 0, 0, 20, 70, 6, 5, 4, 0,
    '[{"line": 4, "column": "qty", "reason": "Not a number: \"abc\"", "raw": "4,abc,x"}]', false),
  '{"job_status": "queued", "job_finished": false}'::jsonb, 'commit_batch reports the job still going');
select results_eq(
  $$ select status::text, batches_committed, first_record_at, resume_offset, resume_line, rows_parsed, rows_loaded,
            rows_rejected, rows_skipped, lease_until, next_record_at
     from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 0) $$,
  $$ values ('running', 1, 20::bigint, 70::bigint, 6::bigint, 5::bigint, 4::bigint, 1::bigint, 0::bigint,
             now() + interval '15 seconds', null::bigint) $$,
  'the progress marker and counts advance, and the lease is extended (LEASE_SECONDS, 15 s by default)');
select results_eq(
  $$ select job_id, chunk_id, line_number, column_name, reason, raw_record from csv_import.rejects
     where job_id = pgtap_csv.job('A') $$,
  $$ values (pgtap_csv.job('A'), pgtap_csv.chunk('A', 'load', 0), 4::bigint, 'qty', 'Not a number: "abc"', '4,abc,x') $$,
  'the batch''s reject is stored with line, column, reason and raw text');
select results_eq(
  $$ select rejects_stored, first_row_at, rows_parsed, rows_loaded from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values (1::bigint, now(), 5::bigint, 4::bigint) $$,
  'the job counts stored rejects and its first row, and its totals grow with every committed batch');

-- Refusals -----------------------------------------------------------------------------------------------------
select is(pgtap_csv.begin_batch('A', 0, 0), 'duplicate', 'batch 0 again (a replay or a duplicate invocation): duplicate');
select is(csv_import.begin_batch(pgtap_csv.chunk('A', 'load', 0), gen_random_uuid(), 1), 'lease_lost',
  'another token: lease_lost');
select is(csv_import.begin_batch(-1, gen_random_uuid(), 0), 'missing', 'an unknown chunk: missing');
select throws_ok(
  format($$ select csv_import.commit_batch(%s, %L, 0, 20, 70, 6, 5, 5, 0, '[]', false) $$,
         pgtap_csv.chunk('A', 'load', 0), pgtap_csv.token('A', 'load', 0)),
  '40001', format('Batch 0 of chunk %s is not open for this lease', pgtap_csv.chunk('A', 'load', 0)),
  'committing an already committed batch raises (and rolls the rows back)');
select throws_ok(
  format($$ select csv_import.commit_batch(%s, %L, 1, 20, 70, 6, 5, 5, 0, '[]', false) $$,
         pgtap_csv.chunk('A', 'load', 0), gen_random_uuid()),
  '40001', format('Batch 1 of chunk %s is not open for this lease', pgtap_csv.chunk('A', 'load', 0)),
  'committing with a foreign token raises');
select throws_ok(
  format($$ select csv_import.commit_batch(%s, %L, 0, 120, 200, 20, 1, 1, 0, '[]', false) $$,
         pgtap_csv.chunk('A', 'load', 1), gen_random_uuid()),
  '40001', format('Batch 0 of chunk %s is not open for this lease', pgtap_csv.chunk('A', 'load', 1)),
  'committing a batch of a chunk that was never claimed raises');
select is((select batches_committed from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 0)), 1,
  'refused calls change nothing');

-- Final batch of chunk 0 ------------------------------------------------------------------------------------------
select is(pgtap_csv.begin_batch('A', 0, 1), 'ok', 'batch 1 may be written');
select is(pgtap_csv.commit_batch('A', 0, 1, 70, 125, 11, 5, 5, 0, '[]', true),
  '{"job_status": "queued", "job_finished": false}'::jsonb, 'the final batch of chunk 0: the job goes on');
select results_eq(
  $$ select status::text, batches_committed, first_record_at, next_record_at, rows_parsed, rows_loaded, rows_rejected,
            lease_token, lease_until, finished_at
     from csv_import.chunks where id = pgtap_csv.chunk('A', 'load', 0) $$,
  $$ values ('succeeded', 2, 20::bigint, 125::bigint, 10::bigint, 9::bigint, 1::bigint, null::uuid, null::timestamptz, now()) $$,
  'the chunk succeeded, keeps its first record and records where the next chunk''s first record is');
select results_eq(
  $$ select status::text, rows_parsed, rows_loaded, rows_rejected, rows_skipped, bytes_loaded
     from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('queued', 10::bigint, 9::bigint, 1::bigint, 0::bigint, 100::bigint) $$,
  'the job takes the chunk''s totals');
select is(pgtap_csv.begin_batch('A', 0, 2), 'lease_lost', 'a finished chunk takes no more batches');

-- The last chunk finalizes the job -----------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.lease('A', 'scan', 0);
  perform csv_import.complete_scan(pgtap_csv.chunk('A', 'scan', 0), pgtap_csv.token('A', 'scan', 0), 0::smallint, 10, true);
  perform pgtap_csv.lease('A', 'load', 1);
end $$;
select is(pgtap_csv.begin_batch('A', 1, 0), 'ok', 'load 1 begins after the scan');
select is(pgtap_csv.commit_batch('A', 1, 0, 125, 200, 14, 3, 2, 1, '[]', true),
  '{"job_status": "succeeded_with_rejects", "job_finished": true}'::jsonb,
  'the last chunk''s final batch finalizes the job in the same transaction');
select results_eq(
  $$ select status::text, rows_parsed, rows_loaded, rows_rejected, rows_skipped, bytes_loaded, rejects_status::text, error,
            finished_at > now() and finished_at <= clock_timestamp()
     from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('succeeded_with_rejects', 13::bigint, 11::bigint, 1::bigint, 1::bigint, 180::bigint, 'pending', null::text, true) $$,
  'job totals: 13 parsed = 11 loaded + 1 rejected + 1 skipped; the rejects file is pending');
select is(pgtap_csv.begin_batch('A', 1, 1), 'stopped', 'a finished job takes no more batches');

-- Stopped jobs -------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('S', 300, 0, 100);
  perform pgtap_csv.lease('S', 'load', 0);
  perform csv_import.stop_job(pgtap_csv.job('S'), 'cancelled', 'Cancelled by the test');
end $$;
select is(pgtap_csv.begin_batch('S', 0, 0), 'stopped', 'a cancelled job''s running chunk stops at its next batch');
select throws_ok(
  format($$ select csv_import.commit_batch(%s, %L, 0, 0, 100, 5, 4, 4, 0, '[]', true) $$,
         pgtap_csv.chunk('S', 'load', 0), pgtap_csv.token('S', 'load', 0)),
  '40001', format('Batch 0 of chunk %s is not open for this lease', pgtap_csv.chunk('S', 'load', 0)),
  '… and cannot commit one');

-- Stored rejects are capped, all are counted ---------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('C', 100, 0, 100, '{"tolerated_reject_rate": 1}');
  perform pgtap_csv.lease('C', 'load', 0);
end $$;
select is(pgtap_csv.begin_batch('C', 0, 0), 'ok', 'job C batch 0');
select is(pgtap_csv.commit_batch('C', 0, 0, 0, 50, 4, 3, 0, 0,
    '[{"line": 2, "column": "a", "reason": "r", "raw": "x"}, {"line": 3, "column": "a", "reason": "r", "raw": "y"},
      {"line": 4, "column": null, "reason": "Too many fields", "raw": "z,z,z"}]', false, 2) ->> 'job_status',
  'queued', 'a batch with 3 rejects, at most 2 stored');
select is(pgtap_csv.begin_batch('C', 0, 1), 'ok', 'job C batch 1');
select is(pgtap_csv.commit_batch('C', 0, 1, 50, 100, 6, 2, 0, 0,
    '[{"line": 5, "column": "a", "reason": "r", "raw": "v"}, {"line": 6, "column": "a", "reason": "r", "raw": "w"}]', true, 2),
  '{"job_status": "succeeded_with_rejects", "job_finished": true}'::jsonb, 'a final batch with 2 more rejects');
select results_eq(
  $$ select (select array_agg(line_number order by line_number) from csv_import.rejects where job_id = j.id),
            j.rejects_stored, j.rows_rejected, c.rows_rejected
     from csv_import.jobs j join csv_import.chunks c on c.job_id = j.id where j.id = pgtap_csv.job('C') $$,
  $$ values ('{2,3}'::bigint[], 2::bigint, 5::bigint, 5::bigint) $$,
  'only the first 2 rejects are stored, all 5 are counted');

-- Rejects beyond the stored cap travel as a count only (p_rejected_unstored); the worker learns the stored total.
do $$ begin
  perform pgtap_csv.plan_job('U', 100, 0, 100, '{"tolerated_reject_rate": 1}');
  perform pgtap_csv.lease('U', 'load', 0);
  perform pgtap_csv.begin_batch('U', 0, 0);
end $$;
select is(csv_import.commit_batch(pgtap_csv.chunk('U', 'load', 0), pgtap_csv.token('U', 'load', 0), 0, 0, 100, 9, 8, 0, 0,
    '[{"line": 2, "column": "a", "reason": "r", "raw": "x"}]', true, interval '20 seconds', 1, 7) ->> 'rejects_stored',
  '1', 'commit_batch reports how many rejects the job has stored');
select results_eq(
  $$ select j.rows_rejected, j.rejects_stored, c.rows_rejected, (select count(*)::int from csv_import.rejects r where r.job_id = j.id)
     from csv_import.jobs j join csv_import.chunks c on c.job_id = j.id where j.id = pgtap_csv.job('U') $$,
  $$ values (8::bigint, 1::bigint, 8::bigint, 1) $$,
  '1 detailed + 7 counted rejects: 8 rejected, 1 stored');

-- A clean job --------------------------------------------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('OK', 100, 0, 100);
  perform pgtap_csv.lease('OK', 'load', 0);
end $$;
select is(pgtap_csv.begin_batch('OK', 0, 0), 'ok', 'job OK batch 0');
select is(pgtap_csv.commit_batch('OK', 0, 0, 0, 100, 9, 8, 8, 0, null, true),
  '{"job_status": "succeeded", "job_finished": true}'::jsonb, 'no rejects (p_rejects null): succeeded');

select * from finish();
rollback;
