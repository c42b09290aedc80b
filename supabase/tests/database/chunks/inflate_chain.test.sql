-- Compressed uploads (issue 16), the SQL side of the inflate chain: register_job plans a compressed job with one
-- 'inflate' chunk; commit_inflate_step commits each step's checkpoints, load chunks and their scans (guarded by the
-- lease, the chain's marker and contiguity), folding entry states across steps; chunk_context hands workers the
-- checkpoint to resume from; claim_chunks claims the chain first and outside its job's max_parallel_chunks;
-- _finalize_tiling_gap and job_progress measure a compressed job against its decompressed size.
--
-- The story of job Z: a 1000-byte object whose data (decompressed offsets) starts at 20 after a 1-line header,
-- chunk size 100; step 1 commits [20,120) and [120,220), step 2 [220,320), step 3 (the end) [320,400).
-- Other sessions' work may exist in the database: claims use priorities far above any real profile's and global
-- limits relative to the chunks already running.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(61);

\ir ../_fixtures/jobs.psql
create function pgtap_csv.gz() returns jsonb language sql immutable as $$
  select '{"codec": "gzip", "data_offset": 0, "data_end": 1000, "member": null, "expected": null,
           "max_data_bytes": 1000000, "max_ratio": 200}'::jsonb
$$;
-- One step of job p_job's chain, as the worker calls it (the inflate chunk's lease from pgtap_csv.lease).
create function pgtap_csv.step(p_job text, p_from bigint, p_to bigint, p_in bigint, p_ranges jsonb,
  p_checkpoints jsonb default '[]', p_ended boolean default false, p_token uuid default null)
returns text language sql as $$
  select csv_import.commit_inflate_step(pgtap_csv.chunk(p_job, 'inflate', 0),
    coalesce(p_token, pgtap_csv.token(p_job, 'inflate', 0)), p_from, p_to, p_in, p_ranges, p_checkpoints, p_ended)
$$;
create function pgtap_csv.range(p_start bigint, p_end bigint, p_parity int, p_newlines int, p_terminated boolean)
returns jsonb language sql immutable as $$
  select jsonb_build_object('start', p_start, 'end', p_end, 'quote_parity', p_parity, 'newline_count', p_newlines,
    'ends_with_terminator', p_terminated)
$$;
create function pgtap_csv.loads(p_job text) returns table (idx int, s bigint, e bigint, parity smallint,
  lines bigint, at_start boolean, status text) language sql stable as $$
  select chunk_index, start_offset, end_offset, entry_parity, lines_before, at_record_start, status::text
  from csv_import.chunks where job_id = pgtap_csv.job(p_job) and kind = 'load' order by chunk_index
$$;
create function pgtap_csv.context(p_job text, p_kind text, p_index int) returns jsonb language sql stable as $$
  select csv_import.chunk_context(pgtap_csv.chunk(p_job, p_kind, p_index), pgtap_csv.token(p_job, p_kind, p_index))
$$;
create function pgtap_csv.gap(p_job text) returns int language sql stable as $$
  select csv_import._finalize_tiling_gap(j) from csv_import.jobs j where j.id = pgtap_csv.job(p_job)
$$;
create table pgtap_csv.claims (round int, chunk_id bigint, job_id bigint, kind text, chunk_index int);
create function pgtap_csv.claim(p_round int, p_max int, p_free int) returns void language sql as $$
  insert into pgtap_csv.claims
  select p_round, c.chunk_id, c.job_id, c.kind::text, c.chunk_index
  from csv_import.claim_chunks(p_max,
    (select count(*)::int from csv_import.chunks where status = 'running' and kind <> 'inflate') + p_free) c
$$;
create function pgtap_csv.claimed(p_round int, p_job text) returns setof text language sql as $$
  select kind || ' ' || chunk_index from pgtap_csv.claims
  where round = p_round and job_id = pgtap_csv.job(p_job) order by kind, chunk_index
$$;

-- Registration ---------------------------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.plan_job('Z', 1000, 20, 100, jsonb_build_object('compression', pgtap_csv.gz())); end $$;
select results_eq(
  $$ select status::text, chunk_count, compression, data_start, object_size, data_size, inflated_out, inflated_in
     from csv_import.jobs where id = pgtap_csv.job('Z') $$,
  $$ values ('queued', 0, pgtap_csv.gz(), 20::bigint, 1000::bigint, null::bigint, 0::bigint, 0::bigint) $$,
  'a compressed plan: the job is queued with no load chunks counted, its compression stored');
