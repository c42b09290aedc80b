-- csv_import.claim_chunks and csv_import.chunk_context: limits, order, fairness, entry-state gating (loads scan
-- their own range inline; scan chunks are claimed only where no load will), leases.
--
-- Other sessions' work may exist in the database: this file's jobs get priorities far above any real profile's,
-- global limits are given relative to the chunks already running, and assertions look at this file's jobs.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(40);

\ir ../_fixtures/jobs.psql
create table pgtap_csv.claims (round int, chunk_id bigint, job_id bigint, kind text, chunk_index int, lease_token uuid);
create table pgtap_csv.job_status_after (round int, status text);
create function pgtap_csv.running() returns int language sql as $$
  select count(*)::int from csv_import.chunks where status = 'running'
$$;
-- Claims and records the result as round p_round.
create function pgtap_csv.claim(p_round int, p_max int, p_free int, p_lease interval default interval '2 minutes')
returns void language sql as $$
  insert into pgtap_csv.claims
  select p_round, c.chunk_id, c.job_id, c.kind::text, c.chunk_index, c.lease_token
  from csv_import.claim_chunks(p_max, pgtap_csv.running() + p_free, p_lease) as c
$$;
-- Marks every scan chunk of a job done (as if its loads had scanned ahead), so all its loads are ready.
create function pgtap_csv.prescan(p_name text) returns void language plpgsql as $$
begin
  update csv_import.chunks set status = 'succeeded', quote_parity = 0, newline_count = 1,
    ends_with_terminator = true, finished_at = now()
  where job_id = pgtap_csv.job(p_name) and kind = 'scan';
  perform csv_import._advance_scanned_prefix(pgtap_csv.job(p_name));
end $$;
create function pgtap_csv.claim_token(p_round int, p_job text, p_kind text, p_index int) returns uuid language sql stable as $$
  select lease_token from pgtap_csv.claims
  where round = p_round and job_id = pgtap_csv.job(p_job) and kind = p_kind and chunk_index = p_index
$$;
create function pgtap_csv.claimed_id(p_round int, p_job text, p_kind text, p_index int) returns bigint language sql stable as $$
  select chunk_id from pgtap_csv.claims
  where round = p_round and job_id = pgtap_csv.job(p_job) and kind = p_kind and chunk_index = p_index
$$;
create function pgtap_csv.claimed(p_round int, p_job text) returns setof text language sql as $$
  select kind || ' ' || chunk_index from pgtap_csv.claims
  where round = p_round and job_id = pgtap_csv.job(p_job) order by kind desc, chunk_index
$$;

-- Per-job limit, file order, what a claim writes ------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('A', 1000, 0, 100, '{"priority": 1000000, "max_parallel_chunks": 2}');
  perform pgtap_csv.prescan('A');
  perform pgtap_csv.claim(1, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(1, 'A') $$, $$ values ('load 0'), ('load 1') $$,
  'a job gets at most max_parallel_chunks chunks, in file order');
select results_eq(
  $$ select c.status::text, c.attempts, c.lease_until, c.lease_token = k.lease_token, c.started_at
     from pgtap_csv.claims k join csv_import.chunks c on c.id = k.chunk_id
     where k.round = 1 and k.job_id = pgtap_csv.job('A') $$,
  $$ values ('running', 1, now() + interval '2 minutes', true, now()),
            ('running', 1, now() + interval '2 minutes', true, now()) $$,
  'claimed chunks are running, the attempt counted, leased for 2 minutes with the returned token');
select is((select count(distinct lease_token)::int from pgtap_csv.claims where round = 1 and job_id = pgtap_csv.job('A')), 2,
  'each claimed chunk gets its own token');
select results_eq($$ select status::text, started_at from csv_import.jobs where id = pgtap_csv.job('A') $$,
  $$ values ('running', now()) $$, 'the job becomes running');
do $$ begin perform pgtap_csv.claim(2, 5, 5); end $$;
select is_empty($$ select pgtap_csv.claimed(2, 'A') $$, 'a job at its limit gets nothing more');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('A') and status = 'running'), 2,
  '… and still has 2 running chunks');

