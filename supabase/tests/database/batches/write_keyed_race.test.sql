-- csv_import.write_keyed with two sessions racing on one key of one job: the batch holding the later line writes
-- first and stays open, the batch with the earlier line comes second and must wait for it (on the key's claim
-- row), then decide on the committed line: upsert keeps the later line's row, skip_duplicates replaces it with the
-- earlier line's. A plain INSERT … ON CONFLICT would do the opposite in both modes (the commit order wins).
--
-- The sessions must see a committed table, so it is created through dblink under a random name and dropped at the
-- end, with the claims of the (negative, random) job ids used here.
begin;
create extension if not exists pgtap with schema extensions;
create extension if not exists dblink with schema extensions;
set local search_path = public, extensions;
select plan(8);
-- A second session is opened through dblink, by a password-checked route (see the fixture), or the file skips.
\ir ../_fixtures/dblink_route.psql
\if :dblink_ok

create schema pgtap_race;
create table pgtap_race.cfg as
  select format('host=%s port=%s dbname=%s user=postgres password=postgres application_name=pgtap_keyed_race options=-cstatement_timeout=30000',
                :'dblink_host', current_setting('port'), current_database()) as conn,
         'public.pgtap_keyed_race_' || substr(md5(random()::text), 1, 10) as tbl,
         -1 - (random() * 1e12)::bigint as job;
create table pgtap_race.results (mode text, session text, result jsonb, waited boolean);

-- Session "first" writes line p_first_line and keeps its transaction open; session "second" writes line
-- p_second_line of the same key and job, which must wait; then "first" commits, "second" finishes and commits.
create function pgtap_race.race(p_mode text, p_job bigint, p_first_line int, p_second_line int) returns void
language plpgsql as $$
declare
  v_conn text := (select conn from pgtap_race.cfg);
  v_tbl text := (select tbl from pgtap_race.cfg);
  v_pid int;
  v_waiting boolean := false;
  v_call text;
  i int := 0;
begin
  v_call := format($c$select csv_import.write_keyed(%s, %L, %L,
    '[{"name": "id", "type": "integer"}, {"name": "v", "type": "text"}]', '{id}', 1)::text$c$, p_job, p_mode, v_tbl);
  perform dblink_connect('pgtap_race_' || s, v_conn) from unnest(array['first', 'second']) s;
  for s in 1..2 loop
    perform dblink_exec('pgtap_race_' || (array['first', 'second'])[s], format($x$
      begin;
      create temp table csv_import_keyed_stage (seq bigint generated always as identity, line bigint not null,
        c1 text, c2 text) on commit drop;
      insert into csv_import_keyed_stage (line, c1, c2) values (%s, '7', 'line %s')$x$,
      (array[p_first_line, p_second_line])[s], (array[p_first_line, p_second_line])[s]));
  end loop;
  insert into pgtap_race.results
  select p_mode, 'first', r::jsonb, false from dblink('pgtap_race_first', v_call) as t(r text);
  v_pid := (select pid from dblink('pgtap_race_second', 'select pg_backend_pid()') as t(pid int));
  perform dblink_send_query('pgtap_race_second', v_call);
  while not v_waiting and i < 200 loop
    perform pg_sleep(0.025);
    v_waiting := exists (select 1 from pg_locks where pid = v_pid and not granted);
    i := i + 1;
  end loop;
  perform dblink_exec('pgtap_race_first', 'commit');
  insert into pgtap_race.results
  select p_mode, 'second', r::jsonb, v_waiting from dblink_get_result('pgtap_race_second') as t(r text);
  perform * from dblink_get_result('pgtap_race_second') as t(r text);
  perform dblink_exec('pgtap_race_second', 'commit');
  perform dblink_disconnect('pgtap_race_' || s) from unnest(array['first', 'second']) s;
end $$;

do $$ begin
  perform dblink_exec((select conn from pgtap_race.cfg),
    format('create table %s (id int primary key, v text not null)', (select tbl from pgtap_race.cfg)));
end $$;

-- upsert: line 300 first (open), then line 2: the last line in the file stays.
do $$ begin perform pgtap_race.race('upsert', (select job from pgtap_race.cfg), 300, 2); end $$;
select is((select waited from pgtap_race.results where mode = 'upsert' and session = 'second'), true,
  'upsert: the second batch waited for the first');
select is((select result - 'rejects' from pgtap_race.results where mode = 'upsert' and session = 'second'),
  '{"loaded": 1, "skipped": 0}'::jsonb, 'upsert: the earlier line counts as loaded');

-- Read through dblink too: a lock of this transaction on the table would keep the final drop waiting.
create function pgtap_race.v() returns text language sql as $$
  select v from dblink((select conn from pgtap_race.cfg),
    format('select v from %s where id = 7', (select tbl from pgtap_race.cfg))) as t(v text)
$$;
select is(pgtap_race.v(), 'line 300', 'upsert: the last occurrence in the file wins, although it committed first');

-- skip_duplicates (a fresh table state: the key 7 row removed, another job): line 300 first, then line 2.
do $$ begin
  perform dblink_exec((select conn from pgtap_race.cfg), format('delete from %s', (select tbl from pgtap_race.cfg)));
  perform pgtap_race.race('skip_duplicates', (select job from pgtap_race.cfg) - 1, 300, 2);
end $$;
select is((select waited from pgtap_race.results where mode = 'skip_duplicates' and session = 'second'), true,
  'skip: the second batch waited for the first');
select is((select result - 'rejects' from pgtap_race.results where mode = 'skip_duplicates' and session = 'first'),
  '{"loaded": 1, "skipped": 0}'::jsonb, 'skip: the first batch loaded the key');
select is((select result - 'rejects' from pgtap_race.results where mode = 'skip_duplicates' and session = 'second'),
  '{"loaded": 0, "skipped": 1}'::jsonb, 'skip: the second counts its row as skipped (one loaded row per key)');
select is(pgtap_race.v(), 'line 2', 'skip: the first occurrence in the file wins, although it committed last');
select is((select line from dblink((select conn from pgtap_race.cfg),
    format('select line from csv_import.key_claims where job_id = %s', (select job from pgtap_race.cfg) - 1))
    as t(line bigint)), 2::bigint, 'skip: the claim holds the earlier line');

do $$ begin
  perform dblink_exec((select conn from pgtap_race.cfg), format(
    'drop table %s; delete from csv_import.key_claims where job_id in (%s, %s)',
    (select tbl from pgtap_race.cfg), (select job from pgtap_race.cfg), (select job from pgtap_race.cfg) - 1));
end $$;

\else
select skip(:'dblink_skip', 8);
\endif

select * from finish();
rollback;