select results_eq(
  $$ select kind::text, chunk_index, start_offset, end_offset, status::text, resume_offset
     from csv_import.chunks where job_id = pgtap_csv.job('Z') $$,
  $$ values ('inflate', 0, 0::bigint, 1000::bigint, 'pending', null::bigint) $$,
  '… and one pending inflate chunk over the object [0, object_size), nothing else');
select lives_ok(
  $$ select pgtap_csv.plan_job('WIDE', 100, 500, 100, jsonb_build_object('compression', pgtap_csv.gz())) $$,
  'a compressed plan may start its data past the object''s size (decompressed offsets)');
select results_eq($$ select status::text, data_start from csv_import.jobs where id = pgtap_csv.job('WIDE') $$,
  $$ values ('queued', 500::bigint) $$, '… and is planned');
select throws_ok($$ select pgtap_csv.plan_job('PLAIN_WIDE', 100, 500, 100) $$, '22023', null,
  'a plain plan with data_start past the object''s size is still refused');
do $$ begin perform pgtap_csv.plan_job('PLAIN', 300, 0, 100, '{"compression": null}'); end $$;
select results_eq(
  $$ select compression is null, chunk_count from csv_import.jobs where id = pgtap_csv.job('PLAIN') $$,
  $$ values (true, 3) $$,
  'a plain plan with "compression": null stores SQL NULL (JSON null made every plain job look compressed)');

-- commit_inflate_step: refusals ---------------------------------------------------------------------------------
do $$ begin perform pgtap_csv.lease('Z', 'inflate', 0); end $$;
select is(pgtap_csv.step('Z', 0, 120, 150, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true)),
  p_token => gen_random_uuid()), 'lease_lost', 'without the chain''s lease: lease_lost');
select is(pgtap_csv.step('Z', 5, 120, 150, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true))),
  'duplicate', 'p_from_out other than the chain''s marker (0 before its first step): duplicate');
select throws_ok($$ select pgtap_csv.step('Z', 0, 120, 150, jsonb_build_array(pgtap_csv.range(30, 120, 0, 1, true))) $$,
  '22023', null, 'a first range that leaves a gap after data_start: 22023');
select throws_ok($$ select pgtap_csv.step('Z', 0, 120, 150, jsonb_build_array(pgtap_csv.range(10, 120, 0, 1, true))) $$,
  '22023', null, 'a first range that overlaps the header: 22023');
select throws_ok($$ select pgtap_csv.step('Z', 0, 220, 300, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true),
  pgtap_csv.range(130, 220, 0, 1, true))) $$, '22023', null, 'ranges with a gap between them: 22023');
select throws_ok($$ select pgtap_csv.step('Z', 0, 150, 300, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true))) $$,
  '22023', null, 'ranges that end short of p_to_out: 22023');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('Z')), 1,
  'the refused steps created nothing');

-- Step 1: two ranges, the first ends inside a quoted field (parity 1, no terminator) ------------------------------
select is(pgtap_csv.step('Z', 0, 220, 300,
  jsonb_build_array(pgtap_csv.range(20, 120, 1, 5, false), pgtap_csv.range(120, 220, 1, 7, true)),
  jsonb_build_array(
    jsonb_build_object('out', 120, 'in', 150, 'bits', 3, 'window', encode('\x00ff10e29c80'::bytea, 'base64'),
                       'member', '{"crc": 305419896, "size": 100}'::jsonb),
    jsonb_build_object('out', 220, 'in', 300, 'bits', 0, 'window', '', 'member', null))), 'ok',
  'step 1 commits');
select results_eq($$ select * from pgtap_csv.loads('Z') $$,
  $$ values (0, 20::bigint, 120::bigint, 0::smallint, 1::bigint, true, 'pending'),
            (1, 120::bigint, 220::bigint, 1::smallint, 6::bigint, false, 'pending') $$,
  'load chunks per range: chunk 0 at data_start (parity 0, the header lines, a record start), chunk 1 after scan 0');