-- Loads wait for their entry state; a load scans its own range inline --------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('B', 300, 0, 100, '{"priority": 1000001, "max_parallel_chunks": 10}');
  perform pgtap_csv.claim(3, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(3, 'B') $$, $$ values ('scan 1'), ('load 0') $$,
  'load 0 is ready, and the file''s first scans after scan 0 run beside it (ramp-up); scan 0 is load 0''s');
select is((csv_import.chunk_context(pgtap_csv.claimed_id(3, 'B', 'load', 0), pgtap_csv.claim_token(3, 'B', 'load', 0))
  ->> 'scan_inline')::boolean, true, 'chunk_context tells load 0 to scan its range inline');
select is(csv_import.complete_inline_scan(pgtap_csv.claimed_id(3, 'B', 'load', 0), gen_random_uuid(), 0::smallint, 4, false),
  'lease_lost', 'complete_inline_scan refuses a caller without the load''s lease');
select is(csv_import.complete_inline_scan(pgtap_csv.claimed_id(3, 'B', 'load', 0), pgtap_csv.claim_token(3, 'B', 'load', 0),
  0::smallint, 4, false), 'ok', 'load 0 reports its range''s scan');
select results_eq(
  $$ select s.status::text, s.quote_parity::int, s.newline_count, l.entry_parity::int, l.lines_before, l.at_record_start
     from csv_import.chunks s join csv_import.chunks l on l.job_id = s.job_id and l.kind = 'load' and l.chunk_index = 1
     where s.job_id = pgtap_csv.job('B') and s.kind = 'scan' and s.chunk_index = 0 $$,
  $$ values ('succeeded', 0, 4::bigint, 0, 5::bigint, false) $$,
  'scan 0 is done and folded into load 1''s entry state (header line + 4 newlines)');
select is(csv_import.complete_inline_scan(pgtap_csv.claimed_id(3, 'B', 'load', 0), pgtap_csv.claim_token(3, 'B', 'load', 0),
  1::smallint, 9, true), 'ok', 'a second report is accepted …');
select is((select newline_count from csv_import.chunks where job_id = pgtap_csv.job('B') and kind = 'scan' and chunk_index = 0),
  4::bigint, '… and changes nothing');
select is((csv_import.chunk_context(pgtap_csv.claimed_id(3, 'B', 'load', 0), pgtap_csv.claim_token(3, 'B', 'load', 0))
  ->> 'scan_inline')::boolean, false, 'chunk_context no longer asks for the inline scan');
do $$ begin perform pgtap_csv.claim(4, 5, 5); end $$;
select results_eq($$ select pgtap_csv.claimed(4, 'B') $$, $$ values ('load 1') $$,
  'load 1 is claimable once scan 0 is done; load 2 still waits for scan 1');

-- chunk_context -------------------------------------------------------------------------------------------------
select results_eq(
  $$ select x ->> 'kind', (x ->> 'chunk_index')::int, (x ->> 'start_offset')::bigint, (x ->> 'end_offset')::bigint,
            (x ->> 'entry_parity')::int, (x ->> 'lines_before')::bigint, (x ->> 'attempts')::int,
            (x ->> 'max_attempts')::int, (x ->> 'batches_committed')::int, x ->> 'resume_offset',
            (x ->> 'object_size')::bigint, (x ->> 'data_start')::bigint, (x ->> 'chunk_count')::int,
            x ->> 'target_table', x ->> 'bucket_id', x -> 'profile'
     from (select csv_import.chunk_context(chunk_id, lease_token) as x from pgtap_csv.claims
           where round = 4 and job_id = pgtap_csv.job('B')) as t $$,
  $$ values ('load', 1, 100::bigint, 200::bigint, 0, 5::bigint, 1, 5, 0, null::text, 300::bigint, 0::bigint, 3,
             'pgtap_target.items', 'csv-uploads', 'null'::jsonb) $$,
  'chunk_context gives the range, entry state, resume marker and the job''s settings');
select is(csv_import.chunk_context((select chunk_id from pgtap_csv.claims where round = 4 and job_id = pgtap_csv.job('B')),
  gen_random_uuid()), null, 'chunk_context is null for a wrong token');

