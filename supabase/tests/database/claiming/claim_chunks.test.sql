-- csv_import.claim_chunks and csv_import.chunk_context: limits, order, fairness, entry-state gating, leases.
--
-- Other sessions' work may exist in the database: this file's jobs get priorities far above any real profile's,
-- global limits are given relative to the chunks already running, and assertions look at this file's jobs.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(29);

create schema pgtap_csv;
create table pgtap_csv.jobs (name text primary key, id bigint not null);
create table pgtap_csv.claims (round int, chunk_id bigint, job_id bigint, kind text, chunk_index int, lease_token uuid);
create function pgtap_csv.job(p_name text) returns bigint language sql as $$
  select id from pgtap_csv.jobs where name = p_name
$$;
-- A planned job (as the register function leaves it), remembered by name.
create function pgtap_csv.plan_job(p_name text, p_size bigint, p_chunk_size bigint, p_options jsonb default '{}')
returns bigint language plpgsql as $$
declare v_id bigint;
begin
  insert into csv_import.jobs (bucket_id, object_name, object_version, object_size)
  values ('csv-uploads', 'pgtap/' || p_name || '-' || gen_random_uuid() || '.csv', 'v1', p_size) returning id into v_id;
  perform csv_import.register_job(v_id, jsonb_build_object('data_start', 0, 'chunk_size', p_chunk_size,
    'header_lines', 1, 'target_table', 'pgtap_target.items') || p_options);
  insert into pgtap_csv.jobs values (p_name, v_id);
  return v_id;
end $$;
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
create function pgtap_csv.claimed(p_round int, p_job text) returns setof text language sql as $$
  select kind || ' ' || chunk_index from pgtap_csv.claims
  where round = p_round and job_id = pgtap_csv.job(p_job) order by kind desc, chunk_index
$$;

-- Per-job limit, scans first, what a claim writes ------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('A', 1000, 100, '{"priority": 1000000, "max_parallel_chunks": 2}');
  perform pgtap_csv.claim(1, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(1, 'A') $$, $$ values ('scan 0'), ('scan 1') $$,
  'a job gets at most max_parallel_chunks chunks, its scans first');
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

-- Load chunks wait for their entry state ----------------------------------------------------------------------
do $$ begin
  perform pgtap_csv.plan_job('B', 300, 100, '{"priority": 1000001, "max_parallel_chunks": 10}');
  perform pgtap_csv.claim(3, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(3, 'B') $$, $$ values ('scan 0'), ('scan 1'), ('load 0') $$,
  'scans and load 0 are ready; loads 1 and 2 wait for the scans');
select is(csv_import.complete_scan(
    (select chunk_id from pgtap_csv.claims where round = 3 and job_id = pgtap_csv.job('B') and kind = 'scan' and chunk_index = 0),
    (select lease_token from pgtap_csv.claims where round = 3 and job_id = pgtap_csv.job('B') and kind = 'scan' and chunk_index = 0),
    0::smallint, 4, false), 'ok', 'scan 0 completes');
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