select results_eq(
  $$ select chunk_index, start_offset, end_offset, status::text, quote_parity, newline_count, ends_with_terminator
     from csv_import.chunks where job_id = pgtap_csv.job('Z') and kind = 'scan' order by chunk_index $$,
  $$ values (0, 20::bigint, 120::bigint, 'succeeded', 1::smallint, 5::bigint, false),
            (1, 120::bigint, 220::bigint, 'succeeded', 1::smallint, 7::bigint, true) $$,
  'each range''s scan is a succeeded scan chunk');
select results_eq(
  $$ select out_offset, in_offset, bits, history, member from csv_import.inflate_checkpoints
     where job_id = pgtap_csv.job('Z') order by out_offset $$,
  $$ values (120::bigint, 150::bigint, 3::smallint, '\x00ff10e29c80'::bytea, '{"crc": 305419896, "size": 100}'::jsonb),
            (220::bigint, 300::bigint, 0::smallint, ''::bytea, 'null'::jsonb) $$,
  'the checkpoints are stored, the window decoded from base64');
select results_eq(
  $$ select chunk_count, inflated_out, inflated_in, data_size, scanned_prefix, prefix_parity, prefix_lines
     from csv_import.jobs where id = pgtap_csv.job('Z') $$,
  $$ values (2, 220::bigint, 300::bigint, null::bigint, 2, 0::smallint, 13::bigint) $$,
  'the job counts the load chunks, the chain''s progress, and its prefix folded over both scans');
select results_eq(
  $$ select status::text, resume_offset, batches_committed, lease_token = pgtap_csv.token('Z', 'inflate', 0),
            lease_until = now() + interval '15 seconds'
     from csv_import.chunks where id = pgtap_csv.chunk('Z', 'inflate', 0) $$,
  $$ values ('running', 220::bigint, 1, true, true) $$,
  'the chain keeps its lease (renewed), its marker at the decompressed offset reached');

-- job_progress before the decompressed size is known: estimated from the ratio so far
select results_eq(
  $$ select data_bytes_total, data_size_known, compression, compressed_bytes_done, bytes_done, percent
     from csv_import.job_progress where job_id = pgtap_csv.job('Z') $$,
  $$ values (713::bigint, false, 'gzip', 300::bigint, 0::numeric, 0.0::numeric) $$,
  'progress: data_bytes_total estimated as inflated_out / inflated_in × object_size − data_start (220/300 × 1000 − 20)');

-- Step 2: its first range's entry state comes from the job's prefix (folded by step 1) ---------------------------
select is(pgtap_csv.step('Z', 0, 320, 400, jsonb_build_array(pgtap_csv.range(220, 320, 0, 4, true))), 'duplicate',
  'a replayed step 2 that starts where step 1 started: duplicate');
select is(pgtap_csv.step('Z', 220, 320, 400, jsonb_build_array(pgtap_csv.range(220, 320, 0, 4, true)),
  jsonb_build_array(jsonb_build_object('out', 320, 'in', 400, 'bits', 5, 'window', encode('abc'::bytea, 'base64'),
                                       'member', null))), 'ok', 'step 2 commits');
select results_eq($$ select * from pgtap_csv.loads('Z') where idx = 2 $$,
  $$ values (2, 220::bigint, 320::bigint, 0::smallint, 13::bigint, true, 'pending') $$,
  'a later step''s first range gets the job''s prefix state: parity 1 xor 1, 1 + 5 + 7 lines, at a record start');
select is(pgtap_csv.step('Z', 220, 320, 400, jsonb_build_array(pgtap_csv.range(220, 320, 0, 4, true))), 'duplicate',
  'step 2 replayed after it committed: duplicate');
select throws_ok($$ select pgtap_csv.step('Z', 320, 400, 500, jsonb_build_array(pgtap_csv.range(300, 400, 0, 1, true))) $$,
  '22023', null, 'a range that overlaps the last load chunk: 22023');
select results_eq(
  $$ select pgtap_csv.context('Z', 'inflate', 0) -> 'checkpoint' $$,
  $$ values (jsonb_build_object('out', 320, 'in', 400, 'bits', 5, 'window', encode('abc'::bytea, 'base64'),
                                'member', null)) $$,
  'chunk_context of the chain: the checkpoint at its marker (its resume_offset)');