-- Scan chunks are claimed only where no load will scan them -------------------------------------------------
do $$ begin
  -- Ranges over inline_scan_max_bytes(): loads cannot hold them, so scans run ahead as separate chunks.
  perform pgtap_csv.plan_job('G', 100 * 1048576, 0, 40 * 1048576, '{"priority": 1000002, "max_parallel_chunks": 4}');
  perform pgtap_csv.claim(20, 4, 4);
end $$;
select results_eq($$ select kind || ' ' || chunk_index from pgtap_csv.claims where round = 20 and job_id = pgtap_csv.job('G')
                     order by chunk_index, kind $$,
  $$ values ('load 0'), ('scan 0'), ('scan 1') $$,
  'chunks too big to scan inline: load 0 and the scans are claimed, in file order');
select is((csv_import.chunk_context(pgtap_csv.claimed_id(20, 'G', 'load', 0), pgtap_csv.claim_token(20, 'G', 'load', 0))
  ->> 'scan_inline')::boolean, false, '… and load 0 is not asked to scan inline');
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('G'), 'cancelled', 'test');
  -- A stalled job: its only ready load waits out a retry delay and nothing of it runs.
  perform pgtap_csv.plan_job('H', 300, 0, 100, '{"priority": 1000003, "max_parallel_chunks": 4}');
  update csv_import.chunks set available_at = now() + interval '1 minute'
  where job_id = pgtap_csv.job('H') and kind = 'load';
  update csv_import.chunks set available_at = now() + interval '1 minute'
  where job_id = pgtap_csv.job('H') and kind = 'scan' and chunk_index = 1;
  perform pgtap_csv.claim(21, 4, 4);
  perform pgtap_csv.claim(22, 4, 4);
end $$;
select results_eq($$ select pgtap_csv.claimed(21, 'H') $$, $$ values ('scan 0') $$,
  'a stalled job scans ahead instead (a chunk waiting for its backoff is not claimed)');
select is_empty($$ select pgtap_csv.claimed(22, 'H') $$, 'once a chunk of the job runs, no further scan is claimed');

