-- csv_import.fan_out_width: the steered fan-out width (FAN_OUT_AUTO_MAX). Each step below closes a measuring window
-- by hand (window_started_at moved 2.5 s back) with a chosen number of rows committed in it (batch_log) and a
-- chosen number of running chunks, so the decisions are exact: a start at p_start; nothing learned from a window
-- that was not saturated; a probe up; a step up that paid climbs on; one that did not is taken back and held;
-- the maximum bounds it. Distress (lock waits, crowded connections) is not provoked here.
--
-- Assumes no other session's chunks run while it does (as in CI): saturation counts every running chunk.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(15);

\ir ../_fixtures/jobs.psql
delete from csv_import.fan_out;
delete from csv_import.fan_out_log;
do $$ begin
  perform pgtap_csv.plan_job('W', 100000, 0, 1000, '{"priority": 9000000, "max_parallel_chunks": 100}');
  update csv_import.chunks set status = 'succeeded', quote_parity = 0, newline_count = 1,
    ends_with_terminator = true, finished_at = now()
  where job_id = pgtap_csv.job('W') and kind = 'scan';
  perform csv_import._advance_scanned_prefix(pgtap_csv.job('W'));
end $$;

-- Exactly p_running of W's loads running (leased as claim_chunks leases them), the rest ready.
create function pgtap_csv.set_running(p_running int) returns void language sql as $$
  update csv_import.chunks set status = 'pending', lease_token = null, lease_until = null
  where job_id = pgtap_csv.job('W') and kind = 'load';
  update csv_import.chunks set status = 'running', attempts = attempts + 1, lease_token = gen_random_uuid(),
    lease_until = now() + interval '1 minute', started_at = coalesce(started_at, now())
  where id in (select id from csv_import.chunks where job_id = pgtap_csv.job('W') and kind = 'load'
               order by chunk_index limit p_running);
$$;
-- Closes the current window with p_rows committed in its 2.5 s and p_running chunks running; the width returned.
create function pgtap_csv.step(p_rows bigint, p_running int, p_start int default 4, p_max int default 8)
returns int language plpgsql as $$
begin
  perform pgtap_csv.set_running(p_running);
  delete from csv_import.batch_log where job_id = pgtap_csv.job('W');
  if p_rows > 0 then
    insert into csv_import.batch_log (job_id, chunk_id, rows_parsed, rows_loaded, rows_rejected, rows_skipped,
                                      committed_at)
    values (pgtap_csv.job('W'), 0, p_rows, p_rows, 0, 0, clock_timestamp() - interval '1 second');
  end if;
  update csv_import.fan_out set window_started_at = clock_timestamp() - interval '2.5 seconds';
  return csv_import.fan_out_width(p_start, p_max);
end $$;

select is(csv_import.fan_out_width(4, 0), 4, 'not steered (p_max 0): the width is p_start');
select is_empty($$ select 1 from csv_import.fan_out $$, '… and no state is written');
select is(csv_import.fan_out_width(4, 8), 4, 'the first steered call starts at p_start');
select is(csv_import.fan_out_width(4, 8), 4, '… and nothing changes within a window');
select is(pgtap_csv.step(2500, 2), 4, 'a window with free slots (2 of 4 running) teaches nothing: 4 stays');
select is(pgtap_csv.step(0, 3), 4, '… nor an idle one whose 3 running chunks did not commit a row');
select is((select reason from csv_import.fan_out_log order by id limit 1), 'held: 2 running, slots free',
  'the log says why the first window taught nothing');
select is(pgtap_csv.step(2500, 3), 5,
  'a saturated window (3 running and the slot this dispatch refills, loads ready) probes up: 5');
select is((select base_width from csv_import.fan_out), 4, '… remembering the width before');
select is(pgtap_csv.step(5000, 5), 6, 'the step up paid (~2,000 rows/s against ~1,000): on to 6');
select is(pgtap_csv.step(5000, 6), 5, 'the next did not (the same rate): back to 5');
select ok((select hold_until > clock_timestamp() + interval '9 seconds' from csv_import.fan_out),
  '… which holds for about 10 s');
select is(pgtap_csv.step(5000, 5), 5, 'during the hold a saturated window does not probe');
update csv_import.fan_out set hold_until = '-infinity', width = 8;
select is(pgtap_csv.step(5000, 8), 8, 'at the maximum (8) a saturated window does not probe past it');
select results_eq($$ select width, split_part(reason, ' (', 1) from csv_import.fan_out_log order by id $$,
  $$ values (4, 'held: 2 running, slots free'), (4, 'held: 3 running, no row committed'), (5, 'probe up from 4'),
            (6, 'step up paid'), (5, 'step up did not pay'), (5, 'held at 5'), (8, 'held at 8') $$,
  'every closed window is logged with the width it chose and why');

select * from finish();
rollback;