select results_eq(
  $$ select (c ->> 'kind'), c -> 'compression', c -> 'data_size', (c ->> 'inflated_in')::bigint
     from pgtap_csv.context('Z', 'inflate', 0) c $$,
  $$ values ('inflate', pgtap_csv.gz(), 'null'::jsonb, 400::bigint) $$,
  '… with the job''s compression, no data_size yet, the object bytes consumed');

-- Step 3: the end of the stream -----------------------------------------------------------------------------------
select throws_ok($$ select pgtap_csv.step('Z', 320, 420, 1000, jsonb_build_array(pgtap_csv.range(320, 400, 0, 2, true)),
  '[]', true) $$, '22023', null, 'an ended step whose ranges stop short of the size it reports: 22023');
select is(pgtap_csv.step('Z', 320, 400, 1000, jsonb_build_array(pgtap_csv.range(320, 400, 0, 2, true)), '[]', true),
  'ok', 'the last step commits with p_ended');
select results_eq($$ select idx, s, e, parity, lines, at_start from pgtap_csv.loads('Z') where idx = 3 $$,
  $$ values (3, 320::bigint, 400::bigint, 0::smallint, 17::bigint, true) $$,
  'the last range''s load chunk, its entry state after scan 2');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('Z') and kind = 'scan' and chunk_index = 3),
  0, 'no scan chunk for the file''s last range');
select results_eq(
  $$ select status::text, chunk_count, data_size, inflated_out, inflated_in from csv_import.jobs where id = pgtap_csv.job('Z') $$,
  $$ values ('queued', 4, 400::bigint, 400::bigint, 1000::bigint) $$,
  'data_size is the decompressed size; the job waits for its loads');
select results_eq(
  $$ select status::text, lease_token, lease_until, finished_at, resume_offset from csv_import.chunks
     where id = pgtap_csv.chunk('Z', 'inflate', 0) $$,
  $$ values ('succeeded', null::uuid, null::timestamptz, now(), 400::bigint) $$,
  'the inflate chunk succeeded and gave up its lease');
select is(pgtap_csv.step('Z', 400, 400, 1000, '[]', '[]', true), 'lease_lost', 'a step after the end: lease_lost');

-- chunk_context of loads: the checkpoint at or before the start, and the one at the end ------------------------
do $$ begin perform pgtap_csv.lease('Z', 'load', i) from generate_series(0, 3) i; end $$;
select results_eq($$ select c -> 'checkpoint', c -> 'end_checkpoint' -> 'in', c -> 'data_size' from pgtap_csv.context('Z', 'load', 0) c $$,
  $$ values ('null'::jsonb, '150'::jsonb, '400'::jsonb) $$,
  'load 0: no checkpoint at or before data_start (inflate from the start), its end''s checkpoint at object byte 150');
select results_eq($$ select c -> 'checkpoint', c -> 'end_checkpoint' -> 'in' from pgtap_csv.context('Z', 'load', 1) c $$,
  $$ values (jsonb_build_object('out', 120, 'in', 150, 'bits', 3, 'window', encode('\x00ff10e29c80'::bytea, 'base64'),
                                'member', '{"crc": 305419896, "size": 100}'::jsonb), '300'::jsonb) $$,
  'load 1: the checkpoint at its start (window base64 as stored), its end''s at 300');
select results_eq($$ select c -> 'checkpoint' ->> 'out', c -> 'end_checkpoint' from pgtap_csv.context('Z', 'load', 3) c $$,
  $$ values ('320', 'null'::jsonb) $$, 'load 3: the checkpoint at 320; no checkpoint at the data''s end');
update csv_import.chunks set resume_offset = 250 where id = pgtap_csv.chunk('Z', 'load', 2);
select is(pgtap_csv.context('Z', 'load', 2) -> 'checkpoint' ->> 'out', '220',
  'a load resuming at its marker (250) inflates from the last checkpoint at or before it (220)');
select is(pgtap_csv.context('PLAIN', 'load', 0), null, 'chunk_context is null without the lease');
do $$ begin perform pgtap_csv.lease('PLAIN', 'load', 0); end $$;
select results_eq($$ select c -> 'checkpoint', c -> 'end_checkpoint', c -> 'compression' from pgtap_csv.context('PLAIN', 'load', 0) c $$,
  $$ values ('null'::jsonb, 'null'::jsonb, 'null'::jsonb) $$, 'a plain job''s load has no checkpoint');