-- Global limit and max_chunks ----------------------------------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('A'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('B'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('H'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('C', 1000, 0, 100, '{"priority": 1000004, "max_parallel_chunks": 10}');
  perform pgtap_csv.prescan('C');
  perform pgtap_csv.claim(5, 10, 0);
  insert into pgtap_csv.job_status_after select 5, status::text from csv_import.jobs where id = pgtap_csv.job('C');
  perform pgtap_csv.claim(6, 10, 3, interval '30 seconds');
  perform pgtap_csv.claim(7, 2, 10);
end $$;
select is(csv_import.chunk_context((select chunk_id from pgtap_csv.claims where round = 4 and job_id = pgtap_csv.job('B')),
  (select lease_token from pgtap_csv.claims where round = 4 and job_id = pgtap_csv.job('B'))), null,
  'chunk_context is null once the job is stopped');
select is((select count(*)::int from pgtap_csv.claims where round = 5), 0, 'nothing is claimed at the global limit');
select is((select status from pgtap_csv.job_status_after where round = 5), 'queued',
  '… and a job none of whose chunks was claimed stays queued');
select results_eq($$ select pgtap_csv.claimed(6, 'C') $$, $$ values ('load 0'), ('load 1'), ('load 2') $$,
  'with 3 free slots, 3 chunks are claimed');
select is((select count(*)::int from pgtap_csv.claims where round = 6), 3, '… and no more, from any job');
select is((select max(c.lease_until) from csv_import.chunks c join pgtap_csv.claims k on k.chunk_id = c.id and k.round = 6),
  now() + interval '30 seconds', 'the lease length is a parameter');
select is((select count(*)::int from pgtap_csv.claims where round = 7), 2, 'max_chunks limits one claim');

-- Priority ---------------------------------------------------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('C'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('P-low', 300, 0, 100, '{"priority": 2000000}');
  perform pgtap_csv.plan_job('P-high', 300, 0, 100, '{"priority": 2000001}');
  perform pgtap_csv.prescan('P-low');
  perform pgtap_csv.prescan('P-high');
  perform pgtap_csv.claim(8, 1, 1);
  perform pgtap_csv.claim(9, 4, 4);
end $$;
select results_eq($$ select pgtap_csv.claimed(8, 'P-high') $$, $$ values ('load 0') $$,
  'the higher-priority job is served first, although created later');
select results_eq($$ select pgtap_csv.claimed(9, 'P-high') $$, $$ values ('load 1'), ('load 2') $$,
  '… until it has no ready chunk left');
select results_eq($$ select pgtap_csv.claimed(9, 'P-low') $$, $$ values ('load 0'), ('load 1') $$,
  '… then the lower one gets the remaining slots');

-- Round-robin across jobs of equal priority -------------------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('P-low'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('P-high'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('R-big', 10000, 0, 100, '{"priority": 3000000, "max_parallel_chunks": 8}');
  perform pgtap_csv.plan_job('R-small', 300, 0, 100, '{"priority": 3000000, "max_parallel_chunks": 8}');
  perform pgtap_csv.prescan('R-big');
  perform pgtap_csv.prescan('R-small');
  perform pgtap_csv.claim(10, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(10, 'R-big') $$, $$ values ('load 0'), ('load 1'), ('load 2') $$,
  'round-robin: the big job gets its first, second and third chunk …');
select results_eq($$ select pgtap_csv.claimed(10, 'R-small') $$, $$ values ('load 0'), ('load 1') $$,
  '… interleaved with the small job''s first and second, so a huge file does not starve a small one');
do $$ begin perform pgtap_csv.claim(11, 5, 5); end $$;
select results_eq($$ select pgtap_csv.claimed(11, 'R-small') $$, $$ values ('load 2') $$,
  'the small job''s remaining ready chunk goes out in the next round …');
select is((select count(*)::int from pgtap_csv.claims where round = 11 and job_id = pgtap_csv.job('R-big')), 4,
  '… next to the big job''s');

-- Fairness in steady state: a slot freed by a finished chunk goes to the job with the fewest running chunks --
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('R-big'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('R-small'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('F-old', 10000, 0, 100, '{"priority": 3500000, "max_parallel_chunks": 4}');
  perform pgtap_csv.prescan('F-old');
  perform pgtap_csv.claim(14, 3, 3);
  perform pgtap_csv.plan_job('F-new', 300, 0, 100, '{"priority": 3500000, "max_parallel_chunks": 4}');
  perform pgtap_csv.prescan('F-new');
  perform pgtap_csv.claim(15, 1, 1);
  perform pgtap_csv.claim(16, 1, 1);
  perform pgtap_csv.claim(17, 1, 1);
  perform pgtap_csv.claim(18, 1, 1);
end $$;
select is((select count(*)::int from pgtap_csv.claims where round = 14 and job_id = pgtap_csv.job('F-old')), 3,
  'an older job holds 3 slots');
select results_eq(
  $$ select round, (select name from pgtap_csv.jobs where id = job_id) from pgtap_csv.claims
     where round between 15 and 18 and job_id in (pgtap_csv.job('F-old'), pgtap_csv.job('F-new')) order by round $$,
  $$ values (15, 'F-new'), (16, 'F-new'), (17, 'F-new'), (18, 'F-old') $$,
  'one-slot claims (a chunk finished, dispatch claims one) serve the new job until it has as many running chunks');

-- Not ready: available_at in the future, stopped jobs --------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('F-old'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('F-new'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('D', 300, 0, 100, '{"priority": 4000000}');
  perform pgtap_csv.prescan('D');
  update csv_import.chunks set available_at = now() + interval '1 second'
  where job_id = pgtap_csv.job('D') and kind = 'load' and chunk_index = 0;
  perform pgtap_csv.claim(12, 5, 5);
  perform pgtap_csv.plan_job('E', 300, 0, 100, '{"priority": 4000001}');
  perform csv_import.stop_job(pgtap_csv.job('E'), 'failed', 'test');
  perform pgtap_csv.claim(13, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(12, 'D') $$, $$ values ('load 1'), ('load 2') $$,
  'a chunk waiting for its backoff (available_at in the future) is not claimed');
select is_empty($$ select pgtap_csv.claimed(13, 'E') $$, 'chunks of a stopped job are never claimed');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('E')), 'failed',
  'claiming does not revive a stopped job');

select * from finish();
rollback;
