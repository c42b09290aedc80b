-- csv_import.complete_scan (ends_with_terminator) and chunk_context: the prefix fold tells each load chunk whether a
-- record starts exactly at its first byte: at_record_start = the previous scan ends with a record terminator and
-- the entry parity after that scan is even (a terminator inside quotes is data). Load chunk 0 always starts at a
-- record (data_start).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(18);

\ir ../_fixtures/jobs.psql
create function pgtap_csv.scan(p_job text, p_index int, p_parity int, p_newlines bigint, p_ends boolean)
returns text language sql as $$
  select csv_import.complete_scan(pgtap_csv.chunk(p_job, 'scan', p_index), pgtap_csv.token(p_job, 'scan', p_index),
    p_parity::smallint, p_newlines, p_ends)
$$;
create function pgtap_csv.loads(p_job text) returns table (chunk_index int, entry_parity int, at_record_start boolean)
language sql stable as $$
  select chunk_index, entry_parity::int, at_record_start from csv_import.chunks
  where job_id = pgtap_csv.job(p_job) and kind = 'load' order by chunk_index
$$;
create function pgtap_csv.context(p_job text, p_index int) returns jsonb language sql as $$
  select csv_import.chunk_context(pgtap_csv.chunk(p_job, 'load', p_index), pgtap_csv.token(p_job, 'load', p_index))
$$;

-- Planning ---------------------------------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.plan_job('A', 700, 0, 100); end $$;
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, true), (1, null, null::boolean), (2, null, null), (3, null, null), (4, null, null), (5, null, null),
            (6, null, null) $$,
  'a planned job: load 0 starts at a record (data_start), the others do not know yet');
select is_empty(
  $$ select 1 from csv_import.chunks where job_id = pgtap_csv.job('A') and kind = 'scan' and ends_with_terminator is not null $$,
  'no scan has a terminator flag before it completes');

-- Out-of-order completion, every combination of terminator and parity ------------------------------------------------
-- scan k:                     0      1      2      3      4      5
-- its quote parity:           0      1      0      1      0      0
-- ends with a terminator:     true   true   true   true   false  true
-- parity after it (prefix):   0      1      1      0      0      0
-- load k+1 at_record_start:   true   false  false  true   false  true
-- Scan 2 is even itself but leaves the prefix odd (false); scan 3 is odd itself but closes the quote (true).
do $$ begin perform pgtap_csv.lease('A', 'scan', i) from generate_series(0, 5) as i; end $$;
select is(pgtap_csv.scan('A', 5, 0, 2, true), 'ok', 'the last scan finishes first');
select is(pgtap_csv.scan('A', 1, 1, 2, true), 'ok', 'scan 1 (odd quotes, ends with a newline) finishes');
select is(pgtap_csv.scan('A', 3, 1, 2, true), 'ok', 'scan 3 finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, true), (1, null, null::boolean), (2, null, null), (3, null, null), (4, null, null), (5, null, null),
            (6, null, null) $$,
  'no load chunk learns at_record_start before every earlier scan is done');
select results_eq(
  $$ select chunk_index, ends_with_terminator from csv_import.chunks
     where job_id = pgtap_csv.job('A') and kind = 'scan' and status = 'succeeded' order by chunk_index $$,
  $$ values (1, true), (3, true), (5, true) $$, 'the scans store ends_with_terminator');

select is(pgtap_csv.scan('A', 0, 0, 3, true), 'ok', 'scan 0 finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, true), (1, 0, true), (2, 1, false), (3, null, null::boolean), (4, null, null), (5, null, null),
            (6, null, null) $$,
  'load 1 starts at a record (scan 0: terminator at even parity); load 2 does not: the newline ending scan 1 is inside quotes');

select is(pgtap_csv.scan('A', 2, 0, 1, true), 'ok', 'scan 2 finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, true), (1, 0, true), (2, 1, false), (3, 1, false), (4, 0, true), (5, null, null::boolean),
            (6, null, null) $$,
  'load 3: scan 2 is even itself but the prefix is odd, so its final newline is quoted; load 4 (folded from the '
  'already-done scan 3): odd scan, even prefix, starts at a record');

-- Refused calls change nothing.
select is(pgtap_csv.scan('A', 2, 1, 1, false), 'lease_lost', 'completing a scan twice is refused');
select results_eq(
  $$ select quote_parity::int, ends_with_terminator from csv_import.chunks where id = pgtap_csv.chunk('A', 'scan', 2) $$,
  $$ values (0, true) $$, '… and its summary is kept');

select is(pgtap_csv.scan('A', 4, 0, 5, false), 'ok', 'scan 4 (ends mid-record) finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, true), (1, 0, true), (2, 1, false), (3, 1, false), (4, 0, true), (5, 0, false), (6, 0, true) $$,
  'every load chunk knows whether it starts at a record: load 5 does not (even parity, no terminator)');
select results_eq($$ select scanned_prefix, prefix_parity::int from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values (6, 0) $$, 'the job''s scanned prefix covers every scan');

-- chunk_context passes it to the worker ------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.lease('A', 'load', i) from generate_series(0, 6) as i; end $$;
select results_eq(
  $$ select i, pgtap_csv.context('A', i) -> 'at_record_start', (pgtap_csv.context('A', i) ->> 'entry_parity')::int
     from generate_series(0, 6) as i order by i $$,
  $$ values (0, 'true'::jsonb, 0), (1, 'true', 0), (2, 'false', 1), (3, 'false', 1), (4, 'true', 0), (5, 'false', 0),
            (6, 'true', 0) $$,
  'chunk_context returns at_record_start with the entry parity');

-- Property: 40 chunks, random summaries, random completion order -----------------------------------------------------
create table pgtap_csv.truth as
  select i, (random() < 0.5)::int as parity, (random() * 50)::bigint as newlines, random() < 0.5 as ends, random() as ord
  from generate_series(0, 38) as i;
do $$
declare r record;
begin
  perform pgtap_csv.plan_job('B', 4000, 0, 100);
  perform pgtap_csv.lease('B', 'scan', i) from generate_series(0, 38) as i;
  for r in select * from pgtap_csv.truth order by ord loop
    perform pgtap_csv.scan('B', r.i, r.parity, r.newlines, r.ends);
  end loop;
end $$;
select results_eq(
  $$ select * from pgtap_csv.loads('B') $$,
  $$ select n, coalesce((select (sum(parity) % 2)::int from pgtap_csv.truth where i < n), 0),
            n = 0 or ((select ends from pgtap_csv.truth where i = n - 1)
                      and (select sum(parity) % 2 = 0 from pgtap_csv.truth where i < n))
     from generate_series(0, 39) as n order by n $$,
  'random completion order: at_record_start = previous scan ends with a terminator and the XOR prefix parity is 0');

select * from finish();
rollback;