-- Progress and tiling once the size is known ------------------------------------------------------------------------
update csv_import.chunks set status = 'succeeded', finished_at = now(), lease_token = null, lease_until = null,
  first_record_at = start_offset, next_record_at = end_offset, rows_parsed = 10, rows_loaded = 10
where id = pgtap_csv.chunk('Z', 'load', 0);
select results_eq(
  $$ select data_bytes_total, data_size_known, bytes_done, percent, compressed_bytes_done
     from csv_import.job_progress where job_id = pgtap_csv.job('Z') $$,
  $$ values (380::bigint, true, 130::numeric, 34.2::numeric, 1000::bigint) $$,
  'progress against data_size − data_start once known: load 0''s 100 bytes and load 2''s 30 up to its marker, of 380');
select results_eq(
  $$ select bytes_total, bytes_done, percent, compression, compressed_bytes_total, compressed_bytes_done
     from csv_import_api.imports where id = pgtap_csv.job('Z') $$,
  $$ values (380::bigint, 130::numeric, 34.2::numeric, 'gzip', 1000::bigint, 1000::bigint) $$,
  'csv_import_api.imports: bytes_total of the decompressed data, the compressed columns');
select results_eq(
  $$ select bytes_total, compression, compressed_bytes_total, compressed_bytes_done
     from csv_import_api.imports where id = pgtap_csv.job('PLAIN') $$,
  $$ values (300::bigint, null::text, null::bigint, null::bigint) $$,
  '… and for a plain job, the object''s size and no compressed columns');
update csv_import.chunks set status = 'succeeded', finished_at = now(), lease_token = null, lease_until = null,
  first_record_at = start_offset, next_record_at = end_offset, rows_parsed = 10, rows_loaded = 10
where job_id = pgtap_csv.job('Z') and kind = 'load';
select is(pgtap_csv.gap('Z'), null, 'loads tiling [data_start, data_size): no gap');
update csv_import.jobs set data_size = 450 where id = pgtap_csv.job('Z');
select is(pgtap_csv.gap('Z'), 3, 'the last load must end at data_size (not at the object''s size)');
update csv_import.jobs set data_size = null where id = pgtap_csv.job('Z');
select is(pgtap_csv.gap('Z'), -1, 'a compressed job whose chain has not reached the end never tiles (-1)');
update csv_import.jobs set data_size = 400 where id = pgtap_csv.job('Z');
select is(csv_import.finalize_job(pgtap_csv.job('Z')), 'succeeded'::csv_import.job_status, 'job Z finalizes');
select is((select count(*)::int from csv_import.inflate_checkpoints where job_id = pgtap_csv.job('Z')), 0,
  '… and its checkpoints are dropped: nothing reads them again');
select results_eq($$ select percent, data_bytes_total from csv_import.job_progress where job_id = pgtap_csv.job('Z') $$,
  $$ values (100.0::numeric, 380::bigint) $$, '… at 100 %');

-- A cancelled job's chain; a header-only file ---------------------------------------------------------------------
do $$ begin perform pgtap_csv.plan_job('C', 1000, 20, 100, jsonb_build_object('compression', pgtap_csv.gz())); end $$;
do $$ begin perform pgtap_csv.lease('C', 'inflate', 0); end $$;
-- cancel_job cancels the chain's chunk too unless a transaction holds its row (the chain's own commit, mid-way):
-- then the chain keeps its lease and its next step must see the stopped job. That second case, as the row lock
-- leaves it: the job stopped, the chunk still running.
select is((select count(*)::int from (select csv_import.cancel_job(pgtap_csv.job('C'))) x), 1, 'setup: cancel job C');
select is(pgtap_csv.step('C', 0, 120, 150, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true))), 'lease_lost',
  'a chain whose chunk cancel_job cancelled: lease_lost');
update csv_import.chunks set status = 'running', lease_token = pgtap_csv.token('C', 'inflate', 0),
  lease_until = now() + interval '15 seconds'