-- Global limit and max_chunks ----------------------------------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('A'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('B'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('C', 1000, 100, '{"priority": 1000002, "max_parallel_chunks": 10}');
  perform pgtap_csv.claim(5, 10, 0);
  perform pgtap_csv.claim(6, 10, 3, interval '30 seconds');
  perform pgtap_csv.claim(7, 2, 10);
end $$;
select is(csv_import.chunk_context((select chunk_id from pgtap_csv.claims where round = 4 and job_id = pgtap_csv.job('B')),
  (select lease_token from pgtap_csv.claims where round = 4 and job_id = pgtap_csv.job('B'))), null,
  'chunk_context is null once the job is stopped');
select is((select count(*)::int from pgtap_csv.claims where round = 5), 0, 'nothing is claimed at the global limit');
select results_eq($$ select pgtap_csv.claimed(6, 'C') $$, $$ values ('scan 0'), ('scan 1'), ('scan 2') $$,
  'with 3 free slots, 3 chunks are claimed');
select is((select count(*)::int from pgtap_csv.claims where round = 6), 3, '… and no more, from any job');
select is((select max(c.lease_until) from csv_import.chunks c join pgtap_csv.claims k on k.chunk_id = c.id and k.round = 6),
  now() + interval '30 seconds', 'the lease length is a parameter');
select is((select count(*)::int from pgtap_csv.claims where round = 7), 2, 'max_chunks limits one claim');

-- Priority ---------------------------------------------------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('C'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('P-low', 300, 100, '{"priority": 2000000}');
  perform pgtap_csv.plan_job('P-high', 300, 100, '{"priority": 2000001}');
  perform pgtap_csv.claim(8, 1, 1);
  perform pgtap_csv.claim(9, 4, 4);
end $$;
select results_eq($$ select pgtap_csv.claimed(8, 'P-high') $$, $$ values ('scan 0') $$,
  'the higher-priority job is served first, although created later');
select results_eq($$ select pgtap_csv.claimed(9, 'P-high') $$, $$ values ('scan 1'), ('load 0') $$,
  '… until it has no ready chunk left');
select results_eq($$ select pgtap_csv.claimed(9, 'P-low') $$, $$ values ('scan 0'), ('scan 1') $$,
  '… then the lower one gets the remaining slots');

-- Round-robin across jobs of equal priority -------------------------------------------------------------------
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('P-low'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('P-high'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('R-big', 10000, 100, '{"priority": 3000000, "max_parallel_chunks": 8}');
  perform pgtap_csv.plan_job('R-small', 300, 100, '{"priority": 3000000, "max_parallel_chunks": 8}');
  perform pgtap_csv.claim(10, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(10, 'R-big') $$, $$ values ('scan 0'), ('scan 1'), ('scan 2') $$,
  'round-robin: the big job gets its first, second and third chunk …');
select results_eq($$ select pgtap_csv.claimed(10, 'R-small') $$, $$ values ('scan 0'), ('scan 1') $$,
  '… interleaved with the small job''s first and second, so a huge file does not starve a small one');
do $$ begin perform pgtap_csv.claim(11, 5, 5); end $$;
select results_eq($$ select pgtap_csv.claimed(11, 'R-small') $$, $$ values ('load 0') $$,
  'the small job''s remaining ready chunk goes out in the next round …');
select is((select count(*)::int from pgtap_csv.claims where round = 11 and job_id = pgtap_csv.job('R-big')), 4,
  '… next to the big job''s');

-- Fairness in steady state: a slot freed by a finished chunk goes to the job with the fewest running chunks --
do $$ begin
  perform csv_import.stop_job(pgtap_csv.job('R-big'), 'cancelled', 'test');
  perform csv_import.stop_job(pgtap_csv.job('R-small'), 'cancelled', 'test');
  perform pgtap_csv.plan_job('F-old', 10000, 100, '{"priority": 3500000, "max_parallel_chunks": 4}');
  perform pgtap_csv.claim(14, 3, 3);
  perform pgtap_csv.plan_job('F-new', 300, 100, '{"priority": 3500000, "max_parallel_chunks": 4}');
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
  perform pgtap_csv.plan_job('D', 300, 100, '{"priority": 4000000}');
  update csv_import.chunks set available_at = now() + interval '1 second'
  where job_id = pgtap_csv.job('D') and kind = 'scan';
  perform pgtap_csv.claim(12, 5, 5);
  perform pgtap_csv.plan_job('E', 300, 100, '{"priority": 4000001}');
  perform csv_import.stop_job(pgtap_csv.job('E'), 'failed', 'test');
  perform pgtap_csv.claim(13, 5, 5);
end $$;
select results_eq($$ select pgtap_csv.claimed(12, 'D') $$, $$ values ('load 0') $$,
  'a chunk waiting for its backoff (available_at in the future) is not claimed');
select is_empty($$ select pgtap_csv.claimed(13, 'E') $$, 'chunks of a stopped job are never claimed');
select is((select status::text from csv_import.jobs where id = pgtap_csv.job('E')), 'failed',
  'claiming does not revive a stopped job');

select * from finish();
rollback;
