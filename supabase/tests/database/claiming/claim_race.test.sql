-- csv_import.claim_chunks under contention: two sessions claiming at the same moment never get the same chunk
-- and never exceed the global or per-job limit (the claims are serialized by an advisory lock).
--
-- The claimers must see committed chunks, so the fixtures are committed through dblink under a random suffix in
-- the pseudo-bucket 'pgtap-race', and deleted at the end (and at the start, if an aborted run left any more than a minute ago).
begin;
create extension if not exists pgtap with schema extensions;
create extension if not exists dblink with schema extensions;
set local search_path = public, extensions;
select plan(10);
-- A second session is opened through dblink, by a password-checked route (see the fixture), or the file skips.
\ir ../_fixtures/dblink_route.psql
\if :dblink_ok

create schema pgtap_csv;
create table pgtap_csv.cfg as
  select format('host=%s port=%s dbname=%s user=postgres password=postgres application_name=pgtap_claim_race options=-cstatement_timeout=30000',
                :'dblink_host', current_setting('port'), current_database()) as conn,
         'pgtap-race/' || md5(random()::text) as prefix;
create function pgtap_csv.remote(p_sql text) returns text language sql as $$
  select dblink_exec((select conn from pgtap_csv.cfg), p_sql)
$$;
create function pgtap_csv.job(p_n int) returns bigint language sql stable as $$
  select id from csv_import.jobs where bucket_id = 'pgtap-race'
    and object_name = (select prefix from pgtap_csv.cfg) || '-' || p_n || '.csv'
$$;
-- Lets two sessions claim at once: a gate session holds the claim lock, both claimers queue behind it, the gate
-- opens, and the results of both are recorded as round p_round.
create table pgtap_csv.claims (round int, session int, chunk_id bigint, job_id bigint, lease_token uuid);
create table pgtap_csv.waiting (round int, n int);
create function pgtap_csv.race(p_round int, p_max int, p_global_limit int) returns void language plpgsql as $$
declare
  v_conn text := (select conn from pgtap_csv.cfg);
  v_pids int[];
  i int := 0;
begin
  perform dblink_connect('pgtap_gate', v_conn);
  perform dblink_connect('pgtap_claim_1', v_conn);
  perform dblink_connect('pgtap_claim_2', v_conn);
  perform dblink_exec('pgtap_gate', 'begin');
  perform dblink_exec('pgtap_gate', 'do $x$ begin perform pg_advisory_xact_lock(hashtext(''csv_import.claim_chunks'')); end $x$');
  v_pids := array[(select pid from dblink('pgtap_claim_1', 'select pg_backend_pid()') as t(pid int)),
                  (select pid from dblink('pgtap_claim_2', 'select pg_backend_pid()') as t(pid int))];
  perform dblink_send_query('pgtap_claim_' || s,
    format('select chunk_id, job_id, lease_token from csv_import.claim_chunks(%s, %s)', p_max, p_global_limit))
  from generate_series(1, 2) as s;
  while (select count(*) from pg_locks where locktype = 'advisory' and not granted and pid = any (v_pids)) < 2
        and i < 200 loop
    perform pg_sleep(0.025);
    i := i + 1;
  end loop;
  insert into pgtap_csv.waiting
  values (p_round, (select count(*) from pg_locks where locktype = 'advisory' and not granted and pid = any (v_pids)));
  perform dblink_exec('pgtap_gate', 'commit');
  for s in 1..2 loop
    insert into pgtap_csv.claims
    select p_round, s, t.chunk_id, t.job_id, t.lease_token
    from dblink_get_result('pgtap_claim_' || s) as t(chunk_id bigint, job_id bigint, lease_token uuid);
    perform * from dblink_get_result('pgtap_claim_' || s) as t(chunk_id bigint, job_id bigint, lease_token uuid);
  end loop;
  perform dblink_disconnect('pgtap_gate');
  perform dblink_disconnect('pgtap_claim_1');
  perform dblink_disconnect('pgtap_claim_2');
end $$;

