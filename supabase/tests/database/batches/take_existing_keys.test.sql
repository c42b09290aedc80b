-- csv_import.take_existing_keys: staged rows whose key is already in the target become rejects worded exactly as
-- PostgreSQL words the unique violation, and leave the staging table; what it cannot decide is left alone.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(6);

create temp table t (id bigint primary key, a text, b numeric(12,2), c text, unique (a, b));
create unique index t_lower_c on t (lower(c)); -- an expression index: left to bisection
insert into t select g, 'x' || g, g, 'c' || g from generate_series(1, 100) g;
create temp table csv_import_stage (seq bigint generated always as identity, c1 text, c2 text, c3 text, c4 text);
insert into csv_import_stage (c1, c2, c3, c4) values
  ('5', 'new', '1', null),        -- 1: id exists
  ('500', 'x7', '7', null),       -- 2: (a, b) exists, b given as 7 → 7.00
  ('501', 'fresh', '1', null),    -- 3: new
  ('502', null, '7', null),       -- 4: a NULL key never conflicts
  ('503', 'fresh2', '2', 'C9');   -- 5: conflicts only on the expression index

create temp table got as
select * from csv_import.take_existing_keys('pg_temp.t', array['id', 'a', 'b', 'c'],
  array['bigint', 'text', 'numeric(12,2)', 'text']);

select results_eq($$ select seq::int, message, detail from got order by seq $$,
  $$ values (1, 'duplicate key value violates unique constraint "t_pkey"', 'Key (id)=(5) already exists.'),
            (2, 'duplicate key value violates unique constraint "t_a_b_key"', 'Key (a, b)=(x7, 7.00) already exists.') $$,
  'rows whose key exists are returned with the constraint and the key, as PostgreSQL reports them');
select results_eq($$ select seq::int from pg_temp.csv_import_stage order by seq $$, $$ values (3), (4), (5) $$,
  '… and removed from the staging table; a NULL key and an expression index are left to the bisection');

-- The wording is PostgreSQL's own.
create function pg_temp.refusal(p_sql text) returns text language plpgsql as $$
declare v_message text; v_detail text;
begin
  execute p_sql;
  return null;
exception when unique_violation then
  get stacked diagnostics v_message = message_text, v_detail = pg_exception_detail;
  return v_message || ' / ' || v_detail;
end $$;
select is(pg_temp.refusal($$ insert into pg_temp.t (id, a, b) values (5, 'new', 1) $$),
  (select message || ' / ' || detail from got where seq = 1), 'same words as PostgreSQL (primary key)');
select is(pg_temp.refusal($$ insert into pg_temp.t (id, a, b) values (500, 'x7', '7'::numeric(12,2)) $$),
  (select message || ' / ' || detail from got where seq = 2), 'same words as PostgreSQL (two-column key, typmod applied)');

-- A unique column that is not in the file cannot be checked here (its default decides): that index is skipped.
truncate pg_temp.csv_import_stage;
insert into csv_import_stage (c1) values ('5');
select is((select count(*)::int from csv_import.take_existing_keys('pg_temp.t', array['id'], array['bigint'])), 1,
  'only the indexes whose columns are all in the file are used');
select ok(not has_function_privilege('authenticated', 'csv_import.take_existing_keys(text, text[], text[])', 'execute'),
  'users may not call it');

select * from finish();
rollback;