where id = pgtap_csv.chunk('C', 'inflate', 0);
select is(pgtap_csv.step('C', 0, 120, 150, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true))), 'stopped',
  'a cancelled job''s chain (still holding its lease): stopped');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job('C') and kind <> 'inflate'), 0,
  '… and nothing was created');

do $$ begin perform pgtap_csv.plan_job('F', 1000, 20, 100, jsonb_build_object('compression', pgtap_csv.gz())); end $$;
do $$ begin perform pgtap_csv.lease('F', 'inflate', 0); end $$;
do $$ begin perform pgtap_csv.step('F', 0, 120, 150, jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true)),
  jsonb_build_array(jsonb_build_object('out', 120, 'in', 150, 'bits', 0, 'window', '', 'member', null))); end $$;
update csv_import.jobs set status = 'failed', error = 'test', finished_at = now() where id = pgtap_csv.job('F');
select is((select count(*)::int from csv_import.inflate_checkpoints where job_id = pgtap_csv.job('F')), 1,
  'a failed job keeps its checkpoints (retry_job resumes from them)');

do $$ begin perform pgtap_csv.plan_job('H', 60, 20, 100, jsonb_build_object('compression', pgtap_csv.gz())); end $$;
do $$ begin perform pgtap_csv.lease('H', 'inflate', 0); end $$;
select is(pgtap_csv.step('H', 0, 20, 60, '[]', '[]', true), 'ok', 'a header-only stream ends in one step, no ranges');
select results_eq(
  $$ select status::text, chunk_count, data_size, finished_at is not null from csv_import.jobs where id = pgtap_csv.job('H') $$,
  $$ values ('succeeded', 0, 20::bigint, true) $$, '… and the job with no loads finalizes at once');

-- claim_chunks: the chain whatever runs, outside max_parallel_chunks and the global limit --------------------------
-- KP: a plain job created first, same priority; KC: a compressed job whose chain yielded after one step (its
-- inflate chunk pending again) while load 0 runs, at its max_parallel_chunks of 1.
do $$ begin
  perform pgtap_csv.plan_job('KP', 300, 0, 100, '{"priority": 3000000, "max_parallel_chunks": 4}');
  update csv_import.chunks set status = 'succeeded', quote_parity = 0, newline_count = 1, ends_with_terminator = true
  where job_id = pgtap_csv.job('KP') and kind = 'scan';
  perform csv_import._advance_scanned_prefix(pgtap_csv.job('KP'));
  perform pgtap_csv.plan_job('KC', 1000, 20, 100, jsonb_build_object('compression', pgtap_csv.gz(),
    'priority', 3000000, 'max_parallel_chunks', 1));
  perform pgtap_csv.lease('KC', 'inflate', 0);
  perform pgtap_csv.step('KC', 0, 220, 300,
    jsonb_build_array(pgtap_csv.range(20, 120, 0, 1, true), pgtap_csv.range(120, 220, 0, 1, true)));
  perform csv_import.yield_chunk(pgtap_csv.chunk('KC', 'inflate', 0), pgtap_csv.token('KC', 'inflate', 0));
  perform pgtap_csv.lease('KC', 'load', 0);
end $$;
select is((select status::text from csv_import.chunks where id = pgtap_csv.chunk('KC', 'inflate', 0)), 'pending',
  'setup: the yielded chain is pending again');
select pgtap_csv.claim(1, 5, 0);
select results_eq($$ select pgtap_csv.claimed(1, 'KC') $$, $$ values ('inflate 0') $$,
  'no global room: the chain is claimed all the same (the global limit counts loads and scans), at its job''s max_parallel_chunks');
select is((select count(*)::int from pgtap_csv.claims where round = 1 and job_id = pgtap_csv.job('KP')), 0,
  '… and KP''s load waits for room');
select pgtap_csv.claim(2, 5, 1);
select results_eq($$ select pgtap_csv.claimed(2, 'KP') $$, $$ values ('load 0') $$,
  'one slot: KP''s load (the running chain does not count against the global limit)');
select is((select count(*)::int from pgtap_csv.claims where round = 2 and job_id = pgtap_csv.job('KC')), 0,
  'KC''s next load is not claimed: its job is at max_parallel_chunks (the running chain does not count there either)');

select * from finish();
rollback;