-- Fixtures: committed jobs of 20 load chunks each, their 19 scans done, so 20 ready chunks each.
do $do$ begin
perform pgtap_csv.remote($$ delete from csv_import.jobs where bucket_id = 'pgtap-race' and created_at < now() - interval '1 minute' $$);
perform pgtap_csv.remote(format($$
  do $x$
  declare v bigint;
  begin
    for i in 1..3 loop
      insert into csv_import.jobs (bucket_id, object_name, object_version, object_size)
      values ('pgtap-race', %L || '-' || i || '.csv', 'v1', 2000) returning id into v;
      perform csv_import.register_job(v, jsonb_build_object('data_start', 0, 'chunk_size', 100,
        'priority', case when i = 3 then 9000001 else 9000000 end,
        'max_parallel_chunks', case when i = 3 then 3 else 20 end));
      -- Every scan done (as if loads had scanned ahead): all 20 loads are ready.
      update csv_import.chunks set status = 'succeeded', quote_parity = 0, newline_count = 1,
        ends_with_terminator = true where job_id = v and kind = 'scan';
      perform csv_import._advance_scanned_prefix(v);
      if i = 3 then perform csv_import.stop_job(v, 'cancelled', 'parked until the per-job race'); end if;
    end loop;
  end $x$ $$, (select prefix from pgtap_csv.cfg)));
end $do$;

-- Global limit: room for 6 more running chunks; each session asks for 5.
create table pgtap_csv.base as select count(*)::int as running from csv_import.chunks where status = 'running';
do $$ begin perform pgtap_csv.race(1, 5, (select running from pgtap_csv.base) + 6); end $$;

select is((select n from pgtap_csv.waiting where round = 1), 2, 'both claimers were waiting at the same time');
select is((select count(*)::int from pgtap_csv.claims where round = 1), 6,
  'together they claimed exactly the 6 free slots, not 10');
select is((select count(distinct chunk_id)::int from pgtap_csv.claims where round = 1), 6, 'no chunk was claimed twice');
select results_eq($$ select count(*)::int from pgtap_csv.claims where round = 1 group by session order by 1 $$,
  $$ values (1), (5) $$, 'the first claimer got 5, the second the 1 slot left');
select is_empty(
  $$ select 1 from pgtap_csv.claims where round = 1 and job_id not in (pgtap_csv.job(1), pgtap_csv.job(2)) $$,
  'all claimed chunks belong to the fixture jobs');
select results_eq(
  $$ select status::text, attempts, count(*)::int from csv_import.chunks
     where job_id in (pgtap_csv.job(1), pgtap_csv.job(2)) and status = 'running' group by 1, 2 $$,
  $$ values ('running', 1, 6) $$,
  'the database agrees: 6 running chunks, each claimed (and its attempt counted) once');

-- Per-job limit: a job allowing 3 parallel chunks, both sessions asking for 5 with a large global limit.
do $do$ begin
perform pgtap_csv.remote(format($$
  do $x$ begin
    perform csv_import.stop_job(id, 'cancelled', 'race 1 done') from csv_import.jobs
    where bucket_id = 'pgtap-race' and object_name like %L || '-_.csv' and status <> 'cancelled';
    update csv_import.jobs set status = 'queued', error = null, finished_at = null where object_name = %L || '-3.csv';
    update csv_import.chunks c set status = 'pending' from csv_import.jobs j
    where j.id = c.job_id and j.object_name = %L || '-3.csv';
  end $x$ $$, (select prefix from pgtap_csv.cfg), (select prefix from pgtap_csv.cfg), (select prefix from pgtap_csv.cfg)));
perform pgtap_csv.race(2, 5, (select count(*)::int from csv_import.chunks where status = 'running') + 100);
end $do$;

select is((select n from pgtap_csv.waiting where round = 2), 2, 'both claimers were waiting at the same time');
select is((select count(*)::int from pgtap_csv.claims where round = 2 and job_id = pgtap_csv.job(3)), 3,
  'together they claimed 3 chunks of the job, its max_parallel_chunks');
select is((select count(distinct chunk_id)::int from pgtap_csv.claims where round = 2), 
  (select count(*)::int from pgtap_csv.claims where round = 2), 'no chunk was claimed twice');
select is((select count(*)::int from csv_import.chunks where job_id = pgtap_csv.job(3) and status = 'running'), 3,
  'the database agrees');
-- The slots beyond job 3's went to whatever else was ready: in a database with live imports (a developer's stack),
-- their chunks go back at once (committed claims with a 2-minute lease would strand them until it expires).
do $do$ begin
perform pgtap_csv.remote(format('do $y$ begin perform csv_import.yield_chunk(%s, %L); end $y$', chunk_id, lease_token))
from pgtap_csv.claims where round = 2 and job_id is distinct from pgtap_csv.job(3);
end $do$;

-- Cleanup of the committed fixtures.
do $do$ begin
perform pgtap_csv.remote(format($$ delete from csv_import.jobs where bucket_id = 'pgtap-race' and object_name like %L $$,
  (select prefix from pgtap_csv.cfg) || '-%'));
end $do$;

\else
select skip(:'dblink_skip', 10);
\endif

select * from finish();
rollback;
