-- csv_import.complete_scan: scan summaries, completed in any order, give every load chunk its exact entry state
-- (XOR of the earlier scans' quote parities) and line number (header lines + earlier scans' newlines).
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(16);

\ir ../_fixtures/jobs.psql
create function pgtap_csv.scan(p_job text, p_index int, p_parity int, p_newlines bigint, p_ends boolean default false)
returns text language sql as $$
  select csv_import.complete_scan(pgtap_csv.chunk(p_job, 'scan', p_index), pgtap_csv.token(p_job, 'scan', p_index),
    p_parity::smallint, p_newlines, p_ends)
$$;
create function pgtap_csv.loads(p_job text) returns table (chunk_index int, entry_parity int, lines_before bigint)
language sql stable as $$
  select chunk_index, entry_parity::int, lines_before from csv_import.chunks
  where job_id = pgtap_csv.job(p_job) and kind = 'load' order by chunk_index
$$;

-- 5 load chunks, 4 scans, 1 header line; all scans leased.
do $$ begin
  perform pgtap_csv.plan_job('A', 1000, 10, 200);
  perform pgtap_csv.lease('A', 'scan', i) from generate_series(0, 3) as i;
end $$;

select is(pgtap_csv.scan('A', 2, 1, 7), 'ok', 'a later scan may finish first');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, 1::bigint), (1, null, null), (2, null, null), (3, null, null), (4, null, null) $$,
  '… but no load chunk learns its entry state before all earlier scans are done');
select results_eq(
  $$ select status::text, quote_parity, newline_count, lease_token, lease_until, finished_at from csv_import.chunks
     where id = pgtap_csv.chunk('A', 'scan', 2) $$,
  $$ values ('succeeded', 1::smallint, 7::bigint, null::uuid, null::timestamptz, now()) $$,
  'the scan is stored and its lease released');

select is(pgtap_csv.scan('A', 0, 1, 5), 'ok', 'scan 0 finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, 1::bigint), (1, 1, 6), (2, null, null), (3, null, null), (4, null, null) $$,
  'load 1 enters inside quotes (scan 0 had odd quotes) after line 1 + 5');

select is(pgtap_csv.scan('A', 1, 0, 3), 'ok', 'scan 1 finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, 1::bigint), (1, 1, 6), (2, 1, 9), (3, 0, 16), (4, null, null) $$,
  'scan 1 releases load 2 and the already-scanned prefix releases load 3: parity XOR, lines summed');
select results_eq($$ select scanned_prefix, prefix_parity, prefix_lines from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values (3, 0::smallint, 16::bigint) $$, 'the job records the scanned prefix');

-- Stale and wrong callers --------------------------------------------------------------------------------------
select is(csv_import.complete_scan(pgtap_csv.chunk('A', 'scan', 3), gen_random_uuid(), 1::smallint, 4, false), 'lease_lost',
  'a wrong token is refused');
select is(pgtap_csv.scan('A', 1, 1, 99), 'lease_lost', 'completing the same scan twice is refused');
select is(csv_import.complete_scan(pgtap_csv.chunk('A', 'load', 4), null, 1::smallint, 4, false), 'lease_lost',
  'a load chunk is not a scan');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, 1::bigint), (1, 1, 6), (2, 1, 9), (3, 0, 16), (4, null, null) $$,
  'refused calls change nothing');

select is(pgtap_csv.scan('A', 3, 1, 4), 'ok', 'the last scan finishes');
select results_eq($$ select * from pgtap_csv.loads('A') $$,
  $$ values (0, 0, 1::bigint), (1, 1, 6), (2, 1, 9), (3, 0, 16), (4, 1, 20) $$,
  'every load chunk knows its entry state');

-- Property: 40 chunks, random summaries, random completion order ------------------------------------------------
create table pgtap_csv.truth as
  select i, (random() < 0.5)::int as parity, (random() * 50)::bigint as newlines, random() as ord
  from generate_series(0, 38) as i;
do $$
declare r record;
begin
  perform pgtap_csv.plan_job('B', 4000, 0, 100, '{"header_lines": 2}');
  perform pgtap_csv.lease('B', 'scan', i) from generate_series(0, 38) as i;
  for r in select * from pgtap_csv.truth order by ord loop
    perform pgtap_csv.scan('B', r.i, r.parity, r.newlines);
  end loop;
end $$;
select results_eq(
  $$ select * from pgtap_csv.loads('B') $$,
  $$ select n, coalesce((select (sum(parity) % 2)::int from pgtap_csv.truth where i < n), 0),
            2 + coalesce((select sum(newlines)::bigint from pgtap_csv.truth where i < n), 0)
     from generate_series(0, 39) as n order by n $$,
  'random completion order: entry_parity = XOR prefix of quote parities, lines_before = header + newline prefix sum');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('B') and kind = 'scan' and status = 'succeeded'),
  39, 'all 39 scans succeeded');

select * from finish();
rollback;
