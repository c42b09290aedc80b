-- csv_import.register_job and csv_import.fail_registration: planning a registering job into chunks.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(23);

create schema pgtap_csv;
-- A registering job as the trigger leaves it (no trigger involved: tests the planning only).
create function pgtap_csv.new_job(p_size bigint) returns bigint language sql as $$
  insert into csv_import.jobs (bucket_id, object_name, object_version, object_size, owner_id)
  values ('csv-uploads', 'pgtap/' || gen_random_uuid() || '.csv', 'v1', p_size, 'pgtap-owner')
  returning id
$$;
create temp table pgtap_jobs (name text primary key, id bigint) on commit drop;
insert into pgtap_jobs values ('main', pgtap_csv.new_job(1000));

-- The plan --------------------------------------------------------------------------------------------------
select results_eq(
  $$ select job_id, status::text, chunk_count, planned from csv_import.register_job((select id from pgtap_jobs where name = 'main'),
       '{"data_start": 100, "chunk_size": 300, "header_lines": 1, "profile_name": "orders", "profile_id": null,
         "target_table": "public.orders", "priority": 3, "max_parallel_chunks": 2, "max_attempts": 4,
         "tolerated_reject_rate": 0.1, "dialect": {"delimiter": ",", "quote": "\""},
         "columns": [{"header": "id", "column": "id"}]}') $$,
  $$ values ((select id from pgtap_jobs where name = 'main'), 'queued', 3, true) $$,
  'register_job returns the queued job and its load chunk count');

select results_eq(
  $$ select kind::text, chunk_index, start_offset, end_offset, status::text, entry_parity::int, lines_before, attempts
     from csv_import.chunks c where job_id = (select id from pgtap_jobs where name = 'main') order by c.kind, c.chunk_index $$,
  $$ values ('scan', 0, 100::bigint, 400::bigint, 'pending', null::int, null::bigint, 0),
            ('scan', 1, 400, 700, 'pending', null, null, 0),
            ('load', 0, 100, 400, 'pending', 0, 1, 0),
            ('load', 1, 400, 700, 'pending', null, null, 0),
            ('load', 2, 700, 1000, 'pending', null, null, 0) $$,
  'load chunks tile [data_start, size); a scan per load chunk but the last; load 0 starts outside quotes after the header');

select results_eq(
  $$ select status::text, data_start, header_lines, prefix_lines, scanned_prefix, prefix_parity, chunk_size, chunk_count,
            priority, max_parallel_chunks, max_attempts, tolerated_reject_rate, target_table, profile_name,
            dialect ->> 'delimiter', columns -> 0 ->> 'column', error
     from csv_import.jobs where id = (select id from pgtap_jobs where name = 'main') $$,
  $$ values ('queued', 100::bigint, 1::bigint, 1::bigint, 0, 0::smallint, 300::bigint, 3, 3, 2, 4, 0.1, 'public.orders',
             'orders', ',', 'id', null::text) $$,
  'the job stores the plan');

-- Idempotent ------------------------------------------------------------------------------------------------
select results_eq(
  $$ select status::text, chunk_count, planned from csv_import.register_job((select id from pgtap_jobs where name = 'main'),
       '{"data_start": 0, "chunk_size": 10}') $$,
  $$ values ('queued', 3, false) $$,
  'a second call returns the job unchanged with planned = false');
select is((select count(*)::int from csv_import.chunks where job_id = (select id from pgtap_jobs where name = 'main')), 5,
  '… and creates no chunks');
select is((select chunk_size from csv_import.jobs where id = (select id from pgtap_jobs where name = 'main')), 300::bigint,
  '… and keeps the first plan');

-- Layout property: every size / data_start / chunk_size combination tiles exactly -----------------------------
create temp table pgtap_layout on commit drop as
  select s as size, d as data_start, c as chunk_size, pgtap_csv.new_job(s) as id
  from generate_series(1, 23) as s, (values (0), (1), (7)) as ds(d), (values (1), (2), (3), (5), (8), (64)) as cs(c)
  where d <= s;
select lives_ok(
  $$ select csv_import.register_job(id, jsonb_build_object('data_start', data_start, 'chunk_size', chunk_size))
     from pgtap_layout $$,
  format('planned %s layouts', (select count(*) from pgtap_layout)));

select is_empty(
  $$ select l.id from pgtap_layout l join csv_import.jobs j on j.id = l.id
     where j.chunk_count <> ceil((l.size - l.data_start)::numeric / l.chunk_size)
        or j.chunk_count <> (select count(*) from csv_import.chunks c where c.job_id = l.id and c.kind = 'load')
        or greatest(j.chunk_count - 1, 0) <> (select count(*) from csv_import.chunks c where c.job_id = l.id and c.kind = 'scan') $$,
  'load chunk count = ceil((size - data_start) / chunk_size), scan count = load count - 1');

select is_empty(
  $$ select c.job_id, c.chunk_index from pgtap_layout l join csv_import.chunks c on c.job_id = l.id and c.kind = 'load'
     left join csv_import.chunks n on n.job_id = c.job_id and n.kind = 'load' and n.chunk_index = c.chunk_index + 1
     where (c.chunk_index = 0 and c.start_offset <> l.data_start)
        or (n.id is not null and n.start_offset <> c.end_offset)
        or (n.id is not null and c.end_offset - c.start_offset <> l.chunk_size)
        or (n.id is null and (c.end_offset <> l.size or c.end_offset - c.start_offset > l.chunk_size)) $$,
  'load chunks tile [data_start, size) exactly, chunk_size each, the last one possibly shorter');

