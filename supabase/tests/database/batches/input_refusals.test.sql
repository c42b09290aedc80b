-- csv_import.insert_isolating with a probe (20261209000500_input_refusals.sql): a value whose input function
-- refuses it with an error outside the row-refusal classes (a reg* name that does not exist: 42P01/42704; an
-- internal error such as PostGIS's parse error: XX000) is a reject with PostgreSQL's message, as `\copy` refuses
-- just that row; the same SQLSTATEs raised by anything but the values' input (a trigger, a missing table)
-- propagate, so the batch is retried as before. The same through write_keyed (upsert, skip_duplicates), whose
-- statements keep the empty search_path: there the probe also words a domain's refusal as COPY does.
begin;
create extension if not exists pgtap with schema extensions;
set local search_path = public, extensions;
select plan(16);

select ok(csv_import.may_be_input_refusal('XX000') and csv_import.may_be_input_refusal('42P01')
  and csv_import.may_be_input_refusal('0A000') and csv_import.may_be_input_refusal('3F000'),
  'internal, undefined-object, invalid-schema and not-supported errors may be an input function''s refusal');
select ok(not csv_import.may_be_input_refusal('40001') and not csv_import.may_be_input_refusal('57014')
  and not csv_import.may_be_input_refusal('08006') and not csv_import.may_be_input_refusal(null),
  'serialization failures, cancels and connection errors are not');

create schema pgtap_inref;
-- A stand-in for an extension type whose input raises XX000 (PostGIS): a domain whose check raises it.
create function pgtap_inref.parse(p text) returns boolean language plpgsql immutable as $$
begin
  if p like 'bad%' then raise exception 'parse error - invalid geometry' using errcode = 'XX000'; end if;
  return true;
end $$;
create domain pgtap_inref.geom as text check (pgtap_inref.parse(value));
create table pgtap_inref.items (id int primary key, rel regclass, g pgtap_inref.geom, note text);
create temp table csv_import_stage (seq bigint generated always as identity, c1 text, c2 text, c3 text, c4 text)
  on commit drop;
insert into csv_import_stage (c1, c2, c3, c4) values
  ('1', 'pg_catalog.pg_class', 'ok', 'a'),           -- 1 ok
  ('2', 'pg_catalog.no_such_table', 'ok', 'b'),      -- 2 regclass: 42P01 from its input
  ('3', 'pg_catalog.pg_type', 'bad one', 'c'),       -- 3 XX000 from the value's domain
  ('4', 'pg_catalog.pg_proc', 'ok', 'd');            -- 4 ok

create function pgtap_inref.run(p_from bigint, p_to bigint, p_probe boolean default true,
  p_table text default 'pgtap_inref.items') returns jsonb
language sql as $$
  select csv_import.insert_isolating(
    'insert into ' || p_table || ' (id, rel, g, note) select c1::int4, c2::regclass, c3::pgtap_inref.geom, c4 '
    || 'from pg_temp.csv_import_stage where seq > $1 and seq <= $2 order by seq', p_from, p_to, null,
    case when p_probe then 'select c1::int4, c2::regclass, c3::pgtap_inref.geom, c4 '
      || 'from pg_temp.csv_import_stage where seq > $1 and seq <= $2' end)
$$;

create temp table result on commit drop as select pgtap_inref.run(0, 4) as r;
select is((select (r ->> 'inserted')::int from result), 2, 'the rows around two refused values load');
select results_eq(
  $$ select (x ->> 'seq')::int, x ->> 'message' from result, jsonb_array_elements(r -> 'rejects') as x order by 1 $$,
  $$ values (2, 'relation "pg_catalog.no_such_table" does not exist'), (3, 'parse error - invalid geometry') $$,
  'each refused value is a reject with PostgreSQL''s message (42P01 and XX000 from the input)');
select results_eq($$ select id from pgtap_inref.items order by id $$, $$ values (1), (4) $$,
  'the table holds the accepted rows');

select throws_ok($$ select pgtap_inref.run(1, 2, false) $$, '42P01', null,
  'without a probe such an error propagates, as before');
select throws_ok($$ select pgtap_inref.run(0, 4, true, 'pgtap_inref.gone') $$, '42P01', null,
  'a missing target table is no row''s fault: the probe reads the values fine, so the error propagates');

-- The same SQLSTATE from a trigger, not from the values' input: propagates (retried as a transient error).
create function pgtap_inref.crash() returns trigger language plpgsql as $$
begin
  if new.note = 'crash' then raise exception 'could not read block' using errcode = 'XX000'; end if;
  return new;
end $$;
create trigger crash before insert on pgtap_inref.items for each row execute function pgtap_inref.crash();
truncate csv_import_stage restart identity;
insert into csv_import_stage (c1, c2, c3, c4) values ('10', 'pg_catalog.pg_class', 'ok', 'x'),
  ('11', 'pg_catalog.pg_class', 'ok', 'crash');
select throws_ok($$ select pgtap_inref.run(0, 2) $$, 'XX000', 'could not read block',
  'an internal error raised by something other than the row''s values propagates');
select results_eq($$ select id from pgtap_inref.items order by id $$, $$ values (1), (4) $$,
  '… and nothing of that range is written');

-- Messages worded as the loading session's COPY words them: a type its search_path sees is not qualified.
create domain public.pgtap_inref_posint as int check (value > 0);
create temp table pos (id int, v public.pgtap_inref_posint) on commit drop;
truncate csv_import_stage restart identity;
insert into csv_import_stage (c1, c2) values ('1', '5'), ('2', '0');
select is(csv_import.insert_isolating(
    'insert into pg_temp.pos (id, v) select c1::int4, c2::int4 from pg_temp.csv_import_stage '
    || 'where seq > $1 and seq <= $2 order by seq', 0, 2) -> 'rejects' -> 0 ->> 'message',
  'value for domain pgtap_inref_posint violates check constraint "pgtap_inref_posint_check"',
  'a refusal names a type on the session''s search_path as COPY does (unqualified)');
select is(current_setting('search_path'), 'public, extensions', 'the caller''s search_path is back afterwards');
select is((select prosecdef from pg_proc where oid = 'csv_import.may_be_input_refusal(text)'::regprocedure), false,
  'may_be_input_refusal is an ordinary function');

-- upsert / skip_duplicates (write_keyed): the same decisions through the probe write_keyed builds from p_columns, and
-- a domain's refusal worded as COPY words it even where the staged text goes to the base type first ("domain").
create domain public.pgtap_inref_v4 as inet check (family(value) = 4);
create table pgtap_inref.keyed (id int primary key, rel regclass, g pgtap_inref.geom, addr public.pgtap_inref_v4);
create temp table csv_import_keyed_stage (seq bigint generated always as identity, line bigint not null,
  c1 text, c2 text, c3 text, c4 text) on commit drop;
insert into csv_import_keyed_stage (line, c1, c2, c3, c4) values
  (2, '1', 'pg_catalog.pg_class', 'ok', '10.0.0.1'),
  (3, '2', 'pg_catalog.no_such_table', 'ok', '10.0.0.2'),
  (4, '3', 'pg_catalog.pg_class', 'bad one', '10.0.0.3'),
  (5, '4', 'pg_catalog.pg_class', 'ok', '::1'),
  (6, '5', 'pg_catalog.pg_class', 'ok', '10.0.0.5');
create temp table keyed_result on commit drop as select csv_import.write_keyed(-7, 'upsert', 'pgtap_inref.keyed',
  '[{"name": "id", "type": "pg_catalog.int4"}, {"name": "rel", "type": "\"pg_catalog\".\"regclass\""},
    {"name": "g", "type": "pgtap_inref.geom", "domain": "pgtap_inref.geom"},
    {"name": "addr", "type": "\"pg_catalog\".\"inet\"", "domain": "public.pgtap_inref_v4"}]', '{id}', 5) as r;
select is((select r ->> 'loaded' from keyed_result), '2', 'upsert: the rows around refused values load');
select results_eq(
  $$ select (x ->> 'seq')::int, x ->> 'message' from keyed_result, jsonb_array_elements(r -> 'rejects') as x order by 1 $$,
  $$ values (2, 'relation "pg_catalog.no_such_table" does not exist'), (3, 'parse error - invalid geometry'),
            (4, 'value for domain pgtap_inref_v4 violates check constraint "pgtap_inref_v4_check"') $$,
  'upsert: 42P01 and XX000 from the values'' input are rejects, the domain''s refusal is worded as COPY words it');
select results_eq($$ select id from pgtap_inref.keyed order by id $$, $$ values (1), (5) $$,
  'upsert: the table holds the accepted rows');
create function pgtap_inref.crash_always() returns trigger language plpgsql as $$
begin
  raise exception 'could not read block' using errcode = 'XX000';
end $$;
create trigger crash before insert on pgtap_inref.keyed for each row execute function pgtap_inref.crash_always();
truncate csv_import_keyed_stage restart identity;
insert into csv_import_keyed_stage (line, c1, c2, c3, c4) values (7, '6', 'pg_catalog.pg_class', 'ok', '10.0.0.6');
create function pgtap_inref.keyed_crash() returns jsonb language sql as $$
  select csv_import.write_keyed(-7, 'skip_duplicates', 'pgtap_inref.keyed',
    '[{"name": "id", "type": "pg_catalog.int4"}, {"name": "rel", "type": "pg_catalog.regclass"},
      {"name": "g", "type": "pgtap_inref.geom"}, {"name": "addr", "type": "pg_catalog.inet"}]', '{id}', 1)
$$;
select throws_ok($$ select pgtap_inref.keyed_crash() $$, 'XX000', 'could not read block',
  'skip_duplicates: an internal error not raised by the values propagates');

select * from finish();
rollback;