select is_empty(
  $$ select s.job_id, s.chunk_index from pgtap_layout l join csv_import.chunks s on s.job_id = l.id and s.kind = 'scan'
     left join csv_import.chunks c on c.job_id = s.job_id and c.kind = 'load' and c.chunk_index = s.chunk_index
     where c.id is null or (s.start_offset, s.end_offset) <> (c.start_offset, c.end_offset) $$,
  'scan chunk i covers exactly load chunk i');

select is_empty(
  $$ select c.job_id from pgtap_layout l join csv_import.chunks c on c.job_id = l.id
     where (c.entry_parity is not null) <> (c.kind = 'load' and c.chunk_index = 0) $$,
  'only load chunk 0 knows its entry state at planning');

-- Header only -------------------------------------------------------------------------------------------------
insert into pgtap_jobs values ('header-only', pgtap_csv.new_job(42));
select results_eq(
  $$ select status::text, chunk_count, planned from csv_import.register_job((select id from pgtap_jobs where name = 'header-only'),
       '{"data_start": 42, "chunk_size": 100, "header_lines": 1}') $$,
  $$ values ('succeeded', 0, true) $$,
  'a header-only file (data_start = size) succeeds at once');
select results_eq(
  $$ select rows_parsed, rows_loaded, rows_rejected, error, finished_at is not null,
            (select count(*) from csv_import.chunks c where c.job_id = j.id)
     from csv_import.jobs j where id = (select id from pgtap_jobs where name = 'header-only') $$,
  $$ values (0::bigint, 0::bigint, 0::bigint, null::text, true, 0::bigint) $$,
  '… with 0 rows and no chunks');

-- Invalid plans -----------------------------------------------------------------------------------------------
insert into pgtap_jobs values ('invalid', pgtap_csv.new_job(1000));
select throws_ok(
  format($$ select csv_import.register_job(%s, '{"data_start": 0, "chunk_size": 0}') $$, (select id from pgtap_jobs where name = 'invalid')),
  '22023', format('Invalid plan for job %s: data_start 0, chunk_size 0, size 1000', (select id from pgtap_jobs where name = 'invalid')),
  'chunk_size 0 is refused');
select throws_ok(
  format($$ select csv_import.register_job(%s, '{"data_start": 1001, "chunk_size": 100}') $$, (select id from pgtap_jobs where name = 'invalid')),
  '22023', format('Invalid plan for job %s: data_start 1001, chunk_size 100, size 1000', (select id from pgtap_jobs where name = 'invalid')),
  'data_start beyond the object is refused');
select throws_ok(
  format($$ select csv_import.register_job(%s, '{"chunk_size": 100}') $$, (select id from pgtap_jobs where name = 'invalid')),
  '22023', format('Invalid plan for job %s: data_start <NULL>, chunk_size 100, size 1000', (select id from pgtap_jobs where name = 'invalid')),
  'a plan without data_start is refused');
select throws_ok(
  format($$ select csv_import.register_job(%s, '{"data_start": -1, "chunk_size": 100}') $$, (select id from pgtap_jobs where name = 'invalid')),
  '22023', format('Invalid plan for job %s: data_start -1, chunk_size 100, size 1000', (select id from pgtap_jobs where name = 'invalid')),
  'a negative data_start is refused');
insert into pgtap_jobs values ('no-size', pgtap_csv.new_job(null));
select throws_ok(
  format($$ select csv_import.register_job(%s, '{"data_start": 0, "chunk_size": 100}') $$, (select id from pgtap_jobs where name = 'no-size')),
  '22023', format('Invalid plan for job %s: data_start 0, chunk_size 100, size <NULL>', (select id from pgtap_jobs where name = 'no-size')),
  'an unknown object size (neither in the job nor in the plan) is refused');
select throws_ok($$ select csv_import.register_job(-1, '{"data_start": 0, "chunk_size": 100}') $$, 'P0002',
  'Job -1 does not exist', 'an unknown job is refused');

-- fail_registration ---------------------------------------------------------------------------------------------
select is(csv_import.fail_registration((select id from pgtap_jobs where name = 'invalid'), 'Storage timed out', true),
  'registering'::csv_import.job_status, 'a transient failure leaves the job registering');
select is(csv_import.fail_registration((select id from pgtap_jobs where name = 'invalid'),
  'The header lacks the required column "email"'), 'failed'::csv_import.job_status, 'a fatal failure fails the job');
select results_eq(
  $$ select status::text, error, finished_at is not null from csv_import.jobs where id = (select id from pgtap_jobs where name = 'invalid') $$,
  $$ values ('failed', 'The header lacks the required column "email"', true) $$,
  '… with the message and finished_at');
select results_eq(
  $$ select csv_import.fail_registration((select id from pgtap_jobs where name = 'main'), 'late', false)::text,
            (select error from csv_import.jobs where id = (select id from pgtap_jobs where name = 'main')) $$,
  $$ values ('queued', null::text) $$,
  'a job that is no longer registering is left alone; its status is returned');

select * from finish();
rollback;
